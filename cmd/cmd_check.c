/*
 * cmd_check.c - `memprof check`: a CI gate on a snapshot's budgets.
 *
 * Reads a snapshot (or records one: `check [budgets] -- PROGRAM ARGS`,
 * through cmd_record), asks lib/trace to evaluate the budgets
 * (mp_check_run) and reports: one line per violation on stderr, passes on
 * stdout with -v, or one JSON document, and optionally a JUnit XML file.
 * Exit status: 0 every budget holds, 1 one is violated, 2 usage or input
 * error, 3 the recorded program itself failed (this wins over 1). No
 * analysis here: only options, running, wording and printing.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "memprof_trace.h"
#include "trace/trace_json.h"

#define MAX_ALLOC_FNS 64
#define MAX_SUPP_FILES 64
#define MP_EXIT_PROGRAM 3

static void check_usage(FILE *f)
{
	fputs("usage: memprof check [budgets] [options] FILE\n"
	      "       memprof check [budgets] [options] -- PROGRAM [ARGS...]\n"
	      "\n"
	      "Check snapshot FILE, or record PROGRAM and check its exit\n"
	      "snapshot, against budgets. Exit status: 0 every budget holds,\n"
	      "1 a budget is violated, 2 usage or input error, 3 PROGRAM "
	      "failed.\n"
	      "\n"
	      "budgets (limits are inclusive; sizes take K, M, G):\n"
	      "      --max-leaked BYTES        leaked bytes of the counted "
	      "kinds\n"
	      "      --max-leaked-blocks N     leaked blocks of the counted "
	      "kinds\n"
	      "      --leak-kinds LIST         kinds counted: a comma list of "
	      "definite,\n"
	      "                                indirect, possible, reachable, "
	      "suppressed,\n"
	      "                                or all or none (default "
	      "definite,indirect)\n"
	      "      --no-leaked-cycles        no leaked cycle at all\n"
	      "      --max-site-leak BYTES     no single call site (loss "
	      "record) leaks more\n"
	      "      --max-peak BYTES          peak of live heap bytes\n"
	      "      --baseline OLD            snapshot to measure growth "
	      "against\n"
	      "      --max-growth BYTES|PCT%   no call site grows by more "
	      "(PCT% of OLD's\n"
	      "                                total)\n"
	      "      --growth-of live|peak     compare live bytes (default) "
	      "or bytes at\n"
	      "                                the peak\n"
	      "\n"
	      "options:\n"
	      "      --suppressions FILE  LeakSanitizer-style 'leak:PATTERN' "
	      "lines;\n"
	      "                           repeatable\n"
	      "      --alloc-fn GLOB      treat functions matching GLOB as "
	      "part of the\n"
	      "                           allocator (e.g. xmalloc); "
	      "repeatable\n"
	      "  -o, --output FILE        with -- PROGRAM: keep the snapshot "
	      "in FILE\n"
	      "      --json               print one JSON document on stdout\n"
	      "      --junit FILE         also write the results as JUnit "
	      "XML\n"
	      "  -v, --verbose            also print the budgets that hold\n"
	      "  -h, --help               show this help\n",
	      f);
}

/* ---- the options ------------------------------------------------------ */

struct check_args {
	struct mp_check_opts opts;
	/* The limits as the user wrote them, for the messages. */
	const char *limit_text[MP_CHECK_NBUDGETS];
	const char *baseline;
	const char *output;
	const char *junit;
	bool json, verbose;
	const char *globs[MAX_ALLOC_FNS];
	const char *supp_files[MAX_SUPP_FILES];
	size_t nsupp;
};

/* "10%", "2.5%": a finite percentage >= 0. */
static bool parse_percent(const char *s, double *out)
{
	size_t n = strlen(s);
	if (n < 2 || s[n - 1] != '%' ||
	    !((*s >= '0' && *s <= '9') || *s == '.'))
		return false;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end != s + n - 1 || !isfinite(v) || v < 0)
		return false;
	*out = v;
	return true;
}

static int set_budget(struct check_args *a, enum mp_check_budget b,
		      const char *text)
{
	a->opts.budgets |= 1u << b;
	a->limit_text[b] = text;
	return 0;
}

/* ---- wording ------------------------------------------------------------ */

/* A growable message buffer; truncates silently past its size. */
struct msg {
	char s[1024];
	size_t n;
};

