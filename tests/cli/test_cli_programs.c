/*
 * test_cli_programs.c - real programs nobody here wrote, from Debian, run
 * bare and under 'memprof record': the same stdout, stderr, exit status
 * and files written, byte for byte, and a snapshot that names the
 * program's own binary and its libraries' functions (top --json, leaks
 * --json, info all read it).
 *
 * Programs are run by their absolute Debian paths (a PATH entry such as
 * pyenv's python3 is a shell script that execs another python, which
 * memprof would then trace), each case skipped with its package's name
 * when the program is missing. Nothing is installed here.
 * test_cli.c has the one-line transparency checks; these are the long
 * form, with scripts, standard input, errors, forked children and the
 * files the programs write.
 */
#include <glob.h>
#include <limits.h>

#include "testutil.h"

TestSuite(programs, .timeout = 60);

/* One test's directory, and the environment every program there gets. */
struct ctx {
	char *dir;
	char *home;
	char *ceiling;
	const char *env[32];
};

/* Set (K=V) or unset (K) in the child, on top of the inherited environment:
 * the C locale, UTC, an empty home, no system or global git config, git
 * identity and dates fixed, no pager, no hash randomisation, nothing
 * inherited from a git hook (GIT_DIR, GIT_INDEX_FILE ...), no debuginfod
 * lookups. */
static const char *const fixed_env[] = {
	"LC_ALL=C",
	"LANG",
	"LANGUAGE",
	"TZ=UTC",
	"GIT_CONFIG_NOSYSTEM=1",
	"GIT_CONFIG_GLOBAL=/dev/null",
	"GIT_AUTHOR_NAME=Ada Lovelace",
	"GIT_AUTHOR_EMAIL=ada@example.org",
	"GIT_AUTHOR_DATE=2020-02-02T12:00:00+00:00",
	"GIT_COMMITTER_NAME=Ada Lovelace",
	"GIT_COMMITTER_EMAIL=ada@example.org",
	"GIT_COMMITTER_DATE=2020-02-02T12:00:00+00:00",
	"GIT_PAGER=cat",
	"PAGER=cat",
	"GIT_TERMINAL_PROMPT=0",
	"GIT_DIR",
	"GIT_WORK_TREE",
	"GIT_INDEX_FILE",
	"GIT_OBJECT_DIRECTORY",
	"GIT_CONFIG_PARAMETERS",
	"GIT_CONFIG_COUNT",
	"PYTHONHASHSEED=0",
	"PYTHONDONTWRITEBYTECODE=1",
	"PYTHONSTARTUP",
	"PYTHONPATH",
	"PYTHONHOME",
	"GCC_COLORS",
	"DEBUGINFOD_URLS",
	NULL,
};

static struct ctx *ctx_new(void)
{
	struct ctx *c = calloc(1, sizeof(*c));
	cr_assert_not_null(c);
	c->dir = tu_tmpdir();
	char *h = tu_path(c->dir, "home");
	cr_assert_eq(mkdir(h, 0755), 0);
	cr_assert(asprintf(&c->home, "HOME=%s", h) > 0);
	cr_assert(asprintf(&c->ceiling, "GIT_CEILING_DIRECTORIES=%s", c->dir) >
		  0);
	free(h);
	size_t n = 0;
	for (; fixed_env[n]; n++)
		c->env[n] = fixed_env[n];
	c->env[n++] = c->home;
	c->env[n++] = c->ceiling;
	c->env[n] = NULL;
	return c;
}

/* The program at path, or the test is skipped. */
static const char *need(const char *path, const char *package)
{
	if (access(path, X_OK) != 0)
		cr_skip_test("%s is not installed (Debian package %s)", path,
			     package);
	return path;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "cannot write %s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

/*
 * Runs argv in cwd with c's environment, stdin from in (NULL: /dev/null),
 * stdout and stderr to out and err. Returns the exit status, or 128 +
 * signal.
 */
static int run_in(const struct ctx *c, const char *cwd, const char *in,
		  const char *out, const char *err, char *const argv[])
{
	fflush(NULL);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		for (size_t i = 0; c->env[i]; i++) {
			if (strchr(c->env[i], '='))
				putenv((char *)c->env[i]);
			else
				unsetenv(c->env[i]);
		}
		int i0 = open(in ? in : "/dev/null", O_RDONLY);
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (i0 < 0 || o < 0 || e < 0 || chdir(cwd) != 0)
			_exit(126);
		dup2(i0, 0);
		dup2(o, 1);
		dup2(e, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path, size_t *len)
{
	char *s = tu_read(path, len);
	cr_assert_not_null(s, "cannot read %s", path);
	return s;
}

/* Whether files a and b hold the same bytes; says where they differ. */
static bool same_bytes(const char *what, const char *a, const char *b)
{
	size_t la, lb;
	char *x = slurp(a, &la), *y = slurp(b, &lb);
	size_t i = 0;
	while (i < la && i < lb && x[i] == y[i])
		i++;
	bool same = la == lb && i == la;
	cr_expect(same,
		  "%s differs under memprof at byte %zu (%zu bytes bare, %zu "
		  "traced)\n--- bare:\n%.2000s\n--- under memprof:\n%.2000s",
		  what, i, la, lb, x, y);
	free(x);
	free(y);
	return same;
}

/* The files of one run: DIR/TAG.bare.out and so on. */
static char *out_path(const struct ctx *c, const char *tag, const char *how,
		      const char *ext)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "%s/%s.%s.%s", c->dir, tag, how, ext) > 0);
	return p;
}

