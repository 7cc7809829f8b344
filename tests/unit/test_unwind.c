/*
 * test_unwind.c - the shim's stack walkers (lib/shim/shim_unwind.c).
 *
 * Chains of functions built without frame pointers record their own return
 * addresses; a walk from the innermost one must return exactly those, in
 * order. glibc's backtrace() (libgcc's unwinder) is the independent oracle
 * for the frames we cannot name (libc's qsort, the signal trampoline, thread
 * start).
 */
#include "../../lib/shim/shim_unwind.c"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef __clang__
#define TU_NOINLINE __attribute__((noinline))
#define TU_NOFP
#define TU_FP
#else
/* noipa: no inlining, cloning or identical-code folding of the levels. */
#define TU_NOINLINE __attribute__((noipa))
#define TU_NOFP __attribute__((optimize("omit-frame-pointer")))
#define TU_FP __attribute__((optimize("no-omit-frame-pointer")))
#endif
/* Taking the frame address makes gcc and clang keep %rbp as frame pointer. */
#define TU_FORCE_FP() __asm__ volatile("" ::"r"(__builtin_frame_address(0)))
/* After a call: the call cannot become a tail call. */
#define TU_BARRIER() __asm__ volatile("" ::: "memory")

#define TU_MAX 128

static uintptr_t tu_pcs[TU_MAX], tu_bt[TU_MAX];
static int tu_n, tu_bt_n;
static uintptr_t tu_cap_ra; /* return address into capture's caller */
static volatile int tu_sink;

/* Walks with shim_unwind, then with backtrace() from the same function. */
TU_NOINLINE TU_NOFP static void tu_capture(void)
{
	tu_cap_ra = (uintptr_t)__builtin_return_address(0);
	tu_n = shim_unwind(tu_pcs, TU_MAX);
	TU_BARRIER();
	void *bt[TU_MAX];
	tu_bt_n = backtrace(bt, TU_MAX);
	TU_BARRIER();
	for (int i = 0; i < tu_bt_n; i++)
		tu_bt[i] = (uintptr_t)bt[i];
}

static bool tu_in_fn(uintptr_t pc, const void *fn, size_t size)
{
	return pc > (uintptr_t)fn && pc < (uintptr_t)fn + size;
}

static int tu_find(const uintptr_t *pcs, int n, uintptr_t pc)
{
	for (int i = 0; i < n; i++)
		if (pcs[i] == pc)
			return i;
	return -1;
}

/* Frames 1.. of our walk equal backtrace()'s (frame 0: different calls;
 * under AddressSanitizer backtrace() is intercepted: one frame more). */
static void tu_assert_matches_backtrace(void)
{
	cr_assert_gt(tu_n, 1);
	int j = tu_find(tu_bt, tu_bt_n < 3 ? tu_bt_n : 3, tu_pcs[1]);
	cr_assert_geq(j, 1, "backtrace() does not have frame 1 %#lx",
		      (unsigned long)tu_pcs[1]);
	cr_assert_eq(tu_n - 1, tu_bt_n - j,
		     "shim_unwind %d frames, backtrace %d", tu_n,
		     tu_bt_n - j + 1);
	for (int i = 1; i < tu_n; i++)
		cr_assert_eq(tu_pcs[i], tu_bt[i - 1 + j],
			     "frame %d: %#lx != %#lx", i,
			     (unsigned long)tu_pcs[i],
			     (unsigned long)tu_bt[i - 1 + j]);
}

/* ---- a 12-deep chain without frame pointers ---------------------------- */

static uintptr_t tu_chain_ra[13];

#define TU_LEVEL(k, next)                                                \
	TU_NOINLINE TU_NOFP static void tu_level##k(void)                \
	{                                                                \
		volatile char pad[8 * k + 3];                            \
		pad[0] = (char)k;                                        \
		tu_chain_ra[k] = (uintptr_t)__builtin_return_address(0); \
		next();                                                  \
		TU_BARRIER();                                            \
		tu_sink += pad[0];                                       \
	}

