/*
 * mx_exit.c - every way a program ends (test_matrix.c). Each first keeps
 * 3 x 500 bytes at site_exit.
 *
 *   _exit, _Exit, quick_exit      end with status 3, 4, 6
 *   segv, abort, kill             SIGSEGV, SIGABRT, SIGKILL (no core)
 *   term, int                     SIGTERM / SIGINT sent to itself
 *   term-threads                  the same while 3 threads allocate
 *   term-own                      its own SIGTERM handler, which exits 9
 *   term-child                    a forked child allocates 2 x 700 bytes
 *                                 at site_child and gets SIGTERM
 *   term-in-handler               a SIGUSR1 handler, hit while the
 *                                 program allocates, calls _exit(8)
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

void *kept[8];

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(99);
}

/* 3 x 500 bytes, kept. */
__attribute__((noinline)) void site_exit(void)
{
	for (int i = 0; i < 3; i++)
		kept[i] = malloc(500);
	__asm__ volatile("" ::: "memory");
}

/* 2 x 700 bytes, kept by the forked child. */
__attribute__((noinline)) void site_child(void)
{
	for (int i = 0; i < 2; i++)
		kept[3 + i] = malloc(700);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void churn(void)
{
	for (;;) {
		void *p = malloc(80);
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
}

static atomic_int running;

static void *churn_thread(void *arg)
{
	(void)arg;
	atomic_fetch_add(&running, 1);
	churn();
	return NULL;
}

static void on_term(int sig)
{
	(void)sig;
	say("caught SIGTERM\n");
	exit(9);
}

static void on_usr1(int sig)
{
	(void)sig;
	_exit(8);
}

static pthread_t main_thread;

static void *usr1_sender(void *arg)
{
	(void)arg;
	while (!atomic_load(&running))
		sched_yield();
	pthread_kill(main_thread, SIGUSR1);
	return NULL;
}

/* Dies by sig sent to the whole process; never returns. */
static void die_by(int sig)
{
	kill(getpid(), sig);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "_exit";
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	site_exit();
	say("started\n");
	if (!strcmp(mode, "_exit"))
		_exit(3);
	if (!strcmp(mode, "_Exit"))
		_Exit(4);
	if (!strcmp(mode, "quick_exit"))
		quick_exit(6);
	if (!strcmp(mode, "segv")) {
		volatile int *null = NULL;
		*null = 1;
	}
	if (!strcmp(mode, "abort"))
		abort();
	if (!strcmp(mode, "kill"))
		die_by(SIGKILL);
	if (!strcmp(mode, "term"))
		die_by(SIGTERM);
	if (!strcmp(mode, "int"))
		die_by(SIGINT);
	if (!strcmp(mode, "term-threads")) {
		pthread_t t;
		for (int i = 0; i < 3; i++)
			if (pthread_create(&t, NULL, churn_thread, NULL))
				return 1;
		while (atomic_load(&running) < 3)
			sched_yield();
		die_by(SIGTERM);
	}
	if (!strcmp(mode, "term-own")) {
		signal(SIGTERM, on_term);
		die_by(SIGTERM);
	}
	if (!strcmp(mode, "term-child")) {
		pid_t pid = fork();
		if (pid == 0) {
			site_child();
			die_by(SIGTERM);
		}
		int st;
		while (waitpid(pid, &st, 0) < 0)
			;
		char line[64];
		snprintf(line, sizeof(line), "child killed by %d\n",
			 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		say(line);
		return 0;
	}
	if (!strcmp(mode, "term-in-handler")) {
		signal(SIGUSR1, on_usr1);
		/* The signal comes from another thread, so it lands anywhere
		 * in the loop, often inside an allocation; the first one
		 * ends the program. */
		pthread_t t;
		main_thread = pthread_self();
		if (pthread_create(&t, NULL, usr1_sender, NULL))
			return 1;
		for (long i = 0;; i++) {
			void *p = malloc(40 + (size_t)(i & 7));
			__asm__ volatile("" : : "r"(p) : "memory");
			free(p);
			if (i == 1000)
				atomic_store(&running, 1);
		}
	}
	return 2;
}
