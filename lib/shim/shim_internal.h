/*
 * shim_internal.h - state shared by the files of libmemprof.so.
 *
 * Everything here is hook-safe: no malloc, no stdio, no locks a signal
 * handler could re-enter (a hook that finds its thread already inside the
 * shim passes straight through, so a handler never waits on its own
 * thread). Memory comes from mmap. Symbols are hidden (-fvisibility).
 */
#ifndef MEMPROF_SHIM_INTERNAL_H
#define MEMPROF_SHIM_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shim/shim_unwind.h"

/* Declarations too, not only definitions: the hooks then reach the shim's
 * globals straight from %rip instead of through the GOT. */
#pragma GCC visibility push(hidden)

#define SHIM_MAX_DEPTH 256
#define SHIM_DEFAULT_DEPTH 64

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* The functions the shim forwards to (RTLD_NEXT). */
struct shim_real {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*memalign)(size_t, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	size_t (*malloc_usable_size)(void *);
};
extern struct shim_real shim_real;

struct shim_options {
	int depth;	      /* frames kept per stack */
	bool unwind_fp;	      /* walk frame pointers instead of CFI */
	bool leak_check;      /* scan the heap graph at exit (default) */
	uint64_t sample_rate; /* 0: trace every allocation; else mean bytes */
	uint64_t seed;	      /* sampling seed, 0 = the fixed default */
	bool fork_stop;	      /* forked children stop tracing */
	bool follow_exec;     /* keep LD_PRELOAD for exec'd programs */
	char output[4096];    /* exit snapshot path */
};
extern struct shim_options shim_opt;

/* 1 while tracing; 0 before init, after the exit snapshot, or after an
 * internal failure. */
extern _Atomic int shim_active;
/* shim_thread.c: per-thread state (see there for why not __thread). */
/* 8 ways: sqlite3's allocation sites missed 4 often enough that walking
 * was a third of the shim's instructions; 16 cost more to scan than they
 * saved (callgrind). */
#define SHIM_MEMO_WAYS 8

/* A stack captured from a caller's context, reusable while the words the
 * unwinder read are unchanged (shim_unwind.h). The keys of the ways lie
 * together (a lookup scans them), their logs apart (memo_log). */
struct shim_memo {
	uintptr_t pc, sp, bp;
	struct shim_trace *trace; /* NULL: empty way */
};

struct shim_tls {
	int busy;   /* depth inside the shim: nested allocations pass */
	int inreal; /* of which in calls of the real allocator only */
	unsigned victim;
	unsigned stripe; /* which stripe of a site's counters is ours */
	struct shim_tls *free_next;
	struct shim_tls *all_next; /* every state ever made, for the sums */
	/* This thread's share of the totals, written only by the thread
	 * that owns the state (relaxed stores), read by snapshots. A state
	 * reused for a new thread keeps counting on. Allocations and the
	 * bytes allocated are the sums of the sites' (shim_tls_sum). */
	uint64_t frees;
	/* Allocations and frees to the next look at the clock, modulo 256
	 * (shim_record.h). */
	uint8_t tick;
	int64_t sample_left; /* bytes to the next sampled allocation */
	int64_t live_delta;  /* live bytes not yet added to the totals */
	uint64_t rng;
	struct shim_memo memo[SHIM_MEMO_WAYS];
	struct shim_unw_log memo_log[SHIM_MEMO_WAYS];
	/* Raised by the owner while it changes the live blocks; a freeze
	 * waits for it to fall (shim_table.c). */
	_Atomic int in_op;
	/* Blocks this thread recorded minus those it removed (owner's
	 * relaxed stores): their sum over threads is the live blocks. */
	int64_t nlive;
	/* The owner's errno (set by shim_tls_create): the hooks keep it
	 * without a call of __errno_location each way. */
	int *err;
	/* The leaf of the live map this thread used last and the address
	 * its range starts at (1 when none): blocks that lie near each
	 * other skip the walk from the map's root (shim_table.c). */
	struct shim_leaf *leaf;
	uintptr_t leaf_base;
};

