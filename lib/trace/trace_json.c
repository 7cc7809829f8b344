/*
 * trace_json.c - the streaming JSON writer of trace_json.h.
 *
 * Writes straight to the FILE*, never allocates, never exits: errors are
 * collected and returned by mp_json_finish(). Output is valid UTF-8 JSON
 * (RFC 8259) whatever bytes the strings hold.
 */
#include <inttypes.h>
#include <string.h>

#include "memprof_trace.h"
#include "trace/trace_json.h"

void mp_json_init(struct mp_json *j, FILE *f, bool pretty)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->pretty = pretty;
}

static void newline_indent(struct mp_json *j)
{
	if (!j->pretty)
		return;
	fputc('\n', j->f);
	for (int i = 0; i < j->depth; i++)
		fputs("  ", j->f);
}

/* Before any value: the comma and indentation it needs, or the check that
 * a key came first inside an object. */
static void before_value(struct mp_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth == 0)
		return;
	if (j->in_object[j->depth - 1]) {
		j->misuse = true; /* a value without a key */
		return;
	}
	if (j->has_items[j->depth - 1])
		fputc(',', j->f);
	j->has_items[j->depth - 1] = true;
	newline_indent(j);
}

static void begin(struct mp_json *j, bool object)
{
	before_value(j);
	fputc(object ? '{' : '[', j->f);
	if (j->depth >= MP_JSON_MAX_DEPTH) {
		j->misuse = true;
		return;
	}
	j->in_object[j->depth] = object;
	j->has_items[j->depth] = false;
	j->depth++;
}

static void end(struct mp_json *j, bool object)
{
	if (j->depth == 0 || j->in_object[j->depth - 1] != object ||
	    j->after_key) {
		j->misuse = true;
		fputc(object ? '}' : ']', j->f);
		return;
	}
	j->depth--;
	if (j->has_items[j->depth])
		newline_indent(j);
	fputc(object ? '}' : ']', j->f);
}

void mp_json_begin_object(struct mp_json *j)
{
	begin(j, true);
}

void mp_json_end_object(struct mp_json *j)
{
	end(j, true);
}

void mp_json_begin_array(struct mp_json *j)
{
	begin(j, false);
}

void mp_json_end_array(struct mp_json *j)
{
	end(j, false);
}

/*
 * Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0.
 * Follows Table 3-7 of the Unicode standard: no overlong forms, no
 * surrogates (ED A0..BF), nothing above U+10FFFF (F4 90..).
 */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

static void write_escaped(FILE *f, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	fputc('"', f);
	while (i < n) {
		unsigned char c = s[i];
		switch (c) {
		case '"':
			fputs("\\\"", f);
			i++;
			continue;
		case '\\':
			fputs("\\\\", f);
			i++;
			continue;
		case '\b':
			fputs("\\b", f);
			i++;
			continue;
		case '\f':
			fputs("\\f", f);
			i++;
			continue;
		case '\n':
			fputs("\\n", f);
			i++;
			continue;
		case '\r':
			fputs("\\r", f);
			i++;
			continue;
		case '\t':
			fputs("\\t", f);
			i++;
			continue;
		default: break;
		}
		if (c < 0x20) {
			fprintf(f, "\\u%04x", c);
			i++;
			continue;
		}
		size_t len = utf8_len(s + i, n - i);
		if (len == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		fwrite(s + i, 1, len, f);
		i += len;
	}
	fputc('"', f);
}

void mp_json_key(struct mp_json *j, const char *key)
{
	if (j->depth == 0 || !j->in_object[j->depth - 1] || j->after_key)
		j->misuse = true;
	if (j->depth > 0) {
		if (j->has_items[j->depth - 1])
			fputc(',', j->f);
		j->has_items[j->depth - 1] = true;
	}
	newline_indent(j);
	write_escaped(j->f, key, strlen(key));
	fputs(j->pretty ? ": " : ":", j->f);
	j->after_key = true;
}

void mp_json_string_len(struct mp_json *j, const char *s, size_t len)
{
	before_value(j);
	write_escaped(j->f, s, len);
}

void mp_json_string(struct mp_json *j, const char *s)
{
	if (!s) {
		mp_json_null(j);
		return;
	}
	mp_json_string_len(j, s, strlen(s));
}

void mp_json_uint(struct mp_json *j, uint64_t v)
{
	before_value(j);
	fprintf(j->f, "%" PRIu64, v);
}

void mp_json_int(struct mp_json *j, int64_t v)
{
	before_value(j);
	fprintf(j->f, "%" PRId64, v);
}

void mp_json_bool(struct mp_json *j, bool v)
{
	before_value(j);
	fputs(v ? "true" : "false", j->f);
}

void mp_json_null(struct mp_json *j)
{
	before_value(j);
	fputs("null", j->f);
}

void mp_json_hex(struct mp_json *j, uint64_t v)
{
	before_value(j);
	fprintf(j->f, "\"0x%" PRIx64 "\"", v);
}

void mp_json_kv_string(struct mp_json *j, const char *key, const char *s)
{
	mp_json_key(j, key);
	mp_json_string(j, s);
}

void mp_json_kv_uint(struct mp_json *j, const char *key, uint64_t v)
{
	mp_json_key(j, key);
	mp_json_uint(j, v);
}

void mp_json_kv_int(struct mp_json *j, const char *key, int64_t v)
{
	mp_json_key(j, key);
	mp_json_int(j, v);
}

void mp_json_kv_bool(struct mp_json *j, const char *key, bool v)
{
	mp_json_key(j, key);
	mp_json_bool(j, v);
}

void mp_json_kv_strings(struct mp_json *j, const char *key, char *const *v,
			size_t n)
{
	mp_json_key(j, key);
	mp_json_begin_array(j);
	for (size_t i = 0; v && i < n; i++)
		mp_json_string(j, v[i]);
	mp_json_end_array(j);
}

enum mp_err mp_json_finish(struct mp_json *j)
{
	fputc('\n', j->f);
	if (fflush(j->f) != 0 || ferror(j->f))
		return MP_ERR_IO;
	if (j->misuse || j->depth != 0 || j->after_key)
		return MP_ERR_USAGE;
	return MP_OK;
}

void mp_json_totals(struct mp_json *j, const struct mp_totals *t)
{
	mp_json_begin_object(j);
	mp_json_kv_uint(j, "live_bytes", t->live_bytes);
	mp_json_kv_uint(j, "live_blocks", t->live_blocks);
	mp_json_kv_uint(j, "peak_bytes", t->peak_bytes);
	mp_json_kv_uint(j, "allocs", t->allocs);
	mp_json_kv_uint(j, "frees", t->frees);
	mp_json_kv_uint(j, "alloc_bytes", t->alloc_bytes);
	mp_json_end_object(j);
}

void mp_json_frame_fields(struct mp_json *j, const struct mp_resolved_frame *f)
{
	mp_json_kv_string(j, "function", f->function);
	mp_json_kv_string(j, "file", f->file);
	mp_json_key(j, "line");
	if (f->line)
		mp_json_uint(j, f->line);
	else
		mp_json_null(j);
	mp_json_kv_string(j, "module", f->module);
	mp_json_key(j, "address");
	if (f->address)
		mp_json_hex(j, f->address);
	else
		mp_json_null(j);
}

void mp_json_frames(struct mp_json *j, const struct mp_resolved_frame *frames,
		    size_t nframes)
{
	mp_json_begin_array(j);
	for (size_t i = 0; i < nframes; i++) {
		mp_json_begin_object(j);
		mp_json_frame_fields(j, &frames[i]);
		mp_json_end_object(j);
	}
	mp_json_end_array(j);
}
