/*
 * common_format.h - constants of the .memprof snapshot format.
 *
 * formats/snapshot.md is normative; this header only names its numbers.
 * Shared by the shim (writer) and the CLI (reader and writer).
 */
#ifndef MEMPROF_COMMON_FORMAT_H
#define MEMPROF_COMMON_FORMAT_H

#include <stdint.h>

/* File header: 8-byte magic, u16 major, u16 minor, u32 flags (0). */
#define MP_MAGIC "\x89MEMPROF"
#define MP_MAGIC_LEN 8
#define MP_FILE_HEADER_LEN 16
#define MP_VERSION_MAJOR 1
#define MP_VERSION_MINOR 2 /* 1.1: GRPH; 1.2: TIME */

/*
 * Section header, 32 bytes, all little-endian:
 *   u32 tag, u32 flags, u64 stored_len, u64 raw_len, u32 raw_crc32,
 *   u32 header_crc32 (crc32 of the first 28 bytes).
 */
#define MP_SECTION_HEADER_LEN 32
#define MP_SECTION_ZLIB 0x1u

#define MP_TAG(a, b, c, d)                                          \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | \
	 (uint32_t)(d) << 24)

#define MP_SEC_META MP_TAG('M', 'E', 'T', 'A')
#define MP_SEC_MODULES MP_TAG('M', 'O', 'D', 'S')
#define MP_SEC_STACKS MP_TAG('S', 'T', 'K', 'S')
#define MP_SEC_TRACES MP_TAG('T', 'R', 'C', 'S')
#define MP_SEC_BLOCKS MP_TAG('B', 'L', 'K', 'S')
#define MP_SEC_GRAPH MP_TAG('G', 'R', 'P', 'H')
#define MP_SEC_TIMELINE MP_TAG('T', 'I', 'M', 'E')
#define MP_SEC_SYMBOLS MP_TAG('S', 'Y', 'M', 'S')
#define MP_SEC_END MP_TAG('E', 'N', 'D', ' ')

/* META value types (formats/snapshot.md, "META"). */
#define MP_META_UINT 0
#define MP_META_STR 1

/*
 * GRPH (formats/snapshot.md, "GRPH"). An edge is one uleb
 * (delta << MP_GRPH_EDGE_SHIFT) | flags; a root reference carries two masks
 * of MP_GRPH_ROOT_* bits. The values equal MP_EDGE_* and MP_ROOT_* of
 * memprof_trace.h.
 */
#define MP_GRPH_EDGE_SHIFT 3
#define MP_GRPH_EDGE_FLAGS 0x7u	   /* the flag bits of an edge value */
#define MP_GRPH_EDGE_INTERIOR 0x1u /* only interior pointers found */
#define MP_GRPH_EDGE_KNOWN 0x1u	   /* flags a 1.1 reader accepts */
#define MP_GRPH_ROOT_DATA 0x1u	   /* writable segments of modules */
#define MP_GRPH_ROOT_STACK 0x2u	   /* thread stacks */
#define MP_GRPH_ROOT_REGS 0x4u	   /* thread registers */
#define MP_GRPH_ROOT_TLS 0x8u	   /* thread-local storage, descriptors */
#define MP_GRPH_ROOT_KNOWN 0xfu	   /* a kinds mask must be within this */

/*
 * TIME (formats/snapshot.md, "TIME", since 1.2): the shim samples live
 * bytes and blocks every interval, starting at MP_TIME_FIRST_INTERVAL_NS;
 * when its buffer of samples is full it keeps every other sample and
 * doubles the interval.
 */
#define MP_TIME_FIRST_INTERVAL_NS 10000000ull /* 10 ms */

#endif
