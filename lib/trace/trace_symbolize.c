/*
 * trace_symbolize.c - mp_symbolize(): turns the return addresses of a
 * snapshot's stacks into functions, files and lines (with the chain of
 * inlined calls) using elfutils' libdwfl on the module files of this machine.
 *
 * Loading a module is the slow part (finding its debuginfo and inflating
 * compressed .debug_* sections: 40 ms for libc with libc6-dbg), so it is
 * done once per file in a struct mp_symcache that outlives one snapshot:
 * each file gets its own Dwfl with the file reported at bias 0, so the
 * same entry serves every run whatever the address it was loaded at, and
 * a pc is looked up at pc - base. `record` warms the cache from another
 * thread while the program runs; an entry's state (empty, loading, ready)
 * under the cache's lock makes sure only one thread ever uses a Dwfl, and a
 * snapshot waits only for the files it needs.
 *
 * Each distinct pc is looked up once. Lazily built indexes keep that fast:
 * the subprogram ranges of each compilation unit (dwarf_getscopes() would
 * walk a whole CU for every pc), the sorted function symbols of each module
 * (libdwfl's address-to-symbol lookup scans the symbol table per call), and
 * the CU ranges of a module when it lacks .debug_aranges; the last two live
 * in the cache. Results live in the snapshot's arena, strings interned so
 * that a function or file shared by many pcs is stored once; scratch state
 * is malloc'd and freed before returning. Never prints, never aborts.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace/trace_internal.h"

/* From libstdc++ (the CLI links -lstdc++); avoids needing <cxxabi.h>. */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len,
			    int *status);

/* One ELF function symbol of a module, at its address in the file. */
struct elf_sym {
	uint64_t start, end;
	const char *name; /* in libelf's string table */
	int rank;	  /* binding: prefer GLOBAL, then WEAK, then LOCAL */
	bool sized;	  /* st_size was set; else end was inferred */
};

/* One address range of a concrete subprogram, relative to its Dwarf. */
struct cu_span {
	Dwarf_Addr low, high;
	Dwarf_Die die;
};

struct cu_index {
	uint32_t module;
	Dwarf_Off off; /* of the CU DIE: the key */
	Dwarf_Die cudie;
	const char *comp_dir;
	struct cu_span *spans; /* sorted by low */
	size_t nspans, cap;
	Dwarf_Files *files; /* for DW_AT_call_file; NULL when absent */
	size_t nfiles;
};

/* The address range of one CU, relative to its Dwarf. */
struct cu_range {
	Dwarf_Addr low, high;
	Dwarf_Off off;
};

enum symfile_state {
	SYMFILE_EMPTY,	 /* nobody loads it yet: the first to look claims it */
	SYMFILE_LOADING, /* a thread is loading it; others wait for READY */
	SYMFILE_READY,	 /* loaded (mod may be NULL); used by one symbolizer */
};

/*
 * One module file, loaded once for all the snapshots that need it. Keyed
 * by the file's identity rather than its path: the loader names libc
 * /lib/x86_64-linux-gnu/libc.so.6 where /proc/PID/maps says /usr/lib/...,
 * and a file rewritten in place is another file. Only state and the list
 * links are guarded by the cache's lock; the rest belongs to whoever moved
 * the entry out of EMPTY until it is READY, then to the symbolizer.
 */
struct symfile {
	struct symfile *next;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	char *path; /* the first name it was found under */
	enum symfile_state state;
	Dwfl *dwfl;
	Dwfl_Module *mod; /* reported at bias 0; NULL: unreadable */
	bool warmed;	  /* loaded by mp_symcache_warm(), debuginfo local */
	bool has_dwarf;	  /* when warmed: DWARF was found */
	unsigned char build_id[64];
	uint32_t build_id_len; /* 0: none, or longer than build_id */
	bool syms_built;
	struct elf_sym *syms; /* sorted by start, then rank descending */
	size_t nsyms;
	bool cus_built;
	struct cu_range *cus; /* sorted by low; only built when needed */
	size_t ncus;
};

struct mp_symcache {
	pthread_mutex_t lock;
	pthread_cond_t ready; /* broadcast whenever an entry becomes READY */
	struct symfile *files;
	size_t nfiles;
	char *dir; /* the symbol store's directory; NULL: none */
};

/* A snapshot module's file, when the snapshot has pcs in it, and what the
 * symbol store holds for its build-id. */
struct mod_state {
	struct symfile *file; /* NULL: unused, missing, unreadable or stale */
	struct mp__symstore *store; /* NULL: none, or no store directory */
	bool from_store;	    /* every pc of the module is in store */
};

/* Open addressing; key and value both persist while the table is used. */
struct str_entry {
	const char *key;
	const char *val;
};

struct str_table {
	struct str_entry *v;
	size_t cap, n; /* cap is a power of two */
};

struct cu_table {
	struct cu_index **v;
	size_t cap, n;
};

struct symbolizer {
	struct mp_snapshot *snap;
	struct mp_symcache *cache;
	struct mod_state *mods;
	uint32_t *by_start; /* module indexes with a range, sorted by start */
	size_t nby_start;
	struct cu_table cus;
	struct str_table names; /* raw symbol or DWARF name -> demangled */
	struct str_table files; /* path -> the same path in the arena */
	Dwarf_Die *chain;	/* scratch: subprogram, then inlines inward */
	size_t chaincap;
	char *path; /* scratch: comp_dir joined with a name */
	size_t pathcap;
	bool oom;
};

static uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static bool str_table_grow(struct str_table *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 1024;
	struct str_entry *nv = calloc(ncap, sizeof(*nv));

	if (!nv)
		return false;
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->v[i].key)
			continue;
		size_t j = mp__hash_str(t->v[i].key) & (ncap - 1);
		while (nv[j].key)
			j = (j + 1) & (ncap - 1);
		nv[j] = t->v[i];
	}
	free(t->v);
	t->v = nv;
	t->cap = ncap;
	return true;
}

/* The slot of key: its entry, or the empty one where it belongs. */
static struct str_entry *str_table_slot(struct str_table *t, const char *key)
{
	size_t i = mp__hash_str(key) & (t->cap - 1);

	while (t->v[i].key && strcmp(t->v[i].key, key) != 0)
		i = (i + 1) & (t->cap - 1);
	return &t->v[i];
}

