/*
 * cmd_snapshot.c - `memprof snapshot PID`: ask a program running under
 * `memprof record --snapshot-signal SIG` to write a snapshot now.
 *
 * The program's environment (/proc/PID/environ) says which signal its shim
 * listens to (MEMPROF_SNAPSHOT_SIGNAL) and where it writes
 * (MEMPROF_OUTPUT). The shim writes snapshot N of the run to FILE.N.memprof
 * through a temporary name and rename(2), so a file that exists under that
 * name is complete: after the signal we wait for a name that was not there
 * before it.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define POLL_NS 50000000L /* 50 ms */
#define DEFAULT_WAIT 5.0

static void snapshot_usage(FILE *f)
{
	fputs("usage: memprof snapshot [options] PID\n"
	      "\n"
	      "Ask process PID, running under 'memprof record "
	      "--snapshot-signal SIG',\n"
	      "to write a snapshot FILE.N.memprof now, and print its path.\n"
	      "\n"
	      "  -s, --signal SIG       send SIG (USR2, SIGUSR1, RTMIN+1, 12) "
	      "instead of\n"
	      "                         the signal the program was started "
	      "with\n"
	      "  -w, --wait SECONDS     wait this long for the file (default "
	      "5; 0: send\n"
	      "                         the signal and do not wait)\n"
	      "  -h, --help             show this help\n",
	      f);
}

/* What the program's environment says. */
struct target {
	pid_t pid;
	char *signal; /* MEMPROF_SNAPSHOT_SIGNAL, or NULL */
	char *output; /* MEMPROF_OUTPUT, or NULL */
	char *root;   /* MEMPROF_PID, or NULL */
};

static void target_free(struct target *t)
{
	free(t->signal);
	free(t->output);
	free(t->root);
}

/* Reads all of a /proc file (they have no size). NULL and errno on
 * failure. */
static char *read_proc(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0, r;
	char *buf = malloc(cap);
	if (!buf) {
		fclose(f);
		errno = ENOMEM;
		return NULL;
	}
	while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n < 2) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	int e = ferror(f) ? errno : 0;
	fclose(f);
	if (e) {
		free(buf);
		errno = e;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* The value of NAME in a NUL-separated environment block, malloc'd. */
static char *env_value(const char *env, size_t len, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < len;) {
		const char *e = env + i;
		size_t el = strnlen(e, len - i);
		if (el > nl && !strncmp(e, name, nl) && e[nl] == '=')
			return strndup(e + nl + 1, el - nl - 1);
		i += el + 1;
	}
	return NULL;
}

static int read_target(pid_t pid, struct target *t)
{
	char path[64];
	size_t len = 0;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	char *env = read_proc(path, &len);
	if (!env) {
		if (errno == ENOENT || errno == ESRCH)
			return cli_error("no process %d", (int)pid);
		return cli_error("cannot read the environment of process %d: "
				 "%s",
				 (int)pid, strerror(errno));
	}
	t->signal = env_value(env, len, "MEMPROF_SNAPSHOT_SIGNAL");
	t->output = env_value(env, len, "MEMPROF_OUTPUT");
	t->root = env_value(env, len, "MEMPROF_PID");
	free(env);
	return MP_EXIT_OK;
}

/*
 * The run's output path as the shim has it (shim_init.c): MEMPROF_OUTPUT
 * or memprof.PROG.PID.memprof, relative to the process's working
 * directory, with .pidPID added for a process that is not the one record
 * started. Returns the stem (the path without .memprof) in *stem, made
 * absolute when /proc says where the process is.
 */
