/*
 * langgen.c - SeBS's generated texts for Java and C++ builds (see
 * langgen.h).  The string literals below are SeBS's, blank for blank:
 * CMakeLists.txt is assembled exactly as SeBS assembles its Python string
 * (indentation of its source included) and then dedented the same way, so
 * each piece can be checked against sebs/benchmark.py and
 * sebs/cpp_dependencies.py line by line.
 */
#include "langgen.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"

/* ---- growing text buffer ---------------------------------------------- */

/* Out of memory sticks: the text is dropped at the end, so the building
 * code need not check every append. */
struct textbuf {
	char *data;
	size_t len, cap;
	bool failed;
};

static void tb_add(struct textbuf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void tb_puts(struct textbuf *b, const char *s)
{
	tb_add(b, s, strlen(s));
}

/* Appends the NULL-terminated list of strings. */
static void tb_cat(struct textbuf *b, ...)
	__attribute__((sentinel));
static void tb_cat(struct textbuf *b, ...)
{
	va_list ap;
	va_start(ap, b);
	for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
		tb_puts(b, s);
	va_end(ap);
}

/* Frees the text; the buffer can be filled anew. */
static void tb_free(struct textbuf *b)
{
	free(b->data);
	*b = (struct textbuf){ 0 };
}

/* The text (never NULL when it succeeds, "" when empty), or NULL with
 * the buffer freed after an allocation failure. */
static char *tb_take(struct textbuf *b, size_t *len)
{
	if (!b->failed && !b->data)
		tb_add(b, "", 0);
	if (b->failed) {
		tb_free(b);
		return NULL;
	}
	if (len)
		*len = b->len;
	char *p = b->data;
	*b = (struct textbuf){ 0 };
	return p;
}

/* ---- Python's text handling -------------------------------------------- */

/* Strict UTF-8 as Python's decoder reads it: no overlong forms, no
 * surrogates, nothing above U+10FFFF.  Returns the offset of the first bad
 * byte, or len. */
static size_t utf8_check(const unsigned char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned char lo = 0x80, hi = 0xbf;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return i;
		}
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++) {
			unsigned char t = s[i + k];
			if (k == 1 ? (t < lo || t > hi) : (t < 0x80 || t > 0xbf))
				return i;
		}
		i += n + 1;
	}
	return len;
}

