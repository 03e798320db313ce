/*
 * fuzz_zipsplice.c - zip_index_read and zipsplice_write on arbitrary zips.
 *
 * Input: one control byte, a 4-byte little-endian length L, then part A
 * (the next L bytes, fewer if the input ends) and part B (the rest).  When
 * the control byte is odd, B is A itself (the same file twice).  Seeds are
 * the ziptree_write zips of two halves of small trees, so the search starts
 * from zips the splicer accepts.  Properties:
 *  - zip_index_read either accepts a part (an index of names in strictly
 *    ascending bytewise order, no message) or refuses it with -EBADMSG or
 *    -EFBIG and a one-line message, never a crash or a leak;
 *  - an accepted part spliced alone gives its own bytes back;
 *  - two accepted parts splice, in either order, to the same bytes (or
 *    both fail with -EEXIST and a message), and that zip is accepted with
 *    the sorted union of their names; a part spliced with itself gives
 *    its own bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "fuzz_common.h"
#include "zipsplice.h"

struct part {
	char path[4096];
	int fd;
	struct zip_index *idx;
	const uint8_t *data;
	size_t len;
};

static void check_message(int rc, const char *msg, const char *what)
{
	FUZZ_CHECK(msg != NULL && *msg != '\0', "%s failed (%d) without a message", what, rc);
	FUZZ_CHECK(strchr(msg, '\n') == NULL, "%s: message of several lines: %s", what, msg);
}

/* Opens and indexes p's bytes; false when zip_index_read refused them. */
static bool index_part(struct part *p, const char *name)
{
	char *msg = NULL;
	int rc;

	snprintf(p->path, sizeof(p->path), "%s/%s", fuzz_scratch_dir(), name);
	fuzz_write_file(p->path, p->data, p->len);
	p->fd = open(p->path, O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(p->fd >= 0, "open %s", p->path);
	rc = zip_index_read(p->fd, &p->idx, &msg);
	if (rc != 0) {
		FUZZ_CHECK(rc == -EBADMSG || rc == -EFBIG, "zip_index_read gave %d (%s)", rc,
			   msg ? msg : "");
		FUZZ_CHECK(p->idx == NULL, "index left after a failure");
		check_message(rc, msg, "zip_index_read");
		free(msg);
		close(p->fd);
		p->fd = -1;
		return false;
	}
	FUZZ_CHECK(msg == NULL, "message after success: %s", msg);
	for (size_t i = 1; i < zip_index_count(p->idx); i++)
		FUZZ_CHECK(strcmp(zip_index_name(p->idx, i - 1), zip_index_name(p->idx, i)) < 0,
			   "names %zu and %zu not ascending", i - 1, i);
	return true;
}

static void part_close(struct part *p)
{
	zip_index_free(p->idx);
	p->idx = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

/* Splices the n parts into a scratch file; returns the result, the bytes
 * in *out (malloc'd, on success). */
static int splice_parts(struct part *const *parts, size_t n, char **out, size_t *out_len)
{
	char path[4200];
	int fds[2], out_fd, rc;
	struct zip_index *idx[2];
	char *msg = NULL;

	for (size_t i = 0; i < n; i++) {
		fds[i] = parts[i]->fd;
		idx[i] = parts[i]->idx;
	}
	snprintf(path, sizeof(path), "%s/out.zip", fuzz_scratch_dir());
	out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FUZZ_CHECK(out_fd >= 0, "open %s", path);
	rc = zipsplice_write(out_fd, fds, idx, n, &msg);
	close(out_fd);
	*out = NULL;
	if (rc != 0) {
		FUZZ_CHECK(rc == -EEXIST, "zipsplice_write gave %d (%s)", rc, msg ? msg : "");
		check_message(rc, msg, "zipsplice_write");
		free(msg);
		return rc;
	}
	FUZZ_CHECK(msg == NULL, "message after success: %s", msg);
	FUZZ_CHECK(read_file(path, out, out_len) == 0, "read %s", path);
	return 0;
}

static void check_self(struct part *p)
{
	char *out;
	size_t len;

	FUZZ_CHECK(splice_parts(&p, 1, &out, &len) == 0, "a part alone did not splice");
	FUZZ_CHECK(len == p->len && memcmp(out, p->data, len) == 0,
		   "a part spliced alone changed (%zu -> %zu bytes)", p->len, len);
	free(out);
}

/* The output's names are the merge of a's and b's, each name once. */
static void check_union(const struct part *a, const struct part *b, const struct part *out)
{
	size_t i = 0, j = 0, k = 0;
	size_t na = zip_index_count(a->idx), nb = zip_index_count(b->idx);

	while (i < na || j < nb) {
		const char *x = i < na ? zip_index_name(a->idx, i) : NULL;
		const char *y = j < nb ? zip_index_name(b->idx, j) : NULL;
		const char *want = !y || (x && strcmp(x, y) <= 0) ? x : y;

		FUZZ_CHECK(k < zip_index_count(out->idx), "spliced zip lacks %s", want);
		FUZZ_CHECK(strcmp(zip_index_name(out->idx, k), want) == 0,
			   "entry %zu is %s, not %s", k, zip_index_name(out->idx, k), want);
		if (x && !strcmp(x, want))
			i++;
		if (y && !strcmp(y, want))
			j++;
		k++;
	}
	FUZZ_CHECK(k == zip_index_count(out->idx), "spliced zip has extra entries");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct part a = { .fd = -1 }, b = { .fd = -1 }, out = { .fd = -1 };
	struct part *ab[2] = { &a, &b }, *ba[2] = { &b, &a }, *aa[2] = { &a, &a };
	char *one, *two;
	size_t one_len, two_len, len_a;
	bool same;
	int rc1, rc2;

	if (size < 5)
		return 0;
	same = data[0] & 1;
	len_a = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 |
		(size_t)data[4] << 24;
	data += 5;
	size -= 5;
	if (len_a > size)
		len_a = size;
	a.data = data;
	a.len = len_a;
	b.data = data + len_a;
	b.len = size - len_a;

	if (!index_part(&a, "a.zip"))
		goto out;
	check_self(&a);
	if (same) {
		FUZZ_CHECK(splice_parts(aa, 2, &one, &one_len) == 0, "a part with itself failed");
		FUZZ_CHECK(one_len == a.len && memcmp(one, a.data, one_len) == 0,
			   "a part spliced with itself changed");
		free(one);
		goto out;
	}
	if (!index_part(&b, "b.zip"))
		goto out;
	check_self(&b);
	rc1 = splice_parts(ab, 2, &one, &one_len);
	rc2 = splice_parts(ba, 2, &two, &two_len);
	FUZZ_CHECK(rc1 == rc2, "the order of the parts changed the result: %d, %d", rc1, rc2);
	if (rc1 == 0) {
		FUZZ_CHECK(one_len == two_len && memcmp(one, two, one_len) == 0,
			   "the order of the parts changed the bytes");
		out.data = (const uint8_t *)one;
		out.len = one_len;
		FUZZ_CHECK(index_part(&out, "out-read.zip"), "the spliced zip is refused");
		check_union(&a, &b, &out);
		part_close(&out);
	}
	free(one);
	free(two);
out:
	part_close(&a);
	part_close(&b);
	return 0;
}