static int output_stem(const struct target *t, char **stem)
{
	char *out = NULL;
	char link[64];

	if (t->output && *t->output) {
		out = strdup(t->output);
	} else {
		char exe[PATH_MAX];
		snprintf(link, sizeof(link), "/proc/%d/exe", (int)t->pid);
		ssize_t n = readlink(link, exe, sizeof(exe) - 1);
		const char *base = "prog";
		if (n > 0) {
			exe[n] = '\0';
			const char *slash = strrchr(exe, '/');
			base = slash ? slash + 1 : exe;
		}
		if (asprintf(&out, "memprof.%s.%d.memprof", base, (int)t->pid) <
		    0)
			out = NULL;
	}
	if (!out)
		return cli_error("out of memory");
	size_t n = strlen(out);
	const char ext[] = ".memprof";
	if (n >= sizeof(ext) - 1 && !strcmp(out + n - (sizeof(ext) - 1), ext))
		out[n - (sizeof(ext) - 1)] = '\0';
	if (t->root && *t->root && atol(t->root) != (long)t->pid) {
		char *p = NULL;
		if (asprintf(&p, "%s.pid%d", out, (int)t->pid) < 0) {
			free(out);
			return cli_error("out of memory");
		}
		free(out);
		out = p;
	}
	if (out[0] != '/') {
		char cwd[PATH_MAX];
		snprintf(link, sizeof(link), "/proc/%d/cwd", (int)t->pid);
		ssize_t c = readlink(link, cwd, sizeof(cwd) - 1);
		if (c > 0) {
			char *p = NULL;
			cwd[c] = '\0';
			if (asprintf(&p, "%s/%s", cwd, out) < 0) {
				free(out);
				return cli_error("out of memory");
			}
			free(out);
			out = p;
		}
	}
	*stem = out;
	return MP_EXIT_OK;
}

/* The snapshot files FILE.N.memprof present now, as a sorted list of N. */
struct seen {
	unsigned long long *n;
	size_t len, cap;
};

static int cmp_ull(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a;
	unsigned long long y = *(const unsigned long long *)b;
	return x < y ? -1 : x > y;
}

static bool seen_has(const struct seen *s, unsigned long long n)
{
	return s->len &&
	       bsearch(&n, s->n, s->len, sizeof(*s->n), cmp_ull) != NULL;
}

/* N when name is BASE.N.memprof with N a positive decimal number. */
static bool numbered(const char *name, const char *base, unsigned long long *n)
{
	size_t bl = strlen(base);
	if (strncmp(name, base, bl) || name[bl] != '.')
		return false;
	const char *d = name + bl + 1;
	if (*d < '1' || *d > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(d, &end, 10);
	if (errno || strcmp(end, ".memprof"))
		return false;
	*n = v;
	return true;
}

/*
 * Lists dir for BASE.N.memprof. With before, returns in *found the
 * smallest N not in before (0 when there is none). Returns -1 with errno
 * when dir cannot be read.
 */
static int scan(const char *dir, const char *base, struct seen *out,
		const struct seen *before, unsigned long long *found)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return -1;
	if (found)
		*found = 0;
	while ((e = readdir(d)) != NULL) {
		unsigned long long n;
		if (!numbered(e->d_name, base, &n))
			continue;
		if (before) {
			if (!seen_has(before, n) && (!*found || n < *found))
				*found = n;
			continue;
		}
		if (out->len == out->cap) {
			size_t nc = out->cap ? out->cap * 2 : 16;
			unsigned long long *p =
				realloc(out->n, nc * sizeof(*p));
			if (!p) {
				closedir(d);
				errno = ENOMEM;
				return -1;
			}
			out->n = p;
			out->cap = nc;
		}
		out->n[out->len++] = n;
	}
	closedir(d);
	if (out && out->len)
		qsort(out->n, out->len, sizeof(*out->n), cmp_ull);
	return 0;
}

/*
 * Whether process pid has a handler for sig (SigCgt of /proc/PID/status).
 * -1 when that cannot be told.
 */
static int catches(pid_t pid, int sig)
{
	char path[64];
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *st = read_proc(path, &len);
	if (!st)
		return -1;
	const char *p = strstr(st, "\nSigCgt:");
	int r = -1;
	if (p && sig >= 1 && sig <= 64) {
		unsigned long long mask = strtoull(p + 8, NULL, 16);
		r = (int)(mask >> (sig - 1) & 1);
	}
	free(st);
	return r;
}

static bool parse_pid(const char *s, pid_t *pid)
{
	char *end;
	if (*s < '1' || *s > '9')
		return false;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > INT_MAX)
		return false;
	*pid = (pid_t)v;
	return true;
}

