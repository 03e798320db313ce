/*
 * docker.h - a small Docker Engine API client (libcurl + jansson).
 *
 * Knows nothing about benchmarks.  One struct docker is one connection
 * (a libcurl easy handle, reused between calls): use one per thread.
 * The endpoint is DOCKER_HOST when set (unix:///path or tcp://host:port),
 * else unix:///var/run/docker.sock.  tcp:// speaks TLS as Docker's clients do
 * when DOCKER_TLS_VERIFY is non-empty (server verified against
 * $DOCKER_CERT_PATH/ca.pem, client certificate cert.pem + key.pem; the folder
 * defaults to ~/.docker); plain tcp:// works with a warning; ssh:// is refused.  The API version is negotiated on the
 * first call (GET /version: min(daemon's ApiVersion, what this client speaks))
 * and used as the /vX.YZ prefix of every later request.
 *
 * Errors: every function returns 0 or -errno and, on failure, sets *errmsg
 * (when errmsg is not NULL) to a malloc'd one-line message that carries the
 * daemon's own "message" when it sent one, e.g.
 *   "unix:///var/run/docker.sock: Cannot connect (No such file or directory)"
 *   "image inspect foo:bar: No such image: foo:bar (404)".
 * Mapping: any connection failure -ECONNREFUSED (also when the socket is
 * missing: -ENOENT is reserved for "no such image/container"), a connection
 * lost mid-request (the daemon stopped or crashed) -ECONNRESET,
 * 404 -ENOENT, 409 -EEXIST, other 4xx -EINVAL, 5xx -EIO, bad JSON -EPROTO,
 * an error inside a progress stream -EIO, cancelled -ECANCELED.
 * Control calls have bounded timeouts (connect 5 s, total 20 s); pull, wait,
 * logs(follow) and the archive transfers have none (builds can be long) but
 * stop when docker_cancel() is called from another thread.
 */
#ifndef SEBSFS_DOCKER_H
#define SEBSFS_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct docker;

/* host: NULL = from DOCKER_HOST or the default socket. */
struct docker *docker_new(const char *host, char **errmsg);
void docker_free(struct docker *d);  /* NULL is a no-op */

/* The endpoint as a URL-like string for messages ("unix:///var/run/docker.sock"). */
const char *docker_endpoint(const struct docker *d);
/* True for a unix socket: the daemon shares this machine's file system, so
 * bind mounts of local folders work.  False for tcp:// (a remote engine). */
bool docker_is_local(const struct docker *d);

/* Makes every running and future streaming call of d return -ECANCELED.
 * Safe to call from another thread. */
void docker_cancel(struct docker *d);
/* The total timeout of d's control calls from now on (default 20 s): a
 * caller that must not wait long for a daemon that does not answer (the
 * start-up probe, the freshness checker) asks for less. */
void docker_set_control_timeout(struct docker *d, long seconds);
/* Undoes docker_cancel for the calls that follow (a worker's next build). */
void docker_reset_cancel(struct docker *d);
/* Streaming calls of d stop with -ETIMEDOUT once CLOCK_MONOTONIC passes
 * *deadline (NULL: no deadline).  Control calls keep their own bounded
 * timeout, so cleanup (removing a container) still works after the deadline. */
struct timespec;
void docker_set_deadline(struct docker *d, const struct timespec *deadline);

/* GET /_ping (on a new connection, so a daemon that is shutting down and
 * only serves its old ones does not count) then GET /version; fills
 * *api_version (malloc'd, may be NULL). */
int docker_ping(struct docker *d, char **api_version, char **errmsg);

/* GET /images/{ref}/json.  -ENOENT when absent.  *id gets "sha256:..." (malloc'd). */
int docker_image_inspect(struct docker *d, const char *ref, char **id, char **errmsg);

/* GET /images/{ref}/json, more of it: ID, size and repo digests. */
struct docker_image_info {
	char *id;              /* "sha256:..." */
	int64_t size;          /* "Size" */
	char **repo_digests;   /* "repo@sha256:...", NULL-terminated (may be empty) */
};
int docker_image_inspect_info(struct docker *d, const char *ref, struct docker_image_info *out,
			      char **errmsg);
void docker_image_info_clear(struct docker_image_info *info);

/* Output sink for streams: stream 1 = stdout, 2 = stderr, 0 = progress text. */
typedef void (*docker_output_fn)(void *ctx, int stream, const char *data, size_t len);

