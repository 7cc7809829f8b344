/*
 * fuzz_reader.c - fuzzes the snapshot reader (trace_reader.c) and what the
 * analysis commands do with every file it accepts.
 *
 * One input is one .memprof file. The harness reads it as `memprof top`,
 * `info`, `leaks`, `diff` and `check` do (mp_snapshot_open_mem: the same
 * code as mp_snapshot_open after read(2)), and then:
 *
 * - a rejected file must come with an error code a file can cause and one
 *   printable line saying where (the CLI prints it as is);
 * - an accepted file must satisfy every promise of memprof_trace.h (sorted
 *   blocks, indices in range, a well-formed graph...), since the analyses
 *   rely on them without checking again;
 * - it is walked the way the commands walk it: every stack resolved, the
 *   `top` aggregation under every grouping, sort and cumulative mode with
 *   filters, `leaks` with and without suppressions, `diff` against itself
 *   and an empty snapshot, every `check` budget, the JSON writer over
 *   every frame; with a few properties (a self-diff is all zeros, totals
 *   add up);
 * - it is written back with mp_snapshot_save and read again: the writer
 *   must accept what the reader accepts, and the copy must read the same.
 *
 * Symbolizing (mp_symbolize) is not fuzzed: it opens the module files a
 * snapshot names, so its input is this machine's binaries, not the file.
 *
 * Checksums. Every section carries a CRC-32 of its header and of its data
 * (formats/snapshot.md), so nearly every random mutation would stop at the
 * first checksum, and the decoders behind it would never see inconsistent
 * data. Rather than a build of the reader that skips its checks (a
 * different program from the one users run, and crashes that do not
 * reproduce with `memprof`), the harness's custom mutator repairs the
 * checksums of seven mutations out of eight (fix_checksums below): the
 * files libFuzzer saves are then plain snapshots that crash the real
 * reader and the real `memprof` as they are, and replay the same under
 * gcc in `make check`. The eighth keeps its damage, for the checksum
 * checks themselves. Seeds with uncompressed sections (flag bit 0 clear,
 * which the format allows) let mutations reach the decoders; zlib-stored
 * seeds cover inflation.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/common_format.h"
#include "fuzz.h"
#include "memprof_trace.h"
#include "trace/trace_internal.h"
#include "trace/trace_json.h"

/* ------------------------------------------------------------------ */
/* Checksum repair (the custom mutator; libFuzzer builds only)        */

#ifdef MP_LIBFUZZER

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

/* The raw length and CRC of a zlib payload that inflates completely (to
 * at most 16 MiB); false otherwise, leaving the header as it is. */
static bool inflate_crc(const uint8_t *in, size_t len, uint64_t *raw_len,
			uint32_t *crc)
{
	static unsigned char out[64 * 1024];
	z_stream zs;
	int ret;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit(&zs) != Z_OK)
		return false;
	zs.next_in = (unsigned char *)in;
	zs.avail_in = (uInt)len;
	*crc = (uint32_t)crc32(0, Z_NULL, 0);
	do {
		zs.next_out = out;
		zs.avail_out = sizeof(out);
		ret = inflate(&zs, Z_NO_FLUSH);
		*crc = (uint32_t)crc32(*crc, out,
				       (uInt)(sizeof(out) - zs.avail_out));
	} while (ret == Z_OK && zs.total_out < (16u << 20));
	*raw_len = zs.total_out;
	inflateEnd(&zs);
	return ret == Z_STREAM_END && zs.avail_in == 0;
}

/*
 * Makes the section checksums of a mutated file right again: for each
 * section whose payload lies inside the file, raw_len and raw_crc32 are
 * set from the payload (stored as is, or inflated when it is a complete
 * zlib stream), then header_crc32. The END section and lengths that run
 * past the end are left alone: the reader's own rules are what is fuzzed.
 */
