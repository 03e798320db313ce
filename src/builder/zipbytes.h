/*
 * zipbytes.h - reading the little-endian fields of zip records from a file,
 * shared by the zip readers (zipsplice.c, sizelimits.c).
 */
#ifndef SEBSFS_ZIPBYTES_H
#define SEBSFS_ZIPBYTES_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

static inline uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Reads exactly len bytes at off; -EBADMSG when the file ends first. */
static inline int zip_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len > 0) {
		ssize_t r = pread(fd, p, len, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EBADMSG;
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

#endif
