/*
 * target_image.c - function images (SEBS.md section 7): what identifies one,
 * whether a built one still exists, its JSON document, and how a worker
 * builds one (pipeline steps 2-5, then imagebuild.c).
 *
 * An image's inputs are the code package's plus the platform's dockerfiles
 * folder (Dockerfile.function), and its identity names the base image's ID,
 * the build image tag passed as BASE_IMAGE_BUILDER, the repository and the
 * registry: changing any of them rebuilds the image.  A kind of target
 * (target.h).
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buildlog.h"
#include "docker.h"
#include "fsutil.h"
#include "imagebuild.h"
#include "langgen.h"
#include "target.h"

struct target_result {
	struct image_build_result res;  /* image, image_id, digest, size */
	const char *registry;           /* pushed to (borrowed: env or previous row) */
	double seconds;                 /* restored: the original build's */
	bool restored;                  /* pulled back by digest, not built */
};

static const char *repository_of(const struct target_env *env, const struct catalog *cat)
{
	return env->repository ? env->repository : cat->docker_repository;
}

static struct image_tag_parts tag_parts(const struct target_env *env, const struct catalog *cat,
					const struct cat_package *pkg)
{
	return (struct image_tag_parts){
		.platform = pkg->platform->name, .benchmark = pkg->benchmark->name,
		.language = pkg->runtime->language, .version = pkg->runtime->version,
		.arch = pkg->runtime->arch, .prefix = env->image_tag_prefix,
		.sebs_version = cat->sebs_version,
	};
}

int target_image_name(const struct target_env *env, const struct catalog *cat,
		      const struct cat_package *pkg, char **name, char **errmsg)
{
	struct image_tag_parts parts = tag_parts(env, cat, pkg);
	return image_function_name(&parts, repository_of(env, cat), env->registry, name, errmsg);
}

/* What is known of one image, "<ref>@<id>" or "<ref>@absent"/"@unresolved";
 * *current (current may be NULL) is cleared when that knowledge is not current. */
static char *image_known(const struct target_env *env, const char *ref, bool *current)
{
	char *id = NULL;
	bool now = true;
	enum image_known k = build_images_known(env->images, ref, &id, &now);
	if (!now && current)
		*current = false;
	char *s = str_printf("%s@%s", ref, k == IMAGE_KNOWN_PRESENT && id ? id
					   : k == IMAGE_KNOWN_ABSENT ? "absent" : "unresolved");
	free(id);
	return s;
}

/* cpp: the dependency images Dockerfile.function copies from (SeBS's
 * required set), current and previous SeBS version, so that rebuilding one
 * under its tag rebuilds the function images made from it.  Appended to
 * *identity; -ENOMEM or 0. */
static int add_cpp_dependency_images(const struct target_env *env, const struct catalog *cat,
				     const struct cat_benchmark *b, char **identity,
				     bool *known_current)
{
	size_t n = 0;
	const struct langgen_cpp_dependency *table = langgen_cpp_dependencies(&n);
	if (!cat->docker_repository || !cat->sebs_version)
		return 0;
	for (size_t i = 0; i < n; i++) {
		bool needed = !strcmp(table[i].name, "runtime") || !strcmp(table[i].name, "boost") ||
			      !strcmp(table[i].name, "rapidjson");
		for (size_t d = 0; d < b->n_cpp_dependencies && !needed; d++)
			needed = !strcmp(b->cpp_dependencies[d], table[i].name);
		if (!needed)
			continue;
		const char *versions[2] = { cat->sebs_version, cat->previous_major_version };
		for (int v = 0; v < 2 && versions[v]; v++) {
			char *ref = str_printf("%s:%s-%s", cat->docker_repository, table[i].docker_img,
					       versions[v]);
			char *known = ref ? image_known(env, ref, known_current) : NULL;
			char *grown = known ? str_printf("%s;dependency=%s", *identity, known) : NULL;
			free(ref);
			free(known);
			if (!grown)
				return -ENOMEM;
			free(*identity);
			*identity = grown;
		}
	}
	return 0;
}

