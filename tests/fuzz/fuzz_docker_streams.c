/*
 * fuzz_docker_streams.c - the incremental decoders of streams.c.
 *
 * Input: one control byte, then the stream.
 *   control & 1: 0 = multiplexed stdout/stderr framing (logs/attach),
 *                1 = stream of JSON progress objects (pull/push/build);
 *   control >> 1: seeds the chunking: the stream is fed once whole and once
 *                 cut into pieces of 1..64 bytes chosen from this seed.
 * libcurl hands the decoders whatever arrived, so the property is that the
 * cut points change nothing: the same payload bytes per stream (mux), the
 * same objects and the same error (JSON), the same "partial" state at the
 * end.  The mux result is also compared with a direct decoding of the whole
 * buffer, and every JSON object goes through docker_progress_line with a
 * buffer size that is also chosen by the input.
 */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "docker.h"
#include "docker_int.h"
#include "fuzz_common.h"

struct bytes {
	char *data;
	size_t len, cap;
};

static void bytes_add(struct bytes *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap < b->len + len + 1)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (!b->data)
			abort();
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static bool bytes_equal(const struct bytes *a, const struct bytes *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* xorshift: the cut points must depend on the input only. */
static size_t next_cut(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return 1 + x % 64;
}

/* ---- multiplexed framing ------------------------------------------------- */

struct mux_result {
	struct bytes out[3]; /* [0]: both streams, a tag byte at every switch */
	int last_stream;
	int rc;
	bool partial;
};

static void mux_out(void *ctx, int stream, const char *data, size_t len)
{
	struct mux_result *r = ctx;

	FUZZ_CHECK(stream == 1 || stream == 2, "output on stream %d", stream);
	FUZZ_CHECK(len > 0, "an empty output piece");
	bytes_add(&r->out[stream], data, len);
	if (stream != r->last_stream)
		bytes_add(&r->out[0], &(char){ (char)('0' + stream) }, 1);
	r->last_stream = stream;
	bytes_add(&r->out[0], data, len);
}

static void mux_run(const uint8_t *data, size_t size, uint32_t seed, struct mux_result *r)
{
	struct docker_mux m;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	docker_mux_init(&m);
	while (off < size) {
		size_t n = seed ? next_cut(&seed) : size;

		if (n > size - off)
			n = size - off;
		r->rc = docker_mux_feed(&m, data + off, n, mux_out, r);
		off += n;
		if (r->rc != 0)
			break;
	}
	r->partial = docker_mux_partial(&m);
}

/* The framing read straight off the whole buffer. */
static void mux_reference(const uint8_t *data, size_t size, struct mux_result *r)
{
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	while (off < size) {
		if (size - off < 8) {
			r->partial = true;
			return;
		}
		const uint8_t *h = data + off;
		uint32_t len = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
		int stream = h[0] == 0 ? 1 : h[0];

		if (h[0] > 2) {
			r->rc = -EPROTO;
			return;
		}
		off += 8;
		size_t take = len < size - off ? len : size - off;

		if (take > 0)
			mux_out(r, stream, (const char *)data + off, take);
		off += take;
		if (take < len) {
			r->partial = true;
			return;
		}
	}
}

static void mux_free(struct mux_result *r)
{
	for (int i = 0; i < 3; i++)
		free(r->out[i].data);
}

static void fuzz_mux(const uint8_t *data, size_t size, uint32_t seed)
{
	struct mux_result whole, cut, ref;

	mux_run(data, size, 0, &whole);
	mux_run(data, size, seed, &cut);
	mux_reference(data, size, &ref);
	FUZZ_CHECK(whole.rc == ref.rc, "whole feed rc %d, reference %d", whole.rc, ref.rc);
	FUZZ_CHECK(cut.rc == ref.rc, "cut feed rc %d, reference %d", cut.rc, ref.rc);
	for (int s = 0; s <= 2; s++) {
		FUZZ_CHECK(bytes_equal(&whole.out[s], &ref.out[s]),
			   "stream %d: whole feed gave %zu bytes, reference %zu", s,
			   whole.out[s].len, ref.out[s].len);
		FUZZ_CHECK(bytes_equal(&cut.out[s], &ref.out[s]),
			   "stream %d: cut feed gave %zu bytes, reference %zu", s, cut.out[s].len,
			   ref.out[s].len);
	}
	if (ref.rc == 0) {
		FUZZ_CHECK(whole.partial == ref.partial, "whole feed partial %d, reference %d",
			   whole.partial, ref.partial);
		FUZZ_CHECK(cut.partial == ref.partial, "cut feed partial %d, reference %d",
			   cut.partial, ref.partial);
	}
	mux_free(&whole);
	mux_free(&cut);
	mux_free(&ref);
}

/* ---- JSON progress stream ------------------------------------------------ */

struct json_result {
	struct bytes objects; /* each object dumped compactly, sorted keys, one a line */
	size_t count;
	size_t stop_after;    /* the callback stops the stream at this object (0: never) */
	size_t linebuf;       /* buffer size given to docker_progress_line */
	int feed_rc, finish_rc;
};

static int on_object(void *ctx, void *object)
{
	struct json_result *r = ctx;
	json_t *o = object;
	char *dump;
	char line[256];
	char *errmsg = NULL;
	const char *err;
	int rc;

	FUZZ_CHECK(json_is_object(o), "the stream handed over a non-object");
	dump = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	FUZZ_CHECK(dump != NULL, "cannot dump an object the stream parsed");
	bytes_add(&r->objects, dump, strlen(dump));
	bytes_add(&r->objects, "\n", 1);
	free(dump);

	err = docker_error_message(o);
	memset(line, 'x', sizeof(line));
	rc = docker_progress_line(o, line, r->linebuf, &errmsg);
	if (err) {
		FUZZ_CHECK(rc == -EIO, "error object gave %d", rc);
		FUZZ_CHECK(errmsg && strcmp(errmsg, err) == 0, "error message \"%s\" for \"%s\"",
			   errmsg ? errmsg : "(null)", err);
	} else {
		FUZZ_CHECK(rc == 0, "progress object gave %d", rc);
		FUZZ_CHECK(errmsg == NULL, "message for a progress object");
	}
	if (r->linebuf > 0)
		FUZZ_CHECK(memchr(line, '\0', r->linebuf) != NULL, "line not terminated in %zu bytes",
			   r->linebuf);
	FUZZ_CHECK(r->linebuf >= sizeof(line) || line[r->linebuf] == 'x',
		   "progress line wrote past %zu bytes", r->linebuf);
	free(errmsg);
	r->count++;
	return r->stop_after && r->count == r->stop_after ? 7 : 0;
}

static void json_run(const uint8_t *data, size_t size, uint32_t seed, struct json_result *r)
{
	struct json_stream *s = json_stream_new(on_object, r);
	size_t off = 0;

	FUZZ_CHECK(s != NULL, "json_stream_new");
	while (off < size) {
		size_t n = seed ? next_cut(&seed) : size;

		if (n > size - off)
			n = size - off;
		r->feed_rc = json_stream_feed(s, data + off, n);
		off += n;
		if (r->feed_rc != 0)
			break;
	}
	r->finish_rc = json_stream_finish(s);
	if (r->feed_rc != 0) {
		/* a broken stream stays broken */
		FUZZ_CHECK(json_stream_feed(s, "{}", 2) == r->feed_rc, "stream recovered");
		FUZZ_CHECK(r->finish_rc == r->feed_rc, "finish %d after feed %d", r->finish_rc,
			   r->feed_rc);
	}
	json_stream_free(s);
}

static void fuzz_json(const uint8_t *data, size_t size, uint32_t seed)
{
	struct json_result whole = { 0 }, cut = { 0 };

	whole.stop_after = cut.stop_after = seed % 4 == 0 ? (seed >> 2) % 8 : 0;
	whole.linebuf = cut.linebuf = seed % 3 == 0 ? (seed >> 3) % 48 : 256;
	json_run(data, size, 0, &whole);
	json_run(data, size, seed, &cut);
	FUZZ_CHECK(whole.feed_rc == cut.feed_rc, "feed rc whole %d, cut %d", whole.feed_rc,
		   cut.feed_rc);
	FUZZ_CHECK(whole.finish_rc == cut.finish_rc, "finish rc whole %d, cut %d",
		   whole.finish_rc, cut.finish_rc);
	FUZZ_CHECK(whole.count == cut.count, "%zu objects whole, %zu cut", whole.count,
		   cut.count);
	FUZZ_CHECK(bytes_equal(&whole.objects, &cut.objects), "objects differ");
	FUZZ_CHECK(whole.feed_rc == 0 || whole.feed_rc == -EPROTO || whole.feed_rc == 7,
		   "feed rc %d", whole.feed_rc);
	FUZZ_CHECK(whole.finish_rc == 0 || whole.finish_rc == -EPROTO || whole.finish_rc == 7,
		   "finish rc %d", whole.finish_rc);
	free(whole.objects.data);
	free(cut.objects.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seed;

	if (size < 1)
		return 0;
	seed = (uint32_t)(data[0] >> 1) * 2654435761u + 1;
	if (data[0] & 1)
		fuzz_json(data + 1, size - 1, seed);
	else
		fuzz_mux(data + 1, size - 1, seed);
	return 0;
}
