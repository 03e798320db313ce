/*
 * test_pipeline.c - input manifests/hashes and the build pipeline, on a copy
 * of the bundled example suite (SOURCE_ROOT/examples/suite).
 *
 * Dependency installation is not exercised here (installer "none"): the mount
 * tests cover pip3/npm through a real build.
 */
#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "fsutil.h"
#include "imagebuild.h"
#include "inputs.h"
#include "pipeline.h"

#define BENCH_110 "benchmarks/100.webapps/110.dynamic-html"

static char root[256];

static void setup(void)
{
	char tmpl[] = "/tmp/test_pipeline.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(root, sizeof(root), "%s/suite", tmpl);
	ck_assert_int_eq(copy_tree(SOURCE_ROOT "/examples/suite", root, NULL, NULL), 0);
}

static void teardown(void)
{
	char *parent = strdup(root);
	*strrchr(parent, '/') = '\0';
	rm_rf(parent);
	free(parent);
}

static void write_text(const char *rel, const char *text, const char *mode)
{
	char *p = path_join(root, rel);
	FILE *f = fopen(p, mode);
	ck_assert_msg(f != NULL, "cannot open %s", p);
	fputs(text, f);
	fclose(f);
	free(p);
}

static void hash_of(const char *platform, const char *language, const char *bench_dir,
		    const struct input_manifest *prev, struct input_manifest *m, char hex[65])
{
	struct input_spec spec = {
		.root = root, .benchmark_dir = bench_dir, .platform = platform,
		.language = language, .version = "3.11", .arch = "x64", .identity = "builder=none",
	};
	char *err = NULL;
	ck_assert_int_eq(inputs_collect(&spec, prev, m, &err), 0);
	inputs_hash(m, hex);
	free(err);
}

static void python_hash(char hex[65])
{
	struct input_manifest m;
	hash_of("aws", "python", BENCH_110, NULL, &m, hex);
	inputs_clear(&m);
}

START_TEST(hash_is_stable)
{
	char a[65], b[65];
	python_hash(a);
	python_hash(b);
	ck_assert_str_eq(a, b);
}
END_TEST

/* Each kind of input the reference builder misses must change the hash. */
static const char *const edits[] = {
	BENCH_110 "/python/function.py",          /* code */
	BENCH_110 "/python/templates/template.html", /* language-folder data */
	BENCH_110 "/config.json",                 /* modules decide packages */
	BENCH_110 "/python/init.sh",
	BENCH_110 "/python/package.sh",
	BENCH_110 "/python/requirements.txt.3.10",
	"benchmarks/wrappers/aws/python/handler.py",
};

START_TEST(edit_changes_hash)
{
	char before[65], after[65];
	python_hash(before);
	write_text(edits[_i], "\n# edited\n", "a");
	python_hash(after);
	ck_assert_msg(strcmp(before, after) != 0, "editing %s did not change the hash", edits[_i]);
}
END_TEST

START_TEST(benchmark_data_and_new_files_change_hash)
{
	char before[65], after[65];
	python_hash(before);
	write_text(BENCH_110 "/init.sh", "#!/bin/bash\n", "w"); /* new benchmark-level init.sh */
	python_hash(after);
	ck_assert_str_ne(before, after);

	char *from = path_join(root, BENCH_110 "/python/templates/template.html");
	char *to = path_join(root, BENCH_110 "/python/templates/renamed.html");
	ck_assert_int_eq(rename(from, to), 0);
	memcpy(before, after, sizeof(before));
	python_hash(after);
	ck_assert_msg(strcmp(before, after) != 0, "a rename must change the hash");
	free(from);
	free(to);
}
END_TEST