/*
 * Runs argv bare, then under 'memprof record -q [opts] -o SNAP --', in the
 * same directory with the same input and environment, and expects the
 * same stdout, stderr and exit status. Returns the status. Between the
 * runs, keep() (if not NULL) moves aside what the bare run wrote, so that
 * the traced run starts from the same state and the two outputs can be
 * compared.
 */
static int same_run(const struct ctx *c, const char *cwd, const char *tag,
		    const char *in, const char *snap, const char *const opts[],
		    char *const argv[], void (*keep)(const struct ctx *c))
{
	char *bo = out_path(c, tag, "bare", "out"),
	     *be = out_path(c, tag, "bare", "err"),
	     *to = out_path(c, tag, "traced", "out"),
	     *te = out_path(c, tag, "traced", "err");
	int bare = run_in(c, cwd, in, bo, be, argv);
	if (keep)
		keep(c);
	char *targv[64];
	size_t n = 0;
	targv[n++] = (char *)TU_MEMPROF;
	targv[n++] = (char *)"record";
	targv[n++] = (char *)"-q";
	for (size_t i = 0; opts && opts[i]; i++)
		targv[n++] = (char *)opts[i];
	targv[n++] = (char *)"-o";
	targv[n++] = (char *)snap;
	targv[n++] = (char *)"--";
	for (size_t i = 0; argv[i] && n < 63; i++)
		targv[n++] = argv[i];
	targv[n] = NULL;
	int traced = run_in(c, cwd, in, to, te, targv);
	cr_expect_eq(traced, bare, "%s (%s): status %d under memprof, %d bare",
		     tag, argv[0], traced, bare);
	same_bytes("stdout", bo, to);
	same_bytes("stderr", be, te);
	free(bo);
	free(be);
	free(to);
	free(te);
	return bare;
}

/* A function that the snapshot must name: in a module whose file name
 * starts with module, a function whose name starts with function. */
struct want {
	const char *module;
	const char *function;
};

/* Checks top --json and leaks --json of a snapshot with Python's parser:
 * totals and entries agree, some frame lies in the program's own
 * executable, and every wanted function is named. */
static const char check_json_py[] =
	"import json, sys\n"
	"top = json.load(open(sys.argv[1]))\n"
	"leaks = json.load(open(sys.argv[2]))\n"
	"exe = sys.argv[3]\n"
	"t = top['totals']\n"
	"assert t['allocs'] > 0 and t['alloc_bytes'] > 0, t\n"
	"assert t['frees'] <= t['allocs'], t\n"
	"e = top['entries']\n"
	"assert e and top['group_by'] == 'traceback', top['group_by']\n"
	"assert sum(x['blocks'] for x in e) == t['live_blocks'], t\n"
	"assert sum(x['bytes'] for x in e) == t['live_bytes'], t\n"
	"assert sum(x['allocs'] for x in e) == t['allocs'], t\n"
	"s = leaks['summary']\n"
	"assert sum(k['blocks'] for k in s.values()) == t['live_blocks'], s\n"
	"assert sum(k['bytes'] for k in s.values()) == t['live_bytes'], s\n"
	"frames = [f for x in e for f in x['frames']]\n"
	"own = [f for f in frames if f['module'] == exe]\n"
	"assert own, 'no frame in ' + exe\n"
	"def base(m):\n"
	"    return (m or '').rsplit('/', 1)[-1]\n"
	"for w in sys.argv[4:]:\n"
	"    mod, fn = w.split(':', 1)\n"
	"    hit = [f for f in frames if base(f['module']).startswith(mod)\n"
	"           and (f['function'] or '').startswith(fn)\n"
	"           and f['function']]\n"
	"    assert hit, 'no function %s* in a module %s*' % (fn, mod)\n";

/*
 * Checks a snapshot of program exe (its path as run): readable, symbolized,
 * of that executable, with allocations and consistent totals; top --json,
 * leaks --json and info read it; it names the wanted functions.
 */
