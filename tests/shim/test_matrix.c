/*
 * test_matrix.c - whatever a program does, the shim must not change how it
 * behaves nor lose what it recorded. Each case runs a helper
 * (tests/helpers/mx_*.c) bare and under the shim, with the same
 * environment, working directory and descriptors (none above 2), and
 * compares stdout, stderr and the wait status (exit code or terminating
 * signal) exactly; then it checks the snapshots that must have been
 * written, with the exact figures of named sites, and those that must not.
 */
#include <glob.h>
#include <signal.h>
#include <sys/syscall.h>

#include "testutil.h"

TestSuite(matrix, .timeout = 60);

struct run {
	int status; /* as waitpid gives it */
	char *out, *err;
	char *dir; /* its working directory */
};

/*
 * Runs argv in dir with env's entries added to an environment without
 * LD_PRELOAD and MEMPROF_*, stdin from /dev/null, stdout and stderr to
 * dir/stdout and dir/stderr, and no descriptor above 2.
 */
static struct run run_in(const char *dir, char *const argv[],
			 const char *const env[])
{
	struct run r = {.dir = strdup(dir)};
	char *out = tu_path(dir, "stdout"), *err = tu_path(dir, "stderr");
	fflush(NULL);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		extern char **environ;
		for (bool again = true; again;) {
			again = false;
			for (char **e = environ; e && *e; e++) {
				if (strncmp(*e, "MEMPROF_", 8) &&
				    strncmp(*e, "LD_PRELOAD=", 11))
					continue;
				char name[256];
				size_t n = strcspn(*e, "=");
				snprintf(name, sizeof(name), "%.*s", (int)n,
					 *e);
				unsetenv(name);
				again = true;
				break;
			}
		}
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		if (chdir(dir) != 0)
			_exit(126);
		int i = open("/dev/null", O_RDONLY);
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(i, 0);
		dup2(o, 1);
		dup2(e, 2);
		if (syscall(SYS_close_range, 3u, ~0u, 0) != 0)
			for (int fd = 3; fd < 1024; fd++)
				close(fd);
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &r.status, 0) < 0)
		;
	r.out = tu_read(out, NULL);
	r.err = tu_read(err, NULL);
	cr_assert(r.out && r.err);
	free(out);
	free(err);
	return r;
}

/* dir/bare and dir/shim, fresh. */
static char *subdir(const char *dir, const char *name)
{
	char *d = tu_path(dir, name);
	cr_assert(mkdir(d, 0755) == 0);
	return d;
}

#define MAX_ENV 16

/* The helper's argv, a NULL-terminated list of strings. */
static struct run run_bare(const char *dir, char *const argv[],
			   const char *const extra[])
{
	char *d = subdir(dir, "bare");
	return run_in(d, argv, extra);
}

/* The same under the shim, writing dir/shim/shim.memprof. */
static struct run run_shim(const char *dir, char *const argv[],
			   const char *const extra[])
{
	char *d = subdir(dir, "shim");
	const char *env[MAX_ENV] = {
		"LD_PRELOAD=" TU_SHIM,
		tu_fmt("MEMPROF_OUTPUT=%s/shim.memprof", d),
	};
	size_t n = 2;
	for (size_t i = 0; extra && extra[i] && n < MAX_ENV - 1; i++)
		env[n++] = extra[i];
	return run_in(d, argv, env);
}

