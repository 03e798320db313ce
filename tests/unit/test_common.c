/*
 * test_common.c - Check suite for src/common: log, sha256, fsutil, spawn.
 *
 * Every test that touches the filesystem gets a fresh mkdtemp directory under
 * /tmp from the fixture; teardown removes it with nftw (not rm_rf, so a broken
 * rm_rf cannot hide behind its own cleanup).  Tests run forked (Check's
 * default), which lets the log tests redirect fd 2 freely.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "sha256.h"
#include "process.h"
#include "walk.h"

/* Per-run root, made and removed by main(): Check exits a failed test's
 * process without running its teardown, so cleanup must not depend on it. */
static char rootdir[40];
static char tmpdir[80]; /* per test, inside rootdir */

static int nftw_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int nftw_chmod(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_D)
		chmod(path, (st->st_mode & 07777) | S_IRWXU);
	return 0;
}

static void remove_tree(const char *dir)
{
	nftw(dir, nftw_chmod, 16, FTW_PHYS);
	nftw(dir, nftw_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup_tmp(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/t-XXXXXX", rootdir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown_tmp(void)
{
	remove_tree(tmpdir);
}

/* tmpdir-relative path in a static rotating buffer (tests only). */
static const char *tp(const char *rel)
{
	static char bufs[8][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, PATH_MAX, "%s/%s", tmpdir, rel);
	return b;
}

static void put_file(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	size_t len = strlen(content);
	ck_assert_int_eq(write(fd, content, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static char *slurp(const char *path)
{
	char *s = NULL;
	ck_assert_int_eq(read_file(path, &s, NULL), 0);
	return s;
}

/* ---------------------------------------------------------------- log */

static enum log_level cap_level;
static char cap_msg[8192];
static int cap_calls;

static void capture_backend(enum log_level level, const char *msg)
{
	cap_level = level;
	snprintf(cap_msg, sizeof(cap_msg), "%s", msg);
	cap_calls++;
}

START_TEST(log_backend_receives_formatted)
{
	log_set_backend(capture_backend);
	log_err("disk %s at %d%%", "full", 99);
	ck_assert_int_eq(cap_calls, 1);
	ck_assert_int_eq(cap_level, LOG_LVL_ERR);
	ck_assert_str_eq(cap_msg, "disk full at 99%");

	log_warn("w");
	ck_assert_int_eq(cap_level, LOG_LVL_WARN);
	log_info("i\n");
	ck_assert_int_eq(cap_level, LOG_LVL_INFO);
	ck_assert_str_eq(cap_msg, "i"); /* trailing newline stripped */
	log_set_backend(NULL);
}
END_TEST

START_TEST(log_debug_gated)
{
	log_set_backend(capture_backend);
	cap_calls = 0;
	ck_assert(!log_debug_enabled());
	log_debug("hidden");
	log_msg(LOG_LVL_DEBUG, "hidden too");
	ck_assert_int_eq(cap_calls, 0);
	log_set_debug(true);
	ck_assert(log_debug_enabled());
	log_debug("shown %d", 1);
	ck_assert_int_eq(cap_calls, 1);
	ck_assert_int_eq(cap_level, LOG_LVL_DEBUG);
	ck_assert_str_eq(cap_msg, "shown 1");
	log_set_debug(false);
	log_set_backend(NULL);
}
END_TEST

START_TEST(log_truncates_and_keeps_errno)
{
	log_set_backend(capture_backend);
	char *big = malloc(10001);
	memset(big, 'x', 10000);
	big[10000] = '\0';
	errno = EROFS;
	log_info("%s", big);
	ck_assert_int_eq(errno, EROFS);
	size_t len = strlen(cap_msg);
	ck_assert_uint_lt(len, 10000);
	ck_assert_uint_gt(len, 1000);
	ck_assert_str_eq(cap_msg + len - 3, "...");
	free(big);
	log_set_backend(NULL);
}
END_TEST

/* Points fd 2 at a file in tmpdir; returns the saved fd 2. */
static int redirect_stderr(const char *path)
{
	int saved = dup(STDERR_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	return saved;
}

static void restore_stderr(int saved)
{
	dup2(saved, STDERR_FILENO);
	close(saved);
}

START_TEST(log_default_stderr_format)
{
	int saved = redirect_stderr(tp("err.txt"));
	log_err("bad %s", "thing");
	log_warn("careful");
	log_info("fyi");
	log_set_debug(true);
	log_debug("dbg");
	log_set_debug(false);
	restore_stderr(saved);

	char *s = slurp(tp("err.txt"));
	ck_assert_str_eq(s, "sebsfs: error: bad thing\n"
			    "sebsfs: warning: careful\n"
			    "sebsfs: info: fyi\n"
			    "sebsfs: debug: dbg\n");
	free(s);
}
END_TEST

#define LOG_THREADS 8
#define LOG_LINES 300

static void *log_thread(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int i = 0; i < LOG_LINES; i++)
		log_info("thread %d line %d %s", id, i,
			 "padding-padding-padding-padding-padding-padding-padding");
	return NULL;
}

START_TEST(log_threads_do_not_interleave)
{
	int saved = redirect_stderr(tp("mt.txt"));
	pthread_t th[LOG_THREADS];
	for (int i = 0; i < LOG_THREADS; i++)
		pthread_create(&th[i], NULL, log_thread, (void *)(intptr_t)i);
	for (int i = 0; i < LOG_THREADS; i++)
		pthread_join(th[i], NULL);
	restore_stderr(saved);

	char *s = slurp(tp("mt.txt"));
	int seen[LOG_THREADS] = { 0 };
	int lines = 0;
	char *save = NULL;
	for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int id, n;
		char pad[128];
		ck_assert_msg(sscanf(line, "sebsfs: info: thread %d line %d %127s", &id, &n, pad) == 3,
			      "mangled line: %s", line);
		ck_assert_str_eq(pad, "padding-padding-padding-padding-padding-padding-padding");
		ck_assert_int_eq(n, seen[id]); /* per-thread order kept */
		seen[id]++;
		lines++;
	}
	ck_assert_int_eq(lines, LOG_THREADS * LOG_LINES);
	free(s);
}
END_TEST

/* ---------------------------------------------------------------- sha256 */

static const char *hex_of(const char *s)
{
	static char hex[SHA256_HEX_LEN + 1];
	sha256_hex_buf(s, strlen(s), hex);
	return hex;
}

START_TEST(sha256_standard_vectors)
{
	ck_assert_str_eq(hex_of(""),
			 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert_str_eq(hex_of("abc"),
			 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert_str_eq(hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
			 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	ck_assert_str_eq(hex_of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
				"hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
			 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}
END_TEST

#define MILLION_A "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

START_TEST(sha256_million_a_oneshot_and_chunked)
{
	size_t len = 1000000;
	char *buf = malloc(len);
	memset(buf, 'a', len);
	char hex[SHA256_HEX_LEN + 1];
	sha256_hex_buf(buf, len, hex);
	ck_assert_str_eq(hex, MILLION_A);

	static const size_t chunks[] = { 1, 3, 7, 55, 56, 63, 64, 65, 127, 1000, 4097 };
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct sha256_ctx ctx;
		sha256_init(&ctx);
		size_t off = 0;
		/* Vary the step too so buffer fill levels hit every residue. */
		for (size_t step = chunks[c]; off < len; step = step % 97 + chunks[c]) {
			size_t n = len - off < step ? len - off : step;
			sha256_update(&ctx, n, (const uint8_t *)buf + off);
			off += n;
		}
		sha256_digest_hex(&ctx, hex);
		ck_assert_msg(strcmp(hex, MILLION_A) == 0, "chunk %zu: %s", chunks[c], hex);
	}
	free(buf);
}
END_TEST

START_TEST(sha256_padding_boundaries)
{
	/* Lengths around the 56-byte padding edge and block edges, from Python
	 * hashlib. */
	static const struct { size_t n; const char *hex; } v[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 57, "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
		{ 65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0" },
		{ 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
		{ 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c" },
		{ 128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e" },
	};
	char buf[128];
	memset(buf, 'a', sizeof(buf));
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char hex[SHA256_HEX_LEN + 1];
		sha256_hex_buf(buf, v[i].n, hex);
		ck_assert_msg(strcmp(hex, v[i].hex) == 0, "len %zu: %s", v[i].n, hex);
	}
}
END_TEST

START_TEST(sha256_file_and_fd)
{
	const char *p = tp("million");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	char block[1000];
	memset(block, 'a', sizeof(block));
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
	close(fd);

	char hex[SHA256_HEX_LEN + 1];
	ck_assert_int_eq(sha256_hex_file(p, hex), 0);
	ck_assert_str_eq(hex, MILLION_A);
	ck_assert_uint_eq(strlen(hex), SHA256_HEX_LEN);

	/* From the current offset, not the start. */
	put_file(tp("xabc"), "xabc", 0644);
	fd = open(tp("xabc"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(lseek(fd, 1, SEEK_SET), 1);
	ck_assert_int_eq(sha256_hex_fd(fd, hex), 0);
	close(fd);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	ck_assert_int_eq(sha256_hex_file(tp("missing"), hex), -ENOENT);
	ck_assert_int_eq(sha256_hex_fd(-1, hex), -EBADF);
}
END_TEST

/* A pipe hands sha256_hex_fd short reads of whatever size the writer chose:
 * the million 'a' arrive in odd-sized pieces, some larger than a pipe holds. */
START_TEST(sha256_fd_short_reads_from_pipe)
{
	static const size_t pieces[] = { 1, 7, 997, 4099, 65537, 300007, 13 };
	int p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		static char block[300007];
		size_t left = 1000000;

		close(p[0]);
		memset(block, 'a', sizeof(block));
		for (size_t i = 0; left > 0; i++) {
			size_t n = pieces[i % (sizeof(pieces) / sizeof(pieces[0]))];

			n = n < left ? n : left;
			for (size_t off = 0; off < n;) {
				ssize_t w = write(p[1], block + off, n - off);
				if (w <= 0)
					_exit(1);
				off += (size_t)w;
			}
			left -= n;
		}
		_exit(0);
	}
	close(p[1]);
	char hex[SHA256_HEX_LEN + 1];
	int status;
	ck_assert_int_eq(sha256_hex_fd(p[0], hex), 0);
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_str_eq(hex, MILLION_A);
}
END_TEST

/* A file three read blocks and a byte long, with no repeating pattern a
 * misplaced block could hide in; the digest is Python hashlib's. */
START_TEST(sha256_file_spanning_read_blocks)
{
	size_t len = 3 * 262144 + 1;
	uint8_t *buf = malloc(len);
	char hex[SHA256_HEX_LEN + 1];

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + (i >> 8));
	int fd = open(tp("blocks"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
	ck_assert_int_eq(sha256_hex_file(tp("blocks"), hex), 0);
	ck_assert_str_eq(hex, "941d995ba994d4fb1daa86d57cf6b9bfd59425c155aa22ba39856ec93606e440");
	sha256_hex_buf(buf, len, hex);
	ck_assert_str_eq(hex, "941d995ba994d4fb1daa86d57cf6b9bfd59425c155aa22ba39856ec93606e440");
	free(buf);
}
END_TEST

/* ---------------------------------------------------------------- fsutil */

START_TEST(fs_path_join_and_printf)
{
	struct { const char *a, *b, *want; } v[] = {
		{ "a", "b", "a/b" },   { "a/", "b", "a/b" },    { "a", "/b", "a/b" },
		{ "a//", "//b", "a/b" }, { "/", "b", "/b" },    { "/x/y", "z/w", "/x/y/z/w" },
		{ "", "b", "b" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *j = path_join(v[i].a, v[i].b);
		ck_assert_str_eq(j, v[i].want);
		free(j);
	}
	char *s = str_printf("%s-%d-%05.1f", "x", 42, 3.25);
	ck_assert_str_eq(s, "x-42-003.2");
	free(s);
}
END_TEST

START_TEST(fs_predicates)
{
	put_file(tp("f"), "x", 0644);
	ck_assert_int_eq(symlink("f", tp("lf")), 0);
	ck_assert_int_eq(symlink("nowhere", tp("dangling")), 0);
	ck_assert(path_exists(tp("f")));
	ck_assert(path_is_file(tp("f")));
	ck_assert(!path_is_dir(tp("f")));
	ck_assert(path_is_dir(tmpdir));
	ck_assert(!path_is_file(tmpdir));
	ck_assert(path_is_file(tp("lf")));
	ck_assert(!path_exists(tp("nope")));
	ck_assert(!path_is_dir(tp("nope")));
	ck_assert(!path_is_file(tp("dangling")));
}
END_TEST

START_TEST(fs_mkdir_p)
{
	umask(022);
	ck_assert_int_eq(mkdir_p(tp("a/b//c/d/"), 0750), 0);
	ck_assert(path_is_dir(tp("a/b/c/d")));
	struct stat st;
	ck_assert_int_eq(stat(tp("a/b"), &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0750);
	ck_assert_int_eq(mkdir_p(tp("a/b/c/d"), 0755), 0); /* idempotent */
	ck_assert_int_eq(mkdir_p(tmpdir, 0755), 0);

	put_file(tp("file"), "x", 0644);
	ck_assert_int_eq(mkdir_p(tp("file"), 0755), -ENOTDIR);
	ck_assert_int_eq(mkdir_p(tp("file/sub"), 0755), -ENOTDIR);
	ck_assert_int_eq(mkdir_p("", 0755), -ENOENT);
}
END_TEST

START_TEST(fs_rm_rf_tree_without_following_links)
{
	/* A victim outside the tree, reachable through symlinks inside it. */
	ck_assert_int_eq(mkdir(tp("outside"), 0755), 0);
	put_file(tp("outside/keep"), "keep", 0644);

	ck_assert_int_eq(mkdir_p(tp("tree/a/b/c"), 0755), 0);
	put_file(tp("tree/.hidden"), "h", 0644);
	put_file(tp("tree/a/b/c/f"), "f", 0444);
	put_file(tp("tree/a/ro-file"), "r", 0400);
	ck_assert_int_eq(symlink(tp("outside"), tp("tree/a/link-dir")), 0);
	ck_assert_int_eq(symlink(tp("outside/keep"), tp("tree/link-file")), 0);
	ck_assert_int_eq(symlink("dangling", tp("tree/a/b/dangling")), 0);
	ck_assert_int_eq(mkdir(tp("tree/ro"), 0755), 0);
	put_file(tp("tree/ro/inner"), "i", 0644);
	ck_assert_int_eq(chmod(tp("tree/ro"), 0555), 0);

	ck_assert_int_eq(rm_rf(tp("tree")), 0);
	ck_assert(!path_exists(tp("tree")));
	char *s = slurp(tp("outside/keep"));
	ck_assert_str_eq(s, "keep");
	free(s);

	/* A symlink given directly is removed, not its target. */
	ck_assert_int_eq(symlink(tp("outside"), tp("top-link")), 0);
	ck_assert_int_eq(rm_rf(tp("top-link")), 0);
	ck_assert(path_is_file(tp("outside/keep")));
	struct stat st;
	ck_assert_int_eq(lstat(tp("top-link"), &st), -1);

	ck_assert_int_eq(rm_rf(tp("does/not/exist")), 0);
	put_file(tp("plain"), "p", 0644);
	ck_assert_int_eq(rm_rf(tp("plain")), 0);
	ck_assert(!path_exists(tp("plain")));
}
END_TEST

START_TEST(fs_copy_file)
{
	/* Larger than any internal buffer, and not a multiple of one. */
	size_t len = 300001;
	char *data = malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		data[i] = (char)('A' + i % 53);
	data[len] = '\0';
	int fd = open(tp("src"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, 0751), 0);
	close(fd);

	put_file(tp("dst"), "previous content", 0600);
	ck_assert_int_eq(copy_file(tp("src"), tp("dst")), 0);
	char *got = NULL;
	size_t got_len = 0;
	ck_assert_int_eq(read_file(tp("dst"), &got, &got_len), 0);
	ck_assert_uint_eq(got_len, len);
	ck_assert(memcmp(got, data, len) == 0);
	struct stat st;
	ck_assert_int_eq(stat(tp("dst"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0751);

	put_file(tp("small"), "hi", 0640);
	ck_assert_int_eq(copy_file(tp("small"), tp("dst")), 0);
	char *s = slurp(tp("dst"));
	ck_assert_str_eq(s, "hi");
	ck_assert_int_eq(stat(tp("dst"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);

	ck_assert_int_eq(copy_file(tp("missing"), tp("x")), -ENOENT);
	ck_assert(!path_exists(tp("x")));
	ck_assert_int_eq(copy_file(tmpdir, tp("x")), -EISDIR);
	ck_assert_int_eq(copy_file(tp("small"), tp("no/such/dir/x")), -ENOENT);
	free(s);
	free(got);
	free(data);
}
END_TEST

static void assert_file(const char *path, const char *content, mode_t mode)
{
	struct stat st;
	ck_assert_msg(lstat(path, &st) == 0, "missing %s", path);
	ck_assert_msg(S_ISREG(st.st_mode), "not a file: %s", path);
	ck_assert_int_eq(st.st_mode & 07777, mode);
	char *s = slurp(path);
	ck_assert_str_eq(s, content);
	free(s);
}

START_TEST(fs_copy_tree)
{
	ck_assert_int_eq(mkdir_p(tp("src/nested/deeper"), 0755), 0);
	ck_assert_int_eq(mkdir(tp("src/.git"), 0755), 0);
	ck_assert_int_eq(mkdir(tp("src/empty"), 0710), 0);
	put_file(tp("src/.env"), "SECRET=1\n", 0600);
	put_file(tp("src/.git/HEAD"), "ref\n", 0644);
	put_file(tp("src/run.sh"), "#!/bin/sh\n", 0755);
	put_file(tp("src/nested/deeper/data.txt"), "deep", 0640);
	ck_assert_int_eq(symlink("nested/deeper/data.txt", tp("src/rel-link")), 0);
	ck_assert_int_eq(symlink("deeper", tp("src/nested/dir-link")), 0);
	ck_assert_int_eq(mkdir(tp("src/ro"), 0755), 0);
	put_file(tp("src/ro/f"), "ro", 0444);
	ck_assert_int_eq(chmod(tp("src/ro"), 0555), 0);

	char *err = NULL;
	ck_assert_int_eq(copy_tree(tp("src"), tp("dst"), NULL, &err), 0);
	ck_assert_ptr_null(err);

	assert_file(tp("dst/.env"), "SECRET=1\n", 0600);
	assert_file(tp("dst/.git/HEAD"), "ref\n", 0644);
	assert_file(tp("dst/run.sh"), "#!/bin/sh\n", 0755);
	assert_file(tp("dst/nested/deeper/data.txt"), "deep", 0640);
	assert_file(tp("dst/ro/f"), "ro", 0444);
	/* links inside the tree are followed: their targets' content is copied */
	assert_file(tp("dst/rel-link"), "deep", 0640);
	assert_file(tp("dst/nested/dir-link/data.txt"), "deep", 0640);
	struct stat st;
	ck_assert_int_eq(stat(tp("dst/empty"), &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0710);
	/* folders are always owner-writable, so the copy can be filled and removed */
	ck_assert_int_eq(stat(tp("dst/ro"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0755);

	char **names;
	size_t n;
	ck_assert_int_eq(list_dir_sorted(tp("dst"), &names, &n), 0);
	const char *want[] = { ".env", ".git", "empty", "nested", "rel-link", "ro", "run.sh" };
	ck_assert_uint_eq(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(names[i], want[i]);
	str_list_free(names, n);

	/* Into an existing tree: a symlink at the destination is replaced,
	 * never written through. */
	put_file(tp("victim"), "untouched", 0644);
	ck_assert_int_eq(unlink(tp("dst/run.sh")), 0);
	ck_assert_int_eq(symlink(tp("victim"), tp("dst/run.sh")), 0);
	ck_assert_int_eq(copy_tree(tp("src"), tp("dst"), NULL, NULL), 0);
	assert_file(tp("dst/run.sh"), "#!/bin/sh\n", 0755);
	assert_file(tp("victim"), "untouched", 0644);

	/* a single file, a missing source */
	ck_assert_int_eq(copy_tree(tp("src/run.sh"), tp("x"), tp("src"), NULL), 0);
	assert_file(tp("x"), "#!/bin/sh\n", 0755);
	ck_assert_int_eq(copy_tree(tp("nope"), tp("y"), NULL, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "nope"));
	free(err);
}
END_TEST

/* Each refusal names the entry (and a link's target) and copies nothing of it. */
START_TEST(fs_copy_tree_refuses)
{
	static const struct {
		const char *target;   /* a symlink src/bad -> target, or NULL: a FIFO */
		int rc;
		const char *words;
	} cases[] = {
		{ "/etc/hostname", -EPERM, "bad -> /etc/hostname points outside" },
		{ "../outside.txt", -EPERM, "bad -> ../outside.txt points outside" },
		{ "missing", -ENOENT, "bad -> missing is dangling" },
		{ NULL, -EINVAL, "bad is a FIFO" },
	};
	put_file(tp("outside.txt"), "host", 0644);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		remove_tree(tp("src"));
		remove_tree(tp("dst"));
		ck_assert_int_eq(mkdir(tp("src"), 0755), 0);
		put_file(tp("src/a.txt"), "a", 0644);
		if (cases[i].target)
			ck_assert_int_eq(symlink(cases[i].target, tp("src/bad")), 0);
		else
			ck_assert_int_eq(mkfifo(tp("src/bad"), 0644), 0);
		char *err = NULL;
		ck_assert_int_eq(copy_tree(tp("src"), tp("dst"), NULL, &err), cases[i].rc);
		ck_assert_msg(err && strstr(err, cases[i].words), "case %zu: %s", i, err);
		ck_assert_msg(!strchr(err, '\n'), "one line: %s", err);
		ck_assert(!path_exists(tp("dst/bad")));
		free(err);
	}
	/* the source itself may be a link, but only to somewhere inside `within` */
	ck_assert_int_eq(symlink(tp("outside.txt"), tp("src/file-link")), 0);
	char *err = NULL;
	ck_assert_int_eq(copy_tree(tp("src/file-link"), tp("z"), tp("src"), &err), -EPERM);
	ck_assert_msg(strstr(err, "points outside") != NULL, "%s", err);
	ck_assert(!path_exists(tp("z")));
	free(err);
}
END_TEST

START_TEST(fs_read_file)
{
	put_file(tp("f"), "hello\nworld", 0644);
	char *s = NULL;
	size_t len = 99;
	ck_assert_int_eq(read_file(tp("f"), &s, &len), 0);
	ck_assert_uint_eq(len, 11);
	ck_assert_str_eq(s, "hello\nworld");
	free(s);

	put_file(tp("empty"), "", 0644);
	ck_assert_int_eq(read_file(tp("empty"), &s, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(s, "");
	free(s);

	/* Embedded NULs are kept and counted. */
	int fd = open(tp("bin"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_eq(write(fd, "a\0b", 3), 3);
	close(fd);
	ck_assert_int_eq(read_file(tp("bin"), &s, &len), 0);
	ck_assert_uint_eq(len, 3);
	ck_assert(memcmp(s, "a\0b", 4) == 0);
	free(s);

	/* procfs reports size 0 but has content. */
	ck_assert_int_eq(read_file("/proc/self/status", &s, &len), 0);
	ck_assert_uint_gt(len, 0);
	ck_assert_ptr_nonnull(strstr(s, "Name:"));
	free(s);

	s = (char *)1;
	ck_assert_int_eq(read_file(tp("missing"), &s, NULL), -ENOENT);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(read_file(tmpdir, &s, NULL), -EISDIR);
}
END_TEST

START_TEST(fs_write_file_atomic)
{
	const char *p = tp("out.json");
	ck_assert_int_eq(write_file_atomic(p, "{\"a\":1}", 7), 0);
	assert_file(p, "{\"a\":1}", 0644);
	ck_assert_int_eq(write_file_atomic(p, "2", 1), 0);
	assert_file(p, "2", 0644);
	ck_assert_int_eq(write_file_atomic(p, "", 0), 0);
	assert_file(p, "", 0644);

	/* No temp files left behind. */
	char **names;
	size_t n;
	ck_assert_int_eq(list_dir_sorted(tmpdir, &names, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(names[0], "out.json");
	str_list_free(names, n);

	ck_assert_int_eq(write_file_atomic(tp("no/dir/f"), "x", 1), -ENOENT);
	ck_assert_int_eq(fsync_dir(tmpdir), 0);
	ck_assert_int_eq(fsync_dir(tp("nope")), -ENOENT);
	ck_assert_int_eq(fsync_dir(p), -ENOTDIR);
}
END_TEST

START_TEST(fs_list_dir_sorted)
{
	const char *create[] = { "b", "a", "B", ".hidden", "_x", "a0", "Z9", "\xc3\xa9" };
	for (size_t i = 0; i < sizeof(create) / sizeof(create[0]); i++)
		put_file(tp(create[i]), "", 0644);
	ck_assert_int_eq(mkdir(tp("dir"), 0755), 0);

	char **names;
	size_t n;
	ck_assert_int_eq(list_dir_sorted(tmpdir, &names, &n), 0);
	const char *want[] = { ".hidden", "B", "Z9", "_x", "a", "a0", "b", "dir", "\xc3\xa9" };
	ck_assert_uint_eq(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(names[i], want[i]);
	str_list_free(names, n);

	ck_assert_int_eq(list_dir_sorted(tp("dir"), &names, &n), 0);
	ck_assert_uint_eq(n, 0);
	str_list_free(names, n);
	str_list_free(NULL, 0);

	ck_assert_int_eq(list_dir_sorted(tp("a"), &names, &n), -ENOTDIR);
	ck_assert_int_eq(list_dir_sorted(tp("nope"), &names, &n), -ENOENT);
}
END_TEST

START_TEST(fs_make_temp_dir)
{
	char *a = NULL, *b = NULL;
	ck_assert_int_eq(make_temp_dir(tmpdir, "work-", &a), 0);
	ck_assert_int_eq(make_temp_dir(tmpdir, "work-", &b), 0);
	ck_assert_str_ne(a, b);
	ck_assert(path_is_dir(a));
	ck_assert(path_is_dir(b));
	size_t plen = strlen(tmpdir);
	ck_assert(strncmp(a, tmpdir, plen) == 0);
	ck_assert(strncmp(a + plen, "/work-", 6) == 0);
	ck_assert_uint_eq(strlen(a), plen + 6 + 6);
	free(a);
	free(b);

	char *c = (char *)1;
	ck_assert_int_eq(make_temp_dir(tp("nope"), "x", &c), -ENOENT);
	ck_assert_ptr_null(c);
}
END_TEST

/* ---------------------------------------------------------------- spawn */

static int run(const char *const argv[], const struct spawn_opts *o, int *st)
{
	*st = -42;
	return spawn_wait(argv, o, st);
}

START_TEST(spawn_exit_codes)
{
	int st;
	const char *t[] = { "true", NULL };
	ck_assert_int_eq(run(t, NULL, &st), 0);
	ck_assert_int_eq(st, 0);
	const char *f[] = { "false", NULL };
	ck_assert_int_eq(run(f, NULL, &st), 0);
	ck_assert_int_eq(st, 1);
	const char *e3[] = { "sh", "-c", "exit 3", NULL };
	struct spawn_opts o = { .out_fd = -1, .cancel_fd = -1 };
	ck_assert_int_eq(run(e3, &o, &st), 0);
	ck_assert_int_eq(st, 3);
	const char *abs[] = { "/bin/sh", "-c", "exit 200", NULL };
	ck_assert_int_eq(run(abs, &o, &st), 0);
	ck_assert_int_eq(st, 200);
	/* exit_status may be NULL. */
	ck_assert_int_eq(spawn_wait(f, NULL, NULL), 0);
}
END_TEST

START_TEST(spawn_killed_by_signal)
{
	int st;
	const char *k9[] = { "sh", "-c", "kill -9 $$", NULL };
	ck_assert_int_eq(run(k9, NULL, &st), 0);
	ck_assert_int_eq(st, 128 + SIGKILL);
	const char *term[] = { "sh", "-c", "kill -TERM $$", NULL };
	ck_assert_int_eq(run(term, NULL, &st), 0);
	ck_assert_int_eq(st, 128 + SIGTERM);
}
END_TEST

START_TEST(spawn_missing_binary)
{
	int st;
	const char *m[] = { "sebsfs-no-such-binary-xyz", NULL };
	ck_assert_int_eq(run(m, NULL, &st), -ENOENT);
	const char *ma[] = { "/nonexistent/bin/tool", NULL };
	ck_assert_int_eq(run(ma, NULL, &st), -ENOENT);
	/* A bad cwd is a start failure too, not a child exit code. */
	const char *t[] = { "true", NULL };
	struct spawn_opts o = { .cwd = tp("no-such-dir"), .out_fd = -1, .cancel_fd = -1 };
	ck_assert_int_eq(run(t, &o, &st), -ENOENT);
	const char *empty[] = { NULL };
	ck_assert_int_eq(run(empty, NULL, &st), -EINVAL);
}
END_TEST

START_TEST(spawn_output_to_fd)
{
	const char *log = tp("build.log");
	put_file(log, "existing\n", 0644);
	int fd = open(log, O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	int st;
	const char *sh[] = { "sh", "-c", "echo out; echo err >&2; echo out2", NULL };
	struct spawn_opts o = { .out_fd = fd, .cancel_fd = -1 };
	ck_assert_int_eq(run(sh, &o, &st), 0);
	ck_assert_int_eq(st, 0);
	/* stdin is /dev/null: cat must see EOF at once, not block. */
	const char *cat[] = { "cat", NULL };
	ck_assert_int_eq(run(cat, &o, &st), 0);
	ck_assert_int_eq(st, 0);
	/* The caller's fd stays open and usable. */
	ck_assert_int_eq(write(fd, "after\n", 6), 6);
	close(fd);

	char *s = slurp(log);
	ck_assert_str_eq(s, "existing\nout\nerr\nout2\nafter\n");
	free(s);

	/* out_fd < 0 discards output. */
	struct spawn_opts quiet = { .out_fd = -1, .cancel_fd = -1 };
	const char *echo[] = { "echo", "lost", NULL };
	ck_assert_int_eq(run(echo, &quiet, &st), 0);
	ck_assert_int_eq(st, 0);
}
END_TEST

START_TEST(spawn_own_stdin_and_stderr)
{
	const char *in = tp("in"), *out = tp("out"), *err = tp("err");
	put_file(in, "skipped:server.example:5000", 0644);
	int in_fd = open(in, O_RDONLY | O_CLOEXEC);
	int out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int err_fd = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(in_fd, 0);
	ck_assert_int_ge(out_fd, 0);
	ck_assert_int_ge(err_fd, 0);
	/* stdin is read from the fd's current offset */
	ck_assert_int_eq(lseek(in_fd, 8, SEEK_SET), 8);
	int st;
	const char *sh[] = { "sh", "-c", "cat; echo; echo message >&2", NULL };
	struct spawn_opts o = { .out_fd = out_fd, .cancel_fd = -1, .has_in_fd = true,
				.in_fd = in_fd, .has_err_fd = true, .err_fd = err_fd };
	ck_assert_int_eq(run(sh, &o, &st), 0);
	ck_assert_int_eq(st, 0);
	char *s = slurp(out);
	ck_assert_str_eq(s, "server.example:5000\n");
	free(s);
	s = slurp(err);
	ck_assert_str_eq(s, "message\n");
	free(s);
	/* err_fd -1 discards stderr only */
	struct spawn_opts quiet = { .out_fd = out_fd, .cancel_fd = -1, .has_err_fd = true,
				    .err_fd = -1 };
	const char *both[] = { "sh", "-c", "echo kept; echo dropped >&2", NULL };
	ck_assert_int_eq(run(both, &quiet, &st), 0);
	s = slurp(out);
	ck_assert_str_eq(s, "server.example:5000\nkept\n");
	free(s);
	close(in_fd);
	close(out_fd);
	close(err_fd);
}
END_TEST

START_TEST(spawn_cwd)
{
	ck_assert_int_eq(mkdir(tp("work dir"), 0755), 0);
	put_file(tp("work dir/marker"), "m", 0644);
	int fd = open(tp("pwd.txt"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	char before[PATH_MAX], after[PATH_MAX];
	ck_assert_ptr_nonnull(getcwd(before, sizeof(before)));

	int st;
	const char *pwd[] = { "pwd", "-P", NULL };
	struct spawn_opts o = { .cwd = tp("work dir"), .out_fd = fd, .cancel_fd = -1 };
	ck_assert_int_eq(run(pwd, &o, &st), 0);
	ck_assert_int_eq(st, 0);
	/* A relative path in argv resolves against the child's cwd. */
	const char *cat[] = { "cat", "marker", NULL };
	ck_assert_int_eq(run(cat, &o, &st), 0);
	ck_assert_int_eq(st, 0);
	close(fd);

	char real[PATH_MAX], want[PATH_MAX + 8];
	ck_assert_ptr_nonnull(realpath(tp("work dir"), real));
	snprintf(want, sizeof(want), "%s\nm", real);
	char *s = slurp(tp("pwd.txt"));
	ck_assert_str_eq(s, want);
	free(s);
	ck_assert_ptr_nonnull(getcwd(after, sizeof(after)));
	ck_assert_str_eq(before, after);
}
END_TEST

START_TEST(spawn_env_add)
{
	ck_assert_int_eq(setenv("SEBSFS_T_OVERRIDE", "orig", 1), 0);
	ck_assert_int_eq(setenv("SEBSFS_T_KEEP", "kept", 1), 0);
	const char *add[] = { "SEBSFS_T_OVERRIDE=new", "SEBSFS_T_NEW=hello world",
			      "SEBSFS_T_TWICE=1", "SEBSFS_T_TWICE=2", "SEBSFS_T_OVERRIDE_X=x", NULL };
	int fd = open(tp("env.txt"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int st;
	const char *env[] = { "env", NULL };
	struct spawn_opts o = { .env_add = add, .out_fd = fd, .cancel_fd = -1 };
	ck_assert_int_eq(run(env, &o, &st), 0);
	ck_assert_int_eq(st, 0);
	close(fd);

	char *s = slurp(tp("env.txt"));
	int override = 0, keep = 0, nw = 0, twice = 0, ox = 0, path = 0;
	char *save = NULL;
	for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "SEBSFS_T_OVERRIDE=", 18) == 0) {
			ck_assert_str_eq(l, "SEBSFS_T_OVERRIDE=new");
			override++;
		} else if (strcmp(l, "SEBSFS_T_KEEP=kept") == 0) {
			keep++;
		} else if (strcmp(l, "SEBSFS_T_NEW=hello world") == 0) {
			nw++;
		} else if (strncmp(l, "SEBSFS_T_TWICE=", 15) == 0) {
			ck_assert_str_eq(l, "SEBSFS_T_TWICE=2");
			twice++;
		} else if (strcmp(l, "SEBSFS_T_OVERRIDE_X=x") == 0) {
			ox++;
		} else if (strncmp(l, "PATH=", 5) == 0) {
			path++;
		}
	}
	ck_assert_int_eq(override, 1);
	ck_assert_int_eq(keep, 1);
	ck_assert_int_eq(nw, 1);
	ck_assert_int_eq(twice, 1);
	ck_assert_int_eq(ox, 1);
	ck_assert_int_eq(path, 1);
	free(s);
	/* Our own environment is untouched. */
	ck_assert_str_eq(getenv("SEBSFS_T_OVERRIDE"), "orig");
	ck_assert_ptr_null(getenv("SEBSFS_T_NEW"));
}
END_TEST

START_TEST(spawn_child_hygiene)
{
	/* A leaked non-CLOEXEC fd must not reach the child. */
	int leak = open("/dev/null", O_RDONLY);
	ck_assert_int_gt(leak, 2);
	char fdpath[64];
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", leak);
	int st;
	const char *test_leak[] = { "test", "-e", fdpath, NULL };
	ck_assert_int_eq(run(test_leak, NULL, &st), 0);
	ck_assert_int_eq(st, 1);
	const char *test_std[] = { "test", "-e", "/proc/self/fd/2", NULL };
	ck_assert_int_eq(run(test_std, NULL, &st), 0);
	ck_assert_int_eq(st, 0);
	close(leak);

	/* Ignored SIGPIPE and a blocked mask in the parent must not leak. */
	signal(SIGPIPE, SIG_IGN);
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int fd = open(tp("status.txt"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	const char *grep[] = { "grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status", NULL };
	struct spawn_opts o = { .out_fd = fd, .cancel_fd = -1 };
	ck_assert_int_eq(run(grep, &o, &st), 0);
	ck_assert_int_eq(st, 0);
	close(fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, SIG_DFL);
	char *s = slurp(tp("status.txt"));
	ck_assert_str_eq(s, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
	free(s);
}
END_TEST

#define SPAWN_THREADS 8
#define SPAWN_RUNS 15

struct spawn_thread_arg {
	int id;
	int failures;
};

static void *spawn_thread(void *p)
{
	struct spawn_thread_arg *a = p;
	char dir[PATH_MAX], out[PATH_MAX + 16], envv[64];
	snprintf(dir, sizeof(dir), "%s/t%d", tmpdir, a->id);
	snprintf(out, sizeof(out), "%s/t%d.out", tmpdir, a->id);
	snprintf(envv, sizeof(envv), "SEBSFS_T_ID=%d", a->id);
	if (mkdir(dir, 0755) < 0) {
		a->failures++;
		return NULL;
	}
	int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	const char *env_add[] = { envv, NULL };
	const char *argv[] = { "sh", "-c", "echo \"$SEBSFS_T_ID $(pwd -P)\"", NULL };
	struct spawn_opts o = { .cwd = dir, .env_add = env_add, .out_fd = fd, .cancel_fd = -1 };
	for (int i = 0; i < SPAWN_RUNS; i++) {
		int st = -1;
		if (spawn_wait(argv, &o, &st) != 0 || st != 0)
			a->failures++;
	}
	close(fd);
	return NULL;
}

START_TEST(spawn_concurrent_threads)
{
	pthread_t th[SPAWN_THREADS];
	struct spawn_thread_arg args[SPAWN_THREADS];
	for (int i = 0; i < SPAWN_THREADS; i++) {
		args[i] = (struct spawn_thread_arg){ .id = i };
		pthread_create(&th[i], NULL, spawn_thread, &args[i]);
	}
	for (int i = 0; i < SPAWN_THREADS; i++)
		pthread_join(th[i], NULL);

	char real[PATH_MAX];
	ck_assert_ptr_nonnull(realpath(tmpdir, real));
	for (int i = 0; i < SPAWN_THREADS; i++) {
		ck_assert_int_eq(args[i].failures, 0);
		char line[PATH_MAX + 32], want[PATH_MAX * 2];
		snprintf(line, sizeof(line), "%d %s/t%d\n", i, real, i);
		want[0] = '\0';
		for (int r = 0; r < SPAWN_RUNS; r++)
			strcat(want, line);
		char p[PATH_MAX + 16];
		snprintf(p, sizeof(p), "%s/t%d.out", tmpdir, i);
		char *s = slurp(p);
		ck_assert_str_eq(s, want);
		free(s);
	}
}
END_TEST

/* ---------------------------------------------------------------- spawn: groups, cancel, deadline */

/* A script that starts two grandchildren and records, in the folder given as
 * $1, the process group it runs in (field 5 of /proc/$$/stat: the kernel's
 * view, not what spawn_wait claims) and the grandchildren's pids.  "pgid"
 * appears last and atomically, once everything runs. */
#define GROUP_SCRIPT                                                     \
	"read -r _ _ _ _ pgid _ < /proc/$$/stat\n"                       \
	"sleep 1000 & echo $! > \"$1/sleep1\"\n"                          \
	"sleep 1000 & echo $! > \"$1/sleep2\"\n"                          \
	"echo $pgid > \"$1/pgid.tmp\" && mv \"$1/pgid.tmp\" \"$1/pgid\"\n"

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct timespec in_seconds(double s)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long ns = ts.tv_nsec + (long long)(s * 1e9);
	ts.tv_sec += ns / 1000000000LL;
	ts.tv_nsec = ns % 1000000000LL;
	return ts;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* The number in file path once it exists (waits up to 20 s), or -1. */
static long wait_number_file(const char *path)
{
	for (int i = 0; i < 2000; i++) {
		char *s = NULL;
		if (read_file(path, &s, NULL) == 0) {
			long v = strtol(s, NULL, 10);
			free(s);
			return v;
		}
		sleep_ms(10);
	}
	return -1;
}

/* Open descriptors of this process: spawn_wait must leave none behind. */
static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	ck_assert_ptr_nonnull(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static bool group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0;
}

static bool process_alive(pid_t pid)
{
	return kill(pid, 0) == 0;
}

/* The pgid and grandchildren the GROUP_SCRIPT in dir reported, checked to be
 * a group of its own and, while alive, to hold the grandchildren. */
static pid_t script_group(const char *dir, pid_t sleeps[2], bool running)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/pgid", dir);
	pid_t pgid = (pid_t)wait_number_file(p);
	ck_assert_int_gt(pgid, 1);
	ck_assert_int_ne(pgid, getpgrp());
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/sleep%d", dir, i + 1);
		sleeps[i] = (pid_t)wait_number_file(p);
		ck_assert_int_gt(sleeps[i], 1);
		if (running)
			ck_assert_int_eq(getpgid(sleeps[i]), pgid);
	}
	return pgid;
}

static void assert_group_gone(pid_t pgid, const pid_t sleeps[2])
{
	errno = 0;
	ck_assert_msg(kill(-pgid, 0) == -1 && errno == ESRCH, "process group %d survived", (int)pgid);
	for (int i = 0; i < 2; i++)
		ck_assert_msg(!process_alive(sleeps[i]), "grandchild %d survived", (int)sleeps[i]);
}

/* Runs prologue + GROUP_SCRIPT + "wait" with a deadline 1 s away, checks that
 * it timed out and left nothing behind, and returns how long it took. */
static double run_script_past_deadline(const char *prologue)
{
	char script[1024];
	snprintf(script, sizeof(script), "%s" GROUP_SCRIPT "wait\n", prologue);
	const char *argv[] = { "bash", "-c", script, "bash", tmpdir, NULL };
	struct timespec deadline = in_seconds(1.0);
	struct spawn_opts o = { .out_fd = -1, .cancel_fd = -1, .deadline = &deadline };
	int st;
	double t0 = now_seconds();
	ck_assert_int_eq(run(argv, &o, &st), -ETIMEDOUT);
	double took = now_seconds() - t0;
	ck_assert_int_eq(st, -1);
	pid_t sleeps[2];
	pid_t pgid = script_group(tmpdir, sleeps, false);
	assert_group_gone(pgid, sleeps);
	return took;
}

START_TEST(spawn_deadline_kills_group)
{
	double took = run_script_past_deadline("");
	/* bash and sleep die of the SIGTERM; no SIGKILL grace period needed. */
	ck_assert_msg(took < 1.0 + SPAWN_STOP_GRACE_MS / 1000.0, "took %.2f s", took);
}
END_TEST

struct canceller {
	const char *dir;
	int cancel_w;
	bool saw_group;
};

/* Waits for the script's group, checks it runs, then cancels. */
static void *cancel_when_running(void *p)
{
	struct canceller *c = p;
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/pgid", c->dir);
	long pgid = wait_number_file(path);
	c->saw_group = pgid > 1 && group_alive((pid_t)pgid);
	ssize_t r = write(c->cancel_w, "x", 1);
	(void)r;
	return NULL;
}

START_TEST(spawn_cancel_kills_group)
{
	int fds_before = count_open_fds();
	int cancel[2];
	ck_assert_int_eq(pipe2(cancel, O_CLOEXEC), 0);
	const char *argv[] = { "bash", "-c", GROUP_SCRIPT "wait\n", "bash", tmpdir, NULL };
	/* A far deadline must not turn the cancel into a timeout. */
	struct timespec deadline = in_seconds(600);
	struct spawn_opts o = { .out_fd = -1, .cancel_fd = cancel[0], .deadline = &deadline };
	struct canceller c = { .dir = tmpdir, .cancel_w = cancel[1] };
	pthread_t th;
	pthread_create(&th, NULL, cancel_when_running, &c);
	int st;
	ck_assert_int_eq(run(argv, &o, &st), -ECANCELED);
	pthread_join(th, NULL);
	ck_assert_int_eq(st, -1);
	ck_assert(c.saw_group);
	pid_t sleeps[2];
	pid_t pgid = script_group(tmpdir, sleeps, false);
	assert_group_gone(pgid, sleeps);

	/* The cancel fd was not read: it still cancels, and a cancelled run
	 * starts nothing. */
	const char *touch[] = { "touch", tp("started"), NULL };
	ck_assert_int_eq(run(touch, &o, &st), -ECANCELED);
	ck_assert(!path_exists(tp("started")));
	close(cancel[0]);
	close(cancel[1]);
	ck_assert_int_eq(count_open_fds(), fds_before);
}
END_TEST

START_TEST(spawn_sigterm_ignored_gets_sigkill)
{
	double took = run_script_past_deadline("trap '' TERM\n");
	/* Nothing here dies of SIGTERM (sleep inherits the ignored signal), so
	 * only the SIGKILL after the grace period can have ended the run. */
	ck_assert_msg(took >= 1.0 + SPAWN_STOP_GRACE_MS / 1000.0, "took %.2f s", took);
	ck_assert_msg(took < 1.0 + SPAWN_STOP_GRACE_MS / 1000.0 + 5, "took %.2f s", took);
}
END_TEST

/* SIGKILL of the process that called spawn_wait (alone, or with its whole
 * process group, as a shell's `kill -9 %1` does) kills the program's group. */
START_TEST(spawn_kill9_of_spawner_kills_group)
{
	/* The orphaned guard comes to us, so it is reaped here. */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
	for (int whole_group = 0; whole_group < 2; whole_group++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/run%d", tmpdir, whole_group);
		ck_assert_int_eq(mkdir(dir, 0755), 0);
		pid_t spawner = fork();
		ck_assert_int_ge(spawner, 0);
		if (spawner == 0) {
			if (whole_group)
				setpgid(0, 0);
			const char *argv[] = { "bash", "-c", GROUP_SCRIPT "wait\n", "bash", dir, NULL };
			int st;
			spawn_wait(argv, NULL, &st);
			_exit(0);
		}
		pid_t sleeps[2];
		pid_t pgid = script_group(dir, sleeps, true);
		ck_assert(group_alive(pgid));
		ck_assert_int_eq(kill(whole_group ? -spawner : spawner, SIGKILL), 0);
		int st;
		ck_assert_int_eq(waitpid(spawner, &st, 0), spawner);

		bool gone = false;
		for (int i = 0; i < 500 && !gone; i++) {
			gone = !group_alive(pgid);
			if (!gone)
				sleep_ms(10);
		}
		assert_group_gone(pgid, sleeps);
		/* And the guard, which is not in the group, ends too. */
		pid_t reaped = 0;
		for (int i = 0; i < 500 && reaped == 0; i++) {
			reaped = waitpid(-1, &st, WNOHANG);
			if (reaped == 0)
				sleep_ms(10);
		}
		ck_assert_int_gt(reaped, 0);
	}
}
END_TEST

START_TEST(spawn_leftovers_die_with_program)
{
	/* The program ends at once, leaving its grandchildren behind. */
	const char *argv[] = { "bash", "-c", GROUP_SCRIPT "exit 4\n", "bash", tmpdir, NULL };
	struct spawn_opts o = { .out_fd = -1, .cancel_fd = -1 };
	int st;
	ck_assert_int_eq(run(argv, &o, &st), 0);
	ck_assert_int_eq(st, 4);
	pid_t sleeps[2];
	pid_t pgid = script_group(tmpdir, sleeps, false);
	assert_group_gone(pgid, sleeps);
}
END_TEST

/* The owner identity of containers: alive while the process runs, gone
 * once it is a zombie or reaped, and never fooled by a wrong start time,
 * boot id or garbage. */
START_TEST(process_instance_tracks_one_process)
{
	char self[160], child_id[160], forged[200];
	ck_assert_int_eq(process_instance_id(getpid(), self, sizeof(self)), 0);
	ck_assert(process_instance_alive(self));
	ck_assert_int_eq(process_instance_id(getpid(), self, 8), -ENOSPC);

	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	ck_assert_int_eq(process_instance_id(child, child_id, sizeof(child_id)), 0);
	ck_assert(process_instance_alive(child_id));
	/* same pid, another start time: a reused pid */
	char *last = strrchr(child_id, '/');
	snprintf(forged, sizeof(forged), "%.*s/%llu", (int)(last - child_id), child_id,
		 strtoull(last + 1, NULL, 10) + 1);
	ck_assert(!process_instance_alive(forged));
	/* another boot */
	snprintf(forged, sizeof(forged), "00000000-0000-0000-0000-000000000000%s",
		 strchr(child_id, '/'));
	ck_assert(!process_instance_alive(forged));
	ck_assert(!process_instance_alive(""));
	ck_assert(!process_instance_alive("garbage"));

	kill(child, SIGKILL);
	/* a zombie (killed, not reaped) is gone, though /proc still lists it */
	char stat_path[64];
	snprintf(stat_path, sizeof(stat_path), "/proc/%ld/stat", (long)child);
	for (int i = 0; i < 500 && process_instance_alive(child_id); i++)
		usleep(10000);
	ck_assert(access(stat_path, F_OK) == 0);
	ck_assert(!process_instance_alive(child_id));
	ck_assert_int_eq(waitpid(child, NULL, 0), child);
	ck_assert(!process_instance_alive(child_id));
}
END_TEST

START_TEST(spawn_stop_options_when_not_fired)
{
	int fds_before = count_open_fds();
	int cancel[2];
	ck_assert_int_eq(pipe2(cancel, O_CLOEXEC), 0);
	struct timespec deadline = in_seconds(600);
	struct spawn_opts o = { .out_fd = -1, .cancel_fd = cancel[0], .deadline = &deadline };
	int st;
	const char *e5[] = { "sh", "-c", "exit 5", NULL };
	ck_assert_int_eq(run(e5, &o, &st), 0);
	ck_assert_int_eq(st, 5);
	const char *term[] = { "sh", "-c", "kill -TERM $$", NULL };
	ck_assert_int_eq(run(term, &o, &st), 0);
	ck_assert_int_eq(st, 128 + SIGTERM);
	const char *m[] = { "sebsfs-no-such-binary-xyz", NULL };
	ck_assert_int_eq(run(m, &o, &st), -ENOENT);
	ck_assert_int_eq(st, -1);
	/* The write end closed without a byte: EOF is readable too. */
	close(cancel[1]);
	ck_assert_int_eq(run(e5, &o, &st), -ECANCELED);
	close(cancel[0]);

	/* A deadline already past starts nothing. */
	struct timespec past = in_seconds(-1);
	struct spawn_opts late = { .out_fd = -1, .cancel_fd = -1, .deadline = &past };
	const char *touch[] = { "touch", tp("started"), NULL };
	ck_assert_int_eq(run(touch, &late, &st), -ETIMEDOUT);
	ck_assert(!path_exists(tp("started")));

	/* A closed descriptor is a caller bug, not a cancel. */
	struct spawn_opts bad = { .out_fd = -1, .cancel_fd = cancel[0] };
	ck_assert_int_eq(run(touch, &bad, &st), -EBADF);
	ck_assert(!path_exists(tp("started")));
	ck_assert_int_eq(count_open_fds(), fds_before);
}
END_TEST

/* ---------------------------------------------------------------- walk */

/* What a walk saw: "path" per entry, "path>link" for a kept link, "path@"
 * for a followed one; prune and stop at the named paths. */
struct seen {
	char text[4096];
	const char *prune, *stop;
	mode_t types[64];
	size_t n;
};

static int record(const struct walk_entry *e, void *ctx)
{
	struct seen *s = ctx;
	size_t len = strlen(s->text);
	snprintf(s->text + len, sizeof(s->text) - len, "%s%s%s%s", len ? "," : "", e->path,
		 e->link && S_ISLNK(e->st.st_mode) ? ">" : e->link ? "@" : "",
		 e->link && S_ISLNK(e->st.st_mode) ? e->link : "");
	if (s->n < 64)
		s->types[s->n++] = e->st.st_mode & S_IFMT;
	if (s->prune && strcmp(e->path, s->prune) == 0)
		return WALK_PRUNE;
	if (s->stop && strcmp(e->path, s->stop) == 0)
		return WALK_STOP;
	return 0;
}

/* Walks tp(root) with label "T"; returns the walk's result, *err its message. */
static int walk_seen(const char *root, enum walk_links links, const char *within,
		     struct seen *s, char **err)
{
	struct walk_options opts = { .links = links, .within = within, .label = "T" };
	*err = NULL;
	return walk_tree(tp(root), &opts, record, s, err);
}

static void assert_refused(const char *root, enum walk_links links, int rc, const char *words)
{
	struct seen s = { 0 };
	char *err;
	ck_assert_int_eq(walk_seen(root, links, NULL, &s, &err), rc);
	ck_assert_msg(err && strstr(err, words), "expected \"%s\" in: %s", words, err);
	ck_assert_msg(!strchr(err, '\n'), "one line: %s", err);
	free(err);
}

START_TEST(walk_sorted_preorder_prune_stop)
{
	ck_assert_int_eq(mkdir_p(tp("t/b/c"), 0755), 0);
	ck_assert_int_eq(mkdir_p(tp("t/a"), 0755), 0);
	put_file(tp("t/a/z"), "", 0644);
	put_file(tp("t/a/y"), "", 0644);
	put_file(tp("t/a-b"), "", 0644);
	put_file(tp("t/A"), "", 0644);
	put_file(tp("t/\xc3\xa9"), "", 0644);
	put_file(tp("t/b/c/d"), "", 0644);

	struct seen s = { 0 };
	char *err;
	ck_assert_int_eq(walk_seen("t", WALK_KEEP, NULL, &s, &err), 0);
	/* bytewise per folder ('-' < '/' does not matter: a folder's entries
	 * follow it), directories before their contents */
	ck_assert_str_eq(s.text, "A,a,a/y,a/z,a-b,b,b/c,b/c/d,\xc3\xa9");
	ck_assert_int_eq(s.types[1], S_IFDIR);
	ck_assert_int_eq(s.types[2], S_IFREG);

	struct seen p = { .prune = "b" };
	ck_assert_int_eq(walk_seen("t", WALK_FOLLOW, NULL, &p, &err), 0);
	ck_assert_str_eq(p.text, "A,a,a/y,a/z,a-b,b,\xc3\xa9");

	struct seen q = { .stop = "a/y" };
	ck_assert_int_eq(walk_seen("t", WALK_FOLLOW, NULL, &q, &err), 0);
	ck_assert_str_eq(q.text, "A,a,a/y");

	/* skip_top leaves root entries out unchecked; missing roots */
	ck_assert_int_eq(mkfifo(tp("t/fifo"), 0644), 0);
	const char *skip[] = { "fifo", "b", NULL };
	struct walk_options opts = { .links = WALK_KEEP, .skip_top = skip };
	struct seen k = { 0 };
	ck_assert_int_eq(walk_tree(tp("t"), &opts, record, &k, &err), 0);
	ck_assert_str_eq(k.text, "A,a,a/y,a/z,a-b,\xc3\xa9");
	ck_assert_int_eq(walk_tree(tp("none"), &opts, record, &k, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "none"));
	free(err);
	err = NULL;
	opts.missing_ok = true;
	ck_assert_int_eq(walk_tree(tp("none"), &opts, record, &k, &err), 0);
	ck_assert_ptr_null(err);
	put_file(tp("file"), "", 0644);
	ck_assert_int_eq(walk_tree(tp("file"), &opts, record, &k, &err), -ENOTDIR);
	free(err);
}
END_TEST

START_TEST(walk_follow_inside)
{
	ck_assert_int_eq(mkdir_p(tp("t/lib/pkg"), 0755), 0);
	put_file(tp("t/lib/pkg/m.py"), "m", 0644);
	put_file(tp("t/lib/x.py"), "x", 0644);
	ck_assert_int_eq(symlink("lib/x.py", tp("t/alias.py")), 0);
	ck_assert_int_eq(symlink("../lib/pkg", tp("t/lib/pkg-link")), 0);
	ck_assert_int_eq(symlink("lib-dir", tp("t/chain")), 0);
	ck_assert_int_eq(symlink("lib", tp("t/lib-dir")), 0);

	struct seen s = { 0 };
	char *err;
	ck_assert_int_eq(walk_seen("t", WALK_FOLLOW, NULL, &s, &err), 0);
	/* links are visited under their own path, with the target's type */
	ck_assert_str_eq(s.text, "alias.py@,chain@,chain/pkg,chain/pkg/m.py,chain/pkg-link@,"
			 "chain/pkg-link/m.py,chain/x.py,lib,lib/pkg,lib/pkg/m.py,lib/pkg-link@,"
			 "lib/pkg-link/m.py,lib/x.py,lib-dir@,lib-dir/pkg,lib-dir/pkg/m.py,"
			 "lib-dir/pkg-link@,lib-dir/pkg-link/m.py,lib-dir/x.py");
	ck_assert_int_eq(s.types[0], S_IFREG);
	ck_assert_int_eq(s.types[1], S_IFDIR);

	/* the same tree kept: links are links */
	struct seen k = { 0 };
	ck_assert_int_eq(walk_seen("t", WALK_KEEP, NULL, &k, &err), 0);
	ck_assert_str_eq(k.text, "alias.py>lib/x.py,chain>lib-dir,lib,lib/pkg,lib/pkg/m.py,"
			 "lib/pkg-link>../lib/pkg,lib/x.py,lib-dir>lib");
	ck_assert_int_eq(k.types[0], S_IFLNK);

	/* a wider containment folder admits a sibling of the root */
	ck_assert_int_eq(mkdir(tp("elsewhere"), 0755), 0);
	put_file(tp("elsewhere/s.py"), "s", 0644);
	ck_assert_int_eq(symlink("../../elsewhere/s.py", tp("t/lib/s.py")), 0);
	struct seen w = { .prune = "lib-dir" };
	ck_assert_int_eq(walk_seen("t/lib", WALK_FOLLOW, tp(""), &w, &err), 0);
	ck_assert_ptr_nonnull(strstr(w.text, "s.py@"));
	assert_refused("t/lib", WALK_FOLLOW, -EPERM,
		       "symlink T/s.py -> ../../elsewhere/s.py points outside T (it resolves to ");
}
END_TEST

START_TEST(walk_refuses_links_leading_out)
{
	ck_assert_int_eq(mkdir_p(tp("t/sub"), 0755), 0);
	put_file(tp("outside.txt"), "host", 0644);
	ck_assert_int_eq(mkdir(tp("outdir"), 0755), 0);
	put_file(tp("outdir/o.txt"), "host", 0644);

	/* absolute, in both modes */
	ck_assert_int_eq(symlink("/etc/hostname", tp("t/sub/leak.py")), 0);
	assert_refused("t", WALK_FOLLOW, -EPERM,
		       "symlink T/sub/leak.py -> /etc/hostname points outside T");
	assert_refused("t", WALK_KEEP, -EPERM,
		       "symlink T/sub/leak.py -> /etc/hostname points outside T");
	ck_assert_int_eq(unlink(tp("t/sub/leak.py")), 0);

	/* relative, climbing out */
	ck_assert_int_eq(symlink("../../outside.txt", tp("t/sub/leak.py")), 0);
	assert_refused("t", WALK_FOLLOW, -EPERM, "symlink T/sub/leak.py -> ../../outside.txt points outside T");
	assert_refused("t", WALK_KEEP, -EPERM, "symlink T/sub/leak.py -> ../../outside.txt points outside T");
	ck_assert_int_eq(unlink(tp("t/sub/leak.py")), 0);

	/* a folder outside is not walked: the error names the link */
	ck_assert_int_eq(symlink(tp("outdir"), tp("t/docs")), 0);
	struct seen s = { 0 };
	char *err;
	ck_assert_int_eq(walk_seen("t", WALK_FOLLOW, NULL, &s, &err), -EPERM);
	ck_assert_ptr_null(strstr(s.text, "o.txt"));
	ck_assert_ptr_nonnull(strstr(err, "symlink T/docs -> "));
	free(err);
	ck_assert_int_eq(unlink(tp("t/docs")), 0);

	/* KEEP: each link lexically inside, together leading out */
	ck_assert_int_eq(symlink(".", tp("t/self")), 0);
	ck_assert_int_eq(symlink("self/..", tp("t/up")), 0);
	assert_refused("t", WALK_KEEP, -EPERM, "symlink T/up -> self/.. points outside T (it resolves to ");
	ck_assert_int_eq(unlink(tp("t/up")), 0);
	/* ...also when its last name is missing (found by tests/fuzz/fuzz_paths.c)
	 * or it comes back in by name: unpacked elsewhere, both lead out */
	ck_assert_int_eq(symlink("self/../missing", tp("t/up")), 0);
	assert_refused("t", WALK_KEEP, -EPERM,
		       "symlink T/up -> self/../missing points outside T (it passes through ");
	ck_assert_int_eq(unlink(tp("t/up")), 0);
	ck_assert_int_eq(symlink("self/../t/sub/f", tp("t/up")), 0);
	assert_refused("t", WALK_KEEP, -EPERM,
		       "symlink T/up -> self/../t/sub/f points outside T (it passes through ");
	ck_assert_int_eq(unlink(tp("t/up")), 0);
	/* ...and one that climbs back in is fine */
	ck_assert_int_eq(symlink("../sub/../self", tp("t/sub/back")), 0);
	ck_assert_int_eq(walk_seen("t", WALK_KEEP, NULL, &s, &err), 0);
}
END_TEST

START_TEST(walk_refuses_loops_dangling_and_special_files)
{
	ck_assert_int_eq(mkdir_p(tp("t/sub"), 0755), 0);
	put_file(tp("t/sub/f"), "", 0644);

	/* a cycle of links */
	ck_assert_int_eq(symlink("loop-b", tp("t/loop-a")), 0);
	ck_assert_int_eq(symlink("loop-a", tp("t/loop-b")), 0);
	assert_refused("t", WALK_FOLLOW, -ELOOP, "symlink T/loop-a -> loop-b: a loop of symlinks");
	assert_refused("t", WALK_KEEP, -ELOOP, "symlink T/loop-a -> loop-b: a loop of symlinks");
	ck_assert_int_eq(unlink(tp("t/loop-a")), 0);
	ck_assert_int_eq(unlink(tp("t/loop-b")), 0);

	/* a folder link to an ancestor: a loop when followed, a link when kept */
	ck_assert_int_eq(symlink("..", tp("t/sub/up")), 0);
	assert_refused("t", WALK_FOLLOW, -ELOOP, "symlink T/sub/up -> .. is a loop: it leads back to T/.");
	struct seen s = { 0 };
	char *err;
	ck_assert_int_eq(walk_seen("t", WALK_KEEP, NULL, &s, &err), 0);
	ck_assert_str_eq(s.text, "sub,sub/f,sub/up>..");
	ck_assert_int_eq(unlink(tp("t/sub/up")), 0);

	/* dangling: an error when followed; kept when it points inside */
	ck_assert_int_eq(symlink("missing", tp("t/sub/gone")), 0);
	assert_refused("t", WALK_FOLLOW, -ENOENT, "symlink T/sub/gone -> missing is dangling");
	struct seen d = { 0 };
	ck_assert_int_eq(walk_seen("t", WALK_KEEP, NULL, &d, &err), 0);
	ck_assert_str_eq(d.text, "sub,sub/f,sub/gone>missing");
	ck_assert_int_eq(unlink(tp("t/sub/gone")), 0);

	/* FIFOs and sockets, directly or behind a link */
	ck_assert_int_eq(mkfifo(tp("t/sub/pipe"), 0644), 0);
	assert_refused("t", WALK_FOLLOW, -EINVAL, "T/sub/pipe is a FIFO");
	assert_refused("t", WALK_KEEP, -EINVAL, "T/sub/pipe is a FIFO");
	ck_assert_int_eq(rename(tp("t/sub/pipe"), tp("pipe")), 0);
	ck_assert_int_eq(symlink("../../pipe", tp("t/sub/p")), 0);
	struct walk_options opts = { .links = WALK_FOLLOW, .within = tp(""), .label = "T" };
	err = NULL;
	ck_assert_int_eq(walk_tree(tp("t"), &opts, record, &s, &err), -EINVAL);
	ck_assert_msg(strstr(err, "symlink T/sub/p -> ../../pipe leads to a FIFO"), "%s", err);
	free(err);
	ck_assert_int_eq(unlink(tp("t/sub/p")), 0);

	int sock = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", tp("t/sock"));
	ck_assert_int_eq(bind(sock, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_refused("t", WALK_KEEP, -EINVAL, "T/sock is a socket");
	close(sock);
}
END_TEST

START_TEST(walk_depth_limit_and_resolve)
{
	char rel[PATH_MAX] = "t";
	for (int i = 0; i <= WALK_MAX_DEPTH; i++)
		strncat(rel, "/d", sizeof(rel) - strlen(rel) - 1);
	ck_assert_int_eq(mkdir_p(tp(rel), 0755), 0);
	assert_refused("t", WALK_KEEP, -ELOOP, "levels of folders");

	/* one path on its own */
	ck_assert_int_eq(mkdir(tp("in"), 0755), 0);
	put_file(tp("in/f"), "f", 0644);
	ck_assert_int_eq(symlink("f", tp("in/ok")), 0);
	ck_assert_int_eq(symlink("/etc/hostname", tp("in/leak")), 0);
	struct stat st;
	char *err = NULL;
	ck_assert_int_eq(walk_resolve(tp("in/ok"), tp("in"), &st, &err), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(walk_resolve(tp("in/leak"), tp("in"), &st, &err), -EPERM);
	ck_assert_msg(strstr(err, "in/leak -> /etc/hostname points outside "), "%s", err);
	free(err);
}
END_TEST

static Suite *common_suite(void)
{
	Suite *s = suite_create("common");

	TCase *tc = tcase_create("log");
	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_test(tc, log_backend_receives_formatted);
	tcase_add_test(tc, log_debug_gated);
	tcase_add_test(tc, log_truncates_and_keeps_errno);
	tcase_add_test(tc, log_default_stderr_format);
	tcase_add_test(tc, log_threads_do_not_interleave);
	suite_add_tcase(s, tc);

	tc = tcase_create("sha256");
	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_test(tc, sha256_standard_vectors);
	tcase_add_test(tc, sha256_million_a_oneshot_and_chunked);
	tcase_add_test(tc, sha256_padding_boundaries);
	tcase_add_test(tc, sha256_file_and_fd);
	tcase_add_test(tc, sha256_fd_short_reads_from_pipe);
	tcase_add_test(tc, sha256_file_spanning_read_blocks);
	suite_add_tcase(s, tc);

	tc = tcase_create("fsutil");
	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_test(tc, fs_path_join_and_printf);
	tcase_add_test(tc, fs_predicates);
	tcase_add_test(tc, fs_mkdir_p);
	tcase_add_test(tc, fs_rm_rf_tree_without_following_links);
	tcase_add_test(tc, fs_copy_file);
	tcase_add_test(tc, fs_copy_tree);
	tcase_add_test(tc, fs_copy_tree_refuses);
	tcase_add_test(tc, fs_read_file);
	tcase_add_test(tc, fs_write_file_atomic);
	tcase_add_test(tc, fs_list_dir_sorted);
	tcase_add_test(tc, fs_make_temp_dir);
	suite_add_tcase(s, tc);

	tc = tcase_create("walk");
	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_test(tc, walk_sorted_preorder_prune_stop);
	tcase_add_test(tc, walk_follow_inside);
	tcase_add_test(tc, walk_refuses_links_leading_out);
	tcase_add_test(tc, walk_refuses_loops_dangling_and_special_files);
	tcase_add_test(tc, walk_depth_limit_and_resolve);
	suite_add_tcase(s, tc);

	tc = tcase_create("spawn");
	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_test(tc, spawn_exit_codes);
	tcase_add_test(tc, spawn_killed_by_signal);
	tcase_add_test(tc, spawn_missing_binary);
	tcase_add_test(tc, spawn_output_to_fd);
	tcase_add_test(tc, spawn_own_stdin_and_stderr);
	tcase_add_test(tc, spawn_cwd);
	tcase_add_test(tc, spawn_env_add);
	tcase_add_test(tc, spawn_child_hygiene);
	tcase_add_test(tc, spawn_concurrent_threads);
	tcase_add_test(tc, spawn_deadline_kills_group);
	tcase_add_test(tc, spawn_cancel_kills_group);
	tcase_add_test(tc, spawn_sigterm_ignored_gets_sigkill);
	tcase_add_test(tc, spawn_kill9_of_spawner_kills_group);
	tcase_add_test(tc, spawn_leftovers_die_with_program);
	tcase_add_test(tc, spawn_stop_options_when_not_fired);
	tcase_add_test(tc, process_instance_tracks_one_process);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	snprintf(rootdir, sizeof(rootdir), "/tmp/sebsfs-test-common-XXXXXX");
	if (!mkdtemp(rootdir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	SRunner *sr = srunner_create(common_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_tree(rootdir);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
