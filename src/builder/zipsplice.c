/*
 * zipsplice.c - one zip from the entries of other zips (see zipsplice.h).
 *
 * Record layouts, as libarchive 3.6's zip writer produces them for
 * ziptree_write (archive_write_zip_header, _finish_entry and _close):
 *  - local header: "PK\3\4", 30 bytes, name, extra (UT and ux); then the
 *    data; then, for regular files (flag bit 3, sizes known only at the
 *    end), a 16-byte data descriptor "PK\7\8" crc csize usize.  Folders and
 *    links have no descriptor and their local header holds crc and sizes.
 *  - central directory record: "PK\1\2", 46 bytes, name, extra (the same UT
 *    and ux), no comment; offset 42 is the local header's offset.  libarchive
 *    appends a Zip64 extra only for an entry whose sizes or offset pass
 *    0xffffffff: refused here (-EFBIG), so the offset is the only field that
 *    changes when an entry moves.
 *  - end: when the entry count passes 0xffff (or the directory's size or
 *    offset passes 0xffffffff: refused), a 56-byte Zip64 end record
 *    (version 45/45, disk 0 of 0) and a 20-byte locator (total disks 1);
 *    always the 22-byte end record, counts and sizes clamped, no comment.
 */
#include "zipsplice.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "fsutil.h"
#include "le.h"

#define ZS_LOCAL_SIZE 30
#define ZS_CD_SIZE 46
#define ZS_DESC_SIZE 16
#define ZS_EOCD_SIZE 22
#define ZS_EOCD64_SIZE 56
#define ZS_LOCATOR_SIZE 20
#define ZS_FLAG_ENCRYPTED 0x0001
#define ZS_FLAG_DESCRIPTOR 0x0008
#define ZS_FLAG_STRONG_ENCRYPTION 0x0040
#define ZS_MAX32 UINT64_C(0xffffffff)
#define ZS_VERSION_ZIP64 45
/* Large enough for any local header (30 + two 16-bit lengths) with room to
 * spare, so that the headers of many small entries come in one pread. */
#define ZS_WINDOW (256 * 1024)
#define ZS_COPY_CHUNK (256 * 1024)

struct zs_entry {
	uint64_t local_off;  /* of the local header, in the part */
	uint64_t local_len;  /* header, data and descriptor */
	size_t cd_off;       /* of the central directory record, in cd */
	size_t cd_len;
	size_t name_off;     /* in names */
};

struct zip_index {
	unsigned char *cd;   /* the central directory as read */
	size_t cd_size;
	char *names;         /* every name, NUL-terminated */
	struct zs_entry *v;
	size_t n;
	uint64_t local_end;  /* where the central directory starts */
	dev_t dev;           /* the file read, to check part_fds later */
	ino_t ino;
	off_t size;
};

/* A window of the file, so that neighbouring headers cost one pread. */
struct zs_reader {
	int fd;
	uint64_t file_size;
	unsigned char *buf;
	uint64_t off;
	size_t len;
};

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* A name fit for a one-line message: at most 200 bytes, control bytes as '?'.
 * Returns buf. */
