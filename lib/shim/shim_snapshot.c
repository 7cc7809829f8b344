/*
 * shim_snapshot.c - writes the process's heap state as a .memprof file.
 *
 * Sections META, MODS, STKS, TRCS, BLKS (formats/snapshot.md), through the
 * hook-safe writer in lib/common. Traces are numbered in a first pass;
 * traces and blocks created by other threads while the file is being
 * written are left out rather than half-written. The file is written to a
 * temporary name and renamed, so a reader never sees a partial file, and
 * removed when anything fails: a full disk, or a file size limit (whose
 * SIGXFSZ would kill the program: it is blocked in the writing thread and
 * taken back). The descriptor is kept above 2: a program that closed its
 * standard streams must not have another thread write into our file.
 *
 * Modules the program unloaded (dlclose) are remembered by the dlclose
 * hook and written after the loaded ones, so that frames in them still
 * resolve (see write_modules for which module wins an address).
 * Hook-safe: no malloc, no stdio; memory from mmap. Runs with shim_busy
 * set, so the program's threads may go on allocating meanwhile.
 */
#include <elf.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h> /* rename(2) only; no stdio streams */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common_format.h"
#include "common/common_writer.h"
#include "shim/shim_internal.h"

static _Atomic uint32_t snap_gen;
static _Atomic int snap_busy;

/* ---- modules ------------------------------------------------------------ */

#define MAX_MODULES 8192
#define POOL_SIZE (4u << 20)

struct mod {
	uint32_t path_off, path_len;
	uint64_t base, start, end;
	unsigned char build_id[64];
	uint32_t build_id_len;
};

struct mod_list {
	struct mod *mods;
	size_t n;
	char *pool;
	size_t pool_used;
	size_t cap, pool_cap; /* 0: MAX_MODULES, POOL_SIZE */
};

static size_t slen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

static void find_build_id(struct dl_phdr_info *info, struct mod *m)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		const char *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
			const char *name = p + sizeof(*nh);
			const char *desc = name + ((nh->n_namesz + 3) & ~3u);
			const char *next = desc + ((nh->n_descsz + 3) & ~3u);
			if (next > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID &&
			    nh->n_namesz == 4 && !memcmp(name, "GNU", 4) &&
			    nh->n_descsz <= 64) {
				memcpy(m->build_id, desc, nh->n_descsz);
				m->build_id_len = nh->n_descsz;
				return;
			}
			p = next;
		}
	}
}

static int module_cb(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size;
	struct mod_list *l = ctx;
	if (l->n >= (l->cap ? l->cap : MAX_MODULES))
		return 1;
	struct mod *m = &l->mods[l->n];
	memset(m, 0, sizeof(*m));
	char exe[4096];
	const char *name = info->dlpi_name;
	if (!name || !*name) {
		/* The main program has no name here. */
		if (l->n != 0)
			return 0;
		ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[k > 0 ? k : 0] = '\0';
		name = exe;
	}
	size_t len = slen(name);
	if (l->pool_used + len > (l->pool_cap ? l->pool_cap : POOL_SIZE))
		return 1;
	memcpy(l->pool + l->pool_used, name, len);
	m->path_off = (uint32_t)l->pool_used;
	m->path_len = (uint32_t)len;
	l->pool_used += len;
	m->base = info->dlpi_addr;
	uint64_t lo = UINT64_MAX, hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t s = info->dlpi_addr + ph->p_vaddr;
		if (s < lo)
			lo = s;
		if (s + ph->p_memsz > hi)
			hi = s + ph->p_memsz;
	}
	if (lo == UINT64_MAX)
		return 0;
	m->start = lo;
	m->end = hi;
	find_build_id(info, m);
	l->n++;
	return 0;
}

/* ---- unloaded modules ---------------------------------------------------
 */

#define MAX_UNLOADED 256
#define UNLOADED_PATH 4096

struct unloaded {
	struct mod m; /* path_off unused */
	char path[UNLOADED_PATH];
};

/* A ring of the last MAX_UNLOADED modules unloaded, newest at
 * (unl_next - 1); mmap'd at the first dlclose that unloads something. */
static struct unloaded *unl;
static size_t unl_next, unl_count;
static _Atomic int unl_lock;

static void unl_acquire(void)
{
	while (atomic_exchange_explicit(&unl_lock, 1, memory_order_acquire))
		sched_yield();
}

