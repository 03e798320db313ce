/*
 * errmsg.c - see errmsg.h.
 */
#include "errmsg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void errmsg_set(char **errmsg, const char *fmt, ...)
{
	if (!errmsg || *errmsg)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(errmsg, fmt, ap) < 0)
		*errmsg = NULL;
	va_end(ap);
}
