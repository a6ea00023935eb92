"""The ecdh reveal modes' own checks: hit proofs (``reveal = "both"``) and counting (``"cardinality"``).

Hazmat, like :mod:`matcher.protocols.ecdh` whose points and keys it works on.

* ``both``: the requester reports its hits back with the index of each in the session
  and a batched Schnorr proof that every reported point is its session key times the
  responder's reply at that index (one proof for all, bound to the session by its id);
  the responder accepts only its own entries' points evaluated in this session.
* ``cardinality``: the responder counts, comparing ``b·(a·H(x))`` with ``a·(b·H(y))``,
  so no evaluated point of the requester's ever goes back to it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

import rbcl

from matcher.errors import InvalidElement
from matcher.protocols.ecdh import IDENTITY, POINT_BYTES, SCALAR_BYTES, ResponderSetup, _smul, check_point, new_key

_PROOF_SEED = b"matcher/v2/hit-proof/seed\x00"
_PROOF_CHALLENGE = b"matcher/v2/hit-proof/challenge\x00"
PROOF_BYTES = 2 * SCALAR_BYTES


def _scalar(data: bytes) -> bytes:
    return rbcl.crypto_core_ristretto255_scalar_reduce(hashlib.sha512(data).digest())


def _combine(pairs: Sequence[tuple[bytes, bytes]], context: bytes) -> tuple[bytes, bytes, bytes]:
    """(seed, M, Z): M = Σ d_k·P_k and Z = Σ d_k·Z_k with coefficients d_k fixed by every pair."""
    seed = hashlib.sha512(
        _PROOF_SEED + len(context).to_bytes(2, "big") + context + b"".join(p + z for p, z in pairs)
    ).digest()
    m = z = IDENTITY
    for k, (p, zk) in enumerate(pairs):
        d = _scalar(seed + k.to_bytes(8, "big"))
        m = rbcl.crypto_core_ristretto255_add(m, _smul0(d, p))
        z = rbcl.crypto_core_ristretto255_add(z, _smul0(d, zk))
    return seed, m, z


_smul0 = rbcl.crypto_scalarmult_ristretto255_allow_scalar_zero


def hit_proof_context(session_id: str) -> bytes:
    """What a hit report's proof is bound to: the session (its id, as Accepted carries it)."""
    return b"matcher/v2/session\x00" + session_id.encode("ascii", "replace")


def prove_hits(key: bytes, pairs: Sequence[tuple[bytes, bytes]], context: bytes) -> bytes:
    """Requester, reveal = "both": proof that one scalar ``key`` = a gives ``Z_k = a·P_k`` for every pair.

    ``P_k`` = b·H(x) is a hit's unblinded point and ``Z_k`` = b·a·H(x) the responder's
    reply to that element *in this session*; ``context`` binds the proof to the
    session (its id). A batched Schnorr proof of knowledge of ``log_M Z`` with
    ``M = Σ d_k·P_k``, ``Z = Σ d_k·Z_k`` and coefficients d_k hashed from all pairs
    (as the batched DLEQ of RFC 9497 §2.2): e ‖ s, 64 bytes. Empty without pairs.
    """
    if not pairs:
        return b""
    seed, m, z = _combine(pairs, context)
    r = new_key()
    t = _smul(r, m)
    e = _scalar(_PROOF_CHALLENGE + seed + m + z + t)
    s = rbcl.crypto_core_ristretto255_scalar_sub(r, rbcl.crypto_core_ristretto255_scalar_mul(e, key))
    return e + s


def verify_hits(pairs: Sequence[tuple[bytes, bytes]], proof: bytes, context: bytes) -> bool:
    """Responder: whether ``proof`` shows one scalar a with ``Z_k = a·P_k`` for every pair (see :func:`prove_hits`)."""
    if not pairs:
        return proof == b""
    if len(proof) != PROOF_BYTES:
        return False
    e, s = proof[:SCALAR_BYTES], proof[SCALAR_BYTES:]
    # both scalars must be canonical (reduced) encodings: no second encoding of a proof
    if rbcl.crypto_core_ristretto255_scalar_reduce(e + bytes(32)) != e:
        return False
    if rbcl.crypto_core_ristretto255_scalar_reduce(s + bytes(32)) != s:
        return False
    seed, m, z = _combine(pairs, context)
    if m == IDENTITY or z == IDENTITY:
        return False
    t = rbcl.crypto_core_ristretto255_add(_smul0(s, m), _smul0(e, z))
    return secrets.compare_digest(_scalar(_PROOF_CHALLENGE + seed + m + z + t), e)


def check_hit_report(
    setup: ResponderSetup,
    reported: Sequence[bytes],
    limit: int,
    indices: Sequence[int] = (),
    proof: bytes = b"",
    replies: Sequence[bytes] = (),
    context: bytes = b"",
) -> list[bytes]:
    """Responder, reveal = "both": the own tokens a requester's hit report names, after checking it.

    The requester reports P_k = b·H(x) of each of its hits, the index i_k of that
    element in this session, and a proof (:func:`prove_hits`) that one scalar a gives
    ``replies[i_k] = a·P_k`` for every k, where ``replies`` are this session's own
    replies b·X_i. So each reported point was evaluated in this same session
    (X_{i_k} = a·H(x)): a point learnt in an earlier session cannot be reported
    again. A point is accepted only if it equals b·H(y) for one of the responder's own
    entries y; the requester can only know b·H(y) by having asked the responder to
    evaluate H(y) (one-more-DH). It can withhold hits: that is not detectable here.
    At most ``limit`` (the session's request size) distinct points are accepted.
    """
    if setup.points is None:
        raise ValueError("this setup was built without keep_points")
    if len(reported) > limit:
        raise InvalidElement(f"hit report of {len(reported)} elements, more than the {limit} asked")
    if len(indices) != len(reported):
        raise InvalidElement(f"hit report of {len(reported)} points with {len(indices)} indices")
    seen: set[bytes] = set()
    seen_index: set[int] = set()
    tokens: list[bytes] = []
    for i, (p, at) in enumerate(zip(reported, indices, strict=True)):
        check_point(p, i)
        if p in seen or at in seen_index:
            raise InvalidElement(f"reported hit {i} is repeated")
        if at >= len(replies):
            raise InvalidElement(f"reported hit {i} names an element this session did not send")
        seen.add(p)
        seen_index.add(at)
        token = setup.points.get(bytes(p))
        if token is None:
            raise InvalidElement(f"reported hit {i} is not one of this responder's entries")
        tokens.append(token)
    pairs = [(bytes(p), replies[at]) for p, at in zip(reported, indices, strict=True)]
    if not verify_hits(pairs, bytes(proof), context):
        raise InvalidElement(
            "the hit report's proof does not verify: its points were not evaluated in this session"
        )
    return tokens


def count_matches(evaluated: set[bytes], returned: Sequence[bytes], offset: int = 0) -> int:
    """Responder, reveal = "cardinality": how many of the returned points a·b·H(y) are in ``evaluated``.

    ``evaluated`` holds this session's b·(a·H(x)); every match is removed from it, so a
    repeated point is not counted twice and the total never exceeds the request size.
    A returned point is only compared, never used in arithmetic, so a non-canonical or
    invalid one simply does not match (only its length is checked).
    """
    count = 0
    for j, p in enumerate(returned):
        if len(p) != POINT_BYTES:
            raise InvalidElement(f"returned element {offset + j} is not a 32-byte ristretto255 point")
        if p in evaluated:
            evaluated.discard(p)
            count += 1
    return count
