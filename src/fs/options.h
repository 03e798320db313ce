/*
 * options.h - the command line of sebsfs.
 *
 *   sebsfs [options] [SEBS_ROOT] MOUNTPOINT
 *
 * sebsfs's own -o options are parsed with fuse_opt and removed; what remains
 * (-f, -d, -s, -o of libfuse and the kernel) goes to fuse_parse_cmdline and
 * fuse_session_new.  Validation happens here, before anything is mounted.
 */
#ifndef SEBSFS_OPTIONS_H
#define SEBSFS_OPTIONS_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>

#include "builder.h"
#include "pipeline.h"

struct sebsfs_options {
	char *root;          /* absolute SEBS_ROOT (malloc'd) */
	char *cache_dir;     /* absolute (malloc'd) */
	char *builder;       /* "auto" | "host" | "none" as given */
	enum installer_kind installer; /* resolved */
	unsigned jobs;
	char *arch;          /* "x64" | "arm64" */
	bool stat_builds;
	char *repository;    /* function images: NULL = systems.json docker_repository */
	char *registry;      /* function images: push target, NULL = none */
	char *image_tag_prefix; /* function image tags: SeBS's image_tag_prefix, NULL = none */
	unsigned build_timeout; /* seconds; 0 = no limit */
	enum verify_mode verify;
	unsigned scrub;      /* seconds; 0 = no background scrub */
	int64_t cache_max;   /* bytes of package files and layers to keep; 0 = no limit */
	bool no_dep_layers;  /* -o dep_layers=off */
	bool input_watch;    /* input_watch=on (default) */
	bool no_views;       /* views=off: no <benchmark>/ folders */
	enum size_limits_mode size_limits_mode; /* -o size_limits= (default warn) */
	struct size_limits size_limits; /* defaults, then -o size_limits_file= over them */
	char *remote_cache;  /* -o remote_cache=REGISTRY/REPOSITORY, NULL = none */
	enum remote_cache_mode remote_cache_mode; /* default readwrite */
	char *remote_cache_certs; /* -o remote_cache_certs=DIR, NULL = /etc/docker/certs.d */
	struct fuse_cmdline_opts cmd; /* mountpoint, foreground, debug, singlethread, ... */
};

/* Parses argv into opts and args (args keeps what libfuse should see).
 * Returns 0 to go on mounting, 1 when the program should exit 0 (help,
 * version), or -1 after printing "sebsfs: <reason>" on stderr. */
int options_parse(int argc, char *argv[], struct fuse_args *args, struct sebsfs_options *opts);
void options_free(struct sebsfs_options *opts);

#endif
