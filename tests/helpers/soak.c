/*
 * soak.c - a long run in a bounded time, for the shim's own memory
 * (tests/shim/test_soak.c): rounds of threads, created and joined again
 * and again, allocate, reallocate and free through a fixed set of call
 * stacks into a fixed number of slots, and the program reads its own
 * memory at checkpoints.
 *
 * Usage: soak [ROUNDS [OPS]]   ROUNDS rounds (default 100) of NTHREADS
 *                              threads doing OPS operations each (default
 *                              20000); checkpoints after 10%, 50%, 100%
 *        soak figures          the shim's memory per live block and per
 *                              stack, measured apart
 *
 * The workload: thread t of every round works on its own SLOTS slots,
 * which the threads of earlier rounds filled (so most frees are of blocks
 * another thread made). An operation picks a slot and a stack number k
 * with the thread's PRNG (seeded from the thread and the round: every run
 * does the same operations): a full slot is freed one time in four, else
 * the block is replaced through stack k; an empty slot is filled through
 * stack k. Stack k is a recursion of LEVELS levels that goes through
 * left() or right() after bit l of k / NLEAF, ending in leaf k % NLEAF:
 * malloc, calloc, realloc, posix_memalign or aligned_alloc, each from one
 * call site, so the workload has exactly NSTACKS = 2^LEVELS * NLEAF
 * distinct stacks, however long it runs. Sizes are 1 to MAX_SIZE bytes.
 *
 * Memory is read with open/read and printed with snprintf/write: nothing
 * here allocates but the workload (and glibc's thread creation), so the
 * snapshot's figures are the ones printed. The figures, on stdout:
 *
 *   checkpoint PCT events E live L rss_kb R rss_anon_kb A data_kb D
 *       heap_kb H anon_kb N anon_virt_kb V
 *   workload stacks S allocs A alloc_bytes B frees F reallocs R
 *       live_blocks L live_bytes Y
 *
 * (frees: of whole blocks; reallocs: of a block that existed, which the
 * shim also counts as a free; E, events: allocations and frees).
 *
 * VmRSS, RssAnon and VmData come from /proc/self/status; heap_kb is the
 * resident part of [heap]; anon_kb (anon_virt_kb) the resident (mapped)
 * part of every other anonymous mapping but this program's own data. The
 * program's heap is [heap] alone (M_ARENA_MAX 1: no per-thread arenas,
 * blocks below the mmap threshold) and its threads run on stacks in its
 * own data (pthread_attr_setstack), so anon_kb is the shim's own memory
 * (it gets all of it from mmap) plus the few pages the loader and the
 * libraries' .bss hold, which the same program run bare shows.
 *
 * "soak figures" prints "figures blocks N block_bytes_x10 X stacks K
 * frames F stack_bytes_x10 Y": the growth of anon_kb per live block while
 * it allocates N 16-byte blocks from one site, and per stack while it
 * allocates and frees one block from each of K new stacks of F frames
 * (in tenths of bytes).
 */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define NTHREADS 4
#define SLOTS 1024
#define LEVELS 6
#define NLEAF 5
#define NSTACKS ((1u << LEVELS) * NLEAF)
#define MAX_SIZE 1024
#define STACK_SIZE (256 * 1024)
/* ~900 blocks in each of the shim's 256 table shards: none grows past 2048
 * slots (it would at 1024 blocks). */
#define FIG_BLOCKS (256 * 900)
#define FIG_LEVELS 16

#define NOINLINE __attribute__((noinline, noipa))
/* Keeps p live across the call and the call out of tail position. */
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

struct slot {
	void *p;
	size_t size;
};

struct worker {
	uint64_t rng;
	struct slot *slots;
	uint64_t allocs, alloc_bytes, frees, reallocs;
};

