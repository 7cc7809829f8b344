/*
 * test_cli_export.c - `memprof export` on a recording of alloc_c, whose
 * sites and exact figures tests/shim/test_shim.c asserts:
 *
 *   site          live bytes  live blocks  allocations  bytes allocated
 *   site_malloc        1000          10           10           1000
 *   site_calloc        1000           5            5           1000
 *   site_realloc       1000           1            2           1010
 *   site_freed            0           0           20           1280
 *   site_aligned       1227           5            5           1227
 *   site_peak          5000           1            4          11000
 *
 * Each format is read back by something other than memprof: folded stacks
 * parsed here, JSON by python3's json module, pprof by DataDog's
 * pprof-format (pure JavaScript, vendored in tests/export/ and installed
 * under the build directory from that tarball, so the test needs no
 * network) through tests/export/check_pprof.js under node. Also the
 * usage and input errors (exit 2, one line).
 */
#include <errno.h>
#include <inttypes.h>

#include "testutil.h"

TestSuite(cli_export, .timeout = 180);

#define TARBALL MP_SOURCE_DIR "/tests/export/pprof-format-2.1.0.tgz"
#define CHECK_JS MP_SOURCE_DIR "/tests/export/check_pprof.js"
#define NODE_DIR MP_BUILD_DIR "/export-node"
#define DECODER NODE_DIR "/node_modules/pprof-format"

struct site {
	const char *fn;
	uint64_t bytes, blocks, allocs, alloc_bytes;
};

static const struct site sites[] = {
	{"site_malloc", 1000, 10, 10, 1000}, {"site_calloc", 1000, 5, 5, 1000},
	{"site_realloc", 1000, 1, 2, 1010},  {"site_freed", 0, 0, 20, 1280},
	{"site_aligned", 1227, 5, 5, 1227},  {"site_peak", 5000, 1, 4, 11000},
};
#define NSITES (sizeof(sites) / sizeof(*sites))

/* Records alloc_c (exactly, or sampled with rate) into dir/name. */
static char *record(const char *dir, const char *name, const char *rate)
{
	char *snap = tu_path(dir, name), *err = NULL;
	cr_assert_eq(tu_sh(dir, NULL, &err, "%s record -q %s%s -o %s %s",
			   TU_MEMPROF, rate ? "--sample-rate " : "",
			   rate ? rate : "", snap, TU_HELPER("alloc_c")),
		     0, "%s", err);
	free(err);
	return snap;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void expect_has(const char *text, const char *what)
{
	cr_expect(text && strstr(text, what) != NULL, "expected '%s' in:\n%s",
		  what, text ? text : "(null)");
}

static void expect_one_line(const char *text)
{
	cr_expect(text && *text &&
			  strchr(text, '\n') == text + strlen(text) - 1,
		  "not one line: %s", text ? text : "(null)");
}

static const struct site *find_site(const char *fn)
{
	for (size_t i = 0; i < NSITES; i++)
		if (!strcmp(sites[i].fn, fn))
			return &sites[i];
	return NULL;
}

/* The helper's GNU build-id as readelf(1) prints it (lowercase hex). */
static char *readelf_build_id(const char *dir)
{
	char *out = NULL;
	cr_assert_eq(tu_sh(dir, &out, NULL,
			   "readelf -n %s | sed -n 's/.*Build ID: *//p'",
			   TU_HELPER("alloc_c")),
		     0);
	out[strcspn(out, "\n")] = '\0';
	cr_assert(strlen(out) >= 16, "no build-id: '%s'", out);
	return out;
}

/* Splits s at sep in place into at most max fields; returns how many. */
static size_t split(char *s, char sep, char **f, size_t max)
{
	size_t n = 0;
	while (n < max) {
		f[n++] = s;
		char *e = strchr(s, sep);
		if (!e)
			break;
		*e = '\0';
		s = e + 1;
	}
	return n;
}

/* ---- collapsed ---------------------------------------------------------- */

/* Per-site sums of one --value, parsed from folded lines; checks the line
 * format, the order and that no value is 0. */
static void parse_folded(char *text, uint64_t sums[NSITES], uint64_t *total)
{
	char *prev = NULL;
	*total = 0;
	memset(sums, 0, NSITES * sizeof(*sums));
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *sp = strrchr(line, ' ');
		cr_assert_not_null(sp, "no value: '%s'", line);
		*sp = '\0';
		char *end;
		errno = 0;
		unsigned long long v = strtoull(sp + 1, &end, 10);
		cr_assert(!errno && !*end && v > 0, "bad value in '%s %s'",
			  line, sp + 1);
		cr_expect(!prev || strcmp(prev, line) < 0,
			  "not sorted or not merged: '%s' then '%s'", prev,
			  line);
		prev = line;
		*total += v;
		const char *leaf = strrchr(line, ';');
		leaf = leaf ? leaf + 1 : line;
		const struct site *s = find_site(leaf);
		if (!s)
			continue;
		/* site_x is called from main; the root is outermost. */
		char want[64];
		snprintf(want, sizeof(want), ";main;%s", leaf);
		cr_expect(strlen(line) > strlen(want) &&
				  !strcmp(line + strlen(line) - strlen(want),
					  want),
			  "'%s' does not end in '%s'", line, want);
		sums[s - sites] += v;
	}
}

