/*
 * test_catalog.c - Check suite for src/builder/catalog.c.
 *
 * The "real" cases load a temp SEBS_ROOT built from SEBS_DATA
 * (tests/fixtures/sebs-data: copies of SeBS's real systems.json and benchmark
 * config.json files) and assert facts read off those files by hand, so a
 * parser that drops a quirk fails here.  The
 * "malformed" cases build small trees by hand.  Warnings are captured through
 * log_set_backend() so skipped entries can be checked for a message naming
 * the offending file.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "log.h"

static char tmpdir[256];
static char logbuf[16384];

static void capture_log(enum log_level level, const char *msg)
{
	size_t used = strlen(logbuf);

	(void)level;
	snprintf(logbuf + used, sizeof(logbuf) - used, "%s\n", msg);
}

static void mkdirs(const char *path)
{
	char buf[1024];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		ck_assert_msg(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s", buf);
		*p = '/';
	}
	ck_assert_msg(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s", buf);
}

/* Writes content to tmpdir/rel, creating parent folders. */
static void write_rel(const char *rel, const char *content)
{
	char path[1024], dir[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	f = fopen(path, "we");
	ck_assert_msg(f != NULL, "fopen %s", path);
	ck_assert_int_eq(fputs(content, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

static void copy_to_rel(const char *src, const char *rel)
{
	char buf[8192];
	char *data = NULL;
	size_t len = 0, n;
	FILE *f = fopen(src, "re");

	ck_assert_msg(f != NULL, "open %s", src);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		data = realloc(data, len + n + 1);
		ck_assert_ptr_nonnull(data);
		memcpy(data + len, buf, n);
		len += n;
	}
	fclose(f);
	ck_assert_ptr_nonnull(data);
	data[len] = '\0';
	write_rel(rel, data);
	free(data);
}

/* Copies SEBS_DATA into tmpdir laid out as a SEBS_ROOT. */
static void copy_real_tree(void)
{
	const char *bdir = SEBS_DATA "/benchmarks";
	char src[2048], rel[2048], gpath[1024];
	struct dirent *g, *b;
	DIR *gd, *bd;
	int count = 0;

	copy_to_rel(SEBS_DATA "/systems.json", "configs/systems.json");
	gd = opendir(bdir);
	ck_assert_ptr_nonnull(gd);
	while ((g = readdir(gd))) {
		if (g->d_name[0] == '.')
			continue;
		snprintf(gpath, sizeof(gpath), "%s/%s", bdir, g->d_name);
		bd = opendir(gpath);
		if (!bd)
			continue;
		while ((b = readdir(bd))) {
			if (b->d_name[0] == '.')
				continue;
			snprintf(src, sizeof(src), "%s/%s/config.json", gpath, b->d_name);
			if (access(src, R_OK) != 0)
				continue;
			snprintf(rel, sizeof(rel), "benchmarks/%s/%s/config.json",
				 g->d_name, b->d_name);
			copy_to_rel(src, rel);
			count++;
		}
		closedir(bd);
	}
	closedir(gd);
	ck_assert_int_eq(count, 15);
	/* A wrappers folder exists in real trees and must not become a group. */
	write_rel("benchmarks/wrappers/aws/python/handler.py", "# handler\n");
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(path);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_catalog.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	logbuf[0] = '\0';
	log_set_backend(capture_log);
}

static void teardown(void)
{
	log_set_backend(NULL);
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static struct catalog *load_ok(const char *arch)
{
	char err[512] = "";
	struct catalog *cat = catalog_load(tmpdir, arch, err, sizeof(err));

	ck_assert_msg(cat != NULL, "catalog_load failed: %s", err);
	return cat;
}

static void load_fail(const char *root, char *err, size_t errlen)
{
	struct catalog *cat;

	err[0] = '\0';
	cat = catalog_load(root, "x64", err, errlen);
	ck_assert_ptr_null(cat);
	ck_assert_msg(err[0] != '\0', "no error message");
}

/* Minimal valid systems.json for hand-made trees. */
static const char *mini_systems =
	"{\"general\": {\"docker_repository\": \"r\"},\n"
	" \"aws\": {\"architecture\": [\"x64\"], \"deployments\": [\"package\"],\n"
	"   \"languages\": {\n"
	"     \"python\": {\"base_images\": {\"x64\": {\"3.11\": \"img-py\"}}, \"images\": [\"build\"],\n"
	"                \"deployment\": {\"files\": [\"handler.py\"], \"packages\": null,\n"
	"                               \"module_packages\": {\"storage\": null}}},\n"
	"     \"nodejs\": {\"base_images\": {\"x64\": {\"20\": \"img-js\"}},\n"
	"                \"deployment\": {\"packages\": null}}}}}\n";

/* ---- real data ---------------------------------------------------------- */

START_TEST(test_real_platforms_and_general)
{
	static const char *names[] = { "aws", "azure", "gcp", "local", "openwhisk" };
	struct catalog *cat;

	copy_real_tree();
	cat = load_ok("x64");
	ck_assert_uint_eq(cat->n_platforms, 5);
	for (size_t i = 0; i < 5; i++) {
		ck_assert_str_eq(cat->platforms[i].name, names[i]);
		ck_assert_ptr_eq(catalog_platform(cat, names[i]), &cat->platforms[i]);
		ck_assert_ptr_nonnull(cat->platforms[i].config);
	}
	ck_assert_ptr_null(catalog_platform(cat, "general"));
	ck_assert_ptr_null(catalog_platform(cat, "nope"));
	ck_assert_str_eq(cat->docker_repository, "spcleth/serverless-benchmarks");
	ck_assert_str_eq(cat->sebs_version, "1.2.1");
	ck_assert_str_eq(cat->previous_major_version, "1.2.0");
	ck_assert_str_eq(cat->default_arch, "x64");
	ck_assert_int_eq(cat->root[0], '/');
	ck_assert(platform_has_deployment(catalog_platform(cat, "aws"), "container"));
	ck_assert(platform_has_deployment(catalog_platform(cat, "aws"), "package"));
	ck_assert(!platform_has_deployment(catalog_platform(cat, "openwhisk"), "package"));
	ck_assert(platform_has_deployment(catalog_platform(cat, "gcp"), "function-gen2"));
	catalog_free(cat);
}
END_TEST

START_TEST(test_real_aws_runtimes)
{
	/* java on x64 and arm64, cpp on x64 only (no arm64 base image) */
	static const char *dirs[] = {
		"cpp-all", "java-11", "java-11-arm64", "java-17", "java-17-arm64",
		"nodejs-20", "nodejs-20-arm64", "nodejs-22", "nodejs-22-arm64",
		"nodejs-24", "nodejs-24-arm64", "python-3.10", "python-3.10-arm64",
		"python-3.11", "python-3.11-arm64", "python-3.9", "python-3.9-arm64",
	};
	static const char *const suffixes[] = { ".zip", ".jar", ".jar", ".jar", ".jar" };
	const struct cat_platform *aws;
	const struct cat_runtime *rt;
	struct catalog *cat;

	copy_real_tree();
	cat = load_ok("x64");
	aws = catalog_platform(cat, "aws");
	ck_assert_ptr_nonnull(aws);
	ck_assert_uint_eq(aws->n_runtimes, 17);
	for (size_t i = 0; i < 17; i++) {
		ck_assert_str_eq(aws->runtimes[i].dirname, dirs[i]);
		ck_assert_ptr_nonnull(aws->runtimes[i].base_image);
		ck_assert_str_eq(aws->runtimes[i].package_suffix, i < 5 ? suffixes[i] : ".zip");
	}
	rt = catalog_runtime(aws, "python-3.11-arm64");
	ck_assert_ptr_nonnull(rt);
	ck_assert_str_eq(rt->language, "python");
	ck_assert_str_eq(rt->version, "3.11");
	ck_assert_str_eq(rt->arch, "arm64");
	rt = catalog_runtime(aws, "nodejs-22");
	ck_assert_ptr_nonnull(rt);
	ck_assert_str_eq(rt->arch, "x64");
	ck_assert_str_eq(rt->version, "22");
	rt = catalog_runtime(aws, "cpp-all");
	ck_assert_ptr_nonnull(rt);
	ck_assert_str_eq(rt->language, "cpp");
	ck_assert_str_eq(rt->version, "all");
	ck_assert_ptr_null(catalog_runtime(aws, "cpp-all-arm64"));
	ck_assert_ptr_null(catalog_runtime(aws, "python-3.8"));

	/* azure offers no arm64. */
	{
		const struct cat_platform *az = catalog_platform(cat, "azure");

		ck_assert_uint_eq(az->n_runtimes, 7);
		for (size_t i = 0; i < az->n_runtimes; i++)
			ck_assert_ptr_null(strstr(az->runtimes[i].dirname, "arm64"));
		ck_assert_ptr_nonnull(catalog_runtime(az, "python-3.9"));
		ck_assert_ptr_nonnull(catalog_runtime(az, "nodejs-16"));
		rt = catalog_runtime(az, "java-17");
		ck_assert_ptr_nonnull(rt);
		ck_assert_str_eq(rt->package_suffix, ".zip");
	}
	/* gcp java zips; openwhisk java is a function image only; SeBS builds
	 * no java on local and no cpp beyond aws. */
	ck_assert_str_eq(catalog_runtime(catalog_platform(cat, "gcp"), "java-17")->package_suffix,
			 ".zip");
	rt = catalog_runtime(catalog_platform(cat, "openwhisk"), "java-8");
	ck_assert_ptr_nonnull(rt);
	ck_assert_ptr_null(rt->package_suffix);
	for (size_t p = 0; p < cat->n_platforms; p++)
		for (size_t i = 0; i < cat->platforms[p].n_runtimes; i++) {
			const struct cat_runtime *r = &cat->platforms[p].runtimes[i];
			if (strcmp(cat->platforms[p].name, "aws") != 0)
				ck_assert_str_ne(r->language, "cpp");
			if (strcmp(cat->platforms[p].name, "local") == 0)
				ck_assert_str_ne(r->language, "java");
		}
	catalog_free(cat);
}
END_TEST

START_TEST(test_real_arm64_default)
{
	const struct cat_platform *p;
	const struct cat_runtime *rt;
	struct catalog *cat;

	copy_real_tree();
	cat = load_ok("arm64");
	p = catalog_platform(cat, "aws");
	ck_assert_uint_eq(p->n_runtimes, 17);
	ck_assert_ptr_nonnull(catalog_runtime(p, "cpp-all-x64"));
	ck_assert_ptr_null(catalog_runtime(p, "cpp-all"));
	rt = catalog_runtime(p, "python-3.11");
	ck_assert_ptr_nonnull(rt);
	ck_assert_str_eq(rt->arch, "arm64");
	rt = catalog_runtime(p, "python-3.11-x64");
	ck_assert_ptr_nonnull(rt);
	ck_assert_str_eq(rt->arch, "x64");
	ck_assert_ptr_null(catalog_runtime(p, "python-3.11-arm64"));
	ck_assert_ptr_nonnull(catalog_runtime(p, "nodejs-24-x64"));

	/* azure/gcp have no arm64 base images: no unsuffixed (arm64) runtimes,
	 * only the x64 ones their architecture list names, suffixed. */
	p = catalog_platform(cat, "azure");
	ck_assert_ptr_null(catalog_runtime(p, "python-3.9"));
	ck_assert_ptr_nonnull(catalog_runtime(p, "python-3.9-x64"));
	for (size_t i = 0; i < p->n_runtimes; i++) {
		ck_assert_str_eq(p->runtimes[i].arch, "x64");
		ck_assert_ptr_nonnull(strstr(p->runtimes[i].dirname, "-x64"));
	}
	p = catalog_platform(cat, "gcp");
	ck_assert_ptr_null(catalog_runtime(p, "python-3.12"));
	ck_assert_ptr_nonnull(catalog_runtime(p, "python-3.12-x64"));
	ck_assert_ptr_nonnull(catalog_package(cat, "gcp", "python-3.12-x64", "120.uploader"));
	ck_assert_ptr_null(catalog_package(cat, "gcp", "python-3.12", "120.uploader"));
	catalog_free(cat);
}
END_TEST

START_TEST(test_real_benchmarks_and_packages)
{
	const struct cat_benchmark *b;
	const struct cat_package *pk;
	struct catalog *cat;

	copy_real_tree();
	cat = load_ok("x64");
	ck_assert_uint_eq(cat->n_benchmarks, 15);
	ck_assert_ptr_null(catalog_benchmark(cat, "wrappers"));
	ck_assert_ptr_null(catalog_benchmark(cat, "aws"));
	for (size_t i = 1; i < cat->n_benchmarks; i++)
		ck_assert_int_lt(strcmp(cat->benchmarks[i - 1].name, cat->benchmarks[i].name), 0);

	b = catalog_benchmark(cat, "110.dynamic-html");
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(b->group, "100.webapps");
	ck_assert_uint_eq(b->n_languages, 3);
	ck_assert(benchmark_has_language(b, "python"));
	ck_assert(benchmark_has_language(b, "nodejs"));
	ck_assert(benchmark_has_language(b, "java"));
	ck_assert(!benchmark_has_language(b, "cpp"));
	ck_assert_uint_eq(b->n_cpp_dependencies, 0);
	ck_assert_uint_eq(b->n_modules, 0);
	{
		char want[1024];
		snprintf(want, sizeof(want), "%s/benchmarks/100.webapps/110.dynamic-html", cat->root);
		ck_assert_str_eq(b->path, want);
	}

	b = catalog_benchmark(cat, "020.network-benchmark");
	ck_assert_ptr_nonnull(b);
	ck_assert(benchmark_has_language(b, "python"));
	ck_assert(!benchmark_has_language(b, "nodejs"));
	ck_assert_ptr_nonnull(catalog_package(cat, "aws", "python-3.9", "020.network-benchmark"));
	ck_assert_ptr_null(catalog_package(cat, "aws", "nodejs-20", "020.network-benchmark"));

	b = catalog_benchmark(cat, "130.crud-api");
	ck_assert(benchmark_has_module(b, "nosql"));
	ck_assert(!benchmark_has_module(b, "storage"));
	b = catalog_benchmark(cat, "501.graph-pagerank");
	ck_assert_uint_eq(b->n_languages, 2);
	ck_assert(benchmark_has_language(b, "cpp"));
	/* cpp_dependencies in the file's order */
	b = catalog_benchmark(cat, "210.thumbnailer");
	ck_assert_uint_eq(b->n_cpp_dependencies, 4);
	ck_assert_str_eq(b->cpp_dependencies[0], "sdk");
	ck_assert_str_eq(b->cpp_dependencies[1], "opencv");
	ck_assert_str_eq(b->cpp_dependencies[2], "libjpeg-turbo");
	ck_assert_str_eq(b->cpp_dependencies[3], "boost");
	ck_assert_ptr_null(b->cpp_dependencies_problem);
	ck_assert_ptr_nonnull(catalog_package(cat, "aws", "cpp-all", "210.thumbnailer"));
	ck_assert_ptr_nonnull(catalog_package(cat, "aws", "java-17-arm64", "010.sleep"));
	ck_assert_ptr_null(catalog_package(cat, "aws", "java-17", "210.thumbnailer"));

	pk = catalog_package(cat, "aws", "nodejs-20-arm64", "110.dynamic-html");
	ck_assert_ptr_nonnull(pk);
	ck_assert_str_eq(pk->platform->name, "aws");
	ck_assert_str_eq(pk->runtime->dirname, "nodejs-20-arm64");
	ck_assert_str_eq(pk->benchmark->name, "110.dynamic-html");
	ck_assert_ptr_eq(pk, &cat->packages[pk->id]);
	ck_assert_ptr_null(catalog_package(cat, "aws", "python-3.7", "110.dynamic-html"));
	ck_assert_ptr_nonnull(catalog_package(cat, "local", "python-3.7", "110.dynamic-html"));
	ck_assert_ptr_null(catalog_package(cat, "aws", "python-3.9", "999.none"));

	/* Ordered by (platform, runtime, benchmark), ids are indices, and each
	 * package's benchmark lists the runtime's language. */
	for (size_t i = 0; i < cat->n_packages; i++) {
		const struct cat_package *p = &cat->packages[i];

		ck_assert_uint_eq(p->id, i);
		ck_assert(benchmark_has_language(p->benchmark, p->runtime->language));
		ck_assert_ptr_eq(catalog_package(cat, p->platform->name, p->runtime->dirname,
						 p->benchmark->name), p);
		if (i > 0) {
			const struct cat_package *q = &cat->packages[i - 1];
			int c = strcmp(q->platform->name, p->platform->name);
			if (c == 0)
				c = strcmp(q->runtime->dirname, p->runtime->dirname);
			if (c == 0)
				c = strcmp(q->benchmark->name, p->benchmark->name);
			ck_assert_int_lt(c, 0);
		}
	}
	/* All 15 benchmarks list python, 7 list nodejs, 2 java, 5 cpp (counted
	 * by hand from the config files); aws has 6 python, 6 nodejs, 4 java
	 * runtimes and cpp-all. */
	{
		size_t n = 0;
		for (size_t i = 0; i < cat->n_packages; i++)
			if (strcmp(cat->packages[i].platform->name, "aws") == 0)
				n++;
		ck_assert_uint_eq(n, 6 * 15 + 6 * 7 + 4 * 2 + 1 * 5);
	}
	catalog_free(cat);
}
END_TEST

static void assert_json_eq(json_t *got, const char *want_text)
{
	json_t *want = json_loads(want_text, 0, NULL);
	char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);

	ck_assert_ptr_nonnull(want);
	ck_assert_msg(json_equal(got, want), "got %s, want %s", g, want_text);
	free(g);
	json_decref(want);
	json_decref(got);
}

START_TEST(test_real_deployment)
{
	const struct cat_package *pk;
	const json_t *files;
	struct catalog *cat;

	copy_real_tree();
	cat = load_ok("x64");

	pk = catalog_package(cat, "openwhisk", "python-3.11", "120.uploader");
	ck_assert_ptr_nonnull(pk);
	assert_json_eq(catalog_deployment_packages(cat, pk), "[\"minio\"]");
	ck_assert(!catalog_has_build_image(cat, pk));

	pk = catalog_package(cat, "local", "python-3.9", "130.crud-api");
	ck_assert_ptr_nonnull(pk);
	assert_json_eq(catalog_deployment_packages(cat, pk), "[\"boto3==1.28.3\"]");
	ck_assert(catalog_has_build_image(cat, pk));

	pk = catalog_package(cat, "aws", "nodejs-20", "120.uploader");
	ck_assert_ptr_nonnull(pk);
	assert_json_eq(catalog_deployment_packages(cat, pk), "{\"uuid\": \"3.4.0\"}");

	pk = catalog_package(cat, "gcp", "python-3.11", "120.uploader");
	ck_assert_ptr_nonnull(pk);
	assert_json_eq(catalog_deployment_packages(cat, pk),
		       "[\"google-cloud-storage==3.10.1\"]");
	/* No modules: only the (empty) packages list. */
	pk = catalog_package(cat, "gcp", "python-3.11", "110.dynamic-html");
	assert_json_eq(catalog_deployment_packages(cat, pk), "[]");
	pk = catalog_package(cat, "azure", "nodejs-18", "130.crud-api");
	assert_json_eq(catalog_deployment_packages(cat, pk),
		       "{\"@azure/cosmos\": \"^4.3.0\", \"@azure/storage-blob\": \"^12.0.0\","
		       " \"uuid\": \"3.4.0\"}");

	pk = catalog_package(cat, "aws", "python-3.11", "110.dynamic-html");
	ck_assert(catalog_has_build_image(cat, pk));
	files = catalog_deployment_files(cat, pk);
	ck_assert_ptr_nonnull(files);
	ck_assert_uint_eq(json_array_size(files), 4);
	ck_assert_str_eq(json_string_value(json_array_get(files, 0)), "handler.py");
	ck_assert_str_eq(json_string_value(json_array_get(files, 1)), "storage.py");
	ck_assert_str_eq(json_string_value(json_array_get(files, 2)), "nosql.py");
	ck_assert_str_eq(json_string_value(json_array_get(files, 3)), "setup.py");

	/* java: "packages" alone, in the file's order */
	pk = catalog_package(cat, "aws", "java-17", "110.dynamic-html");
	ck_assert_ptr_nonnull(pk);
	assert_json_eq(catalog_deployment_packages(cat, pk),
		       "{\"com.amazonaws:aws-lambda-java-core\": \"1.2.3\","
		       " \"com.fasterxml.jackson.core:jackson-databind\": \"2.17.1\"}");
	ck_assert(catalog_has_build_image(cat, pk));
	pk = catalog_package(cat, "openwhisk", "java-8", "010.sleep");
	ck_assert_ptr_nonnull(pk);
	ck_assert(!catalog_has_build_image(cat, pk));

	ck_assert_ptr_nonnull(catalog_language_config(cat, "aws", "python"));
	ck_assert_ptr_nonnull(catalog_language_config(cat, "aws", "java"));
	ck_assert_ptr_null(catalog_language_config(cat, "aws", "rust"));
	ck_assert_ptr_null(catalog_language_config(cat, "general", "python"));
	catalog_free(cat);
}
END_TEST

/* ---- malformed inputs --------------------------------------------------- */

START_TEST(test_systems_syntax_error)
{
	char err[512], path[512];

	write_rel("configs/systems.json", "{\n  \"aws\": {\n  }\n  ,,\n}\n");
	load_fail(tmpdir, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/configs/systems.json", tmpdir);
	ck_assert_msg(strstr(err, path) != NULL, "path missing: %s", err);
	ck_assert_msg(strstr(err, "line 4") != NULL, "line missing: %s", err);
}
END_TEST

START_TEST(test_systems_missing)
{
	char err[512];

	mkdirs(tmpdir);
	load_fail(tmpdir, err, sizeof(err));
	ck_assert_msg(strstr(err, "configs/systems.json") != NULL, "%s", err);
	ck_assert_msg(strstr(err, strerror(ENOENT)) != NULL, "%s", err);
}
END_TEST

START_TEST(test_systems_not_object)
{
	char err[512];

	write_rel("configs/systems.json", "[1, 2]\n");
	load_fail(tmpdir, err, sizeof(err));
	ck_assert_msg(strstr(err, "configs/systems.json") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "not an object") != NULL, "%s", err);
}
END_TEST

START_TEST(test_root_not_directory)
{
	char err[512], root[512], want[600];

	write_rel("file", "x");
	snprintf(root, sizeof(root), "%s/file", tmpdir);
	load_fail(root, err, sizeof(err));
	snprintf(want, sizeof(want), "%s: not a directory", root);
	ck_assert_str_eq(err, want);

	snprintf(root, sizeof(root), "%s/missing", tmpdir);
	load_fail(root, err, sizeof(err));
	snprintf(want, sizeof(want), "%s: %s", root, strerror(ENOENT));
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_bad_arch)
{
	char err[512] = "";

	write_rel("configs/systems.json", mini_systems);
	ck_assert_ptr_null(catalog_load(tmpdir, "riscv", err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "riscv"));
}
END_TEST

START_TEST(test_bad_platforms_skipped)
{
	struct catalog *cat;

	write_rel("configs/systems.json",
		  "{\"general\": 5, \"aws\": [1], \"bad name\": {}, \"../x\": {},"
		  " \"ok\": {\"languages\": {\"python\": 3, \"nodejs\":"
		  "   {\"base_images\": {\"x64\": {\"20\": \"i\", \"a/b\": \"j\", \"22\": 7}}}}}}");
	cat = load_ok("x64");
	ck_assert_uint_eq(cat->n_platforms, 1);
	ck_assert_str_eq(cat->platforms[0].name, "ok");
	ck_assert_uint_eq(cat->platforms[0].n_runtimes, 1);
	ck_assert_str_eq(cat->platforms[0].runtimes[0].dirname, "nodejs-20");
	ck_assert_ptr_null(cat->docker_repository);
	ck_assert_uint_eq(cat->n_benchmarks, 0);
	ck_assert_uint_eq(cat->n_packages, 0);
	ck_assert_msg(strstr(logbuf, "platform \"aws\" is not an object"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "\"bad name\""), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "a/b"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "systems.json"), "%s", logbuf);
	catalog_free(cat);
}
END_TEST

START_TEST(test_bad_benchmarks_skipped)
{
	struct catalog *cat;
	const struct cat_benchmark *b;

	write_rel("configs/systems.json", mini_systems);
	write_rel("benchmarks/100.g/110.good/config.json",
		  "{\"languages\": [\"python\"], \"modules\": [\"storage\"]}");
	write_rel("benchmarks/100.g/120.broken/config.json", "{\"languages\": [\"python\",}");
	write_rel("benchmarks/100.g/130.array/config.json", "[\"python\"]");
	write_rel("benchmarks/100.g/140.noconfig/python/function.py", "pass\n");
	write_rel("benchmarks/100.g/150 spaced/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/100.g/160$odd/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/100.g/afile", "not a benchmark");
	write_rel("benchmarks/200.h/110.good/config.json", "{\"languages\": [\"nodejs\"]}");
	write_rel("benchmarks/200.h/210.fine/config.json", "{\"languages\": [\"nodejs\"]}");
	write_rel("benchmarks/wrappers/aws/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/README.md", "groups only");

	cat = load_ok("x64");
	ck_assert_uint_eq(cat->n_benchmarks, 2);
	ck_assert_str_eq(cat->benchmarks[0].name, "110.good");
	ck_assert_str_eq(cat->benchmarks[0].group, "100.g");
	ck_assert_str_eq(cat->benchmarks[1].name, "210.fine");
	ck_assert_ptr_null(catalog_benchmark(cat, "aws"));
	b = catalog_benchmark(cat, "110.good");
	ck_assert(benchmark_has_language(b, "python"));
	ck_assert(!benchmark_has_language(b, "nodejs"));
	ck_assert_msg(strstr(logbuf, "120.broken/config.json: line 1"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "130.array/config.json"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "140.noconfig/config.json"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "150 spaced"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "160$odd"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "200.h/110.good"), "%s", logbuf);
	/* python-3.11 x 110.good, nodejs-20 x 210.fine */
	ck_assert_uint_eq(cat->n_packages, 2);
	/* folders whose config.json cannot be used are listed with the reason */
	ck_assert_uint_eq(cat->n_broken, 3);
	ck_assert_str_eq(cat->broken[0].name, "120.broken");
	ck_assert_str_eq(cat->broken[0].group, "100.g");
	ck_assert_msg(strstr(cat->broken[0].reason, "120.broken/config.json: line 1 column"),
		      "%s", cat->broken[0].reason);
	ck_assert_str_eq(cat->broken[1].name, "130.array");
	ck_assert_ptr_nonnull(strstr(cat->broken[1].reason, "top level is not an object"));
	ck_assert_str_eq(cat->broken[2].name, "140.noconfig");
	ck_assert_ptr_nonnull(strstr(cat->broken[2].reason, "No such file or directory"));
	catalog_free(cat);
}
END_TEST

/* java and cpp are served only where SeBS packages them; a cpp_dependencies
 * value SeBS could not read is kept as the C++ build's error, and leaves the
 * benchmark's other languages alone. */
START_TEST(test_compiled_languages)
{
	write_rel("configs/systems.json",
		  "{\"general\": {},\n"
		  " \"local\": {\"languages\": {\"java\": {\"base_images\": {\"x64\": {\"17\": \"j\"}}},\n"
		  "                            \"python\": {\"base_images\": {\"x64\": {\"3.11\": \"p\"}}}}},\n"
		  " \"gcp\": {\"languages\": {\"cpp\": {\"base_images\": {\"x64\": {\"all\": \"c\"}}},\n"
		  "                          \"java\": {\"base_images\": {\"x64\": {\"17\": \"j\"}}}}},\n"
		  " \"aws\": {\"languages\": {\"cpp\": {\"base_images\": {\"x64\": {\"all\": \"c\"}}}}}}\n");
	write_rel("benchmarks/100.g/110.a/config.json",
		  "{\"languages\": [\"python\", \"java\", \"cpp\"], \"cpp_dependencies\": \"boost\"}");
	write_rel("benchmarks/100.g/120.b/config.json",
		  "{\"languages\": [\"cpp\"], \"cpp_dependencies\": [\"boost\", 7, \"sdk\"]}");
	write_rel("benchmarks/100.g/130.c/config.json",
		  "{\"languages\": [\"cpp\"], \"cpp_dependencies\": [\"torch\", \"nosuch\", \"torch\"]}");

	struct catalog *cat = load_ok("x64");
	const struct cat_platform *local = catalog_platform(cat, "local");
	const struct cat_platform *gcp = catalog_platform(cat, "gcp");
	ck_assert_uint_eq(local->n_runtimes, 1);
	ck_assert_str_eq(local->runtimes[0].dirname, "python-3.11");
	ck_assert_uint_eq(gcp->n_runtimes, 1);
	ck_assert_str_eq(gcp->runtimes[0].dirname, "java-17");
	ck_assert_ptr_nonnull(catalog_package(cat, "aws", "cpp-all", "110.a"));
	ck_assert_ptr_nonnull(catalog_package(cat, "local", "python-3.11", "110.a"));

	const struct cat_benchmark *b = catalog_benchmark(cat, "110.a");
	ck_assert_uint_eq(b->n_languages, 3);
	ck_assert_msg(b->cpp_dependencies_problem &&
		      strstr(b->cpp_dependencies_problem, "\"cpp_dependencies\" is not an array"),
		      "%s", b->cpp_dependencies_problem);
	b = catalog_benchmark(cat, "120.b");
	ck_assert_msg(b->cpp_dependencies_problem &&
		      strstr(b->cpp_dependencies_problem, "cpp_dependencies[1] is not a string"),
		      "%s", b->cpp_dependencies_problem);
	/* names are kept as written, duplicates and unknown ones too: the
	 * build, not the listing, says what is wrong with them */
	b = catalog_benchmark(cat, "130.c");
	ck_assert_ptr_null(b->cpp_dependencies_problem);
	ck_assert_uint_eq(b->n_cpp_dependencies, 3);
	ck_assert_str_eq(b->cpp_dependencies[1], "nosuch");
	ck_assert_str_eq(b->cpp_dependencies[2], "torch");
	catalog_free(cat);
}
END_TEST

/* A config.json that is not a plain file (a FIFO nobody writes, a link to
 * /dev/zero) or is huge: the benchmark is broken with a reason, and the load
 * neither blocks nor reads without end (the watcher reloads on every change). */
START_TEST(test_config_not_a_plain_file)
{
	char path[1024];

	write_rel("configs/systems.json", mini_systems);
	write_rel("benchmarks/100.g/110.good/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/100.g/120.fifo/python/function.py", "pass\n");
	snprintf(path, sizeof(path), "%s/benchmarks/100.g/120.fifo/config.json", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0644), 0);
	write_rel("benchmarks/100.g/130.zero/python/function.py", "pass\n");
	snprintf(path, sizeof(path), "%s/benchmarks/100.g/130.zero/config.json", tmpdir);
	ck_assert_int_eq(symlink("/dev/zero", path), 0);
	write_rel("benchmarks/100.g/140.huge/python/function.py", "pass\n");
	snprintf(path, sizeof(path), "%s/benchmarks/100.g/140.huge/config.json", tmpdir);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 5 << 20), 0);
	close(fd);

	struct catalog *cat = load_ok("x64");
	ck_assert_uint_eq(cat->n_benchmarks, 1);
	ck_assert_str_eq(cat->benchmarks[0].name, "110.good");
	ck_assert_uint_eq(cat->n_broken, 3);
	ck_assert_str_eq(cat->broken[0].name, "120.fifo");
	ck_assert_msg(strstr(cat->broken[0].reason, "not a regular file"), "%s", cat->broken[0].reason);
	ck_assert_str_eq(cat->broken[1].name, "130.zero");
	ck_assert_msg(strstr(cat->broken[1].reason, "not a regular file"), "%s", cat->broken[1].reason);
	ck_assert_str_eq(cat->broken[2].name, "140.huge");
	ck_assert_msg(strstr(cat->broken[2].reason, "larger than 4 MiB"), "%s", cat->broken[2].reason);
	catalog_free(cat);
}
END_TEST

