/*
 * pipeline_compiled.c - the steps of the languages whose package is a build
 * product: java (Maven) and cpp (CMake).  SEBS.md section 9; SeBS's
 * sebs/benchmark.py and dockerfiles/{java,cpp}_installer.sh are the
 * authority.
 *
 * Unlike python and nodejs, step 6 is not an install of dependencies next to
 * the code but the build of the code itself, so it cannot be split into a
 * cached layer: every build runs Maven or CMake on the whole work folder.
 * What they leave (target/function.jar copied to function.jar; the zip
 * aws_lambda_package_target writes) carries the timestamps and entry order
 * of the moment; it is re-packed (zipnorm.h) so the package's bytes depend
 * on its content only, like every other package sebsfs serves.
 */
#include "pipeline_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildlog.h"
#include "fsutil.h"
#include "langgen.h"
#include "zipnorm.h"

#define JAR "function.jar"
#define MAVEN_JAR "target/function.jar"
#define CMAKE_ZIP "build/benchmark.zip"

static bool is_java(const struct pipeline_request *req)
{
	return strcmp(req->pkg->runtime->language, "java") == 0;
}

bool compiled_language(const char *language)
{
	return strcmp(language, "java") == 0 || strcmp(language, "cpp") == 0;
}

/* The files SeBS's copy_code takes for cpp. */
static bool is_cpp_code_file(const char *name)
{
	return pipeline_has_suffix(name, ".cpp") || pipeline_has_suffix(name, ".hpp") ||
	       strcmp(name, "dependencies.json") == 0;
}

int compiled_copy_code(const struct pipeline_request *req, char **errmsg)
{
	char *langdir = pipeline_language_dir(req);
	char *msg = NULL;
	int rc = langdir ? 0 : -ENOMEM;
	if (rc == 0 && is_java(req)) {
		/* the whole folder, sources in their package tree, resources, scripts */
		rc = copy_tree(langdir, req->workdir, req->pkg->benchmark->path, &msg);
		if (rc < 0)
			rc = pipeline_fail(req, errmsg, rc, "cannot copy %s: %s", langdir,
					   msg ? msg : strerror(-rc));
	} else if (rc == 0) {
		char **names = NULL;
		size_t n = 0;
		if ((rc = list_dir_sorted(langdir, &names, &n)) < 0)
			rc = pipeline_fail(req, errmsg, rc, "cannot list %s: %s", langdir, strerror(-rc));
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (!is_cpp_code_file(names[i]))
				continue;
			char *src = path_join(langdir, names[i]);
			char *dst = path_join(req->workdir, names[i]);
			struct stat st;
			if (!src || !dst)
				rc = -ENOMEM;
			else if (stat(src, &st) == 0 && S_ISDIR(st.st_mode))
				; /* glob("*.cpp") matches a folder too, but copy2 of it fails: skip it */
			else if ((rc = copy_tree(src, dst, req->pkg->benchmark->path, &msg)) < 0)
				rc = pipeline_fail(req, errmsg, rc, "cannot copy %s: %s", src,
						   msg ? msg : strerror(-rc));
			free(src);
			free(dst);
		}
		str_list_free(names, n);
	}
	free(msg);
	free(langdir);
	return rc;
}

/* java step 5: SeBS's add_deployment_package_java. */
static int add_pom_dependencies(const struct pipeline_request *req, char **errmsg)
{
	char *pom = path_join(req->workdir, "pom.xml");
	char *text = NULL, *out = NULL, *msg = NULL;
	size_t len = 0, out_len = 0;
	json_t *pkgs = catalog_deployment_packages(req->cat, req->pkg);
	int rc = pom && pkgs ? 0 : -ENOMEM;
	if (rc == 0 && (rc = read_file(pom, &text, &len)) < 0)
		rc = pipeline_fail(req, errmsg, rc, "%s/java/pom.xml: %s: a Java benchmark is built"
				   " by Maven from its pom.xml", req->pkg->benchmark->path,
				   rc == -ENOENT ? "missing" : strerror(-rc));
	if (rc == 0 && (rc = langgen_pom_dependencies(text, len, pkgs, &out, &out_len, &msg)) < 0)
		rc = pipeline_fail(req, errmsg, rc, "%s/java/pom.xml: %s", req->pkg->benchmark->path,
				   msg ? msg : strerror(-rc));
	if (rc == 0) {
		const char *name;
		json_t *version;
		json_object_foreach(pkgs, name, version)
			build_log(req->log_fd, "step 5: pom.xml dependencies += %s %s", name,
				  json_is_string(version) ? json_string_value(version) : "?");
		if ((rc = write_file_atomic(pom, out, out_len)) < 0)
			rc = pipeline_fail(req, errmsg, rc, "cannot write %s: %s", pom, strerror(-rc));
	}
	json_decref(pkgs);
	free(pom);
	free(text);
	free(out);
	free(msg);
	return rc;
}

