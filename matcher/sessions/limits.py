"""Limits both halves of a session agree on, written once."""

from __future__ import annotations

from matcher.protocols import ecdh


def message_limit(max_chunk_elements: int) -> int:
    """Largest gRPC message either side accepts: one full chunk of points plus framing."""
    return max(2 << 20, max_chunk_elements * (ecdh.POINT_BYTES + 8) + 4096)
