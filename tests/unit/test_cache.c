/*
 * test_cache.c - Check suite for src/cache: real SQLite files in a fresh
 * mkdtemp directory per test, removed afterwards.
 *
 * Digests are cross-checked with the sha256sum program rather than our own
 * sha256.c, so a bug there cannot hide a bug here.  The schema is inspected
 * with direct sqlite3 calls, independent of the module's statements.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cache.h"

/* The suite's directory is made and removed by the parent process (unchecked
 * fixture), so it is cleaned up even when a forked test dies; each test gets
 * its own subdirectory from the checked fixture. */
static char suite_root[] = "/tmp/test_cache.XXXXXX";
static char *root;      /* the directory of the current test */
static char cdir[4096]; /* the cache directory inside it */

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

static void suite_setup(void)
{
	if (!mkdtemp(suite_root)) {
		perror("mkdtemp");
		exit(EXIT_FAILURE);
	}
}

static void suite_teardown(void)
{
	nftw(suite_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char test_root[4096];

static void setup(void)
{
	snprintf(test_root, sizeof(test_root), "%s/t.XXXXXX", suite_root);
	root = mkdtemp(test_root);
	ck_assert_ptr_nonnull(root);
	/* A nested, not yet existing path: cache_open must create it. */
	snprintf(cdir, sizeof(cdir), "%s/cache/dir", root);
}

static void teardown(void)
{
	if (root)
		nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	root = NULL;
}

static const struct cache_key KEY_A = { "aws", "python", "3.11", "x64", "110.dynamic-html", "zip" };
static const struct cache_key KEY_B = { "aws", "python", "3.11", "arm64", "110.dynamic-html", "zip" };
static const struct cache_key KEY_IMG = { "aws", "python", "3.11", "x64", "110.dynamic-html", "image" };
static const struct cache_key KEY_IMG2 = { "aws", "python", "3.11", "arm64", "110.dynamic-html", "image" };

static const struct cache_image_info IMG_INFO = {
	.image = "sebs.local/aws-python-3.11-x64:110.dynamic-html",
	.image_id = "sha256:1111111111111111111111111111111111111111111111111111111111111111",
	.digest = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sebs@sha256:"
		  "2222222222222222222222222222222222222222222222222222222222222222",
	.registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com",
	.size = 123456789,
};

/* Column order of the packages table at schema v6, fresh or migrated. */
#define SCHEMA_VERSION 6
#define PACKAGES_COLUMNS "platform,language,version,arch,benchmark,kind,input_hash,path,size," \
		   "sha256,built_at,build_seconds,manifest,last_failed,last_error," \
		   "failed_input_hash,image,image_id,digest,registry,image_size,last_used_ms," \
		   "deps_hash,deps_reused,unzipped_size,origin"

static struct cache *open_ok(void)
{
	int err = 12345;
	struct cache *c = cache_open(cdir, &err);
	ck_assert_msg(c != NULL, "cache_open failed: %s", strerror(-err));
	ck_assert_int_eq(err, 0);
	return c;
}

static char *sub(const char *rel)
{
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/%s", cdir, rel), 0);
	return p;
}

static bool exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

static void write_bytes(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(content, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* A new file under tmp/ holding content, the way the builder would write one. */
static char *make_tmp(struct cache *c, const char *content)
{
	char *p = cache_tmp_path(c, ".zip");
	ck_assert_ptr_nonnull(p);
	ck_assert(!exists(p));
	write_bytes(p, content);
	return p;
}

static void sha256sum(const char *path, char hex[65])
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%64s", hex), 1);
	ck_assert_int_eq(pclose(f), 0);
}

static struct cache_entry publish_ok(struct cache *c, const struct cache_key *k,
				     const char *content, const char *input_hash)
{
	struct cache_entry e;
	char *tmp = make_tmp(c, content);
	int ret = cache_publish(c, k, tmp, input_hash, "{\"files\":[]}", 1.5, NULL, false, &e);
	ck_assert_msg(ret == 0, "cache_publish: %s", strerror(-ret));
	ck_assert_msg(!exists(tmp), "tmp file %s left behind", tmp);
	free(tmp);
	return e;
}

static int count_entries(const char *rel)
{
	char *p = sub(rel);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", p);
	free(p);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	int n = -1;
	ck_assert_int_eq(fscanf(f, "%d", &n), 1);
	pclose(f);
	return n;
}

static sqlite3 *raw_db(void)
{
	char *p = sub("sebsfs.db");
	sqlite3 *db = NULL;
	ck_assert_int_eq(sqlite3_open(p, &db), SQLITE_OK);
	free(p);
	return db;
}

static int raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	int v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* First column of the first row as a malloc'd string ("(null)" for NULL). */
static char *raw_str(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	const unsigned char *t = sqlite3_column_text(st, 0);
	char *v = strdup(t ? (const char *)t : "(null)");
	ck_assert_ptr_nonnull(v);
	sqlite3_finalize(st);
	return v;
}

static void assert_columns_current(sqlite3 *db)
{
	char *cols = raw_str(db, "SELECT group_concat(name, ',') FROM"
			     " (SELECT name FROM pragma_table_info('packages') ORDER BY cid)");
	ck_assert_str_eq(cols, PACKAGES_COLUMNS);
	free(cols);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM pragma_table_info('packages') WHERE pk > 0"), 6);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM pragma_index_list('packages')"
				 " WHERE name = 'packages_path'"), 1);
}

static void assert_no_image(const struct cache_entry *e)
{
	ck_assert_ptr_null(e->image);
	ck_assert_ptr_null(e->image_id);
	ck_assert_ptr_null(e->digest);
	ck_assert_ptr_null(e->registry);
	ck_assert_int_eq(e->image_size, 0);
}

/* The fields of IMG_INFO, with no file. */
static void assert_img(const struct cache_entry *e, const struct cache_image_info *i)
{
	ck_assert(e->has_package);
	ck_assert_ptr_null(e->path);
	ck_assert_int_eq(e->size, 0);
	ck_assert_int_eq(e->sha256[0], '\0');
	ck_assert_str_eq(e->image, i->image);
	ck_assert_str_eq(e->image_id, i->image_id);
	if (i->digest)
		ck_assert_str_eq(e->digest, i->digest);
	else
		ck_assert_ptr_null(e->digest);
	if (i->registry)
		ck_assert_str_eq(e->registry, i->registry);
	else
		ck_assert_ptr_null(e->registry);
	ck_assert_int_eq(e->image_size, i->size);
}

static struct cache_entry publish_image_ok(struct cache *c, const struct cache_key *k,
					   const struct cache_image_info *info,
					   const char *input_hash)
{
	struct cache_entry e;
	int ret = cache_publish_image(c, k, input_hash, "{\"files\":[\"Dockerfile\"]}", 42.25,
				      info, &e);
	ck_assert_msg(ret == 0, "cache_publish_image: %s", strerror(-ret));
	return e;
}

/* The v1 schema exactly as sebsfs with CACHE_SCHEMA_VERSION 1 created it. */
static const char SCHEMA_V1[] =
	"CREATE TABLE packages ("
	" platform TEXT NOT NULL,"
	" language TEXT NOT NULL,"
	" version TEXT NOT NULL,"
	" arch TEXT NOT NULL,"
	" benchmark TEXT NOT NULL,"
	" kind TEXT NOT NULL,"
	" input_hash TEXT,"
	" path TEXT,"
	" size INTEGER,"
	" sha256 TEXT,"
	" built_at INTEGER,"
	" build_seconds REAL,"
	" manifest TEXT,"
	" last_failed INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT,"
	" failed_input_hash TEXT,"
	" PRIMARY KEY (platform, language, version, arch, benchmark, kind)"
	");"
	"CREATE INDEX packages_path ON packages(path);";

/* Makes cdir look like a cache left by the v1 code: the directories, a WAL
 * database at user_version 1, one zip row with its package file (content),
 * and one failure-only row for KEY_B.  Returns the package's path. */
static char *make_v1_cache(const char *content, char sha[65])
{
	char *cmd = NULL;
	ck_assert_int_ge(asprintf(&cmd, "mkdir -p '%s/packages' '%s/tmp' '%s/logs' '%s/work'",
				  cdir, cdir, cdir, cdir), 0);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	char *tmp = sub("tmp/pkg");
	write_bytes(tmp, content);
	sha256sum(tmp, sha);
	char *rel = NULL;
	ck_assert_int_ge(asprintf(&rel, "packages/%s.zip", sha), 0);
	char *pkg = sub(rel);
	ck_assert_int_eq(rename(tmp, pkg), 0);
	ck_assert_int_eq(chmod(pkg, 0444), 0);
	free(tmp);

	sqlite3 *db = raw_db();
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, SCHEMA_V1, NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	char *ins = sqlite3_mprintf(
		"INSERT INTO packages VALUES ('aws','python','3.11','x64','110.dynamic-html','zip',"
		" 'ih-v1', %Q, %d, %Q, 1700000000, 2.5, '{\"v\":1}', 1, 'old failure', 'ih-bad');"
		"INSERT INTO packages (platform, language, version, arch, benchmark, kind,"
		" last_failed, last_error, failed_input_hash)"
		" VALUES ('aws','python','3.11','arm64','110.dynamic-html','zip', 1, 'never built', 'ih-b');",
		rel, (int)strlen(content), sha);
	ck_assert_int_eq(sqlite3_exec(db, ins, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(ins);
	sqlite3_close(db);
	free(rel);
	return pkg;
}

/* The folder's id: CACHE_ID_LEN hex digits, kept across opens in a private
 * file, and made anew when that file is damaged. */
START_TEST(test_cache_id_is_kept)
{
	struct cache *c = open_ok();
	char first[CACHE_ID_LEN + 1];
	snprintf(first, sizeof(first), "%s", cache_id(c));
	ck_assert_uint_eq(strlen(first), CACHE_ID_LEN);
	ck_assert_uint_eq(strspn(first, "0123456789abcdef"), CACHE_ID_LEN);
	cache_close(c);

	char *idf = sub("sebsfs.id");
	struct stat st;
	ck_assert_int_eq(stat(idf, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	c = open_ok();
	ck_assert_str_eq(cache_id(c), first);
	cache_close(c);

	write_bytes(idf, "not an id\n");
	c = open_ok();
	ck_assert_uint_eq(strlen(cache_id(c)), CACHE_ID_LEN);
	ck_assert_str_ne(cache_id(c), first);
	cache_close(c);
	free(idf);
}
END_TEST

START_TEST(test_open_creates_schema)
{
	struct cache *c = open_ok();
	const char *dirs[] = { "packages", "tmp", "logs", "work" };
	for (int i = 0; i < 4; i++) {
		char *p = sub(dirs[i]);
		struct stat st;
		ck_assert_int_eq(stat(p, &st), 0);
		ck_assert(S_ISDIR(st.st_mode));
		free(p);
	}
	ck_assert_str_eq(cache_dir(c), cdir);
	cache_close(c);

	sqlite3 *db = raw_db();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM pragma_table_info('packages')"), 26);
	assert_columns_current(db);
	sqlite3_stmt *st = NULL;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(db);

	/* Reopening an up-to-date cache is fine. */
	c = open_ok();
	cache_close(c);
}
END_TEST

START_TEST(test_publish_then_get)
{
	struct cache *c = open_ok();
	time_t before = time(NULL);
	struct cache_entry pub = publish_ok(c, &KEY_A, "package bytes v1\n", "ih1");
	ck_assert(pub.has_package);

	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	ck_assert_ptr_nonnull(e.path);
	ck_assert_str_eq(e.path, pub.path);
	ck_assert_int_eq(e.path[0], '/');

	char hex[65];
	sha256sum(e.path, hex);
	ck_assert_str_eq(e.sha256, hex);
	ck_assert_int_eq(e.size, (int64_t)strlen("package bytes v1\n"));

	char *expect = NULL;
	ck_assert_int_ge(asprintf(&expect, "%s/packages/%s.zip", cdir, hex), 0);
	ck_assert_str_eq(e.path, expect);
	free(expect);

	struct stat st;
	ck_assert_int_eq(stat(e.path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0444);
	ck_assert_int_eq(st.st_size, e.size);

	ck_assert_str_eq(e.input_hash, "ih1");
	ck_assert_str_eq(e.manifest, "{\"files\":[]}");
	ck_assert(e.build_seconds > 1.49 && e.build_seconds < 1.51);
	ck_assert_int_ge(e.built_at, (int64_t)before);
	ck_assert_int_le(e.built_at, (int64_t)time(NULL));
	ck_assert(!e.last_failed);
	ck_assert_ptr_null(e.last_error);
	ck_assert_ptr_null(e.failed_input_hash);
	assert_no_image(&e);
	assert_no_image(&pub);

	/* Other key: no row. */
	struct cache_entry none;
	ck_assert_int_eq(cache_get(c, &KEY_B, &none), -ENOENT);

	cache_entry_clear(&e);
	cache_entry_clear(&pub);
	cache_entry_clear(NULL);
	cache_close(c);
	cache_close(NULL);
}
END_TEST

START_TEST(test_publish_null_manifest_and_out)
{
	struct cache *c = open_ok();
	char *tmp = make_tmp(c, "xyz");
	ck_assert_int_eq(cache_publish(c, &KEY_A, tmp, "ih", NULL, 0.0, NULL, false, NULL), 0);
	free(tmp);
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	ck_assert_ptr_null(e.manifest);
	cache_entry_clear(&e);
	cache_close(c);
}
END_TEST

START_TEST(test_republish_replaces)
{
	struct cache *c = open_ok();
	struct cache_entry e1 = publish_ok(c, &KEY_A, "first", "ih1");
	struct cache_entry e2 = publish_ok(c, &KEY_A, "second, different", "ih2");
	ck_assert_str_ne(e1.path, e2.path);
	ck_assert_str_ne(e1.sha256, e2.sha256);
	ck_assert(!exists(e1.path));
	ck_assert(exists(e2.path));

	struct cache_entry g;
	ck_assert_int_eq(cache_get(c, &KEY_A, &g), 0);
	ck_assert_str_eq(g.path, e2.path);
	ck_assert_str_eq(g.input_hash, "ih2");
	ck_assert_int_eq(g.size, (int64_t)strlen("second, different"));
	ck_assert_int_eq(count_entries("packages"), 1);

	/* Same bytes again: same file, still there. */
	struct cache_entry e3 = publish_ok(c, &KEY_A, "second, different", "ih3");
	ck_assert_str_eq(e3.path, e2.path);
	ck_assert(exists(e3.path));
	ck_assert_int_eq(count_entries("packages"), 1);

	cache_entry_clear(&e1);
	cache_entry_clear(&e2);
	cache_entry_clear(&e3);
	cache_entry_clear(&g);
	cache_close(c);
}
END_TEST

START_TEST(test_shared_file)
{
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "identical", "ia");
	struct cache_entry b = publish_ok(c, &KEY_B, "identical", "ib");
	ck_assert_str_eq(a.path, b.path);
	ck_assert_int_eq(count_entries("packages"), 1);

	/* Replacing A's package must not unlink the file B still uses. */
	struct cache_entry a2 = publish_ok(c, &KEY_A, "A moved on", "ia2");
	ck_assert(exists(b.path));
	ck_assert_int_eq(count_entries("packages"), 2);
	cache_entry_clear(&a2);
	cache_entry_clear(&a);
	a = publish_ok(c, &KEY_A, "identical", "ia3");
	ck_assert_int_eq(count_entries("packages"), 1);

	ck_assert_int_eq(cache_evict(c, &KEY_A), 0);
	ck_assert(exists(b.path));
	struct cache_entry g;
	ck_assert_int_eq(cache_get(c, &KEY_A, &g), -ENOENT);
	ck_assert_int_eq(cache_get(c, &KEY_B, &g), 0);
	ck_assert(g.has_package);
	ck_assert_str_eq(g.path, b.path);
	cache_entry_clear(&g);

	ck_assert_int_eq(cache_evict(c, &KEY_B), 0);
	ck_assert(!exists(b.path));
	ck_assert_int_eq(count_entries("packages"), 0);

	cache_entry_clear(&a);
	cache_entry_clear(&b);
	cache_close(c);
}
END_TEST

START_TEST(test_record_failure)
{
	struct cache *c = open_ok();
	struct cache_entry good = publish_ok(c, &KEY_A, "good package", "ih-good");
	ck_assert_int_eq(cache_record_failure(c, &KEY_A, "ih-bad", "pip failed\nexit 1"), 0);

	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	ck_assert_str_eq(e.path, good.path);
	ck_assert_str_eq(e.input_hash, "ih-good");
	ck_assert_str_eq(e.sha256, good.sha256);
	ck_assert(exists(e.path));
	ck_assert(e.last_failed);
	ck_assert_str_eq(e.last_error, "pip failed exit 1");
	ck_assert_str_eq(e.failed_input_hash, "ih-bad");
	cache_entry_clear(&e);

	/* A later success clears the failure. */
	struct cache_entry ok = publish_ok(c, &KEY_A, "good package 2", "ih-2");
	ck_assert(!ok.last_failed);
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(!e.last_failed);
	ck_assert_ptr_null(e.last_error);
	ck_assert_ptr_null(e.failed_input_hash);
	ck_assert_str_eq(e.input_hash, "ih-2");
	cache_entry_clear(&e);

	/* A key that never built: a row with a failure and no package. */
	ck_assert_int_eq(cache_record_failure(c, &KEY_B, "ih-x", "no such file"), 0);
	ck_assert_int_eq(cache_get(c, &KEY_B, &e), 0);
	ck_assert(!e.has_package);
	ck_assert_ptr_null(e.path);
	ck_assert(e.last_failed);
	ck_assert_str_eq(e.last_error, "no such file");
	cache_entry_clear(&e);

	cache_entry_clear(&good);
	cache_entry_clear(&ok);
	cache_close(c);
}
END_TEST

START_TEST(test_evict)
{
	struct cache *c = open_ok();
	struct cache_entry e = publish_ok(c, &KEY_A, "to be evicted", "ih");
	/* An open fd keeps reading after eviction. */
	int fd = open(e.path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(cache_evict(c, &KEY_A), 0);
	ck_assert(!exists(e.path));
	char buf[64] = { 0 };
	ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen("to be evicted"));
	ck_assert_str_eq(buf, "to be evicted");
	close(fd);

	struct cache_entry g;
	ck_assert_int_eq(cache_get(c, &KEY_A, &g), -ENOENT);
	ck_assert_int_eq(cache_evict(c, &KEY_A), 0); /* missing row: 0 */
	cache_entry_clear(&e);
	cache_close(c);
}
END_TEST

START_TEST(test_persistence)
{
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "persist A", "iha");
	ck_assert_int_eq(cache_record_failure(c, &KEY_B, "ihb", "boom"), 0);
	cache_close(c);

	c = open_ok();
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	ck_assert_str_eq(e.path, a.path);
	ck_assert_str_eq(e.sha256, a.sha256);
	ck_assert_int_eq(e.size, a.size);
	ck_assert_int_eq(e.built_at, a.built_at);
	ck_assert_str_eq(e.input_hash, "iha");
	ck_assert(exists(e.path));
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_get(c, &KEY_B, &e), 0);
	ck_assert(e.last_failed);
	ck_assert_str_eq(e.last_error, "boom");
	cache_entry_clear(&e);
	cache_entry_clear(&a);
	cache_close(c);
}
END_TEST

START_TEST(test_startup_sweep)
{
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "kept", "ih");
	char *half = make_tmp(c, "half-written");
	char *wd = NULL;
	ck_assert_int_eq(cache_make_workdir(c, &wd), 0);
	char *wf = NULL;
	ck_assert_int_ge(asprintf(&wf, "%s/file", wd), 0);
	write_bytes(wf, "work");
	cache_close(c);

	/* A crash between rename and commit leaves an unreferenced package. */
	char *orphan = sub("packages/0000000000000000000000000000000000000000000000000000000000000000.zip");
	write_bytes(orphan, "orphan");

	c = open_ok();
	ck_assert(!exists(half));
	ck_assert(!exists(wd));
	ck_assert(!exists(orphan));
	ck_assert(exists(a.path));
	ck_assert_int_eq(count_entries("tmp"), 0);
	ck_assert_int_eq(count_entries("work"), 0);
	ck_assert_int_eq(count_entries("packages"), 1);
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	cache_entry_clear(&e);

	free(half);
	free(wd);
	free(wf);
	free(orphan);
	cache_entry_clear(&a);
	cache_close(c);
}
END_TEST

START_TEST(test_missing_file)
{
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "will vanish", "ih");
	struct cache_entry b = publish_ok(c, &KEY_B, "vanishes while closed", "ihb");
	ck_assert_int_eq(cache_record_failure(c, &KEY_A, "ih2", "oops"), 0);

	/* Behind the cache's back, while open. */
	ck_assert_int_eq(unlink(a.path), 0);
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(!e.has_package);
	ck_assert_ptr_null(e.path);
	ck_assert_ptr_null(e.input_hash);
	ck_assert_int_eq(e.sha256[0], '\0');
	ck_assert(e.last_failed); /* failure info survives */
	ck_assert_str_eq(e.last_error, "oops");
	cache_entry_clear(&e);
	cache_close(c);

	/* Behind its back while closed: found by the start-up sweep. */
	ck_assert_int_eq(unlink(b.path), 0);
	c = open_ok();
	ck_assert_int_eq(cache_get(c, &KEY_B, &e), 0);
	ck_assert(!e.has_package);
	ck_assert_ptr_null(e.path);
	cache_entry_clear(&e);
	cache_close(c);

	sqlite3 *db = raw_db();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM packages WHERE path IS NOT NULL"), 0);
	sqlite3_close(db);

	/* Rebuilding works after that. */
	c = open_ok();
	struct cache_entry r = publish_ok(c, &KEY_B, "vanishes while closed", "ihb");
	ck_assert(exists(r.path));
	cache_entry_clear(&r);
	cache_close(c);
	cache_entry_clear(&a);
	cache_entry_clear(&b);
}
END_TEST

START_TEST(test_newer_schema_refused)
{
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "from the future", "ih");
	cache_close(c);
	char *stray = sub("packages/stray.zip");
	write_bytes(stray, "x");

	sqlite3 *db = raw_db();
	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	int err = 0;
	c = cache_open(cdir, &err);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(err, -EPROTO);
	/* Refused means untouched: no sweep, no schema change. */
	ck_assert(exists(stray));
	ck_assert(exists(a.path));
	db = raw_db();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), 99);
	sqlite3_close(db);
	free(stray);
	cache_entry_clear(&a);
}
END_TEST

