/*
 * cmd_info.c - `memprof info`: a snapshot's metadata, totals and contents.
 *
 * Reads the snapshot and prints what struct mp_snapshot says, as text or
 * as one JSON document. No analysis here.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "trace/trace_json.h"

static void info_usage(FILE *f)
{
	fputs("usage: memprof info [options] FILE\n"
	      "\n"
	      "Show the metadata, totals and contents of snapshot FILE.\n"
	      "\n"
	      "      --json   print one JSON document instead of text\n"
	      "  -h, --help   show this help\n",
	      f);
}

/* ISO 8601 UTC with milliseconds: "2024-05-01T12:00:03.456Z". */
static const char *format_time(uint64_t ns, char *buf, size_t len)
{
	struct tm tm;
	time_t t = (time_t)(ns / 1000000000u);
	if (ns == 0 || !gmtime_r(&t, &tm)) {
		snprintf(buf, len, "unknown");
		return buf;
	}
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03uZ",
		 (unsigned)(ns % 1000000000u / 1000000u));
	return buf;
}

/* "3.333 s", "12m 03s", "5h 07m 09s" */
static const char *format_duration(uint64_t ns, char *buf, size_t len)
{
	uint64_t s = ns / 1000000000u;
	if (s < 60)
		snprintf(buf, len, "%.3f s", (double)ns / 1e9);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m %02" PRIu64 "s", s / 60,
			 s % 60);
	else
		snprintf(buf, len, "%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s",
			 s / 3600, s / 60 % 60, s % 60);
	return buf;
}

/* An argument as a POSIX shell would need it: bare when it is made of
 * safe characters, else in single quotes. */
static void print_shell_word(FILE *out, const char *s)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyz"
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_-+=/.,:@%";
	if (*s && s[strspn(s, safe)] == '\0') {
		fputs(s, out);
		return;
	}
	fputc('\'', out);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", out);
		else
			fputc(*s, out);
	}
	fputc('\'', out);
}

/* "10 ms", "12.5 ms", "10240 ms" */
static const char *format_ms(uint64_t ns, char *buf, size_t len)
{
	if (ns % 1000000u == 0)
		snprintf(buf, len, "%" PRIu64 " ms", ns / 1000000u);
	else
		snprintf(buf, len, "%.3g ms", (double)ns / 1e6);
	return buf;
}

/* "timeline:   412 samples over 3.333 s (every 10 ms), 2 snapshots
 * marked". The span runs from the start of tracing (the first sample
 * when that is unknown) to the last sample. */
static void print_timeline(FILE *out, const struct mp_snapshot *snap)
{
	const struct mp_timeline *tl = &snap->timeline;
	char b1[64], b2[64];

	fprintf(out, "timeline:   %zu %s", tl->nsamples,
		cli_plural(tl->nsamples, "sample", "samples"));
	if (tl->nsamples) {
		uint64_t from = snap->meta.start_ns ? snap->meta.start_ns
						    : tl->samples[0].ns;
		uint64_t to = tl->samples[tl->nsamples - 1].ns;

		fprintf(out, " over %s",
			format_duration(to >= from ? to - from : 0, b1, 64));
	}
	fprintf(out, " (every %s), %zu %s marked\n",
		format_ms(tl->interval_ns, b2, 64), tl->nmarks,
		cli_plural(tl->nmarks, "snapshot", "snapshots"));
}

static void print_text(FILE *out, const char *path,
		       const struct mp_snapshot *snap)
{
	const struct mp_meta *m = &snap->meta;
	const struct mp_totals *t = &m->totals;
	char b1[64], b2[64], b3[64];

	fprintf(out, "snapshot:   %s (format %u.%u)\n", path,
		snap->version_major, snap->version_minor);
	fprintf(out, "program:    %s\n", m->exe ? m->exe : "unknown");
	fputs("command:    ", out);
	for (size_t i = 0; m->argv && i < m->argc; i++) {
		if (i)
			fputc(' ', out);
		print_shell_word(out, m->argv[i]);
	}
	if (!m->argv || m->argc == 0)
		fputs("unknown", out);
	fputc('\n', out);
	fprintf(out, "pid:        %" PRIu64 " (parent %" PRIu64 ")\n", m->pid,
		m->ppid);
	fprintf(out, "trigger:    %s", m->trigger ? m->trigger : "unknown");
	if (m->name)
		fprintf(out, " '%s'", m->name);
	if (m->seq)
		fprintf(out, ", snapshot #%" PRIu64 " of the run", m->seq);
	fputc('\n', out);
	fprintf(out, "started:    %s\n", format_time(m->start_ns, b1, 64));
	fprintf(out, "taken:      %s", format_time(m->snapshot_ns, b1, 64));
	if (m->start_ns && m->snapshot_ns >= m->start_ns)
		fprintf(out, " (%s after start)",
			format_duration(m->snapshot_ns - m->start_ns, b2, 64));
	fputc('\n', out);
	if (m->sample_rate)
		fprintf(out, "sampling:   sample rate %" PRIu64 "\n",
			m->sample_rate);
	else
		fputs("sampling:   every allocation\n", out);
	fprintf(out, "depth:      %" PRIu64 " frames\n", m->depth);
	fprintf(out, "live:       %s in %" PRIu64 " %s\n",
		cli_format_size(t->live_bytes, b1), t->live_blocks,
		cli_plural(t->live_blocks, "block", "blocks"));
	fprintf(out, "peak:       %s", cli_format_size(t->peak_bytes, b1));
	if (m->peak_ns) {
		fprintf(out, " at %s", format_time(m->peak_ns, b2, 64));
		if (m->start_ns && m->peak_ns >= m->start_ns)
			fprintf(out, " (%s after start)",
				format_duration(m->peak_ns - m->start_ns, b3,
						64));
	}
	fputc('\n', out);
	fprintf(out, "allocated:  %s in %" PRIu64 " %s; %" PRIu64 " %s\n",
		cli_format_size(t->alloc_bytes, b1), t->allocs,
		cli_plural(t->allocs, "allocation", "allocations"), t->frees,
		cli_plural(t->frees, "free", "frees"));
	fprintf(out, "contents:   %zu %s, %zu %s, %zu %s, ", snap->nmodules,
		cli_plural(snap->nmodules, "module", "modules"), snap->nstacks,
		cli_plural(snap->nstacks, "stack", "stacks"), snap->ntraces,
		cli_plural(snap->ntraces, "trace", "traces"));
	if (snap->has_blocks)
		fprintf(out, "%zu %s, ", snap->nblocks,
			cli_plural(snap->nblocks, "block", "blocks"));
	else
		fputs("no block list, ", out);
	fprintf(out, "%zu %s\n", snap->nsymbols,
		cli_plural(snap->nsymbols, "symbol", "symbols"));
	if (snap->has_timeline)
		print_timeline(out, snap);
	fprintf(out, "symbolized: %s\n",
		snap->has_symbols ? "yes" : "no (frames show addresses only)");
}

