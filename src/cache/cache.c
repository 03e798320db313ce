/*
 * cache.c - the package cache: SQLite rows plus content-addressed package files.
 *
 * This is the only file in sebsfs that includes sqlite3.h; everything else
 * sees the typed calls of cache.h.
 *
 * DESIGN
 *   - One connection, opened without SQLite's own mutex; c->lock serialises
 *     every use of it and of the prepared statements.  Hashing and fsync of a
 *     package being published happen before the lock is taken, so the lock
 *     only covers SQLite, renames, unlinks and one directory fsync.
 *   - Rows store the package path relative to the cache directory
 *     ("packages/<sha256>.<kind>"), so a cache directory can be moved; the
 *     absolute path is rebuilt on read.
 *   - Ordering on publish: rename into packages/, fsync the directory, then
 *     commit the row.  A crash in between leaves an unreferenced file, which
 *     the start-up sweep removes; a row never points at a file that was not
 *     durably in place first.  synchronous=NORMAL is enough: losing the last
 *     commit after a power cut only costs a rebuild.
 *   - A package file may be shared by several rows (identical bytes); it is
 *     unlinked only when no row references it any more, decided under c->lock.
 *   - Image rows (kind "image") describe a container image (local reference,
 *     image ID, pushed digest, registry, size) and never have a file: their
 *     path, size and sha256 are NULL, so the path-based logic (reference
 *     counting, the start-up sweep, the vanished-file check) never sees them.
 *     cache_publish() refuses kind "image" and cache_publish_image() requires
 *     it, and each upsert NULLs the other kind's columns, which keeps that
 *     invariant.  An image row has a package when image_id is set.
 *   - One process owns a cache directory at a time (flock on DIR/sebsfs.lock):
 *     the start-up sweep empties tmp/ and work/, which would destroy another
 *     live instance's builds.
 *
 * Lock order: c->lock is a leaf lock; nothing else is taken while holding it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cache.h"
#include "fsutil.h"
#include "log.h"
#include "walk.h"

/* Highest schema this code understands; bump with a migration step. */
#define CACHE_SCHEMA_VERSION 6
#define CACHE_BUSY_TIMEOUT_MS 10000
#define PACKAGES_SUBDIR "packages"
#define TMP_SUBDIR "tmp"
#define WORK_SUBDIR "work"
#define LAYERS_SUBDIR "layers"
#define TRASH_SUBDIR "trash"  /* scratch folders that could not be emptied */
#define IMAGE_KIND "image"
#define DB_NAME "sebsfs.db"
#define ID_NAME "sebsfs.id"
#define MARKER_NAME ".sebsfs-cache"
/* Format of the marker file; a newer one is refused like a newer schema. */
#define MARKER_FORMAT 1
#define MARKER_PREFIX "sebsfs-cache "
#define CACHEDIR_TAG_NAME "CACHEDIR.TAG"
#define DIR_MODE 0700
#define FILE_MODE 0600
/* A build log line is at most 4 KiB (build_log's buffer); twice that is
 * enough to see the whole last line of any log whose last line matters. */
#define LOG_TAIL_MAX 8192
/* logs/<platform>/<runtime>/<file>: deeper entries are not sebsfs's. */
#define LOG_TREE_DEPTH 3

struct cache {
	char *dir;          /* absolute path of DIR */
	char *packages_dir;
	char *tmp_dir;
	char *logs_dir;
	char *work_dir;
	char *layers_dir;
	int lock_fd;        /* holds the flock on DIR/sebsfs.lock, -1 if none */
	char id[CACHE_ID_LEN + 1];
	atomic_ulong tmp_seq; /* makes cache_tmp_path names unique */

	pthread_mutex_t lock;
	sqlite3 *db;                 /* protected by lock */
	sqlite3_stmt *st_get;        /* protected by lock */
	sqlite3_stmt *st_get_path;   /* protected by lock */
	sqlite3_stmt *st_upsert;     /* protected by lock */
	sqlite3_stmt *st_upsert_image; /* protected by lock */
	sqlite3_stmt *st_fail;       /* protected by lock */
	sqlite3_stmt *st_delete;     /* protected by lock */
	sqlite3_stmt *st_refs;       /* protected by lock */
	sqlite3_stmt *st_clear_path; /* protected by lock */
	sqlite3_stmt *st_touch;      /* protected by lock */
	sqlite3_stmt *st_set_unzipped; /* protected by lock */
	sqlite3_stmt *st_lru;        /* protected by lock */
};

/* v4: dependency layers (DIR/layers/<key>/, see cache.h), one row each. */
#define LAYERS_SCHEMA \
	"CREATE TABLE layers (" \
	" key TEXT PRIMARY KEY," \
	" size INTEGER NOT NULL," \
	" built_ms INTEGER NOT NULL," \
	" build_seconds REAL," \
	" last_used_ms INTEGER NOT NULL" \
	");"

/* The current schema, used as is for a fresh database.  Its column order is
 * exactly what the migration steps below produce from older versions (new
 * columns are only ever appended), so fresh and migrated caches look alike. */
static const char SCHEMA_CURRENT[] =
	"CREATE TABLE packages ("
	" platform TEXT NOT NULL,"
	" language TEXT NOT NULL,"
	" version TEXT NOT NULL,"
	" arch TEXT NOT NULL,"
	" benchmark TEXT NOT NULL,"
	" kind TEXT NOT NULL,"
	" input_hash TEXT,"
	" path TEXT,"                 /* relative to DIR; NULL = no good package */
	" size INTEGER,"
	" sha256 TEXT,"
	" built_at INTEGER,"          /* unix seconds */
	" build_seconds REAL,"
	" manifest TEXT,"
	" last_failed INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT,"
	" failed_input_hash TEXT,"
	/* v2: image rows (kind "image"); NULL for package-file rows */
	" image TEXT,"                /* local reference "repo:tag" */
	" image_id TEXT,"             /* "sha256:..."; NULL = no good image */
	" digest TEXT,"               /* "registry/repo@sha256:...", NULL if not pushed */
	" registry TEXT,"
	" image_size INTEGER,"
	/* v3: when the package was last served (unix ms), for LRU eviction;
	 * NULL for image rows and rows without a package */
	" last_used_ms INTEGER,"
	/* v4: the dependency layer of a zip package (see layers.c), NULL when
	 * it has none; deps_reused 1 when the build found the layer cached */
	" deps_hash TEXT,"
	" deps_reused INTEGER,"
	/* v5: a zip package's unzipped size in bytes (the sum of its regular
	 * files' uncompressed sizes), for size limits; NULL: not known yet */
	" unzipped_size INTEGER,"
	/* v6: where a zip package came from: 'remote' when fetched from the
	 * remote cache (-o remote_cache), NULL when built here */
	" origin TEXT,"
	" PRIMARY KEY (platform, language, version, arch, benchmark, kind)"
	");"
	/* Reference counting of shared package files queries by path. */
	"CREATE INDEX packages_path ON packages(path);"
	LAYERS_SCHEMA;

/* MIGRATIONS[v] brings a database from schema v to v + 1.  Each runs inside
 * the single transaction of migrate(), together with the user_version bump,
 * so a failure leaves the database exactly at its old version. */
static const char MIGRATE_V1_TO_V2[] =
	"ALTER TABLE packages ADD COLUMN image TEXT;"
	"ALTER TABLE packages ADD COLUMN image_id TEXT;"
	"ALTER TABLE packages ADD COLUMN digest TEXT;"
	"ALTER TABLE packages ADD COLUMN registry TEXT;"
	"ALTER TABLE packages ADD COLUMN image_size INTEGER;";

/* A package served before v3 counts as last used when it was built. */
static const char MIGRATE_V2_TO_V3[] =
	"ALTER TABLE packages ADD COLUMN last_used_ms INTEGER;"
	"UPDATE packages SET last_used_ms = built_at * 1000"
	" WHERE path IS NOT NULL AND built_at IS NOT NULL AND kind <> '" IMAGE_KIND "';";

static const char MIGRATE_V3_TO_V4[] =
	"ALTER TABLE packages ADD COLUMN deps_hash TEXT;"
	"ALTER TABLE packages ADD COLUMN deps_reused INTEGER;"
	LAYERS_SCHEMA;

/* Rows of older caches learn their unzipped size when a builder next loads
 * them (see cache_set_unzipped_size): no rebuild. */
static const char MIGRATE_V4_TO_V5[] =
	"ALTER TABLE packages ADD COLUMN unzipped_size INTEGER;";

/* Packages of older caches were all built here. */
static const char MIGRATE_V5_TO_V6[] =
	"ALTER TABLE packages ADD COLUMN origin TEXT;";

static const char *const MIGRATIONS[CACHE_SCHEMA_VERSION] = {
	[1] = MIGRATE_V1_TO_V2,
	[2] = MIGRATE_V2_TO_V3,
	[3] = MIGRATE_V3_TO_V4,
	[4] = MIGRATE_V4_TO_V5,
	[5] = MIGRATE_V5_TO_V6,
};

#define PKG_COLS "input_hash, path, size, sha256, built_at, build_seconds, manifest," \
		 " last_failed, last_error, failed_input_hash," \
		 " image, image_id, digest, registry, image_size, last_used_ms," \
		 " deps_hash, deps_reused, unzipped_size, origin"
#define KEY_WHERE "platform = ?1 AND language = ?2 AND version = ?3 AND arch = ?4" \
		  " AND benchmark = ?5 AND kind = ?6"

static const char SQL_GET[] = "SELECT " PKG_COLS " FROM packages WHERE " KEY_WHERE;
static const char SQL_GET_PATH[] = "SELECT path FROM packages WHERE " KEY_WHERE;
static const char SQL_UPSERT[] =
	"INSERT INTO packages (platform, language, version, arch, benchmark, kind, " PKG_COLS ")"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 0, NULL, NULL,"
	" NULL, NULL, NULL, NULL, NULL, ?14, ?15, ?16, NULL, ?17)"
	" ON CONFLICT (platform, language, version, arch, benchmark, kind) DO UPDATE SET"
	" input_hash = excluded.input_hash, path = excluded.path, size = excluded.size,"
	" sha256 = excluded.sha256, built_at = excluded.built_at,"
	" build_seconds = excluded.build_seconds, manifest = excluded.manifest,"
	" last_failed = 0, last_error = NULL, failed_input_hash = NULL,"
	" image = NULL, image_id = NULL, digest = NULL, registry = NULL, image_size = NULL,"
	" last_used_ms = excluded.last_used_ms, deps_hash = excluded.deps_hash,"
	" deps_reused = excluded.deps_reused, unzipped_size = NULL, origin = excluded.origin";
