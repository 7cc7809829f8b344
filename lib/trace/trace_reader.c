/*
 * trace_reader.c - reads, validates and writes back .memprof snapshots
 * (formats/snapshot.md), and owns the per-snapshot arena.
 *
 * Input is hostile (this file is fuzzed): every length is checked against
 * what remains, every count is bounded by the bytes left before anything is
 * allocated, and a bad file becomes an error with a message saying where,
 * never a crash, an abort or a huge allocation. Nothing here prints.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/common_format.h"
#include "common/common_leb.h"
#include "common/common_writer.h"
#include "trace/trace_internal.h"

/* Limits of formats/snapshot.md and of this reader. */
#define RAW_MAX ((uint64_t)1 << 30)
#define RAW_RATIO 1024
#define STACK_DEPTH_MAX 1024
#define SYM_FRAMES_MAX 256
#define BUILD_ID_MAX 64

/* The file's numbers are the API's (common_format.h, memprof_trace.h). */
_Static_assert(MP_GRPH_EDGE_INTERIOR == MP_EDGE_INTERIOR, "edge flag");
_Static_assert(MP_GRPH_ROOT_DATA == MP_ROOT_DATA &&
		       MP_GRPH_ROOT_STACK == MP_ROOT_STACK &&
		       MP_GRPH_ROOT_REGS == MP_ROOT_REGS &&
		       MP_GRPH_ROOT_TLS == MP_ROOT_TLS,
	       "root kinds");

/* ------------------------------------------------------------------ */
/* The arena                                                          */

#define CHUNK_SIZE (64 * 1024)
#define BIG_REQUEST (CHUNK_SIZE / 4)
#define ALIGN 16

struct chunk {
	struct chunk *next;
	size_t cap, used;
	_Alignas(ALIGN) unsigned char data[];
};

/* An unknown section, kept to be written back unchanged. */
struct kept {
	struct kept *next;
	uint32_t tag, flags;
	uint64_t raw_len;
	uint32_t raw_crc;
	const void *stored;
	uint64_t stored_len;
};

/* A range of addresses and the module that mp_snapshot_module() gives. */
struct modseg {
	uint64_t start, end;
	uint32_t module;
};

struct snap_priv {
	struct chunk *chunks; /* the head is the one being filled */
	struct kept *kept, **kept_tail;
	/* The module index built by the reader (index_modules), valid while
	 * snap->modules and nmodules are still the ones it was built for. */
	const struct mp_module *seg_modules;
	size_t seg_nmodules;
	struct modseg *segs; /* ascending, disjoint */
	size_t nsegs;
};

void *mp__alloc(struct mp_snapshot *snap, size_t n)
{
	struct snap_priv *pv = snap->priv;
	struct chunk *c = pv->chunks, *nc;

	if (n > SIZE_MAX - sizeof(*nc) - ALIGN)
		return NULL;
	n = n ? (n + ALIGN - 1) & ~(size_t)(ALIGN - 1) : ALIGN;
	if (c && c->cap - c->used >= n) {
		void *p = c->data + c->used;

		c->used += n;
		return p;
	}
	/*
	 * A big request gets a chunk of its own, linked behind the head so
	 * that the free space of the current chunk is not given up.
	 */
	if (n > BIG_REQUEST) {
		nc = calloc(1, sizeof(*nc) + n);
		if (!nc)
			return NULL;
		nc->cap = nc->used = n;
		if (c) {
			nc->next = c->next;
			c->next = nc;
		} else {
			pv->chunks = nc;
		}
		return nc->data;
	}
	nc = calloc(1, sizeof(*nc) + CHUNK_SIZE);
	if (!nc)
		return NULL;
	nc->cap = CHUNK_SIZE;
	nc->used = n;
	nc->next = c;
	pv->chunks = nc;
	return nc->data;
}

char *mp__strndup(struct mp_snapshot *snap, const char *s, size_t n)
{
	char *d;

	if (n == SIZE_MAX)
		return NULL;
	d = mp__alloc(snap, n + 1);
	if (d && n)
		memcpy(d, s, n);
	return d;
}

char *mp__strdup(struct mp_snapshot *snap, const char *s)
{
	return mp__strndup(snap, s, strlen(s));
}

struct mp_snapshot *mp__snapshot_new(void)
{
	struct mp_snapshot *snap = calloc(1, sizeof(*snap));
	struct snap_priv *pv = calloc(1, sizeof(*pv));

	if (!snap || !pv)
		goto fail;
	pv->kept_tail = &pv->kept;
	snap->priv = pv;
	snap->version_major = MP_VERSION_MAJOR;
	snap->version_minor = MP_VERSION_MINOR;
	/* argv is always a NULL-terminated array, even with no arguments. */
	snap->meta.argv = mp__alloc(snap, sizeof(char *));
	if (!snap->meta.argv)
		goto fail;
	return snap;
fail:
	if (snap && pv) {
		mp_snapshot_free(snap);
		return NULL;
	}
	free(snap);
	free(pv);
	return NULL;
}

void mp_snapshot_free(struct mp_snapshot *snap)
{
	struct snap_priv *pv;
	struct chunk *c, *next;

	if (!snap)
		return;
	pv = snap->priv;
	if (pv) {
		for (c = pv->chunks; c; c = next) {
			next = c->next;
			free(c);
		}
		free(pv);
	}
	free(snap);
}

enum mp_err mp__fail(struct mp_errinfo *ei, enum mp_err err, const char *fmt,
		     ...)
{
	va_list ap;

	if (ei) {
		va_start(ap, fmt);
		vsnprintf(ei->msg, sizeof(ei->msg), fmt, ap);
		va_end(ap);
	}
	return err;
}

const char *mp_strerror(enum mp_err err)
{
	switch (err) {
	case MP_OK: return "success";
	case MP_ERR_IO: return "input/output error";
	case MP_ERR_NOMEM: return "out of memory";
	case MP_ERR_NOT_SNAPSHOT: return "not a memprof snapshot";
	case MP_ERR_VERSION: return "unsupported format version";
	case MP_ERR_TRUNCATED: return "truncated file";
	case MP_ERR_CORRUPT: return "corrupt file";
	case MP_ERR_USAGE: return "invalid argument";
	case MP_ERR_SYMBOLS: return "symbolization failed";
	}
	return "unknown error";
}

/* ------------------------------------------------------------------ */
/* Section kinds                                                      */

enum {
	S_META,
	S_MODS,
	S_STKS,
	S_TRCS,
	S_BLKS,
	S_GRPH,
	S_TIME,
	S_SYMS,
	S_END,
	S_KNOWN
};

static const struct {
	uint32_t tag;
	const char *name;
	bool required;
	bool parsed; /* false: kept as bytes (none since 1.2) */
} kinds[S_KNOWN] = {
	[S_META] = {MP_SEC_META, "meta", true, true},
	[S_MODS] = {MP_SEC_MODULES, "modules", true, true},
	[S_STKS] = {MP_SEC_STACKS, "stacks", true, true},
	[S_TRCS] = {MP_SEC_TRACES, "traces", true, true},
	[S_BLKS] = {MP_SEC_BLOCKS, "blocks", false, true},
	[S_GRPH] = {MP_SEC_GRAPH, "graph", false, true},
	[S_TIME] = {MP_SEC_TIMELINE, "timeline", false, true},
	[S_SYMS] = {MP_SEC_SYMBOLS, "symbols", false, true},
	[S_END] = {MP_SEC_END, "end", true, true},
};

static int kind_of(uint32_t tag)
{
	int i;

	for (i = 0; i < S_KNOWN; i++)
		if (kinds[i].tag == tag)
			return i;
	return -1;
}

struct tagname {
	char s[5];
};

/* The four characters of a tag, '?' for any that is not printable. */
static struct tagname tag_name(uint32_t tag)
{
	struct tagname t;
	int i;

	for (i = 0; i < 4; i++) {
		unsigned char c = (unsigned char)(tag >> (8 * i));

		t.s[i] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
	}
	t.s[4] = '\0';
	return t;
}

/* Name for messages; buf holds the four chars of an unknown tag. */
static const char *sec_name(uint32_t tag, struct tagname *buf)
{
	int k = kind_of(tag);

	if (k >= 0)
		return kinds[k].name;
	*buf = tag_name(tag);
	return buf->s;
}

