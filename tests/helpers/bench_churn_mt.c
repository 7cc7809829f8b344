/*
 * bench_churn_mt.c - bench_churn.c over 4 threads: the same 12-deep call
 * chain and the same 16 to 512 byte sizes, each thread doing a quarter of
 * the pairs with its own kept blocks, so the threads contend only inside
 * the allocator (and the tool). Usage: bench_churn_mt [pairs] (default
 * 5000000, total over all threads).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 4
#define KEEP 1024

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

struct worker {
	pthread_t thread;
	long pairs;
	unsigned seed;
	void *kept[KEEP];
};

static void *churn(void *arg)
{
	struct worker *w = arg;
	unsigned x = w->seed;
	for (long i = 0; i < w->pairs; i++) {
		x = x * 1103515245u + 12345u;
		size_t n = 16 + (x >> 16) % 497;
		void *p = f11(n);
		unsigned slot = (x >> 8) % KEEP;
		if ((x & 0xff) == 0) {
			free(w->kept[slot]);
			w->kept[slot] = p;
		} else {
			free(p);
		}
	}
	for (int i = 0; i < KEEP; i++)
		free(w->kept[i]);
	return NULL;
}

static struct worker workers[THREADS];

int main(int argc, char **argv)
{
	long pairs = argc > 1 ? atol(argv[1]) : 5000000;
	for (int t = 0; t < THREADS; t++) {
		workers[t].pairs = pairs / THREADS;
		workers[t].seed = 12345u + (unsigned)t * 7919u;
		if (pthread_create(&workers[t].thread, NULL, churn,
				   &workers[t])) {
			fprintf(stderr, "churn_mt: cannot create thread\n");
			return 1;
		}
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(workers[t].thread, NULL);
	printf("churn_mt: %ld pairs over %d threads\n",
	       pairs / THREADS * THREADS, THREADS);
	return 0;
}
