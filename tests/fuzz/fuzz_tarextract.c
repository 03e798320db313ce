/*
 * fuzz_tarextract.c - tar_extract on arbitrary tar streams: what a build
 * container on a remote Docker daemon sends back (GET /containers/{id}/archive)
 * is written into this machine's work folder, so it is untrusted input.
 *
 * Input: one control byte, then the tar.  Bit 0: strip "function" (as
 * containerfs does; else names as they are); bit 1: skip "package.sh";
 * bit 2: check_owner with owner 0 (else owners are not looked at).  Limits
 * are small (1 MiB of content, 1,000 entries).  Seeds: see README.md.
 * Properties:
 *  - tar_extract either accepts the stream (no message) or refuses it with
 *    one of the documented codes of zipnorm.h and a one-line message; never
 *    a crash or a leak;
 *  - nothing is written outside its destination folder, accepted or not
 *    (the folder beside it stays as it was);
 *  - an accepted tree holds only folders, regular files and symbolic links,
 *    none setuid, setgid or sticky, at most 1 MiB of file content;
 *  - a refusal for a foreign owner names it (*foreign set) when asked.
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

#define MAX_BYTES (1 << 20)

/* The scratch folder holds in.tar, dest/ and nothing else. */
static void assert_contained(const char *dir)
{
	char **names;
	size_t n;

	FUZZ_CHECK(list_dir_sorted(dir, &names, &n) == 0, "list %s", dir);
	FUZZ_CHECK(n == 2 && !strcmp(names[0], "dest") && !strcmp(names[1], "in.tar"),
		   "written outside the destination: %s", n > 2 ? names[2] : "(fewer names)");
	str_list_free(names, n);
}

/* Every entry below path is a folder, a regular file or
 * a link, with no special mode bits; returns the bytes of its files. */
static uint64_t assert_plain_tree(const char *path)
{
	char **names;
	size_t n;
	uint64_t bytes = 0;

	FUZZ_CHECK(list_dir_sorted(path, &names, &n) == 0, "list %s", path);
	for (size_t i = 0; i < n; i++) {
		char *child = path_join(path, names[i]);
		struct stat st;

		FUZZ_CHECK(child && lstat(child, &st) == 0, "lstat %s", names[i]);
		FUZZ_CHECK(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode),
			   "%s has mode %o", child, (unsigned)st.st_mode);
		FUZZ_CHECK(S_ISLNK(st.st_mode) || (st.st_mode & 07000) == 0,
			   "%s has mode %o", child, (unsigned)st.st_mode);
		if (S_ISDIR(st.st_mode)) {
			/* the archive's bits may deny even the owner: list it anyway */
			FUZZ_CHECK(chmod(child, 0700) == 0, "chmod %s", child);
			bytes += assert_plain_tree(child);
		} else if (S_ISREG(st.st_mode) && st.st_nlink == 1) {
			bytes += (uint64_t)st.st_size;
		}
		free(child);
	}
	str_list_free(names, n);
	return bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const skip[] = { "package.sh", NULL };
	const char *dir = fuzz_scratch_dir();
	char in[4200], dest[4200];
	char *foreign = NULL, *msg = NULL;
	struct tar_extract_options opts = { .max_bytes = MAX_BYTES, .max_entries = 1000 };
	int fd, rc;

	if (size < 1)
		return 0;
	opts.strip = data[0] & 1 ? "function" : NULL;
	opts.skip = data[0] & 2 ? skip : NULL;
	opts.check_owner = data[0] & 4;
	opts.owner = 0;
	opts.foreign = &foreign;
	snprintf(in, sizeof(in), "%s/in.tar", dir);
	snprintf(dest, sizeof(dest), "%s/dest", dir);
	FUZZ_CHECK(rm_rf(dest) == 0, "clean %s", dest);
	FUZZ_CHECK(mkdir(dest, 0700) == 0, "mkdir %s", dest);
	fuzz_write_file(in, data + 1, size - 1);

	fd = open(in, O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0, "open %s", in);
	rc = tar_extract(fd, dest, &opts, &msg);
	close(fd);
	assert_contained(dir);
	if (rc != 0) {
		FUZZ_CHECK(fuzz_documented_extract_error(rc), "tar_extract gave %d (%s)", rc,
			   msg ? msg : "");
		FUZZ_CHECK(msg && *msg && !strchr(msg, '\n'), "refusal %d without a one-line message",
			   rc);
		FUZZ_CHECK(!foreign || rc == -EPERM, "foreign owner %s named for error %d", foreign,
			   rc);
	} else {
		FUZZ_CHECK(msg == NULL, "message after success: %s", msg);
		FUZZ_CHECK(foreign == NULL, "foreign owner %s named after success", foreign);
		/* the root's own bits are the archive's; make it listable */
		FUZZ_CHECK(chmod(dest, 0700) == 0, "chmod %s", dest);
		FUZZ_CHECK(assert_plain_tree(dest) <= MAX_BYTES, "more than %d bytes extracted",
			   MAX_BYTES);
	}
	free(msg);
	free(foreign);
	FUZZ_CHECK(rm_rf(dest) == 0, "remove %s", dest);
	return 0;
}
