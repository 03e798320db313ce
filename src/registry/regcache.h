/*
 * regcache.h - a shared build cache in an OCI distribution registry
 * (-o remote_cache=REGISTRY/REPOSITORY, see docs/scaling.md).
 *
 * One OCI artifact per package and per dependency layer, each of a kind
 * (struct regcache_kind) with its own media types:
 *   - a package is tagged by its input key (64 hex digits, well inside the
 *     128-character tag limit); a layer by REGCACHE_LAYER_TAG_PREFIX and
 *     its key, so that the two can never share a tag in one repository;
 *   - an image manifest (application/vnd.oci.image.manifest.v1+json) with
 *     the kind's artifactType (OCI 1.1), the empty config descriptor
 *     (application/vnd.oci.empty.v1+json, the 2-byte "{}"), and a single
 *     layer: the package file or the layer's archive, of the kind's blob
 *     media type;
 *   - annotations org.sebsfs.<field> for the kind's fields (a package:
 *     platform, runtime, benchmark, builder; a layer: language,
 *     language_version, arch, installer), org.sebsfs.{sha256,version} and
 *     org.opencontainers.image.created; on the layer,
 *     org.opencontainers.image.title when the artifact has a title (a
 *     package: its file name as the mount shows it; oras pull writes the
 *     layer under that name).
 * A registry that refuses that manifest (older ones check the config media
 * type) gets the same manifest without artifactType and with the kind's
 * config media type: a small JSON blob holding the annotations.
 *
 * The protocol is the distribution spec's: HEAD/GET /v2/<repo>/manifests/<tag>,
 * GET /v2/<repo>/blobs/<digest> (redirects followed), a monolithic upload
 * (POST /v2/<repo>/blobs/uploads/, PUT <location>&digest=..., streamed
 * from the file), PUT /v2/<repo>/manifests/<tag>.  Anonymous first; on 401
 * the WWW-Authenticate challenge: Basic (the credentials) or Bearer (a token
 * from the realm: GET with Basic credentials, OAuth2 POST with an identity
 * token, or the config's registry token as it is).  Credentials as for
 * image pushes (docker_registry_credentials).
 *
 * Transport, as Docker's clients choose it: https:// unless the spec starts
 * with "http://" (a registry the user names as insecure) or the registry
 * is on this host (127.*, localhost, [::1]) and has no certificate folder.
 * TLS always verifies the registry's certificate and name, against the
 * system's CAs plus the *.crt files of the registry's certificate folder,
 * <certs_root>/<host[:port]>/ (Docker's /etc/docker/certs.d convention;
 * ca.crt by custom); a <name>.cert with its <name>.key there is the client
 * certificate.  The folder is read once, by regcache_new.
 *
 * Every call is bounded in time (connect REGCACHE_CONNECT_TIMEOUT_S; the
 * look-up of a tag, token requests included, REGCACHE_LOOKUP_TIMEOUT_S in
 * all; each other request REGCACHE_LOOKUP_TIMEOUT_S; a blob transfer that
 * plus one second per 256 KiB) and thread-safe: each call uses its own curl handle; tokens are
 * shared under a lock.  Errors: 0 or -errno with a malloc'd one-line
 * *errmsg naming the registry; secrets never reach a message.
 */
#ifndef SEBSFS_REGCACHE_H
#define SEBSFS_REGCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "sha256.h"

#define REGCACHE_ARTIFACT_TYPE "application/vnd.sebsfs.package.v1"
#define REGCACHE_ZIP_MEDIA_TYPE "application/vnd.sebsfs.package.v1+zip"
#define REGCACHE_CONFIG_MEDIA_TYPE "application/vnd.sebsfs.package.config.v1+json"
/* A dependency layer's archive is a zip of its folder (deps.zip, extra/,
 * layer.json) written by ziptree_write with stored entries: see
 * deplayer.h. */
#define REGCACHE_LAYER_ARTIFACT_TYPE "application/vnd.sebsfs.layer.v1"
#define REGCACHE_LAYER_MEDIA_TYPE "application/vnd.sebsfs.layer.v1+zip"
#define REGCACHE_LAYER_CONFIG_MEDIA_TYPE "application/vnd.sebsfs.layer.config.v1+json"
#define REGCACHE_LAYER_TAG_PREFIX "layer-"
#define REGCACHE_EMPTY_MEDIA_TYPE "application/vnd.oci.empty.v1+json"
#define REGCACHE_MANIFEST_MEDIA_TYPE "application/vnd.oci.image.manifest.v1+json"

#define REGCACHE_CONNECT_TIMEOUT_S 3
#define REGCACHE_CERTS_ROOT "/etc/docker/certs.d"
#define REGCACHE_LOOKUP_TIMEOUT_S 10

struct regcache;

/* A kind of artifact: what its manifest says it is. */
struct regcache_kind {
	const char *noun;              /* "package", "dependency layer": for messages */
	const char *artifact_type;
	const char *blob_media_type;   /* of its single layer */
	const char *config_media_type; /* of the fallback form's config */
};
extern const struct regcache_kind regcache_package_kind;
extern const struct regcache_kind regcache_layer_kind;

