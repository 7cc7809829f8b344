/*
 * common_leb.h - LEB128 encoding and decoding (formats/snapshot.md,
 * "Integer encodings"), and the fixed-width little-endian fields of the
 * snapshot's headers and the symbol cache's files.
 *
 * Shared by the shim's writer and the CLI's reader, so it is header-only,
 * hook-safe and allocation-free. Decoders never read past the bytes they are
 * given and reject values that do not fit 64 bits.
 */
#ifndef MEMPROF_COMMON_LEB_H
#define MEMPROF_COMMON_LEB_H

#include <stddef.h>
#include <stdint.h>

/* The longest encoding of a 64-bit value. */
#define MP_LEB_MAX 10

/*
 * The longest "str" the format allows (formats/snapshot.md). Belongs with
 * the other format numbers in common_format.h; kept here until it moves.
 */
#ifndef MP_STR_MAX
#define MP_STR_MAX (1u << 20)
#endif

/* Encodes v into p (room for MP_LEB_MAX bytes); returns the length. */
static inline size_t mp_leb_put_u(unsigned char *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

static inline size_t mp_leb_put_s(unsigned char *p, int64_t v)
{
	size_t n = 0;

	for (;;) {
		unsigned char b = (unsigned char)(v & 0x7f);

		/* Arithmetic shift: gcc and clang define it for negative v. */
		v >>= 7;
		if ((v == 0 && !(b & 0x40)) || (v == -1 && (b & 0x40))) {
			p[n++] = b;
			return n;
		}
		p[n++] = b | 0x80;
	}
}

/*
 * Decoders return the number of bytes consumed (> 0), 0 when the input ends
 * inside the number, or -1 when it is longer than MP_LEB_MAX bytes or does
 * not fit 64 bits. *v is written only on success.
 */
static inline int mp_leb_get_u(const unsigned char *p, size_t avail,
			       uint64_t *v)
{
	uint64_t r = 0;
	size_t i;

	for (i = 0; i < MP_LEB_MAX; i++) {
		unsigned char b;

		if (i == avail)
			return 0;
		b = p[i];
		/* The tenth byte carries bit 63 only. */
		if (i == MP_LEB_MAX - 1 && (b & 0xfe))
			return -1;
		r |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = r;
			return (int)i + 1;
		}
	}
	return -1;
}

static inline int mp_leb_get_s(const unsigned char *p, size_t avail, int64_t *v)
{
	uint64_t r = 0;
	size_t i;

	for (i = 0; i < MP_LEB_MAX; i++) {
		unsigned char b;

		if (i == avail)
			return 0;
		b = p[i];
		if (i == MP_LEB_MAX - 1) {
			/*
			 * Bit 63 is the sign; the six bits above it must
			 * repeat it, and there is no continuation.
			 */
			if (b != 0x00 && b != 0x7f)
				return -1;
			r |= (uint64_t)(b & 1) << 63;
			*v = (int64_t)r;
			return MP_LEB_MAX;
		}
		r |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (b & 0x40)
				r |= ~(uint64_t)0 << (7 * (i + 1));
			*v = (int64_t)r;
			return (int)i + 1;
		}
	}
	return -1;
}

/* Fixed-width little-endian fields: p holds at least the field's bytes. */
static inline void mp_le_put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static inline void mp_le_put32(unsigned char *p, uint32_t v)
{
	mp_le_put16(p, (uint16_t)v);
	mp_le_put16(p + 2, (uint16_t)(v >> 16));
}

static inline void mp_le_put64(unsigned char *p, uint64_t v)
{
	mp_le_put32(p, (uint32_t)v);
	mp_le_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t mp_le_get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t mp_le_get32(const unsigned char *p)
{
	return (uint32_t)mp_le_get16(p) | (uint32_t)mp_le_get16(p + 2) << 16;
}

static inline uint64_t mp_le_get64(const unsigned char *p)
{
	return (uint64_t)mp_le_get32(p) | (uint64_t)mp_le_get32(p + 4) << 32;
}

#endif