static void check_snapshot(const struct ctx *c, const char *snap,
			   const char *exe, const struct want *want)
{
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {{0}};
	cr_assert_eq(mp_snapshot_open(snap, &s, &ei), MP_OK, "%s: %s", snap,
		     ei.msg);
	char real[PATH_MAX];
	cr_assert_not_null(realpath(exe, real));
	cr_expect(s->meta.exe && !strcmp(s->meta.exe, real),
		  "%s: the program is %s, not %s", snap, s->meta.exe, real);
	cr_expect(s->has_symbols, "%s: not symbolized", snap);
	cr_expect_str_eq(s->meta.trigger, "exit");
	const struct mp_totals *t = &s->meta.totals;
	cr_expect(t->allocs > 0 && t->alloc_bytes > 0, "%s: no allocations",
		  snap);
	cr_expect(t->frees <= t->allocs);
	uint64_t bytes = 0, blocks = 0;
	for (size_t i = 0; i < s->ntraces; i++) {
		bytes += s->traces[i].live_bytes;
		blocks += s->traces[i].live_blocks;
	}
	cr_expect_eq(bytes, t->live_bytes);
	cr_expect_eq(blocks, t->live_blocks);
	cr_expect(s->has_blocks && s->nblocks == t->live_blocks,
		  "%s: %zu blocks listed, %lu live", snap, s->nblocks,
		  (unsigned long)t->live_blocks);
	cr_expect(s->has_graph, "%s: no leak graph", snap);
	/* Every frame is in a known module, even in a library unloaded
	 * before the exit (ld unloads gcc's LTO plugin). */
	size_t lost = 0;
	for (size_t i = 0; i < s->nstacks; i++) {
		struct mp_resolved_frame *f = NULL;
		size_t nf = 0;
		cr_assert_eq(mp_stack_resolve(s, (uint32_t)i, NULL, &f, &nf),
			     MP_OK);
		for (size_t j = 0; j < nf; j++)
			lost += !f[j].module;
		free(f);
	}
	cr_expect_eq(lost, 0, "%s: %zu frames in no module", snap, lost);

	char *py = tu_path(c->dir, "check_json.py");
	char *top = tu_path(c->dir, "top.json");
	char *lk = tu_path(c->dir, "leaks.json");
	char *err = tu_path(c->dir, "check.err");
	char *top_argv[] = {
		(char *)TU_MEMPROF, (char *)"top",	 (char *)"--json",
		(char *)"--by",	    (char *)"traceback", (char *)"-n",
		(char *)"0",	    (char *)snap,	 NULL};
	cr_expect_eq(run_in(c, c->dir, NULL, top, err, top_argv), 0,
		     "memprof top --json %s failed", snap);
	char *leaks_argv[] = {(char *)TU_MEMPROF, (char *)"leaks",
			      (char *)"--json", (char *)snap, NULL};
	cr_expect_eq(run_in(c, c->dir, NULL, lk, err, leaks_argv), 0,
		     "memprof leaks --json %s failed", snap);
	char *info = tu_path(c->dir, "info.out");
	char *info_argv[] = {(char *)TU_MEMPROF, (char *)"info", (char *)snap,
			     NULL};
	cr_expect_eq(run_in(c, c->dir, NULL, info, err, info_argv), 0);
	char *lt = tu_path(c->dir, "leaks.out");
	char *lt_argv[] = {(char *)TU_MEMPROF, (char *)"leaks", (char *)snap,
			   NULL};
	cr_expect_eq(run_in(c, c->dir, NULL, lt, err, lt_argv), 0);
	char *text = slurp(lt, NULL);
	cr_expect(strstr(text, "LEAK SUMMARY:") != NULL, "%s", text);
	free(text);
	free(lt);

	write_file(py, check_json_py);
	/* Debian's python3 when there is one (a wrapper that PATH finds may
	 * need the real HOME), else whichever PATH finds. */
	char *pargv[16];
	size_t n = 0;
	if (access("/usr/bin/python3", X_OK) == 0) {
		pargv[n++] = (char *)"/usr/bin/python3";
	} else {
		pargv[n++] = (char *)"/usr/bin/env";
		pargv[n++] = (char *)"python3";
	}
	pargv[n++] = py;
	pargv[n++] = top;
	pargv[n++] = lk;
	pargv[n++] = s->meta.exe;
	char *args[8] = {0};
	for (size_t i = 0; want && i < 8 && want[i].module; i++) {
		cr_assert(asprintf(&args[i], "%s:%s", want[i].module,
				   want[i].function) > 0);
		pargv[n++] = args[i];
	}
	pargv[n] = NULL;
	char *out = tu_path(c->dir, "check.out");
	int st = run_in(c, c->dir, NULL, out, err, pargv);
	char *why = slurp(err, NULL);
	cr_expect_eq(st, 0, "%s: %s", snap, why);
	free(why);
	for (size_t i = 0; i < 8; i++)
		free(args[i]);
	free(out);
	free(info);
	free(py);
	free(top);
	free(lk);
	free(err);
	mp_snapshot_free(s);
}

