/*
 * buildlog.h - the writer of build logs (DIR/logs/.../<benchmark>.<kind>.log).
 *
 * A build log is the one file a user reads to learn what a build did: every
 * step of sebsfs writes a "[sebsfs] " line to it, and the programs a build
 * runs (init.sh, pip, npm, the build container, docker build) write their
 * own output to the same descriptor.  The descriptor is opened O_APPEND by
 * the cache (cache_log_open), so that a line written here in one write(2)
 * is never cut by a program's output.
 */
#ifndef SEBSFS_BUILDLOG_H
#define SEBSFS_BUILDLOG_H

/* Writes "[sebsfs] <message>\n" to fd in one write (thread-safe,
 * unbuffered); a message longer than 4 KiB is cut.  fd < 0: nothing. */
void build_log(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
