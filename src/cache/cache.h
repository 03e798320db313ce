/*
 * cache.h - the package cache: one SQLite database plus package files.
 *
 * Layout of the cache directory DIR:
 *   DIR/.sebsfs-cache        marker: this folder is a sebsfs cache (see below)
 *   DIR/CACHEDIR.TAG         Cache Directory Tagging spec: backup tools skip DIR
 *   DIR/sebsfs.db            SQLite, WAL mode, schema versioned by PRAGMA user_version
 *   DIR/sebsfs.lock          flock of the process using the cache
 *   DIR/sebsfs.id            a random id of this cache folder (see cache_id)
 *   DIR/packages/<sha256>.zip  published packages (content-addressed, read-only 0444)
 *                            (image rows, kind "image", have no file: the image
 *                            lives in the Docker daemon / registry)
 *   DIR/layers/<key>/        dependency layers (see "Dependency layers" below)
 *   DIR/tmp/                 files being written; emptied by cache_open()
 *   DIR/logs/                build logs (one file per package key, see cache_log_path)
 *   DIR/work/                builder work folders; emptied by cache_open()
 *   DIR/trash/               a tmp/ or work/ that cache_open() could not empty (a
 *                            program of a sebsfs that died still wrote into it),
 *                            moved aside whole; emptied by a later cache_open()
 *
 * Size: what the cache holds locally is the package files under packages/
 * (counted once per file, however many rows share it) and the dependency
 * layers under layers/.  Image rows take no
 * local space but their row: the image lives in Docker, and its JSON
 * document is made from the row.  So cache_lru() and the LRU eviction built
 * on it (-o cache_max, see builder.h) deal in package files and layers.
 *
 * Publishing is crash-safe: the package is written under DIR/tmp, fsynced,
 * renamed into DIR/packages, the directory fsynced, and only then the row
 * commits.  A crash before the commit leaves an unreferenced file that
 * cache_open() removes; it never leaves a partial file under packages/.
 *
 * Which folder is a cache.  cache_open() deletes things in DIR (tmp/, work/,
 * unreferenced files in packages/), so it only works in a folder sebsfs owns:
 * one whose marker file DIR/.sebsfs-cache starts with the line
 * "sebsfs-cache <format>".  cache_open() accepts DIR when it is
 *   - missing: created (0700; missing parents 0755) and marked;
 *   - an empty folder: adopted (marked);
 *   - marked: used as it is.  A marked folder is sebsfs's whatever else it
 *     holds: a missing database or subfolder is recreated empty, and the
 *     sweep then deletes the files in packages/ that no row of the new
 *     database references (so deleting sebsfs.db empties the cache).  Files
 *     outside tmp/, work/, trash/ and packages/ that sebsfs does not know are left
 *     alone;
 *   - a cache of a sebsfs that wrote no marker (DIR/sebsfs.db is an SQLite
 *     file and DIR/packages/ a folder): adopted (marked).
 * Anything else is refused before anything in it is touched or created: a
 * non-empty folder without the marker (-ENOTEMPTY), a marker of a newer
 * format (-EPROTO), a .sebsfs-cache that is not a marker (-EINVAL), a file
 * (-ENOTDIR).  Marking writes DIR/.sebsfs-cache, then DIR/CACHEDIR.TAG when
 * there is none; CACHEDIR.TAG alone does not make a folder a sebsfs cache
 * (other tools write it too).
 *
 * Modes: DIR and its subfolders 0700; sebsfs.db (whose -wal and -shm files
 * SQLite creates with the database's mode), sebsfs.lock and build logs 0600;
 * package files 0444 (inside the 0700 folder).  cache_open() tightens the
 * folders, database files, lock and logs of an existing cache to these modes.
 *
 * Thread safety: every function may be called from any thread; calls are
 * serialised internally on one connection (SQLite statements are short;
 * no lock is held across anything but SQLite and file renames).
 * Errors: 0 or -errno (SQLite failures map to -EIO and are logged once with
 * the SQLite message; a full disk is -ENOSPC, a database found damaged while
 * in use -EUCLEAN: see cache_strerror).
 */
#ifndef SEBSFS_CACHE_H
#define SEBSFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

struct cache;

/* Identity of a package.  kind is "zip" (a package file) or "image" (a
 * container image; see cache_publish_image). */
