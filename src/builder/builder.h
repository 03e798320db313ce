/*
 * builder.h - the job table: one build at a time per package, up to `jobs`
 * packages in parallel, and the freshness check that decides whether to build.
 *
 * DESIGN.  Each package of the catalog (ever seen during this mount) has a record (lazily loaded from the
 * cache): its last good package, the manifest it was built from, and the job
 * building it now, if any.  builder_ensure() is the only entry point that
 * builds: when the package is fresh it calls back at once, in the caller's
 * thread; otherwise it creates a job (or joins the running one: every caller
 * waiting on a package shares one build) and returns at once; a worker runs
 * the pipeline and then calls every waiter back.  So FUSE request threads
 * never wait for a build.  States: absent -> building -> fresh | failed, and
 * fresh -> stale when an input changes.
 *
 * Request threads never wait on the network or hash a package: they decide
 * "fresh" only from what is known now (the input stat walk, what is known
 * of Docker images, the package file's size).  When that knowledge is not
 * current (an image ID older than its TTL or never seen) or the package has
 * not been verified against its SHA-256 since start-up (-o verify=first),
 * the request joins a job on the check queue: one checker thread refreshes
 * what is known from the daemon (bounded; a daemon that does not answer is
 * remembered, and then what was last known stands), verifies the package
 * and either serves it or moves the job to the build queue.  A package file
 * whose size differs from its row, or whose content no longer hashes to its
 * name, is rebuilt.
 *
 * Builds are bounded: each has a deadline (build_timeout) that ends its
 * programs (their whole process group) and Docker calls; builder_free
 * cancels running builds the same way, so stopping takes seconds.  A
 * cancelled or timed-out build publishes nothing and removes its work
 * folder.  A waiter may leave before its build ends (builder_forget_waiter,
 * for interrupted requests); the build goes on for the cache.
 *
 * Locking: b->lock protects the records' job/state fields and the queues; it
 * is never held across a build, a program, SQLite, a Docker call or a
 * callback.  A record's check_lock serialises freshness checks of that one
 * package (it guards the stat cache manifest), so it is held across the stat
 * walk, the first cache_get and an eviction, never across a build.  trim_lock
 * serialises LRU passes.  Lock order: trim_lock, then check_lock, then
 * b->lock.
 *
 * Size limit (cache_max): after each published package (and in builder_new,
 * for a cache that is already over), the least recently used package files
 * are evicted, the way builder_evict evicts, until the package files total
 * at most cache_max bytes.  Never evicted: the package just built (also
 * when it alone is bigger than cache_max: it is served, a warning is logged,
 * and the next publish evicts it when it is then the least recently used),
 * and any package a job builds or checks.  "Used" means served by an open;
 * uses are noted in memory and written back to the cache now and then (see
 * note_use_locked), and all of them before each pass and in builder_free.
 * Function images take no local space and are never evicted for size.
 */
#ifndef SEBSFS_BUILDER_H
#define SEBSFS_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "catalog.h"
#include "pipeline.h"
#include "remotecache.h"
#include "sebshash.h"
#include "sizelimits.h"

struct builder;

/* When a package file is checked against its SHA-256 (its size is checked on
 * every open): the first time it is served after start-up, on every open,
 * or never. */
enum verify_mode { VERIFY_FIRST, VERIFY_ALWAYS, VERIFY_SIZE };

/* What is built for a package: its code zip, or its function image. */
enum target_kind { TARGET_ZIP = 0, TARGET_IMAGE = 1, TARGET_KINDS = 2 };

struct builder_config {
	const char *arch;            /* default arch the catalog was loaded with */
	const char *repository;      /* function images: NULL = systems.json docker_repository */
	const char *registry;        /* function images: push here; NULL = no push */
	const char *image_tag_prefix;/* function images: SeBS's image_tag_prefix; NULL = none */
	enum installer_kind installer;
	const char *installer_note;  /* why this installer (builder=auto), for build logs; may be NULL */
	unsigned jobs;               /* parallel builds, >= 1 */
	unsigned build_timeout;      /* seconds a build may take; 0: no limit */
	enum verify_mode verify;
	unsigned scrub_interval;     /* seconds between background re-hashes of the
				      * packages served since start-up; 0: none */
	int64_t cache_max;           /* bytes of package files and dependency
				      * layers to keep (LRU eviction); 0: no limit */
	bool no_dep_layers;          /* install dependencies in each work folder
				      * instead of through cached layers (deplayer.h) */
	bool input_watch;            /* skip the walk of inputs that inotify says
				      * did not change (inwatch.h) */
	const struct size_limits *size_limits; /* copied; NULL: none */
	enum size_limits_mode size_limits_mode;
	/* -o remote_cache=REGISTRY/REPOSITORY (remotecache.h); NULL: none,
	 * and no work at all for it on any path */
	const char *remote_cache;
	enum remote_cache_mode remote_cache_mode;
	const char *remote_cache_certs;   /* -o remote_cache_certs; NULL: Docker's */
};

enum package_state { PKG_ABSENT, PKG_FRESH, PKG_STALE, PKG_BUILDING, PKG_FAILED };
const char *package_state_name(enum package_state s);

/* What a waiter is told.  For a zip, fd is an open read-only descriptor of
 * the package (borrowed: dup it to keep it); for an image, document is its
 * JSON document (borrowed).  On failure fd is -1 and document NULL. */
