/*
 * replay.c - runs a fuzz harness over files, without libFuzzer.
 *
 * `replay DIR|FILE...` feeds every regular file named, and every regular
 * file of every directory named (in name order, not recursing), to
 * LLVMFuzzerTestOneInput, one at a time. `make check` runs it over the
 * committed corpus and the regressions (testdata/fuzz/), built with gcc,
 * and the CI runs it under AddressSanitizer and UBSan: every input that
 * ever crashed a harness must keep passing. A failing input ends the run
 * from inside the harness (abort, a signal, a sanitizer report); the
 * driver then names the file on stderr. Exit status 0 when every input
 * passed, 2 when a file could not be read.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Set by the sanitizers' runtime when linked in (-fsanitize=...). */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static const char *current; /* the input being run */

static void name_current(void)
{
	if (!current)
		return;
	/* write(2) only: this may run in a signal handler. */
	if (write(2, "replay: failed on ", 18) < 0 ||
	    write(2, current, strlen(current)) < 0 || write(2, "\n", 1) < 0)
		return;
}

static void on_signal(int sig)
{
	name_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int replay_file(const char *path, size_t *count)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		fprintf(stderr, "replay: cannot read '%s': %s\n", path,
			strerror(errno));
		return -1;
	}
	do {
		if (len == cap) {
			unsigned char *nb = realloc(buf, cap = cap * 2 + 4096);

			if (!nb) {
				fprintf(stderr, "replay: out of memory\n");
				exit(2);
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n);
	if (ferror(f)) {
		fprintf(stderr, "replay: cannot read '%s'\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	if (getenv("REPLAY_VERBOSE"))
		fprintf(stderr, "replay: %s\n", path);
	current = path;
	LLVMFuzzerTestOneInput(buf, len);
	current = NULL;
	free(buf);
	++*count;
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay_dir(const char *dir, size_t *count)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, by_name), status = 0;

	if (n < 0) {
		fprintf(stderr, "replay: cannot list '%s': %s\n", dir,
			strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *path = NULL;
		struct stat st;

		if (ents[i]->d_name[0] != '.' &&
		    asprintf(&path, "%s/%s", dir, ents[i]->d_name) > 0 &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    replay_file(path, count))
			status = -1;
		free(path);
		free(ents[i]);
	}
	free(ents);
	return status;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int status = 0;

	static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};

	/* A sanitizer reports faults itself (it owns those signals), then
	 * calls back; a failed FUZZ_CHECK aborts in every build. */
	signal(SIGABRT, on_signal);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(name_current);
	else
		for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
			signal(sigs[i], on_signal);
	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: cannot find '%s'\n", argv[i]);
			status = 2;
		} else if (S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count)
					       : replay_file(argv[i], &count)) {
			status = 2;
		}
	}
	printf("replay: %zu inputs passed\n", count);
	return status;
}