/* Everything big in one place, which the measurement leaves out. */
static struct {
	char stacks[NTHREADS][STACK_SIZE];
	struct slot slots[NTHREADS * SLOTS];
	struct worker workers[NTHREADS];
	void *blocks[FIG_BLOCKS];
	char buf[1 << 16];
} big __attribute__((aligned(4096)));

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && write(1, line, (size_t)n) < 0)
		_exit(1);
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* ---- the leaves: one allocation call site each ----------------------- */

NOINLINE static void *leaf_malloc(struct slot *s, size_t size)
{
	free(s->p);
	void *p = malloc(size);
	KEEP(p);
	return p;
}

NOINLINE static void *leaf_calloc(struct slot *s, size_t size)
{
	free(s->p);
	void *p = calloc(1, size);
	KEEP(p);
	return p;
}

NOINLINE static void *leaf_realloc(struct slot *s, size_t size)
{
	void *p = realloc(s->p, size);
	KEEP(p);
	return p;
}

NOINLINE static void *leaf_memalign(struct slot *s, size_t size)
{
	free(s->p);
	void *p = NULL;
	if (posix_memalign(&p, 64, size))
		p = NULL;
	KEEP(p);
	return p;
}

NOINLINE static void *leaf_aligned(struct slot *s, size_t size)
{
	free(s->p);
	void *p = aligned_alloc(16, size); /* size is a multiple of 16 */
	KEEP(p);
	return p;
}

static void *(*const leaves[NLEAF])(struct slot *, size_t) = {
	leaf_malloc, leaf_calloc, leaf_realloc, leaf_memalign, leaf_aligned};

/* ---- the recursion: one stack per path ------------------------------- */

static void *walk(int level, unsigned path, struct slot *s, size_t size);

NOINLINE static void *left(int level, unsigned path, struct slot *s,
			   size_t size)
{
	void *p = walk(level, path, s, size);
	KEEP(p);
	return p;
}

NOINLINE static void *right(int level, unsigned path, struct slot *s,
			    size_t size)
{
	void *p = walk(level, path, s, size);
	__asm__ volatile("nop" : : "r"(p) : "memory");
	return p;
}

/* Leaf path % NLEAF, after LEVELS turns given by the bits of path / NLEAF
 * (level l looks at bit l - 1). */
NOINLINE static void *walk(int level, unsigned path, struct slot *s,
			   size_t size)
{
	void *p;
	if (level == 0)
		p = leaves[path % NLEAF](s, size);
	else if ((path / NLEAF >> (level - 1)) & 1)
		p = right(level - 1, path, s, size);
	else
		p = left(level - 1, path, s, size);
	KEEP(p);
	return p;
}

/* ---- the workload ---------------------------------------------------- */

static void op(struct worker *w)
{
	uint64_t r = rnd(&w->rng);
	struct slot *s = &w->slots[r % SLOTS];
	if (s->p && (r >> 32) % 4 == 0) {
		free(s->p);
		s->p = NULL;
		s->size = 0;
		w->frees++;
		return;
	}
	uint64_t r2 = rnd(&w->rng);
	unsigned k = (unsigned)(r2 % NSTACKS);
	size_t size = 1 + (r2 >> 32) % MAX_SIZE;
	if (k % NLEAF == 4)
		size = (size + 15) & ~(size_t)15;
	if (s->p && k % NLEAF == 2)
		w->reallocs++;
	else if (s->p)
		w->frees++; /* the leaf frees the old block first */
	void *p = walk(LEVELS, k, s, size);
	if (!p) {
		say("soak: out of memory\n");
		_exit(1);
	}
	s->p = p;
	s->size = size;
	w->allocs++;
	w->alloc_bytes += size;
}

struct job {
	struct worker *w;
	long ops;
};

static void *work(void *arg)
{
	struct job *j = arg;
	for (long i = 0; i < j->ops; i++)
		op(j->w);
	return NULL;
}

/* ---- measuring ------------------------------------------------------- */

struct mem {
	long rss_kb, rss_anon_kb, data_kb, heap_kb, anon_kb, anon_virt_kb;
};

