/*
 * inputs.h - the input manifest of a package, and its input hash.
 *
 * A package's output is a function of its inputs; the input hash names them.
 * The manifest lists every input file with the stat fields that tell whether
 * it may have changed (size, mtime_ns, ctime_ns, inode, device) and its
 * content hash, so that a freshness check only stats files and re-hashes the
 * ones whose stat changed.  ctime is in the key because tools that restore
 * mtimes (cp -p, rsync -a, tar -x, touch -r) cannot restore it.
 *
 * The racy-timestamp rule (as git's index): the manifest records when its
 * stats were taken (stat_ns).  A file whose mtime or ctime is not older than
 * stat_ns - INPUTS_RACY_SLACK_NS may still have been changed within the same
 * timestamp tick after it was hashed, so its stat proves nothing: it is
 * re-hashed at the next check (and trusted once the stat is older).  A
 * manifest without stat_ns or the ctime/device fields (written by an older
 * sebsfs) trusts no entry: every file is re-hashed once.
 *
 * Inputs of (platform, language, version, arch, benchmark):
 *  - every file below the benchmark folder, except the folders of other
 *    languages (python/, nodejs/, java/, cpp/ other than the package's own):
 *    config.json (modules), init.sh, resources/, the language folder with its
 *    templates/, requirements*, package.json*, init.sh and package.sh;
 *  - every file below benchmarks/wrappers/<platform>/<language>/;
 *  - configs/systems.json, hashed as the canonical JSON of "general" and
 *    <platform>.languages.<language> only (other platforms' edits do not
 *    invalidate this package);
 *  - an identity string: pipeline version, builder kind, arch, version, and
 *    what the builder adds (the build image's ID; the host's tools, their
 *    versions and configuration: pipeline_host_identity).
 * The folders are walked with walk_tree under WALK_FOLLOW (walk.h): a symlink
 * counts as its target's content under the link's own path, and its target
 * must lie inside the folder walked (the benchmark folder, the wrapper
 * folder, the dockerfiles folder).  A link leading outside (host files would
 * become inputs and be shipped), a dangling link, a loop, a FIFO, socket or
 * device make inputs_collect fail with a message naming it.  Walks are
 * sorted, so added, removed and renamed files change the hash.
 */
#ifndef SEBSFS_INPUTS_H
#define SEBSFS_INPUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

/* Timestamps this close to the time a stat was recorded are "racy": covers
 * the kernel's coarse file timestamps (a clock tick behind the real time) and
 * filesystems with coarse granularity (FAT: 2 s). */
#define INPUTS_RACY_SLACK_NS (2LL * 1000000000LL)

/* One input file.  Compact on purpose: a benchmark may have tens of
 * thousands of files, and a manifest lives in memory per package (the last
 * stat of its inputs) and per running build.  The path is an offset into the
 * manifest's string pool, the content hash binary. */
struct input_file {
	uint32_t path;       /* offset of the path (relative to SEBS_ROOT) in pool */
	uint8_t sha256[SHA256_DIGEST_SIZE];
	bool executable;     /* any x bit: packages and image contexts store such
			      * a file as 0755, others as 0644 */
	int64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t ino;
	uint64_t dev;
};

struct input_manifest {
	struct input_file *files;  /* sorted by path */
	size_t n_files;
	char *pool;          /* the paths, NUL-terminated, back to back */
	size_t pool_len;
	char *identity;
	int64_t stat_ns;     /* CLOCK_REALTIME before the stats were taken; 0: unknown */
};

static inline const char *inputs_path(const struct input_manifest *m, size_t i)
{
	return m->pool + m->files[i].path;
}

/* What input_spec.observe is told, always before the walk reads it. */
enum input_observed {
	INPUT_ROOT,  /* a folder walked, or the single file read (systems.json),
		      * by the path it is read through; it may be missing */
	INPUT_DIR,   /* a folder below a root that the walk is about to list, by
		      * its path through the tree (symlinks in it followed) */
	INPUT_LINK,  /* a symlink the walk follows, by its path through the tree */
	INPUT_SHARED_FILE, /* a file with more than one hard link, about to be
			    * read: a write through another name changes it
			    * without touching any folder walked */
};

struct input_spec {
	const char *root;        /* SEBS_ROOT */
	const char *benchmark_dir; /* relative to root: benchmarks/<group>/<name> */
	const char *platform;
	const char *language;
	const char *version;
	const char *arch;
	const char *identity;    /* builder identity, e.g. "builder=host" */
	const char *extra_dir;   /* relative to root, walked too (e.g. the
				  * dockerfiles folder of an image); may be NULL */
	/* Told of every path whose change could change the inputs (absolute
	 * paths; see enum input_observed), e.g. to watch them (inwatch.h);
	 * may be NULL. */
	void (*observe)(void *ctx, enum input_observed what, const char *path);
	void *observe_ctx;
};

/* Collects the manifest of spec into *out.  Files whose (size, mtime_ns,
 * ctime_ns, ino, dev) equal their entry in previous (may be NULL), and whose
 * entry was not racy there, reuse its sha256 instead of being read again.
 * Returns 0 or -errno; *errmsg (may be NULL) gets a malloc'd one-line reason
 * naming the file (for a symlink: the link and its target) on failure. */
int inputs_collect(const struct input_spec *spec, const struct input_manifest *previous,
		   struct input_manifest *out, char **errmsg);

/* The input hash: sha256 over the identity and the sorted (path, sha256,
 * executable) list. */
void inputs_hash(const struct input_manifest *m, char hex[SHA256_HEX_LEN + 1]);

/* Serialises to / parses from text (malloc'd / into *out).  The text is
 * JSON lines, written and read one file at a time so that neither side holds
 * a JSON tree of the whole manifest: a header object {"format": 2,
 * "identity", "stat_ns", "files": count}, then one array per file [path,
 * size, mtime_ns, ctime_ns, ino, dev, sha256, executable], where a path that
 * is not UTF-8 is an object {"hex": "<its bytes>"} and executable (0 or 1)
 * may be missing (older versions: 0).  The single JSON object of
 * older sebsfs versions ({"identity", "stat_ns", "files": [objects]}) still
 * parses; missing stat_ns, ctime_ns or dev fields (older still) parse as
 * stat_ns 0.  inputs_to_json returns NULL when out of memory. */
char *inputs_to_json(const struct input_manifest *m);
int inputs_from_json(const char *text, struct input_manifest *out);

void inputs_clear(struct input_manifest *m);

/* The hash of systems.json's "general" and <platform>.languages.<language>,
 * as canonical JSON.  Returns 0 or -errno (-EINVAL for malformed JSON). */
int inputs_systems_hash(const char *systems_json_path, const char *platform,
			const char *language, char hex[SHA256_HEX_LEN + 1]);

#endif
