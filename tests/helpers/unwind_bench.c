/*
 * unwind_bench.c - cost of one stack capture (lib/shim/shim_unwind.c).
 *
 * Walks from the bottom of a 12-deep chain of functions, warm (rules
 * cached), with the CFI unwinder, the frame-pointer walk and glibc's
 * backtrace() (libgcc) for comparison, and prints the best ns per walk of
 * 15 rounds (the machine may be busy). "cold" is one walk right after
 * shim_unwind_flush(): decoding every frame's CFI. Usage:
 *   unwind_bench [iterations]
 */
#include "../../lib/shim/shim_unwind.c"

#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NOINL __attribute__((noinline, noclone))
#define OMIT_FP __attribute__((optimize("omit-frame-pointer")))
#define KEEP_FP __attribute__((optimize("no-omit-frame-pointer")))
#define FORCE_FP() __asm__ volatile("" ::"r"(__builtin_frame_address(0)))
#define BARRIER() __asm__ volatile("" ::: "memory")

enum { B_CFI, B_CFI12, B_FP, B_BACKTRACE, B_COLD };

static long iters = 200000; /* per round; the best of 15 rounds counts */
static int mode;
static int frames;
static double ns_per;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Keeps a frame pointer so that the FP walk sees the chain above it. */
NOINL KEEP_FP static void run(void)
{
	uintptr_t pcs[64];
	void *bt[64];
	long n = mode == B_COLD ? 1 : iters;
	int got = 0;
	FORCE_FP();
	if (mode != B_COLD) /* warm up: decode and cache every rule once */
		got = shim_unwind(pcs, 64) + (int)backtrace(bt, 64);
	ns_per = 1e300;
	for (int round = 0; round < 15; round++) {
		if (mode == B_COLD)
			shim_unwind_flush();
		double t0 = now_ns();
		for (long i = 0; i < n; i++) {
			switch (mode) {
			case B_CFI:
			case B_COLD: got = shim_unwind(pcs, 64); break;
			case B_CFI12: got = shim_unwind(pcs, 12); break;
			case B_FP: got = shim_unwind_fp(pcs, 64); break;
			default: got = backtrace(bt, 64); break;
			}
			BARRIER();
		}
		double ns = (now_ns() - t0) / (double)n;
		if (ns < ns_per)
			ns_per = ns;
	}
	frames = got;
}

#define LEVEL(attr, name, k, next)            \
	NOINL attr static void name##k(void)  \
	{                                     \
		volatile char pad[8 * k + 3]; \
		pad[0] = (char)k;             \
		next();                       \
		BARRIER();                    \
		frames += pad[0] & 0;         \
	}

#define CHAIN(attr, name)               \
	LEVEL(attr, name, 12, run)      \
	LEVEL(attr, name, 11, name##12) \
	LEVEL(attr, name, 10, name##11) \
	LEVEL(attr, name, 9, name##10)  \
	LEVEL(attr, name, 8, name##9)   \
	LEVEL(attr, name, 7, name##8)   \
	LEVEL(attr, name, 6, name##7)   \
	LEVEL(attr, name, 5, name##6)   \
	LEVEL(attr, name, 4, name##5)   \
	LEVEL(attr, name, 3, name##4)   \
	LEVEL(attr, name, 2, name##3)   \
	LEVEL(attr, name, 1, name##2)

CHAIN(OMIT_FP, nofp)

/* With frame pointers, the FP walk can see the whole chain. */
#undef LEVEL
#define LEVEL(attr, name, k, next)            \
	NOINL attr static void name##k(void)  \
	{                                     \
		volatile char pad[8 * k + 3]; \
		FORCE_FP();                   \
		pad[0] = (char)k;             \
		next();                       \
		BARRIER();                    \
		frames += pad[0] & 0;         \
	}
CHAIN(KEEP_FP, withfp)

static void report(const char *what, int m, void (*chain)(void))
{
	mode = m;
	chain();
	printf("%-34s %3d frames %8.1f ns/walk\n", what, frames, ns_per);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		iters = atol(argv[1]);
	shim_unwind_init();
	report("shim_unwind (CFI), cold", B_COLD, nofp1);
	report("shim_unwind (CFI), warm", B_CFI, nofp1);
	report("shim_unwind (CFI), warm, max 12", B_CFI12, nofp1);
	report("shim_unwind (CFI), warm, fp chain", B_CFI, withfp1);
	report("shim_unwind_fp, fp chain", B_FP, withfp1);
	report("backtrace() (libgcc)", B_BACKTRACE, nofp1);
	return 0;
}
