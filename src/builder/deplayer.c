/*
 * deplayer.c - dependency layers (see deplayer.h): the key, the isolated
 * install, the capture of its result, and the table that lets concurrent
 * builds share one layer build.
 */
#include "deplayer.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buildlog.h"
#include "depfiles.h"
#include "errmsg.h"
#include "fsutil.h"
#include "layout.h"
#include "log.h"
#include "pipeline.h"
#include "remotecache.h"
#include "walk.h"
#include "zipnorm.h"
#include "zipsplice.h"
#include "ziptree.h"

/* Bump when what a layer holds or how its key is made changes. */
#define DEPLAYER_FORMAT 1
/* A waiting build looks at its cancel fd and deadline this often. */
#define WAIT_SLICE_NS (200 * 1000 * 1000L)

/* ---- the table of layers in use ------------------------------------------------ */

struct layer_use {
	char key[SHA256_HEX_LEN + 1];
	bool building;
	bool verified;              /* its files matched layer.json since start-up */
	unsigned users;
	struct layer_use *next;
};

struct deplayer_store {
	struct cache *cache;
	struct remote_cache *remote;    /* NULL: none */
	pthread_mutex_t lock;
	pthread_cond_t changed;     /* a build of a layer ended */
	struct layer_use *uses;     /* protected by lock */
};

struct deplayer_store *deplayer_store_new(struct cache *cache)
{
	struct deplayer_store *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cache = cache;
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->changed, &attr);
	pthread_condattr_destroy(&attr);
	return s;
}

void deplayer_store_set_remote(struct deplayer_store *s, struct remote_cache *rc)
{
	s->remote = rc;
}

