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
	MP_ERR_IO,	     /* open/read/write failed; errno-style detail */
	MP_ERR_NOMEM,	     /* out of memory */
	MP_ERR_NOT_SNAPSHOT, /* wrong magic: not a .memprof file */
	MP_ERR_VERSION,	     /* a major version this reader does not know */
	MP_ERR_TRUNCATED,    /* the file ends early */
	MP_ERR_CORRUPT,	     /* a checksum, length or value is wrong */
	MP_ERR_USAGE,	     /* a bad argument from the caller */
	MP_ERR_SYMBOLS,	     /* symbolization could not start */
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
	uint64_t live_bytes, live_blocks;    /* in the snapshot */
	uint64_t peak_bytes;		     /* global peak of live bytes */
	uint64_t allocs, frees, alloc_bytes; /* since the start of tracing */
};

struct mp_meta {
	uint64_t pid, ppid;
	char *exe;   /* absolute path of the executable, or NULL */
	char **argv; /* argc entries; NULL-terminated */
	size_t argc;
	uint64_t start_ns;    /* CLOCK_REALTIME at start of tracing, ns */
	uint64_t snapshot_ns; /* CLOCK_REALTIME when the snapshot was taken */
	uint64_t peak_ns;     /* when the global peak was reached, 0 unknown */
	char *trigger;	      /* "exit", "api", "signal", "interval", "peak" */
	char *name;	      /* the API caller's name, or NULL */
	uint64_t sample_rate; /* 0 = every allocation traced */
	uint64_t depth;	      /* maximum frames captured */
	uint64_t seq;	      /* snapshot number within the run, exit = 0 */
	struct mp_totals totals;
};

