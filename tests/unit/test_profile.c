/*
 * test_profile.c - frame resolution, `top` aggregation and the JSON writer.
 *
 * Snapshots are built by hand in memory (modules, symbols, stacks,
 * traces), so every figure asserted below can be checked against the
 * fixture's table.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace_internal.h"
#include "memprof_trace.h"
#include "trace/trace_json.h"

#define CAP 32

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

static uint32_t fx_module(struct mp_snapshot *s, const char *path,
			  uint64_t start, uint64_t end)
{
	struct mp_module *m = &s->modules[s->nmodules];
	m->path = mp__strdup(s, path);
	m->start = start;
	m->end = end;
	return (uint32_t)s->nmodules++;
}

/* A symbol with nframes (function, file, line) triples, innermost first;
 * kept sorted by pc like the reader's. */
static void fx_symbol(struct mp_snapshot *s, uint64_t pc, uint32_t module,
		      uint32_t nframes, ...)
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
	sym->nframes = nframes;
	sym->frames =
		nframes ? mp__alloc(s, nframes * sizeof(*sym->frames)) : NULL;
	va_list ap;
	va_start(ap, nframes);
	for (uint32_t k = 0; k < nframes; k++) {
		const char *fn = va_arg(ap, const char *);
		const char *file = va_arg(ap, const char *);
		sym->frames[k].function = fn ? mp__strdup(s, fn) : NULL;
		sym->frames[k].file = file ? mp__strdup(s, file) : NULL;
		sym->frames[k].line = va_arg(ap, unsigned);
	}
	va_end(ap);
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
		     uint64_t blocks, uint64_t allocs, uint64_t alloc_bytes,
		     uint64_t peak)
{
	struct mp_trace *t = &s->traces[s->ntraces++];
	t->stack = stack;
	t->live_bytes = bytes;
	t->live_blocks = blocks;
	t->allocs = allocs;
	t->alloc_bytes = alloc_bytes;
	t->peak_bytes = peak;
}

#define PC(x) ((uint64_t)(x))

/*
 * The main fixture. Stacks after allocator frames are dropped:
 *   T0 S0 [make_buffer demo.c:42, main demo.c:60]       4096 B 1 blk
 *   T1 S1 [make_buffer demo.c:43, main :60] (op new)    1000 B 10 blk
 *   T2 S2 [xmalloc demo.c:10, make_buffer :42, main:61]  300 B 3 blk
 *   T3 S3 [inl_helper util.h:5, build demo.c:70, main:60] 64 B 2 blk
 *   T4 S4 [?0x70010 libfoo, main:60]                      50 B 5 blk
 *   T5 S5 [?0x70020 libfoo (no frames), main:61]          20 B 1 blk
 *   T6 S6 [?0x70010 libfoo, main:61]                      30 B 1 blk
 *   T7 S7 [] (shim frame only)                             8 B 1 blk
 *   T8 S3 again, everything freed                          0 B 0 blk
 */
static struct mp_snapshot *fx_main(void)
{
	struct mp_snapshot *s = fx_new();
	uint32_t demo = fx_module(s, "/home/u/demo", 0x1000, 0x9000);
	uint32_t libc = fx_module(s, "/usr/lib/libc.so.6", 0x10000, 0x20000);
	uint32_t shim = fx_module(s, "/opt/mp/libmemprof.so", 0x30000, 0x40000);
	uint32_t cxx =
		fx_module(s, "/usr/lib/libstdc++.so.6", 0x50000, 0x60000);
	fx_module(s, "/usr/lib/libfoo.so", 0x70000, 0x80000);
	uint32_t libfoo = 4;

	fx_symbol(s, 0x30010, shim, 1, "malloc", "shim_hooks.c", 30u);
	fx_symbol(s, 0x30020, shim, 1, "shim_record", "shim_live.c", 7u);
	fx_symbol(s, 0x10010, libc, 1, "malloc", NULL, 0u);
	fx_symbol(s, 0x50010, cxx, 1, "operator new(unsigned long)", NULL, 0u);
	fx_symbol(s, 0x1100, demo, 1, "xmalloc", "/src/demo.c", 10u);
	fx_symbol(s, 0x1200, demo, 1, "make_buffer", "/src/demo.c", 42u);
	fx_symbol(s, 0x1210, demo, 1, "make_buffer", "/src/demo.c", 43u);
	fx_symbol(s, 0x1300, demo, 1, "main", "/src/demo.c", 60u);
	fx_symbol(s, 0x1310, demo, 1, "main", "/src/demo.c", 61u);
	fx_symbol(s, 0x1400, demo, 2, "inl_helper", "/src/util.h", 5u, "build",
		  "/src/demo.c", 70u);
	fx_symbol(s, 0x70020, libfoo, 0);
	/* 0x70010 has no symbol at all. */

	uint32_t s0 = fx_stack(s, 4, PC(0x30010), PC(0x10010), PC(0x1200),
			       PC(0x1300));
	uint32_t s1 = fx_stack(s, 4, PC(0x50010), PC(0x10010), PC(0x1210),
			       PC(0x1300));
	uint32_t s2 =
		fx_stack(s, 4, PC(0x10010), PC(0x1100), PC(0x1200), PC(0x1310));
	uint32_t s3 = fx_stack(s, 3, PC(0x10010), PC(0x1400), PC(0x1300));
	uint32_t s4 = fx_stack(s, 3, PC(0x10010), PC(0x70010), PC(0x1300));
	uint32_t s5 = fx_stack(s, 3, PC(0x10010), PC(0x70020), PC(0x1310));
	uint32_t s6 = fx_stack(s, 3, PC(0x10010), PC(0x70010), PC(0x1310));
	uint32_t s7 = fx_stack(s, 1, PC(0x30020));

	fx_trace(s, s0, 4096, 1, 11, 45056, 10485760);
	fx_trace(s, s1, 1000, 10, 10, 1000, 2000);
	fx_trace(s, s2, 300, 3, 5, 500, 0);
	fx_trace(s, s3, 64, 2, 2, 64, 64);
	fx_trace(s, s4, 50, 5, 5, 50, 50);
	fx_trace(s, s5, 20, 1, 1, 20, 0);
	fx_trace(s, s6, 30, 1, 100, 3000, 0);
	fx_trace(s, s7, 8, 1, 1, 8, 8);
	fx_trace(s, s3, 0, 0, 7, 700, 0);

