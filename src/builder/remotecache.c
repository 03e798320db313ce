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

const char *remote_cache_registry(const struct remote_cache *rc)
{
	return regcache_registry(rc->registry);
}

const char *remote_cache_repository(const struct remote_cache *rc)
{
	return regcache_repository(rc->registry);
}

int remote_cache_fetch_artifact(struct remote_cache *rc, struct cache *cache,
				const struct remote_cache_lookup *l, char **tmp)
{
	const char *registry = regcache_registry(rc->registry);
	const char *repo = regcache_repository(rc->registry);
	char sha[SHA256_HEX_LEN + 1];
	char *digest = NULL, *errmsg = NULL, *path = cache_tmp_path(cache, ".zip");
	int got;

	*tmp = NULL;
	if (!path)
		return 0;
	got = regcache_fetch(rc->registry, l->kind, l->tag, path, l->cancel_fd, sha, &digest,
			     &errmsg);
	if (got == -ECANCELED) {
		free(errmsg);
		free(path);
		return got;
	}
	if (got == -ENOENT) {
		build_log(l->log_fd, "remote cache %s/%s: no %s tagged %s; %s", registry, repo,
			  l->kind->noun, l->tag, l->otherwise);
		free(path);
		return 0;
	}
	if (got == 0) {
		struct remote_cache_origin from = { registry, repo, l->tag, digest, sha };
		got = l->check(l->check_ctx, path, &from, &errmsg);
		if (got < 0) {
			unlink(path);
			if (!errmsg)
				errmsg = str_printf("cannot read it: %s", strerror(-got));
		}
	}
	if (got < 0) {
		const char *why = errmsg ? errmsg : strerror(-got);
		build_log(l->log_fd, "remote cache %s/%s: cannot use %s: %s; %s", registry, repo,
			  l->tag, why, l->otherwise);
		log_warn("%s: remote cache %s/%s: %s; %s", l->what, registry, repo, why, l->otherwise);
		free(errmsg);
		free(digest);
		free(path);
		return 0;
	}
	free(digest);
	*tmp = path;
	return 1;
}

struct package_check {
	int log_fd;
};

/* A fetched package must read as a zip; the build log says where it came
 * from. */
static int check_package(void *ctx, const char *path, const struct remote_cache_origin *from,
			 char **errmsg)
{
	const struct package_check *c = ctx;
	int64_t unzipped;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = fd < 0 ? -errno : zip_unzipped_size(fd, &unzipped, errmsg);

	if (fd >= 0)
		close(fd);
	if (rc == 0)
		build_log(c->log_fd, "fetched from the remote cache: registry %s, repository %s,"
			  " tag %s, manifest %s, layer sha256:%s", from->registry, from->repository,
			  from->tag, from->manifest_digest ? from->manifest_digest : "(unknown)",
			  from->sha256);
	return rc;
}

int remote_cache_fetch(struct remote_cache *rc, struct cache *cache, const char *input_hash,
		       int log_fd, int cancel_fd, const char *what, char **tmp)
{
	struct package_check c = { log_fd };
	struct remote_cache_lookup l = {
		.kind = &regcache_package_kind, .tag = input_hash, .what = what,
		.otherwise = "building here", .log_fd = log_fd, .cancel_fd = cancel_fd,
		.check = check_package, .check_ctx = &c,
	};

	return remote_cache_fetch_artifact(rc, cache, &l, tmp);
}

/* A push's own copy of what it pushes. */
struct push_job {
	struct remote_cache *rc;
	char *tag;
	char *path;
	char *what;
	bool remove_after;
	struct regcache_artifact art;   /* its strings point into strings */
	char *strings[2 * REGCACHE_MAX_FIELDS];
	char *title;
	char sha256[SHA256_HEX_LEN + 1];
};

static void push_job_free(struct push_job *j)
{
	if (j->remove_after && j->path)
		unlink(j->path);
	free(j->tag);
	free(j->path);
	free(j->what);
	for (int i = 0; i < 2 * REGCACHE_MAX_FIELDS; i++)
		free(j->strings[i]);
	free(j->title);
	free(j);
}

static void *push_main(void *arg)
{
	struct push_job *j = arg;
	struct remote_cache *rc = j->rc;
	char *errmsg = NULL;
	int r = regcache_push(rc->registry, j->tag, j->path, &j->art, &errmsg);

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

/* A copy of a that owns its strings (in j); false on ENOMEM. */
static bool push_job_copy(struct push_job *j, const struct regcache_artifact *a)
{
	bool ok = true;

	j->title = a->title ? strdup(a->title) : NULL;
	j->art = (struct regcache_artifact){ .kind = a->kind, .title = j->title,
					     .sha256 = j->sha256, .size = a->size,
					     .created = a->created };
	ok = j->title || !a->title;
	snprintf(j->sha256, sizeof(j->sha256), "%s", a->sha256);
	for (int i = 0; i < REGCACHE_MAX_FIELDS && a->fields[i].name; i++) {
		j->strings[2 * i] = strdup(a->fields[i].name);
		j->strings[2 * i + 1] = strdup(a->fields[i].value ? a->fields[i].value : "");
		j->art.fields[i].name = j->strings[2 * i];
		j->art.fields[i].value = j->strings[2 * i + 1];
		ok = ok && j->strings[2 * i] && j->strings[2 * i + 1];
	}
	return ok;
}

void remote_cache_push_artifact(struct remote_cache *rc, const char *tag, const char *path,
				const struct regcache_artifact *a, const char *what,
				bool remove_after)
{
	struct push_job *j = calloc(1, sizeof(*j));
	pthread_attr_t attr;
	pthread_t thread;
	int r = -ENOMEM;

	if (j) {
		j->rc = rc;
		j->tag = strdup(tag);
		j->path = strdup(path);
		j->what = strdup(what);
		j->remove_after = remove_after;
	}
	if (j && push_job_copy(j, a) && j->tag && j->path && j->what) {
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
	if (remove_after)
		unlink(path);
}

void remote_cache_push(struct remote_cache *rc, const char *input_hash, const char *path,
		       const struct regcache_package *p, const char *what)
{
	struct regcache_artifact a;

	regcache_package_artifact(p, &a);
	remote_cache_push_artifact(rc, input_hash, path, &a, what, false);
}
