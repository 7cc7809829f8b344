/*
 * cmd_record.c - memprof record: run a program under the shim.
 *
 * Finds libmemprof.so, runs the program with it preloaded, waits, then
 * symbolizes the snapshots the run wrote (the binaries are still there) and
 * embeds the symbols; while it waits, a thread loads the program's modules
 * into the symbol cache, so that little of that work is left at the end.
 * Exits with the program's own status (128 + signal when it was killed).
 * Keyboard signals reach the program through the terminal's process group,
 * so record ignores SIGINT and SIGQUIT while it waits and forwards the
 * signals someone sends to record itself.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char record_usage[] =
	"usage: memprof record [-o FILE] [options] [--] PROGRAM [ARGS...]\n"
	"\n"
	"Runs PROGRAM with the memprof shim preloaded and writes a snapshot "
	"of\n"
	"its heap when it exits, then symbolizes it.\n"
	"\n"
	"  -o, --output FILE     snapshot file (default "
	"memprof.PROG.PID.memprof)\n"
	"  -d, --depth N         frames kept per stack, 1-256 (default 64)\n"
	"      --snapshot-signal SIG  write a snapshot FILE.N.memprof when\n"
	"                        the program gets SIG (USR2, ...; see\n"
	"                        'memprof snapshot PID')\n"
	"      --interval TIME   write a snapshot every TIME (500ms, 10s, 2m)\n"
	"      --exit-signals SIGS  also write the exit snapshot when the\n"
	"                        program is killed by one of SIGS (comma-\n"
	"                        separated: TERM, INT, HUP, QUIT, USR1, USR2,\n"
	"                        PIPE, ALRM) that it does not handle itself;\n"
	"                        it still dies by the signal\n"
	"      --sample-rate BYTES  trace one allocation per BYTES allocated "
	"on\n"
	"                        average (Poisson by bytes, e.g. 512K); top "
	"and\n"
	"                        diff show unbiased estimates; no leak check\n"
	"      --leak-check=yes|no  scan the heap at exit for 'memprof leaks'\n"
	"                        (default yes)\n"
	"      --unwind MODE     cfi (default: .eh_frame, works without frame\n"
	"                        pointers) or fp (frame pointers, faster)\n"
	"      --fork MODE       forked children: own (default: each writes\n"
	"                        FILE.pidPID.memprof when it exits) or stop\n"
	"      --follow-fork     also trace programs that PROGRAM's children\n"
	"                        exec (each writes FILE.pidPID.memprof)\n"
	"      --no-symbols      do not symbolize (run 'memprof symbolize' "
	"later)\n"
	"  -q, --quiet           no summary on stderr\n"
	"  -h, --help            show this help\n";

static pid_t child_pid;

/* A file of the run besides the exit snapshot, as found on disk. */
struct sibling {
	char *path;
	ino_t ino;
	struct timespec mtime;
};

/* The files FILE.*.memprof next to path (FILE.memprof); *out is an array
 * the caller frees with siblings_free. */
static size_t siblings(const char *path, struct sibling **out)
{
	size_t n = strlen(path);
	const char *ext = ".memprof";
	size_t el = strlen(ext);
	size_t stem = (n >= el && !strcmp(path + n - el, ext)) ? n - el : n;
	char pat[PATH_MAX + 600];
	snprintf(pat, sizeof(pat), "%.*s.*.memprof", (int)stem, path);
	glob_t g;
	*out = NULL;
	if (glob(pat, 0, NULL, &g) != 0)
		return 0;
	struct sibling *v = calloc(g.gl_pathc, sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; v && i < g.gl_pathc; i++) {
		struct stat st;
		if (stat(g.gl_pathv[i], &st) != 0)
			continue;
		v[k].path = strdup(g.gl_pathv[i]);
		v[k].ino = st.st_ino;
		v[k].mtime = st.st_mtim;
		k++;
	}
	globfree(&g);
	*out = v;
	return k;
}

