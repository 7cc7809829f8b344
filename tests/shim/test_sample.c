/*
 * test_sample.c - record --sample-rate: Poisson sampling by bytes gives
 * unbiased estimates. On large deterministic workloads the estimated
 * totals must be within 5% of the exact ones (the sampler is seeded the
 * same way every run, so these figures are reproducible).
 */
#include "testutil.h"

TestSuite(sample, .timeout = 120);

static struct mp_snapshot *record(const char *dir, const char *name,
				  const char *rate, const char *prog,
				  const char *arg)
{
	char *cmd = NULL;
	cr_assert(asprintf(&cmd, "%s record -q %s%s -o %s/%s %s/helpers/%s %s",
			   TU_MEMPROF, rate ? "--sample-rate " : "",
			   rate ? rate : "", dir, name, MP_BUILD_DIR, prog,
			   arg) > 0);
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};
	cr_assert_eq(tu_run(argv, NULL, NULL, NULL), 0, "%s", cmd);
	char *p = tu_path(dir, name);
	struct mp_snapshot *s;
	struct mp_errinfo ei = {{0}};
	cr_assert_eq(mp_snapshot_open(p, &s, &ei), MP_OK, "%s", ei.msg);
	return s;
}

static void sums(const struct mp_snapshot *s, double *live, double *allocs,
		 double *bytes)
{
	*live = *allocs = *bytes = 0;
	for (size_t i = 0; i < s->ntraces; i++) {
		*live += (double)s->traces[i].live_bytes;
		*allocs += (double)s->traces[i].allocs;
		*bytes += (double)s->traces[i].alloc_bytes;
	}
}

static void within(double est, double exact, double tol, const char *what)
{
	double err = exact ? (est - exact) / exact : est;
	cr_expect(err < tol && err > -tol,
		  "%s: estimate %.0f, exact %.0f (%+.2f%%)", what, est, exact,
		  err * 100);
}

Test(sample, churn_totals_are_within_5_percent)
{
	char *d = tu_tmpdir();
	struct mp_snapshot *e =
		record(d, "e.memprof", NULL, "bench_churn", "2000000");
	struct mp_snapshot *s =
		record(d, "s.memprof", "64K", "bench_churn", "2000000");
	cr_expect_eq(s->meta.sample_rate, 65536);
	cr_expect(!s->has_graph, "a sampled snapshot has no leak graph");
	double el, ea, eb, sl, sa, sb;
	sums(e, &el, &ea, &eb);
	sums(s, &sl, &sa, &sb);
	/* Far fewer allocations were traced than made. */
	cr_expect_lt(s->ntraces, 64);
	within(sa, ea, 0.05, "allocations");
	within(sb, eb, 0.05, "bytes allocated");
	within((double)s->meta.totals.alloc_bytes,
	       (double)e->meta.totals.alloc_bytes, 0.05,
	       "total bytes allocated");
	mp_snapshot_free(e);
	mp_snapshot_free(s);
}

Test(sample, live_heap_estimate_is_within_5_percent)
{
	char *d = tu_tmpdir();
	struct mp_snapshot *e =
		record(d, "e.memprof", NULL, "bench_heap", "300000");
	struct mp_snapshot *s =
		record(d, "s.memprof", "8K", "bench_heap", "300000");
	double el, ea, eb, sl, sa, sb;
	sums(e, &el, &ea, &eb);
	sums(s, &sl, &sa, &sb);
	within(sl, el, 0.05, "live bytes");
	within((double)s->meta.totals.live_bytes,
	       (double)e->meta.totals.live_bytes, 0.05, "total live bytes");
	within((double)s->meta.totals.live_blocks,
	       (double)e->meta.totals.live_blocks, 0.05, "live blocks");
	/* Only a fraction of the blocks was traced. */
	cr_expect_lt(s->nblocks, e->nblocks / 4);
	mp_snapshot_free(e);
	mp_snapshot_free(s);
}

Test(sample, sampling_and_leak_check_do_not_go_together)
{
	char *d = tu_tmpdir();
	char *cmd = NULL, *err = tu_path(d, "err");
	cr_assert(asprintf(&cmd,
			   "%s record -q --sample-rate 512K --leak-check=yes "
			   "-o %s/x.memprof true",
			   TU_MEMPROF, d) > 0);
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};
	cr_expect_eq(tu_run(argv, NULL, NULL, err), 2);
	char *text = tu_read(err, NULL);
	cr_expect(strstr(text, "--sample-rate and --leak-check=yes") != NULL,
		  "%s", text);
}
