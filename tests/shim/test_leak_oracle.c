/*
 * test_leak_oracle.c - memprof's leak classification against Valgrind's
 * LEAK SUMMARY on the same binaries, and the leaked cycles named with
 * their members' sites. Valgrind runs with its interior-pointer heuristics
 * off, as memprof has none: an interior pointer means "possibly lost".
 */
#include "testutil.h"

TestSuite(leak_oracle, .timeout = 300);

struct kinds {
	uint64_t bytes[4],
		blocks[4]; /* definite, indirect, possible, reachable */
};

static uint64_t num(const char *s)
{
	uint64_t v = 0;
	for (; *s && *s != ' '; s++)
		if (*s >= '0' && *s <= '9')
			v = v * 10 + (uint64_t)(*s - '0');
	return v;
}

static struct kinds valgrind_leaks(const char *dir, const char *helper)
{
	char *log = tu_path(dir, "valgrind.log");
	char *logopt = NULL, *exe = NULL;
	cr_assert(asprintf(&logopt, "--log-file=%s", log) > 0);
	cr_assert(asprintf(&exe, "%s/helpers/%s", MP_BUILD_DIR, helper) > 0);
	char *argv[] = {(char *)"valgrind",
			(char *)"--leak-check=full",
			(char *)"--leak-check-heuristics=none",
			(char *)"--run-libc-freeres=no",
			(char *)"--run-cxx-freeres=no",
			logopt,
			exe,
			NULL};
	cr_assert_eq(tu_run(argv, NULL, NULL, NULL), 0, "valgrind failed");
	char *text = tu_read(log, NULL);
	static const char *labels[] = {"definitely lost: ", "indirectly lost: ",
				       "possibly lost: ", "still reachable: "};
	struct kinds k = {{0}, {0}};
	char *sum = strstr(text, "LEAK SUMMARY:");
	cr_assert_not_null(sum, "no LEAK SUMMARY in\n%s", text);
	for (int i = 0; i < 4; i++) {
		char *p = strstr(sum, labels[i]);
		cr_assert_not_null(p);
		p += strlen(labels[i]);
		k.bytes[i] = num(p);
		p = strstr(p, "bytes in ") + strlen("bytes in ");
		k.blocks[i] = num(p);
	}
	free(text);
	return k;
}

static struct mp_leak_report *memprof_leaks(const char *dir, const char *helper,
					    struct mp_snapshot **snap)
{
	*snap = tu_shim_run(dir, helper, NULL, NULL);
	cr_assert((*snap)->has_graph, "%s: no graph in the snapshot", helper);
	struct mp_leak_opts o = {0};
	struct mp_leak_report *rep = NULL;
	cr_assert_eq(mp_leaks_analyze(*snap, &o, &rep), MP_OK);
	return rep;
}

static void compare(const char *helper)
{
	char *dir = tu_tmpdir();
	struct kinds v = valgrind_leaks(dir, helper);
	struct mp_snapshot *s;
	struct mp_leak_report *r = memprof_leaks(dir, helper, &s);
	uint64_t lost_b = r->summary[MP_LEAK_DEFINITE].bytes +
			  r->summary[MP_LEAK_INDIRECT].bytes;
	uint64_t lost_n = r->summary[MP_LEAK_DEFINITE].blocks +
			  r->summary[MP_LEAK_INDIRECT].blocks;
	cr_expect_eq(lost_b, v.bytes[0] + v.bytes[1],
		     "%s lost bytes: memprof %lu, valgrind %lu", helper,
		     (unsigned long)lost_b,
		     (unsigned long)(v.bytes[0] + v.bytes[1]));
	cr_expect_eq(lost_n, v.blocks[0] + v.blocks[1],
		     "%s lost blocks: memprof %lu, valgrind %lu", helper,
		     (unsigned long)lost_n,
		     (unsigned long)(v.blocks[0] + v.blocks[1]));
	static const enum mp_leak_kind kk[] = {MP_LEAK_POSSIBLE,
					       MP_LEAK_REACHABLE};
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(r->summary[kk[i]].bytes, v.bytes[2 + i],
			     "%s %s bytes: memprof %lu, valgrind %lu", helper,
			     mp_leak_kind_name(kk[i]),
			     (unsigned long)r->summary[kk[i]].bytes,
			     (unsigned long)v.bytes[2 + i]);
		cr_expect_eq(r->summary[kk[i]].blocks, v.blocks[2 + i],
			     "%s %s blocks: memprof %lu, valgrind %lu", helper,
			     mp_leak_kind_name(kk[i]),
			     (unsigned long)r->summary[kk[i]].blocks,
			     (unsigned long)v.blocks[2 + i]);
	}
	mp_leak_report_free(r);
	mp_snapshot_free(s);
}

