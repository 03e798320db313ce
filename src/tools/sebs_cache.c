/*
 * sebs_cache.c - sebsfs-sebs-cache: fills a SeBS cache folder with the
 * packages of a sebsfs mount, so that SeBS's deployer finds them current and
 * never rebuilds them.
 *
 * What SeBS reads (sebs/cache.py, sebs/benchmark.py; SeBS is the authority):
 *   <cache>/<bench>/config.json
 *     [platform][language]["code_package"|"containers"][variant]
 *       [gcp: "gen1"|"gen2", code packages only][version][arch]
 *       = {"size", "hash", "location" (relative to <cache>),
 *          "date": {"created", "modified"}, containers: "image-uri", "image-id"}
 *   and the package at <cache>/<location>, copied under the name SeBS gives
 *   it: <bench>.zip (aws, gcp, openwhisk), function.jar (aws java),
 *   benchmark.zip (aws cpp), the folder code/ (azure, local).
 * The entry is current when its hash equals Benchmark.hash_directory of the
 * benchmark's source: the mount's user.sebs.sebs_hash of the package.
 * "size" is what each platform's package_code returns: bytes of the archive
 * (aws, gcp, openwhisk), Benchmark.directory_size in MiB (azure, a float),
 * os.path.getsize of the folder (local); for images, the image's size in MiB.
 *
 * Safety: the package is read once through the mount (which builds it) into a
 * temporary file of the target folder; its sebs_hash is read before and
 * after, and a change in between discards the copy and tries again, so the
 * recorded hash always describes the copied bytes.  Files and folders
 * appear by rename (a folder replaces the old one with RENAME_EXCHANGE), and
 * config.json is rewritten atomically after the package is in place, so an
 * interruption leaves either the old entry (whose hash then no longer
 * matches, and SeBS rebuilds) or the new one, never a half-written file.
 * Entries and keys this program does not write (functions, storage, nosql,
 * other languages, versions and platforms) are kept as they are.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "fsutil.h"
#include "log.h"
#include "zipnorm.h"

#include "config.h"

#define PROG "sebsfs-sebs-cache"
#define SEBS_HASH_XATTR "user.sebs.sebs_hash"
#define IMAGE_TAG_XATTR "user.sebs.image_tag"
#define HASH_LEN 32
#define COPY_ATTEMPTS 3
#define IMAGE_JSON_MAX (1024 * 1024)

struct name_list {
	const char **v;
	size_t n;
};

struct options {
	const char *mount;
	const char *cache;
	struct name_list platforms, runtimes, benchmarks;
	bool containers;
	bool dry_run;
};

/* One runtime folder of the mount, as SeBS names its parts. */
struct runtime {
	const char *platform;
	const char *folder;     /* "python-3.11-arm64" */
	char *language;         /* "python" */
	char *version;          /* "3.11" */
	char *variant;          /* "default", or the folder's variant ("pypy") */
	const char *arch;       /* "x64" | "arm64" */
};

struct counts {
	unsigned written, failed, skipped;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [options] MOUNT SEBS_CACHE_DIR\n"
		"\n"
		"Copies the packages of a sebsfs mount into a SeBS cache folder (the\n"
		"--cache folder of `sebs benchmark invoke`), with the config.json\n"
		"entries SeBS reads, so SeBS deploys them without building.\n"
		"Reading a package through the mount builds it when needed.\n"
		"\n"
		"  --platform P           only platform P (repeatable)\n"
		"  --runtime LANG-VER     only this runtime folder, e.g. python-3.11 or\n"
		"                         python-3.11-arm64 (repeatable)\n"
		"  --benchmark B          only benchmark B (repeatable)\n"
		"  --containers           also the container entries (.image: builds\n"
		"                         the function image); openwhisk has only these\n"
		"  --dry-run              say what would be written; read and write nothing\n"
		"  -h, --help             this text\n"
		"  -V, --version          version\n"
		"\n"
		"Exit status: 0 all packages written, 1 some failed (the others are\n"
		"written), 2 bad arguments or unusable folders.\n");
}

static void tool_log(enum log_level level, const char *msg)
{
	fprintf(stderr, PROG ": %s%s\n", level == LOG_LVL_WARN ? "warning: " : "", msg);
}

static int name_list_add(struct name_list *l, const char *name)
{
	const char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	v[l->n++] = name;
	l->v = v;
	return 0;
}

static bool name_list_allows(const struct name_list *l, const char *name)
{
	if (l->n == 0)
		return true;
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], name))
			return true;
	return false;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && !strcmp(s + ls - lx, suffix);
}

