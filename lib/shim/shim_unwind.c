/*
 * shim_unwind.c - x86-64 stack walking for the shim (DESIGN.md §3).
 *
 * The CFI unwinder finds each pc's FDE with glibc's lock-free
 * _dl_find_object() and the object's .eh_frame_hdr search table, runs the
 * CIE and FDE call-frame programs up to the pc and keeps only what an x86-64
 * walk needs (CFA = %rsp or %rbp + offset, where the return address and %rbp
 * are saved). The decoded rule goes into a process-wide, lock-free,
 * direct-mapped cache indexed by pc, so a warm walk costs one table load per
 * frame plus the stack reads. Signal frames are followed through the
 * ucontext the kernel saved; PLT stubs through their CFA expression.
 *
 * Hook-safe: no allocation (the cache is one mmap), no locks, no stdio, no
 * TLS; async-signal-safe. It reads only the live stack between frames it has
 * validated and the ELF data of loaded objects.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* _dl_find_object, REG_RIP */
#endif
#include "shim/shim_unwind.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#if !defined(__x86_64__)
#error "shim_unwind.c supports x86-64 only"
#endif

/* The walk reads stack slots that belong to no C object of its own. */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize)
#define UNW_NOSAN __attribute__((no_sanitize("address", "undefined")))
#endif
#endif
#ifndef UNW_NOSAN
#define UNW_NOSAN
#endif

#define UNW_MAX_FRAME ((uintptr_t)16 << 20) /* CFA - rsp of one frame */
#define UNW_FP_MAX_FRAME ((uintptr_t)8 << 20)
#define UNW_RED_ZONE 128 /* x86-64 psABI 3.2.2 */

/* ---- decoded rules ------------------------------------------------------ */

enum {
	UNW_CFA_RBP = 1 << 0,	/* CFA = rbp + off, else rsp + off */
	UNW_RBP_SAVED = 1 << 1, /* caller's rbp at CFA + rbp_off8 * 8 */
	UNW_RBP_LOST = 1 << 2,	/* caller's rbp not recoverable */
	UNW_END = 1 << 3,	/* return address undefined: outermost frame */
	UNW_SIGNAL = 1 << 4,	/* sigreturn trampoline: ucontext at rsp */
	UNW_STOP = 1 << 5,	/* a rule we do not follow */
	UNW_VALID = 1 << 6,	/* never 0 as a whole */
};

/* The return address is always at CFA - 8 (what call pushed; any other
 * rule is UNW_STOP). In the cache a rule is one word: cfa_off in bits 0-31,
 * rbp_off8 in 32-39, flags in 40-47, so the walk decodes it in registers. */
struct unw_rule {
	int32_t cfa_off;
	int8_t rbp_off8; /* with UNW_RBP_SAVED */
	uint8_t flags;
};

static inline uint64_t unw_rule_pack(struct unw_rule r)
{
	return (uint64_t)(uint32_t)r.cfa_off |
	       (uint64_t)(uint8_t)r.rbp_off8 << 32 | (uint64_t)r.flags << 40;
}

/* ---- the cache ------------------------------------------------------------
 * Direct-mapped, overwrite on collision, indexed by the low bits of the pc
 * as found on the stack (code addresses are spread evenly there, and the
 * walk's critical path is load -> index -> load). A slot's key word holds
 * the lookup address (pc, or pc - 1 for a return address; bits 0-47), a version
 * (bits 48-62) bumped at every write, and a busy bit (63). A writer claims the
 * slot with a CAS to busy (or gives up: it never waits), stores the rule, then
 * publishes the new key with release. A reader loads key, rule, key again
 * (seqlock) and accepts the rule only if both keys are equal, not busy and hold
 * its pc; the version makes a rewrite of the same pc in between visible.
 */
#define UNW_CACHE_BITS 16
#define UNW_CACHE_SLOTS ((size_t)1 << UNW_CACHE_BITS)
#define UNW_KEY_PC ((UINT64_C(1) << 48) - 1)
#define UNW_KEY_BUSY (UINT64_C(1) << 63)
#define UNW_KEY_VER_ONE (UINT64_C(1) << 48)
#define UNW_KEY_VER (UINT64_C(0x7fff) << 48)

struct unw_slot {
	_Atomic uint64_t key;
	_Atomic uint64_t val;
};

#define UNW_TABLE_FAILED ((struct unw_slot *)1)

static _Atomic(struct unw_slot *) unw_table;

