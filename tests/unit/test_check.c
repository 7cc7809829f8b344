/*
 * test_check.c - the budgets of `memprof check` (mp_check_run) on
 * snapshots built by hand in memory: each budget held and violated, at
 * the exact figure and worst call site, limits inclusive, and the usage
 * errors.
 *
 * The leak fixture is the README's example: make_buffer (demo.c:30) drops
 * a 4096-byte buffer, make_node (demo.c:10) drops a 64-byte node holding a
 * 48-byte one: 4,208 bytes definitely or indirectly lost in 3 blocks.
 * Besides, cache_put (cache.c:7) has 100 bytes possibly lost (an interior
 * pointer from a root) and 32 bytes still reachable.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memprof_trace.h"
#include "trace/trace_internal.h"

#define CAP 64

enum { T_NODE, T_BUF, T_CACHE, NTRACES };

struct cfx {
	struct mp_snapshot *s;
	size_t capb;
	uint32_t ef[CAP], et[CAP], eflags[CAP];
	size_t ne;
	struct mp_root_ref r[CAP];
	size_t nr;
};

static void cfx_symbol(struct mp_snapshot *s, size_t i, uint64_t pc,
		       uint32_t module, const char *fn, const char *file,
		       uint32_t line)
{
	struct mp_symbol *sym = &s->symbols[i];
	sym->pc = pc;
	sym->module = module;
	sym->nframes = 1;
	sym->frames = mp__alloc(s, sizeof(*sym->frames));
	sym->frames[0].function = mp__strdup(s, fn);
	sym->frames[0].file = file ? mp__strdup(s, file) : NULL;
	sym->frames[0].line = line;
}

/*
 * Three traces [malloc (dropped), site, main] in /home/u/demo, loaded at
 * 0x1000 + shift (another shift is another run under ASLR):
 *   T_NODE  make_node    /src/demo.c:10
 *   T_BUF   make_buffer  /src/demo.c:30
 *   T_CACHE cache_put    /src/cache.c:7
 */
static void cfx_init(struct cfx *f, uint64_t shift)
{
	memset(f, 0, sizeof(*f));
	struct mp_snapshot *s = mp__snapshot_new();
	cr_assert_not_null(s);
	f->s = s;
	s->modules = mp__alloc(s, 2 * sizeof(*s->modules));
	s->modules[0] = (struct mp_module){
		.base = shift, .start = 0x1000 + shift, .end = 0x9000 + shift};
	s->modules[0].path = mp__strdup(s, "/home/u/demo");
	s->modules[1] = (struct mp_module){.base = 0x10000 + shift,
					   .start = 0x10000 + shift,
					   .end = 0x20000 + shift};
	s->modules[1].path = mp__strdup(s, "/usr/lib/libc.so.6");
	s->nmodules = 2;

	s->symbols = mp__alloc(s, 5 * sizeof(*s->symbols));
	cfx_symbol(s, 0, 0x1100 + shift, 0, "make_node", "/src/demo.c", 10);
	cfx_symbol(s, 1, 0x1200 + shift, 0, "make_buffer", "/src/demo.c", 30);
	cfx_symbol(s, 2, 0x1300 + shift, 0, "cache_put", "/src/cache.c", 7);
	cfx_symbol(s, 3, 0x1400 + shift, 0, "main", "/src/demo.c", 50);
	cfx_symbol(s, 4, 0x10010 + shift, 1, "malloc", NULL, 0);
	s->nsymbols = 5;
	s->has_symbols = true;

	static const uint64_t site[NTRACES] = {0x1100, 0x1200, 0x1300};
	s->stacks = mp__alloc(s, NTRACES * sizeof(*s->stacks));
	s->traces = mp__alloc(s, NTRACES * sizeof(*s->traces));
	for (size_t t = 0; t < NTRACES; t++) {
		s->stacks[t].depth = 3;
		s->stacks[t].pcs = mp__alloc(s, 3 * sizeof(uint64_t));
		s->stacks[t].pcs[0] = 0x10010 + shift;
		s->stacks[t].pcs[1] = site[t] + shift;
		s->stacks[t].pcs[2] = 0x1400 + shift;
		s->traces[t].stack = (uint32_t)t;
	}
	s->nstacks = s->ntraces = NTRACES;
	s->blocks = mp__alloc(s, CAP * sizeof(*s->blocks));
	s->has_blocks = true;
}

