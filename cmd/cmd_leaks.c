/*
 * cmd_leaks.c - `memprof leaks`: lost blocks, leaked cycles, loss records.
 *
 * Parses options, loads suppressions, asks lib/trace for the report
 * (mp_leaks_analyze) and prints it in the words of Valgrind's Memcheck
 * (loss records, LEAK SUMMARY), with leaked cycles first, or as the JSON
 * of DESIGN.md §7. No analysis here: only choosing and printing. Leaks
 * are findings for `check`, not errors: exit 0 whatever is found.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "memprof_trace.h"
#include "trace/trace_json.h"

#define MAX_ALLOC_FNS 64
#define MAX_SUPP_FILES 64

/* Valgrind's --show-leak-kinds default. */
#define DEFAULT_KINDS (1u << MP_LEAK_DEFINITE | 1u << MP_LEAK_POSSIBLE)

static void leaks_usage(FILE *f)
{
	fputs("usage: memprof leaks [options] FILE\n"
	      "\n"
	      "Classify the blocks live at exit in snapshot FILE like "
	      "Valgrind's\n"
	      "Memcheck and list leaked cycles and loss records.\n"
	      "\n"
	      "      --kinds LIST   loss records to show: a comma list of "
	      "definite,\n"
	      "                     indirect, possible, reachable, "
	      "suppressed, or\n"
	      "                     all or none (default definite,possible)\n"
	      "      --suppressions FILE  LeakSanitizer-style 'leak:PATTERN' "
	      "lines;\n"
	      "                     repeatable\n"
	      "      --alloc-fn GLOB  treat functions matching GLOB as part of "
	      "the\n"
	      "                     allocator (e.g. xmalloc); repeatable\n"
	      "  -n, --limit N      show the N biggest loss records (default "
	      "0 = all)\n"
	      "      --json         print one JSON document instead of text\n"
	      "  -h, --help         show this help\n",
	      f);
}

/* "leak_cycle (demo.c:37)", "0x7f12 (libfoo.so)", "<unknown>". */
static void print_frame(FILE *out, const struct mp_resolved_frame *f)
{
	if (!f) {
		fputs("<unknown>", out);
		return;
	}
	if (f->function)
		fputs(f->function, out);
	else if (f->address)
		fprintf(out, "0x%" PRIx64, f->address);
	else
		fputs("<unknown>", out);
	if (f->file) {
		fprintf(out, " (%s", cli_base_name(f->file));
		if (f->line)
			fprintf(out, ":%" PRIu32, f->line);
		fputc(')', out);
	} else if (f->module) {
		fprintf(out, " (%s)", cli_base_name(f->module));
	}
}

/* "56 bytes" or "112 bytes in 2 blocks". */
static void print_amount(FILE *out, uint64_t bytes, uint64_t blocks)
{
	char b1[32], b2[32];
	fprintf(out, "%s bytes", cli_commas(bytes, b1));
	if (blocks != 1)
		fprintf(out, " in %s blocks", cli_commas(blocks, b2));
}

static void print_cycle(FILE *out, size_t i, const struct mp_leak_cycle *c)
{
	char b1[32], b2[32], b3[32];
	fprintf(out, "LEAKED CYCLE #%zu: %s bytes in %s blocks (", i + 1,
		cli_commas(c->bytes, b1), cli_commas(c->blocks, b2));
	if (c->is_root)
		fputs("no pointer from outside the cycle", out);
	else
		fputs("indirectly lost: other lost blocks point into it", out);
	if (c->retained_bytes > c->bytes)
		fprintf(out, "; retains %s bytes",
			cli_commas(c->retained_bytes, b3));
	fputs(")\n", out);
	for (size_t k = 0; k < c->nmembers; k++) {
		const struct mp_leak_member *m = &c->members[k];
		fputs(k ? "      -> " : "    ", out);
		print_amount(out, m->bytes, m->blocks);
		fputs("  ", out);
		print_frame(out, m->nframes ? &m->frames[0] : NULL);
		fputc('\n', out);
	}
	fputs(c->blocks == 1 ? "      -> back to itself\n"
			     : "      -> back to the first\n",
	      out);
}

