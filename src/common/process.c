/*
 * process.c - run a program from an argv array (never through a shell).
 *
 * DESIGN
 * Builds run in parallel worker threads, so nothing here changes this
 * process's cwd, environ or signal dispositions: children are set up between
 * fork() and execvpe().  That code runs in a copy of a multi-threaded
 * process, so it uses only async-signal-safe calls (open, dup2, chdir,
 * sigaction, sigprocmask, setpgid, close_range, prctl, _Fork, pidfd_open,
 * poll, read, kill, waitpid, clock_gettime, execvpe, write, _exit: plain
 * system calls or documented as safe) and no malloc; everything that
 * allocates (the envp array) is prepared before fork().  environ is only
 * read, so no thread may setenv() while builds run.
 *
 * fork+exec rather than posix_spawn(): the child must close every inherited
 * descriptor (close_range below), and the guard below is not a program.
 *
 * The guard.  A program must not outlive its build: not when it never ends,
 * not when the build is cancelled, not when sebsfs is killed, SIGKILL
 * included.  A process group holds the program and everything it starts, but
 * only a live process can kill a group, and PR_SET_PDEATHSIG reaches just the
 * direct child (and fires when the forking *thread* ends).  So the forked
 * child stays our own code, the guard:
 *
 *     sebsfs thread --fork--> guard --_Fork--> program (group leader) --> ...
 *          |  pidfd(guard)      |  pidfd(program)       \___ one process group
 *          +---- ctl socket ----+
 *
 * - The program leads a new group (it and the guard both call setpgid, so
 *   the group exists whichever runs first) and the guard leads another one:
 *   the guard can SIGKILL the program's whole group and still live to report
 *   the status, and a SIGKILL sent to sebsfs's own group (a shell's
 *   `kill -9 %1`, Check's timeout) ends sebsfs but not the guard, which then
 *   cleans up as for any death of sebsfs.
 * - It learns that sebsfs died from its end of a socketpair: when the last
 *   copy of sebsfs's end closes (sebsfs dies, however), the guard reads EOF.
 *   Unlike PR_SET_PDEATHSIG this is per process rather than per thread, has
 *   no race with a parent that died before the guard ran (the EOF is already
 *   there), and needs no signal handler.  A guard forked concurrently by
 *   another thread inherits a copy of our end for the few instructions until
 *   its close_range, which can delay that EOF by as much and no more.
 * - A stop request is one byte on the same socket (send with MSG_NOSIGNAL:
 *   the guard may have just exited).  Stop = SIGTERM to the group, then
 *   SIGKILL SPAWN_STOP_GRACE_MS later; EOF = SIGKILL at once (nobody is left
 *   to wait for a clean end).
 * - When the program ends, the rest of the group is SIGKILLed before the
 *   program is reaped: until then its pid, which is the group id, cannot be
 *   reused, so the kill cannot reach a stranger.  The guard is a child
 *   subreaper (PR_SET_CHILD_SUBREAPER), so group members orphaned by the
 *   program's death become its children, and it reaps them (waitpid on the
 *   group) before it exits: when spawn_wait returns, kill(-pgid, 0) fails
 *   with ESRCH, not even zombies are left.
 * - The guard exits with the program's exit code, or 128+signal when the
 *   program was killed by a signal: the value spawn_wait reports anyway.
 * - The guard keeps every signal blocked (the mask spawn_wait sets around
 *   fork), so a stray SIGTERM/SIGINT/SIGHUP cannot end it and orphan the
 *   program; the program gets an empty mask.  It forks the program with
 *   _Fork(), the async-signal-safe fork (no atfork handlers, no locks).
 * Processes that leave the group on purpose (setsid, setpgid) escape all of
 * this; so does the group if the guard alone is SIGKILLed by someone else.
 *
 * Waiting.  The spawning thread polls a pidfd of the guard, the caller's
 * cancel_fd and the time left to the deadline (ppoll on CLOCK_MONOTONIC).
 * Cancel or deadline: one stop request, then wait for the guard, which ends
 * within the grace period plus the time the SIGKILLed group takes to die;
 * the result is -ECANCELED or -ETIMEDOUT whatever the program's status.  If
 * the guard ends in the same poll as the stop, its end wins.  cancel_fd is
 * never read (it may be shared by many runs); once it fired it is dropped
 * from the poll set.  Timing lives in the waiting thread, the escalation in
 * the guard: sebsfs dying mid-grace still gets the group killed.
 *
 * Exec failures are reported through a close-on-exec pipe: the program (or
 * the guard, for its own setup) writes errno and exits; a successful exec
 * closes the program's copy and the guard closes its own after the fork.
 * The read end is non-blocking and read after the guard is reaped, so a
 * missing binary becomes -ENOENT instead of exit status 127.
 *
 * The program gets default signal dispositions and an empty mask (the FUSE
 * daemon ignores SIGPIPE and workers may block signals; pip must not inherit
 * either), and descriptors >= 3 are closed (a library fd opened without
 * O_CLOEXEC, such as /dev/fuse, must never be held by a lingering child).
 * The guard closes them too: it must not hold sebsfs's end of the socket.
 */
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static size_t env_name_len(const char *entry)
{
	const char *eq = strchr(entry, '=');
	return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* A malloc'd envp: environ with env_add applied.  The strings are borrowed
 * from environ and env_add; only the array is owned. */
static char **build_env(const char *const *env_add)
{
	size_t n_env = 0, n_add = 0;
	while (environ && environ[n_env])
		n_env++;
	while (env_add && env_add[n_add])
		n_add++;

	char **envp = malloc((n_env + n_add + 1) * sizeof(*envp));
	if (!envp)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < n_env; i++)
		envp[n++] = environ[i];

	for (size_t i = 0; i < n_add; i++) {
		const char *add = env_add[i];
		size_t len = env_name_len(add);
		size_t j;
		for (j = 0; j < n; j++) {
			if (env_name_len(envp[j]) == len && strncmp(envp[j], add, len) == 0)
				break;
		}
		envp[j] = (char *)add;
		if (j == n)
			n++;
	}
	envp[n] = NULL;
	return envp;
}