/* The FILE.pidPID.memprof files next to snap (forked children's). */
static size_t children(const char *snap, glob_t *g)
{
	char *pat = NULL;
	size_t l = strlen(snap) - strlen(".memprof");
	cr_assert(asprintf(&pat, "%.*s.pid*.memprof", (int)l, snap) > 0);
	int r = glob(pat, 0, NULL, g);
	free(pat);
	return r == 0 ? g->gl_pathc : 0;
}

/* ---- python3 --------------------------------------------------------- */

/* Dicts, lists, a class, a generator, formatting, a JSON round trip and a
 * caught exception; big enough that lists and dicts come from malloc
 * (pymalloc keeps blocks up to 512 bytes itself). */
static const char python_work[] =
	"import json\n"
	"\n"
	"class Point:\n"
	"    def __init__(self, x, y):\n"
	"        self.x, self.y = x, y\n"
	"    def __repr__(self):\n"
	"        return 'Point(%d, %d)' % (self.x, self.y)\n"
	"    def norm1(self):\n"
	"        return abs(self.x) + abs(self.y)\n"
	"\n"
	"def squares(n):\n"
	"    for i in range(n):\n"
	"        yield i * i\n"
	"\n"
	"table = {'key%05d' % i: [i, str(i) * 3, {'n': i}] for i in "
	"range(20000)}\n"
	"numbers = list(range(200000))\n"
	"points = [Point(i, -2 * i) for i in range(5000)]\n"
	"text = ','.join('{}:{:x}'.format(i, i) for i in range(20000))\n"
	"doc = json.dumps({'table': table, 'points': [repr(p) for p in "
	"points[:100]]}, sort_keys=True)\n"
	"back = json.loads(doc)\n"
	"try:\n"
	"    table['nope']\n"
	"except KeyError as e:\n"
	"    caught = repr(e)\n"
	"print(len(table), sum(numbers), sum(squares(1000)))\n"
	"print(points[4999], sum(p.norm1() for p in points), len(text), "
	"text[-16:])\n"
	"print(len(doc), back['table']['key00042'], caught)\n"
	"print(f'{\"right\":>10}|{\"left\":<6}|{3.14159:^9.3f}|{255:#06x}')\n"
	"print(sorted(set(str(i % 7) for i in numbers))[:3], "
	"dict(zip('abc', range(3))))\n";

Test(programs, python3_runs_a_script_unchanged)
{
	const char *py = need("/usr/bin/python3", "python3");
	struct ctx *c = ctx_new();
	char *script = tu_path(c->dir, "work.py");
	write_file(script, python_work);
	char *snap = tu_path(c->dir, "py.memprof");
	char *argv[] = {(char *)py, (char *)"-s", (char *)"work.py", NULL};
	cr_expect_eq(same_run(c, c->dir, "work", NULL, snap, NULL, argv, NULL),
		     0);
	char *out = tu_path(c->dir, "work.bare.out");
	char *text = slurp(out, NULL);
	cr_expect_str_eq(text,
			 "20000 19999900000 332833500\n"
			 "Point(4999, -9998) 37492500 204521 :4e1e,19999:4e1f\n"
			 "1026307 [42, '424242', {'n': 42}] KeyError('nope')\n"
			 "     right|left  |  3.142  |0x00ff\n"
			 "['0', '1', '2'] {'a': 0, 'b': 1, 'c': 2}\n");
	const struct want want[] = {{"python3", "Py"}, {NULL, NULL}};
	check_snapshot(c, snap, py, want);
	/* The list of 200000 objects alone is 1.6 MB from malloc. */
	struct mp_snapshot *s = NULL;
	cr_assert_eq(mp_snapshot_open(snap, &s, NULL), MP_OK);
	cr_expect(s->meta.totals.alloc_bytes >= 200000 * 8, "%lu bytes",
		  (unsigned long)s->meta.totals.alloc_bytes);
	cr_expect(s->meta.totals.peak_bytes >= 200000 * 8);
	mp_snapshot_free(s);
}

