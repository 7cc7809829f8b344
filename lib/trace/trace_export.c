/*
 * trace_export.c - a snapshot in the formats other tools read: pprof's
 * profile.proto (gzip'd), folded stacks for flame graphs, and the JSON
 * document of formats/export-json.md.
 *
 * Frames come from mp_stack_resolve(), so every format drops the
 * allocator's frames and applies --alloc-fn and the filters exactly as
 * `top` does. The protobuf encoder is written by hand: profile.proto needs
 * only varints and length-delimited fields. Writes only to the FILE it is
 * given; never prints anything else.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "memprof_trace.h"
#include "trace/trace_internal.h"
#include "trace/trace_json.h"

/* ---- names of formats and values ------------------------------------- */

static const char *const format_names[] = {
	[MP_EXPORT_PPROF] = "pprof",
	[MP_EXPORT_COLLAPSED] = "collapsed",
	[MP_EXPORT_JSON] = "json",
};

static const char *const value_names[] = {
	[MP_VALUE_INUSE_BYTES] = "inuse-bytes",
	[MP_VALUE_INUSE_BLOCKS] = "inuse-blocks",
	[MP_VALUE_ALLOC_BYTES] = "alloc-bytes",
	[MP_VALUE_ALLOCS] = "allocs",
};

#define NFORMATS (sizeof(format_names) / sizeof(*format_names))
#define NVALUES (sizeof(value_names) / sizeof(*value_names))

bool mp_export_format_parse(const char *s, enum mp_export_format *out)
{
	for (size_t i = 0; s && i < NFORMATS; i++)
		if (!strcmp(s, format_names[i])) {
			*out = (enum mp_export_format)i;
			return true;
		}
	return false;
}

const char *mp_export_format_name(enum mp_export_format f)
{
	return (size_t)f < NFORMATS ? format_names[f] : "?";
}

bool mp_export_value_parse(const char *s, enum mp_export_value *out)
{
	for (size_t i = 0; s && i < NVALUES; i++)
		if (!strcmp(s, value_names[i])) {
			*out = (enum mp_export_value)i;
			return true;
		}
	return false;
}

const char *mp_export_value_name(enum mp_export_value v)
{
	return (size_t)v < NVALUES ? value_names[v] : "?";
}

/* ---- growable byte buffers -------------------------------------------- */

/* A failed allocation sets oom and turns later appends into no-ops, so
 * that encoders check once, at the end. */
struct buf {
	uint8_t *p;
	size_t n, cap;
	bool oom;
};

static bool buf_reserve(struct buf *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->cap - b->n >= more)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->n < more) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	uint8_t *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void buf_put(struct buf *b, const void *d, size_t len)
{
	if (len && buf_reserve(b, len)) {
		memcpy(b->p + b->n, d, len);
		b->n += len;
	}
}

static void buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- protobuf encoding ------------------------------------------------ */

