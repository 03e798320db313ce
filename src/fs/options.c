/*
 * options.c - command-line parsing and validation (see options.h).
 */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "imagebuild.h"

/* Long enough for a cold Node.js install in a build container; a build that
 * still runs after half an hour is hung. */
#define DEFAULT_BUILD_TIMEOUT 1800u
/* An hourly re-hash of what was served costs little and bounds how long a
 * package damaged on disk can be served. */
#define DEFAULT_SCRUB 3600u
#include "fsutil.h"

struct raw_opts {
	char *cache;
	char *builder;
	char *jobs;
	char *arch;
	char *repository;
	char *registry;
	char *image_tag_prefix;
	char *build_timeout;
	char *verify;
	char *scrub;
	char *cache_max;
	char *dep_layers;
	char *input_watch;
	char *views;
	char *size_limits;
	char *size_limits_file;
	char *remote_cache;
	char *remote_cache_mode;
	char *remote_cache_certs;
	int stat_builds;
	int show_help;
	int show_version;
	char *positional[3];
	int n_positional;
};

#define OPT(t, p) { t, offsetof(struct raw_opts, p), 1 }
static const struct fuse_opt sebsfs_opts[] = {
	{ "cache=%s", offsetof(struct raw_opts, cache), 0 },
	{ "builder=%s", offsetof(struct raw_opts, builder), 0 },
	{ "jobs=%s", offsetof(struct raw_opts, jobs), 0 },
	{ "arch=%s", offsetof(struct raw_opts, arch), 0 },
	{ "repository=%s", offsetof(struct raw_opts, repository), 0 },
	{ "registry=%s", offsetof(struct raw_opts, registry), 0 },
	{ "image_tag_prefix=%s", offsetof(struct raw_opts, image_tag_prefix), 0 },
	{ "build_timeout=%s", offsetof(struct raw_opts, build_timeout), 0 },
	{ "verify=%s", offsetof(struct raw_opts, verify), 0 },
	{ "scrub=%s", offsetof(struct raw_opts, scrub), 0 },
	{ "cache_max=%s", offsetof(struct raw_opts, cache_max), 0 },
	{ "dep_layers=%s", offsetof(struct raw_opts, dep_layers), 0 },
	{ "input_watch=%s", offsetof(struct raw_opts, input_watch), 0 },
	{ "views=%s", offsetof(struct raw_opts, views), 0 },
	{ "size_limits=%s", offsetof(struct raw_opts, size_limits), 0 },
	{ "size_limits_file=%s", offsetof(struct raw_opts, size_limits_file), 0 },
	{ "remote_cache=%s", offsetof(struct raw_opts, remote_cache), 0 },
	{ "remote_cache_mode=%s", offsetof(struct raw_opts, remote_cache_mode), 0 },
	{ "remote_cache_certs=%s", offsetof(struct raw_opts, remote_cache_certs), 0 },
	OPT("stat_builds", stat_builds),
	{ "no_stat_builds", offsetof(struct raw_opts, stat_builds), 0 },
	OPT("-h", show_help),
	OPT("--help", show_help),
	OPT("-V", show_version),
	OPT("--version", show_version),
	FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct raw_opts *raw = data;
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	if (raw->n_positional >= 3)
		return 1; /* reported as "too many arguments" below */
	raw->positional[raw->n_positional++] = strdup(arg);
	return 0;
}

