/*
 * test_cli_diff.c - `memprof diff` end to end: the growth and shrinkage
 * between two API snapshots at exactly the right function and line, and
 * two separate runs of one program (different addresses under ASLR) that
 * diff to nothing.
 */
#include "testutil.h"

TestSuite(cli_diff, .timeout = 120);

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(cli_diff, shows_exactly_the_growth_and_the_shrinkage)
{
	char *d = tu_tmpdir(), *out, *err;
	cr_assert_eq(tu_sh(d, &out, NULL, "%s record -q -o %s/a.memprof %s",
			   TU_MEMPROF, d, TU_HELPER("api_grow")),
		     0);
	int table_line = 0, grow_line = 0;
	char *p = strstr(out, "table_line=");
	cr_assert_not_null(p);
	sscanf(p, "table_line=%d grow_line=%d", &table_line, &grow_line);
	char *py = NULL;
	cr_assert(
		asprintf(
			&py,
			"import json, sys\n"
			"d = json.load(sys.stdin)\n"
			"assert d['group_by'] == 'line', d['group_by']\n"
			"e = d['entries']\n"
			"g = e[0]\n"
			"assert g['frames'][0]['function'] == 'grow_cache', g\n"
			"assert g['frames'][0]['line'] == %d, g\n"
			"assert (g['bytes'], g['bytes_diff'], g['blocks'], "
			"g['blocks_diff']) == (40960, 40960, 10, 10), g\n"
			"t = e[1]\n"
			"assert t['frames'][0]['function'] == 'make_table', t\n"
			"assert t['frames'][0]['line'] == %d, t\n"
			"assert (t['bytes'], t['bytes_diff'], t['blocks'], "
			"t['blocks_diff']) == (3000, -5000, 3, -5), t\n"
			"for x in e[2:]:\n"
			"    assert x['bytes_diff'] == 0 and x['blocks_diff'] "
			"== 0, x\n",
			grow_line, table_line) > 0);
	char *pyf = tu_path(d, "check.py");
	write_file(pyf, py);
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s diff --json -n 0 %s/a.1.memprof %s/a.2.memprof "
			   "| python3 %s",
			   TU_MEMPROF, d, d, pyf),
		     0, "%s", err);
	/* The text ends with the totals line. */
	cr_assert_eq(tu_sh(d, &out, NULL,
			   "%s diff %s/a.1.memprof %s/a.2.memprof", TU_MEMPROF,
			   d, d),
		     0);
	cr_expect(strstr(out, "grow_cache") != NULL, "%s", out);
	char *last = strrchr(out, '\n');
	while (last > out && last[-1] != '\n')
		last--;
	cr_expect(strstr(last ? last : out, "total") != NULL, "%s", out);
}

Test(cli_diff, two_runs_of_one_program_diff_to_nothing)
{
	char *d = tu_tmpdir(), *err;
	for (int i = 1; i <= 2; i++)
		cr_assert_eq(tu_sh(d, NULL, NULL,
				   "%s record -q -o %s/r%d.memprof %s",
				   TU_MEMPROF, d, i, TU_HELPER("alloc_c")),
			     0);
	const char *py = "import json, sys\n"
			 "d = json.load(sys.stdin)\n"
			 "assert len(d['entries']) >= 5, d\n"
			 "for x in d['entries']:\n"
			 "    assert x['bytes_diff'] == 0 and x['blocks_diff'] "
			 "== 0, x\n";
	char *pyf = tu_path(d, "same.py");
	write_file(pyf, py);
	for (int k = 0; k < 3; k++) {
		static const char *by[] = {"line", "traceback", "function"};
		cr_expect_eq(tu_sh(d, NULL, &err,
				   "%s diff --json -n 0 --by %s %s/r1.memprof "
				   "%s/r2.memprof | python3 %s",
				   TU_MEMPROF, by[k], d, d, pyf),
			     0, "--by %s: %s", by[k], err);
	}
}

Test(cli_diff, usage_errors_exit_2)
{
	char *d = tu_tmpdir();
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s diff", TU_MEMPROF), 2);
	cr_expect_eq(
		tu_sh(d, NULL, NULL, "%s diff %s/x %s/y", TU_MEMPROF, d, d), 2);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s diff --help | grep -q -- --by",
			   TU_MEMPROF),
		     0);
}

Test(cli_diff, two_builds_of_one_program_diff_to_nothing)
{
	char *d = tu_tmpdir(), *err;
	/* Same source and lines, different code: every address differs. */
	cr_assert_eq(tu_sh(d, NULL, &err,
			   "cc -O2 -g -fomit-frame-pointer -o %s/b1 "
			   "%s/tests/helpers/alloc_c.c && "
			   "cc -O2 -g -fno-omit-frame-pointer -fno-inline "
			   "-o %s/b2 %s/tests/helpers/alloc_c.c && "
			   "! cmp -s %s/b1 %s/b2",
			   d, MP_SOURCE_DIR, d, MP_SOURCE_DIR, d, d),
		     0, "%s", err);
	for (int i = 1; i <= 2; i++)
		cr_assert_eq(tu_sh(d, NULL, NULL,
				   "%s record -q -o %s/b%d.memprof %s/b%d",
				   TU_MEMPROF, d, i, d, i),
			     0);
	const char *py = "import json, sys\n"
			 "d = json.load(sys.stdin)\n"
			 "assert len(d['entries']) >= 5, d\n"
			 "for x in d['entries']:\n"
			 "    assert x['bytes_diff'] == 0 and x['blocks_diff'] "
			 "== 0, x\n";
	char *pyf = tu_path(d, "same.py");
	write_file(pyf, py);
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s diff --json -n 0 --by line %s/b1.memprof "
			   "%s/b2.memprof | python3 %s",
			   TU_MEMPROF, d, d, pyf),
		     0, "%s", err);
}
