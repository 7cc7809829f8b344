/*
 * shim_thread.c - per-thread state of the shim: the re-entrancy depth and
 * the memo of recent stacks.
 *
 * Not a __thread variable: a TLS module in the shim would give every
 * thread of the program a larger DTV (Valgrind's oracle sees the extra 16
 * bytes). The state hangs off a pthread key instead, and since keys below
 * 32 live in the thread descriptor at a fixed offset from the thread
 * pointer, the offset is found once (a marker value stored through the key
 * and looked for in our own descriptor) and read with one %fs-relative
 * load, no call into libc. Memory comes from mmap; a thread's state goes to
 * a free list when it exits. Hook-safe: no malloc, no stdio.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "shim/shim_internal.h"

pthread_key_t shim_key;
long shim_tls_off = -1;

static struct shim_tls *free_list;
static _Atomic unsigned next_stripe;
static _Atomic(struct shim_tls *) all_list;
static _Atomic int free_lock;

static void lock(void)
{
	while (atomic_exchange_explicit(&free_lock, 1, memory_order_acquire))
		sched_yield();
}

static void unlock(void)
{
	atomic_store_explicit(&free_lock, 0, memory_order_release);
}

_Atomic int shim_threads_live;

/*
 * Making and releasing a state take locks while the thread has no state
 * (so no busy count) or is about to lose it: a signal handler that
 * allocates there would take them again and spin forever. Signals wait
 * meanwhile, all but the heap scan's stop signal, whose handler takes no
 * lock and must reach every thread.
 */
static void signals_hold(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SHIM_STOP_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

static void signals_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static void tls_release(void *v)
{
	struct shim_tls *t = v;
	if (!t)
		return;
	sigset_t old;
	signals_hold(&old);
	shim_live_flush(t);
	atomic_fetch_sub(&shim_threads_live, 1);
	lock();
	t->free_next = free_list;
	free_list = t;
	unlock();
	signals_restore(&old);
}

static struct shim_tls *tls_create(void);

struct shim_tls *shim_tls_create(void)
{
	sigset_t old;
	signals_hold(&old);
	struct shim_tls *t = tls_create();
	signals_restore(&old);
	return t;
}

static struct shim_tls *tls_create(void)
{
	lock();
	struct shim_tls *t = free_list;
	if (t)
		free_list = t->free_next;
	unlock();
	bool fresh = t == NULL;
	if (t) {
		/* Reused: its counts stay part of the totals, and its stripe
		 * (a state has one owner at a time). */
		t->busy = 0;
		t->inreal = 0;
		t->victim = 0;
		memset(t->memo, 0, sizeof(t->memo));
	} else {
		t = shim_mmap(sizeof(*t)); /* zeroed */
		if (!t)
			return NULL;
		struct shim_tls *head = atomic_load(&all_list);
		do
			t->all_next = head;
		while (!atomic_compare_exchange_weak(&all_list, &head, t));
	}
	/* The first states (the first thread, usually main, gets stripe 0,
	 * which every site has inline) own a stripe each, alone: their
	 * owner updates it without atomic read-modify-writes. A state has
	 * one thread at a time, so a reused one keeps its stripe. Later
	 * states share the last stripe and update it atomically. */
	if (fresh) {
		unsigned seq = atomic_fetch_add(&next_stripe, 1);
		t->stripe = seq < SHIM_SHARED_STRIPE ? seq : SHIM_SHARED_STRIPE;
		t->leaf_base = 1;
	}
	t->err = &errno;
	atomic_fetch_add(&shim_threads_live, 1);
	pthread_setspecific(shim_key, t);
	return t;
}

struct shim_tls *shim_tls_all(void)
{
	return atomic_load(&all_list);
}

static void add_site(struct shim_trace *t, void *ctx)
{
	uint64_t *sums = ctx;
	sums[0] += shim_trace_allocs(t);
	sums[1] += shim_trace_alloc_bytes(t);
}

void shim_tls_sum(uint64_t *allocs, uint64_t *frees, uint64_t *alloc_bytes)
{
	uint64_t f = 0, sums[2] = {0, 0};
	for (struct shim_tls *t = atomic_load(&all_list); t; t = t->all_next)
		f += __atomic_load_n(&t->frees, __ATOMIC_RELAXED);
	shim_trace_foreach(add_site, sums);
	*allocs = sums[0];
	*frees = f;
	*alloc_bytes = sums[1];
}

/* The thread pointer: on x86-64 the descriptor's first word points to
 * itself. */
static uintptr_t thread_pointer(void)
{
	uintptr_t tp;
	__asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
	return tp;
}

static long find_slot(size_t desc_size)
{
	const uintptr_t m1 = 0x6d656d70726f6631ull, m2 = 0x6d656d70726f6632ull;
	uintptr_t tp = thread_pointer();
	long found = -1;
	pthread_setspecific(shim_key, (void *)m1);
	for (size_t off = 8; off + 8 <= desc_size; off += 8)
		if (*(const uintptr_t *)(tp + off) == m1) {
			found = (long)off;
			break;
		}
	if (found >= 0) {
		pthread_setspecific(shim_key, (void *)m2);
		if (*(const uintptr_t *)(tp + (uintptr_t)found) != m2)
			found = -1;
	}
	pthread_setspecific(shim_key, NULL);
	return found;
}

bool shim_thread_init(size_t desc_size)
{
	if (pthread_key_create(&shim_key, tls_release) != 0)
		return false;
	if (desc_size)
		shim_tls_off = find_slot(desc_size);
	return true;
}

void shim_thread_after_fork(void)
{
	atomic_store(&free_lock, 0);
}
