"""The requester's hits' labels opened in C (OpenSSL, one call per reply chunk) exactly as in Python.

The C opener (``open_labels`` of the optional ``_labels`` module) must return what
:func:`matcher.protocols.ecdh._open_with` returns for every label, refuse the same
tampered labels, pass its load-time known-answer check only when it does, and leave a
match's hits and its ResponderMisbehaved verdicts as they are with the Python path.
"""

from __future__ import annotations

import hashlib
import random
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from matcher.errors import ResponderMisbehaved
from matcher.protocols import ecdh, ecdh_index, label_backend
from matcher.protocols.ecdh_index import SetupIndex


def _c_opener():
    if label_backend.OPEN is None:
        pytest.skip(f"C label opener not in use here: {label_backend.DETAIL}")
    return label_backend.OPEN


def _seal(out: bytes, ref: bytes, size: int, token: bytes, nonce: bytes) -> bytes:
    plain = len(ref).to_bytes(2, "big") + ref + bytes(size - 2 - len(ref))
    return nonce + ChaCha20Poly1305(out[32:]).encrypt(nonce, plain, ecdh.label_ad(token))


def _python(outputs, labels, tokens):
    return [ecdh._open_with(o[32:], label, ecdh.label_ad(t))
            for o, label, t in zip(outputs, labels, tokens, strict=True)]


def _batch(rng: random.Random, n: int):
    size = rng.choice([2, 32, 64, 200])
    outputs = [rng.randbytes(64) for _ in range(n)]
    tokens = [rng.randbytes(rng.randrange(0, 80)) for _ in range(n)]
    refs = [rng.randbytes(rng.randrange(0, size - 1)) for _ in range(n)]
    labels = [_seal(o, r, size, t, rng.randbytes(12)) for o, r, t in zip(outputs, refs, tokens, strict=True)]
    return outputs, labels, tokens, refs


@pytest.mark.parametrize(("seed", "n"), [(1, 0), (2, 1), (3, 7), (4, 2000)])
def test_c_opener_returns_what_python_opens(seed, n):
    opener = _c_opener()
    outputs, labels, tokens, refs = _batch(random.Random(seed), n)
    assert _python(outputs, labels, tokens) == refs
    assert opener.open_labels(outputs, labels, tokens, ecdh.LABEL_AD_PREFIX) == refs


def _tampered(label: bytes, where: str) -> bytes:
    i = {"nonce": 3, "ciphertext": 12 + 1, "tag": len(label) - 5}[where]
    return label[:i] + bytes([label[i] ^ 0x40]) + label[i + 1:]


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag", "ad", "key"])
def test_a_tampered_label_is_refused_by_both_openers(where):
    opener = _c_opener()
    outputs, labels, tokens, _refs = _batch(random.Random(where), 50)
    if where == "ad":
        tokens = [t + b"\x00" for t in tokens]
    elif where == "key":
        outputs = [o[:40] + bytes([o[40] ^ 1]) + o[41:] for o in outputs]
    else:
        labels = [_tampered(label, where) for label in labels]
    assert _python(outputs, labels, tokens) == [None] * 50
    assert opener.open_labels(outputs, labels, tokens, ecdh.LABEL_AD_PREFIX) == [None] * 50


def test_a_label_whose_length_prefix_exceeds_its_plaintext_is_refused_by_both():
    opener = _c_opener()
    out, nonce = hashlib.sha512(b"o").digest(), bytes(12)
    label = nonce + ChaCha20Poly1305(out[32:]).encrypt(nonce, (31).to_bytes(2, "big") + bytes(30), ecdh.label_ad(b"t"))
    assert _python([out], [label], [b"t"]) == [None]
    assert opener.open_labels([out], [label], [b"t"], ecdh.LABEL_AD_PREFIX) == [None]


def test_c_opener_refuses_what_it_cannot_take():
    opener = _c_opener()
    with pytest.raises(ValueError):
        opener.open_labels([bytes(64)], [bytes(27)], [b""], ecdh.LABEL_AD_PREFIX)
    with pytest.raises(ValueError):
        opener.open_labels([bytes(63)], [bytes(40)], [b""], ecdh.LABEL_AD_PREFIX)
    with pytest.raises(ValueError):
        opener.open_labels([bytes(64)], [bytes(40)], [], ecdh.LABEL_AD_PREFIX)
    with pytest.raises(TypeError):
        opener.open_labels([bytes(64)], ["x" * 40], [b""], ecdh.LABEL_AD_PREFIX)


