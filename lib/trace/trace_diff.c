/*
 * trace_diff.c - the `diff` comparison: tracemalloc's Snapshot.compare_to.
 *
 * Groups each snapshot with mp_profile_build, then matches the groups of
 * the two by a key made of symbols only (function, file, line; module base
 * name and offset for unknown code), never by address, so that two runs
 * under ASLR and two builds compare cleanly. Entries and their order follow
 * reference §1.3. Never prints.
 */
#include <stdlib.h>
#include <string.h>

#include "memprof_trace.h"
#include "trace/trace_internal.h"

/*
 * One frame of a cross-snapshot key. name is the part the grouping needs
 * (function, file or module base name), NULL when unknown; then mod and
 * off locate the code instead: the module's base name and pc - base, or
 * mod NULL and off the pc itself when the module is unknown too.
 */
struct dkey_frame {
	const char *name;
	const char *file; /* TRACEBACK only */
	uint32_t line;	  /* TRACEBACK and LINE only */
	const char *mod;
	uint64_t off;
};

/* One group of one snapshot, with its key. */
struct item {
	bool is_new;
	const struct mp_profile_entry *pe;
	const struct dkey_frame *key;
	size_t nkey;
};

/* One diff entry while sorting, with the key it sorts by. */
struct dentry {
	struct mp_diff_entry e;
	const struct dkey_frame *key;
	size_t nkey;
};

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

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

static uint64_t uabs(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

/*
 * Figures come from files: a corrupt or hostile one can hold sizes near
 * 2^64, whose sums and differences must not wrap (nor overflow a signed
 * integer, which is undefined). They saturate instead.
 */
static uint64_t sat_add_u64(uint64_t a, uint64_t b)
{
	uint64_t r;
	return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static int64_t sat_add_i64(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* a - b as a signed figure, clamped to int64_t's range. */
static int64_t sat_sub(uint64_t a, uint64_t b)
{
	if (a >= b)
		return a - b > (uint64_t)INT64_MAX ? INT64_MAX
						   : (int64_t)(a - b);
	return b - a > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)(b - a);
}

/* The module holding pc, found as mp_stack_resolve finds it: the
 * symbol's module first, else by address. */
static const struct mp_module *module_of(const struct mp_snapshot *snap,
					 uint64_t pc)
{
	const struct mp_symbol *sym = mp_snapshot_symbol(snap, pc);
	if (sym && sym->module < snap->nmodules)
		return &snap->modules[sym->module];
	return mp_snapshot_module(snap, pc);
}

static void make_key(const struct mp_snapshot *snap, enum mp_group_by by,
		     const struct mp_resolved_frame *f, struct dkey_frame *k)
{
	memset(k, 0, sizeof(*k));
	switch (by) {
	case MP_GROUP_MODULE:
		/* Unknown modules form one group: no fallback. */
		k->name = f->module ? base_name(f->module) : NULL;
		return;
	case MP_GROUP_FILE: k->name = f->file; break;
	case MP_GROUP_LINE:
		k->name = f->file;
		k->line = f->line;
		break;
	case MP_GROUP_FUNCTION: k->name = f->function; break;
	default:
		k->name = f->function;
		k->file = f->file;
		k->line = f->line;
		break;
	}
	if (k->name)
		return;
	/* The profile grouped this frame by its address, so every member of
	 * the group shares it; the offset in its module survives ASLR and
	 * relinking of other modules. */
	k->file = NULL;
	k->line = 0;
	const struct mp_module *m = module_of(snap, f->address);
	if (m && m->path) {
		k->mod = base_name(m->path);
		k->off = f->address - m->base;
	} else {
		k->off = f->address;
	}
}

/* Ascending key order: known names first, in byte order (then file and
 * line where they are part of the key); unknown code by module base name
 * (unknown module last) and offset. */
static int dframe_cmp(enum mp_group_by by, const struct dkey_frame *a,
		      const struct dkey_frame *b)
{
	int c;

	if (by == MP_GROUP_MODULE)
		return cmp_str(a->name, b->name);
	if (a->name && b->name) {
		if ((c = strcmp(a->name, b->name)))
			return c;
		if ((c = cmp_str(a->file, b->file)))
			return c;
		return cmp_u64(a->line, b->line);
	}
	if (a->name || b->name)
		return a->name ? -1 : 1;
	if ((c = cmp_str(a->mod, b->mod)))
		return c;
	return cmp_u64(a->off, b->off);
}

static int dkey_cmp(enum mp_group_by by, const struct dkey_frame *a, size_t na,
		    const struct dkey_frame *b, size_t nb)
{
	for (size_t i = 0; i < na && i < nb; i++) {
		int c = dframe_cmp(by, &a[i], &b[i]);
		if (c)
			return c;
	}
	return cmp_u64(na, nb);
}

static int item_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct item *a = pa, *b = pb;
	enum mp_group_by by = *(const enum mp_group_by *)ctx;
	int c = dkey_cmp(by, a->key, a->nkey, b->key, b->nkey);
	if (c)
		return c;
	/* NEW's groups first within a key: they give the entry its frames. */
	return (int)b->is_new - (int)a->is_new;
}

/* tracemalloc: sorted(reverse=True, key=(abs(size_diff), size,
 * abs(count_diff), count, traceback)) - the key descending too. */
static int dentry_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct dentry *a = pa, *b = pb;
	enum mp_group_by by = *(const enum mp_group_by *)ctx;
	int c;

	if ((c = cmp_u64(uabs(b->e.bytes_diff), uabs(a->e.bytes_diff))))
		return c;
	if ((c = cmp_u64(b->e.bytes, a->e.bytes)))
		return c;
	if ((c = cmp_u64(uabs(b->e.blocks_diff), uabs(a->e.blocks_diff))))
		return c;
	if ((c = cmp_u64(b->e.blocks, a->e.blocks)))
		return c;
	return dkey_cmp(by, b->key, b->nkey, a->key, a->nkey);
}