/* SeBS's str(datetime.datetime.now()): local time, microseconds only when
 * not zero. */
static void sebs_now(char *buf, size_t size)
{
	struct timeval tv;
	struct tm tm;
	size_t n;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	if (tv.tv_usec)
		snprintf(buf + n, size - n, ".%06ld", (long)tv.tv_usec);
}

/* The package's SeBS hash: 32 lowercase hex digits, else -EBADMSG. */
static int read_sebs_hash(const char *path, char out[HASH_LEN + 1], char **errmsg)
{
	ssize_t n = getxattr(path, SEBS_HASH_XATTR, out, HASH_LEN + 1);

	if (n < 0) {
		int rc = -errno;

		errmsg_set(errmsg, "cannot read %s: %s", SEBS_HASH_XATTR,
			   rc == -ENODATA ? "no such attribute (a sebsfs mount without SeBS hashes?)"
					  : strerror(-rc));
		return rc;
	}
	if (n != HASH_LEN)
		goto bad;
	out[HASH_LEN] = '\0';
	for (int i = 0; i < HASH_LEN; i++)
		if (!strchr("0123456789abcdef", out[i]) || !out[i])
			goto bad;
	return 0;
bad:
	errmsg_set(errmsg, "%s is not 32 lowercase hex digits", SEBS_HASH_XATTR);
	return -EBADMSG;
}

/* Splits "python-3.11[-<variant>][-arm64|-x64]" (versions have no '-').
 * default_arch: that of runtime folders without an architecture suffix. */
static int parse_runtime(struct runtime *rt, const char *platform, const char *folder,
			 const char *default_arch)
{
	const char *dash = strchr(folder, '-');
	size_t vlen;

	rt->platform = platform;
	rt->folder = folder;
	rt->arch = default_arch;
	if (!dash || dash == folder || !dash[1])
		return -EINVAL;
	vlen = strlen(dash + 1);
	if (has_suffix(dash + 1, "-arm64")) {
		rt->arch = "arm64";
		vlen -= strlen("-arm64");
	} else if (has_suffix(dash + 1, "-x64")) {
		rt->arch = "x64";
		vlen -= strlen("-x64");
	}
	if (vlen == 0)
		return -EINVAL;
	const char *variant = memchr(dash + 1, '-', vlen);
	size_t version_len = variant ? (size_t)(variant - (dash + 1)) : vlen;
	if (version_len == 0 || (variant && version_len + 1 == vlen))
		return -EINVAL;
	rt->language = strndup(folder, (size_t)(dash - folder));
	rt->version = strndup(dash + 1, version_len);
	rt->variant = variant ? strndup(variant + 1, vlen - version_len - 1) : strdup("default");
	if (!rt->language || !rt->version || !rt->variant)
		return -ENOMEM;
	return 0;
}

static void runtime_free(struct runtime *rt)
{
	free(rt->language);
	free(rt->version);
	free(rt->variant);
	rt->language = rt->version = rt->variant = NULL;
}

/* sebsfs shows "-x64" runtime folders only when mounted with arch=arm64:
 * then folders without a suffix are arm64. */
static int mount_default_arch(const char *mount, const char **arch)
{
	char **platforms = NULL;
	size_t np = 0;
	int rc = list_dir_sorted(mount, &platforms, &np);

	*arch = "x64";
	if (rc)
		return rc;
	for (size_t i = 0; i < np && !strcmp(*arch, "x64"); i++) {
		char *dir = path_join(mount, platforms[i]);
		char **rts = NULL;
		size_t nr = 0;

		if (!dir) {
			rc = -ENOMEM;
			break;
		}
		if (path_is_dir(dir) && list_dir_sorted(dir, &rts, &nr) == 0) {
			for (size_t j = 0; j < nr; j++)
				if (has_suffix(rts[j], "-x64"))
					*arch = "arm64";
			str_list_free(rts, nr);
		}
		free(dir);
	}
	str_list_free(platforms, np);
	return rc;
}

/* ---- config.json ---- */

/* obj[key] as an object, created when missing; NULL (with a message) when
 * it exists but is not an object: that file is not SeBS's, and is left
 * alone. */
static json_t *child_object(json_t *obj, const char *key, const char *file, char **errmsg)
{
	json_t *c = json_object_get(obj, key);

	if (c) {
		if (!json_is_object(c)) {
			errmsg_set(errmsg, "%s: \"%s\" is not an object; not changing it", file, key);
			return NULL;
		}
		return c;
	}
	c = json_object();
	if (!c || json_object_set_new(obj, key, c)) {
		errmsg_set(errmsg, "out of memory");
		return NULL;
	}
	return c;
}

