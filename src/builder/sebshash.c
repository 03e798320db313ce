/*
 * sebshash.c - SeBS's own code-package hash; see sebshash.h.
 *
 * Not walk.c: the one tree walker visits entries sorted by name and follows
 * symlinks to folders under a containment rule, while SeBS's hash depends on
 * readdir order (Python's os.scandir, glob and os.walk list entries in the
 * order the kernel returns them) and on os.walk's rule for links (a link to
 * a folder is listed but never entered, wherever it points).  Reproducing
 * that needs the plain readdir loop below; it reads names only, never
 * changes anything, and serves this hash alone.
 */
#include "sebshash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/md5.h>
#include <nettle/version.h>

#include "errmsg.h"
#include "fsutil.h"
#include "walk.h"

#define READ_BLOCK (64 * 1024)

struct sebs_hasher {
	struct md5_ctx md5;
	uint8_t *buf; /* READ_BLOCK bytes */
	char **errmsg;
};

/* The patterns of Benchmark.hash_directory, per language: its own files,
 * then the wrapper patterns. */
struct language_patterns {
	const char *language;
	const char *files[4];    /* NULL-terminated: at most 3 */
	const char *wrappers[3]; /* NULL-terminated: at most 2 */
};

static const struct language_patterns LANGUAGES[] = {
	{ "python", { "*.py", "requirements.txt*", NULL }, { "*.py", NULL } },
	{ "nodejs", { "*.js", "package.json", NULL }, { "*.js", NULL } },
	{ "java", { "*.java", "pom.xml", NULL }, { "src", NULL } },
	{ "cpp", { "*.cpp", "*.hpp", "dependencies.json", NULL }, { "*.cpp", "*.hpp", NULL } },
};
/* Hashed for every language, after the language's own patterns. */
static const char *const COMMON_FILES[] = { "*.sh", "*.json", NULL };

static bool pattern_has_magic(const char *pattern)
{
	return strpbrk(pattern, "*?[") != NULL;
}

/* A folder that does not exist contributes nothing (Python's glob and
 * os.walk see no entries); any other failure to list it is an error. */
static bool missing_folder(int err)
{
	return err == ENOENT || err == ENOTDIR;
}

/* Appends the content of the regular file name (in dirfd; path names it in
 * messages) to the hash.  Opened non-blocking so a FIFO cannot hang us. */
static int hash_file(struct sebs_hasher *h, int dirfd, const char *name, const char *path)
{
	struct stat st;
	int rc = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		errmsg_set(h->errmsg, "%s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		errmsg_set(h->errmsg, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		errmsg_set(h->errmsg, "%s: is a folder, SeBS hashes only files here", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		errmsg_set(h->errmsg, "%s: not a regular file", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, h->buf, READ_BLOCK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			errmsg_set(h->errmsg, "%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		md5_update(&h->md5, (size_t)n, h->buf);
	}
out:
	close(fd);
	return rc;
}

struct dir_entry {
	char *name;
	bool is_dir;  /* os.walk's entry.is_dir(): follows links; false on error */
	bool is_link;
};

struct dir_list {
	struct dir_entry *entries;
	size_t n, cap;
};

static void dir_list_free(struct dir_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->entries[i].name);
	free(l->entries);
	memset(l, 0, sizeof(*l));
}

/* Lists the folder open at dfd in readdir order, without "." and "..",
 * through a descriptor of its own (readdir's position is shared by dup'd
 * descriptors).  classify: also tell folders and links apart (os.walk needs
 * it; glob does not). */
static int list_folder(int dfd, const char *path, bool classify, struct dir_list *out,
		       char **errmsg)
{
	int rc = 0;
	DIR *dir = NULL;
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && !(dir = fdopendir(fd)))
		close(fd);
	if (!dir) {
		rc = -errno;
		errmsg_set(errmsg, "%s: cannot list: %s", path, strerror(-rc));
		return rc;
	}
	memset(out, 0, sizeof(*out));
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(dir);
		if (!de) {
			if (errno) {
				rc = -errno;
				errmsg_set(errmsg, "%s: readdir: %s", path, strerror(errno));
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (out->n == out->cap) {
			size_t cap = out->cap ? 2 * out->cap : 16;
			struct dir_entry *e = realloc(out->entries, cap * sizeof(*e));
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			out->entries = e;
			out->cap = cap;
		}
		struct dir_entry *e = &out->entries[out->n];
		memset(e, 0, sizeof(*e));
		e->name = strdup(de->d_name);
		if (!e->name) {
			rc = -ENOMEM;
			break;
		}
		out->n++;
		if (!classify)
			continue;
		struct stat st;
		e->is_link = de->d_type == DT_LNK;
		e->is_dir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN &&
		    fstatat(dirfd(dir), e->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			e->is_link = S_ISLNK(st.st_mode);
			e->is_dir = S_ISDIR(st.st_mode);
		}
		if (e->is_link)
			e->is_dir = fstatat(dirfd(dir), e->name, &st, 0) == 0 && S_ISDIR(st.st_mode);
	}
	closedir(dir);
	if (rc < 0)
		dir_list_free(out);
	return rc;
}

