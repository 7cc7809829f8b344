/*
 * fuzz_supp.c - fuzzes the suppressions parser and matcher (trace_supp.c)
 * against formats/suppressions.md.
 *
 * The input is a suppressions file, optionally followed by a NUL byte and
 * NUL-separated strings to match (without one, the file's own lines and a
 * few fixed names are matched). Besides crashes, the harness compares the
 * library with a second, deliberately naive reading of the format written
 * here from the spec alone: the same lines must be accepted, the same
 * first error reported with the spec's wording, and every pattern must
 * match exactly the strings that the spec's rule ("pieces split at `*`, in
 * order, without overlapping; `^` and `$` anchor") says it matches, as a
 * function name, as a file and as a module (full path or base name).
 *
 * mp_suppressions_load(), which parses a file as it reads it, must also
 * give what mp_suppressions_parse() gives on the same bytes: the input is
 * written to a file (a memfd), repeated until a line straddles two of the
 * loader's reads.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "memprof_trace.h"

#define MAX_RULES 1024 /* a 4096-byte input holds fewer */
#define MAX_SUBJECTS 48

/* ------------------------------------------------------------------ */
/* The spec's reading                                                 */

static bool spec_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

struct rule {
	const char *p;
	size_t n;
};

/*
 * Splits text into its rules, or says which line is the first bad one and
 * writes the spec's message for it into err (the type of an unknown rule
 * is left out: only the prefix is compared).
 */
static bool spec_parse(const char *text, size_t len, struct rule *rules,
		       size_t *nrules, char *err, size_t errlen)
{
	size_t pos = 0, lineno = 1;

	*nrules = 0;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		const char *p = text + pos;
		size_t n = end - pos;

		pos = end + 1;
		while (n && spec_space(*p))
			p++, n--;
		while (n && spec_space(p[n - 1]))
			n--;
		if (n == 0 || *p == '#') {
			lineno++;
			continue;
		}
		const char *colon = memchr(p, ':', n);
		if (memchr(p, '\0', n)) {
			snprintf(err, errlen, "line %zu: NUL byte", lineno);
			return false;
		}
		if (!colon) {
			snprintf(err, errlen,
				 "line %zu: expected 'leak:PATTERN'", lineno);
			return false;
		}
		if (colon - p != 4 || memcmp(p, "leak", 4)) {
			snprintf(err, errlen,
				 "line %zu: unknown suppression type '",
				 lineno);
			return false;
		}
		p = colon + 1;
		n = (size_t)(text + end - p);
		while (n && spec_space(*p))
			p++, n--;
		while (n && spec_space(p[n - 1]))
			n--;
		if (n == 0) {
			snprintf(err, errlen,
				 "line %zu: empty pattern after 'leak:'",
				 lineno);
			return false;
		}
		if (*nrules < MAX_RULES)
			rules[(*nrules)++] = (struct rule){p, n};
		lineno++;
	}
	return true;
}

/* Whether glob p[0..pn), with `*` its only special character, matches
 * all of s[0..sn) (the classic backtracking to the last star). */