START_TEST(test_language_forms)
{
	struct catalog *cat;
	const struct cat_benchmark *b;

	write_rel("configs/systems.json", mini_systems);
	write_rel("benchmarks/1.g/1.obj/config.json",
		  "{\"languages\": [{\"language\": \"nodejs\", \"variants\": [\"default\", \"bun\"]}]}");
	write_rel("benchmarks/1.g/2.mixed/config.json",
		  "{\"languages\": [42, null, [\"python\"], {\"variants\": [\"default\"]},"
		  " {\"language\": 7}, \"java\", \"python\", \"python\"],"
		  " \"modules\": [\"nosql\", 3, \"nosql\"]}");
	write_rel("benchmarks/1.g/3.bunonly/config.json",
		  "{\"languages\": [{\"language\": \"nodejs\", \"variants\": [\"bun\"]}, \"python\"]}");
	write_rel("benchmarks/1.g/4.nolangs/config.json", "{\"languages\": \"python\"}");

	cat = load_ok("x64");
	/* 4.nolangs: "languages" is not an array, so it is broken, not served */
	ck_assert_uint_eq(cat->n_benchmarks, 3);
	ck_assert_uint_eq(cat->n_broken, 1);
	ck_assert_str_eq(cat->broken[0].name, "4.nolangs");
	ck_assert_ptr_nonnull(strstr(cat->broken[0].reason,
				     "4.nolangs/config.json: \"languages\" is not an array"));
	b = catalog_benchmark(cat, "1.obj");
	ck_assert_uint_eq(b->n_languages, 1);
	ck_assert(benchmark_has_language(b, "nodejs"));
	ck_assert_ptr_nonnull(catalog_package(cat, "aws", "nodejs-20", "1.obj"));

	b = catalog_benchmark(cat, "2.mixed");
	ck_assert_uint_eq(b->n_languages, 2);
	ck_assert_str_eq(b->languages[0], "java");
	ck_assert_str_eq(b->languages[1], "python");
	ck_assert_uint_eq(b->n_modules, 1);
	ck_assert_str_eq(b->modules[0], "nosql");

	b = catalog_benchmark(cat, "3.bunonly");
	ck_assert(!benchmark_has_language(b, "nodejs"));
	ck_assert(benchmark_has_language(b, "python"));

	ck_assert_ptr_null(catalog_benchmark(cat, "4.nolangs"));
	ck_assert_ptr_nonnull(strstr(logbuf, "2.mixed/config.json: languages[0] is neither"));
	catalog_free(cat);
}
END_TEST

