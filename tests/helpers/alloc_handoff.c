/*
 * alloc_handoff.c - blocks freed by another thread than the one that made
 * them, while they are among its last allocations: a producer thread makes
 * 20000 blocks of 40 bytes in produce() and hands each at once to a
 * consumer thread through a one-slot mailbox; the consumer frees all but
 * every 100th (200 kept, 8000 bytes). Then a worker makes 7 blocks of 24
 * bytes in leftover() and exits holding them; main frees 3 after the join
 * (4 live, 96 bytes). Every block the threads keep is still live at exit.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define HANDOFFS 20000

static void *_Atomic mailbox;
static void *kept[HANDOFFS / 100];
static void *left[7];

__attribute__((noinline)) static void *produce(void)
{
	void *p = malloc(40);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

static void *producer(void *arg)
{
	(void)arg;
	for (int i = 0; i < HANDOFFS; i++) {
		void *p = produce();
		void *expected = NULL;
		while (!atomic_compare_exchange_weak(&mailbox, &expected, p)) {
			expected = NULL;
			sched_yield(); /* Valgrind runs one thread at a time */
		}
	}
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	for (int i = 0; i < HANDOFFS; i++) {
		void *p;
		while (!(p = atomic_exchange(&mailbox, NULL)))
			sched_yield();
		if (i % 100 == 0)
			kept[i / 100] = p;
		else
			free(p);
	}
	return NULL;
}

__attribute__((noinline)) static void *leftover(void)
{
	void *p = malloc(24);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 7; i++)
		left[i] = leftover();
	return NULL;
}

int main(void)
{
	pthread_t p, c, w;
	if (pthread_create(&p, NULL, producer, NULL) ||
	    pthread_create(&c, NULL, consumer, NULL))
		return 1;
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	if (pthread_create(&w, NULL, worker, NULL))
		return 1;
	pthread_join(w, NULL);
	for (int i = 0; i < 3; i++)
		free(left[i]);
	return 0;
}
