/*
 * test_shim.c - programs run under libmemprof.so; the exact bytes, blocks
 * and allocation counts per call site are computed from the helpers' code
 * (tests/helpers/).
 */
#include "testutil.h"

TestSuite(shim, .timeout = 60);

static uint64_t sum_live(const struct mp_snapshot *s, uint64_t *blocks)
{
	uint64_t b = 0, n = 0;
	for (size_t i = 0; i < s->ntraces; i++) {
		b += s->traces[i].live_bytes;
		n += s->traces[i].live_blocks;
	}
	*blocks = n;
	return b;
}

Test(shim, c_sites_have_exact_bytes_and_blocks)
{
	char *dir = tu_tmpdir();
	int st;
	struct mp_snapshot *s = tu_shim_run(dir, "alloc_c", NULL, &st);
	cr_assert_eq(st, 0);
	tu_expect_site(s, "site_malloc", 1000, 10, 10, 1000);
	tu_expect_site(s, "site_calloc", 1000, 5, 5, 1000);
	/* malloc(10) then realloc to 1000: two allocations, one block. */
	tu_expect_site(s, "site_realloc", 1000, 1, 2, 1010);
	tu_expect_site(s, "site_freed", 0, 0, 20, 1280);
	tu_expect_site(s, "site_aligned", 256 + 512 + 96 + 300 + 63, 5, 5,
		       256 + 512 + 96 + 300 + 63);
	tu_expect_site(s, "site_peak", 5000, 1, 4, 11000);
	mp_snapshot_free(s);
}

Test(shim, totals_match_the_sum_of_traces)
{
	char *dir = tu_tmpdir();
	struct mp_snapshot *s = tu_shim_run(dir, "alloc_c", NULL, NULL);
	uint64_t blocks, bytes = sum_live(s, &blocks);
	cr_expect_eq(bytes, s->meta.totals.live_bytes);
	cr_expect_eq(blocks, s->meta.totals.live_blocks);
	/* Nothing else in alloc_c allocates: the figures are the helper's. */
	uint64_t live = 1000 + 1000 + 1000 + 1227 + 5000;
	cr_expect_eq(s->meta.totals.live_bytes, live);
	cr_expect_eq(s->meta.totals.live_blocks, 10 + 5 + 1 + 5 + 1);
	cr_expect_eq(s->meta.totals.allocs, 10 + 5 + 2 + 20 + 5 + 4);
	cr_expect_eq(s->meta.totals.frees, 1 + 20 + 3);
	/* The peak: everything before site_peak plus its three 2000s. */
	cr_expect_eq(s->meta.totals.peak_bytes, 4227 + 6000);
	cr_expect_str_eq(s->meta.trigger, "exit");
	mp_snapshot_free(s);
}

Test(shim, peak_bytes_per_site_are_those_at_the_global_peak)
{
	char *dir = tu_tmpdir();
	struct mp_snapshot *s = tu_shim_run(dir, "alloc_c", NULL, NULL);
	struct mp_profile_entry e;
	cr_assert(tu_function_entry(s, "site_peak", &e));
	cr_expect_eq(e.peak_bytes, 6000); /* the 5000 came after the peak */
	cr_assert(tu_function_entry(s, "site_malloc", &e));
	cr_expect_eq(e.peak_bytes, 1000);
	cr_assert(tu_function_entry(s, "site_freed", &e));
	cr_expect_eq(e.peak_bytes, 0);
	mp_snapshot_free(s);
}

/* A block freed long after it was made leaves the figures before the
 * next allocation is counted (its removal from the table may wait). */
