/*
 * builder.c - job table, workers and freshness checks (design in builder.h).
 * What a target is built from and how is in target_zip.c / target_image.c.
 */
#include "builder_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "docker.h"
#include "fsutil.h"
#include "log.h"

static const char *const kind_names[TARGET_KINDS] = { "zip", "image" };

const char *package_state_name(enum package_state s)
{
	static const char *const names[] = { "absent", "fresh", "stale", "building", "failed" };
	return names[s];
}

double builder_now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t target_of(size_t id, enum target_kind kind)
{
	return id * TARGET_KINDS + kind;
}

void target_key(const struct builder *b, size_t target, struct cache_key *key)
{
	const struct cat_package *pkg = &b->cat->packages[target_package(target)];
	key->platform = pkg->platform->name;
	key->language = pkg->runtime->language;
	key->version = pkg->runtime->version;
	key->arch = pkg->runtime->arch;
	key->benchmark = pkg->benchmark->name;
	key->kind = kind_names[target_kind_of(target)];
}

static void replace_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
}

/* Copies a cache row into the record; caller holds b->lock. */
static void record_set_package(struct record *rec, const struct cache_entry *e)
{
	rec->has_package = e->has_package && (e->path || e->image_id);
	replace_str(&rec->path, rec->has_package ? e->path : NULL);
	replace_str(&rec->image, rec->has_package ? e->image : NULL);
	replace_str(&rec->image_id, rec->has_package ? e->image_id : NULL);
	replace_str(&rec->digest, rec->has_package ? e->digest : NULL);
	replace_str(&rec->registry, rec->has_package ? e->registry : NULL);
	if (rec->has_package) {
		rec->size = e->path ? e->size : e->image_size;
		memcpy(rec->sha256, e->sha256, sizeof(rec->sha256));
		snprintf(rec->input_hash, sizeof(rec->input_hash), "%s", e->input_hash ? e->input_hash : "");
		rec->built_at = e->built_at;
		rec->build_seconds = e->build_seconds;
	}
	rec->last_failed = e->last_failed;
	snprintf(rec->failed_hash, sizeof(rec->failed_hash), "%s",
		 e->failed_input_hash ? e->failed_input_hash : "");
}

static void record_forget_package(struct record *rec)
{
	rec->has_package = false;
	rec->last_failed = false;
	replace_str(&rec->path, NULL);
	replace_str(&rec->image, NULL);
	replace_str(&rec->image_id, NULL);
	replace_str(&rec->digest, NULL);
	replace_str(&rec->registry, NULL);
}

/* Loads the record from the cache on first use.  Called with check_lock held,
 * without b->lock (SQLite is not called under it). */