#define REGCACHE_MAX_FIELDS 6

/* One artifact, as its manifest describes it. */
struct regcache_artifact {
	const struct regcache_kind *kind;
	/* the kind's annotations org.sebsfs.<name>; a NULL name ends them */
	struct regcache_field {
		const char *name;
		const char *value;
	} fields[REGCACHE_MAX_FIELDS + 1];
	const char *title;       /* the blob's file name, for its title annotation; NULL: none */
	const char *sha256;      /* hex of the blob */
	int64_t size;
	int64_t created;         /* unix seconds */
};

/* What a package is, for its annotations. */
struct regcache_package {
	const char *platform;
	const char *runtime;     /* the runtime folder: "python-3.11", "python-3.11-pypy-arm64" */
	const char *benchmark;
	const char *filename;    /* as the mount shows it: "110.dynamic-html.jar"; NULL: none */
	const char *builder;     /* the builder identity */
	const char *sha256;      /* hex of the package file */
	int64_t size;
	int64_t created;         /* unix seconds */
};

/* What a dependency layer is, for its annotations. */
struct regcache_layer {
	const char *language;
	const char *version;     /* the language's: "3.11" */
	const char *arch;
	const char *installer;   /* the installer's identity (deplayer.h) */
	const char *sha256;      /* hex of the layer's archive */
	int64_t size;
	int64_t created;         /* unix seconds */
};

/* The artifact of a package or a layer (pointing into p or l). */
void regcache_package_artifact(const struct regcache_package *p, struct regcache_artifact *out);
void regcache_layer_artifact(const struct regcache_layer *l, struct regcache_artifact *out);

/* Splits "host[:port]/repo/sitory" (optionally "http://" or "https://"
 * first) into its parts and reads the registry's certificate folder under
 * certs_root (NULL: REGCACHE_CERTS_ROOT).  NULL with *errmsg for a spec
 * that is not one (no repository, upper case or characters the
 * distribution spec does not allow in a repository name), a certificate
 * folder that cannot be read or holds half a client certificate. */
struct regcache *regcache_new(const char *spec, const char *certs_root, char **errmsg);
void regcache_free(struct regcache *r);   /* NULL is a no-op */
/* Makes every transfer, running or to come, fail soon with -ECANCELED (a
 * transfer notices within about a second): for stopping. */
void regcache_cancel(struct regcache *r);
const char *regcache_registry(const struct regcache *r);    /* "host:port" */
const char *regcache_repository(const struct regcache *r);

/* The manifest of an artifact, as JSON text (malloc'd, NULL on ENOMEM).
 * artifact: the OCI 1.1 form (artifactType + empty config); otherwise the
 * fallback form, whose config blob (config_json, see regcache_config_json)
 * has digest config_sha256 and size config_size. */
char *regcache_manifest_json(const struct regcache_artifact *a, bool artifact,
			     const char *config_sha256, int64_t config_size);
/* The fallback form's config blob: the annotations as a JSON object. */
char *regcache_config_json(const struct regcache_artifact *a);

/* Looks tag up and, when it is there, downloads its blob into dest (a
 * new file, 0600, in a folder of the caller's), checking it as it comes:
 * the manifest must be an image manifest with one layer of kind's blob
 * media type, whose digest equals its org.sebsfs.sha256 annotation and
 * the sha256 of the bytes received.  0 with sha256 (hex) and
 * *manifest_digest ("sha256:...", malloc'd, may be NULL); -ENOENT when
 * the tag is absent (no message); -EBADMSG for a manifest or blob that
 * fails a check (dest removed); another -errno for a registry that cannot
 * be reached, refuses or answers garbage; -ECANCELED once cancel_fd (-1:
 * none) is readable or regcache_cancel was called. */
int regcache_fetch(struct regcache *r, const struct regcache_kind *kind, const char *tag,
		   const char *dest, int cancel_fd, char sha256[SHA256_HEX_LEN + 1],
		   char **manifest_digest, char **errmsg);

/* Pushes the file path under tag as artifact a: its blob (skipped when
 * the registry has it), the config blob when needed, and the manifest.
 * Two pushes of one artifact, from anywhere, write the same blob; their
 * manifests differ at most in org.opencontainers.image.created (the build
 * time), and either one names the same bytes. */
int regcache_push(struct regcache *r, const char *tag, const char *path,
		  const struct regcache_artifact *a, char **errmsg);

/* Parses a WWW-Authenticate value: the scheme ("basic", "bearer", lower
 * case) and, for Bearer, realm, service and scope (malloc'd or NULL).
 * -EINVAL for an unknown scheme or a bearer challenge without realm.
 * Exposed for unit tests. */
struct regcache_challenge {
	char scheme[8];
	char *realm;
	char *service;
	char *scope;
};
int regcache_parse_challenge(const char *value, struct regcache_challenge *out);
void regcache_challenge_clear(struct regcache_challenge *c);

#endif
