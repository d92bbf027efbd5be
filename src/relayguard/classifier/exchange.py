"""Export/import format of a model (also the starter model's format).

    b"RGCLASSIFIER\\x01\\n"  magic and format version
    4 bytes big-endian     length of the JSON header
    JSON header            {"bits", "features_version", "n_spam", "n_ham", "n_weights", "n_records"}
    zlib stream            little-endian arrays: buckets u32[n], weights f32[n], counts u32[n],
                           days u32[n], accs f32[n], then per record: 32-byte SHA-256 digest,
                           u8 label, f32 gradient

Import trusts nothing: sizes come from the header and are checked against hard limits before anything
is allocated, decompression stops at the announced size, and buckets must be sorted, unique and inside
the hash space.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import IO

import numpy as np

from relayguard.classifier.store import LearnedRecord, ModelDump, ModelInfo

MAGIC = b"RGCLASSIFIER\x02\n"
_MAX_HEADER = 4096
_MAX_WEIGHTS = 1 << 26
_MAX_RECORDS = 50_000_000
_REC = struct.Struct("<32sBf")


class FormatError(ValueError):
    pass


def encode(dump: ModelDump, level: int = 6) -> bytes:
    i = dump.info
    n = len(dump.buckets)
    header = json.dumps(
        {
            "bits": i.bits,
            "features_version": i.features_version,
            "n_spam": i.n_spam,
            "n_ham": i.n_ham,
            "n_weights": n,
            "n_records": len(dump.records),
        },
        sort_keys=True,
    ).encode()
    z = zlib.compressobj(level)
    chunks = [
        z.compress(np.ascontiguousarray(dump.buckets, dtype="<u4").tobytes()),
        z.compress(np.ascontiguousarray(dump.weights, dtype="<f4").tobytes()),
        z.compress(np.ascontiguousarray(dump.counts, dtype="<u4").tobytes()),
        z.compress(np.ascontiguousarray(dump.days, dtype="<u4").tobytes()),
        z.compress(np.ascontiguousarray(dump.accs, dtype="<f4").tobytes()),
    ]
    chunks.extend(z.compress(_REC.pack(bytes.fromhex(r.digest), int(r.is_spam), r.step)) for r in dump.records)
    chunks.append(z.flush())
    return MAGIC + struct.pack(">I", len(header)) + header + b"".join(chunks)


def _int(h: dict[str, object], key: str, lo: int, hi: int) -> int:
    v = h.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise FormatError(f"header field {key!r} missing or out of range")
    return v


def decode(data: bytes) -> ModelDump:
    if not data.startswith(MAGIC):
        raise FormatError("not a relayguard classifier model (bad magic)")
    pos = len(MAGIC)
    if len(data) < pos + 4:
        raise FormatError("truncated header")
    (hlen,) = struct.unpack(">I", data[pos : pos + 4])
    pos += 4
    if hlen > _MAX_HEADER or len(data) < pos + hlen:
        raise FormatError("bad header length")
    try:
        h = json.loads(data[pos : pos + hlen])
    except (ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"header is not JSON: {e}") from None
    if not isinstance(h, dict):
        raise FormatError("header is not an object")
    pos += hlen
    bits = _int(h, "bits", 8, 30)
    fv = _int(h, "features_version", 0, 1 << 30)
    n_spam = _int(h, "n_spam", 0, 1 << 62)
    n_ham = _int(h, "n_ham", 0, 1 << 62)
    n = _int(h, "n_weights", 0, min(_MAX_WEIGHTS, 1 << bits))
    nr = _int(h, "n_records", 0, _MAX_RECORDS)
    want = 20 * n + _REC.size * nr
    d = zlib.decompressobj()
    try:
        body = d.decompress(data[pos:], want)
    except zlib.error as e:
        raise FormatError(f"corrupt body: {e}") from None
    if len(body) != want or d.unconsumed_tail or not d.eof or d.unused_data:
        raise FormatError("body size does not match the header")
    buckets = np.frombuffer(body, "<u4", n, 0).astype(np.uint32)
    weights = np.frombuffer(body, "<f4", n, 4 * n).astype(np.float32)
    counts = np.frombuffer(body, "<u4", n, 8 * n).astype(np.uint32)
    days = np.frombuffer(body, "<u4", n, 12 * n).astype(np.uint32)
    accs = np.frombuffer(body, "<f4", n, 16 * n).astype(np.float32)
    if n and (np.any(np.diff(buckets.astype(np.int64)) <= 0) or int(buckets[-1]) >= (1 << bits)):
        raise FormatError("buckets not sorted, not unique or outside the hash space")
    if not np.all(np.isfinite(weights)) or not np.all(np.isfinite(accs)) or np.any(accs < 0):
        raise FormatError("non-finite weight or negative accumulator")
    records = []
    seen: set[str] = set()
    for off in range(20 * n, want, _REC.size):
        dg, label, step = _REC.unpack_from(body, off)
        if label > 1 or step != step or abs(step) > 1e6:
            raise FormatError("bad learned-message record")
        digest = dg.hex()
        if digest in seen:
            raise FormatError("duplicate learned-message record")
        seen.add(digest)
        records.append(LearnedRecord(digest, bool(label), float(step)))
    return ModelDump(ModelInfo(bits, fv, n_spam, n_ham), buckets, weights, counts, days, accs, tuple(records))


def write(dump: ModelDump, fh: IO[bytes]) -> None:
    fh.write(encode(dump))


def read(fh: IO[bytes]) -> ModelDump:
    return decode(fh.read())