START_TEST(unrelated_edits_keep_hash)
{
	char before[65], after[65];
	python_hash(before);
	/* the nodejs folder, another platform's wrappers and systems.json subtree */
	write_text(BENCH_110 "/nodejs/function.js", "// edited\n", "a");
	write_text("benchmarks/wrappers/gcp/python/handler.py", "# edited\n", "a");
	char *sys = path_join(root, "configs/systems.json");
	json_t *j = json_load_file(sys, 0, NULL);
	ck_assert_ptr_nonnull(j);
	json_object_set_new(json_object_get(j, "gcp"), "extra", json_string("x"));
	ck_assert_int_eq(json_dump_file(j, sys, JSON_INDENT(2)), 0);
	python_hash(after);
	ck_assert_str_eq(before, after);

	/* ...while this platform's language subtree does count */
	json_t *aws_py = json_object_get(json_object_get(json_object_get(j, "aws"), "languages"), "python");
	json_array_append_new(json_object_get(json_object_get(aws_py, "deployment"), "packages"),
			      json_string("six"));
	ck_assert_int_eq(json_dump_file(j, sys, JSON_INDENT(2)), 0);
	python_hash(after);
	ck_assert_str_ne(before, after);
	json_decref(j);
	free(sys);
}
END_TEST

/* Pretends every recorded hash is wrong: a hash that survives a collection
 * was reused from the stat alone, one that is right again was re-read. */
static void poison(struct input_manifest *m)
{
	for (size_t i = 0; i < m->n_files; i++)
		memset(m->files[i].sha256, 0, sizeof(m->files[i].sha256));
}

/* Moves the recorded stat time 10 s on, so no entry is racy any more. */
static void age(struct input_manifest *m)
{
	m->stat_ns += 10LL * 1000000000LL;
}

/* The fast path: a file whose stat key is unchanged is not re-read; but by
 * git's racy rule, a stat taken within INPUTS_RACY_SLACK_NS of its file's
 * mtime/ctime proves nothing, even when the next stat is identical. */
START_TEST(stat_fast_path_and_racy_rule)
{
	struct input_manifest first, second, third;
	char h1[65], h2[65], h3[65], poisoned[65];
	/* the suite was copied just now: every entry of first is racy */
	hash_of("aws", "python", BENCH_110, NULL, &first, h1);
	ck_assert_int_gt(first.stat_ns, 0);
	poison(&first);
	hash_of("aws", "python", BENCH_110, &first, &second, h2);
	ck_assert_str_eq(h1, h2);
	/* recorded long enough after the last change, the same stats are trusted */
	age(&second);
	poison(&second);
	inputs_hash(&second, poisoned);
	hash_of("aws", "python", BENCH_110, &second, &third, h3);
	ck_assert_str_eq(h3, poisoned);
	inputs_clear(&first);
	inputs_clear(&second);
	inputs_clear(&third);
}
END_TEST

/* cp -p, rsync -a, tar -x, touch -r restore the mtime; the ctime moves anyway. */
START_TEST(same_size_edit_with_restored_mtime_is_seen)
{
	struct input_manifest first, second;
	char h1[65], h2[65], h3[65];
	hash_of("aws", "python", BENCH_110, NULL, &first, h1);
	age(&first); /* rule out the racy rule: only the stat key can tell */

	char *p = path_join(root, BENCH_110 "/python/function.py");
	struct stat before, after;
	ck_assert_int_eq(stat(p, &before), 0);
	int fd = open(p, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	/* the ctime has the kernel's coarse tick: edit until it moved */
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(pwrite(fd, i % 2 ? "Y" : "X", 1, 0), 1); /* same size, same inode */
		struct timespec times[2] = { before.st_atim, before.st_mtim };
		ck_assert_int_eq(futimens(fd, times), 0);
		ck_assert_int_eq(fstat(fd, &after), 0);
		if (after.st_ctim.tv_sec != before.st_ctim.tv_sec ||
		    after.st_ctim.tv_nsec != before.st_ctim.tv_nsec)
			break;
		usleep(2000);
	}
	close(fd);
	ck_assert_int_eq(after.st_size, before.st_size);
	ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	ck_assert_int_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);

	hash_of("aws", "python", BENCH_110, &first, &second, h2);
	ck_assert_str_ne(h1, h2);
	python_hash(h3);
	ck_assert_str_eq(h2, h3);
	free(p);
	inputs_clear(&first);
	inputs_clear(&second);
}
END_TEST

