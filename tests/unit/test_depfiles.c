/*
 * test_depfiles.c - which local files a dependency file names (depfiles.h):
 * requirements files and package.json written into a real temporary work
 * folder, scanned, and the list compared with what pip and npm would read.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "depfiles.h"
#include "fsutil.h"

static char *work;

static void setup(void)
{
	char tmpl[] = "/tmp/sebsfs-depfiles-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	work = strdup(tmpl);
}

static void teardown(void)
{
	rm_rf(work);
	free(work);
}

/* Writes text to work/rel, creating its folders. */
static void put(const char *rel, const char *text)
{
	char *path = path_join(work, rel);
	char *dir = strdup(path);
	*strrchr(dir, '/') = '\0';
	ck_assert_int_eq(mkdir_p(dir, 0755), 0);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	free(dir);
	free(path);
}

/* Scans and compares with the expected paths (NULL-terminated, in order). */
static void expect(const char *language, const char *depfile, const char *const *want)
{
	struct depfiles d;
	char *err = NULL;
	int rc = depfiles_scan(work, language, depfile, &d, &err);
	ck_assert_msg(rc == 0, "scan: %s", err ? err : strerror(-rc));
	size_t n = 0;
	while (want[n])
		n++;
	for (size_t i = 0; i < d.n && i < n; i++)
		ck_assert_str_eq(d.paths[i], want[i]);
	ck_assert_uint_eq(d.n, n);
	depfiles_clear(&d);
	free(err);
}

START_TEST(requirements_paths_options_and_comments)
{
	put("requirements.txt",
	    "# a comment naming ./not-this.whl\n"
	    "jinja2==3.1 # pinned\n"
	    "./wheels/a-1.0-py3-none-any.whl\n"
	    "\n"
	    "-r more.txt\n"
	    "--constraint=pins/c.txt\n"
	    "-e ./src/pkg\n"
	    "--find-links https://example.org/wheels\n"
	    "-f local-wheels\n"
	    "b @ file:vendor/b.tar.gz ; python_version >= \"3.8\"\n"
	    "file:./vendor/c.zip\n"
	    "https://example.org/d.whl\n"
	    "e.whl\n"
	    "--index-url https://pypi.org/simple\n");
	put("more.txt", "./wheels/f.whl \\\n  --hash=sha256:00\n-r nested/again.txt\n");
	put("nested/again.txt", "-c ../pins/c.txt\n../wheels/g.whl\n");
	put("pins/c.txt", "jinja2<4\n");
	const char *want[] = { "requirements.txt", "wheels/a-1.0-py3-none-any.whl", "more.txt",
			       "wheels/f.whl", "nested/again.txt", "pins/c.txt", "wheels/g.whl",
			       "src/pkg", "local-wheels", "vendor/b.tar.gz", "vendor/c.zip",
			       "e.whl", NULL };
	expect("python", "requirements.txt", want);
}
END_TEST

START_TEST(missing_local_files_are_kept_for_the_installer)
{
	put("requirements.txt", "./wheels/missing.whl\n-r missing.txt\n");
	const char *want[] = { "requirements.txt", "wheels/missing.whl", "missing.txt", NULL };
	expect("python", "requirements.txt", want);
}
END_TEST

START_TEST(paths_outside_the_work_folder_are_refused)
{
	static const char *const bad[] = { "/etc/x.whl\n", "../outside.whl\n",
					   "-r ../../etc/passwd\n", "x @ file:///etc/y.whl\n",
					   "~/z.whl\n", "./a/../../b.whl\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put("requirements.txt", bad[i]);
		struct depfiles d;
		char *err = NULL;
		int rc = depfiles_scan(work, "python", "requirements.txt", &d, &err);
		ck_assert_msg(rc == -EPERM, "%s: rc %d", bad[i], rc);
		ck_assert_ptr_nonnull(err);
		ck_assert_msg(strstr(err, "requirements.txt line 1 names") &&
			      strstr(err, "outside the work folder"), "%s", err);
		depfiles_clear(&d);
		free(err);
	}
}
END_TEST

