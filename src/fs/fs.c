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
 *  - one inode per content: the kernel's pages and size are per inode, so
 *    an inode never serves two contents at once.  A package node counts its
 *    open handles and the one content they hold; an open that would serve
 *    other content while handles are open gives the name a new node (see
 *    supersede) and is answered ESTALE, which the kernel retries once with a
 *    fresh lookup (LOOKUP_REVAL) that finds the new node.  The superseded
 *    node keeps answering getattr, xattrs, reads and release for its
 *    handles' content; lookup never returns it again.  Eviction does not
 *    change content (rebuilds are byte-reproducible), so it keeps the inode.
 *
 * Timeouts: the tree changes only when the SeBS tree does, and then the
 * watcher tells the kernel which entries left (see fs.h), so entries and
 * directory attributes are cached long.  A package's size is the last good build's
 * size; while none exists it is 0 with a zero attribute timeout, so the first
 * open that builds it is followed by a fresh getattr.
 */
#include "fs.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
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
#include "zipview.h"

#define TREE_TIMEOUT 3600.0
#define BUILT_ATTR_TIMEOUT 60.0
/* How often the tree watcher looks for changes of the SeBS tree, and how
 * long after a change its timestamps are not trusted to tell it apart from
 * the next one (coarse kernel clocks; see catalog_stamp). */
#define TREE_POLL_MS 1000
#define TREE_RACY_NS (2 * 1000000000LL)

#define NODE_CHUNK 1024
#define MAX_NODE_CHUNKS 8192 /* 8M nodes */

enum node_kind { NODE_ROOT, NODE_PLATFORM, NODE_RUNTIME, NODE_ZIP, NODE_LOG, NODE_IMAGE,
		 NODE_IMAGE_LOG, NODE_CONFIG_ERROR, NODE_VIEW };

struct node {
	/* immutable once the node is published */
	enum node_kind kind;
	char *name;
	size_t index;          /* inode number - 1 */
	size_t parent;
	size_t pkg;            /* NODE_ZIP, NODE_LOG, NODE_IMAGE, NODE_IMAGE_LOG, NODE_VIEW */
	/* not in the tree now: not listed, lookup and open ENOENT; getattr still
	 * answers (a reader may hold the file open) */
	_Atomic bool gone;
	/* protected by fs.tree_lock */
	size_t *children;      /* every child ever added, in order: readdir offsets */
	size_t n_children, cap_children;
	char *text;            /* NODE_CONFIG_ERROR: why the benchmark is not served */
	/* The package size last given to the kernel (-1: none yet), and the
	 * content of the last open reply (0: none); see the file comment. */
	_Atomic int64_t reported_size;
	_Atomic uint64_t served_content;
	/* Package nodes, protected by fs.open_lock: the open handles not yet
	 * released and the one content they all hold (its id, size, digest,
	 * build facts), and whether another node took this one's name because
	 * an open was to serve other content while handles were open (see the
	 * file comment: one inode per content). */
	unsigned open_handles;
	bool superseded;
	uint64_t held_content;
	int64_t held_size;
	int64_t held_built_at;
	char held_sha256[SHA256_HEX_LEN + 1];
	char held_input_hash[SHA256_HEX_LEN + 1];
	char held_deps_hash[SHA256_HEX_LEN + 1];
	bool held_deps_reused;
};

static struct {
	struct builder *builder;
	struct fuse_session *se;
	/* Nodes live in chunks that never move, so a node pointer stays valid
	 * while the watcher adds nodes; a node index is published (n_nodes)
	 * only once its chunk and fields are written. */
	struct node *chunks[MAX_NODE_CHUNKS];
	_Atomic size_t n_nodes;
	/* children lists, gone-ness changes and error texts are written under
	 * it; request threads read them under it (never while calling out) */
	pthread_rwlock_t tree_lock;
	/* the open-handle fields of package nodes; taken before tree_lock,
	 * never while holding it */
	pthread_mutex_t open_lock;
	bool stat_builds;
	bool no_views;
	uid_t uid;
	gid_t gid;
	struct timespec mount_time;
	/* the tree watcher */
	char *root;
	char *arch;
	pthread_t watcher;
	bool watcher_started;
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_wake;
	bool watch_stop;       /* protected by watch_lock */
	/* the indexes the directory views serve, by view node index */
	struct zipview_versions *views;
} fs;

enum reply_kind { REPLY_OPEN, REPLY_ATTR, REPLY_ENTRY, REPLY_VIEW_LOOKUP, REPLY_VIEW_OPENDIR,
		  REPLY_VIEW_OPEN, REPLY_VIEW_READLINK };

/* What a worker needs to reply to a request that waited for a build. */
struct pending {
	enum reply_kind kind;
	fuse_req_t req;
	fuse_ino_t ino;
	struct fuse_file_info fi;
	/* inside a directory view (ino is the view's node): the inode the
	 * request is about, and the name looked up in it */
	fuse_ino_t target;
	char *name;
};

/* ---- node table ---------------------------------------------------------- */

static struct node *node_at(size_t index)
{
	return &fs.chunks[index / NODE_CHUNK][index % NODE_CHUNK];
}

static struct node *node_of(fuse_ino_t ino)
{
	return (ino >= 1 && ino <= atomic_load(&fs.n_nodes)) ? node_at(ino - 1) : NULL;
}

static fuse_ino_t ino_of(const struct node *n)
{
	return (fuse_ino_t)n->index + 1;
}

/* Adds a node (taking name) under parent; caller holds tree_lock for
 * writing (or is alone).  SIZE_MAX on error (name freed). */
static size_t add_node(enum node_kind kind, char *name, size_t parent, size_t pkg, char *text)
{
	size_t index = atomic_load(&fs.n_nodes);
	size_t chunk = index / NODE_CHUNK;
	struct node *dir = index ? node_at(parent) : NULL;
	if (chunk >= MAX_NODE_CHUNKS || !name ||
	    (!fs.chunks[chunk] && !(fs.chunks[chunk] = calloc(NODE_CHUNK, sizeof(struct node)))))
		goto fail;
	if (dir && dir->n_children == dir->cap_children) {
		size_t cap = dir->cap_children ? dir->cap_children * 2 : 8;
		size_t *c = realloc(dir->children, cap * sizeof(*c));
		if (!c)
			goto fail;
		dir->children = c;
		dir->cap_children = cap;
	}
	struct node *n = node_at(index);
	*n = (struct node){ .kind = kind, .name = name, .index = index, .parent = parent,
			    .pkg = pkg, .text = text, .reported_size = -1 };
	if (dir)
		dir->children[dir->n_children++] = index;
	atomic_store(&fs.n_nodes, index + 1);
	return index;
fail:
	free(name);
	free(text);
	return SIZE_MAX;
}

