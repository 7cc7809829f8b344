/*
 * test_cli_check.c - `memprof check` end to end on real recordings of the
 * helpers: every budget held and violated at the helper's exact figure,
 * the exit codes (0 pass, 1 violation, 2 usage or input, 3 the program
 * failed), the one-line messages, --json (read back with python3's json)
 * and --junit (read back with xml.etree).
 *
 * Figures, from the helpers' own comments and tests/shim:
 *   leak_kinds   definite 132 B in 2 blocks, indirect 192 B in 6, possible
 *                200 B in 2; the biggest loss record make_leak's 100 B
 *   leak_cycles  4 leaked cycles, 400 B in 8 blocks, the biggest 176 B
 *   alloc_c      peak 10,227 B, no leak (everything held by a global)
 *   api_grow     a.1 (before) 8,000 B live, a.2 (after) 43,960 B: the
 *                grow_cache site +40,960 B, make_table's -5,000 B
 */
#include "testutil.h"

TestSuite(cli_check, .timeout = 120);

/* Records helper into dir/name; returns the path. */
static char *record(const char *dir, const char *helper, const char *name)
{
	char *snap = tu_path(dir, name);
	cr_assert_eq(tu_sh(dir, NULL, NULL, "%s record -q -o %s %s/helpers/%s",
			   TU_MEMPROF, snap, MP_BUILD_DIR, helper),
		     0);
	return snap;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* Runs shell command cmd with its stdout in dir/doc, expecting exit
 * status want, then python3 on script with the document as stdin; the
 * python exit status (0: every assert held). */
static int py_check(const char *dir, const char *script, int want,
		    const char *cmd)
{
	char *pyf = tu_path(dir, "check.py"), *doc = tu_path(dir, "doc");
	char *err = NULL;
	write_file(pyf, script);
	int st = tu_sh(dir, NULL, &err, "%s >%s", cmd, doc);
	cr_expect_eq(st, want, "%s: %s", cmd, err);
	free(err);
	st = tu_sh(dir, NULL, &err, "python3 %s <%s", pyf, doc);
	cr_expect_eq(st, 0, "%s", err);
	free(err);
	free(pyf);
	free(doc);
	return st;
}

static void expect_has(const char *text, const char *what)
{
	cr_expect(text && strstr(text, what) != NULL, "expected '%s' in:\n%s",
		  what, text ? text : "(null)");
}

static void expect_lacks(const char *text, const char *what)
{
	cr_expect(text && strstr(text, what) == NULL, "unexpected '%s' in:\n%s",
		  what, text ? text : "(null)");
}

/* ---- leak budgets ------------------------------------------------------- */

Test(cli_check, max_leaked_fails_with_the_exact_figure_and_site)
{
	char *d = tu_tmpdir(), *out, *err;
	char *snap = record(d, "leak_kinds", "k.memprof");
	cr_expect_eq(tu_sh(d, &out, &err, "%s check --max-leaked 0 %s",
			   TU_MEMPROF, snap),
		     1);
	expect_has(err, "memprof: check failed: --max-leaked 0: 324 bytes "
			"leaked (definite, indirect) in 8 blocks; worst: "
			"make_leak (leak_kinds.c:");
	expect_has(err, ") 100 bytes\n");
	cr_expect_str_eq(out, "");
	/* One line per violation. */
	cr_expect_eq(strchr(err, '\n'), err + strlen(err) - 1, "%s", err);
}

Test(cli_check, max_leaked_passes_at_the_figure_quietly)
{
	char *d = tu_tmpdir(), *out, *err;
	char *snap = record(d, "leak_kinds", "k.memprof");
	cr_expect_eq(tu_sh(d, &out, &err, "%s check --max-leaked 324 %s",
			   TU_MEMPROF, snap),
		     0);
	cr_expect_str_eq(out, "");
	cr_expect_str_eq(err, "");
	cr_expect_eq(tu_sh(d, &out, &err, "%s check -v --max-leaked 324 %s",
			   TU_MEMPROF, snap),
		     0);
	expect_has(out, "memprof: check passed: --max-leaked 324: 324 bytes "
			"leaked (definite, indirect) in 8 blocks; worst: "
			"make_leak (leak_kinds.c:");
	cr_expect_str_eq(err, "");
	/* Sizes take suffixes. */
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s check --max-leaked 1K %s",
			   TU_MEMPROF, snap),
		     0);
}