START_TEST(continuation_lines_keep_their_first_line_number)
{
	put("requirements.txt", "a==1 \\\n  --hash=sha256:00\n\n# c\n../out.whl\n");
	struct depfiles d;
	char *err = NULL;
	ck_assert_int_eq(depfiles_scan(work, "python", "requirements.txt", &d, &err), -EPERM);
	ck_assert_msg(strstr(err, "requirements.txt line 5 names ../out.whl"), "%s", err);
	depfiles_clear(&d);
	free(err);
}
END_TEST

START_TEST(requirement_cycles_are_bounded)
{
	put("requirements.txt", "-r b.txt\n");
	put("b.txt", "-r requirements.txt\n");
	struct depfiles d;
	char *err = NULL;
	/* each file is named once, so the cycle ends at once */
	int rc = depfiles_scan(work, "python", "requirements.txt", &d, &err);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(d.n, 2);
	depfiles_clear(&d);
	free(err);
}
END_TEST

START_TEST(package_json_local_dependencies_and_npm_files)
{
	put("package.json",
	    "{\"dependencies\": {\"a\": \"file:./vendor/a-1.0.0.tgz\", \"b\": \"^1.2.3\","
	    " \"c\": \"link:../pkg/c\", \"d\": \"./libs/d\"},"
	    " \"devDependencies\": {\"e\": \"file:tools/e\"},"
	    " \"optionalDependencies\": {\"f\": \"git+https://example.org/f.git\"}}");
	put(".npmrc", "offline=true\n");
	put("package-lock.json", "{}");
	struct depfiles d;
	char *err = NULL;
	/* "link:../pkg/c" climbs out of the work folder */
	ck_assert_int_eq(depfiles_scan(work, "nodejs", "package.json", &d, &err), -EPERM);
	ck_assert_msg(strstr(err, "package.json dependencies.c names ../pkg/c"), "%s", err);
	depfiles_clear(&d);
	free(err);
	put("package.json",
	    "{\"dependencies\": {\"a\": \"file:./vendor/a-1.0.0.tgz\", \"b\": \"^1.2.3\","
	    " \"d\": \"./libs/d\"}, \"devDependencies\": {\"e\": \"file:tools/e\"}}");
	const char *want[] = { "package.json", "vendor/a-1.0.0.tgz", "libs/d", "tools/e",
			       "package-lock.json", ".npmrc", NULL };
	expect("nodejs", "package.json", want);
}
END_TEST

START_TEST(malformed_package_json_is_an_error)
{
	put("package.json", "{\"dependencies\": ");
	struct depfiles d;
	char *err = NULL;
	ck_assert_int_eq(depfiles_scan(work, "nodejs", "package.json", &d, &err), -EINVAL);
	ck_assert_msg(err && strstr(err, "package.json"), "%s", err ? err : "(none)");
	depfiles_clear(&d);
	free(err);
}
END_TEST

START_TEST(normalize)
{
	static const struct { const char *base, *rel, *want; } cases[] = {
		{ "", "a/./b//c", "a/b/c" }, { "x", "../y", "y" }, { "x/y", "../../z", "z" },
		{ "", "..", NULL }, { "x", "../../y", NULL }, { "", "/abs", NULL },
		{ "", "~/h", NULL }, { "", "", NULL }, { "", ".", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = depfiles_normalize(cases[i].base, cases[i].rel);
		if (cases[i].want)
			ck_assert_msg(got && strcmp(got, cases[i].want) == 0, "%s + %s: %s",
				      cases[i].base, cases[i].rel, got ? got : "NULL");
		else
			ck_assert_msg(!got, "%s + %s: %s", cases[i].base, cases[i].rel, got);
		free(got);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("depfiles");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, requirements_paths_options_and_comments);
	tcase_add_test(tc, missing_local_files_are_kept_for_the_installer);
	tcase_add_test(tc, paths_outside_the_work_folder_are_refused);
	tcase_add_test(tc, continuation_lines_keep_their_first_line_number);
	tcase_add_test(tc, requirement_cycles_are_bounded);
	tcase_add_test(tc, package_json_local_dependencies_and_npm_files);
	tcase_add_test(tc, malformed_package_json_is_an_error);
	tcase_add_test(tc, normalize);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
