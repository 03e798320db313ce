/*
 * catalog.c - reads a SeBS tree (systems.json + benchmark config.json files)
 * into the immutable snapshot described in catalog.h.
 *
 * The real systems.json is hand-edited and uneven (see SEBS.md "Quirks"), so
 * every field is type-checked and anything unexpected below the top level is
 * skipped with a warning rather than failing the whole load: a broken java
 * entry must not take python packages down with it.
 *
 * Arrays are built completely before the package list is made, because
 * packages hold pointers into them; nothing is reallocated afterwards.
 * Every list is sorted with strcmp so lookups can use bsearch.
 */
#include "catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

/* Order matters only for readability of logs; runtimes are sorted anyway. */
static const char *const served_languages[] = { "cpp", "java", "nodejs", "python" };

/* What SeBS builds of a language on a platform (SEBS.md 5 and 9; its
 * package_code functions): the code package's suffix, or NULL when the
 * platform deploys the language as a function image only.  python and
 * nodejs have a zip everywhere.  A (platform, language) pair not listed
 * here for java or cpp is one SeBS cannot package (its package_code raises
 * or has no case for it): not served. */
static const struct {
	const char *platform, *language, *suffix;
} compiled_packages[] = {
	/* aws deploys the jar Maven made (function.jar) as it is */
	{ "aws", "java", ".jar" },
	{ "azure", "java", ".zip" },
	{ "gcp", "java", ".zip" },
	/* SeBS runs Maven inside Dockerfile.function: no code package */
	{ "openwhisk", "java", NULL },
	{ "aws", "cpp", ".zip" },
};

/* Is language served on platform; *suffix gets its code package's suffix. */
static bool language_served_on(const char *platform, const char *language, const char **suffix)
{
	if (strcmp(language, "python") == 0 || strcmp(language, "nodejs") == 0) {
		*suffix = ".zip";
		return true;
	}
	for (size_t i = 0; i < sizeof(compiled_packages) / sizeof(compiled_packages[0]); i++)
		if (strcmp(compiled_packages[i].platform, platform) == 0 &&
		    strcmp(compiled_packages[i].language, language) == 0) {
			*suffix = compiled_packages[i].suffix;
			return true;
		}
	return false;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Warnings about the tree are logged when they appear, not again by every
 * later load of the same tree (the mount's tree watcher and every build load
 * it): a load logs a warning unless the previous load to finish had the same
 * one.  So a problem is one log line, and it is logged again once it was
 * gone for a load.
 */
struct warn_set {
	uint64_t *hashes;
	size_t n, cap;
};
static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct warn_set warn_previous;       /* protected by warn_lock */
static __thread struct warn_set *warn_current;

static void tree_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void tree_warn(const char *fmt, ...)
{
	char msg[2048];
	uint64_t h = 1469598103934665603ULL;
	bool seen = false;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (const char *p = msg; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	struct warn_set *cur = warn_current;
	if (cur && cur->n == cur->cap) {
		size_t cap = cur->cap ? cur->cap * 2 : 16;
		uint64_t *nh = realloc(cur->hashes, cap * sizeof(*nh));
		if (nh) {
			cur->hashes = nh;
			cur->cap = cap;
		}
	}
	if (cur && cur->n < cur->cap)
		cur->hashes[cur->n++] = h;
	pthread_mutex_lock(&warn_lock);
	for (size_t i = 0; i < warn_previous.n && !seen; i++)
		seen = warn_previous.hashes[i] == h;
	pthread_mutex_unlock(&warn_lock);
	if (!seen)
		log_warn("%s", msg);
}

/* The load that set cur ended: its warnings are the ones not to repeat. */
static void warn_load_done(struct warn_set *cur)
{
	pthread_mutex_lock(&warn_lock);
	free(warn_previous.hashes);
	warn_previous = *cur;
	pthread_mutex_unlock(&warn_lock);
	warn_current = NULL;
}

/* Names become path components of the mount, so they must be harmless and,
 * with the longest suffix sebsfs adds to them, fit in NAME_MAX. */
static bool valid_name_max(const char *s, size_t max)
{
	if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strlen(s) > max)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '+' || c == '-'))
			return false;
	}
	return true;
}

static bool valid_name(const char *s)
{
	return valid_name_max(s, NAME_MAX);
}

/* A benchmark's longest file name is "<name>.image.log". */
#define BENCHMARK_NAME_MAX (NAME_MAX - sizeof(".image.log") + 1)

/* s made safe for a one-line log message or a .log file: bytes outside
 * printable ASCII become \xNN, and the copy is cut to fit buf. */
static const char *printable(const char *s, char *buf, size_t len)
{
	size_t used = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && used + 5 < len; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\')
			buf[used++] = (char)*p;
		else
			used += (size_t)snprintf(buf + used, len - used, "\\x%02x", *p);
	}
	buf[used] = '\0';
	return buf;
}

static bool is_served_language(const char *lang)
{
	for (size_t i = 0; i < sizeof(served_languages) / sizeof(served_languages[0]); i++)
		if (strcmp(lang, served_languages[i]) == 0)
			return true;
	return false;
}

static char *dup_json_string(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? strdup(s) : NULL;
}