TU_LEVEL(12, tu_capture)
TU_LEVEL(11, tu_level12)
TU_LEVEL(10, tu_level11)
TU_LEVEL(9, tu_level10)
TU_LEVEL(8, tu_level9)
TU_LEVEL(7, tu_level8)
TU_LEVEL(6, tu_level7)
TU_LEVEL(5, tu_level6)
TU_LEVEL(4, tu_level5)
TU_LEVEL(3, tu_level4)
TU_LEVEL(2, tu_level3)
TU_LEVEL(1, tu_level2)

static void tu_assert_chain(const uintptr_t *pcs, int n)
{
	cr_assert_gt(n, 13);
	cr_assert(tu_in_fn(pcs[0], (const void *)tu_capture, 256),
		  "pcs[0] %#lx not in tu_capture %p", (unsigned long)pcs[0],
		  (const void *)tu_capture);
	cr_assert_eq(pcs[1], tu_cap_ra);
	for (int k = 12; k >= 1; k--)
		cr_assert_eq(pcs[14 - k], tu_chain_ra[k], "level %d", k);
}

Test(unwind, walks_twelve_frames_without_frame_pointers)
{
	tu_level1();
	TU_BARRIER();
	tu_assert_chain(tu_pcs, tu_n);
	tu_assert_matches_backtrace();
}

/* Whether the rule for return address ra is in the cache. */
static bool tu_cached(struct unw_slot *tab, uintptr_t ra)
{
	uint64_t v = unw_cache_get(tab, ra, ra - 1);
	return v != 0 && ((v >> 40) & UNW_VALID);
}

/* One call site for every round, whatever the test's loop becomes. */
static void tu_nothing(void)
{
}

TU_NOINLINE static void tu_chain_walk(bool flush)
{
	/* A call either way: a branch would let gcc duplicate the walk. */
	void (*volatile before)(void) = flush ? shim_unwind_flush : tu_nothing;
	before();
	tu_level1();
	TU_BARRIER();
}

Test(unwind, cached_rules_give_the_same_stack)
{
	uintptr_t first[TU_MAX];
	int n1 = 0;
	for (int round = 0; round < 4; round++) {
		tu_chain_walk(round == 2);
		tu_assert_chain(tu_pcs, tu_n);
		if (round == 0) {
			n1 = tu_n;
			memcpy(first, tu_pcs, sizeof first);
			continue;
		}
		/* The rules of the chain are in the cache, except just after
		 * the flush (round 2 refills it). */
		struct unw_slot *tab = unw_table_get();
		cr_assert_not_null(tab);
		for (int i = 1; i < 14; i++)
			cr_assert(tu_cached(tab, tu_pcs[i]), "frame %d", i);
		cr_assert_eq(tu_n, n1);
		for (int i = 0; i < n1; i++)
			cr_assert_eq(tu_pcs[i], first[i],
				     "round %d frame %d: %#lx != %#lx", round,
				     i, (unsigned long)tu_pcs[i],
				     (unsigned long)first[i]);
	}
}

Test(unwind, flush_forgets_cached_rules)
{
	tu_chain_walk(false);
	struct unw_slot *tab = unw_table_get();
	cr_assert(tu_cached(tab, tu_chain_ra[5]));
	shim_unwind_flush();
	for (int k = 1; k <= 12; k++)
		cr_assert_not(tu_cached(tab, tu_chain_ra[k]), "level %d", k);
	tu_chain_walk(false);
	tu_assert_chain(tu_pcs, tu_n);
	cr_assert(tu_cached(tab, tu_chain_ra[5]));
}

Test(unwind, stops_at_max)
{
	tu_level1();
	TU_BARRIER();
	uintptr_t full[TU_MAX];
	int n = tu_n;
	memcpy(full, tu_pcs, sizeof full);

	uintptr_t few[4] = {0, 0, 0, 0};
	/* From the same depth as tu_capture: one frame shallower. */
	int m = shim_unwind(few, 3);
	cr_assert_eq(m, 3);
	cr_assert_eq(few[3], 0);
	cr_assert_eq(shim_unwind(few, 0), 0);
	cr_assert_gt(n, 3);
}

/* ---- a dynamic stack frame: CFA from %rbp ------------------------------- */

static uintptr_t tu_dyn_ra[2];
static volatile size_t tu_dyn_size = 200;