Test(cli_export, collapsed_values_are_exact_per_site)
{
	char *d = tu_tmpdir(), *out, *err;
	char *snap = record(d, "a.memprof", NULL);
	static const char *const values[] = {"inuse-bytes", "inuse-blocks",
					     "allocs", "alloc-bytes"};
	/* The totals of alloc_c: every allocation is at one of the sites. */
	static const uint64_t totals[] = {9227, 22, 46, 16517};

	for (size_t v = 0; v < 4; v++) {
		cr_assert_eq(tu_sh(d, &out, &err,
				   "%s export -f collapsed --value %s %s",
				   TU_MEMPROF, values[v], snap),
			     0, "%s", err);
		cr_expect_str_eq(err, "");
		uint64_t sums[NSITES], total;
		parse_folded(out, sums, &total);
		cr_expect_eq(total, totals[v], "%s: total %" PRIu64, values[v],
			     total);
		for (size_t i = 0; i < NSITES; i++) {
			const struct site *s = &sites[i];
			uint64_t want = v == 0	 ? s->bytes
					: v == 1 ? s->blocks
					: v == 2 ? s->allocs
						 : s->alloc_bytes;
			cr_expect_eq(sums[i], want,
				     "%s of %s: %" PRIu64 ", want %" PRIu64,
				     values[v], s->fn, sums[i], want);
		}
	}

	/* The default value is inuse-bytes; zero stacks are left out. */
	char *def, *bytes;
	cr_assert_eq(tu_sh(d, &def, NULL, "%s export -f collapsed %s",
			   TU_MEMPROF, snap),
		     0);
	cr_assert_eq(tu_sh(d, &bytes, NULL,
			   "%s export --format=collapsed --value inuse-bytes "
			   "%s",
			   TU_MEMPROF, snap),
		     0);
	cr_expect_str_eq(def, bytes);
	cr_expect(strstr(def, "site_freed") == NULL, "%s", def);
}

Test(cli_export, collapsed_honours_filters_and_alloc_fn)
{
	char *d = tu_tmpdir(), *out, *err;
	char *snap = record(d, "a.memprof", NULL);

	cr_assert_eq(tu_sh(d, &out, &err,
			   "%s export -f collapsed --include site_malloc %s",
			   TU_MEMPROF, snap),
		     0, "%s", err);
	cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "%s", out);
	expect_has(out, ";main;site_malloc 1000\n");

	/* site_calloc as an allocator: its blocks are main's. */
	cr_assert_eq(tu_sh(d, &out, &err,
			   "%s export -f collapsed --alloc-fn site_calloc "
			   "--exclude 'site_*' %s",
			   TU_MEMPROF, snap),
		     0, "%s", err);
	cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "%s", out);
	expect_has(out, ";main 1000\n");
}

