/*
 * test_cli.c - the memprof command line: record's transparency (output,
 * exit status), the top/info outputs and their JSON contract (DESIGN §7),
 * and clear errors for bad input.
 */
#include "testutil.h"

TestSuite(cli, .timeout = 120);

Test(cli, record_passes_the_exit_status_through)
{
	char *d = tu_tmpdir();
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s record -q -o %s/a.memprof %s x",
			   TU_MEMPROF, d, TU_HELPER("alloc_c")),
		     3);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s record -q -o %s/b.memprof -- %s",
			   TU_MEMPROF, d, TU_HELPER("alloc_c")),
		     0);
}

Test(cli, record_reports_a_killed_program_as_128_plus_signal)
{
	char *d = tu_tmpdir();
	cr_expect_eq(
		tu_sh(d, NULL, NULL,
		      "%s record -q -o %s/k.memprof -- sh -c 'kill -TERM $$'",
		      TU_MEMPROF, d),
		128 + 15);
}

/* Output and status of a real program, bare and under memprof. */
static void same_as_bare(const char *cmdline)
{
	char *d = tu_tmpdir();
	int bare = tu_sh(d, NULL, NULL, "cd %s && %s", d, cmdline);
	char *bare_out = tu_sh_out(d);
	int traced = tu_sh(d, NULL, NULL,
			   "cd %s && %s record -q -o %s/r.memprof -- %s", d,
			   TU_MEMPROF, d, cmdline);
	char *traced_out = tu_sh_out(d);
	cr_expect_eq(traced, bare, "%s: status %d under memprof, %d bare",
		     cmdline, traced, bare);
	cr_expect_str_eq(traced_out, bare_out, "%s: output differs", cmdline);
	char *snap = tu_path(d, "r.memprof");
	struct mp_snapshot *s;
	struct mp_errinfo ei;
	cr_expect_eq(mp_snapshot_open(snap, &s, &ei), MP_OK, "%s: %s", cmdline,
		     ei.msg);
	cr_expect(s->meta.totals.allocs > 0);
	cr_expect(s->has_symbols);
	mp_snapshot_free(s);
}

Test(cli, python3_runs_unchanged)
{
	same_as_bare("python3 -c 'import json, sys; "
		     "print(len(json.dumps([str(i) for i in range(50000)]))); "
		     "sys.exit(4)'");
}

Test(cli, sqlite3_runs_unchanged)
{
	same_as_bare("sqlite3 :memory: 'create table t(x, y); "
		     "insert into t select value, hex(value) from "
		     "generate_series(1, 5000); create index i on t(y); "
		     "select count(*), sum(x) from t;'");
}

Test(cli, sh_runs_unchanged)
{
	same_as_bare("sh -c 'for i in 1 2 3; do echo line $i; done | sort -r; "
		     "exit 7'");
}

Test(cli, record_default_output_name_is_prog_pid)
{
	char *d = tu_tmpdir();
	cr_assert_eq(tu_sh(d, NULL, NULL, "cd %s && %s record -q %s", d,
			   TU_MEMPROF, TU_HELPER("alloc_c")),
		     0);
	cr_expect_eq(
		tu_sh(d, NULL, NULL,
		      "ls %s | grep -Ex 'memprof\\.alloc_c\\.[0-9]+\\.memprof'",
		      d),
		0);
}

Test(cli, record_summary_goes_to_stderr)
{
	char *d = tu_tmpdir();
	cr_assert_eq(tu_sh(d, NULL, NULL, "%s record -o %s/s.memprof %s",
			   TU_MEMPROF, d, TU_HELPER("alloc_c")),
		     0);
	char *err = tu_sh_err(d), *out = tu_sh_out(d);
	cr_expect_str_eq(out, "alloc_c done\n");
	cr_expect(strstr(err, "memprof: 46 allocations") != NULL, "%s", err);
	cr_expect(strstr(err, "9227 B live in 22 blocks") != NULL, "%s", err);
	cr_expect(strstr(err, "s.memprof") != NULL, "%s", err);
}