TU_NOINLINE TU_NOFP static void tu_dyn_alloca(size_t size)
{
	char *p = __builtin_alloca(size);
	memset(p, 1, size);
	tu_dyn_ra[1] = (uintptr_t)__builtin_return_address(0);
	tu_capture();
	TU_BARRIER();
	tu_sink += p[size - 1];
}

TU_NOINLINE TU_NOFP static void tu_dyn_outer(void)
{
	tu_dyn_ra[0] = (uintptr_t)__builtin_return_address(0);
	tu_dyn_alloca(tu_dyn_size);
	TU_BARRIER();
}

Test(unwind, walks_through_a_dynamic_frame)
{
	tu_dyn_outer();
	TU_BARRIER();
	cr_assert_gt(tu_n, 4);
	cr_assert_eq(tu_pcs[1], tu_cap_ra);
	cr_assert_eq(tu_pcs[2], tu_dyn_ra[1]);
	cr_assert_eq(tu_pcs[3], tu_dyn_ra[0]);
	tu_assert_matches_backtrace();

	/* The case is the one we mean: alloca's frame is found from %rbp. */
	struct unw_rule r;
	cr_assert(unw_decode(tu_cap_ra - 1, tu_cap_ra, &r));
	cr_assert(r.flags & UNW_CFA_RBP, "flags %#x", r.flags);
}

/* ---- the memo's log: saved %rbp only when a frame uses it --------------- */

static struct shim_unw_log tu_log;
static uintptr_t tu_log_pcs[TU_MAX];
static int tu_log_n;
static uintptr_t *tu_mid_slot; /* where the middle frame saved %rbp */

/* Walks from its caller's context, logging, as the hooks do. */
TU_NOINLINE static void tu_walk_logged(void)
{
	void **fa = (void **)__builtin_frame_address(0);
	memset(&tu_log, 0, sizeof tu_log);
	tu_log_n =
		shim_unwind_from((uintptr_t)fa[1], (uintptr_t)(fa + 2),
				 (uintptr_t)fa[0], tu_log_pcs, TU_MAX, &tu_log);
	TU_BARRIER();
}

/* alloca: %rbp is set up and saved, and the CFA is taken from it. */
TU_NOINLINE TU_NOFP static void tu_saver(size_t size)
{
	char *p = __builtin_alloca(size);
	memset(p, 2, size);
	tu_mid_slot = (uintptr_t *)__builtin_frame_address(0);
	tu_walk_logged();
	TU_BARRIER();
	tu_sink += p[size - 1];
}

/* Above the saver: a frame whose CFA comes from %rbp (uses the saved
 * value), or one whose CFA comes from %rsp (does not). */
TU_NOINLINE TU_NOFP static void tu_user_of_rbp(size_t size)
{
	char *p = __builtin_alloca(size);
	memset(p, 3, size);
	tu_saver(size);
	TU_BARRIER();
	tu_sink += p[size - 1];
}

TU_NOINLINE TU_NOFP static void tu_ignorer_of_rbp(size_t size)
{
	tu_saver(size);
	TU_BARRIER();
	tu_sink += 1;
}

static bool tu_logged(uintptr_t addr)
{
	for (int i = 0; i < tu_log.n; i++)
		if (tu_log.addr[i] == addr)
			return true;
	return false;
}

