/*
 * builder.c - job table, workers and freshness checks (design in builder.h).
 */
#include "builder.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buildimage.h"
#include "docker.h"
#include "fsutil.h"
#include "inputs.h"
#include "log.h"

struct waiter {
	builder_done_fn done;
	void *ctx;
	struct waiter *next;
};

struct job {
	size_t id;
	char input_hash[SHA256_HEX_LEN + 1];
	char *manifest_json;        /* the inputs this build starts from */
	struct waiter *waiters;     /* protected by builder.lock */
	struct job *next;           /* queue link, protected by builder.lock */
};

struct record {
	pthread_mutex_t check_lock;
	struct input_manifest seen;  /* protected by check_lock: last stat of the inputs */
	bool seen_valid;             /* protected by check_lock */
	/* everything below: protected by builder.lock */
	bool loaded;
	char *log_path;
	bool has_package;
	char *path;
	int64_t size;
	char sha256[SHA256_HEX_LEN + 1];
	char input_hash[SHA256_HEX_LEN + 1];
	int64_t built_at;
	double build_seconds;
	bool last_failed;
	char failed_hash[SHA256_HEX_LEN + 1];
	struct job *job;
	unsigned builds;
};

struct builder {
	const struct catalog *cat;
	struct cache *cache;
	char *arch;
	enum installer_kind installer;
	char *installer_note;
	struct build_images *images; /* INSTALLER_DOCKER */
	pthread_mutex_t lock;
	pthread_cond_t work;         /* signalled when the queue grows or on stop */
	struct job *queue_head, *queue_tail; /* protected by lock */
	bool stopping;               /* protected by lock */
	pthread_t *workers;
	struct docker **clients;     /* one per worker (docker builder), protected by lock */
	unsigned n_workers;
	struct record *records;      /* one per catalog package */
};

const char *package_state_name(enum package_state s)
{
	static const char *const names[] = { "absent", "fresh", "stale", "building", "failed" };
	return names[s];
}

static void package_key(const struct cat_package *pkg, struct cache_key *key)
{
	key->platform = pkg->platform->name;
	key->language = pkg->runtime->language;
	key->version = pkg->runtime->version;
	key->arch = pkg->runtime->arch;
	key->benchmark = pkg->benchmark->name;
	key->kind = "zip";
}

static void record_set_package(struct record *rec, const struct cache_entry *e)
{
	free(rec->path);
	rec->path = NULL;
	rec->has_package = e->has_package && e->path;
	if (rec->has_package) {
		rec->path = strdup(e->path);
		rec->has_package = rec->path != NULL;
		rec->size = e->size;
		memcpy(rec->sha256, e->sha256, sizeof(rec->sha256));
		snprintf(rec->input_hash, sizeof(rec->input_hash), "%s", e->input_hash ? e->input_hash : "");
		rec->built_at = e->built_at;
		rec->build_seconds = e->build_seconds;
	}
	rec->last_failed = e->last_failed;
	snprintf(rec->failed_hash, sizeof(rec->failed_hash), "%s",
		 e->failed_input_hash ? e->failed_input_hash : "");
}

/* Loads the record from the cache on first use.  Called with check_lock held,
 * without b->lock (SQLite is not called under it). */
static void record_load(struct builder *b, size_t id)
{
	struct record *rec = &b->records[id];
	pthread_mutex_lock(&b->lock);
	bool loaded = rec->loaded;
	pthread_mutex_unlock(&b->lock);
	if (loaded)
		return;

	struct cache_key key;
	struct cache_entry e;
	package_key(&b->cat->packages[id], &key);
	memset(&e, 0, sizeof(e));
	int rc = cache_get(b->cache, &key, &e);
	char *log_path = cache_log_path(b->cache, &key);
	if (rc == 0 && e.manifest && inputs_from_json(e.manifest, &rec->seen) == 0)
		rec->seen_valid = true;

	pthread_mutex_lock(&b->lock);
	if (rc == 0)
		record_set_package(rec, &e);
	rec->log_path = log_path;
	rec->loaded = true;
	pthread_mutex_unlock(&b->lock);
	cache_entry_clear(&e);
}

/* What, besides files, makes a package: the builder and, for docker, the
 * build image's ID.  malloc'd. */
