/*
 * test_symbolize.c - mp_symbolize() and the symbol cache on the test
 * process itself.
 *
 * The snapshot is built by hand: modules from dl_iterate_phdr() (with their
 * GNU build-ids) and stacks holding return addresses captured in the
 * fixtures of symbolize_fixture.c, whose expected lines those fixtures
 * record with __LINE__.
 */
/* The tests assert source lines of this file: keep its layout. */
/* clang-format off */
#include <criterion/criterion.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "symbolize_fixture.h"
#include "testutil.h"
#include "trace/trace_internal.h"

#define SYMT_MAX_MODULES 128

struct symt_modules {
	struct mp_module v[SYMT_MAX_MODULES];
	size_t n;
};

static void symt_build_id(struct dl_phdr_info *info, const ElfW(Phdr) *ph,
			  struct mp_module *m)
{
	const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
	const char *end = p + ph->p_memsz;
	size_t align = ph->p_align == 8 ? 8 : 4;

	while (p + sizeof(ElfW(Nhdr)) <= end) {
		const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
		size_t name = (nh->n_namesz + align - 1) & ~(align - 1);
		size_t desc = (nh->n_descsz + align - 1) & ~(align - 1);
		const char *d = p + sizeof(*nh) + name;

		if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
		    memcmp(p + sizeof(*nh), "GNU", 4) == 0 &&
		    nh->n_descsz <= sizeof(m->build_id)) {
			memcpy(m->build_id, d, nh->n_descsz);
			m->build_id_len = nh->n_descsz;
			return;
		}
		p = d + desc;
	}
}

static int symt_add_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct symt_modules *mods = arg;
	struct mp_module *m;
	uint64_t lo = UINT64_MAX, hi = 0;

	(void)size;
	if (mods->n == SYMT_MAX_MODULES)
		return 1;
	m = &mods->v[mods->n];
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_LOAD) {
			if (info->dlpi_addr + ph->p_vaddr < lo)
				lo = info->dlpi_addr + ph->p_vaddr;
			if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
				hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		} else if (ph->p_type == PT_NOTE && !m->build_id_len) {
			symt_build_id(info, ph, m);
		}
	}
	if (lo >= hi)
		return 0;
	m->base = info->dlpi_addr;
	m->start = lo;
	m->end = hi;
	/* The main program has an empty name; the reader stores its path. */
	if (info->dlpi_name && *info->dlpi_name) {
		m->path = strdup(info->dlpi_name);
	} else {
		char buf[4096];
		ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

		cr_assert_gt(n, 0);
		buf[n] = '\0';
		m->path = strdup(buf);
	}
	cr_assert_not_null(m->path);
	mods->n++;
	return 0;
}

/* A snapshot of this process's modules and the given stacks. */
static struct mp_snapshot *symt_snapshot(const uint64_t *const *stacks,
					 const uint32_t *depths, size_t nstacks)
{
	static struct symt_modules mods;
	struct mp_snapshot *snap = mp__snapshot_new();

	cr_assert_not_null(snap);
	mods.n = 0;
	dl_iterate_phdr(symt_add_module, &mods);
	cr_assert_gt(mods.n, 1);
	snap->modules = mp__alloc(snap, mods.n * sizeof(*snap->modules));
	cr_assert_not_null(snap->modules);
	for (size_t i = 0; i < mods.n; i++) {
		snap->modules[i] = mods.v[i];
		snap->modules[i].path = mp__strdup(snap, mods.v[i].path);
		free(mods.v[i].path);
	}
	snap->nmodules = mods.n;
	snap->stacks = mp__alloc(snap, nstacks * sizeof(*snap->stacks));
	cr_assert_not_null(snap->stacks);
	for (size_t i = 0; i < nstacks; i++) {
		snap->stacks[i].depth = depths[i];
		snap->stacks[i].pcs = mp__alloc(snap, depths[i] * sizeof(uint64_t));
		cr_assert_not_null(snap->stacks[i].pcs);
		memcpy(snap->stacks[i].pcs, stacks[i], depths[i] * sizeof(uint64_t));
	}
	snap->nstacks = nstacks;
	return snap;
}

static struct mp_snapshot *symt_one_pc(uint64_t pc)
{
	const uint64_t *stacks[] = { &pc };
	const uint32_t depths[] = { 1 };

	return symt_snapshot(stacks, depths, 1);
}

