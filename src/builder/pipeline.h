/*
 * pipeline.h - one code-package build, steps 2-7 of ../shared/SEBS.md section 4.
 *
 *  2 prepare: copy the language folder's code files into the empty work folder
 *    (python: *.py, requirements.txt*; nodejs: *.js, package.json, and
 *    package.json.<ver> replaces package.json); for a variant runtime,
 *    then <lang>/<variant>/patch.diff applied with patch -p1, else that
 *    folder's code files copied over (SeBS's copy_code);
 *  3 data: `bash -e init.sh <workdir> false <arch>` of the benchmark folder,
 *    then of the language folder (cwd: the script's folder).  errexit is on
 *    purpose: a failing step inside init.sh fails the build instead of
 *    shipping a package silently missing its data;
 *  4 wrappers: copy deployment.files, never overwriting the benchmark's files;
 *  5 packages: python: append deployment/module packages, one per line, to
 *    requirements.txt.<ver> if present else requirements.txt, created
 *    empty when there is none and nothing to add (SeBS's packages always
 *    have one; an empty one with no package.sh installs nothing); nodejs: merge
 *    them into package.json "dependencies";
 *  6 dependencies: only when "build" is in images and the dependency file
 *    exists; done by the installer: docker (the SeBS build container of
 *    SEBS.md section 6, run through the Engine API, its output streamed into
 *    the log, always removed; afterwards every file must be owned by the
 *    caller), host (pip3 / npm on this machine) or none.  With req->layers,
 *    the install runs once per dependency key in a folder of its own and its
 *    result is cached (deplayer.h); the work folder gets the layer's extra
 *    files, and its dependency folder is spliced into the zip in step 7.
 *    Without (or when the work folder already has a dependency folder of its
 *    own, which an isolated install could not see), it runs in the work
 *    folder.  The host installer cross-installs for a runtime whose
 *    architecture is not this machine's (pipeline_host_arch_args);
 *  7 layout (layout.h) and reproducible zip (ziptree.h) into out_fd; with a
 *    layer, the work folder's zip and the layer's deps.zip are spliced
 *    (zipsplice.h): the bytes equal a zip of the whole tree.
 * Every step writes a "[sebsfs] " line to log_fd, and programs' output goes there.
 */
#ifndef SEBSFS_PIPELINE_H
#define SEBSFS_PIPELINE_H

#include <stdbool.h>
#include <time.h>

#include "catalog.h"
#include "sha256.h"

enum installer_kind { INSTALLER_NONE, INSTALLER_HOST, INSTALLER_DOCKER };

struct docker;
struct deplayer_store;

const char *installer_name(enum installer_kind kind);

/* What a zip build used besides its inputs (for the package's row). */
struct pipeline_result {
	bool has_layer;             /* step 6 came from a dependency layer */
	char deps_hash[SHA256_HEX_LEN + 1]; /* its key */
	bool deps_reused;           /* it was cached already */
};

struct pipeline_request {
	const struct catalog *cat;     /* a snapshot loaded for this build */
	const struct cat_package *pkg; /* a package of cat */
	enum installer_kind installer;
	const char *installer_note;    /* why this installer, for the log (may be NULL) */
	struct docker *docker;         /* INSTALLER_DOCKER: this worker's client */
	const char *build_image;       /* INSTALLER_DOCKER: the image to run */
	const char *build_image_id;    /* INSTALLER_DOCKER: its ID (a dependency layer's key) */
	struct deplayer_store *layers; /* step 6 through dependency layers (deplayer.h);
				        * NULL: install in the work folder itself */
	struct pipeline_result *result; /* out (zip builds; may be NULL) */
	const char *const *container_labels; /* INSTALLER_DOCKER: "name=value" labels of the
				        * build container, NULL-terminated; may be NULL */
	const char *workdir;           /* an empty folder owned by this build */
	int out_fd;                    /* the zip is written here */
	int log_fd;                    /* build log */
	int cancel_fd;                 /* spawn_opts.cancel_fd of every program run; -1 = none (0 is stdin) */
	const struct timespec *deadline; /* spawn_opts.deadline of every program run; NULL = none */
	unsigned timeout;              /* the build's time limit in seconds, for messages */
};

/* The options that make the host's pip3 or npm install rt's dependencies
 * for rt->arch when this machine has the other architecture, as SeBS's
 * installers do for arm64 in its x64 build image: pip3 --platform
 * manylinux_2_17_<aarch64|x86_64> --only-binary=:all: --python-version
 * <ver> --implementation cp (only wheels for that platform and CPython
 * version; a requirement with none, e.g. an sdist-only one, fails the
 * install); npm --arch=<arch> (npm_config_arch, read by node-gyp and
 * prebuild-install) --cpu=<arch> (npm's own choice of optional
 * platform packages).  Fills out, NULL-terminated, with static strings or
 * pointers into rt; returns the count, 0 when no option is needed (same
 * architecture, or another language). */
#define PIPELINE_HOST_ARCH_ARGS_MAX 8
size_t pipeline_host_arch_args(const struct cat_runtime *rt,
			       const char *out[PIPELINE_HOST_ARCH_ARGS_MAX]);

/* The same options joined by blanks (malloc'd; "" when none), or NULL on
 * ENOMEM: part of a host-built package's identity and a dependency layer's
 * key, so that a package built without them is never taken for one built
 * with them. */
char *pipeline_host_arch_flags(const struct cat_runtime *rt);

/* What builds rt's packages on this host, for a host-built package's key
 * (*identity, malloc'd): "tools=<tool> <version>; <tool> <version>;
 * configuration=<sha256>[;options=<pipeline_host_arch_flags>]".  The tools
 * are pip3 and python3 (python), npm and node (nodejs), mvn and java
 * (java), cmake and c++ (cpp), found through PATH as the build finds them;
 * a version is the first line of `tool --version` without ANSI codes or an
 * install path.  The configuration covers the environment variables those
 * tools read (PIP_*, PYTHON*, npm_config_*, MAVEN_*, JAVA_*, CC, CXX*,
 * CMAKE_*, ...) and their configuration files (pip.conf, .npmrc, Maven's
 * settings.xml) by content, never by path.  Nothing machine-local (paths,
 * host names) enters it: equal toolchains give equal identities.
 *
 * Running the tools costs a few hundred ms, so their versions are
 * remembered per language until an executable changes (path, inode, size,
 * mtime); with them remembered a call costs two walks of PATH, the
 * environment and a few small files.  may_run false (an open on a request
 * thread, which must not wait for programs): the tools are never run, and when
 * their versions are not remembered the identity says "tools=unknown" and
 * *known is false (known may be NULL).  0 or -ENOMEM. */
int pipeline_host_identity(const struct cat_runtime *rt, bool may_run, char **identity,
			   bool *known);

/* Steps 2-5 only: the work folder a function image is built from.
 * out_fd and the installer are not used. */
int pipeline_prepare(const struct pipeline_request *req, char **errmsg);

/* Runs the pipeline.  Returns 0 or -errno; on failure *errmsg gets a malloc'd
 * one-line reason (also written to the log). */
int pipeline_build_zip(const struct pipeline_request *req, char **errmsg);

#endif
