/*
 * regcache.c - the remote package cache's registry client (see regcache.h).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <nettle/base64.h>

#include "config.h"
#include "docker.h"
#include "errmsg.h"
#include "fsutil.h"
#include "log.h"
#include "regcache.h"

/* Manifests, token answers and error bodies are small; more is garbage. */
#define SMALL_BODY_MAX (4u * 1024 * 1024)
/* A blob transfer may take REGCACHE_LOOKUP_TIMEOUT_S plus one second per
 * this many bytes (256 KiB/s: a slow link, not a stalled one). */
#define BLOB_BYTES_PER_SECOND (256 * 1024)

/* sha256 of "{}", the OCI empty descriptor's blob */
static const char EMPTY_JSON[] = "{}";
#define EMPTY_SHA256 "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

struct regcache {
	char *base;        /* "http://host:port" */
	char *registry;    /* "host:port" */
	char *repository;
	pthread_mutex_t lock;
	/* the Authorization header values that worked last, per access */
	char *auth_pull;
	char *auth_push;
	atomic_bool cancelled;   /* regcache_cancel: every transfer stops */
	/* TLS, from the registry's folder under the certs root (Docker's
	 * certs.d convention); all NULL when it has none */
	char *certs_dir;   /* <root>/<host:port>, present or not */
	bool has_certs;    /* it is a folder */
	char *ca_blob;     /* the system's CA bundle and the folder's *.crt */
	size_t ca_blob_len;
	char *client_cert, *client_key;   /* the folder's <name>.cert and <name>.key */
};

static void wipe_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static bool is_loopback(const char *host)
{
	return strncmp(host, "127.", 4) == 0 || strncmp(host, "localhost", 9) == 0 ||
	       strncmp(host, "[::1]", 5) == 0;
}

/* The distribution spec's repository name: path components of
 * [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, joined by '/'.  Checked loosely (the
 * character set and no empty component): the registry has the last word. */
static bool repository_ok(const char *repo)
{
	size_t len = strlen(repo);

	if (len == 0 || len > 255 || repo[0] == '/' || repo[len - 1] == '/' || strstr(repo, "//"))
		return false;
	for (const char *c = repo; *c; c++)
		if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '.' ||
		      *c == '_' || *c == '-' || *c == '/'))
			return false;
	return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* Appends the file path to the growing PEM buffer *blob. */
static int append_file(char **blob, size_t *len, const char *path)
{
	char *text = NULL;
	size_t n = 0;
	int rc = read_file(path, &text, &n);
	if (rc < 0)
		return rc;
	char *grown = realloc(*blob, *len + n + 2);
	if (!grown) {
		free(text);
		return -ENOMEM;
	}
	memcpy(grown + *len, text, n);
	*len += n;
	grown[(*len)++] = '\n';   /* a file without a final newline ends its PEM block */
	grown[*len] = '\0';
	*blob = grown;
	free(text);
	return 0;
}

/* The CA bundle curl trusts by default (CURLINFO_CAINFO, libcurl 7.84), or
 * NULL when it has none or cannot say. */
static char *default_ca_file(void)
{
	char *path = NULL;
#if LIBCURL_VERSION_NUM >= 0x075400
	CURL *curl = curl_easy_init();
	char *info = NULL;
	if (curl && curl_easy_getinfo(curl, CURLINFO_CAINFO, &info) == CURLE_OK && info)
		path = strdup(info);
	if (curl)
		curl_easy_cleanup(curl);
#endif
	return path;
}

/* Docker's per-registry TLS folder, <root>/<host[:port]>/: every *.crt is a
 * CA trusted for this registry besides the system's; a <name>.cert with its
 * <name>.key is the client certificate (the first such pair by name).  A
 * folder that is absent is no error: the system's CAs alone. */
static int load_registry_certs(struct regcache *r, const char *root, char **errmsg)
{
	char **names = NULL, *system_ca = NULL, *path = NULL;
	size_t n = 0, cas = 0;
	char *dir = path_join(root, r->registry);
	int rc = dir ? 0 : -ENOMEM;

	if (rc == 0 && !path_is_dir(dir)) {
		r->certs_dir = dir;   /* none: not an error */
		return 0;
	}
	if (rc == 0 && (rc = list_dir_sorted(dir, &names, &n)) < 0) {
		errmsg_set(errmsg, "remote_cache: cannot list the registry's certificate folder %s: %s",
			   dir, strerror(-rc));
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		bool cert = has_suffix(names[i], ".cert"), key = has_suffix(names[i], ".key");
		free(path);
		path = path_join(dir, names[i]);
		if (!path) {
			rc = -ENOMEM;
		} else if (has_suffix(names[i], ".crt")) {
			if ((rc = append_file(&r->ca_blob, &r->ca_blob_len, path)) < 0)
				errmsg_set(errmsg, "remote_cache: cannot read the CA certificate %s: %s",
					   path, strerror(-rc));
			cas++;
		} else if (cert || key) {
			/* as Docker: each half of a client certificate wants the other */
			size_t stem = strlen(path) - strlen(cert ? ".cert" : ".key");
			char *other = str_printf("%.*s%s", (int)stem, path, cert ? ".key" : ".cert");
			if (!other) {
				rc = -ENOMEM;
			} else if (!path_is_file(other)) {
				rc = -ENOENT;
				errmsg_set(errmsg, "remote_cache: %s has no %s beside it (a client"
					   " certificate is a .cert and a .key of one name; CA certificates"
					   " end in .crt)", path, other);
			} else if (cert && !r->client_cert) {
				r->client_cert = strdup(path);
				r->client_key = strdup(other);
				if (!r->client_cert || !r->client_key)
					rc = -ENOMEM;
			}
			free(other);
		}
	}
	if (rc == 0 && cas) {
		/* CURLOPT_CAINFO_BLOB replaces the default bundle: it carries it */
		char *ours = r->ca_blob;
		size_t our_len = r->ca_blob_len;
		r->ca_blob = NULL;
		r->ca_blob_len = 0;
		system_ca = default_ca_file();
		if (system_ca && append_file(&r->ca_blob, &r->ca_blob_len, system_ca) < 0)
			log_warn("remote_cache: cannot read the system's CA bundle %s; trusting only the"
				 " CAs in %s for %s", system_ca, dir, r->registry);
		char *all = realloc(r->ca_blob, r->ca_blob_len + our_len + 1);
		if (!all) {
			free(ours);
			rc = -ENOMEM;
			goto out;
		}
		memcpy(all + r->ca_blob_len, ours, our_len + 1);
		r->ca_blob = all;
		r->ca_blob_len += our_len;
		free(ours);
	}
	if (rc == 0) {
		r->has_certs = true;
		r->certs_dir = dir;
		dir = NULL;
	}
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "remote_cache: out of memory");
	str_list_free(names, n);
	free(system_ca);
	free(path);
	free(dir);
	return rc;
}