/* ?7 input_hash, ?8 built_at, ?9 build_seconds, ?10 manifest, ?11 image,
 * ?12 image_id, ?13 digest, ?14 registry, ?15 image_size; no file columns. */
static const char SQL_UPSERT_IMAGE[] =
	"INSERT INTO packages (platform, language, version, arch, benchmark, kind, " PKG_COLS ")"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL, NULL, ?8, ?9, ?10, 0, NULL, NULL,"
	" ?11, ?12, ?13, ?14, ?15, NULL, NULL, NULL, NULL, NULL)"
	" ON CONFLICT (platform, language, version, arch, benchmark, kind) DO UPDATE SET"
	" input_hash = excluded.input_hash, path = NULL, size = NULL, sha256 = NULL,"
	" built_at = excluded.built_at, build_seconds = excluded.build_seconds,"
	" manifest = excluded.manifest,"
	" last_failed = 0, last_error = NULL, failed_input_hash = NULL,"
	" image = excluded.image, image_id = excluded.image_id, digest = excluded.digest,"
	" registry = excluded.registry, image_size = excluded.image_size, last_used_ms = NULL,"
	" deps_hash = NULL, deps_reused = NULL, unzipped_size = NULL, origin = NULL";
static const char SQL_FAIL[] =
	"INSERT INTO packages (platform, language, version, arch, benchmark, kind,"
	" last_failed, last_error, failed_input_hash)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)"
	" ON CONFLICT (platform, language, version, arch, benchmark, kind) DO UPDATE SET"
	" last_failed = 1, last_error = excluded.last_error,"
	" failed_input_hash = excluded.failed_input_hash";
static const char SQL_DELETE[] = "DELETE FROM packages WHERE " KEY_WHERE;
/* Only ever moves forward: a late write of an older use must not make a
 * package look less recently used than it is. */
static const char SQL_TOUCH[] =
	"UPDATE packages SET last_used_ms = ?7 WHERE " KEY_WHERE
	" AND path IS NOT NULL AND (last_used_ms IS NULL OR last_used_ms < ?7)";
/* Package files, least recently used first; the rows of one file (identical
 * bytes built for several keys) are adjacent and share the latest use of any
 * of them, since the file only goes when all of them go. */
static const char SQL_LRU[] =
	"SELECT platform, language, version, arch, benchmark, kind, sha256, size,"
	" MAX(COALESCE(last_used_ms, built_at * 1000, 0)) OVER (PARTITION BY path) AS used"
	" FROM packages WHERE path IS NOT NULL AND kind <> '" IMAGE_KIND "'"
	" ORDER BY used, path, platform, language, version, arch, benchmark, kind";
/* ?7 sha256, ?8 bytes: only while the row still names that package. */
static const char SQL_SET_UNZIPPED[] =
	"UPDATE packages SET unzipped_size = ?8 WHERE " KEY_WHERE
	" AND path IS NOT NULL AND sha256 = ?7";
static const char SQL_REFS[] = "SELECT count(*) FROM packages WHERE path = ?1";
static const char SQL_CLEAR_PATH[] =
	"UPDATE packages SET input_hash = NULL, path = NULL, size = NULL, sha256 = NULL,"
	" built_at = NULL, build_seconds = NULL, manifest = NULL, last_used_ms = NULL,"
	" deps_hash = NULL, deps_reused = NULL, unzipped_size = NULL, origin = NULL"
	" WHERE path = ?1 AND kind <> '" IMAGE_KIND "'";

/* Logs a SQLite failure with its message and maps it to -errno.  A full
 * disk is -ENOSPC and says so in the words of every other write that fails
 * for lack of room ("database or disk is full" alone is easily misread). */
