/*
 * sizelimits.c - platform size limits and a zip's unzipped size (see
 * sizelimits.h).
 */
#include "sizelimits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fsutil.h"
#include "le.h"

#define MIB (1024 * 1024)

static const struct {
	const char *platform;
	int64_t zipped, unzipped;
} DEFAULTS[] = {
	{ "aws", 50 * MIB, 250 * MIB },
	{ "gcp", 100000000, 500000000 },
	{ "openwhisk", 48000000, 0 },
};

void size_limits_free(struct size_limits *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].platform);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* The entry of platform, added (no limits) when missing; NULL on ENOMEM. */
static struct size_limit *entry_of(struct size_limits *l, const char *platform)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].platform, platform) == 0)
			return &l->items[i];
	struct size_limit *items = realloc(l->items, (l->n + 1) * sizeof(*items));
	if (!items)
		return NULL;
	l->items = items;
	char *name = strdup(platform);
	if (!name)
		return NULL;
	items[l->n] = (struct size_limit){ name, 0, 0 };
	return &items[l->n++];
}

int size_limits_defaults(struct size_limits *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(DEFAULTS) / sizeof(*DEFAULTS); i++) {
		struct size_limit *e = entry_of(out, DEFAULTS[i].platform);
		if (!e) {
			size_limits_free(out);
			return -ENOMEM;
		}
		e->zipped = DEFAULTS[i].zipped;
		e->unzipped = DEFAULTS[i].unzipped;
	}
	return 0;
}

int size_limits_copy(struct size_limits *dst, const struct size_limits *src)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->n; i++) {
		struct size_limit *e = entry_of(dst, src->items[i].platform);
		if (!e) {
			size_limits_free(dst);
			return -ENOMEM;
		}
		e->zipped = src->items[i].zipped;
		e->unzipped = src->items[i].unzipped;
	}
	return 0;
}

int size_limits_parse_size(const char *text, int64_t *out)
{
	static const struct {
		const char *name;
		int64_t factor;
	} units[] = {
		{ "", 1 }, { "B", 1 },
		{ "kB", 1000 }, { "MB", 1000000 }, { "GB", 1000000000 },
		{ "KiB", 1024 }, { "MiB", MIB }, { "GiB", (int64_t)1024 * MIB },
	};
	if (!(*text >= '0' && *text <= '9')) /* strtoll would take " 5", "-5", "+5" */
		return -EINVAL;
	char *end;
	errno = 0;
	long long n = strtoll(text, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end == ' ')
		end++;
	for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++) {
		if (strcmp(end, units[i].name) != 0)
			continue;
		if (n > INT64_MAX / units[i].factor)
			return -EINVAL;
		*out = (int64_t)n * units[i].factor;
		return 0;
	}
	return -EINVAL;
}

/* One "zipped"/"unzipped" value of the file into *out. */
static int parse_value(const json_t *v, int64_t *out)
{
	if (json_is_null(v)) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (n < 0)
			return -EINVAL;
		*out = (int64_t)n;
		return 0;
	}
	if (json_is_string(v))
		return size_limits_parse_size(json_string_value(v), out);
	return -EINVAL;
}

