/*
 * cmd_top.c - `memprof top`: the call sites that hold memory.
 *
 * Parses options, asks lib/trace for the grouped and sorted profile
 * (mp_profile_build) and prints it as text or as the JSON of DESIGN.md §7.
 * No analysis here: only choosing, labelling and printing entries.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "memprof_trace.h"
#include "trace/trace_json.h"

static void top_usage(FILE *f)
{
	fputs("usage: memprof top [options] FILE\n"
	      "\n"
	      "List the call sites that hold heap memory in snapshot FILE.\n"
	      "\n"
	      "  -b, --by KEY       group by traceback, function, line "
	      "(default),\n"
	      "                     file or module\n"
	      "  -s, --sort KEY     sort by bytes (live, default), blocks, "
	      "allocs\n"
	      "                     (allocations since start) or peak (bytes "
	      "live\n"
	      "                     at the global peak)\n"
	      "  -n, --limit N      show the first N entries (default 10, 0 = "
	      "all)\n"
	      "  -c, --cumulative   count each allocation in every frame of "
	      "its\n"
	      "                     stack, not only the innermost (function, "
	      "line,\n"
	      "                     file); recursion counts once per frame\n"
	      "      --include GLOB keep only allocations whose innermost "
	      "frame's\n"
	      "                     function, file or module matches GLOB; "
	      "repeatable\n"
	      "      --exclude GLOB drop allocations whose innermost frame "
	      "matches\n"
	      "                     GLOB; repeatable\n"
	      "      --all-frames   test --include/--exclude against every "
	      "frame\n"
	      "      --alloc-fn GLOB  treat functions matching GLOB as part of "
	      "the\n"
	      "                     allocator (e.g. xmalloc); repeatable\n"
	      "      --json         print one JSON document instead of text\n"
	      "  -h, --help         show this help\n",
	      f);
}

/* "4.0 KiB in 1 block (allocated 11 times, 44 KiB total; 10.0 MiB at peak)" */
static void print_counts(FILE *out, const struct mp_profile_entry *e)
{
	char b1[32], b2[32], b3[32];
	fprintf(out, "%s in %" PRIu64 " %s (allocated %" PRIu64 " %s, %s total",
		cli_format_size(e->bytes, b1), e->blocks,
		cli_plural(e->blocks, "block", "blocks"), e->allocs,
		cli_plural(e->allocs, "time", "times"),
		cli_format_size(e->alloc_bytes, b2));
	if (e->peak_bytes)
		fprintf(out, "; %s at peak",
			cli_format_size(e->peak_bytes, b3));
	fputc(')', out);
}

static const char *sort_label(enum mp_sort_by s)
{
	switch (s) {
	case MP_SORT_BLOCKS: return "live blocks";
	case MP_SORT_ALLOCS: return "allocations";
	case MP_SORT_PEAK: return "bytes at peak";
	default: return "live bytes";
	}
}

static void print_totals(FILE *out, const struct mp_totals *t)
{
	char b1[32], b2[32], b3[32];
	fprintf(out,
		"total: %s live in %" PRIu64 " %s; peak %s; %" PRIu64
		" %s, %" PRIu64 " %s, %s allocated\n",
		cli_format_size(t->live_bytes, b1), t->live_blocks,
		cli_plural(t->live_blocks, "block", "blocks"),
		cli_format_size(t->peak_bytes, b2), t->allocs,
		cli_plural(t->allocs, "allocation", "allocations"), t->frees,
		cli_plural(t->frees, "free", "frees"),
		cli_format_size(t->alloc_bytes, b3));
}