static const char *zs_printable(const char *name, size_t len, char *buf, size_t bufsize)
{
	bool cut = len > bufsize - 4;
	size_t i;

	if (cut)
		len = bufsize - 4;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (cut) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

/* Points *p at len bytes of the file at off (len <= ZS_WINDOW); valid until
 * the next call.  -EBADMSG when they pass the end of the file. */
static int zs_peek(struct zs_reader *r, uint64_t off, size_t len, const unsigned char **p)
{
	if (off > r->file_size || len > r->file_size - off)
		return -EBADMSG;
	if (off < r->off || off + len > r->off + r->len) {
		uint64_t left = r->file_size - off;
		size_t want = left < ZS_WINDOW ? (size_t)left : ZS_WINDOW;
		int rc = pread_exact(r->fd, r->buf, want, off);

		if (rc) {
			r->len = 0;
			return rc;
		}
		r->off = off;
		r->len = want;
	}
	*p = r->buf + (off - r->off);
	return 0;
}

void zip_index_free(struct zip_index *z)
{
	if (!z)
		return;
	free(z->cd);
	free(z->names);
	free(z->v);
	free(z);
}

size_t zip_index_count(const struct zip_index *z)
{
	return z->n;
}

const char *zip_index_name(const struct zip_index *z, size_t i)
{
	return z->names + z->v[i].name_off;
}

struct zs_end {
	uint64_t count, cd_off, cd_size;
};

/* The end records at the end of the file: *end, or -EBADMSG / -EFBIG. */
static int zs_read_end(int fd, uint64_t size, struct zs_end *end, char **errmsg)
{
	unsigned char tail[ZS_EOCD64_SIZE + ZS_LOCATOR_SIZE + ZS_EOCD_SIZE];
	size_t tail_len = size < sizeof(tail) ? (size_t)size : sizeof(tail);
	const unsigned char *eocd, *loc, *rec;
	uint64_t end_of_cd;
	int rc;

	if (size < ZS_EOCD_SIZE) {
		errmsg_set(errmsg, "%llu bytes: too short for a zip", (unsigned long long)size);
		return -EBADMSG;
	}
	rc = pread_exact(fd, tail, tail_len, size - tail_len);
	if (rc) {
		errmsg_set(errmsg, "read the end of the zip: %s", strerror(-rc));
		return rc;
	}
	eocd = tail + tail_len - ZS_EOCD_SIZE;
	if (memcmp(eocd, "PK\5\6", 4) != 0) {
		errmsg_set(errmsg, "no end of central directory record at the end (not a zip, "
				   "truncated, or a zip comment)");
		return -EBADMSG;
	}
	if (le16(eocd + 4) != 0 || le16(eocd + 6) != 0 || le16(eocd + 8) != le16(eocd + 10)) {
		errmsg_set(errmsg, "end record names several disks");
		return -EBADMSG;
	}
	if (le16(eocd + 20) != 0) {
		errmsg_set(errmsg, "end record has a comment length");
		return -EBADMSG;
	}
	end->count = le16(eocd + 10);
	end->cd_size = le32(eocd + 12);
	end->cd_off = le32(eocd + 16);
	end_of_cd = size - ZS_EOCD_SIZE;

	loc = eocd - ZS_LOCATOR_SIZE;
	if (end->count == 0xffff && tail_len == sizeof(tail) && memcmp(loc, "PK\6\7", 4) == 0) {
		rec = tail;
		end_of_cd = size - sizeof(tail);
		if (le32(loc + 4) != 0 || le64(loc + 8) != end_of_cd || le32(loc + 16) != 1 ||
		    memcmp(rec, "PK\6\6", 4) != 0 ||
		    le64(rec + 4) != ZS_EOCD64_SIZE - 12 || le16(rec + 12) != ZS_VERSION_ZIP64 ||
		    le16(rec + 14) != ZS_VERSION_ZIP64 || le32(rec + 16) != 0 || le32(rec + 20) != 0 ||
		    le64(rec + 24) != le64(rec + 32)) {
			errmsg_set(errmsg, "Zip64 end record or locator not as libarchive writes them");
			return -EBADMSG;
		}
		end->count = le64(rec + 32);
		if (le64(rec + 40) >= ZS_MAX32 || le64(rec + 48) >= ZS_MAX32) {
			errmsg_set(errmsg, "central directory at or beyond 4 GiB: Zip64 offsets "
					   "are not spliced");
			return -EFBIG;
		}
		if (end->count <= 0xffff || le64(rec + 40) != end->cd_size ||
		    le64(rec + 48) != end->cd_off) {
			errmsg_set(errmsg, "Zip64 end record disagrees with the end record or is "
					   "not needed (libarchive writes it only past 65535 entries)");
			return -EBADMSG;
		}
	}
	if (end->cd_off >= ZS_MAX32 || end->cd_size >= ZS_MAX32) {
		errmsg_set(errmsg, "central directory at or beyond 4 GiB: Zip64 offsets are not "
				   "spliced");
		return -EFBIG;
	}
	if (end->cd_off > end_of_cd || end->cd_size != end_of_cd - end->cd_off) {
		errmsg_set(errmsg, "central directory (offset %llu, %llu bytes) does not end "
				   "where the end records start (%llu)",
			   (unsigned long long)end->cd_off, (unsigned long long)end->cd_size,
			   (unsigned long long)end_of_cd);
		return -EBADMSG;
	}
	if (end->count > end->cd_size / ZS_CD_SIZE) {
		errmsg_set(errmsg, "%llu entries cannot fit in a central directory of %llu bytes",
			   (unsigned long long)end->count, (unsigned long long)end->cd_size);
		return -EBADMSG;
	}
	return 0;
}

/* Checks entry i's local record against its central directory record rec
 * and fills in e's local_len.  e->local_off is set. */
static int zs_check_local(struct zs_reader *r, size_t i, const unsigned char *rec,
			  struct zs_entry *e, char **errmsg)
{
	const unsigned char *lh, *desc;
	uint16_t flags = le16(rec + 8), name_len = le16(rec + 28), extra_len;
	uint64_t csize = le32(rec + 20), data_off;
	char shown[208];
	int rc;

	rc = zs_peek(r, e->local_off, ZS_LOCAL_SIZE + name_len, &lh);
	if (rc)
		goto fail_read;
	zs_printable((const char *)rec + ZS_CD_SIZE, name_len, shown, sizeof(shown));
	if (memcmp(lh, "PK\3\4", 4) != 0) {
		errmsg_set(errmsg, "entry %zu (%s): no local header at offset %llu", i, shown,
			   (unsigned long long)e->local_off);
		return -EBADMSG;
	}
	if (le16(lh + 4) != le16(rec + 6) || le16(lh + 6) != flags ||
	    le16(lh + 8) != le16(rec + 10) || le32(lh + 10) != le32(rec + 12)) {
		errmsg_set(errmsg, "entry %zu (%s): local header's version, flags, method or "
				   "time differs from the central directory",
			   i, shown);
		return -EBADMSG;
	}
	if (le16(lh + 26) != name_len || memcmp(lh + ZS_LOCAL_SIZE, rec + ZS_CD_SIZE, name_len)) {
		errmsg_set(errmsg, "entry %zu (%s): local header's name differs from the central "
				   "directory",
			   i, shown);
		return -EBADMSG;
	}
	if (!(flags & ZS_FLAG_DESCRIPTOR) &&
	    (le32(lh + 14) != le32(rec + 16) || le32(lh + 18) != le32(rec + 20) ||
	     le32(lh + 22) != le32(rec + 24))) {
		errmsg_set(errmsg, "entry %zu (%s): local header's CRC or sizes differ from the "
				   "central directory",
			   i, shown);
		return -EBADMSG;
	}
	extra_len = le16(lh + 28);
	data_off = e->local_off + ZS_LOCAL_SIZE + name_len + extra_len;
	e->local_len = ZS_LOCAL_SIZE + name_len + extra_len + csize;
	if (flags & ZS_FLAG_DESCRIPTOR) {
		rc = zs_peek(r, data_off + csize, ZS_DESC_SIZE, &desc);
		if (rc)
			goto fail_read;
		if (memcmp(desc, "PK\7\10", 4) != 0 || le32(desc + 4) != le32(rec + 16) ||
		    le32(desc + 8) != le32(rec + 20) || le32(desc + 12) != le32(rec + 24)) {
			errmsg_set(errmsg, "entry %zu (%s): no 16-byte data descriptor matching the "
					   "central directory after its %llu bytes of data",
				   i, shown, (unsigned long long)csize);
			return -EBADMSG;
		}
		e->local_len += ZS_DESC_SIZE;
	}
	return 0;

fail_read:
	zs_printable((const char *)rec + ZS_CD_SIZE, name_len, shown, sizeof(shown));
	if (rc == -EBADMSG)
		errmsg_set(errmsg, "entry %zu (%s): local record passes the start of the central "
				   "directory", i, shown);
	else
		errmsg_set(errmsg, "entry %zu (%s): read: %s", i, shown, strerror(-rc));
	return rc;
}

/* Parses the central directory z->cd into z->v and z->names, checking each
 * record against its local record. */
static int zs_parse_cd(struct zip_index *z, struct zs_reader *r, uint64_t count, char **errmsg)
{
	size_t pos = 0, names_len = 0;
	uint64_t next_local = 0;
	const unsigned char *prev_name = NULL;
	size_t prev_len = 0;
	char shown[208];
	int rc;

	z->v = calloc(count ? count : 1, sizeof(*z->v));
	/* each record holds its name and 46 more bytes, so this bounds them */
	z->names = malloc(z->cd_size - count * ZS_CD_SIZE + count + 1);
	if (!z->v || !z->names)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const unsigned char *rec = z->cd + pos;
		struct zs_entry *e = &z->v[i];
		uint16_t name_len, extra_len, flags;
		const char *name;

		if (z->cd_size - pos < ZS_CD_SIZE || memcmp(rec, "PK\1\2", 4) != 0) {
			errmsg_set(errmsg, "central directory record %zu missing at offset %zu", i,
				   pos);
			return -EBADMSG;
		}
		name_len = le16(rec + 28);
		extra_len = le16(rec + 30);
		e->cd_off = pos;
		e->cd_len = ZS_CD_SIZE + (size_t)name_len + extra_len;
		if (z->cd_size - pos < e->cd_len) {
			errmsg_set(errmsg, "central directory record %zu passes the end of the "
					   "central directory",
				   i);
			return -EBADMSG;
		}
		name = (const char *)rec + ZS_CD_SIZE;
		zs_printable(name, name_len, shown, sizeof(shown));
		if (name_len == 0 || memchr(name, '\0', name_len)) {
			errmsg_set(errmsg, "entry %zu (%s): empty name or a NUL byte in it", i,
				   shown);
			return -EBADMSG;
		}
		if (prev_name) {
			size_t common = prev_len < name_len ? prev_len : name_len;
			int c = memcmp(prev_name, name, common);

			if (c > 0 || (c == 0 && prev_len >= name_len)) {
				errmsg_set(errmsg, "entry %zu (%s): names not in strictly ascending "
						   "bytewise order",
					   i, shown);
				return -EBADMSG;
			}
		}
		prev_name = (const unsigned char *)name;
		prev_len = name_len;
		flags = le16(rec + 8);
		if (flags & (ZS_FLAG_ENCRYPTED | ZS_FLAG_STRONG_ENCRYPTION)) {
			errmsg_set(errmsg, "entry %zu (%s): encrypted", i, shown);
			return -EBADMSG;
		}
		if (le16(rec + 32) != 0 || le16(rec + 34) != 0) {
			errmsg_set(errmsg, "entry %zu (%s): a file comment or another disk", i, shown);
			return -EBADMSG;
		}
		if (le16(rec + 6) >= ZS_VERSION_ZIP64 || le32(rec + 20) == ZS_MAX32 ||
		    le32(rec + 24) == ZS_MAX32 || le32(rec + 42) == ZS_MAX32) {
			errmsg_set(errmsg, "entry %zu (%s): a Zip64 entry (4 GiB or more); those "
					   "are not spliced",
				   i, shown);
			return -EFBIG;
		}
		e->local_off = le32(rec + 42);
		if (e->local_off != next_local) {
			errmsg_set(errmsg, "entry %zu (%s): local header at offset %llu, not at %llu "
					   "where the previous record ends",
				   i, shown, (unsigned long long)e->local_off,
				   (unsigned long long)next_local);
			return -EBADMSG;
		}
		rc = zs_check_local(r, i, rec, e, errmsg);
		if (rc)
			return rc;
		next_local += e->local_len;
		if (next_local > z->local_end) {
			errmsg_set(errmsg, "entry %zu (%s): local record passes the start of the "
					   "central directory",
				   i, shown);
			return -EBADMSG;
		}
		e->name_off = names_len;
		memcpy(z->names + names_len, name, name_len);
		names_len += name_len;
		z->names[names_len++] = '\0';
		pos += e->cd_len;
	}
	if (pos != z->cd_size) {
		errmsg_set(errmsg, "%zu bytes after the last central directory record",
			   z->cd_size - pos);
		return -EBADMSG;
	}
	if (next_local != z->local_end) {
		errmsg_set(errmsg, "%llu bytes between the last entry and the central directory",
			   (unsigned long long)(z->local_end - next_local));
		return -EBADMSG;
	}
	z->n = count;
	return 0;
}