Test(cli_check, leak_kinds_change_the_figure)
{
	char *d = tu_tmpdir(), *err;
	char *snap = record(d, "leak_kinds", "k.memprof");
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --leak-kinds definite,indirect,possible "
			   "--max-leaked 324 %s",
			   TU_MEMPROF, snap),
		     1);
	expect_has(err, "--max-leaked 324: 524 bytes leaked (definite, "
			"indirect, possible) in 10 blocks; worst: ");
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s check --leak-kinds definite,indirect,possible "
			   "--max-leaked 524 %s",
			   TU_MEMPROF, snap),
		     0);
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --leak-kinds definite --max-leaked 131 "
			   "%s",
			   TU_MEMPROF, snap),
		     1);
	expect_has(err, "132 bytes leaked (definite) in 2 blocks");
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --leak-kinds bogus --max-leaked 0 %s",
			   TU_MEMPROF, snap),
		     2);
	expect_has(err, "memprof: check: unknown --leak-kinds 'bogus'");
}

Test(cli_check, max_leaked_blocks)
{
	char *d = tu_tmpdir(), *err;
	char *snap = record(d, "leak_kinds", "k.memprof");
	cr_expect_eq(tu_sh(d, NULL, &err, "%s check --max-leaked-blocks 7 %s",
			   TU_MEMPROF, snap),
		     1);
	expect_has(err,
		   "memprof: check failed: --max-leaked-blocks 7: 8 "
		   "blocks leaked (definite, indirect), 324 bytes; worst: ");
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s check --max-leaked-blocks 8 %s",
			   TU_MEMPROF, snap),
		     0);
	cr_expect_eq(tu_sh(d, NULL, &err, "%s check --max-leaked-blocks 1K %s",
			   TU_MEMPROF, snap),
		     2);
	expect_has(err, "--max-leaked-blocks wants a count");
}

Test(cli_check, no_leaked_cycles)
{
	char *d = tu_tmpdir(), *err;
	char *cyc = record(d, "leak_cycles", "c.memprof");
	char *kinds = record(d, "leak_kinds", "k.memprof");
	cr_expect_eq(tu_sh(d, NULL, &err, "%s check --no-leaked-cycles %s",
			   TU_MEMPROF, cyc),
		     1);
	expect_has(err, "memprof: check failed: --no-leaked-cycles: 4 leaked "
			"cycles, 400 bytes in 8 blocks; worst: node "
			"(leak_cycles.c:");
	expect_has(err, ") 176 bytes in 2 blocks\n");
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s check --no-leaked-cycles %s",
			   TU_MEMPROF, kinds),
		     0);
}

Test(cli_check, max_site_leak)
{
	char *d = tu_tmpdir(), *err;
	char *snap = record(d, "leak_kinds", "k.memprof");
	cr_expect_eq(tu_sh(d, NULL, &err, "%s check --max-site-leak 99 %s",
			   TU_MEMPROF, snap),
		     1);
	expect_has(err, "memprof: check failed: --max-site-leak 99: 100 bytes "
			"leaked (definite) in 1 block at one call site; "
			"worst: make_leak (leak_kinds.c:");
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s check --max-site-leak 100 %s",
			   TU_MEMPROF, snap),
		     0);
	/* With possible counted, make_chain's 136-byte block is the worst. */
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --leak-kinds definite,indirect,possible "
			   "--max-site-leak 100 %s",
			   TU_MEMPROF, snap),
		     1);
	expect_has(err, "worst: make_chain (leak_kinds.c:");
}

Test(cli_check, suppressions_turn_a_failure_into_a_pass)
{
	char *d = tu_tmpdir(), *err;
	char *snap = record(d, "leak_kinds", "k.memprof");
	char *s1 = tu_path(d, "1.supp"), *s2 = tu_path(d, "2.supp");
	write_file(s1, "# known\nleak:make_leak\n");
	write_file(s2, "leak:tree_node\n");
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --max-leaked 0 --suppressions %s %s",
			   TU_MEMPROF, s1, snap),
		     1);
	expect_has(err, "224 bytes leaked");
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --max-leaked 0 --suppressions %s "
			   "--suppressions %s %s",
			   TU_MEMPROF, s1, s2, snap),
		     0, "%s", err);
	write_file(s2, "leak:ok\nrace:foo\n");
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --max-leaked 0 --suppressions %s %s",
			   TU_MEMPROF, s2, snap),
		     2);
	expect_has(err, "line 2");
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s check --max-leaked 0 --suppressions %s/none %s",
			   TU_MEMPROF, d, snap),
		     2);
}

