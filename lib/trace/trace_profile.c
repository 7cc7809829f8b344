/*
 * trace_profile.c - frame resolution and the `top` aggregation.
 *
 * Expands stacks into source frames (inline chains included), drops the
 * allocator's frames, then groups traces by sorting their keys and merging
 * equal neighbours: no hash table, and an order that never depends on the
 * file's. Statistics follow tracemalloc's Snapshot.statistics() (reference
 * §1.3-1.4), cumulative mode included, and traces are kept or dropped by
 * tracemalloc's Filter rules (§1.5). Never prints.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "memprof_trace.h"
#include "trace/trace_internal.h"

/* The libc malloc family, matched exactly. */
static const char *const allocator_names[] = {
	"malloc",	  "calloc",	   "realloc",  "free",	 "reallocarray",
	"posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
};

/* Prefixes: glibc's internal aliases (__libc_malloc), C++ operator new
 * and new[] with every overload, and their mangled names when the
 * demangler was not available (_Znwm, _ZnamRKSt9nothrow_t). */
static const char *const allocator_prefixes[] = {
	"__libc_",
	"operator new",
	"_Znw",
	"_Zna",
};

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

bool mp_frame_is_allocator(const struct mp_resolved_frame *f,
			   const struct mp_alloc_filter *filter)
{
	if (f->module && !strncmp(base_name(f->module), "libmemprof", 10))
		return true;
	if (!f->function)
		return false;
	for (size_t i = 0;
	     i < sizeof(allocator_names) / sizeof(*allocator_names); i++)
		if (!strcmp(f->function, allocator_names[i]))
			return true;
	for (size_t i = 0;
	     i < sizeof(allocator_prefixes) / sizeof(*allocator_prefixes); i++)
		if (!strncmp(f->function, allocator_prefixes[i],
			     strlen(allocator_prefixes[i])))
			return true;
	if (filter)
		for (size_t i = 0; i < filter->nglobs; i++)
			if (fnmatch(filter->globs[i], f->function, 0) == 0)
				return true;
	return false;
}

/* Appends the expanded frames of one pc to *v (of *n, capacity *cap). */
static bool expand_pc(const struct mp_snapshot *snap, uint64_t pc,
		      struct mp_resolved_frame **v, size_t *n, size_t *cap)
{
	const struct mp_symbol *sym = mp_snapshot_symbol(snap, pc);
	const char *module = NULL;
	size_t k = sym && sym->nframes ? sym->nframes : 1;

	if (sym && sym->module < snap->nmodules)
		module = snap->modules[sym->module].path;
	if (!module) {
		const struct mp_module *m = mp_snapshot_module(snap, pc);
		module = m ? m->path : NULL;
	}
	if (*n + k > *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		while (ncap < *n + k)
			ncap *= 2;
		struct mp_resolved_frame *nv = realloc(*v, ncap * sizeof(**v));
		if (!nv)
			return false;
		*v = nv;
		*cap = ncap;
	}
	for (size_t i = 0; i < k; i++) {
		struct mp_resolved_frame *f = &(*v)[(*n)++];
		memset(f, 0, sizeof(*f));
		if (sym && sym->nframes) {
			f->function = sym->frames[i].function;
			f->file = sym->frames[i].file;
			f->line = sym->frames[i].line;
		}
		f->module = module;
		f->address = pc;
	}
	return true;
}

enum mp_err mp_stack_resolve(const struct mp_snapshot *snap, uint32_t stack,
			     const struct mp_alloc_filter *filter,
			     struct mp_resolved_frame **out, size_t *nout)
{
	struct mp_resolved_frame *v = NULL;
	size_t n = 0, cap = 0, skip = 0;

	if (stack >= snap->nstacks)
		return MP_ERR_USAGE;
	const struct mp_stack *st = &snap->stacks[stack];
	/* The outermost frames past MP_RESOLVED_MAX are dropped: a file may
	 * say 1024 pcs of 256 inline frames each, 2 GB of frames for 200
	 * stacks of a 2 KB file (found by the fuzzer). */
	for (uint32_t i = 0; i < st->depth && n < MP_RESOLVED_MAX; i++) {
		if (!expand_pc(snap, st->pcs[i], &v, &n, &cap)) {
			free(v);
			return MP_ERR_NOMEM;
		}
	}
	while (skip < n && mp_frame_is_allocator(&v[skip], filter))
		skip++;
	if (skip == n) {
		free(v);
		v = NULL;
		n = 0;
	} else if (skip) {
		memmove(v, v + skip, (n - skip) * sizeof(*v));
		n -= skip;
	}
	*out = v;
	*nout = n;
	return MP_OK;
}

