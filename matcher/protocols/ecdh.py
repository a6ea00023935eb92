"""Diffie-Hellman PSI in the prime-order group ristretto255 (DESIGN §3, protocol ``ecdh``).

Notation: H maps a token to the group, ``H(t) = from_hash(SHA-512("matcher/v1/h2g" ‖ 0 ‖ t))``
(libsodium's Elligator-based hash-to-group over 64 uniform bytes). The responder holds
an epoch key ``b``, the requester a fresh session key ``a`` (both uniform non-zero
scalars from libsodium's CSPRNG).

* Responder setup: for each own token y, ``Y = b·H(y)`` and ``D = SHA-512("matcher/v1/out" ‖ 0 ‖ Y)``;
  the *tag* is the first ``L`` bytes of D and the *label key* the last 32 bytes. The
  label is the case reference, padded to a common length and sealed with
  ChaCha20-Poly1305 under the label key with a random nonce (the key is the same for
  every setup of an epoch, so a fixed nonce would not be safe) and the associated data
  ``"matcher/v2/label" ‖ 0 ‖ SHA-256(y)``, which binds the label to its token. Entries
  are sorted by tag, which reveals no order of the watchlist.
* Session: the requester sends ``X = a·H(x)``; the responder returns ``b·X``; the
  requester computes ``a⁻¹·(b·a·H(x)) = b·H(x)``, derives its tag and label key, and
  a hit is a tag found in the setup whose label opens under the key *and* the
  associated data of the requester's own token x. A responder that permutes,
  repeats, substitutes or replays replies returns for element i a point whose tag
  may be in the setup, but whose label was sealed for another token: it does not
  open under x_i's associated data (forging one needs SHA-256(x_i), i.e. holding
  x_i), so it is never a hit and is reported as :class:`ResponderMisbehaved`. Under the
  one-more-DH assumption the requester learns nothing about ``b·H(y)`` for y it does
  not hold, and the responder sees only uniformly random group elements.

Every point that arrives from the other side goes through :func:`check_point`:
it must be the 32-byte canonical encoding of a ristretto255 element other than the
identity (the identity would let a peer probe for a zero scalar and carries no token).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import rbcl
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from matcher.errors import InvalidElement
from matcher.protocols import group_backend as _backend
from matcher.protocols import label_backend as _labels

if TYPE_CHECKING:
    from matcher.parallel import Workers

#: The ristretto255 implementation the batch kernels run on (shown in the metrics' build
#: info): libsodium through rbcl, or the AVX-512 IFMA backend when
#: :mod:`matcher.protocols.group_backend` selected it at start-up.
GROUP_BACKEND = "ifma-libcrypto_mb" if _backend.NAME == "ifma" else "libsodium-portable"
#: True when the batch kernels (blind, evaluate, unblind) run without the GIL, so that
#: threads of one process compute them in parallel (the IFMA backend); the portable
#: backend's per-element loop holds the GIL and needs worker processes.
KERNELS_RELEASE_GIL = _backend.FAST is not None

POINT_BYTES = 32
SCALAR_BYTES = 32
IDENTITY = bytes(POINT_BYTES)
FALSE_HIT_BITS = 40
#: version of the label format (associated data below); bumped when the setup's bytes change
LABEL_VERSION = 2
LABEL_AD_PREFIX = b"matcher/v2/label\x00"
NONCE_BYTES = 12
MIN_TAG_BYTES, MAX_TAG_BYTES = 8, 32
#: nonce + a 2-byte length + at least 30 padded bytes + the Poly1305 tag
MIN_LABEL_BYTES = NONCE_BYTES + 32 + 16
_H2G_DOMAIN = b"matcher/v1/h2g\x00"
_OUT_DOMAIN = b"matcher/v1/out\x00"
_LABEL_BLOCK = 32

_from_hash = rbcl.crypto_core_ristretto255_from_hash
_smul = rbcl.crypto_scalarmult_ristretto255
_is_valid = rbcl.crypto_core_ristretto255_is_valid_point


def new_key() -> bytes:
    """A uniform non-zero scalar mod the group order, from libsodium's CSPRNG."""
    while True:
        k = rbcl.crypto_core_ristretto255_scalar_random()
        if k != bytes(SCALAR_BYTES):
            return k


