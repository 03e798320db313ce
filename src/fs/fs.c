/*
 * fs.c - FUSE low-level operations of sebsfs (tree described in fs.h).
 *
 * Every callback replies exactly once.  open (and, with -o stat_builds,
 * lookup/getattr) of a package that is not fresh hands a reply context to
 * the builder and returns; the builder's worker replies when the build ends.
 * A request interrupted while it waits (its process was killed) is answered
 * EINTR at once and dropped from the build's waiters; the build goes on.
 * Reads are answered from the package file descriptor (fuse_reply_data with
 * an fd buffer, copied: see sfs_init for why not spliced).
 *
 * What the kernel caches of a package, and how it is kept true without ever
 * invalidating page cache from the daemon (which waits for page locks that
 * readers hold while their READ requests wait for daemon threads: under load
 * that deadlocked the mount):
 *  - pages: each node remembers the content (the package's digest) of its
 *    last open reply; an open of the same content keeps the kernel's pages
 *    (keep_cache), an open of other content does not, and the kernel then
 *    drops them itself, in the opening process;
 *  - size: a node remembers the size last told to the kernel; when a reply
 *    serves another size, the inode's attributes (only: offset -1, no pages)
 *    are invalidated before the reply, so the next read asks for the size.
 *    An eviction does not change the size shown (see builder_status), so a
 *    reader that still holds the evicted package keeps reading all of it.
 *
 * Timeouts: the tree never changes during a mount, so entries and directory
 * attributes are cached long.  A package's size is the last good build's
 * size; while none exists it is 0 with a zero attribute timeout, so the first
 * open that builds it is followed by a fresh getattr.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

#define TREE_TIMEOUT 3600.0
#define BUILT_ATTR_TIMEOUT 60.0

enum node_kind { NODE_ROOT, NODE_PLATFORM, NODE_RUNTIME, NODE_ZIP, NODE_LOG, NODE_IMAGE,
		 NODE_IMAGE_LOG };

struct node {
	enum node_kind kind;
	const char *name;      /* borrowed from the catalog, or owned_name */
	char *owned_name;
	size_t parent;
	size_t first_child;
	size_t n_children;
	size_t pkg;            /* NODE_ZIP, NODE_LOG, NODE_IMAGE, NODE_IMAGE_LOG */
	/* The package size last given to the kernel (-1: none yet), and the
	 * content of the last open reply (0: none); see the file comment. */
	_Atomic int64_t reported_size;
	_Atomic uint64_t served_content;
};

static struct {
	const struct catalog *cat;
	struct builder *builder;
	struct fuse_session *se;
	struct node *nodes;
	size_t n_nodes, cap;
	bool stat_builds;
	uid_t uid;
	gid_t gid;
	struct timespec mount_time;
} fs;

enum reply_kind { REPLY_OPEN, REPLY_ATTR, REPLY_ENTRY };

/* What a worker needs to reply to a request that waited for a build. */
struct pending {
	enum reply_kind kind;
	fuse_req_t req;
	fuse_ino_t ino;
	struct fuse_file_info fi;
};

/* ---- node table ---------------------------------------------------------- */

static size_t add_node(enum node_kind kind, const char *name, char *owned, size_t parent, size_t pkg)
{
	if (fs.n_nodes == fs.cap) {
		size_t cap = fs.cap ? fs.cap * 2 : 256;
		struct node *n = realloc(fs.nodes, cap * sizeof(*n));
		if (!n)
			return SIZE_MAX;
		fs.nodes = n;
		fs.cap = cap;
	}
	struct node *n = &fs.nodes[fs.n_nodes];
	*n = (struct node){ .kind = kind, .name = owned ? owned : name, .owned_name = owned,
			    .parent = parent, .pkg = pkg, .reported_size = -1 };
	return fs.n_nodes++;
}

