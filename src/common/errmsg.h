/*
 * errmsg.h - the one way a function hands back a one-line reason for its
 * failure: an optional "char **errmsg" out-parameter.
 *
 * The convention: the caller passes NULL (not interested) or the address of
 * a char * that is NULL; the first message set wins, so a low-level reason
 * (the file and the syscall) is not overwritten by a vaguer one on the way
 * up; the caller frees it.  Functions return 0 or -errno besides.
 */
#ifndef SEBSFS_ERRMSG_H
#define SEBSFS_ERRMSG_H

/* Sets *errmsg to the formatted message unless errmsg is NULL or *errmsg is
 * already set.  Out of memory leaves it NULL. */
void errmsg_set(char **errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* errmsg_set, then returns rc: for "return errmsg_fail(errmsg, -ENOENT, ...)". */
int errmsg_fail(char **errmsg, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