/* The whole of a small file into big.buf, NUL-terminated; length or -1. */
static long slurp(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	long n = 0, r;
	while ((r = read(fd, big.buf + n, sizeof(big.buf) - 1 - (size_t)n)) > 0)
		n += r;
	close(fd);
	big.buf[n] = '\0';
	return n;
}

static long status_kb(const char *key)
{
	const char *p = strstr(big.buf, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

enum kind { OTHER, HEAP, ANON };

/* One line of /proc/self/smaps: a mapping's header or one of its fields. */
static void smaps_line(char *line, enum kind *k, struct mem *m)
{
	if ((*line >= '0' && *line <= '9') || (*line >= 'a' && *line <= 'f')) {
		char *e;
		uintptr_t start = strtoull(line, &e, 16);
		uintptr_t end = strtoull(e + 1, &e, 16);
		/* perms offset dev inode, then the name (may be empty) */
		char *f = e;
		for (int i = 0; i < 3; i++) {
			while (*f == ' ')
				f++;
			while (*f && *f != ' ')
				f++;
		}
		unsigned long inode = strtoul(f, &f, 10);
		while (*f == ' ')
			f++;
		uintptr_t own = (uintptr_t)&big, own_end = own + sizeof(big);
		if (!strcmp(f, "[heap]"))
			*k = HEAP;
		else if (inode == 0 && !*f && (end <= own || start >= own_end))
			*k = ANON;
		else
			*k = OTHER;
		if (*k == ANON)
			m->anon_virt_kb += (long)((end - start) / 1024);
	} else if (!strncmp(line, "Rss:", 4)) {
		long kb = strtol(line + 4, NULL, 10);
		if (*k == HEAP)
			m->heap_kb += kb;
		else if (*k == ANON)
			m->anon_kb += kb;
	}
}

static void measure(struct mem *m)
{
	memset(m, 0, sizeof(*m));
	if (slurp("/proc/self/status") > 0) {
		m->rss_kb = status_kb("VmRSS:");
		m->rss_anon_kb = status_kb("RssAnon:");
		m->data_kb = status_kb("VmData:");
	}
	/* smaps is longer than the buffer: read it a piece at a time. */
	int fd = open("/proc/self/smaps", O_RDONLY);
	if (fd < 0)
		return;
	enum kind k = OTHER;
	size_t have = 0;
	ssize_t r;
	while ((r = read(fd, big.buf + have, sizeof(big.buf) - 1 - have)) > 0) {
		have += (size_t)r;
		big.buf[have] = '\0';
		char *line = big.buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			smaps_line(line, &k, m);
			line = nl + 1;
		}
		have = (size_t)(big.buf + have - line);
		memmove(big.buf, line, have);
	}
	close(fd);
}

static void checkpoint(int pct, uint64_t events, uint64_t live)
{
	struct mem m;
	measure(&m);
	say("checkpoint %d events %llu live %llu rss_kb %ld rss_anon_kb %ld "
	    "data_kb %ld heap_kb %ld anon_kb %ld anon_virt_kb %ld\n",
	    pct, (unsigned long long)events, (unsigned long long)live, m.rss_kb,
	    m.rss_anon_kb, m.data_kb, m.heap_kb, m.anon_kb, m.anon_virt_kb);
}

static int soak(long rounds, long ops)
{
	pthread_attr_t attr[NTHREADS];
	for (int t = 0; t < NTHREADS; t++) {
		big.workers[t].slots = &big.slots[t * SLOTS];
		pthread_attr_init(&attr[t]);
		if (pthread_attr_setstack(&attr[t], big.stacks[t], STACK_SIZE))
			return 1;
	}
	uint64_t events = 0;
	for (long r = 1; r <= rounds; r++) {
		pthread_t th[NTHREADS];
		struct job jobs[NTHREADS];
		for (int t = 0; t < NTHREADS; t++) {
			struct worker *w = &big.workers[t];
			w->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1) ^
				 0xD1B54A32D192ED03ull * (uint64_t)r;
			jobs[t].w = w;
			jobs[t].ops = ops;
			if (pthread_create(&th[t], &attr[t], work, &jobs[t]))
				return 1;
		}
		for (int t = 0; t < NTHREADS; t++)
			pthread_join(th[t], NULL);
		uint64_t allocs = 0, frees = 0, bytes = 0, reallocs = 0;
		uint64_t live = 0, lbytes = 0;
		for (int t = 0; t < NTHREADS; t++) {
			allocs += big.workers[t].allocs;
			frees += big.workers[t].frees;
			bytes += big.workers[t].alloc_bytes;
			reallocs += big.workers[t].reallocs;
		}
		for (int i = 0; i < NTHREADS * SLOTS; i++)
			if (big.slots[i].p) {
				live++;
				lbytes += big.slots[i].size;
			}
		events = allocs + frees; /* a realloc is one event */
		if (r * 10 == rounds || r * 2 == rounds || r == rounds)
			checkpoint((int)(r * 100 / rounds), events, live);
		if (r == rounds)
			say("workload stacks %u allocs %llu alloc_bytes %llu "
			    "frees %llu reallocs %llu live_blocks %llu "
			    "live_bytes %llu\n",
			    NSTACKS, (unsigned long long)allocs,
			    (unsigned long long)bytes,
			    (unsigned long long)frees,
			    (unsigned long long)reallocs,
			    (unsigned long long)live,
			    (unsigned long long)lbytes);
	}
	return 0;
}

