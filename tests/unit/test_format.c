/*
 * test_format.c - the .memprof format: writer (common_writer.c) and reader
 * (trace_reader.c) against formats/snapshot.md.
 *
 * Builds files in memory or in a private temporary directory; never touches
 * anything else. Corrupt files are made by editing valid ones byte by byte,
 * so each test names the one rule it breaks.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/common_format.h"
#include "common/common_leb.h"
#include "common/common_writer.h"
#include "memprof_trace.h"
#include "trace/trace_internal.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                            */

static char tmpdir[64];

static void make_tmpdir(void)
{
	strcpy(tmpdir, "/tmp/memprof-test-format-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", tmpdir);
}

TestSuite(format, .init = make_tmpdir, .fini = remove_tmpdir);

static char *tmp_path(const char *name)
{
	static char path[2][128];
	static int which;
	char *p = path[which++ & 1];

	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	return p;
}

static unsigned char *read_all(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);
	ssize_t n;

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	cr_assert_not_null(buf);
	n = read(fd, buf, (size_t)st.st_size);
	cr_assert_eq(n, st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static unsigned char *save_to_buf(const struct mp_snapshot *snap, size_t *len)
{
	struct mp_errinfo ei = {""};
	const char *path = tmp_path("saved.memprof");

	cr_assert_eq(mp_snapshot_save(snap, path, &ei), MP_OK, "save: %s",
		     ei.msg);
	return read_all(path, len);
}

/* Writes a file through the raw mpw_* API and returns its bytes. */
static unsigned char *write_raw(void (*fill)(struct mpw *w), size_t *len)
{
	const char *path = tmp_path("raw.memprof");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct mpw w;

	cr_assert(fd >= 0);
	cr_assert_eq(mpw_open(&w, fd), 0);
	fill(&w);
	cr_assert_eq(mpw_close(&w), 0);
	close(fd);
	return read_all(path, len);
}

static enum mp_err open_buf(const unsigned char *b, size_t len,
			    struct mp_errinfo *ei)
{
	struct mp_snapshot *snap = NULL;
	enum mp_err err = mp_snapshot_open_mem(b, len, &snap, ei);

	if (err)
		cr_assert_null(snap, "out written on failure");
	mp_snapshot_free(snap);
	return err;
}

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void wr64(unsigned char *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

static void fix_header_crc(unsigned char *h)
{
	wr32(h + 28, (uint32_t)crc32(0, h, 28));
}

struct secpos {
	size_t off;  /* header offset */
	size_t size; /* header + payload */
	uint32_t tag;
};

/* The sections of a valid file, END included. */
static size_t walk(const unsigned char *b, size_t len, struct secpos *out,
		   size_t max)
{
	size_t pos = MP_FILE_HEADER_LEN, n = 0;

	while (pos + MP_SECTION_HEADER_LEN <= len && n < max) {
		out[n].off = pos;
		out[n].tag = rd32(b + pos);
		out[n].size = MP_SECTION_HEADER_LEN + (size_t)rd64(b + pos + 8);
		pos += out[n].size;
		n++;
	}
	cr_assert_eq(pos, len, "walk did not end at the end of the file");
	return n;
}

static struct secpos find(const unsigned char *b, size_t len, uint32_t tag)
{
	struct secpos s[32];
	size_t n = walk(b, len, s, 32);

	for (size_t i = 0; i < n; i++)
		if (s[i].tag == tag)
			return s[i];
	cr_assert_fail("section %.4s not found", (const char *)&tag);
	return s[0];
}

/* A copy of b with [at, at + cut) replaced by ins (ins_len bytes). */
static unsigned char *edit_bytes(const unsigned char *b, size_t len, size_t at,
				 size_t cut, const void *ins, size_t ins_len,
				 size_t *out_len)
{
	unsigned char *o = malloc(len - cut + ins_len + 1);

	cr_assert_not_null(o);
	memcpy(o, b, at);
	memcpy(o + at, ins, ins_len);
	memcpy(o + at + ins_len, b + at + cut, len - at - cut);
	*out_len = len - cut + ins_len;
	return o;
}

/* ------------------------------------------------------------------ */
/* A snapshot with every field set                                    */

static const unsigned char bid1[20] = {0xde, 0xad, 0x00, 0xbe, 0xef, 1,	  2,
				       3,    4,	   5,	 6,    7,    8,	  9,
				       10,   11,   12,	 0,    0xff, 0x80};

static struct mp_snapshot *make_full(void)
{
	struct mp_snapshot *s = mp__snapshot_new();
	struct mp_meta *m;
	static const uint64_t pcs0[] = {0x555555555123, 0x7ffff7a01234,
					0x555555554fff};
	static const uint64_t pcs1[] = {0x10, 0xffffffffffffff00, 0x20};
	static const uint64_t pcs3[] = {UINT64_MAX, 0, 0x8000000000000000};
	const uint64_t *pcs[] = {pcs0, pcs1, NULL, pcs3};
	const uint32_t depth[] = {3, 3, 0, 3};

	cr_assert_not_null(s);
	m = &s->meta;
	m->pid = 4242;
	m->ppid = 1;
	m->exe = mp__strdup(s, "/usr/bin/demo");
	m->argv = mp__alloc(s, 4 * sizeof(char *));
	m->argv[0] = mp__strdup(s, "demo");
	m->argv[1] = mp__strdup(s, "--flag=1");
	m->argv[2] = mp__strdup(s, "two words");
	m->argc = 3;
	m->start_ns = 1700000000123456789ull;
	m->snapshot_ns = 1700000005000000000ull;
	m->peak_ns = 1700000004000000000ull;
	m->trigger = mp__strdup(s, "api");
	m->name = mp__strdup(s, "phase one");
	m->sample_rate = 4096;
	m->depth = 64;
	m->seq = 3;
	m->totals = (struct mp_totals){.live_bytes = 1000,
				       .live_blocks = 7,
				       .peak_bytes = 5000,
				       .allocs = 123,
				       .frees = 116,
				       .alloc_bytes = UINT64_MAX};

	s->nmodules = 2;
	s->modules = mp__alloc(s, 2 * sizeof(*s->modules));
	s->modules[0] =
		(struct mp_module){.path = mp__strdup(s, "/usr/bin/demo"),
				   .base = 0x555555554000,
				   .start = 0x555555554000,
				   .end = 0x555555559000,
				   .build_id_len = 20};
	memcpy(s->modules[0].build_id, bid1, 20);
	s->modules[1] = (struct mp_module){
		.path = mp__strdup(s, "/lib/x86_64-linux-gnu/libc.so.6"),
		.base = 0x7ffff7a00000,
		.start = 0x7ffff7a00000,
		.end = 0x7ffff7c00000,
		.build_id_len = 64};
	for (int i = 0; i < 64; i++)
		s->modules[1].build_id[i] = (unsigned char)(i * 7);

	s->nstacks = 4;
	s->stacks = mp__alloc(s, 4 * sizeof(*s->stacks));
	for (int i = 0; i < 4; i++) {
		s->stacks[i].depth = depth[i];
		if (depth[i]) {
			s->stacks[i].pcs = mp__alloc(s, depth[i] * 8);
			memcpy(s->stacks[i].pcs, pcs[i], depth[i] * 8);
		}
	}

	s->ntraces = 3;
	s->traces = mp__alloc(s, 3 * sizeof(*s->traces));
	s->traces[0] = (struct mp_trace){0, 600, 3, 10, 6000, 700};
	s->traces[1] = (struct mp_trace){3, 400, 4, 20, 8000, UINT64_MAX};
	s->traces[2] = (struct mp_trace){2, 0, 0, 1, 16, 0};

	s->has_blocks = true;
	s->nblocks = 3;
	s->blocks = mp__alloc(s, 3 * sizeof(*s->blocks));
	s->blocks[0] = (struct mp_block){0x1000, 100, 0};
	s->blocks[1] = (struct mp_block){0x1070, 500, 1};
	s->blocks[2] = (struct mp_block){0xffffffffffff0000, 1, 0};

	s->has_symbols = true;
	s->nsymbols = 3;
	s->symbols = mp__alloc(s, 3 * sizeof(*s->symbols));
	s->symbols[0] = (struct mp_symbol){
		.pc = 0x10, .module = UINT32_MAX, .nframes = 0};
	s->symbols[1] = (struct mp_symbol){
		.pc = 0x555555555123, .module = 0, .nframes = 3};
	s->symbols[1].frames = mp__alloc(s, 3 * sizeof(struct mp_frame));
	s->symbols[1].frames[0] = (struct mp_frame){
		"std::vector<int>::push_back(int const&)",
		"/usr/include/c++/12/bits/stl_vector.h", 1287};
	s->symbols[1].frames[1] = (struct mp_frame){"fill", "/src/demo.c", 12};
	s->symbols[1].frames[2] = (struct mp_frame){"main", "/src/demo.c", 40};
	s->symbols[2] = (struct mp_symbol){
		.pc = 0x7ffff7a01234, .module = 1, .nframes = 2};
	s->symbols[2].frames = mp__alloc(s, 2 * sizeof(struct mp_frame));
	s->symbols[2].frames[0] = (struct mp_frame){NULL, NULL, 0};
	s->symbols[2].frames[1] =
		(struct mp_frame){"malloc", "/src/demo.c", UINT32_MAX};
	return s;
}

static void assert_str_or_null(const char *a, const char *b)
{
	if (!b)
		cr_assert_null(a);
	else
		cr_assert_str_eq(a, b);
}

static void assert_same(const struct mp_snapshot *a,
			const struct mp_snapshot *b)
{
	const struct mp_meta *x = &a->meta, *y = &b->meta;

	cr_assert_eq(x->pid, y->pid);
	cr_assert_eq(x->ppid, y->ppid);
	assert_str_or_null(x->exe, y->exe);
	cr_assert_eq(x->argc, y->argc);
	for (size_t i = 0; i < y->argc; i++)
		cr_assert_str_eq(x->argv[i], y->argv[i]);
	cr_assert_null(x->argv[x->argc]);
	cr_assert_eq(x->start_ns, y->start_ns);
	cr_assert_eq(x->snapshot_ns, y->snapshot_ns);
	cr_assert_eq(x->peak_ns, y->peak_ns);
	assert_str_or_null(x->trigger, y->trigger);
	assert_str_or_null(x->name, y->name);
	cr_assert_eq(x->sample_rate, y->sample_rate);
	cr_assert_eq(x->depth, y->depth);
	cr_assert_eq(x->seq, y->seq);
	cr_assert_eq(memcmp(&x->totals, &y->totals, sizeof(x->totals)), 0);

	cr_assert_eq(a->nmodules, b->nmodules);
	for (size_t i = 0; i < b->nmodules; i++) {
		const struct mp_module *p = &a->modules[i], *q = &b->modules[i];

		cr_assert_str_eq(p->path, q->path);
		cr_assert_eq(p->base, q->base);
		cr_assert_eq(p->start, q->start);
		cr_assert_eq(p->end, q->end);
		cr_assert_eq(p->build_id_len, q->build_id_len);
		cr_assert_eq(memcmp(p->build_id, q->build_id, q->build_id_len),
			     0);
	}
	cr_assert_eq(a->nstacks, b->nstacks);
	for (size_t i = 0; i < b->nstacks; i++) {
		cr_assert_eq(a->stacks[i].depth, b->stacks[i].depth);
		for (size_t j = 0; j < b->stacks[i].depth; j++)
			cr_assert_eq(a->stacks[i].pcs[j], b->stacks[i].pcs[j],
				     "stack %zu pc %zu", i, j);
	}
	cr_assert_eq(a->ntraces, b->ntraces);
	cr_assert_eq(
		memcmp(a->traces, b->traces, b->ntraces * sizeof(*b->traces)),
		0);
	cr_assert_eq(a->has_blocks, b->has_blocks);
	cr_assert_eq(a->nblocks, b->nblocks);
	for (size_t i = 0; i < b->nblocks; i++) {
		cr_assert_eq(a->blocks[i].addr, b->blocks[i].addr);
		cr_assert_eq(a->blocks[i].size, b->blocks[i].size);
		cr_assert_eq(a->blocks[i].trace, b->blocks[i].trace);
	}
	cr_assert_eq(a->has_symbols, b->has_symbols);
	cr_assert_eq(a->nsymbols, b->nsymbols);
	for (size_t i = 0; i < b->nsymbols; i++) {
		const struct mp_symbol *p = &a->symbols[i], *q = &b->symbols[i];

		cr_assert_eq(p->pc, q->pc);
		cr_assert_eq(p->module, q->module);
		cr_assert_eq(p->nframes, q->nframes);
		for (size_t j = 0; j < q->nframes; j++) {
			assert_str_or_null(p->frames[j].function,
					   q->frames[j].function);
			assert_str_or_null(p->frames[j].file,
					   q->frames[j].file);
			cr_assert_eq(p->frames[j].line, q->frames[j].line);
		}
	}
}

/* The bytes of make_full() as saved. */
static unsigned char *full_file(size_t *len)
{
	struct mp_snapshot *s = make_full();
	unsigned char *b = save_to_buf(s, len);

	mp_snapshot_free(s);
	return b;
}

/* ------------------------------------------------------------------ */
/* Round trips                                                        */

Test(format, round_trips_every_field)
{
	struct mp_snapshot *s = make_full(), *back = NULL;
	struct mp_errinfo ei = {""};
	const char *path = tmp_path("full.memprof");

	cr_assert_eq(mp_snapshot_save(s, path, &ei), MP_OK, "%s", ei.msg);
	cr_assert_eq(mp_snapshot_open(path, &back, &ei), MP_OK, "%s", ei.msg);
	cr_assert_eq(back->version_major, 1);
	cr_assert_eq(back->version_minor, 2);
	cr_assert_eq(MP_VERSION_MINOR, 2);
	cr_assert(!back->has_graph);
	cr_assert(!back->has_timeline);
	assert_same(back, s);

	/* A second generation is byte-identical: nothing drifts. */
	{
		size_t l1, l2;
		unsigned char *b1 = read_all(path, &l1);
		unsigned char *b2 = save_to_buf(back, &l2);

		cr_assert_eq(l1, l2);
		cr_assert_eq(memcmp(b1, b2, l1), 0);
		free(b1);
		free(b2);
	}
	mp_snapshot_free(back);
	mp_snapshot_free(s);
}

Test(format, round_trips_an_empty_snapshot)
{
	struct mp_snapshot *s = mp__snapshot_new(), *back = NULL;
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = save_to_buf(s, &len);

	cr_assert_eq(mp_snapshot_open_mem(b, len, &back, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert_eq(back->meta.argc, 0);
	cr_assert_not_null(back->meta.argv);
	cr_assert_null(back->meta.argv[0]);
	cr_assert_null(back->meta.exe);
	cr_assert_eq(back->nstacks, 0);
	cr_assert(!back->has_blocks);
	cr_assert(!back->has_symbols);
	mp_snapshot_free(back);
	mp_snapshot_free(s);
	free(b);
}

Test(format, finds_symbols_and_modules_by_pc)
{
	struct mp_snapshot *s = make_full();

	cr_assert_eq(mp_snapshot_symbol(s, 0x555555555123), &s->symbols[1]);
	cr_assert_eq(mp_snapshot_symbol(s, 0x10), &s->symbols[0]);
	cr_assert_null(mp_snapshot_symbol(s, 0x555555555124));
	cr_assert_eq(mp_snapshot_module(s, 0x555555554000), &s->modules[0]);
	cr_assert_eq(mp_snapshot_module(s, 0x7ffff7bfffff), &s->modules[1]);
	cr_assert_null(mp_snapshot_module(s, 0x555555559000));
	mp_snapshot_free(s);
}

static void fill_with_unknown(struct mpw *w)
{
	static const char raw[] = "uncompressed future data";

	mpw_begin(w, MP_SEC_META);
	mpw_meta_uint(w, "pid", 7);
	mpw_meta_str(w, "future_key", "ignored");
	mpw_meta_uint(w, "future_uint", 99);
	mpw_end(w);
	mpw_begin(w, MP_TAG('X', 'T', 'R', 'A'));
	for (int i = 0; i < 1000; i++)
		mpw_uleb(w, (uint64_t)i * i);
	mpw_end(w);
	mpw_begin(w, MP_SEC_MODULES);
	mpw_uleb(w, 0);
	mpw_end(w);
	mpw_begin(w, MP_SEC_TIMELINE); /* sections come in any order */
	mpw_uleb(w, 10000000);
	mpw_uleb(w, 1);
	mpw_uleb(w, 5);
	mpw_uleb(w, 64);
	mpw_uleb(w, 2);
	mpw_uleb(w, 0);
	mpw_end(w);
	mpw_begin(w, MP_SEC_STACKS);
	mpw_uleb(w, 1);
	mpw_uleb(w, 1);
	mpw_sleb(w, 0x401000);
	mpw_end(w);
	mpw_begin(w, MP_SEC_TRACES);
	mpw_uleb(w, 0);
	mpw_end(w);
	mpw_copy_section(
		w, MP_TAG('R', 'A', 'W', '!'), 0, sizeof(raw),
		(uint32_t)crc32(0, (const unsigned char *)raw, sizeof(raw)),
		raw, sizeof(raw));
}

static void assert_section_copied(const unsigned char *a, size_t alen,
				  const unsigned char *b, size_t blen,
				  uint32_t tag)
{
	struct secpos x = find(a, alen, tag), y = find(b, blen, tag);

	cr_assert_eq(x.size, y.size);
	cr_assert_eq(memcmp(a + x.off, b + y.off, x.size), 0,
		     "section %.4s changed", (const char *)&tag);
}

Test(format, keeps_unknown_sections_on_save)
{
	struct mp_snapshot *s = NULL, *again = NULL;
	struct mp_errinfo ei = {""};
	size_t len, len2;
	unsigned char *b = write_raw(fill_with_unknown, &len), *b2;

	cr_assert_eq(mp_snapshot_open_mem(b, len, &s, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert_eq(s->meta.pid, 7);
	b2 = save_to_buf(s, &len2);
	assert_section_copied(b, len, b2, len2, MP_TAG('X', 'T', 'R', 'A'));
	assert_section_copied(b, len, b2, len2, MP_TAG('R', 'A', 'W', '!'));
	/* TIME is no longer reserved (1.2): read, and written anew. */
	cr_assert(s->has_timeline);
	cr_assert_eq(s->timeline.nsamples, 1);
	assert_section_copied(b, len, b2, len2, MP_SEC_TIMELINE);
	cr_assert_eq(mp_snapshot_open_mem(b2, len2, &again, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert_eq(again->stacks[0].pcs[0], 0x401000);
	cr_assert(again->has_timeline);
	cr_assert_eq(again->timeline.samples[0].ns, 5);
	cr_assert_eq(again->timeline.samples[0].live_bytes, 64);
	mp_snapshot_free(again);
	mp_snapshot_free(s);
	free(b);
	free(b2);
}

Test(format, save_failure_leaves_path_untouched)
{
	struct mp_snapshot *s = make_full();
	struct mp_errinfo ei = {""};
	const char *path = tmp_path("keep.memprof");
	size_t l1, l2;
	unsigned char *before, *after;

	cr_assert_eq(mp_snapshot_save(s, path, &ei), MP_OK);
	before = read_all(path, &l1);
	s->traces[0].stack = 99;
	cr_assert_eq(mp_snapshot_save(s, path, &ei), MP_ERR_USAGE);
	after = read_all(path, &l2);
	cr_assert_eq(l1, l2);
	cr_assert_eq(memcmp(before, after, l1), 0);
	cr_assert_eq(mp_snapshot_save(s, "/nonexistent-dir/x.memprof", &ei),
		     MP_ERR_USAGE);
	s->traces[0].stack = 0;
	cr_assert_eq(mp_snapshot_save(s, "/nonexistent-dir/x.memprof", &ei),
		     MP_ERR_IO);
	cr_assert_str_eq(ei.msg, "No such file or directory");
	{
		/* Only path is left in the directory: no temporary remains. */
		char cmd[160];

		snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1",
			 tmpdir);
		cr_assert_eq(system(cmd), 0);
	}
	mp_snapshot_free(s);
	free(before);
	free(after);
}

Test(format, reports_a_missing_file)
{
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {""};

	cr_assert_eq(mp_snapshot_open(tmp_path("absent.memprof"), &s, &ei),
		     MP_ERR_IO);
	cr_assert_null(s);
	cr_assert_str_eq(ei.msg, "No such file or directory");
	cr_assert_str_eq(mp_strerror(MP_ERR_TRUNCATED), "truncated file");
}

/* ------------------------------------------------------------------ */
/* The file header                                                    */

Test(format, rejects_bad_magic)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = full_file(&len);

	b[1] = 'm';
	cr_assert_eq(open_buf(b, len, &ei), MP_ERR_NOT_SNAPSHOT);
	cr_assert_str_eq(ei.msg, "not a memprof snapshot (bad magic)");
	cr_assert_eq(open_buf((const unsigned char *)"#!/bin/sh", 9, &ei),
		     MP_ERR_NOT_SNAPSHOT);
	free(b);
}

Test(format, rejects_unknown_major_version)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = full_file(&len);

	b[8] = 7;
	b[10] = 0;
	cr_assert_eq(open_buf(b, len, &ei), MP_ERR_VERSION);
	cr_assert_str_eq(
		ei.msg,
		"unsupported format version 7.0 (this memprof reads 1.x)");
	b[8] = 0;
	cr_assert_eq(open_buf(b, len, &ei), MP_ERR_VERSION);
	free(b);
}

Test(format, accepts_higher_minor_version)
{
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = full_file(&len);

	b[10] = 9;
	cr_assert_eq(mp_snapshot_open_mem(b, len, &s, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert_eq(s->version_major, 1);
	cr_assert_eq(s->version_minor, 9);
	mp_snapshot_free(s);
	free(b);
}

Test(format, rejects_file_flags)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = full_file(&len);

	b[12] = 1;
	cr_assert_eq(open_buf(b, len, &ei), MP_ERR_CORRUPT);
	free(b);
}

/* ------------------------------------------------------------------ */
/* Damage                                                             */

Test(format, rejects_truncation_at_every_length)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = full_file(&len);

	for (size_t l = 0; l < len; l++) {
		/* A fresh copy, so that ASan sees any read past the end. */
		unsigned char *p = malloc(l ? l : 1);

		memcpy(p, b, l);
		cr_assert_eq(open_buf(p, l, &ei), MP_ERR_TRUNCATED,
			     "prefix of %zu bytes: %s", l, ei.msg);
		free(p);
	}
	cr_assert_eq(open_buf(b, len, &ei), MP_OK);
	free(b);
}

Test(format, names_section_and_byte_of_truncation)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = full_file(&len);
	struct secpos st = find(b, len, MP_SEC_STACKS);
	size_t cut = st.off + MP_SECTION_HEADER_LEN + 3;
	char want[96];

	cr_assert_eq(open_buf(b, cut, &ei), MP_ERR_TRUNCATED);
	snprintf(want, sizeof(want),
		 "truncated in section 'stacks' at byte %zu", cut);
	cr_assert_str_eq(ei.msg, want);
	cr_assert_eq(open_buf(b, st.off + 10, &ei), MP_ERR_TRUNCATED);
	cr_assert(strstr(ei.msg, "truncated in section 'stacks'"), "%s",
		  ei.msg);
	free(b);
}

Test(format, rejects_flipped_bit_in_section_header)
{
	struct mp_errinfo ei = {""};
	struct secpos s[16];
	size_t len, n;
	unsigned char *b = full_file(&len);

	n = walk(b, len, s, 16);
	cr_assert_eq(n, 7, "META MODS STKS TRCS BLKS SYMS END");
	for (size_t i = 0; i < n; i++) {
		char want[80];

		snprintf(want, sizeof(want),
			 "bad checksum in section header at byte %zu",
			 s[i].off);
		for (size_t bit = 0; bit < 8 * MP_SECTION_HEADER_LEN; bit++) {
			b[s[i].off + bit / 8] ^=
				(unsigned char)(1u << (bit % 8));
			cr_assert_eq(open_buf(b, len, &ei), MP_ERR_CORRUPT,
				     "section %zu bit %zu", i, bit);
			cr_assert_str_eq(ei.msg, want);
			b[s[i].off + bit / 8] ^=
				(unsigned char)(1u << (bit % 8));
		}
	}
	free(b);
}

/*
 * The last byte of a deflate stream may end in padding bits that inflate
 * never reads (RFC 1951, 3.2.3); flipping one changes nothing decoded. Such
 * a file must read back as the same snapshot, so it saves to the same bytes.
 */
static bool same_as_saved(const unsigned char *b, size_t len,
			  const unsigned char *orig, size_t orig_len)
{
	struct mp_snapshot *snap = NULL;
	struct mp_errinfo ei = {""};
	unsigned char *again;
	size_t l2;
	bool same;

	cr_assert_eq(mp_snapshot_open_mem(b, len, &snap, &ei), MP_OK);
	again = save_to_buf(snap, &l2);
	same = l2 == orig_len && !memcmp(again, orig, l2);
	free(again);
	mp_snapshot_free(snap);
	return same;
}

Test(format, rejects_flipped_bit_in_payload)
{
	struct mp_errinfo ei = {""};
	struct secpos s[16];
	size_t len, n, padding = 0;
	unsigned char *b = full_file(&len);
	unsigned char *orig = malloc(len);

	memcpy(orig, b, len);
	n = walk(b, len, s, 16);
	for (size_t i = 0; i < n; i++) {
		size_t start = s[i].off + MP_SECTION_HEADER_LEN;

		for (size_t at = start; at < s[i].off + s[i].size; at++)
			for (int bit = 0; bit < 8; bit++) {
				enum mp_err err;

				b[at] ^= (unsigned char)(1u << bit);
				err = open_buf(b, len, &ei);
				if (err == MP_OK) {
					cr_assert(same_as_saved(b, len, orig,
								len),
						  "byte %zu bit %d read as a "
						  "different snapshot",
						  at, bit);
					padding++;
				} else {
					cr_assert_eq(err, MP_ERR_CORRUPT,
						     "byte %zu bit %d: %s", at,
						     bit, ei.msg);
				}
				b[at] ^= (unsigned char)(1u << bit);
			}
	}
	/* At most 7 padding bits per compressed section. */
	cr_assert_leq(padding, 7 * (n - 1));
	free(orig);
	free(b);
}

Test(format, rejects_payload_checksum_mismatch)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = full_file(&len);
	struct secpos t = find(b, len, MP_SEC_TRACES);
	char want[80];

	wr32(b + t.off + 24, rd32(b + t.off + 24) ^ 1);
	fix_header_crc(b + t.off);
	cr_assert_eq(open_buf(b, len, &ei), MP_ERR_CORRUPT);
	snprintf(want, sizeof(want),
		 "bad checksum in section 'traces' (header at byte %zu)",
		 t.off);
	cr_assert_str_eq(ei.msg, want);
	free(b);
}

Test(format, rejects_wrong_raw_len)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = full_file(&len);
	struct secpos m = find(b, len, MP_SEC_META);
	uint64_t raw = rd64(b + m.off + 16);

	wr64(b + m.off + 16, raw + 1);
	fix_header_crc(b + m.off);
	cr_assert_eq(open_buf(b, len, &ei), MP_ERR_CORRUPT);
	cr_assert(strstr(ei.msg, "corrupt section 'meta'"), "%s", ei.msg);
	wr64(b + m.off + 16, raw - 1);
	fix_header_crc(b + m.off);
	cr_assert_eq(open_buf(b, len, &ei), MP_ERR_CORRUPT);
	cr_assert(strstr(ei.msg, "corrupt section 'meta'"), "%s", ei.msg);
	/* A claim far beyond what the stored bytes can hold. */
	wr64(b + m.off + 16, (uint64_t)1 << 40);
	fix_header_crc(b + m.off);
	cr_assert_eq(open_buf(b, len, &ei), MP_ERR_CORRUPT);
	cr_assert(strstr(ei.msg, "impossible raw length"), "%s", ei.msg);
	free(b);
}

Test(format, rejects_missing_end)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = full_file(&len);

	cr_assert_eq(open_buf(b, len - MP_SECTION_HEADER_LEN, &ei),
		     MP_ERR_TRUNCATED);
	cr_assert_str_eq(ei.msg, "no END section: the file is truncated");
	free(b);
}

Test(format, rejects_data_after_end)
{
	struct mp_errinfo ei = {""};
	size_t len, l2;
	unsigned char *b = full_file(&len), *b2;
	char want[64];

	b2 = edit_bytes(b, len, len, 0, "\0", 1, &l2);
	cr_assert_eq(open_buf(b2, l2, &ei), MP_ERR_CORRUPT);
	snprintf(want, sizeof(want), "data after END section at byte %zu", len);
	cr_assert_str_eq(ei.msg, want);
	free(b2);
	/* A second END is data after the first. */
	b2 = edit_bytes(b, len, len, 0, b + len - 32, 32, &l2);
	cr_assert_eq(open_buf(b2, l2, &ei), MP_ERR_CORRUPT);
	free(b2);
	free(b);
}

Test(format, rejects_duplicate_section)
{
	struct mp_errinfo ei = {""};
	size_t len, l2;
	unsigned char *b = full_file(&len), *b2;
	struct secpos t = find(b, len, MP_SEC_TRACES);
	char want[64];

	b2 = edit_bytes(b, len, t.off + t.size, 0, b + t.off, t.size, &l2);
	cr_assert_eq(open_buf(b2, l2, &ei), MP_ERR_CORRUPT);
	snprintf(want, sizeof(want), "duplicate section 'traces' at byte %zu",
		 t.off + t.size);
	cr_assert_str_eq(ei.msg, want);
	free(b2);
	free(b);
}

Test(format, rejects_missing_required_section)
{
	static const struct {
		uint32_t tag;
		const char *name;
	} req[] = {{MP_SEC_META, "meta"},
		   {MP_SEC_MODULES, "modules"},
		   {MP_SEC_STACKS, "stacks"},
		   {MP_SEC_TRACES, "traces"}};
	struct mp_errinfo ei = {""};
	size_t len, l2;
	unsigned char *b = full_file(&len), *b2;

	for (size_t i = 0; i < 4; i++) {
		struct secpos s = find(b, len, req[i].tag);
		char want[64];

		b2 = edit_bytes(b, len, s.off, s.size, "", 0, &l2);
		cr_assert_eq(open_buf(b2, l2, &ei), MP_ERR_CORRUPT);
		snprintf(want, sizeof(want), "missing section '%s'",
			 req[i].name);
		cr_assert_str_eq(ei.msg, want);
		free(b2);
	}
	/* BLKS and SYMS are optional. */
	{
		struct secpos s = find(b, len, MP_SEC_BLOCKS);

		b2 = edit_bytes(b, len, s.off, s.size, "", 0, &l2);
		cr_assert_eq(open_buf(b2, l2, &ei), MP_OK, "%s", ei.msg);
		free(b2);
	}
	free(b);
}

/* ------------------------------------------------------------------ */
/* Payload rules, through the raw writer                              */

static void w_meta(struct mpw *w)
{
	mpw_begin(w, MP_SEC_META);
	mpw_meta_uint(w, "pid", 1);
	mpw_end(w);
	mpw_begin(w, MP_SEC_MODULES);
	mpw_uleb(w, 0);
	mpw_end(w);
}

static void w_one_stack(struct mpw *w)
{
	mpw_begin(w, MP_SEC_STACKS);
	mpw_uleb(w, 1);
	mpw_uleb(w, 1);
	mpw_sleb(w, 0x1234);
	mpw_end(w);
}

static void fill_bad_stack_ref(struct mpw *w)
{
	w_meta(w);
	w_one_stack(w);
	mpw_begin(w, MP_SEC_TRACES);
	mpw_uleb(w, 1);
	mpw_uleb(w, 1); /* only stack 0 exists */
	for (int i = 0; i < 5; i++)
		mpw_uleb(w, 0);
	mpw_end(w);
}

static void w_one_trace(struct mpw *w)
{
	mpw_begin(w, MP_SEC_TRACES);
	mpw_uleb(w, 1);
	for (int i = 0; i < 6; i++)
		mpw_uleb(w, 0);
	mpw_end(w);
}

static void fill_bad_trace_ref(struct mpw *w)
{
	w_meta(w);
	w_one_stack(w);
	w_one_trace(w);
	mpw_begin(w, MP_SEC_BLOCKS);
	mpw_uleb(w, 1);
	mpw_uleb(w, 0x1000); /* two bytes */
	mpw_uleb(w, 16);
	mpw_uleb(w, 99);
	mpw_end(w);
}

static void fill_non_ascending_blocks(struct mpw *w)
{
	w_meta(w);
	w_one_stack(w);
	w_one_trace(w);
	mpw_begin(w, MP_SEC_BLOCKS);
	mpw_uleb(w, 2);
	mpw_uleb(w, 0x1000);
	mpw_uleb(w, 16);
	mpw_uleb(w, 0);
	mpw_uleb(w, 0); /* same address again */
	mpw_uleb(w, 16);
	mpw_uleb(w, 0);
	mpw_end(w);
}

static void fill_unknown_meta_type(struct mpw *w)
{
	mpw_begin(w, MP_SEC_META);
	mpw_str(w, "pid");
	mpw_uleb(w, 2);
	mpw_uleb(w, 1);
	mpw_end(w);
	mpw_begin(w, MP_SEC_MODULES);
	mpw_uleb(w, 0);
	mpw_end(w);
	w_one_stack(w);
	w_one_trace(w);
}

static void fill_bad_string_ref(struct mpw *w)
{
	w_meta(w);
	w_one_stack(w);
	w_one_trace(w);
	mpw_begin(w, MP_SEC_SYMBOLS);
	mpw_uleb(w, 1);
	mpw_str(w, "main");
	mpw_uleb(w, 1);
	mpw_uleb(w, 0x1234);
	mpw_uleb(w, 0);
	mpw_uleb(w, 1);
	mpw_uleb(w, 1);
	mpw_uleb(w, 2); /* only string 1 exists */
	mpw_uleb(w, 7);
	mpw_end(w);
}

static void fill_huge_count(struct mpw *w)
{
	w_meta(w);
	mpw_begin(w, MP_SEC_STACKS);
	mpw_uleb(w, UINT64_MAX / 2);
	mpw_end(w);
	w_one_trace(w);
}

static void fill_trailing_bytes(struct mpw *w)
{
	w_meta(w);
	w_one_stack(w);
	w_one_trace(w);
	mpw_begin(w, MP_SEC_BLOCKS);
	mpw_uleb(w, 0);
	mpw_uleb(w, 0);
	mpw_end(w);
}

static void expect_corrupt(void (*fill)(struct mpw *w), const char *want)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = write_raw(fill, &len);

	cr_assert_eq(open_buf(b, len, &ei), MP_ERR_CORRUPT, "%s", ei.msg);
	cr_assert_str_eq(ei.msg, want);
	free(b);
}

