/*
 * test_regcache.c - the remote cache's registry client: what it makes of a
 * REGISTRY/REPOSITORY spec, of WWW-Authenticate challenges, and the
 * manifests it pushes.  The HTTP exchanges themselves are tested through
 * real registries in tests/integration/test_remote_cache.py.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "regcache.h"
#include "sha256.h"

START_TEST(spec_parts)
{
	char *err = NULL;
	struct regcache *r = regcache_new("127.0.0.1:5000/team/sebsfs", NULL, &err);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(regcache_registry(r), "127.0.0.1:5000");
	ck_assert_str_eq(regcache_repository(r), "team/sebsfs");
	regcache_free(r);

	r = regcache_new("http://reg.example:80/a", NULL, &err);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(regcache_registry(r), "reg.example:80");
	regcache_free(r);

	const char *bad[] = { "noslash", "/repo", "host/", "host/Upper", "host/a//b",
			      "host/a b", "http://", NULL };
	for (int i = 0; bad[i]; i++) {
		ck_assert_msg(regcache_new(bad[i], NULL, &err) == NULL, "%s accepted", bad[i]);
		ck_assert_ptr_nonnull(err);
		free(err);
		err = NULL;
	}
}
END_TEST

START_TEST(challenges)
{
	struct regcache_challenge c;

	ck_assert_int_eq(regcache_parse_challenge("Basic realm=\"Registry Realm\"", &c), 0);
	ck_assert_str_eq(c.scheme, "basic");
	regcache_challenge_clear(&c);

	ck_assert_int_eq(regcache_parse_challenge(
		"Bearer realm=\"https://auth.example/token\",service=\"reg.example\","
		"scope=\"repository:a/b:pull,push\"", &c), 0);
	ck_assert_str_eq(c.scheme, "bearer");
	ck_assert_str_eq(c.realm, "https://auth.example/token");
	ck_assert_str_eq(c.service, "reg.example");
	ck_assert_str_eq(c.scope, "repository:a/b:pull,push");
	regcache_challenge_clear(&c);

	/* unquoted values, no scope */
	ck_assert_int_eq(regcache_parse_challenge("bearer realm=http://t/x, service=s", &c), 0);
	ck_assert_str_eq(c.realm, "http://t/x");
	ck_assert_str_eq(c.service, "s");
	ck_assert_ptr_null(c.scope);
	regcache_challenge_clear(&c);

	ck_assert_int_eq(regcache_parse_challenge("Bearer service=\"s\"", &c), -EINVAL);
	ck_assert_int_eq(regcache_parse_challenge("Digest realm=\"x\"", &c), -EINVAL);
}
END_TEST

static const struct regcache_package PKG = {
	.platform = "aws", .runtime = "python-3.11", .benchmark = "110.dynamic-html",
	.filename = "110.dynamic-html.zip", .builder = "builder=host",
	.sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	.size = 12345, .created = 1700000000,
};

static void check_common(json_t *m)
{
	ck_assert_int_eq(json_integer_value(json_object_get(m, "schemaVersion")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(m, "mediaType")),
			 "application/vnd.oci.image.manifest.v1+json");
	json_t *layers = json_object_get(m, "layers");
	ck_assert_int_eq(json_array_size(layers), 1);
	json_t *l = json_array_get(layers, 0);
	ck_assert_str_eq(json_string_value(json_object_get(l, "mediaType")),
			 "application/vnd.sebsfs.package.v1+zip");
	ck_assert_str_eq(json_string_value(json_object_get(l, "digest")),
			 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	ck_assert_int_eq(json_integer_value(json_object_get(l, "size")), 12345);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(l, "annotations"),
							  "org.opencontainers.image.title")),
			 "110.dynamic-html.zip");
	json_t *a = json_object_get(m, "annotations");
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.sebsfs.platform")), "aws");
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.sebsfs.runtime")), "python-3.11");
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.sebsfs.benchmark")),
			 "110.dynamic-html");
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.sebsfs.builder")), "builder=host");
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.sebsfs.sha256")), PKG.sha256);
	ck_assert_ptr_nonnull(json_string_value(json_object_get(a, "org.sebsfs.version")));
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.opencontainers.image.created")),
			 "2023-11-14T22:13:20Z");
}

START_TEST(artifact_manifest)
{
	struct regcache_artifact art;
	regcache_package_artifact(&PKG, &art);
	char *text = regcache_manifest_json(&art, true, NULL, 0);
	ck_assert_ptr_nonnull(text);
	json_t *m = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(m);
	check_common(m);
	ck_assert_str_eq(json_string_value(json_object_get(m, "artifactType")),
			 "application/vnd.sebsfs.package.v1");
	json_t *config = json_object_get(m, "config");
	ck_assert_str_eq(json_string_value(json_object_get(config, "mediaType")),
			 "application/vnd.oci.empty.v1+json");
	char empty[SHA256_HEX_LEN + 1], digest[80];
	sha256_hex_buf("{}", 2, empty);
	snprintf(digest, sizeof(digest), "sha256:%s", empty);
	ck_assert_str_eq(json_string_value(json_object_get(config, "digest")), digest);
	ck_assert_int_eq(json_integer_value(json_object_get(config, "size")), 2);
	/* deterministic: the same package and build time, the same manifest */
	char *again = regcache_manifest_json(&art, true, NULL, 0);
	ck_assert_str_eq(text, again);
	free(again);
	json_decref(m);
	free(text);
}
END_TEST