/* ---- peak and growth ------------------------------------------------------
 */

Test(cli_check, max_peak_limit_is_inclusive)
{
	char *d = tu_tmpdir(), *err;
	char *snap = record(d, "alloc_c", "a.memprof");
	cr_expect_eq(tu_sh(d, NULL, &err, "%s check --max-peak 10000 %s",
			   TU_MEMPROF, snap),
		     1);
	expect_has(err, "memprof: check failed: --max-peak 10000: peak 10,227 "
			"bytes; worst: site_peak (alloc_c.c:");
	expect_has(err, ") 6,000 bytes at the peak\n");
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s check --max-peak 10227 %s",
			   TU_MEMPROF, snap),
		     0);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s check --max-peak 10K %s",
			   TU_MEMPROF, snap),
		     0);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s check --max-peak 9.9K %s",
			   TU_MEMPROF, snap),
		     1);
}

/* Records api_grow into dir/a.memprof (a.1 before, a.2 after); *line
 * gets grow_cache's malloc line. */
static void record_api_grow(const char *d, int *line)
{
	char *out;
	cr_assert_eq(tu_sh(d, &out, NULL, "%s record -q -o %s/a.memprof %s",
			   TU_MEMPROF, d, TU_HELPER("api_grow")),
		     0);
	char *p = strstr(out, "grow_line=");
	cr_assert_not_null(p);
	cr_assert_eq(sscanf(p, "grow_line=%d", line), 1);
}

Test(cli_check, max_growth_in_bytes_is_by_site)
{
	char *d = tu_tmpdir(), *err, *want = NULL;
	int line;
	record_api_grow(d, &line);
	/* The total grew by 35,960; the grow_cache site by 40,960. */
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --baseline %s/a.1.memprof --max-growth "
			   "40959 %s/a.2.memprof",
			   TU_MEMPROF, d, d),
		     1);
	cr_assert(asprintf(&want,
			   "memprof: check failed: --max-growth 40959: one "
			   "call site grew by 40,960 live bytes (512.0%% of "
			   "the baseline's 8,000); worst: grow_cache "
			   "(api_grow.c:%d) 0 -> 40,960 bytes\n",
			   line) > 0);
	cr_expect_str_eq(err, want);
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s check --baseline %s/a.1.memprof --max-growth "
			   "40960 %s/a.2.memprof",
			   TU_MEMPROF, d, d),
		     0);
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s check --baseline %s/a.1.memprof --max-growth "
			   "40K %s/a.2.memprof",
			   TU_MEMPROF, d, d),
		     0);
	/* Bytes at the peak: 8,000 then 48,960, grow_cache's 40,960. */
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --baseline %s/a.1.memprof --max-growth "
			   "40959 --growth-of peak %s/a.2.memprof",
			   TU_MEMPROF, d, d),
		     1);
	expect_has(err, "grew by 40,960 bytes at the peak");
	/* Against itself nothing grew. */
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s check --baseline %s/a.2.memprof --max-growth 0 "
			   "%s/a.2.memprof",
			   TU_MEMPROF, d, d),
		     0);
}

Test(cli_check, max_growth_in_percent_is_of_the_baselines_total)
{
	char *d = tu_tmpdir(), *err, *out;
	int line;
	record_api_grow(d, &line);
	/* 40,960 is 512% of the baseline's 8,000 live bytes. */
	cr_expect_eq(tu_sh(d, &out, NULL,
			   "%s check -v --baseline %s/a.1.memprof "
			   "--max-growth 512%% %s/a.2.memprof",
			   TU_MEMPROF, d, d),
		     0);
	expect_has(out, "memprof: check passed: --max-growth 512%: one call "
			"site grew by 40,960 live bytes");
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --baseline %s/a.1.memprof --max-growth "
			   "511.9%% %s/a.2.memprof",
			   TU_MEMPROF, d, d),
		     1);
	expect_has(err, "--max-growth 511.9%: one call site grew by 40,960");
	/* Percentages are for --max-growth only. */
	cr_expect_eq(tu_sh(d, NULL, &err, "%s check --max-leaked 10%% %s",
			   TU_MEMPROF, d),
		     2);
	expect_has(err, "--max-leaked wants a size");
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --max-growth 10%% %s/a.2.memprof",
			   TU_MEMPROF, d),
		     2);
	expect_has(err, "--max-growth needs --baseline");
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --baseline %s/nope.memprof --max-growth "
			   "1%% %s/a.2.memprof",
			   TU_MEMPROF, d, d),
		     2);
	expect_has(err, "cannot read");
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s check --baseline %s/a.1.memprof --max-growth "
			   "-5%% %s/a.2.memprof",
			   TU_MEMPROF, d, d),
		     2);
}