/* Moves fd above the std fds so the child's dup2s onto 0-2 cannot clobber it;
 * returns the (possibly new) O_CLOEXEC fd, or -errno (fd is then closed). */
static int fd_above_std(int fd)
{
	if (fd > STDERR_FILENO)
		return fd;
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	int rc = nfd < 0 ? -errno : nfd;
	close(fd);
	return rc;
}

/* The time from now to deadline in *left; false when it has passed.
 * Async-signal-safe (the guard uses it). */
static bool time_left(const struct timespec *deadline, struct timespec *left)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	left->tv_sec = deadline->tv_sec - now.tv_sec;
	left->tv_nsec = deadline->tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_nsec += 1000000000L;
		left->tv_sec--;
	}
	return left->tv_sec > 0 || (left->tv_sec == 0 && left->tv_nsec > 0);
}

/* Everything the guard and the program need, prepared before fork(). */
struct guard_plan {
	const char *const *argv;
	char **envp;
	const char *cwd;
	int in_fd;  /* >= 3, or -1 for /dev/null */
	int out_fd; /* >= 3, or -1 for /dev/null */
	bool own_stderr;
	int stderr_fd; /* with own_stderr: >= 3, or -1 for /dev/null; else out_fd */
	int err_fd; /* >= 3: the exec-failure pipe */
	int ctl_fd; /* >= 3: the guard's end of the control socket */
};

static void child_fail(int err_fd, int err)
{
	/* Nothing useful can be done if this fails: the parent then sees no
	 * errno and reports exit status 127. */
	ssize_t r = write(err_fd, &err, sizeof(err));
	(void)r;
	_exit(127);
}

