/*
 * test_soak.c - the shim's memory stays bounded on a long run: stacks are
 * interned, blocks are counted in a table that grows with the live blocks
 * only, and nothing grows per event (tests/helpers/soak.c is the
 * workload, and measures the memory itself).
 *
 * The figures are printed as Criterion info lines, to be quoted.
 */
#include "testutil.h"

TestSuite(soak, .timeout = 60);

/* The workload's shape, from soak.c. */
#define SOAK_STACKS 320 /* 2^6 paths x 5 leaves */
#define SOAK_THREADS 4
#define SOAK_SLOTS 1024

/*
 * Growth of the shim's memory allowed from the 10% checkpoint to the end,
 * while the events grow tenfold (1.2 to 12 million). What may grow after
 * the warm-up is the timeline, a fixed array of 4096 samples of 24 bytes
 * (96 KiB) filled at one sample per 10 ms, and the odd page. 256 KiB over
 * the last 10.7 million events is one byte every 40 events: a shim that
 * leaked 16 bytes every 128 allocations failed with 712 KiB.
 */
#define SOAK_GROWTH_KB 256

struct checkpoint {
	int pct;
	unsigned long long events, live;
	long rss_kb, rss_anon_kb, data_kb, heap_kb, anon_kb, anon_virt_kb;
};

struct workload {
	unsigned stacks;
	unsigned long long allocs, alloc_bytes, frees, reallocs, live_blocks,
		live_bytes;
};

/* Reads soak's output: three checkpoints (10, 50, 100) and the workload
 * line. */
static void parse_soak(const char *out, struct checkpoint cp[3],
		       struct workload *w)
{
	int ncp = 0, nw = 0;
	for (const char *l = out; l && *l; l = strchr(l, '\n') + 1) {
		if (ncp < 3 &&
		    sscanf(l,
			   "checkpoint %d events %llu live %llu rss_kb %ld "
			   "rss_anon_kb %ld data_kb %ld heap_kb %ld anon_kb "
			   "%ld anon_virt_kb %ld",
			   &cp[ncp].pct, &cp[ncp].events, &cp[ncp].live,
			   &cp[ncp].rss_kb, &cp[ncp].rss_anon_kb,
			   &cp[ncp].data_kb, &cp[ncp].heap_kb, &cp[ncp].anon_kb,
			   &cp[ncp].anon_virt_kb) == 9)
			ncp++;
		else if (sscanf(l,
				"workload stacks %u allocs %llu alloc_bytes "
				"%llu frees %llu reallocs %llu live_blocks "
				"%llu live_bytes %llu",
				&w->stacks, &w->allocs, &w->alloc_bytes,
				&w->frees, &w->reallocs, &w->live_blocks,
				&w->live_bytes) == 7)
			nw++;
		if (!strchr(l, '\n'))
			break;
	}
	cr_assert_eq(ncp, 3, "soak printed %d checkpoints:\n%s", ncp, out);
	cr_assert_eq(nw, 1, "no workload line:\n%s", out);
	cr_assert_eq(cp[0].pct, 10);
	cr_assert_eq(cp[1].pct, 50);
	cr_assert_eq(cp[2].pct, 100);
}

static char *read_out(const char *dir, const char *name)
{
	char *p = tu_path(dir, name);
	char *s = tu_read(p, NULL);
	cr_assert_not_null(s, "no %s", p);
	free(p);
	return s;
}

/* Whether the frames of a stack go through function fn. */
static bool frames_have(const struct mp_resolved_frame *f, size_t n,
			const char *fn)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].function && !strcmp(f[i].function, fn))
			return true;
	return false;
}