START_TEST(test_variant_runtimes)
{
	struct catalog *cat;
	const struct cat_platform *aws;
	const struct cat_runtime *rt;

	write_rel("configs/systems.json",
		  "{\"aws\": {\"architecture\": [\"x64\", \"arm64\"], \"deployments\": [\"package\"],\n"
		  "  \"languages\": {\"nodejs\": {\"base_images\": {\"x64\": {\"20\": \"i\"},"
		  " \"arm64\": {\"20\": \"j\"}},\n"
		  "    \"variant_images\": [\"bun\", \"default\", \"arm64\", \"a/b\", 3]},\n"
		  "   \"java\": {\"base_images\": {\"x64\": {\"17\": \"k\"}}, \"variant_images\": [\"graal\"]}}}}");
	write_rel("benchmarks/1.g/1.bun/config.json",
		  "{\"languages\": [{\"language\": \"nodejs\", \"variants\": [\"default\", \"bun\", \"deno\"]}]}");
	write_rel("benchmarks/1.g/2.plain/config.json", "{\"languages\": [\"nodejs\"]}");
	cat = load_ok("x64");
	aws = catalog_platform(cat, "aws");
	/* nodejs-20, -20-arm64, -20-bun, -20-bun-arm64; java-17 */
	ck_assert_uint_eq(aws->n_runtimes, 5);
	rt = catalog_runtime(aws, "nodejs-20-bun");
	ck_assert_ptr_nonnull(rt);
	ck_assert_str_eq(rt->variant, "bun");
	ck_assert_str_eq(rt->version, "20");
	ck_assert_str_eq(rt->arch, "x64");
	rt = catalog_runtime(aws, "nodejs-20-bun-arm64");
	ck_assert_ptr_nonnull(rt);
	ck_assert_str_eq(rt->variant, "bun");
	ck_assert_str_eq(rt->arch, "arm64");
	ck_assert_ptr_null(catalog_runtime(aws, "nodejs-20")->variant);
	ck_assert_ptr_nonnull(catalog_package(cat, "aws", "nodejs-20-bun", "1.bun"));
	ck_assert_ptr_null(catalog_package(cat, "aws", "nodejs-20-bun", "2.plain"));
	ck_assert_ptr_nonnull(catalog_package(cat, "aws", "nodejs-20", "2.plain"));
	ck_assert_ptr_nonnull(strstr(logbuf, "variant_images[2]: arm64 is not a variant name"));
	ck_assert_ptr_nonnull(strstr(logbuf, "variant_images[3]: a/b is not a variant name"));
	ck_assert_ptr_nonnull(strstr(logbuf, "aws.languages.java.variant_images: SeBS has variants"
					      " of python and nodejs only, ignored"));
	ck_assert_ptr_nonnull(strstr(logbuf, "variant nodejs/deno is not served"));
	catalog_free(cat);
}
END_TEST

