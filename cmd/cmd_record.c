/*
 * cmd_record.c - memprof record: run a program under the shim.
 *
 * Finds libmemprof.so, runs the program with it preloaded, waits, then
 * symbolizes the snapshots the run wrote (the binaries are still there) and
 * embeds the symbols. Exits with the program's own status (128 + signal
 * when it was killed). Keyboard signals reach the program through the
 * terminal's process group, so record ignores SIGINT and SIGQUIT while it
 * waits and forwards the signals someone sends to record itself.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
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

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
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

/* Why the shim cannot be preloaded into path, or NULL when it can. */
static const char *untraceable(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return NULL; /* exec will say what is wrong */
	if ((st.st_mode & (S_ISUID | S_ISGID)) && getuid() != 0)
		return "it is a set-user-ID or set-group-ID program, and the "
		       "dynamic loader ignores LD_PRELOAD for those";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	Elf64_Ehdr eh;
	const char *why = NULL;
	if (read(fd, &eh, sizeof(eh)) == (ssize_t)sizeof(eh) &&
	    !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
	    eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phnum < 4096) {
		bool interp = false;
		for (int i = 0; i < eh.e_phnum; i++) {
			Elf64_Phdr ph;
			if (pread(fd, &ph, sizeof(ph),
				  (off_t)(eh.e_phoff +
					  (uint64_t)i * eh.e_phentsize)) !=
			    (ssize_t)sizeof(ph))
				break;
			if (ph.p_type == PT_INTERP)
				interp = true;
		}
		/* Without an interpreter the kernel starts the program
		 * itself and ld.so never reads LD_PRELOAD (static and
		 * static-pie executables). */
		if (!interp)
			why = "it is statically linked, so no shim can be "
			      "preloaded into it";
	}
	close(fd);
	return why;
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
		case 'q': quiet = true; break;
		case 'h': fputs(record_usage, stdout); return MP_EXIT_OK;
		case ':':
			return cli_error("record: option '%s' needs a value",
					 argv[optind - 1]);
		default:
			if (optopt)
				return cli_error(
					"record: unknown option '-%c'; "
					"see 'memprof record --help'",
					optopt);
			return cli_error("record: unknown option '%s'; see "
					 "'memprof record --help'",
					 argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_error("record: no program to run; see 'memprof "
				 "record --help'");
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
	if (resolved) {
		const char *why = untraceable(resolved);
		if (why) {
			cli_error("cannot trace '%s': %s", prog_argv[0], why);
			free(resolved);
			free(shim);
			return MP_EXIT_USAGE;
		}
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
	int status = 0;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			free(shim);
			return cli_error("waitpid: %s", strerror(errno));
		}
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	free(shim);
	if (r == (ssize_t)sizeof(exec_err)) {
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
		return code;
	}
	if (symbols) {
		cli_symbolize_file(path, quiet);
		/* This run's other files: numbered snapshots FILE.N.memprof
		 * and forked children's FILE.pidPID.memprof, not files an
		 * earlier run left (same name, same inode and time). */
		struct sibling *now = NULL;
		size_t nnow = siblings(output ? abspath : path, &now);
		for (size_t i = 0; i < nnow; i++)
			if (!sibling_known(old_files, nold, &now[i]))
				cli_symbolize_file(now[i].path, quiet);
		siblings_free(now, nnow);
	}
	siblings_free(old_files, nold);
	if (!quiet)
		summary(prog_argv[0], status, path);
	return code;
}
