/*
 * target_zip.c - code packages: what identifies one and how a worker builds
 * one (pipeline steps 2-7, then publish into the cache).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builder_int.h"
#include "fsutil.h"

int zip_identity(struct builder *b, const struct cat_package *pkg, char **identity)
{
	if (b->installer != INSTALLER_DOCKER || !catalog_has_build_image(b->cat, pkg)) {
		*identity = str_printf("builder=%s", installer_name(b->installer));
		return *identity ? 0 : -ENOMEM;
	}
	char *ref = NULL, *id = NULL;
	int rc = build_images_lookup(b->images, b->cat, pkg, &ref, &id, NULL);
	/* unresolved: never equal to a built package's identity, so a build
	 * runs and reports why the image cannot be had */
	*identity = rc == 0 ? str_printf("builder=docker;image=%s@%s", ref, id)
			    : strdup("builder=docker;image=unresolved");
	free(ref);
	free(id);
	return *identity ? 0 : -ENOMEM;
}

/* For the docker builder: makes sure the build image is here (pulling it if
 * need be), then re-checks the inputs so the recorded input hash names the
 * image actually used. */
static int prepare_build_image(struct builder *b, struct job *job, struct docker *client,
			       const struct catalog *now, const struct cat_package *now_pkg,
			       int log_fd, char **image, char **errmsg)
{
	char *id = NULL;
	if (!client) {
		*errmsg = strdup("cannot create a Docker client");
		return -ENOMEM;
	}
	int rc = build_images_ensure(b->images, client, now, now_pkg, log_fd, image, &id, errmsg);
	if (rc == 0) {
		build_log(log_fd, "build image %s (%s)", *image, id);
		free(job->manifest_json);
		job->manifest_json = NULL;
		rc = target_check_inputs(b, job->target, job->input_hash, &job->manifest_json);
		if (rc < 0)
			*errmsg = str_printf("cannot read inputs: %s", strerror(-rc));
	}
	free(id);
	return rc;
}

int zip_build(struct builder *b, struct job *job, struct docker *client,
	      const struct catalog *now, const struct cat_package *now_pkg, int log_fd,
	      struct cache_entry *out, char **errmsg)
{
	struct cache_key key;
	target_key(b, job->target, &key);
	double t0 = builder_now_seconds();
	char *workdir = NULL, *tmp = NULL, *image = NULL;
	int out_fd = -1, rc = 0;

	if (b->installer == INSTALLER_DOCKER && catalog_has_build_image(now, now_pkg))
		rc = prepare_build_image(b, job, client, now, now_pkg, log_fd, &image, errmsg);
	if (rc < 0) {
		/* errmsg says why */
	} else if ((rc = cache_make_workdir(b->cache, &workdir)) < 0) {
		*errmsg = str_printf("cannot create a work folder: %s", strerror(-rc));
	} else if (!(tmp = cache_tmp_path(b->cache, ".zip"))) {
		rc = -ENOMEM;
	} else if ((out_fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		rc = -errno;
		*errmsg = str_printf("cannot create %s: %s", tmp, strerror(errno));
	} else {
		struct pipeline_request req = {
			.cat = now, .pkg = now_pkg, .installer = b->installer,
			.installer_note = b->installer_note, .docker = client, .build_image = image,
			.workdir = workdir, .out_fd = out_fd, .log_fd = log_fd, .cancel_fd = -1,
		};
		rc = pipeline_build_zip(&req, errmsg);
		if (close(out_fd) < 0 && rc == 0)
			rc = -errno;
		out_fd = -1;
	}
	if (rc == 0) {
		rc = cache_publish(b->cache, &key, tmp, job->input_hash, job->manifest_json,
				   builder_now_seconds() - t0, out);
		if (rc < 0)
			*errmsg = str_printf("cannot publish the package: %s", strerror(-rc));
		else
			build_log(log_fd, "build succeeded in %.2f s: %lld bytes, sha256 %s",
				  out->build_seconds, (long long)out->size, out->sha256);
	} else if (tmp) {
		unlink(tmp);
	}
	if (out_fd >= 0)
		close(out_fd);
	if (workdir)
		rm_rf(workdir);
	free(workdir);
	free(tmp);
	free(image);
	return rc;
}
