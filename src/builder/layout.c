/*
 * layout.c - lay a prepared work folder out for a platform (see layout.h and
 * SEBS.md section 5), in place, before ziptree_write zips it.
 *
 * Everything is a rename inside the work folder, so a layout is cheap even
 * for a 100 MB node_modules.  Renames use RENAME_NOREPLACE: a clash would mean
 * the work folder is not what the pipeline prepared, and silently replacing a
 * file would ship the wrong code.  The azure JSON files are built with
 * jansson with sorted keys, so their bytes (and the zip's) are reproducible.
 */
#include "layout.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "fsutil.h"

struct lang_files {
	const char *handler;   /* platform shim, "handler.py" */
	const char *deps;      /* dependency list, "requirements.txt" */
	const char *pkgdir;    /* installed dependencies, ".python_packages" */
	const char *gcp_main;  /* name gcp expects for the handler */
	const char *ow_main;   /* the only file of an openwhisk code package */
};

static const struct lang_files python_files = {
	"handler.py", "requirements.txt", ".python_packages", "main.py", "__main__.py",
};
static const struct lang_files nodejs_files = {
	"handler.js", "package.json", "node_modules", "index.js", "index.js",
};

static const char *const platforms[] = { "aws", "local", "gcp", "azure", "openwhisk" };

bool layout_ships_dependencies(const char *platform)
{
	return layout_supported(platform) && strcmp(platform, "openwhisk") != 0;
}

/* npm's bookkeeping lists absolute install details and differs run to run;
 * it must not ship (SEBS.md section 8). */
static int clean_dependencies(int dfd, char **errmsg)
{
	if (unlinkat(dfd, "node_modules/.package-lock.json", 0) < 0 &&
	    errno != ENOENT && errno != ENOTDIR) {
		int rc = -errno;
		errmsg_set(errmsg, "remove node_modules/.package-lock.json: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

int layout_clean_dependencies(const char *dir, char **errmsg)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		int rc = -errno;
		errmsg_set(errmsg, "open %s: %s", dir, strerror(-rc));
		return rc;
	}
	int rc = clean_dependencies(dfd, errmsg);
	close(dfd);
	return rc;
}

bool layout_supported(const char *platform)
{
	if (!platform)
		return false;
	for (size_t i = 0; i < sizeof(platforms) / sizeof(platforms[0]); i++)
		if (!strcmp(platform, platforms[i]))
			return true;
	return false;
}

static bool in_set(const char *name, const char *const *keep)
{
	for (; *keep; keep++)
		if (!strcmp(name, *keep))
			return true;
	return false;
}

/* Moves every top-level entry of workdir not in keep (NULL-terminated) into
 * workdir/target, which is created.  An existing entry named target is moved
 * in as well, through a temporary name. */
static int move_into(int wfd, const char *workdir, const char *target,
		     const char *const *keep, char **errmsg)
{
	char **names = NULL;
	size_t n = 0;
	char *tmp = NULL;
	int rc;

	rc = list_dir_sorted(workdir, &names, &n);
	if (rc) {
		errmsg_set(errmsg, "list %s: %s", workdir, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], target))
			continue;
		/* A dot name is never one of the benchmark's (they are all
		 * listed already), and the pid keeps it unique per process. */
		tmp = str_printf(".sebsfs-layout-%ld-%s", (long)getpid(), target);
		if (!tmp) {
			rc = -ENOMEM;
			goto out;
		}
		if (renameat2(wfd, target, wfd, tmp, RENAME_NOREPLACE) < 0) {
			rc = -errno;
			errmsg_set(errmsg, "rename %s: %s", target, strerror(-rc));
			goto out;
		}
		break;
	}
	if (mkdirat(wfd, target, 0755) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "mkdir %s: %s", target, strerror(-rc));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *src = names[i];
		char *dst;

		if (in_set(src, keep))
			continue;
		if (tmp && !strcmp(src, target))
			src = tmp;
		dst = path_join(target, names[i]);
		if (!dst) {
			rc = -ENOMEM;
			goto out;
		}
		if (renameat2(wfd, src, wfd, dst, RENAME_NOREPLACE) < 0) {
			rc = -errno;
			errmsg_set(errmsg, "move %s to %s: %s", names[i], dst, strerror(-rc));
			free(dst);
			goto out;
		}
		free(dst);
	}