extern pthread_key_t shim_key;
extern long shim_tls_off; /* the key's slot from the thread pointer */
/* shim_tls_off when sampling, else -1: malloc's fast path tests one word. */
extern long shim_sample_off;

/* Creates the key and finds its slot in a descriptor of desc_size bytes
 * (0: unknown, use pthread_getspecific). */
bool shim_thread_init(size_t desc_size);
void shim_thread_after_fork(void);
/* Makes this thread's state (first hook on a new thread). */
struct shim_tls *shim_tls_create(void);
/* Threads with a state now; while there is one, live bytes are kept
 * exactly, with more they are batched (shim_record.c). */
extern _Atomic int shim_threads_live;
/* Adds a thread's live_delta to the totals (thread exit). */
void shim_live_flush(struct shim_tls *t);
/* The process's live bytes: the totals' plus every thread's delta. */
uint64_t shim_live_bytes(void);
/* Every state ever made, newest first (states are never unmapped). */
struct shim_tls *shim_tls_all(void);
/* Sums of every thread's frees, and of every site's allocations and
 * bytes allocated (without sampling, one each per allocation recorded). */
void shim_tls_sum(uint64_t *allocs, uint64_t *frees, uint64_t *alloc_bytes);

static inline struct shim_tls *shim_tls_peek(void)
{
	if (likely(shim_tls_off >= 0)) {
		struct shim_tls *t;
		__asm__("mov %%fs:(%1), %0" : "=r"(t) : "r"(shim_tls_off));
		return t;
	}
	return (struct shim_tls *)pthread_getspecific(shim_key);
}

static inline int shim_busy_get(void)
{
	struct shim_tls *t = shim_tls_peek();
	return t ? t->busy : 0;
}

static inline void shim_busy_add(int d)
{
	struct shim_tls *t = shim_tls_peek();
	if (unlikely(!t) && !(t = shim_tls_create()))
		return;
	t->busy += d;
}

/*
 * Around a call of the real allocator in a hook: busy, so that whatever
 * it calls passes through, and marked as holding nothing of the shim's
 * (so that a signal handler that ends the program there may still write
 * the exit snapshot). NULL when the thread has no state.
 */
static inline struct shim_tls *shim_real_begin(void)
{
	struct shim_tls *t = shim_tls_peek();
	if (unlikely(!t) && !(t = shim_tls_create()))
		return NULL;
	t->inreal++;
	t->busy++;
	return t;
}

static inline void shim_real_end(struct shim_tls *t)
{
	if (t) {
		t->busy--;
		t->inreal--;
	}
}

/* Whether this thread is inside the shim's own work, where it may hold
 * one of the shim's locks (a signal handler asks). */
static inline bool shim_in_shim_work(void)
{
	struct shim_tls *t = shim_tls_peek();
	return t && t->busy > t->inreal;
}

/* Counters of the whole process (DESIGN §4 meta totals). */
struct shim_totals {
	/* Exact at all times: the global peak is taken from it. Blocks
	 * and frees are counted per thread (struct shim_tls) and per
	 * shard, allocations per site, and summed when a snapshot is
	 * written. */
	_Atomic uint64_t live_bytes;
	_Atomic uint64_t peak_bytes;
	_Atomic uint64_t peak_gen; /* bumped at every new global peak */
	_Atomic uint64_t peak_ns;
	uint64_t start_ns;
};
extern struct shim_totals shim_totals;

/* An interned stack with its counters (one per distinct stack). */
/*
 * A call site's counters, kept in stripes so that threads allocating at
 * the same site do not fight over one cache line: a thread updates its own
 * stripe (shim_tls.stripe) and readers sum them. Live bytes (for the
 * bytes-at-peak bookkeeping; the snapshot takes live bytes and blocks from
 * the live table itself) may go "negative" in a stripe when another thread
 * frees; sums are taken modulo 2^64, which makes them right.
 */
