/*
 * test_cli_report.c - `memprof report`: the HTML page of a snapshot is
 * self-contained, loads in headless Chromium without a console message,
 * and shows the helpers' known sites, leaks and cycles; snapshots without
 * a heap graph or a timeline still render; big snapshots give a bounded
 * page; options, default output name and errors.
 *
 * The page is checked by tests/report/check_report.py, which runs Debian's
 * `chromium`; without it those tests are skipped (.ci/run installs it).
 */
#include "testutil.h"

TestSuite(cli_report, .timeout = 120);

#define CHECKER MP_SOURCE_DIR "/tests/report/check_report.py"

/* Records helper (with its arguments, a shell word list) into
 * dir/name.memprof and returns that path. */
static char *record(const char *dir, const char *name, const char *options,
		    const char *helper, const char *args)
{
	char *snap = NULL;
	cr_assert(asprintf(&snap, "%s/%s.memprof", dir, name) > 0);
	cr_assert_eq(tu_sh(dir, NULL, NULL, "%s record -q %s -o %s %s/%s %s",
			   TU_MEMPROF, options, snap, MP_BUILD_DIR "/helpers",
			   helper, args),
		     0);
	return snap;
}

/* Asserts what needs no browser: one self-contained file. */
static char *check_static(const char *page)
{
	size_t len;
	char *html = tu_read(page, &len);
	cr_assert_not_null(html, "no page at %s", page);
	cr_expect(strncmp(html, "<!DOCTYPE html>", 15) == 0);
	cr_expect(strstr(html, "<meta http-equiv=\"Content-Security-Policy\" "
			       "content=\"default-src 'none'; script-src "
			       "'sha256-") != NULL);
	cr_expect(strstr(html, "http://") == NULL);
	cr_expect(strstr(html, "https://") == NULL);
	cr_expect(strstr(html, "src=") == NULL);
	cr_expect(strstr(html, "<link") == NULL);
	cr_expect(strstr(html, "url(") == NULL);
	cr_expect(strstr(html, "@import") == NULL);
	return html;
}

/*
 * Loads page in Chromium with the checker: no console message, the script
 * finished, and each "ID:TEXT" of expects (NULL-terminated) found in the
 * element with that id. Skips the test when Chromium is not installed.
 */
static void check_in_chromium(const char *dir, const char *page,
			      const char *const *expects)
{
	const char *argv[32] = {"python3", CHECKER, page};
	size_t n = 3;
	for (size_t i = 0; expects[i]; i++) {
		cr_assert_lt(n, 31);
		argv[n++] = expects[i];
	}
	argv[n] = NULL;
	char *e = tu_path(dir, "chromium.err");
	int st = tu_run((char *const *)argv, NULL, NULL, e);
	char *err = tu_read(e, NULL);
	if (st == 77)
		cr_skip_test("%s", err);
	cr_assert_eq(st, 0, "check_report.py failed:\n%s", err);
	free(err);
	free(e);
}

Test(cli_report, shows_the_demo_sites_and_leaks)
{
	char *d = tu_tmpdir(), *err;
	char *snap = record(d, "demo", "", "demo", "");
	char *page = tu_path(d, "demo.html");
	/* A title that would end the data block or a comment if it were
	 * not escaped, in <title> and in the JSON. */
	cr_assert_eq(tu_sh(d, NULL, &err,
			   "%s report --title 'demo </script><!-- & \"q\"' %s",
			   TU_MEMPROF, snap),
		     0, "%s", err);
	cr_expect(strstr(err, "memprof: wrote ") != NULL, "%s", err);
	char *html = check_static(page);
	cr_expect(strstr(html, "<title>demo &lt;/script&gt;&lt;!-- &amp; "
			       "&quot;q&quot;</title>") != NULL);
	static const char *const expects[] = {
		"summary:demo </script><!-- & \"q\"",
		"summary:13.6 KiB",
		"live:fill_cache",
		"live:make_buffer",
		"live:leak_cycle",
		"allocated:peak_burst",
		"allocated:churn",
		"timeline:exit (this one)",
		"timeline:peak 10.0 MiB",
		"top:demo.c:21 in fill_cache",
		"top:demo.c:30 in make_buffer",
		"top:demo.c:48 in churn",
		"top:5600 B",
		"top:10.0 MiB",
		"leaks:4,208",
		"records:4,096 bytes in 1 blocks are definitely lost in loss "
		"record",
		"records:at make_buffer (demo.c:30)",
		"cycles:Leaked cycle #1: 112 bytes in 2 blocks",
		"cycles:leak_cycle (demo.c:37)",
		"cycles:leak_cycle (demo.c:38)",
		"cycles:back to the first",
		NULL,
	};
	check_in_chromium(d, page, expects);
}

