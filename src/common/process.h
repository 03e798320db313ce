/*
 * process.h - run a program from an argv array (never through a shell).
 *
 * The child gets: working directory cwd (NULL = inherit), the parent's
 * environment plus the "NAME=value" strings in env_add (NULL-terminated, may be
 * NULL), stdin from /dev/null, and stdout+stderr both appended to out_fd
 * (or /dev/null when out_fd < 0); stdin and stderr can be given their own
 * descriptors (has_in_fd, has_err_fd).  argv[0] is looked up in PATH.
 *
 * Programs die with their run.  The program runs in a new process group of
 * its own, and everything it starts stays in that group, unless a descendant
 * deliberately leaves it (setsid, setpgid, `set -m` job control in a script):
 * such a process is outside every guarantee below.  The group is killed
 *  - when the program ends: whatever it left running in the background is
 *    SIGKILLed before spawn_wait returns (a step ends with its program);
 *  - when the run is cancelled or its deadline passes: SIGTERM, then SIGKILL
 *    SPAWN_STOP_GRACE_MS later to anything still alive;
 *  - when this process dies in any way, SIGKILL included: at once, SIGKILL.
 * When spawn_wait returns, no process of the group is left: all are reaped
 * (one stuck in an uninterruptible sleep delays the return until it dies).
 * The group id is the program's pid.  Each run costs one extra small process,
 * the guard (see process.c), which leads a process group of its own.
 */
#ifndef SEBSFS_PROCESS_H
#define SEBSFS_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* Between the SIGTERM and the SIGKILL of a stopped run. */
#define SPAWN_STOP_GRACE_MS 2000

struct spawn_opts {
	const char *cwd;
	const char *const *env_add;
	int out_fd;
	/* Cancels the run once it is readable (or at EOF / hang-up): e.g. an
	 * eventfd or the read end of a pipe shared by every program of one
	 * build.  Never read by spawn_wait; the caller owns it.  -1 = none.
	 * A zero-initialised struct means fd 0, so always set this field. */
	int cancel_fd;
	/* Absolute time on CLOCK_MONOTONIC; NULL = none.  Borrowed. */
	const struct timespec *deadline;
	/* With has_in_fd, the program reads stdin from in_fd (from its current
	 * offset, which it shares); else from /dev/null. */
	bool has_in_fd;
	int in_fd;
	/* With has_err_fd, stderr goes to err_fd (-1: /dev/null) instead of
	 * out_fd: e.g. to keep a program's messages out of its output. */
	bool has_err_fd;
	int err_fd;
};

/* Runs argv to completion.  Returns 0 when the program ran and ended by
 * itself; *exit_status gets the exit code (or 128+signal when killed by a
 * signal).  Otherwise *exit_status is -1 and the result is
 *   -ECANCELED  cancel_fd became readable (the program, if started, is gone);
 *   -ETIMEDOUT  the deadline passed (likewise);
 *   -EBADF      cancel_fd is not an open descriptor;
 *   -errno      the program could not be started at all (e.g. -ENOENT for a
 *               missing binary or cwd).
 * A run already cancelled or past its deadline starts nothing.  When the
 * program ends at the moment of the stop, the program's own end wins.
 * opts may be NULL: no cwd, no env_add, output discarded, no cancel_fd, no
 * deadline.  Thread-safe; needs Linux >= 5.9 (pidfd_open, close_range). */
int spawn_wait(const char *const argv[], const struct spawn_opts *opts, int *exit_status);

/* An identity of a process that a reused pid cannot take over:
 * "<boot id>/<pid>/<start time>" (the kernel's boot_id and the start time in
 * clock ticks since boot, field 22 of /proc/<pid>/stat).  For marking what a
 * process owns outside itself (labels of Docker containers), so that a later
 * process can tell whether the owner still runs.  0, or -errno when /proc
 * cannot say (-ENOSPC: buf too small; -ESRCH: pid is a zombie, i.e. gone). */
int process_instance_id(pid_t pid, char *buf, size_t len);
/* Whether the process named by id (from process_instance_id) still runs on
 * this machine: the same boot, and its pid started at the same time and is
 * no zombie (dead, not yet reaped by its parent).  An id
 * of another boot, or one that does not parse, names a process that is gone. */
bool process_instance_alive(const char *id);

#endif
