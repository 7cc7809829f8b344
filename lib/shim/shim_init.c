/*
 * shim_init.c - start-up and shut-down of libmemprof.so.
 *
 * Any hook may run first, on any thread, before our constructor: the first
 * one resolves the real allocator with dlsym(RTLD_NEXT), and allocations
 * made while it does (dlsym may call calloc) are served from a static
 * bootstrap arena. Options come from MEMPROF_* variables read by hand.
 * The exit snapshot is written by the destructor, which runs after the
 * program's own exit handlers and the destructors of libraries loaded after
 * us, by the _exit/_Exit hooks and an at_quick_exit handler, and for an
 * exit signal by the trigger thread (shim_trigger.c); once, whichever
 * comes first. Messages go to the standard error the program started
 * with, or nowhere. Hook-safe throughout: no malloc, no stdio.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim/shim_internal.h"
#include "shim/shim_unwind.h"

struct shim_real shim_real;
struct shim_options shim_opt = {.depth = SHIM_DEFAULT_DEPTH};
struct shim_totals shim_totals;
_Atomic int shim_active;

extern char **environ;

/* The process the state belongs to: updated in a forked child, so that a
 * vfork child (which shares our memory and runs no fork handlers) can be
 * told apart. */
static _Atomic pid_t self_pid;
/* Whether this process is a forked child of the traced image. */
static bool forked_child;
/* The output name before any .pidPID was added. */
static char base_output[4096];
/*
 * The exit snapshot, once: 0 not written, 1 being written, 2 written (or
 * given up). A second writer (a thread that calls exit while the trigger
 * thread writes the snapshot of an exit signal) waits for the first, so
 * that the process never ends with the file half written.
 */
static _Atomic int exit_state;

/* 0 = not started, 1 = resolving, 2 = done. */
static _Atomic int init_state;
static _Atomic pid_t init_tid;

/* ---- bootstrap arena ---------------------------------------------- */

#define BOOT_SIZE SHIM_BOOT_SIZE
char shim_boot_buf[BOOT_SIZE] __attribute__((aligned(64)));
#define boot_buf shim_boot_buf
static _Atomic size_t boot_used;

/* Each bootstrap block is preceded by 16 bytes holding its size, so that
 * realloc and malloc_usable_size work on it. */
void *shim_bootstrap_alloc(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	for (;;) {
		size_t used = atomic_load(&boot_used);
		size_t start = (used + 16 + align - 1) & ~(align - 1);
		size_t end = start + size;
		if (end > BOOT_SIZE || end < start)
			return NULL;
		if (atomic_compare_exchange_weak(&boot_used, &used, end)) {
			*(size_t *)(boot_buf + start - 16) = size;
			return boot_buf + start;
		}
	}
}

size_t shim_bootstrap_size(const void *p)
{
	return *(const size_t *)((const char *)p - 16);
}

/* ---- messages ------------------------------------------------------ */

