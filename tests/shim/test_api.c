/*
 * test_api.c - snapshots on demand: the in-program API of lib/memprof.h
 * (with and without the shim), numbered files, the interval trigger, the
 * timeline, and bytes at the peak.
 */
#include "testutil.h"

TestSuite(api, .timeout = 60);

static char *run_api_grow(const char *dir, bool shim)
{
	char *out = tu_path(dir, "out"), *env_out = NULL;
	cr_assert(asprintf(&env_out, "MEMPROF_OUTPUT=%s/a.memprof", dir) > 0);
	const char *env[] = {"LD_PRELOAD=" TU_SHIM, env_out, NULL};
	char *argv[] = {(char *)TU_HELPER("api_grow"), NULL};
	cr_assert_eq(tu_run(argv, shim ? env : NULL, out, NULL), 0);
	return tu_read(out, NULL);
}

Test(api, program_runs_unchanged_without_the_shim)
{
	char *d = tu_tmpdir();
	char *out = run_api_grow(d, false);
	cr_expect(strstr(out, "tracing=0 before=-1 after=-1 enosys=1 "
			      "current=0 peak=0 reset=0/0 ") == out,
		  "%s", out);
}

static struct mp_snapshot *open_snap(const char *dir, const char *name)
{
	char *p = tu_path(dir, name);
	struct mp_snapshot *s;
	struct mp_errinfo ei = {{0}};
	cr_assert_eq(mp_snapshot_open(p, &s, &ei), MP_OK, "%s: %s", name,
		     ei.msg);
	return s;
}

Test(api, snapshots_are_numbered_in_order_with_their_names)
{
	char *d = tu_tmpdir();
	char *out = run_api_grow(d, true);
	cr_expect(strstr(out, "tracing=1 before=1 after=2 enosys=0 ") == out,
		  "%s", out);
	struct mp_snapshot *a = open_snap(d, "a.1.memprof");
	struct mp_snapshot *b = open_snap(d, "a.2.memprof");
	struct mp_snapshot *e = open_snap(d, "a.memprof");
	cr_expect_str_eq(a->meta.trigger, "api");
	cr_expect_str_eq(a->meta.name, "before");
	cr_expect_eq(a->meta.seq, 1);
	cr_expect_str_eq(b->meta.name, "after");
	cr_expect_eq(b->meta.seq, 2);
	cr_expect_str_eq(e->meta.trigger, "exit");
	cr_expect_eq(e->meta.seq, 0);
	/* make_table's 8 x 1000 before; then + 10 x 4096, - 5 x 1000. */
	cr_expect_eq(a->meta.totals.live_bytes, 8000);
	cr_expect_eq(b->meta.totals.live_bytes, 3000 + 40960);
	cr_expect_eq(b->meta.totals.live_blocks, 3 + 10);
	cr_expect(!a->has_graph, "only the exit snapshot has a graph");
	cr_expect(e->has_graph);
	mp_snapshot_free(a);
	mp_snapshot_free(b);
	mp_snapshot_free(e);
}

Test(api, traced_memory_and_reset_peak_are_tracemallocs)
{
	char *d = tu_tmpdir();
	char *out = run_api_grow(d, true);
	/* current: 3 x 1000 + 10 x 4096; peak: 8 x 1000 + 10 x 4096, before
	 * the table shrank; after reset_peak, peak = current. */
	cr_expect(strstr(out, "current=43960 peak=48960 reset=43960/43960") !=
			  NULL,
		  "%s", out);
}

Test(api, bytes_at_peak_answer_who_held_the_memory_then)
{
	char *d = tu_tmpdir();
	run_api_grow(d, true);
	char *p = tu_path(d, "a.2.memprof");
	struct mp_snapshot *s;
	struct mp_errinfo ei;
	cr_assert_eq(mp_snapshot_open(p, &s, &ei), MP_OK);
	cr_assert_eq(mp_symbolize(s, &ei), MP_OK);
	/* At the peak (48960, before shrink_table) the table held 8000. */
	cr_expect_eq(s->meta.totals.peak_bytes, 48960);
	struct mp_profile_entry e;
	cr_assert(tu_function_entry(s, "make_table", &e));
	cr_expect_eq(e.peak_bytes, 8000);
	cr_expect_eq(e.bytes, 3000);
	cr_assert(tu_function_entry(s, "grow_cache", &e));
	cr_expect_eq(e.peak_bytes, 40960);
	cr_expect(s->meta.peak_ns >= s->meta.start_ns &&
		  s->meta.peak_ns <= s->meta.snapshot_ns);
	mp_snapshot_free(s);
}

Test(api, exit_snapshot_carries_the_timeline_with_the_snapshots_marked)
{
	char *d = tu_tmpdir();
	run_api_grow(d, true);
	struct mp_snapshot *e = open_snap(d, "a.memprof");
	cr_assert(e->has_timeline);
	const struct mp_timeline *t = &e->timeline;
	cr_expect_geq(t->nsamples, 3);
	cr_assert_eq(t->nmarks, 3);
	cr_expect_eq(t->marks[0].seq, 1);
	cr_expect_eq(t->marks[1].seq, 2);
	cr_expect_eq(t->marks[2].seq, 0);
	for (size_t i = 1; i < t->nsamples; i++)
		cr_expect_geq(t->samples[i].ns, t->samples[i - 1].ns);
	/* The sample taken at "after" shows its live bytes. */
	bool seen = false;
	for (size_t i = 0; i < t->nsamples; i++)
		seen |= t->samples[i].ns == t->marks[1].ns &&
			t->samples[i].live_bytes == 43960;
	cr_expect(seen);
	mp_snapshot_free(e);
}

Test(api, interval_snapshots_are_taken_while_the_program_runs)
{
	char *d = tu_tmpdir();
	char *cmd = NULL;
	cr_assert(asprintf(&cmd,
			   "%s record -q --interval 50ms -o %s/i.memprof -- "
			   "sleep 0.4",
			   TU_MEMPROF, d) > 0);
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};
	cr_assert_eq(tu_run(argv, NULL, NULL, NULL), 0);
	int found = 0;
	for (int n = 1; n <= 20; n++) {
		char name[32];
		snprintf(name, sizeof(name), "i.%d.memprof", n);
		char *p = tu_path(d, name);
		if (access(p, F_OK) != 0)
			break;
		struct mp_snapshot *s = open_snap(d, name);
		cr_expect_str_eq(s->meta.trigger, "interval");
		cr_expect_eq(s->meta.seq, (uint64_t)n);
		mp_snapshot_free(s);
		found++;
	}
	cr_expect_geq(found, 3, "%d interval snapshots in 0.4 s at 50 ms",
		      found);
}