/* A live block of trace, counted in the trace and the totals. */
static uint32_t cfx_block(struct cfx *f, uint64_t size, uint32_t trace)
{
	struct mp_snapshot *s = f->s;
	cr_assert_lt(s->nblocks, CAP);
	struct mp_block *b = &s->blocks[s->nblocks];
	b->addr = 0x100000 + 0x1000 * s->nblocks;
	b->size = size;
	b->trace = trace;
	s->traces[trace].live_bytes += size;
	s->traces[trace].live_blocks++;
	s->meta.totals.live_bytes += size;
	s->meta.totals.live_blocks++;
	return (uint32_t)s->nblocks++;
}

static void cfx_edge(struct cfx *f, uint32_t from, uint32_t to, uint32_t flags)
{
	cr_assert_lt(f->ne, CAP);
	f->ef[f->ne] = from;
	f->et[f->ne] = to;
	f->eflags[f->ne++] = flags;
}

static void cfx_root(struct cfx *f, uint32_t block, uint8_t start,
		     uint8_t interior)
{
	cr_assert_lt(f->nr, CAP);
	f->r[f->nr++] = (struct mp_root_ref){block, start, interior};
}

/* Lays out the graph as the reader does. Edges must be added sorted by
 * (from, to) and roots by block. */
static void cfx_graph(struct cfx *f)
{
	struct mp_snapshot *s = f->s;
	struct mp_graph *g = &s->graph;
	g->edge_start = mp__alloc(s, (s->nblocks + 1) * sizeof(uint64_t));
	g->edges = mp__alloc(s, (f->ne ? f->ne : 1) * sizeof(*g->edges));
	for (size_t k = 0; k < f->ne; k++) {
		g->edge_start[f->ef[k] + 1]++;
		g->edges[k].to = f->et[k];
		g->edges[k].flags = f->eflags[k];
	}
	for (size_t i = 0; i < s->nblocks; i++)
		g->edge_start[i + 1] += g->edge_start[i];
	g->nedges = f->ne;
	g->roots = mp__alloc(s, (f->nr ? f->nr : 1) * sizeof(*g->roots));
	memcpy(g->roots, f->r, f->nr * sizeof(*f->r));
	g->nroots = f->nr;
	g->threads = 1;
	s->has_graph = true;
}

/* The README's leaks, plus a possible and a reachable block. */
static void cfx_leaks(struct cfx *f)
{
	cfx_init(f, 0);
	uint32_t buf = cfx_block(f, 4096, T_BUF);
	uint32_t node = cfx_block(f, 64, T_NODE);
	uint32_t child = cfx_block(f, 48, T_NODE);
	uint32_t poss = cfx_block(f, 100, T_CACHE);
	uint32_t reach = cfx_block(f, 32, T_CACHE);
	(void)buf;
	cfx_edge(f, node, child, 0);
	cfx_root(f, poss, 0, MP_ROOT_DATA);
	cfx_root(f, reach, MP_ROOT_DATA, 0);
	cfx_graph(f);
}

/* A 2-block cycle of make_node (2 x 40 B) and a 24-byte self-loop of
 * cache_put, nothing else. */
static void cfx_cycles(struct cfx *f)
{
	cfx_init(f, 0);
	uint32_t a = cfx_block(f, 40, T_NODE), b = cfx_block(f, 40, T_NODE);
	uint32_t c = cfx_block(f, 24, T_CACHE);
	cfx_edge(f, a, b, 0);
	cfx_edge(f, b, a, 0);
	cfx_edge(f, c, c, 0);
	cfx_graph(f);
}

