/*
 * ziptree.h - write a directory tree as a reproducible zip (libarchive).
 *
 * Reproducible means: the same tree content gives byte-identical output,
 * whatever the files' timestamps, owners, inode order or umask.
 *  - every entry (directories too, as "dir/") is written, sorted bytewise by
 *    archive path; paths are relative to the tree root, no leading "./";
 *  - mtime is fixed: DOS time 1980-01-01 00:00:00 and no "UT" timestamp
 *    (a stored UTC mtime would make libarchive's DOS field depend on TZ);
 *    uid/gid 0, no user/group names;
 *  - modes: directories 0755, regular files 0755 when any execute bit is set
 *    on disk else 0644, symlinks 0777 (stored as links, target unchanged);
 *  - deflate at a fixed level; no ACLs or xattrs are read.
 * The tree is walked under the WALK_KEEP policy of walk.h: symlinks are
 * stored as links and never followed, and one whose target is absolute or
 * leads out of the tree fails with -EPERM (an absolute link would make the
 * package point into whatever host extracts it); a symlink loop fails with
 * -ELOOP, other file types (fifos, sockets, devices) with -EINVAL.  Names or
 * symlink targets that are not valid UTF-8 fail with -EILSEQ (the zip's
 * UTF-8 flag is always set for non-ASCII names, whatever the locale).
 *
 * JAR order (ziptree_options.jar_order): the JAR convention puts "META-INF/"
 * and "META-INF/MANIFEST.MF" first, in that order (java.util.jar's
 * JarInputStream only finds a manifest that is among the first two
 * entries); those two, where present (exact, case-sensitive names: the ones
 * the jar tool and Maven write), come first, and every other entry follows
 * in the bytewise order above.  Such a zip is not in strictly ascending
 * order, so zipsplice does not take it as a part.
 */
#ifndef SEBSFS_ZIPTREE_H
#define SEBSFS_ZIPTREE_H

#include <stdbool.h>

/* Writes the zip of tree dir to out_fd (from its current offset).
 * Returns 0 or -errno; *errmsg (may be NULL) gets a malloc'd one-line reason
 * on failure (e.g. the libarchive message and the entry's path). */
int ziptree_write(const char *dir, int out_fd, char **errmsg);

struct ziptree_options {
	bool jar_order;     /* META-INF/ and META-INF/MANIFEST.MF first */
	bool store;         /* entries stored, not deflated: for a tree whose
			     * files are compressed already (a dependency
			     * layer's deps.zip); still reproducible */
	const char *label;  /* how messages name the tree; NULL: dir as given */
};

/* ziptree_write with options; opts NULL (or all zero) gives exactly
 * ziptree_write's bytes. */
int ziptree_write_opts(const char *dir, int out_fd, const struct ziptree_options *opts,
		       char **errmsg);

#endif