static void fix_checksums(uint8_t *d, size_t size)
{
	size_t pos = MP_FILE_HEADER_LEN;

	while (pos <= size && size - pos >= MP_SECTION_HEADER_LEN) {
		uint8_t *h = d + pos;
		uint32_t flags = rd32(h + 4);
		uint64_t stored = rd64(h + 8), raw_len;
		uint32_t crc;

		pos += MP_SECTION_HEADER_LEN;
		if (rd32(h) != MP_SEC_END && stored <= size - pos) {
			if (!(flags & MP_SECTION_ZLIB)) {
				wr64(h + 16, stored);
				wr32(h + 24,
				     (uint32_t)crc32(0, d + pos, (uInt)stored));
			} else if (inflate_crc(d + pos, (size_t)stored,
					       &raw_len, &crc)) {
				wr64(h + 16, raw_len);
				wr32(h + 24, crc);
			}
		}
		wr32(h + 28, (uint32_t)crc32(0, h, 28));
		if (stored > size - pos)
			break;
		pos += (size_t)stored;
	}
}

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	if (seed % 8 && size >= MP_FILE_HEADER_LEN)
		fix_checksums(data, size);
	return size;
}
#endif

/* ------------------------------------------------------------------ */
/* What a rejected file must say                                      */

static void check_error(enum mp_err err, const struct mp_errinfo *ei)
{
	FUZZ_CHECK(err == MP_ERR_NOT_SNAPSHOT || err == MP_ERR_VERSION ||
		   err == MP_ERR_TRUNCATED || err == MP_ERR_CORRUPT ||
		   err == MP_ERR_NOMEM);
	/* One line of plain text: it goes to a terminal as it is. */
	FUZZ_CHECK(ei->msg[0] != '\0');
	for (const char *p = ei->msg; *p; p++)
		FUZZ_CHECK(*p >= 0x20 && *p <= 0x7e);
}

/* ------------------------------------------------------------------ */
/* The promises of memprof_trace.h                                    */

static void check_snapshot(const struct mp_snapshot *s)
{
	const struct mp_meta *m = &s->meta;

	FUZZ_CHECK(m->argv && m->argv[m->argc] == NULL);
	for (size_t i = 0; i < m->argc; i++)
		FUZZ_CHECK(m->argv[i] != NULL);
	FUZZ_CHECK(!s->nmodules || s->modules);
	for (size_t i = 0; i < s->nmodules; i++) {
		FUZZ_CHECK(s->modules[i].path != NULL);
		FUZZ_CHECK(s->modules[i].end >= s->modules[i].start);
		FUZZ_CHECK(s->modules[i].build_id_len <= 64);
	}
	FUZZ_CHECK(!s->nstacks || s->stacks);
	for (size_t i = 0; i < s->nstacks; i++) {
		FUZZ_CHECK(s->stacks[i].depth <= 1024);
		FUZZ_CHECK(!s->stacks[i].depth || s->stacks[i].pcs);
	}
	FUZZ_CHECK(!s->ntraces || s->traces);
	for (size_t i = 0; i < s->ntraces; i++)
		FUZZ_CHECK(s->traces[i].stack < s->nstacks);
	FUZZ_CHECK(s->has_blocks || !s->nblocks);
	for (size_t i = 0; i < s->nblocks; i++) {
		FUZZ_CHECK(s->blocks[i].trace < s->ntraces);
		FUZZ_CHECK(!i || s->blocks[i].addr > s->blocks[i - 1].addr);
	}
	FUZZ_CHECK(s->has_symbols || !s->nsymbols);
	for (size_t i = 0; i < s->nsymbols; i++) {
		const struct mp_symbol *sym = &s->symbols[i];

		FUZZ_CHECK(!i || sym->pc > s->symbols[i - 1].pc);
		FUZZ_CHECK(sym->module == UINT32_MAX ||
			   sym->module < s->nmodules);
		FUZZ_CHECK(sym->nframes <= 256);
		FUZZ_CHECK(!sym->nframes || sym->frames);
		/* The lookup finds every symbol by its pc. */
		FUZZ_CHECK(mp_snapshot_symbol(s, sym->pc) == sym);
	}
	if (s->has_graph) {
		const struct mp_graph *g = &s->graph;

		FUZZ_CHECK(s->has_blocks);
		FUZZ_CHECK(g->edge_start && g->edge_start[0] == 0);
		FUZZ_CHECK(g->edge_start[s->nblocks] == g->nedges);
		for (size_t i = 0; i < s->nblocks; i++) {
			uint64_t a = g->edge_start[i], b = g->edge_start[i + 1];

			FUZZ_CHECK(a <= b);
			for (uint64_t e = a; e < b; e++) {
				FUZZ_CHECK(g->edges[e].to < s->nblocks);
				FUZZ_CHECK(e == a ||
					   g->edges[e].to > g->edges[e - 1].to);
				FUZZ_CHECK(!(g->edges[e].flags &
					     ~MP_EDGE_INTERIOR));
			}
		}
		for (size_t i = 0; i < g->nroots; i++) {
			const struct mp_root_ref *r = &g->roots[i];

			FUZZ_CHECK(r->block < s->nblocks);
			FUZZ_CHECK(!i || r->block > g->roots[i - 1].block);
			FUZZ_CHECK((r->start_kinds | r->interior_kinds) != 0);
			FUZZ_CHECK(((r->start_kinds | r->interior_kinds) &
				    ~0xfu) == 0);
		}
	}
	if (s->has_timeline) {
		const struct mp_timeline *tl = &s->timeline;

		for (size_t i = 0; i < tl->nsamples; i++)
			FUZZ_CHECK(tl->samples[i].ns >=
				   (i ? tl->samples[i - 1].ns : m->start_ns));
		for (size_t i = 0; i < tl->nmarks; i++)
			FUZZ_CHECK(tl->marks[i].ns >=
				   (i ? tl->marks[i - 1].ns : m->start_ns));
	}
}