static bool str_in_list(char **list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* Appends a copy of s unless already present.  0 or -ENOMEM. */
static int str_list_add_unique(char ***list, size_t *n, const char *s)
{
	char **nl;
	char *copy;

	if (str_in_list(*list, *n, s))
		return 0;
	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	nl = realloc(*list, (*n + 1) * sizeof(*nl));
	if (!nl) {
		free(copy);
		return -ENOMEM;
	}
	nl[(*n)++] = copy;
	*list = nl;
	return 0;
}

/* Largest systems.json or config.json read: SeBS's are a few KiB, and a
 * tree is read again at every change, so a huge or endless file (a FIFO, a
 * link to /dev/zero) must not stall or swell the daemon. */
#define MAX_JSON_FILE (4 << 20)

/* Reads the regular file at path whole (one read for a file of the size
 * fstat says; jansson's own json_loadfd reads one byte per call).  Returns 0
 * or -errno (-EINVAL: not a regular file, -EFBIG: over MAX_JSON_FILE). */
static int read_json_text(const char *path, char **text, size_t *len)
{
	struct stat st;
	int rc = 0;
	*text = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode))
		rc = -EINVAL;
	else if (st.st_size > MAX_JSON_FILE)
		rc = -EFBIG;
	char *buf = rc ? NULL : malloc((size_t)st.st_size + 1);
	if (!rc && !buf)
		rc = -ENOMEM;
	size_t have = 0;
	while (!rc && have <= (size_t)st.st_size) {
		/* one byte more than fstat said, to see a file that grew */
		ssize_t n = read(fd, buf + have, (size_t)st.st_size + 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		else if (n == 0)
			break;
		else
			have += (size_t)n;
	}
	if (!rc && have > (size_t)st.st_size)
		rc = -EAGAIN; /* written to while read: the next re-scan sees it whole */
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	*text = buf;
	*len = have;
	return 0;
}

/*
 * Parses a JSON file.  On failure returns NULL and puts "<path>: <reason>"
 * (with jansson's line/column for syntax errors) in msg.  jansson quotes the
 * text near a syntax error, which may hold any byte: it is made printable.
 */
static json_t *load_json_file(const char *path, char *msg, size_t msglen)
{
	char near[256];
	json_error_t jerr;
	char *text;
	size_t len = 0;

	int rc = read_json_text(path, &text, &len);
	if (rc) {
		set_err(msg, msglen, "%s: %s", path,
			rc == -EINVAL ? "not a regular file" :
			rc == -EFBIG ? "larger than 4 MiB" :
			rc == -EAGAIN ? "changed while being read" : strerror(-rc));
		return NULL;
	}
	json_t *root = json_loadb(text, len, 0, &jerr);
	free(text);
	if (!root) {
		printable(jerr.text, near, sizeof(near));
		if (jerr.line > 0)
			set_err(msg, msglen, "%s: line %d column %d: %s", path,
				jerr.line, jerr.column, near);
		else
			set_err(msg, msglen, "%s: %s", path, near);
	}
	return root;
}

static void runtime_clear(struct cat_runtime *rt)
{
	free(rt->language);
	free(rt->version);
	free(rt->arch);
	free(rt->variant);
	free(rt->dirname);
	free(rt->base_image);
}

static void platform_clear(struct cat_platform *p)
{
	free(p->name);
	for (size_t i = 0; i < p->n_runtimes; i++)
		runtime_clear(&p->runtimes[i]);
	free(p->runtimes);
	str_list_free(p->deployments, p->n_deployments);
}

static void broken_clear(struct cat_broken *b)
{
	free(b->name);
	free(b->group);
	free(b->path);
	free(b->reason);
}

static void benchmark_clear(struct cat_benchmark *b)
{
	free(b->name);
	free(b->group);
	free(b->path);
	str_list_free(b->languages, b->n_languages);
	str_list_free(b->variants, b->n_variants);
	str_list_free(b->modules, b->n_modules);
	str_list_free(b->cpp_dependencies, b->n_cpp_dependencies);
	free(b->cpp_dependencies_problem);
}

void catalog_free(struct catalog *cat)
{
	if (!cat)
		return;
	free(cat->root);
	free(cat->default_arch);
	free(cat->docker_repository);
	free(cat->sebs_version);
	free(cat->previous_major_version);
	for (size_t i = 0; i < cat->n_platforms; i++)
		platform_clear(&cat->platforms[i]);
	free(cat->platforms);
	for (size_t i = 0; i < cat->n_benchmarks; i++)
		benchmark_clear(&cat->benchmarks[i]);
	free(cat->benchmarks);
	for (size_t i = 0; i < cat->n_broken; i++)
		broken_clear(&cat->broken[i]);
	free(cat->broken);
	free(cat->packages);
	json_decref(cat->systems);
	json_decref(cat->empty_array);
	free(cat);
}

/* ---- platforms and runtimes ------------------------------------------- */

static int runtime_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cat_runtime *)a)->dirname,
		      ((const struct cat_runtime *)b)->dirname);
}

static int platform_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cat_platform *)a)->name,
		      ((const struct cat_platform *)b)->name);
}

/* Adds every version of base_images[arch] of one language, of variant
 * (NULL: the default one).  0 or -ENOMEM. */