START_TEST(test_null_packages_and_missing_files)
{
	struct catalog *cat;
	const struct cat_package *pk;
	const json_t *files;

	write_rel("configs/systems.json", mini_systems);
	write_rel("benchmarks/1.g/1.b/config.json",
		  "{\"languages\": [\"python\", \"nodejs\"], \"modules\": [\"storage\", \"nosql\"]}");
	cat = load_ok("x64");

	pk = catalog_package(cat, "aws", "python-3.11", "1.b");
	ck_assert_ptr_nonnull(pk);
	assert_json_eq(catalog_deployment_packages(cat, pk), "[]");
	files = catalog_deployment_files(cat, pk);
	ck_assert_uint_eq(json_array_size(files), 1);
	ck_assert(catalog_has_build_image(cat, pk));
	ck_assert_str_eq(pk->runtime->base_image, "img-py");

	pk = catalog_package(cat, "aws", "nodejs-20", "1.b");
	ck_assert_ptr_nonnull(pk);
	assert_json_eq(catalog_deployment_packages(cat, pk), "{}");
	files = catalog_deployment_files(cat, pk);
	ck_assert_ptr_nonnull(files);
	ck_assert(json_is_array(files));
	ck_assert_uint_eq(json_array_size(files), 0);
	ck_assert(!catalog_has_build_image(cat, pk));
	catalog_free(cat);
}
END_TEST

