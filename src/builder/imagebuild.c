/*
 * imagebuild.c - build (and push) a function image: SEBS.md section 7.
 *
 * DESIGN: the build context never exists as a file or a buffer.  A producer
 * thread walks the prepared work folder (walk_tree under WALK_KEEP: entries
 * sorted by name, depth first; directories, regular files and symlinks that
 * stay inside the folder, anything else fails the build) and writes it as a
 * pax tar stream with libarchive into a pipe; the calling thread hands the
 * pipe's read end to docker_image_build(), which uploads it with chunked
 * encoding.  Every entry gets mtime CONTEXT_MTIME, uid/gid 0, no user/group names and
 * mode 0755 (directories, executables), 0644 (other files) or 0777
 * (symlinks), so the same folder always gives the same tar bytes.  The
 * Dockerfile is added first, as CONTEXT_DOCKERFILE, a name no benchmark uses,
 * then a .dockerignore that lists it (appended to the folder's own
 * .dockerignore when there is one), so that `COPY . function/` does not copy
 * sebsfs's Dockerfile into the image.
 *
 * Failure handling between the two threads:
 *  - the upload ends early (daemon error, connection lost): the caller closes
 *    the read end, so the producer's next write fails with EPIPE instead of
 *    blocking; the producer blocks SIGPIPE in its own thread, so the signal
 *    (thread-directed, discarded when the thread exits) never kills the process;
 *  - the producer fails half-way (a file vanished or changed size): a context
 *    cut at an entry boundary would be a valid, incomplete tar that the daemon
 *    could happily build from, so the producer abandons the archive without
 *    its end marker and writes POISON_LEN bytes of 0xff instead: whatever the
 *    cut, the daemon then reads either a short entry or a header with a bad
 *    checksum, and the build fails.  The producer's message is reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "docker.h"
#include "buildlog.h"
#include "fsutil.h"
#include "imagebuild.h"
#include "pipeline.h"
#include "walk.h"

/* The fixed mtime of every context entry: 1980-01-01 00:00:00 UTC, the zip
 * epoch ziptree uses too.  Not 0: java.io.File.lastModified() returns 0 for
 * a file that does not exist, and Maven's resource copy then fails inside
 * the image build ("copying templates/template.html ... failed with
 * NoSuchFileException", seen on 110.dynamic-html's java function images). */
#define CONTEXT_MTIME 315532800

/* The Dockerfile's name inside the context: cannot collide with a benchmark's files. */
#define CONTEXT_DOCKERFILE ".sebsfs.Dockerfile.function"
#define DOCKERIGNORE ".dockerignore"
#define MAX_DOCKERIGNORE (1u << 20)
#define CHUNK (64 * 1024)
#define POISON_LEN 2048

bool image_tag_valid(const char *prefix)
{
	size_t len = prefix ? strlen(prefix) : 0;
	if (len == 0 || len > IMAGE_TAG_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = prefix[i];
		bool word = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '_';
		if (!word && (i == 0 || (c != '.' && c != '-')))
			return false;
	}
	return true;
}

char *image_function_tag(const struct image_tag_parts *p)
{
	const char *arch = p->arch && strcmp(p->arch, "arm64") == 0 ? "arm64" : "x64";
	bool prefix = p->prefix && *p->prefix;

	return str_printf("function.%s.%s.%s-%s-%s%s%s-%s", p->platform, p->benchmark, p->language,
			  p->version, arch, prefix ? "-" : "", prefix ? p->prefix : "",
			  p->sebs_version ? p->sebs_version : "unknown");
}

int image_function_name(const struct image_tag_parts *p, const char *repository,
			const char *registry, char **name, char **errmsg)
{
	char *tag = image_function_tag(p);
	int rc = tag ? 0 : -ENOMEM;
	*name = NULL;
	if (rc == 0 && (!repository || !*repository)) {
		rc = -EINVAL;
		*errmsg = strdup("no repository: set -o repository=NAME or general.docker_repository");
	} else if (rc == 0 && (strlen(tag) > IMAGE_TAG_MAX || !image_tag_valid(tag))) {
		rc = -EINVAL;
		*errmsg = strlen(tag) > IMAGE_TAG_MAX
			? str_printf("image tag %s is %zu characters long; Docker allows at most %d"
				     " (shorten -o image_tag_prefix=)", tag, strlen(tag), IMAGE_TAG_MAX)
			: str_printf("image tag %s is not a valid Docker tag"
				     " ([A-Za-z0-9_][A-Za-z0-9_.-]*)", tag);
	} else if (rc == 0) {
		*name = registry ? str_printf("%s/%s:%s", registry, repository, tag)
				 : str_printf("%s:%s", repository, tag);
		rc = *name ? 0 : -ENOMEM;
	}
	free(tag);
	return rc;
}

