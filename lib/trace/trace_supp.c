/*
 * trace_supp.c - LeakSanitizer-style suppressions (formats/suppressions.md).
 *
 * Parses `leak:PATTERN` lines and matches patterns against the frames of an
 * allocation stack. Patterns follow sanitizer_common's TemplateMatch: `*`
 * any run of characters, `^` and `$` anchors at the ends, a substring match
 * otherwise. Never prints; a syntax error names its line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memprof_trace.h"
#include "trace/trace_internal.h"

struct mp_suppressions {
	char **patterns;
	size_t n, cap;
};

void mp_suppressions_free(struct mp_suppressions *supp)
{
	if (!supp)
		return;
	for (size_t i = 0; i < supp->n; i++)
		free(supp->patterns[i]);
	free(supp->patterns);
	free(supp);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool add_pattern(struct mp_suppressions *s, const char *p, size_t len)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 8;
		char **np = realloc(s->patterns, ncap * sizeof(*np));
		if (!np)
			return false;
		s->patterns = np;
		s->cap = ncap;
	}
	char *copy = malloc(len + 1);
	if (!copy)
		return false;
	memcpy(copy, p, len);
	copy[len] = '\0';
	s->patterns[s->n++] = copy;
	return true;
}

/*
 * The n bytes at s for an error message, which the CLI prints as one line
 * to a terminal: bytes outside printable ASCII (a CR, an escape sequence,
 * a stray byte of a binary file) become \xNN. buf holds 4n + 1 bytes.
 */
static const char *printable(char *buf, const char *s, size_t n)
{
	char *o = buf;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			*o++ = (char)c;
		else
			o += sprintf(o, "\\x%02x", c);
	}
	*o = '\0';
	return buf;
}

/* Parses one line (without its newline); MP_OK for blank and comments. */
static enum mp_err parse_line(struct mp_suppressions *s, const char *p,
			      size_t len, size_t lineno, struct mp_errinfo *ei)
{
	while (len && is_space(*p))
		p++, len--;
	while (len && is_space(p[len - 1]))
		len--;
	if (len == 0 || *p == '#')
		return MP_OK;
	if (memchr(p, '\0', len))
		return mp__fail(ei, MP_ERR_CORRUPT, "line %zu: NUL byte",
				lineno);
	const char *colon = memchr(p, ':', len);
	if (!colon)
		return mp__fail(ei, MP_ERR_CORRUPT,
				"line %zu: expected 'leak:PATTERN'", lineno);
	size_t tlen = (size_t)(colon - p);
	if (tlen != 4 || memcmp(p, "leak", 4)) {
		char shown[64 * 4 + 1];
		return mp__fail(ei, MP_ERR_CORRUPT,
				"line %zu: unknown suppression type '%s'",
				lineno,
				printable(shown, p, tlen > 64 ? 64 : tlen));
	}
	const char *pat = colon + 1;
	size_t plen = len - tlen - 1;
	while (plen && is_space(*pat))
		pat++, plen--;
	if (plen == 0)
		return mp__fail(ei, MP_ERR_CORRUPT,
				"line %zu: empty pattern after 'leak:'",
				lineno);
	if (!add_pattern(s, pat, plen))
		return mp__fail(ei, MP_ERR_NOMEM, "out of memory");
	return MP_OK;
}

enum mp_err mp_suppressions_parse(const char *text, size_t len,
				  struct mp_suppressions **out,
				  struct mp_errinfo *ei)
{
	struct mp_suppressions *s = calloc(1, sizeof(*s));
	size_t lineno = 1, pos = 0;

	if (!s)
		return mp__fail(ei, MP_ERR_NOMEM, "out of memory");
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;
		enum mp_err err =
			parse_line(s, text + pos, end - pos, lineno, ei);
		if (err != MP_OK) {
			mp_suppressions_free(s);
			return err;
		}
		pos = end + 1;
		lineno++;
	}
	*out = s;
	return MP_OK;
}

/*
 * Reads f and parses its lines as they come, into s. Reading stops at the
 * first bad line, so that a binary file (or /dev/zero) is refused at its
 * first line rather than read whole into memory first; only the line being
 * read is kept. The result is mp_suppressions_parse()'s on the whole file.
 */
