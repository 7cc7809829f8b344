/*
 * shim_mem.c - memory for the shim's own tables.
 *
 * Hook-safe: memory comes from mmap only, never from the allocator the shim
 * is watching. The arena hands out never-freed pieces with one atomic add,
 * so interning a stack needs no lock.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "shim/shim_internal.h"

#define ARENA_CHUNK (4u << 20)

struct arena_chunk {
	struct arena_chunk *prev;
	size_t cap;
	_Atomic size_t used;
	/* 16-byte pieces: a trace's address fits the live map's word. */
	char data[] __attribute__((aligned(16)));
};

static _Atomic(struct arena_chunk *) arena_cur;

void *shim_mmap(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void shim_munmap(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

void *shim_arena_alloc(size_t len)
{
	len = (len + 15) & ~(size_t)15;
	for (;;) {
		struct arena_chunk *c =
			atomic_load_explicit(&arena_cur, memory_order_acquire);
		if (c) {
			size_t off = atomic_fetch_add_explicit(
				&c->used, len, memory_order_relaxed);
			if (off + len <= c->cap)
				return c->data + off;
		}
		/* The chunk is full (or there is none): map a new one and
		 * try to install it; a loser of the race unmaps its own. */
		size_t cap =
			len > ARENA_CHUNK / 2 ? len + ARENA_CHUNK : ARENA_CHUNK;
		struct arena_chunk *n = shim_mmap(cap);
		if (!n)
			return NULL;
		n->prev = c;
		n->cap = cap - sizeof(*n);
		atomic_init(&n->used, 0);
		if (!atomic_compare_exchange_strong(&arena_cur, &c, n))
			shim_munmap(n, cap);
	}
}
