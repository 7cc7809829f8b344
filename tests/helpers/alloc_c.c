/*
 * alloc_c.c - deterministic C allocations at known sites, for the shim
 * tests and the Valgrind oracle. Output goes through write(2) so that
 * stdio's own buffer does not enter the figures. Every figure the tests
 * expect is computed from the constants here.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEEP_MAX 64
/* Global and read at the end: GCC removes malloc calls whose results
 * only reach a static array nobody reads. */
void *keep[KEEP_MAX];
int nkeep;

static void hold(void *p)
{
	keep[nkeep++] = p;
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* 10 blocks of 100 bytes, kept. */
__attribute__((noinline)) void site_malloc(void)
{
	for (int i = 0; i < 10; i++)
		hold(malloc(100));
	__asm__ volatile("" ::: "memory");
}

/* 5 blocks of 4 * 50 bytes, kept. */
__attribute__((noinline)) void site_calloc(void)
{
	for (int i = 0; i < 5; i++)
		hold(calloc(4, 50));
	__asm__ volatile("" ::: "memory");
}

/* malloc(10) grown to 1000 bytes: 2 allocations, 1 free, 1 block live. */
__attribute__((noinline)) void site_realloc(void)
{
	char *p = malloc(10);
	memset(p, 1, 10);
	p = realloc(p, 1000);
	hold(p);
	__asm__ volatile("" ::: "memory");
}

/* 20 blocks of 64 bytes, all freed. */
__attribute__((noinline)) void site_freed(void)
{
	for (int i = 0; i < 20; i++) {
		void *p = malloc(64);
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
}

/* One of each aligned variant, kept: 256 + 512 + 96 + 300 + 63 bytes. */
__attribute__((noinline)) void site_aligned(void)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, 256) == 0)
		hold(p);
	hold(aligned_alloc(128, 512));
	hold(memalign(32, 96));
	hold(valloc(300));
	hold(reallocarray(NULL, 7, 9));
	__asm__ volatile("" ::: "memory");
}

/* 3 blocks of 2000 bytes freed, then 1 of 5000 kept: sets the peak. */
__attribute__((noinline)) void site_peak(void)
{
	void *a = malloc(2000), *b = malloc(2000), *c = malloc(2000);
	__asm__ volatile("" : : "r"(a), "r"(b), "r"(c) : "memory");
	free(a);
	free(b);
	free(c);
	hold(malloc(5000));
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	(void)argv;
	site_malloc();
	site_calloc();
	site_realloc();
	site_freed();
	site_aligned();
	site_peak();
	for (int i = 0; i < nkeep; i++)
		if (!keep[i])
			return 2;
	static const char msg[] = "alloc_c done\n";
	if (write(1, msg, sizeof(msg) - 1) < 0)
		return 1;
	return argc > 1 ? 3 : 0;
}