START_TEST(test_not_a_database)
{
	/* A marked cache whose database was replaced by garbage: set aside,
	 * started empty, and the package files it referenced are swept. */
	static const char garbage[] =
		"this is definitely not an SQLite database, just some text padding it out....";
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "the good one", "ih-good");
	cache_close(c);
	char *dbp = sub("sebsfs.db");
	char *aside = sub("sebsfs.db.damaged");
	write_bytes(dbp, garbage);
	int err = 0;
	c = cache_open(cdir, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(err, 0);
	ck_assert(exists(aside));
	struct stat st;
	ck_assert_int_eq(stat(aside, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)strlen(garbage));
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), -ENOENT);
	ck_assert(!exists(a.path));
	cache_close(c);
	free(dbp);
	free(aside);
	cache_entry_clear(&a);
}
END_TEST

START_TEST(test_failed_publish_keeps_old)
{
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "the good one", "ih-good");

	char *missing = cache_tmp_path(c, "zip");
	struct cache_entry out;
	int ret = cache_publish(c, &KEY_A, missing, "ih-new", NULL, 1.0, NULL, false, &out);
	ck_assert_int_eq(ret, -ENOENT);

	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	ck_assert_str_eq(e.path, a.path);
	ck_assert_str_eq(e.input_hash, "ih-good");
	ck_assert_str_eq(e.sha256, a.sha256);
	ck_assert(exists(a.path));
	cache_entry_clear(&e);

	/* A rejected key: tmp_path is removed, nothing lands in packages/. */
	struct cache_key bad = KEY_A;
	bad.benchmark = "../escape";
	char *tmp = make_tmp(c, "rejected");
	ck_assert_int_eq(cache_publish(c, &bad, tmp, "ih", NULL, 1.0, NULL, false, NULL), -EINVAL);
	ck_assert(!exists(tmp));
	ck_assert_int_eq(count_entries("packages"), 1);

	free(tmp);
	free(missing);
	cache_entry_clear(&a);
	cache_close(c);
}
END_TEST