Test(shim, old_blocks_freed_are_gone_before_the_next_allocation)
{
	char *dir = tu_tmpdir();
	int st;
	struct mp_snapshot *s = tu_shim_run(dir, "alloc_old_free", NULL, &st);
	struct mp_profile_entry e;
	cr_assert_eq(st, 0);
	cr_expect_eq(s->meta.totals.peak_bytes, 100640);
	tu_expect_site(s, "site_big", 0, 0, 1, 100000);
	tu_expect_site(s, "site_after", 60000, 1, 1, 60000);
	tu_expect_site(s, "site_small", 39 * 16, 39, 40, 40 * 16);
	tu_expect_site(s, "site_grow", 32, 1, 1, 32);
	cr_assert(tu_function_entry(s, "site_big", &e));
	cr_expect_eq(e.peak_bytes, 100000);
	cr_assert(tu_function_entry(s, "site_after", &e));
	cr_expect_eq(e.peak_bytes, 0);
	cr_expect_eq(s->meta.totals.live_bytes, 60000 + 39 * 16 + 32);
	mp_snapshot_free(s);
}

Test(shim, exit_status_and_output_are_the_programs)
{
	char *dir = tu_tmpdir();
	char *args[] = {(char *)"x", NULL};
	int st;
	struct mp_snapshot *s = tu_shim_run(dir, "alloc_c", args, &st);
	cr_expect_eq(st, 3);
	char *out = tu_path(dir, "alloc_c.stdout");
	char *text = tu_read(out, NULL);
	cr_expect_str_eq(text, "alloc_c done\n");
	free(text);
	mp_snapshot_free(s);
}

Test(shim, unwinds_through_libc_qsort_without_frame_pointers)
{
	char *dir = tu_tmpdir();
	int st;
	struct mp_snapshot *s = tu_shim_run(dir, "alloc_qsort", NULL, &st);
	cr_assert_eq(st, 0);
	cr_expect(tu_stack_has(s, "cmp_alloc", "sort_things"),
		  "no stack goes from cmp_alloc through qsort to sort_things");
	cr_expect(tu_stack_has(s, "cmp_alloc", "main"));
	struct mp_profile_entry e;
	cr_assert(tu_function_entry(s, "cmp_alloc", &e));
	cr_expect_eq(e.bytes, 24);
	cr_expect_eq(e.blocks, 1);
	cr_expect_eq(e.alloc_bytes, 24 * e.allocs);
	mp_snapshot_free(s);
}

Test(shim, threads_allocating_at_once_are_counted_exactly)
{
	char *dir = tu_tmpdir();
	int st;
	struct mp_snapshot *s = tu_shim_run(dir, "alloc_threads", NULL, &st);
	cr_assert_eq(st, 0);
	tu_expect_site(s, "thread_work", 4 * 100 * 48, 400, 4000, 4000 * 48);
	cr_expect(tu_stack_has(s, "thread_work", "start_thread"));
	mp_snapshot_free(s);
}

/* Blocks freed by another thread while still among the last ones their
 * maker allocated (kept by that thread, not yet in the shared table), and
 * blocks a thread still holds when it exits. */
Test(shim, blocks_freed_by_another_thread_or_outliving_theirs_are_exact)
{
	char *dir = tu_tmpdir();
	int st;
	uint64_t blocks;
	struct mp_snapshot *s = tu_shim_run(dir, "alloc_handoff", NULL, &st);
	cr_assert_eq(st, 0);
	tu_expect_site(s, "produce", 200 * 40, 200, 20000, 20000 * 40);
	tu_expect_site(s, "leftover", 4 * 24, 4, 7, 7 * 24);
	cr_expect_eq(sum_live(s, &blocks), s->meta.totals.live_bytes);
	cr_expect_eq(s->nblocks, blocks, "%zu blocks listed, %lu counted",
		     s->nblocks, (unsigned long)blocks);
	mp_snapshot_free(s);
}

