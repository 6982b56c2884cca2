/*
 * replay_main.c - runs a libFuzzer harness over every file of a corpus
 * directory (or over the files given), so the committed corpus replays in
 * `meson test` without clang's fuzzer runtime. Fails if a directory is empty.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path, double *worst_ms)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
	if (!data || (n > 0 && fread(data, 1, (size_t)n, f) != (size_t)n)) {
		fclose(f);
		free(data);
		return -1;
	}
	fclose(f);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	LLVMFuzzerTestOneInput(data, (size_t)n);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	if (ms > *worst_ms)
		*worst_ms = ms;
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned runs = 0;
	double worst = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i], &worst) < 0)
				return 1;
			runs++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			if (run_file(path, &worst) < 0)
				return 1;
			runs++;
		}
		if (d)
			closedir(d);
	}
	printf("replayed %u inputs, slowest %.3f ms\n", runs, worst);
	return runs ? 0 : 1;
}