Test(cli_report, names_the_leaked_cycles_members)
{
	char *d = tu_tmpdir();
	char *snap = record(d, "cyc", "", "leak_cycles", "");
	char *page = tu_path(d, "cycles.html");
	cr_assert_eq(tu_sh(d, NULL, NULL, "%s report -q -o %s %s", TU_MEMPROF,
			   page, snap),
		     0);
	free(check_static(page));
	/* leak_cycles.c: four cycles of node() blocks, from cycle2, cycle3,
	 * selfloop and owned; 240 bytes definitely lost, 176 indirectly. */
	static const char *const expects[] = {
		"cycles:Leaked cycle #1: 176 bytes in 2 blocks",
		"cycles:indirectly lost: other lost blocks point into it",
		"cycles:Leaked cycle #4: 72 bytes",
		"cycles:node (leak_cycles.c:20)",
		"cycles:cycle2 (leak_cycles.c:",
		"cycles:cycle3 (leak_cycles.c:",
		"cycles:selfloop (leak_cycles.c:",
		"cycles:owned (leak_cycles.c:",
		"cycles:back to itself",
		"leaks:definitely lost240",
		"leaks:indirectly lost176",
		"leaks:leaked cycles: 4400",
		"records:by owned (leak_cycles.c:",
		"live:node",
		"top:leak_cycles.c:20 in node",
		NULL,
	};
	check_in_chromium(d, page, expects);
}

Test(cli_report, renders_without_graph_or_timeline)
{
	char *d = tu_tmpdir();
	char *snap = record(d, "ng", "--leak-check=no", "leak_kinds", "");
	/* No TIME section: as an older memprof wrote them. */
	struct mp_snapshot *s;
	struct mp_errinfo ei = {{0}};
	cr_assert_eq(mp_snapshot_open(snap, &s, &ei), MP_OK, "%s", ei.msg);
	cr_assert(s->has_timeline);
	cr_assert(!s->has_graph);
	s->has_timeline = false;
	char *bare = tu_path(d, "bare.memprof");
	cr_assert_eq(mp_snapshot_save(s, bare, &ei), MP_OK, "%s", ei.msg);
	mp_snapshot_free(s);

	cr_assert_eq(tu_sh(d, NULL, NULL, "%s report -q %s", TU_MEMPROF, bare),
		     0);
	char *page = tu_path(d, "bare.html");
	free(check_static(page));
	static const char *const expects[] = {
		"leaks:this snapshot has no heap graph",
		"timeline:No timeline",
		"live:make_leak",
		"top:leak_kinds.c:",
		NULL,
	};
	check_in_chromium(d, page, expects);
}

Test(cli_report, keeps_big_snapshots_small)
{
	char *d = tu_tmpdir(), *err;
	/* 20000 stacks, 10% of 40000 blocks leaked: 2000 definite records */
	char *snap = record(d, "big", "", "bench_stacks", "40000 20000 10");
	char *page = tu_path(d, "big.html");
	cr_assert_eq(tu_sh(d, NULL, &err, "%s report -o %s %s", TU_MEMPROF,
			   page, snap),
		     0, "%s", err);
	cr_expect(strstr(err, "small flamegraph boxes") != NULL, "%s", err);
	cr_expect(strstr(err, "small loss records") != NULL, "%s", err);
	struct stat st;
	cr_assert_eq(stat(page, &st), 0);
	cr_expect_lt(st.st_size, 1024 * 1024, "%lld bytes",
		     (long long)st.st_size);
	free(check_static(page));
	static const char *const expects[] = {
		"live:are under 0.1% of both totals and left out",
		"live:step",
		"records:Not in this page: 1,800 smaller definitely lost",
		NULL,
	};
	check_in_chromium(d, page, expects);
}

