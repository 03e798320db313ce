/*
 * fs.h - the FUSE low-level filesystem: the only user of fuse_lowlevel.h
 * besides main.c and options.c.
 *
 * The tree follows the catalog:
 *   /                                   inode 1
 *   /<platform>/                        one per catalog platform
 *   /<platform>/<runtime>/              one per runtime folder
 *   /<platform>/<runtime>/<b>.zip       the package (builds on open)
 *   /<platform>/<runtime>/<b>.zip.log   its build log (direct_io, grows while building)
 *   /<platform>/<runtime>/<b>/          read-only view of the zip's tree: listing or a
 *                                       lookup inside builds it (see fs.c, zipview.h)
 *   /<platform>/<runtime>/<b>.image, <b>.image.log   (container platforms)
 *   /<platform>/<runtime>/<b>.log       a benchmark whose config.json cannot
 *                                       be used: why (in every runtime folder)
 * A watcher thread polls the SeBS tree once a second (TREE_POLL_MS) and, when
 * it changed, reloads the catalog: names that appear get new nodes, names
 * that leave become "gone" (not listed, lookup and open ENOENT, the kernel's
 * cached entry dropped; an open file keeps reading), names that come back get
 * their old node.  Inode numbers are node indices + 1 and never change or get
 * reused during a mount, so forget is a no-op: nodes live as long as the
 * session.
 */
#ifndef SEBSFS_FS_H
#define SEBSFS_FS_H

#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "builder.h"
#include "catalog.h"

struct fs_config {
	bool stat_builds;
	bool no_views;     /* -o views=off: no directory views of packages */
};

/* Creates the session (node table from cat, the mount-time catalog whose
 * package ids are its indices; cat is borrowed, only during the call).  NULL on error
 * (reason already printed by libfuse or logged). */
struct fuse_session *fs_session_new(struct fuse_args *args, const struct catalog *cat,
				    const struct fs_config *cfg);
/* The builder must be attached before the session loop starts; this also
 * starts the tree watcher, which hands new catalogs to the builder. */
void fs_attach_builder(struct builder *b);
/* Stops the tree watcher; call before builder_free. */
void fs_detach_builder(void);
/* Frees the node table (after fuse_session_destroy). */
void fs_cleanup(void);

#endif