static const char *status_str(int st)
{
	static char buf[2][64];
	static int k;
	k ^= 1;
	if (WIFEXITED(st))
		snprintf(buf[k], sizeof(buf[k]), "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf[k], sizeof(buf[k]), "signal %d", WTERMSIG(st));
	else
		snprintf(buf[k], sizeof(buf[k]), "status %#x", st);
	return buf[k];
}

static void expect_same(const struct run *bare, const struct run *shim,
			const char *what)
{
	cr_expect_eq(shim->status, bare->status,
		     "%s: %s under the shim, %s bare", what,
		     status_str(shim->status), status_str(bare->status));
	cr_expect_str_eq(shim->out, bare->out, "%s: stdout differs", what);
	cr_expect_str_eq(shim->err, bare->err, "%s: stderr differs", what);
}

/* Runs argv bare and under the shim; expects the same behaviour. */
static void same_run(const char *dir, char *const argv[],
		     const char *const extra[], const char *what,
		     struct run *bare, struct run *shim)
{
	*bare = run_bare(dir, argv, extra);
	*shim = run_shim(dir, argv, extra);
	expect_same(bare, shim, what);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* The files of pattern (a glob); *n their number. */
static char **files(const char *pattern, size_t *n)
{
	glob_t g;
	*n = 0;
	if (glob(pattern, 0, NULL, &g) != 0)
		return NULL;
	char **v = calloc(g.gl_pathc + 1, sizeof(*v));
	for (size_t i = 0; i < g.gl_pathc; i++)
		v[i] = strdup(g.gl_pathv[i]);
	*n = g.gl_pathc;
	globfree(&g);
	return v;
}

static struct mp_snapshot *snap_open(const char *path)
{
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {{0}};
	cr_assert_eq(mp_snapshot_open(path, &s, &ei), MP_OK, "%s: %s", path,
		     ei.msg);
	cr_assert_eq(mp_symbolize(s, &ei), MP_OK, "symbolize: %s", ei.msg);
	return s;
}

static struct mp_snapshot *shim_snap(const struct run *shim)
{
	char *p = tu_path(shim->dir, "shim.memprof");
	struct mp_snapshot *s = snap_open(p);
	free(p);
	return s;
}

static bool has_site(const struct mp_snapshot *s, const char *fn)
{
	struct mp_profile_entry e;
	return tu_function_entry(s, fn, &e);
}

/* The live figures of the traces add up to the totals, and the blocks
 * listed are those counted. */
static void expect_consistent(const struct mp_snapshot *s)
{
	uint64_t bytes = 0, blocks = 0;
	for (size_t i = 0; i < s->ntraces; i++) {
		bytes += s->traces[i].live_bytes;
		blocks += s->traces[i].live_blocks;
	}
	cr_expect_eq(bytes, s->meta.totals.live_bytes);
	cr_expect_eq(blocks, s->meta.totals.live_blocks);
	cr_expect_eq(s->nblocks, blocks, "%zu blocks listed, %lu counted",
		     s->nblocks, (unsigned long)blocks);
	cr_expect_geq(s->meta.totals.allocs - s->meta.totals.frees, blocks);
	cr_expect_geq(s->meta.totals.peak_bytes, bytes);
}

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ENV(...) ((const char *[]){__VA_ARGS__, NULL})

/* ---- 1. processes --------------------------------------------------- */

Test(matrix, fork_without_exec_gives_the_child_a_file_of_its_own)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_fork"), "fork"), NULL, "fork", &bare,
		 &shim);
	cr_expect_str_eq(shim.out, "forked child done\nchild exited 5\n"
				   "parent done\n");
	cr_expect_eq(shim.status, 15 << 8);
	struct mp_snapshot *p = shim_snap(&shim);
	tu_expect_site(p, "site_parent", 300, 3, 3, 300);
	tu_expect_site(p, "site_after", 1500, 5, 5, 1500);
	cr_expect(!has_site(p, "site_forked"));
	expect_consistent(p);
	size_t n;
	char **child = files(tu_fmt("%s/shim.pid*.memprof", shim.dir), &n);
	cr_assert_eq(n, 1, "%zu child files", n);
	struct mp_snapshot *c = snap_open(child[0]);
	/* The parent's blocks at the fork are the child's too. */
	tu_expect_site(c, "site_parent", 300, 3, 3, 300);
	tu_expect_site(c, "site_forked", 800, 4, 4, 800);
	cr_expect(!has_site(c, "site_after"));
	cr_expect_neq(c->meta.pid, p->meta.pid);
	cr_expect_str_eq(c->meta.trigger, "exit");
	expect_consistent(c);
	mp_snapshot_free(p);
	mp_snapshot_free(c);
}

