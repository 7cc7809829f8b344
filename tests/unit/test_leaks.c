/*
 * test_leaks.c - leak kinds, leaked cycles, retained sizes, loss records
 * and suppressions, on heap graphs built by hand in memory.
 *
 * Blocks are numbered in address order (block i at 0x100000 + 0x100 i);
 * edges and roots are given by block number. The expected kinds follow
 * Memcheck's nine pointer-chain cases (reference §2.2) with interior
 * pointers that no heuristic accepts.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memprof_trace.h"
#include "testutil.h"
#include "trace/trace_internal.h"

#define S MP_ROOT_STACK
#define I MP_EDGE_INTERIOR

enum { T_NODE, T_BUF, T_FOO, T_CACHE, NTRACES };

struct lfx {
	struct mp_snapshot *s;
	size_t capb;
	struct {
		uint32_t from, to, flags;
	} * e;
	size_t ne, cape;
	struct mp_root_ref *r;
	size_t nr, capr;
	struct mp_leak_report *rep;
};

static void lfx_symbol(struct mp_snapshot *s, size_t i, uint64_t pc,
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
 * Four traces, each [malloc (dropped), site, main]:
 *   T_NODE  make_node  /src/demo.c:10   /home/u/demo
 *   T_BUF   make_buf   /src/demo.c:20   /home/u/demo
 *   T_FOO   foo_alloc  foo.c:5          /usr/lib/libfoo.so
 *   T_CACHE cache_put  /src/cache.c:7   /home/u/demo
 */
static void lfx_init(struct lfx *f)
{
	memset(f, 0, sizeof(*f));
	struct mp_snapshot *s = mp__snapshot_new();
	cr_assert_not_null(s);
	f->s = s;
	s->modules = mp__alloc(s, 3 * sizeof(*s->modules));
	s->modules[0] = (struct mp_module){.start = 0x1000, .end = 0x9000};
	s->modules[0].path = mp__strdup(s, "/home/u/demo");
	s->modules[1] = (struct mp_module){.start = 0x10000, .end = 0x20000};
	s->modules[1].path = mp__strdup(s, "/usr/lib/libc.so.6");
	s->modules[2] = (struct mp_module){.start = 0x70000, .end = 0x80000};
	s->modules[2].path = mp__strdup(s, "/usr/lib/libfoo.so");
	s->nmodules = 3;

	s->symbols = mp__alloc(s, 7 * sizeof(*s->symbols));
	lfx_symbol(s, 0, 0x1100, 0, "make_node", "/src/demo.c", 10);
	lfx_symbol(s, 1, 0x1200, 0, "make_buf", "/src/demo.c", 20);
	lfx_symbol(s, 2, 0x1300, 0, "cache_put", "/src/cache.c", 7);
	lfx_symbol(s, 3, 0x1400, 0, "main", "/src/demo.c", 50);
	lfx_symbol(s, 4, 0x10010, 1, "malloc", NULL, 0);
	lfx_symbol(s, 5, 0x70100, 2, "foo_alloc", "foo.c", 5);
	s->nsymbols = 6;
	s->has_symbols = true;

	static const uint64_t site[NTRACES] = {0x1100, 0x1200, 0x70100, 0x1300};
	s->stacks = mp__alloc(s, NTRACES * sizeof(*s->stacks));
	s->traces = mp__alloc(s, NTRACES * sizeof(*s->traces));
	for (size_t t = 0; t < NTRACES; t++) {
		s->stacks[t].depth = 3;
		s->stacks[t].pcs = mp__alloc(s, 3 * sizeof(uint64_t));
		s->stacks[t].pcs[0] = 0x10010;
		s->stacks[t].pcs[1] = site[t];
		s->stacks[t].pcs[2] = 0x1400;
		s->traces[t].stack = (uint32_t)t;
	}
	s->nstacks = s->ntraces = NTRACES;
	s->has_blocks = true;
	s->has_graph = true;
}

static uint32_t lfx_block(struct lfx *f, uint64_t size, uint32_t trace)
{
	struct mp_snapshot *s = f->s;
	if (s->nblocks == f->capb) {
		f->capb = f->capb ? f->capb * 2 : 16;
		struct mp_block *nb = mp__alloc(s, f->capb * sizeof(*nb));
		cr_assert_not_null(nb);
		if (s->nblocks)
			memcpy(nb, s->blocks, s->nblocks * sizeof(*nb));
		s->blocks = nb;
	}
	struct mp_block *b = &s->blocks[s->nblocks];
	b->addr = 0x100000 + 0x100 * s->nblocks;
	b->size = size;
	b->trace = trace;
	s->traces[trace].live_bytes += size;
	s->traces[trace].live_blocks++;
	return (uint32_t)s->nblocks++;
}

static void lfx_blocks(struct lfx *f, size_t n, uint64_t size, uint32_t trace)
{
	for (size_t i = 0; i < n; i++)
		lfx_block(f, size, trace);
}

/*
 * A new trace [malloc (dropped), pc, main]. pc symbolizes to fn at
 * file:line, or to nothing when fn is NULL (a frame known by its address
 * only). Returns the trace's number.
 */
static uint32_t lfx_site(struct lfx *f, uint64_t pc, const char *fn,
			 const char *file, uint32_t line)
{
	struct mp_snapshot *s = f->s;
	if (fn) {
		size_t n = s->nsymbols, at = 0;
		struct mp_symbol *ns = mp__alloc(s, (n + 1) * sizeof(*ns));
		cr_assert_not_null(ns);
		while (at < n && s->symbols[at].pc < pc)
			at++;
		memcpy(ns, s->symbols, at * sizeof(*ns));
		memcpy(ns + at + 1, s->symbols + at, (n - at) * sizeof(*ns));
		s->symbols = ns;
		s->nsymbols = n + 1;
		lfx_symbol(s, at, pc, 0, fn, file, line);
	}
	size_t t = s->ntraces;
	struct mp_stack *nst = mp__alloc(s, (t + 1) * sizeof(*nst));
	struct mp_trace *ntr = mp__alloc(s, (t + 1) * sizeof(*ntr));
	cr_assert(nst && ntr);
	memcpy(nst, s->stacks, t * sizeof(*nst));
	memcpy(ntr, s->traces, t * sizeof(*ntr));
	nst[t].depth = 3;
	nst[t].pcs = mp__alloc(s, 3 * sizeof(uint64_t));
	nst[t].pcs[0] = 0x10010;
	nst[t].pcs[1] = pc;
	nst[t].pcs[2] = 0x1400;
	ntr[t].stack = (uint32_t)t;
	s->stacks = nst;
	s->traces = ntr;
	s->nstacks = s->ntraces = t + 1;
	return (uint32_t)t;
}

static void lfx_edge(struct lfx *f, uint32_t from, uint32_t to, uint32_t flags)
{
	if (f->ne == f->cape) {
		f->cape = f->cape ? f->cape * 2 : 16;
		f->e = realloc(f->e, f->cape * sizeof(*f->e));
		cr_assert_not_null(f->e);
	}
	f->e[f->ne].from = from;
	f->e[f->ne].to = to;
	f->e[f->ne].flags = flags;
	f->ne++;
}

static void lfx_root(struct lfx *f, uint32_t block, uint8_t start,
		     uint8_t interior)
{
	if (f->nr == f->capr) {
		f->capr = f->capr ? f->capr * 2 : 16;
		f->r = realloc(f->r, f->capr * sizeof(*f->r));
		cr_assert_not_null(f->r);
	}
	f->r[f->nr++] = (struct mp_root_ref){block, start, interior};
}