Test(programs, python3_exit_status_and_traceback_unchanged)
{
	const char *py = need("/usr/bin/python3", "python3");
	struct ctx *c = ctx_new();
	char *s1 = tu_path(c->dir, "exit3.py"),
	     *s2 = tu_path(c->dir, "raise.py");
	write_file(s1, "import sys\n"
		       "words = ['w%d' % i for i in range(1000)]\n"
		       "print(len(words), words[-1])\n"
		       "sys.stdout.flush()\n"
		       "print('leaving with 3', file=sys.stderr)\n"
		       "sys.exit(3)\n");
	write_file(s2, "def parse(s):\n"
		       "    return int(s)\n"
		       "cache = {i: bytes(100) for i in range(100)}\n"
		       "print(len(cache))\n"
		       "parse('12x')\n");
	char *snap1 = tu_path(c->dir, "exit3.memprof");
	char *argv1[] = {(char *)py, (char *)"-s", (char *)"exit3.py", NULL};
	cr_expect_eq(
		same_run(c, c->dir, "exit3", NULL, snap1, NULL, argv1, NULL),
		3);
	check_snapshot(c, snap1, py, NULL);
	/* An uncaught exception: status 1, the traceback on stderr. */
	char *snap2 = tu_path(c->dir, "raise.memprof");
	char *argv2[] = {(char *)py, (char *)"-s", (char *)"raise.py", NULL};
	cr_expect_eq(
		same_run(c, c->dir, "raise", NULL, snap2, NULL, argv2, NULL),
		1);
	char *err = tu_path(c->dir, "raise.bare.err");
	char *text = slurp(err, NULL);
	cr_expect(strstr(text, "ValueError: invalid literal for int() with "
			       "base 10: '12x'\n") != NULL,
		  "%s", text);
	check_snapshot(c, snap2, py, NULL);
}

/* ---- sqlite3 --------------------------------------------------------- */

/* Recursive CTE, aggregates, a window function, JSON, an index, then an
 * error (status 1, one line on stderr). */
static const char sqlite_stdin[] =
	"create table t(id integer primary key, name text, grp int);\n"
	"with recursive n(i) as (select 1 union all select i + 1 from n "
	"where i < 20000)\n"
	"insert into t select i, printf('name-%05d', i), i % 17 from n;\n"
	"create index t_name on t(name);\n"
	"select grp, count(*), sum(id), max(name) from t group by grp "
	"order by grp limit 5;\n"
	"select name, rank() over (partition by grp order by id desc) "
	"from t where id between 100 and 104 order by id;\n"
	"select json_group_array(json_object('id', id, 'n', name)) from "
	"(select * from t where id < 4);\n"
	"select count(*) from t where name like 'name-1%';\n"
	"select * from no_such_table;\n"
	"select 'not reached';\n";

Test(programs, sqlite3_runs_sql_from_stdin_unchanged)
{
	const char *sq = need("/usr/bin/sqlite3", "sqlite3");
	struct ctx *c = ctx_new();
	char *in = tu_path(c->dir, "q.sql");
	write_file(in, sqlite_stdin);
	char *snap = tu_path(c->dir, "sq.memprof");
	char *argv[] = {(char *)sq, (char *)"-bail", (char *)":memory:", NULL};
	cr_expect_eq(same_run(c, c->dir, "stdin", in, snap, NULL, argv, NULL),
		     1);
	char *out = tu_path(c->dir, "stdin.bare.out");
	char *text = slurp(out, NULL);
	cr_expect(strncmp(text, "0|1176|11765292|name-19992\n", 27) == 0, "%s",
		  text);
	cr_expect(strstr(text, "[{\"id\":1,\"n\":\"name-00001\"},") != NULL,
		  "%s", text);
	cr_expect(strstr(text, "not reached") == NULL, "%s", text);
	char *err = tu_path(c->dir, "stdin.bare.err");
	char *etext = slurp(err, NULL);
	cr_expect(strstr(etext, "no such table: no_such_table") != NULL, "%s",
		  etext);
	const struct want want[] = {{"libsqlite3", "sqlite3"}, {NULL, NULL}};
	check_snapshot(c, snap, sq, want);
}

/* The database file is written before the run under memprof: kept aside
 * to compare. */
static void keep_db(const struct ctx *c)
{
	char *db = tu_path(c->dir, "t.db"), *bare = tu_path(c->dir, "bare.db");
	cr_assert_eq(rename(db, bare), 0);
	free(db);
	free(bare);
}

Test(programs, sqlite3_runs_a_file_and_writes_the_same_database)
{
	const char *sq = need("/usr/bin/sqlite3", "sqlite3");
	struct ctx *c = ctx_new();
	char *sql = tu_path(c->dir, "build.sql");
	write_file(sql,
		   "pragma page_size = 4096;\n"
		   "create table kv(k text primary key, v blob) without "
		   "rowid;\n"
		   "with recursive n(i) as (select 1 union all select i + 1 "
		   "from n where i < 5000)\n"
		   "insert into kv select hex(i * 7919), zeroblob(i % 300) "
		   "from n;\n"
		   "delete from kv where length(v) > 250;\n"
		   "vacuum;\n"
		   "select count(*), sum(length(v)) from kv;\n"
		   "pragma integrity_check;\n");
	char *snap = tu_path(c->dir, "file.memprof");
	char *argv[] = {(char *)sq, (char *)"t.db", (char *)".read build.sql",
			NULL};
	cr_expect_eq(
		same_run(c, c->dir, "file", NULL, snap, NULL, argv, keep_db),
		0);
	char *out = tu_path(c->dir, "file.bare.out");
	char *text = slurp(out, NULL);
	cr_expect_str_eq(text, "4216|522100\nok\n");
	char *bare = tu_path(c->dir, "bare.db"), *db = tu_path(c->dir, "t.db");
	same_bytes("the database file", bare, db);
	const struct want want[] = {{"libsqlite3", "sqlite3"}, {NULL, NULL}};
	check_snapshot(c, snap, sq, want);
}

