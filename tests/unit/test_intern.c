/*
 * test_intern.c - the shim's stack interning, per-trace counters and the
 * bytes-at-peak bookkeeping, tested in process: shim_stacks.c,
 * shim_table.c, shim_record.c and shim_mem.c are compiled into this test
 * (shim_unwind.c comes in through test_unwind.c), with the little state
 * shim_init.c would provide defined here.
 */
#include "../../lib/shim/shim_mem.c"
#include "../../lib/shim/shim_record.c"
#include "../../lib/shim/shim_stacks.c"
#include "../../lib/shim/shim_table.c"
#include "../../lib/shim/shim_thread.c"
#include "../../lib/shim/shim_sample.c"
#include "../../lib/shim/shim_timeline.c"

#include <criterion/criterion.h>
#include <pthread.h>

struct shim_options shim_opt = {.depth = SHIM_DEFAULT_DEPTH};
struct shim_totals shim_totals;
_Atomic int shim_active = 1;
static int intern_failures;

void shim_fail(const char *what, int err)
{
	(void)what;
	(void)err;
	intern_failures++;
}

/* What the free hook does with a traced block: out of the live blocks,
 * then accounted as freed. */
static void record_free(void *p)
{
	struct shim_block b;
	if (shim_live_remove((uintptr_t)p, &b))
		shim_account_free(&b);
}

/* The shim's per-thread state needs its pthread key (shim_init does
 * this in the shim). */
static void intern_setup(void)
{
	cr_assert(shim_thread_init(0));
}

TestSuite(intern, .init = intern_setup);

Test(intern, identical_stacks_share_one_trace)
{
	cr_assert(setup());
	uintptr_t a[] = {0x1000, 0x2000, 0x3000};
	uintptr_t b[] = {0x1000, 0x2000, 0x3000};
	uintptr_t c[] = {0x1000, 0x2000, 0x3001};
	uint64_t before = shim_trace_count();
	struct shim_trace *ta = intern(a, 3), *tb = intern(b, 3);
	struct shim_trace *tc = intern(c, 3), *td = intern(a, 2);
	cr_expect_eq(ta, tb);
	cr_expect_neq(ta, tc);
	cr_expect_neq(ta, td, "a prefix is a different stack");
	cr_expect_eq(shim_trace_count() - before, 3);
	cr_expect_eq(ta->depth, 3);
	cr_expect_eq(td->depth, 2);
	cr_expect_eq(ta->pcs[2], 0x3000);
}

struct race {
	int base;
	struct shim_trace *got[500];
};

static void *intern_many(void *arg)
{
	struct race *r = arg;
	for (int i = 0; i < 500; i++) {
		uintptr_t pcs[4] = {(uintptr_t)r->base + (uintptr_t)i, 7, 8, 9};
		r->got[i] = intern(pcs, 4);
	}
	return NULL;
}

Test(intern, concurrent_interning_makes_one_trace_per_stack)
{
	cr_assert(setup());
	uint64_t before = shim_trace_count();
	struct race r[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		r[i].base = 0x500000; /* every thread interns the same 500 */
		pthread_create(&t[i], NULL, intern_many, &r[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cr_expect_eq(shim_trace_count() - before, 500);
	for (int i = 0; i < 500; i++)
		for (int k = 1; k < 4; k++)
			cr_assert_eq(r[0].got[i], r[k].got[i]);
}

Test(intern, capture_cuts_depth_and_interns_the_same_call_site)
{
	shim_opt.depth = 3;
	struct shim_trace *t1 = NULL, *t2 = NULL;
	for (int i = 0; i < 2; i++) {
		struct shim_trace *t = shim_trace_capture(); /* one call site */
		if (i == 0)
			t1 = t;
		else
			t2 = t;
	}
	shim_opt.depth = SHIM_DEFAULT_DEPTH;
	cr_assert_not_null(t1);
	cr_expect_eq(t1, t2);
	cr_expect_eq(t1->depth, 3);
}

Test(intern, counters_and_bytes_at_the_global_peak)
{
	cr_assert(setup());
	uintptr_t sa[] = {0xa1}, sb[] = {0xb1};
	struct shim_trace *a = intern(sa, 1), *b = intern(sb, 1);
	/* a: 100 + 200 live; b: 50; peak = 350; then a frees 200, b grows
	 * to 50 + 500: a new peak of 650 where a holds 100 and b 550. */
	static char blk[6];
	uint64_t live0 = atomic_load(&shim_totals.live_bytes);
	shim_record_alloc_trace(&blk[0], 100, a);
	shim_record_alloc_trace(&blk[1], 200, a);
	shim_record_alloc_trace(&blk[2], 50, b);
	cr_expect_eq(atomic_load(&shim_totals.peak_bytes), live0 + 350);
	cr_expect_eq(shim_trace_peak_bytes(a), 300);
	cr_expect_eq(shim_trace_peak_bytes(b), 50);
	record_free(&blk[1]);
	cr_expect_eq(shim_trace_peak_bytes(a), 300, "a free is not a peak");
	shim_record_alloc_trace(&blk[3], 500, b);
	cr_expect_eq(atomic_load(&shim_totals.peak_bytes), live0 + 650);
	cr_expect_eq(shim_trace_peak_bytes(a), 100);
	cr_expect_eq(shim_trace_peak_bytes(b), 550);
	record_free(&blk[3]);
	record_free(&blk[2]);
	cr_expect_eq(shim_trace_peak_bytes(b), 550);
	cr_expect_eq(atomic_load(&a->s0.live_bytes), 100);
	cr_expect_eq(shim_trace_allocs(a), 2);
	cr_expect_eq(shim_trace_alloc_bytes(a), 300);
	cr_expect_eq(atomic_load(&b->s0.live_bytes), 0);
	record_free(&blk[0]);
	cr_expect_eq(atomic_load(&shim_totals.live_bytes), live0);
}

Test(intern, a_stale_table_entry_is_accounted_as_freed)
{
	cr_assert(setup());
	uintptr_t s[] = {0xc1};
	struct shim_trace *t = intern(s, 1);
	static char blk[2];
	uint64_t live0 = atomic_load(&shim_totals.live_bytes);
	shim_record_alloc_trace(&blk[0], 64, t);
	/* The block was freed where the shim could not see it (a signal
	 * handler inside a hook) and its address handed out again. */
	shim_record_alloc_trace(&blk[0], 32, t);
	cr_expect_eq(atomic_load(&t->s0.live_bytes), 32);
	cr_expect_eq(atomic_load(&shim_totals.live_bytes), live0 + 32);
	record_free(&blk[0]);
	cr_expect_eq(atomic_load(&shim_totals.live_bytes), live0);
}