Test(unwind, logs_a_saved_rbp_only_when_a_frame_uses_it)
{
	struct unw_rule r;
	tu_user_of_rbp(tu_dyn_size);
	TU_BARRIER();
	cr_assert_gt(tu_log_n, 3);
	/* The case is the one we mean: both frames take their CFA from
	 * %rbp, the saver having saved the user's. */
	cr_assert(unw_decode(tu_log_pcs[0] - 1, tu_log_pcs[0], &r));
	cr_assert(r.flags & UNW_CFA_RBP && r.flags & UNW_RBP_SAVED, "flags %#x",
		  r.flags);
	cr_assert(unw_decode(tu_log_pcs[1] - 1, tu_log_pcs[1], &r));
	cr_assert(r.flags & UNW_CFA_RBP, "flags %#x", r.flags);
	cr_expect(tu_logged((uintptr_t)tu_mid_slot),
		  "the saved %%rbp the next frame's CFA comes from");
	cr_expect(!tu_log.overflow);

	tu_ignorer_of_rbp(tu_dyn_size);
	TU_BARRIER();
	cr_assert_gt(tu_log_n, 3);
	cr_assert(unw_decode(tu_log_pcs[1] - 1, tu_log_pcs[1], &r));
	cr_assert(!(r.flags & UNW_CFA_RBP), "flags %#x", r.flags);
	/* The ignorer leaves %rbp alone, so the value the saver saved is
	 * its caller's: used if a frame further out takes its CFA from
	 * %rbp before one saves it anew (the test's own frame does when
	 * built with frame pointers, as under the sanitizers). */
	bool used = false;
	for (int i = 1; i < tu_log_n; i++) {
		if (!unw_decode(tu_log_pcs[i] - 1, tu_log_pcs[i], &r))
			break;
		if (r.flags & UNW_CFA_RBP) {
			used = true;
			break;
		}
		if (r.flags & (UNW_RBP_SAVED | UNW_RBP_LOST))
			break;
	}
	cr_log_info("saved %%rbp used further out: %s", used ? "yes" : "no");
	cr_expect_eq(tu_logged((uintptr_t)tu_mid_slot), used,
		     "a saved %%rbp is logged exactly when a frame uses it");
	/* Every return address read is. */
	for (int i = 0; i < 2; i++)
		cr_expect(tu_log.n > i && tu_log.val[i] == tu_log_pcs[i + 1],
			  "return address %d", i);
}

/* ---- through libc: qsort's comparator ----------------------------------- */

static int tu_cmp_calls;
static uintptr_t tu_sort_ra;

TU_NOINLINE TU_NOFP static int tu_cmp(const void *a, const void *b)
{
	if (tu_cmp_calls++ == 0) {
		tu_capture();
		TU_BARRIER();
	}
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

TU_NOINLINE TU_NOFP static void tu_sort_caller(void)
{
	int v[64];
	for (int i = 0; i < 64; i++)
		v[i] = (i * 37) % 64;
	tu_sort_ra = (uintptr_t)__builtin_return_address(0);
	qsort(v, 64, sizeof v[0], tu_cmp);
	TU_BARRIER();
	tu_sink += v[0];
}

Test(unwind, walks_through_libc_qsort)
{
	tu_cmp_calls = 0;
	tu_sort_caller();
	TU_BARRIER();
	cr_assert_eq(tu_pcs[1], tu_cap_ra);
	int i = tu_find(tu_pcs, tu_n, tu_sort_ra);
	cr_assert_gt(i, 3, "tu_sort_caller's return address at %d", i);
	/* The frame before is the call to qsort inside tu_sort_caller, and
	 * everything between is libc (built without frame pointers). */
	cr_assert(tu_in_fn(tu_pcs[i - 1], (const void *)tu_sort_caller, 512));
	struct dl_find_object libc, fo;
	cr_assert_eq(_dl_find_object((void *)(uintptr_t)qsort, &libc), 0);
	cr_assert_lt(2, i - 1);
	for (int j = 2; j < i - 1; j++) {
		cr_assert_eq(_dl_find_object((void *)tu_pcs[j], &fo), 0);
		cr_assert_eq(fo.dlfo_map_start, libc.dlfo_map_start, "frame %d",
			     j);
	}
	tu_assert_matches_backtrace();
}

/* ---- through a signal handler ------------------------------------------- */

static uintptr_t tu_raise_ra, tu_handler_ra, tu_handler_sp;

TU_NOINLINE TU_NOFP static void tu_handler(int sig)
{
	volatile int here = sig;
	tu_handler_sp = (uintptr_t)&here;
	tu_handler_ra = (uintptr_t)__builtin_return_address(0);
	tu_capture();
	TU_BARRIER();
}

TU_NOINLINE TU_NOFP static void tu_raiser(void)
{
	tu_raise_ra = (uintptr_t)__builtin_return_address(0);
	raise(SIGUSR1);
	TU_BARRIER();
}

static void tu_assert_signal_walk(void)
{
	cr_assert_eq(tu_pcs[1], tu_cap_ra);
	cr_assert_eq(tu_pcs[2], tu_handler_ra);
	/* The handler returns into glibc's __restore_rt. */
	cr_assert_eq(memcmp((const void *)tu_handler_ra, unw_sigreturn_code,
			    sizeof unw_sigreturn_code),
		     0);
	int i = tu_find(tu_pcs, tu_n, tu_raise_ra);
	cr_assert_gt(i, 3, "tu_raiser's return address at %d", i);
	cr_assert(tu_in_fn(tu_pcs[i - 1], (const void *)tu_raiser, 256));
	tu_assert_matches_backtrace();
}

Test(unwind, walks_out_of_a_signal_handler)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tu_handler;
	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	tu_raiser();
	TU_BARRIER();
	sigaction(SIGUSR1, &old, NULL);
	tu_assert_signal_walk();
}

