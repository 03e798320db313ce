/*
 * imagebuild.c - build (and push) a function image: SEBS.md section 7.
 *
 * DESIGN: the build context never exists as a file or a buffer.  tarstream.h
 * writes the prepared work folder as a pax tar stream with normalized
 * metadata into a pipe from a producer thread (so the same folder always
 * gives the same tar bytes); the calling thread hands the pipe's read end to
 * docker_image_build(), which uploads it with chunked encoding.  The
 * Dockerfile is added first, as CONTEXT_DOCKERFILE, a name no benchmark
 * uses, then a .dockerignore that lists it (appended to the folder's own
 * .dockerignore when there is one), so that `COPY . function/` does not copy
 * sebsfs's Dockerfile into the image.  tarstream.h says how a failure on
 * either side of the pipe ends the other.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "docker.h"
#include "buildlog.h"
#include "fsutil.h"
#include "imagebuild.h"
#include "pipeline.h"
#include "tarstream.h"
#include "walk.h"

/* The Dockerfile's name inside the context: cannot collide with a benchmark's files. */
#define CONTEXT_DOCKERFILE ".sebsfs.Dockerfile.function"
#define DOCKERIGNORE ".dockerignore"
#define MAX_DOCKERIGNORE (1u << 20)

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

/* ---- the build context: Dockerfile and .dockerignore first -------------------- */

struct context_head {
	const char *dockerfile;
};

/* The root .dockerignore: the folder's own (a regular file), if any, plus a
 * line that keeps our Dockerfile out of COPY; without one, ours lists itself too. */
static int add_dockerignore(struct tarstream *ts, int root)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int rc = 0;
	int fd = openat(root, DOCKERIGNORE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

	if (fd < 0 && errno != ENOENT && errno != ELOOP)
		return tarstream_fail(ts, -errno, "%s: %s", DOCKERIGNORE, strerror(errno));
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		if (st.st_size > (off_t)MAX_DOCKERIGNORE) {
			rc = tarstream_fail(ts, -EFBIG, "%s is larger than %u bytes", DOCKERIGNORE,
					    MAX_DOCKERIGNORE);
			goto out;
		}
		text = malloc((size_t)st.st_size + sizeof(CONTEXT_DOCKERFILE) + 2);
		if (!text) {
			rc = tarstream_fail(ts, -ENOMEM, "out of memory");
			goto out;
		}
		while (len < (size_t)st.st_size) {
			ssize_t n = read(fd, text + len, (size_t)st.st_size - len);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				rc = tarstream_fail(ts, n < 0 ? -errno : -EIO, "reading %s: %s",
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
			rc = tarstream_fail(ts, -ENOMEM, "out of memory");
			goto out;
		}
		len = strlen(text);
	}
	rc = tarstream_add_data(ts, DOCKERIGNORE, text, len);
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return rc;
}

/* The Dockerfile first, then .dockerignore, then the work folder. */
static int add_context_head(struct tarstream *ts, int dirfd, void *ctx)
{
	const struct context_head *h = ctx;
	int rc = tarstream_add_file(ts, AT_FDCWD, h->dockerfile, CONTEXT_DOCKERFILE);

	return rc == 0 ? add_dockerignore(ts, dirfd) : rc;
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
	static const char *const ours[] = { CONTEXT_DOCKERFILE, DOCKERIGNORE, NULL };
	struct context_head head = { 0 };
	/* ours are added first; a benchmark file of that name would duplicate them */
	struct tarstream_options topts = { .label = "build context", .skip_top = ours,
					   .head = add_context_head, .head_ctx = &head };
	struct tarstream_stats stats = { 0 };
	struct tarstream *ts = NULL;
	struct docker_image_info info = { 0 };
	char *ref = NULL, *image_id = NULL, *msg = NULL, *context_msg = NULL;
	int context_fd = -1;
	int log_fd = req->log_fd;
	int rc, build_rc, context_rc;

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
	head.dockerfile = req->dockerfile;
	topts.dir = req->context_dir;
	rc = tarstream_start(&topts, &ts, &context_fd, &msg);
	if (rc != 0) {
		set_errmsg(errmsg, "%s", msg ? msg : strerror(-rc));
		goto out;
	}

	build_log(req->log_fd, "build: %s", ref);
	build_rc = docker_image_build(req->docker, ref, req->buildargs, CONTEXT_DOCKERFILE,
				      context_fd, write_log, &log_fd, &image_id, &msg);
	/* An upload that ended early leaves the producer writing: EPIPE ends it. */
	close(context_fd);
	context_rc = tarstream_finish(ts, &stats, &context_msg);
	if (context_rc == 0)
		build_log(req->log_fd, "context: %llu entries, %llu bytes of file data",
			  stats.entries, stats.bytes);

	if (context_rc != 0 && (build_rc == 0 || context_rc != -EPIPE)) {
		/* the context is the root cause (the daemon saw a broken archive) */
		rc = context_rc;
		set_errmsg(errmsg, "build context for %s: %s", ref,
			   context_msg ? context_msg : strerror(-context_rc));
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
	free(context_msg);
	free(ref);
	free(image_id);
	free(msg);
	return rc;
}