/* Nodes are added level by level, so every folder's children are contiguous. */
static int build_tree(const struct catalog *cat)
{
	if (add_node(NODE_ROOT, "", NULL, 0, 0) == SIZE_MAX)
		return -ENOMEM;
	fs.nodes[0].first_child = 1;
	fs.nodes[0].n_children = cat->n_platforms;
	for (size_t p = 0; p < cat->n_platforms; p++)
		if (add_node(NODE_PLATFORM, cat->platforms[p].name, NULL, 0, 0) == SIZE_MAX)
			return -ENOMEM;
	for (size_t p = 0; p < cat->n_platforms; p++) {
		const struct cat_platform *plat = &cat->platforms[p];
		fs.nodes[1 + p].first_child = fs.n_nodes;
		fs.nodes[1 + p].n_children = plat->n_runtimes;
		for (size_t r = 0; r < plat->n_runtimes; r++)
			if (add_node(NODE_RUNTIME, plat->runtimes[r].dirname, NULL, 1 + p, 0) == SIZE_MAX)
				return -ENOMEM;
	}
	size_t n_dirs = fs.n_nodes;
	for (size_t d = 1 + cat->n_platforms; d < n_dirs; d++) {
		const struct cat_platform *plat = &cat->platforms[fs.nodes[d].parent - 1];
		fs.nodes[d].first_child = fs.n_nodes;
		for (size_t i = 0; i < cat->n_packages; i++) {
			const struct cat_package *pkg = &cat->packages[i];
			if (pkg->platform != plat || strcmp(pkg->runtime->dirname, fs.nodes[d].name) != 0)
				continue;
			static const struct { enum node_kind kind; const char *suffix; } files[] = {
				{ NODE_ZIP, ".zip" }, { NODE_LOG, ".zip.log" },
				{ NODE_IMAGE, ".image" }, { NODE_IMAGE_LOG, ".image.log" },
			};
			/* function images only where the platform deploys containers */
			size_t n_files = platform_has_deployment(plat, "container") ? 4 : 2;
			for (size_t f = 0; f < n_files; f++) {
				char *name = str_printf("%s%s", pkg->benchmark->name, files[f].suffix);
				if (!name || add_node(files[f].kind, NULL, name, d, i) == SIZE_MAX) {
					free(name);
					return -ENOMEM;
				}
			}
			fs.nodes[d].n_children += n_files;
		}
	}
	return 0;
}

static struct node *node_of(fuse_ino_t ino)
{
	return (ino >= 1 && ino <= fs.n_nodes) ? &fs.nodes[ino - 1] : NULL;
}

static fuse_ino_t ino_of(const struct node *n)
{
	return (fuse_ino_t)(n - fs.nodes) + 1;
}

static bool is_dir(const struct node *n)
{
	return n->kind == NODE_ROOT || n->kind == NODE_PLATFORM || n->kind == NODE_RUNTIME;
}

static bool is_package(const struct node *n)
{
	return n->kind == NODE_ZIP || n->kind == NODE_IMAGE;
}

static bool is_log(const struct node *n)
{
	return n->kind == NODE_LOG || n->kind == NODE_IMAGE_LOG;
}

/* The builder target a file node belongs to. */
static enum target_kind kind_of(const struct node *n)
{
	return (n->kind == NODE_IMAGE || n->kind == NODE_IMAGE_LOG) ? TARGET_IMAGE : TARGET_ZIP;
}

