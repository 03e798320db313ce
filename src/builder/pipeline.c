/*
 * pipeline.c - steps 2-7 of one code-package build (see pipeline.h).
 *
 * Every step either succeeds or returns -errno with a one-line reason that
 * names the file or program at fault; the caller (builder.c) records it.
 * Programs run from argv arrays through spawn.h, never through a shell.
 */
#include "pipeline.h"
#include "pipeline_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "buildlog.h"
#include "containerfs.h"
#include "deplayer.h"
#include "fsutil.h"
#include "docker.h"
#include "layout.h"
#include "tarstream.h"
#include "process.h"
#include "walk.h"
#include "zipsplice.h"
#include "ziptree.h"

const char *installer_name(enum installer_kind kind)
{
	return kind == INSTALLER_DOCKER ? "docker" : kind == INSTALLER_HOST ? "host" : "none";
}

int pipeline_fail(const struct pipeline_request *req, char **errmsg, int rc, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (errmsg && !*errmsg)
		*errmsg = strdup(buf);
	build_log(req->log_fd, "error: %s", buf);
	return rc < 0 ? rc : -EIO;
}

bool pipeline_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_code_file(const char *language, const char *name)
{
	if (strcmp(language, "python") == 0)
		return pipeline_has_suffix(name, ".py") || strncmp(name, "requirements.txt", 16) == 0;
	return pipeline_has_suffix(name, ".js") || strcmp(name, "package.json") == 0;
}

char *pipeline_language_dir(const struct pipeline_request *req)
{
	return path_join(req->pkg->benchmark->path, req->pkg->runtime->language);
}

struct code_copy {
	const struct pipeline_request *req;
	const char *langdir;
	char *errmsg;  /* the first failure, for the walk */
};

static int copy_code_file(const struct walk_entry *e, void *ctx)
{
	struct code_copy *c = ctx;
	if (S_ISDIR(e->st.st_mode))
		return WALK_PRUNE; /* only the folder's own files; init.sh copies data */
	if (!is_code_file(c->req->pkg->runtime->language, e->name))
		return 0;
	char *src = path_join(c->langdir, e->name);
	char *dst = path_join(c->req->workdir, e->name);
	int rc = (src && dst) ? copy_file(src, dst) : -ENOMEM;
	if (rc < 0 && !c->errmsg)
		c->errmsg = str_printf("cannot copy %s: %s", src ? src : e->name, strerror(-rc));
	free(src);
	free(dst);
	return rc;
}

/* nodejs: dir's package.json.<ver>, when there is one, is the package.json. */
static int use_versioned_package_json(const struct pipeline_request *req, const char *dir,
				      char **errmsg)
{
	const struct cat_runtime *rt = req->pkg->runtime;
	if (strcmp(rt->language, "nodejs") != 0)
		return 0;
	char *name = str_printf("package.json.%s", rt->version);
	char *src = name ? path_join(dir, name) : NULL;
	char *dst = path_join(req->workdir, "package.json");
	int rc = 0;
	if (!src || !dst) {
		rc = -ENOMEM;
	} else if (path_is_file(src)) {
		build_log(req->log_fd, "%s replaces package.json", name);
		if ((rc = copy_file(src, dst)) < 0)
			rc = pipeline_fail(req, errmsg, rc, "cannot copy %s: %s", src, strerror(-rc));
	}
	free(name);
	free(src);
	free(dst);
	return rc;
}

/* The code files of dir (not its folders) into the work folder, replacing
 * those there; then, for nodejs, dir's package.json.<ver> as package.json.
 * dir is walked under the WALK_FOLLOW policy with the benchmark folder as
 * containment: a code file that is a symlink to anything outside it fails
 * the build instead of shipping a host file. */
static int copy_code_files(const struct pipeline_request *req, const char *dir, char **errmsg)
{
	struct code_copy c = { .req = req, .langdir = dir };
	struct walk_options opts = { .links = WALK_FOLLOW, .within = req->pkg->benchmark->path };
	int rc = walk_tree(dir, &opts, copy_code_file, &c, &c.errmsg);
	if (rc < 0)
		rc = pipeline_fail(req, errmsg, rc, "%s", c.errmsg ? c.errmsg : strerror(-rc));
	else
		rc = use_versioned_package_json(req, dir, errmsg);
	free(c.errmsg);
	return rc;
}

/* Step 2 for a variant runtime, after the default code is in place, as
 * SeBS's copy_code: <lang>/<variant>/patch.diff is applied to it (patch -p1),
 * else the variant folder's code files replace the default ones (and
 * package.json.<ver> there becomes package.json). */
static int apply_variant(const struct pipeline_request *req, const char *langdir, char **errmsg)
{
	const struct cat_runtime *rt = req->pkg->runtime;
	char *vdir = path_join(langdir, rt->variant);
	char *patch = vdir ? path_join(vdir, "patch.diff") : NULL;
	int rc = patch ? 0 : -ENOMEM;
	if (rc == 0 && !path_is_dir(vdir)) {
		rc = pipeline_fail(req, errmsg, -ENOENT, "variant %s: %s is not a folder", rt->variant, vdir);
	} else if (rc == 0 && path_exists(patch)) {
		build_log(req->log_fd, "step 2: variant %s: patch -p1 < %s", rt->variant, patch);
		/* rejects are discarded: a hunk that does not apply fails the build */
		const char *argv[] = { "patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch",
				       "--reject-file=-", "-d", req->workdir, "-i", patch, NULL };
		rc = pipeline_run(req, errmsg, argv, req->workdir, NULL, "patch");
	} else if (rc == 0) {
		build_log(req->log_fd, "step 2: variant %s: files of %s replace the default ones",
			  rt->variant, vdir);
		rc = copy_code_files(req, vdir, errmsg);
	}
	free(vdir);
	free(patch);
	return rc;
}

/* Step 2. */
static int copy_code(const struct pipeline_request *req, char **errmsg)
{
	const struct cat_runtime *rt = req->pkg->runtime;
	if (compiled_language(rt->language))
		return compiled_copy_code(req, errmsg);
	char *langdir = pipeline_language_dir(req);
	int rc = langdir ? copy_code_files(req, langdir, errmsg) : -ENOMEM;
	if (rc == 0 && rt->variant)
		rc = apply_variant(req, langdir, errmsg);
	free(langdir);
	return rc;
}

