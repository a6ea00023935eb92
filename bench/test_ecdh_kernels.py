"""pytest-benchmark suites of the ecdh (and keyed-hash) core kernels, per batch of 1000 elements (single process).

Run: make bench   (or: .venv/bin/python -m pytest bench --benchmark-only)
"""

from __future__ import annotations

import pytest

from matcher.protocols import ecdh, ecdh_index, keyed_hash

N = 1000


@pytest.fixture(scope="module")
def data():
    a, b = ecdh.new_key(), ecdh.new_key()
    tokens = [b"matcher/v1/n1/document/X%08d\x1fDEU" % i for i in range(N)]
    blinded = ecdh.blind_tokens(a, tokens)
    evaluated = ecdh.evaluate(b, blinded)
    pairs = [(t, b"CASE-%06d" % i) for i, t in enumerate(tokens)]
    setup = ecdh.responder_setup(b, pairs, 10)
    index = ecdh_index.SetupIndex(10)
    index.add(setup.tags, setup.labels)
    outputs = ecdh.unblind_outputs(ecdh.invert_key(a), evaluated)
    return {"a": a, "b": b, "tokens": tokens, "blinded": blinded, "evaluated": evaluated, "pairs": pairs,
            "index": index, "outputs": outputs}


def test_hash_to_group(benchmark, data):
    benchmark(lambda: [ecdh.hash_to_group(t) for t in data["tokens"]])


def test_blind(benchmark, data):
    benchmark(ecdh.blind_tokens, data["a"], data["tokens"])


def test_setup(benchmark, data):
    benchmark(ecdh.setup_rows, data["b"], data["pairs"], 10, 32)


def test_evaluate(benchmark, data):
    benchmark(ecdh.evaluate, data["b"], data["blinded"])


def test_unblind_and_derive(benchmark, data):
    benchmark(ecdh.unblind_outputs, ecdh.invert_key(data["a"]), data["evaluated"])


def test_lookup_all_hits(benchmark, data):
    found = benchmark(data["index"].lookup_outputs, data["outputs"], data["tokens"])
    assert all(f is not None for f in found)


def test_keyed_hash_tags(benchmark, data):
    """Protocol keyed-hash: HMAC-SHA-256 tags of 1000 tokens (the requester's whole work)."""
    benchmark(keyed_hash.tags, bytes(range(32)), data["tokens"])


def test_keyed_hash_lookup(benchmark, data):
    """Protocol keyed-hash: the responder's intersection of 1000 received tags."""
    secret = bytes(range(32))
    index = keyed_hash.responder_index(secret, data["pairs"])
    received = keyed_hash.tags(secret, data["tokens"])
    found = benchmark(keyed_hash.lookup, index, received)
    assert all(f is not None for f in found)
