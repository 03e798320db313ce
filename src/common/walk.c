/*
 * walk.c - the one tree walker (see walk.h for the policy).
 *
 * Directories are opened relative to their parent's descriptor, so the walk
 * holds one descriptor per level (at most WALK_MAX_DEPTH) and never rebuilds
 * long paths for the kernel.  Next to each directory the walker keeps its
 * physical path (symlinks resolved): realpath() of "<physical dir>/<link>"
 * is what a link resolves to, and the containment tests compare physical
 * paths, so a link reached through another link is judged by where it
 * really leads.
 */
#include "walk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errmsg.h"
#include "fsutil.h"

struct walk_dir_id {
	dev_t dev;
	ino_t ino;
	const char *path;  /* relative to the root, for messages */
};

struct walker {
	const struct walk_options *opts;
	walk_visit_fn visit;
	void *ctx;
	char **errmsg;
	const char *label;        /* messages name entries "<label>/<path>" */
	char *root_real;          /* the root, symlinks resolved */
	char *within_real;        /* WALK_FOLLOW: the containment folder, resolved */
	const char *within_shown; /* ... as messages name it */
	struct walk_dir_id dirs[WALK_MAX_DEPTH + 2]; /* the current path, root first */
	int n_dirs;
	bool stop;
};

/* True when path is dir or lies below it; both are resolved paths. */
static bool inside(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool walk_link_stays_inside(int depth, const char *target)
{
	if (target[0] == '/')
		return false;
	for (const char *p = target; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (depth == 0)
				return false;
			depth--;
		} else if (len > 0 && !(len == 1 && p[0] == '.')) {
			depth++;
		}
		p += len;
		while (*p == '/')
			p++;
	}
	return true;
}

static const char *type_name(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	return "of an unknown file type";
}

/* A file type the policy refuses: the entry shown (a symlink to it when
 * link is not NULL) has mode. */
static int bad_type(char **errmsg, const char *shown, const char *link, mode_t mode)
{
	if (link)
		return errmsg_fail(errmsg, -EINVAL, "symlink %s -> %s leads to %s: only regular files, folders and symlinks are allowed",
			       shown, link, type_name(mode));
	return errmsg_fail(errmsg, -EINVAL, "%s is %s: only regular files, folders and symlinks are allowed",
		       shown, type_name(mode));
}

/* The target text of the symlink dfd/name (lstat size as a hint); *out malloc'd. */
static int read_link(int dfd, const char *name, off_t size_hint, char **out)
{
	size_t cap = size_hint > 0 ? (size_t)size_hint + 1 : PATH_MAX;
	*out = NULL;
	for (;;) {
		char *buf = malloc(cap);
		if (!buf)
			return -ENOMEM;
		ssize_t n = readlinkat(dfd, name, buf, cap);
		if (n < 0) {
			int rc = -errno;
			free(buf);
			return rc;
		}
		if ((size_t)n < cap) {
			buf[n] = '\0';
			*out = buf;
			return 0;
		}
		/* the link was replaced by a longer one since the lstat */
		free(buf);
		cap *= 2;
	}
}

/* The WALK_FOLLOW rule for the path at (physical), shown as shown, whose own
 * symlink text is link (NULL when shown is not itself a link): resolve it
 * and require the result inside within_real.  *st gets the target's stat,
 * *resolved (may be NULL) the resolved path. */