static void __attribute__((format(printf, 2, 3)))
msg_add(struct msg *m, const char *fmt, ...)
{
	va_list ap;
	if (m->n >= sizeof(m->s) - 1)
		return;
	va_start(ap, fmt);
	int r = vsnprintf(m->s + m->n, sizeof(m->s) - m->n, fmt, ap);
	va_end(ap);
	if (r > 0)
		m->n += (size_t)r < sizeof(m->s) - m->n
				? (size_t)r
				: sizeof(m->s) - m->n - 1;
}

/* "make_buffer (demo.c:30)", "0x7f12 (libfoo.so)", "<unknown>". */
static void msg_site(struct msg *m, const struct mp_resolved_frame *f)
{
	if (f->function)
		msg_add(m, "%s", f->function);
	else if (f->address)
		msg_add(m, "0x%" PRIx64, f->address);
	else
		msg_add(m, "<unknown>");
	if (f->file) {
		msg_add(m, " (%s", cli_base_name(f->file));
		if (f->line)
			msg_add(m, ":%" PRIu32, f->line);
		msg_add(m, ")");
	} else if (f->module) {
		msg_add(m, " (%s)", cli_base_name(f->module));
	}
}

static void msg_kinds(struct msg *m, unsigned kinds)
{
	bool first = true;
	msg_add(m, "(");
	for (unsigned k = 0; k < MP_LEAK_NKINDS; k++)
		if (kinds & 1u << k) {
			msg_add(m, "%s%s", first ? "" : ", ",
				mp_leak_kind_name((enum mp_leak_kind)k));
			first = false;
		}
	msg_add(m, ")");
}

/* "--max-leaked 0" */
static void msg_budget(struct msg *m, const struct check_args *a,
		       enum mp_check_budget b)
{
	msg_add(m, "--%s", mp_check_budget_name(b));
	if (a->limit_text[b])
		msg_add(m, " %s", a->limit_text[b]);
}

/* "1.5%" of part in whole, or "" when whole is 0. */
static void msg_percent(struct msg *m, uint64_t part, uint64_t whole)
{
	msg_add(m, "%.1f%%", 100.0 * (double)part / (double)whole);
}

/*
 * The description of one result, after "memprof: check failed: ":
 * "--max-leaked 0: 4,208 bytes leaked (definite, indirect) in 3 blocks;
 * worst: make_buffer (demo.c:30) 4,096 bytes".
 */