static int edge_cmp(const void *pa, const void *pb)
{
	const uint32_t *a = pa, *b = pb; /* from, to first */
	if (a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	return a[1] < b[1] ? -1 : a[1] > b[1];
}

static int root_cmp(const void *pa, const void *pb)
{
	const struct mp_root_ref *a = pa, *b = pb;
	return a->block < b->block ? -1 : a->block > b->block;
}

/* Lays the edges out as the reader does: sorted by source and target. */
static void lfx_graph(struct lfx *f)
{
	struct mp_snapshot *s = f->s;
	struct mp_graph *g = &s->graph;
	if (f->ne)
		qsort(f->e, f->ne, sizeof(*f->e), edge_cmp);
	g->edge_start = mp__alloc(s, (s->nblocks + 1) * sizeof(uint64_t));
	g->edges = mp__alloc(s, (f->ne ? f->ne : 1) * sizeof(*g->edges));
	for (size_t k = 0; k < f->ne; k++) {
		g->edge_start[f->e[k].from + 1]++;
		g->edges[k].to = f->e[k].to;
		g->edges[k].flags = f->e[k].flags;
	}
	for (size_t i = 0; i < s->nblocks; i++)
		g->edge_start[i + 1] += g->edge_start[i];
	g->nedges = f->ne;
	if (f->nr)
		qsort(f->r, f->nr, sizeof(*f->r), root_cmp);
	g->roots = mp__alloc(s, (f->nr ? f->nr : 1) * sizeof(*g->roots));
	if (f->nr)
		memcpy(g->roots, f->r, f->nr * sizeof(*f->r));
	g->nroots = f->nr;
	g->threads = 1;
}

static struct mp_leak_report *lfx_analyze(struct lfx *f,
					  const struct mp_suppressions *supp)
{
	lfx_graph(f);
	struct mp_leak_opts o = {.supp = supp};
	cr_assert_eq(mp_leaks_analyze(f->s, &o, &f->rep), MP_OK);
	cr_assert_not_null(f->rep);
	return f->rep;
}

static void lfx_fini(struct lfx *f)
{
	mp_leak_report_free(f->rep);
	mp_snapshot_free(f->s);
	free(f->e);
	free(f->r);
}

static enum mp_leak_kind K(const struct mp_leak_report *r, uint32_t b)
{
	return (enum mp_leak_kind)r->block_kind[b];
}

#define expect_kind(rep, b, k)                                             \
	cr_expect_eq(K(rep, b), k, "block %u: %s, want %s", (unsigned)(b), \
		     mp_leak_kind_name(K(rep, b)), mp_leak_kind_name(k))

/* ---- Memcheck's nine cases (reference §2.2), "RRR" a root ---------- */

Test(leaks, case1_root_start_pointer_is_reachable)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t b = lfx_block(&f, 16, T_NODE);
	lfx_root(&f, b, S, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, b, MP_LEAK_REACHABLE);
	cr_expect_eq(r->ncycles, 0);
	lfx_fini(&f);
}

Test(leaks, case2_chain_of_start_pointers_is_reachable)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t a = lfx_block(&f, 16, T_NODE), b = lfx_block(&f, 16, T_BUF);
	lfx_root(&f, a, MP_ROOT_DATA, 0);
	lfx_edge(&f, a, b, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, a, MP_LEAK_REACHABLE);
	expect_kind(r, b, MP_LEAK_REACHABLE);
	lfx_fini(&f);
}

Test(leaks, case3_no_pointer_is_definite)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t b = lfx_block(&f, 16, T_NODE);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, b, MP_LEAK_DEFINITE);
	cr_expect_eq(r->ncycles, 0);
	lfx_fini(&f);
}

Test(leaks, case4_pointed_to_by_lost_block_is_indirect)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t a = lfx_block(&f, 16, T_NODE), b = lfx_block(&f, 16, T_BUF);
	lfx_edge(&f, a, b, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, a, MP_LEAK_DEFINITE);
	expect_kind(r, b, MP_LEAK_INDIRECT);
	lfx_fini(&f);
}

Test(leaks, case5_root_interior_pointer_is_possible)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t b = lfx_block(&f, 16, T_NODE);
	lfx_root(&f, b, 0, MP_ROOT_REGS);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, b, MP_LEAK_POSSIBLE);
	lfx_fini(&f);
}

Test(leaks, case6_interior_from_reachable_is_possible)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t a = lfx_block(&f, 16, T_NODE), b = lfx_block(&f, 16, T_BUF);
	lfx_root(&f, a, S, 0);
	lfx_edge(&f, a, b, I);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, a, MP_LEAK_REACHABLE);
	expect_kind(r, b, MP_LEAK_POSSIBLE);
	lfx_fini(&f);
}

Test(leaks, case7_start_pointer_from_possible_is_possible)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t a = lfx_block(&f, 16, T_NODE), b = lfx_block(&f, 16, T_BUF);
	lfx_root(&f, a, 0, S);
	lfx_edge(&f, a, b, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, a, MP_LEAK_POSSIBLE);
	expect_kind(r, b, MP_LEAK_POSSIBLE);
	lfx_fini(&f);
}

Test(leaks, case8_interior_chain_is_possible)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t a = lfx_block(&f, 16, T_NODE), b = lfx_block(&f, 16, T_BUF);
	lfx_root(&f, a, 0, MP_ROOT_TLS);
	lfx_edge(&f, a, b, I);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, a, MP_LEAK_POSSIBLE);
	expect_kind(r, b, MP_LEAK_POSSIBLE);
	lfx_fini(&f);
}

Test(leaks, case9_interior_from_lost_block_is_indirect)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t a = lfx_block(&f, 16, T_NODE), b = lfx_block(&f, 16, T_BUF);
	lfx_edge(&f, a, b, I);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, a, MP_LEAK_DEFINITE);
	expect_kind(r, b, MP_LEAK_INDIRECT);
	lfx_fini(&f);
}

Test(leaks, possible_block_upgraded_by_later_definite_chain)
{
	/* Root -?-> A -> B, and root -> C -> B: B is reachable whatever
	 * order the worklist visits them in; A stays possible. */
	struct lfx f;
	lfx_init(&f);
	uint32_t a = lfx_block(&f, 16, T_NODE), b = lfx_block(&f, 16, T_BUF);
	uint32_t c = lfx_block(&f, 16, T_NODE), d = lfx_block(&f, 16, T_BUF);
	lfx_root(&f, a, 0, S);
	lfx_root(&f, c, S, S);
	lfx_edge(&f, a, b, 0);
	lfx_edge(&f, c, b, 0);
	lfx_edge(&f, b, d, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, a, MP_LEAK_POSSIBLE);
	expect_kind(r, b, MP_LEAK_REACHABLE);
	expect_kind(r, c, MP_LEAK_REACHABLE);
	expect_kind(r, d, MP_LEAK_REACHABLE);
	lfx_fini(&f);
}

/* ---- cycles -------------------------------------------------------- */

Test(leaks, names_two_node_cycle)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t a = lfx_block(&f, 32, T_NODE), b = lfx_block(&f, 48, T_BUF);
	lfx_edge(&f, a, b, 0);
	lfx_edge(&f, b, a, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, a, MP_LEAK_DEFINITE);
	expect_kind(r, b, MP_LEAK_DEFINITE);
	cr_assert_eq(r->ncycles, 1);
	const struct mp_leak_cycle *c = &r->cycles[0];
	cr_expect_eq(c->bytes, 80);
	cr_expect_eq(c->blocks, 2);
	cr_expect(c->is_root);
	cr_expect_eq(c->retained_bytes, 80);
	cr_assert_eq(c->nmembers, 2);
	cr_expect_eq(c->members[0].trace, T_NODE);
	cr_expect_eq(c->members[0].bytes, 32);
	cr_expect_eq(c->members[1].trace, T_BUF);
	cr_expect_eq(c->members[1].bytes, 48);
	cr_assert_eq(c->members[0].nframes, 2);
	cr_expect_str_eq(c->members[0].frames[0].function, "make_node");
	cr_expect_str_eq(c->members[0].frames[1].function, "main");
	cr_expect_eq(r->summary[MP_LEAK_DEFINITE].bytes, 80);
	cr_expect_eq(r->summary[MP_LEAK_DEFINITE].blocks, 2);
	cr_expect_eq(r->summary[MP_LEAK_INDIRECT].blocks, 0);
	lfx_fini(&f);
}

Test(leaks, names_three_node_cycle_in_cycle_order)
{
	/* 0 -> 2 -> 1 -> 0: listed from the lowest address, following the
	 * pointers, not in address order. */
	struct lfx f;
	lfx_init(&f);
	lfx_block(&f, 10, T_NODE);
	lfx_block(&f, 20, T_BUF);
	lfx_block(&f, 30, T_CACHE);
	lfx_edge(&f, 0, 2, 0);
	lfx_edge(&f, 2, 1, 0);
	lfx_edge(&f, 1, 0, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	for (uint32_t b = 0; b < 3; b++)
		expect_kind(r, b, MP_LEAK_DEFINITE);
	cr_assert_eq(r->ncycles, 1);
	const struct mp_leak_cycle *c = &r->cycles[0];
	cr_expect_eq(c->bytes, 60);
	cr_expect_eq(c->blocks, 3);
	cr_assert_eq(c->nmembers, 3);
	cr_expect_eq(c->members[0].bytes, 10);
	cr_expect_eq(c->members[1].bytes, 30);
	cr_expect_eq(c->members[2].bytes, 20);
	lfx_fini(&f);
}

Test(leaks, names_self_loop_as_cycle)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t a = lfx_block(&f, 24, T_NODE), b = lfx_block(&f, 8, T_BUF);
	lfx_edge(&f, a, a, I); /* an interior self-pointer counts too */
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, a, MP_LEAK_DEFINITE);
	expect_kind(r, b, MP_LEAK_DEFINITE);
	cr_assert_eq(r->ncycles, 1);
	cr_expect_eq(r->cycles[0].bytes, 24);
	cr_expect_eq(r->cycles[0].blocks, 1);
	cr_expect_eq(r->cycles[0].nmembers, 1);
	cr_expect(r->cycles[0].is_root);
	lfx_fini(&f);
}

