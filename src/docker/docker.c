/*
 * docker.c - the Docker Engine API client behind docker.h.
 *
 * DESIGN: every call goes through do_request(), which resets the struct's
 * one easy handle (curl_easy_reset keeps the connection cache, so the unix
 * socket connection is reused), sets the options for that request and routes
 * the response body to a sink: a memory buffer for control calls, the JSON
 * object stream for pull/push/build, or the stdout/stderr demultiplexer for
 * logs.  A response with status >= 400 always goes to the buffer instead, so
 * the daemon's {"message": ...} can be quoted in *errmsg.
 *
 * Streaming calls have no total timeout; they poll the cancel flag from the
 * transfer-info callback, which libcurl also calls while the connection is
 * idle (so a blocked /wait notices a cancel within about a second).  Control
 * calls ignore the flag: after cancelling a wait, the same handle must still
 * be able to remove the container.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <nettle/base64.h>

#include "docker.h"
#include "docker_int.h"
#include "fsutil.h"
#include "log.h"
#include "process.h"

#define DEFAULT_HOST "unix:///var/run/docker.sock"
/* The newest API whose request and response shapes this file was written
 * against; daemons that speak more are asked to talk 1.43. */
#define CLIENT_API_MAJOR 1
#define CLIENT_API_MINOR 43
#define CONNECT_TIMEOUT_S 5L
/* Control calls (inspect, create, start, remove, tag) answer in well under a
 * second on a healthy daemon; a daemon that accepts and never answers must
 * fail a build within a bounded time. */
#define CONTROL_TIMEOUT_S 20L
/* Bounds a buffered (control or error) response; inspect output is far smaller. */
#define MAX_BUFFERED (16u << 20)
/* A credential helper that answers in neither time nor space is broken:
 * Docker's clients wait forever, a build must not. */
#define CREDENTIAL_HELPER_TIMEOUT 30
#define CREDENTIAL_OUTPUT_MAX (64u * 1024)

struct docker {
	CURL *curl;
	char *endpoint;     /* as given: unix:///path or tcp://host:port */
	struct docker_endpoint ep;
	char *api_version;  /* "1.41" once negotiated, else NULL */
	atomic_bool cancelled;
	/* CLOCK_MONOTONIC ns after which streaming calls stop (0: none) */
	_Atomic int64_t deadline_ns;
	long control_timeout;   /* seconds */
	char curl_err[CURL_ERROR_SIZE];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers -------------------------------------------------------- */

static void set_err(char **errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char **errmsg, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (!errmsg)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	/* Each failing path sets the message once; *errmsg is not read, so
	 * callers need not initialise it. */
	*errmsg = msg;
}

/* A growable string for URLs; a failed append poisons it (ENOMEM at the end). */
struct strbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_addn(struct strbuf *sb, const char *s, size_t n)
{
	if (sb->oom)
		return;
	if (sb->len + n + 1 > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 128;

		while (cap < sb->len + n + 1)
			cap *= 2;
		char *np = realloc(sb->p, cap);

		if (!np) {
			sb->oom = true;
			return;
		}
		sb->p = np;
		sb->cap = cap;
	}
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
	sb->p[sb->len] = '\0';
}

static void sb_add(struct strbuf *sb, const char *s)
{
	sb_addn(sb, s, strlen(s));
}

/* Percent-encodes one path component but keeps '/', ':' and '@': image
 * references legitimately contain them and dockerd's router expects them
 * literally (as the docker CLI sends them). */
static void sb_add_path(struct strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~/:@", c)) {
			sb_addn(sb, (const char *)&c, 1);
		} else {
			char enc[3] = { '%', hex[c >> 4], hex[c & 15] };

			sb_addn(sb, enc, 3);
		}
	}
}

/* Appends "?name=value" or "&name=value", the value escaped by libcurl. */
static void sb_add_param(struct docker *d, struct strbuf *sb, const char *name, const char *value)
{
	char *esc;

	if (sb->oom)
		return;
	esc = curl_easy_escape(d->curl, value, 0);
	if (!esc) {
		sb->oom = true;
		return;
	}
	sb_add(sb, strchr(sb->p ? sb->p : "", '?') ? "&" : "?");
	sb_add(sb, name);
	sb_add(sb, "=");
	sb_add(sb, esc);
	curl_free(esc);
}

/* Takes the built string; NULL (and the buffer freed) when an append failed. */
static char *sb_take(struct strbuf *sb)
{
	if (sb->oom) {
		free(sb->p);
		sb->p = NULL;
	}
	return sb->p;
}

/* ---- lifecycle ------------------------------------------------------------ */

int docker_endpoint_parse(const char *host, const char *tls_verify, const char *cert_path,
			  const char *home, struct docker_endpoint *ep, char **errmsg)
{
	const char *hp;
	size_t n;

	memset(ep, 0, sizeof(*ep));
	if (strncmp(host, "unix://", 7) == 0) {
		if (host[7] != '/') {
			set_err(errmsg, "%s: unix socket path must be absolute", host);
			return -EINVAL;
		}
		ep->socket_path = strdup(host + 7);
		ep->base_url = strdup("http://localhost");
		if (!ep->socket_path || !ep->base_url)
			goto oom;
		return 0;
	}
	if (strncmp(host, "ssh://", 6) == 0) {
		set_err(errmsg, "%s: ssh:// Docker endpoints are not supported; expose the daemon "
			"on tcp:// with TLS (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH) instead", host);
		return -EINVAL;
	}
	if (strncmp(host, "tcp://", 6) != 0 && strncmp(host, "http://", 7) != 0 &&
	    strncmp(host, "https://", 8) != 0) {
		set_err(errmsg, "%s: unsupported Docker endpoint (want unix:// or tcp://)", host);
		return -EINVAL;
	}
	hp = strstr(host, "://") + 3;
	n = strcspn(hp, "/");
	if (n == 0) {
		set_err(errmsg, "%s: no host in endpoint", host);
		return -EINVAL;
	}
	/* Docker's clients: any non-empty DOCKER_TLS_VERIFY means TLS with the
	 * server verified against the CA and a client certificate. */
	ep->tls = (tls_verify && *tls_verify) || strncmp(host, "https://", 8) == 0;
	/* dockerd's default ports: 2376 with TLS, 2375 without. */
	ep->base_url = str_printf("%s://%.*s%s", ep->tls ? "https" : "http", (int)n, hp,
				  memchr(hp, ':', n) || hp[0] == '[' ? "" :
				  ep->tls ? ":2376" : ":2375");
	if (!ep->base_url)
		goto oom;
	if (ep->tls) {
		char *dir;

		if (cert_path && *cert_path)
			dir = strdup(cert_path);
		else if (home && *home)
			dir = str_printf("%s/.docker", home);
		else {
			set_err(errmsg, "%s: DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH "
				"nor HOME says where ca.pem, cert.pem and key.pem are", host);
			docker_endpoint_release(ep);
			return -EINVAL;
		}
		if (!dir)
			goto oom;
		ep->ca_file = str_printf("%s/ca.pem", dir);
		ep->cert_file = str_printf("%s/cert.pem", dir);
		ep->key_file = str_printf("%s/key.pem", dir);
		free(dir);
		if (!ep->ca_file || !ep->cert_file || !ep->key_file)
			goto oom;
	}
	return 0;
oom:
	set_err(errmsg, "%s: out of memory", host);
	docker_endpoint_release(ep);
	return -ENOMEM;
}

void docker_endpoint_release(struct docker_endpoint *ep)
{
	free(ep->socket_path);
	free(ep->base_url);
	free(ep->ca_file);
	free(ep->cert_file);
	free(ep->key_file);
	memset(ep, 0, sizeof(*ep));
}

/* One warning per process, not one per worker connection. */
static atomic_flag plain_tcp_warned = ATOMIC_FLAG_INIT;

struct docker *docker_new(const char *host, char **errmsg)
{
	struct docker *d;
	int rc;

	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		set_err(errmsg, "curl_global_init: %s", curl_easy_strerror(global_rc));
		return NULL;
	}
	if (!host || !*host)
		host = getenv("DOCKER_HOST");
	if (!host || !*host)
		host = DEFAULT_HOST;

	d = calloc(1, sizeof(*d));
	if (!d)
		goto oom;
	atomic_init(&d->cancelled, false);
	d->control_timeout = CONTROL_TIMEOUT_S;
	d->endpoint = strdup(host);
	if (!d->endpoint)
		goto oom;
	rc = docker_endpoint_parse(host, getenv("DOCKER_TLS_VERIFY"), getenv("DOCKER_CERT_PATH"),
				   getenv("HOME"), &d->ep, errmsg);
	if (rc == -ENOMEM)
		goto oom;
	if (rc != 0)
		goto fail;
	if (!d->ep.socket_path && !d->ep.tls && !atomic_flag_test_and_set(&plain_tcp_warned))
		log_warn("docker: %s is plain TCP without TLS: anyone who can reach it controls the "
			 "daemon (set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)", host);
	d->curl = curl_easy_init();
	if (!d->curl) {
		set_err(errmsg, "%s: curl_easy_init failed", host);
		goto fail;
	}
	return d;