/* curl_easy_init would run curl_global_init itself, which is not safe
 * while other threads use curl: once, before any handle. */
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct regcache *regcache_new(const char *spec, const char *certs_root, char **errmsg)
{
	const char *scheme = NULL, *rest = spec;
	struct regcache *r = NULL;

	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		errmsg_set(errmsg, "remote_cache: curl_global_init: %s",
			   curl_easy_strerror(global_rc));
		return NULL;
	}

	if (strncmp(spec, "http://", 7) == 0) {
		scheme = "http";
		rest = spec + 7;
	} else if (strncmp(spec, "https://", 8) == 0) {
		scheme = "https";
		rest = spec + 8;
	}
	const char *slash = strchr(rest, '/');
	if (!slash || slash == rest || !repository_ok(slash + 1)) {
		errmsg_set(errmsg, "remote_cache=%s: expected REGISTRY/REPOSITORY (e.g."
			" registry.example.org:5000/team/sebsfs), the repository in lower case", spec);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->registry = strndup(rest, (size_t)(slash - rest))) ||
	    !(r->repository = strdup(slash + 1)))
		goto oom;
	if (load_registry_certs(r, certs_root ? certs_root : REGCACHE_CERTS_ROOT, errmsg) < 0)
		goto fail;
	/* Docker's choice: TLS unless the registry is on this host (or the
	 * spec says http://); a certificate folder for it asks for TLS there
	 * too */
	if (!scheme)
		scheme = is_loopback(r->registry) && !r->has_certs ? "http" : "https";
	if (!(r->base = str_printf("%s://%s", scheme, r->registry)))
		goto oom;
	pthread_mutex_init(&r->lock, NULL);
	return r;
oom:
	errmsg_set(errmsg, "remote_cache: out of memory");
fail:
	if (r) {
		free(r->registry);
		free(r->repository);
		free(r->certs_dir);
		free(r->ca_blob);
		free(r->client_cert);
		free(r->client_key);
		free(r);
	}
	return NULL;
}

void regcache_free(struct regcache *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	wipe_free(r->auth_pull);
	wipe_free(r->auth_push);
	free(r->base);
	free(r->registry);
	free(r->repository);
	free(r->certs_dir);
	free(r->ca_blob);
	free(r->client_cert);
	free(r->client_key);
	free(r);
}

void regcache_cancel(struct regcache *r)
{
	atomic_store(&r->cancelled, true);
}

/* CLOCK_MONOTONIC in seconds. */
static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *regcache_registry(const struct regcache *r)
{
	return r->registry;
}

const char *regcache_repository(const struct regcache *r)
{
	return r->repository;
}

/* ---- manifests ------------------------------------------------------------ */

const struct regcache_kind regcache_package_kind = {
	.noun = "package",
	.artifact_type = REGCACHE_ARTIFACT_TYPE,
	.blob_media_type = REGCACHE_ZIP_MEDIA_TYPE,
	.config_media_type = REGCACHE_CONFIG_MEDIA_TYPE,
};

const struct regcache_kind regcache_layer_kind = {
	.noun = "dependency layer",
	.artifact_type = REGCACHE_LAYER_ARTIFACT_TYPE,
	.blob_media_type = REGCACHE_LAYER_MEDIA_TYPE,
	.config_media_type = REGCACHE_LAYER_CONFIG_MEDIA_TYPE,
};

void regcache_package_artifact(const struct regcache_package *p, struct regcache_artifact *out)
{
	*out = (struct regcache_artifact){
		.kind = &regcache_package_kind,
		.fields = { { "platform", p->platform }, { "runtime", p->runtime },
			    { "benchmark", p->benchmark }, { "builder", p->builder } },
		.title = p->filename, .sha256 = p->sha256, .size = p->size, .created = p->created,
	};
}

void regcache_layer_artifact(const struct regcache_layer *l, struct regcache_artifact *out)
{
	/* "org.sebsfs.version" is sebsfs's own, as on every artifact */
	*out = (struct regcache_artifact){
		.kind = &regcache_layer_kind,
		.fields = { { "language", l->language }, { "language_version", l->version },
			    { "arch", l->arch }, { "installer", l->installer } },
		.sha256 = l->sha256, .size = l->size, .created = l->created,
	};
}