/* ---- json --------------------------------------------------------------- */

static const char json_check[] =
	"import json, sys\n"
	"d = json.load(sys.stdin)\n"
	"build_id, exe = sys.argv[1], sys.argv[2]\n"
	"assert d['format'] == 'memprof-export' and d['version'] == 1, d\n"
	"assert set(d) == {'format','version','meta','totals','modules',"
	"'frames','stacks'}, set(d)\n"
	"m = d['meta']\n"
	"assert m['trigger'] == 'exit' and m['sample_rate'] == 0, m\n"
	"assert m['exe'] == exe, (m['exe'], exe)\n"
	"assert m['snapshot_ns'] >= m['start_ns'] > 0, m\n"
	"t = d['totals']\n"
	"assert t == {'live_bytes': 9227, 'live_blocks': 22, 'peak_bytes': "
	"10227, 'allocs': 46, 'frees': 24, 'alloc_bytes': 16517}, t\n"
	"mods = d['modules']\n"
	"assert mods[0]['path'] == exe and mods[0]['build_id'] == build_id, "
	"mods[0]\n"
	"for x in mods:\n"
	"    assert set(x) == {'path','base','start','end','build_id'}, x\n"
	"    assert int(x['start'], 16) < int(x['end'], 16), x\n"
	"frames = d['frames']\n"
	"for f in frames:\n"
	"    assert set(f) == {'function','file','line','module','address',"
	"'inlined'}, f\n"
	"    assert f['address'] is None or f['address'].startswith('0x'), f\n"
	"want = {'site_malloc': [1000, 10, 10, 1000],\n"
	"        'site_calloc': [1000, 5, 5, 1000],\n"
	"        'site_realloc': [1000, 1, 2, 1010],\n"
	"        'site_freed': [0, 0, 20, 1280],\n"
	"        'site_aligned': [1227, 5, 5, 1227],\n"
	"        'site_peak': [5000, 1, 4, 11000]}\n"
	"got = {k: [0, 0, 0, 0] for k in want}\n"
	"sums = [0, 0, 0, 0]\n"
	"for s in d['stacks']:\n"
	"    assert set(s) == {'frames','bytes','blocks','allocs',"
	"'alloc_bytes','peak_bytes'}, s\n"
	"    v = [s['bytes'], s['blocks'], s['allocs'], s['alloc_bytes']]\n"
	"    sums = [a + b for a, b in zip(sums, v)]\n"
	"    assert all(0 <= i < len(frames) for i in s['frames']), s\n"
	"    fs = [frames[i] for i in s['frames']]\n"
	"    leaf = fs[0]['function'] if fs else None\n"
	"    if leaf in want:\n"
	"        assert fs[0]['file'].endswith('alloc_c.c'), fs[0]\n"
	"        assert fs[0]['line'] > 0 and fs[0]['module'] == exe, fs[0]\n"
	"        assert fs[1]['function'] == 'main', fs[1]\n"
	"        got[leaf] = [a + b for a, b in zip(got[leaf], v)]\n"
	"assert got == want, got\n"
	"assert sums == [9227, 22, 46, 16517], sums\n"
	"print('ok')\n";