static enum mp_err parse_stream(struct mp_suppressions *s, FILE *f,
				struct mp_errinfo *ei)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, lineno = 1;
	enum mp_err err = MP_OK;

	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
			if (!nb) {
				err = mp__fail(ei, MP_ERR_NOMEM,
					       "out of memory");
				break;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + len, 1, cap - len, f), done = 0;
		const char *nl;
		len += got;
		while (!err && (nl = memchr(buf + done, '\n', len - done))) {
			size_t end = (size_t)(nl - buf);
			err = parse_line(s, buf + done, end - done, lineno++,
					 ei);
			done = end + 1;
		}
		if (err)
			break;
		memmove(buf, buf + done, len - done);
		len -= done;
		if (got == 0) {
			if (ferror(f)) {
				int e = errno;
				err = mp__fail(ei, MP_ERR_IO, "%s",
					       strerror(e ? e : EIO));
			} else if (len) {
				err = parse_line(s, buf, len, lineno, ei);
			}
			break;
		}
		/*
		 * A NUL byte already makes this unfinished line an error,
		 * unless it is a comment (then nothing is added): say so now
		 * instead of waiting for a newline that may never come.
		 */
		if (memchr(buf, '\0', len) &&
		    (err = parse_line(s, buf, len, lineno, ei)))
			break;
	}
	free(buf);
	return err;
}

enum mp_err mp_suppressions_load(const char *path,
				 struct mp_suppressions **supp,
				 struct mp_errinfo *ei)
{
	FILE *f = fopen(path, "rb");
	struct mp_suppressions *s;
	enum mp_err err;

	if (!f)
		return mp__fail(ei, MP_ERR_IO, "%s", strerror(errno));
	s = calloc(1, sizeof(*s));
	if (!s) {
		fclose(f);
		return mp__fail(ei, MP_ERR_NOMEM, "out of memory");
	}
	err = parse_stream(s, f, ei);
	fclose(f);
	if (err != MP_OK) {
		mp_suppressions_free(s);
		return err;
	}
	if (!*supp) {
		*supp = s;
		return MP_OK;
	}
	/* Append: grow first, so that a failure leaves *supp as it was. */
	struct mp_suppressions *d = *supp;
	if (d->n + s->n > d->cap) {
		size_t ncap = d->n + s->n;
		char **np = realloc(d->patterns, ncap * sizeof(*np));
		if (!np) {
			mp_suppressions_free(s);
			return mp__fail(ei, MP_ERR_NOMEM, "out of memory");
		}
		d->patterns = np;
		d->cap = ncap;
	}
	if (s->n)
		memcpy(d->patterns + d->n, s->patterns,
		       s->n * sizeof(*s->patterns));
	d->n += s->n;
	free(s->patterns);
	free(s);
	return MP_OK;
}

/* The first occurrence of the n bytes at w in s, or NULL. */
static const char *find_piece(const char *s, const char *w, size_t n)
{
	if (n == 0)
		return s;
	for (; *s; s++)
		if (*s == *w && !strncmp(s, w, n))
			return s;
	return NULL;
}

/*
 * TemplateMatch semantics with complete backtracking: the pattern is
 * split at `*` into pieces that must occur in order without overlapping;
 * the leftmost occurrence of each piece is always the best choice, except
 * for a `$`-anchored last piece, which must end the string.
 * (sanitizer_common's greedy scan rejects e.g. `a*b$` on "abab"; we
 * accept it, as the prose of its documentation says.)
 */
static bool template_match(const char *pat, const char *str)
{
	size_t plen = strlen(pat);
	bool start = false, end = false;

	if (!str || !*str)
		return false;
	if (plen && pat[0] == '^') {
		start = true;
		pat++;
		plen--;
	}
	if (plen && pat[plen - 1] == '$') {
		end = true;
		plen--;
	}
	const char *s = str;
	size_t slen = strlen(str);
	size_t i = 0;
	bool first = true;
	while (i <= plen) {
		const char *star = memchr(pat + i, '*', plen - i);
		size_t j = star ? (size_t)(star - pat) : plen;
		size_t n = j - i;
		bool last = !star;
		if (last && end) {
			/* The last piece ends the string, after s. */
			size_t rest = slen - (size_t)(s - str);
			if (n > rest || memcmp(str + slen - n, pat + i, n))
				return false;
			if (first && start)
				return rest == n;
			return true;
		}
		if (first && start) {
			if (strncmp(s, pat + i, n))
				return false;
			s += n;
		} else {
			const char *at = find_piece(s, pat + i, n);
			if (!at)
				return false;
			s = at + n;
		}
		first = false;
		i = j + 1;
	}
	return true;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash[1] ? slash + 1 : path;
}

/* A path matches by itself or by its base name. */
static bool path_match(const char *pat, const char *path)
{
	if (!path)
		return false;
	if (template_match(pat, path))
		return true;
	const char *b = base_name(path);
	return b != path && template_match(pat, b);
}

bool mp_suppressions_match(const struct mp_suppressions *supp,
			   const struct mp_resolved_frame *frames, size_t n)
{
	if (!supp)
		return false;
	for (size_t p = 0; p < supp->n; p++) {
		const char *pat = supp->patterns[p];
		for (size_t i = 0; i < n; i++) {
			const struct mp_resolved_frame *f = &frames[i];
			if (template_match(pat, f->function) ||
			    path_match(pat, f->file) ||
			    path_match(pat, f->module))
				return true;
		}
	}
	return false;
}