Test(leaks, cycle_below_definite_block_is_indirect_and_listed)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t d = lfx_block(&f, 100, T_BUF);
	uint32_t a = lfx_block(&f, 10, T_NODE), b = lfx_block(&f, 20, T_NODE);
	lfx_edge(&f, d, a, 0);
	lfx_edge(&f, a, b, 0);
	lfx_edge(&f, b, a, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, d, MP_LEAK_DEFINITE);
	expect_kind(r, a, MP_LEAK_INDIRECT);
	expect_kind(r, b, MP_LEAK_INDIRECT);
	cr_assert_eq(r->ncycles, 1);
	cr_expect_not(r->cycles[0].is_root);
	cr_expect_eq(r->cycles[0].bytes, 30);
	cr_expect_eq(r->cycles[0].retained_bytes, 30);
	/* Same trace, consecutive: one run of two blocks. */
	cr_assert_eq(r->cycles[0].nmembers, 1);
	cr_expect_eq(r->cycles[0].members[0].blocks, 2);
	cr_expect_eq(r->cycles[0].members[0].bytes, 30);
	lfx_fini(&f);
}

Test(leaks, cycle_behind_possibly_lost_block_is_not_lost)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t p = lfx_block(&f, 64, T_BUF);
	uint32_t a = lfx_block(&f, 10, T_NODE), b = lfx_block(&f, 20, T_NODE);
	lfx_root(&f, p, 0, S);
	lfx_edge(&f, p, a, 0);
	lfx_edge(&f, a, b, 0);
	lfx_edge(&f, b, a, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	expect_kind(r, p, MP_LEAK_POSSIBLE);
	expect_kind(r, a, MP_LEAK_POSSIBLE);
	expect_kind(r, b, MP_LEAK_POSSIBLE);
	cr_expect_eq(r->ncycles, 0);
	cr_expect_eq(r->summary[MP_LEAK_POSSIBLE].bytes, 94);
	lfx_fini(&f);
}

Test(leaks, cycle_members_in_depth_first_order)
{
	/* One component: 0->1, 0->3, 1->0, 3->2, 2->0. Preorder from 0
	 * along edges sorted by target: 0, 1, 3, 2. */
	struct lfx f;
	lfx_init(&f);
	lfx_block(&f, 1, T_NODE);
	lfx_block(&f, 2, T_BUF);
	lfx_block(&f, 4, T_CACHE);
	lfx_block(&f, 8, T_FOO);
	lfx_edge(&f, 0, 1, 0);
	lfx_edge(&f, 0, 3, 0);
	lfx_edge(&f, 1, 0, 0);
	lfx_edge(&f, 3, 2, 0);
	lfx_edge(&f, 2, 0, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	cr_assert_eq(r->ncycles, 1);
	const struct mp_leak_cycle *c = &r->cycles[0];
	cr_assert_eq(c->nmembers, 4);
	cr_expect_eq(c->members[0].bytes, 1);
	cr_expect_eq(c->members[1].bytes, 2);
	cr_expect_eq(c->members[2].bytes, 8);
	cr_expect_eq(c->members[3].bytes, 4);
	lfx_fini(&f);
}

Test(leaks, merges_consecutive_members_of_one_trace)
{
	/* 0 -> 1 -> 2 -> 3 -> 0 with traces NODE NODE BUF NODE: three runs;
	 * the last does not wrap into the first. */
	struct lfx f;
	lfx_init(&f);
	lfx_block(&f, 10, T_NODE);
	lfx_block(&f, 11, T_NODE);
	lfx_block(&f, 12, T_BUF);
	lfx_block(&f, 13, T_NODE);
	for (uint32_t i = 0; i < 4; i++)
		lfx_edge(&f, i, (i + 1) % 4, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	cr_assert_eq(r->ncycles, 1);
	const struct mp_leak_cycle *c = &r->cycles[0];
	cr_assert_eq(c->nmembers, 3);
	cr_expect_eq(c->members[0].trace, T_NODE);
	cr_expect_eq(c->members[0].blocks, 2);
	cr_expect_eq(c->members[0].bytes, 21);
	cr_expect_eq(c->members[1].trace, T_BUF);
	cr_expect_eq(c->members[1].blocks, 1);
	cr_expect_eq(c->members[2].trace, T_NODE);
	cr_expect_eq(c->members[2].bytes, 13);
	cr_expect_str_eq(c->members[1].frames[0].function, "make_buf");
	lfx_fini(&f);
}

Test(leaks, cycles_sorted_by_bytes_descending)
{
	struct lfx f;
	lfx_init(&f);
	lfx_block(&f, 5, T_NODE);  /* 0: self loop, 5 B */
	lfx_block(&f, 50, T_NODE); /* 1 <-> 2: 100 B */
	lfx_block(&f, 50, T_NODE);
	lfx_block(&f, 7, T_BUF); /* 3: self loop, 7 B */
	lfx_edge(&f, 0, 0, 0);
	lfx_edge(&f, 1, 2, 0);
	lfx_edge(&f, 2, 1, 0);
	lfx_edge(&f, 3, 3, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	cr_assert_eq(r->ncycles, 3);
	cr_expect_eq(r->cycles[0].bytes, 100);
	cr_expect_eq(r->cycles[1].bytes, 7);
	cr_expect_eq(r->cycles[2].bytes, 5);
	lfx_fini(&f);
}

/* ---- retained sizes ------------------------------------------------ */

static const struct mp_leak_record *find_record(const struct mp_leak_report *r,
						enum mp_leak_kind kind,
						uint32_t trace)
{
	for (size_t i = 0; i < r->nrecords; i++)
		if (r->records[i].kind == kind && r->records[i].trace == trace)
			return &r->records[i];
	cr_assert_fail("no %s record for trace %u", mp_leak_kind_name(kind),
		       trace);
	return NULL;
}

Test(leaks, retained_size_of_lost_tree)
{
	/* D -> A, D -> B, A -> C. */
	struct lfx f;
	lfx_init(&f);
	uint32_t d = lfx_block(&f, 100, T_BUF);
	uint32_t a = lfx_block(&f, 10, T_NODE), b = lfx_block(&f, 20, T_NODE);
	uint32_t c = lfx_block(&f, 5, T_CACHE);
	lfx_edge(&f, d, a, 0);
	lfx_edge(&f, d, b, 0);
	lfx_edge(&f, a, c, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	const struct mp_leak_record *rd =
		find_record(r, MP_LEAK_DEFINITE, T_BUF);
	cr_expect_eq(rd->bytes, 100);
	cr_expect_eq(rd->retained_bytes, 135);
	cr_expect_eq(find_record(r, MP_LEAK_INDIRECT, T_NODE)->retained_bytes,
		     0);
	cr_expect_eq(r->summary[MP_LEAK_DEFINITE].bytes, 100);
	cr_expect_eq(r->summary[MP_LEAK_INDIRECT].bytes, 35);
	cr_expect_eq(r->summary[MP_LEAK_INDIRECT].blocks, 3);
	lfx_fini(&f);
}

Test(leaks, diamond_child_retained_only_by_common_dominator)
{
	/* D -> L, D -> R, L -> S, R -> S; L and R point to themselves so
	 * that they are cycles and show their retained bytes. Then two
	 * definite blocks sharing one child: D1 -> X <- D2. */
	struct lfx f;
	lfx_init(&f);
	uint32_t d = lfx_block(&f, 100, T_BUF);
	uint32_t l = lfx_block(&f, 10, T_NODE), rr = lfx_block(&f, 20, T_NODE);
	uint32_t s = lfx_block(&f, 5, T_CACHE);
	uint32_t d1 = lfx_block(&f, 7, T_FOO), d2 = lfx_block(&f, 9, T_NODE);
	uint32_t x = lfx_block(&f, 3, T_CACHE);
	lfx_edge(&f, d, l, 0);
	lfx_edge(&f, d, rr, 0);
	lfx_edge(&f, l, l, 0);
	lfx_edge(&f, rr, rr, 0);
	lfx_edge(&f, l, s, 0);
	lfx_edge(&f, rr, s, 0);
	lfx_edge(&f, d1, x, 0);
	lfx_edge(&f, d2, x, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	cr_assert_eq(r->ncycles, 2);
	cr_expect_eq(r->cycles[0].bytes, 20);
	cr_expect_eq(r->cycles[0].retained_bytes, 20);
	cr_expect_eq(r->cycles[1].bytes, 10);
	cr_expect_eq(r->cycles[1].retained_bytes, 10);
	cr_expect_not(r->cycles[0].is_root);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_BUF)->retained_bytes,
		     135);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_FOO)->retained_bytes,
		     7);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_NODE)->retained_bytes,
		     9);
	expect_kind(r, x, MP_LEAK_INDIRECT);
	expect_kind(r, s, MP_LEAK_INDIRECT);
	lfx_fini(&f);
}