int pipeline_run(const struct pipeline_request *req, char **errmsg, const char *const argv[],
		       const char *cwd, const char *const env[], const char *what)
{
	struct spawn_opts opts = { .cwd = cwd, .env_add = env, .out_fd = req->log_fd,
				   .cancel_fd = req->cancel_fd, .deadline = req->deadline };
	int status = 0;
	int rc = spawn_wait(argv, &opts, &status);
	if (rc == -ETIMEDOUT)
		return pipeline_fail(req, errmsg, rc, "%s: timed out: the build took longer than build_timeout=%u s"
			    " (its processes were killed)", what, req->timeout);
	if (rc == -ECANCELED)
		return pipeline_fail(req, errmsg, rc, "%s: cancelled: sebsfs is stopping (its processes were killed)",
			    what);
	if (rc < 0)
		return pipeline_fail(req, errmsg, rc, "%s: cannot run %s: %s", what, argv[0], strerror(-rc));
	if (status != 0)
		return pipeline_fail(req, errmsg, -EIO, "%s exited with status %d", what, status);
	return 0;
}

/* Step 3: benchmark-level init.sh, then the language folder's. */
static int add_benchmark_data(const struct pipeline_request *req, char **errmsg)
{
	char *dirs[2] = { strdup(req->pkg->benchmark->path), pipeline_language_dir(req) };
	int rc = (dirs[0] && dirs[1]) ? 0 : -ENOMEM;
	for (int i = 0; rc == 0 && i < 2; i++) {
		char *script = path_join(dirs[i], "init.sh");
		if (!script) {
			rc = -ENOMEM;
		} else if (path_exists(script)) {
			build_log(req->log_fd, "step 3: bash -e %s %s false %s", script, req->workdir,
				  req->pkg->runtime->arch);
			const char *argv[] = { "bash", "-e", script, req->workdir, "false",
					       req->pkg->runtime->arch, NULL };
			rc = pipeline_run(req, errmsg, argv, dirs[i], NULL, script);
		}
		free(script);
	}
	free(dirs[0]);
	free(dirs[1]);
	return rc;
}

/* A wrapper entry must name something inside the wrappers folder. */
static bool safe_relative(const char *p)
{
	return *p && p[0] != '/' && strcmp(p, "..") != 0 && strncmp(p, "../", 3) != 0 &&
	       !strstr(p, "/../") && !pipeline_has_suffix(p, "/..");
}

/* Step 4, as SeBS's add_deployment_files: a wrapper file never replaces the
 * benchmark's own, a wrapper folder is merged into the benchmark's folder
 * of that name, its files replacing theirs (copytree(dirs_exist_ok=True);
 * java's "src" tree is merged this way). */
static int add_wrappers(const struct pipeline_request *req, char **errmsg)
{
	const json_t *files = catalog_deployment_files(req->cat, req->pkg);
	char *wrapdir = str_printf("%s/benchmarks/wrappers/%s/%s", req->cat->root,
				   req->pkg->platform->name, req->pkg->runtime->language);
	int rc = wrapdir ? 0 : -ENOMEM;
	size_t i;
	const json_t *entry;
	json_array_foreach(files, i, entry) {
		if (rc < 0)
			break;
		const char *name = json_string_value(entry);
		if (!name || !safe_relative(name)) {
			rc = pipeline_fail(req, errmsg, -EINVAL, "systems.json: %s/%s deployment.files[%zu] is not a relative file name",
				  req->pkg->platform->name, req->pkg->runtime->language, i);
			break;
		}
		char *src = path_join(wrapdir, name);
		char *dst = path_join(req->workdir, name);
		char *msg = NULL;
		struct stat st;
		if (!src || !dst)
			rc = -ENOMEM;
		else if (lstat(src, &st) < 0)
			rc = pipeline_fail(req, errmsg, -ENOENT, "wrapper %s is missing", src);
		else if (!S_ISDIR(st.st_mode) && lstat(dst, &st) == 0)
			build_log(req->log_fd, "step 4: %s: the benchmark's own file is kept", name);
		else if ((rc = copy_tree(src, dst, wrapdir, &msg)) < 0)
			rc = pipeline_fail(req, errmsg, rc, "cannot copy wrapper %s: %s", src,
				  msg ? msg : strerror(-rc));
		free(msg);
		free(src);
		free(dst);
	}
	free(wrapdir);
	return rc;
}

static int append_requirements(const struct pipeline_request *req, const json_t *lines,
			       char **errmsg)
{
	char *versioned = str_printf("%s/requirements.txt.%s", req->workdir, req->pkg->runtime->version);
	char *plain = path_join(req->workdir, "requirements.txt");
	int rc = (versioned && plain) ? 0 : -ENOMEM;
	const char *target = rc == 0 && path_exists(versioned) ? versioned : plain;
	FILE *f = NULL;
	if (rc == 0 && json_array_size(lines) == 0 && !path_exists(target))
		build_log(req->log_fd, "step 5: no requirements.txt: an empty one, as SeBS's packages have");
	if (rc == 0) {
		/* The reference builder glues appended lines together; make sure
		 * every line, the last existing one included, ends in a newline. */
		char *old = NULL;
		size_t len = 0;
		bool needs_newline = json_array_size(lines) > 0 && read_file(target, &old, &len) == 0 &&
				     len > 0 && old[len - 1] != '\n';
		free(old);
		f = fopen(target, "ae");
		if (!f)
			rc = pipeline_fail(req, errmsg, -errno, "cannot append to %s: %s", target, strerror(errno));
		else if (needs_newline)
			fputc('\n', f);
	}
	size_t i;
	const json_t *line;
	json_array_foreach(lines, i, line) {
		if (!f)
			break;
		fprintf(f, "%s\n", json_string_value(line));
		build_log(req->log_fd, "step 5: %s += %s", strrchr(target, '/') + 1, json_string_value(line));
	}
	if (f && fclose(f) != 0 && rc == 0)
		rc = pipeline_fail(req, errmsg, -errno, "cannot write %s: %s", target, strerror(errno));
	free(versioned);
	free(plain);
	return rc;
}

static int merge_dependencies(const struct pipeline_request *req, const json_t *deps,
			      char **errmsg)
{
	char *versioned = str_printf("%s/package.json.%s", req->workdir, req->pkg->runtime->version);
	char *plain = path_join(req->workdir, "package.json");
	int rc = (versioned && plain) ? 0 : -ENOMEM;
	const char *target = rc == 0 && path_exists(versioned) ? versioned : plain;
	json_t *pkgjson = NULL;
	if (rc == 0 && path_exists(target)) {
		json_error_t jerr;
		pkgjson = json_load_file(target, 0, &jerr);
		if (!json_is_object(pkgjson))
			rc = pipeline_fail(req, errmsg, -EINVAL, "%s: line %d: %s", target, jerr.line,
				  pkgjson ? "not a JSON object" : jerr.text);
	} else if (rc == 0) {
		pkgjson = json_object();
	}
	if (rc == 0) {
		json_t *dst = json_object_get(pkgjson, "dependencies");
		if (!json_is_object(dst)) {
			dst = json_object();
			json_object_set_new(pkgjson, "dependencies", dst);
		}
		const char *name;
		json_t *version;
		json_object_foreach((json_t *)deps, name, version) {
			json_object_set(dst, name, version);
			build_log(req->log_fd, "step 5: dependencies += %s", name);
		}
		char *text = json_dumps(pkgjson, JSON_INDENT(2));
		if (!text)
			rc = -ENOMEM;
		else if ((rc = write_file_atomic(target, text, strlen(text))) < 0)
			rc = pipeline_fail(req, errmsg, rc, "cannot write %s: %s", target, strerror(-rc));
		free(text);
	}
	json_decref(pkgjson);
	free(versioned);
	free(plain);
	return rc;
}

