/*
 * test_diff.c - `diff`: tracemalloc's Snapshot.compare_to over two
 * snapshots built by hand in memory, matched by symbols, never addresses.
 *
 * Each fixture gives OLD and NEW their own addresses (another load base,
 * as under ASLR) so that every test also checks that groups match by
 * symbols.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace_internal.h"
#include "memprof_trace.h"

#define CAP 64

static struct mp_snapshot *fx_new(void)
{
	struct mp_snapshot *s = mp__snapshot_new();
	cr_assert_not_null(s);
	s->modules = mp__alloc(s, CAP * sizeof(*s->modules));
	s->symbols = mp__alloc(s, CAP * sizeof(*s->symbols));
	s->stacks = mp__alloc(s, CAP * sizeof(*s->stacks));
	s->traces = mp__alloc(s, CAP * sizeof(*s->traces));
	cr_assert(s->modules && s->symbols && s->stacks && s->traces);
	s->has_symbols = true;
	return s;
}

/* A module loaded with load bias base, mapped over [base, base + size). */
static uint32_t fx_module(struct mp_snapshot *s, const char *path,
			  uint64_t base, uint64_t size)
{
	struct mp_module *m = &s->modules[s->nmodules];
	m->path = mp__strdup(s, path);
	m->base = base;
	m->start = base;
	m->end = base + size;
	return (uint32_t)s->nmodules++;
}

/* A symbol of one frame (function, file, line), kept sorted by pc. */
static void fx_symbol(struct mp_snapshot *s, uint64_t pc, uint32_t module,
		      const char *fn, const char *file, uint32_t line)
{
	size_t i = s->nsymbols;
	while (i > 0 && s->symbols[i - 1].pc > pc) {
		s->symbols[i] = s->symbols[i - 1];
		i--;
	}
	struct mp_symbol *sym = &s->symbols[i];
	memset(sym, 0, sizeof(*sym));
	sym->pc = pc;
	sym->module = module;
	if (fn || file) {
		sym->nframes = 1;
		sym->frames = mp__alloc(s, sizeof(*sym->frames));
		sym->frames[0].function = fn ? mp__strdup(s, fn) : NULL;
		sym->frames[0].file = file ? mp__strdup(s, file) : NULL;
		sym->frames[0].line = line;
	}
	s->nsymbols++;
}

static uint32_t fx_stack(struct mp_snapshot *s, uint32_t depth, ...)
{
	struct mp_stack *st = &s->stacks[s->nstacks];
	st->depth = depth;
	st->pcs = mp__alloc(s, (depth ? depth : 1) * sizeof(uint64_t));
	va_list ap;
	va_start(ap, depth);
	for (uint32_t i = 0; i < depth; i++)
		st->pcs[i] = va_arg(ap, uint64_t);
	va_end(ap);
	return (uint32_t)s->nstacks++;
}

static void fx_trace(struct mp_snapshot *s, uint32_t stack, uint64_t bytes,
		     uint64_t blocks)
{
	struct mp_trace *t = &s->traces[s->ntraces++];
	t->stack = stack;
	t->live_bytes = bytes;
	t->live_blocks = blocks;
	t->allocs = blocks;
	t->alloc_bytes = bytes;
}

/* One call site: a symbolized pc, a one-frame stack, a trace. */
static void fx_site(struct mp_snapshot *s, uint64_t pc, const char *fn,
		    const char *file, uint32_t line, uint64_t bytes,
		    uint64_t blocks)
{
	fx_symbol(s, pc, UINT32_MAX, fn, file, line);
	fx_trace(s, fx_stack(s, 1, pc), bytes, blocks);
}

#define PC(x) ((uint64_t)(x))

static struct mp_diff *build(const struct mp_snapshot *o,
			     const struct mp_snapshot *n, enum mp_group_by by,
			     bool cumulative, const struct mp_filters *flt)
{
	struct mp_diff_opts opts = {
		.by = by, .cumulative = cumulative, .filters = flt};
	struct mp_diff *d = NULL;
	cr_assert_eq(mp_diff_build(o, n, &opts, &d), MP_OK);
	cr_assert_not_null(d);
	return d;
}