/* Makes room for one more entry; false on OOM (and sets s->oom). */
static bool str_table_reserve(struct symbolizer *s, struct str_table *t)
{
	if ((t->n + 1) * 2 <= t->cap)
		return true;
	if (str_table_grow(t))
		return true;
	s->oom = true;
	return false;
}

/*
 * The demangled name of raw, stored once in the arena. raw points into
 * libdw/libelf data, which outlives the table, so it can be the key.
 */
static const char *intern_name(struct symbolizer *s, const char *raw)
{
	struct str_entry *e;
	char *dem = NULL;
	int status;

	if (!raw || !*raw)
		return NULL;
	if (!str_table_reserve(s, &s->names))
		return NULL;
	e = str_table_slot(&s->names, raw);
	if (e->key)
		return e->val;
	/* Only Itanium-ABI names; a C function called "Zap" stays as it is. */
	if (raw[0] == '_' && raw[1] == 'Z')
		dem = __cxa_demangle(raw, NULL, NULL, &status);
	e->val = mp__strdup(s->snap, dem ? dem : raw);
	free(dem);
	if (!e->val) {
		s->oom = true;
		return NULL;
	}
	e->key = raw;
	s->names.n++;
	return e->val;
}

/* s stored once in the arena (s itself needs to last as long as the
 * table); NULL for NULL. */
static const char *intern_plain(struct symbolizer *s, const char *str)
{
	struct str_entry *e;

	if (!str)
		return NULL;
	if (!str_table_reserve(s, &s->files))
		return NULL;
	e = str_table_slot(&s->files, str);
	if (e->key)
		return e->val;
	e->val = mp__strdup(s->snap, str);
	if (!e->val) {
		s->oom = true;
		return NULL;
	}
	e->key = e->val;
	s->files.n++;
	return e->val;
}

/* name as a full path (joined to the CU's comp_dir), stored once. */
static const char *intern_file(struct symbolizer *s, const struct cu_index *cu,
			       const char *name)
{
	if (!name || !*name)
		return NULL;
	/* "<built-in>" and the like are not paths. */
	if (name[0] != '/' && name[0] != '<' && cu && cu->comp_dir) {
		size_t dl = strlen(cu->comp_dir), nl = strlen(name);

		if (dl + nl + 2 > s->pathcap) {
			char *p = realloc(s->path, dl + nl + 2);

			if (!p) {
				s->oom = true;
				return NULL;
			}
			s->path = p;
			s->pathcap = dl + nl + 2;
		}
		memcpy(s->path, cu->comp_dir, dl);
		s->path[dl] = '/';
		memcpy(s->path + dl + 1, name, nl + 1);
		name = s->path;
	}
	return intern_plain(s, name);
}

/* ---- ELF symbols ---- */

static int elf_sym_cmp(const void *a, const void *b)
{
	const struct elf_sym *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return y->rank - x->rank;
}

/* Where a sizeless symbol may end at most: the end of its section. */
static uint64_t section_end(Elf *elf, GElf_Word shndx, Dwarf_Addr bias)
{
	Elf_Scn *scn;
	GElf_Shdr shdr;

	if (!elf || shndx >= SHN_LORESERVE)
		return 0;
	scn = elf_getscn(elf, shndx);
	if (!scn || !gelf_getshdr(scn, &shdr) || !(shdr.sh_flags & SHF_ALLOC))
		return 0;
	return shdr.sh_addr + shdr.sh_size + bias;
}

/* Builds f->syms; false when out of memory (f is left unbuilt). */
static bool build_elf_syms(struct symfile *f)
{
	int n = dwfl_module_getsymtab(f->mod);
	size_t k = 0;

	if (n <= 1) {
		f->syms_built = true;
		return true;
	}
	f->syms = malloc((size_t)n * sizeof(*f->syms));
	if (!f->syms)
		return false;
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		GElf_Word shndx;
		Dwarf_Addr bias;
		Elf *elf;
		const char *name;
		int type, bind;

		name = dwfl_module_getsym_info(f->mod, i, &sym, &addr, &shndx,
					       &elf, &bias);
		if (!name || !*name || shndx == SHN_UNDEF)
			continue;
		type = GELF_ST_TYPE(sym.st_info);
		if (type != STT_FUNC && type != STT_GNU_IFUNC)
			continue;
		bind = GELF_ST_BIND(sym.st_info);
		f->syms[k].start = addr;
		f->syms[k].end = sym.st_size ? addr + sym.st_size
					     : section_end(elf, shndx, bias);
		f->syms[k].sized = sym.st_size != 0;
		f->syms[k].name = name;
		f->syms[k].rank = bind == STB_GLOBAL ? 3
				  : bind == STB_WEAK ? 2
						     : 1;
		k++;
	}
	qsort(f->syms, k, sizeof(*f->syms), elf_sym_cmp);
	f->nsyms = k;
	/*
	 * A sizeless symbol (hand-written assembly, _init) runs up to the next
	 * symbol or the end of its section, as libdwfl's own lookup assumes.
	 */
	for (size_t i = k, next = k; i-- > 0;) {
		struct elf_sym *e = &f->syms[i];

		if (!e->sized && next < k && f->syms[next].start < e->end)
			e->end = f->syms[next].start;
		if (i > 0 && f->syms[i - 1].start != e->start)
			next = i;
	}
	f->syms_built = true;
	return true;
}

/* The raw name of the function symbol containing addr (an address in the
 * file), or NULL. */