/* ------------------------------------------------------------------ */
/* The analyses                                                       */

static FILE *devnull;
static struct mp_suppressions *supp;
static struct mp_snapshot *empty;
static char tmpdir[4096];

static void remove_tmpdir(void)
{
	rmdir(tmpdir);
}

static void setup(void)
{
	static const char rules[] = "leak:main\n"
				    "leak:^lib*.so$\n"
				    "leak:*.c$\n"
				    "leak:^operator new\n";
	const char *root = getenv("TMPDIR");
	struct mp_errinfo ei;

	if (devnull)
		return;
	devnull = fopen("/dev/null", "w");
	FUZZ_CHECK(devnull != NULL);
	FUZZ_CHECK(mp_suppressions_parse(rules, sizeof(rules) - 1, &supp,
					 &ei) == MP_OK);
	empty = mp__snapshot_new();
	FUZZ_CHECK(empty != NULL);
	snprintf(tmpdir, sizeof(tmpdir), "%s/memprof-fuzz-XXXXXX",
		 root && *root ? root : "/tmp");
	FUZZ_CHECK(mkdtemp(tmpdir) != NULL);
	atexit(remove_tmpdir);
}

static void json_frames(const struct mp_resolved_frame *f, size_t n)
{
	struct mp_json j;

	mp_json_init(&j, devnull, false);
	mp_json_frames(&j, f, n);
	FUZZ_CHECK(mp_json_finish(&j) == MP_OK);
}

/* The reader's module index answers as a scan in file order would (a
 * scan of up to 4096 modules: the regressions hold bigger files). */
static void check_module(const struct mp_snapshot *s, uint64_t pc)
{
	const struct mp_module *want = NULL;

	if (s->nmodules > 4096) {
		mp_snapshot_module(s, pc);
		return;
	}

	for (size_t i = 0; i < s->nmodules && !want; i++)
		if (pc >= s->modules[i].start && pc < s->modules[i].end)
			want = &s->modules[i];
	FUZZ_CHECK(mp_snapshot_module(s, pc) == want);
}

