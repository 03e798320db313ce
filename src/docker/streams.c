/*
 * streams.c - decoders for the Docker Engine API's streaming responses.
 *
 * Three formats reach us over HTTP in arbitrary chunks: the multiplexed
 * stdout/stderr framing of logs/attach, the stream of JSON progress objects of
 * pull/push/build, and the progress objects themselves.  The decoders keep
 * just enough state to resume at any byte boundary, so libcurl's write
 * callback can hand them whatever it received.  No I/O happens here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include <jansson.h>

#include "docker.h"
#include "docker_int.h"

/* ---- multiplexed stdout/stderr ------------------------------------------- */

void docker_mux_init(struct docker_mux *m)
{
	memset(m, 0, sizeof(*m));
}

int docker_mux_feed(struct docker_mux *m, const void *data, size_t len, docker_output_fn out,
		    void *ctx)
{
	const uint8_t *p = data;

	while (len > 0) {
		if (m->remaining == 0) {
			size_t take = sizeof(m->header) - m->header_len;

			if (take > len)
				take = len;
			memcpy(m->header + m->header_len, p, take);
			m->header_len += take;
			p += take;
			len -= take;
			if (m->header_len < sizeof(m->header))
				break;
			m->header_len = 0;
			/* 0 is stdin (only echoed back by attach with a TTY-less
			 * stdin); callers only know stdout and stderr. */
			if (m->header[0] > 2)
				return -EPROTO;
			m->stream = m->header[0] == 0 ? 1 : m->header[0];
			m->remaining = (uint32_t)m->header[4] << 24 | (uint32_t)m->header[5] << 16 |
				       (uint32_t)m->header[6] << 8 | (uint32_t)m->header[7];
			continue;
		}
		size_t take = m->remaining < len ? m->remaining : len;

		if (out && take > 0)
			out(ctx, m->stream, (const char *)p, take);
		m->remaining -= (uint32_t)take;
		p += take;
		len -= take;
	}
	return 0;
}

bool docker_mux_partial(const struct docker_mux *m)
{
	return m->header_len > 0 || m->remaining > 0;
}

/* ---- JSON object stream --------------------------------------------------- */

/* Progress objects are small; anything this large is a broken stream, and
 * refusing it keeps a misbehaving peer from growing our memory unbounded. */
#define JSON_STREAM_MAX (32u << 20)

struct json_stream {
	json_stream_fn on_object;
	void *ctx;
	char *buf;      /* the current object's bytes so far */
	size_t len, cap;
	int depth;      /* 0: between objects */
	bool in_string;
	bool escape;
	int err;        /* sticky: a broken stream stays broken */
};

struct json_stream *json_stream_new(json_stream_fn on_object, void *ctx)
{
	struct json_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->on_object = on_object;
	s->ctx = ctx;
	return s;
}

void json_stream_free(struct json_stream *s)
{
	if (!s)
		return;
	free(s->buf);
	free(s);
}

static int js_append(struct json_stream *s, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (s->len + n > JSON_STREAM_MAX)
		return -EPROTO;
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 256;

		while (cap < s->len + n)
			cap *= 2;
		char *nb = realloc(s->buf, cap);

		if (!nb)
			return -ENOMEM;
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

static int js_emit(struct json_stream *s)
{
	json_error_t jerr;
	json_t *obj = json_loadb(s->buf, s->len, 0, &jerr);
	int rc = 0;

	s->len = 0;
	if (!obj || !json_is_object(obj))
		rc = -EPROTO;
	else if (s->on_object)
		rc = s->on_object(s->ctx, obj);
	json_decref(obj);
	return rc;
}

int json_stream_feed(struct json_stream *s, const void *data, size_t len)
{
	const char *p = data;
	size_t start = 0;  /* first byte of p that belongs to the current object */
	int rc;

	if (s->err)
		return s->err;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (s->depth == 0) {
			if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
				continue;
			if (c != '{') {
				s->err = -EPROTO;
				return s->err;
			}
			start = i;
			s->depth = 1;
			continue;
		}
		if (s->in_string) {
			if (s->escape)
				s->escape = false;
			else if (c == '\\')
				s->escape = true;
			else if (c == '"')
				s->in_string = false;
			continue;
		}
		if (c == '"') {
			s->in_string = true;
		} else if (c == '{' || c == '[') {
			s->depth++;
		} else if (c == '}' || c == ']') {
			if (--s->depth > 0)
				continue;
			rc = js_append(s, p + start, i + 1 - start);
			if (rc == 0)
				rc = js_emit(s);
			if (rc != 0) {
				s->err = rc;
				return rc;
			}
		}
	}
	if (s->depth > 0) {
		rc = js_append(s, p + start, len - start);
		if (rc != 0) {
			s->err = rc;
			return rc;
		}
	}
	return 0;
}

int json_stream_finish(struct json_stream *s)
{
	if (s->err)
		return s->err;
	return s->depth > 0 ? -EPROTO : 0;
}

/* ---- progress objects ----------------------------------------------------- */

const char *docker_error_message(void *object)
{
	json_t *o = object;
	json_t *detail = json_object_get(o, "errorDetail");
	const char *msg = json_string_value(json_object_get(detail, "message"));

	if (msg && *msg)
		return msg;
	msg = json_string_value(json_object_get(o, "error"));
	if (msg)
		return msg;
	/* An errorDetail without text is still an error. */
	if (json_is_object(detail) || json_object_get(o, "error"))
		return "unknown error";
	return NULL;
}

int docker_progress_line(void *object, char *buf, size_t buflen, char **errmsg)
{
	json_t *o = object;
	const char *err = docker_error_message(o);
	const char *text;

	if (err) {
		if (buflen > 0)
			snprintf(buf, buflen, "error: %s\n", err);
		if (errmsg)
			*errmsg = strdup(err);
		return -EIO;
	}
	if (buflen == 0)
		return 0;
	buf[0] = '\0';
	text = json_string_value(json_object_get(o, "stream"));
	if (text) {
		snprintf(buf, buflen, "%s", text);
		return 0;
	}
	text = json_string_value(json_object_get(o, "status"));
	if (text) {
		const char *id = json_string_value(json_object_get(o, "id"));
		const char *progress = json_string_value(json_object_get(o, "progress"));

		snprintf(buf, buflen, "%s%s%s%s%s\n", id ? id : "", id ? ": " : "", text,
			 progress ? " " : "", progress ? progress : "");
	}
	return 0;
}
