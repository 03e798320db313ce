/*
 * fuzz_catalog.c - catalog_load() on a fuzzer-made SeBS tree.
 *
 * Input: NUL-separated pieces
 *   systems.json \0 config.json \0 name \0 config.json \0 name ...
 * (up to four benchmarks; a missing or unusable name becomes "b<i>").
 * Benchmarks alternate between two groups, so equal names in different
 * groups reach the duplicate check.  The tree is written into one scratch
 * folder per process and loaded for one architecture (x64 for inputs of
 * even length, arm64 for odd: loading is most of the cost); every catalog that
 * loads must keep the promises of catalog.h: names are harmless path
 * components, lists are sorted and every lookup finds the entry it was
 * made from, broken benchmarks carry a one-line reason and are not also
 * served, the consumers (deployment packages and files, the build image
 * flag) accept every package, and loading leaves the tree's stamp alone.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog.h"
#include "fsutil.h"
#include "fuzz_common.h"
#include "layout.h"

#define MAX_BENCHMARKS 4

static const char *const groups[] = { "100.webapps", "200.multimedia" };

/* The contract of catalog.h for names used as path components. */
static bool harmless_name(const char *s)
{
	if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-") ==
	       strlen(s);
}

/* A name the fuzzer gave that can be made into a folder at all. */
static bool usable_dir_name(const char *s, size_t len)
{
	return len > 0 && len <= NAME_MAX && strlen(s) == len && !strchr(s, '/') &&
	       strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static void write_tree(const char *root, char **pieces, size_t *lens, size_t n)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/benchmarks", root);
	FUZZ_CHECK(rm_rf(path) == 0, "rm -rf %s", path);
	snprintf(path, sizeof(path), "%s/configs", root);
	FUZZ_CHECK(mkdir_p(path, 0755) == 0, "mkdir %s", path);
	snprintf(path, sizeof(path), "%s/configs/systems.json", root);
	fuzz_write_file(path, pieces[0], lens[0]);
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		snprintf(path, sizeof(path), "%s/benchmarks/%s", root, groups[g]);
		FUZZ_CHECK(mkdir_p(path, 0755) == 0, "mkdir %s", path);
	}
	for (size_t i = 0; 1 + 2 * i < n && i < MAX_BENCHMARKS; i++) {
		const char *cfg = pieces[1 + 2 * i];
		size_t cfg_len = lens[1 + 2 * i];
		char fallback[16];
		const char *name = fallback;

		snprintf(fallback, sizeof(fallback), "b%zu", i);
		if (2 + 2 * i < n && usable_dir_name(pieces[2 + 2 * i], lens[2 + 2 * i]))
			name = pieces[2 + 2 * i];
		snprintf(path, sizeof(path), "%s/benchmarks/%s/%s", root, groups[i % 2], name);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			continue; /* e.g. ENAMETOOLONG for the whole path */
		snprintf(path, sizeof(path), "%s/benchmarks/%s/%s/config.json", root,
			 groups[i % 2], name);
		fuzz_write_file(path, cfg, cfg_len);
	}
}

static void check_package(const struct catalog *cat, const struct cat_package *pk, size_t i)
{
	json_t *deps;
	const json_t *files;
	/* java: "group:artifact" -> version, like nodejs */
	bool nodejs = strcmp(pk->runtime->language, "nodejs") == 0 ||
		      strcmp(pk->runtime->language, "java") == 0;

	FUZZ_CHECK(pk->id == i, "package %zu has id %zu", i, pk->id);
	FUZZ_CHECK(benchmark_has_language(pk->benchmark, pk->runtime->language),
		   "%s does not list %s", pk->benchmark->name, pk->runtime->language);
	FUZZ_CHECK(catalog_package(cat, pk->platform->name, pk->runtime->dirname,
				   pk->benchmark->name) == pk,
		   "lookup of /%s/%s/%s.zip finds another package", pk->platform->name,
		   pk->runtime->dirname, pk->benchmark->name);
	deps = catalog_deployment_packages(cat, pk);
	FUZZ_CHECK(deps != NULL, "no deployment packages for package %zu", i);
	FUZZ_CHECK(nodejs ? json_is_object(deps) : json_is_array(deps),
		   "deployment packages of %s have the wrong type", pk->runtime->language);
	if (!nodejs) {
		size_t k;
		json_t *v;

		json_array_foreach(deps, k, v)
			FUZZ_CHECK(json_is_string(v), "requirement line %zu is not a string", k);
	} else {
		const char *key;
		json_t *v;

		json_object_foreach(deps, key, v)
			FUZZ_CHECK(json_is_string(v), "dependency %s has no version string", key);
	}
	free(json_dumps(deps, JSON_COMPACT));
	json_decref(deps);
	files = catalog_deployment_files(cat, pk);
	FUZZ_CHECK(json_is_array(files), "deployment files of package %zu are not an array", i);
	(void)catalog_has_build_image(cat, pk);
	(void)platform_has_deployment(pk->platform, "container");
	(void)benchmark_has_module(pk->benchmark, "storage");
}