static json_t *annotations(const struct regcache_artifact *a)
{
	char created[32];
	time_t t = (time_t)a->created;
	struct tm tm;
	json_t *out = json_object();

	gmtime_r(&t, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	for (const struct regcache_field *f = a->fields; out && f->name; f++) {
		char *name = str_printf("org.sebsfs.%s", f->name);
		if (!name || json_object_set_new(out, name, json_string(f->value ? f->value : "")) < 0) {
			json_decref(out);
			out = NULL;
		}
		free(name);
	}
	if (out && (json_object_set_new(out, "org.sebsfs.sha256", json_string(a->sha256)) < 0 ||
		    json_object_set_new(out, "org.sebsfs.version", json_string(SEBSFS_VERSION)) < 0 ||
		    json_object_set_new(out, "org.opencontainers.image.created",
					json_string(created)) < 0)) {
		json_decref(out);
		out = NULL;
	}
	return out;
}

char *regcache_config_json(const struct regcache_artifact *a)
{
	json_t *ann = annotations(a);
	char *text = ann ? json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(ann);
	return text;
}

char *regcache_manifest_json(const struct regcache_artifact *a, bool artifact,
			     const char *config_sha256, int64_t config_size)
{
	char *layer_digest = str_printf("sha256:%s", a->sha256);
	char *config_digest = artifact ? strdup("sha256:" EMPTY_SHA256)
				       : str_printf("sha256:%s", config_sha256);
	json_t *m = NULL;
	char *text = NULL;

	if (!layer_digest || !config_digest)
		goto out;
	m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I}], s:o}",
		      "schemaVersion", 2, "mediaType", REGCACHE_MANIFEST_MEDIA_TYPE,
		      "config", "mediaType",
		      artifact ? REGCACHE_EMPTY_MEDIA_TYPE : a->kind->config_media_type,
		      "digest", config_digest,
		      "size", (json_int_t)(artifact ? strlen(EMPTY_JSON) : (size_t)config_size),
		      "layers", "mediaType", a->kind->blob_media_type, "digest", layer_digest,
		      "size", (json_int_t)a->size, "annotations", annotations(a));
	if (m && artifact &&
	    json_object_set_new(m, "artifactType", json_string(a->kind->artifact_type)) < 0)
		goto out;
	if (m && a->title &&
	    json_object_set_new(json_array_get(json_object_get(m, "layers"), 0), "annotations",
				json_pack("{s:s}", "org.opencontainers.image.title", a->title)) < 0)
		goto out;
	if (m && artifact) {
		/* the empty config's descriptor carries its data inline, as the
		 * OCI image spec suggests for it */
		json_t *config = json_object_get(m, "config");
		if (json_object_set_new(config, "data", json_string("e30=")) < 0)
			goto out;
	}
	if (m)
		text = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
out:
	json_decref(m);
	free(layer_digest);
	free(config_digest);
	return text;
}

/* ---- HTTP ------------------------------------------------------------------- */

struct http {
	/* in */
	const char *method;        /* "GET", "HEAD", "POST", "PUT" */
	char *url;                 /* owned */
	const char *accept;
	const char *content_type;
	const char *body;          /* an upload from memory... */
	size_t body_len;
	int upload_fd;             /* ...or from a file (-1: none) */
	int64_t upload_size;
	int64_t upload_off;
	int download_fd;           /* a 200's body goes here (-1: into body_out) */
	struct sha256_ctx *download_hash;
	bool download_bounded;     /* more than download_max bytes: -EFBIG */
	int64_t download_max;
	int64_t downloaded;
	bool follow;
	long timeout_s;
	double deadline;           /* now_seconds() bound of the whole operation; 0: none */
	atomic_bool *cancelled;
	int cancel_fd;             /* readable: stop (a build's cancellation); 0 or -1: none */
	const char *auth;          /* "Bearer x" / "Basic x", or NULL */
	const char *user, *pass;   /* HTTP Basic for a token request */
	/* out */
	long status;
	char *body_out;
	size_t body_out_len;
	char *location;
	char *www_auth;
	char *content_digest;
	int write_err;
	char curl_err[CURL_ERROR_SIZE];
};

static void http_reset_out(struct http *h)
{
	free(h->body_out);
	free(h->location);
	free(h->www_auth);
	free(h->content_digest);
	h->body_out = h->location = h->www_auth = h->content_digest = NULL;
	h->body_out_len = 0;
	h->status = 0;
	h->write_err = 0;
	h->upload_off = 0;
	h->downloaded = 0;
	h->curl_err[0] = '\0';
}

static void http_clear(struct http *h)
{
	http_reset_out(h);
	free(h->url);
	h->url = NULL;
}

static size_t write_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct http *h = ctx;
	size_t len = size * n;

	if (h->download_fd >= 0 && h->status == 200) {
		/* a registry that sends more than the manifest said never
		 * fills the disk: the blob is wrong at the first extra byte */
		if (h->download_bounded && h->downloaded + (int64_t)len > h->download_max) {
			h->write_err = -EFBIG;
			return 0;
		}
		if (write_all(h->download_fd, data, len) < 0) {
			h->write_err = -errno;
			return 0;
		}
		if (h->download_hash)
			sha256_update(h->download_hash, len, (const uint8_t *)data);
		h->downloaded += (int64_t)len;
		return len;
	}
	if (h->body_out_len + len > SMALL_BODY_MAX) {
		h->write_err = -EFBIG;
		return 0;
	}
	char *grown = realloc(h->body_out, h->body_out_len + len + 1);
	if (!grown) {
		h->write_err = -ENOMEM;
		return 0;
	}
	memcpy(grown + h->body_out_len, data, len);
	h->body_out = grown;
	h->body_out_len += len;
	h->body_out[h->body_out_len] = '\0';
	return len;
}