/* exec, posix_spawn, vfork: the program started runs untraced unless
 * MEMPROF_FOLLOW_EXEC (--follow-fork) asks, and then writes its own
 * file; the parent's figures are untouched either way. */
static void check_started_program(const char *mode, bool follow)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	const char *const *extra = follow ? ENV("MEMPROF_FOLLOW_EXEC=1") : NULL;
	same_run(d, ARGV(TU_HELPER("mx_fork"), (char *)mode), extra, mode,
		 &bare, &shim);
	cr_expect_str_eq(shim.out,
			 "exec'd child done\nchild exited 9\nparent done\n",
			 "%s", mode);
	cr_expect_eq(shim.status, 19 << 8);
	struct mp_snapshot *p = shim_snap(&shim);
	tu_expect_site(p, "site_parent", 300, 3, 3, 300);
	tu_expect_site(p, "site_after", 1500, 5, 5, 1500);
	cr_expect(!has_site(p, "site_execd"), "%s", mode);
	expect_consistent(p);
	size_t n;
	char **child = files(tu_fmt("%s/shim.pid*.memprof", shim.dir), &n);
	cr_assert_eq(n, follow ? 1 : 0, "%s: %zu child files", mode, n);
	if (follow) {
		struct mp_snapshot *c = snap_open(child[0]);
		tu_expect_site(c, "site_execd", 490, 7, 9, 490 + 40);
		cr_expect(!has_site(c, "site_parent"));
		expect_consistent(c);
		mp_snapshot_free(c);
	}
	mp_snapshot_free(p);
}

Test(matrix, fork_and_exec_traces_the_new_program_only_when_following)
{
	check_started_program("exec", false);
	check_started_program("exec", true);
}

Test(matrix, posix_spawn_traces_the_new_program_only_when_following)
{
	check_started_program("spawn", false);
	check_started_program("spawn", true);
}

/* The vfork child runs in the parent's memory until it execs. */
Test(matrix, vfork_and_exec_leave_the_parents_state_intact)
{
	check_started_program("vfork", false);
	check_started_program("vfork", true);
}

/* A vfork child whose exec fails ends with _exit, our hook, in the
 * parent's memory: it must write nothing and change nothing. */
Test(matrix, vfork_child_whose_exec_fails_writes_nothing)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_fork"), "vfork-fail"), NULL,
		 "vfork-fail", &bare, &shim);
	cr_expect_str_eq(shim.out, "child exited 127\nparent done\n");
	struct mp_snapshot *p = shim_snap(&shim);
	tu_expect_site(p, "site_parent", 300, 3, 3, 300);
	tu_expect_site(p, "site_after", 1500, 5, 5, 1500);
	expect_consistent(p);
	size_t n;
	files(tu_fmt("%s/shim.pid*.memprof", shim.dir), &n);
	cr_expect_eq(n, 0);
	mp_snapshot_free(p);
}

/* ---- 2. threads ----------------------------------------------------- */

Test(matrix, short_threads_come_and_go_while_main_allocates)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_threads"), "short"), NULL, "short",
		 &bare, &shim);
	cr_expect_str_eq(shim.out, "short threads done\n");
	struct mp_snapshot *s = shim_snap(&shim);
	/* 200 threads x (10 x 32 bytes, 2 kept). */
	tu_expect_site(s, "short_work", 200 * 2 * 32, 400, 2000, 2000 * 32);
	/* 25 rounds x (40 made and freed, and 1 kept for the first 16). */
	tu_expect_site(s, "main_churn", 16 * 48, 16, 25 * 40 + 16,
		       (25 * 40 + 16) * 48);
	expect_consistent(s);
	mp_snapshot_free(s);
}

