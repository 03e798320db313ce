/*
 * test_zipnorm.c - Check suite for zip_normalize (zipnorm.h) and the JAR
 * order of ziptree_write_opts.
 *
 * The oracle is independent of the code under test: Info-ZIP's unzip
 * extracts the input zip (run through fork/execvp, no shell), and
 * ziptree_write zips that tree; zip_normalize must give exactly those bytes.
 * Input zips are written here with libarchive, with random entry orders,
 * timestamps, owners, modes (same execute bit), compression and with or
 * without the folders' own entries; those zips that libarchive cannot write
 * (a device entry, a lying size) are patched in their central directory.
 * Every test runs in a fresh mkdtemp folder under /tmp; after every call of
 * zip_normalize its scratch folder must be empty again.
 *
 * The process keeps the "C" locale (a daemon's): non-ASCII names must work
 * anyway.  Only the unzip child gets LC_ALL=C.UTF-8.
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
#include "zipnorm.h"
#include "ziptree.h"

static char *tmpdir;
static char *scratch;

static void setup_tmp(void)
{
	char tmpl[] = "/tmp/sebsfs-zipnorm-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	tmpdir = strdup(tmpl);
	ck_assert_ptr_nonnull(tmpdir);
	scratch = path_join(tmpdir, "scratch");
	ck_assert_int_eq(mkdir(scratch, 0755), 0);
}

static void teardown_tmp(void)
{
	if (tmpdir) {
		rm_rf(tmpdir);
		free(tmpdir);
		free(scratch);
		tmpdir = scratch = NULL;
	}
}

/* ---- helpers ---- */

static char *tpath(const char *rel)
{
	char *p = path_join(tmpdir, rel);

	ck_assert_ptr_nonnull(p);
	return p;
}

/* Runs argv without a shell (unzip with LC_ALL=C.UTF-8, so it writes names
 * as the UTF-8 bytes they are); returns the exit status, stdout in *out. */
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
		setenv("LC_ALL", "C.UTF-8", 1);
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

/* True when prog is an executable in $PATH. */
static bool have(const char *prog)
{
	const char *path = getenv("PATH");
	bool found = false;

	if (!path)
		path = "/usr/bin:/bin";
	while (!found && *path) {
		size_t len = strcspn(path, ":");
		char *p = str_printf("%.*s/%s", (int)len, path, prog);

		found = access(p, X_OK) == 0;
		free(p);
		path += len + (path[len] == ':');
	}
	return found;
}

static char *slurp(const char *path, size_t *len)
{
	char *buf = NULL;

	ck_assert_int_eq(read_file(path, &buf, len), 0);
	return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write_all(fd, data, len), 0);
	close(fd);
}

static void assert_same_file(const char *a, const char *b)
{
	size_t la, lb;
	char *x = slurp(a, &la), *y = slurp(b, &lb);

	ck_assert_msg(la == lb && memcmp(x, y, la) == 0, "%s (%zu bytes) and %s (%zu bytes) differ",
		      a, la, b, lb);
	free(x);
	free(y);
}

static void assert_scratch_empty(void)
{
	char **names;
	size_t n;

	ck_assert_int_eq(list_dir_sorted(scratch, &names, &n), 0);
	ck_assert_msg(n == 0, "scratch folder not empty: %s", n ? names[0] : "");
	str_list_free(names, n);
}

/* zip_normalize(in) into out; asserts the scratch folder is empty after. */
static int normalize(const char *in, const char *out, const struct zipnorm_options *opts,
		     char **msg)
{
	int in_fd = open(in, O_RDONLY | O_CLOEXEC);
	int out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc;

	ck_assert_int_ge(in_fd, 0);
	ck_assert_int_ge(out_fd, 0);
	rc = zip_normalize(in_fd, out_fd, scratch, opts, msg);
	close(in_fd);
	close(out_fd);
	assert_scratch_empty();
	return rc;
}

static void normalize_ok(const char *in, const char *out, const struct zipnorm_options *opts)
{
	char *msg = NULL;
	int rc = normalize(in, out, opts, &msg);

	ck_assert_msg(rc == 0, "zip_normalize(%s): %d %s", in, rc, msg ? msg : "");
	ck_assert_ptr_null(msg);
}

/* Asserts zip_normalize refuses in with rc, a one-line message containing
 * every string of want, and writes nothing. */
