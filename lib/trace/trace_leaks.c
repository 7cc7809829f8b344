/*
 * trace_leaks.c - leak classification, leaked cycles and retained sizes.
 *
 * From the heap graph of a snapshot: Memcheck's marking from the roots
 * (reference §2.2), Tarjan's strongly connected components of the lost
 * subgraph, a dominator tree over its condensation (retained sizes,
 * reference §6), LeakSanitizer-style suppressions (trace_supp.c), and the
 * loss records and cycles of struct mp_leak_report. Every walk is
 * iterative: a heap of millions of blocks may hold a chain as long. Never
 * prints.
 */
#include <stdlib.h>
#include <string.h>

#include "memprof_trace.h"
#include "trace/trace_internal.h"

/* Marking states (Memcheck's Reachedness, reference §2.2). */
#define ST_UNREACHED 0u
#define ST_POSSIBLE 1u
#define ST_REACHABLE 2u

#define NONE UINT32_MAX

static const char *const kind_names[MP_LEAK_NKINDS] = {
	[MP_LEAK_DEFINITE] = "definite",     [MP_LEAK_INDIRECT] = "indirect",
	[MP_LEAK_POSSIBLE] = "possible",     [MP_LEAK_REACHABLE] = "reachable",
	[MP_LEAK_SUPPRESSED] = "suppressed",
};

const char *mp_leak_kind_name(enum mp_leak_kind kind)
{
	return (unsigned)kind < MP_LEAK_NKINDS ? kind_names[kind] : "?";
}

/*
 * "all" is Valgrind's --show-leak-kinds=all: the four kinds Memcheck
 * knows, not "suppressed" (name it to get it). Items may repeat; "none"
 * adds nothing.
 */
bool mp_leak_kinds_parse(const char *s, unsigned *mask)
{
	unsigned m = 0;

	if (!s || !*s)
		return false;
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		bool found = false;
		if (len == 3 && !strncmp(s, "all", 3)) {
			m |= 1u << MP_LEAK_DEFINITE | 1u << MP_LEAK_INDIRECT |
			     1u << MP_LEAK_POSSIBLE | 1u << MP_LEAK_REACHABLE;
			found = true;
		} else if (len == 4 && !strncmp(s, "none", 4)) {
			found = true;
		}
		for (unsigned k = 0; !found && k < MP_LEAK_NKINDS; k++)
			if (strlen(kind_names[k]) == len &&
			    !strncmp(s, kind_names[k], len)) {
				m |= 1u << k;
				found = true;
			}
		if (!found)
			return false;
		if (!comma)
			break;
		s = comma + 1;
		if (!*s)
			return false; /* a trailing comma */
	}
	*mask = m;
	return true;
}

/* ------------------------------------------------------------------ */

struct rstack {
	bool done;
	uint8_t supp; /* 0 unknown, 1 no match, 2 match */
	size_t nframes;
	struct mp_resolved_frame *frames;
};

/* What the report owns besides its arrays. */
struct leaks_priv {
	struct rstack *stacks; /* per snapshot stack, resolved on demand */
	size_t nstacks;
	struct mp_leak_member *members; /* of all cycles */
};

void mp_leak_report_free(struct mp_leak_report *rep)
{
	if (!rep)
		return;
	struct leaks_priv *lp = rep->priv;
	if (lp) {
		if (lp->stacks)
			for (size_t i = 0; i < lp->nstacks; i++)
				free(lp->stacks[i].frames);
		free(lp->stacks);
		free(lp->members);
		free(lp);
	}
	free(rep->records);
	free(rep->cycles);
	free(rep->block_kind);
	free(rep);
}

static enum mp_err stack_frames(const struct mp_snapshot *snap,
				const struct mp_leak_opts *opts,
				struct leaks_priv *lp, uint32_t trace,
				struct rstack **out)
{
	uint32_t s = snap->traces[trace].stack;
	struct rstack *rs = &lp->stacks[s];
	if (!rs->done) {
		enum mp_err err = mp_stack_resolve(snap, s, &opts->alloc,
						   &rs->frames, &rs->nframes);
		if (err != MP_OK)
			return err;
		rs->done = true;
	}
	*out = rs;
	return MP_OK;
}