/* The language object of a platform, initialised as SeBS's add_code_package
 * does when it is new. */
static json_t *language_object(json_t *config, const struct runtime *rt, const char *file,
			       char **errmsg)
{
	json_t *platform = child_object(config, rt->platform, file, errmsg);
	json_t *lang;

	if (!platform)
		return NULL;
	if (json_object_get(platform, rt->language))
		return child_object(platform, rt->language, file, errmsg);
	lang = json_pack("{s:{}, s:{}, s:{}}", "containers", "code_package", "functions");
	if (!lang || json_object_set_new(platform, rt->language, lang)) {
		errmsg_set(errmsg, "out of memory");
		return NULL;
	}
	return lang;
}

/* Merges fields into the entry at keys below the runtime's language object
 * of <cache>/<bench>/config.json and rewrites the file atomically.  The
 * entry's other keys and its date.created stay; everything else in the
 * file is untouched. */
static int update_config(const char *cache, const char *bench, const struct runtime *rt,
			 const char *const *keys, size_t nkeys, json_t *fields, char **errmsg)
{
	char *dir = path_join(cache, bench), *file = dir ? path_join(dir, "config.json") : NULL;
	json_t *config = NULL, *obj, *entry, *date;
	char now[64], *text = NULL;
	int rc = -ENOMEM;

	if (!file)
		goto out;
	if (path_exists(file)) {
		json_error_t jerr;

		config = json_load_file(file, 0, &jerr);
		if (!config || !json_is_object(config)) {
			errmsg_set(errmsg, "%s: not a JSON object (line %d: %s); not changing it",
				   file, jerr.line, config ? "not an object" : jerr.text);
			rc = -EBADMSG;
			goto out;
		}
	} else {
		config = json_object();
		if (!config)
			goto out;
	}
	rc = -EBADMSG;
	obj = language_object(config, rt, file, errmsg);
	for (size_t i = 0; obj && i < nkeys; i++)
		obj = child_object(obj, keys[i], file, errmsg);
	entry = obj;
	if (!entry)
		goto out;

	sebs_now(now, sizeof(now));
	date = json_object_get(entry, "date");
	if (json_is_object(date) && json_is_string(json_object_get(date, "created"))) {
		if (json_object_set_new(date, "modified", json_string(now)))
			goto oom;
	} else if (json_object_set_new(entry, "date",
				       json_pack("{s:s, s:s}", "created", now, "modified", now))) {
		goto oom;
	}
	if (json_object_update(entry, fields))
		goto oom;

	text = json_dumps(config, JSON_INDENT(2));
	if (!text)
		goto oom;
	rc = write_file_atomic(file, text, strlen(text));
	if (rc)
		errmsg_set(errmsg, "cannot write %s: %s", file, strerror(-rc));
	goto out;
oom:
	rc = -ENOMEM;
	errmsg_set(errmsg, "out of memory");
out:
	free(text);
	json_decref(config);
	free(file);
	free(dir);
	return rc;
}

/* ---- package copies ---- */

/* Reads the package at src (through the mount: this builds it) into a new
 * temporary file of dir; *tmp gets its path.  -EIO from open or read is a
 * failed build. */
static int copy_to_temp(const char *src, const char *dir, char **tmp, off_t *size,
			char **errmsg)
{
	int in = -1, out = -1, rc;
	struct stat st;

	*tmp = path_join(dir, ".sebsfs-tmp-XXXXXX");
	if (!*tmp)
		return -ENOMEM;
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		rc = -errno;
		if (rc == -EIO)
			errmsg_set(errmsg, "build failed (EIO); its log says why: %s.log", src);
		else
			errmsg_set(errmsg, "cannot open %s: %s", src, strerror(-rc));
		goto fail;
	}
	out = mkostemp(*tmp, O_CLOEXEC);
	if (out < 0) {
		rc = -errno;
		errmsg_set(errmsg, "cannot create a temporary file in %s: %s", dir, strerror(-rc));
		goto fail;
	}
	rc = copy_fd(in, out);
	if (rc) {
		errmsg_set(errmsg, "copying %s: %s", src, strerror(-rc));
		goto fail;
	}
	if (fchmod(out, 0644) < 0 || fsync(out) < 0 || fstat(out, &st) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "writing %s: %s", *tmp, strerror(-rc));
		goto fail;
	}
	*size = st.st_size;
	close(in);
	if (close(out) < 0) {
		rc = -errno;
		out = -1;
		errmsg_set(errmsg, "writing %s: %s", *tmp, strerror(-rc));
		goto fail;
	}
	return 0;
