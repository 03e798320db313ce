/*
 * zipview.c - the index of a zip's entries, reads of one entry, and the
 * versions of packages' indexes (promises in zipview.h).
 *
 * The central directory is read by zipdir (common), not by libarchive's
 * seekable zip reader: libarchive gives entries only in order (archive_read_next_header
 * reads each local header on the way), so reading the last file of a big
 * package would walk all of them, and a second read would open the archive
 * again.  The central directory has everything a listing needs, and each
 * entry's local header offset; zlib's raw inflate does the rest.
 */
#include "zipview.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "errmsg.h"
#include "fsutil.h"
#include "le.h"
#include "zipdir.h"

#define LOCAL_SIG 0x04034b50u
#define LOCAL_LEN 30
#define METHOD_STORED 0
#define METHOD_DEFLATED 8
/* bytes of decompressed content a reader keeps, so that reads that arrive
 * a little out of order (the kernel's parallel readahead) need no restart */
#define WINDOW (512 * 1024)
#define INBUF (64 * 1024)

struct zipview_index {
	struct zipview_entry *entries;
	uint32_t n;
};

/* pread_exact, with a short file read as EIO (a zip cut short). */
static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	int rc = pread_exact(fd, buf, len, off);
	return rc == -EBADMSG ? -EIO : rc;
}

/* ---- building the tree ---------------------------------------------------- */

/* An entry while the index is built: the final order is not known yet. */
struct raw {
	struct zipview_entry e;
	char *name;
	bool explicit_dir;     /* a folder with an entry of its own */
};