START_TEST(test_package_normalisation)
{
	struct catalog *cat;
	const struct cat_package *pk;

	/* python object -> keys; nodejs array -> name: "*"; later module wins. */
	write_rel("configs/systems.json",
		  "{\"p\": {\"languages\": {"
		  " \"python\": {\"base_images\": {\"x64\": {\"3.9\": \"i\"}}, \"deployment\": {"
		  "   \"packages\": [\"a==1\", 5], \"module_packages\": {"
		  "     \"storage\": {\"minio\": \"^5\", \"x\": \"1\"}, \"nosql\": [\"boto3\"]}}},"
		  " \"nodejs\": {\"base_images\": {\"x64\": {\"20\": \"i\"}}, \"deployment\": {"
		  "   \"packages\": {\"uuid\": \"3.4.0\"}, \"module_packages\": {"
		  "     \"storage\": [\"minio\"], \"nosql\": {\"uuid\": \"9\"}}}}}}}");
	write_rel("benchmarks/1.g/1.b/config.json",
		  "{\"languages\": [\"python\", \"nodejs\"], \"modules\": [\"nosql\", \"storage\"]}");
	cat = load_ok("x64");
	pk = catalog_package(cat, "p", "python-3.9", "1.b");
	assert_json_eq(catalog_deployment_packages(cat, pk),
		       "[\"a==1\", \"boto3\", \"minio\", \"x\"]");
	pk = catalog_package(cat, "p", "nodejs-20", "1.b");
	assert_json_eq(catalog_deployment_packages(cat, pk),
		       "{\"uuid\": \"9\", \"minio\": \"*\"}");
	catalog_free(cat);
}
END_TEST