enum { PB_VARINT = 0, PB_LEN = 2 };

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static void pb_varint(struct buf *b, uint64_t v)
{
	uint8_t t[10];
	size_t n = 0;
	while (v >= 0x80) {
		t[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	t[n++] = (uint8_t)v;
	buf_put(b, t, n);
}

static void pb_key(struct buf *b, unsigned field, unsigned type)
{
	pb_varint(b, (uint64_t)field << 3 | type);
}

/* A scalar field; 0 is proto3's default and is left out. */
static void pb_uint(struct buf *b, unsigned field, uint64_t v)
{
	if (!v)
		return;
	pb_key(b, field, PB_VARINT);
	pb_varint(b, v);
}

/* A string, bytes or embedded message field (always written: the string
 * table's "" must be there). */
static void pb_bytes(struct buf *b, unsigned field, const void *d, size_t len)
{
	pb_key(b, field, PB_LEN);
	pb_varint(b, len);
	buf_put(b, d, len);
}

/* A repeated integer field, packed (proto3's encoding; pprof's reader
 * takes it packed or not, some other readers only packed). Zeros are
 * kept: a sample's values are positional. */
static void pb_packed(struct buf *b, unsigned field, const uint64_t *v,
		      size_t n)
{
	size_t len = 0;
	if (!n)
		return;
	for (size_t i = 0; i < n; i++)
		len += varint_len(v[i]);
	pb_key(b, field, PB_LEN);
	pb_varint(b, len);
	for (size_t i = 0; i < n; i++)
		pb_varint(b, v[i]);
}

/* ---- hash tables: strings, and pairs of integers ---------------------- */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finalizer */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* Distinct strings, numbered from 0 in order of first use; each is
 * copied. Index 0 is "" (profile.proto requires it). */
struct strtab {
	char **s;
	size_t n, cap;
	uint32_t *slots; /* index + 1; 0 is empty */
	size_t nslots;
	bool oom;
};

static bool strtab_grow(struct strtab *t)
{
	size_t nslots = t->nslots ? t->nslots * 2 : 1024;
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return false;
	for (size_t i = 0; i < t->n; i++) {
		size_t k = hash_str(t->s[i]) & (nslots - 1);
		while (slots[k])
			k = (k + 1) & (nslots - 1);
		slots[k] = (uint32_t)i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return true;
}

/* The index of s (NULL reads as ""); 0 after running out of memory, which
 * sets oom. */
static uint32_t strtab_id(struct strtab *t, const char *s)
{
	if (!s)
		s = "";
	if (t->oom)
		return 0;
	if ((t->n + 1) * 2 > t->nslots && !strtab_grow(t)) {
		t->oom = true;
		return 0;
	}
	size_t k = hash_str(s) & (t->nslots - 1);
	for (; t->slots[k]; k = (k + 1) & (t->nslots - 1))
		if (!strcmp(t->s[t->slots[k] - 1], s))
			return t->slots[k] - 1;
	if (t->n >= UINT32_MAX - 1) {
		t->oom = true; /* ids are uint32_t */
		return 0;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		char **v = realloc(t->s, cap * sizeof(*v));
		if (!v) {
			t->oom = true;
			return 0;
		}
		t->s = v;
		t->cap = cap;
	}
	char *copy = strdup(s);
	if (!copy) {
		t->oom = true;
		return 0;
	}
	t->s[t->n] = copy;
	t->slots[k] = (uint32_t)++t->n;
	return (uint32_t)t->n - 1;
}

static void strtab_free(struct strtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->s[i]);
	free(t->s);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* (a, b) -> id, ids from 1 (0 means absent). */
struct idslot {
	uint64_t a, b;
	uint32_t id;
};

struct idmap {
	struct idslot *slots;
	size_t nslots, n;
};

static size_t idmap_home(const struct idmap *m, uint64_t a, uint64_t b)
{
	return mix64(a ^ mix64(b + 0x9e3779b97f4a7c15ULL)) & (m->nslots - 1);
}

static uint32_t idmap_get(const struct idmap *m, uint64_t a, uint64_t b)
{
	if (!m->nslots)
		return 0;
	for (size_t k = idmap_home(m, a, b); m->slots[k].id;
	     k = (k + 1) & (m->nslots - 1))
		if (m->slots[k].a == a && m->slots[k].b == b)
			return m->slots[k].id;
	return 0;
}

/* Adds (a, b) -> id, for a key not in the map; false when out of memory. */
static bool idmap_put(struct idmap *m, uint64_t a, uint64_t b, uint32_t id)
{
	if ((m->n + 1) * 2 > m->nslots) {
		struct idmap g = {.nslots = m->nslots ? m->nslots * 2 : 1024};
		g.slots = calloc(g.nslots, sizeof(*g.slots));
		if (!g.slots)
			return false;
		for (size_t i = 0; i < m->nslots; i++) {
			struct idslot *s = &m->slots[i];
			if (!s->id)
				continue;
			size_t k = idmap_home(&g, s->a, s->b);
			while (g.slots[k].id)
				k = (k + 1) & (g.nslots - 1);
			g.slots[k] = *s;
		}
		g.n = m->n;
		free(m->slots);
		*m = g;
	}
	size_t k = idmap_home(m, a, b);
	while (m->slots[k].id)
		k = (k + 1) & (m->nslots - 1);
	m->slots[k] = (struct idslot){a, b, id};
	m->n++;
	return true;
}

static void idmap_free(struct idmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* ---- walking the traces ----------------------------------------------- */

/* Frames that pc expands to, counted as mp_stack_resolve() does. */
static size_t pc_nframes(const struct mp_snapshot *snap, uint64_t pc)
{
	const struct mp_symbol *sym = mp_snapshot_symbol(snap, pc);
	return sym && sym->nframes ? sym->nframes : 1;
}

/* The module index of pc, as mp_stack_resolve() finds its module;
 * SIZE_MAX when unknown. */
static size_t pc_module(const struct mp_snapshot *snap, uint64_t pc)
{
	const struct mp_symbol *sym = mp_snapshot_symbol(snap, pc);
	if (sym && sym->module < snap->nmodules)
		return sym->module;
	const struct mp_module *m = mp_snapshot_module(snap, pc);
	return m ? (size_t)(m - snap->modules) : SIZE_MAX;
}

/*
 * The frames of trace t: resolved and filtered as `top` does. *keep is
 * false for a trace the filters drop. *frames is the caller's to free.
 */
static enum mp_err trace_frames(const struct mp_snapshot *snap,
				const struct mp_export_opts *opts, size_t t,
				struct mp_resolved_frame **frames, size_t *n,
				bool *keep, struct mp_errinfo *ei)
{
	uint32_t s = snap->traces[t].stack;
	if (s >= snap->nstacks)
		return mp__fail(ei, MP_ERR_CORRUPT,
				"trace %zu names stack %" PRIu32
				", which does not exist",
				t, s);
	enum mp_err err = mp_stack_resolve(snap, s, &opts->alloc, frames, n);
	if (err != MP_OK)
		return mp__fail(ei, err, "%s", mp_strerror(err));
	*keep = mp_filters_keep(opts->filters, *frames, *n);
	return MP_OK;
}

/*
 * Calls fn for each pc of stack s that has frames left once the n
 * resolved frames were trimmed at the innermost end: with the index of
 * its first kept frame in its own inline chain (skip, 0 but for the pc
 * where the trimming stopped), how many of its frames are kept, and the
 * offset of the first of them in the resolved array.
 */
typedef bool (*pc_fn)(void *ctx, uint64_t pc, size_t skip, size_t count,
		      size_t first);

static bool for_each_pc(const struct mp_snapshot *snap, uint32_t s, size_t n,
			pc_fn fn, void *ctx)
{
	const struct mp_stack *st = &snap->stacks[s];
	size_t total = 0, first = 0;
	uint32_t depth = 0;
	/* The pcs mp_stack_resolve() expanded: it stops at MP_RESOLVED_MAX. */
	while (depth < st->depth && total < MP_RESOLVED_MAX)
		total += pc_nframes(snap, st->pcs[depth++]);
	size_t drop = total - n;
	for (uint32_t i = 0; i < depth; i++) {
		size_t k = pc_nframes(snap, st->pcs[i]);
		if (drop >= k) {
			drop -= k;
			continue;
		}
		if (!fn(ctx, st->pcs[i], drop, k - drop, first))
			return false;
		first += k - drop;
		drop = 0;
	}
	return true;
}

/* ---- pprof ------------------------------------------------------------ */

/* profile.proto field numbers (google/pprof proto/profile.proto). */
enum {
	PROFILE_SAMPLE_TYPE = 1,
	PROFILE_SAMPLE = 2,
	PROFILE_MAPPING = 3,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5,
	PROFILE_STRING_TABLE = 6,
	PROFILE_TIME_NANOS = 9,
	PROFILE_DURATION_NANOS = 10,
	PROFILE_PERIOD_TYPE = 11,
	PROFILE_PERIOD = 12,
	PROFILE_COMMENT = 13,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,
	VALUETYPE_TYPE = 1,
	VALUETYPE_UNIT = 2,
	SAMPLE_LOCATION_ID = 1,
	SAMPLE_VALUE = 2,
	SAMPLE_LABEL = 3,
	LABEL_KEY = 1,
	LABEL_NUM = 3,
	MAPPING_ID = 1,
	MAPPING_MEMORY_START = 2,
	MAPPING_MEMORY_LIMIT = 3,
	MAPPING_FILE_OFFSET = 4,
	MAPPING_FILENAME = 5,
	MAPPING_BUILD_ID = 6,
	MAPPING_HAS_FUNCTIONS = 7,
	MAPPING_HAS_FILENAMES = 8,
	MAPPING_HAS_LINE_NUMBERS = 9,
	MAPPING_HAS_INLINE_FRAMES = 10,
	LOCATION_ID = 1,
	LOCATION_MAPPING_ID = 2,
	LOCATION_ADDRESS = 3,
	LOCATION_LINE = 4,
	LINE_FUNCTION_ID = 1,
	LINE_LINE = 2,
	FUNCTION_ID = 1,
	FUNCTION_NAME = 2,
	FUNCTION_SYSTEM_NAME = 3,
	FUNCTION_FILENAME = 4,
};

/* What the locations of one mapping (module) carry. */
struct modinfo {
	bool functions, filenames, lines;
};

struct pprof {
	const struct mp_snapshot *snap;
	const struct mp_resolved_frame *frames; /* of the current trace */
	struct strtab strs;
	struct idmap locs, funcs;
	uint32_t nlocs, nfuncs;
	/* Top-level fields, in the order they are written out. */
	struct buf head, mappings, samples, locations, functions, strings;
	/* Scratch for one message of each kind being built. */
	struct buf sample, location, line, function;
	struct modinfo *mods;
	uint64_t *ids; /* the current sample's location ids */
	size_t nids, capids;
	bool oom;
};

static uint32_t pprof_function(struct pprof *pp, const char *name,
			       const char *file)
{
	/* addr2line's word for a frame the debug information does not
	 * name; a Function needs a name. */
	uint32_t ni = strtab_id(&pp->strs, name ? name : "??");
	uint32_t fi = strtab_id(&pp->strs, file);
	uint32_t id = idmap_get(&pp->funcs, ni, fi);
	if (id)
		return id;
	id = ++pp->nfuncs;
	if (!idmap_put(&pp->funcs, ni, fi, id)) {
		pp->oom = true;
		return id;
	}
	struct buf *f = &pp->function;
	f->n = 0;
	pb_uint(f, FUNCTION_ID, id);
	pb_uint(f, FUNCTION_NAME, ni);
	/* The snapshot keeps only demangled names: like Go's runtime/pprof,
	 * the system name repeats the name. The start line is not known. */
	pb_uint(f, FUNCTION_SYSTEM_NAME, ni);
	pb_uint(f, FUNCTION_FILENAME, fi);
	pb_bytes(&pp->functions, PROFILE_FUNCTION, f->p, f->n);
	return id;
}

/* Location ids are per (pc, skip): a pc whose innermost inlined frames
 * were trimmed as allocator frames in one stack is another location than
 * the same pc whole. */
static bool pprof_pc(void *ctx, uint64_t pc, size_t skip, size_t count,
		     size_t first)
{
	struct pprof *pp = ctx;
	const struct mp_snapshot *snap = pp->snap;
	uint32_t id = idmap_get(&pp->locs, pc, skip);

	if (!id) {
		id = ++pp->nlocs;
		if (!idmap_put(&pp->locs, pc, skip, id))
			return false;
		size_t mi = pc_module(snap, pc);
		const struct mp_symbol *sym = mp_snapshot_symbol(snap, pc);
		struct buf *l = &pp->location;
		l->n = 0;
		pb_uint(l, LOCATION_ID, id);
		if (mi != SIZE_MAX)
			pb_uint(l, LOCATION_MAPPING_ID, mi + 1);
		/* profile.proto's README: addresses point into the call
		 * instruction, not after it (pc is a return address). */
		pb_uint(l, LOCATION_ADDRESS, pc ? pc - 1 : 0);
		for (size_t i = 0; sym && sym->nframes && i < count; i++) {
			/* Innermost first: each Line is inlined into the
			 * next, the last is the function holding pc - 1. */
			const struct mp_resolved_frame *f =
				&pp->frames[first + i];
			uint32_t fid = pprof_function(pp, f->function, f->file);
			struct buf *ln = &pp->line;
			ln->n = 0;
			pb_uint(ln, LINE_FUNCTION_ID, fid);
			pb_uint(ln, LINE_LINE, f->line);
			pb_bytes(l, LOCATION_LINE, ln->p, ln->n);
			if (mi != SIZE_MAX) {
				struct modinfo *m = &pp->mods[mi];
				m->functions |= f->function != NULL;
				m->filenames |= f->file != NULL;
				m->lines |= f->line != 0;
			}
		}
		pb_bytes(&pp->locations, PROFILE_LOCATION, l->p, l->n);
	}
	if (pp->nids == pp->capids) {
		size_t cap = pp->capids ? pp->capids * 2 : 64;
		uint64_t *v = realloc(pp->ids, cap * sizeof(*v));
		if (!v)
			return false;
		pp->ids = v;
		pp->capids = cap;
	}
	pp->ids[pp->nids++] = id;
	return true;
}

static void pprof_value_type(struct pprof *pp, unsigned field, const char *type,
			     const char *unit)
{
	struct buf *v = &pp->line;
	v->n = 0;
	pb_uint(v, VALUETYPE_TYPE, strtab_id(&pp->strs, type));
	pb_uint(v, VALUETYPE_UNIT, strtab_id(&pp->strs, unit));
	pb_bytes(&pp->head, field, v->p, v->n);
}

/* The command line, or the executable, or "unknown program": malloc'd. */
static char *program_line(const struct mp_meta *m)
{
	struct buf b = {0};
	for (size_t i = 0; m->argv && i < m->argc && m->argv[i]; i++) {
		if (i)
			buf_put(&b, " ", 1);
		buf_puts(&b, m->argv[i]);
	}
	if (!b.n)
		buf_puts(&b, m->exe ? m->exe : "unknown program");
	buf_put(&b, "", 1);
	if (b.oom) {
		buf_free(&b);
		return NULL;
	}
	return (char *)b.p;
}

static void pprof_comment(struct pprof *pp, uint64_t *ids, size_t *n,
			  const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void pprof_comment(struct pprof *pp, uint64_t *ids, size_t *n,
			  const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0) {
		pp->oom = true;
		return;
	}
	ids[(*n)++] = strtab_id(&pp->strs, s);
	free(s);
}

/* Fields that do not depend on the traces: types, period, times,
 * comments (the snapshot's origin). */
static void pprof_head(struct pprof *pp)
{
	const struct mp_meta *m = &pp->snap->meta;
	uint64_t comments[4];
	size_t nc = 0;

	/* Go's heap profile (runtime/pprof protomem.go), in its order. */
	pprof_value_type(pp, PROFILE_SAMPLE_TYPE, "alloc_objects", "count");
	pprof_value_type(pp, PROFILE_SAMPLE_TYPE, "alloc_space", "bytes");
	pprof_value_type(pp, PROFILE_SAMPLE_TYPE, "inuse_objects", "count");
	pprof_value_type(pp, PROFILE_SAMPLE_TYPE, "inuse_space", "bytes");
	pb_uint(&pp->head, PROFILE_DEFAULT_SAMPLE_TYPE,
		strtab_id(&pp->strs, "inuse_space"));
	pprof_value_type(pp, PROFILE_PERIOD_TYPE, "space", "bytes");
	/* The values are unsampled already: the snapshot's figures are the
	 * shim's unbiased estimates. */
	pb_uint(&pp->head, PROFILE_PERIOD, m->sample_rate ? m->sample_rate : 1);
	pb_uint(&pp->head, PROFILE_TIME_NANOS, m->snapshot_ns);
	if (m->start_ns && m->snapshot_ns >= m->start_ns)
		pb_uint(&pp->head, PROFILE_DURATION_NANOS,
			m->snapshot_ns - m->start_ns);

	char *prog = program_line(m);
	if (!prog) {
		pp->oom = true;
		return;
	}
	pprof_comment(pp, comments, &nc, "memprof: program %s, pid %" PRIu64,
		      prog, m->pid);
	free(prog);
	pprof_comment(pp, comments, &nc, "memprof: trigger %s%s%s%s",
		      m->trigger ? m->trigger : "unknown", m->name ? " '" : "",
		      m->name ? m->name : "", m->name ? "'" : "");
	if (m->seq)
		pprof_comment(pp, comments, &nc,
			      "memprof: snapshot #%" PRIu64 " of the run",
			      m->seq);
	if (m->sample_rate)
		pprof_comment(pp, comments, &nc,
			      "memprof: sampled, one allocation per %" PRIu64
			      " bytes on average; values are estimates",
			      m->sample_rate);
	pb_packed(&pp->head, PROFILE_COMMENT, comments, nc);
}

static void pprof_mappings(struct pprof *pp)
{
	const struct mp_snapshot *snap = pp->snap;
	struct buf *b = &pp->location;

	for (size_t i = 0; i < snap->nmodules; i++) {
		const struct mp_module *m = &snap->modules[i];
		const struct modinfo *mi = &pp->mods[i];
		char hex[2 * sizeof(m->build_id) + 1];
		for (uint32_t k = 0; k < m->build_id_len; k++)
			snprintf(hex + 2 * k, 3, "%02x", m->build_id[k]);
		hex[2 * m->build_id_len] = '\0';

		b->n = 0;
		pb_uint(b, MAPPING_ID, i + 1);
		pb_uint(b, MAPPING_MEMORY_START, m->start);
		pb_uint(b, MAPPING_MEMORY_LIMIT, m->end);
		/* One mapping spans all of a module's PT_LOAD segments from
		 * the first, which maps the file from offset 0 (it holds
		 * the ELF header) in what GNU ld, gold and lld write. */
		pb_uint(b, MAPPING_FILE_OFFSET, 0);
		pb_uint(b, MAPPING_FILENAME, strtab_id(&pp->strs, m->path));
		pb_uint(b, MAPPING_BUILD_ID, strtab_id(&pp->strs, hex));
		pb_uint(b, MAPPING_HAS_FUNCTIONS, mi->functions);
		pb_uint(b, MAPPING_HAS_FILENAMES, mi->filenames);
		pb_uint(b, MAPPING_HAS_LINE_NUMBERS, mi->lines);
		/* Lines come from the DWARF that the symbolizer also
		 * expands inline chains from. */
		pb_uint(b, MAPPING_HAS_INLINE_FRAMES, mi->lines);
		pb_bytes(&pp->mappings, PROFILE_MAPPING, b->p, b->n);
	}
}

/* gzip (RFC 1952) of the concatenated parts, to out. */
static enum mp_err gzip_write(FILE *out, struct buf *const *parts,
			      size_t nparts, struct mp_errinfo *ei)
{
	z_stream zs;
	static const size_t chunk = 64 * 1024;
	unsigned char *o = malloc(chunk);
	enum mp_err err = MP_OK;

	memset(&zs, 0, sizeof(zs));
	/* windowBits 16 + 15: a gzip wrapper, not zlib's. Level 6 is gzip's
	 * and pprof's default. */
	if (!o || deflateInit2(&zs, 6, Z_DEFLATED, 16 + 15, 8,
			       Z_DEFAULT_STRATEGY) != Z_OK) {
		free(o);
		return mp__fail(ei, MP_ERR_NOMEM, "%s",
				mp_strerror(MP_ERR_NOMEM));
	}
	for (size_t i = 0; i <= nparts && err == MP_OK; i++) {
		const uint8_t *p = i < nparts ? parts[i]->p : NULL;
		size_t left = i < nparts ? parts[i]->n : 0;
		do {
			/* avail_in is an unsigned int: feed big parts in
			 * slices. */
			uInt in = left > (1u << 30) ? 1u << 30 : (uInt)left;
			int flush = i == nparts ? Z_FINISH : Z_NO_FLUSH;
			zs.next_in = (Bytef *)p;
			zs.avail_in = in;
			do {
				zs.next_out = o;
				zs.avail_out = (uInt)chunk;
				int r = deflate(&zs, flush);
				if (r == Z_STREAM_ERROR) {
					err = mp__fail(ei, MP_ERR_NOMEM,
						       "deflate failed");
					break;
				}
				size_t have = chunk - zs.avail_out;
				if (have && fwrite(o, 1, have, out) != have) {
					err = mp__fail(ei, MP_ERR_IO,
						       "cannot write the "
						       "output");
					break;
				}
			} while (zs.avail_out == 0);
			p += in;
			left -= in;
		} while (left && err == MP_OK);
	}
	deflateEnd(&zs);
	free(o);
	return err;
}

static enum mp_err export_pprof(const struct mp_snapshot *snap,
				const struct mp_export_opts *opts, FILE *out,
				struct mp_errinfo *ei)
{
	struct pprof pp;
	enum mp_err err = MP_OK;

	memset(&pp, 0, sizeof(pp));
	pp.snap = snap;
	pp.mods = calloc(snap->nmodules + 1, sizeof(*pp.mods));
	strtab_id(&pp.strs, "");
	if (!pp.mods)
		pp.oom = true;
	else
		pprof_head(&pp);

	for (size_t t = 0; t < snap->ntraces && !pp.oom; t++) {
		const struct mp_trace *tr = &snap->traces[t];
		struct mp_resolved_frame *frames = NULL;
		size_t n = 0;
		bool keep;

		if (!tr->allocs && !tr->alloc_bytes && !tr->live_blocks &&
		    !tr->live_bytes)
			continue;
		err = trace_frames(snap, opts, t, &frames, &n, &keep, ei);
		if (err != MP_OK)
			break;
		if (keep) {
			pp.frames = frames;
			pp.nids = 0;
			if (!for_each_pc(snap, tr->stack, n, pprof_pc, &pp))
				pp.oom = true;
			/* In sample_type order; Go's heap profile. */
			uint64_t v[4] = {tr->allocs, tr->alloc_bytes,
					 tr->live_blocks, tr->live_bytes};
			struct buf *s = &pp.sample;
			s->n = 0;
			pb_packed(s, SAMPLE_LOCATION_ID, pp.ids, pp.nids);
			pb_packed(s, SAMPLE_VALUE, v, 4);
			/* Go's "bytes" label, the average block size, so that
			 * pprof can tell sizes apart (-tagfocus). */
			if (tr->allocs && tr->alloc_bytes / tr->allocs) {
				struct buf *l = &pp.line;
				l->n = 0;
				pb_uint(l, LABEL_KEY,
					strtab_id(&pp.strs, "bytes"));
				pb_uint(l, LABEL_NUM,
					tr->alloc_bytes / tr->allocs);
				pb_bytes(s, SAMPLE_LABEL, l->p, l->n);
			}
			pb_bytes(&pp.samples, PROFILE_SAMPLE, s->p, s->n);
		}
		free(frames);
	}

	if (err == MP_OK && !pp.oom) {
		pprof_mappings(&pp);
		for (size_t i = 0; i < pp.strs.n; i++)
			pb_bytes(&pp.strings, PROFILE_STRING_TABLE,
				 pp.strs.s[i], strlen(pp.strs.s[i]));
	}
	struct buf *parts[] = {&pp.head,      &pp.mappings,  &pp.samples,
			       &pp.locations, &pp.functions, &pp.strings};
	size_t nparts = sizeof(parts) / sizeof(*parts);
	bool oom = pp.oom || pp.strs.oom;
	for (size_t i = 0; i < nparts; i++)
		oom |= parts[i]->oom;
	oom |= pp.sample.oom || pp.location.oom || pp.line.oom ||
	       pp.function.oom;
	if (err == MP_OK && oom)
		err = mp__fail(ei, MP_ERR_NOMEM, "%s",
			       mp_strerror(MP_ERR_NOMEM));
	if (err == MP_OK)
		err = gzip_write(out, parts, nparts, ei);

	for (size_t i = 0; i < nparts; i++)
		buf_free(parts[i]);
	buf_free(&pp.sample);
	buf_free(&pp.location);
	buf_free(&pp.line);
	buf_free(&pp.function);
	strtab_free(&pp.strs);
	idmap_free(&pp.locs);
	idmap_free(&pp.funcs);
	free(pp.mods);
	free(pp.ids);
	return err;
}

/* ---- folded stacks ---------------------------------------------------- */

static uint64_t trace_value(const struct mp_trace *t, enum mp_export_value v)
{
	switch (v) {
	case MP_VALUE_INUSE_BLOCKS: return t->live_blocks;
	case MP_VALUE_ALLOC_BYTES: return t->alloc_bytes;
	case MP_VALUE_ALLOCS: return t->allocs;
	default: return t->live_bytes;
	}
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash[1] ? slash + 1 : path;
}

/* s with the folded format's separators (';', and the whitespace before
 * the count) and control characters replaced by '_'; spaces are kept, as
 * flamegraph.pl takes the count after the last one. */
static void fold_put(struct buf *b, const char *s)
{
	size_t at = b->n;
	buf_puts(b, s);
	for (size_t i = at; !b->oom && i < b->n; i++)
		if (b->p[i] == ';' || b->p[i] < 0x20 || b->p[i] == 0x7f)
			b->p[i] = '_';
}

/* The function, or module+0xoffset (from its load bias, as addr2line -e
 * module wants it) for code without symbols. */
static void fold_frame(struct buf *b, const struct mp_snapshot *snap,
		       const struct mp_resolved_frame *f)
{
	char num[40];
	if (f->function) {
		fold_put(b, f->function);
		return;
	}
	const struct mp_module *m =
		f->address ? mp_snapshot_module(snap, f->address) : NULL;
	if (m && m->path) {
		fold_put(b, base_name(m->path));
		snprintf(num, sizeof(num), "+0x%" PRIx64, f->address - m->base);
	} else if (f->address) {
		snprintf(num, sizeof(num), "0x%" PRIx64, f->address);
	} else {
		snprintf(num, sizeof(num), "[unknown]");
	}
	buf_puts(b, num);
}

struct folded {
	char *stack;
	uint64_t value;
};

static int folded_cmp(const void *a, const void *b)
{
	return strcmp(((const struct folded *)a)->stack,
		      ((const struct folded *)b)->stack);
}

static enum mp_err export_collapsed(const struct mp_snapshot *snap,
				    const struct mp_export_opts *opts,
				    FILE *out, struct mp_errinfo *ei)
{
	struct folded *v = NULL;
	size_t n = 0, cap = 0;
	enum mp_err err = MP_OK;

	if ((size_t)opts->value >= NVALUES)
		return mp__fail(ei, MP_ERR_USAGE, "unknown value %d",
				(int)opts->value);
	for (size_t t = 0; t < snap->ntraces && err == MP_OK; t++) {
		uint64_t value = trace_value(&snap->traces[t], opts->value);
		struct mp_resolved_frame *frames = NULL;
		size_t nf = 0;
		bool keep;

		if (!value)
			continue;
		err = trace_frames(snap, opts, t, &frames, &nf, &keep, ei);
		if (err != MP_OK || !keep) {
			free(frames);
			continue;
		}
		struct buf b = {0};
		/* Outermost first: the flame graph's root. */
		for (size_t i = nf; i-- > 0;) {
			fold_frame(&b, snap, &frames[i]);
			if (i)
				buf_put(&b, ";", 1);
		}
		if (!nf)
			buf_puts(&b, "[unknown]");
		buf_put(&b, "", 1);
		free(frames);
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct folded *nv = realloc(v, ncap * sizeof(*nv));
			if (!nv)
				b.oom = true;
			else {
				v = nv;
				cap = ncap;
			}
		}
		if (b.oom) {
			buf_free(&b);
			err = mp__fail(ei, MP_ERR_NOMEM, "%s",
				       mp_strerror(MP_ERR_NOMEM));
			break;
		}
		v[n].stack = (char *)b.p;
		v[n++].value = value;
	}
	if (err == MP_OK) {
		/* Sorted, and equal stacks (traces that differ only in
		 * lines or addresses) merged: the same output for the same
		 * snapshot, whatever order its traces are in. */
		if (n)
			qsort(v, n, sizeof(*v), folded_cmp);
		for (size_t i = 0; i < n;) {
			uint64_t sum = 0;
			size_t j = i;
			for (; j < n && !strcmp(v[j].stack, v[i].stack); j++)
				sum += v[j].value;
			fprintf(out, "%s %" PRIu64 "\n", v[i].stack, sum);
			i = j;
		}
		if (fflush(out) != 0 || ferror(out))
			err = mp__fail(ei, MP_ERR_IO,
				       "cannot write the output");
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].stack);
	free(v);
	return err;
}

/* ---- JSON ------------------------------------------------------------- */

struct jframe {
	struct mp_resolved_frame f;
	bool inlined; /* inlined into the next frame (same address) */
};

struct jstack {
	size_t trace;
	size_t first, n; /* into the frame id list */
};

struct jwalk {
	const struct mp_snapshot *snap;
	const struct mp_resolved_frame *frames; /* of the current trace */
	struct idmap ids;			/* (pc, index in chain) -> id */
	struct jframe *table;
	size_t ntable, captable;
	uint32_t *list; /* frame ids of every stack, one after another */
	size_t nlist, caplist;
};

static bool json_pc(void *ctx, uint64_t pc, size_t skip, size_t count,
		    size_t first)
{
	struct jwalk *w = ctx;
	size_t chain = skip + count; /* frames of the pc's inline chain */

	for (size_t i = 0; i < count; i++) {
		uint32_t id = idmap_get(&w->ids, pc, skip + i);
		if (!id) {
			if (w->ntable == w->captable) {
				size_t cap =
					w->captable ? w->captable * 2 : 256;
				struct jframe *t =
					realloc(w->table, cap * sizeof(*t));
				if (!t)
					return false;
				w->table = t;
				w->captable = cap;
			}
			if (w->ntable >= UINT32_MAX - 1)
				return false;
			id = (uint32_t)++w->ntable;
			if (!idmap_put(&w->ids, pc, skip + i, id))
				return false;
			w->table[id - 1].f = w->frames[first + i];
			w->table[id - 1].inlined = skip + i + 1 < chain;
		}
		if (w->nlist == w->caplist) {
			size_t cap = w->caplist ? w->caplist * 2 : 1024;
			uint32_t *l = realloc(w->list, cap * sizeof(*l));
			if (!l)
				return false;
			w->list = l;
			w->caplist = cap;
		}
		w->list[w->nlist++] = id - 1;
	}
	return true;
}

static void json_meta(struct mp_json *j, const struct mp_meta *m)
{
	mp_json_begin_object(j);
	mp_json_kv_uint(j, "pid", m->pid);
	mp_json_kv_uint(j, "ppid", m->ppid);
	mp_json_kv_string(j, "exe", m->exe);
	mp_json_kv_strings(j, "argv", m->argv, m->argc);
	mp_json_kv_string(j, "trigger", m->trigger);
	mp_json_kv_string(j, "name", m->name);
	mp_json_kv_uint(j, "seq", m->seq);
	mp_json_kv_uint(j, "start_ns", m->start_ns);
	mp_json_kv_uint(j, "snapshot_ns", m->snapshot_ns);
	mp_json_kv_uint(j, "peak_ns", m->peak_ns);
	mp_json_kv_uint(j, "sample_rate", m->sample_rate);
	mp_json_kv_uint(j, "depth", m->depth);
	mp_json_end_object(j);
}

static void json_modules(struct mp_json *j, const struct mp_snapshot *snap)
{
	mp_json_begin_array(j);
	for (size_t i = 0; i < snap->nmodules; i++) {
		const struct mp_module *m = &snap->modules[i];
		char hex[2 * sizeof(m->build_id) + 1];
		for (uint32_t k = 0; k < m->build_id_len; k++)
			snprintf(hex + 2 * k, 3, "%02x", m->build_id[k]);
		hex[2 * m->build_id_len] = '\0';
		mp_json_begin_object(j);
		mp_json_kv_string(j, "path", m->path);
		mp_json_key(j, "base");
		mp_json_hex(j, m->base);
		mp_json_key(j, "start");
		mp_json_hex(j, m->start);
		mp_json_key(j, "end");
		mp_json_hex(j, m->end);
		mp_json_kv_string(j, "build_id", m->build_id_len ? hex : NULL);
		mp_json_end_object(j);
	}
	mp_json_end_array(j);
}

static void json_frame(struct mp_json *j, const struct jframe *jf)
{
	mp_json_begin_object(j);
	mp_json_frame_fields(j, &jf->f);
	mp_json_kv_bool(j, "inlined", jf->inlined);
	mp_json_end_object(j);
}

static enum mp_err export_json(const struct mp_snapshot *snap,
			       const struct mp_export_opts *opts, FILE *out,
			       struct mp_errinfo *ei)
{
	struct jwalk w;
	struct jstack *stacks = NULL;
	size_t nstacks = 0;
	enum mp_err err = MP_OK;

	memset(&w, 0, sizeof(w));
	w.snap = snap;
	/* Every kept trace, those with all counters 0 included. */
	stacks = malloc((snap->ntraces ? snap->ntraces : 1) * sizeof(*stacks));
	if (!stacks)
		err = mp__fail(ei, MP_ERR_NOMEM, "%s",
			       mp_strerror(MP_ERR_NOMEM));
	for (size_t t = 0; t < snap->ntraces && err == MP_OK; t++) {
		struct mp_resolved_frame *frames = NULL;
		size_t n = 0;
		bool keep;
		err = trace_frames(snap, opts, t, &frames, &n, &keep, ei);
		if (err == MP_OK && keep) {
			size_t first = w.nlist;
			w.frames = frames;
			if (!for_each_pc(snap, snap->traces[t].stack, n,
					 json_pc, &w))
				err = mp__fail(ei, MP_ERR_NOMEM, "%s",
					       mp_strerror(MP_ERR_NOMEM));
			stacks[nstacks++] =
				(struct jstack){t, first, w.nlist - first};
		}
		free(frames);
	}

	if (err == MP_OK) {
		struct mp_json j;
		mp_json_init(&j, out, false);
		mp_json_begin_object(&j);
		mp_json_kv_string(&j, "format", "memprof-export");
		mp_json_kv_uint(&j, "version", 1);
		mp_json_key(&j, "meta");
		json_meta(&j, &snap->meta);
		mp_json_key(&j, "totals");
		mp_json_totals(&j, &snap->meta.totals);
		mp_json_key(&j, "modules");
		json_modules(&j, snap);
		mp_json_key(&j, "frames");
		mp_json_begin_array(&j);
		for (size_t i = 0; i < w.ntable; i++)
			json_frame(&j, &w.table[i]);
		mp_json_end_array(&j);
		mp_json_key(&j, "stacks");
		mp_json_begin_array(&j);
		for (size_t i = 0; i < nstacks; i++) {
			const struct jstack *s = &stacks[i];
			const struct mp_trace *tr = &snap->traces[s->trace];
			mp_json_begin_object(&j);
			mp_json_key(&j, "frames");
			mp_json_begin_array(&j);
			for (size_t k = 0; k < s->n; k++)
				mp_json_uint(&j, w.list[s->first + k]);
			mp_json_end_array(&j);
			mp_json_kv_uint(&j, "bytes", tr->live_bytes);
			mp_json_kv_uint(&j, "blocks", tr->live_blocks);
			mp_json_kv_uint(&j, "allocs", tr->allocs);
			mp_json_kv_uint(&j, "alloc_bytes", tr->alloc_bytes);
			mp_json_kv_uint(&j, "peak_bytes", tr->peak_bytes);
			mp_json_end_object(&j);
		}
		mp_json_end_array(&j);
		mp_json_end_object(&j);
		err = mp_json_finish(&j);
		if (err != MP_OK)
			err = mp__fail(ei, MP_ERR_IO,
				       "cannot write the output");
	}
	idmap_free(&w.ids);
	free(w.table);
	free(w.list);
	free(stacks);
	return err;
}

/* ---- entry point ------------------------------------------------------ */

enum mp_err mp_export_write(const struct mp_snapshot *snap,
			    const struct mp_export_opts *opts, FILE *out,
			    struct mp_errinfo *ei)
{
	if (!snap || !opts || !out)
		return mp__fail(ei, MP_ERR_USAGE,
				"no snapshot, options or "
				"output");
	switch (opts->format) {
	case MP_EXPORT_PPROF: return export_pprof(snap, opts, out, ei);
	case MP_EXPORT_COLLAPSED: return export_collapsed(snap, opts, out, ei);
	case MP_EXPORT_JSON: return export_json(snap, opts, out, ei);
	}
	return mp__fail(ei, MP_ERR_USAGE, "unknown export format %d",
			(int)opts->format);
}
