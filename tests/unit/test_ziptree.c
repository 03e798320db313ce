/*
 * test_ziptree.c - Check suites for the pack layer: ziptree (reproducible
 * zips) and layout (per-platform package layouts).
 *
 * Every test works on real trees in a fresh mkdtemp directory under /tmp and
 * reads the zips back twice: with libarchive and with Info-ZIP's unzip (run
 * through fork/execvp, no shell), so a zip only one of them accepts fails.
 * fork/exec rather than posix_spawn: src/common/spawn.h shadows <spawn.h>
 * on this target's include path.
 */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "layout.h"
#include "ziptree.h"

static char *tmpdir;

static void setup_tmp(void)
{
	char tmpl[] = "/tmp/sebsfs-ziptree-XXXXXX";

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

/* Creates root/rel with content and mode, parents included. */
static void put(const char *root, const char *rel, const char *content, mode_t mode)
{
	char *p = path_join(root, rel);
	char *dir = strdup(p);
	char *slash = strrchr(dir, '/');
	int fd;

	*slash = '\0';
	ck_assert_int_eq(mkdir_p(dir, 0755), 0);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ck_assert_msg(fd >= 0, "create %s: %s", p, strerror(errno));
	ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	free(dir);
	free(p);
}

static void set_mtime(const char *root, const char *rel, time_t t)
{
	char *p = path_join(root, rel);
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
	free(p);
}

/* Zips dir into file out; returns ziptree_write's result. */
static int zip_to(const char *dir, const char *out, char **errmsg)
{
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc;

	ck_assert_int_ge(fd, 0);
	rc = ziptree_write(dir, fd, errmsg);
	close(fd);
	return rc;
}

static void zip_ok(const char *dir, const char *out)
{
	char *msg = NULL;
	int rc = zip_to(dir, out, &msg);

	ck_assert_msg(rc == 0, "ziptree_write(%s): %d %s", dir, rc, msg ? msg : "");
	ck_assert_ptr_null(msg);
}

static char *slurp(const char *path, size_t *len)
{
	char *buf = NULL;

	ck_assert_int_eq(read_file(path, &buf, len), 0);
	return buf;
}

/* One entry read back by libarchive. */
struct rentry {
	char *path;
	mode_t type;
	mode_t perm;
	time_t mtime;
	int64_t uid, gid;
	char *link;
	char *data;
	size_t len;
};

struct rlist {
	struct rentry v[256];
	size_t n;
};

static void rlist_free(struct rlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].path);
		free(l->v[i].link);
		free(l->v[i].data);
	}
	l->n = 0;
}

static void read_zip(const char *zip, struct rlist *l)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	int r;

	l->n = 0;
	archive_read_support_format_zip(a);
	ck_assert_msg(archive_read_open_filename(a, zip, 16384) == ARCHIVE_OK,
		      "open %s: %s", zip, archive_error_string(a));
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
		struct rentry *e;
		char buf[65536];
		ssize_t got;

		ck_assert_uint_lt(l->n, 256);
		e = &l->v[l->n++];
		memset(e, 0, sizeof(*e));
		e->path = strdup(archive_entry_pathname(ae));
		e->type = archive_entry_filetype(ae);
		e->perm = archive_entry_perm(ae);
		e->mtime = archive_entry_mtime(ae);
		e->uid = archive_entry_uid(ae);
		e->gid = archive_entry_gid(ae);
		if (archive_entry_symlink(ae))
			e->link = strdup(archive_entry_symlink(ae));
		e->data = malloc(1);
		while ((got = archive_read_data(a, buf, sizeof(buf))) > 0) {
			e->data = realloc(e->data, e->len + (size_t)got + 1);
			memcpy(e->data + e->len, buf, (size_t)got);
			e->len += (size_t)got;
		}
		ck_assert_msg(got == 0, "read %s: %s", e->path, archive_error_string(a));
		e->data[e->len] = '\0';
	}
	ck_assert_msg(r == ARCHIVE_EOF, "next header: %s", archive_error_string(a));
	archive_read_free(a);
}