static const char *elf_sym_at(struct symbolizer *s, struct symfile *f,
			      uint64_t addr)
{
	size_t lo = 0, hi;

	if (!f->syms_built && !build_elf_syms(f)) {
		s->oom = true;
		return NULL;
	}
	hi = f->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->syms[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/*
	 * Walk back over a few neighbours: an alias run at the same start
	 * (best rank first in the array) or a sized symbol enclosing a
	 * smaller one that ended before addr.
	 */
	for (size_t k = lo, seen = 0; k-- > 0 && seen < 16; seen++) {
		const struct elf_sym *e = &f->syms[k];

		if (addr < e->end) {
			while (k > 0 && f->syms[k - 1].start == e->start &&
			       addr < f->syms[k - 1].end)
				e = &f->syms[--k];
			return e->name;
		}
	}
	return NULL;
}

/* ---- DWARF ---- */

static bool cu_add_spans(struct symbolizer *s, struct cu_index *cu,
			 Dwarf_Die *die)
{
	Dwarf_Addr base, low, high;
	ptrdiff_t off = 0;

	while ((off = dwarf_ranges(die, off, &base, &low, &high)) > 0) {
		if (low >= high)
			continue;
		if (cu->nspans == cu->cap) {
			size_t ncap = cu->cap ? cu->cap * 2 : 64;
			struct cu_span *nv =
				realloc(cu->spans, ncap * sizeof(*nv));

			if (!nv) {
				s->oom = true;
				return false;
			}
			cu->spans = nv;
			cu->cap = ncap;
		}
		cu->spans[cu->nspans++] = (struct cu_span){low, high, *die};
	}
	return true;
}

/*
 * Collects every concrete subprogram under parent: at CU level, inside
 * namespaces and classes (some producers put definitions there), and
 * nested functions (GNU C) inside other subprograms and their blocks.
 */
static bool cu_collect(struct symbolizer *s, struct cu_index *cu,
		       Dwarf_Die *parent, unsigned depth)
{
	Dwarf_Die child;

	if (depth > 64 || dwarf_child(parent, &child) != 0)
		return true;
	do {
		switch (dwarf_tag(&child)) {
		case DW_TAG_subprogram:
			if (!cu_add_spans(s, cu, &child))
				return false;
			/* fall through */
		case DW_TAG_namespace:
		case DW_TAG_class_type:
		case DW_TAG_structure_type:
		case DW_TAG_union_type:
		case DW_TAG_module:
		case DW_TAG_lexical_block:
			if (!cu_collect(s, cu, &child, depth + 1))
				return false;
			break;
		default: break;
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return true;
}

static int cu_span_cmp(const void *a, const void *b)
{
	const struct cu_span *x = a, *y = b;

	if (x->low != y->low)
		return x->low < y->low ? -1 : 1;
	return 0;
}

static struct cu_index *cu_build(struct symbolizer *s, uint32_t module,
				 Dwarf_Die *cudie)
{
	struct cu_index *cu = calloc(1, sizeof(*cu));
	Dwarf_Attribute attr;

	if (!cu) {
		s->oom = true;
		return NULL;
	}
	cu->module = module;
	cu->off = dwarf_dieoffset(cudie);
	cu->cudie = *cudie;
	cu->comp_dir =
		dwarf_formstring(dwarf_attr(cudie, DW_AT_comp_dir, &attr));
	if (dwarf_getsrcfiles(cudie, &cu->files, &cu->nfiles) != 0) {
		cu->files = NULL;
		cu->nfiles = 0;
	}
	if (!cu_collect(s, cu, cudie, 0)) {
		free(cu->spans);
		free(cu);
		return NULL;
	}
	qsort(cu->spans, cu->nspans, sizeof(*cu->spans), cu_span_cmp);
	return cu;
}

static size_t cu_hash(uint32_t module, Dwarf_Off off)
{
	return hash_u64(off ^ ((uint64_t)module << 48));
}

static bool cu_table_grow(struct cu_table *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 256;
	struct cu_index **nv = calloc(ncap, sizeof(*nv));

	if (!nv)
		return false;
	for (size_t i = 0; i < t->cap; i++) {
		struct cu_index *cu = t->v[i];

		if (!cu)
			continue;
		size_t j = cu_hash(cu->module, cu->off) & (ncap - 1);
		while (nv[j])
			j = (j + 1) & (ncap - 1);
		nv[j] = cu;
	}
	free(t->v);
	t->v = nv;
	t->cap = ncap;
	return true;
}

/* The index of the CU cudie of module, built on first use. */
static struct cu_index *cu_get(struct symbolizer *s, uint32_t module,
			       Dwarf_Die *cudie)
{
	struct cu_table *t = &s->cus;
	Dwarf_Off off = dwarf_dieoffset(cudie);
	size_t i;

	if ((t->n + 1) * 2 > t->cap && !cu_table_grow(t)) {
		s->oom = true;
		return NULL;
	}
	i = cu_hash(module, off) & (t->cap - 1);
	while (t->v[i]) {
		if (t->v[i]->module == module && t->v[i]->off == off)
			return t->v[i];
		i = (i + 1) & (t->cap - 1);
	}
	t->v[i] = cu_build(s, module, cudie);
	if (t->v[i])
		t->n++;
	return t->v[i];
}

static int cu_range_cmp(const void *a, const void *b)
{
	const struct cu_range *x = a, *y = b;

	if (x->low != y->low)
		return x->low < y->low ? -1 : 1;
	return 0;
}

/* Builds f->cus; false when out of memory (f is left unbuilt). */
static bool build_cu_ranges(struct symfile *f)
{
	Dwarf_Addr bias, base, low, high;
	Dwarf *dw = dwfl_module_getdwarf(f->mod, &bias);
	Dwarf_CU *unit = NULL;
	Dwarf_Die cudie;
	size_t cap = 0;

	if (!dw) {
		f->cus_built = true;
		return true;
	}
	while (dwarf_get_units(dw, unit, &unit, NULL, NULL, &cudie, NULL) ==
	       0) {
		ptrdiff_t off = 0;

		while ((off = dwarf_ranges(&cudie, off, &base, &low, &high)) >
		       0) {
			if (low >= high)
				continue;
			if (f->ncus == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct cu_range *nv =
					realloc(f->cus, ncap * sizeof(*nv));

				if (!nv) {
					free(f->cus);
					f->cus = NULL;
					f->ncus = 0;
					return false;
				}
				f->cus = nv;
				cap = ncap;
			}
			f->cus[f->ncus++] = (struct cu_range){
				low, high, dwarf_dieoffset(&cudie)};
		}
	}
	qsort(f->cus, f->ncus, sizeof(*f->cus), cu_range_cmp);
	f->cus_built = true;
	return true;
}

/*
 * The CU containing addr found from the CUs' own ranges. libdw 0.188 finds
 * CUs only through .debug_aranges, which clang does not emit by default
 * (and GCC not for every CU), so its lookup misses them.
 */
static Dwarf_Die *cu_fallback(struct symbolizer *s, struct symfile *f,
			      uint64_t addr, Dwarf_Die *mem, Dwarf_Addr *bias)
{
	Dwarf *dw;
	size_t lo = 0, hi;

	if (!f->cus_built && !build_cu_ranges(f)) {
		s->oom = true;
		return NULL;
	}
	dw = dwfl_module_getdwarf(f->mod, bias);
	if (!dw || addr < *bias)
		return NULL;
	addr -= *bias;
	hi = f->ncus;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->cus[mid].low <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = lo, seen = 0; k-- > 0 && seen < 8; seen++) {
		if (addr < f->cus[k].high)
			return dwarf_offdie(dw, f->cus[k].off, mem);
	}
	return NULL;
}

/* The concrete subprogram of cu whose code contains addr, or NULL. */
static Dwarf_Die *cu_find(struct cu_index *cu, Dwarf_Addr addr)
{
	size_t lo = 0, hi = cu->nspans;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cu->spans[mid].low <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Spans do not overlap in sane DWARF; look back a little anyway. */
	for (size_t k = lo, seen = 0; k-- > 0 && seen < 8; seen++) {
		if (addr < cu->spans[k].high)
			return &cu->spans[k].die;
	}
	return NULL;
}

static bool chain_push(struct symbolizer *s, size_t n, Dwarf_Die *die)
{
	if (n == s->chaincap) {
		size_t ncap = s->chaincap ? s->chaincap * 2 : 16;
		Dwarf_Die *nv = realloc(s->chain, ncap * sizeof(*nv));

		if (!nv) {
			s->oom = true;
			return false;
		}
		s->chain = nv;
		s->chaincap = ncap;
	}
	s->chain[n] = *die;
	return true;
}

/*
 * Fills s->chain with sub followed by the inlined_subroutine DIEs that
 * contain addr, outermost first, by descending through the scopes of sub
 * that contain addr. Returns the length, 0 on OOM.
 */
static size_t scope_chain(struct symbolizer *s, Dwarf_Die *sub, Dwarf_Addr addr)
{
	Dwarf_Die cur = *sub, child;
	size_t n = 0;

	if (!chain_push(s, n++, sub))
		return 0;
	for (;;) {
		bool found = false;

		if (dwarf_child(&cur, &child) != 0)
			break;
		do {
			int tag = dwarf_tag(&child);

			if (tag != DW_TAG_inlined_subroutine &&
			    tag != DW_TAG_lexical_block &&
			    tag != DW_TAG_try_block &&
			    tag != DW_TAG_catch_block &&
			    tag != DW_TAG_with_stmt)
				continue;
			if (dwarf_haspc(&child, addr) != 1)
				continue;
			if (tag == DW_TAG_inlined_subroutine &&
			    !chain_push(s, n++, &child))
				return 0;
			cur = child;
			found = true;
			break;
		} while (dwarf_siblingof(&child, &child) == 0);
		if (!found)
			break;
	}
	return n;
}

/*
 * The name of the function of die. A C++ linkage name, demangled, carries
 * the namespace and the parameter types, so it wins; any other linkage name
 * is an assembler alias (glibc's "__GI___qsort_r" for qsort_r), worse than
 * DW_AT_name. dwarf_attr_integrate follows DW_AT_abstract_origin (inlined
 * and out-of-line instances) and DW_AT_specification (C++ definitions).
 */
static const char *die_function(struct symbolizer *s, Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *link, *name;

	link = dwarf_formstring(
		dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
	if (!link)
		link = dwarf_formstring(dwarf_attr_integrate(
			die, DW_AT_MIPS_linkage_name, &attr));
	if (link && link[0] == '_' && link[1] == 'Z')
		return intern_name(s, link);
	name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
	return intern_name(s, name ? name : link);
}

/* The call site recorded on an inlined_subroutine DIE. */
static void call_site(struct symbolizer *s, struct cu_index *cu, Dwarf_Die *inl,
		      struct mp_frame *f)
{
	Dwarf_Attribute attr;
	Dwarf_Word v;

	if (cu->files &&
	    dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &attr), &v) == 0 &&
	    v < cu->nfiles)
		f->file = intern_file(s, cu,
				      dwarf_filesrc(cu->files, v, NULL, NULL));
	if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &attr), &v) == 0)
		f->line = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* The frames of addr (relative to cu's Dwarf; file_addr in the file)
 * inside subprogram sub. */
static bool frames_from_dwarf(struct symbolizer *s, struct symfile *f,
			      struct cu_index *cu, Dwarf_Die *sub,
			      Dwarf_Addr addr, uint64_t file_addr,
			      struct mp_symbol *out)
{
	size_t n = scope_chain(s, sub, addr);
	struct mp_frame *frames;
	Dwarf_Line *line;
	int lineno;

	if (n == 0)
		return false;
	frames = mp__alloc(s->snap, n * sizeof(*frames));
	if (!frames) {
		s->oom = true;
		return false;
	}
	/* frames[i] is chain[n - 1 - i]: innermost inline first. */
	for (size_t i = 0; i < n; i++) {
		frames[i].function = die_function(s, &s->chain[n - 1 - i]);
		if (i > 0)
			call_site(s, cu, &s->chain[n - i], &frames[i]);
	}
	line = dwarf_getsrc_die(&cu->cudie, addr);
	if (line) {
		frames[0].file =
			intern_file(s, cu, dwarf_linesrc(line, NULL, NULL));
		if (dwarf_lineno(line, &lineno) == 0 && lineno > 0)
			frames[0].line = (uint32_t)lineno;
	}
	/* An artificial or nameless subprogram: the ELF symbol still names it.
	 */
	if (!frames[n - 1].function)
		frames[n - 1].function =
			intern_name(s, elf_sym_at(s, f, file_addr));
	out->frames = frames;
	out->nframes = (uint32_t)n;
	return !s->oom;
}

/* ---- driver ---- */

static uint32_t module_of(const struct symbolizer *s, uint64_t pc)
{
	const struct mp_module *mods = s->snap->modules;
	size_t lo = 0, hi = s->nby_start;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mods[s->by_start[mid]].start <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && pc < mods[s->by_start[lo - 1]].end)
		return s->by_start[lo - 1];
	return UINT32_MAX;
}

