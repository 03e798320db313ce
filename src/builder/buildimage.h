/*
 * buildimage.h - which SeBS build image installs a package's dependencies
 * (../shared/SEBS.md section 6), and its image ID.
 *
 * The image is <docker_repository>:build.<platform>.<language>.<version>-<SeBS_version>;
 * when that is absent locally and cannot be pulled, the same tag with
 * previous_major_version.  The image ID is an input of every package built
 * with it, so rebuilding a build image invalidates its packages.
 *
 * Freshness checks run in FUSE request threads, which must never wait on the
 * network: they only read what is known of an image (build_images_known),
 * and every ref they ask about is remembered.  A checker or build thread
 * brings what is remembered up to date (build_images_refresh, or an inspect
 * in build_images_ensure).  Knowledge older than BUILD_IMAGE_TTL_SECONDS is
 * "not current": a freshness check that depends on it hands the decision to
 * a thread that may ask the daemon.  A daemon that does not answer is
 * remembered as such for DAEMON_DOWN_SECONDS: refreshes then ask nothing and
 * the last known IDs stand, so cached packages stay readable while Docker is
 * down or hung (a build then fails with a clear error).
 * Thread-safe.
 */
#ifndef SEBSFS_BUILDIMAGE_H
#define SEBSFS_BUILDIMAGE_H

#include <stdbool.h>

#include "catalog.h"
#include "docker.h"

#define BUILD_IMAGE_TTL_SECONDS 2
#define DAEMON_DOWN_SECONDS 10

struct build_images;

struct build_images *build_images_new(void);
void build_images_free(struct build_images *bi);

/* The two candidate tags of pkg (malloc'd); previous may be NULL when
 * systems.json has no previous_major_version.  -EINVAL when general lacks
 * docker_repository or SeBS_version. */
int build_image_names(const struct catalog *cat, const struct cat_package *pkg,
		      char **current, char **previous);

enum image_known { IMAGE_KNOWN_PRESENT, IMAGE_KNOWN_ABSENT, IMAGE_UNKNOWN };

/* What is known of ref (a tag or an ID) without asking anyone: PRESENT with
 * *id (malloc'd; id may be NULL), ABSENT, or UNKNOWN.  *current (may be NULL)
 * is false when the knowledge is missing or older than the TTL; the ref is then
 * remembered for the next build_images_refresh. */
enum image_known build_images_known(struct build_images *bi, const char *ref, char **id,
				    bool *current);

/* pkg's build image from what is known (no network): the first candidate
 * known to be present, *ref and *id malloc'd; -ENOENT when none is.  *current
 * is false when any candidate's knowledge is not current. */
int build_images_lookup(struct build_images *bi, const struct catalog *cat,
			const struct cat_package *pkg, char **ref, char **id, bool *current);

/* Asks the daemon, through d, about every remembered ref whose knowledge is
 * not current.  Asks nothing while the daemon is remembered as not answering.
 * 0, or -errno of the daemon (then it is remembered as not answering). */
int build_images_refresh(struct build_images *bi, struct docker *d);

/* Like lookup, through d, but pulls the candidates when absent (current tag
 * first); progress goes to log_fd.  The error names both tags. */
int build_images_ensure(struct build_images *bi, struct docker *d, const struct catalog *cat,
			const struct cat_package *pkg, int log_fd, char **ref, char **id,
			char **errmsg);

#endif