struct cache_key {
	const char *platform;
	const char *language;
	const char *version;
	const char *arch;
	const char *benchmark;
	const char *kind;
};

/* One row.  Strings are malloc'd; release with cache_entry_clear().
 * Zip rows: has_package when the package file exists; the image fields are
 * NULL/0.  Image rows: has_package when image_id is set; path is NULL, size 0
 * and sha256 empty. */
struct cache_entry {
	/* last good package (has_package == false when none) */
	bool has_package;
	char *input_hash;     /* inputs the good package was built from */
	char *path;           /* absolute path of the package file (zip rows) */
	int64_t size;         /* zip rows */
	char sha256[SHA256_HEX_LEN + 1]; /* zip rows */
	int64_t built_at;     /* unix seconds */
	double build_seconds;
	char *manifest;       /* JSON text of the input manifest of the good package */
	/* last build attempt */
	bool last_failed;     /* the most recent build failed */
	char *last_error;     /* one-line reason of the most recent failure, or NULL */
	char *failed_input_hash; /* inputs of the failed attempt, or NULL */
	/* last good image (image rows only) */
	char *image;          /* local reference "repo:tag" */
	char *image_id;       /* "sha256:..." */
	char *digest;         /* pushed "registry/repo@sha256:...", or NULL */
	char *registry;       /* registry pushed to, or NULL */
	int64_t image_size;   /* bytes, as reported by the daemon */
	/* zip rows with a package: when it was last served, unix ms, as last
	 * recorded (cache_publish, cache_touch); 0 unknown */
	int64_t last_used_ms;
	/* zip rows with a package: the key of the dependency layer it was
	 * assembled from (NULL: none), and whether that layer was found cached */
	char *deps_hash;
	bool deps_reused;
	/* zip rows with a package: its unzipped size in bytes (the sum of its
	 * regular files' uncompressed sizes), -1 when not recorded yet (a
	 * package just published, or one published by an older sebsfs) */
	int64_t unzipped_size;
	/* zip rows with a package: fetched from the remote cache (-o
	 * remote_cache) instead of built here (user.sebs.origin) */
	bool remote;
};

/* The dependency layer a zip package was assembled from (cache_publish). */
struct cache_deps {
	const char *hash;   /* the layer's key */
	bool reused;        /* found cached instead of built by this build */
};

/* Description of a built image for cache_publish_image().  image and
 * image_id are required; digest and registry may be NULL (not pushed). */
struct cache_image_info {
	const char *image;
	const char *image_id;
	const char *digest;
	const char *registry;
	int64_t size;
};

/* The last line cache_open() appends to a build log that ends without a
 * "[sebsfs] build succeeded" or "[sebsfs] build failed" line: its build was
 * cut short (sebsfs crashed or was killed). */
#define CACHE_LOG_INTERRUPTED "[sebsfs] build interrupted: sebsfs stopped before the build ended"

/* Opens the cache in dir (creating, adopting or refusing the folder as
 * described above), checks the database (PRAGMA quick_check: a database that
 * SQLite finds damaged or not a database is renamed DIR/sebsfs.db.damaged,
 * with its WAL, replacing an older one, a warning says so, and an empty one
 * takes its place, so the sweep then removes every package file and all are
 * built again), migrates the schema, tightens modes, removes leftovers
 * (tmp/, work/, package files no row references) and appends
 * CACHE_LOG_INTERRUPTED to every log under logs/ that lacks an end line
 * (reading only each log's tail; a log that already ends with it is left
 * as it is).  On failure returns NULL, *err = -errno, and logs the reason. */
struct cache *cache_open(const char *dir, int *err);

/* Says whether cache_open() would accept dir as a cache folder, without
 * creating or changing anything: 0 when it would (missing, empty, marked or
 * a marker-less sebsfs cache), else the -errno cache_open() would fail with
 * and, in why, a one-line reason (without dir itself) saying what to do.
 * For checking an option before mounting; logs nothing. */
int cache_dir_check(const char *dir, char *why, size_t why_len);
void cache_close(struct cache *c);   /* NULL is a no-op */

const char *cache_dir(const struct cache *c);

