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
	char *id;         /* NULL: absent (or never asked, when checked == 0) */
	time_t checked;   /* CLOCK_MONOTONIC seconds of the last answer; 0: never */
	struct known_image *next;
};

struct build_images {
	pthread_mutex_t lock;
	struct known_image *known;   /* protected by lock */
	time_t down_until;           /* protected by lock: daemon not answering until then */
};

static time_t now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* +1: a first answer in the first second of uptime still counts as checked */
	return ts.tv_sec + 1;
}

struct build_images *build_images_new(void)
{
	struct build_images *bi = calloc(1, sizeof(*bi));
	if (!bi)
		return NULL;
	pthread_mutex_init(&bi->lock, NULL);
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
	pthread_mutex_destroy(&bi->lock);
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

/* Caller holds bi->lock. */
static struct known_image *known_find(struct build_images *bi, const char *ref)
{
	for (struct known_image *k = bi->known; k; k = k->next)
		if (strcmp(k->ref, ref) == 0)
			return k;
	return NULL;
}

/* The entry of ref, created (never checked) when missing; NULL on ENOMEM.
 * Caller holds bi->lock. */
static struct known_image *known_entry(struct build_images *bi, const char *ref)
{
	struct known_image *k = known_find(bi, ref);
	if (k || !(k = calloc(1, sizeof(*k))))
		return k;
	if (!(k->ref = strdup(ref))) {
		free(k);
		return NULL;
	}
	k->next = bi->known;
	bi->known = k;
	return k;
}

/* Records what an inspect said (id NULL: absent). */
static void known_set(struct build_images *bi, const char *ref, const char *id)
{
	pthread_mutex_lock(&bi->lock);
	struct known_image *k = known_entry(bi, ref);
	if (k) {
		free(k->id);
		k->id = id ? strdup(id) : NULL;
		k->checked = now_mono();
	}
	pthread_mutex_unlock(&bi->lock);
}

enum image_known build_images_known(struct build_images *bi, const char *ref, char **id,
				    bool *current)
{
	enum image_known state = IMAGE_UNKNOWN;
	if (id)
		*id = NULL;
	pthread_mutex_lock(&bi->lock);
	struct known_image *k = known_entry(bi, ref);
	bool recent = k && k->checked && now_mono() - k->checked < BUILD_IMAGE_TTL_SECONDS;
	if (k && k->checked) {
		state = k->id ? IMAGE_KNOWN_PRESENT : IMAGE_KNOWN_ABSENT;
		if (id && k->id && !(*id = strdup(k->id)))
			state = IMAGE_UNKNOWN;
	}
	pthread_mutex_unlock(&bi->lock);
	if (current)
		*current = recent;
	return state;
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
	return rc == -ECONNREFUSED || rc == -ECONNRESET || rc == -ETIMEDOUT || rc == -EHOSTUNREACH ||
	       rc == -ECANCELED;
}

/* The refs to ask about now (malloc'd list), or none while the daemon is
 * remembered as down. */
static char **refs_to_refresh(struct build_images *bi, size_t *n)
{
	char **refs = NULL;
	size_t cap = 0;
	*n = 0;
	pthread_mutex_lock(&bi->lock);
	time_t now = now_mono();
	for (struct known_image *k = bi->known; k && now >= bi->down_until; k = k->next) {
		if (k->checked && now - k->checked < BUILD_IMAGE_TTL_SECONDS)
			continue;
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			char **nr = realloc(refs, ncap * sizeof(*nr));
			if (!nr)
				break;
			refs = nr;
			cap = ncap;
		}
		if (!(refs[*n] = strdup(k->ref)))
			break;
		(*n)++;
	}
	pthread_mutex_unlock(&bi->lock);
	return refs;
}

int build_images_refresh(struct build_images *bi, struct docker *d)
{
	size_t n;
	char **refs = refs_to_refresh(bi, &n);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *id = NULL, *msg = NULL;
		rc = inspect(bi, d, refs[i], &id, &msg);
		if (rc == -ENOENT) {
			rc = 0;
		} else if (rc < 0 && daemon_unreachable(rc)) {
			log_warn("Docker daemon at %s does not answer (%s); using what is known of its"
				 " images for %d s", docker_endpoint(d), msg ? msg : strerror(-rc),
				 DAEMON_DOWN_SECONDS);
			pthread_mutex_lock(&bi->lock);
			bi->down_until = now_mono() + DAEMON_DOWN_SECONDS;
			pthread_mutex_unlock(&bi->lock);
		} else if (rc < 0) {
			log_warn("cannot inspect image %s: %s", refs[i], msg ? msg : strerror(-rc));
			rc = 0; /* this ref only */
		}
		free(id);
		free(msg);
	}
	str_list_free(refs, n);
	return rc;
}

int build_images_lookup(struct build_images *bi, const struct catalog *cat,
			const struct cat_package *pkg, char **ref, char **id, bool *current)
{
	char *names[2];
	int rc = build_image_names(cat, pkg, &names[0], &names[1]);
	bool all_current = true;
	*ref = *id = NULL;
	if (rc < 0)
		return rc;
	rc = -ENOENT;
	for (int i = 0; i < 2 && names[i] && rc == -ENOENT; i++) {
		bool cur;
		if (build_images_known(bi, names[i], id, &cur) == IMAGE_KNOWN_PRESENT) {
			*ref = strdup(names[i]);
			rc = *ref ? 0 : -ENOMEM;
		}
		all_current = all_current && cur;
	}
	free(names[0]);
	free(names[1]);
	if (current)
		*current = all_current;
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
		rc = docker_image_pull(d, names[i], NULL, write_progress, &sink, &why[i]);
		if (rc == 0 && (rc = inspect(bi, d, names[i], id, &why[i])) == 0)
			*ref = strdup(names[i]);
		else if (rc < 0 && !daemon_unreachable(rc))
			rc = -ENOENT; /* this tag cannot be had: try the next */
	}
	if (rc < 0 && errmsg && !*errmsg) {
		const char *endpoint = docker_endpoint(d);
		if (rc != -ENOENT && why[0] && strncmp(why[0], endpoint, strlen(endpoint)) == 0)
			*errmsg = str_printf("Docker daemon at %s", why[0]);
		else if (rc != -ENOENT)
			*errmsg = str_printf("Docker daemon at %s: %s", endpoint,
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
