/*
 * memprof.c - the memprof executable: dispatches to cmd_<name>.c.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{"record", cmd_record,
	 "run a program under the shim and write snapshots"},
	{"top", cmd_top, "list the call sites that hold memory"},
	{"diff", cmd_diff, "compare two snapshots: what grew, what shrank"},
	{"leaks", cmd_leaks, "find lost blocks and leaked cycles at exit"},
	{"check", cmd_check,
	 "fail a CI job when leaks, peak or growth exceed a budget"},
	{"info", cmd_info, "show a snapshot's metadata and totals"},
	{"export", cmd_export,
	 "write a snapshot as pprof, folded stacks or JSON"},
	{"report", cmd_report,
	 "write a self-contained HTML report: flamegraphs, timeline, leaks"},
	{"snapshot", cmd_snapshot,
	 "ask a running program to write a snapshot now"},
	{"symbolize", cmd_symbolize,
	 "add symbols to snapshots recorded without them"},
};

#define NSUB (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: memprof <command> [options] [args]\n\ncommands:\n");
	for (size_t i = 0; i < NSUB; i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name,
			subcommands[i].summary);
	fprintf(f, "\n'memprof <command> --help' shows a command's options; "
		   "'man memprof' the whole manual.\n");
}

int cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("memprof: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return MP_EXIT_USAGE;
}

struct mp_snapshot *cli_open_snapshot(const char *path)
{
	struct mp_snapshot *snap;
	struct mp_errinfo ei = {{0}};
	enum mp_err err = mp_snapshot_open(path, &snap, &ei);
	if (err != MP_OK) {
		cli_error("cannot read '%s': %s", path,
			  ei.msg[0] ? ei.msg : mp_strerror(err));
		return NULL;
	}
	return snap;
}

bool cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0 || isnan(v))
		return false;
	double mul = 1;
	switch (*end) {
	case 'k':
	case 'K':
		mul = 1024.0;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1024.0 * 1024;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1024.0 * 1024 * 1024;
		end++;
		break;
	case 't':
	case 'T':
		mul = 1024.0 * 1024 * 1024 * 1024;
		end++;
		break;
	default: break;
	}
	if (*end == 'i' && mul > 1)
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		return false;
	v *= mul;
	if (v >= 18446744073709551615.0)
		return false;
	*out = (uint64_t)v;
	return true;
}

const char *cli_format_size(uint64_t bytes, char *buf)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double size = (double)bytes;
	/* tracemalloc's _format_size: one decimal under 100 for K and up,
	 * integers otherwise; move up a unit from 10 * 1024. */
	for (int u = 0; u < 5; u++) {
		if (size < 100 && u != 0) {
			snprintf(buf, 32, "%.1f %s", size, units[u]);
			return buf;
		}
		if (size < 10 * 1024 || u == 4) {
			snprintf(buf, 32, "%.0f %s", size, units[u]);
			return buf;
		}
		size /= 1024;
	}
	return buf;
}

bool cli_stderr_is_tty(void)
{
	return isatty(2) == 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return MP_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") ||
	    !strcmp(name, "help")) {
		if (argc > 2 && strcmp(name, "help") == 0) {
			char *args[] = {argv[2], (char *)"--help", NULL};
			for (size_t i = 0; i < NSUB; i++)
				if (!strcmp(subcommands[i].name, argv[2]))
					return subcommands[i].fn(2, args);
			return cli_error("'%s' is not a memprof command",
					 argv[2]);
		}
		usage(stdout);
		return MP_EXIT_OK;
	}
	if (!strcmp(name, "--version")) {
		printf("memprof 0.1.0\n");
		return MP_EXIT_OK;
	}
	cli_progress_setup();
	for (size_t i = 0; i < NSUB; i++)
		if (!strcmp(subcommands[i].name, name))
			return subcommands[i].fn(argc - 1, argv + 1);
	cli_error("'%s' is not a memprof command; see 'memprof --help'", name);
	return MP_EXIT_USAGE;
}
