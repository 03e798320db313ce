/*
 * test_sebshash.c - SeBS's code-package hash (sebshash.h).
 *
 * "sebs" cases: tests/unit/fixtures/sebshash/manifest.json lists cases on
 * the fixture tree root/ there with the hash SeBS's own
 * Benchmark.hash_directory gave (make-fixtures.py, which also checks that
 * no case depends on readdir order).  "order" cases build folders with
 * several matches of one pattern and compare with an MD5 over the files in
 * the order readdir gives here.  "errors" cases: where SeBS would crash or
 * hang, sebs_hash fails and names the file.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/md5.h>
#include <nettle/version.h>

#include "fsutil.h"
#include "sebshash.h"

#define FIXTURES SOURCE_ROOT "/tests/unit/fixtures/sebshash"
#define MD5_OF_NOTHING "d41d8cd98f00b204e9800998ecf8427e"

static json_t *manifest;
/* Per-run root, made and removed by main(): Check exits a failed test's
 * process without running its teardown. */
static char rootdir[48];

static const char *case_str(json_t *c, const char *key)
{
	const char *s = json_string_value(json_object_get(c, key));
	ck_assert_msg(s != NULL, "manifest case without \"%s\"", key);
	return s;
}

START_TEST(hash_matches_sebs)
{
	json_t *c = json_array_get(json_object_get(manifest, "cases"), (size_t)_i);
	char *bench = path_join(FIXTURES "/root", case_str(c, "benchmark"));
	char out[SEBS_HASH_HEX_LEN + 1];
	char *errmsg = NULL;
	int rc = sebs_hash(FIXTURES "/root", case_str(c, "platform"), case_str(c, "language"),
			   bench, case_str(c, "variant"), out, &errmsg);
	ck_assert_msg(rc == 0, "%s %s: %s", case_str(c, "benchmark"), case_str(c, "platform"),
		      errmsg ? errmsg : strerror(-rc));
	ck_assert_msg(strcmp(out, case_str(c, "hash")) == 0, "%s %s %s %s: %s, SeBS: %s",
		      case_str(c, "benchmark"), case_str(c, "platform"), case_str(c, "language"),
		      case_str(c, "variant"), out, case_str(c, "hash"));
	free(bench);
}
END_TEST

/* ---- helpers for trees made at run time ----------------------------------- */

static char *tp(const char *name, const char *rel)
{
	char *base = path_join(rootdir, name);
	char *p = rel ? path_join(base, rel) : strdup(base);
	ck_assert_ptr_nonnull(p);
	free(base);
	return p;
}