static int resolve_inside(const char *at, const char *shown, const char *link,
			  const char *within_real, const char *within_shown, struct stat *st,
			  char **resolved, char **errmsg)
{
	char *res = realpath(at, NULL);
	int rc = 0;
	if (!res) {
		rc = -errno;
		if (link && rc == -ENOENT)
			return errmsg_fail(errmsg, rc, "symlink %s -> %s is dangling", shown, link);
		if (rc == -ELOOP && link)
			return errmsg_fail(errmsg, rc, "symlink %s -> %s: a loop of symlinks", shown, link);
		if (rc == -ELOOP)
			return errmsg_fail(errmsg, rc, "%s: a loop of symlinks", shown);
		if (link)
			return errmsg_fail(errmsg, rc, "cannot resolve symlink %s -> %s: %s", shown, link,
				       strerror(-rc));
		return errmsg_fail(errmsg, rc, "cannot resolve %s: %s", shown, strerror(-rc));
	}
	if (!inside(res, within_real)) {
		if (link && strcmp(link, res) == 0)
			rc = errmsg_fail(errmsg, -EPERM, "symlink %s -> %s points outside %s", shown,
				     link, within_shown);
		else if (link)
			rc = errmsg_fail(errmsg, -EPERM, "symlink %s -> %s points outside %s (it resolves to %s)",
				     shown, link, within_shown, res);
		else
			rc = errmsg_fail(errmsg, -EPERM, "%s resolves to %s, outside %s", shown, res,
				     within_shown);
	} else if (stat(res, st) < 0) {
		rc = errmsg_fail(errmsg, -errno, "cannot stat %s (%s): %s", shown, res, strerror(errno));
	}
	if (rc == 0 && resolved)
		*resolved = res;
	else
		free(res);
	return rc;
}

/* The WALK_KEEP rule for the link at (physical) with target text link, in a
 * folder depth levels below the root.  The lexical test alone trusts that
 * "x/.." undoes "x", which is false when x is itself a link ("self/../y"
 * with self -> "." climbs out), so the target is then followed the way the
 * kernel would, one name at a time, and every folder it passes through must
 * lie inside the root: outside it, the names are those of whatever machine
 * unpacks the package, even when the path comes back in by name or its
 * last name is missing here (a dangling link stops at its first missing
 * name, which is fine inside the root). */
static int keep_inside(struct walker *w, const char *at, const char *shown, const char *link,
		       int depth)
{
	if (!walk_link_stays_inside(depth, link))
		return errmsg_fail(w->errmsg, -EPERM, "symlink %s -> %s points outside %s", shown, link,
			       w->label);
	const char *slash = strrchr(at, '/');
	char *cur = strndup(at, slash > at ? (size_t)(slash - at) : 1);
	int rc = cur ? 0 : errmsg_fail(w->errmsg, -ENOMEM, "out of memory");
	for (const char *p = link; rc == 0 && *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			char *up = strrchr(cur, '/');
			up[up == cur ? 1 : 0] = '\0';
		} else if (len > 0 && !(len == 1 && p[0] == '.')) {
			char *next = str_printf("%s/%.*s", strcmp(cur, "/") ? cur : "", (int)len, p);
			char *res = next ? realpath(next, NULL) : NULL;
			int err = errno;
			free(next);
			if (!next)
				rc = errmsg_fail(w->errmsg, -ENOMEM, "out of memory");
			else if (!res && (err == ENOENT || err == ENOTDIR))
				break; /* dangling from here on, but inside so far */
			else if (!res && err == ELOOP)
				rc = errmsg_fail(w->errmsg, -ELOOP, "symlink %s -> %s: a loop of symlinks",
					     shown, link);
			else if (!res)
				rc = errmsg_fail(w->errmsg, -err, "cannot resolve symlink %s -> %s: %s",
					     shown, link, strerror(err));
			if (!res)
				break;
			free(cur);
			cur = res;
		}
		p += len;
		while (*p == '/')
			p++;
		if (!inside(cur, w->root_real))
			rc = errmsg_fail(w->errmsg, -EPERM, "symlink %s -> %s points outside %s (it %s %s)",
				     shown, link, w->label, *p ? "passes through" : "resolves to", cur);
	}
	free(cur);
	return rc;
}

static int walk_dir(struct walker *w, int dfd, const char *rel, const char *real, int depth);

