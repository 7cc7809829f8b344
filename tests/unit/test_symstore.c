/*
 * test_symstore.c - the symbol store's file format (trace_symstore.c):
 * what is encoded reads back the same, and a damaged file is refused
 * whole rather than read wrong.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "trace/trace_internal.h"

/* Three pcs: an inlined call in its caller, a pc named by its ELF symbol
 * only (no file), and a pc with no symbol at all. */
static const struct mp_frame sst_frames[] = {
	{"inner", "/src/a.c", 12},
	{"outer(int)", "/src/a.c", 40},
	{"elf_only", NULL, 0},
};
static const struct mp__symstore_entry sst_entries[] = {
	{0x1000, 2, 0},
	{0x1010, 1, 2},
	{0x2000, 0, 3},
};

static unsigned char *sst_encode(size_t *len)
{
	unsigned char *buf =
		mp__symstore_encode(sst_entries, 3, sst_frames, len);

	cr_assert_not_null(buf);
	return buf;
}

Test(symstore, reads_back_what_was_encoded)
{
	size_t len;
	unsigned char *buf = sst_encode(&len);
	struct mp__symstore *st = mp__symstore_parse(buf, len);

	cr_assert_not_null(st);
	cr_assert_eq(st->nentries, 3);
	cr_assert_eq(st->nframes, 3);
	/* "/src/a.c" is stored once for its two frames. */
	cr_assert_eq(st->nstrings, 4);
	for (size_t i = 0; i < 3; i++) {
		const struct mp__symstore_entry *e = &st->entries[i];

		cr_assert_eq(e->addr, sst_entries[i].addr);
		cr_assert_eq(e->nframes, sst_entries[i].nframes);
		for (uint32_t k = 0; k < e->nframes; k++) {
			const struct mp_frame *got = &st->frames[e->first + k];
			const struct mp_frame *want =
				&sst_frames[sst_entries[i].first + k];

			cr_assert_str_eq(got->function, want->function);
			if (want->file)
				cr_assert_str_eq(got->file, want->file);
			else
				cr_assert_null(got->file);
			cr_assert_eq(got->line, want->line);
		}
	}
	mp__symstore_free(st);
	free(buf);
}

Test(symstore, finds_exact_addresses_only)
{
	size_t len;
	unsigned char *buf = sst_encode(&len);
	struct mp__symstore *st = mp__symstore_parse(buf, len);

	cr_assert_not_null(st);
	cr_assert_eq(mp__symstore_find(st, 0x1010), &st->entries[1]);
	cr_assert_eq(mp__symstore_find(st, 0x2000), &st->entries[2]);
	cr_assert_eq(mp__symstore_find(st, 0x1000), &st->entries[0]);
	cr_assert_null(mp__symstore_find(st, 0x1008));
	cr_assert_null(mp__symstore_find(st, 0xfff));
	cr_assert_null(mp__symstore_find(st, 0x2001));
	cr_assert_null(mp__symstore_find(NULL, 0x1000));
	mp__symstore_free(st);
	free(buf);
}

Test(symstore, an_empty_store_reads_back_empty)
{
	size_t len;
	unsigned char *buf = mp__symstore_encode(NULL, 0, NULL, &len);
	struct mp__symstore *st;

	cr_assert_not_null(buf);
	st = mp__symstore_parse(buf, len);
	cr_assert_not_null(st);
	cr_assert_eq(st->nentries, 0);
	cr_assert_null(mp__symstore_find(st, 0));
	mp__symstore_free(st);
	free(buf);
}

/* Every prefix of a file, and the file with any one byte changed (in every
 * bit, one at a time), is refused. */
Test(symstore, refuses_every_truncation_and_every_bit_flip)
{
	size_t len;
	unsigned char *buf = sst_encode(&len);

	for (size_t n = 0; n < len; n++)
		cr_assert_null(mp__symstore_parse(buf, n), "prefix of %zu", n);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (unsigned char)(1u << bit);
			cr_assert_null(mp__symstore_parse(buf, len),
				       "byte %zu bit %d", i, bit);
			buf[i] ^= (unsigned char)(1u << bit);
		}
	}
	free(buf);
}