static struct mp_check_report run(const struct mp_snapshot *s,
				  const struct mp_snapshot *base,
				  const struct mp_check_opts *o)
{
	struct mp_check_report rep;
	memset(&rep, 0xa5, sizeof(rep));
	enum mp_err err = mp_check_run(s, base, o, &rep);
	cr_assert_eq(err, MP_OK, "mp_check_run: %s", mp_strerror(err));
	return rep;
}

static void expect_site(const struct mp_check_result *r, const char *fn,
			uint32_t line)
{
	cr_assert(r->has_site, "%s: no site", mp_check_budget_name(r->budget));
	cr_expect_str_eq(r->site.function, fn);
	cr_expect_eq(r->site.line, line, "%s line %u",
		     mp_check_budget_name(r->budget), r->site.line);
	cr_expect_str_eq(r->site.module, "/home/u/demo");
}

#define BIT(b) (1u << (b))

/* ---- leaked bytes and blocks ---------------------------------------- */

Test(check, max_leaked_counts_definite_and_indirect)
{
	struct cfx f;
	cfx_leaks(&f);
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_LEAKED),
				  .max_leaked = 0,
				  .leak_kinds = MP_CHECK_DEFAULT_KINDS};
	struct mp_check_report rep = run(f.s, NULL, &o);
	cr_assert_eq(rep.nresults, 1);
	const struct mp_check_result *r = &rep.results[0];
	cr_expect_eq(r->budget, MP_CHECK_MAX_LEAKED);
	cr_expect_eq(r->measured, 4208);
	cr_expect_eq(r->bytes, 4208);
	cr_expect_eq(r->blocks, 3);
	cr_expect_eq(r->limit, 0);
	cr_expect_not(r->ok);
	cr_expect_not(rep.ok);
	expect_site(r, "make_buffer", 30);
	cr_expect_str_eq(r->site.file, "/src/demo.c");
	cr_expect_eq(r->site_bytes, 4096);
	cr_expect_eq(r->site_blocks, 1);
	cr_expect_eq(r->site_kind, MP_LEAK_DEFINITE);
	mp_snapshot_free(f.s);
}

Test(check, limits_are_inclusive)
{
	struct cfx f;
	cfx_leaks(&f);
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_LEAKED),
				  .max_leaked = 4208,
				  .leak_kinds = MP_CHECK_DEFAULT_KINDS};
	struct mp_check_report rep = run(f.s, NULL, &o);
	cr_expect(rep.results[0].ok);
	cr_expect(rep.ok);
	o.max_leaked = 4207;
	rep = run(f.s, NULL, &o);
	cr_expect_not(rep.results[0].ok);
	mp_snapshot_free(f.s);
}

Test(check, leak_kinds_choose_what_counts)
{
	struct cfx f;
	cfx_leaks(&f);
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_LEAKED),
				  .max_leaked = 4208};
	o.leak_kinds = MP_CHECK_DEFAULT_KINDS | BIT(MP_LEAK_POSSIBLE);
	struct mp_check_report rep = run(f.s, NULL, &o);
	cr_expect_eq(rep.results[0].measured, 4308);
	cr_expect_eq(rep.results[0].blocks, 4);
	cr_expect_not(rep.results[0].ok);
	o.leak_kinds = BIT(MP_LEAK_DEFINITE);
	rep = run(f.s, NULL, &o);
	cr_expect_eq(rep.results[0].measured, 4160);
	cr_expect(rep.results[0].ok);
	o.leak_kinds = BIT(MP_LEAK_REACHABLE);
	rep = run(f.s, NULL, &o);
	cr_expect_eq(rep.results[0].measured, 32);
	expect_site(&rep.results[0], "cache_put", 7);
	o.leak_kinds = 0;
	o.max_leaked = 0;
	rep = run(f.s, NULL, &o);
	cr_expect_eq(rep.results[0].measured, 0);
	cr_expect_not(rep.results[0].has_site);
	cr_expect(rep.ok);
	mp_snapshot_free(f.s);
}