#define SHIM_STRIPES 8
/* The first SHIM_STRIPES - 1 thread states own a stripe each and update
 * it with plain stores; all later ones share the last stripe, atomically
 * (shim_thread.c assigns them). */
#define SHIM_SHARED_STRIPE (SHIM_STRIPES - 1)
struct shim_stripe {
	_Atomic uint64_t live_bytes, allocs, alloc_bytes;
	/* Live bytes at the last global peak, valid when seen_gen is
	 * older than shim_totals.peak_gen (shim_stacks.c explains). */
	_Atomic uint64_t peak_bytes, seen_gen;
	uint64_t pad[3];
};

struct shim_trace {
	struct shim_trace *next; /* hash chain */
	uint64_t hash;
	uint32_t depth;
	uint32_t snap_gen; /* snapshot pass that numbered it */
	uint32_t snap_index;
	uint32_t id; /* the live map's name for it; 0 = none (shim_stacks.c) */
	/* Stripes 1 .. SHIM_STRIPES-1, made when a second thread first
	 * uses the site: single-threaded programs never pay for them. */
	_Atomic(struct shim_stripe *) more;
	struct shim_stripe s0;
	uintptr_t pcs[];
};

/* shim_init.c */
void shim_init(void);
/* The exit snapshot of a program killed by exit signal sig (trigger
 * thread), once; the meta name is the signal's. */
void shim_exit_snapshot_for_signal(int sig);
/* The same from the signal's handler, in a process without a trigger
 * thread (a forked child); nothing when the handler interrupted the
 * shim's work. false when this thread is writing the exit snapshot
 * already: sig is raised once it is written, and the handler returns. */
bool shim_exit_snapshot_in_handler(int sig);
/* Restores sig's default action and raises it in this thread: the
 * process dies by it (at once, or when the handler that runs returns). */
void shim_die_by(int sig);
extern char shim_boot_buf[];
#define SHIM_BOOT_SIZE (256 * 1024)
static inline bool shim_bootstrap_owns(const void *p)
{
	return (const char *)p >= shim_boot_buf &&
	       (const char *)p < shim_boot_buf + SHIM_BOOT_SIZE;
}
void *shim_bootstrap_alloc(size_t size, size_t align);
size_t shim_bootstrap_size(const void *p);
/* Stops tracing after an internal failure; prints one line once. */
void shim_fail(const char *what, int err);
/* Writes one line, "memprof: " + the parts (NULL = ""), to stderr with
 * write(2). */
void shim_say(const char *a, const char *b, const char *c, const char *d);
const char *shim_errname(int err);
uint64_t shim_now_ns(void);

/* shim_mem.c: memory for the shim itself. */
void *shim_mmap(size_t len);
void shim_munmap(void *p, size_t len);
/* Lock-free bump allocation from mmap'd chunks; never freed. NULL when
 * the system refuses memory. */
void *shim_arena_alloc(size_t len);

/* shim_stacks.c */
struct shim_trace *shim_trace_capture(void);
/* shim_trace_capture_from when no memo of t holds: walks the stack and
 * remembers the walk in a way of t's memo. */
struct shim_trace *shim_trace_capture_slow(struct shim_tls *t, uintptr_t pc,
					   uintptr_t sp, uintptr_t bp);

/* Whether every word the memo's walk read still holds what it read then:
 * the walk would then give the same stack (shim_unwind.h). */
static inline bool shim_memo_valid(const struct shim_unw_log *l)
{
	/* Two words a round: half the loop's steps (4 did worse than 2 on
	 * bench_tree's six-word walks, callgrind). */
#pragma GCC unroll 2
	for (int i = 0; i < l->n; i++)
		if (*(const uintptr_t *)l->addr[i] != l->val[i])
			return false;
	return true;
}