def invert_key(key: bytes) -> bytes:
    """``key⁻¹`` mod the group order (used by the requester to unblind)."""
    return rbcl.crypto_core_ristretto255_scalar_invert(key)


def multiply_keys(x: bytes, y: bytes) -> bytes:
    """``x·y`` mod the group order (a blinding key made of two)."""
    return rbcl.crypto_core_ristretto255_scalar_mul(x, y)


def hash_to_group(token: bytes) -> bytes:
    """H(token): a ristretto255 point whose discrete log nobody knows."""
    return _from_hash(hashlib.sha512(_H2G_DOMAIN + token).digest())


def check_point(point: bytes, index: int = 0) -> None:
    """Refuse anything but a canonical, non-identity ristretto255 encoding."""
    if not isinstance(point, bytes | bytearray) or len(point) != POINT_BYTES:
        raise InvalidElement(f"element {index} is not a 32-byte ristretto255 point")
    if point == IDENTITY:
        raise InvalidElement(f"element {index} is the identity point")
    # RFC 9496 §4.3.1: bit 255 of a canonical encoding is 0. libsodium 1.0.18 ignores
    # it, which would give every element a second accepted encoding.
    if point[31] & 0x80 or not _is_valid(bytes(point)):
        raise InvalidElement(f"element {index} is not a valid ristretto255 point encoding")


def blind_tokens(key: bytes, tokens: Sequence[bytes]) -> list[bytes]:
    """``key·H(t)`` for each token, in order: the requester's message (or Y for setup)."""
    if _backend.FAST is not None:
        out = _backend.FAST.blind(key, _H2G_DOMAIN, tokens)
        if isinstance(out, list):  # else an identity result: the portable path raises as before
            return out
    return [_smul(key, _from_hash(hashlib.sha512(_H2G_DOMAIN + t).digest())) for t in tokens]


def _multiply_checked(key: bytes, points: Sequence[bytes], offset: int) -> list[bytes]:
    """``key·P`` for each P, refusing anything that is not a non-identity point.

    libsodium's scalar multiplication decodes P (rejecting non-canonical
    encodings, except that libsodium 1.0.18 ignores bit 255) and fails when the
    result is the identity, which for a non-zero key happens only when P is the
    identity; so one call both checks and multiplies. Lengths and bit 255 are
    checked first: the binding does not. The IFMA backend refuses the same
    encodings (bit 255 included); on a refusal the portable loop names the element.
    """
    if _backend.FAST is not None:
        fast = _backend.FAST.multiply(key, points)
        if isinstance(fast, list):
            return fast
    out: list[bytes] = []
    append = out.append
    for i, p in enumerate(points):
        if len(p) != POINT_BYTES or p[31] & 0x80:
            check_point(p, offset + i)
        try:
            append(_smul(key, p))
        except RuntimeError:
            check_point(p, offset + i)
            raise InvalidElement(f"element {offset + i} is not a valid ristretto255 point") from None
    return out


def evaluate(key: bytes, points: Sequence[bytes], offset: int = 0) -> list[bytes]:
    """Responder's reply ``key·X`` for each received point X, after checking every X.

    ``offset`` is the index of ``points[0]`` in the whole request, so an error names
    the element's position in the session.
    """
    return _multiply_checked(key, points, offset)


def unblind(inverse_key: bytes, points: Sequence[bytes], offset: int = 0) -> list[bytes]:
    """Requester's ``a⁻¹·(b·a·H(x)) = b·H(x)`` for each returned point, after checking it."""
    return _multiply_checked(inverse_key, points, offset)


def unblind_outputs(inverse_key: bytes, points: Sequence[bytes], offset: int = 0) -> list[bytes]:
    """The 64-byte output hash of ``a⁻¹·P`` for each returned P: tag and label key in one.

    The requester's whole per-element work after the reply, as one batch kernel.
    """
    if _backend.FAST is not None:
        fast = _backend.FAST.multiply_outputs(inverse_key, _OUT_DOMAIN, points)
        if isinstance(fast, list):
            return fast
    return [_derive(q) for q in _multiply_checked(inverse_key, points, offset)]


