/*
 * buildimage.c - build image names, lookup with a short-lived ID cache, and
 * pulls with the fallback to the previous SeBS version (see buildimage.h).
 */
#include "buildimage.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

struct known_image {
	char *ref;
	char *id;         /* NULL: known to be absent */
	time_t checked;   /* CLOCK_MONOTONIC seconds */
	struct known_image *next;
};

struct build_images {
	pthread_mutex_t lock;
	struct known_image *known;   /* protected by lock */
	struct docker *client;       /* protected by client_lock */
	pthread_mutex_t client_lock;
};

static time_t now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

struct build_images *build_images_new(void)
{
	struct build_images *bi = calloc(1, sizeof(*bi));
	if (!bi)
		return NULL;
	pthread_mutex_init(&bi->lock, NULL);
	pthread_mutex_init(&bi->client_lock, NULL);
	return bi;
}

void build_images_free(struct build_images *bi)
{
	if (!bi)
		return;
	for (struct known_image *k = bi->known, *next; k; k = next) {
		next = k->next;
		free(k->ref);
		free(k->id);
		free(k);
	}
	docker_free(bi->client);
	pthread_mutex_destroy(&bi->lock);
	pthread_mutex_destroy(&bi->client_lock);
	free(bi);
}

int build_image_names(const struct catalog *cat, const struct cat_package *pkg,
		      char **current, char **previous)
{
	*current = *previous = NULL;
	if (!cat->docker_repository || !cat->sebs_version)
		return -EINVAL;
	const char *base = "%s:build.%s.%s.%s-%s";
	*current = str_printf(base, cat->docker_repository, pkg->platform->name,
			      pkg->runtime->language, pkg->runtime->version, cat->sebs_version);
	if (cat->previous_major_version)
		*previous = str_printf(base, cat->docker_repository, pkg->platform->name,
				       pkg->runtime->language, pkg->runtime->version,
				       cat->previous_major_version);
	if (!*current || (cat->previous_major_version && !*previous)) {
		free(*current);
		free(*previous);
		*current = *previous = NULL;
		return -ENOMEM;
	}
	return 0;
}

static struct known_image *known_find(struct build_images *bi, const char *ref)
{
	for (struct known_image *k = bi->known; k; k = k->next)
		if (strcmp(k->ref, ref) == 0)
			return k;
	return NULL;
}

/* Records what an inspect said (id NULL: absent). */
static void known_set(struct build_images *bi, const char *ref, const char *id)
{
	pthread_mutex_lock(&bi->lock);
	struct known_image *k = known_find(bi, ref);
	if (!k && (k = calloc(1, sizeof(*k)))) {
		if ((k->ref = strdup(ref))) {
			k->next = bi->known;
			bi->known = k;
		} else {
			free(k);
			k = NULL;
		}
	}
	if (k) {
		free(k->id);
		k->id = id ? strdup(id) : NULL;
		k->checked = now_mono();
	}
	pthread_mutex_unlock(&bi->lock);
}

/* 1 and *id when ref is cached and recent (id NULL: recently absent), else 0.
 * stale_ok: accept any age (the daemon is down). */
static int known_get(struct build_images *bi, const char *ref, bool stale_ok, char **id)
{
	pthread_mutex_lock(&bi->lock);
	struct known_image *k = known_find(bi, ref);
	int hit = k && (stale_ok || now_mono() - k->checked < BUILD_IMAGE_TTL_SECONDS);
	if (hit)
		*id = k->id ? strdup(k->id) : NULL;
	pthread_mutex_unlock(&bi->lock);
	return hit;
}

/* Inspects ref through d: 0 and *id, -ENOENT when absent, or a daemon error. */
static int inspect(struct build_images *bi, struct docker *d, const char *ref, char **id,
		   char **errmsg)
{
	int rc = docker_image_inspect(d, ref, id, errmsg);
	if (rc == 0 || rc == -ENOENT)
		known_set(bi, ref, rc == 0 ? *id : NULL);
	return rc;
}

static bool daemon_unreachable(int rc)
{
	return rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == -EHOSTUNREACH || rc == -ECANCELED;
}

