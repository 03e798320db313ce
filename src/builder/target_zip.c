/*
 * target_zip.c - code packages, a kind of target (target.h): what identifies
 * one, how a worker builds one (pipeline steps 2-7 into a temp file) and
 * publishes it into the cache.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "buildlog.h"
#include "docker.h"
#include "fsutil.h"
#include "log.h"
#include "remotecache.h"
#include "target.h"

struct target_result {
	char *tmp;                  /* the package, under the cache's tmp/ */
	int fd;                     /* open read-write on it */
	struct pipeline_result deps;
	bool remote;                /* fetched from the remote cache, not built */
};

/* "platform/runtime/benchmark.zip" (or .jar), its path in the mount, for
 * messages; malloc'd or NULL. */
static char *zip_what(const struct target_build *tb)
{
	const struct cat_runtime *rt = tb->now_pkg->runtime;
	return str_printf("%s/%s/%s%s", tb->key.platform, rt->dirname, tb->key.benchmark,
			  rt->package_suffix ? rt->package_suffix : ".zip");
}

/* Tries the remote cache before building: 1 with r->tmp and r->fd set
 * when it had the package, -ECANCELED when the build was cancelled
 * meanwhile, else 0 (the build goes on). */
static int zip_fetch_remote(struct target_build *tb, struct target_result *r)
{
	char *what = zip_what(tb);
	char *tmp = NULL;
	int got = remote_cache_fetch(tb->env->remote, tb->env->cache, tb->input_hash, tb->log_fd,
				     tb->cancel_fd, what ? what : tb->key.benchmark, &tmp);
	free(what);
	if (got != 1)
		return got == -ECANCELED ? got : 0;
	r->fd = open(tmp, O_RDWR | O_CLOEXEC);
	if (r->fd < 0) {
		build_log(tb->log_fd, "cannot open the fetched package %s: %s; building here", tmp,
			  strerror(errno));
		unlink(tmp);
		free(tmp);
		return 0;
	}
	r->tmp = tmp;
	r->remote = true;
	return 1;
}

/* What installs the package's dependencies. */
static int zip_installer_identity(const struct target_env *env, const struct catalog *cat,
				  const struct cat_package *pkg, char **identity, bool *current)
{
	if (current)
		*current = true;
	if (env->installer == INSTALLER_HOST && catalog_has_build_image(cat, pkg)) {
		/* the host's tools, their versions and configuration make the
		 * package (and one cross-installed differs from one that was
		 * not): another machine's package is the same only when they
		 * are.  An open (current set) never runs the tools: it takes
		 * their remembered versions or reports them not current, and
		 * the checker or the build learns them. */
		char *host = NULL;
		bool known = true;
		int rc = pipeline_host_identity(pkg->runtime, current == NULL, &host, &known);
		if (current)
			*current = known;
		*identity = rc == 0 ? str_printf("builder=host;%s", host) : NULL;
		free(host);
		return *identity ? 0 : -ENOMEM;
	}
	if (env->installer != INSTALLER_DOCKER || !catalog_has_build_image(cat, pkg)) {
		*identity = str_printf("builder=%s", installer_name(env->installer));
		return *identity ? 0 : -ENOMEM;
	}
	char *ref = NULL, *id = NULL;
	int rc = build_images_lookup(env->images, cat, pkg, &ref, &id, current);
	/* unresolved: never equal to a built package's identity, so a build
	 * runs and reports why the image cannot be had */
	*identity = rc == 0 ? str_printf("builder=docker;image=%s@%s", ref, id)
			    : strdup("builder=docker;image=unresolved");
	free(ref);
	free(id);
	return *identity ? 0 : -ENOMEM;
}

/* The installer, and the variant: a variant's package is built from the
 * same inputs as the default one's, differently. */
static int zip_identity(const struct target_env *env, const struct catalog *cat,
			const struct cat_package *pkg, char **identity, bool *current)
{
	int rc = zip_installer_identity(env, cat, pkg, identity, current);
	if (rc == 0 && pkg->runtime->variant) {
		char *with = str_printf("%s;variant=%s", *identity, pkg->runtime->variant);
		free(*identity);
		*identity = with;
		rc = with ? 0 : -ENOMEM;
	}
	return rc;
}

/* For the docker builder: makes sure the daemon answers and the build image
 * is here (pulling it if need be), then re-checks the inputs so the recorded
 * input hash names the image actually used. */