static bool tag_printable(uint32_t tag)
{
	int i;

	for (i = 0; i < 4; i++) {
		unsigned char c = (unsigned char)(tag >> (8 * i));

		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Reading the file structure                                         */

struct sec {
	bool present;
	uint32_t tag, flags;
	uint64_t stored_len, raw_len;
	uint32_t raw_crc;
	size_t hdr_off;
	const unsigned char *stored;
	const unsigned char *raw; /* stored, or raw_buf */
	unsigned char *raw_buf;	  /* malloc'd when the payload was inflated */
};

struct rd {
	struct mp_snapshot *snap;
	struct mp_errinfo *ei;
	enum mp_err err;
	struct sec secs[S_KNOWN];
};

static enum mp_err nomem(struct rd *r)
{
	r->err = mp__fail(r->ei, MP_ERR_NOMEM, "out of memory");
	return r->err;
}

/*
 * Inflates a section's payload and checks its size and CRC. With keep, the
 * raw bytes end up in s->raw_buf; without, they only pass through a
 * scratch buffer (sections this reader does not parse). The output buffer
 * grows with what the stream really yields, so a lying raw_len costs
 * nothing.
 */
static enum mp_err inflate_sec(struct rd *r, struct sec *s, bool keep)
{
	struct tagname tn;
	const char *name = sec_name(s->tag, &tn);
	z_stream zs;
	unsigned char *out = NULL;
	size_t cap, want = (size_t)s->raw_len + 1;
	const unsigned char *in = s->stored;
	uint64_t in_left = s->stored_len, total = 0;
	uint32_t crc = (uint32_t)crc32(0, Z_NULL, 0);
	const char *what = NULL;
	int ret, stalls = 0;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit(&zs) != Z_OK)
		return nomem(r);
	if (keep) {
		cap = s->stored_len < SIZE_MAX / 4 ? (size_t)s->stored_len * 4
						   : SIZE_MAX;
		if (cap < 64 * 1024)
			cap = 64 * 1024;
	} else {
		cap = 64 * 1024;
	}
	if (cap > want)
		cap = want;
	out = malloc(cap);
	if (!out)
		goto oom;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	for (;;) {
		if (zs.avail_in == 0 && in_left) {
			uInt n = in_left > (1u << 30) ? (1u << 30)
						      : (uInt)in_left;

			zs.next_in = (unsigned char *)in;
			zs.avail_in = n;
			in += n;
			in_left -= n;
		}
		if (zs.avail_out == 0) {
			if (keep) {
				size_t ncap = cap * 2 < want ? cap * 2 : want;
				unsigned char *nout;

				if (cap == want) {
					what = "decompresses to more than its "
					       "raw length";
					break;
				}
				nout = realloc(out, ncap);
				if (!nout)
					goto oom;
				out = nout;
				zs.next_out = out + cap;
				zs.avail_out = (uInt)(ncap - cap);
				cap = ncap;
			} else {
				crc = (uint32_t)crc32(crc, out, (uInt)cap);
				total += cap;
				if (total > s->raw_len) {
					what = "decompresses to more than its "
					       "raw length";
					break;
				}
				zs.next_out = out;
				zs.avail_out = (uInt)cap;
			}
		}
		ret = inflate(&zs, Z_NO_FLUSH);
		if (ret == Z_STREAM_END)
			break;
		if (ret == Z_MEM_ERROR)
			goto oom;
		if (ret == Z_BUF_ERROR) {
			if (zs.avail_in == 0 && in_left == 0) {
				what = "compressed data ends early";
				break;
			}
			/* Cannot happen with room on both sides; do not spin.
			 */
			if (zs.avail_out && zs.avail_in && ++stalls > 2) {
				what = "compressed data does not progress";
				break;
			}
			continue;
		}
		if (ret != Z_OK) {
			what = "bad compressed data";
			break;
		}
	}
	if (!what && (zs.avail_in || in_left))
		what = "compressed data ends before its stored length";
	if (!what) {
		size_t n = keep ? (size_t)zs.total_out : cap - zs.avail_out;

		if (!keep) {
			crc = (uint32_t)crc32(crc, out, (uInt)n);
			total += n;
		} else {
			total = n;
		}
		if (total != s->raw_len)
			what = "decompressed size differs from its raw length";
		else if (keep)
			crc = (uint32_t)crc32_z(0, out, n);
	}
	inflateEnd(&zs);
	if (what) {
		free(out);
		r->err = mp__fail(
			r->ei, MP_ERR_CORRUPT,
			"corrupt section '%s' (header at byte %zu): %s", name,
			s->hdr_off, what);
		return r->err;
	}
	if (crc != s->raw_crc) {
		free(out);
		r->err = mp__fail(
			r->ei, MP_ERR_CORRUPT,
			"bad checksum in section '%s' (header at byte %zu)",
			name, s->hdr_off);
		return r->err;
	}
	if (keep) {
		s->raw_buf = out;
		s->raw = out;
	} else {
		free(out);
	}
	return MP_OK;
oom:
	inflateEnd(&zs);
	free(out);
	return nomem(r);
}

static enum mp_err keep_section(struct rd *r, const struct sec *s)
{
	struct snap_priv *pv = r->snap->priv;
	struct kept *k = mp__alloc(r->snap, sizeof(*k));
	void *copy = mp__alloc(r->snap, (size_t)s->stored_len);

	if (!k || !copy)
		return nomem(r);
	if (s->stored_len)
		memcpy(copy, s->stored, (size_t)s->stored_len);
	k->tag = s->tag;
	k->flags = s->flags;
	k->raw_len = s->raw_len;
	k->raw_crc = s->raw_crc;
	k->stored = copy;
	k->stored_len = s->stored_len;
	*pv->kept_tail = k;
	pv->kept_tail = &k->next;
	return MP_OK;
}

/* Walks the headers, checks every checksum, inflates what is parsed. */
static enum mp_err read_sections(struct rd *r, const unsigned char *d,
				 size_t len)
{
	size_t pos = MP_FILE_HEADER_LEN;

	for (;;) {
		struct sec s;
		struct tagname tn;
		const char *name;
		int k;

		memset(&s, 0, sizeof(s));
		if (pos == len)
			return r->err = mp__fail(
				       r->ei, MP_ERR_TRUNCATED,
				       "no END section: the file is truncated");
		if (len - pos < MP_SECTION_HEADER_LEN) {
			if (len - pos >= 4 &&
			    tag_printable(mp_le_get32(d + pos)))
				return r->err = mp__fail(
					       r->ei, MP_ERR_TRUNCATED,
					       "truncated in section '%s' at "
					       "byte %zu",
					       sec_name(mp_le_get32(d + pos),
							&tn),
					       len);
			return r->err = mp__fail(r->ei, MP_ERR_TRUNCATED,
						 "truncated in a section "
						 "header at byte %zu",
						 len);
		}
		if (mp_le_get32(d + pos + 28) !=
		    (uint32_t)crc32(0, d + pos, 28))
			return r->err = mp__fail(r->ei, MP_ERR_CORRUPT,
						 "bad checksum in section "
						 "header at byte %zu",
						 pos);
		s.hdr_off = pos;
		s.tag = mp_le_get32(d + pos);
		s.flags = mp_le_get32(d + pos + 4);
		s.stored_len = mp_le_get64(d + pos + 8);
		s.raw_len = mp_le_get64(d + pos + 16);
		s.raw_crc = mp_le_get32(d + pos + 24);
		pos += MP_SECTION_HEADER_LEN;
		if (!tag_printable(s.tag))
			return r->err = mp__fail(r->ei, MP_ERR_CORRUPT,
						 "corrupt section header at "
						 "byte %zu: tag is not ASCII",
						 s.hdr_off);
		name = sec_name(s.tag, &tn);
		k = kind_of(s.tag);
		if (s.flags & ~MP_SECTION_ZLIB)
			return r->err = mp__fail(
				       r->ei, MP_ERR_CORRUPT,
				       "corrupt section '%s' (header at byte "
				       "%zu): unknown flags 0x%x",
				       name, s.hdr_off, (unsigned)s.flags);
		if (k >= 0 && r->secs[k].present)
			return r->err = mp__fail(
				       r->ei, MP_ERR_CORRUPT,
				       "duplicate section '%s' at byte %zu",
				       name, s.hdr_off);
		if (s.stored_len > len - pos)
			return r->err = mp__fail(
				       r->ei, MP_ERR_TRUNCATED,
				       "truncated in section '%s' at byte %zu",
				       name, len);
		if (!(s.flags & MP_SECTION_ZLIB)
			    ? s.raw_len != s.stored_len
			    : s.raw_len > RAW_MAX ||
				      s.raw_len / RAW_RATIO > s.stored_len)
			return r->err = mp__fail(
				       r->ei, MP_ERR_CORRUPT,
				       "corrupt section '%s' (header at byte "
				       "%zu): impossible raw length %llu",
				       name, s.hdr_off,
				       (unsigned long long)s.raw_len);
		s.stored = d + pos;
		s.present = true;
		pos += (size_t)s.stored_len;

		if (k == S_END) {
			if (s.flags || s.stored_len || s.raw_crc)
				return r->err = mp__fail(
					       r->ei, MP_ERR_CORRUPT,
					       "corrupt section 'end' (header "
					       "at byte %zu): not empty",
					       s.hdr_off);
			if (pos != len)
				return r->err = mp__fail(r->ei, MP_ERR_CORRUPT,
							 "data after END "
							 "section at byte %zu",
							 pos);
			r->secs[k] = s;
			return MP_OK;
		}
		if (s.flags & MP_SECTION_ZLIB) {
			if (inflate_sec(r, &s, k >= 0 && kinds[k].parsed))
				return r->err;
		} else {
			s.raw = s.stored;
			if ((uint32_t)crc32_z(0, s.raw, (size_t)s.raw_len) !=
			    s.raw_crc)
				return r->err = mp__fail(
					       r->ei, MP_ERR_CORRUPT,
					       "bad checksum in section '%s' "
					       "(header at byte %zu)",
					       name, s.hdr_off);
		}
		if (k >= 0)
			r->secs[k] = s;
		if ((k < 0 || !kinds[k].parsed) && keep_section(r, &s))
			return r->err;
	}
}

/* ------------------------------------------------------------------ */
/* Decoding payloads                                                  */

/* A cursor over one section's raw bytes. */
struct cur {
	struct rd *r;
	const char *name;
	const unsigned char *p;
	size_t len, pos;
	size_t at; /* where the last value read began, for messages */
};

static bool bad(struct cur *c, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool bad(struct cur *c, size_t at, const char *fmt, ...)
{
	char what[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	c->r->err = mp__fail(c->r->ei, MP_ERR_CORRUPT,
			     "corrupt section '%s': %s at byte %zu of its data",
			     c->name, what, at);
	return false;
}

/* Outputs are zeroed on failure too: callers stop at once anyway. */
static bool get_u(struct cur *c, uint64_t *v)
{
	int n;

	*v = 0;
	n = mp_leb_get_u(c->p + c->pos, c->len - c->pos, v);

	if (n == 0)
		return bad(c, c->len, "unexpected end of data");
	if (n < 0)
		return bad(c, c->pos, "number does not fit 64 bits");
	c->at = c->pos;
	c->pos += (size_t)n;
	return true;
}

static bool get_s(struct cur *c, int64_t *v)
{
	int n;

	*v = 0;
	n = mp_leb_get_s(c->p + c->pos, c->len - c->pos, v);

	if (n == 0)
		return bad(c, c->len, "unexpected end of data");
	if (n < 0)
		return bad(c, c->pos, "number does not fit 64 bits");
	c->at = c->pos;
	c->pos += (size_t)n;
	return true;
}

/* A str; text strings must not hold NUL (formats/snapshot.md). */
static bool get_str(struct cur *c, const unsigned char **s, size_t *n,
		    bool text)
{
	uint64_t v;
	size_t at = c->pos;

	*s = NULL;
	*n = 0;
	if (!get_u(c, &v))
		return false;
	if (v > MP_STR_MAX)
		return bad(c, at, "string of %llu bytes is too long",
			   (unsigned long long)v);
	if (v > c->len - c->pos)
		return bad(c, c->len, "unexpected end of data");
	*s = c->p + c->pos;
	*n = (size_t)v;
	if (text && memchr(*s, 0, *n))
		return bad(c, at, "NUL byte in a string");
	c->pos += (size_t)v;
	c->at = at;
	return true;
}

/* Reads a count of items taking at least min bytes each. */
static bool get_count(struct cur *c, size_t min, size_t *count)
{
	uint64_t v;

	*count = 0;
	if (!get_u(c, &v))
		return false;
	if (v > (c->len - c->pos) / min)
		return bad(c, c->at, "count %llu exceeds the data",
			   (unsigned long long)v);
	*count = (size_t)v;
	return true;
}

static bool at_end(struct cur *c)
{
	if (c->pos != c->len)
		return bad(c, c->pos, "%zu bytes left over", c->len - c->pos);
	return true;
}

static void *alloc_array(struct cur *c, size_t n, size_t size)
{
	void *p = NULL;

	if (!size || n <= SIZE_MAX / size)
		p = mp__alloc(c->r->snap, n * size);
	if (!p)
		nomem(c->r);
	return p;
}

static char *dup_str(struct cur *c, const unsigned char *s, size_t n)
{
	char *d = mp__strndup(c->r->snap, (const char *)s, n);

	if (!d)
		nomem(c->r);
	return d;
}

static void cur_init(struct cur *c, struct rd *r, int kind)
{
	memset(c, 0, sizeof(*c));
	c->r = r;
	c->name = kinds[kind].name;
	c->p = r->secs[kind].raw;
	c->len = (size_t)r->secs[kind].raw_len;
}

enum meta_type { M_UINT = MP_META_UINT, M_STR = MP_META_STR, M_ARGV };

static const struct {
	const char *key;
	enum meta_type type;
	size_t off;
} meta_keys[] = {
	{"pid", M_UINT, offsetof(struct mp_meta, pid)},
	{"ppid", M_UINT, offsetof(struct mp_meta, ppid)},
	{"exe", M_STR, offsetof(struct mp_meta, exe)},
	{"argv", M_ARGV, offsetof(struct mp_meta, argv)},
	{"start_ns", M_UINT, offsetof(struct mp_meta, start_ns)},
	{"snapshot_ns", M_UINT, offsetof(struct mp_meta, snapshot_ns)},
	{"peak_ns", M_UINT, offsetof(struct mp_meta, peak_ns)},
	{"trigger", M_STR, offsetof(struct mp_meta, trigger)},
	{"name", M_STR, offsetof(struct mp_meta, name)},
	{"sample_rate", M_UINT, offsetof(struct mp_meta, sample_rate)},
	{"depth", M_UINT, offsetof(struct mp_meta, depth)},
	{"seq", M_UINT, offsetof(struct mp_meta, seq)},
	{"live_bytes", M_UINT, offsetof(struct mp_meta, totals.live_bytes)},
	{"live_blocks", M_UINT, offsetof(struct mp_meta, totals.live_blocks)},
	{"peak_bytes", M_UINT, offsetof(struct mp_meta, totals.peak_bytes)},
	{"allocs", M_UINT, offsetof(struct mp_meta, totals.allocs)},
	{"frees", M_UINT, offsetof(struct mp_meta, totals.frees)},
	{"alloc_bytes", M_UINT, offsetof(struct mp_meta, totals.alloc_bytes)},
};

#define NMETA (sizeof(meta_keys) / sizeof(meta_keys[0]))

static bool set_argv(struct cur *c, struct mp_meta *m, const unsigned char *s,
		     size_t n, size_t at)
{
	size_t argc = 0, i, j;
	char *copy;
	char **argv;

	if (n && s[n - 1] != '\0')
		return bad(c, at, "argv does not end with NUL");
	for (i = 0; i < n; i++)
		argc += s[i] == '\0';
	copy = dup_str(c, s, n);
	argv = copy ? alloc_array(c, argc + 1, sizeof(char *)) : NULL;
	if (!argv)
		return false;
	for (i = 0, j = 0; j < argc; j++) {
		argv[j] = copy + i;
		i += strlen(copy + i) + 1;
	}
	m->argv = argv;
	m->argc = argc;
	return true;
}

static bool parse_meta(struct rd *r)
{
	struct mp_meta *m = &r->snap->meta;
	uint32_t seen = 0;
	struct cur c;

	cur_init(&c, r, S_META);
	while (c.pos < c.len) {
		const unsigned char *key, *s = NULL;
		size_t klen, n = 0, i, at;
		uint64_t type, v = 0;

		if (!get_str(&c, &key, &klen, true))
			return false;
		at = c.at;
		if (!get_u(&c, &type))
			return false;
		if (type == MP_META_UINT) {
			if (!get_u(&c, &v))
				return false;
		} else if (type == MP_META_STR) {
			/* argv holds NULs; the other strings are checked below.
			 */
			if (!get_str(&c, &s, &n, false))
				return false;
		} else {
			return bad(&c, c.at, "unknown value type %llu",
				   (unsigned long long)type);
		}
		for (i = 0; i < NMETA; i++)
			if (strlen(meta_keys[i].key) == klen &&
			    !memcmp(meta_keys[i].key, key, klen))
				break;
		if (i == NMETA)
			continue; /* a key of a later version */
		if ((meta_keys[i].type == M_UINT) != (type == MP_META_UINT))
			return bad(&c, at, "key '%s' has the wrong type",
				   meta_keys[i].key);
		if (seen & (1u << i))
			return bad(&c, at, "duplicate key '%s'",
				   meta_keys[i].key);
		seen |= 1u << i;
		switch (meta_keys[i].type) {
		case M_UINT:
			*(uint64_t *)((char *)m + meta_keys[i].off) = v;
			break;
		case M_STR:
			if (memchr(s, 0, n))
				return bad(&c, at, "NUL byte in key '%s'",
					   meta_keys[i].key);
			if (!(*(char **)((char *)m + meta_keys[i].off) =
				      dup_str(&c, s, n)))
				return false;
			break;
		case M_ARGV:
			if (!set_argv(&c, m, s, n, at))
				return false;
			break;
		}
	}
	return true;
}

static bool parse_modules(struct rd *r)
{
	struct mp_snapshot *snap = r->snap;
	struct cur c;
	size_t i, n;

	cur_init(&c, r, S_MODS);
	/* path, base, start, end, build-id: at least a byte each. */
	if (!get_count(&c, 5, &n))
		return false;
	snap->modules = alloc_array(&c, n, sizeof(*snap->modules));
	if (!snap->modules)
		return false;
	for (i = 0; i < n; i++) {
		struct mp_module *mod = &snap->modules[i];
		const unsigned char *s;
		size_t len;

		if (!get_str(&c, &s, &len, true))
			return false;
		if (!(mod->path = dup_str(&c, s, len)))
			return false;
		if (!get_u(&c, &mod->base) || !get_u(&c, &mod->start) ||
		    !get_u(&c, &mod->end))
			return false;
		if (mod->end < mod->start)
			return bad(&c, c.at, "module %zu ends before it starts",
				   i);
		if (!get_str(&c, &s, &len, false))
			return false;
		if (len > BUILD_ID_MAX)
			return bad(&c, c.at, "build-id of %zu bytes", len);
		memcpy(mod->build_id, s, len);
		mod->build_id_len = (uint32_t)len;
	}
	snap->nmodules = n;
	return at_end(&c);
}

static bool parse_stacks(struct rd *r)
{
	struct mp_snapshot *snap = r->snap;
	uint64_t prev_first = 0;
	struct cur c;
	size_t i, n;

	cur_init(&c, r, S_STKS);
	if (!get_count(&c, 1, &n))
		return false;
	snap->stacks = alloc_array(&c, n, sizeof(*snap->stacks));
	if (!snap->stacks)
		return false;
	for (i = 0; i < n; i++) {
		struct mp_stack *st = &snap->stacks[i];
		size_t depth, j;

		if (!get_count(&c, 1, &depth))
			return false;
		if (depth > STACK_DEPTH_MAX)
			return bad(&c, c.at, "stack depth %zu exceeds %d",
				   depth, STACK_DEPTH_MAX);
		st->depth = (uint32_t)depth;
		if (!depth)
			continue;
		st->pcs = alloc_array(&c, depth, sizeof(*st->pcs));
		if (!st->pcs)
			return false;
		for (j = 0; j < depth; j++) {
			uint64_t base = j ? st->pcs[j - 1] : prev_first;
			int64_t d;

			if (!get_s(&c, &d))
				return false;
			/* Deltas wrap modulo 2^64 (formats/snapshot.md). */
			st->pcs[j] = base + (uint64_t)d;
		}
		prev_first = st->pcs[0];
	}
	snap->nstacks = n;
	return at_end(&c);
}

static bool parse_traces(struct rd *r)
{
	struct mp_snapshot *snap = r->snap;
	struct cur c;
	size_t i, n;

	cur_init(&c, r, S_TRCS);
	if (!get_count(&c, 6, &n))
		return false;
	snap->traces = alloc_array(&c, n, sizeof(*snap->traces));
	if (!snap->traces)
		return false;
	for (i = 0; i < n; i++) {
		struct mp_trace *t = &snap->traces[i];
		uint64_t stack;

		if (!get_u(&c, &stack))
			return false;
		if (stack >= snap->nstacks)
			return bad(&c, c.at, "stack index %llu out of range",
				   (unsigned long long)stack);
		t->stack = (uint32_t)stack;
		if (!get_u(&c, &t->live_bytes) || !get_u(&c, &t->live_blocks) ||
		    !get_u(&c, &t->allocs) || !get_u(&c, &t->alloc_bytes) ||
		    !get_u(&c, &t->peak_bytes))
			return false;
	}
	snap->ntraces = n;
	return at_end(&c);
}

static bool parse_blocks(struct rd *r)
{
	struct mp_snapshot *snap = r->snap;
	uint64_t addr = 0;
	struct cur c;
	size_t i, n;

	cur_init(&c, r, S_BLKS);
	if (!get_count(&c, 3, &n))
		return false;
	snap->blocks = alloc_array(&c, n, sizeof(*snap->blocks));
	if (!snap->blocks)
		return false;
	for (i = 0; i < n; i++) {
		struct mp_block *b = &snap->blocks[i];
		uint64_t d, trace;

		if (!get_u(&c, &d))
			return false;
		if (i && d == 0)
			return bad(&c, c.at, "block addresses not ascending");
		if (d > UINT64_MAX - addr)
			return bad(&c, c.at, "block address overflows");
		addr += d;
		b->addr = addr;
		if (!get_u(&c, &b->size) || !get_u(&c, &trace))
			return false;
		if (trace >= snap->ntraces)
			return bad(&c, c.at, "trace index %llu out of range",
				   (unsigned long long)trace);
		b->trace = (uint32_t)trace;
	}
	snap->nblocks = n;
	snap->has_blocks = true;
	return at_end(&c);
}

/*
 * The out-edges of blocks 0 .. n-1 (GRPH). Checks every rule; with start
 * and edges also stores them (the second pass, over data the first one
 * accepted). *nedges is the number of edges.
 */
static bool graph_edges(struct cur *c, size_t n, uint64_t *start,
			struct mp_edge *edges, size_t *nedges)
{
	size_t i, j, total = 0;

	for (i = 0; i < n; i++) {
		uint64_t prev = 0;
		size_t k;

		if (start)
			start[i] = total;
		/* Each edge takes a byte at least. */
		if (!get_count(c, 1, &k))
			return false;
		for (j = 0; j < k; j++) {
			uint64_t v, d, to;
			uint32_t flags;

			if (!get_u(c, &v))
				return false;
			d = v >> MP_GRPH_EDGE_SHIFT;
			flags = (uint32_t)(v & MP_GRPH_EDGE_FLAGS);
			if (j && d == 0)
				return bad(c, c->at,
					   "edge targets of block %zu not "
					   "ascending",
					   i);
			/* prev < n and d < 2^61: the sum does not wrap. */
			to = prev + d;
			if (to >= n)
				return bad(c, c->at,
					   "edge target %llu out of range",
					   (unsigned long long)to);
			if (flags & ~MP_GRPH_EDGE_KNOWN)
				return bad(c, c->at, "reserved edge flags 0x%x",
					   (unsigned)flags);
			if (edges) {
				edges[total].to = (uint32_t)to;
				edges[total].flags = flags;
			}
			total++;
			prev = to;
		}
	}
	if (start)
		start[n] = total;
	*nedges = total;
	return true;
}

static bool parse_graph(struct rd *r)
{
	struct mp_snapshot *snap = r->snap;
	struct mp_graph *g = &snap->graph;
	struct cur c;
	uint64_t v, threads, unscanned, prev = 0;
	size_t i, nroots, nedges, pos, done;

	if (!snap->has_blocks) {
		r->err = mp__fail(r->ei, MP_ERR_CORRUPT,
				  "corrupt section 'graph' (header at byte "
				  "%zu): graph without blocks",
				  r->secs[S_GRPH].hdr_off);
		return false;
	}
	cur_init(&c, r, S_GRPH);
	if (!get_u(&c, &v))
		return false;
	if (v != snap->nblocks)
		return bad(&c, c.at, "%llu blocks in the graph, %zu in blocks",
			   (unsigned long long)v, snap->nblocks);
	if (!get_u(&c, &threads))
		return false;
	if (threads > UINT32_MAX)
		return bad(&c, c.at, "thread count %llu too large",
			   (unsigned long long)threads);
	if (!get_u(&c, &unscanned))
		return false;
	if (unscanned > UINT32_MAX)
		return bad(&c, c.at, "thread count %llu too large",
			   (unsigned long long)unscanned);

	/* block delta, start kinds, interior kinds: a byte each at least. */
	if (!get_count(&c, 3, &nroots))
		return false;
	g->roots = alloc_array(&c, nroots, sizeof(*g->roots));
	if (!g->roots)
		return false;
	for (i = 0; i < nroots; i++) {
		struct mp_root_ref *rr = &g->roots[i];
		uint64_t d, sk, ik;

		if (!get_u(&c, &d))
			return false;
		if (i && d == 0)
			return bad(&c, c.at, "root blocks not ascending");
		if (d > UINT64_MAX - prev)
			return bad(&c, c.at, "root block out of range");
		if (prev + d >= snap->nblocks)
			return bad(&c, c.at, "root block %llu out of range",
				   (unsigned long long)(prev + d));
		prev += d;
		rr->block = (uint32_t)prev;
		if (!get_u(&c, &sk) || !get_u(&c, &ik))
			return false;
		if ((sk | ik) & ~(uint64_t)MP_GRPH_ROOT_KNOWN)
			return bad(&c, c.at, "unknown root kinds 0x%llx",
				   (unsigned long long)(sk | ik));
		if (!sk && !ik)
			return bad(&c, c.at, "root of no kind");
		rr->start_kinds = (uint8_t)sk;
		rr->interior_kinds = (uint8_t)ik;
	}

	/* Validate and count, then allocate exactly and fill. */
	pos = c.pos;
	if (!graph_edges(&c, snap->nblocks, NULL, NULL, &nedges) || !at_end(&c))
		return false;
	g->edge_start =
		alloc_array(&c, snap->nblocks + 1, sizeof(*g->edge_start));
	if (!g->edge_start)
		return false;
	g->edges = alloc_array(&c, nedges, sizeof(*g->edges));
	if (!g->edges)
		return false;
	c.pos = pos;
	if (!graph_edges(&c, snap->nblocks, g->edge_start, g->edges, &done))
		return false;
	g->nedges = nedges;
	g->nroots = nroots;
	g->threads = (uint32_t)threads;
	g->threads_unscanned = (uint32_t)unscanned;
	snap->has_graph = true;
	return true;
}

static bool get_strref(struct cur *c, char **strs, size_t nstrs,
		       const char **out)
{
	uint64_t v;

	if (!get_u(c, &v))
		return false;
	if (v > nstrs)
		return bad(c, c->at, "string reference %llu out of range",
			   (unsigned long long)v);
	*out = strs[v];
	return true;
}

static bool parse_symbols(struct rd *r)
{
	struct mp_snapshot *snap = r->snap;
	uint64_t pc = 0;
	char **strs;
	struct cur c;
	size_t i, n, nstrs;

	cur_init(&c, r, S_SYMS);
	if (!get_count(&c, 1, &nstrs))
		return false;
	/* strs[0] is "unknown", so that a reference indexes directly. */
	strs = alloc_array(&c, nstrs + 1, sizeof(*strs));
	if (!strs)
		return false;
	for (i = 1; i <= nstrs; i++) {
		const unsigned char *s;
		size_t len;

		if (!get_str(&c, &s, &len, true) ||
		    !(strs[i] = dup_str(&c, s, len)))
			return false;
	}
	if (!get_count(&c, 3, &n))
		return false;
	snap->symbols = alloc_array(&c, n, sizeof(*snap->symbols));
	if (!snap->symbols)
		return false;
	for (i = 0; i < n; i++) {
		struct mp_symbol *sym = &snap->symbols[i];
		uint64_t d, mod;
		size_t nframes, j;

		if (!get_u(&c, &d))
			return false;
		if (i && d == 0)
			return bad(&c, c.at, "symbol pcs not ascending");
		if (d > UINT64_MAX - pc)
			return bad(&c, c.at, "symbol pc overflows");
		pc += d;
		sym->pc = pc;
		if (!get_u(&c, &mod))
			return false;
		if (mod > snap->nmodules)
			return bad(&c, c.at,
				   "module reference %llu out of range",
				   (unsigned long long)mod);
		sym->module = mod ? (uint32_t)(mod - 1) : UINT32_MAX;
		if (!get_count(&c, 3, &nframes))
			return false;
		if (nframes > SYM_FRAMES_MAX)
			return bad(&c, c.at, "%zu frames exceed %d", nframes,
				   SYM_FRAMES_MAX);
		sym->nframes = (uint32_t)nframes;
		if (!nframes)
			continue;
		sym->frames = alloc_array(&c, nframes, sizeof(*sym->frames));
		if (!sym->frames)
			return false;
		for (j = 0; j < nframes; j++) {
			struct mp_frame *f = &sym->frames[j];
			uint64_t line;

			if (!get_strref(&c, strs, nstrs, &f->function) ||
			    !get_strref(&c, strs, nstrs, &f->file) ||
			    !get_u(&c, &line))
				return false;
			if (line > UINT32_MAX)
				return bad(&c, c.at, "line number too large");
			f->line = (uint32_t)line;
		}
	}
	snap->nsymbols = n;
	snap->has_symbols = true;
	return at_end(&c);
}

/*
 * One time of TIME: a delta from *t (the previous time, or META start_ns),
 * whose sum must not wrap, so that times never go back.
 */
static bool get_time(struct cur *c, uint64_t *t, const char *what)
{
	uint64_t d;

	if (!get_u(c, &d))
		return false;
	if (d > UINT64_MAX - *t)
		return bad(c, c->at, "%s time overflows", what);
	*t += d;
	return true;
}

static bool parse_timeline(struct rd *r)
{
	struct mp_snapshot *snap = r->snap;
	struct mp_timeline *tl = &snap->timeline;
	uint64_t t;
	struct cur c;
	size_t i, n;

	cur_init(&c, r, S_TIME);
	if (!get_u(&c, &tl->interval_ns))
		return false;
	/* time, live bytes, live blocks: a byte each at least. */
	if (!get_count(&c, 3, &n))
		return false;
	tl->samples = alloc_array(&c, n, sizeof(*tl->samples));
	if (!tl->samples)
		return false;
	t = snap->meta.start_ns;
	for (i = 0; i < n; i++) {
		struct mp_sample *sm = &tl->samples[i];

		if (!get_time(&c, &t, "sample"))
			return false;
		sm->ns = t;
		if (!get_u(&c, &sm->live_bytes) || !get_u(&c, &sm->live_blocks))
			return false;
	}
	tl->nsamples = n;
	/* seq, time: a byte each at least. */
	if (!get_count(&c, 2, &n))
		return false;
	tl->marks = alloc_array(&c, n, sizeof(*tl->marks));
	if (!tl->marks)
		return false;
	t = snap->meta.start_ns;
	for (i = 0; i < n; i++) {
		struct mp_mark *mk = &tl->marks[i];

		if (!get_u(&c, &mk->seq) || !get_time(&c, &t, "mark"))
			return false;
		mk->ns = t;
	}
	tl->nmarks = n;
	snap->has_timeline = true;
	return at_end(&c);
}

/*
 * The module index. mp_snapshot_module() answers for every return address
 * of every stack (`top`, `diff`, exports), so a scan of the modules would
 * make a small crafted file (100,000 modules, as many pcs) cost minutes.
 * Modules may overlap in a file (nothing forbids it); the lookup then
 * gives the first in file order, as a scan would. The index cuts the
 * address space at every module boundary and gives each piece the lowest
 * module number covering it: a sweep over the boundaries with a min-heap
 * of the modules started so far, dropping those that ended when they come
 * to the top. O(n log n).
 */
static int cmp_u64p(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_by_start(const void *a, const void *b, void *ctx)
{
	const struct mp_module *m = ctx;
	uint64_t x = m[*(const uint32_t *)a].start;
	uint64_t y = m[*(const uint32_t *)b].start;

	return x < y ? -1 : x > y;
}

static void heap_push(uint32_t *h, size_t *n, uint32_t v)
{
	size_t i = (*n)++;

	for (; i && h[(i - 1) / 2] > v; i = (i - 1) / 2)
		h[i] = h[(i - 1) / 2];
	h[i] = v;
}

static void heap_pop(uint32_t *h, size_t *n)
{
	uint32_t v = h[--*n];
	size_t i = 0, c;

	while ((c = 2 * i + 1) < *n) {
		if (c + 1 < *n && h[c + 1] < h[c])
			c++;
		if (v <= h[c])
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = v;
}

static bool index_modules(struct rd *r)
{
	struct mp_snapshot *snap = r->snap;
	struct snap_priv *pv = snap->priv;
	const struct mp_module *m = snap->modules;
	size_t n = 0, nb = 0, nheap = 0, next = 0, nsegs = 0, i, j;
	uint64_t *bounds;
	uint32_t *order, *heap;
	struct modseg *segs;

	for (i = 0; i < snap->nmodules; i++)
		n += m[i].start < m[i].end;
	/* n is below the file's size / 5: none of these sizes overflows. */
	bounds = malloc((2 * n + 1) * sizeof(*bounds));
	order = malloc((n + 1) * sizeof(*order));
	heap = malloc((n + 1) * sizeof(*heap));
	segs = mp__alloc(snap, (2 * n + 1) * sizeof(*segs));
	if (!bounds || !order || !heap || !segs) {
		free(bounds);
		free(order);
		free(heap);
		nomem(r);
		return false;
	}
	for (i = 0, j = 0; i < snap->nmodules; i++) {
		if (m[i].start < m[i].end) {
			bounds[nb++] = m[i].start;
			bounds[nb++] = m[i].end;
			order[j++] = (uint32_t)i;
		}
	}
	qsort(bounds, nb, sizeof(*bounds), cmp_u64p);
	qsort_r(order, n, sizeof(*order), cmp_by_start, (void *)m);
	for (i = 0; i + 1 < nb; i++) {
		uint64_t lo = bounds[i], hi = bounds[i + 1];

		if (lo == hi)
			continue;
		while (next < n && m[order[next]].start <= lo)
			heap_push(heap, &nheap, order[next++]);
		while (nheap && m[heap[0]].end <= lo)
			heap_pop(heap, &nheap);
		if (!nheap)
			continue;
		/* heap[0] started at or before lo and ends after it: at a
		 * boundary, so at hi or later. */
		if (nsegs && segs[nsegs - 1].end == lo &&
		    segs[nsegs - 1].module == heap[0])
			segs[nsegs - 1].end = hi;
		else
			segs[nsegs++] = (struct modseg){lo, hi, heap[0]};
	}
	free(bounds);
	free(order);
	free(heap);
	pv->segs = segs;
	pv->nsegs = nsegs;
	pv->seg_modules = snap->modules;
	pv->seg_nmodules = snap->nmodules;
	return true;
}

static enum mp_err parse_file(struct rd *r, const unsigned char *d, size_t len)
{
	uint16_t major, minor;
	uint32_t flags;
	int k;

	if (len == 0)
		return r->err = mp__fail(r->ei, MP_ERR_TRUNCATED,
					 "empty file: truncated in file header "
					 "at byte 0");
	if (memcmp(d, MP_MAGIC, len < MP_MAGIC_LEN ? len : MP_MAGIC_LEN))
		return r->err = mp__fail(r->ei, MP_ERR_NOT_SNAPSHOT,
					 "not a memprof snapshot (bad magic)");
	if (len < MP_FILE_HEADER_LEN)
		return r->err = mp__fail(r->ei, MP_ERR_TRUNCATED,
					 "truncated in file header at byte %zu",
					 len);
	major = mp_le_get16(d + 8);
	minor = mp_le_get16(d + 10);
	flags = mp_le_get32(d + 12);
	/* Minor versions only add sections and keys: read what we know. */
	if (major != MP_VERSION_MAJOR)
		return r->err = mp__fail(r->ei, MP_ERR_VERSION,
					 "unsupported format version %u.%u "
					 "(this memprof reads %d.x)",
					 major, minor, MP_VERSION_MAJOR);
	if (flags)
		return r->err = mp__fail(
			       r->ei, MP_ERR_CORRUPT,
			       "corrupt file header: unknown flags 0x%x",
			       (unsigned)flags);
	r->snap->version_major = major;
	r->snap->version_minor = minor;

	if (read_sections(r, d, len))
		return r->err;
	for (k = 0; k < S_KNOWN; k++)
		if (kinds[k].required && !r->secs[k].present)
			return r->err = mp__fail(r->ei, MP_ERR_CORRUPT,
						 "missing section '%s'",
						 kinds[k].name);
	if (!parse_meta(r) || !parse_modules(r) || !index_modules(r) ||
	    !parse_stacks(r) || !parse_traces(r))
		return r->err;
	if (r->secs[S_BLKS].present && !parse_blocks(r))
		return r->err;
	if (r->secs[S_GRPH].present && !parse_graph(r))
		return r->err;
	if (r->secs[S_TIME].present && !parse_timeline(r))
		return r->err;
	if (r->secs[S_SYMS].present && !parse_symbols(r))
		return r->err;
	return MP_OK;
}

enum mp_err mp_snapshot_open_mem(const void *data, size_t len,
				 struct mp_snapshot **out,
				 struct mp_errinfo *ei)
{
	struct rd r;
	int k;

	if (!out || (!data && len))
		return mp__fail(ei, MP_ERR_USAGE, "invalid argument");
	memset(&r, 0, sizeof(r));
	r.ei = ei;
	r.snap = mp__snapshot_new();
	if (!r.snap)
		return mp__fail(ei, MP_ERR_NOMEM, "out of memory");
	parse_file(&r, data ? data : "", len);
	for (k = 0; k < S_KNOWN; k++)
		free(r.secs[k].raw_buf);
	if (r.err) {
		mp_snapshot_free(r.snap);
		return r.err;
	}
	*out = r.snap;
	return MP_OK;
}

enum mp_err mp_snapshot_open(const char *path, struct mp_snapshot **out,
			     struct mp_errinfo *ei)
{
	unsigned char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, want;
	struct stat st;
	enum mp_err err;
	int fd, e;

	if (!path || !out)
		return mp__fail(ei, MP_ERR_USAGE, "invalid argument");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mp__fail(ei, MP_ERR_IO, "%s", strerror(errno));
	/* One read past the size tells a file that grew; pipes start small. */
	want = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
			       (uint64_t)st.st_size < SIZE_MAX - 1
		       ? (size_t)st.st_size + 1
		       : 64 * 1024;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			/*
			 * The first read is small, so that a big file that is
			 * not a snapshot is refused before its size is
			 * allocated; then the whole size at once.
			 */
			size_t ncap;

			if (!cap) {
				ncap = want < 64 * 1024 ? want : 64 * 1024;
			} else if (cap < want) {
				ncap = want;
			} else if (cap <= SIZE_MAX / 2) {
				ncap = cap * 2;
			} else {
				e = EFBIG;
				goto fail;
			}
			nbuf = realloc(buf, ncap);
			if (!nbuf) {
				e = ENOMEM;
				goto fail;
			}
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			e = errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		/*
		 * Stop at the first bytes that are not the magic: the rest
		 * cannot make it a snapshot, and /dev/zero, a pipe or a
		 * large file given by mistake would otherwise be read to the
		 * end, or until memory runs out, before being refused.
		 */
		if (memcmp(buf, MP_MAGIC,
			   len < MP_MAGIC_LEN ? len : MP_MAGIC_LEN))
			break;
	}
	close(fd);
	err = mp_snapshot_open_mem(buf, len, out, ei);
	free(buf);
	return err;
fail:
	close(fd);
	free(buf);
	if (e == ENOMEM)
		return mp__fail(ei, MP_ERR_NOMEM, "out of memory");
	return mp__fail(ei, MP_ERR_IO, "%s", strerror(e));
}

/* ------------------------------------------------------------------ */
/* Lookups                                                            */

const struct mp_symbol *mp_snapshot_symbol(const struct mp_snapshot *snap,
					   uint64_t pc)
{
	size_t lo = 0, hi;

	if (!snap || !snap->symbols)
		return NULL;
	hi = snap->nsymbols;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (snap->symbols[mid].pc < pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < snap->nsymbols && snap->symbols[lo].pc == pc)
		return &snap->symbols[lo];
	return NULL;
}

const struct mp_module *mp_snapshot_module(const struct mp_snapshot *snap,
					   uint64_t pc)
{
	const struct snap_priv *pv;
	size_t i, lo = 0, hi;

	if (!snap)
		return NULL;
	pv = snap->priv;
	if (!pv || !pv->seg_modules || pv->seg_modules != snap->modules ||
	    pv->seg_nmodules != snap->nmodules) {
		/* Built by hand, not read: the first module that holds pc. */
		for (i = 0; i < snap->nmodules; i++)
			if (pc >= snap->modules[i].start &&
			    pc < snap->modules[i].end)
				return &snap->modules[i];
		return NULL;
	}
	/* The last segment starting at or below pc. */
	hi = pv->nsegs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pv->segs[mid].start <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && pc < pv->segs[lo - 1].end)
		return &snap->modules[pv->segs[lo - 1].module];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Writing                                                            */

static bool str_ok(const char *s)
{
	return !s || strnlen(s, (size_t)MP_STR_MAX + 1) <= MP_STR_MAX;
}

/* The rules of GRPH, for a graph about to be written. */
static enum mp_err check_graph(const struct mp_snapshot *s,
			       struct mp_errinfo *ei)
{
	const struct mp_graph *g = &s->graph;
	size_t i;
	uint64_t j;

	if (!s->has_blocks)
		return mp__fail(ei, MP_ERR_USAGE,
				"cannot save: graph without blocks");
	if (g->edge_start ? g->edge_start[0] != 0 ||
				    g->edge_start[s->nblocks] != g->nedges
			  : g->nedges != 0)
		return mp__fail(ei, MP_ERR_USAGE,
				"cannot save: graph edge offsets do not "
				"cover its %zu edges",
				g->nedges);
	if (g->nedges && !g->edges)
		return mp__fail(ei, MP_ERR_USAGE,
				"cannot save: no graph edges");
	for (i = 0; g->edge_start && i < s->nblocks; i++) {
		uint64_t a = g->edge_start[i], b = g->edge_start[i + 1];

		if (a > b || b > g->nedges)
			return mp__fail(ei, MP_ERR_USAGE,
					"cannot save: bad edge offsets of "
					"block %zu",
					i);
		for (j = a; j < b; j++) {
			const struct mp_edge *e = &g->edges[j];

			if (e->to >= s->nblocks ||
			    (j > a && e->to <= g->edges[j - 1].to) ||
			    (e->flags & ~MP_GRPH_EDGE_KNOWN))
				return mp__fail(ei, MP_ERR_USAGE,
						"cannot save: bad edge %llu "
						"of block %zu",
						(unsigned long long)(j - a), i);
		}
	}
	if (g->nroots && !g->roots)
		return mp__fail(ei, MP_ERR_USAGE,
				"cannot save: no graph roots");
	for (i = 0; i < g->nroots; i++) {
		const struct mp_root_ref *rr = &g->roots[i];

		if (rr->block >= s->nblocks ||
		    (i && rr->block <= g->roots[i - 1].block) ||
		    ((rr->start_kinds | rr->interior_kinds) &
		     ~MP_GRPH_ROOT_KNOWN) ||
		    !(rr->start_kinds | rr->interior_kinds))
			return mp__fail(ei, MP_ERR_USAGE,
					"cannot save: bad graph root %zu", i);
	}
	return MP_OK;
}

/* The rules of TIME: times from META start_ns on, never going back. */
static enum mp_err check_timeline(const struct mp_snapshot *s,
				  struct mp_errinfo *ei)
{
	const struct mp_timeline *tl = &s->timeline;
	uint64_t t = s->meta.start_ns;
	size_t i;

	if ((tl->nsamples && !tl->samples) || (tl->nmarks && !tl->marks))
		return mp__fail(ei, MP_ERR_USAGE,
				"cannot save: no timeline samples or marks");
	for (i = 0; i < tl->nsamples; i++) {
		if (tl->samples[i].ns < t)
			return mp__fail(ei, MP_ERR_USAGE,
					"cannot save: timeline sample %zu is "
					"earlier than %s",
					i, i ? "the one before" : "the start");
		t = tl->samples[i].ns;
	}
	t = s->meta.start_ns;
	for (i = 0; i < tl->nmarks; i++) {
		if (tl->marks[i].ns < t)
			return mp__fail(ei, MP_ERR_USAGE,
					"cannot save: timeline mark %zu is "
					"earlier than %s",
					i, i ? "the one before" : "the start");
		t = tl->marks[i].ns;
	}
	return MP_OK;
}

/* Refuses what would write a file that the reader rejects. */
static enum mp_err check_snapshot(const struct mp_snapshot *s,
				  struct mp_errinfo *ei)
{
	const struct mp_meta *m = &s->meta;
	size_t i, j, total = 0;

	if (!str_ok(m->exe) || !str_ok(m->trigger) || !str_ok(m->name))
		return mp__fail(ei, MP_ERR_USAGE,
				"cannot save: meta string too long");
	if (m->argv) {
		for (i = 0; i < m->argc; i++) {
			if (!m->argv[i])
				return mp__fail(
					ei, MP_ERR_USAGE,
					"cannot save: argv[%zu] is NULL", i);
			total +=
				strnlen(m->argv[i], (size_t)MP_STR_MAX + 1) + 1;
			if (total > MP_STR_MAX)
				return mp__fail(ei, MP_ERR_USAGE,
						"cannot save: argv too long");
		}
	}
	for (i = 0; i < s->nmodules; i++)
		if (!str_ok(s->modules[i].path) ||
		    s->modules[i].build_id_len > BUILD_ID_MAX ||
		    s->modules[i].end < s->modules[i].start)
			return mp__fail(ei, MP_ERR_USAGE,
					"cannot save: bad module %zu", i);
	for (i = 0; i < s->nstacks; i++)
		if (s->stacks[i].depth > STACK_DEPTH_MAX ||
		    (s->stacks[i].depth && !s->stacks[i].pcs))
			return mp__fail(ei, MP_ERR_USAGE,
					"cannot save: bad stack %zu", i);
	for (i = 0; i < s->ntraces; i++)
		if (s->traces[i].stack >= s->nstacks)
			return mp__fail(ei, MP_ERR_USAGE,
					"cannot save: trace %zu refers to a "
					"missing stack",
					i);
	if (s->has_blocks)
		for (i = 0; i < s->nblocks; i++)
			if (s->blocks[i].trace >= s->ntraces ||
			    (i && s->blocks[i].addr <= s->blocks[i - 1].addr))
				return mp__fail(ei, MP_ERR_USAGE,
						"cannot save: bad block %zu",
						i);
	if (s->has_symbols) {
		for (i = 0; i < s->nsymbols; i++) {
			const struct mp_symbol *sym = &s->symbols[i];

			if ((i && sym->pc <= s->symbols[i - 1].pc) ||
			    (sym->module != UINT32_MAX &&
			     sym->module >= s->nmodules) ||
			    sym->nframes > SYM_FRAMES_MAX ||
			    (sym->nframes && !sym->frames))
				return mp__fail(ei, MP_ERR_USAGE,
						"cannot save: bad symbol %zu",
						i);
			for (j = 0; j < sym->nframes; j++)
				if (!str_ok(sym->frames[j].function) ||
				    !str_ok(sym->frames[j].file))
					return mp__fail(ei, MP_ERR_USAGE,
							"cannot save: symbol "
							"string too long");
		}
	}
	if (s->has_timeline) {
		enum mp_err err = check_timeline(s, ei);

		if (err)
			return err;
	}
	if (s->has_graph)
		return check_graph(s, ei);
	return MP_OK;
}

/* The string table of SYMS: open addressing over distinct strings. */
struct strtab {
	const char **slot; /* hash slots */
	uint32_t *id;	   /* 1-based string number of each slot */
	size_t mask;
	const char **list; /* in number order */
	size_t n;
};

static size_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return (size_t)h;
}

static uint32_t strtab_ref(struct strtab *t, const char *s, bool add)
{
	size_t i;

	if (!s)
		return 0;
	for (i = str_hash(s) & t->mask; t->slot[i]; i = (i + 1) & t->mask)
		if (!strcmp(t->slot[i], s))
			return t->id[i];
	if (!add)
		return 0;
	t->slot[i] = s;
	t->list[t->n++] = s;
	t->id[i] = (uint32_t)t->n;
	return t->id[i];
}

static enum mp_err write_symbols(struct mpw *w, const struct mp_snapshot *s)
{
	struct strtab t;
	size_t i, j, refs = 0, cap = 16;
	uint64_t prev = 0;

	for (i = 0; i < s->nsymbols; i++)
		refs += 2 * (size_t)s->symbols[i].nframes;
	while (cap < 2 * refs + 16)
		cap *= 2;
	memset(&t, 0, sizeof(t));
	t.slot = calloc(cap, sizeof(*t.slot));
	t.id = calloc(cap, sizeof(*t.id));
	t.list = calloc(refs + 1, sizeof(*t.list));
	if (!t.slot || !t.id || !t.list) {
		free(t.slot);
		free(t.id);
		free(t.list);
		return MP_ERR_NOMEM;
	}
	t.mask = cap - 1;
	for (i = 0; i < s->nsymbols; i++)
		for (j = 0; j < s->symbols[i].nframes; j++) {
			strtab_ref(&t, s->symbols[i].frames[j].function, true);
			strtab_ref(&t, s->symbols[i].frames[j].file, true);
		}

	mpw_begin(w, MP_SEC_SYMBOLS);
	mpw_uleb(w, t.n);
	for (i = 0; i < t.n; i++)
		mpw_str(w, t.list[i]);
	mpw_uleb(w, s->nsymbols);
	for (i = 0; i < s->nsymbols; i++) {
		const struct mp_symbol *sym = &s->symbols[i];

		mpw_uleb(w, sym->pc - prev);
		prev = sym->pc;
		mpw_uleb(w, sym->module == UINT32_MAX ? 0 : sym->module + 1ull);
		mpw_uleb(w, sym->nframes);
		for (j = 0; j < sym->nframes; j++) {
			mpw_uleb(w, strtab_ref(&t, sym->frames[j].function,
					       false));
			mpw_uleb(w, strtab_ref(&t, sym->frames[j].file, false));
			mpw_uleb(w, sym->frames[j].line);
		}
	}
	mpw_end(w);
	free(t.slot);
	free(t.id);
	free(t.list);
	return MP_OK;
}

static void write_graph(struct mpw *w, const struct mp_snapshot *s)
{
	const struct mp_graph *g = &s->graph;
	uint64_t prev = 0, j;
	size_t i;

	mpw_begin(w, MP_SEC_GRAPH);
	mpw_uleb(w, s->nblocks);
	mpw_uleb(w, g->threads);
	mpw_uleb(w, g->threads_unscanned);
	mpw_uleb(w, g->nroots);
	for (i = 0; i < g->nroots; i++) {
		mpw_uleb(w, g->roots[i].block - prev);
		prev = g->roots[i].block;
		mpw_uleb(w, g->roots[i].start_kinds);
		mpw_uleb(w, g->roots[i].interior_kinds);
	}
	for (i = 0; i < s->nblocks; i++) {
		uint64_t a = g->edge_start ? g->edge_start[i] : 0;
		uint64_t b = g->edge_start ? g->edge_start[i + 1] : 0;

		mpw_uleb(w, b - a);
		for (prev = 0, j = a; j < b; j++) {
			const struct mp_edge *e = &g->edges[j];

			mpw_uleb(w, (e->to - prev) << MP_GRPH_EDGE_SHIFT |
					    e->flags);
			prev = e->to;
		}
	}
	mpw_end(w);
}

static void write_timeline(struct mpw *w, const struct mp_snapshot *s)
{
	const struct mp_timeline *tl = &s->timeline;
	uint64_t prev = s->meta.start_ns;
	size_t i;

	mpw_begin(w, MP_SEC_TIMELINE);
	mpw_uleb(w, tl->interval_ns);
	mpw_uleb(w, tl->nsamples);
	for (i = 0; i < tl->nsamples; i++) {
		mpw_uleb(w, tl->samples[i].ns - prev);
		prev = tl->samples[i].ns;
		mpw_uleb(w, tl->samples[i].live_bytes);
		mpw_uleb(w, tl->samples[i].live_blocks);
	}
	prev = s->meta.start_ns;
	mpw_uleb(w, tl->nmarks);
	for (i = 0; i < tl->nmarks; i++) {
		mpw_uleb(w, tl->marks[i].seq);
		mpw_uleb(w, tl->marks[i].ns - prev);
		prev = tl->marks[i].ns;
	}
	mpw_end(w);
}

static enum mp_err write_snapshot(struct mpw *w, const struct mp_snapshot *s)
{
	const struct mp_meta *m = &s->meta;
	const struct snap_priv *pv = s->priv;
	const struct kept *k;
	uint64_t prev;
	size_t i, j;

	mpw_begin(w, MP_SEC_META);
	mpw_meta_uint(w, "pid", m->pid);
	mpw_meta_uint(w, "ppid", m->ppid);
	if (m->exe)
		mpw_meta_str(w, "exe", m->exe);
	if (m->argv) {
		size_t total = 0;
		char *buf, *p;

		for (i = 0; i < m->argc; i++)
			total += strlen(m->argv[i]) + 1;
		buf = malloc(total + 1);
		if (!buf)
			return MP_ERR_NOMEM;
		for (i = 0, p = buf; i < m->argc; i++) {
			size_t n = strlen(m->argv[i]) + 1;

			memcpy(p, m->argv[i], n);
			p += n;
		}
		mpw_str(w, "argv");
		mpw_uleb(w, MP_META_STR);
		mpw_strn(w, buf, total);
		free(buf);
	}
	mpw_meta_uint(w, "start_ns", m->start_ns);
	mpw_meta_uint(w, "snapshot_ns", m->snapshot_ns);
	mpw_meta_uint(w, "peak_ns", m->peak_ns);
	if (m->trigger)
		mpw_meta_str(w, "trigger", m->trigger);
	if (m->name)
		mpw_meta_str(w, "name", m->name);
	mpw_meta_uint(w, "sample_rate", m->sample_rate);
	mpw_meta_uint(w, "depth", m->depth);
	mpw_meta_uint(w, "seq", m->seq);
	mpw_meta_uint(w, "live_bytes", m->totals.live_bytes);
	mpw_meta_uint(w, "live_blocks", m->totals.live_blocks);
	mpw_meta_uint(w, "peak_bytes", m->totals.peak_bytes);
	mpw_meta_uint(w, "allocs", m->totals.allocs);
	mpw_meta_uint(w, "frees", m->totals.frees);
	mpw_meta_uint(w, "alloc_bytes", m->totals.alloc_bytes);
	mpw_end(w);

	mpw_begin(w, MP_SEC_MODULES);
	mpw_uleb(w, s->nmodules);
	for (i = 0; i < s->nmodules; i++) {
		const struct mp_module *mod = &s->modules[i];

		mpw_str(w, mod->path);
		mpw_uleb(w, mod->base);
		mpw_uleb(w, mod->start);
		mpw_uleb(w, mod->end);
		mpw_uleb(w, mod->build_id_len);
		mpw_bytes(w, mod->build_id, mod->build_id_len);
	}
	mpw_end(w);

	mpw_begin(w, MP_SEC_STACKS);
	mpw_uleb(w, s->nstacks);
	prev = 0;
	for (i = 0; i < s->nstacks; i++) {
		const struct mp_stack *st = &s->stacks[i];

		mpw_uleb(w, st->depth);
		for (j = 0; j < st->depth; j++) {
			uint64_t base = j ? st->pcs[j - 1] : prev;

			mpw_sleb(w, (int64_t)(st->pcs[j] - base));
		}
		if (st->depth)
			prev = st->pcs[0];
	}
	mpw_end(w);

	mpw_begin(w, MP_SEC_TRACES);
	mpw_uleb(w, s->ntraces);
	for (i = 0; i < s->ntraces; i++) {
		const struct mp_trace *t = &s->traces[i];

		mpw_uleb(w, t->stack);
		mpw_uleb(w, t->live_bytes);
		mpw_uleb(w, t->live_blocks);
		mpw_uleb(w, t->allocs);
		mpw_uleb(w, t->alloc_bytes);
		mpw_uleb(w, t->peak_bytes);
	}
	mpw_end(w);

	if (s->has_blocks) {
		mpw_begin(w, MP_SEC_BLOCKS);
		mpw_uleb(w, s->nblocks);
		prev = 0;
		for (i = 0; i < s->nblocks; i++) {
			mpw_uleb(w, s->blocks[i].addr - prev);
			prev = s->blocks[i].addr;
			mpw_uleb(w, s->blocks[i].size);
			mpw_uleb(w, s->blocks[i].trace);
		}
		mpw_end(w);
	}
	if (s->has_graph)
		write_graph(w, s);
	if (s->has_timeline)
		write_timeline(w, s);
	if (s->has_symbols && write_symbols(w, s))
		return MP_ERR_NOMEM;
	for (k = pv ? pv->kept : NULL; k; k = k->next)
		mpw_copy_section(w, k->tag, k->flags, k->raw_len, k->raw_crc,
				 k->stored, k->stored_len);
	return MP_OK;
}

enum mp_err mp_snapshot_save(const struct mp_snapshot *snap, const char *path,
			     struct mp_errinfo *ei)
{
	struct mpw w;
	enum mp_err err;
	char *tmp;
	size_t tlen;
	unsigned try;
	int fd = -1, e;

	if (!snap || !path)
		return mp__fail(ei, MP_ERR_USAGE, "invalid argument");
	err = check_snapshot(snap, ei);
	if (err)
		return err;
	/* Same directory, so that rename(2) replaces path atomically. */
	tlen = strlen(path) + 48;
	tmp = malloc(tlen);
	if (!tmp)
		return mp__fail(ei, MP_ERR_NOMEM, "out of memory");
	for (try = 0; try < 100 && fd < 0; try++) {
		snprintf(tmp, tlen, "%s.tmp.%ld.%u", path, (long)getpid(), try);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		e = errno;
		free(tmp);
		return mp__fail(ei, MP_ERR_IO, "%s", strerror(e));
	}
	e = mpw_open(&w, fd);
	if (!e) {
		err = write_snapshot(&w, snap);
		if (err)
			mpw_abort(&w);
		e = mpw_close(&w);
	}
	if (close(fd) && !e)
		e = errno;
	if (!err && !e && rename(tmp, path))
		e = errno;
	if (err || e) {
		unlink(tmp);
		free(tmp);
		if (err)
			return mp__fail(ei, err, "out of memory");
		return mp__fail(ei, MP_ERR_IO, "%s", strerror(e));
	}
	free(tmp);
	return MP_OK;
}
