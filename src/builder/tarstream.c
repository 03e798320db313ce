/*
 * tarstream.c - a folder as a pax tar stream into a pipe (see tarstream.h).
 */
#include "tarstream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "errmsg.h"
#include "fsutil.h"
#include "walk.h"

/* The fixed mtime of every normalized entry: 1980-01-01 00:00:00 UTC, the zip
 * epoch ziptree uses too.  Not 0: java.io.File.lastModified() returns 0 for
 * a file that does not exist, and Maven's resource copy then fails inside
 * an image build ("copying templates/template.html ... failed with
 * NoSuchFileException", seen on 110.dynamic-html's java function images). */
#define NORMALIZED_MTIME 315532800

#define CHUNK (64 * 1024)
#define POISON_LEN 2048

struct tarstream {
	const struct tarstream_options *opts;
	pthread_t thread;
	int fd;                  /* the pipe's write end; the thread closes it */
	int write_errno;         /* the first failed write(); later output is dropped */
	bool discard;            /* drop libarchive's output (after a failure) */
	struct archive *a;
	struct archive_entry *ae;
	char *buf;               /* CHUNK bytes */
	struct tarstream_stats stats;
	int rc;                  /* 0 or -errno */
	char *errmsg;            /* the first failure */
};

int tarstream_fail(struct tarstream *ts, int rc, const char *fmt, ...)
{
	if (ts->rc == 0) {
		va_list ap;
		char *msg = NULL;

		va_start(ap, fmt);
		if (vasprintf(&msg, fmt, ap) < 0)
			msg = NULL;
		va_end(ap);
		ts->rc = rc < 0 ? rc : -EIO;
		ts->errmsg = msg;
	}
	return ts->rc;
}

/* libarchive's output callback.  It never reports a failure to libarchive
 * (which would then refuse to close and free its buffers): a failed write is
 * recorded in write_errno, output is dropped from then on, and the walk
 * checks write_errno after every archive call. */
static la_ssize_t pipe_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct tarstream *ts = ctx;
	size_t off = 0;

	(void)a;
	while (!ts->discard && off < len) {
		ssize_t n = write(ts->fd, (const char *)buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ts->write_errno = errno;
			ts->discard = true;
			break;
		}
		off += (size_t)n;
	}
	return (la_ssize_t)len;
}

/* A libarchive call or the pipe failed: EPIPE means the reader stopped. */
static int archive_fail(struct tarstream *ts, const char *path)
{
	int e = ts->write_errno ? ts->write_errno : archive_errno(ts->a);

	if (e == EPIPE)
		return tarstream_fail(ts, -EPIPE, "the daemon stopped reading the %s",
				      ts->opts->label);
	return tarstream_fail(ts, e > 0 ? -e : -EIO, "writing %s into the %s: %s", path,
			      ts->opts->label,
			      archive_error_string(ts->a) ? archive_error_string(ts->a)
							  : "unknown error");
}