/* POST /images/create?fromImage=...&tag=...  auth: the X-Registry-Auth
 * value (docker_registry_auth) for ref's registry, or NULL for an anonymous
 * pull.  Progress lines ("status", "progress") go to out as text; an
 * "error"/"errorDetail" object in the stream fails with -EIO and its
 * message. */
int docker_image_pull(struct docker *d, const char *ref, const char *auth, docker_output_fn out,
		      void *ctx, char **errmsg);

struct docker_container_spec {
	const char *image;
	const char *const *env;     /* "NAME=value", NULL-terminated, may be NULL */
	const char *const *binds;   /* "host:container[:ro]", NULL-terminated, may be NULL */
	const char *const *cmd;     /* NULL: the image's own command */
	const char *working_dir;    /* NULL: the image's */
	const char *user;           /* NULL: the image's */
	const char *name;           /* NULL: daemon-chosen */
	const char *const *labels;  /* "name=value", NULL-terminated, may be NULL */
};

/* POST /containers/create.  *id malloc'd. */
int docker_container_create(struct docker *d, const struct docker_container_spec *spec,
			    char **id, char **errmsg);
int docker_container_start(struct docker *d, const char *id, char **errmsg);
/* POST /containers/{id}/wait: blocks until it exits; *exit_code its status. */
int docker_container_wait(struct docker *d, const char *id, int *exit_code, char **errmsg);
/* GET /containers/{id}/logs?stdout=1&stderr=1[&follow=1]: decoded from the
 * multiplexed stream format (or raw when the container has a TTY). */
int docker_container_logs(struct docker *d, const char *id, bool follow, docker_output_fn out,
			  void *ctx, char **errmsg);
/* DELETE /containers/{id}?force=1&v=1 when force. */
int docker_container_remove(struct docker *d, const char *id, bool force, char **errmsg);

/* A sink for raw response bodies: 0 to go on, -errno to stop the transfer
 * (the call then fails with that value). */
typedef int (*docker_data_fn)(void *ctx, const void *data, size_t len);

/* PUT /containers/{id}/archive?path=path: extracts the tar stream read from
 * tar_fd until EOF (uploaded with chunked encoding, never held whole) into
 * the folder path of the container (which must exist; created or stopped
 * containers too).  Entries keep the tar's owners and modes.  A streaming
 * call: no total timeout, stops on docker_cancel and the deadline. */
int docker_container_archive_put(struct docker *d, const char *id, const char *path, int tar_fd,
				 char **errmsg);
/* GET /containers/{id}/archive?path=path: the tar of path (entries named
 * after its last component: "function/...") as it comes, to out.  A
 * streaming call, like docker_container_archive_put.  -ENOENT: no such
 * container or path. */
int docker_container_archive_get(struct docker *d, const char *id, const char *path,
				 docker_data_fn out, void *ctx, char **errmsg);

/* One container of GET /containers/json. */
struct docker_container_summary {
	char *id;
	char *state;           /* "created", "running", "exited", ... ("" when not said) */
	char **labels;         /* "name=value", NULL-terminated (may be empty) */
};
/* GET /containers/json?all=1&filters={"label":[label]}: every container, in
 * any state, that carries label ("name" or "name=value"; NULL: all).
 * *list (malloc'd, *n entries) is freed with docker_container_list_free. */
int docker_container_list(struct docker *d, const char *label,
			  struct docker_container_summary **list, size_t *n, char **errmsg);
void docker_container_list_free(struct docker_container_summary *list, size_t n);
/* The value of label name among labels ("name=value", NULL-terminated), or NULL. */
const char *docker_label_value(char *const *labels, const char *name);

/* ---- images (function images) -------------------------------------------- */

/* POST /build?t=tag&buildargs=...&rm=1&forcerm=1, uploading the build context
 * (a tar stream) read from context_fd until EOF with chunked encoding, so no
 * copy of the context is held in memory.  buildargs: "NAME=value" strings,
 * NULL-terminated, may be NULL.  dockerfile: path inside the context (NULL:
 * "Dockerfile").  Build output ("stream" text) goes to out; an error in the
 * stream fails with -EIO and its message.  *image_id (may be NULL) gets the
 * built image's ID ("sha256:..."), from the stream's aux object or, failing
 * that, an inspect of tag. */
