/*
 * shim_unwind.h - stack capture for the shim (DESIGN.md §3).
 *
 * Two x86-64 unwinders: the default one follows .eh_frame CFI (so it walks
 * through Debian's libc and libstdc++, built without frame pointers) with a
 * process-wide cache of decoded rules per pc; the other follows %rbp
 * (--unwind=fp). Hook-safe: no allocation (one mmap for the cache), no
 * locks, no stdio, no TLS; both walks are async-signal-safe.
 */
#ifndef MEMPROF_SHIM_UNWIND_H
#define MEMPROF_SHIM_UNWIND_H

#include <stdint.h>

#pragma GCC visibility push(hidden) /* as in shim_internal.h */

/*
 * Fills pcs[0..n) with the calling thread's stack: pcs[0] is the return
 * address of the call to shim_unwind() (an address inside the caller), then
 * the caller's return address, and so on outwards. Returns n (0 <= n <= max).
 * Through a signal handler the walk continues in the interrupted code: the
 * entry after the handler's return address (into __restore_rt) is the exact
 * interrupted pc, not a return address.
 *
 * Stops, keeping what it has, at the outermost frame (return address marked
 * undefined by _start / clone, or 0), at code without CFI (JIT, stripped
 * .eh_frame), at a rule it does not follow (DWARF expressions other than the
 * signal frame, or a CFA in a register other than %rsp and %rbp, as the
 * dynamic loader's lazy-binding trampoline has), at a frame whose CFA is not
 * above the previous one or more than 16 MiB away, and at max. Never crashes,
 * never allocates, never takes a lock.
 */
int shim_unwind(uintptr_t *pcs, int max);

/*
 * The same, and sps[i] is the stack pointer of the frame pcs[i] belongs
 * to, as it will be when that frame resumes (the callee's CFA). For
 * finding where the program's own frames begin below the shim's.
 */
int shim_unwind_sp(uintptr_t *pcs, uintptr_t *sps, int max);

/*
 * The memory words a walk read: the unwinder is a pure function of its
 * starting registers and these words, so a later walk from the same
 * registers that finds every word unchanged would give the same stack.
 * That is what the shim's per-thread stack memo checks instead of walking.
 */
#define SHIM_UNW_LOG_MAX 160
struct shim_unw_log {
	int n;
	int overflow; /* more reads than fit: not reusable */
	int used_bp;  /* the walk used the starting %rbp (else any will do) */
	uintptr_t addr[SHIM_UNW_LOG_MAX];
	uintptr_t val[SHIM_UNW_LOG_MAX];
};

/*
 * Walks from a caller's context: pc is a return address (into the
 * caller), sp the caller's stack pointer after the return (one word above
 * the slot holding pc), bp its %rbp. pcs[0] = pc, then the caller's
 * callers. log (may be NULL) receives every word read. Same safety
 * contract as shim_unwind().
 */
int shim_unwind_from(uintptr_t pc, uintptr_t sp, uintptr_t bp, uintptr_t *pcs,
		     int max, struct shim_unw_log *log);

/*
 * Same contract, by walking the %rbp chain: right for code built with
 * -fno-omit-frame-pointer only. Stops when the next frame pointer is not
 * above the previous one, not 16-byte aligned, or more than 8 MiB away.
 */
int shim_unwind_fp(uintptr_t *pcs, int max);

/*
 * Optional one-time setup (maps the rule cache). shim_unwind() does the same
 * lazily when it was never called; concurrent first calls are fine.
 */
void shim_unwind_init(void);

/*
 * Forgets every cached rule. Call after a library was unloaded (dlclose):
 * another one may be mapped at the same addresses. Safe against concurrent
 * walks; a walk racing with it may still use an old rule once.
 */
void shim_unwind_flush(void);

#pragma GCC visibility pop

#endif