static bool parse_seconds(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v < 0 ||
	    v > 86400.0 * 365)
		return false;
	*out = v;
	return true;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"signal", required_argument, NULL, 's'},
		{"wait", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *sig_arg = NULL, *wait_arg = NULL;
	double wait = DEFAULT_WAIT;
	int c, sig = -1;

	opterr = 0;
	optind = 0; /* glibc: full reset, parsing starts at argv[1] */
	while ((c = getopt_long(argc, argv, ":s:w:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			sig_arg = optarg;
			sig = cli_parse_signal(optarg);
			if (sig <= 0)
				return cli_error("snapshot: '%s' is not a "
						 "signal (USR2, SIGUSR1, "
						 "RTMIN+1, 12, ...)",
						 optarg);
			break;
		case 'w':
			wait_arg = optarg;
			if (!parse_seconds(optarg, &wait))
				return cli_error("snapshot: --wait takes a "
						 "number of seconds, not '%s'",
						 optarg);
			break;
		case 'h': snapshot_usage(stdout); return MP_EXIT_OK;
		case ':':
		default: return cli_bad_option("snapshot", c, argv);
		}
	}
	if (optind >= argc)
		return cli_error("snapshot: no process id given; see 'memprof "
				 "snapshot --help'");
	if (optind + 1 < argc)
		return cli_error("snapshot: one process id only, got '%s' too",
				 argv[optind + 1]);
	pid_t pid;
	if (!parse_pid(argv[optind], &pid))
		return cli_error("snapshot: '%s' is not a process id",
				 argv[optind]);

	struct target t;
	int status = read_target(pid, &t);
	if (status)
		return status;
	if (!sig_arg) {
		/* The shim ignores an empty or zero value too. */
		if (!t.signal || !*t.signal || !strcmp(t.signal, "0")) {
			target_free(&t);
			return cli_error("process %d was not started with "
					 "'memprof record --snapshot-signal'",
					 (int)pid);
		}
		sig = cli_parse_signal(t.signal);
		if (sig <= 0 ||
		    strspn(t.signal, "0123456789") != strlen(t.signal)) {
			cli_error("process %d has a bad "
				  "MEMPROF_SNAPSHOT_SIGNAL '%s'",
				  (int)pid, t.signal);
			target_free(&t);
			return MP_EXIT_USAGE;
		}
	}

	/*
	 * The shim installs its handler when the program starts, and a
	 * signal nobody catches would most likely kill the program: send
	 * the run's own signal only once it is caught. --signal is the
	 * caller's choice.
	 */
	if (!sig_arg && catches(pid, sig) == 0) {
		cli_error("process %d does not catch signal %d (%s) yet; not "
			  "sending it",
			  (int)pid, sig, strsignal(sig));
		target_free(&t);
		return MP_EXIT_USAGE;
	}

	/* What is there before the signal. */
	char *stem = NULL, *dir = NULL;
	const char *base = NULL;
	struct seen before = {0};
	if (wait > 0) {
		status = output_stem(&t, &stem);
		if (status) {
			target_free(&t);
			return status;
		}
		char *slash = strrchr(stem, '/');
		if (slash) {
			dir = strndup(stem, (size_t)(slash - stem));
			if (dir && !*dir) {
				free(dir);
				dir = strdup("/");
			}
			base = slash + 1;
		} else {
			dir = strdup(".");
			base = stem;
		}
		if (!dir) {
			status = cli_error("out of memory");
			goto out;
		}
		if (scan(dir, base, &before, NULL, NULL) < 0) {
			status = cli_error("cannot read directory '%s': %s",
					   dir, strerror(errno));
			goto out;
		}
	}

	if (kill(pid, sig) != 0) {
		if (errno == ESRCH)
			status = cli_error("no process %d", (int)pid);
		else
			status = cli_error("cannot signal process %d: %s",
					   (int)pid, strerror(errno));
		goto out;
	}
	if (wait <= 0)
		goto out;

	double deadline = now_s() + wait;
	for (;;) {
		unsigned long long n = 0;
		bool gone = kill(pid, 0) != 0 && errno == ESRCH;
		if (scan(dir, base, NULL, &before, &n) < 0) {
			status = cli_error("cannot read directory '%s': %s",
					   dir, strerror(errno));
			goto out;
		}
		if (n) {
			printf("%s.%llu.memprof\n", stem, n);
			if (fflush(stdout) != 0 || ferror(stdout))
				status = cli_error("cannot write the output");
			goto out;
		}
		if (gone) {
			cli_error("process %d exited without writing a "
				  "snapshot",
				  (int)pid);
			status = MP_EXIT_FINDING;
			goto out;
		}
		if (now_s() >= deadline)
			break;
		struct timespec ts = {0, POLL_NS};
		nanosleep(&ts, NULL);
	}
	cli_error("no snapshot from %d within %s s", (int)pid,
		  wait_arg ? wait_arg : "5");
	status = MP_EXIT_FINDING;
out:
	free(before.n);
	free(stem);
	free(dir);
	target_free(&t);
	return status;
}