int size_limits_parse(struct size_limits *l, const char *text, char *why, size_t why_len)
{
	json_error_t jerr;
	struct size_limits next;
	json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	int rc = 0;
	if (!root) {
		snprintf(why, why_len, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(why, why_len, "expected a JSON object of platforms, e.g."
			 " {\"aws\": {\"zipped\": \"50 MiB\", \"unzipped\": \"250 MiB\"}}");
		json_decref(root);
		return -EINVAL;
	}
	if (size_limits_copy(&next, l) < 0) {
		json_decref(root);
		return -ENOMEM;
	}
	const char *platform;
	json_t *limits;
	json_object_foreach(root, platform, limits) {
		if (!json_is_object(limits)) {
			snprintf(why, why_len, "%s: expected an object with \"zipped\" and/or"
				 " \"unzipped\"", platform);
			rc = -EINVAL;
			break;
		}
		struct size_limit *e = entry_of(&next, platform);
		if (!e) {
			rc = -ENOMEM;
			break;
		}
		const char *field;
		json_t *value;
		json_object_foreach(limits, field, value) {
			int64_t *dst = strcmp(field, "zipped") == 0	? &e->zipped
				       : strcmp(field, "unzipped") == 0 ? &e->unzipped
									 : NULL;
			if (!dst) {
				snprintf(why, why_len, "%s.%s: unknown; expected \"zipped\" or"
					 " \"unzipped\"", platform, field);
				rc = -EINVAL;
			} else if (parse_value(value, dst) < 0) {
				snprintf(why, why_len, "%s.%s: expected bytes as a whole number >= 0,"
					 " a string such as \"50 MiB\" or \"250 MB\" (units B, kB,"
					 " MB, GB, KiB, MiB, GiB), or null for no limit",
					 platform, field);
				rc = -EINVAL;
			}
			if (rc < 0)
				break;
		}
		if (rc < 0)
			break;
	}
	json_decref(root);
	if (rc < 0) {
		size_limits_free(&next);
		return rc;
	}
	size_limits_free(l);
	*l = next;
	return 0;
}

int size_limits_load(struct size_limits *l, const char *path, char *why, size_t why_len)
{
	char *text = NULL;
	size_t len = 0;
	int rc = read_file(path, &text, &len);
	if (rc < 0) {
		snprintf(why, why_len, "%s", strerror(-rc));
		return rc;
	}
	if (strlen(text) != len) {
		snprintf(why, why_len, "a NUL byte in the file");
		rc = -EINVAL;
	} else {
		rc = size_limits_parse(l, text, why, why_len);
	}
	free(text);
	return rc;
}

void size_limits_get(const struct size_limits *l, const char *platform, int64_t *zipped,
		     int64_t *unzipped)
{
	*zipped = *unzipped = 0;
	for (size_t i = 0; l && i < l->n; i++) {
		if (strcmp(l->items[i].platform, platform) == 0) {
			*zipped = l->items[i].zipped;
			*unzipped = l->items[i].unzipped;
		}
	}
}

/* "zipped N bytes (limit L[, exceeded])", "(no limit)" or "(unknown)". */
static int describe(char *buf, size_t len, const char *what, int64_t size, int64_t limit)
{
	if (size < 0)
		return snprintf(buf, len, "%s size unknown", what);
	if (!limit)
		return snprintf(buf, len, "%s %" PRId64 " bytes (no limit)", what, size);
	return snprintf(buf, len, "%s %" PRId64 " bytes (limit %" PRId64 "%s)", what, size, limit,
			size >= limit ? ", exceeded" : "");
}

bool size_limits_check(const struct size_limits *l, const char *platform, int64_t zipped,
		       int64_t unzipped, char *line, size_t line_len)
{
	int64_t zl, ul;
	size_limits_get(l, platform, &zl, &ul);
	bool over = (zl && zipped >= zl) || (ul && unzipped >= 0 && unzipped >= ul);
	if (over && line && line_len) {
		char z[96], u[96];
		describe(z, sizeof(z), "zipped", zipped, zl);
		describe(u, sizeof(u), "unzipped", unzipped, ul);
		snprintf(line, line_len, "%s size limit exceeded: %s; %s", platform, z, u);
	}
	return over;
}

const char *size_limits_mode_name(enum size_limits_mode m)
{
	static const char *const names[] = { "warn", "strict", "off" };
	return names[m];
}

/* ---- the unzipped size of a zip ------------------------------------------ */

#define EOCD_SIG 0x06054b50u
#define EOCD_LEN 22
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP64_LOCATOR_LEN 20
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP64_EOCD_LEN 56
#define CDH_SIG 0x02014b50u
#define CDH_LEN 46
#define ZIP_COMMENT_MAX 65535
#define HOST_UNIX 3
/* A central directory bigger than this is not one sebsfs wrote. */
#define CD_MAX ((uint64_t)1 << 30)

static void set_err(char **errmsg, const char *what)
{
	if (errmsg)
		*errmsg = strdup(what);
}

/* Finds the central directory: its offset, size and entry count. */
static int find_cd(int fd, uint64_t file_size, uint64_t *cd_off, uint64_t *cd_size,
		   uint64_t *count, char **errmsg)
{
	size_t tail_len = (size_t)(file_size < EOCD_LEN + ZIP_COMMENT_MAX ? file_size
									  : EOCD_LEN + ZIP_COMMENT_MAX);
	uint64_t tail_off = file_size - tail_len;
	unsigned char *tail = malloc(tail_len ? tail_len : 1);
	if (!tail)
		return -ENOMEM;
	int rc = pread_exact(fd, tail, tail_len, tail_off);
	ssize_t at = -1;
	for (ssize_t i = (ssize_t)tail_len - EOCD_LEN; rc == 0 && i >= 0 && at < 0; i--)
		if (le32(tail + i) == EOCD_SIG && (size_t)i + EOCD_LEN + le16(tail + i + 20) == tail_len)
			at = i;
	if (rc == 0 && at < 0) {
		set_err(errmsg, "no end of central directory record: not a zip");
		rc = -EBADMSG;
	}
	if (rc == 0) {
		const unsigned char *e = tail + at;
		*count = le16(e + 10);
		*cd_size = le32(e + 12);
		*cd_off = le32(e + 16);
		uint64_t eocd_pos = tail_off + (uint64_t)at;
		unsigned char loc[ZIP64_LOCATOR_LEN], z64[ZIP64_EOCD_LEN];
		if (eocd_pos >= ZIP64_LOCATOR_LEN &&
		    pread_exact(fd, loc, sizeof(loc), eocd_pos - ZIP64_LOCATOR_LEN) == 0 &&
		    le32(loc) == ZIP64_LOCATOR_SIG) {
			rc = pread_exact(fd, z64, sizeof(z64), le64(loc + 8));
			if (rc == 0 && le32(z64) != ZIP64_EOCD_SIG)
				rc = -EBADMSG;
			if (rc == 0) {
				*count = le64(z64 + 32);
				*cd_size = le64(z64 + 40);
				*cd_off = le64(z64 + 48);
			} else {
				set_err(errmsg, "bad Zip64 end of central directory record");
			}
		}
		if (rc == 0 && (*cd_off > eocd_pos || *cd_size > eocd_pos - *cd_off ||
				*cd_size > CD_MAX)) {
			set_err(errmsg, "central directory out of bounds");
			rc = -EBADMSG;
		}
	}
	free(tail);
	return rc;
}

int zip_unzipped_size(int fd, int64_t *out, char **errmsg)
{
	struct stat st;
	uint64_t cd_off = 0, cd_size = 0, count = 0, total = 0;
	unsigned char *cd = NULL;
	if (errmsg)
		*errmsg = NULL;
	if (fstat(fd, &st) < 0) {
		int rc = -errno;
		set_err(errmsg, strerror(errno));
		return rc;
	}
	int rc = find_cd(fd, (uint64_t)st.st_size, &cd_off, &cd_size, &count, errmsg);
	if (rc == 0 && !(cd = malloc(cd_size ? cd_size : 1)))
		rc = -ENOMEM;
	if (rc == 0)
		rc = pread_exact(fd, cd, cd_size, cd_off);
	size_t pos = 0;
	for (uint64_t i = 0; rc == 0 && i < count; i++) {
		const unsigned char *h = cd + pos;
		if (cd_size - pos < CDH_LEN || le32(h) != CDH_SIG) {
			rc = -EBADMSG;
			break;
		}
		size_t name_len = le16(h + 28), extra_len = le16(h + 30), comment_len = le16(h + 32);
		if (cd_size - pos - CDH_LEN < name_len + extra_len + comment_len) {
			rc = -EBADMSG;
			break;
		}
		const char *name = (const char *)h + CDH_LEN;
		uint64_t size = le32(h + 24);
		if (size == 0xffffffffu) {
			/* Zip64: the real size is the first field of its extra block */
			const unsigned char *x = h + CDH_LEN + name_len, *x_end = x + extra_len;
			bool found = false;
			while (!found && x_end - x >= 4) {
				uint16_t id = le16(x), len = le16(x + 2);
				if ((size_t)(x_end - x - 4) < len)
					break;
				if (id == 0x0001 && len >= 8) {
					size = le64(x + 4);
					found = true;
				}
				x += 4 + len;
			}
			if (!found) {
				rc = -EBADMSG;
				break;
			}
		}
		uint32_t mode = le32(h + 38) >> 16;
		bool regular = (h[5] == HOST_UNIX && (mode & S_IFMT))
				       ? S_ISREG(mode)
				       : !(name_len && name[name_len - 1] == '/');
		if (regular)
			total += size;
		pos += CDH_LEN + name_len + extra_len + comment_len;
	}
	if (rc == -EBADMSG && errmsg && !*errmsg)
		set_err(errmsg, "damaged central directory");
	else if (rc < 0 && errmsg && !*errmsg)
		set_err(errmsg, strerror(-rc));
	free(cd);
	if (rc == 0) {
		if (total > INT64_MAX) {
			set_err(errmsg, "unzipped size out of range");
			return -EBADMSG;
		}
		*out = (int64_t)total;
	}
	return rc;
}