START_TEST(test_paths)
{
	struct cache *c = open_ok();
	char *l = cache_log_path(c, &KEY_B);
	ck_assert_ptr_nonnull(l);
	char *expect = sub("logs/aws/python-3.11-arm64/110.dynamic-html.zip.log");
	ck_assert_str_eq(l, expect);
	/* Asking for a path touches nothing: listing the mount asks for all. */
	ck_assert_int_eq(count_entries("logs"), 0);
	char *platform_dir = sub("logs/aws");
	ck_assert(!exists(platform_dir));
	free(platform_dir);
	struct stat st;
	free(expect);
	free(l);

	struct cache_key bad = KEY_A;
	bad.platform = "..";
	ck_assert_ptr_null(cache_log_path(c, &bad));

	char *t1 = cache_tmp_path(c, ".zip");
	char *t2 = cache_tmp_path(c, ".zip");
	ck_assert_ptr_nonnull(t1);
	ck_assert_ptr_nonnull(t2);
	ck_assert_str_ne(t1, t2);
	char *tmpdir = sub("tmp/");
	ck_assert_int_eq(strncmp(t1, tmpdir, strlen(tmpdir)), 0);
	ck_assert_int_eq(strcmp(t1 + strlen(t1) - 4, ".zip"), 0);
	ck_assert(!exists(t1));
	free(tmpdir);
	free(t1);
	free(t2);

	char *w1 = NULL, *w2 = NULL;
	ck_assert_int_eq(cache_make_workdir(c, &w1), 0);
	ck_assert_int_eq(cache_make_workdir(c, &w2), 0);
	ck_assert_str_ne(w1, w2);
	ck_assert_int_eq(stat(w1, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	char *workdir = sub("work/");
	ck_assert_int_eq(strncmp(w1, workdir, strlen(workdir)), 0);
	free(workdir);
	free(w1);
	free(w2);
	cache_close(c);
}
END_TEST

START_TEST(test_second_instance_refused)
{
	struct cache *c = open_ok();
	int err = 0;
	struct cache *c2 = cache_open(cdir, &err);
	ck_assert_ptr_null(c2);
	ck_assert_int_eq(err, -EBUSY);
	cache_close(c);
	c2 = open_ok();
	cache_close(c2);
}
END_TEST

#define N_THREADS 4
#define N_ROUNDS 15

struct worker {
	struct cache *c;
	struct cache_key key;
	char arch[16];
	int failures;
	char last_content[64];
};

static void *publisher(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < N_ROUNDS; i++) {
		char *tmp = cache_tmp_path(w->c, ".zip");
		snprintf(w->last_content, sizeof(w->last_content), "%s round %d", w->arch, i);
		FILE *f = tmp ? fopen(tmp, "w") : NULL;
		if (!f || fputs(w->last_content, f) < 0 || fclose(f) != 0) {
			w->failures++;
			free(tmp);
			continue;
		}
		if (cache_publish(w->c, &w->key, tmp, "ih", NULL, 0.1, NULL, false, NULL) != 0)
			w->failures++;
		if (i % 3 == 0 && cache_record_failure(w->c, &w->key, "ih", "transient") != 0)
			w->failures++;
		struct cache_entry e;
		if (cache_get(w->c, &w->key, &e) != 0 || !e.has_package)
			w->failures++;
		cache_entry_clear(&e);
		free(tmp);
	}
	return NULL;
}

START_TEST(test_concurrent_publish)
{
	struct cache *c = open_ok();
	struct worker w[N_THREADS];
	pthread_t th[N_THREADS];
	for (int i = 0; i < N_THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].c = c;
		snprintf(w[i].arch, sizeof(w[i].arch), "arch%d", i);
		w[i].key = KEY_A;
		w[i].key.arch = w[i].arch;
		ck_assert_int_eq(pthread_create(&th[i], NULL, publisher, &w[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);

	for (int i = 0; i < N_THREADS; i++) {
		ck_assert_int_eq(w[i].failures, 0);
		struct cache_entry e;
		ck_assert_int_eq(cache_get(c, &w[i].key, &e), 0);
		ck_assert(e.has_package);
		char hex[65];
		sha256sum(e.path, hex);
		ck_assert_str_eq(e.sha256, hex);
		char buf[64] = { 0 };
		FILE *f = fopen(e.path, "r");
		ck_assert_ptr_nonnull(f);
		ck_assert(fgets(buf, sizeof(buf), f) != NULL);
		fclose(f);
		ck_assert_str_eq(buf, w[i].last_content);
		cache_entry_clear(&e);
	}
	/* Every superseded package was unlinked. */
	ck_assert_int_eq(count_entries("packages"), N_THREADS);
	ck_assert_int_eq(count_entries("tmp"), 0);
	cache_close(c);

	sqlite3 *db = raw_db();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM packages"), N_THREADS);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_publish_image_then_get)
{
	struct cache *c = open_ok();
	time_t before = time(NULL);
	struct cache_entry pub = publish_image_ok(c, &KEY_IMG, &IMG_INFO, "ih-img");
	assert_img(&pub, &IMG_INFO);
	ck_assert_str_eq(pub.input_hash, "ih-img");
	ck_assert(!pub.last_failed);

	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), 0);
	assert_img(&e, &IMG_INFO);
	ck_assert_str_eq(e.input_hash, "ih-img");
	ck_assert_str_eq(e.manifest, "{\"files\":[\"Dockerfile\"]}");
	ck_assert(e.build_seconds > 42.24 && e.build_seconds < 42.26);
	ck_assert_int_ge(e.built_at, (int64_t)before);
	ck_assert_int_le(e.built_at, (int64_t)time(NULL));
	ck_assert_int_eq(e.built_at, pub.built_at);
	ck_assert(!e.last_failed);
	ck_assert_ptr_null(e.last_error);
	ck_assert_ptr_null(e.failed_input_hash);
	cache_entry_clear(&e);
	cache_entry_clear(&pub);

	/* No file anywhere, and the row has no file columns. */
	ck_assert_int_eq(count_entries("packages"), 0);
	ck_assert_int_eq(count_entries("tmp"), 0);

	/* The zip key of the same benchmark is another row. */
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), -ENOENT);
	struct cache_entry z = publish_ok(c, &KEY_A, "zip beside image", "ih-zip");
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), 0);
	assert_img(&e, &IMG_INFO);
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	assert_no_image(&e);
	cache_entry_clear(&e);
	cache_entry_clear(&z);

	/* Republishing replaces every image field, including to NULL (a local
	 * build that was not pushed). */
	struct cache_image_info local = {
		.image = "sebs.local/aws-python-3.11-x64:110.dynamic-html",
		.image_id = "sha256:3333333333333333333333333333333333333333333333333333333333333333",
		.size = 99,
	};
	ck_assert_int_eq(cache_publish_image(c, &KEY_IMG, "ih-img2", NULL, 1.0, &local, NULL), 0);
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), 0);
	assert_img(&e, &local);
	ck_assert_str_eq(e.input_hash, "ih-img2");
	ck_assert_ptr_null(e.manifest);
	cache_entry_clear(&e);
	cache_close(c);

	sqlite3 *db = raw_db();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM packages WHERE kind = 'image'"
				 " AND path IS NULL AND size IS NULL AND sha256 IS NULL"), 1);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_image_argument_checks)
{
	struct cache *c = open_ok();
	struct cache_entry out;
	/* cache_publish_image wants kind "image" and image + image_id. */
	ck_assert_int_eq(cache_publish_image(c, &KEY_A, "ih", NULL, 1.0, &IMG_INFO, &out), -EINVAL);
	ck_assert_int_eq(cache_publish_image(c, &KEY_IMG, "ih", NULL, 1.0, NULL, &out), -EINVAL);
	ck_assert_int_eq(cache_publish_image(c, &KEY_IMG, NULL, NULL, 1.0, &IMG_INFO, &out), -EINVAL);
	struct cache_image_info bad = IMG_INFO;
	bad.image_id = NULL;
	ck_assert_int_eq(cache_publish_image(c, &KEY_IMG, "ih", NULL, 1.0, &bad, &out), -EINVAL);
	bad = IMG_INFO;
	bad.image = "";
	ck_assert_int_eq(cache_publish_image(c, &KEY_IMG, "ih", NULL, 1.0, &bad, &out), -EINVAL);
	struct cache_key badkey = KEY_IMG;
	badkey.benchmark = "..";
	ck_assert_int_eq(cache_publish_image(c, &badkey, "ih", NULL, 1.0, &IMG_INFO, &out), -EINVAL);
	ck_assert_int_eq(cache_publish_image(NULL, &KEY_IMG, "ih", NULL, 1.0, &IMG_INFO, NULL), -EINVAL);
	ck_assert_ptr_null(out.image);
	ck_assert(!out.has_package);
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), -ENOENT);
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), -ENOENT);

	/* A file is never published under kind "image"; tmp_path is removed. */
	char *tmp = make_tmp(c, "not an image");
	ck_assert_int_eq(cache_publish(c, &KEY_IMG, tmp, "ih", NULL, 1.0, NULL, false, &out), -EINVAL);
	ck_assert(!exists(tmp));
	ck_assert_int_eq(count_entries("packages"), 0);
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), -ENOENT);
	free(tmp);

	/* An image log path is per kind. */
	char *l = cache_log_path(c, &KEY_IMG);
	char *expect = sub("logs/aws/python-3.11-x64/110.dynamic-html.image.log");
	ck_assert_str_eq(l, expect);
	free(l);
	free(expect);
	cache_close(c);
}
END_TEST