Test(leak_oracle, kinds_equal_valgrind)
{
	compare("leak_kinds");
}

Test(leak_oracle, cycles_equal_valgrind)
{
	compare("leak_cycles");
}

Test(leak_oracle, block_held_by_another_threads_stack_equals_valgrind)
{
	compare("leak_thread");
}

Test(leak_oracle, cxx_objects_and_containers_equal_valgrind)
{
	compare("leak_cxx");
}

/* The record of `fn` (frames[0]) with kind, summed over traces. */
static uint64_t kind_bytes_at(const struct mp_leak_report *r,
			      enum mp_leak_kind kind, const char *fn,
			      uint64_t *blocks)
{
	uint64_t b = 0, n = 0;
	for (size_t i = 0; i < r->nrecords; i++) {
		const struct mp_leak_record *rec = &r->records[i];
		if (rec->kind == kind && rec->nframes &&
		    rec->frames[0].function &&
		    !strcmp(rec->frames[0].function, fn)) {
			b += rec->bytes;
			n += rec->blocks;
		}
	}
	*blocks = n;
	return b;
}

Test(leak_oracle, each_kind_is_at_its_site)
{
	char *dir = tu_tmpdir();
	struct mp_snapshot *s;
	struct mp_leak_report *r = memprof_leaks(dir, "leak_kinds", &s);
	uint64_t n;
	cr_expect_eq(kind_bytes_at(r, MP_LEAK_DEFINITE, "make_leak", &n), 100);
	cr_expect_eq(n, 1);
	/* tree_node allocates every node: the root is definite, the rest
	 * indirect. */
	cr_expect_eq(kind_bytes_at(r, MP_LEAK_DEFINITE, "tree_node", &n), 32);
	cr_expect_eq(n, 1);
	cr_expect_eq(kind_bytes_at(r, MP_LEAK_INDIRECT, "tree_node", &n), 192);
	cr_expect_eq(n, 6);
	cr_expect_eq(kind_bytes_at(r, MP_LEAK_REACHABLE, "make_list", &n), 240);
	cr_expect_eq(n, 5);
	cr_expect_eq(kind_bytes_at(r, MP_LEAK_POSSIBLE, "make_interior", &n),
		     64);
	cr_expect_eq(kind_bytes_at(r, MP_LEAK_POSSIBLE, "make_chain", &n), 136);
	cr_expect_eq(kind_bytes_at(r, MP_LEAK_REACHABLE, "make_chain", &n), 40);
	/* The tree's root keeps the whole tree alive. */
	for (size_t i = 0; i < r->nrecords; i++)
		if (r->records[i].kind == MP_LEAK_DEFINITE &&
		    !strcmp(r->records[i].frames[0].function, "tree_node"))
			cr_expect_eq(r->records[i].retained_bytes, 224);
	cr_expect_eq(r->ncycles, 0);
	mp_leak_report_free(r);
	mp_snapshot_free(s);
}