Test(cli, symbols_are_embedded_and_survive_removing_the_binary)
{
	char *d = tu_tmpdir();
	cr_assert_eq(tu_sh(d, NULL, NULL,
			   "cp %s %s/prog && %s record -q -o %s/e.memprof "
			   "%s/prog && rm %s/prog",
			   TU_HELPER("alloc_c"), d, TU_MEMPROF, d, d, d),
		     0);
	cr_assert_eq(tu_sh(d, NULL, NULL,
			   "%s top --by function -n 0 %s/e.memprof", TU_MEMPROF,
			   d),
		     0);
	char *out = tu_sh_out(d);
	cr_expect(strstr(out, "site_realloc") != NULL, "%s", out);
	cr_expect(strstr(out, "site_calloc") != NULL, "%s", out);
}

/*
 * The symbol store: a first record writes one file per module it read DWARF
 * for (the program: built with -g), named by build-id; a second record of
 * the same program reads them and symbolizes to the same stacks. "off"
 * writes nothing.
 */
Test(cli, record_keeps_symbols_by_build_id_and_reuses_them)
{
	char *d = tu_tmpdir();
	for (int i = 1; i <= 2; i++)
		cr_assert_eq(tu_sh(d, NULL, NULL,
				   "MEMPROF_SYMBOL_CACHE=%s/store %s record -q "
				   "-o %s/r%d.memprof %s && %s top -n 0 "
				   "%s/r%d.memprof | sed 1d > %s/top%d",
				   d, TU_MEMPROF, d, i, TU_HELPER("alloc_c"),
				   TU_MEMPROF, d, i, d, i),
			     0);
	cr_assert_eq(
		tu_sh(d, NULL, NULL,
		      "id=$(readelf -n %s | sed -n 's/.*Build ID: //p') "
		      "&& test -s %s/store/$id.sym && cmp %s/top1 %s/top2 "
		      "&& grep -q 'alloc_c.c:[0-9]* in site_calloc' %s/top2",
		      TU_HELPER("alloc_c"), d, d, d, d),
		0, "%s", tu_sh_err(d));
	cr_assert_eq(tu_sh(d, NULL, NULL,
			   "MEMPROF_SYMBOL_CACHE=off HOME=%s/home "
			   "XDG_CACHE_HOME=%s/xdg %s record -q -o %s/o.memprof "
			   "%s && test ! -e %s/home && test ! -e %s/xdg",
			   d, d, TU_MEMPROF, d, TU_HELPER("alloc_c"), d, d),
		     0);
	/* Unset, it goes under $XDG_CACHE_HOME. */
	cr_assert_eq(tu_sh(d, NULL, NULL,
			   "unset MEMPROF_SYMBOL_CACHE; XDG_CACHE_HOME=%s/xdg "
			   "%s record -q -o %s/x.memprof %s && "
			   "ls %s/xdg/memprof/symbols/*.sym",
			   d, TU_MEMPROF, d, TU_HELPER("alloc_c"), d),
		     0);
}

/* Checks top --json against DESIGN §7 with Python's json module. */
Test(cli, top_json_follows_the_contract)
{
	char *d = tu_tmpdir();
	cr_assert_eq(tu_sh(d, NULL, NULL, "%s record -q -o %s/j.memprof %s",
			   TU_MEMPROF, d, TU_HELPER("alloc_c")),
		     0);
	const char *py =
		"import json, sys\n"
		"d = json.load(sys.stdin)\n"
		"t = d['totals']\n"
		"assert set(t) == {'live_bytes','live_blocks','peak_bytes',"
		"'allocs','frees','alloc_bytes'}, t\n"
		"assert t['live_bytes'] == 9227 and t['live_blocks'] == 22, t\n"
		"assert t['allocs'] == 46 and t['frees'] == 24, t\n"
		"assert d['group_by'] == 'traceback'\n"
		"e = d['entries']\n"
		"assert len(e) == 3\n"
		"for x in e:\n"
		"    assert "
		"{'bytes','blocks','allocs','alloc_bytes','peak_bytes',"
		"'frames'} <= set(x), x\n"
		"    for f in x['frames']:\n"
		"        assert set(f) == {'function','file','line','module',"
		"'address'}, f\n"
		"        assert f['address'].startswith('0x')\n"
		"top = e[0]\n"
		"assert top['bytes'] == 5000 and top['blocks'] == 1, top\n"
		"f0 = top['frames'][0]\n"
		"assert f0['function'] == 'site_peak', f0\n"
		"assert f0['file'].endswith('alloc_c.c') and f0['line'] > 0, "
		"f0\n"
		"assert top['frames'][1]['function'] == 'main'\n"
		"assert f0['module'].endswith('alloc_c')\n"
		"print('ok')\n";
	char *pyf = tu_path(d, "check.py");
	FILE *f = fopen(pyf, "w");
	fputs(py, f);
	fclose(f);
	int st = tu_sh(
		d, NULL, NULL,
		"%s top --json --by traceback -n 3 %s/j.memprof | python3 %s",
		TU_MEMPROF, d, pyf);
	cr_expect_eq(st, 0, "%s", tu_sh_err(d));
}

