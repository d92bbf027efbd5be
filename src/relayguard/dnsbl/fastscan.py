"""Vectorised scanning of IPv4 data files: a million lines in a fraction of a second.

A per-line Python parser costs microseconds a line, which makes a 1,000,000-entry zone take many
seconds to load. Nearly every line of a real list is `a.b.c.d[/n]` optionally followed by a value, so
those keys are parsed column by column with numpy over all lines at once; every other line (specials,
default lines, ranges, exclusions, anything unusual) goes through the ordinary line parser, in order.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass

import numpy as np

KEY_WIDTH = 19  # "255.255.255.255/32" and its terminator
CHUNK = 131072  # lines per vector pass: bounds the temporary arrays


@dataclass(slots=True)
class Scan:
    """The fast lines of one file, and the line numbers of all the others (to be parsed in Python)."""

    text: bytes | bytearray
    starts: np.ndarray  # start offset of every line
    ends: np.ndarray  # end offset (exclusive, before the newline) of every line
    fast_line: np.ndarray  # line index of each fast entry
    addr: np.ndarray  # uint32 network address
    bits: np.ndarray  # uint8 prefix length
    keyend: np.ndarray  # offset where the key ends (the value, if any, starts there)
    has_value: np.ndarray  # bool: something other than blanks or a comment follows the key
    slow_lines: np.ndarray  # line indexes for the Python parser


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def read_padded(path: str) -> bytearray:
    """The file's bytes followed by a newline and KEY_WIDTH spare newlines, read without extra copies
    (scan_ip4 looks KEY_WIDTH bytes past each line start)."""
    with open(path, "rb") as f:
        head = f.read(2)
        if head == b"\x1f\x8b":
            f.seek(0)
            data = gzip.decompress(f.read())
            buf = bytearray(data)
            del data
        else:
            size = os.fstat(f.fileno()).st_size
            buf = bytearray(size + KEY_WIDTH + 2)
            f.seek(0)
            got = f.readinto(memoryview(buf)[:size])
            del buf[got:]
    buf += b"\n" * (KEY_WIDTH + 2)
    return buf


def scan_ip4(data: bytes | bytearray, padded: bool = False) -> Scan:
    """Split data into lines and parse every `a[.b[.c[.d]]][/n]` key that starts a line.

    With padded, data already ends with KEY_WIDTH + 2 newlines that are not part of the text.
    """
    if not padded:
        data = bytearray(data) + b"\n" * (KEY_WIDTH + 2)
    n_bytes = len(data) - (KEY_WIDTH + 2)
    arr = np.frombuffer(data, dtype=np.uint8)
    # newlines a few MiB at a time: one boolean per byte of a 20 MB file would be the largest temporary
    step = 1 << 22
    ot = np.int32 if n_bytes < 2**31 - KEY_WIDTH - 4 else np.int64  # offsets: int32 while the file allows
    pieces: list[np.ndarray] = []
    for o in range(0, n_bytes + 1, step):
        piece: np.ndarray = np.flatnonzero(arr[o : min(o + step, n_bytes + 1)] == 10).astype(ot)
        piece += o
        pieces.append(piece)
    ends = np.concatenate(pieces)
    del pieces
    if n_bytes and data[n_bytes - 1] == 10:
        ends = ends[:-1]  # the newline we appended closes nothing
    starts = np.empty_like(ends)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    first = arr[starts] if len(starts) else np.zeros(0, np.uint8)
    cand = np.flatnonzero((first >= 48) & (first <= 57)).astype(np.int32)
    # results go straight into arrays sized for every candidate line (no concatenation at the end,
    # which would hold everything twice); the used prefix is returned as views
    total = len(cand)
    fl = np.empty(total, ends.dtype)
    fa = np.empty(total, np.uint32)
    fb = np.empty(total, np.uint8)
    fk = np.empty(total, ends.dtype)
    fh = np.empty(total, bool)
    filled = 0
    slow_mask = np.ones(len(starts), dtype=bool)
    for c0 in range(0, len(cand), CHUNK):
        li = cand[c0 : c0 + CHUNK]
        s = starts[li]
        n = len(li)
        length: np.ndarray = (ends[li] - s).astype(np.int64)
        m: np.ndarray
        # column-major: row j holds byte j of every line, so each step below reads contiguous memory
        m = np.empty((KEY_WIDTH, n), dtype=np.uint8)
        for j in range(KEY_WIDTH):
            m[j] = arr[s + j]
        acc = np.zeros(n, np.uint32)  # octets so far
        cur = np.zeros(n, np.int32)  # the number being read
        ndig = np.zeros(n, np.int8)
        octs = np.zeros(n, np.int8)
        bits = np.full(n, -1, np.int32)
        in_bits = np.zeros(n, bool)
        done = np.zeros(n, bool)
        bad = np.zeros(n, bool)
        keyend = np.zeros(n, np.int64)
        term = np.zeros(n, np.uint8)
        for j in range(KEY_WIDTH):
            c = m[j]
            c = np.where(length > j, c, np.uint8(10))  # past the end of the line: a newline
            d = c - np.uint8(48)
            isd = d < 10
            cur = np.where(isd, cur * 10 + d, cur)
            ndig = np.where(isd, ndig + 1, 0).astype(np.int8)
            bad |= ndig > 3
            sep = (c == 46) | (c == 47)
            fin = ~(isd | sep) & ~done
            # a number ends here (separator or end of key): it must have digits and fit an octet
            closes = (sep | fin) & ~done
            bad |= closes & ((m[j - 1] == 46) | (m[j - 1] == 47) if j else closes)
            oct_end = closes & ~in_bits
            bad |= oct_end & (cur > 255)
            acc = np.where(oct_end, (acc << np.uint32(8)) | cur.astype(np.uint32), acc)
            octs += oct_end
            bits = np.where(closes & in_bits, cur, bits)
            slash = (c == 47) & ~done
            bad |= slash & in_bits
            in_bits |= slash
            cur = np.where(sep, 0, cur)
            keyend = np.where(fin, j, keyend)
            term = np.where(fin, c, term)
            done |= fin
        octs64 = octs.astype(np.int64)
        ok = done & ~bad & (octs64 >= 1) & (octs64 <= 4)
        # after the key: end of line, blank, comment or value; '-' (a range) and anything else go slow
        ok &= (term == 10) | (term == 32) | (term == 9) | (term == 13) | (term == 35) | (term == 59) | (term == 58)
        addr = acc.astype(np.int64) << np.clip(8 * (4 - octs64), 0, 32)
        bits64 = np.where(bits < 0, 8 * octs64, bits.astype(np.int64))
        ok &= (bits64 >= 0) & (bits64 <= 32)
        hostmask = (np.int64(1) << (32 - np.clip(bits64, 0, 32))) - 1
        ok &= (addr & hostmask) == 0  # 1.2.3.4/24 is a typo in rbldnsd's eyes: the slow path warns
        has_value = ok & (term != 10) & (term != 35) & (term != 59)
        sel = np.flatnonzero(ok)
        slow_mask[li[sel]] = False
        k = len(sel)
        fl[filled : filled + k] = li[sel]
        fa[filled : filled + k] = addr[sel]
        fb[filled : filled + k] = bits64[sel]
        fk[filled : filled + k] = (s + keyend)[sel]
        fh[filled : filled + k] = has_value[sel]
        filled += k
    return Scan(data, starts, ends, fl[:filled], fa[:filled], fb[:filled], fk[:filled], fh[:filled],
                np.flatnonzero(slow_mask))


def expand_cidrs(addr: np.ndarray, bits: np.ndarray, vals: np.ndarray) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """CIDRs -> pieces of (keys, vals) for the /32, /24, /16 and /8 levels, split as rbldnsd's ip4set does.

    A prefix of length p lands on the octet level at or below it: /25-/32 become 2^(32-p) /32 keys,
    /17-/24 become 2^(24-p) /24 keys, /9-/16 become /16 keys, /0-/8 become /8 keys. Values keep the
    narrowest integer type that holds them: a million entries expand to a few million keys here, and
    this is where a load's memory peaks.
    """
    vmax = int(vals.max()) if len(vals) else 0
    vt = np.uint8 if vmax < 256 else np.uint16 if vmax < 65536 else np.uint32
    out: list[list[tuple[np.ndarray, np.ndarray]]] = []
    level = np.where(bits > 24, 0, np.where(bits > 16, 1, np.where(bits > 8, 2, 3)))
    for lvl, top in enumerate((32, 24, 16, 8)):
        pieces: list[tuple[np.ndarray, np.ndarray]] = []
        exact = np.flatnonzero(bits == top)
        if len(exact):
            pieces.append((addr[exact].astype(np.uint32), vals[exact].astype(vt)))
        finer = np.flatnonzero((level == lvl) & (bits != top))
        if len(finer):
            cnt = (np.uint32(1) << (top - bits[finer]).astype(np.uint32)).astype(np.uint32)
            step = np.uint32(1 << (32 - top))
            total = int(cnt.sum(dtype=np.int64))
            # key number k of entry i is addr_i + (k - first_i) * step = k * step + (addr_i - first_i * step),
            # computed modulo 2^32 with one repeated array instead of three
            first = np.cumsum(cnt, dtype=np.uint32) - cnt
            base = addr[finer].astype(np.uint32) - first * step
            del first
            keys = np.arange(total, dtype=np.uint32)
            keys *= step
            keys += np.repeat(base, cnt)
            del base
            pieces.append((keys, np.repeat(vals[finer].astype(vt), cnt)))
        out.append(pieces)
    return out