static bool glob_all(const char *p, size_t pn, const char *s, size_t sn)
{
	size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;

	while (si < sn) {
		if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (pi < pn && p[pi] == s[si]) {
			pi++;
			si++;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			si = ++mark;
		} else {
			return false;
		}
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

/* The spec's pattern rule: a pattern without `^` is preceded by `*`, one
 * without `$` followed by one, and must then match the whole string. */
static bool spec_match(const struct rule *r, const char *s)
{
	const char *p = r->p;
	size_t n = r->n;
	char glob[4096 + 2];
	size_t g = 0;

	if (!s || !*s)
		return false;
	bool start = n && p[0] == '^';
	if (start)
		p++, n--;
	bool end = n && p[n - 1] == '$';
	if (end)
		n--;
	if (n > sizeof(glob) - 2)
		return false; /* not reached: inputs are shorter */
	if (!start)
		glob[g++] = '*';
	memcpy(glob + g, p, n);
	g += n;
	if (!end)
		glob[g++] = '*';
	return glob_all(glob, g, s, strlen(s));
}

/* A path matches by itself or by what follows its last '/'. */
static bool spec_path_match(const struct rule *r, const char *path)
{
	if (!path)
		return false;
	if (spec_match(r, path))
		return true;
	const char *slash = strrchr(path, '/');
	return slash && slash[1] && spec_match(r, slash + 1);
}

/* ------------------------------------------------------------------ */

static void check_message(const struct mp_errinfo *ei, const char *want)
{
	FUZZ_CHECK(!strncmp(ei->msg, want, strlen(want)));
	/* One line of plain text: no byte of the file that a terminal
	 * would act on (CR, escape sequences, C1 controls). */
	for (const unsigned char *p = (const unsigned char *)ei->msg; *p; p++)
		FUZZ_CHECK(*p >= 0x20 && *p <= 0x7e);
}

/* Every rule alone, against every subject in every frame field; then
 * the whole file against all subjects at once. */
static void check_matches(const struct mp_suppressions *all,
			  const struct rule *rules, size_t nrules, char **subj,
			  size_t nsubj)
{
	struct mp_resolved_frame frames[MAX_SUBJECTS];
	bool any = false;

	memset(frames, 0, sizeof(frames));
	for (size_t i = 0; i < nsubj; i++) {
		/* Rotate the fields so every subject is each of them in
		 * some frame of the combined check. */
		frames[i].function = i % 3 == 0 ? subj[i] : NULL;
		frames[i].file = i % 3 == 1 ? subj[i] : NULL;
		frames[i].module = i % 3 == 2 ? subj[i] : NULL;
	}
	for (size_t r = 0; r < nrules; r++) {
		char line[4096 + 8];
		struct mp_suppressions *one;
		struct mp_errinfo ei;

		if (rules[r].n > 4096)
			continue;
		memcpy(line, "leak:", 5);
		memcpy(line + 5, rules[r].p, rules[r].n);
		FUZZ_CHECK(mp_suppressions_parse(line, 5 + rules[r].n, &one,
						 &ei) == MP_OK);
		for (size_t i = 0; i < nsubj; i++) {
			struct mp_resolved_frame f;
			bool fn = spec_match(&rules[r], subj[i]);
			bool path = spec_path_match(&rules[r], subj[i]);

			memset(&f, 0, sizeof(f));
			f.function = subj[i];
			FUZZ_CHECK(mp_suppressions_match(one, &f, 1) == fn);
			f.function = NULL;
			f.file = subj[i];
			FUZZ_CHECK(mp_suppressions_match(one, &f, 1) == path);
			f.file = NULL;
			f.module = subj[i];
			FUZZ_CHECK(mp_suppressions_match(one, &f, 1) == path);
			any |= i % 3 == 0 ? fn : path;
		}
		mp_suppressions_free(one);
	}
	FUZZ_CHECK(mp_suppressions_match(all, frames, nsubj) == any);
	FUZZ_CHECK(!mp_suppressions_match(all, frames, 0));
	FUZZ_CHECK(!mp_suppressions_match(NULL, frames, nsubj));
}

/* Parses text with the library and the spec; they must agree. */
static void check_file(const char *text, size_t len, char **subj, size_t nsubj)
{
	static struct rule rules[MAX_RULES];
	size_t nrules;
	char want[128];
	struct mp_suppressions *s = NULL;
	struct mp_errinfo ei;
	bool ok = spec_parse(text, len, rules, &nrules, want, sizeof(want));
	enum mp_err err;

	memset(&ei, 0, sizeof(ei));
	err = mp_suppressions_parse(text, len, &s, &ei);
	if (!ok) {
		FUZZ_CHECK(err == MP_ERR_CORRUPT);
		check_message(&ei, want);
		return;
	}
	FUZZ_CHECK(err == MP_OK && s != NULL);
	check_matches(s, rules, nrules, subj, nsubj);
	mp_suppressions_free(s);
}

/* What a one-frame stack of s in field k (function, file, module)
 * matches. */
static bool match_in(const struct mp_suppressions *supp, char *s, int k)
{
	struct mp_resolved_frame f;

	memset(&f, 0, sizeof(f));
	if (k == 0)
		f.function = s;
	else if (k == 1)
		f.file = s;
	else
		f.module = s;
	return mp_suppressions_match(supp, &f, 1);
}

/* The loader against the parser, on the input repeated past 4 KiB: the
 * loader's first read, so that a line straddles two reads. */
static void check_load(const char *text, size_t len, char **subj, size_t nsubj)
{
	static char buf[4097 + 4096];
	size_t n = 0;
	char path[64];
	struct mp_suppressions *a = NULL, *b = NULL;
	struct mp_errinfo ea, eb;
	enum mp_err pa, pb;
	/* A file in memory, opened by path: no disk in the loop. */
	int fd = memfd_create("supp", 0);

	FUZZ_CHECK(fd >= 0);
	do {
		memcpy(buf + n, text, len);
		n += len;
	} while (len && n <= 4096);
	FUZZ_CHECK(write(fd, buf, n) == (ssize_t)n);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	memset(&ea, 0, sizeof(ea));
	memset(&eb, 0, sizeof(eb));
	pa = mp_suppressions_parse(buf, n, &a, &ea);
	pb = mp_suppressions_load(path, &b, &eb);
	FUZZ_CHECK(pa == pb);
	if (pa != MP_OK) {
		FUZZ_CHECK(!strcmp(ea.msg, eb.msg));
		FUZZ_CHECK(b == NULL);
		close(fd);
		return;
	}
	/* A second file appends its rules: nothing matches differently.
	 * (A few subjects: the rules repeat, what matters is the reads.) */
	FUZZ_CHECK(mp_suppressions_load(path, &b, &eb) == MP_OK);
	for (size_t i = 0; i < nsubj && i < 4; i++)
		for (int k = 0; k < 3; k++)
			FUZZ_CHECK(match_in(a, subj[i], k) ==
				   match_in(b, subj[i], k));
	mp_suppressions_free(a);
	mp_suppressions_free(b);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fixed[] = {
		"main",
		"/usr/lib/x86_64-linux-gnu/libc.so.6",
		"cache.c",
		"/src/app/cache.c",
		"a",
		"abab",
		"operator new",
		"dir/",
	};
	const char *text = (const char *)data;
	const char *nul = memchr(text, '\0', size);
	char *copy, *subj[MAX_SUBJECTS];
	size_t nsubj = 0, flen = nul ? (size_t)(nul - text) : size;

	if (size > 4096)
		return 0; /* the matchers are quadratic; nothing new there */
	/* The whole input as a file first: a NUL byte is an error then. */
	if (nul) {
		struct mp_suppressions *s = NULL;
		struct mp_errinfo ei;

		if (mp_suppressions_parse(text, size, &s, &ei) == MP_OK)
			mp_suppressions_free(s);
		else
			check_message(&ei, "line ");
	}
	/* Subjects: after the NUL, NUL-separated; else the file's lines. */
	copy = malloc(size + 1);
	FUZZ_CHECK(copy != NULL);
	memcpy(copy, text, size);
	copy[size] = '\0';
	for (size_t i = 0; !nul && i < sizeof(fixed) / sizeof(*fixed); i++)
		subj[nsubj++] = (char *)fixed[i];
	char sep = nul ? '\0' : '\n';
	for (size_t i = nul ? flen + 1 : 0;
	     i <= size && nsubj < MAX_SUBJECTS;) {
		char *p = copy + i, *e = memchr(p, sep, size - i);
		size_t n = e ? (size_t)(e - p) : size - i;

		p[n] = '\0';
		subj[nsubj++] = p;
		i += n + 1;
	}
	check_file(text, flen, subj, nsubj);
	check_load(text, size, subj, nsubj);
	free(copy);
	return 0;
}