Test(leaks, chain_with_shortcut_retained_by_dominator)
{
	/* D -> X -> Y -> Z and D -> Z; X is a cycle (self loop): X keeps
	 * Y alive but not Z. */
	struct lfx f;
	lfx_init(&f);
	uint32_t d = lfx_block(&f, 100, T_BUF), x = lfx_block(&f, 10, T_NODE);
	uint32_t y = lfx_block(&f, 20, T_CACHE), z = lfx_block(&f, 40, T_FOO);
	lfx_edge(&f, d, x, 0);
	lfx_edge(&f, x, x, 0);
	lfx_edge(&f, x, y, 0);
	lfx_edge(&f, y, z, 0);
	lfx_edge(&f, d, z, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	cr_assert_eq(r->ncycles, 1);
	cr_expect_eq(r->cycles[0].retained_bytes, 30);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_BUF)->retained_bytes,
		     170);
	lfx_fini(&f);
}

Test(leaks, cycle_retained_counted_once_on_lowest_member)
{
	/* A <-> B, B -> C: A (lowest address) carries C; sums = lost bytes. */
	struct lfx f;
	lfx_init(&f);
	uint32_t a = lfx_block(&f, 10, T_NODE), b = lfx_block(&f, 20, T_BUF);
	uint32_t c = lfx_block(&f, 5, T_CACHE);
	lfx_edge(&f, a, b, 0);
	lfx_edge(&f, b, a, 0);
	lfx_edge(&f, b, c, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_NODE)->retained_bytes,
		     15);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_BUF)->retained_bytes,
		     20);
	cr_expect_eq(r->cycles[0].retained_bytes, 35);
	expect_kind(r, c, MP_LEAK_INDIRECT);
	lfx_fini(&f);
}

/* ---- summary and loss records -------------------------------------- */

/* A mixed heap used by the summary and record tests:
 *   0 NODE 100 reachable (root)      1 NODE 100 reachable (0 -> 1)
 *   2 BUF  40  possible (0 -?-> 2)   3 NODE 100 definite
 *   4 NODE 100 indirect (3 -> 4)     5 BUF  40  definite
 *   6 CACHE 30 definite              7 CACHE 30 definite
 *   8 FOO  100 reachable (root)      9 BUF 50 indirect (5 -> 9) */
static struct mp_leak_report *mixed(struct lfx *f)
{
	lfx_init(f);
	lfx_blocks(f, 2, 100, T_NODE);
	lfx_block(f, 40, T_BUF);
	lfx_blocks(f, 2, 100, T_NODE);
	lfx_block(f, 40, T_BUF);
	lfx_blocks(f, 2, 30, T_CACHE);
	lfx_block(f, 100, T_FOO);
	lfx_block(f, 50, T_BUF);
	lfx_root(f, 0, S, 0);
	lfx_root(f, 8, MP_ROOT_DATA, 0);
	lfx_edge(f, 0, 1, 0);
	lfx_edge(f, 0, 2, I);
	lfx_edge(f, 3, 4, 0);
	lfx_edge(f, 5, 9, 0);
	return lfx_analyze(f, NULL);
}

Test(leaks, summary_sums_bytes_and_blocks_per_kind)
{
	struct lfx f;
	struct mp_leak_report *r = mixed(&f);
	cr_expect_eq(r->summary[MP_LEAK_REACHABLE].bytes, 300);
	cr_expect_eq(r->summary[MP_LEAK_REACHABLE].blocks, 3);
	cr_expect_eq(r->summary[MP_LEAK_POSSIBLE].bytes, 40);
	cr_expect_eq(r->summary[MP_LEAK_POSSIBLE].blocks, 1);
	cr_expect_eq(r->summary[MP_LEAK_DEFINITE].bytes, 200);
	cr_expect_eq(r->summary[MP_LEAK_DEFINITE].blocks, 4);
	cr_expect_eq(r->summary[MP_LEAK_INDIRECT].bytes, 150);
	cr_expect_eq(r->summary[MP_LEAK_INDIRECT].blocks, 2);
	cr_expect_eq(r->summary[MP_LEAK_SUPPRESSED].blocks, 0);
	uint64_t sum[MP_LEAK_NKINDS][2] = {{0}}, retained = 0;
	for (size_t i = 0; i < r->nrecords; i++) {
		sum[r->records[i].kind][0] += r->records[i].bytes;
		sum[r->records[i].kind][1] += r->records[i].blocks;
		retained += r->records[i].retained_bytes;
	}
	for (int k = 0; k < MP_LEAK_NKINDS; k++) {
		cr_expect_eq(sum[k][0], r->summary[k].bytes, "kind %d", k);
		cr_expect_eq(sum[k][1], r->summary[k].blocks, "kind %d", k);
	}
	/* Definite records retain all lost bytes, each counted once. */
	cr_expect_eq(retained, 350);
	lfx_fini(&f);
}

Test(leaks, records_grouped_by_kind_and_trace_biggest_last)
{
	struct lfx f;
	struct mp_leak_report *r = mixed(&f);
	/* Ascending by bytes; equal bytes in Valgrind's state order
	 * (reachable, possible, indirect, definite), so the most serious
	 * of equally big records comes last. */
	static const struct {
		enum mp_leak_kind kind;
		uint32_t trace;
		uint64_t bytes, blocks;
	} want[] = {
		{MP_LEAK_POSSIBLE, T_BUF, 40, 1},
		{MP_LEAK_DEFINITE, T_BUF, 40, 1},
		{MP_LEAK_INDIRECT, T_BUF, 50, 1},
		{MP_LEAK_DEFINITE, T_CACHE, 60, 2},
		{MP_LEAK_REACHABLE, T_FOO, 100, 1},
		{MP_LEAK_INDIRECT, T_NODE, 100, 1},
		{MP_LEAK_DEFINITE, T_NODE, 100, 1},
		{MP_LEAK_REACHABLE, T_NODE, 200, 2},
	};
	cr_assert_eq(r->nrecords, 8);
	for (size_t i = 0; i < 8; i++) {
		const struct mp_leak_record *rec = &r->records[i];
		cr_expect_eq(rec->kind, want[i].kind, "record %zu kind %s", i,
			     mp_leak_kind_name(rec->kind));
		cr_expect_eq(rec->trace, want[i].trace, "record %zu trace", i);
		cr_expect_eq(rec->bytes, want[i].bytes, "record %zu bytes", i);
		cr_expect_eq(rec->blocks, want[i].blocks, "record %zu", i);
		if (rec->kind != MP_LEAK_DEFINITE)
			cr_expect_eq(rec->retained_bytes, 0, "record %zu", i);
	}
	const struct mp_leak_record *big = &r->records[7];
	cr_assert_eq(big->nframes, 2);
	cr_expect_str_eq(big->frames[0].function, "make_node");
	cr_expect_str_eq(big->frames[0].file, "/src/demo.c");
	cr_expect_eq(big->frames[0].line, 10);
	cr_expect_str_eq(big->frames[0].module, "/home/u/demo");
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_BUF)->retained_bytes,
		     90);
	lfx_fini(&f);
}

Test(leaks, alloc_fn_drops_wrapper_frames)
{
	struct lfx f;
	lfx_init(&f);
	lfx_block(&f, 8, T_NODE);
	lfx_graph(&f);
	const char *globs[] = {"make_*"};
	struct mp_leak_opts o = {.alloc = {.globs = globs, .nglobs = 1}};
	cr_assert_eq(mp_leaks_analyze(f.s, &o, &f.rep), MP_OK);
	cr_assert_eq(f.rep->nrecords, 1);
	cr_assert_eq(f.rep->records[0].nframes, 1);
	cr_expect_str_eq(f.rep->records[0].frames[0].function, "main");
	lfx_fini(&f);
}

