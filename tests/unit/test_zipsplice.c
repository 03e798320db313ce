/*
 * test_zipsplice.c - Check suite for zipsplice: splicing the ziptree_write
 * zips of disjoint subtrees gives the very bytes of ziptree_write of the
 * whole tree.
 *
 * Trees are real folders in a fresh mkdtemp directory under /tmp, made by a
 * seeded generator (files of every kind: empty, text, incompressible,
 * executable, symlinks, non-ASCII names, empty folders) that writes each
 * entry into the whole tree and into the part its path belongs to.  Every
 * comparison is of whole files (cmp).  Spliced zips are also read back with
 * Info-ZIP's `unzip -t` (fork/execvp, no shell) and with libarchive.
 */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "zipsplice.h"
#include "ziptree.h"

static char *tmpdir;

static void setup_tmp(void)
{
	char tmpl[] = "/tmp/sebsfs-zipsplice-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	tmpdir = strdup(tmpl);
	ck_assert_ptr_nonnull(tmpdir);
}

static void teardown_tmp(void)
{
	if (tmpdir) {
		rm_rf(tmpdir);
		free(tmpdir);
		tmpdir = NULL;
	}
}

/* ---- helpers ---- */

static char *tpath(const char *rel)
{
	char *p = path_join(tmpdir, rel);

	ck_assert_ptr_nonnull(p);
	return p;
}

/* Creates root/rel with len bytes of data and mode, parents included. */
static void put_bytes(const char *root, const char *rel, const void *data, size_t len, mode_t mode)
{
	char *p = path_join(root, rel);
	char *dir = strdup(p);
	char *slash = strrchr(dir, '/');
	int fd;

	*slash = '\0';
	ck_assert_int_eq(mkdir_p(dir, 0755), 0);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ck_assert_msg(fd >= 0, "create %s: %s", p, strerror(errno));
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	free(dir);
	free(p);
}

static void put(const char *root, const char *rel, const char *content, mode_t mode)
{
	put_bytes(root, rel, content, strlen(content), mode);
}

static void put_dir(const char *root, const char *rel)
{
	char *p = path_join(root, rel);

	ck_assert_int_eq(mkdir_p(p, 0755), 0);
	free(p);
}

static void put_link(const char *root, const char *rel, const char *target)
{
	char *p = path_join(root, rel);
	char *dir = strdup(p);

	*strrchr(dir, '/') = '\0';
	ck_assert_int_eq(mkdir_p(dir, 0755), 0);
	ck_assert_msg(symlink(target, p) == 0, "symlink %s: %s", p, strerror(errno));
	free(dir);
	free(p);
}

static int create_new(const char *path, int extra_flags);

static void zip_ok(const char *dir, const char *out)
{
	int fd = create_new(out, 0);
	char *msg = NULL;
	int rc;

	ck_assert_int_ge(fd, 0);
	rc = ziptree_write(dir, fd, &msg);
	close(fd);
	ck_assert_msg(rc == 0, "ziptree_write(%s): %d %s", dir, rc, msg ? msg : "");
}

static char *slurp(const char *path, size_t *len)
{
	char *buf = NULL;

	ck_assert_int_eq(read_file(path, &buf, len), 0);
	return buf;
}

/* Files are replaced, not truncated: ext4 flushes a file truncated to 0
 * and written again when it is closed (auto_da_alloc), which costs seconds
 * over thousands of writes. */
static int create_new(const char *path, int extra_flags)
{
	ck_assert(unlink(path) == 0 || errno == ENOENT);
	return open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | extra_flags, 0644);
}

