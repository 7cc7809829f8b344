/*
 * shim_table.c - the live blocks: address -> (size, trace).
 *
 * Two stores. Most blocks are in a direct map from address to a word (see
 * "the direct map" below): no hashing, no probing, and the words of blocks
 * that lie side by side in the heap lie side by side too. The others
 * (2 GiB or more, odd addresses, two in a granule) are in a hash table: 256
 * shards, each an open-addressing table with linear probing and backward-shift
 * deletion (no tombstones), behind its own spinlock; tables grow by rehashing
 * into a fresh mmap'd array.
 *
 * A block freed behind the shim's back (its address handed out again
 * without a free the hooks saw) is found stale when the address is
 * recorded again, and accounted as freed then.
 *
 * No lock is ever taken by a thread that is already inside the shim
 * (shim_busy), so a signal handler that allocates cannot deadlock on one:
 * its allocation passes through untraced. Hook-safe: no malloc, no stdio.
 */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/shim_internal.h"
#include "shim/shim_live.h"

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
/* Blocks in all shards: most programs have none, and a free of a block
 * not in the map need not look. */
static _Atomic uint64_t table_blocks;

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

/* The spinlocks (shards, anon_lock, the freeze): held for a few
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
	atomic_fetch_sub_explicit(&table_blocks, 1, memory_order_relaxed);
}

/* A block freed behind our back: gone from its site's and the process's
 * live bytes (see the header). */
static void forget_stale(const struct shim_block *b)
{
	shim_trace_count_free(shim_tls_peek(), b->trace, b->size);
	atomic_fetch_sub_explicit(&shim_totals.live_bytes, b->size,
				  memory_order_relaxed);
}

static bool table_insert(uintptr_t addr, uint64_t size, struct shim_trace *t)
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
	else {
		s->count++;
		atomic_fetch_add_explicit(&table_blocks, 1,
					  memory_order_relaxed);
	}
	s->slots[i].addr = addr;
	s->slots[i].size = size;
	s->slots[i].trace = t;
out:
	shard_unlock(s);
	if (stale.addr)
		forget_stale(&stale);
	return ok;
}