static enum mp_err print_json(FILE *out, const struct mp_snapshot *snap)
{
	const struct mp_meta *m = &snap->meta;
	struct mp_json j;
	char version[16];

	snprintf(version, sizeof(version), "%u.%u", snap->version_major,
		 snap->version_minor);
	mp_json_init(&j, out, true);
	mp_json_begin_object(&j);
	mp_json_kv_string(&j, "version", version);
	mp_json_kv_uint(&j, "pid", m->pid);
	mp_json_kv_uint(&j, "ppid", m->ppid);
	mp_json_kv_string(&j, "exe", m->exe);
	mp_json_kv_strings(&j, "argv", m->argv, m->argc);
	mp_json_kv_string(&j, "trigger", m->trigger);
	mp_json_kv_string(&j, "name", m->name);
	mp_json_kv_uint(&j, "seq", m->seq);
	mp_json_kv_uint(&j, "start_ns", m->start_ns);
	mp_json_kv_uint(&j, "snapshot_ns", m->snapshot_ns);
	mp_json_kv_uint(&j, "peak_ns", m->peak_ns);
	mp_json_kv_uint(&j, "sample_rate", m->sample_rate);
	mp_json_kv_uint(&j, "depth", m->depth);
	mp_json_key(&j, "totals");
	mp_json_totals(&j, &m->totals);
	mp_json_kv_uint(&j, "modules", snap->nmodules);
	mp_json_kv_uint(&j, "stacks", snap->nstacks);
	mp_json_kv_uint(&j, "traces", snap->ntraces);
	mp_json_key(&j, "blocks");
	if (snap->has_blocks)
		mp_json_uint(&j, snap->nblocks);
	else
		mp_json_null(&j);
	mp_json_kv_uint(&j, "symbols", snap->nsymbols);
	mp_json_kv_bool(&j, "symbolized", snap->has_symbols);
	mp_json_key(&j, "timeline");
	if (snap->has_timeline) {
		const struct mp_timeline *tl = &snap->timeline;

		mp_json_begin_object(&j);
		mp_json_kv_uint(&j, "samples", tl->nsamples);
		mp_json_kv_uint(&j, "interval_ns", tl->interval_ns);
		mp_json_key(&j, "marks");
		mp_json_begin_array(&j);
		for (size_t i = 0; i < tl->nmarks; i++) {
			mp_json_begin_object(&j);
			mp_json_kv_uint(&j, "seq", tl->marks[i].seq);
			mp_json_kv_uint(&j, "ns", tl->marks[i].ns);
			mp_json_end_object(&j);
		}
		mp_json_end_array(&j);
		mp_json_end_object(&j);
	} else {
		mp_json_null(&j);
	}
	mp_json_end_object(&j);
	return mp_json_finish(&j);
}

int cmd_info(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	int c;

	opterr = 0;
	optind = 0; /* glibc: full reset, parsing starts at argv[1] */
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'J': json = true; break;
		case 'h': info_usage(stdout); return MP_EXIT_OK;
		default:
			if (optopt)
				return cli_error("info: unknown option '-%c'; "
						 "see 'memprof info --help'",
						 optopt);
			return cli_error("info: unknown option '%s'; see "
					 "'memprof info --help'",
					 argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_error("info: no snapshot file given; see 'memprof "
				 "info --help'");
	if (optind + 1 < argc)
		return cli_error("info: one snapshot file only, got '%s' too",
				 argv[optind + 1]);

	const char *path = argv[optind];
	struct mp_snapshot *snap = cli_open_snapshot(path);
	if (!snap)
		return MP_EXIT_USAGE;
	int status = MP_EXIT_OK;
	if (json) {
		if (print_json(stdout, snap) != MP_OK)
			status = cli_error("cannot write the output");
	} else {
		print_text(stdout, path, snap);
		if (fflush(stdout) != 0 || ferror(stdout))
			status = cli_error("cannot write the output");
	}
	mp_snapshot_free(snap);
	return status;
}