START_TEST(test_image_record_failure)
{
	struct cache *c = open_ok();
	struct cache_entry good = publish_image_ok(c, &KEY_IMG, &IMG_INFO, "ih-good");
	ck_assert_int_eq(cache_record_failure(c, &KEY_IMG, "ih-bad", "docker build\nfailed"), 0);

	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), 0);
	assert_img(&e, &IMG_INFO);
	ck_assert_str_eq(e.input_hash, "ih-good");
	ck_assert_int_eq(e.built_at, good.built_at);
	ck_assert(e.last_failed);
	ck_assert_str_eq(e.last_error, "docker build failed");
	ck_assert_str_eq(e.failed_input_hash, "ih-bad");
	cache_entry_clear(&e);

	/* A later success clears the failure. */
	struct cache_entry ok = publish_image_ok(c, &KEY_IMG, &IMG_INFO, "ih-2");
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), 0);
	ck_assert(!e.last_failed);
	ck_assert_ptr_null(e.last_error);
	ck_assert_ptr_null(e.failed_input_hash);
	ck_assert_str_eq(e.input_hash, "ih-2");
	assert_img(&e, &IMG_INFO);
	cache_entry_clear(&e);

	/* Never built: a failure-only image row has no package and no image. */
	ck_assert_int_eq(cache_record_failure(c, &KEY_IMG2, "ih-x", "no base image"), 0);
	ck_assert_int_eq(cache_get(c, &KEY_IMG2, &e), 0);
	ck_assert(!e.has_package);
	ck_assert_ptr_null(e.path);
	assert_no_image(&e);
	ck_assert(e.last_failed);
	ck_assert_str_eq(e.last_error, "no base image");
	cache_entry_clear(&e);

	cache_entry_clear(&good);
	cache_entry_clear(&ok);
	cache_close(c);
}
END_TEST

START_TEST(test_image_evict)
{
	struct cache *c = open_ok();
	struct cache_entry z = publish_ok(c, &KEY_A, "zip stays", "ih-zip");
	struct cache_entry i = publish_image_ok(c, &KEY_IMG, &IMG_INFO, "ih-img");
	ck_assert_int_eq(cache_evict(c, &KEY_IMG), 0);
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), -ENOENT);
	ck_assert_int_eq(cache_evict(c, &KEY_IMG), 0); /* missing row: 0 */
	/* The zip row and its file are untouched. */
	ck_assert(exists(z.path));
	ck_assert_int_eq(count_entries("packages"), 1);
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	cache_entry_clear(&e);
	/* And a failure-only image row evicts too. */
	ck_assert_int_eq(cache_record_failure(c, &KEY_IMG2, "ih", "x"), 0);
	ck_assert_int_eq(cache_evict(c, &KEY_IMG2), 0);
	ck_assert_int_eq(cache_get(c, &KEY_IMG2, &e), -ENOENT);
	cache_entry_clear(&z);
	cache_entry_clear(&i);
	cache_close(c);

	sqlite3 *db = raw_db();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM packages"), 1);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_image_persistence_and_sweep)
{
	struct cache *c = open_ok();
	struct cache_entry i = publish_image_ok(c, &KEY_IMG, &IMG_INFO, "ih-img");
	ck_assert_int_eq(cache_record_failure(c, &KEY_IMG, "ih-next", "push denied"), 0);
	struct cache_entry z = publish_ok(c, &KEY_A, "zip kept", "ih-zip");
	struct cache_entry gone = publish_ok(c, &KEY_B, "zip vanishes", "ih-b");
	cache_close(c);

	/* Give the sweep work to do: an orphan file and a vanished package. */
	char *orphan = sub("packages/0000000000000000000000000000000000000000000000000000000000000000.zip");
	write_bytes(orphan, "orphan");
	ck_assert_int_eq(unlink(gone.path), 0);

	c = open_ok();
	ck_assert(!exists(orphan));
	ck_assert(exists(z.path));
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), 0);
	assert_img(&e, &IMG_INFO);
	ck_assert_str_eq(e.input_hash, "ih-img");
	ck_assert_str_eq(e.manifest, "{\"files\":[\"Dockerfile\"]}");
	ck_assert_int_eq(e.built_at, i.built_at);
	ck_assert(e.build_seconds > 42.24 && e.build_seconds < 42.26);
	ck_assert(e.last_failed);
	ck_assert_str_eq(e.last_error, "push denied");
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_get(c, &KEY_B, &e), 0);
	ck_assert(!e.has_package); /* the sweep did run */
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	assert_no_image(&e);
	cache_entry_clear(&e);
	cache_close(c);

	/* Nothing was cleared in the database either, and a further open (and
	 * its sweep) still leaves the image row alone. */
	sqlite3 *db = raw_db();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM packages WHERE kind = 'image'"
				 " AND image_id IS NOT NULL AND input_hash = 'ih-img'"
				 " AND built_at IS NOT NULL AND manifest IS NOT NULL"), 1);
	sqlite3_close(db);
	c = open_ok();
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), 0);
	assert_img(&e, &IMG_INFO);
	cache_entry_clear(&e);
	cache_close(c);

	free(orphan);
	cache_entry_clear(&i);
	cache_entry_clear(&z);
	cache_entry_clear(&gone);
}
END_TEST

/* v1 -> v2 -> v3 in one open. */
START_TEST(test_migrate_v1_to_current)
{
	char sha[65];
	const char *content = "package from a v1 cache\n";
	char *pkg = make_v1_cache(content, sha);

	struct cache *c = open_ok();
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	ck_assert_str_eq(e.path, pkg);
	ck_assert_str_eq(e.sha256, sha);
	ck_assert_int_eq(e.size, (int64_t)strlen(content));
	ck_assert_str_eq(e.input_hash, "ih-v1");
	ck_assert_str_eq(e.manifest, "{\"v\":1}");
	ck_assert_int_eq(e.built_at, 1700000000);
	/* a package of an older cache counts as last used when it was built */
	ck_assert_int_eq(e.last_used_ms, 1700000000000LL);
	ck_assert(e.build_seconds > 2.49 && e.build_seconds < 2.51);
	ck_assert(e.last_failed);
	ck_assert_str_eq(e.last_error, "old failure");
	ck_assert_str_eq(e.failed_input_hash, "ih-bad");
	assert_no_image(&e);
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_get(c, &KEY_B, &e), 0);
	ck_assert(!e.has_package);
	ck_assert(e.last_failed);
	ck_assert_str_eq(e.last_error, "never built");
	assert_no_image(&e);
	cache_entry_clear(&e);
	ck_assert(exists(pkg));

	/* The migrated cache takes image rows and new zip packages. */
	struct cache_entry i = publish_image_ok(c, &KEY_IMG, &IMG_INFO, "ih-img");
	struct cache_entry b = publish_ok(c, &KEY_B, "B at last", "ih-b2");
	cache_entry_clear(&i);
	cache_entry_clear(&b);
	cache_close(c);

	sqlite3 *db = raw_db();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_columns_current(db);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM packages"), 3);
	sqlite3_close(db);

	/* Reopening a migrated cache migrates nothing more. */
	c = open_ok();
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), 0);
	assert_img(&e, &IMG_INFO);
	cache_entry_clear(&e);
	cache_close(c);
	free(pkg);
}
END_TEST

