/*
 * shim_api.c - the in-program API of lib/memprof.h (DESIGN §6) and the
 * numbered snapshots that it, the signal and the interval take.
 *
 * The snapshot N of a run goes to FILE.N.memprof (DESIGN §7), N counting
 * 1, 2, ... in the order snapshots are taken whatever triggered them; the
 * exit snapshot is FILE itself. Hook-safe: no malloc, no stdio.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "shim/shim_internal.h"

#define EXPORT __attribute__((visibility("default")))

static _Atomic uint64_t snap_seq;

bool shim_numbered_path(char *dst, size_t cap, uint64_t seq)
{
	const char *o = shim_opt.output;
	size_t n = strlen(o);
	const char ext[] = ".memprof";
	size_t el = sizeof(ext) - 1;
	size_t stem = (n >= el && !strcmp(o + n - el, ext)) ? n - el : n;
	char digits[24];
	int k = 0;
	do {
		digits[k++] = (char)('0' + seq % 10);
		seq /= 10;
	} while (seq);
	if (stem + 1 + (size_t)k + el + 1 > cap)
		return false;
	memcpy(dst, o, stem);
	size_t at = stem;
	dst[at++] = '.';
	while (k > 0)
		dst[at++] = digits[--k];
	memcpy(dst + at, ext, el + 1);
	return true;
}

long shim_take_snapshot(const char *trigger, const char *name)
{
	if (!atomic_load(&shim_active))
		return -ENOTSUP;
	uint64_t seq = atomic_fetch_add(&snap_seq, 1) + 1;
	char path[sizeof(shim_opt.output) + 32];
	if (!shim_numbered_path(path, sizeof(path), seq))
		return -ENAMETOOLONG;
	int err = shim_snapshot_write(path, trigger, name, seq, false);
	if (err) {
		shim_say("cannot write '", path, "': ", shim_errname(err));
		return -err;
	}
	return (long)seq;
}

EXPORT int memprof_api_snapshot(const char *name)
{
	int e = errno;
	shim_busy_add(1);
	/* META strings are at most 1 MiB; a label needs far less. */
	char label[1024];
	const char *l = NULL;
	if (name) {
		size_t n = strlen(name);
		if (n >= sizeof(label))
			n = sizeof(label) - 1;
		memcpy(label, name, n);
		label[n] = '\0';
		l = label;
	}
	long r = shim_take_snapshot("api", l);
	shim_busy_add(-1);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	errno = e;
	return (int)r;
}

EXPORT void memprof_api_traced_memory(size_t *current, size_t *peak)
{
	bool on = atomic_load(&shim_active);
	if (current)
		*current = on ? shim_live_bytes() : 0;
	if (peak)
		*peak = on ? atomic_load(&shim_totals.peak_bytes) : 0;
}

EXPORT void memprof_api_reset_peak(void)
{
	if (!atomic_load(&shim_active))
		return;
	/* A new generation makes every trace's bytes at the peak its bytes
	 * now (shim_stacks.c), as tracemalloc's reset_peak does. */
	atomic_store(&shim_totals.peak_bytes, shim_live_bytes());
	atomic_fetch_add(&shim_totals.peak_gen, 1);
	atomic_store(&shim_totals.peak_ns, shim_now_ns());
}

EXPORT int memprof_api_is_tracing(void)
{
	return atomic_load(&shim_active) ? 1 : 0;
}