static const struct rentry *find(const struct rlist *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].path, path))
			return &l->v[i];
	ck_abort_msg("entry %s missing from zip", path);
	return NULL;
}

/* Runs argv without a shell; returns the exit status, stdout in *out. */
static int run(char *const argv[], char **out)
{
	int pfd[2], status;
	pid_t pid;
	char *buf = malloc(1);
	size_t len = 0;
	ssize_t r;
	char chunk[4096];

	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(pfd[1], 1) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	while ((r = read(pfd[0], chunk, sizeof(chunk))) > 0) {
		buf = realloc(buf, len + (size_t)r + 1);
		memcpy(buf + len, chunk, (size_t)r);
		len += (size_t)r;
	}
	buf[len] = '\0';
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Asserts that both libarchive and `unzip -Z1` list exactly want, in order,
 * and that `unzip -t` accepts the zip. */
static void assert_entries(const char *zip, const char *const *want)
{
	struct rlist l;
	char *out = NULL, *line, *save = NULL;
	size_t i = 0, nwant = 0;

	while (want[nwant])
		nwant++;
	read_zip(zip, &l);
	for (i = 0; i < l.n && i < nwant; i++)
		ck_assert_str_eq(l.v[i].path, want[i]);
	ck_assert_uint_eq(l.n, nwant);
	rlist_free(&l);

	ck_assert_int_eq(run((char *const[]){ "unzip", "-Z1", (char *)zip, NULL }, &out), 0);
	i = 0;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		ck_assert_uint_lt(i, nwant);
		ck_assert_str_eq(line, want[i]);
		i++;
	}
	ck_assert_uint_eq(i, nwant);
	free(out);
	ck_assert_int_eq(run((char *const[]){ "unzip", "-tq", (char *)zip, NULL }, NULL), 0);
}

/* ---- ziptree ---- */

/* The same content created in a different order, umask, and times. */
static void make_tree(const char *root, bool variant)
{
	mode_t old = umask(variant ? 077 : 022);
	const char *files[] = { "b.txt", "a/z.py", "a/b/c.txt", ".python_packages/x/__init__.py",
				"run.sh", "empty" };
	const char *content[] = { "bee\n", "print(1)\n", "deep\n", "# pkg\n", "#!/bin/sh\n", "" };
	size_t n = sizeof(files) / sizeof(files[0]);

	ck_assert_int_eq(mkdir(root, 0777), 0);
	for (size_t k = 0; k < n; k++) {
		size_t i = variant ? n - 1 - k : k;
		mode_t m = !strcmp(files[i], "run.sh") ? (variant ? 0700 : 0755)
						       : (variant ? 0600 : 0644);
		put(root, files[i], content[i], m);
	}
	{
		char *l = path_join(root, "link");

		ck_assert_int_eq(symlink("b.txt", l), 0);
		free(l);
	}
	{
		char *d = path_join(root, "emptydir");

		ck_assert_int_eq(mkdir(d, variant ? 0700 : 0755), 0);
		free(d);
	}
	const char *all[] = { "b.txt", "a/z.py", "a/b/c.txt", ".python_packages/x/__init__.py",
			      "run.sh", "empty", "link", "emptydir", "a/b", "a",
			      ".python_packages/x", ".python_packages" };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		set_mtime(root, all[i], variant ? 1700000000 + (time_t)i : 1000000000);
	umask(old);
}

static const char *const tree_entries[] = {
	".python_packages/", ".python_packages/x/", ".python_packages/x/__init__.py",
	"a/", "a/b/", "a/b/c.txt", "a/z.py", "b.txt", "empty", "emptydir/", "link",
	"run.sh", NULL,
};

