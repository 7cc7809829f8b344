/*
 * shim_scan.c - the exit-time heap scan that finds leaks by reachability.
 *
 * Stops the program's other threads (a signal whose handler saves the
 * thread's registers and waits), then scans conservatively, every aligned
 * word: the roots (writable segments of the loaded modules, every thread's
 * stack from its stack pointer up, its registers, its static TLS and
 * thread descriptor) and then the contents of every live block. A word
 * whose value falls at the start of a live block, or inside one, is a
 * pointer to it. The result is the graph of formats/snapshot.md, GRPH.
 *
 * Only memory that /proc/self/maps lists as readable is read. While the
 * world is stopped nothing here takes a lock (another thread may hold any
 * of them) or allocates: the caller already holds the live table's locks,
 * and memory comes from mmap. Hook-safe: no malloc, no stdio.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "shim/shim_internal.h"
#include "shim/shim_unwind.h"

/* ---- readable mappings ----------------------------------------------------
 */

struct mapping {
	uintptr_t start, end;
	bool readable;
};

static struct mapping *maps;
static size_t nmaps, maps_cap_bytes;

static uintptr_t parse_hex(const char **p)
{
	uintptr_t v = 0;
	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (uintptr_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uintptr_t)(c - 'a' + 10);
		else
			return v;
	}
}

