/*
 * cli_progress.c - progress on stderr for long work, when stderr is a
 * terminal.
 *
 * One line, rewritten in place ("\r...\033[K") at most ten times a second,
 * and only once the work has taken longer than half a second, so quick
 * commands print nothing; erased when the work is done, so what follows
 * (tables, messages) starts on a clean line. Never when stderr is a file
 * or a pipe: scripts and CI logs stay clean.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static struct {
	const char *what; /* the work being shown; NULL: none */
	uint64_t start_ms, last_ms, delay_ms;
	bool shown;
} pr;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void show(const char *what, uint64_t done, uint64_t total)
{
	uint64_t t = now_ms();

	if (!pr.what || strcmp(pr.what, what) != 0) {
		if (pr.shown)
			fputs("\r\033[K", stderr);
		pr.what = what;
		pr.start_ms = t;
		pr.last_ms = 0;
		pr.shown = false;
	}
	if (total && done >= total) {
		if (pr.shown)
			fputs("\r\033[K", stderr);
		pr.what = NULL;
		pr.shown = false;
		return;
	}
	if (t - pr.start_ms < pr.delay_ms || (pr.shown && t - pr.last_ms < 100))
		return;
	if (total)
		fprintf(stderr, "\rmemprof: %s: %llu%% (%llu of %llu)\033[K",
			what, (unsigned long long)(done * 100 / total),
			(unsigned long long)done, (unsigned long long)total);
	else
		fprintf(stderr, "\rmemprof: %s: %llu\033[K", what,
			(unsigned long long)done);
	fflush(stderr);
	pr.shown = true;
	pr.last_ms = t;
}

void cli_progress_setup(void)
{
	const char *d = getenv("MEMPROF_PROGRESS_DELAY_MS");
	char *end;

	if (!cli_stderr_is_tty())
		return;
	pr.delay_ms = 500;
	if (d && *d) {
		unsigned long v = strtoul(d, &end, 10);
		if (*end == '\0')
			pr.delay_ms = v;
	}
	mp_set_progress(show);
}

void cli_progress_off(void)
{
	cli_progress_done();
	mp_set_progress(NULL);
}

void cli_progress_done(void)
{
	if (pr.shown)
		fputs("\r\033[K", stderr);
	pr.what = NULL;
	pr.shown = false;
}
