/*
 * common_writer.h - streaming writer of .memprof snapshot files.
 *
 * Used by the shim at snapshot time and by the CLI when it rewrites a file
 * (record adds symbols). Hook-safe: no malloc, no stdio, no locks. Memory
 * for buffers and for zlib's state comes from mmap; output goes through
 * write(2)/pwrite(2) on a seekable descriptor.
 *
 * Errors are sticky: after the first failure every call is a no-op and
 * mpw_close() returns the errno of that failure. A caller therefore encodes
 * a whole section without checking each call.
 */
#ifndef MEMPROF_COMMON_WRITER_H
#define MEMPROF_COMMON_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct mpw {
	int fd;
	int err;	    /* first errno seen, 0 while all is well */
	uint64_t off;	    /* file offset of the next byte to write */
	uint64_t sec_start; /* offset of the open section's header */
	uint32_t sec_tag;   /* 0 when no section is open */
	uint64_t sec_raw;   /* raw bytes of the open section so far */
	uint64_t sec_stored;
	uint32_t sec_crc;
	unsigned char *buf; /* raw staging buffer (mmap) */
	size_t buf_len, buf_cap;
	unsigned char *zout; /* compressed output buffer (mmap) */
	size_t zout_cap;
	void *zs;    /* z_stream, lives in the arena */
	void *arena; /* mmap region serving zlib's allocations */
	size_t arena_len, arena_used;
	int level; /* zlib level */
};

/*
 * Starts a file on fd (opened for writing, positioned at 0, seekable):
 * maps the buffers and writes the file header. Returns 0 or an errno.
 */
int mpw_open(struct mpw *w, int fd);

/* Opens a section of kind tag (MP_SEC_*); one section at a time. */
void mpw_begin(struct mpw *w, uint32_t tag);
void mpw_uleb(struct mpw *w, uint64_t v);
void mpw_sleb(struct mpw *w, int64_t v);
void mpw_bytes(struct mpw *w, const void *p, size_t n);
/* A string: uleb128 length, then the bytes (no terminator). NULL = "". */
void mpw_str(struct mpw *w, const char *s);
void mpw_strn(struct mpw *w, const char *s, size_t n);
/* META entries: key string, type byte, value (formats/snapshot.md). */
void mpw_meta_uint(struct mpw *w, const char *key, uint64_t v);
void mpw_meta_str(struct mpw *w, const char *key, const char *s);
/* Compresses what is left and patches the section header. */
void mpw_end(struct mpw *w);

/*
 * Copies a section verbatim, as read from another file: header fields and
 * stored (possibly compressed) payload. Used to rewrite a file without
 * recompressing it.
 */
void mpw_copy_section(struct mpw *w, uint32_t tag, uint32_t flags,
		      uint64_t raw_len, uint32_t raw_crc, const void *stored,
		      uint64_t stored_len);

/*
 * Writes the END section, unmaps the buffers and returns 0 or the first
 * errno. Does not close fd. Safe to call after any failure.
 */
int mpw_close(struct mpw *w);

/* Releases the buffers without finishing the file (after a failure). */
void mpw_abort(struct mpw *w);

#endif