Test(cli_report, writes_beside_the_snapshot_by_default)
{
	char *d = tu_tmpdir(), *out, *err;
	char *snap = record(d, "run", "", "alloc_c", "");
	cr_assert_eq(tu_sh(d, &out, &err, "%s report %s", TU_MEMPROF, snap), 0);
	char *page = tu_path(d, "run.html");
	char *want = NULL;
	cr_assert(asprintf(&want, "memprof: wrote %s (", page) > 0);
	cr_expect(strncmp(err, want, strlen(want)) == 0, "%s", err);
	cr_expect_eq(out[0], '\0');
	free(check_static(page));

	/* -q says nothing; a name without .memprof gets .html added */
	cr_assert_eq(tu_sh(d, NULL, NULL, "cp %s %s/copy.snap", snap, d), 0);
	cr_assert_eq(tu_sh(d, &out, &err, "%s report -q %s/copy.snap",
			   TU_MEMPROF, d),
		     0);
	cr_expect_eq(err[0], '\0', "%s", err);
	char *copy = tu_path(d, "copy.snap.html");
	free(check_static(copy));

	/* -o - writes the page to standard output */
	cr_assert_eq(
		tu_sh(d, &out, &err, "%s report -o - %s", TU_MEMPROF, snap), 0);
	cr_expect(strncmp(out, "<!DOCTYPE html>", 15) == 0);
	cr_expect(strstr(out, "</html>\n") != NULL);
	cr_expect_eq(err[0], '\0', "%s", err);
}

/* tmpl with each '@' replaced by dir. */
static char *subst(const char *tmpl, const char *dir)
{
	size_t n = 0;
	for (const char *p = tmpl; *p; p++)
		n += *p == '@' ? strlen(dir) : 1;
	char *s = malloc(n + 1), *o = s;
	cr_assert_not_null(s);
	for (const char *p = tmpl; *p; p++) {
		if (*p == '@') {
			strcpy(o, dir);
			o += strlen(dir);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return s;
}

Test(cli_report, errors_are_one_line_and_exit_2)
{
	char *d = tu_tmpdir(), *err;
	char *snap = record(d, "e", "", "alloc_c", "");
	struct {
		const char *args, *msg;
	} cases[] = {
		{"", "memprof: report: no snapshot file given; see 'memprof "
		     "report --help'\n"},
		{"@/missing.memprof", "memprof: cannot read '"},
		{"--bogus @/e.memprof", "memprof: report: unknown option "
					"'--bogus'"},
		{"-o", "memprof: report: option '-o' needs a value\n"},
		{"@/e.memprof @/e.memprof", "memprof: report: one snapshot "
					    "file only"},
		{"-o @/no/such/dir/x.html @/e.memprof",
		 "memprof: cannot write '"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *args = subst(cases[i].args, d);
		int st = tu_sh(d, NULL, &err, "%s report %s", TU_MEMPROF, args);
		cr_expect_eq(st, 2, "'%s': status %d", args, st);
		cr_expect(strncmp(err, cases[i].msg, strlen(cases[i].msg)) == 0,
			  "'%s': %s", args, err);
		cr_expect(strchr(err, '\n') == err + strlen(err) - 1,
			  "'%s': not one line: %s", args, err);
		free(args);
		free(err);
	}
	/* nothing half-written is left behind */
	cr_expect_eq(tu_sh(d, NULL, NULL, "ls %s | grep -q tmp", d), 1);
	(void)snap;
}

Test(cli_report, help_shows_the_options)
{
	char *d = tu_tmpdir(), *out;
	cr_assert_eq(tu_sh(d, &out, NULL, "%s report --help", TU_MEMPROF), 0);
	cr_expect(strstr(out, "usage: memprof report [options] FILE") != NULL,
		  "%s", out);
	cr_expect(strstr(out, "--title") != NULL);
	cr_assert_eq(tu_sh(d, &out, NULL, "%s help report", TU_MEMPROF), 0);
	cr_expect(strstr(out, "usage: memprof report") != NULL, "%s", out);
	cr_assert_eq(tu_sh(d, &out, NULL, "%s --help", TU_MEMPROF), 0);
	cr_expect(strstr(out, "  report   ") != NULL, "%s", out);
}
