/*
 * ziptree.c - write a directory tree as a reproducible zip (see ziptree.h).
 *
 * The tree is walked with walk_tree (WALK_KEEP) rather than with
 * libarchive's disk reader, which would fetch ACLs and xattrs of every file
 * and put owners, times and inode order into the output.  All entries are
 * collected first, sorted bytewise by archive path (the walker's per-folder
 * order is not that: "a-b" sorts before "a/"), then written with every
 * header field set explicitly.
 *
 * Caveats of libarchive's zip writer (3.6) that shape this file:
 *  - the DOS date/time is computed with localtime(), so a fixed mtime of
 *    315532800 would give different bytes in a time zone east of UTC.  The
 *    mtime is therefore left unset: dos_time(0) clamps to
 *    1980-01-01 00:00:00 in every zone, and the "UT" extra field carries no
 *    timestamp (flags 0).  Readers report 1980-01-01 00:00 (local time).
 *  - the UTF-8 name flag depends on the process locale unless the header
 *    charset is forced; paths are therefore passed as UTF-8 with
 *    hdrcharset=UTF-8, and names that are not valid UTF-8 are refused
 *    (-EILSEQ) instead of being written with a locale-dependent flag.
 *  - the "ux" extra field always holds uid/gid; both are set to 0.
 *  - a symlink's target is converted through the locale's charset even with
 *    hdrcharset=UTF-8: in the "C" locale a non-ASCII target is silently
 *    written empty.  The writer therefore runs under a C.UTF-8 locale of the
 *    calling thread only (uselocale); names are written the same either way.
 */
#include "ziptree.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "walk.h"

/* Fixed deflate level: zlib's default, the best time/size trade-off measured
 * (PERF-NOTES: -9 costs ~70% more time for 0.3% size). */
#define ZT_LEVEL "6"
#define ZT_CHUNK (256 * 1024)
/* libarchive's output buffering; the last block is never padded. */
#define ZT_BLOCK (64 * 1024)

struct zt_entry {
	char *path;     /* archive path; directories end with '/' */
	char *link;     /* symlink target, else NULL */
	mode_t type;    /* S_IFREG, S_IFDIR or S_IFLNK */
	mode_t perm;
};

struct zt_list {
	struct zt_entry *v;
	size_t n, cap;
};

struct zt_out {
	int fd;
	int err;        /* errno of the first failed write, else 0 */
};

static void zt_list_free(struct zt_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].path);
		free(l->v[i].link);
	}
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* Takes ownership of path and link (even on failure). */
static int zt_list_add(struct zt_list *l, char *path, char *link, mode_t type,
		       mode_t perm)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct zt_entry *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			free(path);
			free(link);
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct zt_entry){ path, link, type, perm };
	return 0;
}

static bool zt_valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned c = *p++;
		int more;
		uint32_t cp;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (int i = 0; i < more; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (*p & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
	}
	return true;
}

struct zt_walk {
	struct zt_list *l;
	char **errmsg;
};

/* Collects one entry of the walk (WALK_KEEP: links are kept as links, and
 * walk_tree has refused other file types and links leading out of the tree). */
static int zt_visit(const struct walk_entry *e, void *ctx)
{
	struct zt_walk *w = ctx;
	char *path, *link = NULL;

	if (!zt_valid_utf8(e->path)) {
		errmsg_set(w->errmsg, "%s: name is not valid UTF-8", e->path);
		return -EILSEQ;
	}
	if (S_ISDIR(e->st.st_mode)) {
		if (asprintf(&path, "%s/", e->path) < 0)
			return -ENOMEM;
		return zt_list_add(w->l, path, NULL, S_IFDIR, 0755);
	}
	if (S_ISLNK(e->st.st_mode) && !zt_valid_utf8(e->link)) {
		errmsg_set(w->errmsg, "%s: link target is not valid UTF-8", e->path);
		return -EILSEQ;
	}
	path = strdup(e->path);
	if (e->link)
		link = strdup(e->link);
	if (!path || (e->link && !link)) {
		free(path);
		free(link);
		return -ENOMEM;
	}
	if (link)
		return zt_list_add(w->l, path, link, S_IFLNK, 0777);
	return zt_list_add(w->l, path, NULL, S_IFREG, (e->st.st_mode & 0111) ? 0755 : 0644);
}

static int zt_cmp(const void *a, const void *b)
{
	const struct zt_entry *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/* 0 and 1 for the two entries the JAR convention puts first, 2 for the rest. */
static int zt_jar_rank(const char *path)
{
	if (!strcmp(path, "META-INF/"))
		return 0;
	if (!strcmp(path, "META-INF/MANIFEST.MF"))
		return 1;
	return 2;
}

static int zt_jar_cmp(const void *a, const void *b)
{
	const struct zt_entry *x = a, *y = b;
	int rx = zt_jar_rank(x->path), ry = zt_jar_rank(y->path);

	if (rx != ry)
		return rx < ry ? -1 : 1;
	return strcmp(x->path, y->path);
}

static la_ssize_t zt_write_cb(struct archive *a, void *data, const void *buf,
			      size_t len)
{
	struct zt_out *out = data;
	const char *p = buf;
	size_t left = len;

	while (left > 0) {
		ssize_t w = write(out->fd, p, left);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			out->err = errno;
			archive_set_error(a, errno, "write: %s", strerror(errno));
			return -1;
		}
		p += w;
		left -= (size_t)w;
	}
	return (la_ssize_t)len;
}

/* -errno for the archive's last error; libarchive's own codes become -EIO. */
static int zt_arc_err(struct archive *a, const struct zt_out *out)
{
	int e = archive_errno(a);

	if (out->err)
		return -out->err;
	return e > 0 ? -e : -EIO;
}

