/*
 * sebshash.h - SeBS's own code-package hash (Benchmark.hash).
 *
 * SeBS's deployer keeps a package while the MD5 it computes over the
 * benchmark's sources equals the hash in its cache.  sebs_hash() computes
 * that MD5 the way SeBS's Benchmark.hash_directory does, on the tree as it
 * is now, so a deployer comparing hashes decides exactly as SeBS would.
 * Nothing is built and nothing is cached: each call reads the files again.
 *
 * What is hashed, in this order, the content of each file appended to one
 * MD5 stream (no names, no separators):
 *  1. in <benchmark>/<language>/, for each pattern of the language, then
 *     "*.sh" and "*.json": the entries matching it.  Patterns: python
 *     "*.py", "requirements.txt*"; nodejs "*.js", "package.json"; java
 *     "*.java", "pom.xml"; cpp "*.cpp", "*.hpp", "dependencies.json".  A
 *     file matching two patterns (package.json and *.json) is hashed twice.
 *  2. for a variant other than "default", when <language>/<variant>/ is a
 *     folder: its patch.diff if that exists, else the matches of the same
 *     patterns in that folder.  (The catalog serves only "default" today.)
 *  3. the wrappers: in <root>/benchmarks/wrappers/<platform>/<language>/,
 *     the matches of "*.py" (python), "*.js" (nodejs), "*.cpp" then "*.hpp"
 *     (cpp), or the entry "src" (java).  A match that is a folder is walked
 *     the way Python's os.walk walks it (below); a file is hashed.
 *
 * Matching is Python's glob: not recursive, case-sensitive fnmatch, names
 * starting with '.' never match a wildcard pattern, a literal pattern
 * (package.json, src) matches when the entry exists (even as a dangling
 * link).  The matches of one pattern come in readdir order, which is
 * os.scandir's order: NOT sorted, so the hash of a folder with several
 * matches of one pattern depends on the filesystem's order, as SeBS's does
 * (both agree on the same machine and tree).  A folder is walked as os.walk
 * does, top-down: its files in readdir order, then each subfolder in readdir
 * order, recursively; a symlink to a folder is neither hashed nor entered,
 * a symlink to a file is hashed (open follows links, wherever they point).
 *
 * Where SeBS would crash, this fails instead: a match that cannot be opened
 * (a dangling link, EACCES), a benchmark match that is a folder (EISDIR),
 * and, where SeBS would hang or read forever, a match that is not a regular
 * file (FIFO, device: EINVAL).  A folder SeBS would skip silently because
 * it cannot be listed is an error too (-errno), except when it does not
 * exist (ENOENT, ENOTDIR): a missing language, variant or wrapper folder
 * contributes nothing, as in SeBS.  Depth of the walk is limited to
 * WALK_MAX_DEPTH (ELOOP).  The paths given are taken literally (SeBS would
 * read '*', '?' and '[' in them as patterns).
 *
 * Files are read in blocks, never whole.  Thread-safe.
 */
#ifndef SEBSFS_SEBSHASH_H
#define SEBSFS_SEBSHASH_H

#define SEBS_HASH_HEX_LEN 32 /* MD5, lowercase hex, without the NUL */

/* Computes SeBS's hash of benchmark_dir (the benchmark's folder, holding
 * <language>/) for platform ("aws") and language ("python", "nodejs",
 * "java", "cpp"), with wrappers from sebs_root; variant NULL means
 * "default".  Writes 32 hex chars and a NUL into out.  Returns 0 or -errno
 * (-EINVAL for an unknown language) with a one-line reason naming the file
 * in *errmsg (errmsg.h convention). */
int sebs_hash(const char *sebs_root, const char *platform, const char *language,
	      const char *benchmark_dir, const char *variant,
	      char out[SEBS_HASH_HEX_LEN + 1], char **errmsg);

#endif
