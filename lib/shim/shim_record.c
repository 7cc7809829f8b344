/*
 * shim_record.c - the accounting done for each allocation and free: what
 * the hooks' paths do not inline (shim_record.h).
 *
 * Called by the hooks with shim_busy set. Hook-safe: no malloc, no stdio;
 * the only locks are the live table's shard spinlocks.
 */
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "shim/shim_internal.h"
#include "shim/shim_record.h"

static inline uint64_t coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Notes live as the new peak (the caller saw it above the old one). In a
 * growing heap that is every allocation, so a program with one thread
 * that allocates (the shim's own thread does not count) updates the peak
 * with plain stores: no other thread changes it, and snapshots read each
 * field whole. With several, a compare-and-swap keeps the highest. As a
 * second thread starts, its first update and the first thread's last
 * plain one may cross, and the peak keeps the lower of the two: an error
 * within what threads already allow it (64 KiB each, see
 * shim_live_delta).
 */
__attribute__((noinline)) void shim_new_peak(uint64_t live)
{
	if (live >= (UINT64_C(1) << 62))
		return;
	if (atomic_load_explicit(&shim_threads_live, memory_order_relaxed) <=
	    1) {
		atomic_store_explicit(&shim_totals.peak_bytes, live,
				      memory_order_relaxed);
		atomic_store_explicit(
			&shim_totals.peak_gen,
			atomic_load_explicit(&shim_totals.peak_gen,
					     memory_order_relaxed) +
				1,
			memory_order_relaxed);
		atomic_store_explicit(&shim_totals.peak_ns, coarse_ns(),
				      memory_order_relaxed);
		return;
	}
	uint64_t peak = atomic_load_explicit(&shim_totals.peak_bytes,
					     memory_order_relaxed);
	while (live > peak) {
		if (atomic_compare_exchange_weak_explicit(
			    &shim_totals.peak_bytes, &peak, live,
			    memory_order_relaxed, memory_order_relaxed)) {
			atomic_fetch_add_explicit(&shim_totals.peak_gen, 1,
						  memory_order_relaxed);
			atomic_store_explicit(&shim_totals.peak_ns, coarse_ns(),
					      memory_order_relaxed);
			break;
		}
	}
}

void shim_live_flush(struct shim_tls *t)
{
	if (t->live_delta) {
		int64_t d = t->live_delta;
		__atomic_store_n(&t->live_delta, 0, __ATOMIC_RELAXED);
		shim_live_fold(d);
	}
}

uint64_t shim_live_bytes(void)
{
	uint64_t n = atomic_load_explicit(&shim_totals.live_bytes,
					  memory_order_relaxed);
	for (struct shim_tls *t = shim_tls_all(); t; t = t->all_next)
		n += (uint64_t)__atomic_load_n(&t->live_delta,
					       __ATOMIC_RELAXED);
	return n;
}

void shim_record_alloc_trace(void *p, size_t size, struct shim_trace *t)
{
	shim_record_alloc_inl(shim_tls_peek(), p, size, t);
}

void shim_record_alloc_ctx(struct shim_tls *me, void *p, size_t size,
			   const struct shim_ctx *c)
{
	shim_record_alloc_ctx_inl(me, p, size, c);
}

void shim_account_free_by(struct shim_tls *me, const struct shim_block *b)
{
	shim_account_free_inl(me, b);
}

void shim_account_free(const struct shim_block *b)
{
	shim_account_free_by(shim_tls_peek(), b);
}