static const char *const group_names[] = {
	[MP_GROUP_TRACEBACK] = "traceback", [MP_GROUP_FUNCTION] = "function",
	[MP_GROUP_LINE] = "line",	    [MP_GROUP_FILE] = "file",
	[MP_GROUP_MODULE] = "module",
};

static const char *const sort_names[] = {
	[MP_SORT_BYTES] = "bytes",
	[MP_SORT_BLOCKS] = "blocks",
	[MP_SORT_ALLOCS] = "allocs",
	[MP_SORT_PEAK] = "peak",
};

#define NGROUP (sizeof(group_names) / sizeof(*group_names))
#define NSORT (sizeof(sort_names) / sizeof(*sort_names))

bool mp_group_by_parse(const char *s, enum mp_group_by *out)
{
	for (size_t i = 0; i < NGROUP; i++)
		if (!strcmp(s, group_names[i])) {
			*out = (enum mp_group_by)i;
			return true;
		}
	return false;
}

const char *mp_group_by_name(enum mp_group_by by)
{
	return (size_t)by < NGROUP ? group_names[by] : "?";
}

bool mp_sort_by_parse(const char *s, enum mp_sort_by *out)
{
	for (size_t i = 0; i < NSORT; i++)
		if (!strcmp(s, sort_names[i])) {
			*out = (enum mp_sort_by)i;
			return true;
		}
	return false;
}

const char *mp_sort_by_name(enum mp_sort_by sort)
{
	return (size_t)sort < NSORT ? sort_names[sort] : "?";
}

/* ------------------------------------------------------------------ */

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* NULL sorts after every string. */
static int cmp_str(const char *a, const char *b)
{
	if (a && b)
		return strcmp(a, b);
	return (a == NULL) - (b == NULL);
}

/*
 * Orders frames by their key under `by` (see trace_profile.h): known keys
 * first, in string order; frames whose key part is unknown by address.
 */
static int frame_key_cmp(enum mp_group_by by, const struct mp_resolved_frame *a,
			 const struct mp_resolved_frame *b)
{
	int c;
	const char *ka, *kb;

	switch (by) {
	case MP_GROUP_MODULE: return cmp_str(a->module, b->module);
	case MP_GROUP_LINE:
	case MP_GROUP_FILE:
		ka = a->file;
		kb = b->file;
		break;
	default:
		ka = a->function;
		kb = b->function;
		break;
	}
	if (!ka || !kb)
		return ka || kb ? (ka == NULL) - (kb == NULL)
				: cmp_u64(a->address, b->address);
	if ((c = strcmp(ka, kb)))
		return c;
	if (by == MP_GROUP_TRACEBACK && (c = cmp_str(a->file, b->file)))
		return c;
	if (by == MP_GROUP_TRACEBACK || by == MP_GROUP_LINE)
		return cmp_u64(a->line, b->line);
	return 0;
}

static int frames_key_cmp(enum mp_group_by by,
			  const struct mp_resolved_frame *a, size_t na,
			  const struct mp_resolved_frame *b, size_t nb)
{
	for (size_t i = 0; i < na && i < nb; i++) {
		int c = frame_key_cmp(by, &a[i], &b[i]);
		if (c)
			return c;
	}
	return cmp_u64(na, nb);
}

int mp__frames_cmp(const struct mp_resolved_frame *a, size_t na,
		   const struct mp_resolved_frame *b, size_t nb)
{
	return frames_key_cmp(MP_GROUP_TRACEBACK, a, na, b, nb);
}

/* One trace's share of one group: the frames that are its key. */
struct contrib {
	uint32_t trace;
	uint32_t nframes;
	const struct mp_resolved_frame *frames;
};

static int contrib_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct contrib *a = pa, *b = pb;
	enum mp_group_by by = *(const enum mp_group_by *)ctx;
	return frames_key_cmp(by, a->frames, a->nframes, b->frames, b->nframes);
}