static bool sibling_known(const struct sibling *v, size_t n,
			  const struct sibling *f)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].path, f->path) && v[i].ino == f->ino &&
		    v[i].mtime.tv_sec == f->mtime.tv_sec &&
		    v[i].mtime.tv_nsec == f->mtime.tv_nsec)
			return true;
	return false;
}

static void siblings_free(struct sibling *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

/* "500ms", "10s", "2m", "1h", "1.5s"; a bare number is seconds. */
static long parse_duration_ms(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v <= 0)
		return -1;
	double mul = 1000;
	if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "s") || !*end)
		mul = 1000;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (!strcmp(end, "h"))
		mul = 3600000;
	else
		return -1;
	double ms = v * mul;
	return ms >= 1 && ms < 1e9 ? (long)ms : -1;
}

/*
 * "TERM,INT" (names with or without SIG, or numbers) -> "15,2" in out,
 * for MEMPROF_EXIT_SIGNALS; false when an entry is not a signal the shim
 * handles as an exit signal (one whose default action ends the program
 * and that it may catch without changing what the program does).
 */
static bool parse_exit_signals(const char *arg, char *out, size_t cap)
{
	static const int ok[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGUSR1,
				 SIGUSR2, SIGPIPE, SIGALRM, SIGTERM};
	char *copy = strdup(arg), *save = NULL;
	size_t len = 0;
	bool good = copy && *arg;
	out[0] = '\0';
	for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && good;
	     t = strtok_r(NULL, ",", &save)) {
		int sig = cli_parse_signal(t);
		good = false;
		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
			if (sig == ok[i])
				good = true;
		int n = snprintf(out + len, cap - len, "%s%d", len ? "," : "",
				 sig);
		if (n < 0 || (size_t)n >= cap - len)
			good = false;
		else
			len += (size_t)n;
	}
	free(copy);
	return good;
}

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

/*
 * While the program runs, a thread loads the module files it maps into the
 * symbol cache, so that symbolizing after it exits finds them ready rather
 * than paying for them then (libc's debuginfo alone takes 40 ms to inflate
 * with libc6-dbg installed). Stopping only tells the thread: it finishes
 * at most the file in progress, which symbolizing waits for only if the
 * snapshot needs it. At the end record joins the thread when it is idle
 * and otherwise exits without waiting (see warmer_finish), so the struct
 * is malloc'd: the thread may use it until the process is gone.
 */
struct warmer {
	struct mp_symcache *cache;
	pid_t pid;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* on CLOCK_MONOTONIC */
	bool stop;	     /* guarded by lock */
	bool busy;	     /* guarded by lock: inside mp_symcache_warm() */
	pid_t tid;	     /* guarded by lock: the thread, while idle-class */
	char **seen;	     /* files already warmed; the thread's own */
	size_t nseen, capseen;
	const char **later; /* seen, with a symbol store: WARM_STORED_MS */
	size_t nlater, caplater;
	char exe[PATH_MAX]; /* the program's file, warmed first */
	struct timespec start;
};

/* Libraries other than the program and its C and C++ runtimes wait this
 * long: a short program's stacks rarely reach them (ld.so, libm), and on
 * a small machine loading their debug information while the program runs
 * slows it down; symbolizing loads them at the end if a stack needs them. */
#define WARM_LATER_MS 300

/* Libraries with a symbol store (the symbol cache on disk: see
 * mp_symcache_stored) wait this long: a short
 * program's snapshot is likely to find all its pcs there and need nothing
 * loaded (libc's DWARF is 45 ms of CPU that slowed a 0.25 s program by a
 * tenth on a busy 2-CPU machine). A longer run loads them anyway, on spare
 * CPU, in case its stacks went through code the cache has not seen. */
#define WARM_STORED_MS 1000

/* A warmer left running at exit (warmer_finish), kept reachable so that
 * leak checkers do not count what it holds; "used", or the compiler drops
 * a variable nothing reads. */
static struct warmer *warmer_left __attribute__((used));

/* The symbol cache at the end of a run, kept reachable like warmer_left:
 * see warmer_leave. */
static struct mp_symcache *cache_left __attribute__((used));

