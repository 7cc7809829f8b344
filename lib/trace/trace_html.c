/*
 * trace_html.c - `memprof report`: one self-contained HTML page of a
 * snapshot (DESIGN.md §5, export).
 *
 * Gathers what the page shows with the analyses of this library (the
 * flamegraph tree of live and allocated bytes, the `top` profile by line,
 * the leak report, the timeline), limits it so that a snapshot of 100k
 * stacks still gives a page a browser draws at once, and writes it as a
 * JSON blob inside the page. The page's script and style sheet live in
 * lib/trace/html/ as real files and are assembled into this object
 * (.incbin, below). The page loads nothing: a Content-Security-Policy
 * allows only its own script and style, by hash. Nothing here prints to
 * stdout or stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <string.h>

#include "memprof_trace.h"
#include "trace/trace_json.h"

/*
 * The page's script and style sheet, NUL-terminated. .incbin reads them
 * relative to the directory the compiler runs in: the Makefile compiles
 * from the top of the tree, and makes this object depend on the files.
 */
__asm__(".pushsection .rodata\n"
	".balign 16\n"
	"mp_html_js:\n"
	".incbin \"lib/trace/html/report.js\"\n"
	".byte 0\n"
	".balign 16\n"
	"mp_html_css:\n"
	".incbin \"lib/trace/html/report.css\"\n"
	".byte 0\n"
	".popsection\n");
extern const char mp_html_js[] __attribute__((visibility("hidden")));
extern const char mp_html_css[] __attribute__((visibility("hidden")));

/* Limits of the data embedded in the page (memprof_trace.h); the page
 * says what they left out. */
#define FLAME_MIN_PPM 1000    /* flame nodes under 0.1% of both totals */
#define FLAME_MAX_NODES 20000 /* then the share doubles until they fit */
#define TOP_PER_KEY 250	      /* the biggest sites by each column */
#define RECORDS_PER_KIND 200  /* the biggest loss records of each kind */
#define MAX_CYCLES 100
#define MAX_MEMBERS 100
#define MAX_STACK_FRAMES 64 /* frames of a leak stack */

/* ---- SHA-256 (FIPS 180-4), for the CSP hashes ------------------------ */

struct sha256 {
	uint32_t h[8];
	uint8_t buf[64];
	size_t nbuf;
	uint64_t len;
};

static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n)
{
	return x >> n | x << (32 - n);
}

static void sha_block(struct sha256 *s, const uint8_t *p)
{
	uint32_t w[64], v[8];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 =
			ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ w[i - 15] >> 3;
		uint32_t s1 =
			ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ w[i - 2] >> 10;
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	memcpy(v, s->h, sizeof(v));
	for (int i = 0; i < 64; i++) {
		uint32_t t1 =
			v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) +
			((v[4] & v[5]) ^ (~v[4] & v[6])) + sha_k[i] + w[i];
		uint32_t t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) +
			      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
		memmove(v + 1, v, 7 * sizeof(v[0]));
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (int i = 0; i < 8; i++)
		s->h[i] += v[i];
}

static void sha_init(struct sha256 *s)
{
	static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
				       0xa54ff53a, 0x510e527f, 0x9b05688c,
				       0x1f83d9ab, 0x5be0cd19};
	memcpy(s->h, h0, sizeof(h0));
	s->nbuf = 0;
	s->len = 0;
}

static void sha_update(struct sha256 *s, const void *data, size_t n)
{
	const uint8_t *p = data;
	s->len += n;
	while (n) {
		size_t take = 64 - s->nbuf < n ? 64 - s->nbuf : n;
		memcpy(s->buf + s->nbuf, p, take);
		s->nbuf += take;
		p += take;
		n -= take;
		if (s->nbuf == 64) {
			sha_block(s, s->buf);
			s->nbuf = 0;
		}
	}
}

static void sha_final(struct sha256 *s, uint8_t out[32])
{
	uint64_t bits = s->len * 8;
	uint8_t pad = 0x80, zero = 0, len[8];
	sha_update(s, &pad, 1);
	while (s->nbuf != 56)
		sha_update(s, &zero, 1);
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha_update(s, len, 8);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(s->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)s->h[i];
	}
}

/* "sha256-BASE64" of text, as a CSP source; buf holds 64 bytes. */
static const char *csp_hash(const char *text, char *buf)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	struct sha256 s;
	uint8_t d[32];
	sha_init(&s);
	sha_update(&s, text, strlen(text));
	sha_final(&s, d);
	char *o = buf + sprintf(buf, "sha256-");
	for (int i = 0; i < 32; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16;
		if (i + 1 < 32)
			v |= (uint32_t)d[i + 1] << 8;
		if (i + 2 < 32)
			v |= d[i + 2];
		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = i + 1 < 32 ? b64[v >> 6 & 63] : '=';
		*o++ = i + 2 < 32 ? b64[v & 63] : '=';
	}
	*o = '\0';
	return buf;
}

