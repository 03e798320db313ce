/*
 * langgen.h - the text SeBS generates for Java and C++ builds, byte for
 * byte: the <dependency> blocks of pom.xml, CMakeLists.txt, and the
 * Dockerfile of a C++ container build.
 *
 * SeBS's code is the authority (sebs/benchmark.py: format_maven_dependency,
 * add_deployment_package_java, add_deployment_package_cpp;
 * sebs/cpp_dependencies.py: the dependency table, to_cmake_list,
 * get_required_dependencies, generate_dockerfile).  The unit test compares
 * with texts those functions produced (tests/unit/fixtures/langgen, made by
 * make-fixtures.py there).  Where this module departs from SeBS it says so
 * below ("Unlike SeBS").
 *
 * Text files.  SeBS reads pom.xml and Dockerfile.function with open(path,
 * "r"): UTF-8, universal newlines.  So here: the input must be valid UTF-8
 * (else -EINVAL, as SeBS's UnicodeDecodeError), and every "\r\n" and every
 * lone "\r" becomes "\n" in the output.  CMakeLists.txt is generated whole.
 *
 * Pure functions: no I/O, no global state but a constant table; safe from
 * any thread.  Every function returns 0 or -errno (-EINVAL for an input
 * SeBS would refuse or that would give a broken file, -ENOMEM); on failure
 * *errmsg (errmsg.h) says why, naming the offending item, and *out is NULL.
 * Outputs are malloc'd, NUL-terminated, owned by the caller.
 */
#ifndef SEBSFS_LANGGEN_H
#define SEBSFS_LANGGEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- Java ------------------------------------------------------------- */

#define LANGGEN_POM_PLACEHOLDER "<!-- PLATFORM_DEPENDENCIES -->"

/* pom (len bytes, the benchmark's pom.xml) with every occurrence of
 * LANGGEN_POM_PLACEHOLDER replaced, left to right and without overlap as
 * Python's str.replace does, by the dependency blocks of packages.
 *
 * packages: the platform's "deployment" -> "packages" object of
 * systems.json, "group:artifact" -> "version", or NULL for none.  Taken in
 * json_object_foreach order, which in jansson >= 2.8 is insertion order,
 * i.e. file order for json_load* -- as Python's dict from json.load.  (A
 * key repeated in the file: both keep the first position and the last
 * value.)  Per package, as SeBS does:
 *   name = key with all leading and trailing '"' stripped, then all
 *   leading and trailing '\'' (Python's .strip('"').strip("'")); version
 *   likewise; name must have exactly one ':' (SeBS's split(":") raises
 *   otherwise), splitting it into group and artifact; the block is
 *     "\n        <dependency>\n"
 *     "            <groupId>GROUP</groupId>\n"
 *     "            <artifactId>ARTIFACT</artifactId>\n"
 *     "            <version>VERSION</version>\n"
 *     "        </dependency>" "\n"
 *   and the concatenation of all blocks, stripped of leading and trailing
 *   whitespace, is the replacement ("" with no packages).  So the first
 *   <dependency> continues the placeholder's line and the next ones start
 *   after an empty line, indented 8.
 * Errors (-EINVAL, naming the key or the placeholder): packages not an
 * object; a version that is not a string (SeBS's .strip raises); a name
 * without exactly one ':'; the placeholder missing (checked after the
 * packages, as SeBS does).
 * Unlike SeBS, which inserts them raw: an empty group, artifact or
 * version, or one holding '<', '>', '&' or a control character, is
 * refused (-EINVAL naming the key): it would make a pom that Maven cannot
 * read or that means something else.
 * *out_len is the length of *out (which may hold NUL bytes if pom did). */
int langgen_pom_dependencies(const char *pom, size_t len, const json_t *packages,
			     char **out, size_t *out_len, char **errmsg);

/* ---- C++ -------------------------------------------------------------- */

/* One row of SeBS's table of C++ dependencies (CppDependencies).  A NULL
 * or "" field is absent (SeBS tests them for truth). */
struct langgen_cpp_dependency {
	const char *name;              /* "sdk": the config.json name and stage alias */
	const char *docker_img;        /* "dependencies-sdk.aws.cpp.all" */
	const char *cmake_package;     /* find_package() name */
	const char *cmake_required;    /* REQUIRED COMPONENTS, with cmake_package only */
	const char *cmake_dir;         /* target_include_directories() */
	const char *cmake_libs;        /* target_link_libraries() */
	const char *cmake_definitions; /* target_compile_definitions() */
	const char *const *runtime_paths; /* NULL-terminated: copied into the function image */
};