/* Sleeps ms milliseconds or until stopped; false when stopped. */
static bool warmer_sleep(struct warmer *w, long ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->stop &&
	       pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
		;
	bool stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return !stop;
}

/* Warms path unless told to stop first; false when stopped. */
static bool warmer_warm(struct warmer *w, const char *path)
{
	pthread_mutex_lock(&w->lock);
	bool stop = w->stop;
	w->busy = !stop;
	pthread_mutex_unlock(&w->lock);
	if (stop)
		return false;
	mp_symcache_warm(w->cache, path);
	pthread_mutex_lock(&w->lock);
	w->busy = false;
	pthread_mutex_unlock(&w->lock);
	return true;
}

/* Whether path is new to w (and now remembered). */
static bool warmer_first_sight(struct warmer *w, const char *path)
{
	for (size_t i = 0; i < w->nseen; i++)
		if (!strcmp(w->seen[i], path))
			return false;
	if (w->nseen == w->capseen) {
		size_t ncap = w->capseen ? w->capseen * 2 : 32;
		char **nv = realloc(w->seen, ncap * sizeof(*nv));
		if (!nv)
			return false;
		w->seen = nv;
		w->capseen = ncap;
	}
	char *dup = strdup(path);
	if (!dup)
		return false;
	w->seen[w->nseen++] = dup;
	return true;
}

/*
 * The path of a maps line's mapping when it is executable code from a
 * regular file other than the shim (the shim's frames are dropped from
 * stacks anyway); NULL for data, anonymous memory, [vdso], [vsyscall] and
 * deleted files (whatever the path names now is another file). Edits line.
 */
static const char *warmer_code_file(char *line)
{
	char perms[8];
	unsigned long long ino;
	int at = 0;
	/* start-end perms offset dev inode path */
	int got = sscanf(line, "%*x-%*x %7s %*x %*x:%*x %llu %n", perms, &ino,
			 &at);
	if (got < 2 || at == 0 || strlen(perms) < 3 || perms[2] != 'x' ||
	    ino == 0)
		return NULL;
	char *path = line + at;
	path[strcspn(path, "\n")] = '\0';
	size_t n = strlen(path);
	const char *del = " (deleted)";
	if (path[0] != '/' ||
	    (n >= strlen(del) && !strcmp(path + n - strlen(del), del)))
		return NULL;
	if (!strncmp(cli_base_name(path), "libmemprof", 10))
		return NULL;
	return path;
}

/* Whether path is warmed from the start (see WARM_LATER_MS). */
static bool warmer_first(const struct warmer *w, const char *path)
{
	const char *base = cli_base_name(path);
	return !strcmp(path, w->exe) || !strncmp(base, "libc.so", 7) ||
	       !strncmp(base, "libstdc++.so", 12);
}

/* Warms the files the program maps now that w has not seen yet; false
 * when stopped. */
static bool warmer_scan(struct warmer *w)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (now.tv_sec - w->start.tv_sec) * 1000 +
		  (now.tv_nsec - w->start.tv_nsec) / 1000000;
	bool early = ms < WARM_LATER_MS;
	char maps[64];
	snprintf(maps, sizeof(maps), "/proc/%d/maps", (int)w->pid);
	/* Read whole before loading anything: loading takes milliseconds
	 * and the file would be regenerated under a slow reader. */
	FILE *f = fopen(maps, "re");
	if (!f)
		return true;
	char *line = NULL, **todo = NULL;
	size_t cap = 0, ntodo = 0, captodo = 0;
	while (getline(&line, &cap, f) > 0) {
		const char *path = warmer_code_file(line);
		if (!path || (early && !warmer_first(w, path)) ||
		    !warmer_first_sight(w, path))
			continue;
		if (ms < WARM_STORED_MS &&
		    mp_symcache_stored(w->cache, w->seen[w->nseen - 1])) {
			if (w->nlater == w->caplater) {
				size_t ncap = w->caplater ? w->caplater * 2 : 8;
				const char **nv =
					realloc(w->later, ncap * sizeof(*nv));
				if (!nv)
					continue;
				w->later = nv;
				w->caplater = ncap;
			}
			w->later[w->nlater++] = w->seen[w->nseen - 1];
			continue;
		}
		if (ntodo == captodo) {
			size_t ncap = captodo ? captodo * 2 : 16;
			char **nv = realloc(todo, ncap * sizeof(*nv));
			if (!nv)
				break;
			todo = nv;
			captodo = ncap;
		}
		todo[ntodo++] = w->seen[w->nseen - 1];
	}
	free(line);
	fclose(f);
	bool go = true;
	for (size_t i = 0; i < ntodo && go; i++)
		go = warmer_warm(w, todo[i]);
	free(todo);
	if (ms >= WARM_STORED_MS) {
		for (size_t i = 0; i < w->nlater && go; i++)
			go = warmer_warm(w, w->later[i]);
		w->nlater = 0;
	}
	return go;
}

