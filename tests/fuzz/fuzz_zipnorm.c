/*
 * fuzz_zipnorm.c - zip_normalize on arbitrary zips.
 *
 * Input: one control byte (bit 0: JAR order), then the zip.  Limits are
 * small (1 MiB of content, 1,000 entries) so an inflating input costs
 * little.  Seeds are zips of the shapes the builder meets (see README.md).
 * Properties:
 *  - zip_normalize either accepts the zip (no message) or refuses it with one
 *    of the documented codes of zipnorm.h and a one-line message, writing
 *    nothing; never a crash, a leak or a file outside its scratch folder;
 *  - its scratch folder is empty afterwards, whatever the outcome;
 *  - an accepted zip's output normalizes to itself (idempotent);
 *  - in sorted order, zipsplice's index reader accepts the output (names in
 *    strictly ascending bytewise order).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "fuzz_common.h"
#include "zipnorm.h"
#include "zipsplice.h"

static void assert_empty(const char *dir)
{
	char **names;
	size_t n;

	FUZZ_CHECK(list_dir_sorted(dir, &names, &n) == 0, "list %s", dir);
	FUZZ_CHECK(n == 0, "scratch folder left with %s", names[0]);
	str_list_free(names, n);
}

/* zip_normalize of file in into file out; returns its result. */
static int run(const char *in, const char *out, const char *scratch,
	       const struct zipnorm_options *opts, char **msg)
{
	int in_fd = open(in, O_RDONLY | O_CLOEXEC);
	int out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc;

	FUZZ_CHECK(in_fd >= 0 && out_fd >= 0, "open %s / %s", in, out);
	*msg = NULL;
	rc = zip_normalize(in_fd, out_fd, scratch, opts, msg);
	close(in_fd);
	close(out_fd);
	assert_empty(scratch);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fuzz_scratch_dir();
	char in[4200], out[4200], again[4200], scratch[4200];
	struct zipnorm_options opts = { .max_bytes = 1 << 20, .max_entries = 1000 };
	char *msg, *a = NULL, *b = NULL;
	size_t la, lb;
	struct stat st;
	int rc;

	if (size < 1)
		return 0;
	opts.jar_order = data[0] & 1;
	snprintf(in, sizeof(in), "%s/in.zip", dir);
	snprintf(out, sizeof(out), "%s/out.zip", dir);
	snprintf(again, sizeof(again), "%s/again.zip", dir);
	snprintf(scratch, sizeof(scratch), "%s/scratch", dir);
	if (mkdir(scratch, 0755) < 0)
		FUZZ_CHECK(errno == EEXIST, "mkdir %s", scratch);
	fuzz_write_file(in, data + 1, size - 1);

	rc = run(in, out, scratch, &opts, &msg);
	if (rc != 0) {
		FUZZ_CHECK(fuzz_documented_extract_error(rc), "zip_normalize gave %d (%s)", rc,
			   msg ? msg : "");
		FUZZ_CHECK(msg && *msg && !strchr(msg, '\n'), "refusal %d without a one-line message",
			   rc);
		FUZZ_CHECK(stat(out, &st) == 0 && st.st_size == 0, "a refusal wrote %jd bytes",
			   (intmax_t)st.st_size);
		free(msg);
		return 0;
	}
	FUZZ_CHECK(msg == NULL, "message after success: %s", msg);

	rc = run(out, again, scratch, &opts, &msg);
	FUZZ_CHECK(rc == 0, "the output is refused: %d (%s)", rc, msg ? msg : "");
	FUZZ_CHECK(read_file(out, &a, &la) == 0 && read_file(again, &b, &lb) == 0, "read outputs");
	FUZZ_CHECK(la == lb && memcmp(a, b, la) == 0, "not idempotent (%zu -> %zu bytes)", la, lb);
	free(a);
	free(b);

	if (!opts.jar_order) {
		struct zip_index *idx = NULL;
		int fd = open(out, O_RDONLY | O_CLOEXEC);

		FUZZ_CHECK(fd >= 0, "open %s", out);
		rc = zip_index_read(fd, &idx, &msg);
		FUZZ_CHECK(rc == 0, "zipsplice refuses the output: %d (%s)", rc, msg ? msg : "");
		zip_index_free(idx);
		close(fd);
	}
	return 0;
}