void deplayer_store_free(struct deplayer_store *s)
{
	if (!s)
		return;
	while (s->uses) {
		struct layer_use *u = s->uses;
		s->uses = u->next;
		free(u);
	}
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static struct layer_use *find_use_locked(struct deplayer_store *s, const char *key)
{
	for (struct layer_use *u = s->uses; u; u = u->next)
		if (strcmp(u->key, key) == 0)
			return u;
	return NULL;
}

static struct layer_use *add_use_locked(struct deplayer_store *s, const char *key)
{
	struct layer_use *u = find_use_locked(s, key);
	if (u)
		return u;
	if (!(u = calloc(1, sizeof(*u))))
		return NULL;
	memcpy(u->key, key, sizeof(u->key));
	u->next = s->uses;
	s->uses = u;
	return u;
}

/* An entry goes when nobody uses it, unless it remembers a verification. */
static void drop_use_locked(struct deplayer_store *s, struct layer_use *u)
{
	if (u->users > 0 || u->building || u->verified)
		return;
	for (struct layer_use **p = &s->uses; *p; p = &(*p)->next) {
		if (*p == u) {
			*p = u->next;
			free(u);
			return;
		}
	}
}

bool deplayer_busy(struct deplayer_store *s, const char *key)
{
	pthread_mutex_lock(&s->lock);
	struct layer_use *u = find_use_locked(s, key);
	bool busy = u && (u->building || u->users > 0);
	pthread_mutex_unlock(&s->lock);
	return busy;
}

const char *deplayer_folder(const char *language)
{
	if (strcmp(language, "python") == 0)
		return ".python_packages";
	if (strcmp(language, "nodejs") == 0)
		return "node_modules";
	return NULL;
}

/* ---- hashing a path (file or folder) ------------------------------------------- */

struct tree_hash {
	struct sha256_ctx ctx;
	int rootfd;
	char *errmsg;
};

/* One entry of a folder: its path, type, exec bit, and content or target. */
static int hash_entry(const struct walk_entry *e, void *arg)
{
	struct tree_hash *h = arg;
	char kind = S_ISDIR(e->st.st_mode) ? 'd' : e->link ? 'l' : (e->st.st_mode & 0111) ? 'x' : 'f';
	sha256_update(&h->ctx, 1, (const uint8_t *)&kind);
	sha256_update(&h->ctx, strlen(e->path) + 1, (const uint8_t *)e->path);
	if (e->link) {
		sha256_update(&h->ctx, strlen(e->link) + 1, (const uint8_t *)e->link);
		return 0;
	}
	if (!S_ISREG(e->st.st_mode))
		return 0;
	char hex[SHA256_HEX_LEN + 1];
	int fd = openat(e->dirfd, e->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc = fd < 0 ? -errno : sha256_hex_fd(fd, hex);
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		errmsg_set(&h->errmsg, "cannot read %s: %s", e->path, strerror(-rc));
		return rc;
	}
	sha256_update(&h->ctx, SHA256_HEX_LEN, (const uint8_t *)hex);
	return 0;
}

/* The digest of workdir/rel: a file's content (with its exec bit), a
 * folder's whole tree (links kept as links), or "missing". */
static int hash_path(const char *dir, const char *rel, char hex[SHA256_HEX_LEN + 1],
		     char **errmsg)
{
	char *abs = path_join(dir, rel);
	struct stat st;
	int rc = 0;
	if (!abs)
		return -ENOMEM;
	if (lstat(abs, &st) < 0) {
		snprintf(hex, SHA256_HEX_LEN + 1, "missing");
	} else if (S_ISREG(st.st_mode)) {
		char content[SHA256_HEX_LEN + 1];
		rc = sha256_hex_file(abs, content);
		if (rc == 0) {
			char *s = str_printf("%c%s", (st.st_mode & 0111) ? 'x' : 'f', content);
			if (s)
				sha256_hex_buf(s, strlen(s), hex);
			else
				rc = -ENOMEM;
			free(s);
		} else {
			errmsg_set(errmsg, "cannot read %s: %s", abs, strerror(-rc));
		}
	} else {
		struct tree_hash h = { 0 };
		struct walk_options opts = { .links = WALK_KEEP, .label = rel };
		sha256_init(&h.ctx);
		sha256_update(&h.ctx, 1, (const uint8_t *)(S_ISDIR(st.st_mode) ? "D" : "?"));
		rc = S_ISDIR(st.st_mode) ? walk_tree(abs, &opts, hash_entry, &h, &h.errmsg) : -EINVAL;
		sha256_digest_hex(&h.ctx, hex);
		if (rc < 0)
			errmsg_set(errmsg, "cannot read %s: %s", abs, h.errmsg ? h.errmsg : strerror(-rc));
		free(h.errmsg);
	}
	free(abs);
	return rc;
}

/* ---- the key -------------------------------------------------------------------- */

struct layer_inputs {
	json_t *doc;               /* what the key covers, as JSON */
	struct depfiles paths;     /* depfile and local files, relative to workdir */
	char **hashes;             /* hash of each path, same order */
	char key[SHA256_HEX_LEN + 1];
};

static void layer_inputs_clear(struct layer_inputs *in)
{
	json_decref(in->doc);
	for (size_t i = 0; in->hashes && i < in->paths.n; i++)
		free(in->hashes[i]);
	free(in->hashes);
	depfiles_clear(&in->paths);
	memset(in, 0, sizeof(*in));
}

static int collect_inputs(const struct deplayer_request *req, struct layer_inputs *in,
			  char **errmsg)
{
	int rc = depfiles_scan(req->workdir, req->language, req->depfile, &in->paths, errmsg);
	if (rc < 0)
		return rc;
	in->hashes = calloc(in->paths.n ? in->paths.n : 1, sizeof(*in->hashes));
	json_t *files = json_object();
	json_t *env = json_array();
	in->doc = json_object();
	if (!in->hashes || !files || !env || !in->doc) {
		json_decref(files);
		json_decref(env);
		return -ENOMEM;
	}
	for (size_t i = 0; i < in->paths.n && rc == 0; i++) {
		char hex[SHA256_HEX_LEN + 1];
		if ((rc = hash_path(req->workdir, in->paths.paths[i], hex, errmsg)) == 0 &&
		    !(in->hashes[i] = strdup(hex)))
			rc = -ENOMEM;
		if (rc == 0)
			json_object_set_new(files, in->paths.paths[i], json_string(hex));
	}
	for (const char *const *e = req->env; e && *e; e++)
		json_array_append_new(env, json_string(*e));
	char pkgsh[SHA256_HEX_LEN + 1] = "";
	if (rc == 0 && req->package_sh && (rc = sha256_hex_file(req->package_sh, pkgsh)) < 0)
		errmsg_set(errmsg, "cannot read %s: %s", req->package_sh, strerror(-rc));
	json_object_set_new(in->doc, "format", json_integer(DEPLAYER_FORMAT));
	json_object_set_new(in->doc, "installer", json_string(req->installer));
	json_object_set_new(in->doc, "environment", env);
	json_object_set_new(in->doc, "language", json_string(req->language));
	json_object_set_new(in->doc, "version", json_string(req->version));
	json_object_set_new(in->doc, "arch", json_string(req->arch));
	json_object_set_new(in->doc, "dependency_file", json_string(req->depfile));
	json_object_set_new(in->doc, "package_sh", req->package_sh ? json_string(pkgsh) : json_null());
	json_object_set_new(in->doc, "files", files);
	if (rc < 0)
		return rc;
	char *text = json_dumps(in->doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	sha256_hex_buf(text, strlen(text), in->key);
	free(text);
	return 0;
}

/* ---- building one layer ---------------------------------------------------------- */

/* Copies the key's inputs (and nothing else) from the work folder into dir. */
static int place_inputs(const struct deplayer_request *req, const struct layer_inputs *in,
			const char *dir, char **errmsg)
{
	int rc = 0;
	for (size_t i = 0; i < in->paths.n && rc == 0; i++) {
		const char *rel = in->paths.paths[i];
		char *src = path_join(req->workdir, rel);
		char *dst = path_join(dir, rel);
		char *parent = dst ? strdup(dst) : NULL;
		char *slash = parent ? strrchr(parent, '/') : NULL;
		if (!src || !dst || !parent)
			rc = -ENOMEM;
		if (rc == 0 && slash) {
			*slash = '\0';
			rc = mkdir_p(parent, 0755);
		}
		char *msg = NULL;
		struct stat st;
		if (rc == 0 && lstat(src, &st) < 0 && errno == ENOENT)
			goto next; /* see add_local */
		if (rc == 0 && (rc = copy_tree(src, dst, req->workdir, &msg)) < 0)
			errmsg_set(errmsg, "cannot copy %s into the dependency layer's folder: %s", rel,
				msg ? msg : strerror(-rc));
next:
		free(msg);
		free(src);
		free(dst);
		free(parent);
	}
	return rc;
}

/* Writes doc as the layer.json at path (NULL: out of memory). */
static int write_layer_json(const char *path, const json_t *doc, char **errmsg)
{
	char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	int rc = text && path ? write_file_atomic(path, text, strlen(text)) : -ENOMEM;
	if (rc < 0)
		errmsg_set(errmsg, "cannot write layer.json: %s", strerror(-rc));
	free(text);
	return rc;
}

/* After the install ran in dir: moves its result into layer folder out
 * (deps.zip, extra/) and describes it in out/layer.json. */
static int capture(const struct deplayer_request *req, const struct layer_inputs *in,
		   const char *dir, const char *out, bool *has_deps, char **errmsg)
{
	const char *depname = deplayer_folder(req->language);
	char **names = NULL;
	size_t n = 0;
	json_t *extras = json_array(), *removed = json_array();
	char *tree = path_join(out, "tree");
	char *extra = path_join(out, "extra");
	int rc = (extras && removed && tree && extra) ? list_dir_sorted(dir, &names, &n) : -ENOMEM;
	if (rc < 0)
		errmsg_set(errmsg, "cannot list %s: %s", dir, strerror(-rc));
	*has_deps = false;
	/* inputs the install changed or removed */
	for (size_t i = 0; rc == 0 && i < in->paths.n; i++) {
		char hex[SHA256_HEX_LEN + 1];
		if ((rc = hash_path(dir, in->paths.paths[i], hex, errmsg)) < 0)
			break;
		if (strcmp(hex, in->hashes[i]) == 0)
			continue;
		if (strcmp(hex, "missing") == 0) {
			json_array_append_new(removed, json_string(in->paths.paths[i]));
			continue;
		}
		char *src = path_join(dir, in->paths.paths[i]);
		char *dst = path_join(extra, in->paths.paths[i]);
		char *msg = NULL;
		rc = (src && dst) ? mkdir_p(extra, 0700) : -ENOMEM;
		if (rc == 0)
			rc = copy_tree(src, dst, dir, &msg);
		if (rc < 0)
			errmsg_set(errmsg, "cannot keep %s: %s", in->paths.paths[i], msg ? msg : strerror(-rc));
		else
			json_array_append_new(extras, json_string(in->paths.paths[i]));
		free(msg);
		free(src);
		free(dst);
	}
	/* what the install added at the top */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		bool is_input = false;
		for (size_t j = 0; j < in->paths.n && !is_input; j++) {
			size_t len = strlen(names[i]);
			is_input = strncmp(in->paths.paths[j], names[i], len) == 0 &&
				   (in->paths.paths[j][len] == '\0' || in->paths.paths[j][len] == '/');
		}
		if (is_input)
			continue; /* handled above, as a whole path */
		char *src = path_join(dir, names[i]);
		bool deps = depname && strcmp(names[i], depname) == 0;
		char *parent = deps ? tree : extra;
		char *dst = src ? path_join(parent, names[i]) : NULL;
		rc = dst ? mkdir_p(parent, 0700) : -ENOMEM;
		if (rc == 0 && rename(src, dst) < 0)
			rc = -errno;
		if (rc < 0)
			errmsg_set(errmsg, "cannot move %s into the layer: %s", names[i], strerror(-rc));
		else if (deps)
			*has_deps = true;
		else
			json_array_append_new(extras, json_string(names[i]));
		free(src);
		free(dst);
	}
	if (rc == 0 && *has_deps) {
		char *zip = path_join(out, "deps.zip");
		char *msg = NULL;
		int fd = zip ? open(zip, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -ENOMEM;
		if (fd < 0) {
			rc = zip ? -errno : -ENOMEM;
			errmsg_set(errmsg, "cannot create %s: %s", zip ? zip : "deps.zip", strerror(-rc));
		} else {
			rc = layout_clean_dependencies(tree, &msg);
			if (rc == 0)
				rc = ziptree_write(tree, fd, &msg);
			if (rc == 0 && fsync(fd) < 0)
				rc = -errno;
			if (rc < 0)
				errmsg_set(errmsg, "cannot zip the dependency layer: %s",
					msg ? msg : strerror(-rc));
			close(fd);
		}
		free(msg);
		free(zip);
	}
	if (rc == 0)
		rc = rm_rf(tree);
	/* what the layer's files must hash to when it is used (verify_layer) */
	char zip_hex[SHA256_HEX_LEN + 1], extra_hex[SHA256_HEX_LEN + 1];
	if (rc == 0)
		rc = hash_path(out, "deps.zip", zip_hex, errmsg);
	if (rc == 0)
		rc = hash_path(out, "extra", extra_hex, errmsg);
	if (rc == 0) {
		json_t *doc = json_deep_copy(in->doc);
		char *path = path_join(out, "layer.json");
		if (doc) {
			json_object_set_new(doc, "deps_zip_sha256", json_string(zip_hex));
			json_object_set_new(doc, "extra_sha256", json_string(extra_hex));
			json_object_set_new(doc, "key", json_string(in->key));
			json_object_set(doc, "extra", extras);
			json_object_set(doc, "removed", removed);
			json_object_set_new(doc, "dependency_folder",
					    *has_deps ? json_string(depname) : json_null());
		}
		rc = write_layer_json(path, doc, errmsg);
		free(path);
		json_decref(doc);
	}
	json_decref(extras);
	json_decref(removed);
	str_list_free(names, n);
	free(tree);
	free(extra);
	return rc;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *list_paths(const struct depfiles *l)
{
	size_t len = 1;
	for (size_t i = 0; i < l->n; i++)
		len += strlen(l->paths[i]) + 2;
	char *s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			strcat(s, ", ");
		strcat(s, l->paths[i]);
	}
	return s;
}

static int build_layer(struct deplayer_store *s, const struct deplayer_request *req,
		       const struct layer_inputs *in, bool *has_deps, char **errmsg)
{
	char *dir = NULL, *out = NULL;
	double t0 = now_seconds();
	int rc = cache_make_workdir(s->cache, &dir);
	if (rc == 0)
		rc = cache_make_tmpdir(s->cache, &out);
	if (rc < 0) {
		errmsg_set(errmsg, "cannot create a folder for the dependency layer: %s", strerror(-rc));
		goto out;
	}
	char *what = list_paths(&in->paths);
	build_log(req->log_fd, "dependency layer %.12s: not cached; installing in a folder that"
		  " holds only %s", in->key, what ? what : "its inputs");
	free(what);
	if ((rc = place_inputs(req, in, dir, errmsg)) < 0)
		goto out;
	if ((rc = req->install(req->install_ctx, dir, errmsg)) < 0) {
		build_log(req->log_fd, "dependency layer %.12s: the install failed; it ran with only"
			  " the files above (a dependency install that reads other files of the"
			  " package cannot be cached: name them in the dependency file, or use"
			  " -o dep_layers=off)", in->key);
		goto out;
	}
	if ((rc = capture(req, in, dir, out, has_deps, errmsg)) < 0)
		goto out;
	struct cache_layer published;
	rc = cache_publish_layer(s->cache, in->key, out, now_seconds() - t0, &published);
	if (rc < 0) {
		errmsg_set(errmsg, "cannot publish the dependency layer: %s", cache_strerror(rc));
		goto out;
	}
	build_log(req->log_fd, "dependency layer %.12s: built in %.2f s, %lld bytes", in->key,
		  published.build_seconds, (long long)published.size);
	cache_layer_clear(&published);
out:
	if (dir)
		rm_rf(dir);
	if (out && rc < 0)
		rm_rf(out);
	free(dir);
	free(out);
	return rc;
}

/* 0, or -ECANCELED/-ETIMEDOUT once the waiting build must give up. */
static int wait_slice_locked(struct deplayer_store *s, const struct deplayer_request *req)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	if (req->deadline && (until.tv_sec > req->deadline->tv_sec ||
			      (until.tv_sec == req->deadline->tv_sec &&
			       until.tv_nsec >= req->deadline->tv_nsec)))
		return -ETIMEDOUT;
	if (req->cancel_fd >= 0) {
		struct pollfd p = { .fd = req->cancel_fd, .events = POLLIN };
		if (poll(&p, 1, 0) > 0)
			return -ECANCELED;
	}
	until.tv_nsec += WAIT_SLICE_NS;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&s->changed, &s->lock, &until);
	return 0;
}