/* The graph must index what it claims to: a reader bug or a hand-built
 * snapshot must not make us read out of bounds. */
static enum mp_err check_graph(const struct mp_snapshot *snap)
{
	const struct mp_graph *g = &snap->graph;
	size_t n = snap->nblocks;

	if (!snap->has_graph || !snap->has_blocks)
		return MP_ERR_USAGE;
	if (n >= NONE || !g->edge_start || g->edge_start[0] != 0 ||
	    g->edge_start[n] != g->nedges || (g->nedges && !g->edges) ||
	    (g->nroots && !g->roots))
		return MP_ERR_CORRUPT;
	for (size_t i = 0; i < n; i++) {
		if (g->edge_start[i] > g->edge_start[i + 1] ||
		    snap->blocks[i].trace >= snap->ntraces)
			return MP_ERR_CORRUPT;
	}
	for (size_t e = 0; e < g->nedges; e++)
		if (g->edges[e].to >= n)
			return MP_ERR_CORRUPT;
	for (size_t r = 0; r < g->nroots; r++)
		if (g->roots[r].block >= n)
			return MP_ERR_CORRUPT;
	for (size_t t = 0; t < snap->ntraces; t++)
		if (snap->traces[t].stack >= snap->nstacks)
			return MP_ERR_CORRUPT;
	return MP_OK;
}

/*
 * Memcheck's marking (mc_leakcheck.c lc_push/lc_scan_memory): a start
 * pointer from a root, or from a block reached by start pointers only,
 * makes a block Reachable; any other pointer makes an unreached block
 * Possible. A Possible block later reached by a definite chain is
 * upgraded and scanned again, so each block is pushed at most twice.
 */
static void mark(const struct mp_snapshot *snap, uint8_t *state,
		 uint32_t *stack)
{
	const struct mp_graph *g = &snap->graph;
	size_t sp = 0;

	for (size_t r = 0; r < g->nroots; r++) {
		const struct mp_root_ref *rr = &g->roots[r];
		uint32_t b = rr->block;
		if (rr->start_kinds) {
			if (state[b] != ST_REACHABLE) {
				state[b] = ST_REACHABLE;
				stack[sp++] = b;
			}
		} else if (rr->interior_kinds && state[b] == ST_UNREACHED) {
			state[b] = ST_POSSIBLE;
			stack[sp++] = b;
		}
	}
	while (sp) {
		uint32_t x = stack[--sp];
		bool definite = state[x] == ST_REACHABLE;
		for (uint64_t e = g->edge_start[x]; e < g->edge_start[x + 1];
		     e++) {
			uint32_t y = g->edges[e].to;
			if (definite &&
			    !(g->edges[e].flags & MP_EDGE_INTERIOR)) {
				if (state[y] != ST_REACHABLE) {
					state[y] = ST_REACHABLE;
					stack[sp++] = y;
				}
			} else if (state[y] == ST_UNREACHED) {
				state[y] = ST_POSSIBLE;
				stack[sp++] = y;
			}
		}
	}
}

/* Working arrays of one analysis. */
struct work {
	const struct mp_snapshot *snap;
	size_t n;
	uint8_t *state;	  /* per block: ST_* */
	uint8_t *selfref; /* per block: points to itself */
	uint32_t *idx, *low, *comp;
	uint32_t *sstack; /* Tarjan's stack; other walks reuse it */
	struct frame {
		uint32_t v;
		uint64_t e;
	} * cstack;	      /* the DFS call stack */
	uint32_t *cmembers;   /* blocks of component c: */
	uint32_t *comp_start; /* cmembers[comp_start[c]..comp_start[c+1]) */
	uint32_t ncomp;
	uint64_t *cbytes;	/* bytes of the component's blocks */
	uint32_t *cfirst;	/* its lowest block (lowest address) */
	bool *cself;		/* a block of it points to itself */
	bool *has_in;		/* an edge comes in from another component */
	uint32_t *idom, *depth; /* dominator tree; ncomp is the root */
	uint32_t *jump;		/* skew-binary jump pointers over idom */
	uint64_t *retained;
};

static bool lost(const struct work *w, uint32_t b)
{
	return w->state[b] == ST_UNREACHED;
}

