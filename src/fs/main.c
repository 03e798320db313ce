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
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "builder.h"
#include "cache.h"
#include "catalog.h"
#include "docker.h"
#include "fs.h"
#include "log.h"
#include "options.h"

#define AUTO_PROBE_TIMEOUT_S 3L

/* glibc's malloc, tuned for the two allocation patterns that dominate:
 *  - zipping: libarchive allocates and frees a deflate state (~270 KiB) per
 *    entry; with glibc's defaults every one is an mmap/munmap or a heap trim
 *    (PERF-NOTES: fixed thresholds above it halve zip time).
 *  - input checks: every open stats the package's inputs into a manifest of
 *    ~80 bytes per file plus its paths (1-3 MiB for 20,000 files), on
 *    whichever FUSE or worker thread asked, and frees the previous one.
 *    With the defaults the mmap threshold follows the largest block freed,
 *    so after the first big manifest every later one comes from the thread's
 *    arena and stays there (measured: 80 MB after 64 opens of a 20,000-file
 *    package on 15 threads, against 28 MB with these settings).
 * So: blocks from 1 MiB up are mmapped and go back at free; an arena keeps at
 * most 4 MiB of free memory at its top (above the deflate state's size). */
static void tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
}

/* ---- the mount watcher ----------------------------------------------------
 * A busy FUSE mount cannot be unmounted, and after `fusermount3 -u -z` the
 * kernel keeps the connection until every pending request is answered:
 * readers waiting for a build would keep it (and the build's programs) alive
 * until the build ends.  So a thread notices that the mount point is gone from
 * /proc/self/mountinfo (reading it never touches our own filesystem) and
 * stops the builder: running builds are cancelled, waiters answered, and the
 * kernel can then end the session. */
#define WATCH_INTERVAL_S 1

struct watcher {
	char *mountpoint;        /* as mountinfo writes it (octal escapes undone) */
	struct builder *builder;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;               /* protected by lock */
	bool started;
};

/* Undoes mountinfo's octal escapes (\040 for a space ...) in place. */
static void unescape_octal(char *s)
{
	char *out = s;
	for (char *in = s; *in; in++) {
		if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
		    in[3] >= '0' && in[3] <= '7') {
			*out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
			in += 3;
		} else {
			*out++ = *in;
		}
	}
	*out = '\0';
}

/* Is a fuse filesystem mounted at mountpoint (per /proc/self/mountinfo)?
 * -errno when mountinfo cannot be read. */
static int fuse_mounted_at(const char *mountpoint)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char *line = NULL;
	size_t cap = 0;
	int found = 0;
	while (!found && getline(&line, &cap, f) > 0) {
		/* id parent major:minor root mountpoint options ... - fstype source ... */
		char *save = NULL, *field = strtok_r(line, " ", &save);
		for (int i = 0; field && i < 4; i++)
			field = strtok_r(NULL, " ", &save);
		char *sep = field ? strstr(save, " - ") : NULL;
		if (!field || !sep)
			continue;
		unescape_octal(field);
		found = strcmp(field, mountpoint) == 0 && strncmp(sep + 3, "fuse", 4) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

static void *watch_mount(void *arg)
{
	struct watcher *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += WATCH_INTERVAL_S;
		pthread_cond_timedwait(&w->wake, &w->lock, &until);
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->lock);
		int mounted = fuse_mounted_at(w->mountpoint);
		pthread_mutex_lock(&w->lock);
		if (mounted == 0) {
			log_info("%s is no longer mounted: stopping the builds", w->mountpoint);
			builder_stop(w->builder);
			break;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int watcher_start(struct watcher *w, const char *mountpoint, struct builder *b)
{
	memset(w, 0, sizeof(*w));
	/* absolute already (fuse_parse_cmdline resolves it); never resolve it
	 * here: that would stat our own mount before anyone serves it */
	w->mountpoint = strdup(mountpoint);
	w->builder = b;
	if (!w->mountpoint)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	int rc = -pthread_create(&w->thread, NULL, watch_mount, w);
	w->started = rc == 0;
	return rc;
}

static void watcher_stop(struct watcher *w)
{
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->wake);
	}
	free(w->mountpoint);
	w->mountpoint = NULL;
}

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

	tune_malloc();
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

	struct fs_config fcfg = { .stat_builds = opts.stat_builds, .no_views = opts.no_views };
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
				       .image_tag_prefix = opts.image_tag_prefix,
				       .jobs = opts.jobs, .build_timeout = opts.build_timeout,
				       .verify = opts.verify,
				       .scrub_interval = opts.scrub, .cache_max = opts.cache_max,
				       .no_dep_layers = opts.no_dep_layers,
				       .input_watch = opts.input_watch,
				       .size_limits = &opts.size_limits,
				       .size_limits_mode = opts.size_limits_mode,
				       .remote_cache = opts.remote_cache,
				       .remote_cache_mode = opts.remote_cache_mode,
				       .remote_cache_certs = opts.remote_cache_certs };
	builder = builder_new(cat, cache, &bcfg, &err);
	if (!builder)
		goto out_cache;
	fs_attach_builder(builder);
	log_info("serving %s (%zu packages) at %s; cache %s (cache_max %lld bytes%s); builder=%s (%s),"
		 " jobs=%u", cat->root, cat->n_packages, opts.cmd.mountpoint, opts.cache_dir,
		 (long long)opts.cache_max, opts.cache_max ? "" : ": no limit", opts.builder,
		 installer_name(opts.installer), opts.jobs);

	struct watcher watcher;
	int wrc = watcher_start(&watcher, opts.cmd.mountpoint, builder);
	if (wrc < 0)
		log_warn("cannot watch %s: %s; a lazy unmount will wait for running builds",
			 opts.cmd.mountpoint, strerror(-wrc));
	status = run_loop(se, &opts) == 0 ? 0 : 1;
	watcher_stop(&watcher);

	fs_detach_builder();
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