Test(soak, shim_memory_stays_flat_over_millions_of_events)
{
	char *dir = tu_tmpdir();
	int st;
	struct mp_snapshot *s = tu_shim_run(dir, "soak", NULL, &st);
	cr_assert_eq(st, 0);
	char *out = read_out(dir, "soak.stdout");
	struct checkpoint cp[3], bare[3];
	struct workload w, bw;
	parse_soak(out, cp, &w);

	/* A short run bare: the anonymous memory the program has without
	 * the shim (the loader's and the libraries' .bss), the baseline. */
	char *bare_out = tu_path(dir, "bare.stdout");
	char *argv[] = {(char *)TU_HELPER("soak"), (char *)"10", (char *)"1000",
			NULL};
	cr_assert_eq(tu_run(argv, NULL, bare_out, NULL), 0);
	char *bare_text = read_out(dir, "bare.stdout");
	parse_soak(bare_text, bare, &bw);

	/* Shown with Criterion's --verbose. */
	cr_log_info("soak bare: %ld KiB anonymous (%ld KiB mapped) besides "
		    "its heap and data",
		    bare[2].anon_kb, bare[2].anon_virt_kb);
	for (int i = 0; i < 3; i++)
		cr_log_info("soak %3d%%: %llu events, %llu live blocks; shim "
			    "%ld KiB resident (%ld KiB mapped); process RSS "
			    "%ld KiB, RssAnon %ld KiB, [heap] %ld KiB",
			    cp[i].pct, cp[i].events, cp[i].live,
			    cp[i].anon_kb - bare[2].anon_kb,
			    cp[i].anon_virt_kb - bare[2].anon_virt_kb,
			    cp[i].rss_kb, cp[i].rss_anon_kb, cp[i].heap_kb);

	/* Ten times the events between the first checkpoint and the end. */
	cr_expect_eq(cp[2].events, w.allocs + w.frees);
	cr_expect(cp[2].events >= 10 * 1000 * 1000, "%llu events",
		  cp[2].events);
	cr_expect(cp[0].events * 9 < cp[2].events &&
			  cp[2].events < cp[0].events * 11,
		  "%llu events at 10%%, %llu at the end", cp[0].events,
		  cp[2].events);

	/* The measurement sees the shim: whatever its layout, it holds the
	 * live blocks' addresses and sizes (16 bytes each at the least). */
	cr_expect((cp[0].anon_kb - bare[2].anon_kb) * 1024 >=
			  (long)cp[0].live * 16,
		  "the shim's memory is not measured: %ld KiB under the "
		  "shim, %ld KiB bare",
		  cp[0].anon_kb, bare[2].anon_kb);
	/* ... and stays flat while the events grow tenfold. */
	cr_expect(cp[1].anon_kb - cp[0].anon_kb < SOAK_GROWTH_KB,
		  "the shim grew by %ld KiB from 10%% to 50%% of the events",
		  cp[1].anon_kb - cp[0].anon_kb);
	cr_expect(cp[2].anon_kb - cp[0].anon_kb < SOAK_GROWTH_KB,
		  "the shim grew by %ld KiB from 10%% to 100%% of the events",
		  cp[2].anon_kb - cp[0].anon_kb);
	cr_expect(cp[2].anon_virt_kb - cp[0].anon_virt_kb < SOAK_GROWTH_KB,
		  "the shim mapped %ld KiB more from 10%% to 100%%",
		  cp[2].anon_virt_kb - cp[0].anon_virt_kb);

	/* Stacks: the workload's, exactly, whatever the number of events;
	 * the rest are glibc's thread creation, the same every round. */
	size_t work = 0, per_leaf[5] = {0};
	static const char *const leaves[5] = {"leaf_malloc", "leaf_calloc",
					      "leaf_realloc", "leaf_memalign",
					      "leaf_aligned"};
	uint64_t allocs = 0, alloc_bytes = 0, live = 0, blocks = 0;
	for (size_t i = 0; i < s->ntraces; i++) {
		const struct mp_trace *t = &s->traces[i];
		struct mp_resolved_frame *f = NULL;
		size_t n = 0;
		cr_assert_eq(mp_stack_resolve(s, t->stack, NULL, &f, &n),
			     MP_OK);
		if (n && frames_have(f, n, "walk") &&
		    frames_have(f, n, "work")) {
			work++;
			for (int k = 0; k < 5; k++)
				if (f[0].function &&
				    !strcmp(f[0].function, leaves[k]))
					per_leaf[k]++;
			allocs += t->allocs;
			alloc_bytes += t->alloc_bytes;
			live += t->live_bytes;
			blocks += t->live_blocks;
		}
		free(f);
	}
	cr_log_info("soak: %zu stacks in the snapshot, %zu of them the "
		    "workload's; %lu allocations, %lu frees",
		    s->ntraces, work, (unsigned long)s->meta.totals.allocs,
		    (unsigned long)s->meta.totals.frees);
	cr_expect_eq(w.stacks, SOAK_STACKS);
	cr_expect_eq(work, SOAK_STACKS, "%zu workload stacks, expected %d",
		     work, SOAK_STACKS);
	for (int k = 0; k < 5; k++)
		cr_expect_eq(per_leaf[k], SOAK_STACKS / 5, "%s: %zu stacks",
			     leaves[k], per_leaf[k]);
	cr_expect(s->ntraces <= SOAK_STACKS + 8, "%zu stacks", s->ntraces);

	/* Exact figures: the workload's sites hold what soak counted, and
	 * nothing else is live at exit (soak uses no stdio; glibc frees
	 * what it allocates for a thread when the thread is joined). */
	cr_expect_eq(allocs, w.allocs,
		     "%lu allocations at the workload's "
		     "sites, soak made %llu",
		     (unsigned long)allocs, w.allocs);
	cr_expect_eq(alloc_bytes, w.alloc_bytes);
	cr_expect_eq(live, w.live_bytes);
	cr_expect_eq(blocks, w.live_blocks);
	cr_expect_eq(w.live_blocks, cp[2].live);
	cr_expect(w.live_blocks <= SOAK_THREADS * SOAK_SLOTS);
	cr_expect_eq(s->meta.totals.live_bytes, w.live_bytes);
	cr_expect_eq(s->meta.totals.live_blocks, w.live_blocks);
	cr_expect_eq(s->nblocks, w.live_blocks);
	/* A realloc of a block counts as one allocation and one free; what
	 * glibc allocated itself was all freed. */
	uint64_t extra = s->meta.totals.allocs - w.allocs;
	cr_expect_eq(s->meta.totals.frees, w.frees + w.reallocs + extra,
		     "%lu frees, soak made %llu and %llu reallocs",
		     (unsigned long)s->meta.totals.frees, w.frees, w.reallocs);
	mp_snapshot_free(s);
}

