/*
 * shim_timeline.c - live bytes and blocks sampled over the run (TIME).
 *
 * Sampled on the allocation and free paths: every 256th event looks at the
 * coarse clock, and once an interval (10 ms at first) has passed it appends
 * a sample. When the buffer is full every other sample is dropped and the
 * interval doubles, so any run gives at most TL_CAP samples spread over
 * all of it. The hot path only tries the lock and never waits; the
 * snapshot writer waits for it. Hook-safe: no malloc, no stdio.
 */
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "common/common_format.h"
#include "common/common_writer.h"
#include "shim/shim_internal.h"

#define TL_CAP 4096
#define TL_MARKS 4096

struct sample {
	uint64_t ns, bytes, blocks;
};

struct mark {
	uint64_t seq, ns;
};

static struct sample samples[TL_CAP];
static size_t nsamples;
static struct mark marks[TL_MARKS];
static size_t nmarks;
static uint64_t interval_ns = MP_TIME_FIRST_INTERVAL_NS;
static _Atomic uint64_t next_ns;
static _Atomic int tl_lock;

static inline uint64_t tl_coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void append(uint64_t now)
{
	if (nsamples == TL_CAP) {
		for (size_t i = 0; i < TL_CAP / 2; i++)
			samples[i] = samples[2 * i + 1];
		nsamples = TL_CAP / 2;
		interval_ns *= 2;
	}
	/* The coarse clock may read a little behind the precise one the
	 * start time came from; time never goes backwards in the file. */
	if (now < shim_totals.start_ns)
		now = shim_totals.start_ns;
	if (nsamples && now < samples[nsamples - 1].ns)
		now = samples[nsamples - 1].ns;
	samples[nsamples].ns = now;
	samples[nsamples].bytes = shim_live_bytes();
	samples[nsamples].blocks = shim_live_count();
	nsamples++;
	atomic_store_explicit(&next_ns, now + interval_ns,
			      memory_order_relaxed);
}

void shim_timeline_tick(void)
{
	uint64_t now = tl_coarse_ns();
	if (now < atomic_load_explicit(&next_ns, memory_order_relaxed))
		return;
	if (atomic_exchange_explicit(&tl_lock, 1, memory_order_acquire))
		return; /* someone else is sampling: never wait here */
	if (now >= atomic_load_explicit(&next_ns, memory_order_relaxed))
		append(now);
	atomic_store_explicit(&tl_lock, 0, memory_order_release);
}

static void lock_wait(void)
{
	while (atomic_exchange_explicit(&tl_lock, 1, memory_order_acquire))
		sched_yield();
}

void shim_timeline_mark(uint64_t seq)
{
	lock_wait();
	uint64_t now = tl_coarse_ns();
	append(now); /* the live figures at the snapshot itself */
	if (nmarks < TL_MARKS) {
		marks[nmarks].seq = seq;
		marks[nmarks].ns = samples[nsamples - 1].ns;
		nmarks++;
	}
	atomic_store_explicit(&tl_lock, 0, memory_order_release);
}

void shim_timeline_write(struct mpw *w)
{
	lock_wait();
	mpw_begin(w, MP_SEC_TIMELINE);
	mpw_uleb(w, interval_ns);
	mpw_uleb(w, nsamples);
	uint64_t prev = shim_totals.start_ns;
	for (size_t i = 0; i < nsamples; i++) {
		mpw_uleb(w, samples[i].ns - prev);
		mpw_uleb(w, samples[i].bytes);
		mpw_uleb(w, samples[i].blocks);
		prev = samples[i].ns;
	}
	mpw_uleb(w, nmarks);
	prev = shim_totals.start_ns;
	for (size_t i = 0; i < nmarks; i++) {
		mpw_uleb(w, marks[i].seq);
		mpw_uleb(w, marks[i].ns - prev);
		prev = marks[i].ns;
	}
	mpw_end(w);
	atomic_store_explicit(&tl_lock, 0, memory_order_release);
}

/* A forked child starts with its parent's lock state. */
void shim_timeline_reset_lock(void)
{
	atomic_store(&tl_lock, 0);
}
