/*
 * inputs.c - input manifests and hashes (see inputs.h for what counts).
 *
 * The walk is the cost of every freshness check, so it only stats: content is
 * hashed when a file is new, its (size, mtime_ns, ctime_ns, inode, device)
 * moved, or its previous stat was racy.  mtime alone misses an edit that
 * keeps the size and restores the mtime (cp -p, rsync -a, touch -r), which
 * the ctime catches; inode catches editors that replace files by rename, the
 * device a folder swapped for another filesystem's copy.  An edit within the
 * same timestamp tick as the recorded stat changes none of them: the racy
 * rule (inputs.h) re-hashes such a file on the next check.
 */
#include "inputs.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "walk.h"

#define SYSTEMS_JSON "configs/systems.json"

static const char *const known_languages[] = { "python", "nodejs", "java", "cpp" };
#define N_LANGUAGES (sizeof(known_languages) / sizeof(known_languages[0]))

struct collector {
	const struct input_spec *spec;
	const struct input_manifest *previous;
	const char *dir;  /* the folder being walked, relative to the root */
	struct input_file *files;
	size_t n, cap;
	char **errmsg;
};

static const struct input_file *previous_entry(const struct input_manifest *prev,
					       const char *path)
{
	if (!prev)
		return NULL;
	size_t lo = 0, hi = prev->n_files;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(prev->files[mid].path, path);
		if (c == 0)
			return &prev->files[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int set_err(char **errmsg, int rc, const char *what, const char *path)
{
	if (errmsg && !*errmsg)
		*errmsg = str_printf("%s %s: %s", what, path, strerror(-rc));
	return rc;
}

static int64_t ns_of(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Whether the previous entry old still vouches for a file now stat'ed as f. */
static bool unchanged(const struct input_manifest *prev, const struct input_file *old,
		      const struct input_file *f)
{
	/* Racy: changed again within the tick of the recorded stat, it would
	 * look the same; only a stat clearly older than the recording counts. */
	int64_t horizon = prev->stat_ns - INPUTS_RACY_SLACK_NS;
	if (prev->stat_ns <= 0 || old->mtime_ns >= horizon || old->ctime_ns >= horizon)
		return false;
	return old->size == f->size && old->mtime_ns == f->mtime_ns &&
	       old->ctime_ns == f->ctime_ns && old->ino == f->ino && old->dev == f->dev;
}

/* Appends rel (owned by the caller) with its stat; hashes unless unchanged. */
static int add_file(struct collector *col, const char *rel, const struct stat *st,
		    bool systems_subtree)
{
	if (col->n == col->cap) {
		size_t cap = col->cap ? col->cap * 2 : 64;
		struct input_file *f = realloc(col->files, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		col->files = f;
		col->cap = cap;
	}
	struct input_file *f = &col->files[col->n];
	memset(f, 0, sizeof(*f));
	f->path = strdup(rel);
	if (!f->path)
		return -ENOMEM;
	f->size = st->st_size;
	f->mtime_ns = ns_of(st->st_mtim);
	f->ctime_ns = ns_of(st->st_ctim);
	f->ino = st->st_ino;
	f->dev = st->st_dev;
	col->n++;

	const struct input_file *old = previous_entry(col->previous, rel);
	if (old && unchanged(col->previous, old, f)) {
		memcpy(f->sha256, old->sha256, sizeof(f->sha256));
		return 0;
	}
	char *abs = path_join(col->spec->root, rel);
	if (!abs)
		return -ENOMEM;
	int rc = systems_subtree
		? inputs_systems_hash(abs, col->spec->platform, col->spec->language, f->sha256)
		: sha256_hex_file(abs, f->sha256);
	if (rc < 0)
		set_err(col->errmsg, rc, systems_subtree ? "cannot parse" : "cannot hash", abs);
	free(abs);
	return rc;
}

static int collect_entry(const struct walk_entry *e, void *ctx)
{
	struct collector *col = ctx;
	if (!S_ISREG(e->st.st_mode))
		return 0;
	char *rel = path_join(col->dir, e->path);
	int rc = rel ? add_file(col, rel, &e->st, false) : -ENOMEM;
	free(rel);
	return rc;
}

/* Walks root/dir (a missing folder contributes nothing), leaving out the
 * root-level names in skip_top (may be NULL). */
static int walk_inputs(struct collector *col, const char *dir, const char *const *skip_top)
{
	char *abs = path_join(col->spec->root, dir);
	struct walk_options opts = {
		.links = WALK_FOLLOW, .label = dir, .skip_top = skip_top, .missing_ok = true,
	};
	col->dir = dir;
	int rc = abs ? walk_tree(abs, &opts, collect_entry, col, col->errmsg) : -ENOMEM;
	free(abs);
	return rc;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct input_file *)a)->path, ((const struct input_file *)b)->path);
}

int inputs_collect(const struct input_spec *spec, const struct input_manifest *previous,
		   struct input_manifest *out, char **errmsg)
{
	struct collector col = { .spec = spec, .previous = previous, .errmsg = errmsg };
	const char *other_languages[N_LANGUAGES + 1] = { NULL };
	size_t n_other = 0;
	struct timespec now;
	memset(out, 0, sizeof(*out));
	/* taken before any stat: a change after it gets a later timestamp */
	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t i = 0; i < N_LANGUAGES; i++)
		if (strcmp(known_languages[i], spec->language) != 0)
			other_languages[n_other++] = known_languages[i];

	int rc = walk_inputs(&col, spec->benchmark_dir, other_languages);
	char *wrappers = NULL;
	if (rc == 0) {
		wrappers = str_printf("benchmarks/wrappers/%s/%s", spec->platform, spec->language);
		rc = wrappers ? walk_inputs(&col, wrappers, NULL) : -ENOMEM;
	}
	free(wrappers);
	if (rc == 0 && spec->extra_dir)
		rc = walk_inputs(&col, spec->extra_dir, NULL);
	if (rc == 0) {
		char *abs = path_join(spec->root, SYSTEMS_JSON);
		struct stat st;
		if (!abs)
			rc = -ENOMEM;
		else if (stat(abs, &st) < 0)
			rc = set_err(errmsg, -errno, "cannot stat", abs);
		else
			rc = add_file(&col, SYSTEMS_JSON, &st, true);
		free(abs);
	}
	out->files = col.files;
	out->n_files = col.n;
	out->stat_ns = ns_of(now);
	if (rc == 0) {
		qsort(out->files, out->n_files, sizeof(*out->files), cmp_file);
		out->identity = str_printf("sebsfs-inputs-v1;platform=%s;language=%s;version=%s;arch=%s;%s",
					   spec->platform, spec->language, spec->version, spec->arch,
					   spec->identity ? spec->identity : "");
		if (!out->identity)
			rc = -ENOMEM;
	}
	if (rc < 0)
		inputs_clear(out);
	return rc;
}

