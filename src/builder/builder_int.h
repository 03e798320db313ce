/*
 * builder_int.h - the job table's own structures, shared by builder.c and
 * containers.c.  The kinds of target (target_zip.c, target_image.c) do not
 * see them: they get target.h only.  Not for use outside src/builder.
 *
 * A target is (package id, kind); its index is id * TARGET_KINDS + kind.
 * Package ids are stable for the whole mount (builder_update_catalog): the
 * record table only grows, in chunks that never move, so a record pointer
 * stays valid while other threads add packages.
 */
#ifndef SEBSFS_BUILDER_INT_H
#define SEBSFS_BUILDER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "buildimage.h"
#include "deplayer.h"
#include "builder.h"
#include "inputs.h"
#include "target.h"
#include "inwatch.h"

struct waiter {
	builder_done_fn done;
	void *ctx;
	struct waiter *next;
};

struct job {
	size_t target;
	char input_hash[SHA256_HEX_LEN + 1];
	char *manifest_json;        /* the inputs this build starts from: NULL
				     * until a worker takes the job (checks
				     * only hash; see build_target) */
	char *input_error;          /* the input check failed: the build only reports this */
	bool checking;              /* protected by builder.lock: on the check queue */
	struct waiter *waiters;     /* protected by builder.lock */
	struct job *next;           /* queue link, protected by builder.lock */
};

/* What names a package in the cache, copied from the catalog that first
 * listed it: it outlives that catalog (and the package's presence in the
 * tree: a benchmark removed while a reader holds its package). */
struct package_key {
	char *platform;
	char *runtime;               /* runtime folder, "python-3.11-arm64" */
	char *language;
	char *version;
	char *arch;
	char *benchmark;
};

struct record {
	struct package_key key;      /* immutable */
	pthread_mutex_t check_lock;
	struct input_manifest seen;  /* protected by check_lock: last stat of the inputs */
	bool seen_valid;             /* protected by check_lock */
	/* The last check's result, which the callers that queued behind it
	 * share (see target_check_inputs).  checks_started is read before
	 * check_lock is taken; the rest is protected by it. */
	atomic_ulong checks_started;
	bool shared_valid;           /* the last check succeeded */
	char shared_hash[SHA256_HEX_LEN + 1];
	char *shared_identity;       /* the identity it hashed */
	struct inwatch_deps *watch;  /* protected by check_lock: what the walk
				      * that gave shared_hash read; NULL: none */
	/* everything below: protected by builder.lock */
	bool loaded;
	char *log_path;
	bool has_package;            /* a good package file / image row exists */
	bool verified;               /* its file hashed to its name since start-up */
	char *path;                  /* zip: the package file */
	int64_t size;                /* zip: bytes; image: as the daemon says */
	int64_t shown_size;          /* bytes the file shows (zip or image document);
				      * kept after an eviction: see builder_status */
	char sha256[SHA256_HEX_LEN + 1];
	char input_hash[SHA256_HEX_LEN + 1];
	int64_t built_at;
	double build_seconds;
	char *image;                 /* image: "repo:tag" */
	char *image_id;
	char *digest;                /* NULL: not pushed */
	char *registry;
	bool last_failed;
	char failed_hash[SHA256_HEX_LEN + 1];
	struct job *job;
	unsigned builds;
	/* zip: when its package was last served (unix ms), and the value last
	 * written to the cache row (see note_use_locked in builder.c) */
	int64_t last_used_ms;
	int64_t saved_used_ms;
	char deps_hash[SHA256_HEX_LEN + 1]; /* zip: "" without a dependency layer */
	bool deps_reused;
	int64_t unzipped_size;       /* zip: -1 unknown (sizelimits.h) */
	bool remote;                 /* zip: fetched from the remote cache */
};

/* A local image tag the checker removes (after an eviction: the unlink
 * request must not wait for the daemon). */
struct untag {
	char *image;
	builder_evicted_fn done;    /* told once the tag is gone */
	void *ctx;
	struct untag *next;
};

struct worker {
	struct builder *b;
	pthread_t thread;
	struct docker *client;       /* protected by builder.lock (read by builder_free) */
	int cancel_fd;               /* eventfd: written to cancel the running build */
	bool busy;                   /* protected by builder.lock */
};

