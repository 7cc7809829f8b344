/*
 * shim_trigger.c - snapshots on a signal and on an interval, and the exit
 * snapshot of a program killed by an exit signal.
 *
 * Only when asked (MEMPROF_SNAPSHOT_SIGNAL, MEMPROF_INTERVAL_MS,
 * MEMPROF_EXIT_SIGNALS): a signal handler cannot write a snapshot (the
 * thread it interrupts may hold a lock of the live table), so it bumps a
 * futex word, and a thread of the shim's own, with every signal blocked so
 * that it never takes the program's, wakes up and writes the snapshot; the
 * same wait's timeout gives the interval. A futex rather than a pipe: the
 * shim holds no file descriptor while the program runs, so a program that
 * closes every descriptor, or counts them, or reads fd 0 when it was
 * started with it closed, sees what it would see without memprof.
 *
 * An exit signal (TERM, INT, ...) is handled only when its disposition
 * was the default at start-up; a handler the program installs later
 * replaces ours. Our handler asks the thread for the exit snapshot and,
 * unless the thread it interrupted was inside the shim, waits for it (so
 * that thread runs no more of the program than without memprof); the
 * thread writes the snapshot, restores the default disposition and raises
 * the signal again in itself, so the program still dies by it. Forked
 * children have no such thread: there the handler writes the snapshot
 * itself when the thread it interrupted holds nothing of the shim's (a
 * forked child has that one thread), then dies the same way.
 *
 * Hook-safe where it runs in a hook's or a handler's context: no malloc,
 * no stdio, no locks.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim/shim_internal.h"

/* Bumped by the snapshot signal's handler; the thread waits on it. */
static _Atomic uint32_t wake_word;
/* The exit signal being handled (0: none); the first one wins. */
static _Atomic int exit_sig;
/* Set once the thread is done with the exit snapshot (a handler waits on
 * it only when the signal could not be raised again). */
static _Atomic uint32_t exit_done;
/* The process the thread serves (a forked child has no thread). */
static _Atomic pid_t owner_pid;
/* The thread's id, so that the heap scan leaves it alone. */
static _Atomic pid_t thread_tid;
static int interval_ms;
static int snap_sig;
/* Exit signals whose handler we installed. */
static uint64_t exit_mask;

/* How long a handler waits for the exit snapshot before it lets its
 * thread go on (the snapshot of a huge heap, or a thread that holds the
 * loader's lock): 100 waits of 100 ms. */
#define EXIT_WAITS 100

static long futex(_Atomic uint32_t *w, int op, uint32_t v,
		  const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)w, op, v, ts, NULL, 0);
}

pid_t shim_trigger_tid(void)
{
	return atomic_load_explicit(&thread_tid, memory_order_relaxed);
}

static const struct {
	const char *name;
	int sig;
} exit_names[] = {
	{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},
	{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},
	{"ALRM", SIGALRM}, {"TERM", SIGTERM},
};
#define NEXIT_NAMES (sizeof(exit_names) / sizeof(exit_names[0]))

