/*
 * test_cli_snapshot.c - `memprof snapshot PID` (asking a running program
 * for a snapshot) and the timeline in `memprof info`.
 *
 * Most tests stand in for the shim with a shell that traps the signal and
 * writes FILE.N.memprof the way the shim does (a temporary name, then
 * rename), with MEMPROF_SNAPSHOT_SIGNAL and MEMPROF_OUTPUT set by hand;
 * one records a real program with --snapshot-signal.
 */
#include <errno.h>
#include <signal.h>
#include <time.h>

#include "testutil.h"

TestSuite(cli_snapshot, .timeout = 60);

#define GOLDEN_1_2 MP_SOURCE_DIR "/testdata/format/golden-1.2.memprof"

/* Starts argv in dir (may be NULL) with only env's MEMPROF_* variables,
 * the signals of ignore (0-terminated, may be NULL) ignored, output to
 * /dev/null. Does not wait. */
static pid_t spawn(const char *dir, char *const argv[], const char *const env[],
		   const int *ignore)
{
	fflush(NULL);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		if (dir && chdir(dir) != 0)
			_exit(126);
		unsetenv("MEMPROF_SNAPSHOT_SIGNAL");
		unsetenv("MEMPROF_OUTPUT");
		unsetenv("MEMPROF_PID");
		unsetenv("LD_PRELOAD");
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		for (size_t i = 0; ignore && ignore[i]; i++)
			signal(ignore[i], SIG_IGN);
		int n = open("/dev/null", O_RDWR);
		dup2(n, 0);
		dup2(n, 1);
		dup2(n, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
	nanosleep(&ts, NULL);
}

/* Waits until pid has exec'd (it is no longer this program, and its
 * environment holds want) and, when sig is not 0, has a handler for sig. */
static void wait_ready(pid_t pid, const char *want, int sig)
{
	char path[64], self[4096], exe[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	cr_assert_gt(sl, 0);
	self[sl] = '\0';
	for (int i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
		ssize_t n = readlink(path, exe, sizeof(exe) - 1);
		if (n <= 0 || (exe[n] = '\0', !strcmp(exe, self))) {
			sleep_ms(25);
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
		size_t len = 0;
		char *env = tu_read(path, &len);
		bool ok = false;
		for (size_t j = 0; env && j < len; j += strlen(env + j) + 1)
			if (!strncmp(env + j, want, strlen(want)))
				ok = true;
		free(env);
		if (ok && sig) {
			snprintf(path, sizeof(path), "/proc/%d/status",
				 (int)pid);
			char *st = tu_read(path, NULL);
			const char *p = st ? strstr(st, "\nSigCgt:") : NULL;
			ok = p && (strtoull(p + 8, NULL, 16) >> (sig - 1) & 1);
			free(st);
		}
		if (ok)
			return;
		sleep_ms(25);
	}
	cr_assert_fail("process %d never got ready", (int)pid);
}

/* Runs memprof with args; stdout and stderr end up in *out and *err. */
static int memprof(const char *dir, char **out, char **err, ...)
{
	char *argv[16] = {(char *)TU_MEMPROF};
	va_list ap;
	va_start(ap, err);
	for (int i = 1; i < 15; i++)
		if (!(argv[i] = va_arg(ap, char *)))
			break;
	va_end(ap);
	char *o = tu_path(dir, "memprof.out"), *e = tu_path(dir, "memprof.err");
	int st = tu_run(argv, NULL, o, e);
	*out = tu_read(o, NULL);
	*err = tu_read(e, NULL);
	free(o);
	free(e);
	return st;
}

/*
 * A stand-in for a program under the shim: on signal sig it writes a copy
 * of the golden 1.2 snapshot to OUT.N.memprof, N = next, next + 1, ...
 * (through a temporary name and a rename, like the shim).
 */
static pid_t fake_program(const char *dir, const char *output, int sig,
			  int next, const char *const env[])
{
	char *script =
		tu_fmt("n=%d; trap 'cp %s %s.$n.memprof.tmp && mv "
		       "%s.$n.memprof.tmp %s.$n.memprof; n=$((n+1))' %d; "
		       "while :; do sleep 0.02; done",
		       next, GOLDEN_1_2, output, output, output, sig);
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", script, NULL};
	pid_t pid = spawn(dir, argv, env, NULL);
	wait_ready(pid, "MEMPROF_", sig);
	free(script);
	return pid;
}

Test(cli_snapshot, help_lists_the_options)
{
	char *d = tu_tmpdir(), *out, *err;
	cr_assert_eq(memprof(d, &out, &err, "snapshot", "--help", NULL), 0);
	cr_expect(strstr(out, "usage: memprof snapshot [options] PID"), "%s",
		  out);
	cr_expect(strstr(out, "--signal SIG"), "%s", out);
	cr_expect(strstr(out, "--wait SECONDS"), "%s", out);
	cr_assert_eq(memprof(d, &out, &err, "help", "snapshot", NULL), 0);
	cr_expect(strstr(out, "--wait"), "%s", out);
	cr_assert_eq(memprof(d, &out, &err, "--help", NULL), 0);
	cr_expect(strstr(out, "  snapshot "), "%s", out);
}

Test(cli_snapshot, rejects_bad_usage)
{
	char *d = tu_tmpdir(), *out, *err;
	cr_expect_eq(memprof(d, &out, &err, "snapshot", NULL), 2);
	cr_expect_str_eq(err, "memprof: snapshot: no process id given; see "
			      "'memprof snapshot --help'\n");
	cr_expect_eq(memprof(d, &out, &err, "snapshot", "abc", NULL), 2);
	cr_expect_str_eq(err, "memprof: snapshot: 'abc' is not a process id\n");
	cr_expect_eq(memprof(d, &out, &err, "snapshot", "0", NULL), 2);
	cr_expect_eq(memprof(d, &out, &err, "snapshot", "-5", NULL), 2);
	cr_expect_eq(memprof(d, &out, &err, "snapshot", "1", "2", NULL), 2);
	cr_expect_str_eq(err, "memprof: snapshot: one process id only, got "
			      "'2' too\n");
	cr_expect_eq(
		memprof(d, &out, &err, "snapshot", "--wait", "-1", "1", NULL),
		2);
	cr_expect_str_eq(err, "memprof: snapshot: --wait takes a number of "
			      "seconds, not '-1'\n");
	cr_expect_eq(
		memprof(d, &out, &err, "snapshot", "--wait", "soon", "1", NULL),
		2);
	cr_expect_eq(memprof(d, &out, &err, "snapshot", "--bogus", "1", NULL),
		     2);
	cr_expect(strstr(err, "unknown option '--bogus'"), "%s", err);
	cr_expect_eq(memprof(d, &out, &err, "snapshot", "1", "--signal", NULL),
		     2);
	cr_expect(strstr(err, "needs a value"), "%s", err);
}

Test(cli_snapshot, rejects_unknown_signal_names)
{
	char *d = tu_tmpdir(), *out, *err;
	const char *bad[] = {"BOGUS",  "SIG",	  "USR3",	"0",  "-1", "",
			     "RTMIN+", "RTMIN+x", "RTMIN+1000", "65", "12x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(memprof(d, &out, &err, "snapshot", "--signal",
				     bad[i], "1", NULL),
			     2, "--signal '%s'", bad[i]);
		char *want = tu_fmt("memprof: snapshot: '%s' is not a signal",
				    bad[i]);
		cr_expect(!strncmp(err, want, strlen(want)), "%s", err);
		free(want);
	}
}

/* Every spelling reaches the process; it ignores them all, so it lives. */
Test(cli_snapshot, accepts_signal_names_and_numbers)
{
	char *d = tu_tmpdir(), *out, *err;
	int ignore[] = {SIGUSR1, SIGUSR2, SIGRTMIN + 2, SIGURG, 0};
	char *argv[] = {(char *)"sleep", (char *)"30", NULL};
	pid_t pid = spawn(NULL, argv, NULL, ignore);
	wait_ready(pid, "", 0);
	char *p = tu_fmt("%d", (int)pid), *num = tu_fmt("%d", SIGUSR2);
	const char *names[] = {"USR1", "USR2", "SIGUSR2", "sigusr1",
			       num,    "URG",  "RTMIN+2", "SIGRTMIN+2"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cr_expect_eq(memprof(d, &out, &err, "snapshot", "--wait", "0",
				     "--signal", names[i], p, NULL),
			     0, "--signal %s: %s", names[i], err);
		cr_expect_str_eq(out, "");
		cr_expect_str_eq(err, "");
	}
	cr_expect_eq(waitpid(pid, NULL, WNOHANG), 0, "the process died");
	stop(pid);
}

Test(cli_snapshot, reports_a_missing_process)
{
	char *d = tu_tmpdir(), *out, *err;
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	char *p = tu_fmt("%d", (int)pid);
	cr_expect_eq(memprof(d, &out, &err, "snapshot", p, NULL), 2);
	char *want = tu_fmt("memprof: no process %d\n", (int)pid);
	cr_expect_str_eq(err, want);
	cr_expect_eq(
		memprof(d, &out, &err, "snapshot", "--signal", "USR2", p, NULL),
		2);
	cr_expect_str_eq(err, want);
	cr_expect_eq(memprof(d, &out, &err, "snapshot", "2147483647", NULL), 2);
	cr_expect_str_eq(err, "memprof: no process 2147483647\n");
}

Test(cli_snapshot, refuses_a_process_not_started_for_snapshots)
{
	char *d = tu_tmpdir(), *out, *err;
	const char *env[] = {"MEMPROF_OUTPUT=/nowhere/x.memprof", NULL};
	char *argv[] = {(char *)"sleep", (char *)"30", NULL};
	pid_t pid = spawn(NULL, argv, env, NULL);
	wait_ready(pid, "MEMPROF_OUTPUT=", 0);
	char *p = tu_fmt("%d", (int)pid);
	cr_expect_eq(memprof(d, &out, &err, "snapshot", p, NULL), 2);
	char *want = tu_fmt("memprof: process %d was not started with 'memprof "
			    "record --snapshot-signal'\n",
			    (int)pid);
	cr_expect_str_eq(err, want);
	cr_expect_str_eq(out, "");
	cr_expect_eq(waitpid(pid, NULL, WNOHANG), 0, "the process died");
	stop(pid);
}

/* The variable is there but nothing catches the signal (the shim is not
 * up yet, say): sending it would kill the program. */
Test(cli_snapshot, does_not_send_a_signal_nobody_catches)
{
	char *d = tu_tmpdir(), *out, *err;
	char *sig = tu_fmt("MEMPROF_SNAPSHOT_SIGNAL=%d", SIGUSR2);
	const char *env[] = {sig, NULL};
	char *argv[] = {(char *)"sleep", (char *)"30", NULL};
	pid_t pid = spawn(NULL, argv, env, NULL);
	wait_ready(pid, "MEMPROF_SNAPSHOT_SIGNAL=", 0);
	char *p = tu_fmt("%d", (int)pid);
	cr_expect_eq(memprof(d, &out, &err, "snapshot", p, NULL), 2);
	char *want = tu_fmt("memprof: process %d does not catch signal %d", pid,
			    SIGUSR2);
	cr_expect(!strncmp(err, want, strlen(want)), "%s", err);
	cr_expect_eq(waitpid(pid, NULL, WNOHANG), 0, "the process died");
	stop(pid);

	/* A bad value is reported as such. */
	const char *env2[] = {"MEMPROF_SNAPSHOT_SIGNAL=USR2", NULL};
	pid = spawn(NULL, argv, env2, NULL);
	wait_ready(pid, "MEMPROF_SNAPSHOT_SIGNAL=", 0);
	p = tu_fmt("%d", (int)pid);
	cr_expect_eq(memprof(d, &out, &err, "snapshot", p, NULL), 2);
	want = tu_fmt("memprof: process %d has a bad MEMPROF_SNAPSHOT_SIGNAL "
		      "'USR2'\n",
		      (int)pid);
	cr_expect_str_eq(err, want);
	stop(pid);
}

/* The signal and the output come from the environment; the file that
 * was there before the signal is not the answer. */
Test(cli_snapshot, waits_for_the_new_numbered_file)
{
	char *d = tu_tmpdir(), *out, *err;
	char *run = tu_path(d, "run");
	char *sig = tu_fmt("MEMPROF_SNAPSHOT_SIGNAL=%d", SIGUSR1);
	char *o = tu_fmt("MEMPROF_OUTPUT=%s.memprof", run);
	const char *env[] = {sig, o, NULL};
	/* Snapshots 1 and 2 exist already; also files that only look
	 * alike. */
	const char *old[] = {"run.1.memprof", "run.2.memprof",
			     "run.memprof",   "run.03.memprof",
			     "run.x.memprof", "run.4.memprof.tmp.1.0",
			     "runs.5.memprof"};
	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
		char *f = tu_path(d, old[i]);
		FILE *fp = fopen(f, "w");
		cr_assert_not_null(fp);
		fclose(fp);
		free(f);
	}
	pid_t pid = fake_program(d, run, SIGUSR1, 3, env);
	char *p = tu_fmt("%d", (int)pid);

	cr_expect_eq(memprof(d, &out, &err, "snapshot", p, NULL), 0, "%s", err);
	char *want = tu_fmt("%s.3.memprof\n", run);
	cr_expect_str_eq(out, want);
	cr_expect_str_eq(err, "");

	/* The path printed is a complete snapshot. */
	want[strlen(want) - 1] = '\0';
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {{0}};
	cr_expect_eq(mp_snapshot_open(want, &s, &ei), MP_OK, "%s", ei.msg);
	mp_snapshot_free(s);

	/* Again: the next one, with the options spelt out. */
	cr_expect_eq(memprof(d, &out, &err, "snapshot", "--wait", "10",
			     "--signal", "SIGUSR1", p, NULL),
		     0, "%s", err);
	want = tu_fmt("%s.4.memprof\n", run);
	cr_expect_str_eq(out, want);
	stop(pid);
}