void mp_diff_free(struct mp_diff *diff)
{
	if (!diff)
		return;
	for (size_t i = 0; i < diff->nentries; i++)
		free(diff->entries[i].frames);
	free(diff->entries);
	free(diff);
}

size_t mp_diff_rest(const struct mp_diff *diff, size_t n,
		    struct mp_diff_entry *rest)
{
	memset(rest, 0, sizeof(*rest));
	if (n == 0 || n >= diff->nentries)
		return 0;
	for (size_t i = n; i < diff->nentries; i++) {
		const struct mp_diff_entry *e = &diff->entries[i];
		rest->bytes = sat_add_u64(rest->bytes, e->bytes);
		rest->blocks = sat_add_u64(rest->blocks, e->blocks);
		rest->bytes_diff = sat_add_i64(rest->bytes_diff, e->bytes_diff);
		rest->blocks_diff =
			sat_add_i64(rest->blocks_diff, e->blocks_diff);
		rest->old_bytes = sat_add_u64(rest->old_bytes, e->old_bytes);
		rest->old_blocks = sat_add_u64(rest->old_blocks, e->old_blocks);
	}
	return diff->nentries - n;
}

/* Appends the items (groups with their keys) of one profile. */
static void add_items(const struct mp_snapshot *snap,
		      const struct mp_profile *p, bool is_new,
		      struct item *items, size_t *nitems,
		      struct dkey_frame **keys)
{
	for (size_t i = 0; i < p->nentries; i++) {
		const struct mp_profile_entry *pe = &p->entries[i];
		struct item *it = &items[(*nitems)++];
		it->is_new = is_new;
		it->pe = pe;
		it->key = *keys;
		it->nkey = pe->nframes;
		for (size_t k = 0; k < pe->nframes; k++)
			make_key(snap, p->by, &pe->frames[k], (*keys)++);
	}
}

/* Fills e from the run items[0..n) of equal keys (NEW's items first). */
static bool merge_run(const struct item *items, size_t n,
		      struct mp_diff_entry *e)
{
	memset(e, 0, sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		const struct mp_profile_entry *pe = items[i].pe;
		if (items[i].is_new) {
			e->in_new = true;
			e->bytes = sat_add_u64(e->bytes, pe->bytes);
			e->blocks = sat_add_u64(e->blocks, pe->blocks);
		} else {
			e->in_old = true;
			e->old_bytes = sat_add_u64(e->old_bytes, pe->bytes);
			e->old_blocks = sat_add_u64(e->old_blocks, pe->blocks);
		}
	}
	e->bytes_diff = sat_sub(e->bytes, e->old_bytes);
	e->blocks_diff = sat_sub(e->blocks, e->old_blocks);