/* Runs in the program's process (forked by the guard); never returns. */
static void exec_program(const struct guard_plan *plan)
{
	/* The guard calls setpgid for us as well; whoever is first creates the
	 * group, so it exists before either signals it. */
	if (setpgid(0, 0) < 0)
		child_fail(plan->err_fd, errno);
	close(plan->ctl_fd);
	if (plan->cwd && chdir(plan->cwd) < 0)
		child_fail(plan->err_fd, errno);
	/* A stop that arrived since the fork is pending and acts here. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvpe(plan->argv[0], (char *const *)plan->argv, plan->envp);
	child_fail(plan->err_fd, errno);
}

/* Puts fd (>= 3, or -1 for /dev/null opened with flags) on target.  Every
 * fd of the plan is above 2 (see fd_above_std), so no dup2 here clobbers
 * one still to be placed; dup2 onto a different fd clears FD_CLOEXEC on
 * the copy. */
static void place_fd(int fd, int target, int flags, int err_fd)
{
	if (fd < 0) {
		fd = open("/dev/null", flags);
		if (fd < 0)
			child_fail(err_fd, errno);
	}
	if (fd != target && dup2(fd, target) < 0)
		child_fail(err_fd, errno);
}

/* The program's stdin, stdout and stderr (see process.h); the program
 * inherits them. */
static void setup_stdio(const struct guard_plan *plan)
{
	place_fd(plan->in_fd, STDIN_FILENO, O_RDONLY, plan->err_fd);
	place_fd(plan->out_fd, STDOUT_FILENO, O_WRONLY, plan->err_fd);
	if (plan->own_stderr)
		place_fd(plan->stderr_fd, STDERR_FILENO, O_WRONLY, plan->err_fd);
	else if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
		child_fail(plan->err_fd, errno);
}

/* Closes every descriptor >= 3 except a and b (both >= 3, distinct).  The
 * guard never execs, so O_CLOEXEC does not help here: a failure is fatal. */
static int close_fds_except(int a, int b)
{
	unsigned lo = (unsigned)(a < b ? a : b), hi = (unsigned)(a < b ? b : a);
	if (lo > STDERR_FILENO + 1 && close_range(STDERR_FILENO + 1, lo - 1, 0) < 0)
		return -1;
	if (hi > lo + 1 && close_range(lo + 1, hi - 1, 0) < 0)
		return -1;
	return close_range(hi + 1, ~0U, 0);
}

/* Reaps the program, after killing whatever of its group is left, then every
 * other member that became our child; returns the program's wait status. */
static int reap_group(pid_t prog)
{
	/* prog is a zombie or alive: its pid still names our group. */
	kill(-prog, SIGKILL);
	int status = 0;
	while (waitpid(prog, &status, 0) < 0 && errno == EINTR)
		;
	while (waitpid(-prog, NULL, 0) > 0 || errno == EINTR)
		;
	return status;
}

/* Until the program ends: a stop byte on ctl_fd starts SIGTERM + grace +
 * SIGKILL, EOF on it (spawn_wait's process is gone) SIGKILLs at once. */
static void guard_watch(pid_t prog, int prog_fd, int ctl_fd)
{
	struct pollfd fds[2] = {
		{ .fd = prog_fd, .events = POLLIN },
		{ .fd = ctl_fd, .events = POLLIN },
	};
	struct timespec kill_at, left;
	bool in_grace = false;

	for (;;) {
		int timeout_ms = -1;
		if (in_grace) {
			if (!time_left(&kill_at, &left)) {
				kill(-prog, SIGKILL);
				in_grace = false;
				continue;
			}
			timeout_ms = (int)(left.tv_sec * 1000 + (left.tv_nsec + 999999) / 1000000);
		}
		if (poll(fds, 2, timeout_ms) < 0) {
			if (errno == EINTR)
				continue;
			/* Cannot watch any more: end the run rather than spin. */
			kill(-prog, SIGKILL);
			return;
		}
		if (fds[0].revents)
			return;
		if (!fds[1].revents)
			continue;
		char byte;
		ssize_t n = read(ctl_fd, &byte, 1);
		if (n > 0 && !in_grace) {
			kill(-prog, SIGTERM);
			clock_gettime(CLOCK_MONOTONIC, &kill_at);
			kill_at.tv_sec += SPAWN_STOP_GRACE_MS / 1000;
			kill_at.tv_nsec += (SPAWN_STOP_GRACE_MS % 1000) * 1000000L;
			if (kill_at.tv_nsec >= 1000000000L) {
				kill_at.tv_nsec -= 1000000000L;
				kill_at.tv_sec++;
			}
			in_grace = true;
		} else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
			kill(-prog, SIGKILL);
			in_grace = false;
			fds[1].fd = -1;
		}
	}
}

/* Runs in the forked child; never returns.  See "The guard" above. */
static void run_guard(const struct guard_plan *plan)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	/* Errors ignored: SIGKILL/SIGSTOP and libc-reserved signals refuse.
	 * The mask stays full until the program clears its own. */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);

	if (setpgid(0, 0) < 0)
		child_fail(plan->err_fd, errno);
	setup_stdio(plan);
	if (close_fds_except(plan->err_fd, plan->ctl_fd) < 0)
		child_fail(plan->err_fd, errno);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		child_fail(plan->err_fd, errno);

	pid_t prog = _Fork();
	if (prog < 0)
		child_fail(plan->err_fd, errno);
	if (prog == 0)
		exec_program(plan);
	/* EACCES (it already exec'd) or ESRCH mean it did so itself. */
	setpgid(prog, prog);

	int prog_fd = pidfd_open(prog, 0);
	if (prog_fd < 0) {
		int err = errno;
		reap_group(prog);
		child_fail(plan->err_fd, err);
	}
	close(plan->err_fd);
	guard_watch(prog, prog_fd, plan->ctl_fd);
	int status = reap_group(prog);
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(WEXITSTATUS(status));
}