/* A random id of this cache folder (CACHE_ID_LEN hex digits), made when the
 * folder is first opened and kept in DIR/sebsfs.id: things a sebsfs leaves
 * outside the folder (Docker containers) are labelled with it, so that the
 * next sebsfs on the same cache can find them after a crash. */
#define CACHE_ID_LEN 32
const char *cache_id(const struct cache *c);

/* Words for an error of this module in a build's reason: strerror, except
 * -EUCLEAN, which says that the database is damaged.  Static string. */
const char *cache_strerror(int err);

/* Below this much free space in the cache folder's filesystem, a failed
 * build is reported as possibly short of room (see cache_space_note). */
#define CACHE_LOW_SPACE_BYTES (1 << 20)

/* For the reason of a failed build: when the cache folder's filesystem has
 * less than CACHE_LOW_SPACE_BYTES or no inodes left, a malloc'd sentence
 * saying so that ends "(No space left on device)"; else NULL.  A program of
 * the build (init.sh, pip) that fails for lack of room only says so in its
 * own output, if at all; this puts it in the reason sebsfs logs.  A full
 * disk seen by sebsfs's own writes (work folder, package, database) is
 * -ENOSPC from the call itself. */
char *cache_space_note(const struct cache *c);

/* Fresh paths inside the cache, malloc'd: a unique temp file name under tmp/
 * (not created) and a unique work folder under work/ (created, empty). */
char *cache_tmp_path(struct cache *c, const char *suffix);
int cache_make_workdir(struct cache *c, char **out);

/* Path of the build log of a key, malloc'd ("DIR/logs/<platform>/<lang>-<ver>-<arch>/<benchmark>.<kind>.log").
 * Pure: touches no file (the log and its folders may not exist).  NULL only
 * for a bad key or ENOMEM. */
char *cache_log_path(struct cache *c, const struct cache_key *key);

/* Opens the build log of key for a new build: creates its parent folders
 * (0700) and opens the log O_WRONLY|O_APPEND|O_CREAT|O_TRUNC|O_CLOEXEC (not
 * following a symlink) with mode 0600, also when it existed with another
 * mode.  Returns the fd, owned by the caller, or -errno (logged). */
int cache_log_open(struct cache *c, const struct cache_key *key);

/* Reads the row of key.  -ENOENT when there is none. */
int cache_get(struct cache *c, const struct cache_key *key, struct cache_entry *out);
void cache_entry_clear(struct cache_entry *e);

/* Publishes a finished package file tmp_path (written by the caller under tmp/,
 * not yet fsynced): fsync, hash, rename to packages/<sha256>.<kind>, commit the
 * row as the new good package, clear last_failed, and unlink the previous
 * package file when no other row references it.  On success fills *out (may be
 * NULL) with the new row.  On failure the previous row and file are untouched
 * and tmp_path is removed.  key->kind "image" is refused (-EINVAL): images are
 * published with cache_publish_image().  deps (may be NULL) is recorded
 * with the row (user.sebs.deps_hash / deps_reused), and so is remote: the
 * package was fetched from the remote cache, not built here. */
int cache_publish(struct cache *c, const struct cache_key *key, const char *tmp_path,
		  const char *input_hash, const char *manifest, double build_seconds,
		  const struct cache_deps *deps, bool remote, struct cache_entry *out);

/* Publishes a built image as the new good image of key (key->kind must be
 * "image"): upserts the row with input_hash, manifest, build_seconds, built_at
 * = now and the fields of *info, and clears last_failed.  No file is involved.
 * -EINVAL for a bad key, kind, or info without image/image_id.  On success
 * fills *out (may be NULL) with the new row; on failure the row is untouched. */
int cache_publish_image(struct cache *c, const struct cache_key *key, const char *input_hash,
			const char *manifest, double build_seconds,
			const struct cache_image_info *info, struct cache_entry *out);

/* Records a failed build attempt; the good package or image (if any) is
 * untouched. */
int cache_record_failure(struct cache *c, const struct cache_key *key,
			 const char *input_hash, const char *error);

/* Forgets the row of key and unlinks its package file when no other row
 * references it (open file descriptors keep reading it).  An image row is
 * only deleted (the image itself is not touched).  Missing row: 0. */
int cache_evict(struct cache *c, const struct cache_key *key);

