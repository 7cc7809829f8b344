/*
 * trace_symstore.c - the symbols of a module's return addresses, kept on
 * disk per build-id (formats/symbol-cache.md).
 *
 * Finding a line in a library's DWARF means loading its debuginfo first:
 * inflating libc's compressed sections alone takes 45 ms, more than the
 * whole run of a short program recorded with sampling. A build-id names the
 * code exactly, so what its addresses symbolized to once holds for every
 * later run: the symbolizer keeps those answers in one small file per
 * module with DWARF, and a snapshot whose pcs are all there never opens the
 * module's debuginfo. The files are a cache: a missing, unreadable or
 * corrupt one is only a miss, and failing to write one changes nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/common_leb.h"
#include "trace/trace_internal.h"

/* "MPSYMC", a NUL, the version: bump it when what a pc symbolizes to
 * changes (demangling, file names), so that old answers are misses. */
static const unsigned char store_magic[8] = {'M', 'P', 'S', 'Y',
					     'M', 'C', 0,   1};

#define STORE_HEADER 20		    /* magic, nstrings, nentries, crc */
#define STORE_MAX_FRAMES 1024	    /* inlined frames of one pc */
#define STORE_MAX_BYTES (64u << 20) /* a bigger file is not ours */
#define STORE_MAX_FILES 1000	    /* then the oldest are removed... */
#define STORE_KEEP_FILES 750	    /* ...down to this many */

/* CRC-32 of a file's bytes but its crc field (offset 16). */
static uint32_t store_crc(const unsigned char *buf, size_t len)
{
	uLong crc = crc32(0, Z_NULL, 0);

	crc = crc32(crc, buf, 16);
	for (size_t at = STORE_HEADER; at < len;) {
		size_t n = len - at > (1u << 30) ? (1u << 30) : len - at;

		crc = crc32(crc, buf + at, (uInt)n);
		at += n;
	}
	return (uint32_t)crc;
}

void mp__symstore_free(struct mp__symstore *st)
{
	if (!st)
		return;
	free(st->strings);
	free(st->text);
	free(st->entries);
	free(st->frames);
	free(st);
}

/* A string index as stored: 0 for none, i + 1 for strings[i]. */
static bool store_string(const struct mp__symstore *st, uint32_t ref,
			 const char **out)
{
	if (ref > st->nstrings)
		return false;
	*out = ref ? st->strings[ref - 1] : NULL;
	return true;
}

struct mp__symstore *mp__symstore_parse(const void *data, size_t len)
{
	const unsigned char *buf = data, *p, *end = buf + len;
	struct mp__symstore *st;
	size_t nframes = 0, textlen = 0;
	uint32_t nstrings, nentries;
	char *text;

	if (len < STORE_HEADER || memcmp(buf, store_magic, 8) != 0 ||
	    mp_le_get32(buf + 16) != store_crc(buf, len))
		return NULL;
	nstrings = mp_le_get32(buf + 8);
	nentries = mp_le_get32(buf + 12);
	/* Each string takes 4 bytes at least, each entry 12: counts that
	 * cannot fit are a damaged file, not a reason to allocate. */
	if (nstrings > len / 4 || nentries > len / 12)
		return NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->strings = calloc(nstrings ? nstrings : 1, sizeof(*st->strings));
	st->entries = calloc(nentries ? nentries : 1, sizeof(*st->entries));
	if (!st->strings || !st->entries)
		goto bad;
	/* First pass: sizes, and every bound checked. */
	p = buf + STORE_HEADER;
	for (uint32_t i = 0; i < nstrings; i++) {
		uint32_t n;

		if (end - p < 4)
			goto bad;
		n = mp_le_get32(p);
		p += 4;
		if ((size_t)(end - p) < n || memchr(p, '\0', n))
			goto bad;
		p += n;
		textlen += n + 1;
	}
	const unsigned char *entries_at = p;
	for (uint32_t i = 0; i < nentries; i++) {
		uint32_t n;

		if (end - p < 12)
			goto bad;
		n = mp_le_get32(p + 8);
		if (n > STORE_MAX_FRAMES || (size_t)(end - p - 12) / 12 < n)
			goto bad;
		if (i > 0 && mp_le_get64(p) <= st->entries[i - 1].addr)
			goto bad;
		st->entries[i].addr = mp_le_get64(p);
		st->entries[i].nframes = n;
		st->entries[i].first = (uint32_t)nframes;
		nframes += n;
		p += 12 + (size_t)n * 12;
	}
	if (p != end)
		goto bad;
	st->text = text = malloc(textlen ? textlen : 1);
	st->frames = calloc(nframes ? nframes : 1, sizeof(*st->frames));
	if (!text || !st->frames)
		goto bad;
	st->nstrings = nstrings;
	st->nentries = nentries;
	st->nframes = nframes;
	/* Second pass: copy out, now that everything is known to fit. */
	p = buf + STORE_HEADER;
	for (uint32_t i = 0; i < nstrings; i++) {
		uint32_t n = mp_le_get32(p);

		memcpy(text, p + 4, n);
		text[n] = '\0';
		st->strings[i] = text;
		text += n + 1;
		p += 4 + n;
	}
	p = entries_at;
	for (uint32_t i = 0; i < nentries; i++) {
		struct mp_frame *fr = st->frames + st->entries[i].first;

		p += 12;
		for (uint32_t k = 0; k < st->entries[i].nframes; k++, p += 12) {
			if (!store_string(st, mp_le_get32(p),
					  &fr[k].function) ||
			    !store_string(st, mp_le_get32(p + 4), &fr[k].file))
				goto bad;
			fr[k].line = mp_le_get32(p + 8);
		}
	}
	return st;
bad:
	mp__symstore_free(st);
	return NULL;
}

