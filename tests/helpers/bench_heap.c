/*
 * bench_heap.c - a large live heap at exit, for the cost of the leak scan
 * and analysis: N blocks (default 1M) of 32 to 96 bytes in linked lists
 * hanging off a global table; every 8th list is dropped (leaked), and one
 * node in 16 points back to its list head, making cycles.
 * Usage: bench_heap [blocks]
 */
#include <stdio.h>
#include <stdlib.h>

#define NLISTS 4096

struct node {
	struct node *next;
	struct node *head;
	long pad[2];
};

struct node *lists[NLISTS];

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	unsigned x = 1;
	for (long i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		size_t size = 32 + ((x >> 16) % 3) * 32;
		struct node *e = malloc(size);
		int l = (int)(i % NLISTS);
		e->next = lists[l];
		e->head = (i % 16 == 0 && lists[l]) ? lists[l] : NULL;
		lists[l] = e;
	}
	for (int l = 0; l < NLISTS; l += 8)
		lists[l] = NULL;
	printf("bench_heap: %ld blocks\n", n);
	return 0;
}