static struct node *child_named(const struct node *dir, const char *name)
{
	if (!is_dir(dir))
		return NULL;
	for (size_t i = 0; i < dir->n_children; i++) {
		struct node *c = &fs.nodes[dir->first_child + i];
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

/* ---- attributes ---------------------------------------------------------- */

/* Fills st for n; returns the attribute timeout to use. */
static double node_attr(const struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino_of(n);
	st->st_uid = fs.uid;
	st->st_gid = fs.gid;
	st->st_mtim = st->st_ctim = st->st_atim = fs.mount_time;
	if (is_dir(n)) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2 + (n->kind == NODE_RUNTIME ? 0 : n->n_children);
		return TREE_TIMEOUT;
	}
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	if (is_log(n)) {
		struct stat log;
		const char *log_path = builder_log_path(fs.builder, n->pkg, kind_of(n));
		if (log_path && stat(log_path, &log) == 0) {
			st->st_size = log.st_size;
			st->st_mtim = st->st_ctim = log.st_mtim;
		}
		return 0.0; /* grows while a build runs */
	}
	struct builder_status bs;
	builder_status(fs.builder, n->pkg, kind_of(n), false, &bs);
	st->st_size = bs.size;
	atomic_store(&((struct node *)n)->reported_size, bs.size);
	st->st_blocks = (bs.size + 511) / 512;
	if (bs.has_package) {
		st->st_mtim.tv_sec = st->st_ctim.tv_sec = bs.built_at;
		st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = 0;
	}
	return bs.has_package ? BUILT_ATTR_TIMEOUT : 0.0;
}

static void fill_entry(const struct node *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino_of(n);
	e->generation = 1;
	e->attr_timeout = node_attr(n, &e->attr);
	e->entry_timeout = TREE_TIMEOUT;
}

/* Makes the kernel ask for the package's attributes again before it trusts
 * its size.  Attributes only (offset -1): no page is touched, so this never
 * waits on a page lock and is safe in any thread.  ENOENT means the kernel
 * holds no inode for it (nothing to drop). */
static void invalidate_attributes(fuse_ino_t ino)
{
	int rc = fuse_lowlevel_notify_inval_inode(fs.se, ino, -1, 0);
	if (rc < 0 && rc != -ENOENT)
		log_warn("cannot invalidate inode %" PRIu64 ": %s", (uint64_t)ino, strerror(-rc));
}

/* Before a reply that serves size bytes: the kernel must not go on with
 * another size it was told.  (A zero attribute timeout does not suffice: the
 * kernel trusts a size for the rest of the jiffy.) */
static void tell_size(struct node *n, int64_t size)
{
	int64_t told = atomic_exchange(&n->reported_size, size);
	if (told >= 0 && told != size)
		invalidate_attributes(ino_of(n));
}

/* A 64-bit name for the content an open serves: the package's digest, or a
 * hash of an image's document. */
static uint64_t content_id(const struct builder_result *res)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	const char *text = res->document ? res->document : res->sha256;
	for (const char *c = text; c && *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	return h ? h : 1;
}

/* ---- open files ---------------------------------------------------------- */

/* fi->fh is the descriptor reads are answered from: the package file, the log,
 * or for an image a memfd holding its JSON document (one read path for all;
 * a reply never points into memory that a concurrent release could free).
 * -1: an empty file (a log that does not exist yet). */
static int document_fd(const char *document, size_t len)
{
	int fd = memfd_create("sebsfs-image-document", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, document + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	return fd;
}

/* ---- replies from the builder ------------------------------------------- */

static void reply_when_built(void *ctx, const struct builder_result *res)
{
	struct pending *p = ctx;
	struct node *n = node_of(p->ino);
	/* from here on an interrupt can no longer answer for us (it waits for a
	 * running interrupt callback, which then finds no waiter) */
	fuse_req_interrupt_func(p->req, NULL, NULL);
	if (res->status == 0)
		tell_size(n, res->size);
	if (p->kind == REPLY_OPEN) {
		int fd = -1;
		if (res->status == 0 && res->document)
			fd = document_fd(res->document, (size_t)res->size);
		else if (res->status == 0)
			fd = fcntl(res->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			fuse_reply_err(p->req, EIO);
		} else {
			uint64_t id = content_id(res);
			p->fi.fh = (uint64_t)fd;
			p->fi.keep_cache = atomic_exchange(&n->served_content, id) == id;
			if (fuse_reply_open(p->req, &p->fi) != 0)
				close(fd); /* the opener went away (interrupted) */
		}
	} else if (p->kind == REPLY_ATTR) {
		/* a failed build still answers stat: the open reports the failure */
		struct stat st;
		double timeout = node_attr(n, &st);
		fuse_reply_attr(p->req, &st, timeout);
	} else {
		struct fuse_entry_param e;
		fill_entry(n, &e);
		fuse_reply_entry(p->req, &e);
	}
	free(p);
}

/* The waiting request's process was interrupted (killed): when it still
 * waits for a build, it leaves the build's waiters and is answered EINTR
 * here.  Runs with the request's lock held, so it must not (un)register
 * interrupt callbacks itself; replying is fine. */
static void interrupted_while_waiting(fuse_req_t req, void *data)
{
	struct pending *p = data;
	const struct node *n = node_of(p->ino);
	if (!builder_forget_waiter(fs.builder, n->pkg, kind_of(n), p))
		return; /* being answered by the build already */
	fuse_reply_err(req, EINTR);
	free(p);
}

/* Hands req to the builder for package node n.  Replies ENOMEM itself. */
static void build_then_reply(fuse_req_t req, const struct node *n, enum reply_kind kind,
			     const struct fuse_file_info *fi)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	p->kind = kind;
	p->req = req;
	p->ino = ino_of(n);
	if (fi)
		p->fi = *fi;
	fuse_req_interrupt_func(req, interrupted_while_waiting, p);
	builder_ensure(fs.builder, n->pkg, kind_of(n), reply_when_built, p);
}

/* With -o stat_builds, is this a package whose stat must wait for a build? */
static bool stat_must_build(const struct node *n)
{
	if (!fs.stat_builds || !is_package(n))
		return false;
	struct builder_status bs;
	builder_status(fs.builder, n->pkg, kind_of(n), true, &bs);
	return bs.state != PKG_FRESH;
}

/* ---- operations ---------------------------------------------------------- */

static void sfs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* No splice replies.  libfuse 3.14 frees a request whose splice into
	 * /dev/fuse fails without answering it; under concurrent reads and
	 * evictions the kernel refused such splices (EINVAL), and the READ left
	 * unanswered kept its page locked, which hung every later lookup of the
	 * inode (tests/integration/test_load.py).  Copying replies always answer. */
	conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
}