static void unl_release(void)
{
	atomic_store_explicit(&unl_lock, 0, memory_order_release);
}

/* A smaller list than a snapshot's: only to tell what dlclose took. */
#define BEFORE_MODULES 2048
#define BEFORE_POOL (512u << 10)

static struct mod_list *before_new(void)
{
	size_t len = sizeof(struct mod_list) +
		     BEFORE_MODULES * sizeof(struct mod) + BEFORE_POOL;
	struct mod_list *l = shim_mmap(len);
	if (!l)
		return NULL;
	l->mods = (struct mod *)(l + 1);
	l->pool = (char *)(l->mods + BEFORE_MODULES);
	l->cap = BEFORE_MODULES;
	l->pool_cap = BEFORE_POOL;
	return l;
}

static void before_free(struct mod_list *l)
{
	shim_munmap(l, sizeof(struct mod_list) +
			       BEFORE_MODULES * sizeof(struct mod) +
			       BEFORE_POOL);
}

struct still_ctx {
	const struct mod *m;
	bool found;
};

static int still_cb(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size;
	struct still_ctx *c = ctx;
	if (info->dlpi_addr != c->m->base)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD &&
		    info->dlpi_addr + ph->p_vaddr == c->m->start) {
			c->found = true;
			return 1;
		}
	}
	return 0;
}

static bool same_module(const struct mod *a, const char *apath,
			const struct mod *b, const char *bpath)
{
	return a->base == b->base && a->start == b->start && a->end == b->end &&
	       a->path_len == b->path_len && !memcmp(apath, bpath, a->path_len);
}

static void unloaded_add(const struct mod *m, const char *path)
{
	if (!unl) {
		struct unloaded *u = shim_mmap(MAX_UNLOADED * sizeof(*u));
		if (!u)
			return;
		unl = u;
	}
	size_t len = m->path_len < UNLOADED_PATH ? m->path_len : 0;
	if (!len)
		return;
	/* A plugin loaded and unloaded again and again at one place is
	 * one entry. */
	for (size_t k = 0; k < unl_count; k++)
		if (same_module(&unl[k].m, unl[k].path, m, path))
			return;
	struct unloaded *u = &unl[unl_next];
	u->m = *m;
	u->m.path_off = 0;
	memcpy(u->path, path, len);
	unl_next = (unl_next + 1) % MAX_UNLOADED;
	if (unl_count < MAX_UNLOADED)
		unl_count++;
}

void *shim_unload_begin(void)
{
	if (!atomic_load(&shim_active))
		return NULL;
	struct mod_list *l = before_new();
	if (l)
		dl_iterate_phdr(module_cb, l);
	return l;
}

void shim_unload_end(void *vbefore)
{
	struct mod_list *l = vbefore;
	if (!l)
		return;
	unl_acquire();
	/* Module 0 is the program itself, never unloaded. */
	for (size_t i = 1; i < l->n; i++) {
		struct still_ctx c = {.m = &l->mods[i]};
		dl_iterate_phdr(still_cb, &c);
		if (!c.found)
			unloaded_add(&l->mods[i],
				     l->pool + l->mods[i].path_off);
	}
	unl_release();
	before_free(l);
}

void shim_snapshot_after_fork(void)
{
	atomic_store(&snap_busy, 0);
	atomic_store(&unl_lock, 0);
}

static bool overlaps(const struct mod *m, const struct mod *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (m->start < v[i].end && v[i].start < m->end)
			return true;
	return false;
}

/*
 * Appends the unloaded modules to l. A pc is a module's when the module
 * covers it, but a library loaded after another was unloaded often lands
 * at the same addresses, and a pc alone cannot say which of the two it
 * was taken in. The snapshot keeps one module per address, so that
 * readers never have to choose: a module loaded now wins (its pcs are
 * the ones being taken now), then the most recently unloaded one; an
 * unloaded module that overlaps one already listed is left out.
 */
static void append_unloaded(struct mod_list *l, size_t cap, size_t pool_cap)
{
	unl_acquire();
	for (size_t k = 0; k < unl_count && l->n < cap; k++) {
		size_t at = (unl_next + MAX_UNLOADED - 1 - k) % MAX_UNLOADED;
		const struct unloaded *u = &unl[at];
		if (overlaps(&u->m, l->mods, l->n) ||
		    l->pool_used + u->m.path_len > pool_cap)
			continue;
		struct mod *m = &l->mods[l->n++];
		*m = u->m;
		memcpy(l->pool + l->pool_used, u->path, u->m.path_len);
		m->path_off = (uint32_t)l->pool_used;
		l->pool_used += u->m.path_len;
	}
	unl_release();
}