Test(format, rejects_stack_index_out_of_range)
{
	expect_corrupt(fill_bad_stack_ref,
		       "corrupt section 'traces': stack index 1 out of range "
		       "at byte 1 of its data");
}

Test(format, rejects_trace_index_out_of_range)
{
	expect_corrupt(fill_bad_trace_ref,
		       "corrupt section 'blocks': trace index 99 out of range "
		       "at byte 4 of its data");
}

Test(format, rejects_non_ascending_blocks)
{
	expect_corrupt(fill_non_ascending_blocks,
		       "corrupt section 'blocks': block addresses not "
		       "ascending at byte 5 of its data");
}

Test(format, rejects_unknown_meta_type)
{
	expect_corrupt(fill_unknown_meta_type,
		       "corrupt section 'meta': unknown value type 2 at byte 4 "
		       "of its data");
}

Test(format, rejects_string_reference_out_of_range)
{
	expect_corrupt(fill_bad_string_ref,
		       "corrupt section 'symbols': string reference 2 out of "
		       "range at byte 12 of its data");
}

Test(format, rejects_count_beyond_the_data)
{
	expect_corrupt(fill_huge_count,
		       "corrupt section 'stacks': count 9223372036854775807 "
		       "exceeds the data at byte 0 of its data");
}

Test(format, rejects_bytes_left_over_in_a_section)
{
	expect_corrupt(fill_trailing_bytes, "corrupt section 'blocks': 1 bytes "
					    "left over at byte 1 of its data");
}

