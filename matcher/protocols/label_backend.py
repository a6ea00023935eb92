"""Which implementation seals the ecdh setup's labels: OpenSSL in C (batch), or ``cryptography`` per label.

Both compute the same bytes: ChaCha20-Poly1305 of the padded case reference under the
label key, with the associated data ``"matcher/v2/label" ‖ 0 ‖ SHA-256(token)`` (see
:mod:`matcher.protocols.ecdh`). The C sealer (``_ifma/label_seal.c``, module ``_labels``,
built by ``make`` beside the IFMA extension against the system's OpenSSL) does a whole
batch in one call and returns the rows in one buffer, which removes the Python work
around each label (about 3 µs of the setup's 12 µs per entry with IFMA).

It is used only if it was built, its files are not writable by anyone but their owner,
and it seals a known-answer batch exactly as ``cryptography`` does; else, and under
``MATCHER_GROUP_BACKEND=portable``, :data:`SEAL` is None and the labels are sealed in
Python as before.

The same module opens the requester's hits' labels in one call per reply chunk
(``open_labels``, :data:`OPEN`), checked at load against labels ``cryptography`` sealed
and tampered copies of them; else the requester opens each label in Python.
"""

from __future__ import annotations

import os
from types import ModuleType

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from matcher.protocols.group_backend import ExtensionUnavailable

#: the C batch sealer when it passed its known-answer test, else None
SEAL: ModuleType | None = None
#: why the C sealer is or is not used (for start-up lines and benchmarks)
DETAIL = "python (cryptography)"
#: the C sealer also writes whole setup rows (``tag ‖ label``, its ``tag_len`` argument) and
#: seals without holding the GIL, so threads of this process can share a setup's batches;
#: and it sorts fixed-width rows in one buffer (``sort_rows``) and the watchlist digest's
#: (token, reference) pairs (``pairs_sorted``)
ROWS = False
#: the C batch opener (``open_labels``) when it passed its known-answer test (opens what
#: ``cryptography`` sealed, refuses a tampered tag, ciphertext, nonce or associated data), else None:
#: the requester then opens each hit's label in Python
OPEN: ModuleType | None = None


def _load() -> ModuleType:
    from matcher.protocols._ifma import build
    from matcher.protocols.group_backend import load_built_module

    return load_built_module(build.labels_path(), build.LABELS_MODULE)


def known_answer(seal: ModuleType, tag_len: int | None = None) -> bool:
    """Whether ``seal`` seals a fixed batch (several lengths, an empty reference) exactly as ``cryptography`` does.

    With ``tag_len``: whether it writes the rows ``tag ‖ label`` (the tag: the first ``tag_len``
    bytes of each output hash) exactly so.
    """
    import hashlib

    prefix = b"matcher/v2/label\x00"
    size = 64
    tokens = [b"", b"t", b"token-%d" % 7, bytes(range(200))]
    refs = [b"", b"CASE-1", b"x" * 62, b"\xff" * 30]
    outputs = b"".join(hashlib.sha512(b"kat-%d" % i).digest() for i in range(len(tokens)))
    nonces = hashlib.sha256(b"kat-nonces").digest() + hashlib.sha256(b"kat-nonces-2").digest()[:16]
    expected = b""
    for i, (token, ref) in enumerate(zip(tokens, refs, strict=True)):
        nonce = nonces[12 * i : 12 * (i + 1)]
        plain = len(ref).to_bytes(2, "big") + ref + bytes(size - 2 - len(ref))
        key = outputs[64 * i + 32 : 64 * (i + 1)]
        if tag_len is not None:
            expected += outputs[64 * i : 64 * i + tag_len]
        expected += nonce + ChaCha20Poly1305(key).encrypt(nonce, plain, prefix + hashlib.sha256(token).digest())
    try:
        extra = () if tag_len is None else (tag_len,)
        got = seal.seal(outputs, tokens, refs, size, nonces, prefix, *extra)
    except Exception:
        return False
    return bool(got == expected)