fail:
	if (in >= 0)
		close(in);
	if (out >= 0) {
		close(out);
		unlink(*tmp);
	}
	free(*tmp);
	*tmp = NULL;
	return rc;
}

/* A copy of the package whose bytes the hash describes. */
struct package_copy {
	char *tmp;                 /* temporary file in the target folder */
	off_t size;
	char hash[HASH_LEN + 1];
};

static void package_copy_discard(struct package_copy *c)
{
	if (c->tmp) {
		unlink(c->tmp);
		free(c->tmp);
		c->tmp = NULL;
	}
}

/* Copies src into dir with the hash read before and after: a change of the
 * tree in between (the bytes may belong to either hash) discards the copy
 * and tries again. */
static int copy_package(const char *src, const char *dir, struct package_copy *c, char **errmsg)
{
	for (int attempt = 1; attempt <= COPY_ATTEMPTS; attempt++) {
		char after[HASH_LEN + 1];
		int rc = read_sebs_hash(src, c->hash, errmsg);

		if (!rc)
			rc = copy_to_temp(src, dir, &c->tmp, &c->size, errmsg);
		if (!rc)
			rc = read_sebs_hash(src, after, errmsg);
		if (rc) {
			package_copy_discard(c);
			return rc;
		}
		if (!strcmp(after, c->hash))
			return 0;
		package_copy_discard(c);
	}
	errmsg_set(errmsg, "the SeBS tree kept changing while %s was copied (%d attempts)", src,
		   COPY_ATTEMPTS);
	return -EAGAIN;
}

static int publish_file(const char *tmp, const char *dir, const char *name, char **errmsg)
{
	char *dst = path_join(dir, name);
	int rc = 0;

	if (!dst)
		return -ENOMEM;
	if (rename(tmp, dst) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "rename %s to %s: %s", tmp, dst, strerror(-rc));
	} else {
		rc = fsync_dir(dir);
		if (rc)
			errmsg_set(errmsg, "fsync %s: %s", dir, strerror(-rc));
	}
	free(dst);
	return rc;
}

/* fsync of every file and folder below a tree, so that the rename which
 * publishes it cannot outlive a crash with empty files in it. */
static int fsync_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	int fd, rc = 0;

	if (type != FTW_F && type != FTW_D)
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (type == FTW_D ? O_DIRECTORY : 0));
	if (fd < 0 || fsync(fd) < 0)
		rc = errno;
	if (fd >= 0)
		close(fd);
	return rc;
}

static int fsync_tree(const char *dir)
{
	int rc = nftw(dir, fsync_entry, 32, FTW_PHYS);

	return rc > 0 ? -rc : rc < 0 ? -errno : 0;
}

/* Extracts the zip tmp into a new folder of dir and puts it in place as
 * dir/code, swapping it with an existing one in one step. */
static int publish_tree(const char *tmp, const char *dir, char **errmsg)
{
	char *tree = NULL, *code = path_join(dir, "code");
	int fd = -1, rc;

	if (!code)
		return -ENOMEM;
	rc = make_temp_dir(dir, ".sebsfs-tmp-code-", &tree);
	if (rc) {
		errmsg_set(errmsg, "cannot make a folder in %s: %s", dir, strerror(-rc));
		goto out;
	}
	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		errmsg_set(errmsg, "open %s: %s", tmp, strerror(-rc));
		goto out;
	}
	rc = zip_extract(fd, tree, NULL, errmsg);
	if (rc)
		goto out;
	if (chmod(tree, 0755) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "chmod %s: %s", tree, strerror(-rc));
		goto out;
	}
	rc = fsync_tree(tree);
	if (rc) {
		errmsg_set(errmsg, "fsync of %s: %s", tree, strerror(-rc));
		goto out;
	}
	if (renameat2(AT_FDCWD, tree, AT_FDCWD, code, RENAME_EXCHANGE) < 0) {
		if (errno != ENOENT) {
			rc = -errno;
			errmsg_set(errmsg, "cannot swap %s into %s: %s", tree, code, strerror(-rc));
			goto out;
		}
		if (rename(tree, code) < 0) {
			rc = -errno;
			errmsg_set(errmsg, "rename %s to %s: %s", tree, code, strerror(-rc));
			goto out;
		}
	}
	/* after the exchange, tree names the old folder */
	rc = fsync_dir(dir);
	if (rc)
		errmsg_set(errmsg, "fsync %s: %s", dir, strerror(-rc));