out:
	free(tmp);
	str_list_free(names, n);
	return rc;
}

/* Writes j (stolen) as relpath under wfd: 2-space indent, sorted keys, final
 * newline, mode 0644. */
static int write_json(int wfd, const char *relpath, json_t *j, char **errmsg)
{
	int fd, rc = 0;

	if (!j) {
		errmsg_set(errmsg, "%s: cannot build JSON", relpath);
		return -ENOMEM;
	}
	fd = openat(wfd, relpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    0644);
	if (fd < 0) {
		rc = -errno;
		errmsg_set(errmsg, "create %s: %s", relpath, strerror(-rc));
		goto out;
	}
	errno = 0;
	if (json_dumpfd(j, fd, JSON_INDENT(2) | JSON_SORT_KEYS) < 0 ||
	    write(fd, "\n", 1) != 1) {
		rc = errno ? -errno : -EIO;
		errmsg_set(errmsg, "write %s: %s", relpath, strerror(-rc));
	}
	if (close(fd) < 0 && !rc) {
		rc = -errno;
		errmsg_set(errmsg, "write %s: %s", relpath, strerror(-rc));
	}
out:
	json_decref(j);
	return rc;
}

/* handler/function.json and host.json.  java_entry: the entry point of a
 * Java function (its scriptFile is then ../lib/function.jar), else NULL. */
static int azure_files(int wfd, const char *script, const char *java_entry, char **errmsg)
{
	json_t *fn, *host;
	int rc;

	fn = json_pack("{s:s, s:[{s:s, s:s, s:s, s:s, s:[s, s]}, {s:s, s:s, s:s}]}",
		       "scriptFile", script,
		       "bindings",
		       "authLevel", "anonymous", "type", "httpTrigger",
		       "direction", "in", "name", "req", "methods", "get", "post",
		       "type", "http", "direction", "out", "name", "$return");
	if (fn && java_entry && json_object_set_new(fn, "entryPoint", json_string(java_entry)) < 0) {
		json_decref(fn);
		fn = NULL;
	}
	rc = write_json(wfd, "handler/function.json", fn, errmsg);
	if (rc)
		return rc;
	host = json_pack("{s:s, s:{s:s, s:s}}",
			 "version", "2.0",
			 "extensionBundle",
			 "id", "Microsoft.Azure.Functions.ExtensionBundle",
			 "version", "[4.0.0, 5.0.0)");
	return write_json(wfd, "host.json", host, errmsg);
}

