/*
 * test_langgen.c - SeBS's generated texts (langgen.h) compared byte for
 * byte with what SeBS's own functions produced for the same inputs:
 * tests/unit/fixtures/langgen/manifest.json lists the cases (inputs,
 * expected files, SeBS's errors, log lines and image look-ups), written by
 * make-fixtures.py there.  The rest checks what SeBS does not have: the
 * refusals, and the callback contract of the Dockerfile.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "langgen.h"

#define FIXTURES SOURCE_ROOT "/tests/unit/fixtures/langgen"

static json_t *manifest;

static char *fixture(const char *rel, size_t *len)
{
	char *path = path_join(FIXTURES, rel);
	char *data = NULL;
	int rc = read_file(path, &data, len);
	ck_assert_msg(rc == 0, "read %s: %s", path, strerror(-rc));
	free(path);
	return data;
}

static json_t *manifest_case(const char *kind, int i)
{
	json_t *c = json_array_get(json_object_get(manifest, kind), (size_t)i);
	ck_assert_ptr_nonnull(c);
	return c;
}

static const char *case_str(json_t *c, const char *key)
{
	return json_string_value(json_object_get(c, key));
}

/* Equal bytes, or a failure that shows where they part. */
static void assert_same_text(const char *name, const char *got, size_t got_len, const char *want,
			     size_t want_len)
{
	size_t i = 0;
	while (i < got_len && i < want_len && got[i] == want[i])
		i++;
	if (i == got_len && i == want_len)
		return;
	size_t from = i > 40 ? i - 40 : 0;
	ck_abort_msg("%s: differs from SeBS's at byte %zu (lengths %zu, %zu)\n"
		     "--- got from there:\n%.*s\n--- SeBS's:\n%.*s\n", name, i, got_len, want_len,
		     (int)(got_len - from < 120 ? got_len - from : 120), got + from,
		     (int)(want_len - from < 120 ? want_len - from : 120), want + from);
}

/* The strings of a JSON array, as a malloc'd vector (the strings are the
 * array's). */
static const char **string_vector(json_t *arr, size_t *n)
{
	*n = json_array_size(arr);
	const char **v = calloc(*n + 1, sizeof(*v));
	ck_assert_ptr_nonnull(v);
	for (size_t i = 0; i < *n; i++)
		v[i] = json_string_value(json_array_get(arr, i));
	return v;
}

/* ---- CMakeLists.txt ---------------------------------------------------- */

START_TEST(cmakelists_matches_sebs)
{
	json_t *c = manifest_case("cmake", _i);
	size_t n, want_len;
	const char **deps = string_vector(json_object_get(c, "deps"), &n);
	char *want = fixture(case_str(c, "expect"), &want_len);
	char *out = NULL, *err = NULL;
	int rc = langgen_cmakelists(deps, n, json_is_true(json_object_get(c, "storage")),
				    json_is_true(json_object_get(c, "nosql")), &out, &err);
	ck_assert_msg(rc == 0, "%s: %s", case_str(c, "name"), err);
	assert_same_text(case_str(c, "name"), out, strlen(out), want, want_len);
	free(out);
	free(want);
	free(deps);
}
END_TEST

START_TEST(dedent_matches_python)
{
	json_t *c = manifest_case("dedent", _i);
	char *out = langgen_dedent(case_str(c, "in"));
	ck_assert_ptr_nonnull(out);
	const char *want = case_str(c, "out");
	assert_same_text(case_str(c, "in"), out, strlen(out), want, strlen(want));
	free(out);
}
END_TEST

START_TEST(cmakelists_unknown_dependency)
{
	const char *deps[] = { "sdk", "Boost" };
	char *out = (char *)"untouched", *err = NULL;
	ck_assert_int_eq(langgen_cmakelists(deps, 2, false, false, &out, &err), -EINVAL);
	ck_assert_ptr_null(out);
	ck_assert_ptr_nonnull(strstr(err, "\"Boost\""));
	ck_assert_ptr_nonnull(strstr(err, "sdk, runtime, torch, opencv, libjpeg-turbo, igraph,"
					  " boost, hiredis, rapidjson"));
	free(err);
}
END_TEST

START_TEST(dependency_table)
{
	size_t n;
	const struct langgen_cpp_dependency *t = langgen_cpp_dependencies(&n);
	const char *names[] = { "sdk", "runtime", "torch", "opencv", "libjpeg-turbo", "igraph",
				"boost", "hiredis", "rapidjson" };
	ck_assert_uint_eq(n, 9);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(t[i].name, names[i]);
		ck_assert(langgen_cpp_dependency_known(names[i]));
		ck_assert_ptr_eq(langgen_cpp_dependency(names[i]), &t[i]);
	}
	ck_assert(!langgen_cpp_dependency_known("SDK"));
	ck_assert(!langgen_cpp_dependency_known("boost "));
	ck_assert(!langgen_cpp_dependency_known(""));
	ck_assert(!langgen_cpp_dependency_known(NULL));
}
END_TEST