void image_build_result_clear(struct image_build_result *res)
{
	if (!res)
		return;
	free(res->image);
	free(res->image_id);
	free(res->digest);
	memset(res, 0, sizeof(*res));
}

/* ---- the build context producer -------------------------------------------- */

struct producer {
	const char *context_dir;
	const char *dockerfile;
	int fd;                  /* the pipe's write end; the thread closes it */
	int write_errno;         /* the first failed write(); later output is dropped */
	bool discard;            /* drop libarchive's output (after a failure) */
	struct archive *a;
	struct archive_entry *ae;
	char *buf;               /* CHUNK bytes */
	unsigned long long entries, bytes;
	int rc;                  /* 0 or -errno */
	char *errmsg;            /* the first failure */
};

static int prod_fail(struct producer *p, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int prod_fail(struct producer *p, int rc, const char *fmt, ...)
{
	if (p->rc == 0) {
		va_list ap;
		char *msg = NULL;

		va_start(ap, fmt);
		if (vasprintf(&msg, fmt, ap) < 0)
			msg = NULL;
		va_end(ap);
		p->rc = rc < 0 ? rc : -EIO;
		p->errmsg = msg;
	}
	return p->rc;
}

/* libarchive's output callback.  It never reports a failure to libarchive
 * (which would then refuse to close and free its buffers): a failed write is
 * recorded in write_errno, output is dropped from then on, and the walk
 * checks write_errno after every archive call. */
static la_ssize_t pipe_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct producer *p = ctx;
	size_t off = 0;

	(void)a;
	while (!p->discard && off < len) {
		ssize_t n = write(p->fd, (const char *)buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			p->write_errno = errno;
			p->discard = true;
			break;
		}
		off += (size_t)n;
	}
	return (la_ssize_t)len;
}

/* A libarchive call or the pipe failed: EPIPE means the daemon stopped reading. */
static int archive_fail(struct producer *p, const char *path)
{
	int e = p->write_errno ? p->write_errno : archive_errno(p->a);

	if (e == EPIPE)
		return prod_fail(p, -EPIPE, "the daemon stopped reading the build context");
	return prod_fail(p, e > 0 ? -e : -EIO, "writing %s into the build context: %s", path,
			 archive_error_string(p->a) ? archive_error_string(p->a) : "unknown error");
}

static int write_header(struct producer *p, const char *path, mode_t type, mode_t perm,
			int64_t size, const char *symlink)
{
	struct archive_entry *ae = p->ae;

	archive_entry_clear(ae);
	archive_entry_set_pathname(ae, path);
	archive_entry_set_filetype(ae, (unsigned)type);
	archive_entry_set_perm(ae, perm);
	archive_entry_set_size(ae, type == AE_IFREG ? size : 0);
	archive_entry_set_mtime(ae, CONTEXT_MTIME, 0);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	if (symlink)
		archive_entry_set_symlink(ae, symlink);
	/* ARCHIVE_WARN: e.g. a name not in the locale's charset, still written */
	if (archive_write_header(p->a, ae) < ARCHIVE_WARN || p->write_errno)
		return archive_fail(p, path);
	p->entries++;
	return 0;
}

