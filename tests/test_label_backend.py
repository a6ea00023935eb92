"""The setup's labels sealed in C (OpenSSL, one call per batch) are the bytes `cryptography` seals.

The C sealer is optional (built by ``make`` beside the IFMA extension): these tests
compare it with the Python path on random batches, check that a sealer that gets a
byte wrong is not used, and that ``MATCHER_GROUP_BACKEND=portable`` keeps the labels in
Python.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from types import SimpleNamespace

import pytest

from matcher.protocols import ecdh, label_backend


def _c_sealer():
    if label_backend.SEAL is None:
        pytest.skip(f"C label sealer not in use here: {label_backend.DETAIL}")
    return label_backend.SEAL


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_c_sealed_rows_equal_the_python_rows_for_the_same_nonces(seed, monkeypatch):
    sealer = _c_sealer()
    rng = random.Random(seed)
    n = rng.choice([1, 7, 300])
    pairs = [(rng.randbytes(rng.randrange(0, 90)), rng.randbytes(rng.randrange(0, 60))) for _ in range(n)]
    size = ecdh.label_size(r for _, r in pairs)
    outputs = rng.randbytes(64 * n)
    nonces = rng.randbytes(12 * n)
    monkeypatch.setattr(ecdh.os, "urandom", lambda k: nonces[:k])
    in_c = ecdh.seal_rows(outputs, pairs, 12, size)
    monkeypatch.setattr(label_backend, "SEAL", None)
    monkeypatch.setattr(ecdh._labels, "SEAL", None)
    in_python = ecdh.seal_rows(outputs, pairs, 12, size)
    assert in_c == in_python
    assert sealer.seal(outputs, [t for t, _ in pairs], [r for _, r in pairs], size, nonces,
                       ecdh.LABEL_AD_PREFIX) == b"".join(label for _, label in in_python)


def test_a_label_sealed_in_c_opens_for_its_token_only():
    _c_sealer()
    key = ecdh.new_key()
    pairs = [(b"tok-%d" % i, b"CASE-%d" % i) for i in range(20)]
    rows = ecdh.seal_rows(ecdh.setup_outputs(key, [t for t, _ in pairs]), pairs, 10, 32)
    for (token, ref), (_tag, label) in zip(pairs, rows, strict=True):
        point = ecdh.evaluate(key, [ecdh.hash_to_group(token)])[0]
        assert ecdh.open_label(point, label, token) == ref
        assert ecdh.open_label(point, label, token + b"x") is None


def test_c_sealer_refuses_a_reference_longer_than_the_label():
    sealer = _c_sealer()
    with pytest.raises(ValueError):
        sealer.seal(bytes(64), [b"t"], [b"x" * 31], 32, bytes(12), ecdh.LABEL_AD_PREFIX)


def test_a_sealer_that_gets_one_byte_wrong_fails_the_known_answer_test():
    def off_by_one(*args):
        good = label_backend.known_answer.__globals__["ChaCha20Poly1305"]  # the reference, per label
        outputs, tokens, refs, size, nonces, prefix = args
        out = b""
        for i, (token, ref) in enumerate(zip(tokens, refs, strict=True)):
            nonce = nonces[12 * i : 12 * (i + 1)]
            plain = len(ref).to_bytes(2, "big") + ref + bytes(size - 2 - len(ref))
            out += nonce + good(outputs[64 * i + 32 : 64 * (i + 1)]).encrypt(
                nonce, plain, prefix + hashlib.sha256(token).digest())
        return out[:-1] + bytes([out[-1] ^ 1])

    assert not label_backend.known_answer(SimpleNamespace(seal=off_by_one))
    assert not label_backend.known_answer(SimpleNamespace(seal=lambda *a: (_ for _ in ()).throw(RuntimeError())))


def test_portable_keeps_the_labels_in_python():
    env = dict(os.environ, MATCHER_GROUP_BACKEND="portable")
    out = subprocess.run(
        [sys.executable, "-c", "from matcher.protocols import label_backend as l; print(l.SEAL is None, l.DETAIL)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    assert out.startswith("True python (cryptography), forced by MATCHER_GROUP_BACKEND=portable")
