/*
 * cmd_diff.c - `memprof diff`: what grew (or shrank) between two snapshots.
 *
 * Parses options, asks lib/trace for the comparison (mp_diff_build, with
 * tracemalloc's Snapshot.compare_to semantics) and prints it as text, like
 * tracemalloc's StatisticDiff, or as the JSON of DESIGN.md §7. No analysis
 * here: only choosing, labelling and printing entries.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "memprof_trace.h"
#include "trace/trace_json.h"

static void diff_usage(FILE *f)
{
	fputs("usage: memprof diff [options] OLD NEW\n"
	      "\n"
	      "Compare snapshot NEW with snapshot OLD: which call sites hold\n"
	      "more (or less) heap memory, like tracemalloc's compare_to.\n"
	      "\n"
	      "  -b, --by KEY         group by traceback, function, line "
	      "(default),\n"
	      "                       file or module\n"
	      "  -n, --limit N        show the first N entries (default 10, "
	      "0 = all)\n"
	      "  -c, --cumulative     count each allocation in every frame of "
	      "its\n"
	      "                       stack (function, line, file)\n"
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
	      "      --json           print one JSON document instead of text\n"
	      "  -h, --help           show this help\n",
	      f);
}

static uint64_t uabs(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

/* cli_format_size with a sign, tracemalloc's _format_size(size, True):
 * "+40.0 KiB", "-4096 B", "+0 B". buf must hold 32 bytes. */
static const char *format_signed_size(int64_t v, char *buf)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double size = (double)v, mag = (double)uabs(v);

	for (int u = 0; u < 5; u++) {
		if (mag < 100 && u != 0) {
			snprintf(buf, 32, "%+.1f %s", size, units[u]);
			return buf;
		}
		if (mag < 10 * 1024 || u == 4) {
			snprintf(buf, 32, "%+.0f %s", size, units[u]);
			return buf;
		}
		size /= 1024;
		mag /= 1024;
	}
	return buf;
}

/* tracemalloc's StatisticDiff: "40.0 KiB (+40.0 KiB), 10 blocks (+10),
 * average 4096 B"; no average for a group with no block left. */
static void print_counts(FILE *out, const struct mp_diff_entry *e)
{
	char b1[32], b2[32], b3[32];
	fprintf(out, "%s (%s), %" PRIu64 " %s (%+" PRId64 ")",
		cli_format_size(e->bytes, b1),
		format_signed_size(e->bytes_diff, b2), e->blocks,
		cli_plural(e->blocks, "block", "blocks"), e->blocks_diff);
	if (e->blocks)
		fprintf(out, ", average %s",
			cli_format_size(e->bytes / e->blocks, b3));
}

static void print_text(FILE *out, const struct mp_snapshot *old_snap,
		       const struct mp_snapshot *new_snap,
		       const struct mp_diff *d, size_t limit)
{
	struct mp_diff_entry rest;
	size_t nrest = mp_diff_rest(d, limit, &rest);
	size_t shown = d->nentries - nrest;
	char b1[32], b2[32];

	if (shown < d->nentries)
		fprintf(out, "top %zu of %zu", shown, d->nentries);
	else
		fprintf(out, "%zu", d->nentries);
	fprintf(out, " call %s by change in live bytes, grouped by %s%s%s — ",
		cli_plural(d->nentries, "site", "sites"),
		mp_group_by_name(d->by), d->cumulative ? " (cumulative)" : "",
		d->filtered ? ", filtered" : "");
	cli_print_origin(out, &old_snap->meta);
	fputs(" → ", out);
	cli_print_origin(out, &new_snap->meta);
	fputc('\n', out);

	for (size_t i = 0; i < shown; i++) {
		const struct mp_diff_entry *e = &d->entries[i];
		fprintf(out, "#%zu: ", i + 1);
		if (d->by != MP_GROUP_TRACEBACK) {
			cli_print_label(out, e->frames, e->nframes, d->by);
			fputs(": ", out);
		}
		print_counts(out, e);
		fputc('\n', out);
		if (d->by == MP_GROUP_TRACEBACK) {
			for (size_t k = 0; k < e->nframes; k++)
				cli_print_frame_line(out, &e->frames[k]);
			if (e->nframes == 0)
				fputs("    at <unknown>\n", out);
		}
	}
	if (nrest) {
		fprintf(out, "... %zu other call %s", nrest,
			cli_plural(nrest, "site", "sites"));
		/* Cumulative sums count a trace once per group: no total. */
		if (!d->cumulative)
			fprintf(out,
				": %s (%s) in %" PRIu64 " %s (%+" PRId64 ")",
				cli_format_size(rest.bytes, b1),
				format_signed_size(rest.bytes_diff, b2),
				rest.blocks,
				cli_plural(rest.blocks, "block", "blocks"),
				rest.blocks_diff);
		fputc('\n', out);
	}
	const struct mp_totals *o = &d->old_totals, *n = &d->new_totals;
	fprintf(out, "total: %s (%s) live in %" PRIu64 " %s (%+" PRId64 ")\n",
		cli_format_size(n->live_bytes, b1),
		format_signed_size(
			(int64_t)n->live_bytes - (int64_t)o->live_bytes, b2),
		n->live_blocks, cli_plural(n->live_blocks, "block", "blocks"),
		(int64_t)n->live_blocks - (int64_t)o->live_blocks);
}