/* ---- the program form and exit 3 ----------------------------------------- */

Test(cli_check, program_form_records_then_gates)
{
	char *d = tu_tmpdir(), *err, *out;
	cr_expect_eq(tu_sh(d, &out, &err, "%s check --max-leaked 0 -- %s",
			   TU_MEMPROF, TU_HELPER("alloc_c")),
		     0, "%s", err);
	cr_expect_str_eq(out, "alloc_c done\n"); /* the program's own */
	cr_expect_str_eq(err, "");
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --max-leaked 0 -o %s/k.memprof -- %s",
			   TU_MEMPROF, d, TU_HELPER("leak_kinds")),
		     1);
	expect_has(err, "--max-leaked 0: 324 bytes leaked (definite, "
			"indirect) in 8 blocks");
	/* -o kept the recording; the same check on it agrees. */
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s check --max-leaked 324 %s/k.memprof", TU_MEMPROF,
			   d),
		     0);
	/* The program's options stay its own. */
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --max-peak 1G -- sh -c "
			   "'test \"$1\" = -v' sh -v",
			   TU_MEMPROF),
		     0, "%s", err);
}

Test(cli_check, program_failure_is_exit_3_not_a_violation)
{
	char *d = tu_tmpdir(), *err, *out;
	cr_expect_eq(tu_sh(d, &out, &err,
			   "%s check --max-peak 1G -- sh -c 'exit 4'",
			   TU_MEMPROF),
		     3);
	cr_expect_str_eq(err, "memprof: check: sh exited with status 4\n");
	cr_expect_str_eq(out, "");
	/* Budgets are still checked and reported. */
	cr_expect_eq(tu_sh(d, &out, &err, "%s check -v --max-leaked 0 -- %s x",
			   TU_MEMPROF, TU_HELPER("alloc_c")),
		     3);
	expect_has(err, "alloc_c exited with status 3\n");
	expect_lacks(err, "check failed");
	expect_has(out, "memprof: check passed: --max-leaked 0: 0 bytes "
			"leaked\n");
	/* A violation too: 3 wins, both are said. */
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --max-peak 1 -- sh -c 'exit 4'",
			   TU_MEMPROF),
		     3);
	expect_has(err, "memprof: check: sh exited with status 4\n");
	expect_has(err, "memprof: check failed: --max-peak 1: peak ");
}

Test(cli_check, killed_program_is_exit_3_with_the_signal)
{
	char *d = tu_tmpdir(), *err;
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --max-leaked 0 -- sh -c 'kill -9 $$'",
			   TU_MEMPROF),
		     3);
	expect_has(err, "memprof: check: sh was killed by signal 9 "
			"(SIGKILL)\n");
	expect_has(err, "budgets not checked");
	/* In JUnit: the program's error, the budgets skipped. */
	char *xml = tu_path(d, "memprof.xml");
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s check --max-leaked 0 --max-peak 1 --junit %s "
			   "-- sh -c 'kill -9 $$'",
			   TU_MEMPROF, xml),
		     3);
	const char *py =
		"import sys, xml.etree.ElementTree as ET\n"
		"root = ET.parse(sys.argv[1]).getroot()\n"
		"suite = root.find('testsuite')\n"
		"assert (suite.get('tests'), suite.get('failures'), "
		"suite.get('errors'), suite.get('skipped')) == "
		"('3', '0', '1', '2'), suite.attrib\n"
		"c = list(suite.iter('testcase'))\n"
		"e = c[0].find('error')\n"
		"assert e.get('message') == 'sh was killed by signal 9 "
		"(SIGKILL)', e.attrib\n"
		"assert all(x.find('skipped') is not None for x in c[1:])\n";
	char *pyf = tu_path(d, "j.py");
	write_file(pyf, py);
	cr_expect_eq(tu_sh(d, NULL, &err, "python3 %s %s", pyf, xml), 0, "%s",
		     err);
}