const char *shim_signal_name(int sig)
{
	static const char *const full[] = {
		[SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",
		[SIGQUIT] = "SIGQUIT", [SIGUSR1] = "SIGUSR1",
		[SIGUSR2] = "SIGUSR2", [SIGPIPE] = "SIGPIPE",
		[SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM",
	};
	if (sig > 0 && sig < (int)(sizeof(full) / sizeof(full[0])) && full[sig])
		return full[sig];
	return "a signal";
}

void shim_die_by(int sig)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
}

static void on_signal(int sig)
{
	(void)sig;
	/* A forked child shares the word with no thread: nothing to do. */
	if (getpid() != atomic_load(&owner_pid))
		return;
	atomic_fetch_add(&wake_word, 1);
	futex(&wake_word, FUTEX_WAKE_PRIVATE, 1, NULL);
}

static void on_exit_signal(int sig)
{
	int e = errno;
	if (getpid() != atomic_load(&owner_pid)) {
		/* A forked child: no thread to ask. Its one thread is this
		 * one, so when it was not inside the shim nothing of the
		 * shim's is held, and the snapshot can be written here.
		 * Then, with the signal blocked while we run, the raise
		 * kills the child as soon as the handler returns. */
		if (shim_exit_snapshot_in_handler(sig))
			shim_die_by(sig);
		errno = e;
		return;
	}
	int expect = 0;
	atomic_compare_exchange_strong(&exit_sig, &expect, sig);
	atomic_fetch_add(&wake_word, 1);
	futex(&wake_word, FUTEX_WAKE_PRIVATE, 1, NULL);
	/* Inside the shim this thread may hold a lock the snapshot needs:
	 * it must go on to release it. Otherwise it waits, so that it runs
	 * no more of the program; the stop signal of the heap scan still
	 * reaches it (our mask blocks nothing else). */
	if (!shim_in_shim_work()) {
		for (int i = 0; i < EXIT_WAITS && !atomic_load(&exit_done);
		     i++) {
			struct timespec ts = {0, 100 * 1000000L};
			futex(&exit_done, FUTEX_WAIT_PRIVATE, 0, &ts);
		}
	}
	errno = e;
}

static void *trigger_thread(void *arg)
{
	(void)arg;
	atomic_store(&thread_tid, (pid_t)syscall(SYS_gettid));
	futex((_Atomic uint32_t *)&thread_tid, FUTEX_WAKE_PRIVATE, 1, NULL);
	shim_busy_add(1);
	/* The shim's own thread allocates nothing: it must not make a
	 * single-threaded program count as multi-threaded. */
	atomic_fetch_sub(&shim_threads_live, 1);
	/* 0: a snapshot signal that came before the thread ran counts. */
	uint32_t handled = 0;
	for (;;) {
		int sig = atomic_load(&exit_sig);
		if (sig) {
			shim_exit_snapshot_for_signal(sig);
			shim_die_by(sig);
			/* Still here: the program installed a handler of its
			 * own meanwhile, which took the signal. */
			atomic_store(&exit_sig, 0);
			atomic_store(&exit_done, 1);
			futex(&exit_done, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
			continue;
		}
		uint32_t now = atomic_load(&wake_word);
		if (now != handled) {
			handled = now;
			if (atomic_load(&shim_active))
				shim_take_snapshot("signal", NULL);
			continue;
		}
		if (!exit_mask && !atomic_load(&shim_active))
			break;
		struct timespec ts = {interval_ms / 1000,
				      (interval_ms % 1000) * 1000000L};
		long r = futex(&wake_word, FUTEX_WAIT_PRIVATE, now,
			       interval_ms > 0 ? &ts : NULL);
		if (r < 0 && errno == ETIMEDOUT && atomic_load(&shim_active))
			shim_take_snapshot("interval", NULL);
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

/* One entry of MEMPROF_EXIT_SIGNALS ("TERM", "SIGTERM", "15"), len bytes;
 * 0 when it is not an exit signal memprof handles. */
static int parse_exit_signal(const char *s, size_t len)
{
	if (len > 3 && !strncmp(s, "SIG", 3)) {
		s += 3;
		len -= 3;
	}
	int num = 0;
	bool digits = len > 0 && len < 4;
	for (size_t i = 0; i < len && digits; i++) {
		if (s[i] < '0' || s[i] > '9')
			digits = false;
		else
			num = num * 10 + (s[i] - '0');
	}
	for (size_t i = 0; i < NEXIT_NAMES; i++)
		if (digits ? exit_names[i].sig == num
			   : (strlen(exit_names[i].name) == len &&
			      !strncmp(exit_names[i].name, s, len)))
			return exit_names[i].sig;
	return 0;
}

/* The exit signals asked for, as a mask; complains once about the rest. */
static uint64_t exit_signals_wanted(void)
{
	const char *v = getenv("MEMPROF_EXIT_SIGNALS");
	uint64_t mask = 0;
	if (!v)
		return 0;
	while (*v) {
		const char *end = v;
		while (*end && *end != ',')
			end++;
		size_t len = (size_t)(end - v);
		int sig = parse_exit_signal(v, len);
		if (sig && sig != snap_sig) {
			mask |= UINT64_C(1) << sig;
		} else if (len) {
			char bad[32];
			size_t n =
				len < sizeof(bad) - 1 ? len : sizeof(bad) - 1;
			memcpy(bad, v, n);
			bad[n] = '\0';
			shim_say("MEMPROF_EXIT_SIGNALS: ignoring '", bad,
				 "' (TERM, INT, HUP, QUIT, USR1, USR2, PIPE or "
				 "ALRM, not the snapshot signal)",
				 NULL);
		}
		v = *end ? end + 1 : end;
	}
	return mask;
}

/* Installs our handler for sig when the program left it at the default;
 * false when it did not. */
static bool install(int sig, void (*fn)(int), bool only_default)
{
	struct sigaction old, sa;
	if (only_default &&
	    (sigaction(sig, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
	     old.sa_handler != SIG_DFL))
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL) == 0;
}

void shim_trigger_start(void)
{
	long sig = env_long("MEMPROF_SNAPSHOT_SIGNAL");
	interval_ms = (int)env_long("MEMPROF_INTERVAL_MS");
	snap_sig = sig > 0 && sig < NSIG ? (int)sig : 0;
	uint64_t want = exit_signals_wanted();
	if (!snap_sig && interval_ms <= 0 && !want)
		return;
	atomic_store(&owner_pid, getpid());
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Set before the thread runs: with no exit signal it may leave
	 * once tracing stops; with one it must stay to raise it. */
	for (int s = 1; s < 64; s++)
		if (want & (UINT64_C(1) << s) &&
		    install(s, on_exit_signal, true))
			exit_mask |= UINT64_C(1) << s;
	bool ok = pthread_create(&t, &attr, trigger_thread, NULL) == 0;
	pthread_attr_destroy(&attr);
	/* The heap scan must know the thread before it can stop the world:
	 * a thread that has not run yet is there too, and never answers. */
	while (ok && !atomic_load(&thread_tid))
		futex((_Atomic uint32_t *)&thread_tid, FUTEX_WAIT_PRIVATE, 0,
		      NULL);
	if (!ok) {
		/* Without the thread our exit handlers would leave the
		 * program alive: take them back. */
		for (int s = 1; s < 64; s++)
			if (exit_mask & (UINT64_C(1) << s))
				signal(s, SIG_DFL);
		exit_mask = 0;
		shim_say("cannot start the snapshot trigger thread", NULL, NULL,
			 NULL);
	} else if (snap_sig) {
		install(snap_sig, on_signal, false);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}