static int db_err(sqlite3 *db, int rc, const char *what)
{
	if ((rc & 0xff) == SQLITE_FULL) {
		log_err("cache: %s: %s (SQLite: %s)", what, strerror(ENOSPC),
			db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		return -ENOSPC;
	}
	if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
		/* Damaged while mounted (start-up checks it): what is in memory
		 * and the package files stay good, writes fail until a restart
		 * sets the file aside. */
		log_err("cache: %s: the cache database %s is damaged (%s); sebsfs moves it aside"
			" and starts an empty one when it next starts", what,
			db && sqlite3_db_filename(db, "main") ? sqlite3_db_filename(db, "main") : DB_NAME,
			db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		return -EUCLEAN;
	}
	log_err("cache: %s: %s (%s)", what, db ? sqlite3_errmsg(db) : "no connection",
		sqlite3_errstr(rc));
	return (rc & 0xff) == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

static void stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Key strings become path components (log paths, package names), so they
 * must not be able to climb out of the cache directory. */
static bool component_ok(const char *s)
{
	return s && *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static bool is_image_kind(const struct cache_key *k)
{
	return strcmp(k->kind, IMAGE_KIND) == 0;
}

static bool key_ok(const struct cache_key *k)
{
	return k && component_ok(k->platform) && component_ok(k->language) &&
	       component_ok(k->version) && component_ok(k->arch) &&
	       component_ok(k->benchmark) && component_ok(k->kind);
}

static int bind_key(sqlite3_stmt *st, const struct cache_key *k)
{
	const char *parts[] = { k->platform, k->language, k->version,
				k->arch, k->benchmark, k->kind };
	for (int i = 0; i < 6; i++) {
		int rc = sqlite3_bind_text(st, i + 1, parts[i], -1, SQLITE_STATIC);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

static char *abs_path(const struct cache *c, const char *rel)
{
	return path_join(c->dir, rel);
}

/* Copies a nullable text column; *err set to -ENOMEM on allocation failure. */
static char *dup_col(sqlite3_stmt *st, int col, int *err)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	if (!t)
		return NULL;
	char *s = strdup((const char *)t);
	if (!s)
		*err = -ENOMEM;
	return s;
}

/* Number of rows referencing rel_path, or -errno. */
static int refs_locked(struct cache *c, const char *rel_path)
{
	sqlite3_stmt *st = c->st_refs;
	int ret;
	int rc = sqlite3_bind_text(st, 1, rel_path, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ret = sqlite3_column_int(st, 0);
	else
		ret = db_err(c->db, rc, "counting package references");
	stmt_done(st);
	return ret;
}

/* Unlinks a package file once no row references it; returns the bytes that
 * freed (0 when the file stays or was not there).  Failures only cost disk
 * space until the next start-up sweep, so they are logged, not returned. */
static int64_t unlink_if_unreferenced_locked(struct cache *c, const char *rel_path)
{
	if (!rel_path || refs_locked(c, rel_path) != 0)
		return 0;
	char *p = abs_path(c, rel_path);
	struct stat st;
	int64_t freed = 0;
	if (p && lstat(p, &st) == 0)
		freed = st.st_size;
	if (p && unlink(p) < 0) {
		if (errno != ENOENT)
			log_warn("cache: cannot remove %s: %s", p, strerror(errno));
		freed = 0;
	}
	free(p);
	return freed;
}

/* Forgets the package of every row pointing at rel_path (its file is gone). */
static int clear_path_locked(struct cache *c, const char *rel_path)
{
	sqlite3_stmt *st = c->st_clear_path;
	int ret = 0;
	int rc = sqlite3_bind_text(st, 1, rel_path, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		ret = db_err(c->db, rc, "clearing a missing package");
	stmt_done(st);
	return ret;
}

/* Reads a row; the package is reported absent (and its columns cleared) when
 * the file has disappeared, so callers never get a dangling path.  Image rows
 * have no file: their package is the image, present when image_id is set. */
static int get_locked(struct cache *c, const struct cache_key *key, struct cache_entry *out)
{
	sqlite3_stmt *st = c->st_get;
	struct cache_entry e = { 0 };
	char *rel = NULL;
	int ret = 0;

	int rc = bind_key(st, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = -ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = db_err(c->db, rc, "reading a package row");
		goto out;
	}
	rel = dup_col(st, 1, &ret);
	e.input_hash = dup_col(st, 0, &ret);
	e.size = sqlite3_column_int64(st, 2);
	const unsigned char *sha = sqlite3_column_text(st, 3);
	if (sha)
		snprintf(e.sha256, sizeof(e.sha256), "%s", (const char *)sha);
	e.built_at = sqlite3_column_int64(st, 4);
	e.build_seconds = sqlite3_column_double(st, 5);
	e.manifest = dup_col(st, 6, &ret);
	e.last_failed = sqlite3_column_int(st, 7) != 0;
	e.last_error = dup_col(st, 8, &ret);
	e.failed_input_hash = dup_col(st, 9, &ret);
	e.image = dup_col(st, 10, &ret);
	e.image_id = dup_col(st, 11, &ret);
	e.digest = dup_col(st, 12, &ret);
	e.registry = dup_col(st, 13, &ret);
	e.image_size = sqlite3_column_int64(st, 14);
	e.last_used_ms = sqlite3_column_int64(st, 15);
	e.deps_hash = dup_col(st, 16, &ret);
	e.deps_reused = sqlite3_column_int(st, 17) != 0;
	e.unzipped_size = sqlite3_column_type(st, 18) == SQLITE_NULL ? -1
								    : sqlite3_column_int64(st, 18);
	const unsigned char *origin = sqlite3_column_text(st, 19);
	e.remote = origin && strcmp((const char *)origin, "remote") == 0;
	if (ret)
		goto out;
	stmt_done(st);

	if (is_image_kind(key)) {
		/* No file to check; path/size/sha256 are NULL by construction. */
		e.has_package = e.image_id != NULL;
	} else if (rel) {
		e.path = abs_path(c, rel);
		if (!e.path) {
			ret = -ENOMEM;
			goto out;
		}
		if (!path_is_file(e.path)) {
			log_warn("cache: package %s vanished; treating %s/%s-%s-%s/%s as unbuilt",
				 e.path, key->platform, key->language, key->version,
				 key->arch, key->benchmark);
			ret = clear_path_locked(c, rel);
			if (ret)
				goto out;
			free(e.input_hash);
			free(e.path);
			free(e.manifest);
			free(e.deps_hash);
			e.input_hash = e.path = e.manifest = e.deps_hash = NULL;
			e.deps_reused = false;
			e.remote = false;
			e.size = 0;
			e.sha256[0] = '\0';
			e.built_at = 0;
			e.build_seconds = 0;
			e.last_used_ms = 0;
			e.unzipped_size = -1;
		} else {
			e.has_package = true;
		}
	}
out:
	stmt_done(st);
	free(rel);
	if (ret == 0 && out)
		*out = e;
	else
		cache_entry_clear(&e);
	return ret;
}

/* Path (relative) of the key's current package, or NULL; -errno on failure. */
static int get_path_locked(struct cache *c, const struct cache_key *key, char **rel)
{
	sqlite3_stmt *st = c->st_get_path;
	int ret = 0;
	*rel = NULL;
	int rc = bind_key(st, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*rel = dup_col(st, 0, &ret);
	else if (rc != SQLITE_DONE)
		ret = db_err(c->db, rc, "reading a package path");
	stmt_done(st);
	return ret;
}

static int exec_sql(sqlite3 *db, const char *sql, const char *what)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : db_err(db, rc, what);
}

static int pragma_int(sqlite3 *db, const char *sql, int *val)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		int ret = db_err(db, rc, sql);
		sqlite3_finalize(st);
		return ret;
	}
	*val = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* Brings the schema to CACHE_SCHEMA_VERSION; refuses newer databases so an
 * old sebsfs never scribbles over a layout it does not understand. */
static int migrate(sqlite3 *db, const char *db_path)
{
	int ver = 0, ret;

	/* IMMEDIATE: a second process opening a fresh cache waits here instead
	 * of racing on CREATE TABLE. */
	if ((ret = exec_sql(db, "BEGIN IMMEDIATE", "starting schema migration")))
		return ret;
	if ((ret = pragma_int(db, "PRAGMA user_version", &ver)))
		goto rollback;
	if (ver > CACHE_SCHEMA_VERSION) {
		log_err("cache: %s has schema version %d, newer than this sebsfs supports (%d);"
			" use a newer sebsfs or another cache directory", db_path, ver,
			CACHE_SCHEMA_VERSION);
		ret = -EPROTO;
		goto rollback;
	}
	if (ver < 1) {
		/* Fresh database: created directly at the current version. */
		if ((ret = exec_sql(db, SCHEMA_CURRENT, "creating the schema")))
			goto rollback;
	} else {
		for (int v = ver; v < CACHE_SCHEMA_VERSION; v++) {
			char what[64];
			snprintf(what, sizeof(what), "migrating schema v%d to v%d", v, v + 1);
			if (!MIGRATIONS[v]) { /* a version bump without its step */
				log_err("cache: %s: no migration from schema v%d", db_path, v);
				ret = -EPROTO;
				goto rollback;
			}
			log_info("cache: %s: %s", db_path, what);
			if ((ret = exec_sql(db, MIGRATIONS[v], what)))
				goto rollback;
		}
	}
	if (ver != CACHE_SCHEMA_VERSION) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", CACHE_SCHEMA_VERSION);
		if ((ret = exec_sql(db, sql, "setting schema version")))
			goto rollback;
	}
	return exec_sql(db, "COMMIT", "committing schema migration");
rollback:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

static int prepare(struct cache *c, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
	return rc == SQLITE_OK ? 0 : db_err(c->db, rc, "preparing a statement");
}

/* Empties a scratch directory (tmp/ or work/) and recreates it.  A crashed
 * sebsfs may have left a program that still writes into work/: its build
 * container runs until the checker's sweep removes it, which is after
 * start-up.  Such a folder cannot be emptied, and refusing to start would
 * keep the mount down until that program ends; so the folder is moved whole
 * into DIR/trash/ (the writer follows the rename), a fresh one is made, and
 * the trash is emptied at a later start (empty_trash). */
static int reset_dir(struct cache *c, const char *dir, const char *name)
{
	int ret = rm_rf(dir);
	if (ret && ret != -ENOMEM) {
		char *trash = path_join(c->dir, TRASH_SUBDIR);
		char *aside = trash ? str_printf("%s/%s.%lld.%ld", trash, name,
						 (long long)time(NULL), (long)getpid()) : NULL;
		int moved = aside ? mkdir_p(trash, DIR_MODE) : -ENOMEM;
		if (moved == 0 && rename(dir, aside) < 0)
			moved = -errno;
		if (moved == 0)
			log_warn("cache: cannot empty %s (%s; a program of a sebsfs that died may"
				 " still write into it): moved it to %s, emptied at a later start",
				 dir, strerror(-ret), aside);
		ret = moved == 0 ? 0 : ret;
		free(trash);
		free(aside);
	}
	if (ret == 0)
		ret = mkdir_p(dir, DIR_MODE);
	if (ret)
		log_err("cache: cannot empty %s: %s", dir, strerror(-ret));
	return ret;
}

/* Empties DIR/trash/ (what reset_dir moved aside at an earlier start); what
 * is still in use stays for the next start. */
static void empty_trash(struct cache *c)
{
	char *trash = path_join(c->dir, TRASH_SUBDIR);
	int ret = trash ? rm_rf(trash) : -ENOMEM;
	if (ret)
		log_warn("cache: cannot empty %s yet: %s (tried again at the next start)",
			 trash ? trash : TRASH_SUBDIR, strerror(-ret));
	free(trash);
}

/* Start-up sweep of packages/: forget rows whose file is gone, then delete
 * files no row references (leftovers of a crash between rename and commit,
 * or of an unlink that failed). */
static int sweep_packages(struct cache *c)
{
	sqlite3_stmt *st = NULL;
	char **missing = NULL, **names = NULL;
	size_t n_missing = 0, cap = 0, n_names = 0;
	int ret, rc;

	/* Image rows have no file (path is NULL); the kind test says so twice. */
	ret = prepare(c, "SELECT DISTINCT path FROM packages WHERE path IS NOT NULL"
		      " AND kind <> '" IMAGE_KIND "'", &st);
	if (ret)
		return ret;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *rel = (const char *)sqlite3_column_text(st, 0);
		char *p = abs_path(c, rel);
		if (!p) {
			ret = -ENOMEM;
			goto out;
		}
		bool ok = path_is_file(p);
		free(p);
		if (ok)
			continue;
		if (n_missing == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			char **m = realloc(missing, ncap * sizeof(*m));
			if (!m) {
				ret = -ENOMEM;
				goto out;
			}
			missing = m;
			cap = ncap;
		}
		if (!(missing[n_missing] = strdup(rel))) {
			ret = -ENOMEM;
			goto out;
		}
		n_missing++;
	}
	if (rc != SQLITE_DONE) {
		ret = db_err(c->db, rc, "listing package paths");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;

	for (size_t i = 0; i < n_missing; i++) {
		log_warn("cache: package file %s/%s is missing; its rows now have no package",
			 c->dir, missing[i]);
		if ((ret = clear_path_locked(c, missing[i])))
			goto out;
	}

	if ((ret = list_dir_sorted(c->packages_dir, &names, &n_names))) {
		log_err("cache: cannot list %s: %s", c->packages_dir, strerror(-ret));
		goto out;
	}
	for (size_t i = 0; i < n_names; i++) {
		char *rel = str_printf(PACKAGES_SUBDIR "/%s", names[i]);
		if (!rel) {
			ret = -ENOMEM;
			goto out;
		}
		int refs = refs_locked(c, rel);
		if (refs == 0) {
			char *p = abs_path(c, rel);
			int r = p ? rm_rf(p) : -ENOMEM;
			if (r)
				log_warn("cache: cannot remove stale %s: %s", p ? p : rel,
					 strerror(-r));
			else
				log_debug("cache: removed unreferenced %s", p);
			free(p);
		}
		free(rel);
		if (refs < 0) {
			ret = refs;
			goto out;
		}
	}
out:
	sqlite3_finalize(st);
	for (size_t i = 0; i < n_missing; i++)
		free(missing[i]);
	free(missing);
	str_list_free(names, n_names);
	return ret;
}

static const char MARKER_TEXT[] =
	MARKER_PREFIX "1\n"
	"# This folder is a sebsfs package cache.  sebsfs empties its tmp/ and\n"
	"# work/ and deletes unreferenced files in packages/ when it starts.\n";

static const char CACHEDIR_TAG_TEXT[] =
	"Signature: 8a477f597d28d172789f06886806bc55\n"
	"# This file is a cache directory tag created by sebsfs.\n"
	"# For information about cache directory tags, see:\n"
	"#\thttps://bford.info/cachedir/\n";

/* What a folder is, as far as cache_open() is concerned. */
enum dir_state { DIR_MISSING, DIR_EMPTY, DIR_MARKED, DIR_LEGACY };

/* 1 when path is a marker file, 0 when there is none, else -errno with why. */
static int read_marker(const char *path, char *why, size_t why_len)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return 0;
		snprintf(why, why_len, MARKER_NAME ": %s", e == ELOOP ?
			 "a symbolic link, not a sebsfs marker; move it away if this is no sebsfs cache" :
			 strerror(e));
		return e == ELOOP ? -EINVAL : -e;
	}
	struct stat st;
	ssize_t n = -1;
	int e = 0;
	if (fstat(fd, &st) < 0)
		e = errno;
	else if (S_ISREG(st.st_mode) && (n = read(fd, buf, sizeof(buf) - 1)) < 0)
		e = errno;
	close(fd);
	if (e) {
		snprintf(why, why_len, MARKER_NAME ": %s", strerror(e));
		return -e;
	}
	char *end = NULL;
	unsigned long format = 0;
	if (n > 0) {
		buf[n] = '\0';
		if (strncmp(buf, MARKER_PREFIX, strlen(MARKER_PREFIX)) == 0) {
			const char *num = buf + strlen(MARKER_PREFIX);
			errno = 0;
			if (*num >= '0' && *num <= '9')
				format = strtoul(num, &end, 10);
			if (errno || (end && *end != '\n' && *end != '\0'))
				end = NULL;
		}
	}
	if (!end || format < 1) {
		snprintf(why, why_len, "its " MARKER_NAME " is not a sebsfs marker (first line"
			 " \"" MARKER_PREFIX "%d\" expected); use another folder", MARKER_FORMAT);
		return -EINVAL;
	}
	if (format > MARKER_FORMAT) {
		snprintf(why, why_len, "marked as a cache of a newer sebsfs (marker format %lu,"
			 " this sebsfs knows %d); use a newer sebsfs or another folder",
			 format, MARKER_FORMAT);
		return -EPROTO;
	}
	return 1;
}

/* 1 when dir has no entries, 0 when it has some, -errno on failure. */
static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int ret = 1;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			ret = 0;
			break;
		}
	}
	if (ret == 1 && errno)
		ret = -errno;
	closedir(d);
	return ret;
}

