"""Diffie-Hellman PSI in the prime-order group ristretto255 (DESIGN §3, protocol ``ecdh``).

Notation: H maps a token to the group, ``H(t) = from_hash(SHA-512("matcher/v1/h2g" ‖ 0 ‖ t))``
(libsodium's Elligator-based hash-to-group over 64 uniform bytes). The responder holds
an epoch key ``b``, the requester a fresh session key ``a`` (both uniform non-zero
scalars from libsodium's CSPRNG).

* Responder setup: for each own token y, ``Y = b·H(y)`` and ``D = SHA-512("matcher/v1/out" ‖ 0 ‖ Y)``;
  the *tag* is the first ``L`` bytes of D and the *label key* the last 32 bytes. The
  label is the case reference, padded to a common length and sealed with
  ChaCha20-Poly1305 under the label key (each key seals exactly one message, so a
  fixed nonce is safe). Entries are sorted by tag, which reveals no order of the
  watchlist.
* Session: the requester sends ``X = a·H(x)``; the responder returns ``b·X``; the
  requester computes ``a⁻¹·(b·a·H(x)) = b·H(x)``, derives its tag and label key, and
  a hit is a tag found in the setup whose label opens under the key. Under the
  one-more-DH assumption the requester learns nothing about ``b·H(y)`` for y it does
  not hold, and the responder sees only uniformly random group elements.

Every point that arrives from the other side goes through :func:`check_point`:
it must be the 32-byte canonical encoding of a ristretto255 element other than the
identity (the identity would let a peer probe for a zero scalar and carries no token).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import rbcl
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from matcher.errors import InvalidElement

POINT_BYTES = 32
SCALAR_BYTES = 32
IDENTITY = bytes(POINT_BYTES)
FALSE_HIT_BITS = 40
LABEL_AAD = b"matcher/v1/label"
_NONCE = bytes(12)
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


def hash_to_group(token: bytes) -> bytes:
    """H(token): a ristretto255 point whose discrete log nobody knows."""
    return _from_hash(hashlib.sha512(_H2G_DOMAIN + token).digest())


def check_point(point: bytes, index: int = 0) -> None:
    """Refuse anything but a canonical, non-identity ristretto255 encoding."""
    if not isinstance(point, bytes | bytearray) or len(point) != POINT_BYTES:
        raise InvalidElement(f"element {index} is not a 32-byte ristretto255 point")
    if point == IDENTITY:
        raise InvalidElement(f"element {index} is the identity point")
    if not _is_valid(bytes(point)):
        raise InvalidElement(f"element {index} is not a valid ristretto255 point encoding")


def blind_tokens(key: bytes, tokens: Sequence[bytes]) -> list[bytes]:
    """``key·H(t)`` for each token, in order: the requester's message (or Y for setup)."""
    return [_smul(key, _from_hash(hashlib.sha512(_H2G_DOMAIN + t).digest())) for t in tokens]


def evaluate(key: bytes, points: Sequence[bytes], offset: int = 0) -> list[bytes]:
    """Responder's reply ``key·X`` for each received point X, after checking every X.

    ``offset`` is the index of ``points[0]`` in the whole request, so an error names
    the element's position in the session.
    """
    for i, p in enumerate(points):
        check_point(p, offset + i)
    return [_smul(key, p) for p in points]


def unblind(inverse_key: bytes, points: Sequence[bytes], offset: int = 0) -> list[bytes]:
    """Requester's ``a⁻¹·(b·a·H(x)) = b·H(x)`` for each returned point, after checking it."""
    for i, p in enumerate(points):
        check_point(p, offset + i)
    return [_smul(inverse_key, p) for p in points]


def tag_length(setup_size: int, request_size: int) -> int:
    """Tag bytes such that a false tag match over a session stays under 2^-40.

    A requester element matches an unrelated setup tag with chance 2^-8L; over
    ``setup_size · request_size`` pairs the union bound needs
    ``8L ≥ 40 + log2(setup_size · request_size)``.
    """
    pairs = max(1, setup_size) * max(1, request_size)
    bits = FALSE_HIT_BITS + math.ceil(math.log2(pairs)) if pairs > 1 else FALSE_HIT_BITS
    return min(32, max(8, math.ceil(bits / 8)))


def _derive(point: bytes) -> bytes:
    return hashlib.sha512(_OUT_DOMAIN + point).digest()


def derive_tags(points: Iterable[bytes], length: int) -> list[bytes]:
    """The tag (first ``length`` bytes of the output hash) of each point b·H(t)."""
    return [_derive(p)[:length] for p in points]


