/*
 * test_cli_progress.c - progress on stderr: shown when stderr is a
 * terminal (a pseudo-terminal here), erased before the command's own
 * output ends, never written to a file or a pipe.
 */
#include <errno.h>
#include <pty.h>

#include "testutil.h"

TestSuite(cli_progress, .timeout = 60);

static char *record_leaks_helper(const char *dir)
{
	char *snap = tu_path(dir, "r.memprof");
	char *argv[] = {(char *)TU_MEMPROF,
			(char *)"record",
			(char *)"-q",
			(char *)"-o",
			snap,
			(char *)"--",
			(char *)TU_HELPER("leak_cycles"),
			NULL};
	cr_assert_eq(tu_run(argv, NULL, NULL, NULL), 0);
	return snap;
}

/*
 * Runs argv with stderr on a pseudo-terminal and stdout to out; returns
 * what the terminal received (NUL-terminated) and sets *status.
 */
static char *run_on_tty(char *const argv[], const char *out, int *status)
{
	int master;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	cr_assert_not_null(buf);
	fflush(NULL);
	pid_t pid = forkpty(&master, NULL, NULL, NULL);
	cr_assert(pid >= 0, "forkpty: %s", strerror(errno));
	if (pid == 0) {
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o < 0)
			_exit(126);
		dup2(o, 1);
		putenv((char *)"MEMPROF_PROGRESS_DELAY_MS=0");
		execv(argv[0], argv);
		_exit(127);
	}
	for (;;) {
		if (len + 1024 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		ssize_t n = read(master, buf + len, cap - len - 1);
		if (n <= 0)
			break; /* EIO once the child closed the terminal */
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(master);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return buf;
}

Test(cli_progress, leak_analysis_shows_progress_on_a_terminal_then_erases_it)
{
	char *d = tu_tmpdir(), *snap = record_leaks_helper(d);
	char *out = tu_path(d, "out");
	char *argv[] = {(char *)TU_MEMPROF, (char *)"leaks", snap, NULL};
	int st;
	char *tty = run_on_tty(argv, out, &st);

	cr_assert_eq(st, 0, "%s", tty);
	cr_expect(strstr(tty,
			 "\rmemprof: analysing the heap graph: 0% (0 of 4)") !=
			  NULL,
		  "no progress line on the terminal: '%s'", tty);
	/* The last thing on the terminal is the erased line. */
	size_t n = strlen(tty);
	cr_expect(n >= 4 && strcmp(tty + n - 4, "\r\033[K") == 0,
		  "progress not erased at the end: '%s'", tty);
	char *o = tu_read(out, NULL);
	cr_assert_not_null(o);
	cr_expect(strstr(o, "LEAK SUMMARY:") != NULL, "%s", o);
	cr_expect(strstr(o, "memprof: analysing") == NULL,
		  "progress went to stdout");
}

Test(cli_progress, nothing_when_stderr_is_a_file)
{
	char *d = tu_tmpdir(), *snap = record_leaks_helper(d);
	char *out = tu_path(d, "out"), *err = tu_path(d, "err");
	char *argv[] = {(char *)TU_MEMPROF, (char *)"leaks", snap, NULL};
	const char *env[] = {"MEMPROF_PROGRESS_DELAY_MS=0", NULL};

	cr_assert_eq(tu_run(argv, env, out, err), 0);
	char *e = tu_read(err, NULL);
	cr_assert_not_null(e);
	cr_expect_str_empty(e, "stderr: '%s'", e);
}

Test(cli_progress, symbolizing_shows_progress_on_a_terminal_unless_quiet)
{
	char *d = tu_tmpdir(), *snap = tu_path(d, "r.memprof");
	char *out = tu_path(d, "out");
	char *rec[] = {(char *)TU_MEMPROF,
		       (char *)"record",
		       (char *)"-q",
		       (char *)"--no-symbols",
		       (char *)"-o",
		       snap,
		       (char *)"--",
		       (char *)TU_HELPER("alloc_c"),
		       NULL};
	cr_assert_eq(tu_run(rec, NULL, NULL, NULL), 0);

	char *argv[] = {(char *)TU_MEMPROF, (char *)"symbolize", snap, NULL};
	int st;
	char *tty = run_on_tty(argv, out, &st);
	cr_assert_eq(st, 0, "%s", tty);
	cr_expect(strstr(tty, "\rmemprof: symbolizing addresses: 0% (0 of ") !=
			  NULL,
		  "no progress line: '%s'", tty);
	cr_expect(strstr(tty, "\r\033[K") != NULL, "not erased: '%s'", tty);

	/* A fresh unsymbolized file, so that -q has the same work to do. */
	cr_assert_eq(tu_run(rec, NULL, NULL, NULL), 0);
	char *quiet[] = {(char *)TU_MEMPROF, (char *)"symbolize", (char *)"-q",
			 snap, NULL};
	tty = run_on_tty(quiet, out, &st);
	cr_assert_eq(st, 0, "%s", tty);
	cr_expect_str_empty(tty, "-q printed '%s'", tty);
}