/* "fn@file:line" of an entry's first frame ("?" for unknown parts), its
 * address when nothing is known, "-" for no frames. */
static const char *desc(const struct mp_diff_entry *e, size_t k, char *buf)
{
	if (k >= e->nframes) {
		strcpy(buf, "-");
		return buf;
	}
	const struct mp_resolved_frame *f = &e->frames[k];
	if (f->function || f->file)
		snprintf(buf, 128, "%s@%s:%u", f->function ? f->function : "?",
			 f->file ? f->file : "?", f->line);
	else
		snprintf(buf, 128, "0x%llx", (unsigned long long)f->address);
	return buf;
}

struct want {
	const char *key;
	uint64_t bytes;
	int64_t bytes_diff;
	uint64_t blocks;
	int64_t blocks_diff;
};

static void check_entries(const struct mp_diff *d, const struct want *w,
			  size_t n)
{
	char buf[128];
	cr_assert_eq(d->nentries, n, "%zu entries, want %zu", d->nentries, n);
	for (size_t i = 0; i < n; i++) {
		const struct mp_diff_entry *e = &d->entries[i];
		cr_expect_str_eq(desc(e, 0, buf), w[i].key, "entry %zu", i);
		cr_expect_eq(e->bytes, w[i].bytes, "entry %zu bytes %llu", i,
			     (unsigned long long)e->bytes);
		cr_expect_eq(e->bytes_diff, w[i].bytes_diff,
			     "entry %zu bytes_diff %lld", i,
			     (long long)e->bytes_diff);
		cr_expect_eq(e->blocks, w[i].blocks, "entry %zu blocks", i);
		cr_expect_eq(e->blocks_diff, w[i].blocks_diff,
			     "entry %zu blocks_diff %lld", i,
			     (long long)e->blocks_diff);
	}
}

#define CHECK(d, ...)                                             \
	do {                                                      \
		const struct want w_[] = {__VA_ARGS__};           \
		check_entries(d, w_, sizeof(w_) / sizeof(w_[0])); \
	} while (0)

/*
 * Ten groups, one per file, each figure chosen so that one rule of
 * tracemalloc's sort decides between neighbours. NEW's pcs are OLD's +
 * 0x10000: nothing matches by address.
 *
 *        OLD        NEW
 *   a    100/1      300/3
 *   b    500/5      300/1
 *   c    -          200/2
 *   d    1000/10    -
 *   e    50/1       50/5
 *   f    50/2       50/2
 *   g    10/1       10/1
 *   h    10/1       10/1
 *   i    -          16/4
 *   j    32/6       16/2
 */
static void fx_ordering(struct mp_snapshot **po, struct mp_snapshot **pn)
{
	struct mp_snapshot *o = fx_new(), *n = fx_new();
	fx_site(o, 0x100, "fa", "a.c", 1, 100, 1);
	fx_site(o, 0x200, "fb", "b.c", 1, 500, 5);
	fx_site(o, 0x400, "fd", "d.c", 1, 1000, 10);
	fx_site(o, 0x500, "fe", "e.c", 1, 50, 1);
	fx_site(o, 0x600, "ff", "f.c", 1, 50, 2);
	fx_site(o, 0x700, "fg", "g.c", 1, 10, 1);
	fx_site(o, 0x800, "fh", "h.c", 1, 10, 1);
	fx_site(o, 0xa00, "fj", "j.c", 1, 32, 6);
	o->meta.totals.live_bytes = 1762;
	o->meta.totals.live_blocks = 27;

	fx_site(n, 0x10100, "fa", "a.c", 1, 300, 3);
	fx_site(n, 0x10200, "fb", "b.c", 1, 300, 1);
	fx_site(n, 0x10300, "fc", "c.c", 1, 200, 2);
	fx_site(n, 0x10500, "fe", "e.c", 1, 50, 5);
	fx_site(n, 0x10600, "ff", "f.c", 1, 50, 2);
	fx_site(n, 0x10700, "fg", "g.c", 1, 10, 1);
	fx_site(n, 0x10800, "fh", "h.c", 1, 10, 1);
	fx_site(n, 0x10900, "fi", "i.c", 1, 16, 4);
	fx_site(n, 0x10a00, "fj", "j.c", 1, 16, 2);
	n->meta.totals.live_bytes = 952;
	n->meta.totals.live_blocks = 21;
	*po = o;
	*pn = n;
}

