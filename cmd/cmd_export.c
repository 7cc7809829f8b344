/*
 * cmd_export.c - `memprof export`: a snapshot as pprof, folded stacks or
 * JSON, for the tools that read those (go tool pprof, flamegraph.pl,
 * speedscope, Pyroscope, Parca).
 *
 * Parses options, opens the output and hands over to mp_export_write();
 * the formats themselves live in lib/trace/trace_export.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "memprof_trace.h"

static void export_usage(FILE *f)
{
	fputs("usage: memprof export -f FORMAT [options] FILE\n"
	      "\n"
	      "Write snapshot FILE in a format other tools read.\n"
	      "\n"
	      "  -f, --format FORMAT  pprof (gzip'd profile.proto for go tool "
	      "pprof,\n"
	      "                       Pyroscope, Parca), collapsed (folded "
	      "stacks for\n"
	      "                       flamegraph.pl, speedscope) or json\n"
	      "  -o, --output OUT     write to OUT instead of standard output\n"
	      "      --value V        collapsed: the figure of each stack: "
	      "inuse-bytes\n"
	      "                       (default), inuse-blocks, alloc-bytes or "
	      "allocs\n"
	      "      --include GLOB   keep only allocations whose innermost "
	      "frame's\n"
	      "                       function, file or module matches GLOB; "
	      "repeatable\n"
	      "      --exclude GLOB   drop allocations whose innermost frame "
	      "matches\n"
	      "                       GLOB; repeatable\n"
	      "      --all-frames     test --include/--exclude against every "
	      "frame\n"
	      "      --alloc-fn GLOB  treat functions matching GLOB as part of "
	      "the\n"
	      "                       allocator (e.g. xmalloc); repeatable\n"
	      "  -h, --help           show this help\n"
	      "\n"
	      "pprof is binary: it goes to a terminal only with -o.\n",
	      f);
}

int cmd_export(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, NULL, 'f'},
		{"output", required_argument, NULL, 'o'},
		{"value", required_argument, NULL, 'V'},
		{"alloc-fn", required_argument, NULL, 'A'},
		{"include", required_argument, NULL, 'I'},
		{"exclude", required_argument, NULL, 'X'},
		{"all-frames", no_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mp_export_opts opts = {.value = MP_VALUE_INUSE_BYTES};
	struct cli_frames fr;
	const char *output = NULL;
	bool has_format = false, has_value = false;
	int c;

	cli_frames_init(&fr);
	opterr = 0;
	optind = 0; /* glibc: full reset, parsing starts at argv[1] */
	while ((c = getopt_long(argc, argv, ":f:o:h", longopts, NULL)) != -1) {
		int taken = cli_frames_option(&fr, "export", c, optarg);
		if (taken < 0)
			return MP_EXIT_USAGE;
		if (taken)
			continue;
		switch (c) {
		case 'f':
			if (!mp_export_format_parse(optarg, &opts.format))
				return cli_error(
					"export: unknown --format '%s' "
					"(use pprof, collapsed or "
					"json)",
					optarg);
			has_format = true;
			break;
		case 'o': output = optarg; break;
		case 'V':
			if (!mp_export_value_parse(optarg, &opts.value))
				return cli_error("export: unknown --value '%s' "
						 "(use inuse-bytes, "
						 "inuse-blocks, alloc-bytes or "
						 "allocs)",
						 optarg);
			has_value = true;
			break;
		case 'h': export_usage(stdout); return MP_EXIT_OK;
		case ':':
		default: return cli_bad_option("export", c, argv);
		}
	}
	if (!has_format)
		return cli_error("export: no --format given (use pprof, "
				 "collapsed or json)");
	if (optind >= argc)
		return cli_error("export: no snapshot file given; see 'memprof "
				 "export --help'");
	if (optind + 1 < argc)
		return cli_error("export: one snapshot file only, got '%s' too",
				 argv[optind + 1]);
	if (has_value && opts.format != MP_EXPORT_COLLAPSED)
		return cli_error("export: --value goes with --format collapsed "
				 "(pprof and json carry every figure)");
	if (output && !strcmp(output, "-"))
		output = NULL;
	if (!output && opts.format == MP_EXPORT_PPROF && isatty(1) == 1)
		return cli_error(
			"export: not writing binary pprof data to a "
			"terminal; use -o FILE or redirect the output");
	opts.alloc = fr.alloc;
	opts.filters = &fr.flt;

	const char *path = argv[optind];
	struct mp_snapshot *snap = cli_open_snapshot(path);
	if (!snap)
		return MP_EXIT_USAGE;

	FILE *out = stdout;
	struct stat in_st, out_st;
	if (output && stat(path, &in_st) == 0 && stat(output, &out_st) == 0 &&
	    in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino) {
		mp_snapshot_free(snap);
		return cli_error("export: -o '%s' is the snapshot itself",
				 output);
	}
	if (output) {
		out = fopen(output, "wb");
		if (!out) {
			int e = errno;
			mp_snapshot_free(snap);
			return cli_error("cannot write '%s': %s", output,
					 strerror(e));
		}
	}
	struct mp_errinfo ei = {{0}};
	enum mp_err err = mp_export_write(snap, &opts, out, &ei);
	int status = MP_EXIT_OK;
	if (err != MP_OK)
		status = cli_error("cannot export '%s': %s", path,
				   ei.msg[0] ? ei.msg : mp_strerror(err));
	if (output) {
		struct stat st;
		bool regular =
			fstat(fileno(out), &st) == 0 && S_ISREG(st.st_mode);
		if (fclose(out) != 0 && status == MP_EXIT_OK)
			status = cli_error("cannot write '%s': %s", output,
					   strerror(errno));
		/* No half-written profile left behind (but never remove a
		 * device or a pipe someone named). */
		if (status != MP_EXIT_OK && regular)
			unlink(output);
	} else if ((fflush(stdout) != 0 || ferror(stdout)) &&
		   status == MP_EXIT_OK) {
		status = cli_error("cannot write the output");
	}
	mp_snapshot_free(snap);
	return status;
}
