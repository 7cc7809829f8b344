/*
 * mx_fds.c - programs that do what they like with their file descriptors
 * (test_matrix.c). The files they write are in the current directory.
 *
 *   mx_fds closeall  closes every descriptor, 0 to 2 included
 *                    (close_range), then opens own.txt (fd 0) and writes
 *   mx_fds loop      closes 3 to 1023 one by one, opens a.txt and b.txt
 *                    (fds 3 and 4), raises SIGUSR2 (memprof's snapshot
 *                    signal in the test) and, when traced, waits for
 *                    the snapshot it asked for
 *   mx_fds dup2      puts log.txt over fd 2 and writes its log there
 *
 * Each allocates 6 x 600 bytes, kept, at site_fds first.
 */
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memprof.h"

void *kept[8];

/* 6 x 600 bytes, kept. */
__attribute__((noinline)) void site_fds(void)
{
	for (int i = 0; i < 6; i++)
		kept[i] = malloc(600);
	__asm__ volatile("" ::: "memory");
}

static int put(int fd, const char *s)
{
	return write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : 1;
}

/* When traced, waits (at most 10 s) for FILE.1.memprof, the snapshot
 * SIGUSR2 asked for: the test then knows that the trigger thread ran
 * after the descriptors were gone. */
static void wait_signal_snapshot(void)
{
	const char *o = getenv("MEMPROF_OUTPUT");
	if (!memprof_is_tracing() || !o)
		return;
	char path[4096];
	size_t n = strlen(o);
	if (n < 8 || n + 3 > sizeof(path))
		return;
	memcpy(path, o, n - 8);
	memcpy(path + n - 8, ".1.memprof", 11);
	for (int i = 0; i < 1000; i++) {
		struct stat st;
		if (stat(path, &st) == 0)
			return;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "closeall";
	site_fds();
	if (put(1, "started\n"))
		return 1;
	if (!strcmp(mode, "closeall")) {
		if (syscall(SYS_close_range, 0u, ~0u, 0) != 0)
			for (int fd = 0; fd < 1024; fd++)
				close(fd);
		int fd = open("own.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd != 0)
			return 4;
		free(malloc(100));
		return put(fd, "program data\n") ? 5 : 6;
	}
	if (!strcmp(mode, "loop")) {
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		int a = open("a.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
		int b = open("b.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (a != 3 || b != 4)
			return 4;
		if (put(a, "file a\n") || put(b, "file b\n"))
			return 5;
		/* Bare, the default action of SIGUSR2 would kill us: it is
		 * raised only when traced, where it is the snapshot signal;
		 * the output is the same either way. */
		if (memprof_is_tracing())
			raise(SIGUSR2);
		wait_signal_snapshot();
		return put(1, "loop done\n") ? 6 : 0;
	}
	if (!strcmp(mode, "dup2")) {
		int fd = open("log.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 2) != 2)
			return 4;
		close(fd);
		if (put(2, "program log\n"))
			return 5;
		return put(1, "dup2 done\n") ? 6 : 0;
	}
	return 2;
}
