/*
 * target.c - what every kind of target shares (see target.h); no state.
 */
#include "target.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

int target_cancelled(const struct target_build *tb, char **errmsg)
{
	struct pollfd p = { .fd = tb->cancel_fd, .events = POLLIN };
	if (tb->cancel_fd < 0 || poll(&p, 1, 0) <= 0)
		return 0;
	if (errmsg && !*errmsg)
		*errmsg = strdup("cancelled: sebsfs is stopping");
	return -ECANCELED;
}

double target_now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
