"""Responder half of ``keyed-hash``: look each received tag up in the own index, answer per element."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from matcher.errors import UnsupportedProtocol
from matcher.protocols import keyed_hash
from matcher.sessions.base import ResponderSession
from matcher.v1 import matcher_pb2 as pb

if TYPE_CHECKING:
    from matcher.sessions.context import ResponderContext

#: Upper bound on the bytes of one reply message.
REPLY_CHUNK_BYTES = 1 << 20


class KeyedHashResponderSession(ResponderSession):
    """HMAC tags, responder side. The responder always knows its hits here (see the protocol module).

    ``requester``/``both``: one reply per element, the case reference(s) of a hit or
    empty bytes, in order. ``cardinality``: no per-element replies, only the count in
    the Summary. ``both``: the own hit records also go to the responder's hits file.
    """

    protocol = "keyed-hash"

    def __init__(self, state: ResponderContext, hello: pb.Hello) -> None:
        super().__init__(state, hello)
        index: keyed_hash.ResponderIndex | None = state.keyed_hash_index()
        if index is None:
            raise UnsupportedProtocol("keyed-hash is not enabled on this responder")
        self.index: keyed_hash.ResponderIndex = index
        self.reveal = state.settings.reveal
        self.hit_count: int = 0
        self._hit_tokens: list[bytes] = []

    def accepted(self, accepted: pb.Accepted) -> None:
        accepted.tag_length = keyed_hash.TAG_BYTES

    def on_elements(self, elements: Sequence[bytes], offset: int) -> Iterator[pb.MatchResponse]:
        found = keyed_hash.lookup(self.index, elements, offset)
        for t, ref in zip(elements, found, strict=True):
            if ref is not None:
                self.hit_count += 1
                if self.reveal == "both":
                    self._hit_tokens.append(self.index.tokens[bytes(t)])
        if self.reveal == "cardinality":
            return
        start, size = 0, 0
        for i, ref in enumerate(found):
            size += len(ref or b"") + 4
            if size > REPLY_CHUNK_BYTES:
                yield pb.MatchResponse(evaluated=pb.ElementChunk(
                    offset=offset + start, elements=[r or b"" for r in found[start:i]]))
                start, size = i, len(ref or b"") + 4
        yield pb.MatchResponse(evaluated=pb.ElementChunk(
            offset=offset + start, elements=[r or b"" for r in found[start:]]))

    def on_finish(self) -> Iterator[pb.MatchResponse]:
        if self.reveal == "both":
            self.record_own_hits(self._hit_tokens)
        return iter(())

    def summary_hit_count(self) -> int:
        return self.hit_count or 0