out:
	if (fd >= 0)
		close(fd);
	if (tree) {
		int rm = rm_rf(tree);

		if (rm && !rc) {
			rc = rm;
			errmsg_set(errmsg, "cannot remove %s: %s", tree, strerror(-rm));
		}
		free(tree);
	}
	free(code);
	return rc;
}

/* Benchmark.directory_size: the bytes of every file below the folder
 * (symlinks to files count with their target; symlinked folders are not
 * entered), in MiB. */
static uint64_t dir_bytes;   /* nftw passes no user pointer; one walk at a time */

static int add_file_size(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	struct stat target;

	if (type == FTW_F && S_ISREG(st->st_mode))
		dir_bytes += (uint64_t)st->st_size;
	else if (type == FTW_SL && stat(path, &target) == 0 && S_ISREG(target.st_mode))
		dir_bytes += (uint64_t)target.st_size;
	return 0;
}

static int directory_size_mib(const char *dir, double *mib)
{
	dir_bytes = 0;
	if (nftw(dir, add_file_size, 32, FTW_PHYS) != 0)
		return errno ? -errno : -EIO;
	*mib = (double)dir_bytes / 1024.0 / 1024.0;
	return 0;
}

/* ---- one package ---- */

struct target {
	const char *kind;          /* "code_package" | "containers" */
	const char *gcp_suffix;    /* "gen1", "gen2" or NULL */
};

/* The entry's folder, relative to the cache, and its keys below the
 * language object. */
static char *entry_dir(const char *bench, const struct runtime *rt, const struct target *t,
		       const char **keys, size_t *nkeys)
{
	size_t n = 0;

	keys[n++] = t->kind;
	keys[n++] = rt->variant;
	if (t->gcp_suffix)
		keys[n++] = t->gcp_suffix;
	keys[n++] = rt->version;
	keys[n++] = rt->arch;
	*nkeys = n;
	if (t->gcp_suffix)
		return str_printf("%s/%s/%s/%s/%s/%s/%s/%s", bench, rt->platform,
				  rt->language, t->kind, rt->variant, t->gcp_suffix, rt->version,
				  rt->arch);
	return str_printf("%s/%s/%s/%s/%s/%s/%s", bench, rt->platform, rt->language,
			  t->kind, rt->variant, rt->version, rt->arch);
}

/* The name SeBS gives the package file in its cache: the basename of what
 * the platform's package_code returned.  NULL: a folder (code/). */
static char *cached_file_name(const struct runtime *rt, const char *bench)
{
	if (!strcmp(rt->platform, "azure") || !strcmp(rt->platform, "local"))
		return NULL;
	if (!strcmp(rt->platform, "aws") && !strcmp(rt->language, "java"))
		return strdup("function.jar");
	if (!strcmp(rt->platform, "aws") && !strcmp(rt->language, "cpp"))
		return strdup("benchmark.zip");
	return str_printf("%s.zip", bench);
}

/* Creates the entry's folder; 1 (nothing to do) in a dry run, which only
 * says what it would write. */
static int prepare_entry_dir(const struct options *o, const char *src, const char *shown,
			     const char *dir, char **errmsg)
{
	int rc;

	if (o->dry_run) {
		printf("would write %s -> %s\n", src, shown);
		return 1;
	}
	rc = mkdir_p(dir, 0755);
	if (rc)
		errmsg_set(errmsg, "cannot create %s: %s", dir, strerror(-rc));
	return rc;
}