/* Opens the folder dfd/name (already checked) and walks it. */
static int descend(struct walker *w, const struct walk_entry *e, const char *real, const char *shown)
{
	if (e->depth + 1 > WALK_MAX_DEPTH)
		return errmsg_fail(w->errmsg, -ELOOP, "%s: more than %d levels of folders", shown,
			       WALK_MAX_DEPTH);
	int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC |
		    (w->opts->links == WALK_KEEP ? O_NOFOLLOW : 0);
	int sub = openat(e->dirfd, e->name, flags);
	if (sub < 0) {
		if (errno == ENOENT)
			return 0; /* vanished */
		return errmsg_fail(w->errmsg, -errno, "cannot open %s: %s", shown, strerror(errno));
	}
	struct stat st;
	int rc = 0;
	if (fstat(sub, &st) < 0) {
		rc = errmsg_fail(w->errmsg, -errno, "cannot stat %s: %s", shown, strerror(errno));
		goto out;
	}
	for (int i = 0; i < w->n_dirs; i++) {
		if (w->dirs[i].dev != st.st_dev || w->dirs[i].ino != st.st_ino)
			continue;
		const char *anc = *w->dirs[i].path ? w->dirs[i].path : ".";
		if (e->link)
			rc = errmsg_fail(w->errmsg, -ELOOP, "symlink %s -> %s is a loop: it leads back to %s/%s",
				     shown, e->link, w->label, anc);
		else
			rc = errmsg_fail(w->errmsg, -ELOOP, "%s is a loop: the same folder as %s/%s", shown,
				     w->label, anc);
		goto out;
	}
	w->dirs[w->n_dirs++] = (struct walk_dir_id){ st.st_dev, st.st_ino, e->path };
	rc = walk_dir(w, sub, e->path, real, e->depth + 1);
	w->n_dirs--;
out:
	close(sub);
	return rc;
}

/* Checks, visits and (for a folder) walks the entry dfd/name. */
static int visit_entry(struct walker *w, int dfd, const char *rel, const char *real,
		      const char *name, int depth)
{
	struct walk_entry e = { .name = name, .dirfd = dfd, .depth = depth };
	char *path = *rel ? str_printf("%s/%s", rel, name) : strdup(name);
	char *shown = path ? str_printf("%s/%s", w->label, path) : NULL;
	char *at = path_join(real, name);
	char *link = NULL, *resolved = NULL;
	int rc = 0;
	if (!path || !shown || !at) {
		rc = errmsg_fail(w->errmsg, -ENOMEM, "out of memory");
		goto out;
	}
	e.path = path;
	if (fstatat(dfd, name, &e.st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT) /* ENOENT: vanished since the readdir */
			rc = errmsg_fail(w->errmsg, -errno, "cannot stat %s: %s", shown, strerror(errno));
		goto out;
	}
	if (S_ISLNK(e.st.st_mode)) {
		rc = read_link(dfd, name, e.st.st_size, &link);
		if (rc == -ENOENT) {
			rc = 0;
			goto out;
		}
		if (rc < 0) {
			errmsg_fail(w->errmsg, rc, "cannot read symlink %s: %s", shown, strerror(-rc));
			goto out;
		}
		e.link = link;
		if (w->opts->links == WALK_FOLLOW)
			rc = resolve_inside(at, shown, link, w->within_real, w->within_shown, &e.st,
					    &resolved, w->errmsg);
		else
			rc = keep_inside(w, at, shown, link, depth);
		if (rc < 0)
			goto out;
	}
	if (!S_ISREG(e.st.st_mode) && !S_ISDIR(e.st.st_mode) && !S_ISLNK(e.st.st_mode)) {
		rc = bad_type(w->errmsg, shown, e.link, e.st.st_mode);
		goto out;
	}

	rc = w->visit(&e, w->ctx);
	if (rc < 0) {
		errmsg_fail(w->errmsg, rc, "%s: %s", shown, strerror(-rc));
	} else if (rc == WALK_STOP) {
		w->stop = true;
		rc = 0;
	} else if (rc == WALK_PRUNE) {
		rc = 0;
	} else if (S_ISDIR(e.st.st_mode)) {
		rc = descend(w, &e, resolved ? resolved : at, shown);
	}
out:
	free(resolved);
	free(link);
	free(at);
	free(shown);
	free(path);
	return rc;
}

