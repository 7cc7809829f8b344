/*
 * mx_dlopen.c - loads libmx.so (next to this program), has it allocate,
 * keeps its blocks and unloads it before exiting (test_matrix.c): the
 * blocks' frames in the library must still be named afterwards.
 *
 *   mx_dlopen [reload]   reload: load it again after unloading it, and
 *                        unload it again
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void *kept[8];

int main(int argc, char **argv)
{
	char lib[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", lib, sizeof(lib) - 16);
	if (n <= 0)
		return 1;
	lib[n] = '\0';
	strcpy(strrchr(lib, '/') + 1, "libmx.so");
	int rounds = argc > 1 && !strcmp(argv[1], "reload") ? 2 : 1;
	for (int r = 0; r < rounds; r++) {
		void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
		if (!h)
			return 2;
		int (*alloc)(int) = (int (*)(int))dlsym(h, "mx_lib_alloc");
		void **(*blocks)(void) =
			(void **(*)(void))dlsym(h, "mx_lib_blocks");
		if (!alloc || !blocks || alloc(3) != 3)
			return 3;
		for (int i = 0; i < 3; i++)
			kept[r * 3 + i] = blocks()[i];
		if (dlclose(h) != 0)
			return 4;
	}
	printf("unloaded after %d round%s\n", rounds, rounds > 1 ? "s" : "");
	return 0;
}