static void write_modules(struct mpw *w)
{
	struct mod_list l = {0};
	size_t mods_len = MAX_MODULES * sizeof(struct mod);
	l.mods = shim_mmap(mods_len);
	l.pool = shim_mmap(POOL_SIZE);
	if (l.mods && l.pool) {
		dl_iterate_phdr(module_cb, &l);
		append_unloaded(&l, MAX_MODULES, POOL_SIZE);
	}
	mpw_begin(w, MP_SEC_MODULES);
	mpw_uleb(w, l.n);
	for (size_t i = 0; i < l.n; i++) {
		struct mod *m = &l.mods[i];
		mpw_strn(w, l.pool + m->path_off, m->path_len);
		mpw_uleb(w, m->base);
		mpw_uleb(w, m->start);
		mpw_uleb(w, m->end);
		mpw_strn(w, (const char *)m->build_id, m->build_id_len);
	}
	mpw_end(w);
	shim_munmap(l.mods, mods_len);
	shim_munmap(l.pool, POOL_SIZE);
}

/* ---- meta ---------------------------------------------------------------- */

struct est_ctx {
	uint64_t allocs, bytes;
};

static void est_cb(struct shim_trace *t, void *vctx)
{
	struct est_ctx *e = vctx;
	e->allocs += shim_trace_allocs(t);
	e->bytes += shim_trace_alloc_bytes(t);
}

/*
 * The live heap as the snapshot shows it: the blocks (sorted), live bytes
 * and blocks per trace and in all, and for the exit snapshot with leak
 * checking on, the pointer graph. The live blocks are frozen while they
 * are copied (shim_live_lock_all: no thread can change them); for the
 * graph they stay frozen and the other threads are stopped while memory
 * is scanned; both are released before anything is compressed.
 */
struct heap {
	struct shim_blk *v;
	size_t n, len;
	uint64_t *tr_bytes, *tr_blocks; /* indexed by snap_index */
	size_t ntr, tr_len;
	uint64_t live_bytes, live_blocks;
	/* The threads' counters, read with the blocks: every listed block
	 * was counted as allocated, and not as freed. */
	uint64_t allocs, frees, alloc_bytes;
	struct shim_graph g;
	bool have_graph;
};

static void write_meta(struct mpw *w, const char *trigger, const char *name,
		       uint64_t seq, const struct heap *h)
{
	char exe[4096];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[k > 0 ? k : 0] = '\0';

	/* The format caps a string at 1 MiB (formats/snapshot.md); longer
	 * command lines are cut on an argument boundary below. */
	size_t cap = (1u << 20) - 1;
	char *args = shim_mmap(cap);
	size_t alen = 0;
	if (args) {
		int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t r;
			while (alen < cap &&
			       ((r = read(fd, args + alen, cap - alen)) > 0 ||
				(r < 0 && errno == EINTR)))
				if (r > 0)
					alen += (size_t)r;
			close(fd);
		}
		/* Keep whole arguments only. */
		while (alen > 0 && args[alen - 1] != '\0')
			alen--;
	}

	mpw_begin(w, MP_SEC_META);
	mpw_meta_uint(w, "pid", (uint64_t)getpid());
	mpw_meta_uint(w, "ppid", (uint64_t)getppid());
	mpw_meta_str(w, "exe", exe);
	mpw_strn(w, "argv", 4);
	mpw_uleb(w, MP_META_STR);
	mpw_strn(w, args ? args : "", alen);
	mpw_meta_uint(w, "start_ns", shim_totals.start_ns);
	mpw_meta_uint(w, "snapshot_ns", shim_now_ns());
	/* The peak's clock is the coarse one (cheap on the hot path); it may
	 * read a few ms before the precise start time. */
	uint64_t peak_ns = atomic_load(&shim_totals.peak_ns);
	if (peak_ns && peak_ns < shim_totals.start_ns)
		peak_ns = shim_totals.start_ns;
	mpw_meta_uint(w, "peak_ns", peak_ns);
	mpw_meta_str(w, "trigger", trigger);
	if (name)
		mpw_meta_str(w, "name", name);
	mpw_meta_uint(w, "sample_rate", shim_opt.sample_rate);
	mpw_meta_uint(w, "depth", (uint64_t)shim_opt.depth);
	mpw_meta_uint(w, "seq", seq);
	uint64_t live_bytes = h->live_bytes, live_blocks = h->live_blocks;
	uint64_t allocs = h->allocs, frees = h->frees,
		 alloc_bytes = h->alloc_bytes;
	if (shim_opt.sample_rate) {
		/* Sampled: the totals are the sums of the per-site
		 * estimates; frees are what was allocated and is not live. */
		struct est_ctx e = {0};
		shim_trace_foreach(est_cb, &e);
		allocs = e.allocs;
		alloc_bytes = e.bytes;
		frees = allocs > live_blocks ? allocs - live_blocks : 0;
	}
	mpw_meta_uint(w, "live_bytes", live_bytes);
	mpw_meta_uint(w, "live_blocks", live_blocks);
	/* With several threads the peak is kept to within their batches
	 * (shim_record.c); the live figure here is exact, and the peak is
	 * never below it. */
	uint64_t peak = atomic_load(&shim_totals.peak_bytes);
	mpw_meta_uint(w, "peak_bytes", peak > live_bytes ? peak : live_bytes);
	mpw_meta_uint(w, "allocs", allocs);
	mpw_meta_uint(w, "frees", frees);
	mpw_meta_uint(w, "alloc_bytes", alloc_bytes);
	mpw_end(w);
	shim_munmap(args, cap);
}

