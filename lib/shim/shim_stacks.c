/*
 * shim_stacks.c - stack capture, interning, and per-trace counters.
 *
 * Each allocation's call stack is unwound (shim_unwind.c), the shim's own
 * frames are cut off, and the stack is interned: identical stacks share one
 * struct shim_trace, found through a lock-free hash of chains (insertion is
 * a compare-and-swap on the bucket head; traces are never freed, so readers
 * need no protection). Counters are relaxed atomics.
 *
 * Bytes at the global peak (DESIGN §4) without copying every counter at
 * every new peak: the totals keep a generation number bumped at each new
 * peak. A trace remembers the generation it last saw; when it changes
 * after a newer peak, its live bytes just before the change were its bytes
 * at that peak, so it saves them first. Exact for one thread; with several,
 * updates racing a new peak can be off by the blocks in flight.
 *
 * Hook-safe: no malloc, no stdio, no locks.
 */
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <string.h>

#include "shim/shim_internal.h"
#include "shim/shim_unwind.h"

#define NBUCKETS (1u << 18)

static _Atomic(struct shim_trace *) *buckets;
/* A bit per bucket that has a trace, so that a snapshot's walks over a
 * few hundred stacks read 4096 words, not 2^18 bucket heads (2 MB) four
 * times over. Set after the trace is pushed: a walk that misses the bit
 * misses a trace made while it ran, as it would had it passed the bucket. */
static _Atomic uint64_t bucket_used[NBUCKETS / 64];
static _Atomic uint64_t ntraces;
static uintptr_t self_start, self_end;
static _Atomic int setup_state;

static bool setup(void)
{
	int st = atomic_load_explicit(&setup_state, memory_order_acquire);
	if (st == 2)
		return true;
	int expect = 0;
	if (!atomic_compare_exchange_strong(&setup_state, &expect, 1)) {
		while (atomic_load_explicit(&setup_state,
					    memory_order_acquire) != 2)
			;
		return buckets != NULL;
	}
	buckets = shim_mmap(NBUCKETS * sizeof(*buckets));
	struct dl_find_object dlfo;
	if (_dl_find_object((void *)setup, &dlfo) == 0) {
		self_start = (uintptr_t)dlfo.dlfo_map_start;
		self_end = (uintptr_t)dlfo.dlfo_map_end;
	}
	atomic_store_explicit(&setup_state, 2, memory_order_release);
	return buckets != NULL;
}

static inline uint64_t hash_pcs(const uintptr_t *pcs, int n)
{
	uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
	for (int i = 0; i < n; i++) {
		h ^= pcs[i];
		h *= 0x100000001b3ull;
		h ^= h >> 32;
	}
	return h;
}

_Atomic(struct shim_trace **) shim_trace_ids[SHIM_ID_PAGES];
static _Atomic uint32_t last_id;

/*
 * Gives t an id (0 when they have run out, or no page could be mapped: its
 * blocks then go to the live table's hash part). Ids are never reused; one
 * given to a trace that loses the race to be interned is simply wasted.
 */
static uint32_t give_id(struct shim_trace *t)
{
	if (atomic_load_explicit(&last_id, memory_order_relaxed) >=
	    (1u << SHIM_TRACE_ID_BITS) - 1)
		return 0;
	uint32_t id =
		atomic_fetch_add_explicit(&last_id, 1, memory_order_relaxed) +
		1;
	if (id >= 1u << SHIM_TRACE_ID_BITS)
		return 0;
	_Atomic(struct shim_trace **) *slot =
		&shim_trace_ids[id >> SHIM_ID_PAGE_BITS];
	struct shim_trace **pg =
		atomic_load_explicit(slot, memory_order_acquire);
	if (!pg) {
		size_t len = sizeof(*pg) << SHIM_ID_PAGE_BITS;
		struct shim_trace **n = shim_mmap(len);
		if (!n)
			return 0;
		if (atomic_compare_exchange_strong(slot, &pg, n))
			pg = n;
		else
			shim_munmap(n, len);
	}
	pg[id & ((1u << SHIM_ID_PAGE_BITS) - 1)] = t;
	return id;
}

