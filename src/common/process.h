/*
 * process.h - run a program from an argv array (never through a shell).
 *
 * The child gets: working directory cwd (NULL = inherit), the parent's
 * environment plus the "NAME=value" strings in env_add (NULL-terminated, may be
 * NULL), stdin from /dev/null, and stdout+stderr both appended to out_fd
 * (or /dev/null when out_fd < 0).  argv[0] is looked up in PATH.
 */
#ifndef SEBSFS_PROCESS_H
#define SEBSFS_PROCESS_H

struct spawn_opts {
	const char *cwd;
	const char *const *env_add;
	int out_fd;
};

/* Runs argv to completion.  Returns 0 when the program ran; *exit_status gets
 * the exit code (or 128+signal when killed by a signal).  Returns -errno when
 * the program could not be started at all (e.g. -ENOENT for a missing binary). */
int spawn_wait(const char *const argv[], const struct spawn_opts *opts, int *exit_status);

#endif
