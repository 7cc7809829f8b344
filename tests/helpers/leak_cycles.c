/*
 * leak_cycles.c - leaked cycles the analysis must name:
 *   cycle2:  two 40 B nodes pointing at each other
 *   cycle3:  three 24 B nodes in a ring
 *   selfloop: one 72 B node pointing at itself
 *   owned:   a 16 B root holding a 2-node cycle of 88 B nodes: the root is
 *            definitely lost, the cycle indirectly (not a root cycle)
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct n40 {
	void *next;
	long pad[4];
};

__attribute__((noinline)) void *node(size_t size)
{
	void *p = calloc(1, size);
	__asm__ volatile("" : : "r"(p) : "memory");
	return p;
}

__attribute__((noinline)) void cycle2(void)
{
	void **a = node(40), **b = node(40);
	a[0] = b;
	b[0] = a;
}

__attribute__((noinline)) void cycle3(void)
{
	void **a = node(24), **b = node(24), **c = node(24);
	a[0] = b;
	b[0] = c;
	c[0] = a;
}

__attribute__((noinline)) void selfloop(void)
{
	void **a = node(72);
	a[0] = a;
}

__attribute__((noinline)) void owned(void)
{
	void **root = node(16);
	void **a = node(88), **b = node(88);
	a[0] = b;
	b[0] = a;
	root[0] = a;
}

/*
 * Zeroes the dead stack below main's frame, where the allocations (and the
 * allocator's and any tool's frames) ran, so that no stale copy of a
 * dropped pointer is left for the exit scan. Done inline, from main itself,
 * so that no frame of its own leaves gaps; the stack pointer moves down
 * first so every write is to allocated stack (Valgrind checks that).
 * main calls functions, so it keeps nothing in its red zone. x86-64 only.
 */
#define SCRUB_DEAD_STACK()                       \
	__asm__ volatile("sub $65536, %%rsp\n\t" \
			 "mov %%rsp, %%rdi\n\t"  \
			 "mov $65536, %%rcx\n\t" \
			 "xor %%eax, %%eax\n\t"  \
			 "rep stosb\n\t"         \
			 "add $65536, %%rsp"     \
			 :                       \
			 :                       \
			 : "rdi", "rcx", "rax", "memory", "cc")

int main(void)
{
	cycle2();
	cycle3();
	selfloop();
	owned();
	SCRUB_DEAD_STACK();
	static const char msg[] = "leak_cycles done\n";
	return write(1, msg, sizeof(msg) - 1) < 0;
}