/* ---- gcc ------------------------------------------------------------- */

static const char c_program[] =
	"#include <stdio.h>\n"
	"#include <stdlib.h>\n"
	"#include <string.h>\n"
	"\n"
	"struct node {\n"
	"\tstruct node *next;\n"
	"\tchar name[24];\n"
	"};\n"
	"\n"
	"static unsigned long fib(unsigned n)\n"
	"{\n"
	"\treturn n < 2 ? n : fib(n - 1) + fib(n - 2);\n"
	"}\n"
	"\n"
	"int main(void)\n"
	"{\n"
	"\tstruct node *head = NULL;\n"
	"\tfor (int i = 0; i < 10; i++) {\n"
	"\t\tstruct node *n = malloc(sizeof(*n));\n"
	"\t\tsnprintf(n->name, sizeof(n->name), \"node-%d\", i);\n"
	"\t\tn->next = head;\n"
	"\t\thead = n;\n"
	"\t}\n"
	"\tsize_t len = 0;\n"
	"\tfor (struct node *n = head; n; n = n->next)\n"
	"\t\tlen += strlen(n->name);\n"
	"\tprintf(\"%s %zu %lu\\n\", head->name, len, fib(20));\n"
	"\treturn 0;\n"
	"}\n";

static void keep_object(const struct ctx *c)
{
	char *o = tu_path(c->dir, "prog.o"), *b = tu_path(c->dir, "bare.o");
	cr_assert_eq(rename(o, b), 0);
	free(o);
	free(b);
}

static void keep_binary(const struct ctx *c)
{
	char *o = tu_path(c->dir, "prog"), *b = tu_path(c->dir, "bare-prog");
	cr_assert_eq(rename(o, b), 0);
	free(o);
	free(b);
}

/* Without --follow-fork only the driver is traced: cc1 and as, which it
 * runs (vfork and exec), run untraced and write no snapshot. */
Test(programs, gcc_compiles_an_object_file_unchanged)
{
	const char *gcc = need("/usr/bin/gcc", "gcc");
	struct ctx *c = ctx_new();
	char *src = tu_path(c->dir, "prog.c");
	write_file(src, c_program);
	char *snap = tu_path(c->dir, "cc.memprof");
	char *argv[] = {
		(char *)gcc,  (char *)"-O2",	(char *)"-c", (char *)"prog.c",
		(char *)"-o", (char *)"prog.o", NULL};
	cr_expect_eq(
		same_run(c, c->dir, "cc", NULL, snap, NULL, argv, keep_object),
		0);
	char *bo = tu_path(c->dir, "bare.o"), *to = tu_path(c->dir, "prog.o");
	same_bytes("the object file", bo, to);
	char real[PATH_MAX];
	cr_assert_not_null(realpath(gcc, real));
	const struct want want[] = {{"libc.so", ""}, {NULL, NULL}};
	check_snapshot(c, snap, gcc, want);
	glob_t g;
	cr_expect_eq(children(snap, &g), 0,
		     "children traced without --follow-fork");

	/* A compile error: the same diagnostics, status 1. */
	char *bad = tu_path(c->dir, "bad.c");
	write_file(bad, "int f(int x)\n"
			"{\n"
			"\tint unused;\n"
			"\treturn x + y;\n"
			"}\n");
	char *snap2 = tu_path(c->dir, "bad.memprof");
	char *argv2[] = {
		(char *)gcc,	 (char *)"-O2", (char *)"-Wall", (char *)"-c",
		(char *)"bad.c", (char *)"-o",	(char *)"bad.o", NULL};
	cr_expect_eq(same_run(c, c->dir, "bad", NULL, snap2, NULL, argv2, NULL),
		     1);
	char *err = tu_path(c->dir, "bad.bare.err");
	char *text = slurp(err, NULL);
	cr_expect(strstr(text, "bad.c:4:20: error: 'y' undeclared") != NULL,
		  "%s", text);
	cr_expect(strstr(text, "unused variable 'unused'") != NULL, "%s", text);
	check_snapshot(c, snap2, gcc, NULL);
}

