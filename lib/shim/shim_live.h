/*
 * shim_live.h - the fast paths of the live blocks' direct map, inline in
 * the hooks (shim_table.c has the map, its description and everything
 * else: the slow paths, the hash table, the freeze, the walks).
 *
 * An add or take that finds its thread's last leaf, no freeze, and a word
 * it can write or read whole is done here; anything else goes to
 * shim_live_add_slow or shim_live_take_slow, which do all the checks
 * again. Both are always inlined: left to itself GCC keeps them as calls,
 * and the calls cost more than the rest of a hit (callgrind). Hook-safe:
 * no allocation, no locks, no stdio.
 */
#ifndef MEMPROF_SHIM_LIVE_H
#define MEMPROF_SHIM_LIVE_H

#include "shim/shim_internal.h"

#pragma GCC visibility push(hidden)

/* The direct map's geometry and its words' layout (shim_table.c). */
#define SHIM_MAP_GRAN 5	   /* 32-byte granules */
#define SHIM_LEAF_SHIFT 18 /* a leaf maps 256 KiB (its words: 32 KiB) */
#define SHIM_LEAF_WORDS (1u << (SHIM_LEAF_SHIFT - SHIM_MAP_GRAN))
#define SHIM_PAGE_WORDS 1024u /* 4 KiB of words */
#define SHIM_LEAF_PAGES (SHIM_LEAF_WORDS / SHIM_PAGE_WORDS)
#define SHIM_W_BLOCK 1u
#define SHIM_W_HALF 2u
#define SHIM_W_LONG 4u
#define SHIM_W_SIZE_SHIFT 3
#define SHIM_W_SHORT_MAX 63u
#define SHIM_W_ID_SHIFT 9
#define SHIM_W_LONG_MAX (UINT32_MAX >> 1)

struct shim_leaf {
	struct shim_leaf *next; /* every leaf, for the walks */
	uintptr_t base;
	/* Pages of words ever written: the walks skip the others. A byte
	 * each, not a bit: the hooks test and set one with a load and a
	 * store, no read-modify-write of a shared word. */
	_Atomic unsigned char used[SHIM_LEAF_PAGES];
	/* One more: the size of a long block in the last granule. */
	uint32_t w[SHIM_LEAF_WORDS + 1] __attribute__((aligned(64)));
};

static inline unsigned shim_map_index(uintptr_t addr)
{
	return (addr >> SHIM_MAP_GRAN) & (SHIM_LEAF_WORDS - 1);
}

static inline uint32_t shim_map_half(uintptr_t addr)
{
	return (addr >> 3) & SHIM_W_HALF;
}

/* Whether w is the word of a block starting at addr's half. */
static inline bool shim_map_starts_at(uint32_t w, uintptr_t addr)
{
	return (w & (SHIM_W_BLOCK | SHIM_W_HALF)) ==
	       (SHIM_W_BLOCK | shim_map_half(addr));
}

static inline void shim_map_mark_used(struct shim_leaf *l, unsigned i)
{
	_Atomic unsigned char *u = &l->used[i / SHIM_PAGE_WORDS];
	if (unlikely(!atomic_load_explicit(u, memory_order_relaxed)))
		atomic_store_explicit(u, 1, memory_order_relaxed);
}

/* Looks addr's leaf up for shim_live_leaf_for and remembers it in t;
 * NULL when addr is not mappable or has no leaf. */
struct shim_leaf *shim_live_leaf_remember(struct shim_tls *t, uintptr_t addr);

/*
 * addr's leaf when addr is mappable and has one, else NULL. The thread's
 * last leaf first: one test says that addr lies in it and is 16-byte
 * aligned (a base of 1 never matches). Only the owner uses t's leaf, and
 * a signal handler on its thread cannot come between the two fields: the
 * shim is busy (its hooks pass through) whenever they are used.
 */
static inline struct shim_leaf *shim_live_leaf_for(struct shim_tls *t,
						   uintptr_t addr)
{
	if (likely(!((addr ^ t->leaf_base) &
		     ~(((uintptr_t)1 << SHIM_LEAF_SHIFT) - 16))))
		return t->leaf;
	return shim_live_leaf_remember(t, addr);
}

/* The freeze's gate (shim_table.c, "who may change the live blocks"). */
#define SHIM_GATE_FROZEN 1
#define SHIM_GATE_FENCE 2
extern _Atomic int shim_live_gate;

/* shim_live_op_try's rest: with SHIM_GATE_FENCE, the fence, then the
 * look that counts. */
