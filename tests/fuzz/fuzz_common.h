/*
 * fuzz_common.h - helpers shared by the fuzz targets of tests/fuzz/.
 *
 * Each target defines LLVMFuzzerTestOneInput() and is linked twice: with
 * libFuzzer (-Dfuzz=true, clang) to search for new inputs, and with replay.c,
 * a plain main() that runs every saved input (corpus and regressions) through
 * the same code in the unit suite.  A broken property is reported by
 * FUZZ_CHECK, which aborts: libFuzzer saves the input as a crasher, the
 * replay test fails.
 */
#ifndef SEBSFS_FUZZ_COMMON_H
#define SEBSFS_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                   \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "%s:%d: property broken: %s: ", __FILE__, \
				__LINE__, #cond);                               \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
			abort();                                                \
		}                                                               \
	} while (0)

/* Up to max pieces of data separated by NUL bytes (a byte no JSON text may
 * hold outside a string, so a seed is simply the files joined with NULs).
 * Each piece is a malloc'd NUL-terminated copy; returns the count. */
size_t fuzz_split(const uint8_t *data, size_t size, char **pieces, size_t *lens, size_t max);
void fuzz_pieces_free(char **pieces, size_t n);

/* A scratch folder for this process, made once (under $TMPDIR, else /tmp);
 * removed at exit. */
const char *fuzz_scratch_dir(void);
/* Writes len bytes to path (created or truncated); aborts on failure: the
 * harness cannot go on without its files. */
void fuzz_write_file(const char *path, const void *data, size_t len);

/* rc is one of the refusals zipnorm.h documents for its extractors
 * (zip_normalize, zip_extract, tar_extract). */
bool fuzz_documented_extract_error(int rc);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
