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

#include "errmsg.h"
#include "fsutil.h"
#include "zipdir.h"

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

/* A regular file, by its Unix mode where the record has one (symlinks hold
 * their target as data, which unzips to no file content), else by its name. */
static bool record_is_file(const struct zipdir_record *r)
{
	if (r->host == ZIPDIR_HOST_UNIX && (r->mode & S_IFMT))
		return S_ISREG(r->mode);
	return !(r->name_len && r->name[r->name_len - 1] == '/');
}

int zip_unzipped_size(int fd, int64_t *out, char **errmsg)
{
	struct stat st;
	struct zipdir dir;
	unsigned char *cd = NULL;
	uint64_t total = 0;
	size_t pos = 0;
	int rc;

	if (errmsg)
		*errmsg = NULL;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "%s", strerror(-rc));
		return rc;
	}
	rc = zipdir_find(fd, (uint64_t)st.st_size, &dir, errmsg);
	if (rc == 0)
		rc = zipdir_read(fd, &dir, &cd, errmsg);
	for (uint64_t i = 0; rc == 0 && i < dir.entries; i++) {
		struct zipdir_record r;

		rc = zipdir_next(cd, dir.size, &pos, i, &r, errmsg);
		if (rc == 0 && record_is_file(&r))
			total += r.size;
	}
	free(cd);
	if (rc == 0 && total > INT64_MAX) {
		errmsg_set(errmsg, "unzipped size out of range");
		rc = -EBADMSG;
	}
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory");
	if (rc == 0)
		*out = (int64_t)total;
	return rc;
}
