/*
 * mx_threads.c - threads that come and go while others allocate, and a
 * program that ends with exit() called from a thread that is not main
 * while the others allocate (test_matrix.c).
 *
 *   mx_threads short   200 short threads, 8 at a time, while main churns
 *   mx_threads exit    4 threads churn forever; a fifth allocates, then
 *                      calls exit(7) (main is blocked in a join)
 *
 * Output goes through write(2).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NSHORT 200
#define BATCH 8

void *kept[NSHORT][2];
void *main_kept[16];
void *exiter_kept[5];
static atomic_int stop_churn;

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(99);
}

/* Each short thread: 10 x 32 bytes, 2 kept. */
__attribute__((noinline)) void short_work(int id)
{
	void *p[10];
	for (int i = 0; i < 10; i++)
		p[i] = malloc(32);
	for (int i = 2; i < 10; i++)
		free(p[i]);
	kept[id][0] = p[0];
	kept[id][1] = p[1];
	__asm__ volatile("" ::: "memory");
}

static void *short_thread(void *arg)
{
	short_work((int)(long)arg);
	return NULL;
}

/* Main, meanwhile: 1000 blocks of 48 bytes made and freed, 16 kept. */
__attribute__((noinline)) void main_churn(int round)
{
	for (int i = 0; i < 40; i++) {
		void *p = malloc(48);
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
	if (round < 16)
		main_kept[round] = malloc(48);
}

/* Churning until the program ends: at most one block live each. */
__attribute__((noinline)) void churn_forever(void)
{
	while (!atomic_load(&stop_churn)) {
		void *p = malloc(64);
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
}

static void *churn_thread(void *arg)
{
	(void)arg;
	churn_forever();
	return NULL;
}

/* 10 x 100 bytes, kept, before any thread starts. */
__attribute__((noinline)) void site_before(void)
{
	for (int i = 0; i < 10; i++)
		main_kept[i] = malloc(100);
	__asm__ volatile("" ::: "memory");
}

/* 5 x 333 bytes, kept by the thread that calls exit. */
__attribute__((noinline)) void site_exiter(void)
{
	for (int i = 0; i < 5; i++)
		exiter_kept[i] = malloc(333);
	__asm__ volatile("" ::: "memory");
}

static void *exit_thread(void *arg)
{
	(void)arg;
	site_exiter();
	/* Let the churners run a while first. */
	for (int i = 0; i < 2000; i++) {
		void *p = malloc(16);
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
	say("exiting from a thread\n");
	exit(7);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "short";
	if (!strcmp(mode, "short")) {
		pthread_t t[BATCH];
		int round = 0;
		for (int id = 0; id < NSHORT; id += BATCH) {
			for (int k = 0; k < BATCH; k++)
				if (pthread_create(&t[k], NULL, short_thread,
						   (void *)(long)(id + k)))
					return 1;
			main_churn(round++);
			for (int k = 0; k < BATCH; k++)
				pthread_join(t[k], NULL);
		}
		for (int i = 0; i < NSHORT; i++)
			if (!kept[i][0] || !kept[i][1])
				return 2;
		say("short threads done\n");
		return 0;
	}
	if (!strcmp(mode, "exit")) {
		pthread_t t[5];
		site_before();
		for (int k = 0; k < 4; k++)
			if (pthread_create(&t[k], NULL, churn_thread, NULL))
				return 1;
		if (pthread_create(&t[4], NULL, exit_thread, NULL))
			return 1;
		pthread_join(t[0], NULL); /* never returns */
		return 3;
	}
	return 2;
}