Test(leaks, records_merge_traces_with_equal_frames)
{
	/* `a = make_node(), b = make_node(), c = make_node();` on one line:
	 * three return addresses, one source location, one record. */
	struct lfx f;
	lfx_init(&f);
	uint32_t t1 = lfx_site(&f, 0x1104, "make_node", "/src/demo.c", 10);
	uint32_t t2 = lfx_site(&f, 0x1108, "make_node", "/src/demo.c", 10);
	lfx_block(&f, 24, t2);
	lfx_block(&f, 24, T_NODE);
	lfx_block(&f, 24, t1);
	lfx_block(&f, 50, T_BUF);
	uint32_t kept = lfx_block(&f, 24, t2);
	lfx_root(&f, kept, S, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	/* Sorted after merging: 24 reachable, 50, then the merged 72. */
	cr_assert_eq(r->nrecords, 3);
	cr_expect_eq(r->records[0].kind, MP_LEAK_REACHABLE);
	cr_expect_eq(r->records[0].trace, t2);
	cr_expect_eq(r->records[0].bytes, 24);
	cr_expect_eq(r->records[1].trace, T_BUF);
	const struct mp_leak_record *m = &r->records[2];
	cr_expect_eq(m->kind, MP_LEAK_DEFINITE);
	cr_expect_eq(m->trace, T_NODE, "lowest trace kept");
	cr_expect_eq(m->bytes, 72);
	cr_expect_eq(m->blocks, 3);
	cr_expect_eq(m->retained_bytes, 72);
	cr_assert_eq(m->nframes, 2);
	cr_expect_str_eq(m->frames[0].function, "make_node");
	cr_expect_eq(m->frames[0].line, 10);
	lfx_fini(&f);
}

Test(leaks, records_of_different_lines_or_addresses_stay_apart)
{
	struct lfx f;
	lfx_init(&f);
	uint32_t t1 = lfx_site(&f, 0x1104, "make_node", "/src/demo.c", 11);
	/* No symbols: frames known by address only, compared by it. */
	uint32_t u1 = lfx_site(&f, 0x1500, NULL, NULL, 0);
	uint32_t u2 = lfx_site(&f, 0x1504, NULL, NULL, 0);
	lfx_block(&f, 24, T_NODE);
	lfx_block(&f, 24, t1);
	lfx_block(&f, 8, u1);
	lfx_block(&f, 8, u2);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	cr_assert_eq(r->nrecords, 4);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_NODE)->blocks, 1);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, t1)->blocks, 1);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, t1)->frames[0].line, 11);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, u1)->bytes, 8);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, u2)->frames[0].address,
		     0x1504);
	lfx_fini(&f);
}

Test(leaks, cycle_members_merge_on_equal_frames)
{
	/* 0 -> 1 -> 2 -> 0, three traces of one source line: one run.
	 * 3 -> 4 -> 3, two lines of one function: two runs. */
	struct lfx f;
	lfx_init(&f);
	uint32_t t1 = lfx_site(&f, 0x1104, "make_node", "/src/demo.c", 10);
	uint32_t t2 = lfx_site(&f, 0x1108, "make_node", "/src/demo.c", 10);
	uint32_t t3 = lfx_site(&f, 0x110c, "make_node", "/src/demo.c", 12);
	lfx_block(&f, 24, t2);
	lfx_block(&f, 24, T_NODE);
	lfx_block(&f, 24, t1);
	lfx_block(&f, 16, T_NODE);
	lfx_block(&f, 16, t3);
	lfx_edge(&f, 0, 1, 0);
	lfx_edge(&f, 1, 2, 0);
	lfx_edge(&f, 2, 0, 0);
	lfx_edge(&f, 3, 4, 0);
	lfx_edge(&f, 4, 3, 0);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	cr_assert_eq(r->ncycles, 2);
	const struct mp_leak_cycle *c = &r->cycles[0];
	cr_expect_eq(c->bytes, 72);
	cr_assert_eq(c->nmembers, 1);
	cr_expect_eq(c->members[0].trace, T_NODE, "lowest trace kept");
	cr_expect_eq(c->members[0].bytes, 72);
	cr_expect_eq(c->members[0].blocks, 3);
	cr_assert_eq(c->members[0].nframes, 2);
	cr_expect_str_eq(c->members[0].frames[0].function, "make_node");
	c = &r->cycles[1];
	cr_expect_eq(c->bytes, 32);
	cr_assert_eq(c->nmembers, 2);
	cr_expect_eq(c->members[0].trace, T_NODE);
	cr_expect_eq(c->members[1].trace, t3);
	cr_expect_eq(c->members[1].frames[0].line, 12);
	/* The records merge the same way. */
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_NODE)->bytes, 88);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, t3)->bytes, 16);
	lfx_fini(&f);
}

Test(leaks, no_graph_is_a_usage_error_and_bad_graph_corrupt)
{
	struct lfx f;
	struct mp_leak_report *r = NULL;
	lfx_init(&f);
	lfx_block(&f, 8, T_NODE);
	lfx_block(&f, 8, T_NODE);
	lfx_edge(&f, 0, 1, 0);
	lfx_graph(&f);
	f.s->has_graph = false;
	cr_expect_eq(mp_leaks_analyze(f.s, NULL, &r), MP_ERR_USAGE);
	cr_expect_null(r, "out touched on error");
	f.s->has_graph = true;
	f.s->graph.edges[0].to = 2;
	cr_expect_eq(mp_leaks_analyze(f.s, NULL, &r), MP_ERR_CORRUPT);
	f.s->graph.edges[0].to = 1;
	f.s->blocks[1].trace = NTRACES;
	cr_expect_eq(mp_leaks_analyze(f.s, NULL, &r), MP_ERR_CORRUPT);
	lfx_fini(&f);
}

Test(leaks, empty_heap_has_empty_report)
{
	struct lfx f;
	lfx_init(&f);
	struct mp_leak_report *r = lfx_analyze(&f, NULL);
	cr_expect_eq(r->nrecords, 0);
	cr_expect_eq(r->ncycles, 0);
	for (int k = 0; k < MP_LEAK_NKINDS; k++)
		cr_expect_eq(r->summary[k].blocks, 0);
	cr_expect_eq(r->threads, 1);
	lfx_fini(&f);
}

/* ---- kinds --------------------------------------------------------- */

Test(leaks, parses_kind_lists)
{
	unsigned m = 99;
	const unsigned D = 1u << MP_LEAK_DEFINITE, In = 1u << MP_LEAK_INDIRECT,
		       P = 1u << MP_LEAK_POSSIBLE, R = 1u << MP_LEAK_REACHABLE,
		       Su = 1u << MP_LEAK_SUPPRESSED;
	cr_expect(mp_leak_kinds_parse("definite,possible", &m));
	cr_expect_eq(m, D | P);
	cr_expect(mp_leak_kinds_parse("all", &m));
	cr_expect_eq(m, D | In | P | R);
	cr_expect(mp_leak_kinds_parse("none", &m));
	cr_expect_eq(m, 0);
	cr_expect(mp_leak_kinds_parse("suppressed,reachable,reachable", &m));
	cr_expect_eq(m, Su | R);
	cr_expect(mp_leak_kinds_parse("all,suppressed", &m));
	cr_expect_eq(m, D | In | P | R | Su);
	m = 77;
	cr_expect_not(mp_leak_kinds_parse("definite,", &m));
	cr_expect_not(mp_leak_kinds_parse("", &m));
	cr_expect_not(mp_leak_kinds_parse(",definite", &m));
	cr_expect_not(mp_leak_kinds_parse("definitely", &m));
	cr_expect_not(mp_leak_kinds_parse("Definite", &m));
	cr_expect_not(mp_leak_kinds_parse("definite, possible", &m));
	cr_expect_eq(m, 77, "mask untouched on failure");
	for (int k = 0; k < MP_LEAK_NKINDS; k++) {
		cr_expect(mp_leak_kinds_parse(
			mp_leak_kind_name((enum mp_leak_kind)k), &m));
		cr_expect_eq(m, 1u << k);
	}
	cr_expect_str_eq(mp_leak_kind_name(MP_LEAK_NKINDS), "?");
}

/* ---- suppressions -------------------------------------------------- */

static struct mp_suppressions *supp(const char *text)
{
	struct mp_suppressions *s = NULL;
	struct mp_errinfo ei = {{0}};
	enum mp_err err = mp_suppressions_parse(text, strlen(text), &s, &ei);
	cr_assert_eq(err, MP_OK, "%s: %s", text, ei.msg);
	return s;
}

static void expect_parse_error(const char *text, const char *msg)
{
	struct mp_suppressions *s = (struct mp_suppressions *)&s;
	struct mp_errinfo ei = {{0}};
	cr_expect_eq(mp_suppressions_parse(text, strlen(text), &s, &ei),
		     MP_ERR_CORRUPT, "%s", text);
	cr_expect_str_eq(ei.msg, msg);
	cr_expect_eq(s, (struct mp_suppressions *)&s);
}