static void assert_refused(const char *in, int want_rc, const char *const *want)
{
	char *out = tpath("refused.zip"), *msg = NULL;
	struct stat st;
	int rc = normalize(in, out, NULL, &msg);

	ck_assert_msg(rc == want_rc, "zip_normalize(%s) gave %d (%s), not %d", in, rc,
		      msg ? msg : "no message", want_rc);
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_null(strchr(msg, '\n'));
	for (size_t i = 0; want && want[i]; i++)
		ck_assert_msg(strstr(msg, want[i]), "message \"%s\" lacks \"%s\"", msg, want[i]);
	ck_assert_int_eq(stat(out, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	free(msg);
	free(out);
}

/* The reference: ziptree_write_opts of the tree Info-ZIP's unzip extracts. */
static void reference(const char *zip, const char *out, bool jar_order)
{
	char *dir = tpath("unzipped"), *msg = NULL;
	struct ziptree_options o = { .jar_order = jar_order };
	int fd, rc;

	ck_assert_int_eq(rm_rf(dir), 0);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(run((char *const[]){ "unzip", "-qq", (char *)zip, "-d", dir, NULL }, NULL), 0);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	rc = ziptree_write_opts(dir, fd, &o, &msg);
	ck_assert_msg(rc == 0, "ziptree_write(%s): %d %s", dir, rc, msg ? msg : "");
	close(fd);
	ck_assert_int_eq(rm_rf(dir), 0);
	free(dir);
}

/* The names `unzip -Z1` lists, one per line. */
static char *unzip_list(const char *zip)
{
	char *out = NULL;

	ck_assert_int_eq(run((char *const[]){ "unzip", "-Z1", (char *)zip, NULL }, &out), 0);
	return out;
}

/* ---- writing input zips ---- */

struct zent {
	const char *name;   /* as stored; folders end in '/' */
	char type;          /* 'f' file, 'd' folder, 'l' symlink */
	mode_t perm;
	const char *data;   /* file content or link target */
};

struct zstyle {
	unsigned seed;      /* 0: fixed times, no shuffling */
	bool store;         /* no compression */
};

/* Writes the n entries to zip path, in the order given (or a shuffle of it
 * and random times, owners and compression when style->seed is set). */
static void write_zip(const char *path, const struct zent *v, size_t n, const struct zstyle *style)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();
	/* libarchive writes a non-ASCII link target empty in the C locale */
	locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	locale_t saved;
	size_t order[256];
	unsigned seed = style ? style->seed : 0;
	bool store = style && style->store;

	ck_assert_uint_le(n, 256);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	if (seed) {
		srand(seed);
		for (size_t i = n; i > 1; i--) {
			size_t j = (size_t)rand() % i, t = order[i - 1];

			order[i - 1] = order[j];
			order[j] = t;
		}
		store = rand() % 2;
	}
	ck_assert_ptr_nonnull(utf8);
	saved = uselocale(utf8);
	ck_assert_int_eq(archive_write_set_format_zip(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_set_format_option(a, "zip", "hdrcharset", "UTF-8"), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_set_format_option(a, "zip", "compression",
							 store ? "store" : "deflate"), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t k = 0; k < n; k++) {
		const struct zent *e = &v[order[k]];

		archive_entry_clear(ae);
		archive_entry_set_pathname_utf8(ae, e->name);
		archive_entry_set_perm(ae, e->perm);
		archive_entry_set_mtime(ae, seed ? 400000000 + rand() % 1000000000 : 1600000000, 0);
		archive_entry_set_uid(ae, seed ? rand() % 5000 : 1000);
		archive_entry_set_gid(ae, seed ? rand() % 5000 : 1000);
		if (e->type == 'f') {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_size(ae, (la_int64_t)strlen(e->data));
		} else if (e->type == 'd') {
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_size(ae, 0);
		} else {
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink_utf8(ae, e->data);
			archive_entry_set_size(ae, 0);
		}
		ck_assert_msg(archive_write_header(a, ae) == ARCHIVE_OK, "header %s: %s", e->name,
			      archive_error_string(a));
		if (e->type == 'f' && *e->data)
			ck_assert_int_eq(archive_write_data(a, e->data, strlen(e->data)),
					 (la_ssize_t)strlen(e->data));
	}
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(ae);
	uselocale(saved);
	freelocale(utf8);
}

/* The central directory record of name in the zip bytes buf. */
static unsigned char *cd_record(char *buf, size_t len, const char *name)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i + 46 <= len; i++) {
		unsigned char *p = (unsigned char *)buf + i;

		if (memcmp(p, "PK\1\2", 4) != 0)
			continue;
		if ((size_t)(p[28] | p[29] << 8) == nlen && i + 46 + nlen <= len &&
		    memcmp(p + 46, name, nlen) == 0)
			return p;
	}
	ck_abort_msg("no central directory record for %s", name);
	return NULL;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = (v >> 24) & 0xff;
}

/* Sets the Unix mode (the high half of the external attributes) of name. */
static void patch_mode(const char *zip, const char *name, uint32_t mode)
{
	size_t len;
	char *buf = slurp(zip, &len);
	unsigned char *rec = cd_record(buf, len, name);

	ck_assert_int_eq(rec[5], 3); /* made by Unix: the mode is read */
	put_le32(rec + 38, mode << 16);
	spit(zip, buf, len);
	free(buf);
}

/* Sets the uncompressed size of name in its central directory record and
 * its local header (libarchive compares the two). */
static void patch_size(const char *zip, const char *name, uint32_t size)
{
	size_t len;
	char *buf = slurp(zip, &len);
	unsigned char *rec = cd_record(buf, len, name);
	size_t local = (size_t)rec[42] | (size_t)rec[43] << 8 | (size_t)rec[44] << 16 |
		       (size_t)rec[45] << 24;

	ck_assert_uint_lt(local + 30, len);
	ck_assert_int_eq(memcmp(buf + local, "PK\3\4", 4), 0);
	put_le32(rec + 24, size);
	put_le32((unsigned char *)buf + local + 22, size);
	spit(zip, buf, len);
	free(buf);
}

/* ---- random trees ---- */

struct model {
	struct zent v[96];
	char names[96][128];
	char data[96][160];
	size_t n;
};

static const char *const pool[] = { "a", "b", "lib", "META-INF", "caf\xc3\xa9", "x-y", "x.y",
				     "Z", "bin", "a b", "\xe6\x97\xa5\xe6\x9c\xac" };
#define POOL_N (sizeof(pool) / sizeof(pool[0]))

/* True when path p is a or lies below folder a. */
static bool under(const char *p, const char *a)
{
	size_t n = strlen(a);

	return !strncmp(p, a, n) && (p[n] == '\0' || p[n] == '/');
}