START_TEST(test_reproducible)
{
	char *t1 = tpath("t1"), *t2 = tpath("t2");
	char *z1 = tpath("1.zip"), *z2 = tpath("2.zip"), *z3 = tpath("3.zip");
	size_t l1, l2, l3;
	char *b1, *b2, *b3;

	make_tree(t1, false);
	make_tree(t2, true);
	zip_ok(t1, z1);
	zip_ok(t2, z2);
	/* libarchive computes DOS times with localtime(): the bytes must not
	 * depend on the zone (this runs in a forked test process). */
	setenv("TZ", "Asia/Tokyo", 1);
	tzset();
	zip_ok(t2, z3);
	b1 = slurp(z1, &l1);
	b2 = slurp(z2, &l2);
	b3 = slurp(z3, &l3);
	ck_assert_uint_gt(l1, 22);
	ck_assert_uint_eq(l1, l2);
	ck_assert_msg(memcmp(b1, b2, l1) == 0, "zips of equal trees differ");
	ck_assert_uint_eq(l1, l3);
	ck_assert_msg(memcmp(b1, b3, l1) == 0, "zip depends on TZ");
	/* and the output is not trivially constant: content changes it */
	put(t2, "b.txt", "bea\n", 0644);
	zip_ok(t2, z2);
	free(b2);
	b2 = slurp(z2, &l2);
	ck_assert(l1 != l2 || memcmp(b1, b2, l1) != 0);
	free(b1); free(b2); free(b3);
	free(t1); free(t2); free(z1); free(z2); free(z3);
}
END_TEST

/* ziptree_options.store: the same entries, not compressed, reproducible. */
START_TEST(test_store)
{
	char *t = tpath("t"), *zd = tpath("d.zip"), *zs = tpath("s.zip"), *zs2 = tpath("s2.zip");
	struct ziptree_options o = { .store = true };
	char *big = malloc(200001), *msg = NULL, *b1, *b2;
	size_t ld, ls, ls2;
	struct rlist deflated, stored;

	make_tree(t, false);
	memset(big, 'a', 200000);
	big[200000] = '\0';
	put(t, "a/compressible.txt", big, 0644);
	zip_ok(t, zd);
	for (int i = 0; i < 2; i++) {
		int fd = open(i ? zs2 : zs, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ziptree_write_opts(t, fd, &o, &msg), 0);
		close(fd);
	}
	b1 = slurp(zs, &ls);
	b2 = slurp(zs2, &ls2);
	ck_assert_uint_eq(ls, ls2);
	ck_assert(memcmp(b1, b2, ls) == 0);
	free(slurp(zd, &ld));
	ck_assert_uint_lt(ld, 100000);   /* deflated */
	ck_assert_uint_gt(ls, 200000);   /* stored */
	read_zip(zd, &deflated);
	read_zip(zs, &stored);
	ck_assert_uint_eq(deflated.n, stored.n);
	for (size_t i = 0; i < stored.n; i++) {
		ck_assert_str_eq(stored.v[i].path, deflated.v[i].path);
		ck_assert_uint_eq(stored.v[i].perm, deflated.v[i].perm);
		ck_assert_uint_eq(stored.v[i].len, deflated.v[i].len);
		ck_assert(memcmp(stored.v[i].data, deflated.v[i].data, stored.v[i].len) == 0);
	}
	rlist_free(&deflated);
	rlist_free(&stored);
	ck_assert_int_eq(run((char *const[]){ "unzip", "-tq", zs, NULL }, NULL), 0);
	free(b1); free(b2); free(big);
	free(t); free(zd); free(zs); free(zs2);
}
END_TEST

START_TEST(test_sorted_with_dirs)
{
	char *t = tpath("t"), *z = tpath("t.zip");

	make_tree(t, true);
	zip_ok(t, z);
	assert_entries(z, tree_entries);
	free(t); free(z);
}
END_TEST