/* The table, in SeBS's order: sdk, runtime, torch, opencv, libjpeg-turbo,
 * igraph, boost, hiredis, rapidjson. */
const struct langgen_cpp_dependency *langgen_cpp_dependencies(size_t *count);
/* The row of name (exact, case-sensitive as SeBS's deserialize), or NULL. */
const struct langgen_cpp_dependency *langgen_cpp_dependency(const char *name);
bool langgen_cpp_dependency_known(const char *name);

/* CMakeLists.txt of add_deployment_package_cpp.  deps: the benchmark's
 * "cpp_dependencies" in config.json order (a repeated one is repeated, as
 * in SeBS); storage/nosql: its "modules" has "storage"/"nosql", which add
 * storage.cpp/key-value.cpp to handler.cpp utils.cpp main.cpp.  Built as
 * SeBS builds its string -- the fixed head, to_cmake_list() of each
 * dependency (find_package with or without REQUIRED COMPONENTS, include
 * directories, link libraries, compile definitions, each when present),
 * the fixed tail -- then passed through langgen_dedent().
 * An unknown dependency: -EINVAL naming it and the known ones. */
int langgen_cmakelists(const char *const *deps, size_t n_deps, bool storage, bool nosql,
		       char **out, char **errmsg);

/* Python's textwrap.dedent: lines that hold only blanks (' ', '\t') become
 * empty; then the longest common leading run of blanks of the other lines
 * is removed from each line that starts with it.  Lines are separated by
 * '\n' only.  (textwrap of Python 3.11, which made the test's
 * expectations; CMakeLists.txt holds no whitespace but blanks and
 * newlines, where later rewrites of dedent agree.)  NULL on ENOMEM. */
char *langgen_dedent(const char *text);

/* Tells whether a Docker image ("repository:tag") can be used, e.g. is
 * local or could be pulled.  ctx is the caller's. */
typedef bool (*langgen_image_available_fn)(void *ctx, const char *image);

/* The Dockerfile of generate_dockerfile: tmpl (dockerfiles/<platform>/cpp/
 * Dockerfile.function) with every "{{DEPENDENCY_IMAGES}}" replaced by the
 * FROM lines, then every "{{DEPENDENCY_COPIES}}" by the COPY lines, each
 * set joined by "\n" (no newline after the last).  A template without
 * them is returned as it is (SeBS does not check).
 *
 * Required dependencies: runtime, boost, rapidjson and deps (unknown:
 * -EINVAL as above), each once.  SeBS takes them in Python set order,
 * which varies with the hash seed from run to run; here they come in the
 * table's order (langgen_cpp_dependencies()), so the same inputs always
 * give the same Dockerfile.  Per dependency D:
 *   FROM ${BASE_REPOSITORY}:<docker_img>-<version> as <name>
 * and per runtime path P of D (none for runtime, igraph, rapidjson):
 *   COPY --from=<name> P dirname(P)/   when P has a '*',
 *   COPY --from=<name> P P             otherwise.
 * version: sebs_version, unless image_available, repository and
 * previous_version are all given (non-NULL, non-empty) -- then
 * image_available(ctx, "<repository>:<docker_img>-<sebs_version>") is
 * asked first; if false, "...-<previous_version>"; if true that one is
 * used, else sebs_version again (SeBS lets the build fail on it).  Asked
 * in table order, at most twice per dependency.
 * chosen_log (optional): *chosen_log gets SeBS's log lines about those
 * choices, each ended by "\n" ("Using previous version V for dependency D
 * (current version not available)", "Neither current (V) nor previous (P)
 * version available for dependency D, build may fail"), or NULL if there
 * are none.
 * Unlike SeBS: sebs_version must be non-empty and, like previous_version
 * and repository, free of blanks and control characters (-EINVAL): it
 * becomes part of an image tag on a FROM line. */
int langgen_cpp_dockerfile(const char *tmpl, const char *const *deps, size_t n_deps,
			   const char *sebs_version, const char *previous_version,
			   const char *repository, langgen_image_available_fn image_available,
			   void *ctx, char **out, char **chosen_log, char **errmsg);

#endif