Test(cli, top_by_function_lists_sites_in_order)
{
	char *d = tu_tmpdir();
	cr_assert_eq(tu_sh(d, NULL, NULL, "%s record -q -o %s/f.memprof %s",
			   TU_MEMPROF, d, TU_HELPER("alloc_c")),
		     0);
	cr_assert_eq(tu_sh(d, NULL, NULL,
			   "%s top --by function -n 4 %s/f.memprof | "
			   "grep -o '^#[0-9]: [a-z_]*' ",
			   TU_MEMPROF, d),
		     0);
	/* 5000 (site_peak), then 1227 (site_aligned), then the 1000s tie on
	 * bytes: 10 blocks (site_malloc) before 5 before 1. */
	cr_expect_str_eq(tu_sh_out(d), "#1: site_peak\n#2: site_aligned\n"
				       "#3: site_malloc\n#4: site_calloc\n");
}

Test(cli, info_json_has_the_metadata)
{
	char *d = tu_tmpdir();
	cr_assert_eq(tu_sh(d, NULL, NULL, "%s record -q -o %s/i.memprof %s x",
			   TU_MEMPROF, d, TU_HELPER("alloc_c")),
		     3);
	cr_assert_eq(tu_sh(d, NULL, NULL,
			   "%s info --json %s/i.memprof | python3 -c \"import "
			   "json,sys; d=json.load(sys.stdin); "
			   "assert d['argv'][1:] == ['x'], d; "
			   "assert d['exe'].endswith('alloc_c'); "
			   "assert d['trigger'] == 'exit'; "
			   "assert d['symbolized'] is True; "
			   "assert d['totals']['peak_bytes'] == 10227, d\"",
			   TU_MEMPROF, d),
		     0, "%s", tu_sh_err(d));
}

Test(cli, bad_input_gives_status_2_and_one_line)
{
	char *d = tu_tmpdir();
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s top %s/missing.memprof",
			   TU_MEMPROF, d),
		     2);
	cr_expect(strstr(tu_sh_err(d), "memprof: cannot read") != NULL);
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "echo hello > %s/g.memprof; %s top %s/g.memprof", d,
			   TU_MEMPROF, d),
		     2);
	cr_expect(strstr(tu_sh_err(d), "not a memprof snapshot") != NULL, "%s",
		  tu_sh_err(d));
	cr_assert_eq(tu_sh(d, NULL, NULL, "%s record -q -o %s/t.memprof %s",
			   TU_MEMPROF, d, TU_HELPER("alloc_c")),
		     0);
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "head -c 300 %s/t.memprof > %s/cut.memprof; "
			   "%s info %s/cut.memprof",
			   d, d, TU_MEMPROF, d),
		     2);
	char *err = tu_sh_err(d);
	cr_expect(strstr(err, "truncated") != NULL, "%s", err);
	cr_expect(strchr(err, '\n') == err + strlen(err) - 1,
		  "not one line: %s", err);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s top --by nonsense %s/t.memprof",
			   TU_MEMPROF, d),
		     2);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s top --frobnicate %s/t.memprof",
			   TU_MEMPROF, d),
		     2);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s nosuchcommand", TU_MEMPROF), 2);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s", TU_MEMPROF), 2);
}

Test(cli, help_exits_0)
{
	char *d = tu_tmpdir();
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s --help", TU_MEMPROF), 0);
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s record --help | grep -q -- --depth", TU_MEMPROF),
		     0);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s top --help | grep -q -- --sort",
			   TU_MEMPROF),
		     0);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s help info | grep -q -- --json",
			   TU_MEMPROF),
		     0);
}

/* Every command 'memprof --help' lists has its help (both ways of asking)
 * and a man page that renders without a warning (when groff is here). */
