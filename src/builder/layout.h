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

/* Returns 0 or -errno; on failure *errmsg (may be NULL) gets a malloc'd reason.
 * Unknown platform: -ENOTSUP. */
int layout_apply(const char *platform, const char *language, const char *workdir,
		 char **errmsg);

#endif