static int entry_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct mp_profile *p = ctx;
	const struct mp_profile_entry *a = pa, *b = pb;
	uint64_t ka[3], kb[3];
	int c;

	switch (p->sort) {
	case MP_SORT_BLOCKS:
		ka[0] = a->blocks, ka[1] = a->bytes, ka[2] = 0;
		kb[0] = b->blocks, kb[1] = b->bytes, kb[2] = 0;
		break;
	case MP_SORT_ALLOCS:
		ka[0] = a->allocs, ka[1] = a->alloc_bytes, ka[2] = a->bytes;
		kb[0] = b->allocs, kb[1] = b->alloc_bytes, kb[2] = b->bytes;
		break;
	case MP_SORT_PEAK:
		ka[0] = a->peak_bytes, ka[1] = a->bytes, ka[2] = a->blocks;
		kb[0] = b->peak_bytes, kb[1] = b->bytes, kb[2] = b->blocks;
		break;
	default:
		ka[0] = a->bytes, ka[1] = a->blocks, ka[2] = 0;
		kb[0] = b->bytes, kb[1] = b->blocks, kb[2] = 0;
		break;
	}
	for (int i = 0; i < 3; i++)
		if ((c = cmp_u64(kb[i], ka[i])))
			return c;
	return frames_key_cmp(p->by, a->frames, a->nframes, b->frames,
			      b->nframes);
}

/* Storage behind a profile's frames. */
struct profile_priv {
	struct mp_resolved_frame *frames;
};

void mp__frame_intersect(struct mp_resolved_frame *dst,
			 const struct mp_resolved_frame *src)
{
	if (cmp_str(dst->function, src->function))
		dst->function = NULL;
	if (cmp_str(dst->file, src->file))
		dst->file = NULL;
	if (dst->line != src->line)
		dst->line = 0;
	if (cmp_str(dst->module, src->module))
		dst->module = NULL;
	if (dst->address != src->address)
		dst->address = 0;
}

void mp_profile_free(struct mp_profile *prof)
{
	if (!prof)
		return;
	struct profile_priv *pp = prof->priv;
	if (pp)
		free(pp->frames);
	free(pp);
	free(prof->entries);
	free(prof);
}

size_t mp_profile_rest(const struct mp_profile *prof, size_t n,
		       struct mp_profile_entry *rest)
{
	memset(rest, 0, sizeof(*rest));
	if (n == 0 || n >= prof->nentries)
		return 0;
	for (size_t i = n; i < prof->nentries; i++) {
		const struct mp_profile_entry *e = &prof->entries[i];
		rest->bytes += e->bytes;
		rest->blocks += e->blocks;
		rest->allocs += e->allocs;
		rest->alloc_bytes += e->alloc_bytes;
		rest->peak_bytes += e->peak_bytes;
		rest->ntraces += e->ntraces;
	}
	return prof->nentries - n;
}

/* Whether glob matches a field of f: function, file or module, each
 * path also by its base name. */
static bool frame_matches(const char *glob, const struct mp_resolved_frame *f)
{
	const char *fields[] = {f->function, f->file, f->module};

	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++) {
		if (!fields[i])
			continue;
		if (fnmatch(glob, fields[i], 0) == 0)
			return true;
		if (i > 0 && fnmatch(glob, base_name(fields[i]), 0) == 0)
			return true;
	}
	return false;
}

bool mp_filters_keep(const struct mp_filters *flt,
		     const struct mp_resolved_frame *frames, size_t n)
{
	bool has_inclusive = false, included = false;

	if (!flt)
		return true;
	/* tracemalloc's Filter._match_traceback: only the most recent frame
	 * unless all_frames. */
	size_t tested = flt->all_frames ? n : n ? 1 : 0;
	for (size_t i = 0; i < flt->n; i++) {
		const struct mp_frame_filter *ff = &flt->f[i];
		bool match = false;
		for (size_t k = 0; ff->glob && k < tested && !match; k++)
			match = frame_matches(ff->glob, &frames[k]);
		if (ff->inclusive) {
			has_inclusive = true;
			included |= match;
		} else if (match) {
			return false;
		}
	}
	return !has_inclusive || included;
}

/* Per-stack expansion, computed once for the stacks that traces use. */
struct resolved_stack {
	bool done;
	bool keep; /* passes the filters */
	size_t nframes;
	struct mp_resolved_frame *frames;
};

static void free_resolved(struct resolved_stack *rs, size_t n)
{
	if (!rs)
		return;
	for (size_t i = 0; i < n; i++)
		free(rs[i].frames);
	free(rs);
}

enum mp_err mp_profile_build(const struct mp_snapshot *snap,
			     const struct mp_profile_opts *opts,
			     struct mp_profile **out)
{
	enum mp_err err = MP_ERR_NOMEM;
	struct resolved_stack *rs = NULL;
	struct contrib *cs = NULL;
	size_t ncs = 0, cscap = 0;
	struct mp_profile *p = NULL;
	struct profile_priv *pp = NULL;
	enum mp_group_by by = opts->by;

