/*
 * fuzz_zipview.c - the directory views' zip index and entry reads
 * (zipview.h) on arbitrary zips.
 *
 * Input: a zip.  Seeds are the zipnorm seeds without their control byte
 * (see README.md).  Properties:
 *  - zipview_index_load either accepts the zip (no message) or refuses it
 *    with one of the documented codes of zipview.h and a message; never a
 *    crash or a leak;
 *  - an accepted index is a tree: entry 0 is the root folder, every other
 *    entry lies in a folder's child range exactly once, its parent is that
 *    folder, children are in strictly ascending bytewise order, names are
 *    non-empty, have no "/" and are not "." or "..", types are folder, file
 *    or symlink, and a folder's subfolder count is right; every child is
 *    found by zipview_lookup;
 *  - reading an entry (up to 1 MiB of each) gives exactly its size in
 *    bytes, or -EIO with a message; reading it again from the middle gives
 *    the same bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "zipview.h"

#define MAX_READ (1 << 20)

static bool documented(int rc)
{
	return rc == -EBADMSG || rc == -EPERM || rc == -EINVAL || rc == -EEXIST || rc == -EFBIG;
}

static void check_tree(const struct zipview_index *idx)
{
	size_t n = zipview_count(idx);
	unsigned char *seen = calloc(n, 1);
	FUZZ_CHECK(seen, "calloc");
	FUZZ_CHECK(n >= 1 && S_ISDIR(zipview_entry(idx, 0)->mode), "no root folder");
	seen[0] = 1;
	for (uint32_t d = 0; d < n; d++) {
		const struct zipview_entry *dir = zipview_entry(idx, d);
		mode_t type = dir->mode & S_IFMT;
		FUZZ_CHECK(type == S_IFDIR || type == S_IFREG || type == S_IFLNK, "type %o", type);
		if (type != S_IFDIR)
			continue;
		FUZZ_CHECK((uint64_t)dir->first_child + dir->n_children <= n, "child range");
		uint32_t subdirs = 0;
		for (uint32_t c = dir->first_child; c < dir->first_child + dir->n_children; c++) {
			const struct zipview_entry *e = zipview_entry(idx, c);
			FUZZ_CHECK(!seen[c], "entry %u in two folders", c);
			seen[c] = 1;
			FUZZ_CHECK(e->parent == d, "parent of %u", c);
			FUZZ_CHECK(e->name[0] && !strchr(e->name, '/') && strcmp(e->name, ".") != 0 &&
					   strcmp(e->name, "..") != 0,
				   "name \"%s\"", e->name);
			if (c > dir->first_child)
				FUZZ_CHECK(strcmp(zipview_entry(idx, c - 1)->name, e->name) < 0,
					   "order at \"%s\"", e->name);
			FUZZ_CHECK(zipview_lookup(idx, d, e->name) == c, "lookup \"%s\"", e->name);
			subdirs += S_ISDIR(e->mode);
		}
		FUZZ_CHECK(subdirs == dir->n_subdirs, "subfolder count");
	}
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(seen[i], "entry %zu in no folder", i);
	free(seen);
}

static void check_reads(const struct zipview_index *idx, int fd)
{
	char *buf = malloc(MAX_READ), *again = malloc(MAX_READ);
	FUZZ_CHECK(buf && again, "malloc");
	for (uint32_t i = 0; i < zipview_count(idx); i++) {
		const struct zipview_entry *e = zipview_entry(idx, i);
		if (S_ISDIR(e->mode))
			continue;
		size_t want = e->size < MAX_READ ? (size_t)e->size : MAX_READ;
		struct zipview_reader *r = zipview_reader_new(idx, i, fd);
		FUZZ_CHECK(r, "reader");
		char *msg = NULL;
		ssize_t got = zipview_read(r, buf, want, 0, &msg);
		FUZZ_CHECK(got == (ssize_t)want || (got == -EIO && msg), "read %zd of %zu", got, want);
		if (got > 1) {
			size_t mid = (size_t)got / 2;
			ssize_t back = zipview_read(r, again, (size_t)got - mid, mid, NULL);
			FUZZ_CHECK(back == got - (ssize_t)mid && memcmp(again, buf + mid, (size_t)back) == 0,
				   "read from the middle");
		}
		free(msg);
		zipview_reader_free(r);
	}
	free(buf);
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/in.zip", fuzz_scratch_dir());
	fuzz_write_file(path, data, size);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0, "open %s", path);
	struct zipview_index *idx = NULL;
	char *msg = NULL;
	int rc = zipview_index_load(fd, &idx, &msg);
	if (rc < 0) {
		FUZZ_CHECK(documented(rc) && msg && !idx, "refusal %d (%s)", rc, msg ? msg : "no message");
	} else {
		FUZZ_CHECK(rc == 0 && idx && !msg, "accepted with %s", msg ? msg : "no index");
		check_tree(idx);
		check_reads(idx, fd);
	}
	free(msg);
	zipview_index_free(idx);
	close(fd);
	return 0;
}