/* The stack of the code that called a hook: pc is the hook's return
 * address, sp the caller's stack pointer after the return, bp its %rbp.
 * Reuses a memoized walk when it is still valid. Inline: the hooks call
 * it at every traced allocation, and a hit is a short scan. */
static inline struct shim_trace *shim_trace_capture_from(struct shim_tls *t,
							 uintptr_t pc,
							 uintptr_t sp,
							 uintptr_t bp)
{
	/* Memos are only made once set up, for callers outside the shim,
	 * when walking CFI: a hit needs no more checks. */
	if (likely(t != NULL)) {
		/* Unrolled, each way's fields are at fixed offsets: no
		 * induction variables to step past a way that misses. */
#pragma GCC unroll 8
		for (int w = 0; w < SHIM_MEMO_WAYS; w++) {
			struct shim_memo *m = &t->memo[w];
			/* The walk depends on the starting %rbp only if it
			 * used it (code built without frame pointers keeps
			 * data there). */
			if (m->pc == pc && m->sp == sp && m->trace &&
			    (m->bp == bp || !t->memo_log[w].used_bp) &&
			    shim_memo_valid(&t->memo_log[w]))
				return m->trace;
		}
	}
	return shim_trace_capture_slow(t, pc, sp, bp);
}

/* The caller's context, taken in a hook (which gets a frame pointer from
 * __builtin_frame_address): [fp] = caller's %rbp, [fp + 8] = return
 * address, fp + 16 = the caller's stack pointer after the return. */
struct shim_ctx {
	uintptr_t pc, sp, bp;
};
#define SHIM_CALLER_CTX(c)                                        \
	do {                                                      \
		void **fa_ = (void **)__builtin_frame_address(0); \
		(c).bp = (uintptr_t)fa_[0];                       \
		(c).pc = (uintptr_t)fa_[1];                       \
		(c).sp = (uintptr_t)(fa_ + 2);                    \
	} while (0)
/* Thread state me's stripe of t's counters (me: the caller's, or NULL);
 * stripes past the first are made at their first use. */
struct shim_stripe *shim_stripe_more(struct shim_trace *t, unsigned k,
				     bool *own);
static inline struct shim_stripe *shim_stripe_of(struct shim_tls *me,
						 struct shim_trace *t,
						 bool *own)
{
	unsigned k = me ? me->stripe : 0;
	/* Only an owned stripe's thread may skip the atomics; a thread
	 * without a state (cannot happen in a hook) uses them. */
	*own = me && k != SHIM_SHARED_STRIPE;
	if (likely(k == 0))
		return &t->s0;
	return shim_stripe_more(t, k, own);
}

/* Saves this stripe's bytes at the last global peak if a peak happened
 * since it last changed (see the comment of struct shim_stripe). */
static inline void shim_stripe_catch_up(struct shim_stripe *s)
{
	uint64_t g = atomic_load_explicit(&shim_totals.peak_gen,
					  memory_order_relaxed);
	if (atomic_load_explicit(&s->seen_gen, memory_order_relaxed) != g) {
		atomic_store_explicit(
			&s->peak_bytes,
			atomic_load_explicit(&s->live_bytes,
					     memory_order_relaxed),
			memory_order_relaxed);
		atomic_store_explicit(&s->seen_gen, g, memory_order_relaxed);
	}
}

/*
 * Adds v to a 64-bit counter that only the calling thread writes, with one
 * add to memory: readers (relaxed atomic loads, from any thread) see the
 * old value or the new one, never a torn one (x86-64, 8-byte aligned), and
 * a signal handler cannot come between a load and a store. Not a locked
 * add: no other thread writes it. A relaxed atomic load and store, which
 * says the same in C, is three instructions.
 */
static inline void shim_own_add(void *counter, uint64_t v)
{
	__asm__("addq %1, %0" : "+m"(*(uint64_t *)counter) : "er"(v));
}