static char *builder_identity(struct builder *b, const struct catalog *cat,
			      const struct cat_package *pkg)
{
	if (b->installer != INSTALLER_DOCKER || !catalog_has_build_image(cat, pkg))
		return str_printf("builder=%s", installer_name(b->installer));
	char *ref = NULL, *id = NULL, *msg = NULL;
	int rc = build_images_lookup(b->images, cat, pkg, &ref, &id, &msg);
	/* unresolved: never equal to a built package's identity, so a build
	 * runs and reports why the image cannot be had */
	char *identity = rc == 0 ? str_printf("builder=docker;image=%s@%s", ref, id)
				 : strdup("builder=docker;image=unresolved");
	free(ref);
	free(id);
	free(msg);
	return identity;
}

/* Stats (and where needed hashes) the package's inputs.  On success fills
 * hash and, when manifest_json is not NULL, the manifest as JSON. */
static int check_inputs(struct builder *b, size_t id, char hash[SHA256_HEX_LEN + 1],
			char **manifest_json)
{
	const struct cat_package *pkg = &b->cat->packages[id];
	struct record *rec = &b->records[id];
	char *bench_dir = str_printf("benchmarks/%s/%s", pkg->benchmark->group, pkg->benchmark->name);
	char *identity = builder_identity(b, b->cat, pkg);
	if (!bench_dir || !identity) {
		free(bench_dir);
		free(identity);
		return -ENOMEM;
	}
	struct input_spec spec = {
		.root = b->cat->root, .benchmark_dir = bench_dir,
		.platform = pkg->platform->name, .language = pkg->runtime->language,
		.version = pkg->runtime->version, .arch = pkg->runtime->arch,
		.identity = identity,
	};
	struct input_manifest fresh;
	char *errmsg = NULL;

	pthread_mutex_lock(&rec->check_lock);
	record_load(b, id);
	int rc = inputs_collect(&spec, rec->seen_valid ? &rec->seen : NULL, &fresh, &errmsg);
	if (rc == 0) {
		inputs_hash(&fresh, hash);
		if (manifest_json && !(*manifest_json = inputs_to_json(&fresh)))
			rc = -ENOMEM;
		inputs_clear(&rec->seen);
		rec->seen = fresh;
		rec->seen_valid = true;
	}
	pthread_mutex_unlock(&rec->check_lock);
	if (rc < 0)
		log_err("%s/%s/%s: cannot read inputs: %s", pkg->platform->name, pkg->runtime->dirname,
			pkg->benchmark->name, errmsg ? errmsg : strerror(-rc));
	free(errmsg);
	free(bench_dir);
	free(identity);
	return rc;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
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
		rc = check_inputs(b, job->id, job->input_hash, &job->manifest_json);
		if (rc < 0)
			*errmsg = str_printf("cannot read inputs: %s", strerror(-rc));
	}
	free(id);
	return rc;
}

/* Runs one build; returns 0 and the new package's path or -errno. */
static int build_package(struct builder *b, struct job *job, struct docker *client, int log_fd,
			 struct cache_entry *out)
{
	const struct cat_package *pkg = &b->cat->packages[job->id];
	struct cache_key key;
	package_key(pkg, &key);
	double t0 = now_seconds();
	char *errmsg = NULL, *workdir = NULL, *tmp = NULL, *image = NULL;
	int out_fd = -1, rc;
	char catalog_err[512];

