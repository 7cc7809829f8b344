/*
 * mx_oom.c - allocations that fail (test_matrix.c).
 *
 *   mx_oom huge     requests no allocator can grant (SIZE_MAX, 2^46 bytes,
 *                   calloc and reallocarray overflows, realloc to huge,
 *                   every aligned variant): each must give NULL (or
 *                   ENOMEM) with errno ENOMEM, and a block whose realloc
 *                   failed must be untouched
 *   mx_oom limit    RLIMIT_AS a little above what the process uses, then
 *                   1 MiB blocks until malloc says no
 *   mx_oom shim     address space used up by the program's own mmaps
 *                   after its heap was grown by a big block: its small
 *                   mallocs still succeed, but nobody else can map
 *                   memory, and the shim needs some to note them
 *
 * Only figures that do not depend on the process's layout are printed.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

void *kept[16];

static void say(const char *s)
{
	if (write(1, s, strlen(s)) < 0)
		_exit(99);
}

static void report(const char *what, void *p, int err)
{
	char line[128];
	snprintf(line, sizeof(line), "%s: %s errno=%s\n", what,
		 p ? "non-null" : "NULL", err == ENOMEM ? "ENOMEM" : "other");
	say(line);
}

/* 2 x 64 bytes, kept, and the block whose realloc fails: 100 bytes. */
__attribute__((noinline)) void site_survivor(void)
{
	kept[0] = malloc(64);
	kept[1] = malloc(64);
	kept[2] = malloc(100);
	memset(kept[2], 'x', 100);
	__asm__ volatile("" ::: "memory");
}

/* Every request that must fail; none of them adds to any figure. */
__attribute__((noinline)) void site_huge(void)
{
	void *p;
	int r;
	volatile size_t max = SIZE_MAX, big = (size_t)1 << 46;

	errno = 0;
	p = malloc(max);
	report("malloc(SIZE_MAX)", p, errno);
	errno = 0;
	p = malloc(big);
	report("malloc(2^46)", p, errno);
	errno = 0;
	p = calloc(max / 2, 4);
	report("calloc overflow", p, errno);
	errno = 0;
	p = calloc(big, 1);
	report("calloc(2^46, 1)", p, errno);
	errno = 0;
	p = realloc(kept[2], max - 4096);
	report("realloc to SIZE_MAX-4096", p, errno);
	errno = 0;
	p = realloc(kept[2], big);
	report("realloc to 2^46", p, errno);
	errno = 0;
	p = reallocarray(kept[2], max / 2, 4);
	report("reallocarray overflow", p, errno);
	errno = 0;
	p = memalign(64, big);
	report("memalign(64, 2^46)", p, errno);
	errno = 0;
	p = aligned_alloc(64, big);
	report("aligned_alloc(64, 2^46)", p, errno);
	errno = 0;
	p = valloc(big);
	report("valloc(2^46)", p, errno);
	errno = 0;
	p = pvalloc(big);
	report("pvalloc(2^46)", p, errno);
	p = NULL;
	r = posix_memalign(&p, 64, big);
	report("posix_memalign(64, 2^46)", p, r);
	for (int i = 0; i < 100; i++)
		if (((char *)kept[2])[i] != 'x')
			say("realloc'd block changed\n");
}

/* 1 MiB blocks until malloc fails; all freed. */
__attribute__((noinline)) int site_limit(void)
{
	static void *v[4096];
	int n = 0;
	errno = 0;
	while (n < 4096 && (v[n] = malloc(1 << 20)) != NULL)
		n++;
	int err = errno;
	for (int i = 0; i < n; i++)
		free(v[i]);
	return n > 0 && n < 4096 && err == ENOMEM;
}

static size_t vm_size(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;
	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void limit_as(size_t extra)
{
	struct rlimit rl;
	getrlimit(RLIMIT_AS, &rl);
	rl.rlim_cur = vm_size() + extra;
	setrlimit(RLIMIT_AS, &rl);
}

/* One block of 16 MiB from the heap (not mmap'd), freed: the heap has
 * room for what follows, but the shim has never recorded a small block
 * in that memory, so it has nothing to note them with yet. */
#define SMALL 100000
static void *v[2 * SMALL];
__attribute__((noinline)) void site_grow_heap(void)
{
	mallopt(M_MMAP_THRESHOLD, 32 << 20); /* its maximum */
	void *big = malloc(16 << 20);
	memset(big, 1, 16 << 20);
	/* Or GCC drops the pair of calls. */
	__asm__ volatile("" : : "r"(big) : "memory");
	free(big);
}

/* Then 2N blocks of 48 bytes, in the same memory; all freed. */
__attribute__((noinline)) int site_small(void)
{
	int n = 0;
	for (int i = 0; i < 2 * SMALL; i++)
		if ((v[i] = malloc(48)) != NULL)
			n++;
	for (int i = 0; i < 2 * SMALL; i++)
		free(v[i]);
	return n;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "huge";
	site_survivor();
	if (!strcmp(mode, "huge")) {
		site_huge();
	} else if (!strcmp(mode, "limit")) {
		/* Warm-up: blocks everywhere in the shim's table, so that
		 * it needs no more memory for 1 MiB blocks later. */
		static void *w[4096];
		for (int i = 0; i < 4096; i++)
			w[i] = malloc(16);
		for (int i = 0; i < 4096; i++)
			free(w[i]);
		limit_as((size_t)256 << 20);
		say(site_limit() ? "malloc ran out with ENOMEM\n"
				 : "malloc did not run out\n");
	} else if (!strcmp(mode, "shim")) {
		/* The heap, grown and kept: small blocks need no mmap. */
		mallopt(M_TRIM_THRESHOLD, 1 << 30);
		site_grow_heap();
		limit_as((size_t)64 << 20);
		/* Every page left, the program's own. */
		for (size_t len = (size_t)32 << 20; len >= 4096;) {
			if (mmap(NULL, len, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				 -1, 0) == MAP_FAILED)
				len /= 2;
		}
		char line[64];
		snprintf(line, sizeof(line), "%d small blocks\n", site_small());
		say(line);
	} else {
		return 2;
	}
	free(kept[0]);
	say("oom done\n");
	return 0;
}