def tag_length(setup_size: int, request_size: int) -> int:
    """Tag bytes such that a false tag match over a session stays under 2^-40.

    A requester element matches an unrelated setup tag with chance 2^-8L; over
    ``setup_size · request_size`` pairs the union bound needs
    ``8L ≥ 40 + log2(setup_size · request_size)``.
    """
    pairs = max(1, setup_size) * max(1, request_size)
    bits = FALSE_HIT_BITS + math.ceil(math.log2(pairs)) if pairs > 1 else FALSE_HIT_BITS
    return min(MAX_TAG_BYTES, max(MIN_TAG_BYTES, math.ceil(bits / 8)))


def _derive(point: bytes) -> bytes:
    return hashlib.sha512(_OUT_DOMAIN + point).digest()


def output_hashes(points: Iterable[bytes]) -> list[bytes]:
    """The 64-byte output hash (tag ‖ … ‖ label key) of each point b·H(t)."""
    return [_derive(p) for p in points]


def derive_tags(points: Iterable[bytes], length: int) -> list[bytes]:
    """The tag (first ``length`` bytes of the output hash) of each point b·H(t)."""
    return [_derive(p)[:length] for p in points]


def label_size(case_refs: Iterable[bytes]) -> int:
    """Common padded plaintext size of the labels: hides each case reference's length."""
    longest = max((len(c) for c in case_refs), default=0)
    return _LABEL_BLOCK * (1 + (longest + 2) // _LABEL_BLOCK)


def label_ad(token: bytes) -> bytes:
    """The AEAD associated data of token ``token``'s label: binds the label to the token.

    ``"matcher/v2/label" ‖ 0 ‖ SHA-256(token)``. The requester knows the token of each
    of its own elements, so a label sealed for another token does not open for it.
    """
    return LABEL_AD_PREFIX + hashlib.sha256(token).digest()


def seal_label(point: bytes, case_ref: bytes, size: int, token: bytes) -> bytes:
    """Encrypt a case reference under the label key derived from ``point`` = b·H(y), bound to ``token`` = y."""
    if len(case_ref) + 2 > size:
        raise ValueError("case reference longer than the label size")
    plain = len(case_ref).to_bytes(2, "big") + case_ref
    plain += bytes(size - len(plain))
    return _seal(_derive(point)[32:], plain, label_ad(token))


def _seal(label_key: bytes, plain: bytes, ad: bytes) -> bytes:
    """nonce ‖ ChaCha20-Poly1305(plain) with a fresh random nonce.

    The label key depends only on b·H(y), so it is the same for every setup built in
    an epoch (e.g. after the watchlist changed): a fixed nonce would reuse the key
    stream and let a requester XOR two versions of a label it cannot open.
    """
    nonce = os.urandom(NONCE_BYTES)
    return nonce + ChaCha20Poly1305(label_key).encrypt(nonce, plain, ad)


def open_label(point: bytes, label: bytes, token: bytes) -> bytes | None:
    """The case reference sealed under ``point``'s label key for ``token``, or None if it does not open."""
    return _open_with(_derive(point)[32:], label, label_ad(token))


def _open_with(label_key: bytes, label: bytes, ad: bytes) -> bytes | None:
    try:
        plain = ChaCha20Poly1305(label_key).decrypt(label[:NONCE_BYTES], label[NONCE_BYTES:], ad)
    except InvalidTag:
        return None
    n = int.from_bytes(plain[:2], "big")
    return plain[2 : 2 + n] if n + 2 <= len(plain) else None


@dataclass(repr=False)
class ResponderSetup:
    """The responder's per-epoch setup: sorted tags and their sealed labels (may be empty)."""

    def __repr__(self) -> str:  # the points map to the watchlist's tokens
        return f"ResponderSetup(<{len(self.tags)} entries, tags of {self.tag_length} bytes>)"

    tag_length: int
    tags: list[bytes]
    labels: list[bytes]
    #: reveal = "both" only: b·H(y) -> token y, to check a requester's report of its hits.
    #: Never sent; held only by the responder.
    points: dict[bytes, bytes] | None = None
    #: the rows ``tag ‖ label`` in order, joined, when the builder had them (the setup cache
    #: writes them without joining again and drops them: see :func:`matcher.storage.setup_cache.save_setup`)
    rows: bytes | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.tags)