START_TEST(test_migration_is_atomic)
{
	char sha[65];
	char *pkg = make_v1_cache("v1 bytes", sha);
	/* A column the v2 step adds already exists, so its third ALTER fails:
	 * the whole step must roll back, leaving a clean v1 database. */
	sqlite3 *db = raw_db();
	ck_assert_int_eq(sqlite3_exec(db, "ALTER TABLE packages ADD COLUMN digest TEXT",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	int err = 0;
	struct cache *c = cache_open(cdir, &err);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(err, -EIO);

	db = raw_db();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), 1);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM pragma_table_info('packages')"
				 " WHERE name IN ('image', 'image_id', 'registry', 'image_size')"), 0);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM packages"), 2);
	/* The v1 column set is intact, so dropping the stray column repairs it. */
	ck_assert_int_eq(sqlite3_exec(db, "ALTER TABLE packages DROP COLUMN digest",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert(exists(pkg)); /* refused before the sweep */

	c = open_ok();
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	ck_assert_str_eq(e.sha256, sha);
	cache_entry_clear(&e);
	cache_close(c);
	db = raw_db();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_columns_current(db);
	sqlite3_close(db);
	free(pkg);
}
END_TEST

/* The v2 step as sebsfs with CACHE_SCHEMA_VERSION 2 ran it. */
static const char MIGRATE_TO_V2[] =
	"ALTER TABLE packages ADD COLUMN image TEXT;"
	"ALTER TABLE packages ADD COLUMN image_id TEXT;"
	"ALTER TABLE packages ADD COLUMN digest TEXT;"
	"ALTER TABLE packages ADD COLUMN registry TEXT;"
	"ALTER TABLE packages ADD COLUMN image_size INTEGER;"
	"PRAGMA user_version = 2;";

START_TEST(test_migrate_v2_to_v3)
{
	char sha[65];
	char *pkg = make_v1_cache("package from a v2 cache", sha);
	sqlite3 *db = raw_db();
	ck_assert_int_eq(sqlite3_exec(db, MIGRATE_TO_V2, NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db,
		"INSERT INTO packages (platform, language, version, arch, benchmark, kind,"
		" input_hash, built_at, image, image_id, image_size)"
		" VALUES ('aws','python','3.11','x64','110.dynamic-html','image', 'ih-img',"
		" 1700000100, 'repo:tag', 'sha256:abc', 7)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	struct cache *c = open_ok();
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	ck_assert_int_eq(e.last_used_ms, 1700000000000LL);
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_get(c, &KEY_B, &e), 0); /* failure-only row: no use */
	ck_assert_int_eq(e.last_used_ms, 0);
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &e), 0);
	ck_assert(e.has_package);
	ck_assert_int_eq(e.last_used_ms, 0); /* images are not ranked */
	cache_entry_clear(&e);
	cache_close(c);

	db = raw_db();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_columns_current(db);
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM packages WHERE kind = 'image'"
				 " AND last_used_ms IS NULL"), 1);
	sqlite3_close(db);
	free(pkg);
}
END_TEST

START_TEST(test_publish_records_use)
{
	struct cache *c = open_ok();
	int64_t before = cache_now_ms();
	struct cache_entry a = publish_ok(c, &KEY_A, "used now", "ih");
	int64_t after = cache_now_ms();
	ck_assert_int_ge(a.last_used_ms, before);
	ck_assert_int_le(a.last_used_ms, after);
	struct cache_entry g;
	ck_assert_int_eq(cache_get(c, &KEY_A, &g), 0);
	ck_assert_int_eq(g.last_used_ms, a.last_used_ms);
	/* the clock of last_used_ms is the wall clock of built_at */
	ck_assert_int_le(g.built_at * 1000, g.last_used_ms);
	ck_assert_int_gt(g.built_at * 1000 + 1000, g.last_used_ms);
	cache_entry_clear(&g);
	cache_entry_clear(&a);
	cache_close(c);
}
END_TEST

START_TEST(test_touch)
{
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "touched", "ih");
	struct cache_entry g;
	int64_t later = a.last_used_ms + 5000;
	ck_assert_int_eq(cache_touch(c, &KEY_A, later), 0);
	ck_assert_int_eq(cache_get(c, &KEY_A, &g), 0);
	ck_assert_int_eq(g.last_used_ms, later);
	cache_entry_clear(&g);

	/* an older use written late does not move it back */
	ck_assert_int_eq(cache_touch(c, &KEY_A, later - 3000), 0);
	ck_assert_int_eq(cache_get(c, &KEY_A, &g), 0);
	ck_assert_int_eq(g.last_used_ms, later);
	cache_entry_clear(&g);

	/* rows without a package, missing rows and image rows: no-ops */
	ck_assert_int_eq(cache_record_failure(c, &KEY_B, "ihb", "boom"), 0);
	ck_assert_int_eq(cache_touch(c, &KEY_B, later), 0);
	ck_assert_int_eq(cache_get(c, &KEY_B, &g), 0);
	ck_assert_int_eq(g.last_used_ms, 0);
	cache_entry_clear(&g);
	struct cache_entry i = publish_image_ok(c, &KEY_IMG, &IMG_INFO, "ih-img");
	ck_assert_int_eq(cache_touch(c, &KEY_IMG, later), 0);
	ck_assert_int_eq(cache_touch(c, &KEY_IMG2, later), 0);
	ck_assert_int_eq(cache_get(c, &KEY_IMG, &g), 0);
	ck_assert_int_eq(g.last_used_ms, 0);
	cache_entry_clear(&g);
	struct cache_key bad = KEY_A;
	bad.benchmark = "..";
	ck_assert_int_eq(cache_touch(c, &bad, later), -EINVAL);
	cache_close(c);

	/* it is in the database, not only in this connection */
	c = open_ok();
	ck_assert_int_eq(cache_get(c, &KEY_A, &g), 0);
	ck_assert_int_eq(g.last_used_ms, later);
	cache_entry_clear(&g);
	cache_entry_clear(&a);
	cache_entry_clear(&i);
	cache_close(c);
}
END_TEST

static int64_t file_size(const char *p)
{
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	return st.st_size;
}

START_TEST(test_lru_order_and_total)
{
	static const struct cache_key KEY_C = { "gcp", "python", "3.10", "x64", "311.compression", "zip" };
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "package A, some bytes", "ia");
	struct cache_entry b = publish_ok(c, &KEY_B, "package B", "ib");
	struct cache_entry k = publish_ok(c, &KEY_C, "package C has the most bytes of all", "ic");
	struct cache_entry i = publish_image_ok(c, &KEY_IMG, &IMG_INFO, "ih-img");
	int64_t t = cache_now_ms() + 10000;
	ck_assert_int_eq(cache_touch(c, &KEY_A, t + 300), 0);
	ck_assert_int_eq(cache_touch(c, &KEY_B, t + 100), 0);
	ck_assert_int_eq(cache_touch(c, &KEY_C, t + 200), 0);

	struct cache_lru_file *files = NULL;
	size_t n = 0;
	int64_t total = -1;
	ck_assert_int_eq(cache_lru(c, &files, &n, &total), 0);
	ck_assert_uint_eq(n, 3); /* the image row has no file */
	ck_assert_str_eq(files[0].sha256, b.sha256);
	ck_assert_str_eq(files[1].sha256, k.sha256);
	ck_assert_str_eq(files[2].sha256, a.sha256);
	ck_assert_int_eq(files[0].last_used_ms, t + 100);
	ck_assert_int_eq(files[2].last_used_ms, t + 300);
	ck_assert_int_eq(files[1].size, file_size(k.path));
	ck_assert_uint_eq(files[1].n_keys, 1);
	ck_assert_str_eq(files[1].keys[0].platform, "gcp");
	ck_assert_str_eq(files[1].keys[0].benchmark, "311.compression");
	ck_assert_str_eq(files[1].keys[0].kind, "zip");
	ck_assert_int_eq(total, file_size(a.path) + file_size(b.path) + file_size(k.path));
	cache_lru_free(files, n);

	/* a use moves a package to the end */
	ck_assert_int_eq(cache_touch(c, &KEY_B, t + 400), 0);
	ck_assert_int_eq(cache_lru(c, &files, &n, NULL), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(files[0].sha256, k.sha256);
	ck_assert_str_eq(files[2].sha256, b.sha256);
	cache_lru_free(files, n);

	/* an empty cache: nothing, total 0 */
	ck_assert_int_eq(cache_evict(c, &KEY_A), 0);
	ck_assert_int_eq(cache_evict(c, &KEY_B), 0);
	ck_assert_int_eq(cache_evict(c, &KEY_C), 0);
	ck_assert_int_eq(cache_lru(c, &files, &n, &total), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(total, 0);
	cache_lru_free(files, n);

	cache_entry_clear(&a);
	cache_entry_clear(&b);
	cache_entry_clear(&k);
	cache_entry_clear(&i);
	cache_close(c);
}
END_TEST

START_TEST(test_lru_shared_file)
{
	static const struct cache_key KEY_C = { "gcp", "python", "3.10", "x64", "311.compression", "zip" };
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "identical bytes", "ia");
	struct cache_entry b = publish_ok(c, &KEY_B, "identical bytes", "ib");
	struct cache_entry k = publish_ok(c, &KEY_C, "other bytes", "ic");
	int64_t t = cache_now_ms() + 10000;
	/* A is the least recently used row, but the file it shares with B was
	 * used last: the file ranks by its latest use */
	ck_assert_int_eq(cache_touch(c, &KEY_A, t + 100), 0);
	ck_assert_int_eq(cache_touch(c, &KEY_C, t + 200), 0);
	ck_assert_int_eq(cache_touch(c, &KEY_B, t + 300), 0);

	struct cache_lru_file *files = NULL;
	size_t n = 0;
	int64_t total = 0;
	ck_assert_int_eq(cache_lru(c, &files, &n, &total), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(files[0].sha256, k.sha256);
	ck_assert_str_eq(files[1].sha256, a.sha256);
	ck_assert_int_eq(files[1].last_used_ms, t + 300);
	ck_assert_uint_eq(files[1].n_keys, 2);
	ck_assert_str_eq(files[1].keys[0].arch, "arm64"); /* KEY_B sorts first */
	ck_assert_str_eq(files[1].keys[1].arch, "x64");
	/* counted once */
	ck_assert_int_eq(total, file_size(a.path) + file_size(k.path));
	cache_lru_free(files, n);
	cache_entry_clear(&a);
	cache_entry_clear(&b);
	cache_entry_clear(&k);
	cache_close(c);
}
END_TEST

START_TEST(test_evict_package)
{
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "shared content", "ia");
	struct cache_entry b = publish_ok(c, &KEY_B, "shared content", "ib");
	int64_t size = file_size(a.path);
	int64_t freed = -1;
	struct cache_entry g;

	/* not (or no longer) that package: nothing happens */
	char other[65];
	memset(other, 'f', 64);
	other[64] = '\0';
	ck_assert_int_eq(cache_evict_package(c, &KEY_A, other, &freed), -ESTALE);
	ck_assert_int_eq(freed, 0);
	ck_assert_int_eq(cache_get(c, &KEY_A, &g), 0);
	ck_assert(g.has_package);
	cache_entry_clear(&g);
	static const struct cache_key KEY_NONE = { "gcp", "python", "3.10", "x64", "010.sleep", "zip" };
	ck_assert_int_eq(cache_evict_package(c, &KEY_NONE, a.sha256, &freed), -ESTALE);
	ck_assert_int_eq(cache_evict_package(c, &KEY_IMG, a.sha256, &freed), -EINVAL);
	ck_assert_int_eq(cache_evict_package(c, &KEY_A, "short", &freed), -EINVAL);

	/* the file stays while B references it; an open fd reads on after */
	int fd = open(a.path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(cache_evict_package(c, &KEY_A, a.sha256, &freed), 0);
	ck_assert_int_eq(freed, 0);
	ck_assert(exists(a.path));
	ck_assert_int_eq(cache_get(c, &KEY_A, &g), -ENOENT);
	ck_assert_int_eq(cache_evict_package(c, &KEY_B, a.sha256, &freed), 0);
	ck_assert_int_eq(freed, size);
	ck_assert(!exists(a.path));
	ck_assert_int_eq(count_entries("packages"), 0);
	char buf[64] = { 0 };
	ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), size);
	ck_assert_str_eq(buf, "shared content");
	close(fd);

	/* republished meanwhile: the listing's digest is stale */
	struct cache_entry a2 = publish_ok(c, &KEY_A, "rebuilt with other bytes", "ia2");
	ck_assert_int_eq(cache_evict_package(c, &KEY_A, a.sha256, &freed), -ESTALE);
	ck_assert(exists(a2.path));
	ck_assert_int_eq(cache_evict_package(c, &KEY_A, a2.sha256, NULL), 0);
	ck_assert(!exists(a2.path));

	cache_entry_clear(&a);
	cache_entry_clear(&b);
	cache_entry_clear(&a2);
	cache_close(c);
}
END_TEST


