/*
 * alloc_qsort.c - allocations made inside a qsort comparator: libc's
 * qsort (built without frame pointers) sits between the allocation and
 * the function that sorted, so only a CFI unwinder sees sort_things.
 */
#include <stdlib.h>
#include <unistd.h>

static void *first;

__attribute__((noinline)) static int cmp_alloc(const void *a, const void *b)
{
	int *scratch = malloc(24);
	scratch[0] = *(const int *)a - *(const int *)b;
	int r = scratch[0];
	if (!first)
		first = scratch; /* kept: one block of 24 bytes */
	else
		free(scratch);
	return r;
}

__attribute__((noinline)) void sort_things(int *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_alloc);
	__asm__ volatile("" ::: "memory");
}

int main(void)
{
	int v[64];
	for (int i = 0; i < 64; i++)
		v[i] = (i * 37) % 64;
	sort_things(v, 64);
	return v[0] == 0 && v[63] == 63 ? 0 : 1;
}