/* cpp step 5: SeBS's add_deployment_package_cpp. */
static int write_cmakelists(const struct pipeline_request *req, char **errmsg)
{
	const struct cat_benchmark *b = req->pkg->benchmark;
	char *out = NULL, *msg = NULL;
	char *path = path_join(req->workdir, "CMakeLists.txt");
	int rc = path ? 0 : -ENOMEM;
	if (rc == 0 && b->cpp_dependencies_problem)
		rc = pipeline_fail(req, errmsg, -EINVAL, "%s", b->cpp_dependencies_problem);
	if (rc == 0 && (rc = langgen_cmakelists((const char *const *)b->cpp_dependencies,
					       b->n_cpp_dependencies,
					       benchmark_has_module(b, "storage"),
					       benchmark_has_module(b, "nosql"), &out, &msg)) < 0)
		rc = pipeline_fail(req, errmsg, rc, "%s/config.json: %s", b->path,
				   msg ? msg : strerror(-rc));
	if (rc == 0) {
		build_log(req->log_fd, "step 5: CMakeLists.txt generated (%zu cpp_dependencies)",
			  b->n_cpp_dependencies);
		if ((rc = write_file_atomic(path, out, strlen(out))) < 0)
			rc = pipeline_fail(req, errmsg, rc, "cannot write %s: %s", path, strerror(-rc));
	}
	free(path);
	free(out);
	free(msg);
	return rc;
}

int compiled_add_build_files(const struct pipeline_request *req, char **errmsg)
{
	return is_java(req) ? add_pom_dependencies(req, errmsg) : write_cmakelists(req, errmsg);
}

int compiled_build_file(const struct pipeline_request *req, char **depfile, char **errmsg)
{
	const char *name = is_java(req) ? "pom.xml" : "CMakeLists.txt";
	char *path = path_join(req->workdir, name);
	int rc = path ? 0 : -ENOMEM;
	*depfile = NULL;
	if (rc == 0 && !path_is_file(path))
		rc = pipeline_fail(req, errmsg, -ENOENT, "the work folder has no %s to build from",
				   name);
	if (rc == 0 && !(*depfile = strdup(name)))
		rc = -ENOMEM;
	free(path);
	return rc;
}

static int maven_on_host(const struct pipeline_request *req, const char *const env[],
			 char **errmsg)
{
	char *jar = path_join(req->workdir, MAVEN_JAR);
	char *dst = path_join(req->workdir, JAR);
	char *script = path_join(req->workdir, "package.sh");
	int rc = jar && dst && script ? 0 : -ENOMEM;
	if (rc == 0) {
		/* --batch-mode: no colours or progress bars in the log, nothing else changes */
		build_log(req->log_fd, "step 6: mvn -DskipTests clean package (host)");
		const char *argv[] = { "mvn", "--batch-mode", "-DskipTests", "clean", "package", NULL };
		rc = pipeline_run(req, errmsg, argv, req->workdir, env, "mvn");
	}
	if (rc == 0 && !path_is_file(jar))
		rc = pipeline_fail(req, errmsg, -ENOENT, "Maven succeeded but left no %s: the pom"
				   " must name its jar \"function\" (<finalName>function</finalName>)",
				   MAVEN_JAR);
	if (rc == 0 && (rc = copy_file(jar, dst)) < 0)
		rc = pipeline_fail(req, errmsg, rc, "cannot copy %s: %s", jar, strerror(-rc));
	if (rc == 0 && path_is_file(script)) {
		build_log(req->log_fd, "step 6: bash package.sh .");
		const char *argv[] = { "bash", script, ".", NULL };
		rc = pipeline_run(req, errmsg, argv, req->workdir, env, "package.sh");
	}
	free(jar);
	free(dst);
	free(script);
	return rc;
}

static int cmake_on_host(const struct pipeline_request *req, const char *const env[],
			 char **errmsg)
{
	build_log(req->log_fd, "step 6: cmake -DCMAKE_BUILD_TYPE=Release -S . -B build (host)");
	const char *configure[] = { "cmake", "-DCMAKE_BUILD_TYPE=Release", "-S", ".", "-B", "build",
				    NULL };
	int rc = pipeline_run(req, errmsg, configure, req->workdir, env, "cmake");
	if (rc == 0) {
		build_log(req->log_fd, "step 6: cmake --build build --target aws-lambda-package-benchmark");
		const char *build[] = { "cmake", "--build", "build", "--target",
					"aws-lambda-package-benchmark", NULL };
		rc = pipeline_run(req, errmsg, build, req->workdir, env, "cmake --build");
	}
	return rc;
}