/* Stripe 0 has one writer (shim_thread.c): plain adds, which the
 * snapshot's readers may read at any time. Other stripes are shared. */
#define SHIM_STRIPE_ADD(s, field, v, own)                                \
	do {                                                             \
		if (own)                                                 \
			shim_own_add(&(s)->field, (v));                  \
		else                                                     \
			atomic_fetch_add_explicit(&(s)->field, (v),      \
						  memory_order_relaxed); \
	} while (0)

/* Counts an allocation of (bytes, count) at t, or bytes freed, in me's
 * stripe. With sampling, bytes and count are the block's estimates. The
 * first thread's own stripe (most programs' only one) inline, the others
 * out of line (shim_stacks.c). */
void shim_trace_count_alloc_any(struct shim_tls *me, struct shim_trace *t,
				uint64_t bytes, uint64_t count);
void shim_trace_count_free_any(struct shim_tls *me, struct shim_trace *t,
			       uint64_t bytes);

static inline void shim_trace_count_alloc(struct shim_tls *me,
					  struct shim_trace *t, uint64_t bytes,
					  uint64_t count)
{
	if (likely(me != NULL) && likely(me->stripe == 0)) {
		struct shim_stripe *s = &t->s0;
		shim_stripe_catch_up(s);
		SHIM_STRIPE_ADD(s, live_bytes, bytes, true);
		SHIM_STRIPE_ADD(s, allocs, count, true);
		SHIM_STRIPE_ADD(s, alloc_bytes, bytes, true);
		return;
	}
	shim_trace_count_alloc_any(me, t, bytes, count);
}

static inline void shim_trace_count_free(struct shim_tls *me,
					 struct shim_trace *t, uint64_t bytes)
{
	if (likely(me != NULL) && likely(me->stripe == 0)) {
		struct shim_stripe *s = &t->s0;
		shim_stripe_catch_up(s);
		SHIM_STRIPE_ADD(s, live_bytes, -bytes, true);
		return;
	}
	shim_trace_count_free_any(me, t, bytes);
}

/* Iterates every trace (no order); fn returns nothing. */
void shim_trace_foreach(void (*fn)(struct shim_trace *t, void *ctx), void *ctx);
uint64_t shim_trace_count(void);
/* Trace ids: 1 .. 2^23 - 1, in pages of 4096 pointers mapped as ids are
 * given out. The live map's words hold ids, not pointers. */
#define SHIM_TRACE_ID_BITS 23
#define SHIM_ID_PAGE_BITS 12
#define SHIM_ID_PAGES (1u << (SHIM_TRACE_ID_BITS - SHIM_ID_PAGE_BITS))
extern _Atomic(struct shim_trace **) shim_trace_ids[SHIM_ID_PAGES];
/* The trace with that id, or NULL (a word that is not one). */
static inline struct shim_trace *shim_trace_by_id(uint32_t id)
{
	struct shim_trace **pg =
		atomic_load_explicit(&shim_trace_ids[(id >> SHIM_ID_PAGE_BITS) &
						     (SHIM_ID_PAGES - 1)],
				     memory_order_acquire);
	return pg ? pg[id & ((1u << SHIM_ID_PAGE_BITS) - 1)] : NULL;
}
uint64_t shim_trace_peak_bytes(const struct shim_trace *t);
uint64_t shim_trace_allocs(const struct shim_trace *t);
uint64_t shim_trace_alloc_bytes(const struct shim_trace *t);

/* shim_table.c: the live-block table. */
struct shim_block {
	uintptr_t addr; /* 0 = empty slot */
	uint64_t size;
	struct shim_trace *trace;
};
/* The hash table behind the direct map (shim_table.c). */
bool shim_table_remove(uintptr_t addr, struct shim_block *out);
void shim_table_foreach_locked(void (*fn)(const struct shim_block *b,
					  void *ctx),
			       void *ctx);