static struct shim_trace *intern(const uintptr_t *pcs, int n)
{
	uint64_t h = hash_pcs(pcs, n);
	size_t b = h & (NBUCKETS - 1);
	_Atomic(struct shim_trace *) *head = &buckets[b];
	struct shim_trace *first =
		atomic_load_explicit(head, memory_order_acquire);
	for (struct shim_trace *t = first; t; t = t->next)
		if (t->hash == h && t->depth == (uint32_t)n &&
		    !memcmp(t->pcs, pcs, (size_t)n * sizeof(*pcs)))
			return t;
	struct shim_trace *nt =
		shim_arena_alloc(sizeof(*nt) + (size_t)n * sizeof(*pcs));
	if (!nt)
		return NULL;
	nt->hash = h;
	nt->depth = (uint32_t)n;
	memcpy(nt->pcs, pcs, (size_t)n * sizeof(*pcs));
	nt->id = give_id(nt);
	atomic_init(&nt->s0.seen_gen, atomic_load(&shim_totals.peak_gen));
	for (;;) {
		nt->next = first;
		if (atomic_compare_exchange_weak_explicit(head, &first, nt,
							  memory_order_release,
							  memory_order_acquire))
			break;
		/* Someone pushed first: the same stack may be among the new
		 * heads. The piece of arena we took is simply wasted then. */
		for (struct shim_trace *t = first; t && t != nt->next;
		     t = t->next)
			if (t->hash == h && t->depth == (uint32_t)n &&
			    !memcmp(t->pcs, pcs, (size_t)n * sizeof(*pcs)))
				return t;
	}
	if (!nt->next)
		atomic_fetch_or_explicit(&bucket_used[b / 64], 1ull << (b % 64),
					 memory_order_release);
	atomic_fetch_add_explicit(&ntraces, 1, memory_order_relaxed);
	return nt;
}

struct shim_trace *shim_trace_capture(void)
{
	if (unlikely(!setup()))
		return NULL;
	uintptr_t pcs[SHIM_MAX_DEPTH + 16];
	int want = shim_opt.depth + 8;
	int n = shim_opt.unwind_fp ? shim_unwind_fp(pcs, want)
				   : shim_unwind(pcs, want);
	int skip = 0;
	while (skip < n && pcs[skip] >= self_start && pcs[skip] < self_end)
		skip++;
	n -= skip;
	if (n > shim_opt.depth)
		n = shim_opt.depth;
	return intern(pcs + skip, n);
}

/* The memo missed: walk the stack, and remember the walk in a way of t's
 * memo. */
struct shim_trace *shim_trace_capture_slow(struct shim_tls *t, uintptr_t pc,
					   uintptr_t sp, uintptr_t bp)
{
	if (unlikely(!setup()))
		return NULL;
	/* Called from inside the shim (realloc(NULL) -> malloc and the
	 * like), or asked to walk frame pointers: the general path. */
	if (unlikely((pc >= self_start && pc < self_end) || shim_opt.unwind_fp))
		return shim_trace_capture();
	if (unlikely(!t))
		return shim_trace_capture();
	unsigned w = t->victim++ % SHIM_MEMO_WAYS;
	struct shim_memo *m = &t->memo[w];
	struct shim_unw_log *log = &t->memo_log[w];
	m->trace = NULL;
	log->n = 0;
	log->overflow = 0;
	log->used_bp = 0;
	uintptr_t pcs[SHIM_MAX_DEPTH];
	int n = shim_unwind_from(pc, sp, bp, pcs, shim_opt.depth, log);
	struct shim_trace *tr = intern(pcs, n);
	if (tr && !log->overflow) {
		m->pc = pc;
		m->sp = sp;
		m->bp = bp;
		m->trace = tr;
	}
	return tr;
}

/* Stripe k (1 ..) of t's counters, made at its first use (see
 * shim_internal.h). */