/* A cache written by a sebsfs that made no marker: an SQLite database file
 * next to a packages/ folder.  Checking the file's header keeps a folder
 * that merely has a file of that name from passing. */
static bool is_legacy_cache(const char *dir)
{
	static const char sqlite_magic[16] = "SQLite format 3";
	char *db = path_join(dir, DB_NAME);
	char *pkgs = path_join(dir, PACKAGES_SUBDIR);
	bool ok = false;
	struct stat st;
	if (db && pkgs && lstat(pkgs, &st) == 0 && S_ISDIR(st.st_mode)) {
		int fd = open(db, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		char head[16];
		if (fd >= 0) {
			ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
			     read(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
			     memcmp(head, sqlite_magic, sizeof(head)) == 0;
			close(fd);
		}
	}
	free(db);
	free(pkgs);
	return ok;
}

/* Classifies dir, reading only: a dir_state, or -errno with why filled. */
static int classify_dir(const char *dir, char *why, size_t why_len)
{
	struct stat st;
	if (stat(dir, &st) < 0) {
		int e = errno;
		if (e == ENOENT)
			return DIR_MISSING;
		snprintf(why, why_len, "%s", strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, why_len, "not a folder");
		return -ENOTDIR;
	}
	char *marker = path_join(dir, MARKER_NAME);
	if (!marker) {
		snprintf(why, why_len, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	int ret = read_marker(marker, why, why_len);
	free(marker);
	if (ret < 0)
		return ret;
	if (ret == 1)
		return DIR_MARKED;
	if ((ret = dir_is_empty(dir)) < 0) {
		snprintf(why, why_len, "%s", strerror(-ret));
		return ret;
	}
	if (ret == 1)
		return DIR_EMPTY;
	if (is_legacy_cache(dir))
		return DIR_LEGACY;
	snprintf(why, why_len, "not empty and not a sebsfs cache (no " MARKER_NAME " marker);"
		 " sebsfs deletes files in its cache folder, so it only takes a missing or empty"
		 " folder or a cache it marked: give another folder");
	return -ENOTEMPTY;
}

int cache_dir_check(const char *dir, char *why, size_t why_len)
{
	char scratch[1];
	if (!why || why_len == 0) {
		why = scratch;
		why_len = sizeof(scratch);
	}
	why[0] = '\0';
	if (!dir || !*dir) {
		snprintf(why, why_len, "no folder given");
		return -EINVAL;
	}
	int state = classify_dir(dir, why, why_len);
	return state < 0 ? state : 0;
}

/* Writes the marker, then a CACHEDIR.TAG unless one exists.  The marker
 * goes first: a crash in between leaves a marked folder, not an unmarked
 * non-empty one that the next start would refuse. */
static int mark_dir(const char *dir)
{
	char *marker = path_join(dir, MARKER_NAME);
	char *tag = path_join(dir, CACHEDIR_TAG_NAME);
	int ret = marker && tag ? 0 : -ENOMEM;
	if (ret == 0 && (ret = write_file_atomic(marker, MARKER_TEXT, strlen(MARKER_TEXT))))
		log_err("cache: cannot write %s: %s", marker, strerror(-ret));
	if (ret == 0 && !path_exists(tag) &&
	    (ret = write_file_atomic(tag, CACHEDIR_TAG_TEXT, strlen(CACHEDIR_TAG_TEXT))))
		log_err("cache: cannot write %s: %s", tag, strerror(-ret));
	free(marker);
	free(tag);
	return ret;
}

/* Makes dir a marked cache folder, or refuses it untouched (see cache.h). */
static int claim_dir(const char *dir)
{
	char why[512] = "";
	int state = classify_dir(dir, why, sizeof(why));
	if (state == DIR_MISSING) {
		char *path = strdup(dir);
		if (!path)
			return -ENOMEM;
		size_t len = strlen(path);
		while (len > 1 && path[len - 1] == '/')
			path[--len] = '\0';
		char *slash = strrchr(path, '/');
		int ret = 0;
		if (slash && slash != path) {
			*slash = '\0';
			ret = mkdir_p(path, 0755);
			*slash = '/';
		}
		/* Only the folder itself is the cache: it alone gets DIR_MODE. */
		if (ret == 0 && mkdir(path, DIR_MODE) < 0)
			ret = -errno;
		free(path);
		if (ret == 0) {
			log_debug("cache: created %s", dir);
			return mark_dir(dir);
		}
		if (ret != -EEXIST) {
			log_err("cache: cannot create %s: %s", dir, strerror(-ret));
			return ret;
		}
		/* Created meanwhile by someone else: judge what is there now. */
		state = classify_dir(dir, why, sizeof(why));
		if (state == DIR_MISSING)
			state = -ENOENT;
	}
	if (state < 0) {
		log_err("cache: %s: %s", dir, why[0] ? why : strerror(-state));
		return state;
	}
	if (state == DIR_EMPTY)
		log_info("cache: %s is empty: making it a sebsfs cache", dir);
	else if (state == DIR_LEGACY)
		log_info("cache: %s is a cache of an older sebsfs: marking it", dir);
	return state == DIR_MARKED ? 0 : mark_dir(dir);
}

/* Sets the mode of an existing path to mode; a missing path is fine.  A
 * failure is only logged: the cache works without it (e.g. on filesystems
 * without modes), it is just less private. */
static void tighten_mode(const char *path, mode_t mode)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno != ENOENT)
			log_warn("cache: cannot stat %s: %s", path, strerror(errno));
		return;
	}
	if (S_ISLNK(st.st_mode) || (st.st_mode & 07777) == mode)
		return;
	if (chmod(path, mode) < 0)
		log_warn("cache: cannot set the mode of %s to %04o: %s", path, (unsigned)mode,
			 strerror(errno));
}

/* Older caches were made 0755/0644: the folder, its database (with SQLite's
 * side files) and lock are set to the modes of cache.h; logs are done by
 * finish_logs(). */
static void tighten_modes(struct cache *c, const char *db_path)
{
	const char *dirs[] = { c->dir, c->packages_dir, c->logs_dir };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		tighten_mode(dirs[i], DIR_MODE);
	const char *suffixes[] = { "", "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char *p = str_printf("%s%s", db_path, suffixes[i]);
		if (p)
			tighten_mode(p, FILE_MODE);
		free(p);
	}
	char *lock = path_join(c->dir, "sebsfs.lock");
	if (lock)
		tighten_mode(lock, FILE_MODE);
	free(lock);
}

/* Creates the database file with FILE_MODE before SQLite opens it, since
 * SQLite creates files with 0644 and gives -wal and -shm the database's mode. */
static int create_db_file(const char *db_path)
{
	int fd = open(db_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, FILE_MODE);
	if (fd < 0) {
		int e = errno;
		log_err("cache: cannot open %s: %s", db_path, strerror(e));
		return -e;
	}
	close(fd);
	return 0;
}

/* Whether the database is damaged: 1 with the reason in why, 0 when
 * PRAGMA quick_check finds nothing, or -errno (logged) when it cannot
 * tell (a read error of the disk is no reason to throw the cache away). */
static int db_damaged(sqlite3 *db, char *why, size_t why_len)
{
	sqlite3_stmt *st = NULL;
	int ret = 0;
	int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
		snprintf(why, why_len, "%s", sqlite3_errmsg(db));
		ret = 1;
	} else if (rc != SQLITE_ROW) {
		ret = db_err(db, rc, "checking the database");
	} else {
		const char *res = (const char *)sqlite3_column_text(st, 0);
		if (!res || strcmp(res, "ok") != 0) {
			snprintf(why, why_len, "%s", res ? res : "quick_check gave no answer");
			ret = 1;
		}
	}
	sqlite3_finalize(st);
	return ret;
}

/* Moves a damaged database and its WAL aside (DIR/sebsfs.db.damaged,
 * replacing an older one) and drops its shared-memory index: a WAL left
 * next to a new database would be replayed into it. */
static int set_db_aside(const char *db_path, const char *why)
{
	static const char *const suffixes[] = { "", "-wal" };
	int ret = 0;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]) && ret == 0; i++) {
		char *from = str_printf("%s%s", db_path, suffixes[i]);
		char *to = str_printf("%s.damaged%s", db_path, suffixes[i]);
		if (!from || !to)
			ret = -ENOMEM;
		else if (rename(from, to) < 0 && errno != ENOENT) {
			ret = -errno;
			log_err("cache: cannot move the damaged database %s aside: %s", from,
				strerror(errno));
		}
		free(from);
		free(to);
	}
	char *shm = str_printf("%s-shm", db_path);
	if (!shm)
		ret = ret ? ret : -ENOMEM;
	else if (unlink(shm) < 0 && errno != ENOENT)
		log_warn("cache: cannot remove %s: %s", shm, strerror(errno));
	free(shm);
	if (ret == 0)
		log_warn("cache: the database %s is damaged (%s); moved it to %s.damaged and started"
			 " an empty one: every package is built again when it is next read",
			 db_path, why, db_path);
	return ret;
}

/* Opens (creating) the database; a damaged one is set aside once and an
 * empty one opened in its place.  The cache holds nothing that cannot be
 * built again, so starting empty is the repair; refusing to start would
 * only make the user delete the file by hand. */
static int open_db(struct cache *c, const char *db_path)
{
	char why[512];
	int ret = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((ret = create_db_file(db_path)))
			return ret;
		/* NOMUTEX: c->lock already serialises the connection. */
		int rc = sqlite3_open_v2(db_path, &c->db,
					 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					 SQLITE_OPEN_NOMUTEX, NULL);
		if (rc != SQLITE_OK)
			return db_err(c->db, rc, db_path);
		sqlite3_extended_result_codes(c->db, 1);
		sqlite3_busy_timeout(c->db, CACHE_BUSY_TIMEOUT_MS);
		if ((ret = db_damaged(c->db, why, sizeof(why))) <= 0)
			return ret;
		if (attempt > 0)
			break;
		sqlite3_close(c->db);
		c->db = NULL;
		if ((ret = set_db_aside(db_path, why)))
			return ret;
	}
	log_err("cache: %s is damaged even after starting an empty one: %s", db_path, why);
	return -EIO;
}

