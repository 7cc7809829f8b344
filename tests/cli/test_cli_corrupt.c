/*
 * test_cli_corrupt.c - the analysis commands on files that are not good
 * snapshots: truncated at every structural point, with one bit flipped in
 * the file header, a section header, a section's data or the END section,
 * and foreign files (an ELF binary, text, an empty file, gzip, a
 * directory, a missing file, /dev/zero); bad suppressions files; and the
 * reader's fuzz regressions (testdata/fuzz/regressions/reader); a small
 * crafted file that once cost minutes of CPU.
 *
 * DESIGN.md §7: exit status 2 and one line on stderr, "memprof: cannot
 * read 'FILE': <what and where>"; nothing on stdout (not even half a JSON
 * document), and never a crash. Every command is run with the bad file in
 * each position it can take (diff: as OLD and as NEW).
 */
#include <dirent.h>
#include <zlib.h>

#include "common/common_format.h"
#include "common/common_writer.h"
#include "testutil.h"

TestSuite(cli_corrupt, .timeout = 240);

struct run {
	int status;
	char *out, *err;
};

/* Runs memprof with args (NULL-terminated), capturing both outputs. */
static struct run memprof(const char *dir, const char *const *args)
{
	const char *argv[16] = {TU_MEMPROF};
	size_t n = 1;
	for (; args[n - 1] && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	char *o = tu_path(dir, "stdout"), *e = tu_path(dir, "stderr");
	struct run r = {tu_run((char *const *)argv, NULL, o, e), NULL, NULL};
	r.out = tu_read(o, NULL);
	r.err = tu_read(e, NULL);
	cr_assert(r.out && r.err);
	free(o);
	free(e);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* "what": the command line, for messages. */
static char *joined(const char *const *args)
{
	size_t len = 1;
	for (size_t i = 0; args[i]; i++)
		len += strlen(args[i]) + 1;
	char *s = calloc(1, len);
	for (size_t i = 0; args[i]; i++) {
		strcat(s, i ? " " : "");
		strcat(s, args[i]);
	}
	return s;
}

/* Status 2, stdout empty, stderr exactly one line starting with prefix
 * and holding want (NULL: anything). */
static void expect_one_error(const char *dir, const char *const *args,
			     const char *prefix, const char *want)
{
	struct run r = memprof(dir, args);
	char *what = joined(args);
	size_t n = strlen(r.err);
	cr_expect_eq(r.status, 2, "memprof %s: status %d, stderr: %s", what,
		     r.status, r.err);
	cr_expect_str_empty(r.out, "memprof %s printed: %s", what, r.out);
	cr_expect(n > 0 && r.err[n - 1] == '\n' &&
			  strchr(r.err, '\n') == r.err + n - 1,
		  "memprof %s: not one line on stderr: '%s'", what, r.err);
	cr_expect(!strncmp(r.err, prefix, strlen(prefix)),
		  "memprof %s: want '%s...', got: %s", what, prefix, r.err);
	if (want)
		cr_expect(strstr(r.err, want) != NULL,
			  "memprof %s: want '%s' in: %s", what, want, r.err);
	free(what);
	run_free(&r);
}

/*
 * Every command that reads a snapshot refuses file: "memprof: cannot
 * read 'FILE': " and want. good is a valid snapshot, for the other side
 * of diff.
 */
static void expect_refused(const char *dir, const char *good, const char *file,
			   const char *want)
{
	const char *const cmds[][6] = {
		{"top", file, NULL},
		{"top", "--json", file, NULL},
		{"info", file, NULL},
		{"info", "--json", file, NULL},
		{"leaks", file, NULL},
		{"leaks", "--json", file, NULL},
		{"diff", file, good, NULL},
		{"diff", "--json", good, file, NULL},
		{"check", "--max-leaked", "0", file, NULL},
	};
	char *prefix = NULL;
	cr_assert(asprintf(&prefix, "memprof: cannot read '%s': ", file) > 0);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++)
		expect_one_error(dir, cmds[i], prefix, want);
	free(prefix);
}

/* A recorded snapshot with a heap graph (so that leaks and check get
 * as far as they can), read into *data. */
static char *record_good(const char *dir, unsigned char **data, size_t *len)
{
	char *good = tu_path(dir, "good.memprof");
	const char *const args[] = {
		"record", "-q", "-o", good, TU_HELPER("leak_cycles"), NULL};
	struct run r = memprof(dir, args);
	cr_assert_eq(r.status, 0, "record: %s", r.err);
	run_free(&r);
	*data = (unsigned char *)tu_read(good, len);
	cr_assert(*data && *len > 200);
	return good;
}

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Offsets of the section headers of data (formats/snapshot.md), END's
 * last; returns how many. */
static size_t section_offsets(const unsigned char *data, size_t len,
			      size_t *off, size_t max)
{
	size_t pos = MP_FILE_HEADER_LEN, n = 0;
	while (n < max && pos + MP_SECTION_HEADER_LEN <= len) {
		off[n++] = pos;
		pos += MP_SECTION_HEADER_LEN + (size_t)le64(data + pos + 8);
	}
	cr_assert_eq(pos, len, "the recorded file does not parse");
	return n;
}

Test(cli_corrupt, truncated_files_give_one_line_and_status_2)
{
	char *d = tu_tmpdir();
	unsigned char *data;
	size_t len, off[16];
	char *good = record_good(d, &data, &len);
	size_t n = section_offsets(data, len, off, 16);
	cr_assert(n >= 5);
	/* Inside the magic, inside the file header, after it, inside a
	 * section header, inside the first and the third payload, just
	 * before END, and inside END. */
	const size_t cuts[] = {
		3,	    MP_MAGIC_LEN,    12,	  MP_FILE_HEADER_LEN,
		off[0] + 9, off[0] + 32 + 1, off[2] + 40, off[n - 1],
		len - 1,    off[n - 1] - 1,
	};
	char *cut = tu_path(d, "cut.memprof");
	for (size_t i = 0; i < sizeof(cuts) / sizeof(*cuts); i++) {
		cr_assert(cuts[i] < len);
		write_file(cut, data, cuts[i]);
		expect_refused(d, good, cut, "truncated");
	}
}

Test(cli_corrupt, flipped_bits_give_one_line_and_status_2)
{
	char *d = tu_tmpdir();
	unsigned char *data;
	size_t len, off[16];
	char *good = record_good(d, &data, &len);
	size_t n = section_offsets(data, len, off, 16);
	char *bad = tu_path(d, "flip.memprof");
	const struct {
		size_t at;
		unsigned bit;
		const char *want;
	} flips[] = {
		{2, 0, "not a memprof snapshot"},	  /* the magic */
		{8, 2, "unsupported format version 5.2"}, /* major */
		{13, 7, "corrupt file header"},		  /* flags */
		/* META's header: its own checksum catches it. */
		{off[0] + 9, 4, "bad checksum in section header at byte 16"},
		/* The data of META, then of the stacks (zlib streams): either
		 * inflate or the CRC-32 of the data notices. */
		{off[0] + 32 + 8, 1, "section 'meta'"},
		{off[2] + 32 + 12, 5, "section 'stacks'"},
		/* END: its tag, its length, its checksum. */
		{off[n - 1] + 1, 0, "bad checksum in section header"},
		{off[n - 1] + 8, 3, "bad checksum in section header"},
		{len - 1, 6, "bad checksum in section header"},
	};
	for (size_t i = 0; i < sizeof(flips) / sizeof(*flips); i++) {
		unsigned char *copy = malloc(len);
		memcpy(copy, data, len);
		copy[flips[i].at] ^= (unsigned char)(1u << flips[i].bit);
		write_file(bad, copy, len);
		free(copy);
		expect_refused(d, good, bad, flips[i].want);
	}
}

Test(cli_corrupt, foreign_files_give_one_line_and_status_2)
{
	char *d = tu_tmpdir();
	unsigned char *data;
	size_t len;
	char *good = record_good(d, &data, &len);

	expect_refused(d, good, TU_MEMPROF, "not a memprof snapshot");
	char *text = tu_path(d, "notes.txt");
	write_file(text, "hello\nworld\n", 12);
	expect_refused(d, good, text, "not a memprof snapshot");
	char *empty = tu_path(d, "empty.memprof");
	write_file(empty, "", 0);
	expect_refused(d, good, empty, "empty file");
	/* A gzip'ed snapshot is still not a snapshot. */
	char *gz = tu_path(d, "good.memprof.gz");
	gzFile z = gzopen(gz, "wb");
	cr_assert_not_null(z);
	cr_assert_eq(gzwrite(z, data, (unsigned)len), (int)len);
	cr_assert_eq(gzclose(z), Z_OK);
	expect_refused(d, good, gz, "not a memprof snapshot");
	expect_refused(d, good, d, "Is a directory");
	char *missing = tu_path(d, "missing.memprof");
	expect_refused(d, good, missing, "No such file or directory");
	/* Refused at its first bytes, not read until memory runs out. */
	expect_refused(d, good, "/dev/zero", "not a memprof snapshot");
}

Test(cli_corrupt, bad_suppressions_files_give_one_line_and_status_2)
{
	char *d = tu_tmpdir();
	unsigned char *data;
	size_t len;
	char *good = record_good(d, &data, &len);
	char *esc = tu_path(d, "esc.supp");
	/* A terminal escape in a rule's type is shown escaped. */
	write_file(esc, "leak:x\n\x1b[2J:y\n", 15);
	char *missing = tu_path(d, "missing.supp");
	const struct {
		const char *file, *want;
	} cases[] = {
		{TU_MEMPROF, "': line 1: NUL byte"},
		{"/dev/zero", "': line 1: NUL byte"},
		{esc, "': line 2: unknown suppression type '\\x1b[2J'"},
		{d, "Is a directory"},
		{missing, "No such file or directory"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const char *const leaks[] = {"leaks", "--suppressions",
					     cases[i].file, good, NULL};
		const char *const check[] = {
			"check",       "--max-leaked", "0", "--suppressions",
			cases[i].file, good,	       NULL};
		expect_one_error(d, leaks, "memprof: ", cases[i].want);
		expect_one_error(d, check, "memprof: ", cases[i].want);
	}
}

/*
 * Every input that once crashed the reader's fuzz harness, through the
 * real commands: accepted (status 0) or refused with one line (status
 * 2), never a crash. The harness replays them in `make check` too; this
 * covers the printing in cmd/ that the harness does not link.
 */
Test(cli_corrupt, fuzz_regressions_do_not_crash_the_commands)
{
	char *d = tu_tmpdir();
	const char *dirs[] = {MP_SOURCE_DIR "/testdata/fuzz/regressions/reader",
			      MP_SOURCE_DIR "/testdata/format"};
	size_t files = 0;
	for (size_t k = 0; k < sizeof(dirs) / sizeof(*dirs); k++) {
		DIR *dir = opendir(dirs[k]);
		if (!dir)
			continue;
		struct dirent *e;
		while ((e = readdir(dir))) {
			if (e->d_name[0] == '.')
				continue;
			char *f = tu_path(dirs[k], e->d_name);
			const char *const cmds[][5] = {
				{"top", f, NULL},
				{"top", "--by", "traceback", f, NULL},
				{"leaks", "--kinds", "all", f, NULL},
				{"info", "--json", f, NULL},
				{"diff", f, f, NULL},
			};
			for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds);
			     i++) {
				struct run r = memprof(d, cmds[i]);
				char *what = joined(cmds[i]);
				size_t n = strlen(r.err);
				cr_expect(r.status == 0 || r.status == 2,
					  "memprof %s: status %d: %s", what,
					  r.status, r.err);
				if (r.status == 2)
					cr_expect(n && strchr(r.err, '\n') ==
								  r.err + n - 1,
						  "memprof %s: '%s'", what,
						  r.err);
				free(what);
				run_free(&r);
			}
			free(f);
			files++;
		}
		closedir(dir);
	}
	cr_expect(files > 0);
}