Test(matrix, exit_from_a_thread_while_others_allocate)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_threads"), "exit"), NULL, "exit", &bare,
		 &shim);
	cr_expect_str_eq(shim.out, "exiting from a thread\n");
	cr_expect_eq(shim.status, 7 << 8);
	struct mp_snapshot *s = shim_snap(&shim);
	cr_expect_str_eq(s->meta.trigger, "exit");
	tu_expect_site(s, "site_before", 1000, 10, 10, 1000);
	tu_expect_site(s, "site_exiter", 5 * 333, 5, 5, 5 * 333);
	/* Each churner holds at most one block at any time. */
	struct mp_profile_entry e;
	cr_assert(tu_function_entry(s, "churn_forever", &e));
	cr_expect_leq(e.blocks, 4);
	cr_expect_eq(e.bytes, 64 * e.blocks);
	expect_consistent(s);
	/* Every thread stopped for the heap scan. */
	cr_expect(s->has_graph);
	cr_expect_eq(s->graph.threads_unscanned, 0);
	mp_snapshot_free(s);
}

/* ---- 3. signal handlers that allocate ----------------------------------- */

static void check_handlers(const char *mode, int workers)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_signal"), (char *)mode), NULL, mode,
		 &bare, &shim);
	cr_expect_str_eq(shim.out, "done\n");
	struct mp_snapshot *s = shim_snap(&shim);
	tu_expect_site(s, "main_work", workers * 20 * 1000, workers * 20,
		       workers * 400000, workers * 400000ull * 1000);
	/* The handlers' allocations that came while their thread was
	 * outside the shim are traced, the others pass through; either
	 * way each is freed where it was made: nothing stays live. */
	struct mp_profile_entry e;
	if (tu_function_entry(s, "handler_alloc", &e)) {
		cr_expect_eq(e.bytes, 0);
		cr_expect_eq(e.blocks, 0);
		cr_expect_eq(e.alloc_bytes, 24 * e.allocs);
	}
	expect_consistent(s);
	mp_snapshot_free(s);
}

Test(matrix, sigalrm_handler_that_allocates_at_a_high_rate)
{
	check_handlers("alarm", 1);
}

Test(matrix, sigusr1_handlers_that_allocate_in_busy_threads)
{
	check_handlers("threads", 2);
}

/* ---- 4. file descriptors ---------------------------------------------- */

static char *file_in(const char *dir, const char *name)
{
	char *p = tu_path(dir, name);
	char *s = tu_read(p, NULL);
	free(p);
	return s;
}

Test(matrix, program_that_closes_every_descriptor)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_fds"), "closeall"), NULL, "closeall",
		 &bare, &shim);
	cr_expect_eq(shim.status, 6 << 8);
	cr_expect_str_eq(shim.out, "started\n");
	char *own = file_in(shim.dir, "own.txt");
	cr_expect_str_eq(own, "program data\n");
	struct mp_snapshot *s = shim_snap(&shim);
	tu_expect_site(s, "site_fds", 3600, 6, 6, 3600);
	mp_snapshot_free(s);
}

/* The snapshot signal's handler and thread used a pipe: once the program
 * had closed it and opened files of its own, the handler wrote into one
 * of them and the thread read the other. They use a futex now. */
Test(matrix, closed_descriptors_and_the_snapshot_signal)
{
	char *d = tu_tmpdir();
	const char *const *sig =
		ENV(tu_fmt("MEMPROF_SNAPSHOT_SIGNAL=%d", SIGUSR2));
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_fds"), "loop"), sig, "loop", &bare,
		 &shim);
	cr_expect_str_eq(shim.out, "started\nloop done\n");
	cr_expect_str_eq(file_in(shim.dir, "a.txt"), "file a\n");
	cr_expect_str_eq(file_in(shim.dir, "b.txt"), "file b\n");
	size_t n;
	files(tu_fmt("%s/shim.*.memprof", shim.dir), &n);
	cr_expect_eq(n, 1, "%zu numbered snapshots, expected 1", n);
	struct mp_snapshot *s = shim_snap(&shim);
	tu_expect_site(s, "site_fds", 3600, 6, 6, 3600);
	mp_snapshot_free(s);
}