/* Whether the tail of a log (the whole log when whole) ends with a line that
 * closes a build: succeeded, failed, or already marked interrupted. */
static bool log_tail_finished(const char *buf, size_t n, bool whole)
{
	static const char *const end_lines[] = {
		"[sebsfs] build succeeded", "[sebsfs] build failed", CACHE_LOG_INTERRUPTED,
	};
	/* A last line without its newline was cut short mid-write. */
	if (n == 0 || buf[n - 1] != '\n')
		return false;
	size_t end = n - 1, start = end;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (start == 0 && !whole)
		return false; /* longer than the tail: longer than any end line */
	for (size_t i = 0; i < sizeof(end_lines) / sizeof(end_lines[0]); i++) {
		size_t len = strlen(end_lines[i]);
		if (end - start >= len && memcmp(buf + start, end_lines[i], len) == 0)
			return true;
	}
	return false;
}

/* Tightens one log's mode and appends CACHE_LOG_INTERRUPTED when its build
 * never ended.  Returns 1 when it appended, 0 when not, -errno on failure. */
static int finish_log(const char *path)
{
	char buf[LOG_TAIL_MAX];
	int ret = 0;
	int fd = open(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode))
		goto out;
	if ((st.st_mode & 07777) != FILE_MODE && fchmod(fd, FILE_MODE) < 0)
		log_warn("cache: cannot set the mode of %s to %04o: %s", path, FILE_MODE,
			 strerror(errno));
	size_t n = st.st_size < (off_t)sizeof(buf) ? (size_t)st.st_size : sizeof(buf);
	ssize_t got = pread(fd, buf, n, st.st_size - (off_t)n);
	if (got < 0) {
		ret = -errno;
		goto out;
	}
	if (log_tail_finished(buf, (size_t)got, (off_t)got == st.st_size))
		goto out;
	/* One write, with a newline first when the log stopped mid-line. */
	const char *line = "\n" CACHE_LOG_INTERRUPTED "\n";
	if (got == 0 || buf[got - 1] == '\n')
		line++;
	size_t len = strlen(line);
	ssize_t w = write(fd, line, len);
	if (w < 0)
		ret = -errno;
	else
		ret = (size_t)w == len ? 1 : -EIO;
out:
	close(fd);
	return ret;
}

/* Walks logs/ (folders 0700, logs via finish_log).  Failures are logged and
 * skipped: a log that cannot be fixed up must not keep the cache from
 * opening.  Symbolic links are not followed. */
static void finish_logs_in(const char *dir, int depth, size_t *n_marked)
{
	char **names = NULL;
	size_t n = 0;
	int ret = list_dir_sorted(dir, &names, &n);
	if (ret) {
		log_warn("cache: cannot list %s: %s", dir, strerror(-ret));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char *p = path_join(dir, names[i]);
		struct stat st;
		if (!p) {
			log_warn("cache: out of memory checking logs in %s", dir);
			break;
		}
		if (lstat(p, &st) < 0) {
			log_warn("cache: cannot stat %s: %s", p, strerror(errno));
		} else if (S_ISDIR(st.st_mode) && depth > 1) {
			tighten_mode(p, DIR_MODE);
			finish_logs_in(p, depth - 1, n_marked);
		} else if (S_ISREG(st.st_mode)) {
			size_t len = strlen(names[i]);
			if (len > 4 && strcmp(names[i] + len - 4, ".log") == 0) {
				ret = finish_log(p);
				if (ret < 0)
					log_warn("cache: cannot check build log %s: %s", p,
						 strerror(-ret));
				else if (ret == 1)
					(*n_marked)++;
			}
		}
		free(p);
	}
	str_list_free(names, n);
}

static void finish_logs(struct cache *c)
{
	size_t n_marked = 0;
	finish_logs_in(c->logs_dir, LOG_TREE_DEPTH, &n_marked);
	if (n_marked)
		log_info("cache: %zu build log(s) ended mid-build; marked them interrupted",
			 n_marked);
}

static int take_dir_lock(struct cache *c)
{
	char *p = path_join(c->dir, "sebsfs.lock");
	if (!p)
		return -ENOMEM;
	int ret = 0;
	c->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, FILE_MODE);
	if (c->lock_fd < 0) {
		ret = -errno;
		log_err("cache: cannot open %s: %s", p, strerror(errno));
	} else if (flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		log_err("cache: %s is in use by another sebsfs (%s)", c->dir, strerror(-ret));
	}
	free(p);
	return ret;
}

static bool is_cache_id(const char *s, size_t len)
{
	if (len != CACHE_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Reads DIR/sebsfs.id, or makes a new random id there when it is missing or
 * not an id (a damaged file only costs the leftovers it labelled).  Called
 * under the flock, so two processes cannot make two ids. */
static int load_cache_id(struct cache *c)
{
	char *p = path_join(c->dir, ID_NAME);
	char *text = NULL;
	size_t len = 0;
	int ret = p ? read_file(p, &text, &len) : -ENOMEM;
	if (ret == 0 && len > 0 && text[len - 1] == '\n')
		len--;
	if (ret == 0 && is_cache_id(text, len)) {
		memcpy(c->id, text, CACHE_ID_LEN);
		c->id[CACHE_ID_LEN] = '\0';
		goto out;
	}
	if (ret == 0)
		log_warn("cache: %s is not a cache id; making a new one", p);
	else if (ret != -ENOENT && p)
		log_warn("cache: cannot read %s (%s); making a new id", p, strerror(-ret));
	if (!p) {
		ret = -ENOMEM;
		goto out;
	}
	unsigned char raw[CACHE_ID_LEN / 2];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		ret = -errno;
		log_err("cache: no random bytes for the cache id: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(c->id + 2 * i, 3, "%02x", raw[i]);
	char line[CACHE_ID_LEN + 2];
	snprintf(line, sizeof(line), "%s\n", c->id);
	if ((ret = write_file_atomic(p, line, CACHE_ID_LEN + 1)))
		log_err("cache: cannot write %s: %s", p, strerror(-ret));
	else
		tighten_mode(p, FILE_MODE);
out:
	free(text);
	free(p);
	return ret;
}

/* ---- dependency layers ------------------------------------------------------ */

static bool layer_key_ok(const char *key)
{
	if (!key || strlen(key) != SHA256_HEX_LEN)
		return false;
	for (const char *p = key; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* Start-up sweep of layers/: forget rows whose folder is gone, remove
 * folders no row names (a crash between the rename and the commit). */
static int sweep_layers(struct cache *c)
{
	sqlite3_stmt *st = NULL;
	char **names = NULL;
	size_t n_names = 0;
	int ret = prepare(c, "SELECT key FROM layers", &st), rc;
	if (ret)
		return ret;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		char *p = key ? str_printf("%s/%s", c->layers_dir, key) : NULL;
		if (p && !path_is_dir(p)) {
			log_warn("cache: dependency layer %s is missing; forgetting it", p);
			char *sql = sqlite3_mprintf("DELETE FROM layers WHERE key = %Q", key);
			ret = sql ? exec_sql(c->db, sql, "forgetting a missing layer") : -ENOMEM;
			sqlite3_free(sql);
		}
		free(p);
		if (ret)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		ret = db_err(c->db, rc, "listing layers");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((ret = list_dir_sorted(c->layers_dir, &names, &n_names))) {
		log_err("cache: cannot list %s: %s", c->layers_dir, strerror(-ret));
		goto out;
	}
	if ((ret = prepare(c, "SELECT count(*) FROM layers WHERE key = ?1", &st)))
		goto out;
	for (size_t i = 0; i < n_names; i++) {
		rc = sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			ret = db_err(c->db, rc, "looking up a layer");
			goto out;
		}
		bool known = sqlite3_column_int(st, 0) > 0;
		stmt_done(st);
		if (known)
			continue;
		char *p = path_join(c->layers_dir, names[i]);
		int r = p ? rm_rf(p) : -ENOMEM;
		if (r)
			log_warn("cache: cannot remove stale %s: %s", p ? p : names[i], strerror(-r));
		else
			log_debug("cache: removed unreferenced layer %s", p);
		free(p);
	}
out:
	sqlite3_finalize(st);
	str_list_free(names, n_names);
	return ret;
}

struct cache *cache_open(const char *dir, int *err)
{
	struct cache *c = NULL;
	char *db_path = NULL;
	int ret, rc;

	if (!dir || !*dir) {
		log_err("cache: no cache directory given");
		ret = -EINVAL;
		goto fail;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		ret = -ENOMEM;
		goto fail;
	}
	c->lock_fd = -1;
	if ((ret = pthread_mutex_init(&c->lock, NULL)) != 0) {
		free(c);
		c = NULL;
		ret = -ret;
		goto fail;
	}
	if ((ret = claim_dir(dir)))
		goto fail;
	/* Entries promise absolute package paths, whatever the caller passed. */
	if (!(c->dir = realpath(dir, NULL))) {
		ret = -errno;
		log_err("cache: cannot resolve %s: %s", dir, strerror(errno));
		goto fail;
	}
	c->packages_dir = path_join(c->dir, PACKAGES_SUBDIR);
	c->tmp_dir = path_join(c->dir, TMP_SUBDIR);
	c->logs_dir = path_join(c->dir, "logs");
	c->work_dir = path_join(c->dir, WORK_SUBDIR);
	c->layers_dir = path_join(c->dir, LAYERS_SUBDIR);
	db_path = path_join(c->dir, DB_NAME);
	if (!c->packages_dir || !c->tmp_dir || !c->logs_dir || !c->work_dir || !c->layers_dir ||
	    !db_path) {
		ret = -ENOMEM;
		goto fail;
	}

	const char *dirs[] = { c->packages_dir, c->tmp_dir, c->logs_dir, c->work_dir,
			       c->layers_dir };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if ((ret = mkdir_p(dirs[i], DIR_MODE))) {
			log_err("cache: cannot create %s: %s", dirs[i], strerror(-ret));
			goto fail;
		}
	}
	if ((ret = take_dir_lock(c)))
		goto fail;
	if ((ret = load_cache_id(c)))
		goto fail;
	if ((ret = open_db(c, db_path)))
		goto fail;

	/* The schema check comes before anything that writes or sweeps, so a
	 * refused (newer) cache is left exactly as it was. */
	if ((ret = migrate(c->db, db_path)))
		goto fail;
	tighten_modes(c, db_path);

	sqlite3_stmt *st = NULL;
	rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		ret = db_err(c->db, rc, "enabling WAL");
		sqlite3_finalize(st);
		goto fail;
	}
	const char *mode = (const char *)sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "wal") != 0)
		log_warn("cache: %s: WAL unavailable, journal mode is %s", db_path,
			 mode ? mode : "?");
	sqlite3_finalize(st);
	if ((ret = exec_sql(c->db, "PRAGMA synchronous = NORMAL", "setting synchronous")))
		goto fail;

	if ((ret = prepare(c, SQL_GET, &c->st_get)) ||
	    (ret = prepare(c, SQL_GET_PATH, &c->st_get_path)) ||
	    (ret = prepare(c, SQL_UPSERT, &c->st_upsert)) ||
	    (ret = prepare(c, SQL_UPSERT_IMAGE, &c->st_upsert_image)) ||
	    (ret = prepare(c, SQL_FAIL, &c->st_fail)) ||
	    (ret = prepare(c, SQL_DELETE, &c->st_delete)) ||
	    (ret = prepare(c, SQL_REFS, &c->st_refs)) ||
	    (ret = prepare(c, SQL_CLEAR_PATH, &c->st_clear_path)) ||
	    (ret = prepare(c, SQL_TOUCH, &c->st_touch)) ||
	    (ret = prepare(c, SQL_SET_UNZIPPED, &c->st_set_unzipped)) ||
	    (ret = prepare(c, SQL_LRU, &c->st_lru)))
		goto fail;

	empty_trash(c);
	if ((ret = reset_dir(c, c->tmp_dir, TMP_SUBDIR)) ||
	    (ret = reset_dir(c, c->work_dir, WORK_SUBDIR)))
		goto fail;
	if ((ret = sweep_packages(c)) || (ret = sweep_layers(c)))
		goto fail;
	finish_logs(c);

	free(db_path);
	if (err)
		*err = 0;
	return c;
fail:
	if (ret == -ENOMEM)
		log_err("cache: out of memory opening %s", dir ? dir : "(null)");
	free(db_path);
	cache_close(c);
	if (err)
		*err = ret;
	return NULL;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	sqlite3_finalize(c->st_get);
	sqlite3_finalize(c->st_get_path);
	sqlite3_finalize(c->st_upsert);
	sqlite3_finalize(c->st_upsert_image);
	sqlite3_finalize(c->st_fail);
	sqlite3_finalize(c->st_delete);
	sqlite3_finalize(c->st_refs);
	sqlite3_finalize(c->st_clear_path);
	sqlite3_finalize(c->st_touch);
	sqlite3_finalize(c->st_set_unzipped);
	sqlite3_finalize(c->st_lru);
	if (c->db) {
		int rc = sqlite3_close(c->db);
		if (rc != SQLITE_OK)
			log_warn("cache: closing database: %s", sqlite3_errstr(rc));
	}
	if (c->lock_fd >= 0)
		close(c->lock_fd); /* releases the flock */
	pthread_mutex_destroy(&c->lock);
	free(c->dir);
	free(c->packages_dir);
	free(c->tmp_dir);
	free(c->logs_dir);
	free(c->work_dir);
	free(c->layers_dir);
	free(c);
}

