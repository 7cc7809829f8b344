/*
 * bench_stacks.c - N live blocks from K distinct call stacks, for measuring
 * the shim's memory per live block and per stack, and the analysis
 * commands on big snapshots (tests/bench/measure.sh).
 *
 * Usage: bench_stacks N K [LEAK_PCT [SIZE]]
 *
 * Block j (0 <= j < N) is allocated through call path j % K: a recursion of
 * D = ceil(log2 K) levels where level d calls through zero() or one() after
 * bit d of the path number, so the K paths have K different stacks, each
 * 2D + 1 frames deep below main. Blocks are SIZE bytes (default 16; 0: a
 * pseudo-random size from 16 to 512) and stay alive to the end; LEAK_PCT
 * percent of them (default 0) lose their last pointer before exit
 * (definitely lost for 'memprof leaks').
 *
 * Prints one line: "stacks: N blocks K stacks depth D rss_kb R hwm_kb H",
 * with VmRSS and VmHWM read from /proc/self/status once every block is
 * allocated (before the exit snapshot adds its own transient memory).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *step(int d, unsigned long path, size_t size);

/* Two different functions (noipa: not folded into one by identical code
 * folding, not inlined, not cloned), called from two different sites. */
__attribute__((noinline, noipa)) static void *zero(int d, unsigned long path,
						   size_t size)
{
	void *p = step(d, path, size);
	__asm__ volatile("" : : "r"(p) : "memory"); /* no tail call */
	return p;
}

__attribute__((noinline, noipa)) static void *one(int d, unsigned long path,
						  size_t size)
{
	void *p = step(d, path, size);
	__asm__ volatile("nop" : : "r"(p) : "memory");
	return p;
}

__attribute__((noinline, noipa)) static void *step(int d, unsigned long path,
						   size_t size)
{
	void *p;
	if (d == 0)
		p = malloc(size);
	else if ((path >> (d - 1)) & 1)
		p = one(d - 1, path, size);
	else
		p = zero(d - 1, path, size);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

static void status(long *rss, long *hwm)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	*rss = *hwm = -1;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "VmRSS:", 6))
			*rss = atol(line + 6);
		else if (!strncmp(line, "VmHWM:", 6))
			*hwm = atol(line + 6);
	}
	fclose(f);
}

void **blocks; /* global: the blocks stay reachable */

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_stacks N K [LEAK_PCT [SIZE]]\n");
		return 2;
	}
	unsigned long n = strtoul(argv[1], NULL, 0);
	unsigned long k = strtoul(argv[2], NULL, 0);
	unsigned long leak = argc > 3 ? strtoul(argv[3], NULL, 0) : 0;
	size_t size = argc > 4 ? strtoul(argv[4], NULL, 0) : 16;
	if (k == 0)
		k = 1;
	int depth = 0;
	while ((1ul << depth) < k)
		depth++;
	blocks = malloc((n ? n : 1) * sizeof(*blocks));
	if (!blocks)
		return 1;
	unsigned x = 12345;
	for (unsigned long j = 0; j < n; j++) {
		x = x * 1103515245u + 12345u;
		size_t sz = size ? size : 16 + (x >> 16) % 497;
		if (!(blocks[j] = step(depth, j % k, sz)))
			return 1;
	}
	/* Every LEAK_PCT-th block in a hundred loses its pointer. */
	for (unsigned long j = 0; j < n; j++)
		if (j % 100 < leak)
			blocks[j] = NULL;
	long rss, hwm;
	status(&rss, &hwm);
	printf("stacks: %lu blocks %lu stacks depth %d rss_kb %ld hwm_kb %ld\n",
	       n, k, depth, rss, hwm);
	return 0;
}