static void sfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	const struct node *dir = node_of(parent);
	const struct node *n = dir ? child_named(dir, name) : NULL;
	if (!n) {
		fuse_reply_err(req, dir && is_dir(dir) ? ENOENT : ENOTDIR);
		return;
	}
	if (stat_must_build(n)) {
		build_then_reply(req, n, REPLY_ENTRY, NULL);
		return;
	}
	struct fuse_entry_param e;
	fill_entry(n, &e);
	fuse_reply_entry(req, &e);
}

static void sfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct node *n = node_of(ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (stat_must_build(n)) {
		build_then_reply(req, n, REPLY_ATTR, NULL);
		return;
	}
	struct stat st;
	double timeout = node_attr(n, &st);
	fuse_reply_attr(req, &st, timeout);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	const struct node *dir = node_of(ino);
	if (!dir || !is_dir(dir)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* offsets: 0 ".", 1 "..", 2+i child i */
	size_t used = 0;
	for (off_t i = off; i < (off_t)dir->n_children + 2; i++) {
		const struct node *n = i == 0 ? dir : i == 1 ? &fs.nodes[dir->parent]
					     : &fs.nodes[dir->first_child + i - 2];
		const char *name = i == 0 ? "." : i == 1 ? ".." : n->name;
		size_t len;
		if (plus) {
			struct fuse_entry_param e;
			fill_entry(n, &e);
			if (i < 2)
				e.ino = 0; /* no lookup count is taken for . and .. */
			len = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
		} else {
			struct stat st = { .st_ino = ino_of(n), .st_mode = is_dir(n) ? S_IFDIR : S_IFREG };
			len = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		}
		if (len > size - used)
			break; /* a partial buffer, not an error: keeps lookup counts right */
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void sfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, false);
}

static void sfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, true);
}

static void sfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct node *n = node_of(ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (is_dir(n)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (is_package(n)) {
		build_then_reply(req, n, REPLY_OPEN, fi);
		return;
	}
	/* a log: may not exist yet (never built); read as empty then */
	const char *log_path = builder_log_path(fs.builder, n->pkg, kind_of(n));
	int fd = log_path ? open(log_path, O_RDONLY | O_CLOEXEC) : -1;
	if (!log_path) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (fd < 0 && errno != ENOENT) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)(int64_t)fd;
	fi->direct_io = 1; /* its size changes under the kernel's feet */
	if (fuse_reply_open(req, fi) != 0 && fd >= 0)
		close(fd);
}

static void sfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	int fd = (int)(int64_t)fi->fh;
	if (fd < 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, 0);
}

static void sfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int fd = (int)(int64_t)fi->fh;
	if (fd >= 0)
		close(fd);
	fuse_reply_err(req, 0);
}

static void unlink_done(void *ctx, int status)
{
	fuse_reply_err(ctx, status < 0 ? -status : 0);
}

static void sfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	const struct node *dir = node_of(parent);
	const struct node *n = dir ? child_named(dir, name) : NULL;
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!is_package(n)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* Eviction makes the next reader wait for a build that runs as the
	 * mount's owner: only the owner (or root) may ask for it. */
	uid_t uid = fuse_req_ctx(req)->uid;
	if (uid != fs.uid && uid != 0) {
		fuse_reply_err(req, EACCES);
		return;
	}
	/* Nothing to invalidate: the size shown stays, and the rebuild's first
	 * open drops the kernel's pages when the content differs. */
	builder_evict(fs.builder, n->pkg, kind_of(n), unlink_done, req);
}

