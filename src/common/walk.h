/*
 * walk.h - the one tree walker of sebsfs, and its symlink policy.
 *
 * Every walk over a directory tree goes through walk_tree(): the input hash
 * (inputs.c), copies into the work folder (copy_tree, pipeline steps 2 and 4),
 * the zip (ziptree.c), the image build context (imagebuild.c) and the
 * ownership check after the build container (pipeline.c).  Only rm_rf keeps
 * its own descriptor-relative loop: it must delete whatever it finds,
 * including what this policy refuses.
 *
 * The policy, in both modes:
 *  - order: the entries of a directory are visited sorted bytewise by name
 *    (strcmp), depth first; a directory is visited before its contents, and
 *    the visitor skips those contents by returning WALK_PRUNE.  The root
 *    itself is not visited.
 *  - types: regular files, directories and symlinks only.  A FIFO, socket or
 *    device is an error naming it: none belongs in an input or a package, and
 *    opening a FIFO would block the build.
 *  - loops: the (device, inode) of every directory on the current path is
 *    kept; entering one of them again is an error (a symlink to an ancestor,
 *    or a bind mount).  Depth is limited to WALK_MAX_DEPTH levels.
 *  - an entry that vanishes between readdir and its stat is skipped: the tree
 *    changed during the walk, and the next walk sees it as it is then.
 *
 * Symlinks, WALK_FOLLOW (trees read as inputs or copied from the SeBS tree):
 * a link is resolved (all of it, as realpath does) and its target must lie
 * inside the containment folder, opts->within (default: the root).  The entry
 * is then visited under the link's own path with the target's stat, and a
 * directory target is walked.  Errors: a target outside ("symlink P -> T
 * points outside W"), a dangling link, a cycle of links (ELOOP).  So content
 * from outside the benchmark (or wrapper) folder never becomes an input or
 * part of a package, and the input hash covers exactly what is copied.
 *
 * Symlinks, WALK_KEEP (output trees: the work folder that is zipped or sent
 * as a build context): a link is visited as a link (lstat, with its target
 * text) and never followed.  Its target must stay inside the root: an
 * absolute target, a relative one that climbs above the root (computed
 * lexically from the link's folder) or one that resolves on disk outside the
 * root (through other links) is an error, as is a cycle of links.  A relative
 * dangling link that stays inside is kept: it points into the package.
 *
 * Errors are -errno (-EPERM outside the containment folder, -ENOENT dangling,
 * -ELOOP loops and depth, -EINVAL other file types, -ENOTDIR a root that is
 * not a folder) with one line in *errmsg (malloc'd; only set when *errmsg is
 * still NULL, so a visitor may set its own first) naming the entry as
 * "<label>/<path>" and, for a link, its target.
 */
#ifndef SEBSFS_WALK_H
#define SEBSFS_WALK_H

#include <stdbool.h>
#include <sys/stat.h>

#define WALK_MAX_DEPTH 64

/* Visitor results besides 0 (continue) and -errno (stop, fail the walk). */
#define WALK_PRUNE 1  /* on a directory: do not walk its contents */
#define WALK_STOP  2  /* end the walk now, successfully */

enum walk_links {
	WALK_FOLLOW, /* resolve links; targets must lie inside opts->within */
	WALK_KEEP,   /* report links as links; targets must stay inside the root */
};

struct walk_entry {
	const char *path;  /* relative to the root: "a/b.py" */
	const char *name;  /* the last component of path */
	int dirfd;         /* the entry's folder: openat(dirfd, name, ...) opens it
			    * (WALK_KEEP: pass O_NOFOLLOW) */
	int depth;         /* 0 for the root's own entries */
	struct stat st;    /* WALK_FOLLOW: of the target; WALK_KEEP: lstat */
	const char *link;  /* a symlink's target text, else NULL */
};

/* Returns 0, WALK_PRUNE, WALK_STOP or -errno. */
typedef int (*walk_visit_fn)(const struct walk_entry *e, void *ctx);

struct walk_options {
	enum walk_links links;
	const char *within;      /* WALK_FOLLOW: the containment folder; NULL: the root */
	const char *label;       /* how messages name the root; NULL: root as given */
	const char *const *skip_top; /* NULL-terminated names of the root's entries
				  * to leave out entirely (not even checked); may be NULL */
	bool missing_ok;         /* a missing root is an empty tree, not -ENOENT */
};

/* Walks the tree at root (which must be a folder; with WALK_FOLLOW it may be
 * a link to one inside opts->within) and calls visit for every entry.
 * Returns 0 or -errno, see above. */
int walk_tree(const char *root, const struct walk_options *opts, walk_visit_fn visit,
	      void *ctx, char **errmsg);

/* The WALK_FOLLOW check of one path on its own: it must exist, resolve
 * inside `within` and be a regular file or a folder; *st (may be NULL) gets
 * the target's stat.  Messages name the path as given. */
int walk_resolve(const char *path, const char *within, struct stat *st, char **errmsg);

/* The symlink rule of WALK_KEEP, for anyone who must apply it to a tree
 * not on disk yet (an archive being extracted): true when target is
 * relative and, read lexically from a folder depth levels below the root,
 * never climbs above the root. */
bool walk_link_stays_inside(int depth, const char *target);

#endif