/* Step 5. */
static int add_deployment_packages(const struct pipeline_request *req, char **errmsg)
{
	if (compiled_language(req->pkg->runtime->language))
		return compiled_add_build_files(req, errmsg);
	json_t *pkgs = catalog_deployment_packages(req->cat, req->pkg);
	int rc = 0;
	if (!pkgs)
		return -ENOMEM;
	/* SeBS opens the requirements file for appending also when it has
	 * nothing to add, so every python package has one, empty if need be */
	if (json_is_array(pkgs))
		rc = append_requirements(req, pkgs, errmsg);
	else if (json_is_object(pkgs) && json_object_size(pkgs) > 0)
		rc = merge_dependencies(req, pkgs, errmsg);
	json_decref(pkgs);
	return rc;
}

/* The requirements file of SEBS.md section 6, or NULL when there is none. */
static char *requirements_file(const struct pipeline_request *req)
{
	const struct cat_runtime *rt = req->pkg->runtime;
	char *candidates[3] = {
		strcmp(rt->arch, "arm64") == 0 ? str_printf("requirements.txt.arm.%s", rt->version) : NULL,
		str_printf("requirements.txt.%s", rt->version),
		strdup("requirements.txt"),
	};
	char *found = NULL;
	for (int i = 0; i < 3; i++) {
		char *abs = candidates[i] ? path_join(req->workdir, candidates[i]) : NULL;
		if (!found && abs && path_is_file(abs)) {
			found = candidates[i];
			candidates[i] = NULL;
		}
		free(abs);
		free(candidates[i]);
	}
	return found;
}

/* The environment of SEBS.md section 6 (the CONTAINER_* ids are added by
 * install_in_container).  For a dependency layer, which many packages
 * share, APP (the benchmark's name) is left out, and PLATFORM too unless
 * the language folder has a package.sh (the one program SEBS.md says may
 * read it): SeBS's installers read neither, and what the install is given
 * is part of the layer's key, so leaving them out is what lets one layer
 * serve several benchmarks and platforms. */
struct build_env {
	char *vars[5];   /* NAME=value, NULL-terminated */
};