/* Reads /proc/self/maps with plain read(2); false when it cannot. */
static bool maps_load(void)
{
	size_t cap = 1u << 20, len = 0;
	char *buf = shim_mmap(cap);
	if (!buf)
		return false;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		shim_munmap(buf, cap);
		return false;
	}
	for (;;) {
		if (len == cap) {
			char *n = shim_mmap(cap * 2);
			if (!n)
				break;
			memcpy(n, buf, len);
			shim_munmap(buf, cap);
			buf = n;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	maps_cap_bytes = (lines + 1) * sizeof(*maps);
	maps = shim_mmap(maps_cap_bytes);
	if (!maps) {
		shim_munmap(buf, cap);
		return false;
	}
	nmaps = 0;
	const char *p = buf, *end = buf + len;
	while (p < end) {
		struct mapping m;
		m.start = parse_hex(&p);
		if (*p == '-')
			p++;
		m.end = parse_hex(&p);
		if (*p == ' ')
			p++;
		m.readable = p < end && *p == 'r';
		if (m.end > m.start)
			maps[nmaps++] = m;
		while (p < end && *p != '\n')
			p++;
		p++;
	}
	shim_munmap(buf, cap);
	return true;
}

static void maps_release(void)
{
	shim_munmap(maps, maps_cap_bytes);
	maps = NULL;
	nmaps = 0;
}

/* The mapping containing addr, or NULL. */
static const struct mapping *maps_find(uintptr_t addr)
{
	size_t lo = 0, hi = nmaps;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (maps[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < nmaps && maps[lo].start <= addr)
		return &maps[lo];
	return NULL;
}

/* ---- module roots, collected before the world stops -------------------------
 */

#define MAX_RANGES 16384

struct range {
	uintptr_t lo, hi;
	bool libc; /* glibc's own data: its malloc state lives there */
};

static struct range *data_ranges;
static size_t ndata;
static uintptr_t self_base;

static int data_cb(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size;
	(void)ctx;
	if (info->dlpi_addr == self_base && self_base)
		return 0; /* the shim's own state is not the program's */
	for (int i = 0; i < info->dlpi_phnum && ndata < MAX_RANGES; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		data_ranges[ndata].lo = lo & ~(uintptr_t)7;
		data_ranges[ndata].hi = lo + ph->p_memsz;
		data_ranges[ndata].libc =
			strstr(info->dlpi_name, "/libc.so") != NULL;
		ndata++;
	}
	return 0;
}

/* ---- stopping the other threads
 * ------------------------------------------------ */

#define MAX_THREADS 8192
#define NREGS 17

struct stopped {
	uintptr_t sp, tp;
	uintptr_t regs[NREGS];
	_Atomic int ready;
};

static struct stopped *stopped;
static pid_t *signalled;
static _Atomic int nstopped, stop_release, stop_armed;
static int nsignalled;
static int stop_sig;
static size_t tls_size_value; /* static TLS, descriptor included */
static size_t pthread_size;   /* sizeof(struct pthread) */

static uintptr_t thread_pointer(void)
{
	uintptr_t tp;
	__asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
	return tp;
}

static void stop_handler(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	if (!atomic_load(&stop_armed) || si->si_code != SI_TKILL ||
	    si->si_pid != getpid())
		return;
	int e = errno;
	ucontext_t *uc = ucv;
	int k = atomic_fetch_add(&nstopped, 1);
	if (k < MAX_THREADS) {
		struct stopped *s = &stopped[k];
		const greg_t *g = uc->uc_mcontext.gregs;
		static const int which[NREGS] = {
			REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI, REG_RDI,
			REG_RBP, REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12,
			REG_R13, REG_R14, REG_R15, REG_RSP, REG_RIP};
		for (int i = 0; i < NREGS; i++)
			s->regs[i] = (uintptr_t)g[which[i]];
		s->sp = (uintptr_t)g[REG_RSP];
		s->tp = thread_pointer();
		atomic_store(&s->ready, 1);
	}
	while (!atomic_load(&stop_release))
		syscall(SYS_futex, &stop_release, FUTEX_WAIT_PRIVATE, 0, NULL,
			NULL, 0);
	errno = e;
}

static bool was_signalled(pid_t tid)
{
	for (int i = 0; i < nsignalled; i++)
		if (signalled[i] == tid)
			return true;
	return false;
}

/* Signals every thread not yet signalled; returns how many it signalled. */
static int signal_threads(pid_t self)
{
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[4096];
	int sent = 0;
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (void *)(buf + off);
			off += d->reclen;
			pid_t tid = 0;
			const char *c = d->name;
			if (*c < '0' || *c > '9')
				continue;
			for (; *c >= '0' && *c <= '9'; c++)
				tid = tid * 10 + (*c - '0');
			/* The trigger thread blocks every signal and holds
			 * nothing of the program's. */
			if (tid == self || tid == shim_trigger_tid() ||
			    was_signalled(tid) || nsignalled >= MAX_THREADS)
				continue;
			if (syscall(SYS_tgkill, getpid(), tid, stop_sig) == 0) {
				signalled[nsignalled++] = tid;
				sent++;
			}
		}
	}
	close(fd);
	return sent;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {0, ms * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Stops the other threads; returns how many did not answer in time. */
static int world_stop(void)
{
	stopped = shim_mmap(MAX_THREADS * sizeof(*stopped));
	signalled = shim_mmap(MAX_THREADS * sizeof(*signalled));
	if (!stopped || !signalled)
		return 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = stop_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	/* The handler stays installed after the scan: a late thread may
	 * still have the signal pending, and the default action of a
	 * real-time signal would kill the process. */
	if (sigaction(stop_sig, &sa, NULL) != 0)
		return 0;
	atomic_store(&stop_armed, 1);
	pid_t self = (pid_t)syscall(SYS_gettid);
	for (int round = 0; round < 8; round++) {
		if (signal_threads(self) == 0 && round > 0)
			break;
		/* Wait for the answers, at most a second in all. */
		for (int t = 0; t < 1000 && atomic_load(&nstopped) < nsignalled;
		     t++)
			sleep_ms(1);
	}
	int answered = atomic_load(&nstopped);
	return nsignalled > answered ? nsignalled - answered : 0;
}

static void world_resume(void)
{
	atomic_store(&stop_release, 1);
	syscall(SYS_futex, &stop_release, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
		NULL, 0);
}

/* ---- the scan
 * ------------------------------------------------------------------------ */

struct scan {
	const struct shim_blk *v;
	size_t n;
	uintptr_t lo, hi; /* no pointer outside [lo, hi) can hit a block */
	struct shim_graph *g;
	/* targets found in the block being scanned: (to << 1) | interior */
	uint64_t *tmp;
	size_t ntmp, tmp_cap;
	bool failed;
	bool in_libc; /* scanning glibc's data segment */
};

/* The block containing w: its index, *start says whether w is its start. */
static inline ssize_t lookup(const struct scan *s, uintptr_t w, bool *start)
{
	if (w < s->lo || w >= s->hi)
		return -1;
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid].addr <= w)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	const struct shim_blk *b = &s->v[lo - 1];
	/* A pointer to a zero-sized block can only be its start. */
	if (w == b->addr) {
		*start = true;
		return (ssize_t)(lo - 1);
	}
	if (w < b->addr + b->size) {
		*start = false;
		return (ssize_t)(lo - 1);
	}
	return -1;
}