const char *cache_strerror(int err)
{
	if (err == -EUCLEAN)
		return "the cache database is damaged (sebsfs sets it aside when it next starts)";
	return strerror(err < 0 ? -err : err);
}

char *cache_space_note(const struct cache *c)
{
	struct statvfs st;
	if (!c || statvfs(c->dir, &st) < 0)
		return NULL;
	unsigned long long free_bytes = (unsigned long long)st.f_bavail * st.f_frsize;
	bool no_inodes = st.f_files > 0 && st.f_favail == 0;
	if (free_bytes >= CACHE_LOW_SPACE_BYTES && !no_inodes)
		return NULL;
	if (no_inodes)
		return str_printf("the filesystem of the cache folder %s has no free inodes"
				  " (%s)", c->dir, strerror(ENOSPC));
	return str_printf("the filesystem of the cache folder %s has only %llu bytes free (%s)",
			  c->dir, free_bytes, strerror(ENOSPC));
}

const char *cache_dir(const struct cache *c)
{
	return c ? c->dir : NULL;
}

const char *cache_id(const struct cache *c)
{
	return c ? c->id : NULL;
}

char *cache_tmp_path(struct cache *c, const char *suffix)
{
	if (!c)
		return NULL;
	unsigned long n = atomic_fetch_add(&c->tmp_seq, 1);
	/* Accept both ".zip" and "zip" so callers need not agree on the dot. */
	const char *dot = (suffix && *suffix && *suffix != '.') ? "." : "";
	return str_printf("%s/%ld-%lu%s%s", c->tmp_dir, (long)getpid(), n, dot,
			  suffix ? suffix : "");
}

int cache_make_workdir(struct cache *c, char **out)
{
	if (!c || !out)
		return -EINVAL;
	*out = NULL;
	int ret = make_temp_dir(c->work_dir, "build-", out);
	if (ret)
		log_err("cache: cannot create a work folder in %s: %s", c->work_dir,
			strerror(-ret));
	return ret;
}

static char *log_parent(const struct cache *c, const struct cache_key *key)
{
	return str_printf("%s/%s/%s-%s-%s", c->logs_dir, key->platform, key->language,
			  key->version, key->arch);
}

/* Pure: listing the mount asks for every log's path, and must not create
 * folders (cache_log_open does, when a build starts). */
char *cache_log_path(struct cache *c, const struct cache_key *key)
{
	if (!c || !key_ok(key))
		return NULL;
	char *parent = log_parent(c, key);
	if (!parent)
		return NULL;
	char *p = str_printf("%s/%s.%s.log", parent, key->benchmark, key->kind);
	free(parent);
	return p;
}

int cache_log_open(struct cache *c, const struct cache_key *key)
{
	if (!c || !key_ok(key)) {
		log_err("cache: cannot open a build log: bad key");
		return -EINVAL;
	}
	char *parent = log_parent(c, key);
	char *path = parent ? str_printf("%s/%s.%s.log", parent, key->benchmark, key->kind) : NULL;
	int ret;
	if (!path) {
		log_err("cache: out of memory opening the build log of %s/%s", key->platform,
			key->benchmark);
		ret = -ENOMEM;
		goto out;
	}
	if ((ret = mkdir_p(parent, DIR_MODE))) {
		log_err("cache: cannot create %s: %s", parent, strerror(-ret));
		goto out;
	}
	ret = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
		   FILE_MODE);
	if (ret < 0) {
		ret = -errno;
		log_err("cache: cannot open build log %s: %s", path, strerror(-ret));
		goto out;
	}
	/* A log made by an older sebsfs keeps its mode through O_TRUNC.  As in
	 * tighten_mode(), failing to change it only costs privacy. */
	struct stat st;
	if (fstat(ret, &st) == 0 && (st.st_mode & 07777) != FILE_MODE &&
	    fchmod(ret, FILE_MODE) < 0)
		log_warn("cache: cannot set the mode of %s to %04o: %s", path, FILE_MODE,
			 strerror(errno));
out:
	free(parent);
	free(path);
	return ret;
}

int cache_get(struct cache *c, const struct cache_key *key, struct cache_entry *out)
{
	if (!c || !key_ok(key) || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	int ret = get_locked(c, key, out);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

void cache_entry_clear(struct cache_entry *e)
{
	if (!e)
		return;
	free(e->input_hash);
	free(e->path);
	free(e->manifest);
	free(e->last_error);
	free(e->failed_input_hash);
	free(e->image);
	free(e->image_id);
	free(e->digest);
	free(e->registry);
	free(e->deps_hash);
	memset(e, 0, sizeof(*e));
}

/* Makes the tmp file durable and immutable and learns its size and digest;
 * runs without c->lock since hashing a large package takes a while. */
static int seal_tmp(const char *tmp_path, int64_t *size, char sha[SHA256_HEX_LEN + 1])
{
	struct stat st;
	int ret = 0;
	int fd = open(tmp_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	if (fsync(fd) < 0) {
		ret = -errno;
		goto out;
	}
	if ((ret = sha256_hex_fd(fd, sha)))
		goto out;
	if (fchmod(fd, 0444) < 0) {
		ret = -errno;
		goto out;
	}
	*size = st.st_size;
out:
	close(fd);
	return ret;
}

int cache_publish(struct cache *c, const struct cache_key *key, const char *tmp_path,
		  const char *input_hash, const char *manifest, double build_seconds,
		  const struct cache_deps *deps, bool remote, struct cache_entry *out)
{
	char sha[SHA256_HEX_LEN + 1];
	char *rel = NULL, *dst = NULL, *old_rel = NULL;
	int64_t size = 0, built_at = (int64_t)time(NULL), used_ms = cache_now_ms();
	bool locked = false, renamed = false;
	int ret, rc;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!c || !key_ok(key) || !tmp_path || !input_hash) {
		ret = -EINVAL;
		goto fail;
	}
	if (is_image_kind(key)) {
		log_err("cache: %s/%s: image rows are published with cache_publish_image",
			key->platform, key->benchmark);
		ret = -EINVAL;
		goto fail;
	}
	if ((ret = seal_tmp(tmp_path, &size, sha))) {
		log_err("cache: cannot publish %s: %s", tmp_path, strerror(-ret));
		goto fail;
	}
	rel = str_printf(PACKAGES_SUBDIR "/%s.%s", sha, key->kind);
	dst = rel ? abs_path(c, rel) : NULL;
	if (!dst) {
		ret = -ENOMEM;
		goto fail;
	}

	pthread_mutex_lock(&c->lock);
	locked = true;
	if ((ret = get_path_locked(c, key, &old_rel)))
		goto fail;
	/* Renaming over an existing file of the same name is harmless: the name
	 * is the content's digest, so the bytes are identical. */
	if (rename(tmp_path, dst) < 0) {
		ret = -errno;
		log_err("cache: cannot move %s to %s: %s", tmp_path, dst, strerror(errno));
		goto fail;
	}
	renamed = true;
	if ((ret = fsync_dir(c->packages_dir))) {
		log_err("cache: cannot fsync %s: %s", c->packages_dir, strerror(-ret));
		goto fail;
	}

	sqlite3_stmt *st = c->st_upsert;
	rc = bind_key(st, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 7, input_hash, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 8, rel, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 9, size);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 10, sha, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 11, built_at);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_double(st, 12, build_seconds);
	if (rc == SQLITE_OK)
		rc = manifest ? sqlite3_bind_text(st, 13, manifest, -1, SQLITE_STATIC)
			      : sqlite3_bind_null(st, 13);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 14, used_ms);
	if (rc == SQLITE_OK)
		rc = deps ? sqlite3_bind_text(st, 15, deps->hash, -1, SQLITE_STATIC)
			  : sqlite3_bind_null(st, 15);
	if (rc == SQLITE_OK)
		rc = deps ? sqlite3_bind_int(st, 16, deps->reused) : sqlite3_bind_null(st, 16);
	if (rc == SQLITE_OK)
		rc = remote ? sqlite3_bind_text(st, 17, "remote", -1, SQLITE_STATIC)
			    : sqlite3_bind_null(st, 17);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		ret = db_err(c->db, rc, "committing a published package");
		stmt_done(st);
		goto fail;
	}
	stmt_done(st);

	/* Committed: from here on the publish has happened, whatever follows. */
	if (old_rel && strcmp(old_rel, rel) != 0)
		unlink_if_unreferenced_locked(c, old_rel);
	pthread_mutex_unlock(&c->lock);
	if (out) {
		/* Built from what was just committed instead of read back, so the
		 * only possible failure left is memory. */
		out->has_package = true;
		out->input_hash = strdup(input_hash);
		out->path = dst;
		dst = NULL;
		out->size = size;
		memcpy(out->sha256, sha, sizeof(out->sha256));
		out->built_at = built_at;
		out->build_seconds = build_seconds;
		out->last_used_ms = used_ms;
		out->manifest = manifest ? strdup(manifest) : NULL;
		out->deps_hash = deps ? strdup(deps->hash) : NULL;
		out->deps_reused = deps && deps->reused;
		out->unzipped_size = -1;
		out->remote = remote;
		if (!out->input_hash || (manifest && !out->manifest) || (deps && !out->deps_hash)) {
			log_err("cache: out of memory after publishing %s", out->path);
			cache_entry_clear(out);
			ret = -ENOMEM;
		}
	}
	free(rel);
	free(dst);
	free(old_rel);
	return ret;