static void record_load(struct builder *b, size_t target)
{
	struct record *rec = &b->records[target];
	pthread_mutex_lock(&b->lock);
	bool loaded = rec->loaded;
	pthread_mutex_unlock(&b->lock);
	if (loaded)
		return;

	struct cache_key key;
	struct cache_entry e;
	target_key(b, target, &key);
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

int target_check_inputs(struct builder *b, size_t target, char hash[SHA256_HEX_LEN + 1],
			char **manifest_json)
{
	const struct cat_package *pkg = &b->cat->packages[target_package(target)];
	bool image = target_kind_of(target) == TARGET_IMAGE;
	struct record *rec = &b->records[target];
	char *identity = NULL;
	char *bench_dir = str_printf("benchmarks/%s/%s", pkg->benchmark->group, pkg->benchmark->name);
	char *dockerfiles = image ? str_printf("dockerfiles/%s/%s", pkg->platform->name,
					       pkg->runtime->language) : NULL;
	int rc = image ? image_identity(b, pkg, &identity) : zip_identity(b, pkg, &identity);
	if (rc == 0 && (!bench_dir || (image && !dockerfiles)))
		rc = -ENOMEM;
	struct input_spec spec = {
		.root = b->cat->root, .benchmark_dir = bench_dir,
		.platform = pkg->platform->name, .language = pkg->runtime->language,
		.version = pkg->runtime->version, .arch = pkg->runtime->arch,
		.identity = identity, .extra_dir = dockerfiles,
	};
	struct input_manifest fresh;
	char *errmsg = NULL;

	pthread_mutex_lock(&rec->check_lock);
	record_load(b, target);
	if (rc == 0)
		rc = inputs_collect(&spec, rec->seen_valid ? &rec->seen : NULL, &fresh, &errmsg);
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
		log_err("%s/%s/%s.%s: cannot read inputs: %s", pkg->platform->name,
			pkg->runtime->dirname, pkg->benchmark->name, kind_names[target_kind_of(target)],
			errmsg ? errmsg : strerror(-rc));
	free(errmsg);
	free(bench_dir);
	free(dockerfiles);
	free(identity);
	return rc;
}

/* Runs one build in a worker; fills *out with the new row on success. */
static int build_target(struct builder *b, struct job *job, struct docker *client, int log_fd,
			struct cache_entry *out)
{
	const struct cat_package *pkg = &b->cat->packages[target_package(job->target)];
	enum target_kind kind = target_kind_of(job->target);
	char *errmsg = NULL;
	char catalog_err[512];
	int rc;

	/* Build from the tree as it is now, not as it was at mount time: an
	 * edited systems.json must change what steps 4 and 5 add. */
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
	} else if (kind == TARGET_IMAGE) {
		rc = image_target_build(b, job, client, now, now_pkg, log_fd, out, &errmsg);
	} else {
		rc = zip_build(b, job, client, now, now_pkg, log_fd, out, &errmsg);
	}
	if (rc < 0) {
		struct cache_key key;
		target_key(b, job->target, &key);
		const char *why = errmsg ? errmsg : strerror(-rc);
		build_log(log_fd, "build failed: %s", why);
		cache_record_failure(b->cache, &key, job->input_hash, why);
		log_warn("build of %s/%s/%s.%s failed: %s", pkg->platform->name, pkg->runtime->dirname,
			 pkg->benchmark->name, kind_names[kind], why);
	}
	free(errmsg);
	catalog_free(now);
	return rc;
}

static void call_waiters(struct waiter *w, struct builder_result *res)
{
	res->first = true;
	while (w) {
		struct waiter *next = w->next;
		w->done(w->ctx, res);
		res->first = false;
		free(w);
		w = next;
	}
}

