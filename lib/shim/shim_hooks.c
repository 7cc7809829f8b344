/*
 * shim_hooks.c - the interposed malloc family (DESIGN §2.1).
 *
 * Each hook forwards to the real allocator and, when tracing and not
 * already inside the shim on this thread, records the result. errno is
 * what the real call left. Before the real functions are known, requests
 * are served from the bootstrap arena; blocks from it are recognised by
 * address and never reach the real free. A freed block leaves the table
 * before the real free, so that another thread cannot be handed the same
 * address and record it while we still hold the old entry.
 *
 * Hook-safe: no malloc, no stdio.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim/shim_internal.h"
#include "shim/shim_live.h"
#include "shim/shim_record.h"
#include "shim/shim_unwind.h"

#define EXPORT __attribute__((visibility("default")))

static inline bool tracing(void)
{
	return atomic_load_explicit(&shim_active, memory_order_relaxed) &&
	       !shim_busy_get();
}

/*
 * With --sample-rate, whether this allocation goes untraced: it is then
 * only counted in the thread's exact totals.
 */
static inline bool sample_skip(size_t size)
{
	if (likely(!shim_opt.sample_rate))
		return false;
	struct shim_tls *t = shim_tls_peek();
	if (unlikely(!t) && !(t = shim_tls_create()))
		return true;
	return !shim_sample_take(t, size);
}

static inline void after_alloc(void *p, size_t size, const struct shim_ctx *c)
{
	if (sample_skip(size))
		return;
	int e = errno;
	shim_busy_add(1);
	shim_record_alloc_ctx(shim_tls_peek(), p, size, c);
	shim_busy_add(-1);
	errno = e;
}

/* Whether t may trace at once: a thread state, not inside the shim, set
 * up and tracing. */
static inline bool fast_ok(struct shim_tls *t)
{
	return likely(t != NULL) && likely(!t->busy) &&
	       likely(atomic_load_explicit(&shim_active, memory_order_relaxed));
}

/*
 * Everything but the sampling fast path, out of line so that malloc()
 * itself stays small: no frame, no register saves for an untraced call.
 * malloc jumps here (a tail call), so this function's return address is
 * malloc's caller's; were it called instead (no tail calls, as at -O0),
 * the context would point into the shim and the stack would be taken the
 * general way, which skips the shim's frames.
 */
static __attribute__((noinline)) void *malloc_slow(size_t size)
{
	/* The caller's context is read from the frame where it is used:
	 * taken at the top, it would be kept on the stack across the real
	 * call. */
	struct shim_ctx c;
	struct shim_tls *t = shim_tls_peek();
	if (fast_ok(t)) {
		/* shim_active implies the real functions are known. */
		t->busy++;
		t->inreal++;
		void *p = shim_real.malloc(size);
		t->inreal--;
		if (likely(p != NULL) && (likely(!shim_opt.sample_rate) ||
					  shim_sample_take(t, size))) {
			int e = *t->err;
			SHIM_CALLER_CTX(c);
			shim_record_alloc_ctx_inl(t, p, size, &c);
			*t->err = e;
		}
		t->busy--;
		return p;
	}
	if (unlikely(!shim_real.malloc)) {
		shim_init();
		if (!shim_real.malloc)
			return shim_bootstrap_alloc(size, 16);
	}
	if (!tracing())
		return shim_real.malloc(size);
	struct shim_tls *rt = shim_real_begin();
	void *p = shim_real.malloc(size);
	shim_real_end(rt);
	if (p) {
		SHIM_CALLER_CTX(c);
		after_alloc(p, size, &c);
	}
	return p;
}

/*
 * With sampling, an allocation the countdown does not reach costs a load
 * of the thread's state, a compare and a subtraction. No test of busy or
 * shim_active: such an allocation is untraced anyway, and one made inside
 * the shim (a signal handler's) that counts down without reaching zero
 * leaves the rest of the countdown exponential with the same mean, so no
 * later allocation's chance to be sampled changes; one that would reach
 * zero goes to malloc_slow, which leaves the countdown alone. A new
 * thread's countdown is 0 until malloc_slow draws it.
 */
