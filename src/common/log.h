/*
 * log.h - one logging facade for every module.
 *
 * Messages go through fuse_log() when the daemon runs (so a backgrounded sebsfs
 * logs to syslog) and to stderr otherwise.  The backend is chosen by
 * log_set_backend(); modules never call fprintf(stderr) themselves.
 * Debug messages are dropped unless log_set_debug(true) was called (-d).
 */
#ifndef SEBSFS_LOG_H
#define SEBSFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sink for messages; NULL restores the default (stderr). */
typedef void (*log_backend_fn)(enum log_level level, const char *msg);

void log_set_backend(log_backend_fn fn);
void log_set_debug(bool on);
bool log_debug_enabled(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_debug_enabled()) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