/*
 * glibc keeps its malloc state (main_arena: the top chunk, the bins) in
 * libc's .data. Those words point at chunk headers, and the header after a
 * live block lies inside it when the request fills the block's usable size
 * (a 56-byte request: the next header is at +48). They are the allocator's,
 * not the program's pointers; Valgrind, which replaces malloc, never sees
 * them. So in libc's data a word exactly at the next chunk's header of the
 * block it falls in is not a pointer to that block.
 */
static bool is_chunk_header(const struct shim_blk *b, uintptr_t w)
{
	if (!shim_real.malloc_usable_size)
		return false;
	size_t usable = shim_real.malloc_usable_size((void *)b->addr);
	return usable >= 8 && w == b->addr + usable - 8;
}

static void root_word(struct scan *s, uintptr_t w, uint8_t kind)
{
	bool start;
	ssize_t j = lookup(s, w, &start);
	if (j < 0)
		return;
	if (!start && s->in_libc && is_chunk_header(&s->v[j], w))
		return;
	if (start)
		s->g->root_start[j] |= kind;
	else
		s->g->root_interior[j] |= kind;
}

/* Scans [lo, hi) as roots of kind, reading only readable mappings. */
static void scan_root_range(struct scan *s, uintptr_t lo, uintptr_t hi,
			    uint8_t kind)
{
	lo = (lo + 7) & ~(uintptr_t)7;
	while (lo + 8 <= hi) {
		const struct mapping *m = maps_find(lo);
		if (!m) {
			/* Skip to the next mapping above lo. */
			size_t k = 0;
			while (k < nmaps && maps[k].start <= lo)
				k++;
			if (k == nmaps)
				return;
			lo = maps[k].start;
			continue;
		}
		uintptr_t end = m->end < hi ? m->end : hi;
		if (m->readable)
			for (uintptr_t a = lo; a + 8 <= end; a += 8)
				root_word(s, *(const uintptr_t *)a, kind);
		lo = m->end;
	}
}

static bool tmp_push(struct scan *s, uint64_t v)
{
	if (s->ntmp == s->tmp_cap) {
		size_t ncap = s->tmp_cap ? s->tmp_cap * 2 : 4096;
		uint64_t *n = shim_mmap(ncap * sizeof(*n));
		if (!n)
			return false;
		memcpy(n, s->tmp, s->ntmp * sizeof(*n));
		shim_munmap(s->tmp, s->tmp_cap * sizeof(*n));
		s->tmp = n;
		s->tmp_cap = ncap;
	}
	s->tmp[s->ntmp++] = v;
	return true;
}

/* In-place heapsort: no recursion, no memory. */
static void sort_u64(uint64_t *a, size_t n)
{
	if (n < 2)
		return;
	for (size_t start = n / 2; start-- > 0;) {
		for (size_t root = start;;) {
			size_t child = 2 * root + 1;
			if (child >= n)
				break;
			if (child + 1 < n && a[child] < a[child + 1])
				child++;
			if (a[root] >= a[child])
				break;
			uint64_t t = a[root];
			a[root] = a[child];
			a[child] = t;
			root = child;
		}
	}
	for (size_t end = n - 1; end > 0; end--) {
		uint64_t t = a[0];
		a[0] = a[end];
		a[end] = t;
		for (size_t root = 0;;) {
			size_t child = 2 * root + 1;
			if (child >= end)
				break;
			if (child + 1 < end && a[child] < a[child + 1])
				child++;
			if (a[root] >= a[child])
				break;
			t = a[root];
			a[root] = a[child];
			a[child] = t;
			root = child;
		}
	}
}

static bool edges_push(struct shim_graph *g, uint64_t v)
{
	if (g->nedges == g->edges_cap) {
		size_t ncap = g->edges_cap ? g->edges_cap * 2 : 65536;
		uint64_t *n = shim_mmap(ncap * sizeof(*n));
		if (!n)
			return false;
		memcpy(n, g->edges, g->nedges * sizeof(*n));
		shim_munmap(g->edges, g->edges_cap * sizeof(*n));
		g->edges = n;
		g->edges_cap = ncap;
	}
	g->edges[g->nedges++] = v;
	return true;
}