bool shim_live_op_try_gated(struct shim_tls *t, int g);

/* Raises t's in_op; whether no freeze is on (else t's in_op is down). */
static inline bool shim_live_op_try(struct shim_tls *t)
{
	atomic_store_explicit(&t->in_op, 1, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	int g = atomic_load_explicit(&shim_live_gate, memory_order_acquire);
	if (likely(!g))
		return true;
	return shim_live_op_try_gated(t, g);
}

static inline void shim_live_op_end(struct shim_tls *t)
{
	atomic_store_explicit(&t->in_op, 0, memory_order_release);
}

static inline void shim_live_nlive_add(struct shim_tls *t, int64_t d)
{
	shim_own_add(&t->nlive, (uint64_t)d);
}

/* The general paths of shim_live_add and shim_live_take (any thread
 * state or none, freezes, new leaves, stale words, the hash table). */
bool shim_live_add_slow(struct shim_tls *t, uintptr_t addr, uint64_t size,
			struct shim_trace *tr);
bool shim_live_take_slow(struct shim_tls *t, uintptr_t addr,
			 struct shim_block *out);

/*
 * Records a block (a stale entry for the same address is accounted as
 * freed first; false when out of shim memory) for thread state t (the
 * caller's, or NULL). Call it after the block came from the allocator.
 */
static inline __attribute__((always_inline)) bool shim_live_add(
	struct shim_tls *t, uintptr_t addr, uint64_t size,
	struct shim_trace *tr)
{
	/* The tests of a word's fields, cheapest first: ids are below
	 * 2^23, so the shift keeps them whole. */
	uint32_t w = tr->id << SHIM_W_ID_SHIFT;
	struct shim_leaf *l;
	unsigned i;
	if (likely(t != NULL) && likely(w != 0) &&
	    likely((l = shim_live_leaf_for(t, addr)) != NULL) &&
	    likely(shim_live_op_try(t))) {
		i = shim_map_index(addr);
		w |= shim_map_half(addr) | SHIM_W_BLOCK;
		if (likely(size <= SHIM_W_SHORT_MAX)) {
			if (likely(!l->w[i])) {
				l->w[i] = w | (uint32_t)size
						      << SHIM_W_SIZE_SHIFT;
				goto done;
			}
		} else if (size <= SHIM_W_LONG_MAX && !l->w[i] &&
			   (i + 1 == SHIM_LEAF_WORDS ||
			    !(l->w[i + 1] & SHIM_W_BLOCK))) {
			l->w[i] = w | SHIM_W_LONG;
			l->w[i + 1] = (uint32_t)size << 1;
			goto done;
		}
		shim_live_op_end(t);
	}
	return shim_live_add_slow(t, addr, size, tr);
done:
	shim_live_nlive_add(t, 1);
	shim_map_mark_used(l, i);
	shim_live_op_end(t);
	return true;
}

/*
 * Takes addr out of the live blocks for thread state t (the caller's, or
 * NULL), filling *out; whether it was there. Call it before the block
 * goes back to the allocator.
 */
static inline __attribute__((always_inline)) bool shim_live_take(
	struct shim_tls *t, uintptr_t addr, struct shim_block *out)
{
	struct shim_leaf *l;
	if (likely(t != NULL) &&
	    likely((l = shim_live_leaf_for(t, addr)) != NULL) &&
	    likely(shim_live_op_try(t))) {
		unsigned i = shim_map_index(addr);
		uint32_t w = l->w[i];
		struct shim_trace *tr;
		if (likely(shim_map_starts_at(w, addr)) &&
		    likely((tr = shim_trace_by_id(w >> SHIM_W_ID_SHIFT)) !=
			   NULL)) {
			out->addr = addr;
			out->trace = tr;
			if (w & SHIM_W_LONG) {
				out->size = l->w[i + 1] >> 1;
				l->w[i + 1] = 0;
			} else {
				out->size = (w >> SHIM_W_SIZE_SHIFT) &
					    SHIM_W_SHORT_MAX;
			}
			l->w[i] = 0;
			shim_live_nlive_add(t, -1);
			shim_live_op_end(t);
			return true;
		}
		shim_live_op_end(t);
	}
	/* Through a copy: the caller's block then never has its address
	 * taken, and stays in registers. */
	struct shim_block b;
	if (!shim_live_take_slow(t, addr, &b))
		return false;
	*out = b;
	return true;
}

#pragma GCC visibility pop

#endif