void inputs_hash(const struct input_manifest *m, char hex[SHA256_HEX_LEN + 1])
{
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_LEN];
	sha256_init(&ctx);
	const char *id = m->identity ? m->identity : "";
	sha256_update(&ctx, id, strlen(id) + 1);
	for (size_t i = 0; i < m->n_files; i++) {
		/* NUL separators: names cannot contain NUL, so the encoding is unambiguous */
		sha256_update(&ctx, m->files[i].path, strlen(m->files[i].path) + 1);
		sha256_update(&ctx, m->files[i].sha256, SHA256_HEX_LEN + 1);
	}
	sha256_final(&ctx, digest);
	sha256_to_hex(digest, hex);
}

char *inputs_to_json(const struct input_manifest *m)
{
	json_t *files = json_array();
	json_t *root = json_pack("{s:s, s:I, s:o}", "identity", m->identity ? m->identity : "",
				 "stat_ns", (json_int_t)m->stat_ns, "files", files);
	if (!root)
		return NULL;
	for (size_t i = 0; i < m->n_files; i++) {
		const struct input_file *f = &m->files[i];
		json_t *entry = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s}",
			"path", f->path, "size", (json_int_t)f->size, "mtime_ns", (json_int_t)f->mtime_ns,
			"ctime_ns", (json_int_t)f->ctime_ns, "ino", (json_int_t)f->ino,
			"dev", (json_int_t)f->dev, "sha256", f->sha256);
		if (json_array_append_new(files, entry) < 0) {
			json_decref(root);
			return NULL;
		}
	}
	char *text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return text;
}

