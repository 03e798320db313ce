/*
 * test_tarstream.c - Check suite for the tar streams between sebsfs and a
 * build container: tarstream.h (a folder as a tar into a pipe) and
 * tar_extract of zipnorm.h (a tar stream back into a folder).
 *
 * Trees are made on disk in a fresh mkdtemp folder under /tmp and compared
 * with lstat/readlink after the round trip; refused archives are written
 * here with libarchive (a hard link, a FIFO, a foreign owner, names that
 * climb out) and fed through a pipe, as the archive API's body would come.
 * The normalized stream (image build contexts) is read back with
 * libarchive's reader and its metadata checked entry by entry.
 */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "tarstream.h"
#include "zipnorm.h"

static char *tmpdir;

static void setup_tmp(void)
{
	char tmpl[] = "/tmp/sebsfs-tarstream-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	tmpdir = strdup(tmpl);
	ck_assert_ptr_nonnull(tmpdir);
}

static void teardown_tmp(void)
{
	if (tmpdir) {
		/* folders left without write permission by a test */
		char *argv[] = { "chmod", "-R", "u+rwx", tmpdir, NULL };
		pid_t pid = fork();

		if (pid == 0) {
			execvp(argv[0], argv);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
		rm_rf(tmpdir);
		free(tmpdir);
		tmpdir = NULL;
	}
}

static char *tpath(const char *rel)
{
	char *p = path_join(tmpdir, rel);

	ck_assert_ptr_nonnull(p);
	return p;
}

static void put_file(const char *rel, const char *text, mode_t mode)
{
	char *p = tpath(rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write_all(fd, text, strlen(text)), 0);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	free(p);
}

static void put_dir(const char *rel, mode_t mode)
{
	char *p = tpath(rel);

	ck_assert_int_eq(mkdir(p, 0700), 0);
	ck_assert_int_eq(chmod(p, mode), 0);
	free(p);
}

static void put_symlink(const char *target, const char *rel)
{
	char *p = tpath(rel);

	ck_assert_int_eq(symlink(target, p), 0);
	free(p);
}

static void set_perm(const char *rel, mode_t mode)
{
	char *p = tpath(rel);

	ck_assert_int_eq(chmod(p, mode), 0);
	free(p);
}

static mode_t perm_of(const char *rel)
{
	char *p = tpath(rel);
	struct stat st;

	ck_assert_msg(lstat(p, &st) == 0, "%s: %s", p, strerror(errno));
	free(p);
	return st.st_mode & 07777;
}

static char *text_of(const char *rel)
{
	char *p = tpath(rel), *buf = NULL;
	size_t len;

	ck_assert_msg(read_file(p, &buf, &len) == 0, "cannot read %s", p);
	free(p);
	return buf;
}

static bool exists(const char *rel)
{
	char *p = tpath(rel);
	struct stat st;
	bool ok = lstat(p, &st) == 0;

	free(p);
	return ok;
}

/* ---- archives written here ---- */

struct tent {
	const char *name;
	mode_t type;          /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFIFO, AE_IFCHR */
	mode_t perm;
	const char *data;     /* file content, or a symlink's target */
	const char *hardlink; /* a hard link to this name */
	int uid;              /* -1: getuid() */
};

/* A pax tar of ents (terminated by a NULL name) in a file; its read-only fd. */
static int write_tar(const struct tent *ents)
{
	char *path = tpath("input.tar");
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();
	int fd;

	unlink(path);
	ck_assert_int_eq(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (const struct tent *e = ents; e->name; e++) {
		size_t len = e->type == AE_IFREG && e->data && !e->hardlink ? strlen(e->data) : 0;

		archive_entry_clear(ae);
		archive_entry_set_pathname(ae, e->name);
		archive_entry_set_filetype(ae, (unsigned)e->type);
		archive_entry_set_perm(ae, e->perm);
		archive_entry_set_uid(ae, e->uid < 0 ? getuid() : (uid_t)e->uid);
		archive_entry_set_gid(ae, getgid());
		archive_entry_set_size(ae, (la_int64_t)len);
		if (e->type == AE_IFLNK)
			archive_entry_set_symlink(ae, e->data);
		if (e->type == AE_IFCHR)
			archive_entry_set_rdev(ae, makedev(1, 3));
		if (e->hardlink)
			archive_entry_set_hardlink(ae, e->hardlink);
		ck_assert_int_eq(archive_write_header(a, ae), ARCHIVE_OK);
		if (len)
			ck_assert_int_eq(archive_write_data(a, e->data, len), (la_ssize_t)len);
	}
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(ae);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	free(path);
	return fd;
}

/* A stream like the archive API's: the bytes of fd through a pipe. */
struct feeder {
	int from, to;
};

static void *feed(void *arg)
{
	struct feeder *f = arg;
	char buf[4096];
	ssize_t n;

	while ((n = read(f->from, buf, sizeof(buf))) > 0)
		if (write_all(f->to, buf, (size_t)n) != 0)
			break;
	close(f->to);
	return NULL;
}

/* tar_extract of the file fd, fed through a pipe, into a fresh folder "out". */
static int extract_fd(int fd, const struct tar_extract_options *opts, char **msg)
{
	char *out = tpath("out");
	struct feeder f;
	pthread_t t;
	int p[2], rc;

	rm_rf(out);
	ck_assert_int_eq(mkdir(out, 0700), 0);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	f.from = fd;
	f.to = p[1];
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pthread_create(&t, NULL, feed, &f), 0);
	*msg = NULL;
	rc = tar_extract(p[0], out, opts, msg);
	close(p[0]);
	pthread_join(t, NULL);
	close(fd);
	free(out);
	return rc;
}

static const struct tar_extract_options strip_function = { .strip = "function" };

static void refused(const struct tent *ents, const struct tar_extract_options *opts,
		    int want, const char *want_text)
{
	char *msg = NULL;
	int rc = extract_fd(write_tar(ents), opts ? opts : &strip_function, &msg);

	ck_assert_msg(rc == want, "%s: got %d (%s), want %d", ents[1].name ? ents[1].name : "?",
		      rc, msg ? msg : "no message", want);
	ck_assert_msg(msg && strstr(msg, want_text), "message \"%s\" lacks \"%s\"",
		      msg ? msg : "", want_text);
	free(msg);
}

/* ---- tests ---- */

/* A folder up with its own metadata and back: the same files, modes
 * (never setuid), links; skip_top and the head's substitute honoured. */
START_TEST(test_round_trip_own_metadata)
{
	static const char *const skip_top[] = { "package.sh", "skipped", NULL };
	char *src = tpath("src");
	struct tarstream *ts = NULL;
	struct tarstream_stats stats;
	struct tarstream_options o = {
		.dir = src, .label = "work folder upload", .root = "function",
		.skip_top = skip_top, .own_metadata = true, .uid = getuid(), .gid = getgid(),
	};
	struct tar_extract_options back = { .strip = "function", .check_owner = true,
					    .owner = getuid() };
	char *msg = NULL, *t;
	int fd, rc;

	put_dir("src", 0750);
	put_dir("src/a", 0705);
	put_file("src/a/x.py", "print(1)\n", 0640);
	put_file("src/run", "#!/bin/sh\n", 0755);
	put_file("src/setuid", "s", 04755);
	put_file("src/package.sh", "own\n", 0644);
	put_file("src/skipped", "no", 0644);
	put_dir("src/e", 0755);
	put_dir("src/e/f", 0700);
	put_file("src/e/f/in", "in", 0600);
	/* no write permission: applied after the folder's entries are in */
	set_perm("src/e/f", 0500);
	put_symlink("a/x.py", "src/link");
	put_symlink("f", "src/e/dirlink");

	ck_assert_int_eq(tarstream_start(&o, &ts, &fd, &msg), 0);
	rc = extract_fd(fd, &back, &msg);
	ck_assert_msg(rc == 0, "extract: %s", msg ? msg : "?");
	ck_assert_int_eq(tarstream_finish(ts, &stats, &msg), 0);
	ck_assert_ptr_null(msg);
	/* function/, a/, a/x.py, e/, e/dirlink, e/f/, e/f/in, link, run, setuid */
	ck_assert_uint_eq(stats.entries, 10);

	ck_assert_uint_eq(perm_of("out"), 0750);
	ck_assert_uint_eq(perm_of("out/a"), 0705);
	ck_assert_uint_eq(perm_of("out/a/x.py"), 0640);
	ck_assert_uint_eq(perm_of("out/run"), 0755);
	ck_assert_uint_eq(perm_of("out/setuid"), 0755);
	ck_assert_uint_eq(perm_of("out/e/f"), 0500);
	t = text_of("out/a/x.py");
	ck_assert_str_eq(t, "print(1)\n");
	free(t);
	t = text_of("out/e/f/in");
	ck_assert_str_eq(t, "in");
	free(t);
	{
		char target[64] = { 0 };
		char *l = tpath("out/link");

		ck_assert_int_eq(readlink(l, target, sizeof(target) - 1), 6);
		ck_assert_str_eq(target, "a/x.py");
		free(l);
	}
	ck_assert(!exists("out/skipped"));
	ck_assert(!exists("out/package.sh"));
	free(src);
}
END_TEST

static int add_substitute(struct tarstream *ts, int dirfd, void *ctx)
{
	(void)dirfd;
	return tarstream_add_file(ts, AT_FDCWD, ctx, "function/package.sh");
}

START_TEST(test_head_substitutes_and_skip_back)
{
	static const char *const skip_top[] = { "package.sh", NULL };
	char *src = tpath("src"), *sub = tpath("substitute.sh");
	struct tarstream *ts = NULL;
	struct tarstream_options o = {
		.dir = src, .label = "work folder upload", .root = "function",
		.skip_top = skip_top, .own_metadata = true, .uid = getuid(), .gid = getgid(),
		.head = add_substitute, .head_ctx = sub,
	};
	struct tar_extract_options plain = { .strip = "function" };
	struct tar_extract_options skip = { .strip = "function",
					    .skip = (const char *const[]){ "package.sh", NULL } };
	char *msg = NULL, *t;
	int fd;

	put_dir("src", 0755);
	put_file("src/package.sh", "own\n", 0644);
	put_file("src/code.py", "x = 1\n", 0644);
	put_file("substitute.sh", "echo substituted\n", 0750);

	ck_assert_int_eq(tarstream_start(&o, &ts, &fd, &msg), 0);
	ck_assert_int_eq(extract_fd(fd, &plain, &msg), 0);
	ck_assert_int_eq(tarstream_finish(ts, NULL, &msg), 0);
	t = text_of("out/package.sh");
	ck_assert_str_eq(t, "echo substituted\n");
	free(t);
	ck_assert_uint_eq(perm_of("out/package.sh"), 0750);

	ck_assert_int_eq(tarstream_start(&o, &ts, &fd, &msg), 0);
	ck_assert_int_eq(extract_fd(fd, &skip, &msg), 0);
	ck_assert_int_eq(tarstream_finish(ts, NULL, &msg), 0);
	ck_assert(!exists("out/package.sh"));
	ck_assert(exists("out/code.py"));
	free(src);
	free(sub);
}
END_TEST

/* The image build's context: fixed metadata whatever the files' own. */
START_TEST(test_normalized_metadata)
{
	char *src = tpath("ctx");
	struct tarstream *ts = NULL;
	struct tarstream_options o = { .dir = src, .label = "build context" };
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	const char *want[] = { "a/", "a/x", "l", "run", NULL };
	char *msg = NULL;
	int fd, i = 0;

	put_dir("ctx", 0700);
	put_dir("ctx/a", 0700);
	put_file("ctx/a/x", "x", 0600);
	put_file("ctx/run", "r", 0700);
	put_symlink("a/x", "ctx/l");

	ck_assert_int_eq(tarstream_start(&o, &ts, &fd, &msg), 0);
	ck_assert_int_eq(archive_read_support_format_tar(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_read_open_fd(a, fd, 4096), ARCHIVE_OK);
	while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(ae);
		mode_t type = archive_entry_filetype(ae);

		ck_assert_ptr_nonnull(want[i]);
		ck_assert_str_eq(name, want[i]);
		ck_assert_int_eq(archive_entry_uid(ae), 0);
		ck_assert_int_eq(archive_entry_gid(ae), 0);
		ck_assert_int_eq(archive_entry_mtime(ae), 315532800);
		ck_assert_uint_eq(archive_entry_perm(ae),
				  type == AE_IFLNK ? 0777 : type == AE_IFDIR ? 0755
				  : !strcmp(name, "run") ? 0755 : 0644);
		i++;
	}
	ck_assert_ptr_null(want[i]);
	archive_read_free(a);
	close(fd);
	ck_assert_int_eq(tarstream_finish(ts, NULL, &msg), 0);
	free(src);
}
END_TEST

/* A producer that fails half-way poisons the stream: the reader fails
 * instead of taking a short, valid-looking tree. */
START_TEST(test_failure_poisons_the_stream)
{
	char *src = tpath("src");
	struct tarstream *ts = NULL;
	struct tarstream_options o = { .dir = src, .label = "work folder upload",
				       .root = "function", .own_metadata = true,
				       .uid = getuid(), .gid = getgid() };
	struct tar_extract_options plain = { .strip = "function" };
	char *msg = NULL, *pmsg = NULL;
	int fd, rc;

	put_dir("src", 0755);
	put_file("src/a", "a", 0644);
	{
		char *p = tpath("src/b-fifo");

		ck_assert_int_eq(mkfifo(p, 0644), 0);
		free(p);
	}
	ck_assert_int_eq(tarstream_start(&o, &ts, &fd, &msg), 0);
	rc = extract_fd(fd, &plain, &msg);
	ck_assert_msg(rc == -EBADMSG, "extract of a poisoned stream: %d (%s)", rc, msg ? msg : "");
	rc = tarstream_finish(ts, NULL, &pmsg);
	ck_assert_int_lt(rc, 0);
	ck_assert_int_ne(rc, -EPIPE);
	ck_assert_msg(pmsg && strstr(pmsg, "b-fifo"), "producer message: %s", pmsg ? pmsg : "");
	free(msg);
	free(pmsg);
	free(src);
}
END_TEST

/* A reader that stops early ends the producer with EPIPE, not a hang. */
START_TEST(test_reader_gone_gives_epipe)
{
	char *src = tpath("src");
	struct tarstream *ts = NULL;
	struct tarstream_options o = { .dir = src, .label = "build context" };
	char *big = malloc(1 << 20), *msg = NULL;
	int fd;

	memset(big, 'x', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	put_dir("src", 0755);
	put_file("src/big", big, 0644);
	ck_assert_int_eq(tarstream_start(&o, &ts, &fd, &msg), 0);
	close(fd);
	ck_assert_int_eq(tarstream_finish(ts, NULL, &msg), -EPIPE);
	ck_assert_msg(msg && strstr(msg, "stopped reading the build context"), "%s", msg ? msg : "");
	free(msg);
	free(big);
	free(src);
}
END_TEST

/* Docker's tars hold hard links: made as links inside the tree. */
START_TEST(test_hard_links)
{
	const struct tent ents[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/d/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/d/a", AE_IFREG, 0644, "shared", NULL, -1 },
		{ "function/b", AE_IFREG, 0644, NULL, "function/d/a", -1 },
		{ NULL },
	};
	struct stat sa, sb;
	char *msg = NULL, *t;
	char *a = tpath("out/d/a"), *b = tpath("out/b");

	ck_assert_int_eq(extract_fd(write_tar(ents), &strip_function, &msg), 0);
	ck_assert_int_eq(lstat(a, &sa), 0);
	ck_assert_int_eq(lstat(b, &sb), 0);
	ck_assert(sa.st_ino == sb.st_ino);
	t = text_of("out/b");
	ck_assert_str_eq(t, "shared");
	free(t);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_refusals)
{
	const struct tent outside[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "other/x", AE_IFREG, 0644, "x", NULL, -1 }, { NULL } };
	const struct tent dotdot[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/../x", AE_IFREG, 0644, "x", NULL, -1 }, { NULL } };
	const struct tent absolute[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function//etc/x", AE_IFREG, 0644, "x", NULL, -1 }, { NULL } };
	const struct tent link_out[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/l", AE_IFLNK, 0777, "../../etc", NULL, -1 }, { NULL } };
	const struct tent through_link[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/l", AE_IFLNK, 0777, "d", NULL, -1 },
		{ "function/l/x", AE_IFREG, 0644, "x", NULL, -1 }, { NULL } };
	const struct tent hardlink_out[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/h", AE_IFREG, 0644, NULL, "function/../../etc/passwd", -1 }, { NULL } };
	const struct tent hardlink_other[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/h", AE_IFREG, 0644, NULL, "etc/passwd", -1 }, { NULL } };
	const struct tent hardlink_ahead[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/h", AE_IFREG, 0644, NULL, "function/later", -1 },
		{ "function/later", AE_IFREG, 0644, "x", NULL, -1 }, { NULL } };
	const struct tent fifo[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/p", AE_IFIFO, 0644, NULL, NULL, -1 }, { NULL } };
	const struct tent device[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/null", AE_IFCHR, 0666, NULL, NULL, -1 }, { NULL } };
	const struct tent many[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/1", AE_IFREG, 0644, "1", NULL, -1 },
		{ "function/2", AE_IFREG, 0644, "2", NULL, -1 }, { NULL } };
	struct tar_extract_options two = { .strip = "function", .max_entries = 2 };

	refused(outside, NULL, -EPERM, "outside function/");
	refused(dotdot, NULL, -EPERM, "'..'");
	refused(absolute, NULL, -EPERM, "absolute");
	refused(link_out, NULL, -EPERM, "leads out of the tree");
	refused(through_link, NULL, -EPERM, "refusing to write through it");
	refused(hardlink_out, NULL, -EPERM, "'..'");
	refused(hardlink_other, NULL, -EPERM, "outside function/");
	refused(hardlink_ahead, NULL, -EINVAL, "not a file extracted before it");
	refused(fifo, NULL, -EINVAL, "a FIFO");
	refused(device, NULL, -EINVAL, "a character device");
	refused(many, &two, -EFBIG, "more than 2 entries");
	ck_assert(!exists("etc"));
}
END_TEST

/* What the container left owned by someone else fails, naming it. */
START_TEST(test_foreign_owner)
{
	uid_t me = getuid();
	uid_t other = me == 0 ? 4242 : 0;
	const struct tent ents[] = {
		{ "function/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/mine", AE_IFREG, 0644, "m", NULL, -1 },
		{ "function/sub/", AE_IFDIR, 0755, NULL, NULL, -1 },
		{ "function/sub/theirs", AE_IFREG, 0644, "t", NULL, (int)other },
		{ NULL },
	};
	char *foreign = NULL, *msg = NULL, *want = str_printf("sub/theirs (uid %u)", (unsigned)other);
	struct tar_extract_options o = { .strip = "function", .check_owner = true, .owner = me,
					 .foreign = &foreign };

	ck_assert_int_eq(extract_fd(write_tar(ents), &o, &msg), -EPERM);
	ck_assert_ptr_nonnull(foreign);
	ck_assert_str_eq(foreign, want);
	free(foreign);
	free(msg);
	free(want);
}
END_TEST

START_TEST(test_garbage_is_refused)
{
	char *path = tpath("garbage");
	char junk[2048];
	char *msg = NULL;
	int fd;

	memset(junk, 0xff, sizeof(junk));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	ck_assert_int_eq(write_all(fd, junk, sizeof(junk)), 0);
	close(fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(extract_fd(fd, &strip_function, &msg), -EBADMSG);
	free(msg);
	free(path);
}
END_TEST

static Suite *tarstream_suite(void)
{
	Suite *s = suite_create("tarstream");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
	tcase_add_test(tc, test_round_trip_own_metadata);
	tcase_add_test(tc, test_head_substitutes_and_skip_back);
	tcase_add_test(tc, test_normalized_metadata);
	tcase_add_test(tc, test_failure_poisons_the_stream);
	tcase_add_test(tc, test_reader_gone_gives_epipe);
	tcase_add_test(tc, test_hard_links);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_foreign_owner);
	tcase_add_test(tc, test_garbage_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tarstream_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
