/*
 * depfiles.c - the local files a dependency file names (see depfiles.h):
 * pip requirements files and npm's package.json, read the way pip and npm
 * read them, as far as naming files goes.
 */
#include "depfiles.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "fsutil.h"

/* -r/-c files are parsed in turn; this bounds a chain (or a cycle). */
#define MAX_REQUIREMENT_DEPTH 8

void depfiles_clear(struct depfiles *d)
{
	str_list_free(d->paths, d->n);
	d->paths = NULL;
	d->n = 0;
}

static bool depfiles_has(const struct depfiles *d, const char *p)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->paths[i], p) == 0)
			return true;
	return false;
}

/* Makes rel (relative to folder base, itself relative to the work folder)
 * a normalised path relative to the work folder: no ".", no "..", no empty
 * components.  NULL when it is absolute or climbs out. */
char *depfiles_normalize(const char *base, const char *rel)
{
	if (!*rel || rel[0] == '/' || rel[0] == '~')
		return NULL;
	char *joined = base && *base ? str_printf("%s/%s", base, rel) : strdup(rel);
	char *out = joined ? malloc(strlen(joined) + 1) : NULL;
	if (!out) {
		free(joined);
		return NULL;
	}
	size_t len = 0;
	bool bad = false;
	char *save = NULL;
	for (char *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			if (len == 0) {
				bad = true;
				break;
			}
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
			continue;
		}
		if (len)
			out[len++] = '/';
		memcpy(out + len, c, strlen(c));
		len += strlen(c);
	}
	out[len] = '\0';
	free(joined);
	if (bad || len == 0) {
		free(out);
		return NULL;
	}
	return out;
}

struct local_scan {
	const char *workdir;
	struct depfiles found;
	char *errmsg;
};

/* Records local path rel, named in file `where` (for messages), relative to
 * folder base.  The path must stay inside the work folder (it may be missing). */
static int add_local(struct local_scan *sc, const char *where, const char *base, const char *rel)
{
	char *norm = depfiles_normalize(base, rel);
	if (!norm) {
		errmsg_set(&sc->errmsg, "%s names %s, which is outside the work folder: a dependency"
			" layer can only depend on files the package has (use a path below the"
			" benchmark's folder that init.sh copies, or -o dep_layers=off)", where, rel);
		return -EPERM;
	}
	if (depfiles_has(&sc->found, norm)) {
		free(norm);
		return 0;
	}
	/* A missing one is kept: it hashes as "missing", is not placed, and the
	 * install fails on it with the installer's own words, as it would in
	 * the work folder. */
	char **v = realloc(sc->found.paths, (sc->found.n + 1) * sizeof(*v));
	if (!v) {
		free(norm);
		return -ENOMEM;
	}
	sc->found.paths = v;
	v[sc->found.n++] = norm;
	return 0;
}

static bool has_scheme(const char *s)
{
	const char *p = s;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return p > s && strncmp(p, "://", 3) == 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool looks_like_archive(const char *s)
{
	static const char *const exts[] = { ".whl", ".tar.gz", ".tgz", ".zip", ".tar.bz2",
					    ".tar.xz", ".tar", NULL };
	for (const char *const *e = exts; *e; e++)
		if (ends_with(s, *e))
			return true;
	return false;
}

/* A requirement or option value that names something on disk: the path,
 * else NULL (a name, a version spec, a URL). */
static const char *local_target(const char *v)
{
	if (strncmp(v, "file://", 7) == 0)
		return v + 7;
	if (strncmp(v, "file:", 5) == 0)
		return v + 5;
	if (has_scheme(v))
		return NULL;
	if (v[0] == '.' || v[0] == '/' || v[0] == '~' || strchr(v, '/') || looks_like_archive(v))
		return v;
	return NULL;
}

static int scan_requirements(struct local_scan *sc, const char *rel, int depth);

/* One logical line of a requirements file (comments and continuations
 * already handled).  base: the file's folder relative to the work folder. */
static int scan_requirement_line(struct local_scan *sc, const char *where, const char *base,
				 char *line, int depth)
{
	char *save = NULL;
	char *tok = strtok_r(line, " \t", &save);
	if (!tok)
		return 0;
	/* options with a value: "-r f", "--requirement f", "--requirement=f" */
	static const struct { const char *opt; bool nested; } opts[] = {
		{ "-r", true }, { "--requirement", true }, { "-c", true }, { "--constraint", true },
		{ "-e", false }, { "--editable", false }, { "-f", false }, { "--find-links", false },
	};
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		size_t n = strlen(opts[i].opt);
		const char *value = NULL;
		if (strcmp(tok, opts[i].opt) == 0)
			value = strtok_r(NULL, " \t", &save);
		else if (strncmp(tok, opts[i].opt, n) == 0 && tok[n] == '=')
			value = tok + n + 1;
		else if (n == 2 && strncmp(tok, opts[i].opt, 2) == 0 && tok[2])
			value = tok + 2; /* "-rfile" */
		else
			continue;
		if (!value || !*value)
			return 0; /* pip reports it */
		const char *path = opts[i].nested ? value : local_target(value);
		if (!path && !opts[i].nested && !has_scheme(value) && strncmp(value, "git+", 4) != 0)
			path = value; /* -e/-f with a bare folder name */
		if (!path)
			return 0;
		/* a file read already (a cycle, or named twice) is not read again */
		char *norm = depfiles_normalize(base, path);
		bool seen = norm && depfiles_has(&sc->found, norm);
		int rc = add_local(sc, where, base, path);
		if (rc == 0 && opts[i].nested && !seen) {
			char *abs = norm ? path_join(sc->workdir, norm) : NULL;
			rc = !abs ? -ENOMEM : path_is_file(abs) ? scan_requirements(sc, norm, depth + 1) : 0;
			free(abs);
		}
		free(norm);
		return rc;
	}
	if (tok[0] == '-')
		return 0; /* other options (--index-url, --no-binary, ...) are text: hashed */
	/* "name @ file:..." (PEP 508 direct reference) */
	char *at = strtok_r(NULL, " \t", &save);
	if (at && strcmp(at, "@") == 0) {
		char *url = strtok_r(NULL, " \t;", &save);
		const char *path = url ? local_target(url) : NULL;
		return path ? add_local(sc, where, base, path) : 0;
	}
	char *marker = strchr(tok, ';');
	if (marker)
		*marker = '\0';
	char *at_sign = strstr(tok, "@file:");
	const char *path = at_sign ? at_sign + 1 : tok;
	path = local_target(path);
	return path ? add_local(sc, where, base, path) : 0;
}

