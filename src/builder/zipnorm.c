/*
 * zipnorm.c - a build tool's zip or jar in sebsfs's reproducible form (see
 * zipnorm.h).
 *
 * Extract, then ziptree_write: the output equals ziptree_write of the
 * extracted tree by construction, and the one writer of reproducible zips
 * stays the only one.  Every entry is checked before anything of it is
 * created; folders are opened component by component with O_NOFOLLOW from
 * the scratch folder's descriptor, files are created O_EXCL, so nothing is
 * written outside the scratch folder or through a link, and a second entry
 * of a name finds the first one there.
 *
 * Caveats of libarchive (3.6) that shape this file:
 *  - only the seekable zip reader is registered: it reads the central
 *    directory, which holds the Unix modes (so symlinks and execute bits)
 *    and is what unzip and java.util.zip.ZipFile read; the streaming reader
 *    would see the local headers, which can disagree.
 *  - names flagged UTF-8 are converted to the locale's charset, which fails
 *    for any non-ASCII name in the "C" locale of a daemon; the reader
 *    therefore runs under a C.UTF-8 locale set for this thread only.
 */
#include "zipnorm.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "fsutil.h"
#include "walk.h"
#include "ziptree.h"

#define ZN_BLOCK (64 * 1024)

/* A folder whose permission bits are applied once its entries are in. */
struct zn_mode {
	char *rel;                  /* NULL: the root */
	mode_t perm;
};

struct zn {
	struct archive *a;
	int rootfd;                 /* the extraction folder */
	bool tar;                   /* a tar stream (tar_extract), else a zip */
	const struct tar_extract_options *topts;  /* tar only */
	uint64_t bytes_left;        /* of opts->max_bytes */
	uint64_t max_bytes;
	uint64_t max_entries;
	char **names;               /* every entry's name, without a trailing '/' */
	size_t n_names, cap_names;
	struct zn_mode *modes;      /* tar: folders' permission bits, in entry order */
	size_t n_modes, cap_modes;
	char *buf;
	char **errmsg;
};

/* Checks an entry's name and returns its path without the trailing '/' of
 * a folder (malloc'd, in *rel) and its number of components. */
static int zn_check_name(const char *name, bool is_dir, char **rel, int *depth,
			 char **errmsg)
{
	size_t len = strlen(name);
	char *r;
	int n = 0;

	*rel = NULL;
	if (name[0] == '/') {
		errmsg_set(errmsg, "entry %s: absolute path", name);
		return -EPERM;
	}
	if (len > 0 && name[len - 1] == '/') {
		if (!is_dir) {
			errmsg_set(errmsg, "entry %s: ends in '/' but is not a folder", name);
			return -EINVAL;
		}
		len--;
	}
	for (size_t i = 0; i <= len;) {
		size_t c = strcspn(name + i, "/");

		if (c > len - i)
			c = len - i;
		if (c == 2 && name[i] == '.' && name[i + 1] == '.') {
			errmsg_set(errmsg, "entry %s: '..' leads out of the tree", name);
			return -EPERM;
		}
		if (c == 0 || (c == 1 && name[i] == '.')) {
			errmsg_set(errmsg, "entry %s: empty or '.' path component", name);
			return -EINVAL;
		}
		n++;
		i += c + 1;
	}
	if (n > WALK_MAX_DEPTH) {
		errmsg_set(errmsg, "entry %s: more than %d levels of folders", name,
			   WALK_MAX_DEPTH);
		return -ELOOP;
	}
	r = strndup(name, len);
	if (!r)
		return -ENOMEM;
	*rel = r;
	*depth = n;
	return 0;
}

static int zn_add_name(struct zn *z, const char *rel)
{
	char *copy;

	if (z->n_names == z->cap_names) {
		size_t cap = z->cap_names ? z->cap_names * 2 : 256;
		char **v = realloc(z->names, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		z->names = v;
		z->cap_names = cap;
	}
	copy = strdup(rel);
	if (!copy)
		return -ENOMEM;
	z->names[z->n_names++] = copy;
	return 0;
}

/* Why the folder component prefix of entry name cannot be entered. */
static int zn_not_a_folder(int dfd, const char *comp, const char *name, size_t prefix_len,
			   char **errmsg)
{
	struct stat st;

	if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
		errmsg_set(errmsg, "entry %s: %.*s is a symlink of the archive; refusing to write through it",
			   name, (int)prefix_len, name);
		return -EPERM;
	}
	errmsg_set(errmsg, "entry %s: %.*s is a file of the archive and cannot be a folder",
		   name, (int)prefix_len, name);
	return -EEXIST;
}