/* Copies a code package into one entry and records it. */
static int write_code_entry(const struct options *o, const struct runtime *rt,
			    const char *bench, const char *src, const struct target *t,
			    char **errmsg)
{
	const char *keys[6];
	size_t nkeys;
	char *rel = entry_dir(bench, rt, t, keys, &nkeys);
	char *dir = rel ? path_join(o->cache, rel) : NULL;
	char *name = cached_file_name(rt, bench), *location = NULL, *abs = NULL;
	struct package_copy c = { 0 };
	json_t *fields = NULL;
	int rc = -ENOMEM;

	if (!dir || (!name && strcmp(rt->platform, "azure") && strcmp(rt->platform, "local")))
		goto out;
	location = name ? path_join(rel, name) : path_join(rel, "code");
	if (!location)
		goto out;
	rc = prepare_entry_dir(o, src, location, dir, errmsg);
	if (rc) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	rc = copy_package(src, dir, &c, errmsg);
	if (rc)
		goto out;

	if (name) {
		fields = json_pack("{s:I, s:s, s:s}", "size", (json_int_t)c.size, "hash", c.hash,
				   "location", location);
		rc = fields ? publish_file(c.tmp, dir, name, errmsg) : -ENOMEM;
		if (!rc) {
			free(c.tmp);
			c.tmp = NULL;
		}
	} else {
		struct stat st;
		double mib = 0;

		rc = publish_tree(c.tmp, dir, errmsg);
		abs = path_join(o->cache, location);
		if (!rc && !abs)
			rc = -ENOMEM;
		if (rc)
			goto out;
		if (!strcmp(rt->platform, "azure")) {
			rc = directory_size_mib(abs, &mib);
			fields = json_pack("{s:f, s:s, s:s}", "size", mib, "hash", c.hash,
					   "location", location);
		} else {
			/* local's package_code: os.path.getsize of the folder */
			rc = stat(abs, &st) < 0 ? -errno : 0;
			fields = json_pack("{s:I, s:s, s:s}", "size", (json_int_t)st.st_size,
					   "hash", c.hash, "location", location);
		}
		if (rc)
			errmsg_set(errmsg, "cannot measure %s: %s", abs, strerror(-rc));
	}
	if (!rc && !fields)
		rc = -ENOMEM;
	if (!rc)
		rc = update_config(o->cache, bench, rt, keys, nkeys, fields, errmsg);
	if (!rc)
		printf("wrote %s -> %s (hash %s)\n", src, location, c.hash);
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory");
	package_copy_discard(&c);
	json_decref(fields);
	free(abs);
	free(location);
	free(name);
	free(dir);
	free(rel);
	return rc;
}

static int do_code_package(const struct options *o, const struct runtime *rt,
			   const char *bench, const char *src, char **errmsg)
{
	/* gcp keys its packages by the function generation; both deploy the
	 * same zip */
	static const struct target gcp[] = { { "code_package", "gen1" },
					     { "code_package", "gen2" } };
	static const struct target plain = { "code_package", NULL };

	if (!strcmp(rt->platform, "gcp")) {
		for (size_t i = 0; i < sizeof(gcp) / sizeof(gcp[0]); i++) {
			int rc = write_code_entry(o, rt, bench, src, &gcp[i], errmsg);

			if (rc)
				return rc;
		}
		return 0;
	}
	return write_code_entry(o, rt, bench, src, &plain, errmsg);
}

/* Reads the .image through the mount (this builds the image) and parses
 * its JSON. */
static int read_image(const char *path, json_t **doc, char **errmsg)
{
	char *text = NULL;
	size_t len = 0;
	json_error_t jerr;
	int rc = read_file(path, &text, &len);

	if (rc == -EIO)
		errmsg_set(errmsg, "image build failed (EIO); its log says why: %s.log", path);
	else if (rc)
		errmsg_set(errmsg, "cannot read %s: %s", path, strerror(-rc));
	if (rc)
		return rc;
	*doc = len <= IMAGE_JSON_MAX ? json_loadb(text, len, 0, &jerr) : NULL;
	free(text);
	if (!*doc || !json_is_string(json_object_get(*doc, "image")) ||
	    !json_is_string(json_object_get(*doc, "id"))) {
		errmsg_set(errmsg, "%s: not a sebsfs image description", path);
		json_decref(*doc);
		*doc = NULL;
		return -EBADMSG;
	}
	return 0;
}

/* The image URI SeBS records: the name the image was pushed (or tagged)
 * under; gcp resolves it to the pushed digest. */
static char *image_uri(const struct runtime *rt, const char *path, json_t *doc)
{
	const char *digest = json_string_value(json_object_get(doc, "digest"));
	const char *registry = json_string_value(json_object_get(doc, "registry"));
	char tag[1024];
	ssize_t n;

	if (!strcmp(rt->platform, "gcp") && digest)
		return strdup(digest);
	n = getxattr(path, IMAGE_TAG_XATTR, tag, sizeof(tag) - 1);
	if (n > 0) {
		tag[n] = '\0';
		return strdup(tag);
	}
	if (registry)
		return str_printf("%s/%s", registry, json_string_value(json_object_get(doc, "image")));
	return strdup(json_string_value(json_object_get(doc, "image")));
}