START_TEST(test_content_roundtrip)
{
	char *t = tpath("t"), *z = tpath("t.zip"), *big;
	const size_t bigsz = 3 * 1024 * 1024 + 17;  /* several read chunks */
	struct rlist l;
	const struct rentry *e;
	unsigned x = 12345;
	int fd;

	make_tree(t, false);
	big = malloc(bigsz + 1);
	for (size_t i = 0; i < bigsz; i++) {
		/* half compressible, half noise: exercises deflate's paths */
		x = x * 1103515245u + 12345u;
		big[i] = (i / 4096) % 2 ? (char)(x >> 16) : (char)('a' + i % 26);
	}
	{
		char *p = path_join(t, "a/big.bin");

		fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, big, bigsz), (ssize_t)bigsz);
		close(fd);
		free(p);
	}
	zip_ok(t, z);
	read_zip(z, &l);
	e = find(&l, "a/big.bin");
	ck_assert_uint_eq(e->len, bigsz);
	ck_assert(memcmp(e->data, big, bigsz) == 0);
	ck_assert_str_eq(find(&l, "a/b/c.txt")->data, "deep\n");
	ck_assert_str_eq(find(&l, "run.sh")->data, "#!/bin/sh\n");
	ck_assert_uint_eq(find(&l, "empty")->len, 0);
	ck_assert_int_eq(find(&l, "empty")->type, AE_IFREG);
	ck_assert_str_eq(find(&l, ".python_packages/x/__init__.py")->data, "# pkg\n");
	rlist_free(&l);
	ck_assert_int_eq(run((char *const[]){ "unzip", "-tq", z, NULL }, NULL), 0);
	free(big); free(t); free(z);
}
END_TEST

START_TEST(test_modes_owner_time)
{
	char *t = tpath("t"), *z = tpath("t.zip");
	struct rlist l;

	setenv("TZ", "UTC", 1);
	tzset();
	make_tree(t, true);  /* umask 077, exec file 0700 */
	zip_ok(t, z);
	read_zip(z, &l);
	for (size_t i = 0; i < l.n; i++) {
		const struct rentry *e = &l.v[i];

		ck_assert_int_eq(e->uid, 0);
		ck_assert_int_eq(e->gid, 0);
		ck_assert_msg(e->mtime == 315532800, "%s mtime %lld", e->path,
			      (long long)e->mtime);
		if (e->type == AE_IFDIR)
			ck_assert_int_eq(e->perm, 0755);
	}
	ck_assert_int_eq(find(&l, "run.sh")->perm, 0755);
	ck_assert_int_eq(find(&l, "b.txt")->perm, 0644);
	ck_assert_int_eq(find(&l, "emptydir/")->type, AE_IFDIR);
	ck_assert_int_eq(find(&l, "a/")->type, AE_IFDIR);
	rlist_free(&l);
	free(t); free(z);
}
END_TEST

START_TEST(test_symlink)
{
	char *t = tpath("t"), *z = tpath("t.zip"), *out = NULL;
	struct rlist l;
	const struct rentry *e;

	make_tree(t, false);
	zip_ok(t, z);
	read_zip(z, &l);
	e = find(&l, "link");
	ck_assert_int_eq(e->type, AE_IFLNK);
	ck_assert_ptr_nonnull(e->link);
	ck_assert_str_eq(e->link, "b.txt");
	rlist_free(&l);
	/* Info-ZIP agrees: a 'l' in the mode column of zipinfo's long listing */
	ck_assert_int_eq(run((char *const[]){ "unzip", "-Z", "-l", z, "link", NULL }, &out), 0);
	ck_assert_msg(out[0] == 'l', "zipinfo: %s", out);
	free(out);
	free(t); free(z);
}
END_TEST

START_TEST(test_empty_tree)
{
	char *t = tpath("empty"), *z = tpath("e.zip"), *b;
	struct rlist l;
	size_t len;

	ck_assert_int_eq(mkdir(t, 0755), 0);
	zip_ok(t, z);
	b = slurp(z, &len);
	/* just the end-of-central-directory record */
	ck_assert_uint_eq(len, 22);
	ck_assert(memcmp(b, "PK\005\006", 4) == 0);
	read_zip(z, &l);
	ck_assert_uint_eq(l.n, 0);
	free(b); free(t); free(z);
}
END_TEST

START_TEST(test_fifo_einval)
{
	char *t = tpath("t"), *z = tpath("t.zip"), *f, *msg = NULL;

	make_tree(t, false);
	f = path_join(t, "a/pipe");
	ck_assert_int_eq(mkfifo(f, 0644), 0);
	ck_assert_int_eq(zip_to(t, z, &msg), -EINVAL);
	ck_assert_ptr_nonnull(msg);
	ck_assert_msg(strstr(msg, "a/pipe") != NULL, "errmsg: %s", msg);
	free(msg);
	/* errmsg may be NULL */
	ck_assert_int_eq(zip_to(t, z, NULL), -EINVAL);
	free(f); free(t); free(z);
}
END_TEST

