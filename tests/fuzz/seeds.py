#!/usr/bin/env python3
"""seeds.py - writes seed inputs for fuzz_reader from valid snapshots.

    tests/fuzz/seeds.py OUTDIR SNAPSHOT...

For each snapshot (formats/snapshot.md), OUTDIR gets: the file as is; the
same snapshot with every section stored uncompressed (flag bit 0 clear,
checksums recomputed), so that mutations land in the data the decoders
read rather than in a zlib stream; copies truncated inside the file
header, a section header, a payload and before END; and copies with one
bit flipped in the file header, in a section's data and in the END
section. Then a few files no recording gives: empty, the magic alone, a
later major version, an unknown section. `make fuzz-merge` keeps those
that add coverage. Standard library only.
"""
import os
import struct
import sys
import zlib

MAGIC = b"\x89MEMPROF"
SEC_HDR = struct.Struct("<4sIQQI")  # tag, flags, stored, raw, raw_crc


def sections(data):
    """(tag, flags, stored bytes, raw bytes) of each section, END included."""
    pos, out = 16, []
    while pos + 32 <= len(data):
        tag, flags, stored, raw, crc = SEC_HDR.unpack_from(data, pos)
        body = data[pos + 32:pos + 32 + stored]
        payload = zlib.decompress(body) if flags & 1 else body
        out.append((tag, flags, body, payload))
        pos += 32 + stored
        if tag == b"END ":
            break
    return out


def section(tag, payload, compress=False):
    body = zlib.compress(payload, 3) if compress and payload else payload
    flags = 1 if compress and payload else 0
    crc = zlib.crc32(payload) if tag != b"END " else 0
    hdr = SEC_HDR.pack(tag, flags, len(body), len(payload), crc)
    return hdr + struct.pack("<I", zlib.crc32(hdr)) + body


def header(major=1, minor=2):
    return MAGIC + struct.pack("<HHI", major, minor, 0)


def uleb(v):
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def flip(data, at, bit=0):
    b = bytearray(data)
    b[at] ^= 1 << bit
    return bytes(b)


def variants(name, data):
    secs = sections(data)
    raw = header(*struct.unpack_from("<HH", data, 8)) + b"".join(
        section(t, p) for t, _, _, p in secs)
    yield name, data
    yield name + "-stored", raw
    # Offsets: the first section header, the first payload, END.
    first_payload = 16 + 32
    end_at = len(data) - 32
    for cut, what in ((7, "header"), (16 + 20, "sechdr"),
                      (first_payload + 3, "payload"), (end_at, "noend"),
                      (len(data) - 1, "end")):
        yield "%s-cut-%s" % (name, what), data[:cut]
    yield name + "-flip-version", flip(data, 8, 1)
    yield name + "-flip-data", flip(raw, first_payload + 2, 3)
    yield name + "-flip-end", flip(data, end_at + 2, 0)


def extras():
    yield "empty", b""
    yield "magic-only", MAGIC
    yield "major-7", header(7, 0) + section(b"END ", b"")
    minimal = [section(t, p) for t, p in (
        (b"META", b""), (b"MODS", b"\x00"), (b"STKS", b"\x00"),
        (b"TRCS", b"\x00"))]
    yield "minimal", header() + b"".join(minimal) + section(b"END ", b"")
    yield "unknown-section", (header() + b"".join(minimal) +
                              section(b"XTRA", b"kept as is", True) +
                              section(b"END ", b""))
    # One stack, one trace, two blocks pointing at each other (a leaked
    # cycle), a root, symbols and a timeline, all stored uncompressed.
    meta = (uleb(3) + b"pid" + uleb(0) + uleb(42) +
            uleb(4) + b"argv" + uleb(1) + uleb(4) + b"a\x00b\x00" +
            uleb(8) + b"start_ns" + uleb(0) + uleb(1000))
    mods = uleb(1) + uleb(4) + b"/bin" + uleb(0) + uleb(0x1000) + \
        uleb(0x2000) + uleb(0)
    stks = uleb(2) + uleb(2) + uleb(0x1100) + uleb(0x10) + uleb(1) + \
        uleb(0x20)
    trcs = uleb(2) + b"".join(uleb(v) for v in (0, 48, 2, 3, 64, 48)) + \
        b"".join(uleb(v) for v in (1, 16, 1, 1, 16, 16))
    blks = uleb(3) + b"".join(uleb(v) for v in (
        0x10000, 16, 0, 0x20, 32, 0, 0x40, 16, 1))
    grph = b"".join(uleb(v) for v in (
        3, 1, 0, 1, 2, 1, 0,          # 3 blocks, 1 thread, root -> block 2
        1, (1 << 3) | 0,              # block 0 -> block 1
        1, (0 << 3) | 1,              # block 1 -> block 0, interior
        0))
    time = b"".join(uleb(v) for v in (10, 2, 5, 100, 1, 5, 48, 2, 1, 0, 20))
    syms = (uleb(2) + uleb(4) + b"main" + uleb(3) + b"a.c" + uleb(2) +
            uleb(0x1100) + uleb(1) + uleb(1) + uleb(1) + uleb(2) + uleb(7) +
            uleb(0x20) + uleb(0) + uleb(0))
    body = b"".join(section(t, p) for t, p in (
        (b"META", meta), (b"MODS", mods), (b"STKS", stks), (b"TRCS", trcs),
        (b"BLKS", blks), (b"GRPH", grph), (b"TIME", time), (b"SYMS", syms)))
    yield "handmade-cycle", header() + body + section(b"END ", b"")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: seeds.py OUTDIR SNAPSHOT...")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = list(extras())
    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            name = os.path.splitext(os.path.basename(path))[0]
            seeds.extend(variants(name, f.read()))
    for name, data in seeds:
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(seeds), out))


if __name__ == "__main__":
    main()