/* Manifests survive a JSON round trip; one written before ctime, dev and
 * stat_ns existed still parses, and trusts no entry. */
START_TEST(manifest_json)
{
	struct input_manifest m, back, next;
	char h1[65], h2[65], h3[65];
	hash_of("aws", "python", BENCH_110, NULL, &m, h1);
	age(&m);
	char *text = inputs_to_json(&m);
	ck_assert_int_eq(inputs_from_json(text, &back), 0);
	inputs_hash(&back, h2);
	ck_assert_str_eq(h1, h2);
	ck_assert_int_eq(back.stat_ns, m.stat_ns);
	ck_assert_uint_eq(back.n_files, m.n_files);
	for (size_t i = 0; i < m.n_files; i++) {
		ck_assert_int_eq(back.files[i].ctime_ns, m.files[i].ctime_ns);
		ck_assert_uint_eq(back.files[i].dev, m.files[i].dev);
		ck_assert_uint_eq(back.files[i].ino, m.files[i].ino);
	}
	inputs_clear(&back);

	/* the single JSON object of older versions, without the fields added
	 * last (ctime_ns, dev, stat_ns), and with poisoned hashes */
	json_t *files = json_array();
	for (size_t i = 0; i < m.n_files; i++)
		json_array_append_new(files, json_pack("{s:s, s:I, s:I, s:I, s:s}",
			"path", inputs_path(&m, i), "size", (json_int_t)m.files[i].size,
			"mtime_ns", (json_int_t)m.files[i].mtime_ns, "ino", (json_int_t)m.files[i].ino,
			"sha256", "0000000000000000000000000000000000000000000000000000000000000000"));
	json_t *j = json_pack("{s:s, s:o}", "identity", m.identity, "files", files);
	ck_assert_ptr_nonnull(j);
	char *old = json_dumps(j, JSON_COMPACT);
	ck_assert_int_eq(inputs_from_json(old, &back), 0);
	ck_assert_int_eq(back.stat_ns, 0);
	hash_of("aws", "python", BENCH_110, &back, &next, h3);
	ck_assert_str_eq(h1, h3); /* every file was re-read */
	inputs_clear(&back);

	ck_assert_int_eq(inputs_from_json("{\"files\": 3}", &back), -EINVAL);
	json_decref(j);
	free(old);
	free(text);
	inputs_clear(&m);
	inputs_clear(&back);
	inputs_clear(&next);
}
END_TEST

/* What the previous version stored (one JSON object, every field) parses
 * and keeps its stat_ns, so an upgrade re-reads nothing; a name that is not
 * UTF-8 survives the text form; a cut-off text is refused. */
START_TEST(manifest_text_compat)
{
	struct input_manifest m, back;
	char h1[65], h2[65];
	write_text(BENCH_110 "/python/templates/caf\xe9.html", "latin-1 name\n", "w");
	hash_of("aws", "python", BENCH_110, NULL, &m, h1);

	json_t *files = json_array();
	for (size_t i = 0; i < m.n_files; i++) {
		char hex[65];
		for (int k = 0; k < 32; k++)
			snprintf(hex + 2 * k, 3, "%02x", m.files[i].sha256[k]);
		json_t *path = json_string(inputs_path(&m, i));
		if (!path) /* the old format could not hold it: leave it out */
			continue;
		json_array_append_new(files, json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:s}",
			"path", path, "size", (json_int_t)m.files[i].size,
			"mtime_ns", (json_int_t)m.files[i].mtime_ns,
			"ctime_ns", (json_int_t)m.files[i].ctime_ns, "ino", (json_int_t)m.files[i].ino,
			"dev", (json_int_t)m.files[i].dev, "sha256", hex));
	}
	ck_assert_uint_eq(json_array_size(files), m.n_files - 1);
	json_t *j = json_pack("{s:s, s:I, s:o}", "identity", m.identity, "stat_ns",
			      (json_int_t)m.stat_ns, "files", files);
	char *old = json_dumps(j, JSON_COMPACT);
	ck_assert_int_eq(inputs_from_json(old, &back), 0);
	ck_assert_int_eq(back.stat_ns, m.stat_ns);
	ck_assert_uint_eq(back.n_files, m.n_files - 1);
	inputs_clear(&back);

	char *text = inputs_to_json(&m);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, "{\"hex\":"));
	ck_assert_int_eq(inputs_from_json(text, &back), 0);
	inputs_hash(&back, h2);
	ck_assert_str_eq(h1, h2);
	bool found = false;
	for (size_t i = 0; i < back.n_files; i++)
		found = found || strcmp(inputs_path(&back, i),
					BENCH_110 "/python/templates/caf\xe9.html") == 0;
	ck_assert(found);
	inputs_clear(&back);

	text[strlen(text) - 10] = '\0';
	ck_assert_int_eq(inputs_from_json(text, &back), -EINVAL);
	json_decref(j);
	free(old);
	free(text);
	inputs_clear(&m);
}
END_TEST

