/*
 * trace_profile.h - frame resolution and the `top` aggregation.
 *
 * (To be merged into memprof_trace.h.) Turns a stack of return addresses
 * into source-level frames, innermost first, with the allocator's own
 * frames dropped (DESIGN.md §7), and groups a snapshot's traces by
 * traceback, function, line, file or module the way tracemalloc's
 * Snapshot.statistics() does (reference §1.3-1.4). Pure analysis: nothing
 * here prints.
 */
#ifndef MEMPROF_TRACE_PROFILE_H
#define MEMPROF_TRACE_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memprof_trace.h"

/*
 * One frame of an expanded stack: a pc's inline chain gives one of these
 * per inlined function. Strings are borrowed from the snapshot (or from
 * the profile that returned the frame). Unknown: function/file/module
 * NULL, line 0, address 0.
 */
struct mp_resolved_frame {
	const char *function; /* demangled */
	const char *file;     /* as stored in the symbols */
	uint32_t line;
	const char *module;   /* path of the module holding address */
	uint64_t address;     /* the return address the frame comes from */
};

/*
 * Allocator frames, dropped from the innermost end of a stack only (a
 * leading run), so that frames[0] is the code that asked for memory:
 * malloc calloc realloc free reallocarray posix_memalign aligned_alloc
 * memalign valloc pvalloc, __libc_*, operator new* (new and new[], every
 * overload) and their mangled names _Znw* _Zna*, any frame whose module's
 * basename starts with "libmemprof", and the caller's globs (fnmatch(3),
 * no flags, on the function name; `--alloc-fn xmalloc`).
 */
struct mp_alloc_filter {
	const char *const *globs; /* borrowed; may be NULL when nglobs is 0 */
	size_t nglobs;
};

/* Whether f is an allocator frame under filter (filter may be NULL). */
bool mp_frame_is_allocator(const struct mp_resolved_frame *f,
			   const struct mp_alloc_filter *filter);

/*
 * Expands stack number `stack` of snap: for each pc, innermost first, the
 * frames of mp_snapshot_symbol(snap, pc) (its inline chain, innermost
 * first), or one frame with only module and address known when the pc
 * has no symbol or no frames; the module comes from the symbol, else from
 * mp_snapshot_module(). Then drops the leading allocator frames.
 *
 * On success *out is a malloc'd array the caller frees with free() (NULL
 * when *nout is 0; every frame may have been an allocator frame). Fails
 * with MP_ERR_USAGE for a stack index out of range, MP_ERR_NOMEM; out
 * parameters are untouched then.
 */
enum mp_err mp_stack_resolve(const struct mp_snapshot *snap, uint32_t stack,
			     const struct mp_alloc_filter *filter,
			     struct mp_resolved_frame **out, size_t *nout);

enum mp_group_by {
	MP_GROUP_TRACEBACK, /* the whole expanded stack */
	MP_GROUP_FUNCTION,  /* the innermost frame's function */
	MP_GROUP_LINE,      /* the innermost (file, line): tracemalloc lineno */
	MP_GROUP_FILE,      /* the innermost file */
	MP_GROUP_MODULE,    /* the innermost frame's module */
};

enum mp_sort_by {
	MP_SORT_BYTES,  /* live bytes, then blocks (tracemalloc) */
	MP_SORT_BLOCKS, /* live blocks, then bytes */
	MP_SORT_ALLOCS, /* allocations since start, then bytes allocated */
	MP_SORT_PEAK,   /* live bytes at the global peak, then live bytes */
};

/* "traceback" "function" "line" "file" "module"; false if s is none. */
bool mp_group_by_parse(const char *s, enum mp_group_by *out);
const char *mp_group_by_name(enum mp_group_by by);
/* "bytes" "blocks" "allocs" "peak"; false if s is none. */
bool mp_sort_by_parse(const char *s, enum mp_sort_by *out);
const char *mp_sort_by_name(enum mp_sort_by sort);

struct mp_profile_opts {
	enum mp_group_by by;
	enum mp_sort_by sort;
	/*
	 * Count each trace in the group of every frame of its stack, not
	 * only the innermost (FUNCTION, LINE and FILE only). Like
	 * tracemalloc, there is no de-duplication: a recursive stack that
	 * passes through f three times adds its trace to f's group three
	 * times.
	 */
	bool cumulative;
	struct mp_alloc_filter alloc;
};

/*
 * One group. frames: for MP_GROUP_TRACEBACK the whole expanded stack
 * (innermost first); otherwise the single frame that is the key (none for
 * traces whose stack is empty after dropping allocator frames, which all
 * form one group). A frame field that is not part of the key is kept only
 * when every member of the group agrees on it, else it reads as unknown
 * (e.g. grouped by function, line is 0 unless all traces share it).
 */
struct mp_profile_entry {
	uint64_t bytes, blocks;      /* live in the snapshot */
	uint64_t allocs, alloc_bytes; /* since the start of tracing */
	uint64_t peak_bytes;         /* live at the global peak */
	uint64_t ntraces;            /* traces (contributions) merged here */
	size_t nframes;
	struct mp_resolved_frame *frames;
};

/*
 * Grouping keys. A frame's key is (function, file, line) for TRACEBACK,
 * function for FUNCTION, (file, line) for LINE, file for FILE, and the
 * frame's address whenever the part it needs (function, resp. file) is
 * unknown: unknown code is grouped per return address. MODULE groups all
 * frames of unknown module together. Tracebacks compare frame by frame,
 * then by length.
 *
 * Entries are sorted by the sort key, descending, then by the next
 * counters listed for enum mp_sort_by, then ascending by group key so the
 * order never depends on the file's order.
 */
struct mp_profile {
	enum mp_group_by by;
	enum mp_sort_by sort;
	bool cumulative;
	struct mp_profile_entry *entries;
	size_t nentries;
	struct mp_totals totals; /* snap->meta.totals */
	void *priv;              /* storage of the frames */
};

/*
 * Groups the traces of snap. Every trace is listed (groups with all
 * counters 0 too). The profile owns its entries and frames; its strings
 * are borrowed from snap, which must outlive it.
 *
 * Fails with MP_ERR_USAGE for cumulative with TRACEBACK or MODULE or an
 * unknown enum value, MP_ERR_CORRUPT for a trace naming a stack that does
 * not exist, MP_ERR_NOMEM. *out is set only on success.
 */
enum mp_err mp_profile_build(const struct mp_snapshot *snap,
			     const struct mp_profile_opts *opts,
			     struct mp_profile **out);
/* Frees a profile; NULL is accepted. */
void mp_profile_free(struct mp_profile *prof);

/*
 * For `-n N`: how many entries the first N are (N = 0 means all), and in
 * *rest (frames NULL) the sums of the entries after them. Returns the
 * number of entries summed into *rest. Cannot fail. In cumulative mode the
 * sums count a trace once per group it is in, like the entries.
 */
size_t mp_profile_rest(const struct mp_profile *prof, size_t n,
		       struct mp_profile_entry *rest);

#endif