int docker_image_build(struct docker *d, const char *tag, const char *const *buildargs,
		       const char *dockerfile, int context_fd, docker_output_fn out, void *ctx,
		       char **image_id, char **errmsg);

/* POST /images/{name}/tag?repo=...&tag=... */
int docker_image_tag(struct docker *d, const char *source, const char *repo, const char *tag,
		     char **errmsg);

/* POST /images/{name}/push?tag=...  auth: the X-Registry-Auth value (base64url
 * JSON) or NULL for an anonymous push (an empty {} auth is sent).  Progress goes
 * to out; *digest (may be NULL) gets "sha256:..." from the stream's aux
 * object.  An error in the stream fails with -EIO and its message. */
int docker_image_push(struct docker *d, const char *ref, const char *auth,
		      docker_output_fn out, void *ctx, char **digest, char **errmsg);

/* DELETE /images/{name}[?force=1].  -ENOENT when absent. */
int docker_image_remove(struct docker *d, const char *ref, bool force, char **errmsg);

/* The X-Registry-Auth value for registry (e.g. "127.0.0.1:5000") from
 * $DOCKER_CONFIG/config.json or ~/.docker/config.json, the way Docker's
 * clients find it: the credential helper of "credHelpers"[registry], else of
 * "credsStore", run as `docker-credential-<name> get` (argv, registry on
 * stdin, stopped after 30 s); else the "auths" entry ("auth" base64
 * "user:password" or "username"/"password", and/or "identitytoken",
 * "registrytoken").  Built with jansson and base64url-encoded; an identity
 * token (a helper's user "<token>") is sent as "identitytoken", which makes
 * the daemon run the registry's token flow.  -ENOENT when there are no
 * credentials (push anonymously); another -errno with *errmsg when a helper
 * is missing, fails or answers garbage, or the file is unusable.  Secrets
 * never reach *errmsg; the copies made on the way are wiped. */
int docker_registry_auth(const char *registry, char **auth, char **errmsg);

/* The same look-up as docker_registry_auth, for a client that talks to the
 * registry itself (the remote cache): the credentials as they are, each
 * malloc'd or NULL (username and password come together).  Same results
 * and messages.  Release with docker_credentials_clear, which wipes them. */
struct docker_credentials {
	char *username;
	char *password;
	char *identitytoken;   /* OAuth2 refresh token for the token flow */
	char *registrytoken;   /* a bearer token to send as it is */
};
int docker_registry_credentials(const char *registry, struct docker_credentials *creds,
				char **errmsg);
void docker_credentials_clear(struct docker_credentials *c);   /* wipes; NULLs stay */

/* ---- stream decoders (exposed for unit tests) ---------------------------- */

/* The multiplexed stdout/stderr framing: 8-byte header {stream, 0, 0, 0,
 * size (big-endian u32)} then size bytes; frames may be split anywhere
 * across feeds. */
struct docker_mux {
	uint8_t header[8];
	size_t header_len;
	uint32_t remaining;  /* payload bytes left in the current frame */
	int stream;
};
void docker_mux_init(struct docker_mux *m);
/* Feeds bytes; calls out for each payload piece.  -EPROTO on a bad header. */
int docker_mux_feed(struct docker_mux *m, const void *data, size_t len, docker_output_fn out,
		    void *ctx);

/* A stream of JSON objects separated by newlines (or simply concatenated),
 * split anywhere across feeds.  For each complete object, calls on_object;
 * a non-zero return stops the stream with that value. */
struct json_stream;
typedef int (*json_stream_fn)(void *ctx, void *object /* json_t *, borrowed */);
struct json_stream *json_stream_new(json_stream_fn on_object, void *ctx);
void json_stream_free(struct json_stream *s);
/* Returns 0, the callback's non-zero value, or -EPROTO for malformed JSON. */
int json_stream_feed(struct json_stream *s, const void *data, size_t len);
/* Call at end of stream: -EPROTO when a partial object is left over. */
int json_stream_finish(struct json_stream *s);

/* Turns one progress object ({"status","id","progress"} or {"stream"}) into a
 * text line in buf; returns -EIO and a malloc'd *errmsg for an error object
 * ({"error": ...} / {"errorDetail": {"message": ...}}), else 0. */
int docker_progress_line(void *object, char *buf, size_t buflen, char **errmsg);

#endif