/*
 * 100,000 modules and 100,000 return addresses, none inside a module:
 * every address used to be looked up by a scan of all the modules (10^10
 * steps, half a minute of `memprof top`, a minute of `diff`). The reader
 * now indexes them: well under a second.
 */
Test(cli_corrupt, many_modules_cost_no_quadratic_time, .timeout = 30)
{
	char *d = tu_tmpdir();
	char *f = tu_path(d, "modules.memprof");
	enum { NMODS = 100000, DEPTH = 1024, NSTACKS = NMODS / DEPTH };
	struct mpw w;
	int fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0);
	cr_assert_eq(mpw_open(&w, fd), 0);
	mpw_begin(&w, MP_SEC_META);
	mpw_end(&w);
	mpw_begin(&w, MP_SEC_MODULES);
	mpw_uleb(&w, NMODS);
	for (int i = 0; i < NMODS; i++) {
		mpw_str(&w, "m");
		mpw_uleb(&w, 0);
		mpw_uleb(&w, 2 * (uint64_t)i);
		mpw_uleb(&w, 2 * (uint64_t)i + 1);
		mpw_uleb(&w, 0);
	}
	mpw_end(&w);
	mpw_begin(&w, MP_SEC_STACKS);
	mpw_uleb(&w, NSTACKS);
	for (int i = 0; i < NSTACKS; i++) {
		mpw_uleb(&w, DEPTH);
		mpw_sleb(&w, i ? 2 * DEPTH : 1);
		for (int k = 1; k < DEPTH; k++)
			mpw_sleb(&w, 2);
	}
	mpw_end(&w);
	mpw_begin(&w, MP_SEC_TRACES);
	mpw_uleb(&w, NSTACKS);
	for (int i = 0; i < NSTACKS; i++) {
		mpw_uleb(&w, (uint64_t)i);
		for (int k = 0; k < 5; k++)
			mpw_uleb(&w, 1);
	}
	mpw_end(&w);
	cr_assert_eq(mpw_close(&w), 0);
	close(fd);

	const char *const top[] = {"top", "-n", "1", f, NULL};
	struct run r = memprof(d, top);
	cr_expect_eq(r.status, 0, "%s", r.err);
	run_free(&r);
	const char *const diff[] = {"diff", "--by", "function", f, f, NULL};
	r = memprof(d, diff);
	cr_expect_eq(r.status, 0, "%s", r.err);
	run_free(&r);
}