/* Values of the wrong type: each benchmark is either served or broken with a
 * reason naming its file, and the others are served. */
START_TEST(test_odd_config_values)
{
	struct catalog *cat;
	const struct cat_benchmark *b;
	char *deep = malloc(20000);
	size_t n = 0;

	ck_assert_ptr_nonnull(deep);
	for (int i = 0; i < 5000; i++)
		deep[n++] = '[';
	for (int i = 0; i < 5000; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	write_rel("configs/systems.json", mini_systems);
	write_rel("benchmarks/1.g/1.ok/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/1.g/2.five/config.json", "{\"languages\": 5}");
	write_rel("benchmarks/1.g/3.junk/config.json",
		  "{\"languages\": [null, 7, {\"language\": null}]}");
	write_rel("benchmarks/1.g/4.modstr/config.json",
		  "{\"languages\": [\"python\"], \"modules\": \"x\"}");
	write_rel("benchmarks/1.g/5.deep/config.json", deep);
	write_rel("benchmarks/1.g/6.huge/config.json",
		  "{\"timeout\": 1e308, \"memory\": -9223372036854775807,"
		  " \"languages\": [\"python\", {\"language\": \"nodejs\", \"x\": {\"y\": [[[null]]]}}],"
		  " \"modules\": []}");
	write_rel("benchmarks/1.g/6.overflow/config.json",
		  "{\"languages\": [\"python\"], \"memory\": 99999999999999999999999}");
	write_rel("benchmarks/1.g/7.nulls/config.json", "{\"languages\": null, \"modules\": null}");
	write_rel("benchmarks/1.g/8.nolangs/config.json", "{}");
	write_rel("benchmarks/1.g/9.modnull/config.json",
		  "{\"languages\": [\"nodejs\"], \"modules\": [null, {}, \"storage\"]}");
	free(deep);

	cat = load_ok("x64");
	ck_assert_uint_eq(cat->n_benchmarks, 3);
	ck_assert_ptr_nonnull(catalog_package(cat, "aws", "python-3.11", "1.ok"));
	b = catalog_benchmark(cat, "6.huge");
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->n_languages, 2);
	ck_assert_ptr_nonnull(catalog_package(cat, "aws", "nodejs-20", "6.huge"));
	b = catalog_benchmark(cat, "9.modnull");
	ck_assert_uint_eq(b->n_modules, 1);
	ck_assert_str_eq(b->modules[0], "storage");

	static const struct { const char *name, *reason; } want[] = {
		{ "2.five", "2.five/config.json: \"languages\" is not an array" },
		{ "3.junk", "3.junk/config.json: languages[0] is neither a string nor an object "
			    "(and more entries of the wrong type)" },
		{ "4.modstr", "4.modstr/config.json: \"modules\" is not an array" },
		{ "5.deep", "5.deep/config.json: line 1 column" },
		{ "6.overflow", "6.overflow/config.json: line 1 column" },
		{ "7.nulls", "7.nulls/config.json: \"languages\" is not an array" },
		{ "8.nolangs", "8.nolangs/config.json: \"languages\" is missing" },
	};
	ck_assert_uint_eq(cat->n_broken, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < cat->n_broken; i++) {
		ck_assert_str_eq(cat->broken[i].name, want[i].name);
		ck_assert_msg(strstr(cat->broken[i].reason, want[i].reason), "%s: %s",
			      want[i].name, cat->broken[i].reason);
		/* one warning naming the file */
		ck_assert_msg(strstr(logbuf, want[i].reason), "%s", logbuf);
		ck_assert_ptr_null(catalog_benchmark(cat, want[i].name));
	}
	catalog_free(cat);
}
END_TEST

