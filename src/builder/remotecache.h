/*
 * remotecache.h - the builder's side of -o remote_cache (docs/scaling.md):
 * on a local miss, a package fetched from the registry instead of built;
 * after a local build, the package pushed there in the background.
 *
 * The key of a package in the registry is its input hash (the tag): it
 * covers the relative paths, contents and executable bits of every input
 * file and the builder identity (pipeline version, builder kind, arch,
 * runtime version, the build image's ID for the docker builder, the host's
 * tools, versions and configuration for the host builder, the variant),
 * and no machine-local absolute path, so two machines with the same tree
 * and builder compute the same key for the same package.
 *
 * Nothing here is an error to a reader: a registry that is down, slow,
 * refusing or answering garbage costs one log line and the build goes on
 * locally.  Pushes run on detached threads (the reader never waits for
 * one); remote_cache_free gives those still running a few seconds, then
 * cancels them (a push cut short leaves at most an unreferenced blob or
 * nothing: the manifest, which makes the package visible, goes last).
 */
#ifndef SEBSFS_REMOTECACHE_H
#define SEBSFS_REMOTECACHE_H

#include <stdbool.h>

#include "cache.h"
#include "regcache.h"

enum remote_cache_mode { REMOTE_CACHE_READWRITE = 0, REMOTE_CACHE_READ, REMOTE_CACHE_WRITE };

/* "read", "write", "readwrite": 0 and *mode, else -EINVAL. */
int remote_cache_mode_parse(const char *text, enum remote_cache_mode *mode);
const char *remote_cache_mode_name(enum remote_cache_mode mode);

struct remote_cache;

/* spec: REGISTRY/REPOSITORY, certs_root: the registries' certificate
 * folders (NULL: Docker's), both as regcache_new takes them.  NULL with
 * *errmsg when bad. */
struct remote_cache *remote_cache_new(const char *spec, enum remote_cache_mode mode,
				      const char *certs_root, char **errmsg);
void remote_cache_free(struct remote_cache *rc);   /* waits for pushes; NULL is a no-op */
bool remote_cache_reads(const struct remote_cache *rc);
bool remote_cache_writes(const struct remote_cache *rc);

/* Fetches the package tagged input_hash into a new temp file of cache
 * (*tmp, malloc'd) and checks it: the digests (regcache_fetch) and that it
 * is a zip whose central directory can be read.  1 with *tmp and, in the
 * build log log_fd, where it came from; 0 when the registry does not have
 * it or cannot give a good copy (a line in the build log and, for a
 * failure, in sebsfs's log: the caller builds); -ECANCELED, without a
 * word, once cancel_fd (the build's) is readable. */
int remote_cache_fetch(struct remote_cache *rc, struct cache *cache, const char *input_hash,
		       int log_fd, int cancel_fd, const char *what, char **tmp);

/* Pushes the published package path (its row in *p) under input_hash on a
 * detached thread; a failure is one line in sebsfs's log. */
void remote_cache_push(struct remote_cache *rc, const char *input_hash, const char *path,
		       const struct regcache_package *p, const char *what);

#endif
