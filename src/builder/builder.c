/*
 * builder.c - job table, workers and freshness checks (design in builder.h).
 * What a target is built from and how is in target_zip.c / target_image.c.
 */
#include "builder_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "docker.h"
#include "buildlog.h"
#include "errmsg.h"
#include "fsutil.h"
#include "log.h"

/* How long the checker waits for the daemon before it goes on with what is
 * known (and remembers that the daemon does not answer). */
#define CHECK_DOCKER_TIMEOUT_S 5L
/* How often the checker tries again to sweep leftover containers while the
 * daemon does not answer. */
#define SWEEP_RETRY_S 30


/* The kinds of target, by enum target_kind: builder.c knows them only
 * through their ops (target.h). */
static const struct target_ops *const kinds[TARGET_KINDS] = {
	[TARGET_ZIP] = &target_zip_ops,
	[TARGET_IMAGE] = &target_image_ops,
};

const char *package_state_name(enum package_state s)
{
	static const char *const names[] = { "absent", "fresh", "stale", "building", "failed" };
	return names[s];
}


static size_t target_of(size_t id, enum target_kind kind)
{
	return id * TARGET_KINDS + kind;
}

void target_key(struct builder *b, size_t target, struct cache_key *key)
{
	const struct package_key *k = &record_of(b, target)->key;
	key->platform = k->platform;
	key->language = k->language;
	key->version = k->version;
	key->arch = k->arch;
	key->benchmark = k->benchmark;
	key->kind = kinds[target_kind_of(target)]->name;
}

struct catalog_gen *catalog_acquire(struct builder *b)
{
	pthread_mutex_lock(&b->gen_lock);
	struct catalog_gen *gen = b->gen;
	gen->refs++;
	pthread_mutex_unlock(&b->gen_lock);
	return gen;
}

static void gen_unref_locked(struct catalog_gen *gen, struct catalog_gen **to_free)
{
	*to_free = --gen->refs == 0 ? gen : NULL;
}

static void gen_free(struct catalog_gen *gen)
{
	if (!gen)
		return;
	if (gen->owned)
		catalog_free(gen->cat);
	free(gen);
}

void catalog_release(struct builder *b, struct catalog_gen *gen)
{
	struct catalog_gen *dead;
	pthread_mutex_lock(&b->gen_lock);
	gen_unref_locked(gen, &dead);
	pthread_mutex_unlock(&b->gen_lock);
	gen_free(dead);
}

/* The package of the current tree that target's record names, or NULL when
 * it is no longer in the tree. */
static const struct cat_package *package_now(struct builder *b, const struct catalog *cat,
					     size_t target)
{
	const struct package_key *k = &record_of(b, target)->key;
	return catalog_package(cat, k->platform, k->runtime, k->benchmark);
}

static void replace_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
}

/* The JSON document of a built image (malloc'd, ends in a newline), the
 * content of its .image file; caller holds b->lock. */