int zip_index_read(int fd, struct zip_index **out, char **errmsg)
{
	struct zip_index *z = NULL;
	struct zs_reader r = { .fd = fd };
	struct zs_end end;
	struct stat st;
	int rc;

	if (errmsg)
		*errmsg = NULL;
	*out = NULL;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "stat: %s", strerror(-rc));
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		errmsg_set(errmsg, "not a regular file");
		return -EINVAL;
	}
	rc = zs_read_end(fd, (uint64_t)st.st_size, &end, errmsg);
	if (rc)
		return rc;

	z = calloc(1, sizeof(*z));
	if (!z) {
		rc = -ENOMEM;
		goto out;
	}
	z->dev = st.st_dev;
	z->ino = st.st_ino;
	z->size = st.st_size;
	z->local_end = end.cd_off;
	z->cd_size = (size_t)end.cd_size;
	z->cd = malloc(z->cd_size ? z->cd_size : 1);
	r.buf = malloc(ZS_WINDOW);
	r.file_size = end.cd_off; /* local records lie before the central directory */
	if (!z->cd || !r.buf) {
		rc = -ENOMEM;
		goto out;
	}
	rc = pread_exact(fd, z->cd, z->cd_size, end.cd_off);
	if (rc) {
		errmsg_set(errmsg, "read the central directory: %s", strerror(-rc));
		goto out;
	}
	rc = zs_parse_cd(z, &r, end.count, errmsg);
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory");
	free(r.buf);
	if (rc) {
		zip_index_free(z);
		return rc;
	}
	*out = z;
	return 0;
}