def setup_rows(
    key: bytes, pairs: Sequence[tuple[bytes, bytes]], tag_len: int, size: int, keep_points: bool = False
) -> list[tuple[bytes, ...]]:
    """Batch kernel of the setup: (tag, sealed label) of each (token, case reference).

    ``size`` is the common label size; 0 means no labels. With ``keep_points`` each
    row also carries b·H(y) (reveal = "both"). ``tag_len`` = 0 stands for the
    cardinality setup: the row is (b·H(y), b"") itself, no tag and no label.
    """
    points = _setup_points(key, pairs, derive=bool(tag_len))
    if not tag_len:
        return [(y, b"") for y, _ in points]
    if keep_points:
        ys, ds = [], []
        for y, d in points:
            ys.append(y)
            ds.append(d)
        return [(*row, y) for row, y in zip(_sealed_rows(b"".join(ds), pairs, tag_len, size), ys, strict=True)]
    return _sealed_rows(b"".join([d for _, d in points]), pairs, tag_len, size)


OUTPUT_BYTES = 64


def setup_outputs(key: bytes, tokens: Sequence[bytes]) -> bytes:
    """Batch kernel: the 64-byte output hash of ``key·H(y)`` of each token, concatenated.

    The setup's group operations, computed apart from its labels so they can run
    while the watchlist is still being read (the labels need every case reference);
    :func:`seal_rows` finishes the rows.
    """
    if _backend.FAST is not None:
        fast = _backend.FAST.blind_outputs(key, _H2G_DOMAIN, _OUT_DOMAIN, tokens)
        if isinstance(fast, tuple):
            return b"".join(fast[0])
    return b"".join([_derive(_smul(key, _from_hash(hashlib.sha512(_H2G_DOMAIN + t).digest()))) for t in tokens])


def seal_rows(
    outputs: bytes, pairs: Sequence[tuple[bytes, bytes]], tag_len: int, size: int
) -> list[tuple[bytes, ...]]:
    """Batch kernel: (tag, sealed label) of each (token, case reference) from its output hash
    (``outputs``: :func:`setup_outputs` of the pairs' tokens, in order)."""
    return _sealed_rows(outputs, pairs, tag_len, size)


def seal_rows_joined(outputs: bytes, pairs: Sequence[tuple[bytes, bytes]], tag_len: int, size: int) -> bytes:
    """Batch kernel: :func:`seal_rows`'s rows as one buffer of fixed-width ``tag ‖ label`` rows.

    One bytes object per batch instead of two per row: what a worker process sends back
    costs the parent a copy, not the unpickling of two million small objects.
    """
    if size and _labels.SEAL is not None and _labels.ROWS and len(outputs) == OUTPUT_BYTES * len(pairs):
        # in C, without the GIL: the rows in one buffer (the same bytes, label_backend checks it at load)
        return bytes(_labels.SEAL.seal(outputs, [t for t, _ in pairs], [r for _, r in pairs], size,
                                       os.urandom(NONCE_BYTES * len(pairs)), LABEL_AD_PREFIX, tag_len))
    return b"".join([tag + label for tag, label in _sealed_rows(outputs, pairs, tag_len, size)])


def sorted_setup(parts: list[bytes], tag_len: int, width: int) -> ResponderSetup:
    """The setup from batches of fixed-width ``tag ‖ label`` rows (``width`` bytes each): rows sorted.

    ``parts`` is emptied as it is read. With tags of one length, the rows as byte strings
    sort exactly as the (tag, label) pairs, and faster than tuples; the sorted rows are
    kept joined in :attr:`ResponderSetup.rows` for the setup cache.
    """
    if any(len(part) % width for part in parts):
        raise ValueError("setup rows are not of one fixed length")
    if _labels.ROWS and _labels.SEAL is not None:  # in C, in one buffer: no object per row
        unsorted = b"".join(parts)
        parts.clear()
        joined = _labels.SEAL.sort_rows(unsorted, width)
        del unsorted
    else:
        rows: list[bytes] = []
        while parts:
            part = parts.pop(0)
            rows.extend([part[i : i + width] for i in range(0, len(part), width)])
            del part
        rows.sort()
        joined = b"".join(rows)
        del rows
    tags = [joined[i : i + tag_len] for i in range(0, len(joined), width)]
    labels = [joined[i + tag_len : i + width] for i in range(0, len(joined), width)] if width > tag_len else (
        [b""] * len(tags))
    return ResponderSetup(tag_len, tags, labels, rows=joined)