Test(cli, every_command_has_help_and_a_man_page)
{
	char *d = tu_tmpdir();
	cr_assert_eq(
		tu_sh(d, NULL, NULL,
		      "cmds=$(%s --help | sed -n 's/^  \\([a-z]*\\) "
		      ".*/\\1/p'); "
		      "[ $(echo $cmds | wc -w) -ge 10 ] || exit 10; "
		      "for c in $cmds; do "
		      "  %s help $c | head -n 1 | grep -q \"^usage: memprof "
		      "$c\" "
		      "    || { echo \"help $c\" >&2; exit 11; }; "
		      "  %s $c --help | head -n 1 | grep -q \"^usage: memprof "
		      "$c\" "
		      "    || { echo \"$c --help\" >&2; exit 12; }; "
		      "  [ -f %s/man/memprof-$c.1 ] "
		      "    || { echo \"no man page for $c\" >&2; exit 13; }; "
		      "  if command -v groff >/dev/null; then "
		      "    w=$(groff -man -ww -z %s/man/memprof-$c.1 2>&1); "
		      "    [ -z \"$w\" ] || { echo \"$c: $w\" >&2; exit 14; }; "
		      "  fi; "
		      "done",
		      TU_MEMPROF, TU_MEMPROF, TU_MEMPROF, MP_SOURCE_DIR,
		      MP_SOURCE_DIR),
		0, "%s", tu_sh_err(d));
}

Test(cli, record_errors_are_clear)
{
	char *d = tu_tmpdir();
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s record", TU_MEMPROF), 2);
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s record -q -o %s/n.memprof /no/such/program",
			   TU_MEMPROF, d),
		     127);
	cr_expect(strstr(tu_sh_err(d),
			 "memprof: cannot run '/no/such/program'") != NULL,
		  "%s", tu_sh_err(d));
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s record -o /no/such/dir/x.memprof %s", TU_MEMPROF,
			   TU_HELPER("alloc_c")),
		     2);
	cr_expect(strstr(tu_sh_err(d),
			 "cannot write '/no/such/dir/x.memprof'") != NULL,
		  "%s", tu_sh_err(d));
	cr_expect_eq(
		tu_sh(d, NULL, NULL, "%s record --depth 0 true", TU_MEMPROF),
		2);
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s record --unwind magic true",
			   TU_MEMPROF),
		     2);
}

Test(cli, static_programs_are_refused_clearly)
{
	char *d = tu_tmpdir();
	int st = tu_sh(d, NULL, NULL,
		       "printf 'int main(void){return 0;}' > %s/s.c && "
		       "cc -static -o %s/static %s/s.c",
		       d, d, d);
	if (st != 0)
		cr_skip("no static libc to build a static program");
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s record -o %s/x.memprof %s/static",
			   TU_MEMPROF, d, d),
		     2);
	cr_expect(strstr(tu_sh_err(d), "statically linked") != NULL, "%s",
		  tu_sh_err(d));
}

Test(cli, memprof_preload_overrides_the_shim_location)
{
	char *d = tu_tmpdir();
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "MEMPROF_PRELOAD=/no/such.so %s record -q -o "
			   "%s/p.memprof true",
			   TU_MEMPROF, d),
		     2);
	cr_expect(strstr(tu_sh_err(d), "cannot find libmemprof.so") != NULL);
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "MEMPROF_PRELOAD=%s %s record -q -o %s/p.memprof %s",
			   TU_SHIM, TU_MEMPROF, d, TU_HELPER("alloc_c")),
		     0);
}

Test(cli, installed_memprof_finds_its_shim, .timeout = 240)
{
	char *d = tu_tmpdir();
	cr_assert_eq(tu_sh(d, NULL, NULL,
			   "make -s -C %s B=%s install PREFIX=%s/inst",
			   MP_SOURCE_DIR, MP_BUILD_DIR, d),
		     0, "%s", tu_sh_err(d));
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "test -f %s/inst/lib/memprof/libmemprof.so && "
			   "test -f %s/inst/share/man/man1/memprof-record.1 && "
			   "test -f %s/inst/share/man/man3/memprof.3 && "
			   "test -f %s/inst/include/memprof.h",
			   d, d, d, d),
		     0);
	cr_expect_eq(
		tu_sh(d, NULL, NULL,
		      "%s/inst/bin/memprof record -q -o %s/i.memprof %s && "
		      "%s/inst/bin/memprof top %s/i.memprof",
		      d, d, TU_HELPER("alloc_c"), d, d),
		0, "%s", tu_sh_err(d));
	cr_expect(strstr(tu_sh_out(d), "site_peak") != NULL);
}