/* A file or link at p conflicts with an entry at or below it, and with a
 * file or link at any of its folders. */
static bool conflicts(const struct model *m, const char *p)
{
	for (size_t i = 0; i < m->n; i++) {
		char base[128];

		snprintf(base, sizeof(base), "%s", m->names[i]);
		if (m->v[i].type == 'd')
			base[strlen(base) - 1] = '\0';
		if (under(base, p) || (m->v[i].type != 'd' && under(p, base)))
			return true;
	}
	return false;
}

static bool has_dir_entry(const struct model *m, const char *dir)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].type == 'd' && !strncmp(m->names[i], dir, strlen(dir)) &&
		    m->names[i][strlen(dir)] == '/' && m->names[i][strlen(dir) + 1] == '\0')
			return true;
	return false;
}

static void model_add(struct model *m, const char *name, char type, mode_t perm, const char *data)
{
	ck_assert_uint_lt(m->n, 96);
	snprintf(m->names[m->n], sizeof(m->names[0]), "%s", name);
	snprintf(m->data[m->n], sizeof(m->data[0]), "%s", data ? data : "");
	m->v[m->n] = (struct zent){ m->names[m->n], type, perm, m->data[m->n] };
	m->n++;
}

/* A random tree of files, folders (some only implied) and in-tree links. */
static void random_model(struct model *m, unsigned seed)
{
	static const mode_t exec[] = { 0755, 0700, 0711, 0775, 0555, 0744 };
	static const mode_t plain[] = { 0644, 0600, 0664, 0444, 0640, 0666 };

	srand(seed);
	m->n = 0;
	for (int tries = 0; tries < 60 && m->n < 40; tries++) {
		char p[128] = "";
		int depth = 1 + rand() % 3;
		int kind = rand() % 10;

		for (int d = 0; d < depth; d++) {
			if (d)
				strcat(p, "/");
			strcat(p, pool[(size_t)rand() % POOL_N]);
		}
		if (kind == 0) {
			/* an (empty) folder of its own */
			char dn[130];

			if (conflicts(m, p) || has_dir_entry(m, p))
				continue;
			snprintf(dn, sizeof(dn), "%s/", p);
			model_add(m, dn, 'd', 0755, NULL);
			continue;
		}
		if (conflicts(m, p))
			continue;
		if (kind == 1 && m->n > 0) {
			/* a link to an earlier entry, relative from its folder */
			char t[160] = "";
			const char *target = m->names[(size_t)rand() % m->n];

			for (int d = 1; d < depth; d++)
				strcat(t, "../");
			strcat(t, target);
			if (t[strlen(t) - 1] == '/')
				t[strlen(t) - 1] = '\0';
			model_add(m, p, 'l', 0777, t);
			continue;
		}
		{
			char content[160];
			bool x = rand() % 3 == 0;

			snprintf(content, sizeof(content), "%s %d\n%.*s", p, rand(),
				 rand() % 80, "0123456789abcdef0123456789abcdef0123456789abcdef"
					      "0123456789abcdef0123456789abcdef");
			model_add(m, p, 'f', x ? exec[rand() % 6] : plain[rand() % 6], content);
		}
	}
	/* the folders' own entries for some of the implied folders */
	for (size_t i = 0, n = m->n; i < n; i++) {
		char d[130];

		snprintf(d, sizeof(d), "%s", m->names[i]);
		for (char *s = strchr(d, '/'); s && s[1]; s = strchr(s + 1, '/')) {
			*s = '\0';
			if (rand() % 2 && !has_dir_entry(m, d)) {
				char dn[132];

				snprintf(dn, sizeof(dn), "%s/", d);
				model_add(m, dn, 'd', rand() % 2 ? 0755 : 0700, NULL);
			}
			*s = '/';
		}
	}
}

/* The same tree with other modes of the same execute bit. */
static void vary_modes(struct model *m, unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i].type != 'f')
			continue;
		if (m->v[i].perm & 0111)
			m->v[i].perm = rand() % 2 ? 0755 : 0500;
		else
			m->v[i].perm = rand() % 2 ? 0644 : 0400;
	}
}

/* ---- tests ---- */

START_TEST(test_random_trees)
{
	char *z1 = tpath("one.zip"), *z2 = tpath("two.zip"), *n1 = tpath("one.norm.zip"),
	     *n2 = tpath("two.norm.zip"), *ref = tpath("ref.zip"), *again = tpath("again.zip");

	for (unsigned it = 1; it <= 25; it++) {
		struct model m;
		struct zstyle s1 = { .seed = it * 7919 }, s2 = { .seed = it * 104729 };

		random_model(&m, it);
		write_zip(z1, m.v, m.n, &s1);
		vary_modes(&m, it + 1000);
		write_zip(z2, m.v, m.n, &s2);

		normalize_ok(z1, n1, NULL);
		normalize_ok(z2, n2, NULL);
		reference(z1, ref, false);
		/* normalize(zip) == ziptree_write(unzip(zip)) */
		assert_same_file(n1, ref);
		/* whatever the order, times, owners, modes, compression */
		assert_same_file(n1, n2);
		/* idempotent */
		normalize_ok(n1, again, NULL);
		assert_same_file(again, n1);
		ck_assert_int_eq(run((char *const[]){ "unzip", "-tqq", n1, NULL }, NULL), 0);
	}
	free(z1); free(z2); free(n1); free(n2); free(ref); free(again);
}
END_TEST

/* Folders only implied by their files' names become entries; file content,
 * links and the execute bit survive. */
