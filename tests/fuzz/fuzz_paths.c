/*
 * fuzz_paths.c - names and paths that come from untrusted text.
 *
 * Input: one control byte, then NUL-separated pieces: text \0 other.
 *  - The symlink rule of WALK_KEEP (walk.h): the work folder that becomes a
 *    zip or a build context holds whatever pip, npm or a benchmark's
 *    package.sh left in it, links included.  A link with target `text` is
 *    made in a small fixed tree (at depth control % 3) that already holds
 *    links to the root and to a subfolder; when walk_tree accepts the tree,
 *    the link must not pass outside it at any step: outside the root the
 *    names are those of the machine that unpacks the package.  The target is
 *    followed on disk up to its first missing name (where a dangling link
 *    stops).
 *  - docker_split_ref(text): the repository and tag of an image reference
 *    (from systems.json's base images and docker_repository) put back
 *    together give the reference.
 *  - path_join(text, other): exactly one '/' between the two parts.
 * fs.c's name -> node lookup is static inside the FUSE layer and is not
 * reachable here; the names it serves are checked by fuzz_catalog.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "docker_int.h"
#include "fsutil.h"
#include "fuzz_common.h"
#include "walk.h"

static char root[PATH_MAX], root_real[PATH_MAX];
static const char *const link_dirs[] = { "", "/d", "/d/e" };

static void make_tree(void)
{
	char path[PATH_MAX + 32];
	char *real;

	snprintf(root, sizeof(root), "%s/tree", fuzz_scratch_dir());
	snprintf(path, sizeof(path), "%s/d/e", root);
	FUZZ_CHECK(mkdir_p(path, 0755) == 0, "mkdir %s", path);
	snprintf(path, sizeof(path), "%s/d/e/f", root);
	fuzz_write_file(path, "f\n", 2);
	snprintf(path, sizeof(path), "%s/top", root);
	fuzz_write_file(path, "top\n", 4);
	/* links that are fine on their own: to the root and down the tree */
	snprintf(path, sizeof(path), "%s/self", root);
	FUZZ_CHECK(symlink(".", path) == 0, "symlink %s", path);
	snprintf(path, sizeof(path), "%s/down", root);
	FUZZ_CHECK(symlink("d/e", path) == 0, "symlink %s", path);
	snprintf(path, sizeof(path), "%s/d/up", root);
	FUZZ_CHECK(symlink("..", path) == 0, "symlink %s", path);
	real = realpath(root, NULL);
	FUZZ_CHECK(real != NULL, "realpath %s", root);
	snprintf(root_real, sizeof(root_real), "%s", real);
	free(real);
}