/* The input hash is that of every earlier version (a cache stays fresh
 * across an upgrade): sha256 over identity NUL, then per file in path order
 * path NUL hex-sha256 NUL. */
START_TEST(hash_encoding_is_stable)
{
	struct input_manifest m;
	char got[65], want[65], file_hex[65];
	hash_of("aws", "python", BENCH_110, NULL, &m, got);
	struct sha256_ctx ctx;
	sha256_init(&ctx);
	sha256_update(&ctx, strlen(m.identity) + 1, (const uint8_t *)m.identity);
	for (size_t i = 0; i < m.n_files; i++) {
		const char *path = inputs_path(&m, i);
		char *abs = path_join(root, path);
		if (strcmp(path, "configs/systems.json") == 0)
			ck_assert_int_eq(inputs_systems_hash(abs, "aws", "python", file_hex), 0);
		else
			ck_assert_int_eq(sha256_hex_file(abs, file_hex), 0);
		if (i > 0)
			ck_assert_int_lt(strcmp(inputs_path(&m, i - 1), path), 0);
		sha256_update(&ctx, strlen(path) + 1, (const uint8_t *)path);
		sha256_update(&ctx, sizeof(file_hex), (const uint8_t *)file_hex);
		free(abs);
	}
	sha256_digest_hex(&ctx, want);
	ck_assert_str_eq(got, want);
	inputs_clear(&m);
}
END_TEST

/* ---- pipeline ------------------------------------------------------------ */

/* Builds platform/runtime/benchmark with installer none into a zip; returns
 * the zip's path (malloc'd) or NULL with *err set. */
static char *build(const char *platform, const char *runtime, const char *bench, char **err)
{
	char msg[256];
	struct catalog *cat = catalog_load(root, "x64", msg, sizeof(msg));
	ck_assert_msg(cat != NULL, "%s", msg);
	const struct cat_package *pkg = catalog_package(cat, platform, runtime, bench);
	ck_assert_ptr_nonnull(pkg);
	char *work = NULL;
	char *parent = strdup(root);
	*strrchr(parent, '/') = '\0';
	ck_assert_int_eq(make_temp_dir(parent, "work", &work), 0);
	char *zip = str_printf("%s/%s.zip", parent, platform);
	char *log = str_printf("%s/build.log", parent);
	int out = open(zip, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	struct pipeline_request req = { .cat = cat, .pkg = pkg, .installer = INSTALLER_NONE,
					.workdir = work, .out_fd = out, .log_fd = logfd,
					.cancel_fd = -1 };
	int rc = pipeline_build_zip(&req, err);
	close(out);
	close(logfd);
	catalog_free(cat);
	free(work);
	free(parent);
	free(log);
	if (rc < 0) {
		free(zip);
		return NULL;
	}
	return zip;
}

/* Reads entry name of zip into a malloc'd string, or NULL when absent. */
static char *zip_entry(const char *zip, const char *name)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_zip(a);
	ck_assert_int_eq(archive_read_open_filename(a, zip, 16384), ARCHIVE_OK);
	struct archive_entry *e;
	char *out = NULL;
	while (!out && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		if (strcmp(archive_entry_pathname(e), name) != 0)
			continue;
		size_t len = (size_t)archive_entry_size(e);
		out = calloc(1, len + 1);
		ck_assert_int_eq(archive_read_data(a, out, len), (la_ssize_t)len);
	}
	archive_read_free(a);
	return out;
}