static bool skipped(const struct walker *w, const char *name, int depth)
{
	const char *const *skip = w->opts->skip_top;
	if (depth > 0 || !skip)
		return false;
	for (; *skip; skip++)
		if (strcmp(*skip, name) == 0)
			return true;
	return false;
}

/* Walks the entries of the folder open at dfd: rel (relative to the root,
 * "" for the root), real (its physical path). */
static int walk_dir(struct walker *w, int dfd, const char *rel, const char *real, int depth)
{
	char **names = NULL;
	size_t count = 0;
	int rc = list_dirfd_sorted(dfd, &names, &count);
	if (rc < 0)
		return errmsg_fail(w->errmsg, rc, "cannot list %s%s%s: %s", w->label, *rel ? "/" : "", rel,
			       strerror(-rc));
	for (size_t i = 0; rc == 0 && !w->stop && i < count; i++)
		if (!skipped(w, names[i], depth))
			rc = visit_entry(w, dfd, rel, real, names[i], depth);
	str_list_free(names, count);
	return rc;
}

int walk_tree(const char *root, const struct walk_options *opts, walk_visit_fn visit,
	      void *ctx, char **errmsg)
{
	struct walker w = {
		.opts = opts, .visit = visit, .ctx = ctx, .errmsg = errmsg,
		.label = opts->label ? opts->label : root,
	};
	struct stat st;
	int dfd = -1, rc = 0;

	w.root_real = realpath(root, NULL);
	if (!w.root_real) {
		rc = -errno;
		if (rc == -ENOENT && opts->missing_ok)
			return 0;
		return errmsg_fail(errmsg, rc, "cannot resolve %s: %s", w.label, strerror(-rc));
	}
	if (opts->links == WALK_FOLLOW) {
		const char *within = opts->within ? opts->within : root;
		w.within_shown = opts->within ? opts->within : w.label;
		w.within_real = realpath(within, NULL);
		if (!w.within_real) {
			rc = errmsg_fail(errmsg, -errno, "cannot resolve %s: %s", w.within_shown,
				     strerror(errno));
			goto out;
		}
		if (!inside(w.root_real, w.within_real)) {
			rc = errmsg_fail(errmsg, -EPERM, "%s resolves to %s, outside %s", w.label,
				     w.root_real, w.within_shown);
			goto out;
		}
	}
	dfd = open(w.root_real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = errmsg_fail(errmsg, -errno, "cannot open %s: %s", w.label, strerror(errno));
		goto out;
	}
	if (fstat(dfd, &st) < 0) {
		rc = errmsg_fail(errmsg, -errno, "cannot stat %s: %s", w.label, strerror(errno));
		goto out;
	}
	w.dirs[w.n_dirs++] = (struct walk_dir_id){ st.st_dev, st.st_ino, "" };
	rc = walk_dir(&w, dfd, "", w.root_real, 0);
out:
	if (dfd >= 0)
		close(dfd);
	free(w.root_real);
	free(w.within_real);
	return rc;
}

int walk_resolve(const char *path, const char *within, struct stat *st, char **errmsg)
{
	struct stat lst, tst;
	char *link = NULL, *within_real = NULL;
	int rc = 0;

	if (lstat(path, &lst) < 0)
		return errmsg_fail(errmsg, -errno, "%s: %s", path, strerror(errno));
	if (S_ISLNK(lst.st_mode) && (rc = read_link(AT_FDCWD, path, lst.st_size, &link)) < 0)
		return errmsg_fail(errmsg, rc, "cannot read symlink %s: %s", path, strerror(-rc));
	within_real = realpath(within, NULL);
	if (!within_real)
		rc = errmsg_fail(errmsg, -errno, "cannot resolve %s: %s", within, strerror(errno));
	else
		rc = resolve_inside(path, path, link, within_real, within, &tst, NULL, errmsg);
	if (rc == 0 && !S_ISREG(tst.st_mode) && !S_ISDIR(tst.st_mode))
		rc = bad_type(errmsg, path, link, tst.st_mode);
	if (rc == 0 && st)
		*st = tst;
	free(link);
	free(within_real);
	return rc;
}