static bool layer_has_deps(const char *path)
{
	char *zip = path_join(path, "deps.zip");
	bool has = zip && path_is_file(zip);
	free(zip);
	return has;
}

/* A cached layer is used the first time after start-up only when its files
 * still hash to what layer.json recorded when it was built: a damaged
 * deps.zip would otherwise be spliced into every package that uses it (the
 * splice checks the zip's structure, not its data). */
static int verify_layer(const char *path, char **why)
{
	char *doc_path = path_join(path, "layer.json");
	json_error_t jerr;
	json_t *doc = doc_path ? json_load_file(doc_path, 0, &jerr) : NULL;
	const char *want[2] = { json_string_value(json_object_get(doc, "deps_zip_sha256")),
				json_string_value(json_object_get(doc, "extra_sha256")) };
	static const char *const names[2] = { "deps.zip", "extra" };
	int rc = 0;
	if (!want[0] || !want[1]) {
		*why = str_printf("%s: %s", doc_path ? doc_path : "layer.json",
				  doc ? "no recorded digests" : jerr.text);
		rc = -EBADMSG;
	}
	for (int i = 0; i < 2 && rc == 0; i++) {
		char hex[SHA256_HEX_LEN + 1];
		char *msg = NULL;
		if ((rc = hash_path(path, names[i], hex, &msg)) < 0)
			*why = str_printf("%s", msg ? msg : strerror(-rc));
		else if (strcmp(hex, want[i]) != 0) {
			*why = str_printf("%s/%s does not match the SHA-256 recorded when it was built",
					  path, names[i]);
			rc = -EBADMSG;
		}
		free(msg);
	}
	json_decref(doc);
	free(doc_path);
	return rc;
}