static void spew(const char *path, const void *data, size_t len)
{
	int fd = create_new(path, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* cmp a b: the same length and bytes; names the first difference. */
static void assert_same_file(const char *a, const char *b)
{
	size_t la, lb, i;
	char *da = slurp(a, &la), *db = slurp(b, &lb);

	for (i = 0; i < la && i < lb && da[i] == db[i]; i++)
		;
	ck_assert_msg(la == lb && i == la, "%s (%zu bytes) and %s (%zu bytes) differ at byte %zu",
		      a, la, b, lb, i);
	free(da);
	free(db);
}

/* Indexes each zip and splices them into out (opened with extra_flags);
 * returns zipsplice_write's result, its message in *msg. */
static int splice_flags(const char *out, const char *const *zips, size_t n, int extra_flags,
			char **msg)
{
	int fds[8], out_fd, rc;
	struct zip_index *idx[8];

	ck_assert_uint_le(n, 8);
	for (size_t i = 0; i < n; i++) {
		char *m = NULL;

		fds[i] = open(zips[i], O_RDONLY | O_CLOEXEC);
		ck_assert_int_ge(fds[i], 0);
		rc = zip_index_read(fds[i], &idx[i], &m);
		ck_assert_msg(rc == 0, "zip_index_read(%s): %d %s", zips[i], rc, m ? m : "");
		ck_assert_ptr_null(m);
	}
	out_fd = create_new(out, extra_flags);
	ck_assert_int_ge(out_fd, 0);
	*msg = NULL;
	rc = zipsplice_write(out_fd, fds, idx, n, msg);
	close(out_fd);
	for (size_t i = 0; i < n; i++) {
		zip_index_free(idx[i]);
		close(fds[i]);
	}
	return rc;
}

static void splice_ok(const char *out, const char *const *zips, size_t n)
{
	char *msg = NULL;
	int rc = splice_flags(out, zips, n, 0, &msg);

	ck_assert_msg(rc == 0, "zipsplice_write: %d %s", rc, msg ? msg : "");
	ck_assert_ptr_null(msg);
}

/* Runs argv without a shell, output to /dev/null; returns the exit status. */
static int run(char *const argv[])
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* unzip -t accepts the zip, and libarchive reads every entry's data
 * (checking each CRC) in the order of the zip's own index. */
static void assert_readable(const char *zip)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	struct zip_index *idx;
	char *msg = NULL, buf[65536];
	size_t i = 0;
	int fd, r;

	ck_assert_int_eq(run((char *const[]){ "unzip", "-tq", (char *)zip, NULL }), 0);

	fd = open(zip, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(zip_index_read(fd, &idx, &msg), 0);
	archive_read_support_format_zip_seekable(a);
	ck_assert_msg(archive_read_open_filename(a, zip, 65536) == ARCHIVE_OK, "open %s: %s", zip,
		      archive_error_string(a));
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
		ssize_t got;

		ck_assert_uint_lt(i, zip_index_count(idx));
		ck_assert_str_eq(archive_entry_pathname_utf8(ae), zip_index_name(idx, i));
		while ((got = archive_read_data(a, buf, sizeof(buf))) > 0)
			;
		ck_assert_msg(got == 0, "read %s: %s", zip_index_name(idx, i),
			      archive_error_string(a));
		i++;
	}
	ck_assert_msg(r == ARCHIVE_EOF, "next header: %s", archive_error_string(a));
	ck_assert_uint_eq(i, zip_index_count(idx));
	archive_read_free(a);
	zip_index_free(idx);
	close(fd);
}

/* ---- the tree generator ---- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	/* xorshift64* */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * UINT64_C(2685821657736338717);
}

static size_t rnd_below(struct rng *r, size_t n)
{
	return (size_t)(rnd(r) % n);
}

static void rnd_fill(struct rng *r, unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(rnd(r) >> 56);
}

/* Where generated entries go: the whole tree, and the part of each path
 * (part k+1 for a path at or below prefixes[k], else part 0). */
struct split {
	const char *full;
	char *const *roots;
	const char *const *prefixes; /* folders, ending in '/' */
	size_t nprefix;
};

static const char *part_root(const struct split *s, const char *rel, bool is_dir)
{
	for (size_t k = 0; k < s->nprefix; k++) {
		size_t len = strlen(s->prefixes[k]);

		if (!strncmp(rel, s->prefixes[k], len) ||
		    (is_dir && strlen(rel) == len - 1 && !strncmp(rel, s->prefixes[k], len - 1)))
			return s->roots[k + 1];
	}
	return s->roots[0];
}

static void emit_dir(const struct split *s, const char *rel)
{
	put_dir(s->full, rel);
	put_dir(part_root(s, rel, true), rel);
}

static void emit_file(const struct split *s, const char *rel, const void *data, size_t len,
		      mode_t mode)
{
	put_bytes(s->full, rel, data, len, mode);
	put_bytes(part_root(s, rel, false), rel, data, len, mode);
}

static void emit_link(const struct split *s, const char *rel, const char *target)
{
	put_link(s->full, rel, target);
	put_link(part_root(s, rel, false), rel, target);
}

/* Names chosen so that bytewise order matters: '-' and '.' sort before '/',
 * '_' and lower case after upper case, UTF-8 after ASCII. */
static const char *const dir_names[] = { "a", "b", "B", "lib", "src", "m", "z", "a-b", "a.b",
					 "a_b", "dist", "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
					 "x y", ".cache" };
static const char *const file_names[] = { "index.js", "package.json", "README", "a", "a.txt",
					  "a-b.js", "a.b", "a_b", "Z", "\xc3\xbc.txt",
					  "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.py", "x y",
					  "empty", "run.sh", ".hidden", "~tilde" };
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void gen_content(struct rng *r, const struct split *s, const char *rel)
{
	static unsigned char buf[40000];
	size_t len = 0;
	mode_t mode = rnd_below(r, 4) == 0 ? 0755 : 0644;

	switch (rnd_below(r, 5)) {
	case 0: /* empty */
		break;
	case 1: /* incompressible */
		len = rnd_below(r, sizeof(buf));
		rnd_fill(r, buf, len);
		break;
	default: /* text-like, compressible */
		len = rnd_below(r, sizeof(buf));
		for (size_t i = 0; i < len; i++)
			buf[i] = "module.exports = function () { return 42; };\n"[(i + len) % 46];
		break;
	}
	emit_file(s, rel, buf, len, mode);
}

