/*
 * mx_fork.c - processes made every way (test_matrix.c): fork without exec,
 * fork + exec, posix_spawn, vfork + exec, and a vfork child whose exec
 * fails. The parent and the program it starts allocate at known sites.
 *
 *   mx_fork fork|exec|spawn|vfork|vfork-fail
 *   mx_fork child        (what exec, spawn and vfork run)
 *
 * Output goes through write(2): stdio's buffer would be copied into the
 * forked child. Exit status: the parent's is 10 + the child's.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void *keep[64];
int nkeep;

static void hold(void *p)
{
	keep[nkeep++] = p;
	__asm__ volatile("" : : "r"(p) : "memory");
}

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(99);
}

/* 3 x 100 bytes, kept: the parent's before it starts the child. */
__attribute__((noinline)) void site_parent(void)
{
	for (int i = 0; i < 3; i++)
		hold(malloc(100));
	__asm__ volatile("" ::: "memory");
}

/* 4 x 200 bytes, kept: the forked child's own. */
__attribute__((noinline)) void site_forked(void)
{
	for (int i = 0; i < 4; i++)
		hold(malloc(200));
	__asm__ volatile("" ::: "memory");
}

/* 5 x 300 bytes, kept: the parent's after the child ended. */
__attribute__((noinline)) void site_after(void)
{
	for (int i = 0; i < 5; i++)
		hold(malloc(300));
	__asm__ volatile("" ::: "memory");
}

/* 7 x 70 bytes, kept, and 2 x 20 freed: the exec'd program's. */
__attribute__((noinline)) void site_execd(void)
{
	for (int i = 0; i < 7; i++)
		hold(malloc(70));
	for (int i = 0; i < 2; i++) {
		void *p = malloc(20);
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
}

static int child_status(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	char line[64];
	if (WIFEXITED(st))
		snprintf(line, sizeof(line), "child exited %d\n",
			 WEXITSTATUS(st));
	else
		snprintf(line, sizeof(line), "child killed %d\n", WTERMSIG(st));
	say(line);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "fork";
	char *child_argv[] = {argv[0], (char *)"child", NULL};
	if (!strcmp(mode, "child")) {
		site_execd();
		say("exec'd child done\n");
		return 9;
	}
	site_parent();
	pid_t pid = -1;
	if (!strcmp(mode, "fork")) {
		pid = fork();
		if (pid == 0) {
			site_forked();
			say("forked child done\n");
			exit(5);
		}
	} else if (!strcmp(mode, "exec")) {
		pid = fork();
		if (pid == 0) {
			execv(argv[0], child_argv);
			_exit(127);
		}
	} else if (!strcmp(mode, "spawn")) {
		if (posix_spawn(&pid, argv[0], NULL, NULL, child_argv,
				environ) != 0)
			return 1;
	} else if (!strcmp(mode, "vfork")) {
		pid = vfork();
		if (pid == 0) {
			execv(argv[0], child_argv);
			_exit(127);
		}
	} else if (!strcmp(mode, "vfork-fail")) {
		char *bad[] = {(char *)"/nonexistent/program", NULL};
		pid = vfork();
		if (pid == 0) {
			execv(bad[0], bad);
			_exit(127);
		}
	} else {
		return 2;
	}
	if (pid < 0)
		return 1;
	int st = child_status(pid);
	site_after();
	say("parent done\n");
	for (int i = 0; i < nkeep; i++)
		if (!keep[i])
			return 3;
	return 10 + (st % 100);
}