/* Tarjan's SCC over the lost blocks, without recursion. Components come
 * out sinks first: an edge between components goes from a higher number
 * to a lower one. */
static void tarjan(struct work *w)
{
	const struct mp_graph *g = &w->snap->graph;
	uint32_t counter = 1, ssp = 0, npos = 0;
	size_t csp = 0;

	for (uint32_t root = 0; root < w->n; root++) {
		if (!lost(w, root) || w->idx[root])
			continue;
		w->idx[root] = w->low[root] = counter++;
		w->sstack[ssp++] = root;
		w->cstack[csp++] = (struct frame){root, g->edge_start[root]};
		while (csp) {
			struct frame *f = &w->cstack[csp - 1];
			uint32_t v = f->v;
			if (f->e < g->edge_start[v + 1]) {
				uint32_t y = g->edges[f->e++].to;
				if (!lost(w, y))
					continue;
				if (y == v)
					w->selfref[v] = 1;
				if (!w->idx[y]) {
					w->idx[y] = w->low[y] = counter++;
					w->sstack[ssp++] = y;
					w->cstack[csp++] = (struct frame){
						y, g->edge_start[y]};
				} else if (w->comp[y] == NONE &&
					   w->idx[y] < w->low[v]) {
					w->low[v] = w->idx[y]; /* on stack */
				}
				continue;
			}
			csp--;
			if (csp) {
				uint32_t p = w->cstack[csp - 1].v;
				if (w->low[v] < w->low[p])
					w->low[p] = w->low[v];
			}
			if (w->low[v] != w->idx[v])
				continue;
			uint32_t c = w->ncomp++;
			w->comp_start[c] = npos;
			uint32_t x;
			do {
				x = w->sstack[--ssp];
				w->comp[x] = c;
				w->cmembers[npos++] = x;
			} while (x != v);
		}
	}
	w->comp_start[w->ncomp] = npos;
}

/*
 * Nearest common ancestor in the dominator tree built so far. A lost list
 * whose nodes' payloads an index array also points to makes the tree as
 * deep as the list, and a walk one parent at a time quadratic; Myers'
 * skew-binary jump pointers (whose targets' depths depend on the depth
 * only) make each query O(log depth) with one word per node.
 */
static uint32_t lca(const struct work *w, uint32_t a, uint32_t b)
{
	const uint32_t *depth = w->depth, *jump = w->jump, *up = w->idom;

	if (depth[a] < depth[b]) {
		uint32_t t = a;
		a = b;
		b = t;
	}
	while (depth[a] > depth[b])
		a = depth[jump[a]] >= depth[b] ? jump[a] : up[a];
	while (a != b) {
		if (jump[a] != jump[b]) {
			a = jump[a];
			b = jump[b];
		} else {
			a = up[a];
			b = up[b];
		}
	}
	return a;
}

static void set_parent(struct work *w, uint32_t c, uint32_t p)
{
	uint32_t j = w->jump[p];
	w->idom[c] = p;
	w->depth[c] = w->depth[p] + 1;
	if (w->depth[p] - w->depth[j] == w->depth[j] - w->depth[w->jump[j]])
		w->jump[c] = w->jump[j];
	else
		w->jump[c] = p;
}

/*
 * The condensed lost graph is a DAG whose sources hang off a virtual
 * root. In topological order (descending component number) the immediate
 * dominator of a component is the nearest common dominator of its
 * predecessors (Cooper-Harvey-Kennedy's intersect, one pass suffices on a
 * DAG; lca() above). Retained bytes are then summed up the tree, children
 * first: a component's dominator always has a higher number.
 */