Test(cli_export, json_document_has_exact_figures_per_site)
{
	char *d = tu_tmpdir(), *out = NULL, *err = NULL;
	char *snap = record(d, "a.memprof", NULL);
	char *py = tu_path(d, "check.py"), *doc = tu_path(d, "doc.json");
	char *build_id = readelf_build_id(d);
	write_file(py, json_check);

	cr_assert_eq(tu_sh(d, NULL, &err, "%s export -f json %s >%s",
			   TU_MEMPROF, snap, doc),
		     0, "%s", err);
	cr_expect_eq(tu_sh(d, &out, &err, "python3 %s %s %s <%s", py, build_id,
			   TU_HELPER("alloc_c"), doc),
		     0, "%s%s", out, err);

	/* -o writes the same document to a file and nothing to stdout. */
	char *file = tu_path(d, "o.json");
	cr_assert_eq(tu_sh(d, &out, &err, "%s export -f json -o %s %s",
			   TU_MEMPROF, file, snap),
		     0, "%s", err);
	cr_expect_str_eq(out, "");
	cr_expect_str_eq(tu_read(file, NULL), tu_read(doc, NULL));
}

/* ---- pprof -------------------------------------------------------------- */

/*
 * The pprof-format package, installed the first time into the build
 * directory from the vendored tarball: with npm when there is one
 * (offline, from the file), else by unpacking it (it has no dependencies,
 * and Debian's nodejs comes without npm). Staged in a fresh directory and
 * renamed into place, as suites run in parallel. NULL when there is no
 * node to run it.
 */
static const char *pprof_decoder(const char *dir)
{
	char *err = NULL;
	if (tu_sh(dir, NULL, NULL, "command -v node") != 0)
		return NULL;
	if (access(DECODER "/package.json", F_OK) == 0)
		return DECODER;
	cr_assert_eq(
		tu_sh(dir, NULL, &err, "mkdir -p %s/node_modules", NODE_DIR), 0,
		"%s", err);
	char *stage = strdup(NODE_DIR "/stage-XXXXXX");
	cr_assert_not_null(mkdtemp(stage));
	int st = tu_sh(dir, NULL, &err,
		       "set -e; cd %s; "
		       "if command -v npm >/dev/null 2>&1; then "
		       "npm install --offline --no-audit --no-fund --prefix . "
		       "--cache ./.npm %s >/dev/null; "
		       "else mkdir -p node_modules/pprof-format && "
		       "tar xzf %s -C node_modules/pprof-format "
		       "--strip-components=1; fi; "
		       "test -f node_modules/pprof-format/package.json; "
		       "mv -T node_modules/pprof-format %s 2>/dev/null || "
		       "test -f %s/package.json",
		       stage, TARBALL, TARBALL, DECODER, DECODER);
	cr_assert_eq(st, 0, "cannot install pprof-format: %s", err);
	tu_sh(dir, NULL, NULL, "rm -rf %s", stage);
	free(stage);
	return DECODER;
}

/* What check_pprof.js printed, by record kind. */
struct decoded {
	char *text;
	char *lines[4096];
	size_t nlines;
};

/* Decodes pb with check_pprof.js; the script's own structural checks
 * must pass. */
static void decode(const char *dir, const char *pb, struct decoded *out)
{
	char *err = NULL;
	const char *mod = pprof_decoder(dir);
	if (!mod)
		cr_skip_test("node not found: the pprof check needs it "
			     "(Debian: apt-get install nodejs)");
	int st = tu_sh(dir, &out->text, &err, "node %s %s %s", CHECK_JS, mod,
		       pb);
	cr_assert_eq(st, 0, "check_pprof.js failed:\n%s%s", out->text, err);
	out->nlines = 0;
	for (char *l = strtok(out->text, "\n"); l && out->nlines < 4096;
	     l = strtok(NULL, "\n"))
		out->lines[out->nlines++] = l;
}

/* The first record of kind after line *from; NULL at the end. */
static char *next_record(const struct decoded *d, const char *kind,
			 size_t *from)
{
	size_t klen = strlen(kind);
	for (; *from < d->nlines; (*from)++) {
		char *l = d->lines[*from];
		if (!strncmp(l, kind, klen) && l[klen] == '\t') {
			(*from)++;
			return l + klen + 1;
		}
	}
	return NULL;
}