def _sealed_rows(
    outputs: bytes, pairs: Sequence[tuple[bytes, bytes]], tag_len: int, size: int
) -> list[tuple[bytes, ...]]:
    """(tag, label) rows from each pair's output hash ``d`` (``outputs``: 64 bytes per pair): the tag
    is ``d[:tag_len]``, the label the case reference padded to ``size`` and sealed under ``d[32:]``
    (no label when ``size`` is 0)."""
    if len(outputs) != OUTPUT_BYTES * len(pairs):
        raise ValueError("one 64-byte output hash per pair is needed")
    ds = [outputs[i : i + OUTPUT_BYTES] for i in range(0, len(outputs), OUTPUT_BYTES)]
    if not size:
        return [(d[:tag_len], b"") for d in ds]
    if any(len(ref) + 2 > size for _, ref in pairs):
        raise ValueError("case reference longer than the label size")
    # One CSPRNG read for the whole batch: a fresh random nonce per label, as in _seal.
    nonces = os.urandom(NONCE_BYTES * len(pairs))
    if _labels.SEAL is not None:  # the whole batch in C, the same bytes (label_backend checks it at load)
        sealed = _labels.SEAL.seal(outputs, [t for t, _ in pairs], [r for _, r in pairs], size, nonces,
                                   LABEL_AD_PREFIX)
        width = NONCE_BYTES + size + 16
        return [(d[:tag_len], sealed[i : i + width]) for d, i in zip(ds, range(0, len(sealed), width), strict=True)]
    aead, sha256, prefix, zeros = ChaCha20Poly1305, hashlib.sha256, LABEL_AD_PREFIX, bytes(size)
    rows: list[tuple[bytes, ...]] = []
    append = rows.append
    for i, ((token, ref), d) in enumerate(zip(pairs, ds, strict=True)):
        nonce = nonces[NONCE_BYTES * i : NONCE_BYTES * (i + 1)]
        plain = len(ref).to_bytes(2, "big") + ref + zeros[len(ref) + 2 :]
        append((d[:tag_len], nonce + aead(d[32:]).encrypt(nonce, plain, prefix + sha256(token).digest())))
    return rows


def _setup_points(
    key: bytes, pairs: Sequence[tuple[bytes, bytes]], derive: bool = True
) -> Iterable[tuple[bytes, bytes]]:
    """(b·H(y), its output hash, or b"" without ``derive``) of each pair's token."""
    if _backend.FAST is not None:
        fast = _backend.FAST.blind_outputs(key, _H2G_DOMAIN, _OUT_DOMAIN, [t for t, _ in pairs])
        if isinstance(fast, tuple):
            return zip(fast[1], fast[0], strict=True)
    ys = (_smul(key, _from_hash(hashlib.sha512(_H2G_DOMAIN + t).digest())) for t, _ in pairs)
    return ((y, _derive(y) if derive else b"") for y in ys)