static int zt_write_file(struct archive *a, int rootfd, const char *path,
			 struct archive_entry *ae, const struct zt_out *out,
			 char *buf, char **errmsg)
{
	struct stat st;
	off_t left;
	int fd, rc = 0;

	fd = openat(rootfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		errmsg_set(errmsg, "open %s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "stat %s: %s", path, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		errmsg_set(errmsg, "%s: changed type while zipping", path);
		goto out;
	}
	archive_entry_set_size(ae, st.st_size);
	if (archive_write_header(a, ae) != ARCHIVE_OK) {
		rc = zt_arc_err(a, out);
		errmsg_set(errmsg, "%s: %s", path, archive_error_string(a));
		goto out;
	}
	for (left = st.st_size; left > 0;) {
		size_t want = left < ZT_CHUNK ? (size_t)left : ZT_CHUNK;
		ssize_t r = read(fd, buf, want);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			errmsg_set(errmsg, "read %s: %s", path, strerror(-rc));
			goto out;
		}
		if (r == 0) {
			/* the header already promised st_size bytes */
			rc = -EIO;
			errmsg_set(errmsg, "%s: file shrank while zipping", path);
			goto out;
		}
		if (archive_write_data(a, buf, (size_t)r) < 0) {
			rc = zt_arc_err(a, out);
			errmsg_set(errmsg, "%s: %s", path, archive_error_string(a));
			goto out;
		}
		left -= r;
	}
out:
	close(fd);
	return rc;
}

/* ziptree_write_opts, under the thread's C.UTF-8 locale. */
static int zt_write_tree(const char *dir, int out_fd, const struct ziptree_options *zopts,
			 char **errmsg)
{
	static const struct ziptree_options defaults = { 0 };
	const struct ziptree_options *o = zopts ? zopts : &defaults;
	struct zt_list l = { 0 };
	struct zt_out out = { out_fd, 0 };
	struct archive *a = NULL;
	struct archive_entry *ae = NULL;
	char *buf = NULL;
	int rootfd = -1, rc;

	if (errmsg)
		*errmsg = NULL;

	struct zt_walk w = { &l, errmsg };
	struct walk_options opts = { .links = WALK_KEEP, .label = o->label };
	rc = walk_tree(dir, &opts, zt_visit, &w, errmsg);
	if (rc)
		goto out;
	rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		rc = -errno;
		errmsg_set(errmsg, "open %s: %s", dir, strerror(-rc));
		goto out;
	}
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), o->jar_order ? zt_jar_cmp : zt_cmp);

	buf = malloc(ZT_CHUNK);
	ae = archive_entry_new();
	a = archive_write_new();
	if (!buf || !ae || !a) {
		rc = -ENOMEM;
		goto out;
	}
	if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, ZT_BLOCK) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "zip", "compression",
					    o->store ? "store" : "deflate") != ARCHIVE_OK ||
	    archive_write_set_format_option(a, "zip", "hdrcharset", "UTF-8") != ARCHIVE_OK) {
		rc = zt_arc_err(a, &out);
		errmsg_set(errmsg, "zip setup: %s", archive_error_string(a));
		goto out;
	}
	/* Older libarchive lacks the option; its fixed default is also 6. */
	if (!o->store)   /* libarchive takes a level as asking for deflate */
		(void)archive_write_set_format_option(a, "zip", "compression-level", ZT_LEVEL);
	if (archive_write_open2(a, &out, NULL, zt_write_cb, NULL, NULL) != ARCHIVE_OK) {
		rc = zt_arc_err(a, &out);
		errmsg_set(errmsg, "zip open: %s", archive_error_string(a));
		goto out;
	}

	for (size_t i = 0; i < l.n; i++) {
		const struct zt_entry *e = &l.v[i];

		/* No mtime/atime/ctime, owner names or birthtime: see the
		 * file comment for why the mtime stays unset. */
		archive_entry_clear(ae);
		archive_entry_set_pathname_utf8(ae, e->path);
		archive_entry_set_filetype(ae, e->type);
		archive_entry_set_perm(ae, e->perm);
		archive_entry_set_uid(ae, 0);
		archive_entry_set_gid(ae, 0);
		if (e->type == S_IFREG) {
			rc = zt_write_file(a, rootfd, e->path, ae, &out, buf, errmsg);
			if (rc)
				goto out;
			continue;
		}
		archive_entry_set_size(ae, 0);
		if (e->type == S_IFLNK)
			archive_entry_set_symlink_utf8(ae, e->link);
		if (archive_write_header(a, ae) != ARCHIVE_OK) {
			rc = zt_arc_err(a, &out);
			errmsg_set(errmsg, "%s: %s", e->path, archive_error_string(a));
			goto out;
		}
	}
	if (archive_write_close(a) != ARCHIVE_OK) {
		rc = zt_arc_err(a, &out);
		errmsg_set(errmsg, "zip close: %s", archive_error_string(a));
		goto out;
	}
	rc = 0;
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory");
	/* Otherwise archive_write_free would still write a central
	 * directory after a failure. */
	if (rc && a)
		archive_write_fail(a);
	archive_write_free(a);
	archive_entry_free(ae);
	free(buf);
	zt_list_free(&l);
	if (rootfd >= 0)
		close(rootfd);
	return rc;
}

int ziptree_write(const char *dir, int out_fd, char **errmsg)
{
	return ziptree_write_opts(dir, out_fd, NULL, errmsg);
}

int ziptree_write_opts(const char *dir, int out_fd, const struct ziptree_options *zopts,
		       char **errmsg)
{
	locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	locale_t saved = utf8 ? uselocale(utf8) : (locale_t)0;
	int rc = zt_write_tree(dir, out_fd, zopts, errmsg);

	if (utf8) {
		uselocale(saved);
		freelocale(utf8);
	}
	return rc;
}