START_TEST(test_missing_dir)
{
	char *t = tpath("nope"), *z = tpath("t.zip"), *msg = NULL;

	ck_assert_int_eq(zip_to(t, z, &msg), -ENOENT);
	ck_assert_ptr_nonnull(msg);
	free(msg); free(t); free(z);
}
END_TEST

START_TEST(test_bad_utf8_name)
{
	char *t = tpath("t"), *z = tpath("t.zip"), *msg = NULL;

	char *z2 = tpath("t2.zip"), *b1, *b2;
	size_t l1, l2;

	ck_assert_int_eq(mkdir(t, 0755), 0);
	put(t, "caf\xc3\xa9.txt", "ok\n", 0644);
	zip_ok(t, z);
	/* libarchive sets the UTF-8 name flag from the locale unless told:
	 * the bytes must not depend on it. */
	ck_assert_ptr_nonnull(setlocale(LC_ALL, "C.UTF-8"));
	zip_ok(t, z2);
	b1 = slurp(z, &l1);
	b2 = slurp(z2, &l2);
	ck_assert_uint_eq(l1, l2);
	ck_assert_msg(memcmp(b1, b2, l1) == 0, "zip depends on the locale");
	free(b1); free(b2); free(z2);
	/* (libarchive's reader needs a UTF-8 locale for the name, too) */
	assert_entries(z, (const char *const[]){ "caf\xc3\xa9.txt", NULL });
	put(t, "bad\xff.txt", "x\n", 0644);
	ck_assert_int_eq(zip_to(t, z, &msg), -EILSEQ);
	ck_assert_ptr_nonnull(msg);
	free(msg); free(t); free(z);
}
END_TEST

/* ---- layout ---- */

/* The work folder a pipeline would hand to layout_apply. */
static char *make_workdir(const char *platform, const char *lang)
{
	char *w = tpath("work");
	bool py = !strcmp(lang, "python");

	ck_assert_int_eq(mkdir(w, 0755), 0);
	if (py) {
		put(w, "handler.py", "# handler\n", 0644);
		put(w, "function.py", "# function\n", 0644);
		put(w, "storage.py", "# storage\n", 0644);
		put(w, "requirements.txt", "jinja2\n", 0644);
		put(w, ".python_packages/lib/site-packages/x/__init__.py", "", 0644);
	} else {
		put(w, "handler.js", "// handler\n", 0644);
		put(w, "function.js", "// function\n", 0644);
		put(w, "storage.js", "// storage\n", 0644);
		put(w, "package.json", "{}\n", 0644);
		put(w, "node_modules/x/index.js", "// x\n", 0644);
		put(w, "node_modules/.package-lock.json", "{}\n", 0644);
	}
	put(w, "templates/t.html", "<html/>\n", 0644);
	if (!strcmp(platform, "openwhisk"))
		put(w, py ? "__main__.py" : "index.js", "# main\n", 0644);
	return w;
}

#define PY_PKG ".python_packages/", ".python_packages/lib/", \
	".python_packages/lib/site-packages/", ".python_packages/lib/site-packages/x/", \
	".python_packages/lib/site-packages/x/__init__.py"
#define NODE_MODS "node_modules/", "node_modules/x/", "node_modules/x/index.js"