def label_size(case_refs: Iterable[bytes]) -> int:
    """Common padded plaintext size of the labels: hides each case reference's length."""
    longest = max((len(c) for c in case_refs), default=0)
    return _LABEL_BLOCK * (1 + (longest + 2) // _LABEL_BLOCK)


def seal_label(point: bytes, case_ref: bytes, size: int) -> bytes:
    """Encrypt a case reference under the label key derived from ``point`` = b·H(y)."""
    if len(case_ref) + 2 > size:
        raise ValueError("case reference longer than the label size")
    plain = len(case_ref).to_bytes(2, "big") + case_ref
    plain += bytes(size - len(plain))
    return ChaCha20Poly1305(_derive(point)[32:]).encrypt(_NONCE, plain, LABEL_AAD)


def open_label(point: bytes, label: bytes) -> bytes | None:
    """The case reference sealed under ``point``'s label key, or None if it does not open."""
    try:
        plain = ChaCha20Poly1305(_derive(point)[32:]).decrypt(_NONCE, label, LABEL_AAD)
    except InvalidTag:
        return None
    n = int.from_bytes(plain[:2], "big")
    return plain[2 : 2 + n] if n + 2 <= len(plain) else None


@dataclass
class ResponderSetup:
    """The responder's per-epoch setup: sorted tags and their sealed labels (may be empty)."""

    tag_length: int
    tags: list[bytes]
    labels: list[bytes]
    #: reveal = "both" only: b·H(y) -> token y, to check a requester's report of its hits.
    #: Never sent; held only by the responder.
    points: dict[bytes, bytes] | None = None

    def __len__(self) -> int:
        return len(self.tags)


def responder_setup(
    key: bytes,
    entries: Sequence[tuple[bytes, bytes]],
    tag_len: int,
    with_labels: bool = True,
    keep_points: bool = False,
) -> ResponderSetup:
    """Build the setup for ``entries`` = (token, case reference) pairs.

    Entries with the same token are merged, their distinct case references joined
    by ``;``, so a token appears once and its multiplicity is not disclosed. With
    ``keep_points`` the setup also keeps b·H(y) -> y for :func:`check_hit_report`.
    """
    refs_by_token: dict[bytes, set[bytes]] = {}
    for token, ref in entries:
        refs_by_token.setdefault(token, set()).add(ref)
    tokens = list(refs_by_token)
    points = blind_tokens(key, tokens)
    merged = [b";".join(sorted(refs_by_token[t])) for t in tokens]
    size = label_size(merged)
    rows = []
    for p, ref in zip(points, merged):
        d = _derive(p)
        label = seal_label(p, ref, size) if with_labels else b""
        rows.append((d[:tag_len], label))
    rows.sort(key=lambda r: r[0])
    kept = dict(zip(points, tokens)) if keep_points else None
    return ResponderSetup(tag_len, [r[0] for r in rows], [r[1] for r in rows], kept)


def check_hit_report(setup: ResponderSetup, reported: Sequence[bytes], limit: int) -> list[bytes]:
    """Responder, reveal = "both": the own tokens a requester's hit report names, after checking it.

    The requester reports b·H(x) for each of its hits. A point is accepted only if
    it equals b·H(y) for one of the responder's own entries y. The requester can only
    know b·H(y) by having asked the responder to evaluate H(y) (one-more-DH), i.e. by
    holding or guessing y's token, so it cannot make the responder believe it holds a
    person it never asked about. It can withhold hits: that is not detectable here.
    At most ``limit`` (the session's request size) distinct points are accepted.
    """
    if setup.points is None:
        raise ValueError("this setup was built without keep_points")
    if len(reported) > limit:
        raise InvalidElement(f"hit report of {len(reported)} elements, more than the {limit} asked")
    seen: set[bytes] = set()
    tokens: list[bytes] = []
    for i, p in enumerate(reported):
        check_point(p, i)
        if p in seen:
            raise InvalidElement(f"reported hit {i} is repeated")
        seen.add(p)
        token = setup.points.get(bytes(p))
        if token is None:
            raise InvalidElement(f"reported hit {i} is not one of this responder's entries")
        tokens.append(token)
    return tokens


@dataclass
class SetupIndex:
    """Requester-side lookup table over a received setup: tag → candidate labels."""

    tag_length: int
    labels_by_tag: dict[bytes, list[bytes]] = field(default_factory=dict)

    def add(self, tags: Sequence[bytes], labels: Sequence[bytes]) -> None:
        """Add one received chunk of the setup (labels empty in cardinality mode)."""
        for i, tag in enumerate(tags):
            if len(tag) != self.tag_length:
                raise InvalidElement(f"setup tag {i} has {len(tag)} bytes, expected {self.tag_length}")
            self.labels_by_tag.setdefault(tag, []).append(labels[i] if labels else b"")

    def __len__(self) -> int:
        return sum(len(v) for v in self.labels_by_tag.values())

    def lookup(self, unblinded: Sequence[bytes]) -> list[bytes | None]:
        """For each b·H(x): its case reference(s) if x is in the responder's set, else None.

        With labels, a hit is confirmed by the label opening (a tag collision cannot
        produce a false hit); without labels (cardinality mode) a tag match is a hit
        and the value is ``b""``.
        """
        out: list[bytes | None] = []
        for p in unblinded:
            candidates = self.labels_by_tag.get(_derive(p)[: self.tag_length])
            found: bytes | None = None
            if candidates is not None:
                for label in candidates:
                    if not label:
                        found = b""
                        break
                    ref = open_label(p, label)
                    if ref is not None:
                        found = ref
                        break
            out.append(found)
        return out
