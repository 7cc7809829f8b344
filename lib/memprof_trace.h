/*
 * memprof_trace.h - the analysis API used by cmd/ and the tests.
 *
 * A snapshot (struct mp_snapshot) is read whole into memory by
 * mp_snapshot_open(); every string and array in it is owned by the snapshot
 * and lives until mp_snapshot_free(). Functions return enum mp_err, write
 * their out-parameters only on success, and never print or exit.
 */
#ifndef MEMPROF_TRACE_H
#define MEMPROF_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum mp_err {
	MP_OK = 0,
	MP_ERR_IO,        /* open/read/write failed; errno-style detail */
	MP_ERR_NOMEM,     /* out of memory */
	MP_ERR_NOT_SNAPSHOT, /* wrong magic: not a .memprof file */
	MP_ERR_VERSION,   /* a major version this reader does not know */
	MP_ERR_TRUNCATED, /* the file ends early */
	MP_ERR_CORRUPT,   /* a checksum, length or value is wrong */
	MP_ERR_USAGE,     /* a bad argument from the caller */
	MP_ERR_SYMBOLS,   /* symbolization could not start */
};

/* A static English description of err ("truncated file"). */
const char *mp_strerror(enum mp_err err);

/*
 * Where a failure happened, for the one-line message the CLI prints:
 * "truncated in section 'stacks' at byte 4096". Filled by functions that
 * take a struct mp_errinfo *; may be NULL.
 */
struct mp_errinfo {
	char msg[256];
};

struct mp_totals {
	uint64_t live_bytes, live_blocks; /* in the snapshot */
	uint64_t peak_bytes;              /* global peak of live bytes */
	uint64_t allocs, frees, alloc_bytes; /* since the start of tracing */
};

struct mp_meta {
	uint64_t pid, ppid;
	char *exe;         /* absolute path of the executable, or NULL */
	char **argv;       /* argc entries; NULL-terminated */
	size_t argc;
	uint64_t start_ns;    /* CLOCK_REALTIME at start of tracing, ns */
	uint64_t snapshot_ns; /* CLOCK_REALTIME when the snapshot was taken */
	uint64_t peak_ns;     /* when the global peak was reached, 0 unknown */
	char *trigger;     /* "exit", "api", "signal", "interval", "peak" */
	char *name;        /* the API caller's name, or NULL */
	uint64_t sample_rate; /* 0 = every allocation traced */
	uint64_t depth;       /* maximum frames captured */
	uint64_t seq;         /* snapshot number within the run, exit = 0 */
	struct mp_totals totals;
};

struct mp_module {
	char *path;      /* as loaded; the executable's absolute path */
	uint64_t base;   /* load bias (dlpi_addr) */
	uint64_t start;  /* lowest mapped address of its PT_LOAD segments */
	uint64_t end;    /* one past the highest */
	unsigned char build_id[64];
	uint32_t build_id_len; /* 0 when the module has none */
};

/* An interned call stack: return addresses, innermost first. */
struct mp_stack {
	uint32_t depth;
	uint64_t *pcs;
};

/* Per-trace counters; trace i is stack traces[i].stack. */
struct mp_trace {
	uint32_t stack;
	uint64_t live_bytes, live_blocks;
	uint64_t allocs, alloc_bytes;
	uint64_t peak_bytes; /* live bytes of this trace at the global peak */
};

struct mp_block {
	uint64_t addr, size;
	uint32_t trace;
};

/* One source-level frame; strings belong to the snapshot, NULL unknown. */
struct mp_frame {
	const char *function; /* demangled */
	const char *file;
	uint32_t line;
};

/*
 * The symbols of one return address. frames[0] is the innermost inlined
 * function at pc - 1, frames[nframes - 1] the function that really
 * contains it (its caller chain of inlines in between).
 */
struct mp_symbol {
	uint64_t pc;
	uint32_t module; /* index into modules, UINT32_MAX when unknown */
	uint32_t nframes;
	struct mp_frame *frames;
};

struct mp_snapshot {
	uint16_t version_major, version_minor;
	struct mp_meta meta;
	struct mp_module *modules;
	size_t nmodules;
	struct mp_stack *stacks;
	size_t nstacks;
	struct mp_trace *traces;
	size_t ntraces;
	struct mp_block *blocks; /* sorted by addr */
	size_t nblocks;
	bool has_blocks;
	struct mp_symbol *symbols; /* sorted by pc */
	size_t nsymbols;
	bool has_symbols;
	void *priv; /* reader's arena and raw sections */
};

/*
 * Reads and validates a whole snapshot file. On failure returns the error,
 * fills *ei with where it happened, and leaves *out untouched.
 */
enum mp_err mp_snapshot_open(const char *path, struct mp_snapshot **out,
			     struct mp_errinfo *ei);
/* The same from a buffer (fuzzing, tests). The buffer is not kept. */
enum mp_err mp_snapshot_open_mem(const void *data, size_t len,
				 struct mp_snapshot **out,
				 struct mp_errinfo *ei);
/* Frees a snapshot; NULL is accepted. */
void mp_snapshot_free(struct mp_snapshot *snap);

/*
 * Writes snap to path (via a temporary file and rename(2), so a failure
 * never leaves a half-written path). Sections read from a file that this
 * reader does not know are kept as they were.
 */
enum mp_err mp_snapshot_save(const struct mp_snapshot *snap, const char *path,
			     struct mp_errinfo *ei);

/* The symbols of pc, or NULL (binary search over snap->symbols). */
const struct mp_symbol *mp_snapshot_symbol(const struct mp_snapshot *snap,
					   uint64_t pc);
/* The module containing pc, or NULL. */
const struct mp_module *mp_snapshot_module(const struct mp_snapshot *snap,
					   uint64_t pc);

/*
 * Symbolizes every pc of every stack with libdw, from the module files on
 * this machine, and stores the result in snap->symbols (replacing what was
 * there). Modules whose file is missing or whose build-id no longer matches
 * leave their pcs with module set and no frames. Fails only when libdw
 * cannot start at all or memory runs out.
 */
enum mp_err mp_symbolize(struct mp_snapshot *snap, struct mp_errinfo *ei);

/* Progress callback for long work; may be NULL. done <= total. */
typedef void (*mp_progress_fn)(void *ctx, const char *what, uint64_t done,
			       uint64_t total);

#endif