/* The value of header line "Name: value\r\n" when it is name, malloc'd. */
static char *header_value(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return NULL;
	const char *v = line + n + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	return strndup(v, (size_t)(end - v));
}

static void take_header(char **slot, char *value)
{
	if (!value)
		return;
	free(*slot);
	*slot = value;
}

static size_t header_cb(char *data, size_t size, size_t n, void *ctx)
{
	struct http *h = ctx;
	size_t len = size * n;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new response (after a redirect or a 100 Continue) */
		const char *sp = memchr(data, ' ', len);
		h->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		return len;
	}
	take_header(&h->location, header_value(data, len, "Location"));
	take_header(&h->www_auth, header_value(data, len, "WWW-Authenticate"));
	take_header(&h->content_digest, header_value(data, len, "Docker-Content-Digest"));
	return len;
}

static size_t read_cb(char *buf, size_t size, size_t n, void *ctx)
{
	struct http *h = ctx;
	size_t want = size * n;

	if (h->upload_fd < 0) {
		size_t left = h->body_len - (size_t)h->upload_off;
		if (want > left)
			want = left;
		memcpy(buf, h->body + h->upload_off, want);
		h->upload_off += (int64_t)want;
		return want;
	}
	ssize_t got = pread(h->upload_fd, buf, want, (off_t)h->upload_off);
	if (got < 0) {
		h->write_err = -errno;
		return CURL_READFUNC_ABORT;
	}
	h->upload_off += got;
	return (size_t)got;
}

static int progress_cb(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const struct http *h = ctx;
	struct pollfd pfd = { .fd = h->cancel_fd, .events = POLLIN };

	if (h->cancelled && atomic_load(h->cancelled))
		return 1;
	return h->cancel_fd > 0 && poll(&pfd, 1, 0) > 0 ? 1 : 0;
}

/* What a TLS failure means here, for its message: which CAs were trusted
 * and where another would go.  "" for any other failure. */
static void tls_hint(const struct regcache *r, CURLcode cc, char *buf, size_t size)
{
	buf[0] = '\0';
	if (cc != CURLE_PEER_FAILED_VERIFICATION && cc != CURLE_SSL_CACERT_BADFILE &&
	    cc != CURLE_SSL_CONNECT_ERROR && cc != CURLE_SSL_CERTPROBLEM)
		return;
	if (r->ca_blob)
		snprintf(buf, size, " (TLS: trusted are the system's CAs and the *.crt in %s)",
			 r->certs_dir);
	else
		snprintf(buf, size, " (TLS: trusted are the system's CAs; a registry's own CA goes"
			 " in %s/ca.crt; a registry without TLS wants http:// before its name)",
			 r->certs_dir);
}

/* One exchange.  0 (whatever the status) or -errno for a transport failure
 * with *errmsg. */
static int http_perform(struct regcache *r, struct http *h, char **errmsg)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *headers = NULL;
	char *line = NULL;
	int rc = 0;

	http_reset_out(h);
	if (!curl) {
		errmsg_set(errmsg, "registry %s: cannot create a curl handle", r->registry);
		return -ENOMEM;
	}
	if (h->download_fd >= 0 && (ftruncate(h->download_fd, 0) < 0 ||
				    lseek(h->download_fd, 0, SEEK_SET) < 0)) {
		rc = -errno;
		errmsg_set(errmsg, "registry %s: cannot rewind the download: %s", r->registry,
			strerror(errno));
		goto out;
	}
	if (h->download_hash)
		sha256_init(h->download_hash);
	curl_easy_setopt(curl, CURLOPT_URL, h->url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, h->curl_err);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)REGCACHE_CONNECT_TIMEOUT_S);
	long timeout_ms = h->timeout_s * 1000;
	if (h->deadline > 0) {
		double left_ms = (h->deadline - now_seconds()) * 1000;
		if (left_ms < 1) {
			rc = -ETIMEDOUT;
			errmsg_set(errmsg, "registry %s: %s %s: no time left (%d s for a look-up)",
				   r->registry, h->method, h->url, REGCACHE_LOOKUP_TIMEOUT_S);
			goto out;
		}
		if (left_ms < (double)timeout_ms)
			timeout_ms = (long)left_ms;
	}
	h->cancelled = &r->cancelled;
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "sebsfs/" SEBSFS_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (r->ca_blob) {
		struct curl_blob blob = { .data = r->ca_blob, .len = r->ca_blob_len,
					  .flags = CURL_BLOB_NOCOPY };
		curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (r->client_cert) {
		curl_easy_setopt(curl, CURLOPT_SSLCERT, r->client_cert);
		curl_easy_setopt(curl, CURLOPT_SSLKEY, r->client_key);
	}
	if (h->follow) {
		/* curl drops the Authorization header on a redirect to another
		 * host (blob storage behind a registry) */
		curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
	}
	if (strcmp(h->method, "HEAD") == 0) {
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	} else if (strcmp(h->method, "PUT") == 0 || strcmp(h->method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(curl, CURLOPT_READDATA, h);
		curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(h->upload_fd >= 0 ? h->upload_size
								 : (int64_t)h->body_len));
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, h->method);
		/* no "Expect: 100-continue" round trip */
		headers = curl_slist_append(headers, "Expect:");
	}
	if (h->accept && (line = str_printf("Accept: %s", h->accept))) {
		headers = curl_slist_append(headers, line);
		free(line);
	}
	if (h->content_type && (line = str_printf("Content-Type: %s", h->content_type))) {
		headers = curl_slist_append(headers, line);
		free(line);
	}
	if (h->auth && (line = str_printf("Authorization: %s", h->auth))) {
		headers = curl_slist_append(headers, line);
		wipe_free(line);
	}
	if (h->user && h->pass) {
		curl_easy_setopt(curl, CURLOPT_USERNAME, h->user);
		curl_easy_setopt(curl, CURLOPT_PASSWORD, h->pass);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	CURLcode cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		rc = h->write_err ? h->write_err : cc == CURLE_ABORTED_BY_CALLBACK ? -ECANCELED
			: cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
			: cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO;
		char hint[PATH_MAX + 160];
		tls_hint(r, cc, hint, sizeof(hint));
		errmsg_set(errmsg, "registry %s: %s %s: %s%s", r->registry, h->method, h->url,
			h->write_err ? strerror(-h->write_err)
			: cc == CURLE_ABORTED_BY_CALLBACK ? "cancelled"
			: h->curl_err[0] ? h->curl_err : curl_easy_strerror(cc), hint);
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &h->status);
out:
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return rc;
}