static enum mp_err print_json(FILE *out, const struct mp_diff *d, size_t limit)
{
	struct mp_json j;
	struct mp_diff_entry rest;
	size_t shown = d->nentries - mp_diff_rest(d, limit, &rest);

	mp_json_init(&j, out, true);
	mp_json_begin_object(&j);
	mp_json_key(&j, "totals");
	mp_json_begin_object(&j);
	mp_json_key(&j, "old");
	mp_json_totals(&j, &d->old_totals);
	mp_json_key(&j, "new");
	mp_json_totals(&j, &d->new_totals);
	mp_json_end_object(&j);
	mp_json_kv_string(&j, "group_by", mp_group_by_name(d->by));
	mp_json_kv_bool(&j, "cumulative", d->cumulative);
	mp_json_kv_bool(&j, "filtered", d->filtered);
	mp_json_kv_uint(&j, "groups", d->nentries);
	mp_json_key(&j, "entries");
	mp_json_begin_array(&j);
	for (size_t i = 0; i < shown; i++) {
		const struct mp_diff_entry *e = &d->entries[i];
		mp_json_begin_object(&j);
		mp_json_kv_uint(&j, "bytes", e->bytes);
		mp_json_kv_int(&j, "bytes_diff", e->bytes_diff);
		mp_json_kv_uint(&j, "blocks", e->blocks);
		mp_json_kv_int(&j, "blocks_diff", e->blocks_diff);
		mp_json_key(&j, "frames");
		mp_json_frames(&j, e->frames, e->nframes);
		mp_json_end_object(&j);
	}
	mp_json_end_array(&j);
	mp_json_end_object(&j);
	return mp_json_finish(&j);
}

int cmd_diff(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"by", required_argument, NULL, 'b'},
		{"limit", required_argument, NULL, 'n'},
		{"cumulative", no_argument, NULL, 'c'},
		{"include", required_argument, NULL, 'I'},
		{"exclude", required_argument, NULL, 'X'},
		{"all-frames", no_argument, NULL, 'F'},
		{"alloc-fn", required_argument, NULL, 'A'},
		{"json", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mp_diff_opts opts = {.by = MP_GROUP_LINE};
	struct cli_frames fr;
	size_t limit = 10;
	bool json = false;
	int c;

	cli_frames_init(&fr);
	opterr = 0;
	optind = 0; /* glibc: full reset, parsing starts at argv[1] */
	while ((c = getopt_long(argc, argv, ":b:n:ch", longopts, NULL)) != -1) {
		int taken = cli_frames_option(&fr, "diff", c, optarg);
		if (taken < 0)
			return MP_EXIT_USAGE;
		if (taken)
			continue;
		switch (c) {
		case 'b':
			if (!mp_group_by_parse(optarg, &opts.by))
				return cli_error("diff: unknown --by '%s' (use "
						 "traceback, function, line, "
						 "file or module)",
						 optarg);
			break;
		case 'n': {
			uint64_t count;
			if (!cli_parse_count(optarg, SIZE_MAX, &count))
				return cli_error("diff: -n wants a count, not "
						 "'%s'",
						 optarg);
			limit = (size_t)count;
			break;
		}
		case 'c': opts.cumulative = true; break;
		case 'J': json = true; break;
		case 'h': diff_usage(stdout); return MP_EXIT_OK;
		case ':':
		default: return cli_bad_option("diff", c, argv);
		}
	}
	if (argc - optind < 2)
		return cli_error("diff: two snapshot files needed, OLD and "
				 "NEW; see 'memprof diff --help'");
	if (argc - optind > 2)
		return cli_error("diff: two snapshot files only, got '%s' too",
				 argv[optind + 2]);
	if (opts.cumulative &&
	    (opts.by == MP_GROUP_TRACEBACK || opts.by == MP_GROUP_MODULE))
		return cli_error("diff: --cumulative works with --by function, "
				 "line or file");
	opts.alloc = fr.alloc;
	opts.filters = &fr.flt;

	const char *old_path = argv[optind], *new_path = argv[optind + 1];
	struct mp_snapshot *old_snap = cli_open_snapshot(old_path);
	if (!old_snap)
		return MP_EXIT_USAGE;
	struct mp_snapshot *new_snap = cli_open_snapshot(new_path);
	if (!new_snap) {
		mp_snapshot_free(old_snap);
		return MP_EXIT_USAGE;
	}
	struct mp_diff *d;
	enum mp_err err = mp_diff_build(old_snap, new_snap, &opts, &d);
	if (err != MP_OK) {
		mp_snapshot_free(old_snap);
		mp_snapshot_free(new_snap);
		return cli_error("cannot compare '%s' with '%s': %s", new_path,
				 old_path, mp_strerror(err));
	}
	int status = MP_EXIT_OK;
	if (json) {
		if (print_json(stdout, d, limit) != MP_OK)
			status = cli_error("cannot write the output");
	} else {
		print_text(stdout, old_snap, new_snap, d, limit);
		if (fflush(stdout) != 0 || ferror(stdout))
			status = cli_error("cannot write the output");
	}
	mp_diff_free(d);
	mp_snapshot_free(old_snap);
	mp_snapshot_free(new_snap);
	return status;
}