/* Messages go to the standard error the program started with, or
 * nowhere: never into a file the program put on fd 2. */
Test(matrix, stderr_replaced_with_dup2_gets_no_message_of_ours)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_fds"), "dup2"), NULL, "dup2", &bare,
		 &shim);
	cr_expect_str_eq(file_in(shim.dir, "log.txt"), "program log\n");
	struct mp_snapshot *s = shim_snap(&shim);
	tu_expect_site(s, "site_fds", 3600, 6, 6, 3600);
	mp_snapshot_free(s);

	/* An output that cannot be written gives a message: not in the
	 * program's log, and not on its first stderr either (fd 2 is no
	 * longer that file). */
	char *d2 = tu_tmpdir();
	struct run r = run_in(d2, ARGV(TU_HELPER("mx_fds"), "dup2"),
			      ENV("LD_PRELOAD=" TU_SHIM,
				  "MEMPROF_OUTPUT=/nonexistent/x.memprof"));
	cr_expect_eq(r.status, 0);
	cr_expect_str_eq(r.out, "started\ndup2 done\n");
	cr_expect_str_eq(r.err, "");
	cr_expect_str_eq(file_in(d2, "log.txt"), "program log\n");
}

/* ---- 5. memory that runs out ------------------------------------------ */

Test(matrix, huge_requests_fail_as_they_do_bare)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_oom"), "huge"), NULL, "huge", &bare,
		 &shim);
	cr_expect(strstr(shim.out, "malloc(SIZE_MAX): NULL errno=ENOMEM\n"),
		  "%s", shim.out);
	cr_expect(
		strstr(shim.out, "reallocarray overflow: NULL errno=ENOMEM\n"),
		"%s", shim.out);
	cr_expect(strstr(shim.out, "changed") == NULL, "%s", shim.out);
	struct mp_snapshot *s = shim_snap(&shim);
	/* The block whose reallocs failed is still there, as it was. */
	tu_expect_site(s, "site_survivor", 64 + 100, 2, 3, 228);
	cr_expect(!has_site(s, "site_huge"));
	expect_consistent(s);
	mp_snapshot_free(s);
}

Test(matrix, malloc_runs_out_under_an_address_space_limit)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_oom"), "limit"), NULL, "limit", &bare,
		 &shim);
	cr_expect_str_eq(shim.out, "malloc ran out with ENOMEM\noom done\n");
	struct mp_snapshot *s = shim_snap(&shim);
	tu_expect_site(s, "site_survivor", 64 + 100, 2, 3, 228);
	struct mp_profile_entry e;
	cr_assert(tu_function_entry(s, "site_limit", &e));
	cr_expect_eq(e.bytes, 0);
	cr_expect_eq(e.alloc_bytes, e.allocs << 20);
	expect_consistent(s);
	mp_snapshot_free(s);
}

/* The shim cannot map memory to note blocks: it stops tracing with one line,
 * and the program goes on as bare. */
Test(matrix, shim_out_of_memory_stops_tracing_with_one_line)
{
	char *d = tu_tmpdir();
	char *const *argv = ARGV(TU_HELPER("mx_oom"), "shim");
	struct run bare = run_bare(d, argv, NULL);
	struct run shim = run_shim(d, argv, NULL);
	cr_expect_eq(shim.status, bare.status);
	cr_expect_str_eq(shim.out, bare.out);
	cr_expect_str_eq(bare.out, "200000 small blocks\noom done\n");
	cr_expect_str_eq(bare.err, "");
	cr_expect_str_eq(shim.err,
			 "memprof: out of memory for the live-block table: "
			 "out of memory; tracing stopped, the program "
			 "continues\n");
	/* Tracing stopped: no snapshot, rather than a wrong one. */
	cr_expect(!exists(tu_fmt("%s/shim.memprof", shim.dir)));
}