void shim_table_lock_all(void);
void shim_table_unlock_all(void);
void shim_table_reset_locks(void);
uint64_t shim_table_count(void);
/*
 * The live blocks as the hooks see them. Insert records a block (a stale
 * entry for the same address is accounted as freed first; false when out
 * of shim memory); remove takes addr out, filling *out, and says whether
 * it was there. Both under the calling thread's own lock: call remove
 * before the block goes back to the allocator, insert after it came. The
 * same for a thread state the caller has: shim_live_add and
 * shim_live_take (shim_live.h).
 */
bool shim_live_insert(uintptr_t addr, uint64_t size, struct shim_trace *t);
bool shim_live_remove(uintptr_t addr, struct shim_block *out);
/* Freezes the live blocks: nothing changes until shim_live_unlock_all. */
void shim_live_lock_all(void);
void shim_live_unlock_all(void);
/* Every live block; between shim_live_lock_all and _unlock_all only. */
void shim_live_foreach_locked(void (*fn)(const struct shim_block *b, void *ctx),
			      void *ctx);
/* After fork, in the child: every lock free. */
void shim_live_reset_locks(void);
/* Once, before the hooks trace: whether freezes can use membarrier(2). */
void shim_live_init(void);
/* Live blocks (unlocked: a moment's figure). */
uint64_t shim_live_count(void);

/* shim_record.c: accounting called by the hooks. */
/* Records a new block, its stack taken from the hook's caller context;
 * me is the caller's thread state (or NULL). */
void shim_record_alloc_ctx(struct shim_tls *me, void *p, size_t size,
			   const struct shim_ctx *c);
/* The same with the trace already known. */
void shim_record_alloc_trace(void *p, size_t size, struct shim_trace *t);
/* Counts a block already taken out of the table as freed. */
void shim_account_free(const struct shim_block *b);
void shim_account_free_by(struct shim_tls *me, const struct shim_block *b);

/* A live block as the snapshot writes it (sorted by address). */
struct shim_blk {
	uint64_t addr, size;
	uint64_t trace;
};

/* shim_scan.c: the heap graph (formats/snapshot.md, GRPH). Root kinds are
 * the format's bits (MP_ROOT_* in memprof_trace.h). */
#define MP_ROOT_DATA_BIT 0x1u
#define MP_ROOT_STACK_BIT 0x2u
#define MP_ROOT_REGS_BIT 0x4u
#define MP_ROOT_TLS_BIT 0x8u

struct shim_graph {
	size_t n;		/* blocks */
	uint8_t *root_start;	/* per block: root kinds at start */
	uint8_t *root_interior; /* per block: root kinds inside */
	size_t root_bytes;	/* mapped size of each mask array */
	uint64_t *edge_start;	/* n + 1 offsets into edges */
	uint64_t *edges;	/* (target << 3) | MP_EDGE_* flags */
	size_t nedges, edges_cap;
	uint32_t threads, threads_unscanned;
};

/* Once, from the constructor: signal number, own module, TLS size. */
void shim_scan_init(void);
/* Called first thing where the program enters the shim's exit path, with
 * that function's frame address: the current thread's roots start there. */
void shim_scan_mark_entry(uintptr_t sp) __attribute__((noinline));
/* Instead, from a thread of the shim's own: no stack of the program's. */
void shim_scan_mark_none(void);
/* The signal that stops threads for the scan: a real-time signal
 * programs rarely use (LeakSanitizer avoids signals with ptrace, which
 * needs a helper process we lack). The shim never blocks it where it
 * waits. */
#define SHIM_STOP_SIGNAL (SIGRTMAX - 5)
/* Before stopping the world: the modules' writable segments (this takes
 * the loader's lock, which a stopped thread might hold). */
void shim_scan_prepare(void);
/* Stops every other thread; returns how many could not be stopped. */
int shim_scan_stop_world(void);
void shim_scan_resume_world(void);
/* Scans roots and blocks (world stopped, blocks sorted); false when out
 * of memory. */
