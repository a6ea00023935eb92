"""Limits both halves of a session agree on, written once."""

from __future__ import annotations

from matcher.protocols import ecdh

#: Version of the session rules both sides must speak (Policy.wire_version, Hello.wire_version).
#: 2: ecdh labels bound to their tokens, cardinality counted by the responder, hit reports
#: with a proof of the same session. Older peers are refused before any element moves.
WIRE_VERSION = 2


def message_limit(max_chunk_elements: int) -> int:
    """Largest gRPC message either side accepts: one full chunk of points plus framing."""
    return max(2 << 20, max_chunk_elements * (ecdh.POINT_BYTES + 8) + 4096)
