/*
 * docker_int.h - helpers shared by docker.c and streams.c (and their unit
 * test), not part of the public contract in docker.h.
 */
#ifndef SEBSFS_DOCKER_INT_H
#define SEBSFS_DOCKER_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "docker.h"

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
 * in messages.  Same results and messages as docker_registry_auth. */
int docker_registry_auth_parse(const char *text, size_t len, const char *path,
			       const char *registry, char **auth, char **errmsg);

#endif
