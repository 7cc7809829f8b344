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
struct shim_real shim_real;
char shim_boot_buf[SHIM_BOOT_SIZE];
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

/* The live blocks as a foreach sees them: address -> size, and the trace. */
struct seen {
	int n;
	struct shim_block b[16];
};

static void see(const struct shim_block *b, void *ctx)
{
	struct seen *s = ctx;
	if (s->n < 16)
		s->b[s->n] = *b;
	s->n++;
}

static const struct shim_block *seen_at(const struct seen *s, uintptr_t a)
{
	for (int i = 0; i < s->n && i < 16; i++)
		if (s->b[i].addr == a)
			return &s->b[i];
	return NULL;
}

/* The map is never dereferenced: blocks can be made up anywhere, here in
 * a range no real heap uses, 256 KiB (one leaf) apart per test. */
#define FAKE(leaf, off) ((uintptr_t)0x500000000000 + (leaf)*0x40000u + (off))

static uint64_t take_size(uintptr_t a, struct shim_trace **tr)
{
	struct shim_block b;
	if (!shim_live_remove(a, &b))
		return UINT64_MAX;
	cr_expect_eq(b.addr, a);
	*tr = b.trace;
	return b.size;
}

Test(intern, the_live_map_keeps_short_long_and_huge_sizes_exactly)
{
	cr_assert(setup());
	uintptr_t st[] = {0xd1};
	struct shim_trace *t = intern(st, 1), *got = NULL;
	cr_assert_neq(t->id, 0);
	/* Short words hold 0 .. 63; from 64 the size is in the next word;
	 * past 4 GiB the block goes to the hash table. */
	const uint64_t sizes[] = {0,  1,    63,	      64,
				  65, 4096, 3u << 20, UINT64_C(5) << 30};
	const int n = sizeof(sizes) / sizeof(sizes[0]);
	uint64_t count0 = shim_live_count();
	for (int i = 0; i < n; i++)
		cr_assert(shim_live_insert(FAKE(0, i * 64 + 16 * (i & 1)),
					   sizes[i], t));
	cr_expect_eq(shim_live_count(), count0 + n);
	struct seen s = {0};
	shim_live_lock_all();
	shim_live_foreach_locked(see, &s);
	shim_live_unlock_all();
	for (int i = 0; i < n; i++) {
		const struct shim_block *b =
			seen_at(&s, FAKE(0, i * 64 + 16 * (i & 1)));
		cr_assert_not_null(b, "block %d not walked", i);
		cr_expect_eq(b->size, sizes[i], "block %d", i);
		cr_expect_eq(b->trace, t);
	}
	for (int i = n - 1; i >= 0; i--) {
		cr_expect_eq(take_size(FAKE(0, i * 64 + 16 * (i & 1)), &got),
			     sizes[i], "block %d", i);
		cr_expect_eq(got, t);
	}
	cr_expect_eq(shim_live_count(), count0);
	cr_expect_eq(take_size(FAKE(0, 0), &got), UINT64_MAX, "freed twice");
}

Test(intern, two_blocks_in_one_granule_are_both_kept)
{
	cr_assert(setup());
	uintptr_t sa[] = {0xe1}, sb[] = {0xe2};
	struct shim_trace *a = intern(sa, 1), *b = intern(sb, 1), *got;
	/* An allocator with 16-byte blocks puts two in one 32-byte granule:
	 * the second goes to the hash table, and each keeps its own. */
	cr_assert(shim_live_insert(FAKE(1, 0), 16, a));
	cr_assert(shim_live_insert(FAKE(1, 16), 12, b));
	struct seen s = {0};
	shim_live_lock_all();
	shim_live_foreach_locked(see, &s);
	shim_live_unlock_all();
	cr_assert_not_null(seen_at(&s, FAKE(1, 0)));
	cr_assert_not_null(seen_at(&s, FAKE(1, 16)));
	cr_expect_eq(seen_at(&s, FAKE(1, 16))->size, 12);
	cr_expect_eq(take_size(FAKE(1, 0), &got), 16);
	cr_expect_eq(got, a);
	cr_expect_eq(take_size(FAKE(1, 16), &got), 12);
	cr_expect_eq(got, b);
}