static void scan_block(struct scan *s, size_t i)
{
	const struct shim_blk *b = &s->v[i];
	s->ntmp = 0;
	const uintptr_t *w = (const uintptr_t *)b->addr;
	size_t words = b->size / 8;
	/* A block that does not lie in readable memory was freed behind the
	 * shim's back (see shim_table.c); large ones may be unmapped. */
	if (b->size >= 65536) {
		const struct mapping *m = maps_find(b->addr);
		if (!m || !m->readable || m->end < b->addr + b->size)
			words = 0;
	}
	for (size_t k = 0; k < words; k++) {
		bool start;
		ssize_t j = lookup(s, w[k], &start);
		if (j >= 0 && !tmp_push(s, ((uint64_t)j << 1) | !start)) {
			s->failed = true;
			return;
		}
	}
	sort_u64(s->tmp, s->ntmp);
	/* One edge per target; a start pointer (low bit 0) sorts first, so
	 * the edge is interior only when no start pointer was found. */
	uint64_t prev = UINT64_MAX;
	for (size_t k = 0; k < s->ntmp; k++) {
		uint64_t to = s->tmp[k] >> 1;
		if (to == prev)
			continue;
		prev = to;
		if (!edges_push(s->g, (to << 3) | (s->tmp[k] & 1))) {
			s->failed = true;
			return;
		}
	}
}

/* Where the program handed this thread to the shim: the stack above it
 * and the callee-saved registers at that point are the program's; the
 * shim's own frames below it hold stale words of the program's past. */
static uintptr_t entry_sp;
static uintptr_t entry_regs[6];
/* The scanning thread is the shim's own: nothing of it is scanned. */
static bool entry_none;

static __attribute__((noinline)) void own_registers(uintptr_t *r)
{
	__asm__ volatile("mov %%rbx, 0(%0)\n\t"
			 "mov %%rbp, 8(%0)\n\t"
			 "mov %%r12, 16(%0)\n\t"
			 "mov %%r13, 24(%0)\n\t"
			 "mov %%r14, 32(%0)\n\t"
			 "mov %%r15, 40(%0)\n\t"
			 :
			 : "r"(r)
			 : "memory");
}

void shim_scan_init(void)
{
	stop_sig = SHIM_STOP_SIGNAL;
	Dl_info info;
	if (dladdr((void *)shim_scan_init, &info))
		self_base = (uintptr_t)info.dli_fbase;
	/* glibc's private hook for the size of the static TLS area (the
	 * same one LeakSanitizer uses). */
	void (*get)(size_t *, size_t *) = (void (*)(size_t *, size_t *))dlsym(
		RTLD_DEFAULT, "_dl_get_tls_static_info");
	if (get) {
		size_t size = 0, align = 0;
		get(&size, &align);
		tls_size_value = size;
	}
	/* The descriptor's size, exported by glibc for libthread_db. */
	const unsigned *ps = (const unsigned *)dlsym(
		RTLD_DEFAULT, "_thread_db_sizeof_pthread");
	if (ps)
		pthread_size = *ps;
}

/* Whether path names the dynamic loader (ld-linux-x86-64.so.2, as the
 * program's PT_INTERP names it, or any ld-*.so / ld.so). */
static bool is_loader(const char *path)
{
	if (!path)
		return false;
	const char *base = path;
	for (const char *p = path; *p; p++)
		if (*p == '/')
			base = p + 1;
	return !strncmp(base, "ld-linux", 8) || !strncmp(base, "ld.so", 5) ||
	       !strncmp(base, "ld64.so", 7);
}

void shim_scan_mark_entry(uintptr_t sp)
{
	/* noinline and called first thing: the callee-saved registers
	 * still hold the program's values. */
	own_registers(entry_regs);
	entry_sp = sp;
	entry_none = false;
	/* The destructor runs inside ld.so's _dl_fini, whose live frame
	 * holds stale words of the program's past (Valgrind scans after it
	 * returned). Start at the first frame that is neither the shim's nor
	 * the loader's. */
	uintptr_t pcs[32], sps[32];
	int n = shim_unwind_sp(pcs, sps, 32);
	for (int i = 0; i < n; i++) {
		Dl_info info;
		if (!dladdr((void *)pcs[i], &info))
			break;
		if ((uintptr_t)info.dli_fbase == self_base ||
		    is_loader(info.dli_fname))
			continue;
		/* sps[i]: frame i's stack pointer where it called into the
		 * loader or the shim, as at _exit under Valgrind. */
		if (sps[i] > entry_sp)
			entry_sp = sps[i];
		break;
	}
}

void shim_scan_mark_none(void)
{
	entry_none = true;
	entry_sp = 0;
}