/* ---- interning: strings and frames of the page ------------------------ */

/* An open-addressing set of indices into a caller's array; each slot keeps
 * the element's hash so that growing needs no callback. */
struct slot {
	uint32_t idx1; /* index + 1; 0: empty */
	uint32_t hash;
};

struct idxset {
	struct slot *slots;
	size_t cap, n; /* cap: a power of two */
};

typedef bool (*idx_eq_fn)(const void *ctx, uint32_t idx, const void *key);

/* The slot for key: holding it, or empty where it goes. NULL when out of
 * memory (growing failed). */
static struct slot *idx_find(struct idxset *s, uint32_t hash, idx_eq_fn eq,
			     const void *ctx, const void *key)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct slot *ns = calloc(cap, sizeof(*ns));
		if (!ns)
			return NULL;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->slots[i].idx1)
				continue;
			size_t j = s->slots[i].hash & (cap - 1);
			while (ns[j].idx1)
				j = (j + 1) & (cap - 1);
			ns[j] = s->slots[i];
		}
		free(s->slots);
		s->slots = ns;
		s->cap = cap;
	}
	size_t j = hash & (s->cap - 1);
	while (s->slots[j].idx1) {
		if (s->slots[j].hash == hash &&
		    eq(ctx, s->slots[j].idx1 - 1, key))
			break;
		j = (j + 1) & (s->cap - 1);
	}
	return &s->slots[j];
}

static uint32_t hash_bytes(uint32_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 16777619u; /* FNV-1a */
	return h;
}

#define HASH_SEED 2166136261u

/* A frame of the page: indices into the string table (-1 unknown). */
struct pframe {
	int32_t fn, file, mod;
	uint32_t line;
	uint64_t addr; /* only when fn is unknown */
};

struct tables {
	const char **strs;
	size_t nstrs, capstrs;
	struct idxset strset;
	struct pframe *frames;
	size_t nframes, capframes;
	struct idxset frameset;
	/* Flame keys by the snapshot's string pointers, which symbols share:
	 * one lookup a frame instead of hashing its strings. */
	struct pkey *pkeys;
	size_t npkeys, cappkeys;
	struct idxset pkeyset;
};

struct pkey {
	const char *fn, *file, *mod;
	int32_t key;
};

static bool str_eq(const void *ctx, uint32_t idx, const void *key)
{
	const struct tables *t = ctx;
	return strcmp(t->strs[idx], key) == 0;
}

static bool pkey_eq(const void *ctx, uint32_t idx, const void *key)
{
	const struct pkey *a = &((const struct tables *)ctx)->pkeys[idx];
	const struct pkey *b = key;
	return a->fn == b->fn && a->file == b->file && a->mod == b->mod;
}

static bool frame_eq(const void *ctx, uint32_t idx, const void *key)
{
	const struct tables *t = ctx;
	return memcmp(&t->frames[idx], key, sizeof(struct pframe)) == 0;
}

static bool grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 256;
	void *nv = realloc(*v, ncap * size);
	if (!nv)
		return false;
	*v = nv;
	*cap = ncap;
	return true;
}

/* The index of s in the string table; -1 for NULL, -2 out of memory. */
static int32_t str_id(struct tables *t, const char *s)
{
	if (!s)
		return -1;
	uint32_t h = hash_bytes(HASH_SEED, s, strlen(s));
	struct slot *sl = idx_find(&t->strset, h, str_eq, t, s);
	if (!sl)
		return -2;
	if (sl->idx1)
		return (int32_t)(sl->idx1 - 1);
	if (!grow((void **)&t->strs, &t->capstrs, t->nstrs, sizeof(char *)))
		return -2;
	t->strs[t->nstrs] = s;
	sl->idx1 = (uint32_t)++t->nstrs;
	sl->hash = h;
	t->strset.n++;
	return (int32_t)(sl->idx1 - 1);
}

/* The index of a page frame; -2 out of memory. */
static int32_t frame_id(struct tables *t, const struct pframe *f)
{
	struct pframe k;
	memset(&k, 0, sizeof(k)); /* padding compares too */
	k.fn = f->fn;
	k.file = f->file;
	k.mod = f->mod;
	k.line = f->line;
	k.addr = f->fn < 0 ? f->addr : 0;
	uint32_t h = hash_bytes(HASH_SEED, &k, sizeof(k));
	struct slot *sl = idx_find(&t->frameset, h, frame_eq, t, &k);
	if (!sl)
		return -2;
	if (sl->idx1)
		return (int32_t)(sl->idx1 - 1);
	if (!grow((void **)&t->frames, &t->capframes, t->nframes,
		  sizeof(struct pframe)))
		return -2;
	t->frames[t->nframes] = k;
	sl->idx1 = (uint32_t)++t->nframes;
	sl->hash = h;
	t->frameset.n++;
	return (int32_t)(sl->idx1 - 1);
}