/* ---- the remote cache ---------------------------------------------------------- */

/* What a layer folder may hold at its top. */
static bool layer_member(const char *name)
{
	return strcmp(name, "deps.zip") == 0 || strcmp(name, "extra") == 0 ||
	       strcmp(name, "layer.json") == 0;
}

/* A layer unpacked from the registry into dir must be the layer of in's
 * key: only a layer's members; a layer.json whose key and key inputs are
 * in's and whose dependency folder agrees with deps.zip; files that hash to
 * what it records; a deps.zip whose central directory the splice can
 * index. */
static int check_unpacked(const char *dir, const struct layer_inputs *in, char **errmsg)
{
	char **names = NULL;
	size_t n = 0;
	char *doc_path = path_join(dir, "layer.json");
	json_error_t jerr;
	json_t *doc = NULL;
	char *why = NULL;
	int rc = doc_path ? list_dir_sorted(dir, &names, &n) : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < n; i++)
		if (!layer_member(names[i])) {
			errmsg_set(errmsg, "the layer holds %s, which no layer has", names[i]);
			rc = -EBADMSG;
		}
	if (rc == 0)
		doc = json_load_file(doc_path, 0, &jerr);
	if (rc == 0 && !json_is_object(doc)) {
		errmsg_set(errmsg, "its layer.json: %s", doc ? "not a JSON object" : jerr.text);
		rc = -EBADMSG;
	}
	const char *key = json_string_value(json_object_get(doc, "key"));
	if (rc == 0 && (!key || strcmp(key, in->key) != 0)) {
		errmsg_set(errmsg, "its layer.json names key %.64s, not %s", key ? key : "(none)",
			in->key);
		rc = -EBADMSG;
	}
	const char *field;
	json_t *value;
	json_object_foreach(in->doc, field, value) {
		if (rc == 0 && !json_equal(value, json_object_get(doc, field))) {
			errmsg_set(errmsg, "its layer.json's \"%s\" is not this layer's", field);
			rc = -EBADMSG;
		}
	}
	bool has_deps = layer_has_deps(dir);
	if (rc == 0 && has_deps != json_is_string(json_object_get(doc, "dependency_folder"))) {
		errmsg_set(errmsg, "its layer.json's dependency_folder disagrees with its deps.zip");
		rc = -EBADMSG;
	}
	if (rc == 0 && (rc = verify_layer(dir, &why)) < 0)
		errmsg_set(errmsg, "%s", why ? why : strerror(-rc));
	if (rc == 0 && has_deps) {
		char *zip = path_join(dir, "deps.zip");
		int fd = zip ? open(zip, O_RDONLY | O_CLOEXEC) : -1;
		struct zip_index *index = NULL;
		char *msg = NULL;
		rc = fd < 0 ? (zip ? -errno : -ENOMEM) : zip_index_read(fd, &index, &msg);
		if (rc < 0)
			errmsg_set(errmsg, "its deps.zip: %s", msg ? msg : strerror(-rc));
		zip_index_free(index);
		if (fd >= 0)
			close(fd);
		free(msg);
		free(zip);
	}
	free(why);
	json_decref(doc);
	free(doc_path);
	str_list_free(names, n);
	return rc;
}