static void put(const char *test, const char *rel, const char *content)
{
	char *path = tp(test, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	ck_assert_int_eq(mkdir_p(path, 0755), 0);
	*slash = '/';
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fputs(content, f);
	fclose(f);
	free(path);
}

static void link_at(const char *test, const char *target, const char *rel)
{
	char *path = tp(test, rel);
	ck_assert_msg(symlink(target, path) == 0, "%s: %s", path, strerror(errno));
	free(path);
}

static void md5_hex(struct md5_ctx *ctx, char out[SEBS_HASH_HEX_LEN + 1])
{
	uint8_t d[MD5_DIGEST_SIZE];
#if NETTLE_VERSION_MAJOR >= 4
	md5_digest(ctx, d);
#else
	md5_digest(ctx, sizeof(d), d);
#endif
	for (int i = 0; i < MD5_DIGEST_SIZE; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void md5_add_file(struct md5_ctx *ctx, const char *path)
{
	char *data;
	size_t len;
	int rc = read_file(path, &data, &len);
	ck_assert_msg(rc == 0, "%s: %s", path, strerror(-rc));
	md5_update(ctx, len, (const uint8_t *)data);
	free(data);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The names in dir in readdir order (no "." and ".."), count in *n. */
static char **readdir_names(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
	char **names = NULL;
	struct dirent *de;
	*n = 0;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		names = realloc(names, (*n + 1) * sizeof(*names));
		ck_assert_ptr_nonnull(names);
		names[(*n)++] = strdup(de->d_name);
	}
	closedir(d);
	return names;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the files of dir whose names end in suffix and do not start with
 * '.', in readdir order, or sorted by name.  Returns whether readdir's
 * order of them differs from the sorted one. */
static bool md5_add_matches(struct md5_ctx *ctx, const char *dir, const char *suffix, bool sorted)
{
	size_t n, m = 0;
	char **names = readdir_names(dir, &n);
	for (size_t i = 0; i < n; i++)
		if (names[i][0] != '.' && ends_with(names[i], suffix))
			names[m++] = names[i];
		else
			free(names[i]);
	char **order = malloc((m ? m : 1) * sizeof(*order));
	memcpy(order, names, m * sizeof(*order));
	qsort(order, m, sizeof(*order), cmp_names);
	bool differs = memcmp(order, names, m * sizeof(*order)) != 0;
	for (size_t i = 0; i < m; i++) {
		char *path = path_join(dir, sorted ? order[i] : names[i]);
		md5_add_file(ctx, path);
		free(path);
	}
	for (size_t i = 0; i < m; i++)
		free(names[i]);
	free(order);
	free(names);
	return differs;
}

/* os.walk top-down: a folder's files in readdir order, then its folders. */
static void md5_add_walk(struct md5_ctx *ctx, const char *dir)
{
	size_t n;
	char **names = readdir_names(dir, &n);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			char *path = path_join(dir, names[i]);
			if (path_is_dir(path) == (pass == 1)) {
				if (pass == 0)
					md5_add_file(ctx, path);
				else
					md5_add_walk(ctx, path);
			}
			free(path);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void hash_ok(const char *test, const char *platform, const char *language,
		    const char *bench_rel, char out[SEBS_HASH_HEX_LEN + 1])
{
	char *root = tp(test, NULL), *bench = tp(test, bench_rel);
	char *errmsg = NULL;
	int rc = sebs_hash(root, platform, language, bench, NULL, out, &errmsg);
	ck_assert_msg(rc == 0, "%s: %s", test, errmsg ? errmsg : strerror(-rc));
	ck_assert_uint_eq(strlen(out), SEBS_HASH_HEX_LEN);
	free(root);
	free(bench);
}

/* ---- order ----------------------------------------------------------------- */

static void put_each(const char *test, const char *dir, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char rel[256], content[300];
		snprintf(rel, sizeof(rel), "%s/%s", dir, names[i]);
		snprintf(content, sizeof(content), "content of %s\n", rel);
		put(test, rel, content);
	}
}

/* Files created out of name order, so that neither a tmpfs (creation order
 * or its reverse) nor a hashed directory is likely to list them sorted. */
static const char *const PY[] = { "m.py", "b.py", "x.py", "a.py", "q.py", "c.py" };
static const char *const JSON[] = { "z.json", "package.json", "d.json", ".hidden.json" };
static const char *const WRAP[] = { "storage.py", "handler.py", "nosql.py", "setup.py" };

START_TEST(glob_matches_in_readdir_order)
{
	char got[SEBS_HASH_HEX_LEN + 1], want[SEBS_HASH_HEX_LEN + 1], sorted[SEBS_HASH_HEX_LEN + 1];
	put_each("glob", "b/python", PY, 6);
	put_each("glob", "b/python", JSON, 4);
	put_each("glob", "benchmarks/wrappers/aws/python", WRAP, 4);
	hash_ok("glob", "aws", "python", "b", got);

	char *bench = tp("glob", "b/python"), *wrappers = tp("glob", "benchmarks/wrappers/aws/python");
	bool differs = false;
	for (int s = 0; s < 2; s++) {
		struct md5_ctx ctx;
		md5_init(&ctx);
		/* *.py, requirements.txt* (none), *.sh (none), *.json, wrappers *.py */
		differs |= md5_add_matches(&ctx, bench, ".py", s);
		differs |= md5_add_matches(&ctx, bench, ".json", s);
		differs |= md5_add_matches(&ctx, wrappers, ".py", s);
		md5_hex(&ctx, s ? sorted : want);
	}
	ck_assert_str_eq(got, want);
	if (differs) /* the order is really readdir's, not the names' */
		ck_assert_str_ne(got, sorted);
	free(bench);
	free(wrappers);
}
END_TEST

START_TEST(java_src_walked_in_readdir_order)
{
	static const char *const top[] = { "Z.java", "A.java", "M.java", ".hidden" };
	static const char *const sub[] = { "k/K2.java", "k/K1.java", "b/B.txt", "b/deep/D.java",
					   "b/deep/C.java", "y/Y.java" };
	char got[SEBS_HASH_HEX_LEN + 1], want[SEBS_HASH_HEX_LEN + 1];
	put_each("walk", "b/java", PY, 3); /* not hashed: java hashes *.java */
	put_each("walk", "b/java", top, 3);
	put_each("walk", "benchmarks/wrappers/aws/java/src", top, 4);
	put_each("walk", "benchmarks/wrappers/aws/java/src", sub, 6);
	/* a link to a folder is listed but not entered, a link to a file is hashed */
	link_at("walk", "k", "benchmarks/wrappers/aws/java/src/linked");
	link_at("walk", "../k/K1.java", "benchmarks/wrappers/aws/java/src/y/link.java");
	hash_ok("walk", "aws", "java", "b", got);

	char *bench = tp("walk", "b/java"), *src = tp("walk", "benchmarks/wrappers/aws/java/src");
	struct md5_ctx ctx;
	md5_init(&ctx);
	md5_add_matches(&ctx, bench, ".java", false);
	/* md5_add_walk would enter "linked": walk src's parts without it */
	size_t n;
	char **names = readdir_names(src, &n);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			char *path = path_join(src, names[i]);
			bool dir = path_is_dir(path);
			if (pass == 0 && !dir)
				md5_add_file(&ctx, path);
			else if (pass == 1 && dir && strcmp(names[i], "linked") != 0)
				md5_add_walk(&ctx, path);
			free(path);
		}
	md5_hex(&ctx, want);
	ck_assert_str_eq(got, want);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(bench);
	free(src);
}
END_TEST

START_TEST(missing_folders_hash_nothing)
{
	char got[SEBS_HASH_HEX_LEN + 1];
	put("missing", "b/config.json", "{}");
	hash_ok("missing", "aws", "python", "b", got);
	ck_assert_str_eq(got, MD5_OF_NOTHING);
	hash_ok("missing", "aws", "cpp", "no-such-benchmark", got);
	ck_assert_str_eq(got, MD5_OF_NOTHING);
}
END_TEST

/* ---- errors ---------------------------------------------------------------- */

/* sebs_hash on test's tree fails with want and a message naming needle. */
static void hash_fails(const char *test, const char *language, int want, const char *needle)
{
	char *root = tp(test, NULL), *bench = tp(test, "b");
	char out[SEBS_HASH_HEX_LEN + 1];
	char *errmsg = NULL;
	int rc = sebs_hash(root, "aws", language, bench, NULL, out, &errmsg);
	ck_assert_msg(rc == want, "%s: %d (%s), want %d", test, rc, errmsg ? errmsg : "", want);
	ck_assert_msg(errmsg && strstr(errmsg, needle), "%s: message '%s' lacks '%s'", test,
		      errmsg ? errmsg : "(none)", needle);
	free(errmsg);
	free(root);
	free(bench);
}

START_TEST(dangling_link_is_an_error)
{
	put("dangling", "b/python/handler.py", "x");
	link_at("dangling", "nowhere.py", "b/python/broken.py");
	hash_fails("dangling", "python", -ENOENT, "b/python/broken.py");
}
END_TEST

START_TEST(dangling_literal_match_is_an_error)
{
	/* glob's literal case tests lexists: SeBS opens the link and fails */
	put("literal", "b/nodejs/handler.js", "x");
	link_at("literal", "nowhere.json", "b/nodejs/package.json");
	hash_fails("literal", "nodejs", -ENOENT, "b/nodejs/package.json");
}
END_TEST

START_TEST(hidden_dangling_link_is_ignored)
{
	char before[SEBS_HASH_HEX_LEN + 1], after[SEBS_HASH_HEX_LEN + 1];
	put("hidden", "b/python/handler.py", "x");
	hash_ok("hidden", "aws", "python", "b", before);
	link_at("hidden", "nowhere.py", "b/python/.broken.py");
	hash_ok("hidden", "aws", "python", "b", after);
	ck_assert_str_eq(before, after);
}
END_TEST

START_TEST(folder_match_is_an_error)
{
	put("folder", "b/python/pkg.py/inner.py", "x");
	hash_fails("folder", "python", -EISDIR, "b/python/pkg.py");
}
END_TEST

START_TEST(fifo_is_an_error)
{
	put("fifo", "b/python/handler.py", "x");
	char *fifo = tp("fifo", "b/python/events.json");
	ck_assert_int_eq(mkfifo(fifo, 0644), 0);
	hash_fails("fifo", "python", -EINVAL, "b/python/events.json");
	free(fifo);
}
END_TEST

START_TEST(dangling_link_in_walked_src_is_an_error)
{
	put("walkdangling", "b/java/F.java", "x");
	put("walkdangling", "benchmarks/wrappers/aws/java/src/main/H.java", "x");
	link_at("walkdangling", "nowhere", "benchmarks/wrappers/aws/java/src/main/.gone");
	hash_fails("walkdangling", "java", -ENOENT, "src/main/.gone");
}
END_TEST

START_TEST(unknown_language_is_an_error)
{
	put("language", "b/go/main.go", "x");
	hash_fails("language", "go", -EINVAL, "go");
}
END_TEST

static Suite *sebshash_suite(void)
{
	Suite *s = suite_create("sebshash");
	TCase *tc = tcase_create("sebs");
	tcase_add_loop_test(tc, hash_matches_sebs, 0,
			    (int)json_array_size(json_object_get(manifest, "cases")));
	suite_add_tcase(s, tc);

	tc = tcase_create("order");
	tcase_add_test(tc, glob_matches_in_readdir_order);
	tcase_add_test(tc, java_src_walked_in_readdir_order);
	tcase_add_test(tc, missing_folders_hash_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, dangling_link_is_an_error);
	tcase_add_test(tc, dangling_literal_match_is_an_error);
	tcase_add_test(tc, hidden_dangling_link_is_ignored);
	tcase_add_test(tc, folder_match_is_an_error);
	tcase_add_test(tc, fifo_is_an_error);
	tcase_add_test(tc, dangling_link_in_walked_src_is_an_error);
	tcase_add_test(tc, unknown_language_is_an_error);
	suite_add_tcase(s, tc);
	return s;
}

static int nftw_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int main(void)
{
	json_error_t jerr;
	manifest = json_load_file(FIXTURES "/manifest.json", 0, &jerr);
	if (!manifest) {
		fprintf(stderr, "%s/manifest.json: %s (line %d)\n", FIXTURES, jerr.text, jerr.line);
		return 1;
	}
	/* The case count comes from the manifest: an empty one would pass. */
	if (json_array_size(json_object_get(manifest, "cases")) < 27) {
		fprintf(stderr, "%s/manifest.json lacks cases\n", FIXTURES);
		return 1;
	}
	snprintf(rootdir, sizeof(rootdir), "/tmp/sebsfs-test-sebshash-XXXXXX");
	if (!mkdtemp(rootdir)) {
		perror("mkdtemp");
		return 1;
	}
	SRunner *sr = srunner_create(sebshash_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(rootdir, nftw_rm, 16, FTW_DEPTH | FTW_PHYS);
	json_decref(manifest);
	return failed ? 1 : 0;
}