START_TEST(test_implied_folders_and_content)
{
	const struct zent v[] = {
		{ "bin/run", 'f', 0700, "#!/bin/sh\necho hi\n" },
		{ "lib/deep/er/x.so", 'f', 0600, "\177ELF" },
		{ "caf\xc3\xa9/\xe6\x97\xa5.txt", 'f', 0644, "utf-8 names\n" },
		{ "link", 'l', 0777, "lib/deep" },
		{ "empty/", 'd', 0700, NULL },
		{ "bootstrap", 'f', 0755, "" },
	};
	const char *want = "bin/\nbin/run\nbootstrap\ncaf\xc3\xa9/\ncaf\xc3\xa9/\xe6\x97\xa5.txt\n"
			   "empty/\nlib/\nlib/deep/\nlib/deep/er/\nlib/deep/er/x.so\nlink\n";
	char *z = tpath("in.zip"), *n = tpath("out.zip"), *ref = tpath("ref.zip"), *list, *verbose = NULL;

	write_zip(z, v, sizeof(v) / sizeof(v[0]), NULL);
	normalize_ok(z, n, NULL);
	reference(z, ref, false);
	assert_same_file(n, ref);
	list = unzip_list(n);
	ck_assert_str_eq(list, want);
	free(list);
	/* modes as ziptree fixes them: 0755 with an execute bit, else 0644 */
	ck_assert_int_eq(run((char *const[]){ "unzip", "-Z", "-l", n, NULL }, &verbose), 0);
	ck_assert_ptr_nonnull(strstr(verbose, "-rwxr-xr-x"));
	ck_assert_ptr_nonnull(strstr(verbose, "lrwxrwxrwx"));
	free(verbose);
	free(z); free(n); free(ref);
}
END_TEST

/* Regression: in the C locale libarchive wrote a non-ASCII symlink target
 * as an empty one; ziptree_write now gives the target's bytes whatever the
 * process locale. */
