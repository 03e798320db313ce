/*
 * zipsplice.h - one zip from the already-compressed entries of other zips.
 *
 * A package whose dependency entries were zipped once (and cached) can be
 * rebuilt without recompressing them: ziptree_write the parts that changed,
 * then splice those zips with the cached ones.  The promise:
 *
 *   let T be a tree and T1..Tn folders that hold T between them: every
 *   entry (file, link, folder) of T is in at least one Ti under the same
 *   path, and every entry of a Ti is one of T (same kind, content, target
 *   and execute bit).  A subtree split off with the folders above it is
 *   such a Ti.  Then zipsplice_write of the ziptree_write zips of T1..Tn
 *   (where ziptree_write accepts each Ti, e.g. its links stay inside it),
 *   in any order, is byte-identical to ziptree_write(T).
 *
 * This holds because ziptree_write's zip (libarchive 3.6 writer, see
 * ziptree.h) is a plain concatenation: each entry's local record (local
 * header, data, data descriptor) depends on that entry alone and holds no
 * offset, the central directory records differ between zips only in the
 * local-header offset, and the end records depend only on the entry count,
 * the central directory's size and its offset.
 *
 * A part must be laid out as ziptree_write lays out its zips: no gap or
 * prefix before the entries, entries contiguous in central directory order,
 * names strictly ascending bytewise (no NUL byte), each central directory
 * record agreeing with its local header (name, version, flags, method,
 * time) and data descriptor (CRC, sizes), no encryption, no comments, one
 * disk, and end records exactly as libarchive writes them (the Zip64 end
 * record and locator iff more than 65,535 entries).  Anything else is
 * -EBADMSG.  So any part read is spliced alone back to its own bytes.
 * The data itself is not decompressed or checked against its CRC.
 *
 * Zip64 for sizes is not emulated: a part or an output whose central
 * directory would start at or beyond 4 GiB - 1, or be that large, and an
 * entry libarchive marks as Zip64 (version needed 4.5: a file of 0xff000000
 * bytes or more) fail with -EFBIG.  (A Lambda package is at most 250 MB.)
 */
#ifndef SEBSFS_ZIPSPLICE_H
#define SEBSFS_ZIPSPLICE_H

#include <stddef.h>

/* The entries of one zip, from its central directory, checked as above. */
struct zip_index;

/* Reads the index of the zip open as fd (a regular file; read with pread,
 * the file offset is not used).  The central directory is read in one pread,
 * the local headers and data descriptors in large windows.  Returns 0 and
 * *out (owned by the caller: zip_index_free), or -errno with *out NULL:
 * -EBADMSG for a zip it cannot splice, -EFBIG (above), -EINVAL for an fd
 * that is not a regular file, -EIO etc. for a failed read.  *errmsg (may be
 * NULL) gets a malloc'd one-line reason on failure. */
int zip_index_read(int fd, struct zip_index **out, char **errmsg);

/* Number of entries; names in zip order (bytewise ascending), NUL-terminated,
 * directories ending in '/'.  The pointer lives as long as the index. */
size_t zip_index_count(const struct zip_index *z);
const char *zip_index_name(const struct zip_index *z, size_t i);

void zip_index_free(struct zip_index *z);

/* Writes to out_fd, from its current offset, one zip holding every entry of
 * the n parts (n may be 0: an empty zip), in bytewise order of name.
 * part_fds[i] must be the file parts[i] was read from, unchanged since
 * (same device, inode and size, else -ESTALE).  Each local record is copied
 * unchanged (copy_file_range for each run of entries that are adjacent in
 * both the part and the output; read/write where copy_file_range does not
 * work, e.g. out_fd is a pipe or opened O_APPEND); central directory records
 * are copied with only the local-header offset rewritten (offsets count
 * from where the zip starts, as ziptree_write's do); the end records are
 * written as libarchive writes them.
 * A name held by several parts is written once (from the first such part)
 * when its local and central directory records are byte-identical in all of
 * them (a folder both parts hold), else the call fails with -EEXIST naming
 * the entry.  Every check (duplicates, -EFBIG, -ESTALE) is made before the
 * first byte is written; a failed write or copy leaves out_fd with a partial
 * zip (the caller discards it, as after a failed ziptree_write).
 * Returns 0 or -errno; *errmsg (may be NULL) gets a malloc'd one-line
 * reason on failure. */
int zipsplice_write(int out_fd, const int part_fds[], struct zip_index *const parts[], size_t n,
		    char **errmsg);

#endif