/* ---------------------------------------------------------- the cache folder */

static mode_t mode_of(const char *p)
{
	struct stat st;
	ck_assert_msg(lstat(p, &st) == 0, "%s: %s", p, strerror(errno));
	return st.st_mode & 07777;
}

static void assert_mode(const char *rel, mode_t want)
{
	char *p = sub(rel);
	mode_t got = mode_of(p);
	ck_assert_msg(got == want, "%s has mode %04o, expected %04o", p, (unsigned)got,
		      (unsigned)want);
	free(p);
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n = getdelim(&buf, &cap, '\0', f);
	fclose(f);
	if (n < 0) { /* empty file */
		free(buf);
		buf = strdup("");
	}
	ck_assert_ptr_nonnull(buf);
	return buf;
}

static void mkdirs_of_cdir(void)
{
	char *p = NULL;
	ck_assert_int_ge(asprintf(&p, "%s/cache", root), 0);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	free(p);
	ck_assert_int_eq(mkdir(cdir, 0755), 0);
}

static void assert_marked(void)
{
	char *m = sub(".sebsfs-cache");
	char *text = read_text(m);
	ck_assert_msg(strncmp(text, "sebsfs-cache 1\n", 15) == 0, "marker: %s", text);
	free(text);
	free(m);
	char *t = sub("CACHEDIR.TAG");
	text = read_text(t);
	ck_assert_msg(strncmp(text, "Signature: 8a477f597d28d172789f06886806bc55", 43) == 0,
		      "CACHEDIR.TAG: %s", text);
	free(text);
	free(t);
}

/* An existing non-empty folder without the marker ($HOME, a project) is
 * refused: nothing in it changes and nothing is created in it. */
START_TEST(test_refuses_unmarked_folder)
{
	mkdirs_of_cdir();
	const char *dirs[] = { "tmp", "work", "packages", "logs" };
	for (int i = 0; i < 4; i++) {
		char *d = sub(dirs[i]);
		ck_assert_int_eq(mkdir(d, 0755), 0);
		free(d);
	}
	const char *files[] = { "notes.txt", "tmp/draft", "work/project.c", "packages/x",
				"logs/old.log", "CACHEDIR.TAG" };
	for (int i = 0; i < 6; i++) {
		char *f = sub(files[i]);
		write_bytes(f, files[i]);
		free(f);
	}

	char why[512] = "";
	ck_assert_int_eq(cache_dir_check(cdir, why, sizeof(why)), -ENOTEMPTY);
	ck_assert_msg(strstr(why, "not a sebsfs cache") != NULL, "why: %s", why);
	ck_assert(strchr(why, '\n') == NULL);
	int err = 0;
	ck_assert_ptr_null(cache_open(cdir, &err));
	ck_assert_int_eq(err, -ENOTEMPTY);

	for (int i = 0; i < 6; i++) {
		char *f = sub(files[i]);
		char *text = read_text(f);
		ck_assert_str_eq(text, files[i]);
		free(text);
		free(f);
	}
	ck_assert_int_eq(count_entries(""), 6); /* notes.txt, CACHEDIR.TAG, 4 folders */
	ck_assert_int_eq(count_entries("tmp"), 1);
	ck_assert_int_eq(count_entries("work"), 1);
	ck_assert_int_eq(count_entries("packages"), 1);
	ck_assert_int_eq(count_entries("logs"), 1);
	assert_mode("", 0755);
	assert_mode("logs/old.log", 0644);
}
END_TEST

START_TEST(test_refuses_foreign_marker)
{
	mkdirs_of_cdir();
	char *m = sub(".sebsfs-cache");
	char *other = sub("other");
	write_bytes(other, "keep me");

	write_bytes(m, "something else\n");
	int err = 0;
	ck_assert_ptr_null(cache_open(cdir, &err));
	ck_assert_int_eq(err, -EINVAL);
	/* A newer sebsfs's cache is not this one's to change. */
	write_bytes(m, "sebsfs-cache 7\n");
	char why[512] = "";
	ck_assert_int_eq(cache_dir_check(cdir, why, sizeof(why)), -EPROTO);
	ck_assert_msg(strstr(why, "newer") != NULL, "why: %s", why);
	ck_assert_ptr_null(cache_open(cdir, &err));
	ck_assert_int_eq(err, -EPROTO);
	ck_assert_int_eq(count_entries(""), 2);
	char *text = read_text(other);
	ck_assert_str_eq(text, "keep me");
	free(text);
	free(other);
	free(m);
}
END_TEST

START_TEST(test_adopts_empty_folder)
{
	mkdirs_of_cdir();
	char why[512] = "x";
	ck_assert_int_eq(cache_dir_check(cdir, why, sizeof(why)), 0);
	ck_assert_int_eq(count_entries(""), 0); /* the check created nothing */
	struct cache *c = open_ok();
	cache_close(c);
	assert_marked();
	assert_mode("", 0700);
	assert_mode("packages", 0700);
	/* Marked now: reopening works even though it is no longer empty. */
	ck_assert_int_eq(cache_dir_check(cdir, why, sizeof(why)), 0);
	cache_close(open_ok());
}
END_TEST

START_TEST(test_creates_missing_folder_private)
{
	umask(022);
	char why[512] = "";
	ck_assert_int_eq(cache_dir_check(cdir, why, sizeof(why)), 0);
	ck_assert(!exists(cdir));
	struct cache *c = open_ok();
	assert_marked();
	assert_mode("", 0700);
	const char *dirs[] = { "packages", "tmp", "logs", "work" };
	for (int i = 0; i < 4; i++)
		assert_mode(dirs[i], 0700);
	/* A write, so SQLite has its -wal and -shm files. */
	struct cache_entry a = publish_ok(c, &KEY_A, "private", "ih");
	assert_mode("sebsfs.db", 0600);
	assert_mode("sebsfs.db-wal", 0600);
	assert_mode("sebsfs.db-shm", 0600);
	assert_mode("sebsfs.lock", 0600);

	int fd = cache_log_open(c, &KEY_B);
	ck_assert_msg(fd >= 0, "cache_log_open: %s", strerror(-fd));
	ck_assert_int_eq(write(fd, "hello\n", 6), 6);
	ck_assert_int_eq(close(fd), 0);
	assert_mode("logs/aws", 0700);
	assert_mode("logs/aws/python-3.11-arm64", 0700);
	assert_mode("logs/aws/python-3.11-arm64/110.dynamic-html.zip.log", 0600);
	char *lp = cache_log_path(c, &KEY_B);
	char *text = read_text(lp);
	ck_assert_str_eq(text, "hello\n");
	free(text);

	/* A new build truncates the log and appends; an old 0644 log becomes 0600. */
	ck_assert_int_eq(chmod(lp, 0644), 0);
	fd = cache_log_open(c, &KEY_B);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND), O_WRONLY | O_APPEND);
	ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	ck_assert_int_eq(write(fd, "second\n", 7), 7);
	ck_assert_int_eq(close(fd), 0);
	text = read_text(lp);
	ck_assert_str_eq(text, "second\n");
	free(text);
	assert_mode("logs/aws/python-3.11-arm64/110.dynamic-html.zip.log", 0600);

	struct cache_key bad = KEY_A;
	bad.arch = "..";
	ck_assert_int_eq(cache_log_open(c, &bad), -EINVAL);
	free(lp);
	cache_entry_clear(&a);
	cache_close(c);
}
END_TEST

/* Missing parents are ordinary folders; only the cache itself is private,
 * also when its name ends in a slash. */
START_TEST(test_creates_missing_folder_trailing_slash)
{
	umask(022);
	strcat(cdir, "/");
	cache_close(open_ok());
	assert_marked();
	assert_mode("", 0700);
	char *parent = NULL;
	ck_assert_int_ge(asprintf(&parent, "%s/cache", root), 0);
	ck_assert_int_eq(mode_of(parent), 0755);
	free(parent);
}
END_TEST