static void usage(const char *prog)
{
	printf("usage: %s [options] [SEBS_ROOT] MOUNTPOINT\n\n"
	       "Serves the deployment packages of a SeBS benchmark tree as files:\n"
	       "  MOUNTPOINT/<platform>/<language>-<version>[-arm64]/<benchmark>.zip\n"
	       "is built on first read and cached; <benchmark>.zip.log holds its build log.\n"
	       "Without SEBS_ROOT the bundled example suite is served.\n\n"
	       "sebsfs options:\n"
	       "    -h   --help            print this help and exit\n"
	       "    -V   --version         print the version and exit\n"
	       "    -o cache=DIR           cache directory (default $XDG_CACHE_HOME/sebsfs,\n"
	       "                           else ~/.cache/sebsfs); a missing or empty folder,\n"
	       "                           or one sebsfs marked as its cache\n"
	       "    -o builder=KIND        how dependencies are installed: auto (default:\n"
	       "                           docker when a daemon answers, else host),\n"
	       "                           docker (SeBS build images), host (pip3/npm on\n"
	       "                           this machine) or none\n"
	       "    -o jobs=N              parallel builds (default: number of cores)\n"
	       "    -o arch=ARCH           default architecture, x64 (default) or arm64\n"
	       "    -o stat_builds         stat/lookup of a package that is not fresh waits\n"
	       "                           for its build (for tools that stat before reading)\n"
	       "    -o repository=NAME     repository of function images (default:\n"
	       "                           systems.json general.docker_repository)\n"
	       "    -o registry=HOST[:PORT][/PATH]\n"
	       "                           push function images there (credentials from\n"
	       "                           ~/.docker/config.json); default: no push\n"
	       "    -o image_tag_prefix=PREFIX\n"
	       "                           SeBS's image_tag_prefix: function image tags end\n"
	       "                           in -<arch>-PREFIX-<SeBS_version>; default: none\n"
	       "    -o build_timeout=SECS  a build that takes longer is stopped (its programs\n"
	       "                           and containers killed) and fails; 0: no limit\n"
	       "                           (default %u)\n"
	       "    -o verify=MODE         check a cached package against its SHA-256: first\n"
	       "                           (default: the first time it is served after\n"
	       "                           start-up), always (every open) or size (only its\n"
	       "                           size, which is checked on every open anyway)\n"
	       "    -o scrub=SECS          re-hash the packages served since start-up every\n"
	       "                           SECS seconds and forget damaged ones; 0: never\n"
	       "                           (default %u)\n"
	       "    -o cache_max=SIZE      keep the package files and dependency layers of the\n"
	       "                           cache within SIZE bytes (suffix K, M, G or T:\n"
	       "                           1024-based, e.g. 500M) by evicting the least\n"
	       "                           recently used; 0: no limit (default)\n"
	       "    -o dep_layers=on|off   install dependencies once per dependency key, in a\n"
	       "                           folder holding only what the key covers, and reuse\n"
	       "                           the result (and its zipped bytes) in every package\n"
	       "                           with that key (default on); off: install in each\n"
	       "                           package's work folder, as SeBS does\n"

	       "    -o remote_cache=REGISTRY/REPOSITORY\n"
	       "                           share built packages through an OCI registry: a\n"
	       "                           package missing here is fetched from it when there\n"
	       "                           (digest-checked), else built and pushed in the\n"
	       "                           background (credentials from ~/.docker/config.json;\n"
	       "                           https, verified; http for a loopback registry\n"
	       "                           without a certificate folder or an http:// prefix)\n"
	       "    -o remote_cache_mode=read|write|readwrite\n"
	       "                           fetch only, push only, or both (default)\n"
	       "    -o remote_cache_certs=DIR\n"
	       "                           the registries' TLS folders, DIR/HOST:PORT/ with\n"
	       "                           *.crt (CAs trusted besides the system's) and a\n"
	       "                           client NAME.cert + NAME.key (default\n"
	       "                           /etc/docker/certs.d, as Docker)\n"
	       "    -o input_watch=on|off  on (default): an open skips the walk of the inputs\n"
	       "                           when inotify saw no change since the last walk;\n"
	       "                           off: every open stats every input file\n"
	       "    -o views=on|off        on (default): a read-only folder <benchmark>/ beside\n"
	       "                           each code package shows its files (listing it\n"
	       "                           builds the package); off: no such folders, so a\n"
	       "                           recursive walk of the mount builds nothing\n"
	       "    -o size_limits=MODE    a code package past its platform's size limit\n"
	       "                           (aws 50 MiB zipped, 250 MiB unzipped; gcp 100 MB /\n"
	       "                           500 MB; openwhisk 48 MB zipped): warn (default:\n"
	       "                           xattr user.sebs.size_warning and a build log line),\n"
	       "                           strict (also: its open fails with EFBIG) or off\n"
	       "    -o size_limits_file=FILE\n"
	       "                           JSON limits over the defaults, e.g.\n"
	       "                           {\"aws\": {\"zipped\": \"50 MiB\", \"unzipped\": 262144000}}\n\n",
	       prog, DEFAULT_BUILD_TIMEOUT, DEFAULT_SCRUB);
}

static int fail(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "sebsfs: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return -1;
}

static char *default_cache_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	if (xdg && xdg[0] == '/')
		return path_join(xdg, "sebsfs");
	const char *home = getenv("HOME");
	if (!home || !*home)
		return NULL;
	return str_printf("%s/.cache/sebsfs", home);
}

