/*
 * buildlog.c - build log lines (see buildlog.h).
 */
#include "buildlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

void build_log(int fd, const char *fmt, ...)
{
	char buf[4096];
	int off = snprintf(buf, sizeof(buf), "[sebsfs] ");
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + off, sizeof(buf) - off - 1, fmt, ap);
	va_end(ap);
	size_t len = off + (n < 0 ? 0 : (size_t)n >= sizeof(buf) - off - 1 ? sizeof(buf) - off - 2 : (size_t)n);
	buf[len++] = '\n';
	if (fd >= 0) {
		ssize_t w = write(fd, buf, len); /* O_APPEND: one write keeps lines whole */
		(void)w;
	}
}