/* ---- pom.xml ------------------------------------------------------------ */

/* Runs langgen_pom_dependencies on a fixture pom and packages given as JSON
 * text (so jansson orders them as it reads them). */
static int pom_run(const char *pom_rel, const char *packages_json, char **out, size_t *out_len,
		   char **err)
{
	size_t len;
	char *pom = fixture(pom_rel, &len);
	json_error_t jerr;
	json_t *packages = json_loads(packages_json, 0, &jerr);
	ck_assert_msg(packages != NULL, "%s: %s", packages_json, jerr.text);
	int rc = langgen_pom_dependencies(pom, len, packages, out, out_len, err);
	json_decref(packages);
	free(pom);
	return rc;
}

START_TEST(pom_matches_sebs)
{
	json_t *c = manifest_case("pom", _i);
	const char *name = case_str(c, "name");
	char *out = NULL, *err = NULL;
	size_t out_len = 0;
	int rc = pom_run(case_str(c, "pom"), case_str(c, "packages"), &out, &out_len, &err);
	if (case_str(c, "expect")) {
		size_t want_len;
		char *want = fixture(case_str(c, "expect"), &want_len);
		ck_assert_msg(rc == 0, "%s: %s", name, err);
		assert_same_text(name, out, out_len, want, want_len);
		free(want);
	} else {
		/* SeBS raised (case "error" says what): refused, saying about what. */
		const char *sebs_error = case_str(c, "error");
		ck_assert_msg(rc == -EINVAL, "%s: SeBS raised %s, got %d", name, sebs_error, rc);
		ck_assert_ptr_null(out);
		ck_assert_ptr_nonnull(err);
		if (strstr(sebs_error, "placeholder"))
			ck_assert_msg(strstr(err, LANGGEN_POM_PLACEHOLDER), "%s: %s", name, err);
		else if (strcmp(name, "no-colon") == 0)
			ck_assert_msg(strstr(err, "\"g.a\"") && strstr(err, "':'"), "%s", err);
		else if (strcmp(name, "two-colons") == 0)
			ck_assert_msg(strstr(err, "\"g:a:c\"") && strstr(err, "':'"), "%s", err);
		else
			ck_abort_msg("%s: no expectation for SeBS's error %s", name, sebs_error);
	}
	free(out);
	free(err);
}
END_TEST

START_TEST(pom_null_packages_is_none)
{
	size_t len, want_len, out_len;
	char *pom = fixture("pom-in/none.xml", &len);
	char *want = fixture("pom-out/none.xml", &want_len);
	char *out = NULL, *err = NULL;
	ck_assert_int_eq(langgen_pom_dependencies(pom, len, NULL, &out, &out_len, &err), 0);
	assert_same_text("NULL packages", out, out_len, want, want_len);
	free(out);
	free(want);
	free(pom);
}
END_TEST

/* Each input that SeBS would turn into a broken pom (or crash on) is
 * refused, and the message names the package. */
