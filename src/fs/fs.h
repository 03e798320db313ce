/*
 * fs.h - the FUSE low-level filesystem: the only user of fuse_lowlevel.h
 * besides main.c and options.c.
 *
 * The tree is fixed at mount time from the catalog:
 *   /                                   inode 1
 *   /<platform>/                        one per catalog platform
 *   /<platform>/<runtime>/              one per runtime folder
 *   /<platform>/<runtime>/<b>.zip       the package (builds on open)
 *   /<platform>/<runtime>/<b>.zip.log   its build log (direct_io, grows while building)
 * Inode numbers are node indices + 1 and never change during a mount, so
 * forget is a no-op: nodes live as long as the session.
 */
#ifndef SEBSFS_FS_H
#define SEBSFS_FS_H

#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "builder.h"
#include "catalog.h"

struct fs_config {
	bool stat_builds;
};

/* Creates the session (node table from cat; cat is borrowed).  NULL on error
 * (reason already printed by libfuse or logged). */
struct fuse_session *fs_session_new(struct fuse_args *args, const struct catalog *cat,
				    const struct fs_config *cfg);
/* The builder must be attached before the session loop starts. */
void fs_attach_builder(struct builder *b);
/* Frees the node table (after fuse_session_destroy). */
void fs_cleanup(void);

#endif