static void *warmer_main(void *arg)
{
	struct warmer *w = arg;
	/* While the program runs, warm with spare CPU only (SCHED_IDLE): a
	 * thread inflating libc's debuginfo beside it slowed a 0.25 s program
	 * by up to a tenth on a 2-CPU machine. Once stopped, the thread gets
	 * its normal class back (warmer_stop), since symbolizing may wait
	 * for the file it is loading and a busy machine would starve it. */
	struct sched_param sp = {0};
	pthread_mutex_lock(&w->lock);
	if (!w->stop && sched_setscheduler(0, SCHED_IDLE, &sp) == 0)
		w->tid = (pid_t)gettid();
	pthread_mutex_unlock(&w->lock);
	/* The dynamic loader maps the libraries within a millisecond or two
	 * of exec; dlopen'ed ones come later. */
	long ms = 2;
	while (warmer_sleep(w, ms) && warmer_scan(w))
		ms = 20;
	return NULL;
}

/* A thread warming cache with the files pid maps, or NULL (without one,
 * symbolizing loads them itself). */
static struct warmer *warmer_start(struct mp_symcache *cache, pid_t pid)
{
	struct warmer *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->cache = cache;
	w->pid = pid;
	clock_gettime(CLOCK_MONOTONIC, &w->start);
	char link[64];
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(link, w->exe, sizeof(w->exe) - 1);
	w->exe[n > 0 ? n : 0] = '\0';
	pthread_condattr_t attr;
	bool ok = pthread_condattr_init(&attr) == 0;
	if (ok) {
		ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
		     pthread_cond_init(&w->wake, &attr) == 0;
		pthread_condattr_destroy(&attr);
	}
	if (!ok) {
		free(w);
		return NULL;
	}
	if (pthread_mutex_init(&w->lock, NULL) != 0) {
		pthread_cond_destroy(&w->wake);
		free(w);
		return NULL;
	}
	/* Signals are for the main thread (it forwards them): libdw and
	 * stdio in this one need not see EINTR. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ok = pthread_create(&w->thread, NULL, warmer_main, w) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ok) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->wake);
		free(w);
		return NULL;
	}
	return w;
}

/* Tells the thread to stop; it may still be loading one file. */
static void warmer_stop(struct warmer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	if (w->tid) {
		struct sched_param sp = {0};
		sched_setscheduler(w->tid, SCHED_OTHER, &sp);
		w->tid = 0;
	}
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

/*
 * Stops the thread and frees cache, unless the thread is still loading a
 * file: symbolizing is over, so no snapshot needs that file, and waiting
 * for it (up to 40 ms for libc) would make short programs slower to record
 * than without warming. The process is about to exit then, which ends the
 * thread; its lookups stay on this machine (mp_symcache_warm), so nothing
 * of it (libcurl's) is being torn down by exit under its feet.
 */
static void warmer_finish(struct warmer *w, struct mp_symcache *cache)
{
	if (w) {
		warmer_stop(w);
		pthread_mutex_lock(&w->lock);
		bool busy = w->busy;
		pthread_mutex_unlock(&w->lock);
		if (busy) {
			pthread_detach(w->thread);
			warmer_left = w;
			return;
		}
		pthread_join(w->thread, NULL);
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->wake);
		for (size_t i = 0; i < w->nseen; i++)
			free(w->seen[i]);
		free(w->seen);
		free(w->later);
		free(w);
	}
	mp_symcache_free(cache);
}

/*
 * At the end of a run, when record is about to exit: tells the thread to
 * stop without waiting for it, and leaves it and cache to the exit. Joining
 * the thread and freeing the cache piece by piece (libdw's data of each
 * file, tens of megabytes with libc's debuginfo) took a millisecond and a
 * half that the exit does not need.
 */
static void warmer_leave(struct warmer *w, struct mp_symcache *cache)
{
	warmer_stop(w);
	warmer_left = w;
	cache_left = cache;
}

/* The shim next to our own binary, then in the install libdir;
 * MEMPROF_PRELOAD overrides both. */
static char *find_shim(void)
{
	const char *env = getenv("MEMPROF_PRELOAD");
	if (env && *env)
		return access(env, R_OK) == 0 ? realpath(env, NULL) : NULL;
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char path[PATH_MAX + 32];
		snprintf(path, sizeof(path), "%s/libmemprof.so", dirname(self));
		if (access(path, R_OK) == 0)
			return strdup(path);
		snprintf(path, sizeof(path), "%s/../lib/memprof/libmemprof.so",
			 self);
		if (access(path, R_OK) == 0)
			return realpath(path, NULL);
	}
	if (access(MP_LIBDIR "/libmemprof.so", R_OK) == 0)
		return strdup(MP_LIBDIR "/libmemprof.so");
	return NULL;
}