struct builder_result {
	int status;        /* 0 or -errno (-EIO for a failed build) */
	int fd;
	const char *document;
	int64_t size;      /* bytes of the package or of the document */
	char sha256[SHA256_HEX_LEN + 1]; /* zip: the package's digest */
	bool built;        /* true when a build ran for this request */
	bool first;        /* the first waiter told of this build (or a cache hit) */
};

typedef void (*builder_done_fn)(void *ctx, const struct builder_result *res);

/* cat (the mount-time tree; package ids are its indices) and cache are
 * borrowed and must outlive the builder.  Starts the workers: call after
 * fork/daemonize.  NULL + *err on failure. */
struct builder *builder_new(const struct catalog *cat, struct cache *cache,
			    const struct builder_config *cfg, int *err);

/* The SeBS tree changed: cat (loaded from the same root and arch) becomes
 * the tree that freshness checks look at, and the builder owns it.  Each of
 * its packages gets its stable id in cat->packages[i].id: the id its key
 * (platform, runtime folder, benchmark) had before in this mount, or a new
 * one (records are added; ids are never reused).  A package that left the
 * tree keeps its id and record: status and logs still answer, and a build
 * of it fails with "no longer in the tree".  cat stays valid for the caller
 * until its next call or builder_free.  One caller at a time.  0, or -errno
 * (then cat is not taken, though some of its ids may be set). */
int builder_update_catalog(struct builder *b, struct catalog *cat);
/* Stops taking work: new requests and queued ones are answered EIO, running
 * builds are cancelled (their programs and containers stopped within
 * seconds; their waiters answered EIO).  Returns at once; idempotent.  For
 * a mount that went away while builds ran. */
void builder_stop(struct builder *b);
/* builder_stop, then waits for the workers and frees everything. */
void builder_free(struct builder *b);

/* Makes package id fresh, then calls done(ctx, res) exactly once: at once in
 * this thread when it already is (or on an error before any build), else from
 * a worker when the build ends. */
void builder_ensure(struct builder *b, size_t id, enum target_kind kind, builder_done_fn done,
		    void *ctx);

/* Drops the waiter registered with ctx from the running or queued job of the
 * package, if it is still there: then done(ctx) will never be called and
 * the caller answers for itself.  false when it is not there (its callback
 * has run or is about to).  For requests interrupted while they wait. */
bool builder_forget_waiter(struct builder *b, size_t id, enum target_kind kind, void *ctx);

/* What is known of a package, for stat and xattrs.  No build, no network;
 * check_inputs true also runs the freshness check (stats inputs) to tell
 * fresh from stale.  size is that of the last good package this process
 * knows of, also after an eviction (readers may still hold it open). */
struct builder_status {
	enum package_state state;
	bool has_package;
	int64_t size;      /* zip: bytes; image: bytes of its JSON document */
	char sha256[SHA256_HEX_LEN + 1];
	char input_hash[SHA256_HEX_LEN + 1];
	int64_t built_at;
	double build_seconds;
	unsigned builds;   /* builds completed by this process (success or failure);
			    * a package fetched from the remote cache is no build */
	bool remote;       /* zip: fetched from the remote cache (user.sebs.origin) */
	char deps_hash[SHA256_HEX_LEN + 1]; /* zip: its dependency layer's key; "" none */
	bool deps_reused;  /* zip: that layer was cached when the package was built */
	int64_t unzipped_size; /* zip: sum of its regular files' sizes; -1 unknown */
	/* zip past its platform's limit (size_limits mode warn or strict): the
	 * line that says so (sizelimits.h); "" otherwise */
	char size_warning[SIZE_WARNING_MAX];
};
int builder_status(struct builder *b, size_t id, enum target_kind kind, bool check_inputs,
		   struct builder_status *out);

/* SeBS's own hash of the package's sources (sebshash.h), computed now from
 * the current tree: no build, no cache.  out gets 32 hex chars and a NUL.
 * 0, -ENODATA (without a message) when the package left the tree, or
 * -errno with *errmsg (errmsg.h). */
int builder_sebs_hash(struct builder *b, size_t id, char out[SEBS_HASH_HEX_LEN + 1],
		      char **errmsg);

/* The full name ("[<registry>/]<repository>:<tag>") package id's function
 * image is tagged and pushed under, from the tree as it is now; builds
 * nothing.  0 and *name (malloc'd), or -EINVAL with *errmsg (malloc'd: no
 * repository, a tag Docker refuses) or -ENOMEM or -ENOENT (no longer in
 * the tree). */
int builder_image_name(struct builder *b, size_t id, char **name, char **errmsg);

/* The JSON document of a built image, malloc'd; NULL when there is none. */
char *builder_image_document(struct builder *b, size_t id);

/* Path of the package's build log (borrowed, valid for the builder's life). */
const char *builder_log_path(struct builder *b, size_t id, enum target_kind kind);

/* Evicts the package from the cache, then calls done(ctx, 0 or -errno)
 * exactly once: at once, or, for an image (which also loses its local tag,
 * so the next read really rebuilds), from the thread that removed the tag:
 * the caller never waits for the daemon. */
typedef void (*builder_evicted_fn)(void *ctx, int status);
void builder_evict(struct builder *b, size_t id, enum target_kind kind, builder_evicted_fn done,
		   void *ctx);

#endif