/* A resolved frame as a page frame; -2 out of memory. */
static int32_t resolved_id(struct tables *t, const struct mp_resolved_frame *r)
{
	struct pframe f = {.line = r->line, .addr = r->address};
	if ((f.fn = str_id(t, r->function)) == -2 ||
	    (f.file = str_id(t, r->file)) == -2 ||
	    (f.mod = str_id(t, r->module)) == -2)
		return -2;
	return frame_id(t, &f);
}

/* The flamegraph key of a frame: its function, file and module (line 0),
 * or its module alone when the function is unknown; -2 out of memory. */
static int32_t flame_key(struct tables *t, const struct mp_resolved_frame *r)
{
	struct pkey k = {.fn = r->function,
			 .file = r->function ? r->file : NULL,
			 .mod = r->module};
	uint32_t h = hash_bytes(HASH_SEED, &k, 3 * sizeof(char *));
	struct slot *sl = idx_find(&t->pkeyset, h, pkey_eq, t, &k);
	if (!sl)
		return -2;
	if (sl->idx1)
		return t->pkeys[sl->idx1 - 1].key;
	struct pframe pf = {.fn = -1, .file = -1};
	if ((pf.mod = str_id(t, k.mod)) == -2 ||
	    (pf.fn = str_id(t, k.fn)) == -2 ||
	    (pf.file = str_id(t, k.file)) == -2 ||
	    (k.key = frame_id(t, &pf)) == -2)
		return -2;
	if (!grow((void **)&t->pkeys, &t->cappkeys, t->npkeys,
		  sizeof(struct pkey)))
		return -2;
	/* str_id and frame_id grew other sets, never this one: sl holds */
	t->pkeys[t->npkeys] = k;
	sl->idx1 = (uint32_t)++t->npkeys;
	sl->hash = h;
	t->pkeyset.n++;
	return k.key;
}

static void tables_free(struct tables *t)
{
	free(t->pkeys);
	free(t->pkeyset.slots);
	free(t->strs);
	free(t->strset.slots);
	free(t->frames);
	free(t->frameset.slots);
}

/* ---- the flamegraph tree ---------------------------------------------- */

/*
 * One tree for both flamegraphs: each node has the live bytes and the
 * bytes allocated by the stacks through it. Nodes are keyed by function
 * and file, not line, so that a function is one box whichever of its lines
 * the stacks pass through; the line is kept when they all agree. Frames
 * without a function are merged by module.
 */
struct fnode {
	uint32_t parent;
	int32_t key; /* page frame with line 0 and no address */
	uint32_t line;
	bool line_mixed;
	uint64_t live, alloc;
	int32_t out; /* index in the page, -1: left out */
};

struct flame {
	struct fnode *nodes;
	size_t n, cap;
	struct idxset children; /* (parent, key) -> node */
};

struct child_key {
	uint32_t parent;
	int32_t key;
};

static bool child_eq(const void *ctx, uint32_t idx, const void *key)
{
	const struct flame *fl = ctx;
	const struct child_key *k = key;
	return fl->nodes[idx].parent == k->parent &&
	       fl->nodes[idx].key == k->key;
}

/* The child of parent for key, created empty when missing; UINT32_MAX
 * when out of memory. */
static uint32_t flame_child(struct flame *fl, uint32_t parent, int32_t key)
{
	struct child_key k = {parent, key};
	uint32_t h = hash_bytes(HASH_SEED, &k, sizeof(k));
	struct slot *sl = idx_find(&fl->children, h, child_eq, fl, &k);
	if (!sl)
		return UINT32_MAX;
	if (sl->idx1)
		return sl->idx1 - 1;
	if (!grow((void **)&fl->nodes, &fl->cap, fl->n, sizeof(struct fnode)))
		return UINT32_MAX;
	struct fnode *n = &fl->nodes[fl->n];
	memset(n, 0, sizeof(*n));
	n->parent = parent;
	n->key = key;
	n->out = -1;
	sl->idx1 = (uint32_t)++fl->n;
	sl->hash = h;
	fl->children.n++;
	return sl->idx1 - 1;
}