struct mp_module {
	char *path;	/* as loaded; the executable's absolute path */
	uint64_t base;	/* load bias (dlpi_addr) */
	uint64_t start; /* lowest mapped address of its PT_LOAD segments */
	uint64_t end;	/* one past the highest */
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

/*
 * The heap pointer graph (GRPH, formats/snapshot.md): which live blocks
 * point to which, and which blocks the roots point to, found by the shim's
 * conservative scan at exit. Block numbers index snap->blocks.
 */
#define MP_EDGE_INTERIOR                                    \
	0x1u /* every pointer found is inside, not at start \
	      */

struct mp_edge {
	uint32_t to;	/* target block */
	uint32_t flags; /* MP_EDGE_* */
};

/* Root kinds, as bits. */
#define MP_ROOT_DATA 0x1u  /* writable segments (.data, .bss) of a module */
#define MP_ROOT_STACK 0x2u /* a thread's stack */
#define MP_ROOT_REGS 0x4u  /* a thread's registers */
#define MP_ROOT_TLS 0x8u   /* thread-local storage and thread descriptors */

/* A block pointed to by the roots: by which kinds of root, at its start
 * and inside it (either mask may be 0, not both). */
struct mp_root_ref {
	uint32_t block;
	uint8_t start_kinds;
	uint8_t interior_kinds;
};

struct mp_graph {
	/* Out-edges of block i are edges[edge_start[i] .. edge_start[i+1]),
	 * sorted by target, one per target; edge_start has nblocks + 1
	 * entries. */
	uint64_t *edge_start;
	struct mp_edge *edges;
	size_t nedges;
	struct mp_root_ref *roots; /* sorted by block, one per block */
	size_t nroots;
	uint32_t threads;	    /* threads whose stacks were scanned */
	uint32_t threads_unscanned; /* threads that could not be stopped */
};

/*
 * The timeline (TIME, formats/snapshot.md): live bytes and blocks sampled
 * over the run by the shim, and the moments snapshots were taken. Times
 * are CLOCK_REALTIME nanoseconds, ascending.
 */
struct mp_sample {
	uint64_t ns;
	uint64_t live_bytes, live_blocks;
};

struct mp_mark {
	uint64_t seq; /* the snapshot's number: FILE.seq.memprof, 0 = exit */
	uint64_t ns;
};

struct mp_timeline {
	uint64_t interval_ns; /* the sampling interval the shim ended with */
	struct mp_sample *samples;
	size_t nsamples;
	struct mp_mark *marks;
	size_t nmarks;
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
	struct mp_graph graph; /* valid when has_graph (needs has_blocks) */
	bool has_graph;
	struct mp_timeline timeline; /* valid when has_timeline */
	bool has_timeline;
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
 * there). Modules whose file is missing, unreadable or whose build-id no
 * longer matches leave their pcs with module set and no frames. Fails only
 * when memory runs out. Loads every module file anew: use a struct
 * mp_symcache to symbolize several snapshots.
 */
enum mp_err mp_symbolize(struct mp_snapshot *snap, struct mp_errinfo *ei);

/*
 * The module files loaded for symbolizing (libdw handles, debuginfo, symbol
 * tables), kept across snapshots: loading libc's debuginfo alone takes tens
 * of milliseconds. Entries are keyed by the file's identity (device, inode,
 * size, mtime), so one file serves every snapshot and every load address,
 * whatever path names it.
 */
struct mp_symcache;

/* An empty cache; NULL when out of memory. */
struct mp_symcache *mp_symcache_new(void);
/* Frees the cache and everything loaded in it; NULL is accepted. No other
 * thread may be using it. */
void mp_symcache_free(struct mp_symcache *cache);

/*
 * Keeps what pcs symbolize to on disk, per build-id, in dir (created when
 * first written): a later snapshot whose pcs of a module are all there is
 * symbolized from it without loading the module's debuginfo. NULL or ""
 * turns it off (the default). Call before any other use of the cache;
 * false when out of memory (the setting is then unchanged).
 */
bool mp_symcache_set_dir(struct mp_symcache *cache, const char *dir);

/*
 * Loads the file at path into the cache now, as far as symbolizing will
 * need it (its debuginfo found and inflated, its symbol table sorted), so
 * that a later mp_symbolize_cached() finds it ready. Debuginfo is looked
 * for on this machine only, by build-id; debuginfod and the other places
 * of the standard search are tried when a snapshot needs the file. Safe to
 * call from another thread while one thread symbolizes: a snapshot that
 * needs a file being warmed waits for it, and never for the others. Does
 * nothing when the file is already in the cache (loaded or being loaded),
 * missing or not a regular file; failures to load are only seen as pcs
 * without frames later.
 */
void mp_symcache_warm(struct mp_symcache *cache, const char *path);

/*
 * Whether the cache's directory (mp_symcache_set_dir) holds what pcs of the
 * ELF file at path symbolize to, for the file's build-id: a snapshot whose
 * pcs in it are all there will not need it loaded. Reads the file's notes
 * only. False without a directory, a build-id or a store.
 */
bool mp_symcache_stored(struct mp_symcache *cache, const char *path);

/*
 * mp_symbolize() with the module files taken from cache, and loaded into it
 * when missing. One thread at a time may symbolize with a given cache (any
 * number may warm it). Fails with MP_ERR_USAGE without a snapshot or a
 * cache, MP_ERR_NOMEM.
 */
enum mp_err mp_symbolize_cached(struct mp_snapshot *snap,
				struct mp_symcache *cache,
				struct mp_errinfo *ei);

/* Progress callback for long work; may be NULL. done <= total. */
typedef void (*mp_progress_fn)(void *ctx, const char *what, uint64_t done,
			       uint64_t total);

/* ---- frames and the `top` aggregation (trace_profile.c) ---------- */

/*
 * Turns a stack of return addresses into source-level frames, innermost
 * first, with the allocator's own frames dropped (DESIGN.md §7), and
 * groups a snapshot's traces by traceback, function, line, file or module
 * the way tracemalloc's Snapshot.statistics() does. Nothing here prints.
 */

struct mp_resolved_frame {
	const char *function; /* demangled */
	const char *file;     /* as stored in the symbols */
	uint32_t line;
	const char *module; /* path of the module holding address */
	uint64_t address;   /* the return address the frame comes from */
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
/* mp_stack_resolve expands pcs only while it has fewer frames than this
 * (real stacks hold far fewer; a file may ask for 1024 x 256). */
#define MP_RESOLVED_MAX 4096

enum mp_group_by {
	MP_GROUP_TRACEBACK, /* the whole expanded stack */
	MP_GROUP_FUNCTION,  /* the innermost frame's function */
	MP_GROUP_LINE,	    /* the innermost (file, line): tracemalloc lineno */
	MP_GROUP_FILE,	    /* the innermost file */
	MP_GROUP_MODULE,    /* the innermost frame's module */
};

enum mp_sort_by {
	MP_SORT_BYTES,	/* live bytes, then blocks (tracemalloc) */
	MP_SORT_BLOCKS, /* live blocks, then bytes */
	MP_SORT_ALLOCS, /* allocations since start, then bytes allocated */
	MP_SORT_PEAK,	/* live bytes at the global peak, then live bytes */
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
	/* --include/--exclude (struct mp_filters, below); NULL keeps every
	 * trace. Borrowed. */
	const struct mp_filters *filters;
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
	uint64_t bytes, blocks;	      /* live in the snapshot */
	uint64_t allocs, alloc_bytes; /* since the start of tracing */
	uint64_t peak_bytes;	      /* live at the global peak */
	uint64_t ntraces;	      /* traces (contributions) merged here */
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
	void *priv;		 /* storage of the frames */
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

/* ---- leaks: reachability, cycles, suppressions (trace_leaks.c) -------- */

/*
 * Blocks live in a snapshot with a graph are classified with Valgrind
 * Memcheck's definitions (reference §2.2): still reachable (a chain of
 * start-pointers from a root), possibly lost (reached only through a chain
 * with an interior pointer), and lost. Lost blocks form the lost subgraph;
 * its strongly connected components that have no edge coming in from
 * another component are its sources. Every block of a source component is
 * definitely lost (nothing outside its own cycle points to it); every
 * other lost block is indirectly lost. Definite plus indirect equals
 * Memcheck's, which calls one arbitrary member of a leaked cycle definite.
 * Components of more than one block, or of one block pointing to itself,
 * are leaked cycles and are reported as findings of their own.
 */
enum mp_leak_kind {
	MP_LEAK_DEFINITE,
	MP_LEAK_INDIRECT,
	MP_LEAK_POSSIBLE,
	MP_LEAK_REACHABLE,
	MP_LEAK_SUPPRESSED, /* a lost block matched by a suppression */
	MP_LEAK_NKINDS,
};

/* "definite" "indirect" "possible" "reachable" "suppressed". */
const char *mp_leak_kind_name(enum mp_leak_kind kind);
/*
 * Parses a comma-separated list of kind names, or "all" or "none", into a
 * mask of (1u << kind). false when a name is unknown.
 */
bool mp_leak_kinds_parse(const char *s, unsigned *mask);

/* LeakSanitizer-style suppressions (formats/suppressions.md). */
struct mp_suppressions;

/*
 * Parses suppressions text. On a syntax error returns MP_ERR_CORRUPT with
 * "line N: ..." in *ei. *out is freed with mp_suppressions_free.
 */
enum mp_err mp_suppressions_parse(const char *text, size_t len,
				  struct mp_suppressions **out,
				  struct mp_errinfo *ei);
/* Reads and parses a suppressions file; appends to *supp when it is not
 * NULL (several --suppressions options), else creates it. */
enum mp_err mp_suppressions_load(const char *path,
				 struct mp_suppressions **supp,
				 struct mp_errinfo *ei);
void mp_suppressions_free(struct mp_suppressions *supp);
/* Whether any frame of frames[0..n) matches a pattern (function, file or
 * module). */
bool mp_suppressions_match(const struct mp_suppressions *supp,
			   const struct mp_resolved_frame *frames, size_t n);

struct mp_leak_opts {
	const struct mp_suppressions *supp; /* may be NULL */
	struct mp_alloc_filter alloc;	    /* --alloc-fn, for frames */
};

/* A loss record: blocks of one kind allocated by one stack (trace). */
struct mp_leak_record {
	enum mp_leak_kind kind;
	uint32_t trace;
	uint64_t bytes, blocks;
	/* For definite records: bytes that these blocks alone keep alive,
	 * themselves included (their dominator subtrees over the lost
	 * subgraph). 0 for other kinds. */
	uint64_t retained_bytes;
	size_t nframes; /* frames[0] is the allocating code */
	struct mp_resolved_frame *frames;
};

/* A run of consecutive members of a cycle allocated by one stack. */
struct mp_leak_member {
	uint32_t trace;
	uint64_t bytes, blocks;
	size_t nframes;
	struct mp_resolved_frame *frames;
};

struct mp_leak_cycle {
	uint64_t bytes, blocks;
	/* True when no lost block outside the cycle points into it (it is
	 * a source component: its blocks are definitely lost). */
	bool is_root;
	uint64_t retained_bytes; /* the cycle and what only it keeps alive */
	/* In cycle order: from the member with the lowest address, each next
	 * one is pointed to by the one before (for a simple cycle; a
	 * depth-first order along edges otherwise). */
	size_t nmembers;
	struct mp_leak_member *members;
};

struct mp_leak_report {
	struct {
		uint64_t bytes, blocks;
	} summary[MP_LEAK_NKINDS];
	/* Sorted like Valgrind's loss records: ascending by bytes, then
	 * kind, then blocks, then trace, so the biggest come last. */
	struct mp_leak_record *records;
	size_t nrecords;
	/* Sorted by bytes, descending. */
	struct mp_leak_cycle *cycles;
	size_t ncycles;
	uint8_t *block_kind; /* per block of the snapshot: enum mp_leak_kind */
	uint32_t threads, threads_unscanned;
	void *priv;
};

/*
 * Classifies every block of snap. Fails with MP_ERR_USAGE when snap has
 * no graph (recorded with --leak-check=no), MP_ERR_NOMEM. The report
 * borrows strings from snap, which must outlive it.
 */
enum mp_err mp_leaks_analyze(const struct mp_snapshot *snap,
			     const struct mp_leak_opts *opts,
			     struct mp_leak_report **out);
void mp_leak_report_free(struct mp_leak_report *rep);

/* ---- filters and the `diff` comparison (trace_profile.c, trace_diff.c) - */

/*
 * tracemalloc's Filter (reference §1.5): a glob (fnmatch(3), no flags)
 * matched against a frame's function, its file (full path and base name)
 * and its module (full path and base name); a field that is unknown never
 * matches. By default only the innermost frame (the first left once the
 * allocator's frames are dropped) is tested; with all_frames, any frame.
 * A trace whose stack is empty after that has no frame, so no filter
 * matches it.
 *
 * A trace is kept iff (no filter is inclusive, or at least one inclusive
 * filter matches) and no exclusive filter matches. Zero filters keep
 * everything.
 */
struct mp_frame_filter {
	bool inclusive;	  /* --include; false: --exclude */
	const char *glob; /* borrowed */
};

struct mp_filters {
	const struct mp_frame_filter *f; /* borrowed; NULL when n is 0 */
	size_t n;
	bool all_frames;
};

/* Whether a trace with resolved stack frames[0..n) is kept by flt (NULL
 * keeps everything). Cannot fail. */
bool mp_filters_keep(const struct mp_filters *flt,
		     const struct mp_resolved_frame *frames, size_t n);

/*
 * Snapshot.compare_to (reference §1.3): both snapshots are grouped with
 * mp_profile_build (same key, cumulative mode, allocator globs and
 * filters), then groups are matched across the two by symbols, never by
 * address, so that two runs (ASLR) or two builds compare cleanly:
 *
 *   traceback  every frame's (function, file, line)
 *   function   the function
 *   line       (file, line)
 *   file       the file
 *   module     the module's base name
 *
 * A frame whose part of the key is unknown is matched by its module's
 * base name and its offset from the module's load bias (pc - base), or by
 * its address when even the module is unknown.
 *
 * Every group of NEW gives an entry with bytes/blocks of NEW and the
 * differences NEW - OLD (OLD counts 0 when the group is absent there);
 * every group only in OLD gives bytes = blocks = 0 and the negated OLD
 * counts. Groups that hold nothing in either snapshot (traces whose blocks
 * were all freed) are left out: tracemalloc only sees live blocks.
 * Entries whose differences are 0 are kept.
 */
struct mp_diff_opts {
	enum mp_group_by by;
	bool cumulative; /* FUNCTION, LINE and FILE only */
	struct mp_alloc_filter alloc;
	const struct mp_filters *filters; /* NULL: none */
};

struct mp_diff_entry {
	uint64_t bytes, blocks;		 /* live in NEW */
	int64_t bytes_diff, blocks_diff; /* NEW - OLD */
	uint64_t old_bytes, old_blocks;	 /* live in OLD */
	bool in_old, in_new;		 /* which snapshots hold the group */
	/* The group's key frames as mp_profile_entry's: from NEW, or from
	 * OLD for a group only there (strings borrowed from that snapshot). */
	size_t nframes;
	struct mp_resolved_frame *frames;
};

/*
 * Entries are sorted like tracemalloc's compare_to, descending by
 * (|bytes_diff|, bytes, |blocks_diff|, blocks, key): the key is compared
 * as in mp_profile's ascending key order (known names before unknown, then
 * module base name and offset), and reversed, as tracemalloc reverses the
 * whole tuple.
 */
struct mp_diff {
	enum mp_group_by by;
	bool cumulative;
	bool filtered; /* at least one filter was given */
	struct mp_diff_entry *entries;
	size_t nentries;
	struct mp_totals old_totals, new_totals; /* the snapshots' totals */
	void *priv;				 /* storage of the frames */
};

/*
 * Compares snapshot new_snap against old_snap. The result borrows strings
 * from both, which must outlive it. Fails with MP_ERR_USAGE for
 * cumulative with TRACEBACK or MODULE or an unknown enum value,
 * MP_ERR_CORRUPT for a trace naming a stack that does not exist,
 * MP_ERR_NOMEM. *out is set only on success.
 */
enum mp_err mp_diff_build(const struct mp_snapshot *old_snap,
			  const struct mp_snapshot *new_snap,
			  const struct mp_diff_opts *opts,
			  struct mp_diff **out);
/* Frees a diff; NULL is accepted. */
void mp_diff_free(struct mp_diff *diff);

/*
 * For `-n N`: the number of entries after the first N (N = 0 means all,
 * so none), with their sums in *rest (frames NULL, in_old/in_new false).
 * In cumulative mode the sums count a trace once per group, like the
 * entries. Cannot fail.
 */
size_t mp_diff_rest(const struct mp_diff *diff, size_t n,
		    struct mp_diff_entry *rest);

/* ---- check: budgets for CI (trace_check.c) ---------------------------- */

/*
 * `memprof check` evaluates budgets on one snapshot (and, for growth, a
 * baseline snapshot) and says for each whether it holds, the figure
 * measured and the worst call site behind it. A budget holds when the
 * measured figure is at most its limit (limits are inclusive). Nothing
 * here prints: the CLI words the results.
 */
enum mp_check_budget {
	MP_CHECK_MAX_LEAKED,	    /* bytes lost, of the counted kinds */
	MP_CHECK_MAX_LEAKED_BLOCKS, /* blocks lost, of the counted kinds */
	MP_CHECK_NO_LEAKED_CYCLES,  /* leaked cycles; the limit is 0 */
	MP_CHECK_MAX_SITE_LEAK,	    /* bytes of the biggest loss record */
	MP_CHECK_MAX_PEAK,	    /* the global peak of live bytes */
	MP_CHECK_MAX_GROWTH,	    /* the biggest growth of one call site */
	MP_CHECK_NBUDGETS,
};

/* "max-leaked" "max-leaked-blocks" "no-leaked-cycles" "max-site-leak"
 * "max-peak" "max-growth": the option without its dashes. */
const char *mp_check_budget_name(enum mp_check_budget b);

/* What MP_CHECK_MAX_GROWTH compares, per call site. */
enum mp_growth_of {
	MP_GROWTH_LIVE, /* live bytes in the snapshots (mp_diff_build) */
	MP_GROWTH_PEAK, /* live bytes at each snapshot's global peak */
};

/* The kinds --max-leaked counts unless told otherwise. */
#define MP_CHECK_DEFAULT_KINDS (1u << MP_LEAK_DEFINITE | 1u << MP_LEAK_INDIRECT)

struct mp_check_opts {
	unsigned budgets;    /* which to evaluate: a mask of 1u << MP_CHECK_* */
	uint64_t max_leaked; /* bytes */
	uint64_t max_leaked_blocks; /* blocks */
	uint64_t max_site_leak;	    /* bytes */
	uint64_t max_peak;	    /* bytes */
	/*
	 * Growth: no call site (the whole symbolized stack, matched across
	 * the snapshots by symbols as mp_diff_build does with
	 * MP_GROUP_TRACEBACK) may grow by more than max_growth bytes, or,
	 * when growth_is_percent, by more than max_growth_percent percent of
	 * the baseline's total (live bytes, or peak bytes for
	 * MP_GROWTH_PEAK): a percentage of a site's own old bytes would be
	 * infinite for every new site and huge for small ones.
	 */
	uint64_t max_growth;
	double max_growth_percent;
	bool growth_is_percent;
	enum mp_growth_of growth_of;
	/* Leak kinds counted by MAX_LEAKED, MAX_LEAKED_BLOCKS and
	 * MAX_SITE_LEAK: a mask of 1u << enum mp_leak_kind, e.g.
	 * MP_CHECK_DEFAULT_KINDS. 0 counts nothing. */
	unsigned leak_kinds;
	const struct mp_suppressions *supp; /* may be NULL; borrowed */
	struct mp_alloc_filter alloc;	    /* --alloc-fn, for the sites */
};

/*
 * The result of one budget. measured, by budget: leaked bytes, leaked
 * blocks, number of cycles, bytes of the biggest loss record, peak bytes,
 * bytes of the biggest growth (0 when no site grew). bytes and blocks are
 * the amount behind it: the leaked bytes and blocks (MAX_LEAKED,
 * MAX_LEAKED_BLOCKS, MAX_SITE_LEAK: the record's), the cycles' bytes and
 * blocks, the peak bytes (blocks 0), or for growth the snapshot's total
 * (live or peak bytes, live blocks) with base_bytes the baseline's.
 *
 * The worst site, when has_site: the innermost frame left after the
 * allocator's (an all-unknown frame when none is left) of the biggest
 * loss record of the counted kinds (the one with most blocks for
 * MAX_LEAKED_BLOCKS; site_kind is its kind), the first member of the
 * biggest cycle, the call site holding most bytes at the peak, or the
 * site that grew most (site_old_bytes its bytes in the baseline). Strings
 * are borrowed from the snapshots.
 */
struct mp_check_result {
	enum mp_check_budget budget;
	bool ok;
	uint64_t limit; /* for a percent growth, the bytes it comes to */
	uint64_t measured;
	uint64_t bytes, blocks;
	uint64_t base_bytes; /* growth only */
	bool has_site;
	struct mp_resolved_frame site;
	uint64_t site_bytes, site_blocks;
	uint64_t site_old_bytes;     /* growth only */
	enum mp_leak_kind site_kind; /* leak records only */
};

struct mp_check_report {
	/* The budgets asked for, in enum mp_check_budget order. */
	struct mp_check_result results[MP_CHECK_NBUDGETS];
	size_t nresults;
	bool ok; /* every budget holds (true when none was asked) */
};

/*
 * Evaluates opts->budgets on snap; baseline is the OLD snapshot for
 * MP_CHECK_MAX_GROWTH and may be NULL otherwise. *out is filled only on
 * success and needs no freeing; its strings are borrowed from snap and
 * baseline, which must outlive it.
 *
 * Fails with MP_ERR_USAGE when a leak budget (MAX_LEAKED,
 * MAX_LEAKED_BLOCKS, NO_LEAKED_CYCLES, MAX_SITE_LEAK) is asked of a
 * snapshot without a heap graph (recorded with --leak-check=no), when
 * growth is asked without a baseline, for an unknown budget bit or
 * growth_of, or a negative or NaN percentage; MP_ERR_CORRUPT for a trace
 * naming a stack that does not exist; MP_ERR_NOMEM.
 */
enum mp_err mp_check_run(const struct mp_snapshot *snap,
			 const struct mp_snapshot *baseline,
			 const struct mp_check_opts *opts,
			 struct mp_check_report *out);

/* ---- the HTML report (trace_html.c) ----------------------------------- */

/*
 * `memprof report`: one self-contained HTML page of a snapshot, which
 * loads nothing (its Content-Security-Policy allows only its own inline
 * script and style): flamegraphs of live bytes and of bytes allocated, the
 * timeline of live bytes with the snapshots marked, the `top` table by
 * line, and the leaks and leaked cycles of mp_leaks_analyze (when the
 * snapshot has a heap graph). The data is embedded as JSON; to keep big
 * snapshots usable it is limited, and the page says what was left out:
 * flamegraph boxes under 0.1% of both totals (more when that still leaves
 * over 20000 boxes), the top table to the 250 biggest sites by each
 * column, loss records to the 200 biggest of each kind, cycles to the 100
 * biggest.
 */
struct mp_html_opts {
	const char *title;  /* the page's title; NULL: "memprof report: PROG" */
	const char *source; /* the snapshot's path, shown; may be NULL */
	struct mp_alloc_filter alloc;	    /* --alloc-fn, for every frame */
	const struct mp_suppressions *supp; /* for the leaks; may be NULL */
};

/* What the page holds and what was left out of it. */
struct mp_html_stats {
	size_t flame_nodes, flame_omitted; /* boxes kept, left out */
	uint64_t flame_min_ppm; /* boxes under this share (ppm) left out */
	size_t top_shown, top_groups;  /* sites in the table, in all */
	size_t records_shown, records; /* loss records */
	size_t cycles_shown, cycles;   /* leaked cycles */
};

/*
 * Writes the page of snap to out (opts and stats may be NULL; stats is
 * filled on success). Fails with MP_ERR_USAGE without snap or out,
 * MP_ERR_CORRUPT for a trace naming a stack that does not exist,
 * MP_ERR_NOMEM, MP_ERR_IO when out reports a write error; out then holds
 * part of a page, so write to a temporary file and rename it.
 */
enum mp_err mp_html_write(const struct mp_snapshot *snap,
			  const struct mp_html_opts *opts, FILE *out,
			  struct mp_html_stats *stats);

/* ---- export: pprof, folded stacks, JSON (trace_export.c) --------------- */

/*
 * `memprof export` writes a snapshot in formats other tools read, one
 * entry per trace (allocation stack) with its counters. Frames are those
 * of mp_stack_resolve() (allocator frames dropped, --alloc-fn honoured),
 * and traces are kept by the filters as in mp_profile_build().
 *
 *   pprof      gzip'd profile.proto with Go's heap sample types
 *              alloc_objects/count, alloc_space/bytes, inuse_objects/count,
 *              inuse_space/bytes (the default); one sample per trace;
 *              mappings with build-ids; locations with inline chains
 *   collapsed  folded stacks, "outer;...;inner value" a line, sorted, equal
 *              stacks merged, zero values left out (flamegraph.pl,
 *              speedscope, inferno)
 *   json       the document of formats/export-json.md
 */
enum mp_export_format {
	MP_EXPORT_PPROF,
	MP_EXPORT_COLLAPSED,
	MP_EXPORT_JSON,
};

/* The figure of each folded stack (collapsed only). */
enum mp_export_value {
	MP_VALUE_INUSE_BYTES,  /* live bytes (the default) */
	MP_VALUE_INUSE_BLOCKS, /* live blocks */
	MP_VALUE_ALLOC_BYTES,  /* bytes allocated since start */
	MP_VALUE_ALLOCS,       /* allocations since start */
};

/* "pprof" "collapsed" "json"; false if s is none. */
bool mp_export_format_parse(const char *s, enum mp_export_format *out);
const char *mp_export_format_name(enum mp_export_format f);
/* "inuse-bytes" "inuse-blocks" "alloc-bytes" "allocs"; false if none. */
bool mp_export_value_parse(const char *s, enum mp_export_value *out);
const char *mp_export_value_name(enum mp_export_value v);

struct mp_export_opts {
	enum mp_export_format format;
	enum mp_export_value value;	  /* collapsed only */
	struct mp_alloc_filter alloc;	  /* --alloc-fn */
	const struct mp_filters *filters; /* NULL keeps every trace */
};

/*
 * Writes snap to out in opts->format. pprof is built in memory and
 * compressed as it is written; collapsed holds its lines in memory to
 * sort them; json streams. On failure part of the output may have been
 * written: the caller removes a file it created.
 *
 * Fails with MP_ERR_USAGE for a missing argument or an unknown format or
 * value, MP_ERR_CORRUPT for a trace naming a stack that does not exist,
 * MP_ERR_NOMEM, MP_ERR_IO when out reports a write error; *ei says which.
 */
enum mp_err mp_export_write(const struct mp_snapshot *snap,
			    const struct mp_export_opts *opts, FILE *out,
			    struct mp_errinfo *ei);

/* ---- progress ---------------------------------------------------------
 *
 * Long work (symbolizing, leak analysis) reports progress through a
 * callback: what is a constant string ("symbolizing addresses"), total 0
 * when unknown; done == total (total > 0) ends that work. No callback is
 * set by default; fn NULL removes it. Not thread-safe: set it once.
 */
typedef void (*mp_progress_cb)(const char *what, uint64_t done, uint64_t total);
void mp_set_progress(mp_progress_cb fn);

#endif
