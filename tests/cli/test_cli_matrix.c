/*
 * test_cli_matrix.c - `memprof record` on programs it does not control:
 * how they end (fatal signals, exit signals), a full disk, a library
 * unloaded before the end, and programs no shim can be preloaded into
 * (static, set-user-ID, set-group-ID). The check record runs first,
 * cli_check_traceable (cmd/cli_target.c), is linked in here and compared
 * with what the loader really does.
 */
#include <grp.h>
#include <pwd.h>

#include "../../cmd/cli_target.c"
#include "testutil.h"

TestSuite(cli_matrix, .timeout = 120);

/* cli_target.c reports through this; the CLI's is in cmd/memprof.c. */
int cli_error(const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	vfprintf(stderr, f, ap);
	va_end(ap);
	return MP_EXIT_USAGE;
}

/* Whether record knows the options of the robustness work (the test of
 * a record that predates them is skipped, not failed). */
static bool record_has_exit_signals(void)
{
	char *d = tu_tmpdir();
	return tu_sh(d, NULL, NULL,
		     "%s record --help | grep -q -- --exit-signals",
		     TU_MEMPROF) == 0;
}

/* ---- how programs end ------------------------------------------------ */

Test(cli_matrix, fatal_signals_give_128_plus_signal_and_say_so)
{
	static const struct {
		const char *mode;
		int sig;
	} cases[] = {{"segv", 11}, {"abort", 6}, {"kill", 9}};
	for (size_t i = 0; i < 3; i++) {
		char *d = tu_tmpdir();
		int st = tu_sh(d, NULL, NULL, "%s record -o %s/f.memprof %s %s",
			       TU_MEMPROF, d, TU_HELPER("mx_exit"),
			       cases[i].mode);
		cr_expect_eq(st, 128 + cases[i].sig, "%s: %d", cases[i].mode,
			     st);
		cr_expect_str_eq(tu_sh_out(d), "started\n");
		char *want = tu_fmt(
			"memprof: no snapshot was written to '%s/f.memprof': "
			"the program was killed by signal %d (",
			d, cases[i].sig);
		char *err = tu_sh_err(d);
		cr_expect(strstr(err, want) != NULL, "%s", err);
	}
}

Test(cli_matrix, exit_signals_write_the_snapshot_and_keep_the_signal)
{
	if (!record_has_exit_signals())
		cr_skip("record has no --exit-signals yet");
	char *d = tu_tmpdir();
	int st = tu_sh(d, NULL, NULL,
		       "%s record --exit-signals TERM,INT -o %s/t.memprof %s "
		       "term",
		       TU_MEMPROF, d, TU_HELPER("mx_exit"));
	cr_expect_eq(st, 128 + 15);
	char *err = tu_sh_err(d);
	cr_expect(strstr(err, "was killed by signal 15") != NULL, "%s", err);
	cr_expect(strstr(err, "wrote ") != NULL, "%s", err);
	cr_assert_eq(tu_sh(d, NULL, NULL, "%s top --by function %s/t.memprof",
			   TU_MEMPROF, d),
		     0);
	cr_expect(strstr(tu_sh_out(d), "site_exit") != NULL, "%s",
		  tu_sh_out(d));
	cr_expect_eq(tu_sh(d, NULL, NULL,
			   "%s record --exit-signals NOPE -o %s/u.memprof %s",
			   TU_MEMPROF, d, TU_HELPER("alloc_c")),
		     2);
}

/* ---- a full disk -------------------------------------------------------- */

Test(cli_matrix, full_disk_keeps_the_status_and_says_what_happened)
{
	char *d = tu_tmpdir();
	/* The limit is the program's (record writes nothing itself). */
	int st = tu_sh(d, NULL, NULL,
		       "ulimit -f 1; exec %s record -o %s/f.memprof %s x",
		       TU_MEMPROF, d, TU_HELPER("alloc_c"));
	cr_expect_eq(st, 3);
	cr_expect_str_eq(tu_sh_out(d), "alloc_c done\n");
	char *err = tu_sh_err(d);
	cr_expect(strstr(err, tu_fmt("memprof: cannot write '%s/f.memprof': "
				     "file too large\n",
				     d)) != NULL,
		  "%s", err);
	cr_expect(strstr(err, "no snapshot was written") != NULL, "%s", err);
	cr_expect_eq(tu_sh(d, NULL, NULL, "ls %s | grep -c memprof", d), 1,
		     "files left: %s", tu_sh_out(d));
}

/* ---- a library unloaded before the end -------------------------------- */

Test(cli_matrix, top_names_the_functions_of_a_dlclosed_library)
{
	char *d = tu_tmpdir();
	cr_assert_eq(tu_sh(d, NULL, NULL, "%s record -q -o %s/dl.memprof %s",
			   TU_MEMPROF, d, TU_HELPER("mx_dlopen")),
		     0, "%s", tu_sh_err(d));
	cr_assert_eq(tu_sh(d, NULL, NULL, "%s top --by line -n 1 %s/dl.memprof",
			   TU_MEMPROF, d),
		     0);
	char *out = tu_sh_out(d);
	cr_expect(strstr(out, "#1: mx_lib.c:") != NULL, "%s", out);
	cr_expect(strstr(out, " in mx_lib_alloc: 12.7 KiB in 3 blocks") != NULL,
		  "%s", out);
}