/* What a folder should hold now: one entry per child node. */
struct want {
	enum node_kind kind;
	char *name;            /* owned until a node takes it */
	size_t pkg;
	char *text;            /* NODE_CONFIG_ERROR, owned likewise */
	bool matched;
};

/* An entry the kernel may still cache although it left the tree, or a
 * folder whose attributes (link count) changed: told to the kernel once the
 * tree lock is released. */
struct notes {
	struct note { fuse_ino_t parent; char *name; } *items;
	size_t n, cap;
};

static void note_add(struct notes *nt, fuse_ino_t parent, const char *name)
{
	if (nt->n == nt->cap) {
		size_t cap = nt->cap ? nt->cap * 2 : 16;
		struct note *items = realloc(nt->items, cap * sizeof(*items));
		if (!items)
			return; /* the entry times out on its own (TREE_TIMEOUT) */
		nt->items = items;
		nt->cap = cap;
	}
	char *copy = name ? strdup(name) : NULL;
	if (name && !copy)
		return;
	nt->items[nt->n++] = (struct note){ .parent = parent, .name = copy };
}

static bool belongs_to_package(enum node_kind kind)
{
	return kind == NODE_ZIP || kind == NODE_LOG || kind == NODE_IMAGE || kind == NODE_IMAGE_LOG ||
	       kind == NODE_VIEW;
}

static bool same_entry(const struct node *c, const struct want *w)
{
	return c->kind == w->kind && strcmp(c->name, w->name) == 0 &&
	       (!belongs_to_package(w->kind) || c->pkg == w->pkg);
}

/* Makes dir's live children exactly wants (matched by kind, name and
 * package): others become gone, missing ones are added or come back with
 * their old inode.  Caller holds tree_lock for writing.  Frees the wants. */
static void sync_children(size_t dir_index, struct want *wants, size_t n_wants, struct notes *nt)
{
	struct node *dir = node_at(dir_index);
	bool changed = false;
	for (size_t i = 0; i < dir->n_children; i++) {
		struct node *c = node_at(dir->children[i]);
		struct want *w = NULL;
		for (size_t k = 0; k < n_wants && !w; k++)
			if (!wants[k].matched && same_entry(c, &wants[k]))
				w = &wants[k];
		if (w) {
			w->matched = true;
			if (atomic_exchange(&c->gone, false))
				changed = true;
			if (w->text && (!c->text || strcmp(c->text, w->text) != 0)) {
				free(c->text);
				c->text = w->text;
				w->text = NULL;
			}
		} else if (!atomic_exchange(&c->gone, true)) {
			note_add(nt, ino_of(dir), c->name);
			changed = true;
		}
	}
	for (size_t k = 0; k < n_wants; k++) {
		struct want *w = &wants[k];
		if (w->matched)
			continue;
		bool taken = false;
		for (size_t i = 0; i < dir->n_children && !taken; i++) {
			const struct node *c = node_at(dir->children[i]);
			taken = !atomic_load(&c->gone) && strcmp(c->name, w->name) == 0;
		}
		if (taken) {
			/* e.g. a broken benchmark "x.zip" next to a working "x" */
			log_warn("%s/%s: name used twice, one of them is not listed", dir->name, w->name);
			continue;
		}
		if (add_node(w->kind, w->name, dir_index, w->pkg, w->text) == SIZE_MAX)
			log_err("out of memory adding %s/%s to the tree", dir->name, w->name);
		w->name = w->text = NULL;
		changed = true;
	}
	for (size_t k = 0; k < n_wants; k++) {
		free(wants[k].name);
		free(wants[k].text);
	}
	free(wants);
	if (changed)
		note_add(nt, ino_of(dir), NULL);
}

/* The live child of dir named name, of a directory kind; NULL if none.
 * Caller holds tree_lock. */