	s->meta.totals = (struct mp_totals){
		.live_bytes = 5568,
		.live_blocks = 24,
		.peak_bytes = 10487000,
		.allocs = 142,
		.frees = 118,
		.alloc_bytes = 50398,
	};
	return s;
}

static struct mp_profile *build(const struct mp_snapshot *s,
				enum mp_group_by by, enum mp_sort_by sort,
				bool cumulative, const char *const *globs,
				size_t nglobs)
{
	struct mp_profile_opts o = {
		.by = by,
		.sort = sort,
		.cumulative = cumulative,
		.alloc = {.globs = globs, .nglobs = nglobs},
	};
	struct mp_profile *p = NULL;
	cr_assert_eq(mp_profile_build(s, &o, &p), MP_OK);
	cr_assert_not_null(p);
	return p;
}

/* Compact description of one entry's key frame: "fn@file:line" with
 * unknown parts as "?", the address when the function is unknown, "-" for
 * an entry with no frames. */
static const char *desc(const struct mp_profile_entry *e, size_t k, char *buf)
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
	uint64_t bytes, blocks, allocs, alloc_bytes, peak;
};

static void check_entries(const struct mp_profile *p, const struct want *w,
			  size_t n)
{
	char buf[128];
	cr_assert_eq(p->nentries, n, "%zu entries, want %zu", p->nentries, n);
	for (size_t i = 0; i < n; i++) {
		const struct mp_profile_entry *e = &p->entries[i];
		cr_expect_str_eq(desc(e, 0, buf), w[i].key, "entry %zu", i);
		cr_expect_eq(e->bytes, w[i].bytes, "entry %zu bytes %llu", i,
			     (unsigned long long)e->bytes);
		cr_expect_eq(e->blocks, w[i].blocks, "entry %zu blocks", i);
		cr_expect_eq(e->allocs, w[i].allocs, "entry %zu allocs", i);
		cr_expect_eq(e->alloc_bytes, w[i].alloc_bytes,
			     "entry %zu alloc_bytes", i);
		cr_expect_eq(e->peak_bytes, w[i].peak, "entry %zu peak", i);
	}
}

#define CHECK(p, ...)                                             \
	do {                                                      \
		const struct want w_[] = {__VA_ARGS__};           \
		check_entries(p, w_, sizeof(w_) / sizeof(w_[0])); \
	} while (0)

/* ---- frame resolution ---- */

Test(profile, resolve_drops_shim_libc_and_operator_new)
{
	struct mp_snapshot *s = fx_main();
	struct mp_resolved_frame *f;
	size_t n;

	cr_assert_eq(mp_stack_resolve(s, 1, NULL, &f, &n), MP_OK);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(f[0].function, "make_buffer");
	cr_expect_str_eq(f[0].file, "/src/demo.c");
	cr_expect_eq(f[0].line, 43);
	cr_expect_str_eq(f[0].module, "/home/u/demo");
	cr_expect_eq(f[0].address, 0x1210);
	cr_expect_str_eq(f[1].function, "main");
	free(f);

	/* Only the shim's frames: nothing left. */
	cr_assert_eq(mp_stack_resolve(s, 7, NULL, &f, &n), MP_OK);
	cr_expect_eq(n, 0);
	cr_expect_null(f);

	cr_expect_eq(mp_stack_resolve(s, 99, NULL, &f, &n), MP_ERR_USAGE);
	mp_snapshot_free(s);
}

Test(profile, resolve_expands_inline_chain_innermost_first)
{
	struct mp_snapshot *s = fx_main();
	struct mp_resolved_frame *f;
	size_t n;

	cr_assert_eq(mp_stack_resolve(s, 3, NULL, &f, &n), MP_OK);
	cr_assert_eq(n, 3);
	cr_expect_str_eq(f[0].function, "inl_helper");
	cr_expect_str_eq(f[0].file, "/src/util.h");
	cr_expect_eq(f[0].address, 0x1400);
	cr_expect_str_eq(f[1].function, "build");
	cr_expect_eq(f[1].line, 70);
	cr_expect_eq(f[1].address, 0x1400);
	cr_expect_str_eq(f[2].function, "main");
	free(f);
	mp_snapshot_free(s);
}

Test(profile, resolve_unknown_pc_keeps_module_and_address)
{
	struct mp_snapshot *s = fx_main();
	struct mp_resolved_frame *f;
	size_t n;

	/* 0x70010: no symbol; module found by address. */
	cr_assert_eq(mp_stack_resolve(s, 4, NULL, &f, &n), MP_OK);
	cr_assert_eq(n, 2);
	cr_expect_null(f[0].function);
	cr_expect_null(f[0].file);
	cr_expect_eq(f[0].line, 0);
	cr_expect_str_eq(f[0].module, "/usr/lib/libfoo.so");
	cr_expect_eq(f[0].address, 0x70010);
	free(f);

	/* 0x70020: a symbol with no frames. */
	cr_assert_eq(mp_stack_resolve(s, 5, NULL, &f, &n), MP_OK);
	cr_assert_eq(n, 2);
	cr_expect_null(f[0].function);
	cr_expect_str_eq(f[0].module, "/usr/lib/libfoo.so");
	cr_expect_eq(f[0].address, 0x70020);
	free(f);
	mp_snapshot_free(s);
}

Test(profile, alloc_fn_glob_drops_wrapper)
{
	struct mp_snapshot *s = fx_main();
	struct mp_resolved_frame *f;
	size_t n;
	const char *globs[] = {"g_*", "x*alloc"};
	struct mp_alloc_filter flt = {globs, 2};

	cr_assert_eq(mp_stack_resolve(s, 2, NULL, &f, &n), MP_OK);
	cr_assert_eq(n, 3);
	cr_expect_str_eq(f[0].function, "xmalloc");
	free(f);

	cr_assert_eq(mp_stack_resolve(s, 2, &flt, &f, &n), MP_OK);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(f[0].function, "make_buffer");
	cr_expect_eq(f[0].line, 42);
	free(f);
	mp_snapshot_free(s);
}