Test(check, max_leaked_blocks_names_the_site_with_most_blocks)
{
	struct cfx f;
	cfx_leaks(&f);
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_LEAKED_BLOCKS),
				  .max_leaked_blocks = 2,
				  .leak_kinds = MP_CHECK_DEFAULT_KINDS};
	struct mp_check_report rep = run(f.s, NULL, &o);
	const struct mp_check_result *r = &rep.results[0];
	cr_expect_eq(r->budget, MP_CHECK_MAX_LEAKED_BLOCKS);
	cr_expect_eq(r->measured, 3);
	cr_expect_eq(r->bytes, 4208);
	cr_expect_not(r->ok);
	/* Every record holds one block: the biggest of them wins. */
	expect_site(r, "make_buffer", 30);
	o.max_leaked_blocks = 3;
	rep = run(f.s, NULL, &o);
	cr_expect(rep.results[0].ok);
	mp_snapshot_free(f.s);
}

Test(check, suppressions_take_blocks_out_of_the_figures)
{
	struct cfx f;
	cfx_leaks(&f);
	struct mp_suppressions *supp = NULL;
	const char *text = "leak:make_buffer\n";
	cr_assert_eq(mp_suppressions_parse(text, strlen(text), &supp, NULL),
		     MP_OK);
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_LEAKED) |
					     BIT(MP_CHECK_MAX_SITE_LEAK),
				  .max_leaked = 112,
				  .max_site_leak = 64,
				  .leak_kinds = MP_CHECK_DEFAULT_KINDS,
				  .supp = supp};
	struct mp_check_report rep = run(f.s, NULL, &o);
	cr_expect_eq(rep.results[0].measured, 112);
	cr_expect(rep.results[0].ok);
	cr_expect_eq(rep.results[1].measured, 64);
	expect_site(&rep.results[1], "make_node", 10);
	cr_expect(rep.ok);
	mp_suppressions_free(supp);
	mp_snapshot_free(f.s);
}

/* ---- cycles and the biggest single site ------------------------------ */

Test(check, no_leaked_cycles_counts_and_names_the_biggest)
{
	struct cfx f;
	cfx_cycles(&f);
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_NO_LEAKED_CYCLES),
				  .leak_kinds = MP_CHECK_DEFAULT_KINDS};
	struct mp_check_report rep = run(f.s, NULL, &o);
	const struct mp_check_result *r = &rep.results[0];
	cr_expect_eq(r->measured, 2);
	cr_expect_eq(r->limit, 0);
	cr_expect_eq(r->bytes, 104);
	cr_expect_eq(r->blocks, 3);
	cr_expect_not(r->ok);
	expect_site(r, "make_node", 10);
	cr_expect_eq(r->site_bytes, 80);
	cr_expect_eq(r->site_blocks, 2);
	mp_snapshot_free(f.s);

	cfx_leaks(&f);
	rep = run(f.s, NULL, &o);
	cr_expect_eq(rep.results[0].measured, 0);
	cr_expect(rep.results[0].ok);
	cr_expect_not(rep.results[0].has_site);
	mp_snapshot_free(f.s);
}