/* ---- splicing ---- */

/* One entry of the output: entry `entry` of part `part`. */
struct zs_pick {
	size_t part;
	size_t entry;
};

/* Whether entry a of part pa and entry b of part pb have the same bytes:
 * the central directory records but for the offset, and the local records
 * (read in chunks into the two halves of buf). */
static int zs_same_entry(int fa, const struct zip_index *za, size_t a, int fb,
			 const struct zip_index *zb, size_t b, unsigned char *buf, bool *same)
{
	const struct zs_entry *ea = &za->v[a], *eb = &zb->v[b];
	const unsigned char *ca = za->cd + ea->cd_off, *cb = zb->cd + eb->cd_off;
	uint64_t done;

	*same = false;
	if (ea->cd_len != eb->cd_len || ea->local_len != eb->local_len || memcmp(ca, cb, 42) ||
	    memcmp(ca + 46, cb + 46, ea->cd_len - 46))
		return 0;
	for (done = 0; done < ea->local_len;) {
		uint64_t left = ea->local_len - done;
		size_t len = left < ZS_COPY_CHUNK / 2 ? (size_t)left : ZS_COPY_CHUNK / 2;
		int rc = pread_exact(fa, buf, len, ea->local_off + done);

		if (!rc)
			rc = pread_exact(fb, buf + ZS_COPY_CHUNK / 2, len, eb->local_off + done);
		if (rc)
			return rc == -EBADMSG ? -EIO : rc;
		if (memcmp(buf, buf + ZS_COPY_CHUNK / 2, len))
			return 0;
		done += len;
	}
	*same = true;
	return 0;
}