	/* Build from the tree as it is now, not as it was at mount time: an
	 * edited systems.json must change what step 4 and 5 add. */
	struct catalog *now = catalog_load(b->cat->root, b->arch, catalog_err, sizeof(catalog_err));
	const struct cat_package *now_pkg = now ? catalog_package(now, pkg->platform->name,
						pkg->runtime->dirname, pkg->benchmark->name) : NULL;
	if (!now) {
		rc = -EINVAL;
		errmsg = strdup(catalog_err);
	} else if (!now_pkg) {
		rc = -ENOENT;
		errmsg = str_printf("%s/%s/%s is no longer in the tree (systems.json or config.json changed)",
				    pkg->platform->name, pkg->runtime->dirname, pkg->benchmark->name);
	} else if (b->installer == INSTALLER_DOCKER && catalog_has_build_image(now, now_pkg) &&
		   (rc = prepare_build_image(b, job, client, now, now_pkg, log_fd, &image, &errmsg)) < 0) {
		/* errmsg says why */
	} else if ((rc = cache_make_workdir(b->cache, &workdir)) < 0) {
		errmsg = str_printf("cannot create a work folder: %s", strerror(-rc));
	} else if (!(tmp = cache_tmp_path(b->cache, ".zip"))) {
		rc = -ENOMEM;
	} else if ((out_fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		rc = -errno;
		errmsg = str_printf("cannot create %s: %s", tmp, strerror(errno));
	} else {
		struct pipeline_request req = {
			.cat = now, .pkg = now_pkg, .installer = b->installer,
			.installer_note = b->installer_note, .docker = client, .build_image = image,
			.workdir = workdir, .out_fd = out_fd, .log_fd = log_fd,
		};
		rc = pipeline_build_zip(&req, &errmsg);
		if (close(out_fd) < 0 && rc == 0)
			rc = -errno;
		out_fd = -1;
	}
	if (rc == 0) {
		rc = cache_publish(b->cache, &key, tmp, job->input_hash, job->manifest_json,
				   now_seconds() - t0, out);
		if (rc < 0)
			errmsg = str_printf("cannot publish the package: %s", strerror(-rc));
	} else if (tmp) {
		unlink(tmp);
	}
	if (rc < 0) {
		build_log(log_fd, "build failed: %s", errmsg ? errmsg : strerror(-rc));
		cache_record_failure(b->cache, &key, job->input_hash, errmsg ? errmsg : strerror(-rc));
		log_warn("build of %s/%s/%s.zip failed: %s", pkg->platform->name, pkg->runtime->dirname,
			 pkg->benchmark->name, errmsg ? errmsg : strerror(-rc));
	} else {
		build_log(log_fd, "build succeeded in %.2f s: %" PRId64 " bytes, sha256 %s",
			  out->build_seconds, out->size, out->sha256);
	}
	if (out_fd >= 0)
		close(out_fd);
	if (workdir)
		rm_rf(workdir);
	free(workdir);
	free(tmp);
	free(image);
	free(errmsg);
	catalog_free(now);
	return rc;
}

static void run_job(struct builder *b, struct job *job, struct docker *client)
{
	struct record *rec = &b->records[job->id];
	struct cache_entry entry;
	memset(&entry, 0, sizeof(entry));
	int log_fd = open(rec->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd < 0)
		log_warn("cannot write build log %s: %s", rec->log_path, strerror(errno));

	int rc = build_package(b, job, client, log_fd, &entry);
	struct builder_result res = { .status = rc < 0 ? -EIO : 0, .fd = -1, .built = true };
	if (rc == 0) {
		res.fd = open(entry.path, O_RDONLY | O_CLOEXEC);
		res.size = entry.size;
		if (res.fd < 0)
			res.status = -EIO;
	}
	if (log_fd >= 0)
		close(log_fd);

	pthread_mutex_lock(&b->lock);
	if (rc == 0) {
		record_set_package(rec, &entry);
	} else {
		rec->last_failed = true;
		memcpy(rec->failed_hash, job->input_hash, sizeof(rec->failed_hash));
	}
	rec->job = NULL;
	rec->builds++;
	struct waiter *w = job->waiters;
	job->waiters = NULL;
	pthread_mutex_unlock(&b->lock);

	while (w) {
		struct waiter *next = w->next;
		w->done(w->ctx, &res);
		free(w);
		w = next;
	}
	if (res.fd >= 0)
		close(res.fd);
	cache_entry_clear(&entry);
	free(job->manifest_json);
	free(job);
}

struct worker_arg {
	struct builder *b;
	unsigned index;
};

static void *worker_main(void *arg)
{
	struct worker_arg *wa = arg;
	struct builder *b = wa->b;
	unsigned index = wa->index;
	free(wa);
	/* each worker owns its connection to the daemon (curl handles are
	 * not shared between threads) */
	struct docker *client = NULL;
	if (b->installer == INSTALLER_DOCKER) {
		char *msg = NULL;
		client = docker_new(NULL, &msg);
		if (!client)
			log_err("builder: cannot create a Docker client: %s", msg ? msg : "out of memory");
		free(msg);
	}
	pthread_mutex_lock(&b->lock);
	b->clients[index] = client;
	if (b->stopping && client)
		docker_cancel(client);
	for (;;) {
		while (!b->queue_head && !b->stopping)
			pthread_cond_wait(&b->work, &b->lock);
		if (b->stopping)
			break;
		struct job *job = b->queue_head;
		b->queue_head = job->next;
		if (!b->queue_head)
			b->queue_tail = NULL;
		pthread_mutex_unlock(&b->lock);
		run_job(b, job, client);
		pthread_mutex_lock(&b->lock);
	}
	b->clients[index] = NULL;
	pthread_mutex_unlock(&b->lock);
	docker_free(client);
	return NULL;
}

struct builder *builder_new(const struct catalog *cat, struct cache *cache,
			    const struct builder_config *cfg, int *err)
{
	struct builder *b = calloc(1, sizeof(*b));
	int rc = b ? 0 : -ENOMEM;
	if (rc == 0) {
		b->cat = cat;
		b->cache = cache;
		b->installer = cfg->installer;
		b->arch = strdup(cfg->arch);
		b->installer_note = cfg->installer_note ? strdup(cfg->installer_note) : NULL;
		if (cfg->installer == INSTALLER_DOCKER && !(b->images = build_images_new()))
			rc = -ENOMEM;
		b->records = calloc(cat->n_packages ? cat->n_packages : 1, sizeof(*b->records));
		b->workers = calloc(cfg->jobs ? cfg->jobs : 1, sizeof(*b->workers));
		b->clients = calloc(cfg->jobs ? cfg->jobs : 1, sizeof(*b->clients));
		pthread_mutex_init(&b->lock, NULL);
		pthread_cond_init(&b->work, NULL);
		if (!b->arch || !b->records || !b->workers || !b->clients)
			rc = -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < cat->n_packages; i++)
		pthread_mutex_init(&b->records[i].check_lock, NULL);
	for (unsigned i = 0; rc == 0 && i < (cfg->jobs ? cfg->jobs : 1); i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));
		if (!wa) {
			rc = -ENOMEM;
			break;
		}
		*wa = (struct worker_arg){ b, i };
		rc = -pthread_create(&b->workers[i], NULL, worker_main, wa);
		if (rc == 0)
			b->n_workers++;
		else
			free(wa);
	}
	if (rc < 0) {
		log_err("cannot start the builder: %s", strerror(-rc));
		builder_free(b);
		*err = rc;
		return NULL;
	}
	return b;
}

