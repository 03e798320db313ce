/*
 * sha256.h - SHA-256 helpers on top of nettle.
 *
 * Used for input hashes and package digests.  Streaming hashing is nettle's
 * own API, which this header brings in: struct sha256_ctx, sha256_init,
 * sha256_update(ctx, len, data), SHA256_DIGEST_SIZE.  Here are the helpers
 * that hash a buffer, a file or a descriptor straight to lowercase hex.
 */
#ifndef SEBSFS_SHA256_H
#define SEBSFS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include <nettle/sha2.h>

#define SHA256_HEX_LEN 64 /* without the terminating NUL */

/* Writes 64 hex chars plus NUL into hex. */
void sha256_to_hex(const uint8_t digest[SHA256_DIGEST_SIZE], char hex[SHA256_HEX_LEN + 1]);
/* Finishes ctx into hex.  sha256_init ctx again before reusing it. */
void sha256_digest_hex(struct sha256_ctx *ctx, char hex[SHA256_HEX_LEN + 1]);
void sha256_hex_buf(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);

/* Hashes a whole file, reading it in large blocks (never all at once).
 * Returns 0 or -errno. */
int sha256_hex_file(const char *path, char hex[SHA256_HEX_LEN + 1]);
/* Hashes from an open fd, from its current offset to EOF.  Returns 0 or -errno. */
int sha256_hex_fd(int fd, char hex[SHA256_HEX_LEN + 1]);

#endif
