/*
 * pipeline.h - one code-package build, steps 2-7 of ../shared/SEBS.md section 4.
 *
 *  2 prepare: copy the language folder's code files into the empty work folder
 *    (python: *.py, requirements.txt*; nodejs: *.js, package.json, and
 *    package.json.<ver> replaces package.json);
 *  3 data: `bash -e init.sh <workdir> false <arch>` of the benchmark folder,
 *    then of the language folder (cwd: the script's folder).  errexit is on
 *    purpose: a failing step inside init.sh fails the build instead of
 *    shipping a package silently missing its data;
 *  4 wrappers: copy deployment.files, never overwriting the benchmark's files;
 *  5 packages: python: append deployment/module packages, one per line, to
 *    requirements.txt.<ver> if present else requirements.txt; nodejs: merge
 *    them into package.json "dependencies";
 *  6 dependencies: only when "build" is in images and the dependency file
 *    exists; done by the installer: docker (the SeBS build container of
 *    SEBS.md section 6, run through the Engine API, its output streamed into
 *    the log, always removed; afterwards every file must be owned by the
 *    caller), host (pip3 / npm on this machine) or none;
 *  7 layout (layout.h) and reproducible zip (ziptree.h) into out_fd.
 * Every step writes a "[sebsfs] " line to log_fd, and programs' output goes there.
 */
#ifndef SEBSFS_PIPELINE_H
#define SEBSFS_PIPELINE_H

#include <time.h>

#include "catalog.h"

enum installer_kind { INSTALLER_NONE, INSTALLER_HOST, INSTALLER_DOCKER };

struct docker;

const char *installer_name(enum installer_kind kind);

struct pipeline_request {
	const struct catalog *cat;     /* a snapshot loaded for this build */
	const struct cat_package *pkg; /* a package of cat */
	enum installer_kind installer;
	const char *installer_note;    /* why this installer, for the log (may be NULL) */
	struct docker *docker;         /* INSTALLER_DOCKER: this worker's client */
	const char *build_image;       /* INSTALLER_DOCKER: the image to run */
	const char *const *container_labels; /* INSTALLER_DOCKER: "name=value" labels of the
				        * build container, NULL-terminated; may be NULL */
	const char *workdir;           /* an empty folder owned by this build */
	int out_fd;                    /* the zip is written here */
	int log_fd;                    /* build log */
	int cancel_fd;                 /* spawn_opts.cancel_fd of every program run; -1 = none (0 is stdin) */
	const struct timespec *deadline; /* spawn_opts.deadline of every program run; NULL = none */
	unsigned timeout;              /* the build's time limit in seconds, for messages */
};

/* Steps 2-5 only: the work folder a function image is built from.
 * out_fd and the installer are not used. */
int pipeline_prepare(const struct pipeline_request *req, char **errmsg);

/* Runs the pipeline.  Returns 0 or -errno; on failure *errmsg gets a malloc'd
 * one-line reason (also written to the log). */
int pipeline_build_zip(const struct pipeline_request *req, char **errmsg);

/* Writes "[sebsfs] <message>\n" to fd in one write (thread-safe, unbuffered). */
void build_log(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