static int build_env_init(const struct pipeline_request *req, bool for_layer, bool has_package_sh,
			  bool in_container, struct build_env *env)
{
	const struct cat_runtime *rt = req->pkg->runtime;
	char platform_upper[64];
	snprintf(platform_upper, sizeof(platform_upper), "%s", req->pkg->platform->name);
	for (char *p = platform_upper; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	int n = 0;
	memset(env, 0, sizeof(*env));
	if (!for_layer || has_package_sh)
		env->vars[n++] = str_printf("PLATFORM=%s", platform_upper);
	env->vars[n++] = str_printf("TARGET_ARCHITECTURE=%s", rt->arch);
	if (!for_layer)
		env->vars[n++] = str_printf("APP=%s", req->pkg->benchmark->name);
	/* the build images set it themselves; java's poms read ${env.JAVA_VERSION} */
	if (!in_container && strcmp(rt->language, "python") == 0)
		env->vars[n++] = str_printf("PYTHON_VERSION=%s", rt->version);
	if (!in_container && strcmp(rt->language, "java") == 0)
		env->vars[n++] = str_printf("JAVA_VERSION=%s", rt->version);
	for (int i = 0; i < n; i++)
		if (!env->vars[i])
			return -ENOMEM;
	return 0;
}

static void build_env_clear(struct build_env *env)
{
	for (int i = 0; env->vars[i]; i++)
		free(env->vars[i]);
}

/* The dependency file the installer works from, or NULL when there is none
 * (then step 6 has nothing to do). */
static char *dependency_file(const struct pipeline_request *req)
{
	if (strcmp(req->pkg->runtime->language, "python") == 0)
		return requirements_file(req);
	char *pkgjson = path_join(req->workdir, "package.json");
	if (pkgjson && path_is_file(pkgjson)) {
		free(pkgjson);
		return strdup("package.json");
	}
	free(pkgjson);
	return NULL;
}

/* This machine's architecture in SeBS's names, or its uname machine
 * ("riscv64", ...) when SeBS has no name for it. */
static const char *host_arch(struct utsname *u)
{
	if (uname(u) < 0)
		return "unknown";
	if (strcmp(u->machine, "x86_64") == 0)
		return "x64";
	if (strcmp(u->machine, "aarch64") == 0 || strcmp(u->machine, "arm64") == 0)
		return "arm64";
	return u->machine;
}

size_t pipeline_host_arch_args(const struct cat_runtime *rt,
			       const char *out[PIPELINE_HOST_ARCH_ARGS_MAX])
{
	struct utsname u;
	size_t n = 0;
	bool arm64 = strcmp(rt->arch, "arm64") == 0;
	if (strcmp(host_arch(&u), rt->arch) != 0 && strcmp(rt->language, "python") == 0) {
		out[n++] = "--platform";
		out[n++] = arm64 ? "manylinux_2_17_aarch64" : "manylinux_2_17_x86_64";
		out[n++] = "--only-binary=:all:";
		out[n++] = "--python-version";
		out[n++] = rt->version;
		out[n++] = "--implementation";
		out[n++] = "cp";
	} else if (strcmp(host_arch(&u), rt->arch) != 0 && strcmp(rt->language, "nodejs") == 0) {
		out[n++] = arm64 ? "--arch=arm64" : "--arch=x64";
		out[n++] = arm64 ? "--cpu=arm64" : "--cpu=x64";
	}
	out[n] = NULL;
	return n;
}

char *pipeline_host_arch_flags(const struct cat_runtime *rt)
{
	const char *args[PIPELINE_HOST_ARCH_ARGS_MAX];
	size_t n = pipeline_host_arch_args(rt, args), len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(args[i]) + 1;
	char *flags = malloc(len);
	if (!flags)
		return NULL;
	flags[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(flags, " ");
		strcat(flags, args[i]);
	}
	return flags;
}

/* Step 6 on the host. */
static int install_on_host(const struct pipeline_request *req, const char *dir,
			   const char *depfile, const char *const env[], char **errmsg)
{
	const struct cat_runtime *rt = req->pkg->runtime;
	const char *cross[PIPELINE_HOST_ARCH_ARGS_MAX];
	size_t n_cross = pipeline_host_arch_args(rt, cross);
	char *flags = pipeline_host_arch_flags(rt);
	struct utsname u;
	int rc = flags ? 0 : -ENOMEM;
	if (rc == 0 && n_cross)
		build_log(req->log_fd, "step 6: cross-installing for %s on this %s host: %s",
			  rt->arch, host_arch(&u), flags);
	if (rc < 0) {
		/* nothing to run */
	} else if (compiled_language(rt->language)) {
		rc = compiled_install_on_host(req, env, errmsg);
	} else if (strcmp(rt->language, "python") == 0) {
		char *langdir = pipeline_language_dir(req);
		char *package_sh = langdir ? path_join(langdir, "package.sh") : NULL;
		build_log(req->log_fd, "step 6: pip3 install %s%s-r %s -t .python_packages/lib/site-packages (host)",
			  flags, n_cross ? " " : "", depfile);
		const char *argv[8 + PIPELINE_HOST_ARCH_ARGS_MAX] = { "pip3", "install",
				       "--disable-pip-version-check", "--no-input" };
		size_t n = 4;
		for (size_t i = 0; i < n_cross; i++)
			argv[n++] = cross[i];
		argv[n++] = "-r";
		argv[n++] = depfile;
		argv[n++] = "-t";
		argv[n++] = ".python_packages/lib/site-packages";
		rc = pipeline_run(req, errmsg, argv, dir, env, "pip3 install");
		if (rc < 0 && n_cross)
			build_log(req->log_fd, "error: pip3 found no %s wheel for CPython %s of every"
				  " requirement of %s: a requirement published only as a source"
				  " distribution, or only for other platforms, cannot be installed"
				  " into a %s package on this %s host (%s%s%sbuild on an %s machine)",
				  cross[1], rt->version, depfile, rt->arch, host_arch(&u),
				  strcmp(rt->arch, "arm64") == 0 ? "list ones that have such wheels in"
								  " requirements.txt.arm." : "",
				  strcmp(rt->arch, "arm64") == 0 ? rt->version : "",
				  strcmp(rt->arch, "arm64") == 0 ? ", or " : "", rt->arch);
		if (rc == 0 && package_sh && path_is_file(package_sh)) {
			build_log(req->log_fd, "step 6: bash %s .python_packages/lib/site-packages", package_sh);
			const char *pargv[] = { "bash", package_sh, ".python_packages/lib/site-packages", NULL };
			rc = pipeline_run(req, errmsg, pargv, dir, env, "package.sh");
		}
		free(langdir);
		free(package_sh);
	} else {
		build_log(req->log_fd, "step 6: npm install%s%s (host)", n_cross ? " " : "", flags);
		const char *argv[6 + PIPELINE_HOST_ARCH_ARGS_MAX] = { "npm", "install", "--no-audit",
				       "--no-fund", "--no-update-notifier" };
		size_t n = 5;
		for (size_t i = 0; i < n_cross; i++)
			argv[n++] = cross[i];
		rc = pipeline_run(req, errmsg, argv, dir, env, "npm install");
	}
	free(flags);
	return rc;
}

static void log_container_output(void *ctx, int stream, const char *data, size_t len)
{
	const struct pipeline_request *req = ctx;
	if (req->log_fd >= 0) {
		ssize_t w = write(req->log_fd, data, len);
		(void)w;
	}
}

struct owner_check {
	const char *dir;
	uid_t uid;
	char *who;
};

static int check_owner(const struct walk_entry *e, void *ctx)
{
	struct owner_check *c = ctx;
	if (e->st.st_uid == c->uid)
		return 0;
	c->who = str_printf("%s/%s (uid %u)", c->dir, e->path, (unsigned)e->st.st_uid);
	return c->who ? WALK_STOP : -ENOMEM;
}

/* Finds the first entry below dir not owned by uid; *who gets its path.  The
 * work folder is an output tree: walked under WALK_KEEP, links not followed. */
static int find_foreign_owner(const char *dir, uid_t uid, char **who, char **msg)
{
	struct owner_check c = { .dir = dir, .uid = uid };
	struct walk_options opts = { .links = WALK_KEEP };
	int rc = walk_tree(dir, &opts, check_owner, &c, msg);
	*who = c.who;
	return rc;
}

/* A build container that exited non-zero: a daemon that is stopped kills its
 * containers on the way out (status 137 or 143), which must not read like
 * a failing install, so the daemon is asked whether it is still there. */
static int container_failed(const struct pipeline_request *req, int status, char **errmsg)
{
	char *version = NULL, *msg = NULL;
	int rc;
	if (docker_ping(req->docker, &version, &msg) < 0)
		rc = pipeline_fail(req, errmsg, -ECONNRESET,
			  "build container %s exited with status %d and the Docker daemon at %s no"
			  " longer answers (%s): it stopped during the build", req->build_image,
			  status, docker_endpoint(req->docker), msg ? msg : "no answer");
	else
		rc = pipeline_fail(req, errmsg, -EIO, "build container %s exited with status %d",
			  req->build_image, status);
	free(version);
	free(msg);
	return rc;
}

static int foreign_owner_failure(const struct pipeline_request *req, const char *who,
				 char **errmsg)
{
	return pipeline_fail(req, errmsg, -EPERM, "the build container left %s, not owned by uid"
			     " %u: the image must honour CONTAINER_UID/CONTAINER_GID", who,
			     (unsigned)getuid());
}

/* The archive path's way back: dir replaced by the container's
 * /mnt/function, whose entries must all be the caller's (as the bind path
 * checks the folder afterwards); the substituted package.sh stays out. */
static int copy_out(const struct pipeline_request *req, const char *id, const char *dir,
		    bool substituted_package_sh, char **errmsg)
{
	char *foreign = NULL, *msg = NULL;
	int rc = containerfs_get(req->docker, id, dir, substituted_package_sh, getuid(), &foreign,
				 &msg);
	if (rc == -EPERM && foreign) {
		char *who = str_printf(foreign[0] == '(' ? "%s %s" : "%s/%s", dir, foreign);
		rc = who ? foreign_owner_failure(req, who, errmsg) : -ENOMEM;
		free(who);
	} else if (rc < 0) {
		rc = pipeline_fail(req, errmsg, rc, "build container %s: %s", req->build_image,
				   msg ? msg : strerror(-rc));
	} else {
		build_log(req->log_fd, "step 6: copied %s out of the container into %s",
			  CONTAINERFS_PATH, dir);
	}
	free(foreign);
	free(msg);
	return rc;
}

/* Step 6 in the SeBS build container (SEBS.md section 6), in folder dir;
 * env: everything but the CONTAINER_* variables. */
static int install_in_container(const struct pipeline_request *req, const char *dir,
				const char *const env[], char **errmsg)
{
	char *langdir = pipeline_language_dir(req);
	char *package_sh = langdir ? path_join(langdir, "package.sh") : NULL;
	char *placeholder = path_join(dir, "package.sh");
	if (!langdir || !package_sh || !placeholder) {
		free(langdir);
		free(package_sh);
		free(placeholder);
		return -ENOMEM;
	}
	bool mount_package_sh = path_is_file(package_sh);
	bool had_package_sh = path_exists(placeholder);
	char *ids[] = { str_printf("CONTAINER_UID=%u", (unsigned)getuid()),
			str_printf("CONTAINER_GID=%u", (unsigned)getgid()) };
	const char *cenv[8] = { ids[0], ids[1], "CONTAINER_USER=docker_user" };
	for (int i = 0, n = 3; env[i] && n < 7; i++)
		cenv[n++] = env[i];
	char *binds_s[] = { str_printf("%s:/mnt/function", dir),
			    mount_package_sh ? str_printf("%s:/mnt/function/package.sh:ro", package_sh) : NULL };
	const char *binds[] = { binds_s[0], binds_s[1], NULL };
	char *id = NULL, *msg = NULL;
	/* A daemon behind tcp:// may sit on another machine, where the bind
	 * mounts would name folders that do not exist (or, worse, someone
	 * else's): the work folder then goes in and out through the archive
	 * API (containerfs.h), which gives the container the same view. */
	bool local = docker_is_local(req->docker);
	int rc = (ids[0] && ids[1] && binds_s[0] && (!mount_package_sh || binds_s[1])) ? 0 : -ENOMEM;
	if (rc == 0 && local && (strchr(dir, ':') || (mount_package_sh && strchr(package_sh, ':'))))
		rc = pipeline_fail(req, errmsg, -EINVAL, "cannot bind-mount a path containing ':' (%s)", dir);

	struct docker_container_spec spec = { .image = req->build_image, .env = cenv,
					      .binds = local ? binds : NULL,
					      .labels = req->container_labels };
	if (rc == 0) {
		build_log(req->log_fd, "step 6: build container %s (uid %u, gid %u; %s: the Docker"
			  " daemon at %s is %s)", req->build_image, (unsigned)getuid(),
			  (unsigned)getgid(), local ? "work folder bind-mounted"
			  : "work folder copied in and out through the archive API",
			  docker_endpoint(req->docker), local ? "local" : "remote");
		rc = docker_container_create(req->docker, &spec, &id, &msg);
	}
	if (rc == 0 && !local) {
		struct tarstream_stats sent = { 0 };
		rc = containerfs_put(req->docker, id, dir, mount_package_sh ? package_sh : NULL,
				     getuid(), getgid(), &sent, &msg);
		if (rc == 0)
			build_log(req->log_fd, "step 6: copied %s in as %s: %llu entries, %llu bytes",
				  dir, CONTAINERFS_PATH, sent.entries, sent.bytes);
	}
	if (rc == 0)
		rc = docker_container_start(req->docker, id, &msg);
	if (rc == 0)
		rc = docker_container_logs(req->docker, id, true, log_container_output, (void *)req, &msg);
	int status = 0;
	if (rc == 0)
		rc = docker_container_wait(req->docker, id, &status, &msg);
	if (rc < 0)
		rc = pipeline_fail(req, errmsg, rc, "build container %s: %s", req->build_image,
			  msg ? msg : strerror(-rc));
	else if (status != 0)
		rc = container_failed(req, status, errmsg);
	if (rc == 0 && !local)
		rc = copy_out(req, id, dir, mount_package_sh, errmsg);
	if (id) {
		/* always removed, also after a failure or a cancellation */
		char *rmsg = NULL;
		if (docker_container_remove(req->docker, id, true, &rmsg) < 0)
			build_log(req->log_fd, "warning: cannot remove container %s: %s", id, rmsg ? rmsg : "?");
		free(rmsg);
	}
	/* the package.sh bind mount leaves an empty mount point behind */
	struct stat st;
	if (local && mount_package_sh && !had_package_sh && lstat(placeholder, &st) == 0 &&
	    S_ISREG(st.st_mode) && st.st_size == 0)
		unlink(placeholder);
	if (rc == 0 && local) {
		char *who = NULL, *wmsg = NULL;
		int orc = find_foreign_owner(dir, getuid(), &who, &wmsg);
		if (orc < 0)
			rc = pipeline_fail(req, errmsg, orc, "cannot check the work folder: %s",
				  wmsg ? wmsg : strerror(-orc));
		else if (who)
			rc = foreign_owner_failure(req, who, errmsg);
		free(who);
		free(wmsg);
	}
	free(id);
	free(msg);
	free(ids[0]);
	free(ids[1]);
	free(binds_s[0]);
	free(binds_s[1]);
	free(langdir);
	free(package_sh);
	free(placeholder);
	return rc;
}

/* Where argv0 resolves through PATH, and a fingerprint of that file. */
static char *tool_fingerprint(const char *argv0)
{
	const char *path = getenv("PATH");
	char *copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	char *save = NULL, *found = NULL;
	for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found;
	     d = strtok_r(NULL, ":", &save)) {
		char *cand = path_join(d, argv0);
		struct stat st;
		if (cand && access(cand, X_OK) == 0 && stat(cand, &st) == 0 && S_ISREG(st.st_mode))
			found = str_printf("%s:%llu:%lld:%lld.%09ld", cand, (unsigned long long)st.st_ino,
					   (long long)st.st_size, (long long)st.st_mtim.tv_sec,
					   st.st_mtim.tv_nsec);
		free(cand);
	}
	free(copy);
	return found ? found : str_printf("%s:missing", argv0);
}