START_TEST(pom_refusals)
{
	static const struct {
		const char *packages, *in_message;
	} cases[] = {
		{ "{\"g:a\": 1}", "\"g:a\"" },
		{ "{\"g:a\": null}", "\"g:a\"" },
		{ "{\"ok:x\": \"1\", \"g<x:a\": \"1\"}", "\"g<x:a\"" },
		{ "{\"g:a&b\": \"1\"}", "'&'" },
		{ "{\"g:a\": \"1</version><scope>test\"}", "version" },
		{ "{\"g:a\": \"1]]>\"}", "'>'" },
		{ "{\"g:a\": \"1\\n2\"}", "0x0a" },
		{ "{\"g:a\": \"\\\"\\\"\"}", "version is empty" },
		{ "{\":a\": \"1\"}", "group is empty" },
		{ "{\"'g:'\": \"1\"}", "artifact is empty" },
		{ "[\"g:a\"]", "object" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL, *err = NULL;
		size_t out_len = 7;
		int rc = pom_run("pom-in/one.xml", cases[i].packages, &out, &out_len, &err);
		ck_assert_msg(rc == -EINVAL, "%s: %d", cases[i].packages, rc);
		ck_assert_ptr_null(out);
		ck_assert_uint_eq(out_len, 0);
		ck_assert_msg(err && strstr(err, cases[i].in_message), "%s: \"%s\" lacks \"%s\"",
			      cases[i].packages, err, cases[i].in_message);
		free(err);
	}
}
END_TEST

START_TEST(pom_not_utf8)
{
	static const char *const bad[] = {
		"<a><!-- PLATFORM_DEPENDENCIES -->\xe9t\xe9</a>", /* Latin-1 */
		"<a><!-- PLATFORM_DEPENDENCIES -->\xc0\xaf</a>",  /* overlong '/' */
		"<a><!-- PLATFORM_DEPENDENCIES -->\xed\xa0\x80</a>", /* surrogate */
		"<a><!-- PLATFORM_DEPENDENCIES -->\xe2\x9c", /* cut short */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out = NULL, *err = NULL;
		ck_assert_int_eq(langgen_pom_dependencies(bad[i], strlen(bad[i]), NULL, &out, NULL,
							  &err), -EINVAL);
		ck_assert_ptr_null(out);
		ck_assert_msg(strstr(err, "UTF-8") && strstr(err, "byte 33"), "%s", err);
		free(err);
	}
	/* Valid four-byte sequence and an embedded NUL pass through. */
	static const char good[] = "\xf0\x9f\x98\x80<!-- PLATFORM_DEPENDENCIES -->\0z";
	char *out = NULL;
	size_t out_len;
	ck_assert_int_eq(langgen_pom_dependencies(good, sizeof(good) - 1, NULL, &out, &out_len,
						  NULL), 0);
	ck_assert_uint_eq(out_len, 6);
	ck_assert_int_eq(memcmp(out, "\xf0\x9f\x98\x80\0z", 6), 0);
	free(out);
}
END_TEST

/* ---- Dockerfile ----------------------------------------------------------- */

/* The image look-ups: the answers come from the case's "available" list,
 * the questions are recorded. */
struct images {
	json_t *available;
	json_t *asked;
};

static bool image_available(void *ctx, const char *image)
{
	struct images *im = ctx;
	json_array_append_new(im->asked, json_string(image));
	size_t i;
	json_t *v;
	json_array_foreach(im->available, i, v)
		if (strcmp(json_string_value(v), image) == 0)
			return true;
	return false;
}

START_TEST(dockerfile_matches_sebs)
{
	json_t *c = manifest_case("docker", _i);
	const char *name = case_str(c, "name");
	size_t n, want_len;
	const char **deps = string_vector(json_object_get(c, "deps"), &n);
	char *tmpl = fixture(case_str(c, "template"), NULL);
	char *want = fixture(case_str(c, "expect"), &want_len);
	json_t *available = json_object_get(c, "available");
	struct images im = { .available = available, .asked = json_array() };
	char *out = NULL, *log = NULL, *err = NULL;

	/* SeBS's docker_client is None in the cases without "available". */
	int rc = langgen_cpp_dockerfile(tmpl, deps, n, case_str(c, "sebs_version"),
					case_str(c, "previous_version"), case_str(c, "repository"),
					json_is_array(available) ? image_available : NULL, &im,
					&out, &log, &err);
	ck_assert_msg(rc == 0, "%s: %s", name, err);
	assert_same_text(name, out, strlen(out), want, want_len);

	json_t *want_log = json_object_get(c, "log");
	if (json_array_size(want_log) == 0) {
		ck_assert_msg(log == NULL, "%s: log %s", name, log);
	} else {
		char *joined = NULL;
		size_t joined_len = 0;
		FILE *f = open_memstream(&joined, &joined_len);
		size_t i;
		json_t *line;
		json_array_foreach(want_log, i, line)
			fprintf(f, "%s\n", json_string_value(line));
		fclose(f);
		ck_assert_ptr_nonnull(log);
		assert_same_text(name, log, strlen(log), joined, joined_len);
		free(joined);
	}
	ck_assert_msg(json_equal(im.asked, json_object_get(c, "asked")), "%s: asked %s", name,
		      json_dumps(im.asked, JSON_COMPACT));

	json_decref(im.asked);
	free(out);
	free(log);
	free(tmpl);
	free(want);
	free(deps);
}
END_TEST

static bool must_not_be_asked(void *ctx, const char *image)
{
	ck_abort_msg("image_available asked for %s without %s", image, (const char *)ctx);
	return false;
}

/* As SeBS, the images are looked up only with a repository and a previous
 * version: otherwise the current version is used unasked. */
START_TEST(dockerfile_no_lookup_without_repository_or_previous)
{
	char *want = fixture("docker/thumbnailer-noclient.out", NULL);
	char *tmpl = fixture("docker/aws-Dockerfile.function", NULL);
	const char *deps[] = { "sdk", "opencv", "libjpeg-turbo", "boost" };
	const char *repo = "spcleth/serverless-benchmarks";
	char *out = NULL, *log = NULL;

	ck_assert_int_eq(langgen_cpp_dockerfile(tmpl, deps, 4, "1.2.1", "1.2.0", NULL,
						must_not_be_asked, "repository", &out, &log, NULL), 0);
	ck_assert_str_eq(out, want);
	ck_assert_ptr_null(log);
	free(out);
	ck_assert_int_eq(langgen_cpp_dockerfile(tmpl, deps, 4, "1.2.1", NULL, repo,
						must_not_be_asked, "previous version", &out, NULL,
						NULL), 0);
	ck_assert_str_eq(out, want);
	free(out);
	free(tmpl);
	free(want);
}
END_TEST

START_TEST(dockerfile_refusals)
{
	const char *tmpl = "{{DEPENDENCY_IMAGES}}\n{{DEPENDENCY_COPIES}}\n";
	const char *unknown[] = { "boost", "torch2" };
	static const struct {
		const char *version, *previous, *repository, *in_message;
	} cases[] = {
		{ "", "1.2.0", "r", "SeBS version" },
		{ NULL, "1.2.0", "r", "SeBS version" },
		{ "1.2.1\nRUN evil", "1.2.0", "r", "\"1.2.1\nRUN evil\"" },
		{ "1.2.1", "1.2 .0", "r", "previous SeBS version" },
		{ "1.2.1", "1.2.0", "r epo", "image repository" },
	};
	char *out = (char *)"untouched", *log = (char *)"untouched", *err = NULL;

	ck_assert_int_eq(langgen_cpp_dockerfile(tmpl, unknown, 2, "1", "0", "r", NULL, NULL, &out,
						&log, &err), -EINVAL);
	ck_assert_ptr_null(out);
	ck_assert_ptr_null(log);
	ck_assert_msg(strstr(err, "\"torch2\"") && strstr(err, "known: sdk,"), "%s", err);
	free(err);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = NULL;
		ck_assert_int_eq(langgen_cpp_dockerfile(tmpl, NULL, 0, cases[i].version,
							cases[i].previous, cases[i].repository,
							NULL, NULL, &out, NULL, &err), -EINVAL);
		ck_assert_ptr_null(out);
		ck_assert_msg(strstr(err, cases[i].in_message), "%zu: %s", i, err);
		free(err);
	}
	err = NULL;
	ck_assert_int_eq(langgen_cpp_dockerfile("FROM x\n\xff\n", NULL, 0, "1", NULL, NULL, NULL,
						NULL, &out, NULL, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "UTF-8"));
	free(err);
}
END_TEST