struct builder {
	struct raw *raws;
	uint32_t n, cap;
	/* full path of every folder -> its raw index (open addressing) */
	char **dir_keys;
	uint32_t *dir_vals;
	size_t dir_cap, dir_n;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

/* The slot of path (len bytes) in the folder table: its own or a free one. */
static size_t dir_slot(const struct builder *b, const char *path, size_t len)
{
	size_t i = hash_bytes(path, len) & (b->dir_cap - 1);
	while (b->dir_keys[i] && (strlen(b->dir_keys[i]) != len || memcmp(b->dir_keys[i], path, len) != 0))
		i = (i + 1) & (b->dir_cap - 1);
	return i;
}

static int dir_put(struct builder *b, const char *path, size_t len, uint32_t raw)
{
	if ((b->dir_n + 1) * 2 > b->dir_cap) {
		size_t old_cap = b->dir_cap;
		char **old_keys = b->dir_keys;
		uint32_t *old_vals = b->dir_vals;
		b->dir_cap = old_cap ? old_cap * 2 : 64;
		b->dir_keys = calloc(b->dir_cap, sizeof(*b->dir_keys));
		b->dir_vals = calloc(b->dir_cap, sizeof(*b->dir_vals));
		if (!b->dir_keys || !b->dir_vals) {
			free(b->dir_keys);
			free(b->dir_vals);
			b->dir_keys = old_keys;
			b->dir_vals = old_vals;
			b->dir_cap = old_cap;
			return -ENOMEM;
		}
		for (size_t i = 0; i < old_cap; i++) {
			if (!old_keys[i])
				continue;
			size_t s = dir_slot(b, old_keys[i], strlen(old_keys[i]));
			b->dir_keys[s] = old_keys[i];
			b->dir_vals[s] = old_vals[i];
		}
		free(old_keys);
		free(old_vals);
	}
	size_t s = dir_slot(b, path, len);
	if (!(b->dir_keys[s] = strndup(path, len)))
		return -ENOMEM;
	b->dir_vals[s] = raw;
	b->dir_n++;
	return 0;
}

/* The raw index of folder path, or UINT32_MAX. */
static uint32_t dir_get(const struct builder *b, const char *path, size_t len)
{
	if (len == 0)
		return 0;
	if (!b->dir_cap)
		return UINT32_MAX;
	size_t s = dir_slot(b, path, len);
	return b->dir_keys[s] ? b->dir_vals[s] : UINT32_MAX;
}

/* Appends an entry named name (len bytes) under raw folder parent. */
static int add_raw(struct builder *b, const char *name, size_t len, uint32_t parent,
		   const struct zipview_entry *e, uint32_t *out)
{
	if (b->n >= ZIPVIEW_MAX_ENTRIES)
		return -EFBIG;
	if (b->n == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 64;
		struct raw *r = realloc(b->raws, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		b->raws = r;
		b->cap = cap;
	}
	char *copy = strndup(name, len);
	if (!copy)
		return -ENOMEM;
	struct raw *r = &b->raws[b->n];
	*r = (struct raw){ .e = *e, .name = copy };
	r->e.parent = parent;
	*out = b->n++;
	return 0;
}

/* Checks the components of path (len bytes, no trailing "/"). */
static int check_name(const char *path, size_t len, char **errmsg)
{
	if (len == 0 || memchr(path, '\0', len)) {
		errmsg_set(errmsg, "entry \"%.*s\": empty name or a NUL byte in it", (int)len, path);
		return -EINVAL;
	}
	if (path[0] == '/') {
		errmsg_set(errmsg, "entry \"%.*s\": absolute name", (int)len, path);
		return -EPERM;
	}
	for (size_t start = 0; start <= len;) {
		const char *slash = memchr(path + start, '/', len - start);
		size_t end = slash ? (size_t)(slash - path) : len;
		size_t clen = end - start;
		if (clen == 2 && path[start] == '.' && path[start + 1] == '.') {
			errmsg_set(errmsg, "entry \"%.*s\": a \"..\" component", (int)len, path);
			return -EPERM;
		}
		if (clen == 0 || (clen == 1 && path[start] == '.')) {
			errmsg_set(errmsg, "entry \"%.*s\": an empty or \".\" component", (int)len, path);
			return -EINVAL;
		}
		start = end + 1;
	}
	return 0;
}

/* The raw index of folder path (len bytes), creating it and its parents
 * as implied folders when missing. */
static int implied_dir(struct builder *b, const char *path, size_t len, uint32_t *out)
{
	uint32_t found = dir_get(b, path, len);
	if (found != UINT32_MAX) {
		*out = found;
		return 0;
	}
	const char *slash = NULL;
	for (size_t i = len; i > 0; i--)
		if (path[i - 1] == '/') {
			slash = path + i - 1;
			break;
		}
	uint32_t parent;
	size_t plen = slash ? (size_t)(slash - path) : 0;
	int rc = implied_dir(b, path, plen, &parent);
	if (rc < 0)
		return rc;
	const char *base = slash ? slash + 1 : path;
	struct zipview_entry e = { .mode = S_IFDIR | 0755 };
	rc = add_raw(b, base, len - (size_t)(base - path), parent, &e, out);
	if (rc == 0)
		rc = dir_put(b, path, len, *out);
	return rc;
}

/* Adds the central directory record of name (len bytes, as stored) with
 * facts e (mode still the raw one) to the tree. */
static int add_record(struct builder *b, const char *name, size_t len, struct zipview_entry *e,
		      bool has_unix_mode, char **errmsg)
{
	bool dir_name = len > 0 && name[len - 1] == '/';
	size_t plen = dir_name ? len - 1 : len;
	int rc = check_name(name, plen, errmsg);
	if (rc < 0)
		return rc;
	mode_t type = has_unix_mode ? e->mode & S_IFMT : 0;
	if (type == 0)
		type = dir_name ? S_IFDIR : S_IFREG;
	if (type != S_IFDIR && type != S_IFREG && type != S_IFLNK) {
		errmsg_set(errmsg, "entry \"%.*s\": not a file, folder or symlink", (int)len, name);
		return -EINVAL;
	}
	if (dir_name && type != S_IFDIR) {
		errmsg_set(errmsg, "entry \"%.*s\": a non-folder whose name ends in \"/\"", (int)len, name);
		return -EINVAL;
	}
	mode_t perm = has_unix_mode ? e->mode & 0777 : type == S_IFDIR ? 0755 : 0644;
	e->mode = type | perm;
	if (type == S_IFDIR)
		e->size = 0;
	const char *slash = NULL;
	for (size_t i = plen; i > 0; i--)
		if (name[i - 1] == '/') {
			slash = name + i - 1;
			break;
		}
	uint32_t parent;
	rc = implied_dir(b, name, slash ? (size_t)(slash - name) : 0, &parent);
	if (rc < 0)
		goto fail;
	const char *base = slash ? slash + 1 : name;
	size_t blen = plen - (size_t)(base - name);
	uint32_t idx;
	if (type == S_IFDIR) {
		uint32_t found = dir_get(b, name, plen);
		if (found != UINT32_MAX) {
			if (b->raws[found].explicit_dir) {
				errmsg_set(errmsg, "entry \"%.*s\": two entries of this name", (int)len, name);
				return -EEXIST;
			}
			b->raws[found].e.mode = e->mode;
			b->raws[found].explicit_dir = true;
			return 0;
		}
		rc = add_raw(b, base, blen, parent, e, &idx);
		if (rc == 0)
			rc = dir_put(b, name, plen, idx);
		if (rc == 0)
			b->raws[idx].explicit_dir = true;
	} else {
		rc = add_raw(b, base, blen, parent, e, &idx);
	}
fail:
	if (rc == -EFBIG)
		errmsg_set(errmsg, "more than %u entries", (unsigned)ZIPVIEW_MAX_ENTRIES);
	else if (rc < 0)
		errmsg_set(errmsg, "indexing entry \"%.*s\": %s", (int)len, name, strerror(-rc));
	return rc;
}

/* Children together (by parent), each folder's sorted bytewise by name. */
static int by_parent_name(const void *a, const void *b, void *raws)
{
	const struct raw *x = &((const struct raw *)raws)[*(const uint32_t *)a];
	const struct raw *y = &((const struct raw *)raws)[*(const uint32_t *)b];
	if (x->e.parent != y->e.parent)
		return x->e.parent < y->e.parent ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Lays the raw entries out breadth-first (a folder's children contiguous
 * and sorted) into idx.  -EEXIST for two children of one name. */
static int lay_out(struct builder *b, struct zipview_index *idx, char **errmsg)
{
	int rc = 0;
	uint32_t n = b->n;
	uint32_t *order = malloc(n * sizeof(*order));   /* raw indices by (parent, name) */
	uint32_t *start = calloc(n + 1, sizeof(*start)); /* raw folder -> first in order */
	uint32_t *new_of = malloc(n * sizeof(*new_of));
	uint32_t *queue = malloc(n * sizeof(*queue));    /* raw folders, breadth-first */
	idx->entries = calloc(n, sizeof(*idx->entries));
	if (!order || !start || !new_of || !queue || !idx->entries) {
		rc = -ENOMEM;
		errmsg_set(errmsg, "out of memory indexing %u entries", (unsigned)n);
		goto out;
	}
	for (uint32_t i = 0; i + 1 < n; i++)
		order[i] = i + 1; /* the root (raw 0) is nobody's child */
	qsort_r(order, n - 1, sizeof(*order), by_parent_name, b->raws);
	for (uint32_t i = 1; i + 1 < n; i++) {
		if (by_parent_name(&order[i - 1], &order[i], b->raws) == 0) {
			/* "a" and "a/b" both listed: a file that is also a folder */
			errmsg_set(errmsg, "entry \"%s\": two entries of this name, or a file that is also a folder",
				b->raws[order[i]].name);
			rc = -EEXIST;
			goto out;
		}
	}
	/* start[p]: where folder p's children begin in order; start[n] the end */
	for (uint32_t i = 0; i < n; i++)
		start[i] = UINT32_MAX;
	for (uint32_t i = n - 1; i-- > 0;)
		start[b->raws[order[i]].e.parent] = i;
	uint32_t head = 0, tail = 0, next = 1;
	queue[tail++] = 0;
	new_of[0] = 0;
	while (head < tail) {
		uint32_t raw = queue[head++];
		struct zipview_entry *dir = &idx->entries[new_of[raw]];
		*dir = b->raws[raw].e;
		dir->name = b->raws[raw].name;
		b->raws[raw].name = NULL;
		dir->parent = raw == 0 ? 0 : new_of[b->raws[raw].e.parent];
		dir->first_child = next;
		dir->n_children = dir->n_subdirs = 0;
		for (uint32_t i = start[raw]; i != UINT32_MAX && i + 1 < n &&
					      b->raws[order[i]].e.parent == raw; i++) {
			uint32_t child = order[i];
			new_of[child] = next++;
			dir->n_children++;
			if (S_ISDIR(b->raws[child].e.mode)) {
				dir->n_subdirs++;
				queue[tail++] = child;
			} else {
				struct zipview_entry *f = &idx->entries[new_of[child]];
				*f = b->raws[child].e;
				f->name = b->raws[child].name;
				b->raws[child].name = NULL;
				f->parent = new_of[raw];
			}
		}
	}
	idx->n = next;
out:
	free(order);
	free(start);
	free(new_of);
	free(queue);
	return rc;
}

static void builder_clear(struct builder *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		free(b->raws[i].name);
	free(b->raws);
	for (size_t i = 0; i < b->dir_cap; i++)
		free(b->dir_keys[i]);
	free(b->dir_keys);
	free(b->dir_vals);
}

/* ---- the central directory ----------------------------------------------- */

int zipview_index_load(int fd, struct zipview_index **out, char **errmsg)
{
	struct builder b = { 0 };
	struct zipdir dir;
	struct stat st;
	unsigned char *cd = NULL;
	struct zipview_index *idx = NULL;
	int rc;
	*out = NULL;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "cannot stat the zip: %s", strerror(-rc));
		return rc;
	}
	if ((rc = zipdir_find(fd, (uint64_t)st.st_size, &dir, errmsg)) < 0)
		return rc;
	if (dir.entries >= ZIPVIEW_MAX_ENTRIES) {
		errmsg_set(errmsg, "more than %u entries", (unsigned)ZIPVIEW_MAX_ENTRIES);
		return -EFBIG;
	}
	if ((rc = zipdir_read(fd, &dir, &cd, errmsg)) < 0)
		goto out;
	struct zipview_entry root = { .name = NULL, .mode = S_IFDIR | 0755 };
	uint32_t root_index;
	if ((rc = add_raw(&b, "", 0, 0, &root, &root_index)) < 0 ||
	    (rc = dir_put(&b, "", 0, root_index)) < 0)
		goto out;
	b.raws[0].explicit_dir = true;
	size_t pos = 0;
	for (uint64_t i = 0; i < dir.entries; i++) {
		struct zipdir_record r;
		if ((rc = zipdir_next(cd, dir.size, &pos, i, &r, errmsg)) < 0)
			goto out;
		if (r.flags & ZIPDIR_FLAG_ENCRYPTED) {
			errmsg_set(errmsg, "entry \"%.*s\" is encrypted", (int)r.name_len, r.name);
			rc = -EBADMSG;
			goto out;
		}
		struct zipview_entry e = {
			.method = r.method, .crc32 = r.crc32, .compressed_size = r.compressed_size,
			.size = r.size, .mode = r.mode, .header_offset = r.header_offset,
		};
		bool unix_mode = r.host == ZIPDIR_HOST_UNIX && e.mode != 0;
		if ((rc = add_record(&b, r.name, r.name_len, &e, unix_mode, errmsg)) < 0)
			goto out;
	}
	if (!(idx = calloc(1, sizeof(*idx)))) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = lay_out(&b, idx, errmsg)) < 0)
		goto out;
	if (!idx->entries[0].name && !(idx->entries[0].name = strdup(""))) {
		rc = -ENOMEM;
		goto out;
	}
	*out = idx;
	idx = NULL;
