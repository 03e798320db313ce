/*
 * test_docker.c - Check suite for src/docker.
 *
 * Two halves.  "streams", "auth" and "client" need no daemon: the decoders
 * are fed captured bytes at every split point, registry credentials come from
 * a temporary DOCKER_CONFIG, and connection errors use endpoints that cannot
 * answer.  "dockerd" (tagged "dockerd"; meson runs it as the "docker-daemon"
 * test of the "docker" suite) talks to the real daemon on
 * /var/run/docker.sock (or DOCKER_HOST) and fails, never skips, when it is
 * absent: CI provides one.
 * Its unchecked fixture runs once in the parent process: it imports a tiny
 * busybox image (made from /bin/busybox with a hand-written ustar archive,
 * via `docker import`) and starts a loopback docker-registry for the push
 * test; its teardown stops the registry and removes every image the tests
 * made, even when a forked test died half-way.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "docker.h"
#include "docker_int.h"
#include "fsutil.h"
#include "process.h"

#define BUSYBOX_IMAGE "sebsfs-test/busybox:latest"
#define BUILT_IMAGE "sebsfs-test/built:latest"
#define BROKEN_IMAGE "sebsfs-test/broken:latest"

static char rootdir[64];  /* per run, made and removed by main() */

static int nftw_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void remove_tree(const char *dir)
{
	nftw(dir, nftw_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- output collection ------------------------------------------------------ */

struct collected {
	char buf[3][8192];
	size_t len[3];
	int calls;
};

static void collect(void *ctx, int stream, const char *data, size_t len)
{
	struct collected *c = ctx;

	ck_assert_int_ge(stream, 0);
	ck_assert_int_le(stream, 2);
	c->calls++;
	if (len > sizeof(c->buf[stream]) - 1 - c->len[stream])
		len = sizeof(c->buf[stream]) - 1 - c->len[stream];
	memcpy(c->buf[stream] + c->len[stream], data, len);
	c->len[stream] += len;
	c->buf[stream][c->len[stream]] = '\0';
}

/* ---- multiplexed stream ------------------------------------------------------ */

static size_t mux_frame(uint8_t *out, int stream, const char *payload, size_t len)
{
	out[0] = (uint8_t)stream;
	out[1] = out[2] = out[3] = 0;
	out[4] = (uint8_t)(len >> 24);
	out[5] = (uint8_t)(len >> 16);
	out[6] = (uint8_t)(len >> 8);
	out[7] = (uint8_t)len;
	memcpy(out + 8, payload, len);
	return 8 + len;
}

/* Captured shape of a logs response: stdout, stderr, an empty frame, and a
 * payload longer than one header. */
static size_t mux_sample(uint8_t *buf)
{
	size_t n = 0;

	n += mux_frame(buf + n, 1, "out\n", 4);
	n += mux_frame(buf + n, 2, "err\n", 4);
	n += mux_frame(buf + n, 1, "", 0);
	n += mux_frame(buf + n, 2, "a longer stderr line\n", 21);
	n += mux_frame(buf + n, 1, "tail", 4);
	return n;
}

static void check_mux_output(const struct collected *c)
{
	ck_assert_str_eq(c->buf[1], "out\ntail");
	ck_assert_str_eq(c->buf[2], "err\na longer stderr line\n");
	ck_assert_uint_eq(c->len[0], 0);
}

START_TEST(test_mux_whole)
{
	uint8_t buf[256];
	size_t n = mux_sample(buf);
	struct docker_mux m;
	struct collected c = { 0 };

	docker_mux_init(&m);
	ck_assert_int_eq(docker_mux_feed(&m, buf, n, collect, &c), 0);
	check_mux_output(&c);
	ck_assert(!docker_mux_partial(&m));
}
END_TEST

START_TEST(test_mux_byte_at_a_time)
{
	uint8_t buf[256];
	size_t n = mux_sample(buf);
	struct docker_mux m;
	struct collected c = { 0 };

	docker_mux_init(&m);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(docker_mux_feed(&m, buf + i, 1, collect, &c), 0);
	check_mux_output(&c);
	ck_assert(!docker_mux_partial(&m));
}
END_TEST

START_TEST(test_mux_all_splits)
{
	uint8_t buf[256];
	size_t n = mux_sample(buf);

	/* Every pair of cut points: three feeds, one of them possibly empty. */
	for (size_t i = 0; i <= n; i++) {
		for (size_t j = i; j <= n; j++) {
			struct docker_mux m;
			struct collected c = { 0 };

			docker_mux_init(&m);
			ck_assert_int_eq(docker_mux_feed(&m, buf, i, collect, &c), 0);
			ck_assert_int_eq(docker_mux_feed(&m, buf + i, j - i, collect, &c), 0);
			ck_assert_int_eq(docker_mux_feed(&m, buf + j, n - j, collect, &c), 0);
			check_mux_output(&c);
			ck_assert(!docker_mux_partial(&m));
		}
	}
}
END_TEST

START_TEST(test_mux_zero_length)
{
	uint8_t buf[64];
	size_t n = 0;
	struct docker_mux m;
	struct collected c = { 0 };

	n += mux_frame(buf + n, 2, "", 0);
	n += mux_frame(buf + n, 1, "", 0);
	docker_mux_init(&m);
	ck_assert_int_eq(docker_mux_feed(&m, buf, n, collect, &c), 0);
	ck_assert_uint_eq(c.len[1] + c.len[2], 0);
	ck_assert(!docker_mux_partial(&m));
}
END_TEST

START_TEST(test_mux_bad_stream)
{
	uint8_t buf[64];
	size_t n = mux_frame(buf, 1, "ok", 2);
	struct docker_mux m;
	struct collected c = { 0 };

	n += mux_frame(buf + n, 7, "bad", 3);
	docker_mux_init(&m);
	ck_assert_int_eq(docker_mux_feed(&m, buf, n, collect, &c), -EPROTO);
	ck_assert_str_eq(c.buf[1], "ok");
}
END_TEST

START_TEST(test_mux_partial)
{
	uint8_t buf[64];
	size_t n = mux_frame(buf, 1, "payload", 7);
	struct docker_mux m;

	docker_mux_init(&m);
	ck_assert_int_eq(docker_mux_feed(&m, buf, 5, NULL, NULL), 0);
	ck_assert(docker_mux_partial(&m));
	ck_assert_int_eq(docker_mux_feed(&m, buf + 5, n - 8, NULL, NULL), 0);
	ck_assert(docker_mux_partial(&m));
	ck_assert_int_eq(docker_mux_feed(&m, buf + n - 3, 3, NULL, NULL), 0);
	ck_assert(!docker_mux_partial(&m));
}
END_TEST

/* ---- JSON stream --------------------------------------------------------------- */

/* Captured from pull and build responses, plus the awkward cases: braces and
 * escaped quotes inside strings, nested arrays, CRLF, no separator at all. */
static const char json_sample[] =
	"{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}\r\n"
	"{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1,\"total\":2},"
	"\"progress\":\"[=>  ] 1B/2B\",\"id\":\"a1b2\"}\n"
	"{\"stream\":\"Step 1/3 : FROM x\\n\"}"
	"{\"aux\":{\"ID\":\"sha256:0123\"}}\n\n"
	"  {\"tricky\":\"}{\\\"\\\\\",\"arr\":[1,{\"b\":[]},\"]\"]}\n";

static const char *const json_expected[] = {
	"{\"status\": \"Pulling from library/busybox\", \"id\": \"latest\"}",
	"{\"status\": \"Downloading\", \"progressDetail\": {\"current\": 1, \"total\": 2}, "
	"\"progress\": \"[=>  ] 1B/2B\", \"id\": \"a1b2\"}",
	"{\"stream\": \"Step 1/3 : FROM x\\n\"}",
	"{\"aux\": {\"ID\": \"sha256:0123\"}}",
	"{\"tricky\": \"}{\\\"\\\\\", \"arr\": [1, {\"b\": []}, \"]\"]}",
};
#define JSON_EXPECTED_N (sizeof(json_expected) / sizeof(json_expected[0]))

struct seen {
	char *objs[16];
	int n;
	int stop_at;  /* callback returns 42 on this object (1-based); 0: never */
};

static int on_obj(void *ctx, void *object)
{
	struct seen *s = ctx;

	ck_assert_int_lt(s->n, 16);
	s->objs[s->n++] = json_dumps(object, JSON_PRESERVE_ORDER);
	return s->n == s->stop_at ? 42 : 0;
}

static void seen_check_and_free(struct seen *s)
{
	ck_assert_int_eq(s->n, (int)JSON_EXPECTED_N);
	for (int i = 0; i < s->n; i++) {
		ck_assert_str_eq(s->objs[i], json_expected[i]);
		free(s->objs[i]);
	}
	s->n = 0;
}

START_TEST(test_json_whole)
{
	struct seen seen = { 0 };
	struct json_stream *s = json_stream_new(on_obj, &seen);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(json_stream_feed(s, json_sample, strlen(json_sample)), 0);
	ck_assert_int_eq(json_stream_finish(s), 0);
	seen_check_and_free(&seen);
	json_stream_free(s);
	json_stream_free(NULL);
}
END_TEST

START_TEST(test_json_byte_at_a_time)
{
	struct seen seen = { 0 };
	struct json_stream *s = json_stream_new(on_obj, &seen);

	for (size_t i = 0; i < strlen(json_sample); i++)
		ck_assert_int_eq(json_stream_feed(s, json_sample + i, 1), 0);
	ck_assert_int_eq(json_stream_finish(s), 0);
	seen_check_and_free(&seen);
	json_stream_free(s);
}
END_TEST

START_TEST(test_json_all_splits)
{
	size_t n = strlen(json_sample);

	for (size_t i = 0; i <= n; i++) {
		for (size_t j = i; j <= n; j++) {
			struct seen seen = { 0 };
			struct json_stream *s = json_stream_new(on_obj, &seen);

			ck_assert_int_eq(json_stream_feed(s, json_sample, i), 0);
			ck_assert_int_eq(json_stream_feed(s, json_sample + i, j - i), 0);
			ck_assert_int_eq(json_stream_feed(s, json_sample + j, n - j), 0);
			ck_assert_int_eq(json_stream_finish(s), 0);
			seen_check_and_free(&seen);
			json_stream_free(s);
		}
	}
}
END_TEST

static int feed_all(const char *text)
{
	struct seen seen = { 0 };
	struct json_stream *s = json_stream_new(on_obj, &seen);
	int rc = json_stream_feed(s, text, strlen(text));

	if (rc == 0)
		rc = json_stream_finish(s);
	for (int i = 0; i < seen.n; i++)
		free(seen.objs[i]);
	json_stream_free(s);
	return rc;
}

START_TEST(test_json_malformed)
{
	ck_assert_int_eq(feed_all("{\"a\":}"), -EPROTO);
	ck_assert_int_eq(feed_all("{\"a\":1}}"), -EPROTO);
	ck_assert_int_eq(feed_all("[1,2]"), -EPROTO);
	ck_assert_int_eq(feed_all("garbage"), -EPROTO);
	ck_assert_int_eq(feed_all("{\"a\":1} x"), -EPROTO);
	ck_assert_int_eq(feed_all("{\"a\" 1}"), -EPROTO);
	ck_assert_int_eq(feed_all(""), 0);
	ck_assert_int_eq(feed_all(" \n\r\n"), 0);
}
END_TEST

START_TEST(test_json_partial_at_finish)
{
	struct seen seen = { 0 };
	struct json_stream *s = json_stream_new(on_obj, &seen);

	ck_assert_int_eq(json_stream_feed(s, "{\"a\":1}\n{\"b\":\"x}", 16), 0);
	ck_assert_int_eq(seen.n, 1);
	ck_assert_int_eq(json_stream_finish(s), -EPROTO);
	free(seen.objs[0]);
	json_stream_free(s);
}
END_TEST

START_TEST(test_json_sticky_error_and_stop)
{
	struct seen seen = { .stop_at = 2 };
	struct json_stream *s = json_stream_new(on_obj, &seen);

	ck_assert_int_eq(json_stream_feed(s, "{\"a\":1}{\"b\":2}{\"c\":3}", 21), 42);
	ck_assert_int_eq(seen.n, 2);
	/* The stream stays stopped. */
	ck_assert_int_eq(json_stream_feed(s, "{\"d\":4}", 7), 42);
	ck_assert_int_eq(seen.n, 2);
	for (int i = 0; i < seen.n; i++)
		free(seen.objs[i]);
	json_stream_free(s);
}
END_TEST

/* ---- progress lines ----------------------------------------------------------- */

static int progress(const char *json, char *buf, size_t len, char **err)
{
	json_t *o = json_loads(json, 0, NULL);
	int rc;

	ck_assert_ptr_nonnull(o);
	rc = docker_progress_line(o, buf, len, err);
	json_decref(o);
	return rc;
}

START_TEST(test_progress_lines)
{
	char buf[256];
	char *err = NULL;

	ck_assert_int_eq(progress("{\"status\":\"Pulling fs layer\",\"id\":\"abc\"}", buf,
				  sizeof(buf), &err), 0);
	ck_assert_str_eq(buf, "abc: Pulling fs layer\n");
	ck_assert_int_eq(progress("{\"status\":\"Downloading\",\"id\":\"abc\","
				  "\"progressDetail\":{\"current\":1},\"progress\":\"[=> ] 1B\"}",
				  buf, sizeof(buf), &err), 0);
	ck_assert_str_eq(buf, "abc: Downloading [=> ] 1B\n");
	ck_assert_int_eq(progress("{\"status\":\"Digest: sha256:00\"}", buf, sizeof(buf), &err),
			 0);
	ck_assert_str_eq(buf, "Digest: sha256:00\n");
	ck_assert_int_eq(progress("{\"stream\":\"Step 1/2 : FROM x\\n\"}", buf, sizeof(buf),
				  &err), 0);
	ck_assert_str_eq(buf, "Step 1/2 : FROM x\n");
	ck_assert_int_eq(progress("{\"aux\":{\"ID\":\"sha256:00\"}}", buf, sizeof(buf), &err), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_ptr_null(err);
	/* A small buffer truncates instead of overflowing. */
	ck_assert_int_eq(progress("{\"stream\":\"0123456789\"}", buf, 5, &err), 0);
	ck_assert_str_eq(buf, "0123");
}
END_TEST

START_TEST(test_progress_errors)
{
	char buf[256];
	char *err = NULL;

	ck_assert_int_eq(progress("{\"error\":\"pull access denied\"}", buf, sizeof(buf), &err),
			 -EIO);
	ck_assert_str_eq(err, "pull access denied");
	free(err);
	err = NULL;
	ck_assert_int_eq(progress("{\"errorDetail\":{\"code\":1,\"message\":\"The command "
				  "returned 1\"},\"error\":\"short\"}", buf, sizeof(buf), &err),
			 -EIO);
	ck_assert_str_eq(err, "The command returned 1");
	free(err);
	err = NULL;
	ck_assert_int_eq(progress("{\"errorDetail\":{}}", buf, sizeof(buf), &err), -EIO);
	ck_assert_ptr_nonnull(err);
	free(err);
	/* errmsg is optional. */
	ck_assert_int_eq(progress("{\"error\":\"x\"}", buf, sizeof(buf), NULL), -EIO);
}
END_TEST

/* ---- helpers: base64, references ---------------------------------------------- */

START_TEST(test_base64)
{
	static const struct { const char *in, *std, *url; } cases[] = {
		{ "", "", "" },
		{ "{}", "e30=", "e30=" },
		{ "f", "Zg==", "Zg==" },
		{ "fo", "Zm8=", "Zm8=" },
		{ "foo", "Zm9v", "Zm9v" },
		{ "foob", "Zm9vYg==", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
		{ "\xfb\xef", "++8=", "--8=" },
		{ "\xff\xff", "//8=", "__8=" },
		{ "\xfb\xff\xfe", "+//+", "-__-" },
		{ "user:pa:ss", "dXNlcjpwYTpzcw==", "dXNlcjpwYTpzcw==" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *e = docker_base64_encode(cases[i].in, strlen(cases[i].in), false);
		char *u = docker_base64_encode(cases[i].in, strlen(cases[i].in), true);
		char *dec = NULL;
		size_t dlen = 0;

		ck_assert_str_eq(e, cases[i].std);
		ck_assert_str_eq(u, cases[i].url);
		ck_assert_int_eq(docker_base64_decode(e, &dec, &dlen), 0);
		ck_assert_str_eq(dec, cases[i].in);
		ck_assert_uint_eq(dlen, strlen(cases[i].in));
		free(dec);
		ck_assert_int_eq(docker_base64_decode(u, &dec, NULL), 0);
		ck_assert_str_eq(dec, cases[i].in);
		free(dec);
		free(e);
		free(u);
	}
	char *dec = NULL;

	ck_assert_int_eq(docker_base64_decode("Zm9v!", &dec, NULL), -EINVAL);
	ck_assert_int_eq(docker_base64_decode("Z", &dec, NULL), -EINVAL);
	ck_assert_ptr_null(dec);
}
END_TEST

/* What the decoder takes besides its own output: config.json entries written
 * by other tools, with or without padding, in either alphabet. */
START_TEST(test_base64_decode_forms)
{
	static const struct { const char *text; const char *want; size_t len; } good[] = {
		{ "Zg", "f", 1 },
		{ "Zm8", "fo", 2 },
		{ "Zm9vYg", "foob", 4 },
		{ "Zm9vYmE", "fooba", 5 },
		{ "Zg=", "f", 1 },             /* padding is not counted */
		{ "Zm9vYmFy=", "foobar", 6 },
		{ "-_8", "\xfb\xff", 2 },
		{ "+/8", "\xfb\xff", 2 },
		{ "+_-/", "\xfb\xff\xbf", 3 },  /* alphabets mixed */
		{ "Zh==", "f", 1 },            /* stray low bits in the last group */
		{ "Zm9=", "fo", 2 },
		{ "AA", "", 1 },               /* one NUL byte */
		{ "", "", 0 },
		{ "==", "", 0 },
	};
	static const char *const bad[] = {
		"Z", "Zm9vY", "Zm9vY===", "Zm9v!", "Zm 9v", "Zm9v\n", " Zm9v", "Zm9v\tYg==",
		"Zg==Zg==", "Zm=v", "Zm9v.", "Zm9v\xc3\xa9", "*", "Zm9v YmF", "Zm9v\r\nYg",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *dec = NULL;
		size_t dlen = 99;

		ck_assert_msg(docker_base64_decode(good[i].text, &dec, &dlen) == 0, "\"%s\"",
			      good[i].text);
		ck_assert_uint_eq(dlen, good[i].len);
		ck_assert_msg(memcmp(dec, good[i].want, dlen) == 0 && dec[dlen] == '\0',
			      "\"%s\"", good[i].text);
		free(dec);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *dec = (char *)"untouched";

		ck_assert_msg(docker_base64_decode(bad[i], &dec, NULL) == -EINVAL, "\"%s\"", bad[i]);
		ck_assert_ptr_null(dec);
	}
}
END_TEST

START_TEST(test_split_ref)
{
	static const struct { const char *ref, *repo, *tag; } cases[] = {
		{ "busybox", "busybox", "latest" },
		{ "busybox:1.36", "busybox", "1.36" },
		{ "127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b", "latest" },
		{ "127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b", "t" },
		{ "a/b@sha256:abc", "a/b", "sha256:abc" },
	};
	char *repo, *tag;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(docker_split_ref(cases[i].ref, &repo, &tag), 0);
		ck_assert_str_eq(repo, cases[i].repo);
		ck_assert_str_eq(tag, cases[i].tag);
		free(repo);
		free(tag);
	}
	ck_assert_int_eq(docker_split_ref("busybox:", &repo, &tag), -EINVAL);
	ck_assert_int_eq(docker_split_ref(":x", &repo, &tag), -EINVAL);
}
END_TEST

/* ---- registry auth -------------------------------------------------------------- */

static char cfgdir[128];

static void setup_cfg(void)
{
	snprintf(cfgdir, sizeof(cfgdir), "%s/cfg-XXXXXX", rootdir);
	ck_assert_ptr_nonnull(mkdtemp(cfgdir));
	setenv("DOCKER_CONFIG", cfgdir, 1);
}

static void teardown_cfg(void)
{
	unsetenv("DOCKER_CONFIG");
	remove_tree(cfgdir);
}

static void write_cfg(const char *json)
{
	char *path = path_join(cfgdir, "config.json");

	ck_assert_int_eq(write_file_atomic(path, json, strlen(json)), 0);
	free(path);
}

/* Decodes an X-Registry-Auth value back into its JSON object. */
static json_t *decode_auth(const char *auth)
{
	char *text = NULL;
	json_t *o;

	ck_assert_ptr_null(strchr(auth, '+'));
	ck_assert_ptr_null(strchr(auth, '/'));
	ck_assert_int_eq(docker_base64_decode(auth, &text, NULL), 0);
	o = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(o);
	free(text);
	return o;
}

START_TEST(test_auth_b64_form)
{
	char *auth = NULL, *err = NULL;
	json_t *o;

	/* "user:pa:ss" - the password keeps its colon. */
	write_cfg("{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"dXNlcjpwYTpzcw==\"},"
		  "\"other:1\":{\"auth\":\"eDp5\"}}}");
	ck_assert_int_eq(docker_registry_auth("127.0.0.1:5000", &auth, &err), 0);
	ck_assert_ptr_null(err);
	o = decode_auth(auth);
	ck_assert_str_eq(json_string_value(json_object_get(o, "username")), "user");
	ck_assert_str_eq(json_string_value(json_object_get(o, "password")), "pa:ss");
	ck_assert_str_eq(json_string_value(json_object_get(o, "serveraddress")), "127.0.0.1:5000");
	json_decref(o);
	free(auth);
}
END_TEST

START_TEST(test_auth_userpass_form)
{
	char *auth = NULL, *err = NULL;
	json_t *o;

	write_cfg("{\"auths\":{\"https://reg.example:443\":{\"username\":\"u\\\"q\","
		  "\"password\":\"p?w+/\"}}}");
	ck_assert_int_eq(docker_registry_auth("reg.example:443", &auth, &err), 0);
	o = decode_auth(auth);
	ck_assert_str_eq(json_string_value(json_object_get(o, "username")), "u\"q");
	ck_assert_str_eq(json_string_value(json_object_get(o, "password")), "p?w+/");
	ck_assert_str_eq(json_string_value(json_object_get(o, "serveraddress")), "reg.example:443");
	json_decref(o);
	free(auth);
}
END_TEST

START_TEST(test_auth_missing)
{
	char *auth = NULL, *err = NULL;

	/* No config file at all. */
	ck_assert_int_eq(docker_registry_auth("127.0.0.1:5000", &auth, &err), -ENOENT);
	ck_assert_ptr_null(auth);
	ck_assert_ptr_nonnull(err);
	free(err);
	err = NULL;
	/* A file without that registry, and an empty credential-helper entry. */
	write_cfg("{\"auths\":{\"elsewhere:1\":{\"auth\":\"eDp5\"},\"helper:1\":{}}}");
	ck_assert_int_eq(docker_registry_auth("127.0.0.1:5000", &auth, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "127.0.0.1:5000"));
	free(err);
	err = NULL;
	ck_assert_int_eq(docker_registry_auth("helper:1", &auth, &err), -ENOENT);
	free(err);
	err = NULL;
	write_cfg("{\"auths\":");
	ck_assert_int_eq(docker_registry_auth("127.0.0.1:5000", &auth, &err), -EPROTO);
	free(err);
	ck_assert_ptr_null(auth);
}
END_TEST

/* ---- credential helpers and tokens ----------------------------------------------- */

/* docker-credential-sebsfstest: answers by the server URL on its stdin. */
static const char helper_script[] =
	"#!/bin/sh\n"
	"server=$(cat)\n"
	"case \"$server\" in\n"
	"127.0.0.1:5000) printf '{\"ServerURL\":\"%s\",\"Username\":\"helper-user\","
	"\"Secret\":\"s3cr\\\\\"et\"}\\n' \"$server\" ;;\n"
	"token.example) echo 'helper noise' >&2;"
	" printf '{\"ServerURL\":\"x\",\"Username\":\"<token>\",\"Secret\":\"idtok\"}' ;;\n"
	"missing.example) echo 'credentials not found in native keychain'; exit 1 ;;\n"
	"broken.example) echo 'keychain is locked' >&2; exit 3 ;;\n"
	"garbage.example) echo 'Username=u Secret=hunter2' ;;\n"
	"empty.example) printf '{\"ServerURL\":\"\",\"Username\":\"\",\"Secret\":\"\"}' ;;\n"
	"slow.example) exec sleep 30 ;;\n"
	"*) echo \"unexpected server $server\"; exit 9 ;;\n"
	"esac\n";

static char *saved_path;

static void setup_helper(void)
{
	setup_cfg();
	char *bin = path_join(cfgdir, "bin");
	char *helper = path_join(bin, "docker-credential-sebsfstest");
	const char *path = getenv("PATH");

	ck_assert_int_eq(mkdir(bin, 0755), 0);
	ck_assert_int_eq(write_file_atomic(helper, helper_script, strlen(helper_script)), 0);
	ck_assert_int_eq(chmod(helper, 0755), 0);
	saved_path = path ? strdup(path) : NULL;
	char *with_bin = str_printf("%s:%s", bin, path ? path : "/usr/bin:/bin");
	setenv("PATH", with_bin, 1);
	free(with_bin);
	free(helper);
	free(bin);
}

static void teardown_helper(void)
{
	if (saved_path)
		setenv("PATH", saved_path, 1);
	free(saved_path);
	saved_path = NULL;
	teardown_cfg();
}

static int auth_for(const char *registry, json_t **o, char **err)
{
	char *auth = NULL;
	int rc;

	*o = NULL;
	*err = NULL;
	rc = docker_registry_auth(registry, &auth, err);
	if (rc == 0) {
		ck_assert_ptr_nonnull(auth);
		*o = decode_auth(auth);
	} else {
		ck_assert_ptr_null(auth);
		ck_assert_ptr_nonnull(*err);
	}
	free(auth);
	return rc;
}

static const char *str_of(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

START_TEST(test_auth_creds_store)
{
	json_t *o;
	char *err;

	/* the store wins over an auths entry, as in Docker's clients */
	write_cfg("{\"credsStore\":\"sebsfstest\","
		  "\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"eDp5\"}}}");
	ck_assert_int_eq(auth_for("127.0.0.1:5000", &o, &err), 0);
	ck_assert_str_eq(str_of(o, "username"), "helper-user");
	ck_assert_str_eq(str_of(o, "password"), "s3cr\"et");
	ck_assert_str_eq(str_of(o, "serveraddress"), "127.0.0.1:5000");
	ck_assert_int_eq(json_object_size(o), 3);
	json_decref(o);
	/* "<token>": the secret is an identity token; the helper's stderr is ignored */
	ck_assert_int_eq(auth_for("token.example", &o, &err), 0);
	ck_assert_str_eq(str_of(o, "identitytoken"), "idtok");
	ck_assert_str_eq(str_of(o, "serveraddress"), "token.example");
	ck_assert_ptr_null(json_object_get(o, "username"));
	ck_assert_ptr_null(json_object_get(o, "password"));
	json_decref(o);
	/* not found: anonymous, like Docker */
	ck_assert_int_eq(auth_for("missing.example", &o, &err), -ENOENT);
	ck_assert_msg(strstr(err, "docker-credential-sebsfstest has no credentials for"
			     " missing.example"), "%s", err);
	free(err);
	ck_assert_int_eq(auth_for("empty.example", &o, &err), -ENOENT);
	free(err);
}
END_TEST

START_TEST(test_auth_helper_failures)
{
	json_t *o;
	char *err;

	write_cfg("{\"credsStore\":\"sebsfstest\"}");
	ck_assert_int_eq(auth_for("broken.example", &o, &err), -EIO);
	ck_assert_msg(strstr(err, "docker-credential-sebsfstest get failed for broken.example"
			     " (exit status 3): keychain is locked"), "%s", err);
	free(err);
	ck_assert_int_eq(auth_for("garbage.example", &o, &err), -EPROTO);
	ck_assert_msg(!strstr(err, "hunter2"), "the secret is in the message: %s", err);
	ck_assert_msg(strstr(err, "not a JSON object with Username and Secret"), "%s", err);
	free(err);
	/* a helper that is not installed is no "anonymous" */
	write_cfg("{\"credsStore\":\"sebsfs-not-installed\"}");
	ck_assert_int_eq(auth_for("127.0.0.1:5000", &o, &err), -EIO);
	ck_assert_msg(strstr(err, "docker-credential-sebsfs-not-installed") &&
		      strstr(err, "not installed"), "%s", err);
	free(err);
	/* the name becomes a program name: no paths */
	write_cfg("{\"credHelpers\":{\"127.0.0.1:5000\":\"../../tmp/x\"}}");
	ck_assert_int_eq(auth_for("127.0.0.1:5000", &o, &err), -EINVAL);
	ck_assert_msg(strstr(err, "has a '/'"), "%s", err);
	free(err);
	/* a helper that hangs is stopped */
	char *auth = NULL;
	err = NULL;
	ck_assert_int_eq(docker_credential_helper_get("sebsfstest", "slow.example", 1, &auth, &err),
			 -ETIMEDOUT);
	ck_assert_ptr_null(auth);
	ck_assert_msg(strstr(err, "did not answer within 1 s"), "%s", err);
	free(err);
}
END_TEST

START_TEST(test_auth_cred_helpers)
{
	json_t *o;
	char *err, *auth = NULL, *helper = NULL;
	static const char cfg[] =
		"{\"credsStore\":\"sebsfs-not-installed\","
		"\"credHelpers\":{\"127.0.0.1:5000\":\"sebsfstest\",\"file.example\":\"\"},"
		"\"auths\":{\"file.example\":{\"username\":\"f\",\"password\":\"p\"}}}";

	write_cfg(cfg);
	/* the registry's own helper wins over credsStore */
	ck_assert_int_eq(auth_for("127.0.0.1:5000", &o, &err), 0);
	ck_assert_str_eq(str_of(o, "username"), "helper-user");
	json_decref(o);
	/* an empty helper name means the file */
	ck_assert_int_eq(auth_for("file.example", &o, &err), 0);
	ck_assert_str_eq(str_of(o, "username"), "f");
	json_decref(o);
	/* other registries: credsStore */
	ck_assert_int_eq(auth_for("other.example", &o, &err), -EIO);
	free(err);
	/* the parse names the helper and runs nothing */
	err = NULL;
	ck_assert_int_eq(docker_registry_auth_parse(cfg, strlen(cfg), "c.json", "127.0.0.1:5000",
						    &auth, &helper, &err), 0);
	ck_assert_ptr_null(auth);
	ck_assert_str_eq(helper, "sebsfstest");
	free(helper);
	ck_assert_int_eq(docker_registry_auth_parse(cfg, strlen(cfg), "c.json", "x", &auth,
						    &helper, &err), 0);
	ck_assert_str_eq(helper, "sebsfs-not-installed");
	free(helper);
}
END_TEST

START_TEST(test_auth_tokens_in_auths)
{
	json_t *o;
	char *err;

	/* what `docker login` leaves for a registry with an OAuth2 token flow */
	write_cfg("{\"auths\":{\"id.example\":{\"auth\":\"dTpw\",\"identitytoken\":\"rt\"},"
		  "\"idonly.example\":{\"identitytoken\":\"rt2\"},"
		  "\"bearer.example\":{\"registrytoken\":\"bt\"}}}");
	ck_assert_int_eq(auth_for("id.example", &o, &err), 0);
	ck_assert_str_eq(str_of(o, "username"), "u");
	ck_assert_str_eq(str_of(o, "password"), "p");
	ck_assert_str_eq(str_of(o, "identitytoken"), "rt");
	ck_assert_int_eq(json_object_size(o), 4);
	json_decref(o);
	ck_assert_int_eq(auth_for("idonly.example", &o, &err), 0);
	ck_assert_str_eq(str_of(o, "identitytoken"), "rt2");
	ck_assert_str_eq(str_of(o, "serveraddress"), "idonly.example");
	ck_assert_int_eq(json_object_size(o), 2);
	json_decref(o);
	ck_assert_int_eq(auth_for("bearer.example", &o, &err), 0);
	ck_assert_str_eq(str_of(o, "registrytoken"), "bt");
	ck_assert_int_eq(json_object_size(o), 2);
	json_decref(o);
}
END_TEST

START_TEST(test_credential_output_parse)
{
	char *auth = NULL, *err = NULL;
	static const char ok[] = "{\"ServerURL\":\"r\",\"Username\":\"u\",\"Secret\":\"s\"}";

	/* not NUL-terminated: only len bytes count */
	ck_assert_int_eq(docker_credential_output_parse(ok, strlen(ok), 0, "h", "r", &auth, &err),
			 0);
	json_t *o = decode_auth(auth);
	ck_assert_str_eq(str_of(o, "password"), "s");
	json_decref(o);
	free(auth);
	ck_assert_int_eq(docker_credential_output_parse(ok, 10, 0, "h", "r", &auth, &err),
			 -EPROTO);
	free(err);
	err = NULL;
	/* a failed helper's output is never taken for credentials */
	ck_assert_int_eq(docker_credential_output_parse(ok, strlen(ok), 1, "h", "r", &auth, &err),
			 -EIO);
	ck_assert_ptr_null(auth);
	free(err);
	err = NULL;
	static const char nf[] = "  credentials not found in native keychain\r\n";
	ck_assert_int_eq(docker_credential_output_parse(nf, strlen(nf), 1, "h", "r", &auth, &err),
			 -ENOENT);
	free(err);
	err = NULL;
	ck_assert_int_eq(docker_credential_output_parse("", 0, 2, "h", "r", &auth, &err), -EIO);
	ck_assert_msg(strstr(err, "(exit status 2): (no message)"), "%s", err);
	free(err);
}
END_TEST

/* ---- client without a daemon ---------------------------------------------------- */

START_TEST(test_missing_socket)
{
	char path[160], *err = NULL, *ver = (char *)"x";
	struct docker *d;

	snprintf(path, sizeof(path), "unix://%s/no-such.sock", rootdir);
	d = docker_new(path, &err);
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(docker_endpoint(d), path);
	/* -ENOENT is reserved for missing images and containers. */
	ck_assert_int_eq(docker_ping(d, &ver, &err), -ECONNREFUSED);
	ck_assert_ptr_null(ver);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	free(err);
	err = NULL;
	/* Calls that negotiate first report the same. */
	ck_assert_int_eq(docker_image_inspect(d, "x", NULL, &err), -ECONNREFUSED);
	free(err);
	docker_free(d);
	docker_free(NULL);
}
END_TEST

START_TEST(test_refused_tcp)
{
	char *err = NULL;
	struct docker *d = docker_new("tcp://127.0.0.1:1", &err);

	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(docker_ping(d, NULL, &err), -ECONNREFUSED);
	ck_assert_ptr_nonnull(strstr(err, "tcp://127.0.0.1:1"));
	free(err);
	docker_free(d);
}
END_TEST

START_TEST(test_bad_endpoint)
{
	char *err = NULL;

	ck_assert_ptr_null(docker_new("ftp://x", &err));
	ck_assert_ptr_nonnull(strstr(err, "ftp://x"));
	free(err);
	err = NULL;
	ck_assert_ptr_null(docker_new("unix://relative.sock", &err));
	free(err);
	ck_assert_ptr_null(docker_new("ftp://x", NULL));
}
END_TEST

/* ---- tar writing (ustar, enough for docker import and build contexts) --------- */

struct membuf {
	char *p;
	size_t len, cap;
};

static void mb_add(struct membuf *mb, const void *data, size_t len)
{
	if (mb->len + len > mb->cap) {
		mb->cap = (mb->len + len) * 2;
		mb->p = realloc(mb->p, mb->cap);
		ck_assert_ptr_nonnull(mb->p);
	}
	memcpy(mb->p + mb->len, data, len);
	mb->len += len;
}

static void tar_entry(struct membuf *mb, const char *name, char type, unsigned mode,
		      const void *data, size_t size, const char *link)
{
	char h[512] = { 0 };
	unsigned sum = 0;
	static const char zeros[512];

	ck_assert_uint_lt(strlen(name), 100);
	memcpy(h, name, strlen(name));
	snprintf(h + 100, 8, "%07o", mode);
	snprintf(h + 108, 8, "%07o", 0u);
	snprintf(h + 116, 8, "%07o", 0u);
	snprintf(h + 124, 12, "%011zo", size);
	snprintf(h + 136, 12, "%011o", 1700000000u);
	memset(h + 148, ' ', 8);
	h[156] = type;
	if (link)
		memcpy(h + 157, link, strlen(link));
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (size_t i = 0; i < sizeof(h); i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	mb_add(mb, h, sizeof(h));
	if (size > 0) {
		mb_add(mb, data, size);
		mb_add(mb, zeros, (512 - size % 512) % 512);
	}
}

static void tar_end(struct membuf *mb)
{
	static const char zeros[1024];

	mb_add(mb, zeros, sizeof(zeros));
}

/* ---- dockerd fixture ------------------------------------------------------------- */

static pid_t registry_pid = -1;
static int registry_port;
static char fixdir[128];

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static bool port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static void start_registry(void)
{
	char *cfg = path_join(fixdir, "registry.yml");
	char *data = path_join(fixdir, "registry-data");
	char *logp = path_join(fixdir, "registry.log");
	char *yml;

	registry_port = free_port();
	ck_assert_int_eq(mkdir(data, 0700), 0);
	yml = str_printf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
			 "    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%d\n",
			 data, registry_port);
	ck_assert_int_eq(write_file_atomic(cfg, yml, strlen(yml)), 0);
	registry_pid = fork();
	ck_assert_int_ge(registry_pid, 0);
	if (registry_pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("docker-registry", "docker-registry", "serve", cfg, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !port_open(registry_port); i++)
		usleep(50 * 1000);
	ck_assert_msg(port_open(registry_port), "docker-registry did not start (see %s)", logp);
	free(yml);
	free(cfg);
	free(data);
	free(logp);
}

static void stop_registry(void)
{
	if (registry_pid > 0) {
		kill(registry_pid, SIGTERM);
		waitpid(registry_pid, NULL, 0);
		registry_pid = -1;
	}
}

static void import_busybox(void)
{
	struct membuf mb = { 0 };
	char *bb = NULL, *tarpath = path_join(fixdir, "busybox.tar");
	size_t bblen = 0;
	int status = -1;
	static const char *const applets[] = { "sh", "sleep", "touch", "echo", "false", "cat" };

	ck_assert_msg(read_file("/bin/busybox", &bb, &bblen) == 0,
		      "/bin/busybox is missing: apt-get install busybox-static");
	tar_entry(&mb, "bin/", '5', 0755, NULL, 0, NULL);
	tar_entry(&mb, "bin/busybox", '0', 0755, bb, bblen, NULL);
	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
		char name[32];

		snprintf(name, sizeof(name), "bin/%s", applets[i]);
		tar_entry(&mb, name, '2', 0777, NULL, 0, "busybox");
	}
	tar_entry(&mb, "tmp/", '5', 01777, NULL, 0, NULL);
	tar_end(&mb);
	ck_assert_int_eq(write_file_atomic(tarpath, mb.p, mb.len), 0);

	const char *const argv[] = { "docker", "import", tarpath, BUSYBOX_IMAGE, NULL };
	struct spawn_opts opts = { .out_fd = -1, .cancel_fd = -1 };

	ck_assert_msg(spawn_wait(argv, &opts, &status) == 0, "cannot run the docker CLI");
	/* No daemon is a failure, not a skip: CI provides one. */
	ck_assert_msg(status == 0, "docker import %s failed (status %d): is dockerd running?",
		      BUSYBOX_IMAGE, status);
	free(bb);
	free(mb.p);
	free(tarpath);
}

/* Tests run forked and a failed assertion ends the child at once, so every
 * container ID is written down for the parent's teardown to force-remove. */
static void track_container(const char *id)
{
	char *path = path_join(fixdir, "containers");
	FILE *f = fopen(path, "a");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", id);
	fclose(f);
	free(path);
}

static void remove_tracked_containers(struct docker *d)
{
	char *path = path_join(fixdir, "containers");
	FILE *f = fopen(path, "r");
	char line[128];

	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		docker_container_remove(d, line, true, NULL);
	}
	if (f)
		fclose(f);
	free(path);
}

static void setup_dockerd(void)
{
	snprintf(fixdir, sizeof(fixdir), "%s/dockerd-XXXXXX", rootdir);
	ck_assert_ptr_nonnull(mkdtemp(fixdir));
	import_busybox();
	start_registry();
}

static void teardown_dockerd(void)
{
	struct docker *d = docker_new(NULL, NULL);
	char ref[128];

	stop_registry();
	if (d) {
		remove_tracked_containers(d);
		snprintf(ref, sizeof(ref), "127.0.0.1:%d/sebsfs-test/busybox:latest", registry_port);
		docker_image_remove(d, ref, true, NULL);
		docker_image_remove(d, "127.0.0.1:1/sebsfs-test/busybox:latest", true, NULL);
		docker_image_remove(d, BUILT_IMAGE, true, NULL);
		docker_image_remove(d, BROKEN_IMAGE, true, NULL);
		docker_image_remove(d, BUSYBOX_IMAGE, true, NULL);
		docker_free(d);
	}
	remove_tree(fixdir);
}

static struct docker *connect_daemon(void)
{
	char *err = NULL;
	struct docker *d = docker_new(NULL, &err);

	ck_assert_msg(d != NULL, "docker_new: %s", err ? err : "?");
	return d;
}

/* ---- dockerd tests ---------------------------------------------------------------- */

START_TEST(test_ping)
{
	struct docker *d = connect_daemon();
	char *ver = NULL, *err = NULL;
	unsigned major, minor;
	int n = 0;

	ck_assert_msg(docker_ping(d, &ver, &err) == 0, "ping %s: %s", docker_endpoint(d),
		      err ? err : "?");
	ck_assert_ptr_nonnull(ver);
	ck_assert_int_eq(sscanf(ver, "%u.%u%n", &major, &minor, &n), 2);
	ck_assert_int_eq(ver[n], '\0');
	ck_assert_uint_eq(major, 1);
	ck_assert_uint_ge(minor, 24);
	ck_assert_uint_le(minor, 43);
	free(ver);
	/* Pinging again on the same connection works (handle reuse). */
	ck_assert_int_eq(docker_ping(d, NULL, &err), 0);
	docker_free(d);
}
END_TEST

START_TEST(test_inspect)
{
	struct docker *d = connect_daemon();
	char *id = NULL, *err = NULL;

	ck_assert_int_eq(docker_image_inspect(d, "sebsfs-test/no-such-image:nope", &id, &err),
			 -ENOENT);
	ck_assert_ptr_null(id);
	ck_assert_msg(strstr(err, "No such image") != NULL, "message: %s", err);
	ck_assert_ptr_nonnull(strstr(err, "sebsfs-test/no-such-image:nope"));
	ck_assert_ptr_nonnull(strstr(err, "(404)"));
	free(err);
	err = NULL;
	ck_assert_msg(docker_image_inspect(d, BUSYBOX_IMAGE, &id, &err) == 0, "%s", err);
	ck_assert_int_eq(strncmp(id, "sha256:", 7), 0);
	free(id);
	docker_free(d);
}
END_TEST

START_TEST(test_inspect_info)
{
	struct docker *d = connect_daemon();
	struct docker_image_info info = { 0 };
	char *id = NULL, *err = NULL, *digest = NULL;
	char repo[96], ref[128], want[256];
	bool found = false;

	/* Absent: -ENOENT, the daemon's message, and nothing left to free. */
	ck_assert_int_eq(docker_image_inspect_info(d, "sebsfs-test/no-such-image:nope", &info, &err),
			 -ENOENT);
	ck_assert_ptr_null(info.id);
	ck_assert_ptr_null(info.repo_digests);
	ck_assert_msg(strstr(err, "No such image") != NULL, "message: %s", err);
	free(err);
	err = NULL;

	/* The imported busybox: same ID as the plain inspect, a real size, no digests. */
	ck_assert_msg(docker_image_inspect(d, BUSYBOX_IMAGE, &id, &err) == 0, "%s", err);
	ck_assert_msg(docker_image_inspect_info(d, BUSYBOX_IMAGE, &info, &err) == 0, "%s", err);
	ck_assert_str_eq(info.id, id);
	ck_assert_int_gt(info.size, 100 * 1024);  /* at least the busybox binary */
	ck_assert_ptr_nonnull(info.repo_digests);
	ck_assert_ptr_null(info.repo_digests[0]);
	docker_image_info_clear(&info);
	ck_assert_ptr_null(info.id);
	docker_image_info_clear(&info);  /* twice is fine */

	/* Pushed: RepoDigests names the registry repository and the pushed digest (the
	 * ref test_push uses, which the teardown removes if this test dies). */
	snprintf(repo, sizeof(repo), "127.0.0.1:%d/sebsfs-test/busybox", registry_port);
	snprintf(ref, sizeof(ref), "%s:latest", repo);
	ck_assert_msg(docker_image_tag(d, BUSYBOX_IMAGE, repo, "latest", &err) == 0, "%s", err);
	ck_assert_msg(docker_image_push(d, ref, NULL, NULL, NULL, &digest, &err) == 0, "%s", err);
	snprintf(want, sizeof(want), "%s@%s", repo, digest);
	ck_assert_msg(docker_image_inspect_info(d, ref, &info, &err) == 0, "%s", err);
	ck_assert_str_eq(info.id, id);
	for (char **p = info.repo_digests; *p; p++)
		found = found || strcmp(*p, want) == 0;
	ck_assert_msg(found, "%s not in RepoDigests (first: %s)", want,
		      info.repo_digests[0] ? info.repo_digests[0] : "none");
	docker_image_info_clear(&info);
	ck_assert_int_eq(docker_image_remove(d, ref, false, &err), 0);
	free(digest);
	free(id);
	docker_free(d);
}
END_TEST

START_TEST(test_container_run)
{
	struct docker *d = connect_daemon();
	char *err = NULL, *id = NULL, *content = NULL;
	char hostdir[160], bind[256], user[64], name[64];
	struct collected c = { 0 };
	int code = -1;

	snprintf(hostdir, sizeof(hostdir), "%s/mnt-XXXXXX", fixdir);
	ck_assert_ptr_nonnull(mkdtemp(hostdir));
	snprintf(bind, sizeof(bind), "%s:/mnt/x", hostdir);
	snprintf(user, sizeof(user), "%u:%u", (unsigned)getuid(), (unsigned)getgid());
	snprintf(name, sizeof(name), "sebsfs-test-%d", (int)getpid());

	const char *const env[] = { "SEBSFS_VAR=hello env", "OTHER=1", NULL };
	const char *const binds[] = { bind, NULL };
	const char *const cmd[] = { "sh", "-c",
				    "echo out; echo err >&2; echo \"$SEBSFS_VAR\" > file; exit 3",
				    NULL };
	struct docker_container_spec spec = {
		.image = BUSYBOX_IMAGE, .env = env, .binds = binds, .cmd = cmd,
		.working_dir = "/mnt/x", .user = user, .name = name,
	};

	ck_assert_msg(docker_container_create(d, &spec, &id, &err) == 0, "%s", err);
	ck_assert_ptr_nonnull(id);
	track_container(id);
	/* The same name again conflicts. */
	ck_assert_int_eq(docker_container_create(d, &spec, NULL, &err), -EEXIST);
	free(err);
	err = NULL;
	ck_assert_msg(docker_container_start(d, id, &err) == 0, "%s", err);
	ck_assert_msg(docker_container_logs(d, id, true, collect, &c, &err) == 0, "%s", err);
	ck_assert_str_eq(c.buf[1], "out\n");
	ck_assert_str_eq(c.buf[2], "err\n");
	ck_assert_msg(docker_container_wait(d, id, &code, &err) == 0, "%s", err);
	ck_assert_int_eq(code, 3);
	/* Logs without follow, after the fact. */
	memset(&c, 0, sizeof(c));
	ck_assert_msg(docker_container_logs(d, id, false, collect, &c, &err) == 0, "%s", err);
	ck_assert_str_eq(c.buf[1], "out\n");
	ck_assert_str_eq(c.buf[2], "err\n");

	char *file = path_join(hostdir, "file");
	struct stat st;

	ck_assert_int_eq(read_file(file, &content, NULL), 0);
	ck_assert_str_eq(content, "hello env\n");
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_uint_eq(st.st_uid, getuid());
	free(content);
	free(file);

	ck_assert_msg(docker_container_remove(d, id, false, &err) == 0, "%s", err);
	ck_assert_int_eq(docker_container_remove(d, id, false, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "No such container"));
	free(err);
	free(id);
	docker_free(d);
}
END_TEST

START_TEST(test_create_missing_image)
{
	struct docker *d = connect_daemon();
	char *err = NULL, *id = NULL;
	struct docker_container_spec spec = { .image = "sebsfs-test/no-such-image:nope" };

	ck_assert_int_eq(docker_container_create(d, &spec, &id, &err), -ENOENT);
	ck_assert_ptr_null(id);
	ck_assert_ptr_nonnull(strstr(err, "No such image"));
	free(err);
	docker_free(d);
}
END_TEST

/* Labels go onto the container, and listing by label finds it (in any
 * state) and nothing else. */
START_TEST(test_container_labels_and_list)
{
	struct docker *d = connect_daemon();
	struct docker_container_summary *list = NULL;
	size_t n = 99;
	char *err = NULL, *id = NULL;
	char mine[96], other[96], filter[128];

	snprintf(mine, sizeof(mine), "sebsfs.test.cache=c%d", (int)getpid());
	snprintf(other, sizeof(other), "sebsfs.test.owner=o%d/x", (int)getpid());
	const char *const labels[] = { mine, other, NULL };
	const char *const cmd[] = { "true", NULL };
	struct docker_container_spec spec = { .image = BUSYBOX_IMAGE, .cmd = cmd, .labels = labels };

	ck_assert_msg(docker_container_create(d, &spec, &id, &err) == 0, "%s", err);
	track_container(id);
	ck_assert_msg(docker_container_list(d, mine, &list, &n, &err) == 0, "%s", err);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(list[0].id, id);
	ck_assert_str_eq(list[0].state, "created");
	ck_assert_str_eq(docker_label_value(list[0].labels, "sebsfs.test.cache"), mine + 18);
	ck_assert_str_eq(docker_label_value(list[0].labels, "sebsfs.test.owner"), other + 18);
	ck_assert_ptr_null(docker_label_value(list[0].labels, "sebsfs.test"));
	docker_container_list_free(list, n);

	/* by name alone, and a value nobody has */
	snprintf(filter, sizeof(filter), "sebsfs.test.cache");
	ck_assert_msg(docker_container_list(d, filter, &list, &n, &err) == 0, "%s", err);
	bool found = false;
	for (size_t i = 0; i < n; i++)
		found = found || strcmp(list[i].id, id) == 0;
	ck_assert(found);
	docker_container_list_free(list, n);
	snprintf(filter, sizeof(filter), "%s-not", mine);
	ck_assert_msg(docker_container_list(d, filter, &list, &n, &err) == 0, "%s", err);
	ck_assert_uint_eq(n, 0);
	docker_container_list_free(list, n);

	/* a label that is not name=value is refused before anything is created */
	const char *const bad[] = { "no-equals-sign", NULL };
	spec.labels = bad;
	ck_assert_int_eq(docker_container_create(d, &spec, NULL, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "no-equals-sign"));
	free(err);
	err = NULL;

	ck_assert_msg(docker_container_remove(d, id, true, &err) == 0, "%s", err);
	ck_assert_msg(docker_container_list(d, mine, &list, &n, &err) == 0, "%s", err);
	ck_assert_uint_eq(n, 0);
	docker_container_list_free(list, n);
	free(id);
	docker_free(d);
}
END_TEST

START_TEST(test_pull_unreachable)
{
	struct docker *d = connect_daemon();
	char *err = NULL;
	struct collected c = { 0 };
	time_t t0 = time(NULL);
	int rc = docker_image_pull(d, "127.0.0.1:1/nope:latest", NULL, collect, &c, &err);

	ck_assert_int_ne(rc, 0);
	ck_assert_msg(rc == -EIO || rc == -ENOENT || rc == -EINVAL, "rc %d: %s", rc, err);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "127.0.0.1:1") != NULL, "message: %s", err);
	ck_assert_int_lt(time(NULL) - t0, 30);
	free(err);
	docker_free(d);
}
END_TEST

struct feeder {
	int fd;
	struct membuf tar;
};

static void *feed_context(void *arg)
{
	struct feeder *f = arg;
	size_t off = 0;

	/* Small writes, so the upload really streams through the pipe. */
	while (off < f->tar.len) {
		size_t n = f->tar.len - off < 700 ? f->tar.len - off : 700;
		ssize_t w = write(f->fd, f->tar.p + off, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(f->fd);
	return NULL;
}

/* Builds dockerfile through a pipe fed by a thread. */
static int build_through_pipe(struct docker *d, const char *tag, const char *dockerfile,
			      const char *const *args, struct collected *c, char **id, char **err)
{
	struct feeder f = { 0 };
	pthread_t th;
	int fds[2], rc;

	tar_entry(&f.tar, "Dockerfile", '0', 0644, dockerfile, strlen(dockerfile), NULL);
	tar_end(&f.tar);
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	f.fd = fds[1];
	ck_assert_int_eq(pthread_create(&th, NULL, feed_context, &f), 0);
	rc = docker_image_build(d, tag, args, NULL, fds[0], collect, c, id, err);
	/* A failed build may stop reading early; unblock the writer. */
	close(fds[0]);
	pthread_join(th, NULL);
	free(f.tar.p);
	return rc;
}

/* The archive API both ways: a tar streamed in through a pipe, the
 * container's change streamed back to a callback; a receiver that stops,
 * a missing path and a cancelled handle end the transfer plainly. */
static int collect_data(void *ctx, const void *data, size_t len)
{
	mb_add(ctx, data, len);
	return 0;
}

static int refuse_data(void *ctx, const void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return -EPIPE;
}

static bool mem_has(const struct membuf *mb, const char *text)
{
	size_t n = strlen(text);

	for (size_t i = 0; mb->len >= n && i <= mb->len - n; i++)
		if (!memcmp(mb->p + i, text, n))
			return true;
	return false;
}

START_TEST(test_container_archive)
{
	struct docker *d = connect_daemon();
	char *err = NULL, *id = NULL;
	const char *const cmd[] = { "sh", "-c", "cat /tmp/in/a /tmp/in/a > /tmp/in/b", NULL };
	struct docker_container_spec spec = { .image = BUSYBOX_IMAGE, .cmd = cmd };
	struct feeder f = { 0 };
	struct membuf got = { 0 };
	pthread_t th;
	int fds[2], code = -1;

	ck_assert_msg(docker_container_create(d, &spec, &id, &err) == 0, "%s", err);
	track_container(id);
	tar_entry(&f.tar, "in/", '5', 0755, NULL, 0, NULL);
	tar_entry(&f.tar, "in/a", '0', 0644, "hello\n", 6, NULL);
	tar_end(&f.tar);
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	f.fd = fds[1];
	ck_assert_int_eq(pthread_create(&th, NULL, feed_context, &f), 0);
	ck_assert_msg(docker_container_archive_put(d, id, "/tmp", fds[0], &err) == 0, "%s", err);
	close(fds[0]);
	pthread_join(th, NULL);
	free(f.tar.p);

	ck_assert_int_eq(docker_container_archive_put(d, id, "/no/such/dir", -1, &err), -EBADF);
	free(err);
	err = NULL;
	ck_assert_msg(docker_container_start(d, id, &err) == 0, "%s", err);
	ck_assert_msg(docker_container_wait(d, id, &code, &err) == 0, "%s", err);
	ck_assert_int_eq(code, 0);

	ck_assert_msg(docker_container_archive_get(d, id, "/tmp/in", collect_data, &got, &err) == 0,
		      "%s", err);
	ck_assert(mem_has(&got, "in/b"));
	ck_assert(mem_has(&got, "hello\nhello\n"));
	free(got.p);

	ck_assert_int_eq(docker_container_archive_get(d, id, "/tmp/in", refuse_data, NULL, &err),
			 -EPIPE);
	ck_assert_msg(strstr(err, "receiver stopped"), "%s", err);
	free(err);
	err = NULL;
	ck_assert_int_eq(docker_container_archive_get(d, id, "/no/such", collect_data, &got, &err),
			 -ENOENT);
	free(err);
	err = NULL;
	docker_cancel(d);
	ck_assert_int_eq(docker_container_archive_get(d, id, "/tmp/in", collect_data, &got, &err),
			 -ECANCELED);
	free(err);
	err = NULL;
	docker_reset_cancel(d);
	ck_assert_msg(docker_container_remove(d, id, true, &err) == 0, "%s", err);
	free(id);
	docker_free(d);
}
END_TEST

START_TEST(test_build)
{
	struct docker *d = connect_daemon();
	char *err = NULL, *id = NULL, *inspected = NULL;
	struct collected c = { 0 };
	const char *const args[] = { "GREETING=hi there & \"friends\"", NULL };

	ck_assert_msg(build_through_pipe(d, BUILT_IMAGE,
					 "FROM " BUSYBOX_IMAGE "\nARG GREETING\n"
					 "RUN echo $GREETING > /greeting\n",
					 args, &c, &id, &err) == 0,
		      "%s\n%s", err, c.buf[0]);
	ck_assert_ptr_nonnull(id);
	ck_assert_int_eq(strncmp(id, "sha256:", 7), 0);
	ck_assert_msg(strstr(c.buf[0], "Step 3/3") != NULL, "output: %s", c.buf[0]);
	ck_assert_int_eq(docker_image_inspect(d, BUILT_IMAGE, &inspected, &err), 0);
	ck_assert_str_eq(id, inspected);
	free(inspected);
	free(id);

	/* The build arg reached the RUN step. */
	const char *const cmd[] = { "cat", "/greeting", NULL };
	struct docker_container_spec spec = { .image = BUILT_IMAGE, .cmd = cmd };
	char *cid = NULL;
	int code = -1;

	memset(&c, 0, sizeof(c));
	ck_assert_msg(docker_container_create(d, &spec, &cid, &err) == 0, "%s", err);
	track_container(cid);
	ck_assert_int_eq(docker_container_start(d, cid, &err), 0);
	ck_assert_int_eq(docker_container_wait(d, cid, &code, &err), 0);
	ck_assert_int_eq(code, 0);
	ck_assert_int_eq(docker_container_logs(d, cid, false, collect, &c, &err), 0);
	ck_assert_str_eq(c.buf[1], "hi there & \"friends\"\n");
	ck_assert_int_eq(docker_container_remove(d, cid, true, &err), 0);
	free(cid);
	docker_free(d);
}
END_TEST

START_TEST(test_build_broken)
{
	struct docker *d = connect_daemon();
	char *err = NULL, *id = NULL;
	struct collected c = { 0 };

	ck_assert_int_eq(build_through_pipe(d, BROKEN_IMAGE, "FROM " BUSYBOX_IMAGE "\nRUN false\n",
					    NULL, &c, &id, &err),
			 -EIO);
	ck_assert_ptr_null(id);
	ck_assert_msg(strstr(err, "returned a non-zero code") != NULL, "message: %s", err);
	ck_assert_int_eq(docker_image_inspect(d, BROKEN_IMAGE, NULL, NULL), -ENOENT);
	free(err);
	err = NULL;

	/* A bad build arg never reaches the daemon. */
	const char *const bad[] = { "NOEQUALS", NULL };

	ck_assert_int_eq(docker_image_build(d, BROKEN_IMAGE, bad, NULL, 0, NULL, NULL, NULL, &err),
			 -EINVAL);
	free(err);
	docker_free(d);
}
END_TEST

START_TEST(test_push)
{
	struct docker *d = connect_daemon();
	char *err = NULL, *digest = NULL;
	char repo[96], ref[128];
	struct collected c = { 0 };

	snprintf(repo, sizeof(repo), "127.0.0.1:%d/sebsfs-test/busybox", registry_port);
	snprintf(ref, sizeof(ref), "%s:latest", repo);
	ck_assert_msg(docker_image_tag(d, BUSYBOX_IMAGE, repo, "latest", &err) == 0, "%s", err);
	ck_assert_msg(docker_image_push(d, ref, NULL, collect, &c, &digest, &err) == 0, "%s\n%s",
		      err, c.buf[0]);
	ck_assert_ptr_nonnull(digest);
	ck_assert_int_eq(strncmp(digest, "sha256:", 7), 0);
	ck_assert_uint_eq(strlen(digest), 7 + 64);
	ck_assert_ptr_nonnull(strstr(c.buf[0], "digest: sha256:"));
	free(digest);
	digest = NULL;
	ck_assert_int_eq(docker_image_remove(d, ref, false, &err), 0);
	ck_assert_int_eq(docker_image_remove(d, ref, false, &err), -ENOENT);
	free(err);
	err = NULL;

	/* Nothing listens on port 1. */
	ck_assert_int_eq(docker_image_tag(d, BUSYBOX_IMAGE, "127.0.0.1:1/sebsfs-test/busybox",
					  NULL, &err), 0);
	int rc = docker_image_push(d, "127.0.0.1:1/sebsfs-test/busybox:latest", NULL, NULL, NULL,
				   &digest, &err);
	ck_assert_msg(rc == -EIO || rc == -EINVAL, "rc %d: %s", rc, err);
	ck_assert_ptr_null(digest);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "127.0.0.1:1") != NULL, "message: %s", err);
	free(err);
	ck_assert_int_eq(docker_image_remove(d, "127.0.0.1:1/sebsfs-test/busybox:latest", false,
					     NULL), 0);
	docker_free(d);
}
END_TEST

struct canceller {
	struct docker *d;
	unsigned delay_ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *c = arg;

	usleep(c->delay_ms * 1000);
	docker_cancel(c->d);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

START_TEST(test_cancel)
{
	struct docker *d = connect_daemon();
	char *err = NULL, *id = NULL;
	const char *const cmd[] = { "sleep", "30", NULL };
	struct docker_container_spec spec = { .image = BUSYBOX_IMAGE, .cmd = cmd };
	struct canceller cc = { .d = d, .delay_ms = 300 };
	pthread_t th;
	int code = -1;
	double t0;

	ck_assert_msg(docker_container_create(d, &spec, &id, &err) == 0, "%s", err);
	track_container(id);
	ck_assert_msg(docker_container_start(d, id, &err) == 0, "%s", err);
	t0 = now_s();
	ck_assert_int_eq(pthread_create(&th, NULL, cancel_later, &cc), 0);
	ck_assert_int_eq(docker_container_wait(d, id, &code, &err), -ECANCELED);
	ck_assert_double_lt(now_s() - t0, 5.0);
	pthread_join(th, NULL);
	ck_assert_ptr_nonnull(strstr(err, "cancel"));
	free(err);
	err = NULL;
	/* Streaming calls stay cancelled; control calls still work. */
	ck_assert_int_eq(docker_container_logs(d, id, true, NULL, NULL, &err), -ECANCELED);
	free(err);
	err = NULL;
	ck_assert_msg(docker_container_remove(d, id, true, &err) == 0, "%s", err);
	free(id);
	docker_free(d);
}
END_TEST

/* An upload whose producer stalls (nothing to read, the pipe still open)
 * still ends on docker_cancel: a cancelled build must not hang in it. */
START_TEST(test_cancel_stalled_upload)
{
	struct docker *d = connect_daemon();
	char *err = NULL, *id = NULL;
	const char *const cmd[] = { "true", NULL };
	struct docker_container_spec spec = { .image = BUSYBOX_IMAGE, .cmd = cmd };
	struct canceller cc = { .d = d, .delay_ms = 300 };
	pthread_t th;
	int fds[2];
	double t0;

	ck_assert_msg(docker_container_create(d, &spec, &id, &err) == 0, "%s", err);
	track_container(id);
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	t0 = now_s();
	ck_assert_int_eq(pthread_create(&th, NULL, cancel_later, &cc), 0);
	ck_assert_int_eq(docker_container_archive_put(d, id, "/tmp", fds[0], &err), -ECANCELED);
	ck_assert_double_lt(now_s() - t0, 5.0);
	pthread_join(th, NULL);
	ck_assert_ptr_nonnull(strstr(err, "cancel"));
	free(err);
	err = NULL;
	close(fds[0]);
	close(fds[1]);
	ck_assert_msg(docker_container_remove(d, id, true, &err) == 0, "%s", err);
	free(id);
	docker_free(d);
}
END_TEST

/* ---- suite --------------------------------------------------------------------- */

/* ---- endpoint parsing (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) -- */

START_TEST(test_endpoint_unix)
{
	struct docker_endpoint ep;
	char *err = NULL;

	ck_assert_int_eq(docker_endpoint_parse("unix:///run/d.sock", "1", "/c", "/h", &ep, &err), 0);
	ck_assert_str_eq(ep.socket_path, "/run/d.sock");
	ck_assert_str_eq(ep.base_url, "http://localhost");
	/* TLS settings are for tcp only, as in Docker's clients. */
	ck_assert(!ep.tls);
	ck_assert_ptr_null(ep.ca_file);
	docker_endpoint_release(&ep);
	ck_assert_int_eq(docker_endpoint_parse("unix://run/d.sock", NULL, NULL, NULL, &ep, &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "absolute"));
	free(err);
}
END_TEST

START_TEST(test_endpoint_tcp_plain)
{
	struct docker_endpoint ep;
	char *err = NULL;

	ck_assert_int_eq(docker_endpoint_parse("tcp://10.0.0.5", NULL, NULL, "/h", &ep, &err), 0);
	ck_assert_ptr_null(ep.socket_path);
	ck_assert(!ep.tls);
	ck_assert_str_eq(ep.base_url, "http://10.0.0.5:2375");
	ck_assert_ptr_null(ep.ca_file);
	docker_endpoint_release(&ep);
	/* An empty DOCKER_TLS_VERIFY means off, as in Docker's clients. */
	ck_assert_int_eq(docker_endpoint_parse("tcp://h:4000/", "", "/c", "/h", &ep, &err), 0);
	ck_assert(!ep.tls);
	ck_assert_str_eq(ep.base_url, "http://h:4000");
	docker_endpoint_release(&ep);
	ck_assert_int_eq(docker_endpoint_parse("tcp://", NULL, NULL, NULL, &ep, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "no host"));
	free(err);
}
END_TEST

START_TEST(test_endpoint_tcp_tls)
{
	struct docker_endpoint ep;
	char *err = NULL;

	ck_assert_int_eq(docker_endpoint_parse("tcp://127.0.0.1:2999", "1", "/certs", "/h",
					       &ep, &err), 0);
	ck_assert(ep.tls);
	ck_assert_str_eq(ep.base_url, "https://127.0.0.1:2999");
	ck_assert_str_eq(ep.ca_file, "/certs/ca.pem");
	ck_assert_str_eq(ep.cert_file, "/certs/cert.pem");
	ck_assert_str_eq(ep.key_file, "/certs/key.pem");
	docker_endpoint_release(&ep);
	/* No DOCKER_CERT_PATH: ~/.docker; no port: dockerd's TLS port. */
	ck_assert_int_eq(docker_endpoint_parse("tcp://host.example", "yes", NULL, "/home/u",
					       &ep, &err), 0);
	ck_assert_str_eq(ep.base_url, "https://host.example:2376");
	ck_assert_str_eq(ep.ca_file, "/home/u/.docker/ca.pem");
	ck_assert_str_eq(ep.key_file, "/home/u/.docker/key.pem");
	docker_endpoint_release(&ep);
	ck_assert_int_eq(docker_endpoint_parse("tcp://h", "1", "", NULL, &ep, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "DOCKER_CERT_PATH"));
	ck_assert_ptr_null(ep.base_url);
	free(err);
}
END_TEST

START_TEST(test_endpoint_refused)
{
	struct docker_endpoint ep;
	char *err = NULL;
	struct docker *d;

	ck_assert_int_eq(docker_endpoint_parse("ssh://user@host", NULL, NULL, "/h", &ep, &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "ssh://"));
	ck_assert_ptr_nonnull(strstr(err, "not supported"));
	free(err);
	err = NULL;
	ck_assert_int_eq(docker_endpoint_parse("npipe:////./pipe/x", NULL, NULL, "/h", &ep, &err),
			 -EINVAL);
	free(err);
	err = NULL;
	/* docker_new refuses it too, with the same message. */
	d = docker_new("ssh://user@host", &err);
	ck_assert_ptr_null(d);
	ck_assert_ptr_nonnull(strstr(err, "not supported"));
	free(err);
	err = NULL;
	d = docker_new("unix:///nonexistent.sock", &err);
	ck_assert_ptr_nonnull(d);
	ck_assert(docker_is_local(d));
	docker_free(d);
	d = docker_new("tcp://127.0.0.1:1", &err);
	ck_assert_ptr_nonnull(d);
	ck_assert(!docker_is_local(d));
	docker_free(d);
}
END_TEST

static Suite *docker_suite(void)
{
	Suite *s = suite_create("docker");
	TCase *tc;

	tc = tcase_create("streams");
	tcase_add_test(tc, test_mux_whole);
	tcase_add_test(tc, test_mux_byte_at_a_time);
	tcase_add_test(tc, test_mux_all_splits);
	tcase_add_test(tc, test_mux_zero_length);
	tcase_add_test(tc, test_mux_bad_stream);
	tcase_add_test(tc, test_mux_partial);
	tcase_add_test(tc, test_json_whole);
	tcase_add_test(tc, test_json_byte_at_a_time);
	tcase_add_test(tc, test_json_all_splits);
	tcase_add_test(tc, test_json_malformed);
	tcase_add_test(tc, test_json_partial_at_finish);
	tcase_add_test(tc, test_json_sticky_error_and_stop);
	tcase_add_test(tc, test_progress_lines);
	tcase_add_test(tc, test_progress_errors);
	tcase_add_test(tc, test_base64);
	tcase_add_test(tc, test_base64_decode_forms);
	tcase_add_test(tc, test_split_ref);
	tcase_add_test(tc, test_endpoint_unix);
	tcase_add_test(tc, test_endpoint_tcp_plain);
	tcase_add_test(tc, test_endpoint_tcp_tls);
	tcase_add_test(tc, test_endpoint_refused);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("auth");
	tcase_add_checked_fixture(tc, setup_cfg, teardown_cfg);
	tcase_add_test(tc, test_auth_b64_form);
	tcase_add_test(tc, test_auth_userpass_form);
	tcase_add_test(tc, test_auth_missing);
	tcase_add_test(tc, test_auth_tokens_in_auths);
	tcase_add_test(tc, test_credential_output_parse);
	suite_add_tcase(s, tc);

	tc = tcase_create("credential_helpers");
	tcase_add_checked_fixture(tc, setup_helper, teardown_helper);
	tcase_add_test(tc, test_auth_creds_store);
	tcase_add_test(tc, test_auth_helper_failures);
	tcase_add_test(tc, test_auth_cred_helpers);
	suite_add_tcase(s, tc);

	tc = tcase_create("client");
	tcase_add_test(tc, test_missing_socket);
	tcase_add_test(tc, test_refused_tcp);
	tcase_add_test(tc, test_bad_endpoint);
	suite_add_tcase(s, tc);

	tc = tcase_create("dockerd");
	/* meson runs this case alone in the "docker" suite (CK_INCLUDE_TAGS) and
	 * the rest in "unit" (CK_EXCLUDE_TAGS): only the former needs a daemon. */
	tcase_set_tags(tc, "dockerd");
	tcase_add_unchecked_fixture(tc, setup_dockerd, teardown_dockerd);
	tcase_add_test(tc, test_ping);
	tcase_add_test(tc, test_inspect);
	tcase_add_test(tc, test_inspect_info);
	tcase_add_test(tc, test_container_run);
	tcase_add_test(tc, test_create_missing_image);
	tcase_add_test(tc, test_container_labels_and_list);
	tcase_add_test(tc, test_pull_unreachable);
	tcase_add_test(tc, test_build);
	tcase_add_test(tc, test_container_archive);
	tcase_add_test(tc, test_build_broken);
	tcase_add_test(tc, test_push);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_cancel_stalled_upload);
	tcase_set_timeout(tc, 90);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	snprintf(rootdir, sizeof(rootdir), "/tmp/sebsfs-test-docker-XXXXXX");
	if (!mkdtemp(rootdir)) {
		perror("mkdtemp");
		return 1;
	}
	/* The tests pick their own endpoints and config. */
	unsetenv("DOCKER_CONFIG");

	SRunner *sr = srunner_create(docker_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);

	srunner_free(sr);
	remove_tree(rootdir);
	return failed == 0 ? 0 : 1;
}