static char *record_value(const struct decoded *d, const char *kind)
{
	size_t at = 0;
	char *v = next_record(d, kind, &at);
	cr_assert_not_null(v, "no '%s' in the decoded profile", kind);
	return v;
}

static uint64_t num(const char *s)
{
	return strtoull(s, NULL, 0);
}

Test(cli_export, pprof_read_by_an_independent_decoder)
{
	char *d = tu_tmpdir(), *err = NULL, *out = NULL;
	char *snap = record(d, "a.memprof", NULL);
	char *pb = tu_path(d, "a.pb.gz");
	char *build_id = readelf_build_id(d);
	struct decoded dec;

	cr_assert_eq(tu_sh(d, &out, &err, "%s export -f pprof -o %s %s",
			   TU_MEMPROF, pb, snap),
		     0, "%s", err);
	cr_expect_str_eq(out, "");
	decode(d, pb, &dec);

	/* Go's heap profile: types in this order, inuse_space preferred. */
	static const char *const types[] = {
		"alloc_objects\tcount", "alloc_space\tbytes",
		"inuse_objects\tcount", "inuse_space\tbytes"};
	size_t at = 0;
	for (size_t i = 0; i < 4; i++) {
		char *t = next_record(&dec, "sample_type", &at);
		cr_assert_not_null(t);
		cr_expect_str_eq(t, types[i]);
	}
	cr_expect_null(next_record(&dec, "sample_type", &at));
	cr_expect_str_eq(record_value(&dec, "default_sample_type"),
			 "inuse_space");
	cr_expect_str_eq(record_value(&dec, "period_type"), "space\tbytes");
	cr_expect_str_eq(record_value(&dec, "period"), "1");

	/* Times from the snapshot's metadata. */
	struct mp_snapshot *s;
	struct mp_errinfo ei;
	cr_assert_eq(mp_snapshot_open(snap, &s, &ei), MP_OK, "%s", ei.msg);
	cr_expect_eq(num(record_value(&dec, "time_nanos")),
		     s->meta.snapshot_ns);
	cr_expect_eq(num(record_value(&dec, "duration_nanos")),
		     s->meta.snapshot_ns - s->meta.start_ns);
	char *c1 = record_value(&dec, "comment");
	expect_has(c1, "alloc_c");
	at = 0;
	next_record(&dec, "comment", &at);
	expect_has(next_record(&dec, "comment", &at), "trigger exit");

	/* One mapping per module, the first the executable, with the
	 * build-id readelf sees and the snapshot recorded. */
	char hex[129] = "";
	for (uint32_t k = 0; k < s->modules[0].build_id_len; k++)
		snprintf(hex + 2 * k, 3, "%02x", s->modules[0].build_id[k]);
	cr_expect_str_eq(hex, build_id);
	at = 0;
	size_t nmaps = 0;
	for (char *m; (m = next_record(&dec, "mapping", &at)); nmaps++) {
		char *f[11];
		cr_assert_eq(split(m, '\t', f, 11), 10, "%s", m);
		if (nmaps != 0)
			continue;
		cr_expect_str_eq(f[0], "1");
		cr_expect_eq(num(f[1]), s->modules[0].start);
		cr_expect_eq(num(f[2]), s->modules[0].end);
		cr_expect_str_eq(f[4], TU_HELPER("alloc_c"));
		cr_expect_str_eq(f[5], build_id);
		/* has_functions, has_filenames, has_line_numbers,
		 * has_inline_frames: it was built with -g. */
		cr_expect_str_eq(f[6], "1");
		cr_expect_str_eq(f[7], "1");
		cr_expect_str_eq(f[8], "1");
		cr_expect_str_eq(f[9], "1");
	}
	cr_expect_eq(nmaps, s->nmodules);
	/* Every location is in a mapping; the helper's have lines (the C
	 * library's too when its debug symbols are installed). */
	at = 0;
	size_t nexe = 0;
	for (char *l; (l = next_record(&dec, "location", &at));) {
		char *f[6];
		cr_assert_eq(split(l, '\t', f, 6), 5, "%s", l);
		cr_expect_neq(num(f[2]), 0, "location without mapping: %s", l);
		if (num(f[2]) != 1)
			continue;
		nexe++;
		cr_expect_geq(num(f[3]), 1, "location without lines: %s", l);
	}
	cr_expect_geq(nexe, NSITES + 1);

	/* The samples, by leaf function: exact values, lines known, and the
	 * same folded stacks as the collapsed export. */
	uint64_t got[NSITES][4] = {{0}};
	char *folded_pprof = NULL;
	size_t flen = 0;
	FILE *ff = open_memstream(&folded_pprof, &flen);
	at = 0;
	for (char *smp; (smp = next_record(&dec, "sample", &at));) {
		char *f[10];
		cr_assert_eq(split(smp, '\t', f, 10), 9, "%s", smp);
		const struct site *site = find_site(f[0]);
		if (!site)
			continue;
		cr_expect(strlen(f[1]) > 9 &&
				  !strcmp(f[1] + strlen(f[1]) - 9, "alloc_c.c"),
			  "%s", f[1]);
		cr_expect_gt(num(f[2]), 0, "no line: %s", smp);
		for (int k = 0; k < 4; k++)
			got[site - sites][k] += num(f[3 + k]);
		/* The "bytes" label: average size of the stack's blocks. */
		cr_expect_eq(num(f[7]), num(f[4]) / num(f[3]));
		if (num(f[6]))
			fprintf(ff, "%s %s\n", f[8], f[6]);
	}
	fclose(ff);
	for (size_t i = 0; i < NSITES; i++) {
		const struct site *x = &sites[i];
		/* alloc_objects, alloc_space, inuse_objects, inuse_space */
		cr_expect_eq(got[i][0], x->allocs, "%s", x->fn);
		cr_expect_eq(got[i][1], x->alloc_bytes, "%s", x->fn);
		cr_expect_eq(got[i][2], x->blocks, "%s", x->fn);
		cr_expect_eq(got[i][3], x->bytes, "%s", x->fn);
	}
	cr_assert_eq(tu_sh(d, &out, NULL, "%s export -f collapsed %s",
			   TU_MEMPROF, snap),
		     0);
	char *fp = tu_path(d, "pprof.folded"), *fc = tu_path(d, "c.folded");
	write_file(fp, folded_pprof);
	write_file(fc, out);
	/* From main in, merged and sorted as the collapsed export does it
	 * (further out, code without symbols is named differently). */
	cr_expect_eq(tu_sh(d, &out, &err,
			   "sed 's/^.*;main;/main;/' %s | "
			   "awk '{v=$NF; $NF=\"\"; sub(/ $/, \"\"); s[$0]+=v} "
			   "END {for (k in s) print k \" \" s[k]}' | "
			   "LC_ALL=C sort >%s.cut; grep ';main;site_' %s | "
			   "sed 's/^.*;main;/main;/' | cmp %s.cut -",
			   fp, fp, fc, fp),
		     0, "pprof and collapsed disagree: %s%s", out, err);
	mp_snapshot_free(s);
}