Test(leaks, suppression_syntax_errors_name_the_line)
{
	expect_parse_error("leak:a\n# race:x\nrace:foo\n",
			   "line 3: unknown suppression type 'race'");
	expect_parse_error("\n\nleak:ok\n  make_node\n",
			   "line 4: expected 'leak:PATTERN'");
	expect_parse_error("leak:   \t\n",
			   "line 1: empty pattern after 'leak:'");
	expect_parse_error("Leak:x", "line 1: unknown suppression type 'Leak'");
	expect_parse_error("leak :x",
			   "line 1: unknown suppression type 'leak '");
	expect_parse_error(":x", "line 1: unknown suppression type ''");
}

static bool m1(const char *pattern, const char *fn, const char *file,
	       const char *module)
{
	struct mp_suppressions *s = supp(pattern);
	struct mp_resolved_frame fr = {.function = fn,
				       .file = file,
				       .module = module,
				       .address = 0x1234};
	bool r = mp_suppressions_match(s, &fr, 1);
	mp_suppressions_free(s);
	return r;
}

Test(leaks, suppression_patterns_anchors_and_wildcards)
{
	/* Comments, blank lines, whitespace and CRLF line ends. */
	cr_expect(m1("# c\n\n   leak:  make_node \r\n", "make_node", 0, 0));
	cr_expect(m1("leak:node", "make_node", 0, 0)); /* substring */
	cr_expect(m1("leak:^make", "make_node", 0, 0));
	cr_expect_not(m1("leak:^node", "make_node", 0, 0));
	cr_expect(m1("leak:node$", "make_node", 0, 0));
	cr_expect_not(m1("leak:make$", "make_node", 0, 0));
	cr_expect(m1("leak:^make_node$", "make_node", 0, 0));
	cr_expect_not(m1("leak:^make_node$", "make_nodes", 0, 0));
	cr_expect(m1("leak:m*e_n*e", "make_node", 0, 0));
	cr_expect(m1("leak:^m*e$", "make_node", 0, 0));
	cr_expect_not(m1("leak:^m*x$", "make_node", 0, 0));
	cr_expect(m1("leak:*", "x", 0, 0));
	cr_expect(m1("leak:^a*b$", "abab", 0, 0));	/* backtracks */
	cr_expect_not(m1("leak:^ab*ba$", "aba", 0, 0)); /* no overlap */
	cr_expect(m1("leak:^ab*ba$", "abba", 0, 0));
	cr_expect(m1("leak:a$b", "xa$b", 0, 0)); /* `$` inside: literal */
	cr_expect(m1("leak:operator new(unsigned long)",
		     "operator new(unsigned long)", 0, 0));
	cr_expect_not(m1("leak:make_node", "make_buf", 0, 0));
	cr_expect_not(m1("leak:*", NULL, NULL, NULL)); /* nothing known */
	cr_expect_not(m1("leak:x", "", "", ""));
	cr_expect(m1("leak:nomatch\nleak:buf", "make_buf", 0, 0));
}

Test(leaks, suppression_matches_function_file_or_module)
{
	cr_expect(m1("leak:demo.c", "f", "/src/demo.c", "/bin/x"));
	cr_expect(m1("leak:^demo.c$", "f", "/src/demo.c", "/bin/x"));
	cr_expect(m1("leak:^/src/demo.c$", "f", "/src/demo.c", "/bin/x"));
	cr_expect(m1("leak:^/src/", "f", "/src/demo.c", "/bin/x"));
	cr_expect(m1("leak:^libfoo.so$", "f", NULL, "/usr/lib/libfoo.so"));
	cr_expect(m1("leak:libfoo.so*", "f", NULL, "/usr/lib/libfoo.so.1"));
	cr_expect(m1("leak:^/usr/lib/", NULL, NULL, "/usr/lib/libfoo.so"));
	cr_expect_not(m1("leak:^lib/libfoo", NULL, NULL, "/usr/lib/libfoo.so"));
	cr_expect_not(m1("leak:^f", "g", "/f/demo.c", "/f/x")); /* bases */
	/* Any frame of the stack. */
	struct mp_suppressions *s = supp("leak:^main$");
	struct mp_resolved_frame fr[2] = {{.function = "make_node"},
					  {.function = "main"}};
	cr_expect(mp_suppressions_match(s, fr, 2));
	cr_expect_not(mp_suppressions_match(s, fr, 1));
	cr_expect_not(mp_suppressions_match(NULL, fr, 2));
	mp_suppressions_free(s);
	mp_suppressions_free(NULL);
}

Test(leaks, suppressions_load_appends_files)
{
	char *dir = tu_tmpdir();
	char *p1 = tu_path(dir, "a.supp"), *p2 = tu_path(dir, "b.supp");
	char *p3 = tu_path(dir, "bad.supp"), *p4 = tu_path(dir, "none.supp");
	FILE *f = fopen(p1, "w");
	fputs("leak:make_node\n", f);
	fclose(f);
	f = fopen(p2, "w");
	fputs("# libs\nleak:libfoo.so", f);
	fclose(f);
	f = fopen(p3, "w");
	fputs("leak:x\ntsan:y\n", f);
	fclose(f);

	struct mp_suppressions *s = NULL;
	struct mp_errinfo ei = {{0}};
	cr_assert_eq(mp_suppressions_load(p1, &s, &ei), MP_OK);
	cr_assert_eq(mp_suppressions_load(p2, &s, &ei), MP_OK);
	struct mp_resolved_frame a = {.function = "make_node"};
	struct mp_resolved_frame b = {.module = "/usr/lib/libfoo.so"};
	struct mp_resolved_frame c = {.function = "other"};
	cr_expect(mp_suppressions_match(s, &a, 1));
	cr_expect(mp_suppressions_match(s, &b, 1));
	cr_expect_not(mp_suppressions_match(s, &c, 1));
	struct mp_suppressions *keep = s;
	cr_expect_eq(mp_suppressions_load(p3, &s, &ei), MP_ERR_CORRUPT);
	cr_expect_str_eq(ei.msg, "line 2: unknown suppression type 'tsan'");
	cr_expect_eq(s, keep);
	cr_expect_eq(mp_suppressions_load(p4, &s, &ei), MP_ERR_IO);
	cr_expect_str_eq(ei.msg, "No such file or directory");
	cr_expect_not(mp_suppressions_match(s, &c, 1));
	mp_suppressions_free(s);
	unlink(p1);
	unlink(p2);
	unlink(p3);
	rmdir(dir);
	free(p1);
	free(p2);
	free(p3);
	free(p4);
	free(dir);
}

Test(leaks, suppression_covers_blocks_only_suppressed_ones_keep)
{
	/*
	 * S(FOO) -> A -> B, S -> C, D(BUF) -> C: A and B only through S,
	 * C kept by D. X(FOO) <-> Y: a suppressed cycle, not listed.
	 * P(FOO) possible, R(FOO) reachable. E -> F(FOO) -> G: E stays.
	 */
	struct lfx f;
	lfx_init(&f);
	uint32_t s = lfx_block(&f, 1, T_FOO), a = lfx_block(&f, 2, T_NODE);
	uint32_t b = lfx_block(&f, 4, T_NODE), c = lfx_block(&f, 8, T_NODE);
	uint32_t d = lfx_block(&f, 16, T_BUF), x = lfx_block(&f, 32, T_FOO);
	uint32_t y = lfx_block(&f, 64, T_NODE), p = lfx_block(&f, 128, T_FOO);
	uint32_t rr = lfx_block(&f, 256, T_FOO), e = lfx_block(&f, 512, T_BUF);
	uint32_t ff = lfx_block(&f, 1024, T_FOO);
	uint32_t g = lfx_block(&f, 2048, T_CACHE);
	lfx_edge(&f, s, a, 0);
	lfx_edge(&f, a, b, 0);
	lfx_edge(&f, s, c, 0);
	lfx_edge(&f, d, c, 0);
	lfx_edge(&f, x, y, 0);
	lfx_edge(&f, y, x, 0);
	lfx_root(&f, p, 0, S);
	lfx_root(&f, rr, S, 0);
	lfx_edge(&f, e, ff, 0);
	lfx_edge(&f, ff, g, 0);
	struct mp_suppressions *sp = supp("leak:^libfoo.so$\n");
	struct mp_leak_report *r = lfx_analyze(&f, sp);
	expect_kind(r, s, MP_LEAK_SUPPRESSED);
	expect_kind(r, a, MP_LEAK_SUPPRESSED);
	expect_kind(r, b, MP_LEAK_SUPPRESSED);
	expect_kind(r, c, MP_LEAK_INDIRECT);
	expect_kind(r, d, MP_LEAK_DEFINITE);
	expect_kind(r, x, MP_LEAK_SUPPRESSED);
	expect_kind(r, y, MP_LEAK_SUPPRESSED);
	expect_kind(r, p, MP_LEAK_SUPPRESSED);
	expect_kind(r, rr, MP_LEAK_REACHABLE);
	expect_kind(r, e, MP_LEAK_DEFINITE);
	expect_kind(r, ff, MP_LEAK_SUPPRESSED);
	expect_kind(r, g, MP_LEAK_SUPPRESSED);
	cr_expect_eq(r->ncycles, 0);
	cr_expect_eq(r->summary[MP_LEAK_SUPPRESSED].bytes,
		     1 + 2 + 4 + 32 + 64 + 128 + 1024 + 2048);
	cr_expect_eq(r->summary[MP_LEAK_SUPPRESSED].blocks, 8);
	cr_expect_eq(r->summary[MP_LEAK_DEFINITE].bytes, 16 + 512);
	cr_expect_eq(r->summary[MP_LEAK_INDIRECT].bytes, 8);
	cr_expect_eq(r->summary[MP_LEAK_POSSIBLE].blocks, 0);
	/* Retained sizes describe memory, whatever is suppressed: E would
	 * free F and G. */
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_BUF)->retained_bytes,
		     16 + 512 + 1024 + 2048);
	mp_suppressions_free(sp);
	lfx_fini(&f);
}