static bool dominators(struct work *w)
{
	const struct mp_graph *g = &w->snap->graph;
	uint32_t nc = w->ncomp;
	uint64_t *pstart = calloc((size_t)nc + 1, sizeof(*pstart));
	uint32_t *preds = NULL;
	uint64_t np = 0;

	if (!pstart)
		return false;
	for (uint32_t x = 0; x < w->n; x++) {
		if (!lost(w, x))
			continue;
		for (uint64_t e = g->edge_start[x]; e < g->edge_start[x + 1];
		     e++) {
			uint32_t y = g->edges[e].to;
			if (lost(w, y) && w->comp[y] != w->comp[x]) {
				pstart[w->comp[y] + 1]++;
				np++;
			}
		}
	}
	preds = malloc((np ? np : 1) * sizeof(*preds));
	if (!preds) {
		free(pstart);
		return false;
	}
	for (uint32_t c = 0; c < nc; c++)
		pstart[c + 1] += pstart[c];
	/* Fill using pstart[c] as a cursor, then shift back. */
	for (uint32_t x = 0; x < w->n; x++) {
		if (!lost(w, x))
			continue;
		for (uint64_t e = g->edge_start[x]; e < g->edge_start[x + 1];
		     e++) {
			uint32_t y = g->edges[e].to;
			if (lost(w, y) && w->comp[y] != w->comp[x])
				preds[pstart[w->comp[y]]++] = w->comp[x];
		}
	}
	for (uint32_t c = nc; c > 0; c--)
		pstart[c] = pstart[c - 1];
	pstart[0] = 0;

	w->idom[nc] = w->jump[nc] = nc;
	w->depth[nc] = 0;
	for (uint32_t c = nc; c-- > 0;) {
		uint64_t a = pstart[c], b = pstart[c + 1];
		uint32_t d = nc;
		w->has_in[c] = a != b;
		if (a != b) {
			d = preds[a];
			for (uint64_t k = a + 1; k < b; k++)
				d = lca(w, d, preds[k]);
		}
		set_parent(w, c, d);
	}
	for (uint32_t c = 0; c <= nc; c++)
		w->retained[c] = c < nc ? w->cbytes[c] : 0;
	for (uint32_t c = 0; c < nc; c++)
		w->retained[w->idom[c]] += w->retained[c];
	free(preds);
	free(pstart);
	return true;
}

/*
 * LeakSanitizer's second pass (reference §3.1 step 7): lost blocks that
 * only suppressed blocks keep alive are suppressed too. A lost block
 * stays unsuppressed when a path that avoids suppressed blocks leads to it
 * from a source component none of whose blocks is suppressed; those
 * components are exactly the sources of the lost graph left once the
 * suppressed blocks are taken out (and not fed by them).
 */
static bool propagate_suppressed(struct work *w, uint8_t *kind)
{
	const struct mp_graph *g = &w->snap->graph;
	bool *csupp = calloc((size_t)w->ncomp + 1, sizeof(*csupp));
	uint8_t *kept = calloc(w->n ? w->n : 1, 1);
	uint32_t sp = 0;

	if (!csupp || !kept) {
		free(csupp);
		free(kept);
		return false;
	}
	for (uint32_t b = 0; b < w->n; b++)
		if (lost(w, b) && kind[b] == MP_LEAK_SUPPRESSED)
			csupp[w->comp[b]] = true;
	for (uint32_t c = 0; c < w->ncomp; c++) {
		if (w->has_in[c] || csupp[c])
			continue;
		for (uint32_t k = w->comp_start[c]; k < w->comp_start[c + 1];
		     k++) {
			uint32_t b = w->cmembers[k];
			kept[b] = 1;
			w->sstack[sp++] = b;
		}
	}
	while (sp) {
		uint32_t x = w->sstack[--sp];
		for (uint64_t e = g->edge_start[x]; e < g->edge_start[x + 1];
		     e++) {
			uint32_t y = g->edges[e].to;
			if (lost(w, y) && !kept[y] &&
			    kind[y] != MP_LEAK_SUPPRESSED) {
				kept[y] = 1;
				w->sstack[sp++] = y;
			}
		}
	}
	for (uint32_t b = 0; b < w->n; b++)
		if (lost(w, b) && !kept[b])
			kind[b] = MP_LEAK_SUPPRESSED;
	free(csupp);
	free(kept);
	return true;
}