/* ---- 6. realloc ---------------------------------------------------------- */

static void check_realloc(const char *mode)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_realloc"), (char *)mode), NULL, mode,
		 &bare, &shim);
	cr_expect_str_eq(shim.out, "realloc done\n");
	struct mp_snapshot *s = shim_snap(&shim);
	tu_expect_site(s, "site_from_null", 100, 1, 1, 100);
	cr_expect(!has_site(s, "site_to_zero"), "%s: realloc(p, 0)", mode);
	tu_expect_site(s, "site_shrink", 100, 1, 1, 100);
	tu_expect_site(s, "site_grow_in_place", 200, 1, 1, 200);
	tu_expect_site(s, "site_grow_moving", 100000, 1, 1, 100000);
	cr_expect(!has_site(s, "site_fail"), "%s: a failed realloc", mode);
	tu_expect_site(s, "site_array", 64, 1, 1, 64);
	tu_expect_site(s, "site_steps", 100, 1, 9, 540);
	tu_expect_site(s, "site_big", 500 + (4 << 20), 2, 5,
		       1000 + 500 + (10 << 20));
	/* make: 50 + 1000 + 100 + 100 + 16 + 64 + 32 + 10; live, the
	 * block whose realloc failed and the wall. */
	tu_expect_site(s, "make", 64 + 16, 2, 8, 1372);
	expect_consistent(s);
	mp_snapshot_free(s);
}

Test(matrix, realloc_edges_are_exact_per_site)
{
	check_realloc("st");
}

Test(matrix, realloc_edges_are_exact_per_site_with_two_threads)
{
	check_realloc("mt");
}

/* ---- 7. how programs end --------------------------------------------------
 */

static void check_end(const char *mode, int status, bool snapshot)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_exit"), (char *)mode), NULL, mode, &bare,
		 &shim);
	cr_expect_eq(shim.status, status, "%s: %s", mode,
		     status_str(shim.status));
	cr_expect_str_eq(shim.out, "started\n", "%s", mode);
	char *path = tu_path(shim.dir, "shim.memprof");
	cr_assert_eq(exists(path), snapshot, "%s: snapshot %s", mode,
		     snapshot ? "missing" : "written");
	if (snapshot) {
		struct mp_snapshot *s = snap_open(path);
		tu_expect_site(s, "site_exit", 1500, 3, 3, 1500);
		cr_expect_str_eq(s->meta.trigger, "exit");
		mp_snapshot_free(s);
	}
	size_t n;
	files(tu_fmt("%s/shim.memprof.tmp*", shim.dir), &n);
	cr_expect_eq(n, 0, "%s: a temporary file is left", mode);
}

Test(matrix, _exit_Exit_and_quick_exit_write_the_snapshot)
{
	check_end("_exit", 3 << 8, true);
	check_end("_Exit", 4 << 8, true);
	check_end("quick_exit", 6 << 8, true);
}

/* Nothing runs in a process killed by a signal it does not handle:
 * SIGKILL cannot be caught at all, and the shim does not catch the
 * faults (SIGSEGV, SIGABRT). */
Test(matrix, fatal_signals_keep_their_status_and_write_nothing)
{
	check_end("segv", SIGSEGV, false);
	check_end("abort", SIGABRT, false);
	check_end("kill", SIGKILL, false);
}

Test(matrix, exit_signals_are_not_caught_unless_asked)
{
	check_end("term", SIGTERM, false);
	check_end("int", SIGINT, false);
}

static void check_exit_signal(const char *mode, int sig, const char *name)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_exit"), (char *)mode),
		 ENV("MEMPROF_EXIT_SIGNALS=TERM,INT"), mode, &bare, &shim);
	cr_expect(WIFSIGNALED(shim.status) && WTERMSIG(shim.status) == sig,
		  "%s: %s", mode, status_str(shim.status));
	struct mp_snapshot *s = shim_snap(&shim);
	tu_expect_site(s, "site_exit", 1500, 3, 3, 1500);
	cr_expect_str_eq(s->meta.trigger, "exit");
	cr_expect_str_eq(s->meta.name, name);
	cr_expect(s->has_graph);
	cr_expect_eq(s->graph.threads_unscanned, 0);
	expect_consistent(s);
	mp_snapshot_free(s);
}

