/*
 * builder_int.h - what builder.c (the job table) shares with the per-kind
 * target code: target_zip.c (code packages) and target_image.c (function
 * images).  Not for use outside src/builder.
 *
 * A target is (package id, kind); its index is id * TARGET_KINDS + kind.
 */
#ifndef SEBSFS_BUILDER_INT_H
#define SEBSFS_BUILDER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "buildimage.h"
#include "builder.h"
#include "inputs.h"

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

/* One build in a worker: what the target code needs besides the builder. */
struct build_ctx {
	struct job *job;
	struct docker *client;          /* the worker's; NULL when none could be made */
	int log_fd;
	int cancel_fd;                  /* readable once the build is cancelled */
	const struct timespec *deadline; /* CLOCK_MONOTONIC; NULL: none */
	unsigned timeout;               /* seconds, for messages */
	int package_fd;                 /* out (zip): the published file, read-only; -1 */
	const struct catalog *now;      /* the tree as it is at build time */
	const struct cat_package *now_pkg;
};

struct record {
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

struct builder {
	const struct catalog *cat;
	struct cache *cache;
	char *arch;
	enum installer_kind installer;
	char *installer_note;
	char *repository;            /* function images: NULL = docker_repository */
	char *registry;              /* function images: NULL = no push */
	struct build_images *images;
	unsigned build_timeout;
	enum verify_mode verify;
	unsigned scrub_interval;     /* seconds between scrub passes; 0: none */
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
	struct record *records;      /* one per target */
};

static inline size_t target_package(size_t target)
{
	return target / TARGET_KINDS;
}

static inline enum target_kind target_kind_of(size_t target)
{
	return (enum target_kind)(target % TARGET_KINDS);
}

/* Fills key for a target (borrowed strings of the mount-time catalog). */
void target_key(const struct builder *b, size_t target, struct cache_key *key);

/* The target's input hash (and manifest JSON, when manifest_json is not NULL)
 * from a stat walk and what is known of Docker images, without network.
 * *current (may be NULL) is false when that knowledge is not current.
 * On failure *errmsg (may be NULL) gets a one-line reason. */
int target_check_inputs(struct builder *b, size_t target, char hash[SHA256_HEX_LEN + 1],
			char **manifest_json, bool *current, char **errmsg);

/* Identity strings (the non-file inputs) of a target; *current as above. */
int zip_identity(struct builder *b, const struct cat_package *pkg, char **identity, bool *current);
int image_identity(struct builder *b, const struct cat_package *pkg, char **identity,
		   bool *current);

/* Builds one target of the right kind in a worker and publishes it; on
 * success fills *out with the new row. */
int zip_build(struct builder *b, struct build_ctx *ctx, struct cache_entry *out, char **errmsg);
int image_target_build(struct builder *b, struct build_ctx *ctx, struct cache_entry *out,
		       char **errmsg);

/* After the build's programs ran: 0 when the inputs are still those the job
 * started from.  Otherwise the job's hash and manifest are updated to the
 * inputs as they are now, the log names what changed, and 1 is returned
 * (the caller builds once more, or records the build under the new inputs
 * when it already did).  -errno when the inputs cannot be read. */
int target_inputs_moved(struct builder *b, struct build_ctx *ctx, char **errmsg);

/* -ECANCELED (with *errmsg) when the build was cancelled, else 0. */
int build_cancelled(const struct build_ctx *ctx, char **errmsg);

/* The JSON document of a built image (malloc'd, ends in a newline); caller
 * holds b->lock. */
char *image_document(const struct record *rec);

double builder_now_seconds(void);

#endif
