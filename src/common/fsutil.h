/*
 * fsutil.h - small filesystem helpers shared by builder and cache.
 *
 * All functions return 0 or -errno and log nothing: the caller knows the
 * context and logs once.  Paths returned as char * are malloc'd and owned by
 * the caller.  File descriptors are opened O_CLOEXEC.
 */
#ifndef SEBSFS_FSUTIL_H
#define SEBSFS_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* malloc'd "a/b" (exactly one '/' between them).  NULL only on ENOMEM. */
char *path_join(const char *a, const char *b);
/* malloc'd printf result; NULL only on ENOMEM. */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

bool path_exists(const char *path);
bool path_is_dir(const char *path);
bool path_is_file(const char *path);

/* mkdir -p with the given mode for created components. */
int mkdir_p(const char *path, mode_t mode);
/* rm -rf; a missing path is success.  Never follows symlinks. */
int rm_rf(const char *path);

/* Copies a regular file (content and mode bits); dst is created or truncated.
 * A symlink at dst is replaced, never written through. */
int copy_file(const char *src, const char *dst);
/* Copies src, a folder (recursively) or a file, to dst under the WALK_FOLLOW
 * policy of walk.h: symlinks are followed, their targets' content is copied,
 * and every one must resolve inside `within` (NULL: src itself); FIFOs,
 * sockets and devices are refused.  Files keep their mode bits; folders are
 * created with the source's mode plus u+rwx, and an existing dst folder is
 * merged into.  On failure *errmsg (may be NULL; set only when still NULL)
 * gets a malloc'd one-line reason naming the entry. */
int copy_tree(const char *src, const char *dst, const char *within, char **errmsg);

/* Reads a whole file into a NUL-terminated malloc'd buffer; *len_out may be NULL. */
int read_file(const char *path, char **out, size_t *len_out);
/* Writes data to path atomically: a unique path.tmp.XXXXXX, fsync, rename,
 * fsync of the directory.  The file gets mode 0644. */
int write_file_atomic(const char *path, const void *data, size_t len);
/* Copies what is left of in (from its offset) to out (at its offset).  0 or -errno. */
int copy_fd(int in, int out);
/* Reads exactly len bytes at offset off (retrying short reads and EINTR).
 * 0, -errno, or -EBADMSG when the file ends first. */
int pread_exact(int fd, void *buf, size_t len, uint64_t off);
/* Writes all of buf to fd, riding out EINTR and short writes.  0 or -errno. */
int write_all(int fd, const void *buf, size_t len);

/* fsync a directory (after a rename into it). */
int fsync_dir(const char *dir);

/* A sorted list of the entry names in dir (no "." / "..").  *names is a
 * malloc'd array of malloc'd strings; free with str_list_free. */
int list_dir_sorted(const char *dir, char ***names, size_t *count);
/* The same for the directory open at dfd, which stays open and unchanged. */
int list_dirfd_sorted(int dfd, char ***names, size_t *count);
void str_list_free(char **list, size_t count);

/* Creates a fresh unique directory "<parent>/<prefix>XXXXXX"; *out malloc'd. */
int make_temp_dir(const char *parent, const char *prefix, char **out);

#endif