/* The shim's memory per live block and per distinct stack, measured in
 * the process (soak figures) and quoted in the README's Speed section. */
Test(soak, shim_memory_per_live_block_and_per_stack)
{
	char *dir = tu_tmpdir();
	char *snap = tu_path(dir, "f.memprof"), *env_out = NULL;
	cr_assert(asprintf(&env_out, "MEMPROF_OUTPUT=%s", snap) > 0);
	const char *env[] = {"LD_PRELOAD=" TU_SHIM, env_out,
			     "MEMPROF_LEAK_CHECK=no", NULL};
	char *out = tu_path(dir, "figures.stdout");
	char *argv[] = {(char *)TU_HELPER("soak"), (char *)"figures", NULL};
	cr_assert_eq(tu_run(argv, env, out, NULL), 0);
	char *text = read_out(dir, "figures.stdout");
	int nblocks, frames;
	unsigned nstacks;
	long block10, stack10;
	cr_assert_eq(sscanf(text,
			    "figures blocks %d block_bytes_x10 %ld stacks %u "
			    "frames %d stack_bytes_x10 %ld",
			    &nblocks, &block10, &nstacks, &frames, &stack10),
		     5, "%s", text);
	cr_log_info("shim memory: %ld.%ld bytes per live block (%d blocks), "
		    "%ld.%ld bytes per stack (%u stacks of %d frames)",
		    block10 / 10, block10 % 10, nblocks, stack10 / 10,
		    stack10 % 10, nstacks, frames);
	/* Upper bounds (a lower one only shows that the measurement sees
	 * the shim). The direct map costs 4 bytes per 32 bytes of heap the
	 * blocks span (8 for a block of 64 bytes or more), counted in whole
	 * pages of words: soak's blocks are spread over a heap the program's
	 * other allocations share, so allow 96 bytes a block. */
	cr_expect(block10 > 0 && block10 <= 960, "%ld.%ld B per block",
		  block10 / 10, block10 % 10);
	/* A trace is a header, 8 bytes a frame and its share of the 2 MiB
	 * bucket array (32 bytes at 65536 stacks): well under 64 + 16 bytes
	 * a frame. */
	cr_expect(stack10 > 0 && stack10 <= (64 + 16 * frames) * 10,
		  "%ld.%ld B per stack of %d frames", stack10 / 10,
		  stack10 % 10, frames);

	/* The stacks were interned once each. */
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {{0}};
	cr_assert_eq(mp_snapshot_open(snap, &s, &ei), MP_OK, "%s", ei.msg);
	cr_expect(s->ntraces >= nstacks + 1 && s->ntraces <= nstacks + 8,
		  "%zu stacks for %u paths and one block site", s->ntraces,
		  nstacks);
	cr_expect_eq(s->meta.totals.allocs, (uint64_t)nblocks + nstacks);
	cr_expect_eq(s->meta.totals.live_blocks, 0);
	mp_snapshot_free(s);
}