void builder_free(struct builder *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	struct job *queued = b->queue_head;
	b->queue_head = b->queue_tail = NULL;
	pthread_cond_broadcast(&b->work);
	/* running build containers stop waiting; each worker then removes its own */
	for (unsigned i = 0; b->clients && i < b->n_workers; i++)
		if (b->clients[i])
			docker_cancel(b->clients[i]);
	pthread_mutex_unlock(&b->lock);
	for (unsigned i = 0; i < b->n_workers; i++)
		pthread_join(b->workers[i], NULL);

	struct builder_result res = { .status = -EIO, .fd = -1 };
	while (queued) {
		struct job *next = queued->next;
		for (struct waiter *w = queued->waiters, *wn; w; w = wn) {
			wn = w->next;
			w->done(w->ctx, &res);
			free(w);
		}
		free(queued->manifest_json);
		free(queued);
		queued = next;
	}
	for (size_t i = 0; b->records && i < b->cat->n_packages; i++) {
		struct record *rec = &b->records[i];
		inputs_clear(&rec->seen);
		free(rec->path);
		free(rec->log_path);
		pthread_mutex_destroy(&rec->check_lock);
	}
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->work);
	free(b->records);
	free(b->workers);
	free(b->clients);
	free(b->arch);
	free(b->installer_note);
	build_images_free(b->images);
	free(b);
}

static void reply_now(builder_done_fn done, void *ctx, int status, int fd, int64_t size)
{
	struct builder_result res = { .status = status, .fd = fd, .size = size, .built = false };
	done(ctx, &res);
}