Test(cli_export, pprof_of_a_sampled_recording_carries_the_rate)
{
	char *d = tu_tmpdir(), *err = NULL;
	char *snap = record(d, "s.memprof", "4K");
	char *pb = tu_path(d, "s.pb.gz");
	struct decoded dec;

	cr_assert_eq(tu_sh(d, NULL, &err, "%s export -f pprof %s >%s",
			   TU_MEMPROF, snap, pb),
		     0, "%s", err);
	decode(d, pb, &dec);
	cr_expect_str_eq(record_value(&dec, "period"), "4096");
	size_t at = 0;
	bool said = false;
	for (char *c; (c = next_record(&dec, "comment", &at));)
		said |= strstr(c, "sampled, one allocation per 4096 bytes") !=
			NULL;
	cr_expect(said, "no comment on sampling");

	/* The values are the snapshot's estimates, as they are. */
	struct mp_snapshot *s;
	struct mp_errinfo ei;
	cr_assert_eq(mp_snapshot_open(snap, &s, &ei), MP_OK, "%s", ei.msg);
	uint64_t want = 0, got = 0;
	for (size_t t = 0; t < s->ntraces; t++)
		want += s->traces[t].alloc_bytes;
	at = 0;
	for (char *smp; (smp = next_record(&dec, "sample", &at));) {
		char *f[10];
		cr_assert_eq(split(smp, '\t', f, 10), 9, "%s", smp);
		got += num(f[4]);
	}
	cr_expect_eq(got, want);
	mp_snapshot_free(s);
}

