/*
 * zipdir.h - a zip's central directory, read as unzip reads it.
 *
 * The end of central directory record is the last "PK\5\6" whose comment
 * ends exactly at the end of the file; a Zip64 locator right before it
 * leads to the Zip64 end record, whose counts and offsets then win.  The
 * directory is read whole into memory (bounded by ZIPDIR_MAX_SIZE) and
 * walked record by record, with a Zip64 extra field supplying the sizes and
 * offset whose 32-bit fields are all ones.
 *
 * For the tolerant readers of any zip a user or a build tool may hand us:
 * the unzipped size of a package (sizelimits) and the directory views
 * (zipview).  zipsplice does not use it: it must prove that a zip is
 * exactly what ziptree writes before splicing its bytes, and checks far
 * more (no comment, one disk, records in name order, local headers).
 *
 * Every function returns 0 or -errno; a structural problem is -EBADMSG
 * with a one-line *errmsg (errmsg.h convention; errmsg may be NULL).
 */
#ifndef SEBSFS_ZIPDIR_H
#define SEBSFS_ZIPDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A central directory of more than this is not one of a package. */
#define ZIPDIR_MAX_SIZE ((uint64_t)1 << 30)

struct zipdir {
	uint64_t entries;  /* records in the directory */
	uint64_t size;     /* bytes */
	uint64_t offset;   /* where it starts in the file */
};

/* Finds the directory of the zip in fd (file_size bytes long). */
int zipdir_find(int fd, uint64_t file_size, struct zipdir *dir, char **errmsg);

/* Reads dir's bytes into *cd (malloc'd, the caller frees it). */
int zipdir_read(int fd, const struct zipdir *dir, unsigned char **cd, char **errmsg);

/* One central directory record, pointing into the directory's bytes. */
struct zipdir_record {
	const char *name;         /* not NUL-terminated */
	size_t name_len;
	uint8_t host;             /* "version made by" high byte: 3 is Unix */
	uint16_t flags, method;
	uint32_t crc32;
	uint64_t compressed_size, size, header_offset;  /* Zip64 applied */
	mode_t mode;              /* the external attributes' high 16 bits */
};

#define ZIPDIR_HOST_UNIX 3
#define ZIPDIR_FLAG_ENCRYPTED 0x0001u

/* Parses the record at *pos of the size bytes at cd and moves *pos past it;
 * index (0-based) names the record in messages. */
int zipdir_next(const unsigned char *cd, uint64_t size, size_t *pos, uint64_t index,
		struct zipdir_record *rec, char **errmsg);

#endif
