/*
 * trace_internal.h - helpers private to lib/trace.
 *
 * Every snapshot owns an arena: memory taken from it is zeroed and is freed
 * all at once by mp_snapshot_free(). Code that fills a snapshot (the
 * reader, the symbolizer) allocates its strings and arrays here, so that
 * nothing in a struct mp_snapshot needs freeing on its own.
 */
#ifndef MEMPROF_TRACE_INTERNAL_H
#define MEMPROF_TRACE_INTERNAL_H

#include "memprof_trace.h"

/* Zeroed memory owned by snap; NULL when out of memory. */
void *mp__alloc(struct mp_snapshot *snap, size_t n);
/* A copy of s (or of its first n bytes) owned by snap; NULL on OOM. */
char *mp__strdup(struct mp_snapshot *snap, const char *s);
char *mp__strndup(struct mp_snapshot *snap, const char *s, size_t n);
/* An empty snapshot with its arena; NULL on OOM. */
struct mp_snapshot *mp__snapshot_new(void);

/* Reports progress of long work to the callback set with
 * mp_set_progress; done == total (total > 0) ends it. */
void mp__progress(const char *what, uint64_t done, uint64_t total);

/* printf into ei->msg when ei is not NULL; returns err for tail calls. */
enum mp_err mp__fail(struct mp_errinfo *ei, enum mp_err err, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));

/*
 * Orders resolved stacks frame by frame under MP_GROUP_TRACEBACK's rule
 * (trace_profile.c): (function, file, line) when the function is known,
 * the address otherwise, then the shorter stack first. 0 when equal.
 */
int mp__frames_cmp(const struct mp_resolved_frame *a, size_t na,
		   const struct mp_resolved_frame *b, size_t nb);

/* Keeps the fields of dst that src shares; the others become unknown
 * (NULL, line 0, address 0): how a group's frame is merged. */
void mp__frame_intersect(struct mp_resolved_frame *dst,
			 const struct mp_resolved_frame *src);

/* FNV-1a of a NUL-terminated string: the hash of the symbolizer's string
 * tables. */
static inline uint64_t mp__hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* How many module files cache holds (tests: a file is loaded once). */
size_t mp__symcache_nfiles(struct mp_symcache *cache);

/*
 * The symbol store (trace_symstore.c, formats/symbol-cache.md): what the
 * return addresses of one build-id symbolized to, kept in DIR/HEX.sym.
 * An entry's addr is the address in the file (pc - 1 - load bias); its
 * frames are frames[first .. first + nframes), innermost first as in
 * struct mp_symbol.
 */
struct mp__symstore_entry {
	uint64_t addr;
	uint32_t nframes;
	uint32_t first;
};

struct mp__symstore {
	struct mp__symstore_entry *entries; /* sorted by addr, distinct */
	size_t nentries;
	struct mp_frame *frames; /* strings point into text */
	size_t nframes;
	const char **strings;
	size_t nstrings;
	char *text;
};

/* A store file's bytes parsed; NULL when damaged (or out of memory). */
struct mp__symstore *mp__symstore_parse(const void *data, size_t len);
/* The bytes of a store file holding entries (sorted by addr, distinct)
 * whose frames index frames; *len set. NULL when out of memory. */
unsigned char *mp__symstore_encode(const struct mp__symstore_entry *entries,
				   size_t n, const struct mp_frame *frames,
				   size_t *len);
void mp__symstore_free(struct mp__symstore *st);
const struct mp__symstore_entry *mp__symstore_find(
	const struct mp__symstore *st, uint64_t addr);
/* Whether dir holds a store for the build-id (it may still be damaged). */
bool mp__symstore_exists(const char *dir, const unsigned char *id,
			 size_t idlen);
/* dir's store for the build-id; NULL when missing, damaged or unreadable. */
struct mp__symstore *mp__symstore_load(const char *dir, const unsigned char *id,
				       size_t idlen);
/* Replaces dir's store for the build-id (creating dir), atomically, and
 * trims dir to its most recently used files; false when it could not. */
bool mp__symstore_save(const char *dir, const unsigned char *id, size_t idlen,
		       const struct mp__symstore_entry *entries, size_t n,
		       const struct mp_frame *frames);

#endif
