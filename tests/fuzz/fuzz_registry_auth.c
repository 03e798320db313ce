/*
 * fuzz_registry_auth.c - the credentials of a Docker config.json and of a
 * credential helper's answer.
 *
 * Input: config.json \0 registry \0 helper output (no registry piece:
 * "127.0.0.1:5000").  docker_registry_auth_parse must either fail with a
 * message and no value, name a credential helper (no '/' in its name), or
 * return base64url of a JSON object of credentials whose serveraddress is the
 * registry asked for.  docker_registry_auth, which reads the same text from
 * $DOCKER_CONFIG/config.json, must agree (checked only when no helper is
 * named: the fuzzer runs no programs).  docker_credential_output_parse must
 * do the same with the helper output, for a helper that exited 0 and 1.  The
 * raw input also goes through a base64 round trip in both alphabets.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "docker.h"
#include "docker_int.h"
#include "fuzz_common.h"

static void check_base64_round_trip(const uint8_t *data, size_t size)
{
	for (int url = 0; url <= 1; url++) {
		char *enc = docker_base64_encode(data, size, url);
		char *dec = NULL;
		size_t dec_len = 0;

		FUZZ_CHECK(enc != NULL, "base64 encode");
		FUZZ_CHECK(strlen(enc) == (size + 2) / 3 * 4, "encoded length %zu for %zu bytes",
			   strlen(enc), size);
		FUZZ_CHECK(docker_base64_decode(enc, &dec, &dec_len) == 0, "decode of own encoding");
		FUZZ_CHECK(dec_len == size && (size == 0 || memcmp(dec, data, size) == 0),
			   "round trip changed the data");
		free(enc);
		free(dec);
	}
}

/* Decoding arbitrary text must fail cleanly or produce a terminated buffer. */
static void check_base64_decode(const char *text)
{
	char *dec = NULL;
	size_t dec_len = 0;
	int rc = docker_base64_decode(text, &dec, &dec_len);

	if (rc == 0) {
		FUZZ_CHECK(dec != NULL && dec[dec_len] == '\0', "decoded buffer not terminated");
		FUZZ_CHECK(dec_len <= strlen(text) / 4 * 3 + 2, "%zu bytes from %zu characters",
			   dec_len, strlen(text));
	} else {
		FUZZ_CHECK(rc == -EINVAL && dec == NULL, "decode failed with %d", rc);
	}
	free(dec);
}

static void check_auth_value(const char *auth, const char *registry)
{
	static const char *const known[] = { "username", "password", "identitytoken",
					     "registrytoken", "serveraddress" };
	char *text = NULL;
	json_t *cred, *value;
	const char *key;
	json_error_t jerr;

	FUZZ_CHECK(strspn(auth, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=") ==
		   strlen(auth), "X-Registry-Auth is not base64url: %s", auth);
	FUZZ_CHECK(docker_base64_decode(auth, &text, NULL) == 0, "cannot decode %s", auth);
	cred = json_loads(text, 0, &jerr);
	FUZZ_CHECK(json_is_object(cred), "X-Registry-Auth is not a JSON object: %s", text);
	json_object_foreach(cred, key, value) {
		bool ok = false;

		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok = ok || strcmp(key, known[i]) == 0;
		FUZZ_CHECK(ok, "X-Registry-Auth has key %s", key);
		FUZZ_CHECK(json_is_string(value), "%s is not a string", key);
	}
	FUZZ_CHECK(!json_object_get(cred, "username") == !json_object_get(cred, "password"),
		   "a username without a password or the other way round");
	FUZZ_CHECK(json_object_get(cred, "password") || json_object_get(cred, "identitytoken") ||
		   json_object_get(cred, "registrytoken"), "no credential in %s", text);
	FUZZ_CHECK(json_string_value(json_object_get(cred, "serveraddress")) &&
		   strcmp(json_string_value(json_object_get(cred, "serveraddress")), registry) == 0,
		   "serveraddress is not %s", registry);
	json_decref(cred);
	free(text);
}

static void check_helper_output(const char *out, size_t len, const char *registry)
{
	for (int status = 0; status <= 1; status++) {
		char *auth = NULL, *errmsg = NULL;
		int rc = docker_credential_output_parse(out, len, status, "fuzz", registry, &auth,
							&errmsg);

		if (rc == 0) {
			FUZZ_CHECK(status == 0, "a failed helper gave credentials");
			FUZZ_CHECK(auth != NULL && errmsg == NULL, "success without a value");
			check_auth_value(auth, registry);
		} else {
			FUZZ_CHECK(rc == -ENOENT || rc == -EIO || rc == -EPROTO || rc == -ENOMEM,
				   "unexpected helper error %d", rc);
			FUZZ_CHECK(status == 0 || rc != -EPROTO, "a failed helper's output parsed");
			FUZZ_CHECK(auth == NULL, "failure %d with a value", rc);
			FUZZ_CHECK(errmsg != NULL, "failure %d without a message", rc);
		}
		free(auth);
		free(errmsg);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char config_dir[PATH_MAX], config_file[PATH_MAX + 16];
	char *pieces[3];
	size_t lens[3];
	size_t n = fuzz_split(data, size, pieces, lens, 3);
	const char *registry = n > 1 ? pieces[1] : "127.0.0.1:5000";
	char *auth = NULL, *helper = NULL, *errmsg = NULL, *file_auth = NULL, *file_errmsg = NULL;
	int rc, file_rc;

	if (!config_dir[0]) {
		snprintf(config_dir, sizeof(config_dir), "%s", fuzz_scratch_dir());
		snprintf(config_file, sizeof(config_file), "%s/config.json", config_dir);
		setenv("DOCKER_CONFIG", config_dir, 1);
	}
	check_base64_round_trip(data, size);
	check_base64_decode(pieces[0]);

	rc = docker_registry_auth_parse(pieces[0], lens[0], "config.json", registry, &auth,
					&helper, &errmsg);
	if (rc == 0 && helper) {
		FUZZ_CHECK(auth == NULL, "a helper and a value");
		FUZZ_CHECK(*helper && !strchr(helper, '/'), "helper name \"%s\"", helper);
	} else if (rc == 0) {
		FUZZ_CHECK(auth != NULL, "success without a value");
		check_auth_value(auth, registry);
	} else {
		FUZZ_CHECK(rc == -ENOENT || rc == -EINVAL || rc == -EPROTO || rc == -ENOMEM,
			   "unexpected error %d", rc);
		FUZZ_CHECK(auth == NULL && helper == NULL, "failure %d with a value", rc);
		FUZZ_CHECK(errmsg != NULL, "failure %d without a message", rc);
	}
	if (n > 2)
		check_helper_output(pieces[2], lens[2], registry);

	if (!helper) {
		fuzz_write_file(config_file, pieces[0], lens[0]);
		file_rc = docker_registry_auth(registry, &file_auth, &file_errmsg);
		FUZZ_CHECK(file_rc == rc, "from the file %d, parsed %d", file_rc, rc);
		FUZZ_CHECK((!auth && !file_auth) ||
			   (auth && file_auth && strcmp(auth, file_auth) == 0),
			   "the file gives another value");
	}

	free(auth);
	free(helper);
	free(errmsg);
	free(file_auth);
	free(file_errmsg);
	fuzz_pieces_free(pieces, n);
	return 0;
}
