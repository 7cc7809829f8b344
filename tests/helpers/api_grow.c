/*
 * api_grow.c - tracemalloc's workflow in C: snapshot, work, snapshot.
 * Between the snapshots "before" and "after", grow_cache adds 10 blocks of
 * 4096 bytes and shrink_table frees 5 of make_table's 8 blocks of 1000.
 * Prints what the API said and the source lines of the two malloc calls,
 * so a test can check that the diff names exactly them. Runs unchanged
 * without memprof (the API then says it is not tracing).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "memprof.h"

void *table[8];
void *cache[64];
int ncache;
int table_line, grow_line;

__attribute__((noinline)) void make_table(void)
{
	for (int i = 0; i < 8; i++)
		table[i] = malloc(1000), table_line = __LINE__;
}

__attribute__((noinline)) void grow_cache(int n)
{
	for (int i = 0; i < n; i++)
		cache[ncache++] = malloc(4096), grow_line = __LINE__;
}

__attribute__((noinline)) void shrink_table(void)
{
	for (int i = 0; i < 5; i++) {
		free(table[i]);
		table[i] = NULL;
	}
}

int main(void)
{
	make_table();
	int before = memprof_snapshot("before");
	int enosys = before < 0 && errno == ENOSYS;
	grow_cache(10);
	shrink_table();
	int after = memprof_snapshot("after");
	size_t cur = 1, peak = 1, cur2 = 1, peak2 = 1;
	memprof_traced_memory(&cur, &peak);
	memprof_reset_peak();
	memprof_traced_memory(&cur2, &peak2);
	printf("tracing=%d before=%d after=%d enosys=%d current=%zu peak=%zu "
	       "reset=%zu/%zu table_line=%d grow_line=%d\n",
	       memprof_is_tracing(), before, after, enosys, cur, peak, cur2,
	       peak2, table_line, grow_line);
	return 0;
}