static enum mp_err flame_build(const struct mp_snapshot *snap,
			       const struct mp_alloc_filter *alloc,
			       struct tables *t, struct flame *fl)
{
	if (!grow((void **)&fl->nodes, &fl->cap, 0, sizeof(struct fnode)))
		return MP_ERR_NOMEM;
	memset(&fl->nodes[0], 0, sizeof(fl->nodes[0]));
	fl->nodes[0].key = -1;
	fl->nodes[0].parent = UINT32_MAX;
	fl->n = 1;
	for (size_t i = 0; i < snap->ntraces; i++) {
		const struct mp_trace *tr = &snap->traces[i];
		if (!tr->live_bytes && !tr->alloc_bytes)
			continue;
		struct mp_resolved_frame *f;
		size_t nf;
		enum mp_err err =
			mp_stack_resolve(snap, tr->stack, alloc, &f, &nf);
		if (err == MP_ERR_USAGE)
			return MP_ERR_CORRUPT;
		if (err != MP_OK)
			return err;
		uint32_t cur = 0;
		fl->nodes[0].live += tr->live_bytes;
		fl->nodes[0].alloc += tr->alloc_bytes;
		int32_t prev_key = -1;
		uint64_t prev_addr = 0;
		for (size_t k = nf; k-- > 0;) {
			const struct mp_resolved_frame *r = &f[k];
			int32_t key = flame_key(t, r);
			if (key == -2) {
				free(f);
				return MP_ERR_NOMEM;
			}
			/* One box for an inline chain within one function
			 * (same return address), and for a run of frames of
			 * a module without symbols. */
			if (key == prev_key &&
			    (r->function == NULL || r->address == prev_addr))
				continue;
			prev_key = key;
			prev_addr = r->address;
			cur = flame_child(fl, cur, key);
			if (cur == UINT32_MAX) {
				free(f);
				return MP_ERR_NOMEM;
			}
			struct fnode *n = &fl->nodes[cur];
			if (n->live == 0 && n->alloc == 0 && !n->line_mixed)
				n->line = r->line;
			else if (n->line != r->line)
				n->line_mixed = true;
			n->live += tr->live_bytes;
			n->alloc += tr->alloc_bytes;
		}
		free(f);
	}
	return MP_OK;
}

/*
 * Numbers the nodes kept in the page under the thresholds, in the order of
 * the array (a parent always comes before its children), and returns how
 * many: the root, and the nodes of a kept parent at or above either
 * threshold. A node is never bigger than its parent, so what is left out
 * is whole subtrees; their bytes go to *left_live and *left_alloc.
 */
static size_t flame_mark(struct flame *fl, uint64_t min_live,
			 uint64_t min_alloc, uint64_t *left_live,
			 uint64_t *left_alloc)
{
	size_t kept = 1;
	*left_live = *left_alloc = 0;
	fl->nodes[0].out = 0;
	for (size_t i = 1; i < fl->n; i++) {
		struct fnode *n = &fl->nodes[i];
		n->out = -1;
		if (fl->nodes[n->parent].out < 0)
			continue;
		if ((n->live && n->live >= min_live) ||
		    (n->alloc && n->alloc >= min_alloc)) {
			n->out = (int32_t)kept++;
		} else {
			*left_live += n->live;
			*left_alloc += n->alloc;
		}
	}
	return kept;
}

static void flame_free(struct flame *fl)
{
	free(fl->nodes);
	free(fl->children.slots);
}

/* ---- JSON in a <script> element ---------------------------------------- */

/*
 * The JSON goes through this stream on its way to the page: '<', '>' and
 * '&' become \u003c \u003e \u0026, so no "</script>" or "<!--" in a
 * symbol can end the element early. JSON has them only inside strings,
 * where the escapes mean the same.
 */
static ssize_t escape_write(void *cookie, const char *buf, size_t n)
{
	FILE *out = cookie;
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		const char *rep;
		switch (buf[i]) {
		case '<': rep = "\\u003c"; break;
		case '>': rep = "\\u003e"; break;
		case '&': rep = "\\u0026"; break;
		default: continue;
		}
		if (fwrite(buf + start, 1, i - start, out) != i - start ||
		    fputs(rep, out) == EOF)
			return 0;
		start = i + 1;
	}
	if (fwrite(buf + start, 1, n - start, out) != n - start)
		return 0;
	return (ssize_t)n;
}

/* ---- the data --------------------------------------------------------- */

struct ctx {
	const struct mp_snapshot *snap;
	const struct mp_html_opts *opts;
	struct mp_alloc_filter alloc;
	struct tables t;
	struct flame fl;
	struct mp_profile *prof;
	bool *top_keep;
	size_t top_shown;
	struct mp_leak_report *rep;
	struct mp_html_stats stats;
};