out:
	if (rc == -ENOMEM && errmsg && !*errmsg)
		errmsg_set(errmsg, "out of memory reading the central directory");
	zipview_index_free(idx);
	builder_clear(&b);
	free(cd);
	return rc;
}

void zipview_index_free(struct zipview_index *idx)
{
	if (!idx)
		return;
	for (uint32_t i = 0; i < idx->n; i++)
		free((char *)idx->entries[i].name);
	free(idx->entries);
	free(idx);
}

size_t zipview_count(const struct zipview_index *idx)
{
	return idx->n;
}

const struct zipview_entry *zipview_entry(const struct zipview_index *idx, uint32_t i)
{
	return &idx->entries[i];
}

int64_t zipview_lookup(const struct zipview_index *idx, uint32_t dir, const char *name)
{
	const struct zipview_entry *d = &idx->entries[dir];
	if (!S_ISDIR(d->mode))
		return -ENOTDIR;
	uint32_t lo = d->first_child, hi = d->first_child + d->n_children;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(idx->entries[mid].name, name);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

/* ---- reading one entry --------------------------------------------------- */

struct zipview_reader {
	const struct zipview_entry *e;
	const char *path;     /* for messages: the entry's name */
	int fd;
	uint64_t data_offset; /* 0: the local header is not read yet */
	bool started;         /* restart has run */
	z_stream z;
	bool z_live;
	bool crc_valid;       /* crc covers [0, out_pos) */
	uint32_t crc;
	uint64_t in_pos;      /* compressed bytes consumed */
	uint64_t out_pos;     /* content bytes produced */
	/* the last content produced: [win_start, win_start + win_len) */
	unsigned char *win;
	uint64_t win_start;
	size_t win_len;
	unsigned char in[INBUF];
};

struct zipview_reader *zipview_reader_new(const struct zipview_index *idx, uint32_t entry, int fd)
{
	struct zipview_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (!(r->win = malloc(WINDOW))) {
		free(r);
		return NULL;
	}
	r->e = &idx->entries[entry];
	r->path = r->e->name;
	r->fd = fd;
	return r;
}

void zipview_reader_free(struct zipview_reader *r)
{
	if (!r)
		return;
	if (r->z_live)
		inflateEnd(&r->z);
	free(r->win);
	free(r);
}

static int locate_data(struct zipview_reader *r, char **errmsg)
{
	unsigned char h[LOCAL_LEN];
	int rc = pread_all(r->fd, h, sizeof(h), r->e->header_offset);
	if (rc == 0 && le32(h) != LOCAL_SIG)
		rc = -EIO;
	if (rc < 0) {
		errmsg_set(errmsg, "%s: no local header at offset %" PRIu64, r->path, r->e->header_offset);
		return rc;
	}
	r->data_offset = r->e->header_offset + LOCAL_LEN + le16(h + 26) + le16(h + 28);
	return 0;
}

/* Back to the start of the entry. */
static int restart(struct zipview_reader *r, char **errmsg)
{
	if (r->e->method != METHOD_STORED && r->e->method != METHOD_DEFLATED) {
		errmsg_set(errmsg, "%s: compression method %u is not supported", r->path,
			(unsigned)r->e->method);
		return -EIO;
	}
	if (!r->data_offset) {
		int rc = locate_data(r, errmsg);
		if (rc < 0)
			return rc;
	}
	if (r->e->method == METHOD_DEFLATED) {
		if (r->z_live)
			inflateEnd(&r->z);
		memset(&r->z, 0, sizeof(r->z));
		r->z_live = inflateInit2(&r->z, -MAX_WBITS) == Z_OK;
		if (!r->z_live) {
			errmsg_set(errmsg, "%s: cannot start inflating", r->path);
			return -ENOMEM;
		}
	}
	r->in_pos = r->out_pos = 0;
	r->crc = 0;
	r->crc_valid = true;
	r->win_start = 0;
	r->win_len = 0;
	return 0;
}

/* Produces the next content bytes after out_pos into the window. */
static int produce(struct zipview_reader *r, char **errmsg)
{
	const struct zipview_entry *e = r->e;
	if (r->win_len == WINDOW) {
		/* keep the newer half */
		memmove(r->win, r->win + WINDOW / 2, WINDOW / 2);
		r->win_start += WINDOW / 2;
		r->win_len = WINDOW / 2;
	}
	unsigned char *dst = r->win + r->win_len;
	size_t room = WINDOW - r->win_len;
	size_t made = 0;
	if (e->method == METHOD_STORED) {
		uint64_t left = e->size - r->out_pos;
		made = left < room ? (size_t)left : room;
		int rc = pread_all(r->fd, dst, made, r->data_offset + r->out_pos);
		if (rc < 0) {
			errmsg_set(errmsg, "%s: truncated entry", r->path);
			return rc;
		}
	} else {
		r->z.next_out = dst;
		r->z.avail_out = (uInt)room;
		while (r->z.avail_out > 0) {
			if (r->z.avail_in == 0 && r->in_pos < e->compressed_size) {
				uint64_t left = e->compressed_size - r->in_pos;
				size_t len = left < INBUF ? (size_t)left : INBUF;
				int rc = pread_all(r->fd, r->in, len, r->data_offset + r->in_pos);
				if (rc < 0) {
					errmsg_set(errmsg, "%s: truncated entry", r->path);
					return rc;
				}
				r->in_pos += len;
				r->z.next_in = r->in;
				r->z.avail_in = (uInt)len;
			}
			int zrc = inflate(&r->z, Z_NO_FLUSH);
			if (zrc == Z_STREAM_END)
				break;
			if (zrc != Z_OK) {
				errmsg_set(errmsg, "%s: damaged compressed data (%s)", r->path,
					r->z.msg ? r->z.msg : "truncated");
				return -EIO;
			}
		}
		made = room - r->z.avail_out;
	}
	if (made > e->size - r->out_pos || made == 0) {
		errmsg_set(errmsg, "%s: content is %s than its size in the central directory", r->path,
			made ? "longer" : "shorter");
		return -EIO;
	}
	if (r->crc_valid)
		r->crc = (uint32_t)crc32(r->crc, dst, (uInt)made);
	r->out_pos += made;
	r->win_len += made;
	if (r->out_pos == e->size && r->crc_valid && r->crc != e->crc32) {
		errmsg_set(errmsg, "%s: CRC-32 mismatch", r->path);
		return -EIO;
	}
	return 0;
}

ssize_t zipview_read(struct zipview_reader *r, void *buf, size_t size, uint64_t off, char **errmsg)
{
	const struct zipview_entry *e = r->e;
	if (!S_ISREG(e->mode) && !S_ISLNK(e->mode))
		return -EISDIR;
	if (off >= e->size || size == 0)
		return 0;
	if (size > e->size - off)
		size = (size_t)(e->size - off);
	int rc;
	size_t done = 0;
	while (done < size) {
		uint64_t at = off + done;
		if (r->started && at >= r->win_start && at < r->win_start + r->win_len) {
			size_t from = (size_t)(at - r->win_start);
			size_t len = r->win_len - from;
			if (len > size - done)
				len = size - done;
			memcpy((char *)buf + done, r->win + from, len);
			done += len;
			continue;
		}
		if (!r->started || at < r->win_start) {
			if ((rc = restart(r, errmsg)) < 0)
				return rc;
			r->started = true;
		}
		if (e->method == METHOD_STORED && at != r->out_pos) {
			/* stored bytes need no stream: jump (the CRC is then not checked) */
			r->out_pos = at;
			r->crc_valid = false;
			r->win_start = at;
			r->win_len = 0;
		} else if (at - r->out_pos >= WINDOW / 2) {
			/* far ahead: what lies between is inflated and dropped */
			r->win_start = r->out_pos;
			r->win_len = 0;
		}
		if ((rc = produce(r, errmsg)) < 0) {
			r->started = false; /* the next read starts over */
			return rc;
		}
	}
	return (ssize_t)done;
}

ssize_t zipview_readlink(const struct zipview_index *idx, uint32_t entry, int fd, char *buf,
			 size_t size, char **errmsg)
{
	const struct zipview_entry *e = &idx->entries[entry];
	if (!S_ISLNK(e->mode))
		return -EINVAL;
	if (size == 0 || e->size > size - 1 || e->size > ZIPVIEW_MAX_LINK)
		return -ENAMETOOLONG;
	struct zipview_reader *r = zipview_reader_new(idx, entry, fd);
	if (!r)
		return -ENOMEM;
	ssize_t n = zipview_read(r, buf, (size_t)e->size, 0, errmsg);
	zipview_reader_free(r);
	if (n >= 0 && (uint64_t)n != e->size)
		n = -EIO;
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* ---- versions ------------------------------------------------------------ */

struct version {
	size_t pkg;
	char key[ZIPVIEW_KEY_MAX];
	uint32_t prev_of_pkg;         /* the package's previous version; 0 none */
	struct zipview_index *index;  /* NULL: not in memory */
	unsigned holds;
};

struct zipview_versions {
	pthread_mutex_t lock;
	struct version *v;            /* v[0] unused: version 0 is "none" */
	uint32_t n, cap;
	uint32_t *latest;             /* package -> its newest version; 0 none */
	size_t n_latest;
	uint32_t *current;            /* package -> the version served now */
};

struct zipview_versions *zipview_versions_new(void)
{
	struct zipview_versions *vs = calloc(1, sizeof(*vs));
	if (!vs)
		return NULL;
	pthread_mutex_init(&vs->lock, NULL);
	vs->n = 1;
	return vs;
}

void zipview_versions_free(struct zipview_versions *vs)
{
	if (!vs)
		return;
	for (uint32_t i = 1; i < vs->n; i++)
		zipview_index_free(vs->v[i].index);
	free(vs->v);
	free(vs->latest);
	free(vs->current);
	pthread_mutex_destroy(&vs->lock);
	free(vs);
}

/* Frees the index of version i when nothing needs it.  Caller holds lock. */
static struct zipview_index *unneeded_index(struct zipview_versions *vs, uint32_t i)
{
	struct version *v = &vs->v[i];
	if (v->holds > 0 || (v->pkg < vs->n_latest && vs->current[v->pkg] == i))
		return NULL;
	struct zipview_index *idx = v->index;
	v->index = NULL;
	return idx;
}

/* The version of (pkg, key), created when new.  Caller holds lock. */
static int version_of(struct zipview_versions *vs, size_t pkg, const char *key, uint32_t *out)
{
	if (pkg >= vs->n_latest) {
		size_t n = pkg + 1 > vs->n_latest * 2 ? pkg + 1 : vs->n_latest * 2;
		uint32_t *latest = realloc(vs->latest, n * sizeof(*latest));
		if (!latest)
			return -ENOMEM;
		vs->latest = latest;
		uint32_t *current = realloc(vs->current, n * sizeof(*current));
		if (!current)
			return -ENOMEM;
		vs->current = current;
		memset(latest + vs->n_latest, 0, (n - vs->n_latest) * sizeof(*latest));
		memset(current + vs->n_latest, 0, (n - vs->n_latest) * sizeof(*current));
		vs->n_latest = n;
	}
	for (uint32_t i = vs->latest[pkg]; i; i = vs->v[i].prev_of_pkg)
		if (strcmp(vs->v[i].key, key) == 0) {
			*out = i;
			return 0;
		}
	if (vs->n >= ZIPVIEW_MAX_VERSIONS)
		return -EOVERFLOW;
	if (vs->n >= vs->cap) {
		uint32_t cap = vs->cap ? vs->cap * 2 : 64;
		struct version *v = realloc(vs->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		vs->v = v;
		vs->cap = cap;
	}
	struct version *v = &vs->v[vs->n];
	*v = (struct version){ .pkg = pkg, .prev_of_pkg = vs->latest[pkg] };
	snprintf(v->key, sizeof(v->key), "%s", key);
	vs->latest[pkg] = vs->n;
	*out = vs->n++;
	return 0;
}

int zipview_current(struct zipview_versions *vs, size_t pkg, const char *key, int fd,
		    uint32_t *version, const struct zipview_index **out, char **errmsg)
{
	struct zipview_index *loaded = NULL, *unused = NULL;
	uint32_t i;
	int rc;
	pthread_mutex_lock(&vs->lock);
	rc = version_of(vs, pkg, key, &i);
	bool have = rc == 0 && vs->v[i].index;
	pthread_mutex_unlock(&vs->lock);
	if (rc < 0) {
		errmsg_set(errmsg, "%s", rc == -ENOMEM ? "out of memory" : "out of version numbers");
		return rc;
	}
	/* outside the lock: reading a central directory takes milliseconds */
	if (!have && (rc = zipview_index_load(fd, &loaded, errmsg)) < 0)
		return rc;
	pthread_mutex_lock(&vs->lock);
	struct version *v = &vs->v[i]; /* vs->v may have moved */
	if (!v->index) {
		v->index = loaded;
		loaded = NULL;
	}
	uint32_t before = vs->current[pkg];
	vs->current[pkg] = i;
	v->holds++;
	*version = i;
	*out = v->index;
	if (before && before != i)
		unused = unneeded_index(vs, before);
	pthread_mutex_unlock(&vs->lock);
	zipview_index_free(loaded); /* another thread loaded it meanwhile */
	zipview_index_free(unused);
	return 0;
}

const struct zipview_index *zipview_hold(struct zipview_versions *vs, uint32_t i)
{
	const struct zipview_index *idx = NULL;
	pthread_mutex_lock(&vs->lock);
	if (i > 0 && i < vs->n && vs->v[i].index) {
		vs->v[i].holds++;
		idx = vs->v[i].index;
	}
	pthread_mutex_unlock(&vs->lock);
	return idx;
}

void zipview_release(struct zipview_versions *vs, uint32_t i)
{
	struct zipview_index *unused = NULL;
	pthread_mutex_lock(&vs->lock);
	if (i > 0 && i < vs->n && vs->v[i].holds > 0 && --vs->v[i].holds == 0)
		unused = unneeded_index(vs, i);
	pthread_mutex_unlock(&vs->lock);
	zipview_index_free(unused);
}

size_t zipview_package(struct zipview_versions *vs, uint32_t i)
{
	pthread_mutex_lock(&vs->lock);
	size_t pkg = i > 0 && i < vs->n ? vs->v[i].pkg : SIZE_MAX;
	pthread_mutex_unlock(&vs->lock);
	return pkg;
}

void zipview_forget(struct zipview_versions *vs, size_t pkg)
{
	pthread_mutex_lock(&vs->lock);
	if (pkg >= vs->n_latest) {
		pthread_mutex_unlock(&vs->lock);
		return;
	}
	vs->current[pkg] = 0;
	/* one at a time: freeing is done outside the lock */
	for (uint32_t i = vs->latest[pkg]; i; i = vs->v[i].prev_of_pkg) {
		struct zipview_index *unused = unneeded_index(vs, i);
		if (!unused)
			continue;
		pthread_mutex_unlock(&vs->lock);
		zipview_index_free(unused);
		pthread_mutex_lock(&vs->lock);
	}
	pthread_mutex_unlock(&vs->lock);
}