static int scan_requirements(struct local_scan *sc, const char *rel, int depth)
{
	if (depth > MAX_REQUIREMENT_DEPTH) {
		errmsg_set(&sc->errmsg, "%s: requirement files nest deeper than %d levels", rel,
			MAX_REQUIREMENT_DEPTH);
		return -ELOOP;
	}
	char *abs = path_join(sc->workdir, rel);
	char *text = NULL;
	int rc = abs ? read_file(abs, &text, NULL) : -ENOMEM;
	free(abs);
	if (rc < 0) {
		errmsg_set(&sc->errmsg, "cannot read %s: %s", rel, strerror(-rc));
		return rc;
	}
	char *slash = strrchr(rel, '/');
	char *base = slash ? strndup(rel, (size_t)(slash - rel)) : strdup("");
	if (!base) {
		free(text);
		return -ENOMEM;
	}
	/* a continuation line (a backslash at the end) joins the next, as in pip; the
	 * joined line is named by its first line's number */
	char *rest = text;
	int lineno = 0;
	for (char *line; rc == 0 && (line = strsep(&rest, "\n")); ) {
		lineno++;
		int first = lineno;
		size_t len;
		while ((len = strlen(line)) > 0 && line[len - 1] == '\\' && rest) {
			char *next = strsep(&rest, "\n");
			lineno++;
			memmove(line + len - 1, next, strlen(next) + 1);
		}
		/* a comment starts at "#" at the line's start or after a blank */
		for (char *h = line; (h = strchr(h, '#')); h++) {
			if (h == line || h[-1] == ' ' || h[-1] == '\t') {
				*h = '\0';
				break;
			}
		}
		char where[512];
		snprintf(where, sizeof(where), "%s line %d", rel, first);
		rc = scan_requirement_line(sc, where, base, line, depth);
	}
	free(base);
	free(text);
	return rc;
}

/* npm: dependency values that are local paths. */
static int scan_package_json(struct local_scan *sc, const char *rel)
{
	char *abs = path_join(sc->workdir, rel);
	json_error_t jerr;
	json_t *root = abs ? json_load_file(abs, 0, &jerr) : NULL;
	free(abs);
	if (!json_is_object(root)) {
		errmsg_set(&sc->errmsg, "%s: line %d: %s", rel, root ? 0 : jerr.line,
			root ? "not a JSON object" : jerr.text);
		json_decref(root);
		return -EINVAL;
	}
	static const char *const sections[] = { "dependencies", "devDependencies",
						"optionalDependencies", "peerDependencies", NULL };
	int rc = 0;
	for (const char *const *sec = sections; *sec && rc == 0; sec++) {
		json_t *deps = json_object_get(root, *sec);
		const char *name;
		json_t *v;
		json_object_foreach(deps, name, v) {
			const char *s = json_string_value(v);
			if (!s)
				continue;
			const char *path = strncmp(s, "file:", 5) == 0 ? s + 5
					 : strncmp(s, "link:", 5) == 0 ? s + 5
					 : (s[0] == '.' || s[0] == '/' || s[0] == '~') ? s : NULL;
			if (!path)
				continue;
			char where[512];
			snprintf(where, sizeof(where), "%s %s.%s", rel, *sec, name);
			if ((rc = add_local(sc, where, "", path)) < 0)
				break;
		}
	}
	/* what npm reads from the folder besides package.json */
	static const char *const npm_files[] = { "package-lock.json", "npm-shrinkwrap.json",
						 ".npmrc", NULL };
	for (const char *const *f = npm_files; *f && rc == 0; f++) {
		char *p = path_join(sc->workdir, *f);
		bool exists = p && path_exists(p);
		free(p);
		if (exists)
			rc = add_local(sc, rel, "", *f);
	}
	json_decref(root);
	return rc;
}

int depfiles_scan(const char *workdir, const char *language, const char *depfile,
		  struct depfiles *out, char **errmsg)
{
	struct local_scan sc = { .workdir = workdir };
	int rc = add_local(&sc, depfile, "", depfile);
	if (rc == 0)
		rc = strcmp(language, "python") == 0 ? scan_requirements(&sc, depfile, 0)
						     : scan_package_json(&sc, depfile);
	*out = sc.found;
	if (rc < 0)
		errmsg_set(errmsg, "%s", sc.errmsg ? sc.errmsg : strerror(-rc));
	free(sc.errmsg);
	return rc;
}