/* Asks the guard to stop the program.  The guard may have exited meanwhile,
 * hence MSG_NOSIGNAL; nothing else can go wrong that retrying would fix. */
static void request_stop(int ctl_fd)
{
	ssize_t r = send(ctl_fd, "s", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)r;
}

/* 0 when the run may start, else why not (-ECANCELED, -ETIMEDOUT, -EBADF). */
static int check_not_stopped(const struct spawn_opts *opts)
{
	if (opts->cancel_fd >= 0) {
		if (fcntl(opts->cancel_fd, F_GETFD) < 0)
			return -errno;
		struct pollfd p = { .fd = opts->cancel_fd, .events = POLLIN };
		if (poll(&p, 1, 0) > 0)
			return -ECANCELED;
	}
	struct timespec left;
	if (opts->deadline && !time_left(opts->deadline, &left))
		return -ETIMEDOUT;
	return 0;
}

/* Waits until the guard has exited (it is not reaped).  Returns 0 when the
 * program ended by itself, -ECANCELED or -ETIMEDOUT when a stop was requested,
 * or -errno when polling failed (a stop was requested then too, and the
 * caller's waitpid does the waiting). */
static int await_guard(int guard_fd, int ctl_fd, const struct spawn_opts *opts)
{
	struct pollfd fds[2] = {
		{ .fd = guard_fd, .events = POLLIN },
		{ .fd = opts->cancel_fd, .events = POLLIN },
	};
	int stop = 0;
	for (;;) {
		struct timespec left, *timeout = NULL;
		if (!stop && opts->deadline) {
			if (!time_left(opts->deadline, &left)) {
				stop = -ETIMEDOUT;
				request_stop(ctl_fd);
				continue;
			}
			timeout = &left;
		}
		/* After a stop only the guard's end matters. */
		if (ppoll(fds, stop ? 1 : 2, timeout, NULL) < 0) {
			if (errno == EINTR)
				continue;
			if (!stop) {
				stop = -errno;
				request_stop(ctl_fd);
			}
			return stop;
		}
		if (fds[0].revents)
			return stop;
		if (!stop && fds[1].revents) {
			stop = -ECANCELED;
			request_stop(ctl_fd);
		}
	}
}

