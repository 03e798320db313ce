/*
 * catalog.h - what a SeBS tree can build, read once from SEBS_ROOT.
 *
 * catalog_load() parses configs/systems.json and every
 * benchmarks/<group>/<benchmark>/config.json (layout: ../shared/SEBS.md 1-3)
 * into an immutable snapshot (a mount reloads it when the tree changes, see
 * catalog_stamp): platforms, their runtimes, benchmarks, and the
 * flat list of packages (platform x runtime x benchmark) that sebsfs serves.
 *
 * Rules:
 *  - Platforms: every key of systems.json except "general", sorted by name.
 *  - Languages served: python and nodejs on every platform; java on aws
 *    (code package: the jar, ".jar"), azure and gcp (".zip") and openwhisk
 *    (function image only); cpp on aws (".zip").  These are the pairs SeBS's
 *    package_code functions build; any other java/cpp entry of systems.json
 *    is skipped with a warning.
 *  - Runtimes: every version in base_images[default_arch] of a served language
 *    (folder "<language>-<version>"), plus every version in base_images of the
 *    other architecture when the platform's "architecture" list names it
 *    (folder "<language>-<version>-arm64", or "-x64" when default_arch is arm64).
 *    A platform without default_arch in base_images has no unsuffixed
 *    runtimes; e.g. with default_arch "arm64", azure (architecture ["x64"])
 *    offers only "python-3.9-x64" and the like.
 *  - Packages: for each runtime, every benchmark whose config.json lists that
 *    language (string or {"language": ...} object form; an object whose
 *    "variants" array lacks "default" is ignored: only the default variant is
 *    built).  Language entries of any other type are ignored with a warning.
 *  - Names used as path components (platform, version, benchmark, and the
 *    group folder) must match [A-Za-z0-9._+-]+, not be "." or "..", and fit
 *    in NAME_MAX with what sebsfs appends (a benchmark: at most 245 bytes,
 *    for "<name>.image.log"); anything else is skipped with one warning
 *    naming the file (non-printable bytes shown as \xNN).
 *  - A benchmark folder whose config.json cannot be used is *broken*: it
 *    cannot be read (missing too), is not JSON (jansson's line, column and
 *    message), its top level is not an object, "languages" is missing or
 *    not an array, "modules" is present but not an array, or every entry of
 *    "languages" has the wrong type.  It is listed in catalog->broken with
 *    that reason (one warning), so the tree can show why it is missing.
 *    Other values of the wrong type (a "modules" entry that is not a string,
 *    a language entry next to valid ones) are ignored with a warning; fields
 *    sebsfs does not use (timeout, memory ...) are not looked at.
 *  - A missing or malformed systems.json, or one whose top level is not an
 *    object, is an error (nothing could be served).  A platform whose value
 *    is not an object, or a served language whose config is not an object,
 *    is skipped with a warning: one broken entry should not hide the rest of
 *    the suite.
 * The catalog is read-only after load and may be shared by threads.
 * Strings are owned by the catalog.  Lists are sorted by name.
 */
#ifndef SEBSFS_CATALOG_H
#define SEBSFS_CATALOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cat_runtime {
	char *language;   /* "python" | "nodejs" */
	char *version;    /* "3.11" */
	char *arch;       /* "x64" | "arm64" */
	char *variant;    /* NULL: SeBS's "default" variant; else a variant that
			   * systems.json's "variant_images" declares ("pypy") */
	char *dirname;    /* "python-3.11", "python-3.11-arm64", "python-3.11-pypy",
			   * "python-3.11-pypy-arm64" */
	char *base_image; /* base_images[arch][version] */
	const char *package_suffix; /* static: the code package's file suffix, ".zip" or
				     * ".jar"; NULL when the platform deploys this
				     * language as a function image only */
};

struct cat_platform {
	char *name;               /* "aws" */
	struct cat_runtime *runtimes; /* sorted by dirname */
	size_t n_runtimes;
	char **deployments;       /* e.g. "package", "container" */
	size_t n_deployments;
	const json_t *config;     /* borrowed: systems.json[name] */
};

struct cat_benchmark {
	char *name;        /* "110.dynamic-html" */
	char *group;       /* "100.webapps" */
	char *path;        /* absolute path of the benchmark folder */
	char **languages;  /* served languages it lists, e.g. "python" */
	size_t n_languages;
	char **variants;   /* named variants it lists, as "<language>/<variant>" */
	size_t n_variants;
	char **modules;    /* "storage", "nosql" */
	size_t n_modules;
	char **cpp_dependencies; /* config.json "cpp_dependencies", in order, unchecked */
	size_t n_cpp_dependencies;
	char *cpp_dependencies_problem; /* why "cpp_dependencies" cannot be used, or NULL */
};