/* Merges the parts' entries by name into picks (*n_picks of them). */
static int zs_merge(const int part_fds[], struct zip_index *const parts[], size_t n,
		    struct zs_pick *picks, size_t *n_picks, char **errmsg)
{
	size_t *head = calloc(n ? n : 1, sizeof(*head));
	unsigned char *buf = NULL;
	size_t count = 0;
	char shown[208];
	int rc = 0;

	if (!head)
		return -ENOMEM;
	for (;;) {
		const char *min = NULL;
		size_t first = 0;

		for (size_t p = 0; p < n; p++) {
			const char *name;

			if (head[p] == parts[p]->n)
				continue;
			name = zip_index_name(parts[p], head[p]);
			if (!min || strcmp(name, min) < 0) {
				min = name;
				first = p;
			}
		}
		if (!min)
			break;
		for (size_t p = first + 1; p < n; p++) {
			bool same;

			if (head[p] == parts[p]->n || strcmp(zip_index_name(parts[p], head[p]), min))
				continue;
			if (!buf && !(buf = malloc(ZS_COPY_CHUNK))) {
				rc = -ENOMEM;
				goto out;
			}
			rc = zs_same_entry(part_fds[first], parts[first], head[first], part_fds[p],
					   parts[p], head[p], buf, &same);
			if (rc || !same)
				zs_printable(min, strlen(min), shown, sizeof(shown));
			if (rc) {
				errmsg_set(errmsg, "compare %s in parts %zu and %zu: %s", shown, first,
					   p, strerror(-rc));
				goto out;
			}
			if (!same) {
				errmsg_set(errmsg, "%s: in parts %zu and %zu with different bytes",
					   shown, first, p);
				rc = -EEXIST;
				goto out;
			}
			head[p]++;
		}
		picks[count].part = first;
		picks[count].entry = head[first]++;
		count++;
	}
	*n_picks = count;
out:
	free(buf);
	free(head);
	return rc;
}