/* open(path, "r") reads universal newlines: "\r\n" and "\r" become "\n". */
static void tb_add_universal_newlines(struct textbuf *b, const char *s, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\r')
			continue;
		tb_add(b, s + start, i - start);
		tb_add(b, "\n", 1);
		if (i + 1 < len && s[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	tb_add(b, s + start, len - start);
}

/* Reads text the way SeBS's open(path, "r").read() does: into b. */
static int read_text(struct textbuf *b, const char *s, size_t len, const char *what,
		     char **errmsg)
{
	size_t bad = utf8_check((const unsigned char *)s, len);
	if (bad < len) {
		errmsg_set(errmsg, "%s is not valid UTF-8 (byte %zu): SeBS reads it as UTF-8 text",
			   what, bad);
		return -EINVAL;
	}
	tb_add_universal_newlines(b, s, len);
	return b->failed ? -ENOMEM : 0;
}

/* Python's s.replace(needle, rep): every occurrence, left to right, not
 * overlapping.  Returns how many there were. */
static size_t tb_add_replaced(struct textbuf *b, const char *s, size_t len, const char *needle,
			      const char *rep, size_t rep_len)
{
	size_t nlen = strlen(needle), count = 0;
	const char *p = s, *end = s + len;
	const char *hit;
	while ((hit = memmem(p, (size_t)(end - p), needle, nlen))) {
		tb_add(b, p, (size_t)(hit - p));
		tb_add(b, rep, rep_len);
		p = hit + nlen;
		count++;
	}
	tb_add(b, p, (size_t)(end - p));
	return count;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

char *langgen_dedent(const char *text)
{
	/* Pass 1: the margin, over the lines that are not blanks only
	 * (textwrap's _leading_whitespace_re finds a blank run followed by
	 * something else; a blanks-only line has no such match). */
	const char *margin = NULL;
	size_t margin_len = 0;
	for (const char *line = text; *line;) {
		size_t indent = 0;
		while (is_blank(line[indent]))
			indent++;
		if (line[indent] != '\n' && line[indent] != '\0') {
			if (!margin) {
				margin = line;
				margin_len = indent;
			} else {
				size_t common = 0;
				while (common < margin_len && common < indent &&
				       margin[common] == line[common])
					common++;
				margin_len = common;
			}
		}
		const char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	/* Pass 2: blanks-only lines become empty, the others lose the margin. */
	struct textbuf b = { 0 };
	for (const char *line = text;;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		size_t indent = 0;
		while (indent < len && is_blank(line[indent]))
			indent++;
		if (indent < len)
			tb_add(&b, line + margin_len, len - margin_len);
		if (!nl)
			break;
		tb_add(&b, "\n", 1);
		line = nl + 1;
	}
	return tb_take(&b, NULL);
}

/* ---- Java ---------------------------------------------------------------- */

/* Python's s.strip('"').strip("'"): bounds of the stripped part. */
static void strip_quotes(const char *s, size_t len, const char **start, size_t *out_len)
{
	const char *p = s, *e = s + len;
	while (p < e && *p == '"')
		p++;
	while (e > p && e[-1] == '"')
		e--;
	while (p < e && *p == '\'')
		p++;
	while (e > p && e[-1] == '\'')
		e--;
	*start = p;
	*out_len = (size_t)(e - p);
}

/* The first character that makes part unfit to stand raw between XML tags,
 * or NULL. */
static const char *xml_unfit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '<' || c == '>' || c == '&' || c < 0x20 || c == 0x7f)
			return s + i;
	}
	return NULL;
}

static int check_pom_part(const char *key, const char *what, const char *s, size_t len,
			  char **errmsg)
{
	if (len == 0) {
		errmsg_set(errmsg, "Java package \"%s\": its %s is empty", key, what);
		return -EINVAL;
	}
	const char *bad = xml_unfit(s, len);
	if (bad && (unsigned char)*bad >= 0x20 && *bad != 0x7f) {
		errmsg_set(errmsg, "Java package \"%s\": its %s holds '%c', which cannot stand"
			   " unescaped in pom.xml", key, what, *bad);
		return -EINVAL;
	}
	if (bad) {
		errmsg_set(errmsg, "Java package \"%s\": its %s holds the control character 0x%02x",
			   key, what, (unsigned char)*bad);
		return -EINVAL;
	}
	return 0;
}

/* Appends format_maven_dependency(name, version) + "\n". */
static int add_maven_dependency(struct textbuf *b, const char *key, const char *version_json,
				size_t version_json_len, char **errmsg)
{
	const char *name, *version;
	size_t name_len, version_len;
	strip_quotes(key, strlen(key), &name, &name_len);
	strip_quotes(version_json, version_json_len, &version, &version_len);

	const char *colon = memchr(name, ':', name_len);
	if (!colon || memchr(colon + 1, ':', name_len - (size_t)(colon + 1 - name))) {
		errmsg_set(errmsg, "Java package \"%s\": the name must be group:artifact, with"
			   " exactly one ':' (SeBS splits it on ':')", key);
		return -EINVAL;
	}
	size_t group_len = (size_t)(colon - name);
	const char *artifact = colon + 1;
	size_t artifact_len = name_len - group_len - 1;
	int rc = check_pom_part(key, "group", name, group_len, errmsg);
	if (!rc)
		rc = check_pom_part(key, "artifact", artifact, artifact_len, errmsg);
	if (!rc)
		rc = check_pom_part(key, "version", version, version_len, errmsg);
	if (rc)
		return rc;

	tb_puts(b, "\n        <dependency>\n            <groupId>");
	tb_add(b, name, group_len);
	tb_puts(b, "</groupId>\n            <artifactId>");
	tb_add(b, artifact, artifact_len);
	tb_puts(b, "</artifactId>\n            <version>");
	tb_add(b, version, version_len);
	tb_puts(b, "</version>\n        </dependency>\n");
	return 0;
}

/* Python's str.strip() for the dependency blocks, whose ends are always
 * "\n        <" and ">\n": ASCII whitespace is all it can meet there. */
static bool is_py_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int langgen_pom_dependencies(const char *pom, size_t len, const json_t *packages,
			     char **out, size_t *out_len, char **errmsg)
{
	struct textbuf blocks = { 0 }, text = { 0 }, result = { 0 };
	int rc = 0;
	*out = NULL;
	if (out_len)
		*out_len = 0;

	if (packages && !json_is_object(packages)) {
		errmsg_set(errmsg, "the Java packages of systems.json must be an object of"
			   " \"group:artifact\": \"version\"");
		return -EINVAL;
	}
	const char *key;
	json_t *value;
	/* json_object_foreach wants a non-const object; it only reads it. */
	json_object_foreach((json_t *)packages, key, value) {
		if (!json_is_string(value)) {
			errmsg_set(errmsg, "Java package \"%s\": the version must be a string", key);
			rc = -EINVAL;
			goto out;
		}
		rc = add_maven_dependency(&blocks, key, json_string_value(value),
					  json_string_length(value), errmsg);
		if (rc)
			goto out;
	}
	if (blocks.failed) {
		rc = -ENOMEM;
		goto out;
	}
	const char *rep = blocks.data ? blocks.data : "";
	size_t rep_len = blocks.len;
	while (rep_len && is_py_space(*rep)) {
		rep++;
		rep_len--;
	}
	while (rep_len && is_py_space(rep[rep_len - 1]))
		rep_len--;

	rc = read_text(&text, pom, len, "pom.xml", errmsg);
	if (rc)
		goto out;
	if (!memmem(text.data ? text.data : "", text.len, LANGGEN_POM_PLACEHOLDER,
		    strlen(LANGGEN_POM_PLACEHOLDER))) {
		/* SeBS's words. */
		errmsg_set(errmsg, "pom.xml template is missing " LANGGEN_POM_PLACEHOLDER
			   " placeholder");
		rc = -EINVAL;
		goto out;
	}
	tb_add_replaced(&result, text.data, text.len, LANGGEN_POM_PLACEHOLDER, rep, rep_len);
	*out = tb_take(&result, out_len);
	if (!*out)
		rc = -ENOMEM;
out:
	if (rc == -ENOMEM)
		errmsg_set(errmsg, "out of memory generating pom.xml");
	tb_free(&blocks);
	tb_free(&text);
	tb_free(&result);
	return rc;
}

/* ---- C++: SeBS's table ------------------------------------------------- */

static const char *const sdk_paths[] = { "/opt/lib64/libaws*", "/opt/lib64/libs2n*", NULL };
static const char *const torch_paths[] = { "/opt/libtorch", NULL };
static const char *const opencv_paths[] = { "/opt/opencv", NULL };
static const char *const libjpeg_turbo_paths[] = { "/opt/libjpeg-turbo", NULL };
static const char *const boost_paths[] = { "/opt/lib/libboost*", NULL };
static const char *const hiredis_paths[] = { "/opt/lib/libhiredis*", NULL };
static const char *const no_paths[] = { NULL };

/* sebs/cpp_dependencies.py, CppDependencies._dependency_dictionary(). */
static const struct langgen_cpp_dependency cpp_table[] = {
	{ .name = "sdk", .docker_img = "dependencies-sdk.aws.cpp.all",
	  .cmake_package = "AWSSDK", .cmake_libs = "${AWSSDK_LINK_LIBRARIES}",
	  .runtime_paths = sdk_paths, .cmake_required = "s3",
	  .cmake_definitions = "SEBS_USE_AWS_SDK" },
	{ .name = "runtime", .docker_img = "dependencies-runtime.aws.cpp.all",
	  .cmake_package = "aws-lambda-runtime", .cmake_libs = "AWS::aws-lambda-runtime",
	  .runtime_paths = no_paths },
	{ .name = "torch", .docker_img = "dependencies-torch.aws.cpp.all",
	  .cmake_package = "Torch", .cmake_libs = "${TORCH_LIBRARIES} -lm",
	  .cmake_dir = "${TORCH_INCLUDE_DIRS}", .runtime_paths = torch_paths },
	{ .name = "opencv", .docker_img = "dependencies-opencv.aws.cpp.all",
	  .cmake_package = "OpenCV", .cmake_libs = "${OpenCV_LIBS}",
	  .cmake_dir = "${OpenCV_INCLUDE_DIRS}", .runtime_paths = opencv_paths },
	{ .name = "libjpeg-turbo", .docker_img = "dependencies-libjpeg-turbo.aws.cpp.all",
	  .cmake_package = NULL, .cmake_libs = "/opt/libjpeg-turbo/lib64/libturbojpeg.a",
	  .cmake_dir = "/opt/libjpeg-turbo/include", .runtime_paths = libjpeg_turbo_paths },
	{ .name = "igraph", .docker_img = "dependencies-igraph.aws.cpp.all",
	  .cmake_package = "igraph", .cmake_libs = "igraph::igraph",
	  .runtime_paths = no_paths },
	{ .name = "boost", .docker_img = "dependencies-boost.aws.cpp.all",
	  .cmake_package = "Boost", .cmake_libs = "${Boost_LIBRARIES}",
	  .cmake_dir = "${Boost_INCLUDE_DIRS}", .runtime_paths = boost_paths },
	{ .name = "hiredis", .docker_img = "dependencies-hiredis.aws.cpp.all",
	  .cmake_package = "hiredis", .cmake_libs = "hiredis::hiredis",
	  .runtime_paths = hiredis_paths },
	{ .name = "rapidjson", .docker_img = "dependencies-rapidjson.aws.cpp.all",
	  .cmake_package = NULL, .cmake_libs = "", .cmake_dir = "/opt/include",
	  .runtime_paths = no_paths },
};
#define CPP_TABLE_LEN (sizeof(cpp_table) / sizeof(cpp_table[0]))

/* get_required_dependencies() always adds these. */
static const char *const cpp_always_required[] = { "runtime", "boost", "rapidjson" };

const struct langgen_cpp_dependency *langgen_cpp_dependencies(size_t *count)
{
	*count = CPP_TABLE_LEN;
	return cpp_table;
}

static size_t cpp_index(const char *name)
{
	for (size_t i = 0; i < CPP_TABLE_LEN; i++)
		if (strcmp(cpp_table[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

const struct langgen_cpp_dependency *langgen_cpp_dependency(const char *name)
{
	size_t i = name ? cpp_index(name) : SIZE_MAX;
	return i == SIZE_MAX ? NULL : &cpp_table[i];
}

bool langgen_cpp_dependency_known(const char *name)
{
	return langgen_cpp_dependency(name) != NULL;
}

/* Python's truth of an optional string. */
static bool present(const char *s)
{
	return s && *s;
}

/* Checks every name of deps; -EINVAL naming the first unknown one. */
static int check_cpp_deps(const char *const *deps, size_t n_deps, char **errmsg)
{
	for (size_t i = 0; i < n_deps; i++) {
		if (langgen_cpp_dependency_known(deps[i]))
			continue;
		struct textbuf known = { 0 };
		for (size_t k = 0; k < CPP_TABLE_LEN; k++)
			tb_cat(&known, k ? ", " : "", cpp_table[k].name, NULL);
		errmsg_set(errmsg, "unknown C++ dependency \"%s\" in cpp_dependencies (known: %s)",
			   deps[i] ? deps[i] : "(null)", known.failed ? "?" : known.data);
		tb_free(&known);
		return -EINVAL;
	}
	return 0;
}

/* ---- C++: CMakeLists.txt ------------------------------------------------- */

/* CppDependencies.to_cmake_list(). */
static void add_cmake_list(struct textbuf *b, const struct langgen_cpp_dependency *d)
{
	if (present(d->cmake_package) && present(d->cmake_required))
		tb_cat(b, "\n"
		       "            find_package(", d->cmake_package, " REQUIRED COMPONENTS ",
		       d->cmake_required, ")\n"
		       "            ", NULL);
	else if (present(d->cmake_package))
		tb_cat(b, "\n"
		       "            find_package(", d->cmake_package, ")\n"
		       "            ", NULL);
	if (present(d->cmake_dir))
		tb_cat(b, "\n"
		       "            target_include_directories(${PROJECT_NAME} PRIVATE ",
		       d->cmake_dir, ")\n"
		       "        ", NULL);
	if (present(d->cmake_libs))
		tb_cat(b, "\n"
		       "            target_link_libraries(${PROJECT_NAME} PRIVATE ",
		       d->cmake_libs, ")\n"
		       "        ", NULL);
	if (present(d->cmake_definitions))
		tb_cat(b, "\n"
		       "            target_compile_definitions(${PROJECT_NAME} PRIVATE ",
		       d->cmake_definitions, ")\n"
		       "        ", NULL);
}

int langgen_cmakelists(const char *const *deps, size_t n_deps, bool storage, bool nosql,
		       char **out, char **errmsg)
{
	*out = NULL;
	int rc = check_cpp_deps(deps, n_deps, errmsg);
	if (rc)
		return rc;

	/* add_deployment_package_cpp's f-string, with "{{" as "{". */
	struct textbuf b = { 0 };
	tb_cat(&b, "\n"
	       "        cmake_minimum_required(VERSION 3.9)\n"
	       "        set(CMAKE_CXX_STANDARD 14)\n"
	       "        # set(CMAKE_CXX_FLAGS \"-Os\")\n"
	       "        project(benchmark LANGUAGES CXX)\n"
	       "        set(CMAKE_CXX_STANDARD 17)\n"
	       "        add_executable(\n"
	       "            ${PROJECT_NAME} handler.cpp utils.cpp main.cpp",
	       storage ? " storage.cpp" : "", nosql ? " key-value.cpp" : "", "\n"
	       "        )\n"
	       "        target_include_directories(${PROJECT_NAME} PRIVATE \".\")\n"
	       "\n"
	       "        target_compile_features(${PROJECT_NAME} PRIVATE \"cxx_std_14\")\n"
	       "        target_compile_options(${PROJECT_NAME} PRIVATE \"-Wall\" \"-Wextra\")\n"
	       "\n"
	       "        find_package(aws-lambda-runtime)\n"
	       "        target_link_libraries(${PROJECT_NAME} PRIVATE AWS::aws-lambda-runtime)\n"
	       "        ", NULL);
	for (size_t i = 0; i < n_deps; i++)
		add_cmake_list(&b, langgen_cpp_dependency(deps[i]));
	tb_puts(&b, "\n"
		"\n"
		"        # find_package(PkgConfig REQUIRED)\n"
		"        # set(ENV{PKG_CONFIG_PATH} \"/opt/lib/pkgconfig\")\n"
		"        # pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)\n"
		"\n"
		"        # target_include_directories(${PROJECT_NAME} PUBLIC PkgConfig::HIREDIS)\n"
		"        # target_link_libraries(${PROJECT_NAME} PUBLIC PkgConfig::HIREDIS)\n"
		"\n"
		"        # this line creates a target that packages your binary and zips it up\n"
		"        aws_lambda_package_target(${PROJECT_NAME})\n"
		"        ");
	char *script = tb_take(&b, NULL);
	*out = script ? langgen_dedent(script) : NULL;
	free(script);
	if (!*out) {
		errmsg_set(errmsg, "out of memory generating CMakeLists.txt");
		return -ENOMEM;
	}
	return 0;
}

/* ---- C++: Dockerfile ---------------------------------------------------- */

/* A FROM line's image reference part: no blanks or control characters. */
static bool tag_part_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int check_tag_part(const char *what, const char *s, bool required, char **errmsg)
{
	if (required && !present(s)) {
		errmsg_set(errmsg, "the %s for the C++ Dockerfile is empty", what);
		return -EINVAL;
	}
	if (s && !tag_part_ok(s)) {
		errmsg_set(errmsg, "the %s for the C++ Dockerfile, \"%s\", holds a blank or a"
			   " control character", what, s);
		return -EINVAL;
	}
	return 0;
}

/* The version of dependency d to use, as generate_dockerfile chooses it. */
static const char *choose_version(const struct langgen_cpp_dependency *d, const char *version,
				  const char *previous, const char *repository,
				  langgen_image_available_fn image_available, void *ctx,
				  struct textbuf *log)
{
	if (!image_available || !present(repository) || !present(previous))
		return version;
	struct textbuf image = { 0 };
	tb_cat(&image, repository, ":", d->docker_img, "-", version, NULL);
	bool current = !image.failed && image_available(ctx, image.data);
	tb_free(&image);
	if (current)
		return version;
	tb_cat(&image, repository, ":", d->docker_img, "-", previous, NULL);
	bool older = !image.failed && image_available(ctx, image.data);
	tb_free(&image);
	if (older) {
		tb_cat(log, "Using previous version ", previous, " for dependency ", d->name,
		       " (current version not available)\n", NULL);
		return previous;
	}
	tb_cat(log, "Neither current (", version, ") nor previous (", previous,
	       ") version available for dependency ", d->name, ", build may fail\n", NULL);
	return version;
}

int langgen_cpp_dockerfile(const char *tmpl, const char *const *deps, size_t n_deps,
			   const char *sebs_version, const char *previous_version,
			   const char *repository, langgen_image_available_fn image_available,
			   void *ctx, char **out, char **chosen_log, char **errmsg)
{
	struct textbuf from = { 0 }, copy = { 0 }, log = { 0 }, text = { 0 }, step = { 0 },
		       result = { 0 };
	bool required[CPP_TABLE_LEN] = { false };
	int rc;

	*out = NULL;
	if (chosen_log)
		*chosen_log = NULL;
	rc = check_cpp_deps(deps, n_deps, errmsg);
	if (!rc)
		rc = check_tag_part("SeBS version", sebs_version, true, errmsg);
	if (!rc)
		rc = check_tag_part("previous SeBS version", previous_version, false, errmsg);
	if (!rc)
		rc = check_tag_part("image repository", repository, false, errmsg);
	if (rc)
		return rc;

	for (size_t i = 0; i < sizeof(cpp_always_required) / sizeof(cpp_always_required[0]); i++)
		required[cpp_index(cpp_always_required[i])] = true;
	for (size_t i = 0; i < n_deps; i++)
		required[cpp_index(deps[i])] = true;

	/* Table order: SeBS's set order is not reproducible (see langgen.h). */
	for (size_t i = 0; i < CPP_TABLE_LEN; i++) {
		if (!required[i])
			continue;
		const struct langgen_cpp_dependency *d = &cpp_table[i];
		const char *version = choose_version(d, sebs_version, previous_version, repository,
						     image_available, ctx, &log);
		tb_cat(&from, from.len ? "\n" : "", "FROM ${BASE_REPOSITORY}:", d->docker_img, "-",
		       version, " as ", d->name, NULL);
		for (const char *const *p = d->runtime_paths; *p; p++) {
			tb_cat(&copy, copy.len ? "\n" : "", "COPY --from=", d->name, " ", *p, " ", NULL);
			const char *star = strchr(*p, '*');
			const char *slash = strrchr(*p, '/');
			/* Python's path.rsplit("/", 1)[0] + "/": the whole path when it
			 * has no "/". */
			if (star) {
				tb_add(&copy, *p, slash ? (size_t)(slash - *p) : strlen(*p));
				tb_puts(&copy, "/");
			} else {
				tb_puts(&copy, *p);
			}
		}
	}

	rc = read_text(&text, tmpl, strlen(tmpl), "the Dockerfile template", errmsg);
	if (rc == -ENOMEM)
		goto nomem;
	if (rc)
		goto out;
	tb_add_replaced(&step, text.data, text.len, "{{DEPENDENCY_IMAGES}}",
			from.data ? from.data : "", from.len);
	if (step.failed)
		goto nomem;
	tb_add_replaced(&result, step.data, step.len, "{{DEPENDENCY_COPIES}}",
			copy.data ? copy.data : "", copy.len);
	if (from.failed || copy.failed || log.failed || result.failed)
		goto nomem;
	*out = tb_take(&result, NULL);
	if (!*out)
		goto nomem;
	/* Cannot fail: the text is there already. */
	if (chosen_log && log.len)
		*chosen_log = tb_take(&log, NULL);
	rc = 0;
	goto out;
nomem:
	errmsg_set(errmsg, "out of memory generating the C++ Dockerfile");
	rc = -ENOMEM;
out:
	tb_free(&from);
	tb_free(&copy);
	tb_free(&log);
	tb_free(&text);
	tb_free(&step);
	tb_free(&result);
	return rc;
}
