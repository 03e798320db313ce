/*
 * fuzz_common.c - see fuzz_common.h.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

size_t fuzz_split(const uint8_t *data, size_t size, char **pieces, size_t *lens, size_t max)
{
	size_t n = 0, start = 0;

	while (n < max && start <= size) {
		const uint8_t *nul = n + 1 < max ? memchr(data + start, 0, size - start) : NULL;
		size_t end = nul ? (size_t)(nul - data) : size;
		char *p = malloc(end - start + 1);

		if (!p)
			abort();
		memcpy(p, data + start, end - start);
		p[end - start] = '\0';
		pieces[n] = p;
		if (lens)
			lens[n] = end - start;
		n++;
		if (!nul)
			break;
		start = end + 1;
	}
	return n;
}

void fuzz_pieces_free(char **pieces, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(pieces[i]);
}

static char *scratch;

static void remove_scratch(void)
{
	if (scratch)
		rm_rf(scratch);
	free(scratch);
	scratch = NULL;
}

/* Warnings about broken input are the expected outcome here: printing
 * thousands of them per second would only slow the search down. */
static void drop_log(enum log_level level, const char *msg)
{
	(void)level;
	(void)msg;
}

const char *fuzz_scratch_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	int rc;

	if (scratch)
		return scratch;
	if (!getenv("SEBSFS_FUZZ_LOG"))
		log_set_backend(drop_log);
	rc = make_temp_dir(tmp && *tmp ? tmp : "/tmp", "sebsfs-fuzz.", &scratch);
	if (rc != 0) {
		fprintf(stderr, "fuzz: cannot make a scratch folder: %s\n", strerror(-rc));
		abort();
	}
	atexit(remove_scratch);
	return scratch;
}

void fuzz_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	const char *p = data;

	if (fd < 0) {
		fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
		abort();
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "fuzz: write %s: %s\n", path, strerror(errno));
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

bool fuzz_documented_extract_error(int rc)
{
	switch (rc) {
	case -EBADMSG: case -EPERM: case -EINVAL: case -EEXIST: case -EILSEQ:
	case -ELOOP: case -EFBIG:
	case -ENAMETOOLONG: /* a component longer than the file system takes */
		return true;
	default:
		return false;
	}
}