static const char *const aws_py[] = {
	PY_PKG, "function/", "function/function.py", "function/storage.py",
	"function/templates/", "function/templates/t.html", "handler.py",
	"requirements.txt", NULL,
};
static const char *const gcp_py[] = {
	PY_PKG, "function/", "function/function.py", "function/requirements.txt",
	"function/storage.py", "function/templates/", "function/templates/t.html",
	"main.py", NULL,
};
static const char *const azure_py[] = {
	PY_PKG, "handler/", "handler/function.json", "handler/function.py",
	"handler/handler.py", "handler/storage.py", "handler/templates/",
	"handler/templates/t.html", "host.json", "requirements.txt", NULL,
};
static const char *const ow_py[] = { "__main__.py", NULL };
static const char *const aws_js[] = {
	"function/", "function/function.js", "function/storage.js",
	"function/templates/", "function/templates/t.html", "handler.js",
	NODE_MODS, "package.json", NULL,
};
static const char *const gcp_js[] = {
	"function/", "function/function.js", "function/package.json",
	"function/storage.js", "function/templates/", "function/templates/t.html",
	"index.js", NODE_MODS, NULL,
};
static const char *const azure_js[] = {
	"handler/", "handler/function.js", "handler/function.json",
	"handler/handler.js", "handler/storage.js", "handler/templates/",
	"handler/templates/t.html", "host.json", NODE_MODS, "package.json", NULL,
};
static const char *const ow_js[] = { "index.js", NULL };

static const struct {
	const char *platform, *lang;
	const char *const *entries;
} cases[] = {
	{ "aws", "python", aws_py },     { "local", "python", aws_py },
	{ "gcp", "python", gcp_py },     { "azure", "python", azure_py },
	{ "openwhisk", "python", ow_py },
	{ "aws", "nodejs", aws_js },     { "local", "nodejs", aws_js },
	{ "gcp", "nodejs", gcp_js },     { "azure", "nodejs", azure_js },
	{ "openwhisk", "nodejs", ow_js },
};

START_TEST(test_layout_platform)
{
	const char *platform = cases[_i].platform, *lang = cases[_i].lang;
	char *w = make_workdir(platform, lang), *z = tpath("p.zip"), *msg = NULL;
	bool py = !strcmp(lang, "python");
	struct rlist l;
	int rc;

	ck_assert(layout_supported(platform));
	rc = layout_apply(platform, lang, w, &msg);
	ck_assert_msg(rc == 0, "%s/%s: %d %s", platform, lang, rc, msg ? msg : "");
	ck_assert_ptr_null(msg);
	zip_ok(w, z);
	assert_entries(z, cases[_i].entries);

	read_zip(z, &l);
	if (!strcmp(platform, "gcp"))
		ck_assert_str_eq(find(&l, py ? "main.py" : "index.js")->data,
				 py ? "# handler\n" : "// handler\n");
	if (!strcmp(platform, "azure")) {
		json_error_t jerr;
		json_t *fn = json_loads(find(&l, "handler/function.json")->data, 0, &jerr);
		json_t *host = json_loads(find(&l, "host.json")->data, 0, &jerr);
		json_t *want_fn = json_pack(
			"{s:s, s:[{s:s, s:s, s:s, s:s, s:[s, s]}, {s:s, s:s, s:s}]}",
			"scriptFile", py ? "handler.py" : "handler.js", "bindings",
			"authLevel", "anonymous", "type", "httpTrigger", "direction", "in",
			"name", "req", "methods", "get", "post",
			"type", "http", "direction", "out", "name", "$return");
		json_t *want_host = json_pack(
			"{s:s, s:{s:s, s:s}}", "version", "2.0", "extensionBundle",
			"id", "Microsoft.Azure.Functions.ExtensionBundle",
			"version", "[4.0.0, 5.0.0)");

		ck_assert_ptr_nonnull(fn);
		ck_assert_ptr_nonnull(host);
		ck_assert_msg(json_equal(fn, want_fn), "function.json: %s",
			      find(&l, "handler/function.json")->data);
		ck_assert_msg(json_equal(host, want_host), "host.json: %s",
			      find(&l, "host.json")->data);
		ck_assert_int_eq(find(&l, "host.json")->perm, 0644);
		json_decref(fn); json_decref(host);
		json_decref(want_fn); json_decref(want_host);
	}
	rlist_free(&l);
	free(w); free(z);
}
END_TEST

/* A Java work folder after the build: the copied java/ folder with the
 * wrappers' src merged in, Maven's target/ and the jar the installer copied. */
