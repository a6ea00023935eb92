"""Requester half of ``ecdh``: send a·H(x), index the setup, unblind replies, open labels."""

from __future__ import annotations

from collections.abc import Iterator

from matcher.errors import ProtocolViolation
from matcher.protocols import ecdh
from matcher.v1 import matcher_pb2 as pb
from clients.sessions.base import RequesterSession


class EcdhRequesterSession(RequesterSession):
    """Diffie-Hellman PSI, requester side, under a fresh session key ``a``."""

    protocol = "ecdh"

    def __init__(self, records, keyspec, reveal) -> None:
        super().__init__(records, keyspec, reveal)
        self._key = ecdh.new_key()
        self._inverse = ecdh.invert_key(self._key)
        self._index: ecdh.SetupIndex | None = None
        self._done = 0
        self._hit_points: list[bytes] = []  # b·H(x) of each hit token (reveal = "both")

    @property
    def progress_total(self) -> int:
        return len(self.tokens)

    def chunks(self, chunk_elements: int) -> Iterator[list[bytes]]:
        for off in range(0, len(self.tokens), chunk_elements):
            yield ecdh.blind_tokens(self._key, self.tokens[off : off + chunk_elements])

    def on_accepted(self, accepted: pb.Accepted) -> None:
        super().on_accepted(accepted)
        self._index = ecdh.SetupIndex(accepted.tag_length)

    def on_setup(self, chunk: pb.SetupChunk) -> None:
        assert self._index is not None and self.accepted is not None
        if self._done:
            raise ProtocolViolation("setup after evaluated elements")
        if self.reveal == "requester" and len(chunk.labels) != len(chunk.tags):
            raise ProtocolViolation("setup chunk with tags and labels of different counts")
        self._index.add(list(chunk.tags), list(chunk.labels))
        if len(self._index) > self.accepted.setup_size:
            raise ProtocolViolation("more setup entries than announced")

    def on_evaluated(self, chunk: pb.ElementChunk) -> int:
        assert self._index is not None
        if chunk.offset != self._done or self._done + len(chunk.elements) > len(self.tokens):
            raise ProtocolViolation("evaluated elements out of order or too many")
        points = ecdh.unblind(self._inverse, list(chunk.elements), offset=self._done)
        found = self._index.lookup(points)
        for j, ref in enumerate(found):
            if ref is not None:
                # In cardinality mode the replies are shuffled: only the count means anything.
                self.add_hit(self._done + j, ref)
                if self.reveal == "both":
                    self._hit_points.append(points[j])
        self._done += len(chunk.elements)
        return len(chunk.elements)

    @property
    def wants_report(self) -> bool:
        return self.reveal == "both"

    @property
    def evaluation_complete(self) -> bool:
        return self.accepted is not None and self._done == len(self.tokens)

    def hit_report(self) -> pb.HitReport:
        """b·H(x) of each hit: lets the responder check each reported hit is one of its own entries."""
        return pb.HitReport(elements=self._hit_points)

    def on_summary(self, summary: pb.Summary) -> None:
        if self._done != len(self.tokens):
            raise ProtocolViolation(f"session ended after {self._done} of {len(self.tokens)} elements")
        if self.reveal == "both" and summary.hit_count != len(self._hit_points):
            raise ProtocolViolation(
                f"the responder confirmed {summary.hit_count} of the {len(self._hit_points)} reported hits"
            )