/* ---- authentication ---------------------------------------------------------- */

static char *challenge_param(const char *value, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = value; (p = strcasestr(p, name)); p += n) {
		if (p != value && p[-1] != ' ' && p[-1] != ',')
			continue;
		const char *v = p + n;
		while (*v == ' ')
			v++;
		if (*v != '=')
			continue;
		v++;
		while (*v == ' ')
			v++;
		if (*v == '"') {
			const char *end = strchr(v + 1, '"');
			return end ? strndup(v + 1, (size_t)(end - v - 1)) : NULL;
		}
		return strndup(v, strcspn(v, ", "));
	}
	return NULL;
}

int regcache_parse_challenge(const char *value, struct regcache_challenge *out)
{
	memset(out, 0, sizeof(*out));
	while (*value == ' ')
		value++;
	size_t len = strcspn(value, " ");
	if (len == 5 && strncasecmp(value, "basic", 5) == 0) {
		strcpy(out->scheme, "basic");
		return 0;
	}
	if (len != 6 || strncasecmp(value, "bearer", 6) != 0)
		return -EINVAL;
	strcpy(out->scheme, "bearer");
	out->realm = challenge_param(value + 6, "realm");
	out->service = challenge_param(value + 6, "service");
	out->scope = challenge_param(value + 6, "scope");
	if (!out->realm) {
		regcache_challenge_clear(out);
		return -EINVAL;
	}
	return 0;
}

void regcache_challenge_clear(struct regcache_challenge *c)
{
	free(c->realm);
	free(c->service);
	free(c->scope);
	c->realm = c->service = c->scope = NULL;
}

static char *base64(const char *text)
{
	size_t len = strlen(text);
	char *out = malloc(BASE64_ENCODE_RAW_LENGTH(len) + 1);

	if (!out)
		return NULL;
	base64_encode_raw(out, len, (const uint8_t *)text);
	out[BASE64_ENCODE_RAW_LENGTH(len)] = '\0';
	return out;
}

static char *url_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *copy = e ? strdup(e) : NULL;

	curl_free(e);
	return copy;
}

/* A bearer token from the challenge's realm for scope. */
static int fetch_token(struct regcache *r, const struct regcache_challenge *ch,
		       const struct docker_credentials *creds, const char *scope, double deadline,
		       char **token, char **errmsg)
{
	struct http h = { .upload_fd = -1, .download_fd = -1, .timeout_s = REGCACHE_LOOKUP_TIMEOUT_S,
			  .deadline = deadline };
	char *service = url_escape(ch->service ? ch->service : r->registry);
	char *escaped_scope = url_escape(scope);
	char *form = NULL;
	json_t *answer = NULL;
	int rc = 0;

	if (!service || !escaped_scope) {
		rc = -ENOMEM;
		goto out;
	}
	if (creds->identitytoken) {
		/* OAuth2 refresh-token grant, as Docker's clients do */
		char *refresh = url_escape(creds->identitytoken);
		form = refresh ? str_printf("grant_type=refresh_token&client_id=sebsfs&service=%s"
					    "&scope=%s&refresh_token=%s", service, escaped_scope,
					    refresh) : NULL;
		wipe_free(refresh);
		h.method = "POST";
		h.url = strdup(ch->realm);
		h.body = form;
		h.body_len = form ? strlen(form) : 0;
		h.content_type = "application/x-www-form-urlencoded";
		if (!form) {
			rc = -ENOMEM;
			goto out;
		}
	} else {
		h.method = "GET";
		h.url = str_printf("%s%sservice=%s&scope=%s", ch->realm,
				   strchr(ch->realm, '?') ? "&" : "?", service, escaped_scope);
		h.user = creds->username;
		h.pass = creds->password;
	}
	if (!h.url) {
		rc = -ENOMEM;
		goto out;
	}
	rc = http_perform(r, &h, errmsg);
	if (rc < 0)
		goto out;
	if (h.status != 200) {
		rc = h.status == 401 || h.status == 403 ? -EACCES : -EIO;
		errmsg_set(errmsg, "registry %s: the token server %s answered HTTP %ld for %s",
			r->registry, ch->realm, h.status, scope);
		goto out;
	}
	answer = h.body_out ? json_loads(h.body_out, 0, NULL) : NULL;
	const char *t = json_string_value(json_object_get(answer, "token"));
	if (!t || !*t)
		t = json_string_value(json_object_get(answer, "access_token"));
	if (!t || !*t) {
		rc = -EPROTO;
		errmsg_set(errmsg, "registry %s: the token server %s answered no token", r->registry,
			ch->realm);
		goto out;
	}
	*token = strdup(t);
	rc = *token ? 0 : -ENOMEM;
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "registry %s: out of memory", r->registry);
	if (h.body_out)
		explicit_bzero(h.body_out, h.body_out_len);
	json_decref(answer);
	if (form)
		explicit_bzero(form, strlen(form));
	free(form);
	free(service);
	free(escaped_scope);
	http_clear(&h);
	return rc;
}

