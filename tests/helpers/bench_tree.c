/*
 * bench_tree.c - allocation-heavy workload with a large live heap and
 * realloc: 3 rounds of building a balanced binary tree of N nodes, each
 * with a 16-byte payload that is grown with realloc to 48 bytes a few
 * nodes later (so the block cannot simply grow in place), then freeing
 * the whole tree, payloads first. Build and free loop over explicit
 * stacks, so every allocation has one of a few call stacks: the load is
 * the live table and realloc, not stack interning.
 * Usage: bench_tree [nodes] (default 1000000).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 3
#define LAG 64

struct node {
	struct node *left, *right;
	char *payload;
};

struct range {
	long lo, hi;
	struct node **link;
};

/* Grows n's payload to 48 bytes; returns 0 on failure (payload kept). */
__attribute__((noinline)) static int grow(struct node *n)
{
	char *p = realloc(n->payload, 48);
	if (!p)
		return 0;
	memset(p + 16, 0, 32);
	n->payload = p;
	return 1;
}

/*
 * Builds nodes [0, count) in pre-order, each node the middle of its range,
 * so the explicit stack stays under two entries per level. Returns 0 on
 * failure with the tree so far linked under *root.
 */
__attribute__((noinline)) static int build(struct node **root, long count)
{
	struct range stack[2 * 64];
	struct node *recent[LAG] = {0};
	int top = 0;
	long made = 0;
	stack[top++] = (struct range){0, count, root};
	while (top > 0) {
		struct range r = stack[--top];
		*r.link = NULL;
		if (r.lo >= r.hi)
			continue;
		long mid = r.lo + (r.hi - r.lo) / 2;
		struct node *n = malloc(sizeof *n);
		if (!n)
			return 0;
		n->left = n->right = NULL;
		n->payload = malloc(16);
		*r.link = n;
		if (!n->payload)
			return 0;
		memset(n->payload, (int)(mid & 0xff), 16);
		struct node **slot = &recent[made++ % LAG];
		if (*slot && !grow(*slot))
			return 0;
		*slot = n;
		stack[top++] = (struct range){mid + 1, r.hi, &n->right};
		stack[top++] = (struct range){r.lo, mid, &n->left};
	}
	for (int i = 0; i < LAG; i++)
		if (recent[i] && !grow(recent[i]))
			return 0;
	return 1;
}

/* Frees in order by rotating left children up: no stack at all. */
__attribute__((noinline)) static long free_tree(struct node *n)
{
	long count = 0;
	while (n) {
		if (n->left) {
			struct node *l = n->left;
			n->left = l->right;
			l->right = n;
			n = l;
		} else {
			struct node *r = n->right;
			free(n->payload);
			free(n);
			n = r;
			count++;
		}
	}
	return count;
}

int main(int argc, char **argv)
{
	long nodes = argc > 1 ? atol(argv[1]) : 1000000;
	long freed = 0;
	for (int round = 0; round < ROUNDS; round++) {
		struct node *root = NULL;
		int ok = build(&root, nodes);
		freed += free_tree(root);
		if (!ok) {
			fprintf(stderr, "tree: out of memory\n");
			return 1;
		}
	}
	printf("tree: %d rounds of %ld nodes (%ld freed)\n", ROUNDS, nodes,
	       freed);
	return 0;
}