/* Loss record order (Valgrind's Reachedness): least serious first. */
static unsigned kind_rank(enum mp_leak_kind k)
{
	switch (k) {
	case MP_LEAK_SUPPRESSED: return 0;
	case MP_LEAK_REACHABLE: return 1;
	case MP_LEAK_POSSIBLE: return 2;
	case MP_LEAK_INDIRECT: return 3;
	default: return 4;
	}
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int record_cmp(const void *pa, const void *pb)
{
	const struct mp_leak_record *a = pa, *b = pb;
	int c;
	if ((c = cmp_u64(a->bytes, b->bytes)))
		return c;
	if ((c = cmp_u64(kind_rank(a->kind), kind_rank(b->kind))))
		return c;
	if ((c = cmp_u64(a->blocks, b->blocks)))
		return c;
	return cmp_u64(a->trace, b->trace);
}

/* Groups records to merge: kind, then resolved frames, then trace. */
static int merge_cmp(const void *pa, const void *pb)
{
	const struct mp_leak_record *a = pa, *b = pb;
	int c;
	if ((c = cmp_u64(a->kind, b->kind)))
		return c;
	if ((c = mp__frames_cmp(a->frames, a->nframes, b->frames, b->nframes)))
		return c;
	return cmp_u64(a->trace, b->trace);
}

static int cycle_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct work *w = ctx;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	uint32_t na = w->comp_start[a + 1] - w->comp_start[a];
	uint32_t nb = w->comp_start[b + 1] - w->comp_start[b];
	int c;
	if ((c = cmp_u64(w->cbytes[b], w->cbytes[a])))
		return c;
	if ((c = cmp_u64(nb, na)))
		return c;
	return cmp_u64(w->cfirst[a], w->cfirst[b]);
}

/*
 * One record per kind and resolved stack: blocks are bucketed by trace (a
 * counting sort, no hash table) and split by kind; then records of one
 * kind whose frames are equal (mp__frames_cmp: two call sites on one
 * source line give two traces) merge, keeping the lowest trace and
 * summing the rest. A definite block retains its own bytes; the lowest
 * block of a source component also carries what the component keeps
 * alive besides itself, so that a cycle's retained bytes are counted once
 * and the records' retained bytes add up to the lost bytes that no
 * suppression took.
 */
static enum mp_err build_records(struct work *w, const uint8_t *kind,
				 struct mp_leak_report *rep,
				 const struct mp_leak_opts *opts,
				 struct leaks_priv *lp)
{
	const struct mp_snapshot *snap = w->snap;
	uint32_t *tstart = calloc(snap->ntraces + 1, sizeof(*tstart));
	uint32_t *perm = malloc((w->n ? w->n : 1) * sizeof(*perm));
	struct mp_leak_record *recs = NULL;
	size_t nrec = 0, cap = 0;
	enum mp_err err = MP_ERR_NOMEM;

	if (!tstart || !perm)
		goto nomem;
	for (uint32_t b = 0; b < w->n; b++)
		tstart[snap->blocks[b].trace + 1]++;
	for (size_t t = 0; t < snap->ntraces; t++)
		tstart[t + 1] += tstart[t];
	for (uint32_t b = 0; b < w->n; b++)
		perm[tstart[snap->blocks[b].trace]++] = b;
	for (size_t t = snap->ntraces; t > 0; t--)
		tstart[t] = tstart[t - 1];
	tstart[0] = 0;