/* The Authorization value that answers challenge for access ("pull" or
 * "pull,push"): *auth malloc'd. */
static int answer_challenge(struct regcache *r, const char *challenge, const char *access,
			    double deadline, char **auth, char **errmsg)
{
	struct regcache_challenge ch;
	struct docker_credentials creds = { 0 };
	char *msg = NULL, *scope = NULL, *token = NULL;
	int rc = regcache_parse_challenge(challenge, &ch);

	*auth = NULL;
	if (rc < 0) {
		errmsg_set(errmsg, "registry %s: unsupported authentication challenge", r->registry);
		return -EPROTO;
	}
	rc = docker_registry_credentials(r->registry, &creds, &msg);
	if (rc == -ENOENT) {
		rc = 0;   /* anonymous: a token server may still grant pull */
	} else if (rc < 0) {
		errmsg_set(errmsg, "registry %s: credentials: %s", r->registry, msg ? msg : strerror(-rc));
		goto out;
	}
	if (strcmp(ch.scheme, "basic") == 0) {
		if (!creds.username) {
			rc = -EACCES;
			errmsg_set(errmsg, "registry %s wants a user name and password; none in the Docker"
				" config", r->registry);
			goto out;
		}
		char *pair = str_printf("%s:%s", creds.username, creds.password);
		char *b64 = pair ? base64(pair) : NULL;
		*auth = b64 ? str_printf("Basic %s", b64) : NULL;
		wipe_free(pair);
		wipe_free(b64);
	} else if (creds.registrytoken) {
		*auth = str_printf("Bearer %s", creds.registrytoken);
	} else {
		scope = str_printf("repository:%s:%s", r->repository, access);
		rc = scope ? fetch_token(r, &ch, &creds, scope, deadline, &token, errmsg) : -ENOMEM;
		if (rc < 0)
			goto out;
		*auth = str_printf("Bearer %s", token);
	}
	rc = *auth ? 0 : -ENOMEM;
	if (rc < 0)
		errmsg_set(errmsg, "registry %s: out of memory", r->registry);
out:
	docker_credentials_clear(&creds);
	regcache_challenge_clear(&ch);
	wipe_free(token);
	free(scope);
	free(msg);
	return rc;
}

/* http_perform with the authorization that worked last for the access
 * wanted; on a 401, answers the challenge and tries once more. */
static int http_authed(struct regcache *r, struct http *h, bool push, char **errmsg)
{
	char **slot = push ? &r->auth_push : &r->auth_pull;
	char *auth = NULL;
	int rc;

	pthread_mutex_lock(&r->lock);
	auth = *slot ? strdup(*slot) : NULL;
	pthread_mutex_unlock(&r->lock);
	h->auth = auth;
	rc = http_perform(r, h, errmsg);
	if (rc == 0 && h->status == 401 && h->www_auth) {
		char *fresh = NULL;
		char *challenge = strdup(h->www_auth);

		rc = challenge ? answer_challenge(r, challenge, push ? "pull,push" : "pull",
						  h->deadline, &fresh, errmsg) : -ENOMEM;
		free(challenge);
		if (rc == 0) {
			wipe_free(auth);
			auth = fresh;
			h->auth = auth;
			rc = http_perform(r, h, errmsg);
			if (rc == 0 && h->status != 401) {
				pthread_mutex_lock(&r->lock);
				wipe_free(*slot);
				*slot = strdup(auth);
				pthread_mutex_unlock(&r->lock);
			}
		}
	}
	if (rc == 0 && (h->status == 401 || h->status == 403)) {
		rc = -EACCES;
		errmsg_set(errmsg, "registry %s: %s %s: access denied (HTTP %ld)", r->registry,
			h->method, h->url, h->status);
	}
	h->auth = NULL;
	wipe_free(auth);
	return rc;
}

/* ---- fetch ------------------------------------------------------------------- */

static bool is_sha256_digest(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + SHA256_HEX_LEN)
		return false;
	for (const char *c = d + 7; *c; c++)
		if (!isdigit((unsigned char)*c) && !(*c >= 'a' && *c <= 'f'))
			return false;
	return true;
}

static const char *status_words(long status)
{
	return status >= 500 ? "server error" : status == 404 ? "not found" : "refused";
}

