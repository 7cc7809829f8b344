/*
 * leak_kinds.c - one of each of Valgrind's leak kinds, at known sites:
 *   make_leak:      100 B definitely lost (pointer dropped)
 *   make_tree:      a 7-node tree of 32 B nodes whose root is dropped:
 *                   root definitely lost, 6 nodes indirectly lost
 *   make_list:      5 nodes of 48 B held by a global: still reachable
 *   make_interior:  64 B held only by a pointer 16 bytes inside: possibly
 *   make_chain:     a reachable 40 B block whose field points inside a
 *                   136 B block: that one is possibly lost
 * Globals are volatile-free but read at the end so nothing is elided.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tnode {
	struct tnode *l, *r;
	long pad[2];
};

struct lnode {
	struct lnode *next;
	long pad[5];
};

struct lnode *list_head;
char *interior;
void **chain;

__attribute__((noinline)) void make_leak(void)
{
	char *p = malloc(100);
	memset(p, 0, 100);
	__asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) struct tnode *tree_node(int depth)
{
	struct tnode *n = calloc(1, sizeof(*n));
	if (depth > 0) {
		n->l = tree_node(depth - 1);
		n->r = tree_node(depth - 1);
	}
	return n;
}

__attribute__((noinline)) void make_tree(void)
{
	struct tnode *root = tree_node(2);
	__asm__ volatile("" : : "r"(root) : "memory");
}

__attribute__((noinline)) void make_list(void)
{
	for (int i = 0; i < 5; i++) {
		struct lnode *n = calloc(1, sizeof(*n));
		n->next = list_head;
		list_head = n;
	}
}

__attribute__((noinline)) void make_interior(void)
{
	char *p = calloc(1, 64);
	interior = p + 16;
}

__attribute__((noinline)) void make_chain(void)
{
	chain = calloc(1, 40);
	char *target = calloc(1, 136);
	chain[0] = target + 8;
}

/* Clears the caller-saved registers and the dead stack below us so that
 * no stale copy of a dropped pointer survives to the exit scan. */
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
	make_leak();
	make_tree();
	make_list();
	make_interior();
	make_chain();
	SCRUB_DEAD_STACK();
	static const char msg[] = "leak_kinds done\n";
	if (write(1, msg, sizeof(msg) - 1) < 0 || !list_head || !interior ||
	    !chain)
		return 1;
	return 0;
}