/* ------------------------------------------------------------------ */
/* The shim's path: the raw writer                                    */

#define BIG_NSTACKS 20000

static void fill_raw_api(struct mpw *w)
{
	static const char argv[] = "prog\0-v\0";
	static const unsigned char bid[3] = {1, 0, 2};

	mpw_begin(w, MP_SEC_META);
	mpw_meta_uint(w, "pid", 99);
	mpw_meta_str(w, "exe", "/bin/prog");
	mpw_meta_str(w, "trigger", "exit");
	mpw_str(w, "argv");
	mpw_uleb(w, MP_META_STR);
	mpw_strn(w, argv, sizeof(argv) - 1);
	mpw_meta_uint(w, "live_bytes", 1ull << 40);
	mpw_end(w);

	mpw_begin(w, MP_SEC_MODULES);
	mpw_uleb(w, 1);
	mpw_str(w, "/bin/prog");
	mpw_uleb(w, 0x400000);
	mpw_uleb(w, 0x400000);
	mpw_uleb(w, 0x500000);
	mpw_uleb(w, sizeof(bid));
	mpw_bytes(w, bid, sizeof(bid));
	mpw_end(w);

	/* More than the 64 KiB staging buffer, to stream several chunks. */
	mpw_begin(w, MP_SEC_STACKS);
	mpw_uleb(w, BIG_NSTACKS);
	for (uint64_t i = 0; i < BIG_NSTACKS; i++) {
		mpw_uleb(w, 4);
		mpw_sleb(w, i ? 0x10 : 0x401000);
		mpw_sleb(w, -0x300000);
		mpw_sleb(w, (int64_t)(i * 0x9e3779b97f4a7c15ull));
		mpw_sleb(w, INT64_MIN);
	}
	mpw_end(w);

	mpw_begin(w, MP_SEC_TRACES);
	mpw_uleb(w, 2);
	for (uint64_t i = 0; i < 2; i++) {
		mpw_uleb(w, BIG_NSTACKS - 1 - i);
		mpw_uleb(w, 100 * (i + 1));
		mpw_uleb(w, i + 1);
		mpw_uleb(w, 5);
		mpw_uleb(w, 500);
		mpw_uleb(w, 50);
	}
	mpw_end(w);
	/* mpw_close() writes END. */
}