def responder_setup(
    key: bytes,
    entries: Sequence[tuple[bytes, bytes]],
    tag_len: int,
    with_labels: bool = True,
    workers: Workers | None = None,
    keep_points: bool = False,
    progress: Callable[[int, int], None] | None = None,
    points_only: bool = False,
    outputs: bytes | Callable[[], bytes] | None = None,
) -> ResponderSetup:
    """Build the setup for ``entries`` = (token, case reference) pairs.

    ``points_only`` (reveal = "cardinality"): the setup is the points b·H(y)
    themselves, sorted, as 32-byte "tags" without labels; the requester returns them
    re-blinded and the responder counts (see :func:`count_matches`).

    Entries with the same token are merged, their distinct case references joined
    by ``;``, so a token appears once and its multiplicity is not disclosed.
    ``workers`` (a :class:`matcher.parallel.Workers`) spreads the work; the
    result does not depend on it. With ``keep_points`` the setup also keeps
    b·H(y) -> y for :func:`check_hit_report`. ``progress(done, total)`` is called as
    batches complete. ``outputs``: :func:`setup_outputs` of every entry's token under
    ``key``, in the order of ``entries``, computed ahead (while the watchlist was read):
    only the labels are left to do (not with ``keep_points`` or ``points_only``); or a function
    that waits for them, called once the entries are merged (that work overlaps the wait).
    """
    pairs: Sequence[tuple[bytes, bytes]]
    if len({token for token, _ in entries}) == len(entries):  # every token once (the common case): as they are
        pairs, merged = entries, False
    else:
        # One reference per token is the common case: keep a set only where there are more
        # (a set per entry would double the memory of a large watchlist's setup).
        refs_by_token: dict[bytes, bytes | set[bytes]] = {}
        for token, ref in entries:
            seen = refs_by_token.get(token)
            if seen is None:
                refs_by_token[token] = ref
            elif isinstance(seen, set):
                seen.add(ref)
            elif seen != ref:
                refs_by_token[token] = {seen, ref}
        pairs = [(t, r if isinstance(r, bytes) else b";".join(sorted(r))) for t, r in refs_by_token.items()]
        merged = len(refs_by_token) < len(entries)
        del refs_by_token
    size = label_size(r for _, r in pairs) if with_labels and not points_only else 0
    if points_only:
        tag_len, keep_points = 0, False
    if outputs is not None and not keep_points and tag_len:
        if callable(outputs):
            outputs = outputs()
        if len(outputs) != OUTPUT_BYTES * len(entries):
            raise ValueError("outputs must hold one 64-byte output hash per entry")
        if merged:  # a token of several entries: the first one's output (all are equal), in pairs' order
            first: dict[bytes, int] = {}
            for i, (token, _) in enumerate(entries):
                first.setdefault(token, i)
            view = memoryview(outputs)
            outputs = b"".join([view[OUTPUT_BYTES * i : OUTPUT_BYTES * (i + 1)] for i in first.values()])
            del first, view
        width = tag_len + (NONCE_BYTES + size + 16 if size else 0)
        if workers is None or len(pairs) < 4096:
            parts = [seal_rows_joined(outputs, pairs, tag_len, size)]
        else:
            parts = _split_seal(workers, outputs, pairs, tag_len, size, progress)
        del outputs, pairs
        return sorted_setup(parts, tag_len, width)
    if workers is None or len(pairs) < 4096:
        rows = setup_rows(key, pairs, tag_len, size, keep_points)
    else:
        rows = _split_setup(workers, key, pairs, tag_len, size, keep_points, progress)
    kept = {row[2]: token for row, (token, _) in zip(rows, pairs, strict=True)} if keep_points else None
    rows.sort()  # by tag (tuples compare their tags first; no key function for a million rows)
    return ResponderSetup(tag_len or POINT_BYTES, [r[0] for r in rows], [r[1] for r in rows], kept)


def _split_setup(
    workers: Workers,
    key: bytes,
    pairs: Sequence[tuple[bytes, bytes]],
    tag_len: int,
    size: int,
    keep: bool,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[bytes, ...]]:
    """The setup's rows computed in batches on ``workers``, in order."""
    step = 2048
    out: list[tuple[bytes, ...]] = []
    batches = ((key, pairs[i : i + step], tag_len, size, keep) for i in range(0, len(pairs), step))
    for part in workers.map_ordered(setup_rows, batches):
        out.extend(part)
        if progress:
            progress(len(out), len(pairs))
    return out


def _split_seal(
    workers: Workers,
    outputs: bytes,
    pairs: Sequence[tuple[bytes, bytes]],
    tag_len: int,
    size: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[bytes]:
    """The setup's rows from output hashes computed ahead, sealed in batches on ``workers``, in order:
    one buffer of fixed-width rows per batch (:func:`seal_rows_joined`)."""
    step = 8192
    out: list[bytes] = []
    view = memoryview(outputs)
    batches = (
        (bytes(view[OUTPUT_BYTES * i : OUTPUT_BYTES * (i + step)]), pairs[i : i + step], tag_len, size)
        for i in range(0, len(pairs), step)
    )
    done = 0
    for part in workers.map_ordered(seal_rows_joined, batches):
        out.append(part)
        done = min(len(pairs), done + step)
        if progress:
            progress(done, len(pairs))
    return out