static void run_job(struct builder *b, struct job *job, struct docker *client)
{
	struct record *rec = &b->records[job->target];
	struct cache_entry entry;
	memset(&entry, 0, sizeof(entry));
	int log_fd = open(rec->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd < 0)
		log_warn("cannot write build log %s: %s", rec->log_path, strerror(errno));

	int rc = build_target(b, job, client, log_fd, &entry);
	if (log_fd >= 0)
		close(log_fd);
	struct builder_result res = { .status = rc < 0 ? -EIO : 0, .fd = -1, .built = true };
	char *document = NULL;

	pthread_mutex_lock(&b->lock);
	if (rc == 0) {
		record_set_package(rec, &entry);
		if (target_kind_of(job->target) == TARGET_IMAGE) {
			document = image_document(rec);
			res.document = document;
			res.size = document ? (int64_t)strlen(document) : 0;
			res.status = document ? 0 : -ENOMEM;
		} else {
			/* opened before the job ends, so no later build can unlink it first */
			res.fd = open(entry.path, O_RDONLY | O_CLOEXEC);
			res.size = entry.size;
			if (res.fd < 0)
				res.status = -EIO;
		}
	} else {
		rec->last_failed = true;
		memcpy(rec->failed_hash, job->input_hash, sizeof(rec->failed_hash));
	}
	rec->job = NULL;
	rec->builds++;
	struct waiter *w = job->waiters;
	job->waiters = NULL;
	pthread_mutex_unlock(&b->lock);

	call_waiters(w, &res);
	if (res.fd >= 0)
		close(res.fd);
	free(document);
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
	/* each worker owns its connection to the daemon (curl handles are not
	 * shared between threads); it connects on first use only */
	char *msg = NULL;
	struct docker *client = docker_new(NULL, &msg);
	if (!client)
		log_warn("builder: no Docker client: %s", msg ? msg : "out of memory");
	free(msg);
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
	size_t n_targets = cat->n_packages * TARGET_KINDS;
	unsigned jobs = cfg->jobs ? cfg->jobs : 1;
	int rc = b ? 0 : -ENOMEM;
	if (rc == 0) {
		b->cat = cat;
		b->cache = cache;
		b->installer = cfg->installer;
		b->arch = strdup(cfg->arch);
		b->installer_note = cfg->installer_note ? strdup(cfg->installer_note) : NULL;
		b->repository = cfg->repository ? strdup(cfg->repository) : NULL;
		b->registry = cfg->registry ? strdup(cfg->registry) : NULL;
		b->images = build_images_new();
		b->records = calloc(n_targets ? n_targets : 1, sizeof(*b->records));
		b->workers = calloc(jobs, sizeof(*b->workers));
		b->clients = calloc(jobs, sizeof(*b->clients));
		pthread_mutex_init(&b->lock, NULL);
		pthread_cond_init(&b->work, NULL);
		if (!b->arch || !b->images || !b->records || !b->workers || !b->clients ||
		    (cfg->repository && !b->repository) || (cfg->registry && !b->registry))
			rc = -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < n_targets; i++)
		pthread_mutex_init(&b->records[i].check_lock, NULL);
	for (unsigned i = 0; rc == 0 && i < jobs; i++) {
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
		call_waiters(queued->waiters, &res);
		free(queued->manifest_json);
		free(queued);
		queued = next;
	}
	size_t n_targets = b->cat->n_packages * TARGET_KINDS;
	for (size_t i = 0; b->records && i < n_targets; i++) {
		struct record *rec = &b->records[i];
		inputs_clear(&rec->seen);
		record_forget_package(rec);
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
	free(b->repository);
	free(b->registry);
	build_images_free(b->images);
	free(b);
}

static void reply_now(builder_done_fn done, void *ctx, int status, int fd, const char *document,
		      int64_t size)
{
	struct builder_result res = { .status = status, .fd = fd, .document = document,
				      .size = size, .built = false, .first = true };
	done(ctx, &res);
}

/* Replies at once when the record holds a good package built from hash.
 * Called with b->lock held; releases it when it replied (returns true). */
static bool reply_if_fresh(struct builder *b, struct record *rec, enum target_kind kind,
			   const char *hash, builder_done_fn done, void *ctx)
{
	if (!rec->has_package || strcmp(rec->input_hash, hash) != 0)
		return false;
	if (kind == TARGET_IMAGE) {
		char *document = image_document(rec);
		pthread_mutex_unlock(&b->lock);
		reply_now(done, ctx, document ? 0 : -ENOMEM, -1, document,
			  document ? (int64_t)strlen(document) : 0);
		free(document);
		return true;
	}
	int fd = open(rec->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_warn("package file %s is missing; rebuilding", rec->path);
		rec->has_package = false;
		return false;
	}
	int64_t size = rec->size;
	pthread_mutex_unlock(&b->lock);
	reply_now(done, ctx, 0, fd, NULL, size);
	close(fd);
	return true;
}

void builder_ensure(struct builder *b, size_t id, enum target_kind kind, builder_done_fn done,
		    void *ctx)
{
	size_t target = target_of(id, kind);
	struct record *rec = &b->records[target];
	struct waiter *w = calloc(1, sizeof(*w));
	char hash[SHA256_HEX_LEN + 1];
	char *manifest = NULL;
	if (!w) {
		reply_now(done, ctx, -ENOMEM, -1, NULL, 0);
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

	if (target_check_inputs(b, target, hash, &manifest) < 0) {
		free(w);
		reply_now(done, ctx, -EIO, -1, NULL, 0);
		return;
	}
	/* an image must also still exist (outside the lock: it may ask the daemon) */
	bool present = true;
	if (kind == TARGET_IMAGE) {
		pthread_mutex_lock(&b->lock);
		char *image_id = rec->image_id ? strdup(rec->image_id) : NULL;
		pthread_mutex_unlock(&b->lock);
		present = image_target_present(b, image_id);
		free(image_id);
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
	if (present && reply_if_fresh(b, rec, kind, hash, done, ctx)) {
		free(manifest);
		free(w);
		return;
	}
	struct job *job = b->stopping ? NULL : calloc(1, sizeof(*job));
	if (!job) {
		pthread_mutex_unlock(&b->lock);
		free(manifest);
		free(w);
		reply_now(done, ctx, -EIO, -1, NULL, 0);
		return;
	}
	job->target = target;
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

int builder_status(struct builder *b, size_t id, enum target_kind kind, bool check,
		   struct builder_status *out)
{
	size_t target = target_of(id, kind);
	struct record *rec = &b->records[target];
	char hash[SHA256_HEX_LEN + 1] = "";
	memset(out, 0, sizeof(*out));
	if (check) {
		if (target_check_inputs(b, target, hash, NULL) < 0)
			hash[0] = '\0';
	} else {
		pthread_mutex_lock(&rec->check_lock);
		record_load(b, target);
		pthread_mutex_unlock(&rec->check_lock);
	}
	pthread_mutex_lock(&b->lock);
	out->has_package = rec->has_package;
	out->builds = rec->builds;
	if (rec->has_package) {
		if (kind == TARGET_IMAGE) {
			char *document = image_document(rec);
			out->size = document ? (int64_t)strlen(document) : 0;
			free(document);
		} else {
			out->size = rec->size;
		}
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

char *builder_image_document(struct builder *b, size_t id)
{
	size_t target = target_of(id, TARGET_IMAGE);
	struct record *rec = &b->records[target];
	pthread_mutex_lock(&rec->check_lock);
	record_load(b, target);
	pthread_mutex_unlock(&rec->check_lock);
	pthread_mutex_lock(&b->lock);
	char *document = rec->has_package ? image_document(rec) : NULL;
	pthread_mutex_unlock(&b->lock);
	return document;
}

const char *builder_log_path(struct builder *b, size_t id, enum target_kind kind)
{
	size_t target = target_of(id, kind);
	struct record *rec = &b->records[target];
	pthread_mutex_lock(&rec->check_lock);
	record_load(b, target);
	pthread_mutex_unlock(&rec->check_lock);
	return rec->log_path;
}

int builder_evict(struct builder *b, size_t id, enum target_kind kind)
{
	size_t target = target_of(id, kind);
	struct record *rec = &b->records[target];
	struct cache_key key;
	target_key(b, target, &key);
	pthread_mutex_lock(&rec->check_lock);
	record_load(b, target);
	pthread_mutex_lock(&b->lock);
	char *image = rec->image ? strdup(rec->image) : NULL;
	pthread_mutex_unlock(&b->lock);
	int rc = cache_evict(b->cache, &key);
	if (rc == 0) {
		pthread_mutex_lock(&b->lock);
		record_forget_package(rec);
		pthread_mutex_unlock(&b->lock);
	}
	pthread_mutex_unlock(&rec->check_lock);
	if (rc == 0 && image) {
		/* the local tag goes too, so the next read really rebuilds */
		char *msg = NULL;
		struct docker *d = docker_new(NULL, &msg);
		int drc = d ? docker_image_remove(d, image, false, &msg) : -ENOMEM;
		if (drc < 0 && drc != -ENOENT)
			log_warn("evicted %s, but cannot remove its local tag: %s", image,
				 msg ? msg : strerror(-drc));
		free(msg);
		docker_free(d);
	}
	free(image);
	return rc;
}