static const char *kind_words(enum mp_leak_kind k)
{
	switch (k) {
	case MP_LEAK_DEFINITE: return "definitely lost";
	case MP_LEAK_INDIRECT: return "indirectly lost";
	case MP_LEAK_POSSIBLE: return "possibly lost";
	case MP_LEAK_REACHABLE: return "still reachable";
	default: return "suppressed";
	}
}

static void print_record(FILE *out, size_t i, size_t n,
			 const struct mp_leak_record *r)
{
	char b1[32], b2[32], b3[32];
	fprintf(out, "%s bytes in %s blocks are %s in loss record %zu of %zu",
		cli_commas(r->bytes, b1), cli_commas(r->blocks, b2),
		kind_words(r->kind), i + 1, n);
	if (r->kind == MP_LEAK_DEFINITE && r->retained_bytes > r->bytes)
		fprintf(out, " (retains %s bytes)",
			cli_commas(r->retained_bytes, b3));
	fputc('\n', out);
	for (size_t k = 0; k < r->nframes; k++) {
		fputs(k ? "   by " : "   at ", out);
		print_frame(out, &r->frames[k]);
		fputc('\n', out);
	}
	if (r->nframes == 0)
		fputs("   at <unknown>\n", out);
}

/* Indices of the records to show: those of a wanted kind, the last
 * (biggest) `limit` of them when limit is not 0. */
static size_t first_shown(const struct mp_leak_report *rep, unsigned kinds,
			  size_t limit, size_t *nwanted)
{
	size_t n = 0, skip = 0, first = rep->nrecords;
	for (size_t i = 0; i < rep->nrecords; i++)
		if (kinds & 1u << rep->records[i].kind)
			n++;
	if (limit && n > limit)
		skip = n - limit;
	*nwanted = n;
	for (size_t i = 0; i < rep->nrecords; i++) {
		if (!(kinds & 1u << rep->records[i].kind))
			continue;
		if (skip == 0) {
			first = i;
			break;
		}
		skip--;
	}
	return first;
}

static void print_summary_line(FILE *out, const char *label, uint64_t bytes,
			       uint64_t blocks)
{
	char b1[32], b2[32];
	fprintf(out, "%18s: %s bytes in %s blocks\n", label,
		cli_commas(bytes, b1), cli_commas(blocks, b2));
}

static void print_text(FILE *out, const struct mp_snapshot *snap,
		       const struct mp_leak_report *rep, unsigned kinds,
		       size_t limit)
{
	char b1[32], b2[32];
	uint64_t cbytes = 0, cblocks = 0;
	size_t nwanted, shown = 0;
	size_t first = first_shown(rep, kinds, limit, &nwanted);

	fputs("memprof leaks: ", out);
	cli_print_origin(out, &snap->meta);
	fputc('\n', out);
	if (rep->threads_unscanned)
		fprintf(out,
			"warning: %" PRIu32 " %s could not be stopped: blocks "
			"only %s pointed to look lost, so leaks may be "
			"over-reported\n",
			rep->threads_unscanned,
			rep->threads_unscanned == 1 ? "thread" : "threads",
			rep->threads_unscanned == 1 ? "it" : "they");
	fputc('\n', out);

	for (size_t i = 0; i < rep->ncycles; i++) {
		print_cycle(out, i, &rep->cycles[i]);
		fputc('\n', out);
		cbytes += rep->cycles[i].bytes;
		cblocks += rep->cycles[i].blocks;
	}
	for (size_t i = first; i < rep->nrecords; i++) {
		if (!(kinds & 1u << rep->records[i].kind))
			continue;
		print_record(out, i, rep->nrecords, &rep->records[i]);
		fputc('\n', out);
		shown++;
	}
	if (shown < nwanted)
		fprintf(out, "(%zu smaller loss %s not shown; see -n)\n\n",
			nwanted - shown,
			nwanted - shown == 1 ? "record" : "records");

	fputs("LEAK SUMMARY:\n", out);
	print_summary_line(out, "definitely lost",
			   rep->summary[MP_LEAK_DEFINITE].bytes,
			   rep->summary[MP_LEAK_DEFINITE].blocks);
	print_summary_line(out, "indirectly lost",
			   rep->summary[MP_LEAK_INDIRECT].bytes,
			   rep->summary[MP_LEAK_INDIRECT].blocks);
	print_summary_line(out, "possibly lost",
			   rep->summary[MP_LEAK_POSSIBLE].bytes,
			   rep->summary[MP_LEAK_POSSIBLE].blocks);
	print_summary_line(out, "still reachable",
			   rep->summary[MP_LEAK_REACHABLE].bytes,
			   rep->summary[MP_LEAK_REACHABLE].blocks);
	print_summary_line(out, "suppressed",
			   rep->summary[MP_LEAK_SUPPRESSED].bytes,
			   rep->summary[MP_LEAK_SUPPRESSED].blocks);
	fprintf(out, "%18s: %zu", "leaked cycles", rep->ncycles);
	if (rep->ncycles)
		fprintf(out, " (%s bytes in %s blocks)", cli_commas(cbytes, b1),
			cli_commas(cblocks, b2));
	fputc('\n', out);
	if (!(kinds & 1u << MP_LEAK_REACHABLE) &&
	    rep->summary[MP_LEAK_REACHABLE].blocks)
		fputs("Reachable blocks (those to which a pointer was found) "
		      "are not shown.\n"
		      "To see them, add: --kinds all\n",
		      out);
}