static uint64_t rel_us(uint64_t ns, uint64_t start_ns)
{
	return ns > start_ns ? (ns - start_ns) / 1000 : 0;
}

static void json_meta(struct mp_json *j, const struct ctx *c)
{
	const struct mp_meta *m = &c->snap->meta;
	const char *prog = m->argc && m->argv && m->argv[0] ? m->argv[0]
			   : m->exe			    ? m->exe
							    : NULL;
	mp_json_key(j, "meta");
	mp_json_begin_object(j);
	mp_json_kv_string(j, "program", prog);
	mp_json_kv_string(j, "exe", m->exe);
	mp_json_kv_strings(j, "argv", m->argv, m->argc);
	mp_json_kv_uint(j, "pid", m->pid);
	mp_json_kv_string(j, "trigger", m->trigger);
	mp_json_kv_string(j, "name", m->name);
	mp_json_kv_uint(j, "seq", m->seq);
	mp_json_kv_uint(j, "sample_rate", m->sample_rate);
	mp_json_kv_uint(j, "start_ms", m->start_ns / 1000000);
	mp_json_kv_uint(j, "snapshot_us", rel_us(m->snapshot_ns, m->start_ns));
	if (m->peak_ns)
		mp_json_kv_uint(j, "peak_us", rel_us(m->peak_ns, m->start_ns));
	mp_json_kv_string(j, "source", c->opts ? c->opts->source : NULL);
	mp_json_end_object(j);
}

/* The string and frame tables, last: every section has interned its
 * frames by then. Frames are [fn, file, line, module, address]. */
static void json_tables(struct mp_json *j, const struct tables *t)
{
	mp_json_key(j, "strings");
	mp_json_begin_array(j);
	for (size_t i = 0; i < t->nstrs; i++)
		mp_json_string(j, t->strs[i]);
	mp_json_end_array(j);
	mp_json_key(j, "frames");
	mp_json_begin_array(j);
	for (size_t i = 0; i < t->nframes; i++) {
		const struct pframe *f = &t->frames[i];
		mp_json_begin_array(j);
		mp_json_int(j, f->fn);
		mp_json_int(j, f->file);
		mp_json_uint(j, f->line);
		mp_json_int(j, f->mod);
		if (f->addr)
			mp_json_hex(j, f->addr);
		else
			mp_json_null(j);
		mp_json_end_array(j);
	}
	mp_json_end_array(j);
}

/*
 * "flame": the kept nodes, parents first, four numbers each:
 * parent (emitted index, -1 for the root), frame, live bytes, bytes
 * allocated.
 */
static enum mp_err json_flame(struct mp_json *j, struct ctx *c)
{
	struct flame *fl = &c->fl;
	uint64_t tl = fl->nodes[0].live, ta = fl->nodes[0].alloc;
	uint64_t ppm = FLAME_MIN_PPM, ml, ma, ll, la;
	size_t kept;
	for (;;) {
		ml = (uint64_t)((double)tl * (double)ppm / 1e6);
		ma = (uint64_t)((double)ta * (double)ppm / 1e6);
		kept = flame_mark(fl, ml, ma, &ll, &la);
		if (kept <= FLAME_MAX_NODES || ppm >= 500000)
			break;
		ppm *= 2;
	}
	c->stats.flame_nodes = kept;
	c->stats.flame_omitted = fl->n - kept;
	c->stats.flame_min_ppm = ppm;

	mp_json_key(j, "flame");
	mp_json_begin_object(j);
	mp_json_kv_uint(j, "live", tl);
	mp_json_kv_uint(j, "alloc", ta);
	mp_json_kv_uint(j, "min_share_ppm", ppm);
	mp_json_kv_uint(j, "omitted_nodes", fl->n - kept);
	mp_json_kv_uint(j, "omitted_live", ll);
	mp_json_kv_uint(j, "omitted_alloc", la);
	mp_json_key(j, "nodes");
	mp_json_begin_array(j);
	for (size_t i = 0; i < fl->n; i++) {
		struct fnode *n = &fl->nodes[i];
		if (n->out < 0)
			continue;
		int32_t frame = -1;
		if (i != 0) {
			struct pframe pf = c->t.frames[n->key];
			pf.line = n->line_mixed ? 0 : n->line;
			if ((frame = frame_id(&c->t, &pf)) == -2)
				return MP_ERR_NOMEM;
		}
		mp_json_int(j, i == 0 ? -1 : fl->nodes[n->parent].out);
		mp_json_int(j, frame);
		mp_json_uint(j, n->live);
		mp_json_uint(j, n->alloc);
	}
	mp_json_end_array(j);
	mp_json_end_object(j);
	return MP_OK;
}