static char *image_document(const struct record *rec)
{
	char built_at[32] = "";
	struct tm tm;
	time_t t = (time_t)rec->built_at;
	if (gmtime_r(&t, &tm))
		strftime(built_at, sizeof(built_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *doc = json_pack("{s:s?, s:s?, s:s?, s:I, s:s, s:s, s:s?}",
				"image", rec->image, "id", rec->image_id, "digest", rec->digest,
				"size", (json_int_t)rec->size, "built_at", built_at,
				"input_hash", rec->input_hash, "registry", rec->registry);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	char *line = text ? str_printf("%s\n", text) : NULL;
	free(text);
	return line;
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
		rec->verified = false;
		memcpy(rec->sha256, e->sha256, sizeof(rec->sha256));
		snprintf(rec->input_hash, sizeof(rec->input_hash), "%s", e->input_hash ? e->input_hash : "");
		rec->built_at = e->built_at;
		rec->build_seconds = e->build_seconds;
		rec->last_used_ms = rec->saved_used_ms = e->last_used_ms;
		snprintf(rec->deps_hash, sizeof(rec->deps_hash), "%s", e->deps_hash ? e->deps_hash : "");
		rec->deps_reused = e->deps_reused;
		rec->unzipped_size = e->path ? e->unzipped_size : -1;
		rec->remote = e->path && e->remote;
	}
	if (rec->has_package && rec->path) {
		rec->shown_size = rec->size;
	} else if (rec->has_package) {
		char *document = image_document(rec);
		rec->shown_size = document ? (int64_t)strlen(document) : 0;
		free(document);
	}
	rec->last_failed = e->last_failed;
	snprintf(rec->failed_hash, sizeof(rec->failed_hash), "%s",
		 e->failed_input_hash ? e->failed_input_hash : "");
}

/* The size stays: a reader may still hold the evicted package open, and the
 * kernel must not be told it shrank (see builder_status). */
static void record_forget_package(struct record *rec)
{
	rec->has_package = false;
	rec->verified = false;
	rec->last_failed = false;
	replace_str(&rec->path, NULL);
	replace_str(&rec->image, NULL);
	replace_str(&rec->image_id, NULL);
	replace_str(&rec->digest, NULL);
	replace_str(&rec->registry, NULL);
}

/* A row whose unzipped size is not recorded (published by a sebsfs before
 * size limits, or cut short between publish and cache_set_unzipped_size)
 * learns it from its package file's central directory, once: no rebuild. */
static void learn_unzipped_size(struct cache *cache, const struct cache_key *key,
				struct cache_entry *e)
{
	char *why = NULL;
	int64_t size = -1;
	int fd = open(e->path, O_RDONLY | O_CLOEXEC);
	int rc = fd < 0 ? -errno : zip_unzipped_size(fd, &size, &why);
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = cache_set_unzipped_size(cache, key, e->sha256, size);
	if (rc == 0)
		e->unzipped_size = size;
	else if (rc != -ESTALE)
		log_warn("cannot read the unzipped size of %s: %s", e->path,
			 why ? why : strerror(-rc));
	free(why);
}

/* Loads the record from the cache on first use.  Called with check_lock held,
 * without b->lock (SQLite is not called under it). */
static void record_load(struct builder *b, size_t target)
{
	struct record *rec = record_of(b, target);
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
	if (rc == 0 && e.has_package && e.path && e.unzipped_size < 0)
		learn_unzipped_size(b->cache, &key, &e);

	pthread_mutex_lock(&b->lock);
	if (rc == 0)
		record_set_package(rec, &e);
	rec->log_path = log_path;
	rec->loaded = true;
	pthread_mutex_unlock(&b->lock);
	cache_entry_clear(&e);
}

/* Last use of a package, for LRU eviction.  Serving a package notes the
 * time in its record, in memory; the cache row is written only when what it
 * holds is more than USE_WRITE_BACK_MS older.  So a package opened in a tight
 * loop costs one SQLite write a minute instead of one per open, and a sebsfs
 * that dies uncleanly (kill -9) loses at most a minute of any package's
 * ranking.  Every newer use is written back before each LRU pass (so
 * eviction ranks by exact times) and in builder_free. */
#define USE_WRITE_BACK_MS 60000

/* Notes that rec's package is served now.  Returns the time to write back
 * to the cache (write_back_use), or 0.  Caller holds b->lock. */
static int64_t note_use_locked(struct record *rec)
{
	int64_t now = cache_now_ms();
	if (now > rec->last_used_ms)
		rec->last_used_ms = now;
	if (rec->last_used_ms - rec->saved_used_ms < USE_WRITE_BACK_MS)
		return 0;
	rec->saved_used_ms = rec->last_used_ms;
	return rec->last_used_ms;
}

/* Writes a noted use to the cache (no lock held; a failure is logged by the
 * cache and costs only ranking). */
static void write_back_use(struct builder *b, size_t target, int64_t used_ms)
{
	if (!used_ms)
		return;
	struct cache_key key;
	target_key(b, target, &key);
	cache_touch(b->cache, &key, used_ms);
}

/* Writes back every use not yet in the cache. */
static void flush_uses(struct builder *b)
{
	size_t n_targets = atomic_load(&b->n_targets);
	for (size_t t = 0; t < n_targets; t++) {
		struct record *rec = record_of(b, t);
		pthread_mutex_lock(&b->lock);
		int64_t used = 0;
		if (rec->has_package && rec->last_used_ms > rec->saved_used_ms)
			used = rec->saved_used_ms = rec->last_used_ms;
		pthread_mutex_unlock(&b->lock);
		write_back_use(b, t, used);
	}
}

int target_check_inputs(struct builder *b, size_t target, char hash[SHA256_HEX_LEN + 1],
			char **manifest_json, bool *current, char **errmsg)
{
	const struct target_ops *ops = kinds[target_kind_of(target)];
	struct record *rec = record_of(b, target);
	const struct package_key *k = &rec->key;
	/* the tree as it is now: the benchmark may have moved to another group,
	 * or left the tree (a reader may still ask about its package) */
	struct catalog_gen *gen = catalog_acquire(b);
	const struct cat_package *pkg = package_now(b, gen->cat, target);
	char *identity = NULL;
	char *bench_dir = pkg ? str_printf("benchmarks/%s/%s", pkg->benchmark->group,
					   pkg->benchmark->name) : NULL;
	bool oom = false;
	char *extra_dir = pkg && ops->extra_dir ? ops->extra_dir(k->platform, k->language, &oom)
						: NULL;
	char *why = NULL;
	int rc = !pkg ? -ENOENT : ops->identity(&b->env, gen->cat, pkg, &identity, current);
	catalog_release(b, gen);
	if (rc == -ENOENT)
		why = str_printf("%s/%s/%s is no longer in the tree", k->platform, k->runtime,
				 k->benchmark);
	if (rc == 0 && (!bench_dir || oom))
		rc = -ENOMEM;
	struct input_spec spec = {
		.root = b->root, .benchmark_dir = bench_dir,
		.platform = k->platform, .language = k->language,
		.version = k->version, .arch = k->arch,
		.identity = identity, .extra_dir = extra_dir,
	};
	struct input_manifest fresh;
	unsigned long arrived = atomic_load(&rec->checks_started);

	pthread_mutex_lock(&rec->check_lock);
	record_load(b, target);
	/* A burst of opens would walk the inputs once each, one after another.
	 * A check that began after this caller arrived saw the inputs no
	 * earlier than the caller asked: its hash answers the caller too (for
	 * the same identity), so a burst costs at most two walks.  Who needs
	 * the manifest (a build) walks on its own. */
	bool share = rc == 0 && !manifest_json && rec->shared_valid &&
		     atomic_load(&rec->checks_started) != arrived &&
		     strcmp(rec->shared_identity, identity) == 0;
	/* Nothing the last walk read changed since that walk began (inwatch.h):
	 * its hash stands, for the same identity, without a walk. */
	const char *walk_why = !b->inwatch ? "input_watch=off"
			       : manifest_json ? "a build records them"
			       : !rec->shared_valid ? "no earlier walk"
			       : strcmp(rec->shared_identity, identity) != 0 ? "the identity changed"
			       : NULL;
	if (!share && rc == 0 && !walk_why)
		share = inwatch_unchanged(rec->watch, bench_dir, &walk_why);
	if (share) {
		memcpy(hash, rec->shared_hash, SHA256_HEX_LEN + 1);
	} else if (rc == 0) {
		atomic_fetch_add(&rec->checks_started, 1);
		rec->shared_valid = false;
		inwatch_deps_free(rec->watch);
		rec->watch = b->inwatch ? inwatch_begin(b->inwatch, bench_dir) : NULL;
		spec.observe = rec->watch ? inwatch_observe : NULL;
		spec.observe_ctx = rec->watch;
		rc = inputs_collect(&spec, rec->seen_valid ? &rec->seen : NULL, &fresh, &why);
		log_debug("%s/%s/%s.%s: inputs walked (%zu files): %s", k->platform, k->runtime,
			  k->benchmark, ops->name, rc == 0 ? fresh.n_files : 0,
			  walk_why ? walk_why : "?");
		if (rc < 0) {
			inwatch_deps_free(rec->watch);
			rec->watch = NULL;
		}
	}
	if (rc == 0 && !share) {
		inputs_hash(&fresh, hash);
		if (manifest_json && !(*manifest_json = inputs_to_json(&fresh)))
			rc = -ENOMEM;
		inputs_clear(&rec->seen);
		rec->seen = fresh;
		rec->seen_valid = true;
		free(rec->shared_identity);
		rec->shared_identity = strdup(identity);
		memcpy(rec->shared_hash, hash, SHA256_HEX_LEN + 1);
		rec->shared_valid = rec->shared_identity != NULL;
	}
	pthread_mutex_unlock(&rec->check_lock);
	if (rc < 0) {
		char *line = str_printf("cannot read the inputs: %s", why ? why : strerror(-rc));
		log_debug("%s/%s/%s.%s: %s", k->platform, k->runtime, k->benchmark,
			  kinds[target_kind_of(target)]->name, line ? line : strerror(-rc));
		if (errmsg && !*errmsg)
			*errmsg = line;
		else
			free(line);
	}
	free(why);
	free(bench_dir);
	free(extra_dir);
	free(identity);
	return rc;
}

/* "a, b (changed), c (added) and 3 more": what differs between two manifests. */
static char *describe_changes(const char *old_json, const char *new_json)
{
	struct input_manifest a, b;
	bool have_a = old_json && inputs_from_json(old_json, &a) == 0;
	bool have_b = new_json && inputs_from_json(new_json, &b) == 0;
	char buf[1024] = "";
	size_t shown = 0, more = 0, i = 0, j = 0;
	if (!have_a || !have_b) {
		snprintf(buf, sizeof(buf), "(the input lists cannot be compared)");
		goto out;
	}
	if (strcmp(a.identity, b.identity) != 0) {
		snprintf(buf, sizeof(buf), "the builder identity (%s)", b.identity);
		shown++;
	}
	while (i < a.n_files || j < b.n_files) {
		int c = i == a.n_files ? 1 : j == b.n_files ? -1
			: strcmp(inputs_path(&a, i), inputs_path(&b, j));
		const char *what = NULL, *path = NULL;
		if (c < 0) {
			what = "removed";
			path = inputs_path(&a, i++);
		} else if (c > 0) {
			what = "added";
			path = inputs_path(&b, j++);
		} else {
			if (memcmp(a.files[i].sha256, b.files[j].sha256, SHA256_DIGEST_SIZE) != 0) {
				what = "changed";
				path = inputs_path(&b, j);
			} else if (a.files[i].executable != b.files[j].executable) {
				what = "mode changed";
				path = inputs_path(&b, j);
			}
			i++;
			j++;
		}
		if (!what)
			continue;
		if (shown < 5) {
			size_t len = strlen(buf);
			snprintf(buf + len, sizeof(buf) - len, "%s%s (%s)", shown ? ", " : "", path, what);
			shown++;
		} else {
			more++;
		}
	}
	if (more) {
		size_t len = strlen(buf);
		snprintf(buf + len, sizeof(buf) - len, " and %zu more", more);
	}
out:
	if (have_a)
		inputs_clear(&a);
	if (have_b)
		inputs_clear(&b);
	return strdup(buf);
}

/* What the job table passes to a kind's build for its callbacks. */
struct build_job {
	struct builder *b;
	struct job *job;
};

/* target_build.recheck_inputs: the job's hash and manifest from the inputs
 * as they are now. */
static int recheck_inputs(struct target_build *tb, char **errmsg)
{
	struct build_job *bj = tb->job;
	free(bj->job->manifest_json);
	bj->job->manifest_json = NULL;
	return target_check_inputs(bj->b, bj->job->target, bj->job->input_hash,
				   &bj->job->manifest_json, NULL, errmsg);
}

/* target_build.inputs_moved (see target.h). */
static int inputs_moved(struct target_build *tb, char **errmsg)
{
	struct build_job *bj = tb->job;
	struct job *job = bj->job;
	char hash[SHA256_HEX_LEN + 1];
	char *manifest = NULL;
	int rc = target_check_inputs(bj->b, job->target, hash, &manifest, NULL, errmsg);
	if (rc < 0)
		return rc;
	if (strcmp(hash, job->input_hash) == 0) {
		free(manifest);
		return 0;
	}
	char *what = describe_changes(job->manifest_json, manifest);
	build_log(tb->log_fd, "inputs changed during the build: %s", what ? what : "?");
	free(what);
	memcpy(job->input_hash, hash, sizeof(hash));
	free(job->manifest_json);
	job->manifest_json = manifest;
	return 1;
}


/* Opens the build log for a new build (truncated), creating its folder;
 * -errno (logged by the cache) when it cannot. */
static int open_build_log(struct builder *b, size_t target)
{
	struct cache_key key;
	target_key(b, target, &key);
	return cache_log_open(b->cache, &key);
}

/* The record's last good package as a cache row (strings copied), for a
 * kind's build to look at; caller holds b->lock. */
static int record_snapshot(const struct record *rec, struct cache_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->has_package = rec->has_package;
	if (!rec->has_package)
		return 0;
	e->input_hash = strdup(rec->input_hash);
	e->image = rec->image ? strdup(rec->image) : NULL;
	e->image_id = rec->image_id ? strdup(rec->image_id) : NULL;
	e->digest = rec->digest ? strdup(rec->digest) : NULL;
	e->registry = rec->registry ? strdup(rec->registry) : NULL;
	e->image_size = e->size = rec->size;
	e->build_seconds = rec->build_seconds;
	e->built_at = rec->built_at;
	memcpy(e->sha256, rec->sha256, sizeof(e->sha256));
	bool oom = !e->input_hash || (rec->image && !e->image) || (rec->image_id && !e->image_id) ||
		   (rec->digest && !e->digest) || (rec->registry && !e->registry);
	if (oom)
		cache_entry_clear(e);
	return oom ? -ENOMEM : 0;
}

/* Runs one build in a worker through its kind's ops: build, then publish.
 * Fills *out with the new row on success. */
static int build_target(struct builder *b, struct target_build *tb, struct cache_entry *out)
{
	struct build_job *bj = tb->job;
	struct job *job = bj->job;
	struct record *rec = record_of(b, job->target);
	const struct package_key *k = &rec->key;
	enum target_kind kind = target_kind_of(job->target);
	const struct target_ops *ops = kinds[kind];
	struct target_result *result = NULL;
	struct cache_entry previous = { 0 };
	char *errmsg = NULL;
	char catalog_err[512];
	struct catalog *now = NULL;
	int rc;

	target_key(b, job->target, &tb->key);
	if (job->input_error) {
		build_log(tb->log_fd, "building %s/%s/%s.%s", k->platform, k->runtime, k->benchmark,
			  ops->name);
		rc = -EIO;
		errmsg = strdup(job->input_error);
		goto out;
	}
	/* The inputs as the build starts, with the manifest recorded next to
	 * the package (the checks before only hashed them). */
	rc = target_check_inputs(b, job->target, job->input_hash, &job->manifest_json, NULL,
				 &errmsg);
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&b->lock);
	rc = record_snapshot(rec, &previous);
	pthread_mutex_unlock(&b->lock);
	if (rc < 0)
		goto out;
	tb->previous = &previous;
	/* Build from the tree as it is now, not as it was at mount time: an
	 * edited systems.json must change what steps 4 and 5 add. */
	now = catalog_load(b->root, b->arch, catalog_err, sizeof(catalog_err));
	tb->now = now;
	tb->now_pkg = now ? catalog_package(now, k->platform, k->runtime, k->benchmark) : NULL;
	if (!now) {
		rc = -EINVAL;
		errmsg = strdup(catalog_err);
	} else if (!tb->now_pkg) {
		rc = -ENOENT;
		errmsg = str_printf("%s/%s/%s is no longer in the tree (systems.json or config.json changed)",
				    k->platform, k->runtime, k->benchmark);
	} else {
		rc = ops->build(tb, &result, &errmsg);
		if (rc == 0)
			rc = ops->publish(tb, result, out, &errmsg);
	}
out:
	if (rc < 0 && rc != -ECANCELED && !(errmsg && strstr(errmsg, strerror(ENOSPC)))) {
		/* A step that failed on a full cache folder often says so only in
		 * its own output (cp, pip); the reason must say it. */
		char *note = cache_space_note(b->cache);
		if (note) {
			char *with = str_printf("%s; %s", errmsg ? errmsg : strerror(-rc), note);
			if (with) {
				free(errmsg);
				errmsg = with;
			}
			free(note);
		}
	}
	if (rc < 0) {
		const char *why = errmsg ? errmsg : strerror(-rc);
		if (rc == -ECANCELED) {
			/* not a verdict on the inputs: nothing is recorded */
			build_log(tb->log_fd, "build cancelled: %s", why);
		} else {
			build_log(tb->log_fd, "build failed: %s", why);
			cache_record_failure(b->cache, &tb->key, job->input_hash, why);
		}
		log_warn("build of %s/%s/%s.%s failed: %s", k->platform, k->runtime, k->benchmark,
			 ops->name, why);
	}
	if (result)
		ops->result_free(result);
	cache_entry_clear(&previous);
	free(errmsg);
	catalog_free(now);
	tb->now = NULL;
	tb->now_pkg = NULL;
	tb->previous = NULL;
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

static void job_free(struct job *job)
{
	if (!job)
		return;
	free(job->manifest_json);
	free(job->input_error);
	free(job);
}

/* Caller holds b->lock. */
static void enqueue(struct job **head, struct job **tail, struct job *job)
{
	job->next = NULL;
	if (*tail)
		(*tail)->next = job;
	else
		*head = job;
	*tail = job;
}

/* Caller holds b->lock. */
static struct job *dequeue(struct job **head, struct job **tail)
{
	struct job *job = *head;
	if (job) {
		*head = job->next;
		if (!*head)
			*tail = NULL;
		job->next = NULL;
	}
	return job;
}

/* Ends a job: detaches its waiters and calls them with res (fd and document
 * are borrowed by the callbacks).  Caller holds b->lock; it is released. */
static void finish_job_unlock(struct builder *b, struct job *job, struct builder_result *res)
{
	struct record *rec = record_of(b, job->target);
	struct waiter *w = job->waiters;
	job->waiters = NULL;
	rec->job = NULL;
	pthread_mutex_unlock(&b->lock);
	call_waiters(w, res);
	job_free(job);
}

/* Opens the record's good package for reading when it was built from hash
 * and its file is whole (size as recorded); otherwise forgets a package
 * whose file is missing or damaged and returns -1.  Caller holds b->lock. */
static int open_good_package(struct record *rec, const char *hash)
{
	if (!rec->has_package || !rec->path || strcmp(rec->input_hash, hash) != 0)
		return -1;
	int fd = open(rec->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0) {
		log_warn("package file %s is missing; rebuilding", rec->path);
	} else if (fstat(fd, &st) < 0 || st.st_size != rec->size) {
		log_warn("package file %s has %lld bytes, its record says %lld: rebuilding",
			 rec->path, (long long)st.st_size, (long long)rec->size);
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		record_forget_package(rec);
	return fd;
}

/* -EFBIG when this mount refuses rec's package for its size
 * (size_limits=strict; the package stays cached, and a mount without
 * strict serves it), else 0.  Caller holds b->lock. */
static int size_refusal_locked(const struct builder *b, const struct record *rec)
{
	char line[SIZE_WARNING_MAX];
	if (b->size_limits_mode != SIZE_LIMITS_STRICT || !rec->has_package || !rec->path ||
	    !size_limits_check(&b->size_limits, rec->key.platform, rec->size, rec->unzipped_size,
			       line, sizeof(line)))
		return 0;
	log_warn("open of %s/%s/%s refused (size_limits=strict): %s", rec->key.platform,
		 rec->key.runtime, rec->key.benchmark, line);
	return -EFBIG;
}

/* Hashes the package file (outside any lock); true when it matches. */
static bool package_verified(const char *path, const char *sha256)
{
	char hex[SHA256_HEX_LEN + 1];
	int rc = sha256_hex_file(path, hex);
	if (rc < 0) {
		log_warn("cannot verify package file %s: %s; rebuilding", path, strerror(-rc));
		return false;
	}
	if (strcmp(hex, sha256) != 0) {
		log_warn("package file %s hashes to %s, not to its name: rebuilding", path, hex);
		return false;
	}
	return true;
}

static bool needs_verify(const struct builder *b, const struct record *rec, enum target_kind kind)
{
	return kind == TARGET_ZIP && rec->has_package &&
	       (b->verify == VERIFY_ALWAYS || (b->verify == VERIFY_FIRST && !rec->verified));
}

/* ---- eviction: rm, and the least recently used beyond cache_max ---------- */

/* Evicts the target's cached package, the way rm does: the cache row and
 * (when no other row shares it) the file go, the record forgets the package
 * but keeps the size it shows, so readers holding the file open read on.
 * With sha256, only while the package is still that file (-ESTALE when it
 * was rebuilt or evicted meanwhile) and no job builds or checks it (-EBUSY);
 * *freed (may be NULL) gets the bytes unlinked.  *image (may be NULL) gets
 * the image reference of an image target. */
static int evict_target(struct builder *b, size_t target, const char *sha256, int64_t *freed,
			char **image)
{
	struct record *rec = record_of(b, target);
	struct cache_key key;
	target_key(b, target, &key);
	pthread_mutex_lock(&rec->check_lock);
	record_load(b, target);
	pthread_mutex_lock(&b->lock);
	bool busy = sha256 && rec->job;
	if (image)
		*image = rec->image ? strdup(rec->image) : NULL;
	pthread_mutex_unlock(&b->lock);
	int rc = busy ? -EBUSY : sha256 ? cache_evict_package(b->cache, &key, sha256, freed)
				       : cache_evict(b->cache, &key);
	if (rc == 0) {
		pthread_mutex_lock(&b->lock);
		record_forget_package(rec);
		pthread_mutex_unlock(&b->lock);
	}
	pthread_mutex_unlock(&rec->check_lock);
	return rc;
}

/* The zip target of a cache key, or SIZE_MAX when no package of this mount
 * ever had that key (a row left from an older tree or another arch).  A
 * package that left the tree keeps its target (ids are never reused). */
static size_t zip_target_of(struct builder *b, const struct cache_key *key)
{
	if (strcmp(key->kind, kinds[TARGET_ZIP]->name) != 0)
		return SIZE_MAX;
	size_t n_targets = atomic_load(&b->n_targets);
	for (size_t t = target_of(0, TARGET_ZIP); t < n_targets; t += TARGET_KINDS) {
		const struct package_key *k = &record_of(b, t)->key;
		if (strcmp(k->benchmark, key->benchmark) == 0 &&
		    strcmp(k->platform, key->platform) == 0 &&
		    strcmp(k->language, key->language) == 0 &&
		    strcmp(k->version, key->version) == 0 &&
		    strcmp(k->arch, key->arch) == 0)
			return t;
	}
	return SIZE_MAX;
}

/* "612 MiB", "40 KiB", "1.5 GiB", "900 B". */
static void format_size(int64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v == (double)(int64_t)v)
		snprintf(buf, len, "%lld %s", (long long)v, units[u]);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

/* Mount-relative name of a cached package for log lines. */
static void package_name(struct builder *b, size_t target, const struct cache_key *key,
			 char *buf, size_t len)
{
	if (target != SIZE_MAX) {
		const struct package_key *k = &record_of(b, target)->key;
		snprintf(buf, len, "%s/%s/%s.%s", k->platform, k->runtime, k->benchmark, key->kind);
	} else {
		snprintf(buf, len, "%s/%s-%s-%s/%s.%s (no longer in the tree)", key->platform,
			 key->language, key->version, key->arch, key->benchmark, key->kind);
	}
}

/* Whether a job builds or checks one of the targets of file f. */
static bool file_busy(struct builder *b, const struct cache_lru_file *f)
{
	bool busy = false;
	for (size_t k = 0; k < f->n_keys && !busy; k++) {
		size_t t = zip_target_of(b, &f->keys[k]);
		if (t == SIZE_MAX)
			continue;
		pthread_mutex_lock(&b->lock);
		busy = record_of(b, t)->job != NULL;
		pthread_mutex_unlock(&b->lock);
	}
	return busy;
}

/* One LRU pass (see builder.h): writes back the uses noted in memory, then,
 * with a cache_max, evicts the least recently used package files until the
 * total is at most cache_max.  keep is the target just built (SIZE_MAX:
 * none): its file is never evicted, nor one a job builds or checks. */
static void trim_cache(struct builder *b, size_t keep)
{
	struct cache_lru_file *files = NULL;
	size_t n_files = 0;
	int64_t total = 0;
	char have[32], limit[32], name[512];

	pthread_mutex_lock(&b->trim_lock);
	flush_uses(b);
	if (!b->cache_max)
		goto out;
	int rc = cache_lru(b->cache, &files, &n_files, &total);
	if (rc < 0) {
		log_warn("cache_max: cannot list the cache: %s; nothing evicted", strerror(-rc));
		goto out;
	}
	format_size(b->cache_max, limit, sizeof(limit));
	const struct cache_lru_file *kept = NULL;
	bool skipped_busy = false, failed = false;
	for (size_t i = 0; i < n_files && total > b->cache_max; i++) {
		const struct cache_lru_file *f = &files[i];
		if (f->layer[0]) {
			int64_t freed = 0;
			if (b->layers && deplayer_busy(b->layers, f->layer)) {
				skipped_busy = true;
				continue;
			}
			rc = cache_evict_layer(b->cache, f->layer, &freed);
			format_size(total, have, sizeof(have));
			if (rc == 0)
				log_info("evicted dependency layer %.12s (least recently used, cache %s >"
					 " cache_max %s)", f->layer, have, limit);
			else
				log_warn("cache_max: cannot evict dependency layer %.12s: %s", f->layer,
					 strerror(-rc));
			total -= freed;
			failed = failed || rc < 0;
			continue;
		}
		bool is_kept = false;
		for (size_t k = 0; k < f->n_keys && keep != SIZE_MAX; k++)
			is_kept = is_kept || zip_target_of(b, &f->keys[k]) == keep;
		if (is_kept) {
			kept = f;
			continue;
		}
		if (file_busy(b, f)) {
			skipped_busy = true;
			continue;
		}
		for (size_t k = 0; k < f->n_keys; k++) {
			const struct cache_key *key = &f->keys[k];
			size_t t = zip_target_of(b, key);
			int64_t freed = 0;
			rc = t != SIZE_MAX ? evict_target(b, t, f->sha256, &freed, NULL)
					   : cache_evict_package(b->cache, key, f->sha256, &freed);
			package_name(b, t, key, name, sizeof(name));
			if (rc == 0) {
				format_size(total, have, sizeof(have));
				log_info("evicted %s (least recently used, cache %s > cache_max %s)",
					 name, have, limit);
				total -= freed;
			} else if (rc == -EBUSY) {
				skipped_busy = true;
			} else if (rc != -ESTALE) {
				log_warn("cache_max: cannot evict %s: %s", name, strerror(-rc));
				failed = true;
			}
		}
	}
	if (total > b->cache_max) {
		format_size(total, have, sizeof(have));
		if (kept && kept->size > b->cache_max) {
			char size[32];
			format_size(kept->size, size, sizeof(size));
			package_name(b, keep, &kept->keys[0], name, sizeof(name));
			log_warn("%s alone is %s, more than cache_max %s: it is served and kept"
				 " until a later build evicts it", name, size, limit);
		} else {
			log_warn("cache %s stays over cache_max %s:%s%s%s", have, limit,
				 kept ? " the package just built is kept;" : "",
				 skipped_busy ? " packages being built or checked are kept;" : "",
				 failed ? " evictions failed (see above);" : "");
		}
	}
out:
	pthread_mutex_unlock(&b->trim_lock);
	cache_lru_free(files, n_files);
}

static void run_build(struct worker *w, struct job *job)
{
	struct builder *b = w->b;
	size_t target = job->target; /* the job is gone once its waiters are told */
	struct record *rec = record_of(b, target);
	struct cache_entry entry;
	struct timespec deadline;
	uint64_t drained;
	memset(&entry, 0, sizeof(entry));

	/* a cancel meant for the previous build must not end this one */
	while (read(w->cancel_fd, &drained, sizeof(drained)) > 0)
		;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += b->build_timeout;
	if (w->client) {
		docker_reset_cancel(w->client);
		docker_set_deadline(w->client, b->build_timeout ? &deadline : NULL);
	}
	pthread_mutex_lock(&b->lock);
	/* stopping was set while this job was being taken: builder_free cannot
	 * have cancelled it, so it is cancelled here */
	if (b->stopping) {
		uint64_t one = 1;
		ssize_t n = write(w->cancel_fd, &one, sizeof(one));
		(void)n;
	}
	pthread_mutex_unlock(&b->lock);

	struct build_job bj = { b, job };
	struct target_build ctx = {
		.env = &b->env, .client = w->client, .log_fd = open_build_log(b, job->target),
		.cancel_fd = w->cancel_fd, .deadline = b->build_timeout ? &deadline : NULL,
		.timeout = b->build_timeout, .started = target_now_seconds(),
		.input_hash = job->input_hash, .manifest_json = &job->manifest_json,
		.recheck_inputs = recheck_inputs, .inputs_moved = inputs_moved, .job = &bj,
		.package_fd = -1,
	};
	int rc = build_target(b, &ctx, &entry);
	/* Before the waiters are answered, so that once a read returns, the
	 * cache is within cache_max again; a pass costs milliseconds. */
	if (rc == 0 && target_kind_of(target) == TARGET_ZIP)
		trim_cache(b, target);
	if (w->client)
		docker_set_deadline(w->client, NULL);
	if (ctx.log_fd >= 0)
		close(ctx.log_fd);
	struct builder_result res = { .status = rc < 0 ? -EIO : 0, .fd = -1, .built = true };
	char *document = NULL;

	pthread_mutex_lock(&b->lock);
	if (rc == 0) {
		record_set_package(rec, &entry);
		rec->verified = true; /* hashed while it was published */
		if (target_kind_of(job->target) == TARGET_IMAGE) {
			document = image_document(rec);
			res.document = document;
			res.size = document ? (int64_t)strlen(document) : 0;
			res.status = document ? 0 : -ENOMEM;
		} else if ((res.status = size_refusal_locked(b, rec)) == 0) {
			/* the descriptor the package was written through: an eviction
			 * racing with this reply cannot take it away */
			res.fd = ctx.package_fd;
			ctx.package_fd = -1;
			res.size = entry.size;
			memcpy(res.sha256, entry.sha256, sizeof(res.sha256));
		}
	} else if (rc != -ECANCELED) {
		rec->last_failed = true;
		memcpy(rec->failed_hash, job->input_hash, sizeof(rec->failed_hash));
	}
	if (!(rc == 0 && entry.remote))
		rec->builds++;
	finish_job_unlock(b, job, &res);
	if (res.fd >= 0)
		close(res.fd);
	if (ctx.package_fd >= 0)
		close(ctx.package_fd);
	free(document);
	cache_entry_clear(&entry);
}

/* The checker's verdict on one job: serve the good package it finds, or
 * move the job to the build queue. */
static void check_job(struct builder *b, struct job *job, struct docker *client)
{
	size_t target = job->target;
	enum target_kind kind = target_kind_of(target);
	struct record *rec = record_of(b, target);
	char hash[SHA256_HEX_LEN + 1];
	char *why = NULL, *image_id = NULL, *path = NULL;
	char sha[SHA256_HEX_LEN + 1] = "";

	if (client)
		build_images_refresh(b->images, client);
	int rc = target_check_inputs(b, target, hash, NULL, NULL, &why);

	pthread_mutex_lock(&b->lock);
	bool fresh = rc == 0 && rec->has_package && strcmp(rec->input_hash, hash) == 0;
	if (fresh && kind == TARGET_IMAGE && rec->image_id)
		image_id = strdup(rec->image_id);
	if (fresh && needs_verify(b, rec, kind) && rec->path) {
		path = strdup(rec->path);
		memcpy(sha, rec->sha256, sizeof(sha));
	}
	pthread_mutex_unlock(&b->lock);

	if (image_id)
		fresh = build_images_known(b->images, image_id, NULL, NULL) == IMAGE_KNOWN_PRESENT;
	bool verified = fresh && path && package_verified(path, sha);

	pthread_mutex_lock(&b->lock);
	if (rc < 0) {
		job->input_error = why;
		why = NULL;
	} else {
		memcpy(job->input_hash, hash, sizeof(hash));
	}
	if (path && !verified) {
		fresh = false;
		record_forget_package(rec);
	} else if (path && strcmp(rec->sha256, sha) == 0) {
		rec->verified = true;
	}
	int fd = -1;
	if (fresh && kind == TARGET_ZIP)
		fresh = (fd = open_good_package(rec, hash)) >= 0;
	else if (fresh)
		fresh = rec->has_package && strcmp(rec->input_hash, hash) == 0;
	int refused = fresh && kind == TARGET_ZIP ? size_refusal_locked(b, rec) : 0;
	if (refused) {
		close(fd);
		fd = -1;
	}
	if (fresh) {
		char *document = kind == TARGET_IMAGE ? image_document(rec) : NULL;
		int64_t used = kind == TARGET_ZIP && !refused ? note_use_locked(rec) : 0;
		struct builder_result res = {
			.status = refused ? refused : (kind == TARGET_ZIP || document) ? 0 : -ENOMEM,
			.fd = fd,
			.document = document,
			.size = document ? (int64_t)strlen(document) : rec->size,
		};
		memcpy(res.sha256, rec->sha256, sizeof(res.sha256));
		finish_job_unlock(b, job, &res);
		if (fd >= 0)
			close(fd);
		free(document);
		write_back_use(b, target, used);
	} else {
		job->checking = false;
		enqueue(&b->queue_head, &b->queue_tail, job);
		pthread_cond_broadcast(&b->work);
		pthread_mutex_unlock(&b->lock);
	}
	free(why);
	free(image_id);
	free(path);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct builder *b = w->b;
	/* each worker owns its connection to the daemon (curl handles are not
	 * shared between threads); it connects on first use only */
	char *msg = NULL;
	struct docker *client = docker_new(NULL, &msg);
	if (!client)
		log_warn("builder: no Docker client: %s", msg ? msg : "out of memory");
	free(msg);
	pthread_mutex_lock(&b->lock);
	w->client = client;
	for (;;) {
		while (!b->queue_head && !b->stopping)
			pthread_cond_wait(&b->work, &b->lock);
		if (b->stopping)
			break;
		struct job *job = dequeue(&b->queue_head, &b->queue_tail);
		w->busy = true;
		pthread_mutex_unlock(&b->lock);
		run_build(w, job);
		pthread_mutex_lock(&b->lock);
		w->busy = false;
	}
	w->client = NULL;
	pthread_mutex_unlock(&b->lock);
	docker_free(client);
	return NULL;
}

/* Removes the local tag of an evicted image, so the next read really
 * rebuilds. */
static void remove_tag(struct docker *client, const char *image)
{
	char *msg = NULL;
	int rc = client ? docker_image_remove(client, image, false, &msg) : -ENOMEM;
	if (rc < 0 && rc != -ENOENT)
		log_warn("evicted %s, but cannot remove its local tag: %s", image,
			 msg ? msg : strerror(-rc));
	free(msg);
}

/* One pass of the background scrub: every package served since start-up is
 * hashed again; one that no longer matches its name is forgotten, so its next
 * open rebuilds it instead of serving it. */
static void scrub_pass(struct builder *b)
{
	size_t n_targets = atomic_load(&b->n_targets);
	for (size_t t = 0; t < n_targets; t++) {
		struct record *rec = record_of(b, t);
		char sha[SHA256_HEX_LEN + 1];
		pthread_mutex_lock(&b->lock);
		bool due = !b->stopping && target_kind_of(t) == TARGET_ZIP && rec->has_package &&
			   rec->verified && rec->path;
		char *path = due ? strdup(rec->path) : NULL;
		memcpy(sha, rec->sha256, sizeof(sha));
		pthread_mutex_unlock(&b->lock);
		if (!path)
			continue;
		if (!package_verified(path, sha)) {
			pthread_mutex_lock(&b->lock);
			if (rec->path && strcmp(rec->path, path) == 0 && strcmp(rec->sha256, sha) == 0)
				record_forget_package(rec);
			pthread_mutex_unlock(&b->lock);
		}
		free(path);
	}
}

/* The checker thread: jobs of the check queue, and tags to remove.  It is
 * the one place besides the workers that talks to the daemon, with the
 * client's bounded control timeouts. */
static bool time_reached(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* The sweep of containers left by a dead sebsfs (containers.c).  Returns
 * true when it is done; a daemon that does not answer is tried again later,
 * and said once in the log. */
static bool sweep_containers(struct builder *b, struct docker *client, bool *warned)
{
	char *msg = NULL;
	int rc = client ? containers_sweep(b, client, &msg) : -ENOMEM;
	/* No daemon (no socket, or nobody listening) runs no container now; the
	 * retry finds them once it is back.  Anything else is worth a line. */
	if (rc == -ECONNREFUSED)
		log_debug("no Docker daemon to look for leftover containers: %s",
			  msg ? msg : strerror(-rc));
	else if (rc < 0 && !*warned)
		log_warn("cannot look for containers left by an earlier sebsfs on this cache"
			 " (retrying every %d s): %s", SWEEP_RETRY_S, msg ? msg : strerror(-rc));
	*warned = *warned || (rc < 0 && rc != -ECONNREFUSED);
	free(msg);
	return rc == 0;
}

static void *checker_main(void *arg)
{
	struct builder *b = arg;
	struct docker *client = docker_new(NULL, NULL);
	if (client)
		docker_set_control_timeout(client, CHECK_DOCKER_TIMEOUT_S);
	struct timespec next_scrub, next_sweep;
	clock_gettime(CLOCK_REALTIME, &next_scrub);
	next_sweep = next_scrub; /* at once */
	next_scrub.tv_sec += b->scrub_interval;
	bool sweep_pending = true, sweep_warned = false, next_sweep_first = true;
	pthread_mutex_lock(&b->lock);
	for (;;) {
		int wait_rc = 0;
		while (!b->check_head && !b->untag && !b->stopping && wait_rc != ETIMEDOUT) {
			const struct timespec *until = sweep_pending ? &next_sweep : NULL;
			if (b->scrub_interval && (!until || next_scrub.tv_sec < until->tv_sec))
				until = &next_scrub;
			if (until)
				wait_rc = pthread_cond_timedwait(&b->work, &b->lock, until);
			else
				pthread_cond_wait(&b->work, &b->lock);
		}
		if (b->stopping)
			break;
		/* the first sweep comes before any check; a retry (the daemon did
		 * not answer) waits until no reader waits for the checker */
		bool first_sweep = sweep_pending && next_sweep_first;
		if (sweep_pending && time_reached(&next_sweep) &&
		    (first_sweep || (!b->check_head && !b->untag))) {
			next_sweep_first = false;
			pthread_mutex_unlock(&b->lock);
			sweep_pending = !sweep_containers(b, client, &sweep_warned);
			clock_gettime(CLOCK_REALTIME, &next_sweep);
			next_sweep.tv_sec += SWEEP_RETRY_S;
			pthread_mutex_lock(&b->lock);
			continue;
		}
		if (b->scrub_interval && time_reached(&next_scrub)) {
			pthread_mutex_unlock(&b->lock);
			scrub_pass(b);
			clock_gettime(CLOCK_REALTIME, &next_scrub);
			next_scrub.tv_sec += b->scrub_interval;
			pthread_mutex_lock(&b->lock);
			continue;
		}
		if (!b->check_head && !b->untag)
			continue;
		struct untag *u = b->untag;
		if (u) {
			b->untag = u->next;
			pthread_mutex_unlock(&b->lock);
			remove_tag(client, u->image);
			u->done(u->ctx, 0);
			free(u->image);
			free(u);
			pthread_mutex_lock(&b->lock);
			continue;
		}
		struct job *job = dequeue(&b->check_head, &b->check_tail);
		pthread_mutex_unlock(&b->lock);
		check_job(b, job, client);
		pthread_mutex_lock(&b->lock);
	}
	while (b->untag) {
		struct untag *u = b->untag;
		b->untag = u->next;
		u->done(u->ctx, 0);
		free(u->image);
		free(u);
	}
	pthread_mutex_unlock(&b->lock);
	docker_free(client);
	return NULL;
}

/* ---- package ids -------------------------------------------------------
 * A package key (platform, runtime folder, benchmark) keeps its id for the
 * whole mount: packages that appear get new ids at the end, packages that
 * leave keep theirs (and their records), and come back under it. */

static int key_cmp(const struct package_key *a, const char *platform, const char *runtime,
		   const char *benchmark)
{
	int c = strcmp(a->platform, platform);
	if (c == 0)
		c = strcmp(a->runtime, runtime);
	if (c == 0)
		c = strcmp(a->benchmark, benchmark);
	return c;
}

/* Position of pkg's key in ids_by_key; *found tells whether it is there. */
static size_t id_position(struct builder *b, const struct cat_package *pkg, bool *found)
{
	size_t lo = 0, hi = b->n_ids;
	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct package_key *k = &record_of(b, target_of(b->ids_by_key[mid], 0))->key;
		int c = key_cmp(k, pkg->platform->name, pkg->runtime->dirname, pkg->benchmark->name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void key_clear(struct package_key *k)
{
	free(k->platform);
	free(k->runtime);
	free(k->language);
	free(k->version);
	free(k->arch);
	free(k->benchmark);
}

static int key_set(struct package_key *k, const struct cat_package *pkg)
{
	*k = (struct package_key){
		.platform = strdup(pkg->platform->name), .runtime = strdup(pkg->runtime->dirname),
		.language = strdup(pkg->runtime->language), .version = strdup(pkg->runtime->version),
		.arch = strdup(pkg->runtime->arch), .benchmark = strdup(pkg->benchmark->name),
	};
	if (k->platform && k->runtime && k->language && k->version && k->arch && k->benchmark)
		return 0;
	key_clear(k);
	return -ENOMEM;
}

/* Gives pkg an id: its key's, or the next one with new records.  Only one
 * thread at a time (builder_new, then builder_update_catalog's caller). */
static int assign_id(struct builder *b, struct cat_package *pkg)
{
	bool found;
	size_t pos = id_position(b, pkg, &found);
	if (found) {
		pkg->id = b->ids_by_key[pos];
		return 0;
	}
	size_t first = atomic_load(&b->n_targets);
	size_t chunk = first / RECORD_CHUNK;
	static_assert(RECORD_CHUNK % TARGET_KINDS == 0, "a package's targets share a chunk");
	if (chunk >= MAX_RECORD_CHUNKS)
		return -ENOSPC;
	if (!b->record_chunks[chunk] &&
	    !(b->record_chunks[chunk] = calloc(RECORD_CHUNK, sizeof(struct record))))
		return -ENOMEM;
	size_t *ids = realloc(b->ids_by_key, (b->n_ids + 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	b->ids_by_key = ids;
	for (size_t kind = 0; kind < TARGET_KINDS; kind++) {
		struct record *rec = record_of(b, first + kind);
		if (key_set(&rec->key, pkg) < 0) {
			while (kind-- > 0)
				key_clear(&record_of(b, first + kind)->key);
			return -ENOMEM;
		}
	}
	for (size_t kind = 0; kind < TARGET_KINDS; kind++)
		pthread_mutex_init(&record_of(b, first + kind)->check_lock, NULL);
	memmove(&ids[pos + 1], &ids[pos], (b->n_ids - pos) * sizeof(*ids));
	ids[pos] = target_package(first);
	b->n_ids++;
	pkg->id = target_package(first);
	/* the records are complete before any thread can be given their id */
	atomic_store(&b->n_targets, first + TARGET_KINDS);
	return 0;
}

int builder_update_catalog(struct builder *b, struct catalog *cat)
{
	for (size_t i = 0; i < cat->n_packages; i++) {
		int rc = assign_id(b, &cat->packages[i]);
		if (rc < 0) {
			log_err("cannot add %s/%s/%s: %s", cat->packages[i].platform->name,
				cat->packages[i].runtime->dirname, cat->packages[i].benchmark->name,
				strerror(-rc));
			return rc;
		}
	}
	struct catalog_gen *gen = calloc(1, sizeof(*gen)), *dead;
	if (!gen)
		return -ENOMEM;
	*gen = (struct catalog_gen){ .cat = cat, .refs = 1, .owned = true };
	pthread_mutex_lock(&b->gen_lock);
	struct catalog_gen *old = b->gen;
	b->gen = gen;
	gen_unref_locked(old, &dead);
	pthread_mutex_unlock(&b->gen_lock);
	gen_free(dead);
	return 0;
}

struct builder *builder_new(const struct catalog *cat, struct cache *cache,
			    const struct builder_config *cfg, int *err)
{
	struct builder *b = calloc(1, sizeof(*b));
	unsigned jobs = cfg->jobs ? cfg->jobs : 1;
	int rc = b ? 0 : -ENOMEM;
	if (rc == 0) {
		pthread_mutex_init(&b->gen_lock, NULL);
		b->gen = calloc(1, sizeof(*b->gen));
		if (b->gen)
			*b->gen = (struct catalog_gen){ .cat = (struct catalog *)cat, .refs = 1 };
		b->root = strdup(cat->root);
		b->cache = cache;
		b->installer = cfg->installer;
		b->build_timeout = cfg->build_timeout;
		b->verify = cfg->verify;
		b->scrub_interval = cfg->scrub_interval;
		b->cache_max = cfg->cache_max;
		b->size_limits_mode = cfg->size_limits_mode;
		if (cfg->size_limits && size_limits_copy(&b->size_limits, cfg->size_limits) < 0)
			rc = -ENOMEM;
		b->arch = strdup(cfg->arch);
		b->installer_note = cfg->installer_note ? strdup(cfg->installer_note) : NULL;
		b->repository = cfg->repository ? strdup(cfg->repository) : NULL;
		b->registry = cfg->registry ? strdup(cfg->registry) : NULL;
		b->image_tag_prefix = cfg->image_tag_prefix ? strdup(cfg->image_tag_prefix) : NULL;
		b->images = build_images_new();
		b->layers = cfg->no_dep_layers ? NULL : deplayer_store_new(cache);
		if (cfg->remote_cache) {
			char *why = NULL;
			b->remote = remote_cache_new(cfg->remote_cache, cfg->remote_cache_mode,
						     cfg->remote_cache_certs, &why);
			if (!b->remote) {
				log_err("%s", why ? why : "remote_cache: out of memory");
				rc = why ? -EINVAL : -ENOMEM;
			} else {
				log_info("remote cache %s (%s)", cfg->remote_cache,
					 remote_cache_mode_name(cfg->remote_cache_mode));
				if (b->layers)
					deplayer_store_set_remote(b->layers, b->remote);
			}
			free(why);
		}
		b->workers = calloc(jobs, sizeof(*b->workers));
		pthread_mutex_init(&b->lock, NULL);
		pthread_mutex_init(&b->trim_lock, NULL);
		pthread_cond_init(&b->work, NULL);
		if (!b->gen || !b->root || !b->arch || !b->images || !b->workers ||
		    (!cfg->no_dep_layers && !b->layers) ||
		    (cfg->installer_note && !b->installer_note) ||
		    (cfg->repository && !b->repository) || (cfg->registry && !b->registry) ||
		    (cfg->image_tag_prefix && !b->image_tag_prefix))
			rc = -ENOMEM;
	}
	/* the mount-time packages: ids 0..n-1 in catalog order, as fs.c numbered
	 * them (assign_id hands out ids in order to keys it has not seen) */
	for (size_t i = 0; rc == 0 && i < cat->n_packages; i++) {
		struct cat_package probe = cat->packages[i];
		rc = assign_id(b, &probe);
		if (rc == 0 && probe.id != cat->packages[i].id)
			rc = -EINVAL;
	}
	if (rc == 0)
		rc = container_labels_init(b);
	if (rc == 0)
		b->env = (struct target_env){
			.cache = b->cache, .images = b->images, .installer = b->installer,
			.installer_note = b->installer_note, .repository = b->repository,
			.registry = b->registry, .image_tag_prefix = b->image_tag_prefix,
			.container_labels = (const char *const *)b->container_labels,
			.layers = b->layers, .size_limits = &b->size_limits,
			.size_limits_mode = b->size_limits_mode, .remote = b->remote,
		};
	if (rc == 0 && cfg->input_watch) {
		int wrc = inwatch_new(&b->inwatch);
		if (wrc < 0)
			log_warn("input watch: inotify_init1: %s%s; the inputs of every package are"
				 " walked at every open", strerror(-wrc),
				 wrc == -EMFILE ? " (the limit fs.inotify.max_user_instances is reached)"
				 : "");
	}
	for (unsigned i = 0; rc == 0 && i < jobs; i++) {
		struct worker *w = &b->workers[i];
		w->b = b;
		w->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->cancel_fd < 0) {
			rc = -errno;
			break;
		}
		rc = -pthread_create(&w->thread, NULL, worker_main, w);
		if (rc == 0)
			b->n_workers++;
		else
			close(w->cancel_fd);
	}
	if (rc == 0) {
		rc = -pthread_create(&b->checker, NULL, checker_main, b);
		b->checker_started = rc == 0;
	}
	if (rc < 0) {
		log_err("cannot start the builder: %s", strerror(-rc));
		builder_free(b);
		*err = rc;
		return NULL;
	}
	/* a cache left over the limit (cache_max lowered since, or a crash
	 * before a pass) is trimmed before anything is served */
	trim_cache(b, SIZE_MAX);
	return b;
}

/* Takes the jobs of a queue out of their records (they no longer run);
 * caller holds b->lock.  Their waiters are told by fail_jobs. */
static struct job *take_queue(struct builder *b, struct job **head, struct job **tail)
{
	struct job *jobs = *head;
	*head = *tail = NULL;
	for (struct job *j = jobs; j; j = j->next)
		record_of(b, j->target)->job = NULL;
	return jobs;
}

static void fail_jobs(struct job *job)
{
	struct builder_result res = { .status = -EIO, .fd = -1 };
	while (job) {
		struct job *next = job->next;
		call_waiters(job->waiters, &res);
		job->waiters = NULL;
		job_free(job);
		job = next;
	}
}

void builder_stop(struct builder *b)
{
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	struct job *queued = take_queue(b, &b->queue_head, &b->queue_tail);
	struct job *checks = take_queue(b, &b->check_head, &b->check_tail);
	pthread_cond_broadcast(&b->work);
	/* running builds end their programs and Docker calls now; each worker
	 * then removes its container and work folder, publishes nothing and
	 * answers its waiters */
	for (unsigned i = 0; i < b->n_workers; i++) {
		struct worker *w = &b->workers[i];
		uint64_t one = 1;
		ssize_t n = write(w->cancel_fd, &one, sizeof(one));
		(void)n;
		if (w->client)
			docker_cancel(w->client);
	}
	pthread_mutex_unlock(&b->lock);
	fail_jobs(queued);
	fail_jobs(checks);
}

void builder_free(struct builder *b)
{
	if (!b)
		return;
	builder_stop(b);
	if (b->checker_started)
		pthread_join(b->checker, NULL);
	for (unsigned i = 0; i < b->n_workers; i++) {
		pthread_join(b->workers[i].thread, NULL);
		close(b->workers[i].cancel_fd);
	}
	flush_uses(b);
	size_t n_targets = atomic_load(&b->n_targets);
	for (size_t i = 0; i < n_targets; i++) {
		struct record *rec = record_of(b, i);
		inputs_clear(&rec->seen);
		free(rec->shared_identity);
		inwatch_deps_free(rec->watch);
		record_forget_package(rec);
		free(rec->log_path);
		key_clear(&rec->key);
		pthread_mutex_destroy(&rec->check_lock);
	}
	for (size_t c = 0; c < MAX_RECORD_CHUNKS && b->record_chunks[c]; c++)
		free(b->record_chunks[c]);
	free(b->ids_by_key);
	if (b->gen)
		catalog_release(b, b->gen);
	pthread_mutex_destroy(&b->gen_lock);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->trim_lock);
	pthread_cond_destroy(&b->work);
	free(b->root);
	free(b->workers);
	free(b->arch);
	free(b->installer_note);
	free(b->repository);
	free(b->registry);
	free(b->image_tag_prefix);
	build_images_free(b->images);
	deplayer_store_free(b->layers);
	remote_cache_free(b->remote);   /* after the workers: no new pushes */
	container_labels_free(b);
	inwatch_free(b->inwatch);
	size_limits_free(&b->size_limits);
	free(b);
}

static void reply_now(builder_done_fn done, void *ctx, int status, int fd, const char *document,
		      int64_t size, const char *sha256)
{
	struct builder_result res = { .status = status, .fd = fd, .document = document,
				      .size = size, .built = false, .first = true };
	snprintf(res.sha256, sizeof(res.sha256), "%s", sha256 ? sha256 : "");
	done(ctx, &res);
}

/* Replies at once with the record's good package built from hash.  Called
 * with b->lock held; releases it when it replied (returns true). */
static bool reply_if_fresh(struct builder *b, size_t target, const char *hash,
			   builder_done_fn done, void *ctx)
{
	struct record *rec = record_of(b, target);
	enum target_kind kind = target_kind_of(target);
	if (kind == TARGET_IMAGE) {
		if (!rec->has_package || strcmp(rec->input_hash, hash) != 0)
			return false;
		char *document = image_document(rec);
		pthread_mutex_unlock(&b->lock);
		reply_now(done, ctx, document ? 0 : -ENOMEM, -1, document,
			  document ? (int64_t)strlen(document) : 0, NULL);
		free(document);
		return true;
	}
	int fd = open_good_package(rec, hash);
	if (fd < 0)
		return false;
	int refused = size_refusal_locked(b, rec);
	if (refused) {
		pthread_mutex_unlock(&b->lock);
		close(fd);
		reply_now(done, ctx, refused, -1, NULL, 0, NULL);
		return true;
	}
	int64_t size = rec->size;
	char sha256[SHA256_HEX_LEN + 1];
	memcpy(sha256, rec->sha256, sizeof(sha256));
	int64_t used = note_use_locked(rec);
	pthread_mutex_unlock(&b->lock);
	reply_now(done, ctx, 0, fd, NULL, size, sha256);
	close(fd);
	write_back_use(b, target, used);
	return true;
}

/* Adds w to the running job of rec; caller holds b->lock. */
static bool join_job(struct record *rec, struct waiter *w)
{
	if (!rec->job)
		return false;
	w->next = rec->job->waiters;
	rec->job->waiters = w;
	return true;
}

void builder_ensure(struct builder *b, size_t id, enum target_kind kind, builder_done_fn done,
		    void *ctx)
{
	size_t target = target_of(id, kind);
	struct record *rec = record_of(b, target);
	struct waiter *w = calloc(1, sizeof(*w));
	char hash[SHA256_HEX_LEN + 1] = "";
	char *why = NULL, *image_id = NULL;
	bool current = true;
	if (!w) {
		reply_now(done, ctx, -ENOMEM, -1, NULL, 0, NULL);
		return;
	}
	w->done = done;
	w->ctx = ctx;

	/* Joining a running build needs no input check. */
	pthread_mutex_lock(&b->lock);
	bool joined = join_job(rec, w);
	pthread_mutex_unlock(&b->lock);
	if (joined)
		return;

	/* only the hash: the manifest is taken when a build starts */
	int rc = target_check_inputs(b, target, hash, NULL, &current, &why);
	/* an image must also still exist, as far as is known now */
	enum image_known image = IMAGE_KNOWN_PRESENT;
	if (rc == 0 && kind == TARGET_IMAGE) {
		pthread_mutex_lock(&b->lock);
		image_id = rec->image_id ? strdup(rec->image_id) : NULL;
		pthread_mutex_unlock(&b->lock);
		bool image_current = true;
		image = image_id ? build_images_known(b->images, image_id, NULL, &image_current)
				 : IMAGE_KNOWN_ABSENT;
		current = current && image_current;
	}

	pthread_mutex_lock(&b->lock);
	if (join_job(rec, w)) {
		/* someone started it while we were checking */
		pthread_mutex_unlock(&b->lock);
		goto out;
	}
	bool matches = rc == 0 && rec->has_package && strcmp(rec->input_hash, hash) == 0;
	bool verify = matches && needs_verify(b, rec, kind);
	if (matches && current && image == IMAGE_KNOWN_PRESENT && !verify &&
	    reply_if_fresh(b, target, hash, done, ctx)) {
		free(w);
		goto out;
	}
	struct job *job = b->stopping ? NULL : calloc(1, sizeof(*job));
	if (!job) {
		pthread_mutex_unlock(&b->lock);
		free(w);
		reply_now(done, ctx, -EIO, -1, NULL, 0, NULL);
		goto out;
	}
	job->target = target;
	memcpy(job->input_hash, hash, sizeof(hash));
	if (rc < 0) {
		job->input_error = why ? why : strdup(strerror(-rc));
		why = NULL;
	}
	job->waiters = w;
	rec->job = job;
	/* A good package may still be served when what was not known now is
	 * learnt, or once it is verified: that is the checker's call. */
	job->checking = rc == 0 && rec->has_package &&
			(!current || verify || image == IMAGE_UNKNOWN);
	if (job->checking)
		enqueue(&b->check_head, &b->check_tail, job);
	else
		enqueue(&b->queue_head, &b->queue_tail, job);
	pthread_cond_broadcast(&b->work);
	pthread_mutex_unlock(&b->lock);
out:
	free(why);
	free(image_id);
}

bool builder_forget_waiter(struct builder *b, size_t id, enum target_kind kind, void *ctx)
{
	struct record *rec = record_of(b, target_of(id, kind));
	bool found = false;
	pthread_mutex_lock(&b->lock);
	for (struct waiter **p = rec->job ? &rec->job->waiters : NULL; p && *p; p = &(*p)->next) {
		if ((*p)->ctx == ctx) {
			struct waiter *w = *p;
			*p = w->next;
			free(w);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return found;
}

int builder_status(struct builder *b, size_t id, enum target_kind kind, bool check,
		   struct builder_status *out)
{
	size_t target = target_of(id, kind);
	struct record *rec = record_of(b, target);
	char hash[SHA256_HEX_LEN + 1] = "";
	memset(out, 0, sizeof(*out));
	if (check) {
		if (target_check_inputs(b, target, hash, NULL, NULL, NULL) < 0)
			hash[0] = '\0';
	} else {
		pthread_mutex_lock(&rec->check_lock);
		record_load(b, target);
		pthread_mutex_unlock(&rec->check_lock);
	}
	pthread_mutex_lock(&b->lock);
	out->has_package = rec->has_package;
	out->builds = rec->builds;
	/* An evicted package keeps showing its last size: a reader that still
	 * holds it open must not see the kernel cut its file to nothing. */
	out->size = rec->shown_size;
	if (rec->has_package) {
		memcpy(out->sha256, rec->sha256, sizeof(out->sha256));
		memcpy(out->input_hash, rec->input_hash, sizeof(out->input_hash));
		out->built_at = rec->built_at;
		out->build_seconds = rec->build_seconds;
		memcpy(out->deps_hash, rec->deps_hash, sizeof(out->deps_hash));
		out->deps_reused = rec->deps_reused;
		out->remote = rec->remote;
	}
	out->unzipped_size = rec->has_package && rec->path ? rec->unzipped_size : -1;
	if (rec->has_package && rec->path && b->size_limits_mode != SIZE_LIMITS_OFF)
		size_limits_check(&b->size_limits, rec->key.platform, rec->size, rec->unzipped_size,
				  out->size_warning, sizeof(out->size_warning));
	bool fresh = rec->has_package && (!check || strcmp(hash, rec->input_hash) == 0);
	if (rec->job && !rec->job->checking)
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

int builder_sebs_hash(struct builder *b, size_t id, char out[SEBS_HASH_HEX_LEN + 1],
		      char **errmsg)
{
	struct catalog_gen *gen = catalog_acquire(b);
	const struct cat_package *pkg = package_now(b, gen->cat, target_of(id, TARGET_ZIP));
	int rc;
	if (pkg)
		rc = sebs_hash(b->root, pkg->platform->name, pkg->runtime->language,
			       pkg->benchmark->path, pkg->runtime->variant, out, errmsg);
	else
		rc = -ENODATA;
	catalog_release(b, gen);
	return rc;
}

int builder_image_name(struct builder *b, size_t id, char **name, char **errmsg)
{
	struct catalog_gen *gen = catalog_acquire(b);
	const struct cat_package *pkg = package_now(b, gen->cat, target_of(id, TARGET_IMAGE));
	int rc = pkg ? target_image_name(&b->env, gen->cat, pkg, name, errmsg) : -ENOENT;
	catalog_release(b, gen);
	return rc;
}

char *builder_image_document(struct builder *b, size_t id)
{
	size_t target = target_of(id, TARGET_IMAGE);
	struct record *rec = record_of(b, target);
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
	struct record *rec = record_of(b, target);
	pthread_mutex_lock(&rec->check_lock);
	record_load(b, target);
	pthread_mutex_unlock(&rec->check_lock);
	return rec->log_path;
}

void builder_evict(struct builder *b, size_t id, enum target_kind kind, builder_evicted_fn done,
		   void *ctx)
{
	char *image = NULL;
	int rc = evict_target(b, target_of(id, kind), NULL, NULL, &image);
	struct untag *u = rc == 0 && image ? calloc(1, sizeof(*u)) : NULL;
	if (u) {
		*u = (struct untag){ .image = image, .done = done, .ctx = ctx };
		pthread_mutex_lock(&b->lock);
		bool queued = !b->stopping;
		if (queued) {
			u->next = b->untag;
			b->untag = u;
			pthread_cond_broadcast(&b->work);
			image = NULL;   /* the checker's now */
			done = NULL;    /* the checker tells */
		}
		pthread_mutex_unlock(&b->lock);
		if (!queued)
			free(u);
	}
	free(image);
	if (done)
		done(ctx, rc);
}
