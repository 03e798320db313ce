/*
 * errmsg.c - see errmsg.h.
 */
#include "errmsg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void errmsg_vset(char **errmsg, const char *fmt, va_list ap)
{
	if (!errmsg || *errmsg)
		return;
	if (vasprintf(errmsg, fmt, ap) < 0)
		*errmsg = NULL;
}

void errmsg_set(char **errmsg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	errmsg_vset(errmsg, fmt, ap);
	va_end(ap);
}

int errmsg_fail(char **errmsg, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	errmsg_vset(errmsg, fmt, ap);
	va_end(ap);
	return rc;
}