static void print_text(FILE *out, const struct mp_snapshot *snap,
		       const struct mp_profile *p, bool filtered, size_t limit)
{
	struct mp_profile_entry rest;
	size_t nrest = mp_profile_rest(p, limit, &rest);
	size_t shown = p->nentries - nrest;
	char b1[32];

	if (shown < p->nentries)
		fprintf(out, "top %zu of %zu", shown, p->nentries);
	else
		fprintf(out, "%zu", p->nentries);
	fprintf(out, " call %s by %s, grouped by %s%s%s — ",
		cli_plural(p->nentries, "site", "sites"), sort_label(p->sort),
		mp_group_by_name(p->by), p->cumulative ? " (cumulative)" : "",
		filtered ? ", filtered" : "");
	cli_print_origin(out, &snap->meta);
	fputc('\n', out);

	for (size_t i = 0; i < shown; i++) {
		const struct mp_profile_entry *e = &p->entries[i];
		fprintf(out, "#%zu: ", i + 1);
		if (p->by != MP_GROUP_TRACEBACK) {
			cli_print_label(out, e->frames, e->nframes, p->by);
			fputs(": ", out);
		}
		print_counts(out, e);
		fputc('\n', out);
		if (p->by == MP_GROUP_TRACEBACK) {
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
		if (!p->cumulative)
			fprintf(out, ": %s in %" PRIu64 " %s",
				cli_format_size(rest.bytes, b1), rest.blocks,
				cli_plural(rest.blocks, "block", "blocks"));
		fputc('\n', out);
	}
	print_totals(out, &p->totals);
}

static enum mp_err print_json(FILE *out, const struct mp_profile *p,
			      bool filtered, size_t limit)
{
	struct mp_json j;
	struct mp_profile_entry rest;
	size_t shown = p->nentries - mp_profile_rest(p, limit, &rest);

	mp_json_init(&j, out, true);
	mp_json_begin_object(&j);
	mp_json_key(&j, "totals");
	mp_json_totals(&j, &p->totals);
	mp_json_kv_string(&j, "group_by", mp_group_by_name(p->by));
	mp_json_kv_string(&j, "sort_by", mp_sort_by_name(p->sort));
	mp_json_kv_bool(&j, "cumulative", p->cumulative);
	mp_json_kv_bool(&j, "filtered", filtered);
	mp_json_kv_uint(&j, "groups", p->nentries);
	mp_json_key(&j, "entries");
	mp_json_begin_array(&j);
	for (size_t i = 0; i < shown; i++) {
		const struct mp_profile_entry *e = &p->entries[i];
		mp_json_begin_object(&j);
		mp_json_kv_uint(&j, "bytes", e->bytes);
		mp_json_kv_uint(&j, "blocks", e->blocks);
		mp_json_kv_uint(&j, "allocs", e->allocs);
		mp_json_kv_uint(&j, "alloc_bytes", e->alloc_bytes);
		mp_json_kv_uint(&j, "peak_bytes", e->peak_bytes);
		mp_json_key(&j, "frames");
		mp_json_frames(&j, e->frames, e->nframes);
		mp_json_end_object(&j);
	}
	mp_json_end_array(&j);
	mp_json_end_object(&j);
	return mp_json_finish(&j);
}

int cmd_top(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"by", required_argument, NULL, 'b'},
		{"sort", required_argument, NULL, 's'},
		{"limit", required_argument, NULL, 'n'},
		{"cumulative", no_argument, NULL, 'c'},
		{"alloc-fn", required_argument, NULL, 'A'},
		{"include", required_argument, NULL, 'I'},
		{"exclude", required_argument, NULL, 'X'},
		{"all-frames", no_argument, NULL, 'F'},
		{"json", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mp_profile_opts opts = {.by = MP_GROUP_LINE,
				       .sort = MP_SORT_BYTES};
	struct cli_frames fr;
	size_t limit = 10;
	bool json = false;
	int c;

	cli_frames_init(&fr);
	opterr = 0;
	optind = 0; /* glibc: full reset, parsing starts at argv[1] */
	while ((c = getopt_long(argc, argv, ":b:s:n:ch", longopts, NULL)) !=
	       -1) {
		int taken = cli_frames_option(&fr, "top", c, optarg);
		if (taken < 0)
			return MP_EXIT_USAGE;
		if (taken)
			continue;
		switch (c) {
		case 'b':
			if (!mp_group_by_parse(optarg, &opts.by))
				return cli_error("top: unknown --by '%s' (use "
						 "traceback, function, line, "
						 "file or module)",
						 optarg);
			break;
		case 's':
			if (!mp_sort_by_parse(optarg, &opts.sort))
				return cli_error(
					"top: unknown --sort '%s' (use "
					"bytes, blocks, allocs or "
					"peak)",
					optarg);
			break;
		case 'n': {
			uint64_t count;
			if (!cli_parse_count(optarg, SIZE_MAX, &count))
				return cli_error("top: -n wants a count, not "
						 "'%s'",
						 optarg);
			limit = (size_t)count;
			break;
		}
		case 'c': opts.cumulative = true; break;
		case 'J': json = true; break;
		case 'h': top_usage(stdout); return MP_EXIT_OK;
		case ':':
		default: return cli_bad_option("top", c, argv);
		}
	}
	if (optind >= argc)
		return cli_error(
			"top: no snapshot file given; see 'memprof top "
			"--help'");
	if (optind + 1 < argc)
		return cli_error("top: one snapshot file only, got '%s' too",
				 argv[optind + 1]);
	if (opts.cumulative &&
	    (opts.by == MP_GROUP_TRACEBACK || opts.by == MP_GROUP_MODULE))
		return cli_error("top: --cumulative works with --by function, "
				 "line or file");
	opts.alloc = fr.alloc;
	opts.filters = &fr.flt;

	const char *path = argv[optind];
	struct mp_snapshot *snap = cli_open_snapshot(path);
	if (!snap)
		return MP_EXIT_USAGE;
	struct mp_profile *prof;
	enum mp_err err = mp_profile_build(snap, &opts, &prof);
	if (err != MP_OK) {
		mp_snapshot_free(snap);
		return cli_error("cannot analyse '%s': %s", path,
				 mp_strerror(err));
	}
	int status = MP_EXIT_OK;
	if (json) {
		if (print_json(stdout, prof, fr.flt.n > 0, limit) != MP_OK)
			status = cli_error("cannot write the output");
	} else {
		print_text(stdout, snap, prof, fr.flt.n > 0, limit);
		if (fflush(stdout) != 0 || ferror(stdout))
			status = cli_error("cannot write the output");
	}
	mp_profile_free(prof);
	mp_snapshot_free(snap);
	return status;
}