/* MEMPROF_OUTPUT relative to the program's directory; printed absolute. */
Test(cli_snapshot, resolves_a_relative_output_in_the_programs_directory)
{
	char *d = tu_tmpdir(), *out, *err;
	char *sig = tu_fmt("MEMPROF_SNAPSHOT_SIGNAL=%d", SIGUSR2);
	const char *env[] = {sig, "MEMPROF_OUTPUT=rel.memprof", NULL};
	pid_t pid = fake_program(d, "rel", SIGUSR2, 1, env);
	char *p = tu_fmt("%d", (int)pid);
	char *elsewhere = tu_tmpdir();

	cr_expect_eq(memprof(elsewhere, &out, &err, "snapshot", p, NULL), 0,
		     "%s", err);
	char *real = realpath(d, NULL);
	char *want = tu_fmt("%s/rel.1.memprof\n", real);
	cr_expect_str_eq(out, want);
	stop(pid);
}

/* Nothing comes: exit 1 after the time given, and the process lives. */
Test(cli_snapshot, times_out_when_no_snapshot_comes)
{
	char *d = tu_tmpdir(), *out, *err;
	char *sig = tu_fmt("MEMPROF_SNAPSHOT_SIGNAL=%d", SIGUSR2);
	char *o = tu_fmt("MEMPROF_OUTPUT=%s/never.memprof", d);
	const char *env[] = {sig, o, NULL};
	/* Catches the signal and writes nothing. */
	char *script =
		tu_fmt("trap : %d; while :; do sleep 0.02; done", SIGUSR2);
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", script, NULL};
	pid_t pid = spawn(NULL, argv, env, NULL);
	wait_ready(pid, "MEMPROF_SNAPSHOT_SIGNAL=", SIGUSR2);
	char *p = tu_fmt("%d", (int)pid);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_expect_eq(
		memprof(d, &out, &err, "snapshot", "--wait", "0.3", p, NULL),
		1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double took = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_expect(took >= 0.3 && took < 5, "took %.3f s", took);
	char *want =
		tu_fmt("memprof: no snapshot from %d within 0.3 s\n", (int)pid);
	cr_expect_str_eq(err, want);
	cr_expect_str_eq(out, "");

	/* --wait 0 sends and returns at once. */
	cr_expect_eq(memprof(d, &out, &err, "snapshot", "--wait", "0", p, NULL),
		     0, "%s", err);
	cr_expect_str_eq(out, "");
	cr_expect_eq(waitpid(pid, NULL, WNOHANG), 0, "the process died");
	stop(pid);
}

/* --signal sends to a process that has no MEMPROF_SNAPSHOT_SIGNAL; the
 * default output name is the shim's, memprof.PROG.PID. */
Test(cli_snapshot, explicit_signal_needs_no_environment)
{
	char *d = tu_tmpdir(), *out, *err;
	char *script = tu_fmt(
		"trap 'cp %s memprof.$(basename $(readlink /proc/$$/exe)).$$"
		".1.memprof' USR1; while :; do sleep 0.02; done",
		GOLDEN_1_2);
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", script, NULL};
	pid_t pid = spawn(d, argv, NULL, NULL);
	wait_ready(pid, "", SIGUSR1);
	char *p = tu_fmt("%d", (int)pid);
	cr_expect_eq(memprof(d, &out, &err, "snapshot", p, NULL), 2);
	cr_expect(strstr(err, "was not started with"), "%s", err);
	cr_expect_eq(
		memprof(d, &out, &err, "snapshot", "--signal", "USR1", p, NULL),
		0, "%s", err);
	char exe[4096];
	char *link = tu_fmt("/proc/%d/exe", (int)pid);
	ssize_t n = readlink(link, exe, sizeof(exe) - 1);
	cr_assert_gt(n, 0);
	exe[n] = '\0';
	char *real = realpath(d, NULL);
	char *want = tu_fmt("%s/memprof.%s.%d.1.memprof\n", real,
			    strrchr(exe, '/') + 1, (int)pid);
	cr_expect_str_eq(out, want);
	stop(pid);
}

/* The real thing: a program recorded with --snapshot-signal. */
Test(cli_snapshot, snapshots_a_recorded_program)
{
	char *d = tu_tmpdir(), *out, *err;
	char *run = tu_path(d, "rec.memprof");
	char *argv[] = {(char *)TU_MEMPROF,
			(char *)"record",
			(char *)"-q",
			(char *)"--snapshot-signal",
			(char *)"USR2",
			(char *)"-o",
			run,
			(char *)"--",
			(char *)"sleep",
			(char *)"30",
			NULL};
	pid_t rec = spawn(d, argv, NULL, NULL);
	/* The program is record's child, once it has exec'd sleep. */
	pid_t prog = 0;
	for (int i = 0; i < 200 && !prog; i++) {
		char *f =
			tu_fmt("/proc/%d/task/%d/children", (int)rec, (int)rec);
		char *kids = tu_read(f, NULL);
		if (kids && *kids)
			prog = (pid_t)atoi(kids);
		free(kids);
		free(f);
		if (!prog)
			sleep_ms(25);
	}
	cr_assert_gt(prog, 0, "record started no program");
	wait_ready(prog, "MEMPROF_SNAPSHOT_SIGNAL=", SIGUSR2);
	char *p = tu_fmt("%d", (int)prog);

	int st = memprof(d, &out, &err, "snapshot", "--wait", "20", p, NULL);
	cr_expect_eq(st, 0, "%s", err);
	char *real = realpath(d, NULL);
	char *want = tu_fmt("%s/rec.1.memprof\n", real);
	cr_expect_str_eq(out, want);
	want[strlen(want) - 1] = '\0';
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {{0}};
	cr_assert_eq(mp_snapshot_open(want, &s, &ei), MP_OK, "%s", ei.msg);
	cr_expect_str_eq(s->meta.trigger, "signal");
	cr_expect_eq(s->meta.seq, 1);
	cr_expect(s->has_timeline);
	cr_expect_geq(s->timeline.nmarks, 1);
	if (s->timeline.nmarks)
		cr_expect_eq(s->timeline.marks[s->timeline.nmarks - 1].seq, 1);
	mp_snapshot_free(s);

	/* The second one is 2. */
	cr_expect_eq(
		memprof(d, &out, &err, "snapshot", "--wait", "20", p, NULL), 0,
		"%s", err);
	char *want2 = tu_fmt("%s/rec.2.memprof\n", real);
	cr_expect_str_eq(out, want2);
	cr_expect_eq(waitpid(rec, NULL, WNOHANG), 0, "record ended");
	kill(prog, SIGKILL);
	while (waitpid(rec, NULL, 0) < 0 && errno == EINTR)
		;
}

/* ---- the timeline in `memprof info` ---------------------------------- */

Test(cli_snapshot, info_shows_the_timeline)
{
	char *d = tu_tmpdir(), *out, *err;
	cr_assert_eq(memprof(d, &out, &err, "info", GOLDEN_1_2, NULL), 0, "%s",
		     err);
	cr_expect(strstr(out, "(format 1.2)\n"), "%s", out);
	cr_expect(strstr(out, "\ntimeline:   3 samples over 0.030 s (every 20 "
			      "ms), 2 snapshots marked\n"),
		  "%s", out);
	cr_assert_eq(memprof(d, &out, &err, "info",
			     MP_SOURCE_DIR
			     "/testdata/format/golden-1.1.memprof",
			     NULL),
		     0, "%s", err);
	cr_expect_null(strstr(out, "timeline"), "%s", out);
}

Test(cli_snapshot, info_json_has_the_timeline)
{
	char *d = tu_tmpdir();
	char *cmd = tu_fmt(
		"%s info --json %s | python3 -c \"import json, sys; "
		"t = json.load(sys.stdin)['timeline']; "
		"assert t == {'samples': 3, 'interval_ns': 20000000, "
		"'marks': [{'seq': 1, 'ns': 1030000000}, "
		"{'seq': 0, 'ns': 1040000000}]}, t\" && "
		"%s info --json %s/testdata/format/golden-1.1.memprof | "
		"python3 -c \"import json, sys; d = json.load(sys.stdin); "
		"assert 'timeline' in d and d['timeline'] is None; "
		"assert d['symbolized'] is False and d['blocks'] == 3\"",
		TU_MEMPROF, GOLDEN_1_2, TU_MEMPROF, MP_SOURCE_DIR);
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};
	char *err = tu_path(d, "json.err");
	int st = tu_run(argv, NULL, NULL, err);
	char *msg = tu_read(err, NULL);
	cr_expect_eq(st, 0, "%s", msg);
}
