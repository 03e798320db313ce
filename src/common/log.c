/*
 * log.c - the logging facade behind log.h.
 *
 * Messages are formatted into a bounded stack buffer (longer ones are
 * truncated, marked with "...") and handed to the backend as one string.  The
 * default backend emits "sebsfs: <level>: <msg>\n" with a single write(2) so
 * lines from concurrent threads never interleave; no lock is needed for that.
 * The backend pointer and debug flag are atomics, so log_set_backend() and
 * log_set_debug() may race with logging threads without tearing.
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOG_MSG_MAX 4096

static _Atomic(log_backend_fn) log_backend;
static atomic_bool log_debug_on;

static const char *level_word(enum log_level level)
{
	switch (level) {
	case LOG_LVL_ERR:
		return "error";
	case LOG_LVL_WARN:
		return "warning";
	case LOG_LVL_INFO:
		return "info";
	case LOG_LVL_DEBUG:
		return "debug";
	}
	return "log";
}

static void stderr_backend(enum log_level level, const char *msg)
{
	/* Room for the prefix and newline on top of a full-size message. */
	char line[LOG_MSG_MAX + 64];
	int n = snprintf(line, sizeof(line), "sebsfs: %s: %s\n", level_word(level), msg);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	if (len > 0 && line[len - 1] != '\n')
		line[len - 1] = '\n';

	/* stderr is unbuffered stdio; write(2) directly keeps the line atomic
	 * (for pipes up to PIPE_BUF) and avoids stdio's per-stream lock. */
	const char *p = line;
	while (len > 0) {
		ssize_t w = write(STDERR_FILENO, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		len -= (size_t)w;
	}
}

void log_set_backend(log_backend_fn fn)
{
	atomic_store(&log_backend, fn);
}

void log_set_debug(bool on)
{
	atomic_store(&log_debug_on, on);
}

bool log_debug_enabled(void)
{
	return atomic_load(&log_debug_on);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level == LOG_LVL_DEBUG && !log_debug_enabled())
		return;

	/* Callers may log right after a failing call and then use errno. */
	int saved_errno = errno;
	char msg[LOG_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0) {
		snprintf(msg, sizeof(msg), "(unformattable log message: %s)", fmt);
	} else if ((size_t)n >= sizeof(msg)) {
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	}

	/* A trailing newline from the caller would produce an empty line. */
	size_t len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';

	log_backend_fn fn = atomic_load(&log_backend);
	if (fn)
		fn(level, msg);
	else
		stderr_backend(level, msg);
	errno = saved_errno;
}