static int image_identity(const struct target_env *env, const struct catalog *cat,
			  const struct cat_package *pkg, char **identity, bool *known_current)
{
	char *base_id = NULL, *current = NULL, *previous = NULL;
	build_images_known(env->images, pkg->runtime->base_image, &base_id, known_current);
	build_image_names(cat, pkg, &current, &previous);
	const char *repo = repository_of(env, cat);
	/* the tag holds image_tag_prefix and SeBS_version */
	struct image_tag_parts parts = tag_parts(env, cat, pkg);
	char *tag = image_function_tag(&parts);
	*identity = !tag ? NULL
		: str_printf("kind=image;base=%s@%s;builder_image=%s;repository=%s;registry=%s;tag=%s",
			     pkg->runtime->base_image, base_id ? base_id : "unresolved",
			     current ? current : "-", repo ? repo : "-",
			     env->registry ? env->registry : "-", tag);
	free(tag);
	free(base_id);
	free(current);
	free(previous);
	if (*identity && strcmp(pkg->runtime->language, "cpp") == 0 &&
	    add_cpp_dependency_images(env, cat, pkg->benchmark, identity, known_current) < 0) {
		free(*identity);
		*identity = NULL;
	}
	return *identity ? 0 : -ENOMEM;
}

static char *image_extra_dir(const char *platform, const char *language, bool *oom)
{
	char *dir = str_printf("dockerfiles/%s/%s", platform, language);
	*oom = dir == NULL;
	return dir;
}

static void write_log(void *ctx, int stream, const char *data, size_t len)
{
	int fd = *(int *)ctx;
	if (fd >= 0) {
		ssize_t w = write(fd, data, len);
		(void)w;
	}
}

/* The base image must be local: inspect, else pull (it names the failure). */
static int ensure_base_image(struct docker *client, const char *base, int log_fd, char **errmsg)
{
	char *id = NULL, *msg = NULL;
	int rc = docker_image_inspect(client, base, &id, &msg);
	if (rc == -ENOENT) {
		free(msg);
		msg = NULL;
		build_log(log_fd, "pulling base image %s", base);
		rc = docker_image_pull(client, base, NULL, write_log, &log_fd, &msg);
	}
	if (rc < 0)
		*errmsg = str_printf("base image %s is not present and cannot be pulled: %s", base,
				     msg ? msg : strerror(-rc));
	free(id);
	free(msg);
	return rc;
}

struct dependency_probe {
	struct docker *client;
	int log_fd;
};

/* Is a C++ dependency image usable: present, or pulled now (as SeBS does). */
static bool dependency_image_available(void *ctx, const char *image)
{
	struct dependency_probe *p = ctx;
	char *id = NULL, *msg = NULL;
	int rc = docker_image_inspect(p->client, image, &id, &msg);
	if (rc == -ENOENT) {
		free(msg);
		msg = NULL;
		build_log(p->log_fd, "pulling dependency image %s", image);
		rc = docker_image_pull(p->client, image, NULL, write_log, &p->log_fd, &msg);
		if (rc < 0)
			build_log(p->log_fd, "cannot pull %s: %s", image, msg ? msg : strerror(-rc));
	}
	free(id);
	free(msg);
	return rc == 0;
}

/* cpp: Dockerfile.function with its {{DEPENDENCY_IMAGES}} and
 * {{DEPENDENCY_COPIES}} filled for the benchmark (SeBS's
 * CppDependencies.generate_dockerfile), written to path. */
static int write_cpp_dockerfile(struct target_build *tb, const char *template_path,
				const char *repo, const char *path, char **errmsg)
{
	const struct catalog *now = tb->now;
	const struct cat_benchmark *b = tb->now_pkg->benchmark;
	struct dependency_probe probe = { tb->client, tb->log_fd };
	char *tmpl = NULL, *out = NULL, *notes = NULL, *msg = NULL;
	size_t len = 0;
	int rc = read_file(template_path, &tmpl, &len);
	if (rc < 0) {
		*errmsg = str_printf("cannot read %s: %s", template_path, strerror(-rc));
		return rc;
	}
	if (b->cpp_dependencies_problem) {
		rc = -EINVAL;
		*errmsg = strdup(b->cpp_dependencies_problem);
	} else {
		rc = langgen_cpp_dockerfile(tmpl, (const char *const *)b->cpp_dependencies,
					    b->n_cpp_dependencies,
					    now->sebs_version ? now->sebs_version : "",
					    now->previous_major_version,
					    /* where BASE_REPOSITORY points, as the build images */
					    now->docker_repository ? now->docker_repository : repo,
					    dependency_image_available, &probe, &out, &notes, &msg);
		if (rc < 0)
			*errmsg = str_printf("%s/config.json: %s", b->path, msg ? msg : strerror(-rc));
	}
	if (rc == 0) {
		if (notes && *notes)
			build_log(tb->log_fd, "%s", notes);
		build_log(tb->log_fd, "Dockerfile.function: dependency images filled in for %zu"
			  " cpp_dependencies", b->n_cpp_dependencies);
		if ((rc = write_file_atomic(path, out, strlen(out))) < 0)
			*errmsg = str_printf("cannot write %s: %s", path, strerror(-rc));
	}
	free(tmpl);
	free(out);
	free(notes);
	free(msg);
	return rc;
}