Test(matrix, exit_signals_write_the_snapshot_and_still_kill)
{
	check_exit_signal("term", SIGTERM, "SIGTERM");
	check_exit_signal("int", SIGINT, "SIGINT");
	check_exit_signal("term-threads", SIGTERM, "SIGTERM");
}

/* A handler the program installs replaces ours: its behaviour is its
 * own (here: exit(9), and so the usual exit snapshot). */
Test(matrix, exit_signal_handled_by_the_program_is_the_programs)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_exit"), "term-own"),
		 ENV("MEMPROF_EXIT_SIGNALS=TERM"), "term-own", &bare, &shim);
	cr_expect_eq(shim.status, 9 << 8);
	cr_expect_str_eq(shim.out, "started\ncaught SIGTERM\n");
	struct mp_snapshot *s = shim_snap(&shim);
	tu_expect_site(s, "site_exit", 1500, 3, 3, 1500);
	cr_expect_eq(s->meta.name, NULL);
	mp_snapshot_free(s);
}

/* A forked child has no trigger thread: its handler writes the child's
 * file itself. */
Test(matrix, exit_signal_in_a_forked_child)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_exit"), "term-child"),
		 ENV("MEMPROF_EXIT_SIGNALS=TERM"), "term-child", &bare, &shim);
	cr_expect_str_eq(shim.out, "started\nchild killed by 15\n");
	size_t n;
	char **child = files(tu_fmt("%s/shim.pid*.memprof", shim.dir), &n);
	cr_assert_eq(n, 1);
	struct mp_snapshot *c = snap_open(child[0]);
	tu_expect_site(c, "site_exit", 1500, 3, 3, 1500);
	tu_expect_site(c, "site_child", 1400, 2, 2, 1400);
	cr_expect_str_eq(c->meta.name, "SIGTERM");
	mp_snapshot_free(c);
	struct mp_snapshot *p = shim_snap(&shim);
	cr_expect(!has_site(p, "site_child"));
	cr_expect_eq(p->meta.name, NULL);
	mp_snapshot_free(p);
}

/* _exit from a handler that interrupted an allocation used to hang in
 * the exit snapshot, on a lock the interrupted hook held. Now: the same
 * end as bare; a snapshot when the hook was in the real allocator or
 * not in the shim at all, else one line instead. */
Test(matrix, exit_from_a_handler_that_interrupted_an_allocation)
{
	for (int round = 0; round < 5; round++) {
		char *d = tu_tmpdir();
		char *const *argv =
			ARGV(TU_HELPER("mx_exit"), "term-in-handler");
		struct run bare = run_bare(d, argv, NULL);
		struct run shim = run_shim(d, argv, NULL);
		cr_expect_eq(shim.status, 8 << 8, "%s",
			     status_str(shim.status));
		cr_expect_eq(bare.status, 8 << 8);
		cr_expect_str_eq(shim.out, bare.out);
		char *path = tu_path(shim.dir, "shim.memprof");
		if (exists(path)) {
			cr_expect_str_eq(shim.err, "");
			struct mp_snapshot *s = snap_open(path);
			tu_expect_site(s, "site_exit", 1500, 3, 3, 1500);
			mp_snapshot_free(s);
		} else {
			cr_expect_str_eq(
				shim.err,
				"memprof: the program exited from a signal "
				"handler that interrupted an allocation; no "
				"snapshot was written\n");
		}
	}
}

/* ---- 8. dlclose ---------------------------------------------------------- */