Test(leaks, suppressing_one_member_suppresses_the_cycle)
{
	/* A(FOO) -> B -> C -> A, C -> Z: nothing outside keeps B, C, Z. */
	struct lfx f;
	lfx_init(&f);
	lfx_block(&f, 1, T_FOO);
	lfx_block(&f, 2, T_NODE);
	lfx_block(&f, 4, T_NODE);
	lfx_block(&f, 8, T_NODE);
	lfx_edge(&f, 0, 1, 0);
	lfx_edge(&f, 1, 2, 0);
	lfx_edge(&f, 2, 0, 0);
	lfx_edge(&f, 2, 3, 0);
	struct mp_suppressions *sp = supp("leak:foo_alloc");
	struct mp_leak_report *r = lfx_analyze(&f, sp);
	for (uint32_t i = 0; i < 4; i++)
		expect_kind(r, i, MP_LEAK_SUPPRESSED);
	cr_expect_eq(r->ncycles, 0);
	cr_expect_eq(r->summary[MP_LEAK_SUPPRESSED].bytes, 15);
	mp_suppressions_free(sp);
	lfx_fini(&f);
}

/* ---- an independent oracle on small random graphs ------------------ */

#define ON 40u

struct oracle {
	bool edge[ON][ON], reach[ON][ON];
	uint64_t size[ON];
};

static void reach_from(const struct oracle *o, uint32_t from, bool *seen,
		       const bool *removed)
{
	uint32_t stack[ON], sp = 0;
	if (removed[from] || seen[from])
		return;
	seen[from] = true;
	stack[sp++] = from;
	while (sp) {
		uint32_t x = stack[--sp];
		for (uint32_t y = 0; y < ON; y++)
			if (o->edge[x][y] && !seen[y] && !removed[y]) {
				seen[y] = true;
				stack[sp++] = y;
			}
	}
}

/*
 * Every block lost, one trace per block. By brute force: components from
 * mutual reachability, sources, and a component's retained bytes as what
 * no longer hangs off the other sources once it is removed (the
 * definition of domination, without a dominator tree).
 */
Test(leaks, retained_sizes_match_brute_force_on_random_graphs)
{
	uint64_t seed = 88172645463325252ull;
	size_t nonroot_cycles = 0, big_cycles = 0, shared = 0;
	for (int round = 0; round < 300; round++) {
		struct lfx f;
		struct oracle o;
		memset(&o, 0, sizeof(o));
		lfx_init(&f);
		struct mp_snapshot *s = f.s;
		s->stacks = mp__alloc(s, ON * sizeof(*s->stacks));
		s->traces = mp__alloc(s, ON * sizeof(*s->traces));
		for (uint32_t i = 0; i < ON; i++) {
			s->stacks[i].depth = 1;
			s->stacks[i].pcs = mp__alloc(s, sizeof(uint64_t));
			s->stacks[i].pcs[0] = 0x5000 + i;
			s->traces[i].stack = i;
		}
		s->nstacks = s->ntraces = ON;
		uint32_t density = 1 + round % 4;
		for (uint32_t i = 0; i < ON; i++) {
			seed ^= seed << 13, seed ^= seed >> 7,
				seed ^= seed << 17;
			o.size[i] = 1 + seed % 100;
			lfx_block(&f, o.size[i], i);
		}
		for (uint32_t i = 0; i < ON; i++)
			for (uint32_t k = 0; k < density; k++) {
				seed ^= seed << 13, seed ^= seed >> 7,
					seed ^= seed << 17;
				uint32_t to = (uint32_t)(seed % ON);
				if (seed % 7 == 0 || o.edge[i][to])
					continue;
				o.edge[i][to] = true;
				lfx_edge(&f, i, to, (seed >> 20) % 2 ? I : 0);
			}
		struct mp_leak_report *r = lfx_analyze(&f, NULL);

		bool none[ON] = {false};
		for (uint32_t i = 0; i < ON; i++)
			reach_from(&o, i, o.reach[i], none);
		uint32_t comp[ON];
		bool source[ON], cyc[ON];
		uint64_t cbytes[ON] = {0}, retained[ON] = {0};
		for (uint32_t i = 0; i < ON; i++) {
			comp[i] = i;
			for (uint32_t j = 0; j < i; j++)
				if (o.reach[i][j] && o.reach[j][i]) {
					comp[i] = comp[j];
					break;
				}
			cbytes[comp[i]] += o.size[i];
		}
		for (uint32_t c = 0; c < ON; c++) {
			source[c] = true;
			cyc[c] = false;
		}
		for (uint32_t x = 0; x < ON; x++)
			for (uint32_t y = 0; y < ON; y++) {
				if (!o.edge[x][y])
					continue;
				if (comp[x] != comp[y])
					source[comp[y]] = false;
				else
					cyc[comp[y]] = true;
			}
		size_t ncyc = 0;
		for (uint32_t c = 0; c < ON; c++) {
			if (comp[c] != c)
				continue;
			ncyc += cyc[c];
			bool removed[ON], seen[ON] = {false};
			for (uint32_t i = 0; i < ON; i++)
				removed[i] = comp[i] == c;
			for (uint32_t i = 0; i < ON; i++)
				if (source[comp[i]])
					reach_from(&o, i, seen, removed);
			for (uint32_t i = 0; i < ON; i++)
				if (!seen[i])
					retained[c] += o.size[i];
		}

		for (uint32_t i = 0; i < ON; i++)
			expect_kind(r, i,
				    source[comp[i]] ? MP_LEAK_DEFINITE
						    : MP_LEAK_INDIRECT);
		for (size_t k = 0; k < r->nrecords; k++) {
			const struct mp_leak_record *rec = &r->records[k];
			uint32_t b = rec->trace, c = comp[b];
			uint64_t want = 0;
			if (rec->kind == MP_LEAK_DEFINITE)
				want = o.size[b] +
				       (c == b ? retained[c] - cbytes[c] : 0);
			cr_expect_eq(rec->retained_bytes, want,
				     "round %d block %u", round, b);
		}
		cr_expect_eq(r->ncycles, ncyc, "round %d", round);
		for (size_t k = 0; k < r->ncycles; k++) {
			const struct mp_leak_cycle *cy = &r->cycles[k];
			uint32_t c = cy->members[0].trace;
			cr_expect_eq(comp[c], c, "round %d: starts at lowest",
				     round);
			cr_expect_eq(cy->bytes, cbytes[c]);
			cr_expect_eq(cy->retained_bytes, retained[c],
				     "round %d cycle at %u", round, c);
			cr_expect_eq(cy->is_root, source[c]);
			uint64_t sum = 0;
			for (size_t m = 0; m < cy->nmembers; m++)
				sum += cy->members[m].bytes;
			cr_expect_eq(sum, cy->bytes);
			nonroot_cycles += !cy->is_root;
			big_cycles += cy->blocks > 2;
		}
		for (uint32_t c = 0; c < ON; c++)
			if (comp[c] == c && !source[c] &&
			    retained[c] == cbytes[c])
				shared++;
		lfx_fini(&f);
	}
	/* The rounds cover what matters: cycles under others, long
	 * cycles, components no single predecessor dominates. */
	cr_expect_gt(nonroot_cycles, 50, "%zu", nonroot_cycles);
	cr_expect_gt(big_cycles, 50, "%zu", big_cycles);
	cr_expect_gt(shared, 50, "%zu", shared);
}

/* ---- a million blocks ---------------------------------------------- */

#define BIG 1000000u