/* The symbols of pc, in module m (module_of(s, pc)). */
static void symbolize_pc(struct symbolizer *s, uint64_t pc, uint32_t m,
			 struct mp_symbol *out)
{
	const struct mp_module *mm;
	struct symfile *f;
	struct cu_index *cu;
	struct mp_frame *fr;
	Dwarf_Die *cudie, *sub, cumem;
	Dwarf_Addr bias;
	uint64_t addr;
	const char *name;

	out->pc = pc;
	out->module = m;
	if (m == UINT32_MAX || pc == 0)
		return;
	mm = &s->snap->modules[out->module];
	f = s->mods[out->module].file;
	/*
	 * A return address points after the call; pc - 1 is inside it. The
	 * file is reported at bias 0, so it is looked up at its address in
	 * the file: less the load bias (dlpi_addr), which is 0 for ET_EXEC,
	 * whose addresses are absolute, and the load address less the first
	 * PT_LOAD's p_vaddr for PIE and shared objects.
	 */
	if (!f || pc - 1 < mm->base)
		return;
	addr = pc - 1 - mm->base;
	cudie = dwfl_module_addrdie(f->mod, addr, &bias);
	if (!cudie)
		cudie = cu_fallback(s, f, addr, &cumem, &bias);
	if (cudie) {
		cu = cu_get(s, out->module, cudie);
		if (!cu)
			return;
		sub = cu_find(cu, addr - bias);
		if (sub) {
			frames_from_dwarf(s, f, cu, sub, addr - bias, addr,
					  out);
			return;
		}
	}
	name = intern_name(s, elf_sym_at(s, f, addr));
	if (!name)
		return;
	fr = mp__alloc(s->snap, sizeof(*fr));
	if (!fr) {
		s->oom = true;
		return;
	}
	fr->function = name;
	out->frames = fr;
	out->nframes = 1;
}

