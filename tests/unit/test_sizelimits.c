/*
 * test_sizelimits.c - Check suite for sizelimits.h: the defaults, the limits
 * file, the warning line, and a zip's unzipped size.
 *
 * The zips are real: ziptree_write of a tree written here, whose regular
 * files' sizes are known from what was written (links and folders count
 * nothing).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "sizelimits.h"
#include "ziptree.h"

static char *tmpdir;

static void setup(void)
{
	char tmpl[] = "/tmp/sebsfs-sizelimits-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	tmpdir = strdup(tmpl);
}

static void teardown(void)
{
	rm_rf(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
}

static void limits_of(const struct size_limits *l, const char *platform, int64_t zipped,
		      int64_t unzipped)
{
	int64_t z = -1, u = -1;
	size_limits_get(l, platform, &z, &u);
	ck_assert_msg(z == zipped && u == unzipped, "%s: zipped %lld unzipped %lld, expected %lld %lld",
		      platform, (long long)z, (long long)u, (long long)zipped, (long long)unzipped);
}

START_TEST(test_defaults)
{
	struct size_limits l;
	ck_assert_int_eq(size_limits_defaults(&l), 0);
	limits_of(&l, "aws", 52428800, 262144000);          /* 50 MiB, 250 MiB */
	limits_of(&l, "gcp", 100000000, 500000000);          /* 100 MB, 500 MB */
	limits_of(&l, "openwhisk", 48000000, 0);             /* 48 MB */
	limits_of(&l, "azure", 0, 0);
	limits_of(&l, "local", 0, 0);
	limits_of(&l, "somewhere-else", 0, 0);
	size_limits_free(&l);
}
END_TEST