/* Symbolizes snap, which must hold exactly one distinct pc, and returns it. */
static const struct mp_symbol *symt_run_one(struct mp_snapshot *snap)
{
	struct mp_errinfo ei = { "" };

	cr_assert_eq(mp_symbolize(snap, &ei), MP_OK, "%s", ei.msg);
	cr_assert(snap->has_symbols);
	cr_assert_eq(snap->nsymbols, 1);
	return &snap->symbols[0];
}

static const char *symt_base(const char *path)
{
	const char *slash;

	cr_assert_not_null(path);
	slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* The index of the module holding the executable, as the reader has it. */
static uint32_t symt_exe_module(const struct mp_snapshot *snap, uint64_t pc)
{
	for (size_t i = 0; i < snap->nmodules; i++) {
		if (pc >= snap->modules[i].start && pc < snap->modules[i].end)
			return (uint32_t)i;
	}
	cr_assert_fail("pc %#llx in no module", (unsigned long long)pc);
	return UINT32_MAX;
}

static void symt_frame_is(const struct mp_frame *f, const char *function,
			  const char *file, int line)
{
	cr_assert_str_eq(f->function, function);
	cr_assert_str_eq(symt_base(f->file), file);
	cr_assert_eq(f->line, (uint32_t)line, "%s: line %u, want %d",
		     function, f->line, line);
	/* Paths are made whole with the CU's comp_dir. */
	cr_assert_eq(f->file[0], '/', "%s", f->file);
}

Test(symbolize, names_plain_call)
{
	struct mp_snapshot *snap;
	const struct mp_symbol *sym;

	symfix_plain();
	snap = symt_one_pc(symfix_pc);
	sym = symt_run_one(snap);
	cr_assert_eq(sym->pc, symfix_pc);
	cr_assert_eq(sym->module, symt_exe_module(snap, symfix_pc));
	cr_assert_eq(sym->nframes, 1);
	symt_frame_is(&sym->frames[0], "symfix_plain", "symbolize_fixture.c",
		      symfix_line_plain);
	mp_snapshot_free(snap);
}

Test(symbolize, names_inlined_call_chain)
{
	struct mp_snapshot *snap;
	const struct mp_symbol *sym;

	symfix_inline_caller();
	snap = symt_one_pc(symfix_pc);
	sym = symt_run_one(snap);
	cr_assert_eq(sym->nframes, 2);
	symt_frame_is(&sym->frames[0], "symfix_inl", "symbolize_fixture.c",
		      symfix_line_inline_inner);
	symt_frame_is(&sym->frames[1], "symfix_inline_caller",
		      "symbolize_fixture.c", symfix_line_inline_call);
	mp_snapshot_free(snap);
}

/* The asm label is recorded as DW_AT_linkage_name; a C++ one wins. */
Test(symbolize, demangles_dwarf_linkage_name)
{
	struct mp_snapshot *snap;
	const struct mp_symbol *sym;

	symfix_cxx(7);
	snap = symt_one_pc(symfix_pc);
	sym = symt_run_one(snap);
	cr_assert_eq(sym->nframes, 1);
	symt_frame_is(&sym->frames[0], "memprof::fixture(int)",
		      "symbolize_fixture.c", symfix_line_cxx);
	mp_snapshot_free(snap);
}

/* A linkage name that is no C++ name is an alias: DW_AT_name wins. */
Test(symbolize, prefers_dwarf_name_to_plain_linkage_name)
{
	struct mp_snapshot *snap;
	const struct mp_symbol *sym;

	symfix_alias();
	snap = symt_one_pc(symfix_pc);
	sym = symt_run_one(snap);
	cr_assert_eq(sym->nframes, 1);
	symt_frame_is(&sym->frames[0], "symfix_alias", "symbolize_fixture.c",
		      symfix_line_alias);
	mp_snapshot_free(snap);
}

#if defined(__x86_64__)
Test(symbolize, falls_back_to_demangled_elf_symbol)
{
	struct mp_snapshot *snap;
	const struct mp_symbol *sym;

	symfix_asm_thunk();
	snap = symt_one_pc(symfix_pc);
	sym = symt_run_one(snap);
	cr_assert_eq(sym->module, symt_exe_module(snap, symfix_pc));
	cr_assert_eq(sym->nframes, 1);
	cr_assert_str_eq(sym->frames[0].function, "memprof::asm_thunk()");
	cr_assert_null(sym->frames[0].file);
	cr_assert_eq(sym->frames[0].line, 0);
	mp_snapshot_free(snap);
}
#endif

Test(symbolize, pc_outside_modules_has_no_frames)
{
	struct mp_snapshot *snap = symt_one_pc(0x10);
	const struct mp_symbol *sym = symt_run_one(snap);

	cr_assert_eq(sym->pc, 0x10);
	cr_assert_eq(sym->module, UINT32_MAX);
	cr_assert_eq(sym->nframes, 0);
	cr_assert_null(sym->frames);
	mp_snapshot_free(snap);
}

Test(symbolize, stale_build_id_gives_no_frames)
{
	struct mp_snapshot *snap;
	const struct mp_symbol *sym;
	uint32_t exe;

	symfix_plain();
	snap = symt_one_pc(symfix_pc);
	exe = symt_exe_module(snap, symfix_pc);
	cr_assert_gt(snap->modules[exe].build_id_len, 0,
		     "the test binary must be linked with a build-id");
	snap->modules[exe].build_id[0] ^= 0xff;
	sym = symt_run_one(snap);
	cr_assert_eq(sym->module, exe);
	cr_assert_eq(sym->nframes, 0);
	mp_snapshot_free(snap);
}

Test(symbolize, missing_module_file_gives_no_frames)
{
	struct mp_snapshot *snap;
	const struct mp_symbol *sym;
	uint32_t exe;

	symfix_plain();
	snap = symt_one_pc(symfix_pc);
	exe = symt_exe_module(snap, symfix_pc);
	snap->modules[exe].path = mp__strdup(snap, "/nonexistent/memprof-x");
	sym = symt_run_one(snap);
	cr_assert_eq(sym->module, exe);
	cr_assert_eq(sym->nframes, 0);
	mp_snapshot_free(snap);
}

Test(symbolize, dedups_pcs_across_stacks_and_sorts_them)
{
	uint64_t plain, inl, cxx;
	struct mp_snapshot *snap;
	struct mp_errinfo ei = { "" };

	symfix_plain();
	plain = symfix_pc;
	symfix_inline_caller();
	inl = symfix_pc;
	symfix_cxx(1);
	cxx = symfix_pc;

	const uint64_t s0[] = { cxx, plain, 0x10, inl };
	const uint64_t s1[] = { inl, inl, cxx };
	const uint64_t s2[] = { plain };
	const uint64_t *stacks[] = { s0, s1, s2 };
	const uint32_t depths[] = { 4, 3, 1 };

	snap = symt_snapshot(stacks, depths, 3);
	cr_assert_eq(mp_symbolize(snap, &ei), MP_OK, "%s", ei.msg);
	cr_assert_eq(snap->nsymbols, 4);
	for (size_t i = 1; i < snap->nsymbols; i++)
		cr_assert_lt(snap->symbols[i - 1].pc, snap->symbols[i].pc);
	cr_assert_eq(snap->symbols[0].pc, 0x10);
	for (size_t i = 1; i < snap->nsymbols; i++) {
		cr_assert_geq(snap->symbols[i].nframes, 1);
		if (snap->symbols[i].pc == inl)
			cr_assert_eq(snap->symbols[i].nframes, 2);
	}
	/* Both fixtures live in one file: its name is stored once. */
	cr_assert_eq(snap->symbols[1].frames[0].file,
		     snap->symbols[2].frames[0].file);
	mp_snapshot_free(snap);
}

Test(symbolize, empty_snapshot_has_empty_symbols)
{
	struct mp_snapshot *snap = symt_snapshot(NULL, NULL, 0);
	struct mp_errinfo ei = { "" };

	cr_assert_eq(mp_symbolize(snap, &ei), MP_OK, "%s", ei.msg);
	cr_assert(snap->has_symbols);
	cr_assert_eq(snap->nsymbols, 0);
	mp_snapshot_free(snap);
}

static uint64_t symt_qsort_pc;

static int symt_cmp(const void *a, const void *b)
{
	symt_qsort_pc = (uint64_t)(uintptr_t)__builtin_return_address(0);
	__asm__ volatile("" ::: "memory");
	return *(const int *)a - *(const int *)b;
}

/* A pc inside libc (qsort calling back): named, in libc's module. */
Test(symbolize, names_pc_in_shared_library)
{
	int v[] = { 3, 1, 2 };
	struct mp_snapshot *snap;
	const struct mp_symbol *sym;

	qsort(v, 3, sizeof(v[0]), symt_cmp);
	snap = symt_one_pc(symt_qsort_pc);
	sym = symt_run_one(snap);
	cr_assert_neq(sym->module, UINT32_MAX);
	cr_assert(strstr(snap->modules[sym->module].path, "libc"),
		  "%s", snap->modules[sym->module].path);
	cr_assert_geq(sym->nframes, 1);
	cr_assert_not_null(sym->frames[sym->nframes - 1].function);
	mp_snapshot_free(snap);
}

/*
 * Every 16th byte of libc's mapping, and of the executable's: tens of
 * thousands of distinct pcs, each in its right module, in order.
 */
Test(symbolize, handles_many_distinct_pcs, .timeout = 60)
{
	struct mp_snapshot *snap = symt_one_pc(0);
	struct mp_errinfo ei = { "" };
	size_t n = 0, cap = 0, named = 0;
	uint64_t *pcs = NULL;

	for (size_t i = 0; i < snap->nmodules; i++) {
		const struct mp_module *m = &snap->modules[i];

		if (!strstr(m->path, "libc.so") && i != 0)
			continue;
		for (uint64_t pc = m->start + 1; pc < m->end; pc += 16) {
			if (n == cap) {
				cap = cap ? cap * 2 : 65536;
				pcs = realloc(pcs, cap * sizeof(*pcs));
				cr_assert_not_null(pcs);
			}
			pcs[n++] = pc;
		}
	}
	cr_assert_gt(n, 10000);
	snap->stacks[0].pcs = pcs;
	snap->stacks[0].depth = (uint32_t)n;
	cr_assert_eq(mp_symbolize(snap, &ei), MP_OK, "%s", ei.msg);
	cr_assert_eq(snap->nsymbols, n);
	for (size_t i = 0; i < n; i++) {
		const struct mp_symbol *sym = &snap->symbols[i];

		cr_assert_eq(sym->pc, pcs[i]);
		cr_assert_neq(sym->module, UINT32_MAX);
		cr_assert(pcs[i] >= snap->modules[sym->module].start &&
			  pcs[i] < snap->modules[sym->module].end);
		named += sym->nframes > 0;
	}
	cr_assert_gt(named, n / 4);
	free(pcs);
	mp_snapshot_free(snap);
}

/* ---- the symbol cache ---- */

static bool symt_str_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/*
 * b holds the symbols of a, every pc moved by delta (the same modules
 * loaded elsewhere); strings compared by value, as they live in each
 * snapshot's own arena.
 */
static void symt_same_symbols(const struct mp_snapshot *a,
			      const struct mp_snapshot *b, uint64_t delta)
{
	cr_assert(a->has_symbols && b->has_symbols);
	cr_assert_eq(a->nsymbols, b->nsymbols);
	for (size_t i = 0; i < a->nsymbols; i++) {
		const struct mp_symbol *x = &a->symbols[i], *y = &b->symbols[i];

		cr_assert_eq(x->pc + delta, y->pc);
		cr_assert_eq(x->module, y->module);
		cr_assert_eq(x->nframes, y->nframes, "pc %#llx: %u frames, then %u",
			     (unsigned long long)x->pc, x->nframes, y->nframes);
		for (uint32_t k = 0; k < x->nframes; k++) {
			const struct mp_frame *f = &x->frames[k], *g = &y->frames[k];

			cr_assert(symt_str_same(f->function, g->function),
				  "%s vs %s", f->function, g->function);
			cr_assert(symt_str_same(f->file, g->file), "%s vs %s",
				  f->file, g->file);
			cr_assert_eq(f->line, g->line);
		}
	}
}

/*
 * A snapshot of pcs in this test binary, in libc (with debuginfo from
 * libc6-dbg) and in zlib (stripped, no debuginfo: named from .dynsym, and
 * reloaded with the standard debuginfo search when warmed), none outside.
 */
static struct mp_snapshot *symt_mixed_snapshot(void)
{
	static uint64_t pcs[8];
	const uint64_t *stacks[] = { pcs };
	uint32_t n = 0;
	int v[] = { 3, 1, 2 };

	symfix_plain();
	pcs[n++] = symfix_pc;
	symfix_inline_caller();
	pcs[n++] = symfix_pc;
	symfix_cxx(3);
	pcs[n++] = symfix_pc;
	symfix_alias();
	pcs[n++] = symfix_pc;
#if defined(__x86_64__)
	symfix_asm_thunk();
	pcs[n++] = symfix_pc;
#endif
	qsort(v, 3, sizeof(v[0]), symt_cmp);
	pcs[n++] = symt_qsort_pc;
	/* As if zlibVersion had called out from its first byte. */
	pcs[n++] = (uint64_t)(uintptr_t)zlibVersion + 1;
	return symt_snapshot(stacks, &n, 1);
}

static void symt_run_cached(struct mp_snapshot *snap, struct mp_symcache *cache)
{
	struct mp_errinfo ei = { "" };

	cr_assert_eq(mp_symbolize_cached(snap, cache, &ei), MP_OK, "%s", ei.msg);
}

Test(symcache, prewarmed_cache_gives_same_symbols)
{
	struct mp_snapshot *fresh = symt_mixed_snapshot();
	struct mp_snapshot *warm = symt_mixed_snapshot();
	struct mp_symcache *cache = mp_symcache_new();
	struct mp_errinfo ei = { "" };
	const struct mp_symbol *sym;
	size_t nwarmed;

	cr_assert_not_null(cache);
	cr_assert_eq(mp_symbolize(fresh, &ei), MP_OK, "%s", ei.msg);
	for (size_t i = 0; i < warm->nmodules; i++)
		mp_symcache_warm(cache, warm->modules[i].path);
	nwarmed = mp__symcache_nfiles(cache);
	cr_assert_geq(nwarmed, 2);
	symt_run_cached(warm, cache);
	/* Everything the snapshot needed came from the warmed entries. */
	cr_assert_eq(mp__symcache_nfiles(cache), nwarmed);
	symt_same_symbols(fresh, warm, 0);
	for (size_t i = 0; i < warm->nsymbols; i++)
		cr_assert_geq(warm->symbols[i].nframes, 1);
	sym = mp_snapshot_symbol(warm, (uint64_t)(uintptr_t)zlibVersion + 1);
	cr_assert_not_null(sym);
	cr_assert_str_eq(sym->frames[sym->nframes - 1].function, "zlibVersion");
	mp_symcache_free(cache);
	mp_snapshot_free(fresh);
	mp_snapshot_free(warm);
}

struct symt_warmer {
	struct mp_symcache *cache;
	const struct mp_snapshot *snap;
};

static void *symt_warm_all(void *arg)
{
	const struct symt_warmer *w = arg;

	/* From the last module: libc before the executable, so that the two
	 * threads meet in the middle. */
	for (size_t i = w->snap->nmodules; i-- > 0;)
		mp_symcache_warm(w->cache, w->snap->modules[i].path);
	return NULL;
}

/* Warming and symbolizing at once: the symbolizer waits for what the other
 * thread is loading and loads the rest itself, with the same result. */
Test(symcache, warmed_by_another_thread_gives_same_symbols, .timeout = 60)
{
	struct mp_snapshot *fresh = symt_mixed_snapshot();
	struct mp_errinfo ei = { "" };

	cr_assert_eq(mp_symbolize(fresh, &ei), MP_OK, "%s", ei.msg);
	for (int round = 0; round < 4; round++) {
		struct mp_snapshot *snap = symt_mixed_snapshot();
		struct symt_warmer w = { mp_symcache_new(), snap };
		pthread_t t;

		cr_assert_not_null(w.cache);
		cr_assert_eq(pthread_create(&t, NULL, symt_warm_all, &w), 0);
		symt_run_cached(snap, w.cache);
		cr_assert_eq(pthread_join(t, NULL), 0);
		symt_same_symbols(fresh, snap, 0);
		mp_symcache_free(w.cache);
		mp_snapshot_free(snap);
	}
	mp_snapshot_free(fresh);
}

/* The same files loaded at other addresses (another run, ASLR): one entry
 * per file serves both, looked up at pc - base. */
Test(symcache, module_at_another_base_symbolizes_the_same)
{
	const uint64_t delta = 0x100000000000ull;
	struct mp_snapshot *a = symt_mixed_snapshot();
	struct mp_snapshot *b = symt_mixed_snapshot();
	struct mp_symcache *cache = mp_symcache_new();
	size_t nfiles;

	cr_assert_not_null(cache);
	for (size_t i = 0; i < b->nmodules; i++) {
		b->modules[i].base += delta;
		b->modules[i].start += delta;
		b->modules[i].end += delta;
	}
	for (uint32_t d = 0; d < b->stacks[0].depth; d++)
		b->stacks[0].pcs[d] += delta;
	symt_run_cached(a, cache);
	nfiles = mp__symcache_nfiles(cache);
	cr_assert_geq(nfiles, 2);
	symt_run_cached(b, cache);
	cr_assert_eq(mp__symcache_nfiles(cache), nfiles);
	symt_same_symbols(a, b, delta);
	for (size_t i = 0; i < b->nsymbols; i++)
		cr_assert_geq(b->symbols[i].nframes, 1);
	mp_symcache_free(cache);
	mp_snapshot_free(a);
	mp_snapshot_free(b);
}

/* A loaded entry does not make a snapshot of another build trust it. */
Test(symcache, refuses_stale_build_id_after_loading_the_file)
{
	struct mp_symcache *cache = mp_symcache_new();
	struct mp_snapshot *snap;
	const struct mp_symbol *sym;
	uint32_t exe;

	cr_assert_not_null(cache);
	for (int round = 0; round < 3; round++) {
		symfix_plain();
		snap = symt_one_pc(symfix_pc);
		exe = symt_exe_module(snap, symfix_pc);
		if (round == 1)
			snap->modules[exe].build_id[0] ^= 0xff;
		symt_run_cached(snap, cache);
		cr_assert_eq(snap->nsymbols, 1);
		sym = &snap->symbols[0];
		cr_assert_eq(sym->module, exe);
		if (round == 1) {
			cr_assert_eq(sym->nframes, 0);
		} else {
			cr_assert_eq(sym->nframes, 1);
			symt_frame_is(&sym->frames[0], "symfix_plain",
				      "symbolize_fixture.c", symfix_line_plain);
		}
		mp_snapshot_free(snap);
	}
	cr_assert_eq(mp__symcache_nfiles(cache), 1);
	mp_symcache_free(cache);
}

/* /proc/PID/maps and the loader may name one file differently (/usr/lib
 * and /lib on merged-/usr systems): the entry is the file's, not the
 * name's. */
Test(symcache, shares_one_entry_between_names_of_a_file)
{
	const char *root = getenv("TMPDIR");
	char dir[4096], link[4200], exe[4096];
	struct mp_symcache *cache = mp_symcache_new();
	struct mp_snapshot *snap;
	const struct mp_symbol *sym;
	ssize_t n;

	cr_assert_not_null(cache);
	snprintf(dir, sizeof(dir), "%s/memprof-symt-XXXXXX",
		 root && *root ? root : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(link, sizeof(link), "%s/alias", dir);
	cr_assert_eq(symlink(exe, link), 0);
	mp_symcache_warm(cache, link);
	cr_assert_eq(mp__symcache_nfiles(cache), 1);
	symfix_plain();
	snap = symt_one_pc(symfix_pc);
	symt_run_cached(snap, cache);
	cr_assert_eq(mp__symcache_nfiles(cache), 1);
	sym = &snap->symbols[0];
	cr_assert_eq(sym->nframes, 1);
	symt_frame_is(&sym->frames[0], "symfix_plain", "symbolize_fixture.c",
		      symfix_line_plain);
	mp_snapshot_free(snap);
	mp_symcache_free(cache);
	unlink(link);
	rmdir(dir);
}

Test(symcache, warm_ignores_missing_files_and_no_cache)
{
	struct mp_symcache *cache = mp_symcache_new();
	struct mp_errinfo ei = { "" };
	struct mp_snapshot *snap;

	cr_assert_not_null(cache);
	mp_symcache_warm(cache, "/nonexistent/memprof-x");
	mp_symcache_warm(cache, "");
	mp_symcache_warm(cache, NULL);
	mp_symcache_warm(NULL, "/proc/self/exe");
	cr_assert_eq(mp__symcache_nfiles(cache), 0);
	cr_assert_eq(mp_symbolize_cached(NULL, cache, &ei), MP_ERR_USAGE);
	snap = symt_one_pc(0x10);
	cr_assert_eq(mp_symbolize_cached(snap, NULL, &ei), MP_ERR_USAGE);
	cr_assert(!snap->has_symbols);
	mp_snapshot_free(snap);
	mp_symcache_free(cache);
	mp_symcache_free(NULL);
}

/* ---- the symbol store (a cache directory set) ---- */

static struct mp_symcache *symt_cache_in(const char *dir)
{
	struct mp_symcache *cache = mp_symcache_new();

	cr_assert_not_null(cache);
	cr_assert(mp_symcache_set_dir(cache, dir));
	return cache;
}

/* A store for module m of snap holding one pc's frame. */
static void symt_plant(const char *dir, const struct mp_snapshot *snap,
		       uint32_t m, uint64_t addr, const char *function)
{
	const struct mp_module *mm = &snap->modules[m];
	const struct mp_frame frame = { function, "/planted/p.c", 7 };
	const struct mp__symstore_entry entry = { addr, 1, 0 };

	cr_assert_gt(mm->build_id_len, 0);
	cr_assert(mp__symstore_save(dir, mm->build_id, mm->build_id_len,
				    &entry, 1, &frame));
}

/* Every pc of a module in its store: the module's file is never loaded. */
Test(symstore, answers_a_snapshot_without_loading_its_files)
{
	char *dir = tu_tmpdir();
	struct mp_symcache *cache = symt_cache_in(dir);
	struct mp_snapshot *snap;
	const struct mp_symbol *sym;
	uint32_t exe;

	symfix_plain();
	snap = symt_one_pc(symfix_pc);
	exe = symt_exe_module(snap, symfix_pc);
	symt_plant(dir, snap, exe, symfix_pc - 1 - snap->modules[exe].base,
		   "planted");
	symt_run_cached(snap, cache);
	sym = &snap->symbols[0];
	cr_assert_eq(sym->module, exe);
	cr_assert_eq(sym->nframes, 1);
	cr_assert_str_eq(sym->frames[0].function, "planted");
	cr_assert_str_eq(sym->frames[0].file, "/planted/p.c");
	cr_assert_eq(sym->frames[0].line, 7);
	cr_assert_eq(mp__symcache_nfiles(cache), 0);
	mp_snapshot_free(snap);
	mp_symcache_free(cache);
	free(dir);
}

/* Modules symbolized with DWARF are stored; a second cache symbolizes the
 * same pcs from the stores to the same symbols, and loads only the files
 * that have none (zlib: ELF symbols only, cheap to load again). */
Test(symstore, stores_modules_with_dwarf_and_gives_the_same_symbols)
{
	char *dir = tu_tmpdir();
	struct mp_snapshot *fresh = symt_mixed_snapshot();
	struct mp_snapshot *first = symt_mixed_snapshot();
	struct mp_snapshot *second = symt_mixed_snapshot();
	struct mp_symcache *c1 = symt_cache_in(dir), *c2 = symt_cache_in(dir);
	struct mp_errinfo ei = { "" };
	uint32_t exe = symt_exe_module(first, symfix_pc);
	uint32_t z = symt_exe_module(first, (uint64_t)(uintptr_t)zlibVersion);
	size_t unstored = 0;

	cr_assert_eq(mp_symbolize(fresh, &ei), MP_OK, "%s", ei.msg);
	symt_run_cached(first, c1);
	symt_same_symbols(fresh, first, 0);
	cr_assert(mp__symstore_exists(dir, first->modules[exe].build_id,
				      first->modules[exe].build_id_len));
	cr_assert(!mp__symstore_exists(dir, first->modules[z].build_id,
				       first->modules[z].build_id_len));
	for (size_t m = 0; m < first->nmodules; m++) {
		bool used = false;

		for (size_t i = 0; i < first->nsymbols; i++)
			used |= first->symbols[i].module == m;
		unstored += used && !mp__symstore_exists(
					    dir, first->modules[m].build_id,
					    first->modules[m].build_id_len);
	}
	cr_assert_lt(unstored, mp__symcache_nfiles(c1));
	symt_run_cached(second, c2);
	symt_same_symbols(fresh, second, 0);
	cr_assert_eq(mp__symcache_nfiles(c2), unstored);
	mp_symcache_free(c1);
	mp_symcache_free(c2);
	mp_snapshot_free(fresh);
	mp_snapshot_free(first);
	mp_snapshot_free(second);
	free(dir);
}

/* A pc the store lacks: the file is loaded, and the store keeps its old
 * entries with the new one added. With the file warmed first (which skips
 * its DWARF when a store exists), the same. */
Test(symstore, a_missing_pc_is_looked_up_and_added)
{
	for (int warm = 0; warm < 2; warm++) {
		char *dir = tu_tmpdir();
		struct mp_symcache *cache = symt_cache_in(dir);
		struct mp_snapshot *snap;
		const struct mp_symbol *sym;
		struct mp__symstore *st;
		uint32_t exe;
		uint64_t addr;

		symfix_plain();
		snap = symt_one_pc(symfix_pc);
		exe = symt_exe_module(snap, symfix_pc);
		addr = symfix_pc - 1 - snap->modules[exe].base;
		symt_plant(dir, snap, exe, 1, "elsewhere");
		if (warm)
			mp_symcache_warm(cache, snap->modules[exe].path);
		symt_run_cached(snap, cache);
		sym = &snap->symbols[0];
		cr_assert_eq(sym->nframes, 1);
		symt_frame_is(&sym->frames[0], "symfix_plain",
			      "symbolize_fixture.c", symfix_line_plain);
		st = mp__symstore_load(dir, snap->modules[exe].build_id,
				       snap->modules[exe].build_id_len);
		cr_assert_not_null(st);
		cr_assert_eq(st->nentries, 2);
		cr_assert_str_eq(st->frames[mp__symstore_find(st, 1)->first]
					 .function,
				 "elsewhere");
		cr_assert_not_null(mp__symstore_find(st, addr));
		cr_assert_str_eq(st->frames[mp__symstore_find(st, addr)->first]
					 .function,
				 "symfix_plain");
		mp__symstore_free(st);
		mp_snapshot_free(snap);
		mp_symcache_free(cache);
		free(dir);
	}
}

/* A damaged store is a miss: the pc gets its real frame, and the store is
 * written anew. */
Test(symstore, a_damaged_store_is_a_miss_and_is_rewritten)
{
	char *dir = tu_tmpdir();
	struct mp_symcache *cache = symt_cache_in(dir);
	struct mp_snapshot *snap;
	const struct mp_module *mm;
	struct mp__symstore *st;
	char name[256];
	size_t at;
	FILE *f;

	symfix_plain();
	snap = symt_one_pc(symfix_pc);
	mm = &snap->modules[symt_exe_module(snap, symfix_pc)];
	symt_plant(dir, snap, symt_exe_module(snap, symfix_pc),
		   symfix_pc - 1 - mm->base, "planted");
	at = (size_t)snprintf(name, sizeof(name), "%s/", dir);
	for (uint32_t i = 0; i < mm->build_id_len; i++)
		at += (size_t)snprintf(name + at, sizeof(name) - at, "%02x",
				       mm->build_id[i]);
	snprintf(name + at, sizeof(name) - at, ".sym");
	f = fopen(name, "r+");
	cr_assert_not_null(f, "%s", name);
	fseek(f, -1, SEEK_END);
	fputc('#', f);
	fclose(f);
	symt_run_cached(snap, cache);
	cr_assert_eq(snap->symbols[0].nframes, 1);
	symt_frame_is(&snap->symbols[0].frames[0], "symfix_plain",
		      "symbolize_fixture.c", symfix_line_plain);
	st = mp__symstore_load(dir, mm->build_id, mm->build_id_len);
	cr_assert_not_null(st);
	cr_assert_eq(st->nentries, 1);
	cr_assert_str_eq(st->frames[0].function, "symfix_plain");
	mp__symstore_free(st);
	mp_snapshot_free(snap);
	mp_symcache_free(cache);
	free(dir);
}

/* Whether a file has a store is read from its build-id note, and only
 * with a directory set. */
Test(symstore, tells_which_files_have_a_store)
{
	char *dir = tu_tmpdir();
	struct mp_symcache *cache = symt_cache_in(dir);
	struct mp_symcache *none = mp_symcache_new();
	struct mp_snapshot *snap;
	uint32_t exe;

	symfix_plain();
	snap = symt_one_pc(symfix_pc);
	exe = symt_exe_module(snap, symfix_pc);
	cr_assert(!mp_symcache_stored(cache, snap->modules[exe].path));
	symt_plant(dir, snap, exe, 1, "planted");
	cr_assert(mp_symcache_stored(cache, snap->modules[exe].path));
	cr_assert(!mp_symcache_stored(none, snap->modules[exe].path));
	cr_assert(!mp_symcache_stored(cache, dir));
	cr_assert(!mp_symcache_stored(cache, "/nonexistent/memprof-x"));
	cr_assert(!mp_symcache_stored(cache, "/etc/passwd"));
	cr_assert(!mp_symcache_stored(NULL, snap->modules[exe].path));
	mp_snapshot_free(snap);
	mp_symcache_free(cache);
	mp_symcache_free(none);
	free(dir);
}