const struct mp__symstore_entry *mp__symstore_find(
	const struct mp__symstore *st, uint64_t addr)
{
	size_t lo = 0, hi = st ? st->nentries : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (st->entries[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < (st ? st->nentries : 0) && st->entries[lo].addr == addr)
		return &st->entries[lo];
	return NULL;
}

/* ---- encoding ---- */

struct str_slot {
	const char *s;
	uint32_t ref;
};

/* Strings to their stored index, open addressing; cap a power of two. */
struct str_refs {
	struct str_slot *v;
	size_t cap, n;
	const char **order; /* by ref - 1 */
};

/* The stored index of s, added when new; UINT32_MAX on OOM. */
static uint32_t str_ref(struct str_refs *t, const char *s)
{
	if (!s)
		return 0;
	if ((t->n + 1) * 2 > t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		struct str_slot *nv = calloc(ncap, sizeof(*nv));
		const char **no = realloc(t->order, ncap * sizeof(*no));

		if (!nv || !no) {
			free(nv);
			if (no)
				t->order = no;
			return UINT32_MAX;
		}
		t->order = no;
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->v[i].s)
				continue;
			size_t j = mp__hash_str(t->v[i].s) & (ncap - 1);
			while (nv[j].s)
				j = (j + 1) & (ncap - 1);
			nv[j] = t->v[i];
		}
		free(t->v);
		t->v = nv;
		t->cap = ncap;
	}
	size_t j = mp__hash_str(s) & (t->cap - 1);
	while (t->v[j].s && strcmp(t->v[j].s, s) != 0)
		j = (j + 1) & (t->cap - 1);
	if (!t->v[j].s) {
		t->v[j].s = s;
		t->v[j].ref = (uint32_t)++t->n;
		t->order[t->n - 1] = s;
	}
	return t->v[j].ref;
}

unsigned char *mp__symstore_encode(const struct mp__symstore_entry *entries,
				   size_t n, const struct mp_frame *frames,
				   size_t *lenp)
{
	struct str_refs refs = {0};
	size_t len = STORE_HEADER, nframes = 0;
	unsigned char *buf = NULL, *p;
	uint32_t *fref = NULL;

	for (size_t i = 0; i < n; i++)
		nframes += entries[i].nframes;
	fref = malloc((nframes ? nframes : 1) * 2 * sizeof(*fref));
	if (!fref)
		return NULL;
	for (size_t i = 0, k = 0; i < n; i++) {
		const struct mp_frame *fr = frames + entries[i].first;

		for (uint32_t j = 0; j < entries[i].nframes; j++, k++) {
			fref[2 * k] = str_ref(&refs, fr[j].function);
			fref[2 * k + 1] = str_ref(&refs, fr[j].file);
			if (fref[2 * k] == UINT32_MAX ||
			    fref[2 * k + 1] == UINT32_MAX)
				goto out;
		}
	}
	for (size_t i = 0; i < refs.n; i++)
		len += 4 + strlen(refs.order[i]);
	len += n * 12 + nframes * 12;
	buf = malloc(len);
	if (!buf)
		goto out;
	memcpy(buf, store_magic, 8);
	mp_le_put32(buf + 8, (uint32_t)refs.n);
	mp_le_put32(buf + 12, (uint32_t)n);
	p = buf + STORE_HEADER;
	for (size_t i = 0; i < refs.n; i++) {
		size_t sl = strlen(refs.order[i]);

		mp_le_put32(p, (uint32_t)sl);
		memcpy(p + 4, refs.order[i], sl);
		p += 4 + sl;
	}
	for (size_t i = 0, k = 0; i < n; i++) {
		const struct mp_frame *fr = frames + entries[i].first;

		mp_le_put64(p, entries[i].addr);
		mp_le_put32(p + 8, entries[i].nframes);
		p += 12;
		for (uint32_t j = 0; j < entries[i].nframes; j++, k++) {
			mp_le_put32(p, fref[2 * k]);
			mp_le_put32(p + 4, fref[2 * k + 1]);
			mp_le_put32(p + 8, fr[j].line);
			p += 12;
		}
	}
	mp_le_put32(buf + 16, store_crc(buf, len));
	*lenp = len;
out:
	free(fref);
	free(refs.v);
	free(refs.order);
	return buf;
}