START_TEST(test_ziptree_non_ascii_link_target)
{
	char *dir = tpath("t"), *z = tpath("t.zip"), *out = tpath("out"), *p;
	char target[64] = "";
	ssize_t n;
	int fd;

	p = path_join(dir, "caf\xc3\xa9");
	ck_assert_int_eq(mkdir_p(dir, 0755), 0);
	spit(p, "x", 1);
	free(p);
	p = path_join(dir, "l");
	ck_assert_int_eq(symlink("caf\xc3\xa9", p), 0);
	free(p);
	fd = open(z, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_eq(ziptree_write(dir, fd, NULL), 0);
	close(fd);
	ck_assert_int_eq(run((char *const[]){ "unzip", "-qq", z, "-d", out, NULL }, NULL), 0);
	p = path_join(out, "l");
	n = readlink(p, target, sizeof(target) - 1);
	ck_assert_int_gt(n, 0);
	ck_assert_str_eq(target, "caf\xc3\xa9");
	free(p); free(dir); free(z); free(out);
}
END_TEST

START_TEST(test_empty_zip)
{
	char *z = tpath("in.zip"), *n = tpath("out.zip"), *ref = tpath("ref.zip"), *dir = tpath("e");
	int fd;

	write_zip(z, NULL, 0, NULL);
	normalize_ok(z, n, NULL);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	fd = open(ref, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_eq(ziptree_write(dir, fd, NULL), 0);
	close(fd);
	assert_same_file(n, ref);
	free(z); free(n); free(ref); free(dir);
}
END_TEST

/* A jar as Maven lays it out, but some names sort before META-INF/. */
static const struct zent jar_entries[] = {
	{ "0-first.txt", 'f', 0644, "sorts before META-INF\n" },
	{ "Abc.class", 'f', 0644, "\xca\xfe\xba\xbe" },
	{ "META-INF/maven/g/a/pom.properties", 'f', 0644, "version=1\n" },
	{ "META-INF/MANIFEST.MF", 'f', 0644, "Manifest-Version: 1.0\r\nMain-Class: Abc\r\n\r\n" },
	{ "META-INF/", 'd', 0755, NULL },
	{ "org/x/Y.class", 'f', 0644, "\xca\xfe\xba\xbe" },
};

START_TEST(test_jar_order)
{
	const char *jar_want = "META-INF/\nMETA-INF/MANIFEST.MF\n0-first.txt\nAbc.class\n"
			       "META-INF/maven/\nMETA-INF/maven/g/\nMETA-INF/maven/g/a/\n"
			       "META-INF/maven/g/a/pom.properties\norg/\norg/x/\norg/x/Y.class\n";
	const char *sorted_want = "0-first.txt\nAbc.class\nMETA-INF/\nMETA-INF/MANIFEST.MF\n"
				  "META-INF/maven/\nMETA-INF/maven/g/\nMETA-INF/maven/g/a/\n"
				  "META-INF/maven/g/a/pom.properties\norg/\norg/x/\norg/x/Y.class\n";
	struct zipnorm_options jar = { .jar_order = true };
	char *z = tpath("in.jar"), *z2 = tpath("in2.jar"), *n = tpath("out.jar"),
	     *n2 = tpath("out2.jar"), *s = tpath("sorted.zip"), *ref = tpath("ref.jar"),
	     *again = tpath("again.jar"), *list;
	struct zstyle shuffled = { .seed = 42 };

	write_zip(z, jar_entries, sizeof(jar_entries) / sizeof(jar_entries[0]), NULL);
	write_zip(z2, jar_entries, sizeof(jar_entries) / sizeof(jar_entries[0]), &shuffled);
	normalize_ok(z, n, &jar);
	list = unzip_list(n);
	ck_assert_str_eq(list, jar_want);
	free(list);
	ck_assert_int_eq(run((char *const[]){ "unzip", "-tqq", n, NULL }, NULL), 0);
	/* equal to ziptree_write_opts(jar_order) of the extracted tree */
	reference(z, ref, true);
	assert_same_file(n, ref);
	/* order and times of the input do not matter; idempotent */
	normalize_ok(z2, n2, &jar);
	assert_same_file(n, n2);
	normalize_ok(n, again, &jar);
	assert_same_file(again, n);
	/* without the option: plain bytewise order */
	normalize_ok(z, s, NULL);
	list = unzip_list(s);
	ck_assert_str_eq(list, sorted_want);
	free(list);
	free(z); free(z2); free(n); free(n2); free(s); free(ref); free(again);
}
END_TEST

/* No META-INF at all: jar order is plain order. */
START_TEST(test_jar_order_without_manifest)
{
	const struct zent v[] = { { "b", 'f', 0644, "b" }, { "a/c", 'f', 0644, "c" } };
	struct zipnorm_options jar = { .jar_order = true };
	char *z = tpath("in.zip"), *n = tpath("j.zip"), *s = tpath("s.zip");

	write_zip(z, v, 2, NULL);
	normalize_ok(z, n, &jar);
	normalize_ok(z, s, NULL);
	assert_same_file(n, s);
	free(z); free(n); free(s);
}
END_TEST

/* Two jars of the real jar tool, made at different times from the same
 * classes, normalize to the same bytes; java.util.jar.JarInputStream finds
 * the manifest of the result. */
START_TEST(test_real_jar_tool)
{
	char *src = tpath("classes"), *j1 = tpath("one.jar"), *j2 = tpath("two.jar"),
	     *n1 = tpath("one.norm.jar"), *n2 = tpath("two.norm.jar"), *ref = tpath("ref.jar"),
	     *list, *p;
	struct zipnorm_options jar = { .jar_order = true };
	const char *files[] = { "Abc.class", "org/x/Y.class", "0.txt", "META-INF/services/x" };

	/* scripts/install-deps provides the JDK: a missing one is a failure, not a skip */
	ck_assert_msg(have("jar") && have("java"), "jar/java missing (run scripts/install-deps)");
	ck_assert_int_eq(mkdir(src, 0755), 0);
	for (size_t i = 0; i < 4; i++) {
		p = path_join(src, files[i]);
		char *d = strdup(p);

		*strrchr(d, '/') = '\0';
		ck_assert_int_eq(mkdir_p(d, 0755), 0);
		spit(p, files[i], strlen(files[i]));
		free(d);
		free(p);
	}
	ck_assert_int_eq(run((char *const[]){ "jar", "--create", "--file", j1, "-C", src, ".", NULL },
			     NULL), 0);
	/* later: other timestamps in the jar */
	for (size_t i = 0; i < 4; i++) {
		struct timespec ts[2] = { { 1000000000 + (time_t)i * 86400, 0 },
					  { 1000000000 + (time_t)i * 86400, 0 } };

		p = path_join(src, files[i]);
		ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
		free(p);
	}
	ck_assert_int_eq(run((char *const[]){ "jar", "--create", "--file", j2, "-C", src, ".", NULL },
			     NULL), 0);
	{
		size_t l1, l2;
		char *a = slurp(j1, &l1), *b = slurp(j2, &l2);

		ck_assert_msg(l1 != l2 || memcmp(a, b, l1) != 0, "the two jars are already equal");
		free(a);
		free(b);
	}
	normalize_ok(j1, n1, &jar);
	normalize_ok(j2, n2, &jar);
	assert_same_file(n1, n2);
	reference(j1, ref, true);
	assert_same_file(n1, ref);
	list = unzip_list(n1);
	ck_assert_msg(!strncmp(list, "META-INF/\nMETA-INF/MANIFEST.MF\n0.txt\n", 36),
		      "jar order: %s", list);
	free(list);

	{
		char *prog = tpath("Manifest.java"), *out = NULL;
		const char *code =
			"import java.util.jar.*;\n"
			"public class Manifest {\n"
			"  public static void main(String[] a) throws Exception {\n"
			"    try (JarInputStream in = new JarInputStream(new java.io.FileInputStream(a[0]))) {\n"
			"      System.out.println(in.getManifest() == null ? \"none\" : \"found\");\n"
			"    }\n"
			"  }\n"
			"}\n";

		spit(prog, code, strlen(code));
		ck_assert_int_eq(run((char *const[]){ "java", prog, n1, NULL }, &out), 0);
		ck_assert_str_eq(out, "found\n");
		free(out);
		/* the sorted form hides it behind 0.txt: the option matters */
		normalize_ok(j1, n2, NULL);
		ck_assert_int_eq(run((char *const[]){ "java", prog, n2, NULL }, &out), 0);
		ck_assert_str_eq(out, "none\n");
		free(out);
		free(prog);
	}
	free(src); free(j1); free(j2); free(n1); free(n2); free(ref);
}
END_TEST

/* Info-ZIP's zip, with symlinks stored as links (-y) and extra fields. */
START_TEST(test_real_zip_tool)
{
	char *src = tpath("pkg"), *z = tpath("pkg.zip"), *n = tpath("pkg.norm.zip"),
	     *ref = tpath("ref.zip"), *p;

	ck_assert_msg(have("zip"), "zip missing (run scripts/install-deps)");
	p = path_join(src, "bin");
	ck_assert_int_eq(mkdir_p(p, 0755), 0);
	free(p);
	p = path_join(src, "lib");
	ck_assert_int_eq(mkdir_p(p, 0755), 0);
	free(p);
	p = path_join(src, "bin/benchmark");
	spit(p, "\177ELF...", 7);
	ck_assert_int_eq(chmod(p, 0755), 0);
	free(p);
	p = path_join(src, "bootstrap");
	spit(p, "#!/bin/sh\n", 10);
	ck_assert_int_eq(chmod(p, 0755), 0);
	free(p);
	p = path_join(src, "lib/libfoo.so.1");
	spit(p, "so", 2);
	free(p);
	p = path_join(src, "lib/libfoo.so");
	ck_assert_int_eq(symlink("libfoo.so.1", p), 0);
	free(p);
	ck_assert_int_eq(chdir(src), 0);
	ck_assert_int_eq(run((char *const[]){ "zip", "-q", "-r", "-y", z, ".", NULL }, NULL), 0);
	ck_assert_int_eq(chdir("/"), 0);
	normalize_ok(z, n, NULL);
	reference(z, ref, false);
	assert_same_file(n, ref);
	p = unzip_list(n);
	ck_assert_str_eq(p, "bin/\nbin/benchmark\nbootstrap\nlib/\nlib/libfoo.so\nlib/libfoo.so.1\n");
	free(p);
	free(src); free(z); free(n); free(ref);
}
END_TEST

/* ---- refusals ---- */

static void refuse_entries(const struct zent *v, size_t n, int rc, const char *const *want)
{
	char *z = tpath("bad.zip");

	write_zip(z, v, n, NULL);
	assert_refused(z, rc, want);
	free(z);
}

START_TEST(test_refuse_dotdot)
{
	const struct zent v[] = { { "ok.txt", 'f', 0644, "ok" }, { "../evil", 'f', 0644, "x" } };
	const struct zent w[] = { { "a/../../evil", 'f', 0644, "x" } };
	const struct zent x[] = { { "a/..", 'd', 0755, NULL } };

	refuse_entries(v, 2, -EPERM, (const char *const[]){ "../evil", "..", NULL });
	refuse_entries(w, 1, -EPERM, (const char *const[]){ "a/../../evil", NULL });
	refuse_entries(x, 1, -EPERM, (const char *const[]){ "a/..", NULL });
}
END_TEST

START_TEST(test_refuse_absolute)
{
	const struct zent v[] = { { "/tmp/sebsfs-zipnorm-evil", 'f', 0644, "x" } };

	refuse_entries(v, 1, -EPERM, (const char *const[]){ "/tmp/sebsfs-zipnorm-evil", "absolute", NULL });
	ck_assert_int_ne(access("/tmp/sebsfs-zipnorm-evil", F_OK), 0);
}
END_TEST

START_TEST(test_refuse_odd_components)
{
	const struct zent v[] = { { "./a", 'f', 0644, "x" } };
	const struct zent w[] = { { "a//b", 'f', 0644, "x" } };

	refuse_entries(v, 1, -EINVAL, (const char *const[]){ "./a", NULL });
	refuse_entries(w, 1, -EINVAL, (const char *const[]){ "a//b", NULL });
}
END_TEST

START_TEST(test_refuse_duplicates)
{
	const struct zent files[] = { { "a.txt", 'f', 0644, "one" }, { "b", 'f', 0644, "b" },
				      { "a.txt", 'f', 0644, "two" } };
	const struct zent dirs[] = { { "d/", 'd', 0755, NULL }, { "d/x", 'f', 0644, "x" },
				     { "d/", 'd', 0755, NULL } };
	const struct zent file_dir[] = { { "d", 'f', 0644, "x" }, { "d/", 'd', 0755, NULL } };
	const struct zent dir_file[] = { { "d/x", 'f', 0644, "x" }, { "d", 'f', 0644, "x" } };
	const struct zent file_below[] = { { "d", 'f', 0644, "x" }, { "d/x", 'f', 0644, "x" } };
	const struct zent links[] = { { "l", 'l', 0777, "b" }, { "b", 'f', 0644, "b" },
				      { "l", 'l', 0777, "b" } };

	refuse_entries(files, 3, -EEXIST, (const char *const[]){ "a.txt", "duplicate", NULL });
	refuse_entries(dirs, 3, -EEXIST, (const char *const[]){ "d/", "duplicate", NULL });
	refuse_entries(file_dir, 2, -EEXIST, (const char *const[]){ "d", NULL });
	refuse_entries(dir_file, 2, -EEXIST, (const char *const[]){ "d", "folder", NULL });
	refuse_entries(file_below, 2, -EEXIST, (const char *const[]){ "d/x", "d is a file", NULL });
	refuse_entries(links, 3, -EEXIST, (const char *const[]){ "l", "duplicate", NULL });
}
END_TEST

START_TEST(test_refuse_symlink_escape)
{
	const struct zent up[] = { { "sub/l", 'l', 0777, "../../etc/passwd" } };
	const struct zent abs[] = { { "l", 'l', 0777, "/etc/passwd" } };
	const struct zent through[] = { { "l", 'l', 0777, "/tmp" },
					{ "l/sebsfs-zipnorm-evil", 'f', 0644, "x" } };
	const struct zent inside_through[] = { { "sub/", 'd', 0755, NULL }, { "l", 'l', 0777, "sub" },
					       { "l/x", 'f', 0644, "x" } };
	const struct zent loop[] = { { "a", 'l', 0777, "b" }, { "b", 'l', 0777, "a" } };
	char *z = tpath("bad.zip");

	refuse_entries(up, 1, -EPERM, (const char *const[]){ "sub/l", "../../etc/passwd", NULL });
	refuse_entries(abs, 1, -EPERM, (const char *const[]){ "l", "/etc/passwd", NULL });
	/* the link is refused before anything is written through it */
	refuse_entries(through, 2, -EPERM, (const char *const[]){ "l", "/tmp", NULL });
	ck_assert_int_ne(access("/tmp/sebsfs-zipnorm-evil", F_OK), 0);
	refuse_entries(inside_through, 3, -EPERM, (const char *const[]){ "l/x", "symlink", NULL });
	/* a link cycle inside the tree: ziptree's walk refuses it */
	write_zip(z, loop, 2, NULL);
	{
		char *out = tpath("loop.zip"), *msg = NULL;
		int rc = normalize(z, out, NULL, &msg);

		ck_assert_msg(rc == -ELOOP, "a link cycle gave %d (%s)", rc, msg ? msg : "");
		ck_assert_ptr_nonnull(msg);
		ck_assert_ptr_nonnull(strstr(msg, "zip/"));
		free(msg);
		free(out);
	}
	free(z);
}
END_TEST

/* libarchive's writer has no device entries: the mode is patched in.  (A
 * FIFO mode is read as a regular file by libarchive, as unzip extracts it:
 * it arrives as a file.) */
START_TEST(test_refuse_device_and_fifo)
{
	const struct zent v[] = { { "a", 'f', 0644, "x" }, { "dev", 'f', 0644, "" } };
	char *z = tpath("dev.zip");

	write_zip(z, v, 2, NULL);
	patch_mode(z, "dev", S_IFCHR | 0644);
	assert_refused(z, -EINVAL, (const char *const[]){ "dev", "character device", NULL });
	write_zip(z, v, 2, NULL);
	patch_mode(z, "dev", S_IFSOCK | 0644);
	assert_refused(z, -EINVAL, (const char *const[]){ "dev", "socket", NULL });
	write_zip(z, v, 2, NULL);
	patch_mode(z, "dev", S_IFBLK | 0644);
	assert_refused(z, -EINVAL, (const char *const[]){ "dev", "block device", NULL });
	free(z);
}
END_TEST

START_TEST(test_refuse_over_limits)
{
	static char big[70001], huge[4 << 20];
	const struct zent v[] = { { "a", 'f', 0644, big }, { "b", 'f', 0644, big } };
	const struct zent lying[] = { { "a", 'f', 0644, huge } };
	struct zipnorm_options small = { .max_bytes = 100000 };
	struct zipnorm_options few = { .max_entries = 3 };
	const struct zent many[] = { { "1", 'f', 0644, "" }, { "2", 'f', 0644, "" },
				     { "3", 'f', 0644, "" }, { "4", 'f', 0644, "" } };
	char *z = tpath("big.zip"), *out = tpath("out.zip"), *msg = NULL;
	int rc;

	memset(big, '0', sizeof(big) - 1);
	/* two entries that fit alone but not together (declared sizes) */
	write_zip(z, v, 2, NULL);
	rc = normalize(z, out, &small, &msg);
	ck_assert_msg(rc == -EFBIG, "%d %s", rc, msg ? msg : "");
	ck_assert_ptr_nonnull(strstr(msg, "100000"));
	free(msg);
	msg = NULL;
	/* the same limit is fine for one of them */
	write_zip(z, v, 1, NULL);
	normalize_ok(z, out, &small);
	/* an entry that declares 10 bytes but inflates to 4 MiB: counted (a
	 * smaller one libarchive finds wrong at the end of its stream) */
	memset(huge, 'z', sizeof(huge) - 1);
	write_zip(z, lying, 1, NULL);
	patch_size(z, "a", 10);
	small.max_bytes = 1000;
	rc = normalize(z, out, &small, &msg);
	ck_assert_msg(rc == -EFBIG, "a lying size gave %d %s", rc, msg ? msg : "");
	ck_assert_ptr_nonnull(strstr(msg, "entry a"));
	free(msg);
	msg = NULL;
	/* the default limit, on the declared size: nothing is inflated */
	write_zip(z, v, 1, &(struct zstyle){ .store = true });
	patch_size(z, "a", 0xfffffff0u);
	assert_refused(z, -EFBIG, (const char *const[]){ "entry a", "1073741824", NULL });
	/* too many entries */
	write_zip(z, many, 4, NULL);
	rc = normalize(z, out, &few, &msg);
	ck_assert_msg(rc == -EFBIG, "%d %s", rc, msg ? msg : "");
	ck_assert_ptr_nonnull(strstr(msg, "entries"));
	free(msg);
	write_zip(z, many, 3, NULL);
	normalize_ok(z, out, &few);
	free(z); free(out);
}
END_TEST

START_TEST(test_refuse_not_a_zip)
{
	char *p = tpath("not.zip"), *good = tpath("good.zip"), *buf;
	const char text[] = "this is not a zip\n";
	const struct zent v[] = { { "a.txt", 'f', 0644, "some text that deflates, some text that deflates" } };
	size_t len;
	int pfd[2];

	spit(p, text, sizeof(text) - 1);
	assert_refused(p, -EBADMSG, (const char *const[]){ "not a zip", NULL });
	spit(p, "", 0);
	assert_refused(p, -EBADMSG, (const char *const[]){ "not a zip", NULL });
	/* a tar archive is an archive, but not a zip */
	{
		struct archive *a = archive_write_new();
		struct archive_entry *ae = archive_entry_new();

		archive_write_set_format_pax_restricted(a);
		ck_assert_int_eq(archive_write_open_filename(a, p), ARCHIVE_OK);
		archive_entry_set_pathname(ae, "a.txt");
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, 0644);
		archive_entry_set_size(ae, 0);
		ck_assert_int_eq(archive_write_header(a, ae), ARCHIVE_OK);
		archive_write_close(a);
		archive_write_free(a);
		archive_entry_free(ae);
	}
	assert_refused(p, -EBADMSG, (const char *const[]){ "not a zip", NULL });
	/* cut in half: no central directory */
	write_zip(good, v, 1, NULL);
	buf = slurp(good, &len);
	spit(p, buf, len / 2);
	assert_refused(p, -EBADMSG, NULL);
	/* damaged data: a CRC or inflate error naming the entry */
	{
		unsigned char *h = (unsigned char *)buf;
		size_t data = 30 + (size_t)(h[26] | h[27] << 8) + (size_t)(h[28] | h[29] << 8);

		ck_assert_uint_lt(data + 4, len);
		buf[data + 2] ^= 0x55;
		buf[data + 3] ^= 0x55;
	}
	spit(p, buf, len);
	assert_refused(p, -EBADMSG, (const char *const[]){ "a.txt", NULL });
	free(buf);
	/* a pipe has no central directory to seek to */
	{
		char *out = tpath("out.zip"), *msg = NULL;
		int out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
		ck_assert_int_eq(zip_normalize(pfd[0], out_fd, scratch, NULL, &msg), -EINVAL);
		ck_assert_ptr_nonnull(strstr(msg, "regular file"));
		assert_scratch_empty();
		free(msg);
		close(pfd[0]);
		close(pfd[1]);
		close(out_fd);
		free(out);
	}
	free(p); free(good);
}
END_TEST

/* Replaces the name "badX.txt" by "bad\xff.txt" in both headers (libarchive
 * 3.6 crashes on writing a name that is not UTF-8), with the UTF-8 flag
 * (bit 11) set or not. */
static void patch_bad_name(const char *zip, bool utf8_flag)
{
	size_t len;
	char *buf = slurp(zip, &len);
	int found = 0;

	for (size_t i = 30; i + 8 <= len; i++) {
		unsigned char *h;

		if (memcmp(buf + i, "badX.txt", 8) != 0)
			continue;
		buf[i + 3] = '\xff';
		/* the name follows a local header (30 bytes) or a central one (46) */
		h = (unsigned char *)buf + i - (memcmp(buf + i - 30, "PK\3\4", 4) ? 46 : 30);
		ck_assert_msg(!memcmp(h, "PK", 2), "no header before the name");
		if (utf8_flag)
			h[memcmp(h, "PK\3\4", 4) ? 9 : 7] |= 0x08;
		found++;
	}
	ck_assert_int_eq(found, 2);
	spit(zip, buf, len);
	free(buf);
}

START_TEST(test_refuse_bad_utf8)
{
	const struct zent v[] = { { "badX.txt", 'f', 0644, "x" } };
	char *z = tpath("bad.zip");

	write_zip(z, v, 1, NULL);
	patch_bad_name(z, false);
	assert_refused(z, -EILSEQ, (const char *const[]){ "UTF-8", NULL });
	write_zip(z, v, 1, NULL);
	patch_bad_name(z, true);
	assert_refused(z, -EILSEQ, (const char *const[]){ "UTF-8", NULL });
	free(z);
}
END_TEST

START_TEST(test_missing_scratch)
{
	const struct zent v[] = { { "a", 'f', 0644, "x" } };
	char *z = tpath("in.zip"), *out = tpath("out.zip"), *msg = NULL;
	int in_fd, out_fd;

	write_zip(z, v, 1, NULL);
	in_fd = open(z, O_RDONLY | O_CLOEXEC);
	out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_eq(zip_normalize(in_fd, out_fd, "/nonexistent-sebsfs", NULL, &msg), -ENOENT);
	ck_assert_ptr_nonnull(strstr(msg, "/nonexistent-sebsfs"));
	free(msg);
	close(in_fd);
	close(out_fd);
	free(z); free(out);
}
END_TEST

static Suite *zipnorm_suite(void)
{
	Suite *s = suite_create("zipnorm");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_test(tc, test_random_trees);
	tcase_add_test(tc, test_implied_folders_and_content);
	tcase_add_test(tc, test_ziptree_non_ascii_link_target);
	tcase_add_test(tc, test_empty_zip);
	tcase_add_test(tc, test_jar_order);
	tcase_add_test(tc, test_jar_order_without_manifest);
	tcase_add_test(tc, test_real_jar_tool);
	tcase_add_test(tc, test_real_zip_tool);
	tcase_add_test(tc, test_refuse_dotdot);
	tcase_add_test(tc, test_refuse_absolute);
	tcase_add_test(tc, test_refuse_odd_components);
	tcase_add_test(tc, test_refuse_duplicates);
	tcase_add_test(tc, test_refuse_symlink_escape);
	tcase_add_test(tc, test_refuse_device_and_fifo);
	tcase_add_test(tc, test_refuse_over_limits);
	tcase_add_test(tc, test_refuse_not_a_zip);
	tcase_add_test(tc, test_refuse_bad_utf8);
	tcase_add_test(tc, test_missing_scratch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(zipnorm_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
