/*
 * containerfs.h - a work folder into and out of a build container through
 * Docker's archive API, for a daemon that cannot see this machine's files
 * (tcp://, docker_is_local false), where bind mounts would name folders that
 * do not exist there.
 *
 * The promise: the container sees at /mnt/function what a bind mount of the
 * folder would show it (the same files, the caller's uid/gid on every entry,
 * the files' own permission bits, package.sh of the language folder in place
 * of the folder's own when given), and afterwards the folder holds what the
 * container left there, with the same refusal as the bind path when the
 * container left a file that is not the caller's.  Neither direction holds
 * the tree in memory or in a temporary archive: both are tar streams between
 * a thread and the HTTP transfer (tarstream.h up, tar_extract of zipnorm.h
 * down).  Both are streaming Docker calls: docker_cancel and the build
 * deadline stop them.
 */
#ifndef SEBSFS_CONTAINERFS_H
#define SEBSFS_CONTAINERFS_H

#include <stdbool.h>
#include <sys/types.h>

struct docker;
struct tarstream_stats;

/* Where the folder appears in the container, and the parent it is uploaded to. */
#define CONTAINERFS_PATH   "/mnt/function"
#define CONTAINERFS_PARENT "/mnt"
#define CONTAINERFS_NAME   "function"

/* Uploads dir into the created (not yet started) container id as
 * /mnt/function, every entry owned by uid/gid; package_sh (a file on disk,
 * NULL for none) is sent as function/package.sh instead of dir's own.
 * stats (may be NULL) gets what was sent.  0 or -errno with *errmsg. */
int containerfs_put(struct docker *d, const char *id, const char *dir, const char *package_sh,
		    uid_t uid, gid_t gid, struct tarstream_stats *stats, char **errmsg);

/* Downloads /mnt/function of the stopped container id into a fresh sibling
 * folder of dir, then exchanges the two (renameat2 RENAME_EXCHANGE) and
 * removes the old tree: dir is either all old or all new.  Every entry must
 * be owned by uid; else -EPERM, *foreign (malloc'd) is "<path below dir>
 * (uid N)" and dir is left as it was.  skip_package_sh: the container's
 * package.sh (the one containerfs_put substituted) is not taken; dir's own,
 * if it had one, is kept.  0 or -errno with *errmsg. */
int containerfs_get(struct docker *d, const char *id, const char *dir, bool skip_package_sh,
		    uid_t uid, char **foreign, char **errmsg);

#endif
