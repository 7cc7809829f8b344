/*
 * shim_table.c - the live-block table: address -> (size, trace).
 *
 * 256 shards, each an open-addressing table with linear probing and
 * backward-shift deletion (no tombstones), behind its own spinlock, so
 * threads rarely meet. The lock is never taken by a thread that is already
 * inside the shim (shim_busy), so a signal handler that allocates cannot
 * deadlock on it: its allocation passes through untraced. Tables grow by
 * rehashing into a fresh mmap'd array. Hook-safe: no malloc, no stdio.
 */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "shim/shim_internal.h"

#define NSHARDS 256
#define SHARD_INITIAL 256

struct shard {
	_Atomic int lock;
	uint32_t pad;
	struct shim_block *slots;
	size_t cap; /* power of two */
	size_t count;
} __attribute__((aligned(64)));

static struct shard shards[NSHARDS];

static inline uint64_t mix(uintptr_t a)
{
	uint64_t x = (uint64_t)a >> 4;
	x *= 0x9E3779B97F4A7C15ull;
	return x ^ (x >> 29);
}

static inline struct shard *shard_of(uint64_t h)
{
	return &shards[h >> 56];
}

static inline void shard_lock(struct shard *s)
{
	for (int spins = 0;; spins++) {
		if (!atomic_load_explicit(&s->lock, memory_order_relaxed) &&
		    !atomic_exchange_explicit(&s->lock, 1,
					      memory_order_acquire))
			return;
		if (spins > 64)
			sched_yield();
		else
			__builtin_ia32_pause();
	}
}

static inline void shard_unlock(struct shard *s)
{
	atomic_store_explicit(&s->lock, 0, memory_order_release);
}

static void place(struct shim_block *slots, size_t cap,
		  const struct shim_block *b)
{
	size_t i = mix(b->addr) & (cap - 1);
	while (slots[i].addr)
		i = (i + 1) & (cap - 1);
	slots[i] = *b;
}

static bool grow(struct shard *s)
{
	size_t ncap = s->cap ? s->cap * 2 : SHARD_INITIAL;
	struct shim_block *n = shim_mmap(ncap * sizeof(*n));
	if (!n)
		return false;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i].addr)
			place(n, ncap, &s->slots[i]);
	shim_munmap(s->slots, s->cap * sizeof(*s->slots));
	s->slots = n;
	s->cap = ncap;
	return true;
}

/* Removes slot i, shifting later members of its probe run back. */
static void delete_at(struct shard *s, size_t i)
{
	size_t mask = s->cap - 1, j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!s->slots[j].addr)
			break;
		size_t home = mix(s->slots[j].addr) & mask;
		/* Move j into the hole unless its home lies cyclically in
		 * (i, j]. */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			s->slots[i] = s->slots[j];
			i = j;
		}
	}
	s->slots[i].addr = 0;
	s->count--;
}

bool shim_table_insert(uintptr_t addr, uint64_t size, struct shim_trace *t)
{
	uint64_t h = mix(addr);
	struct shard *s = shard_of(h);
	struct shim_block stale = {0};
	bool ok = true;
	shard_lock(s);
	if ((s->count + 1) * 2 > s->cap && !grow(s)) {
		ok = false;
		goto out;
	}
	size_t mask = s->cap - 1, i = h & mask;
	while (s->slots[i].addr && s->slots[i].addr != addr)
		i = (i + 1) & mask;
	if (s->slots[i].addr == addr)
		stale = s->slots[i]; /* freed behind our back (see header) */
	else
		s->count++;
	s->slots[i].addr = addr;
	s->slots[i].size = size;
	s->slots[i].trace = t;
out:
	shard_unlock(s);
	if (stale.addr) {
		shim_trace_sub(stale.trace, stale.size);
		atomic_fetch_sub_explicit(&shim_totals.live_bytes, stale.size,
					  memory_order_relaxed);
	}
	return ok;
}

bool shim_table_remove(uintptr_t addr, struct shim_block *out)
{
	uint64_t h = mix(addr);
	struct shard *s = shard_of(h);
	bool found = false;
	shard_lock(s);
	if (s->cap) {
		size_t mask = s->cap - 1, i = h & mask;
		while (s->slots[i].addr) {
			if (s->slots[i].addr == addr) {
				*out = s->slots[i];
				delete_at(s, i);
				found = true;
				break;
			}
			i = (i + 1) & mask;
		}
	}
	shard_unlock(s);
	return found;
}

void shim_table_foreach(void (*fn)(const struct shim_block *b, void *ctx),
			void *ctx)
{
	for (int k = 0; k < NSHARDS; k++) {
		struct shard *s = &shards[k];
		shard_lock(s);
		for (size_t i = 0; i < s->cap; i++)
			if (s->slots[i].addr)
				fn(&s->slots[i], ctx);
		shard_unlock(s);
	}
}

void shim_table_foreach_locked(void (*fn)(const struct shim_block *b,
					  void *ctx),
			       void *ctx)
{
	for (int k = 0; k < NSHARDS; k++) {
		struct shard *s = &shards[k];
		for (size_t i = 0; i < s->cap; i++)
			if (s->slots[i].addr)
				fn(&s->slots[i], ctx);
	}
}

uint64_t shim_table_count(void)
{
	uint64_t n = 0;
	for (int k = 0; k < NSHARDS; k++)
		n += shards[k].count;
	return n;
}

void shim_table_lock_all(void)
{
	for (int k = 0; k < NSHARDS; k++)
		shard_lock(&shards[k]);
}

void shim_table_unlock_all(void)
{
	for (int k = 0; k < NSHARDS; k++)
		shard_unlock(&shards[k]);
}

void shim_table_reset_locks(void)
{
	for (int k = 0; k < NSHARDS; k++)
		atomic_store(&shards[k].lock, 0);
}