/* Adds "fetched_from" to the layer.json of the layer unpacked in dir. */
static int note_origin(const char *dir, const struct remote_cache_origin *from, char **errmsg)
{
	char *doc_path = path_join(dir, "layer.json");
	json_t *doc = doc_path ? json_load_file(doc_path, 0, NULL) : NULL;
	json_t *origin = json_pack("{s:s, s:s, s:s, s:s?, s:s}", "registry", from->registry,
				   "repository", from->repository, "tag", from->tag,
				   "manifest", from->manifest_digest, "sha256", from->sha256);
	int rc = doc && origin && json_object_set(doc, "fetched_from", origin) == 0 ?
		 write_layer_json(doc_path, doc, errmsg) : -ENOMEM;

	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory");
	json_decref(origin);
	json_decref(doc);
	free(doc_path);
	return rc;
}

struct layer_fetch {
	struct deplayer_store *s;
	const struct layer_inputs *in;
	char *dir;                  /* the layer, unpacked under tmp/ */
	char *origin;               /* where it came from, for the log */
};

/* remote_cache_check_fn: unpacks the fetched archive at path into a new
 * folder (f->dir) and checks it. */
static int unpack_fetched(void *ctx, const char *path, const struct remote_cache_origin *from,
			  char **errmsg)
{
	struct layer_fetch *f = ctx;
	int fd = -1;
	int rc = cache_make_tmpdir(f->s->cache, &f->dir);

	if (rc < 0) {
		errmsg_set(errmsg, "cannot create a folder for it: %s", strerror(-rc));
		return rc;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		errmsg_set(errmsg, "cannot open %s: %s", path, strerror(errno));
	} else {
		char *msg = NULL;
		if ((rc = zip_extract(fd, f->dir, NULL, &msg)) < 0)
			errmsg_set(errmsg, "cannot unpack it: %s", msg ? msg : strerror(-rc));
		free(msg);
	}
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		rc = check_unpacked(f->dir, f->in, errmsg);
	if (rc == 0)
		rc = note_origin(f->dir, from, errmsg);
	if (rc == 0 && !(f->origin = str_printf("%s/%s (tag %s, manifest %s, blob sha256:%s)",
						from->registry, from->repository, from->tag,
						from->manifest_digest ? from->manifest_digest
								      : "(unknown)", from->sha256)))
		rc = -ENOMEM;
	if (rc < 0) {
		rm_rf(f->dir);
		free(f->dir);
		f->dir = NULL;
	}
	return rc;
}

