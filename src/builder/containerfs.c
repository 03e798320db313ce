/*
 * containerfs.c - a work folder into and out of a build container through
 * the archive API (see containerfs.h).
 *
 * Up: tarstream writes the folder (own permission bits, the caller's ids)
 * into a pipe that docker_container_archive_put uploads.  Down:
 * docker_container_archive_get hands the response body to a socket whose
 * other end a consumer thread extracts with tar_extract.  A socket rather
 * than a pipe because send(MSG_NOSIGNAL) reports a consumer that stopped
 * (refused entry, foreign owner) as EPIPE in this thread, without a SIGPIPE
 * for the process; the transfer then stops with that error.
 */
#include "containerfs.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "docker.h"
#include "errmsg.h"
#include "fsutil.h"
#include "tarstream.h"
#include "zipnorm.h"

#define PACKAGE_SH "package.sh"

/* Bounds of what comes back.  Larger than zipnorm's defaults for a build
 * tool's archive: the container is trusted as much as on the bind path (it
 * could fill a bind-mounted folder without any limit), and a work folder
 * with a large node_modules or site-packages is normal; these only stop
 * nonsense before the disk does. */
#define DOWNLOAD_MAX_BYTES   (UINT64_C(16) << 30)  /* 16 GiB of file content */
#define DOWNLOAD_MAX_ENTRIES (UINT64_C(1) << 22)   /* 4,194,304 entries */

static int add_package_sh(struct tarstream *ts, int dirfd, void *ctx)
{
	(void)dirfd;
	return tarstream_add_file(ts, AT_FDCWD, ctx, CONTAINERFS_NAME "/" PACKAGE_SH);
}

int containerfs_put(struct docker *d, const char *id, const char *dir, const char *package_sh,
		    uid_t uid, gid_t gid, struct tarstream_stats *stats, char **errmsg)
{
	static const char *const skip_package_sh[] = { PACKAGE_SH, NULL };
	struct tarstream_options o = {
		.dir = dir, .label = "work folder upload", .root = CONTAINERFS_NAME,
		.skip_top = package_sh ? skip_package_sh : NULL,
		.own_metadata = true, .uid = uid, .gid = gid,
		.head = package_sh ? add_package_sh : NULL, .head_ctx = (void *)package_sh,
	};
	struct tarstream *ts = NULL;
	char *msg = NULL, *tar_msg = NULL;
	int fd = -1, rc, tar_rc;

	rc = tarstream_start(&o, &ts, &fd, errmsg);
	if (rc)
		return rc;
	rc = docker_container_archive_put(d, id, CONTAINERFS_PARENT, fd, &msg);
	/* an upload that ended early leaves the producer writing: EPIPE ends it */
	close(fd);
	tar_rc = tarstream_finish(ts, stats, &tar_msg);
	if (tar_rc != 0 && (rc == 0 || tar_rc != -EPIPE)) {
		/* the folder is the root cause (the daemon saw a broken archive) */
		rc = tar_rc;
		errmsg_set(errmsg, "copying %s into the container: %s", dir,
			   tar_msg ? tar_msg : strerror(-tar_rc));
	} else if (rc != 0) {
		errmsg_set(errmsg, "copying %s into the container: %s", dir,
			   msg ? msg : strerror(-rc));
	}
	free(msg);
	free(tar_msg);
	return rc;
}

struct consumer {
	int fd;                          /* the socket's reading end; the thread closes it */
	const char *dest;
	struct tar_extract_options opts;
	int rc;
	char *msg;
};

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;

	c->rc = tar_extract(c->fd, c->dest, &c->opts, &c->msg);
	/* the sender's next send() fails with EPIPE instead of blocking */
	close(c->fd);
	c->fd = -1;
	return NULL;
}

