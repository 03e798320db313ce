/*
 * target_image.c - function images (SEBS.md section 7): what identifies one,
 * whether a built one still exists, its JSON document, and how a worker
 * builds one (pipeline steps 2-5, then imagebuild.c).
 *
 * An image's inputs are the code package's plus the platform's dockerfiles
 * folder (Dockerfile.function), and its identity names the base image's ID,
 * the build image tag passed as BASE_IMAGE_BUILDER, the repository and the
 * registry: changing any of them rebuilds the image.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "builder_int.h"
#include "docker.h"
#include "fsutil.h"
#include "imagebuild.h"

static const char *repository_of(const struct builder *b, const struct catalog *cat)
{
	return b->repository ? b->repository : cat->docker_repository;
}

int image_identity(struct builder *b, const struct catalog *cat, const struct cat_package *pkg,
		   char **identity, bool *known_current)
{
	char *base_id = NULL, *current = NULL, *previous = NULL;
	build_images_known(b->images, pkg->runtime->base_image, &base_id, known_current);
	build_image_names(cat, pkg, &current, &previous);
	const char *repo = repository_of(b, cat);
	*identity = str_printf("kind=image;base=%s@%s;builder_image=%s;repository=%s;registry=%s",
			       pkg->runtime->base_image, base_id ? base_id : "unresolved",
			       current ? current : "-", repo ? repo : "-",
			       b->registry ? b->registry : "-");
	free(base_id);
	free(current);
	free(previous);
	return *identity ? 0 : -ENOMEM;
}

char *image_document(const struct record *rec)
{
	char built_at[32] = "";
	struct tm tm;
	time_t t = (time_t)rec->built_at;
	if (gmtime_r(&t, &tm))
		strftime(built_at, sizeof(built_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *doc = json_pack("{s:s?, s:s?, s:s?, s:I, s:s, s:s, s:s?}",
				"image", rec->image, "id", rec->image_id, "digest", rec->digest,
				"size", (json_int_t)rec->size, "built_at", built_at,
				"input_hash", rec->input_hash, "registry", rec->registry);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	char *line = text ? str_printf("%s\n", text) : NULL;
	free(text);
	return line;
}

static void write_log(void *ctx, int stream, const char *data, size_t len)
{
	int fd = *(int *)ctx;
	if (fd >= 0) {
		ssize_t w = write(fd, data, len);
		(void)w;
	}
}

/* The base image must be local: inspect, else pull (it names the failure). */
static int ensure_base_image(struct docker *client, const char *base, int log_fd, char **errmsg)
{
	char *id = NULL, *msg = NULL;
	int rc = docker_image_inspect(client, base, &id, &msg);
	if (rc == -ENOENT) {
		free(msg);
		msg = NULL;
		build_log(log_fd, "pulling base image %s", base);
		rc = docker_image_pull(client, base, write_log, &log_fd, &msg);
	}
	if (rc < 0)
		*errmsg = str_printf("base image %s is not present and cannot be pulled: %s", base,
				     msg ? msg : strerror(-rc));
	free(id);
	free(msg);
	return rc;
}

/* A row whose image vanished from the daemon, inputs unchanged, and a pushed
 * digest: pull it back instead of rebuilding.  0 when that worked. */
static int restore_from_registry(struct builder *b, struct build_ctx *ctx, struct cache_entry *out)
{
	struct job *job = ctx->job;
	struct docker *client = ctx->client;
	int log_fd = ctx->log_fd;
	struct record *rec = record_of(b, job->target);
	pthread_mutex_lock(&b->lock);
	bool same = rec->has_package && rec->digest && strcmp(rec->input_hash, job->input_hash) == 0;
	char *digest = same ? strdup(rec->digest) : NULL;
	char *image = same && rec->image ? strdup(rec->image) : NULL;
	char *registry = same && rec->registry ? strdup(rec->registry) : NULL;
	int64_t size = rec->size;
	double seconds = rec->build_seconds;
	pthread_mutex_unlock(&b->lock);
	int rc = -ENOENT;
	char *msg = NULL, *id = NULL;
	if (digest && image) {
		build_log(log_fd, "image %s is gone from the daemon; pulling %s", image, digest);
		rc = docker_image_pull(client, digest, write_log, &log_fd, &msg);
		char *colon = strrchr(image, ':');
		if (rc == 0 && colon) {
			*colon = '\0';
			rc = docker_image_tag(client, digest, image, colon + 1, &msg);
			*colon = ':';
		}
		if (rc == 0)
			rc = docker_image_inspect(client, image, &id, &msg);
		if (rc == 0) {
			struct cache_key key;
			target_key(b, job->target, &key);
			struct cache_image_info info = { image, id, digest, registry, size };
			rc = cache_publish_image(b->cache, &key, job->input_hash, job->manifest_json,
						 seconds, &info, out);
		}
		if (rc < 0)
			build_log(log_fd, "cannot restore %s (%s): rebuilding", digest,
				  msg ? msg : strerror(-rc));
		else
			build_log(log_fd, "restored %s from %s: no rebuild needed", image, digest);
	}
	free(msg);
	free(id);
	free(digest);
	free(image);
	free(registry);
	return rc;
}

/* The build arguments of Dockerfile.function (SEBS.md section 7); malloc'd
 * strings in args[0..IMAGE_BUILDARGS-1], args[IMAGE_BUILDARGS] NULL. */