Test(unwind, walks_from_an_alternate_signal_stack)
{
	static char altstack[1 << 16] __attribute__((aligned(16)));
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack}, old_ss;
	cr_assert_eq(sigaltstack(&ss, &old_ss), 0);
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tu_handler;
	sa.sa_flags = SA_ONSTACK;
	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	tu_raiser();
	TU_BARRIER();
	sigaction(SIGUSR1, &old, NULL);
	sigaltstack(&old_ss, NULL);
	cr_assert(tu_handler_sp >= (uintptr_t)altstack &&
		  tu_handler_sp < (uintptr_t)altstack + sizeof altstack);
	tu_assert_signal_walk();
}

/* ---- signals at arbitrary instructions ----------------------------------
 * A thread runs libc code (qsort, snprintf, malloc) while another one
 * signals it: every walk from the handler starts at whatever instruction
 * was interrupted (prologues, epilogues, PLT stubs) and must equal libgcc's.
 * One documented exception: a walk may stop early (an exact prefix of
 * libgcc's) at a frame of the dynamic loader, whose lazy-binding
 * trampoline defines its CFA through %rbx, a rule the unwinder does not
 * follow (shim_unwind.h). Those last pcs are checked after the run.
 */
static _Atomic int tu_async_stop, tu_async_samples, tu_async_bad;
static _Atomic uintptr_t tu_async_bad_pc;
#define TU_TRUNC_MAX 256
static uintptr_t tu_async_trunc[TU_TRUNC_MAX];
static _Atomic int tu_async_ntrunc;

static void tu_async_handler(int sig)
{
	(void)sig;
	uintptr_t pcs[64];
	void *bt[64];
	int n = shim_unwind(pcs, 64);
	int m = backtrace(bt, 64);
	int j = n > 1 ? tu_find((const uintptr_t *)bt, m < 3 ? m : 3, pcs[1])
		      : -1;
	bool prefix = j >= 1 && n - 1 <= m - j;
	for (int i = 1; prefix && i < n; i++)
		prefix = pcs[i] == (uintptr_t)bt[i - 1 + j];
	bool same = prefix && n - 1 == m - j;
	if (!same && prefix && n > 1) {
		/* Stopped early: allowed only in the loader (checked later,
		 * dladdr is no signal handler's business). */
		int k = tu_async_ntrunc++;
		if (k < TU_TRUNC_MAX)
			tu_async_trunc[k] = pcs[n - 1];
	} else if (!same) {
		tu_async_bad++;
		tu_async_bad_pc = n > 2 ? pcs[2] : 0;
	}
	tu_async_samples++;
}

static int tu_async_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void *tu_async_work(void *arg)
{
	unsigned long seed = 1;
	(void)arg;
	while (!tu_async_stop) {
		char *v[64];
		for (int i = 0; i < 64; i++) {
			seed = seed * 6364136223846793005UL +
			       1442695040888963407UL;
			v[i] = malloc(24);
			snprintf(v[i], 24, "%lu", seed >> 20);
		}
		qsort(v, 64, sizeof v[0], tu_async_cmp);
		for (int i = 0; i < 64; i++)
			free(v[i]);
	}
	return NULL;
}