/* With --follow-fork the programs gcc runs are traced too, each into
 * FILE.pidPID.memprof: cc1, as, collect2 and ld. */
Test(programs, gcc_compiles_and_links_with_its_children_traced)
{
	const char *gcc = need("/usr/bin/gcc", "gcc");
	struct ctx *c = ctx_new();
	char *src = tu_path(c->dir, "prog.c");
	write_file(src, c_program);
	char *snap = tu_path(c->dir, "link.memprof");
	const char *opts[] = {"--follow-fork", NULL};
	char *argv[] = {(char *)gcc,	(char *)"-O2",	  (char *)"-o",
			(char *)"prog", (char *)"prog.c", NULL};
	cr_expect_eq(same_run(c, c->dir, "link", NULL, snap, opts, argv,
			      keep_binary),
		     0);
	char *bp = tu_path(c->dir, "bare-prog"), *tp = tu_path(c->dir, "prog");
	same_bytes("the linked program", bp, tp);
	/* Both programs print the same. */
	char *o1 = tu_path(c->dir, "run1.out"),
	     *o2 = tu_path(c->dir, "run2.out");
	char *e = tu_path(c->dir, "run.err");
	char *a1[] = {bp, NULL}, *a2[] = {tp, NULL};
	cr_expect_eq(run_in(c, c->dir, NULL, o1, e, a1), 0);
	cr_expect_eq(run_in(c, c->dir, NULL, o2, e, a2), 0);
	char *text = slurp(o1, NULL);
	cr_expect_str_eq(text, "node-9 60 6765\n");
	same_bytes("the linked program's output", o1, o2);

	const struct want want[] = {{"libc.so", ""}, {NULL, NULL}};
	check_snapshot(c, snap, gcc, want);
	glob_t g;
	size_t n = children(snap, &g);
	bool cc1 = false, as = false, collect2 = false, ld = false;
	for (size_t i = 0; i < n; i++) {
		struct mp_snapshot *s = NULL;
		cr_assert_eq(mp_snapshot_open(g.gl_pathv[i], &s, NULL), MP_OK);
		char *exe = strdup(s->meta.exe ? s->meta.exe : "?");
		const char *base =
			strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
		cr_log_info("gcc child %s: %s, %lu allocations", base,
			    g.gl_pathv[i],
			    (unsigned long)s->meta.totals.allocs);
		mp_snapshot_free(s);
		if (!strcmp(base, "cc1")) {
			cc1 = true;
			const struct want w[] = {{"cc1", "xmalloc"},
						 {NULL, NULL}};
			check_snapshot(c, g.gl_pathv[i], exe, w);
		} else if (!strcmp(base, "as") || strstr(base, "-as")) {
			as = true;
			const struct want w[] = {{"libbfd", "bfd_"},
						 {NULL, NULL}};
			check_snapshot(c, g.gl_pathv[i], exe, w);
		} else if (!strcmp(base, "collect2")) {
			collect2 = true;
			check_snapshot(c, g.gl_pathv[i], exe, NULL);
		} else if (!strncmp(base, "ld", 2) || strstr(base, "-ld")) {
			ld = true;
			const struct want w[] = {{"libbfd", "bfd_"},
						 {NULL, NULL}};
			check_snapshot(c, g.gl_pathv[i], exe, w);
		}
		free(exe);
	}
	cr_expect(cc1 && as && collect2 && ld,
		  "%zu children traced: cc1 %d, as %d, collect2 %d, ld %d", n,
		  cc1, as, collect2, ld);
	if (n)
		globfree(&g);
}

/* ---- git ------------------------------------------------------------- */

/* One step of the git session: a command, run in the repository (or, for
 * init, its parent), after the test wrote files. */
struct git_step {
	const char *tag;
	const char *args[8];
	const char *files[5]; /* name, text, ...: written before the step */
	int status;
	struct want want;
};

static const struct git_step git_steps[] = {
	{"init", {"init", "-b", "main", "repo"}, {NULL}, 0, {NULL, NULL}},
	{"add",
	 {"add", "."},
	 {"README", "memprof test repository\n", "main.c",
	  "int main(void)\n{\n\treturn 0;\n}\n", NULL},
	 0,
	 {"libz", "deflate"}},
	{"commit", {"commit", "-m", "first commit"}, {NULL}, 0, {NULL, NULL}},
	{"diff",
	 {"diff"},
	 {"README", "memprof test repository\nsecond line\n", NULL},
	 0,
	 {NULL, NULL}},
	{"status",
	 {"status", "--porcelain"},
	 {"new.txt", "new\n", NULL},
	 0,
	 {NULL, NULL}},
	{"commit2",
	 {"commit", "-a", "-m", "second commit"},
	 {NULL},
	 0,
	 {NULL, NULL}},
	{"log", {"log", "--oneline"}, {NULL}, 0, {"libz", "inflate"}},
	{"show", {"show", "--stat", "HEAD~1"}, {NULL}, 0, {NULL, NULL}},
	{"bad", {"log", "no-such-ref"}, {NULL}, 128, {NULL, NULL}},
};
#define NGIT (sizeof(git_steps) / sizeof(git_steps[0]))

