/*
 * alloc_threads.c - 4 threads allocate at once: each makes 1000 blocks of
 * 48 bytes in thread_work and keeps every tenth (100 per thread).
 */
#include <pthread.h>
#include <stdlib.h>

#define NTHREADS 4
#define PER_THREAD 1000

static void *kept[NTHREADS][PER_THREAD / 10];

__attribute__((noinline)) void *thread_work(void *arg)
{
	int id = (int)(long)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		void *p = malloc(48);
		__asm__ volatile("" : : "r"(p) : "memory");
		if (i % 10 == 0)
			kept[id][i / 10] = p;
		else
			free(p);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[NTHREADS];
	for (long i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, thread_work, (void *)i);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	return 0;
}