Test(check, max_site_leak_is_the_biggest_loss_record)
{
	struct cfx f;
	cfx_leaks(&f);
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_SITE_LEAK),
				  .max_site_leak = 4095,
				  .leak_kinds = MP_CHECK_DEFAULT_KINDS};
	struct mp_check_report rep = run(f.s, NULL, &o);
	const struct mp_check_result *r = &rep.results[0];
	cr_expect_eq(r->measured, 4096);
	cr_expect_eq(r->blocks, 1);
	cr_expect_not(r->ok);
	expect_site(r, "make_buffer", 30);
	o.max_site_leak = 4096;
	rep = run(f.s, NULL, &o);
	cr_expect(rep.results[0].ok);
	/* One record, one kind: make_node's definite 64 and indirect 48
	 * are two sites of a budget that counts records. */
	o.leak_kinds = BIT(MP_LEAK_INDIRECT) | BIT(MP_LEAK_POSSIBLE);
	o.max_site_leak = 99;
	rep = run(f.s, NULL, &o);
	cr_expect_eq(rep.results[0].measured, 100);
	cr_expect_eq(rep.results[0].site_kind, MP_LEAK_POSSIBLE);
	expect_site(&rep.results[0], "cache_put", 7);
	cr_expect_not(rep.results[0].ok);
	mp_snapshot_free(f.s);
}

/* ---- peak -------------------------------------------------------------- */

Test(check, max_peak_names_the_site_holding_most_at_the_peak)
{
	struct cfx f;
	cfx_init(&f, 0);
	cfx_block(&f, 1000, T_NODE);
	f.s->meta.totals.peak_bytes = 9000;
	f.s->traces[T_NODE].peak_bytes = 1000;
	f.s->traces[T_BUF].peak_bytes = 8000; /* freed since */
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_PEAK),
				  .max_peak = 8999};
	/* No graph needed for the peak. */
	struct mp_check_report rep = run(f.s, NULL, &o);
	const struct mp_check_result *r = &rep.results[0];
	cr_expect_eq(r->measured, 9000);
	cr_expect_not(r->ok);
	expect_site(r, "make_buffer", 30);
	cr_expect_eq(r->site_bytes, 8000);
	o.max_peak = 9000;
	rep = run(f.s, NULL, &o);
	cr_expect(rep.results[0].ok);
	mp_snapshot_free(f.s);
}

/* ---- growth against a baseline ---------------------------------------- */

/*
 * OLD: make_buffer 4096, make_node 1000 (total 5096 live, peak 6000).
 * NEW, another load address: make_buffer 8192 (+4096), make_node 500
 * (-500), cache_put 3000 (new, +3000): total 11692, +6596.
 */
static void growth_pair(struct cfx *old_f, struct cfx *new_f)
{
	cfx_init(old_f, 0);
	cfx_block(old_f, 4096, T_BUF);
	cfx_block(old_f, 1000, T_NODE);
	old_f->s->meta.totals.peak_bytes = 6000;
	old_f->s->traces[T_BUF].peak_bytes = 4096;
	old_f->s->traces[T_NODE].peak_bytes = 1904;
	cfx_init(new_f, 0x5500000);
	cfx_block(new_f, 4096, T_BUF);
	cfx_block(new_f, 4096, T_BUF);
	cfx_block(new_f, 500, T_NODE);
	cfx_block(new_f, 3000, T_CACHE);
	new_f->s->meta.totals.peak_bytes = 20000;
	new_f->s->traces[T_BUF].peak_bytes = 4096;
	new_f->s->traces[T_NODE].peak_bytes = 1904;
	new_f->s->traces[T_CACHE].peak_bytes = 14000;
}

Test(check, max_growth_is_the_biggest_growth_of_one_site)
{
	struct cfx a, b;
	growth_pair(&a, &b);
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_GROWTH),
				  .max_growth = 4095};
	struct mp_check_report rep = run(b.s, a.s, &o);
	const struct mp_check_result *r = &rep.results[0];
	cr_expect_eq(r->measured, 4096); /* not the total's 6596 */
	cr_expect_eq(r->limit, 4095);
	cr_expect_eq(r->base_bytes, 5096);
	cr_expect_eq(r->bytes, 11692);
	cr_expect_not(r->ok);
	/* Matched by symbols across the two load addresses. */
	expect_site(r, "make_buffer", 30);
	cr_expect_eq(r->site_old_bytes, 4096);
	cr_expect_eq(r->site_bytes, 8192);
	cr_expect_eq(r->site_blocks, 2);
	o.max_growth = 4096;
	rep = run(b.s, a.s, &o);
	cr_expect(rep.results[0].ok);
	mp_snapshot_free(a.s);
	mp_snapshot_free(b.s);
}