EXPORT void *malloc(size_t size)
{
	long off = shim_sample_off;
	if (off >= 0) {
		struct shim_tls *t;
		__asm__("mov %%fs:(%1), %0" : "=r"(t) : "r"(off));
		if (likely(t != NULL) && (int64_t)size < t->sample_left) {
			t->sample_left -= (int64_t)size;
			return shim_real.malloc(size);
		}
	}
	return malloc_slow(size);
}

static __attribute__((noinline)) void free_slow(void *p)
{
	if (!p || unlikely(shim_bootstrap_owns(p)))
		return;
	struct shim_tls *t = shim_tls_peek();
	if (fast_ok(t) && likely(!shim_opt.sample_rate)) {
		int e = *t->err;
		struct shim_block b;
		t->busy++;
		if (shim_live_take(t, (uintptr_t)p, &b))
			shim_account_free_inl(t, &b);
		t->busy--;
		*t->err = e;
		shim_real.free(p);
		return;
	}
	if (unlikely(!shim_real.free)) {
		shim_init();
		if (!shim_real.free)
			return; /* leak rather than crash */
	}
	if (tracing() && (likely(!shim_opt.sample_rate) ||
			  shim_sample_maybe((uintptr_t)p))) {
		int e = errno;
		struct shim_block b;
		shim_busy_add(1);
		if (shim_live_remove((uintptr_t)p, &b))
			shim_account_free(&b);
		shim_busy_add(-1);
		errno = e;
	}
	shim_real.free(p);
}

EXPORT void free(void *p)
{
	/* Sampling: most blocks were never traced, and the filter says so
	 * with one byte read (the bootstrap arena's slots always say
	 * "maybe"). Without sampling there is no filter. */
	_Atomic unsigned char *f = shim_sample_filter;
	if (f && !atomic_load_explicit(&f[shim_sample_slot((uintptr_t)p)],
				       memory_order_relaxed)) {
		shim_real.free(p);
		return;
	}
	free_slow(p);
}

EXPORT void *calloc(size_t n, size_t size)
{
	struct shim_ctx ctx;
	SHIM_CALLER_CTX(ctx);
	if (unlikely(!shim_real.calloc)) {
		shim_init();
		if (!shim_real.calloc) {
			size_t total;
			if (__builtin_mul_overflow(n, size, &total))
				return NULL;
			/* The arena is static, hence already zero. */
			return shim_bootstrap_alloc(total, 16);
		}
	}
	if (!tracing())
		return shim_real.calloc(n, size);
	struct shim_tls *rt = shim_real_begin();
	void *p = shim_real.calloc(n, size);
	shim_real_end(rt);
	if (p)
		after_alloc(p, n * size, &ctx);
	return p;
}

static void *realloc_from_bootstrap(void *p, size_t size)
{
	size_t old = shim_bootstrap_size(p);
	void *q = malloc(size);
	if (q)
		memcpy(q, p, old < size ? old : size);
	return q;
}

