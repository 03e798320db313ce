/*
 * test_zipview.c - Check suite for zipview.h: the index of a zip's entries,
 * reads of one entry, and the versions of packages' indexes.
 *
 * Zips are written here with libarchive (names, folder entries, compression,
 * zip64 chosen per test) or by ziptree_write from a tree on disk, as the
 * builder writes packages; damaged ones are patched byte by byte.  The
 * expected content is what was written, never what zipview reads.
 */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "zipview.h"
#include "ziptree.h"

static char *tmpdir;

static void setup_tmp(void)
{
	char tmpl[] = "/tmp/sebsfs-zipview-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	tmpdir = strdup(tmpl);
}

static void teardown_tmp(void)
{
	rm_rf(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
}

struct member {
	const char *name;
	mode_t mode;         /* S_IFREG/S_IFDIR/S_IFLNK | perms */
	const char *data;    /* file content or link target */
	size_t len;          /* 0: strlen(data) */
};

/* Writes members into a fresh zip file; returns an fd open for reading. */
static int write_zip(const struct member *m, size_t n, const char *compression, bool zip64)
{
	char *path = path_join(tmpdir, "in.zip");
	struct archive *a = archive_write_new();
	ck_assert_int_eq(archive_write_set_format_zip(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_set_format_option(a, "zip", "compression", compression),
			 ARCHIVE_OK);
	if (zip64)
		ck_assert_int_eq(archive_write_set_format_option(a, "zip", "zip64", "1"), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		size_t len = m[i].len ? m[i].len : m[i].data ? strlen(m[i].data) : 0;
		archive_entry_set_pathname(ae, m[i].name);
		archive_entry_set_mode(ae, m[i].mode);
		if (S_ISLNK(m[i].mode))
			archive_entry_set_symlink(ae, m[i].data);
		else if (S_ISREG(m[i].mode))
			archive_entry_set_size(ae, (la_int64_t)len);
		ck_assert_int_eq(archive_write_header(a, ae), ARCHIVE_OK);
		if (S_ISREG(m[i].mode))
			ck_assert_int_eq(archive_write_data(a, m[i].data, len), (la_ssize_t)len);
		archive_entry_free(ae);
	}
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	free(path);
	return fd;
}

static struct zipview_index *load_ok(int fd)
{
	struct zipview_index *idx = NULL;
	char *err = NULL;
	int rc = zipview_index_load(fd, &idx, &err);
	ck_assert_msg(rc == 0, "zipview_index_load: %d %s", rc, err ? err : "");
	free(err);
	return idx;
}

/* The entry at path ("a/b/c") by lookups from the root; -errno if none. */
static int64_t find(const struct zipview_index *idx, const char *path)
{
	char *copy = strdup(path), *save = NULL;
	int64_t at = 0;
	for (char *c = strtok_r(copy, "/", &save); c && at >= 0; c = strtok_r(NULL, "/", &save))
		at = zipview_lookup(idx, (uint32_t)at, c);
	free(copy);
	return at;
}

static char *read_all(const struct zipview_index *idx, uint32_t entry, int fd, size_t chunk)
{
	const struct zipview_entry *e = zipview_entry(idx, entry);
	char *buf = malloc(e->size + 1);
	struct zipview_reader *r = zipview_reader_new(idx, entry, fd);
	ck_assert_ptr_nonnull(r);
	size_t done = 0;
	for (;;) {
		char *err = NULL;
		ssize_t n = zipview_read(r, buf + done, chunk, done, &err);
		ck_assert_msg(n >= 0, "read: %zd %s", n, err ? err : "");
		free(err);
		if (n == 0)
			break;
		done += (size_t)n;
	}
	ck_assert_uint_eq(done, e->size);
	buf[done] = '\0';
	zipview_reader_free(r);
	return buf;
}

START_TEST(test_tree_from_ziptree)
{
	char *tree = path_join(tmpdir, "tree");
	char *long_name = malloc(256);
	memset(long_name, 'L', 245);
	strcpy(long_name + 245, ".txt"); /* 249 bytes: NAME_MAX is 255 */
	const char *files[][2] = {
		{ "handler.py", "def handler(event):\n    return event\n" },
		{ "with space/file name.txt", "spaces\n" },
		{ "unicod\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt", "utf-8 names\n" },
		{ "deep/a/b/c/d.txt", "deep\n" },
		{ "empty.txt", "" },
	};
	ck_assert_int_eq(mkdir(tree, 0755), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		char *p = path_join(tree, files[i][0]);
		char *dir = strdup(p);
		*strrchr(dir, '/') = '\0';
		ck_assert_int_eq(mkdir_p(dir, 0755), 0);
		ck_assert_int_eq(write_file_atomic(p, files[i][1], strlen(files[i][1])), 0);
		free(dir);
		free(p);
	}
	char *lp = path_join(tree, long_name);
	int lfd = open(lp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(write(lfd, "long\n", 5), 5);
	close(lfd);
	char *exe = path_join(tree, "run.sh");
	ck_assert_int_eq(write_file_atomic(exe, "#!/bin/sh\n", 10), 0);
	ck_assert_int_eq(chmod(exe, 0755), 0);
	char *link = path_join(tree, "deep/link");
	ck_assert_int_eq(symlink("a/b/c/d.txt", link), 0);
	char *empty_dir = path_join(tree, "empty-dir");
	ck_assert_int_eq(mkdir(empty_dir, 0755), 0);
	free(empty_dir);

	char *zip = path_join(tmpdir, "tree.zip");
	int out = open(zip, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char *err = NULL;
	ck_assert_int_eq(ziptree_write(tree, out, &err), 0);
	close(out);
	int fd = open(zip, O_RDONLY | O_CLOEXEC);
	struct zipview_index *idx = load_ok(fd);

	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		int64_t at = find(idx, files[i][0]);
		ck_assert_msg(at > 0, "%s not found", files[i][0]);
		const struct zipview_entry *e = zipview_entry(idx, (uint32_t)at);
		ck_assert_int_eq(e->mode, S_IFREG | 0644);
		ck_assert_uint_eq(e->size, strlen(files[i][1]));
		char *got = read_all(idx, (uint32_t)at, fd, 3);
		ck_assert_str_eq(got, files[i][1]);
		free(got);
	}
	int64_t at = find(idx, long_name);
	ck_assert_int_gt(at, 0);
	ck_assert_str_eq(zipview_entry(idx, (uint32_t)at)->name, long_name);
	at = find(idx, "run.sh");
	ck_assert_int_eq(zipview_entry(idx, (uint32_t)at)->mode, S_IFREG | 0755);
	at = find(idx, "deep/link");
	ck_assert_int_eq(zipview_entry(idx, (uint32_t)at)->mode & S_IFMT, S_IFLNK);
	char target[64];
	ck_assert_int_eq(zipview_readlink(idx, (uint32_t)at, fd, target, sizeof(target), NULL), 11);
	ck_assert_str_eq(target, "a/b/c/d.txt");
	at = find(idx, "empty-dir");
	ck_assert_int_eq(zipview_entry(idx, (uint32_t)at)->mode, S_IFDIR | 0755);
	ck_assert_uint_eq(zipview_entry(idx, (uint32_t)at)->n_children, 0);
	ck_assert_int_eq(find(idx, "deep/nothing"), -ENOENT);
	ck_assert_int_eq(find(idx, "handler.py/x"), -ENOTDIR);

	/* children are sorted, with their parent set, and subfolders counted */
	const struct zipview_entry *root = zipview_entry(idx, 0);
	unsigned subdirs = 0;
	for (uint32_t i = root->first_child; i < root->first_child + root->n_children; i++) {
		const struct zipview_entry *c = zipview_entry(idx, i);
		ck_assert_uint_eq(c->parent, 0);
		subdirs += S_ISDIR(c->mode);
		if (i > root->first_child)
			ck_assert_int_lt(strcmp(zipview_entry(idx, i - 1)->name, c->name), 0);
	}
	ck_assert_uint_eq(root->n_subdirs, subdirs);
	ck_assert_uint_eq(subdirs, 4); /* deep, empty-dir, unicodé, with space */
	/* every path component in the tree is an entry: 5 + long + run.sh + link
	 * files, root, 4 top folders, a, b, c */
	ck_assert_uint_eq(zipview_count(idx), 8 + 1 + 4 + 3);

	zipview_index_free(idx);
	close(fd);
	free(err);
	free(zip);
	free(link);
	free(exe);
	free(lp);
	free(long_name);
	free(tree);
}
END_TEST

START_TEST(test_implied_folders_and_modes)
{
	struct member m[] = {
		{ "a/b/c.txt", S_IFREG | 0600, "c", 0 },
		{ "a/x/", S_IFDIR | 0700, NULL, 0 },
		{ "a/suid", S_IFREG | 04755, "s", 0 },
	};
	int fd = write_zip(m, 3, "deflate", false);
	struct zipview_index *idx = load_ok(fd);
	int64_t a = find(idx, "a");
	ck_assert_int_gt(a, 0);
	ck_assert_int_eq(zipview_entry(idx, (uint32_t)a)->mode, S_IFDIR | 0755);
	ck_assert_uint_eq(zipview_entry(idx, (uint32_t)a)->n_subdirs, 2);
	ck_assert_int_eq(zipview_entry(idx, (uint32_t)find(idx, "a/b"))->mode, S_IFDIR | 0755);
	ck_assert_int_eq(zipview_entry(idx, (uint32_t)find(idx, "a/x"))->mode, S_IFDIR | 0700);
	ck_assert_int_eq(zipview_entry(idx, (uint32_t)find(idx, "a/b/c.txt"))->mode, S_IFREG | 0600);
	/* set-id bits dropped */
	ck_assert_int_eq(zipview_entry(idx, (uint32_t)find(idx, "a/suid"))->mode, S_IFREG | 0755);
	ck_assert_uint_eq(zipview_entry(idx, (uint32_t)find(idx, "a/b/c.txt"))->parent,
			  (uint64_t)find(idx, "a/b"));
	zipview_index_free(idx);
	close(fd);
}
END_TEST

/* A few MB of content that deflates but is not trivial. */
static char *big_content(size_t len)
{
	char *buf = malloc(len);
	uint64_t x = 88172645463325252ULL;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (i % 97 < 60) ? (char)('a' + (i / 97) % 26) : (char)x;
	}
	return buf;
}

static void check_big(const char *compression, bool zip64)
{
	size_t len = 3 * 1024 * 1024 + 12345;
	char *content = big_content(len);
	struct member m[] = { { "big.bin", S_IFREG | 0644, content, len },
			      { "small.txt", S_IFREG | 0644, "tiny", 0 } };
	int fd = write_zip(m, 2, compression, zip64);
	struct zipview_index *idx = load_ok(fd);
	uint32_t at = (uint32_t)find(idx, "big.bin");
	ck_assert_uint_eq(zipview_entry(idx, at)->size, len);
	char *all = read_all(idx, at, fd, 131072);
	ck_assert(memcmp(all, content, len) == 0);
	free(all);
	/* arbitrary offsets, backwards and forwards, on one reader */
	struct zipview_reader *r = zipview_reader_new(idx, at, fd);
	const uint64_t offsets[] = { 3000000, 5, 2999999, 1048576, len - 10, 700000, 0, len - 1 };
	char buf[8192];
	for (size_t i = 0; i < sizeof(offsets) / sizeof(*offsets); i++) {
		ssize_t n = zipview_read(r, buf, sizeof(buf), offsets[i], NULL);
		size_t want = len - offsets[i] < sizeof(buf) ? len - offsets[i] : sizeof(buf);
		ck_assert_int_eq(n, (ssize_t)want);
		ck_assert_msg(memcmp(buf, content + offsets[i], want) == 0, "offset %lu",
			      (unsigned long)offsets[i]);
	}
	ck_assert_int_eq(zipview_read(r, buf, sizeof(buf), len, NULL), 0);
	ck_assert_int_eq(zipview_read(r, buf, sizeof(buf), len + 100, NULL), 0);
	zipview_reader_free(r);
	all = read_all(idx, (uint32_t)find(idx, "small.txt"), fd, 100);
	ck_assert_str_eq(all, "tiny");
	free(all);
	zipview_index_free(idx);
	close(fd);
	free(content);
}

START_TEST(test_big_deflated)
{
	check_big("deflate", false);
}
END_TEST

START_TEST(test_big_stored_zip64)
{
	check_big("store", true);
}
END_TEST

START_TEST(test_big_deflated_zip64)
{
	check_big("deflate", true);
}
END_TEST

static int load_err(int fd, char **err)
{
	struct zipview_index *idx = NULL;
	*err = NULL;
	int rc = zipview_index_load(fd, &idx, err);
	ck_assert_ptr_null(idx);
	return rc;
}

START_TEST(test_refused_names)
{
	struct {
		const char *name;
		int rc;
	} cases[] = {
		{ "../evil.txt", -EPERM }, { "a/../../evil.txt", -EPERM }, { "/abs.txt", -EPERM },
		{ "a//b.txt", -EINVAL },   { "./a.txt", -EINVAL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct member m[] = { { "ok.txt", S_IFREG | 0644, "ok", 0 },
				      { cases[i].name, S_IFREG | 0644, "bad", 0 } };
		int fd = write_zip(m, 2, "deflate", false);
		char *err;
		ck_assert_int_eq(load_err(fd, &err), cases[i].rc);
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, cases[i].name), "message names the entry: %s", err);
		free(err);
		close(fd);
	}
}
END_TEST

START_TEST(test_refused_duplicates)
{
	struct member twice[] = { { "a.txt", S_IFREG | 0644, "1", 0 }, { "a.txt", S_IFREG | 0644, "2", 0 } };
	struct member file_and_dir[] = { { "a", S_IFREG | 0644, "1", 0 }, { "a/b", S_IFREG | 0644, "2", 0 } };
	struct member link_and_dir[] = { { "l", S_IFLNK | 0777, "x", 0 }, { "l/b", S_IFREG | 0644, "2", 0 } };
	struct member *cases[] = { twice, file_and_dir, link_and_dir };
	for (size_t i = 0; i < 3; i++) {
		int fd = write_zip(cases[i], 2, "deflate", false);
		char *err;
		ck_assert_int_eq(load_err(fd, &err), -EEXIST);
		free(err);
		close(fd);
	}
}
END_TEST

START_TEST(test_not_a_zip)
{
	char *path = path_join(tmpdir, "not.zip");
	ck_assert_int_eq(write_file_atomic(path, "hello, not a zip at all\n", 24), 0);
	int fd = open(path, O_RDONLY);
	char *err;
	ck_assert_int_eq(load_err(fd, &err), -EBADMSG);
	free(err);
	close(fd);
	ck_assert_int_eq(write_file_atomic(path, "", 0), 0);
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(load_err(fd, &err), -EBADMSG);
	free(err);
	close(fd);
	free(path);
}
END_TEST

START_TEST(test_damaged_data_is_eio)
{
	size_t len = 200000;
	char *content = big_content(len);
	struct member m[] = { { "f.bin", S_IFREG | 0644, content, len } };
	int fd = write_zip(m, 1, "deflate", false);
	struct zipview_index *idx = load_ok(fd);
	close(fd);
	/* flip bytes in the middle of the compressed data */
	char *path = path_join(tmpdir, "in.zip");
	fd = open(path, O_RDWR);
	const struct zipview_entry *e = zipview_entry(idx, 1);
	off_t mid = (off_t)(e->header_offset + 30 + 5 + e->compressed_size / 2);
	unsigned char b[16];
	ck_assert_int_eq(pread(fd, b, sizeof(b), mid), (ssize_t)sizeof(b));
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, b, sizeof(b), mid), (ssize_t)sizeof(b));
	struct zipview_reader *r = zipview_reader_new(idx, 1, fd);
	char *buf = malloc(len);
	ssize_t n = 0, got = 0;
	char *err = NULL;
	while ((n = zipview_read(r, buf + got, 65536, (uint64_t)got, &err)) > 0)
		got += n;
	ck_assert_int_eq(n, -EIO);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "f.bin"), "message names the entry: %s", err);
	free(err);
	zipview_reader_free(r);
	zipview_index_free(idx);
	close(fd);
	free(buf);
	free(path);
	free(content);
}
END_TEST