Test(shim, cxx_new_containers_exceptions_and_static_constructors)
{
	char *dir = tu_tmpdir();
	int st;
	struct mp_snapshot *s = tu_shim_run(dir, "alloc_cxx", NULL, &st);
	cr_assert_eq(st, 0);
	char *out = tu_path(dir, "alloc_cxx.stdout");
	char *text = tu_read(out, NULL);
	cr_expect_str_eq(text,
			 "alloc_cxx: 16 widgets, 200 strings, 50 caught, 1\n");
	free(text);
	/* new char[777] in a static constructor, before main. */
	tu_expect_site(s, "demo::Registry::Registry()", 777, 1, 1, 777);
	/* 16 x new Widget (vptr + 4 longs = 40 bytes), kept. */
	struct mp_profile_entry e;
	cr_assert(tu_function_entry(s, "make_widgets(int)", &e));
	cr_expect_eq(e.bytes, 16 * 40);
	cr_expect_eq(e.blocks, 16);
	/* Exceptions were allocated and freed: nothing of them is live. */
	cr_expect(tu_stack_has(s, "__cxa_allocate_exception",
			       "throw_and_catch(int)"));
	mp_snapshot_free(s);
}

Test(shim, depth_option_limits_frames)
{
	char *dir = tu_tmpdir();
	char *snap = tu_path(dir, "d.memprof");
	char *env_out = NULL;
	cr_assert(asprintf(&env_out, "MEMPROF_OUTPUT=%s", snap) > 0);
	const char *env[] = {"LD_PRELOAD=" TU_SHIM, env_out, "MEMPROF_DEPTH=2",
			     NULL};
	char *argv[] = {(char *)TU_HELPER("alloc_c"), NULL};
	cr_assert_eq(tu_run(argv, env, NULL, NULL), 0);
	struct mp_snapshot *s;
	struct mp_errinfo ei;
	cr_assert_eq(mp_snapshot_open(snap, &s, &ei), MP_OK);
	cr_expect_eq(s->meta.depth, 2);
	for (size_t i = 0; i < s->nstacks; i++)
		cr_expect_leq(s->stacks[i].depth, 2);
	mp_snapshot_free(s);
}

Test(shim, unwritable_output_keeps_the_program_running)
{
	const char *env[] = {"LD_PRELOAD=" TU_SHIM,
			     "MEMPROF_OUTPUT=/nonexistent-dir/x.memprof", NULL};
	char *dir = tu_tmpdir();
	char *out = tu_path(dir, "out"), *err = tu_path(dir, "err");
	char *argv[] = {(char *)TU_HELPER("alloc_c"), (char *)"x", NULL};
	cr_expect_eq(tu_run(argv, env, out, err), 3);
	char *o = tu_read(out, NULL), *e = tu_read(err, NULL);
	cr_expect_str_eq(o, "alloc_c done\n");
	cr_expect(strstr(e,
			 "memprof: cannot write '/nonexistent-dir/x.memprof': "
			 "no such file or directory") != NULL,
		  "stderr was: %s", e);
}

/* The exit snapshot's blocks are sorted by address (the reader refuses a
 * file whose blocks are not) with 8-bit digits below 64Ki blocks and
 * 16-bit ones above, and every live block is there. */
Test(shim, blocks_are_sorted_at_both_digit_widths, .timeout = 120)
{
	static const char *const counts[] = {"1", "2", "5000", "70000"};
	char *dir = tu_tmpdir();
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		char *args[] = {(char *)counts[i], NULL};
		int st;
		struct mp_snapshot *s =
			tu_shim_run(dir, "bench_heap", args, &st);
		cr_assert_eq(st, 0);
		size_t mine = 0;
		for (size_t j = 0; j < s->nblocks; j++) {
			cr_assert(j == 0 ||
				  s->blocks[j].addr > s->blocks[j - 1].addr);
			mine += s->blocks[j].size >= 32 &&
				s->blocks[j].size <= 96 &&
				s->blocks[j].size % 32 == 0;
		}
		/* bench_heap's nodes are 32, 64 or 96 bytes; stdio's
		 * buffer is 1 KiB or more. */
		cr_expect_eq(mine, (size_t)atol(counts[i]), "%s blocks",
			     counts[i]);
		mp_snapshot_free(s);
	}
}
