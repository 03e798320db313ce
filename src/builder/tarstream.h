/*
 * tarstream.h - a folder as a pax tar stream, written by a producer thread
 * into a pipe: the one way sebsfs hands a tree to the Docker daemon (an image
 * build's context, the work folder copied into a build container through the
 * archive API).  No copy of the tree is held in memory or on disk.
 *
 * The folder is walked under WALK_KEEP (walk.h): entries sorted by name,
 * depth first; folders, regular files and symlinks that stay inside it; a
 * symlink that is absolute or leads out, a loop, a FIFO, socket or device
 * fails the stream.  Metadata is either normalized (uid/gid 0, no user or
 * group names, mtime 1980-01-01, mode 0755 for folders and executables, 0644
 * for other files, 0777 for symlinks: the same folder always gives the same
 * bytes) or the files' own (permission bits & 0777, mtime) with one given
 * owner for every entry.
 *
 * Failure handling between the two threads:
 *  - the reader stops early (daemon error, connection lost): the consumer
 *    closes the read end, so the producer's next write fails with EPIPE
 *    instead of blocking; the producer blocks SIGPIPE in its own thread, so
 *    the signal (thread-directed, discarded when the thread exits) never
 *    kills the process;
 *  - the producer fails half-way (a file vanished or changed size): a stream
 *    cut at an entry boundary would be a valid, incomplete tar that the
 *    daemon could happily use, so the producer abandons the archive without
 *    its end marker and writes 2048 bytes of 0xff instead: whatever the cut,
 *    the daemon then reads either a short entry or a header with a bad
 *    checksum, and fails.  tarstream_finish reports the producer's message.
 */
#ifndef SEBSFS_TARSTREAM_H
#define SEBSFS_TARSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tarstream;

struct tarstream_options {
	const char *dir;              /* the folder written */
	const char *label;            /* names the stream in messages ("build context") */
	const char *root;             /* NULL: the folder's entries at the top; else
				       * an entry of this name for the folder itself
				       * first, and every other entry below it */
	const char *const *skip_top;  /* the folder's own entries left out, NULL-terminated */
	bool own_metadata;            /* false: normalized metadata; true: the
				       * files' permission bits and mtime, owned by
				       * uid/gid */
	uid_t uid;
	gid_t gid;
	/* Entries written before the folder's own (after the root entry): calls
	 * tarstream_add_file / tarstream_add_data; 0 or the -errno of a
	 * tarstream_fail.  dirfd is the folder, open.  May be NULL. */
	int (*head)(struct tarstream *ts, int dirfd, void *ctx);
	void *head_ctx;
};

struct tarstream_stats {
	unsigned long long entries, bytes;  /* entries written, bytes of file data */
};

/* Starts the producer thread on opts (which, and the strings it points to,
 * must live until tarstream_finish); *read_fd gets the read end of the pipe,
 * the caller's to read and then close.  0 or -errno with *errmsg. */
int tarstream_start(const struct tarstream_options *opts, struct tarstream **ts, int *read_fd,
		    char **errmsg);

/* Waits for the producer (close read_fd first: a producer still writing then
 * stops with EPIPE) and frees ts.  Returns its result: 0, -EPIPE when the
 * reader stopped early (the reader's own error is then the one to report),
 * or another -errno with *errmsg (may be NULL) saying why.  stats may be NULL. */
int tarstream_finish(struct tarstream *ts, struct tarstream_stats *stats, char **errmsg);

/* For opts->head: the regular file dfd/name (AT_FDCWD: name as a path) as
 * entry entry_path; it must not change size while read. */
int tarstream_add_file(struct tarstream *ts, int dfd, const char *name, const char *entry_path);
/* For opts->head: len bytes of data as the regular file entry_path (mode 0644). */
int tarstream_add_data(struct tarstream *ts, const char *entry_path, const void *data, size_t len);
/* Records the stream's failure (the first one wins) and returns its -errno. */
int tarstream_fail(struct tarstream *ts, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