/* Opens folder name in dirfd for listing.  -ENOENT/-ENOTDIR are returned
 * without a message: the caller decides whether a missing folder matters. */
static int open_folder(int dirfd, const char *name, const char *path, char **errmsg)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		if (!missing_folder(err))
			errmsg_set(errmsg, "%s: cannot open folder: %s", path, strerror(err));
		return -err;
	}
	return fd;
}

/* Hashes the folder name (in dirfd) as os.walk(top-down, followlinks=False)
 * hands its files to hash_directory: this folder's files in readdir order,
 * then each subfolder that is not a link, in readdir order, recursively. */
static int hash_walk(struct sebs_hasher *h, int dirfd, const char *name, const char *path,
		     int depth)
{
	struct dir_list list;
	int rc;

	if (depth > WALK_MAX_DEPTH) {
		errmsg_set(h->errmsg, "%s: deeper than %d levels", path, WALK_MAX_DEPTH);
		return -ELOOP;
	}
	/* os.walk lists nothing of a folder it cannot list; one that
	 * vanished since it was seen is just that, any other failure an error */
	int dfd = open_folder(dirfd, name, path, h->errmsg);
	if (dfd < 0)
		return missing_folder(-dfd) ? 0 : dfd;
	rc = list_folder(dfd, path, true, &list, h->errmsg);
	if (rc < 0)
		goto out_fd;
	for (size_t i = 0; i < list.n && rc == 0; i++) {
		if (list.entries[i].is_dir)
			continue;
		char *sub = path_join(path, list.entries[i].name);
		rc = sub ? hash_file(h, dfd, list.entries[i].name, sub) : -ENOMEM;
		free(sub);
	}
	for (size_t i = 0; i < list.n && rc == 0; i++) {
		if (!list.entries[i].is_dir || list.entries[i].is_link)
			continue;
		char *sub = path_join(path, list.entries[i].name);
		rc = sub ? hash_walk(h, dfd, list.entries[i].name, sub, depth + 1) : -ENOMEM;
		free(sub);
	}
	dir_list_free(&list);
out_fd:
	close(dfd);
	return rc;
}

/* One match of a pattern in folder dfd: hashed as a file, or, for the
 * wrappers (walk_folders), walked when it is a folder (os.path.isdir
 * follows links). */
static int hash_match(struct sebs_hasher *h, int dfd, const char *dir, const char *name,
		      bool walk_folders)
{
	struct stat st;
	char *path = path_join(dir, name);
	if (!path)
		return -ENOMEM;
	int rc;
	if (walk_folders && fstatat(dfd, name, &st, 0) == 0 && S_ISDIR(st.st_mode))
		rc = hash_walk(h, dfd, name, path, 0);
	else
		rc = hash_file(h, dfd, name, path);
	free(path);
	return rc;
}

