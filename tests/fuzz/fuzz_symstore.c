/*
 * fuzz_symstore.c - fuzzes the symbol cache's reader (trace_symstore.c)
 * against formats/symbol-cache.md.
 *
 * Each input is parsed twice: as it is, and with its CRC field set to the
 * CRC of its bytes, so that mutations get past the checksum into the
 * counts, strings and entries. Besides crashes, an accepted file must obey
 * the spec (entries strictly increasing, every frame's strings among the
 * file's), find every one of its entries, and read back the same after
 * being encoded again.
 */
#include <string.h>
#include <zlib.h>

#include "fuzz.h"
#include "trace/trace_internal.h"

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static void check_store(const struct mp__symstore *st)
{
	for (size_t i = 0; i < st->nentries; i++) {
		const struct mp__symstore_entry *e = &st->entries[i];

		FUZZ_CHECK(i == 0 || st->entries[i - 1].addr < e->addr);
		FUZZ_CHECK(e->first + (size_t)e->nframes <= st->nframes);
		FUZZ_CHECK(mp__symstore_find(st, e->addr) == e);
	}
	size_t len = 0;
	unsigned char *buf = mp__symstore_encode(st->entries, st->nentries,
						 st->frames, &len);
	if (!buf)
		return; /* out of memory */
	struct mp__symstore *again = mp__symstore_parse(buf, len);
	FUZZ_CHECK(again != NULL);
	FUZZ_CHECK(again->nentries == st->nentries);
	for (size_t i = 0; i < st->nentries; i++) {
		const struct mp__symstore_entry *a = &st->entries[i];
		const struct mp__symstore_entry *b = &again->entries[i];

		FUZZ_CHECK(a->addr == b->addr && a->nframes == b->nframes);
		for (uint32_t k = 0; k < a->nframes; k++) {
			const struct mp_frame *x = &st->frames[a->first + k];
			const struct mp_frame *y = &again->frames[b->first + k];

			FUZZ_CHECK(same_str(x->function, y->function));
			FUZZ_CHECK(same_str(x->file, y->file));
			FUZZ_CHECK(x->line == y->line);
		}
	}
	mp__symstore_free(again);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mp__symstore *st = mp__symstore_parse(data, size);

	if (st) {
		check_store(st);
		mp__symstore_free(st);
	}
	if (size < 20)
		return 0;
	uint8_t *copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	uLong crc = crc32(0, Z_NULL, 0);
	crc = crc32(crc, copy, 16);
	crc = crc32(crc, copy + 20, (uInt)(size - 20));
	for (int i = 0; i < 4; i++)
		copy[16 + i] = (uint8_t)(crc >> (8 * i));
	st = mp__symstore_parse(copy, size);
	if (st) {
		check_store(st);
		mp__symstore_free(st);
	}
	free(copy);
	return 0;
}