int build_images_id(struct build_images *bi, const char *ref, char **id, char **errmsg)
{
	char *found = NULL, *msg = NULL;
	*id = NULL;
	if (known_get(bi, ref, false, &found)) {
		*id = found;
		return found ? 0 : -ENOENT;
	}
	pthread_mutex_lock(&bi->client_lock);
	if (!bi->client)
		bi->client = docker_new(NULL, NULL);
	int rc = bi->client ? inspect(bi, bi->client, ref, &found, &msg) : -ENOMEM;
	pthread_mutex_unlock(&bi->client_lock);
	if (rc < 0 && rc != -ENOENT) {
		/* daemon down: what was last known stands */
		free(found);
		found = NULL;
		if (known_get(bi, ref, true, &found))
			rc = found ? 0 : -ENOENT;
		else if (errmsg && !*errmsg)
			*errmsg = msg ? strdup(msg) : NULL;
	}
	free(msg);
	*id = rc == 0 ? found : NULL;
	if (rc < 0)
		free(found);
	return rc;
}

int build_images_lookup(struct build_images *bi, const struct catalog *cat,
			const struct cat_package *pkg, char **ref, char **id, char **errmsg)
{
	char *names[2];
	int rc = build_image_names(cat, pkg, &names[0], &names[1]);
	*ref = *id = NULL;
	if (rc < 0)
		return rc;
	rc = -ENOENT;
	for (int i = 0; i < 2 && names[i] && rc == -ENOENT; i++) {
		rc = build_images_id(bi, names[i], id, errmsg);
		if (rc == 0)
			*ref = strdup(names[i]);
	}
	free(names[0]);
	free(names[1]);
	return rc;
}

struct log_sink {
	int fd;
};

static void write_progress(void *ctx, int stream, const char *data, size_t len)
{
	struct log_sink *sink = ctx;
	if (sink->fd >= 0) {
		ssize_t w = write(sink->fd, data, len);
		(void)w;
	}
}

int build_images_ensure(struct build_images *bi, struct docker *d, const struct catalog *cat,
			const struct cat_package *pkg, int log_fd, char **ref, char **id,
			char **errmsg)
{
	char *names[2];
	int rc = build_image_names(cat, pkg, &names[0], &names[1]);
	*ref = *id = NULL;
	if (rc < 0) {
		if (errmsg)
			*errmsg = strdup("systems.json: general.docker_repository and general.SeBS_version are needed for the docker builder");
		return rc;
	}
	char *why[2] = { NULL, NULL };
	struct log_sink sink = { log_fd };
	rc = -ENOENT;
	/* present locally? (current first, then previous) */
	for (int i = 0; i < 2 && names[i] && rc == -ENOENT; i++) {
		rc = inspect(bi, d, names[i], id, &why[i]);
		if (rc == 0)
			*ref = strdup(names[i]);
	}
	/* else pull, in the same order */
	for (int i = 0; i < 2 && names[i] && rc == -ENOENT; i++) {
		free(why[i]);
		why[i] = NULL;
		rc = docker_image_pull(d, names[i], write_progress, &sink, &why[i]);
		if (rc == 0 && (rc = inspect(bi, d, names[i], id, &why[i])) == 0)
			*ref = strdup(names[i]);
		else if (rc < 0 && !daemon_unreachable(rc))
			rc = -ENOENT; /* this tag cannot be had: try the next */
	}
	if (rc < 0 && errmsg && !*errmsg) {
		if (rc != -ENOENT)
			*errmsg = str_printf("Docker daemon at %s: %s", docker_endpoint(d),
					     why[0] ? why[0] : strerror(-rc));
		else if (!names[1])
			*errmsg = str_printf("no build image: %s is not present and cannot be pulled (%s)",
					     names[0], why[0] ? why[0] : "absent");
		else
			*errmsg = str_printf("no build image: neither %s (%s) nor %s (%s) is present or can be pulled",
					     names[0], why[0] ? why[0] : "absent",
					     names[1], why[1] ? why[1] : "absent");
	}
	free(why[0]);
	free(why[1]);
	free(names[0]);
	free(names[1]);
	return rc;
}
