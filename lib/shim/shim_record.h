/*
 * shim_record.h - the accounting done for each allocation and free, inline
 * in the hooks' paths (shim_record.c has the rest: a new peak, the sums,
 * the out-of-line entry points for the other callers).
 *
 * Called by the hooks with the thread busy. Hook-safe: no malloc, no
 * stdio; the only locks are the live table's shard spinlocks.
 */
#ifndef MEMPROF_SHIM_RECORD_H
#define MEMPROF_SHIM_RECORD_H

#include <errno.h>
#include <stdatomic.h>

#include "shim/shim_internal.h"
#include "shim/shim_live.h"

#pragma GCC visibility push(hidden)

/* Notes live as the new peak (the caller saw it above the old one):
 * shim_record.c. */
void shim_new_peak(uint64_t live);

/* Notes live as the peak if it is one. */
static inline void shim_note_peak(uint64_t live)
{
	if (unlikely(live > atomic_load_explicit(&shim_totals.peak_bytes,
						 memory_order_relaxed)))
		shim_new_peak(live);
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
#define SHIM_LIVE_BATCH (64 * 1024)

/* Adds d to the shared part of the live bytes; the new sum. */
static inline uint64_t shim_live_fold(int64_t d)
{
	return atomic_fetch_add_explicit(&shim_totals.live_bytes, (uint64_t)d,
					 memory_order_relaxed) +
	       (uint64_t)d;
}

/* Adds delta to me's live bytes; the live bytes now if grow is set (else
 * anything). */
static inline uint64_t shim_live_delta(struct shim_tls *me, int64_t delta,
				       bool grow)
{
	if (unlikely(!me))
		return shim_live_fold(delta);
	int64_t d = me->live_delta + delta;
	if (unlikely(d >= SHIM_LIVE_BATCH || d <= -SHIM_LIVE_BATCH) &&
	    atomic_load_explicit(&shim_threads_live, memory_order_relaxed) >
		    1) {
		__atomic_store_n(&me->live_delta, 0, __ATOMIC_RELAXED);
		return shim_live_fold(d);
	}
	__atomic_store_n(&me->live_delta, d, __ATOMIC_RELAXED);
	return grow ? atomic_load_explicit(&shim_totals.live_bytes,
					   memory_order_relaxed) +
			       (uint64_t)d
		    : 0;
}

/* Live bytes grow by bytes (a new peak?) or shrink by them (a free: no
 * peak to look for). */
static inline void shim_live_grow(struct shim_tls *me, uint64_t bytes)
{
	uint64_t live = shim_live_delta(me, (int64_t)bytes, true);
	if ((int64_t)bytes > 0)
		shim_note_peak(live);
}

static inline void shim_live_shrink(struct shim_tls *me, uint64_t bytes)
{
	shim_live_delta(me, -(int64_t)bytes, false);
}

/* Every 256th event (allocation or free) of a thread looks at the clock
 * for the timeline: a byte counts down, and wraps. */
static inline void shim_count_event(struct shim_tls *t)
{
	if (unlikely(--t->tick == 0))
		shim_timeline_tick();
}

/* With sampling, a traced block stands for 1/pi of its kind: its bytes and
 * count in the per-site figures are weighted (shim_sample.c); the live
 * table keeps its real size. */
static inline uint64_t shim_weighted(uint64_t size, double w)
{
	return (uint64_t)(size * w + 0.5);
}

/*
 * The bodies of shim_record_alloc_trace, shim_record_alloc_ctx and
 * shim_account_free_by (shim_internal.h), always inlined: malloc, free
 * and realloc use these, the other hooks the out-of-line functions. Left
 * to itself GCC keeps one copy and calls it, and the call costs more than
 * the rest of the work (callgrind).
 */
static inline __attribute__((always_inline)) void shim_record_alloc_inl(
	struct shim_tls *me, void *p, size_t size, struct shim_trace *t)
{
	if (unlikely(shim_opt.sample_rate)) {
		double w = shim_sample_weight(size);
		uint64_t wb = shim_weighted(size, w);
		shim_trace_count_alloc(me, t, wb, shim_weighted(1, w));
		shim_live_grow(me, wb);
		shim_sample_note((uintptr_t)p, +1);
	} else {
		shim_trace_count_alloc(me, t, size, 1);
		shim_live_grow(me, size);
	}
	if (likely(me != NULL))
		shim_count_event(me);
	if (unlikely(!shim_live_add(me, (uintptr_t)p, size, t)))
		shim_fail("out of memory for the live-block table", ENOMEM);
}

static inline __attribute__((always_inline)) void shim_record_alloc_ctx_inl(
	struct shim_tls *me, void *p, size_t size, const struct shim_ctx *c)
{
	struct shim_trace *t = shim_trace_capture_from(me, c->pc, c->sp, c->bp);
	if (unlikely(!t)) {
		shim_fail("out of memory for stack traces", ENOMEM);
		return;
	}
	shim_record_alloc_inl(me, p, size, t);
}

static inline __attribute__((always_inline)) void shim_account_free_inl(
	struct shim_tls *me, const struct shim_block *b)
{
	uint64_t bytes = b->size;
	if (unlikely(shim_opt.sample_rate)) {
		bytes = shim_weighted(b->size, shim_sample_weight(b->size));
		shim_sample_note(b->addr, -1);
	}
	shim_trace_count_free(me, b->trace, bytes);
	shim_live_shrink(me, bytes);
	if (likely(me != NULL)) {
		BUMP(me->frees, 1);
		shim_count_event(me);
	}
}

#pragma GCC visibility pop

#endif
