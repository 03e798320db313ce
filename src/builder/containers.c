/*
 * containers.c - Docker containers that outlive the sebsfs that made them.
 *
 * A build container is removed by its worker whatever happens to the build,
 * but not when sebsfs itself dies (kill -9, a crash, the OOM killer): the
 * daemon keeps it running, bind-mounting a work folder that the next start
 * deletes.  So every container sebsfs creates carries two labels:
 *   sebsfs.cache=<cache_id()>   which cache folder's build it serves;
 *   sebsfs.owner=<instance>     which process made it (process_instance_id:
 *                               boot id, pid and start time, so a reused
 *                               pid does not pass for the owner).
 * The checker sweeps once at start-up (and retries while the daemon does not
 * answer): every container of this cache whose owner is not alive any more
 * is removed (force: a running one is killed first).  The owner test, not
 * the cache lock alone, decides, so a copy of the cache folder (same id)
 * mounted by another live sebsfs keeps its containers, and containers this
 * process creates while the sweep runs are never touched.  With a remote
 * daemon (DOCKER_HOST=tcp://) shared by several machines, an owner on another
 * machine counts as gone: give each machine its own cache folder.  One race
 * is left open: a create request that the dead sebsfs sent may complete in
 * the daemon after the sweep listed the containers; that container (created,
 * never started) is removed by the next start's sweep.
 *
 * Function images need nothing of the kind: POST /build runs in the daemon,
 * which cancels the build and removes its intermediate containers (forcerm)
 * when the connection drops, and a push that is cut off never writes the
 * registry's manifest, so no tag names a half-pushed image.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builder_int.h"
#include "docker.h"
#include "fsutil.h"
#include "log.h"
#include "process.h"

int container_labels_init(struct builder *b)
{
	char owner[160];
	int rc = process_instance_id(getpid(), owner, sizeof(owner));
	if (rc < 0) {
		log_err("builder: cannot tell this process's identity from /proc: %s",
			strerror(-rc));
		return rc;
	}
	b->container_labels[0] = str_printf(CONTAINER_LABEL_CACHE "=%s", cache_id(b->cache));
	b->container_labels[1] = str_printf(CONTAINER_LABEL_OWNER "=%s", owner);
	b->container_labels[2] = NULL;
	return b->container_labels[0] && b->container_labels[1] ? 0 : -ENOMEM;
}

void container_labels_free(struct builder *b)
{
	free(b->container_labels[0]);
	free(b->container_labels[1]);
	b->container_labels[0] = b->container_labels[1] = NULL;
}

int containers_sweep(struct builder *b, struct docker *client, char **errmsg)
{
	struct docker_container_summary *list = NULL;
	size_t n = 0;
	unsigned removed = 0;
	/* container_labels[0] is "sebsfs.cache=<id>": the filter itself */
	int rc = docker_container_list(client, b->container_labels[0], &list, &n, errmsg);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *owner = docker_label_value(list[i].labels, CONTAINER_LABEL_OWNER);
		if (owner && process_instance_alive(owner))
			continue;
		char *msg = NULL;
		int r = docker_container_remove(client, list[i].id, true, &msg);
		if (r == 0 || r == -ENOENT) {
			removed++;
			log_info("removed container %.12s (%s) left by sebsfs %s, which is gone",
				 list[i].id, list[i].state, owner ? owner : "(no owner label)");
		} else {
			/* the others are still tried; the sweep is retried later */
			log_warn("cannot remove container %.12s left by a sebsfs that is gone: %s",
				 list[i].id, msg ? msg : strerror(-r));
			if (errmsg && !*errmsg) {
				*errmsg = msg;
				msg = NULL;
			}
			rc = r;
		}
		free(msg);
	}
	docker_container_list_free(list, n);
	if (removed)
		log_info("removed %u container(s) of cache %s left by a sebsfs that is gone",
			 removed, cache_dir(b->cache));
	return rc;
}
