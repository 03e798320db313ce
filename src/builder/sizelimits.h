/*
 * sizelimits.h - how big a code package may be on its platform, and how big
 * a zip is once unzipped.
 *
 * A platform limits the zipped size of a package (aws: 50 MiB for a direct
 * upload, SeBS uploads bigger ones through S3) and its unzipped size (the
 * sum of the uncompressed sizes of its regular files: aws 250 MiB).  The
 * defaults (size_limits_defaults) come from ../shared/SEBS.md section 10,
 * each in the unit its platform states it in:
 *   aws        zipped 52,428,800 bytes (50 MiB: SeBS uploads through S3
 *              unless code_size < 50 * 1024 * 1024), unzipped 262,144,000
 *              bytes (the "250 MB" of the Lambda quotas; Lambda's error
 *              message names 262144000 bytes, i.e. 250 MiB)
 *   gcp        zipped 100,000,000 bytes (100 MB), unzipped 500,000,000 (500 MB)
 *   openwhisk  zipped 48,000,000 bytes (48 MB)
 *   others     (azure, local, any platform not named) no limit.
 * A package meets a limit when its size is below it, as AWS and SeBS check
 * (`code_size < 50 * 1024 * 1024`).
 *
 * A limits file overrides them: a JSON object shaped like systems.json,
 * one member per platform, each an object with "zipped" and/or "unzipped":
 *   {"aws": {"zipped": "50 MiB", "unzipped": 262144000}, "gcp": {"zipped": null}}
 * A value is a whole number of bytes, or a string "<number> <unit>" with a
 * unit B, kB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024),
 * the space optional; 0 or null means no limit.  A member left out keeps
 * its default; anything else (unknown keys, negative or fractional numbers,
 * other types) is an error.
 */
#ifndef SEBSFS_SIZELIMITS_H
#define SEBSFS_SIZELIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a package past its platform's limit gets (-o size_limits=). */
enum size_limits_mode {
	SIZE_LIMITS_WARN,    /* xattr user.sebs.size_warning and a build log line */
	SIZE_LIMITS_STRICT,  /* the same, and its open fails with EFBIG */
	SIZE_LIMITS_OFF,     /* no checks */
};

struct size_limit {
	char *platform;
	int64_t zipped;      /* bytes; 0: none */
	int64_t unzipped;    /* bytes; 0: none */
};

/* A set of limits; owns its strings.  An all-zero struct is a valid empty
 * set (no limits anywhere). */
struct size_limits {
	struct size_limit *items;
	size_t n;
};

/* Longest line size_limits_check writes, with its NUL. */
#define SIZE_WARNING_MAX 256

/* Fills *out with the defaults above.  0 or -ENOMEM. */
int size_limits_defaults(struct size_limits *out);

/* Applies the limits file text (see above) over *l.  0, or -EINVAL with a
 * one-line reason in why (naming the member at fault), or -ENOMEM; on
 * failure *l is unchanged. */
int size_limits_parse(struct size_limits *l, const char *text, char *why, size_t why_len);

/* size_limits_parse of the file at path; a file that cannot be read is
 * -errno with why saying so. */
int size_limits_load(struct size_limits *l, const char *path, char *why, size_t why_len);

/* Parses one size value as the file takes it in a string ("50 MiB",
 * "262144000"), for the file and for tests.  0 or -EINVAL. */
int size_limits_parse_size(const char *text, int64_t *out);

/* The limits of platform (0: none). */
void size_limits_get(const struct size_limits *l, const char *platform, int64_t *zipped,
		     int64_t *unzipped);

/* Whether a package of platform with these sizes (unzipped < 0: unknown,
 * not checked) is past a limit.  When it is, returns true and writes to
 * line (may be NULL) one line naming the platform, each size and its limit,
 * e.g. "aws size limit exceeded: zipped 60000000 bytes (limit 52428800,
 * exceeded); unzipped 90000000 bytes (limit 262144000)". */
bool size_limits_check(const struct size_limits *l, const char *platform, int64_t zipped,
		       int64_t unzipped, char *line, size_t line_len);

/* Deep copy; 0 or -ENOMEM (then *dst is empty). */
int size_limits_copy(struct size_limits *dst, const struct size_limits *src);
void size_limits_free(struct size_limits *l);

const char *size_limits_mode_name(enum size_limits_mode m);

/* The unzipped size of the zip open as fd: the sum of the uncompressed
 * sizes its central directory records for regular files (entries whose
 * Unix mode, when the zip records one, is a regular file; else every entry
 * whose name does not end in '/').  Reads the end records and the central
 * directory with pread (the file offset is not used); Zip64 is understood.
 * 0, or -EBADMSG for what is not a zip it can read (-EFBIG for a central
 * directory over ZIPDIR_MAX_SIZE), -errno of a read; *errmsg
 * (may be NULL) gets a malloc'd reason on failure. */
int zip_unzipped_size(int fd, int64_t *out, char **errmsg);

#endif