/* Like cache_evict, but only when key's package is still the file named
 * sha256 (a zip row): -ESTALE, and nothing changes, when the row is gone or
 * has another or no package (it was rebuilt or evicted meanwhile).  *freed
 * (may be NULL) gets the bytes unlinked: the file's size, or 0 when another
 * row still references it.  For LRU eviction, which decides from a listing
 * (cache_lru) that may be out of date by the time it evicts. */
int cache_evict_package(struct cache *c, const struct cache_key *key, const char *sha256,
			int64_t *freed);

/* Records the unzipped size of key's package (see cache_entry), only while
 * it is still the file named sha256: -ESTALE, and nothing changes, when the
 * row is gone or names another or no package.  -EINVAL for an image row.
 * Called after cache_publish, and for rows of older caches, whose
 * unzipped size is read from their package file on first use. */
int cache_set_unzipped_size(struct cache *c, const struct cache_key *key, const char *sha256,
			    int64_t unzipped_size);

/* Wall-clock time in unix milliseconds, the unit of last_used_ms. */
int64_t cache_now_ms(void);

/* Records that key's package was served at used_ms (unix ms).  The recorded
 * value only moves forward; a key without a package, a missing row and an
 * image row are no-ops (0).  One SQLite write: callers keep hot packages'
 * uses in memory and write them back now and then (see builder.c). */
int cache_touch(struct cache *c, const struct cache_key *key, int64_t used_ms);

/* A package file and the rows that reference it (usually one), or a
 * dependency layer (layer set, no keys). */
struct cache_lru_file {
	char layer[SHA256_HEX_LEN + 1]; /* a layer's key; "" for a package file */
	char sha256[SHA256_HEX_LEN + 1];
	int64_t size;           /* bytes, as recorded */
	int64_t last_used_ms;   /* the latest use of any of its rows (unix ms) */
	size_t n_keys;
	struct cache_key *keys; /* strings owned by the list */
};

/* Lists the package files and dependency layers of the cache, least
 * recently used first (a row without a recorded use counts as used when it
 * was built), and their total size in *total (may be NULL).  Image rows are
 * not listed (no file).
 * Release with cache_lru_free. */
int cache_lru(struct cache *c, struct cache_lru_file **files, size_t *n_files, int64_t *total);
void cache_lru_free(struct cache_lru_file *files, size_t n);

/* Dependency layers.  A layer is what a dependency install produced, kept
 * so that packages whose dependency inputs are the same reuse it instead of
 * installing again (see src/builder/deplayer.h for what is in one and what
 * its key covers).  Here it is an opaque folder named by its key (64
 * lowercase hex digits): DIR/layers/<key>/, files read-only, one row each.
 * Publishing is crash-safe like a package's: the folder is written under
 * tmp/ (cache_make_tmpdir), its files and folders fsynced, renamed into
 * layers/, layers/ fsynced, and only then the row commits; cache_open()
 * removes folders without a row and rows without a folder.  A layer folder
 * is immutable once published; eviction deletes the row first, then the
 * folder (open descriptors keep reading). */
struct cache_layer {
	char *path;              /* absolute path of the layer's folder */
	int64_t size;            /* bytes of its files */
	int64_t built_ms;        /* unix ms */
	double build_seconds;
};
void cache_layer_clear(struct cache_layer *l);

/* The layer of key: 0 and *out (may be NULL), or -ENOENT when there is none
 * (a row whose folder vanished is forgotten: -ENOENT), -EINVAL for a bad key. */
int cache_layer_get(struct cache *c, const char *key, struct cache_layer *out);

/* A fresh empty folder under tmp/ (malloc'd path in *out), for a layer
 * being built. */
int cache_make_tmpdir(struct cache *c, char **out);

/* Publishes folder tmp_dir (under tmp/) as the layer of key, as described
 * above; replaces an unreferenced folder of the same name.  On failure
 * tmp_dir is removed and nothing is published. */
int cache_publish_layer(struct cache *c, const char *key, const char *tmp_dir,
			double build_seconds, struct cache_layer *out);

/* Records a use of the layer (only moves forward); a missing layer is a no-op. */
int cache_layer_touch(struct cache *c, const char *key, int64_t used_ms);

/* Forgets the layer and removes its folder; *freed (may be NULL) gets its
 * size.  A missing layer: 0. */
int cache_evict_layer(struct cache *c, const char *key, int64_t *freed);

#endif