static void describe(struct msg *m, const struct check_args *a,
		     const struct mp_check_result *r)
{
	char b1[32], b2[32], b3[32], b4[32];
	unsigned kinds = a->opts.leak_kinds;
	bool growth_peak = a->opts.growth_of == MP_GROWTH_PEAK;

	msg_budget(m, a, r->budget);
	msg_add(m, ": ");
	switch (r->budget) {
	case MP_CHECK_MAX_LEAKED:
		if (r->measured == 0) {
			msg_add(m, "0 bytes leaked");
			return;
		}
		msg_add(m, "%s bytes leaked ", cli_commas(r->bytes, b1));
		msg_kinds(m, kinds);
		msg_add(m, " in %s %s", cli_commas(r->blocks, b2),
			cli_plural(r->blocks, "block", "blocks"));
		if (r->has_site) {
			msg_add(m, "; worst: ");
			msg_site(m, &r->site);
			msg_add(m, " %s bytes", cli_commas(r->site_bytes, b3));
		}
		return;
	case MP_CHECK_MAX_LEAKED_BLOCKS:
		if (r->measured == 0) {
			msg_add(m, "0 blocks leaked");
			return;
		}
		msg_add(m, "%s %s leaked ", cli_commas(r->blocks, b1),
			cli_plural(r->blocks, "block", "blocks"));
		msg_kinds(m, kinds);
		msg_add(m, ", %s bytes", cli_commas(r->bytes, b2));
		if (r->has_site) {
			msg_add(m, "; worst: ");
			msg_site(m, &r->site);
			msg_add(m, " %s %s", cli_commas(r->site_blocks, b3),
				cli_plural(r->site_blocks, "block", "blocks"));
		}
		return;
	case MP_CHECK_NO_LEAKED_CYCLES:
		if (r->measured == 0) {
			msg_add(m, "0 leaked cycles");
			return;
		}
		msg_add(m, "%s leaked %s, %s bytes in %s blocks",
			cli_commas(r->measured, b1),
			cli_plural(r->measured, "cycle", "cycles"),
			cli_commas(r->bytes, b2), cli_commas(r->blocks, b3));
		if (r->has_site) {
			msg_add(m, "; worst: ");
			msg_site(m, &r->site);
			msg_add(m, " %s bytes in %s %s",
				cli_commas(r->site_bytes, b4),
				cli_commas(r->site_blocks, b1),
				cli_plural(r->site_blocks, "block", "blocks"));
		}
		return;
	case MP_CHECK_MAX_SITE_LEAK:
		if (!r->has_site) {
			msg_add(m, "no call site leaked");
			return;
		}
		msg_add(m, "%s bytes leaked (%s) in %s %s at one call site",
			cli_commas(r->measured, b1),
			mp_leak_kind_name(r->site_kind),
			cli_commas(r->blocks, b2),
			cli_plural(r->blocks, "block", "blocks"));
		msg_add(m, "; worst: ");
		msg_site(m, &r->site);
		return;
	case MP_CHECK_MAX_PEAK:
		msg_add(m, "peak %s bytes", cli_commas(r->measured, b1));
		if (r->has_site) {
			msg_add(m, "; worst: ");
			msg_site(m, &r->site);
			msg_add(m, " %s bytes at the peak",
				cli_commas(r->site_bytes, b2));
		}
		return;
	default: /* MP_CHECK_MAX_GROWTH */
		if (!r->has_site) {
			msg_add(m, "no call site grew (%s -> %s %s)",
				cli_commas(r->base_bytes, b1),
				cli_commas(r->bytes, b2),
				growth_peak ? "bytes at the peak"
					    : "live bytes");
			return;
		}
		msg_add(m, "one call site grew by %s %s",
			cli_commas(r->measured, b1),
			growth_peak ? "bytes at the peak" : "live bytes");
		if (r->base_bytes) {
			msg_add(m, " (");
			msg_percent(m, r->measured, r->base_bytes);
			msg_add(m, " of the baseline's %s)",
				cli_commas(r->base_bytes, b2));
		} else {
			msg_add(m, " (the baseline held none)");
		}
		msg_add(m, "; worst: ");
		msg_site(m, &r->site);
		msg_add(m, " %s -> %s bytes", cli_commas(r->site_old_bytes, b3),
			cli_commas(r->site_bytes, b4));
		return;
	}
}

static const char *unit_of(enum mp_check_budget b)
{
	switch (b) {
	case MP_CHECK_MAX_LEAKED_BLOCKS: return "blocks";
	case MP_CHECK_NO_LEAKED_CYCLES: return "cycles";
	default: return "bytes";
	}
}

/* ---- the program form ---------------------------------------------------- */

/* What happened to the program, from SIGCHLD's siginfo: record reaps it
 * and passes on only 128 + signal, which a program can exit with too. */
static volatile sig_atomic_t child_seen, child_code, child_status;

static void on_sigchld(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	if (child_seen ||
	    (si->si_code != CLD_EXITED && si->si_code != CLD_KILLED &&
	     si->si_code != CLD_DUMPED))
		return;
	child_code = si->si_code;
	child_status = si->si_status;
	child_seen = 1;
}

struct program {
	char **argv;
	size_t argc;
	bool ran;	  /* a child was started and ended */
	bool failed;	  /* it exited non-zero or was killed */
	int status;	  /* exit status, or 128 + signal */
	int signal;	  /* 0 when it exited */
	bool no_snapshot; /* it wrote none: budgets not checked */
};