static uint64_t top_key(const struct mp_profile_entry *e, int k)
{
	switch (k) {
	case 0: return e->bytes;
	case 1: return e->blocks;
	case 2: return e->allocs;
	case 3: return e->alloc_bytes;
	default: return e->peak_bytes;
	}
}

struct top_order {
	const struct mp_profile *prof;
	int key;
};

static int top_cmp(const void *a, const void *b, void *arg)
{
	const struct top_order *o = arg;
	size_t i = *(const size_t *)a, k = *(const size_t *)b;
	uint64_t x = top_key(&o->prof->entries[i], o->key);
	uint64_t y = top_key(&o->prof->entries[k], o->key);
	if (x != y)
		return x > y ? -1 : 1;
	return i < k ? -1 : i > k;
}

/* Marks the TOP_PER_KEY biggest sites by each column of the table. */
static enum mp_err top_select(struct ctx *c)
{
	size_t n = c->prof->nentries;
	size_t *order = malloc((n ? n : 1) * sizeof(size_t));
	c->top_keep = calloc(n ? n : 1, sizeof(bool));
	if (!c->top_keep || !order) {
		free(order);
		return MP_ERR_NOMEM;
	}
	struct top_order o = {.prof = c->prof};
	for (o.key = 0; o.key < 5; o.key++) {
		for (size_t i = 0; i < n; i++)
			order[i] = i;
		qsort_r(order, n, sizeof(size_t), top_cmp, &o);
		for (size_t i = 0; i < n && i < TOP_PER_KEY; i++)
			if (top_key(&c->prof->entries[order[i]], o.key))
				c->top_keep[order[i]] = true;
	}
	free(order);
	for (size_t i = 0; i < n; i++)
		c->top_shown += c->top_keep[i];
	return MP_OK;
}

/* "top": entries [frame, bytes, blocks, allocs, alloc_bytes, peak_bytes],
 * and the sums of the sites left out. */
static enum mp_err json_top(struct mp_json *j, struct ctx *c)
{
	const struct mp_profile *p = c->prof;
	struct mp_profile_entry rest = {0};
	mp_json_key(j, "top");
	mp_json_begin_object(j);
	mp_json_kv_string(j, "group_by", mp_group_by_name(p->by));
	mp_json_kv_uint(j, "groups", p->nentries);
	mp_json_key(j, "entries");
	mp_json_begin_array(j);
	for (size_t i = 0; i < p->nentries; i++) {
		const struct mp_profile_entry *e = &p->entries[i];
		if (!c->top_keep[i]) {
			rest.bytes += e->bytes;
			rest.blocks += e->blocks;
			rest.allocs += e->allocs;
			rest.alloc_bytes += e->alloc_bytes;
			rest.peak_bytes += e->peak_bytes;
			continue;
		}
		int32_t f = -1;
		if (e->nframes && (f = resolved_id(&c->t, &e->frames[0])) == -2)
			return MP_ERR_NOMEM;
		mp_json_begin_array(j);
		mp_json_int(j, f);
		for (int k = 0; k < 5; k++)
			mp_json_uint(j, top_key(e, k));
		mp_json_end_array(j);
	}
	mp_json_end_array(j);
	mp_json_key(j, "rest");
	mp_json_begin_array(j);
	for (int k = 0; k < 5; k++)
		mp_json_uint(j, top_key(&rest, k));
	mp_json_end_array(j);
	mp_json_end_object(j);
	c->stats.top_shown = c->top_shown;
	c->stats.top_groups = p->nentries;
	return MP_OK;
}

static enum mp_err json_stack(struct mp_json *j, struct tables *t,
			      const struct mp_resolved_frame *f, size_t n)
{
	mp_json_key(j, "frames");
	mp_json_begin_array(j);
	for (size_t k = 0; k < n && k < MAX_STACK_FRAMES; k++) {
		int32_t id = resolved_id(t, &f[k]);
		if (id == -2)
			return MP_ERR_NOMEM;
		mp_json_int(j, id);
	}
	mp_json_end_array(j);
	mp_json_kv_uint(j, "nframes", n);
	return MP_OK;
}