Test(diff, sorted_like_compare_to)
{
	struct mp_snapshot *o, *n;
	fx_ordering(&o, &n);
	struct mp_diff *d = build(o, n, MP_GROUP_LINE, false, NULL);
	/* |size_diff| first (d); then size (b, a before c); then
	 * |count_diff| (b before a; e before f); then count (i before j);
	 * then the key, descending like tracemalloc's reverse=True (h
	 * before g). */
	CHECK(d, {"fd@d.c:1", 0, -1000, 0, -10}, {"fb@b.c:1", 300, -200, 1, -4},
	      {"fa@a.c:1", 300, 200, 3, 2}, {"fc@c.c:1", 200, 200, 2, 2},
	      {"fi@i.c:1", 16, 16, 4, 4}, {"fj@j.c:1", 16, -16, 2, -4},
	      {"fe@e.c:1", 50, 0, 5, 4}, {"ff@f.c:1", 50, 0, 2, 0},
	      {"fh@h.c:1", 10, 0, 1, 0}, {"fg@g.c:1", 10, 0, 1, 0});
	cr_expect_eq(d->by, MP_GROUP_LINE);
	cr_expect_not(d->cumulative);
	cr_expect_not(d->filtered);
	cr_expect_eq(d->old_totals.live_bytes, 1762);
	cr_expect_eq(d->new_totals.live_bytes, 952);
	cr_expect_eq(d->new_totals.live_blocks, 21);
	mp_diff_free(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

Test(diff, groups_only_in_old_have_size_zero_and_negated_counts)
{
	struct mp_snapshot *o, *n;
	fx_ordering(&o, &n);
	struct mp_diff *d = build(o, n, MP_GROUP_FUNCTION, false, NULL);
	const struct mp_diff_entry *e = &d->entries[0];
	cr_assert_eq(e->nframes, 1);
	cr_expect_str_eq(e->frames[0].function, "fd");
	cr_expect_eq(e->bytes, 0);
	cr_expect_eq(e->blocks, 0);
	cr_expect_eq(e->bytes_diff, -1000);
	cr_expect_eq(e->blocks_diff, -10);
	cr_expect_eq(e->old_bytes, 1000);
	cr_expect_eq(e->old_blocks, 10);
	cr_expect(e->in_old);
	cr_expect_not(e->in_new);
	/* Its frame comes from OLD, the only snapshot that has it. */
	cr_expect_eq(e->frames[0].address, 0x400);

	/* A group only in NEW: OLD counts as 0; frames from NEW. */
	e = &d->entries[3];
	cr_expect_str_eq(e->frames[0].function, "fc");
	cr_expect_eq(e->bytes_diff, 200);
	cr_expect_eq(e->old_bytes, 0);
	cr_expect_not(e->in_old);
	cr_expect(e->in_new);
	cr_expect_eq(e->frames[0].address, 0x10300);

	/* In both: frames (and addresses) from NEW. */
	e = &d->entries[2];
	cr_expect_str_eq(e->frames[0].function, "fa");
	cr_expect(e->in_old && e->in_new);
	cr_expect_eq(e->old_bytes, 100);
	cr_expect_eq(e->old_blocks, 1);
	cr_expect_eq(e->frames[0].address, 0x10100);
	mp_diff_free(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

Test(diff, swapped_snapshots_negate_every_diff)
{
	struct mp_snapshot *o, *n;
	fx_ordering(&o, &n);
	struct mp_diff *d = build(n, o, MP_GROUP_LINE, false, NULL);
	/* Sizes are now OLD's: the order changes with them. */
	CHECK(d, {"fd@d.c:1", 1000, 1000, 10, 10}, {"fb@b.c:1", 500, 200, 5, 4},
	      {"fa@a.c:1", 100, -200, 1, -2}, {"fc@c.c:1", 0, -200, 0, -2},
	      {"fj@j.c:1", 32, 16, 6, 4}, {"fi@i.c:1", 0, -16, 0, -4},
	      {"fe@e.c:1", 50, 0, 1, -4}, {"ff@f.c:1", 50, 0, 2, 0},
	      {"fh@h.c:1", 10, 0, 1, 0}, {"fg@g.c:1", 10, 0, 1, 0});
	mp_diff_free(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

Test(diff, rest_sums_entries_after_the_limit)
{
	struct mp_snapshot *o, *n;
	fx_ordering(&o, &n);
	struct mp_diff *d = build(o, n, MP_GROUP_LINE, false, NULL);
	struct mp_diff_entry rest;

	cr_expect_eq(mp_diff_rest(d, 5, &rest), 5);
	/* j, e, f, h, g */
	cr_expect_eq(rest.bytes, 16 + 50 + 50 + 10 + 10);
	cr_expect_eq(rest.bytes_diff, -16);
	cr_expect_eq(rest.blocks, 2 + 5 + 2 + 1 + 1);
	cr_expect_eq(rest.blocks_diff, -4 + 4);
	cr_expect_eq(rest.old_bytes, 32 + 50 + 50 + 10 + 10);
	cr_expect_null(rest.frames);
	cr_expect_eq(mp_diff_rest(d, 0, &rest), 0);
	cr_expect_eq(rest.bytes, 0);
	cr_expect_eq(mp_diff_rest(d, 10, &rest), 0);
	cr_expect_eq(mp_diff_rest(d, 9, &rest), 1);
	cr_expect_eq(rest.bytes, 10);
	mp_diff_free(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

/*
 * Two runs of one program under ASLR: the executable and libfoo load at
 * other addresses; libfoo has no symbols. NEW's libfoo lives elsewhere on
 * disk too (same base name).
 *
 *   OLD demo @0x555500000000, libfoo @0x7f0000000000
 *   NEW demo @0x563400000000, libfoo @0x7fab00000000
 *   site   pcs (offset)   stack                       OLD      NEW
 *   grow   demo+0x1200    [grow demo.c:42, main:60]   4096/1   45056/11
 *   keep   demo+0x1300    [keep demo.c:50, main:61]   64/1     64/1
 *   foo1   libfoo+0x123   [?, main:60]                100/1    300/3
 *   foo2   libfoo+0x456   [?, main:60]                -        20/1
 */
#define OBASE_DEMO 0x555500000000ull
#define NBASE_DEMO 0x563400000000ull
#define OBASE_FOO 0x7f0000000000ull
#define NBASE_FOO 0x7fab00000000ull

static struct mp_snapshot *fx_run(uint64_t bdemo, uint64_t bfoo,
				  const char *foo_path, bool second)
{
	struct mp_snapshot *s = fx_new();
	uint32_t demo = fx_module(s, "/home/u/demo", bdemo, 0x10000);
	fx_module(s, foo_path, bfoo, 0x10000);
	fx_symbol(s, bdemo + 0x1200, demo, "grow", "/src/demo.c", 42);
	fx_symbol(s, bdemo + 0x1300, demo, "keep", "/src/demo.c", 50);
	fx_symbol(s, bdemo + 0x1400, demo, "main", "/src/demo.c", 60);
	fx_symbol(s, bdemo + 0x1410, demo, "main", "/src/demo.c", 61);
	/* libfoo's pcs have no symbol at all: module found by address. */
	uint32_t sg = fx_stack(s, 2, PC(bdemo + 0x1200), PC(bdemo + 0x1400));
	uint32_t sk = fx_stack(s, 2, PC(bdemo + 0x1300), PC(bdemo + 0x1410));
	uint32_t f1 = fx_stack(s, 2, PC(bfoo + 0x123), PC(bdemo + 0x1400));
	fx_trace(s, sg, second ? 45056 : 4096, second ? 11 : 1);
	fx_trace(s, sk, 64, 1);
	fx_trace(s, f1, second ? 300 : 100, second ? 3 : 1);
	if (second) {
		uint32_t f2 =
			fx_stack(s, 2, PC(bfoo + 0x456), PC(bdemo + 0x1400));
		fx_trace(s, f2, 20, 1);
	}
	return s;
}

Test(diff, matches_symbols_across_load_addresses)
{
	struct mp_snapshot *o =
		fx_run(OBASE_DEMO, OBASE_FOO, "/usr/lib/libfoo.so", false);
	struct mp_snapshot *n =
		fx_run(NBASE_DEMO, NBASE_FOO, "/opt/foo/libfoo.so", true);

	struct mp_diff *d = build(o, n, MP_GROUP_LINE, false, NULL);
	char k1[40], k2[40];
	snprintf(k1, sizeof(k1), "0x%llx",
		 (unsigned long long)(NBASE_FOO + 0x123));
	snprintf(k2, sizeof(k2), "0x%llx",
		 (unsigned long long)(NBASE_FOO + 0x456));
	CHECK(d, {"grow@/src/demo.c:42", 45056, 40960, 11, 10},
	      {k1, 300, 200, 3, 2}, {k2, 20, 20, 1, 1},
	      {"keep@/src/demo.c:50", 64, 0, 1, 0});
	cr_expect(d->entries[1].in_old && d->entries[1].in_new);
	cr_expect_not(d->entries[2].in_old);
	cr_expect_str_eq(d->entries[1].frames[0].module, "/opt/foo/libfoo.so");
	mp_diff_free(d);

	d = build(o, n, MP_GROUP_FUNCTION, false, NULL);
	CHECK(d, {"grow@/src/demo.c:42", 45056, 40960, 11, 10},
	      {k1, 300, 200, 3, 2}, {k2, 20, 20, 1, 1},
	      {"keep@/src/demo.c:50", 64, 0, 1, 0});
	mp_diff_free(d);

	d = build(o, n, MP_GROUP_TRACEBACK, false, NULL);
	CHECK(d, {"grow@/src/demo.c:42", 45056, 40960, 11, 10},
	      {k1, 300, 200, 3, 2}, {k2, 20, 20, 1, 1},
	      {"keep@/src/demo.c:50", 64, 0, 1, 0});
	cr_assert_eq(d->entries[1].nframes, 2);
	char buf[128];
	cr_expect_str_eq(desc(&d->entries[1], 1, buf), "main@/src/demo.c:60");
	mp_diff_free(d);

	d = build(o, n, MP_GROUP_FILE, false, NULL);
	CHECK(d, {"?@/src/demo.c:0", 45120, 40960, 12, 10},
	      {k1, 300, 200, 3, 2}, {k2, 20, 20, 1, 1});
	mp_diff_free(d);

	/* Modules match by base name: /usr/lib and /opt/foo's libfoo. */
	d = build(o, n, MP_GROUP_MODULE, false, NULL);
	cr_assert_eq(d->nentries, 2);
	cr_expect_str_eq(d->entries[0].frames[0].module, "/home/u/demo");
	cr_expect_eq(d->entries[0].bytes, 45120);
	cr_expect_eq(d->entries[0].bytes_diff, 40960);
	cr_expect_str_eq(d->entries[1].frames[0].module, "/opt/foo/libfoo.so");
	cr_expect_eq(d->entries[1].bytes, 320);
	cr_expect_eq(d->entries[1].bytes_diff, 220);
	cr_expect_eq(d->entries[1].blocks_diff, 3);
	mp_diff_free(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

Test(diff, same_address_in_another_module_does_not_match)
{
	/* NEW's libfoo loads where OLD's demo was: equal pcs, other code. */
	struct mp_snapshot *o = fx_new(), *n = fx_new();
	fx_module(o, "/usr/lib/libfoo.so", 0x7000000, 0x10000);
	fx_module(n, "/usr/lib/libbar.so", 0x7000000, 0x10000);
	fx_trace(o, fx_stack(o, 1, PC(0x7000100)), 64, 1);
	fx_trace(n, fx_stack(n, 1, PC(0x7000100)), 64, 1);
	/* Unknown module: only the raw address is left to match by. */
	fx_trace(o, fx_stack(o, 1, PC(0x900)), 8, 1);
	fx_trace(n, fx_stack(n, 1, PC(0x900)), 16, 2);

	struct mp_diff *d = build(o, n, MP_GROUP_LINE, false, NULL);
	CHECK(d, {"0x7000100", 64, 64, 1, 1}, {"0x7000100", 0, -64, 0, -1},
	      {"0x900", 16, 8, 2, 1});
	cr_expect_str_eq(d->entries[0].frames[0].module, "/usr/lib/libbar.so");
	cr_expect_str_eq(d->entries[1].frames[0].module, "/usr/lib/libfoo.so");
	mp_diff_free(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

Test(diff, different_lines_of_one_function)
{
	/* A rebuild moved the allocation from line 42 to 44: by line the
	 * old group vanishes and a new one appears; by function they match. */
	struct mp_snapshot *o = fx_new(), *n = fx_new();
	fx_site(o, 0x100, "grow", "demo.c", 42, 4096, 1);
	fx_site(n, 0x180, "grow", "demo.c", 44, 8192, 2);

	struct mp_diff *d = build(o, n, MP_GROUP_LINE, false, NULL);
	CHECK(d, {"grow@demo.c:44", 8192, 8192, 2, 2},
	      {"grow@demo.c:42", 0, -4096, 0, -1});
	mp_diff_free(d);
	d = build(o, n, MP_GROUP_FUNCTION, false, NULL);
	CHECK(d, {"grow@demo.c:44", 8192, 4096, 2, 1});
	mp_diff_free(d);
	d = build(o, n, MP_GROUP_FILE, false, NULL);
	CHECK(d, {"grow@demo.c:44", 8192, 4096, 2, 1});
	mp_diff_free(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

/* rec:5 <- rec:5 <- rec:7 <- main:20, in OLD 100/2, in NEW 300/6. */
static struct mp_snapshot *fx_rec(uint64_t base, uint64_t bytes,
				  uint64_t blocks)
{
	struct mp_snapshot *s = fx_new();
	fx_symbol(s, base + 0x10, UINT32_MAX, "rec", "r.c", 5);
	fx_symbol(s, base + 0x20, UINT32_MAX, "rec", "r.c", 7);
	fx_symbol(s, base + 0x30, UINT32_MAX, "main", "r.c", 20);
	fx_trace(s,
		 fx_stack(s, 4, PC(base + 0x10), PC(base + 0x10),
			  PC(base + 0x20), PC(base + 0x30)),
		 bytes, blocks);
	return s;
}

Test(diff, cumulative_counts_every_frame_without_dedup)
{
	struct mp_snapshot *o = fx_rec(0x1000, 100, 2);
	struct mp_snapshot *n = fx_rec(0x8000, 300, 6);

	struct mp_diff *d = build(o, n, MP_GROUP_FUNCTION, true, NULL);
	CHECK(d, {"rec@r.c:0", 900, 600, 18, 12},
	      {"main@r.c:20", 300, 200, 6, 4});
	cr_expect(d->cumulative);
	mp_diff_free(d);

	d = build(o, n, MP_GROUP_LINE, true, NULL);
	/* r.c:7 and r.c:20 tie: the key descends. */
	CHECK(d, {"rec@r.c:5", 600, 400, 12, 8},
	      {"main@r.c:20", 300, 200, 6, 4}, {"rec@r.c:7", 300, 200, 6, 4});
	mp_diff_free(d);

	d = build(o, n, MP_GROUP_FILE, true, NULL);
	CHECK(d, {"?@r.c:0", 1200, 800, 24, 16});
	mp_diff_free(d);

	/* Not cumulative: the innermost frame only. */
	d = build(o, n, MP_GROUP_FUNCTION, false, NULL);
	CHECK(d, {"rec@r.c:5", 300, 200, 6, 4});
	mp_diff_free(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

Test(diff, cumulative_refused_for_traceback_and_module)
{
	struct mp_snapshot *o = fx_rec(0x1000, 100, 2);
	struct mp_snapshot *n = fx_rec(0x8000, 300, 6);
	struct mp_diff *d = NULL;
	struct mp_diff_opts opts = {.by = MP_GROUP_TRACEBACK,
				    .cumulative = true};

	cr_expect_eq(mp_diff_build(o, n, &opts, &d), MP_ERR_USAGE);
	opts.by = MP_GROUP_MODULE;
	cr_expect_eq(mp_diff_build(o, n, &opts, &d), MP_ERR_USAGE);
	opts.by = (enum mp_group_by)42;
	opts.cumulative = false;
	cr_expect_eq(mp_diff_build(o, n, &opts, &d), MP_ERR_USAGE);
	cr_expect_null(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

Test(diff, corrupt_stack_index_fails)
{
	struct mp_snapshot *o = fx_new(), *n = fx_new();
	fx_trace(n, 3, 1, 1);
	struct mp_diff *d = NULL;
	struct mp_diff_opts opts = {.by = MP_GROUP_LINE};
	cr_expect_eq(mp_diff_build(o, n, &opts, &d), MP_ERR_CORRUPT);
	cr_expect_eq(mp_diff_build(n, o, &opts, &d), MP_ERR_CORRUPT);
	cr_expect_null(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

Test(diff, unchanged_groups_listed_and_empty_ones_dropped)
{
	struct mp_snapshot *o = fx_new(), *n = fx_new();
	/* same: unchanged, listed. churn: freed in both, dropped. gone:
	 * freed in NEW, listed with its loss. */
	fx_site(o, 0x100, "same", "s.c", 1, 32, 1);
	fx_site(o, 0x200, "churn", "s.c", 2, 0, 0);
	fx_site(o, 0x300, "gone", "s.c", 3, 64, 2);
	fx_site(n, 0x100, "same", "s.c", 1, 32, 1);
	fx_site(n, 0x200, "churn", "s.c", 2, 0, 0);
	fx_site(n, 0x300, "gone", "s.c", 3, 0, 0);

	struct mp_diff *d = build(o, n, MP_GROUP_LINE, false, NULL);
	CHECK(d, {"gone@s.c:3", 0, -64, 0, -2}, {"same@s.c:1", 32, 0, 1, 0});
	cr_expect(d->entries[0].in_new); /* the trace exists, all freed */
	mp_diff_free(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

Test(diff, empty_stacks_form_one_group_in_both)
{
	struct mp_snapshot *o = fx_new(), *n = fx_new();
	fx_trace(o, fx_stack(o, 0), 8, 1);
	fx_trace(n, fx_stack(n, 0), 24, 3);
	struct mp_diff *d = build(o, n, MP_GROUP_TRACEBACK, false, NULL);
	CHECK(d, {"-", 24, 16, 3, 2});
	mp_diff_free(d);

	struct mp_snapshot *e1 = fx_new(), *e2 = fx_new();
	d = build(e1, e2, MP_GROUP_LINE, false, NULL);
	cr_expect_eq(d->nentries, 0);
	mp_diff_free(d);
	mp_snapshot_free(e1);
	mp_snapshot_free(e2);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}

Test(diff, filters_apply_to_both_snapshots)
{
	struct mp_snapshot *o =
		fx_run(OBASE_DEMO, OBASE_FOO, "/usr/lib/libfoo.so", false);
	struct mp_snapshot *n =
		fx_run(NBASE_DEMO, NBASE_FOO, "/opt/foo/libfoo.so", true);
	struct mp_frame_filter ex_foo[] = {{false, "libfoo.so"}};
	struct mp_filters flt = {ex_foo, 1, false};

	struct mp_diff *d = build(o, n, MP_GROUP_LINE, false, &flt);
	CHECK(d, {"grow@/src/demo.c:42", 45056, 40960, 11, 10},
	      {"keep@/src/demo.c:50", 64, 0, 1, 0});
	cr_expect(d->filtered);
	/* Totals stay the snapshots'. */
	cr_expect_eq(d->old_totals.live_bytes, o->meta.totals.live_bytes);
	mp_diff_free(d);

	/* Include main: with all frames every stack passes, innermost
	 * only none does. */
	struct mp_frame_filter in_main[] = {{true, "main"}};
	struct mp_filters f2 = {in_main, 1, true};
	d = build(o, n, MP_GROUP_FUNCTION, false, &f2);
	cr_expect_eq(d->nentries, 4); /* main is in every stack */
	mp_diff_free(d);
	f2.all_frames = false;
	d = build(o, n, MP_GROUP_FUNCTION, false, &f2);
	cr_expect_eq(d->nentries, 0); /* never the innermost frame */
	mp_diff_free(d);
	mp_snapshot_free(o);
	mp_snapshot_free(n);
}
