/*
 * trace_check.c - the budgets of `memprof check`.
 *
 * Measures a snapshot against the budgets a CI job sets: leaked bytes and
 * blocks of chosen kinds, leaked cycles, the biggest single loss record
 * (pytest-memray's limit_leaks), the peak, and the growth of one call site
 * against a baseline. The figures come from the other analyses
 * (mp_leaks_analyze, mp_profile_build, mp_diff_build); this file only
 * picks the measured figure and the worst site. Never prints.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "memprof_trace.h"
#include "trace/trace_internal.h"

#define LEAK_BUDGETS                                                    \
	(1u << MP_CHECK_MAX_LEAKED | 1u << MP_CHECK_MAX_LEAKED_BLOCKS | \
	 1u << MP_CHECK_NO_LEAKED_CYCLES | 1u << MP_CHECK_MAX_SITE_LEAK)

static const char *const budget_names[MP_CHECK_NBUDGETS] = {
	[MP_CHECK_MAX_LEAKED] = "max-leaked",
	[MP_CHECK_MAX_LEAKED_BLOCKS] = "max-leaked-blocks",
	[MP_CHECK_NO_LEAKED_CYCLES] = "no-leaked-cycles",
	[MP_CHECK_MAX_SITE_LEAK] = "max-site-leak",
	[MP_CHECK_MAX_PEAK] = "max-peak",
	[MP_CHECK_MAX_GROWTH] = "max-growth",
};

const char *mp_check_budget_name(enum mp_check_budget b)
{
	if ((unsigned)b >= MP_CHECK_NBUDGETS)
		return "unknown";
	return budget_names[b];
}

/* frames[0], or an all-unknown frame when the allocator's were all. */
static void set_site(struct mp_check_result *r,
		     const struct mp_resolved_frame *frames, size_t n)
{
	r->has_site = true;
	if (n)
		r->site = frames[0];
	else
		memset(&r->site, 0, sizeof(r->site));
}

/* The biggest loss record of the counted kinds: by bytes, or by blocks
 * (then bytes). Records are sorted ascending by bytes, so among equals the
 * last one wins, as in Valgrind's listing where the biggest come last. */
static const struct mp_leak_record *worst_record(
	const struct mp_leak_report *rep, unsigned kinds, bool by_blocks)
{
	const struct mp_leak_record *w = NULL;
	for (size_t i = 0; i < rep->nrecords; i++) {
		const struct mp_leak_record *r = &rep->records[i];
		if (!(kinds & 1u << r->kind) || r->blocks == 0)
			continue;
		if (!w) {
			w = r;
			continue;
		}
		if (by_blocks
			    ? (r->blocks > w->blocks ||
			       (r->blocks == w->blocks && r->bytes >= w->bytes))
			    : r->bytes >= w->bytes)
			w = r;
	}
	return w;
}

static void site_from_record(struct mp_check_result *r,
			     const struct mp_leak_record *rec)
{
	if (!rec)
		return;
	set_site(r, rec->frames, rec->nframes);
	r->site_bytes = rec->bytes;
	r->site_blocks = rec->blocks;
	r->site_kind = rec->kind;
}

static void eval_leaks(const struct mp_leak_report *rep,
		       const struct mp_check_opts *o, unsigned budget,
		       struct mp_check_result *r)
{
	unsigned kinds = o->leak_kinds;
	uint64_t bytes = 0, blocks = 0;
	for (unsigned k = 0; k < MP_LEAK_NKINDS; k++)
		if (kinds & 1u << k) {
			bytes += rep->summary[k].bytes;
			blocks += rep->summary[k].blocks;
		}

	switch (budget) {
	case MP_CHECK_MAX_LEAKED:
		r->limit = o->max_leaked;
		r->measured = bytes;
		r->bytes = bytes;
		r->blocks = blocks;
		site_from_record(r, worst_record(rep, kinds, false));
		break;
	case MP_CHECK_MAX_LEAKED_BLOCKS:
		r->limit = o->max_leaked_blocks;
		r->measured = blocks;
		r->bytes = bytes;
		r->blocks = blocks;
		site_from_record(r, worst_record(rep, kinds, true));
		break;
	case MP_CHECK_MAX_SITE_LEAK: {
		const struct mp_leak_record *w =
			worst_record(rep, kinds, false);
		r->limit = o->max_site_leak;
		if (w) {
			r->measured = r->bytes = w->bytes;
			r->blocks = w->blocks;
		}
		site_from_record(r, w);
		break;
	}
	default: /* MP_CHECK_NO_LEAKED_CYCLES */
		r->limit = 0;
		r->measured = rep->ncycles;
		for (size_t i = 0; i < rep->ncycles; i++) {
			r->bytes += rep->cycles[i].bytes;
			r->blocks += rep->cycles[i].blocks;
		}
		/* Cycles are sorted by bytes, descending. */
		if (rep->ncycles) {
			const struct mp_leak_cycle *c = &rep->cycles[0];
			if (c->nmembers)
				set_site(r, c->members[0].frames,
					 c->members[0].nframes);
			else
				set_site(r, NULL, 0);
			r->site_bytes = c->bytes;
			r->site_blocks = c->blocks;
		}
		break;
	}
}

static enum mp_err eval_peak(const struct mp_snapshot *snap,
			     const struct mp_check_opts *o,
			     struct mp_check_result *r)
{
	struct mp_profile_opts po = {.by = MP_GROUP_TRACEBACK,
				     .sort = MP_SORT_PEAK,
				     .alloc = o->alloc};
	struct mp_profile *prof;
	enum mp_err err = mp_profile_build(snap, &po, &prof);
	if (err != MP_OK)
		return err;
	r->limit = o->max_peak;
	r->measured = r->bytes = snap->meta.totals.peak_bytes;
	/* Entries are sorted by bytes at the peak, descending. */
	if (prof->nentries && prof->entries[0].peak_bytes) {
		const struct mp_profile_entry *e = &prof->entries[0];
		set_site(r, e->frames, e->nframes);
		r->site_bytes = e->peak_bytes;
	}
	mp_profile_free(prof);
	return MP_OK;
}