int compiled_install_on_host(const struct pipeline_request *req, const char *const env[],
			     char **errmsg)
{
	return is_java(req) ? maven_on_host(req, env, errmsg) : cmake_on_host(req, env, errmsg);
}

/* The folder holding the work folder: scratch space of this build. */
static char *scratch_dir(const struct pipeline_request *req)
{
	char *parent = strdup(req->workdir);
	char *slash = parent ? strrchr(parent, '/') : NULL;
	if (slash && slash != parent)
		*slash = '\0';
	return parent;
}

/* Re-packs the archive at path (relative to the work folder) into out_fd. */
static int normalize_into(const struct pipeline_request *req, const char *path, int out_fd,
			  char **errmsg)
{
	char *abs = path_join(req->workdir, path);
	char *scratch = scratch_dir(req);
	char *msg = NULL;
	int in = -1, rc = abs && scratch ? 0 : -ENOMEM;
	if (rc == 0 && (in = open(abs, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		rc = pipeline_fail(req, errmsg, -errno, "cannot open %s: %s", path, strerror(errno));
	struct zipnorm_options opts = { .jar_order = is_java(req) };
	if (rc == 0 && (rc = zip_normalize(in, out_fd, scratch, &opts, &msg)) < 0)
		rc = pipeline_fail(req, errmsg, rc, "cannot re-pack %s: %s", path,
				   msg ? msg : strerror(-rc));
	if (in >= 0)
		close(in);
	free(abs);
	free(scratch);
	free(msg);
	return rc;
}

/* function.jar replaced by its reproducible form (a new file renamed over it). */
static int normalize_jar_in_place(const struct pipeline_request *req, char **errmsg)
{
	char *jar = path_join(req->workdir, JAR);
	char *tmp = path_join(req->workdir, ".sebsfs-function.jar");
	int fd = -1, rc = jar && tmp ? 0 : -ENOMEM;
	if (rc == 0 && (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
		rc = pipeline_fail(req, errmsg, -errno, "cannot create %s: %s", tmp, strerror(errno));
	if (rc == 0)
		rc = normalize_into(req, JAR, fd, errmsg);
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = pipeline_fail(req, errmsg, -errno, "cannot write %s: %s", tmp, strerror(errno));
	if (rc == 0 && rename(tmp, jar) < 0)
		rc = pipeline_fail(req, errmsg, -errno, "cannot replace %s: %s", jar, strerror(errno));
	if (rc < 0 && tmp)
		unlink(tmp);
	free(jar);
	free(tmp);
	return rc;
}

int compiled_check_product(const struct pipeline_request *req, char **errmsg)
{
	const char *product = is_java(req) ? JAR : CMAKE_ZIP;
	char *path = path_join(req->workdir, product);
	int rc = path ? 0 : -ENOMEM;
	if (rc == 0 && !path_is_file(path))
		rc = pipeline_fail(req, errmsg, -ENOENT, "the build left no %s%s", product,
				   is_java(req) ? " (the build image's installer copies Maven's"
						  " target/function.jar there)"
						: " (aws_lambda_package_target writes it)");
	free(path);
	if (rc == 0 && is_java(req)) {
		rc = normalize_jar_in_place(req, errmsg);
		if (rc == 0)
			build_log(req->log_fd, "step 6: %s re-packed reproducibly", JAR);
	}
	return rc;
}

int compiled_write_product(const struct pipeline_request *req, const char *product,
			   char **errmsg)
{
	/* function.jar is reproducible already: copy it as it is */
	if (is_java(req) && strcmp(product, JAR) == 0) {
		char *jar = path_join(req->workdir, JAR);
		int in = jar ? open(jar, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
		int rc = jar ? 0 : -ENOMEM;
		if (rc == 0 && in < 0)
			rc = pipeline_fail(req, errmsg, -errno, "cannot open %s: %s", jar,
					   strerror(errno));
		if (rc == 0 && (rc = copy_fd(in, req->out_fd)) < 0)
			rc = pipeline_fail(req, errmsg, rc, "cannot copy %s: %s", jar, strerror(-rc));
		if (in >= 0)
			close(in);
		free(jar);
		if (rc == 0)
			build_log(req->log_fd, "step 7: the package is %s itself", JAR);
		return rc;
	}
	build_log(req->log_fd, "step 7: the package is %s, re-packed reproducibly", product);
	return normalize_into(req, product, req->out_fd, errmsg);
}
