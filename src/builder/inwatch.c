/*
 * inwatch.c - inotify watches over the inputs a walk read (see inwatch.h).
 *
 * Events are not interpreted, only counted: every event read from the queue
 * gets the next sequence number, and its watch remembers the number of its
 * latest event.  A recording trusts nothing that happened after its token,
 * so an event for a name that is no input (another language's folder, an
 * editor's swap file) costs one walk, never a wrong answer.
 */
#include "inwatch.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

/* Everything that changes what a walk of the folder would read.  Not
 * IN_ACCESS/IN_OPEN/IN_CLOSE_NOWRITE: walks and builds read the inputs, and
 * reading must not count as a change. */
#define WATCH_MASK (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | \
		    IN_DELETE_SELF | IN_MOVE_SELF | IN_MOVED_FROM | IN_MOVED_TO)
/* as the kernel's path resolution (MAXSYMLINKS) */
#define MAX_LINKS 40

enum distrust {
	DISTRUST_LIMIT,    /* ENOSPC: fs.inotify.max_user_watches */
	DISTRUST_FS,       /* a filesystem whose remote changes inotify misses */
	DISTRUST_ADD,      /* inotify_add_watch failed otherwise */
	DISTRUST_READ,     /* reading the queue failed */
	N_DISTRUST,
};

struct watch {
	int wd;
	uint64_t changed;  /* seq of its latest event, or when it was set up */
};

struct inwatch {
	pthread_mutex_t lock;
	int fd;
	/* protected by lock: */
	uint64_t seq;           /* events read so far */
	uint64_t overflow_seq;  /* seq when events were last lost */
	struct watch *watches;  /* live watches, sorted by wd */
	size_t n_watches, cap_watches;
	bool logged[N_DISTRUST];
};

struct root {
	char *path;
	bool exists;
	dev_t dev;
	ino_t ino;
};

struct inwatch_deps {
	struct inwatch *w;
	char *scope;
	uint64_t token;
	const char *distrust;   /* why this recording cannot vouch; NULL: it can */
	int *wds;               /* sorted, unique */
	size_t n_wds, cap_wds;
	struct root *roots;
	size_t n_roots, cap_roots;
};

bool inwatch_fs_trusted(int64_t f_type, const char **name)
{
	/* linux/magic.h and the filesystems' sources */
	static const struct {
		int64_t magic;
		const char *name;
	} remote[] = {
		{ 0x6969, "nfs" },           { 0x517B, "smb" },
		{ 0xFF534D42, "cifs" },      { 0xFE534D42, "smb2" },
		{ 0x01021997, "9p" },        { 0x65735546, "fuse" },
		{ 0x00C36400, "ceph" },      { 0x5346414F, "afs" },
		{ 0x6B414653, "afs" },       { 0x73757245, "coda" },
		{ 0x19980122, "orangefs" },  { 0x01161970, "gfs2" },
		{ 0x7461636F, "ocfs2" },     { 0x0BD00BD0, "lustre" },
		{ 0x564C, "ncp" },           { 0x786F4256, "vboxsf" },
	};
	for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
		if ((uint32_t)f_type == (uint32_t)remote[i].magic) {
			if (name)
				*name = remote[i].name;
			return false;
		}
	}
	return true;
}

int inwatch_new(struct inwatch **out)
{
	struct inwatch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		int rc = -errno;
		free(w);
		return rc;
	}
	pthread_mutex_init(&w->lock, NULL);
	*out = w;
	return 0;
}

void inwatch_free(struct inwatch *w)
{
	if (!w)
		return;
	close(w->fd);
	pthread_mutex_destroy(&w->lock);
	free(w->watches);
	free(w);
}

/* Logs the first distrust of each kind; caller holds w->lock. */
static void distrust_once_locked(struct inwatch *w, enum distrust kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void distrust_once_locked(struct inwatch *w, enum distrust kind, const char *fmt, ...)
{
	if (w->logged[kind])
		return;
	w->logged[kind] = true;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warn("input watch: %s", line);
}

static struct watch *find_watch_locked(struct inwatch *w, int wd, size_t *at)
{
	size_t lo = 0, hi = w->n_watches;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (w->watches[mid].wd == wd)
			return &w->watches[mid];
		if (w->watches[mid].wd < wd)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at)
		*at = lo;
	return NULL;
}