/* BIG blocks of 16 bytes, trace T_NODE; edges from next(i, k, &to). */
static void big_graph(struct lfx *f, uint32_t per,
		      bool (*next)(uint32_t i, uint32_t k, uint32_t *to))
{
	lfx_init(f);
	struct mp_snapshot *s = f->s;
	s->blocks = mp__alloc(s, BIG * sizeof(*s->blocks));
	cr_assert_not_null(s->blocks);
	for (uint32_t i = 0; i < BIG; i++)
		s->blocks[i] =
			(struct mp_block){0x10000000 + 32ull * i, 16, T_NODE};
	s->nblocks = BIG;
	s->traces[T_NODE].live_bytes = 16ull * BIG;
	s->traces[T_NODE].live_blocks = BIG;
	struct mp_graph *g = &s->graph;
	g->edge_start = mp__alloc(s, (BIG + 1) * sizeof(uint64_t));
	g->edges = mp__alloc(s, (size_t)BIG * per * sizeof(*g->edges));
	cr_assert(g->edge_start && g->edges);
	size_t ne = 0;
	for (uint32_t i = 0; i < BIG; i++) {
		g->edge_start[i] = ne;
		uint32_t to[8];
		uint32_t nt = 0;
		for (uint32_t k = 0; k < per; k++)
			if (next(i, k, &to[nt]))
				nt++;
		/* sorted by target, one per target */
		for (uint32_t p = 1; p < nt; p++)
			for (uint32_t q = p; q > 0 && to[q - 1] > to[q]; q--) {
				uint32_t t = to[q];
				to[q] = to[q - 1];
				to[q - 1] = t;
			}
		for (uint32_t k = 0; k < nt; k++)
			if (k == 0 || to[k] != to[k - 1])
				g->edges[ne++] = (struct mp_edge){to[k], 0};
	}
	g->edge_start[BIG] = ne;
	g->nedges = ne;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double timed_analyze(struct lfx *f, const char *what)
{
	double t0 = now();
	cr_assert_eq(mp_leaks_analyze(f->s, NULL, &f->rep), MP_OK);
	double dt = now() - t0;
	cr_log_info("%s: %.3f s", what, dt);
	if (getenv("MEMPROF_TEST_TIMES"))
		fprintf(stderr, "leaks: %s: %.3f s\n", what, dt);
	/* Timing is reported, not asserted: timed tests are flaky on shared
	 * machines; tests/bench/measure.sh measures analysis speed. */
	return dt;
}

static bool chain_next(uint32_t i, uint32_t k, uint32_t *to)
{
	(void)k;
	*to = i + 1;
	return i + 1 < BIG;
}

Test(leaks, million_block_lost_chain_without_recursion, .timeout = 60)
{
	struct lfx f;
	big_graph(&f, 1, chain_next);
	timed_analyze(&f, "1M-block lost chain");
	struct mp_leak_report *r = f.rep;
	cr_expect_eq(r->summary[MP_LEAK_DEFINITE].blocks, 1);
	cr_expect_eq(r->summary[MP_LEAK_INDIRECT].blocks, BIG - 1);
	cr_expect_eq(K(r, 0), MP_LEAK_DEFINITE);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_NODE)->retained_bytes,
		     16ull * BIG);
	cr_expect_eq(r->ncycles, 0);
	lfx_fini(&f);
}

Test(leaks, million_block_reachable_chain, .timeout = 60)
{
	struct lfx f;
	big_graph(&f, 1, chain_next);
	struct mp_root_ref *root = mp__alloc(f.s, sizeof(*root));
	*root = (struct mp_root_ref){0, S, 0};
	f.s->graph.roots = root;
	f.s->graph.nroots = 1;
	timed_analyze(&f, "1M-block reachable chain");
	cr_expect_eq(f.rep->summary[MP_LEAK_REACHABLE].blocks, BIG);
	cr_expect_eq(f.rep->nrecords, 1);
	lfx_fini(&f);
}

static bool ring_next(uint32_t i, uint32_t k, uint32_t *to)
{
	(void)k;
	*to = (i + 1) % BIG;
	return true;
}

Test(leaks, million_block_cycle, .timeout = 60)
{
	struct lfx f;
	big_graph(&f, 1, ring_next);
	timed_analyze(&f, "1M-block cycle");
	struct mp_leak_report *r = f.rep;
	cr_expect_eq(r->summary[MP_LEAK_DEFINITE].blocks, BIG);
	cr_assert_eq(r->ncycles, 1);
	cr_expect_eq(r->cycles[0].blocks, BIG);
	cr_expect_eq(r->cycles[0].nmembers, 1); /* one trace: one run */
	cr_expect_eq(r->cycles[0].retained_bytes, 16ull * BIG);
	lfx_fini(&f);
}

/* A pseudo-random graph: 3 edges a block, mostly forward and some back,
 * so that there are large components, chains and shared children. */
static bool random_next(uint32_t i, uint32_t k, uint32_t *to)
{
	uint64_t h = (i * 2654435761ull + k * 40503ull) ^ (i >> 3);
	h = h * 6364136223846793005ull + 1442695040888963407ull;
	uint32_t r = (uint32_t)(h >> 33);
	if (k == 0) {
		*to = (i + 1 + r % 8) % BIG;
		return r % 5 != 0;
	}
	*to = r % BIG;
	return k == 1 ? r % 3 == 0 : r % 17 == 0;
}

Test(leaks, million_block_random_graph, .timeout = 60)
{
	struct lfx f;
	big_graph(&f, 3, random_next);
	struct mp_root_ref *roots = mp__alloc(f.s, 1000 * sizeof(*roots));
	for (uint32_t k = 0; k < 1000; k++)
		roots[k] = (struct mp_root_ref){k * 997, k % 2 ? S : 0, S};
	f.s->graph.roots = roots;
	f.s->graph.nroots = 1000;
	timed_analyze(&f, "1M-block random graph");
	struct mp_leak_report *r = f.rep;
	uint64_t blocks = 0, bytes = 0, retained = 0;
	for (int k = 0; k < MP_LEAK_NKINDS; k++) {
		blocks += r->summary[k].blocks;
		bytes += r->summary[k].bytes;
	}
	cr_expect_eq(blocks, BIG);
	cr_expect_eq(bytes, 16ull * BIG);
	for (size_t i = 0; i < r->nrecords; i++)
		retained += r->records[i].retained_bytes;
	/* Blocks shared by several sources are retained by none of them. */
	cr_expect_geq(retained, r->summary[MP_LEAK_DEFINITE].bytes);
	cr_expect_leq(retained, r->summary[MP_LEAK_DEFINITE].bytes +
					r->summary[MP_LEAK_INDIRECT].bytes);
	lfx_fini(&f);
}

/*
 * A lost list c0 -> c1 -> ... and an index array (pointed to by c0) that
 * points to every node's payload x_i, which c_i points to as well: the
 * dominator of x_i is c0, found from c_i, as deep in the tree as the list
 * is long. A walk up one parent at a time would be quadratic.
 */
Test(leaks, deep_dominator_tree_stays_fast, .timeout = 60)
{
	const uint32_t n = 300000, nb = 2 * n + 1;
	struct lfx f;
	lfx_init(&f);
	struct mp_snapshot *s = f.s;
	s->blocks = mp__alloc(s, nb * sizeof(*s->blocks));
	for (uint32_t i = 0; i < nb; i++)
		s->blocks[i] = (struct mp_block){0x10000000 + 32ull * i, 16,
						 i == 0	  ? T_BUF
						 : i == n ? T_CACHE
						 : i < n  ? T_NODE
							  : T_FOO};
	s->nblocks = nb;
	struct mp_graph *g = &s->graph;
	g->edge_start = mp__alloc(s, (nb + 1) * sizeof(uint64_t));
	g->edges = mp__alloc(s, 3ull * n * sizeof(*g->edges));
	size_t ne = 0;
	for (uint32_t i = 0; i < nb; i++) {
		g->edge_start[i] = ne;
		if (i < n) {
			if (i + 1 < n)
				g->edges[ne++] = (struct mp_edge){i + 1, 0};
			if (i == 0)
				g->edges[ne++] = (struct mp_edge){n, 0};
			g->edges[ne++] = (struct mp_edge){n + 1 + i, 0};
		} else if (i == n) {
			for (uint32_t k = 0; k < n; k++)
				g->edges[ne++] = (struct mp_edge){n + 1 + k, I};
		}
	}
	g->edge_start[nb] = ne;
	g->nedges = ne;
	timed_analyze(&f, "600k-block deep dominator tree");
	struct mp_leak_report *r = f.rep;
	cr_expect_eq(r->summary[MP_LEAK_DEFINITE].blocks, 1);
	cr_expect_eq(r->summary[MP_LEAK_INDIRECT].blocks, nb - 1);
	cr_expect_eq(find_record(r, MP_LEAK_DEFINITE, T_BUF)->retained_bytes,
		     16ull * nb);
	lfx_fini(&f);
}
