/*
 * alloc_old_free.c - frees of old blocks, then allocations: a block of
 * 100000 bytes (site_big), 40 of 16 bytes (site_small), the big one
 * freed, then 60000 bytes (site_after) and a realloc of the first small
 * block to 32 bytes (site_small, moved or not). The global peak is 100640
 * bytes, reached before the free: the later allocations must see the big
 * block gone even though it was freed long after it was made. Nothing
 * else is freed.
 */
#include <stdlib.h>
#include <string.h>

static void *small[40];

__attribute__((noinline)) static void *site_big(void)
{
	void *r = malloc(100000);
	__asm__ volatile("" : : "r"(r) : "memory"); /* no tail call */
	return r;
}

__attribute__((noinline)) static void *site_small(void)
{
	void *r = malloc(16);
	__asm__ volatile("" : : "r"(r) : "memory"); /* no tail call */
	return r;
}

__attribute__((noinline)) static void *site_after(void)
{
	void *r = malloc(60000);
	__asm__ volatile("" : : "r"(r) : "memory"); /* no tail call */
	return r;
}

__attribute__((noinline)) static void *site_grow(void *p)
{
	void *r = realloc(p, 32);
	__asm__ volatile("" : : "r"(r) : "memory"); /* no tail call */
	return r;
}

int main(void)
{
	char *big = site_big();
	if (!big)
		return 1;
	memset(big, 1, 100000);
	for (int i = 0; i < 40; i++)
		small[i] = site_small();
	free(big);
	void *after = site_after();
	__asm__ volatile("" : : "r"(after) : "memory");
	small[0] = site_grow(small[0]);
	return 0;
}
