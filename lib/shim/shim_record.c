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
#include "shim/shim_live.h"

static inline uint64_t coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A counter of this thread's, bumped by its owner only: a plain add that
 * snapshots may read at any time (64-bit aligned: never torn). */
#define BUMP(field, v) \
	__atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)

/*
 * Notes live as the new peak (the caller saw it above the old one). In a
 * growing heap that is every allocation, so a program with one thread
 * that allocates (the shim's own thread does not count) updates the peak
 * with plain stores: no other thread changes it, and snapshots read each
 * field whole. With several, a compare-and-swap keeps the highest. As a
 * second thread starts, its first update and the first thread's last
 * plain one may cross, and the peak keeps the lower of the two: an error
 * within what threads already allow it (64 KiB each, see live_change).
 */
static __attribute__((noinline)) void new_peak(uint64_t live)
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

/* Notes live as the peak if it is one. */
static inline void note_peak(uint64_t live)
{
	if (unlikely(live > atomic_load_explicit(&shim_totals.peak_bytes,
						 memory_order_relaxed)))
		new_peak(live);
}

/*
 * Live bytes change at every allocation and free. A shared counter would
 * cost an atomic add each time, and with several threads be fought over
 * (the 4-thread churn spent most of its time on it). So the process's
 * live bytes are shim_totals.live_bytes plus every thread's live_delta,
 * which only its owner writes (plain stores). With one thread the delta
 * is never folded into the shared part, and the peak, its sum with the
 * shared part, is exact. With several, a thread folds its delta in once
 * it passes 64 KiB either way: the peak is then exact to within that much
 * per thread. Snapshots take live figures from the live blocks, exactly.
 */
#define LIVE_BATCH (64 * 1024)

/* Adds d to the shared part of the live bytes; the new sum. */
static inline uint64_t fold(int64_t d)
{
	return atomic_fetch_add_explicit(&shim_totals.live_bytes, (uint64_t)d,
					 memory_order_relaxed) +
	       (uint64_t)d;
}

static inline void live_change(struct shim_tls *me, int64_t delta)
{
	uint64_t live;
	if (unlikely(!me)) {
		live = fold(delta);
	} else {
		int64_t d = me->live_delta + delta;
		if (unlikely(d >= LIVE_BATCH || d <= -LIVE_BATCH) &&
		    atomic_load_explicit(&shim_threads_live,
					 memory_order_relaxed) > 1) {
			__atomic_store_n(&me->live_delta, 0, __ATOMIC_RELAXED);
			live = fold(d);
		} else {
			__atomic_store_n(&me->live_delta, d, __ATOMIC_RELAXED);
			live = atomic_load_explicit(&shim_totals.live_bytes,
						    memory_order_relaxed) +
			       (uint64_t)d;
		}
	}
	if (delta > 0)
		note_peak(live);
}

void shim_live_flush(struct shim_tls *t)
{
	if (t->live_delta) {
		int64_t d = t->live_delta;
		__atomic_store_n(&t->live_delta, 0, __ATOMIC_RELAXED);
		fold(d);
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

/* Every 256th event (allocation or free) of a thread looks at the clock
 * for the timeline. n is the counter the event bumps, other the other. */
static inline void count_event(uint64_t *n, const uint64_t *other)
{
	if ((BUMP(*n, 1), (*n + *other) & 255) == 0)
		shim_timeline_tick();
}

/* With sampling, a traced block stands for 1/pi of its kind: its bytes and
 * count in the per-site figures are weighted (shim_sample.c); the live
 * table keeps its real size. */
static inline uint64_t weighted(uint64_t size, double w)
{
	return (uint64_t)(size * w + 0.5);
}

/* Inline in both callers, so that shim_live_add is inline on the hooks'
 * path (GCC would make one out-of-line copy). */
static inline __attribute__((always_inline)) void record_alloc(
	struct shim_tls *me, void *p, size_t size, struct shim_trace *t)
{
	if (unlikely(shim_opt.sample_rate)) {
		double w = shim_sample_weight(size);
		uint64_t wb = weighted(size, w);
		shim_trace_count_alloc(me, t, wb, weighted(1, w));
		live_change(me, (int64_t)wb);
		shim_sample_note((uintptr_t)p, +1);
	} else {
		shim_trace_count_alloc(me, t, size, 1);
		live_change(me, (int64_t)size);
	}
	if (likely(me != NULL))
		count_event(&me->allocs, &me->frees);
	if (unlikely(!shim_live_add(me, (uintptr_t)p, size, t)))
		shim_fail("out of memory for the live-block table", ENOMEM);
}

void shim_record_alloc_trace(void *p, size_t size, struct shim_trace *t)
{
	record_alloc(shim_tls_peek(), p, size, t);
}

void shim_record_alloc_ctx(struct shim_tls *me, void *p, size_t size,
			   const struct shim_ctx *c)
{
	struct shim_trace *t = shim_trace_capture_from(me, c->pc, c->sp, c->bp);
	if (unlikely(!t)) {
		shim_fail("out of memory for stack traces", ENOMEM);
		return;
	}
	record_alloc(me, p, size, t);
}

void shim_account_free_by(struct shim_tls *me, const struct shim_block *b)
{
	uint64_t bytes = b->size;
	if (unlikely(shim_opt.sample_rate)) {
		bytes = weighted(b->size, shim_sample_weight(b->size));
		shim_sample_note(b->addr, -1);
	}
	shim_trace_count_free(me, b->trace, bytes);
	live_change(me, -(int64_t)bytes);
	if (likely(me != NULL))
		count_event(&me->frees, &me->allocs);
}

void shim_account_free(const struct shim_block *b)
{
	shim_account_free_by(shim_tls_peek(), b);
}