/* Names that cannot be path components of the mount are skipped with one
 * warning each, shown with their odd bytes escaped; the rest is served. */
START_TEST(test_hostile_names)
{
	struct catalog *cat;
	char longest[300], too_long[300], rel[600];

	memset(longest, 'a', 245);
	longest[245] = '\0';
	memset(too_long, 'b', 246);
	too_long[246] = '\0';
	write_rel("configs/systems.json",
		  "{\"aws\": {\"languages\": {\"python\": {\"base_images\": {\"x64\": {"
		  "\"3.11\": \"img\", \"3.\\n9\": \"img\", \"..\": \"img\", \"3\\u00e9\": \"img\"}}}}},"
		  " \"bad\\nplatform\": {}, \"..\": {}}");
	write_rel("benchmarks/1.g/1.ok/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/1.g/2.a..b/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/1.g/3.new\nline/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/1.g/4.\xff\xfe/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/1.g/5.\xc3\xa9t\xc3\xa9/config.json", "{\"languages\": [\"python\"]}");
	snprintf(rel, sizeof(rel), "benchmarks/1.g/%s/config.json", longest);
	write_rel(rel, "{\"languages\": [\"python\"]}");
	snprintf(rel, sizeof(rel), "benchmarks/1.g/%s/config.json", too_long);
	write_rel(rel, "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/2.bad\ngroup/7.x/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/1.g/8.badjson/config.json", "{\"languages\": [\"python\xff\"]}");

	cat = load_ok("x64");
	ck_assert_uint_eq(cat->n_platforms, 1);
	ck_assert_uint_eq(cat->platforms[0].n_runtimes, 1);
	ck_assert_str_eq(cat->platforms[0].runtimes[0].dirname, "python-3.11");
	ck_assert_uint_eq(cat->n_benchmarks, 3);
	ck_assert_ptr_nonnull(catalog_benchmark(cat, "1.ok"));
	ck_assert_ptr_nonnull(catalog_benchmark(cat, "2.a..b"));
	ck_assert_ptr_nonnull(catalog_benchmark(cat, longest));
	ck_assert_ptr_null(catalog_benchmark(cat, too_long));
	ck_assert_uint_eq(cat->n_broken, 1);
	ck_assert_str_eq(cat->broken[0].name, "8.badjson");
	/* every skipped name is in one warning, escaped: no message holds a raw
	 * newline or a byte outside printable ASCII */
	ck_assert_msg(strstr(logbuf, "1.g/3.new\\x0aline: invalid benchmark name"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "1.g/4.\\xff\\xfe: invalid benchmark name"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "1.g/5.\\xc3\\xa9t\\xc3\\xa9: invalid"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, too_long), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "2.bad\\x0agroup: invalid group name"), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "invalid platform name \"bad\\x0aplatform\""), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "invalid version name \"3.\\x0a9\""), "%s", logbuf);
	ck_assert_msg(strstr(logbuf, "8.badjson/config.json: line 1"), "%s", logbuf);
	for (const unsigned char *p = (const unsigned char *)logbuf; *p; p++) {
		ck_assert_msg(*p == '\n' || (*p >= 0x20 && *p < 0x7f), "raw byte 0x%02x in %s",
			      *p, logbuf);
		if (*p == '\n')
			ck_assert_msg(p[1] == '\0' || strncmp((const char *)p + 1, "/tmp", 4) == 0 ||
				      strncmp((const char *)p + 1, tmpdir, 4) == 0,
				      "a message continues on a new line: %s", (const char *)p + 1);
	}
	catalog_free(cat);
}
END_TEST