static bool inside_root(const char *path)
{
	size_t n = strlen(root_real);

	return strncmp(path, root_real, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Follows target from folder dir (a resolved path) the way the kernel
 * does, up to its first missing name; false when a step lies outside the
 * root (*where: that step) or the path cannot be followed (a loop). */
static bool steps_inside(const char *dir, const char *target, char *where, size_t wherelen)
{
	snprintf(where, wherelen, "%s", target[0] == '/' ? "/" : dir);
	for (const char *p = target; *p;) {
		size_t len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.') {
			char *slash = strrchr(where, '/');

			slash[slash == where ? 1 : 0] = '\0';
		} else if (len > 0 && !(len == 1 && p[0] == '.')) {
			char *next = str_printf("%s/%.*s", strcmp(where, "/") ? where : "", (int)len, p);
			char *real;
			int err;

			FUZZ_CHECK(next != NULL, "out of memory");
			real = realpath(next, NULL);
			err = errno;
			free(next);
			if (!real)
				return err == ENOENT || err == ENOTDIR;
			snprintf(where, wherelen, "%s", real);
			free(real);
		}
		if (!inside_root(where))
			return false;
		p += len;
		while (*p == '/')
			p++;
	}
	return true;
}

static int visit_nothing(const struct walk_entry *e, void *ctx)
{
	(void)e;
	(void)ctx;
	return 0;
}

static void check_link(const char *target, unsigned depth)
{
	char link[PATH_MAX + 64], dir[PATH_MAX + 32], where[PATH_MAX * 2];
	struct walk_options opts = { .links = WALK_KEEP, .label = "work" };
	char *errmsg = NULL;
	int rc;

	if (!*target || strlen(target) >= PATH_MAX)
		return;
	snprintf(dir, sizeof(dir), "%s%s", root_real, link_dirs[depth]);
	snprintf(link, sizeof(link), "%s/L", dir);
	FUZZ_CHECK(symlink(target, link) == 0, "symlink %s: %s", link, strerror(errno));
	rc = walk_tree(root, &opts, visit_nothing, NULL, &errmsg);
	if (rc == 0)
		FUZZ_CHECK(steps_inside(dir, target, where, sizeof(where)),
			   "walk kept the link %s -> %s, which passes through %s outside %s", link,
			   target, where, root_real);
	FUZZ_CHECK(rc == 0 || errmsg != NULL, "walk failed (%d) without a message", rc);
	FUZZ_CHECK(unlink(link) == 0, "unlink %s", link);
	free(errmsg);
}

static void check_split_ref(const char *ref)
{
	char *repo = NULL, *tag = NULL;
	int rc = docker_split_ref(ref, &repo, &tag);

	if (rc != 0) {
		FUZZ_CHECK(rc == -EINVAL && !repo && !tag, "split_ref failed with %d", rc);
		return;
	}
	FUZZ_CHECK(*repo && *tag, "empty repository or tag from \"%s\"", ref);
	size_t rl = strlen(repo);

	FUZZ_CHECK(strncmp(ref, repo, rl) == 0, "repository \"%s\" is not a prefix of \"%s\"", repo,
		   ref);
	if (ref[rl] == '\0') {
		FUZZ_CHECK(strcmp(tag, "latest") == 0, "\"%s\" without a tag gave tag \"%s\"", ref, tag);
	} else {
		FUZZ_CHECK(ref[rl] == ':' || ref[rl] == '@', "\"%s\" split at '%c'", ref, ref[rl]);
		FUZZ_CHECK(strcmp(ref + rl + 1, tag) == 0, "\"%s\" gave tag \"%s\"", ref, tag);
		if (ref[rl] == ':')
			FUZZ_CHECK(!strchr(tag, '/') && !strchr(ref, '@'),
				   "tag \"%s\" of \"%s\" holds a '/' or the reference a digest", tag,
				   ref);
		else
			FUZZ_CHECK(!strchr(repo, '@'), "repository \"%s\" holds a '@'", repo);
	}
	free(repo);
	free(tag);
}

static void check_join(const char *a, const char *b)
{
	char *joined = path_join(a, b);
	size_t alen = strlen(a);
	const char *bs = b + strspn(b, "/");

	FUZZ_CHECK(joined != NULL, "path_join");
	while (alen > 0 && a[alen - 1] == '/')
		alen--;
	if (a[0] == '\0') {
		FUZZ_CHECK(strcmp(joined, bs) == 0, "join(\"\", \"%s\") = \"%s\"", b, joined);
	} else {
		FUZZ_CHECK(strncmp(joined, a, alen) == 0 && joined[alen] == '/' &&
			   strcmp(joined + alen + 1, bs) == 0,
			   "join(\"%s\", \"%s\") = \"%s\"", a, b, joined);
	}
	free(joined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *pieces[2];
	size_t n;

	if (size < 1)
		return 0;
	if (!root[0])
		make_tree();
	n = fuzz_split(data + 1, size - 1, pieces, NULL, 2);
	check_link(pieces[0], data[0] % 3);
	check_split_ref(pieces[0]);
	check_join(pieces[0], n > 1 ? pieces[1] : "");
	fuzz_pieces_free(pieces, n);
	return 0;
}