static int do_image(const struct options *o, const struct runtime *rt, const char *bench,
		    const char *src, char **errmsg)
{
	static const struct target t = { "containers", NULL };
	const char *keys[6];
	size_t nkeys;
	char *rel = entry_dir(bench, rt, &t, keys, &nkeys);
	char *dir = rel ? path_join(o->cache, rel) : NULL;
	bool openwhisk = !strcmp(rt->platform, "openwhisk");
	char *zip_src = NULL, *zip_name = NULL, *location = NULL, *uri = NULL;
	char before[HASH_LEN + 1], after[HASH_LEN + 1];
	struct package_copy c = { 0 };
	json_t *doc = NULL, *fields = NULL;
	int rc = -ENOMEM;

	if (!dir)
		goto out;
	if (openwhisk) {
		/* OpenWhisk deploys a small zip beside the image; SeBS keeps it
		 * in the containers entry */
		zip_name = str_printf("%s.zip", bench);
		zip_src = zip_name ? str_printf("%.*s%s", (int)(strlen(src) - strlen(".image")),
						src, ".zip") : NULL;
		location = zip_name ? path_join(rel, zip_name) : NULL;
		if (!location || !zip_src)
			goto out;
	}
	rc = prepare_entry_dir(o, src, location ? location : rel, dir, errmsg);
	if (rc) {
		rc = rc > 0 ? 0 : rc;
		goto out;
	}
	for (int attempt = 1;; attempt++) {
		rc = read_sebs_hash(src, before, errmsg);
		if (!rc)
			rc = read_image(src, &doc, errmsg);
		if (!rc && openwhisk) {
			rc = copy_package(zip_src, dir, &c, errmsg);
			if (!rc && strcmp(c.hash, before)) {
				errmsg_set(errmsg, "%s and %s have different SeBS hashes", src, zip_src);
				rc = -EBADMSG;
			}
		}
		if (!rc)
			rc = read_sebs_hash(src, after, errmsg);
		if (rc)
			goto out;
		if (!strcmp(before, after))
			break;
		package_copy_discard(&c);
		json_decref(doc);
		doc = NULL;
		if (attempt == COPY_ATTEMPTS) {
			errmsg_set(errmsg, "the SeBS tree kept changing while %s was read", src);
			rc = -EAGAIN;
			goto out;
		}
	}
	uri = image_uri(rt, src, doc);
	if (!uri) {
		rc = -ENOMEM;
		goto out;
	}
	if (openwhisk)
		fields = json_pack("{s:I, s:s, s:s, s:s, s:s}", "size", (json_int_t)c.size,
				   "hash", before, "location", location, "image-uri", uri,
				   "image-id", json_string_value(json_object_get(doc, "id")));
	else
		/* container.py's build_base_image: the image's size in MiB */
		fields = json_pack("{s:f, s:s, s:s, s:s}", "size",
				   json_number_value(json_object_get(doc, "size")) / 1024.0 / 1024.0,
				   "hash", before, "image-uri", uri,
				   "image-id", json_string_value(json_object_get(doc, "id")));
	if (!fields) {
		rc = -ENOMEM;
		goto out;
	}
	if (openwhisk) {
		rc = publish_file(c.tmp, dir, zip_name, errmsg);
		if (rc)
			goto out;
		free(c.tmp);
		c.tmp = NULL;
	}
	rc = update_config(o->cache, bench, rt, keys, nkeys, fields, errmsg);
	if (!rc)
		printf("wrote %s -> %s (hash %s, image %s)\n", src, location ? location : rel,
		       before, uri);
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory");
	package_copy_discard(&c);
	json_decref(fields);
	json_decref(doc);
	free(uri);
	free(location);
	free(zip_src);
	free(zip_name);
	free(dir);
	free(rel);
	return rc;
}

/* ---- the walk ---- */

/* The benchmark a file of a runtime folder is the package of, and whether
 * it is an image; NULL for every other file. */
static char *package_benchmark(const struct runtime *rt, const char *file, bool *image)
{
	static const char *const code_suffixes[] = { ".zip", ".jar" };

	*image = has_suffix(file, ".image");
	if (*image)
		return strndup(file, strlen(file) - strlen(".image"));
	for (size_t i = 0; i < 2; i++)
		if (has_suffix(file, code_suffixes[i]) && strlen(file) > strlen(code_suffixes[i]))
			return strndup(file, strlen(file) - strlen(code_suffixes[i]));
	return NULL;
}

static void do_runtime(const struct options *o, const struct runtime *rt, const char *dir,
		       struct counts *counts)
{
	char **files = NULL;
	size_t n = 0;
	int rc = list_dir_sorted(dir, &files, &n);