static void git_step_argv(const char *git, const struct git_step *s,
			  char *argv[10])
{
	size_t n = 0;
	argv[n++] = (char *)git;
	for (size_t i = 0; s->args[i]; i++)
		argv[n++] = (char *)s->args[i];
	argv[n] = NULL;
}

/* Runs the whole session (bare, or each step under memprof) in a fresh
 * DIR/repo; out files DIR/TAG.HOW.out and .err. */
static void git_session(const struct ctx *c, const char *git, bool traced,
			int status[NGIT])
{
	char *repo = tu_path(c->dir, "repo");
	char *rm_argv[] = {(char *)"/bin/rm", (char *)"-rf", repo, NULL};
	char *null = tu_path(c->dir, "rm.out");
	cr_assert_eq(run_in(c, c->dir, NULL, null, null, rm_argv), 0);
	for (size_t i = 0; i < NGIT; i++) {
		const struct git_step *s = &git_steps[i];
		for (size_t f = 0; s->files[f]; f += 2) {
			char *p = tu_path(repo, s->files[f]);
			write_file(p, s->files[f + 1]);
			free(p);
		}
		char *argv[10], *targv[16];
		git_step_argv(git, s, argv);
		const char *how = traced ? "traced" : "bare";
		char *out = out_path(c, s->tag, how, "out");
		char *err = out_path(c, s->tag, how, "err");
		const char *cwd = i == 0 ? c->dir : repo;
		char **run = argv;
		char *snap = NULL;
		if (traced) {
			cr_assert(asprintf(&snap, "%s/git-%s.memprof", c->dir,
					   s->tag) > 0);
			size_t n = 0;
			targv[n++] = (char *)TU_MEMPROF;
			targv[n++] = (char *)"record";
			targv[n++] = (char *)"-q";
			targv[n++] = (char *)"-o";
			targv[n++] = snap;
			targv[n++] = (char *)"--";
			for (size_t j = 0; argv[j]; j++)
				targv[n++] = argv[j];
			targv[n] = NULL;
			run = targv;
		}
		status[i] = run_in(c, cwd, NULL, out, err, run);
		free(snap);
		free(out);
		free(err);
	}
	free(null);
	free(repo);
}

Test(programs, git_session_runs_unchanged)
{
	const char *git = need("/usr/bin/git", "git");
	struct ctx *c = ctx_new();
	int bare[NGIT], traced[NGIT];
	git_session(c, git, false, bare);
	git_session(c, git, true, traced);
	for (size_t i = 0; i < NGIT; i++) {
		const struct git_step *s = &git_steps[i];
		cr_expect_eq(bare[i], s->status, "git %s: status %d bare",
			     s->args[0], bare[i]);
		cr_expect_eq(traced[i], bare[i],
			     "git %s: status %d under memprof, %d bare", s->tag,
			     traced[i], bare[i]);
		char *bo = out_path(c, s->tag, "bare", "out"),
		     *be = out_path(c, s->tag, "bare", "err"),
		     *to = out_path(c, s->tag, "traced", "out"),
		     *te = out_path(c, s->tag, "traced", "err");
		same_bytes(s->tag, bo, to);
		same_bytes(s->tag, be, te);
		char *snap = NULL;
		cr_assert(asprintf(&snap, "%s/git-%s.memprof", c->dir, s->tag) >
			  0);
		const struct want w[] = {s->want, {NULL, NULL}};
		check_snapshot(c, snap, git, w);
		glob_t g;
		cr_expect_eq(children(snap, &g), 0,
			     "git %s: children traced without --follow-fork",
			     s->tag);
		free(snap);
		free(bo);
		free(be);
		free(to);
		free(te);
	}
	/* What the session printed: fixed identity and dates make the
	 * commit ids the same on every machine. */
	char *log = out_path(c, "log", "bare", "out");
	char *text = slurp(log, NULL);
	cr_expect_str_eq(text, "70b439f second commit\n585616b first commit\n");
	free(text);
	char *st = out_path(c, "status", "bare", "out");
	text = slurp(st, NULL);
	cr_expect_str_eq(text, " M README\n?? new.txt\n");
	free(text);
	char *init = out_path(c, "init", "bare", "out");
	text = slurp(init, NULL);
	cr_expect(strstr(text, "Initialized empty Git repository in ") == text,
		  "%s", text);
	free(text);
}