oom:
	set_err(errmsg, "%s: out of memory", host);
fail:
	docker_free(d);
	return NULL;
}

void docker_free(struct docker *d)
{
	if (!d)
		return;
	if (d->curl)
		curl_easy_cleanup(d->curl);
	free(d->endpoint);
	docker_endpoint_release(&d->ep);
	free(d->api_version);
	free(d);
}

const char *docker_endpoint(const struct docker *d)
{
	return d->endpoint;
}

bool docker_is_local(const struct docker *d)
{
	return d->ep.socket_path != NULL;
}

void docker_cancel(struct docker *d)
{
	atomic_store(&d->cancelled, true);
}

void docker_set_control_timeout(struct docker *d, long seconds)
{
	d->control_timeout = seconds > 0 ? seconds : CONTROL_TIMEOUT_S;
}

void docker_reset_cancel(struct docker *d)
{
	atomic_store(&d->cancelled, false);
}

void docker_set_deadline(struct docker *d, const struct timespec *deadline)
{
	int64_t ns = deadline ? (int64_t)deadline->tv_sec * 1000000000 + deadline->tv_nsec : 0;

	atomic_store(&d->deadline_ns, ns);
}

static bool past_deadline(const struct docker *d)
{
	int64_t deadline = atomic_load(&d->deadline_ns);
	struct timespec now;

	if (deadline == 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec >= deadline;
}

/* ---- the request engine --------------------------------------------------- */

enum sink { SINK_BUFFER, SINK_JSON, SINK_MUX, SINK_RAW, SINK_DATA };

struct request {
	/* in */
	const char *method;        /* GET, POST, PUT, DELETE */
	const char *path;          /* escaped path and query, no version prefix */
	const char *what;          /* names the operation in messages */
	bool unversioned;          /* /_ping and /version */
	bool streaming;            /* no total timeout; honours docker_cancel */
	bool fresh;                /* a new connection, not a kept-alive one */
	const char *body;          /* JSON body, or NULL */
	int upload_fd;             /* chunked tar upload, or -1 */
	const char *registry_auth; /* X-Registry-Auth value, or NULL */
	enum sink sink;
	docker_output_fn out;
	docker_data_fn data;       /* SINK_DATA */
	void *ctx;

	/* out: owned by the request, released by request_done() */
	long status;
	char *resp;
	size_t resp_len, resp_cap;
	char *aux_id;              /* build: {"aux":{"ID":..}} */
	char *aux_digest;          /* push: {"aux":{"Digest":..}} */
	char *stream_err;          /* an error object's message */

	/* private */
	struct docker *d;
	struct json_stream *js;
	struct docker_mux mux;
	int sink_rc;               /* why the write callback stopped the transfer */
	int upload_rc;
};

static void request_done(struct request *r)
{
	free(r->resp);
	free(r->aux_id);
	free(r->aux_digest);
	free(r->stream_err);
	json_stream_free(r->js);
	r->resp = r->aux_id = r->aux_digest = r->stream_err = NULL;
	r->js = NULL;
}

static int buffer_append(struct request *r, const char *p, size_t n)
{
	if (r->resp_len + n + 1 > r->resp_cap) {
		size_t cap = r->resp_cap ? r->resp_cap : 4096;

		while (cap < r->resp_len + n + 1)
			cap *= 2;
		if (cap > MAX_BUFFERED + 1)
			return -EPROTO;
		char *np = realloc(r->resp, cap);

		if (!np)
			return -ENOMEM;
		r->resp = np;
		r->resp_cap = cap;
	}
	memcpy(r->resp + r->resp_len, p, n);
	r->resp_len += n;
	r->resp[r->resp_len] = '\0';
	return 0;
}

/* Called for every object of a pull/push/build stream. */
static int on_progress_object(void *ctx, void *object)
{
	struct request *r = ctx;
	json_t *o = object;
	json_t *aux = json_object_get(o, "aux");
	const char *stream = json_string_value(json_object_get(o, "stream"));
	char line[1024];
	char *err = NULL;
	int rc;

	if (json_is_object(aux)) {
		const char *id = json_string_value(json_object_get(aux, "ID"));
		const char *digest = json_string_value(json_object_get(aux, "Digest"));

		if (id && !r->aux_id && !(r->aux_id = strdup(id)))
			return -ENOMEM;
		if (digest && !r->aux_digest && !(r->aux_digest = strdup(digest)))
			return -ENOMEM;
	}
	/* Build output can be long; pass it whole instead of through a line buffer. */
	if (stream && !docker_error_message(o)) {
		if (r->out)
			r->out(r->ctx, 0, stream, strlen(stream));
		return 0;
	}
	rc = docker_progress_line(o, line, sizeof(line), &err);
	if (rc != 0) {
		free(r->stream_err);
		r->stream_err = err ? err : strdup("error in progress stream");
		return rc;
	}
	if (r->out && line[0])
		r->out(r->ctx, 0, line, strlen(line));
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct request *r = userp;
	size_t n = size * nmemb;
	int rc = 0;

	if (r->status == 0)
		curl_easy_getinfo(r->d->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->status >= 400 || r->sink == SINK_BUFFER) {
		rc = buffer_append(r, data, n);
	} else if (r->sink == SINK_JSON) {
		rc = json_stream_feed(r->js, data, n);
	} else if (r->sink == SINK_MUX) {
		rc = docker_mux_feed(&r->mux, data, n, r->out, r->ctx);
	} else if (r->sink == SINK_DATA) {
		rc = r->data(r->ctx, data, n);
	} else if (r->out) {
		r->out(r->ctx, 1, data, n);
	}
	if (rc != 0) {
		r->sink_rc = rc;
		return 0;  /* makes libcurl stop with CURLE_WRITE_ERROR */
	}
	return n;
}

/* How often an upload that has nothing to send looks at cancel and deadline. */
#define UPLOAD_POLL_MS 200

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userp)
{
	struct request *r = userp;
	ssize_t n;

	/* libcurl calls no progress callback while this one blocks: a producer
	 * that stalls (a slow disk, a stuck file system) must not make the
	 * upload deaf to docker_cancel and the deadline. */
	for (;;) {
		struct pollfd p = { .fd = r->upload_fd, .events = POLLIN };
		int ready;

		if (r->streaming && (atomic_load(&r->d->cancelled) || past_deadline(r->d)))
			return CURL_READFUNC_ABORT;
		ready = poll(&p, 1, UPLOAD_POLL_MS);
		if (ready > 0)
			break;
		if (ready < 0 && errno != EINTR) {
			r->upload_rc = -errno;
			return CURL_READFUNC_ABORT;
		}
	}
	do {
		n = read(r->upload_fd, buf, size * nitems);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		r->upload_rc = -errno;
		return CURL_READFUNC_ABORT;
	}
	return (size_t)n;
}

static int xferinfo_cb(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct request *r = userp;

	return atomic_load(&r->d->cancelled) || past_deadline(r->d) ? 1 : 0;
}

/* The daemon's error text: {"message": ...} when it sent JSON, else the body's
 * first line.  Borrowed from (or a static), valid while r->resp and root live. */
static const char *daemon_message(struct request *r, json_t **root)
{
	const char *msg = NULL;

	*root = NULL;
	if (!r->resp || r->resp_len == 0)
		return "no message";
	*root = json_loadb(r->resp, r->resp_len, 0, NULL);
	msg = json_string_value(json_object_get(*root, "message"));
	if (msg)
		return msg;
	r->resp[strcspn(r->resp, "\r\n")] = '\0';
	return r->resp[0] ? r->resp : "no message";
}

static int status_errno(long status)
{
	if (status == 404)
		return -ENOENT;
	if (status == 409)
		return -EEXIST;
	if (status >= 400 && status < 500)
		return -EINVAL;
	return -EIO;
}

static int curl_errno(struct docker *d, CURLcode cc, char **errmsg)
{
	long os_errno = 0;
	const char *detail = d->curl_err[0] ? d->curl_err : curl_easy_strerror(cc);

	curl_easy_getinfo(d->curl, CURLINFO_OS_ERRNO, &os_errno);
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		set_err(errmsg, "%s: Cannot connect (%s)", d->endpoint,
			os_errno ? strerror((int)os_errno) : detail);
		/* Even a missing socket: -ENOENT means "no such image/container". */
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		set_err(errmsg, "%s: timed out (%s)", d->endpoint, detail);
		return -ETIMEDOUT;
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		/* The daemon went away mid-request (stopped, crashed, restarted). */
		set_err(errmsg, "%s: connection to the Docker daemon lost (%s)", d->endpoint, detail);
		return -ECONNRESET;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		set_err(errmsg, "%s: TLS with the Docker daemon failed (%s); check ca.pem, cert.pem "
			"and key.pem in DOCKER_CERT_PATH (%s)", d->endpoint, detail,
			d->ep.ca_file ? d->ep.ca_file : "?");
		return -EIO;
	case CURLE_OUT_OF_MEMORY:
		set_err(errmsg, "%s: out of memory", d->endpoint);
		return -ENOMEM;
	default:
		set_err(errmsg, "%s: %s", d->endpoint, detail);
		return -EIO;
	}
}