/* ---- stacks and traces -----------------------------------------------------
 */

struct number_ctx {
	uint32_t gen, next;
};

static void number_cb(struct shim_trace *t, void *vctx)
{
	struct number_ctx *c = vctx;
	t->snap_index = c->next++;
	__atomic_store_n(&t->snap_gen, c->gen, __ATOMIC_RELEASE);
}

struct write_ctx {
	struct mpw *w;
	uint32_t gen;
	uintptr_t prev_first;
	const uint64_t *tr_bytes, *tr_blocks; /* live, from the table */
};

static void stack_cb(struct shim_trace *t, void *vctx)
{
	struct write_ctx *c = vctx;
	if (__atomic_load_n(&t->snap_gen, __ATOMIC_ACQUIRE) != c->gen)
		return;
	mpw_uleb(c->w, t->depth);
	uintptr_t prev = c->prev_first;
	for (uint32_t i = 0; i < t->depth; i++) {
		mpw_sleb(c->w, (int64_t)(t->pcs[i] - prev));
		prev = t->pcs[i];
	}
	if (t->depth)
		c->prev_first = t->pcs[0];
}

static void trace_cb(struct shim_trace *t, void *vctx)
{
	struct write_ctx *c = vctx;
	if (__atomic_load_n(&t->snap_gen, __ATOMIC_ACQUIRE) != c->gen)
		return;
	mpw_uleb(c->w, t->snap_index);
	mpw_uleb(c->w, c->tr_bytes[t->snap_index]);
	mpw_uleb(c->w, c->tr_blocks[t->snap_index]);
	mpw_uleb(c->w, shim_trace_allocs(t));
	mpw_uleb(c->w, shim_trace_alloc_bytes(t));
	mpw_uleb(c->w, shim_trace_peak_bytes(t));
}

/* ---- blocks ---------------------------------------------------------------
 */

struct block_ctx {
	struct shim_blk *v;
	size_t n, cap;
	uint32_t gen;
	bool full;
};

static void block_cb(const struct shim_block *b, void *vctx)
{
	struct block_ctx *c = vctx;
	if (__atomic_load_n(&b->trace->snap_gen, __ATOMIC_ACQUIRE) != c->gen)
		return;
	if (c->n == c->cap) {
		c->full = true;
		return;
	}
	c->v[c->n].addr = b->addr;
	c->v[c->n].size = b->size;
	c->v[c->n].trace = b->trace->snap_index;
	c->n++;
}

/*
 * LSD radix sort on the address; passes where every key has the same digit
 * are skipped (the top bits usually are). Digits are 16 bits wide for a
 * large heap and 8 bits below 64Ki blocks, whose 256 counters live on the
 * stack: a short program's exit must not page in and clear half a
 * megabyte of counters four times over to sort a handful of blocks.
 */