static void set_packages(const char *platform, const char *language, json_t *packages,
			 json_t *module_packages)
{
	char *sys = path_join(root, "configs/systems.json");
	json_t *j = json_load_file(sys, 0, NULL);
	json_t *dep = json_object_get(json_object_get(json_object_get(json_object_get(j, platform),
						"languages"), language), "deployment");
	ck_assert_ptr_nonnull(dep);
	json_object_set_new(dep, "packages", packages);
	if (module_packages)
		json_object_set_new(dep, "module_packages", module_packages);
	ck_assert_int_eq(json_dump_file(j, sys, JSON_INDENT(2)), 0);
	json_decref(j);
	free(sys);
}

START_TEST(requirements_lines_are_separate)
{
	/* no trailing newline in the benchmark's file, two packages appended */
	write_text(BENCH_110 "/python/requirements.txt", "first-req", "w");
	set_packages("aws", "python", json_pack("[s, s]", "alpha==1", "beta>=2"), NULL);
	write_text(BENCH_110 "/config.json", "{\"languages\": [\"python\"], \"modules\": [\"storage\"]}", "w");
	set_packages("local", "python", json_pack("[]"), json_pack("{s:[s]}", "storage", "gamma"));

	char *err = NULL;
	char *zip = build("aws", "python-3.11", "110.dynamic-html", &err);
	ck_assert_msg(zip != NULL, "%s", err);
	char *req = zip_entry(zip, "requirements.txt");
	ck_assert_str_eq(req, "first-req\nalpha==1\nbeta>=2\n");
	free(req);
	free(zip);

	/* module packages come only with the module; python-3.10 has its own file */
	zip = build("local", "python-3.10", "110.dynamic-html", &err);
	ck_assert_msg(zip != NULL, "%s", err);
	req = zip_entry(zip, "function/requirements.txt.3.10");
	ck_assert_ptr_nonnull(req);
	ck_assert_msg(strstr(req, "\ngamma\n") != NULL, "got: %s", req);
	free(req);
	req = zip_entry(zip, "requirements.txt");
	ck_assert_ptr_null(strstr(req, "gamma"));
	free(req);
	free(zip);
}
END_TEST

START_TEST(nodejs_dependencies_merge)
{
	set_packages("gcp", "nodejs", json_pack("{s:s}", "uuid", "3.4.0"), NULL);
	char *err = NULL;
	char *zip = build("gcp", "nodejs-20", "110.dynamic-html", &err);
	ck_assert_msg(zip != NULL, "%s", err);
	char *text = zip_entry(zip, "function/package.json");
	json_t *pkg = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(pkg);
	json_t *deps = json_object_get(pkg, "dependencies");
	ck_assert_str_eq(json_string_value(json_object_get(deps, "uuid")), "3.4.0");
	ck_assert_ptr_nonnull(json_object_get(deps, "sebs-example-lib"));
	char *index = zip_entry(zip, "index.js"); /* gcp: handler.js -> index.js */
	ck_assert_ptr_nonnull(index);
	json_decref(pkg);
	free(text);
	free(index);
	free(zip);
}
END_TEST

START_TEST(wrappers_never_overwrite)
{
	write_text(BENCH_110 "/python/storage.py", "# the benchmark's own storage\n", "w");
	char *err = NULL;
	char *zip = build("aws", "python-3.11", "110.dynamic-html", &err);
	ck_assert_msg(zip != NULL, "%s", err);
	char *storage = zip_entry(zip, "function/storage.py");
	ck_assert_str_eq(storage, "# the benchmark's own storage\n");
	char *handler = zip_entry(zip, "handler.py");
	ck_assert_ptr_nonnull(handler);
	free(storage);
	free(handler);
	free(zip);
}
END_TEST