static int send_to_consumer(void *ctx, const void *data, size_t len)
{
	int fd = *(const int *)ctx;
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Streams /mnt/function of id into the empty folder fresh. */
static int download(struct docker *d, const char *id, const char *fresh, bool skip_package_sh,
		    uid_t uid, char **foreign, char **errmsg)
{
	static const char *const skip[] = { PACKAGE_SH, NULL };
	struct consumer c = { .fd = -1, .dest = fresh, .opts = {
		.strip = CONTAINERFS_NAME, .skip = skip_package_sh ? skip : NULL,
		.check_owner = true, .owner = uid, .foreign = foreign,
		.max_bytes = DOWNLOAD_MAX_BYTES, .max_entries = DOWNLOAD_MAX_ENTRIES } };
	pthread_t thread;
	char *msg = NULL;
	int fds[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "socketpair: %s", strerror(-rc));
		return rc;
	}
	c.fd = fds[1];
	rc = -pthread_create(&thread, NULL, consumer_main, &c);
	if (rc) {
		errmsg_set(errmsg, "cannot start a thread: %s", strerror(-rc));
		close(fds[0]);
		close(fds[1]);
		return rc;
	}
	rc = docker_container_archive_get(d, id, CONTAINERFS_PATH, send_to_consumer, &fds[0], &msg);
	/* end of stream for the consumer, whether the transfer ended well or not */
	close(fds[0]);
	pthread_join(thread, NULL);
	if (c.rc != 0 && (rc == 0 || rc == -EPIPE || rc == -ECONNRESET)) {
		/* the archive is the root cause: the consumer refused it */
		rc = c.rc;
		errmsg_set(errmsg, "%s", c.msg ? c.msg : strerror(-c.rc));
	} else if (rc != 0) {
		errmsg_set(errmsg, "%s", msg ? msg : strerror(-rc));
	}
	free(c.msg);
	free(msg);
	return rc;
}

/* dir's own package.sh (which the container saw replaced) moves into fresh. */
static int keep_own_package_sh(const char *dir, const char *fresh, char **errmsg)
{
	char *old = path_join(dir, PACKAGE_SH), *new = path_join(fresh, PACKAGE_SH);
	struct stat st;
	int rc = old && new ? 0 : -ENOMEM;

	if (rc == 0 && lstat(old, &st) == 0 && rename(old, new) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "cannot keep %s: %s", old, strerror(-rc));
	}
	free(old);
	free(new);
	return rc;
}

/* fresh takes dir's place and dir's old tree ends up at fresh.  One step
 * (dir is never half old, half new) where the file system can exchange;
 * else two renames, with a moment in which dir does not exist. */
static int swap_in(const char *fresh, const char *dir)
{
	char *aside;
	int rc = 0;

	if (renameat2(AT_FDCWD, fresh, AT_FDCWD, dir, RENAME_EXCHANGE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -errno;
	aside = str_printf("%s.old", fresh);
	if (!aside)
		return -ENOMEM;
	if (rename(dir, aside) < 0) {
		rc = -errno;
	} else if (rename(fresh, dir) < 0) {
		rc = -errno;
		rename(aside, dir);  /* the old tree back; the build fails anyway */
	} else if (rename(aside, fresh) < 0) {
		rc = rm_rf(aside);   /* the new tree is in place: only the old one is left over */
	}
	free(aside);
	return rc;
}

int containerfs_get(struct docker *d, const char *id, const char *dir, bool skip_package_sh,
		    uid_t uid, char **foreign, char **errmsg)
{
	char *parent = strdup(dir), *slash = parent ? strrchr(parent, '/') : NULL;
	char *prefix = slash ? str_printf("%s.download-", slash + 1) : NULL;
	char *fresh = NULL, *msg = NULL;
	int rc = prefix ? 0 : -ENOMEM;

	*foreign = NULL;
	if (rc == 0) {
		*slash = '\0';
		rc = make_temp_dir(*parent ? parent : "/", prefix, &fresh);
		if (rc)
			errmsg_set(errmsg, "cannot make a folder next to %s: %s", dir, strerror(-rc));
	}
	if (rc == 0 && (rc = download(d, id, fresh, skip_package_sh, uid, foreign, &msg)) < 0)
		errmsg_set(errmsg, "copying %s out of the container: %s", CONTAINERFS_PATH,
			   msg ? msg : strerror(-rc));
	if (rc == 0 && skip_package_sh)
		rc = keep_own_package_sh(dir, fresh, errmsg);
	if (rc == 0 && (rc = swap_in(fresh, dir)) < 0)
		errmsg_set(errmsg, "cannot put the container's %s in place of %s: %s",
			   CONTAINERFS_PATH, dir, strerror(-rc));
	if (fresh) {
		/* the old tree after the exchange, else the partial new one */
		int rm = rm_rf(fresh);

		if (rm && rc == 0) {
			rc = rm;
			errmsg_set(errmsg, "cannot remove %s: %s", fresh, strerror(-rm));
		}
	}
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory");
	free(msg);
	free(fresh);
	free(prefix);
	free(parent);
	return rc;
}
