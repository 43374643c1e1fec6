// SPDX-License-Identifier: MIT
/*
 * The fuzz harnesses without libFuzzer: each argument, a file or a
 * directory of files, is run once through LLVMFuzzerTestOneInput(). A
 * build without clang replays the seed corpora (and the inputs kept
 * from crashes) with it; ZC_MODEL_TRACE=1 prints fuzz-model's steps.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	static uint8_t buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		return 1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

int main(int argc, char **argv)
{
	int bad = 0, runs = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		struct dirent **ents;
		int n;

		if (stat(argv[i], &st)) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i]);
			runs++;
			continue;
		}
		n = scandir(argv[i], &ents, NULL, alphasort);
		for (int k = 0; k < n; k++) {
			char path[4096];

			if (ents[k]->d_name[0] != '.') {
				snprintf(path, sizeof(path), "%s/%s", argv[i],
					 ents[k]->d_name);
				bad |= run_file(path);
				runs++;
			}
			free(ents[k]);
		}
		free(ents);
	}
	if (!runs) {
		fprintf(stderr, "replay: no input\n");
		return 1;
	}
	return bad;
}