/* ---- figures: per live block, per stack ------------------------------ */

NOINLINE static void *fig_block(void)
{
	void *p = malloc(16);
	KEEP(p);
	return p;
}

NOINLINE static int figures(void)
{
	struct mem a, b, c;
	measure(&a);
	for (int i = 0; i < FIG_BLOCKS; i++)
		if (!(big.blocks[i] = fig_block()))
			return 1;
	measure(&b);
	long per_block = (b.anon_kb - a.anon_kb) * 10240 / FIG_BLOCKS;
	for (int i = 0; i < FIG_BLOCKS; i++)
		free(big.blocks[i]);
	/* New stacks: FIG_LEVELS turns, leaf malloc, block freed at once. */
	unsigned nstacks = 1u << FIG_LEVELS;
	measure(&b);
	for (unsigned path = 0; path < nstacks; path++) {
		struct slot s = {0};
		void *p = walk(FIG_LEVELS, path * NLEAF, &s, 16);
		if (!p)
			return 1;
		free(p);
	}
	measure(&c);
	long per_stack = (c.anon_kb - b.anon_kb) * 10240 / (long)nstacks;
	/* leaf, walk(0), 2 per level, figures, main, libc's 3 below main */
	say("figures blocks %d block_bytes_x10 %ld stacks %u frames %d "
	    "stack_bytes_x10 %ld\n",
	    FIG_BLOCKS, per_block, nstacks, 2 * FIG_LEVELS + 7, per_stack);
	return 0;
}

int main(int argc, char **argv)
{
	/* One arena, and no block ever from its own mmap: the program's heap
	 * is the [heap] mapping alone (see the top of this file). */
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	/* Resident figures in 4 KiB pages: no transparent huge page (made at
	 * a fault or, later, by khugepaged) turns a few touched pages into
	 * 2 MiB in the middle of the run. */
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	if (argc > 1 && !strcmp(argv[1], "figures")) {
		int r = figures();
		KEEP(r); /* main stays on the stack: no tail call */
		return r;
	}
	long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 100;
	long ops = argc > 2 ? strtol(argv[2], NULL, 10) : 20000;
	if (rounds < 1 || ops < 1) {
		say("usage: soak [ROUNDS [OPS]] | soak figures\n");
		return 2;
	}
	return soak(rounds, ops);
}