/* The layer of in's key from the remote cache, published here: 1 when it
 * was, 0 when it must be installed here, -ECANCELED. */
static int fetch_layer(struct deplayer_store *s, const struct deplayer_request *req,
		       const struct layer_inputs *in)
{
	char tag[sizeof(REGCACHE_LAYER_TAG_PREFIX) + SHA256_HEX_LEN];
	char what[64];
	char *tmp = NULL;
	struct layer_fetch f = { .s = s, .in = in };
	double t0 = now_seconds();

	snprintf(tag, sizeof(tag), REGCACHE_LAYER_TAG_PREFIX "%s", in->key);
	snprintf(what, sizeof(what), "dependency layer %.12s", in->key);
	struct remote_cache_lookup l = {
		.kind = &regcache_layer_kind, .tag = tag, .what = what,
		.otherwise = "installing here", .log_fd = req->log_fd, .cancel_fd = req->cancel_fd,
		.check = unpack_fetched, .check_ctx = &f,
	};
	int got = remote_cache_fetch_artifact(s->remote, s->cache, &l, &tmp);
	if (got != 1)
		return got;
	unlink(tmp);
	free(tmp);
	struct cache_layer published;
	int rc = cache_publish_layer(s->cache, in->key, f.dir, now_seconds() - t0, &published);
	if (rc < 0) {
		build_log(req->log_fd, "dependency layer %.12s: cannot publish the fetched layer: %s;"
			  " installing here", in->key, cache_strerror(rc));
	} else {
		build_log(req->log_fd, "dependency layer %s fetched from %s in %.2f s, %lld bytes:"
			  " no install", in->key, f.origin, published.build_seconds,
			  (long long)published.size);
		cache_layer_clear(&published);
	}
	free(f.dir);
	free(f.origin);
	return rc < 0 ? 0 : 1;
}