static bool is_vdso(const char *path)
{
	return strcmp(path, "[vdso]") == 0 ||
	       strncmp(path, "linux-vdso", 10) == 0 ||
	       strncmp(path, "linux-gate", 10) == 0;
}

static int start_cmp(const void *a, const void *b, void *arg)
{
	const struct mp_module *mods = arg;
	uint64_t x = mods[*(const uint32_t *)a].start;
	uint64_t y = mods[*(const uint32_t *)b].start;

	return x < y ? -1 : x > y;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- the cache of module files ---- */

/* The entry of the file st describes, made EMPTY when new; NULL on OOM.
 * Called with the cache's lock held. */
static struct symfile *symfile_get(struct mp_symcache *c, const char *path,
				   const struct stat *st)
{
	struct symfile *f;

	for (f = c->files; f; f = f->next) {
		if (f->dev == st->st_dev && f->ino == st->st_ino &&
		    f->size == st->st_size &&
		    f->mtime.tv_sec == st->st_mtim.tv_sec &&
		    f->mtime.tv_nsec == st->st_mtim.tv_nsec)
			return f;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->path = strdup(path);
	if (!f->path) {
		free(f);
		return NULL;
	}
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = st->st_size;
	f->mtime = st->st_mtim;
	f->state = SYMFILE_EMPTY;
	f->next = c->files;
	c->files = f;
	c->nfiles++;
	return f;
}

/*
 * The entry of the file at path, and whether the caller claimed it (moved
 * it from EMPTY to LOADING) and so must load and publish it. NULL when the
 * file is missing or not a regular file, or memory runs out (*oom set).
 */
static struct symfile *symfile_claim(struct mp_symcache *c, const char *path,
				     bool *mine, bool *oom)
{
	struct symfile *f;
	struct stat st;

	*mine = false;
	/* Not a regular file: opening a FIFO would block. */
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return NULL;
	pthread_mutex_lock(&c->lock);
	f = symfile_get(c, path, &st);
	if (f && f->state == SYMFILE_EMPTY) {
		f->state = SYMFILE_LOADING;
		*mine = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (!f)
		*oom = true;
	return f;
}

/*
 * dwfl_standard_find_debuginfo() without what it ends with when nothing is
 * installed: asking debuginfod. The warmer loads every library the program
 * maps, most of which no stack goes through; it must not download their
 * debuginfo, nor pay libdw 0.188's dlopen of libdebuginfod (libcurl and
 * some 30 libraries: 9 ms), done even with DEBUGINFOD_URLS unset. A file
 * the snapshot needs is reloaded with the standard search when this one
 * found nothing (symfile_refresh).
 */
static int find_local_debuginfo(Dwfl_Module *mod, void **userdata,
				const char *modname, GElf_Addr base,
				const char *file_name, const char *debuglink,
				GElf_Word crc, char **debuginfo_file_name)
{
	int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base,
					      file_name, debuglink, crc,
					      debuginfo_file_name);

	/* A dwz file named by its path: the standard search finds it before
	 * it would ask debuginfod. */
	if (fd < 0 && debuglink && debuglink[0] == '/' &&
	    access(debuglink, R_OK) == 0)
		fd = dwfl_standard_find_debuginfo(mod, userdata, modname, base,
						  file_name, debuglink, crc,
						  debuginfo_file_name);
	return fd;
}

/*
 * Loads a claimed entry, outside the lock. For the symbolizer: the file and
 * its build-id, the rest when lookups need it, with the standard debuginfo
 * search. With warm: also what the first lookups would load, the
 * debuginfo (found by build-id, opened, its compressed sections inflated),
 * its address-to-CU table (2 ms for libc's .debug_aranges) and the sorted
 * symbol table. Failures leave mod NULL (the file's pcs get no frames) or a
 * table unbuilt (retried, and reported as OOM, by the symbolizer).
 */
static void symfile_load(struct symfile *f, bool warm)
{
	static char *debuginfo_path;
	static const Dwfl_Callbacks standard = {
		.find_elf = dwfl_build_id_find_elf,
		.find_debuginfo = dwfl_standard_find_debuginfo,
		.section_address = dwfl_offline_section_address,
		.debuginfo_path = &debuginfo_path,
	};
	static const Dwfl_Callbacks local = {
		.find_elf = dwfl_build_id_find_elf,
		.find_debuginfo = find_local_debuginfo,
		.section_address = dwfl_offline_section_address,
		.debuginfo_path = &debuginfo_path,
	};
	const unsigned char *bits;
	Dwarf_Aranges *aranges;
	size_t naranges;
	GElf_Addr vaddr;
	Dwarf_Addr bias;
	Dwarf *dw;
	int len;

	f->warmed = warm;
	f->dwfl = dwfl_begin(warm ? &local : &standard);
	if (!f->dwfl)
		return;
	dwfl_report_begin(f->dwfl);
	/*
	 * Base 0 with add_p_vaddr = true: a bias of 0, so addresses are the
	 * file's own and the entry does not depend on one run's layout
	 * (libdwfl forces base 0 on ET_EXEC anyway). With false it would
	 * subtract the first PT_LOAD's p_vaddr, wrong for prelinked or
	 * non-zero-based objects.
	 */
	f->mod = dwfl_report_elf(f->dwfl, f->path, f->path, -1, 0, true);
	dwfl_report_end(f->dwfl, NULL, NULL);
	if (!f->mod)
		return;
	len = dwfl_module_build_id(f->mod, &bits, &vaddr);
	if (len > 0 && (size_t)len <= sizeof(f->build_id)) {
		memcpy(f->build_id, bits, (size_t)len);
		f->build_id_len = (uint32_t)len;
	}
	if (!warm)
		return;
	dw = dwfl_module_getdwarf(f->mod, &bias);
	f->has_dwarf = dw != NULL;
	if (dw)
		dwarf_getaranges(dw, &aranges, &naranges);
	build_elf_syms(f);
}

/* Forgets what was loaded of f (back to a claimed, unloaded entry). */
static void symfile_unload(struct symfile *f)
{
	free(f->syms);
	free(f->cus);
	/* After the tables: they point into libdw's data. */
	if (f->dwfl)
		dwfl_end(f->dwfl);
	f->dwfl = NULL;
	f->mod = NULL;
	f->syms = NULL;
	f->cus = NULL;
	f->nsyms = f->ncus = 0;
	f->syms_built = f->cus_built = false;
	f->build_id_len = 0;
	f->warmed = f->has_dwarf = false;
}

/*
 * A ready entry the symbolizer needs, loaded by the warmer without finding
 * DWARF, is loaded again with the standard search (debuglinks next to the
 * file, debuginfod): what mp_symbolize() would have found.
 */
static void symfile_refresh(struct symfile *f)
{
	if (!f->warmed || f->has_dwarf || !f->mod)
		return;
	symfile_unload(f);
	symfile_load(f, false);
}

static void symfile_publish(struct mp_symcache *c, struct symfile *f)
{
	pthread_mutex_lock(&c->lock);
	f->state = SYMFILE_READY;
	pthread_cond_broadcast(&c->ready);
	pthread_mutex_unlock(&c->lock);
}

static void symfile_free(struct symfile *f)
{
	symfile_unload(f);
	free(f->path);
	free(f);
}

struct mp_symcache *mp_symcache_new(void)
{
	struct mp_symcache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return NULL;
	}
	if (pthread_cond_init(&c->ready, NULL) != 0) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		return NULL;
	}
	return c;
}