Test(intern, long_blocks_at_page_and_leaf_ends_are_walked_once)
{
	cr_assert(setup());
	uintptr_t st[] = {0xf1};
	struct shim_trace *t = intern(st, 1), *got;
	/* A block in the last granule of a page of words (its size word
	 * begins the next page) and one in the last granule of a leaf (its
	 * size in the leaf's spare word); sizes that look like words. */
	uintptr_t page_end = FAKE(2, 1024 * 32 - 16);
	uintptr_t leaf_end = FAKE(3, 0x40000 - 32);
	uintptr_t next_leaf = FAKE(4, 0);
	uint64_t count0 = shim_live_count();
	cr_assert(shim_live_insert(page_end, 0x101, t));
	cr_assert(shim_live_insert(leaf_end, 0x1ff, t));
	cr_assert(shim_live_insert(next_leaf, 40, t));
	cr_assert(shim_live_insert(FAKE(2, 1024 * 32 + 64), 48, t));
	struct seen s = {0};
	shim_live_lock_all();
	shim_live_foreach_locked(see, &s);
	shim_live_unlock_all();
	int mine = 0;
	for (int i = 0; i < s.n && i < 16; i++)
		mine += s.b[i].trace == t;
	cr_expect_eq(mine, 4, "walked %d blocks of t, not 4", mine);
	cr_expect_eq(shim_live_count(), count0 + 4);
	cr_expect_eq(take_size(page_end, &got), 0x101);
	cr_expect_eq(take_size(leaf_end, &got), 0x1ff);
	cr_expect_eq(take_size(next_leaf, &got), 40);
	cr_expect_eq(take_size(FAKE(2, 1024 * 32 + 64), &got), 48);
}

Test(intern, a_block_made_inside_a_stale_long_block_frees_it)
{
	cr_assert(setup());
	uintptr_t st[] = {0xf2};
	struct shim_trace *t = intern(st, 1), *got;
	uint64_t live0 = atomic_load(&shim_totals.live_bytes);
	uint64_t count0 = shim_live_count();
	/* A 4 KiB block freed behind the shim's back, and a block handed
	 * out in its second granule, then one in its first. */
	shim_record_alloc_trace((void *)FAKE(5, 0), 4096, t);
	shim_record_alloc_trace((void *)FAKE(5, 48), 24, t);
	cr_expect_eq(atomic_load(&t->s0.live_bytes), 24);
	cr_expect_eq(shim_live_count(), count0 + 1);
	shim_record_alloc_trace((void *)FAKE(5, 0), 8, t);
	cr_expect_eq(take_size(FAKE(5, 0), &got), 8);
	cr_expect_eq(take_size(FAKE(5, 48), &got), 24);
	cr_expect_eq(shim_live_count(), count0);
	cr_expect_eq(atomic_load(&shim_totals.live_bytes), live0 + 32);
}

/* free's sampling fast path hands a block the filter says was never traced
 * to the real free: the bootstrap arena's blocks must never look so, at
 * either end of the arena; the address just past it does. */
Test(intern, sampling_filter_keeps_bootstrap_blocks_from_the_real_free)
{
	shim_opt.sample_rate = 4096;
	shim_sample_init();
	cr_expect_null(shim_sample_filter, "no real free, no filter");
	shim_real.free = free;
	shim_sample_init();
	cr_assert_not_null(shim_sample_filter);
	uintptr_t b = (uintptr_t)shim_boot_buf;
	cr_expect(shim_sample_maybe(b));
	cr_expect(shim_sample_maybe(b + SHIM_BOOT_SIZE / 2 + 8));
	cr_expect(shim_sample_maybe(b + SHIM_BOOT_SIZE - 16));
	cr_expect(!shim_sample_maybe(b + SHIM_BOOT_SIZE + 16));
	/* Saturated: a traced block's removal there does not clear it. */
	shim_sample_note(b, -1);
	cr_expect(shim_sample_maybe(b));
}

/* A thread's state, and where its errno lives, as its hooks see them. */
struct errno_seen {
	struct shim_tls *state;
	int *err, *own;
};

static void *make_state(void *arg)
{
	struct errno_seen *seen = arg;
	seen->state = shim_tls_create();
	seen->err = seen->state ? seen->state->err : NULL;
	seen->own = &errno;
	return NULL;
}

/* The hooks keep errno through the state's pointer to it: a state handed
 * on to a new thread must point at the new thread's errno, not at the
 * old thread's (gone, its memory perhaps another thread's stack). */
Test(intern, a_reused_thread_state_points_at_its_new_owners_errno)
{
	struct errno_seen first = {0}, second = {0};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, make_state, &first), 0);
	pthread_join(th, NULL);
	cr_assert_eq(pthread_create(&th, NULL, make_state, &second), 0);
	pthread_join(th, NULL);
	cr_assert_not_null(first.state);
	cr_expect_eq(first.err, first.own);
	/* The second thread got the first one's state back. */
	cr_expect_eq(second.state, first.state);
	cr_expect_eq(second.err, second.own);
	/* Two threads alive at once here, so two errnos. */
	struct errno_seen third = {0};
	cr_assert_eq(pthread_create(&th, NULL, make_state, &third), 0);
	pthread_join(th, NULL);
	struct shim_tls *mine = shim_tls_create();
	cr_assert_not_null(mine);
	cr_expect_eq(mine->err, &errno);
	cr_expect_neq(third.err, mine->err);
}