/* Counts that the file cannot hold are refused before allocating. */
Test(symstore, refuses_counts_larger_than_the_file)
{
	size_t len;
	unsigned char *buf = mp__symstore_encode(NULL, 0, NULL, &len);

	cr_assert_eq(len, 20);
	cr_assert_null(mp__symstore_parse(buf, len + 1));
	free(buf);
}

Test(symstore, saves_loads_and_misses_in_a_directory)
{
	char *tmp = tu_tmpdir();
	char *dir = tu_path(tmp, "a/b/symbols");
	const unsigned char id[] = {0xde, 0xad, 0xbe, 0xef};
	const unsigned char other[] = {0xde, 0xad, 0xbe, 0xee};
	struct mp__symstore *st;
	struct stat sb;

	cr_assert(!mp__symstore_exists(dir, id, sizeof(id)));
	cr_assert_null(mp__symstore_load(dir, id, sizeof(id)));
	cr_assert(mp__symstore_save(dir, id, sizeof(id), sst_entries, 3,
				    sst_frames));
	cr_assert(mp__symstore_exists(dir, id, sizeof(id)));
	cr_assert(!mp__symstore_exists(dir, other, sizeof(other)));
	char *file = tu_path(dir, "deadbeef.sym");
	cr_assert_eq(stat(file, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	st = mp__symstore_load(dir, id, sizeof(id));
	cr_assert_not_null(st);
	cr_assert_eq(st->nentries, 3);
	cr_assert_str_eq(st->frames[1].function, "outer(int)");
	mp__symstore_free(st);
	/* No build-id, no directory: nothing to load, nothing saved. */
	cr_assert(!mp__symstore_save(dir, id, 0, sst_entries, 3, sst_frames));
	cr_assert(!mp__symstore_save(NULL, id, 4, sst_entries, 3, sst_frames));
	cr_assert_null(mp__symstore_load(NULL, id, sizeof(id)));
	/* A damaged file is a miss. */
	FILE *f = fopen(file, "r+");
	cr_assert_not_null(f);
	fseek(f, 25, SEEK_SET);
	fputc('!', f);
	fclose(f);
	cr_assert_null(mp__symstore_load(dir, id, sizeof(id)));
	free(file);
	free(dir);
	free(tmp);
}

/* The directory keeps its most recently used files: past 1000 stores,
 * saving one removes the oldest down to 750. */
Test(symstore, trims_the_directory_to_the_most_recently_used, .timeout = 60)
{
	char *dir = tu_tmpdir();
	unsigned char id[4] = {0};

	for (unsigned i = 0; i < 1000; i++) {
		struct timespec t[2] = {{1000000 + i, 0}, {1000000 + i, 0}};
		char name[64];

		id[0] = (unsigned char)(i >> 8);
		id[1] = (unsigned char)i;
		cr_assert(mp__symstore_save(dir, id, sizeof(id), sst_entries, 3,
					    sst_frames));
		snprintf(name, sizeof(name), "%02x%02x0000.sym", id[0], id[1]);
		int dfd = open(dir, O_RDONLY | O_DIRECTORY);
		cr_assert_geq(dfd, 0);
		cr_assert_eq(utimensat(dfd, name, t, 0), 0);
		close(dfd);
	}
	/* A save when at the limit adds the 1001st, then trims. */
	id[0] = 0xff;
	id[1] = 0;
	cr_assert(mp__symstore_save(dir, id, sizeof(id), sst_entries, 3,
				    sst_frames));
	size_t n = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += strstr(de->d_name, ".sym") != NULL;
	closedir(d);
	cr_assert_eq(n, 750);
	/* The oldest went, the newest stayed. */
	id[0] = 0;
	id[1] = 0;
	cr_assert(!mp__symstore_exists(dir, id, sizeof(id)));
	id[0] = 0x03;
	id[1] = 0xe7; /* 999 */
	cr_assert(mp__symstore_exists(dir, id, sizeof(id)));
	id[0] = 0xff;
	id[1] = 0;
	cr_assert(mp__symstore_exists(dir, id, sizeof(id)));
	free(dir);
}