/* Fills folder rel ("" for the root, else ending in '/') with up to width
 * random entries, recursing depth levels. */
static void gen_dir(struct rng *r, const struct split *s, const char *rel, int depth, size_t width)
{
	size_t n = rnd_below(r, width + 1);

	for (size_t i = 0; i < n; i++) {
		size_t kind = rnd_below(r, 10);
		char *path, *full;
		struct stat st;

		if (kind < 3 && depth > 0) {
			path = str_printf("%s%s", rel, dir_names[rnd_below(r, NELEM(dir_names))]);
		} else if (kind == 3) {
			path = str_printf("%slink-%zu", rel, rnd_below(r, 5));
		} else {
			path = str_printf("%s%s", rel, file_names[rnd_below(r, NELEM(file_names))]);
		}
		full = path_join(s->full, path);
		if (lstat(full, &st) != 0) {
			if (kind < 3 && depth > 0) {
				char *sub = str_printf("%s/", path);

				emit_dir(s, path);
				gen_dir(r, s, sub, depth - 1, width);
				free(sub);
			} else if (kind == 3) {
				/* a sibling file or nothing: never a link, so no loops */
				emit_link(s, path, file_names[rnd_below(r, NELEM(file_names))]);
			} else {
				gen_content(r, s, path);
			}
		}
		free(full);
		free(path);
	}
}

/* A tree with a node_modules/-like folder, a folder "m/" whose names sort
 * between the root's others, and lib/vendor/ below a folder with content
 * of its own; seed decides the rest. */
static void gen_tree(uint64_t seed, const struct split *s)
{
	struct rng r = { seed * UINT64_C(0x9e3779b97f4a7c15) + 1 };

	ck_assert_int_eq(mkdir_p(s->full, 0755), 0);
	for (size_t k = 0; k <= s->nprefix; k++)
		ck_assert_int_eq(mkdir_p(s->roots[k], 0755), 0);
	emit_dir(s, "node_modules");
	gen_dir(&r, s, "node_modules/", 3, 5);
	emit_dir(s, "m");
	gen_dir(&r, s, "m/", 2, 4);
	emit_dir(s, "lib");
	emit_dir(s, "lib/vendor");
	gen_dir(&r, s, "lib/vendor/", 2, 4);
	gen_dir(&r, s, "lib/", 2, 4);
	gen_dir(&r, s, "", 3, 6);
}

/* Generates tree seed split at prefixes under tmpdir/name/ (full/, p0/,
 * p1/...), zips each, and returns the zips' paths: [0] the whole tree, then
 * the parts.  Free with free_paths(, nprefix + 2). */
static char **make_split(const char *name, uint64_t seed, const char *const *prefixes,
			 size_t nprefix)
{
	char **zips = calloc(nprefix + 2, sizeof(*zips));
	char **roots = calloc(nprefix + 1, sizeof(*roots));
	char *base = tpath(name);
	char *full = path_join(base, "full");
	struct split s = { full, roots, prefixes, nprefix };

	for (size_t k = 0; k <= nprefix; k++)
		roots[k] = str_printf("%s/p%zu", base, k);
	gen_tree(seed, &s);
	zips[0] = str_printf("%s/full.zip", base);
	zip_ok(full, zips[0]);
	for (size_t k = 0; k <= nprefix; k++) {
		zips[k + 1] = str_printf("%s/p%zu.zip", base, k);
		zip_ok(roots[k], zips[k + 1]);
		free(roots[k]);
	}
	free(roots);
	free(full);
	free(base);
	return zips;
}