void shim_scan_prepare(void)
{
	data_ranges = shim_mmap(MAX_RANGES * sizeof(*data_ranges));
	ndata = 0;
	if (data_ranges)
		dl_iterate_phdr(data_cb, NULL);
}

int shim_scan_stop_world(void)
{
	return world_stop();
}

void shim_scan_resume_world(void)
{
	world_resume();
}

static void scan_thread(struct scan *s, uintptr_t sp, uintptr_t redzone,
			uintptr_t tp, const uintptr_t *regs, int nregs)
{
	for (int i = 0; i < nregs; i++)
		root_word(s, regs[i], MP_ROOT_REGS_BIT);
	/* The stack, from below the red zone (an interrupted leaf function
	 * keeps data there) up to the end of its mapping. */
	const struct mapping *m = maps_find(sp);
	if (m)
		scan_root_range(s, sp >= redzone ? sp - redzone : 0, m->end,
				MP_ROOT_STACK_BIT);
	/* Static TLS lies below the thread pointer, the descriptor at it
	 * (x86-64, TLS variant II); nothing beyond them, which for the main
	 * thread is the loader's memory, not this thread's. */
	if (tp) {
		uintptr_t desc = pthread_size ? pthread_size : 2368;
		uintptr_t below =
			tls_size_value > desc ? tls_size_value - desc : 4096;
		const struct mapping *t = maps_find(tp);
		if (t) {
			uintptr_t lo = tp > below ? tp - below : 0;
			uintptr_t hi = tp + desc;
			if (lo < t->start)
				lo = t->start;
			if (hi > t->end)
				hi = t->end;
			scan_root_range(s, lo, hi, MP_ROOT_TLS_BIT);
		}
	}
}

bool shim_scan_graph(const struct shim_blk *v, size_t n, int unanswered,
		     struct shim_graph *g)
{
	memset(g, 0, sizeof(*g));
	g->n = n;
	g->threads_unscanned = (uint32_t)unanswered;
	g->root_bytes = n ? n : 1;
	g->root_start = shim_mmap(g->root_bytes);
	g->root_interior = shim_mmap(g->root_bytes);
	g->edge_start = shim_mmap((n + 1) * sizeof(uint64_t));
	if (!g->root_start || !g->root_interior || !g->edge_start ||
	    !maps_load()) {
		shim_graph_release(g);
		return false;
	}
	struct scan s = {.v = v, .n = n, .g = g};
	if (n) {
		s.lo = v[0].addr;
		for (size_t i = 0; i < n; i++)
			if (v[i].addr + v[i].size + 1 > s.hi)
				s.hi = v[i].addr + v[i].size + 1;
	}

	for (size_t i = 0; i < ndata; i++) {
		s.in_libc = data_ranges[i].libc;
		scan_root_range(&s, data_ranges[i].lo, data_ranges[i].hi,
				MP_ROOT_DATA_BIT);
	}
	s.in_libc = false;

	uint32_t threads = 0;
	if (!entry_none) {
		uintptr_t sp = entry_sp ? entry_sp
					: (uintptr_t)__builtin_frame_address(0);
		scan_thread(&s, sp, 0, thread_pointer(), entry_regs, 6);
		threads = 1;
	}
	int k = atomic_load(&nstopped);
	for (int i = 0; i < k && i < MAX_THREADS; i++) {
		if (!atomic_load(&stopped[i].ready))
			continue;
		scan_thread(&s, stopped[i].sp, 128, stopped[i].tp,
			    stopped[i].regs, NREGS);
		threads++;
	}
	g->threads = threads;

	for (size_t i = 0; i < n && !s.failed; i++) {
		g->edge_start[i] = g->nedges;
		scan_block(&s, i);
	}
	g->edge_start[n] = g->nedges;
	shim_munmap(s.tmp, s.tmp_cap * sizeof(*s.tmp));
	maps_release();
	if (s.failed) {
		shim_graph_release(g);
		return false;
	}
	return true;
}

void shim_graph_release(struct shim_graph *g)
{
	shim_munmap(g->root_start, g->root_bytes);
	shim_munmap(g->root_interior, g->root_bytes);
	shim_munmap(g->edge_start, (g->n + 1) * sizeof(uint64_t));
	shim_munmap(g->edges, g->edges_cap * sizeof(uint64_t));
	memset(g, 0, sizeof(*g));
}