	for (size_t t = 0; t < snap->ntraces; t++) {
		struct {
			uint64_t bytes, blocks, retained;
		} acc[MP_LEAK_NKINDS] = {{0}};
		for (uint32_t k = tstart[t]; k < tstart[t + 1]; k++) {
			uint32_t b = perm[k];
			uint64_t size = snap->blocks[b].size;
			acc[kind[b]].bytes += size;
			acc[kind[b]].blocks++;
			if (kind[b] == MP_LEAK_DEFINITE) {
				uint32_t c = w->comp[b];
				acc[kind[b]].retained += size;
				if (w->cfirst[c] == b)
					acc[kind[b]].retained +=
						w->retained[c] - w->cbytes[c];
			}
		}
		for (unsigned k = 0; k < MP_LEAK_NKINDS; k++) {
			if (!acc[k].blocks)
				continue;
			if (nrec == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct mp_leak_record *nr =
					realloc(recs, ncap * sizeof(*nr));
				if (!nr)
					goto nomem;
				recs = nr;
				cap = ncap;
			}
			struct mp_leak_record *r = &recs[nrec++];
			memset(r, 0, sizeof(*r));
			r->kind = (enum mp_leak_kind)k;
			r->trace = (uint32_t)t;
			r->bytes = acc[k].bytes;
			r->blocks = acc[k].blocks;
			r->retained_bytes = acc[k].retained;
		}
	}
	for (size_t i = 0; i < nrec; i++) {
		struct rstack *rs;
		if ((err = stack_frames(snap, opts, lp, recs[i].trace, &rs)) !=
		    MP_OK)
			goto nomem;
		recs[i].frames = rs->frames;
		recs[i].nframes = rs->nframes;
	}
	if (nrec) {
		size_t out = 0;
		qsort(recs, nrec, sizeof(*recs), merge_cmp);
		for (size_t i = 0; i < nrec; i++) {
			struct mp_leak_record *m = out ? &recs[out - 1] : NULL;
			if (m && m->kind == recs[i].kind &&
			    !mp__frames_cmp(m->frames, m->nframes,
					    recs[i].frames, recs[i].nframes)) {
				m->bytes += recs[i].bytes;
				m->blocks += recs[i].blocks;
				m->retained_bytes += recs[i].retained_bytes;
			} else {
				recs[out++] = recs[i];
			}
		}
		nrec = out;
		qsort(recs, nrec, sizeof(*recs), record_cmp);
	}
	free(tstart);
	free(perm);
	rep->records = recs;
	rep->nrecords = nrec;
	return MP_OK;
nomem:
	free(tstart);
	free(perm);
	free(recs);
	return err;
}

/*
 * Cycles: components of more than one block or pointing to themselves,
 * none of whose blocks is suppressed. Members are listed in depth-first
 * preorder along the edges (sorted by target) inside the component, from
 * its lowest block: for a simple cycle, the cycle itself. Consecutive
 * members whose resolved frames are equal (mp__frames_cmp) merge into one
 * run, keeping the lowest trace (the last run does not wrap around into
 * the first).
 */
static enum mp_err build_cycles(struct work *w, const uint8_t *kind,
				struct mp_leak_report *rep,
				const struct mp_leak_opts *opts,
				struct leaks_priv *lp)
{
	const struct mp_graph *g = &w->snap->graph;
	uint32_t *ids = NULL;
	size_t nids = 0, nmem = 0, memcap = 0;
	struct mp_leak_member *mem = NULL;
	size_t *first = NULL;
	enum mp_err err = MP_ERR_NOMEM;

	for (uint32_t c = 0; c < w->ncomp; c++)
		if (w->comp_start[c + 1] - w->comp_start[c] > 1 || w->cself[c])
			nids++;
	if (!nids)
		return MP_OK;
	ids = malloc(nids * sizeof(*ids));
	first = malloc(nids * sizeof(*first));
	rep->cycles = calloc(nids, sizeof(*rep->cycles));
	if (!ids || !first || !rep->cycles)
		goto nomem;
	nids = 0;
	for (uint32_t c = 0; c < w->ncomp; c++) {
		if (!(w->comp_start[c + 1] - w->comp_start[c] > 1 ||
		      w->cself[c]))
			continue;
		bool supp = false;
		for (uint32_t k = w->comp_start[c]; k < w->comp_start[c + 1];
		     k++)
			if (kind[w->cmembers[k]] == MP_LEAK_SUPPRESSED)
				supp = true;
		if (!supp)
			ids[nids++] = c;
	}
	if (nids)
		qsort_r(ids, nids, sizeof(*ids), cycle_cmp, w);