static void json_amount(struct mp_json *j, uint64_t bytes, uint64_t blocks)
{
	mp_json_kv_uint(j, "bytes", bytes);
	mp_json_kv_uint(j, "blocks", blocks);
}

static enum mp_err print_json(FILE *out, const struct mp_leak_report *rep,
			      unsigned kinds, size_t limit)
{
	struct mp_json j;
	size_t nwanted;
	size_t first = first_shown(rep, kinds, limit, &nwanted);

	mp_json_init(&j, out, true);
	mp_json_begin_object(&j);
	mp_json_key(&j, "summary");
	mp_json_begin_object(&j);
	for (unsigned k = 0; k < MP_LEAK_NKINDS; k++) {
		mp_json_key(&j, mp_leak_kind_name((enum mp_leak_kind)k));
		mp_json_begin_object(&j);
		json_amount(&j, rep->summary[k].bytes, rep->summary[k].blocks);
		mp_json_end_object(&j);
	}
	mp_json_end_object(&j);
	mp_json_key(&j, "kinds");
	mp_json_begin_array(&j);
	for (unsigned k = 0; k < MP_LEAK_NKINDS; k++)
		if (kinds & 1u << k)
			mp_json_string(&j,
				       mp_leak_kind_name((enum mp_leak_kind)k));
	mp_json_end_array(&j);
	mp_json_kv_uint(&j, "loss_records", rep->nrecords);
	mp_json_key(&j, "records");
	mp_json_begin_array(&j);
	for (size_t i = first; i < rep->nrecords; i++) {
		const struct mp_leak_record *r = &rep->records[i];
		if (!(kinds & 1u << r->kind))
			continue;
		mp_json_begin_object(&j);
		mp_json_kv_string(&j, "kind", mp_leak_kind_name(r->kind));
		json_amount(&j, r->bytes, r->blocks);
		if (r->kind == MP_LEAK_DEFINITE)
			mp_json_kv_uint(&j, "retained_bytes",
					r->retained_bytes);
		mp_json_kv_uint(&j, "record", i + 1);
		mp_json_key(&j, "frames");
		mp_json_frames(&j, r->frames, r->nframes);
		mp_json_end_object(&j);
	}
	mp_json_end_array(&j);
	mp_json_key(&j, "cycles");
	mp_json_begin_array(&j);
	for (size_t i = 0; i < rep->ncycles; i++) {
		const struct mp_leak_cycle *c = &rep->cycles[i];
		mp_json_begin_object(&j);
		json_amount(&j, c->bytes, c->blocks);
		mp_json_kv_bool(&j, "is_root", c->is_root);
		mp_json_kv_uint(&j, "retained_bytes", c->retained_bytes);
		mp_json_key(&j, "members");
		mp_json_begin_array(&j);
		for (size_t k = 0; k < c->nmembers; k++) {
			const struct mp_leak_member *m = &c->members[k];
			mp_json_begin_object(&j);
			json_amount(&j, m->bytes, m->blocks);
			mp_json_key(&j, "frames");
			mp_json_frames(&j, m->frames, m->nframes);
			mp_json_end_object(&j);
		}
		mp_json_end_array(&j);
		mp_json_end_object(&j);
	}
	mp_json_end_array(&j);
	mp_json_kv_uint(&j, "threads", rep->threads);
	mp_json_kv_uint(&j, "threads_unscanned", rep->threads_unscanned);
	mp_json_end_object(&j);
	return mp_json_finish(&j);
}