/* ---- extended attributes ------------------------------------------------- */

static const char *const xattr_names[] = {
	"user.sebs.state", "user.sebs.sha256", "user.sebs.input_hash",
	"user.sebs.built_at", "user.sebs.build_seconds", "user.sebs.builds",
};

/* Formats xattr name of package pkg into buf; -ENODATA when it has no value. */
static int xattr_value(const struct node *n, const char *name, char *buf, size_t size)
{
	struct builder_status bs;
	builder_status(fs.builder, n->pkg, kind_of(n), strcmp(name, "user.sebs.state") == 0, &bs);
	if (strcmp(name, "user.sebs.state") == 0)
		return snprintf(buf, size, "%s", package_state_name(bs.state));
	if (strcmp(name, "user.sebs.builds") == 0)
		return snprintf(buf, size, "%u", bs.builds);
	if (!bs.has_package)
		return -ENODATA;
	if (strcmp(name, "user.sebs.sha256") == 0)
		return bs.sha256[0] ? snprintf(buf, size, "%s", bs.sha256) : -ENODATA;
	if (strcmp(name, "user.sebs.input_hash") == 0)
		return snprintf(buf, size, "%s", bs.input_hash);
	if (strcmp(name, "user.sebs.build_seconds") == 0)
		return snprintf(buf, size, "%.3f", bs.build_seconds);
	if (strcmp(name, "user.sebs.built_at") == 0) {
		struct tm tm;
		time_t t = (time_t)bs.built_at;
		gmtime_r(&t, &tm);
		return (int)strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	return -ENODATA;
}

static void sfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	const struct node *n = node_of(ino);
	char value[128];
	int len = (n && is_package(n)) ? xattr_value(n, name, value, sizeof(value)) : -ENODATA;
	if (len < 0)
		fuse_reply_err(req, -len);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else if (size < (size_t)len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, (size_t)len);
}

static void sfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	const struct node *n = node_of(ino);
	char list[512];
	size_t used = 0;
	for (size_t i = 0; n && is_package(n) && i < sizeof(xattr_names) / sizeof(*xattr_names); i++) {
		char value[128];
		if (xattr_value(n, xattr_names[i], value, sizeof(value)) < 0)
			continue;
		size_t len = strlen(xattr_names[i]) + 1;
		memcpy(list + used, xattr_names[i], len);
		used += len;
	}
	if (size == 0)
		fuse_reply_xattr(req, used);
	else if (size < used)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, list, used);
}

/* ---- everything that writes ----------------------------------------------- */

static void sfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void sfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void sfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void sfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void sfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void sfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		       const char *newname, unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void sfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void sfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void sfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void sfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops sfs_ops = {
	.init = sfs_init,
	.lookup = sfs_lookup,
	.getattr = sfs_getattr,
	.readdir = sfs_readdir,
	.readdirplus = sfs_readdirplus,
	.open = sfs_open,
	.read = sfs_read,
	.release = sfs_release,
	.unlink = sfs_unlink,
	.getxattr = sfs_getxattr,
	.listxattr = sfs_listxattr,
	.setattr = sfs_setattr,
	.mknod = sfs_mknod,
	.mkdir = sfs_mkdir,
	.rmdir = sfs_rmdir,
	.symlink = sfs_symlink,
	.rename = sfs_rename,
	.link = sfs_link,
	.create = sfs_create,
	.setxattr = sfs_setxattr,
	.removexattr = sfs_removexattr,
};

struct fuse_session *fs_session_new(struct fuse_args *args, const struct catalog *cat,
				    const struct fs_config *cfg)
{
	fs.cat = cat;
	fs.stat_builds = cfg->stat_builds;
	fs.uid = getuid();
	fs.gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs.mount_time);
	if (build_tree(cat) < 0) {
		log_err("out of memory building the tree");
		return NULL;
	}
	fs.se = fuse_session_new(args, &sfs_ops, sizeof(sfs_ops), NULL);
	return fs.se;
}

void fs_attach_builder(struct builder *b)
{
	fs.builder = b;
}

void fs_cleanup(void)
{
	for (size_t i = 0; i < fs.n_nodes; i++)
		free(fs.nodes[i].owned_name);
	free(fs.nodes);
	memset(&fs, 0, sizeof(fs));
}