/* ---- usage and input errors ------------------------------------------------
 */

Test(cli_check, usage_and_input_errors_are_exit_2)
{
	char *d = tu_tmpdir(), *err;
	char *snap = record(d, "leak_kinds", "k.memprof");
	static const char *const bad[] = {
		"--max-leaked 1X",
		"--max-leaked -1",
		"--max-peak lots",
		"--max-site-leak ''",
		"--max-growth 5Q --baseline x",
		"--growth-of both --max-peak 1",
		"--bogus --max-peak 1",
		"--max-peak",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(tu_sh(d, NULL, &err, "%s check %s %s", TU_MEMPROF,
				   bad[i], snap),
			     2, "%s", bad[i]);
		/* One line, "memprof: ...". */
		cr_expect(!strncmp(err, "memprof: ", 9) &&
				  strchr(err, '\n') == err + strlen(err) - 1,
			  "%s: %s", bad[i], err);
	}
	/* No budget, no file, two files, a file and a program. */
	cr_expect_eq(tu_sh(d, NULL, &err, "%s check %s", TU_MEMPROF, snap), 2);
	expect_has(err, "no budget given");
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s check --max-peak 1", TU_MEMPROF),
		     2);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s check --max-peak 1 %s %s",
			   TU_MEMPROF, snap, snap),
		     2);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s check --max-peak 1 %s -- true",
			   TU_MEMPROF, snap),
		     2);
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --max-peak 1 -- %s/no-such-program",
			   TU_MEMPROF, d),
		     2);
	expect_has(err, "cannot run");
	/* Missing and unreadable snapshots. */
	cr_expect_eq(tu_sh(d, NULL, &err, "%s check --max-leaked 0 %s/missing",
			   TU_MEMPROF, d),
		     2);
	expect_has(err, "cannot read");
	char *junk = tu_path(d, "junk.memprof");
	write_file(junk, "not a snapshot\n");
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s check --max-peak 1 %s",
			   TU_MEMPROF, junk),
		     2);
	/* Help is not an error. */
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s check --help | grep -q -- --max-site-leak",
			   TU_MEMPROF),
		     0);
}

Test(cli_check, no_graph_is_an_error_only_for_leak_budgets)
{
	char *d = tu_tmpdir(), *err;
	char *snap = tu_path(d, "n.memprof");
	cr_assert_eq(tu_sh(d, NULL, NULL,
			   "%s record -q --leak-check=no -o %s %s", TU_MEMPROF,
			   snap, TU_HELPER("leak_kinds")),
		     0);
	static const char *const leak[] = {
		"--max-leaked 0", "--max-leaked-blocks 0", "--no-leaked-cycles",
		"--max-site-leak 0"};
	for (size_t i = 0; i < 4; i++) {
		cr_expect_eq(tu_sh(d, NULL, &err, "%s check %s %s", TU_MEMPROF,
				   leak[i], snap),
			     2, "%s", leak[i]);
		expect_has(err, "has no heap graph");
	}
	cr_expect_eq(tu_sh(d, NULL, &err, "%s check --max-peak 1M %s",
			   TU_MEMPROF, snap),
		     0, "%s", err);
}

/* ---- machine-readable output ------------------------------------------------
 */

