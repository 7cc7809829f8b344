/*
 * test_cli_leaks.c - `memprof leaks` from the command line: the LEAK
 * SUMMARY, the named cycles, the JSON contract (DESIGN §7), --kinds,
 * --suppressions, and errors.
 */
#include "testutil.h"

TestSuite(cli_leaks, .timeout = 120);

static char *helper_path(const char *helper)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/helpers/%s", MP_BUILD_DIR, helper) > 0);
	return p;
}

static char *record(const char *dir, const char *helper)
{
	char *snap = tu_path(dir, "r.memprof");
	cr_assert_eq(tu_sh(dir, NULL, NULL, "%s record -q -o %s %s", TU_MEMPROF,
			   snap, helper_path(helper)),
		     0);
	return snap;
}

Test(cli_leaks, summary_matches_the_helpers_design)
{
	char *d = tu_tmpdir(), *out;
	char *snap = record(d, "leak_kinds");
	cr_assert_eq(tu_sh(d, &out, NULL, "%s leaks %s", TU_MEMPROF, snap), 0);
	cr_expect(strstr(out,
			 "LEAK SUMMARY:\n"
			 "   definitely lost: 132 bytes in 2 blocks\n"
			 "   indirectly lost: 192 bytes in 6 blocks\n"
			 "     possibly lost: 200 bytes in 2 blocks\n"
			 "   still reachable: 280 bytes in 6 blocks\n"
			 "        suppressed: 0 bytes in 0 blocks\n") != NULL,
		  "%s", out);
	cr_expect(strstr(out, "100 bytes in 1 blocks are definitely lost") !=
		  NULL);
	cr_expect(strstr(out, "at make_leak (leak_kinds.c:") != NULL);
	/* Default kinds are Valgrind's: reachable records are not shown. */
	cr_expect(strstr(out, "still reachable in loss record") == NULL);
}

Test(cli_leaks, cycles_stand_out)
{
	char *d = tu_tmpdir(), *out;
	char *snap = record(d, "leak_cycles");
	cr_assert_eq(tu_sh(d, &out, NULL, "%s leaks %s", TU_MEMPROF, snap), 0);
	cr_expect(strstr(out, "LEAKED CYCLE #1: 176 bytes in 2 blocks") != NULL,
		  "%s", out);
	cr_expect(strstr(out, "-> back to itself") != NULL);
	cr_expect(strstr(out, "leaked cycles: 4 (400 bytes in 8 blocks)") !=
		  NULL);
}

Test(cli_leaks, json_follows_the_contract)
{
	char *d = tu_tmpdir();
	char *snap = record(d, "leak_cycles");
	const char *py =
		"import json, sys\n"
		"d = json.load(sys.stdin)\n"
		"s = d['summary']\n"
		"assert set(s) >= "
		"{'definite','indirect','possible','reachable',"
		"'suppressed'}, s\n"
		"assert s['definite'] == {'bytes': 240, 'blocks': 7}, s\n"
		"assert s['indirect'] == {'bytes': 176, 'blocks': 2}, s\n"
		"for r in d['records']:\n"
		"    assert {'kind','bytes','blocks','frames'} <= set(r), r\n"
		"    assert r['kind'] in ('definite','possible'), r\n"
		"    assert r['frames'][0]['function'] == 'node', r\n"
		"c = d['cycles']\n"
		"assert len(c) == 4, c\n"
		"assert sorted((x['bytes'], x['blocks']) for x in c) == "
		"[(72, 1), (72, 3), (80, 2), (176, 2)], c\n"
		"for x in c:\n"
		"    assert {'bytes','blocks','members'} <= set(x)\n"
		"    assert sum(m['blocks'] for m in x['members']) == "
		"x['blocks']\n"
		"    for m in x['members']:\n"
		"        assert {'bytes','blocks','frames'} <= set(m)\n"
		"        f = m['frames']\n"
		"        assert f[0]['function'] == 'node' and "
		"f[1]['function'] in "
		"('cycle2','cycle3','selfloop','owned'), f\n"
		"        assert set(f[0]) == "
		"{'function','file','line','module',"
		"'address'}\n";
	char *pyf = tu_path(d, "check.py");
	FILE *f = fopen(pyf, "w");
	fputs(py, f);
	fclose(f);
	char *err;
	cr_expect_eq(tu_sh(d, NULL, &err, "%s leaks --json %s | python3 %s",
			   TU_MEMPROF, snap, pyf),
		     0, "%s", err);
}

Test(cli_leaks, kinds_select_the_records)
{
	char *d = tu_tmpdir(), *out;
	char *snap = record(d, "leak_kinds");
	cr_assert_eq(tu_sh(d, &out, NULL, "%s leaks --kinds reachable %s",
			   TU_MEMPROF, snap),
		     0);
	cr_expect(strstr(out, "240 bytes in 5 blocks are still reachable") !=
			  NULL,
		  "%s", out);
	cr_expect(strstr(out, "are definitely lost in loss record") == NULL);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s leaks --kinds bogus %s",
			   TU_MEMPROF, snap),
		     2);
}

Test(cli_leaks, suppressions_move_blocks_to_suppressed)
{
	char *d = tu_tmpdir(), *out;
	char *snap = record(d, "leak_kinds");
	char *supp = tu_path(d, "s.supp");
	FILE *f = fopen(supp, "w");
	fputs("# the tree is known\nleak:tree_node\n", f);
	fclose(f);
	cr_assert_eq(tu_sh(d, &out, NULL, "%s leaks --suppressions %s %s",
			   TU_MEMPROF, supp, snap),
		     0);
	cr_expect(strstr(out, "   definitely lost: 100 bytes in 1 blocks\n") !=
			  NULL,
		  "%s", out);
	cr_expect(strstr(out, "        suppressed: 224 bytes in 7 blocks\n") !=
			  NULL,
		  "%s", out);
	f = fopen(supp, "w");
	fputs("leak:ok\nrace:foo\n", f);
	fclose(f);
	char *err;
	cr_expect_eq(tu_sh(d, NULL, &err, "%s leaks --suppressions %s %s",
			   TU_MEMPROF, supp, snap),
		     2);
	cr_expect(strstr(err, "line 2") != NULL, "%s", err);
}

Test(cli_leaks, no_graph_is_a_clear_error)
{
	char *d = tu_tmpdir(), *err;
	char *snap = tu_path(d, "n.memprof");
	cr_assert_eq(tu_sh(d, NULL, NULL,
			   "%s record -q --leak-check=no -o %s %s", TU_MEMPROF,
			   snap, TU_HELPER("leak_kinds")),
		     0);
	cr_expect_eq(tu_sh(d, NULL, &err, "%s leaks %s", TU_MEMPROF, snap), 2);
	cr_expect(strstr(err, "has no heap graph") != NULL, "%s", err);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s leaks %s/missing", TU_MEMPROF, d),
		     2);
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s leaks --help | grep -q -- --kinds", TU_MEMPROF),
		     0);
}