/* Pushes the layer just installed here (held by the caller) in the
 * background; a failure is a line in the logs, never the build's. */
static void push_layer(struct deplayer_store *s, const struct deplayer_request *req,
		       const struct deplayer *l)
{
	struct ziptree_options zopts = { .store = true, .label = "dependency layer" };
	char tag[sizeof(REGCACHE_LAYER_TAG_PREFIX) + SHA256_HEX_LEN];
	char what[64], sha[SHA256_HEX_LEN + 1];
	char *tmp = cache_tmp_path(s->cache, ".zip"), *msg = NULL;
	struct stat st;
	int fd = tmp ? open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	int rc = fd < 0 ? (tmp ? -errno : -ENOMEM) : ziptree_write_opts(l->path, fd, &zopts, &msg);

	snprintf(tag, sizeof(tag), REGCACHE_LAYER_TAG_PREFIX "%s", l->key);
	snprintf(what, sizeof(what), "dependency layer %.12s", l->key);
	if (rc == 0 && (fsync(fd) < 0 || fstat(fd, &st) < 0 || lseek(fd, 0, SEEK_SET) < 0))
		rc = -errno;
	if (rc == 0)
		rc = sha256_hex_fd(fd, sha);
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		build_log(req->log_fd, "%s: cannot push it to the remote cache: %s", what,
			  msg ? msg : strerror(-rc));
		log_warn("%s: cannot push it to the remote cache: %s", what, msg ? msg : strerror(-rc));
		if (fd >= 0)
			unlink(tmp);
	} else {
		struct regcache_layer layer = {
			.language = req->language, .version = req->version, .arch = req->arch,
			.installer = req->installer, .sha256 = sha, .size = st.st_size,
			.created = time(NULL),
		};
		struct regcache_artifact a;
		regcache_layer_artifact(&layer, &a);
		remote_cache_push_artifact(s->remote, tag, tmp, &a, what, true);
		build_log(req->log_fd, "%s: pushing to the remote cache in the background (tag %s)",
			  what, tag);
	}
	free(msg);
	free(tmp);
}

int deplayer_obtain(struct deplayer_store *s, const struct deplayer_request *req,
		    struct deplayer *out, char **errmsg)
{
	struct layer_inputs in = { 0 };
	memset(out, 0, sizeof(*out));
	int rc = collect_inputs(req, &in, errmsg);
	if (rc < 0) {
		build_log(req->log_fd, "error: dependency layer: %s",
			  errmsg && *errmsg ? *errmsg : strerror(-rc));
		layer_inputs_clear(&in);
		return rc;
	}
	memcpy(out->key, in.key, sizeof(out->key));
	bool waited = false, built = false, installed = false, fetched = false;
	struct layer_use *u = NULL;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		u = find_use_locked(s, in.key);
		if (u && u->building) {
			if (!waited)
				build_log(req->log_fd, "dependency layer %.12s: another build is making"
					  " it; waiting for it", in.key);
			waited = true;
			if ((rc = wait_slice_locked(s, req)) < 0)
				break;
			continue;
		}
		pthread_mutex_unlock(&s->lock);
		struct cache_layer found;
		int got = cache_layer_get(s->cache, in.key, &found);
		pthread_mutex_lock(&s->lock);
		if (got == 0) {
			u = add_use_locked(s, in.key);
			if (!u) {
				rc = -ENOMEM;
				cache_layer_clear(&found);
				break;
			}
			if (built)
				u->verified = true; /* just written and fsynced */
			if (!u->verified) {
				u->users++; /* eviction leaves it alone meanwhile */
				pthread_mutex_unlock(&s->lock);
				char *why = NULL;
				int v = verify_layer(found.path, &why);
				if (v < 0) {
					build_log(req->log_fd, "dependency layer %.12s is damaged (%s):"
						  " evicting it and installing again", in.key,
						  why ? why : strerror(-v));
					log_warn("dependency layer %s is damaged (%s): evicted",
						 found.path, why ? why : strerror(-v));
					cache_evict_layer(s->cache, in.key, NULL);
				}
				free(why);
				pthread_mutex_lock(&s->lock);
				u->users--;
				if (v < 0) {
					cache_layer_clear(&found);
					continue;
				}
				u->verified = true;
			}
			u->users++;
			out->path = found.path;
			out->reused = !built;
			if (!built) {
				char when[32];
				time_t t = (time_t)(found.built_ms / 1000);
				struct tm tm;
				gmtime_r(&t, &tm);
				strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
				build_log(req->log_fd, "dependency layer %.12s: reused (built %s in"
					  " %.2f s, %lld bytes): no install", in.key, when,
					  found.build_seconds, (long long)found.size);
			}
			break;
		}
		if (got != -ENOENT || built) {
			rc = got == -ENOENT ? -EIO : got;
			errmsg_set(errmsg, "cannot read the dependency layer %.12s: %s", in.key,
				cache_strerror(rc));
			break;
		}
		u = add_use_locked(s, in.key);
		if (!u) {
			rc = -ENOMEM;
			break;
		}
		if (u->building)
			continue;
		u->building = true;
		pthread_mutex_unlock(&s->lock);
		bool has_deps = false;
		int got_remote = remote_cache_reads(s->remote) ? fetch_layer(s, req, &in) : 0;
		fetched = got_remote == 1;
		rc = got_remote < 0 ? got_remote
		     : fetched ? 0 : build_layer(s, req, &in, &has_deps, errmsg);
		installed = rc == 0 && !fetched;
		pthread_mutex_lock(&s->lock);
		u->building = false;
		pthread_cond_broadcast(&s->changed);
		if (rc < 0) {
			drop_use_locked(s, u);
			break;
		}
		built = true; /* now read it back like any cached layer */
	}
	pthread_mutex_unlock(&s->lock);
	if (rc == 0) {
		out->has_deps = layer_has_deps(out->path);
		cache_layer_touch(s->cache, out->key, cache_now_ms());
		if (installed && remote_cache_writes(s->remote))
			push_layer(s, req, out);
	} else if (errmsg && *errmsg) {
		/* install failures were logged by the installer; this is the summary */
		build_log(req->log_fd, "error: dependency layer %.12s: %s", in.key, *errmsg);
	}
	layer_inputs_clear(&in);
	return rc;
}

