/*
 * target.h - the interface between the job table (builder.c) and the kinds
 * of target it builds: code packages (target_zip.c) and function images
 * (target_image.c).
 *
 * builder.c drives every target through its kind's operations and never
 * names a kind's code; a kind sees only what this header gives it (the
 * settings in target_env, one build's facts in target_build, and two
 * callbacks into the job table), never the job table itself.  So the two no
 * longer call each other in a circle, and a new kind is a new ops table.
 *
 * The operations:
 *   identity   the non-file inputs of a package (builder kind, build and
 *              base image IDs, repository, registry), hashed with its files
 *              into the input hash; must not ask the Docker daemon (request
 *              threads call it), *current says whether what it knows of
 *              images is current;
 *   build      one build in a worker, from the tree as it is now, into a
 *              result nobody sees yet (a temp file, a local image);
 *   publish    commit that result as the target's package: after it, the
 *              cache row names it; fills *out with the row;
 *   result_free releases a result, published or not.
 * A kind whose inputs include a folder besides the benchmark's names it with
 * extra_dir (the image kind: its dockerfiles folder).
 */
#ifndef SEBSFS_TARGET_H
#define SEBSFS_TARGET_H

#include <stdbool.h>
#include <time.h>

#include "buildimage.h"
#include "cache.h"
#include "catalog.h"
#include "pipeline.h"
#include "sizelimits.h"

struct remote_cache;

struct docker;
struct deplayer_store;

/* The builder's settings that targets read (fixed for the mount). */
struct target_env {
	struct cache *cache;
	struct build_images *images;
	enum installer_kind installer;
	const char *installer_note;  /* may be NULL */
	const char *repository;      /* function images: NULL = systems.json's */
	const char *registry;        /* function images: NULL = no push */
	const char *image_tag_prefix;/* function images: NULL = none */
	const char *const *container_labels; /* of build containers, NULL-terminated */
	struct deplayer_store *layers; /* NULL: dep_layers=off */
	const struct size_limits *size_limits;
	enum size_limits_mode size_limits_mode;
	struct remote_cache *remote;  /* -o remote_cache; NULL: none */
};

/* One build of one target, as a worker runs it. */
struct target_build {
	const struct target_env *env;
	struct cache_key key;               /* borrowed strings */
	const struct catalog *now;          /* the tree as it is at build time */
	const struct cat_package *now_pkg;
	const struct cache_entry *previous; /* the last good row (read-only), or NULL */
	struct docker *client;              /* the worker's; NULL when none could be made */
	int log_fd;
	int cancel_fd;                      /* readable once the build is cancelled */
	const struct timespec *deadline;    /* CLOCK_MONOTONIC; NULL: none */
	unsigned timeout;                   /* seconds, for messages */
	double started;                     /* target_now_seconds() at the start */
	/* The inputs the build is recorded under: the job's input hash
	 * (SHA256_HEX_LEN + 1 bytes) and manifest JSON, which the callbacks
	 * below update. */
	char *input_hash;
	char **manifest_json;
	/* Reads the inputs again (after the build image was resolved: the
	 * identity names it).  0 or -errno with *errmsg. */
	int (*recheck_inputs)(struct target_build *tb, char **errmsg);
	/* After the build's programs ran: 0 when the inputs are still those the
	 * build started from; 1 when they moved (hash and manifest are updated,
	 * the log says what changed); -errno when they cannot be read. */
	int (*inputs_moved)(struct target_build *tb, char **errmsg);
	void *job;                          /* the job table's, for the callbacks */
	int package_fd;                     /* out (zip): the published file, read-only; -1 */
};

/* Runs of one build when its inputs keep changing while it runs (see
 * zip_build): the first, and two more from the inputs as they are then. */
#define MAX_BUILD_RUNS 3

/* What a kind's build made, for its publish (opaque to builder.c). */
struct target_result;

struct target_ops {
	const char *name;                   /* "zip", "image": the file suffix */
	int (*identity)(const struct target_env *env, const struct catalog *cat,
			const struct cat_package *pkg, char **identity, bool *current);
	/* malloc'd folder relative to SEBS_ROOT, or NULL (none, or ENOMEM: then
	 * *oom is set) */
	char *(*extra_dir)(const char *platform, const char *language, bool *oom);
	int (*build)(struct target_build *tb, struct target_result **result, char **errmsg);
	int (*publish)(struct target_build *tb, struct target_result *result,
		       struct cache_entry *out, char **errmsg);
	void (*result_free)(struct target_result *result);
};

extern const struct target_ops target_zip_ops;
extern const struct target_ops target_image_ops;

/* The full name pkg's function image is tagged and pushed under (see
 * image_function_name), from cat as it is now; builds nothing. */
int target_image_name(const struct target_env *env, const struct catalog *cat,
		      const struct cat_package *pkg, char **name, char **errmsg);

/* -ECANCELED (with *errmsg) once tb's build is cancelled, else 0. */
int target_cancelled(const struct target_build *tb, char **errmsg);

/* CLOCK_MONOTONIC in seconds, for build durations. */
double target_now_seconds(void);

#endif
