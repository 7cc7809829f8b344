/*
 * shim_trigger.c - snapshots on a signal and on an interval.
 *
 * Only when asked (MEMPROF_SNAPSHOT_SIGNAL, MEMPROF_INTERVAL_MS): a signal
 * handler cannot write a snapshot (the thread it interrupts may hold a
 * lock of the live table), so it writes one byte to a pipe, and a thread of
 * the shim's own, with every signal blocked so that it never takes the
 * program's, wakes up and writes the snapshot; the same thread's poll
 * timeout gives the interval. A program that installs its own handler for
 * the signal later replaces ours. Forked children have no such thread.
 * Hook-safe where it runs in a hook's context: no malloc, no stdio.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim/shim_internal.h"

static int wake_pipe[2] = {-1, -1};
static int interval_ms;

static void on_signal(int sig)
{
	(void)sig;
	int e = errno;
	char c = 1;
	/* Non-blocking: a full pipe already holds a request. */
	if (write(wake_pipe[1], &c, 1) < 0) {
	}
	errno = e;
}

static void *trigger_thread(void *arg)
{
	(void)arg;
	shim_busy_add(1);
	/* The shim's own thread allocates nothing: it must not make a
	 * single-threaded program count as multi-threaded. */
	atomic_fetch_sub(&shim_threads_live, 1);
	for (;;) {
		struct pollfd p = {.fd = wake_pipe[0], .events = POLLIN};
		int r = poll(&p, 1, interval_ms > 0 ? interval_ms : -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (!atomic_load(&shim_active))
			break;
		if (r > 0) {
			char buf[64];
			while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
				;
			shim_take_snapshot("signal", NULL);
		} else if (r == 0) {
			shim_take_snapshot("interval", NULL);
		}
	}
	return NULL;
}

static long env_long(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return 0;
	long n = 0;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return 0;
		n = n * 10 + (*v - '0');
		if (n > 100000000L)
			return 0;
	}
	return n;
}

void shim_trigger_start(void)
{
	long sig = env_long("MEMPROF_SNAPSHOT_SIGNAL");
	interval_ms = (int)env_long("MEMPROF_INTERVAL_MS");
	if (sig <= 0 && interval_ms <= 0)
		return;
	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		shim_say("cannot create the snapshot trigger: ",
			 shim_errname(errno), NULL, NULL);
		return;
	}
	if (sig > 0 && sig < NSIG) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction((int)sig, &sa, NULL);
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, trigger_thread, NULL) != 0)
		shim_say("cannot start the snapshot trigger thread", NULL, NULL,
			 NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}