/* A cache of the sebsfs before markers (0755 folders, 0644 files) is adopted,
 * marked and tightened. */
START_TEST(test_adopts_legacy_cache)
{
	umask(022);
	char sha[65];
	char *pkg = make_v1_cache("legacy bytes", sha);
	char *d1 = sub("logs/aws");
	char *d2 = sub("logs/aws/python-3.11-x64");
	ck_assert_int_eq(mkdir(d1, 0755), 0);
	ck_assert_int_eq(mkdir(d2, 0755), 0);
	char *log = sub("logs/aws/python-3.11-x64/110.dynamic-html.zip.log");
	write_bytes(log, "[sebsfs] build succeeded in 1.00 s: 3 bytes\n");
	ck_assert_int_eq(chmod(log, 0644), 0);
	ck_assert_int_eq(chmod(cdir, 0755), 0);
	char *dbp = sub("sebsfs.db");
	ck_assert_int_eq(chmod(dbp, 0644), 0);
	char *marker = sub(".sebsfs-cache");
	ck_assert(!exists(marker));

	char why[512] = "";
	ck_assert_int_eq(cache_dir_check(cdir, why, sizeof(why)), 0);
	struct cache *c = open_ok();
	assert_marked();
	assert_mode("", 0700);
	assert_mode("packages", 0700);
	assert_mode("logs", 0700);
	assert_mode("logs/aws", 0700);
	assert_mode("logs/aws/python-3.11-x64", 0700);
	assert_mode("logs/aws/python-3.11-x64/110.dynamic-html.zip.log", 0600);
	assert_mode("sebsfs.db", 0600);
	assert_mode("sebsfs.db-wal", 0600); /* created (0644) by the migration */
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	ck_assert_str_eq(e.path, pkg);
	cache_entry_clear(&e);
	cache_close(c);
	char *text = read_text(log);
	ck_assert_str_eq(text, "[sebsfs] build succeeded in 1.00 s: 3 bytes\n");
	free(text);
	free(d1);
	free(d2);
	free(log);
	free(dbp);
	free(marker);
	free(pkg);
}
END_TEST

/* The marker makes the folder sebsfs's: a lost database is recreated and
 * the package files it no longer references are swept (cache.h). */
START_TEST(test_marked_without_database)
{
	struct cache *c = open_ok();
	struct cache_entry a = publish_ok(c, &KEY_A, "orphaned by the lost db", "ih");
	cache_close(c);
	const char *gone[] = { "sebsfs.db", "sebsfs.db-wal", "sebsfs.db-shm" };
	for (int i = 0; i < 3; i++) {
		char *p = sub(gone[i]);
		ck_assert(unlink(p) == 0 || errno == ENOENT);
		free(p);
	}
	char *other = sub("notes.txt");
	write_bytes(other, "mine");

	c = open_ok();
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), -ENOENT);
	ck_assert(!exists(a.path));
	ck_assert(exists(other));
	assert_mode("sebsfs.db", 0600);
	cache_close(c);
	free(other);
	cache_entry_clear(&a);
}
END_TEST

/* Writes a log (mode 0644, as older sebsfs did) with the given content. */
static char *put_log(const char *rel, const char *content)
{
	char *p = sub(rel);
	char *dir = strdup(p);
	*strrchr(dir, '/') = '\0';
	char *up = strdup(dir);
	*strrchr(up, '/') = '\0';
	ck_assert(mkdir(up, 0755) == 0 || errno == EEXIST);
	ck_assert(mkdir(dir, 0755) == 0 || errno == EEXIST);
	write_bytes(p, content);
	ck_assert_int_eq(chmod(p, 0644), 0);
	free(dir);
	free(up);
	return p;
}