static enum mp_err json_leaks(struct mp_json *j, struct ctx *c)
{
	const struct mp_leak_report *rep = c->rep;
	enum mp_err err;
	mp_json_key(j, "leaks");
	if (!rep) {
		mp_json_null(j);
		return MP_OK;
	}
	mp_json_begin_object(j);
	mp_json_key(j, "summary");
	mp_json_begin_object(j);
	for (unsigned k = 0; k < MP_LEAK_NKINDS; k++) {
		mp_json_key(j, mp_leak_kind_name((enum mp_leak_kind)k));
		mp_json_begin_array(j);
		mp_json_uint(j, rep->summary[k].bytes);
		mp_json_uint(j, rep->summary[k].blocks);
		mp_json_end_array(j);
	}
	mp_json_end_object(j);
	mp_json_kv_uint(j, "loss_records", rep->nrecords);
	mp_json_kv_uint(j, "threads", rep->threads);
	mp_json_kv_uint(j, "threads_unscanned", rep->threads_unscanned);

	/* The biggest records of each kind, biggest first. */
	size_t per_kind[MP_LEAK_NKINDS] = {0}, total[MP_LEAK_NKINDS] = {0};
	mp_json_key(j, "records");
	mp_json_begin_array(j);
	for (size_t i = rep->nrecords; i-- > 0;) {
		const struct mp_leak_record *r = &rep->records[i];
		total[r->kind]++;
		if (per_kind[r->kind] == RECORDS_PER_KIND)
			continue;
		per_kind[r->kind]++;
		c->stats.records_shown++;
		mp_json_begin_object(j);
		mp_json_kv_string(j, "kind", mp_leak_kind_name(r->kind));
		mp_json_kv_uint(j, "bytes", r->bytes);
		mp_json_kv_uint(j, "blocks", r->blocks);
		mp_json_kv_uint(j, "retained_bytes", r->retained_bytes);
		mp_json_kv_uint(j, "record", i + 1);
		if ((err = json_stack(j, &c->t, r->frames, r->nframes)))
			return err;
		mp_json_end_object(j);
	}
	mp_json_end_array(j);
	c->stats.records = rep->nrecords;
	mp_json_key(j, "records_total");
	mp_json_begin_object(j);
	for (unsigned k = 0; k < MP_LEAK_NKINDS; k++)
		mp_json_kv_uint(j, mp_leak_kind_name((enum mp_leak_kind)k),
				total[k]);
	mp_json_end_object(j);

	mp_json_key(j, "cycles");
	mp_json_begin_array(j);
	for (size_t i = 0; i < rep->ncycles && i < MAX_CYCLES; i++) {
		const struct mp_leak_cycle *cy = &rep->cycles[i];
		mp_json_begin_object(j);
		mp_json_kv_uint(j, "bytes", cy->bytes);
		mp_json_kv_uint(j, "blocks", cy->blocks);
		mp_json_kv_bool(j, "is_root", cy->is_root);
		mp_json_kv_uint(j, "retained_bytes", cy->retained_bytes);
		mp_json_kv_uint(j, "nmembers", cy->nmembers);
		mp_json_key(j, "members");
		mp_json_begin_array(j);
		for (size_t k = 0; k < cy->nmembers && k < MAX_MEMBERS; k++) {
			const struct mp_leak_member *m = &cy->members[k];
			mp_json_begin_object(j);
			mp_json_kv_uint(j, "bytes", m->bytes);
			mp_json_kv_uint(j, "blocks", m->blocks);
			if ((err = json_stack(j, &c->t, m->frames, m->nframes)))
				return err;
			mp_json_end_object(j);
		}
		mp_json_end_array(j);
		mp_json_end_object(j);
		c->stats.cycles_shown++;
	}
	mp_json_end_array(j);
	mp_json_kv_uint(j, "cycles_total", rep->ncycles);
	c->stats.cycles = rep->ncycles;
	mp_json_end_object(j);
	return MP_OK;
}

/* "timeline": sample times in µs from the start and live bytes; the
 * snapshots marked, [seq, µs]. Every sample is kept: the shim writes at
 * most 4096. */
static void json_timeline(struct mp_json *j, const struct mp_snapshot *snap)
{
	const struct mp_timeline *tl = &snap->timeline;
	uint64_t start = snap->meta.start_ns;
	mp_json_key(j, "timeline");
	if (!snap->has_timeline) {
		mp_json_null(j);
		return;
	}
	mp_json_begin_object(j);
	mp_json_kv_uint(j, "interval_us", tl->interval_ns / 1000);
	mp_json_key(j, "t");
	mp_json_begin_array(j);
	for (size_t i = 0; i < tl->nsamples; i++)
		mp_json_uint(j, rel_us(tl->samples[i].ns, start));
	mp_json_end_array(j);
	mp_json_key(j, "bytes");
	mp_json_begin_array(j);
	for (size_t i = 0; i < tl->nsamples; i++)
		mp_json_uint(j, tl->samples[i].live_bytes);
	mp_json_end_array(j);
	mp_json_key(j, "marks");
	mp_json_begin_array(j);
	for (size_t i = 0; i < tl->nmarks; i++) {
		mp_json_begin_array(j);
		mp_json_uint(j, tl->marks[i].seq);
		mp_json_uint(j, rel_us(tl->marks[i].ns, start));
		mp_json_end_array(j);
	}
	mp_json_end_array(j);
	mp_json_end_object(j);
}