static int add_runtimes(struct cat_platform *p, const char *sysfile, const char *lang,
			const json_t *lcfg, const char *arch, const char *variant,
			const char *suffix)
{
	const json_t *images = json_object_get(json_object_get(lcfg, "base_images"), arch);
	const char *version;
	json_t *image;

	if (!json_is_object(images))
		return 0;
	json_object_foreach((json_t *)images, version, image) {
		struct cat_runtime rt = { 0 };
		struct cat_runtime *nr;
		char shown[512];

		/* the folder "<lang>-<version>[-<variant>]<suffix>" must fit in NAME_MAX */
		if (!valid_name_max(version, NAME_MAX - strlen(lang) - 1 - strlen(suffix) -
					     (variant ? strlen(variant) + 1 : 0))) {
			tree_warn("%s: %s.languages.%s.base_images.%s: invalid version name \"%s\", skipped",
				 sysfile, p->name, lang, arch, printable(version, shown, sizeof(shown)));
			continue;
		}
		if (!json_is_string(image)) {
			tree_warn("%s: %s.languages.%s.base_images.%s.%s: not a string, skipped",
				 sysfile, p->name, lang, arch, version);
			continue;
		}
		rt.language = strdup(lang);
		rt.version = strdup(version);
		rt.arch = strdup(arch);
		rt.variant = variant ? strdup(variant) : NULL;
		rt.dirname = variant ? str_printf("%s-%s-%s%s", lang, version, variant, suffix)
				     : str_printf("%s-%s%s", lang, version, suffix);
		rt.base_image = strdup(json_string_value(image));
		language_served_on(p->name, lang, &rt.package_suffix);
		nr = realloc(p->runtimes, (p->n_runtimes + 1) * sizeof(*nr));
		if (!rt.language || !rt.version || !rt.arch || !rt.dirname ||
		    !rt.base_image || (variant && !rt.variant) || !nr) {
			runtime_clear(&rt);
			if (nr)
				p->runtimes = nr;
			return -ENOMEM;
		}
		p->runtimes = nr;
		/* A version "3.11-arm64" of the default architecture and "3.11" of
		 * the other one name the same folder: the first one keeps it. */
		size_t same = 0;
		while (same < p->n_runtimes && strcmp(p->runtimes[same].dirname, rt.dirname) != 0)
			same++;
		if (same < p->n_runtimes) {
			tree_warn("%s: %s.languages.%s.base_images.%s.%s: folder %s is already taken by base_images.%s.%s, skipped",
				 sysfile, p->name, lang, arch, version, rt.dirname,
				 p->runtimes[same].arch, p->runtimes[same].version);
			runtime_clear(&rt);
			continue;
		}
		p->runtimes[p->n_runtimes++] = rt;
	}
	return 0;
}