static const struct mp_leak_cycle *find_cycle(const struct mp_leak_report *r,
					      const char *caller, size_t blocks)
{
	for (size_t i = 0; i < r->ncycles; i++) {
		const struct mp_leak_cycle *c = &r->cycles[i];
		if (c->blocks != blocks || !c->nmembers)
			continue;
		const struct mp_leak_member *m = &c->members[0];
		if (m->nframes > 1 && m->frames[1].function &&
		    !strcmp(m->frames[1].function, caller))
			return c;
	}
	return NULL;
}

Test(leak_oracle, every_cycle_is_named_with_its_members_sites)
{
	char *dir = tu_tmpdir();
	struct mp_snapshot *s;
	struct mp_leak_report *r = memprof_leaks(dir, "leak_cycles", &s);
	cr_expect_eq(r->ncycles, 4);
	struct {
		const char *caller;
		size_t blocks;
		uint64_t bytes;
		bool root;
	} want[] = {{"cycle2", 2, 80, true},
		    {"cycle3", 3, 72, true},
		    {"selfloop", 1, 72, true},
		    {"owned", 2, 176, false}};
	for (size_t i = 0; i < 4; i++) {
		const struct mp_leak_cycle *c =
			find_cycle(r, want[i].caller, want[i].blocks);
		cr_assert_not_null(c, "no cycle of %zu blocks from %s",
				   want[i].blocks, want[i].caller);
		cr_expect_eq(c->bytes, want[i].bytes, "%s", want[i].caller);
		cr_expect_eq(c->is_root, want[i].root, "%s", want[i].caller);
		/* Each member is allocated by node(), called from the
		 * function that built the cycle. */
		uint64_t blocks = 0;
		for (size_t k = 0; k < c->nmembers; k++) {
			cr_expect_str_eq(c->members[k].frames[0].function,
					 "node");
			cr_expect_str_eq(c->members[k].frames[1].function,
					 want[i].caller);
			blocks += c->members[k].blocks;
		}
		cr_expect_eq(blocks, want[i].blocks);
	}
	/* Root cycles are definitely lost as a whole; the owned cycle is
	 * indirect, its 16 B owner definite. */
	cr_expect_eq(r->summary[MP_LEAK_DEFINITE].bytes, 80 + 72 + 72 + 16);
	cr_expect_eq(r->summary[MP_LEAK_DEFINITE].blocks, 2 + 3 + 1 + 1);
	cr_expect_eq(r->summary[MP_LEAK_INDIRECT].bytes, 176);
	mp_leak_report_free(r);
	mp_snapshot_free(s);
}

Test(leak_oracle, a_blocked_thread_is_stopped_and_its_stack_scanned)
{
	char *dir = tu_tmpdir();
	struct mp_snapshot *s;
	struct mp_leak_report *r = memprof_leaks(dir, "leak_thread", &s);
	cr_expect_eq(s->graph.threads, 3);
	cr_expect_eq(s->graph.threads_unscanned, 0);
	uint64_t n;
	cr_expect_eq(kind_bytes_at(r, MP_LEAK_REACHABLE, "holder", &n), 500);
	cr_expect_eq(n, 2);
	mp_leak_report_free(r);
	mp_snapshot_free(s);
}

Test(leak_oracle, leak_check_no_writes_no_graph)
{
	char *dir = tu_tmpdir();
	char *snap = tu_path(dir, "n.memprof");
	char *env_out = NULL;
	cr_assert(asprintf(&env_out, "MEMPROF_OUTPUT=%s", snap) > 0);
	const char *env[] = {"LD_PRELOAD=" TU_SHIM, env_out,
			     "MEMPROF_LEAK_CHECK=no", NULL};
	char *argv[] = {(char *)TU_HELPER("leak_kinds"), NULL};
	cr_assert_eq(tu_run(argv, env, NULL, NULL), 0);
	struct mp_snapshot *s;
	struct mp_errinfo ei;
	cr_assert_eq(mp_snapshot_open(snap, &s, &ei), MP_OK);
	cr_expect(!s->has_graph);
	cr_expect(s->has_blocks);
	mp_snapshot_free(s);
}
