/*
 * sha256.c - SHA-256 helpers on top of nettle.
 *
 * nettle is already in the process through libarchive and libcurl, and uses
 * the CPU's SHA instructions where it has them: a package is hashed on every
 * build, an input file whenever it changes.
 */
#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <nettle/version.h>

/* Large reads keep syscalls a small share of the time; on the heap because
 * hashing runs on worker threads with modest stacks. */
#define READ_BLOCK (256 * 1024)

void sha256_to_hex(const uint8_t digest[SHA256_DIGEST_SIZE], char hex[SHA256_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 0x0f];
	}
	hex[SHA256_HEX_LEN] = '\0';
}

void sha256_digest_hex(struct sha256_ctx *ctx, char hex[SHA256_HEX_LEN + 1])
{
	uint8_t digest[SHA256_DIGEST_SIZE];

#if NETTLE_VERSION_MAJOR >= 4
	sha256_digest(ctx, digest); /* nettle 4 dropped the truncation length */
#else
	sha256_digest(ctx, sizeof(digest), digest);
#endif
	sha256_to_hex(digest, hex);
}

void sha256_hex_buf(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, len, data);
	sha256_digest_hex(&ctx, hex);
}

int sha256_hex_fd(int fd, char hex[SHA256_HEX_LEN + 1])
{
	struct sha256_ctx ctx;
	uint8_t *buf = malloc(READ_BLOCK);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	sha256_init(&ctx);
	for (;;) {
		ssize_t n = read(fd, buf, READ_BLOCK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		sha256_update(&ctx, (size_t)n, buf);
	}
	sha256_digest_hex(&ctx, hex);
out:
	free(buf);
	return rc;
}

int sha256_hex_file(const char *path, char hex[SHA256_HEX_LEN + 1])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = sha256_hex_fd(fd, hex);
	close(fd);
	return rc;
}
