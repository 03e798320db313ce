/*
 * pipeline_int.h - what pipeline.c shares with pipeline_compiled.c, the steps
 * of the compiled languages (java, cpp).  Not for other modules.
 */
#ifndef SEBSFS_PIPELINE_INT_H
#define SEBSFS_PIPELINE_INT_H

#include <stdbool.h>

#include "pipeline.h"

/* Records the reason for a failure once (*errmsg, if still NULL, and the
 * build log) and returns rc (-EIO when rc is not negative). */
int pipeline_fail(const struct pipeline_request *req, char **errmsg, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Runs argv in cwd with env added, its output into the build log, under the
 * build's cancel and deadline; a non-zero exit is a failure naming what. */
int pipeline_run(const struct pipeline_request *req, char **errmsg, const char *const argv[],
		 const char *cwd, const char *const env[], const char *what);

/* Does s end in suffix? */
bool pipeline_has_suffix(const char *s, const char *suffix);

/* <benchmark>/<language> (malloc'd). */
char *pipeline_language_dir(const struct pipeline_request *req);

/* ---- pipeline_compiled.c ---------------------------------------------------------- */

/* Is language one whose package is a build product (java, cpp)? */
bool compiled_language(const char *language);

/* Step 2 for a compiled language: java copies the whole language folder
 * (SeBS's copytree), cpp its *.cpp, *.hpp and dependencies.json. */
int compiled_copy_code(const struct pipeline_request *req, char **errmsg);

/* Step 5: java: systems.json's packages replace the pom's
 * <!-- PLATFORM_DEPENDENCIES -->; cpp: CMakeLists.txt is generated. */
int compiled_add_build_files(const struct pipeline_request *req, char **errmsg);

/* The file step 6 works from: "pom.xml" or "CMakeLists.txt"; a missing
 * pom.xml fails the build (a Java package cannot exist without Maven). */
int compiled_build_file(const struct pipeline_request *req, char **depfile, char **errmsg);

/* Step 6 on the host: mvn (then target/function.jar -> function.jar and
 * package.sh, as SeBS's java installer does) or cmake. */
int compiled_install_on_host(const struct pipeline_request *req, const char *const env[],
			     char **errmsg);

/* After step 6: the product the build must have left (function.jar,
 * build/benchmark.zip) exists; function.jar is re-packed reproducibly in
 * place (it ships inside azure's and gcp's zips too). */
int compiled_check_product(const struct pipeline_request *req, char **errmsg);

/* Step 7 where the package is the build product itself (layout_product):
 * its reproducible form into req->out_fd. */
int compiled_write_product(const struct pipeline_request *req, const char *product,
			   char **errmsg);

#endif