static void walk_stacks(const struct mp_snapshot *s)
{
	static const char *const globs[] = {"*alloc*", "x[a-"};
	const struct mp_alloc_filter alloc = {globs, 2};

	for (size_t i = 0; i < s->nstacks; i++) {
		struct mp_resolved_frame *f;
		size_t n;

		FUZZ_CHECK(mp_stack_resolve(s, (uint32_t)i, &alloc, &f, &n) ==
			   MP_OK);
		for (size_t k = 0; k < s->stacks[i].depth; k++)
			check_module(s, s->stacks[i].pcs[k]);
		json_frames(f, n);
		free(f);
	}
	/* And at every module's edges. */
	for (size_t i = 0; i < s->nmodules; i++) {
		check_module(s, s->modules[i].start);
		check_module(s, s->modules[i].start - 1);
		check_module(s, s->modules[i].end);
		check_module(s, s->modules[i].end - 1);
	}
	FUZZ_CHECK(mp_stack_resolve(s, (uint32_t)s->nstacks, NULL, NULL,
				    NULL) == MP_ERR_USAGE);
}

/*
 * A big snapshot (many pcs or modules: a few KB of zlib can hold them)
 * gets one variant of each analysis instead of all: the variants differ
 * in keys and order, not in what they read, and a slow input would cost
 * the fuzzer more than it teaches.
 */
static bool is_big(const struct mp_snapshot *s)
{
	size_t work = s->nmodules + s->nsymbols + s->nblocks;

	for (size_t i = 0; i < s->nstacks; i++)
		work += s->stacks[i].depth;
	return work > 20000;
}

static void walk_profiles(const struct mp_snapshot *s, bool big)
{
	static const struct mp_frame_filter ff[] = {
		{true, "*"},
		{false, "*.so*"},
		{false, "[!a-m]*"},
	};
	const struct mp_filters filters = {ff, 3, true};
	uint64_t bytes = 0, blocks = 0;

	for (size_t i = 0; i < s->ntraces; i++) {
		bytes += s->traces[i].live_bytes;
		blocks += s->traces[i].live_blocks;
	}
	for (int by = 0; by <= MP_GROUP_MODULE; by++) {
		for (int mode = 0; mode < (big ? 1 : 6); mode++) {
			struct mp_profile_opts o = {
				.by = (enum mp_group_by)by,
				.sort = (enum mp_sort_by)(mode % 4),
				.cumulative = mode == 4,
				.filters = mode == 5 ? &filters : NULL,
			};
			struct mp_profile *p;
			struct mp_profile_entry rest;
			uint64_t sb = 0, sn = 0, st = 0;
			enum mp_err err = mp_profile_build(s, &o, &p);

			if (o.cumulative && (by == MP_GROUP_TRACEBACK ||
					     by == MP_GROUP_MODULE)) {
				FUZZ_CHECK(err == MP_ERR_USAGE);
				continue;
			}
			FUZZ_CHECK(err == MP_OK);
			for (size_t e = 0; e < p->nentries; e++) {
				sb += p->entries[e].bytes;
				sn += p->entries[e].blocks;
				st += p->entries[e].ntraces;
				json_frames(p->entries[e].frames,
					    p->entries[e].nframes);
			}
			/* Every trace is in exactly one group. */
			if (mode < 4) {
				FUZZ_CHECK(sb == bytes && sn == blocks);
				FUZZ_CHECK(st == s->ntraces);
			}
			mp_profile_rest(p, 1, &rest);
			mp_profile_free(p);
		}
	}
}

