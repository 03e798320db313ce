/*
 * target_zip.c - code packages: what identifies one and how a worker builds
 * one (pipeline steps 2-7, then publish into the cache).
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builder_int.h"
#include "docker.h"
#include "fsutil.h"

int zip_identity(struct builder *b, const struct catalog *cat, const struct cat_package *pkg,
		 char **identity, bool *current)
{
	if (current)
		*current = true;
	if (b->installer != INSTALLER_DOCKER || !catalog_has_build_image(cat, pkg)) {
		*identity = str_printf("builder=%s", installer_name(b->installer));
		return *identity ? 0 : -ENOMEM;
	}
	char *ref = NULL, *id = NULL;
	int rc = build_images_lookup(b->images, cat, pkg, &ref, &id, current);
	/* unresolved: never equal to a built package's identity, so a build
	 * runs and reports why the image cannot be had */
	*identity = rc == 0 ? str_printf("builder=docker;image=%s@%s", ref, id)
			    : strdup("builder=docker;image=unresolved");
	free(ref);
	free(id);
	return *identity ? 0 : -ENOMEM;
}

/* For the docker builder: makes sure the daemon answers and the build image
 * is here (pulling it if need be), then re-checks the inputs so the recorded
 * input hash names the image actually used. */
static int prepare_build_image(struct builder *b, struct build_ctx *ctx, char **image,
			       char **id, char **errmsg)
{
	char *version = NULL, *msg = NULL;
	if (!ctx->client) {
		*errmsg = strdup("cannot create a Docker client");
		return -ENOMEM;
	}
	int rc = docker_ping(ctx->client, &version, &msg);
	if (rc < 0)
		*errmsg = str_printf("Docker daemon at %s does not answer: %s",
				     docker_endpoint(ctx->client), msg ? msg : strerror(-rc));
	else
		rc = build_images_ensure(b->images, ctx->client, ctx->now, ctx->now_pkg, ctx->log_fd,
					 image, id, errmsg);
	if (rc == 0) {
		build_log(ctx->log_fd, "build image %s (%s)", *image, *id);
		free(ctx->job->manifest_json);
		ctx->job->manifest_json = NULL;
		rc = target_check_inputs(b, ctx->job->target, ctx->job->input_hash,
					 &ctx->job->manifest_json, NULL, errmsg);
	}
	free(version);
	free(msg);
	return rc;
}

/* One run of the pipeline into a new temp file: *tmp (malloc'd) and *fd
 * (open read-write) on success. */
static int build_once(struct builder *b, struct build_ctx *ctx, const char *image,
		      const char *image_id, struct pipeline_result *result, char **tmp, int *fd,
		      char **errmsg)
{
	char *workdir = NULL;
	int rc = cache_make_workdir(b->cache, &workdir);
	*fd = -1;
	if (rc < 0) {
		*errmsg = str_printf("cannot create a work folder: %s", strerror(-rc));
	} else if (!(*tmp = cache_tmp_path(b->cache, ".zip"))) {
		rc = -ENOMEM;
	} else if ((*fd = open(*tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		rc = -errno;
		*errmsg = str_printf("cannot create %s: %s", *tmp, strerror(errno));
	} else {
		struct pipeline_request req = {
			.cat = ctx->now, .pkg = ctx->now_pkg, .installer = b->installer,
			.installer_note = b->installer_note, .docker = ctx->client,
			.build_image = image, .build_image_id = image_id,
			.layers = b->layers, .result = result,
			.container_labels = (const char *const *)b->container_labels,
			.workdir = workdir, .out_fd = *fd,
			.log_fd = ctx->log_fd, .cancel_fd = ctx->cancel_fd,
			.deadline = ctx->deadline, .timeout = ctx->timeout,
		};
		rc = pipeline_build_zip(&req, errmsg);
	}
	if (rc == 0)
		rc = build_cancelled(ctx, errmsg);
	if (workdir)
		rm_rf(workdir);
	free(workdir);
	return rc;
}

int zip_build(struct builder *b, struct build_ctx *ctx, struct cache_entry *out, char **errmsg)
{
	struct cache_key key;
	target_key(b, ctx->job->target, &key);
	double t0 = builder_now_seconds();
	char *tmp = NULL, *image = NULL, *image_id = NULL;
	struct pipeline_result result = { 0 };
	int fd = -1, rc = 0;

	if (b->installer == INSTALLER_DOCKER && catalog_has_build_image(ctx->now, ctx->now_pkg))
		rc = prepare_build_image(b, ctx, &image, &image_id, errmsg);
	/* Inputs that change while the build runs: once, it may be someone's
	 * edit, so the build runs again from the new inputs; twice, it is the
	 * build itself (an init.sh writing into its own folder), and the package
	 * is recorded under the inputs as they are after it, so that reading it
	 * does not rebuild it every time. */
	for (int attempt = 1; rc == 0; attempt++) {
		memset(&result, 0, sizeof(result));
		rc = build_once(b, ctx, image, image_id, &result, &tmp, &fd, errmsg);
		int moved = rc == 0 ? target_inputs_moved(b, ctx, errmsg) : 0;
		if (moved < 0)
			rc = moved;
		if (moved != 1 || attempt > 1) {
			if (moved == 1)
				build_log(ctx->log_fd, "warning: the build changes its own inputs; the package"
					  " is recorded as built from them as they are now");
			break;
		}
		build_log(ctx->log_fd, "building again from the inputs as they are now");
		close(fd);
		fd = -1;
		unlink(tmp);
		free(tmp);
		tmp = NULL;
	}
	if (rc == 0) {
		struct cache_deps deps = { result.deps_hash, result.deps_reused };
		rc = cache_publish(b->cache, &key, tmp, ctx->job->input_hash, ctx->job->manifest_json,
				   builder_now_seconds() - t0, result.has_layer ? &deps : NULL, out);
		if (rc < 0) {
			*errmsg = str_printf("cannot publish the package: %s", cache_strerror(rc));
		} else {
			build_log(ctx->log_fd, "build succeeded in %.2f s: %lld bytes, sha256 %s",
				  out->build_seconds, (long long)out->size, out->sha256);
			ctx->package_fd = fd;
			fd = -1;
		}
	} else if (tmp) {
		unlink(tmp);
	}
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(image);
	free(image_id);
	return rc;
}
