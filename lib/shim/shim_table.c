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

/* The table's spinlocks (shards and young blocks): held for a few
 * hundred cycles at most, so spin a little, then yield. */
static inline void spin_lock(_Atomic int *l)
{
	for (int spins = 0;; spins++) {
		if (!atomic_load_explicit(l, memory_order_relaxed) &&
		    !atomic_exchange_explicit(l, 1, memory_order_acquire))
			return;
		if (spins > 64)
			sched_yield();
		else
			__builtin_ia32_pause();
	}
}

static inline void spin_unlock(_Atomic int *l)
{
	atomic_store_explicit(l, 0, memory_order_release);
}

static inline void shard_lock(struct shard *s)
{
	spin_lock(&s->lock);
}

static inline void shard_unlock(struct shard *s)
{
	spin_unlock(&s->lock);
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
	/* Read without the lock, only to prefetch (young_flush_locked); a
	 * prefetch of the old, unmapped array is harmless. */
	__atomic_store_n(&s->slots, n, __ATOMIC_RELAXED);
	__atomic_store_n(&s->cap, ncap, __ATOMIC_RELAXED);
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

static bool insert_h(uint64_t h, uintptr_t addr, uint64_t size,
		     struct shim_trace *t)
{
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

bool shim_table_insert(uintptr_t addr, uint64_t size, struct shim_trace *t)
{
	return insert_h(mix(addr), addr, size, t);
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

/* ---- young blocks ---------------------------------------------------- */

/*
 * Each thread keeps its last SHIM_YOUNG blocks itself. A block freed by the
 * thread that made it while still young (most are: the churn helpers free
 * nearly everything at once) costs a look through 32 addresses in its own
 * cache lines, not a probe of the shared table, whose shard headers every
 * thread writes. When the young blocks are full they go to the table
 * together, their slots prefetched first, so that their cache misses
 * overlap instead of following each other (a large heap's table is far
 * bigger than the cache: one miss per block was most of the cost of
 * building a 700k-node tree).
 *
 * Lock order: a state's ylock, then shard locks. A thread that does not
 * find a block in its young blocks nor in the table looks in the other
 * threads', then in the table again: the block may have moved there
 * meanwhile (a flush inserts before it empties the young blocks, all
 * under ylock).
 */

static inline void ylock(struct shim_tls *t)
{
	spin_lock(&t->ylock);
}

static inline void yunlock(struct shim_tls *t)
{
	spin_unlock(&t->ylock);
}

/*
 * ---- frees accounted late ----
 *
 * Blocks that die old are not young: their free must find them in the
 * table, a cache miss in a large heap, which used to stall the free hook
 * (most of the time spent freeing a 700k-node tree). With one thread in
 * the program nobody else can be handed the address, so the hook gives
 * the block back first and the removal waits in a small ring, its slot
 * prefetched, until SHIM_PEND frees later, the next allocation (which may
 * reuse the address, and must see exact live bytes for the peak), or
 * anything that reads the figures. A second thread's first hook settles
 * every ring under its ylock (shim_live_settle_all), and a thread only
 * queues under its ylock after seeing one thread: so once two run, no
 * removal waits.
 */

static void pend_one(struct shim_tls *t)
{
	struct shim_block b;
	uintptr_t addr = t->pend[t->pend_head];

	t->pend_head = (t->pend_head + 1) % SHIM_PEND;
	t->npend--;
	if (shim_table_remove(addr, &b))
		shim_account_free(&b);
}

static void settle_locked(struct shim_tls *t)
{
	while (t->npend)
		pend_one(t);
}

static inline void prefetch_slot(uint64_t h)
{
	struct shard *s = shard_of(h);
	struct shim_block *slots = __atomic_load_n(&s->slots, __ATOMIC_RELAXED);
	size_t cap = __atomic_load_n(&s->cap, __ATOMIC_RELAXED);

	__builtin_prefetch(s, 1);
	if (slots)
		__builtin_prefetch(&slots[h & (cap - 1)], 1);
}

static bool young_has(const struct shim_tls *t, uintptr_t addr)
{
	for (unsigned i = t->ny; i-- > 0;)
		if (t->yaddr[i] == addr)
			return true;
	return false;
}

/* Moves t's young blocks to the table; t->ylock held. */
static bool young_flush_locked(struct shim_tls *t)
{
	uint64_t h[SHIM_YOUNG];
	unsigned n = t->ny;
	bool ok = true;

	settle_locked(t);

	for (unsigned i = 0; i < n; i++) {
		h[i] = mix(t->yaddr[i]);
		prefetch_slot(h[i]);
	}
	for (unsigned i = 0; i < n; i++)
		ok &= insert_h(h[i], t->yaddr[i], t->ymeta[i].size,
			       t->ymeta[i].trace);
	t->ny = 0;
	return ok;
}

/* Takes addr out of t's young blocks; t->ylock held. */
static bool young_take(struct shim_tls *t, uintptr_t addr,
		       struct shim_block *out)
{
	for (unsigned i = t->ny; i-- > 0;) {
		if (t->yaddr[i] != addr)
			continue;
		out->addr = addr;
		out->size = t->ymeta[i].size;
		out->trace = t->ymeta[i].trace;
		unsigned last = --t->ny;
		t->yaddr[i] = t->yaddr[last];
		t->ymeta[i] = t->ymeta[last];
		return true;
	}
	return false;
}

bool shim_live_insert(uintptr_t addr, uint64_t size, struct shim_trace *tr)
{
	struct shim_tls *t = shim_tls_peek();
	bool ok = true;

	if (unlikely(!t))
		return shim_table_insert(addr, size, tr);
	/* Queued frees were settled by the caller (shim_record_alloc_trace)
	 * before the figures changed; realloc puts back a block it never
	 * freed, which no queued free can name. */
	ylock(t);
	if (t->ny == SHIM_YOUNG)
		ok = young_flush_locked(t);
	t->yaddr[t->ny] = addr;
	t->ymeta[t->ny].size = size;
	t->ymeta[t->ny].trace = tr;
	t->ny++;
	yunlock(t);
	return ok;
}

static inline bool one_thread(void)
{
	return atomic_load_explicit(&shim_threads_live, memory_order_relaxed) <=
	       1;
}

enum shim_free_how shim_live_free(uintptr_t addr, struct shim_block *out)
{
	struct shim_tls *t = shim_tls_peek();
	enum shim_free_how how = SHIM_FREE_SEARCH;

	if (unlikely(!t))
		return how;
	ylock(t);
	if (young_take(t, addr, out)) {
		how = SHIM_FREE_NOW;
	} else if (one_thread()) {
		prefetch_slot(mix(addr));
		if (t->npend == SHIM_PEND)
			pend_one(t);
		t->pend[(t->pend_head + t->npend) % SHIM_PEND] = addr;
		t->npend++;
		how = SHIM_FREE_LATE;
	}
	yunlock(t);
	return how;
}

bool shim_live_remove_late_ok(uintptr_t addr)
{
	struct shim_tls *t = shim_tls_peek();
	bool ok = false;

	if (unlikely(!t))
		return false;
	ylock(t);
	if (one_thread() && !young_has(t, addr)) {
		settle_locked(t);
		prefetch_slot(mix(addr));
		ok = true;
	}
	yunlock(t);
	return ok;
}

void shim_live_settle(void)
{
	struct shim_tls *t = shim_tls_peek();

	if (t && t->npend) {
		ylock(t);
		settle_locked(t);
		yunlock(t);
	}
}

void shim_live_settle_all(void)
{
	for (struct shim_tls *t = shim_tls_all(); t; t = t->all_next) {
		ylock(t);
		settle_locked(t);
		yunlock(t);
	}
}

bool shim_live_remove(uintptr_t addr, struct shim_block *out)
{
	struct shim_tls *me = shim_tls_peek();
	bool found;

	if (likely(me != NULL)) {
		ylock(me);
		found = young_take(me, addr, out);
		yunlock(me);
		if (found)
			return true;
	}
	return shim_live_remove_elsewhere(addr, out);
}

bool shim_live_remove_elsewhere(uintptr_t addr, struct shim_block *out)
{
	struct shim_tls *me = shim_tls_peek();
	bool found;

	if (shim_table_remove(addr, out))
		return true;
	/* Freed by another thread than the one that made it, while young;
	 * or never traced. */
	for (struct shim_tls *t = shim_tls_all(); t; t = t->all_next) {
		if (t == me || !__atomic_load_n(&t->ny, __ATOMIC_RELAXED))
			continue;
		ylock(t);
		found = young_take(t, addr, out);
		yunlock(t);
		if (found)
			return true;
	}
	return shim_table_remove(addr, out);
}

void shim_young_flush(struct shim_tls *t)
{
	ylock(t);
	young_flush_locked(t);
	yunlock(t);
}

void shim_young_flush_all(void)
{
	for (struct shim_tls *t = shim_tls_all(); t; t = t->all_next)
		if (__atomic_load_n(&t->ny, __ATOMIC_RELAXED) ||
		    __atomic_load_n(&t->npend, __ATOMIC_RELAXED))
			shim_young_flush(t);
}

/* The states shim_live_lock_all locked: a thread that starts meanwhile
 * puts its new state in front of them, and unlocking that one would
 * break the lock its own thread may hold. */
static struct shim_tls *locked_from;

void shim_live_lock_all(void)
{
	struct shim_tls *head = shim_tls_all();
	for (struct shim_tls *t = head; t; t = t->all_next) {
		ylock(t);
		young_flush_locked(t);
	}
	shim_table_lock_all();
	locked_from = head;
}

void shim_live_unlock_all(void)
{
	struct shim_tls *head = locked_from;
	locked_from = NULL;
	shim_table_unlock_all();
	for (struct shim_tls *t = head; t; t = t->all_next)
		yunlock(t);
}

void shim_live_reset_locks(void)
{
	locked_from = NULL;
	shim_table_reset_locks();
	for (struct shim_tls *t = shim_tls_all(); t; t = t->all_next)
		atomic_store(&t->ylock, 0);
}

uint64_t shim_live_count(void)
{
	uint64_t n = shim_table_count();
	for (struct shim_tls *t = shim_tls_all(); t; t = t->all_next)
		n += __atomic_load_n(&t->ny, __ATOMIC_RELAXED);
	return n;
}
