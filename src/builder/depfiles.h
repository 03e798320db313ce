/*
 * depfiles.h - the local files a dependency file names: what a dependency
 * install reads from the package besides the dependency file itself (the
 * inputs of a dependency layer's key besides the installer, see
 * deplayer.h).
 *
 * Python (a pip requirements file; a line continued with a backslash is one
 * line, a comment starts at "#" at the line's start or after a blank):
 *   -r FILE, --requirement FILE, -c FILE, --constraint FILE (also "-rFILE",
 *   "--requirement=FILE"): FILE, which is read in turn (at most 8 levels;
 *   a missing one is left to pip to report);
 *   -e PATH, --editable PATH, -f PATH, --find-links PATH: PATH unless it is
 *   a URL or a VCS reference;
 *   a requirement that is a path (starts with ".", "/" or "~", holds a "/",
 *   ends like an archive: .whl, .tar.gz, .tgz, .zip, ...), "file:PATH",
 *   "file://PATH", or "name @ file:PATH".
 *   Names, version specs, URLs and other options are text of the file: its
 *   content is hashed whole anyway.
 * Node.js (package.json): every value in dependencies, devDependencies,
 *   optionalDependencies and peerDependencies that is "file:PATH",
 *   "link:PATH" or a path; and package-lock.json, npm-shrinkwrap.json and
 *   .npmrc when the work folder has them (npm reads them).
 * Paths are relative to the file that names them.  A path that is absolute
 * or climbs out of the work folder is refused (-EPERM, with a message
 * naming the file and line): its content could not be part of a key that
 * describes the package.  A path that does not exist is kept (it hashes as
 * missing, and the installer reports it).
 */
#ifndef SEBSFS_DEPFILES_H
#define SEBSFS_DEPFILES_H

#include <stddef.h>

/* Paths relative to the work folder, normalised, each once, in the order
 * found; the dependency file itself first. */
struct depfiles {
	char **paths;
	size_t n;
};

/* Reads depfile (relative to workdir) of language ("python" or "nodejs").
 * 0, or -errno with a malloc'd one-line *errmsg; *out is filled (and must
 * be cleared) either way. */
int depfiles_scan(const char *workdir, const char *language, const char *depfile,
		  struct depfiles *out, char **errmsg);
void depfiles_clear(struct depfiles *d);

/* rel, relative to folder base (itself relative to the work folder), as a
 * normalised path relative to the work folder: no ".", "..", or empty
 * components.  NULL when it is empty, absolute, starts with "~" or climbs
 * out (or ENOMEM).  Malloc'd. */
char *depfiles_normalize(const char *base, const char *rel);

#endif
