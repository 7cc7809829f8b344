/*
 * trace_json.h - a tiny streaming JSON writer to a FILE*.
 *
 * Used by every `--json` output of the CLI (DESIGN.md §7). It writes as it
 * goes, keeps no document in memory and never allocates. Strings are
 * escaped so that the output is always valid UTF-8 JSON, whatever bytes a
 * symbol or a path holds. It does not check that keys are unique.
 */
#ifndef MEMPROF_TRACE_JSON_H
#define MEMPROF_TRACE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "memprof_trace.h"

#define MP_JSON_MAX_DEPTH 32

/*
 * Writer state; embed it and set it up with mp_json_init(). The writer
 * inserts commas, colons and (when pretty) newlines and indentation.
 * Misuse (a value where a key is due, too deep, unbalanced ends) sets
 * `misuse` and is reported by mp_json_finish(); later calls still write.
 */
struct mp_json {
	FILE *f;
	bool pretty;
	bool misuse;
	bool after_key; /* a key was written; its value comes next */
	int depth;
	bool in_object[MP_JSON_MAX_DEPTH]; /* else in an array */
	bool has_items[MP_JSON_MAX_DEPTH];
};

/* Starts a document on f. pretty: two-space indentation, one item a line. */
void mp_json_init(struct mp_json *j, FILE *f, bool pretty);
/*
 * Ends the document with a newline and flushes f. MP_ERR_USAGE when the
 * calls did not make one complete value, MP_ERR_IO when f reported a write
 * error; MP_OK otherwise.
 */
enum mp_err mp_json_finish(struct mp_json *j);

void mp_json_begin_object(struct mp_json *j);
void mp_json_end_object(struct mp_json *j);
void mp_json_begin_array(struct mp_json *j);
void mp_json_end_array(struct mp_json *j);

/* The next member's name, inside an object. Escaped like a string. */
void mp_json_key(struct mp_json *j, const char *key);

/*
 * A string value; NULL writes null. Quotes, backslashes and control
 * characters are escaped (\" \\ \n \t ... \u001f); a byte that is not part
 * of well-formed UTF-8 (overlong forms, surrogates, beyond U+10FFFF,
 * truncated sequences) becomes \ufffd, one per byte.
 */
void mp_json_string(struct mp_json *j, const char *s);
/* The same for the first len bytes of s (which may hold NUL: \u0000). */
void mp_json_string_len(struct mp_json *j, const char *s, size_t len);
void mp_json_uint(struct mp_json *j, uint64_t v);
/* A signed integer (diffs). */
void mp_json_int(struct mp_json *j, int64_t v);
void mp_json_bool(struct mp_json *j, bool v);
void mp_json_null(struct mp_json *j);
/* An address as a string "0x7f12ab" (lowercase hex, no padding). */
void mp_json_hex(struct mp_json *j, uint64_t v);

/* Shorthands for `key: value` members. */
void mp_json_kv_string(struct mp_json *j, const char *key, const char *s);
void mp_json_kv_uint(struct mp_json *j, const char *key, uint64_t v);
void mp_json_kv_int(struct mp_json *j, const char *key, int64_t v);
void mp_json_kv_bool(struct mp_json *j, const char *key, bool v);
/* `key: [strings]`, v[0 .. n) (none when v is NULL). */
void mp_json_kv_strings(struct mp_json *j, const char *key, char *const *v,
			size_t n);

/*
 * The §7 shapes shared by top, diff and leaks. mp_json_totals writes the
 * object {"live_bytes", "live_blocks", "peak_bytes", "allocs", "frees",
 * "alloc_bytes"}; mp_json_frames the array of frames {"function", "file",
 * "line", "module", "address"}, unknown values (NULL, line 0, address 0)
 * as null. Both write a value: put a key before them inside an object.
 * mp_json_frame_fields writes one frame's five members into an open
 * object (for objects that add their own).
 */
struct mp_resolved_frame;
void mp_json_totals(struct mp_json *j, const struct mp_totals *t);
void mp_json_frames(struct mp_json *j, const struct mp_resolved_frame *frames,
		    size_t nframes);
void mp_json_frame_fields(struct mp_json *j, const struct mp_resolved_frame *f);

#endif
