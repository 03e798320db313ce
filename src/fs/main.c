/*
 * main.c - sebsfs start-up and shutdown.
 *
 * Order matters: everything that can fail because of the user's input
 * (arguments, SEBS_ROOT, systems.json, the cache directory) is checked before
 * mounting, so errors reach the terminal with a non-zero exit.  Threads (the
 * builder's workers, libfuse's loop) and the SQLite connection are created only
 * after fuse_daemonize() forks: neither survives a fork.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "builder.h"
#include "cache.h"
#include "catalog.h"
#include "docker.h"
#include "fs.h"
#include "log.h"
#include "options.h"

#define AUTO_PROBE_TIMEOUT_S 3L

static void syslog_backend(enum log_level level, const char *msg)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	syslog(prio[level], "%s", msg);
}

/* builder=auto: docker when a daemon answers, else host.  Writes the reason
 * (it goes into every build log) into note. */
static enum installer_kind resolve_auto_builder(char *note, size_t len)
{
	char *msg = NULL, *version = NULL;
	struct docker *d = docker_new(NULL, &msg);
	if (d) /* a daemon that accepts and never answers must not hold up the mount */
		docker_set_control_timeout(d, AUTO_PROBE_TIMEOUT_S);
	int rc = d ? docker_ping(d, &version, &msg) : -ENOMEM;
	if (rc == 0)
		snprintf(note, len, "auto: Docker daemon at %s answered, API %s", docker_endpoint(d),
			 version ? version : "?");
	else
		snprintf(note, len, "auto: no Docker daemon (%s), installing on the host",
			 msg ? msg : strerror(-rc));
	free(msg);
	free(version);
	docker_free(d);
	return rc == 0 ? INSTALLER_DOCKER : INSTALLER_HOST;
}

static int run_loop(struct fuse_session *se, const struct sebsfs_options *opts)
{
	if (opts->cmd.singlethread)
		return fuse_session_loop(se);
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, opts->cmd.clone_fd);
	/* UINT_MAX means "not given": keep libfuse's defaults then */
	if (opts->cmd.max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(cfg, opts->cmd.max_idle_threads);
	if (opts->cmd.max_threads != UINT_MAX)
		fuse_loop_cfg_set_max_threads(cfg, opts->cmd.max_threads);
	int rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

int main(int argc, char *argv[])
{
	struct fuse_args args;
	struct sebsfs_options opts;
	struct catalog *cat = NULL;
	struct cache *cache = NULL;
	struct builder *builder = NULL;
	struct fuse_session *se = NULL;
	int status = 1, err = 0;
	char why[1024];

	int rc = options_parse(argc, argv, &args, &opts);
	if (rc != 0) {
		status = rc > 0 ? 0 : 1;
		goto out_args;
	}
	log_set_debug(opts.cmd.debug);
	char builder_note[512] = "";
	if (strcmp(opts.builder, "auto") == 0) {
		opts.installer = resolve_auto_builder(builder_note, sizeof(builder_note));
		log_info("builder=%s", builder_note);
	}

	cat = catalog_load(opts.root, opts.arch, why, sizeof(why));
	if (!cat) {
		fprintf(stderr, "sebsfs: %s\n", why);
		goto out_args;
	}
	/* Check the cache now, so a bad cache dir fails before mounting; it is
	 * reopened after the fork. */
	cache = cache_open(opts.cache_dir, &err);
	if (!cache) {
		fprintf(stderr, "sebsfs: cache %s: %s\n", opts.cache_dir, strerror(-err));
		goto out_catalog;
	}
	cache_close(cache);
	cache = NULL;

	struct fs_config fcfg = { .stat_builds = opts.stat_builds };
	se = fs_session_new(&args, cat, &fcfg);
	if (!se)
		goto out_catalog;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.cmd.mountpoint) != 0)
		goto out_signals;
	if (fuse_daemonize(opts.cmd.foreground) != 0)
		goto out_unmount;
	if (!opts.cmd.foreground) {
		openlog("sebsfs", LOG_PID, LOG_DAEMON);
		log_set_backend(syslog_backend);
	}

	cache = cache_open(opts.cache_dir, &err);
	if (!cache) {
		log_err("cache %s: %s", opts.cache_dir, strerror(-err));
		goto out_unmount;
	}
	struct builder_config bcfg = { .arch = opts.arch, .installer = opts.installer,
				       .installer_note = builder_note[0] ? builder_note : NULL,
				       .repository = opts.repository, .registry = opts.registry,
				       .jobs = opts.jobs, .build_timeout = opts.build_timeout,
				       .verify = opts.verify,
				       .scrub_interval = opts.scrub };
	builder = builder_new(cat, cache, &bcfg, &err);
	if (!builder)
		goto out_cache;
	fs_attach_builder(builder);
	log_info("serving %s (%zu packages) at %s; cache %s; builder=%s (%s), jobs=%u",
		 cat->root, cat->n_packages, opts.cmd.mountpoint, opts.cache_dir, opts.builder,
		 installer_name(opts.installer), opts.jobs);

	status = run_loop(se, &opts) == 0 ? 0 : 1;

	builder_free(builder);
out_cache:
	cache_close(cache);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
	fs_cleanup();
out_catalog:
	catalog_free(cat);
out_args:
	options_free(&opts);
	fuse_opt_free_args(&args);
	return status;
}