	if ((size_t)opts->by >= NGROUP || (size_t)opts->sort >= NSORT)
		return MP_ERR_USAGE;
	if (opts->cumulative &&
	    (by == MP_GROUP_TRACEBACK || by == MP_GROUP_MODULE))
		return MP_ERR_USAGE;
	for (size_t t = 0; t < snap->ntraces; t++)
		if (snap->traces[t].stack >= snap->nstacks)
			return MP_ERR_CORRUPT;

	rs = calloc(snap->nstacks ? snap->nstacks : 1, sizeof(*rs));
	if (!rs)
		goto fail;

	/* One contribution per trace, or per frame when cumulative. */
	for (size_t t = 0; t < snap->ntraces; t++) {
		uint32_t s = snap->traces[t].stack;
		if (!rs[s].done) {
			err = mp_stack_resolve(snap, s, &opts->alloc,
					       &rs[s].frames, &rs[s].nframes);
			if (err != MP_OK)
				goto fail;
			err = MP_ERR_NOMEM;
			rs[s].done = true;
			rs[s].keep = mp_filters_keep(
				opts->filters, rs[s].frames, rs[s].nframes);
		}
		if (!rs[s].keep)
			continue;
		size_t nf = rs[s].nframes;
		size_t k = opts->cumulative && nf ? nf : 1;
		if (ncs + k > cscap) {
			size_t ncap = cscap ? cscap * 2 : 64;
			while (ncap < ncs + k)
				ncap *= 2;
			struct contrib *n = realloc(cs, ncap * sizeof(*cs));
			if (!n)
				goto fail;
			cs = n;
			cscap = ncap;
		}
		for (size_t i = 0; i < k; i++) {
			struct contrib *c = &cs[ncs++];
			c->trace = (uint32_t)t;
			c->frames = nf ? rs[s].frames + i : NULL;
			if (by == MP_GROUP_TRACEBACK)
				c->nframes = (uint32_t)nf;
			else
				c->nframes = nf ? 1 : 0;
		}
	}

	if (ncs)
		qsort_r(cs, ncs, sizeof(*cs), contrib_cmp, &by);

	p = calloc(1, sizeof(*p));
	pp = calloc(1, sizeof(*pp));
	if (!p || !pp)
		goto fail;
	p->priv = pp;
	p->by = by;
	p->sort = opts->sort;
	p->cumulative = opts->cumulative;
	p->totals = snap->meta.totals;

	/* Count groups and their frames, then fill. */
	size_t ngroups = 0, nframes = 0;
	for (size_t i = 0; i < ncs; i++)
		if (i == 0 || contrib_cmp(&cs[i - 1], &cs[i], &by)) {
			ngroups++;
			nframes += cs[i].nframes;
		}
	p->entries = calloc(ngroups ? ngroups : 1, sizeof(*p->entries));
	pp->frames = calloc(nframes ? nframes : 1, sizeof(*pp->frames));
	if (!p->entries || !pp->frames)
		goto fail;

	struct mp_profile_entry *e = NULL;
	struct mp_resolved_frame *fp = pp->frames;
	for (size_t i = 0; i < ncs; i++) {
		const struct contrib *c = &cs[i];
		const struct mp_trace *tr = &snap->traces[c->trace];
		if (i == 0 || contrib_cmp(&cs[i - 1], c, &by)) {
			e = &p->entries[p->nentries++];
			e->nframes = c->nframes;
			e->frames = c->nframes ? fp : NULL;
			if (c->nframes)
				memcpy(fp, c->frames, c->nframes * sizeof(*fp));
			fp += c->nframes;
		} else {
			for (size_t k = 0; k < c->nframes; k++)
				mp__frame_intersect(&e->frames[k],
						    &c->frames[k]);
		}
		e->bytes += tr->live_bytes;
		e->blocks += tr->live_blocks;
		e->allocs += tr->allocs;
		e->alloc_bytes += tr->alloc_bytes;
		e->peak_bytes += tr->peak_bytes;
		e->ntraces++;
	}

	if (p->nentries)
		qsort_r(p->entries, p->nentries, sizeof(*p->entries), entry_cmp,
			p);

	free(cs);
	free_resolved(rs, snap->nstacks);
	*out = p;
	return MP_OK;

fail:
	free(cs);
	free_resolved(rs, snap->nstacks);
	mp_profile_free(p);
	if (!p)
		free(pp);
	return err;
}
