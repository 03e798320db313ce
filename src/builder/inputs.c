/*
 * inputs.c - input manifests and hashes (see inputs.h for what counts).
 *
 * The walk is the cost of every freshness check, so it only stats: content is
 * hashed when a file is new or its (size, mtime_ns, inode) moved.  mtime alone
 * would miss an edit within the same timestamp granularity that keeps the
 * size; inode catches editors that replace files by rename.
 */
#include "inputs.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

#define SYSTEMS_JSON "configs/systems.json"
#define MAX_DEPTH 32

static const char *const known_languages[] = { "python", "nodejs", "java", "cpp" };

struct collector {
	const struct input_spec *spec;
	const struct input_manifest *previous;
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
	f->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	f->ino = st->st_ino;
	col->n++;

	const struct input_file *old = previous_entry(col->previous, rel);
	if (old && old->size == f->size && old->mtime_ns == f->mtime_ns && old->ino == f->ino) {
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

static bool is_other_language(const struct collector *col, const char *name)
{
	for (size_t i = 0; i < sizeof(known_languages) / sizeof(known_languages[0]); i++)
		if (strcmp(name, known_languages[i]) == 0)
			return strcmp(name, col->spec->language) != 0;
	return false;
}

/* Walks root/rel recursively.  At depth 0 of a benchmark folder, other
 * languages' folders are skipped. */
static int walk(struct collector *col, const char *rel, int depth, bool benchmark_top)
{
	if (depth > MAX_DEPTH)
		return set_err(col->errmsg, -ELOOP, "too deep (symlink loop?)", rel);
	char *abs = path_join(col->spec->root, rel);
	if (!abs)
		return -ENOMEM;
	char **names = NULL;
	size_t count = 0;
	int rc = list_dir_sorted(abs, &names, &count);
	if (rc == -ENOENT && depth > 0) {
		rc = 0; /* vanished while walking: the next check sees it */
	} else if (rc == -ENOENT) {
		rc = 0; /* an absent wrappers folder simply contributes nothing */
	} else if (rc < 0) {
		set_err(col->errmsg, rc, "cannot list", abs);
	}
	for (size_t i = 0; rc == 0 && i < count; i++) {
		if (benchmark_top && is_other_language(col, names[i]))
			continue;
		char *child = path_join(rel, names[i]);
		char *child_abs = path_join(abs, names[i]);
		struct stat st;
		if (!child || !child_abs) {
			rc = -ENOMEM;
		} else if (stat(child_abs, &st) < 0) {
			/* dangling symlinks and races: not an input */
			if (errno != ENOENT)
				rc = set_err(col->errmsg, -errno, "cannot stat", child_abs);
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk(col, child, depth + 1, false);
		} else if (S_ISREG(st.st_mode)) {
			rc = add_file(col, child, &st, false);
		}
		free(child);
		free(child_abs);
	}
	str_list_free(names, count);
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
	memset(out, 0, sizeof(*out));
	int rc = walk(&col, spec->benchmark_dir, 0, true);
	char *wrappers = NULL;
	if (rc == 0) {
		wrappers = str_printf("benchmarks/wrappers/%s/%s", spec->platform, spec->language);
		rc = wrappers ? walk(&col, wrappers, 0, false) : -ENOMEM;
	}
	free(wrappers);
	if (rc == 0 && spec->extra_dir)
		rc = walk(&col, spec->extra_dir, 0, false);
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
	json_t *root = json_pack("{s:s, s:o}", "identity", m->identity ? m->identity : "",
				 "files", files);
	if (!root)
		return NULL;
	for (size_t i = 0; i < m->n_files; i++) {
		const struct input_file *f = &m->files[i];
		json_array_append_new(files, json_pack("{s:s, s:I, s:I, s:I, s:s}",
			"path", f->path, "size", (json_int_t)f->size, "mtime_ns", (json_int_t)f->mtime_ns,
			"ino", (json_int_t)f->ino, "sha256", f->sha256));
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
	out->files = calloc(n ? n : 1, sizeof(*out->files));
	out->identity = strdup(identity);
	if (!out->files || !out->identity)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *path, *sha;
		json_int_t size, mtime, ino;
		if (json_unpack(json_array_get(files, i), "{s:s, s:I, s:I, s:I, s:s}", "path", &path,
				"size", &size, "mtime_ns", &mtime, "ino", &ino, "sha256", &sha) < 0 ||
		    strlen(sha) != SHA256_HEX_LEN) {
			rc = -EINVAL;
			break;
		}
		struct input_file *f = &out->files[out->n_files];
		f->path = strdup(path);
		if (!f->path) {
			rc = -ENOMEM;
			break;
		}
		f->size = size;
		f->mtime_ns = mtime;
		f->ino = (uint64_t)ino;
		memcpy(f->sha256, sha, SHA256_HEX_LEN + 1);
		out->n_files++;
	}
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
