/*
 * fsutil.c - small filesystem helpers shared by builder and cache.
 *
 * Everything here is called from build worker threads, so nothing touches the
 * process cwd or umask, and all fds are O_CLOEXEC (a concurrently spawned
 * child must not inherit them).  rm_rf works relative to directory fds with
 * AT_SYMLINK_NOFOLLOW semantics so a symlink inside a tree being deleted can
 * never redirect the deletion elsewhere.
 */
#include "fsutil.h"
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *path_join(const char *a, const char *b)
{
	size_t alen = strlen(a);
	while (alen > 0 && a[alen - 1] == '/')
		alen--;
	while (*b == '/')
		b++;
	/* An empty a means "relative to nothing": do not invent a root. */
	if (a[0] == '\0')
		return strdup(b);
	return str_printf("%.*s/%s", (int)alen, a, b);
}

char *str_printf(const char *fmt, ...)
{
	char *out = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&out, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : out;
}

bool path_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

bool path_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool path_is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int mkdir_p(const char *path, mode_t mode)
{
	if (path[0] == '\0')
		return -ENOENT;
	char *buf = strdup(path);
	if (!buf)
		return -ENOMEM;

	int rc = 0;
	char *p = buf;
	for (;;) {
		while (*p == '/')
			p++;
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		if (*p != '\0' && mkdir(buf, mode) < 0) {
			int e = errno;
			struct stat st;
			/* EEXIST covers races with a concurrent mkdir_p of the same tree. */
			if (e != EEXIST) {
				rc = -e;
				break;
			}
			if (stat(buf, &st) < 0) {
				rc = -errno;
				break;
			}
			if (!S_ISDIR(st.st_mode)) {
				rc = -ENOTDIR;
				break;
			}
		}
		if (!slash)
			break;
		*slash = '/';
		p = slash + 1;
	}
	free(buf);
	return rc;
}

/* Removes the contents of the directory open at dfd (which it consumes). */
static int rm_dir_contents(int dfd)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		int rc = -errno;
		close(dfd);
		return rc;
	}

	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				rc = -errno;
			break;
		}
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;

		if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			rc = -errno;
			break;
		}

		/* O_NOFOLLOW|O_DIRECTORY: a symlink here fails instead of being
		 * entered, so we only ever descend into real directories. */
		int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			rc = -errno;
			break;
		}
		/* pip/npm/Go caches leave read-only dirs behind; make them writable
		 * so their entries can be unlinked. */
		struct stat st;
		if (fstat(sub, &st) == 0 && (st.st_mode & S_IRWXU) != S_IRWXU)
			fchmod(sub, (st.st_mode & 07777) | S_IRWXU);
		rc = rm_dir_contents(sub);
		if (rc < 0)
			break;
		if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
			rc = -errno;
			break;
		}
	}
	closedir(d);
	return rc;
}

int rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;

	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	if ((st.st_mode & S_IRWXU) != S_IRWXU)
		fchmod(dfd, (st.st_mode & 07777) | S_IRWXU);
	int rc = rm_dir_contents(dfd);
	if (rc < 0)
		return rc;
	if (rmdir(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int pread_exact(int fd, void *buf, size_t len, uint64_t off)
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

int copy_fd(int in, int out)
{
	char buf[16384];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		int rc = write_all(out, buf, (size_t)n);
		if (rc < 0)
			return rc;
	}
}

int copy_file(const char *src, const char *dst)
{
	int rc = 0;
	int out = -1;
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;

	struct stat st;
	if (fstat(in, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}

	/* Created private; the real mode is set once the content is in place,
	 * and fchmod (unlike open's mode) ignores the umask.  A symlink at dst
	 * is replaced, never written through. */
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0 && errno == ELOOP && unlink(dst) == 0)
		out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		rc = -errno;
		goto out;
	}
	rc = copy_fd(in, out);
	if (rc < 0)
		goto out;
	if (fchmod(out, st.st_mode & 07777) < 0) {
		rc = -errno;
		goto out;
	}
out:
	if (out >= 0 && close(out) < 0 && rc == 0)
		rc = -errno;
	close(in);
	return rc;
}

/* A folder of the copy: created owner-writable (so it can be filled and later
 * deleted, whatever the source's mode); an existing folder is merged into. */
static int make_copy_dir(const char *dst, mode_t src_mode)
{
	if (mkdir(dst, 0700) < 0) {
		struct stat st;
		if (errno != EEXIST)
			return -errno;
		if (lstat(dst, &st) < 0)
			return -errno;
		return S_ISDIR(st.st_mode) ? 0 : -EEXIST;
	}
	return chmod(dst, (src_mode & 0777) | S_IRWXU) < 0 ? -errno : 0;
}