static void free_paths(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- equality with ziptree_write of the whole tree ---- */

static const char *const split_node_modules[] = { "node_modules/" };
static const char *const split_interleaved[] = { "m/" };
static const char *const split_nested[] = { "lib/vendor/", "node_modules/", "m/" };

#define SEEDS 30

static void check_split(int seed, const char *const *prefixes, size_t nprefix, bool read_back)
{
	char *name = str_printf("s%d", seed);
	char **zips = make_split(name, (uint64_t)seed, prefixes, nprefix);
	char *out = tpath("out.zip");
	const char *parts[8];
	size_t n = nprefix + 1;

	for (size_t k = 0; k < n; k++)
		parts[k] = zips[k + 1];
	splice_ok(out, parts, n);
	assert_same_file(out, zips[0]);
	/* the order of the parts does not matter */
	for (size_t k = 0; k < n; k++)
		parts[k] = zips[n - k];
	splice_ok(out, parts, n);
	assert_same_file(out, zips[0]);
	/* one part: itself */
	splice_ok(out, (const char *const *)&zips[0], 1);
	assert_same_file(out, zips[0]);
	if (read_back)
		assert_readable(out);
	free(out);
	free_paths(zips, nprefix + 2);
	free(name);
}

START_TEST(test_split_node_modules)
{
	check_split(_i, split_node_modules, NELEM(split_node_modules), _i == 0);
}
END_TEST

START_TEST(test_split_interleaved)
{
	char *name = str_printf("s%d", _i);
	char **zips = make_split(name, (uint64_t)_i, split_interleaved, 1);
	struct zip_index *idx[2];
	int fd[2];
	char *msg = NULL;
	bool below = false, above = false;

	/* the parts really interleave: names of part 0 on both sides of m/ */
	for (int k = 0; k < 2; k++) {
		fd[k] = open(zips[k + 1], O_RDONLY | O_CLOEXEC);
		ck_assert_int_eq(zip_index_read(fd[k], &idx[k], &msg), 0);
	}
	for (size_t i = 0; i < zip_index_count(idx[0]); i++) {
		below |= strcmp(zip_index_name(idx[0], i), "m/") < 0;
		above |= strcmp(zip_index_name(idx[0], i), "m/") > 0;
	}
	ck_assert(below && above);
	ck_assert_str_eq(zip_index_name(idx[1], 0), "m/");
	for (int k = 0; k < 2; k++) {
		zip_index_free(idx[k]);
		close(fd[k]);
	}
	free_paths(zips, 3);
	free(name);
	check_split(_i, split_interleaved, NELEM(split_interleaved), _i == 0);
}
END_TEST

START_TEST(test_split_nested)
{
	check_split(_i, split_nested, NELEM(split_nested), _i == 0);
}
END_TEST

/* Folders above a split point are in both parts, with the same bytes:
 * written once. */
START_TEST(test_shared_folder_once)
{
	char *full = tpath("full"), *p0 = tpath("p0"), *p1 = tpath("p1");
	char *zf = tpath("full.zip"), *z0 = tpath("p0.zip"), *z1 = tpath("p1.zip");
	char *out = tpath("out.zip");
	const char *parts[] = { z0, z1 };
	struct zip_index *idx;
	char *msg = NULL;
	int fd;

	put(full, "a/x.txt", "x\n", 0644);
	put(full, "a/y/z.txt", "z\n", 0644);
	put(p0, "a/x.txt", "x\n", 0644);
	put(p1, "a/y/z.txt", "z\n", 0644);
	zip_ok(full, zf);
	zip_ok(p0, z0);
	zip_ok(p1, z1);
	splice_ok(out, parts, 2);
	assert_same_file(out, zf);
	fd = open(out, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(zip_index_read(fd, &idx, &msg), 0);
	ck_assert_uint_eq(zip_index_count(idx), 4);
	ck_assert_str_eq(zip_index_name(idx, 0), "a/");
	ck_assert_str_eq(zip_index_name(idx, 1), "a/x.txt");
	ck_assert_str_eq(zip_index_name(idx, 2), "a/y/");
	ck_assert_str_eq(zip_index_name(idx, 3), "a/y/z.txt");
	zip_index_free(idx);
	close(fd);
	assert_readable(out);
	free(full); free(p0); free(p1); free(zf); free(z0); free(z1); free(out);
}
END_TEST

/* A file in two parts: the same bytes are written once (the header's
 * promise); different content fails with -EEXIST naming it, and writes
 * nothing. */
START_TEST(test_file_in_both)
{
	char *full = tpath("full"), *p0 = tpath("p0"), *p1 = tpath("p1"), *p2 = tpath("p2");
	char *zf = tpath("full.zip"), *z0 = tpath("p0.zip"), *z1 = tpath("p1.zip");
	char *z2 = tpath("p2.zip"), *out = tpath("out.zip");
	const char *same[] = { z0, z1 }, *differ[] = { z0, z1, z2 };
	char *msg = NULL;
	struct stat st;

	put(full, "a.txt", "a\n", 0644);
	put(full, "dup.txt", "same\n", 0644);
	put(full, "z.txt", "z\n", 0644);
	put(p0, "a.txt", "a\n", 0644);
	put(p0, "dup.txt", "same\n", 0644);
	put(p1, "dup.txt", "same\n", 0644);
	put(p1, "z.txt", "z\n", 0644);
	put(p2, "dup.txt", "other\n", 0644);
	zip_ok(full, zf);
	zip_ok(p0, z0);
	zip_ok(p1, z1);
	zip_ok(p2, z2);
	splice_ok(out, same, 2);
	assert_same_file(out, zf);

	ck_assert_int_eq(splice_flags(out, differ, 3, 0, &msg), -EEXIST);
	ck_assert_ptr_nonnull(msg);
	ck_assert_msg(strstr(msg, "dup.txt") != NULL, "message does not name the entry: %s", msg);
	free(msg);
	ck_assert_int_eq(stat(out, &st), 0);
	ck_assert_int_eq(st.st_size, 0);

	/* the same name with another mode is another entry's bytes too */
	put(p2, "dup.txt", "same\n", 0755);
	zip_ok(p2, z2);
	ck_assert_int_eq(splice_flags(out, differ, 3, 0, &msg), -EEXIST);
	free(msg);
	free(full); free(p0); free(p1); free(p2); free(zf); free(z0); free(z1); free(z2);
	free(out);
}
END_TEST

/* Empty parts, no parts at all, and a part that is the whole tree. */
START_TEST(test_empty_parts)
{
	char *empty = tpath("empty"), *full = tpath("full");
	char *ze = tpath("empty.zip"), *zf = tpath("full.zip"), *out = tpath("out.zip");
	const char *parts[] = { ze, zf, ze };
	char *msg = NULL;

	ck_assert_int_eq(mkdir(empty, 0755), 0);
	put(full, "handler.py", "def handler(event, context):\n    return 1\n", 0644);
	put(full, ".python_packages/lib/site-packages/x/__init__.py", "", 0644);
	zip_ok(empty, ze);
	zip_ok(full, zf);

	ck_assert_int_eq(splice_flags(out, NULL, 0, 0, &msg), 0);
	assert_same_file(out, ze);
	splice_ok(out, parts, 1);
	assert_same_file(out, ze);
	splice_ok(out, parts, 3);
	assert_same_file(out, zf);
	splice_ok(out, parts + 1, 2);
	assert_same_file(out, zf);
	assert_readable(out);
	free(empty); free(full); free(ze); free(zf); free(out);
}
END_TEST

/* Symlinks, executables, empty files, non-ASCII names, on both sides. */
static void kinds(const char *root, bool code, bool deps)
{
	if (code) {
		put(root, "run.sh", "#!/bin/sh\necho hi\n", 0755);
		put(root, "empty", "", 0644);
		put(root, "\xc3\xa9t\xc3\xa9.txt", "summer\n", 0644);
		put_link(root, "link-to-run", "run.sh");
		put_dir(root, "empty-dir");
	}
	if (deps) {
		put(root, "node_modules/.bin/tool", "#!/usr/bin/env node\n", 0755);
		put_link(root, "node_modules/.bin/t", "tool");
		put(root, "node_modules/\xe6\x97\xa5\xe6\x9c\xac/e", "", 0600);
		put_link(root, "node_modules/dangling", "nowhere");
		put_dir(root, "node_modules/empty-dir");
	}
}

START_TEST(test_kinds_of_entries)
{
	char *full = tpath("full"), *p0 = tpath("p0"), *p1 = tpath("p1");
	char *zf = tpath("full.zip"), *z0 = tpath("p0.zip"), *z1 = tpath("p1.zip");
	char *out = tpath("out.zip");
	const char *parts[] = { z0, z1 };

	kinds(full, true, true);
	kinds(p0, true, false);
	kinds(p1, false, true);
	zip_ok(full, zf);
	zip_ok(p0, z0);
	zip_ok(p1, z1);
	splice_ok(out, parts, 2);
	assert_same_file(out, zf);
	assert_readable(out);
	free(full); free(p0); free(p1); free(zf); free(z0); free(z1); free(out);
}
END_TEST

/* Several MiB in one entry, incompressible and compressible, so that
 * copies cross libarchive's 64 KiB blocks and the copy chunks. */
START_TEST(test_large_files)
{
	char *full = tpath("full"), *p0 = tpath("p0"), *p1 = tpath("p1");
	char *zf = tpath("full.zip"), *z0 = tpath("p0.zip"), *z1 = tpath("p1.zip");
	char *out = tpath("out.zip");
	const char *parts[] = { z0, z1 };
	size_t len = 5 * 1024 * 1024 + 12345;
	unsigned char *data = malloc(len);
	struct rng r = { 42 };
	char *msg = NULL;

	rnd_fill(&r, data, len);
	put(full, "a.py", "import big\n", 0644);
	put(p0, "a.py", "import big\n", 0644);
	put_bytes(full, "node_modules/big.bin", data, len, 0644);
	put_bytes(p1, "node_modules/big.bin", data, len, 0644);
	memset(data, 'x', len);
	put_bytes(full, "node_modules/big.txt", data, len, 0644);
	put_bytes(p1, "node_modules/big.txt", data, len, 0644);
	put(full, "z.py", "import big\n", 0644);
	put(p0, "z.py", "import big\n", 0644);
	zip_ok(full, zf);
	zip_ok(p0, z0);
	zip_ok(p1, z1);
	splice_ok(out, parts, 2);
	assert_same_file(out, zf);
	assert_readable(out);
	/* read/write instead of copy_file_range (O_APPEND makes it fail) */
	ck_assert_int_eq(splice_flags(out, parts, 2, O_APPEND, &msg), 0);
	assert_same_file(out, zf);
	free(data);
	free(full); free(p0); free(p1); free(zf); free(z0); free(z1); free(out);
}
END_TEST

/* The zip starts at out_fd's offset, and its offsets count from there. */
START_TEST(test_output_offset)
{
	char **zips = make_split("s", 7, split_node_modules, 1);
	char *out = tpath("out.zip");
	int fds[2], out_fd;
	struct zip_index *idx[2];
	char *msg = NULL, *got, *want;
	size_t got_len, want_len;

	for (int k = 0; k < 2; k++) {
		fds[k] = open(zips[k + 1], O_RDONLY | O_CLOEXEC);
		ck_assert_int_eq(zip_index_read(fds[k], &idx[k], &msg), 0);
	}
	out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_eq(write(out_fd, "prefix", 6), 6);
	ck_assert_int_eq(zipsplice_write(out_fd, fds, idx, 2, &msg), 0);
	close(out_fd);
	got = slurp(out, &got_len);
	want = slurp(zips[0], &want_len);
	ck_assert_uint_eq(got_len, want_len + 6);
	ck_assert(memcmp(got, "prefix", 6) == 0);
	ck_assert(memcmp(got + 6, want, want_len) == 0);
	for (int k = 0; k < 2; k++) {
		zip_index_free(idx[k]);
		close(fds[k]);
	}
	free(got);
	free(want);
	free(out);
	free_paths(zips, 3);
}
END_TEST

/* Past 65,535 entries libarchive writes a Zip64 end record and locator:
 * part 0 has exactly 65,535 entries (count 0xffff, no Zip64), part 1 one
 * more, the whole tree 65,536 (part 0's folder once "b" is added to it). */
START_TEST(test_zip64_end_records)
{
	char *p0 = tpath("p0"), *p1 = tpath("p1");
	char *zf = tpath("full.zip"), *z0 = tpath("p0.zip"), *z1 = tpath("p1.zip");
	char *out = tpath("out.zip");
	const char *parts[] = { z0, z1 };
	char *pa = path_join(p0, "a");
	char *data;
	size_t len;

	ck_assert_int_eq(mkdir_p(pa, 0755), 0);
	for (int i = 0; i < 65534; i++) {
		char name[32];

		snprintf(name, sizeof(name), "a/%05d", i);
		put(p0, name, "", 0644);
	}
	put(p1, "b", "b\n", 0644);
	zip_ok(p0, z0);
	zip_ok(p1, z1);
	put(p0, "b", "b\n", 0644);
	zip_ok(p0, zf);

	data = slurp(z0, &len);
	ck_assert(memcmp(data + len - 22, "PK\5\6\0\0\0\0\xff\xff\xff\xff", 12) == 0);
	ck_assert(memcmp(data + len - 42, "PK\6\7", 4) != 0);
	free(data);
	data = slurp(zf, &len);
	ck_assert(memcmp(data + len - 98, "PK\6\6", 4) == 0);
	ck_assert(memcmp(data + len - 42, "PK\6\7", 4) == 0);
	free(data);

	splice_ok(out, parts, 2);
	assert_same_file(out, zf);
	/* exactly 65,535 entries: no Zip64 */
	splice_ok(out, parts, 1);
	assert_same_file(out, z0);
	/* a Zip64 part read back */
	splice_ok(out, (const char *const[]){ zf }, 1);
	assert_same_file(out, zf);
	assert_readable(out);
	free(pa);
	free(p0); free(p1); free(zf); free(z0); free(z1); free(out);
}
END_TEST

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A node_modules/-like part of 10,000 files; prints the times (no assert
 * on them: timing is the report's, not the test's). */
START_TEST(test_many_files)
{
	char *full = tpath("full"), *p0 = tpath("p0"), *p1 = tpath("p1");
	char *zf = tpath("full.zip"), *z0 = tpath("p0.zip"), *z1 = tpath("p1.zip");
	char *out = tpath("out.zip");
	const char *parts[] = { z0, z1 };
	static char text[4096];
	struct rng r = { 7 };
	double t0, t1, t2, t3;

	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "function f(a, b) { return a + b; }\nvar x = require('y');\n"[
			rnd_below(&r, 57)];
	for (int pkg = 0; pkg < 400; pkg++) {
		for (int f = 0; f < 25; f++) {
			char name[64];
			size_t len = rnd_below(&r, sizeof(text));

			snprintf(name, sizeof(name), "node_modules/pkg%03d/lib/f%02d.js", pkg, f);
			put_bytes(full, name, text, len, 0644);
			put_bytes(p1, name, text, len, 0644);
		}
	}
	put(full, "handler.js", "exports.handler = () => 1;\n", 0644);
	put(p0, "handler.js", "exports.handler = () => 1;\n", 0644);
	put(full, "package.json", "{}\n", 0644);
	put(p0, "package.json", "{}\n", 0644);

	t0 = now();
	zip_ok(full, zf);
	t1 = now();
	zip_ok(p0, z0);
	zip_ok(p1, z1);
	t2 = now();
	splice_ok(out, parts, 2);
	t3 = now();
	assert_same_file(out, zf);
	fprintf(stderr, "zipsplice: ziptree_write of the whole tree (%d entries): %.3f s; "
			"index and splice of the two parts: %.4f s (parts zipped in %.3f s)\n",
		400 * 27 + 1 + 2, t1 - t0, t3 - t2, t2 - t1);
	free(full); free(p0); free(p1); free(zf); free(z0); free(z1); free(out);
}
END_TEST

/* ---- parts it must refuse ---- */

/* A small real zip (files, a folder, a link) to damage. */
static char *small_zip(size_t *len)
{
	char *root = tpath("small"), *zip = tpath("small.zip"), *data;

	put(root, "a/b.txt", "bee bee bee\n", 0644);
	put(root, "c.sh", "#!/bin/sh\n", 0755);
	put_link(root, "d", "c.sh");
	zip_ok(root, zip);
	data = slurp(zip, len);
	free(root);
	free(zip);
	return data;
}

/* zip_index_read of len bytes of data; returns its result and frees all. */
static int index_bytes(const char *data, size_t len, char **msg)
{
	char *path = tpath("damaged.zip");
	struct zip_index *idx = NULL;
	int fd, rc;

	spew(path, data, len);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	*msg = NULL;
	rc = zip_index_read(fd, &idx, msg);
	ck_assert(rc == 0 || idx == NULL);
	if (rc == 0) {
		/* anything accepted splices back to itself */
		char *out = tpath("self.zip"), *got, *m = NULL;
		int out_fd = create_new(out, 0);
		size_t got_len;

		ck_assert_int_eq(zipsplice_write(out_fd, &fd, &idx, 1, &m), 0);
		close(out_fd);
		got = slurp(out, &got_len);
		ck_assert_uint_eq(got_len, len);
		ck_assert(memcmp(got, data, len) == 0);
		free(got);
		free(out);
		zip_index_free(idx);
	}
	close(fd);
	free(path);
	return rc;
}

static void expect_badmsg(const char *data, size_t len, const char *what)
{
	char *msg = NULL;
	int rc = index_bytes(data, len, &msg);

	ck_assert_msg(rc == -EBADMSG, "%s: %d (%s)", what, rc, msg ? msg : "no message");
	ck_assert_msg(msg && *msg && !strchr(msg, '\n'), "%s: no one-line message", what);
	free(msg);
}

START_TEST(test_truncated)
{
	size_t len;
	char *data = small_zip(&len);
	char what[64];

	for (size_t cut = 0; cut < len; cut++) {
		snprintf(what, sizeof(what), "first %zu of %zu bytes", cut, len);
		expect_badmsg(data, cut, what);
	}
	free(data);
}
END_TEST

/* Every byte changed: refused with a message, or accepted and then
 * spliced back to the same bytes; never a crash. */
START_TEST(test_every_byte_damaged)
{
	size_t len, accepted = 0;
	char *data = small_zip(&len);

	for (size_t i = 0; i < len; i++) {
		for (int v = 0; v < 3; v++) {
			char saved = data[i], *msg = NULL;
			int rc;

			data[i] = v == 0 ? (char)(saved ^ 0xff) : v == 1 ? (char)(saved + 1) : 0;
			rc = index_bytes(data, len, &msg);
			ck_assert_msg(rc == 0 || rc == -EBADMSG || rc == -EFBIG,
				      "byte %zu: %d (%s)", i, rc, msg ? msg : "");
			ck_assert_msg(rc == 0 || (msg && *msg), "byte %zu: no message", i);
			accepted += rc == 0;
			free(msg);
			data[i] = saved;
		}
	}
	/* data bytes are not checked (no CRC pass), headers are */
	ck_assert_uint_gt(accepted, 0);
	ck_assert_uint_lt(accepted, 3 * len);
	free(data);
}
END_TEST

static size_t find_bytes(const char *data, size_t len, const char *what, size_t wlen, size_t from)
{
	for (size_t i = from; i + wlen <= len; i++)
		if (!memcmp(data + i, what, wlen))
			return i;
	ck_abort_msg("pattern not found");
	return 0;
}

START_TEST(test_not_as_ziptree_writes)
{
	size_t len, cd, local;
	char *data = small_zip(&len), *big = malloc(len + 16);
	char *msg = NULL;

	/* the unchanged zip is accepted, so the cases below fail for their
	 * own reason */
	ck_assert_int_eq(index_bytes(data, len, &msg), 0);

	cd = find_bytes(data, len, "PK\1\2", 4, 0);
	local = find_bytes(data, len, "a/b.txt", 7, 30 + 2);
	ck_assert_uint_lt(local, cd);
	data[local + 2] = 'x'; /* "a/x.txt" in the local header only */
	expect_badmsg(data, len, "local name differs");
	index_bytes(data, len, &msg);
	ck_assert_ptr_nonnull(strstr(msg, "name"));
	free(msg);
	data[local + 2] = 'b';

	data[local - 30 + 2] = 9; /* the local header's signature */
	expect_badmsg(data, len, "no local header");
	data[local - 30 + 2] = 3;

	data[6] |= 1; /* encrypted, in the local header and the directory */
	data[cd + 8] |= 1;
	expect_badmsg(data, len, "encrypted");
	data[6] &= ~1;
	data[cd + 8] &= ~1;

	data[len - 22 + 4] = 1; /* disk number */
	expect_badmsg(data, len, "multi-disk");
	data[len - 22 + 4] = 0;

	memcpy(big, data, len); /* a zip comment */
	big[len - 2] = 5;
	memcpy(big + len, "hello", 5);
	expect_badmsg(big, len + 5, "comment");

	memcpy(big, "garbage!", 8); /* bytes before the first entry */
	memcpy(big + 8, data, len);
	expect_badmsg(big, len + 8, "prefix");

	data[cd + 32] = 1; /* a file comment length */
	expect_badmsg(data, len, "file comment");
	data[cd + 32] = 0;
	free(big);
	free(data);
}
END_TEST

/* An index used with another file, and files that are not zips. */
START_TEST(test_wrong_fds)
{
	char **zips = make_split("s", 3, split_node_modules, 1);
	char *out = tpath("out.zip"), *msg = NULL;
	struct zip_index *idx;
	int fd, other, pfd[2], out_fd;

	fd = open(zips[1], O_RDONLY | O_CLOEXEC);
	other = open(zips[2], O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(zip_index_read(fd, &idx, &msg), 0);
	out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_eq(zipsplice_write(out_fd, &other, &idx, 1, &msg), -ESTALE);
	ck_assert_ptr_nonnull(msg);
	free(msg);
	close(out_fd);
	zip_index_free(idx);

	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	ck_assert_int_eq(zip_index_read(pfd[0], &idx, &msg), -EINVAL);
	ck_assert_ptr_null(idx);
	ck_assert_ptr_nonnull(msg);
	free(msg);
	close(pfd[0]);
	close(pfd[1]);
	{
		const char *text = "not a zip at all, but long enough to hold an end record";

		expect_badmsg(text, strlen(text), "text");
	}
	close(fd);
	close(other);
	free(out);
	free_paths(zips, 3);
}
END_TEST

static Suite *zipsplice_suite(void)
{
	Suite *s = suite_create("zipsplice");
	TCase *tc = tcase_create("equal");
	TCase *big = tcase_create("big");
	TCase *bad = tcase_create("refused");

	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_loop_test(tc, test_split_node_modules, 0, SEEDS);
	tcase_add_loop_test(tc, test_split_interleaved, 0, SEEDS);
	tcase_add_loop_test(tc, test_split_nested, 0, SEEDS);
	tcase_add_test(tc, test_shared_folder_once);
	tcase_add_test(tc, test_file_in_both);
	tcase_add_test(tc, test_empty_parts);
	tcase_add_test(tc, test_kinds_of_entries);
	tcase_add_test(tc, test_output_offset);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(big, setup_tmp, teardown_tmp);
	tcase_set_timeout(big, 300);
	tcase_add_test(big, test_large_files);
	tcase_add_test(big, test_zip64_end_records);
	tcase_add_test(big, test_many_files);
	suite_add_tcase(s, big);

	tcase_add_checked_fixture(bad, setup_tmp, teardown_tmp);
	tcase_add_test(bad, test_truncated);
	tcase_add_test(bad, test_every_byte_damaged);
	tcase_add_test(bad, test_not_as_ziptree_writes);
	tcase_add_test(bad, test_wrong_fds);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(zipsplice_suite());
	int failed;

	/* libarchive converts names to the locale's charset when reading back */
	setlocale(LC_CTYPE, "C.UTF-8");
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