START_TEST(failing_init_fails_build)
{
	/* errexit: a failing command in the middle fails the build */
	write_text(BENCH_110 "/init.sh", "#!/bin/bash\nfalse\necho not reached\n", "w");
	char *err = NULL;
	char *zip = build("aws", "python-3.11", "110.dynamic-html", &err);
	ck_assert_ptr_null(zip);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "init.sh") && strstr(err, "status 1"), "got: %s", err);
	free(err);
}
END_TEST

START_TEST(missing_wrapper_fails_build)
{
	char *p = path_join(root, "benchmarks/wrappers/azure/python/handler.py");
	ck_assert_int_eq(unlink(p), 0);
	char *err = NULL;
	char *zip = build("azure", "python-3.11", "110.dynamic-html", &err);
	ck_assert_ptr_null(zip);
	ck_assert_msg(err && strstr(err, "wrappers/azure/python/handler.py"), "got: %s", err);
	free(err);
	free(p);
}
END_TEST

/* Steps 2 and 4 refuse a symlink that leads out of the benchmark folder (the
 * wrapper folder), naming the link and its target; the input walk refuses
 * it first, with the same words. */
START_TEST(symlink_out_of_tree_fails_build)
{
	static const struct {
		const char *link, *platform, *words;
	} cases[] = {
		{ BENCH_110 "/python/leak.py", "aws",
		  "python/leak.py -> /etc/hostname points outside " },
		{ "benchmarks/wrappers/aws/python/storage.py", "aws",
		  "wrappers/aws/python/storage.py -> /etc/hostname points outside " },
	};
	char *link = path_join(root, cases[_i].link);
	unlink(link);
	ck_assert_int_eq(symlink("/etc/hostname", link), 0);

	char *err = NULL;
	char *zip = build(cases[_i].platform, "python-3.11", "110.dynamic-html", &err);
	ck_assert_ptr_null(zip);
	ck_assert_msg(err && strstr(err, cases[_i].words), "got: %s", err);
	free(err);

	struct input_manifest m;
	struct input_spec spec = {
		.root = root, .benchmark_dir = BENCH_110, .platform = cases[_i].platform,
		.language = "python", .version = "3.11", .arch = "x64",
	};
	err = NULL;
	ck_assert_int_eq(inputs_collect(&spec, NULL, &m, &err), -EPERM);
	ck_assert_msg(err && strstr(err, cases[_i].words), "got: %s", err);
	free(err);
	free(link);
}
END_TEST

START_TEST(same_inputs_same_zip)
{
	char *err = NULL;
	char *zip = build("azure", "python-3.11", "311.compression", &err);
	ck_assert_msg(zip != NULL, "%s", err);
	char a[65], b[65];
	ck_assert_int_eq(sha256_hex_file(zip, a), 0);
	free(zip);
	sleep(1); /* different timestamps on every copied file */
	zip = build("azure", "python-3.11", "311.compression", &err);
	ck_assert_int_eq(sha256_hex_file(zip, b), 0);
	ck_assert_str_eq(a, b);
	char *data = zip_entry(zip, "handler/resources/lorem.txt");
	ck_assert_ptr_nonnull(data);
	free(data);
	free(zip);
}
END_TEST

/* SeBS's Config.benchmark_image_tag, for comparison:
 * function.{system}.{benchmark}.{language}-{version}-{arch}[-{prefix}]-{SeBS_version} */