bool shim_scan_graph(const struct shim_blk *v, size_t n, int unanswered,
		     struct shim_graph *g);
void shim_graph_release(struct shim_graph *g);

/* shim_timeline.c */
struct mpw;
/* On the hot path: samples live bytes/blocks when an interval passed. */
void shim_timeline_tick(void);
/* Records that snapshot seq is being taken now (and a sample). */
void shim_timeline_mark(uint64_t seq);
/* Writes the TIME section. */
void shim_timeline_write(struct mpw *w);
void shim_timeline_reset_lock(void);

/* shim_api.c and shim_trigger.c */
/* FILE.memprof -> FILE.seq.memprof into dst (cap bytes); false if long. */
bool shim_numbered_path(char *dst, size_t cap, uint64_t seq);
/* Takes the next numbered snapshot (API, signal, interval); returns its
 * number or -errno. */
long shim_take_snapshot(const char *trigger, const char *name);
/* From the constructor: starts the signal/interval trigger thread when
 * MEMPROF_SNAPSHOT_SIGNAL or MEMPROF_INTERVAL_MS asks for it. */
void shim_trigger_start(void);
/* The trigger thread's id (0: none), which the heap scan does not stop. */
pid_t shim_trigger_tid(void);
/* "SIGTERM", ... for the exit signals memprof handles. */
const char *shim_signal_name(int sig);

/* The exported API behind lib/memprof.h's inline wrappers (declared here
 * without the header's weak attribute, which would make the definitions
 * weak too). */
#pragma GCC visibility push(default)
int memprof_api_snapshot(const char *name);
void memprof_api_traced_memory(size_t *current, size_t *peak);
void memprof_api_reset_peak(void);
int memprof_api_is_tracing(void);
#pragma GCC visibility pop

/* A counter of a thread's own, bumped by its owner only: a plain add that
 * snapshots may read at any time (shim_own_add). */
#define BUMP(field, v) shim_own_add(&(field), (v))

/* shim_sample.c: --sample-rate */
void shim_sample_init(void);
/* Whether this allocation of size bytes is traced (counts down). */
bool shim_sample_take(struct shim_tls *t, size_t size);
/* 1/pi(size), the weight of a traced allocation (1 without sampling). */
double shim_sample_weight(uint64_t size);
/* Adds (+1) or removes (-1) a traced block's address in the filter. */
void shim_sample_note(uintptr_t p, int delta);
/* The counting filter of traced blocks' addresses (NULL: not sampling). */
#define SHIM_FILTER_BITS 20
extern _Atomic unsigned char *shim_sample_filter;
/* A slot per 16 bytes of 16 MiB: blocks side by side share cache lines
 * of the filter (a hash would spread a small heap over all of it), and
 * addresses 16 MiB apart share a slot, which only costs a lookup. */
static inline size_t shim_sample_slot(uintptr_t p)
{
	return (size_t)(p >> 4) & ((1u << SHIM_FILTER_BITS) - 1);
}
/* false when p is certainly not a traced block. */
static inline bool shim_sample_maybe(uintptr_t p)
{
	return !shim_sample_filter ||
	       atomic_load_explicit(&shim_sample_filter[shim_sample_slot(p)],
				    memory_order_relaxed);
}

/* shim_snapshot.c */
/* Writes a snapshot to path; returns 0 or an errno. trigger is "exit",
 * "api", ...; name may be NULL. */
int shim_snapshot_write(const char *path, const char *trigger, const char *name,
			uint64_t seq, bool graph);
/* Around the real dlclose: the modules loaded before (NULL when it cannot
 * tell), then those of them that are gone are kept for the MODS section
 * of later snapshots, so that frames in a library that was unloaded still
 * resolve. */
void *shim_unload_begin(void);
void shim_unload_end(void *before);
/* In a forked child: the snapshot locks, whose holders are gone. */
void shim_snapshot_after_fork(void);

#pragma GCC visibility pop

#endif