fail:
	if (renamed) {
		/* The file is already under packages/; drop it unless some row
		 * (possibly the key's own old row) shares the same bytes. */
		unlink_if_unreferenced_locked(c, rel);
	} else if (tmp_path && unlink(tmp_path) < 0 && errno != ENOENT) {
		log_warn("cache: cannot remove %s: %s", tmp_path, strerror(errno));
	}
	if (locked)
		pthread_mutex_unlock(&c->lock);
	free(rel);
	free(dst);
	free(old_rel);
	return ret;
}

static int bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
	return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static char *dup_opt(const char *s, bool *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

int cache_publish_image(struct cache *c, const struct cache_key *key, const char *input_hash,
			const char *manifest, double build_seconds,
			const struct cache_image_info *info, struct cache_entry *out)
{
	int64_t built_at = (int64_t)time(NULL);
	int ret = 0, rc;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!c || !key_ok(key) || !is_image_kind(key) || !input_hash || !info ||
	    !info->image || !*info->image || !info->image_id || !*info->image_id ||
	    info->size < 0)
		return -EINVAL;

	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = c->st_upsert_image;
	rc = bind_key(st, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 7, input_hash, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 8, built_at);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_double(st, 9, build_seconds);
	if (rc == SQLITE_OK)
		rc = bind_opt_text(st, 10, manifest);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 11, info->image, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 12, info->image_id, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = bind_opt_text(st, 13, info->digest);
	if (rc == SQLITE_OK)
		rc = bind_opt_text(st, 14, info->registry);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 15, info->size);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		ret = db_err(c->db, rc, "committing a published image");
	stmt_done(st);
	pthread_mutex_unlock(&c->lock);
	if (ret || !out)
		return ret;

	/* Built from what was just committed, as in cache_publish(). */
	bool oom = false;
	out->has_package = true;
	out->input_hash = dup_opt(input_hash, &oom);
	out->built_at = built_at;
	out->build_seconds = build_seconds;
	out->manifest = dup_opt(manifest, &oom);
	out->image = dup_opt(info->image, &oom);
	out->image_id = dup_opt(info->image_id, &oom);
	out->digest = dup_opt(info->digest, &oom);
	out->registry = dup_opt(info->registry, &oom);
	out->image_size = info->size;
	if (oom) {
		log_err("cache: out of memory after publishing image %s", info->image);
		cache_entry_clear(out);
		return -ENOMEM;
	}
	return 0;
}