/* A string of n bytes of c (malloc'd). */
static char *filled(size_t n, char ch)
{
	char *s = malloc(n + 1);
	ck_assert_ptr_nonnull(s);
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

START_TEST(test_interrupted_logs)
{
	cache_close(open_ok());
	const char *END = CACHE_LOG_INTERRUPTED "\n";
	char *pad = filled(20000, 'p');
	char *long_line = filled(10000, 'L');
	char *long_ok = NULL, *long_cut = NULL;
	ck_assert_int_ge(asprintf(&long_ok, "%s\n[sebsfs] build succeeded in 1 s\n", pad), 0);
	ck_assert_int_ge(asprintf(&long_cut, "%s\n%s\n", pad, long_line), 0);
	struct {
		const char *rel, *content;
		bool interrupted;
	} logs[] = {
		{ "logs/aws/python-3.11-x64/a.zip.log", "[sebsfs] installing\nhalf a li", true },
		{ "logs/aws/python-3.11-x64/b.zip.log", "out\n[sebsfs] build succeeded in 1.0 s: 1 bytes\n", false },
		{ "logs/aws/python-3.11-x64/c.zip.log", "[sebsfs] error: x\n[sebsfs] build failed: x\n", false },
		{ "logs/aws/python-3.11-x64/d.zip.log", "", true },
		{ "logs/aws/python-3.11-x64/e.zip.log", "[sebsfs] build: step\n", true },
		{ "logs/gcp/nodejs-20-x64/f.image.log", "[sebsfs] building image x\n", true },
		{ "logs/gcp/nodejs-20-x64/g.zip.log", long_ok, false },
		{ "logs/gcp/nodejs-20-x64/h.zip.log", long_cut, true },
		/* "build failed" inside, not at the start of, the last line */
		{ "logs/gcp/nodejs-20-x64/i.zip.log", "npm: build failed\n", true },
	};
	size_t n = sizeof(logs) / sizeof(logs[0]);
	char *paths[16];
	for (size_t i = 0; i < n; i++)
		paths[i] = put_log(logs[i].rel, logs[i].content);
	char *notes = put_log("logs/aws/python-3.11-x64/notes.txt", "not a log");

	for (int round = 0; round < 2; round++) {
		/* The second open must not add a second line. */
		cache_close(open_ok());
		for (size_t i = 0; i < n; i++) {
			char *text = read_text(paths[i]);
			char *want = NULL;
			size_t len = strlen(logs[i].content);
			const char *sep = len && logs[i].content[len - 1] != '\n' ? "\n" : "";
			ck_assert_int_ge(asprintf(&want, "%s%s%s", logs[i].content, sep,
						  logs[i].interrupted ? END : ""), 0);
			ck_assert_msg(strcmp(text, want) == 0, "%s (round %d): got ...%s",
				      logs[i].rel, round,
				      strlen(text) > 200 ? text + strlen(text) - 200 : text);
			assert_mode(logs[i].rel, 0600);
			free(want);
			free(text);
		}
		char *text = read_text(notes);
		ck_assert_str_eq(text, "not a log");
		free(text);
	}
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(notes);
	free(pad);
	free(long_line);
	free(long_ok);
	free(long_cut);
}
END_TEST


/* ---- dependency layers ---- */

#define LAYER_K1 "1111111111111111111111111111111111111111111111111111111111111111"
#define LAYER_K2 "2222222222222222222222222222222222222222222222222222222222222222"

/* A layer folder under tmp/ holding deps.zip (content) and extra/a.txt. */
static char *make_layer_dir(struct cache *c, const char *content)
{
	char *dir = NULL;
	ck_assert_int_eq(cache_make_tmpdir(c, &dir), 0);
	char *zip, *extra, *file;
	ck_assert_int_ge(asprintf(&zip, "%s/deps.zip", dir), 0);
	ck_assert_int_ge(asprintf(&extra, "%s/extra", dir), 0);
	ck_assert_int_ge(asprintf(&file, "%s/extra/a.txt", dir), 0);
	write_bytes(zip, content);
	ck_assert_int_eq(mkdir(extra, 0700), 0);
	write_bytes(file, "abc");
	free(zip);
	free(extra);
	free(file);
	return dir;
}

START_TEST(test_layer_publish_get_evict)
{
	struct cache *c = open_ok();
	struct cache_layer l;
	ck_assert_int_eq(cache_layer_get(c, LAYER_K1, &l), -ENOENT);
	ck_assert_int_eq(cache_layer_get(c, "not-a-key", &l), -EINVAL);
	ck_assert_int_eq(cache_layer_get(c, "../../../../../../../../../../../../../../etc/passwd1234", &l),
			 -EINVAL);

	char *dir = make_layer_dir(c, "0123456789");
	ck_assert_int_eq(cache_publish_layer(c, LAYER_K1, dir, 2.5, &l), 0);
	ck_assert(!exists(dir));
	char *want = sub("layers/" LAYER_K1);
	ck_assert_str_eq(l.path, want);
	ck_assert_int_eq(l.size, 13);
	ck_assert(l.build_seconds == 2.5);
	cache_layer_clear(&l);
	free(dir);

	/* files read-only, row present */
	char *zip = sub("layers/" LAYER_K1 "/deps.zip");
	struct stat st;
	ck_assert_int_eq(stat(zip, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0444);
	ck_assert_int_eq(cache_layer_get(c, LAYER_K1, &l), 0);
	ck_assert_int_eq(l.size, 13);
	cache_layer_clear(&l);

	/* the LRU lists it with the packages, and counts it */
	struct cache_entry e = publish_ok(c, &KEY_A, "package", "ih");
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_layer_touch(c, LAYER_K1, cache_now_ms() + 60000), 0);
	struct cache_lru_file *files = NULL;
	size_t n = 0;
	int64_t total = 0;
	ck_assert_int_eq(cache_lru(c, &files, &n, &total), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(total, 13 + 7);
	ck_assert_str_eq(files[0].layer, "");  /* the package: used before the layer */
	ck_assert_str_eq(files[1].layer, LAYER_K1);
	ck_assert_int_eq(files[1].n_keys, 0);
	cache_lru_free(files, n);

	int64_t freed = 0;
	ck_assert_int_eq(cache_evict_layer(c, LAYER_K1, &freed), 0);
	ck_assert_int_eq(freed, 13);
	ck_assert(!exists(want));
	ck_assert_int_eq(cache_layer_get(c, LAYER_K1, &l), -ENOENT);
	ck_assert_int_eq(cache_evict_layer(c, LAYER_K1, &freed), 0);
	ck_assert_int_eq(freed, 0);
	free(want);
	free(zip);
	cache_close(c);
}
END_TEST

/* A crash between the rename and the commit leaves a folder without a row,
 * a folder deleted by hand leaves a row without a folder: the next open
 * removes both, and a vanished folder reads as no layer. */
START_TEST(test_layer_sweep)
{
	struct cache *c = open_ok();
	struct cache_layer l;
	char *dir = make_layer_dir(c, "x");
	ck_assert_int_eq(cache_publish_layer(c, LAYER_K1, dir, 1, NULL), 0);
	free(dir);
	dir = make_layer_dir(c, "y");
	ck_assert_int_eq(cache_publish_layer(c, LAYER_K2, dir, 1, NULL), 0);
	free(dir);
	cache_close(c);

	char *orphan = sub("layers/3333333333333333333333333333333333333333333333333333333333333333");
	ck_assert_int_eq(mkdir(orphan, 0700), 0);
	char *gone = sub("layers/" LAYER_K2);
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s' && rm -r '%s'", gone, gone);
	ck_assert_int_eq(system(cmd), 0);

	c = open_ok();
	ck_assert(!exists(orphan));
	ck_assert_int_eq(cache_layer_get(c, LAYER_K2, &l), -ENOENT);
	ck_assert_int_eq(cache_layer_get(c, LAYER_K1, &l), 0);
	cache_layer_clear(&l);
	sqlite3 *db = raw_db();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM layers"), 1);
	sqlite3_close(db);

	/* vanished while open */
	char *k1 = sub("layers/" LAYER_K1);
	snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s' && rm -r '%s'", k1, k1);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(cache_layer_get(c, LAYER_K1, &l), -ENOENT);
	db = raw_db();
	ck_assert_int_eq(raw_int(db, "SELECT count(*) FROM layers"), 0);
	sqlite3_close(db);
	cache_close(c);
	free(orphan);
	free(gone);
	free(k1);
}
END_TEST

/* deps_hash / deps_reused travel with a published package row. */
START_TEST(test_publish_records_deps)
{
	struct cache *c = open_ok();
	char *tmp = make_tmp(c, "zip with a layer");
	struct cache_deps deps = { LAYER_K1, true };
	struct cache_entry e;
	ck_assert_int_eq(cache_publish(c, &KEY_A, tmp, "ih", NULL, 1.0, &deps, false, &e), 0);
	ck_assert_str_eq(e.deps_hash, LAYER_K1);
	ck_assert(e.deps_reused);
	cache_entry_clear(&e);
	free(tmp);
	cache_close(c);
	c = open_ok();
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert_str_eq(e.deps_hash, LAYER_K1);
	ck_assert(e.deps_reused);
	cache_entry_clear(&e);
	/* a package without a layer clears them */
	e = publish_ok(c, &KEY_A, "zip without", "ih2");
	ck_assert_ptr_null(e.deps_hash);
	ck_assert(!e.deps_reused);
	cache_entry_clear(&e);
	cache_close(c);
}
END_TEST

/* The v4 -> v5 step as sebsfs with CACHE_SCHEMA_VERSION 4 would have left
 * it: a v1 cache brought to v4 by today's steps, then user_version 4. */
START_TEST(test_migrate_v4_to_v5_unzipped_size)
{
	char sha[65];
	char *pkg = make_v1_cache("package from a v4 cache", sha);
	sqlite3 *db = raw_db();
	ck_assert_int_eq(sqlite3_exec(db,
		"ALTER TABLE packages ADD COLUMN image TEXT;"
		"ALTER TABLE packages ADD COLUMN image_id TEXT;"
		"ALTER TABLE packages ADD COLUMN digest TEXT;"
		"ALTER TABLE packages ADD COLUMN registry TEXT;"
		"ALTER TABLE packages ADD COLUMN image_size INTEGER;"
		"ALTER TABLE packages ADD COLUMN last_used_ms INTEGER;"
		"ALTER TABLE packages ADD COLUMN deps_hash TEXT;"
		"ALTER TABLE packages ADD COLUMN deps_reused INTEGER;"
		"CREATE TABLE layers (key TEXT PRIMARY KEY, size INTEGER NOT NULL,"
		" built_ms INTEGER NOT NULL, build_seconds REAL, last_used_ms INTEGER NOT NULL);"
		"PRAGMA user_version = 4;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	struct cache *c = open_ok();
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	ck_assert_int_eq(e.unzipped_size, -1); /* not known: no rebuild, learnt later */
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_set_unzipped_size(c, &KEY_A, "0000", 10), -ESTALE);
	ck_assert_int_eq(cache_set_unzipped_size(c, &KEY_B, sha, 10), -ESTALE); /* no package */
	ck_assert_int_eq(cache_set_unzipped_size(c, &KEY_IMG, sha, 10), -EINVAL);
	ck_assert_int_eq(cache_set_unzipped_size(c, &KEY_A, sha, 123456), 0);
	cache_close(c);

	db = raw_db();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_columns_current(db);
	sqlite3_close(db);
	c = open_ok();
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert_int_eq(e.unzipped_size, 123456);
	cache_entry_clear(&e);
	/* a new package of the key is not the old one's size */
	e = publish_ok(c, &KEY_A, "another package", "ih-new");
	ck_assert_int_eq(e.unzipped_size, -1);
	char new_sha[65];
	memcpy(new_sha, e.sha256, sizeof(new_sha));
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert_int_eq(e.unzipped_size, -1);
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_set_unzipped_size(c, &KEY_A, new_sha, 0), 0);
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert_int_eq(e.unzipped_size, 0);
	cache_entry_clear(&e);
	/* evicted: no package, no size */
	ck_assert_int_eq(cache_evict(c, &KEY_A), 0);
	ck_assert_int_eq(cache_set_unzipped_size(c, &KEY_A, new_sha, 1), -ESTALE);
	cache_close(c);
	free(pkg);
}
END_TEST

/* The origin of a package: a remote one says so until a local build
 * replaces it; a v5 cache's packages were all built here. */
START_TEST(test_origin_remote_and_migrate_v5_to_v6)
{
	char sha[65];
	char *pkg = make_v1_cache("package from a v5 cache", sha);
	sqlite3 *db = raw_db();
	ck_assert_int_eq(sqlite3_exec(db,
		"ALTER TABLE packages ADD COLUMN image TEXT;"
		"ALTER TABLE packages ADD COLUMN image_id TEXT;"
		"ALTER TABLE packages ADD COLUMN digest TEXT;"
		"ALTER TABLE packages ADD COLUMN registry TEXT;"
		"ALTER TABLE packages ADD COLUMN image_size INTEGER;"
		"ALTER TABLE packages ADD COLUMN last_used_ms INTEGER;"
		"ALTER TABLE packages ADD COLUMN deps_hash TEXT;"
		"ALTER TABLE packages ADD COLUMN deps_reused INTEGER;"
		"ALTER TABLE packages ADD COLUMN unzipped_size INTEGER;"
		"CREATE TABLE layers (key TEXT PRIMARY KEY, size INTEGER NOT NULL,"
		" built_ms INTEGER NOT NULL, build_seconds REAL, last_used_ms INTEGER NOT NULL);"
		"PRAGMA user_version = 5;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	struct cache *c = open_ok();
	struct cache_entry e;
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.has_package);
	ck_assert(!e.remote);
	cache_entry_clear(&e);
	db = raw_db();
	ck_assert_int_eq(raw_int(db, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_columns_current(db);
	sqlite3_close(db);

	char *tmp = make_tmp(c, "fetched from a registry");
	ck_assert_int_eq(cache_publish(c, &KEY_A, tmp, "ih-r", NULL, 0.5, NULL, true, &e), 0);
	ck_assert(e.remote);
	cache_entry_clear(&e);
	free(tmp);
	cache_close(c);
	c = open_ok();
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(e.remote);
	cache_entry_clear(&e);
	e = publish_ok(c, &KEY_A, "built here", "ih-l");
	ck_assert(!e.remote);
	cache_entry_clear(&e);
	ck_assert_int_eq(cache_get(c, &KEY_A, &e), 0);
	ck_assert(!e.remote);
	cache_entry_clear(&e);
	cache_close(c);
	free(pkg);
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_creates_schema);
	tcase_add_test(tc, test_cache_id_is_kept);
	tcase_add_test(tc, test_publish_then_get);
	tcase_add_test(tc, test_publish_null_manifest_and_out);
	tcase_add_test(tc, test_republish_replaces);
	tcase_add_test(tc, test_shared_file);
	tcase_add_test(tc, test_record_failure);
	tcase_add_test(tc, test_evict);
	tcase_add_test(tc, test_persistence);
	tcase_add_test(tc, test_startup_sweep);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_newer_schema_refused);
	tcase_add_test(tc, test_not_a_database);
	tcase_add_test(tc, test_failed_publish_keeps_old);
	tcase_add_test(tc, test_paths);
	tcase_add_test(tc, test_second_instance_refused);
	tcase_add_test(tc, test_concurrent_publish);
	tcase_add_test(tc, test_publish_image_then_get);
	tcase_add_test(tc, test_image_argument_checks);
	tcase_add_test(tc, test_image_record_failure);
	tcase_add_test(tc, test_image_evict);
	tcase_add_test(tc, test_image_persistence_and_sweep);
	tcase_add_test(tc, test_migrate_v1_to_current);
	tcase_add_test(tc, test_migrate_v2_to_v3);
	tcase_add_test(tc, test_migrate_v4_to_v5_unzipped_size);
	tcase_add_test(tc, test_origin_remote_and_migrate_v5_to_v6);
	tcase_add_test(tc, test_publish_records_use);
	tcase_add_test(tc, test_touch);
	tcase_add_test(tc, test_lru_order_and_total);
	tcase_add_test(tc, test_lru_shared_file);
	tcase_add_test(tc, test_evict_package);
	tcase_add_test(tc, test_migration_is_atomic);
	tcase_add_test(tc, test_refuses_unmarked_folder);
	tcase_add_test(tc, test_refuses_foreign_marker);
	tcase_add_test(tc, test_adopts_empty_folder);
	tcase_add_test(tc, test_creates_missing_folder_private);
	tcase_add_test(tc, test_creates_missing_folder_trailing_slash);
	tcase_add_test(tc, test_adopts_legacy_cache);
	tcase_add_test(tc, test_marked_without_database);
	tcase_add_test(tc, test_interrupted_logs);
	tcase_add_test(tc, test_layer_publish_get_evict);
	tcase_add_test(tc, test_layer_sweep);
	tcase_add_test(tc, test_publish_records_deps);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cache_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