/* Opens (creating) the folders of rel but its last component; the
 * descriptor of the last folder in *dfd, the last component in *last. */
static int zn_open_parent(struct zn *z, const char *name, char *rel, int *dfd,
			  const char **last)
{
	int cur = z->rootfd;
	char *p = rel, *slash;

	*dfd = -1;
	while ((slash = strchr(p, '/'))) {
		int next;

		*slash = '\0';
		next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT) {
			if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST)
				goto sys_err;
			next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			int rc;

			if (errno != ELOOP && errno != ENOTDIR)
				goto sys_err;
			rc = zn_not_a_folder(cur, p, name, (size_t)(slash - rel), z->errmsg);
			*slash = '/';
			if (cur != z->rootfd)
				close(cur);
			return rc;
		}
		*slash = '/';
		if (cur != z->rootfd)
			close(cur);
		cur = next;
		p = slash + 1;
	}
	*dfd = cur;
	*last = p;
	return 0;
sys_err:;
	int rc = -errno;

	errmsg_set(z->errmsg, "entry %s: cannot create its folder %s: %s", name, rel,
		   strerror(-rc));
	if (cur != z->rootfd)
		close(cur);
	return rc;
}

/* The message for an EEXIST on creating dfd/last. */
static int zn_exists(int dfd, const char *last, const char *name, char **errmsg)
{
	struct stat st;

	if (fstatat(dfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		errmsg_set(errmsg, "entry %s: also the folder of other entries", name);
	else
		errmsg_set(errmsg, "entry %s: duplicate name", name);
	return -EEXIST;
}

static int zn_write_file(struct zn *z, struct archive_entry *ae, int dfd, const char *last,
			 const char *name)
{
	/* a zip: only the execute bit reaches the output, the rest is fixed;
	 * a tar: the permission bits as they were, never setuid/setgid/sticky */
	mode_t perm = z->tar ? (archive_entry_perm(ae) & 0777)
			     : (archive_entry_perm(ae) & 0111) ? 0755 : 0644;
	int fd, rc = 0;

	if (archive_entry_size_is_set(ae) && (uint64_t)archive_entry_size(ae) > z->bytes_left) {
		errmsg_set(z->errmsg, "entry %s: its %jd bytes exceed the %ju bytes of content an archive may expand to",
			   name, (intmax_t)archive_entry_size(ae), (uintmax_t)z->max_bytes);
		return -EFBIG;
	}
	fd = openat(dfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm);
	if (fd < 0) {
		rc = -errno;
		if (rc == -EEXIST)
			return zn_exists(dfd, last, name, z->errmsg);
		errmsg_set(z->errmsg, "entry %s: cannot create it: %s", name, strerror(-rc));
		return rc;
	}
	if (fchmod(fd, perm) < 0) {
		rc = -errno;
		errmsg_set(z->errmsg, "entry %s: chmod: %s", name, strerror(-rc));
		goto out;
	}
	for (;;) {
		la_ssize_t got = archive_read_data(z->a, z->buf, ZN_BLOCK);

		if (got == 0)
			break;
		if (got < 0) {
			rc = -EBADMSG;
			errmsg_set(z->errmsg, "entry %s: %s", name, archive_error_string(z->a));
			goto out;
		}
		if ((uint64_t)got > z->bytes_left) {
			rc = -EFBIG;
			errmsg_set(z->errmsg, "entry %s: the archive expands to more than %ju bytes of content",
				   name, (uintmax_t)z->max_bytes);
			goto out;
		}
		z->bytes_left -= (uint64_t)got;
		rc = write_all(fd, z->buf, (size_t)got);
		if (rc) {
			errmsg_set(z->errmsg, "entry %s: write: %s", name, strerror(-rc));
			goto out;
		}
	}
out:
	close(fd);
	return rc;
}

static int zn_write_symlink(struct zn *z, struct archive_entry *ae, int dfd, const char *last,
			    const char *name, int depth)
{
	const char *target = archive_entry_symlink_utf8(ae);

	if (!target) {
		errmsg_set(z->errmsg, "entry %s: symlink target is not valid UTF-8", name);
		return -EILSEQ;
	}
	if (!*target) {
		errmsg_set(z->errmsg, "entry %s: symlink with an empty target", name);
		return -EINVAL;
	}
	if (!walk_link_stays_inside(depth - 1, target)) {
		errmsg_set(z->errmsg, "entry %s: symlink to %s leads out of the tree", name, target);
		return -EPERM;
	}
	if (symlinkat(target, dfd, last) < 0) {
		int rc = -errno;

		if (rc == -EEXIST)
			return zn_exists(dfd, last, name, z->errmsg);
		errmsg_set(z->errmsg, "entry %s: cannot create the symlink: %s", name, strerror(-rc));
		return rc;
	}
	return 0;
}

/* A folder's permission bits, applied by zn_apply_modes at the end (a
 * folder without write permission would refuse its own entries). */
static int zn_add_mode(struct zn *z, const char *rel, mode_t perm)
{
	char *copy = NULL;

	if (z->n_modes == z->cap_modes) {
		size_t cap = z->cap_modes ? z->cap_modes * 2 : 64;
		struct zn_mode *v = realloc(z->modes, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		z->modes = v;
		z->cap_modes = cap;
	}
	if (rel && !(copy = strdup(rel)))
		return -ENOMEM;
	z->modes[z->n_modes++] = (struct zn_mode){ copy, perm };
	return 0;
}

static int zn_write_dir(struct zn *z, int dfd, const char *last, const char *name)
{
	struct stat st;

	if (mkdirat(dfd, last, 0755) == 0)
		return 0;
	if (errno != EEXIST) {
		int rc = -errno;

		errmsg_set(z->errmsg, "entry %s: cannot create the folder: %s", name, strerror(-rc));
		return rc;
	}
	/* a folder already made for earlier entries below it is fine; a second
	 * explicit entry shows in the duplicate check at the end */
	if (fstatat(dfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		return 0;
	errmsg_set(z->errmsg, "entry %s: duplicate name (also a file or symlink)", name);
	return -EEXIST;
}

static const char *zn_type_name(mode_t type)
{
	switch (type) {
	case AE_IFCHR:  return "a character device";
	case AE_IFBLK:  return "a block device";
	case AE_IFIFO:  return "a FIFO";
	case AE_IFSOCK: return "a socket";
	default:        return "not a file, folder or symlink";
	}
}

/* A hard link of a tar: to a regular file extracted before it, inside the tree. */
static int zn_write_hardlink(struct zn *z, const char *target, int dfd, const char *last,
			     const char *name)
{
	char *trel = NULL;
	const char *tlast = NULL;
	int tdepth, tdfd = -1, rc;
	struct stat st;

	rc = zn_check_name(target, false, &trel, &tdepth, z->errmsg);
	if (rc)
		goto out;
	rc = zn_open_parent(z, target, trel, &tdfd, &tlast);
	if (rc)
		goto out;
	if (fstatat(tdfd, tlast, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
		errmsg_set(z->errmsg, "entry %s: a hard link to %s, which is not a file extracted before it",
			   name, target);
		rc = -EINVAL;
		goto out;
	}
	/* no AT_SYMLINK_FOLLOW: the link is to the file itself */
	if (linkat(tdfd, tlast, dfd, last, 0) < 0) {
		rc = -errno;
		if (rc == -EEXIST)
			rc = zn_exists(dfd, last, name, z->errmsg);
		else
			errmsg_set(z->errmsg, "entry %s: cannot create the hard link: %s", name,
				   strerror(-rc));
	}
out:
	if (tdfd >= 0 && tdfd != z->rootfd)
		close(tdfd);
	free(trel);
	return rc;
}

/* A tar's name below opts->strip: the rest in *rest ("" for the folder itself). */
static int zn_strip(struct zn *z, const char *name, const char **rest)
{
	const char *strip = z->topts->strip;
	size_t len = strip ? strlen(strip) : 0;

	*rest = name;
	if (!strip)
		return 0;
	if (strncmp(name, strip, len) != 0 || (name[len] != '/' && name[len] != '\0')) {
		errmsg_set(z->errmsg, "entry %s: outside %s/", name, strip);
		return -EPERM;
	}
	*rest = name[len] ? name + len + 1 : name + len;
	return 0;
}

static bool zn_skipped(const struct tar_extract_options *o, const char *rest)
{
	for (const char *const *p = o->skip; p && *p; p++) {
		size_t len = strlen(*p);

		if (strncmp(rest, *p, len) == 0 && (rest[len] == '\0' || rest[len] == '/'))
			return true;
	}
	return false;
}

/* A tar entry not owned by opts->owner: -EPERM, and *foreign says which. */
static int zn_check_owner(struct zn *z, struct archive_entry *ae, const char *rest,
			  const char *name)
{
	const struct tar_extract_options *o = z->topts;
	uid_t uid = (uid_t)archive_entry_uid(ae);
	size_t len = strlen(rest);

	if (!o->check_owner || uid == o->owner)
		return 0;
	if (len > 0 && rest[len - 1] == '/')
		len--;
	if (o->foreign && !*o->foreign)
		*o->foreign = str_printf("%.*s%s(uid %u)", (int)len, rest, len ? " " : "",
					 (unsigned)uid);
	errmsg_set(z->errmsg, "entry %s: owned by uid %u, not %u", name, (unsigned)uid,
		   (unsigned)o->owner);
	return -EPERM;
}

static int zn_extract_entry(struct zn *z, struct archive_entry *ae)
{
	const char *name = archive_entry_pathname_utf8(ae);
	const char *hardlink = archive_entry_hardlink_utf8(ae);
	const char *full = name;
	mode_t type = archive_entry_filetype(ae);
	char *rel = NULL;
	const char *last = NULL;
	int depth, dfd = -1, rc;

	if (!name) {
		name = archive_entry_pathname(ae);
		errmsg_set(z->errmsg, "entry %s: name is not valid UTF-8", name ? name : "(unreadable)");
		return -EILSEQ;
	}
	if (z->tar) {
		/* names are checked below the folder the tar was made of */
		rc = zn_strip(z, full, &name);
		if (rc == 0 && hardlink)
			rc = zn_strip(z, hardlink, &hardlink);
		if (rc == 0 && zn_skipped(z->topts, name))
			return 0;
		if (rc == 0)
			rc = zn_check_owner(z, ae, name, full);
		if (rc)
			return rc;
		if (!*name || !strcmp(name, "/")) {  /* the folder itself */
			if (type == AE_IFDIR && !hardlink)
				return zn_add_mode(z, NULL, archive_entry_perm(ae) & 0777);
			errmsg_set(z->errmsg, "entry %s: not a folder", full);
			return -EINVAL;
		}
	} else if (archive_entry_hardlink(ae)) {
		errmsg_set(z->errmsg, "entry %s: a hard link", name);
		return -EINVAL;
	}
	if (archive_entry_hardlink(ae) && !hardlink) {
		errmsg_set(z->errmsg, "entry %s: hard link target is not valid UTF-8", full);
		return -EILSEQ;
	}
	if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
		errmsg_set(z->errmsg, "entry %s: %s", full, zn_type_name(type));
		return -EINVAL;
	}
	rc = zn_check_name(name, !hardlink && type == AE_IFDIR, &rel, &depth, z->errmsg);
	if (rc)
		goto out;
	rc = zn_open_parent(z, name, rel, &dfd, &last);
	if (rc)
		goto out;
	if (hardlink)
		rc = zn_write_hardlink(z, hardlink, dfd, last, name);
	else if (type == AE_IFREG)
		rc = zn_write_file(z, ae, dfd, last, name);
	else if (type == AE_IFLNK)
		rc = zn_write_symlink(z, ae, dfd, last, name, depth);
	else
		rc = zn_write_dir(z, dfd, last, name);
	if (rc == 0 && z->tar && !hardlink && type == AE_IFDIR)
		rc = zn_add_mode(z, rel, archive_entry_perm(ae) & 0777);
	if (rc)
		goto out;
	rc = zn_add_name(z, rel);
out:
	if (rc == -ENOMEM)
		errmsg_set(z->errmsg, "out of memory");
	if (dfd >= 0 && dfd != z->rootfd)
		close(dfd);
	free(rel);
	return rc;
}

/* The folders' permission bits, deepest (latest) first, so that a folder
 * without search permission is closed only after what lies below it. */
static int zn_apply_modes(struct zn *z)
{
	for (size_t i = z->n_modes; i-- > 0;) {
		struct zn_mode *m = &z->modes[i];
		const char *last = NULL;
		int dfd = z->rootfd, fd, rc = 0;

		if (m->rel && (rc = zn_open_parent(z, m->rel, m->rel, &dfd, &last)) < 0)
			return rc;
		fd = m->rel ? openat(dfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
			    : dup(z->rootfd);
		if (fd < 0 || fchmod(fd, m->perm) < 0) {
			rc = -errno;
			errmsg_set(z->errmsg, "folder %s: chmod: %s", m->rel ? m->rel : ".",
				   strerror(-rc));
		}
		if (fd >= 0)
			close(fd);
		if (dfd != z->rootfd)
			close(dfd);
		if (rc)
			return rc;
	}
	return 0;
}

static int zn_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entries whose creation found no conflict can still share a name: two
 * entries of one folder. */
static int zn_check_duplicates(struct zn *z)
{
	if (z->n_names < 2)
		return 0;
	qsort(z->names, z->n_names, sizeof(*z->names), zn_cmp_names);
	for (size_t i = 1; i < z->n_names; i++) {
		if (!strcmp(z->names[i - 1], z->names[i])) {
			errmsg_set(z->errmsg, "entry %s/: duplicate name", z->names[i]);
			return -EEXIST;
		}
	}
	return 0;
}

/* True when in_fd holds nothing but an end-of-central-directory record of
 * no entries (and its comment): the zip of an empty tree, which libarchive's
 * seekable reader does not recognize. */
static bool zn_empty_zip(int in_fd, off_t size)
{
	unsigned char eocd[22];

	if (size < 22 || size > 22 + 0xffff ||
	    pread(in_fd, eocd, sizeof(eocd), 0) != (ssize_t)sizeof(eocd))
		return false;
	if (memcmp(eocd, "PK\5\6", 4) != 0)
		return false;
	for (int i = 4; i < 20; i++)  /* disk numbers, counts, size, offset */
		if (eocd[i])
			return false;
	return (off_t)(eocd[20] | eocd[21] << 8) == size - 22;
}

/* Reads every entry of the zip in in_fd into the folder open at z->rootfd. */
static int zn_extract(struct zn *z, int in_fd)
{
	struct archive_entry *ae;
	uint64_t count = 0;
	int r;

	struct stat st;
	const char *what = z->tar ? "not a tar archive" : "not a zip archive";

	if (!z->tar && fstat(in_fd, &st) == 0 && zn_empty_zip(in_fd, st.st_size))
		return 0;
	z->a = archive_read_new();
	if (!z->a)
		return -ENOMEM;
	if ((z->tar ? archive_read_support_format_tar(z->a)
		    : archive_read_support_format_zip_seekable(z->a)) != ARCHIVE_OK ||
	    archive_read_open_fd(z->a, in_fd, ZN_BLOCK) != ARCHIVE_OK) {
		errmsg_set(z->errmsg, "%s: %s", what, archive_error_string(z->a));
		return -EBADMSG;
	}
	while ((r = archive_read_next_header(z->a, &ae)) != ARCHIVE_EOF) {
		const char *name = archive_entry_pathname_utf8(ae);
		int rc;

		if (r != ARCHIVE_OK) {
			/* also ARCHIVE_WARN: e.g. a name that cannot be decoded */
			if (!name) {
				errmsg_set(z->errmsg, "entry %s: name is not valid UTF-8",
					   archive_entry_pathname(ae) ? archive_entry_pathname(ae)
								      : "(unreadable)");
				return -EILSEQ;
			}
			/* the last name kept, if any: a tar's root and skipped
			 * entries are counted but keep none */
			errmsg_set(z->errmsg, "%s%s: %s", z->n_names ? "entry after " : what,
				   z->n_names ? z->names[z->n_names - 1] : "",
				   archive_error_string(z->a));
			return -EBADMSG;
		}
		if (++count > z->max_entries) {
			errmsg_set(z->errmsg, "more than %ju entries in the archive",
				   (uintmax_t)z->max_entries);
			return -EFBIG;
		}
		rc = zn_extract_entry(z, ae);
		if (rc)
			return rc;
	}
	r = zn_check_duplicates(z);
	return r == 0 && z->tar ? zn_apply_modes(z) : r;
}

/* Messages are one line: libarchive's end in "\n", and an entry's name may
 * hold any byte but '/' and NUL. */
static void zn_one_line(char *msg)
{
	size_t len = strlen(msg);

	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r' || msg[len - 1] == ' '))
		msg[--len] = '\0';
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* Extracts the archive in in_fd into the empty folder open at rootfd (z:
 * its kind and bounds, the rest zeroed). */
static int zn_extract_into(struct zn *zp, int in_fd, uint64_t max_bytes, uint64_t max_entries,
			   char **errmsg)
{
	struct zn z = *zp;
	locale_t utf8 = (locale_t)0, saved = (locale_t)0;
	struct stat st;
	int rc;

	z.errmsg = errmsg;
	z.max_bytes = max_bytes ? max_bytes : ZIPNORM_MAX_BYTES;
	z.max_entries = max_entries ? max_entries : ZIPNORM_MAX_ENTRIES;
	z.bytes_left = z.max_bytes;

	/* a tar is a stream, read as it comes */
	if (!z.tar && fstat(in_fd, &st) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "input: %s", strerror(-rc));
		return rc;
	}
	if (!z.tar && !S_ISREG(st.st_mode)) {
		errmsg_set(errmsg, "input is not a regular file (a zip is read by its central directory)");
		return -EINVAL;
	}
	z.buf = malloc(ZN_BLOCK);
	if (!z.buf) {
		rc = -ENOMEM;
		goto out;
	}

	/* The thread's own locale, not setlocale: the daemon's other threads
	 * keep theirs.  Without C.UTF-8 (not expected on glibc >= 2.35 or
	 * Debian) only ASCII names can be read. */
	utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (utf8)
		saved = uselocale(utf8);
	rc = zn_extract(&z, in_fd);
	if (utf8)
		uselocale(saved);
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory");
	if (z.a)
		archive_read_free(z.a);
	if (utf8)
		freelocale(utf8);
	for (size_t i = 0; i < z.n_names; i++)
		free(z.names[i]);
	free(z.names);
	for (size_t i = 0; i < z.n_modes; i++)
		free(z.modes[i].rel);
	free(z.modes);
	free(z.buf);
	return rc;
}

/* Opens dest_dir and extracts into it (z: the kind of archive). */
static int zn_extract_dir(struct zn *z, int in_fd, const char *dest_dir, uint64_t max_bytes,
			  uint64_t max_entries, char **errmsg)
{
	int rc;

	if (errmsg)
		*errmsg = NULL;
	z->rootfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (z->rootfd < 0) {
		rc = -errno;
		errmsg_set(errmsg, "open %s: %s", dest_dir, strerror(-rc));
		return rc;
	}
	rc = zn_extract_into(z, in_fd, max_bytes, max_entries, errmsg);
	close(z->rootfd);
	if (errmsg && *errmsg)
		zn_one_line(*errmsg);
	return rc;
}

int tar_extract(int in_fd, const char *dest_dir, const struct tar_extract_options *opts,
		char **errmsg)
{
	struct zn z = { .tar = true, .topts = opts };
	int rc = zn_extract_dir(&z, in_fd, dest_dir, opts->max_bytes, opts->max_entries, errmsg);
	char drain[4096];
	ssize_t n;

	/* what follows the end marker (padding): read, so the writer never
	 * sees its reader gone after a good archive */
	while (rc == 0 && ((n = read(in_fd, drain, sizeof(drain))) > 0 || (n < 0 && errno == EINTR)))
		;
	return rc;
}

int zip_extract(int in_fd, const char *dest_dir, const struct zipnorm_options *opts,
		char **errmsg)
{
	struct zn z = { 0 };

	return zn_extract_dir(&z, in_fd, dest_dir, opts ? opts->max_bytes : 0,
			      opts ? opts->max_entries : 0, errmsg);
}

int zip_normalize(int in_fd, int out_fd, const char *scratch_dir,
		  const struct zipnorm_options *opts, char **errmsg)
{
	struct ziptree_options zopts = { .jar_order = opts && opts->jar_order, .label = "zip" };
	char *tree = NULL;
	int rc;

	if (errmsg)
		*errmsg = NULL;
	rc = make_temp_dir(scratch_dir, "zipnorm-", &tree);
	if (rc) {
		errmsg_set(errmsg, "cannot make a scratch folder in %s: %s", scratch_dir,
			   strerror(-rc));
		return rc;
	}
	rc = zip_extract(in_fd, tree, opts, errmsg);
	if (rc)
		goto out;
	rc = ziptree_write_opts(tree, out_fd, &zopts, errmsg);
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory");
	{
		int rm = rm_rf(tree);

		if (rm && !rc) {
			rc = rm;
			errmsg_set(errmsg, "cannot remove the scratch folder %s: %s", tree,
				   strerror(-rm));
		}
	}
	free(tree);
	if (errmsg && *errmsg)
		zn_one_line(*errmsg);
	return rc;
}