int cmd_leaks(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"kinds", required_argument, NULL, 'k'},
		{"suppressions", required_argument, NULL, 'S'},
		{"alloc-fn", required_argument, NULL, 'A'},
		{"limit", required_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mp_leak_opts opts = {0};
	struct mp_suppressions *supp = NULL;
	const char *globs[MAX_ALLOC_FNS];
	const char *supp_files[MAX_SUPP_FILES];
	size_t nglobs = 0, nsupp = 0, limit = 0;
	unsigned kinds = DEFAULT_KINDS;
	bool json = false;
	int c;

	opterr = 0;
	optind = 0; /* glibc: full reset, parsing starts at argv[1] */
	while ((c = getopt_long(argc, argv, ":n:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (!mp_leak_kinds_parse(optarg, &kinds))
				return cli_error(
					"leaks: unknown --kinds '%s' (use a "
					"comma list of definite, indirect, "
					"possible, reachable, suppressed, or "
					"all or none)",
					optarg);
			break;
		case 'S':
			if (nsupp == MAX_SUPP_FILES)
				return cli_error(
					"leaks: more than %d --suppressions",
					MAX_SUPP_FILES);
			supp_files[nsupp++] = optarg;
			break;
		case 'A':
			if (nglobs == MAX_ALLOC_FNS)
				return cli_error(
					"leaks: more than %d --alloc-fn",
					MAX_ALLOC_FNS);
			globs[nglobs++] = optarg;
			break;
		case 'n': {
			uint64_t count;
			if (!cli_parse_count(optarg, SIZE_MAX, &count))
				return cli_error("leaks: -n wants a count, "
						 "not '%s'",
						 optarg);
			limit = (size_t)count;
			break;
		}
		case 'J': json = true; break;
		case 'h': leaks_usage(stdout); return MP_EXIT_OK;
		case ':':
		default: return cli_bad_option("leaks", c, argv);
		}
	}
	if (optind >= argc)
		return cli_error("leaks: no snapshot file given; see 'memprof "
				 "leaks --help'");
	if (optind + 1 < argc)
		return cli_error("leaks: one snapshot file only, got '%s' too",
				 argv[optind + 1]);

	for (size_t i = 0; i < nsupp; i++) {
		struct mp_errinfo ei = {{0}};
		enum mp_err err =
			mp_suppressions_load(supp_files[i], &supp, &ei);
		if (err == MP_OK)
			continue;
		mp_suppressions_free(supp);
		if (err == MP_ERR_CORRUPT)
			return cli_error("bad suppressions file '%s': %s",
					 supp_files[i], ei.msg);
		return cli_error("cannot read suppressions file '%s': %s",
				 supp_files[i],
				 ei.msg[0] ? ei.msg : mp_strerror(err));
	}
	opts.supp = supp;
	opts.alloc.globs = globs;
	opts.alloc.nglobs = nglobs;

	const char *path = argv[optind];
	struct mp_snapshot *snap = cli_open_snapshot(path);
	if (!snap) {
		mp_suppressions_free(supp);
		return MP_EXIT_USAGE;
	}
	if (!snap->has_graph) {
		mp_snapshot_free(snap);
		mp_suppressions_free(supp);
		return cli_error("'%s' has no heap graph (recorded with "
				 "--leak-check=no, or not an exit snapshot)",
				 path);
	}
	struct mp_leak_report *rep;
	enum mp_err err = mp_leaks_analyze(snap, &opts, &rep);
	mp_suppressions_free(supp);
	if (err != MP_OK) {
		mp_snapshot_free(snap);
		return cli_error("cannot analyse '%s': %s", path,
				 mp_strerror(err));
	}
	int status = MP_EXIT_OK;
	if (json) {
		if (print_json(stdout, rep, kinds, limit) != MP_OK)
			status = cli_error("cannot write the output");
	} else {
		print_text(stdout, snap, rep, kinds, limit);
		if (fflush(stdout) != 0 || ferror(stdout))
			status = cli_error("cannot write the output");
	}
	mp_leak_report_free(rep);
	mp_snapshot_free(snap);
	return status;
}