/* Streams the regular file at dfd/name as entry path; it must not change size. */
static int add_file(struct producer *p, int dfd, const char *name, const char *path)
{
	struct stat st;
	int64_t done = 0;
	int rc = 0;
	/* messages name the file on disk */
	const char *dir = dfd == AT_FDCWD ? "" : p->context_dir;
	const char *sep = dfd == AT_FDCWD ? "" : "/";
	const char *shown = dfd == AT_FDCWD ? name : path;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return prod_fail(p, -errno, "%s%s%s: %s", dir, sep, shown, strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = prod_fail(p, -errno, "%s%s%s: %s", dir, sep, shown, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = prod_fail(p, -EINVAL, "%s%s%s: not a regular file", dir, sep, shown);
		goto out;
	}
	rc = write_header(p, path, AE_IFREG, (st.st_mode & 0111) ? 0755 : 0644, st.st_size, NULL);
	while (rc == 0) {
		ssize_t n = read(fd, p->buf, CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = prod_fail(p, -errno, "reading %s%s%s: %s", dir, sep, shown, strerror(errno));
			break;
		}
		if (n == 0 || done + n > st.st_size) {
			if (n != 0 || done != st.st_size)
				rc = prod_fail(p, -EIO, "%s%s%s changed size while being read", dir, sep, shown);
			break;
		}
		if (archive_write_data(p->a, p->buf, (size_t)n) != n || p->write_errno)
			rc = archive_fail(p, path);
		done += n;
		p->bytes += (unsigned long long)n;
	}
out:
	close(fd);
	return rc;
}

/* One entry of the work folder (WALK_KEEP: links are written as links, and
 * walk_tree has refused other file types and links leading out of it). */
static int add_entry(const struct walk_entry *e, void *ctx)
{
	struct producer *p = ctx;

	if (S_ISDIR(e->st.st_mode))
		return write_header(p, e->path, AE_IFDIR, 0755, 0, NULL);
	if (S_ISREG(e->st.st_mode))
		return add_file(p, e->dirfd, e->name, e->path);
	return write_header(p, e->path, AE_IFLNK, 0777, 0, e->link);
}

/* The work folder, sorted by name, depth first. */
static int add_tree(struct producer *p)
{
	/* ours are added first; a benchmark file of that name would duplicate it */
	static const char *const ours[] = { CONTEXT_DOCKERFILE, DOCKERIGNORE, NULL };
	struct walk_options opts = { .links = WALK_KEEP, .skip_top = ours };
	char *msg = NULL;
	int rc = walk_tree(p->context_dir, &opts, add_entry, p, &msg);

	/* a failure of add_entry is already recorded with its own message */
	if (rc < 0)
		prod_fail(p, rc, "%s", msg ? msg : strerror(-rc));
	free(msg);
	return rc < 0 ? p->rc : 0;
}

/* The root .dockerignore: the folder's own (a regular file), if any, plus a
 * line that keeps our Dockerfile out of COPY; without one, ours lists itself too. */
static int add_dockerignore(struct producer *p, int root)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int rc = 0;
	int fd = openat(root, DOCKERIGNORE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

	if (fd < 0 && errno != ENOENT && errno != ELOOP)
		return prod_fail(p, -errno, "%s: %s", DOCKERIGNORE, strerror(errno));
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		if (st.st_size > (off_t)MAX_DOCKERIGNORE) {
			rc = prod_fail(p, -EFBIG, "%s is larger than %u bytes", DOCKERIGNORE,
				       MAX_DOCKERIGNORE);
			goto out;
		}
		text = malloc((size_t)st.st_size + sizeof(CONTEXT_DOCKERFILE) + 2);
		if (!text) {
			rc = prod_fail(p, -ENOMEM, "out of memory");
			goto out;
		}
		while (len < (size_t)st.st_size) {
			ssize_t n = read(fd, text + len, (size_t)st.st_size - len);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				rc = prod_fail(p, n < 0 ? -errno : -EIO, "reading %s: %s",
					       DOCKERIGNORE, n < 0 ? strerror(errno) : "file shrank");
				goto out;
			}
			len += (size_t)n;
		}
		if (len > 0 && text[len - 1] != '\n')
			text[len++] = '\n';
		memcpy(text + len, CONTEXT_DOCKERFILE "\n", sizeof(CONTEXT_DOCKERFILE));
		len += sizeof(CONTEXT_DOCKERFILE);
	} else {
		text = str_printf("%s\n%s\n", CONTEXT_DOCKERFILE, DOCKERIGNORE);
		if (!text) {
			rc = prod_fail(p, -ENOMEM, "out of memory");
			goto out;
		}
		len = strlen(text);
	}
	rc = write_header(p, DOCKERIGNORE, AE_IFREG, 0644, (int64_t)len, NULL);
	if (rc == 0 && (archive_write_data(p->a, text, len) != (la_ssize_t)len || p->write_errno))
		rc = archive_fail(p, DOCKERIGNORE);
	p->bytes += len;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return rc;
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	sigset_t pipe_set;
	int rc = 0, dfd;

	/* A write to the closed pipe gives EPIPE here instead of a SIGPIPE for
	 * the process (a thread-directed signal, dropped when the thread ends). */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);

	p->a = archive_write_new();
	p->ae = archive_entry_new();
	p->buf = malloc(CHUNK);
	if (!p->a || !p->ae || !p->buf) {
		rc = prod_fail(p, -ENOMEM, "out of memory");
		goto out;
	}
	if (archive_write_set_format_pax_restricted(p->a) != ARCHIVE_OK ||
	    archive_write_open2(p->a, p, NULL, pipe_write, NULL, NULL) != ARCHIVE_OK) {
		rc = prod_fail(p, -EIO, "cannot start the build context: %s",
			       archive_error_string(p->a) ? archive_error_string(p->a) : "?");
		goto out;
	}
	/* The Dockerfile first, then .dockerignore, then the work folder. */
	dfd = open(p->context_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = prod_fail(p, -errno, "%s: %s", p->context_dir, strerror(errno));
		goto out;
	}
	rc = add_file(p, AT_FDCWD, p->dockerfile, CONTEXT_DOCKERFILE);
	if (rc == 0)
		rc = add_dockerignore(p, dfd);
	close(dfd);
	if (rc == 0)
		rc = add_tree(p);
	if (rc == 0 && (archive_write_close(p->a) != ARCHIVE_OK || p->write_errno))
		rc = archive_fail(p, "the end of the archive");