/*
 * A shallow copy of snap whose traces count their bytes at the peak as
 * live, so that mp_diff_build compares peaks site by site with its own
 * matching rules. The copy's traces array is malloc'd; everything else is
 * snap's.
 */
static enum mp_err peak_view(const struct mp_snapshot *snap,
			     struct mp_snapshot *view)
{
	*view = *snap;
	view->traces = calloc(snap->ntraces ? snap->ntraces : 1,
			      sizeof(*view->traces));
	if (!view->traces)
		return MP_ERR_NOMEM;
	for (size_t i = 0; i < snap->ntraces; i++) {
		view->traces[i] = snap->traces[i];
		view->traces[i].live_bytes = snap->traces[i].peak_bytes;
	}
	return MP_OK;
}

static enum mp_err eval_growth(const struct mp_snapshot *snap,
			       const struct mp_snapshot *base,
			       const struct mp_check_opts *o,
			       struct mp_check_result *r)
{
	struct mp_snapshot old_view, new_view;
	const struct mp_snapshot *old_snap = base, *new_snap = snap;
	bool peak = o->growth_of == MP_GROWTH_PEAK;
	enum mp_err err;

	if (peak) {
		if ((err = peak_view(base, &old_view)) != MP_OK)
			return err;
		if ((err = peak_view(snap, &new_view)) != MP_OK) {
			free(old_view.traces);
			return err;
		}
		old_snap = &old_view;
		new_snap = &new_view;
	}
	struct mp_diff_opts dopts = {.by = MP_GROUP_TRACEBACK,
				     .alloc = o->alloc};
	struct mp_diff *d = NULL;
	err = mp_diff_build(old_snap, new_snap, &dopts, &d);
	if (peak) {
		free(old_view.traces);
		free(new_view.traces);
	}
	if (err != MP_OK)
		return err;

	const struct mp_totals *ot = &base->meta.totals,
			       *nt = &snap->meta.totals;
	r->base_bytes = peak ? ot->peak_bytes : ot->live_bytes;
	r->bytes = peak ? nt->peak_bytes : nt->live_bytes;
	r->blocks = nt->live_blocks;
	if (o->growth_is_percent)
		r->limit = (uint64_t)floor(o->max_growth_percent / 100.0 *
					   (double)r->base_bytes);
	else
		r->limit = o->max_growth;

	/* Entries are sorted by |bytes_diff|: the biggest growth is the
	 * first entry with a positive difference. */
	for (size_t i = 0; i < d->nentries; i++) {
		const struct mp_diff_entry *e = &d->entries[i];
		if (e->bytes_diff <= 0)
			continue;
		if (r->has_site && (uint64_t)e->bytes_diff <= r->measured)
			continue;
		r->measured = (uint64_t)e->bytes_diff;
		set_site(r, e->frames, e->nframes);
		r->site_bytes = e->bytes;
		r->site_blocks = e->blocks;
		r->site_old_bytes = e->old_bytes;
	}
	/* The frames' storage goes with the diff; their strings are the
	 * snapshots', so the copied site frame stays valid. */
	mp_diff_free(d);
	return MP_OK;
}

enum mp_err mp_check_run(const struct mp_snapshot *snap,
			 const struct mp_snapshot *baseline,
			 const struct mp_check_opts *opts,
			 struct mp_check_report *out)
{
	unsigned budgets = opts->budgets;
	if (budgets >> MP_CHECK_NBUDGETS)
		return MP_ERR_USAGE;
	if ((budgets & LEAK_BUDGETS) && !snap->has_graph)
		return MP_ERR_USAGE;
	if (budgets & 1u << MP_CHECK_MAX_GROWTH) {
		if (!baseline || (unsigned)opts->growth_of > MP_GROWTH_PEAK)
			return MP_ERR_USAGE;
		if (opts->growth_is_percent && !(opts->max_growth_percent >= 0))
			return MP_ERR_USAGE;
	}

	struct mp_check_report rep;
	memset(&rep, 0, sizeof(rep));
	rep.ok = true;
	struct mp_leak_report *leaks = NULL;
	enum mp_err err = MP_OK;

	if (budgets & LEAK_BUDGETS) {
		struct mp_leak_opts lo = {.supp = opts->supp,
					  .alloc = opts->alloc};
		if ((err = mp_leaks_analyze(snap, &lo, &leaks)) != MP_OK)
			return err;
	}
	for (unsigned b = 0; b < MP_CHECK_NBUDGETS; b++) {
		if (!(budgets & 1u << b))
			continue;
		struct mp_check_result *r = &rep.results[rep.nresults++];
		r->budget = (enum mp_check_budget)b;
		if (LEAK_BUDGETS & 1u << b)
			eval_leaks(leaks, opts, b, r);
		else if (b == MP_CHECK_MAX_PEAK)
			err = eval_peak(snap, opts, r);
		else
			err = eval_growth(snap, baseline, opts, r);
		if (err != MP_OK)
			break;
		r->ok = r->measured <= r->limit;
		if (!r->ok)
			rep.ok = false;
	}
	/* The leak report's frames are freed here: the sites copied from
	 * them hold only pointers into the snapshot. */
	mp_leak_report_free(leaks);
	if (err != MP_OK)
		return err;
	*out = rep;
	return MP_OK;
}
