/*
 * shim_record.c - the accounting done for each allocation and free.
 *
 * Called by the hooks with shim_busy set. Hook-safe: no malloc, no stdio;
 * the only locks are the live table's shard spinlocks.
 */
#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "shim/shim_internal.h"

static inline uint64_t coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void global_add(uint64_t size)
{
	uint64_t live = atomic_fetch_add_explicit(&shim_totals.live_bytes, size,
						  memory_order_relaxed) +
			size;
	atomic_fetch_add_explicit(&shim_totals.live_blocks, 1,
				  memory_order_relaxed);
	/* Every 256th event looks at the clock for the timeline. */
	if ((atomic_fetch_add_explicit(&shim_totals.allocs, 1,
				       memory_order_relaxed) &
	     255) == 0)
		shim_timeline_tick();
	atomic_fetch_add_explicit(&shim_totals.alloc_bytes, size,
				  memory_order_relaxed);
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

void shim_record_alloc(void *p, size_t size)
{
	struct shim_trace *t = shim_trace_capture();
	if (unlikely(!t)) {
		shim_fail("out of memory for stack traces", ENOMEM);
		return;
	}
	shim_record_alloc_trace(p, size, t);
}

void shim_record_alloc_ctx(void *p, size_t size, const struct shim_ctx *c)
{
	struct shim_trace *t = shim_trace_capture_from(c->pc, c->sp, c->bp);
	if (unlikely(!t)) {
		shim_fail("out of memory for stack traces", ENOMEM);
		return;
	}
	shim_record_alloc_trace(p, size, t);
}

void shim_record_alloc_trace(void *p, size_t size, struct shim_trace *t)
{
	shim_trace_add(t, size);
	global_add(size);
	if (unlikely(!shim_table_insert((uintptr_t)p, size, t))) {
		shim_fail("out of memory for the live-block table", ENOMEM);
		return;
	}
}

void shim_account_free(const struct shim_block *b)
{
	shim_trace_sub(b->trace, b->size);
	atomic_fetch_sub_explicit(&shim_totals.live_bytes, b->size,
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&shim_totals.live_blocks, 1,
				  memory_order_relaxed);
	if ((atomic_fetch_add_explicit(&shim_totals.frees, 1,
				       memory_order_relaxed) &
	     255) == 0)
		shim_timeline_tick();
}

void shim_record_free(void *p)
{
	struct shim_block b;
	if (shim_table_remove((uintptr_t)p, &b))
		shim_account_free(&b);
}