static enum mp_err write_data(FILE *out, struct ctx *c)
{
	static const cookie_io_functions_t io = {.write = escape_write};
	FILE *f = fopencookie(out, "w", io);
	if (!f)
		return MP_ERR_NOMEM;
	struct mp_json j;
	enum mp_err err;
	mp_json_init(&j, f, false);
	mp_json_begin_object(&j);
	mp_json_kv_uint(&j, "version", 1);
	mp_json_kv_string(&j, "title", c->opts ? c->opts->title : NULL);
	json_meta(&j, c);
	mp_json_key(&j, "totals");
	mp_json_totals(&j, &c->snap->meta.totals);
	if ((err = json_flame(&j, c)) || (err = json_top(&j, c))) {
		fclose(f);
		return err;
	}
	/* The profile is written: free it before the leak analysis, the
	 * other big one. */
	mp_profile_free(c->prof);
	c->prof = NULL;
	if (c->snap->has_graph && c->snap->has_blocks) {
		struct mp_leak_opts lo = {.supp = c->opts ? c->opts->supp
							  : NULL,
					  .alloc = c->alloc};
		err = mp_leaks_analyze(c->snap, &lo, &c->rep);
	}
	if (err || (err = json_leaks(&j, c))) {
		fclose(f);
		return err;
	}
	if (!c->rep)
		mp_json_kv_string(&j, "leaks_missing",
				  c->snap->meta.sample_rate ? "sampled"
							    : "no_graph");
	json_timeline(&j, c->snap);
	json_tables(&j, &c->t);
	mp_json_end_object(&j);
	err = mp_json_finish(&j);
	if (fclose(f) != 0 && err == MP_OK)
		err = MP_ERR_IO;
	return err;
}

/* ---- the page --------------------------------------------------------- */

static void html_text(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		default: fputc(*s, out);
		}
	}
}

enum mp_err mp_html_write(const struct mp_snapshot *snap,
			  const struct mp_html_opts *opts, FILE *out,
			  struct mp_html_stats *stats)
{
	if (!snap || !out)
		return MP_ERR_USAGE;
	struct ctx c = {.snap = snap, .opts = opts};
	if (opts)
		c.alloc = opts->alloc;
	struct mp_profile_opts po = {
		.by = MP_GROUP_LINE, .sort = MP_SORT_BYTES, .alloc = c.alloc};
	enum mp_err err = flame_build(snap, &c.alloc, &c.t, &c.fl);
	if (!err)
		err = mp_profile_build(snap, &po, &c.prof);
	if (!err)
		err = top_select(&c);
	if (!err) {
		const struct mp_meta *m = &snap->meta;
		const char *prog = m->argc && m->argv && m->argv[0] ? m->argv[0]
				   : m->exe			    ? m->exe
					    : "unknown program";
		char jh[64], ch[64];
		fprintf(out,
			"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
			"<meta charset=\"utf-8\">\n"
			"<meta http-equiv=\"Content-Security-Policy\" "
			"content=\"default-src 'none'; script-src '%s'; "
			"style-src '%s'; base-uri 'none'; form-action "
			"'none'\">\n"
			"<meta name=\"viewport\" content=\"width=device-width, "
			"initial-scale=1\">\n"
			"<meta name=\"generator\" content=\"memprof\">\n"
			"<title>",
			csp_hash(mp_html_js, jh), csp_hash(mp_html_css, ch));
		if (opts && opts->title) {
			html_text(out, opts->title);
		} else {
			fputs("memprof report: ", out);
			html_text(out, prog);
		}
		fprintf(out,
			"</title>\n<style>%s</style>\n</head>\n<body>\n"
			"<noscript>This report is drawn by its script: "
			"allow JavaScript to see it.</noscript>\n"
			"<script type=\"application/json\" "
			"id=\"memprof-data\">",
			mp_html_css);
		err = write_data(out, &c);
	}
	if (!err) {
		fprintf(out,
			"</script>\n<script>%s</script>\n</body>\n</html>\n",
			mp_html_js);
		if (fflush(out) != 0 || ferror(out))
			err = MP_ERR_IO;
	}
	if (!err && stats)
		*stats = c.stats;
	mp_leak_report_free(c.rep);
	free(c.top_keep);
	mp_profile_free(c.prof);
	flame_free(&c.fl);
	tables_free(&c.t);
	return err;
}
