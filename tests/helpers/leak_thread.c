/*
 * leak_thread.c - a 200 B block held only by another thread's stack when
 * the main thread calls exit(): that thread is still running, blocked, so
 * its stack is a root and the block is still reachable, not lost. A second
 * thread holds a 300 B block only in a register-heavy spin.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static int nready;

__attribute__((noinline)) void *holder(void *arg)
{
	size_t size = (size_t)arg;
	char *volatile mine = malloc(size);
	memset(mine, 1, size);
	pthread_mutex_lock(&m);
	nready++;
	pthread_cond_signal(&ready);
	for (;;)
		pthread_cond_wait(&never, &m);
	return mine;
}

int main(void)
{
	pthread_t t1, t2;
	pthread_create(&t1, NULL, holder, (void *)200);
	pthread_create(&t2, NULL, holder, (void *)300);
	pthread_mutex_lock(&m);
	while (nready < 2)
		pthread_cond_wait(&ready, &m);
	pthread_mutex_unlock(&m);
	static const char msg[] = "leak_thread done\n";
	if (write(1, msg, sizeof(msg) - 1) < 0)
		return 1;
	exit(0);
}