/* A row whose image vanished from the daemon, inputs unchanged, and a pushed
 * digest: pull it back, with the registry's credentials as a push has them,
 * instead of rebuilding.  0 (and r filled) when that worked. */
static int restore_from_registry(struct target_build *tb, struct target_result *r)
{
	const struct cache_entry *prev = tb->previous;
	struct docker *client = tb->client;
	int log_fd = tb->log_fd;
	if (!prev || !prev->has_package || !prev->digest || !prev->image ||
	    !prev->input_hash || strcmp(prev->input_hash, tb->input_hash) != 0)
		return -ENOENT;
	char *msg = NULL, *id = NULL, *auth = NULL;
	char *image = strdup(prev->image);
	char *colon = image ? strrchr(image, ':') : NULL;
	build_log(log_fd, "image %s is gone from the daemon; pulling %s", prev->image, prev->digest);
	int rc = image ? 0 : -ENOMEM;
	if (rc == 0 && prev->registry)
		rc = image_registry_auth(prev->registry, "pull", log_fd, &auth, &msg);
	if (rc == 0)
		rc = docker_image_pull(client, prev->digest, auth, write_log, &log_fd, &msg);
	image_registry_auth_free(auth);
	if (rc == 0 && colon) {
		*colon = '\0';
		rc = docker_image_tag(client, prev->digest, image, colon + 1, &msg);
		*colon = ':';
	}
	if (rc == 0)
		rc = docker_image_inspect(client, image, &id, &msg);
	if (rc == 0) {
		r->res.image = image;
		r->res.image_id = id;
		r->res.digest = strdup(prev->digest);
		r->res.size = prev->image_size;
		r->registry = prev->registry;
		r->seconds = prev->build_seconds;
		r->restored = true;
		image = id = NULL;
		rc = r->res.digest ? 0 : -ENOMEM;
	}
	if (rc < 0)
		build_log(log_fd, "cannot restore %s (%s): rebuilding", prev->digest,
			  msg ? msg : strerror(-rc));
	else
		build_log(log_fd, "restored %s from %s: no rebuild needed", r->res.image, prev->digest);
	free(msg);
	free(id);
	free(image);
	return rc;
}

/* The build arguments of Dockerfile.function (SEBS.md section 7); malloc'd
 * strings in args[0..IMAGE_BUILDARGS-1], args[IMAGE_BUILDARGS] NULL. */
#define IMAGE_BUILDARGS 5
static int image_buildargs(const struct catalog *now, const struct cat_package *pkg,
			   char *args[IMAGE_BUILDARGS + 1])
{
	const struct cat_runtime *rt = pkg->runtime;
	char *current = NULL, *previous = NULL;
	build_image_names(now, pkg, &current, &previous);
	args[0] = str_printf("VERSION=%s", rt->version);
	args[1] = str_printf("BASE_IMAGE=%s", rt->base_image);
	args[2] = str_printf("TARGET_ARCHITECTURE=%s", rt->arch);
	args[3] = str_printf("BASE_IMAGE_BUILDER=%s", current ? current : "");
	args[4] = str_printf("BASE_REPOSITORY=%s", now->docker_repository ? now->docker_repository : "");
	args[IMAGE_BUILDARGS] = NULL;
	free(current);
	free(previous);
	for (int i = 0; i < IMAGE_BUILDARGS; i++)
		if (!args[i])
			return -ENOMEM;
	return 0;
}

static void image_result_free(struct target_result *r)
{
	if (!r)
		return;
	image_build_result_clear(&r->res);
	free(r);
}