	if (rc) {
		log_err("cannot list %s: %s", dir, strerror(-rc));
		counts->failed++;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		bool image;
		char *bench = package_benchmark(rt, files[i], &image);
		char *src = bench ? path_join(dir, files[i]) : NULL;
		char *errmsg = NULL;

		if (!bench || !name_list_allows(&o->benchmarks, bench) || !src ||
		    !path_is_file(src)) {
			free(bench);
			free(src);
			continue;
		}
		if (image && !o->containers) {
			rc = 1;
		} else if (image) {
			rc = do_image(o, rt, bench, src, &errmsg);
		} else if (!strcmp(rt->platform, "openwhisk")) {
			/* its zip is recorded with the image, under --containers */
			rc = 1;
		} else {
			rc = do_code_package(o, rt, bench, src, &errmsg);
		}
		if (rc < 0) {
			log_err("%s: %s", src, errmsg ? errmsg : strerror(-rc));
			counts->failed++;
		} else if (rc > 0) {
			counts->skipped++;
		} else {
			counts->written++;
		}
		free(errmsg);
		free(bench);
		free(src);
	}
	str_list_free(files, n);
}

static int run(const struct options *o, struct counts *counts)
{
	const char *default_arch;
	char **platforms = NULL;
	size_t np = 0;
	int rc = mount_default_arch(o->mount, &default_arch);

	if (!rc)
		rc = list_dir_sorted(o->mount, &platforms, &np);
	if (rc) {
		log_err("cannot list %s: %s", o->mount, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < np; i++) {
		char *pdir = path_join(o->mount, platforms[i]);
		char **rts = NULL;
		size_t nr = 0;

		if (!pdir || !name_list_allows(&o->platforms, platforms[i]) || !path_is_dir(pdir)) {
			free(pdir);
			continue;
		}
		rc = list_dir_sorted(pdir, &rts, &nr);
		if (rc) {
			log_err("cannot list %s: %s", pdir, strerror(-rc));
			counts->failed++;
		}
		for (size_t j = 0; j < nr; j++) {
			struct runtime rt = { 0 };
			char *rdir = path_join(pdir, rts[j]);

			if (rdir && name_list_allows(&o->runtimes, rts[j]) && path_is_dir(rdir)) {
				if (parse_runtime(&rt, platforms[i], rts[j], default_arch) == 0)
					do_runtime(o, &rt, rdir, counts);
				else
					log_warn("%s: not a <language>-<version> folder; skipped", rdir);
			}
			runtime_free(&rt);
			free(rdir);
		}
		str_list_free(rts, nr);
		free(pdir);
	}
	str_list_free(platforms, np);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "platform", required_argument, NULL, 'p' },
		{ "runtime", required_argument, NULL, 'r' },
		{ "benchmark", required_argument, NULL, 'b' },
		{ "containers", no_argument, NULL, 'c' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct options o = { 0 };
	struct counts counts = { 0 };
	int c, rc = 0, status = 2;

	log_set_backend(tool_log);
	while ((c = getopt_long(argc, argv, "hV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			rc = name_list_add(&o.platforms, optarg);
			break;
		case 'r':
			rc = name_list_add(&o.runtimes, optarg);
			break;
		case 'b':
			rc = name_list_add(&o.benchmarks, optarg);
			break;
		case 'c':
			o.containers = true;
			break;
		case 'n':
			o.dry_run = true;
			break;
		case 'h':
			usage(stdout);
			status = 0;
			goto out;
		case 'V':
			printf(PROG " %s\n", SEBSFS_VERSION);
			status = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
		if (rc) {
			log_err("out of memory");
			goto out;
		}
	}
	if (argc - optind != 2) {
		log_err("expected MOUNT and SEBS_CACHE_DIR (see --help)");
		goto out;
	}
	o.mount = argv[optind];
	o.cache = argv[optind + 1];
	if (!path_is_dir(o.mount)) {
		log_err("%s: not a folder (the mount point of a sebsfs mount)", o.mount);
		goto out;
	}
	if (!o.dry_run) {
		rc = mkdir_p(o.cache, 0755);
		if (rc || !path_is_dir(o.cache)) {
			log_err("cannot create the cache folder %s: %s", o.cache,
				strerror(rc ? -rc : ENOTDIR));
			goto out;
		}
	}
	if (run(&o, &counts))
		goto out;
	fflush(stdout);
	fprintf(stderr, PROG ": %u packages %s, %u failed, %u skipped%s\n", counts.written,
		o.dry_run ? "to write (dry run: nothing written)" : "written", counts.failed,
		counts.skipped,
		counts.skipped && !o.containers ? " (images and openwhisk need --containers)" : "");
	status = counts.failed ? 1 : 0;
out:
	free(o.platforms.v);
	free(o.runtimes.v);
	free(o.benchmarks.v);
	return status;
}
