/*
 * testutil.h - what the Criterion suites share: running programs (under
 * the shim or through the memprof CLI), temporary directories, reading
 * files, and finding a call site's figures in a snapshot.
 *
 * Header-only (static functions) because each suite is one binary built
 * from its own directory.
 */
#ifndef MEMPROF_TESTUTIL_H
#define MEMPROF_TESTUTIL_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memprof_trace.h"

#define TU_SHIM MP_BUILD_DIR "/libmemprof.so"
#define TU_MEMPROF MP_BUILD_DIR "/memprof"
#define TU_HELPER(name) MP_BUILD_DIR "/helpers/" name

/* A fresh directory under $TMPDIR (make check points it into build/tmp,
 * which it empties first, so runs leave nothing in /tmp). */
static __attribute__((unused)) char *tu_tmpdir(void)
{
	const char *root = getenv("TMPDIR");
	char *d = NULL;
	cr_assert(asprintf(&d, "%s/memprof-test-XXXXXX",
			   root && *root ? root : "/tmp") > 0);
	cr_assert_not_null(mkdtemp(d));
	return d;
}

static __attribute__((unused)) char *tu_path(const char *dir, const char *name)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/*
 * Runs argv with env entries added ("K=V", NULL-terminated, may be NULL),
 * stdout and stderr to the given files (NULL: /dev/null). Returns the exit
 * status, or 128 + signal.
 */