	/* idx[] is non-zero for every lost block after tarjan(): zero it
	 * to mark a block listed. */
	for (size_t i = 0; i < nids; i++) {
		uint32_t c = ids[i];
		struct mp_leak_cycle *cy = &rep->cycles[i];
		cy->bytes = w->cbytes[c];
		cy->blocks = w->comp_start[c + 1] - w->comp_start[c];
		cy->is_root = !w->has_in[c];
		cy->retained_bytes = w->retained[c];
		first[i] = nmem;
		size_t csp = 0;
		uint32_t start = w->cfirst[c];
		w->idx[start] = 0;
		w->cstack[csp++] = (struct frame){start, g->edge_start[start]};
		uint32_t v = start;
		for (;;) {
			/* Emit v: extend the current run or start one. */
			const struct mp_block *bl = &w->snap->blocks[v];
			struct mp_leak_member *m =
				nmem > first[i] ? &mem[nmem - 1] : NULL;
			struct rstack *rs;
			if ((err = stack_frames(w->snap, opts, lp, bl->trace,
						&rs)) != MP_OK)
				goto nomem;
			if (m && (m->trace == bl->trace ||
				  !mp__frames_cmp(m->frames, m->nframes,
						  rs->frames, rs->nframes))) {
				m->bytes += bl->size;
				m->blocks++;
				if (bl->trace < m->trace)
					m->trace = bl->trace;
			} else {
				if (nmem == memcap) {
					size_t ncap = memcap ? memcap * 2 : 16;
					struct mp_leak_member *nm = realloc(
						mem, ncap * sizeof(*nm));
					if (!nm) {
						err = MP_ERR_NOMEM;
						goto nomem;
					}
					mem = nm;
					memcap = ncap;
				}
				m = &mem[nmem++];
				memset(m, 0, sizeof(*m));
				m->trace = bl->trace;
				m->bytes = bl->size;
				m->blocks = 1;
				m->frames = rs->frames;
				m->nframes = rs->nframes;
			}
			/* Next in preorder. */
			v = NONE;
			while (csp && v == NONE) {
				struct frame *f = &w->cstack[csp - 1];
				if (f->e == g->edge_start[f->v + 1]) {
					csp--;
					continue;
				}
				uint32_t y = g->edges[f->e++].to;
				if (lost(w, y) && w->comp[y] == c &&
				    w->idx[y]) {
					w->idx[y] = 0;
					w->cstack[csp++] = (struct frame){
						y, g->edge_start[y]};
					v = y;
				}
			}
			if (v == NONE)
				break;
		}
		cy->nmembers = nmem - first[i];
	}
	rep->ncycles = nids;
	for (size_t i = 0; i < nids; i++)
		rep->cycles[i].members = mem + first[i];
	lp->members = mem;
	free(ids);
	free(first);
	return MP_OK;
nomem:
	free(ids);
	free(first);
	free(mem);
	free(rep->cycles);
	rep->cycles = NULL;
	return err;
}

static void work_free(struct work *w)
{
	free(w->state);
	free(w->selfref);
	free(w->idx);
	free(w->low);
	free(w->comp);
	free(w->sstack);
	free(w->cstack);
	free(w->cmembers);
	free(w->comp_start);
	free(w->cbytes);
	free(w->cfirst);
	free(w->cself);
	free(w->has_in);
	free(w->idom);
	free(w->depth);
	free(w->jump);
	free(w->retained);
}

#define PHASES "analysing the heap graph"

enum mp_err mp_leaks_analyze(const struct mp_snapshot *snap,
			     const struct mp_leak_opts *opts,
			     struct mp_leak_report **out)
{
	static const struct mp_leak_opts no_opts;
	struct work w = {.snap = snap, .n = snap->nblocks};
	struct mp_leak_report *rep = NULL;
	struct leaks_priv *lp = NULL;
	enum mp_err err = check_graph(snap);
	size_t n1 = w.n ? w.n : 1;

	if (err != MP_OK)
		return err;
	if (!opts)
		opts = &no_opts;
	err = MP_ERR_NOMEM;
	rep = calloc(1, sizeof(*rep));
	lp = calloc(1, sizeof(*lp));
	if (!rep || !lp)
		goto fail;
	rep->priv = lp;
	lp->nstacks = snap->nstacks;
	lp->stacks =
		calloc(snap->nstacks ? snap->nstacks : 1, sizeof(*lp->stacks));
	rep->block_kind = malloc(n1);
	w.state = calloc(n1, 1);
	w.selfref = calloc(n1, 1);
	w.idx = calloc(n1, sizeof(uint32_t));
	w.low = malloc(n1 * sizeof(uint32_t));
	w.comp = malloc(n1 * sizeof(uint32_t));
	/* mark() pushes a block at most twice. */
	w.sstack = malloc(2 * n1 * sizeof(uint32_t));
	w.cstack = malloc(n1 * sizeof(*w.cstack));
	w.cmembers = malloc(n1 * sizeof(uint32_t));
	w.comp_start = malloc((n1 + 1) * sizeof(uint32_t));
	if (!lp->stacks || !rep->block_kind || !w.state || !w.selfref ||
	    !w.idx || !w.low || !w.comp || !w.sstack || !w.cstack ||
	    !w.cmembers || !w.comp_start)
		goto fail;
	for (size_t i = 0; i < w.n; i++)
		w.comp[i] = NONE;