static bool radix_sort(struct shim_blk *v, size_t n)
{
	if (n < 2)
		return true;
	int bits = n < 65536 ? 8 : 16;
	size_t ndig = (size_t)1 << bits, mask = ndig - 1;
	size_t small[256];
	struct shim_blk *tmp = shim_mmap(n * sizeof(*v) + 1);
	size_t *count = bits == 8 ? small : shim_mmap(ndig * sizeof(size_t));
	if (!tmp || !count) {
		shim_munmap(tmp, n * sizeof(*v) + 1);
		if (count && count != small)
			shim_munmap(count, ndig * sizeof(size_t));
		return false;
	}
	struct shim_blk *src = v, *dst = tmp;
	for (int shift = 0; shift < 64; shift += bits) {
		memset(count, 0, ndig * sizeof(size_t));
		for (size_t i = 0; i < n; i++)
			count[(src[i].addr >> shift) & mask]++;
		if (count[(src[0].addr >> shift) & mask] == n)
			continue;
		size_t sum = 0;
		for (size_t d = 0; d < ndig; d++) {
			size_t c = count[d];
			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i].addr >> shift) & mask]++] = src[i];
		struct shim_blk *t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
	shim_munmap(tmp, n * sizeof(*v) + 1);
	if (count != small)
		shim_munmap(count, ndig * sizeof(size_t));
	return true;
}

static void write_graph(struct mpw *w, const struct shim_graph *g)
{
	mpw_begin(w, MP_SEC_GRAPH);
	mpw_uleb(w, g->n);
	mpw_uleb(w, g->threads);
	mpw_uleb(w, g->threads_unscanned);
	size_t nroots = 0;
	for (size_t j = 0; j < g->n; j++)
		nroots += (g->root_start[j] | g->root_interior[j]) != 0;
	mpw_uleb(w, nroots);
	size_t prev = 0;
	for (size_t j = 0; j < g->n; j++) {
		if (!(g->root_start[j] | g->root_interior[j]))
			continue;
		mpw_uleb(w, j - prev);
		mpw_uleb(w, g->root_start[j]);
		mpw_uleb(w, g->root_interior[j]);
		prev = j;
	}
	for (size_t i = 0; i < g->n; i++) {
		uint64_t lo = g->edge_start[i], hi = g->edge_start[i + 1];
		mpw_uleb(w, hi - lo);
		uint64_t prev_to = 0;
		for (uint64_t e = lo; e < hi; e++) {
			uint64_t to = g->edges[e] >> 3;
			mpw_uleb(w, ((to - prev_to) << 3) | (g->edges[e] & 7));
			prev_to = to;
		}
	}
	mpw_end(w);
}

static void heap_release(struct heap *h)
{
	shim_munmap(h->v, h->len);
	shim_munmap(h->tr_bytes, h->tr_len);
	shim_munmap(h->tr_blocks, h->tr_len);
	if (h->have_graph)
		shim_graph_release(&h->g);
}

static int collect_heap(struct heap *h, uint32_t gen, size_t ntraces,
			bool graph)
{
	struct block_ctx c = {.gen = gen};
	int unanswered = 0;
	memset(h, 0, sizeof(*h));
	h->ntr = ntraces;
	h->tr_len = (ntraces + 1) * sizeof(uint64_t);
	h->tr_bytes = shim_mmap(h->tr_len);
	h->tr_blocks = shim_mmap(h->tr_len);
	if (!h->tr_bytes || !h->tr_blocks) {
		heap_release(h);
		return ENOMEM;
	}
	if (graph)
		shim_scan_prepare();
	shim_live_lock_all();
	if (graph)
		unanswered = shim_scan_stop_world();
	c.cap = shim_live_count() + 1;
	h->len = c.cap * sizeof(struct shim_blk);
	c.v = shim_mmap(h->len);
	if (c.v)
		shim_live_foreach_locked(block_cb, &c);
	shim_tls_sum(&h->allocs, &h->frees, &h->alloc_bytes);
	if (!graph)
		shim_live_unlock_all();
	h->v = c.v;
	h->n = c.n;
	bool sorted = c.v && radix_sort(c.v, c.n);
	if (graph) {
		if (sorted)
			h->have_graph =
				shim_scan_graph(c.v, c.n, unanswered, &h->g);
		shim_scan_resume_world();
		shim_live_unlock_all();
		if (sorted && !h->have_graph)
			shim_say("out of memory for the heap graph; the "
				 "snapshot has no leak information",
				 NULL, NULL, NULL);
	}
	if (!sorted) {
		heap_release(h);
		return ENOMEM;
	}
	for (size_t i = 0; i < h->n; i++) {
		/* Sampled: each block stands for 1/pi of its kind. */
		double w = shim_sample_weight(h->v[i].size);
		uint64_t b = (uint64_t)(h->v[i].size * w + 0.5);
		uint64_t k = (uint64_t)(w + 0.5);
		h->tr_bytes[h->v[i].trace] += b;
		h->tr_blocks[h->v[i].trace] += k;
		h->live_bytes += b;
		h->live_blocks += k;
	}
	return 0;
}

