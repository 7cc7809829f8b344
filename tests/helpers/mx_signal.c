/*
 * mx_signal.c - signal handlers that allocate, hit at a high rate while the
 * interrupted code allocates too (test_matrix.c).
 *
 *   mx_signal alarm    SIGALRM every 50 us (setitimer) on the one thread
 *   mx_signal threads  2 threads allocating, a third sends them SIGUSR1
 *                      as fast as it can
 *
 * glibc's malloc is not async-signal-safe: a handler that calls it while
 * the interrupted code is inside it may deadlock on the arena lock, with
 * or without memprof. So the handlers use a size whose tcache bin the
 * interrupted code never touches (24 bytes: warmed once, then every
 * malloc/free pair in a handler takes and gives back the same cached
 * chunk, lock-free), and the main code uses 1000-byte blocks. What is
 * left to test is the shim: its hooks, interrupted anywhere, must neither
 * deadlock nor lose count.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define ROUNDS 400000
#define KEEP 20

static atomic_long handled;
static atomic_int done;
void *kept[3][KEEP];

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(99);
}

/* A malloc and a free in the handler: nothing of it stays live. */
/* The handlers' chunk put in this thread's tcache (which also makes the
 * tcache itself: glibc builds it on a thread's first malloc, under the
 * arena lock). Through the barrier, or the compiler drops the pair. */
static void warm_tcache(void)
{
	void *w = malloc(24);
	__asm__ volatile("" : : "r"(w) : "memory");
	free(w);
}

__attribute__((noinline)) void handler_alloc(void)
{
	void *p = malloc(24);
	__asm__ volatile("" : : "r"(p) : "memory");
	free(p);
}

static void on_signal(int sig)
{
	(void)sig;
	int e = errno;
	handler_alloc();
	atomic_fetch_add(&handled, 1);
	errno = e;
}

/* ROUNDS blocks of 1000 bytes made and freed, KEEP kept. */
__attribute__((noinline)) void main_work(int who)
{
	for (int i = 0; i < ROUNDS; i++) {
		void *p = malloc(1000);
		__asm__ volatile("" : : "r"(p) : "memory");
		if (i % (ROUNDS / KEEP) == 0)
			kept[who][i / (ROUNDS / KEEP)] = p;
		else
			free(p);
	}
}

static void *worker(void *arg)
{
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	/* Started with SIGUSR1 blocked: this thread's own tcache gets the
	 * handlers' chunk first, or the first handler would go to the arena
	 * and could meet its lock held by the code it interrupted. */
	warm_tcache();
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	/* Not before the signals come: a fast machine would be done. */
	while (!atomic_load(&handled))
		sched_yield();
	main_work((int)(long)arg);
	/* Blocked again before the thread exits: glibc tears the tcache
	 * down then, under the arena lock, and a handler's malloc would
	 * deadlock there (it did, bare or traced). */
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	return NULL;
}

static pthread_t workers[2];

static void *sender(void *arg)
{
	(void)arg;
	while (!atomic_load(&done))
		for (int k = 0; k < 2; k++)
			pthread_kill(workers[k], SIGUSR1);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "alarm";
	/* The handlers' chunk, in the tcache before any signal. */
	warm_tcache();
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (!strcmp(mode, "alarm")) {
		sigaction(SIGALRM, &sa, NULL);
		struct itimerval it = {{0, 50}, {0, 50}};
		setitimer(ITIMER_REAL, &it, NULL);
		main_work(0);
		struct itimerval off = {{0, 0}, {0, 0}};
		setitimer(ITIMER_REAL, &off, NULL);
	} else if (!strcmp(mode, "threads")) {
		sigaction(SIGUSR1, &sa, NULL);
		pthread_t s;
		sigset_t usr1, old;
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &usr1, &old);
		for (int k = 0; k < 2; k++)
			if (pthread_create(&workers[k], NULL, worker,
					   (void *)(long)(k + 1)))
				return 1;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (pthread_create(&s, NULL, sender, NULL))
			return 1;
		for (int k = 0; k < 2; k++)
			pthread_join(workers[k], NULL);
		atomic_store(&done, 1);
		pthread_join(s, NULL);
	} else {
		return 2;
	}
	/* How many signals came varies from run to run: not printed. */
	say("done\n");
	return 0;
}