static bool json_array_has_string(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach((json_t *)arr, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

/* The runtimes of the variants "variant_images" declares (SeBS's docs:
 * the platform has run images for them): python and nodejs only, the
 * languages whose packages SeBS builds from variant code.  0 or -ENOMEM. */
static int add_variant_runtimes(struct cat_platform *p, const char *sysfile, const char *lang,
				const json_t *lcfg, const char *default_arch,
				const char *other_arch)
{
	const json_t *names = json_object_get(lcfg, "variant_images");
	size_t i;
	json_t *v;
	int rc = 0;

	if (!names)
		return 0;
	if (!json_is_array(names) || (strcmp(lang, "python") != 0 && strcmp(lang, "nodejs") != 0)) {
		tree_warn("%s: %s.languages.%s.variant_images: %s, ignored", sysfile, p->name, lang,
			  json_is_array(names) ? "SeBS has variants of python and nodejs only"
					       : "not an array");
		return 0;
	}
	json_array_foreach((json_t *)names, i, v) {
		const char *name = json_string_value(v);
		char shown[128], suffix[16];

		/* "-x64"/"-arm64" end the folder name of the other architecture */
		if (!name || !valid_name(name) || strcmp(name, "default") == 0 ||
		    strcmp(name, "x64") == 0 || strcmp(name, "arm64") == 0) {
			tree_warn("%s: %s.languages.%s.variant_images[%zu]: %s is not a variant name"
				  " (allowed: A-Z a-z 0-9 . _ + -, not default, x64 or arm64), skipped",
				  sysfile, p->name, lang, i,
				  name ? printable(name, shown, sizeof(shown)) : "a non-string");
			continue;
		}
		rc = add_runtimes(p, sysfile, lang, lcfg, default_arch, name, "");
		if (rc == 0 && other_arch) {
			snprintf(suffix, sizeof(suffix), "-%s", other_arch);
			rc = add_runtimes(p, sysfile, lang, lcfg, other_arch, name, suffix);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Fills p from its systems.json entry.  0 or -ENOMEM. */
static int load_platform(struct cat_platform *p, const char *sysfile, const json_t *cfg,
			 const char *default_arch)
{
	const char *other_arch = strcmp(default_arch, "x64") == 0 ? "arm64" : "x64";
	const json_t *langs = json_object_get(cfg, "languages");
	const json_t *deps = json_object_get(cfg, "deployments");
	bool other = json_array_has_string(json_object_get(cfg, "architecture"), other_arch);
	char suffix[16];
	size_t i;
	json_t *v;
	int rc;

	snprintf(suffix, sizeof(suffix), "-%s", other_arch);
	if (langs && !json_is_object(langs))
		tree_warn("%s: %s.languages is not an object, platform has no runtimes",
			 sysfile, p->name);
	for (i = 0; i < sizeof(served_languages) / sizeof(served_languages[0]); i++) {
		const char *lang = served_languages[i];
		const json_t *lcfg = json_object_get(langs, lang);
		const char *suffix_unused;

		if (!lcfg)
			continue;
		if (!language_served_on(p->name, lang, &suffix_unused)) {
			tree_warn("%s: %s.languages.%s: SeBS does not package %s for %s, not served",
				  sysfile, p->name, lang, lang, p->name);
			continue;
		}
		if (!json_is_object(lcfg)) {
			tree_warn("%s: %s.languages.%s is not an object, skipped",
				 sysfile, p->name, lang);
			continue;
		}
		rc = add_runtimes(p, sysfile, lang, lcfg, default_arch, NULL, "");
		if (rc == 0 && other)
			rc = add_runtimes(p, sysfile, lang, lcfg, other_arch, NULL, suffix);
		if (rc == 0)
			rc = add_variant_runtimes(p, sysfile, lang, lcfg, default_arch,
						  other ? other_arch : NULL);
		if (rc < 0)
			return rc;
	}
	if (p->n_runtimes > 1)
		qsort(p->runtimes, p->n_runtimes, sizeof(*p->runtimes), runtime_cmp);

	json_array_foreach((json_t *)deps, i, v) {
		if (!json_is_string(v))
			continue;
		if (str_list_add_unique(&p->deployments, &p->n_deployments,
					json_string_value(v)) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int load_platforms(struct catalog *cat, const char *sysfile)
{
	size_t n = json_object_size(cat->systems);
	const char *key;
	json_t *val;

	cat->platforms = calloc(n ? n : 1, sizeof(*cat->platforms));
	if (!cat->platforms)
		return -ENOMEM;
	json_object_foreach(cat->systems, key, val) {
		struct cat_platform *p;

		if (strcmp(key, "general") == 0)
			continue;
		if (!valid_name(key)) {
			char shown[512];

			tree_warn("%s: invalid platform name \"%s\", skipped", sysfile,
				 printable(key, shown, sizeof(shown)));
			continue;
		}
		if (!json_is_object(val)) {
			tree_warn("%s: platform \"%s\" is not an object, skipped", sysfile, key);
			continue;
		}
		p = &cat->platforms[cat->n_platforms++];
		p->config = val;
		p->name = strdup(key);
		if (!p->name || load_platform(p, sysfile, val, cat->default_arch) < 0)
			return -ENOMEM;
	}
	if (cat->n_platforms > 1)
		qsort(cat->platforms, cat->n_platforms, sizeof(*cat->platforms), platform_cmp);
	return 0;
}

/* ---- benchmarks ------------------------------------------------------- */

static int benchmark_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cat_benchmark *)a)->name,
		      ((const struct cat_benchmark *)b)->name);
}

/* Records the named variants of entry idx (language lang) in b as
 * "<lang>/<variant>"; a name that cannot be a folder name is skipped with a
 * log line.  0 or -ENOMEM. */
static int add_variants(struct cat_benchmark *b, const char *cfgpath, size_t idx,
			const char *lang, const json_t *variants)
{
	size_t i;
	const json_t *v;

	json_array_foreach(variants, i, v) {
		const char *name = json_string_value(v);
		char shown[128];

		if (name && strcmp(name, "default") == 0)
			continue;
		if (!name || !valid_name(name)) {
			tree_warn("%s: languages[%zu] (%s): variants[%zu] %s is not a variant name, ignored",
				  cfgpath, idx, lang, i,
				  name ? printable(name, shown, sizeof(shown)) : "(not a string)");
			continue;
		}
		char *entry = str_printf("%s/%s", lang, name);
		int rc = entry ? str_list_add_unique(&b->variants, &b->n_variants, entry) : -ENOMEM;
		free(entry);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* One entry of config.json "languages": the language it names, or NULL with
 * the reason it is ignored in problem. */
static const char *language_of_entry(const char *cfgpath, size_t idx, const json_t *entry,
				     char *problem, size_t len)
{
	const char *lang;
	const json_t *variants;

	if (json_is_string(entry))
		return json_string_value(entry);
	if (!json_is_object(entry)) {
		snprintf(problem, len, "languages[%zu] is neither a string nor an object", idx);
		return NULL;
	}
	lang = json_string_value(json_object_get(entry, "language"));
	if (!lang) {
		snprintf(problem, len, "languages[%zu] has no \"language\" string", idx);
		return NULL;
	}
	variants = json_object_get(entry, "variants");
	if (json_is_array(variants) && !json_array_has_string(variants, "default")) {
		/* a deliberate choice of the benchmark, not a mistake */
		tree_warn("%s: languages[%zu] (%s) has no \"default\" variant, ignored",
			 cfgpath, idx, lang);
		return NULL;
	}
	return lang;
}

/*
 * Reads one benchmark folder (its name already checked) into b.  Returns 0
 * when loaded; 1 when its config.json cannot be used (cannot be read, is not
 * JSON, has no "languages" array, a "modules" that is not an array, or only
 * invalid language entries): then *reason is a malloc'd one-line
 * explanation, already logged; -ENOMEM.
 */
/* "cpp_dependencies": names in the benchmark's order (SeBS generates the
 * CMake lines in that order).  Whether a name is one SeBS knows is the C++
 * build's question: a wrong value fails that build with a clear reason and
 * leaves the benchmark's other languages alone.  0 or -ENOMEM. */
static int load_cpp_dependencies(struct cat_benchmark *b, const char *cfgpath, const json_t *deps)
{
	size_t i;
	json_t *v;

	if (!deps)
		return 0;
	if (!json_is_array(deps)) {
		b->cpp_dependencies_problem = str_printf("%s: \"cpp_dependencies\" is not an array",
							 cfgpath);
		return b->cpp_dependencies_problem ? 0 : -ENOMEM;
	}
	json_array_foreach(deps, i, v) {
		if (!json_is_string(v)) {
			free(b->cpp_dependencies_problem);
			b->cpp_dependencies_problem =
				str_printf("%s: cpp_dependencies[%zu] is not a string", cfgpath, i);
			if (!b->cpp_dependencies_problem)
				return -ENOMEM;
			continue;
		}
		/* a list, not a set: SeBS keeps duplicates too */
		char **nl = realloc(b->cpp_dependencies, (b->n_cpp_dependencies + 1) * sizeof(*nl));
		char *name = strdup(json_string_value(v));
		if (!nl || !name) {
			free(name);
			if (nl)
				b->cpp_dependencies = nl;
			return -ENOMEM;
		}
		b->cpp_dependencies = nl;
		b->cpp_dependencies[b->n_cpp_dependencies++] = name;
	}
	return 0;
}

static int load_benchmark(struct cat_benchmark *b, const char *group, const char *name,
			  const char *dir, char **reason)
{
	char msg[1024] = "";
	char first_problem[128] = "";
	size_t n_problems = 0;
	char *cfgpath;
	json_t *cfg = NULL;
	const json_t *arr;
	size_t i;
	json_t *v;
	int rc = -ENOMEM;

	*reason = NULL;
	cfgpath = path_join(dir, "config.json");
	if (!cfgpath)
		return -ENOMEM;
	cfg = load_json_file(cfgpath, msg, sizeof(msg));
	if (!cfg)
		goto broken;
	if (!json_is_object(cfg)) {
		snprintf(msg, sizeof(msg), "%s: top level is not an object", cfgpath);
		goto broken;
	}
	arr = json_object_get(cfg, "languages");
	if (!json_is_array(arr)) {
		snprintf(msg, sizeof(msg), "%s: \"languages\" is %s", cfgpath,
			 arr ? "not an array" : "missing");
		goto broken;
	}
	if (json_object_get(cfg, "modules") && !json_is_array(json_object_get(cfg, "modules"))) {
		snprintf(msg, sizeof(msg), "%s: \"modules\" is not an array", cfgpath);
		goto broken;
	}

	b->name = strdup(name);
	b->group = strdup(group);
	b->path = strdup(dir);
	if (!b->name || !b->group || !b->path)
		goto out;

	json_array_foreach(arr, i, v) {
		char problem[128];
		const char *lang = language_of_entry(cfgpath, i, v, problem, sizeof(problem));

		if (!lang) {
			if (n_problems++ == 0)
				snprintf(first_problem, sizeof(first_problem), "%s", problem);
			continue;
		}
		if (is_served_language(lang) &&
		    (str_list_add_unique(&b->languages, &b->n_languages, lang) < 0 ||
		     (json_is_object(v) &&
		      add_variants(b, cfgpath, i, lang, json_object_get(v, "variants")) < 0)))
			goto out;
	}
	if (n_problems && b->n_languages == 0) {
		snprintf(msg, sizeof(msg), "%s: %s%s", cfgpath, first_problem,
			 n_problems > 1 ? " (and more entries of the wrong type)" : "");
		goto broken;
	}
	if (n_problems)
		tree_warn("%s: %s%s, ignored", cfgpath, first_problem,
			 n_problems > 1 ? " (and more entries of the wrong type)" : "");

	arr = json_object_get(cfg, "modules");
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v)) {
			tree_warn("%s: modules[%zu] is not a string, ignored", cfgpath, i);
			continue;
		}
		if (str_list_add_unique(&b->modules, &b->n_modules, json_string_value(v)) < 0)
			goto out;
	}
	if (load_cpp_dependencies(b, cfgpath, json_object_get(cfg, "cpp_dependencies")) < 0)
		goto out;
	rc = 0;
	goto out;
broken:
	tree_warn("%s; benchmark not served", msg);
	*reason = strdup(msg);
	rc = *reason ? 1 : -ENOMEM;
out:
	json_decref(cfg);
	free(cfgpath);
	return rc;
}

static int broken_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cat_broken *)a)->name, ((const struct cat_broken *)b)->name);
}

