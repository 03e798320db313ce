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
	char *manifest_json;        /* the inputs this build starts from */
	struct waiter *waiters;     /* protected by builder.lock */
	struct job *next;           /* queue link, protected by builder.lock */
};

struct record {
	pthread_mutex_t check_lock;
	struct input_manifest seen;  /* protected by check_lock: last stat of the inputs */
	bool seen_valid;             /* protected by check_lock */
	/* everything below: protected by builder.lock */
	bool loaded;
	char *log_path;
	bool has_package;            /* a good package file / image row exists */
	char *path;                  /* zip: the package file */
	int64_t size;
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

struct builder {
	const struct catalog *cat;
	struct cache *cache;
	char *arch;
	enum installer_kind installer;
	char *installer_note;
	char *repository;            /* function images: NULL = docker_repository */
	char *registry;              /* function images: NULL = no push */
	struct build_images *images;
	pthread_mutex_t lock;
	pthread_cond_t work;         /* signalled when the queue grows or on stop */
	struct job *queue_head, *queue_tail; /* protected by lock */
	bool stopping;               /* protected by lock */
	pthread_t *workers;
	struct docker **clients;     /* one per worker, protected by lock */
	unsigned n_workers;
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

/* Re-checks the target's inputs (used by workers after they resolved images). */
int target_check_inputs(struct builder *b, size_t target, char hash[SHA256_HEX_LEN + 1],
			char **manifest_json);

/* Build of one target of the right kind in a worker.  now/now_pkg: the tree
 * as it is at build time.  On success fills *out with the new row. */
int zip_identity(struct builder *b, const struct cat_package *pkg, char **identity);
int zip_build(struct builder *b, struct job *job, struct docker *client,
	      const struct catalog *now, const struct cat_package *now_pkg, int log_fd,
	      struct cache_entry *out, char **errmsg);

int image_identity(struct builder *b, const struct cat_package *pkg, char **identity);
int image_target_build(struct builder *b, struct job *job, struct docker *client,
		       const struct catalog *now, const struct cat_package *now_pkg, int log_fd,
		       struct cache_entry *out, char **errmsg);
/* true when image_id (may be NULL) is still in the daemon (checked through
 * the short-lived ID cache). */
bool image_target_present(struct builder *b, const char *image_id);
/* The JSON document of a built image (malloc'd, ends in a newline); caller
 * holds b->lock. */
char *image_document(const struct record *rec);

double builder_now_seconds(void);

#endif
