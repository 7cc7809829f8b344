/*
 * test_oracle.c - memprof's totals against Valgrind's HEAP SUMMARY for the
 * same binary: allocations, frees, bytes allocated, and bytes and blocks
 * in use at exit. Valgrind really runs; libc's and libstdc++'s exit-time
 * freeing is off there, because memprof's exit snapshot is taken before
 * it would happen.
 */
#include "testutil.h"

TestSuite(oracle, .timeout = 300);

struct heap_summary {
	uint64_t in_use_bytes, in_use_blocks;
	uint64_t allocs, frees, alloc_bytes;
};

static uint64_t num(const char *s)
{
	uint64_t v = 0;
	for (; *s && *s != ' '; s++)
		if (*s >= '0' && *s <= '9')
			v = v * 10 + (uint64_t)(*s - '0');
	return v;
}

static struct heap_summary valgrind_summary(const char *dir, const char *helper)
{
	char *log = tu_path(dir, "valgrind.log");
	char *logopt = NULL;
	cr_assert(asprintf(&logopt, "--log-file=%s", log) > 0);
	char *exe = NULL;
	cr_assert(asprintf(&exe, "%s/helpers/%s", MP_BUILD_DIR, helper) > 0);
	char *argv[] = {(char *)"valgrind",
			(char *)"--tool=memcheck",
			(char *)"--leak-check=no",
			(char *)"--run-libc-freeres=no",
			(char *)"--run-cxx-freeres=no",
			logopt,
			exe,
			NULL};
	cr_assert_eq(tu_run(argv, NULL, NULL, NULL), 0, "valgrind failed");
	char *text = tu_read(log, NULL);
	cr_assert_not_null(text);
	struct heap_summary h = {0};
	/* ==1== in use at exit: 9,227 bytes in 22 blocks
	 * ==1==   total heap usage: 46 allocs, 24 frees, 15,390 bytes allocated
	 */
	char *p = strstr(text, "in use at exit: ");
	cr_assert_not_null(p, "no HEAP SUMMARY in:\n%s", text);
	p += strlen("in use at exit: ");
	h.in_use_bytes = num(p);
	p = strstr(p, "bytes in ") + strlen("bytes in ");
	h.in_use_blocks = num(p);
	p = strstr(p, "total heap usage: ") + strlen("total heap usage: ");
	h.allocs = num(p);
	p = strstr(p, "allocs, ") + strlen("allocs, ");
	h.frees = num(p);
	p = strstr(p, "frees, ") + strlen("frees, ");
	h.alloc_bytes = num(p);
	free(text);
	return h;
}

static void compare(const char *helper)
{
	char *dir = tu_tmpdir();
	struct heap_summary v = valgrind_summary(dir, helper);
	struct mp_snapshot *s = tu_shim_run(dir, helper, NULL, NULL);
	const struct mp_totals *t = &s->meta.totals;
	cr_expect_eq(t->allocs, v.allocs,
		     "%s allocs: memprof %lu, valgrind %lu", helper,
		     (unsigned long)t->allocs, (unsigned long)v.allocs);
	cr_expect_eq(t->frees, v.frees, "%s frees: memprof %lu, valgrind %lu",
		     helper, (unsigned long)t->frees, (unsigned long)v.frees);
	cr_expect_eq(t->alloc_bytes, v.alloc_bytes,
		     "%s bytes allocated: memprof %lu, valgrind %lu", helper,
		     (unsigned long)t->alloc_bytes,
		     (unsigned long)v.alloc_bytes);
	cr_expect_eq(t->live_bytes, v.in_use_bytes,
		     "%s in use at exit: memprof %lu, valgrind %lu", helper,
		     (unsigned long)t->live_bytes,
		     (unsigned long)v.in_use_bytes);
	cr_expect_eq(t->live_blocks, v.in_use_blocks,
		     "%s blocks in use: memprof %lu, valgrind %lu", helper,
		     (unsigned long)t->live_blocks,
		     (unsigned long)v.in_use_blocks);
	mp_snapshot_free(s);
}

Test(oracle, c_helper_totals_equal_valgrind_heap_summary)
{
	compare("alloc_c");
}

Test(oracle, threaded_helper_totals_equal_valgrind_heap_summary)
{
	compare("alloc_threads");
}

Test(oracle, handoff_helper_totals_equal_valgrind_heap_summary)
{
	compare("alloc_handoff");
}

Test(oracle, cxx_helper_totals_equal_valgrind_heap_summary)
{
	compare("alloc_cxx");
}