Test(unwind, walks_from_asynchronous_signals_like_libgcc, .timeout = 60)
{
	void *warm[4];
	backtrace(warm, 4); /* loads libgcc_s outside the handler */
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tu_async_handler;
	sa.sa_flags = SA_RESTART;
	cr_assert_eq(sigaction(SIGPROF, &sa, &old), 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, tu_async_work, NULL), 0);
	struct timespec pause = {0, 20000}, start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		pthread_kill(t, SIGPROF);
		nanosleep(&pause, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (tu_async_samples < 3000 && now.tv_sec - start.tv_sec < 5);
	tu_async_stop = 1;
	cr_assert_eq(pthread_join(t, NULL), 0);
	sigaction(SIGPROF, &old, NULL);
	cr_assert_gt(tu_async_samples, 100);
	cr_assert_eq(tu_async_bad, 0, "%d of %d walks differ, e.g. after %#lx",
		     (int)tu_async_bad, (int)tu_async_samples,
		     (unsigned long)tu_async_bad_pc);
	int nt =
		tu_async_ntrunc < TU_TRUNC_MAX ? tu_async_ntrunc : TU_TRUNC_MAX;
	for (int k = 0; k < nt; k++) {
		Dl_info di;
		cr_assert(dladdr((void *)tu_async_trunc[k], &di) &&
				  di.dli_fname,
			  "a walk stopped early at %#lx, in no module",
			  (unsigned long)tu_async_trunc[k]);
		cr_expect(
			strstr(di.dli_fname, "/ld-linux") != NULL,
			"a walk stopped early at %#lx in %s, not in the loader",
			(unsigned long)tu_async_trunc[k], di.dli_fname);
	}
}

Test(unwind, evaluates_the_plt_cfa_expression)
{
	/* rsp + 8 + ((rip & 15) >= 11 ? 8 : 0), as ld writes it for .plt */
	static const uint8_t plt[] = {0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a,
				      0x3b, 0x2a, 0x33, 0x24, 0x22};
	int64_t off = 0;
	cr_assert(unw_eval_cfa(plt, sizeof plt, 0x1006, &off));
	cr_assert_eq(off, 8);
	cr_assert(unw_eval_cfa(plt, sizeof plt, 0x100b, &off));
	cr_assert_eq(off, 16);
	/* __restore_rt's: a dereference, left to the signal-frame code */
	static const uint8_t deref[] = {0x77, 0xa0, 0x01, 0x06};
	cr_assert_not(unw_eval_cfa(deref, sizeof deref, 0x1000, &off));
}

/* ---- a second thread ---------------------------------------------------- */

static uintptr_t tu_thread_ra;

TU_NOINLINE TU_NOFP static void *tu_thread_body(void *arg)
{
	tu_thread_ra = (uintptr_t)__builtin_return_address(0);
	tu_capture();
	TU_BARRIER();
	return arg;
}

Test(unwind, ends_cleanly_at_thread_start)
{
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, tu_thread_body, NULL), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(tu_pcs[1], tu_cap_ra);
	cr_assert_eq(tu_pcs[2], tu_thread_ra);
	/* start_thread's return address into clone3, then the end. */
	cr_assert_leq(tu_n, 5, "%d frames", tu_n);
	tu_assert_matches_backtrace();
}

/* Many threads walking (and filling the cache) at once, and a flush. */
static void *tu_race_body(void *arg)
{
	(void)arg;
	uintptr_t first[TU_MAX];
	int n1 = -1;
	for (int i = 0; i < 20000; i++) {
		uintptr_t pcs[TU_MAX];
		int n = shim_unwind(pcs, TU_MAX);
		if (n1 < 0) {
			n1 = n;
			memcpy(first, pcs, sizeof first);
		} else if (n != n1 ||
			   memcmp(pcs, first, (size_t)n * sizeof *pcs)) {
			return (void *)1;
		}
		if (i % 5000 == 0)
			shim_unwind_flush();
	}
	return n1 >= 2 ? NULL : (void *)1;
}

Test(unwind, concurrent_walks_agree)
{
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, tu_race_body, NULL),
			     0);
	for (int i = 0; i < 4; i++) {
		void *ret;
		cr_assert_eq(pthread_join(t[i], &ret), 0);
		cr_assert_null(ret, "thread %d saw a different stack", i);
	}
}

