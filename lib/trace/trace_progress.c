/*
 * trace_progress.c - progress of long work, reported through a callback.
 *
 * The library never writes to a terminal itself: the program decides
 * whether and how to show progress (the CLI does on a terminal only).
 * Callers report every few thousand items, so the callback needs no
 * throttling of its own beyond what it wants to show.
 */
#include "trace_internal.h"

static mp_progress_cb progress_fn;

void mp_set_progress(mp_progress_cb fn)
{
	progress_fn = fn;
}

void mp__progress(const char *what, uint64_t done, uint64_t total)
{
	if (progress_fn)
		progress_fn(what, done, total);
}
