/*
 * replay.c - runs saved inputs through a fuzz target without libFuzzer.
 *
 * Usage: replay_<target> PATH...  Each PATH is an input file or a folder of
 * them (not recursive; dot files are skipped); a PATH after the first may be
 * missing (a target without saved crashers has no regressions folder).  Every input goes through
 * LLVMFuzzerTestOneInput once; a broken property aborts, as under libFuzzer.
 * Built with the normal compiler for the unit suite, so every run of the
 * tests replays the corpus and the regressions.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "fuzz_common.h"

static int replay_file(const char *path)
{
	char *data = NULL;
	size_t len = 0;
	int rc = read_file(path, &data, &len);

	if (rc != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(-rc));
		return rc;
	}
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	size_t count = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE-OR-FOLDER...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		char **names = NULL;
		size_t n = 0;
		int rc;

		if (!path_exists(argv[i]) && i > 1) {
			/* regressions/<target>/ exists once a crasher was saved */
			fprintf(stderr, "replay: %s: none\n", argv[i]);
			continue;
		}
		if (!path_is_dir(argv[i])) {
			if (replay_file(argv[i]) != 0)
				return 1;
			count++;
			continue;
		}
		rc = list_dir_sorted(argv[i], &names, &n);
		if (rc != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(-rc));
			return 1;
		}
		for (size_t k = 0; k < n; k++) {
			char *path;

			if (names[k][0] == '.')
				continue;
			path = path_join(argv[i], names[k]);
			if (!path || replay_file(path) != 0) {
				free(path);
				str_list_free(names, n);
				return 1;
			}
			free(path);
			count++;
		}
		str_list_free(names, n);
	}
	if (count == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	printf("replay: %zu inputs, no property broken\n", count);
	return 0;
}