static char *make_java_workdir(void)
{
	char *w = tpath("work");

	ck_assert_int_eq(mkdir(w, 0755), 0);
	put(w, "pom.xml", "<project/>\n", 0644);
	put(w, "src/main/java/function/Function.java", "class Function {}\n", 0644);
	put(w, "src/main/java/org/serverlessbench/Handler.java", "class Handler {}\n", 0644);
	put(w, "target/function.jar", "jar\n", 0644);
	put(w, "target/classes/function/Function.class", "class\n", 0644);
	put(w, ".mvn/jvm.config", "-Xmx1g\n", 0644);
	put(w, "mvnw", "#!/bin/sh\n", 0755);
	put(w, "init.sh", "#!/bin/bash\n", 0755);
	put(w, "templates/template.html", "<html/>\n", 0644);
	put(w, "function.jar", "jar\n", 0644);
	return w;
}

static const char *const azure_java[] = {
	"handler/", "handler/function.json", "handler/init.sh", "handler/templates/",
	"handler/templates/template.html", "host.json", "lib/", "lib/function.jar", NULL,
};
static const char *const gcp_java[] = {
	"function.jar", "function/", "function/.mvn/", "function/.mvn/jvm.config",
	"function/init.sh", "function/mvnw", "function/pom.xml", "function/src/",
	"function/src/main/", "function/src/main/java/", "function/src/main/java/function/",
	"function/src/main/java/function/Function.java", "function/src/main/java/org/",
	"function/src/main/java/org/serverlessbench/",
	"function/src/main/java/org/serverlessbench/Handler.java", "function/templates/",
	"function/templates/template.html", NULL,
};

/* SeBS's azure and gcp package_code for java; aws deploys the jar itself. */
START_TEST(test_layout_java)
{
	static const char *const platforms[] = { "azure", "gcp" };
	const char *platform = platforms[_i];
	char *w = make_java_workdir(), *z = tpath("p.zip"), *msg = NULL;
	struct rlist l;
	int rc = layout_apply(platform, "java", w, &msg);

	ck_assert_msg(rc == 0, "%s: %d %s", platform, rc, msg ? msg : "");
	zip_ok(w, z);
	assert_entries(z, _i == 0 ? azure_java : gcp_java);
	read_zip(z, &l);
	if (_i == 0) {
		json_error_t jerr;
		json_t *fn = json_loads(find(&l, "handler/function.json")->data, 0, &jerr);
		json_t *want = json_pack(
			"{s:s, s:s, s:[{s:s, s:s, s:s, s:s, s:[s, s]}, {s:s, s:s, s:s}]}",
			"scriptFile", "../lib/function.jar",
			"entryPoint", "org.serverlessbench.Handler.handleRequest", "bindings",
			"authLevel", "anonymous", "type", "httpTrigger", "direction", "in",
			"name", "req", "methods", "get", "post",
			"type", "http", "direction", "out", "name", "$return");

		ck_assert_msg(fn && json_equal(fn, want), "function.json: %s",
			      find(&l, "handler/function.json")->data);
		json_decref(fn);
		json_decref(want);
		ck_assert_ptr_nonnull(find(&l, "host.json"));
	}
	ck_assert_str_eq(find(&l, _i == 0 ? "lib/function.jar" : "function.jar")->data, "jar\n");
	rlist_free(&l);
	free(w);
	free(z);
}
END_TEST

START_TEST(test_layout_product)
{
	ck_assert_str_eq(layout_product("aws", "java"), "function.jar");
	ck_assert_str_eq(layout_product("aws", "cpp"), "build/benchmark.zip");
	ck_assert_ptr_null(layout_product("aws", "python"));
	ck_assert_ptr_null(layout_product("azure", "java"));
	ck_assert_ptr_null(layout_product("gcp", "java"));

	/* no java layout where SeBS has none; azure without the jar fails */
	char *w = make_java_workdir(), *msg = NULL;
	ck_assert_int_eq(layout_apply("local", "java", w, &msg), -ENOTSUP);
	ck_assert_ptr_nonnull(msg);
	free(msg);
	msg = NULL;
	char *jar = tpath("work/function.jar");
	ck_assert_int_eq(unlink(jar), 0);
	ck_assert_int_eq(layout_apply("azure", "java", w, &msg), -ENOENT);
	ck_assert_msg(msg && strstr(msg, "function.jar"), "%s", msg ? msg : "");
	free(msg);
	free(jar);
	free(w);
}
END_TEST