int regcache_fetch(struct regcache *r, const struct regcache_kind *kind, const char *tag,
		   const char *dest, int cancel_fd, char sha256[SHA256_HEX_LEN + 1],
		   char **manifest_digest, char **errmsg)
{
	struct http h = { .method = "GET", .upload_fd = -1, .download_fd = -1,
			  .accept = REGCACHE_MANIFEST_MEDIA_TYPE,
			  .timeout_s = REGCACHE_LOOKUP_TIMEOUT_S,
			  /* the look-up as a whole, token requests included */
			  .deadline = now_seconds() + REGCACHE_LOOKUP_TIMEOUT_S,
			  .cancel_fd = cancel_fd };
	struct sha256_ctx ctx;
	json_t *m = NULL;
	char got[SHA256_HEX_LEN + 1];
	int fd = -1, rc;

	if (manifest_digest)
		*manifest_digest = NULL;
	h.url = str_printf("%s/v2/%s/manifests/%s", r->base, r->repository, tag);
	if (!h.url) {
		errmsg_set(errmsg, "registry %s: out of memory", r->registry);
		return -ENOMEM;
	}
	rc = http_authed(r, &h, false, errmsg);
	if (rc < 0)
		goto out;
	if (h.status == 404) {
		rc = -ENOENT;
		goto out;
	}
	if (h.status != 200) {
		rc = -EIO;
		errmsg_set(errmsg, "registry %s: GET %s: HTTP %ld (%s)", r->registry, h.url, h.status,
			status_words(h.status));
		goto out;
	}
	json_error_t jerr;
	m = h.body_out ? json_loads(h.body_out, 0, &jerr) : NULL;
	json_t *layers = json_object_get(m, "layers");
	json_t *layer = json_array_get(layers, 0);
	const char *media = json_string_value(json_object_get(layer, "mediaType"));
	const char *digest = json_string_value(json_object_get(layer, "digest"));
	json_t *size_json = json_object_get(layer, "size");
	const char *annotated = json_string_value(
		json_object_get(json_object_get(m, "annotations"), "org.sebsfs.sha256"));
	if (!json_is_object(m) || json_array_size(layers) != 1 || !media ||
	    strcmp(media, kind->blob_media_type) != 0 || !is_sha256_digest(digest) ||
	    !json_is_integer(size_json) || json_integer_value(size_json) < 0 || !annotated ||
	    strcmp(annotated, digest + 7) != 0) {
		rc = -EBADMSG;
		errmsg_set(errmsg, "registry %s: %s:%s is not a sebsfs %s manifest (one %s layer"
			" whose digest is its org.sebsfs.sha256)", r->registry, r->repository, tag,
			kind->noun, kind->blob_media_type);
		goto out;
	}
	int64_t size = json_integer_value(size_json);
	if (manifest_digest) {
		if (is_sha256_digest(h.content_digest)) {
			*manifest_digest = strdup(h.content_digest);
		} else {
			char hex[SHA256_HEX_LEN + 1];
			sha256_hex_buf(h.body_out, h.body_out_len, hex);
			*manifest_digest = str_printf("sha256:%s", hex);
		}
	}

	fd = open(dest, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		errmsg_set(errmsg, "cannot create %s: %s", dest, strerror(errno));
		goto out;
	}
	http_clear(&h);
	h.method = "GET";
	h.accept = NULL;
	h.cancel_fd = cancel_fd;
	h.follow = true;
	h.download_fd = fd;
	h.download_hash = &ctx;
	h.download_bounded = true;
	h.download_max = size;
	h.timeout_s = REGCACHE_LOOKUP_TIMEOUT_S + size / BLOB_BYTES_PER_SECOND;
	h.deadline = now_seconds() + (double)h.timeout_s;
	h.url = str_printf("%s/v2/%s/blobs/%s", r->base, r->repository, digest);
	char *get_msg = NULL;
	rc = h.url ? http_authed(r, &h, false, &get_msg) : -ENOMEM;
	if (rc == -EFBIG && h.write_err == -EFBIG) {
		rc = -EBADMSG;
		errmsg_set(errmsg, "registry %s: the blob of %s:%s is not what its manifest says:"
			" longer than its %lld bytes (the download stopped there)", r->registry,
			r->repository, tag, (long long)size);
	} else if (rc < 0 && get_msg) {
		errmsg_set(errmsg, "%s", get_msg);
	}
	free(get_msg);
	if (rc < 0)
		goto out;
	if (h.status != 200) {
		rc = h.status == 404 ? -EBADMSG : -EIO;
		errmsg_set(errmsg, "registry %s: GET %s: HTTP %ld (%s)", r->registry, h.url, h.status,
			status_words(h.status));
		goto out;
	}
	sha256_digest_hex(&ctx, got);
	if (h.downloaded != size || strcmp(got, digest + 7) != 0) {
		rc = -EBADMSG;
		errmsg_set(errmsg, "registry %s: the blob of %s:%s is not what its manifest says:"
			" %lld bytes with sha256 %s, expected %lld bytes with %s", r->registry,
			r->repository, tag, (long long)h.downloaded, got, (long long)size, digest + 7);
		goto out;
	}
	if (fsync(fd) < 0) {
		rc = -errno;
		errmsg_set(errmsg, "cannot write %s: %s", dest, strerror(errno));
		goto out;
	}
	memcpy(sha256, got, sizeof(got));
out:
	if (fd >= 0) {
		close(fd);
		if (rc < 0)
			unlink(dest);
	}
	if (rc < 0 && rc != -ENOENT && manifest_digest) {
		free(*manifest_digest);
		*manifest_digest = NULL;
	}
	json_decref(m);
	http_clear(&h);
	return rc;
}