/* A benchmark folder whose config.json cannot be used (see above). */
struct cat_broken {
	char *name;        /* folder name, a valid benchmark name */
	char *group;
	char *path;        /* absolute path of the benchmark folder */
	char *reason;      /* one line: "<path>/config.json: line 3 column 1: ..." */
};

/* One servable package: indices into the catalog's arrays. */
struct cat_package {
	size_t id;         /* catalog_load: index in catalog->packages; a holder of
			    * ids that outlive one load (the builder) may renumber */
	const struct cat_platform *platform;
	const struct cat_runtime *runtime;
	const struct cat_benchmark *benchmark;
};

struct catalog {
	char *root;                    /* absolute SEBS_ROOT */
	char *default_arch;            /* "x64" or "arm64" */
	char *docker_repository;       /* general.docker_repository or NULL */
	char *sebs_version;            /* general.SeBS_version or NULL */
	char *previous_major_version;  /* general.previous_major_version or NULL */
	json_t *systems;               /* owned: the parsed systems.json */
	struct cat_platform *platforms;
	size_t n_platforms;
	struct cat_benchmark *benchmarks;
	size_t n_benchmarks;
	struct cat_broken *broken;     /* benchmarks not served, sorted by name */
	size_t n_broken;
	struct cat_package *packages;  /* ordered by platform, runtime, benchmark */
	size_t n_packages;
	json_t *empty_array;           /* owned: returned by catalog_deployment_files
					* when deployment.files is missing */
};

/* Loads SEBS_ROOT.  Warnings about the tree are logged once: a warning the
 * previous load (of any thread) logged too is not repeated.  default_arch is
 * "x64" or "arm64".  On failure returns NULL
 * and writes a one-line reason into err (size errlen), e.g.
 * "/x/configs/systems.json: line 3: '}' expected". */
struct catalog *catalog_load(const char *root, const char *default_arch,
			     char *err, size_t errlen);
void catalog_free(struct catalog *cat);

/*
 * A cheap fingerprint of what catalog_load reads, to tell whether the tree
 * may have changed without parsing it: the stat data (device, inode, size,
 * mode, mtime, ctime) and names of configs/systems.json, benchmarks/, every
 * group folder, every entry of a group and its config.json.  Equal hashes
 * mean nothing catalog_load looks at changed, unless a change fell into the
 * same timestamp tick as the stat that was compared: newest_ns (the newest
 * mtime or ctime seen, CLOCK_REALTIME) lets the caller distrust a fingerprint
 * taken too soon after it.  Never fails: what cannot be read is hashed as its
 * errno.
 */
struct catalog_stamp {
	uint64_t hash;
	int64_t newest_ns;
};
void catalog_stamp(const char *root, struct catalog_stamp *out);

const struct cat_platform *catalog_platform(const struct catalog *cat, const char *name);
const struct cat_runtime *catalog_runtime(const struct cat_platform *p, const char *dirname);
const struct cat_benchmark *catalog_benchmark(const struct catalog *cat, const char *name);
/* The package for (platform, runtime dirname, benchmark), or NULL. */
const struct cat_package *catalog_package(const struct catalog *cat, const char *platform,
					  const char *runtime_dirname, const char *benchmark);

bool benchmark_has_language(const struct cat_benchmark *b, const char *language);
bool benchmark_has_module(const struct cat_benchmark *b, const char *module);
bool platform_has_deployment(const struct cat_platform *p, const char *deployment);

/* systems.json[platform].languages[language], or NULL (borrowed). */
const json_t *catalog_language_config(const struct catalog *cat, const char *platform,
				      const char *language);

/* Requirement lines / dependencies that step 5 adds for this package:
 * deployment.packages followed by module_packages[m] for each module the
 * benchmark lists (in the benchmark's module order).  Normalised:
 *  - python: a JSON array of strings (requirement lines).  An object (quirk:
 *    openwhisk storage {"minio": "^5.0.10"}) contributes its keys, as the
 *    reference builder does when it iterates a dict.
 *  - nodejs: a JSON object name -> version; an array contributes name -> "*".
 *  - java: a JSON object "group:artifact" -> version, from "packages" alone
 *    (SeBS's add_deployment_package_java ignores module_packages); the pom
 *    generator (langgen.h) checks the names and versions.
 *  - cpp: nothing (its dependencies are config.json's cpp_dependencies).
 * Missing or null entries contribute nothing.  Returns a new reference. */
json_t *catalog_deployment_packages(const struct catalog *cat, const struct cat_package *pkg);

/* deployment.files of platform/language as a borrowed array (may be empty, never NULL). */
const json_t *catalog_deployment_files(const struct catalog *cat, const struct cat_package *pkg);

/* true when "build" is in images of platform/language. */
bool catalog_has_build_image(const struct catalog *cat, const struct cat_package *pkg);

#endif
