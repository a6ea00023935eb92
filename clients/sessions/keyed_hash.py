"""Requester half of ``keyed-hash``: send HMAC tags, read the per-element answers."""

from __future__ import annotations

from collections.abc import Iterator

from clients.sessions.base import RequesterSession
from matcher.errors import ConfigError, ProtocolViolation
from matcher.protocols import keyed_hash
from matcher.v1 import matcher_pb2 as pb


class KeyedHashRequesterSession(RequesterSession):
    """HMAC tags under the shared ``secret`` (pass ``secret=`` to MatchClient.match)."""

    protocol = "keyed-hash"

    def __init__(self, records, keyspec, reveal, workers=None, *, secret: bytes | None = None) -> None:
        super().__init__(records, keyspec, reveal, workers)
        if not secret or len(secret) < keyed_hash.MIN_SECRET_BYTES:
            raise ConfigError(
                f"keyed-hash needs the shared secret (at least {keyed_hash.MIN_SECRET_BYTES} bytes): "
                "set [keyed_hash] secret_file or secret_env"
            )
        self._secret = secret

    @property
    def progress_total(self) -> int:
        return 0 if self.reveal == "cardinality" else len(self.tokens)

    def chunks(self, chunk_elements: int) -> Iterator[list[bytes]]:
        for off in range(0, len(self.tokens), chunk_elements):
            yield keyed_hash.tags(self._secret, self.tokens[off : off + chunk_elements])

    def on_evaluated(self, chunk: pb.ElementChunk) -> int:
        if self.reveal == "cardinality":
            raise ProtocolViolation("per-element answers in cardinality mode")
        order = self.replies_in_order(len(self.tokens))
        off = order.take(chunk.offset, len(chunk.elements))
        for j, ref in enumerate(chunk.elements):
            if ref:
                self.add_hit(off + j, ref)
        return len(chunk.elements)

    def on_summary(self, summary: pb.Summary) -> None:
        if self.reveal == "cardinality":
            if summary.hit_count > len(self.tokens):
                raise ProtocolViolation("more hits than tokens sent")
            self.hit_tokens = summary.hit_count
            return
        if self._done != len(self.tokens):
            raise ProtocolViolation(f"session ended after {self._done} of {len(self.tokens)} answers")
        if summary.hit_count != self.hit_tokens:
            raise ProtocolViolation(f"the responder counted {summary.hit_count} hits, the answers {self.hit_tokens}")