static int prepare_build_image(struct target_build *tb, char **image, char **id,
			       char **errmsg)
{
	char *version = NULL, *msg = NULL;
	if (!tb->client) {
		*errmsg = strdup("cannot create a Docker client");
		return -ENOMEM;
	}
	int rc = docker_ping(tb->client, &version, &msg);
	if (rc < 0)
		*errmsg = str_printf("Docker daemon at %s does not answer: %s",
				     docker_endpoint(tb->client), msg ? msg : strerror(-rc));
	else
		rc = build_images_ensure(tb->env->images, tb->client, tb->now, tb->now_pkg,
					 tb->log_fd, image, id, errmsg);
	if (rc == 0) {
		build_log(tb->log_fd, "build image %s (%s)", *image, *id);
		rc = tb->recheck_inputs(tb, errmsg);
	}
	free(version);
	free(msg);
	return rc;
}

/* One run of the pipeline into a new temp file: *tmp (malloc'd) and *fd
 * (open read-write) on success. */
static int build_once(struct target_build *tb, const char *image, const char *image_id,
		      struct pipeline_result *result, char **tmp, int *fd, char **errmsg)
{
	const struct target_env *env = tb->env;
	char *workdir = NULL;
	int rc = cache_make_workdir(env->cache, &workdir);
	*fd = -1;
	if (rc < 0) {
		*errmsg = str_printf("cannot create a work folder: %s", strerror(-rc));
	} else if (!(*tmp = cache_tmp_path(env->cache, ".zip"))) {
		rc = -ENOMEM;
	} else if ((*fd = open(*tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		rc = -errno;
		*errmsg = str_printf("cannot create %s: %s", *tmp, strerror(errno));
	} else {
		struct pipeline_request req = {
			.cat = tb->now, .pkg = tb->now_pkg, .installer = env->installer,
			.installer_note = env->installer_note, .docker = tb->client,
			.build_image = image, .build_image_id = image_id,
			.layers = env->layers, .result = result,
			.container_labels = env->container_labels,
			.workdir = workdir, .out_fd = *fd,
			.log_fd = tb->log_fd, .cancel_fd = tb->cancel_fd,
			.deadline = tb->deadline, .timeout = tb->timeout,
		};
		rc = pipeline_build_zip(&req, errmsg);
	}
	if (rc == 0)
		rc = target_cancelled(tb, errmsg);
	if (workdir)
		rm_rf(workdir);
	free(workdir);
	return rc;
}

static void zip_result_free(struct target_result *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	if (r->tmp)
		unlink(r->tmp); /* a published one was renamed away: ENOENT */
	free(r->tmp);
	free(r);
}

static int zip_build(struct target_build *tb, struct target_result **out, char **errmsg)
{
	char *image = NULL, *image_id = NULL;
	struct target_result *r = calloc(1, sizeof(*r));
	int rc = r ? 0 : -ENOMEM;
	*out = NULL;
	if (r)
		r->fd = -1;

	if (rc == 0 && tb->env->installer == INSTALLER_DOCKER &&
	    catalog_has_build_image(tb->now, tb->now_pkg))
		rc = prepare_build_image(tb, &image, &image_id, errmsg);
	/* The remote cache is asked once the key is final (the docker
	 * builder's identity names the build image resolved just above). */
	if (rc == 0 && remote_cache_reads(tb->env->remote)) {
		int got = zip_fetch_remote(tb, r);
		if (got == 1)
			goto out;
		if (got < 0 && (rc = target_cancelled(tb, errmsg)) == 0)
			rc = got;
	}
	/* Inputs that change while the build runs: it may be someone's edit, so
	 * the build runs again from the new inputs, up to MAX_BUILD_RUNS times
	 * in all.  Inputs that still move during the last run are the build's
	 * own doing (an init.sh writing into its own folder does it every
	 * time; an editor saving three times, each during a run, is unlikely),
	 * and the package is recorded under the inputs as they are after it,
	 * so that reading it does not rebuild it every time. */
	for (int attempt = 1; rc == 0; attempt++) {
		memset(&r->deps, 0, sizeof(r->deps));
		rc = build_once(tb, image, image_id, &r->deps, &r->tmp, &r->fd, errmsg);
		int moved = rc == 0 ? tb->inputs_moved(tb, errmsg) : 0;
		if (moved < 0)
			rc = moved;
		if (moved != 1 || attempt >= MAX_BUILD_RUNS) {
			if (moved == 1)
				build_log(tb->log_fd, "warning: the build changes its own inputs; the package"
					  " is recorded as built from them as they are now");
			break;
		}
		build_log(tb->log_fd, "building again from the inputs as they are now");
		close(r->fd);
		r->fd = -1;
		unlink(r->tmp);
		free(r->tmp);
		r->tmp = NULL;
	}
out:
	free(image);
	free(image_id);
	if (rc < 0) {
		zip_result_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* Records the unzipped size of the package just published (out) and, when
 * it is past its platform's limit, says so in the build log.  Neither can
 * fail the build: a size that cannot be read is logged and stays unknown
 * (no xattr, no check), and strict mode refuses opens, not builds, so the
 * package is cached either way. */
static void note_size(struct target_build *tb, int fd, struct cache_entry *out)
{
	const struct target_env *env = tb->env;
	char *why = NULL;
	int64_t unzipped = -1;
	int rc = zip_unzipped_size(fd, &unzipped, &why);
	if (rc == 0)
		rc = cache_set_unzipped_size(env->cache, &tb->key, out->sha256, unzipped);
	if (rc < 0) {
		build_log(tb->log_fd, "warning: cannot record the unzipped size: %s",
			  why ? why : strerror(-rc));
		free(why);
		return;
	}
	out->unzipped_size = unzipped;
	build_log(tb->log_fd, "size: %lld bytes zipped, %lld bytes unzipped",
		  (long long)out->size, (long long)unzipped);
	char line[SIZE_WARNING_MAX];
	if (env->size_limits_mode == SIZE_LIMITS_OFF ||
	    !size_limits_check(env->size_limits, tb->key.platform, out->size, unzipped, line,
			       sizeof(line)))
		return;
	if (env->size_limits_mode == SIZE_LIMITS_STRICT)
		build_log(tb->log_fd, "size limit: %s; the package is cached, but opening it fails"
			  " with EFBIG (%s) under size_limits=strict", line, strerror(EFBIG));
	else
		build_log(tb->log_fd, "size warning: %s", line);
}

/* The builder identity recorded with the inputs (the manifest's head). */
static char *manifest_identity(const char *manifest_json)
{
	json_error_t jerr;
	json_t *head = manifest_json ? json_loadb(manifest_json, strlen(manifest_json),
						  JSON_DISABLE_EOF_CHECK, &jerr) : NULL;
	const char *identity = json_string_value(json_object_get(head, "identity"));
	char *copy = strdup(identity ? identity : "");
	json_decref(head);
	return copy;
}

/* Hands the package just built to the remote cache's background push. */
static void push_remote(struct target_build *tb, const struct cache_entry *out)
{
	const struct cache_key *k = &tb->key;
	char *what = zip_what(tb);
	char *identity = manifest_identity(*tb->manifest_json);
	if (what && identity) {
		/* the runtime as the mount names its folder: variant and arch;
		 * the file as the mount names it: .jar for java */
		struct regcache_package p = { .platform = k->platform,
					      .runtime = tb->now_pkg->runtime->dirname,
					      .benchmark = k->benchmark,
					      .filename = strrchr(what, '/') + 1,
					      .builder = identity,
					      .sha256 = out->sha256, .size = out->size,
					      .created = out->built_at };
		remote_cache_push(tb->env->remote, tb->input_hash, out->path, &p, what);
		build_log(tb->log_fd, "pushing to the remote cache in the background (tag %s)",
			  tb->input_hash);
	} else {
		log_warn("%s: cannot push to the remote cache: out of memory", k->benchmark);
	}
	free(what);
	free(identity);
}

static int zip_publish(struct target_build *tb, struct target_result *r,
		       struct cache_entry *out, char **errmsg)
{
	struct cache_deps deps = { r->deps.deps_hash, r->deps.deps_reused };
	int rc = cache_publish(tb->env->cache, &tb->key, r->tmp, tb->input_hash, *tb->manifest_json,
			       target_now_seconds() - tb->started, r->deps.has_layer ? &deps : NULL,
			       r->remote, out);
	if (rc < 0) {
		*errmsg = str_printf("cannot publish the package: %s", cache_strerror(rc));
		return rc;
	}
	note_size(tb, r->fd, out);
	/* "build succeeded" ends every log of a package that is served */
	build_log(tb->log_fd, "build succeeded in %.2f s%s: %lld bytes, sha256 %s",
		  out->build_seconds, r->remote ? " (fetched from the remote cache)" : "",
		  (long long)out->size, out->sha256);
	if (!r->remote && remote_cache_writes(tb->env->remote))
		push_remote(tb, out);
	/* the descriptor the package was written through: an eviction racing
	 * with the reply cannot take it away */
	tb->package_fd = r->fd;
	r->fd = -1;
	return 0;
}

const struct target_ops target_zip_ops = {
	.name = "zip",
	.identity = zip_identity,
	.build = zip_build,
	.publish = zip_publish,
	.result_free = zip_result_free,
};