START_TEST(image_tags_follow_sebs)
{
	struct image_tag_parts p = { "aws", "110.dynamic-html", "python", "3.11", "x64", NULL, "1.2.1" };
	char *tag = image_function_tag(&p);
	ck_assert_str_eq(tag, "function.aws.110.dynamic-html.python-3.11-x64-1.2.1");
	free(tag);
	p = (struct image_tag_parts){ "gcp", "010.sleep", "nodejs", "20", "arm64", "ci_run.7", NULL };
	tag = image_function_tag(&p);
	ck_assert_str_eq(tag, "function.gcp.010.sleep.nodejs-20-arm64-ci_run.7-unknown");
	free(tag);
	p.prefix = "";
	tag = image_function_tag(&p);
	ck_assert_str_eq(tag, "function.gcp.010.sleep.nodejs-20-arm64-unknown");
	free(tag);

	char *name = NULL, *msg = NULL;
	ck_assert_int_eq(image_function_name(&p, "sebsfs/bench", NULL, &name, &msg), 0);
	ck_assert_str_eq(name, "sebsfs/bench:function.gcp.010.sleep.nodejs-20-arm64-unknown");
	free(name);
	ck_assert_int_eq(image_function_name(&p, "sebsfs/bench", "127.0.0.1:5000/x", &name, &msg), 0);
	ck_assert_str_eq(name,
			 "127.0.0.1:5000/x/sebsfs/bench:function.gcp.010.sleep.nodejs-20-arm64-unknown");
	free(name);
	ck_assert_int_eq(image_function_name(&p, NULL, NULL, &name, &msg), -EINVAL);
	ck_assert_ptr_null(name);
	ck_assert_ptr_nonnull(strstr(msg, "no repository"));
	free(msg);
	msg = NULL;
}
END_TEST

START_TEST(image_tag_limits)
{
	char prefix[IMAGE_TAG_MAX + 2];
	memset(prefix, 'a', sizeof(prefix));
	prefix[IMAGE_TAG_MAX] = '\0';
	ck_assert(image_tag_valid(prefix));
	prefix[IMAGE_TAG_MAX] = 'a';
	prefix[IMAGE_TAG_MAX + 1] = '\0';
	ck_assert(!image_tag_valid(prefix));
	ck_assert(image_tag_valid("_x.y-z9"));
	ck_assert(!image_tag_valid(""));
	ck_assert(!image_tag_valid(".x"));
	ck_assert(!image_tag_valid("-x"));
	ck_assert(!image_tag_valid("a/b"));
	ck_assert(!image_tag_valid("a:b"));
	ck_assert(!image_tag_valid("a b"));

	/* the prefix fits alone but the whole tag does not: said, nothing named */
	char *name = NULL, *msg = NULL;
	prefix[100] = '\0';
	struct image_tag_parts p = { "aws", "110.dynamic-html", "python", "3.11", "x64", prefix,
				     "1.2.1" };
	ck_assert_int_eq(image_function_name(&p, "r", NULL, &name, &msg), -EINVAL);
	ck_assert_ptr_null(name);
	ck_assert_msg(strstr(msg, "Docker allows at most 128"), "%s", msg);
	free(msg);
	msg = NULL;
	/* a tree value Docker cannot take in a tag */
	p.prefix = NULL;
	p.version = "3 11";
	ck_assert_int_eq(image_function_name(&p, "r", NULL, &name, &msg), -EINVAL);
	ck_assert_msg(strstr(msg, "not a valid Docker tag"), "%s", msg);
	free(msg);
}
END_TEST

/* ---- the host toolchain in a host-built package's key ---- */

static char tools_dir[256];

static void write_tool(const char *name, const char *version_line)
{
	char *path = path_join(tools_dir, name);
	char *text = str_printf("#!/bin/sh\nprintf '%%s\\n' '%s'\n", version_line);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0755), 0);
	free(path);
	free(text);
}

static char *host_identity(const char *language, bool may_run, bool *known)
{
	struct cat_runtime rt = { .language = (char *)language, .version = "3.11", .arch = "x64",
				  .dirname = "x" };
	char *id = NULL;
	ck_assert_int_eq(pipeline_host_identity(&rt, may_run, &id, known), 0);
	return id;
}