struct copy_walk {
	const char *src, *dst;
	char **errmsg;
};

static int copy_entry(const struct walk_entry *e, void *ctx)
{
	const struct copy_walk *c = ctx;
	char *s = path_join(c->src, e->path);
	char *d = path_join(c->dst, e->path);
	int rc = (s && d) ? 0 : -ENOMEM;
	/* walk_tree has checked the entry: a folder or a regular file, links
	 * resolved inside the containment folder; opening s follows them. */
	if (rc == 0)
		rc = S_ISDIR(e->st.st_mode) ? make_copy_dir(d, e->st.st_mode) : copy_file(s, d);
	if (rc < 0 && c->errmsg && !*c->errmsg)
		*c->errmsg = str_printf("cannot copy %s to %s: %s", s ? s : e->path, d ? d : "?",
					strerror(-rc));
	free(s);
	free(d);
	return rc;
}

int copy_tree(const char *src, const char *dst, const char *within, char **errmsg)
{
	struct stat st;
	int rc = walk_resolve(src, within ? within : src, &st, errmsg);
	if (rc < 0)
		return rc;
	if (!S_ISDIR(st.st_mode)) {
		rc = copy_file(src, dst);
		if (rc < 0 && errmsg && !*errmsg)
			*errmsg = str_printf("cannot copy %s to %s: %s", src, dst, strerror(-rc));
		return rc;
	}
	rc = make_copy_dir(dst, st.st_mode);
	if (rc < 0) {
		if (errmsg && !*errmsg)
			*errmsg = str_printf("cannot create %s: %s", dst, strerror(-rc));
		return rc;
	}
	struct copy_walk c = { .src = src, .dst = dst, .errmsg = errmsg };
	struct walk_options opts = { .links = WALK_FOLLOW, .within = within ? within : src };
	return walk_tree(src, &opts, copy_entry, &c, errmsg);
}

int read_file(const char *path, char **out, size_t *len_out)
{
	*out = NULL;
	if (len_out)
		*len_out = 0;

	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;

	int rc = 0;
	struct stat st;
	size_t cap = 4096;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
		cap = (size_t)st.st_size + 1;
	size_t len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		/* Keep one byte for the NUL; also lets us detect EOF after the
		 * stat-sized read without another grow. */
		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
	if (len_out)
		*len_out = len;
out:
	free(buf);
	close(fd);
	return rc;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int write_file_atomic(const char *path, const void *data, size_t len)
{
	/* A unique temp name so concurrent writers of one path cannot clobber
	 * each other's half-written temp file; the last rename wins whole. */
	char *tmp = str_printf("%s.tmp.XXXXXX", path);
	char *dir = dir_of(path);
	int rc = 0;
	int fd = -1;
	if (!tmp || !dir) {
		rc = -ENOMEM;
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = write_all(fd, data, len);
	if (rc == 0 && fchmod(fd, 0644) < 0)
		rc = -errno;
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	fd = -1;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		goto out;
	}
	rc = fsync_dir(dir);
out:
	free(tmp);
	free(dir);
	return rc;
}

int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int list_dirfd_sorted(int dfd, char ***names, size_t *count)
{
	*names = NULL;
	*count = 0;

	/* fdopendir takes over the descriptor it is given: hand it a duplicate
	 * so the caller keeps dfd for its *at() calls. */
	int fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	/* A duplicate shares the offset: start from the top whatever was read. */
	rewinddir(d);

	char **list = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				rc = -errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nl = realloc(list, ncap * sizeof(*nl));
			if (!nl) {
				rc = -ENOMEM;
				break;
			}
			list = nl;
			cap = ncap;
		}
		list[n] = strdup(de->d_name);
		if (!list[n]) {
			rc = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (rc < 0) {
		str_list_free(list, n);
		return rc;
	}
	if (n > 1)
		qsort(list, n, sizeof(*list), cmp_names);
	*names = list;
	*count = n;
	return 0;
}

int list_dir_sorted(const char *dir, char ***names, size_t *count)
{
	*names = NULL;
	*count = 0;

	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = list_dirfd_sorted(fd, names, count);
	close(fd);
	return rc;
}

void str_list_free(char **list, size_t count)
{
	if (!list)
		return;
	for (size_t i = 0; i < count; i++)
		free(list[i]);
	free(list);
}

int make_temp_dir(const char *parent, const char *prefix, char **out)
{
	*out = NULL;
	char *tmpl = str_printf("%s/%sXXXXXX", parent, prefix ? prefix : "");
	if (!tmpl)
		return -ENOMEM;
	if (!mkdtemp(tmpl)) {
		int rc = -errno;
		free(tmpl);
		return rc;
	}
	*out = tmpl;
	return 0;
}