/* Reads every queued event; caller holds w->lock. */
static void drain_locked(struct inwatch *w)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			/* events may be lost: nothing recorded so far can vouch */
			distrust_once_locked(w, DISTRUST_READ, "cannot read the inotify queue: %s;"
					     " inputs are walked at every check", strerror(errno));
			w->overflow_seq = ++w->seq;
		}
		if (n <= 0)
			return;
		for (ssize_t off = 0; off < n;) {
			const struct inotify_event *ev = (const void *)(buf + off);
			off += (ssize_t)(sizeof(*ev) + ev->len);
			w->seq++;
			if (ev->mask & IN_Q_OVERFLOW) {
				w->overflow_seq = w->seq;
				continue;
			}
			size_t at;
			struct watch *x = find_watch_locked(w, ev->wd, &at);
			if (!x)
				continue;
			if (ev->mask & IN_IGNORED) {
				/* the watch is gone (folder deleted, filesystem
				 * unmounted): recordings that had it find it
				 * missing, which no longer vouches */
				size_t i = (size_t)(x - w->watches);
				memmove(x, x + 1, (w->n_watches - i - 1) * sizeof(*x));
				w->n_watches--;
			} else {
				x->changed = w->seq;
			}
		}
	}
}

static void deps_distrust(struct inwatch_deps *d, const char *why)
{
	if (!d->distrust)
		d->distrust = why;
}

