/*
 * common_writer.c - the streaming .memprof writer (formats/snapshot.md).
 *
 * Linked into the shim, where it runs at snapshot time with the heap in any
 * state (from an atexit handler, a signal-driven trigger, the memprof_*
 * API), so it is hook-safe: no malloc, no stdio, no locks, and no libc call
 * that may allocate (no snprintf, no strerror). Buffers and zlib's state
 * come from mmap; output goes through write(2) and pwrite(2). The CLI links
 * the same file to rewrite snapshots.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "common/common_format.h"
#include "common/common_leb.h"
#include "common/common_writer.h"

#define STAGE_CAP (64 * 1024)
#define ZOUT_CAP (64 * 1024)
/*
 * deflate with windowBits 15 and memLevel 8 takes about 270 KiB (zlib's
 * zconf.h: (1 << (wbits + 2)) + (1 << (memLevel + 9)) plus its state);
 * twice that leaves room for zlib versions that grow it. Pages never
 * touched cost nothing.
 */
#define ARENA_CAP (512 * 1024)
#define ZLEVEL 3

static void *map(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void fail(struct mpw *w, int err)
{
	if (!w->err)
		w->err = err ? err : EIO;
}

/*
 * zlib's allocator: a bump pointer in the mmap'd arena. deflate allocates
 * only in deflateInit2 (deflateReset reuses its state), so zfree has
 * nothing to do; the arena goes away whole in release().
 */
static voidpf arena_alloc(voidpf opaque, uInt items, uInt size)
{
	struct mpw *w = opaque;
	size_t n;
	void *p;

	if (size && items > SIZE_MAX / size)
		return Z_NULL;
	n = (size_t)items * size;
	if (n > SIZE_MAX - 15)
		return Z_NULL;
	n = (n + 15) & ~(size_t)15;
	if (n > w->arena_len - w->arena_used)
		return Z_NULL;
	p = (char *)w->arena + w->arena_used;
	w->arena_used += n;
	return p;
}

static void arena_free(voidpf opaque, voidpf p)
{
	(void)opaque;
	(void)p;
}

static void release(struct mpw *w)
{
	if (w->buf)
		munmap(w->buf, STAGE_CAP);
	if (w->zout)
		munmap(w->zout, ZOUT_CAP);
	if (w->arena)
		munmap(w->arena, w->arena_len);
	w->buf = NULL;
	w->zout = NULL;
	w->arena = NULL;
	w->zs = NULL;
	w->buf_len = w->buf_cap = w->zout_cap = 0;
	w->arena_len = w->arena_used = 0;
	w->sec_tag = 0;
	/* Marks the writer finished: a second close writes nothing. */
	w->fd = -1;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t r = write(fd, p, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (r == 0)
			return EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int pwrite_all(int fd, const unsigned char *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t r = pwrite(fd, p, n, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (r == 0)
			return EIO;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static void out(struct mpw *w, const void *p, size_t n)
{
	int e;

	if (w->err)
		return;
	e = write_all(w->fd, p, n);
	if (e)
		fail(w, e);
	else
		w->off += n;
}

static void sec_header(unsigned char *h, uint32_t tag, uint32_t flags,
		       uint64_t stored, uint64_t raw, uint32_t crc)
{
	mp_le_put32(h, tag);
	mp_le_put32(h + 4, flags);
	mp_le_put64(h + 8, stored);
	mp_le_put64(h + 16, raw);
	mp_le_put32(h + 24, crc);
	mp_le_put32(h + 28, (uint32_t)crc32(0, h, 28));
}

int mpw_open(struct mpw *w, int fd)
{
	unsigned char h[MP_FILE_HEADER_LEN];
	z_stream *zs;

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->level = ZLEVEL;
	w->buf = map(STAGE_CAP);
	if (!w->buf)
		goto fail_errno;
	w->buf_cap = STAGE_CAP;
	w->zout = map(ZOUT_CAP);
	if (!w->zout)
		goto fail_errno;
	w->zout_cap = ZOUT_CAP;
	w->arena = map(ARENA_CAP);
	if (!w->arena)
		goto fail_errno;
	w->arena_len = ARENA_CAP;

	/* mmap'd memory is zeroed, as z_stream wants its unused fields. */
	zs = arena_alloc(w, 1, sizeof(*zs));
	zs->zalloc = arena_alloc;
	zs->zfree = arena_free;
	zs->opaque = w;
	if (deflateInit2(zs, w->level, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		fail(w, ENOMEM);
		goto fail;
	}
	w->zs = zs;

	memcpy(h, MP_MAGIC, MP_MAGIC_LEN);
	mp_le_put16(h + 8, MP_VERSION_MAJOR);
	mp_le_put16(h + 10, MP_VERSION_MINOR);
	mp_le_put32(h + 12, 0);
	out(w, h, sizeof(h));
	if (w->err)
		goto fail;
	return 0;

fail_errno:
	fail(w, errno ? errno : ENOMEM);
fail:
	release(w);
	return w->err;
}

/* True when payload bytes may be added: no error and a section is open. */
static int can_write(struct mpw *w)
{
	if (w->err)
		return 0;
	if (!w->sec_tag) {
		fail(w, EINVAL);
		return 0;
	}
	return 1;
}

void mpw_begin(struct mpw *w, uint32_t tag)
{
	unsigned char h[MP_SECTION_HEADER_LEN];

	if (w->err)
		return;
	if (w->sec_tag || !tag || w->fd < 0) {
		fail(w, EINVAL);
		return;
	}
	if (deflateReset(w->zs) != Z_OK) {
		fail(w, EIO);
		return;
	}
	w->sec_start = w->off;
	/* A placeholder: mpw_end() knows the lengths and CRC. */
	memset(h, 0, sizeof(h));
	out(w, h, sizeof(h));
	w->sec_tag = tag;
	w->sec_raw = 0;
	w->sec_stored = 0;
	w->sec_crc = (uint32_t)crc32(0, Z_NULL, 0);
	w->buf_len = 0;
}

/* Compresses the staged bytes; with Z_FINISH also ends the zlib stream. */
static void deflate_stage(struct mpw *w, int flush)
{
	z_stream *zs = w->zs;

	w->sec_crc = (uint32_t)crc32(w->sec_crc, w->buf, (uInt)w->buf_len);
	w->sec_raw += w->buf_len;
	zs->next_in = w->buf;
	zs->avail_in = (uInt)w->buf_len;
	for (;;) {
		size_t n;
		int r;

		zs->next_out = w->zout;
		zs->avail_out = (uInt)w->zout_cap;
		r = deflate(zs, flush);
		if (r == Z_STREAM_ERROR) {
			fail(w, EIO);
			return;
		}
		n = w->zout_cap - zs->avail_out;
		if (n) {
			out(w, w->zout, n);
			if (w->err)
				return;
			w->sec_stored += n;
		}
		if (flush == Z_FINISH) {
			if (r == Z_STREAM_END)
				break;
		} else if (zs->avail_in == 0 && zs->avail_out != 0) {
			/* Room was left over, so deflate holds no more output.
			 */
			break;
		}
	}
	w->buf_len = 0;
}

void mpw_bytes(struct mpw *w, const void *p, size_t n)
{
	const unsigned char *c = p;

	if (!can_write(w))
		return;
	while (n) {
		size_t room = w->buf_cap - w->buf_len;

		if (!room) {
			deflate_stage(w, Z_NO_FLUSH);
			if (w->err)
				return;
			room = w->buf_cap;
		}
		if (room > n)
			room = n;
		memcpy(w->buf + w->buf_len, c, room);
		w->buf_len += room;
		c += room;
		n -= room;
	}
}

/* Numbers are most of a snapshot: encode straight into the staging
 * buffer when it has room (and an open section with no error, which the
 * slow path checks). */
void mpw_uleb(struct mpw *w, uint64_t v)
{
	if (__builtin_expect(w->sec_tag && !w->err &&
				     w->buf_cap - w->buf_len >= MP_LEB_MAX,
			     1)) {
		w->buf_len += mp_leb_put_u(w->buf + w->buf_len, v);
		return;
	}
	unsigned char tmp[MP_LEB_MAX];

	mpw_bytes(w, tmp, mp_leb_put_u(tmp, v));
}

void mpw_sleb(struct mpw *w, int64_t v)
{
	if (__builtin_expect(w->sec_tag && !w->err &&
				     w->buf_cap - w->buf_len >= MP_LEB_MAX,
			     1)) {
		w->buf_len += mp_leb_put_s(w->buf + w->buf_len, v);
		return;
	}
	unsigned char tmp[MP_LEB_MAX];

	mpw_bytes(w, tmp, mp_leb_put_s(tmp, v));
}

void mpw_strn(struct mpw *w, const char *s, size_t n)
{
	if (w->err)
		return;
	/* Readers reject longer strings; better no file than an unreadable one.
	 */
	if (n > MP_STR_MAX) {
		fail(w, E2BIG);
		return;
	}
	mpw_uleb(w, n);
	if (n)
		mpw_bytes(w, s, n);
}

void mpw_str(struct mpw *w, const char *s)
{
	mpw_strn(w, s ? s : "", s ? strlen(s) : 0);
}

void mpw_meta_uint(struct mpw *w, const char *key, uint64_t v)
{
	mpw_str(w, key);
	mpw_uleb(w, MP_META_UINT);
	mpw_uleb(w, v);
}

void mpw_meta_str(struct mpw *w, const char *key, const char *s)
{
	mpw_str(w, key);
	mpw_uleb(w, MP_META_STR);
	mpw_str(w, s);
}

void mpw_end(struct mpw *w)
{
	unsigned char h[MP_SECTION_HEADER_LEN];
	int e;

	if (!can_write(w))
		return;
	deflate_stage(w, Z_FINISH);
	if (w->err)
		return;
	sec_header(h, w->sec_tag, MP_SECTION_ZLIB, w->sec_stored, w->sec_raw,
		   w->sec_crc);
	e = pwrite_all(w->fd, h, sizeof(h), w->sec_start);
	if (e)
		fail(w, e);
	w->sec_tag = 0;
}

void mpw_copy_section(struct mpw *w, uint32_t tag, uint32_t flags,
		      uint64_t raw_len, uint32_t raw_crc, const void *stored,
		      uint64_t stored_len)
{
	unsigned char h[MP_SECTION_HEADER_LEN];

	if (w->err)
		return;
	if (w->sec_tag || !tag || w->fd < 0 || stored_len > SIZE_MAX ||
	    (stored_len && !stored)) {
		fail(w, EINVAL);
		return;
	}
	sec_header(h, tag, flags, stored_len, raw_len, raw_crc);
	out(w, h, sizeof(h));
	if (stored_len)
		out(w, stored, (size_t)stored_len);
}

int mpw_close(struct mpw *w)
{
	unsigned char h[MP_SECTION_HEADER_LEN];

	if (w->fd < 0)
		return w->err;
	/* A section left open is finished rather than lost. */
	if (!w->err && w->sec_tag)
		mpw_end(w);
	if (!w->err) {
		sec_header(h, MP_SEC_END, 0, 0, 0,
			   (uint32_t)crc32(0, Z_NULL, 0));
		out(w, h, sizeof(h));
	}
	release(w);
	return w->err;
}

void mpw_abort(struct mpw *w)
{
	fail(w, ECANCELED);
	release(w);
}
