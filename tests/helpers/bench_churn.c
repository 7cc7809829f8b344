/*
 * bench_churn.c - allocation-heavy workload: N malloc/free pairs of 16 to
 * 512 bytes, each made 12 calls deep, with a few blocks kept alive so the
 * live table is not empty. Usage: bench_churn [pairs] (default 5000000).
 */
#include <stdio.h>
#include <stdlib.h>

#define KEEP 4096
void *kept[KEEP];

__attribute__((noinline)) static void *leaf(size_t n)
{
	void *p = malloc(n);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

#define LEVEL(name, next)                                     \
	__attribute__((noinline)) static void *name(size_t n) \
	{                                                     \
		void *p = next(n);                            \
		__asm__ volatile("" : : "r"(p) : "memory");   \
		return p;                                     \
	}
LEVEL(f1, leaf)
LEVEL(f2, f1)
LEVEL(f3, f2)
LEVEL(f4, f3)
LEVEL(f5, f4)
LEVEL(f6, f5)
LEVEL(f7, f6)
LEVEL(f8, f7)
LEVEL(f9, f8)
LEVEL(f10, f9)
LEVEL(f11, f10)

int main(int argc, char **argv)
{
	long pairs = argc > 1 ? atol(argv[1]) : 5000000;
	unsigned x = 12345;
	for (long i = 0; i < pairs; i++) {
		x = x * 1103515245u + 12345u;
		size_t n = 16 + (x >> 16) % 497;
		void *p = f11(n);
		unsigned slot = (x >> 8) % KEEP;
		if ((x & 0xff) == 0) {
			free(kept[slot]);
			kept[slot] = p;
		} else {
			free(p);
		}
	}
	for (int i = 0; i < KEEP; i++)
		free(kept[i]);
	printf("churn: %ld pairs\n", pairs);
	return 0;
}