static struct node *live_child(const struct node *dir, const char *name)
{
	for (size_t i = 0; i < dir->n_children; i++) {
		struct node *c = node_at(dir->children[i]);
		if (!atomic_load(&c->gone) && strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

/* A runtime folder: the files of every package of (plat, rt), and a
 * "<benchmark>.log" for every broken benchmark (its language is unknown, so
 * it shows in every runtime folder).  plat NULL: the folder left the tree.
 * A package shows its code package "<benchmark><suffix>" (".zip", or ".jar"
 * for aws java), its log "<benchmark><suffix>.log" and (unless -o views=off)
 * its directory view "<benchmark>/", unless the platform deploys the
 * language as an image only,
 * and "<benchmark>.image" and its log where the platform deploys containers. */
static void sync_runtime(const struct catalog *cat, size_t dir, const struct cat_platform *plat,
			 const struct cat_runtime *rt, struct notes *nt)
{
	size_t n = 0, cap = 0;
	struct want *wants = NULL;
	bool code = rt && rt->package_suffix;
	/* SeBS's function image names have no variant: a variant's image would
	 * take the default one's name */
	bool image = plat && platform_has_deployment(plat, "container") && !(rt && rt->variant);
	size_t n_files = (code ? 3 : 0) + (image ? 2 : 0);
	for (size_t i = 0; rt && i < cat->n_packages + cat->n_broken; i++) {
		const struct cat_package *pkg = i < cat->n_packages ? &cat->packages[i] : NULL;
		const struct cat_broken *br = pkg ? NULL : &cat->broken[i - cat->n_packages];
		if (pkg && (pkg->platform != plat || pkg->runtime != rt))
			continue;
		if (n + n_files + 1 > cap) {
			cap = cap ? cap * 2 : 32;
			struct want *nw = realloc(wants, cap * sizeof(*nw));
			if (!nw) {
				/* leave the folder as it is rather than empty it */
				log_err("out of memory listing %s", node_at(dir)->name);
				while (n > 0) {
					free(wants[--n].name);
					free(wants[n].text);
				}
				free(wants);
				return;
			}
			wants = nw;
		}
		if (br) {
			wants[n++] = (struct want){
				.kind = NODE_CONFIG_ERROR, .name = str_printf("%s.log", br->name),
				.text = str_printf("%s\n%s is not served until its config.json is fixed.\n",
						   br->reason, br->name),
			};
			continue;
		}
		const char *name = pkg->benchmark->name;
		if (code) {
			wants[n++] = (struct want){ .kind = NODE_ZIP, .pkg = pkg->id,
				.name = str_printf("%s%s", name, rt->package_suffix) };
			wants[n++] = (struct want){ .kind = NODE_LOG, .pkg = pkg->id,
				.name = str_printf("%s%s.log", name, rt->package_suffix) };
			if (!fs.no_views)
				wants[n++] = (struct want){ .kind = NODE_VIEW, .pkg = pkg->id,
					.name = strdup(name) };
		}
		if (image) {
			wants[n++] = (struct want){ .kind = NODE_IMAGE, .pkg = pkg->id,
				.name = str_printf("%s.image", name) };
			wants[n++] = (struct want){ .kind = NODE_IMAGE_LOG, .pkg = pkg->id,
				.name = str_printf("%s.image.log", name) };
		}
	}
	for (size_t k = 0; k < n; k++)
		if (!wants[k].name || (wants[k].kind == NODE_CONFIG_ERROR && !wants[k].text)) {
			free(wants[k].name);
			free(wants[k].text);
			wants[k--] = wants[--n];
		}
	sync_children(dir, wants, n, nt);
}

static void sync_platform(const struct catalog *cat, size_t dir, const struct cat_platform *plat,
			  struct notes *nt)
{
	size_t n = plat ? plat->n_runtimes : 0;
	struct want *wants = calloc(n ? n : 1, sizeof(*wants));
	if (!wants)
		return;
	for (size_t r = 0; r < n; r++)
		wants[r] = (struct want){ .kind = NODE_RUNTIME, .name = strdup(plat->runtimes[r].dirname) };
	sync_children(dir, wants, n, nt);
	const struct node *d = node_at(dir);
	for (size_t i = 0; i < d->n_children; i++) {
		const struct node *c = node_at(d->children[i]);
		bool live = plat && !atomic_load(&c->gone);
		sync_runtime(cat, c->index, live ? plat : NULL,
			     live ? catalog_runtime(plat, c->name) : NULL, nt);
	}
}

/* Makes the node table show cat (its package ids already stable).  Caller
 * holds tree_lock for writing. */
static void sync_tree(const struct catalog *cat, struct notes *nt)
{
	struct want *wants = calloc(cat->n_platforms ? cat->n_platforms : 1, sizeof(*wants));
	if (!wants)
		return;
	for (size_t p = 0; p < cat->n_platforms; p++)
		wants[p] = (struct want){ .kind = NODE_PLATFORM, .name = strdup(cat->platforms[p].name) };
	sync_children(0, wants, cat->n_platforms, nt);
	const struct node *root = node_at(0);
	for (size_t i = 0; i < root->n_children; i++) {
		const struct node *c = node_at(root->children[i]);
		sync_platform(cat, c->index,
			      atomic_load(&c->gone) ? NULL : catalog_platform(cat, c->name), nt);
	}
}

/* Tells the kernel what left the tree (its cached entries would otherwise
 * stay for TREE_TIMEOUT) and which folders changed.  Never under tree_lock:
 * the kernel takes the folder's lock, which a lookup waiting for us holds. */
static void send_notes(struct notes *nt)
{
	for (size_t i = 0; i < nt->n; i++) {
		struct note *x = &nt->items[i];
		int rc = x->name ? fuse_lowlevel_notify_inval_entry(fs.se, x->parent, x->name,
								     strlen(x->name))
				 : fuse_lowlevel_notify_inval_inode(fs.se, x->parent, -1, 0);
		if (rc < 0 && rc != -ENOENT)
			log_warn("cannot tell the kernel that %s left the tree: %s",
				 x->name ? x->name : "a folder", strerror(-rc));
		free(x->name);
	}
	free(nt->items);
	memset(nt, 0, sizeof(*nt));
}

static bool is_dir(const struct node *n)
{
	return n->kind == NODE_ROOT || n->kind == NODE_PLATFORM || n->kind == NODE_RUNTIME ||
	       n->kind == NODE_VIEW;
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

static bool is_config_error(const struct node *n)
{
	return n->kind == NODE_CONFIG_ERROR;
}

/* The child of dir listed under name now, or NULL. */
static struct node *child_named(const struct node *dir, const char *name)
{
	if (!is_dir(dir))
		return NULL;
	pthread_rwlock_rdlock(&fs.tree_lock);
	struct node *c = live_child(dir, name);
	pthread_rwlock_unlock(&fs.tree_lock);
	return c;
}

/* ---- one inode per content ---------------------------------------------- */

/* When package node n has open handles, or was superseded: fills bs with
 * the content its handles hold (size, digest, build facts; state stale when
 * superseded, fresh otherwise) and returns true.  Otherwise false: the node
 * shows the package as the builder has it. */
static bool held_status(const struct node *n, struct builder_status *bs)
{
	bool held;
	memset(bs, 0, sizeof(*bs));
	pthread_mutex_lock(&fs.open_lock);
	held = n->superseded || n->open_handles > 0;
	if (held) {
		bs->state = n->superseded ? PKG_STALE : PKG_FRESH;
		bs->has_package = true;
		bs->size = n->held_size;
		bs->built_at = n->held_built_at;
		memcpy(bs->sha256, n->held_sha256, sizeof(bs->sha256));
		memcpy(bs->input_hash, n->held_input_hash, sizeof(bs->input_hash));
		memcpy(bs->deps_hash, n->held_deps_hash, sizeof(bs->deps_hash));
		bs->deps_reused = n->held_deps_reused;
	}
	pthread_mutex_unlock(&fs.open_lock);
	return held;
}

/* Gives old's name a new node of the same package, in old's place in its
 * folder (same readdir offset); old stays valid for the kernel's references
 * and its open handles but is never found again.  Caller holds open_lock.
 * 0, -ENOMEM, or -EIO (old is not in its folder's list: cannot happen). */
static int supersede(struct node *old)
{
	int rc = 0;
	char *name = strdup(old->name);
	pthread_rwlock_wrlock(&fs.tree_lock);
	struct node *dir = node_at(old->parent);
	size_t slot = SIZE_MAX;
	for (size_t i = 0; i < dir->n_children && slot == SIZE_MAX; i++)
		if (dir->children[i] == old->index)
			slot = i;
	assert(slot != SIZE_MAX);
	if (slot == SIZE_MAX) {
		free(name);
		rc = -EIO;
		goto out;
	}
	size_t index = add_node(old->kind, name, old->parent, old->pkg, NULL);
	if (index == SIZE_MAX) {
		rc = -ENOMEM;
		goto out;
	}
	/* add_node appended it: move it into old's slot */
	dir->children[slot] = index;
	dir->n_children--;
	atomic_store(&node_at(index)->gone, atomic_load(&old->gone));
	old->superseded = true;
out:
	pthread_rwlock_unlock(&fs.tree_lock);
	if (rc < 0)
		log_err("cannot give %s a new inode: %s", old->name, strerror(-rc));
	return rc;
}

static bool is_superseded(const struct node *n)
{
	pthread_mutex_lock(&fs.open_lock);
	bool superseded = n->superseded;
	pthread_mutex_unlock(&fs.open_lock);
	return superseded;
}

/* Before an open of package node n is answered with content id (res): one
 * inode only ever serves one content at a time (the kernel's page cache and
 * size are per inode).  Returns 0 and counts the handle when n may serve it;
 * -ESTALE when n was superseded, or is now (it holds handles of other
 * content): the kernel then retries the open once with a fresh lookup, which
 * finds the name's new node; -ENOMEM. */
static int admit_open(struct node *n, const struct builder_result *res, uint64_t id)
{
	int rc = 0;
	struct builder_status bs;
	builder_status(fs.builder, n->pkg, kind_of(n), false, &bs);
	pthread_mutex_lock(&fs.open_lock);
	if (n->superseded) {
		rc = -ESTALE;
	} else if (n->open_handles > 0 && n->held_content != id) {
		rc = supersede(n);
		if (rc == 0)
			rc = -ESTALE;
	} else if (n->open_handles++ == 0) {
		n->held_content = id;
		n->held_size = res->size;
		memcpy(n->held_sha256, res->sha256, sizeof(n->held_sha256));
		/* the builder may have moved on already: its facts only when they
		 * describe this content */
		bool same = res->sha256[0] ? strcmp(bs.sha256, res->sha256) == 0
					   : bs.size == res->size;
		n->held_built_at = same ? bs.built_at : fs.mount_time.tv_sec;
		snprintf(n->held_input_hash, sizeof(n->held_input_hash), "%s",
			 same ? bs.input_hash : "");
		snprintf(n->held_deps_hash, sizeof(n->held_deps_hash), "%s",
			 same ? bs.deps_hash : "");
		n->held_deps_reused = same && bs.deps_reused;
		if (!res->sha256[0] && same)
			memcpy(n->held_sha256, bs.sha256, sizeof(n->held_sha256));
	}
	assert(rc != 0 || n->held_content == id);
	pthread_mutex_unlock(&fs.open_lock);
	return rc;
}

/* A handle admit_open counted was released (or its open never reached the
 * opener). */
static void release_handle(struct node *n)
{
	pthread_mutex_lock(&fs.open_lock);
	assert(n->open_handles > 0);
	if (n->open_handles > 0)
		n->open_handles--;
	pthread_mutex_unlock(&fs.open_lock);
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
		/* a view's subfolders are unknown until it is built: 1 says so */
		st->st_nlink = n->kind == NODE_VIEW ? 1 : 2;
		pthread_rwlock_rdlock(&fs.tree_lock);
		for (size_t i = 0; i < n->n_children; i++) {
			const struct node *c = node_at(n->children[i]);
			st->st_nlink += !atomic_load(&c->gone) && is_dir(c);
		}
		pthread_rwlock_unlock(&fs.tree_lock);
		return TREE_TIMEOUT;
	}
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	if (is_config_error(n)) {
		pthread_rwlock_rdlock(&fs.tree_lock);
		st->st_size = n->text ? (off_t)strlen(n->text) : 0;
		pthread_rwlock_unlock(&fs.tree_lock);
		return 0.0; /* its text changes with the config.json */
	}
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
	if (held_status(n, &bs)) {
		/* its handles' content, whatever the package is now */
		st->st_size = bs.size;
		st->st_blocks = (bs.size + 511) / 512;
		st->st_mtim.tv_sec = st->st_ctim.tv_sec = bs.built_at;
		st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = 0;
		return BUILT_ATTR_TIMEOUT;
	}
	builder_status(fs.builder, n->pkg, kind_of(n), false, &bs);
	st->st_size = bs.size;
	atomic_store(&((struct node *)n)->reported_size, bs.size);
	st->st_blocks = (bs.size + 511) / 512;
	if (bs.has_package) {
		st->st_mtim.tv_sec = st->st_ctim.tv_sec = bs.built_at;
		st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = 0;
	}
	/* A package never built shows size 0 and is cached like a built one:
	 * its size changes only through a build, and every reply that serves a
	 * build's bytes tells the kernel first (tell_size).  With -o
	 * stat_builds every stat of it must reach sebsfs, to wait for its build. */
	return bs.has_package || !fs.stat_builds ? BUILT_ATTR_TIMEOUT : 0.0;
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

static void view_reply(const struct pending *p, const struct builder_result *res);

static void free_pending(struct pending *p)
{
	free(p->name);
	free(p);
}

static void reply_when_built(void *ctx, const struct builder_result *res)
{
	struct pending *p = ctx;
	struct node *n = node_of(p->ino);
	/* from here on an interrupt can no longer answer for us (it waits for a
	 * running interrupt callback, which then finds no waiter) */
	fuse_req_interrupt_func(p->req, NULL, NULL);
	if (p->kind >= REPLY_VIEW_LOOKUP) {
		view_reply(p, res);
		free_pending(p);
		return;
	}
	struct builder_status held;
	if (p->kind != REPLY_OPEN && res->status == 0 && !held_status(n, &held))
		tell_size(n, res->size);
	if (p->kind == REPLY_OPEN) {
		uint64_t id = content_id(res);
		/* EFBIG: size_limits=strict refused the package (sizelimits.h) */
		int rc = res->status == 0 ? admit_open(n, res, id)
			 : res->status == -EFBIG ? -EFBIG : -EIO;
		int fd = -1;
		if (rc == 0 && res->document)
			fd = document_fd(res->document, (size_t)res->size);
		else if (rc == 0)
			fd = fcntl(res->fd, F_DUPFD_CLOEXEC, 0);
		if (rc == 0 && fd < 0) {
			release_handle(n);
			rc = -EIO;
		}
		if (rc < 0) {
			fuse_reply_err(p->req, -rc);
		} else {
			tell_size(n, res->size);
			p->fi.fh = (uint64_t)fd;
			p->fi.keep_cache = atomic_exchange(&n->served_content, id) == id;
			if (fuse_reply_open(p->req, &p->fi) != 0) {
				close(fd); /* the opener went away (interrupted) */
				release_handle(n);
			}
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
	free_pending(p);
}

/* Hands req to the builder for package node n (or the package of view node
 * n, for a request about inode target inside it, name looked up there).
 * Replies ENOMEM itself. */
static void build_then_reply_in(fuse_req_t req, const struct node *n, enum reply_kind kind,
				const struct fuse_file_info *fi, fuse_ino_t target,
				const char *name)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p || (name && !(p->name = strdup(name)))) {
		free(p);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	p->kind = kind;
	p->req = req;
	p->ino = ino_of(n);
	p->target = target;
	if (fi)
		p->fi = *fi;
	fuse_req_interrupt_func(req, interrupted_while_waiting, p);
	builder_ensure(fs.builder, n->pkg, kind_of(n), reply_when_built, p);
}

static void build_then_reply(fuse_req_t req, const struct node *n, enum reply_kind kind,
			     const struct fuse_file_info *fi)
{
	build_then_reply_in(req, n, kind, fi, 0, NULL);
}

/* With -o stat_builds, is this a package whose stat must wait for a build? */
static bool stat_must_build(const struct node *n)
{
	if (!fs.stat_builds || !is_package(n) || atomic_load(&n->gone))
		return false;
	struct builder_status bs;
	builder_status(fs.builder, n->pkg, kind_of(n), true, &bs);
	return bs.state != PKG_FRESH;
}

/* ---- directory views -------------------------------------------------------
 * "<benchmark>/" beside a package shows the zip's tree (zipview.h).  The view
 * folder itself is a node (stat and listing its runtime folder build
 * nothing); what lies inside is not: its inode numbers are VIEW_INO |
 * version << 32 | entry, the version being the one zipview gave the
 * package's content, so they stay the same while the package does not
 * change and never name two things.  zipview's versions are keyed by the
 * view node's index (the builder's package id is that node's pkg).
 *
 * Listing a view folder, looking a name up in one and opening or reading a
 * link inside one go through builder_ensure as an open of the zip does:
 * same single build, freshness check and failure (EIO; the build log says
 * why).  A request about an inode of an older content of the package is
 * answered ESTALE: the kernel then walks the path again with fresh lookups
 * (LOOKUP_REVAL), which find the current content's inodes.  So entries and
 * attributes can be cached like a package's (BUILT_ATTR_TIMEOUT) without a
 * notification from the daemon; an open file or folder keeps the content it
 * was opened with (its handle holds the version), and a file's pages never
 * need dropping: an inode only ever has one content (keep_cache). */

#define VIEW_INO (UINT64_C(1) << 62)

struct view_handle {
	uint32_t version;      /* held: released with the handle */
	uint32_t entry;
	fuse_ino_t view_ino;   /* the view's node: ".." of its top entries */
	const struct zipview_index *index;
	/* files: a reader on the package, one read at a time */
	int fd;
	pthread_mutex_t lock;
	struct zipview_reader *reader;
	bool logged;           /* a read error was logged for this handle */
};

static bool is_view_ino(fuse_ino_t ino)
{
	return (ino & VIEW_INO) != 0;
}

static fuse_ino_t view_ino(const struct node *view, uint32_t version, uint32_t entry)
{
	return entry == 0 ? ino_of(view) : VIEW_INO | (uint64_t)version << 32 | entry;
}

static uint32_t version_of_ino(fuse_ino_t ino)
{
	return (uint32_t)((ino & ~VIEW_INO) >> 32);
}

/* Is ino a view folder or anything inside one? */
static bool in_view(fuse_ino_t ino)
{
	const struct node *n = is_view_ino(ino) ? NULL : node_of(ino);
	return is_view_ino(ino) || (n && n->kind == NODE_VIEW);
}

/* The view node inode ino lies in (the node itself, or an inode inside
 * it); NULL when ino is neither or its content is no longer known. */
static struct node *view_node_of(fuse_ino_t ino)
{
	if (!is_view_ino(ino)) {
		struct node *n = node_of(ino);
		return n && n->kind == NODE_VIEW ? n : NULL;
	}
	size_t index = zipview_package(fs.views, version_of_ino(ino));
	return index == SIZE_MAX ? NULL : node_at(index);
}

static double view_attr(const struct node *view, const struct zipview_index *idx,
			uint32_t version, uint32_t entry, struct stat *st)
{
	const struct zipview_entry *e = zipview_entry(idx, entry);
	memset(st, 0, sizeof(*st));
	st->st_ino = view_ino(view, version, entry);
	st->st_mode = e->mode & ~0222; /* read-only, whatever the zip says */
	st->st_nlink = S_ISDIR(e->mode) ? 2 + e->n_subdirs : 1;
	st->st_uid = fs.uid;
	st->st_gid = fs.gid;
	st->st_size = (off_t)e->size;
	st->st_blocks = (blkcnt_t)((e->size + 511) / 512);
	st->st_mtim = st->st_ctim = st->st_atim = fs.mount_time;
	return BUILT_ATTR_TIMEOUT;
}

static void view_entry_param(const struct node *view, const struct zipview_index *idx,
			     uint32_t version, uint32_t entry, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = view_ino(view, version, entry);
	e->generation = 1;
	e->attr_timeout = view_attr(view, idx, version, entry, &e->attr);
	e->entry_timeout = BUILT_ATTR_TIMEOUT;
}

static void view_handle_free(struct view_handle *h)
{
	if (!h)
		return;
	zipview_reader_free(h->reader);
	if (h->fd >= 0)
		close(h->fd);
	pthread_mutex_destroy(&h->lock);
	zipview_release(fs.views, h->version);
	free(h);
}

/* A handle on entry of version (held by the caller; the handle takes that
 * hold); a reader when fd >= 0 (taken too).  NULL on ENOMEM (then both are
 * given back). */
static struct view_handle *view_handle_new(const struct node *view, uint32_t version,
					   const struct zipview_index *idx, uint32_t entry, int fd)
{
	struct view_handle *h = calloc(1, sizeof(*h));
	if (h) {
		*h = (struct view_handle){ .version = version, .entry = entry, .index = idx,
					   .view_ino = ino_of(view), .fd = fd };
		pthread_mutex_init(&h->lock, NULL);
		if (fd < 0 || (h->reader = zipview_reader_new(idx, entry, fd)))
			return h;
		view_handle_free(h);
		return NULL;
	}
	if (fd >= 0)
		close(fd);
	zipview_release(fs.views, version);
	return NULL;
}

/* The package is built (or failed): answer the view request p. */
static void view_reply(const struct pending *p, const struct builder_result *res)
{
	const struct node *view = node_of(p->ino);
	const struct node *runtime = node_at(view->parent);
	char key[ZIPVIEW_KEY_MAX];
	char *err = NULL;
	if (res->status < 0) {
		fuse_reply_err(p->req, -res->status);
		return;
	}
	/* the digest names the content; without one, the cache file does */
	struct stat pst;
	if (res->sha256[0])
		snprintf(key, sizeof(key), "%s", res->sha256);
	else if (fstat(res->fd, &pst) == 0)
		snprintf(key, sizeof(key), "file %ju:%ju:%jd", (uintmax_t)pst.st_dev,
			 (uintmax_t)pst.st_ino, (intmax_t)pst.st_size);
	else
		snprintf(key, sizeof(key), "size %" PRId64, res->size);
	uint32_t version;
	const struct zipview_index *idx;
	int rc = zipview_current(fs.views, view->index, key, res->fd, &version, &idx, &err);
	if (rc < 0) {
		log_err("%s/%s/%s/: cannot list the package: %s", node_at(runtime->parent)->name,
			runtime->name, view->name, err ? err : strerror(-rc));
		free(err);
		fuse_reply_err(p->req, EIO);
		return;
	}
	uint32_t entry = 0;
	if (is_view_ino(p->target)) {
		if (version_of_ino(p->target) != version) {
			zipview_release(fs.views, version);
			fuse_reply_err(p->req, ESTALE); /* an older content: walk again */
			return;
		}
		entry = (uint32_t)p->target;
	}
	const struct zipview_entry *e = zipview_entry(idx, entry);
	struct fuse_file_info fi = p->fi;
	struct view_handle *h = NULL;
	switch (p->kind) {
	case REPLY_VIEW_LOOKUP: {
		int64_t child = zipview_lookup(idx, entry, p->name);
		struct fuse_entry_param ep;
		if (child > 0)
			view_entry_param(view, idx, version, (uint32_t)child, &ep);
		zipview_release(fs.views, version);
		if (child > 0)
			fuse_reply_entry(p->req, &ep);
		else
			fuse_reply_err(p->req, child < 0 ? (int)-child : ENOENT);
		return;
	}
	case REPLY_VIEW_READLINK: {
		char target[ZIPVIEW_MAX_LINK + 1];
		ssize_t len = zipview_readlink(idx, entry, res->fd, target, sizeof(target), &err);
		zipview_release(fs.views, version);
		if (len < 0 && len != -EINVAL)
			log_err("%s/%s: cannot read link %s: %s", node_at(view->parent)->name,
				view->name, e->name, err ? err : strerror((int)-len));
		free(err);
		if (len < 0)
			fuse_reply_err(p->req, len == -EINVAL ? EINVAL : EIO);
		else
			fuse_reply_readlink(p->req, target);
		return;
	}
	case REPLY_VIEW_OPENDIR:
		if (!S_ISDIR(e->mode)) {
			zipview_release(fs.views, version);
			fuse_reply_err(p->req, ENOTDIR);
			return;
		}
		h = view_handle_new(view, version, idx, entry, -1);
		break;
	default: {
		if (S_ISDIR(e->mode)) {
			zipview_release(fs.views, version);
			fuse_reply_err(p->req, EISDIR);
			return;
		}
		int fd = fcntl(res->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			zipview_release(fs.views, version);
			fuse_reply_err(p->req, errno);
			return;
		}
		h = view_handle_new(view, version, idx, entry, fd);
		fi.keep_cache = 1; /* one content per inode */
		break;
	}
	}
	if (!h) {
		fuse_reply_err(p->req, ENOMEM);
		return;
	}
	fi.fh = (uint64_t)(uintptr_t)h;
	if (fuse_reply_open(p->req, &fi) != 0)
		view_handle_free(h); /* the opener went away (interrupted) */
}

/* A request about inode target inside a view (or the view folder itself),
 * answered once its package is built. */
static void view_request(fuse_req_t req, enum reply_kind kind, fuse_ino_t target,
			 const char *name, const struct fuse_file_info *fi)
{
	const struct node *view = view_node_of(target);
	if (!view) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (atomic_load(&view->gone)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	build_then_reply_in(req, view, kind, fi, target, name);
}

static void view_getattr(fuse_req_t req, fuse_ino_t ino)
{
	uint32_t version = version_of_ino(ino);
	const struct node *view = view_node_of(ino);
	const struct zipview_index *idx = view ? zipview_hold(fs.views, version) : NULL;
	if (!idx) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	struct stat st;
	uint32_t entry = (uint32_t)ino;
	double timeout = entry < zipview_count(idx) ? view_attr(view, idx, version, entry, &st) : -1;
	zipview_release(fs.views, version);
	if (timeout < 0)
		fuse_reply_err(req, ESTALE);
	else
		fuse_reply_attr(req, &st, timeout);
}

static void view_readdir(fuse_req_t req, const struct view_handle *h, size_t size, off_t off,
			 bool plus)
{
	const struct node *view = node_of(h->view_ino);
	const struct zipview_entry *dir = zipview_entry(h->index, h->entry);
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* offsets: 0 ".", 1 "..", 2+k the folder's child k */
	size_t used = 0;
	for (off_t i = off; i < (off_t)dir->n_children + 2; i++) {
		uint32_t entry = i == 0 ? h->entry : i == 1 ? dir->parent
				 : dir->first_child + (uint32_t)(i - 2);
		const char *name = i == 0 ? "." : i == 1 ? ".." : zipview_entry(h->index, entry)->name;
		size_t len;
		if (plus) {
			struct fuse_entry_param e;
			view_entry_param(view, h->index, h->version, entry, &e);
			if (i == 1 && h->entry == 0)
				node_attr(node_at(view->parent), &e.attr);
			if (i < 2)
				e.ino = 0; /* no lookup count is taken for . and .. */
			len = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
		} else {
			struct stat st = {
				.st_ino = i == 1 && h->entry == 0 ? view->parent + 1
								  : view_ino(view, h->version, entry),
				.st_mode = zipview_entry(h->index, entry)->mode & S_IFMT,
			};
			len = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		}
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void view_read(fuse_req_t req, struct view_handle *h, size_t size, off_t off)
{
	char *buf = malloc(size ? size : 1);
	char *err = NULL;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&h->lock);
	ssize_t n = zipview_read(h->reader, buf, size, (uint64_t)off, &err);
	if (n < 0 && !h->logged) {
		const struct node *view = node_of(h->view_ino);
		log_err("%s/%s: reading %s: %s", node_at(view->parent)->name, view->name,
			zipview_entry(h->index, h->entry)->name, err ? err : strerror((int)-n));
		h->logged = true;
	}
	pthread_mutex_unlock(&h->lock);
	free(err);
	if (n < 0)
		fuse_reply_err(req, n == -ENOMEM ? ENOMEM : EIO);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
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
	if (in_view(parent)) {
		view_request(req, REPLY_VIEW_LOOKUP, parent, name, NULL);
		return;
	}
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
	if (is_view_ino(ino)) {
		view_getattr(req, ino);
		return;
	}
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

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus,
		       const struct fuse_file_info *fi)
{
	if (fi->fh) {
		view_readdir(req, (const struct view_handle *)(uintptr_t)fi->fh, size, off, plus);
		return;
	}
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
	/* offsets: 0 ".", 1 "..", 2+i child i of every child ever added (so
	 * they stay valid while the tree changes); gone children are skipped.
	 * The list is copied: filling entries asks the builder, never under
	 * tree_lock. */
	pthread_rwlock_rdlock(&fs.tree_lock);
	size_t n_children = dir->n_children;
	size_t *children = malloc((n_children ? n_children : 1) * sizeof(*children));
	if (children)
		memcpy(children, dir->children, n_children * sizeof(*children));
	pthread_rwlock_unlock(&fs.tree_lock);
	if (!children) {
		free(buf);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	for (off_t i = off; i < (off_t)n_children + 2; i++) {
		const struct node *n = i == 0 ? dir : i == 1 ? node_at(dir->parent)
					     : node_at(children[i - 2]);
		const char *name = i == 0 ? "." : i == 1 ? ".." : n->name;
		size_t len;
		if (i >= 2 && atomic_load(&n->gone))
			continue;
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
	free(children);
	free(buf);
}

static void sfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, false, fi);
}

static void sfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, true, fi);
}

/* Folders of the tree need no handle (fh 0); a view's folders are listed
 * from the content they are opened with. */
static void sfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (in_view(ino)) {
		view_request(req, REPLY_VIEW_OPENDIR, ino, NULL, fi);
		return;
	}
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

static void sfs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	view_handle_free((struct view_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void sfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	if (!is_view_ino(ino)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	view_request(req, REPLY_VIEW_READLINK, ino, NULL, NULL);
}

static void sfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (is_view_ino(ino)) {
		if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
			fuse_reply_err(req, EROFS);
		else
			view_request(req, REPLY_VIEW_OPEN, ino, NULL, fi);
		return;
	}
	const struct node *n = node_of(ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (is_dir(n)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (atomic_load(&n->gone)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (is_config_error(n)) {
		pthread_rwlock_rdlock(&fs.tree_lock);
		char *text = n->text ? strdup(n->text) : NULL;
		pthread_rwlock_unlock(&fs.tree_lock);
		int fd = text ? document_fd(text, strlen(text)) : -1;
		free(text);
		if (fd < 0) {
			fuse_reply_err(req, EIO);
			return;
		}
		fi->fh = (uint64_t)fd;
		fi->direct_io = 1; /* its text changes with the config.json */
		if (fuse_reply_open(req, fi) != 0)
			close(fd);
		return;
	}
	if (is_package(n) && is_superseded(n)) {
		/* the kernel retries with a fresh lookup: the name's new node */
		fuse_reply_err(req, ESTALE);
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
	if (is_view_ino(ino)) {
		view_read(req, (struct view_handle *)(uintptr_t)fi->fh, size, off);
		return;
	}
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
	if (is_view_ino(ino)) {
		view_handle_free((struct view_handle *)(uintptr_t)fi->fh);
		fuse_reply_err(req, 0);
		return;
	}
	int fd = (int)(int64_t)fi->fh;
	struct node *n = node_of(ino);
	if (fd >= 0)
		close(fd);
	if (n && is_package(n))
		release_handle(n); /* only a counted open is ever released */
	fuse_reply_err(req, 0);
}

/* Zip node n is evicted: its view's indexes need not stay in memory. */
static void forget_view_of(const struct node *n)
{
	pthread_rwlock_rdlock(&fs.tree_lock);
	const struct node *dir = node_at(n->parent);
	size_t view = SIZE_MAX;
	for (size_t i = 0; i < dir->n_children && view == SIZE_MAX; i++) {
		const struct node *c = node_at(dir->children[i]);
		if (c->kind == NODE_VIEW && c->pkg == n->pkg)
			view = c->index;
	}
	pthread_rwlock_unlock(&fs.tree_lock);
	if (view != SIZE_MAX)
		zipview_forget(fs.views, view);
}

static void unlink_done(void *ctx, int status)
{
	fuse_reply_err(ctx, status < 0 ? -status : 0);
}

static void sfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (in_view(parent)) {
		fuse_reply_err(req, EROFS);
		return;
	}
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
	if (n->kind == NODE_ZIP)
		forget_view_of(n);
	builder_evict(fs.builder, n->pkg, kind_of(n), unlink_done, req);
}

/* ---- extended attributes ------------------------------------------------- */

/* Room for the longest value: an image name (registry, repository, tag). */
#define XATTR_VALUE_MAX 1024

static const char *const xattr_names[] = {
	"user.sebs.state", "user.sebs.sha256", "user.sebs.input_hash",
	"user.sebs.built_at", "user.sebs.build_seconds", "user.sebs.builds",
	"user.sebs.deps_hash", "user.sebs.deps_reused", "user.sebs.image_tag",
	"user.sebs.sebs_hash", "user.sebs.unzipped_size", "user.sebs.size_warning",
	"user.sebs.origin",
};

/* SeBS's own hash of the package's sources, from the tree as it is now
 * (whatever content the node's handles hold): what SeBS's deployer would
 * compare with its cache.  Sources SeBS could not hash give EIO and a log
 * line naming the file; a package that left the tree has none. */
static int sebs_hash_value(const struct node *n, char *buf, size_t size)
{
	char hex[SEBS_HASH_HEX_LEN + 1];
	char *errmsg = NULL;
	int rc = builder_sebs_hash(fs.builder, n->pkg, hex, &errmsg);
	if (rc == -ENODATA)
		return rc;
	if (rc < 0) {
		log_warn("%s: user.sebs.sebs_hash: %s", n->name, errmsg ? errmsg : strerror(-rc));
		free(errmsg);
		return rc == -ENOMEM ? rc : -EIO;
	}
	return snprintf(buf, size, "%s", hex);
}

/* user.sebs.unzipped_size and user.sebs.size_warning of a zip: from the
 * builder, but only while its package is the content bs describes (a node
 * whose handles hold older content has none). */
static int size_xattr(const struct node *n, const struct builder_status *bs, const char *name,
		      char *buf, size_t size)
{
	struct builder_status now;
	builder_status(fs.builder, n->pkg, kind_of(n), false, &now);
	if (!now.has_package || now.unzipped_size < 0 || strcmp(now.sha256, bs->sha256) != 0)
		return -ENODATA;
	if (strcmp(name, "user.sebs.unzipped_size") == 0)
		return snprintf(buf, size, "%lld", (long long)now.unzipped_size);
	return now.size_warning[0] ? snprintf(buf, size, "%s", now.size_warning) : -ENODATA;
}

/* user.sebs.origin of a zip: "remote" when its package was fetched from
 * the remote cache, "local" when built here; like size_xattr, only while
 * the builder's package is the content bs describes. */
static int origin_xattr(const struct node *n, const struct builder_status *bs, char *buf,
			size_t size)
{
	struct builder_status now;
	builder_status(fs.builder, n->pkg, kind_of(n), false, &now);
	if (!now.has_package || strcmp(now.sha256, bs->sha256) != 0)
		return -ENODATA;
	return snprintf(buf, size, "%s", now.remote ? "remote" : "local");
}

/* A function image's full name as tagged and pushed, from the tree as it is
 * now (nothing is built): -ENODATA for a zip, or when no valid name can be
 * made (no repository, a tag Docker refuses: the build log says why). */
static int image_tag_value(const struct node *n, char *buf, size_t size)
{
	char *name = NULL, *msg = NULL;
	int rc = n->kind == NODE_IMAGE ? builder_image_name(fs.builder, n->pkg, &name, &msg)
				       : -ENODATA;
	if (rc == 0)
		rc = strlen(name) < size ? snprintf(buf, size, "%s", name) : -E2BIG;
	free(name);
	free(msg);
	return rc == -ENOMEM || rc == -E2BIG ? rc : rc < 0 ? -ENODATA : rc;
}

/* Formats xattr name of package node n into buf; -ENODATA when it has no
 * value.  A node with open handles describes its handles' content; a
 * superseded one is "stale" (see held_status). */
static int xattr_value(const struct node *n, const char *name, char *buf, size_t size)
{
	if (strcmp(name, "user.sebs.sebs_hash") == 0)
		return sebs_hash_value(n, buf, size);
	if (strcmp(name, "user.sebs.image_tag") == 0)
		return image_tag_value(n, buf, size);
	struct builder_status bs, now;
	bool held = held_status(n, &bs);
	bool state = strcmp(name, "user.sebs.state") == 0;
	if (!held || state || strcmp(name, "user.sebs.builds") == 0 ||
	    strcmp(name, "user.sebs.build_seconds") == 0) {
		builder_status(fs.builder, n->pkg, kind_of(n), state, &now);
		if (!held)
			bs = now;
		else if (bs.state != PKG_STALE)
			bs.state = now.state;
		bs.builds = now.builds;
		bs.build_seconds = now.build_seconds;
	}
	if (held && !bs.input_hash[0] && strcmp(name, "user.sebs.input_hash") == 0)
		return -ENODATA;
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
	if (strcmp(name, "user.sebs.deps_hash") == 0)
		return bs.deps_hash[0] ? snprintf(buf, size, "%s", bs.deps_hash) : -ENODATA;
	if (strcmp(name, "user.sebs.deps_reused") == 0)
		return bs.deps_hash[0] ? snprintf(buf, size, "%s", bs.deps_reused ? "yes" : "no")
				       : -ENODATA;
	if (strcmp(name, "user.sebs.unzipped_size") == 0 ||
	    strcmp(name, "user.sebs.size_warning") == 0)
		return bs.sha256[0] ? size_xattr(n, &bs, name, buf, size) : -ENODATA;
	if (strcmp(name, "user.sebs.origin") == 0)
		return bs.sha256[0] ? origin_xattr(n, &bs, buf, size) : -ENODATA;
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
	char value[XATTR_VALUE_MAX];
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
		char value[XATTR_VALUE_MAX];
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
	.opendir = sfs_opendir,
	.releasedir = sfs_releasedir,
	.readlink = sfs_readlink,
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

/* ---- the tree watcher -----------------------------------------------------
 * Polls the SeBS tree every TREE_POLL_MS: a fingerprint of what the catalog
 * reads (catalog_stamp: a few dozen stats) and, when it changed, a new
 * catalog, ids from the builder, and a sync of the node table.  Polling, not
 * inotify: one watch per folder would have to follow renames and overflows,
 * and the stat pass costs microseconds per benchmark. */

static void reload_tree(void)
{
	static char last_error[1024];
	char err[1024];
	struct catalog *cat = catalog_load(fs.root, fs.arch, err, sizeof(err));
	if (!cat) {
		if (strcmp(err, last_error) != 0)
			log_warn("%s; still serving the tree as it was", err);
		snprintf(last_error, sizeof(last_error), "%s", err);
		return;
	}
	last_error[0] = '\0';
	if (builder_update_catalog(fs.builder, cat) < 0) {
		catalog_free(cat);
		return;
	}
	struct notes nt = { 0 };
	pthread_rwlock_wrlock(&fs.tree_lock);
	sync_tree(cat, &nt);
	pthread_rwlock_unlock(&fs.tree_lock);
	send_notes(&nt);
}

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *watch_tree(void *arg)
{
	struct catalog_stamp last = { 0 };
	/* the mount-time catalog was read before any stamp: check once */
	bool unsure = true;
	pthread_mutex_lock(&fs.watch_lock);
	while (!fs.watch_stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)TREE_POLL_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&fs.watch_wake, &fs.watch_lock, &until);
		if (fs.watch_stop)
			break;
		pthread_mutex_unlock(&fs.watch_lock);
		struct catalog_stamp now;
		int64_t taken = realtime_ns();
		catalog_stamp(fs.root, &now);
		bool changed = unsure || now.hash != last.hash;
		/* a change in the same clock tick as this stamp would not show */
		unsure = now.newest_ns >= taken - TREE_RACY_NS;
		last = now;
		if (changed)
			reload_tree();
		pthread_mutex_lock(&fs.watch_lock);
	}
	pthread_mutex_unlock(&fs.watch_lock);
	return NULL;
}

struct fuse_session *fs_session_new(struct fuse_args *args, const struct catalog *cat,
				    const struct fs_config *cfg)
{
	fs.stat_builds = cfg->stat_builds;
	fs.no_views = cfg->no_views;
	fs.uid = getuid();
	fs.gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs.mount_time);
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	/* the watcher must get its turn under a steady stream of lookups */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs.tree_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&fs.watch_lock, NULL);
	pthread_mutex_init(&fs.open_lock, NULL);
	pthread_cond_init(&fs.watch_wake, NULL);
	fs.root = strdup(cat->root);
	fs.arch = strdup(cat->default_arch);
	fs.views = zipview_versions_new();
	/* the mount-time tree: its package ids are its indices, as the builder
	 * numbers them */
	struct notes nt = { 0 };
	if (!fs.root || !fs.arch || !fs.views || add_node(NODE_ROOT, strdup(""), 0, 0, NULL) != 0) {
		log_err("out of memory building the tree");
		return NULL;
	}
	sync_tree(cat, &nt);
	for (size_t i = 0; i < nt.n; i++)
		free(nt.items[i].name);
	free(nt.items);
	fs.se = fuse_session_new(args, &sfs_ops, sizeof(sfs_ops), NULL);
	return fs.se;
}

void fs_attach_builder(struct builder *b)
{
	fs.builder = b;
	int rc = -pthread_create(&fs.watcher, NULL, watch_tree, NULL);
	fs.watcher_started = rc == 0;
	if (rc < 0)
		log_warn("cannot watch %s: %s; the tree stays as it was at mount time", fs.root,
			 strerror(-rc));
}

void fs_detach_builder(void)
{
	if (fs.watcher_started) {
		pthread_mutex_lock(&fs.watch_lock);
		fs.watch_stop = true;
		pthread_cond_signal(&fs.watch_wake);
		pthread_mutex_unlock(&fs.watch_lock);
		pthread_join(fs.watcher, NULL);
		fs.watcher_started = false;
	}
	fs.builder = NULL;
}

void fs_cleanup(void)
{
	size_t n_nodes = atomic_load(&fs.n_nodes);
	for (size_t i = 0; i < n_nodes; i++) {
		free(node_at(i)->name);
		free(node_at(i)->children);
		free(node_at(i)->text);
	}
	for (size_t c = 0; c < MAX_NODE_CHUNKS && fs.chunks[c]; c++)
		free(fs.chunks[c]);
	free(fs.root);
	free(fs.arch);
	zipview_versions_free(fs.views);
	pthread_rwlock_destroy(&fs.tree_lock);
	pthread_mutex_destroy(&fs.watch_lock);
	pthread_mutex_destroy(&fs.open_lock);
	pthread_cond_destroy(&fs.watch_wake);
	memset(&fs, 0, sizeof(fs));
}
