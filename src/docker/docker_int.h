/*
 * docker_int.h - helpers shared by docker.c and streams.c (and their unit
 * test), not part of the public contract in docker.h.
 */
#ifndef SEBSFS_DOCKER_INT_H
#define SEBSFS_DOCKER_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "docker.h"

/* Where and how to reach a daemon (see docker_endpoint_parse). */
struct docker_endpoint {
	char *socket_path;  /* unix:// only, else NULL */
	char *base_url;     /* http://localhost, http://host:port or https://host:port */
	bool tls;           /* https, verifying the server against ca_file */
	char *ca_file, *cert_file, *key_file;  /* DIR/{ca,cert,key}.pem with tls, else NULL */
};

/* Parses a DOCKER_HOST value as Docker's clients do: unix:///abs/path;
 * tcp://host[:port] (http:// too), TLS when tls_verify (DOCKER_TLS_VERIFY) is
 * non-empty or the scheme is https://, with certificates in cert_path
 * (DOCKER_CERT_PATH) or else home/.docker; default port 2376 with TLS, 2375
 * without.  ssh:// and anything else: -EINVAL with a message saying what to
 * use instead.  On failure *ep is empty.  -ENOMEM. */
int docker_endpoint_parse(const char *host, const char *tls_verify, const char *cert_path,
			  const char *home, struct docker_endpoint *ep, char **errmsg);
/* Frees what *ep holds and empties it; an empty endpoint is fine. */
void docker_endpoint_release(struct docker_endpoint *ep);

/* True when a frame header or payload was cut off (the stream ended early). */
bool docker_mux_partial(const struct docker_mux *m);

/* The message of an {"error"} / {"errorDetail"} progress object (borrowed
 * from object), or NULL when object reports no error. */
const char *docker_error_message(void *object);

/* RFC 4648 base64 with the URL-safe alphabet when url is true, always padded
 * (as Go's base64.URLEncoding, which dockerd decodes).  malloc'd; NULL on ENOMEM. */
char *docker_base64_encode(const void *data, size_t len, bool url);
/* Decodes standard or URL-safe base64 (padding optional, the alphabets may
 * mix) into a malloc'd, NUL-terminated buffer.  -EINVAL on bad input,
 * whitespace included. */
int docker_base64_decode(const char *text, char **out, size_t *out_len);

/* Splits an image reference into repository and tag/digest the way the
 * /images/create and /push endpoints want them: "reg:5000/a/b:t" ->
 * ("reg:5000/a/b", "t"), "a@sha256:x" -> ("a", "sha256:x"), "a" -> ("a",
 * "latest").  Both malloc'd. */
int docker_split_ref(const char *ref, char **repo, char **tag);

/* The parsing half of docker_registry_auth: text (len bytes, need not be
 * NUL-terminated) is the content of a Docker config.json, path only names it
 * in messages.  0 with *auth (an "auths" entry, see docker_registry_auth) or
 * with *helper (malloc'd: the name X of the credential helper
 * docker-credential-X that holds registry's credentials, never holding a
 * '/'), never both; otherwise docker_registry_auth's results and messages. */
int docker_registry_auth_parse(const char *text, size_t len, const char *path,
			       const char *registry, char **auth, char **helper, char **errmsg);

/* What `docker-credential-<helper> get` answered: out (len bytes, need not
 * be NUL-terminated) is its stdout, exit_status its exit code.  0 with *auth
 * (from {"Username", "Secret"}; the user "<token>" makes Secret an identity
 * token); -ENOENT when it has no credentials for registry (its message
 * "credentials not found in native keychain", or an empty Secret); -EIO for
 * any other failure (its message quoted); -EPROTO for output that is not
 * such an object (never quoted); -ENOMEM.  *errmsg says why on failure. */
/* Runs `docker-credential-<helper> get` with registry on stdin, as Docker's
 * clients do (argv, no shell; the program looked up in PATH), stopped after
 * timeout_s seconds, and parses its answer (docker_credential_output_parse:
 * same results).  A helper that is not installed or cannot be run fails
 * with -EIO, one that does not answer in time with -ETIMEDOUT: never
 * -ENOENT, which would mean "push anonymously". */
int docker_credential_helper_get(const char *helper, const char *registry, unsigned timeout_s,
				 char **auth, char **errmsg);

int docker_credential_output_parse(const char *out, size_t len, int exit_status,
				   const char *helper, const char *registry, char **auth,
				   char **errmsg);

#endif