START_TEST(test_versions)
{
	struct member one[] = { { "v.txt", S_IFREG | 0644, "one", 0 } };
	struct member two[] = { { "v.txt", S_IFREG | 0644, "two!", 0 }, { "w", S_IFREG | 0644, "", 0 } };
	int fd1 = write_zip(one, 1, "deflate", false);
	char *p = path_join(tmpdir, "in.zip"), *p1 = path_join(tmpdir, "one.zip");
	ck_assert_int_eq(rename(p, p1), 0);
	int fd2 = write_zip(two, 2, "deflate", false);
	struct zipview_versions *vs = zipview_versions_new();
	uint32_t v1, v1again, v2, v1back;
	const struct zipview_index *i1, *i2, *i;
	ck_assert_int_eq(zipview_current(vs, 7, "sha-one", fd1, &v1, &i1, NULL), 0);
	ck_assert_int_eq(zipview_current(vs, 7, "sha-one", fd1, &v1again, &i, NULL), 0);
	ck_assert_uint_eq(v1, v1again);
	ck_assert_ptr_eq(i, i1); /* not read again */
	ck_assert_uint_eq(zipview_package(vs, v1), 7);
	zipview_release(vs, v1);
	zipview_release(vs, v1);
	/* still current: kept */
	ck_assert_ptr_eq(zipview_hold(vs, v1), i1);
	/* the package changes while v1 is held: v1 stays until released */
	ck_assert_int_eq(zipview_current(vs, 7, "sha-two", fd2, &v2, &i2, NULL), 0);
	ck_assert_uint_ne(v1, v2);
	ck_assert_uint_eq(zipview_count(i2), 3);
	ck_assert_ptr_eq(zipview_hold(vs, v1), i1);
	zipview_release(vs, v1);
	zipview_release(vs, v1);
	ck_assert_ptr_null(zipview_hold(vs, v1));
	/* another package has its own numbers */
	uint32_t other;
	ck_assert_int_eq(zipview_current(vs, 8, "sha-one", fd1, &other, &i, NULL), 0);
	ck_assert_uint_ne(other, v1);
	zipview_release(vs, other);
	/* the old content comes back: its old number, its index read again */
	ck_assert_int_eq(zipview_current(vs, 7, "sha-one", fd1, &v1back, &i, NULL), 0);
	ck_assert_uint_eq(v1back, v1);
	ck_assert_uint_eq(zipview_count(i), 2);
	zipview_release(vs, v1back);
	ck_assert_ptr_eq(zipview_hold(vs, v2), i2); /* held since it was current */
	zipview_release(vs, v2);
	zipview_release(vs, v2);
	ck_assert_ptr_null(zipview_hold(vs, v2)); /* neither held nor current */
	/* evicted: dropped, numbers unchanged */
	zipview_forget(vs, 7);
	ck_assert_ptr_null(zipview_hold(vs, v1));
	ck_assert_uint_eq(zipview_package(vs, 999), SIZE_MAX);
	zipview_versions_free(vs);
	close(fd1);
	close(fd2);
	free(p);
	free(p1);
}
END_TEST

static Suite *zipview_suite(void)
{
	Suite *s = suite_create("zipview");
	TCase *tc = tcase_create("index");
	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_test(tc, test_tree_from_ziptree);
	tcase_add_test(tc, test_implied_folders_and_modes);
	tcase_add_test(tc, test_refused_names);
	tcase_add_test(tc, test_refused_duplicates);
	tcase_add_test(tc, test_not_a_zip);
	tcase_add_test(tc, test_big_deflated);
	tcase_add_test(tc, test_big_stored_zip64);
	tcase_add_test(tc, test_big_deflated_zip64);
	tcase_add_test(tc, test_damaged_data_is_eio);
	tcase_add_test(tc, test_versions);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(zipview_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