/* Whether PROGRAM can be found the way execvp(3) looks for it. */
static bool program_exists(const char *prog)
{
	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0;
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/bin:/usr/bin";
	while (*path) {
		const char *colon = strchrnul(path, ':');
		char buf[PATH_MAX];
		/* An empty entry is the current directory (execvp(3)). */
		int n = colon == path
				? snprintf(buf, sizeof(buf), "./%s", prog)
				: snprintf(buf, sizeof(buf), "%.*s/%s",
					   (int)(colon - path), path, prog);
		struct stat st;
		if (n > 0 && (size_t)n < sizeof(buf) && stat(buf, &st) == 0 &&
		    S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
			return true;
		path = *colon ? colon + 1 : colon;
	}
	return false;
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char p[PATH_MAX];
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

/*
 * Records the program into path with cmd_record. With --json its stdout
 * goes to stderr so that ours holds only the document. Returns -1 when
 * record itself failed (it said why), else 0 with *p filled.
 */
static int run_program(struct program *p, const char *path, bool json)
{
	char **rargv = calloc(p->argc + 6, sizeof(*rargv));
	if (!rargv) {
		cli_error("out of memory");
		return -1;
	}
	size_t k = 0;
	rargv[k++] = (char *)"record";
	rargv[k++] = (char *)"-q";
	rargv[k++] = (char *)"-o";
	rargv[k++] = (char *)path;
	rargv[k++] = (char *)"--";
	for (size_t i = 0; i < p->argc; i++)
		rargv[k++] = p->argv[i];

	struct sigaction sa = {.sa_sigaction = on_sigchld,
			       .sa_flags =
				       SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP};
	struct sigaction old;
	sigemptyset(&sa.sa_mask);
	child_seen = 0;
	sigaction(SIGCHLD, &sa, &old);

	int saved_out = -1;
	fflush(stdout);
	if (json) {
		saved_out = dup(1);
		if (saved_out >= 0)
			dup2(2, 1);
	}
	struct stat before;
	bool existed = stat(path, &before) == 0;
	int code = cmd_record((int)k, rargv);
	fflush(stdout);
	if (saved_out >= 0) {
		dup2(saved_out, 1);
		close(saved_out);
	}
	sigaction(SIGCHLD, &old, NULL);
	free(rargv);

	if (!child_seen)
		return -1; /* record failed before the program ran */
	p->ran = true;
	if (child_code == CLD_EXITED) {
		p->status = child_status;
		p->signal = 0;
	} else {
		p->signal = child_status;
		p->status = 128 + child_status;
	}
	p->failed = p->status != 0 || p->signal != 0;
	(void)code;
	struct stat after;
	p->no_snapshot = stat(path, &after) != 0 ||
			 (existed && after.st_ino == before.st_ino &&
			  after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
			  after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
	return 0;
}

/* "sh exited with status 4", "sh was killed by signal 9 (SIGKILL)" */
static void describe_program(struct msg *m, const struct program *p)
{
	msg_add(m, "%s ", p->argv[0]);
	if (p->signal) {
		const char *abbrev = sigabbrev_np(p->signal);
		msg_add(m, "was killed by signal %d", p->signal);
		if (abbrev)
			msg_add(m, " (SIG%s)", abbrev);
	} else {
		msg_add(m, "exited with status %d", p->status);
	}
}

/* ---- JSON and JUnit ------------------------------------------------------ */

static void json_site(struct mp_json *j, const struct mp_check_result *r)
{
	mp_json_key(j, "site");
	if (!r->has_site) {
		mp_json_null(j);
		return;
	}
	mp_json_begin_object(j);
	mp_json_frame_fields(j, &r->site);
	mp_json_end_object(j);
}

static enum mp_err print_json(const struct check_args *a, const char *file,
			      const struct program *p,
			      const struct mp_check_report *rep, bool ok)
{
	struct mp_json j;
	mp_json_init(&j, stdout, true);
	mp_json_begin_object(&j);
	mp_json_kv_bool(&j, "ok", ok);
	mp_json_kv_string(&j, "file", file);
	mp_json_key(&j, "program");
	if (!p) {
		mp_json_null(&j);
	} else {
		mp_json_begin_object(&j);
		mp_json_kv_strings(&j, "argv", p->argv, p->argc);
		mp_json_kv_uint(&j, "status", (uint64_t)p->status);
		mp_json_key(&j, "signal");
		if (p->signal)
			mp_json_uint(&j, (uint64_t)p->signal);
		else
			mp_json_null(&j);
		mp_json_end_object(&j);
	}
	if (p && p->no_snapshot)
		mp_json_kv_string(&j, "error",
				  "no snapshot was written: budgets not "
				  "checked");
	mp_json_key(&j, "budgets");
	mp_json_begin_array(&j);
	for (size_t i = 0; rep && i < rep->nresults; i++) {
		const struct mp_check_result *r = &rep->results[i];
		struct msg m = {.n = 0};
		describe(&m, a, r);
		mp_json_begin_object(&j);
		mp_json_kv_string(&j, "name", mp_check_budget_name(r->budget));
		if (r->budget == MP_CHECK_MAX_GROWTH &&
		    a->opts.growth_is_percent) {
			mp_json_kv_string(&j, "limit",
					  a->limit_text[r->budget]);
			mp_json_kv_uint(&j, "limit_bytes", r->limit);
		} else {
			mp_json_kv_uint(&j, "limit", r->limit);
		}
		mp_json_kv_uint(&j, "measured", r->measured);
		mp_json_kv_string(&j, "unit", unit_of(r->budget));
		mp_json_kv_bool(&j, "ok", r->ok);
		mp_json_kv_string(&j, "message", m.s);
		json_site(&j, r);
		mp_json_end_object(&j);
	}
	mp_json_end_array(&j);
	mp_json_end_object(&j);
	return mp_json_finish(&j);
}

/* The length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    cp == 0xfffe || cp == 0xffff)
		return 0;
	return len;
}

/* s as XML 1.0 character data or attribute value: markup escaped, and
 * what XML cannot hold (control characters, broken UTF-8) as U+FFFD. */
static void xml_text(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		switch (c) {
		case '&':
			fputs("&amp;", f);
			i++;
			continue;
		case '<':
			fputs("&lt;", f);
			i++;
			continue;
		case '>':
			fputs("&gt;", f);
			i++;
			continue;
		case '"':
			fputs("&quot;", f);
			i++;
			continue;
		case '\'':
			fputs("&apos;", f);
			i++;
			continue;
		case '\n':
			fputs("&#10;", f);
			i++;
			continue;
		case '\t':
			fputs("&#9;", f);
			i++;
			continue;
		default: break;
		}
		if (c < 0x20) {
			fputs("\xef\xbf\xbd", f);
			i++;
			continue;
		}
		size_t len = utf8_len(s + i, n - i);
		if (len == 0) {
			fputs("\xef\xbf\xbd", f);
			i++;
			continue;
		}
		fwrite(s + i, 1, len, f);
		i += len;
	}
}

static int write_junit(const char *path, const struct check_args *a,
		       const char *file, const struct program *p,
		       const struct mp_check_report *rep)
{
	size_t nbudgets = 0, failures = 0, skipped = 0, errors = 0;
	for (unsigned b = 0; b < MP_CHECK_NBUDGETS; b++)
		if (a->opts.budgets & 1u << b)
			nbudgets++;
	if (rep)
		for (size_t i = 0; i < rep->nresults; i++)
			failures += !rep->results[i].ok;
	else
		skipped = nbudgets;
	if (p && p->failed)
		errors = 1;
	size_t tests = nbudgets + (p ? 1 : 0);

	FILE *f = fopen(path, "w");
	if (!f)
		return cli_error("cannot write '%s': %s", path,
				 strerror(errno));
	struct msg suite = {.n = 0};
	msg_add(&suite, "memprof check %s", p ? p->argv[0] : file);
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
	fprintf(f,
		"<testsuites tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
		"skipped=\"%zu\">\n",
		tests, failures, errors, skipped);
	fputs("  <testsuite name=\"", f);
	xml_text(f, suite.s);
	fprintf(f,
		"\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
		"skipped=\"%zu\">\n",
		tests, failures, errors, skipped);
	if (p) {
		fputs("    <testcase classname=\"memprof.check\" "
		      "name=\"program\"",
		      f);
		if (!p->failed) {
			fputs("/>\n", f);
		} else {
			struct msg m = {.n = 0};
			describe_program(&m, p);
			fputs(">\n      <error message=\"", f);
			xml_text(f, m.s);
			fputs("\" type=\"program\">", f);
			xml_text(f, m.s);
			fputs("</error>\n    </testcase>\n", f);
		}
	}
	for (unsigned b = 0; b < MP_CHECK_NBUDGETS; b++) {
		if (!(a->opts.budgets & 1u << b))
			continue;
		struct msg name = {.n = 0};
		msg_budget(&name, a, (enum mp_check_budget)b);
		fputs("    <testcase classname=\"memprof.check\" name=\"", f);
		xml_text(f, name.s);
		fputs("\"", f);
		const struct mp_check_result *r = NULL;
		for (size_t i = 0; rep && i < rep->nresults; i++)
			if (rep->results[i].budget == b)
				r = &rep->results[i];
		if (!r) {
			fputs(">\n      <skipped message=\"not checked: no "
			      "snapshot was written\"/>\n    </testcase>\n",
			      f);
			continue;
		}
		struct msg m = {.n = 0};
		describe(&m, a, r);
		if (r->ok) {
			fputs(">\n      <system-out>", f);
			xml_text(f, m.s);
			fputs("</system-out>\n    </testcase>\n", f);
			continue;
		}
		fputs(">\n      <failure message=\"", f);
		xml_text(f, m.s);
		fputs("\" type=\"budget\">", f);
		xml_text(f, m.s);
		fputs("</failure>\n    </testcase>\n", f);
	}
	fputs("  </testsuite>\n</testsuites>\n", f);
	if (ferror(f) | (fclose(f) != 0))
		return cli_error("cannot write '%s'", path);
	return MP_EXIT_OK;
}

/* ---- the command -----------------------------------------------------------
 */

static int parse_args(int argc, char **argv, struct check_args *a)
{
	static const struct option longopts[] = {
		{"max-leaked", required_argument, NULL, 'L'},
		{"max-leaked-blocks", required_argument, NULL, 'B'},
		{"leak-kinds", required_argument, NULL, 'k'},
		{"no-leaked-cycles", no_argument, NULL, 'C'},
		{"max-site-leak", required_argument, NULL, 'S'},
		{"max-peak", required_argument, NULL, 'P'},
		{"baseline", required_argument, NULL, 'b'},
		{"max-growth", required_argument, NULL, 'G'},
		{"growth-of", required_argument, NULL, 'g'},
		{"suppressions", required_argument, NULL, 's'},
		{"alloc-fn", required_argument, NULL, 'A'},
		{"output", required_argument, NULL, 'o'},
		{"json", no_argument, NULL, 'J'},
		{"junit", required_argument, NULL, 'U'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mp_check_opts *o = &a->opts;
	int c;

	opterr = 0;
	optind = 0; /* glibc: full reset, parsing starts at argv[1] */
	while ((c = getopt_long(argc, argv, ":o:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'L':
			if (!cli_parse_size(optarg, &o->max_leaked))
				return cli_error("check: --max-leaked wants a "
						 "size such as 0, 512 or 4K, "
						 "not '%s'",
						 optarg);
			set_budget(a, MP_CHECK_MAX_LEAKED, optarg);
			break;
		case 'B':
			if (!cli_parse_count(optarg, UINT64_MAX,
					     &o->max_leaked_blocks))
				return cli_error("check: --max-leaked-blocks "
						 "wants a count, not '%s'",
						 optarg);
			set_budget(a, MP_CHECK_MAX_LEAKED_BLOCKS, optarg);
			break;
		case 'k':
			if (!mp_leak_kinds_parse(optarg, &o->leak_kinds))
				return cli_error(
					"check: unknown --leak-kinds '%s' (use "
					"a comma list of definite, indirect, "
					"possible, reachable, suppressed, or "
					"all or none)",
					optarg);
			break;
		case 'C': set_budget(a, MP_CHECK_NO_LEAKED_CYCLES, NULL); break;
		case 'S':
			if (!cli_parse_size(optarg, &o->max_site_leak))
				return cli_error("check: --max-site-leak wants "
						 "a size such as 0, 512 or 4K, "
						 "not '%s'",
						 optarg);
			set_budget(a, MP_CHECK_MAX_SITE_LEAK, optarg);
			break;
		case 'P':
			if (!cli_parse_size(optarg, &o->max_peak))
				return cli_error("check: --max-peak wants a "
						 "size such as 64M, not '%s'",
						 optarg);
			set_budget(a, MP_CHECK_MAX_PEAK, optarg);
			break;
		case 'b': a->baseline = optarg; break;
		case 'G':
			if (parse_percent(optarg, &o->max_growth_percent)) {
				o->growth_is_percent = true;
			} else if (cli_parse_size(optarg, &o->max_growth)) {
				o->growth_is_percent = false;
			} else {
				return cli_error("check: --max-growth wants a "
						 "size such as 4K or a "
						 "percentage such as 10%%, "
						 "not '%s'",
						 optarg);
			}
			set_budget(a, MP_CHECK_MAX_GROWTH, optarg);
			break;
		case 'g':
			if (!strcmp(optarg, "live"))
				o->growth_of = MP_GROWTH_LIVE;
			else if (!strcmp(optarg, "peak"))
				o->growth_of = MP_GROWTH_PEAK;
			else
				return cli_error("check: --growth-of takes "
						 "live or peak, not '%s'",
						 optarg);
			break;
		case 's':
			if (a->nsupp == MAX_SUPP_FILES)
				return cli_error(
					"check: more than %d --suppressions",
					MAX_SUPP_FILES);
			a->supp_files[a->nsupp++] = optarg;
			break;
		case 'A':
			if (o->alloc.nglobs == MAX_ALLOC_FNS)
				return cli_error(
					"check: more than %d --alloc-fn",
					MAX_ALLOC_FNS);
			a->globs[o->alloc.nglobs++] = optarg;
			break;
		case 'o': a->output = optarg; break;
		case 'J': a->json = true; break;
		case 'U': a->junit = optarg; break;
		case 'v': a->verbose = true; break;
		case 'h': check_usage(stdout); return -1;
		case ':':
		default: return cli_bad_option("check", c, argv);
		}
	}
	o->alloc.globs = a->globs;
	if (o->budgets == 0)
		return cli_error("check: no budget given (--max-leaked, "
				 "--max-leaked-blocks, --no-leaked-cycles, "
				 "--max-site-leak, --max-peak, --max-growth); "
				 "see 'memprof check --help'");
	if ((o->budgets & 1u << MP_CHECK_MAX_GROWTH) && !a->baseline)
		return cli_error("check: --max-growth needs --baseline OLD");
	if (a->baseline && !(o->budgets & 1u << MP_CHECK_MAX_GROWTH))
		return cli_error("check: --baseline needs --max-growth");
	return MP_EXIT_OK;
}

static bool wants_graph(unsigned budgets)
{
	return budgets &
	       (1u << MP_CHECK_MAX_LEAKED | 1u << MP_CHECK_MAX_LEAKED_BLOCKS |
		1u << MP_CHECK_NO_LEAKED_CYCLES | 1u << MP_CHECK_MAX_SITE_LEAK);
}

static int load_suppressions(struct check_args *a,
			     struct mp_suppressions **supp)
{
	for (size_t i = 0; i < a->nsupp; i++) {
		struct mp_errinfo ei = {{0}};
		enum mp_err err =
			mp_suppressions_load(a->supp_files[i], supp, &ei);
		if (err == MP_OK)
			continue;
		if (err == MP_ERR_CORRUPT)
			return cli_error("bad suppressions file '%s': %s",
					 a->supp_files[i], ei.msg);
		return cli_error("cannot read suppressions file '%s': %s",
				 a->supp_files[i],
				 ei.msg[0] ? ei.msg : mp_strerror(err));
	}
	return MP_EXIT_OK;
}

/* Text: the program's failure and the violations on stderr, the budgets
 * that hold on stdout with -v. */
static void print_text(const struct check_args *a, const struct program *p,
		       const struct mp_check_report *rep)
{
	if (p && p->failed) {
		struct msg m = {.n = 0};
		describe_program(&m, p);
		fprintf(stderr, "memprof: check: %s\n", m.s);
	}
	/* Without a failure, record has said why there is no snapshot. */
	if (p && p->failed && p->no_snapshot)
		fputs("memprof: check: no snapshot was written: budgets not "
		      "checked\n",
		      stderr);
	for (size_t i = 0; rep && i < rep->nresults; i++) {
		const struct mp_check_result *r = &rep->results[i];
		struct msg m = {.n = 0};
		describe(&m, a, r);
		if (!r->ok)
			fprintf(stderr, "memprof: check failed: %s\n", m.s);
		else if (a->verbose)
			fprintf(stdout, "memprof: check passed: %s\n", m.s);
	}
}

int cmd_check(int argc, char **argv)
{
	struct check_args a;
	memset(&a, 0, sizeof(a));
	a.opts.leak_kinds = MP_CHECK_DEFAULT_KINDS;

	/* `--` starts the program; options are parsed before it only, so
	 * that PROGRAM's own options stay its own. */
	int dashdash = argc;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			dashdash = i;
			break;
		}
	int st = parse_args(dashdash, argv, &a);
	if (st < 0)
		return MP_EXIT_OK; /* --help */
	if (st != MP_EXIT_OK)
		return st;

	struct program prog = {0}, *p = NULL;
	if (dashdash < argc) {
		if (optind < dashdash)
			return cli_error("check: give either FILE or -- "
					 "PROGRAM, not both ('%s')",
					 argv[optind]);
		if (dashdash + 1 >= argc)
			return cli_error("check: no program after '--'; see "
					 "'memprof check --help'");
		prog.argv = argv + dashdash + 1;
		prog.argc = (size_t)(argc - dashdash - 1);
		if (!program_exists(prog.argv[0]))
			return cli_error("check: cannot run '%s': %s",
					 prog.argv[0], strerror(ENOENT));
		p = &prog;
	} else {
		if (optind >= argc)
			return cli_error("check: no snapshot file or -- "
					 "PROGRAM given; see 'memprof check "
					 "--help'");
		if (optind + 1 < argc)
			return cli_error("check: one snapshot file only, got "
					 "'%s' too (a program goes after "
					 "'--')",
					 argv[optind + 1]);
	}
	if (a.output && !p)
		return cli_error("check: --output is for -- PROGRAM only");

	struct mp_suppressions *supp = NULL;
	struct mp_snapshot *base = NULL, *snap = NULL;
	char *tmpdir = NULL;
	char pathbuf[PATH_MAX];
	const char *path = NULL, *file_shown = NULL;
	int status = MP_EXIT_USAGE;

	if (load_suppressions(&a, &supp) != MP_EXIT_OK)
		goto out;
	a.opts.supp = supp;
	if (a.baseline && !(base = cli_open_snapshot(a.baseline)))
		goto out;

	if (p) {
		if (a.output) {
			path = a.output;
			file_shown = a.output;
		} else {
			const char *t = getenv("TMPDIR");
			if (asprintf(&tmpdir, "%s/memprof-check-XXXXXX",
				     t && *t ? t : "/tmp") < 0) {
				tmpdir = NULL;
				cli_error("out of memory");
				goto out;
			}
			if (!mkdtemp(tmpdir)) {
				cli_error("cannot create a directory '%s': %s",
					  tmpdir, strerror(errno));
				free(tmpdir);
				tmpdir = NULL;
				goto out;
			}
			snprintf(pathbuf, sizeof(pathbuf), "%s/run.memprof",
				 tmpdir);
			path = pathbuf;
		}
		if (run_program(p, path, a.json) != 0)
			goto out;
	} else {
		path = file_shown = argv[optind];
	}

	struct mp_check_report rep, *repp = NULL;
	if (!p || !p->no_snapshot) {
		if (!(snap = cli_open_snapshot(path)))
			goto out;
		if (wants_graph(a.opts.budgets) && !snap->has_graph) {
			cli_error("'%s' has no heap graph (recorded with "
				  "--leak-check=no, or not an exit snapshot): "
				  "leak budgets need one",
				  path);
			goto out;
		}
		enum mp_err err = mp_check_run(snap, base, &a.opts, &rep);
		if (err != MP_OK) {
			cli_error("cannot check '%s': %s", path,
				  mp_strerror(err));
			goto out;
		}
		repp = &rep;
	}

	bool ok = repp && repp->ok && !(p && p->failed);
	if (p && p->failed)
		status = MP_EXIT_PROGRAM;
	else if (!repp)
		status = MP_EXIT_USAGE; /* ran fine but wrote no snapshot */
	else
		status = repp->ok ? MP_EXIT_OK : MP_EXIT_FINDING;

	if (a.json) {
		if (print_json(&a, file_shown, p, repp, ok) != MP_OK)
			status = cli_error("cannot write the output");
		if (p && p->failed) {
			/* The document says it too; one line for logs. */
			struct msg m = {.n = 0};
			describe_program(&m, p);
			fprintf(stderr, "memprof: check: %s\n", m.s);
		}
	} else {
		print_text(&a, p, repp);
		if (fflush(stdout) != 0 || ferror(stdout))
			status = cli_error("cannot write the output");
	}
	if (a.junit &&
	    write_junit(a.junit, &a, file_shown, p, repp) != MP_EXIT_OK)
		status = MP_EXIT_USAGE;

out:
	mp_snapshot_free(snap);
	mp_snapshot_free(base);
	mp_suppressions_free(supp);
	if (tmpdir) {
		remove_tree(tmpdir);
		free(tmpdir);
	}
	return status;
}
