/*
 * buildimage.h - which SeBS build image installs a package's dependencies
 * (../shared/SEBS.md section 6), and its image ID.
 *
 * The image is <docker_repository>:build.<platform>.<language>.<version>-<SeBS_version>;
 * when that is absent locally and cannot be pulled, the same tag with
 * previous_major_version.  The image ID is an input of every package built
 * with it, so rebuilding a build image invalidates its packages.
 *
 * Freshness checks run on every open, so IDs found by inspect are cached for
 * a short while (BUILD_IMAGE_TTL_SECONDS); when the daemon cannot be reached
 * the last known ID is used, so cached packages stay readable while Docker is
 * down (a build then fails with a clear error).
 * Thread-safe.
 */
#ifndef SEBSFS_BUILDIMAGE_H
#define SEBSFS_BUILDIMAGE_H

#include <stdbool.h>

#include "catalog.h"
#include "docker.h"

#define BUILD_IMAGE_TTL_SECONDS 2

struct build_images;

struct build_images *build_images_new(void);
void build_images_free(struct build_images *bi);

/* The two candidate tags of pkg (malloc'd); previous may be NULL when
 * systems.json has no previous_major_version.  -EINVAL when general lacks
 * docker_repository or SeBS_version. */
int build_image_names(const struct catalog *cat, const struct cat_package *pkg,
		      char **current, char **previous);

/* The ID of any image ref (a tag or an ID), through the shared client and
 * the same short-lived cache: 0 and *id (malloc'd), -ENOENT when absent. */
int build_images_id(struct build_images *bi, const char *ref, char **id, char **errmsg);

/* Resolves pkg's build image by inspecting the candidates (no pull) through
 * the shared client: *ref and *id malloc'd.  -ENOENT when neither exists,
 * -ECONNREFUSED/-ENOENT-like errors when the daemon is down and no ID was
 * ever known. */
int build_images_lookup(struct build_images *bi, const struct catalog *cat,
			const struct cat_package *pkg, char **ref, char **id, char **errmsg);

/* Like lookup, through d, but pulls the candidates when absent (current tag
 * first); progress goes to log_fd.  The error names both tags. */
int build_images_ensure(struct build_images *bi, struct docker *d, const struct catalog *cat,
			const struct cat_package *pkg, int log_fd, char **ref, char **id,
			char **errmsg);

#endif