/* glob.glob(dir/pattern) and each match hashed, in glob's order. */
static int hash_pattern(struct sebs_hasher *h, int dfd, const char *dir, const char *pattern,
			bool walk_folders)
{
	struct stat st;
	struct dir_list list;

	if (!pattern_has_magic(pattern)) {
		/* glob's literal case: os.path.lexists, no listing */
		if (fstatat(dfd, pattern, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return 0;
		return hash_match(h, dfd, dir, pattern, walk_folders);
	}
	int rc = list_folder(dfd, dir, false, &list, h->errmsg);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < list.n && rc == 0; i++) {
		const char *name = list.entries[i].name;
		if (name[0] == '.' || fnmatch(pattern, name, 0) != 0)
			continue;
		rc = hash_match(h, dfd, dir, name, walk_folders);
	}
	dir_list_free(&list);
	return rc;
}

/* Every pattern of lp's files then COMMON_FILES, in the folder dir. */
static int hash_sources(struct sebs_hasher *h, const char *dir,
			const struct language_patterns *lp)
{
	int rc = 0;
	int dfd = open_folder(AT_FDCWD, dir, dir, h->errmsg);
	if (dfd < 0)
		return missing_folder(-dfd) ? 0 : dfd;
	for (size_t i = 0; rc == 0 && lp->files[i]; i++)
		rc = hash_pattern(h, dfd, dir, lp->files[i], false);
	for (size_t i = 0; rc == 0 && COMMON_FILES[i]; i++)
		rc = hash_pattern(h, dfd, dir, COMMON_FILES[i], false);
	close(dfd);
	return rc;
}

/* The variant's patch.diff when it exists (following links), else its
 * overlay files; nothing when the variant folder is not a folder. */
static int hash_variant(struct sebs_hasher *h, const char *lang_dir, const char *variant,
			const struct language_patterns *lp)
{
	int rc;
	char *dir = path_join(lang_dir, variant);
	char *patch = dir ? path_join(dir, "patch.diff") : NULL;
	if (!patch) {
		rc = -ENOMEM;
		goto out;
	}
	rc = 0;
	if (!path_is_dir(dir))
		goto out;
	if (path_exists(patch))
		rc = hash_file(h, AT_FDCWD, patch, patch);
	else
		rc = hash_sources(h, dir, lp);
out:
	free(patch);
	free(dir);
	return rc;
}

static int hash_wrappers(struct sebs_hasher *h, const char *sebs_root, const char *platform,
			 const struct language_patterns *lp)
{
	int rc = 0;
	char *dir = str_printf("%s/benchmarks/wrappers/%s/%s", sebs_root, platform, lp->language);
	if (!dir)
		return -ENOMEM;
	int dfd = open_folder(AT_FDCWD, dir, dir, h->errmsg);
	if (dfd < 0) {
		rc = missing_folder(-dfd) ? 0 : dfd;
		goto out;
	}
	for (size_t i = 0; rc == 0 && lp->wrappers[i]; i++)
		rc = hash_pattern(h, dfd, dir, lp->wrappers[i], true);
	close(dfd);
out:
	free(dir);
	return rc;
}

int sebs_hash(const char *sebs_root, const char *platform, const char *language,
	      const char *benchmark_dir, const char *variant,
	      char out[SEBS_HASH_HEX_LEN + 1], char **errmsg)
{
	static const char digits[] = "0123456789abcdef";
	const struct language_patterns *lp = NULL;
	struct sebs_hasher h = { .errmsg = errmsg };
	uint8_t digest[MD5_DIGEST_SIZE];
	char *lang_dir = NULL;
	int rc;

	for (size_t i = 0; i < sizeof(LANGUAGES) / sizeof(*LANGUAGES); i++)
		if (strcmp(LANGUAGES[i].language, language) == 0)
			lp = &LANGUAGES[i];
	if (!lp) {
		errmsg_set(errmsg, "SeBS hashes no sources of language '%s'", language);
		return -EINVAL;
	}
	h.buf = malloc(READ_BLOCK);
	lang_dir = path_join(benchmark_dir, language);
	if (!h.buf || !lang_dir) {
		rc = -ENOMEM;
		goto out;
	}
	md5_init(&h.md5);
	rc = hash_sources(&h, lang_dir, lp);
	if (rc == 0 && variant && strcmp(variant, "default") != 0)
		rc = hash_variant(&h, lang_dir, variant, lp);
	if (rc == 0)
		rc = hash_wrappers(&h, sebs_root, platform, lp);
	if (rc < 0)
		goto out;
#if NETTLE_VERSION_MAJOR >= 4
	md5_digest(&h.md5, digest);
#else
	md5_digest(&h.md5, sizeof(digest), digest);
#endif
	for (int i = 0; i < MD5_DIGEST_SIZE; i++) {
		out[2 * i] = digits[digest[i] >> 4];
		out[2 * i + 1] = digits[digest[i] & 0x0f];
	}
	out[SEBS_HASH_HEX_LEN] = '\0';
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory hashing %s", benchmark_dir);
	free(lang_dir);
	free(h.buf);
	return rc;
}