static void write_blocks(struct mpw *w, const struct heap *h)
{
	mpw_begin(w, MP_SEC_BLOCKS);
	mpw_uleb(w, h->n);
	uint64_t prev = 0;
	for (size_t i = 0; i < h->n; i++) {
		mpw_uleb(w, h->v[i].addr - prev);
		mpw_uleb(w, h->v[i].size);
		mpw_uleb(w, h->v[i].trace);
		prev = h->v[i].addr;
	}
	mpw_end(w);
	if (h->have_graph)
		write_graph(w, &h->g);
}

/* ---- the file --------------------------------------------------------------
 */

static size_t build_tmp(char *dst, size_t cap, const char *path)
{
	size_t n = slen(path);
	const char *sfx = ".tmp";
	if (n + 32 > cap)
		return 0;
	memcpy(dst, path, n);
	memcpy(dst + n, sfx, 4);
	n += 4;
	char digits[24];
	int i = 0;
	unsigned long v = (unsigned long)getpid();
	do {
		digits[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i > 0)
		dst[n++] = digits[--i];
	dst[n] = '\0';
	return n;
}

int shim_snapshot_write(const char *path, const char *trigger, const char *name,
			uint64_t seq, bool graph)
{
	/* One snapshot at a time; a second one (the exit while the trigger
	 * thread writes, an API call meanwhile) waits for the first. */
	while (atomic_exchange(&snap_busy, 1))
		sched_yield();
	shim_timeline_mark(seq);
	char tmp[4200];
	int err = 0;
	/* A write past RLIMIT_FSIZE fails with EFBIG and sends SIGXFSZ to
	 * the writing thread, whose default action would kill the program
	 * for our file: blocked here, it stays pending and is taken back
	 * below (unless one was pending already: that one is the
	 * program's). */
	sigset_t xfsz, old_mask, pending;
	sigemptyset(&xfsz);
	sigaddset(&xfsz, SIGXFSZ);
	pthread_sigmask(SIG_BLOCK, &xfsz, &old_mask);
	bool xfsz_was_pending =
		sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ);
	int fd = -1;
	if (!build_tmp(tmp, sizeof(tmp), path)) {
		err = ENAMETOOLONG;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0 && fd <= 2) {
		int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		close(fd);
		fd = high;
	}
	if (fd < 0) {
		err = errno;
		unlink(tmp);
		goto out;
	}
	struct mpw w;
	err = mpw_open(&w, fd);
	if (err) {
		close(fd);
		unlink(tmp);
		goto out;
	}
	uint32_t gen = atomic_fetch_add(&snap_gen, 1) + 1;
	struct number_ctx nc = {.gen = gen};
	shim_trace_foreach(number_cb, &nc);
	struct heap h;
	int herr = collect_heap(&h, gen, nc.next, graph);
	if (herr) {
		mpw_abort(&w);
		err = herr;
	} else {
		write_meta(&w, trigger, name, seq, &h);
		write_modules(&w);
		struct write_ctx wc = {.w = &w,
				       .gen = gen,
				       .tr_bytes = h.tr_bytes,
				       .tr_blocks = h.tr_blocks};
		mpw_begin(&w, MP_SEC_STACKS);
		mpw_uleb(&w, nc.next);
		shim_trace_foreach(stack_cb, &wc);
		mpw_end(&w);
		mpw_begin(&w, MP_SEC_TRACES);
		mpw_uleb(&w, nc.next);
		shim_trace_foreach(trace_cb, &wc);
		mpw_end(&w);
		write_blocks(&w, &h);
		shim_timeline_write(&w);
		heap_release(&h);
		err = mpw_close(&w);
	}
	if (close(fd) != 0 && !err)
		err = errno;
	if (!err && rename(tmp, path) != 0)
		err = errno;
	if (err)
		unlink(tmp);
out:
	if (!xfsz_was_pending) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&xfsz, NULL, &zero) == SIGXFSZ)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	atomic_store(&snap_busy, 0);
	return err;
}