void mp_symcache_free(struct mp_symcache *cache)
{
	struct symfile *f, *next;

	if (!cache)
		return;
	for (f = cache->files; f; f = next) {
		next = f->next;
		symfile_free(f);
	}
	pthread_cond_destroy(&cache->ready);
	pthread_mutex_destroy(&cache->lock);
	free(cache->dir);
	free(cache);
}

bool mp_symcache_set_dir(struct mp_symcache *cache, const char *dir)
{
	char *copy = dir && *dir ? strdup(dir) : NULL;

	if (dir && *dir && !copy)
		return false;
	free(cache->dir);
	cache->dir = copy;
	return true;
}

void mp_symcache_warm(struct mp_symcache *cache, const char *path)
{
	struct symfile *f;
	bool mine, oom = false;

	if (!cache || !path || !*path)
		return;
	f = symfile_claim(cache, path, &mine, &oom);
	if (!f || !mine)
		return;
	symfile_load(f, true);
	symfile_publish(cache, f);
}

bool mp_symcache_stored(struct mp_symcache *cache, const char *path)
{
	const void *id;
	bool stored = false;
	ssize_t len;
	Elf *elf;
	int fd;

	if (!cache || !cache->dir || !path)
		return false;
	struct stat st;

	/* Non-blocking: a FIFO named like a library must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return false;
	}
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf) {
		len = dwelf_elf_gnu_build_id(elf, &id);
		stored = len > 0 &&
			 mp__symstore_exists(cache->dir, id, (size_t)len);
		elf_end(elf);
	}
	close(fd);
	return stored;
}

size_t mp__symcache_nfiles(struct mp_symcache *cache)
{
	size_t n;

	pthread_mutex_lock(&cache->lock);
	n = cache->nfiles;
	pthread_mutex_unlock(&cache->lock);
	return n;
}

/* ---- one snapshot ---- */

static void index_modules(struct symbolizer *s)
{
	const struct mp_snapshot *snap = s->snap;

	for (size_t i = 0; i < snap->nmodules; i++) {
		if (snap->modules[i].end > snap->modules[i].start)
			s->by_start[s->nby_start++] = (uint32_t)i;
	}
	qsort_r(s->by_start, s->nby_start, sizeof(*s->by_start), start_cmp,
		snap->modules);
}

/* Whether f, loaded, is the file mm was recorded from: a rebuilt binary
 * at the same path would give wrong lines. */
static bool symfile_matches(const struct symfile *f, const struct mp_module *mm)
{
	if (!f->mod)
		return false;
	if (!mm->build_id_len)
		return true;
	return f->build_id_len == mm->build_id_len &&
	       memcmp(f->build_id, mm->build_id, mm->build_id_len) == 0;
}

/*
 * Finds the file of each module holding pcs (needed), and only of those:
 * the program may have loaded libraries that no stack goes through, and
 * waiting for the warmer to load them would be wasted time. Ready entries
 * are taken as they are, unclaimed ones loaded here, and entries another
 * thread is loading waited for last, so that this thread's loads overlap
 * with the warmer's.
 */
static void attach_modules(struct symbolizer *s, const bool *needed)
{
	struct mp_snapshot *snap = s->snap;

	for (size_t i = 0; i < snap->nmodules && !s->oom; i++) {
		const char *path = snap->modules[i].path;
		struct symfile *f;
		bool mine;

		if (!needed[i] || !path || !*path || is_vdso(path))
			continue;
		f = symfile_claim(s->cache, path, &mine, &s->oom);
		if (f && mine) {
			symfile_load(f, false);
			symfile_publish(s->cache, f);
		}
		s->mods[i].file = f;
	}
	pthread_mutex_lock(&s->cache->lock);
	for (size_t i = 0; i < snap->nmodules; i++) {
		while (s->mods[i].file &&
		       s->mods[i].file->state != SYMFILE_READY)
			pthread_cond_wait(&s->cache->ready, &s->cache->lock);
	}
	pthread_mutex_unlock(&s->cache->lock);
	for (size_t i = 0; i < snap->nmodules; i++) {
		if (!s->mods[i].file)
			continue;
		symfile_refresh(s->mods[i].file);
		if (!symfile_matches(s->mods[i].file, &snap->modules[i]))
			s->mods[i].file = NULL;
	}
}

/* Adds pc to the open-addressing set (cap a power of two, 0 = empty slot);
 * true when it was not there. */
static bool pc_set_add(uint64_t *set, size_t cap, int shift, uint64_t pc)
{
	size_t i = (size_t)((pc * 0x9E3779B97F4A7C15ull) >> shift);

	while (set[i] && set[i] != pc)
		i = (i + 1) & (cap - 1);
	if (set[i])
		return false;
	set[i] = pc;
	return true;
}

/*
 * The distinct pcs of all stacks, sorted; *n set. NULL with *n = 0 too.
 * Deduplicated through a hash set before sorting: stacks repeat the same
 * pcs over and over (100k stacks of 39 frames hold a few hundred distinct
 * pcs), and sorting every frame took most of the time of symbolizing.
 */
static uint64_t *distinct_pcs(const struct mp_snapshot *snap, size_t *n,
			      bool *oom)
{
	size_t cap = 1024, count = 0, k = 0;
	int shift = 64 - 10;
	bool zero = false;
	uint64_t *set, *pcs;

	*n = 0;
	set = calloc(cap, sizeof(*set));
	if (!set) {
		*oom = true;
		return NULL;
	}
	for (size_t i = 0; i < snap->nstacks; i++) {
		for (uint32_t d = 0; d < snap->stacks[i].depth; d++) {
			uint64_t pc = snap->stacks[i].pcs[d];
			if (pc == 0) {
				zero = true;
				continue;
			}
			if (!pc_set_add(set, cap, shift, pc) ||
			    ++count * 2 <= cap)
				continue;
			uint64_t *ns = calloc(cap * 2, sizeof(*ns));
			if (!ns) {
				free(set);
				*oom = true;
				return NULL;
			}
			for (size_t j = 0; j < cap; j++)
				if (set[j])
					pc_set_add(ns, cap * 2, shift - 1,
						   set[j]);
			free(set);
			set = ns;
			cap *= 2;
			shift--;
		}
	}
	if (count == 0 && !zero) {
		free(set);
		return NULL;
	}
	pcs = malloc((count + zero) * sizeof(*pcs));
	if (!pcs) {
		free(set);
		*oom = true;
		return NULL;
	}
	if (zero)
		pcs[k++] = 0;
	for (size_t j = 0; j < cap; j++)
		if (set[j])
			pcs[k++] = set[j];
	free(set);
	qsort(pcs + zero, count, sizeof(*pcs), u64_cmp);
	*n = k;
	return pcs;
}

/* ---- the symbol store ---- */

/*
 * Loads the store of each needed module with a build-id. A module whose
 * every pc is in its store is symbolized from there (from_store) and needs
 * no file: needed is cleared for it, so that its debuginfo is not loaded.
 */
static void use_stores(struct symbolizer *s, const uint64_t *pcs, size_t npcs,
		       bool *needed)
{
	const struct mp_snapshot *snap = s->snap;
	const char *dir = s->cache->dir;

	if (!dir)
		return;
	for (size_t m = 0; m < snap->nmodules; m++) {
		const struct mp_module *mm = &snap->modules[m];

		if (!needed[m] || !mm->build_id_len ||
		    (mm->path && is_vdso(mm->path)))
			continue;
		s->mods[m].store =
			mp__symstore_load(dir, mm->build_id, mm->build_id_len);
		s->mods[m].from_store = s->mods[m].store != NULL;
	}
	for (size_t i = 0; i < npcs; i++) {
		uint32_t m = module_of(s, pcs[i]);
		const struct mp_module *mm;

		if (m == UINT32_MAX || pcs[i] == 0 || !s->mods[m].from_store)
			continue;
		mm = &snap->modules[m];
		/* A pc below the bias gets no frames either way. */
		if (pcs[i] - 1 >= mm->base &&
		    !mp__symstore_find(s->mods[m].store, pcs[i] - 1 - mm->base))
			s->mods[m].from_store = false;
	}
	for (size_t m = 0; m < snap->nmodules; m++)
		if (s->mods[m].from_store)
			needed[m] = false;
}

/* The symbols of pc, in module m, from the module's store. */
static void symbol_from_store(struct symbolizer *s, uint64_t pc, uint32_t m,
			      struct mp_symbol *out)
{
	const struct mp_module *mm = &s->snap->modules[m];
	const struct mp__symstore *st = s->mods[m].store;
	const struct mp__symstore_entry *e;
	struct mp_frame *frames;

	out->pc = pc;
	out->module = m;
	if (pc - 1 < mm->base)
		return;
	e = mp__symstore_find(st, pc - 1 - mm->base);
	if (!e || e->nframes == 0)
		return;
	frames = mp__alloc(s->snap, e->nframes * sizeof(*frames));
	if (!frames) {
		s->oom = true;
		return;
	}
	for (uint32_t k = 0; k < e->nframes; k++) {
		const struct mp_frame *src = &st->frames[e->first + k];

		frames[k].function = intern_plain(s, src->function);
		frames[k].file = intern_plain(s, src->file);
		frames[k].line = src->line;
	}
	out->frames = frames;
	out->nframes = e->nframes;
}

/*
 * Saves to the store what the pcs of module m symbolized to (syms[lo, hi),
 * sorted by pc), merged with what its store already held. Only for modules
 * symbolized from a file with DWARF: ELF symbols alone are quick to load.
 */
static void save_store(struct symbolizer *s, uint32_t m,
		       const struct mp_symbol *syms, size_t lo, size_t hi)
{
	const struct mp_module *mm = &s->snap->modules[m];
	const struct mp__symstore *old = s->mods[m].store;
	const struct symfile *f = s->mods[m].file;
	struct mp__symstore_entry *entries;
	struct mp_frame *frames;
	size_t nold = old ? old->nentries : 0, n = 0, nf = 0, a = 0;
	Dwarf_Addr bias;

	if (!s->cache->dir || s->mods[m].from_store || !f || !f->mod ||
	    !mm->build_id_len || !dwfl_module_getdwarf(f->mod, &bias))
		return;
	while (lo < hi && syms[lo].pc - 1 < mm->base)
		lo++;
	if (lo == hi)
		return;
	size_t nframes = old ? old->nframes : 0;
	for (size_t i = lo; i < hi; i++)
		nframes += syms[i].nframes;
	entries = malloc((nold + hi - lo) * sizeof(*entries));
	frames = malloc((nframes ? nframes : 1) * sizeof(*frames));
	/* Merged by address; this run's answer wins over an old one. */
	for (size_t b = lo; entries && frames && (a < nold || b < hi);) {
		uint64_t addr = b < hi ? syms[b].pc - 1 - mm->base : UINT64_MAX;
		const struct mp_frame *src;
		uint32_t count;

		if (a < nold && old->entries[a].addr < addr) {
			src = old->frames + old->entries[a].first;
			count = old->entries[a].nframes;
			addr = old->entries[a++].addr;
		} else {
			if (a < nold && old->entries[a].addr == addr)
				a++;
			src = syms[b].frames;
			count = syms[b++].nframes;
		}
		entries[n] =
			(struct mp__symstore_entry){addr, count, (uint32_t)nf};
		if (count)
			memcpy(frames + nf, src, count * sizeof(*frames));
		nf += count;
		n++;
	}
	if (entries && frames)
		mp__symstore_save(s->cache->dir, mm->build_id, mm->build_id_len,
				  entries, n, frames);
	free(entries);
	free(frames);
}

/* save_store() for each module of syms (sorted by pc, so each module's
 * pcs are together). */
static void save_stores(struct symbolizer *s, const struct mp_symbol *syms,
			size_t npcs)
{
	for (size_t lo = 0, hi; lo < npcs; lo = hi) {
		for (hi = lo + 1;
		     hi < npcs && syms[hi].module == syms[lo].module; hi++)
			;
		if (syms[lo].module != UINT32_MAX)
			save_store(s, syms[lo].module, syms, lo, hi);
	}
}

static void symbolizer_release(struct symbolizer *s)
{
	for (size_t i = 0; i < s->cus.cap; i++) {
		if (s->cus.v[i]) {
			free(s->cus.v[i]->spans);
			free(s->cus.v[i]);
		}
	}
	free(s->cus.v);
	for (size_t i = 0; s->mods && i < s->snap->nmodules; i++)
		mp__symstore_free(s->mods[i].store);
	free(s->mods);
	free(s->by_start);
	free(s->names.v);
	free(s->files.v);
	free(s->chain);
	free(s->path);
}

enum mp_err mp_symbolize_cached(struct mp_snapshot *snap,
				struct mp_symcache *cache,
				struct mp_errinfo *ei)
{
	struct symbolizer s = {.snap = snap, .cache = cache};
	struct mp_symbol *syms = NULL;
	bool *needed = NULL;
	uint64_t *pcs;
	size_t npcs, n;

	if (!snap)
		return mp__fail(ei, MP_ERR_USAGE, "no snapshot to symbolize");
	if (!cache)
		return mp__fail(ei, MP_ERR_USAGE, "no symbol cache");
	pcs = distinct_pcs(snap, &npcs, &s.oom);
	if (s.oom)
		return mp__fail(ei, MP_ERR_NOMEM,
				"out of memory collecting pcs to symbolize");
	n = snap->nmodules ? snap->nmodules : 1;
	s.mods = calloc(n, sizeof(*s.mods));
	s.by_start = calloc(n, sizeof(*s.by_start));
	needed = calloc(n, sizeof(*needed));
	if (npcs)
		syms = mp__alloc(snap, npcs * sizeof(*syms));
	if (!s.mods || !s.by_start || !needed || (npcs && !syms)) {
		s.oom = true;
	} else {
		index_modules(&s);
		for (size_t i = 0; i < npcs; i++) {
			uint32_t m = module_of(&s, pcs[i]);

			if (m != UINT32_MAX && pcs[i] != 0)
				needed[m] = true;
		}
		use_stores(&s, pcs, npcs, needed);
		attach_modules(&s, needed);
		/* Progress per 256 pcs: a big program's snapshot holds tens
		 * of thousands, each a DWARF lookup. */
		for (size_t i = 0; i < npcs && !s.oom; i++) {
			uint32_t m = module_of(&s, pcs[i]);

			if (i % 256 == 0)
				mp__progress("symbolizing addresses", i, npcs);
			if (m != UINT32_MAX && pcs[i] != 0 &&
			    s.mods[m].from_store)
				symbol_from_store(&s, pcs[i], m, &syms[i]);
			else
				symbolize_pc(&s, pcs[i], m, &syms[i]);
		}
		if (npcs)
			mp__progress("symbolizing addresses", npcs, npcs);
		if (!s.oom)
			save_stores(&s, syms, npcs);
	}
	free(needed);
	free(pcs);
	symbolizer_release(&s);
	if (s.oom)
		return mp__fail(ei, MP_ERR_NOMEM,
				"out of memory symbolizing %zu pcs", npcs);
	snap->symbols = syms;
	snap->nsymbols = npcs;
	snap->has_symbols = true;
	return MP_OK;
}

enum mp_err mp_symbolize(struct mp_snapshot *snap, struct mp_errinfo *ei)
{
	struct mp_symcache *cache = mp_symcache_new();
	enum mp_err err;

	if (!cache)
		return mp__fail(ei, MP_ERR_NOMEM,
				"out of memory starting the symbolizer");
	err = mp_symbolize_cached(snap, cache, ei);
	mp_symcache_free(cache);
	return err;
}
