/*
 * process.c - run a program from an argv array (never through a shell).
 *
 * DESIGN
 * Builds run in parallel worker threads, so nothing here changes this
 * process's cwd, environ or signal dispositions: the child is set up between
 * fork() and execvpe().  That window runs in a copy of a multi-threaded
 * process, so it uses only async-signal-safe calls (open, dup2, chdir,
 * sigaction, close_range, execvpe, write, _exit) and no malloc; everything
 * that allocates (the envp array) is prepared before fork().  environ is
 * only read, so no thread may setenv() while builds run.
 *
 * fork+exec rather than posix_spawn(): the child must close every inherited
 * descriptor (close_range below), which posix_spawn's file actions cannot
 * express portably.
 *
 * Exec failures are reported through a close-on-exec pipe: the child writes
 * errno and exits; a successful exec closes the pipe, so the parent reads EOF.
 * This turns a missing binary into -ENOENT instead of exit status 127.
 *
 * The child gets default signal dispositions and an empty mask (the FUSE
 * daemon ignores SIGPIPE and workers may block signals; pip must not inherit
 * either), and descriptors >= 3 are closed (a library fd opened without
 * O_CLOEXEC, such as /dev/fuse, must never be held by a lingering child).
 */
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

static void child_fail(int err_fd, int err)
{
	/* Nothing useful can be done if this fails: the parent then sees EOF
	 * and reports exit status 127. */
	ssize_t r = write(err_fd, &err, sizeof(err));
	(void)r;
	_exit(127);
}

/* Runs in the forked child; never returns. */
static void child_exec(const char *const argv[], const char *cwd, int out_fd,
		       int err_fd, char **envp)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	/* Errors ignored: SIGKILL/SIGSTOP and libc-reserved signals refuse. */
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	int in = open("/dev/null", O_RDONLY);
	if (in < 0)
		child_fail(err_fd, errno);
	if (in != STDIN_FILENO) {
		if (dup2(in, STDIN_FILENO) < 0)
			child_fail(err_fd, errno);
		close(in);
	}

	if (out_fd < 0) {
		int dn = open("/dev/null", O_WRONLY);
		if (dn < 0)
			child_fail(err_fd, errno);
		out_fd = dn;
	}
	/* out_fd is above 2 (see fd_above_std) unless it is the fresh /dev/null,
	 * and dup2 onto a different fd clears FD_CLOEXEC on the copy. */
	if (out_fd != STDOUT_FILENO && dup2(out_fd, STDOUT_FILENO) < 0)
		child_fail(err_fd, errno);
	if (out_fd != STDERR_FILENO && dup2(out_fd, STDERR_FILENO) < 0)
		child_fail(err_fd, errno);

	if (cwd && chdir(cwd) < 0)
		child_fail(err_fd, errno);

	/* Keep only 0-2 and the error pipe (which closes itself on exec).
	 * Without close_range (old kernel) we rely on O_CLOEXEC alone. */
	if (err_fd > STDERR_FILENO + 1)
		close_range(STDERR_FILENO + 1, (unsigned)err_fd - 1, 0);
	close_range((unsigned)err_fd + 1, ~0U, 0);

	execvpe(argv[0], (char *const *)argv, envp);
	child_fail(err_fd, errno);
}

int spawn_wait(const char *const argv[], const struct spawn_opts *opts, int *exit_status)
{
	static const struct spawn_opts no_opts = { .out_fd = -1 };
	if (!opts)
		opts = &no_opts;
	if (exit_status)
		*exit_status = -1;
	if (!argv || !argv[0])
		return -EINVAL;

	int rc;
	int out_fd = -1;
	int pipefd[2] = { -1, -1 };
	char **envp = NULL;
	bool mask_saved = false;
	sigset_t all, old_mask;

	if (opts->out_fd >= 0) {
		/* A private copy: keeps the caller's fd untouched and above 2. */
		out_fd = fcntl(opts->out_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
		if (out_fd < 0)
			return -errno;
	}
	envp = build_env(opts->env_add);
	if (!envp) {
		rc = -ENOMEM;
		goto out;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	pipefd[1] = fd_above_std(pipefd[1]);
	if (pipefd[1] < 0) {
		rc = pipefd[1];
		goto out;
	}

	/* Blocked across fork so no signal runs this process's handlers in the
	 * child before it has reset them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old_mask);
	mask_saved = true;

	pid_t pid = fork();
	if (pid == 0)
		child_exec(argv, opts->cwd, out_fd, pipefd[1], envp);
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	mask_saved = false;
	if (pid < 0) {
		rc = -fork_errno;
		goto out;
	}

	close(pipefd[1]);
	pipefd[1] = -1;
	int child_err = 0;
	ssize_t n;
	do {
		n = read(pipefd[0], &child_err, sizeof(child_err));
	} while (n < 0 && errno == EINTR);

	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			rc = -errno;
			goto out;
		}
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
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	free(envp);
	if (out_fd >= 0)
		close(out_fd);
	return rc;
}