/* ---- errors and help ---------------------------------------------------- */

Test(cli_export, usage_and_input_errors_exit_2_with_one_line)
{
	char *d = tu_tmpdir(), *out = NULL, *err = NULL;
	char *snap = record(d, "a.memprof", NULL);

	cr_expect_eq(tu_sh(d, &out, &err, "%s export %s", TU_MEMPROF, snap), 2);
	expect_has(err, "memprof: export: no --format given");
	expect_one_line(err);
	cr_expect_str_eq(out, "");
	cr_expect_eq(
		tu_sh(d, NULL, &err, "%s export -f svg %s", TU_MEMPROF, snap),
		2);
	expect_has(err, "memprof: export: unknown --format 'svg'");
	expect_one_line(err);
	cr_expect_eq(tu_sh(d, NULL, &err, "%s export -f %s", TU_MEMPROF, snap),
		     2);
	expect_one_line(err);
	cr_expect_eq(tu_sh(d, NULL, &err, "%s export -f", TU_MEMPROF), 2);
	expect_has(err, "needs a value");
	cr_expect_eq(tu_sh(d, NULL, &err, "%s export -f json", TU_MEMPROF), 2);
	expect_has(err, "no snapshot file given");
	cr_expect_eq(tu_sh(d, NULL, &err, "%s export -f json %s %s", TU_MEMPROF,
			   snap, snap),
		     2);
	expect_has(err, "one snapshot file only");
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "%s export -f collapsed --value peak %s", TU_MEMPROF,
			   snap),
		     2);
	expect_has(err, "unknown --value 'peak'");
	cr_expect_eq(tu_sh(d, NULL, &err, "%s export -f json --value allocs %s",
			   TU_MEMPROF, snap),
		     2);
	expect_has(err, "--value goes with --format collapsed");
	cr_expect_eq(tu_sh(d, NULL, &err, "%s export -f json --frobnicate %s",
			   TU_MEMPROF, snap),
		     2);
	expect_has(err, "unknown option '--frobnicate'");

	/* Unreadable input: one line, and no output file is created. */
	cr_expect_eq(tu_sh(d, &out, &err, "%s export -f json %s/missing",
			   TU_MEMPROF, d),
		     2);
	expect_has(err, "memprof: cannot read");
	expect_one_line(err);
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "echo hello > %s/g.memprof; %s export -f pprof "
			   "-o %s/g.pb.gz %s/g.memprof",
			   d, TU_MEMPROF, d, d),
		     2);
	expect_has(err, "not a memprof snapshot");
	expect_one_line(err);
	cr_expect_neq(access(tu_path(d, "g.pb.gz"), F_OK), 0);
	cr_expect_eq(tu_sh(d, &out, &err,
			   "head -c 300 %s > %s/cut.memprof; %s export -f "
			   "collapsed %s/cut.memprof",
			   snap, d, TU_MEMPROF, d),
		     2);
	expect_has(err, "truncated");
	expect_one_line(err);
	cr_expect_str_eq(out, "");
	cr_expect_eq(tu_sh(d, NULL, &err, "%s export -f json -o %s/no/such %s",
			   TU_MEMPROF, d, snap),
		     2);
	expect_has(err, "memprof: cannot write");
	expect_one_line(err);
	/* -o naming the snapshot would destroy it. */
	cr_expect_eq(tu_sh(d, NULL, &err,
			   "cd %s && %s export -f json -o "
			   "./a.memprof %s",
			   d, TU_MEMPROF, snap),
		     2);
	expect_has(err, "is the snapshot itself");
	struct mp_snapshot *s;
	struct mp_errinfo ei;
	cr_assert_eq(mp_snapshot_open(snap, &s, &ei), MP_OK, "%s", ei.msg);
	mp_snapshot_free(s);
}