static void walk_leaks(const struct mp_snapshot *s)
{
	for (int with_supp = 0; with_supp < 2; with_supp++) {
		const struct mp_leak_opts o = {with_supp ? supp : NULL, {0}};
		struct mp_leak_report *rep;
		enum mp_err err = mp_leaks_analyze(s, &o, &rep);
		uint64_t bytes = 0, nblocks = 0, kb[MP_LEAK_NKINDS] = {0};

		if (!s->has_graph) {
			FUZZ_CHECK(err == MP_ERR_USAGE);
			return;
		}
		FUZZ_CHECK(err == MP_OK);
		for (size_t i = 0; i < s->nblocks; i++)
			bytes += s->blocks[i].size;
		for (int k = 0; k < MP_LEAK_NKINDS; k++) {
			bytes -= rep->summary[k].bytes;
			nblocks += rep->summary[k].blocks;
		}
		/* Every block has exactly one kind. */
		FUZZ_CHECK(bytes == 0 && nblocks == s->nblocks);
		for (size_t i = 0; i < rep->nrecords; i++) {
			const struct mp_leak_record *r = &rep->records[i];

			FUZZ_CHECK((unsigned)r->kind < MP_LEAK_NKINDS);
			kb[r->kind] += r->bytes;
			json_frames(r->frames, r->nframes);
		}
		for (int k = 0; k < MP_LEAK_NKINDS; k++)
			FUZZ_CHECK(kb[k] == rep->summary[k].bytes);
		for (size_t i = 0; i < rep->ncycles; i++) {
			const struct mp_leak_cycle *c = &rep->cycles[i];
			uint64_t mb = 0;

			for (size_t k = 0; k < c->nmembers; k++) {
				mb += c->members[k].blocks;
				json_frames(c->members[k].frames,
					    c->members[k].nframes);
			}
			FUZZ_CHECK(mb == c->blocks);
		}
		mp_leak_report_free(rep);
	}
}

static void walk_diffs(const struct mp_snapshot *s, bool big)
{
	for (int by = 0; by <= MP_GROUP_MODULE; by += big ? 4 : 1) {
		const struct mp_diff_opts o = {.by = (enum mp_group_by)by};
		struct mp_diff *d;
		struct mp_diff_entry rest;

		FUZZ_CHECK(mp_diff_build(s, s, &o, &d) == MP_OK);
		for (size_t i = 0; i < d->nentries; i++) {
			FUZZ_CHECK(d->entries[i].bytes_diff == 0);
			FUZZ_CHECK(d->entries[i].blocks_diff == 0);
			json_frames(d->entries[i].frames,
				    d->entries[i].nframes);
		}
		mp_diff_rest(d, 1, &rest);
		mp_diff_free(d);
		FUZZ_CHECK(mp_diff_build(empty, s, &o, &d) == MP_OK);
		mp_diff_rest(d, 1, &rest);
		mp_diff_free(d);
		FUZZ_CHECK(mp_diff_build(s, empty, &o, &d) == MP_OK);
		mp_diff_rest(d, 1, &rest);
		mp_diff_free(d);
	}
}

static void walk_check(const struct mp_snapshot *s)
{
	struct mp_check_opts o = {
		.budgets = (1u << MP_CHECK_NBUDGETS) - 1,
		.leak_kinds = MP_CHECK_DEFAULT_KINDS,
		.supp = supp,
	};
	struct mp_check_report rep;

	if (!s->has_graph)
		o.budgets &=
			1u << MP_CHECK_MAX_PEAK | 1u << MP_CHECK_MAX_GROWTH;
	FUZZ_CHECK(mp_check_run(s, s, &o, &rep) == MP_OK);
	o.growth_is_percent = true;
	o.max_growth_percent = 10;
	o.growth_of = MP_GROWTH_PEAK;
	FUZZ_CHECK(mp_check_run(s, empty, &o, &rep) == MP_OK);
}