struct zs_copier {
	int out_fd;
	bool plain;          /* copy_file_range failed: read/write from now on */
	unsigned char *buf;  /* for read/write, allocated on first use */
};

/* Copies len bytes of in_fd at off to out_fd's offset.  -ENODATA when
 * in_fd ends first (it shrank since it was indexed). */
static int zs_copy(struct zs_copier *c, int in_fd, uint64_t off, uint64_t len)
{
	while (len > 0 && !c->plain) {
		loff_t in_off = (loff_t)off;
		ssize_t w = copy_file_range(in_fd, &in_off, c->out_fd, NULL, len, 0);

		if (w > 0) {
			off += (uint64_t)w;
			len -= (uint64_t)w;
			continue;
		}
		if (w == 0)
			return -ENODATA;
		if (errno == EINTR)
			continue;
		/* not supported for these two files (another file system, a
		 * pipe, O_APPEND, an old kernel): copy through user space */
		if (errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP && errno != ENOSYS &&
		    errno != EBADF && errno != ETXTBSY)
			return -errno;
		c->plain = true;
	}
	if (len > 0 && !c->buf && !(c->buf = malloc(ZS_COPY_CHUNK)))
		return -ENOMEM;
	while (len > 0) {
		size_t want = len < ZS_COPY_CHUNK ? (size_t)len : ZS_COPY_CHUNK;
		int rc = pread_exact(in_fd, c->buf, want, off);

		if (rc)
			return rc == -EBADMSG ? -ENODATA : rc;
		rc = write_all(c->out_fd, c->buf, want);
		if (rc)
			return rc;
		off += want;
		len -= want;
	}
	return 0;
}

/* Appends the end records for count entries and a central directory of
 * cd_size bytes at cd_off to p; returns their length. */
static size_t zs_end_records(unsigned char *p, uint64_t count, uint64_t cd_off, uint64_t cd_size)
{
	size_t len = 0;

	if (count > 0xffff) {
		memset(p, 0, ZS_EOCD64_SIZE + ZS_LOCATOR_SIZE);
		memcpy(p, "PK\6\6", 4);
		put64(p + 4, ZS_EOCD64_SIZE - 12);
		put16(p + 12, ZS_VERSION_ZIP64);
		put16(p + 14, ZS_VERSION_ZIP64);
		put64(p + 24, count);
		put64(p + 32, count);
		put64(p + 40, cd_size);
		put64(p + 48, cd_off);
		p += ZS_EOCD64_SIZE;
		memcpy(p, "PK\6\7", 4);
		put64(p + 8, cd_off + cd_size);
		put32(p + 16, 1);
		p += ZS_LOCATOR_SIZE;
		len = ZS_EOCD64_SIZE + ZS_LOCATOR_SIZE;
	}
	memset(p, 0, ZS_EOCD_SIZE);
	memcpy(p, "PK\5\6", 4);
	put16(p + 8, (uint16_t)(count > 0xffff ? 0xffff : count));
	put16(p + 10, (uint16_t)(count > 0xffff ? 0xffff : count));
	put32(p + 12, (uint32_t)cd_size);
	put32(p + 16, (uint32_t)cd_off);
	return len + ZS_EOCD_SIZE;
}