START_TEST(test_parse_size)
{
	static const struct {
		const char *text;
		int64_t bytes;
	} ok[] = {
		{ "0", 0 }, { "262144000", 262144000 }, { "50 MiB", 52428800 }, { "50MiB", 52428800 },
		{ "250 MB", 250000000 }, { "48MB", 48000000 }, { "1 kB", 1000 }, { "3 KiB", 3072 },
		{ "2 GB", 2000000000 }, { "1 GiB", 1073741824 }, { "12 B", 12 },
	};
	static const char *const bad[] = {
		"", " 5", "-5", "+5", "5.5 MB", "5 mb", "5 MiBs", "5  MiB", "MiB", "5 M", "5 K",
		"99999999999999999999", "9223372036854775807 GiB",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		int64_t v = -1;
		ck_assert_msg(size_limits_parse_size(ok[i].text, &v) == 0, "%s refused", ok[i].text);
		ck_assert_msg(v == ok[i].bytes, "%s: %lld", ok[i].text, (long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int64_t v = -7;
		ck_assert_msg(size_limits_parse_size(bad[i], &v) == -EINVAL, "%s taken", bad[i]);
		ck_assert_int_eq(v, -7);
	}
}
END_TEST

START_TEST(test_parse_overrides)
{
	struct size_limits l;
	char why[256] = "";
	ck_assert_int_eq(size_limits_defaults(&l), 0);
	int rc = size_limits_parse(&l,
		"{\"aws\": {\"zipped\": 30000, \"unzipped\": \"40 KiB\"},"
		" \"gcp\": {\"unzipped\": null},"
		" \"azure\": {\"zipped\": \"1 MB\"},"
		" \"openwhisk\": {}}", why, sizeof(why));
	ck_assert_msg(rc == 0, "%s", why);
	limits_of(&l, "aws", 30000, 40960);
	limits_of(&l, "gcp", 100000000, 0);     /* zipped kept, unzipped lifted */
	limits_of(&l, "azure", 1000000, 0);     /* a platform without defaults */
	limits_of(&l, "openwhisk", 48000000, 0);
	/* a second file applies over the first */
	rc = size_limits_parse(&l, "{\"aws\": {\"zipped\": 0}}", why, sizeof(why));
	ck_assert_msg(rc == 0, "%s", why);
	limits_of(&l, "aws", 0, 40960);
	size_limits_free(&l);
}
END_TEST

START_TEST(test_parse_errors)
{
	static const struct {
		const char *text;
		const char *says;
	} bad[] = {
		{ "", "line 1" },
		{ "{\"aws\": {\"zipped\": 1,}}", "line 1" },
		{ "[1]", "expected a JSON object" },
		{ "{\"aws\": 5}", "aws: expected an object" },
		{ "{\"aws\": {\"zip\": 5}}", "aws.zip: unknown" },
		{ "{\"aws\": {\"zipped\": -1}}", "aws.zipped: expected bytes" },
		{ "{\"aws\": {\"zipped\": 1.5}}", "aws.zipped: expected bytes" },
		{ "{\"aws\": {\"zipped\": \"50 mb\"}}", "aws.zipped: expected bytes" },
		{ "{\"aws\": {\"zipped\": true}}", "aws.zipped: expected bytes" },
		{ "{\"gcp\": {\"unzipped\": 1}, \"gcp\": {\"zipped\": 1}}", "duplicate" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct size_limits l;
		char why[256] = "";
		ck_assert_int_eq(size_limits_defaults(&l), 0);
		ck_assert_msg(size_limits_parse(&l, bad[i].text, why, sizeof(why)) == -EINVAL,
			      "%s taken", bad[i].text);
		ck_assert_msg(strstr(why, bad[i].says), "%s: why is \"%s\", expected \"%s\"",
			      bad[i].text, why, bad[i].says);
		limits_of(&l, "aws", 52428800, 262144000); /* unchanged */
		size_limits_free(&l);
	}
}
END_TEST

START_TEST(test_load_file)
{
	struct size_limits l = { 0 };
	char why[256] = "";
	char *missing = path_join(tmpdir, "missing.json");
	ck_assert_int_eq(size_limits_load(&l, missing, why, sizeof(why)), -ENOENT);
	ck_assert_str_eq(why, strerror(ENOENT));
	char *file = path_join(tmpdir, "limits.json");
	const char text[] = "{\"local\": {\"unzipped\": \"2 KiB\"}}\n";
	ck_assert_int_eq(write_file_atomic(file, text, strlen(text)), 0);
	ck_assert_int_eq(size_limits_load(&l, file, why, sizeof(why)), 0);
	limits_of(&l, "local", 0, 2048);
	size_limits_free(&l);
	free(missing);
	free(file);
}
END_TEST

START_TEST(test_check_line)
{
	struct size_limits l;
	char line[SIZE_WARNING_MAX] = "";
	ck_assert_int_eq(size_limits_defaults(&l), 0);
	/* below both: nothing; a limit is met only below it (SeBS: size < 50 MiB) */
	ck_assert(!size_limits_check(&l, "aws", 52428799, 262143999, line, sizeof(line)));
	ck_assert_str_eq(line, "");
	ck_assert(size_limits_check(&l, "aws", 52428800, 1000, line, sizeof(line)));
	ck_assert_str_eq(line, "aws size limit exceeded: zipped 52428800 bytes (limit 52428800,"
			       " exceeded); unzipped 1000 bytes (limit 262144000)");
	ck_assert(size_limits_check(&l, "aws", 1000, 300000000, line, sizeof(line)));
	ck_assert_str_eq(line, "aws size limit exceeded: zipped 1000 bytes (limit 52428800);"
			       " unzipped 300000000 bytes (limit 262144000, exceeded)");
	ck_assert(size_limits_check(&l, "openwhisk", 50000000, 90000000, line, sizeof(line)));
	ck_assert_str_eq(line, "openwhisk size limit exceeded: zipped 50000000 bytes (limit"
			       " 48000000, exceeded); unzipped 90000000 bytes (no limit)");
	/* an unknown unzipped size is not checked */
	ck_assert(!size_limits_check(&l, "aws", 10, -1, line, sizeof(line)));
	ck_assert(size_limits_check(&l, "aws", 60000000, -1, NULL, 0));
	ck_assert(!size_limits_check(&l, "azure", INT64_MAX, INT64_MAX, NULL, 0));
	size_limits_free(&l);
}
END_TEST

static void write_sized(const char *dir, const char *rel, size_t n)
{
	char *p = path_join(dir, rel);
	char *data = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)('a' + (i * 7 + i / 13) % 26);
	ck_assert_int_eq(write_file_atomic(p, data, n), 0);
	free(data);
	free(p);
}

static int zip_of(const char *tree, const char *name)
{
	char *zip = path_join(tmpdir, name);
	int fd = open(zip, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	char *err = NULL;
	ck_assert_msg(ziptree_write(tree, fd, &err) == 0, "%s", err ? err : "");
	free(zip);
	return fd;
}

START_TEST(test_unzipped_size_of_a_tree)
{
	char *tree = path_join(tmpdir, "tree");
	char *sub = path_join(tree, "pkg/sub");
	ck_assert_int_eq(mkdir_p(sub, 0755), 0);
	write_sized(tree, "handler.py", 1234);
	write_sized(tree, "pkg/__init__.py", 0);
	write_sized(tree, "pkg/sub/data.bin", 100000);
	write_sized(tree, "pkg/sub/run.sh", 77);
	char *run = path_join(tree, "pkg/sub/run.sh");
	ck_assert_int_eq(chmod(run, 0755), 0);
	char *link = path_join(tree, "pkg/link.bin");
	ck_assert_int_eq(symlink("sub/data.bin", link), 0); /* a link is no regular file */
	int fd = zip_of(tree, "tree.zip");
	int64_t size = -1;
	char *err = NULL;
	ck_assert_msg(zip_unzipped_size(fd, &size, &err) == 0, "%s", err ? err : "");
	ck_assert_int_eq(size, 1234 + 0 + 100000 + 77);
	/* the zip's size is well below: the data compressed */
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_lt(st.st_size, 100000);
	close(fd);

	/* a zip comment does not hide the end record */
	char *with_comment = path_join(tmpdir, "comment.zip");
	char *plain = path_join(tmpdir, "tree.zip");
	char *bytes = NULL;
	size_t len = 0;
	ck_assert_int_eq(read_file(plain, &bytes, &len), 0);
	const char comment[] = "PK\x05\x06 looks like an end record, is a comment";
	size_t clen = sizeof(comment) - 1;
	char *patched = malloc(len + clen);
	memcpy(patched, bytes, len);
	patched[len - 2] = (char)(clen & 0xff);
	patched[len - 1] = (char)(clen >> 8);
	memcpy(patched + len, comment, clen);
	ck_assert_int_eq(write_file_atomic(with_comment, patched, len + clen), 0);
	fd = open(with_comment, O_RDONLY);
	size = -1;
	ck_assert_int_eq(zip_unzipped_size(fd, &size, NULL), 0);
	ck_assert_int_eq(size, 1234 + 0 + 100000 + 77);
	close(fd);

	/* cut off: no end record */
	ck_assert_int_eq(write_file_atomic(with_comment, bytes, len - 5), 0);
	fd = open(with_comment, O_RDONLY);
	err = NULL;
	ck_assert_int_eq(zip_unzipped_size(fd, &size, &err), -EBADMSG);
	ck_assert_ptr_nonnull(err);
	free(err);
	close(fd);
	free(bytes);
	free(patched);
	free(plain);
	free(with_comment);
	free(tree);
	free(sub);
	free(run);
	free(link);
}
END_TEST

START_TEST(test_unzipped_size_empty_and_not_zip)
{
	char *tree = path_join(tmpdir, "empty");
	ck_assert_int_eq(mkdir(tree, 0755), 0);
	int fd = zip_of(tree, "empty.zip");
	int64_t size = -1;
	ck_assert_int_eq(zip_unzipped_size(fd, &size, NULL), 0);
	ck_assert_int_eq(size, 0);
	close(fd);
	char *text = path_join(tmpdir, "text");
	ck_assert_int_eq(write_file_atomic(text, "not a zip at all, just text", 27), 0);
	fd = open(text, O_RDONLY);
	char *err = NULL;
	ck_assert_int_eq(zip_unzipped_size(fd, &size, &err), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "not a zip"));
	free(err);
	close(fd);
	ck_assert_int_eq(write_file_atomic(text, "", 0), 0);
	fd = open(text, O_RDONLY);
	ck_assert_int_eq(zip_unzipped_size(fd, &size, NULL), -EBADMSG);
	close(fd);
	free(text);
	free(tree);
}
END_TEST

static Suite *sizelimits_suite(void)
{
	Suite *s = suite_create("sizelimits");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_parse_overrides);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_check_line);
	tcase_add_test(tc, test_unzipped_size_of_a_tree);
	tcase_add_test(tc, test_unzipped_size_empty_and_not_zip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sizelimits_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