/* One loaded state of the SeBS tree.  Whoever reads it holds a reference
 * (catalog_acquire); the builder holds one for the current generation. */
struct catalog_gen {
	struct catalog *cat;
	unsigned refs;               /* protected by builder.gen_lock */
	bool owned;                  /* false: the mount-time catalog, freed by main */
};

#define RECORD_CHUNK 256
#define MAX_RECORD_CHUNKS 16384      /* 4M targets */

struct builder {
	char *root;                  /* SEBS_ROOT, absolute */
	pthread_mutex_t gen_lock;    /* a leaf lock */
	struct catalog_gen *gen;     /* protected by gen_lock: the current tree */
	struct cache *cache;
	char *arch;
	enum installer_kind installer;
	char *installer_note;
	char *repository;            /* function images: NULL = docker_repository */
	char *registry;              /* function images: NULL = no push */
	char *image_tag_prefix;      /* function images: NULL = none */
	struct build_images *images;
	unsigned build_timeout;
	enum verify_mode verify;
	unsigned scrub_interval;     /* seconds between scrub passes; 0: none */
	int64_t cache_max;           /* bytes of package files and layers to keep; 0: no limit */
	struct size_limits size_limits; /* per platform (sizelimits.h) */
	enum size_limits_mode size_limits_mode;
	struct deplayer_store *layers; /* dependency layers; NULL: dep_layers=off */
	struct remote_cache *remote;  /* -o remote_cache; NULL: none */
	struct target_env env;       /* what the kinds of target read (target.h) */
	struct inwatch *inwatch;     /* NULL: input_watch=off, or no inotify */
	pthread_mutex_t trim_lock;   /* one LRU pass at a time (trim_cache) */
	pthread_mutex_t lock;
	pthread_cond_t work;         /* signalled when a queue grows or on stop */
	struct job *queue_head, *queue_tail; /* protected by lock: builds */
	struct job *check_head, *check_tail; /* protected by lock: checks */
	struct untag *untag;         /* protected by lock: local tags to remove */
	bool stopping;               /* protected by lock */
	struct worker *workers;
	unsigned n_workers;
	pthread_t checker;
	bool checker_started;
	/* one record per target; slots [0, n_targets) are initialised, and
	 * chunk pointers are written before n_targets grows past them */
	struct record *record_chunks[MAX_RECORD_CHUNKS];
	_Atomic size_t n_targets;
	/* ids sorted by their package key; only builder_new and
	 * builder_update_catalog (one thread at a time) touch it */
	size_t *ids_by_key;
	size_t n_ids;
	char *container_labels[3];   /* of every container created: see containers.c */
};

static inline struct record *record_of(struct builder *b, size_t target)
{
	return &b->record_chunks[target / RECORD_CHUNK][target % RECORD_CHUNK];
}

static inline size_t target_package(size_t target)
{
	return target / TARGET_KINDS;
}

static inline enum target_kind target_kind_of(size_t target)
{
	return (enum target_kind)(target % TARGET_KINDS);
}

/* Fills key for a target (borrowed strings of its record). */
void target_key(struct builder *b, size_t target, struct cache_key *key);

/* The current tree, referenced until catalog_release. */
struct catalog_gen *catalog_acquire(struct builder *b);
void catalog_release(struct builder *b, struct catalog_gen *gen);

/* The target's input hash (and manifest JSON, when manifest_json is not NULL)
 * from a stat walk and what is known of Docker images, without network.
 * *current (may be NULL) is false when that knowledge is not current.
 * On failure *errmsg (may be NULL) gets a one-line reason. */
int target_check_inputs(struct builder *b, size_t target, char hash[SHA256_HEX_LEN + 1],
			char **manifest_json, bool *current, char **errmsg);

/* containers.c: the labels of the containers this process creates, and the
 * sweep of those that a dead sebsfs on the same cache left behind. */
#define CONTAINER_LABEL_CACHE "sebsfs.cache"
#define CONTAINER_LABEL_OWNER "sebsfs.owner"
int container_labels_init(struct builder *b);
void container_labels_free(struct builder *b);
/* Removes every container labelled with this cache whose owner process is
 * gone.  0 when all of them are gone; else -errno (*errmsg, malloc'd, says
 * why; the daemon did not answer, or a removal failed). */
int containers_sweep(struct builder *b, struct docker *client, char **errmsg);

#endif