/* The benchmark (working or broken) named name, or NULL: its folder. */
static const char *benchmark_folder_of(const struct catalog *cat, const char *name)
{
	for (size_t k = 0; k < cat->n_benchmarks; k++)
		if (strcmp(cat->benchmarks[k].name, name) == 0)
			return cat->benchmarks[k].path;
	for (size_t k = 0; k < cat->n_broken; k++)
		if (strcmp(cat->broken[k].name, name) == 0)
			return cat->broken[k].path;
	return NULL;
}

static int add_broken(struct catalog *cat, const char *group, const char *name,
		      const char *dir, char *reason)
{
	struct cat_broken *nb = realloc(cat->broken, (cat->n_broken + 1) * sizeof(*nb));
	struct cat_broken *e;

	if (!nb) {
		free(reason);
		return -ENOMEM;
	}
	cat->broken = nb;
	e = &cat->broken[cat->n_broken];
	*e = (struct cat_broken){ .name = strdup(name), .group = strdup(group),
				  .path = strdup(dir), .reason = reason };
	if (!e->name || !e->group || !e->path) {
		broken_clear(e);
		return -ENOMEM;
	}
	cat->n_broken++;
	return 0;
}

/* Loads benchmark folder dir (group/name) into the catalog: working, broken
 * or skipped (already warned).  0 or -ENOMEM. */
static int add_benchmark(struct catalog *cat, size_t *cap, const char *group, const char *name,
			 const char *dir)
{
	char shown[1024];
	const char *dup;
	char *reason;
	int lr;

	if (!valid_name_max(name, BENCHMARK_NAME_MAX)) {
		tree_warn("%s: invalid benchmark name (allowed: up to %zu of A-Z a-z 0-9 . _ + -), skipped",
			 printable(dir, shown, sizeof(shown)), (size_t)BENCHMARK_NAME_MAX);
		return 0;
	}
	dup = benchmark_folder_of(cat, name);
	if (dup) {
		tree_warn("%s: benchmark name already used by %s, skipped", dir, dup);
		return 0;
	}
	if (cat->n_benchmarks == *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		struct cat_benchmark *nb = realloc(cat->benchmarks, ncap * sizeof(*nb));

		if (!nb)
			return -ENOMEM;
		cat->benchmarks = nb;
		*cap = ncap;
	}
	memset(&cat->benchmarks[cat->n_benchmarks], 0, sizeof(*cat->benchmarks));
	lr = load_benchmark(&cat->benchmarks[cat->n_benchmarks], group, name, dir, &reason);
	if (lr == 0) {
		cat->n_benchmarks++;
		return 0;
	}
	benchmark_clear(&cat->benchmarks[cat->n_benchmarks]);
	if (lr < 0)
		return lr;
	return add_broken(cat, group, name, dir, reason);
}