int zipsplice_write(int out_fd, const int part_fds[], struct zip_index *const parts[], size_t n,
		    char **errmsg)
{
	struct zs_copier copier = { .out_fd = out_fd };
	struct zs_pick *picks = NULL;
	unsigned char *cd = NULL, *p;
	size_t total = 0, n_picks = 0, cd_size = 0;
	uint64_t local_size = 0;
	int rc;

	if (errmsg)
		*errmsg = NULL;
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (fstat(part_fds[i], &st) < 0) {
			rc = -errno;
			errmsg_set(errmsg, "part %zu: stat: %s", i, strerror(-rc));
			return rc;
		}
		if (st.st_dev != parts[i]->dev || st.st_ino != parts[i]->ino ||
		    st.st_size != parts[i]->size) {
			errmsg_set(errmsg, "part %zu: not the file its index was read from, or "
					   "changed since",
				   i);
			return -ESTALE;
		}
		total += parts[i]->n;
	}
	picks = malloc((total ? total : 1) * sizeof(*picks));
	if (!picks) {
		rc = -ENOMEM;
		goto out;
	}
	rc = zs_merge(part_fds, parts, n, picks, &n_picks, errmsg);
	if (rc)
		goto out;
	for (size_t i = 0; i < n_picks; i++) {
		const struct zs_entry *e = &parts[picks[i].part]->v[picks[i].entry];

		local_size += e->local_len;
		cd_size += e->cd_len;
	}
	if (local_size >= ZS_MAX32 || cd_size >= ZS_MAX32) {
		errmsg_set(errmsg, "the spliced zip would need Zip64 offsets (%llu bytes of "
				   "entries, %zu of central directory): not supported",
			   (unsigned long long)local_size, cd_size);
		rc = -EFBIG;
		goto out;
	}
	cd = malloc(cd_size + ZS_EOCD64_SIZE + ZS_LOCATOR_SIZE + ZS_EOCD_SIZE);
	if (!cd) {
		rc = -ENOMEM;
		goto out;
	}
	p = cd;
	local_size = 0;
	for (size_t i = 0; i < n_picks; i++) {
		const struct zip_index *z = parts[picks[i].part];
		const struct zs_entry *e = &z->v[picks[i].entry];

		memcpy(p, z->cd + e->cd_off, e->cd_len);
		put32(p + 42, (uint32_t)local_size);
		p += e->cd_len;
		local_size += e->local_len;
	}
	p += zs_end_records(p, n_picks, local_size, cd_size);

	/* Entries adjacent in a part and in the output go in one copy. */
	for (size_t i = 0; i < n_picks;) {
		size_t part = picks[i].part;
		const struct zs_entry *e = &parts[part]->v[picks[i].entry];
		uint64_t start = e->local_off, end = start + e->local_len;

		for (i++; i < n_picks && picks[i].part == part; i++) {
			e = &parts[part]->v[picks[i].entry];
			if (e->local_off != end)
				break;
			end += e->local_len;
		}
		rc = zs_copy(&copier, part_fds[part], start, end - start);
		if (rc == -ENODATA) {
			errmsg_set(errmsg, "part %zu ended before offset %llu: changed since it "
					   "was indexed", part, (unsigned long long)end);
			rc = -EIO;
			goto out;
		}
		if (rc) {
			errmsg_set(errmsg, "copy %llu bytes of part %zu: %s",
				   (unsigned long long)(end - start), part, strerror(-rc));
			goto out;
		}
	}
	rc = write_all(out_fd, cd, (size_t)(p - cd));
	if (rc)
		errmsg_set(errmsg, "write the central directory: %s", strerror(-rc));
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory");
	free(copier.buf);
	free(cd);
	free(picks);
	return rc;
}