static size_t slen(const char *s)
{
	size_t n = 0;
	while (s && s[n])
		n++;
	return n;
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* The program's standard error as it started: the shim writes its lines
 * there, or nowhere. A program that closes fd 2, or puts a file of its
 * own there (dup2, freopen), must not find our lines in that file. */
static _Atomic int err_known;
static dev_t err_dev;
static ino_t err_ino;

static void note_stderr(void)
{
	struct stat st;
	if (fstat(2, &st) != 0)
		return;
	err_dev = st.st_dev;
	err_ino = st.st_ino;
	atomic_store(&err_known, 1);
}

static bool stderr_is_original(void)
{
	struct stat st;
	return atomic_load(&err_known) && fstat(2, &st) == 0 &&
	       st.st_dev == err_dev && st.st_ino == err_ino;
}

void shim_say(const char *a, const char *b, const char *c, const char *d)
{
	char line[1024];
	size_t n = 0;
	const char *parts[] = {"memprof: ", a, b, c, d, "\n"};
	for (size_t i = 0; i < 6; i++) {
		size_t l = slen(parts[i]);
		if (n + l > sizeof(line))
			l = sizeof(line) - n;
		memcpy(line + n, parts[i], l);
		n += l;
	}
	int saved = errno;
	if (stderr_is_original())
		write_all(2, line, n);
	errno = saved;
}

/* strerror() may allocate for unknown codes and uses locale data; the shim
 * only needs the few errors that files and memory give. */
const char *shim_errname(int err)
{
	switch (err) {
	case EACCES: return "permission denied";
	case ENOENT: return "no such file or directory";
	case ENOSPC: return "no space left on device";
	case EROFS: return "read-only file system";
	case EDQUOT: return "disk quota exceeded";
	case EMFILE: return "too many open files";
	case ENFILE: return "too many open files in system";
	case ENOMEM: return "out of memory";
	case EIO: return "input/output error";
	case ENOTDIR: return "not a directory";
	case EISDIR: return "is a directory";
	case ENAMETOOLONG: return "file name too long";
	case EFBIG: return "file too large";
	case EBADF: return "bad file descriptor";
	default: return "system error";
	}
}

static _Atomic int failed_once;

void shim_fail(const char *what, int err)
{
	atomic_store(&shim_active, 0);
	if (atomic_exchange(&failed_once, 1))
		return;
	shim_say(what, err ? ": " : "", err ? shim_errname(err) : "",
		 "; tracing stopped, the program continues");
}

uint64_t shim_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- options --------------------------------------------------------- */

static const char *env_get(const char *name)
{
	size_t n = slen(name);
	if (!environ)
		return NULL;
	for (char **e = environ; *e; e++)
		if (!strncmp(*e, name, n) && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static long parse_long(const char *s, long dflt)
{
	long v = 0;
	if (!s || !*s)
		return dflt;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return dflt;
		v = v * 10 + (*s - '0');
		if (v > 1000000)
			return dflt;
	}
	return v;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = slen(src);
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void read_options(void)
{
	long d = parse_long(env_get("MEMPROF_DEPTH"), SHIM_DEFAULT_DEPTH);
	if (d < 1)
		d = 1;
	if (d > SHIM_MAX_DEPTH)
		d = SHIM_MAX_DEPTH;
	shim_opt.depth = (int)d;
	const char *u = env_get("MEMPROF_UNWIND");
	shim_opt.unwind_fp = u && !strcmp(u, "fp");
	const char *f = env_get("MEMPROF_FORK");
	shim_opt.fork_stop = f && !strcmp(f, "stop");
	const char *x = env_get("MEMPROF_FOLLOW_EXEC");
	shim_opt.follow_exec = x && !strcmp(x, "1");
	const char *lc = env_get("MEMPROF_LEAK_CHECK");
	shim_opt.leak_check = !(lc && !strcmp(lc, "no"));
	shim_opt.sample_rate =
		(uint64_t)parse_long(env_get("MEMPROF_SAMPLE_RATE"), 0);
	shim_opt.seed = (uint64_t)parse_long(env_get("MEMPROF_SEED"), 0);
	/* Reachability needs every block: a sampled heap cannot say what
	 * is lost (formats and man page: sampling and leak checking). */
	if (shim_opt.sample_rate)
		shim_opt.leak_check = false;
	const char *o = env_get("MEMPROF_OUTPUT");
	if (o && *o)
		copy_str(shim_opt.output, sizeof(shim_opt.output), o);
}

static void append_pid(char *o, size_t cap, long pid);

/* Default output name, memprof.PROG.PID.memprof, as DESIGN §7 says. */
static void default_output(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *base = "prog";
	if (n > 0) {
		exe[n] = '\0';
		base = exe;
		for (char *p = exe; *p; p++)
			if (*p == '/')
				base = p + 1;
	}
	char pid[24];
	int i = sizeof(pid) - 1;
	pid[i] = '\0';
	unsigned long v = (unsigned long)getpid();
	do {
		pid[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	char *o = shim_opt.output;
	size_t cap = sizeof(shim_opt.output), len = 0;
	const char *parts[] = {"memprof.", base, ".", pid + i, ".memprof"};
	for (int k = 0; k < 5; k++) {
		size_t l = slen(parts[k]);
		if (len + l >= cap)
			return;
		memcpy(o + len, parts[k], l);
		len += l;
	}
	o[len] = '\0';
}

/* ---- initialisation -------------------------------------------------- */

/* sizeof(struct pthread), which glibc exports for libthread_db; 0 when
 * unknown. */
static size_t descriptor_size(void)
{
	const unsigned *p = (const unsigned *)dlsym(
		RTLD_DEFAULT, "_thread_db_sizeof_pthread");
	return p && *p >= 256 && *p <= 65536 ? *p : 0;
}

#define RESOLVE(name) \
	shim_real.name = (__typeof__(shim_real.name))dlsym(RTLD_NEXT, #name)

void shim_init(void)
{
	int st = atomic_load_explicit(&init_state, memory_order_acquire);
	if (st == 2)
		return;
	pid_t tid = (pid_t)syscall(SYS_gettid);
	if (st == 1 && atomic_load(&init_tid) == tid)
		return; /* dlsym allocating: the caller uses the bootstrap */
	int expect = 0;
	if (!atomic_compare_exchange_strong(&init_state, &expect, 1)) {
		if (atomic_load(&init_tid) == tid)
			return;
		while (atomic_load_explicit(&init_state,
					    memory_order_acquire) != 2)
			sched_yield();
		return;
	}
	atomic_store(&init_tid, tid);
	int saved = errno;
	/* Allocations made by dlsym from here on pass through: shim_active
	 * is still 0 (or come from the bootstrap arena). */
	RESOLVE(malloc);
	RESOLVE(free);
	RESOLVE(calloc);
	RESOLVE(realloc);
	RESOLVE(memalign);
	RESOLVE(posix_memalign);
	RESOLVE(aligned_alloc);
	RESOLVE(valloc);
	RESOLVE(pvalloc);
	RESOLVE(malloc_usable_size);
	shim_totals.start_ns = shim_now_ns();
	atomic_store(&self_pid, getpid());
	note_stderr();
	read_options();
	shim_unwind_init();
	bool ok = shim_real.malloc && shim_real.free && shim_real.calloc &&
		  shim_real.realloc && shim_real.memalign &&
		  shim_thread_init(descriptor_size());
	shim_sample_init();
	shim_live_init();
	atomic_store_explicit(&init_state, 2, memory_order_release);
	if (!ok)
		shim_say("cannot find the real malloc; not tracing", "", "",
			 "");
	else
		atomic_store(&shim_active, 1);
	errno = saved;
}

/* ---- fork ------------------------------------------------------------ */

static void atfork_prepare(void)
{
	shim_busy_add(1);
	shim_live_lock_all();
}

static void atfork_parent(void)
{
	shim_live_unlock_all();
	shim_busy_add(-1);
}

/* FILE.memprof -> FILE.pidPID.memprof (the extension kept last). */
static void append_pid(char *o, size_t cap, long pid)
{
	size_t n = slen(o);
	const char ext[] = ".memprof";
	size_t el = sizeof(ext) - 1;
	char tail[32] = ".pid";
	size_t tl = 4;
	char digits[24];
	int i = 0;
	unsigned long v = (unsigned long)pid;
	do {
		digits[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i > 0)
		tail[tl++] = digits[--i];
	size_t stem = n;
	if (n >= el && !strcmp(o + n - el, ext))
		stem = n - el;
	if (stem + tl + el + 1 > cap) {
		atomic_store(&shim_active, 0);
		return;
	}
	memcpy(o + stem, tail, tl);
	memcpy(o + stem + tl, ext, el + 1);
}

/* The child inherits the parent's heap, so the parent's live blocks are
 * its blocks too: it keeps tracing into a file of its own,
 * FILE.pidPID.memprof (or stops, with MEMPROF_FORK=stop). */
static void atfork_child(void)
{
	shim_live_reset_locks();
	shim_timeline_reset_lock();
	shim_thread_after_fork();
	shim_busy_add(-1);
	shim_snapshot_after_fork();
	atomic_store(&self_pid, getpid());
	/* An exit snapshot another thread of the parent was writing is
	 * not this process's: it writes its own. */
	atomic_store(&exit_state, 0);
	forked_child = true;
	if (shim_opt.fork_stop) {
		atomic_store(&shim_active, 0);
		return;
	}
	memcpy(shim_opt.output, base_output, sizeof(shim_opt.output));
	append_pid(shim_opt.output, sizeof(shim_opt.output), getpid());
}

/* Removes our own entry from LD_PRELOAD, in place, so that programs this
 * one execs run untraced (DESIGN §2.6) unless asked otherwise. */
static void unpreload_self(void)
{
	Dl_info info;
	if (!dladdr((void *)unpreload_self, &info) || !info.dli_fname)
		return;
	const char *me = info.dli_fname;
	size_t ml = slen(me);
	if (!environ)
		return;
	for (char **e = environ; *e; e++) {
		if (strncmp(*e, "LD_PRELOAD=", 11))
			continue;
		char *v = *e + 11, *w = v, *r = v;
		/* Entries are separated by ':' or spaces. */
		while (*r) {
			while (*r == ':' || *r == ' ')
				r++;
			char *s = r;
			while (*r && *r != ':' && *r != ' ')
				r++;
			size_t l = (size_t)(r - s);
			bool self = (l == ml && !strncmp(s, me, l));
			/* Also drop any libmemprof.so named another way. */
			if (!self && l >= 13 &&
			    !strncmp(r - 13, "libmemprof.so", 13))
				self = true;
			if (l && !self) {
				if (w != v)
					*w++ = ':';
				memmove(w, s, l);
				w += l;
			}
		}
		*w = '\0';
	}
}

static void quick_exit_snapshot(void);

__attribute__((constructor)) static void shim_constructor(void)
{
	shim_init();
	shim_busy_add(1);
	read_options();
	if (!shim_opt.output[0])
		default_output();
	memcpy(base_output, shim_opt.output, sizeof(base_output));
	/* record names the process it started in MEMPROF_PID. An image
	 * exec'd in that same process is the program (a wrapper script that
	 * execs the real binary, say) and writes FILE. An image exec'd or
	 * spawned in a descendant is a child program: traced into
	 * FILE.pidPID only with --follow-fork, else left alone. */
	long root = parse_long(env_get("MEMPROF_PID"), -1);
	if (root <= 0) {
		/* Preloaded by hand: this process is the root, and its
		 * descendants must not write over its file. setenv may
		 * allocate; shim_busy makes that pass through. */
		char num[24];
		int i = sizeof(num) - 1;
		num[i] = '\0';
		unsigned long v = (unsigned long)getpid();
		do {
			num[--i] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		setenv("MEMPROF_PID", num + i, 1);
	} else if (root != (long)getpid()) {
		if (shim_opt.follow_exec) {
			append_pid(shim_opt.output, sizeof(shim_opt.output),
				   getpid());
		} else {
			atomic_store(&shim_active, 0);
			unpreload_self();
		}
	}
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	at_quick_exit(quick_exit_snapshot);
	shim_scan_init();
	if (atomic_load(&shim_active))
		shim_trigger_start();
	shim_busy_add(-1);
}

static bool exit_claim(void)
{
	if (!atomic_load(&shim_active) || getpid() != atomic_load(&self_pid))
		return false;
	int expect = 0;
	if (atomic_compare_exchange_strong(&exit_state, &expect, 1))
		return true;
	while (atomic_load(&exit_state) == 1)
		sched_yield();
	return false;
}

/* An exit signal that came while this very thread wrote the exit
 * snapshot (a forked child's handler cannot wait for itself): raised
 * once the file is complete. */
static _Atomic int exit_raise;

static void exit_write(const char *name)
{
	shim_busy_add(1);
	int err = shim_snapshot_write(shim_opt.output, "exit", name, 0,
				      shim_opt.leak_check);
	atomic_store(&shim_active, 0);
	if (err)
		shim_say("cannot write '", shim_opt.output,
			 "': ", shim_errname(err));
	shim_busy_add(-1);
	atomic_store(&exit_state, 2);
	int sig = atomic_exchange(&exit_raise, 0);
	if (sig)
		shim_die_by(sig);
}

/*
 * The program ends inside the shim: exit or _exit from a signal handler
 * that interrupted one of our hooks in its own work (not in the real
 * allocator, where it holds nothing of ours). The interrupted hook may
 * hold a lock that the snapshot needs, and it will never run again: no
 * snapshot, one line, rather than a program that hangs in its _exit.
 */
static bool exit_inside_shim(void)
{
	if (!shim_in_shim_work())
		return false;
	int expect = 0;
	if (atomic_load(&shim_active) && getpid() == atomic_load(&self_pid) &&
	    atomic_compare_exchange_strong(&exit_state, &expect, 2)) {
		atomic_store(&shim_active, 0);
		shim_say("the program exited from a signal handler that "
			 "interrupted an allocation; no snapshot was written",
			 NULL, NULL, NULL);
	}
	return true;
}

/* Writes the exit snapshot once, from the process that owns the state. */
static __attribute__((noinline)) void exit_snapshot(void)
{
	shim_scan_mark_entry((uintptr_t)__builtin_frame_address(0));
	if (exit_inside_shim() || !exit_claim())
		return;
	exit_write(NULL);
}

void shim_exit_snapshot_for_signal(int sig)
{
	/* The trigger thread: its own stack holds nothing of the
	 * program's; the thread the signal hit is stopped and scanned. */
	shim_scan_mark_none();
	if (exit_claim())
		exit_write(shim_signal_name(sig));
}

__attribute__((noinline)) bool shim_exit_snapshot_in_handler(int sig)
{
	/* A vfork child shares our memory: it touches nothing. */
	if (getpid() != atomic_load(&self_pid))
		return true;
	shim_scan_mark_entry((uintptr_t)__builtin_frame_address(0));
	if (atomic_load(&exit_state) == 1 && shim_in_shim_work()) {
		atomic_store(&exit_raise, sig);
		return false;
	}
	if (exit_inside_shim() || !exit_claim())
		return true;
	exit_write(shim_signal_name(sig));
	return true;
}

__attribute__((destructor)) static void shim_destructor(void)
{
	exit_snapshot();
}

/* quick_exit runs its handlers, then ends with libc's internal _exit,
 * which our _exit never sees: ours, registered first, runs last. */
static void quick_exit_snapshot(void)
{
	exit_snapshot();
}

/* Programs that end with _exit() skip destructors (dash always does), so
 * the traced program's exit snapshot is also written here. Forked children
 * end with _exit() by convention when they are a shell's subshell or a
 * failed exec: they get a file only when they exit() like a program (a
 * worker process). A vfork child shares our memory and must touch
 * nothing: its pid differs from self_pid. */
__attribute__((visibility("default"), noreturn)) void _exit(int status)
{
	if (!forked_child && getpid() == atomic_load(&self_pid))
		exit_snapshot();
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status)
{
	if (!forked_child && getpid() == atomic_load(&self_pid))
		exit_snapshot();
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}
