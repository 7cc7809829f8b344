/*
 * shim_sample.c - sampling by bytes (record --sample-rate R).
 *
 * Like jemalloc's and tcmalloc's heap profilers: every allocated byte is a
 * sampling point with probability 1/R, so each thread counts down an
 * exponentially distributed number of bytes (mean R) and the allocation
 * that crosses zero is traced. An allocation of Z bytes is traced with
 * probability pi(Z) = 1 - exp(-Z/R); counted with weight 1/pi(Z) (and
 * Z/pi(Z) bytes) its figures are unbiased estimates (Horvitz-Thompson,
 * unbiased per allocation, before any aggregation).
 *
 * The untraced allocations cost a subtraction; their frees cost one byte
 * read in a counting filter of the addresses of traced blocks, which says
 * "not traced" for almost all of them without touching the live table.
 * The generator is seeded the same way every run (MEMPROF_SEED to change
 * it), so a deterministic program samples the same allocations every time.
 * Hook-safe: no malloc, no stdio.
 */
#include <math.h>
#include <stdatomic.h>

#include "shim/shim_internal.h"

_Atomic unsigned char *shim_sample_filter;
long shim_sample_off = -1;
#define filter shim_sample_filter
static uint64_t seed = 0x9e3779b97f4a7c15ull;
static _Atomic uint64_t thread_seq;

void shim_sample_init(void)
{
	/* free's fast path calls the real free when the filter says "not
	 * traced": there must be one. */
	if (!shim_opt.sample_rate || !shim_real.free)
		return;
	_Atomic unsigned char *f = shim_mmap((size_t)1 << SHIM_FILTER_BITS);
	if (!f) {
		shim_fail("out of memory for the sampling filter", 12);
		return;
	}
	/* The bootstrap arena's blocks must never reach the real free: their
	 * slots say "maybe" for good (a saturated count never goes down),
	 * which sends their frees to the slow path that knows them. */
	for (uintptr_t a = (uintptr_t)shim_boot_buf & ~(uintptr_t)15;
	     a < (uintptr_t)shim_boot_buf + SHIM_BOOT_SIZE; a += 16)
		atomic_store_explicit(&f[shim_sample_slot(a)], 255,
				      memory_order_relaxed);
	if (shim_opt.seed)
		seed = shim_opt.seed;
	filter = f; /* before any thread but this one exists */
	shim_sample_off = shim_tls_off;
}

#define slot shim_sample_slot

static inline uint64_t next_random(struct shim_tls *t)
{
	/* xorshift64*, per thread */
	uint64_t x = t->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static int64_t draw(struct shim_tls *t)
{
	/* U in (0, 1]: -ln(U) * R is exponential with mean R. */
	double u = ((double)(next_random(t) >> 11) + 1.0) * 0x1.0p-53;
	double b = -log(u) * (double)shim_opt.sample_rate;
	return b < 1 ? 1 : b > 4e18 ? (int64_t)4e18 : (int64_t)b + 1;
}

bool shim_sample_take(struct shim_tls *t, size_t size)
{
	if (unlikely(!t->rng)) {
		/* Distinct, reproducible streams for the threads. */
		t->rng = seed ^ (0xD1B54A32D192ED03ull *
				 (atomic_fetch_add(&thread_seq, 1) + 1));
		if (!t->rng)
			t->rng = 1;
		t->sample_left = draw(t);
	}
	t->sample_left -= (int64_t)size;
	if (likely(t->sample_left > 0))
		return false;
	t->sample_left = draw(t);
	return true;
}

double shim_sample_weight(uint64_t size)
{
	if (!shim_opt.sample_rate)
		return 1.0;
	double pi = -expm1(-(double)size / (double)shim_opt.sample_rate);
	return pi > 0 ? 1.0 / pi : 1.0;
}

void shim_sample_note(uintptr_t p, int delta)
{
	if (!filter)
		return;
	_Atomic unsigned char *c = &filter[slot(p)];
	unsigned char v = atomic_load_explicit(c, memory_order_relaxed);
	/* A saturated counter stays so: it only ever answers "maybe". */
	while (v != 255 && !(delta < 0 && v == 0)) {
		if (atomic_compare_exchange_weak_explicit(
			    c, &v, (unsigned char)(v + delta),
			    memory_order_relaxed, memory_order_relaxed))
			break;
	}
}