/* ---- files ---- */

/* dir/HEX.sym for the build-id; false when it does not fit. */
static bool store_path(char *out, size_t cap, const char *dir,
		       const unsigned char *id, size_t idlen)
{
	size_t n = (size_t)snprintf(out, cap, "%s/", dir);

	if (idlen == 0 || n >= cap || cap - n < idlen * 2 + 5)
		return false;
	for (size_t i = 0; i < idlen; i++)
		n += (size_t)snprintf(out + n, cap - n, "%02x", id[i]);
	snprintf(out + n, cap - n, ".sym");
	return true;
}

bool mp__symstore_exists(const char *dir, const unsigned char *id, size_t idlen)
{
	char path[4096];

	return dir && store_path(path, sizeof(path), dir, id, idlen) &&
	       access(path, R_OK) == 0;
}

struct mp__symstore *mp__symstore_load(const char *dir, const unsigned char *id,
				       size_t idlen)
{
	struct mp__symstore *st = NULL;
	unsigned char *buf = NULL;
	char path[4096];
	struct stat sb;
	size_t got = 0;
	int fd;

	if (!dir || !store_path(path, sizeof(path), dir, id, idlen))
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > STORE_MAX_BYTES)
		goto out;
	buf = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	if (!buf)
		goto out;
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		got += (size_t)r;
	}
	st = mp__symstore_parse(buf, got);
	/* Used: the last to be removed when the directory is trimmed. */
	if (st)
		futimens(fd, NULL);
out:
	free(buf);
	close(fd);
	return st;
}

/* mkdir -p, mode 0700 for what it creates: the names of a user's functions
 * and files are theirs. */
static bool make_dirs(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return false;
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return false;
		*p = '/';
	}
	return mkdir(path, 0700) == 0 || errno == EEXIST;
}

struct aged {
	struct timespec mtime;
	char name[256];
};

static int aged_cmp(const void *a, const void *b)
{
	const struct timespec *x = &((const struct aged *)a)->mtime;
	const struct timespec *y = &((const struct aged *)b)->mtime;

	if (x->tv_sec != y->tv_sec)
		return x->tv_sec < y->tv_sec ? -1 : 1;
	return x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec;
}

/* Keeps the directory to STORE_MAX_FILES store files: past that, removes
 * the least recently used down to STORE_KEEP_FILES. */
static void store_trim(const char *dir)
{
	struct aged *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct stat sb;

		if (len < 5 || len >= sizeof(v->name) ||
		    strcmp(de->d_name + len - 4, ".sym") != 0 ||
		    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) !=
			    0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			struct aged *nv = realloc(v, ncap * sizeof(*nv));

			if (!nv)
				break;
			v = nv;
			cap = ncap;
		}
		v[n].mtime = sb.st_mtim;
		memcpy(v[n].name, de->d_name, len + 1);
		n++;
	}
	if (n > STORE_MAX_FILES) {
		qsort(v, n, sizeof(*v), aged_cmp);
		for (size_t i = 0; i < n - STORE_KEEP_FILES; i++)
			unlinkat(dirfd(d), v[i].name, 0);
	}
	free(v);
	closedir(d);
}

bool mp__symstore_save(const char *dir, const unsigned char *id, size_t idlen,
		       const struct mp__symstore_entry *entries, size_t n,
		       const struct mp_frame *frames)
{
	char path[4096], tmp[4200];
	unsigned char *buf;
	size_t len = 0, done = 0;
	bool ok = false;
	int fd;

	if (!dir || !store_path(path, sizeof(path), dir, id, idlen) ||
	    !make_dirs(dir))
		return false;
	buf = mp__symstore_encode(entries, n, frames, &len);
	if (!buf)
		return false;
	/* Written aside and renamed over: a reader sees the old file or the
	 * new one, never half of one, and two runs saving at once each leave
	 * a whole file. */
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		while (done < len) {
			ssize_t w = write(fd, buf + done, len - done);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			done += (size_t)w;
		}
		ok = close(fd) == 0 && done == len && rename(tmp, path) == 0;
		if (!ok)
			unlink(tmp);
	}
	free(buf);
	if (ok)
		store_trim(dir);
	return ok;
}