static void check_catalog(const struct catalog *cat, const char *arch)
{
	size_t expected_packages = 0;

	FUZZ_CHECK(strcmp(cat->default_arch, arch) == 0, "default_arch %s", cat->default_arch);
	for (size_t p = 0; p < cat->n_platforms; p++) {
		const struct cat_platform *pl = &cat->platforms[p];

		FUZZ_CHECK(harmless_name(pl->name) && strlen(pl->name) <= NAME_MAX,
			   "platform name \"%s\"", pl->name);
		FUZZ_CHECK(strcmp(pl->name, "general") != 0, "\"general\" is a platform");
		FUZZ_CHECK(p == 0 || strcmp(cat->platforms[p - 1].name, pl->name) < 0,
			   "platforms not sorted and unique at \"%s\"", pl->name);
		FUZZ_CHECK(catalog_platform(cat, pl->name) == pl, "lookup of platform %s",
			   pl->name);
		FUZZ_CHECK(json_is_object(pl->config), "platform %s config", pl->name);
		(void)layout_supported(pl->name);
		for (size_t r = 0; r < pl->n_runtimes; r++) {
			const struct cat_runtime *rt = &pl->runtimes[r];

			bool compiled = strcmp(rt->language, "java") == 0 ||
					strcmp(rt->language, "cpp") == 0;
			FUZZ_CHECK(compiled || strcmp(rt->language, "python") == 0 ||
				   strcmp(rt->language, "nodejs") == 0,
				   "runtime language %s", rt->language);
			/* java and cpp only where SeBS packages them */
			FUZZ_CHECK(!compiled || strcmp(pl->name, "aws") == 0 ||
				   (strcmp(rt->language, "java") == 0 &&
				    (strcmp(pl->name, "azure") == 0 || strcmp(pl->name, "gcp") == 0 ||
				     strcmp(pl->name, "openwhisk") == 0)),
				   "%s served on %s", rt->language, pl->name);
			FUZZ_CHECK(rt->package_suffix ? (strcmp(rt->package_suffix, ".zip") == 0 ||
							 strcmp(rt->package_suffix, ".jar") == 0)
						      : strcmp(pl->name, "openwhisk") == 0 &&
							strcmp(rt->language, "java") == 0,
				   "%s/%s: package suffix %s", pl->name, rt->dirname,
				   rt->package_suffix ? rt->package_suffix : "(none)");
			FUZZ_CHECK(strcmp(rt->arch, "x64") == 0 || strcmp(rt->arch, "arm64") == 0,
				   "runtime arch %s", rt->arch);
			FUZZ_CHECK(harmless_name(rt->version), "version \"%s\"", rt->version);
			FUZZ_CHECK(harmless_name(rt->dirname) && strlen(rt->dirname) <= NAME_MAX,
				   "runtime folder \"%s\"", rt->dirname);
			FUZZ_CHECK(r == 0 || strcmp(pl->runtimes[r - 1].dirname, rt->dirname) < 0,
				   "%s: runtime folders not sorted and unique at \"%s\"", pl->name,
				   rt->dirname);
			FUZZ_CHECK(catalog_runtime(pl, rt->dirname) == rt, "lookup of %s/%s",
				   pl->name, rt->dirname);
			FUZZ_CHECK(rt->base_image != NULL, "%s/%s has no base image", pl->name,
				   rt->dirname);
			FUZZ_CHECK(catalog_language_config(cat, pl->name, rt->language) != NULL,
				   "%s/%s has no language config", pl->name, rt->dirname);
			for (size_t b = 0; b < cat->n_benchmarks; b++)
				if (benchmark_has_language(&cat->benchmarks[b], rt->language))
					expected_packages++;
		}
	}
	for (size_t b = 0; b < cat->n_benchmarks; b++) {
		const struct cat_benchmark *bm = &cat->benchmarks[b];

		/* "<name>.image.log" must fit in NAME_MAX */
		FUZZ_CHECK(harmless_name(bm->name) && strlen(bm->name) <= NAME_MAX - 10,
			   "benchmark name \"%s\"", bm->name);
		FUZZ_CHECK(b == 0 || strcmp(cat->benchmarks[b - 1].name, bm->name) < 0,
			   "benchmarks not sorted and unique at \"%s\"", bm->name);
		FUZZ_CHECK(catalog_benchmark(cat, bm->name) == bm, "lookup of benchmark %s",
			   bm->name);
		for (size_t l = 0; l < bm->n_languages; l++)
			FUZZ_CHECK(strcmp(bm->languages[l], "python") == 0 ||
				   strcmp(bm->languages[l], "nodejs") == 0 ||
				   strcmp(bm->languages[l], "java") == 0 ||
				   strcmp(bm->languages[l], "cpp") == 0,
				   "%s lists language %s", bm->name, bm->languages[l]);
		for (size_t d = 0; d < bm->n_cpp_dependencies; d++)
			FUZZ_CHECK(bm->cpp_dependencies[d] != NULL, "%s: cpp dependency %zu", bm->name, d);
	}
	for (size_t b = 0; b < cat->n_broken; b++) {
		const struct cat_broken *br = &cat->broken[b];

		FUZZ_CHECK(harmless_name(br->name) && strlen(br->name) <= NAME_MAX - 10,
			   "broken benchmark name \"%s\"", br->name);
		FUZZ_CHECK(b == 0 || strcmp(cat->broken[b - 1].name, br->name) < 0,
			   "broken benchmarks not sorted and unique at \"%s\"", br->name);
		FUZZ_CHECK(catalog_benchmark(cat, br->name) == NULL,
			   "%s is both served and broken", br->name);
		FUZZ_CHECK(br->reason && *br->reason && !strchr(br->reason, '\n'),
			   "broken benchmark %s: reason is not one line", br->name);
	}
	FUZZ_CHECK(cat->n_packages == expected_packages, "%zu packages, expected %zu",
		   cat->n_packages, expected_packages);
	for (size_t i = 0; i < cat->n_packages; i++)
		check_package(cat, &cat->packages[i], i);
	FUZZ_CHECK(catalog_package(cat, "..", "python-3.11", "x") == NULL, "lookup of ..");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char root[PATH_MAX];
	const char *arch = size % 2 ? "arm64" : "x64";
	char err[512] = "";
	struct catalog *cat;
	struct catalog_stamp before, after;
	char *pieces[1 + 2 * MAX_BENCHMARKS];
	size_t lens[1 + 2 * MAX_BENCHMARKS];
	size_t n;

	if (!root[0])
		snprintf(root, sizeof(root), "%s/tree", fuzz_scratch_dir());
	n = fuzz_split(data, size, pieces, lens, sizeof(pieces) / sizeof(pieces[0]));
	write_tree(root, pieces, lens, n);
	catalog_stamp(root, &before);
	cat = catalog_load(root, arch, err, sizeof(err));
	catalog_stamp(root, &after);
	FUZZ_CHECK(before.hash == after.hash, "loading changed the tree's stamp");
	if (cat)
		check_catalog(cat, arch);
	else
		FUZZ_CHECK(err[0] != '\0', "catalog_load failed without a reason");
	catalog_free(cat);
	fuzz_pieces_free(pieces, n);
	return 0;
}
