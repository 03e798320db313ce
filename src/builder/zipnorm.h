/*
 * zipnorm.h - turn a zip or jar made by a build tool (Maven's
 * target/function.jar, the C++ Lambda packager's build/benchmark.zip) into
 * sebsfs's reproducible form.
 *
 * The promise: the output is byte-identical to ziptree_write (ziptree.h) of
 * the tree the archive holds, as extracted by unzip.  So its bytes depend only
 * on the entries' names, contents, types (file, folder, symlink) and whether
 * a file has an execute bit; not on timestamps, owners, entry order,
 * compression method or level, comments, extra fields or other mode bits.
 * Folders that the archive only implies ("a/b" without "a/") are written as
 * entries, as ziptree_write writes every folder.
 *
 * The archive is read by its central directory (as unzip and java.util.zip
 * read it), so in_fd must be a regular file; it is read whole, from offset 0.
 * It is extracted into a fresh folder under scratch_dir, which is removed
 * again on every path (success or failure), then zipped by ziptree_write.
 * The extraction is written here with openat and O_NOFOLLOW rather than by
 * libarchive's disk writer: that one needs chdir (process-wide) or absolute
 * paths, which its own "no absolute paths" check then refuses.
 *
 * Refused, with a message naming the entry (nothing is written to out_fd
 * then):
 *  - -EBADMSG: not a zip (or a damaged one: bad CRC, truncated data, an
 *    encrypted entry);
 *  - -EPERM: a name that is absolute or has a ".." component; a symlink whose
 *    target is absolute or climbs out of the tree (read from the link's
 *    folder); an entry below a symlink of the archive (it would be written
 *    through the link);
 *  - -EINVAL: a name with an empty or "." component ("a//b", "./a"), a
 *    non-folder whose name ends in "/", or an entry that is not a file,
 *    folder or symlink (device, FIFO, socket, hard link);
 *  - -EEXIST: two entries of the same name ("a" and "a/" count as the same),
 *    or a file or symlink that is also the folder of other entries;
 *  - -EILSEQ: a name or link target that is not valid UTF-8;
 *  - -ELOOP: a name of more than WALK_MAX_DEPTH components (ziptree_write's
 *    walk could not zip it), or a symlink loop;
 *  - -EFBIG: more than max_entries entries, or more than max_bytes bytes of
 *    file content in all (counted on the declared sizes before anything is
 *    written and on the bytes actually inflated, so an entry that lies about
 *    its size is stopped too).  This bounds what an archive (a zip bomb)
 *    can make the scratch folder hold.
 * Other errors (-ENOSPC, -EIO of a write to out_fd, ...) come from the
 * system.  After a failure out_fd may hold part of a zip: the caller
 * discards it.
 *
 * Thread-safe: names are decoded as UTF-8 through a locale of the calling
 * thread only (uselocale), whatever the process locale.
 */
#ifndef SEBSFS_ZIPNORM_H
#define SEBSFS_ZIPNORM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The default bounds.  The content limit is four times what AWS Lambda
 * accepts unzipped (250 MB): a package beyond it could not be deployed as a
 * zip anyway. */
#define ZIPNORM_MAX_BYTES   (UINT64_C(1) << 30)  /* 1 GiB of file content */
#define ZIPNORM_MAX_ENTRIES 262144               /* files, folders, symlinks */

struct zipnorm_options {
	bool jar_order;        /* ziptree_options.jar_order: META-INF/ and
				* META-INF/MANIFEST.MF first (for a .jar) */
	uint64_t max_bytes;    /* 0: ZIPNORM_MAX_BYTES */
	uint64_t max_entries;  /* 0: ZIPNORM_MAX_ENTRIES */
};

/* Reads the zip in in_fd and writes its reproducible form to out_fd (from
 * its current offset), using a scratch folder under scratch_dir (which must
 * exist).  opts may be NULL (defaults, sorted order).  Returns 0 or -errno;
 * *errmsg (may be NULL) gets a malloc'd one-line reason on failure. */
int zip_normalize(int in_fd, int out_fd, const char *scratch_dir,
		  const struct zipnorm_options *opts, char **errmsg);

/* The extraction step of zip_normalize alone, for those who need the tree
 * itself (sebsfs-sebs-cache's azure and local entries): the zip in in_fd is
 * extracted into dest_dir, an existing empty folder, under the same rules
 * and refusals as above (nothing is written outside dest_dir or through a
 * link).  Files get mode 0755 when the entry has an execute bit, else 0644;
 * folders 0755.  After a failure dest_dir may hold part of the tree: the
 * caller removes it. */
int zip_extract(int in_fd, const char *dest_dir, const struct zipnorm_options *opts,
		char **errmsg);

/* The same extractor for a tar stream from a build container (GET
 * /containers/{id}/archive): read from in_fd (a pipe or socket is fine)
 * to its end, so nothing is buffered beyond a block.  The rules and
 * refusals of zip_extract, with these differences:
 *  - every name must lie below strip (e.g. "function", the folder Docker
 *    archives under its own name; else -EPERM); strip's own entry is the
 *    tree's root, whose permission bits dest_dir gets;
 *  - names (after strip) in skip, and what lies below them, are left out;
 *  - permission bits are kept (& 0777: never setuid, setgid or sticky; a
 *    folder's are applied once its entries are in), times are not;
 *  - a hard link to a file extracted before it is made as a hard link
 *    (the target's name follows the same rules); devices, FIFOs and
 *    sockets are still refused;
 *  - with check_owner, an entry whose uid is not owner fails with -EPERM,
 *    and *foreign (when not NULL) gets "<name below strip> (uid N)",
 *    malloc'd, for the caller's message.
 * Owners are not applied: every file belongs to the caller. */
struct tar_extract_options {
	const char *strip;           /* NULL: names as they are */
	const char *const *skip;     /* NULL-terminated, may be NULL */
	bool check_owner;
	uid_t owner;
	char **foreign;              /* out, may be NULL */
	uint64_t max_bytes;          /* 0: ZIPNORM_MAX_BYTES */
	uint64_t max_entries;        /* 0: ZIPNORM_MAX_ENTRIES */
};
int tar_extract(int in_fd, const char *dest_dir, const struct tar_extract_options *opts,
		char **errmsg);

#endif