EXPORT void *realloc(void *p, size_t size)
{
	struct shim_ctx ctx; /* read where used, as in malloc_slow */
	if (!p)
		return malloc(size);
	if (unlikely(shim_bootstrap_owns(p)))
		return realloc_from_bootstrap(p, size);
	if (unlikely(!shim_real.realloc)) {
		shim_init();
		if (!shim_real.realloc)
			return NULL;
	}
	/* One look at the thread's state, handed down (as malloc_slow). */
	struct shim_tls *t = shim_tls_peek();
	if (unlikely(!fast_ok(t))) {
		/* Not tracing, or (the only other case) no state yet. */
		if (!tracing() || !(t = shim_tls_create()))
			return shim_real.realloc(p, size);
	}
	t->busy++;
	struct shim_block old;
	bool traced = !shim_opt.sample_rate || shim_sample_maybe((uintptr_t)p);
	bool had = traced && shim_live_take(t, (uintptr_t)p, &old);
	void *q = shim_real.realloc(p, size);
	int e = *t->err;
	if (!q && size != 0) {
		/* Failed: p is untouched, so its entry goes back as it was. */
		if (had)
			shim_live_add(t, old.addr, old.size, old.trace);
	} else {
		/* Moved, resized in place, or freed by realloc(p, 0): like
		 * Valgrind, one free of the old block and one allocation. */
		if (had)
			shim_account_free_inl(t, &old);
		if (q && (likely(!shim_opt.sample_rate) ||
			  shim_sample_take(t, size))) {
			SHIM_CALLER_CTX(ctx);
			shim_record_alloc_ctx_inl(t, q, size, &ctx);
		}
	}
	t->busy--;
	*t->err = e;
	return q;
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

EXPORT void *memalign(size_t align, size_t size)
{
	struct shim_ctx ctx;
	SHIM_CALLER_CTX(ctx);
	if (unlikely(!shim_real.memalign)) {
		shim_init();
		if (!shim_real.memalign)
			return shim_bootstrap_alloc(size, align);
	}
	if (!tracing())
		return shim_real.memalign(align, size);
	struct shim_tls *rt = shim_real_begin();
	void *p = shim_real.memalign(align, size);
	shim_real_end(rt);
	if (p)
		after_alloc(p, size, &ctx);
	return p;
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	struct shim_ctx ctx;
	SHIM_CALLER_CTX(ctx);
	if (unlikely(!shim_real.posix_memalign)) {
		shim_init();
		if (!shim_real.posix_memalign) {
			void *p = shim_bootstrap_alloc(size, align);
			if (!p)
				return ENOMEM;
			*out = p;
			return 0;
		}
	}
	if (!tracing())
		return shim_real.posix_memalign(out, align, size);
	struct shim_tls *rt = shim_real_begin();
	int r = shim_real.posix_memalign(out, align, size);
	shim_real_end(rt);
	if (r == 0)
		after_alloc(*out, size, &ctx);
	return r;
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
	struct shim_ctx ctx;
	SHIM_CALLER_CTX(ctx);
	if (unlikely(!shim_real.aligned_alloc)) {
		shim_init();
		if (!shim_real.aligned_alloc)
			return memalign(align, size);
	}
	if (!tracing())
		return shim_real.aligned_alloc(align, size);
	struct shim_tls *rt = shim_real_begin();
	void *p = shim_real.aligned_alloc(align, size);
	shim_real_end(rt);
	if (p)
		after_alloc(p, size, &ctx);
	return p;
}

EXPORT void *valloc(size_t size)
{
	struct shim_ctx ctx;
	SHIM_CALLER_CTX(ctx);
	if (unlikely(!shim_real.valloc)) {
		shim_init();
		if (!shim_real.valloc)
			return memalign((size_t)sysconf(_SC_PAGESIZE), size);
	}
	if (!tracing())
		return shim_real.valloc(size);
	struct shim_tls *rt = shim_real_begin();
	void *p = shim_real.valloc(size);
	shim_real_end(rt);
	if (p)
		after_alloc(p, size, &ctx);
	return p;
}

EXPORT void *pvalloc(size_t size)
{
	struct shim_ctx ctx;
	SHIM_CALLER_CTX(ctx);
	if (unlikely(!shim_real.pvalloc)) {
		shim_init();
		if (!shim_real.pvalloc) {
			size_t pg = (size_t)sysconf(_SC_PAGESIZE);
			return memalign(pg, (size + pg - 1) & ~(pg - 1));
		}
	}
	if (!tracing())
		return shim_real.pvalloc(size);
	struct shim_tls *rt = shim_real_begin();
	void *p = shim_real.pvalloc(size);
	shim_real_end(rt);
	/* pvalloc rounds up to whole pages; record what was asked for, as
	 * Valgrind does. */
	if (p)
		after_alloc(p, size, &ctx);
	return p;
}

EXPORT size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	if (unlikely(shim_bootstrap_owns(p)))
		return shim_bootstrap_size(p);
	if (unlikely(!shim_real.malloc_usable_size)) {
		shim_init();
		if (!shim_real.malloc_usable_size)
			return 0;
	}
	return shim_real.malloc_usable_size(p);
}

/* The unwinder caches rules by address; a library loaded later at the
 * addresses of one that is unloaded must not inherit them. The modules the
 * call unloads are remembered for the snapshots (shim_snapshot.c): the
 * blocks they allocated outlive them. No busy count around the real call:
 * the frees it makes are the program's. */
EXPORT int dlclose(void *handle)
{
	static int (*real_dlclose)(void *);
	if (unlikely(!real_dlclose))
		real_dlclose = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
	if (unlikely(!real_dlclose))
		return -1;
	int e = errno;
	void *before = shim_unload_begin();
	errno = e;
	int r = real_dlclose(handle);
	e = errno;
	shim_unload_end(before);
	shim_unwind_flush();
	errno = e;
	return r;
}