Test(check, max_growth_percent_is_of_the_baselines_total)
{
	struct cfx a, b;
	growth_pair(&a, &b);
	/* 4096 of 5096 is 80.4%. */
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_GROWTH),
				  .growth_is_percent = true,
				  .max_growth_percent = 80};
	struct mp_check_report rep = run(b.s, a.s, &o);
	cr_expect_eq(rep.results[0].limit, 4076); /* floor(0.8 * 5096) */
	cr_expect_not(rep.results[0].ok);
	o.max_growth_percent = 81;
	rep = run(b.s, a.s, &o);
	cr_expect_eq(rep.results[0].limit, 4127);
	cr_expect(rep.results[0].ok);
	mp_snapshot_free(a.s);
	mp_snapshot_free(b.s);
}

Test(check, max_growth_of_peak_compares_bytes_at_the_peak)
{
	struct cfx a, b;
	growth_pair(&a, &b);
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_GROWTH),
				  .growth_of = MP_GROWTH_PEAK,
				  .growth_is_percent = true,
				  .max_growth_percent = 200};
	struct mp_check_report rep = run(b.s, a.s, &o);
	const struct mp_check_result *r = &rep.results[0];
	cr_expect_eq(r->measured, 14000);
	cr_expect_eq(r->base_bytes, 6000);
	cr_expect_eq(r->bytes, 20000);
	cr_expect_eq(r->limit, 12000);
	cr_expect_not(r->ok);
	expect_site(r, "cache_put", 7);
	cr_expect_eq(r->site_old_bytes, 0);
	cr_expect_eq(r->site_bytes, 14000);
	/* The snapshots themselves are left as they were. */
	cr_expect_eq(b.s->traces[T_CACHE].live_bytes, 3000);
	mp_snapshot_free(a.s);
	mp_snapshot_free(b.s);
}

Test(check, nothing_grew_measures_zero)
{
	struct cfx a, b;
	growth_pair(&a, &b);
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_GROWTH),
				  .max_growth = 0};
	/* NEW against itself as the baseline. */
	struct mp_check_report rep = run(b.s, b.s, &o);
	cr_expect_eq(rep.results[0].measured, 0);
	cr_expect_not(rep.results[0].has_site);
	cr_expect(rep.results[0].ok);
	/* OLD against NEW: everything but make_node shrank. */
	rep = run(a.s, b.s, &o);
	cr_expect_eq(rep.results[0].measured, 500);
	expect_site(&rep.results[0], "make_node", 10);
	mp_snapshot_free(a.s);
	mp_snapshot_free(b.s);
}

/* ---- several budgets, errors ------------------------------------------- */

Test(check, results_follow_the_budget_order)
{
	struct cfx f;
	cfx_leaks(&f);
	f.s->meta.totals.peak_bytes = 4340;
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_PEAK) |
					     BIT(MP_CHECK_MAX_LEAKED) |
					     BIT(MP_CHECK_NO_LEAKED_CYCLES),
				  .max_leaked = 10000,
				  .max_peak = 1000,
				  .leak_kinds = MP_CHECK_DEFAULT_KINDS};
	struct mp_check_report rep = run(f.s, NULL, &o);
	cr_assert_eq(rep.nresults, 3);
	cr_expect_eq(rep.results[0].budget, MP_CHECK_MAX_LEAKED);
	cr_expect_eq(rep.results[1].budget, MP_CHECK_NO_LEAKED_CYCLES);
	cr_expect_eq(rep.results[2].budget, MP_CHECK_MAX_PEAK);
	cr_expect(rep.results[0].ok);
	cr_expect(rep.results[1].ok);
	cr_expect_not(rep.results[2].ok);
	cr_expect_not(rep.ok);
	o.budgets = 0;
	rep = run(f.s, NULL, &o);
	cr_expect_eq(rep.nresults, 0);
	cr_expect(rep.ok);
	mp_snapshot_free(f.s);
}