static int negotiate(struct docker *d, char **errmsg);

/* Performs r; returns 0 for a 2xx/304 response whose body went through the
 * sink cleanly, else -errno with *errmsg set. */
static int do_request(struct docker *d, struct request *r, char **errmsg)
{
	struct curl_slist *headers = NULL, *h;
	char *url = NULL, *auth_hdr = NULL;
	CURLcode cc;
	int rc;

	r->d = d;
	r->status = 0;
	r->sink_rc = r->upload_rc = 0;
	if (!r->unversioned && !d->api_version) {
		rc = negotiate(d, errmsg);
		if (rc != 0)
			return rc;
	}
	if (r->sink == SINK_JSON) {
		r->js = json_stream_new(on_progress_object, r);
		if (!r->js)
			goto oom;
	}
	docker_mux_init(&r->mux);
	if (r->unversioned)
		url = str_printf("%s%s", d->ep.base_url, r->path);
	else
		url = str_printf("%s/v%s%s", d->ep.base_url, d->api_version, r->path);
	if (!url)
		goto oom;

	curl_easy_reset(d->curl);
	d->curl_err[0] = '\0';
	curl_easy_setopt(d->curl, CURLOPT_URL, url);
	if (d->ep.socket_path)
		curl_easy_setopt(d->curl, CURLOPT_UNIX_SOCKET_PATH, d->ep.socket_path);
	if (d->ep.tls) {
		curl_easy_setopt(d->curl, CURLOPT_CAINFO, d->ep.ca_file);
		curl_easy_setopt(d->curl, CURLOPT_SSLCERT, d->ep.cert_file);
		curl_easy_setopt(d->curl, CURLOPT_SSLKEY, d->ep.key_file);
		curl_easy_setopt(d->curl, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(d->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	}
	curl_easy_setopt(d->curl, CURLOPT_ERRORBUFFER, d->curl_err);
	/* Signals and threads do not mix; timeouts then rely on the poll loop. */
	curl_easy_setopt(d->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(d->curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(d->curl, CURLOPT_TIMEOUT, r->streaming ? 0L : d->control_timeout);
	curl_easy_setopt(d->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	if (r->fresh)
		curl_easy_setopt(d->curl, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(d->curl, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(d->curl, CURLOPT_WRITEDATA, r);
	if (r->streaming) {
		curl_easy_setopt(d->curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(d->curl, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
		curl_easy_setopt(d->curl, CURLOPT_XFERINFODATA, r);
	}

	/* A 100-continue round trip only adds latency on a local socket. */
	if (!(h = curl_slist_append(headers, "Expect:")))
		goto oom;
	headers = h;
	if (strcmp(r->method, "GET") == 0) {
		curl_easy_setopt(d->curl, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(r->method, "POST") == 0 || r->upload_fd >= 0) {
		if (strcmp(r->method, "POST") == 0)
			curl_easy_setopt(d->curl, CURLOPT_POST, 1L);
		else  /* PUT of an upload, read as it comes */
			curl_easy_setopt(d->curl, CURLOPT_UPLOAD, 1L);
		if (r->upload_fd >= 0) {
			curl_easy_setopt(d->curl, CURLOPT_READFUNCTION, read_cb);
			curl_easy_setopt(d->curl, CURLOPT_READDATA, r);
			if (!(h = curl_slist_append(headers, "Transfer-Encoding: chunked")))
				goto oom;
			headers = h;
			if (!(h = curl_slist_append(headers, "Content-Type: application/x-tar")))
				goto oom;
			headers = h;
		} else {
			const char *body = r->body ? r->body : "";

			curl_easy_setopt(d->curl, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(d->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
			if (!(h = curl_slist_append(headers, r->body ? "Content-Type: application/json"
								      : "Content-Type:")))
				goto oom;
			headers = h;
		}
	} else {
		curl_easy_setopt(d->curl, CURLOPT_CUSTOMREQUEST, r->method);
	}
	if (r->registry_auth) {
		auth_hdr = str_printf("X-Registry-Auth: %s", r->registry_auth);
		if (!auth_hdr || !(h = curl_slist_append(headers, auth_hdr)))
			goto oom;
		headers = h;
	}
	curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, headers);

	log_debug("docker: %s %s", r->method, url);
	cc = curl_easy_perform(d->curl);
	curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &r->status);

	if (r->upload_rc != 0) {
		rc = r->upload_rc;
		set_err(errmsg, "%s: reading the upload: %s", r->what, strerror(-rc));
	} else if (r->sink_rc != 0 && r->status < 400) {
		rc = r->sink_rc;
		if (r->stream_err)
			set_err(errmsg, "%s: %s", r->what, r->stream_err);
		else if (rc == -ENOMEM)
			set_err(errmsg, "%s: out of memory", r->what);
		else if (r->sink == SINK_DATA)
			set_err(errmsg, "%s: the receiver stopped (%s)", r->what, strerror(-rc));
		else
			set_err(errmsg, "%s: malformed response from %s", r->what, d->endpoint);
	} else if (cc == CURLE_ABORTED_BY_CALLBACK && atomic_load(&d->cancelled)) {
		rc = -ECANCELED;
		set_err(errmsg, "%s: cancelled", r->what);
	} else if (cc == CURLE_ABORTED_BY_CALLBACK && past_deadline(d)) {
		rc = -ETIMEDOUT;
		set_err(errmsg, "%s: build time limit reached", r->what);
	} else if (r->status >= 400 && (cc == CURLE_OK || r->resp_len > 0)) {
		json_t *root;
		const char *msg = daemon_message(r, &root);

		rc = status_errno(r->status);
		set_err(errmsg, "%s: %s (%ld)", r->what, msg, r->status);
		json_decref(root);
	} else if (cc != CURLE_OK) {
		rc = curl_errno(d, cc, errmsg);
	} else if (r->status < 200 || (r->status >= 300 && r->status != 304)) {
		rc = -EPROTO;
		set_err(errmsg, "%s: unexpected HTTP status %ld", r->what, r->status);
	} else if (r->sink == SINK_JSON && (rc = json_stream_finish(r->js)) != 0) {
		set_err(errmsg, "%s: truncated progress stream from %s", r->what, d->endpoint);
	} else if (r->sink == SINK_MUX && docker_mux_partial(&r->mux)) {
		rc = -EPROTO;
		set_err(errmsg, "%s: truncated log stream from %s", r->what, d->endpoint);
	} else {
		rc = 0;
	}
	goto out;
oom:
	rc = -ENOMEM;
	set_err(errmsg, "%s: out of memory", r->what);
out:
	/* The easy handle keeps pointers to these until the next reset. */
	curl_easy_setopt(d->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	free(auth_hdr);
	free(url);
	return rc;
}

/* Parses a buffered JSON response; -EPROTO with a message when it is not. */
static int parse_response(struct request *r, json_t **root, char **errmsg)
{
	json_error_t jerr;

	*root = json_loadb(r->resp ? r->resp : "", r->resp_len, 0, &jerr);
	if (!*root) {
		set_err(errmsg, "%s: bad JSON from daemon: %s", r->what, jerr.text);
		return -EPROTO;
	}
	return 0;
}

/* "1.41" -> 1041, or -1. */
static int version_num(const char *v)
{
	unsigned major, minor;
	int n = 0;

	if (!v || sscanf(v, "%u.%u%n", &major, &minor, &n) != 2 || v[n] != '\0' || minor >= 1000)
		return -1;
	return (int)(major * 1000 + minor);
}

static int negotiate(struct docker *d, char **errmsg)
{
	struct request r = { .method = "GET", .path = "/version", .what = "version",
			     .unversioned = true, .upload_fd = -1, .sink = SINK_BUFFER };
	json_t *root = NULL;
	int rc, daemon_v, min_v, use;

	rc = do_request(d, &r, errmsg);
	if (rc == 0)
		rc = parse_response(&r, &root, errmsg);
	if (rc != 0)
		goto out;
	daemon_v = version_num(json_string_value(json_object_get(root, "ApiVersion")));
	min_v = version_num(json_string_value(json_object_get(root, "MinAPIVersion")));
	if (daemon_v < 0) {
		rc = -EPROTO;
		set_err(errmsg, "version: %s reports no usable ApiVersion", d->endpoint);
		goto out;
	}
	use = daemon_v;
	if (use > CLIENT_API_MAJOR * 1000 + CLIENT_API_MINOR)
		use = CLIENT_API_MAJOR * 1000 + CLIENT_API_MINOR;
	if (min_v > use)
		use = min_v;
	free(d->api_version);
	d->api_version = str_printf("%d.%d", use / 1000, use % 1000);
	if (!d->api_version) {
		rc = -ENOMEM;
		set_err(errmsg, "version: out of memory");
	}
out:
	json_decref(root);
	request_done(&r);
	return rc;
}

/* ---- public calls ----------------------------------------------------------- */

int docker_ping(struct docker *d, char **api_version, char **errmsg)
{
	/* A fresh connection: a daemon that is shutting down has closed its
	 * listener but still serves the connections it had. */
	struct request r = { .method = "GET", .path = "/_ping", .what = "ping",
			     .unversioned = true, .fresh = true, .upload_fd = -1,
			     .sink = SINK_BUFFER };
	int rc;

	if (api_version)
		*api_version = NULL;
	rc = do_request(d, &r, errmsg);
	request_done(&r);
	if (rc == 0 && !d->api_version)
		rc = negotiate(d, errmsg);
	if (rc == 0 && api_version) {
		*api_version = strdup(d->api_version);
		if (!*api_version) {
			rc = -ENOMEM;
			set_err(errmsg, "ping: out of memory");
		}
	}
	return rc;
}

/* Runs a control call with a path "<prefix><escaped name><suffix>" and the
 * given query parameters (name/value pairs, values NULL to skip). */
/* Sends r to path and parses its JSON reply into *root.  path and what are
 * the caller's (NULL: out of memory); r is released by the caller. */
static int request_json(struct docker *d, struct request *r, const char *path, const char *what,
			json_t **root, char **errmsg)
{
	if (!path || !what) {
		set_err(errmsg, "%s: out of memory", what ? what : "Docker request");
		return -ENOMEM;
	}
	r->path = path;
	r->what = what;
	int rc = do_request(d, r, errmsg);
	if (rc == 0)
		rc = parse_response(r, root, errmsg);
	return rc;
}

static char *make_path(struct docker *d, const char *prefix, const char *name, const char *suffix,
		       const char *const *params)
{
	struct strbuf sb = { 0 };

	sb_add(&sb, prefix);
	if (name)
		sb_add_path(&sb, name);
	if (suffix)
		sb_add(&sb, suffix);
	for (; params && params[0]; params += 2)
		if (params[1])
			sb_add_param(d, &sb, params[0], params[1]);
	if (!sb.p && !sb.oom)
		sb_add(&sb, "");
	return sb_take(&sb);
}

static char *what_printf(const char *fmt, const char *arg)
{
	return str_printf(fmt, arg ? arg : "");
}

int docker_image_inspect(struct docker *d, const char *ref, char **id, char **errmsg)
{
	struct docker_image_info info;
	int rc = docker_image_inspect_info(d, ref, &info, errmsg);
	if (id)
		*id = NULL;
	if (rc == 0 && id && !(*id = strdup(info.id))) {
		rc = -ENOMEM;
		set_err(errmsg, "image inspect %s: out of memory", ref);
	}
	docker_image_info_clear(&info);
	return rc;
}

int docker_image_inspect_info(struct docker *d, const char *ref, struct docker_image_info *out,
			      char **errmsg)
{
	struct request r = { .method = "GET", .upload_fd = -1, .sink = SINK_BUFFER };
	struct docker_image_info info = { 0 };
	char *path = make_path(d, "/images/", ref, "/json", NULL);
	char *what = what_printf("image inspect %s", ref);
	json_t *root = NULL, *size, *digests, *v;
	const char *id;
	size_t i, n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = request_json(d, &r, path, what, &root, errmsg);
	if (rc != 0)
		goto out;
	id = json_string_value(json_object_get(root, "Id"));
	size = json_object_get(root, "Size");
	if (!id || !json_is_integer(size)) {
		rc = -EPROTO;
		set_err(errmsg, "%s: no %s in response", what, id ? "Size" : "Id");
		goto out;
	}
	info.size = (int64_t)json_integer_value(size);
	digests = json_object_get(root, "RepoDigests");
	json_array_foreach(digests, i, v)
		if (json_is_string(v))
			n++;
	info.id = strdup(id);
	info.repo_digests = calloc(n + 1, sizeof(*info.repo_digests));
	if (!info.id || !info.repo_digests)
		goto oom;
	n = 0;
	json_array_foreach(digests, i, v) {
		if (!json_is_string(v))
			continue;
		if (!(info.repo_digests[n] = strdup(json_string_value(v))))
			goto oom;
		n++;
	}
	*out = info;
	memset(&info, 0, sizeof(info));
	goto out;
oom:
	rc = -ENOMEM;
	set_err(errmsg, "%s: out of memory", what);
out:
	docker_image_info_clear(&info);
	json_decref(root);
	request_done(&r);
	free(path);
	free(what);
	return rc;
}

void docker_image_info_clear(struct docker_image_info *info)
{
	if (!info)
		return;
	free(info->id);
	for (char **p = info->repo_digests; p && *p; p++)
		free(*p);
	free(info->repo_digests);
	memset(info, 0, sizeof(*info));
}

int docker_split_ref(const char *ref, char **repo, char **tag)
{
	const char *at = strchr(ref, '@');
	const char *slash = strrchr(ref, '/');
	const char *colon;
	size_t repo_len;
	const char *t;

	*repo = *tag = NULL;
	if (at) {
		repo_len = (size_t)(at - ref);
		t = at + 1;
	} else {
		/* A colon before the last '/' is a registry port, not a tag. */
		colon = strrchr(slash ? slash : ref, ':');
		repo_len = colon ? (size_t)(colon - ref) : strlen(ref);
		t = colon ? colon + 1 : "latest";
	}
	if (repo_len == 0 || !*t)
		return -EINVAL;
	*repo = strndup(ref, repo_len);
	*tag = strdup(t);
	if (!*repo || !*tag) {
		free(*repo);
		free(*tag);
		*repo = *tag = NULL;
		return -ENOMEM;
	}
	return 0;
}

int docker_image_pull(struct docker *d, const char *ref, const char *auth, docker_output_fn out,
		      void *ctx, char **errmsg)
{
	struct request r = { .method = "POST", .upload_fd = -1, .sink = SINK_JSON,
			     .streaming = true, .out = out, .ctx = ctx };
	char *repo = NULL, *tag = NULL, *path = NULL;
	char *what = what_printf("pull %s", ref);
	int rc;

	if (!what) {
		set_err(errmsg, "pull: out of memory");
		return -ENOMEM;
	}
	rc = docker_split_ref(ref, &repo, &tag);
	if (rc != 0) {
		set_err(errmsg, "%s: %s", what, rc == -EINVAL ? "invalid reference" : strerror(-rc));
		goto out;
	}
	/* An explicit tag always: without one the daemon pulls every tag. */
	path = make_path(d, "/images/create", NULL, NULL,
			 (const char *const[]){ "fromImage", repo, "tag", tag, NULL });
	if (!path) {
		rc = -ENOMEM;
		set_err(errmsg, "%s: out of memory", what);
		goto out;
	}
	r.path = path;
	r.what = what;
	/* "{}" when anonymous: some daemons reject a pull without the header */
	r.registry_auth = auth ? auth : "e30=";
	rc = do_request(d, &r, errmsg);
out:
	request_done(&r);
	free(repo);
	free(tag);
	free(path);
	free(what);
	return rc;
}

static json_t *string_array(const char *const *list)
{
	json_t *a = json_array();

	if (!a)
		return NULL;
	for (; list && *list; list++) {
		if (json_array_append_new(a, json_string(*list)) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

int docker_container_create(struct docker *d, const struct docker_container_spec *spec,
			    char **id, char **errmsg)
{
	struct request r = { .method = "POST", .upload_fd = -1, .sink = SINK_BUFFER,
			     .what = "container create" };
	json_t *body = NULL, *host = NULL, *root = NULL;
	char *body_text = NULL, *path = NULL;
	const char *v;
	int rc = -ENOMEM;

	if (id)
		*id = NULL;
	if (!spec || !spec->image) {
		set_err(errmsg, "container create: no image given");
		return -EINVAL;
	}
	body = json_object();
	host = json_object();
	if (!body || !host)
		goto oom;
	/* json_string() rejects invalid UTF-8; a NULL there fails the set. */
	if (json_object_set_new(body, "Image", json_string(spec->image)) != 0)
		goto bad_arg;
	if (spec->env && json_object_set_new(body, "Env", string_array(spec->env)) != 0)
		goto bad_arg;
	if (spec->cmd && json_object_set_new(body, "Cmd", string_array(spec->cmd)) != 0)
		goto bad_arg;
	if (spec->working_dir &&
	    json_object_set_new(body, "WorkingDir", json_string(spec->working_dir)) != 0)
		goto bad_arg;
	if (spec->user && json_object_set_new(body, "User", json_string(spec->user)) != 0)
		goto bad_arg;
	if (spec->binds && json_object_set_new(host, "Binds", string_array(spec->binds)) != 0)
		goto bad_arg;
	if (spec->labels) {
		json_t *labels = json_object();
		if (!labels || json_object_set_new(body, "Labels", labels) != 0)
			goto oom;
		for (const char *const *l = spec->labels; *l; l++) {
			const char *eq = strchr(*l, '=');
			char *name = eq && eq != *l ? strndup(*l, (size_t)(eq - *l)) : NULL;
			int set = name ? json_object_set_new(labels, name, json_string(eq + 1)) : -1;
			free(name);
			if (set != 0) {
				rc = -EINVAL;
				set_err(errmsg, "container create: label \"%s\" is not name=value", *l);
				goto out;
			}
		}
	}
	if (json_object_set(body, "HostConfig", host) != 0)
		goto oom;
	body_text = json_dumps(body, JSON_COMPACT);
	path = make_path(d, "/containers/create", NULL, NULL,
			 (const char *const[]){ "name", spec->name, NULL });
	if (!body_text || !path)
		goto oom;
	r.path = path;
	r.body = body_text;
	rc = do_request(d, &r, errmsg);
	if (rc == 0)
		rc = parse_response(&r, &root, errmsg);
	if (rc != 0)
		goto out;
	v = json_string_value(json_object_get(root, "Id"));
	if (!v) {
		rc = -EPROTO;
		set_err(errmsg, "container create: no Id in response");
		goto out;
	}
	if (id && !(*id = strdup(v)))
		goto oom;
	rc = 0;
	goto out;
bad_arg:
	rc = -EINVAL;
	set_err(errmsg, "container create: invalid (non-UTF-8?) string in spec");
	goto out;
oom:
	rc = -ENOMEM;
	set_err(errmsg, "container create: out of memory");
out:
	json_decref(root);
	json_decref(host);
	json_decref(body);
	free(body_text);
	free(path);
	request_done(&r);
	return rc;
}

/* A call on /containers/{id}... whose response is not interesting. */
static int simple_call(struct docker *d, const char *method, const char *what_fmt,
		       const char *prefix, const char *name, const char *suffix,
		       const char *const *params, char **errmsg)
{
	struct request r = { .method = method, .upload_fd = -1, .sink = SINK_BUFFER };
	char *path = make_path(d, prefix, name, suffix, params);
	char *what = what_printf(what_fmt, name);
	int rc;

	if (!path || !what) {
		rc = -ENOMEM;
		set_err(errmsg, "%s: out of memory", what ? what : method);
	} else {
		r.path = path;
		r.what = what;
		rc = do_request(d, &r, errmsg);
	}
	request_done(&r);
	free(path);
	free(what);
	return rc;
}

int docker_container_start(struct docker *d, const char *id, char **errmsg)
{
	/* 304 (already started) counts as success. */
	return simple_call(d, "POST", "container start %s", "/containers/", id, "/start", NULL,
			   errmsg);
}

int docker_container_wait(struct docker *d, const char *id, int *exit_code, char **errmsg)
{
	struct request r = { .method = "POST", .upload_fd = -1, .sink = SINK_BUFFER,
			     .streaming = true };
	char *path = make_path(d, "/containers/", id, "/wait", NULL);
	char *what = what_printf("container wait %s", id);
	json_t *root = NULL, *code;
	const char *werr;
	int rc;

	rc = request_json(d, &r, path, what, &root, errmsg);
	if (rc != 0)
		goto out;
	werr = json_string_value(json_object_get(json_object_get(root, "Error"), "Message"));
	if (werr && *werr) {
		rc = -EIO;
		set_err(errmsg, "%s: %s", what, werr);
		goto out;
	}
	code = json_object_get(root, "StatusCode");
	if (!json_is_integer(code)) {
		rc = -EPROTO;
		set_err(errmsg, "%s: no StatusCode in response", what);
		goto out;
	}
	if (exit_code)
		*exit_code = (int)json_integer_value(code);
out:
	json_decref(root);
	request_done(&r);
	free(path);
	free(what);
	return rc;
}

/* Whether the container has a TTY (its logs are then raw, not multiplexed). */
static int container_tty(struct docker *d, const char *id, bool *tty, char **errmsg)
{
	struct request r = { .method = "GET", .upload_fd = -1, .sink = SINK_BUFFER };
	char *path = make_path(d, "/containers/", id, "/json", NULL);
	char *what = what_printf("container inspect %s", id);
	json_t *root = NULL;
	int rc;

	rc = request_json(d, &r, path, what, &root, errmsg);
	if (rc == 0)
		*tty = json_is_true(json_object_get(json_object_get(root, "Config"), "Tty"));
	json_decref(root);
	request_done(&r);
	free(path);
	free(what);
	return rc;
}

int docker_container_logs(struct docker *d, const char *id, bool follow, docker_output_fn out,
			  void *ctx, char **errmsg)
{
	struct request r = { .method = "GET", .upload_fd = -1, .streaming = follow,
			     .out = out, .ctx = ctx };
	char *path = NULL;
	char *what = what_printf("container logs %s", id);
	bool tty = false;
	int rc;

	if (!what) {
		set_err(errmsg, "container logs: out of memory");
		return -ENOMEM;
	}
	rc = container_tty(d, id, &tty, errmsg);
	if (rc != 0)
		goto out;
	path = make_path(d, "/containers/", id, "/logs",
			 (const char *const[]){ "stdout", "1", "stderr", "1", "follow",
						follow ? "1" : NULL, NULL });
	if (!path) {
		rc = -ENOMEM;
		set_err(errmsg, "%s: out of memory", what);
		goto out;
	}
	r.path = path;
	r.what = what;
	r.sink = tty ? SINK_RAW : SINK_MUX;
	rc = do_request(d, &r, errmsg);
out:
	request_done(&r);
	free(path);
	free(what);
	return rc;
}

/* PUT or GET /containers/{id}/archive?path=path with r (method, upload or sink set). */
static int archive_call(struct docker *d, struct request *r, const char *id, const char *path,
			const char *what_fmt, char **errmsg)
{
	char *url = make_path(d, "/containers/", id, "/archive",
			      (const char *const[]){ "path", path, NULL });
	char *what = what_printf(what_fmt, id);
	int rc;

	r->streaming = true;
	if (!url || !what) {
		rc = -ENOMEM;
		set_err(errmsg, "container archive: out of memory");
	} else {
		r->path = url;
		r->what = what;
		rc = do_request(d, r, errmsg);
	}
	request_done(r);
	free(url);
	free(what);
	return rc;
}

int docker_container_archive_put(struct docker *d, const char *id, const char *path, int tar_fd,
				 char **errmsg)
{
	struct request r = { .method = "PUT", .upload_fd = tar_fd, .sink = SINK_BUFFER };

	if (tar_fd < 0) {
		set_err(errmsg, "container archive put %s: no archive", id);
		return -EBADF;
	}
	return archive_call(d, &r, id, path, "container archive put %s", errmsg);
}

int docker_container_archive_get(struct docker *d, const char *id, const char *path,
				 docker_data_fn out, void *ctx, char **errmsg)
{
	struct request r = { .method = "GET", .upload_fd = -1, .sink = SINK_DATA, .data = out,
			     .ctx = ctx };

	return archive_call(d, &r, id, path, "container archive get %s", errmsg);
}

int docker_container_remove(struct docker *d, const char *id, bool force, char **errmsg)
{
	return simple_call(d, "DELETE", "container remove %s", "/containers/", id, NULL,
			   (const char *const[]){ "force", force ? "1" : NULL, "v",
						  force ? "1" : NULL, NULL },
			   errmsg);
}

void docker_container_list_free(struct docker_container_summary *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++) {
		free(list[i].id);
		free(list[i].state);
		for (char **l = list[i].labels; l && *l; l++)
			free(*l);
		free(list[i].labels);
	}
	free(list);
}

const char *docker_label_value(char *const *labels, const char *name)
{
	size_t len = strlen(name);
	for (; labels && *labels; labels++)
		if (strncmp(*labels, name, len) == 0 && (*labels)[len] == '=')
			return *labels + len + 1;
	return NULL;
}

/* Fills s from one object of the /containers/json array. */
static int container_summary(json_t *o, struct docker_container_summary *s)
{
	const char *id = json_string_value(json_object_get(o, "Id"));
	const char *state = json_string_value(json_object_get(o, "State"));
	json_t *labels = json_object_get(o, "Labels");
	const char *name;
	json_t *value;
	size_t i = 0;

	if (!id)
		return -EPROTO;
	s->id = strdup(id);
	s->state = strdup(state ? state : "");
	s->labels = calloc(json_object_size(labels) + 1, sizeof(*s->labels));
	if (!s->id || !s->state || !s->labels)
		return -ENOMEM;
	json_object_foreach(labels, name, value) {
		if (!json_is_string(value))
			continue;
		if (!(s->labels[i] = str_printf("%s=%s", name, json_string_value(value))))
			return -ENOMEM;
		i++;
	}
	return 0;
}

int docker_container_list(struct docker *d, const char *label,
			  struct docker_container_summary **list, size_t *n, char **errmsg)
{
	struct request r = { .method = "GET", .upload_fd = -1, .sink = SINK_BUFFER };
	json_t *filters = NULL, *root = NULL;
	char *filters_text = NULL, *path = NULL;
	struct docker_container_summary *out = NULL;
	size_t count = 0;
	int rc = -ENOMEM;

	*list = NULL;
	*n = 0;
	if (label) {
		filters = json_pack("{s:[s]}", "label", label);
		if (!filters || !(filters_text = json_dumps(filters, JSON_COMPACT)))
			goto oom;
	}
	path = make_path(d, "/containers/json", NULL, NULL,
			 (const char *const[]){ "all", "1", "filters", filters_text, NULL });
	rc = request_json(d, &r, path, "container list", &root, errmsg);
	if (rc != 0)
		goto out;
	if (!json_is_array(root)) {
		rc = -EPROTO;
		set_err(errmsg, "container list: the daemon sent no array");
		goto out;
	}
	out = calloc(json_array_size(root) + 1, sizeof(*out));
	if (!out)
		goto oom;
	for (size_t i = 0; i < json_array_size(root); i++) {
		rc = container_summary(json_array_get(root, i), &out[count++]);
		if (rc == -ENOMEM)
			goto oom;
		if (rc != 0) {
			set_err(errmsg, "container list: an entry without Id");
			goto out;
		}
	}
	*list = out;
	*n = count;
	out = NULL;
	rc = 0;
	goto out;
oom:
	rc = -ENOMEM;
	set_err(errmsg, "container list: out of memory");
out:
	docker_container_list_free(out, count);
	json_decref(root);
	json_decref(filters);
	free(filters_text);
	free(path);
	request_done(&r);
	return rc;
}

int docker_image_build(struct docker *d, const char *tag, const char *const *buildargs,
		       const char *dockerfile, int context_fd, docker_output_fn out, void *ctx,
		       char **image_id, char **errmsg)
{
	struct request r = { .method = "POST", .upload_fd = context_fd, .sink = SINK_JSON,
			     .streaming = true, .out = out, .ctx = ctx };
	json_t *args = NULL;
	char *args_text = NULL, *path = NULL;
	char *what = what_printf("build %s", tag);
	int rc = -ENOMEM;

	if (image_id)
		*image_id = NULL;
	if (!what) {
		set_err(errmsg, "build: out of memory");
		return -ENOMEM;
	}
	if (context_fd < 0) {
		rc = -EBADF;
		set_err(errmsg, "%s: no build context", what);
		goto out;
	}
	args = json_object();
	if (!args)
		goto oom;
	for (const char *const *a = buildargs; a && *a; a++) {
		const char *eq = strchr(*a, '=');
		char *name;
		json_t *value;

		if (!eq || eq == *a) {
			rc = -EINVAL;
			set_err(errmsg, "%s: build arg \"%s\" is not NAME=value", what, *a);
			goto out;
		}
		name = strndup(*a, (size_t)(eq - *a));
		value = json_string(eq + 1);
		if (!name || !value || json_object_set_new(args, name, value) != 0) {
			free(name);
			if (!value && name) {
				rc = -EINVAL;
				set_err(errmsg, "%s: build arg \"%s\" is not UTF-8", what, *a);
				goto out;
			}
			goto oom;
		}
		free(name);
	}
	args_text = json_dumps(args, JSON_COMPACT);
	if (!args_text)
		goto oom;
	path = make_path(d, "/build", NULL, NULL,
			 (const char *const[]){ "t", tag, "buildargs", args_text, "rm", "1",
						"forcerm", "1", "dockerfile", dockerfile, NULL });
	if (!path)
		goto oom;
	r.path = path;
	r.what = what;
	rc = do_request(d, &r, errmsg);
	if (rc != 0 || !image_id)
		goto out;
	if (r.aux_id) {
		*image_id = r.aux_id;
		r.aux_id = NULL;
	} else if (tag) {
		rc = docker_image_inspect(d, tag, image_id, errmsg);
	} else {
		rc = -EPROTO;
		set_err(errmsg, "%s: the daemon reported no image ID", what);
	}
	goto out;
oom:
	rc = -ENOMEM;
	set_err(errmsg, "%s: out of memory", what);
out:
	json_decref(args);
	free(args_text);
	free(path);
	free(what);
	request_done(&r);
	return rc;
}

int docker_image_tag(struct docker *d, const char *source, const char *repo, const char *tag,
		     char **errmsg)
{
	return simple_call(d, "POST", "image tag %s", "/images/", source, "/tag",
			   (const char *const[]){ "repo", repo, "tag", tag, NULL }, errmsg);
}

int docker_image_push(struct docker *d, const char *ref, const char *auth, docker_output_fn out,
		      void *ctx, char **digest, char **errmsg)
{
	struct request r = { .method = "POST", .upload_fd = -1, .sink = SINK_JSON,
			     .streaming = true, .out = out, .ctx = ctx };
	char *repo = NULL, *tag = NULL, *path = NULL;
	char *what = what_printf("push %s", ref);
	int rc;

	if (digest)
		*digest = NULL;
	if (!what) {
		set_err(errmsg, "push: out of memory");
		return -ENOMEM;
	}
	rc = docker_split_ref(ref, &repo, &tag);
	if (rc != 0) {
		set_err(errmsg, "%s: %s", what, rc == -EINVAL ? "invalid reference" : strerror(-rc));
		goto out;
	}
	path = make_path(d, "/images/", repo, "/push",
			 (const char *const[]){ "tag", tag, NULL });
	if (!path) {
		rc = -ENOMEM;
		set_err(errmsg, "%s: out of memory", what);
		goto out;
	}
	r.path = path;
	r.what = what;
	/* dockerd refuses a push without the header; "e30=" is base64url("{}"). */
	r.registry_auth = auth ? auth : "e30=";
	rc = do_request(d, &r, errmsg);
	if (rc == 0 && digest) {
		if (!r.aux_digest) {
			rc = -EPROTO;
			set_err(errmsg, "%s: the daemon reported no digest", what);
		} else {
			*digest = r.aux_digest;
			r.aux_digest = NULL;
		}
	}
out:
	request_done(&r);
	free(repo);
	free(tag);
	free(path);
	free(what);
	return rc;
}

int docker_image_remove(struct docker *d, const char *ref, bool force, char **errmsg)
{
	return simple_call(d, "DELETE", "image remove %s", "/images/", ref, NULL,
			   (const char *const[]){ "force", force ? "1" : NULL, NULL }, errmsg);
}

/* ---- registry credentials --------------------------------------------------- */

char *docker_base64_encode(const void *data, size_t len, bool url)
{
	struct base64_encode_ctx ctx;
	char *out, *o;

	/* BASE64_ENCODE_LENGTH computes len * 8 */
	if (len > (SIZE_MAX - BASE64_ENCODE_FINAL_LENGTH - 1) / 8) {
		errno = ENOMEM;
		return NULL;
	}
	out = malloc(BASE64_ENCODE_LENGTH(len) + BASE64_ENCODE_FINAL_LENGTH + 1);
	if (!out)
		return NULL;
	if (url)
		base64url_encode_init(&ctx);
	else
		base64_encode_init(&ctx);
	o = out + base64_encode_update(&ctx, out, len, data);
	o += base64_encode_final(&ctx, o); /* pads with '=' */
	*o = '\0';
	return out;
}

/* Either alphabet, even mixed.  Checked up front because nettle's decoder
 * skips whitespace, which is not base64 here. */
static const char b64_either[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_";

int docker_base64_decode(const char *text, char **out, size_t *out_len)
{
	struct base64_decode_ctx ctx;
	size_t len = strlen(text), n = 0;
	uint8_t *buf;

	*out = NULL;
	while (len > 0 && text[len - 1] == '=')
		len--;
	/* a lone character after the last group of four holds no whole byte */
	if (len % 4 == 1 || strspn(text, b64_either) < len)
		return -EINVAL;
	buf = malloc(len / 4 * 3 + 3);
	if (!buf)
		return -ENOMEM;
	base64_decode_init(&ctx);
	for (size_t i = 0; i < len; i++) {
		/* the URL-safe characters as their standard twins: one decoder
		 * takes both alphabets */
		char c = text[i] == '-' ? '+' : text[i] == '_' ? '/' : text[i];
		int got = base64_decode_single(&ctx, buf + n, c);

		if (got < 0) {
			free(buf);
			return -EINVAL;
		}
		n += (size_t)got;
	}
	/* No base64_decode_final: it wants the padding, which is optional
	 * here.  The bits of a short last group that make no whole byte are
	 * dropped, as Go's decoder does by default. */
	buf[n] = '\0';
	if (out_len)
		*out_len = n;
	*out = (char *)buf;
	return 0;
}

/* The member of obj (of type want) for registry; config files key it with
 * or without a scheme. */
static json_t *find_registry_entry(json_t *obj, const char *registry, json_type want)
{
	static const char *const forms[] = { "%s", "https://%s", "http://%s", "https://%s/v1/",
					     "https://%s/v2/" };
	json_t *e;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char *key = str_printf(forms[i], registry);

		if (!key)
			return NULL;
		e = json_object_get(obj, key);
		free(key);
		if (e && json_typeof(e) == want)
			return e;
	}
	return NULL;
}

/* A non-empty string member of obj, or NULL. */
static const char *nonempty_member(json_t *obj, const char *name)
{
	const char *v = json_string_value(json_object_get(obj, name));

	return v && *v ? v : NULL;
}

/* Overwrites the secret strings of a parsed document before it is freed:
 * jansson frees its copies without clearing them.  Its string values are
 * private buffers of json_string_length bytes, so writing zeros over them
 * only damages the value, which is about to go. */
static void wipe_json_secrets(json_t *obj, const char *const *names)
{
	for (size_t i = 0; names[i]; i++) {
		json_t *v = json_object_get(obj, names[i]);

		if (json_is_string(v))
			explicit_bzero((char *)json_string_value(v), json_string_length(v));
	}
}

static const char *const config_secrets[] = { "auth", "password", "identitytoken",
					      "registrytoken", NULL };
static const char *const helper_secrets[] = { "Secret", NULL };

/* The X-Registry-Auth value (base64url of a JSON object built with jansson)
 * holding the credentials that are set, as the Engine API defines it:
 * username and password, an identity token (the daemon runs the registry's
 * OAuth2 token flow with it) and/or a registry (bearer) token, and always
 * serveraddress.  NULL on ENOMEM or non-UTF-8 credentials. */
static char *auth_header_value(const char *user, const char *pass, const char *identitytoken,
			       const char *registrytoken, const char *registry)
{
	json_t *cred = json_object();
	char *dumped = NULL, *value = NULL;
	bool ok = cred != NULL;

	if (ok && user && pass)
		ok = json_object_set_new(cred, "username", json_string(user)) == 0 &&
		     json_object_set_new(cred, "password", json_string(pass)) == 0;
	if (ok && identitytoken)
		ok = json_object_set_new(cred, "identitytoken", json_string(identitytoken)) == 0;
	if (ok && registrytoken)
		ok = json_object_set_new(cred, "registrytoken", json_string(registrytoken)) == 0;
	if (ok)
		ok = json_object_set_new(cred, "serveraddress", json_string(registry)) == 0;
	if (ok && (dumped = json_dumps(cred, JSON_COMPACT)))
		value = docker_base64_encode(dumped, strlen(dumped), true);
	if (cred) {
		static const char *const sent[] = { "password", "identitytoken", "registrytoken",
						    NULL };
		wipe_json_secrets(cred, sent);
	}
	json_decref(cred);
	if (dumped)
		explicit_bzero(dumped, strlen(dumped));
	free(dumped);
	return value;
}

static char *dup_or_null(const char *v, bool *oom)
{
	char *d = v ? strdup(v) : NULL;

	if (v && !d)
		*oom = true;
	return d;
}

/* Fills *out with copies of the credentials that are set (user and pass
 * only together).  0 or -ENOMEM (then *out is cleared). */
static int set_credentials(struct docker_credentials *out, const char *user, const char *pass,
			   const char *identitytoken, const char *registrytoken)
{
	bool oom = false;

	memset(out, 0, sizeof(*out));
	if (user && pass) {
		out->username = dup_or_null(user, &oom);
		out->password = dup_or_null(pass, &oom);
	}
	out->identitytoken = dup_or_null(identitytoken, &oom);
	out->registrytoken = dup_or_null(registrytoken, &oom);
	if (oom) {
		docker_credentials_clear(out);
		return -ENOMEM;
	}
	return 0;
}

void docker_credentials_clear(struct docker_credentials *c)
{
	char **fields[] = { &c->username, &c->password, &c->identitytoken, &c->registrytoken };

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (*fields[i])
			explicit_bzero(*fields[i], strlen(*fields[i]));
		free(*fields[i]);
		*fields[i] = NULL;
	}
}

/* The X-Registry-Auth value of creds (see auth_header_value); 0 or -ENOMEM
 * with *errmsg. */
static int credentials_auth_value(const struct docker_credentials *creds, const char *registry,
				  char **auth, char **errmsg)
{
	*auth = auth_header_value(creds->username, creds->password, creds->identitytoken,
				  creds->registrytoken, registry);
	if (*auth)
		return 0;
	set_err(errmsg, "registry auth %s: out of memory (or non-UTF-8 credentials)", registry);
	return -ENOMEM;
}

/* The credentials of an "auths" entry: "auth" (base64 "user:password") or
 * "username"/"password", and/or "identitytoken"/"registrytoken". */
static int auths_entry_value(json_t *entry, const char *path, const char *registry,
			     struct docker_credentials *creds, char **errmsg)
{
	const char *b64 = nonempty_member(entry, "auth");
	const char *user = NULL, *pass = NULL;
	const char *identitytoken = nonempty_member(entry, "identitytoken");
	const char *registrytoken = nonempty_member(entry, "registrytoken");
	char *userpass = NULL;
	int rc = 0;

	if (b64) {
		char *colon;

		rc = docker_base64_decode(b64, &userpass, NULL);
		if (rc != 0 || !(colon = strchr(userpass, ':'))) {
			rc = rc == -ENOMEM ? rc : -EINVAL;
			set_err(errmsg, "%s: the auth entry for %s is not base64 \"user:password\"",
				path, registry);
			goto out;
		}
		*colon = '\0';
		user = userpass;
		pass = colon + 1;
	} else {
		user = json_string_value(json_object_get(entry, "username"));
		pass = json_string_value(json_object_get(entry, "password"));
		if (!user || !pass)
			user = pass = NULL;
	}
	if (!user && !identitytoken && !registrytoken) {
		/* e.g. an empty entry left behind by a credential helper */
		rc = -ENOENT;
		set_err(errmsg, "%s: no credentials for %s", path, registry);
		goto out;
	}
	rc = set_credentials(creds, user, pass, identitytoken, registrytoken);
	if (rc < 0)
		set_err(errmsg, "registry auth %s: out of memory", registry);
out:
	if (userpass)
		explicit_bzero(userpass, strlen(userpass) + 1);
	free(userpass);
	return rc;
}

/* docker_registry_auth_parse, with the credentials themselves in *creds. */
static int registry_credentials_parse(const char *text, size_t len, const char *path,
				      const char *registry, struct docker_credentials *creds,
				      char **helper, char **errmsg)
{
	json_t *root = NULL, *entry;
	json_error_t jerr;
	const char *name = NULL;
	int rc;

	memset(creds, 0, sizeof(*creds));
	*helper = NULL;
	root = json_loadb(text, len, 0, &jerr);
	if (!json_is_object(root)) {
		rc = -EPROTO;
		set_err(errmsg, "%s:%d: %s", path, jerr.line, root ? "not an object" : jerr.text);
		goto out;
	}
	/* Docker's order: the registry's own helper, else the default store,
	 * else the file; an empty name means the file. */
	entry = find_registry_entry(json_object_get(root, "credHelpers"), registry, JSON_STRING);
	name = entry ? json_string_value(entry)
		     : json_string_value(json_object_get(root, "credsStore"));
	if (name && *name) {
		/* the name becomes part of a program name looked up in PATH */
		if (strchr(name, '/')) {
			rc = -EINVAL;
			set_err(errmsg, "%s: credential helper name \"%s\" for %s has a '/'", path,
				name, registry);
		} else {
			*helper = strdup(name);
			rc = *helper ? 0 : -ENOMEM;
			if (rc < 0)
				set_err(errmsg, "registry auth %s: out of memory", registry);
		}
		goto out;
	}
	entry = find_registry_entry(json_object_get(root, "auths"), registry, JSON_OBJECT);
	if (!entry) {
		rc = -ENOENT;
		set_err(errmsg, "%s: no credentials for %s", path, registry);
		goto out;
	}
	rc = auths_entry_value(entry, path, registry, creds, errmsg);
out:
	if (json_is_object(root)) {
		json_t *entry_value;
		const char *key;

		json_object_foreach(json_object_get(root, "auths"), key, entry_value)
			wipe_json_secrets(entry_value, config_secrets);
	}
	json_decref(root);
	return rc;
}

int docker_registry_auth_parse(const char *text, size_t len, const char *path,
			       const char *registry, char **auth, char **helper, char **errmsg)
{
	struct docker_credentials creds;
	int rc = registry_credentials_parse(text, len, path, registry, &creds, helper, errmsg);

	*auth = NULL;
	if (rc == 0 && !*helper)
		rc = credentials_auth_value(&creds, registry, auth, errmsg);
	docker_credentials_clear(&creds);
	return rc;
}

/* The first line of text (len bytes), without surrounding blanks, cut to
 * 200 bytes: what a failing helper said. */
static char *first_line(const char *text, size_t len)
{
	size_t start = 0, end;

	while (start < len && (text[start] == ' ' || text[start] == '\t' || text[start] == '\r' ||
			       text[start] == '\n'))
		start++;
	end = start;
	while (end < len && text[end] != '\n' && text[end] != '\r' && text[end] != '\0' &&
	       end - start < 200)
		end++;
	while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t'))
		end--;
	return strndup(text + start, end - start);
}

/* docker_credential_output_parse, with the credentials themselves in *creds. */
static int helper_output_credentials(const char *out, size_t len, int exit_status,
				     const char *helper, const char *registry,
				     struct docker_credentials *creds, char **errmsg)
{
	/* the message of docker-credential-helpers' ErrCredentialsNotFound,
	 * which Docker's clients take for "no credentials" */
	static const char not_found[] = "credentials not found in native keychain";
	json_t *root = NULL;
	json_error_t jerr;
	int rc;

	memset(creds, 0, sizeof(*creds));
	if (exit_status != 0) {
		char *said = first_line(out, len);

		if (said && strcmp(said, not_found) == 0) {
			rc = -ENOENT;
			set_err(errmsg, "docker-credential-%s has no credentials for %s", helper,
				registry);
		} else {
			rc = -EIO;
			set_err(errmsg, "credential helper docker-credential-%s get failed for %s"
				" (exit status %d): %s", helper, registry, exit_status,
				said && *said ? said : "(no message)");
		}
		free(said);
		return rc;
	}
	root = json_loadb(out, len, 0, &jerr);
	const char *user = json_string_value(json_object_get(root, "Username"));
	const char *secret = json_string_value(json_object_get(root, "Secret"));

	if (!json_is_object(root) || !user || !secret) {
		/* the output is never quoted: it may hold a secret */
		rc = -EPROTO;
		set_err(errmsg, "credential helper docker-credential-%s get for %s: the output is"
			" not a JSON object with Username and Secret", helper, registry);
	} else if (!*secret) {
		/* what some helpers answer for an unknown server */
		rc = -ENOENT;
		set_err(errmsg, "docker-credential-%s has no credentials for %s", helper,
			registry);
	} else {
		/* Docker's convention: the user "<token>" marks an identity token */
		bool token = strcmp(user, "<token>") == 0;

		rc = token ? set_credentials(creds, NULL, NULL, secret, NULL)
			   : set_credentials(creds, user, secret, NULL, NULL);
		if (rc < 0)
			set_err(errmsg, "registry auth %s: out of memory", registry);
	}
	if (json_is_object(root))
		wipe_json_secrets(root, helper_secrets);
	json_decref(root);
	return rc;
}

int docker_credential_output_parse(const char *out, size_t len, int exit_status,
				   const char *helper, const char *registry, char **auth,
				   char **errmsg)
{
	struct docker_credentials creds;
	int rc = helper_output_credentials(out, len, exit_status, helper, registry, &creds,
					   errmsg);

	*auth = NULL;
	if (rc == 0)
		rc = credentials_auth_value(&creds, registry, auth, errmsg);
	docker_credentials_clear(&creds);
	return rc;
}

/* Reads what a helper wrote into memfd fd (at most CREDENTIAL_OUTPUT_MAX
 * bytes, NUL-terminated), then empties the memfd.  0 or -errno. */
static int take_memfd(int fd, char **text, size_t *len)
{
	char *buf = malloc(CREDENTIAL_OUTPUT_MAX + 1);
	size_t n = 0;
	int rc = buf ? 0 : -ENOMEM;

	while (rc == 0 && n < CREDENTIAL_OUTPUT_MAX) {
		ssize_t got = pread(fd, buf + n, CREDENTIAL_OUTPUT_MAX - n, (off_t)n);

		if (got < 0 && errno != EINTR)
			rc = -errno;
		else if (got == 0)
			break;
		else if (got > 0)
			n += (size_t)got;
	}
	if (ftruncate(fd, 0) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		if (buf)
			explicit_bzero(buf, n);
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

static bool blank(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n')
			return false;
	return true;
}

/* docker_credential_helper_get, with the credentials themselves in *creds.
 * Its stdout is the answer, its stderr only explains a failure. */
static int helper_credentials(const char *helper, const char *registry, unsigned timeout_s,
			      struct docker_credentials *creds, char **errmsg)
{
	char *program = str_printf("docker-credential-%s", helper);
	const char *argv[] = { program, "get", NULL };
	int in = memfd_create("sebsfs-credential-in", MFD_CLOEXEC);
	int out = memfd_create("sebsfs-credential-out", MFD_CLOEXEC);
	int err = memfd_create("sebsfs-credential-err", MFD_CLOEXEC);
	char *out_text = NULL, *err_text = NULL;
	size_t out_len = 0, err_len = 0;
	struct timespec deadline;
	int status = -1, rc = 0;

	memset(creds, 0, sizeof(*creds));
	if (!program) {
		rc = -ENOMEM;
	} else if (in < 0 || out < 0 || err < 0) {
		rc = -errno;
	} else if (write(in, registry, strlen(registry)) != (ssize_t)strlen(registry) ||
		   lseek(in, 0, SEEK_SET) < 0) {
		rc = errno ? -errno : -EIO;
	}
	if (rc < 0) {
		set_err(errmsg, "cannot run credential helper %s for %s: %s",
			program ? program : helper, registry, strerror(-rc));
		rc = rc == -ENOENT ? -EIO : rc;
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_s;
	struct spawn_opts opts = { .out_fd = out, .cancel_fd = -1, .deadline = &deadline,
				   .has_in_fd = true, .in_fd = in, .has_err_fd = true,
				   .err_fd = err };
	rc = spawn_wait(argv, &opts, &status);
	if (rc == -ENOENT) {
		rc = -EIO;
		set_err(errmsg, "credential helper %s (the Docker config's credHelpers or credsStore"
			" for %s) is not installed: no such program in PATH", program, registry);
		goto out;
	} else if (rc == -ETIMEDOUT) {
		set_err(errmsg, "credential helper %s get for %s did not answer within %u s; it"
			" was stopped", program, registry, timeout_s);
		goto out;
	} else if (rc < 0) {
		set_err(errmsg, "cannot run credential helper %s for %s: %s", program, registry,
			strerror(-rc));
		rc = rc == -ENOENT ? -EIO : rc;
		goto out;
	}
	rc = take_memfd(out, &out_text, &out_len);
	if (rc == 0)
		rc = take_memfd(err, &err_text, &err_len);
	if (rc < 0) {
		set_err(errmsg, "credential helper %s for %s: cannot read its answer: %s", program,
			registry, strerror(-rc));
		rc = rc == -ENOENT ? -EIO : rc;
		goto out;
	}
	/* a helper that fails without a word on stdout may explain on stderr */
	if (status != 0 && blank(out_text, out_len))
		rc = helper_output_credentials(err_text, err_len, status, helper, registry, creds,
					       errmsg);
	else
		rc = helper_output_credentials(out_text, out_len, status, helper, registry, creds,
					       errmsg);
out:
	if (out_text)
		explicit_bzero(out_text, out_len);
	free(out_text);
	free(err_text);
	for (int i = 0; i < 3; i++) {
		int fd = i == 0 ? in : i == 1 ? out : err;

		if (fd >= 0)
			close(fd);
	}
	free(program);
	return rc;
}

int docker_credential_helper_get(const char *helper, const char *registry, unsigned timeout_s,
				 char **auth, char **errmsg)
{
	struct docker_credentials creds;
	int rc = helper_credentials(helper, registry, timeout_s, &creds, errmsg);

	*auth = NULL;
	if (rc == 0)
		rc = credentials_auth_value(&creds, registry, auth, errmsg);
	docker_credentials_clear(&creds);
	return rc;
}

int docker_registry_credentials(const char *registry, struct docker_credentials *creds,
				char **errmsg)
{
	const char *dir = getenv("DOCKER_CONFIG");
	const char *home = getenv("HOME");
	char *path = NULL, *text = NULL, *helper = NULL;
	size_t len = 0;
	int rc;

	memset(creds, 0, sizeof(*creds));
	if (dir && *dir)
		path = path_join(dir, "config.json");
	else if (home && *home)
		path = str_printf("%s/.docker/config.json", home);
	else {
		set_err(errmsg, "registry auth %s: neither DOCKER_CONFIG nor HOME is set", registry);
		return -ENOENT;
	}
	if (!path) {
		set_err(errmsg, "registry auth %s: out of memory", registry);
		return -ENOMEM;
	}
	rc = read_file(path, &text, &len);
	if (rc != 0)
		set_err(errmsg, "%s: %s", path, strerror(-rc));
	else
		rc = registry_credentials_parse(text, len, path, registry, creds, &helper, errmsg);
	if (text)
		explicit_bzero(text, len);
	free(text);
	if (rc == 0 && helper)
		rc = helper_credentials(helper, registry, CREDENTIAL_HELPER_TIMEOUT, creds, errmsg);
	free(helper);
	free(path);
	return rc;
}

int docker_registry_auth(const char *registry, char **auth, char **errmsg)
{
	struct docker_credentials creds;
	int rc = docker_registry_credentials(registry, &creds, errmsg);

	*auth = NULL;
	if (rc == 0)
		rc = credentials_auth_value(&creds, registry, auth, errmsg);
	docker_credentials_clear(&creds);
	return rc;
}