Test(profile, allocator_frames_dropped_only_from_innermost_end)
{
	struct mp_snapshot *s = fx_new();
	fx_symbol(s, 0x10, UINT32_MAX, 1, "malloc", NULL, 0u);
	fx_symbol(s, 0x20, UINT32_MAX, 1, "strdup", NULL, 0u);
	fx_symbol(s, 0x30, UINT32_MAX, 1, "operator new[](unsigned long)", NULL,
		  0u);
	fx_symbol(s, 0x40, UINT32_MAX, 1, "main", "m.c", 3u);
	/* malloc, strdup, new[] (a caller, kept), main */
	fx_stack(s, 4, PC(0x10), PC(0x20), PC(0x30), PC(0x40));
	struct mp_resolved_frame *f;
	size_t n;

	cr_assert_eq(mp_stack_resolve(s, 0, NULL, &f, &n), MP_OK);
	cr_assert_eq(n, 3);
	cr_expect_str_eq(f[0].function, "strdup");
	cr_expect_str_eq(f[1].function, "operator new[](unsigned long)");
	cr_expect_null(f[0].module); /* no module anywhere */
	free(f);
	mp_snapshot_free(s);
}

Test(profile, allocator_names)
{
	struct mp_resolved_frame f = {0};
	const char *yes[] = {
		"malloc",
		"calloc",
		"realloc",
		"free",
		"reallocarray",
		"posix_memalign",
		"aligned_alloc",
		"memalign",
		"valloc",
		"pvalloc",
		"__libc_malloc",
		"__libc_calloc",
		"operator new(unsigned long)",
		"operator new[](unsigned long, std::nothrow_t const&)",
		"_Znwm",
		"_Znam"};
	const char *no[] = {"mallocx",
			    "my_malloc",
			    "xmalloc",
			    "freeze",
			    "operator delete(void*)",
			    "main"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
		f.function = yes[i];
		cr_expect(mp_frame_is_allocator(&f, NULL), "%s", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++) {
		f.function = no[i];
		cr_expect_not(mp_frame_is_allocator(&f, NULL), "%s", no[i]);
	}
	f.function = NULL;
	f.module = "/build/libmemprof.so";
	cr_expect(mp_frame_is_allocator(&f, NULL));
	f.module = "/build/libmemprofiler-not.so";
	cr_expect(mp_frame_is_allocator(&f, NULL)); /* prefix rule */
	f.module = "/libmemprof/libc.so.6";
	cr_expect_not(mp_frame_is_allocator(&f, NULL)); /* basename only */
}

/* ---- grouping ---- */

Test(profile, by_line_sorted_by_bytes)
{
	struct mp_snapshot *s = fx_main();
	struct mp_profile *p =
		build(s, MP_GROUP_LINE, MP_SORT_BYTES, false, NULL, 0);
	CHECK(p, {"make_buffer@/src/demo.c:42", 4096, 1, 11, 45056, 10485760},
	      {"make_buffer@/src/demo.c:43", 1000, 10, 10, 1000, 2000},
	      {"xmalloc@/src/demo.c:10", 300, 3, 5, 500, 0},
	      {"0x70010", 80, 6, 105, 3050, 50},
	      {"inl_helper@/src/util.h:5", 64, 2, 9, 764, 64},
	      {"0x70020", 20, 1, 1, 20, 0}, {"-", 8, 1, 1, 8, 8});
	cr_expect_eq(p->entries[4].ntraces, 2);
	cr_expect_eq(p->totals.live_bytes, 5568);
	cr_expect_eq(p->by, MP_GROUP_LINE);
	/* The whole group shares the pc: the address stays. */
	cr_expect_eq(p->entries[0].frames[0].address, 0x1200);
	cr_expect_str_eq(p->entries[3].frames[0].module, "/usr/lib/libfoo.so");
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, by_line_sorted_by_blocks_allocs_peak)
{
	struct mp_snapshot *s = fx_main();
	struct mp_profile *p =
		build(s, MP_GROUP_LINE, MP_SORT_BLOCKS, false, NULL, 0);
	CHECK(p, {"make_buffer@/src/demo.c:43", 1000, 10, 10, 1000, 2000},
	      {"0x70010", 80, 6, 105, 3050, 50},
	      {"xmalloc@/src/demo.c:10", 300, 3, 5, 500, 0},
	      {"inl_helper@/src/util.h:5", 64, 2, 9, 764, 64},
	      {"make_buffer@/src/demo.c:42", 4096, 1, 11, 45056, 10485760},
	      {"0x70020", 20, 1, 1, 20, 0}, {"-", 8, 1, 1, 8, 8});
	mp_profile_free(p);

	p = build(s, MP_GROUP_LINE, MP_SORT_ALLOCS, false, NULL, 0);
	CHECK(p, {"0x70010", 80, 6, 105, 3050, 50},
	      {"make_buffer@/src/demo.c:42", 4096, 1, 11, 45056, 10485760},
	      {"make_buffer@/src/demo.c:43", 1000, 10, 10, 1000, 2000},
	      {"inl_helper@/src/util.h:5", 64, 2, 9, 764, 64},
	      {"xmalloc@/src/demo.c:10", 300, 3, 5, 500, 0},
	      {"0x70020", 20, 1, 1, 20, 0}, {"-", 8, 1, 1, 8, 8});
	mp_profile_free(p);

	p = build(s, MP_GROUP_LINE, MP_SORT_PEAK, false, NULL, 0);
	CHECK(p, {"make_buffer@/src/demo.c:42", 4096, 1, 11, 45056, 10485760},
	      {"make_buffer@/src/demo.c:43", 1000, 10, 10, 1000, 2000},
	      {"inl_helper@/src/util.h:5", 64, 2, 9, 764, 64},
	      {"0x70010", 80, 6, 105, 3050, 50}, {"-", 8, 1, 1, 8, 8},
	      {"xmalloc@/src/demo.c:10", 300, 3, 5, 500, 0},
	      {"0x70020", 20, 1, 1, 20, 0});
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, by_function_groups_unknown_by_address)
{
	struct mp_snapshot *s = fx_main();
	struct mp_profile *p =
		build(s, MP_GROUP_FUNCTION, MP_SORT_BYTES, false, NULL, 0);
	/* make_buffer's lines 42 and 43 differ: line becomes unknown. */
	CHECK(p, {"make_buffer@/src/demo.c:0", 5096, 11, 21, 46056, 10487760},
	      {"xmalloc@/src/demo.c:10", 300, 3, 5, 500, 0},
	      {"0x70010", 80, 6, 105, 3050, 50},
	      {"inl_helper@/src/util.h:5", 64, 2, 9, 764, 64},
	      {"0x70020", 20, 1, 1, 20, 0}, {"-", 8, 1, 1, 8, 8});
	cr_expect_eq(p->entries[0].frames[0].address, 0); /* 0x1200, 0x1210 */
	cr_expect_str_eq(p->entries[0].frames[0].module, "/home/u/demo");
	cr_expect_eq(p->entries[0].nframes, 1);
	cr_expect_eq(p->entries[2].frames[0].address, 0x70010);
	cr_expect_eq(p->entries[2].ntraces, 2);
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, by_file_and_by_module)
{
	struct mp_snapshot *s = fx_main();
	struct mp_profile *p =
		build(s, MP_GROUP_FILE, MP_SORT_BYTES, false, NULL, 0);
	CHECK(p, {"?@/src/demo.c:0", 5396, 14, 26, 46556, 10487760},
	      {"0x70010", 80, 6, 105, 3050, 50},
	      {"inl_helper@/src/util.h:5", 64, 2, 9, 764, 64},
	      {"0x70020", 20, 1, 1, 20, 0}, {"-", 8, 1, 1, 8, 8});
	mp_profile_free(p);

	p = build(s, MP_GROUP_MODULE, MP_SORT_BYTES, false, NULL, 0);
	cr_assert_eq(p->nentries, 3);
	cr_expect_str_eq(p->entries[0].frames[0].module, "/home/u/demo");
	cr_expect_eq(p->entries[0].bytes, 5460);
	cr_expect_eq(p->entries[0].blocks, 16);
	cr_expect_eq(p->entries[0].allocs, 35);
	cr_expect_null(p->entries[0].frames[0].function);
	cr_expect_str_eq(p->entries[1].frames[0].module, "/usr/lib/libfoo.so");
	cr_expect_eq(p->entries[1].bytes, 100);
	cr_expect_eq(p->entries[1].blocks, 7);
	cr_expect_null(p->entries[1].frames[0].function);
	cr_expect_eq(p->entries[1].frames[0].address, 0);
	cr_expect_eq(p->entries[2].nframes, 0);
	cr_expect_eq(p->entries[2].bytes, 8);
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, by_traceback_keeps_whole_stacks)
{
	struct mp_snapshot *s = fx_main();
	struct mp_profile *p =
		build(s, MP_GROUP_TRACEBACK, MP_SORT_BYTES, false, NULL, 0);
	char b0[128], b1[128], b2[128];

	CHECK(p, {"make_buffer@/src/demo.c:42", 4096, 1, 11, 45056, 10485760},
	      {"make_buffer@/src/demo.c:43", 1000, 10, 10, 1000, 2000},
	      {"xmalloc@/src/demo.c:10", 300, 3, 5, 500, 0},
	      {"inl_helper@/src/util.h:5", 64, 2, 9, 764, 64},
	      {"0x70010", 50, 5, 5, 50, 50}, {"0x70010", 30, 1, 100, 3000, 0},
	      {"0x70020", 20, 1, 1, 20, 0}, {"-", 8, 1, 1, 8, 8});
	const struct mp_profile_entry *e = &p->entries[3];
	cr_assert_eq(e->nframes, 3);
	cr_expect_str_eq(desc(e, 1, b1), "build@/src/demo.c:70");
	cr_expect_str_eq(desc(e, 2, b2), "main@/src/demo.c:60");
	cr_expect_eq(e->ntraces, 2);
	e = &p->entries[2];
	cr_assert_eq(e->nframes, 3);
	cr_expect_str_eq(desc(e, 1, b0), "make_buffer@/src/demo.c:42");
	cr_expect_str_eq(desc(e, 2, b2), "main@/src/demo.c:61");
	cr_expect_str_eq(desc(&p->entries[4], 1, b1), "main@/src/demo.c:60");
	cr_expect_str_eq(desc(&p->entries[5], 1, b1), "main@/src/demo.c:61");
	mp_profile_free(p);

	/* With xmalloc treated as the allocator, T2's stack loses a frame. */
	const char *g[] = {"xmalloc"};
	p = build(s, MP_GROUP_TRACEBACK, MP_SORT_BYTES, false, g, 1);
	cr_assert_eq(p->entries[2].nframes, 2);
	cr_expect_str_eq(desc(&p->entries[2], 0, b0),
			 "make_buffer@/src/demo.c:42");
	cr_expect_str_eq(desc(&p->entries[2], 1, b1), "main@/src/demo.c:61");
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, alloc_fn_merges_wrapper_into_caller_line)
{
	struct mp_snapshot *s = fx_main();
	const char *g[] = {"xmalloc"};
	struct mp_profile *p =
		build(s, MP_GROUP_LINE, MP_SORT_BYTES, false, g, 1);
	CHECK(p, {"make_buffer@/src/demo.c:42", 4396, 4, 16, 45556, 10485760},
	      {"make_buffer@/src/demo.c:43", 1000, 10, 10, 1000, 2000},
	      {"0x70010", 80, 6, 105, 3050, 50},
	      {"inl_helper@/src/util.h:5", 64, 2, 9, 764, 64},
	      {"0x70020", 20, 1, 1, 20, 0}, {"-", 8, 1, 1, 8, 8});
	cr_expect_eq(p->entries[0].frames[0].address, 0x1200);
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, cumulative_by_function_counts_every_frame)
{
	struct mp_snapshot *s = fx_main();
	struct mp_profile *p =
		build(s, MP_GROUP_FUNCTION, MP_SORT_BYTES, true, NULL, 0);
	/* build and inl_helper tie on every counter: key order decides. */
	CHECK(p, {"main@/src/demo.c:0", 5560, 23, 141, 50390, 10487874},
	      {"make_buffer@/src/demo.c:0", 5396, 14, 26, 46556, 10487760},
	      {"xmalloc@/src/demo.c:10", 300, 3, 5, 500, 0},
	      {"0x70010", 80, 6, 105, 3050, 50},
	      {"build@/src/demo.c:70", 64, 2, 9, 764, 64},
	      {"inl_helper@/src/util.h:5", 64, 2, 9, 764, 64},
	      {"0x70020", 20, 1, 1, 20, 0}, {"-", 8, 1, 1, 8, 8});
	cr_expect_eq(p->entries[0].ntraces, 8);
	cr_expect(p->cumulative);
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, cumulative_does_not_deduplicate_recursion)
{
	struct mp_snapshot *s = fx_new();
	fx_symbol(s, 0x10, UINT32_MAX, 1, "rec", "r.c", 5u);
	fx_symbol(s, 0x20, UINT32_MAX, 1, "rec", "r.c", 7u);
	fx_symbol(s, 0x30, UINT32_MAX, 1, "main", "r.c", 20u);
	/* rec (line 5) <- rec (line 5) <- rec (line 7) <- main */
	fx_stack(s, 4, PC(0x10), PC(0x10), PC(0x20), PC(0x30));
	fx_trace(s, 0, 100, 2, 3, 300, 100);

	struct mp_profile *p =
		build(s, MP_GROUP_FUNCTION, MP_SORT_BYTES, true, NULL, 0);
	CHECK(p, {"rec@r.c:0", 300, 6, 9, 900, 300},
	      {"main@r.c:20", 100, 2, 3, 300, 100});
	cr_expect_eq(p->entries[0].ntraces, 3);
	mp_profile_free(p);

	p = build(s, MP_GROUP_LINE, MP_SORT_BYTES, true, NULL, 0);
	CHECK(p, {"rec@r.c:5", 200, 4, 6, 600, 200},
	      {"rec@r.c:7", 100, 2, 3, 300, 100},
	      {"main@r.c:20", 100, 2, 3, 300, 100});
	mp_profile_free(p);

	p = build(s, MP_GROUP_FILE, MP_SORT_BYTES, true, NULL, 0);
	CHECK(p, {"?@r.c:0", 400, 8, 12, 1200, 400});
	mp_profile_free(p);

	/* Not cumulative: the innermost frame only. */
	p = build(s, MP_GROUP_FUNCTION, MP_SORT_BYTES, false, NULL, 0);
	CHECK(p, {"rec@r.c:5", 100, 2, 3, 300, 100});
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, cumulative_rejected_for_traceback_and_module)
{
	struct mp_snapshot *s = fx_main();
	struct mp_profile *p = NULL;
	struct mp_profile_opts o = {.by = MP_GROUP_TRACEBACK,
				    .cumulative = true};
	cr_expect_eq(mp_profile_build(s, &o, &p), MP_ERR_USAGE);
	o.by = MP_GROUP_MODULE;
	cr_expect_eq(mp_profile_build(s, &o, &p), MP_ERR_USAGE);
	o.by = (enum mp_group_by)42;
	o.cumulative = false;
	cr_expect_eq(mp_profile_build(s, &o, &p), MP_ERR_USAGE);
	cr_expect_null(p);
	mp_snapshot_free(s);
}

Test(profile, corrupt_stack_index_fails)
{
	struct mp_snapshot *s = fx_new();
	fx_stack(s, 0);
	fx_trace(s, 3, 1, 1, 1, 1, 1);
	struct mp_profile *p = NULL;
	struct mp_profile_opts o = {.by = MP_GROUP_LINE};
	cr_expect_eq(mp_profile_build(s, &o, &p), MP_ERR_CORRUPT);
	cr_expect_null(p);
	mp_snapshot_free(s);
}

Test(profile, ties_break_by_key_known_before_unknown)
{
	struct mp_snapshot *s = fx_new();
	fx_symbol(s, 0x10, UINT32_MAX, 1, "f", "b.c", 1u);
	fx_symbol(s, 0x20, UINT32_MAX, 1, "g", "a.c", 9u);
	fx_symbol(s, 0x30, UINT32_MAX, 1, "h", "a.c", 2u);
	fx_stack(s, 1, PC(0x40)); /* unknown */
	fx_stack(s, 1, PC(0x10));
	fx_stack(s, 1, PC(0x20));
	fx_stack(s, 1, PC(0x30));
	fx_stack(s, 1, PC(0x38)); /* unknown, lower address */
	for (uint32_t i = 0; i < 5; i++)
		fx_trace(s, i, 16, 1, 1, 16, 16);

	struct mp_profile *p =
		build(s, MP_GROUP_LINE, MP_SORT_BYTES, false, NULL, 0);
	CHECK(p, {"h@a.c:2", 16, 1, 1, 16, 16}, {"g@a.c:9", 16, 1, 1, 16, 16},
	      {"f@b.c:1", 16, 1, 1, 16, 16}, {"0x38", 16, 1, 1, 16, 16},
	      {"0x40", 16, 1, 1, 16, 16});
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, zero_groups_are_kept)
{
	struct mp_snapshot *s = fx_new();
	fx_symbol(s, 0x10, UINT32_MAX, 1, "churn", "c.c", 1u);
	fx_symbol(s, 0x20, UINT32_MAX, 1, "hold", "c.c", 2u);
	fx_stack(s, 1, PC(0x10));
	fx_stack(s, 1, PC(0x20));
	fx_trace(s, 0, 0, 0, 1000, 64000, 0);
	fx_trace(s, 1, 32, 1, 1, 32, 32);

	struct mp_profile *p =
		build(s, MP_GROUP_LINE, MP_SORT_ALLOCS, false, NULL, 0);
	CHECK(p, {"churn@c.c:1", 0, 0, 1000, 64000, 0},
	      {"hold@c.c:2", 32, 1, 1, 32, 32});
	mp_profile_free(p);
	p = build(s, MP_GROUP_LINE, MP_SORT_BYTES, false, NULL, 0);
	CHECK(p, {"hold@c.c:2", 32, 1, 1, 32, 32},
	      {"churn@c.c:1", 0, 0, 1000, 64000, 0});
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, empty_snapshot_has_no_entries)
{
	struct mp_snapshot *s = fx_new();
	struct mp_profile *p =
		build(s, MP_GROUP_TRACEBACK, MP_SORT_BYTES, false, NULL, 0);
	cr_expect_eq(p->nentries, 0);
	struct mp_profile_entry rest;
	cr_expect_eq(mp_profile_rest(p, 10, &rest), 0);
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, limit_sums_the_rest)
{
	struct mp_snapshot *s = fx_main();
	struct mp_profile *p =
		build(s, MP_GROUP_LINE, MP_SORT_BYTES, false, NULL, 0);
	struct mp_profile_entry rest;

	/* -n 3: three shown, 4 others. */
	cr_expect_eq(mp_profile_rest(p, 3, &rest), 4);
	cr_expect_eq(rest.bytes, 80 + 64 + 20 + 8);
	cr_expect_eq(rest.blocks, 6 + 2 + 1 + 1);
	cr_expect_eq(rest.allocs, 105 + 9 + 1 + 1);
	cr_expect_eq(rest.alloc_bytes, 3050 + 764 + 20 + 8);
	cr_expect_eq(rest.peak_bytes, 50 + 64 + 0 + 8);
	cr_expect_eq(rest.ntraces, 2 + 2 + 1 + 1);
	cr_expect_null(rest.frames);
	/* -n 0 (all) and -n beyond the end: nothing left. */
	cr_expect_eq(mp_profile_rest(p, 0, &rest), 0);
	cr_expect_eq(rest.bytes, 0);
	cr_expect_eq(mp_profile_rest(p, 7, &rest), 0);
	cr_expect_eq(mp_profile_rest(p, 100, &rest), 0);
	cr_expect_eq(mp_profile_rest(p, 6, &rest), 1);
	cr_expect_eq(rest.bytes, 8);
	mp_profile_free(p);
	mp_snapshot_free(s);
}

Test(profile, parse_and_name_keys)
{
	enum mp_group_by by;
	enum mp_sort_by so;
	const char *g[] = {"traceback", "function", "line", "file", "module"};
	for (int i = 0; i < 5; i++) {
		cr_assert(mp_group_by_parse(g[i], &by));
		cr_expect_eq(by, (enum mp_group_by)i);
		cr_expect_str_eq(mp_group_by_name(by), g[i]);
	}
	const char *o[] = {"bytes", "blocks", "allocs", "peak"};
	for (int i = 0; i < 4; i++) {
		cr_assert(mp_sort_by_parse(o[i], &so));
		cr_expect_eq(so, (enum mp_sort_by)i);
		cr_expect_str_eq(mp_sort_by_name(so), o[i]);
	}
	cr_expect_not(mp_group_by_parse("lineno", &by));
	cr_expect_not(mp_sort_by_parse("size", &so));
	cr_expect_not(mp_group_by_parse("", &by));
}

/* ---- filters (tracemalloc's Filter) ---- */

static bool keep(const struct mp_resolved_frame *f, size_t n, bool all,
		 size_t nf, ...)
{
	struct mp_frame_filter ff[8];
	va_list ap;
	va_start(ap, nf);
	for (size_t i = 0; i < nf; i++) {
		ff[i].inclusive = va_arg(ap, int);
		ff[i].glob = va_arg(ap, const char *);
	}
	va_end(ap);
	struct mp_filters flt = {nf ? ff : NULL, nf, all};
	return mp_filters_keep(&flt, f, n);
}

#define IN true
#define EX false

static const struct mp_resolved_frame two_frames[] = {
	{"make_buffer", "/src/demo.c", 42, "/home/u/demo", 0x1200},
	{"main", "/src/main.c", 60, "/usr/bin/app", 0x1300},
};

Test(profile, filter_no_inclusive_keeps_unless_excluded)
{
	const struct mp_resolved_frame *f = two_frames;
	cr_expect(mp_filters_keep(NULL, f, 2));
	cr_expect(keep(f, 2, false, 0));
	cr_expect(keep(f, 2, false, 1, EX, "nomatch"));
	cr_expect_not(keep(f, 2, false, 1, EX, "make_*"));
	cr_expect_not(keep(f, 2, false, 2, EX, "nomatch", EX, "make_*"));
}

Test(profile, filter_any_inclusive_match_keeps)
{
	const struct mp_resolved_frame *f = two_frames;
	cr_expect_not(keep(f, 2, false, 1, IN, "nomatch"));
	cr_expect(keep(f, 2, false, 1, IN, "make_buffer"));
	cr_expect(keep(f, 2, false, 2, IN, "nomatch", IN, "make_buffer"));
	cr_expect(keep(f, 2, false, 2, IN, "make_buffer", IN, "nomatch"));
	cr_expect_not(keep(f, 2, false, 2, IN, "nomatch", IN, "other"));
}

Test(profile, filter_any_exclusive_match_drops_even_if_included)
{
	const struct mp_resolved_frame *f = two_frames;
	cr_expect_not(keep(f, 2, false, 2, IN, "make_buffer", EX, "demo.c"));
	cr_expect_not(keep(f, 2, false, 2, EX, "demo.c", IN, "make_buffer"));
	cr_expect(keep(f, 2, false, 2, IN, "make_buffer", EX, "main"));
	cr_expect_not(keep(f, 2, true, 2, IN, "make_buffer", EX, "main"));
}

Test(profile, filter_innermost_frame_unless_all_frames)
{
	const struct mp_resolved_frame *f = two_frames;
	/* main is the caller: only all_frames sees it. */
	cr_expect_not(keep(f, 2, false, 1, IN, "main"));
	cr_expect(keep(f, 2, true, 1, IN, "main"));
	cr_expect(keep(f, 2, false, 1, EX, "main"));
	cr_expect_not(keep(f, 2, true, 1, EX, "main"));
	cr_expect_not(keep(f, 2, false, 1, IN, "app"));
	cr_expect(keep(f, 2, true, 1, IN, "app"));
}

Test(profile, filter_matches_function_file_and_module_paths)
{
	const struct mp_resolved_frame *f = two_frames;
	const char *yes[] = {"make_buffer", "make_*",  "/src/demo.c",  "demo.c",
			     "*.c",	    "*/src/*", "/home/u/demo", "demo",
			     "/home/*",	    "*"};
	const char *no[] = {"make",	 "src",	     "42",    "demo.h",
			    "/src/demo", "u/demo.c", "0x1200"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
		cr_expect(keep(f, 1, false, 1, IN, yes[i]), "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
		cr_expect_not(keep(f, 1, false, 1, IN, no[i]), "%s", no[i]);
}

Test(profile, filter_unknown_fields_and_empty_stacks_never_match)
{
	const struct mp_resolved_frame unknown = {NULL, NULL, 0, NULL, 0x40};
	cr_expect_not(keep(&unknown, 1, false, 1, IN, "*"));
	cr_expect(keep(&unknown, 1, false, 1, EX, "*"));
	/* An empty stack (only allocator frames) has no frame to test. */
	cr_expect_not(keep(NULL, 0, false, 1, IN, "*"));
	cr_expect_not(keep(NULL, 0, true, 1, IN, "*"));
	cr_expect(keep(NULL, 0, true, 1, EX, "*"));
	cr_expect(keep(NULL, 0, false, 0));
}

static struct mp_profile *build_filtered(const struct mp_snapshot *s,
					 enum mp_group_by by, bool all,
					 const char *const *globs,
					 size_t nglobs, size_t nf, ...)
{
	struct mp_frame_filter ff[8];
	va_list ap;
	va_start(ap, nf);
	for (size_t i = 0; i < nf; i++) {
		ff[i].inclusive = va_arg(ap, int);
		ff[i].glob = va_arg(ap, const char *);
	}
	va_end(ap);
	struct mp_filters flt = {ff, nf, all};
	struct mp_profile_opts o = {
		.by = by,
		.alloc = {.globs = globs, .nglobs = nglobs},
		.filters = &flt,
	};
	struct mp_profile *p = NULL;
	cr_assert_eq(mp_profile_build(s, &o, &p), MP_OK);
	return p;
}

Test(profile, filters_in_profile_build_keep_totals)
{
	struct mp_snapshot *s = fx_main();
	struct mp_profile *p = build_filtered(s, MP_GROUP_LINE, false, NULL, 0,
					      1, EX, "libfoo.so");
	CHECK(p, {"make_buffer@/src/demo.c:42", 4096, 1, 11, 45056, 10485760},
	      {"make_buffer@/src/demo.c:43", 1000, 10, 10, 1000, 2000},
	      {"xmalloc@/src/demo.c:10", 300, 3, 5, 500, 0},
	      {"inl_helper@/src/util.h:5", 64, 2, 9, 764, 64},
	      {"-", 8, 1, 1, 8, 8});
	cr_expect_eq(p->totals.live_bytes, 5568); /* the snapshot's */
	cr_expect_eq(p->totals.live_blocks, 24);
	mp_profile_free(p);

	/* The innermost file's base name: util.h, libfoo and the empty
	 * stack go. */
	p = build_filtered(s, MP_GROUP_LINE, false, NULL, 0, 1, IN, "demo.c");
	CHECK(p, {"make_buffer@/src/demo.c:42", 4096, 1, 11, 45056, 10485760},
	      {"make_buffer@/src/demo.c:43", 1000, 10, 10, 1000, 2000},
	      {"xmalloc@/src/demo.c:10", 300, 3, 5, 500, 0});
	mp_profile_free(p);

	/* main is in every stack but the empty one. */
	p = build_filtered(s, MP_GROUP_FUNCTION, true, NULL, 0, 1, IN, "main");
	cr_expect_eq(p->nentries, 5);
	cr_expect_eq(p->entries[4].nframes, 1); /* no empty-stack group */
	mp_profile_free(p);
	p = build_filtered(s, MP_GROUP_FUNCTION, false, NULL, 0, 1, IN, "main");
	cr_expect_eq(p->nentries, 0);
	mp_profile_free(p);

	/* Filters see the frames left after the allocator's are dropped:
	 * with --alloc-fn xmalloc, T2's innermost is make_buffer:42. */
	const char *g[] = {"xmalloc"};
	p = build_filtered(s, MP_GROUP_LINE, false, g, 1, 1, IN, "*malloc");
	cr_expect_eq(p->nentries, 0);
	mp_profile_free(p);
	p = build_filtered(s, MP_GROUP_LINE, false, NULL, 0, 1, IN, "*malloc");
	CHECK(p, {"xmalloc@/src/demo.c:10", 300, 3, 5, 500, 0});
	mp_profile_free(p);

	/* In cumulative mode a kept trace counts in each of its frames. */
	struct mp_frame_filter ff[] = {{true, "inl_helper"}};
	struct mp_filters flt = {ff, 1, false};
	struct mp_profile_opts o = {
		.by = MP_GROUP_FUNCTION, .cumulative = true, .filters = &flt};
	cr_assert_eq(mp_profile_build(s, &o, &p), MP_OK);
	CHECK(p, {"build@/src/demo.c:70", 64, 2, 9, 764, 64},
	      {"inl_helper@/src/util.h:5", 64, 2, 9, 764, 64},
	      {"main@/src/demo.c:60", 64, 2, 9, 764, 64});
	mp_profile_free(p);
	mp_snapshot_free(s);
}

/* ---- JSON writer ---- */

struct memout {
	char *buf;
	size_t len;
	FILE *f;
};

static void mo_open(struct memout *m)
{
	m->buf = NULL;
	m->len = 0;
	m->f = open_memstream(&m->buf, &m->len);
	cr_assert_not_null(m->f);
}

static const char *mo_close(struct memout *m)
{
	fclose(m->f);
	return m->buf;
}

static char *json_string_of(const char *s, size_t len)
{
	struct memout m;
	struct mp_json j;
	mo_open(&m);
	mp_json_init(&j, m.f, false);
	mp_json_string_len(&j, s, len);
	cr_expect_eq(mp_json_finish(&j), MP_OK);
	mo_close(&m);
	return m.buf;
}

#define EXPECT_JSON_STR(lit, want)                                 \
	do {                                                       \
		char *got_ = json_string_of(lit, sizeof(lit) - 1); \
		cr_expect_str_eq(got_, want);                      \
		free(got_);                                        \
	} while (0)

Test(profile, json_escapes_quotes_backslash_and_controls)
{
	EXPECT_JSON_STR("plain", "\"plain\"\n");
	EXPECT_JSON_STR("a\"b\\c/d", "\"a\\\"b\\\\c/d\"\n");
	EXPECT_JSON_STR("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"\n");
	EXPECT_JSON_STR("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"\n");
	EXPECT_JSON_STR("a\0b", "\"a\\u0000b\"\n");
}

Test(profile, json_keeps_valid_utf8_and_replaces_invalid_bytes)
{
	/* é, €, U+1F600, U+10FFFF pass through. */
	EXPECT_JSON_STR(
		"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf",
		"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"\n");
	EXPECT_JSON_STR("a\xff"
			"b",
			"\"a\\ufffdb\"\n");
	EXPECT_JSON_STR("\x80", "\"\\ufffd\"\n"); /* lone continuation */
	EXPECT_JSON_STR("\xc0\xaf", "\"\\ufffd\\ufffd\"\n"); /* overlong */
	EXPECT_JSON_STR("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"\n");
	EXPECT_JSON_STR("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"\n");
	EXPECT_JSON_STR("\xf4\x90\x80\x80",
			"\"\\ufffd\\ufffd\\ufffd\\ufffd\"\n"); /* > U+10FFFF */
	EXPECT_JSON_STR("x\xc3", "\"x\\ufffd\"\n"); /* truncated at end */
	EXPECT_JSON_STR("\xe2\x82z", "\"\\ufffd\\ufffdz\"\n");
}

Test(profile, json_document_compact_and_pretty)
{
	struct memout m;
	struct mp_json j;

	mo_open(&m);
	mp_json_init(&j, m.f, false);
	mp_json_begin_object(&j);
	mp_json_key(&j, "a");
	mp_json_begin_array(&j);
	mp_json_uint(&j, 1);
	mp_json_null(&j);
	mp_json_string(&j, NULL);
	mp_json_bool(&j, true);
	mp_json_uint(&j, UINT64_MAX);
	mp_json_end_array(&j);
	mp_json_key(&j, "o");
	mp_json_begin_object(&j);
	mp_json_end_object(&j);
	mp_json_key(&j, "k\"");
	mp_json_hex(&j, 0x7f12ab);
	mp_json_kv_bool(&j, "f", false);
	mp_json_end_object(&j);
	cr_expect_eq(mp_json_finish(&j), MP_OK);
	cr_expect_str_eq(mo_close(&m),
			 "{\"a\":[1,null,null,true,18446744073709551615],"
			 "\"o\":{},\"k\\\"\":\"0x7f12ab\",\"f\":false}\n");
	free(m.buf);

	mo_open(&m);
	mp_json_init(&j, m.f, true);
	mp_json_begin_object(&j);
	mp_json_kv_uint(&j, "n", 2);
	mp_json_key(&j, "e");
	mp_json_begin_array(&j);
	mp_json_begin_object(&j);
	mp_json_kv_string(&j, "s", "x");
	mp_json_end_object(&j);
	mp_json_end_array(&j);
	mp_json_key(&j, "z");
	mp_json_begin_array(&j);
	mp_json_end_array(&j);
	mp_json_end_object(&j);
	cr_expect_eq(mp_json_finish(&j), MP_OK);
	cr_expect_str_eq(mo_close(&m), "{\n"
				       "  \"n\": 2,\n"
				       "  \"e\": [\n"
				       "    {\n"
				       "      \"s\": \"x\"\n"
				       "    }\n"
				       "  ],\n"
				       "  \"z\": []\n"
				       "}\n");
	free(m.buf);
}

Test(profile, json_reports_misuse)
{
	struct memout m;
	struct mp_json j;

	mo_open(&m);
	mp_json_init(&j, m.f, false);
	mp_json_begin_object(&j);
	mp_json_uint(&j, 1); /* no key */
	mp_json_end_object(&j);
	cr_expect_eq(mp_json_finish(&j), MP_ERR_USAGE);
	mo_close(&m);
	free(m.buf);

	mo_open(&m);
	mp_json_init(&j, m.f, false);
	mp_json_begin_array(&j);
	cr_expect_eq(mp_json_finish(&j), MP_ERR_USAGE); /* unclosed */
	mo_close(&m);
	free(m.buf);

	mo_open(&m);
	mp_json_init(&j, m.f, false);
	mp_json_begin_array(&j);
	mp_json_end_object(&j); /* wrong end */
	cr_expect_eq(mp_json_finish(&j), MP_ERR_USAGE);
	mo_close(&m);
	free(m.buf);
}

Test(profile, json_frames_and_totals_shape)
{
	struct memout m;
	struct mp_json j;
	struct mp_resolved_frame f[2] = {
		{"make_buffer", "/src/demo.c", 42, "/home/u/demo", 0x1200},
		{NULL, NULL, 0, NULL, 0},
	};
	struct mp_totals t = {1, 2, 3, 4, 5, 6};

	mo_open(&m);
	mp_json_init(&j, m.f, false);
	mp_json_begin_object(&j);
	mp_json_key(&j, "totals");
	mp_json_totals(&j, &t);
	mp_json_key(&j, "frames");
	mp_json_frames(&j, f, 2);
	mp_json_end_object(&j);
	cr_expect_eq(mp_json_finish(&j), MP_OK);
	cr_expect_str_eq(
		mo_close(&m),
		"{\"totals\":{\"live_bytes\":1,\"live_blocks\":2,"
		"\"peak_bytes\":3,\"allocs\":4,\"frees\":5,\"alloc_bytes\":6},"
		"\"frames\":[{\"function\":\"make_buffer\",\"file\":"
		"\"/src/demo.c\",\"line\":42,\"module\":\"/home/u/demo\","
		"\"address\":\"0x1200\"},{\"function\":null,\"file\":null,"
		"\"line\":null,\"module\":null,\"address\":null}]}\n");
	free(m.buf);
}

Test(profile, json_writes_signed_integers)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct mp_json j;
	mp_json_init(&j, f, false);
	mp_json_begin_object(&j);
	mp_json_kv_int(&j, "neg", -5000);
	mp_json_kv_int(&j, "pos", 40960);
	mp_json_kv_int(&j, "min", INT64_MIN);
	mp_json_end_object(&j);
	cr_assert_eq(mp_json_finish(&j), MP_OK);
	fclose(f);
	cr_expect_str_eq(buf, "{\"neg\":-5000,\"pos\":40960,"
			      "\"min\":-9223372036854775808}\n");
	free(buf);
}

/* A 2 KB file whose 200 stacks of 1024 pcs each expand to 256 inline
 * frames: 52M frames, 2 GB, before the cap (found by the fuzzer). */
Test(profile, resolved_stacks_are_capped)
{
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei;
	cr_assert_eq(mp_snapshot_open(MP_SOURCE_DIR
				      "/testdata/fuzz/regressions/reader/"
				      "inline-chains-expanding-to-52M-frames"
				      ".memprof",
				      &s, &ei),
		     MP_OK, "%s", ei.msg);
	cr_assert_gt(s->nstacks, 0);
	for (uint32_t i = 0; i < s->nstacks; i++) {
		struct mp_resolved_frame *f = NULL;
		size_t n = 0;
		cr_assert_eq(mp_stack_resolve(s, i, NULL, &f, &n), MP_OK);
		cr_expect_leq(n, MP_RESOLVED_MAX + 255, "stack %u: %zu frames",
			      i, n);
		cr_expect_geq(n, MP_RESOLVED_MAX, "stack %u: %zu frames", i, n);
		free(f);
	}
	mp_snapshot_free(s);
}