static int image_build_target(struct target_build *tb, struct target_result **out,
			      char **errmsg)
{
	const struct target_env *env = tb->env;
	struct docker *client = tb->client;
	const struct cat_package *now_pkg = tb->now_pkg;
	const struct catalog *now = tb->now;
	const struct cat_runtime *rt = now_pkg->runtime;
	int log_fd = tb->log_fd;
	const char *repo = repository_of(env, now);
	struct target_result *r = calloc(1, sizeof(*r));
	char *dockerfile = str_printf("%s/dockerfiles/%s/%s/Dockerfile.function", now->root,
				      now_pkg->platform->name, rt->language);
	struct image_tag_parts parts = tag_parts(env, now, now_pkg);
	char *tag = image_function_tag(&parts);
	char *name = NULL, *workdir = NULL, *version = NULL, *msg = NULL;
	char *args[IMAGE_BUILDARGS + 1] = { NULL };
	int rc = 0;
	*out = NULL;

	build_log(log_fd, "building image %s:%s for %s/%s/%s", repo ? repo : "?", tag ? tag : "?",
		  now_pkg->platform->name, rt->dirname, now_pkg->benchmark->name);
	if (!dockerfile || !tag || !r) {
		rc = -ENOMEM;
	} else if (!client) {
		rc = -ENOMEM;
		*errmsg = strdup("cannot create a Docker client");
	} else if ((rc = target_image_name(env, now, now_pkg, &name, errmsg)) < 0) {
		/* no repository, or a tag Docker refuses: said before anything runs */
	} else if (!path_is_file(dockerfile)) {
		rc = -ENOENT;
		*errmsg = str_printf("%s is missing", dockerfile);
	} else if ((rc = docker_ping(client, &version, &msg)) < 0) {
		*errmsg = str_printf("Docker daemon at %s does not answer: %s", docker_endpoint(client),
				     msg ? msg : strerror(-rc));
	} else if (restore_from_registry(tb, r) == 0) {
		goto out;
	} else if ((rc = ensure_base_image(client, rt->base_image, log_fd, errmsg)) == 0) {
		/* the base image may have just arrived: its ID is part of the inputs */
		build_images_refresh(env->images, client);
		rc = tb->recheck_inputs(tb, errmsg);
	}
	if (rc == 0)
		rc = image_buildargs(now, now_pkg, args);
	/* inputs that change during the build: see zip_build */
	for (int attempt = 1; rc == 0; attempt++) {
		if ((rc = cache_make_workdir(env->cache, &workdir)) < 0) {
			*errmsg = str_printf("cannot create a work folder: %s", strerror(-rc));
			break;
		}
		struct pipeline_request preq = { .cat = now, .pkg = now_pkg,
						 .installer = INSTALLER_NONE, .workdir = workdir,
						 .out_fd = -1, .log_fd = log_fd,
						 .cancel_fd = tb->cancel_fd, .deadline = tb->deadline,
						 .timeout = tb->timeout };
		rc = pipeline_prepare(&preq, errmsg);
		char *generated = NULL;
		if (rc == 0 && strcmp(rt->language, "cpp") == 0) {
			generated = str_printf("%s.Dockerfile", workdir);
			rc = generated ? write_cpp_dockerfile(tb, dockerfile, repo, generated, errmsg)
				       : -ENOMEM;
		}
		if (rc == 0) {
			struct image_build_request req = {
				.docker = client, .context_dir = workdir,
				.dockerfile = generated ? generated : dockerfile,
				.buildargs = (const char *const *)args, .repository = repo, .tag = tag,
				.registry = env->registry, .log_fd = log_fd,
			};
			image_build_result_clear(&r->res);
			rc = image_build(&req, &r->res, errmsg);
		}
		if (rc == 0)
			rc = target_cancelled(tb, errmsg);
		rm_rf(workdir);
		free(workdir);
		workdir = NULL;
		if (generated)
			unlink(generated);
		free(generated);
		int moved = rc == 0 ? tb->inputs_moved(tb, errmsg) : 0;
		if (moved < 0)
			rc = moved;
		if (moved != 1 || attempt >= MAX_BUILD_RUNS) {
			if (moved == 1)
				build_log(log_fd, "warning: the build changes its own inputs; the image"
					  " is recorded as built from them as they are now");
			break;
		}
		build_log(log_fd, "building again from the inputs as they are now");
	}
	r->registry = env->registry;
out:
	if (workdir)
		rm_rf(workdir);
	for (int i = 0; i < IMAGE_BUILDARGS; i++)
		free(args[i]);
	free(workdir);
	free(version);
	free(msg);
	free(dockerfile);
	free(tag);
	free(name);
	if (rc < 0) {
		image_result_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

static int image_publish(struct target_build *tb, struct target_result *r,
			 struct cache_entry *out, char **errmsg)
{
	double seconds = r->restored ? r->seconds : target_now_seconds() - tb->started;
	struct cache_image_info info = { r->res.image, r->res.image_id, r->res.digest, r->registry,
					 r->res.size };
	int rc = cache_publish_image(tb->env->cache, &tb->key, tb->input_hash, *tb->manifest_json,
				     seconds, &info, out);
	if (rc < 0) {
		*errmsg = str_printf("cannot record the image: %s", cache_strerror(rc));
		return rc;
	}
	if (!r->restored)
		build_log(tb->log_fd, "build succeeded in %.2f s: image %s (%s), %s",
			  out->build_seconds, r->res.image, r->res.image_id,
			  r->res.digest ? r->res.digest : "not pushed");
	return 0;
}

const struct target_ops target_image_ops = {
	.name = "image",
	.identity = image_identity,
	.extra_dir = image_extra_dir,
	.build = image_build_target,
	.publish = image_publish,
	.result_free = image_result_free,
};