Test(format, reads_what_the_raw_writer_wrote)
{
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = write_raw(fill_raw_api, &len);
	uint64_t first = 0x401000;

	cr_assert_eq(mp_snapshot_open_mem(b, len, &s, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert_eq(s->meta.pid, 99);
	cr_assert_str_eq(s->meta.exe, "/bin/prog");
	cr_assert_str_eq(s->meta.trigger, "exit");
	cr_assert_null(s->meta.name);
	cr_assert_eq(s->meta.argc, 2);
	cr_assert_str_eq(s->meta.argv[0], "prog");
	cr_assert_str_eq(s->meta.argv[1], "-v");
	cr_assert_null(s->meta.argv[2]);
	cr_assert_eq(s->meta.totals.live_bytes, 1ull << 40);
	cr_assert_eq(s->nmodules, 1);
	cr_assert_eq(s->modules[0].build_id_len, 3);
	cr_assert_eq(s->modules[0].build_id[2], 2);
	cr_assert_eq(s->modules[0].end, 0x500000);
	cr_assert_eq(s->nstacks, BIG_NSTACKS);
	for (uint64_t i = 0; i < BIG_NSTACKS; i++) {
		const uint64_t *pc = s->stacks[i].pcs;
		uint64_t p2;

		if (i)
			first += 0x10;
		p2 = first - 0x300000 + i * 0x9e3779b97f4a7c15ull;
		cr_assert_eq(s->stacks[i].depth, 4);
		cr_assert_eq(pc[0], first);
		cr_assert_eq(pc[1], first - 0x300000);
		cr_assert_eq(pc[2], p2);
		cr_assert_eq(pc[3], p2 + 0x8000000000000000ull);
	}
	cr_assert_eq(s->ntraces, 2);
	cr_assert_eq(s->traces[1].stack, BIG_NSTACKS - 2);
	cr_assert_eq(s->traces[1].live_bytes, 200);
	cr_assert(!s->has_blocks);
	/* The streamed section really was compressed, in one zlib stream. */
	{
		struct secpos st = find(b, len, MP_SEC_STACKS);

		cr_assert_eq(rd32(b + st.off + 4), MP_SECTION_ZLIB);
		cr_assert_gt(rd64(b + st.off + 16), 64 * 1024);
	}
	mp_snapshot_free(s);
	free(b);
}

Test(format, writer_errors_are_sticky)
{
	const char *path = tmp_path("sticky.memprof");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct mpw w;

	cr_assert(fd >= 0);
	cr_assert_eq(mpw_open(&w, fd), 0);
	mpw_uleb(&w, 1); /* no section open */
	mpw_begin(&w, MP_SEC_META);
	mpw_meta_uint(&w, "pid", 1);
	mpw_end(&w);
	cr_assert_eq(mpw_close(&w), EINVAL);
	cr_assert_eq(mpw_close(&w), EINVAL);
	close(fd);

	fd = open(path, O_RDONLY);
	cr_assert_eq(mpw_open(&w, fd), EBADF);
	cr_assert_eq(mpw_close(&w), EBADF);
	close(fd);

	fd = open(path, O_RDWR | O_TRUNC);
	cr_assert_eq(mpw_open(&w, fd), 0);
	mpw_begin(&w, MP_SEC_META);
	mpw_abort(&w);
	cr_assert_eq(mpw_close(&w), ECANCELED);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* The heap graph (GRPH, format 1.1)                                  */

/* A snapshot of nblocks blocks, each allocated by its only trace. */
static struct mp_snapshot *make_heap(size_t nblocks)
{
	struct mp_snapshot *s = mp__snapshot_new();

	cr_assert_not_null(s);
	s->meta.pid = 77;
	s->nstacks = 1;
	s->stacks = mp__alloc(s, sizeof(*s->stacks));
	s->stacks[0].depth = 1;
	s->stacks[0].pcs = mp__alloc(s, 8);
	s->stacks[0].pcs[0] = 0x401234;
	s->ntraces = 1;
	s->traces = mp__alloc(s, sizeof(*s->traces));
	s->traces[0] = (struct mp_trace){.live_bytes = 16 * nblocks,
					 .live_blocks = nblocks,
					 .allocs = nblocks,
					 .alloc_bytes = 16 * nblocks};
	s->has_blocks = true;
	s->nblocks = nblocks;
	s->blocks = mp__alloc(s, (nblocks ? nblocks : 1) * sizeof(*s->blocks));
	for (size_t i = 0; i < nblocks; i++)
		s->blocks[i] = (struct mp_block){0x10000 + 32 * i, 16, 0};
	return s;
}

/*
 * Six blocks: roots of every kind, at the start and inside, several kinds
 * at once; start and interior edges; self-edges; blocks without edges.
 */
static struct mp_snapshot *make_graph(void)
{
	struct mp_snapshot *s = make_heap(6);
	struct mp_graph *g = &s->graph;
	static const uint64_t start[] = {0, 2, 3, 3, 6, 6, 8};
	static const struct mp_edge edges[] = {
		{1, 0},		       /* 0 -> 1 */
		{3, MP_EDGE_INTERIOR}, /* 0 -> 3 */
		{1, 0},		       /* 1 -> 1 */
		{0, MP_EDGE_INTERIOR}, /* 3 -> 0 */
		{4, 0},		       /* 3 -> 4 */
		{5, 0},		       /* 3 -> 5 */
		{2, MP_EDGE_INTERIOR}, /* 5 -> 2 */
		{5, MP_EDGE_INTERIOR}, /* 5 -> 5 */
	};
	static const struct mp_root_ref roots[] = {
		{0, MP_ROOT_DATA, 0},
		{2, MP_ROOT_STACK | MP_ROOT_REGS, MP_ROOT_TLS},
		{4, 0,
		 MP_ROOT_DATA | MP_ROOT_STACK | MP_ROOT_REGS | MP_ROOT_TLS},
		{5, MP_ROOT_TLS, 0},
	};

	g->edge_start = mp__alloc(s, sizeof(start));
	memcpy(g->edge_start, start, sizeof(start));
	g->nedges = sizeof(edges) / sizeof(edges[0]);
	g->edges = mp__alloc(s, sizeof(edges));
	memcpy(g->edges, edges, sizeof(edges));
	g->nroots = sizeof(roots) / sizeof(roots[0]);
	g->roots = mp__alloc(s, sizeof(roots));
	memcpy(g->roots, roots, sizeof(roots));
	g->threads = 3;
	g->threads_unscanned = 1;
	s->has_graph = true;
	return s;
}

static void assert_same_graph(const struct mp_snapshot *a,
			      const struct mp_snapshot *b)
{
	const struct mp_graph *x = &a->graph, *y = &b->graph;

	cr_assert_eq(a->has_graph, b->has_graph);
	if (!b->has_graph)
		return;
	cr_assert_eq(a->nblocks, b->nblocks);
	cr_assert_eq(x->threads, y->threads);
	cr_assert_eq(x->threads_unscanned, y->threads_unscanned);
	cr_assert_eq(x->nedges, y->nedges);
	cr_assert_not_null(x->edge_start);
	cr_assert_eq(memcmp(x->edge_start, y->edge_start,
			    (b->nblocks + 1) * sizeof(*y->edge_start)),
		     0, "edge offsets differ");
	for (size_t i = 0; i < y->nedges; i++) {
		cr_assert_eq(x->edges[i].to, y->edges[i].to, "edge %zu", i);
		cr_assert_eq(x->edges[i].flags, y->edges[i].flags, "edge %zu",
			     i);
	}
	cr_assert_eq(x->nroots, y->nroots);
	for (size_t i = 0; i < y->nroots; i++) {
		cr_assert_eq(x->roots[i].block, y->roots[i].block);
		cr_assert_eq(x->roots[i].start_kinds, y->roots[i].start_kinds);
		cr_assert_eq(x->roots[i].interior_kinds,
			     y->roots[i].interior_kinds);
	}
}

/* Saves s, reads it back, checks it is the same and saves to the same
 * bytes again. Returns the file's bytes. */
static unsigned char *graph_round_trip(const struct mp_snapshot *s, size_t *len)
{
	struct mp_snapshot *back = NULL;
	struct mp_errinfo ei = {""};
	unsigned char *b = save_to_buf(s, len), *b2;
	size_t l2;

	cr_assert_eq(rd32(b + 8) >> 16, 2, "minor version 2");
	cr_assert_eq(mp_snapshot_open_mem(b, *len, &back, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert_eq(back->version_minor, 2);
	assert_same(back, s);
	assert_same_graph(back, s);
	b2 = save_to_buf(back, &l2);
	cr_assert_eq(l2, *len);
	cr_assert_eq(memcmp(b, b2, l2), 0, "second generation differs");
	free(b2);
	mp_snapshot_free(back);
	return b;
}

Test(format, round_trips_a_graph)
{
	struct mp_snapshot *s = make_graph();
	struct secpos sec[16];
	static const uint32_t order[] = {
		MP_SEC_META,   MP_SEC_MODULES, MP_SEC_STACKS, MP_SEC_TRACES,
		MP_SEC_BLOCKS, MP_SEC_GRAPH,   MP_SEC_END};
	size_t len, n;
	unsigned char *b = graph_round_trip(s, &len);

	n = walk(b, len, sec, 16);
	cr_assert_eq(n, 7);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(sec[i].tag, order[i], "section %zu", i);
	free(b);
	mp_snapshot_free(s);
}

Test(format, round_trips_an_empty_graph)
{
	struct mp_snapshot *s = make_heap(0), *back = NULL;
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b;

	/* No edge offsets at all is accepted for a graph without edges. */
	s->has_graph = true;
	s->graph.threads = 1;
	b = save_to_buf(s, &len);
	cr_assert_eq(mp_snapshot_open_mem(b, len, &back, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert(back->has_graph);
	cr_assert_eq(back->graph.nedges, 0);
	cr_assert_eq(back->graph.nroots, 0);
	cr_assert_eq(back->graph.threads, 1);
	cr_assert_not_null(back->graph.edge_start);
	cr_assert_eq(back->graph.edge_start[0], 0);
	mp_snapshot_free(back);
	free(b);
	mp_snapshot_free(s);

	/* Blocks, but none with an edge and no roots. */
	s = make_heap(3);
	s->has_graph = true;
	s->graph.edge_start = mp__alloc(s, 4 * sizeof(uint64_t));
	b = graph_round_trip(s, &len);
	free(b);
	mp_snapshot_free(s);
}

#define BIG_GRAPH_BLOCKS 100000

static uint64_t lcg(uint64_t *x)
{
	*x = *x * 6364136223846793005ull + 1442695040888963407ull;
	return *x >> 33;
}

Test(format, round_trips_a_large_graph)
{
	struct mp_snapshot *s = make_heap(BIG_GRAPH_BLOCKS);
	struct mp_graph *g = &s->graph;
	uint64_t x = 42;
	size_t len, cap = 3 * (size_t)BIG_GRAPH_BLOCKS;
	unsigned char *b;

	g->edge_start = mp__alloc(s, (BIG_GRAPH_BLOCKS + 1) * 8);
	g->edges = mp__alloc(s, cap * sizeof(*g->edges));
	g->roots = mp__alloc(s, BIG_GRAPH_BLOCKS * sizeof(*g->roots));
	for (uint32_t i = 0; i < BIG_GRAPH_BLOCKS; i++) {
		uint32_t t[3];

		g->edge_start[i] = g->nedges;
		/* Near and far targets, so deltas take 1 to 3 bytes. */
		t[0] = (uint32_t)(lcg(&x) % BIG_GRAPH_BLOCKS);
		t[1] = (uint32_t)((i + lcg(&x) % 64) % BIG_GRAPH_BLOCKS);
		t[2] = i % 17 ? (uint32_t)(lcg(&x) % BIG_GRAPH_BLOCKS) : i;
		for (int p = 0; p < 3; p++)
			for (int q = p + 1; q < 3; q++)
				if (t[q] < t[p]) {
					uint32_t tmp = t[p];

					t[p] = t[q];
					t[q] = tmp;
				}
		for (int p = 0; p < 3; p++)
			if (!p || t[p] != t[p - 1])
				g->edges[g->nedges++] = (struct mp_edge){
					t[p], (uint32_t)(lcg(&x) & 1)};
		if (i % 7 == 0) {
			uint8_t k = (uint8_t)(lcg(&x) % 255 + 1);

			g->roots[g->nroots++] =
				(struct mp_root_ref){i, k & 15, k >> 4};
		}
	}
	g->edge_start[BIG_GRAPH_BLOCKS] = g->nedges;
	g->threads = 100000;
	g->threads_unscanned = UINT32_MAX;
	s->has_graph = true;
	cr_assert_gt(g->nedges, 290000);
	b = graph_round_trip(s, &len);
	free(b);
	mp_snapshot_free(s);
}

/* The bytes of make_graph() as saved. */
static unsigned char *graph_file(size_t *len)
{
	struct mp_snapshot *s = make_graph();
	unsigned char *b = save_to_buf(s, len);

	mp_snapshot_free(s);
	return b;
}

Test(format, rejects_truncation_of_a_graph_file)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = graph_file(&len);

	for (size_t l = 0; l < len; l++) {
		unsigned char *p = malloc(l ? l : 1);

		memcpy(p, b, l);
		cr_assert_eq(open_buf(p, l, &ei), MP_ERR_TRUNCATED,
			     "prefix of %zu bytes: %s", l, ei.msg);
		free(p);
	}
	cr_assert_eq(open_buf(b, len, &ei), MP_OK);
	free(b);
}

Test(format, rejects_flipped_bit_in_a_graph_file)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = graph_file(&len);
	struct secpos g = find(b, len, MP_SEC_GRAPH);

	for (size_t at = g.off; at < g.off + g.size; at++)
		for (int bit = 0; bit < 8; bit++) {
			enum mp_err err;

			b[at] ^= (unsigned char)(1u << bit);
			err = open_buf(b, len, &ei);
			cr_assert(err == MP_OK || err == MP_ERR_CORRUPT,
				  "byte %zu bit %d: %s", at, bit, ei.msg);
			b[at] ^= (unsigned char)(1u << bit);
		}
	free(b);
}

/*
 * GRPH payloads written value by value, stored uncompressed so that a test
 * can cut or flip their bytes. Four blocks; every value below 128 is one
 * byte, so a value's index is its byte offset.
 */
static unsigned char grph_raw[256];
static size_t grph_raw_len;
static bool grph_with_blocks;

static void set_grph(const uint64_t *v, size_t n)
{
	grph_raw_len = 0;
	for (size_t i = 0; i < n; i++) {
		cr_assert_leq(grph_raw_len + MP_LEB_MAX, sizeof(grph_raw));
		grph_raw_len += mp_leb_put_u(grph_raw + grph_raw_len, v[i]);
	}
	grph_with_blocks = true;
}

static void fill_grph(struct mpw *w)
{
	w_meta(w);
	w_one_stack(w);
	w_one_trace(w);
	if (grph_with_blocks) {
		mpw_begin(w, MP_SEC_BLOCKS);
		mpw_uleb(w, 4);
		for (int i = 0; i < 4; i++) {
			mpw_uleb(w, 0x100);
			mpw_uleb(w, 8);
			mpw_uleb(w, 0);
		}
		mpw_end(w);
	}
	mpw_copy_section(w, MP_SEC_GRAPH, 0, grph_raw_len,
			 (uint32_t)crc32(0, grph_raw, (uInt)grph_raw_len),
			 grph_raw, grph_raw_len);
}

#define NV(a) (sizeof(a) / sizeof((a)[0]))
#define E(delta, flags) ((uint64_t)(delta) << MP_GRPH_EDGE_SHIFT | (flags))

/* 4 blocks, 2 threads, 0 unscanned; roots 0 (data) and 3 (stack inside);
 * 0 -> 1, 0 -> 3 (interior), 2 -> 2. */
static const uint64_t good_grph[] = {
	4, 2, 0, 2, 0, 1, 0, 3, 0, 2, 2, E(1, 0), E(2, 1), 0, 1, E(2, 0), 0};

static void expect_grph_corrupt(const uint64_t *v, size_t n, const char *want)
{
	char full[256];

	set_grph(v, n);
	snprintf(full, sizeof(full), "corrupt section 'graph': %s", want);
	expect_corrupt(fill_grph, full);
}

Test(format, reads_a_graph_from_the_raw_writer)
{
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {""};
	const struct mp_graph *g;
	size_t len;
	unsigned char *b;

	set_grph(good_grph, NV(good_grph));
	b = write_raw(fill_grph, &len);
	cr_assert_eq(mp_snapshot_open_mem(b, len, &s, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert(s->has_graph);
	g = &s->graph;
	cr_assert_eq(g->threads, 2);
	cr_assert_eq(g->threads_unscanned, 0);
	cr_assert_eq(g->nroots, 2);
	cr_assert_eq(g->roots[0].block, 0);
	cr_assert_eq(g->roots[0].start_kinds, MP_ROOT_DATA);
	cr_assert_eq(g->roots[0].interior_kinds, 0);
	cr_assert_eq(g->roots[1].block, 3);
	cr_assert_eq(g->roots[1].start_kinds, 0);
	cr_assert_eq(g->roots[1].interior_kinds, MP_ROOT_STACK);
	cr_assert_eq(g->nedges, 3);
	cr_assert_eq(g->edge_start[0], 0);
	cr_assert_eq(g->edge_start[1], 2);
	cr_assert_eq(g->edge_start[2], 2);
	cr_assert_eq(g->edge_start[3], 3);
	cr_assert_eq(g->edge_start[4], 3);
	cr_assert_eq(g->edges[0].to, 1);
	cr_assert_eq(g->edges[0].flags, 0);
	cr_assert_eq(g->edges[1].to, 3);
	cr_assert_eq(g->edges[1].flags, MP_EDGE_INTERIOR);
	cr_assert_eq(g->edges[2].to, 2);
	mp_snapshot_free(s);
	free(b);
}

Test(format, rejects_a_graph_without_blocks)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b;

	set_grph(good_grph, NV(good_grph));
	grph_with_blocks = false;
	b = write_raw(fill_grph, &len);
	cr_assert_eq(open_buf(b, len, &ei), MP_ERR_CORRUPT);
	cr_assert(strstr(ei.msg, "corrupt section 'graph'") &&
			  strstr(ei.msg, "graph without blocks"),
		  "%s", ei.msg);
	free(b);
}

Test(format, rejects_a_graph_of_another_block_count)
{
	uint64_t v[NV(good_grph)];

	memcpy(v, good_grph, sizeof(v));
	v[0] = 5;
	expect_grph_corrupt(v, NV(v),
			    "5 blocks in the graph, 4 in blocks at byte 0 of "
			    "its data");
	v[0] = 3;
	expect_grph_corrupt(v, NV(v),
			    "3 blocks in the graph, 4 in blocks at byte 0 of "
			    "its data");
}

Test(format, rejects_edge_target_out_of_range)
{
	const uint64_t a[] = {4, 0, 0, 0, 0, 0, 1, E(4, 0), 0};
	const uint64_t b[] = {4, 0, 0, 0, 2, E(1, 0), E(3, 0), 0, 0, 0};

	expect_grph_corrupt(a, NV(a),
			    "edge target 4 out of range at byte 7 of its data");
	expect_grph_corrupt(b, NV(b),
			    "edge target 4 out of range at byte 6 of its data");
}

Test(format, rejects_non_ascending_edge_targets)
{
	/* 2 then 1: the writer's wrapped delta is a target out of range. */
	const uint64_t down[] = {4, 0, 0, 0, 0, 2, E(2, 0), (uint64_t)-1 << 3,
				 0, 0};
	/* The same target twice is a delta of 0. */
	const uint64_t dup[] = {4, 0, 0, 0, 0, 2, E(2, 0), E(0, 1), 0, 0};
	/* The first edge may go to block 0. */
	const uint64_t zero[] = {4, 0, 0, 0, 1, E(0, 1), 0, 0, 0};

	expect_grph_corrupt(down, NV(down),
			    "edge target 2305843009213693953 out of range at "
			    "byte 7 of its data");
	expect_grph_corrupt(dup, NV(dup),
			    "edge targets of block 1 not ascending at byte 7 "
			    "of its data");
	set_grph(zero, NV(zero));
	{
		struct mp_errinfo ei = {""};
		size_t len;
		unsigned char *b = write_raw(fill_grph, &len);

		cr_assert_eq(open_buf(b, len, &ei), MP_OK, "%s", ei.msg);
		free(b);
	}
}

Test(format, rejects_reserved_edge_flags)
{
	uint64_t v[] = {4, 0, 0, 0, 1, E(1, 2), 0, 0, 0};

	expect_grph_corrupt(v, NV(v),
			    "reserved edge flags 0x2 at byte 5 of its data");
	v[5] = E(1, 4);
	expect_grph_corrupt(v, NV(v),
			    "reserved edge flags 0x4 at byte 5 of its data");
	v[5] = E(1, 7);
	expect_grph_corrupt(v, NV(v),
			    "reserved edge flags 0x7 at byte 5 of its data");
}

Test(format, rejects_bad_root_kinds)
{
	uint64_t v[] = {4, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0};

	expect_grph_corrupt(v, NV(v), "root of no kind at byte 6 of its data");
	v[5] = 16;
	expect_grph_corrupt(v, NV(v),
			    "unknown root kinds 0x10 at byte 6 of its data");
	v[5] = 0;
	v[6] = 0x18;
	expect_grph_corrupt(v, NV(v),
			    "unknown root kinds 0x18 at byte 6 of its data");
	/* Every known kind, at the start and inside, is fine. */
	v[5] = 15;
	v[6] = 15;
	set_grph(v, NV(v));
	{
		struct mp_errinfo ei = {""};
		size_t len;
		unsigned char *b = write_raw(fill_grph, &len);

		cr_assert_eq(open_buf(b, len, &ei), MP_OK, "%s", ei.msg);
		free(b);
	}
}

Test(format, rejects_non_ascending_roots)
{
	uint64_t v[] = {4, 0, 0, 2, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0};

	expect_grph_corrupt(v, NV(v),
			    "root blocks not ascending at byte 7 of its data");
	v[7] = 3;
	expect_grph_corrupt(v, NV(v),
			    "root block 4 out of range at byte 7 of its data");
	v[3] = 1;
	v[4] = 4;
	expect_grph_corrupt(v, NV(v),
			    "root block 4 out of range at byte 4 of its data");
	/* A delta that wraps around past block 0. */
	v[3] = 2;
	v[4] = 1;
	v[7] = UINT64_MAX;
	expect_grph_corrupt(v, NV(v),
			    "root block out of range at byte 7 of its data");
}

Test(format, rejects_bad_graph_counts)
{
	uint64_t big[] = {4, (uint64_t)UINT32_MAX + 1, 0, 0, 0, 0, 0, 0};
	const uint64_t roots[] = {4, 0, 0, 1000, 0, 0, 0, 0};
	const uint64_t degree[] = {4, 0, 0, 0, 0, 0, 5, E(1, 0), E(1, 0), 0};
	const uint64_t extra[] = {4, 0, 0, 0, 0, 0, 0, 0, 0};
	const uint64_t shortv[] = {4, 0, 0, 0, 0, 0, 0};

	expect_grph_corrupt(big, NV(big),
			    "thread count 4294967296 too large at byte 1 of "
			    "its data");
	big[1] = 0;
	big[2] = (uint64_t)UINT32_MAX + 1;
	expect_grph_corrupt(big, NV(big),
			    "thread count 4294967296 too large at byte 2 of "
			    "its data");
	expect_grph_corrupt(roots, NV(roots),
			    "count 1000 exceeds the data at byte 3 of its "
			    "data");
	expect_grph_corrupt(degree, NV(degree),
			    "count 5 exceeds the data at byte 6 of its data");
	expect_grph_corrupt(extra, NV(extra),
			    "1 bytes left over at byte 8 of its data");
	expect_grph_corrupt(shortv, NV(shortv),
			    "unexpected end of data at byte 7 of its data");
}

Test(format, rejects_every_cut_of_a_graph_payload)
{
	struct mp_errinfo ei = {""};
	size_t full, len;
	unsigned char *b;

	set_grph(good_grph, NV(good_grph));
	full = grph_raw_len;
	for (size_t l = 0; l < full; l++) {
		grph_raw_len = l;
		b = write_raw(fill_grph, &len);
		cr_assert_eq(open_buf(b, len, &ei), MP_ERR_CORRUPT,
			     "payload cut to %zu bytes: %s", l, ei.msg);
		cr_assert(strstr(ei.msg, "corrupt section 'graph'"), "%s",
			  ei.msg);
		free(b);
	}
	grph_raw_len = full;
	b = write_raw(fill_grph, &len);
	cr_assert_eq(open_buf(b, len, &ei), MP_OK, "%s", ei.msg);
	free(b);
}

/* Whatever a damaged payload reads as obeys the graph's invariants. */
Test(format, damaged_graph_payloads_are_rejected_or_valid)
{
	struct mp_errinfo ei = {""};
	size_t len;

	set_grph(good_grph, NV(good_grph));
	for (size_t at = 0; at < grph_raw_len; at++)
		for (int bit = 0; bit < 8; bit++) {
			struct mp_snapshot *s = NULL;
			unsigned char *b;
			enum mp_err err;

			grph_raw[at] ^= (unsigned char)(1u << bit);
			b = write_raw(fill_grph, &len);
			err = mp_snapshot_open_mem(b, len, &s, &ei);
			grph_raw[at] ^= (unsigned char)(1u << bit);
			free(b);
			if (err) {
				cr_assert_eq(err, MP_ERR_CORRUPT, "%s", ei.msg);
				continue;
			}
			const struct mp_graph *g = &s->graph;

			cr_assert(s->has_graph);
			cr_assert_eq(g->edge_start[s->nblocks], g->nedges);
			for (size_t i = 0; i < s->nblocks; i++)
				for (uint64_t j = g->edge_start[i];
				     j < g->edge_start[i + 1]; j++) {
					cr_assert_lt(g->edges[j].to,
						     s->nblocks);
					cr_assert_leq(g->edges[j].flags, 1);
					if (j > g->edge_start[i])
						cr_assert_gt(
							g->edges[j].to,
							g->edges[j - 1].to);
				}
			for (size_t i = 0; i < g->nroots; i++) {
				cr_assert_lt(g->roots[i].block, s->nblocks);
				cr_assert(g->roots[i].start_kinds |
					  g->roots[i].interior_kinds);
			}
			mp_snapshot_free(s);
		}
}

/* mp_snapshot_save refuses a graph that no reader would accept. */
static void expect_save_refused(struct mp_snapshot *s, const char *what)
{
	struct mp_errinfo ei = {""};
	const char *path = tmp_path("refused.memprof");

	cr_assert_eq(mp_snapshot_save(s, path, &ei), MP_ERR_USAGE, "%s", what);
	cr_assert(strstr(ei.msg, "cannot save"), "%s: %s", what, ei.msg);
	cr_assert_neq(access(path, F_OK), 0, "%s: a file was written", what);
	mp_snapshot_free(s);
}

Test(format, save_refuses_a_bad_graph)
{
	struct mp_snapshot *s;

	s = make_graph();
	s->has_blocks = false;
	expect_save_refused(s, "graph without blocks");
	s = make_graph();
	s->graph.edges[1].to = 6;
	expect_save_refused(s, "target out of range");
	s = make_graph();
	s->graph.edges[1].to = 1;
	expect_save_refused(s, "duplicate target");
	s = make_graph();
	s->graph.edges[0].to = 4;
	expect_save_refused(s, "targets not ascending");
	s = make_graph();
	s->graph.edges[2].flags = 2;
	expect_save_refused(s, "reserved flags");
	s = make_graph();
	s->graph.edge_start[6] = 7;
	expect_save_refused(s, "offsets do not cover the edges");
	s = make_graph();
	s->graph.edge_start[2] = 4;
	expect_save_refused(s, "offsets not ascending");
	s = make_graph();
	s->graph.roots[1].start_kinds = 0;
	s->graph.roots[1].interior_kinds = 0;
	expect_save_refused(s, "root of no kind");
	s = make_graph();
	s->graph.roots[1].interior_kinds = 16;
	expect_save_refused(s, "unknown root kind");
	s = make_graph();
	s->graph.roots[1].block = 0;
	expect_save_refused(s, "roots not ascending");
	s = make_graph();
	s->graph.roots[3].block = 6;
	expect_save_refused(s, "root out of range");
}

/* ------------------------------------------------------------------ */
/* The timeline (TIME, format 1.2)                                    */

#define T0 1700000000000000000ull

/* Sets a timeline on s: equal times, a big jump, extreme figures. */
static void set_timeline(struct mp_snapshot *s)
{
	struct mp_timeline *tl = &s->timeline;
	static const struct mp_sample samples[] = {
		{T0, 0, 0},
		{T0 + 10000000, 4096, 3},
		{T0 + 10000000, 4000, 2}, /* two samples at the same time */
		{T0 + 20000000, UINT64_MAX, UINT64_MAX},
		{T0 + (1ull << 40), 1, 1},
	};
	static const struct mp_mark marks[] = {
		{1, T0 + 15000000},
		{2, T0 + 15000000},
		{UINT64_MAX, T0 + 30000000},
		{0, T0 + (1ull << 40)},
	};

	s->meta.start_ns = T0;
	tl->interval_ns = 40000000;
	tl->nsamples = NV(samples);
	tl->samples = mp__alloc(s, sizeof(samples));
	memcpy(tl->samples, samples, sizeof(samples));
	tl->nmarks = NV(marks);
	tl->marks = mp__alloc(s, sizeof(marks));
	memcpy(tl->marks, marks, sizeof(marks));
	s->has_timeline = true;
}

static void assert_same_timeline(const struct mp_snapshot *a,
				 const struct mp_snapshot *b)
{
	const struct mp_timeline *x = &a->timeline, *y = &b->timeline;

	cr_assert_eq(a->has_timeline, b->has_timeline);
	if (!b->has_timeline)
		return;
	cr_assert_eq(x->interval_ns, y->interval_ns);
	cr_assert_eq(x->nsamples, y->nsamples);
	for (size_t i = 0; i < y->nsamples; i++) {
		cr_assert_eq(x->samples[i].ns, y->samples[i].ns, "sample %zu",
			     i);
		cr_assert_eq(x->samples[i].live_bytes, y->samples[i].live_bytes,
			     "sample %zu", i);
		cr_assert_eq(x->samples[i].live_blocks,
			     y->samples[i].live_blocks, "sample %zu", i);
	}
	cr_assert_eq(x->nmarks, y->nmarks);
	for (size_t i = 0; i < y->nmarks; i++) {
		cr_assert_eq(x->marks[i].seq, y->marks[i].seq, "mark %zu", i);
		cr_assert_eq(x->marks[i].ns, y->marks[i].ns, "mark %zu", i);
	}
}

/* Saves s, reads it back, checks it and saves the same bytes again. */
static unsigned char *timeline_round_trip(const struct mp_snapshot *s,
					  size_t *len)
{
	struct mp_snapshot *back = NULL;
	struct mp_errinfo ei = {""};
	unsigned char *b = save_to_buf(s, len), *b2;
	size_t l2;

	cr_assert_eq(mp_snapshot_open_mem(b, *len, &back, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert_eq(back->version_minor, 2);
	assert_same(back, s);
	assert_same_graph(back, s);
	assert_same_timeline(back, s);
	b2 = save_to_buf(back, &l2);
	cr_assert_eq(l2, *len);
	cr_assert_eq(memcmp(b, b2, l2), 0, "second generation differs");
	free(b2);
	mp_snapshot_free(back);
	return b;
}

/* make_graph() with a timeline and symbols: every section there is. */
static struct mp_snapshot *make_timeline(void)
{
	struct mp_snapshot *s = make_graph();

	set_timeline(s);
	s->has_symbols = true;
	s->nsymbols = 1;
	s->symbols = mp__alloc(s, sizeof(*s->symbols));
	s->symbols[0] = (struct mp_symbol){
		.pc = 0x401234, .module = UINT32_MAX, .nframes = 1};
	s->symbols[0].frames = mp__alloc(s, sizeof(struct mp_frame));
	s->symbols[0].frames[0] = (struct mp_frame){"grow", "grow.c", 9};
	return s;
}

Test(format, round_trips_a_timeline)
{
	struct mp_snapshot *s = make_timeline();
	struct secpos sec[16];
	static const uint32_t order[] = {
		MP_SEC_META,	 MP_SEC_MODULES, MP_SEC_STACKS,
		MP_SEC_TRACES,	 MP_SEC_BLOCKS,	 MP_SEC_GRAPH,
		MP_SEC_TIMELINE, MP_SEC_SYMBOLS, MP_SEC_END};
	size_t len, n;
	unsigned char *b = timeline_round_trip(s, &len);

	n = walk(b, len, sec, 16);
	cr_assert_eq(n, NV(order));
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(sec[i].tag, order[i], "section %zu", i);
	free(b);
	mp_snapshot_free(s);
}

Test(format, round_trips_an_empty_timeline)
{
	struct mp_snapshot *s = make_heap(1), *back = NULL;
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b;

	s->has_timeline = true;
	s->timeline.interval_ns = 10000000;
	b = timeline_round_trip(s, &len);
	cr_assert_eq(mp_snapshot_open_mem(b, len, &back, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert(back->has_timeline);
	cr_assert_eq(back->timeline.nsamples, 0);
	cr_assert_eq(back->timeline.nmarks, 0);
	cr_assert_eq(back->timeline.interval_ns, 10000000);
	mp_snapshot_free(back);
	free(b);

	/* Without has_timeline there is no TIME section at all. */
	s->has_timeline = false;
	b = save_to_buf(s, &len);
	cr_assert_eq(mp_snapshot_open_mem(b, len, &back, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert(!back->has_timeline);
	{
		struct secpos sec[16];
		size_t n = walk(b, len, sec, 16);

		for (size_t j = 0; j < n; j++)
			cr_assert_neq(sec[j].tag, MP_SEC_TIMELINE);
	}
	mp_snapshot_free(back);
	free(b);
	mp_snapshot_free(s);
}

Test(format, round_trips_a_timeline_without_start_time)
{
	struct mp_snapshot *s = make_heap(0);

	set_timeline(s);
	s->meta.start_ns = 0; /* absent from META reads as 0 */
	free(timeline_round_trip(s, &(size_t){0}));
	mp_snapshot_free(s);
}

Test(format, save_refuses_a_bad_timeline)
{
	struct mp_snapshot *s;

	s = make_timeline();
	s->timeline.samples[2].ns = T0 + 9999999;
	expect_save_refused(s, "sample going back");
	s = make_timeline();
	s->meta.start_ns = T0 + 1;
	expect_save_refused(s, "first sample before the start");
	s = make_timeline();
	s->timeline.samples[0].ns = T0 + 1;
	s->timeline.marks[1].ns = T0;
	expect_save_refused(s, "mark going back");
	s = make_timeline();
	s->timeline.marks = NULL;
	expect_save_refused(s, "marks missing");
	s = make_timeline();
	s->timeline.samples = NULL;
	expect_save_refused(s, "samples missing");
}

/* The bytes of make_timeline() as saved. */
static unsigned char *timeline_file(size_t *len)
{
	struct mp_snapshot *s = make_timeline();
	unsigned char *b = save_to_buf(s, len);

	mp_snapshot_free(s);
	return b;
}

Test(format, rejects_truncation_of_a_timeline_file)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = timeline_file(&len);
	struct secpos t = find(b, len, MP_SEC_TIMELINE);

	for (size_t l = 0; l < len; l++) {
		unsigned char *p = malloc(l ? l : 1);

		memcpy(p, b, l);
		cr_assert_eq(open_buf(p, l, &ei), MP_ERR_TRUNCATED,
			     "prefix of %zu bytes: %s", l, ei.msg);
		if (l > t.off + 4 && l < t.off + t.size)
			cr_assert(strstr(ei.msg, "'timeline'"),
				  "prefix of %zu bytes: %s", l, ei.msg);
		free(p);
	}
	cr_assert_eq(open_buf(b, len, &ei), MP_OK);
	free(b);
}

/*
 * TIME payloads written value by value, stored uncompressed. META says
 * start_ns 1000; every value below 128 is one byte.
 */
static unsigned char time_raw[256];
static size_t time_raw_len;

static void set_time(const uint64_t *v, size_t n)
{
	time_raw_len = 0;
	for (size_t i = 0; i < n; i++) {
		cr_assert_leq(time_raw_len + MP_LEB_MAX, sizeof(time_raw));
		time_raw_len += mp_leb_put_u(time_raw + time_raw_len, v[i]);
	}
}

static void fill_time(struct mpw *w)
{
	mpw_begin(w, MP_SEC_META);
	mpw_meta_uint(w, "pid", 1);
	mpw_meta_uint(w, "start_ns", 1000);
	mpw_end(w);
	mpw_begin(w, MP_SEC_MODULES);
	mpw_uleb(w, 0);
	mpw_end(w);
	w_one_stack(w);
	w_one_trace(w);
	mpw_copy_section(w, MP_SEC_TIMELINE, 0, time_raw_len,
			 (uint32_t)crc32(0, time_raw, (uInt)time_raw_len),
			 time_raw, time_raw_len);
}

/* interval 10; samples at 1005, 1005, 1012; marks 1 at 1005, 0 at 1100. */
static const uint64_t good_time[] = {10, 3,  5, 64, 2, 0, 32, 1,
				     7,	 96, 3, 2,  1, 5, 0,  95};

static void expect_time_corrupt(const uint64_t *v, size_t n, const char *want)
{
	char full[256];

	set_time(v, n);
	snprintf(full, sizeof(full), "corrupt section 'timeline': %s", want);
	expect_corrupt(fill_time, full);
}

Test(format, reads_a_timeline_from_the_raw_writer)
{
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {""};
	const struct mp_timeline *tl;
	size_t len;
	unsigned char *b;

	set_time(good_time, NV(good_time));
	b = write_raw(fill_time, &len);
	cr_assert_eq(mp_snapshot_open_mem(b, len, &s, &ei), MP_OK, "%s",
		     ei.msg);
	cr_assert(s->has_timeline);
	tl = &s->timeline;
	cr_assert_eq(tl->interval_ns, 10);
	cr_assert_eq(tl->nsamples, 3);
	cr_assert_eq(tl->samples[0].ns, 1005);
	cr_assert_eq(tl->samples[0].live_bytes, 64);
	cr_assert_eq(tl->samples[0].live_blocks, 2);
	cr_assert_eq(tl->samples[1].ns, 1005);
	cr_assert_eq(tl->samples[1].live_bytes, 32);
	cr_assert_eq(tl->samples[1].live_blocks, 1);
	cr_assert_eq(tl->samples[2].ns, 1012);
	cr_assert_eq(tl->samples[2].live_bytes, 96);
	cr_assert_eq(tl->samples[2].live_blocks, 3);
	cr_assert_eq(tl->nmarks, 2);
	cr_assert_eq(tl->marks[0].seq, 1);
	cr_assert_eq(tl->marks[0].ns, 1005);
	cr_assert_eq(tl->marks[1].seq, 0);
	cr_assert_eq(tl->marks[1].ns, 1100);
	mp_snapshot_free(s);
	free(b);
}

Test(format, rejects_bad_timeline_counts)
{
	const uint64_t samples[] = {10, 1000, 0, 0, 0, 0};
	/* 3 samples need 9 bytes; 8 are left. */
	const uint64_t tight[] = {10, 3, 0, 0, 0, 0, 0, 0, 0, 0};
	const uint64_t marks[] = {10, 0, 3, 0, 0, 0, 0, 0};
	const uint64_t extra[] = {10, 0, 0, 0};
	/* A sample cut after its live bytes (the time takes 2 bytes). */
	const uint64_t shortv[] = {10, 1, 300, 0};
	const uint64_t nomarks[] = {10, 1, 0, 0, 0};

	expect_time_corrupt(samples, NV(samples),
			    "count 1000 exceeds the data at byte 1 of its "
			    "data");
	expect_time_corrupt(tight, NV(tight),
			    "count 3 exceeds the data at byte 1 of its data");
	expect_time_corrupt(marks, NV(marks),
			    "count 3 exceeds the data at byte 2 of its data");
	expect_time_corrupt(extra, NV(extra),
			    "1 bytes left over at byte 3 of its data");
	expect_time_corrupt(shortv, NV(shortv),
			    "unexpected end of data at byte 5 of its data");
	expect_time_corrupt(nomarks, NV(nomarks),
			    "unexpected end of data at byte 5 of its data");
	/* Nothing at all: not even the interval. */
	expect_time_corrupt(samples, 0,
			    "unexpected end of data at byte 0 of its data");
}

Test(format, rejects_timeline_times_that_wrap)
{
	/* start_ns 1000 + (2^64 - 1000) passes 2^64 - 1. */
	uint64_t v[] = {10, 1, UINT64_MAX - 999, 0, 0, 0};
	uint64_t m[] = {10, 0, 2, 0, 5, 1, UINT64_MAX - 1004};

	expect_time_corrupt(v, NV(v),
			    "sample time overflows at byte 2 of its data");
	expect_time_corrupt(m, NV(m),
			    "mark time overflows at byte 6 of its data");
	/* Up to 2^64 - 1 exactly is fine. */
	v[2] = UINT64_MAX - 1000;
	set_time(v, NV(v));
	{
		struct mp_snapshot *s = NULL;
		struct mp_errinfo ei = {""};
		size_t len;
		unsigned char *b = write_raw(fill_time, &len);

		cr_assert_eq(mp_snapshot_open_mem(b, len, &s, &ei), MP_OK, "%s",
			     ei.msg);
		cr_assert_eq(s->timeline.samples[0].ns, UINT64_MAX);
		mp_snapshot_free(s);
		free(b);
	}
}

Test(format, rejects_every_cut_of_a_timeline_payload)
{
	struct mp_errinfo ei = {""};
	size_t full, len;
	unsigned char *b;

	set_time(good_time, NV(good_time));
	full = time_raw_len;
	for (size_t l = 0; l < full; l++) {
		time_raw_len = l;
		b = write_raw(fill_time, &len);
		cr_assert_eq(open_buf(b, len, &ei), MP_ERR_CORRUPT,
			     "payload cut to %zu bytes: %s", l, ei.msg);
		cr_assert(strstr(ei.msg, "corrupt section 'timeline'"), "%s",
			  ei.msg);
		free(b);
	}
	time_raw_len = full;
	b = write_raw(fill_time, &len);
	cr_assert_eq(open_buf(b, len, &ei), MP_OK, "%s", ei.msg);
	free(b);
}

/* Whatever a damaged payload reads as never goes back in time. */
Test(format, damaged_timeline_payloads_are_rejected_or_valid)
{
	struct mp_errinfo ei = {""};
	size_t len;

	set_time(good_time, NV(good_time));
	for (size_t at = 0; at < time_raw_len; at++)
		for (int bit = 0; bit < 8; bit++) {
			struct mp_snapshot *s = NULL;
			unsigned char *b;
			enum mp_err err;

			time_raw[at] ^= (unsigned char)(1u << bit);
			b = write_raw(fill_time, &len);
			err = mp_snapshot_open_mem(b, len, &s, &ei);
			time_raw[at] ^= (unsigned char)(1u << bit);
			free(b);
			if (err) {
				cr_assert_eq(err, MP_ERR_CORRUPT, "%s", ei.msg);
				continue;
			}
			const struct mp_timeline *tl = &s->timeline;

			cr_assert(s->has_timeline);
			for (size_t i = 0; i < tl->nsamples; i++)
				cr_assert_geq(tl->samples[i].ns,
					      i ? tl->samples[i - 1].ns : 1000);
			for (size_t i = 0; i < tl->nmarks; i++)
				cr_assert_geq(tl->marks[i].ns,
					      i ? tl->marks[i - 1].ns : 1000);
			mp_snapshot_free(s);
		}
}

Test(format, rejects_flipped_bit_in_a_timeline_file)
{
	struct mp_errinfo ei = {""};
	size_t len;
	unsigned char *b = timeline_file(&len);
	struct secpos t = find(b, len, MP_SEC_TIMELINE);

	for (size_t at = t.off; at < t.off + t.size; at++)
		for (int bit = 0; bit < 8; bit++) {
			enum mp_err err;

			b[at] ^= (unsigned char)(1u << bit);
			err = open_buf(b, len, &ei);
			cr_assert(err == MP_OK || err == MP_ERR_CORRUPT,
				  "byte %zu bit %d: %s", at, bit, ei.msg);
			b[at] ^= (unsigned char)(1u << bit);
		}
	free(b);
}

/* ------------------------------------------------------------------ */
/* Compatibility                                                      */

#ifndef MP_SOURCE_DIR
#define MP_SOURCE_DIR "."
#endif

/*
 * A 1.0 file written once and committed: every later reader must still
 * read it, whatever the writer has become since.
 */
Test(format, reads_the_golden_1_0_file)
{
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {""};
	const struct mp_symbol *sym;

	cr_assert_eq(mp_snapshot_open(MP_SOURCE_DIR
				      "/testdata/format/golden-1.0.memprof",
				      &s, &ei),
		     MP_OK, "%s", ei.msg);
	cr_assert_eq(s->meta.pid, 5);
	cr_assert_str_eq(s->meta.exe, "/bin/x");
	cr_assert_eq(s->meta.argc, 2);
	cr_assert_str_eq(s->meta.argv[1], "y");
	cr_assert_str_eq(s->meta.trigger, "exit");
	cr_assert_eq(s->nmodules, 1);
	cr_assert_eq(s->modules[0].end, 0x500000);
	cr_assert_eq(s->nstacks, 2);
	cr_assert_eq(s->stacks[0].pcs[1], 0x402000);
	cr_assert_eq(s->stacks[1].pcs[0], 0x400100);
	cr_assert_eq(s->ntraces, 2);
	cr_assert_eq(s->traces[0].live_bytes, 10);
	cr_assert_eq(s->traces[1].stack, 1);
	cr_assert_eq(s->nblocks, 2);
	cr_assert_eq(s->blocks[1].addr, 0x2000);
	cr_assert_eq(s->blocks[1].trace, 1);
	sym = mp_snapshot_symbol(s, 0x401000);
	cr_assert_not_null(sym);
	cr_assert_eq(sym->module, 0);
	cr_assert_eq(sym->nframes, 2);
	cr_assert_str_eq(sym->frames[0].function, "f");
	cr_assert_str_eq(sym->frames[0].file, "a.c");
	cr_assert_eq(sym->frames[0].line, 3);
	cr_assert_str_eq(sym->frames[1].function, "main");
	cr_assert_eq(mp_snapshot_symbol(s, 0x402000)->module, UINT32_MAX);
	cr_assert_eq(s->version_major, 1);
	cr_assert_eq(s->version_minor, 0);
	cr_assert(!s->has_graph);
	mp_snapshot_free(s);
}

/*
 * A 1.1 file with a graph, written once by mp_snapshot_save and committed:
 * three blocks, 0 -> 1, 1 -> 1, 1 -> 2 (interior); roots 0 (data, at the
 * start) and 2 (stack and registers, inside); 2 threads, 1 unscanned.
 */
Test(format, reads_the_golden_1_1_file)
{
	/* The GRPH payload, value by value (formats/snapshot.md, "GRPH"). */
	static const unsigned char grph[] = {3, 2, 1, 2, 0, 1, 0, 2,
					     0, 6, 1, 8, 2, 8, 9, 0};
	const char *path = MP_SOURCE_DIR "/testdata/format/golden-1.1.memprof";
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {""};
	const struct mp_graph *g;
	unsigned char raw[sizeof(grph)];
	uLongf rawlen = sizeof(raw);
	unsigned char *b;
	struct secpos sec;
	size_t len;

	cr_assert_eq(mp_snapshot_open(path, &s, &ei), MP_OK, "%s", ei.msg);
	cr_assert_eq(s->version_major, 1);
	cr_assert_eq(s->version_minor, 1);
	cr_assert_eq(s->meta.pid, 6);
	cr_assert_str_eq(s->meta.exe, "/bin/g");
	cr_assert_eq(s->nblocks, 3);
	cr_assert_eq(s->blocks[2].addr, 0x3000);
	cr_assert(s->has_graph);
	g = &s->graph;
	cr_assert_eq(g->threads, 2);
	cr_assert_eq(g->threads_unscanned, 1);
	cr_assert_eq(g->nroots, 2);
	cr_assert_eq(g->roots[0].block, 0);
	cr_assert_eq(g->roots[0].start_kinds, MP_ROOT_DATA);
	cr_assert_eq(g->roots[0].interior_kinds, 0);
	cr_assert_eq(g->roots[1].block, 2);
	cr_assert_eq(g->roots[1].start_kinds, 0);
	cr_assert_eq(g->roots[1].interior_kinds, MP_ROOT_STACK | MP_ROOT_REGS);
	cr_assert_eq(g->nedges, 3);
	cr_assert_eq(g->edge_start[0], 0);
	cr_assert_eq(g->edge_start[1], 1);
	cr_assert_eq(g->edge_start[2], 3);
	cr_assert_eq(g->edge_start[3], 3);
	cr_assert_eq(g->edges[0].to, 1);
	cr_assert_eq(g->edges[0].flags, 0);
	cr_assert_eq(g->edges[1].to, 1);
	cr_assert_eq(g->edges[1].flags, 0);
	cr_assert_eq(g->edges[2].to, 2);
	cr_assert_eq(g->edges[2].flags, MP_EDGE_INTERIOR);
	mp_snapshot_free(s);

	/* The encoding itself, independent of this reader. */
	b = read_all(path, &len);
	sec = find(b, len, MP_SEC_GRAPH);
	cr_assert_eq(rd32(b + sec.off + 4), MP_SECTION_ZLIB);
	cr_assert_eq(rd64(b + sec.off + 16), sizeof(grph));
	cr_assert_eq(uncompress(raw, &rawlen,
				b + sec.off + MP_SECTION_HEADER_LEN,
				sec.size - MP_SECTION_HEADER_LEN),
		     Z_OK);
	cr_assert_eq(rawlen, sizeof(grph));
	cr_assert_eq(memcmp(raw, grph, sizeof(grph)), 0);
	free(b);
}

/*
 * A 1.2 file with a graph and a timeline, written once by
 * mp_snapshot_save and committed. start_ns is 1 s; samples at +10 ms
 * (100 bytes, 1 block), +30 ms (300, 3) and +30 ms again (250, 2); the
 * interval had grown to 20 ms; snapshot 1 marked at +30 ms, the exit
 * snapshot at +40 ms.
 */
Test(format, reads_the_golden_1_2_file)
{
	/* The TIME payload, value by value (formats/snapshot.md, "TIME"):
	 * 20000000; 3; 10000000 100 1; 20000000 300 3; 0 250 2; 2;
	 * 1 30000000; 0 10000000. */
	static const unsigned char time[] = {
		0x80, 0xda, 0xc4, 0x09, 0x03, 0x80, 0xad, 0xe2, 0x04,
		0x64, 0x01, 0x80, 0xda, 0xc4, 0x09, 0xac, 0x02, 0x03,
		0x00, 0xfa, 0x01, 0x02, 0x02, 0x01, 0x80, 0x87, 0xa7,
		0x0e, 0x00, 0x80, 0xad, 0xe2, 0x04};
	static const uint32_t order[] = {
		MP_SEC_META,	 MP_SEC_MODULES, MP_SEC_STACKS,
		MP_SEC_TRACES,	 MP_SEC_BLOCKS,	 MP_SEC_GRAPH,
		MP_SEC_TIMELINE, MP_SEC_SYMBOLS, MP_SEC_END};
	const char *path = MP_SOURCE_DIR "/testdata/format/golden-1.2.memprof";
	struct mp_snapshot *s = NULL;
	struct mp_errinfo ei = {""};
	const struct mp_timeline *tl;
	unsigned char raw[sizeof(time)];
	uLongf rawlen = sizeof(raw);
	unsigned char *b;
	struct secpos sec, all[16];
	size_t len, n;

	cr_assert_eq(mp_snapshot_open(path, &s, &ei), MP_OK, "%s", ei.msg);
	cr_assert_eq(s->version_major, 1);
	cr_assert_eq(s->version_minor, 2);
	cr_assert_eq(s->meta.pid, 8);
	cr_assert_str_eq(s->meta.exe, "/bin/t");
	cr_assert_eq(s->meta.start_ns, 1000000000);
	cr_assert_eq(s->nblocks, 2);
	cr_assert(s->has_graph);
	cr_assert_eq(s->graph.nedges, 1);
	cr_assert_eq(s->graph.edges[0].to, 1);
	cr_assert_eq(s->graph.nroots, 1);
	cr_assert_str_eq(mp_snapshot_symbol(s, 0x401000)->frames[0].function,
			 "main");
	cr_assert(s->has_timeline);
	tl = &s->timeline;
	cr_assert_eq(tl->interval_ns, 20000000);
	cr_assert_eq(tl->nsamples, 3);
	cr_assert_eq(tl->samples[0].ns, 1010000000);
	cr_assert_eq(tl->samples[0].live_bytes, 100);
	cr_assert_eq(tl->samples[0].live_blocks, 1);
	cr_assert_eq(tl->samples[1].ns, 1030000000);
	cr_assert_eq(tl->samples[1].live_bytes, 300);
	cr_assert_eq(tl->samples[1].live_blocks, 3);
	cr_assert_eq(tl->samples[2].ns, 1030000000);
	cr_assert_eq(tl->samples[2].live_bytes, 250);
	cr_assert_eq(tl->samples[2].live_blocks, 2);
	cr_assert_eq(tl->nmarks, 2);
	cr_assert_eq(tl->marks[0].seq, 1);
	cr_assert_eq(tl->marks[0].ns, 1030000000);
	cr_assert_eq(tl->marks[1].seq, 0);
	cr_assert_eq(tl->marks[1].ns, 1040000000);
	mp_snapshot_free(s);

	/* The encoding itself, independent of this reader. */
	b = read_all(path, &len);
	cr_assert_eq(rd32(b + 8), 1 | 2 << 16, "version 1.2");
	n = walk(b, len, all, 16);
	cr_assert_eq(n, NV(order));
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(all[i].tag, order[i], "section %zu", i);
	sec = find(b, len, MP_SEC_TIMELINE);
	cr_assert_eq(rd32(b + sec.off + 4), MP_SECTION_ZLIB);
	cr_assert_eq(rd64(b + sec.off + 16), sizeof(time));
	cr_assert_eq(uncompress(raw, &rawlen,
				b + sec.off + MP_SECTION_HEADER_LEN,
				sec.size - MP_SECTION_HEADER_LEN),
		     Z_OK);
	cr_assert_eq(rawlen, sizeof(time));
	cr_assert_eq(memcmp(raw, time, sizeof(time)), 0);
	free(b);
}