out:
	if (p->a) {
		/* After a failure the end-of-archive marker (and whatever libarchive
		 * still buffers) must not reach the daemon: close into the void. */
		p->discard = p->discard || rc != 0;
		archive_write_close(p->a);
		archive_write_free(p->a);
		p->a = NULL;
	}
	if (rc != 0 && rc != -EPIPE) {
		/* Make sure the daemon sees a broken archive, not a short one. */
		char poison[POISON_LEN];

		memset(poison, 0xff, sizeof(poison));
		for (size_t off = 0; off < sizeof(poison);) {
			ssize_t n = write(p->fd, poison + off, sizeof(poison) - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	}
	close(p->fd);
	p->fd = -1;
	archive_entry_free(p->ae);
	p->ae = NULL;
	free(p->buf);
	p->buf = NULL;
	return NULL;
}

/* ---- build, inspect, push ------------------------------------------------------ */

static void write_log(void *ctx, int stream, const char *data, size_t len)
{
	int fd = *(int *)ctx;

	(void)stream;
	while (fd >= 0 && len > 0) {
		ssize_t w = write(fd, data, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		data += w;
		len -= (size_t)w;
	}
}

static void set_errmsg(char **errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_errmsg(char **errmsg, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (!errmsg)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	*errmsg = msg;
}

int image_registry_auth(const char *registry, const char *action, int log_fd, char **auth,
			char **errmsg)
{
	char *host = strndup(registry, strcspn(registry, "/"));
	char *msg = NULL;
	int rc;

	*auth = NULL;
	if (!host) {
		set_errmsg(errmsg, "registry auth %s: out of memory", registry);
		return -ENOMEM;
	}
	rc = docker_registry_auth(host, auth, &msg);
	if (rc == -ENOENT) {
		build_log(log_fd, "%s: no credentials for %s in the Docker config (%s); %sing"
			  " anonymously", action, host, msg ? msg : "no entry", action);
		rc = 0;
	} else if (rc < 0) {
		*errmsg = msg;
		msg = NULL;
	}
	free(msg);
	free(host);
	return rc;
}

void image_registry_auth_free(char *auth)
{
	if (auth)
		explicit_bzero(auth, strlen(auth));
	free(auth);
}

/* Tags ref as <registry>/<repository>:<tag> and pushes it.  On success
 * res->digest is set; on failure *errmsg says why (the image stays built). */
static int push_image(const struct image_build_request *req, const char *ref,
		      struct image_build_result *res, char **errmsg)
{
	const char *registry = req->registry;
	char *repo = str_printf("%s/%s", registry, req->repository);
	char *pushed = repo ? str_printf("%s:%s", repo, req->tag) : NULL;
	char *auth = NULL, *digest = NULL, *msg = NULL;
	int log_fd = req->log_fd;
	int rc = 0;

	if (!repo || !pushed) {
		rc = -ENOMEM;
		goto out;
	}
	build_log(log_fd, "push: %s as %s", ref, pushed);
	rc = docker_image_tag(req->docker, ref, repo, req->tag, &msg);
	if (rc == 0)
		rc = image_registry_auth(registry, "push", log_fd, &auth, &msg);
	if (rc == 0)
		rc = docker_image_push(req->docker, pushed, auth, write_log, &log_fd, &digest, &msg);
	if (rc == 0 && !(res->digest = str_printf("%s@%s", repo, digest)))
		rc = -ENOMEM;
out:
	if (rc == 0)
		build_log(log_fd, "push: pushed %s", res->digest);
	else
		set_errmsg(errmsg, "push to %s failed: %s; %s is built but not pushed, the next"
			   " read builds it again and pushes", registry, msg ? msg : strerror(-rc), ref);
	image_registry_auth_free(auth);
	free(digest);
	free(msg);
	free(pushed);
	free(repo);
	return rc;
}

int image_build(const struct image_build_request *req, struct image_build_result *res,
		char **errmsg)
{
	struct producer p = { .fd = -1 };
	struct docker_image_info info = { 0 };
	char *ref = NULL, *image_id = NULL, *msg = NULL;
	int fds[2] = { -1, -1 };
	pthread_t thread;
	int log_fd = req->log_fd;
	int rc, build_rc;

	memset(res, 0, sizeof(*res));
	if (errmsg)
		*errmsg = NULL;
	if (!req->docker || !req->context_dir || !req->dockerfile || !req->repository || !req->tag) {
		set_errmsg(errmsg, "image build: incomplete request");
		return -EINVAL;
	}
	ref = str_printf("%s:%s", req->repository, req->tag);
	if (!ref) {
		set_errmsg(errmsg, "image build: out of memory");
		return -ENOMEM;
	}

	build_log(req->log_fd, "context: %s plus %s (as %s)", req->context_dir, req->dockerfile,
		  CONTEXT_DOCKERFILE);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		rc = -errno;
		set_errmsg(errmsg, "build context: pipe: %s", strerror(errno));
		goto out;
	}
	p.context_dir = req->context_dir;
	p.dockerfile = req->dockerfile;
	p.fd = fds[1];
	rc = -pthread_create(&thread, NULL, producer_main, &p);
	if (rc != 0) {
		set_errmsg(errmsg, "build context: cannot start a thread: %s", strerror(-rc));
		close(fds[0]);
		close(fds[1]);
		goto out;
	}
	fds[1] = -1;  /* the producer's now */

	build_log(req->log_fd, "build: %s", ref);
	build_rc = docker_image_build(req->docker, ref, req->buildargs, CONTEXT_DOCKERFILE, fds[0],
				      write_log, &log_fd, &image_id, &msg);
	/* An upload that ended early leaves the producer writing: EPIPE ends it. */
	close(fds[0]);
	pthread_join(thread, NULL);
	if (p.rc == 0)
		build_log(req->log_fd, "context: %llu entries, %llu bytes of file data",
			  p.entries, p.bytes);

	if (p.rc != 0 && (build_rc == 0 || p.rc != -EPIPE)) {
		/* the context is the root cause (the daemon saw a broken archive) */
		rc = p.rc;
		set_errmsg(errmsg, "build context for %s: %s", ref,
			   p.errmsg ? p.errmsg : strerror(-p.rc));
		goto out;
	}
	if (build_rc != 0) {
		rc = build_rc;
		if (errmsg) {
			*errmsg = msg;
			msg = NULL;
		}
		goto out;
	}

	rc = docker_image_inspect_info(req->docker, ref, &info, &msg);
	if (rc != 0) {
		set_errmsg(errmsg, "built %s but cannot inspect it: %s", ref,
			   msg ? msg : strerror(-rc));
		goto out;
	}
	if (!image_id && !(image_id = strdup(info.id))) {
		rc = -ENOMEM;
		set_errmsg(errmsg, "image build: out of memory");
		goto out;
	}
	res->size = info.size;
	build_log(req->log_fd, "build: %s is %s, %lld bytes", ref, image_id, (long long)info.size);

	if (req->registry && *req->registry && (rc = push_image(req, ref, res, errmsg)) != 0)
		goto out;

	res->image = ref;
	res->image_id = image_id;
	ref = image_id = NULL;
out:
	if (rc != 0)
		image_build_result_clear(res);
	docker_image_info_clear(&info);
	free(p.errmsg);
	free(ref);
	free(image_id);
	free(msg);
	return rc;
}