/* What a version line says without what is local to this machine: ANSI
 * colour codes (mvn) and an install path ("pip 23.2.1 from /home/me/venv/...
 * (python 3.11)" becomes "pip 23.2.1 (python 3.11)"), so that two machines
 * with the same tools in other places agree. */
static void normalize_version_line(char *line)
{
	char *w = line;
	for (const char *r = line; *r;) {
		if (*r == '\x1b' && r[1] == '[') {
			r += 2;
			while (*r && !isalpha((unsigned char)*r))
				r++;
			if (*r)
				r++;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
	char *from = strstr(line, " from /");
	if (from) {
		char *paren = strstr(from, " (");
		if (paren)
			memmove(from, paren, strlen(paren) + 1);
		else
			*from = '\0';
	}
}

/* The first line a `tool --version` prints, normalized, or "?" when it
 * cannot run. */
static char *tool_version(const char *argv0)
{
	int fd = memfd_create("sebsfs-tool-version", MFD_CLOEXEC);
	const char *argv[] = { argv0, "--version", NULL };
	struct spawn_opts opts = { .out_fd = fd, .cancel_fd = -1 };
	int status = -1;
	char buf[256] = "";
	if (fd >= 0 && spawn_wait(argv, &opts, &status) == 0 && status == 0) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		normalize_version_line(buf);
	}
	if (fd >= 0)
		close(fd);
	return strdup(buf[0] ? buf : "?");
}

/* The host programs that build a language's packages: the installer and
 * the runtime it installs for (python, nodejs), the build tool and the
 * compiler or JDK it drives (java, cpp); NULL for another language. */
static const char *const *host_tools_of(const char *language, int *slot)
{
	static const char *const tools[][2] = {
		{ "pip3", "python3" }, { "npm", "node" }, { "mvn", "java" }, { "cmake", "c++" },
	};
	static const char *const languages[] = { "python", "nodejs", "java", "cpp" };
	for (int i = 0; i < 4; i++)
		if (strcmp(language, languages[i]) == 0) {
			*slot = i;
			return tools[i];
		}
	return NULL;
}

/* The host's tools for language and their versions: "pip3 <version>;
 * python3 <version>" (see host_tools_of).  Running the tools costs a few
 * hundred ms, so the answer is remembered per language until one of the
 * executables changes (path, inode, size, mtime): a look-up with the
 * answer remembered costs two walks of PATH.  may_run false (a request
 * thread): the tools are not run, and *known says whether the answer was
 * remembered ("unknown" otherwise).  "" for a language without tools. */
static int host_tools_identity(const char *language, bool may_run, char **out, bool *known)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct { char *fingerprint, *identity; } remembered[4];
	int slot = 0;
	const char *const *tools = host_tools_of(language, &slot);
	*out = NULL;
	if (known)
		*known = true;
	if (!tools) {
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	char *fp[2] = { tool_fingerprint(tools[0]), tool_fingerprint(tools[1]) };
	char *fingerprint = fp[0] && fp[1] ? str_printf("%s;%s", fp[0], fp[1]) : NULL;
	int rc = 0;
	pthread_mutex_lock(&lock);
	if (!fingerprint) {
		rc = -ENOMEM;
	} else if (remembered[slot].fingerprint &&
		   strcmp(remembered[slot].fingerprint, fingerprint) == 0) {
		*out = strdup(remembered[slot].identity);
	} else if (!may_run) {
		*out = strdup("unknown");
		if (known)
			*known = false;
	} else {
		/* the tools run under the lock: a second caller waits for the
		 * answer instead of running them again */
		char *v[2] = { tool_version(tools[0]), tool_version(tools[1]) };
		*out = v[0] && v[1] ? str_printf("%s %s; %s %s", tools[0], v[0], tools[1], v[1]) : NULL;
		if (*out) {
			free(remembered[slot].fingerprint);
			free(remembered[slot].identity);
			remembered[slot].fingerprint = fingerprint;
			remembered[slot].identity = strdup(*out);
			fingerprint = NULL;
		}
		free(v[0]);
		free(v[1]);
	}
	pthread_mutex_unlock(&lock);
	if (rc == 0 && !*out)
		rc = -ENOMEM;
	free(fp[0]);
	free(fp[1]);
	free(fingerprint);
	return rc;
}

extern char **environ;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What else configures the host's tools for language: the environment
 * variables they read (sorted) and the content of their configuration
 * files, each file named by its role (not its path: a home folder's name
 * is no input).  What those point to (an index, a find-links folder, a
 * Maven repository, installed libraries) is, like the network, not
 * covered: see deplayer.h. */
static char *host_config_identity(const char *language)
{
	static const char *const py_prefixes[] = { "PIP_", "PYTHON", "PYENV_VERSION", NULL };
	static const char *const js_prefixes[] = { "npm_config_", "NPM_CONFIG_", "NODE_", NULL };
	static const char *const java_prefixes[] = { "MAVEN_", "JAVA_", "M2_", NULL };
	static const char *const cpp_prefixes[] = { "CC", "CXX", "CPP", "CFLAGS", "LDFLAGS",
						    "CMAKE_", "CPATH", "LIBRARY_PATH", NULL };
	int slot = -1;
	host_tools_of(language, &slot);
	const char *const *prefixes = slot == 0 ? py_prefixes : slot == 1 ? js_prefixes
				      : slot == 2 ? java_prefixes : slot == 3 ? cpp_prefixes : NULL;
	size_t n = 0, cap = 16;
	char **vars = malloc(cap * sizeof(*vars));
	for (char **e = environ; vars && prefixes && *e; e++) {
		bool match = false;
		for (const char *const *p = prefixes; *p && !match; p++)
			match = strncmp(*e, *p, strlen(*p)) == 0;
		if (!match)
			continue;
		if (n == cap) {
			char **v = realloc(vars, (cap *= 2) * sizeof(*v));
			if (!v) {
				free(vars);
				return NULL;
			}
			vars = v;
		}
		vars[n++] = *e;
	}
	if (!vars)
		return NULL;
	qsort(vars, n, sizeof(*vars), cmp_str);
	struct sha256_ctx ctx;
	sha256_init(&ctx);
	for (size_t i = 0; i < n; i++)
		sha256_update(&ctx, strlen(vars[i]) + 1, (const uint8_t *)vars[i]);
	free(vars);
	const char *home = getenv("HOME");
	const char *xdg = getenv("XDG_CONFIG_HOME");
	char *files[4] = { NULL };
	if (slot == 0) {
		files[0] = strdup("/etc/pip.conf");
		files[1] = xdg ? str_printf("%s/pip/pip.conf", xdg)
			       : home ? str_printf("%s/.config/pip/pip.conf", home) : NULL;
		files[2] = home ? str_printf("%s/.pip/pip.conf", home) : NULL;
		files[3] = getenv("PIP_CONFIG_FILE") ? strdup(getenv("PIP_CONFIG_FILE")) : NULL;
	} else if (slot == 1) {
		files[0] = strdup("/etc/npmrc");
		files[1] = home ? str_printf("%s/.npmrc", home) : NULL;
		files[2] = getenv("NPM_CONFIG_USERCONFIG") ? strdup(getenv("NPM_CONFIG_USERCONFIG")) : NULL;
		files[3] = getenv("npm_config_userconfig") ? strdup(getenv("npm_config_userconfig")) : NULL;
	} else if (slot == 2) {
		files[0] = strdup("/etc/maven/settings.xml");
		files[1] = home ? str_printf("%s/.m2/settings.xml", home) : NULL;
		files[2] = strdup("/etc/mavenrc");
		files[3] = home ? str_printf("%s/.mavenrc", home) : NULL;
	}
	/* each file by its role (its index), not its path: a key shared
	 * through a remote cache must not depend on $HOME */
	for (int i = 0; i < 4; i++) {
		char hex[SHA256_HEX_LEN + 1];
		uint8_t role = (uint8_t)i;
		if (!files[i])
			continue;
		bool read_ok = sha256_hex_file(files[i], hex) == 0;
		sha256_update(&ctx, 1, &role);
		sha256_update(&ctx, read_ok ? SHA256_HEX_LEN : 1, (const uint8_t *)(read_ok ? hex : "-"));
		free(files[i]);
	}
	char hex[SHA256_HEX_LEN + 1];
	sha256_digest_hex(&ctx, hex);
	return strdup(hex);
}

int pipeline_host_identity(const struct cat_runtime *rt, bool may_run, char **identity,
			   bool *known)
{
	char *tools = NULL, *flags = NULL, *config = host_config_identity(rt->language);
	int rc = config ? host_tools_identity(rt->language, may_run, &tools, known) : -ENOMEM;
	if (rc == 0 && !(flags = pipeline_host_arch_flags(rt)))
		rc = -ENOMEM;
	*identity = NULL;
	if (rc == 0) {
		*identity = *flags ? str_printf("tools=%s;configuration=%s;options=%s", tools, config,
						flags)
				   : str_printf("tools=%s;configuration=%s", tools, config);
		rc = *identity ? 0 : -ENOMEM;
	}
	free(flags);
	free(tools);
	free(config);
	return rc;
}

/* The installer's part of a dependency layer's key. */
static char *installer_identity(const struct pipeline_request *req)
{
	/* the image's ID, not its name: the same image tagged for several
	 * platforms installs the same way */
	if (req->installer == INSTALLER_DOCKER)
		return str_printf("docker image %s",
				  req->build_image_id ? req->build_image_id : "unknown");
	char *tools = NULL;
	char *config = host_config_identity(req->pkg->runtime->language);
	int rc = config ? host_tools_identity(req->pkg->runtime->language, true, &tools, NULL)
			: -ENOMEM;
	char *flags = rc == 0 ? pipeline_host_arch_flags(req->pkg->runtime) : NULL;
	char *id = flags ? str_printf("host %s; configuration %s; options \"%s\"", tools, config,
				      flags) : NULL;
	free(flags);
	free(tools);
	free(config);
	return id;
}

struct install_call {
	const struct pipeline_request *req;
	const char *depfile;
	const char *const *env;
};

static int install_into(void *arg, const char *dir, char **errmsg)
{
	struct install_call *c = arg;
	if (c->req->installer == INSTALLER_DOCKER)
		return install_in_container(c->req, dir, c->env, errmsg);
	return install_on_host(c->req, dir, c->depfile, c->env, errmsg);
}

/* An empty requirements file (step 5 creates one, as SeBS does) and no
 * package.sh: pip would do nothing, so it is not run. */
static bool python_install_is_empty(const struct pipeline_request *req, const char *depfile)
{
	char *path = path_join(req->workdir, depfile);
	char *langdir = pipeline_language_dir(req);
	char *package_sh = langdir ? path_join(langdir, "package.sh") : NULL;
	struct stat st;
	bool empty = path && package_sh && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		     st.st_size == 0 && !path_exists(package_sh);
	free(path);
	free(langdir);
	free(package_sh);
	return empty;
}

/* Step 6 through a dependency layer; *layer is held on success. */
static int install_with_layer(const struct pipeline_request *req, const char *depfile,
			      struct deplayer *layer, char **errmsg)
{
	char *langdir = pipeline_language_dir(req);
	char *package_sh = langdir ? path_join(langdir, "package.sh") : NULL;
	bool has_package_sh = package_sh && path_is_file(package_sh);
	bool in_container = req->installer == INSTALLER_DOCKER;
	struct build_env env;
	char *identity = installer_identity(req);
	int rc = identity ? build_env_init(req, true, has_package_sh, in_container, &env) : -ENOMEM;
	if (rc == 0) {
		/* the key covers the environment exactly as the install gets it */
		char *key_env[12] = { NULL };
		char *ids[2] = { NULL, NULL };
		int n = 0;
		if (in_container) {
			ids[0] = str_printf("CONTAINER_UID=%u", (unsigned)getuid());
			ids[1] = str_printf("CONTAINER_GID=%u", (unsigned)getgid());
			key_env[n++] = ids[0];
			key_env[n++] = ids[1];
			key_env[n++] = "CONTAINER_USER=docker_user";
		}
		for (int i = 0; env.vars[i]; i++)
			key_env[n++] = env.vars[i];
		struct install_call call = { req, depfile, (const char *const *)env.vars };
		struct deplayer_request lreq = {
			.workdir = req->workdir, .language = req->pkg->runtime->language,
			.version = req->pkg->runtime->version, .arch = req->pkg->runtime->arch,
			.depfile = depfile, .package_sh = has_package_sh ? package_sh : NULL,
			.installer = identity, .env = (const char *const *)key_env,
			.install = install_into, .install_ctx = &call,
			.log_fd = req->log_fd, .cancel_fd = req->cancel_fd, .deadline = req->deadline,
		};
		rc = (in_container && (!ids[0] || !ids[1])) ? -ENOMEM
			: deplayer_obtain(req->layers, &lreq, layer, errmsg);
		free(ids[0]);
		free(ids[1]);
		build_env_clear(&env);
	}
	if (rc == 0 && (rc = deplayer_apply(layer, req->workdir, errmsg)) < 0) {
		rc = pipeline_fail(req, errmsg, rc, "dependency layer %.12s: %s", layer->key,
			  errmsg && *errmsg ? *errmsg : strerror(-rc));
		deplayer_release(req->layers, layer);
	}
	free(identity);
	free(langdir);
	free(package_sh);
	return rc;
}

/* Step 6.  *layer (zeroed by the caller) is held when a layer was used. */
static int install_dependencies(const struct pipeline_request *req, struct deplayer *layer,
				char **errmsg)
{
	const char *language = req->pkg->runtime->language;
	bool compiled = compiled_language(language);
	if (!catalog_has_build_image(req->cat, req->pkg)) {
		if (compiled)
			return pipeline_fail(req, errmsg, -ENOTSUP, "a %s package is built in the build"
					     " image, and systems.json lists no \"build\" image for %s/%s",
					     language, req->pkg->platform->name, language);
		build_log(req->log_fd, "step 6: skipped (no \"build\" image for %s/%s)",
			  req->pkg->platform->name, language);
		return 0;
	}
	if (req->installer == INSTALLER_NONE) {
		if (compiled)
			return pipeline_fail(req, errmsg, -ENOTSUP, "builder=none cannot make a %s"
					     " package: it is the product of a %s build (use builder=docker"
					     " or builder=host)", language,
					     strcmp(language, "java") == 0 ? "Maven" : "CMake");
		build_log(req->log_fd, "step 6: skipped (builder=none)");
		return 0;
	}
	char *depfile = NULL;
	if (compiled) {
		int crc = compiled_build_file(req, &depfile, errmsg);
		if (crc < 0)
			return crc;
	} else {
		depfile = dependency_file(req);
	}
	if (!depfile) {
		build_log(req->log_fd, "step 6: no %s, nothing to install",
			  strcmp(req->pkg->runtime->language, "python") == 0 ? "requirements file" : "package.json");
		return 0;
	}
	if (strcmp(language, "python") == 0 && python_install_is_empty(req, depfile)) {
		build_log(req->log_fd, "step 6: %s is empty and there is no package.sh, nothing to install",
			  depfile);
		free(depfile);
		return 0;
	}
	const char *depname = deplayer_folder(req->pkg->runtime->language);
	char *own = depname ? path_join(req->workdir, depname) : NULL;
	bool has_own = own && path_exists(own);
	free(own);
	int rc;
	if (req->layers && depname && !has_own) {
		rc = install_with_layer(req, depfile, layer, errmsg);
	} else {
		if (req->layers && has_own)
			build_log(req->log_fd, "step 6: the work folder already has %s/ (from the"
				  " benchmark's files or init.sh): installing into it, without a"
				  " dependency layer", depname);
		struct build_env env;
		rc = build_env_init(req, false, true, req->installer == INSTALLER_DOCKER, &env);
		if (rc == 0)
			rc = install_into(&(struct install_call){ req, depfile,
						(const char *const *)env.vars }, req->workdir, errmsg);
		build_env_clear(&env);
	}
	free(depfile);
	return rc;
}

int pipeline_prepare(const struct pipeline_request *req, char **errmsg)
{
	const struct cat_package *pkg = req->pkg;
	build_log(req->log_fd, "step 2: copy code from %s/%s", pkg->benchmark->path, pkg->runtime->language);
	int rc = copy_code(req, errmsg);
	if (rc == 0)
		rc = add_benchmark_data(req, errmsg);
	if (rc == 0) {
		build_log(req->log_fd, "step 4: platform wrappers");
		rc = add_wrappers(req, errmsg);
	}
	if (rc == 0)
		rc = add_deployment_packages(req, errmsg);
	return rc;
}

/* Step 7's zip with a dependency layer: the work folder's entries, zipped
 * now, and the layer's, zipped when it was built, spliced in name order. */
static int zip_with_layer(const struct pipeline_request *req, const struct deplayer *layer,
			  char **msg)
{
	char *deps = deplayer_zip_path(layer);
	char *parent = strdup(req->workdir);
	char *slash = parent ? strrchr(parent, '/') : NULL;
	int fds[2] = { -1, -1 };
	struct zip_index *parts[2] = { NULL, NULL };
	int rc = deps && slash ? 0 : -ENOMEM;
	if (rc == 0) {
		*slash = '\0';
		/* unnamed, so a crash leaves nothing behind */
		fds[0] = open(parent, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fds[0] < 0) {
			rc = -errno;
			*msg = str_printf("cannot create a temporary file in %s: %s", parent,
					  strerror(errno));
		}
	}
	if (rc == 0)
		rc = ziptree_write(req->workdir, fds[0], msg);
	if (rc == 0 && (fds[1] = open(deps, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = -errno;
		*msg = str_printf("cannot open %s: %s", deps, strerror(errno));
	}
	if (rc == 0)
		rc = zip_index_read(fds[0], &parts[0], msg);
	if (rc == 0 && (rc = zip_index_read(fds[1], &parts[1], msg)) < 0)
		build_log(req->log_fd, "error: %s is damaged: evict the layer (rm -r it) to build"
			  " it again", deps);
	if (rc == 0) {
		build_log(req->log_fd, "step 7: %zu entries of the package and %zu of dependency"
			  " layer %.12s, spliced without compressing them again",
			  zip_index_count(parts[0]), zip_index_count(parts[1]), layer->key);
		rc = zipsplice_write(req->out_fd, fds, parts, 2, msg);
	}
	for (int i = 0; i < 2; i++) {
		zip_index_free(parts[i]);
		if (fds[i] >= 0)
			close(fds[i]);
	}
	free(deps);
	free(parent);
	return rc;
}

int pipeline_build_zip(const struct pipeline_request *req, char **errmsg)
{
	const struct cat_package *pkg = req->pkg;
	struct deplayer layer = { 0 };
	build_log(req->log_fd, "building %s/%s/%s%s (builder: %s%s%s)", pkg->platform->name,
		  pkg->runtime->dirname, pkg->benchmark->name,
		  pkg->runtime->package_suffix ? pkg->runtime->package_suffix : ".zip",
		  installer_name(req->installer),
		  req->installer_note ? ", " : "", req->installer_note ? req->installer_note : "");
	const char *product = layout_product(pkg->platform->name, pkg->runtime->language);
	int rc = pipeline_prepare(req, errmsg);
	if (rc == 0)
		rc = install_dependencies(req, &layer, errmsg);
	if (rc == 0 && compiled_language(pkg->runtime->language))
		rc = compiled_check_product(req, errmsg);
	if (rc == 0 && product) {
		rc = compiled_write_product(req, product, errmsg);
	} else if (rc == 0) {
		char *msg = NULL;
		bool splice = layer.path && layer.has_deps &&
			      layout_ships_dependencies(pkg->platform->name);
		build_log(req->log_fd, "step 7: %s layout, zip", pkg->platform->name);
		rc = layout_apply(pkg->platform->name, pkg->runtime->language, req->workdir, &msg);
		if (rc == 0)
			rc = splice ? zip_with_layer(req, &layer, &msg)
				    : ziptree_write(req->workdir, req->out_fd, &msg);
		if (rc < 0)
			rc = pipeline_fail(req, errmsg, rc, "packaging failed: %s", msg ? msg : strerror(-rc));
		free(msg);
	}
	if (rc == 0 && layer.path && req->result) {
		req->result->has_layer = true;
		memcpy(req->result->deps_hash, layer.key, sizeof(layer.key));
		req->result->deps_reused = layer.reused;
	}
	deplayer_release(req->layers, &layer);
	return rc;
}