Test(cli_check, json_document_for_a_file)
{
	char *d = tu_tmpdir(), *cmd = NULL;
	char *snap = record(d, "leak_kinds", "k.memprof");
	const char *py =
		"import json, sys\n"
		"d = json.load(sys.stdin)\n"
		"assert set(d) >= {'ok','file','program','budgets'}, d\n"
		"assert d['ok'] is False and d['program'] is None, d\n"
		"assert d['file'].endswith('k.memprof'), d\n"
		"b = {x['name']: x for x in d['budgets']}\n"
		"assert list(b) == ['max-leaked', 'no-leaked-cycles', "
		"'max-site-leak', 'max-peak'], list(b)\n"
		"m = b['max-leaked']\n"
		"assert (m['limit'], m['measured'], m['ok']) == (0, 324, "
		"False), "
		"m\n"
		"assert m['message'].startswith('--max-leaked 0: 324 bytes "
		"leaked (definite, indirect) in 8 blocks; worst: make_leak "
		"(leak_kinds.c:'), m\n"
		"s = m['site']\n"
		"assert set(s) == "
		"{'function','file','line','module','address'}, "
		"s\n"
		"assert s['function'] == 'make_leak' and "
		"s['file'].endswith('leak_kinds.c') and s['line'] > 0, s\n"
		"assert s['module'].endswith('leak_kinds'), s\n"
		"assert s['address'].startswith('0x'), s\n"
		"c = b['no-leaked-cycles']\n"
		"assert (c['limit'], c['measured'], c['ok'], c['site']) == "
		"(0, 0, True, None), c\n"
		"x = b['max-site-leak']\n"
		"assert (x['limit'], x['measured'], x['ok']) == (100, 100, "
		"True), "
		"x\n"
		"p = b['max-peak']\n"
		"assert p['limit'] == 1048576 and p['ok'] is True, p\n";
	cr_assert(asprintf(&cmd,
			   "%s check --json --max-leaked 0 --no-leaked-cycles "
			   "--max-site-leak 100 --max-peak 1M %s",
			   TU_MEMPROF, snap) > 0);
	py_check(d, py, 1, cmd);
	/* Nothing but the document on stdout, nothing on stderr. */
	char *out, *err;
	cr_expect_eq(tu_sh(d, &out, &err, "%s check --json --max-leaked 0 %s",
			   TU_MEMPROF, snap),
		     1);
	cr_expect_eq(out[0], '{');
	cr_expect_str_eq(err, "");
}

Test(cli_check, json_document_for_a_program_and_a_percentage)
{
	char *d = tu_tmpdir(), *cmd = NULL;
	int line;
	record_api_grow(d, &line);
	const char *py =
		"import json, sys\n"
		"d = json.load(sys.stdin)\n"
		"assert d['ok'] is False, d\n"
		"assert d['file'] is None, d\n"
		"p = d['program']\n"
		"assert p == {'argv': ['sh', '-c', 'echo hi; exit 4'], "
		"'status': 4, 'signal': None}, p\n"
		"(b,) = d['budgets']\n"
		"assert b['name'] == 'max-peak' and b['ok'] is True, b\n";
	cr_assert(asprintf(&cmd,
			   "%s check --json --max-peak 1G -- sh -c 'echo hi; "
			   "exit 4' 2>/dev/null",
			   TU_MEMPROF) > 0);
	py_check(d, py, 3, cmd);
	free(cmd);
	const char *py2 =
		"import json, sys\n"
		"d = json.load(sys.stdin)\n"
		"(b,) = d['budgets']\n"
		"assert b['name'] == 'max-growth', b\n"
		"assert b['limit'] == '10%' and b['limit_bytes'] == 800, b\n"
		"assert b['measured'] == 40960 and b['ok'] is False, b\n"
		"assert b['site']['function'] == 'grow_cache', b\n"
		"assert d['ok'] is False and d['program'] is None, d\n";
	cr_assert(asprintf(&cmd,
			   "%s check --json --baseline %s/a.1.memprof "
			   "--max-growth 10%% %s/a.2.memprof",
			   TU_MEMPROF, d, d) > 0);
	py_check(d, py2, 1, cmd);
	free(cmd);
	/* Killed: no snapshot, so no budget results. */
	const char *py3 = "import json, sys\n"
			  "d = json.load(sys.stdin)\n"
			  "assert d['program']['signal'] == 9, d\n"
			  "assert d['program']['status'] == 137, d\n"
			  "assert d['budgets'] == [] and d['ok'] is False, d\n";
	cr_assert(asprintf(&cmd,
			   "%s check --json --max-peak 1 -- sh -c 'kill -9 $$' "
			   "2>/dev/null",
			   TU_MEMPROF) > 0);
	py_check(d, py3, 3, cmd);
	free(cmd);
}