#define IMAGE_BUILDARGS 5
static int image_buildargs(const struct catalog *now, const struct cat_package *pkg,
			   char *args[IMAGE_BUILDARGS + 1])
{
	const struct cat_runtime *rt = pkg->runtime;
	char *current = NULL, *previous = NULL;
	build_image_names(now, pkg, &current, &previous);
	args[0] = str_printf("VERSION=%s", rt->version);
	args[1] = str_printf("BASE_IMAGE=%s", rt->base_image);
	args[2] = str_printf("TARGET_ARCHITECTURE=%s", rt->arch);
	args[3] = str_printf("BASE_IMAGE_BUILDER=%s", current ? current : "");
	args[4] = str_printf("BASE_REPOSITORY=%s", now->docker_repository ? now->docker_repository : "");
	args[IMAGE_BUILDARGS] = NULL;
	free(current);
	free(previous);
	for (int i = 0; i < IMAGE_BUILDARGS; i++)
		if (!args[i])
			return -ENOMEM;
	return 0;
}

int image_target_build(struct builder *b, struct build_ctx *ctx, struct cache_entry *out,
		       char **errmsg)
{
	struct job *job = ctx->job;
	struct docker *client = ctx->client;
	const struct cat_package *now_pkg = ctx->now_pkg;
	const struct catalog *now = ctx->now;
	const struct cat_runtime *rt = now_pkg->runtime;
	int log_fd = ctx->log_fd;
	double t0 = builder_now_seconds();
	const char *repo = repository_of(b, now);
	char *dockerfile = str_printf("%s/dockerfiles/%s/%s/Dockerfile.function", now->root,
				      now_pkg->platform->name, rt->language);
	char *tag = image_function_tag(now_pkg->platform->name, now_pkg->benchmark->name,
				       rt->language, rt->version, rt->arch);
	char *workdir = NULL, *version = NULL, *msg = NULL;
	char *args[IMAGE_BUILDARGS + 1] = { NULL };
	struct image_build_result res = { 0 };
	int rc = 0;

	build_log(log_fd, "building image %s:%s for %s/%s/%s", repo ? repo : "?", tag ? tag : "?",
		  now_pkg->platform->name, rt->dirname, now_pkg->benchmark->name);
	if (!dockerfile || !tag) {
		rc = -ENOMEM;
	} else if (!client) {
		rc = -ENOMEM;
		*errmsg = strdup("cannot create a Docker client");
	} else if (!repo) {
		rc = -EINVAL;
		*errmsg = strdup("no repository: set -o repository=NAME or general.docker_repository");
	} else if (!path_is_file(dockerfile)) {
		rc = -ENOENT;
		*errmsg = str_printf("%s is missing", dockerfile);
	} else if ((rc = docker_ping(client, &version, &msg)) < 0) {
		*errmsg = str_printf("Docker daemon at %s does not answer: %s", docker_endpoint(client),
				     msg ? msg : strerror(-rc));
	} else if (restore_from_registry(b, ctx, out) == 0) {
		goto out;
	} else if ((rc = ensure_base_image(client, rt->base_image, log_fd, errmsg)) == 0) {
		/* the base image may have just arrived: its ID is part of the inputs */
		build_images_refresh(b->images, client);
		free(job->manifest_json);
		job->manifest_json = NULL;
		rc = target_check_inputs(b, job->target, job->input_hash, &job->manifest_json, NULL,
					 errmsg);
	}
	if (rc == 0)
		rc = image_buildargs(now, now_pkg, args);
	/* inputs that change during the build: see zip_build */
	for (int attempt = 1; rc == 0; attempt++) {
		if ((rc = cache_make_workdir(b->cache, &workdir)) < 0) {
			*errmsg = str_printf("cannot create a work folder: %s", strerror(-rc));
			break;
		}
		struct pipeline_request preq = { .cat = now, .pkg = now_pkg,
						 .installer = INSTALLER_NONE, .workdir = workdir,
						 .out_fd = -1, .log_fd = log_fd,
						 .cancel_fd = ctx->cancel_fd, .deadline = ctx->deadline,
						 .timeout = ctx->timeout };
		rc = pipeline_prepare(&preq, errmsg);
		if (rc == 0) {
			struct image_build_request req = {
				.docker = client, .context_dir = workdir, .dockerfile = dockerfile,
				.buildargs = (const char *const *)args, .repository = repo, .tag = tag,
				.registry = b->registry, .log_fd = log_fd,
			};
			image_build_result_clear(&res);
			rc = image_build(&req, &res, errmsg);
		}
		if (rc == 0)
			rc = build_cancelled(ctx, errmsg);
		rm_rf(workdir);
		free(workdir);
		workdir = NULL;
		int moved = rc == 0 ? target_inputs_moved(b, ctx, errmsg) : 0;
		if (moved < 0)
			rc = moved;
		if (moved != 1 || attempt > 1) {
			if (moved == 1)
				build_log(log_fd, "warning: the build changes its own inputs; the image"
					  " is recorded as built from them as they are now");
			break;
		}
		build_log(log_fd, "building again from the inputs as they are now");
	}
	if (rc == 0) {
		struct cache_key key;
		target_key(b, job->target, &key);
		struct cache_image_info info = { res.image, res.image_id, res.digest, b->registry, res.size };
		rc = cache_publish_image(b->cache, &key, job->input_hash, job->manifest_json,
					 builder_now_seconds() - t0, &info, out);
		if (rc < 0)
			*errmsg = str_printf("cannot record the image: %s", cache_strerror(rc));
	}
	if (rc == 0)
		build_log(log_fd, "build succeeded in %.2f s: image %s (%s), %s", out->build_seconds,
			  res.image, res.image_id, res.digest ? res.digest : "not pushed");
out:
	if (workdir)
		rm_rf(workdir);
	for (int i = 0; i < IMAGE_BUILDARGS; i++)
		free(args[i]);
	image_build_result_clear(&res);
	free(workdir);
	free(version);
	free(msg);
	free(dockerfile);
	free(tag);
	return rc;
}
