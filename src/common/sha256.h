/*
 * sha256.h - FIPS 180-4 SHA-256, self-contained (no crypto library dependency).
 *
 * Used for input hashes and package digests.  Streaming API plus helpers that
 * hash a file or a buffer straight to lowercase hex.
 */
#ifndef SEBSFS_SHA256_H
#define SEBSFS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA256_HEX_LEN 64 /* without the terminating NUL */

struct sha256_ctx {
	uint32_t state[8];
	uint64_t bytes;
	uint8_t buf[64];
	size_t buf_len;
};

void sha256_init(struct sha256_ctx *ctx);
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_DIGEST_LEN]);

/* Writes 64 hex chars plus NUL into hex. */
void sha256_to_hex(const uint8_t digest[SHA256_DIGEST_LEN], char hex[SHA256_HEX_LEN + 1]);
void sha256_hex_buf(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);

/* Hashes a whole file.  Returns 0 or -errno. */
int sha256_hex_file(const char *path, char hex[SHA256_HEX_LEN + 1]);
/* Hashes from an open fd, from its current offset to EOF.  Returns 0 or -errno. */
int sha256_hex_fd(int fd, char hex[SHA256_HEX_LEN + 1]);

#endif