struct shim_stripe *shim_stripe_more(struct shim_trace *t, unsigned k,
				     bool *own)
{
	struct shim_stripe *m =
		atomic_load_explicit(&t->more, memory_order_acquire);
	if (unlikely(!m)) {
		/* Fresh arena memory is zero; 64-byte aligned by hand. */
		size_t len = (SHIM_STRIPES - 1) * sizeof(*m) + 64;
		char *raw = shim_arena_alloc(len);
		if (!raw) {
			/* s0 belongs to another thread: one last atomic
			 * update there, and tracing stops. */
			shim_fail("out of memory for per-thread counters", 12);
			*own = false;
			return &t->s0;
		}
		struct shim_stripe *n =
			(struct shim_stripe *)(((uintptr_t)raw + 63) &
					       ~(uintptr_t)63);
		if (atomic_compare_exchange_strong(&t->more, &m, n))
			m = n; /* else m is the winner's; ours is wasted */
	}
	return &m[k - 1];
}

void shim_trace_count_alloc_any(struct shim_tls *me, struct shim_trace *t,
				uint64_t bytes, uint64_t count)
{
	bool own;
	struct shim_stripe *s = shim_stripe_of(me, t, &own);
	shim_stripe_catch_up(s);
	/* One test of own for the three (SHIM_STRIPE_ADD would test it
	 * each time). */
	if (own) {
		SHIM_STRIPE_ADD(s, live_bytes, bytes, true);
		SHIM_STRIPE_ADD(s, allocs, count, true);
		SHIM_STRIPE_ADD(s, alloc_bytes, bytes, true);
	} else {
		SHIM_STRIPE_ADD(s, live_bytes, bytes, false);
		SHIM_STRIPE_ADD(s, allocs, count, false);
		SHIM_STRIPE_ADD(s, alloc_bytes, bytes, false);
	}
}

void shim_trace_count_free_any(struct shim_tls *me, struct shim_trace *t,
			       uint64_t bytes)
{
	bool own;
	struct shim_stripe *s = shim_stripe_of(me, t, &own);
	shim_stripe_catch_up(s);
	SHIM_STRIPE_ADD(s, live_bytes, -bytes, own);
}

/* Calls fn on each stripe t has. */
#define FOR_STRIPES(t, s, body)                                         \
	do {                                                            \
		const struct shim_stripe *s = &(t)->s0;                 \
		body;                                                   \
		const struct shim_stripe *m_ = atomic_load(&(t)->more); \
		for (int k_ = 0; m_ && k_ < SHIM_STRIPES - 1; k_++) {   \
			s = &m_[k_];                                    \
			body;                                           \
		}                                                       \
	} while (0)

uint64_t shim_trace_peak_bytes(const struct shim_trace *t)
{
	uint64_t g = atomic_load(&shim_totals.peak_gen), sum = 0;
	FOR_STRIPES(t, s,
		    sum += atomic_load(&s->seen_gen) != g
				   ? atomic_load(&s->live_bytes)
				   : atomic_load(&s->peak_bytes));
	return sum;
}

uint64_t shim_trace_allocs(const struct shim_trace *t)
{
	uint64_t sum = 0;
	FOR_STRIPES(t, s, sum += atomic_load(&s->allocs));
	return sum;
}

uint64_t shim_trace_alloc_bytes(const struct shim_trace *t)
{
	uint64_t sum = 0;
	FOR_STRIPES(t, s, sum += atomic_load(&s->alloc_bytes));
	return sum;
}

void shim_trace_foreach(void (*fn)(struct shim_trace *t, void *ctx), void *ctx)
{
	if (!buckets)
		return;
	for (size_t w = 0; w < NBUCKETS / 64; w++) {
		uint64_t used = atomic_load_explicit(&bucket_used[w],
						     memory_order_acquire);
		while (used) {
			size_t b = w * 64 + (size_t)__builtin_ctzll(used);
			used &= used - 1;
			for (struct shim_trace *t = atomic_load(&buckets[b]); t;
			     t = t->next)
				fn(t, ctx);
		}
	}
}

uint64_t shim_trace_count(void)
{
	return atomic_load(&ntraces);
}
