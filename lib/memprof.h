/*
 * memprof.h - talk to memprof from inside a program, like Python's
 * tracemalloc module (man 3 memprof).
 *
 *     #include <memprof.h>
 *     memprof_snapshot("before");
 *     work();
 *     memprof_snapshot("after");   // then: memprof diff run.1.memprof
 * run.2.memprof
 *
 * No library to link: these are inline wrappers over weak symbols that
 * libmemprof.so defines. Run without memprof, the program works unchanged:
 * memprof_snapshot() returns -1 with errno ENOSYS, memprof_traced_memory()
 * gives 0 and 0, memprof_is_tracing() 0, memprof_reset_peak() does nothing.
 */
#ifndef MEMPROF_H
#define MEMPROF_H

#include <errno.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Defined by libmemprof.so; NULL when it is not loaded. */
extern int memprof_api_snapshot(const char *name) __attribute__((weak));
extern void memprof_api_traced_memory(size_t *current, size_t *peak)
	__attribute__((weak));
extern void memprof_api_reset_peak(void) __attribute__((weak));
extern int memprof_api_is_tracing(void) __attribute__((weak));

/*
 * Writes a snapshot of the heap now, labelled name (may be NULL), to
 * FILE.N.memprof, where FILE.memprof is the run's output and N counts the
 * snapshots of the run, 1, 2, ..., whatever triggered them. Returns N, or
 * -1 with errno set: ENOSYS without memprof, ENOTSUP when tracing has
 * stopped, or the error that kept the file from being written.
 */
static inline int memprof_snapshot(const char *name)
{
	if (!memprof_api_snapshot) {
		errno = ENOSYS;
		return -1;
	}
	return memprof_api_snapshot(name);
}

/* Bytes of traced blocks live now and at their peak (tracemalloc's
 * get_traced_memory); 0 and 0 when not tracing. Either may be NULL. */
static inline void memprof_traced_memory(size_t *current, size_t *peak)
{
	if (memprof_api_traced_memory) {
		memprof_api_traced_memory(current, peak);
		return;
	}
	if (current)
		*current = 0;
	if (peak)
		*peak = 0;
}

/* Sets the peak to the bytes live now, and each call site's bytes at the
 * peak to its bytes now (tracemalloc's reset_peak). */
static inline void memprof_reset_peak(void)
{
	if (memprof_api_reset_peak)
		memprof_api_reset_peak();
}

/* 1 while memprof traces this process, else 0. */
static inline int memprof_is_tracing(void)
{
	return memprof_api_is_tracing ? memprof_api_is_tracing() : 0;
}

#ifdef __cplusplus
}
#endif

#endif