/* ---- code without CFI (as JIT code is) ---------------------------------- */

Test(unwind, stops_at_code_without_cfi)
{
	/* sub $8,%rsp; movabs $tu_capture,%rax; call *%rax; add $8,%rsp; ret */
	uint8_t code[] = {0x48, 0x83, 0xec, 0x08, 0x48, 0xb8, 0,
			  0,	0,    0,    0,	  0,	0,    0,
			  0xff, 0xd0, 0x48, 0x83, 0xc4, 0x08, 0xc3};
	uintptr_t target = (uintptr_t)tu_capture;
	memcpy(code + 6, &target, sizeof target);
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m, MAP_FAILED);
	memcpy(m, code, sizeof code);
	cr_assert_eq(mprotect(m, 4096, PROT_READ | PROT_EXEC), 0);
	((void (*)(void))m)();
	TU_BARRIER();
	cr_assert_eq(tu_n, 2);
	cr_assert_eq(tu_pcs[1], (uintptr_t)m + 16);
	munmap(m, 4096);
}

/* ---- the frame-pointer walk --------------------------------------------- */

static uintptr_t tu_fp_ra[4], tu_fp_pcs[TU_MAX];
static int tu_fp_n;

TU_NOINLINE TU_FP static void tu_fp3(void)
{
	TU_FORCE_FP();
	tu_fp_ra[3] = (uintptr_t)__builtin_return_address(0);
	tu_fp_n = shim_unwind_fp(tu_fp_pcs, TU_MAX);
	TU_BARRIER();
}

TU_NOINLINE TU_FP static void tu_fp2(void)
{
	TU_FORCE_FP();
	volatile char pad[40];
	pad[0] = 2;
	tu_fp_ra[2] = (uintptr_t)__builtin_return_address(0);
	tu_fp3();
	TU_BARRIER();
	tu_sink += pad[0];
}

TU_NOINLINE TU_FP static void tu_fp1(void)
{
	TU_FORCE_FP();
	tu_fp_ra[1] = (uintptr_t)__builtin_return_address(0);
	tu_fp2();
	TU_BARRIER();
}

TU_NOINLINE TU_FP static void tu_fp0(void)
{
	TU_FORCE_FP();
	tu_fp_ra[0] = (uintptr_t)__builtin_return_address(0);
	tu_fp1();
	TU_BARRIER();
}

Test(unwind, fp_walks_a_frame_pointer_chain)
{
	tu_fp0();
	TU_BARRIER();
	/* The chain ends where tu_fp0's caller keeps no frame pointer. */
	cr_assert_geq(tu_fp_n, 4);
	cr_assert(tu_in_fn(tu_fp_pcs[0], (const void *)tu_fp3, 256));
	cr_assert_eq(tu_fp_pcs[1], tu_fp_ra[3]);
	cr_assert_eq(tu_fp_pcs[2], tu_fp_ra[2]);
	cr_assert_eq(tu_fp_pcs[3], tu_fp_ra[1]);
	cr_assert_eq(tu_fp_pcs[4], tu_fp_ra[0]);
	cr_assert_eq(shim_unwind_fp(tu_fp_pcs, 0), 0);
}

/* ---- the decoder on its own --------------------------------------------- */

Test(unwind, decodes_the_signal_trampoline_and_program_start)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tu_handler;
	cr_assert_eq(sigaction(SIGUSR1, &sa, &old), 0);
	tu_raiser();
	TU_BARRIER();
	sigaction(SIGUSR1, &old, NULL);

	struct unw_rule r;
	cr_assert(unw_decode(tu_handler_ra - 1, tu_handler_ra, &r));
	cr_assert_eq(r.flags & UNW_SIGNAL, UNW_SIGNAL, "flags %#x", r.flags);

	/* The outermost frame of the main thread has its return address
	 * undefined (glibc's _start). */
	struct unw_rule last;
	uintptr_t pc = tu_pcs[tu_n - 1];
	cr_assert(unw_decode(pc - 1, pc, &last));
	cr_assert(last.flags & UNW_END, "flags %#x", last.flags);

	/* Nothing is found for an address in no object. */
	cr_assert_not(unw_decode(16, 17, &r));
}
