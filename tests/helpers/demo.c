/*
 * demo.c - the bundled demo for `make demo`: a small program whose heap
 * has a story to tell. A cache kept in a global, a buffer that is leaked,
 * a pair of nodes that point at each other and are dropped (a leaked
 * cycle), short-lived churn, and a burst that makes the peak.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
	struct node *next;
	char name[48];
};

static struct node *cache; /* still reachable at exit */

static __attribute__((noinline)) void fill_cache(int n)
{
	for (int i = 0; i < n; i++) {
		struct node *e = malloc(sizeof(*e));
		snprintf(e->name, sizeof(e->name), "entry %d", i);
		e->next = cache;
		cache = e;
	}
}

static __attribute__((noinline)) char *make_buffer(size_t size)
{
	char *b = malloc(size);
	memset(b, 'x', size);
	return b;
}

static __attribute__((noinline)) void leak_cycle(void)
{
	struct node *a = calloc(1, sizeof(*a));
	struct node *b = calloc(1, sizeof(*b));
	a->next = b;
	b->next = a;
	__asm__ volatile("" : : "r"(a) : "memory");
}

static __attribute__((noinline)) unsigned churn(int rounds)
{
	unsigned sum = 0;
	for (int i = 0; i < rounds; i++) {
		char *s = malloc(16 + (size_t)(i % 64));
		/* Keep GCC from eliding the malloc/free pair. */
		__asm__ volatile("" : : "r"(s) : "memory");
		s[0] = (char)i;
		sum += (unsigned char)s[0];
		free(s);
	}
	return sum;
}

static __attribute__((noinline)) void peak_burst(void)
{
	char *blocks[10];
	for (int i = 0; i < 10; i++)
		blocks[i] = make_buffer(1 << 20);
	for (int i = 0; i < 10; i++)
		free(blocks[i]);
}

int main(void)
{
	fill_cache(100);
	char *leaked = make_buffer(4096);
	leaked = NULL;
	leak_cycle();
	unsigned s = churn(1000);
	peak_burst();
	printf("demo: cache of 100 entries, churn checksum %u\n", s);
	return 0;
}
