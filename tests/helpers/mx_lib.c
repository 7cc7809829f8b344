/*
 * mx_lib.c - a library that allocates, for the dlopen/dlclose case of
 * test_matrix.c (built as BUILD/helpers/libmx.so). Its blocks outlive it:
 * the program unloads it before it exits.
 */
#include <stdlib.h>
#include <string.h>

void *mx_lib_kept[8];

/* n blocks of 4321 bytes, kept. */
__attribute__((noinline)) int mx_lib_alloc(int n)
{
	for (int i = 0; i < n && i < 8; i++) {
		mx_lib_kept[i] = malloc(4321);
		memset(mx_lib_kept[i], i, 4321);
	}
	return n;
}

/* The blocks, for the program to keep once the library is gone. */
void **mx_lib_blocks(void)
{
	return mx_lib_kept;
}
