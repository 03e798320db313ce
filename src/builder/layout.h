/*
 * layout.h - step 7 of the pipeline: lay the work folder out for a platform
 * (../shared/SEBS.md section 5), in place, before it is zipped.
 *
 *  aws, local: every top-level entry except the keep set moves into function/
 *      keep: python {handler.py, requirements.txt, .python_packages}
 *            nodejs {handler.js, package.json, node_modules}
 *  gcp: every entry except {handler.py, .python_packages} (nodejs {handler.js,
 *      node_modules}) moves into function/; then handler.py -> main.py
 *      (nodejs handler.js -> index.js).
 *  azure: every entry except {requirements.txt, .python_packages} (nodejs
 *      {package.json, node_modules}) moves into handler/; writes
 *      handler/function.json and host.json (JSON built with jansson).
 *  openwhisk: everything but __main__.py (nodejs index.js) is removed.
 *  java (the build left function.jar at the top):
 *    azure: function.jar moves to lib/; src, pom.xml, target, .mvn, mvnw,
 *      mvnw.cmd are removed; everything else moves into handler/;
 *      handler/function.json gets scriptFile "../lib/function.jar" and
 *      entryPoint "org.serverlessbench.Handler.handleRequest"; host.json.
 *    gcp: target/ is removed (see layout.c), everything but function.jar
 *      moves into function/.
 *    aws: none: the package is the jar itself (layout_product).
 *  Moving is a rename; an entry named like the target folder ("function",
 *  "handler") that already exists at top level is moved into it as well
 *  (renamed through a temporary name), never merged.
 * Afterwards layout_apply also removes files that must not ship:
 * node_modules/.package-lock.json (npm bookkeeping).
 */
#ifndef SEBSFS_LAYOUT_H
#define SEBSFS_LAYOUT_H

#include <stdbool.h>

/* Is platform one whose layout is known? */
bool layout_supported(const char *platform);

/* Does the platform's package keep the installed dependency folder
 * (.python_packages, node_modules) at its top level, unchanged?  Every
 * layout but openwhisk's does: a dependency layer's zipped entries can then
 * be spliced into the package as they are. */
bool layout_ships_dependencies(const char *platform);

/* Removes from folder dir (holding the dependency folder at its top) the
 * files that must not ship, as layout_apply does.  0 or -errno. */
int layout_clean_dependencies(const char *dir, char **errmsg);

/* The file (relative to the work folder) that is itself the package where
 * SeBS deploys a build product as it is: aws java "function.jar" (Maven's
 * jar), aws cpp "build/benchmark.zip" (the zip aws_lambda_package_target
 * writes); NULL when the package is the laid-out work folder, zipped. */
const char *layout_product(const char *platform, const char *language);

/* Returns 0 or -errno; on failure *errmsg (may be NULL) gets a malloc'd reason.
 * Unknown platform: -ENOTSUP. */
int layout_apply(const char *platform, const char *language, const char *workdir,
		 char **errmsg);

#endif