def test_known_answer_check_takes_a_faithful_opener_and_refuses_a_lax_or_broken_one():
    def faithful(outputs, labels, tokens, prefix):
        return [ecdh._open_with(o[32:], label, prefix + hashlib.sha256(t).digest())
                for o, label, t in zip(outputs, labels, tokens, strict=True)]

    def lax(outputs, labels, tokens, prefix):  # accepts a label whatever its associated data
        return [ecdh._open_with(o[32:], label, prefix + hashlib.sha256(t.rstrip(b"!")).digest())
                for o, label, t in zip(outputs, labels, tokens, strict=True)]

    def unpadded(outputs, labels, tokens, prefix):  # ignores the length prefix's bound
        got = faithful(outputs, labels, tokens, prefix)
        return [g if g is not None or len(t) != 1 else b"" for g, t in zip(got, tokens, strict=True)]

    assert label_backend.opens(SimpleNamespace(open_labels=faithful))
    assert not label_backend.opens(SimpleNamespace(open_labels=lax))
    assert not label_backend.opens(SimpleNamespace(open_labels=unpadded))
    assert not label_backend.opens(SimpleNamespace(open_labels=lambda *a: (_ for _ in ()).throw(RuntimeError())))
    assert not label_backend.opens(SimpleNamespace())


def _index_and_outputs(rng: random.Random, hits: int, misses: int, collide: bool):
    """A setup over random output hashes and the outputs of a requester holding some of them."""
    tag_len = 6
    size = 32
    held = [(rng.randbytes(64), b"tok-%d" % i, b"CASE-%d" % i) for i in range(hits + 20)]
    rows = [(o[:tag_len], _seal(o, ref, size, tok, rng.randbytes(12))) for o, tok, ref in held]
    if collide:  # another entry with the first hit's tag, sorted before it: the opener must go on to the next
        rows.insert(0, (held[0][0][:tag_len], _seal(rng.randbytes(64), b"OTHER", size, b"x", rng.randbytes(12))))
    rows.sort(key=lambda r: r[0])  # stable: the other entry stays first among its tag's
    index = SetupIndex.from_setup(ecdh.ResponderSetup(tag_len, [t for t, _ in rows], [label for _, label in rows]))
    mine = held[:hits] + [(rng.randbytes(64), b"mine-%d" % i, b"") for i in range(misses)]
    rng.shuffle(mine)
    return index, [o for o, _, _ in mine], [t for _, t, _ in mine], [r or None for _, _, r in mine]


@pytest.mark.parametrize("collide", [False, True])
def test_lookup_hits_are_the_same_with_the_c_opener_and_without(collide, monkeypatch):
    _c_opener()
    index, outputs, tokens, expected = _index_and_outputs(random.Random(5), hits=300, misses=500, collide=collide)
    calls = []
    real = label_backend.OPEN
    monkeypatch.setattr(label_backend, "OPEN",
                        SimpleNamespace(open_labels=lambda *a: calls.append(1) or real.open_labels(*a)))
    with_c = index.lookup_outputs(outputs, tokens, offset=0)
    assert calls == [1]  # one call for the chunk
    monkeypatch.setattr(label_backend, "OPEN", None)
    assert index.lookup_outputs(outputs, tokens, offset=0) == with_c == expected


@pytest.mark.parametrize("opener", ["c", "python"])
def test_a_reply_whose_label_does_not_open_is_blamed_on_the_responder_with_either_opener(opener, monkeypatch):
    if opener == "c":
        _c_opener()
    else:
        monkeypatch.setattr(label_backend, "OPEN", None)
    index, outputs, tokens, expected = _index_and_outputs(random.Random(6), hits=50, misses=50, collide=False)
    hits = [j for j, e in enumerate(expected) if e is not None]
    tokens[hits[3]], tokens[hits[7]] = tokens[hits[7]], tokens[hits[3]]  # the replies of two elements swapped
    with pytest.raises(ResponderMisbehaved, match=f"reply {100 + hits[3]} matches a setup entry"):
        index.lookup_outputs(outputs, tokens, offset=100)


def test_labels_of_a_length_the_c_opener_does_not_take_are_opened_in_python(monkeypatch):
    _c_opener()
    index, outputs, tokens, expected = _index_and_outputs(random.Random(7), hits=10, misses=0, collide=False)
    short = outputs[0][:6]
    tags, labels = index.tags, index.labels
    at = tags.index(short)
    labels[at] = labels[at][:5]  # too short even for a nonce: Python's error, as before
    index = SetupIndex.from_setup(ecdh.ResponderSetup(6, tags, labels))
    with pytest.raises(ValueError):
        index.lookup_outputs(outputs, tokens)
    assert ecdh_index._C_LABELS.start == 28
