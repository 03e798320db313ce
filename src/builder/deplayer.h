/*
 * deplayer.h - the dependency layer of a code package: step 6 of the
 * pipeline (pipeline.h), done once per key and kept in the cache.
 *
 * A code package is two parts that change at different rates: the installed
 * dependencies (what pip or npm, and the benchmark's package.sh, put into the
 * work folder) and everything else (code, wrappers, data, platform files).
 * The first is a dependency layer, cached under a key that covers exactly
 * what decides it:
 *  - the installer: the build image's reference and ID (docker), or the host
 *    installer and its tool versions (`pip3 --version`, `python3 --version`;
 *    `npm --version`, `node --version`);
 *  - the environment the install gets (every NAME=value, in order);
 *  - language, version, architecture;
 *  - the dependency file (requirements file or package.json, after step 5
 *    added the deployment packages): its name and content;
 *  - package.sh's content (or its absence);
 *  - every local file the dependency file names (pip: `./x.whl`, `-r`/`-c`
 *    files (parsed in turn), `-e`/`-f` folders, `name @ file:...`; npm:
 *    `file:`/`link:`/path dependency values) and npm's own inputs when the
 *    work folder has them (package-lock.json, npm-shrinkwrap.json, .npmrc):
 *    each by path and content.
 * The key is complete by construction, not by hope: the install runs in a
 * folder that holds only those files, so an install that needs anything
 * else (a package.sh reading the benchmark's code, a requirement naming a
 * file this parser does not see) fails loudly instead of caching a wrong
 * layer.  A path that leaves the work folder (absolute, or climbing out
 * with "..") is refused: its content could not be part of the key.  What
 * the network serves (an unpinned requirement resolved against PyPI) is not
 * covered, as with any build cache: a layer keeps what was resolved when it
 * was built, until its key changes or it is evicted.
 *
 * What a layer holds (a folder published with cache_publish_layer):
 *   deps.zip    the dependency folder (.python_packages/ or node_modules/),
 *               cleaned like the layout cleans it (layout_clean_dependencies)
 *               and zipped with ziptree_write: its entries' compressed bytes
 *               are spliced into every package that uses the layer
 *               (zipsplice.h), never compressed again.  Absent when the
 *               install made no dependency folder;
 *   extra/      whatever else the install added or changed at the top of
 *               the folder (npm's package-lock.json, a changed input):
 *               copied into the work folder before the layout;
 *   layer.json  the key's inputs, what was removed, counts (for people).
 * Two builds that need the same layer at once build it once: the second
 * waits for the first (and counts as reusing it).
 *
 * With a remote cache (deplayer_store_set_remote, docs/scaling.md), a
 * layer missing here is first looked up in the registry under
 * REGCACHE_LAYER_TAG_PREFIX + key.  Its blob is the layer folder as a zip
 * (ziptree_write, entries stored: deps.zip is compressed already); zip
 * rather than tar because the one reproducible writer (ziptree) and the
 * one hardened extractor (zip_extract: no absolute names, no "..", no
 * links out, no writing through links, bounded size and entry count)
 * exist for zips already.  What arrives is unpacked with zip_extract into
 * a new folder under tmp/ and used only when it holds nothing but deps.zip,
 * extra/ and layer.json, layer.json's key and key inputs are the wanted
 * ones, deps.zip and extra/ hash to what layer.json records, and deps.zip's
 * central directory can be indexed for the splice; then it is published
 * like a built layer, with layer.json's "fetched_from" saying from where.
 * Anything else (no such tag, a registry down, slow or refusing, a blob
 * that fails a check) costs a line in the build log and the install runs
 * here.  A layer installed here is pushed in the background: the archive
 * is written to a temp file while the build holds the layer, the upload
 * runs on the remote cache's push thread.  A layer fetched or found here
 * is not pushed again.
 */
#ifndef SEBSFS_DEPLAYER_H
#define SEBSFS_DEPLAYER_H

#include <stdbool.h>
#include <time.h>

#include "cache.h"
#include "sha256.h"

struct deplayer_store;
struct remote_cache;

struct deplayer_store *deplayer_store_new(struct cache *cache);
void deplayer_store_free(struct deplayer_store *s);

/* Layers missing here are looked up in rc when it reads, and layers
 * installed here pushed to it when it writes (remote_cache_mode).  NULL:
 * none (the default).  Set before the first deplayer_obtain; rc outlives
 * the store's use. */
void deplayer_store_set_remote(struct deplayer_store *s, struct remote_cache *rc);

/* Is the layer of key being built or used by a build now?  (Eviction
 * leaves such a layer alone.) */
bool deplayer_busy(struct deplayer_store *s, const char *key);

/* Runs the install in dir (a folder holding only the key's inputs); 0 or
 * -errno with *errmsg set, as the pipeline's installers do. */
typedef int (*deplayer_install_fn)(void *ctx, const char *dir, char **errmsg);

struct deplayer_request {
	const char *workdir;        /* the prepared work folder (steps 2-5 done) */
	const char *language;       /* "python" or "nodejs" */
	const char *version;
	const char *arch;
	const char *depfile;        /* the dependency file's name in workdir */
	const char *package_sh;     /* absolute path of package.sh, or NULL */
	const char *installer;      /* the installer's identity, see above */
	const char *const *env;     /* NAME=value given to the install, NULL-terminated */
	deplayer_install_fn install;
	void *install_ctx;
	int log_fd;
	int cancel_fd;              /* -1: none */
	const struct timespec *deadline; /* CLOCK_MONOTONIC; NULL: none */
};

/* A layer in use by one build; release with deplayer_release. */
struct deplayer {
	char key[SHA256_HEX_LEN + 1];
	char *path;                 /* the layer's folder */
	bool reused;                /* found cached (or built by a build we waited for) */
	bool has_deps;              /* deps.zip exists */
};

/* The dependency folder a language's install creates: ".python_packages"
 * or "node_modules"; NULL for a language without layers. */
const char *deplayer_folder(const char *language);

/* Computes the key of req's layer, finds it in the cache or builds and
 * publishes it (running req->install in a scratch folder), and holds it for
 * the caller.  Writes "[sebsfs] dependency layer ..." lines to req->log_fd.
 * Returns 0 or -errno with a malloc'd one-line *errmsg. */
int deplayer_obtain(struct deplayer_store *s, const struct deplayer_request *req,
		    struct deplayer *out, char **errmsg);

/* Copies the layer's extra/ into workdir and removes what the install
 * removed.  0 or -errno with *errmsg. */
int deplayer_apply(const struct deplayer *l, const char *workdir, char **errmsg);

/* Path of the layer's deps.zip (malloc'd), or NULL when it has none. */
char *deplayer_zip_path(const struct deplayer *l);

void deplayer_release(struct deplayer_store *s, struct deplayer *l);

#endif