/* Scans benchmarks/<group>/<benchmark>/.  0, or -errno with err set. */
static int load_benchmarks(struct catalog *cat, char *err, size_t errlen)
{
	char *bdir = path_join(cat->root, "benchmarks");
	char **groups = NULL;
	size_t n_groups = 0;
	size_t cap = 0;
	int rc;

	if (!bdir)
		return -ENOMEM;
	if (!path_is_dir(bdir)) {
		/* A tree without benchmarks is odd but still has a valid catalog. */
		tree_warn("%s: not a directory, no benchmarks", bdir);
		free(bdir);
		return 0;
	}
	rc = list_dir_sorted(bdir, &groups, &n_groups);
	if (rc < 0) {
		set_err(err, errlen, "%s: %s", bdir, strerror(-rc));
		free(bdir);
		return rc;
	}

	for (size_t g = 0; g < n_groups && rc == 0; g++) {
		char shown[1024];
		char *gdir;
		char **names = NULL;
		size_t n_names = 0;

		/* wrappers holds platform shims, not benchmarks. */
		if (strcmp(groups[g], "wrappers") == 0)
			continue;
		gdir = path_join(bdir, groups[g]);
		if (!gdir) {
			rc = -ENOMEM;
			break;
		}
		if (!path_is_dir(gdir)) {
			free(gdir);
			continue;
		}
		/* a group's name is part of every path and message about its
		 * benchmarks */
		if (!valid_name(groups[g])) {
			tree_warn("%s: invalid group name (allowed: A-Z a-z 0-9 . _ + -), skipped",
				 printable(gdir, shown, sizeof(shown)));
			free(gdir);
			continue;
		}
		rc = list_dir_sorted(gdir, &names, &n_names);
		if (rc < 0) {
			tree_warn("%s: %s, group skipped", gdir, strerror(-rc));
			free(gdir);
			rc = 0;
			continue;
		}
		for (size_t i = 0; i < n_names && rc == 0; i++) {
			char *dir = path_join(gdir, names[i]);

			if (!dir) {
				rc = -ENOMEM;
				break;
			}
			if (path_is_dir(dir))
				rc = add_benchmark(cat, &cap, groups[g], names[i], dir);
			free(dir);
		}
		str_list_free(names, n_names);
		free(gdir);
	}
	str_list_free(groups, n_groups);
	free(bdir);
	if (rc < 0) {
		set_err(err, errlen, "%s: %s", cat->root, strerror(-rc));
		return rc;
	}
	if (cat->n_benchmarks > 1)
		qsort(cat->benchmarks, cat->n_benchmarks, sizeof(*cat->benchmarks),
		      benchmark_cmp);
	if (cat->n_broken > 1)
		qsort(cat->broken, cat->n_broken, sizeof(*cat->broken), broken_cmp);
	return 0;
}

/* ---- packages --------------------------------------------------------- */

/* A benchmark has a package in a runtime folder when it lists the language
 * and, for a variant's folder, that variant of it. */
static bool is_variant_of(const char *entry, const struct cat_runtime *rt)
{
	size_t len = strlen(rt->language);

	return rt->variant && strncmp(entry, rt->language, len) == 0 && entry[len] == '/' &&
	       strcmp(entry + len + 1, rt->variant) == 0;
}

static bool benchmark_runs_on(const struct cat_benchmark *b, const struct cat_runtime *rt)
{
	if (!benchmark_has_language(b, rt->language))
		return false;
	for (size_t v = 0; rt->variant && v < b->n_variants; v++)
		if (is_variant_of(b->variants[v], rt))
			return true;
	return !rt->variant;
}

/* A variant a benchmark lists that no platform declares is not served: say so. */
static void warn_unserved_variants(const struct catalog *cat)
{
	for (size_t b = 0; b < cat->n_benchmarks; b++)
		for (size_t v = 0; v < cat->benchmarks[b].n_variants; v++) {
			const char *entry = cat->benchmarks[b].variants[v];
			bool served = false;

			for (size_t p = 0; p < cat->n_platforms && !served; p++)
				for (size_t r = 0; r < cat->platforms[p].n_runtimes && !served; r++)
					served = is_variant_of(entry, &cat->platforms[p].runtimes[r]);
			if (!served)
				tree_warn("%s/config.json: variant %s is not served: no platform of"
					  " systems.json lists it in languages.<language>.variant_images",
					  cat->benchmarks[b].path, entry);
		}
}

static int build_packages(struct catalog *cat)
{
	size_t n = 0;

	warn_unserved_variants(cat);
	for (size_t p = 0; p < cat->n_platforms; p++)
		for (size_t r = 0; r < cat->platforms[p].n_runtimes; r++)
			for (size_t b = 0; b < cat->n_benchmarks; b++)
				if (benchmark_runs_on(&cat->benchmarks[b],
						      &cat->platforms[p].runtimes[r]))
					n++;
	cat->packages = calloc(n ? n : 1, sizeof(*cat->packages));
	if (!cat->packages)
		return -ENOMEM;
	/* Same loop nesting as the lookup order, so the array is sorted by
	 * (platform, runtime, benchmark) names and catalog_package can bsearch. */
	for (size_t p = 0; p < cat->n_platforms; p++) {
		const struct cat_platform *pl = &cat->platforms[p];

		for (size_t r = 0; r < pl->n_runtimes; r++)
			for (size_t b = 0; b < cat->n_benchmarks; b++) {
				struct cat_package *pk;

				if (!benchmark_runs_on(&cat->benchmarks[b], &pl->runtimes[r]))
					continue;
				pk = &cat->packages[cat->n_packages];
				pk->id = cat->n_packages++;
				pk->platform = pl;
				pk->runtime = &pl->runtimes[r];
				pk->benchmark = &cat->benchmarks[b];
			}
	}
	return 0;
}

/* ---- load ------------------------------------------------------------- */