Test(check, usage_errors_leave_the_report_alone)
{
	struct cfx f;
	cfx_init(&f, 0);
	cfx_block(&f, 10, T_NODE);
	struct mp_check_report rep;
	memset(&rep, 0x5a, sizeof(rep));
	struct mp_check_opts o = {.budgets = BIT(MP_CHECK_MAX_LEAKED),
				  .leak_kinds = MP_CHECK_DEFAULT_KINDS};
	/* No graph (--leak-check=no): leak budgets cannot be measured... */
	cr_expect_eq(mp_check_run(f.s, NULL, &o, &rep), MP_ERR_USAGE);
	o.budgets = BIT(MP_CHECK_NO_LEAKED_CYCLES);
	cr_expect_eq(mp_check_run(f.s, NULL, &o, &rep), MP_ERR_USAGE);
	o.budgets = BIT(MP_CHECK_MAX_SITE_LEAK);
	cr_expect_eq(mp_check_run(f.s, NULL, &o, &rep), MP_ERR_USAGE);
	o.budgets = BIT(MP_CHECK_MAX_LEAKED_BLOCKS);
	cr_expect_eq(mp_check_run(f.s, NULL, &o, &rep), MP_ERR_USAGE);
	/* ...growth needs a baseline, and budgets must exist... */
	o.budgets = BIT(MP_CHECK_MAX_GROWTH);
	cr_expect_eq(mp_check_run(f.s, NULL, &o, &rep), MP_ERR_USAGE);
	o.growth_is_percent = true;
	o.max_growth_percent = -1;
	cr_expect_eq(mp_check_run(f.s, f.s, &o, &rep), MP_ERR_USAGE);
	o.max_growth_percent = NAN;
	cr_expect_eq(mp_check_run(f.s, f.s, &o, &rep), MP_ERR_USAGE);
	o.max_growth_percent = 10;
	o.growth_of = (enum mp_growth_of)7;
	cr_expect_eq(mp_check_run(f.s, f.s, &o, &rep), MP_ERR_USAGE);
	o.budgets = BIT(MP_CHECK_NBUDGETS);
	cr_expect_eq(mp_check_run(f.s, NULL, &o, &rep), MP_ERR_USAGE);
	struct mp_check_report untouched;
	memset(&untouched, 0x5a, sizeof(untouched));
	cr_expect_eq(memcmp(&rep, &untouched, sizeof(rep)), 0);
	/* ...but the peak is fine without a graph. */
	o.budgets = BIT(MP_CHECK_MAX_PEAK);
	cr_expect_eq(mp_check_run(f.s, NULL, &o, &rep), MP_OK);
	mp_snapshot_free(f.s);
}

Test(check, budget_names_are_the_options)
{
	cr_expect_str_eq(mp_check_budget_name(MP_CHECK_MAX_LEAKED),
			 "max-leaked");
	cr_expect_str_eq(mp_check_budget_name(MP_CHECK_MAX_LEAKED_BLOCKS),
			 "max-leaked-blocks");
	cr_expect_str_eq(mp_check_budget_name(MP_CHECK_NO_LEAKED_CYCLES),
			 "no-leaked-cycles");
	cr_expect_str_eq(mp_check_budget_name(MP_CHECK_MAX_SITE_LEAK),
			 "max-site-leak");
	cr_expect_str_eq(mp_check_budget_name(MP_CHECK_MAX_PEAK), "max-peak");
	cr_expect_str_eq(mp_check_budget_name(MP_CHECK_MAX_GROWTH),
			 "max-growth");
	cr_expect_str_eq(mp_check_budget_name(MP_CHECK_NBUDGETS), "unknown");
}