/* pprof is binary: not to a terminal, unless -o says where. Run under a
 * pseudo-terminal made by python3's pty module. */
Test(cli_export, pprof_is_not_written_to_a_terminal)
{
	char *d = tu_tmpdir(), *out = NULL, *err = NULL;
	char *snap = record(d, "a.memprof", NULL);
	char *py = tu_path(d, "term.py");
	write_file(py, "import os, pty, sys\n"
		       "pid, fd = pty.fork()\n"
		       "if pid == 0:\n"
		       "    os.execv(sys.argv[1], sys.argv[1:])\n"
		       "data = b''\n"
		       "while True:\n"
		       "    try:\n"
		       "        chunk = os.read(fd, 4096)\n"
		       "    except OSError:\n"
		       "        break\n"
		       "    if not chunk:\n"
		       "        break\n"
		       "    data += chunk\n"
		       "_, st = os.waitpid(pid, 0)\n"
		       "sys.stdout.write(data.decode('utf-8', 'replace'))\n"
		       "sys.exit(os.waitstatus_to_exitcode(st))\n");
	cr_expect_eq(tu_sh(d, &out, &err, "python3 %s %s export -f pprof %s",
			   py, TU_MEMPROF, snap),
		     2, "%s%s", out, err);
	expect_has(out, "memprof: export: not writing binary pprof data to a "
			"terminal; use -o FILE");
	char *pb = tu_path(d, "t.pb.gz");
	cr_expect_eq(tu_sh(d, &out, &err,
			   "python3 %s %s export -f pprof -o %s %s", py,
			   TU_MEMPROF, pb, snap),
		     0, "%s%s", out, err);
	size_t len = 0;
	char *data = tu_read(pb, &len);
	cr_expect(data && len > 18 && (unsigned char)data[0] == 0x1f &&
			  (unsigned char)data[1] == 0x8b,
		  "not gzip");
	/* Text formats go to a terminal as they are. */
	cr_expect_eq(tu_sh(d, &out, &err,
			   "python3 %s %s export -f collapsed %s", py,
			   TU_MEMPROF, snap),
		     0, "%s%s", out, err);
	expect_has(out, ";main;site_peak 5000");
}

Test(cli_export, help_and_command_list)
{
	char *d = tu_tmpdir(), *out = NULL;
	cr_expect_eq(tu_sh(d, &out, NULL, "%s help export", TU_MEMPROF), 0);
	expect_has(out, "--format");
	expect_has(out, "--value");
	cr_expect_eq(tu_sh(d, &out, NULL, "%s export --help", TU_MEMPROF), 0);
	expect_has(out, "usage: memprof export");
	cr_expect_eq(tu_sh(d, &out, NULL, "%s --help", TU_MEMPROF), 0);
	expect_has(out, "  export ");
	/* The manual page exists and renders without warnings. */
	cr_expect_eq(tu_sh(d, &out, NULL,
			   "test -f %s/man/memprof-export.1 && (! command -v "
			   "groff >/dev/null || groff -man -Tutf8 -ww "
			   "%s/man/memprof-export.1 2>&1 >/dev/null | "
			   "(! grep .))",
			   MP_SOURCE_DIR, MP_SOURCE_DIR),
		     0, "%s", out);
}