int deplayer_apply(const struct deplayer *l, const char *workdir, char **errmsg)
{
	char *doc_path = path_join(l->path, "layer.json");
	json_error_t jerr;
	json_t *doc = doc_path ? json_load_file(doc_path, 0, &jerr) : NULL;
	int rc = 0;
	if (!json_is_object(doc)) {
		errmsg_set(errmsg, "%s: %s", doc_path ? doc_path : "layer.json",
			doc ? "not a JSON object" : jerr.text);
		rc = -EBADMSG;
	}
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(doc, "removed"), i, v) {
		if (rc < 0)
			break;
		char *rel = json_is_string(v) ? depfiles_normalize("", json_string_value(v)) : NULL;
		char *p = rel ? path_join(workdir, rel) : NULL;
		if (!p) {
			rc = -EBADMSG;
			errmsg_set(errmsg, "%s: a bad \"removed\" entry", doc_path);
		} else if ((rc = rm_rf(p)) < 0) {
			errmsg_set(errmsg, "cannot remove %s: %s", rel, strerror(-rc));
		}
		free(rel);
		free(p);
	}
	json_array_foreach(json_object_get(doc, "extra"), i, v) {
		char *rel = json_is_string(v) ? depfiles_normalize("", json_string_value(v)) : NULL;
		char *extra = path_join(l->path, "extra");
		char *src = rel && extra ? path_join(extra, rel) : NULL;
		char *dst = rel ? path_join(workdir, rel) : NULL;
		char *msg = NULL;
		if (rc == 0) {
			if (!src || !dst) {
				rc = -EBADMSG;
				errmsg_set(errmsg, "%s: a bad \"extra\" entry", doc_path);
			} else {
				/* a changed input replaces the work folder's copy whole */
				rc = rm_rf(dst);
				if (rc == 0)
					rc = copy_tree(src, dst, extra, &msg);
				if (rc < 0)
					errmsg_set(errmsg, "cannot copy %s from the dependency layer: %s", rel,
						msg ? msg : strerror(-rc));
			}
		}
		free(msg);
		free(rel);
		free(extra);
		free(src);
		free(dst);
	}
	json_decref(doc);
	free(doc_path);
	return rc;
}

char *deplayer_zip_path(const struct deplayer *l)
{
	return l->has_deps ? path_join(l->path, "deps.zip") : NULL;
}

void deplayer_release(struct deplayer_store *s, struct deplayer *l)
{
	if (!l->path)
		return;
	pthread_mutex_lock(&s->lock);
	struct layer_use *u = find_use_locked(s, l->key);
	if (u && u->users > 0) {
		u->users--;
		drop_use_locked(s, u);
	}
	pthread_mutex_unlock(&s->lock);
	free(l->path);
	l->path = NULL;
}