	/* Phases, for a progress line on big heaps (millions of blocks). */
	mp__progress(PHASES, 0, 4);
	mark(snap, w.state, w.sstack);
	mp__progress(PHASES, 1, 4);
	tarjan(&w);
	mp__progress(PHASES, 2, 4);

	size_t nc1 = (size_t)w.ncomp + 1;
	w.cbytes = calloc(nc1, sizeof(*w.cbytes));
	w.cfirst = malloc(nc1 * sizeof(*w.cfirst));
	w.cself = calloc(nc1, sizeof(*w.cself));
	w.has_in = calloc(nc1, sizeof(*w.has_in));
	w.idom = malloc(nc1 * sizeof(*w.idom));
	w.depth = malloc(nc1 * sizeof(*w.depth));
	w.jump = malloc(nc1 * sizeof(*w.jump));
	w.retained = malloc(nc1 * sizeof(*w.retained));
	if (!w.cbytes || !w.cfirst || !w.cself || !w.has_in || !w.idom ||
	    !w.depth || !w.jump || !w.retained)
		goto fail;
	for (uint32_t c = 0; c < w.ncomp; c++) {
		uint32_t lo = NONE;
		for (uint32_t k = w.comp_start[c]; k < w.comp_start[c + 1];
		     k++) {
			uint32_t b = w.cmembers[k];
			w.cbytes[c] += snap->blocks[b].size;
			if (b < lo)
				lo = b;
			if (w.selfref[b])
				w.cself[c] = true;
		}
		w.cfirst[c] = lo;
	}
	if (!dominators(&w))
		goto fail;
	mp__progress(PHASES, 3, 4);

	uint8_t *kind = rep->block_kind;
	bool any_lost_supp = false;
	for (uint32_t b = 0; b < w.n; b++) {
		switch (w.state[b]) {
		case ST_REACHABLE: kind[b] = MP_LEAK_REACHABLE; break;
		case ST_POSSIBLE: kind[b] = MP_LEAK_POSSIBLE; break;
		default:
			kind[b] = w.has_in[w.comp[b]] ? MP_LEAK_INDIRECT
						      : MP_LEAK_DEFINITE;
			break;
		}
		if (!opts->supp || kind[b] == MP_LEAK_REACHABLE)
			continue;
		struct rstack *rs;
		if ((err = stack_frames(snap, opts, lp, snap->blocks[b].trace,
					&rs)) != MP_OK)
			goto fail;
		if (!rs->supp)
			rs->supp = mp_suppressions_match(opts->supp, rs->frames,
							 rs->nframes)
					   ? 2
					   : 1;
		if (rs->supp == 2) {
			if (kind[b] != MP_LEAK_POSSIBLE)
				any_lost_supp = true;
			kind[b] = MP_LEAK_SUPPRESSED;
		}
	}
	err = MP_ERR_NOMEM;

	if (any_lost_supp && !propagate_suppressed(&w, kind))
		goto fail;

	for (uint32_t b = 0; b < w.n; b++) {
		rep->summary[kind[b]].bytes += snap->blocks[b].size;
		rep->summary[kind[b]].blocks++;
	}
	if ((err = build_records(&w, kind, rep, opts, lp)) != MP_OK)
		goto fail;
	if ((err = build_cycles(&w, kind, rep, opts, lp)) != MP_OK)
		goto fail;
	rep->threads = snap->graph.threads;
	rep->threads_unscanned = snap->graph.threads_unscanned;
	work_free(&w);
	mp__progress(PHASES, 4, 4);
	*out = rep;
	return MP_OK;

fail:
	mp__progress(PHASES, 4, 4);
	work_free(&w);
	mp_leak_report_free(rep);
	if (!rep)
		free(lp);
	return err;
}