/* ---- push -------------------------------------------------------------------- */

/* An upload's Location may be relative to the registry. */
static char *absolute_location(const struct regcache *r, const char *location)
{
	if (strncmp(location, "http://", 7) == 0 || strncmp(location, "https://", 8) == 0)
		return strdup(location);
	return str_printf("%s%s%s", r->base, location[0] == '/' ? "" : "/", location);
}

/* Uploads one blob (from memory, or from fd when body is NULL) unless the
 * registry has it. */
static int push_blob(struct regcache *r, const char *sha256, const char *body, size_t body_len,
		     int fd, int64_t size, char **errmsg)
{
	struct http h = { .method = "HEAD", .upload_fd = -1, .download_fd = -1,
			  .timeout_s = REGCACHE_LOOKUP_TIMEOUT_S };
	int rc;

	h.url = str_printf("%s/v2/%s/blobs/sha256:%s", r->base, r->repository, sha256);
	rc = h.url ? http_authed(r, &h, true, errmsg) : -ENOMEM;
	if (rc < 0 || h.status == 200)
		goto out;
	free(h.url);
	h.method = "POST";
	h.body = "";
	h.body_len = 0;
	h.url = str_printf("%s/v2/%s/blobs/uploads/", r->base, r->repository);
	rc = h.url ? http_authed(r, &h, true, errmsg) : -ENOMEM;
	if (rc < 0)
		goto out;
	if (h.status != 202 || !h.location) {
		rc = -EIO;
		errmsg_set(errmsg, "registry %s: POST %s: HTTP %ld, not an upload location",
			r->registry, h.url, h.status);
		goto out;
	}
	char *location = absolute_location(r, h.location);
	free(h.url);
	h.url = location ? str_printf("%s%sdigest=sha256:%s", location,
				      strchr(location, '?') ? "&" : "?", sha256) : NULL;
	free(location);
	h.method = "PUT";
	h.content_type = "application/octet-stream";
	h.body = body;
	h.body_len = body_len;
	h.upload_fd = body ? -1 : fd;
	h.upload_size = size;
	h.timeout_s = REGCACHE_LOOKUP_TIMEOUT_S + size / BLOB_BYTES_PER_SECOND;
	rc = h.url ? http_authed(r, &h, true, errmsg) : -ENOMEM;
	if (rc == 0 && h.status != 201) {
		rc = -EIO;
		errmsg_set(errmsg, "registry %s: uploading blob sha256:%s: HTTP %ld", r->registry,
			sha256, h.status);
	}
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "registry %s: out of memory", r->registry);
	http_clear(&h);
	return rc;
}

static int put_manifest(struct regcache *r, const char *tag, const char *manifest, long *status,
			char **errmsg)
{
	struct http h = { .method = "PUT", .upload_fd = -1, .download_fd = -1,
			  .content_type = REGCACHE_MANIFEST_MEDIA_TYPE, .body = manifest,
			  .body_len = strlen(manifest), .timeout_s = REGCACHE_LOOKUP_TIMEOUT_S };
	int rc;

	h.url = str_printf("%s/v2/%s/manifests/%s", r->base, r->repository, tag);
	rc = h.url ? http_authed(r, &h, true, errmsg) : -ENOMEM;
	*status = h.status;
	if (rc == 0 && h.status != 201) {
		rc = -EIO;
		errmsg_set(errmsg, "registry %s: PUT %s: HTTP %ld: %.200s", r->registry, h.url,
			h.status, h.body_out ? h.body_out : "");
	}
	http_clear(&h);
	return rc;
}

int regcache_push(struct regcache *r, const char *tag, const char *path,
		  const struct regcache_artifact *a, char **errmsg)
{
	char *manifest = NULL, *config = NULL;
	long status = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		rc = -errno;
		errmsg_set(errmsg, "cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	rc = push_blob(r, a->sha256, NULL, 0, fd, a->size, errmsg);
	if (rc == 0)
		rc = push_blob(r, EMPTY_SHA256, EMPTY_JSON, strlen(EMPTY_JSON), -1,
			       (int64_t)strlen(EMPTY_JSON), errmsg);
	if (rc < 0)
		goto out;
	manifest = regcache_manifest_json(a, true, NULL, 0);
	rc = manifest ? put_manifest(r, tag, manifest, &status, errmsg) : -ENOMEM;
	if (rc == -EIO && status >= 400 && status < 500) {
		/* a registry that does not take OCI 1.1 artifacts: a config of
		 * our own media type instead */
		char config_sha[SHA256_HEX_LEN + 1];

		log_info("registry %s: the artifact manifest was refused (HTTP %ld); pushing %s"
			 " with a %s config instead", r->registry, status, tag,
			 a->kind->config_media_type);
		config = regcache_config_json(a);
		if (!config) {
			rc = -ENOMEM;
			goto out;
		}
		sha256_hex_buf(config, strlen(config), config_sha);
		rc = push_blob(r, config_sha, config, strlen(config), -1, (int64_t)strlen(config),
			       errmsg);
		free(manifest);
		manifest = rc == 0 ? regcache_manifest_json(a, false, config_sha,
							    (int64_t)strlen(config)) : NULL;
		if (rc == 0)
			rc = manifest ? put_manifest(r, tag, manifest, &status, errmsg) : -ENOMEM;
	}
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "registry %s: out of memory", r->registry);
	free(manifest);
	free(config);
	close(fd);
	return rc;
}