void builder_ensure(struct builder *b, size_t id, builder_done_fn done, void *ctx)
{
	struct record *rec = &b->records[id];
	struct waiter *w = calloc(1, sizeof(*w));
	char hash[SHA256_HEX_LEN + 1];
	char *manifest = NULL;
	if (!w) {
		reply_now(done, ctx, -ENOMEM, -1, 0);
		return;
	}
	w->done = done;
	w->ctx = ctx;

	/* Joining a running build needs no input check. */
	pthread_mutex_lock(&b->lock);
	if (rec->job) {
		w->next = rec->job->waiters;
		rec->job->waiters = w;
		pthread_mutex_unlock(&b->lock);
		return;
	}
	pthread_mutex_unlock(&b->lock);

	int rc = check_inputs(b, id, hash, &manifest);
	if (rc < 0) {
		free(w);
		reply_now(done, ctx, -EIO, -1, 0);
		return;
	}

	pthread_mutex_lock(&b->lock);
	if (rec->job) {
		/* someone started it while we were checking */
		w->next = rec->job->waiters;
		rec->job->waiters = w;
		pthread_mutex_unlock(&b->lock);
		free(manifest);
		return;
	}
	if (rec->has_package && strcmp(rec->input_hash, hash) == 0) {
		int fd = open(rec->path, O_RDONLY | O_CLOEXEC);
		int64_t size = rec->size;
		if (fd >= 0) {
			pthread_mutex_unlock(&b->lock);
			free(manifest);
			free(w);
			reply_now(done, ctx, 0, fd, size);
			close(fd);
			return;
		}
		/* the file vanished behind our back: rebuild it */
		log_warn("package file %s is missing; rebuilding", rec->path);
		rec->has_package = false;
	}
	if (b->stopping) {
		pthread_mutex_unlock(&b->lock);
		free(manifest);
		free(w);
		reply_now(done, ctx, -EIO, -1, 0);
		return;
	}
	struct job *job = calloc(1, sizeof(*job));
	if (!job) {
		pthread_mutex_unlock(&b->lock);
		free(manifest);
		free(w);
		reply_now(done, ctx, -ENOMEM, -1, 0);
		return;
	}
	job->id = id;
	memcpy(job->input_hash, hash, sizeof(hash));
	job->manifest_json = manifest;
	job->waiters = w;
	rec->job = job;
	if (b->queue_tail)
		b->queue_tail->next = job;
	else
		b->queue_head = job;
	b->queue_tail = job;
	pthread_cond_signal(&b->work);
	pthread_mutex_unlock(&b->lock);
}

int builder_status(struct builder *b, size_t id, bool check, struct builder_status *out)
{
	struct record *rec = &b->records[id];
	char hash[SHA256_HEX_LEN + 1] = "";
	memset(out, 0, sizeof(*out));
	if (check) {
		int rc = check_inputs(b, id, hash, NULL);
		if (rc < 0)
			hash[0] = '\0';
	} else {
		pthread_mutex_lock(&rec->check_lock);
		record_load(b, id);
		pthread_mutex_unlock(&rec->check_lock);
	}
	pthread_mutex_lock(&b->lock);
	out->has_package = rec->has_package;
	out->size = rec->has_package ? rec->size : 0;
	out->builds = rec->builds;
	if (rec->has_package) {
		memcpy(out->sha256, rec->sha256, sizeof(out->sha256));
		memcpy(out->input_hash, rec->input_hash, sizeof(out->input_hash));
		out->built_at = rec->built_at;
		out->build_seconds = rec->build_seconds;
	}
	bool fresh = rec->has_package && (!check || strcmp(hash, rec->input_hash) == 0);
	if (rec->job)
		out->state = PKG_BUILDING;
	else if (fresh)
		out->state = PKG_FRESH;
	else if (rec->last_failed && (!check || strcmp(hash, rec->failed_hash) == 0))
		out->state = PKG_FAILED;
	else
		out->state = rec->has_package ? PKG_STALE : PKG_ABSENT;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

const char *builder_log_path(struct builder *b, size_t id)
{
	struct record *rec = &b->records[id];
	pthread_mutex_lock(&rec->check_lock);
	record_load(b, id);
	pthread_mutex_unlock(&rec->check_lock);
	return rec->log_path;
}

int builder_evict(struct builder *b, size_t id)
{
	struct record *rec = &b->records[id];
	struct cache_key key;
	package_key(&b->cat->packages[id], &key);
	pthread_mutex_lock(&rec->check_lock);
	record_load(b, id);
	int rc = cache_evict(b->cache, &key);
	if (rc == 0) {
		pthread_mutex_lock(&b->lock);
		rec->has_package = false;
		rec->last_failed = false;
		free(rec->path);
		rec->path = NULL;
		pthread_mutex_unlock(&b->lock);
	}
	pthread_mutex_unlock(&rec->check_lock);
	return rc;
}