/* Removes every top-level entry but keep_name. */
static int keep_only(const char *workdir, const char *keep_name, char **errmsg)
{
	char **names = NULL;
	size_t n = 0;
	int rc;

	rc = list_dir_sorted(workdir, &names, &n);
	if (rc) {
		errmsg_set(errmsg, "list %s: %s", workdir, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		char *p;

		if (!strcmp(names[i], keep_name))
			continue;
		p = path_join(workdir, names[i]);
		if (!p) {
			rc = -ENOMEM;
			break;
		}
		rc = rm_rf(p);
		if (rc)
			errmsg_set(errmsg, "remove %s: %s", p, strerror(-rc));
		free(p);
	}
	str_list_free(names, n);
	return rc;
}

const char *layout_product(const char *platform, const char *language)
{
	if (!platform || !language || strcmp(platform, "aws") != 0)
		return NULL;
	if (strcmp(language, "java") == 0)
		return "function.jar";
	if (strcmp(language, "cpp") == 0)
		return "build/benchmark.zip";
	return NULL;
}

/* Removes the top-level entries of names (NULL-terminated) that exist. */
static int remove_entries(const char *workdir, const char *const *names, char **errmsg)
{
	int rc = 0;

	for (; *names && !rc; names++) {
		char *p = path_join(workdir, *names);

		if (!p)
			return -ENOMEM;
		rc = rm_rf(p);
		if (rc)
			errmsg_set(errmsg, "remove %s: %s", p, strerror(-rc));
		free(p);
	}
	return rc;
}

/* Maven's and the Maven wrapper's files: what builds the jar, not the function. */
static const char *const maven_files[] = { "src", "pom.xml", "target", ".mvn", "mvnw",
					   "mvnw.cmd", NULL };

/* java, after the build left function.jar at the top (SeBS's package_code
 * of azure and gcp; aws deploys the jar itself: layout_product). */
static int java_layout(const char *platform, int wfd, const char *workdir, char **errmsg)
{
	int rc;

	if (!strcmp(platform, "azure")) {
		const char *keep[] = { "lib", "src", "pom.xml", "target", ".mvn", "mvnw",
				       "mvnw.cmd", NULL };

		if (mkdirat(wfd, "lib", 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			errmsg_set(errmsg, "mkdir lib: %s", strerror(-rc));
			return rc;
		}
		if (renameat2(wfd, "function.jar", wfd, "lib/function.jar", RENAME_NOREPLACE) < 0) {
			rc = -errno;
			errmsg_set(errmsg, "move function.jar to lib/: %s", strerror(-rc));
			return rc;
		}
		rc = move_into(wfd, workdir, "handler", keep, errmsg);
		if (!rc)
			rc = remove_entries(workdir, maven_files, errmsg);
		if (!rc)
			rc = azure_files(wfd, "../lib/function.jar",
					 "org.serverlessbench.Handler.handleRequest", errmsg);
		return rc;
	}
	if (!strcmp(platform, "gcp")) {
		/* SeBS moves Maven's target/ into function/ too: a second copy of the
		 * jar, the unshaded one, class files and Maven's bookkeeping, which
		 * names the build folder's absolute paths.  GCP deploys function.jar;
		 * target/ is left out so the zip does not depend on where it was
		 * built (docs/languages.md). */
		const char *keep[] = { "function.jar", NULL };
		const char *target[] = { "target", NULL };

		rc = remove_entries(workdir, target, errmsg);
		if (!rc)
			rc = move_into(wfd, workdir, "function", keep, errmsg);
		return rc;
	}
	errmsg_set(errmsg, "SeBS has no java package layout for platform '%s'", platform);
	return -ENOTSUP;
}

int layout_apply(const char *platform, const char *language, const char *workdir,
		 char **errmsg)
{
	const struct lang_files *lf;
	struct stat st;
	int wfd = -1, rc = 0;

	if (errmsg)
		*errmsg = NULL;
	if (!layout_supported(platform)) {
		errmsg_set(errmsg, "no package layout for platform '%s'",
			platform ? platform : "(null)");
		return -ENOTSUP;
	}
	if (language && !strcmp(language, "java")) {
		wfd = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (wfd < 0) {
			rc = -errno;
			errmsg_set(errmsg, "open work folder %s: %s", workdir, strerror(-rc));
			return rc;
		}
		rc = java_layout(platform, wfd, workdir, errmsg);
		close(wfd);
		return rc;
	}
	if (language && !strcmp(language, "python")) {
		lf = &python_files;
	} else if (language && !strcmp(language, "nodejs")) {
		lf = &nodejs_files;
	} else {
		errmsg_set(errmsg, "no package layout for language '%s'",
			language ? language : "(null)");
		return -ENOTSUP;
	}

	wfd = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wfd < 0) {
		rc = -errno;
		errmsg_set(errmsg, "open work folder %s: %s", workdir, strerror(-rc));
		return rc;
	}

	if (!strcmp(platform, "aws") || !strcmp(platform, "local")) {
		const char *keep[] = { lf->handler, lf->deps, lf->pkgdir, NULL };

		rc = move_into(wfd, workdir, "function", keep, errmsg);
	} else if (!strcmp(platform, "gcp")) {
		const char *keep[] = { lf->handler, lf->pkgdir, NULL };

		rc = move_into(wfd, workdir, "function", keep, errmsg);
		/* A missing handler is the pipeline's concern, not ours. */
		if (!rc && fstatat(wfd, lf->handler, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    renameat2(wfd, lf->handler, wfd, lf->gcp_main, RENAME_NOREPLACE) < 0) {
			rc = -errno;
			errmsg_set(errmsg, "rename %s to %s: %s", lf->handler,
				lf->gcp_main, strerror(-rc));
		}
	} else if (!strcmp(platform, "azure")) {
		const char *keep[] = { lf->deps, lf->pkgdir, NULL };

		rc = move_into(wfd, workdir, "handler", keep, errmsg);
		if (!rc)
			rc = azure_files(wfd, lf->handler, NULL, errmsg);
	} else {
		rc = keep_only(workdir, lf->ow_main, errmsg);
	}
	if (rc)
		goto out;

	rc = clean_dependencies(wfd, errmsg);
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory");
	close(wfd);
	return rc;
}