/* st: the file's own metadata (NULL: data made here), used with own_metadata. */
static int write_header(struct tarstream *ts, const char *path, mode_t type, mode_t perm,
			int64_t size, const char *symlink, const struct stat *st)
{
	const struct tarstream_options *o = ts->opts;
	struct archive_entry *ae = ts->ae;
	bool own = o->own_metadata;

	archive_entry_clear(ae);
	archive_entry_set_pathname(ae, path);
	archive_entry_set_filetype(ae, (unsigned)type);
	archive_entry_set_perm(ae, own && st && type != AE_IFLNK ? (st->st_mode & 0777) : perm);
	archive_entry_set_size(ae, type == AE_IFREG ? size : 0);
	if (own && st)
		archive_entry_set_mtime(ae, st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	else
		archive_entry_set_mtime(ae, NORMALIZED_MTIME, 0);
	archive_entry_set_uid(ae, own ? o->uid : 0);
	archive_entry_set_gid(ae, own ? o->gid : 0);
	if (symlink)
		archive_entry_set_symlink(ae, symlink);
	/* ARCHIVE_WARN: e.g. a name not in the locale's charset, still written */
	if (archive_write_header(ts->a, ae) < ARCHIVE_WARN || ts->write_errno)
		return archive_fail(ts, path);
	ts->stats.entries++;
	return 0;
}

int tarstream_add_data(struct tarstream *ts, const char *entry_path, const void *data, size_t len)
{
	int rc = write_header(ts, entry_path, AE_IFREG, 0644, (int64_t)len, NULL, NULL);

	if (rc == 0 && (archive_write_data(ts->a, data, len) != (la_ssize_t)len || ts->write_errno))
		rc = archive_fail(ts, entry_path);
	ts->stats.bytes += len;
	return rc;
}

int tarstream_add_file(struct tarstream *ts, int dfd, const char *name, const char *path)
{
	struct stat st;
	int64_t done = 0;
	int rc = 0;
	/* messages name the file on disk */
	const char *dir = dfd == AT_FDCWD ? "" : ts->opts->dir;
	const char *sep = dfd == AT_FDCWD ? "" : "/";
	const char *shown = dfd == AT_FDCWD ? name : path;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return tarstream_fail(ts, -errno, "%s%s%s: %s", dir, sep, shown, strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = tarstream_fail(ts, -errno, "%s%s%s: %s", dir, sep, shown, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = tarstream_fail(ts, -EINVAL, "%s%s%s: not a regular file", dir, sep, shown);
		goto out;
	}
	rc = write_header(ts, path, AE_IFREG, (st.st_mode & 0111) ? 0755 : 0644, st.st_size,
			  NULL, &st);
	while (rc == 0) {
		ssize_t n = read(fd, ts->buf, CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = tarstream_fail(ts, -errno, "reading %s%s%s: %s", dir, sep, shown,
					    strerror(errno));
			break;
		}
		if (n == 0 || done + n > st.st_size) {
			if (n != 0 || done != st.st_size)
				rc = tarstream_fail(ts, -EIO, "%s%s%s changed size while being read",
						    dir, sep, shown);
			break;
		}
		if (archive_write_data(ts->a, ts->buf, (size_t)n) != n || ts->write_errno)
			rc = archive_fail(ts, path);
		done += n;
		ts->stats.bytes += (unsigned long long)n;
	}
out:
	close(fd);
	return rc;
}

/* One entry of the folder (WALK_KEEP: links are written as links, and
 * walk_tree has refused other file types and links leading out of it). */
static int add_entry(const struct walk_entry *e, void *ctx)
{
	struct tarstream *ts = ctx;
	const char *root = ts->opts->root;
	char *path = root ? str_printf("%s/%s", root, e->path) : (char *)e->path;
	int rc;

	if (!path)
		return tarstream_fail(ts, -ENOMEM, "out of memory");
	if (S_ISDIR(e->st.st_mode))
		rc = write_header(ts, path, AE_IFDIR, 0755, 0, NULL, &e->st);
	else if (S_ISREG(e->st.st_mode))
		rc = tarstream_add_file(ts, e->dirfd, e->name, path);
	else
		rc = write_header(ts, path, AE_IFLNK, 0777, 0, e->link, &e->st);
	if (root)
		free(path);
	return rc;
}

/* The folder, sorted by name, depth first. */
static int add_tree(struct tarstream *ts)
{
	struct walk_options opts = { .links = WALK_KEEP, .skip_top = ts->opts->skip_top };
	char *msg = NULL;
	int rc = walk_tree(ts->opts->dir, &opts, add_entry, ts, &msg);

	/* a failure of add_entry is already recorded with its own message */
	if (rc < 0)
		tarstream_fail(ts, rc, "%s", msg ? msg : strerror(-rc));
	free(msg);
	return rc < 0 ? ts->rc : 0;
}

static int add_all(struct tarstream *ts)
{
	const struct tarstream_options *o = ts->opts;
	struct stat st;
	int rc = 0;
	int dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return tarstream_fail(ts, -errno, "%s: %s", o->dir, strerror(errno));
	if (o->root && fstat(dfd, &st) < 0)
		rc = tarstream_fail(ts, -errno, "%s: %s", o->dir, strerror(errno));
	else if (o->root)
		rc = write_header(ts, o->root, AE_IFDIR, 0755, 0, NULL, &st);
	if (rc == 0 && o->head)
		rc = o->head(ts, dfd, o->head_ctx);
	close(dfd);
	if (rc == 0)
		rc = add_tree(ts);
	return rc;
}

static void *producer_main(void *arg)
{
	struct tarstream *ts = arg;
	sigset_t pipe_set;
	int rc = 0;

	/* A write to the closed pipe gives EPIPE here instead of a SIGPIPE for
	 * the process (a thread-directed signal, dropped when the thread ends). */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);

	ts->a = archive_write_new();
	ts->ae = archive_entry_new();
	ts->buf = malloc(CHUNK);
	if (!ts->a || !ts->ae || !ts->buf) {
		rc = tarstream_fail(ts, -ENOMEM, "out of memory");
		goto out;
	}
	if (archive_write_set_format_pax_restricted(ts->a) != ARCHIVE_OK ||
	    archive_write_open2(ts->a, ts, NULL, pipe_write, NULL, NULL) != ARCHIVE_OK) {
		rc = tarstream_fail(ts, -EIO, "cannot start the %s: %s", ts->opts->label,
				    archive_error_string(ts->a) ? archive_error_string(ts->a) : "?");
		goto out;
	}
	rc = add_all(ts);
	if (rc == 0 && (archive_write_close(ts->a) != ARCHIVE_OK || ts->write_errno))
		rc = archive_fail(ts, "the end of the archive");
out:
	if (ts->a) {
		/* After a failure the end-of-archive marker (and whatever libarchive
		 * still buffers) must not reach the reader: close into the void. */
		ts->discard = ts->discard || rc != 0;
		archive_write_close(ts->a);
		archive_write_free(ts->a);
		ts->a = NULL;
	}
	if (rc != 0 && rc != -EPIPE) {
		/* Make sure the reader sees a broken archive, not a short one. */
		char poison[POISON_LEN];

		memset(poison, 0xff, sizeof(poison));
		for (size_t off = 0; off < sizeof(poison);) {
			ssize_t n = write(ts->fd, poison + off, sizeof(poison) - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	close(ts->fd);
	ts->fd = -1;
	archive_entry_free(ts->ae);
	ts->ae = NULL;
	free(ts->buf);
	ts->buf = NULL;
	return NULL;
}

int tarstream_start(const struct tarstream_options *opts, struct tarstream **out, int *read_fd,
		    char **errmsg)
{
	struct tarstream *ts = calloc(1, sizeof(*ts));
	int fds[2], rc;

	*out = NULL;
	*read_fd = -1;
	if (!ts) {
		errmsg_set(errmsg, "%s: out of memory", opts->label);
		return -ENOMEM;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "%s: pipe: %s", opts->label, strerror(-rc));
		free(ts);
		return rc;
	}
	ts->opts = opts;
	ts->fd = fds[1];
	rc = -pthread_create(&ts->thread, NULL, producer_main, ts);
	if (rc != 0) {
		errmsg_set(errmsg, "%s: cannot start a thread: %s", opts->label, strerror(-rc));
		close(fds[0]);
		close(fds[1]);
		free(ts);
		return rc;
	}
	*out = ts;
	*read_fd = fds[0];
	return 0;
}

int tarstream_finish(struct tarstream *ts, struct tarstream_stats *stats, char **errmsg)
{
	int rc;

	pthread_join(ts->thread, NULL);
	rc = ts->rc;
	if (rc != 0)
		errmsg_set(errmsg, "%s", ts->errmsg ? ts->errmsg : strerror(-rc));
	if (stats)
		*stats = ts->stats;
	free(ts->errmsg);
	free(ts);
	return rc;
}
