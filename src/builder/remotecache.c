/*
 * remotecache.c - fetch before building, push after (see remotecache.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buildlog.h"
#include "fsutil.h"
#include "log.h"
#include "remotecache.h"
#include "sizelimits.h"

/* At stop, pushes still running get this long to end before they are
 * cancelled: an unmount is not held up by a slow registry. */
#define PUSH_GRACE_S 3

struct remote_cache {
	struct regcache *registry;
	enum remote_cache_mode mode;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned pushing;      /* push threads still running */
};

int remote_cache_mode_parse(const char *text, enum remote_cache_mode *mode)
{
	static const char *const names[] = { "readwrite", "read", "write" };

	for (int i = 0; i < 3; i++)
		if (strcmp(text, names[i]) == 0) {
			*mode = (enum remote_cache_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *remote_cache_mode_name(enum remote_cache_mode mode)
{
	return mode == REMOTE_CACHE_READ ? "read" : mode == REMOTE_CACHE_WRITE ? "write"
									: "readwrite";
}

struct remote_cache *remote_cache_new(const char *spec, enum remote_cache_mode mode,
				      const char *certs_root, char **errmsg)
{
	struct remote_cache *rc = calloc(1, sizeof(*rc));

	if (!rc) {
		*errmsg = strdup("remote_cache: out of memory");
		return NULL;
	}
	rc->registry = regcache_new(spec, certs_root, errmsg);
	if (!rc->registry) {
		free(rc);
		return NULL;
	}
	rc->mode = mode;
	pthread_mutex_init(&rc->lock, NULL);
	/* the grace period at stop is measured on CLOCK_MONOTONIC */
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&rc->idle, &attr);
	pthread_condattr_destroy(&attr);
	return rc;
}

void remote_cache_free(struct remote_cache *rc)
{
	struct timespec grace;

	if (!rc)
		return;
	clock_gettime(CLOCK_MONOTONIC, &grace);
	grace.tv_sec += PUSH_GRACE_S;
	pthread_mutex_lock(&rc->lock);
	if (rc->pushing)
		log_info("remote cache: waiting up to %d s for %u push(es) to %s/%s", PUSH_GRACE_S,
			 rc->pushing, regcache_registry(rc->registry),
			 regcache_repository(rc->registry));
	while (rc->pushing && pthread_cond_timedwait(&rc->idle, &rc->lock, &grace) == 0)
		;
	if (rc->pushing)
		regcache_cancel(rc->registry);   /* each ends within about a second */
	while (rc->pushing)
		pthread_cond_wait(&rc->idle, &rc->lock);
	pthread_mutex_unlock(&rc->lock);
	pthread_cond_destroy(&rc->idle);
	pthread_mutex_destroy(&rc->lock);
	regcache_free(rc->registry);
	free(rc);
}

bool remote_cache_reads(const struct remote_cache *rc)
{
	return rc && rc->mode != REMOTE_CACHE_WRITE;
}

bool remote_cache_writes(const struct remote_cache *rc)
{
	return rc && rc->mode != REMOTE_CACHE_READ;
}

int remote_cache_fetch(struct remote_cache *rc, struct cache *cache, const char *input_hash,
		       int log_fd, int cancel_fd, const char *what, char **tmp)
{
	const char *registry = regcache_registry(rc->registry);
	const char *repo = regcache_repository(rc->registry);
	char sha[SHA256_HEX_LEN + 1];
	char *digest = NULL, *errmsg = NULL, *path = cache_tmp_path(cache, ".zip");
	int64_t unzipped;
	int rc_fetch, fd;

	*tmp = NULL;
	if (!path)
		return 0;
	rc_fetch = regcache_fetch(rc->registry, input_hash, path, cancel_fd, sha, &digest, &errmsg);
	if (rc_fetch == -ECANCELED) {
		free(errmsg);
		free(path);
		return rc_fetch;
	}
	if (rc_fetch == -ENOENT) {
		build_log(log_fd, "remote cache %s/%s: no package tagged %s; building here",
			  registry, repo, input_hash);
		free(path);
		return 0;
	}
	if (rc_fetch == 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		rc_fetch = fd < 0 ? -errno : zip_unzipped_size(fd, &unzipped, &errmsg);
		if (fd >= 0)
			close(fd);
		if (rc_fetch < 0) {
			unlink(path);
			if (!errmsg)
				errmsg = str_printf("cannot read it: %s", strerror(-rc_fetch));
		}
	}
	if (rc_fetch < 0) {
		const char *why = errmsg ? errmsg : strerror(-rc_fetch);
		build_log(log_fd, "remote cache %s/%s: cannot use %s: %s; building here", registry,
			  repo, input_hash, why);
		log_warn("%s: remote cache %s/%s: %s; building here", what, registry, repo, why);
		free(errmsg);
		free(digest);
		free(path);
		return 0;
	}
	build_log(log_fd, "fetched from the remote cache: registry %s, repository %s, tag %s,"
		  " manifest %s, layer sha256:%s", registry, repo, input_hash,
		  digest ? digest : "(unknown)", sha);
	free(digest);
	*tmp = path;
	return 1;
}

struct push_job {
	struct remote_cache *rc;
	char *tag;
	char *path;
	char *what;
	char *platform, *runtime, *benchmark, *filename, *builder;
	char sha256[SHA256_HEX_LEN + 1];
	int64_t size, created;
};

static void push_job_free(struct push_job *j)
{
	free(j->tag);
	free(j->path);
	free(j->what);
	free(j->platform);
	free(j->runtime);
	free(j->benchmark);
	free(j->filename);
	free(j->builder);
	free(j);
}

static void *push_main(void *arg)
{
	struct push_job *j = arg;
	struct remote_cache *rc = j->rc;
	struct regcache_package p = { .platform = j->platform, .runtime = j->runtime,
				      .benchmark = j->benchmark, .filename = j->filename,
				      .builder = j->builder,
				      .sha256 = j->sha256, .size = j->size, .created = j->created };
	char *errmsg = NULL;
	int r = regcache_push(rc->registry, j->tag, j->path, &p, &errmsg);

	if (r < 0)
		log_warn("%s: push to the remote cache %s/%s failed: %s", j->what,
			 regcache_registry(rc->registry), regcache_repository(rc->registry),
			 errmsg ? errmsg : strerror(-r));
	else
		log_info("%s: pushed to the remote cache %s/%s:%s", j->what,
			 regcache_registry(rc->registry), regcache_repository(rc->registry), j->tag);
	free(errmsg);
	push_job_free(j);
	pthread_mutex_lock(&rc->lock);
	if (--rc->pushing == 0)
		pthread_cond_broadcast(&rc->idle);
	pthread_mutex_unlock(&rc->lock);
	return NULL;
}

void remote_cache_push(struct remote_cache *rc, const char *input_hash, const char *path,
		       const struct regcache_package *p, const char *what)
{
	struct push_job *j = calloc(1, sizeof(*j));
	pthread_attr_t attr;
	pthread_t thread;
	int r = -ENOMEM;

	if (j) {
		j->rc = rc;
		j->tag = strdup(input_hash);
		j->path = strdup(path);
		j->what = strdup(what);
		j->platform = strdup(p->platform);
		j->runtime = strdup(p->runtime);
		j->benchmark = strdup(p->benchmark);
		j->builder = strdup(p->builder);
		j->filename = p->filename ? strdup(p->filename) : NULL;
		snprintf(j->sha256, sizeof(j->sha256), "%s", p->sha256);
		j->size = p->size;
		j->created = p->created;
	}
	if (j && j->tag && j->path && j->what && j->platform && j->runtime && j->benchmark &&
	    j->builder && (j->filename || !p->filename)) {
		pthread_mutex_lock(&rc->lock);
		rc->pushing++;
		pthread_mutex_unlock(&rc->lock);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		r = -pthread_create(&thread, &attr, push_main, j);
		pthread_attr_destroy(&attr);
		if (r == 0)
			return;
		pthread_mutex_lock(&rc->lock);
		if (--rc->pushing == 0)
			pthread_cond_broadcast(&rc->idle);
		pthread_mutex_unlock(&rc->lock);
	}
	log_warn("%s: cannot start the push to the remote cache: %s", what, strerror(-r));
	if (j)
		push_job_free(j);
}
