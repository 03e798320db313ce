/*
 * zipdir.c - a zip's central directory (promises in zipdir.h).
 */
#include "zipdir.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "fsutil.h"
#include "le.h"

#define EOCD_SIG 0x06054b50u
#define EOCD64_SIG 0x06064b50u
#define LOCATOR_SIG 0x07064b50u
#define CENTRAL_SIG 0x02014b50u
#define EOCD_LEN 22
#define EOCD64_LEN 56
#define LOCATOR_LEN 20
#define CENTRAL_LEN 46
#define MAX_COMMENT 65535
#define ZIP64_EXTRA_ID 0x0001u

/* The Zip64 end record, when a locator sits right before the end record at
 * eocd_off: its counts replace the 32-bit ones. */
static int read_zip64_end(int fd, uint64_t eocd_off, struct zipdir *dir, char **errmsg)
{
	unsigned char loc[LOCATOR_LEN], rec[EOCD64_LEN];
	int rc;

	if (eocd_off < LOCATOR_LEN)
		return 0;
	rc = pread_exact(fd, loc, sizeof(loc), eocd_off - LOCATOR_LEN);
	if (rc < 0) {
		errmsg_set(errmsg, "cannot read the zip: %s", strerror(-rc));
		return rc;
	}
	if (le32(loc) != LOCATOR_SIG)
		return 0;
	uint64_t rec_off = le64(loc + 8);
	if (rec_off > eocd_off || eocd_off - rec_off < EOCD64_LEN ||
	    pread_exact(fd, rec, sizeof(rec), rec_off) < 0 || le32(rec) != EOCD64_SIG) {
		errmsg_set(errmsg, "damaged Zip64 end of central directory record");
		return -EBADMSG;
	}
	dir->entries = le64(rec + 32);
	dir->size = le64(rec + 40);
	dir->offset = le64(rec + 48);
	return 0;
}

int zipdir_find(int fd, uint64_t file_size, struct zipdir *dir, char **errmsg)
{
	size_t tail_len = file_size < EOCD_LEN + MAX_COMMENT ? (size_t)file_size
							      : EOCD_LEN + MAX_COMMENT;
	uint64_t tail_off = file_size - tail_len;
	unsigned char *tail;
	size_t at = SIZE_MAX;
	int rc;

	if (tail_len < EOCD_LEN) {
		errmsg_set(errmsg, "not a zip: %" PRIu64 " bytes is too short", file_size);
		return -EBADMSG;
	}
	tail = malloc(tail_len);
	if (!tail)
		return -ENOMEM;
	rc = pread_exact(fd, tail, tail_len, tail_off);
	if (rc < 0) {
		errmsg_set(errmsg, "cannot read the end of the zip: %s",
			   rc == -EBADMSG ? "it is shorter than it was" : strerror(-rc));
		goto out;
	}
	/* the last signature whose comment ends exactly at the end of the file */
	for (size_t i = tail_len - EOCD_LEN + 1; i-- > 0 && at == SIZE_MAX;)
		if (le32(tail + i) == EOCD_SIG && i + EOCD_LEN + le16(tail + i + 20) == tail_len)
			at = i;
	if (at == SIZE_MAX) {
		errmsg_set(errmsg, "not a zip: no end of central directory record");
		rc = -EBADMSG;
		goto out;
	}
	dir->entries = le16(tail + at + 10);
	dir->size = le32(tail + at + 12);
	dir->offset = le32(tail + at + 16);
	uint64_t eocd_off = tail_off + at;
	rc = read_zip64_end(fd, eocd_off, dir, errmsg);
	if (rc == 0 && (dir->offset > eocd_off || dir->size > eocd_off - dir->offset)) {
		errmsg_set(errmsg, "damaged zip: the central directory lies outside the file");
		rc = -EBADMSG;
	}
	if (rc == 0 && dir->size > ZIPDIR_MAX_SIZE) {
		errmsg_set(errmsg, "a central directory of %" PRIu64 " bytes (more than %" PRIu64 ")",
			   dir->size, ZIPDIR_MAX_SIZE);
		rc = -EFBIG;
	}
out:
	free(tail);
	return rc;
}

int zipdir_read(int fd, const struct zipdir *dir, unsigned char **cd, char **errmsg)
{
	unsigned char *buf = malloc(dir->size ? dir->size : 1);
	int rc;

	*cd = NULL;
	if (!buf)
		return -ENOMEM;
	rc = pread_exact(fd, buf, dir->size, dir->offset);
	if (rc < 0) {
		/* zipdir_find saw it inside the file: a short read means it shrank */
		errmsg_set(errmsg, "cannot read the central directory: %s",
			   rc == -EBADMSG ? "the zip is shorter than it was" : strerror(-rc));
		free(buf);
		return rc == -EBADMSG ? -EIO : rc;
	}
	*cd = buf;
	return 0;
}

/* Sizes and offset from a record's Zip64 extra field, in the order the
 * format gives them, for those of its 32-bit fields that are all ones. */
static int zip64_fields(const unsigned char *extra, size_t len, struct zipdir_record *r)
{
	uint64_t *fields[] = { r->size == UINT32_MAX ? &r->size : NULL,
			       r->compressed_size == UINT32_MAX ? &r->compressed_size : NULL,
			       r->header_offset == UINT32_MAX ? &r->header_offset : NULL };
	bool wanted = fields[0] || fields[1] || fields[2];

	while (wanted && len >= 4) {
		uint16_t id = le16(extra), size = le16(extra + 2);
		if ((size_t)size + 4 > len)
			return -EBADMSG;
		if (id == ZIP64_EXTRA_ID) {
			const unsigned char *p = extra + 4;
			size_t left = size;
			for (size_t i = 0; i < 3; i++) {
				if (!fields[i])
					continue;
				if (left < 8)
					return -EBADMSG;
				*fields[i] = le64(p);
				p += 8;
				left -= 8;
			}
			return 0;
		}
		extra += 4 + size;
		len -= 4 + size;
	}
	return wanted ? -EBADMSG : 0;
}

int zipdir_next(const unsigned char *cd, uint64_t size, size_t *pos, uint64_t index,
		struct zipdir_record *rec, char **errmsg)
{
	const unsigned char *r = cd + *pos;

	if (size - *pos < CENTRAL_LEN || le32(r) != CENTRAL_SIG) {
		errmsg_set(errmsg, "damaged central directory at record %" PRIu64, index);
		return -EBADMSG;
	}
	size_t name_len = le16(r + 28), extra_len = le16(r + 30), comment_len = le16(r + 32);
	if (size - *pos - CENTRAL_LEN < name_len + extra_len + comment_len) {
		errmsg_set(errmsg, "damaged central directory at record %" PRIu64, index);
		return -EBADMSG;
	}
	*rec = (struct zipdir_record){
		.name = (const char *)r + CENTRAL_LEN, .name_len = name_len,
		.host = r[5], .flags = le16(r + 8), .method = le16(r + 10), .crc32 = le32(r + 16),
		.compressed_size = le32(r + 20), .size = le32(r + 24),
		.mode = (mode_t)(le32(r + 38) >> 16), .header_offset = le32(r + 42),
	};
	if (zip64_fields(r + CENTRAL_LEN + name_len, extra_len, rec) < 0) {
		errmsg_set(errmsg, "entry \"%.*s\": damaged Zip64 extra field", (int)name_len,
			   rec->name);
		return -EBADMSG;
	}
	*pos += CENTRAL_LEN + name_len + extra_len + comment_len;
	return 0;
}