static void write_json_info(const struct mp_snapshot *s)
{
	struct mp_json j;

	mp_json_init(&j, devnull, true);
	mp_json_begin_object(&j);
	mp_json_kv_string(&j, "exe", s->meta.exe);
	mp_json_kv_string(&j, "trigger", s->meta.trigger);
	mp_json_kv_string(&j, "name", s->meta.name);
	mp_json_key(&j, "argv");
	mp_json_begin_array(&j);
	for (size_t i = 0; i < s->meta.argc; i++)
		mp_json_string(&j, s->meta.argv[i]);
	mp_json_end_array(&j);
	mp_json_key(&j, "totals");
	mp_json_totals(&j, &s->meta.totals);
	mp_json_key(&j, "modules");
	mp_json_begin_array(&j);
	for (size_t i = 0; i < s->nmodules; i++)
		mp_json_string(&j, s->modules[i].path);
	mp_json_end_array(&j);
	mp_json_end_object(&j);
	FUZZ_CHECK(mp_json_finish(&j) == MP_OK);
}

/* ------------------------------------------------------------------ */
/* Writing back                                                       */

static void check_same(const struct mp_snapshot *a, const struct mp_snapshot *b)
{
	FUZZ_CHECK(a->nmodules == b->nmodules && a->nstacks == b->nstacks);
	FUZZ_CHECK(a->ntraces == b->ntraces && a->nblocks == b->nblocks);
	FUZZ_CHECK(a->nsymbols == b->nsymbols);
	FUZZ_CHECK(a->has_blocks == b->has_blocks);
	FUZZ_CHECK(a->has_graph == b->has_graph);
	FUZZ_CHECK(a->has_symbols == b->has_symbols);
	FUZZ_CHECK(a->has_timeline == b->has_timeline);
	FUZZ_CHECK(!memcmp(&a->meta.totals, &b->meta.totals,
			   sizeof(a->meta.totals)));
	FUZZ_CHECK(a->meta.argc == b->meta.argc);
	for (size_t i = 0; i < a->nstacks; i++) {
		FUZZ_CHECK(a->stacks[i].depth == b->stacks[i].depth);
		for (uint32_t k = 0; k < a->stacks[i].depth; k++)
			FUZZ_CHECK(a->stacks[i].pcs[k] == b->stacks[i].pcs[k]);
	}
	for (size_t i = 0; i < a->nblocks; i++) {
		FUZZ_CHECK(a->blocks[i].addr == b->blocks[i].addr);
		FUZZ_CHECK(a->blocks[i].size == b->blocks[i].size);
		FUZZ_CHECK(a->blocks[i].trace == b->blocks[i].trace);
	}
	if (a->has_graph) {
		FUZZ_CHECK(a->graph.nedges == b->graph.nedges);
		FUZZ_CHECK(a->graph.nroots == b->graph.nroots);
	}
	if (a->has_timeline) {
		FUZZ_CHECK(a->timeline.nsamples == b->timeline.nsamples);
		FUZZ_CHECK(a->timeline.nmarks == b->timeline.nmarks);
	}
}

static void round_trip(const struct mp_snapshot *s)
{
	char path[4200];
	struct mp_snapshot *copy;
	struct mp_errinfo ei;

	snprintf(path, sizeof(path), "%s/copy.memprof", tmpdir);
	FUZZ_CHECK(mp_snapshot_save(s, path, &ei) == MP_OK);
	FUZZ_CHECK(mp_snapshot_open(path, &copy, &ei) == MP_OK);
	check_same(s, copy);
	mp_snapshot_free(copy);
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei;
	enum mp_err err;

	setup();
	memset(&ei, 0, sizeof(ei));
	err = mp_snapshot_open_mem(data, size, &s, &ei);
	if (err != MP_OK) {
		FUZZ_CHECK(s == NULL);
		check_error(err, &ei);
		return 0;
	}
	check_snapshot(s);
	walk_stacks(s);
	walk_profiles(s, is_big(s));
	walk_leaks(s);
	walk_diffs(s, is_big(s));
	walk_check(s);
	write_json_info(s);
	round_trip(s);
	mp_snapshot_free(s);
	return 0;
}