START_TEST(fallback_manifest)
{
	struct regcache_artifact art;
	regcache_package_artifact(&PKG, &art);
	char *config = regcache_config_json(&art);
	char sha[SHA256_HEX_LEN + 1], digest[80];
	sha256_hex_buf(config, strlen(config), sha);
	char *text = regcache_manifest_json(&art, false, sha, (int64_t)strlen(config));
	json_t *m = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(m);
	check_common(m);
	ck_assert_ptr_null(json_object_get(m, "artifactType"));
	json_t *c = json_object_get(m, "config");
	ck_assert_str_eq(json_string_value(json_object_get(c, "mediaType")),
			 "application/vnd.sebsfs.package.config.v1+json");
	snprintf(digest, sizeof(digest), "sha256:%s", sha);
	ck_assert_str_eq(json_string_value(json_object_get(c, "digest")), digest);
	ck_assert_int_eq(json_integer_value(json_object_get(c, "size")), (json_int_t)strlen(config));
	json_t *cj = json_loads(config, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(cj, "org.sebsfs.sha256")), PKG.sha256);
	json_decref(cj);
	json_decref(m);
	free(text);
	free(config);
}
END_TEST

/* A layer: its own artifactType, blob and config media types, and its
 * own fields; the annotations every artifact has stay. */
START_TEST(layer_manifests)
{
	static const struct regcache_layer LAYER = {
		.language = "python", .version = "3.11", .arch = "x64",
		.installer = "host pip3 23.0.1; python3 Python 3.11.2",
		.sha256 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
		.size = 999, .created = 1700000000,
	};
	struct regcache_artifact art;
	regcache_layer_artifact(&LAYER, &art);
	char *text = regcache_manifest_json(&art, true, NULL, 0);
	json_t *m = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(json_string_value(json_object_get(m, "artifactType")),
			 "application/vnd.sebsfs.layer.v1");
	json_t *l = json_array_get(json_object_get(m, "layers"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(l, "mediaType")),
			 "application/vnd.sebsfs.layer.v1+zip");
	ck_assert_int_eq(json_integer_value(json_object_get(l, "size")), 999);
	json_t *a = json_object_get(m, "annotations");
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.sebsfs.language")), "python");
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.sebsfs.language_version")),
			 "3.11");
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.sebsfs.arch")), "x64");
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.sebsfs.installer")),
			 LAYER.installer);
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.sebsfs.sha256")), LAYER.sha256);
	ck_assert_ptr_nonnull(json_string_value(json_object_get(a, "org.sebsfs.version")));
	ck_assert_ptr_null(json_object_get(a, "org.sebsfs.platform"));
	ck_assert_str_eq(json_string_value(json_object_get(a, "org.opencontainers.image.created")),
			 "2023-11-14T22:13:20Z");
	json_decref(m);
	free(text);

	char *config = regcache_config_json(&art);
	char sha[SHA256_HEX_LEN + 1];
	sha256_hex_buf(config, strlen(config), sha);
	text = regcache_manifest_json(&art, false, sha, (int64_t)strlen(config));
	m = json_loads(text, 0, NULL);
	ck_assert_ptr_null(json_object_get(m, "artifactType"));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "config"),
							   "mediaType")),
			 "application/vnd.sebsfs.layer.config.v1+json");
	json_decref(m);
	free(text);
	free(config);
}
END_TEST

/* Nothing listens on the port: a bounded failure, not a hang or -ENOENT. */
START_TEST(unreachable_registry)
{
	char *err = NULL, sha[SHA256_HEX_LEN + 1], *digest = NULL;
	struct regcache *r = regcache_new("127.0.0.1:1/x", NULL, &err);
	ck_assert_ptr_nonnull(r);
	int rc = regcache_fetch(r, &regcache_package_kind, "0000", "/nonexistent/never", -1, sha,
				&digest, &err);
	ck_assert_int_lt(rc, 0);
	ck_assert_int_ne(rc, -ENOENT);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err, "127.0.0.1:1"));
	ck_assert_ptr_null(digest);
	free(err);
	regcache_free(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("regcache");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, spec_parts);
	tcase_add_test(tc, challenges);
	tcase_add_test(tc, artifact_manifest);
	tcase_add_test(tc, fallback_manifest);
	tcase_add_test(tc, layer_manifests);
	tcase_add_test(tc, unreachable_registry);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
