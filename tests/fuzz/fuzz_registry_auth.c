/*
 * fuzz_registry_auth.c - the credentials of a Docker config.json.
 *
 * Input: config.json \0 registry (no registry piece: "127.0.0.1:5000").
 * docker_registry_auth_parse must either fail with a message and no value,
 * or return base64url of a JSON object {username, password, serveraddress}
 * whose serveraddress is the registry asked for.  docker_registry_auth, which
 * reads the same text from $DOCKER_CONFIG/config.json, must agree.  The raw
 * input also goes through a base64 round trip in both alphabets.
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
	char *text = NULL;
	json_t *cred;
	json_error_t jerr;

	FUZZ_CHECK(strspn(auth, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=") ==
		   strlen(auth), "X-Registry-Auth is not base64url: %s", auth);
	FUZZ_CHECK(docker_base64_decode(auth, &text, NULL) == 0, "cannot decode %s", auth);
	cred = json_loads(text, 0, &jerr);
	FUZZ_CHECK(json_is_object(cred), "X-Registry-Auth is not a JSON object: %s", text);
	FUZZ_CHECK(json_object_size(cred) == 3, "X-Registry-Auth has %zu keys",
		   json_object_size(cred));
	FUZZ_CHECK(json_is_string(json_object_get(cred, "username")), "no username");
	FUZZ_CHECK(json_is_string(json_object_get(cred, "password")), "no password");
	FUZZ_CHECK(json_string_value(json_object_get(cred, "serveraddress")) &&
		   strcmp(json_string_value(json_object_get(cred, "serveraddress")), registry) == 0,
		   "serveraddress is not %s", registry);
	json_decref(cred);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char config_dir[PATH_MAX], config_file[PATH_MAX + 16];
	char *pieces[2];
	size_t lens[2];
	size_t n = fuzz_split(data, size, pieces, lens, 2);
	const char *registry = n > 1 ? pieces[1] : "127.0.0.1:5000";
	char *auth = NULL, *errmsg = NULL, *file_auth = NULL, *file_errmsg = NULL;
	int rc, file_rc;

	if (!config_dir[0]) {
		snprintf(config_dir, sizeof(config_dir), "%s", fuzz_scratch_dir());
		snprintf(config_file, sizeof(config_file), "%s/config.json", config_dir);
		setenv("DOCKER_CONFIG", config_dir, 1);
	}
	check_base64_round_trip(data, size);
	check_base64_decode(pieces[0]);

	rc = docker_registry_auth_parse(pieces[0], lens[0], "config.json", registry, &auth,
					&errmsg);
	if (rc == 0) {
		FUZZ_CHECK(auth != NULL, "success without a value");
		check_auth_value(auth, registry);
	} else {
		FUZZ_CHECK(rc == -ENOENT || rc == -EINVAL || rc == -EPROTO || rc == -ENOMEM,
			   "unexpected error %d", rc);
		FUZZ_CHECK(auth == NULL, "failure %d with a value", rc);
		FUZZ_CHECK(errmsg != NULL, "failure %d without a message", rc);
	}

	fuzz_write_file(config_file, pieces[0], lens[0]);
	file_rc = docker_registry_auth(registry, &file_auth, &file_errmsg);
	FUZZ_CHECK(file_rc == rc, "from the file %d, parsed %d", file_rc, rc);
	FUZZ_CHECK((!auth && !file_auth) || (auth && file_auth && strcmp(auth, file_auth) == 0),
		   "the file gives another value");

	free(auth);
	free(errmsg);
	free(file_auth);
	free(file_errmsg);
	fuzz_pieces_free(pieces, n);
	return 0;
}