static Suite *langgen_suite(void)
{
	Suite *s = suite_create("langgen");
	TCase *tc = tcase_create("sebs");
	tcase_add_loop_test(tc, cmakelists_matches_sebs, 0,
			    (int)json_array_size(json_object_get(manifest, "cmake")));
	tcase_add_loop_test(tc, dedent_matches_python, 0,
			    (int)json_array_size(json_object_get(manifest, "dedent")));
	tcase_add_loop_test(tc, pom_matches_sebs, 0,
			    (int)json_array_size(json_object_get(manifest, "pom")));
	tcase_add_loop_test(tc, dockerfile_matches_sebs, 0,
			    (int)json_array_size(json_object_get(manifest, "docker")));
	suite_add_tcase(s, tc);

	tc = tcase_create("contract");
	tcase_add_test(tc, cmakelists_unknown_dependency);
	tcase_add_test(tc, dependency_table);
	tcase_add_test(tc, pom_null_packages_is_none);
	tcase_add_test(tc, pom_refusals);
	tcase_add_test(tc, pom_not_utf8);
	tcase_add_test(tc, dockerfile_no_lookup_without_repository_or_previous);
	tcase_add_test(tc, dockerfile_refusals);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	json_error_t jerr;
	manifest = json_load_file(FIXTURES "/manifest.json", 0, &jerr);
	if (!manifest) {
		fprintf(stderr, "%s/manifest.json: %s (line %d)\n", FIXTURES, jerr.text, jerr.line);
		return 1;
	}
	/* The case counts come from the manifest: an empty one would pass. */
	if (json_array_size(json_object_get(manifest, "cmake")) < 16 ||
	    json_array_size(json_object_get(manifest, "pom")) < 14 ||
	    json_array_size(json_object_get(manifest, "docker")) < 10 ||
	    json_array_size(json_object_get(manifest, "dedent")) < 13) {
		fprintf(stderr, "%s/manifest.json lacks cases\n", FIXTURES);
		return 1;
	}
	SRunner *sr = srunner_create(langgen_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	json_decref(manifest);
	return failed ? 1 : 0;
}