START_TEST(test_layout_lockfile_removed)
{
	char *w = make_workdir("aws", "nodejs"), *p;

	ck_assert_int_eq(layout_apply("aws", "nodejs", w, NULL), 0);
	p = path_join(w, "node_modules/.package-lock.json");
	ck_assert(!path_exists(p));
	free(p);
	p = path_join(w, "node_modules/x/index.js");
	ck_assert(path_exists(p));
	free(p); free(w);
}
END_TEST

START_TEST(test_layout_target_name_clash)
{
	/* A benchmark folder already named like the target is moved into it,
	 * not merged with it. */
	char *w = make_workdir("aws", "python"), *z = tpath("c.zip");

	put(w, "function/inner.py", "# inner\n", 0644);
	ck_assert_int_eq(layout_apply("aws", "python", w, NULL), 0);
	zip_ok(w, z);
	assert_entries(z, (const char *const[]){
		PY_PKG, "function/", "function/function.py", "function/function/",
		"function/function/inner.py", "function/storage.py",
		"function/templates/", "function/templates/t.html", "handler.py",
		"requirements.txt", NULL });
	free(w); free(z);
}
END_TEST

START_TEST(test_layout_missing_handler_ok)
{
	char *w = make_workdir("gcp", "python"), *p = path_join(w, "handler.py"), *z = tpath("m.zip");

	ck_assert_int_eq(unlink(p), 0);
	ck_assert_int_eq(layout_apply("gcp", "python", w, NULL), 0);
	zip_ok(w, z);
	assert_entries(z, (const char *const[]){
		PY_PKG, "function/", "function/function.py", "function/requirements.txt",
		"function/storage.py", "function/templates/", "function/templates/t.html",
		NULL });
	free(p); free(w); free(z);
}
END_TEST

START_TEST(test_layout_errors)
{
	char *w = tpath("nope"), *msg = NULL;

	ck_assert(!layout_supported("ibm"));
	ck_assert(!layout_supported(NULL));
	ck_assert_int_eq(layout_apply("ibm", "python", w, &msg), -ENOTSUP);
	ck_assert_ptr_nonnull(msg);
	free(msg);
	msg = NULL;
	ck_assert_int_eq(layout_apply("aws", "python", w, &msg), -ENOENT);
	ck_assert_ptr_nonnull(msg);
	free(msg);
	msg = NULL;
	ck_assert_int_eq(layout_apply("aws", "cobol", w, &msg), -ENOTSUP);
	ck_assert_ptr_nonnull(msg);
	free(msg);
	free(w);
}
END_TEST

static Suite *ziptree_suite(void)
{
	Suite *s = suite_create("ziptree");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_test(tc, test_reproducible);
	tcase_add_test(tc, test_sorted_with_dirs);
	tcase_add_test(tc, test_store);
	tcase_add_test(tc, test_content_roundtrip);
	tcase_add_test(tc, test_modes_owner_time);
	tcase_add_test(tc, test_symlink);
	tcase_add_test(tc, test_empty_tree);
	tcase_add_test(tc, test_fifo_einval);
	tcase_add_test(tc, test_missing_dir);
	tcase_add_test(tc, test_bad_utf8_name);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *layout_suite(void)
{
	Suite *s = suite_create("layout");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_loop_test(tc, test_layout_platform, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_loop_test(tc, test_layout_java, 0, 2);
	tcase_add_test(tc, test_layout_product);
	tcase_add_test(tc, test_layout_lockfile_removed);
	tcase_add_test(tc, test_layout_target_name_clash);
	tcase_add_test(tc, test_layout_missing_handler_ok);
	tcase_add_test(tc, test_layout_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ziptree_suite());
	int failed;

	srunner_add_suite(sr, layout_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