int inputs_from_json(const char *text, struct input_manifest *out)
{
	memset(out, 0, sizeof(*out));
	json_t *root = json_loads(text, 0, NULL);
	json_t *files = root ? json_object_get(root, "files") : NULL;
	const char *identity = root ? json_string_value(json_object_get(root, "identity")) : NULL;
	if (!json_is_array(files) || !identity) {
		json_decref(root);
		return -EINVAL;
	}
	int rc = 0;
	size_t n = json_array_size(files);
	/* Written before the racy rule: no stat_ns, and every entry untrusted. */
	json_t *stat_ns = json_object_get(root, "stat_ns");
	bool stats_complete = json_is_integer(stat_ns);
	out->files = calloc(n ? n : 1, sizeof(*out->files));
	out->identity = strdup(identity);
	if (!out->files || !out->identity)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *path, *sha;
		json_int_t size, mtime, ino, ctime = 0, dev = 0;
		json_t *entry = json_array_get(files, i);
		if (json_unpack(entry, "{s:s, s:I, s:I, s:I, s:s, s?I, s?I}", "path", &path,
				"size", &size, "mtime_ns", &mtime, "ino", &ino, "sha256", &sha,
				"ctime_ns", &ctime, "dev", &dev) < 0 ||
		    strlen(sha) != SHA256_HEX_LEN) {
			rc = -EINVAL;
			break;
		}
		if (!json_object_get(entry, "ctime_ns") || !json_object_get(entry, "dev"))
			stats_complete = false;
		struct input_file *f = &out->files[out->n_files];
		f->path = strdup(path);
		if (!f->path) {
			rc = -ENOMEM;
			break;
		}
		f->size = size;
		f->mtime_ns = mtime;
		f->ctime_ns = ctime;
		f->ino = (uint64_t)ino;
		f->dev = (uint64_t)dev;
		memcpy(f->sha256, sha, SHA256_HEX_LEN + 1);
		out->n_files++;
	}
	out->stat_ns = stats_complete ? (int64_t)json_integer_value(stat_ns) : 0;
	json_decref(root);
	if (rc == 0)
		qsort(out->files, out->n_files, sizeof(*out->files), cmp_file);
	else
		inputs_clear(out);
	return rc;
}

void inputs_clear(struct input_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_files; i++)
		free(m->files[i].path);
	free(m->files);
	free(m->identity);
	memset(m, 0, sizeof(*m));
}

int inputs_systems_hash(const char *systems_json_path, const char *platform,
			const char *language, char hex[SHA256_HEX_LEN + 1])
{
	json_error_t jerr;
	json_t *systems = json_load_file(systems_json_path, 0, &jerr);
	if (!systems)
		return access(systems_json_path, R_OK) < 0 ? -errno : -EINVAL;
	json_t *general = json_object_get(systems, "general");
	json_t *plat = json_object_get(systems, platform);
	json_t *langs = json_is_object(plat) ? json_object_get(plat, "languages") : NULL;
	json_t *lang = json_is_object(langs) ? json_object_get(langs, language) : NULL;
	json_t *subtree = json_pack("{s:O?, s:O?}", "general", general, "language", lang);
	char *text = subtree ? json_dumps(subtree, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(subtree);
	json_decref(systems);
	if (!text)
		return -ENOMEM;
	sha256_hex_buf(text, strlen(text), hex);
	free(text);
	return 0;
}