static char *absolute_path(const char *p)
{
	if (p[0] == '/')
		return strdup(p);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	return path_join(cwd, p);
}

static const char *default_suite(void)
{
	return path_is_dir(SEBSFS_SUITE_INSTALLED) ? SEBSFS_SUITE_INSTALLED : SEBSFS_SUITE_SOURCE;
}

static int validate_root(struct sebsfs_options *opts, const char *given)
{
	char resolved[PATH_MAX];
	if (!realpath(given, resolved))
		return fail("SEBS_ROOT %s: %s", given, strerror(errno));
	struct stat st;
	if (stat(resolved, &st) < 0 || !S_ISDIR(st.st_mode))
		return fail("SEBS_ROOT %s: %s", given, "not a directory");
	if (access(resolved, R_OK | X_OK) < 0)
		return fail("SEBS_ROOT %s: %s", given, strerror(errno));
	char *systems = path_join(resolved, "configs/systems.json");
	int ok = systems && access(systems, R_OK) == 0;
	int saved = errno;
	free(systems);
	if (!ok)
		return fail("%s/configs/systems.json: %s", resolved, strerror(saved));
	opts->root = strdup(resolved);
	return 0;
}

#define MAX_SECONDS (7 * 24 * 3600)

/* name=text as a whole number in [min, max] into *out; text NULL keeps *out. */
static int parse_number(const char *name, const char *text, long min, long max,
			const char *expected, unsigned *out)
{
	if (!text)
		return 0;
	char *end;
	errno = 0;
	long n = strtol(text, &end, 10);
	if (errno || *end || end == text || n < min || n > max) {
		fprintf(stderr, "sebsfs: %s=%s: expected %s\n", name, text, expected);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* name=text as a size in bytes, optionally with a 1024-based suffix K, M, G
 * or T (lower case too), into *out; text NULL keeps *out. */
static int parse_size(const char *name, const char *text, int64_t *out)
{
	static const char units[] = "KMGT";
	if (!text)
		return 0;
	char *end;
	errno = 0;
	int64_t n = -1;
	if (*text >= '0' && *text <= '9') /* strtoll would take " 5", "-5" and "+5" */
		n = strtoll(text, &end, 10);
	if (n >= 0 && !errno && *end) {
		const char *u = strchr(units, *end >= 'a' ? *end - ('a' - 'A') : *end);
		if (!u || !*u || end[1]) {
			n = -1;
		} else {
			for (const char *p = units; p <= u && n >= 0; p++)
				n = n > INT64_MAX / 1024 ? -1 : n * 1024;
		}
	}
	if (n < 0 || errno) {
		fprintf(stderr, "sebsfs: %s=%s: expected a size in bytes, optionally with a"
			" suffix K, M, G or T (1024-based), e.g. 500M or 2G; 0 for no limit\n",
			name, text);
		return -1;
	}
	*out = n;
	return 0;
}

/* A mount point libfuse would refuse gets sebsfs's own one-line error
 * (libfuse's says "fuse: bad mount point"). */
static int validate_mountpoint(const char *mnt)
{
	struct stat st;
	if (stat(mnt, &st) < 0)
		return fail("mount point %s: %s", mnt, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail("mount point %s: %s", mnt, "not a directory");
	return 0;
}

static int parse_values(struct raw_opts *raw, struct sebsfs_options *opts)
{
	opts->builder = strdup(raw->builder ? raw->builder : "auto");
	if (strcmp(opts->builder, "docker") == 0)
		opts->installer = INSTALLER_DOCKER;
	else if (strcmp(opts->builder, "host") == 0 || strcmp(opts->builder, "auto") == 0)
		opts->installer = INSTALLER_HOST; /* auto: main.c asks the daemon */
	else if (strcmp(opts->builder, "none") == 0)
		opts->installer = INSTALLER_NONE;
	else
		return fail("builder=%s%s: expected auto, docker, host or none", opts->builder, "");

	opts->arch = strdup(raw->arch ? raw->arch : "x64");
	if (strcmp(opts->arch, "x64") != 0 && strcmp(opts->arch, "arm64") != 0)
		return fail("arch=%s%s: expected x64 or arm64", opts->arch, "");

	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	opts->jobs = cores > 0 ? (unsigned)cores : 1;
	opts->stat_builds = raw->stat_builds;
	opts->build_timeout = DEFAULT_BUILD_TIMEOUT;
	opts->scrub = DEFAULT_SCRUB;
	if (parse_number("jobs", raw->jobs, 1, 1024, "a number from 1 to 1024", &opts->jobs) ||
	    parse_number("build_timeout", raw->build_timeout, 0, MAX_SECONDS,
			 "seconds, from 0 (no limit) to 604800", &opts->build_timeout) ||
	    parse_number("scrub", raw->scrub, 0, MAX_SECONDS, "seconds, from 0 (never) to 604800",
			 &opts->scrub) ||
	    parse_size("cache_max", raw->cache_max, &opts->cache_max))
		return -1;
	if (raw->dep_layers && strcmp(raw->dep_layers, "off") == 0)
		opts->no_dep_layers = true;
	else if (raw->dep_layers && strcmp(raw->dep_layers, "on") != 0)
		return fail("dep_layers=%s%s: expected on or off", raw->dep_layers, "");
	opts->verify = VERIFY_FIRST;
	if (raw->verify && strcmp(raw->verify, "always") == 0)
		opts->verify = VERIFY_ALWAYS;
	else if (raw->verify && strcmp(raw->verify, "size") == 0)
		opts->verify = VERIFY_SIZE;
	else if (raw->verify && strcmp(raw->verify, "first") != 0)
		return fail("verify=%s%s: expected first, always or size", raw->verify, "");
	opts->input_watch = !raw->input_watch || strcmp(raw->input_watch, "on") == 0;
	if (raw->input_watch && strcmp(raw->input_watch, "on") != 0 &&
	    strcmp(raw->input_watch, "off") != 0)
		return fail("input_watch=%s%s: expected on or off", raw->input_watch, "");
	opts->no_views = raw->views && strcmp(raw->views, "off") == 0;
	if (raw->views && strcmp(raw->views, "on") != 0 && !opts->no_views)
		return fail("views=%s%s: expected on or off", raw->views, "");
	if (raw->repository && (!*raw->repository || strchr(raw->repository, ':') ||
				strchr(raw->repository, '@')))
		return fail("repository=%s%s: expected a repository name without tag or digest",
			    raw->repository, "");
	if (raw->registry && (!*raw->registry || strchr(raw->registry, '@') ||
			      strstr(raw->registry, "://")))
		return fail("registry=%s%s: expected HOST[:PORT][/PATH] (no scheme)", raw->registry, "");
	opts->size_limits_mode = SIZE_LIMITS_WARN;
	if (raw->size_limits && strcmp(raw->size_limits, "strict") == 0)
		opts->size_limits_mode = SIZE_LIMITS_STRICT;
	else if (raw->size_limits && strcmp(raw->size_limits, "off") == 0)
		opts->size_limits_mode = SIZE_LIMITS_OFF;
	else if (raw->size_limits && strcmp(raw->size_limits, "warn") != 0)
		return fail("size_limits=%s%s: expected warn, strict or off", raw->size_limits, "");
	if (size_limits_defaults(&opts->size_limits) < 0)
		return fail("%s%s", "out of memory", "");
	if (raw->size_limits_file) {
		char why[512];
		if (!*raw->size_limits_file)
			return fail("size_limits_file=%s%s: empty; give a JSON file", "", "");
		if (size_limits_load(&opts->size_limits, raw->size_limits_file, why,
				     sizeof(why)) < 0)
			return fail("size_limits_file=%s: %s", raw->size_limits_file, why);
	}
	if (raw->image_tag_prefix && !image_tag_valid(raw->image_tag_prefix))
		return fail("image_tag_prefix=%s%s: expected a Docker tag part:"
			    " [A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 characters",
			    raw->image_tag_prefix, "");
	if (raw->remote_cache_mode &&
	    remote_cache_mode_parse(raw->remote_cache_mode, &opts->remote_cache_mode) < 0)
		return fail("remote_cache_mode=%s%s: expected read, write or readwrite",
			    raw->remote_cache_mode, "");
	if (raw->remote_cache_mode && !raw->remote_cache)
		return fail("remote_cache_mode=%s%s: needs -o remote_cache=REGISTRY/REPOSITORY",
			    raw->remote_cache_mode, "");
	if (raw->remote_cache_certs && !raw->remote_cache)
		return fail("remote_cache_certs=%s%s: needs -o remote_cache=REGISTRY/REPOSITORY",
			    raw->remote_cache_certs, "");
	if (raw->remote_cache_certs && raw->remote_cache_certs[0] != '/')
		return fail("remote_cache_certs=%s%s: expected an absolute path",
			    raw->remote_cache_certs, "");
	if (raw->remote_cache) {
		char *why = NULL;
		struct remote_cache *probe = remote_cache_new(raw->remote_cache,
							      opts->remote_cache_mode,
							      raw->remote_cache_certs, &why);
		remote_cache_free(probe);
		if (!probe) {
			fail("%s%s", why ? why : "remote_cache: out of memory", "");
			free(why);
			return -1;
		}
		opts->remote_cache = strdup(raw->remote_cache);
		opts->remote_cache_certs = raw->remote_cache_certs ? strdup(raw->remote_cache_certs)
								   : NULL;
	}
	opts->repository = raw->repository ? strdup(raw->repository) : NULL;
	opts->registry = raw->registry ? strdup(raw->registry) : NULL;
	opts->image_tag_prefix = raw->image_tag_prefix ? strdup(raw->image_tag_prefix) : NULL;

	/* An empty value would mean the current folder, which the cache's
	 * start-up sweep must never get. */
	if (raw->cache && !*raw->cache)
		return fail("cache=%s%s: empty; give a folder, or leave cache= out for the default",
			    "", "");
	char *cache = raw->cache ? absolute_path(raw->cache) : default_cache_dir();
	if (!cache)
		return fail("%s%s", "no cache directory: set -o cache=DIR, XDG_CACHE_HOME or HOME", "");
	opts->cache_dir = cache;
	char why[512];
	if (cache_dir_check(cache, why, sizeof(why)) < 0)
		return fail("cache=%s: %s", cache, why);
	return 0;
}

int options_parse(int argc, char *argv[], struct fuse_args *args, struct sebsfs_options *opts)
{
	struct raw_opts raw;
	memset(&raw, 0, sizeof(raw));
	memset(opts, 0, sizeof(*opts));
	*args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	int rc = 0;

	if (fuse_opt_parse(args, &raw, sebsfs_opts, opt_proc) < 0) {
		rc = -1; /* libfuse printed why */
	} else if (raw.show_help) {
		usage(argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		rc = 1;
	} else if (raw.show_version) {
		printf("sebsfs version %s\nFUSE library version %s\n", SEBSFS_VERSION, fuse_pkgversion());
		fuse_lowlevel_version();
		rc = 1;
	} else if (raw.n_positional == 0) {
		rc = fail("missing MOUNTPOINT (see %s --help)%s", argv[0], "");
	} else if (raw.n_positional > 2) {
		rc = fail("too many arguments: %s%s (expected [SEBS_ROOT] MOUNTPOINT)",
			  raw.positional[2], "");
	} else {
		const char *root = raw.n_positional == 2 ? raw.positional[0] : default_suite();
		const char *mnt = raw.positional[raw.n_positional - 1];
		rc = validate_root(opts, root);
		if (rc == 0)
			rc = parse_values(&raw, opts);
		if (rc == 0)
			rc = validate_mountpoint(mnt);
		if (rc == 0 && fuse_opt_add_arg(args, mnt) < 0)
			rc = fail("%s%s", "out of memory", "");
		if (rc == 0 && fuse_parse_cmdline(args, &opts->cmd) != 0)
			rc = -1;
		if (rc == 0 && !opts->cmd.mountpoint)
			rc = fail("missing MOUNTPOINT%s%s", "", "");
	}
	for (int i = 0; i < raw.n_positional; i++)
		free(raw.positional[i]);
	free(raw.cache);
	free(raw.builder);
	free(raw.jobs);
	free(raw.arch);
	free(raw.repository);
	free(raw.registry);
	free(raw.image_tag_prefix);
	free(raw.build_timeout);
	free(raw.verify);
	free(raw.scrub);
	free(raw.cache_max);
	free(raw.dep_layers);
	free(raw.input_watch);
	free(raw.views);
	free(raw.size_limits);
	free(raw.size_limits_file);
	free(raw.remote_cache);
	free(raw.remote_cache_mode);
	free(raw.remote_cache_certs);
	return rc;
}

void options_free(struct sebsfs_options *opts)
{
	free(opts->root);
	free(opts->cache_dir);
	free(opts->builder);
	free(opts->arch);
	free(opts->repository);
	free(opts->registry);
	size_limits_free(&opts->size_limits);
	free(opts->image_tag_prefix);
	free(opts->remote_cache);
	free(opts->remote_cache_certs);
	free(opts->cmd.mountpoint);
}