/* PROGRAM resolved through PATH as execvp would, or NULL. */
static char *resolve_program(const char *prog)
{
	if (strchr(prog, '/'))
		return access(prog, F_OK) == 0 ? strdup(prog) : NULL;
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	char *copy = strdup(path), *save = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		char buf[PATH_MAX];
		snprintf(buf, sizeof(buf), "%s/%s", *dir ? dir : ".", prog);
		if (access(buf, X_OK) == 0) {
			free(copy);
			return strdup(buf);
		}
	}
	free(copy);
	return NULL;
}

static void set_preload(const char *shim)
{
	const char *old = getenv("LD_PRELOAD");
	if (old && *old) {
		size_t n = strlen(shim) + strlen(old) + 2;
		char *v = malloc(n);
		snprintf(v, n, "%s:%s", shim, old);
		setenv("LD_PRELOAD", v, 1);
		free(v);
	} else {
		setenv("LD_PRELOAD", shim, 1);
	}
}

static void summary(const char *prog, int status, const char *path)
{
	char b1[32], b2[32], b3[32];
	if (WIFEXITED(status))
		fprintf(stderr, "memprof: '%s' exited with status %d\n", prog,
			WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		fprintf(stderr, "memprof: '%s' was killed by signal %d (%s)\n",
			prog, WTERMSIG(status), strsignal(WTERMSIG(status)));
	struct mp_snapshot *snap = NULL;
	struct mp_errinfo ei;
	if (mp_snapshot_open(path, &snap, &ei) != MP_OK)
		return;
	const struct mp_totals *t = &snap->meta.totals;
	fprintf(stderr,
		"memprof: %llu allocation%s (%s), %llu free%s; peak %s; "
		"at exit %s live in %llu block%s\n",
		(unsigned long long)t->allocs, t->allocs == 1 ? "" : "s",
		cli_format_size(t->alloc_bytes, b1),
		(unsigned long long)t->frees, t->frees == 1 ? "" : "s",
		cli_format_size(t->peak_bytes, b2),
		cli_format_size(t->live_bytes, b3),
		(unsigned long long)t->live_blocks,
		t->live_blocks == 1 ? "" : "s");
	struct stat st;
	char b4[32];
	if (stat(path, &st) == 0)
		fprintf(stderr,
			"memprof: wrote %s (%s, %zu stack%s); see 'memprof top "
			"%s'\n",
			path, cli_format_size((uint64_t)st.st_size, b4),
			snap->nstacks, snap->nstacks == 1 ? "" : "s", path);
	mp_snapshot_free(snap);
}

int cmd_record(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"depth", required_argument, NULL, 'd'},
		{"unwind", required_argument, NULL, 'U'},
		{"follow-fork", no_argument, NULL, 'F'},
		{"fork", required_argument, NULL, 'K'},
		{"leak-check", required_argument, NULL, 'L'},
		{"snapshot-signal", required_argument, NULL, 'G'},
		{"interval", required_argument, NULL, 'I'},
		{"exit-signals", required_argument, NULL, 'X'},
		{"sample-rate", required_argument, NULL, 'R'},
		{"no-symbols", no_argument, NULL, 'S'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *output = NULL, *unwind = "cfi";
	long depth = 64;
	bool follow = false, symbols = true, quiet = false, fork_stop = false;
	bool leak_check = true, leak_check_given = false;
	uint64_t sample_rate = 0;
	int snap_sig = 0;
	long interval_ms = 0;
	char exit_sigs[64] = "";
	int c;
	opterr = 0;
	optind = 0; /* glibc: full reset */
	/* '+': stop at the first non-option, the program. */
	while ((c = getopt_long(argc, argv, "+:o:d:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'd': {
			char *end;
			depth = strtol(optarg, &end, 10);
			if (*end || depth < 1 || depth > 256)
				return cli_error(
					"--depth takes a number from 1 "
					"to 256, not '%s'",
					optarg);
			break;
		}
		case 'U':
			if (strcmp(optarg, "cfi") && strcmp(optarg, "fp"))
				return cli_error(
					"--unwind takes cfi or fp, not "
					"'%s'",
					optarg);
			unwind = optarg;
			break;
		case 'F': follow = true; break;
		case 'G':
			snap_sig = cli_parse_signal(optarg);
			if (snap_sig <= 0)
				return cli_error(
					"--snapshot-signal takes a signal "
					"name or number, not '%s'",
					optarg);
			break;
		case 'X':
			if (!parse_exit_signals(optarg, exit_sigs,
						sizeof(exit_sigs)))
				return cli_error(
					"--exit-signals takes signals among "
					"TERM, INT, HUP, QUIT, USR1, USR2, "
					"PIPE and ALRM, comma-separated, not "
					"'%s'",
					optarg);
			break;
		case 'I':
			interval_ms = parse_duration_ms(optarg);
			if (interval_ms <= 0)
				return cli_error(
					"--interval takes a duration "
					"such as 500ms, 10s or 2m, not "
					"'%s'",
					optarg);
			break;
		case 'R':
			if (!cli_parse_size(optarg, &sample_rate) ||
			    sample_rate == 0)
				return cli_error(
					"--sample-rate takes a size in "
					"bytes such as 512K, not '%s'",
					optarg);
			break;
		case 'L':
			if (strcmp(optarg, "yes") && strcmp(optarg, "no"))
				return cli_error(
					"--leak-check takes yes or no, "
					"not '%s'",
					optarg);
			leak_check = !strcmp(optarg, "yes");
			leak_check_given = true;
			break;
		case 'K':
			if (strcmp(optarg, "own") && strcmp(optarg, "stop"))
				return cli_error(
					"--fork takes own or stop, not "
					"'%s'",
					optarg);
			fork_stop = !strcmp(optarg, "stop");
			break;
		case 'S': symbols = false; break;
		case 'q':
			quiet = true;
			cli_progress_off();
			break;
		case 'h': fputs(record_usage, stdout); return MP_EXIT_OK;
		case ':':
		default: return cli_bad_option("record", c, argv);
		}
	}
	if (optind >= argc)
		return cli_error("record: no program to run; see 'memprof "
				 "record --help'");
	if (snap_sig > 0 && exit_sigs[0]) {
		char num[16];
		snprintf(num, sizeof(num), "%d", snap_sig);
		for (char *t = exit_sigs; *t;) {
			size_t n = strcspn(t, ",");
			if (n == strlen(num) && !strncmp(t, num, n))
				return cli_error(
					"--exit-signals and --snapshot-signal "
					"cannot share a signal");
			t += n + (t[n] == ',');
		}
	}
	if (sample_rate) {
		/* Reachability needs every block; see memprof-record(1). */
		if (leak_check_given && leak_check)
			return cli_error(
				"--sample-rate and --leak-check=yes do "
				"not go together: a sampled heap "
				"cannot tell what is lost");
		leak_check = false;
	}
	char **prog_argv = argv + optind;
	char *shim = find_shim();
	if (!shim)
		return cli_error(
			"cannot find libmemprof.so next to memprof, in "
			"%s, or in $MEMPROF_PRELOAD",
			MP_LIBDIR);
	char *resolved = resolve_program(prog_argv[0]);
	if (resolved && cli_check_traceable(resolved, prog_argv[0]) != 0) {
		free(resolved);
		free(shim);
		return MP_EXIT_USAGE;
	}
	free(resolved);

	/* The program writes the file when it exits, maybe after a chdir:
	 * give it an absolute path. The default name needs the child's pid,
	 * so the child completes it. */
	char *outdir = NULL;
	if (output) {
		char *dup = strdup(output);
		outdir = strdup(dirname(dup));
		free(dup);
	} else {
		outdir = strdup(".");
	}
	char *absdir = realpath(outdir, NULL);
	if (!absdir || access(absdir, W_OK | X_OK) != 0) {
		int e = errno;
		cli_error("cannot write '%s': %s",
			  output ? output : "memprof.PROG.PID.memprof",
			  strerror(e));
		free(outdir);
		free(absdir);
		free(shim);
		return MP_EXIT_USAGE;
	}
	free(outdir);
	char *base_name = NULL;
	if (output) {
		char *dup = strdup(output);
		base_name = strdup(basename(dup));
		free(dup);
	}
	char abspath[PATH_MAX + 256] = "";
	if (output)
		snprintf(abspath, sizeof(abspath), "%s/%s", absdir, base_name);
	struct stat before;
	bool existed = output && stat(abspath, &before) == 0;
	struct sibling *old_files = NULL;
	size_t nold = 0;
	if (output)
		nold = siblings(abspath, &old_files);

	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		free(shim);
		return cli_error("cannot create a pipe: %s", strerror(errno));
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		free(shim);
		return cli_error("cannot fork: %s", strerror(errno));
	}
	if (pid == 0) {
		close(pfd[0]);
		char buf[PATH_MAX + 512];
		if (output)
			snprintf(buf, sizeof(buf), "%s", abspath);
		else
			snprintf(buf, sizeof(buf), "%s/memprof.%s.%d.memprof",
				 absdir, basename(prog_argv[0]), (int)getpid());
		setenv("MEMPROF_OUTPUT", buf, 1);
		char num[32];
		/* Only what this command line asks for reaches the shim. */
		unsetenv("MEMPROF_FOLLOW_EXEC");
		unsetenv("MEMPROF_FORK");
		setenv("MEMPROF_LEAK_CHECK", leak_check ? "yes" : "no", 1);
		unsetenv("MEMPROF_SAMPLE_RATE");
		if (sample_rate) {
			snprintf(num, sizeof(num), "%llu",
				 (unsigned long long)sample_rate);
			setenv("MEMPROF_SAMPLE_RATE", num, 1);
		}
		unsetenv("MEMPROF_SNAPSHOT_SIGNAL");
		unsetenv("MEMPROF_INTERVAL_MS");
		if (snap_sig > 0) {
			snprintf(num, sizeof(num), "%d", snap_sig);
			setenv("MEMPROF_SNAPSHOT_SIGNAL", num, 1);
		}
		if (interval_ms > 0) {
			snprintf(num, sizeof(num), "%ld", interval_ms);
			setenv("MEMPROF_INTERVAL_MS", num, 1);
		}
		unsetenv("MEMPROF_EXIT_SIGNALS");
		if (exit_sigs[0])
			setenv("MEMPROF_EXIT_SIGNALS", exit_sigs, 1);
		snprintf(num, sizeof(num), "%ld", depth);
		setenv("MEMPROF_DEPTH", num, 1);
		setenv("MEMPROF_UNWIND", unwind, 1);
		if (follow)
			setenv("MEMPROF_FOLLOW_EXEC", "1", 1);
		if (fork_stop)
			setenv("MEMPROF_FORK", "stop", 1);
		/* The shim tells this process (and what it execs) from its
		 * descendants by this pid. */
		snprintf(num, sizeof(num), "%d", (int)getpid());
		setenv("MEMPROF_PID", num, 1);
		set_preload(shim);
		execvp(prog_argv[0], prog_argv);
		int e = errno;
		if (write(pfd[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(e == ENOENT ? 127 : 126);
	}
	child_pid = pid;
	close(pfd[1]);
	struct mp_symcache *cache = symbols ? cli_symcache_new() : NULL;
	struct warmer *warmer = NULL;
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	struct sigaction sa = {.sa_handler = forward_signal};
	sigemptyset(&sa.sa_mask);
	int fwd[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH};
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaction(fwd[i], &sa, NULL);

	int exec_err = 0;
	ssize_t r;
	while ((r = read(pfd[0], &exec_err, sizeof(exec_err))) < 0 &&
	       errno == EINTR)
		;
	close(pfd[0]);
	/* End of file: the program was exec'd (the pipe is close-on-exec),
	 * so /proc/PID/maps is now its own, not a copy of ours. */
	if (cache && r == 0)
		warmer = warmer_start(cache, pid);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			int e = errno;
			warmer_finish(warmer, cache);
			siblings_free(old_files, nold);
			free(absdir);
			free(base_name);
			free(shim);
			return cli_error("waitpid: %s", strerror(e));
		}
	}
	warmer_stop(warmer);
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	free(shim);
	if (r == (ssize_t)sizeof(exec_err)) {
		warmer_finish(warmer, cache);
		siblings_free(old_files, nold);
		free(absdir);
		free(base_name);
		cli_error("cannot run '%s': %s", prog_argv[0],
			  strerror(exec_err));
		return exec_err == ENOENT ? 127 : 126;
	}
	int code = WIFEXITED(status) ? WEXITSTATUS(status)
				     : 128 + WTERMSIG(status);

	/* Paths as the user would write them: -o as given, the default
	 * name in the current directory. */
	char path[PATH_MAX + 512];
	if (output)
		snprintf(path, sizeof(path), "%s", output);
	else
		snprintf(path, sizeof(path), "memprof.%s.%d.memprof",
			 basename(prog_argv[0]), (int)pid);
	free(absdir);
	free(base_name);
	struct stat after;
	bool fresh = stat(path, &after) == 0 &&
		     !(existed && after.st_ino == before.st_ino &&
		       after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
		       after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
	if (!fresh) {
		if (WIFSIGNALED(status))
			cli_error("no snapshot was written to '%s': the "
				  "program was killed by signal %d (%s)",
				  path, WTERMSIG(status),
				  strsignal(WTERMSIG(status)));
		else
			cli_error("no snapshot was written to '%s' (the "
				  "program exec'd a program that was not "
				  "traced, or the shim could not write; see "
				  "its message above)",
				  path);
		warmer_finish(warmer, cache);
		siblings_free(old_files, nold);
		return code;
	}
	if (symbols) {
		cli_symbolize_file(path, cache, quiet);
		/* This run's other files: numbered snapshots FILE.N.memprof
		 * and forked children's FILE.pidPID.memprof, not files an
		 * earlier run left (same name, same inode and time). */
		struct sibling *now = NULL;
		size_t nnow = siblings(output ? abspath : path, &now);
		for (size_t i = 0; i < nnow; i++)
			if (!sibling_known(old_files, nold, &now[i]))
				cli_symbolize_file(now[i].path, cache, quiet);
		siblings_free(now, nnow);
	}
	warmer_leave(warmer, cache);
	siblings_free(old_files, nold);
	if (!quiet)
		summary(prog_argv[0], status, path);
	return code;
}