	/* Frames of the first side present; several groups of one snapshot
	 * under one key (two modules of one base name) share what agrees. */
	const struct mp_profile_entry *first = items[0].pe;
	e->nframes = first->nframes;
	if (!e->nframes)
		return true;
	e->frames = malloc(e->nframes * sizeof(*e->frames));
	if (!e->frames)
		return false;
	memcpy(e->frames, first->frames, e->nframes * sizeof(*e->frames));
	for (size_t i = 1; i < n && items[i].is_new == items[0].is_new; i++)
		for (size_t k = 0; k < e->nframes; k++)
			mp__frame_intersect(&e->frames[k],
					    &items[i].pe->frames[k]);
	return true;
}

enum mp_err mp_diff_build(const struct mp_snapshot *old_snap,
			  const struct mp_snapshot *new_snap,
			  const struct mp_diff_opts *opts, struct mp_diff **out)
{
	struct mp_profile_opts po = {
		.by = opts->by,
		.sort = MP_SORT_BYTES,
		.cumulative = opts->cumulative,
		.alloc = opts->alloc,
		.filters = opts->filters,
	};
	struct mp_profile *pold = NULL, *pnew = NULL;
	struct item *items = NULL;
	struct dkey_frame *keys = NULL;
	struct dentry *des = NULL;
	struct mp_diff *d = NULL;
	size_t nitems = 0, nde = 0;
	enum mp_group_by by = opts->by;
	enum mp_err err;

	if ((err = mp_profile_build(old_snap, &po, &pold)) != MP_OK)
		return err;
	if ((err = mp_profile_build(new_snap, &po, &pnew)) != MP_OK) {
		mp_profile_free(pold);
		return err;
	}
	err = MP_ERR_NOMEM;

	size_t ngroups = pold->nentries + pnew->nentries, nkeys = 0;
	for (size_t i = 0; i < pold->nentries; i++)
		nkeys += pold->entries[i].nframes;
	for (size_t i = 0; i < pnew->nentries; i++)
		nkeys += pnew->entries[i].nframes;
	items = calloc(ngroups ? ngroups : 1, sizeof(*items));
	keys = calloc(nkeys ? nkeys : 1, sizeof(*keys));
	des = calloc(ngroups ? ngroups : 1, sizeof(*des));
	d = calloc(1, sizeof(*d));
	if (!items || !keys || !des || !d)
		goto fail;

	struct dkey_frame *kp = keys;
	add_items(old_snap, pold, false, items, &nitems, &kp);
	add_items(new_snap, pnew, true, items, &nitems, &kp);
	if (nitems)
		qsort_r(items, nitems, sizeof(*items), item_cmp, &by);

	for (size_t i = 0, j; i < nitems; i = j) {
		for (j = i + 1;
		     j < nitems && !dkey_cmp(by, items[i].key, items[i].nkey,
					     items[j].key, items[j].nkey);
		     j++)
			;
		struct dentry *de = &des[nde];
		if (!merge_run(&items[i], j - i, &de->e))
			goto fail;
		de->key = items[i].key;
		de->nkey = items[i].nkey;
		nde++;
		/* Groups of fully freed traces in both: nothing to compare,
		 * and tracemalloc would not see them at all. */
		if (!de->e.bytes && !de->e.blocks && !de->e.old_bytes &&
		    !de->e.old_blocks) {
			free(de->e.frames);
			nde--;
		}
	}
	if (nde)
		qsort_r(des, nde, sizeof(*des), dentry_cmp, &by);

	d->entries = calloc(nde ? nde : 1, sizeof(*d->entries));
	if (!d->entries)
		goto fail;
	for (size_t i = 0; i < nde; i++)
		d->entries[i] = des[i].e;
	d->nentries = nde;
	d->by = by;
	d->cumulative = opts->cumulative;
	d->filtered = opts->filters && opts->filters->n > 0;
	d->old_totals = old_snap->meta.totals;
	d->new_totals = new_snap->meta.totals;

	free(des);
	free(keys);
	free(items);
	mp_profile_free(pold);
	mp_profile_free(pnew);
	*out = d;
	return MP_OK;

fail:
	if (des)
		for (size_t i = 0; i < nde; i++)
			free(des[i].e.frames);
	free(des);
	free(keys);
	free(items);
	if (d)
		free(d->entries);
	free(d);
	mp_profile_free(pold);
	mp_profile_free(pnew);
	return err;
}