bool shim_table_remove(uintptr_t addr, struct shim_block *out)
{
	uint64_t h = mix(addr);
	struct shard *s = shard_of(h);
	bool found = false;
	if (!atomic_load_explicit(&table_blocks, memory_order_relaxed))
		return false;
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
	/* The shards' counts summed, kept as they change (each timeline
	 * sample asks): equal to the sum whenever the shards are locked. */
	return atomic_load_explicit(&table_blocks, memory_order_relaxed);
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

/* ---- the direct map ---------------------------------------------------- */

/*
 * Most blocks are kept in a direct map: one 32-bit word per 32 bytes of
 * address space, found from the block's address by two table lookups,
 * like a sanitizer's shadow memory but allocated one 256 KiB region at a
 * time. A block's word lies next to the words of the blocks the allocator
 * put beside it, so a heap built or freed in address order walks its
 * words in order too: a cache line of words covers 512 bytes of heap, and
 * the words of a 200 MB heap (25 MB) stay in the last-level cache. No
 * hashing, no probing, no growth. Addresses are never shared by two live
 * blocks, so no lock is needed: see "who may change the live blocks".
 *
 * 32 bytes is glibc's smallest chunk, so two of its blocks never start in
 * one granule. A word says which half of its granule its block starts in
 * (blocks are 16-byte aligned); an allocator that does put two blocks in
 * one granule sends the second to the hash table. A block's word is
 *
 *   bit 0       1
 *   bit 1       the half: address bit 4
 *   bit 2       long: the size is in the next word
 *   bits 3-8    the size of a short block (0 .. 63)
 *   bits 9-31   the trace's id (shim_stacks.c), never 0
 *
 * Blocks of 64 bytes or more are long: their next granule lies inside
 * them, so no other block's word can be there, and that word holds
 * size << 1 (bit 0 clear: a size is never taken for a block).
 *
 * Blocks the words cannot describe (2 GiB or more, not 16-byte aligned,
 * above 2^47, traces without an id), blocks that share a granule and
 * blocks whose region could not be mapped go to the hash table.
 *
 * The geometry, the words' layout and the fast paths of add and take are
 * in shim_live.h, inline in the hooks.
 *
 * Memory: a region's words are mapped when a block first starts in it,
 * and only the pages written become resident: at most an eighth of the
 * address range the heap ever spanned, a page per region for large blocks
 * far apart.
 */
#define MID_SHIFT 30 /* a mid maps 1 GiB */
#define ADDR_BITS 47
#define MID_LEAVES (1u << (MID_SHIFT - SHIM_LEAF_SHIFT))
#define TOP_MIDS (1u << (ADDR_BITS - MID_SHIFT))

struct mid {
	_Atomic(struct shim_leaf *) leaf[MID_LEAVES];
};

static _Atomic(struct mid *) top[TOP_MIDS];
static _Atomic(struct shim_leaf *) leaves;

static void *map_noreserve(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* addr's leaf if it has one (addr mappable). */
static inline struct shim_leaf *leaf_peek(uintptr_t addr)
{
	struct mid *m = atomic_load_explicit(&top[addr >> MID_SHIFT],
					     memory_order_acquire);
	if (unlikely(!m))
		return NULL;
	return atomic_load_explicit(
		&m->leaf[(addr >> SHIM_LEAF_SHIFT) & (MID_LEAVES - 1)],
		memory_order_acquire);
}

/* addr's leaf, or NULL; made when create is set (NULL if out of memory). */
static struct shim_leaf *leaf_of(uintptr_t addr, bool create)
{
	_Atomic(struct mid *) *mp = &top[addr >> MID_SHIFT];
	struct mid *m = atomic_load_explicit(mp, memory_order_acquire);
	if (unlikely(!m)) {
		if (!create)
			return NULL;
		struct mid *n = map_noreserve(sizeof(*n));
		if (!n)
			return NULL;
		if (atomic_compare_exchange_strong(mp, &m, n))
			m = n;
		else
			munmap(n, sizeof(*n));
	}
	_Atomic(struct shim_leaf *) *lp =
		&m->leaf[(addr >> SHIM_LEAF_SHIFT) & (MID_LEAVES - 1)];
	struct shim_leaf *l = atomic_load_explicit(lp, memory_order_acquire);
	if (unlikely(!l)) {
		if (!create)
			return NULL;
		struct shim_leaf *n = map_noreserve(sizeof(*n));
		if (!n)
			return NULL;
		n->base = addr & ~(((uintptr_t)1 << SHIM_LEAF_SHIFT) - 1);
		if (atomic_compare_exchange_strong(lp, &l, n)) {
			l = n;
			struct shim_leaf *head = atomic_load(&leaves);
			do
				n->next = head;
			while (!atomic_compare_exchange_weak(&leaves, &head,
							     n));
		} else {
			munmap(n, sizeof(*n));
		}
	}
	return l;
}

static inline bool mappable(uintptr_t addr)
{
	return !(addr & 15) && addr >> ADDR_BITS == 0;
}

struct shim_leaf *shim_live_leaf_remember(struct shim_tls *t, uintptr_t addr)
{
	struct shim_leaf *l = mappable(addr) ? leaf_peek(addr) : NULL;
	if (l) {
		t->leaf = l;
		t->leaf_base = l->base;
	}
	return l;
}

/* The address of the block whose word is l->w[i]. */
static inline uintptr_t addr_of(const struct shim_leaf *l, unsigned i)
{
	return l->base + ((uintptr_t)i << SHIM_MAP_GRAN) +
	       ((l->w[i] & SHIM_W_HALF) << 3);
}

/* The block whose word is l->w[i], at addr; false if the word names no
 * trace (the pieces of a block freed behind our back may be anything). */
static inline bool block_of(const struct shim_leaf *l, unsigned i,
			    uintptr_t addr, struct shim_block *b)
{
	uint32_t w = l->w[i];
	b->addr = addr;
	b->size = w & SHIM_W_LONG ? l->w[i + 1] >> 1
				  : (w >> SHIM_W_SIZE_SHIFT) & SHIM_W_SHORT_MAX;
	b->trace = shim_trace_by_id(w >> SHIM_W_ID_SHIFT);
	return b->trace != NULL;
}

/* (size, t)'s word at addr, or 0 when the words cannot hold it. */
static inline uint32_t word_for(uintptr_t addr, uint64_t size,
				const struct shim_trace *t)
{
	if (!t->id || t->id >= 1u << (32 - SHIM_W_ID_SHIFT) ||
	    size > SHIM_W_LONG_MAX)
		return 0;
	uint32_t w =
		t->id << SHIM_W_ID_SHIFT | shim_map_half(addr) | SHIM_W_BLOCK;
	return size <= SHIM_W_SHORT_MAX
		       ? w | (uint32_t)size << SHIM_W_SIZE_SHIFT
		       : w | SHIM_W_LONG;
}

/* ---- who may change the live blocks ------------------------------------ */

/*
 * Each change is made by its thread inside an "op": the thread raises its
 * in_op, then looks at SHIM_GATE_FROZEN; to freeze everything,
 * shim_live_lock_all raises SHIM_GATE_FROZEN, then waits for every in_op to
 * fall. A thread that sees SHIM_GATE_FROZEN lowers its in_op and waits for the
 * freeze to end.
 *
 * That store-then-load on each side needs a full fence on both, which
 * would cost each hook as much as a lock. With membarrier(2) the owner's
 * side gets away with a compiler barrier: the freezer's membarrier makes
 * every running thread of the process pass a full fence, so after it,
 * either the freezer sees an op's in_op or the op sees SHIM_GATE_FROZEN (the
 * scheme of liburcu's membarrier flavour). Without membarrier (old
 * kernels, seccomp, or before shim_live_init) owners use a real fence:
 * SHIM_GATE_FENCE says so. Both bits are in one word, so that an op tests one
 * word for the common case of neither.
 *
 * A thread without a state (early, or in its last destructors) changes
 * the blocks under anon_lock, which the freezer takes too.
 */
_Atomic int shim_live_gate = SHIM_GATE_FENCE;
static _Atomic int freeze_lock;
static _Atomic int anon_lock;
static _Atomic int64_t anon_count;

static long membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

void shim_live_init(void)
{
	atomic_store(&shim_live_gate,
		     membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0
			     ? 0
			     : SHIM_GATE_FENCE);
}

bool shim_live_op_try_gated(struct shim_tls *t, int g)
{
	if (g & SHIM_GATE_FENCE) {
		atomic_thread_fence(memory_order_seq_cst);
		g = atomic_load_explicit(&shim_live_gate, memory_order_acquire);
	}
	if (!(g & SHIM_GATE_FROZEN))
		return true;
	atomic_store_explicit(&t->in_op, 0, memory_order_release);
	return false;
}

static void op_begin(struct shim_tls *t)
{
	if (unlikely(!t)) {
		spin_lock(&anon_lock);
		return;
	}
	while (!shim_live_op_try(t))
		while (atomic_load_explicit(&shim_live_gate,
					    memory_order_acquire) &
		       SHIM_GATE_FROZEN)
			sched_yield();
}

static inline void op_end(struct shim_tls *t)
{
	if (unlikely(!t))
		spin_unlock(&anon_lock);
	else
		shim_live_op_end(t);
}

static inline void count_add(struct shim_tls *t, int64_t d)
{
	if (t)
		shim_live_nlive_add(t, d);
	else
		atomic_fetch_add_explicit(&anon_count, d, memory_order_relaxed);
}

/*
 * Clears the word of the block at addr in l, filling *out; false if the
 * word holds no block starting there. A word whose trace is gone (pieces
 * of a block freed behind our back, overwritten since) is cleared too.
 */
static bool take_word(struct shim_tls *t, struct shim_leaf *l, uintptr_t addr,
		      struct shim_block *out)
{
	unsigned i = shim_map_index(addr);
	uint32_t w = l->w[i];
	if (!shim_map_starts_at(w, addr))
		return false;
	bool ok = block_of(l, i, addr, out);
	l->w[i] = 0;
	if (w & SHIM_W_LONG)
		l->w[i + 1] = 0;
	count_add(t, -1);
	return ok;
}

/* A block freed behind our back whose word l->w[i] is in the way:
 * accounted as freed (see the header). */
static void drop_stale(struct shim_tls *t, struct shim_leaf *l, unsigned i)
{
	struct shim_block stale;
	if (take_word(t, l, addr_of(l, i), &stale))
		forget_stale(&stale);
}

/* Everything shim_live_add's fast path leaves: no state, a freeze, a new
 * leaf, stale words, the hash table. */
bool shim_live_add_slow(struct shim_tls *t, uintptr_t addr, uint64_t size,
			struct shim_trace *tr)
{
	uint32_t w = mappable(addr) ? word_for(addr, size, tr) : 0;
	struct shim_leaf *l = w ? leaf_of(addr, true) : NULL;
	bool ok = true;
	op_begin(t);
	if (likely(l != NULL)) {
		unsigned i = shim_map_index(addr);
		uint32_t old = l->w[i];
		if (unlikely(old)) {
			/* Left by a block freed behind our back: a long block
			 * before this one (its size is in the way), or one at
			 * this address. */
			if (!(old & SHIM_W_BLOCK))
				drop_stale(t, l, i - 1);
			else if (shim_map_starts_at(old, addr))
				drop_stale(t, l, i);
			old = l->w[i];
		}
		if (likely(!old)) {
			/* A long block covers the next granule: a word there
			 * is a block freed behind our back. */
			if (w & SHIM_W_LONG && i + 1 < SHIM_LEAF_WORDS &&
			    unlikely(l->w[i + 1] & SHIM_W_BLOCK))
				drop_stale(t, l, i + 1);
			l->w[i] = w;
			if (w & SHIM_W_LONG)
				l->w[i + 1] = (uint32_t)size << 1;
			count_add(t, 1);
			shim_map_mark_used(l, i);
			goto out;
		}
		/* The other half of the granule holds a block: this one
		 * goes to the hash table. */
	} else if (mappable(addr) && (l = leaf_of(addr, false))) {
		/* A stale word for addr would be found first by a remove:
		 * drop it (the block is in the table from now on). */
		unsigned i = shim_map_index(addr);
		if (shim_map_starts_at(l->w[i], addr))
			drop_stale(t, l, i);
	}
	ok = table_insert(addr, size, tr);
out:
	op_end(t);
	return ok;
}

bool shim_live_take_slow(struct shim_tls *t, uintptr_t addr,
			 struct shim_block *out)
{
	struct shim_leaf *l = mappable(addr) ? leaf_of(addr, false) : NULL;
	bool found = false;
	op_begin(t);
	if (likely(l != NULL))
		found = take_word(t, l, addr, out);
	if (!found)
		found = shim_table_remove(addr, out);
	op_end(t);
	return found;
}

bool shim_live_insert(uintptr_t addr, uint64_t size, struct shim_trace *tr)
{
	return shim_live_add(shim_tls_peek(), addr, size, tr);
}

bool shim_live_remove(uintptr_t addr, struct shim_block *out)
{
	return shim_live_take(shim_tls_peek(), addr, out);
}

void shim_live_lock_all(void)
{
	struct shim_tls *me = shim_tls_peek();
	spin_lock(&freeze_lock);
	int g = atomic_fetch_or(&shim_live_gate, SHIM_GATE_FROZEN);
	/* A failure is not expected; the fences from now on. */
	if (!(g & SHIM_GATE_FENCE) &&
	    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0)
		atomic_fetch_or(&shim_live_gate, SHIM_GATE_FENCE);
	for (struct shim_tls *t = shim_tls_all(); t; t = t->all_next) {
		/* Our own op, if a signal handler that froze interrupted it,
		 * cannot end before we return. */
		if (t == me)
			continue;
		for (int spins = 0;
		     atomic_load_explicit(&t->in_op, memory_order_acquire);
		     spins++) {
			if (spins > 64)
				sched_yield();
			else
				__builtin_ia32_pause();
		}
	}
	spin_lock(&anon_lock);
	shim_table_lock_all();
}

void shim_live_unlock_all(void)
{
	shim_table_unlock_all();
	spin_unlock(&anon_lock);
	atomic_fetch_and(&shim_live_gate, ~SHIM_GATE_FROZEN);
	spin_unlock(&freeze_lock);
}

void shim_live_reset_locks(void)
{
	shim_table_reset_locks();
	atomic_store(&anon_lock, 0);
	for (struct shim_tls *t = shim_tls_all(); t; t = t->all_next)
		atomic_store(&t->in_op, 0);
	atomic_store(&freeze_lock, 0);
	/* A new process: register again; the gate is set anew, unfrozen. */
	shim_live_init();
}

void shim_live_foreach_locked(void (*fn)(const struct shim_block *b, void *ctx),
			      void *ctx)
{
	shim_table_foreach_locked(fn, ctx);
	for (struct shim_leaf *l = atomic_load(&leaves); l; l = l->next) {
		for (unsigned pg = 0; pg < SHIM_LEAF_PAGES; pg++) {
			if (!atomic_load_explicit(&l->used[pg],
						  memory_order_relaxed))
				continue;
			for (unsigned i = pg * SHIM_PAGE_WORDS;
			     i < (pg + 1) * SHIM_PAGE_WORDS; i++) {
				struct shim_block b;
				if ((l->w[i] & SHIM_W_BLOCK) &&
				    block_of(l, i, addr_of(l, i), &b))
					fn(&b, ctx);
			}
		}
	}
}

uint64_t shim_live_count(void)
{
	int64_t n = (int64_t)shim_table_count() +
		    atomic_load_explicit(&anon_count, memory_order_relaxed);
	for (struct shim_tls *t = shim_tls_all(); t; t = t->all_next)
		n += __atomic_load_n(&t->nlive, __ATOMIC_RELAXED);
	return n > 0 ? (uint64_t)n : 0;
}
