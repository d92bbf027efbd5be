from __future__ import annotations

import contextlib
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayguard.classifier.exchange import MAGIC, FormatError, decode, encode
from relayguard.classifier.store import LearnedRecord, ModelDump, ModelInfo


def sample() -> ModelDump:
    return ModelDump(
        ModelInfo(16, 2, 3, 4),
        np.array([1, 7, 900], np.uint32),
        np.array([0.5, -1.25, 3.0], np.float32),
        np.array([1, 2, 3], np.uint32),
        np.array([20000, 20001, 20002], np.uint32),
        np.array([0.5, 1.5, 0.0], np.float32),
        (LearnedRecord("00" * 32, True, 0.5), LearnedRecord("ff" * 32, False, -0.25)),
    )


def test_roundtrip() -> None:
    d = decode(encode(sample()))
    s = sample()
    assert d.info == s.info and d.records == s.records
    for a, b in ((d.buckets, s.buckets), (d.weights, s.weights), (d.counts, s.counts), (d.days, s.days),
                 (d.accs, s.accs)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "data",
    [b"", b"nope", MAGIC, MAGIC + b"\x00\x00\x00\x05{}", MAGIC + b"\x00\x00\x00\x02[]",
     MAGIC + b"\x00\x00\x00\x40" + b'{"bits": 16}'],
)
def test_rejects_garbage(data: bytes) -> None:
    with pytest.raises(FormatError):
        decode(data)


def test_rejects_unsorted_buckets_and_huge_sizes() -> None:
    raw = encode(sample())
    bad = sample()
    bad = ModelDump(bad.info, np.array([7, 1, 900], np.uint32), bad.weights, bad.counts, bad.days, bad.accs, ())
    with pytest.raises(FormatError):
        decode(encode(bad))
    # A header that announces more than the body holds (a decompression bomb would do this).
    header = b'{"bits": 16, "features_version": 2, "n_ham": 0, "n_records": 0, "n_spam": 0, "n_weights": 60000}'
    with pytest.raises(FormatError):
        decode(MAGIC + len(header).to_bytes(4, "big") + header + zlib.compress(b"\0" * 100))
    assert decode(raw).info.bits == 16


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    with contextlib.suppress(FormatError):
        decode(MAGIC + data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutations_of_a_valid_model(data: st.DataObject) -> None:
    raw = bytearray(encode(sample()))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    try:
        d = decode(bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw))
    except FormatError:
        return
    assert len(d.buckets) == len(d.weights) == len(d.counts) == len(d.days)
    assert np.all(np.isfinite(d.weights))
