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
	struct input_manifest *m;  /* being filled */
	size_t cap, pool_cap;
	char **errmsg;
};

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Lower-case hex of exactly 2 * n digits into n bytes; -EINVAL otherwise. */
static int hex_decode(const char *hex, uint8_t *out, size_t n)
{
	if (strlen(hex) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Appends a file entry and its path (len bytes) to m; *f gets the entry.
 * cap and pool_cap are the allocated sizes (in entries and bytes). */
static int manifest_append(struct input_manifest *m, size_t *cap, size_t *pool_cap,
			   const char *path, size_t len, struct input_file **f)
{
	if (m->pool_len + len + 1 > UINT32_MAX)
		return -EOVERFLOW;
	if (m->n_files == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct input_file *v = realloc(m->files, ncap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		m->files = v;
		*cap = ncap;
	}
	if (m->pool_len + len + 1 > *pool_cap) {
		size_t ncap = *pool_cap ? *pool_cap : 4096;
		while (ncap < m->pool_len + len + 1)
			ncap *= 2;
		char *pool = realloc(m->pool, ncap);
		if (!pool)
			return -ENOMEM;
		m->pool = pool;
		*pool_cap = ncap;
	}
	*f = &m->files[m->n_files++];
	memset(*f, 0, sizeof(**f));
	(*f)->path = (uint32_t)m->pool_len;
	memcpy(m->pool + m->pool_len, path, len);
	m->pool[m->pool_len + len] = '\0';
	m->pool_len += len + 1;
	return 0;
}

static const struct input_file *previous_entry(const struct input_manifest *prev,
					       const char *path)
{
	if (!prev)
		return NULL;
	size_t lo = 0, hi = prev->n_files;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(inputs_path(prev, mid), path);
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

/* Appends the file at root/dir/name (dir may be NULL) with its stat; hashes
 * it unless unchanged. */
static int add_file(struct collector *col, const char *dir, const char *name,
		    const struct stat *st, bool systems_subtree)
{
	struct input_manifest *m = col->m;
	size_t dlen = dir ? strlen(dir) : 0, nlen = strlen(name);
	char *rel = malloc(dlen + nlen + 2);
	if (!rel)
		return -ENOMEM;
	if (dir) {
		memcpy(rel, dir, dlen);
		rel[dlen++] = '/';
	}
	memcpy(rel + dlen, name, nlen + 1);
	struct input_file *f;
	int rc = manifest_append(m, &col->cap, &col->pool_cap, rel, dlen + nlen, &f);
	if (rc < 0)
		goto out;
	f->size = st->st_size;
	f->mtime_ns = ns_of(st->st_mtim);
	f->ctime_ns = ns_of(st->st_ctim);
	f->ino = st->st_ino;
	f->dev = st->st_dev;
	/* from the stat of this walk: a chmod moves the ctime, so no reused
	 * entry could carry an older mode anyway */
	f->executable = !systems_subtree && (st->st_mode & 0111);

	const struct input_file *old = previous_entry(col->previous, rel);
	if (old && unchanged(col->previous, old, f)) {
		memcpy(f->sha256, old->sha256, sizeof(f->sha256));
		goto out;
	}
	char *abs = path_join(col->spec->root, rel);
	char hex[SHA256_HEX_LEN + 1];
	if (!abs) {
		rc = -ENOMEM;
		goto out;
	}
	rc = systems_subtree
		? inputs_systems_hash(abs, col->spec->platform, col->spec->language, hex)
		: sha256_hex_file(abs, hex);
	if (rc < 0)
		set_err(col->errmsg, rc, systems_subtree ? "cannot parse" : "cannot hash", abs);
	else
		rc = hex_decode(hex, f->sha256, sizeof(f->sha256));
	free(abs);
out:
	free(rel);
	return rc;
}

/* Tells the observer about root/dir/rel (dir and rel may be NULL). */
static int observe(struct collector *col, enum input_observed what, const char *dir,
		   const char *rel)
{
	const struct input_spec *spec = col->spec;
	if (!spec->observe)
		return 0;
	char *abs = rel ? str_printf("%s/%s/%s", spec->root, dir, rel) : path_join(spec->root, dir);
	if (!abs)
		return -ENOMEM;
	spec->observe(spec->observe_ctx, what, abs);
	free(abs);
	return 0;
}

static int collect_entry(const struct walk_entry *e, void *ctx)
{
	struct collector *col = ctx;
	int rc = 0;
	/* before the walk lists the folder or reads the file: a change after
	 * this is the observer's to see */
	if (e->link)
		rc = observe(col, INPUT_LINK, col->dir, e->path);
	if (rc == 0 && S_ISDIR(e->st.st_mode))
		rc = observe(col, INPUT_DIR, col->dir, e->path);
	if (rc == 0 && S_ISREG(e->st.st_mode) && e->st.st_nlink > 1)
		rc = observe(col, INPUT_SHARED_FILE, col->dir, e->path);
	if (rc < 0 || !S_ISREG(e->st.st_mode))
		return rc;
	return add_file(col, col->dir, e->path, &e->st, false);
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
	int rc = abs ? observe(col, INPUT_ROOT, dir, NULL) : -ENOMEM;
	if (rc == 0)
		rc = walk_tree(abs, &opts, collect_entry, col, col->errmsg);
	free(abs);
	return rc;
}

static int cmp_file(const void *a, const void *b, void *pool)
{
	return strcmp((const char *)pool + ((const struct input_file *)a)->path,
		      (const char *)pool + ((const struct input_file *)b)->path);
}

static void sort_files(struct input_manifest *m)
{
	if (m->n_files > 1)
		qsort_r(m->files, m->n_files, sizeof(*m->files), cmp_file, m->pool);
}

int inputs_collect(const struct input_spec *spec, const struct input_manifest *previous,
		   struct input_manifest *out, char **errmsg)
{
	struct collector col = { .spec = spec, .previous = previous, .m = out, .errmsg = errmsg };
	const char *other_languages[N_LANGUAGES + 1] = { NULL };
	size_t n_other = 0;
	struct timespec now;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	/* room for as many files as last time: no reallocations in the common case */
	if (previous && previous->n_files) {
		out->files = malloc(previous->n_files * sizeof(*out->files));
		out->pool = malloc(previous->pool_len);
		if (!out->files || !out->pool)
			rc = -ENOMEM;
		col.cap = previous->n_files;
		col.pool_cap = previous->pool_len;
	}
	/* taken before any stat: a change after it gets a later timestamp */
	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t i = 0; i < N_LANGUAGES; i++)
		if (strcmp(known_languages[i], spec->language) != 0)
			other_languages[n_other++] = known_languages[i];

	if (rc == 0)
		rc = walk_inputs(&col, spec->benchmark_dir, other_languages);
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
		if (!abs || observe(&col, INPUT_ROOT, SYSTEMS_JSON, NULL) < 0)
			rc = -ENOMEM;
		else if (stat(abs, &st) < 0)
			rc = set_err(errmsg, -errno, "cannot stat", abs);
		else
			rc = add_file(&col, NULL, SYSTEMS_JSON, &st, true);
		free(abs);
	}
	out->stat_ns = ns_of(now);
	if (rc == 0) {
		sort_files(out);
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
	char file_hex[SHA256_HEX_LEN + 1];
	sha256_init(&ctx);
	const char *id = m->identity ? m->identity : "";
	sha256_update(&ctx, strlen(id) + 1, (const uint8_t *)id);
	for (size_t i = 0; i < m->n_files; i++) {
		/* NUL separators: names cannot contain NUL, so the encoding is
		 * unambiguous; the content hash goes in as hex, as it always has,
		 * so that input hashes stay those of older versions */
		const char *path = inputs_path(m, i);
		sha256_update(&ctx, strlen(path) + 1, (const uint8_t *)path);
		hex_encode(m->files[i].sha256, SHA256_DIGEST_SIZE, file_hex);
		sha256_update(&ctx, SHA256_HEX_LEN + 1, (const uint8_t *)file_hex);
		/* the x bit reaches the package (0755 vs 0644).  An executable
		 * adds one more NUL: no path is empty, so this cannot be read
		 * as the next entry, and trees without executables keep the
		 * hashes of versions that left the mode out */
		if (m->files[i].executable)
			sha256_update(&ctx, 1, (const uint8_t *)"");
	}
	sha256_digest_hex(&ctx, hex);
}

/* ---- text form ----------------------------------------------------------- */

#define MANIFEST_FORMAT 2

struct text {
	char *buf;
	size_t len, cap;
};

/* Appends v in compact JSON and a newline. */
static int text_add(struct text *t, const json_t *v)
{
	for (;;) {
		size_t room = t->cap - t->len;
		size_t n = json_dumpb(v, t->buf ? t->buf + t->len : NULL, room, JSON_COMPACT);
		if (n == 0)
			return -ENOMEM;
		if (n < room) {
			t->len += n;
			t->buf[t->len++] = '\n';
			return 0;
		}
		size_t cap = t->cap ? t->cap : 4096;
		while (cap <= t->len + n + 1)
			cap *= 2;
		char *buf = realloc(t->buf, cap);
		if (!buf)
			return -ENOMEM;
		t->buf = buf;
		t->cap = cap;
	}
}

/* A path as JSON: a string, or {"hex": ...} for one that is not UTF-8. */
static json_t *path_to_json(const char *path)
{
	json_t *s = json_string(path);
	if (s)
		return s;
	size_t len = strlen(path);
	char *hex = malloc(2 * len + 1);
	if (!hex)
		return NULL;
	hex_encode((const uint8_t *)path, len, hex);
	json_t *o = json_pack("{s:s}", "hex", hex);
	free(hex);
	return o;
}

/* The inverse of path_to_json; *out malloc'd. */
static int path_from_json(const json_t *v, char **out)
{
	if (json_is_string(v)) {
		*out = strdup(json_string_value(v));
		return *out ? 0 : -ENOMEM;
	}
	const char *hex = json_string_value(json_object_get(v, "hex"));
	size_t len = hex ? strlen(hex) / 2 : 0;
	*out = NULL;
	if (!hex || len == 0 || !(*out = malloc(len + 1)))
		return hex && len ? -ENOMEM : -EINVAL;
	if (hex_decode(hex, (uint8_t *)*out, len) < 0 || memchr(*out, '\0', len)) {
		free(*out);
		*out = NULL;
		return -EINVAL;
	}
	(*out)[len] = '\0';
	return 0;
}

char *inputs_to_json(const struct input_manifest *m)
{
	struct text t = { NULL, 0, 0 };
	json_t *head = json_pack("{s:i, s:s, s:I, s:I}", "format", MANIFEST_FORMAT,
				 "identity", m->identity ? m->identity : "",
				 "stat_ns", (json_int_t)m->stat_ns, "files", (json_int_t)m->n_files);
	int rc = head ? text_add(&t, head) : -ENOMEM;
	json_decref(head);
	for (size_t i = 0; rc == 0 && i < m->n_files; i++) {
		const struct input_file *f = &m->files[i];
		char hex[SHA256_HEX_LEN + 1];
		hex_encode(f->sha256, SHA256_DIGEST_SIZE, hex);
		json_t *entry = json_pack("[o, I, I, I, I, I, s, i]", path_to_json(inputs_path(m, i)),
					  (json_int_t)f->size, (json_int_t)f->mtime_ns,
					  (json_int_t)f->ctime_ns, (json_int_t)f->ino,
					  (json_int_t)f->dev, hex, f->executable ? 1 : 0);
		rc = entry ? text_add(&t, entry) : -ENOMEM;
		json_decref(entry);
	}
	if (rc < 0) {
		free(t.buf);
		return NULL;
	}
	t.buf[t.len - 1] = '\0'; /* the last newline */
	return t.buf;
}

/* Adds one parsed entry (path owned by the caller) to out. */
static int add_parsed(struct input_manifest *out, size_t *cap, size_t *pool_cap,
		      const char *path, json_int_t size, json_int_t mtime, json_int_t ctime,
		      json_int_t ino, json_int_t dev, const char *sha, bool executable)
{
	struct input_file *f;
	int rc = manifest_append(out, cap, pool_cap, path, strlen(path), &f);
	if (rc < 0)
		return rc;
	f->size = size;
	f->mtime_ns = mtime;
	f->ctime_ns = ctime;
	f->ino = (uint64_t)ino;
	f->dev = (uint64_t)dev;
	f->executable = executable;
	return hex_decode(sha, f->sha256, sizeof(f->sha256));
}

/* The single JSON object of older versions. */
static int parse_v1(json_t *root, struct input_manifest *out)
{
	json_t *files = json_object_get(root, "files");
	size_t cap = 0, pool_cap = 0;
	/* Written before the racy rule: no stat_ns, and every entry untrusted. */
	json_t *stat_ns = json_object_get(root, "stat_ns");
	bool stats_complete = json_is_integer(stat_ns);
	size_t i;
	json_t *entry;
	json_array_foreach(files, i, entry) {
		const char *path, *sha;
		json_int_t size, mtime, ino, ctime = 0, dev = 0;
		if (json_unpack(entry, "{s:s, s:I, s:I, s:I, s:s, s?I, s?I}", "path", &path,
				"size", &size, "mtime_ns", &mtime, "ino", &ino, "sha256", &sha,
				"ctime_ns", &ctime, "dev", &dev) < 0)
			return -EINVAL;
		if (!json_object_get(entry, "ctime_ns") || !json_object_get(entry, "dev"))
			stats_complete = false;
		int rc = add_parsed(out, &cap, &pool_cap, path, size, mtime, ctime, ino, dev, sha,
				    false);
		if (rc < 0)
			return rc;
	}
	out->stat_ns = stats_complete ? (int64_t)json_integer_value(stat_ns) : 0;
	return 0;
}

/* The JSON lines of MANIFEST_FORMAT after the header, from text[pos]. */
static int parse_v2(const char *text, size_t len, size_t pos, struct input_manifest *out)
{
	size_t cap = 0, pool_cap = 0;
	for (;;) {
		while (pos < len && (text[pos] == '\n' || text[pos] == ' '))
			pos++;
		if (pos == len)
			return 0;
		json_error_t jerr;
		json_t *entry = json_loadb(text + pos, len - pos, JSON_DISABLE_EOF_CHECK, &jerr);
		if (!entry)
			return -EINVAL;
		pos += (size_t)jerr.position;
		json_t *jpath;
		const char *sha;
		json_int_t size, mtime, ctime, ino, dev;
		char *path = NULL;
		int rc = json_unpack(entry, "[o, I, I, I, I, I, s]", &jpath, &size, &mtime, &ctime,
				     &ino, &dev, &sha) < 0 ? -EINVAL : path_from_json(jpath, &path);
		/* executable: missing in manifests of older versions */
		bool executable = json_integer_value(json_array_get(entry, 7)) != 0;
		if (rc == 0)
			rc = add_parsed(out, &cap, &pool_cap, path, size, mtime, ctime, ino, dev, sha,
					executable);
		free(path);
		json_decref(entry);
		if (rc < 0)
			return rc;
	}
}

int inputs_from_json(const char *text, struct input_manifest *out)
{
	memset(out, 0, sizeof(*out));
	size_t len = strlen(text);
	json_error_t jerr;
	json_t *head = json_loadb(text, len, JSON_DISABLE_EOF_CHECK, &jerr);
	const char *identity = json_string_value(json_object_get(head, "identity"));
	json_t *files = json_object_get(head, "files");
	int rc = -EINVAL;
	if (identity && !(out->identity = strdup(identity)))
		rc = -ENOMEM;
	else if (identity && json_is_array(files))
		rc = parse_v1(head, out);
	else if (identity && json_integer_value(json_object_get(head, "format")) == MANIFEST_FORMAT &&
		 json_is_integer(json_object_get(head, "stat_ns")))
		rc = parse_v2(text, len, (size_t)jerr.position, out);
	if (rc == 0 && !json_is_array(files))
		out->stat_ns = json_integer_value(json_object_get(head, "stat_ns"));
	json_decref(head);
	if (rc == 0)
		sort_files(out);
	else
		inputs_clear(out);
	return rc;
}

void inputs_clear(struct input_manifest *m)
{
	if (!m)
		return;
	free(m->files);
	free(m->pool);
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
