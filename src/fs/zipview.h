/*
 * zipview.h - a package zip as a read-only tree: the index of its entries
 * (from the central directory), reads of one entry at any offset, and the
 * versions of each package's index that fs.c's directory views serve.  No
 * FUSE here: fs.c maps these onto inodes and requests.
 *
 * The index is read from the central directory only (zip64 too), as unzip
 * reads it; no entry's data is touched.  Entry 0 is the root folder; every
 * folder an entry's name implies ("a/b" without "a/") is an entry too, as
 * unzip creates it.  A folder's children are contiguous and sorted bytewise
 * by name, so a lookup is a binary search and a listing a range.
 * Types and permissions come from the Unix mode of the entry (the upper half
 * of its external attributes when it was made on Unix): folders, regular
 * files and symlinks; set-id and sticky bits are dropped.  An entry without
 * a Unix mode is a file 0644, or a folder 0755 when its name ends in "/".
 * Refused (the whole index; *errmsg names the entry):
 *  - -EBADMSG: not a zip, a damaged central directory, an encrypted entry;
 *  - -EPERM: a name that is absolute or has a ".." component;
 *  - -EINVAL: an empty or "." component ("a//b", "./a"), a NUL byte in a
 *    name, a non-folder whose name ends in "/", a device, FIFO or socket;
 *  - -EEXIST: two entries of one name, or a file that is also a folder;
 *  - -EFBIG: more than ZIPVIEW_MAX_ENTRIES entries.
 * sebsfs's packages (ziptree.h) never have such names: this is a second
 * fence, not a feature.
 *
 * Reading an entry decompresses that entry only (stored or deflated; other
 * methods fail -EIO), from its local header on.  A reader keeps the position
 * of its inflate stream: reads that go forward continue it, a read before
 * it starts the entry again.  Reaching the end of an entry checks its CRC-32
 * and size; a mismatch, a truncated stream or a short file is -EIO.
 */
#ifndef SEBSFS_ZIPVIEW_H
#define SEBSFS_ZIPVIEW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ZIPVIEW_MAX_ENTRIES (UINT32_C(1) << 24)
#define ZIPVIEW_MAX_LINK 4096  /* bytes of a symlink's target */
#define ZIPVIEW_MAX_VERSIONS (UINT32_C(1) << 30)
#define ZIPVIEW_KEY_MAX 80      /* bytes of a version key, with its NUL */

struct zipview_entry {
	const char *name;      /* the last component; "" for the root */
	uint32_t parent;       /* the folder's entry index (the root's is 0) */
	uint32_t first_child;  /* folders: children are [first_child, +n_children) */
	uint32_t n_children;
	uint32_t n_subdirs;    /* folders: how many children are folders */
	mode_t mode;           /* S_IFDIR, S_IFREG or S_IFLNK | permissions */
	uint64_t size;         /* bytes of content (a symlink: of its target) */
	/* where its data lies; implied folders have none */
	uint64_t header_offset;
	uint64_t compressed_size;
	uint16_t method;
	uint32_t crc32;
};

struct zipview_index;

/* Reads the central directory of the zip open at fd (a regular file).
 * 0 and *out (free with zipview_index_free), or -errno (see above) and
 * *errmsg (malloc'd, one line; errmsg may be NULL). */
int zipview_index_load(int fd, struct zipview_index **out, char **errmsg);
void zipview_index_free(struct zipview_index *idx);

size_t zipview_count(const struct zipview_index *idx);
/* The entry at index i < zipview_count. */
const struct zipview_entry *zipview_entry(const struct zipview_index *idx, uint32_t i);
/* The child of folder dir named name: its index, or -ENOENT (-ENOTDIR when
 * dir is not a folder). */
int64_t zipview_lookup(const struct zipview_index *idx, uint32_t dir, const char *name);

/* A cursor on one entry's content; not thread-safe (one per open file,
 * the caller serialises its reads).  idx and fd are borrowed for its life. */
struct zipview_reader;
struct zipview_reader *zipview_reader_new(const struct zipview_index *idx, uint32_t entry,
					  int fd);
void zipview_reader_free(struct zipview_reader *r);
/* Up to size bytes of the entry from off (fewer only at its end); the count
 * or -errno, and then *errmsg (malloc'd; may be NULL). */
ssize_t zipview_read(struct zipview_reader *r, void *buf, size_t size, uint64_t off,
		     char **errmsg);
/* A symlink's whole target into buf (NUL-terminated); its length or -errno
 * (-EINVAL: not a symlink; -ENAMETOOLONG: longer than size - 1). */
ssize_t zipview_readlink(const struct zipview_index *idx, uint32_t entry, int fd, char *buf,
			 size_t size, char **errmsg);

/* ---- versions ------------------------------------------------------------
 * Each content a package had (key: its sha256) gets a version number, the
 * same every time that content is served again during the process, never
 * reused for another (so fs.c's inode numbers, built from it, stay stable
 * while a package does not change, and never mean two things).  A version
 * keeps its index while it is the package's current one or held; the index
 * of any other is freed, and loaded again should its content come back.
 * Thread-safe. */
struct zipview_versions;

struct zipview_versions *zipview_versions_new(void);
void zipview_versions_free(struct zipview_versions *vs);
/* Package pkg is served with content key from fd now: its version (>= 1)
 * in *version, its index loaded from fd when not in memory, and held once
 * (drop with zipview_release).  Other versions of pkg lose their index
 * unless held.  -errno as zipview_index_load (with *errmsg), or -ENOMEM,
 * or -EOVERFLOW (out of version numbers). */
int zipview_current(struct zipview_versions *vs, size_t pkg, const char *key, int fd,
		    uint32_t *version, const struct zipview_index **idx, char **errmsg);
/* The index of version v, held once (drop with zipview_release); NULL when
 * it is no longer in memory (the package changed since) or never was. */
const struct zipview_index *zipview_hold(struct zipview_versions *vs, uint32_t v);
void zipview_release(struct zipview_versions *vs, uint32_t v);
/* The package the version belongs to, or SIZE_MAX for no version. */
size_t zipview_package(struct zipview_versions *vs, uint32_t v);
/* Package pkg's content left the cache (evicted): drop its indexes that are
 * not held; they load again when it is served again. */
void zipview_forget(struct zipview_versions *vs, size_t pkg);

#endif
