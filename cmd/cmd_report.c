/*
 * cmd_report.c - `memprof report`: one self-contained HTML page of a
 * snapshot, to open in a browser or attach to a CI run.
 *
 * Parses options, opens the snapshot and has lib/trace write the page
 * (mp_html_write) into a temporary file beside the output, renamed into
 * place once complete, so that a failure never leaves half a page. No
 * analysis here.
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

static void report_usage(FILE *f)
{
	fputs("usage: memprof report [options] FILE\n"
	      "\n"
	      "Write one self-contained HTML page of snapshot FILE: "
	      "flamegraphs of\n"
	      "live and allocated bytes, the timeline, the top call sites, "
	      "the leaks\n"
	      "and leaked cycles. The page loads nothing from the network.\n"
	      "\n"
	      "  -o, --output OUT   the page to write (default FILE with .html "
	      "instead\n"
	      "                     of .memprof; - for standard output)\n"
	      "      --title TEXT   the page's title (default 'memprof "
	      "report: PROGRAM')\n"
	      "  -q, --quiet        do not say where the page was written\n"
	      "  -h, --help         show this help\n",
	      f);
}

/* FILE with ".html" for ".memprof", or appended. Caller frees. */
static char *default_output(const char *path)
{
	static const char ext[] = ".memprof";
	size_t n = strlen(path), e = sizeof(ext) - 1;
	if (n > e && strcmp(path + n - e, ext) == 0)
		n -= e;
	char *out = malloc(n + sizeof(".html"));
	if (out) {
		memcpy(out, path, n);
		memcpy(out + n, ".html", sizeof(".html"));
	}
	return out;
}

/* What the page leaves out, for the closing line: "; the page leaves out
 * ..." or nothing. */
static void print_left_out(FILE *f, const struct mp_html_stats *st)
{
	const char *sep = "; the page leaves out ";
	if (st->flame_omitted) {
		fprintf(f, "%s%zu small flamegraph %s", sep, st->flame_omitted,
			cli_plural(st->flame_omitted, "box", "boxes"));
		sep = ", ";
	}
	if (st->top_shown < st->top_groups) {
		size_t n = st->top_groups - st->top_shown;
		fprintf(f, "%s%zu small call %s", sep, n,
			cli_plural(n, "site", "sites"));
		sep = ", ";
	}
	if (st->records_shown < st->records) {
		size_t n = st->records - st->records_shown;
		fprintf(f, "%s%zu small loss %s", sep, n,
			cli_plural(n, "record", "records"));
		sep = ", ";
	}
	if (st->cycles_shown < st->cycles) {
		size_t n = st->cycles - st->cycles_shown;
		fprintf(f, "%s%zu small %s", sep, n,
			cli_plural(n, "cycle", "cycles"));
	}
}

/* Writes the page to out through a temporary file beside it. Prints the
 * error and returns MP_EXIT_USAGE on failure. */
static int write_page(const struct mp_snapshot *snap,
		      const struct mp_html_opts *opts, const char *out,
		      struct mp_html_stats *st, off_t *size)
{
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmpXXXXXX", out) < 0)
		return cli_error("out of memory");
	int fd = mkstemp(tmp);
	if (fd < 0) {
		int e = errno;
		free(tmp);
		return cli_error("cannot write '%s': %s", out, strerror(e));
	}
	/* mkstemp makes it 0600; a page is as readable as any new file */
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	FILE *f = fdopen(fd, "w");
	if (!f) {
		int e = errno;
		close(fd);
		unlink(tmp);
		free(tmp);
		return cli_error("cannot write '%s': %s", out, strerror(e));
	}
	enum mp_err err = mp_html_write(snap, opts, f, st);
	int e = errno;
	struct stat sb;
	if (err == MP_OK && fstat(fd, &sb) == 0)
		*size = sb.st_size;
	if (fclose(f) != 0 && err == MP_OK) {
		err = MP_ERR_IO;
		e = errno;
	}
	if (err == MP_OK && rename(tmp, out) != 0) {
		err = MP_ERR_IO;
		e = errno;
	}
	if (err != MP_OK) {
		unlink(tmp);
		free(tmp);
		if (err == MP_ERR_IO)
			return cli_error("cannot write '%s': %s", out,
					 strerror(e));
		return cli_error("cannot analyse '%s': %s",
				 opts->source ? opts->source : "snapshot",
				 mp_strerror(err));
	}
	free(tmp);
	return MP_EXIT_OK;
}

int cmd_report(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"title", required_argument, NULL, 'T'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *out = NULL;
	struct mp_html_opts opts = {0};
	bool quiet = false;
	int c;

	opterr = 0;
	optind = 0; /* glibc: full reset, parsing starts at argv[1] */
	while ((c = getopt_long(argc, argv, ":o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'T': opts.title = optarg; break;
		case 'q':
			quiet = true;
			cli_progress_off();
			break;
		case 'h': report_usage(stdout); return MP_EXIT_OK;
		case ':':
		default: return cli_bad_option("report", c, argv);
		}
	}
	if (optind >= argc)
		return cli_error("report: no snapshot file given; see 'memprof "
				 "report --help'");
	if (optind + 1 < argc)
		return cli_error("report: one snapshot file only, got '%s' too",
				 argv[optind + 1]);
	if (out && !*out)
		return cli_error("report: -o wants a file name");

	const char *path = argv[optind];
	opts.source = path;
	char *def = NULL;
	if (!out) {
		if (!(def = default_output(path)))
			return cli_error("out of memory");
		out = def;
	}
	struct mp_snapshot *snap = cli_open_snapshot(path);
	if (!snap) {
		free(def);
		return MP_EXIT_USAGE;
	}
	struct mp_html_stats st = {0};
	int status = MP_EXIT_OK;
	if (strcmp(out, "-") == 0) {
		enum mp_err err = mp_html_write(snap, &opts, stdout, &st);
		if (err == MP_ERR_IO)
			status = cli_error("cannot write the output");
		else if (err != MP_OK)
			status = cli_error("cannot analyse '%s': %s", path,
					   mp_strerror(err));
	} else {
		off_t size = 0;
		status = write_page(snap, &opts, out, &st, &size);
		if (status == MP_EXIT_OK && !quiet) {
			char b[32];
			fprintf(stderr, "memprof: wrote %s (%s", out,
				cli_format_size((uint64_t)size, b));
			print_left_out(stderr, &st);
			fputs(")\n", stderr);
		}
	}
	mp_snapshot_free(snap);
	free(def);
	return status;
}
