/*
 * mx_realloc.c - every edge of realloc, each at sites of its own, so that
 * the figures the tests expect per site follow from the code here
 * (test_matrix.c). A block is made in a *_make function and resized in
 * the site_* one: the resize counts as a free at the maker and an
 * allocation at the site.
 *
 *   mx_realloc [mt]   mt: a second thread exists meanwhile (the shim
 *                     then takes another path for frees)
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *kept[16];
static int fails;

static void check(int ok)
{
	if (!ok)
		fails++;
}

__attribute__((noinline)) void *make(size_t n)
{
	void *p = malloc(n);
	memset(p, 'm', n);
	return p;
}

/* realloc(NULL, 100): an allocation of 100 bytes here. */
__attribute__((noinline)) void site_from_null(void)
{
	kept[0] = realloc(NULL, 100);
	check(kept[0] != NULL);
}

/* realloc(p, 0): glibc frees p and gives NULL. */
__attribute__((noinline)) void site_to_zero(void *p)
{
	errno = 0;
	void *q = realloc(p, 0);
	check(q == NULL);
}

/* 1000 -> 100 bytes. */
__attribute__((noinline)) void site_shrink(void *p)
{
	kept[1] = realloc(p, 100);
	check(kept[1] && ((char *)kept[1])[99] == 'm');
}

/* 100 -> 200 bytes at the top of the heap: glibc grows it in place. */
__attribute__((noinline)) void site_grow_in_place(void *p)
{
	kept[2] = realloc(p, 200);
	check(kept[2] && ((char *)kept[2])[99] == 'm');
}

/* 100 -> 100000 bytes with a block in the way: moved. */
__attribute__((noinline)) void site_grow_moving(void *p)
{
	kept[3] = realloc(p, 100000);
	check(kept[3] && ((char *)kept[3])[99] == 'm');
}

/* 64 -> SIZE_MAX/2: fails, the block stays as it was (and live). */
__attribute__((noinline)) void site_fail(void *p)
{
	volatile size_t huge = SIZE_MAX / 2;
	errno = 0;
	void *q = realloc(p, huge);
	check(q == NULL && errno == ENOMEM && ((char *)p)[63] == 'm');
	kept[4] = p;
}

/* reallocarray: an overflow fails (ENOMEM), then 4 x 16 works. */
__attribute__((noinline)) void site_array(void *p)
{
	volatile size_t many = SIZE_MAX / 2;
	errno = 0;
	void *q = reallocarray(p, many, 4);
	check(q == NULL && errno == ENOMEM);
	kept[5] = reallocarray(p, 4, 16);
	check(kept[5] && ((char *)kept[5])[31] == 'm');
}

/* The same block resized 10 times, 10 to 100 bytes. */
__attribute__((noinline)) void site_steps(void *p)
{
	for (int i = 2; i <= 10; i++)
		p = realloc(p, 10 * (size_t)i);
	kept[6] = p;
}

/* Sizes whose word in the shim's direct map keeps them in a word of
 * their own (64 bytes or more), and once kept them in its hash table
 * (2 MiB or more): 1000 -> 3 MiB -> 500 bytes, kept; 4 MiB kept; 3 MiB
 * freed. */
__attribute__((noinline)) void site_big(void)
{
	char *p = malloc(1000);
	check(p != NULL);
	memset(p, 'b', 1000);
	p = realloc(p, 3 << 20);
	check(p && p[999] == 'b');
	p[(3 << 20) - 1] = 'e';
	p = realloc(p, 500);
	check(p && p[499] == 'b');
	kept[8] = p;
	kept[9] = malloc(4 << 20);
	char *q = malloc(3 << 20);
	check(kept[9] && q);
	__asm__ volatile("" : : "r"(q) : "memory");
	free(q);
}

static int hold_fd[2];

static void *idle(void *arg)
{
	(void)arg;
	free(malloc(8)); /* this thread gets a state in the shim */
	char c;
	if (read(hold_fd[0], &c, 1) < 0)
		return NULL;
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	bool mt = argc > 1 && !strcmp(argv[1], "mt");
	if (mt &&
	    (pipe(hold_fd) != 0 || pthread_create(&t, NULL, idle, NULL) != 0))
		return 1;
	site_from_null();
	site_to_zero(make(50));
	site_shrink(make(1000));
	site_grow_in_place(make(100));
	void *p = make(100);
	void *wall = make(16);
	site_grow_moving(p);
	site_fail(make(64));
	site_array(make(32));
	site_steps(make(10));
	site_big();
	kept[7] = wall;
	if (mt) {
		if (write(hold_fd[1], "x", 1) != 1)
			return 1;
		pthread_join(t, NULL);
	}
	if (write(1, fails ? "realloc failed\n" : "realloc done\n",
		  fails ? 15 : 13) < 0)
		return 1;
	return fails ? 1 : 0;
}