static struct unw_slot *unw_table_create(void)
{
	void *m = mmap(NULL, UNW_CACHE_SLOTS * sizeof(struct unw_slot),
		       PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct unw_slot *fresh = m == MAP_FAILED ? UNW_TABLE_FAILED : m;
	struct unw_slot *expect = NULL;
	if (!atomic_compare_exchange_strong_explicit(&unw_table, &expect, fresh,
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		/* Another thread (or a signal handler) won the race. */
		if (fresh != UNW_TABLE_FAILED)
			munmap(m, UNW_CACHE_SLOTS * sizeof(struct unw_slot));
		fresh = expect;
	}
	return fresh == UNW_TABLE_FAILED ? NULL : fresh;
}

static inline struct unw_slot *unw_table_get(void)
{
	struct unw_slot *t =
		atomic_load_explicit(&unw_table, memory_order_acquire);
	if (__builtin_expect(t == NULL, 0))
		return unw_table_create();
	return t == UNW_TABLE_FAILED ? NULL : t;
}

static inline struct unw_slot *unw_slot_of(struct unw_slot *tab, uintptr_t pc)
{
	return &tab[pc & (UNW_CACHE_SLOTS - 1)];
}

/* The packed rule for lookup address key (found from pc), or 0. */
static inline uint64_t unw_cache_get(struct unw_slot *tab, uintptr_t pc,
				     uintptr_t key)
{
	struct unw_slot *s = unw_slot_of(tab, pc);
	uint64_t k1 = atomic_load_explicit(&s->key, memory_order_acquire);
	uint64_t v = atomic_load_explicit(&s->val, memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	uint64_t k2 = atomic_load_explicit(&s->key, memory_order_relaxed);
	if ((k1 & (UNW_KEY_PC | UNW_KEY_BUSY)) != key || k1 != k2)
		return 0;
	return v;
}

static void unw_cache_put(struct unw_slot *tab, uintptr_t pc, uintptr_t key,
			  uint64_t v)
{
	struct unw_slot *s = unw_slot_of(tab, pc);
	uint64_t k = atomic_load_explicit(&s->key, memory_order_relaxed);
	if (k & UNW_KEY_BUSY)
		return;
	if (!atomic_compare_exchange_strong_explicit(
		    &s->key, &k, k | UNW_KEY_BUSY, memory_order_relaxed,
		    memory_order_relaxed))
		return;
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&s->val, v, memory_order_relaxed);
	uint64_t ver = ((k & UNW_KEY_VER) + UNW_KEY_VER_ONE) & UNW_KEY_VER;
	atomic_store_explicit(&s->key, ver | key, memory_order_release);
}

void shim_unwind_init(void)
{
	(void)unw_table_get();
}

void shim_unwind_flush(void)
{
	struct unw_slot *tab =
		atomic_load_explicit(&unw_table, memory_order_acquire);
	if (tab == NULL || tab == UNW_TABLE_FAILED)
		return;
	for (size_t i = 0; i < UNW_CACHE_SLOTS; i++) {
		struct unw_slot *s = &tab[i];
		uint64_t k =
			atomic_load_explicit(&s->key, memory_order_relaxed);
		if ((k & UNW_KEY_PC) == 0 || (k & UNW_KEY_BUSY))
			continue;
		uint64_t ver =
			((k & UNW_KEY_VER) + UNW_KEY_VER_ONE) & UNW_KEY_VER;
		/* Failing means a writer just claimed it: it stores a fresh
		 * rule. */
		atomic_compare_exchange_strong_explicit(&s->key, &k, ver,
							memory_order_relaxed,
							memory_order_relaxed);
	}
}

/* ---- reading .eh_frame ----------------------------------------------------
 * Every read is bounded by the object's mapping as _dl_find_object reports
 * it; a malformed entry makes the cursor bad instead of reading outside.
 */
struct unw_cur {
	const uint8_t *p, *end;
	bool bad;
};

static inline bool unw_need(struct unw_cur *c, size_t n)
{
	if (c->bad || (size_t)(c->end - c->p) < n) {
		c->bad = true;
		return false;
	}
	return true;
}

UNW_NOSAN static uint8_t unw_u8(struct unw_cur *c)
{
	if (!unw_need(c, 1))
		return 0;
	return *c->p++;
}

UNW_NOSAN static uint64_t unw_fixed(struct unw_cur *c, size_t n)
{
	uint64_t v = 0;
	if (!unw_need(c, n))
		return 0;
	memcpy(&v, c->p, n); /* little-endian */
	c->p += n;
	return v;
}

UNW_NOSAN static uint64_t unw_uleb(struct unw_cur *c)
{
	uint64_t v = 0;
	unsigned shift = 0;
	for (;;) {
		uint8_t b = unw_u8(c);
		if (c->bad)
			return 0;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			return v;
	}
}

UNW_NOSAN static int64_t unw_sleb(struct unw_cur *c)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;
	do {
		b = unw_u8(c);
		if (c->bad)
			return 0;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		v |= ~UINT64_C(0) << shift;
	return (int64_t)v;
}

/* DW_EH_PE_* pointer encodings (LSB "Linux Standard Base Core", 10.5). */
enum {
	PE_absptr = 0x00,
	PE_uleb128 = 0x01,
	PE_udata2 = 0x02,
	PE_udata4 = 0x03,
	PE_udata8 = 0x04,
	PE_sleb128 = 0x09,
	PE_sdata2 = 0x0a,
	PE_sdata4 = 0x0b,
	PE_sdata8 = 0x0c,
	PE_pcrel = 0x10,
	PE_datarel = 0x30,
	PE_indirect = 0x80,
	PE_omit = 0xff,
};

/* Reads one encoded pointer; datarel is relative to dbase (.eh_frame_hdr).
 * Indirect pointers are returned undereferenced: only the personality uses
 * them, and we skip it. */
UNW_NOSAN static uintptr_t unw_encoded(struct unw_cur *c, uint8_t enc,
				       uintptr_t dbase)
{
	uintptr_t at = (uintptr_t)c->p;
	uint64_t v;
	if (enc == PE_omit)
		return 0;
	switch (enc & 0x0f) {
	case PE_absptr:
	case PE_udata8:
	case PE_sdata8: v = unw_fixed(c, 8); break;
	case PE_uleb128: v = unw_uleb(c); break;
	case PE_sleb128: v = (uint64_t)unw_sleb(c); break;
	case PE_udata2: v = unw_fixed(c, 2); break;
	case PE_sdata2: v = (uint64_t)(int64_t)(int16_t)unw_fixed(c, 2); break;
	case PE_udata4: v = unw_fixed(c, 4); break;
	case PE_sdata4: v = (uint64_t)(int64_t)(int32_t)unw_fixed(c, 4); break;
	default: c->bad = true; return 0;
	}
	switch (enc & 0x70) {
	case 0: break;
	case PE_pcrel: v += at; break;
	case PE_datarel: v += dbase; break;
	default:
		c->bad = true;
		return 0; /* textrel/funcrel: not in .eh_frame */
	}
	return (uintptr_t)v;
}

/* ---- running the call-frame program ------------------------------------ */

enum { HOW_SAME, HOW_OFFSET, HOW_UNDEF, HOW_LOST };

struct unw_row {
	int64_t cfa_off;
	int64_t rbp_off, ra_off;
	const uint8_t *cfa_expr; /* DW_CFA_def_cfa_expression, or NULL */
	uint64_t cfa_expr_len;
	uint32_t cfa_reg;
	uint8_t rbp_how, ra_how;
};

struct unw_cie {
	uint64_t code_align;
	int64_t data_align;
	uint64_t ra_reg;
	uint8_t fde_enc;
	bool has_z, signal;
	const uint8_t *insns, *insns_end;
};

#define DW_REG_RBP 6
#define DW_REG_RSP 7
#define UNW_STATE_DEPTH 8

static void unw_set_reg(struct unw_row *row, uint64_t reg, uint64_t ra_reg,
			uint8_t how, int64_t off)
{
	if (reg == DW_REG_RBP) {
		row->rbp_how = how;
		row->rbp_off = off;
	} else if (reg == ra_reg) {
		row->ra_how = how;
		row->ra_off = off;
	}
}

static void unw_restore_reg(struct unw_row *row, const struct unw_row *init,
			    uint64_t reg, uint64_t ra_reg)
{
	if (reg == DW_REG_RBP) {
		row->rbp_how = init->rbp_how;
		row->rbp_off = init->rbp_off;
	} else if (reg == ra_reg) {
		row->ra_how = init->ra_how;
		row->ra_off = init->ra_off;
	}
}

/*
 * Runs the instructions in c while the location (starting at *loc) does not
 * pass pc. init is the row after the CIE program (for DW_CFA_restore), or
 * NULL while running the CIE program itself. Returns false on an opcode it
 * does not know or a malformed program.
 */
UNW_NOSAN static bool unw_run(struct unw_cur *c, const struct unw_cie *cie,
			      uintptr_t *loc, uintptr_t pc, struct unw_row *row,
			      const struct unw_row *init)
{
	struct unw_row stack[UNW_STATE_DEPTH];
	int depth = 0;
	const uint64_t ra = cie->ra_reg;
	const int64_t da = cie->data_align;

	while (c->p < c->end) {
		uint8_t op = unw_u8(c);
		uint64_t reg, delta = 0;
		int64_t off;

		switch (op & 0xc0) {
		case 0x40: /* DW_CFA_advance_loc */
			delta = (uint64_t)(op & 0x3f) * cie->code_align;
			goto advance;
		case 0x80: /* DW_CFA_offset */
			off = (int64_t)unw_uleb(c) * da;
			unw_set_reg(row, op & 0x3f, ra, HOW_OFFSET, off);
			continue;
		case 0xc0: /* DW_CFA_restore */
			if (!init)
				return false;
			unw_restore_reg(row, init, op & 0x3f, ra);
			continue;
		}

		switch (op) {
		case 0x00: /* DW_CFA_nop */ break;
		case 0x01: /* DW_CFA_set_loc */
		{
			uintptr_t to = unw_encoded(c, cie->fde_enc, 0);
			if (to > pc)
				return !c->bad;
			*loc = to;
			break;
		}
		case 0x02:
			delta = unw_fixed(c, 1) * cie->code_align;
			goto advance;
		case 0x03:
			delta = unw_fixed(c, 2) * cie->code_align;
			goto advance;
		case 0x04:
			delta = unw_fixed(c, 4) * cie->code_align;
			goto advance;
		case 0x05: /* DW_CFA_offset_extended */
			reg = unw_uleb(c);
			off = (int64_t)unw_uleb(c) * da;
			unw_set_reg(row, reg, ra, HOW_OFFSET, off);
			break;
		case 0x06: /* DW_CFA_restore_extended */
			reg = unw_uleb(c);
			if (!init)
				return false;
			unw_restore_reg(row, init, reg, ra);
			break;
		case 0x07: /* DW_CFA_undefined */
			unw_set_reg(row, unw_uleb(c), ra, HOW_UNDEF, 0);
			break;
		case 0x08: /* DW_CFA_same_value */
			unw_set_reg(row, unw_uleb(c), ra, HOW_SAME, 0);
			break;
		case 0x09: /* DW_CFA_register */
			reg = unw_uleb(c);
			(void)unw_uleb(c);
			unw_set_reg(row, reg, ra, HOW_LOST, 0);
			break;
		case 0x0a: /* DW_CFA_remember_state */
			if (depth == UNW_STATE_DEPTH)
				return false;
			stack[depth++] = *row;
			break;
		case 0x0b: /* DW_CFA_restore_state: the CFA is part of the state
			    */
			if (depth == 0)
				return false;
			*row = stack[--depth];
			break;
		case 0x0c: /* DW_CFA_def_cfa */
			row->cfa_reg = (uint32_t)unw_uleb(c);
			row->cfa_off = (int64_t)unw_uleb(c);
			row->cfa_expr = NULL;
			break;
		case 0x0d: /* DW_CFA_def_cfa_register */
			row->cfa_reg = (uint32_t)unw_uleb(c);
			row->cfa_expr = NULL;
			break;
		case 0x0e: /* DW_CFA_def_cfa_offset */
			row->cfa_off = (int64_t)unw_uleb(c);
			break;
		case 0x0f: /* DW_CFA_def_cfa_expression */
			off = (int64_t)unw_uleb(c);
			if (!unw_need(c, (size_t)off))
				return false;
			row->cfa_expr = c->p;
			row->cfa_expr_len = (uint64_t)off;
			c->p += off;
			break;
		case 0x10: /* DW_CFA_expression */
		case 0x16: /* DW_CFA_val_expression */
			reg = unw_uleb(c);
			off = (int64_t)unw_uleb(c);
			if (!unw_need(c, (size_t)off))
				return false;
			c->p += off;
			unw_set_reg(row, reg, ra, HOW_LOST, 0);
			break;
		case 0x11: /* DW_CFA_offset_extended_sf */
			reg = unw_uleb(c);
			off = unw_sleb(c) * da;
			unw_set_reg(row, reg, ra, HOW_OFFSET, off);
			break;
		case 0x12: /* DW_CFA_def_cfa_sf */
			row->cfa_reg = (uint32_t)unw_uleb(c);
			row->cfa_off = unw_sleb(c) * da;
			row->cfa_expr = NULL;
			break;
		case 0x13: /* DW_CFA_def_cfa_offset_sf */
			row->cfa_off = unw_sleb(c) * da;
			break;
		case 0x14: /* DW_CFA_val_offset */
			reg = unw_uleb(c);
			(void)unw_uleb(c);
			unw_set_reg(row, reg, ra, HOW_LOST, 0);
			break;
		case 0x15: /* DW_CFA_val_offset_sf */
			reg = unw_uleb(c);
			(void)unw_sleb(c);
			unw_set_reg(row, reg, ra, HOW_LOST, 0);
			break;
		case 0x2e: /* DW_CFA_GNU_args_size */ (void)unw_uleb(c); break;
		case 0x2f: /* DW_CFA_GNU_negative_offset_extended */
			reg = unw_uleb(c);
			off = -(int64_t)unw_uleb(c) * da;
			unw_set_reg(row, reg, ra, HOW_OFFSET, off);
			break;
		default: return false;
		}
		if (c->bad)
			return false;
		continue;
	advance:
		if (c->bad)
			return false;
		/* The new row starts at loc + delta: it covers pc only if <=
		 * pc. */
		if (delta > pc - *loc)
			return true;
		*loc += delta;
	}
	return !c->bad;
}

/*
 * Evaluates a CFA expression at pc, where it must come to %rsp + constant:
 * the form of the PLT's "rsp + 8 + ((rip & 15) >= 11 ? 8 : 0)". Other
 * expressions (dereferences, other registers) return false.
 */
UNW_NOSAN static bool unw_eval_cfa(const uint8_t *expr, uint64_t len,
				   uintptr_t pc, int64_t *off)
{
	struct {
		int64_t v;
		bool rsp;
	} st[8];
	int sp = 0;
	struct unw_cur c = {expr, expr + len, false};
	while (c.p < c.end) {
		uint8_t op = unw_u8(&c);
		int64_t a, b;
		bool ra, rb;
		if (op >= 0x30 && op <= 0x4f) { /* DW_OP_lit0..31 */
			if (sp == 8)
				return false;
			st[sp].v = op - 0x30;
			st[sp++].rsp = false;
			continue;
		}
		switch (op) {
		case 0x77: /* DW_OP_breg7 (rsp) */
		case 0x80: /* DW_OP_breg16 (rip) */
		case 0x08:
		case 0x09:
		case 0x0a:
		case 0x0b:
		case 0x0c:
		case 0x0d:
		case 0x10:
		case 0x11: /* DW_OP_const* */
			if (sp == 8)
				return false;
			switch (op) {
			case 0x77: a = unw_sleb(&c); break;
			case 0x80: a = (int64_t)pc + unw_sleb(&c); break;
			case 0x08: a = (int64_t)unw_fixed(&c, 1); break;
			case 0x09: a = (int8_t)unw_fixed(&c, 1); break;
			case 0x0a: a = (int64_t)unw_fixed(&c, 2); break;
			case 0x0b: a = (int16_t)unw_fixed(&c, 2); break;
			case 0x0c: a = (int64_t)unw_fixed(&c, 4); break;
			case 0x0d: a = (int32_t)unw_fixed(&c, 4); break;
			case 0x10: a = (int64_t)unw_uleb(&c); break;
			default: a = unw_sleb(&c); break;
			}
			st[sp].v = a;
			st[sp++].rsp = op == 0x77;
			continue;
		case 0x23: /* DW_OP_plus_uconst */
			if (sp < 1)
				return false;
			st[sp - 1].v += (int64_t)unw_uleb(&c);
			continue;
		}
		/* Binary operators: only + and - may involve %rsp. */
		if (sp < 2)
			return false;
		b = st[--sp].v;
		rb = st[sp].rsp;
		a = st[sp - 1].v;
		ra = st[sp - 1].rsp;
		if (op == 0x22) { /* DW_OP_plus */
			if (ra && rb)
				return false;
			st[sp - 1].v = a + b;
			st[sp - 1].rsp = ra || rb;
			continue;
		}
		if (op == 0x1c) { /* DW_OP_minus */
			if (rb)
				return false;
			st[sp - 1].v = a - b;
			continue;
		}
		if (ra || rb)
			return false;
		switch (op) {
		case 0x1a: a &= b; break; /* DW_OP_and */
		case 0x21: a |= b; break; /* DW_OP_or */
		case 0x1e: a *= b; break; /* DW_OP_mul */
		case 0x24:
			a = (int64_t)((uint64_t)a << (b & 63));
			break; /* shl */
		case 0x25:
			a = (int64_t)((uint64_t)a >> (b & 63));
			break;		      /* shr */
		case 0x29: a = a == b; break; /* DW_OP_eq */
		case 0x2a: a = a >= b; break; /* DW_OP_ge */
		case 0x2b: a = a > b; break;  /* DW_OP_gt */
		case 0x2c: a = a <= b; break; /* DW_OP_le */
		case 0x2d: a = a < b; break;  /* DW_OP_lt */
		case 0x2e: a = a != b; break; /* DW_OP_ne */
		default: return false;
		}
		st[sp - 1].v = a;
	}
	if (c.bad || sp != 1 || !st[0].rsp)
		return false;
	*off = st[0].v;
	return true;
}

/* Parses the CIE at cie (an address inside [lo, hi)). */
UNW_NOSAN static bool unw_parse_cie(const uint8_t *p, const uint8_t *hi,
				    struct unw_cie *out)
{
	struct unw_cur c = {p, hi, false};
	uint64_t len = unw_fixed(&c, 4);
	if (len == 0xffffffff)
		len = unw_fixed(&c, 8);
	if (c.bad || len == 0 || len > (uint64_t)(hi - c.p))
		return false;
	c.end = c.p + len;
	if (unw_fixed(&c, 4) != 0) /* CIE id in .eh_frame */
		return false;
	uint8_t version = unw_u8(&c);
	if (version != 1 && version != 3)
		return false;
	const char *aug = (const char *)c.p;
	for (;;) {
		uint8_t ch = unw_u8(&c);
		if (c.bad)
			return false;
		if (ch == 0)
			break;
	}
	if (aug[0] == 'e' && aug[1] == 'h') /* ancient gcc: a pointer follows */
		return false;
	out->code_align = unw_uleb(&c);
	out->data_align = unw_sleb(&c);
	out->ra_reg = version == 1 ? unw_u8(&c) : unw_uleb(&c);
	out->fde_enc = PE_absptr;
	out->has_z = false;
	out->signal = false;
	if (aug[0] == 'z') {
		uint64_t alen = unw_uleb(&c);
		if (!unw_need(&c, alen))
			return false;
		const uint8_t *aend = c.p + alen;
		out->has_z = true;
		for (const char *a = aug + 1; *a; a++) {
			switch (*a) {
			case 'R': out->fde_enc = unw_u8(&c); break;
			case 'L': (void)unw_u8(&c); break;
			case 'P': {
				uint8_t enc = unw_u8(&c);
				(void)unw_encoded(&c, enc & 0x7f, 0);
				break;
			}
			case 'S': out->signal = true; break;
			case 'B':
			case 'G': break;
			default: return false; /* its data might precede 'R' */
			}
		}
		if (c.bad)
			return false;
		c.p = aend;
	} else if (aug[0] != 0) {
		return false;
	}
	if (c.bad || out->code_align == 0 || out->ra_reg == DW_REG_RBP)
		return false;
	out->insns = c.p;
	out->insns_end = c.end;
	return true;
}

/*
 * Decodes the rule at pc from the FDE at fde. Returns false when the FDE is
 * malformed or does not cover pc.
 */
UNW_NOSAN static bool unw_decode_fde(const uint8_t *fde, const uint8_t *lo,
				     const uint8_t *hi, uintptr_t pc,
				     struct unw_rule *out)
{
	struct unw_cur c = {fde, hi, false};
	uint64_t len = unw_fixed(&c, 4);
	if (len == 0xffffffff)
		len = unw_fixed(&c, 8);
	if (c.bad || len == 0 || len > (uint64_t)(hi - c.p))
		return false;
	c.end = c.p + len;
	const uint8_t *id_at = c.p;
	uint64_t cie_off = unw_fixed(&c, 4);
	if (c.bad || cie_off == 0 || cie_off > (uint64_t)(id_at - lo))
		return false;
	struct unw_cie cie;
	if (!unw_parse_cie(id_at - cie_off, hi, &cie))
		return false;
	uintptr_t begin = unw_encoded(&c, cie.fde_enc, 0);
	uintptr_t range = unw_encoded(&c, cie.fde_enc & 0x0f, 0);
	if (c.bad || pc < begin || pc - begin >= range)
		return false;
	if (cie.has_z) {
		uint64_t alen = unw_uleb(&c);
		if (!unw_need(&c, alen))
			return false;
		c.p += alen;
	}

	struct unw_rule r = {0, 0, UNW_VALID};
	if (cie.signal) {
		r.flags |= UNW_SIGNAL;
		*out = r;
		return true;
	}

	struct unw_row row = {.cfa_reg = DW_REG_RSP,
			      .cfa_off = 8,
			      .rbp_how = HOW_SAME,
			      .ra_how = HOW_LOST};
	uintptr_t loc = begin;
	struct unw_cur ci = {cie.insns, cie.insns_end, false};
	if (!unw_run(&ci, &cie, &loc, pc, &row, NULL))
		goto stop;
	struct unw_row init = row;
	loc = begin;
	if (!unw_run(&c, &cie, &loc, pc, &row, &init))
		goto stop;

	if (row.ra_how == HOW_UNDEF) {
		r.flags |= UNW_END;
		*out = r;
		return true;
	}
	if (row.cfa_expr) {
		/* Only exact pcs can be in a PLT stub (it makes no calls). */
		if (!unw_eval_cfa(row.cfa_expr, row.cfa_expr_len, pc,
				  &row.cfa_off))
			goto stop;
		row.cfa_reg = DW_REG_RSP;
	}
	if (row.ra_how != HOW_OFFSET)
		goto stop;
	if (row.cfa_reg == DW_REG_RBP)
		r.flags |= UNW_CFA_RBP;
	else if (row.cfa_reg != DW_REG_RSP)
		goto stop;
	if (row.cfa_off < INT32_MIN || row.cfa_off > INT32_MAX)
		goto stop;
	r.cfa_off = (int32_t)row.cfa_off;
	if (row.ra_off != -8)
		goto stop;
	if (row.rbp_how == HOW_OFFSET) {
		if ((row.rbp_off & 7) || row.rbp_off < -1024 ||
		    row.rbp_off >= 0) {
			r.flags |= UNW_RBP_LOST;
		} else {
			r.flags |= UNW_RBP_SAVED;
			r.rbp_off8 = (int8_t)(row.rbp_off / 8);
		}
	} else if (row.rbp_how != HOW_SAME) {
		r.flags |= UNW_RBP_LOST;
	}
	*out = r;
	return true;
stop:
	r.flags |= UNW_STOP;
	*out = r;
	return true;
}

/* Binary-searches the .eh_frame_hdr table for the FDE that may cover pc. */
UNW_NOSAN static const uint8_t *unw_find_fde(const uint8_t *hdr,
					     const uint8_t *lo,
					     const uint8_t *hi, uintptr_t pc)
{
	if (hdr < lo || hdr >= hi)
		return NULL;
	struct unw_cur c = {hdr, hi, false};
	uint8_t version = unw_u8(&c);
	uint8_t ptr_enc = unw_u8(&c), cnt_enc = unw_u8(&c),
		tab_enc = unw_u8(&c);
	if (version != 1 || cnt_enc == PE_omit || tab_enc == PE_omit)
		return NULL;
	(void)unw_encoded(&c, ptr_enc, (uintptr_t)hdr);
	uint64_t count = unw_encoded(&c, cnt_enc, (uintptr_t)hdr);
	if (c.bad || count == 0)
		return NULL;

	size_t esz;
	switch (tab_enc & 0x0f) {
	case PE_udata4:
	case PE_sdata4: esz = 4; break;
	case PE_udata8:
	case PE_sdata8: esz = 8; break;
	default: return NULL;
	}
	if ((tab_enc & 0x70) != PE_datarel && (tab_enc & 0x70) != 0)
		return NULL;
	if (count > (uint64_t)(hi - c.p) / (2 * esz))
		return NULL;
	const uint8_t *tab = c.p;
	uintptr_t base = (tab_enc & 0x70) == PE_datarel ? (uintptr_t)hdr : 0;

	/* Last entry whose initial location is <= pc. */
	size_t l = 0, h = (size_t)count;
	while (h - l > 1) {
		size_t m = l + (h - l) / 2;
		struct unw_cur e = {tab + m * 2 * esz, hi, false};
		if (unw_encoded(&e, tab_enc & 0x7f, base) <= pc)
			l = m;
		else
			h = m;
	}
	struct unw_cur e = {tab + l * 2 * esz, hi, false};
	uintptr_t start = unw_encoded(&e, tab_enc & 0x7f, base);
	uintptr_t fde = unw_encoded(&e, tab_enc & 0x7f, base);
	if (e.bad || start > pc || fde < (uintptr_t)lo || fde >= (uintptr_t)hi)
		return NULL;
	return (const uint8_t *)fde;
}

/* mov $15,%rax; syscall: the rt_sigreturn trampoline (glibc __restore_rt). */
static const uint8_t unw_sigreturn_code[9] = {0x48, 0xc7, 0xc0, 0x0f, 0x00,
					      0x00, 0x00, 0x0f, 0x05};

/*
 * Computes the rule for lookup address key (pc, or pc - 1 for a return
 * address). Returns false when pc lies in no loaded object (JIT code, or a
 * corrupt pc): that answer is not cached, the object may appear later.
 */
UNW_NOSAN static bool unw_decode(uintptr_t key, uintptr_t pc,
				 struct unw_rule *out)
{
	struct dl_find_object fo;
	if (_dl_find_object((void *)key, &fo) != 0)
		return false;
	const uint8_t *lo = fo.dlfo_map_start, *hi = fo.dlfo_map_end;
	const uint8_t *fde = NULL;
	if (fo.dlfo_eh_frame)
		fde = unw_find_fde(fo.dlfo_eh_frame, lo, hi, key);
	if (fde && unw_decode_fde(fde, lo, hi, key, out) &&
	    !(out->flags & UNW_STOP))
		return true;
	/* No usable FDE: a sigreturn trampoline without CFI is still known. */
	struct unw_rule r = {0, 0, UNW_VALID | UNW_STOP};
	if (pc >= (uintptr_t)lo && pc < (uintptr_t)hi &&
	    (uintptr_t)hi - pc >= sizeof unw_sigreturn_code &&
	    memcmp((const void *)pc, unw_sigreturn_code,
		   sizeof unw_sigreturn_code) == 0)
		r.flags = UNW_VALID | UNW_SIGNAL;
	*out = r;
	return true;
}

/* The packed rule for key (found from pc) when it is not cached, or 0. */
__attribute__((noinline)) UNW_NOSAN static uint64_t unw_rule_slow(
	struct unw_slot *tab, uintptr_t pc, uintptr_t key)
{
	struct unw_rule r;
	if (!unw_decode(key, pc, &r))
		return 0;
	uint64_t v = unw_rule_pack(r);
	if (tab && key <= UNW_KEY_PC)
		unw_cache_put(tab, pc, key, v);
	return v;
}

/* ---- the walks ------------------------------------------------------------
 */

/* Offsets of the saved registers in the ucontext the kernel pushes. */
#define UNW_UC_REG(r) \
	(offsetof(ucontext_t, uc_mcontext.gregs) + (r) * sizeof(greg_t))

/* Records a word the walk read from memory, for shim_unwind_from's memo
 * (see shim_unwind.h). */
#define UNW_LOG(log, a, v)                                              \
	do {                                                            \
		if (log) {                                              \
			if ((log)->n < SHIM_UNW_LOG_MAX) {              \
				(log)->addr[(log)->n] = (uintptr_t)(a); \
				(log)->val[(log)->n] = (uintptr_t)(v);  \
				(log)->n++;                             \
			} else {                                        \
				(log)->overflow = 1;                    \
			}                                               \
		}                                                       \
	} while (0)

__attribute__((always_inline)) UNW_NOSAN static inline int unw_walk(
	uintptr_t *pcs, uintptr_t *sps, int max, uintptr_t pc, uintptr_t sp,
	uintptr_t bp, struct shim_unw_log *log, bool exact0)
{
	struct unw_slot *tab = unw_table_get();
	bool exact = exact0, bp_ok = true, bp_first = true;
	/* A saved %rbp read goes into the log only once a frame takes its CFA
	 * from it: code without frame pointers saves %rbp as any register,
	 * and a value no frame uses cannot change the walk. */
	uintptr_t bp_from = 0;
	int n = 0;

	while (n < max) {
		/* A return address may be the first byte after a noreturn call
		 * that ends its function: look its rule up inside the call. */
		uintptr_t key = pc - !exact;
		uint64_t v = 0;
		if (__builtin_expect(tab != NULL, 1))
			v = unw_cache_get(tab, pc, key);
		if (__builtin_expect(v == 0, 0)) {
			v = unw_rule_slow(tab, pc, key);
			if (v == 0)
				break;
		}
		unsigned flags = (unsigned)(v >> 40) & 0xff;

		if (__builtin_expect(flags & (UNW_END | UNW_STOP | UNW_SIGNAL),
				     0)) {
			if (!(flags & UNW_SIGNAL))
				break;
			/* The handler returned into the trampoline: its CFA
			 * (our sp) is the ucontext of struct rt_sigframe. */
			const uint8_t *uc = (const uint8_t *)sp;
			uintptr_t npc, nsp, nbp;
			memcpy(&npc, uc + UNW_UC_REG(REG_RIP), sizeof npc);
			memcpy(&nsp, uc + UNW_UC_REG(REG_RSP), sizeof nsp);
			memcpy(&nbp, uc + UNW_UC_REG(REG_RBP), sizeof nbp);
			/* A signal frame may sit on an alternate stack that is
			 * freed later: such a walk is never reused. */
			if (log)
				log->overflow = 1;
			/* The interrupted stack may be elsewhere (sigaltstack),
			 * so no ordering check; it must look like a stack. */
			if (npc == 0 || nsp == 0 || (nsp & 7))
				break;
			if (sps)
				sps[n] = nsp;
			pcs[n++] = npc;
			pc = npc;
			sp = nsp;
			bp = nbp;
			bp_from = 0; /* not reused anyway (overflow) */
			bp_ok = true;
			bp_first = false;
			exact = true; /* interrupted, not called: no pc - 1 */
			continue;
		}

		uintptr_t base = sp;
		if (flags & UNW_CFA_RBP) {
			if (!bp_ok)
				break;
			if (bp_first && log)
				log->used_bp = 1;
			if (bp_from) {
				UNW_LOG(log, bp_from, bp);
				bp_from = 0;
			}
			base = bp;
		}
		uintptr_t cfa = base + (uintptr_t)(intptr_t)(int32_t)v;
		/* Above the previous frame, room for the return address
		 * (so the slots read below are in [sp, cfa)), not too far. */
		if (cfa - sp - 8 >= UNW_MAX_FRAME)
			break;
		uintptr_t ra = ((const uintptr_t *)cfa)[-1];
		UNW_LOG(log, cfa - 8, ra);
		if (flags & UNW_RBP_SAVED) {
			uintptr_t bp_at =
				cfa +
				(uintptr_t)((intptr_t)(int8_t)(v >> 32) * 8);
			/* Below sp only in an interrupted leaf that saved it in
			 * the red zone, or an epilogue that popped it already
			 * (gcc emits no DW_CFA_restore there): the kernel left
			 * the red zone intact, the value is still there. */
			if (bp_at < sp - UNW_RED_ZONE)
				break;
			bp = *(const uintptr_t *)bp_at;
			bp_from = bp_at;
			bp_ok = true;
			bp_first = false;
		} else if (flags & UNW_RBP_LOST) {
			bp_from = 0;
			bp_ok = false;
			bp_first = false;
		}
		if (ra == 0)
			break;
		if (sps)
			sps[n] = cfa;
		pcs[n++] = ra;
		pc = ra;
		sp = cfa;
		exact = false;
	}
	return n;
}

__attribute__((noinline)) UNW_NOSAN int shim_unwind(uintptr_t *pcs, int max)
{
	uintptr_t pc, sp, bp;
	/* Our own pc, rsp and rbp at one point: the CFI row of this very
	 * instruction describes our frame, whatever the prologue did. */
	__asm__ volatile("leaq 0(%%rip), %0\n\t"
			 "movq %%rsp, %1\n\t"
			 "movq %%rbp, %2"
			 : "=r"(pc), "=r"(sp), "=r"(bp));
	if (max <= 0)
		return 0;
	return unw_walk(pcs, NULL, max, pc, sp, bp, NULL, true);
}

UNW_NOSAN int shim_unwind_from(uintptr_t pc, uintptr_t sp, uintptr_t bp,
			       uintptr_t *pcs, int max,
			       struct shim_unw_log *log)
{
	if (max <= 0)
		return 0;
	/* pc is a return address: look its rule up as one (pc - 1). */
	pcs[0] = pc;
	if (max == 1)
		return 1;
	return 1 + unw_walk(pcs + 1, NULL, max - 1, pc, sp, bp, log, false);
}

__attribute__((noinline)) UNW_NOSAN int shim_unwind_sp(uintptr_t *pcs,
						       uintptr_t *sps, int max)
{
	uintptr_t pc, sp, bp;
	__asm__ volatile("leaq 0(%%rip), %0\n\t"
			 "movq %%rsp, %1\n\t"
			 "movq %%rbp, %2"
			 : "=r"(pc), "=r"(sp), "=r"(bp));
	if (max <= 0)
		return 0;
	return unw_walk(pcs, sps, max, pc, sp, bp, NULL, true);
}

/* __builtin_frame_address(0) makes both gcc and clang set up %rbp here. */
__attribute__((noinline)) UNW_NOSAN int shim_unwind_fp(uintptr_t *pcs, int max)
{
	/* Our own frame: [fp] = caller's rbp, [fp + 8] = our return address. */
	const uintptr_t *fp = __builtin_frame_address(0);
	int n = 0;
	while (n < max) {
		uintptr_t ra = fp[1];
		if (ra == 0)
			break;
		pcs[n++] = ra;
		const uintptr_t *next = (const uintptr_t *)fp[0];
		if (next <= fp || ((uintptr_t)next & 15) ||
		    (uintptr_t)next - (uintptr_t)fp > UNW_FP_MAX_FRAME)
			break;
		fp = next;
	}
	return n;
}