int cache_record_failure(struct cache *c, const struct cache_key *key,
			 const char *input_hash, const char *error)
{
	if (!c || !key_ok(key))
		return -EINVAL;
	/* The reason is shown as one line (xattrs, log summaries). */
	char *line = NULL;
	if (error) {
		if (!(line = strdup(error)))
			return -ENOMEM;
		for (char *p = line; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}

	int ret = 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = c->st_fail;
	int rc = bind_key(st, key);
	if (rc == SQLITE_OK)
		rc = line ? sqlite3_bind_text(st, 7, line, -1, SQLITE_STATIC)
			  : sqlite3_bind_null(st, 7);
	if (rc == SQLITE_OK)
		rc = input_hash ? sqlite3_bind_text(st, 8, input_hash, -1, SQLITE_STATIC)
				: sqlite3_bind_null(st, 8);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		ret = db_err(c->db, rc, "recording a failed build");
	stmt_done(st);
	pthread_mutex_unlock(&c->lock);
	free(line);
	return ret;
}

/* Forgets key's row (only when its package file is still sha256, when that
 * is given) and unlinks the file when no other row references it. */
static int evict_locked(struct cache *c, const struct cache_key *key, const char *sha256,
			int64_t *freed)
{
	char *rel = NULL, *expected = NULL;
	int ret = get_path_locked(c, key, &rel);
	if (ret == 0 && sha256) {
		expected = str_printf(PACKAGES_SUBDIR "/%s.%s", sha256, key->kind);
		if (!expected)
			ret = -ENOMEM;
		else if (!rel || strcmp(rel, expected) != 0)
			ret = -ESTALE;
	}
	if (ret == 0) {
		sqlite3_stmt *st = c->st_delete;
		int rc = bind_key(st, key);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			ret = db_err(c->db, rc, "evicting a package");
		stmt_done(st);
	}
	if (ret == 0) {
		int64_t n = unlink_if_unreferenced_locked(c, rel);
		if (freed)
			*freed = n;
	}
	free(rel);
	free(expected);
	return ret;
}

int cache_evict(struct cache *c, const struct cache_key *key)
{
	if (!c || !key_ok(key))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	int ret = evict_locked(c, key, NULL, NULL);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_evict_package(struct cache *c, const struct cache_key *key, const char *sha256,
			int64_t *freed)
{
	if (freed)
		*freed = 0;
	if (!c || !key_ok(key) || is_image_kind(key) || !sha256 ||
	    strlen(sha256) != SHA256_HEX_LEN || strchr(sha256, '/'))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	int ret = evict_locked(c, key, sha256, freed);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int64_t cache_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cache_touch(struct cache *c, const struct cache_key *key, int64_t used_ms)
{
	if (!c || !key_ok(key))
		return -EINVAL;
	if (is_image_kind(key))
		return 0; /* an image row has no local file to rank */
	int ret = 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = c->st_touch;
	int rc = bind_key(st, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 7, used_ms);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		ret = db_err(c->db, rc, "recording when a package was used");
	stmt_done(st);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_set_unzipped_size(struct cache *c, const struct cache_key *key, const char *sha256,
			     int64_t unzipped_size)
{
	if (!c || !key_ok(key) || is_image_kind(key) || !sha256 || unzipped_size < 0)
		return -EINVAL;
	int ret = 0;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = c->st_set_unzipped;
	int rc = bind_key(st, key);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 7, sha256, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int64(st, 8, unzipped_size);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		ret = db_err(c->db, rc, "recording the unzipped size of a package");
	else if (sqlite3_changes(c->db) == 0)
		ret = -ESTALE;
	stmt_done(st);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static void lru_file_clear(struct cache_lru_file *f)
{
	for (size_t i = 0; i < f->n_keys; i++) {
		struct cache_key *k = &f->keys[i];
		free((char *)k->platform);
		free((char *)k->language);
		free((char *)k->version);
		free((char *)k->arch);
		free((char *)k->benchmark);
		free((char *)k->kind);
	}
	free(f->keys);
	memset(f, 0, sizeof(*f));
}

void cache_lru_free(struct cache_lru_file *files, size_t n)
{
	for (size_t i = 0; files && i < n; i++)
		lru_file_clear(&files[i]);
	free(files);
}

/* Appends the key of the current row of st to f; -ENOMEM on failure. */
static int lru_add_key(struct cache_lru_file *f, sqlite3_stmt *st)
{
	struct cache_key *keys = realloc(f->keys, (f->n_keys + 1) * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	f->keys = keys;
	int ret = 0;
	struct cache_key *k = &keys[f->n_keys++];
	k->platform = dup_col(st, 0, &ret);
	k->language = dup_col(st, 1, &ret);
	k->version = dup_col(st, 2, &ret);
	k->arch = dup_col(st, 3, &ret);
	k->benchmark = dup_col(st, 4, &ret);
	k->kind = dup_col(st, 5, &ret);
	return ret;
}

/* Least recently used first; ties in a fixed order (packages by digest,
 * then layers by key), so the eviction order does not depend on SQLite's. */
static int lru_cmp(const void *a, const void *b)
{
	const struct cache_lru_file *x = a, *y = b;
	if (x->last_used_ms != y->last_used_ms)
		return x->last_used_ms < y->last_used_ms ? -1 : 1;
	if (!x->layer[0] != !y->layer[0])
		return x->layer[0] ? 1 : -1;
	return x->layer[0] ? strcmp(x->layer, y->layer) : strcmp(x->sha256, y->sha256);
}

static int lru_add_layers_locked(struct cache *c, struct cache_lru_file **list, size_t *n,
				 size_t *cap, int64_t *sum)
{
	sqlite3_stmt *st = NULL;
	int ret = prepare(c, "SELECT key, size, last_used_ms FROM layers", &st), rc;
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		if (!key || !layer_key_ok(key))
			continue;
		if (*n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 16;
			struct cache_lru_file *l = realloc(*list, ncap * sizeof(*l));
			if (!l) {
				ret = -ENOMEM;
				break;
			}
			*list = l;
			*cap = ncap;
		}
		struct cache_lru_file *f = &(*list)[(*n)++];
		memset(f, 0, sizeof(*f));
		snprintf(f->layer, sizeof(f->layer), "%s", key);
		f->size = sqlite3_column_int64(st, 1);
		f->last_used_ms = sqlite3_column_int64(st, 2);
		*sum += f->size;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = db_err(c->db, rc, "listing layers by last use");
	sqlite3_finalize(st);
	return ret;
}

int cache_lru(struct cache *c, struct cache_lru_file **files, size_t *n_files, int64_t *total)
{
	if (!c || !files || !n_files)
		return -EINVAL;
	struct cache_lru_file *list = NULL;
	size_t n = 0, cap = 0;
	int64_t sum = 0;
	int ret = 0, rc;
	*files = NULL;
	*n_files = 0;
	if (total)
		*total = 0;

	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = c->st_lru;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *sha = (const char *)sqlite3_column_text(st, 6);
		if (!sha)
			continue; /* a path without a digest is not a package sebsfs wrote */
		if (n == 0 || strcmp(list[n - 1].sha256, sha) != 0) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct cache_lru_file *l = realloc(list, ncap * sizeof(*l));
				if (!l) {
					ret = -ENOMEM;
					break;
				}
				list = l;
				cap = ncap;
			}
			struct cache_lru_file *f = &list[n++];
			memset(f, 0, sizeof(*f));
			snprintf(f->sha256, sizeof(f->sha256), "%s", sha);
			f->size = sqlite3_column_int64(st, 7);
			f->last_used_ms = sqlite3_column_int64(st, 8);
			sum += f->size;
		}
		if ((ret = lru_add_key(&list[n - 1], st)))
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = db_err(c->db, rc, "listing packages by last use");
	stmt_done(st);
	if (ret == 0)
		ret = lru_add_layers_locked(c, &list, &n, &cap, &sum);
	pthread_mutex_unlock(&c->lock);
	if (ret == 0 && n > 1)
		qsort(list, n, sizeof(*list), lru_cmp);
	if (ret) {
		if (ret == -ENOMEM)
			log_err("cache: out of memory listing packages by last use");
		cache_lru_free(list, n);
		return ret;
	}
	*files = list;
	*n_files = n;
	if (total)
		*total = sum;
	return 0;
}

/* ---- dependency layers: public functions -------------------------------------- */

void cache_layer_clear(struct cache_layer *l)
{
	if (!l)
		return;
	free(l->path);
	memset(l, 0, sizeof(*l));
}

int cache_layer_get(struct cache *c, const char *key, struct cache_layer *out)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (!c || !layer_key_ok(key))
		return -EINVAL;
	char *path = str_printf("%s/%s", c->layers_dir, key);
	if (!path)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	sqlite3_stmt *st = NULL;
	int ret = prepare(c, "SELECT size, built_ms, build_seconds FROM layers WHERE key = ?1", &st);
	int rc = ret ? SQLITE_ERROR : sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (!ret && rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (ret) {
		/* prepare logged it */
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else if (rc != SQLITE_ROW) {
		ret = db_err(c->db, rc, "reading a layer row");
	} else if (!path_is_dir(path)) {
		/* deleted behind sebsfs's back: forget it, the caller builds it again */
		log_warn("cache: dependency layer %s vanished; building it again", path);
		sqlite3_finalize(st);
		st = NULL;
		char *sql = sqlite3_mprintf("DELETE FROM layers WHERE key = %Q", key);
		ret = sql ? exec_sql(c->db, sql, "forgetting a vanished layer") : -ENOMEM;
		sqlite3_free(sql);
		if (ret == 0)
			ret = -ENOENT;
	} else if (out) {
		out->size = sqlite3_column_int64(st, 0);
		out->built_ms = sqlite3_column_int64(st, 1);
		out->build_seconds = sqlite3_column_double(st, 2);
		out->path = path;
		path = NULL;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->lock);
	free(path);
	return ret;
}

int cache_make_tmpdir(struct cache *c, char **out)
{
	*out = NULL;
	char *p = cache_tmp_path(c, ".d");
	if (!p)
		return -ENOMEM;
	if (mkdir(p, DIR_MODE) < 0) {
		int e = errno;
		free(p);
		return -e;
	}
	*out = p;
	return 0;
}

struct layer_seal {
	int64_t size;
	char *errmsg;
};

/* Makes one entry of a layer folder durable and read-only (directories are
 * fsynced after their contents by the second pass below). */
static int seal_layer_entry(const struct walk_entry *e, void *ctx)
{
	struct layer_seal *s = ctx;
	if (!S_ISREG(e->st.st_mode))
		return 0;
	int fd = openat(e->dirfd, e->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int ret = fd < 0 ? -errno : 0;
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (ret == 0 && fchmod(fd, 0444) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret < 0 && !s->errmsg)
		s->errmsg = str_printf("%s: %s", e->path, strerror(-ret));
	s->size += e->st.st_size;
	return ret;
}

static int fsync_layer_dir(const struct walk_entry *e, void *ctx)
{
	struct layer_seal *s = ctx;
	if (!S_ISDIR(e->st.st_mode))
		return 0;
	int fd = openat(e->dirfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int ret = fd < 0 ? -errno : (fsync(fd) < 0 ? -errno : 0);
	if (fd >= 0)
		close(fd);
	if (ret < 0 && !s->errmsg)
		s->errmsg = str_printf("%s: %s", e->path, strerror(-ret));
	return ret;
}

int cache_publish_layer(struct cache *c, const char *key, const char *tmp_dir,
			double build_seconds, struct cache_layer *out)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (!c || !layer_key_ok(key) || !tmp_dir)
		return -EINVAL;
	struct layer_seal seal = { 0 };
	struct walk_options opts = { .links = WALK_KEEP };
	char *dst = str_printf("%s/%s", c->layers_dir, key);
	int64_t now = cache_now_ms();
	int ret = dst ? walk_tree(tmp_dir, &opts, seal_layer_entry, &seal, &seal.errmsg) : -ENOMEM;
	if (ret == 0)
		ret = walk_tree(tmp_dir, &opts, fsync_layer_dir, &seal, &seal.errmsg);
	if (ret == 0)
		ret = fsync_dir(tmp_dir);
	if (ret) {
		log_err("cache: cannot publish layer %s: %s", tmp_dir,
			seal.errmsg ? seal.errmsg : strerror(-ret));
		goto fail;
	}
	pthread_mutex_lock(&c->lock);
	/* A folder of this name without a row is a leftover of a crash between
	 * rename and commit that no sweep has removed yet: replace it. */
	if (rename(tmp_dir, dst) < 0 && (errno == ENOTEMPTY || errno == EEXIST)) {
		int r = rm_rf(dst);
		if (r == 0 && rename(tmp_dir, dst) == 0)
			errno = 0;
		else if (r)
			errno = -r;
	} else {
		errno = 0;
	}
	if (errno) {
		ret = -errno;
		log_err("cache: cannot move %s to %s: %s", tmp_dir, dst, strerror(-ret));
		pthread_mutex_unlock(&c->lock);
		goto fail;
	}
	if ((ret = fsync_dir(c->layers_dir))) {
		log_err("cache: cannot fsync %s: %s", c->layers_dir, strerror(-ret));
	} else {
		sqlite3_stmt *st = NULL;
		ret = prepare(c, "INSERT OR REPLACE INTO layers (key, size, built_ms, build_seconds,"
			      " last_used_ms) VALUES (?1, ?2, ?3, ?4, ?3)", &st);
		int rc = ret ? SQLITE_ERROR : sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		if (!ret && rc == SQLITE_OK)
			rc = sqlite3_bind_int64(st, 2, seal.size);
		if (!ret && rc == SQLITE_OK)
			rc = sqlite3_bind_int64(st, 3, now);
		if (!ret && rc == SQLITE_OK)
			rc = sqlite3_bind_double(st, 4, build_seconds);
		if (!ret && rc == SQLITE_OK)
			rc = sqlite3_step(st);
		if (!ret && rc != SQLITE_DONE)
			ret = db_err(c->db, rc, "committing a dependency layer");
		sqlite3_finalize(st);
	}
	if (ret) {
		/* not committed: the folder must not outlive the failure */
		rm_rf(dst);
		pthread_mutex_unlock(&c->lock);
		goto fail;
	}
	pthread_mutex_unlock(&c->lock);
	if (out) {
		out->path = dst;
		dst = NULL;
		out->size = seal.size;
		out->built_ms = now;
		out->build_seconds = build_seconds;
	}
	free(dst);
	free(seal.errmsg);
	return 0;
fail:
	rm_rf(tmp_dir);
	free(dst);
	free(seal.errmsg);
	return ret;
}

int cache_layer_touch(struct cache *c, const char *key, int64_t used_ms)
{
	if (!c || !layer_key_ok(key))
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	char *sql = sqlite3_mprintf("UPDATE layers SET last_used_ms = %lld WHERE key = %Q"
				    " AND last_used_ms < %lld", (long long)used_ms, key,
				    (long long)used_ms);
	int ret = sql ? exec_sql(c->db, sql, "recording a layer's use") : -ENOMEM;
	sqlite3_free(sql);
	pthread_mutex_unlock(&c->lock);
	return ret;
}

int cache_evict_layer(struct cache *c, const char *key, int64_t *freed)
{
	if (freed)
		*freed = 0;
	if (!c || !layer_key_ok(key))
		return -EINVAL;
	struct cache_layer l;
	int ret = cache_layer_get(c, key, &l);
	if (ret == -ENOENT)
		return 0;
	if (ret)
		return ret;
	pthread_mutex_lock(&c->lock);
	char *sql = sqlite3_mprintf("DELETE FROM layers WHERE key = %Q", key);
	ret = sql ? exec_sql(c->db, sql, "evicting a dependency layer") : -ENOMEM;
	sqlite3_free(sql);
	/* Committed first: a crash before the folder goes leaves a folder the
	 * next start-up sweep removes, never a row without its folder. */
	if (ret == 0) {
		int r = rm_rf(l.path);
		if (r)
			log_warn("cache: cannot remove %s: %s (removed at the next start)", l.path,
				 strerror(-r));
		else if (freed)
			*freed = l.size;
	}
	pthread_mutex_unlock(&c->lock);
	cache_layer_clear(&l);
	return ret;
}