START_TEST(host_identity_names_the_tools)
{
	char tmpl[] = "/tmp/test_pipeline_tools.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(tools_dir, sizeof(tools_dir), "%s", tmpl);
	setenv("PATH", tools_dir, 1);
	setenv("HOME", tools_dir, 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("PIP_INDEX_URL");
	write_tool("pip3", "pip 23.2.1 from /home/someone/venv/lib/pip (python 3.11)");
	write_tool("python3", "Python 3.11.7");
	bool known = true;

	/* a request thread never runs the tools: not known yet */
	char *id = host_identity("python", false, &known);
	ck_assert(!known);
	ck_assert_msg(strncmp(id, "tools=unknown;configuration=", strlen("tools=unknown;configuration="))
		      == 0, "%s", id);
	free(id);
	/* run: the versions, without the install path */
	id = host_identity("python", true, &known);
	ck_assert(known);
	static const char want[] = "tools=pip3 pip 23.2.1 (python 3.11); python3 Python 3.11.7;"
				   "configuration=";
	ck_assert_msg(strncmp(id, want, strlen(want)) == 0, "%s", id);
	/* remembered: the same answer without running them */
	char *again = host_identity("python", false, &known);
	ck_assert(known);
	ck_assert_str_eq(again, id);
	free(again);
	/* another home folder without configuration files: the same */
	setenv("HOME", "/nonexistent/other-home", 1);
	again = host_identity("python", false, &known);
	ck_assert_str_eq(again, id);
	free(again);
	/* a variable pip reads: another configuration */
	setenv("PIP_INDEX_URL", "http://index.example/simple", 1);
	again = host_identity("python", false, &known);
	ck_assert(known);
	ck_assert_str_ne(again, id);
	free(again);
	unsetenv("PIP_INDEX_URL");
	/* another pip3: not known until it runs, then another identity */
	write_tool("pip3", "pip 24.0 from /usr/lib/python3/dist-packages/pip (python 3.11)");
	again = host_identity("python", false, &known);
	ck_assert(!known);
	free(again);
	again = host_identity("python", true, &known);
	ck_assert(known);
	ck_assert_msg(strstr(again, "tools=pip3 pip 24.0 (python 3.11); python3 Python 3.11.7;"),
		      "%s", again);
	free(again);
	free(id);

	/* java: mvn's colour codes go; cpp: cmake and the compiler */
	write_tool("mvn", "\x1b[1mApache Maven 3.8.7\x1b[m");
	write_tool("java", "openjdk 17.0.9 2023-10-17");
	id = host_identity("java", true, &known);
	ck_assert_msg(strstr(id, "tools=mvn Apache Maven 3.8.7; java openjdk 17.0.9 2023-10-17;"),
		      "%s", id);
	free(id);
	write_tool("cmake", "cmake version 3.25.1");
	id = host_identity("cpp", true, &known);
	ck_assert_msg(strstr(id, "tools=cmake cmake version 3.25.1; c++ ?;"), "%s", id);
	free(id);
	rm_rf(tools_dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pipeline");
	TCase *tc = tcase_create("inputs");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, hash_is_stable);
	tcase_add_loop_test(tc, edit_changes_hash, 0, sizeof(edits) / sizeof(edits[0]));
	tcase_add_test(tc, benchmark_data_and_new_files_change_hash);
	tcase_add_test(tc, unrelated_edits_keep_hash);
	tcase_add_test(tc, stat_fast_path_and_racy_rule);
	tcase_add_test(tc, same_size_edit_with_restored_mtime_is_seen);
	tcase_add_test(tc, manifest_json);
	tcase_add_test(tc, manifest_text_compat);
	tcase_add_test(tc, hash_encoding_is_stable);
	suite_add_tcase(s, tc);

	tc = tcase_create("build");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, requirements_lines_are_separate);
	tcase_add_test(tc, nodejs_dependencies_merge);
	tcase_add_test(tc, wrappers_never_overwrite);
	tcase_add_test(tc, failing_init_fails_build);
	tcase_add_test(tc, missing_wrapper_fails_build);
	tcase_add_loop_test(tc, symlink_out_of_tree_fails_build, 0, 2);
	tcase_add_test(tc, same_inputs_same_zip);
	suite_add_tcase(s, tc);

	tc = tcase_create("host_identity");
	tcase_add_test(tc, host_identity_names_the_tools);
	suite_add_tcase(s, tc);

	tc = tcase_create("image_tag");
	tcase_add_test(tc, image_tags_follow_sebs);
	tcase_add_test(tc, image_tag_limits);
	suite_add_tcase(s, tc);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