static struct catalog_stamp stamp_now(void)
{
	struct catalog_stamp st;

	catalog_stamp(tmpdir, &st);
	return st;
}

/* The fingerprint changes with every change catalog_load would see, and
 * only then. */
START_TEST(test_stamp_follows_changes)
{
	char from[1024], to[1024];
	struct catalog_stamp a, b;
	struct timespec now;

	write_rel("configs/systems.json", mini_systems);
	write_rel("benchmarks/1.g/1.a/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/1.g/1.a/python/function.py", "pass\n");
	a = stamp_now();
	b = stamp_now();
	ck_assert(a.hash == b.hash);
	clock_gettime(CLOCK_REALTIME, &now);
	ck_assert(a.newest_ns > 0 && a.newest_ns <= now.tv_sec * 1000000000LL + now.tv_nsec);

	/* a code file is no business of the catalog */
	write_rel("benchmarks/1.g/1.a/python/function.py", "pass # edited\n");
	b = stamp_now();
	ck_assert(a.hash == b.hash);

	/* same size, same mtime: the ctime still moves */
	write_rel("benchmarks/1.g/1.a/config.json", "{\"languages\": [\"nodejs\"]}");
	b = stamp_now();
	ck_assert(a.hash != b.hash);
	a = b;

	write_rel("benchmarks/1.g/2.b/config.json", "{\"languages\": [\"python\"]}");
	b = stamp_now();
	ck_assert(a.hash != b.hash);
	a = b;

	snprintf(from, sizeof(from), "%s/benchmarks/1.g/2.b", tmpdir);
	snprintf(to, sizeof(to), "%s/benchmarks/1.g/2.c", tmpdir);
	ck_assert_int_eq(rename(from, to), 0);
	b = stamp_now();
	ck_assert(a.hash != b.hash);
	a = b;

	write_rel("benchmarks/3.new/9.x/config.json", "{\"languages\": [\"python\"]}");
	b = stamp_now();
	ck_assert(a.hash != b.hash);
	a = b;

	write_rel("configs/systems.json", "{}");
	b = stamp_now();
	ck_assert(a.hash != b.hash);
	a = b;

	snprintf(from, sizeof(from), "%s/benchmarks/1.g/1.a/config.json", tmpdir);
	ck_assert_int_eq(unlink(from), 0);
	b = stamp_now();
	ck_assert(a.hash != b.hash);
}
END_TEST

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* A tree loaded again and again (the mount's watcher, every build) logs
 * each problem once, and again after it was gone for a load. */
START_TEST(test_warnings_once)
{
	const char *msg = "2.bad/config.json: \"languages\" is not an array";

	write_rel("configs/systems.json", mini_systems);
	write_rel("benchmarks/1.g/1.ok/config.json", "{\"languages\": [\"python\"]}");
	write_rel("benchmarks/1.g/2.bad/config.json", "{\"languages\": 5}");
	for (int i = 0; i < 3; i++)
		catalog_free(load_ok("x64"));
	ck_assert_msg(count_of(logbuf, msg) == 1, "%s", logbuf);
	write_rel("benchmarks/1.g/2.bad/config.json", "{\"languages\": []}");
	catalog_free(load_ok("x64"));
	write_rel("benchmarks/1.g/2.bad/config.json", "{\"languages\": 5}");
	catalog_free(load_ok("x64"));
	catalog_free(load_ok("x64"));
	ck_assert_msg(count_of(logbuf, msg) == 2, "%s", logbuf);
}
END_TEST

START_TEST(test_free_null)
{
	catalog_free(NULL);
	ck_assert_ptr_null(catalog_platform(NULL, "aws"));
	ck_assert_ptr_null(catalog_runtime(NULL, "python-3.9"));
	ck_assert(!benchmark_has_language(NULL, "python"));
}
END_TEST

static Suite *catalog_suite(void)
{
	Suite *s = suite_create("catalog");
	TCase *real = tcase_create("real");
	TCase *bad = tcase_create("malformed");

	tcase_add_checked_fixture(real, setup, teardown);
	tcase_add_test(real, test_real_platforms_and_general);
	tcase_add_test(real, test_real_aws_runtimes);
	tcase_add_test(real, test_real_arm64_default);
	tcase_add_test(real, test_real_benchmarks_and_packages);
	tcase_add_test(real, test_real_deployment);
	suite_add_tcase(s, real);

	tcase_add_checked_fixture(bad, setup, teardown);
	tcase_add_test(bad, test_systems_syntax_error);
	tcase_add_test(bad, test_systems_missing);
	tcase_add_test(bad, test_systems_not_object);
	tcase_add_test(bad, test_root_not_directory);
	tcase_add_test(bad, test_bad_arch);
	tcase_add_test(bad, test_bad_platforms_skipped);
	tcase_add_test(bad, test_bad_benchmarks_skipped);
	tcase_add_test(bad, test_language_forms);
	tcase_add_test(bad, test_null_packages_and_missing_files);
	tcase_add_test(bad, test_package_normalisation);
	tcase_add_test(bad, test_odd_config_values);
	tcase_add_test(bad, test_hostile_names);
	tcase_add_test(bad, test_config_not_a_plain_file);
	tcase_add_test(bad, test_compiled_languages);
	tcase_add_test(bad, test_stamp_follows_changes);
	tcase_add_test(bad, test_warnings_once);
	tcase_add_test(bad, test_variant_runtimes);
	tcase_add_test(bad, test_free_null);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(catalog_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
