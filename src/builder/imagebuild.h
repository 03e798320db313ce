/*
 * imagebuild.h - build (and push) a function image: SEBS.md section 7.
 *
 * The build context is the prepared work folder (pipeline steps 2-5) plus the
 * platform's Dockerfile.function, written as a tar stream with libarchive by a
 * producer thread into a pipe that docker_image_build() uploads: no copy of
 * the context is held in memory or on disk.  Entries are sorted with fixed
 * metadata, so the same context gives the same tar bytes.  The work folder is
 * walked under the WALK_KEEP policy of walk.h: a symlink that is absolute or
 * leads out of the folder, a loop, a FIFO, socket or device fails the build.
 * The image is tagged <repository>:<tag>, the tag as SeBS names it
 * (image_function_tag); with a registry, it is also tagged <registry>/<repository>:<same tag> and
 * pushed.  A failed push fails the build (the registry may only be down for
 * a while): the image stays built and tagged in the daemon, nothing is
 * recorded, and the next open builds again (from the daemon's layer cache)
 * and pushes.  Recording it without a digest would leave it unpushed until
 * an input changed.
 */
#ifndef SEBSFS_IMAGEBUILD_H
#define SEBSFS_IMAGEBUILD_H

#include <stdbool.h>
#include <stdint.h>

struct docker;

struct image_build_request {
	struct docker *docker;
	const char *context_dir;     /* prepared work folder */
	const char *dockerfile;      /* Dockerfile.function on disk */
	const char *const *buildargs;/* "NAME=value", NULL-terminated */
	const char *repository;      /* e.g. "sebsfs/example-benchmarks" */
	const char *tag;             /* e.g. "function.aws.110.dynamic-html.python-3.11-x64-1.2.1" */
	const char *registry;        /* "host[:port][/path]" or NULL: no push */
	int log_fd;                  /* build output and sebsfs lines */
};

struct image_build_result {
	char *image;      /* "<repository>:<tag>" */
	char *image_id;   /* "sha256:..." */
	char *digest;     /* "<registry>/<repository>@sha256:..." or NULL (no registry) */
	int64_t size;     /* bytes, from inspect */
};

/* The X-Registry-Auth value for registry ("host[:port][/path]") from the
 * Docker config, as docker_registry_auth finds it for the host, to push or
 * pull (action, "push" or "pull").  0 with *auth malloc'd; 0 with *auth NULL
 * when the config has none (anonymous, which the log line in log_fd says);
 * else -errno and *errmsg (a helper that fails, a broken config).  Free
 * *auth with image_registry_auth_free, which wipes it. */
int image_registry_auth(const char *registry, const char *action, int log_fd, char **auth,
			char **errmsg);
void image_registry_auth_free(char *auth);

/* Builds (and pushes).  0 or -errno; *errmsg (malloc'd) says why on failure. */
int image_build(const struct image_build_request *req, struct image_build_result *res,
		char **errmsg);
void image_build_result_clear(struct image_build_result *res);

/* A Docker tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
#define IMAGE_TAG_MAX 128

struct image_tag_parts {
	const char *platform, *benchmark, *language, *version;
	const char *arch;          /* "x64" or "arm64" */
	const char *prefix;        /* -o image_tag_prefix=, NULL or "" for none */
	const char *sebs_version;  /* general.SeBS_version; NULL gives "unknown" */
};

/* SeBS's function image tag (its Config.benchmark_image_tag), malloc'd:
 * function.<platform>.<benchmark>.<language>-<version>-<arch>[-<prefix>]-<SeBS_version>.
 * Not checked: see image_function_name. */
char *image_function_tag(const struct image_tag_parts *parts);

/* The full name the image is tagged (and, with a registry, pushed) under,
 * "[<registry>/]<repository>:<tag>" (malloc'd into *name).  -EINVAL with
 * *errmsg when there is no repository or the tag is not a valid Docker tag
 * (too long, or a character a tag cannot hold); -ENOMEM. */
int image_function_name(const struct image_tag_parts *parts, const char *repository,
			const char *registry, char **name, char **errmsg);

/* Whether s is a valid Docker tag (also what -o image_tag_prefix= accepts). */
bool image_tag_valid(const char *s);

#endif