def opens(module: ModuleType) -> bool:
    """Whether ``module.open_labels`` opens labels sealed by ``cryptography`` (several lengths, an
    empty reference) exactly as :func:`matcher.protocols.ecdh._open_with` does, and returns None for a
    label whose tag, ciphertext, nonce or associated data was altered, or whose length prefix is too long."""
    import hashlib

    prefix = b"matcher/v2/label\x00"
    outputs: list[bytes] = []
    labels: list[bytes] = []
    tokens: list[bytes] = []
    expected: list[bytes | None] = []
    for i, (size, ref) in enumerate([(2, b""), (64, b"CASE-1"), (64, b"x" * 62), (128, b"\xff" * 30)]):
        out = hashlib.sha512(b"kat-open-%d" % i).digest()
        token = b"token-%d" % i
        nonce = hashlib.sha256(b"kat-open-nonce-%d" % i).digest()[:12]
        plain = len(ref).to_bytes(2, "big") + ref + bytes(size - 2 - len(ref))
        label = nonce + ChaCha20Poly1305(out[32:]).encrypt(nonce, plain, prefix + hashlib.sha256(token).digest())
        outputs.append(out)
        labels.append(label)
        tokens.append(token)
        expected.append(ref)
        for bad in (bytes([label[0] ^ 1]) + label[1:], label[:20] + bytes([label[20] ^ 0x80]) + label[21:],
                    label[:-1] + bytes([label[-1] ^ 1])):
            outputs.append(out)
            labels.append(bad)
            tokens.append(token)
            expected.append(None)
        outputs.append(out)  # the associated data of another token
        labels.append(label)
        tokens.append(token + b"!")
        expected.append(None)
    out = hashlib.sha512(b"kat-open-long").digest()  # authentic, but its length prefix exceeds the plaintext
    nonce = bytes(12)
    plain = (63).to_bytes(2, "big") + bytes(62)
    outputs.append(out)
    labels.append(nonce + ChaCha20Poly1305(out[32:]).encrypt(nonce, plain, prefix + hashlib.sha256(b"t").digest()))
    tokens.append(b"t")
    expected.append(None)
    try:
        return bool(module.open_labels(outputs, labels, tokens, prefix) == expected
                    and module.open_labels([], [], [], prefix) == [])
    except Exception:
        return False


def _select() -> None:
    global SEAL, DETAIL, ROWS, OPEN
    if (os.environ.get("MATCHER_GROUP_BACKEND", "auto").strip().lower() or "auto") == "portable":
        DETAIL = "python (cryptography), forced by MATCHER_GROUP_BACKEND=portable"
        return
    try:
        module = _load()
    except (ExtensionUnavailable, OSError) as e:
        DETAIL = f"python (cryptography); C sealer unavailable: {e}"
        return
    if not known_answer(module):
        DETAIL = "python (cryptography); the C sealer failed its known-answer test"
        return
    SEAL, DETAIL = module, "C (OpenSSL ChaCha20-Poly1305, batch), known-answer test passed"
    # an older build has neither tag_len nor sort_rows: False
    ROWS = known_answer(module, 6) and known_answer(module, 0) and sorts_rows(module) and sorts_pairs(module)
    # an older build has no open_labels: None
    OPEN = module if opens(module) else None


def sorts_pairs(module: ModuleType) -> bool:
    """Whether ``module.pairs_sorted`` orders (token, ref) pairs exactly as ``sorted`` orders the tuples
    (a token that is another's prefix, equal tokens, empty values) and writes each length-prefixed."""
    pairs = [(b"ab", b"2"), (b"a", b"zz"), (b"abc", b""), (b"ab", b"10"), (b"", b"x"), (b"a\xff", b"1"),
             (b"ab", b"1"), (b"a\x00", b"y"), (b"ab", b"1")]
    expected = b"".join(len(t).to_bytes(4, "big") + t + len(r).to_bytes(4, "big") + r for t, r in sorted(pairs))
    try:
        return bool(module.pairs_sorted(pairs) == expected)
    except Exception:
        return False


def sorts_rows(module: ModuleType) -> bool:
    """Whether ``module.sort_rows`` orders fixed-width rows exactly as ``sorted`` orders them as bytes."""
    import hashlib

    width = 7
    rows = [hashlib.sha256(b"kat-row-%d" % (i % 40)).digest()[: 1 + i % 3].ljust(width, b"\x00")
            for i in range(100)]
    try:
        got = module.sort_rows(b"".join(rows), width)
    except Exception:
        return False
    return bool(got == b"".join(sorted(rows)))


_select()