static struct catalog *load_tree(const char *root, const char *default_arch,
				 char *err, size_t errlen)
{
	struct catalog *cat = NULL;
	char *sysfile = NULL;
	char rootbuf[PATH_MAX];
	const json_t *general;
	struct stat st;

	if (!root || !default_arch) {
		set_err(err, errlen, "catalog: no SEBS_ROOT or architecture given");
		return NULL;
	}
	if (strcmp(default_arch, "x64") != 0 && strcmp(default_arch, "arm64") != 0) {
		set_err(err, errlen, "invalid architecture \"%s\" (expected x64 or arm64)",
			default_arch);
		return NULL;
	}
	if (stat(root, &st) < 0) {
		set_err(err, errlen, "%s: %s", root, strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(st.st_mode)) {
		set_err(err, errlen, "%s: not a directory", root);
		return NULL;
	}
	if (access(root, R_OK | X_OK) < 0 || !realpath(root, rootbuf)) {
		set_err(err, errlen, "%s: %s", root, strerror(errno));
		return NULL;
	}

	cat = calloc(1, sizeof(*cat));
	if (!cat)
		goto out_nomem;
	cat->root = strdup(rootbuf);
	cat->default_arch = strdup(default_arch);
	cat->empty_array = json_array();
	sysfile = str_printf("%s/configs/systems.json", rootbuf);
	if (!cat->root || !cat->default_arch || !cat->empty_array || !sysfile)
		goto out_nomem;

	cat->systems = load_json_file(sysfile, err, errlen);
	if (!cat->systems)
		goto out_fail;
	if (!json_is_object(cat->systems)) {
		set_err(err, errlen, "%s: top level is not an object", sysfile);
		goto out_fail;
	}

	general = json_object_get(cat->systems, "general");
	if (general && !json_is_object(general))
		tree_warn("%s: \"general\" is not an object, ignored", sysfile);
	cat->docker_repository = dup_json_string(general, "docker_repository");
	cat->sebs_version = dup_json_string(general, "SeBS_version");
	cat->previous_major_version = dup_json_string(general, "previous_major_version");

	if (load_platforms(cat, sysfile) < 0)
		goto out_nomem;
	if (load_benchmarks(cat, err, errlen) < 0)
		goto out_fail;
	if (build_packages(cat) < 0)
		goto out_nomem;
	free(sysfile);
	return cat;

out_nomem:
	set_err(err, errlen, "%s: %s", root, strerror(ENOMEM));
out_fail:
	free(sysfile);
	catalog_free(cat);
	return NULL;
}

/* ---- stamp ------------------------------------------------------------ */

static void stamp_bytes(struct catalog_stamp *st, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		st->hash = (st->hash ^ p[i]) * 1099511628211ULL; /* FNV-1a */
}

/* Hashes name and what fstatat says of it (or its errno). */
static void stamp_entry(struct catalog_stamp *st, int dfd, const char *name, struct stat *out)
{
	struct stat sb;
	int64_t fields[8] = { 0 };

	stamp_bytes(st, name, strlen(name) + 1);
	if (fstatat(dfd, name, &sb, 0) < 0) {
		fields[0] = -errno;
		memset(&sb, 0, sizeof(sb));
	} else {
		int64_t m = sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
		int64_t c = sb.st_ctim.tv_sec * 1000000000LL + sb.st_ctim.tv_nsec;

		fields[1] = (int64_t)sb.st_dev;
		fields[2] = (int64_t)sb.st_ino;
		fields[3] = (int64_t)sb.st_size;
		fields[4] = (int64_t)sb.st_mode;
		fields[5] = m;
		fields[6] = c;
		if (m > st->newest_ns)
			st->newest_ns = m;
		if (c > st->newest_ns)
			st->newest_ns = c;
	}
	stamp_bytes(st, fields, sizeof(fields));
	if (out)
		*out = sb;
}

static int open_dir_at(int dfd, const char *name)
{
	return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

void catalog_stamp(const char *root, struct catalog_stamp *out)
{
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int bfd = -1;
	char **groups = NULL;
	size_t n_groups = 0;
	struct stat sb;

	out->hash = 1469598103934665603ULL;
	out->newest_ns = 0;
	if (rootfd < 0) {
		int e = errno;

		stamp_bytes(out, &e, sizeof(e));
		return;
	}
	stamp_entry(out, rootfd, "configs/systems.json", NULL);
	stamp_entry(out, rootfd, "benchmarks", &sb);
	bfd = S_ISDIR(sb.st_mode) ? open_dir_at(rootfd, "benchmarks") : -1;
	if (bfd >= 0 && list_dirfd_sorted(bfd, &groups, &n_groups) == 0) {
		for (size_t g = 0; g < n_groups; g++) {
			char **names = NULL;
			size_t n_names = 0;
			int gfd;

			stamp_entry(out, bfd, groups[g], &sb);
			if (!S_ISDIR(sb.st_mode) || strcmp(groups[g], "wrappers") == 0)
				continue;
			gfd = open_dir_at(bfd, groups[g]);
			if (gfd < 0 || list_dirfd_sorted(gfd, &names, &n_names) < 0) {
				int e = errno;

				stamp_bytes(out, &e, sizeof(e));
			}
			for (size_t i = 0; i < n_names; i++) {
				char *cfg = path_join(names[i], "config.json");

				stamp_entry(out, gfd, names[i], &sb);
				if (S_ISDIR(sb.st_mode) && cfg)
					stamp_entry(out, gfd, cfg, NULL);
				free(cfg);
			}
			str_list_free(names, n_names);
			if (gfd >= 0)
				close(gfd);
		}
		str_list_free(groups, n_groups);
	}
	if (bfd >= 0)
		close(bfd);
	close(rootfd);
}

struct catalog *catalog_load(const char *root, const char *default_arch,
			     char *err, size_t errlen)
{
	struct warn_set mine = { 0 };
	struct catalog *cat;

	warn_current = &mine;
	cat = load_tree(root, default_arch, err, errlen);
	warn_load_done(&mine);
	return cat;
}

/* ---- lookups ---------------------------------------------------------- */

const struct cat_platform *catalog_platform(const struct catalog *cat, const char *name)
{
	struct cat_platform key = { .name = (char *)name };

	if (!cat || !name || cat->n_platforms == 0)
		return NULL;
	return bsearch(&key, cat->platforms, cat->n_platforms, sizeof(key), platform_cmp);
}

const struct cat_runtime *catalog_runtime(const struct cat_platform *p, const char *dirname)
{
	struct cat_runtime key = { .dirname = (char *)dirname };

	if (!p || !dirname || p->n_runtimes == 0)
		return NULL;
	return bsearch(&key, p->runtimes, p->n_runtimes, sizeof(key), runtime_cmp);
}

const struct cat_benchmark *catalog_benchmark(const struct catalog *cat, const char *name)
{
	struct cat_benchmark key = { .name = (char *)name };

	if (!cat || !name || cat->n_benchmarks == 0)
		return NULL;
	return bsearch(&key, cat->benchmarks, cat->n_benchmarks, sizeof(key), benchmark_cmp);
}

static int package_cmp(const void *a, const void *b)
{
	const struct cat_package *x = a, *y = b;
	int c = strcmp(x->platform->name, y->platform->name);

	if (c == 0)
		c = strcmp(x->runtime->dirname, y->runtime->dirname);
	if (c == 0)
		c = strcmp(x->benchmark->name, y->benchmark->name);
	return c;
}

const struct cat_package *catalog_package(const struct catalog *cat, const char *platform,
					  const char *runtime_dirname, const char *benchmark)
{
	struct cat_platform kp = { .name = (char *)platform };
	struct cat_runtime kr = { .dirname = (char *)runtime_dirname };
	struct cat_benchmark kb = { .name = (char *)benchmark };
	struct cat_package key = { .platform = &kp, .runtime = &kr, .benchmark = &kb };

	if (!cat || !platform || !runtime_dirname || !benchmark || cat->n_packages == 0)
		return NULL;
	return bsearch(&key, cat->packages, cat->n_packages, sizeof(key), package_cmp);
}

bool benchmark_has_language(const struct cat_benchmark *b, const char *language)
{
	return b && language && str_in_list(b->languages, b->n_languages, language);
}

bool benchmark_has_module(const struct cat_benchmark *b, const char *module)
{
	return b && module && str_in_list(b->modules, b->n_modules, module);
}

bool platform_has_deployment(const struct cat_platform *p, const char *deployment)
{
	return p && deployment && str_in_list(p->deployments, p->n_deployments, deployment);
}

const json_t *catalog_language_config(const struct catalog *cat, const char *platform,
				      const char *language)
{
	const json_t *l;

	if (!cat || !platform || !language)
		return NULL;
	l = json_object_get(json_object_get(json_object_get(cat->systems, platform),
					    "languages"), language);
	return json_is_object(l) ? l : NULL;
}

static const json_t *deployment_of(const struct catalog *cat, const struct cat_package *pkg)
{
	if (!cat || !pkg)
		return NULL;
	return json_object_get(catalog_language_config(cat, pkg->platform->name,
						       pkg->runtime->language),
			       "deployment");
}

/* python: requirement lines.  Strings in an array, keys of an object. */
static int append_python(json_t *out, const json_t *src)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_array(src)) {
		json_array_foreach((json_t *)src, i, v)
			if (json_is_string(v) && json_array_append(out, v) < 0)
				return -ENOMEM;
	} else if (json_is_object(src)) {
		json_object_foreach((json_t *)src, key, v)
			if (json_array_append_new(out, json_string(key)) < 0)
				return -ENOMEM;
	} else if (json_is_string(src)) {
		if (json_array_append(out, (json_t *)src) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* nodejs: name -> version.  Later entries win, as in a dict update. */
static int append_nodejs(json_t *out, const json_t *src)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_object(src)) {
		json_object_foreach((json_t *)src, key, v)
			if (json_is_string(v) && json_object_set(out, key, v) < 0)
				return -ENOMEM;
	} else if (json_is_array(src)) {
		json_array_foreach((json_t *)src, i, v)
			if (json_is_string(v) &&
			    json_object_set_new(out, json_string_value(v), json_string("*")) < 0)
				return -ENOMEM;
	}
	return 0;
}

json_t *catalog_deployment_packages(const struct catalog *cat, const struct cat_package *pkg)
{
	const json_t *dep = deployment_of(cat, pkg);
	const json_t *mods;
	bool nodejs, java;
	json_t *out;
	int (*append)(json_t *, const json_t *);

	if (!pkg)
		return NULL;
	java = strcmp(pkg->runtime->language, "java") == 0;
	nodejs = java || strcmp(pkg->runtime->language, "nodejs") == 0;
	out = nodejs ? json_object() : json_array();
	if (!out)
		return NULL;
	append = nodejs ? append_nodejs : append_python;
	if (append(out, json_object_get(dep, "packages")) < 0)
		goto fail;
	/* SeBS's add_deployment_package_java reads "packages" alone */
	if (java)
		return out;
	mods = json_object_get(dep, "module_packages");
	for (size_t i = 0; i < pkg->benchmark->n_modules; i++)
		if (append(out, json_object_get(mods, pkg->benchmark->modules[i])) < 0)
			goto fail;
	return out;
fail:
	json_decref(out);
	return NULL;
}

const json_t *catalog_deployment_files(const struct catalog *cat, const struct cat_package *pkg)
{
	const json_t *files = json_object_get(deployment_of(cat, pkg), "files");

	if (json_is_array(files))
		return files;
	return cat ? cat->empty_array : NULL;
}

bool catalog_has_build_image(const struct catalog *cat, const struct cat_package *pkg)
{
	const json_t *l;

	if (!cat || !pkg)
		return false;
	l = catalog_language_config(cat, pkg->platform->name, pkg->runtime->language);
	return json_array_has_string(json_object_get(l, "images"), "build");
}