int spawn_wait(const char *const argv[], const struct spawn_opts *opts, int *exit_status)
{
	static const struct spawn_opts no_opts = { .out_fd = -1, .cancel_fd = -1 };
	if (!opts)
		opts = &no_opts;
	if (exit_status)
		*exit_status = -1;
	if (!argv || !argv[0])
		return -EINVAL;
	int rc = check_not_stopped(opts);
	if (rc < 0)
		return rc;

	int in_fd = -1, out_fd = -1, stderr_fd = -1;
	int err_pipe[2] = { -1, -1 };
	int ctl[2] = { -1, -1 };
	int guard_fd = -1;
	char **envp = NULL;
	bool mask_saved = false;
	sigset_t all, old_mask;

	/* Private copies: keep the caller's fds untouched and above 2. */
	if (opts->out_fd >= 0 &&
	    (out_fd = fcntl(opts->out_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1)) < 0) {
		rc = -errno;
		goto out;
	}
	if (opts->has_in_fd && opts->in_fd >= 0 &&
	    (in_fd = fcntl(opts->in_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1)) < 0) {
		rc = -errno;
		goto out;
	}
	if (opts->has_err_fd && opts->err_fd >= 0 &&
	    (stderr_fd = fcntl(opts->err_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1)) < 0) {
		rc = -errno;
		goto out;
	}
	envp = build_env(opts->env_add);
	if (!envp) {
		rc = -ENOMEM;
		goto out;
	}
	if (pipe2(err_pipe, O_CLOEXEC) < 0 ||
	    fcntl(err_pipe[0], F_SETFL, O_NONBLOCK) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0) {
		rc = -errno;
		goto out;
	}
	err_pipe[1] = fd_above_std(err_pipe[1]);
	ctl[1] = fd_above_std(ctl[1]);
	if (err_pipe[1] < 0 || ctl[1] < 0) {
		rc = err_pipe[1] < 0 ? err_pipe[1] : ctl[1];
		goto out;
	}
	struct guard_plan plan = {
		.argv = argv, .envp = envp, .cwd = opts->cwd,
		.in_fd = in_fd, .out_fd = out_fd, .own_stderr = opts->has_err_fd,
		.stderr_fd = stderr_fd, .err_fd = err_pipe[1], .ctl_fd = ctl[1],
	};

	/* Blocked across fork so no signal runs this process's handlers in the
	 * child before it has reset them; the guard keeps them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old_mask);
	mask_saved = true;

	pid_t guard = fork();
	if (guard == 0)
		run_guard(&plan);
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	mask_saved = false;
	if (guard < 0) {
		rc = -fork_errno;
		goto out;
	}
	close(err_pipe[1]);
	err_pipe[1] = -1;
	close(ctl[1]);
	ctl[1] = -1;

	guard_fd = pidfd_open(guard, 0);
	int stop;
	if (guard_fd < 0) {
		/* Closing our end below makes the guard SIGKILL the group. */
		stop = -errno;
		close(ctl[0]);
		ctl[0] = -1;
	} else {
		stop = await_guard(guard_fd, ctl[0], opts);
	}

	int status = 0;
	while (waitpid(guard, &status, 0) < 0) {
		if (errno != EINTR) {
			rc = -errno;
			goto out;
		}
	}
	int child_err = 0;
	ssize_t n = read(err_pipe[0], &child_err, sizeof(child_err));
	if (stop < 0) {
		rc = stop;
		goto out;
	}
	if (n == (ssize_t)sizeof(child_err) && child_err > 0) {
		rc = -child_err;
		goto out;
	}
	if (exit_status) {
		if (WIFEXITED(status))
			*exit_status = WEXITSTATUS(status);
		else if (WIFSIGNALED(status))
			*exit_status = 128 + WTERMSIG(status);
	}
	rc = 0;
out:
	if (mask_saved)
		pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	if (guard_fd >= 0)
		close(guard_fd);
	for (int i = 0; i < 2; i++) {
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
		if (ctl[i] >= 0)
			close(ctl[i]);
	}
	free(envp);
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (stderr_fd >= 0)
		close(stderr_fd);
	return rc;
}

/* Fields 3 (state) and 22 (starttime) of /proc/<pid>/stat.  The command
 * name (field 2) may hold spaces and parentheses, so the fields are counted
 * after its last ')'. */
static int process_stat(pid_t pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return -EPROTO;
	p++;
	*state = p[1];
	/* after ")": field 3 (state) is the first; starttime is the 20th */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EPROTO;
	}
	char *end = NULL;
	errno = 0;
	*start = strtoull(p + 1, &end, 10);
	return errno || end == p + 1 ? -EPROTO : 0;
}

static int boot_id(char out[64])
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, out, 63);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
	return out[0] && !strchr(out, '/') ? 0 : -EPROTO;
}

/* A process that died but was not reaped yet (a zombie) is gone too. */
int process_instance_id(pid_t pid, char *buf, size_t len)
{
	char boot[64], state = '?';
	unsigned long long start;
	int rc = boot_id(boot);
	if (rc == 0)
		rc = process_stat(pid, &state, &start);
	if (rc == 0 && (state == 'Z' || state == 'X'))
		rc = -ESRCH;
	if (rc < 0)
		return rc;
	int n = snprintf(buf, len, "%s/%ld/%llu", boot, (long)pid, start);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

bool process_instance_alive(const char *id)
{
	char boot[64], now[128];
	const char *slash = strchr(id, '/');
	char *end = NULL;
	if (!slash || boot_id(boot) < 0 || (size_t)(slash - id) != strlen(boot) ||
	    strncmp(id, boot, strlen(boot)) != 0)
		return false;
	errno = 0;
	long pid = strtol(slash + 1, &end, 10);
	if (errno || pid <= 0 || *end != '/')
		return false;
	/* the pid's current instance, compared whole */
	return process_instance_id((pid_t)pid, now, sizeof(now)) == 0 && strcmp(now, id) == 0;
}