static void check_dlclose(const char *mode, int blocks)
{
	char *d = tu_tmpdir();
	struct run bare, shim;
	same_run(d, ARGV(TU_HELPER("mx_dlopen"), (char *)mode), NULL, mode,
		 &bare, &shim);
	struct mp_snapshot *s = shim_snap(&shim);
	tu_expect_site(s, "mx_lib_alloc", 4321 * blocks, blocks, blocks,
		       4321 * blocks);
	/* Named with its file and line, in the library's module. */
	struct mp_profile_opts o = {.by = MP_GROUP_LINE, .sort = MP_SORT_BYTES};
	struct mp_profile *prof = NULL;
	cr_assert_eq(mp_profile_build(s, &o, &prof), MP_OK);
	cr_assert_gt(prof->nentries, 0);
	const struct mp_resolved_frame *f = &prof->entries[0].frames[0];
	cr_expect_str_eq(f->function, "mx_lib_alloc");
	cr_expect(f->file && strstr(f->file, "mx_lib.c"), "%s", f->file);
	cr_expect_gt(f->line, 0);
	mp_profile_free(prof);
	mp_snapshot_free(s);
}

Test(matrix, frames_of_a_dlclosed_library_are_still_named)
{
	check_dlclose("once", 3);
}

Test(matrix, frames_of_a_library_loaded_twice_are_named)
{
	check_dlclose("reload", 6);
}

/* ---- 9. a full disk --------------------------------------------------- */

/* The snapshot write fails with EFBIG past RLIMIT_FSIZE, and the kernel
 * sends SIGXFSZ, whose default action used to kill the program: now the
 * program exits with its own status, memprof says one line, and no
 * partial file is left. */
Test(matrix, file_size_limit_keeps_the_program_and_leaves_no_file)
{
	char *d = tu_tmpdir();
	char *cmd = tu_fmt("ulimit -f 1; exec %s x", TU_HELPER("alloc_c"));
	struct run bare, shim;
	bare = run_bare(d, ARGV("/bin/sh", "-c", cmd), NULL);
	shim = run_shim(d, ARGV("/bin/sh", "-c", cmd), NULL);
	cr_expect_eq(shim.status, bare.status, "%s", status_str(shim.status));
	cr_expect_eq(shim.status, 3 << 8);
	cr_expect_str_eq(shim.out, "alloc_c done\n");
	char *want = tu_fmt("memprof: cannot write '%s/shim.memprof': file too "
			    "large\n",
			    shim.dir);
	cr_expect_str_eq(shim.err, want);
	size_t n;
	files(tu_fmt("%s/shim.memprof*", shim.dir), &n);
	cr_expect_eq(n, 0, "%zu files left", n);
}

/* A tiny tmpfs, full: ENOSPC. Needs mount namespaces (root). */
Test(matrix, full_tmpfs_keeps_the_program_and_leaves_no_file)
{
	char *d = tu_tmpdir();
	char *mnt = subdir(d, "mnt");
	char *script = tu_fmt(
		"mount -t tmpfs -o size=64k memprof-test %s 2>/dev/null || "
		"exit 99; head -c 1048576 /dev/zero > %s/fill 2>/dev/null; "
		"LD_PRELOAD=%s MEMPROF_OUTPUT=%s/x.memprof %s x; st=$?; "
		"ls %s > %s/left; exit $st",
		mnt, mnt, TU_SHIM, mnt, TU_HELPER("alloc_c"), mnt, d);
	struct run r =
		run_in(d, ARGV("unshare", "-m", "/bin/sh", "-c", script), NULL);
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) == 99 ||
	    WEXITSTATUS(r.status) == 1)
		cr_skip("cannot mount a tmpfs here (%s)", r.err);
	cr_expect_eq(r.status, 3 << 8, "%s", status_str(r.status));
	cr_expect_str_eq(r.out, "alloc_c done\n");
	char *want =
		tu_fmt("memprof: cannot write '%s/x.memprof': no space left "
		       "on device\n",
		       mnt);
	cr_expect_str_eq(r.err, want);
	cr_expect_str_eq(file_in(d, "left"), "fill\n");
}