Test(cli_check, junit_report)
{
	char *d = tu_tmpdir(), *cmd = NULL, *err;
	char *snap = record(d, "leak_cycles", "c.memprof");
	char *xml = tu_path(d, "memprof.xml");
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --max-leaked 0 --no-leaked-cycles "
			   "--max-peak 1G --junit %s %s",
			   TU_MEMPROF, xml, snap),
		     1);
	/* The text lines still go to stderr. */
	expect_has(err, "check failed: --no-leaked-cycles: 4 leaked cycles");
	const char *py =
		"import sys, xml.etree.ElementTree as ET\n"
		"root = ET.parse(sys.argv[1]).getroot()\n"
		"suite = root if root.tag == 'testsuite' else "
		"root.find('testsuite')\n"
		"cases = list(suite.iter('testcase'))\n"
		"assert len(cases) == 3, cases\n"
		"assert suite.get('tests') == '3', suite.attrib\n"
		"assert suite.get('failures') == '2', suite.attrib\n"
		"assert suite.get('errors') == '0', suite.attrib\n"
		"names = [c.get('name') for c in cases]\n"
		"assert names == ['--max-leaked 0', '--no-leaked-cycles', "
		"'--max-peak 1G'], names\n"
		"f = [c.find('failure') for c in cases]\n"
		"assert f[2] is None, f\n"
		"assert f[0].get('type') == 'budget', f[0].attrib\n"
		"assert f[1].get('message').startswith('--no-leaked-cycles: 4 "
		"leaked cycles, 400 bytes in 8 blocks; worst: node "
		"(leak_cycles.c:'), f[1].attrib\n";
	char *pyf = tu_path(d, "j.py");
	write_file(pyf, py);
	cr_expect_eq(tu_sh(d, NULL, &err, "python3 %s %s", pyf, xml), 0, "%s",
		     err);
	free(cmd);
}

Test(cli_check, junit_for_a_failed_program_is_escaped)
{
	char *d = tu_tmpdir(), *err;
	char *xml = tu_path(d, "memprof.xml");
	/* A program whose name needs escaping: & < > " ' */
	cr_assert_eq(tu_sh(d, NULL, NULL,
			   "ln -s \"$(command -v sh)\" \"%s/a&b<c>\\\"d'e\"",
			   d),
		     0);
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s check --max-leaked 0 --max-peak 1 --junit %s -- "
			   "\"%s/a&b<c>\\\"d'e\" -c 'exit 4'",
			   TU_MEMPROF, xml, d),
		     3);
	expect_has(err, "exited with status 4");
	const char *py =
		"import sys, xml.etree.ElementTree as ET\n"
		"root = ET.parse(sys.argv[1]).getroot()\n"
		"suite = root if root.tag == 'testsuite' else "
		"root.find('testsuite')\n"
		"cases = {c.get('name'): c for c in suite.iter('testcase')}\n"
		"assert list(cases) == ['program', '--max-leaked 0', "
		"'--max-peak 1'], list(cases)\n"
		"assert (suite.get('tests'), suite.get('failures'), "
		"suite.get('errors')) == ('3', '1', '1'), suite.attrib\n"
		"e = cases['program'].find('error')\n"
		"assert e is not None and e.get('type') == 'program', e\n"
		"assert e.get('message').endswith('/a&b<c>\"d\\'e exited with "
		"status 4'), e.attrib\n"
		"assert 'a&b<c>' in suite.get('name'), suite.attrib\n"
		"assert cases['--max-leaked 0'].find('failure') is None\n"
		"assert cases['--max-peak 1'].find('failure') is not None\n";
	char *pyf = tu_path(d, "j.py");
	write_file(pyf, py);
	cr_expect_eq(tu_sh(d, NULL, &err, "python3 %s %s", pyf, xml), 0, "%s",
		     err);
	/* A program that passes is a testcase without error. */
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s check --max-peak 1G --junit %s -- true",
			   TU_MEMPROF, xml),
		     0);
	const char *py2 =
		"import sys, xml.etree.ElementTree as ET\n"
		"root = ET.parse(sys.argv[1]).getroot()\n"
		"cases = list(root.iter('testcase'))\n"
		"assert [c.get('name') for c in cases] == ['program', "
		"'--max-peak 1G'], cases\n"
		"assert all(len(c.findall('error')) + "
		"len(c.findall('failure')) "
		"== 0 for c in cases)\n";
	write_file(pyf, py2);
	cr_expect_eq(tu_sh(d, NULL, &err, "python3 %s %s", pyf, xml), 0, "%s",
		     err);
	/* An unwritable report is an error. */
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s check --max-peak 1G --junit %s/no/dir/x.xml -- "
			   "true",
			   TU_MEMPROF, d),
		     2);
}