/* ---- programs no shim can be preloaded into -------------------------- */

/* A copy of alloc_c in dir, with owner, group and mode as given. */
static char *program_copy(const char *dir, const char *name, uid_t uid,
			  gid_t gid, mode_t mode)
{
	char *p = tu_path(dir, name);
	cr_assert_eq(
		tu_sh(dir, NULL, NULL, "cp %s %s", TU_HELPER("alloc_c"), p), 0);
	if (chown(p, uid, gid) != 0 || chmod(p, mode) != 0)
		return NULL;
	return p;
}

/* Whether running path under the shim by hand wrote a snapshot. */
static bool loader_traces(const char *dir, const char *path)
{
	char *snap = tu_path(dir, "by-hand.memprof");
	unlink(snap);
	tu_sh(dir, NULL, NULL, "LD_PRELOAD=%s MEMPROF_OUTPUT=%s %s", TU_SHIM,
	      snap, path);
	return access(snap, F_OK) == 0;
}

Test(cli_matrix, static_programs_are_refused)
{
	char *d = tu_tmpdir();
	if (tu_sh(d, NULL, NULL,
		  "printf 'int main(void){return 0;}' > %s/s.c && "
		  "cc -static -o %s/static %s/s.c",
		  d, d, d) != 0)
		cr_skip("no static libc to build a static program");
	char buf[512];
	char *p = tu_path(d, "static");
	const char *why = cli_untraceable_reason(p, buf, sizeof(buf));
	cr_assert_not_null(why);
	cr_expect_str_eq(why, "it is statically linked, so no shim can be "
			      "preloaded into it");
	cr_expect(!loader_traces(d, p));
	cr_expect_eq(tu_sh(d, NULL, NULL, "%s record -o %s/x.memprof %s",
			   TU_MEMPROF, d, p),
		     2);
	cr_expect(strstr(tu_sh_err(d),
			 tu_fmt("memprof: cannot trace '%s': it is statically "
				"linked",
				p)) != NULL,
		  "%s", tu_sh_err(d));
	cr_expect_eq(tu_sh(d, NULL, NULL, "ls %s | grep -c x.memprof", d), 1);
}

Test(cli_matrix, dynamic_programs_and_scripts_are_traceable)
{
	char buf[512];
	cr_expect_null(
		cli_untraceable_reason(TU_HELPER("alloc_c"), buf, sizeof(buf)));
	cr_expect_null(cli_untraceable_reason(MP_SOURCE_DIR "/tests/bench/"
							    "run.sh",
					      buf, sizeof(buf)));
	cr_expect_null(
		cli_untraceable_reason("/no/such/file", buf, sizeof(buf)));
}

/*
 * Set-ID programs, checked against the loader itself: the reason is
 * given exactly when the shim, preloaded by hand, writes nothing. Root
 * can make them; others skip. Root running a set-user-ID root program
 * changes no identity, and is traced.
 */
Test(cli_matrix, set_id_programs_are_refused_when_the_loader_ignores_us)
{
	if (getuid() != 0)
		cr_skip("making set-ID programs of other users needs root");
	char *d = tu_tmpdir();
	chmod(d, 0755);
	const struct passwd *nobody = getpwnam("nobody");
	if (!nobody)
		cr_skip("no user nobody");
	const struct {
		const char *name;
		uid_t uid;
		gid_t gid;
		mode_t mode;
		const char *reason; /* NULL: traceable */
	} cases[] = {
		{"suid-other", nobody->pw_uid, 0, 04755,
		 "it is set-user-ID nobody, so the dynamic loader runs it in "
		 "secure-execution mode and ignores LD_PRELOAD; run memprof as "
		 "nobody, or trace a copy without the set-user-ID bit"},
		{"sgid-other", 0, nobody->pw_gid, 02755, "it is set-group-ID "},
		{"suid-root", 0, 0, 04755, NULL},
		{"sgid-no-exec", 0, nobody->pw_gid, 02745, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = program_copy(d, cases[i].name, cases[i].uid,
				       cases[i].gid, cases[i].mode);
		if (!p)
			cr_skip("cannot change owners here");
		char buf[512];
		const char *why = cli_untraceable_reason(p, buf, sizeof(buf));
		bool traced = loader_traces(d, p);
		cr_expect_eq(why == NULL, traced,
			     "%s: loader %s, check says %s", cases[i].name,
			     traced ? "traces" : "ignores the shim",
			     why ? why : "traceable");
		if (cases[i].reason && why)
			cr_expect(!strncmp(why, cases[i].reason,
					   strlen(cases[i].reason)),
				  "%s: %s", cases[i].name, why);
		if (!record_has_exit_signals())
			continue; /* record does not call the check yet */
		int st =
			tu_sh(d, NULL, NULL, "%s record -q -o %s/%s.memprof %s",
			      TU_MEMPROF, d, cases[i].name, p);
		if (why) {
			cr_expect_eq(st, 2, "%s", cases[i].name);
			cr_expect(strstr(tu_sh_err(d), "cannot trace") != NULL,
				  "%s", tu_sh_err(d));
		} else {
			cr_expect_eq(st, 0, "%s: %s", cases[i].name,
				     tu_sh_err(d));
		}
	}
}