static __attribute__((unused)) int tu_run(char *const argv[],
					  const char *const env[],
					  const char *out, const char *err)
{
	fflush(NULL);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		int o = open(out ? out : "/dev/null",
			     O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err ? err : "/dev/null",
			     O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int n = open("/dev/null", O_RDONLY);
		dup2(n, 0);
		dup2(o, 1);
		dup2(e, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Runs a /bin/sh command line (printf-style) in the test's directory dir:
 * its stdout and stderr go to dir/o and dir/e and, when out or err is not
 * NULL, come back as malloc'd strings. Returns the exit status.
 */
static __attribute__((unused, format(printf, 4, 5))) int tu_sh(
	const char *dir, char **out, char **err, const char *fmt, ...);

/* The whole content of path, NUL-terminated, or NULL. */
static __attribute__((unused)) char *tu_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n < 2)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* Runs a helper under the shim directly (LD_PRELOAD), writing the exit
 * snapshot to dir/name.memprof, and returns the snapshot symbolized.
 * *status gets the helper's exit status. */
static __attribute__((unused)) struct mp_snapshot *tu_shim_run(
	const char *dir, const char *helper, char *const args[], int *status)
{
	char *snap_path = NULL, *env_out = NULL, *out = NULL;
	cr_assert(asprintf(&snap_path, "%s/%s.memprof", dir, helper) > 0);
	cr_assert(asprintf(&env_out, "MEMPROF_OUTPUT=%s", snap_path) > 0);
	cr_assert(asprintf(&out, "%s/%s.stdout", dir, helper) > 0);
	const char *env[] = {"LD_PRELOAD=" TU_SHIM, env_out, NULL};
	char *argv[16] = {0};
	char *exe = NULL;
	cr_assert(asprintf(&exe, "%s/helpers/%s", MP_BUILD_DIR, helper) > 0);
	argv[0] = exe;
	for (int i = 0; args && args[i] && i < 14; i++)
		argv[i + 1] = args[i];
	int st = tu_run(argv, env, out, NULL);
	if (status)
		*status = st;
	struct mp_snapshot *snap = NULL;
	struct mp_errinfo ei = {{0}};
	enum mp_err e = mp_snapshot_open(snap_path, &snap, &ei);
	cr_assert_eq(e, MP_OK, "cannot read %s: %s", snap_path, ei.msg);
	cr_assert_eq(mp_symbolize(snap, &ei), MP_OK, "symbolize: %s", ei.msg);
	free(snap_path);
	free(env_out);
	free(out);
	free(exe);
	return snap;
}

/* The group of function `fn` (innermost frame after allocator frames) in
 * snap; false when no trace has it. */
static __attribute__((unused)) bool tu_function_entry(
	const struct mp_snapshot *snap, const char *fn,
	struct mp_profile_entry *out)
{
	struct mp_profile_opts o = {.by = MP_GROUP_FUNCTION,
				    .sort = MP_SORT_BYTES};
	struct mp_profile *prof = NULL;
	cr_assert_eq(mp_profile_build(snap, &o, &prof), MP_OK);
	bool found = false;
	for (size_t i = 0; i < prof->nentries; i++) {
		const struct mp_profile_entry *e = &prof->entries[i];
		if (e->nframes && e->frames[0].function &&
		    !strcmp(e->frames[0].function, fn)) {
			*out = *e;
			out->frames = NULL;
			found = true;
			break;
		}
	}
	mp_profile_free(prof);
	return found;
}

/* Expects function fn's group in s to hold exactly these live bytes and
 * blocks, and to have made these allocations of alloc_bytes in all. */
static __attribute__((unused)) void tu_expect_site(
	const struct mp_snapshot *s, const char *fn, uint64_t bytes,
	uint64_t blocks, uint64_t allocs, uint64_t alloc_bytes)
{
	struct mp_profile_entry e;
	cr_assert(tu_function_entry(s, fn, &e), "no call site in %s", fn);
	cr_expect_eq(e.bytes, bytes, "%s: %lu live bytes, expected %lu", fn,
		     (unsigned long)e.bytes, (unsigned long)bytes);
	cr_expect_eq(e.blocks, blocks, "%s: %lu blocks, expected %lu", fn,
		     (unsigned long)e.blocks, (unsigned long)blocks);
	cr_expect_eq(e.allocs, allocs, "%s: %lu allocs, expected %lu", fn,
		     (unsigned long)e.allocs, (unsigned long)allocs);
	cr_expect_eq(e.alloc_bytes, alloc_bytes,
		     "%s: %lu bytes allocated, expected %lu", fn,
		     (unsigned long)e.alloc_bytes, (unsigned long)alloc_bytes);
}

/* Whether some stack of snap has a frame in function fn below a frame in
 * function caller (anywhere further out). */
static __attribute__((unused)) bool tu_stack_has(const struct mp_snapshot *snap,
						 const char *fn,
						 const char *caller)
{
	for (size_t s = 0; s < snap->nstacks; s++) {
		struct mp_resolved_frame *f = NULL;
		size_t n = 0;
		cr_assert_eq(mp_stack_resolve(snap, (uint32_t)s, NULL, &f, &n),
			     MP_OK);
		size_t i = 0;
		bool ok = false;
		for (; i < n; i++)
			if (f[i].function && !strcmp(f[i].function, fn))
				break;
		for (size_t j = i + 1; i < n && j < n; j++)
			if (f[j].function && !strcmp(f[j].function, caller))
				ok = true;
		free(f);
		if (ok)
			return true;
	}
	return false;
}

/* printf into a fresh malloc'd string. */
static __attribute__((unused, format(printf, 1, 2))) char *tu_fmt(const char *f,
								  ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, f);
	cr_assert(vasprintf(&s, f, ap) > 0);
	va_end(ap);
	return s;
}

static int tu_sh(const char *dir, char **out, char **err, const char *fmt, ...)
{
	va_list ap;
	char *cmd = NULL;
	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	char *o = tu_path(dir, "o"), *e = tu_path(dir, "e");
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};
	int st = tu_run(argv, NULL, o, e);
	if (out)
		*out = tu_read(o, NULL);
	if (err)
		*err = tu_read(e, NULL);
	free(cmd);
	free(o);
	free(e);
	return st;
}

/* What the last tu_sh in dir wrote to stdout (dir/o), malloc'd. */
static __attribute__((unused)) char *tu_sh_out(const char *dir)
{
	char *p = tu_path(dir, "o");
	char *s = tu_read(p, NULL);
	free(p);
	return s;
}

/* ... and to stderr (dir/e). */
static __attribute__((unused)) char *tu_sh_err(const char *dir)
{
	char *p = tu_path(dir, "e");
	char *s = tu_read(p, NULL);
	free(p);
	return s;
}

#endif