static void deps_add_wd(struct inwatch_deps *d, int wd)
{
	size_t lo = 0, hi = d->n_wds;
	if (d->n_wds && d->wds[d->n_wds - 1] < wd) {
		lo = d->n_wds;  /* new watches come in increasing order */
	} else {
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (d->wds[mid] == wd)
				return;
			if (d->wds[mid] < wd)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	if (d->n_wds == d->cap_wds) {
		size_t cap = d->cap_wds ? d->cap_wds * 2 : 16;
		int *v = realloc(d->wds, cap * sizeof(*v));
		if (!v) {
			deps_distrust(d, "out of memory");
			return;
		}
		d->wds = v;
		d->cap_wds = cap;
	}
	memmove(d->wds + lo + 1, d->wds + lo, (d->n_wds - lo) * sizeof(*d->wds));
	d->wds[lo] = wd;
	d->n_wds++;
}

/* Reads fs.inotify.max_user_watches for the message; -1 when unknown. */
static long max_user_watches(void)
{
	long value = -1;
	FILE *f = fopen("/proc/sys/fs/inotify/max_user_watches", "re");
	if (f) {
		if (fscanf(f, "%ld", &value) != 1)
			value = -1;
		fclose(f);
	}
	return value;
}

/* Watches the folder (only_dir) or file at path (symlinks followed) for d. */
static void add_watch(struct inwatch_deps *d, const char *path, bool only_dir)
{
	struct inwatch *w = d->w;
	struct statfs sfs;
	const char *fs_name = NULL;
	bool remote = statfs(path, &sfs) == 0 && !inwatch_fs_trusted((int64_t)sfs.f_type, &fs_name);
	long limit = -1;
	pthread_mutex_lock(&w->lock);
	if (remote) {
		distrust_once_locked(w, DISTRUST_FS, "%s is on %s, where inotify does not see every"
				     " change: packages with inputs there are checked by walking"
				     " their inputs at every open", path, fs_name);
		deps_distrust(d, "inputs on a filesystem where inotify misses changes");
		goto out;
	}
	int wd = inotify_add_watch(w->fd, path, WATCH_MASK | (only_dir ? IN_ONLYDIR : 0));
	if (wd < 0) {
		int err = errno;
		if (err == ENOSPC) {
			pthread_mutex_unlock(&w->lock);
			limit = max_user_watches(); /* no file I/O under the lock */
			pthread_mutex_lock(&w->lock);
			distrust_once_locked(w, DISTRUST_LIMIT, "cannot watch %s: the limit"
					     " fs.inotify.max_user_watches (%ld) is reached; packages"
					     " whose inputs are not all watched are checked by walking"
					     " their inputs at every open (raise the limit with sysctl)",
					     path, limit);
			deps_distrust(d, "a folder could not be watched (fs.inotify.max_user_watches)");
		} else if (err == ENOENT || err == ENOTDIR) {
			/* the tree changed under the walk; the next check walks */
			deps_distrust(d, "a folder changed while it was walked");
		} else {
			distrust_once_locked(w, DISTRUST_ADD, "cannot watch %s: %s; packages whose"
					     " inputs are not all watched are checked by walking their"
					     " inputs at every open", path, strerror(err));
			deps_distrust(d, "a folder could not be watched");
		}
		goto out;
	}
	size_t at;
	if (!find_watch_locked(w, wd, &at)) {
		if (w->n_watches == w->cap_watches) {
			size_t cap = w->cap_watches ? w->cap_watches * 2 : 64;
			struct watch *v = realloc(w->watches, cap * sizeof(*v));
			if (!v) {
				deps_distrust(d, "out of memory");
				goto out;
			}
			w->watches = v;
			w->cap_watches = cap;
		}
		memmove(w->watches + at + 1, w->watches + at, (w->n_watches - at) * sizeof(*w->watches));
		/* A new watch counts as changed now: a recording older than
		 * this moment that named a previous watch with the same number
		 * (its IN_IGNORED read since) must not trust it. */
		w->watches[at] = (struct watch){ .wd = wd, .changed = w->seq };
		w->n_watches++;
	}
	deps_add_wd(d, wd);
out:
	pthread_mutex_unlock(&w->lock);
}

static void watch_dir(struct inwatch_deps *d, const char *path)
{
	add_watch(d, path, true);
}

/* "/a/b" + "c" -> "/a/b/c"; "/" + "c" -> "/c". */
static char *child_path(const char *dir, const char *name, size_t name_len)
{
	return str_printf("%s/%.*s", strcmp(dir, "/") == 0 ? "" : dir, (int)name_len, name);
}

/* Cuts the last component of a physical path ("/a/b" -> "/a", "/a" -> "/"). */
static void to_parent(char *dir)
{
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
}

/* Resolves text from the physical folder start as the kernel would, and
 * watches every folder in which a name is looked up on the way (through
 * nested links), and the final target when it is a folder. */
static void watch_resolution(struct inwatch_deps *d, const char *start, const char *text)
{
	char *cur = strdup(start);
	char *todo = strdup(text);
	const char *p = todo;
	unsigned links = 0;
	if (!cur || !todo) {
		deps_distrust(d, "out of memory");
		goto out;
	}
	for (;;) {
		while (*p == '/')
			p++;
		size_t len = strcspn(p, "/");
		if (len == 0)
			break;
		const char *name = p;
		p += len;
		if (len == 1 && name[0] == '.')
			continue;
		watch_dir(d, cur);
		if (len == 2 && name[0] == '.' && name[1] == '.') {
			to_parent(cur);
			continue;
		}
		char *next = child_path(cur, name, len);
		struct stat st;
		if (!next) {
			deps_distrust(d, "out of memory");
			break;
		}
		if (lstat(next, &st) < 0) {
			/* dangling: the walk fails on it anyway */
			deps_distrust(d, "a symlink could not be resolved");
			free(next);
			break;
		}
		if (!S_ISLNK(st.st_mode)) {
			free(cur);
			cur = next;
			continue;
		}
		char target[PATH_MAX];
		ssize_t n = ++links > MAX_LINKS ? -1 : readlink(next, target, sizeof(target) - 1);
		free(next);
		if (n <= 0) {
			deps_distrust(d, "a symlink could not be resolved");
			break;
		}
		target[n] = '\0';
		char *rest = str_printf("%s/%s", target, p);
		if (!rest) {
			deps_distrust(d, "out of memory");
			break;
		}
		free(todo);
		todo = rest;
		p = todo;
		if (target[0] == '/')
			cur[0] = '/', cur[1] = '\0';
	}
	struct stat st;
	if (!d->distrust && stat(cur, &st) == 0 && S_ISDIR(st.st_mode))
		watch_dir(d, cur);
out:
	free(cur);
	free(todo);
}

/* Watches what path's resolution depends on: from its physical folder. */
static void watch_path(struct inwatch_deps *d, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : NULL;
	char *real = dir ? realpath(dir, NULL) : NULL;
	if (real)
		watch_resolution(d, real, slash + 1);
	else
		deps_distrust(d, dir ? "a folder changed while it was walked" : "out of memory");
	free(real);
	free(dir);
}

static void observe_root(struct inwatch_deps *d, const char *path)
{
	struct stat st;
	bool exists = stat(path, &st) == 0;
	if (!exists && errno != ENOENT && errno != ENOTDIR) {
		deps_distrust(d, "an input folder could not be looked at");
		return;
	}
	if (d->n_roots == d->cap_roots) {
		size_t cap = d->cap_roots ? d->cap_roots * 2 : 4;
		struct root *v = realloc(d->roots, cap * sizeof(*v));
		if (!v) {
			deps_distrust(d, "out of memory");
			return;
		}
		d->roots = v;
		d->cap_roots = cap;
	}
	struct root *r = &d->roots[d->n_roots];
	*r = (struct root){ .path = strdup(path), .exists = exists,
			    .dev = exists ? st.st_dev : 0, .ino = exists ? st.st_ino : 0 };
	if (!r->path) {
		deps_distrust(d, "out of memory");
		return;
	}
	d->n_roots++;
	/* a missing root is seen when it appears by the stat of every check */
	if (exists && S_ISDIR(st.st_mode))
		watch_dir(d, path);
	else if (exists)
		watch_path(d, path);
}

void inwatch_observe(void *ctx, enum input_observed what, const char *path)
{
	struct inwatch_deps *d = ctx;
	switch (what) {
	case INPUT_ROOT:
		observe_root(d, path);
		break;
	case INPUT_DIR:
		watch_dir(d, path);
		break;
	case INPUT_LINK:
		watch_path(d, path);
		break;
	case INPUT_SHARED_FILE:
		/* a write through another hard link notifies that link's
		 * folder, not ours; a watch on the file itself sees it */
		add_watch(d, path, false);
		break;
	}
}

struct inwatch_deps *inwatch_begin(struct inwatch *w, const char *scope)
{
	struct inwatch_deps *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->w = w;
	d->scope = strdup(scope ? scope : "");
	if (!d->scope) {
		free(d);
		return NULL;
	}
	pthread_mutex_lock(&w->lock);
	/* what is queued now happened before the walk, which sees it */
	drain_locked(w);
	d->token = w->seq;
	pthread_mutex_unlock(&w->lock);
	return d;
}

static bool events_after_locked(struct inwatch *w, const struct inwatch_deps *d,
				const char **why)
{
	if (w->overflow_seq > d->token) {
		*why = "inotify events were lost (queue overflow)";
		return true;
	}
	if (w->seq == d->token)
		return false;  /* no event at all since */
	for (size_t i = 0; i < d->n_wds; i++) {
		const struct watch *x = find_watch_locked(w, d->wds[i], NULL);
		if (!x) {
			*why = "a watched folder was deleted";
			return true;
		}
		if (x->changed > d->token) {
			*why = "a watched folder changed";
			return true;
		}
	}
	return false;
}

bool inwatch_unchanged(const struct inwatch_deps *d, const char *scope, const char **why)
{
	const char *reason = NULL;
	if (!d)
		reason = "no walk was watched";
	else if (d->distrust)
		reason = d->distrust;
	else if (strcmp(d->scope, scope ? scope : "") != 0)
		reason = "the benchmark moved";
	if (!reason) {
		pthread_mutex_lock(&d->w->lock);
		drain_locked(d->w);
		events_after_locked(d->w, d, &reason);
		pthread_mutex_unlock(&d->w->lock);
	}
	for (size_t i = 0; !reason && i < d->n_roots; i++) {
		const struct root *r = &d->roots[i];
		struct stat st;
		bool exists = stat(r->path, &st) == 0;
		if (exists != r->exists || (exists && (st.st_dev != r->dev || st.st_ino != r->ino)))
			reason = "an input folder was replaced, created or removed";
	}
	if (why)
		*why = reason;
	return !reason;
}

void inwatch_deps_free(struct inwatch_deps *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_roots; i++)
		free(d->roots[i].path);
	free(d->roots);
	free(d->wds);
	free(d->scope);
	free(d);
}
