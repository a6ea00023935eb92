"""The in-order chunk rule, written once for both halves of every protocol.

A stream of elements (the requester's blinded elements, the responder's evaluated
replies, the re-blinded setup) travels in chunks, each carrying the index of its
first element: the first chunk has offset 0, each next one the previous offset plus
its element count, and the total never exceeds what was announced (docs/PROTOCOL.md
§5.1). :class:`InOrder` holds the count so far and refuses any chunk that breaks the
rule with :class:`matcher.errors.ProtocolViolation` (INVALID_ARGUMENT at the edge).

Pure: imports nothing but the errors.
"""

from __future__ import annotations

from matcher.errors import ProtocolViolation


class InOrder:
    """Elements received so far of one stream of chunks, and the rule each next chunk must meet.

    ``total``: the announced number of elements. ``max_chunk``: the most elements one
    chunk may carry (None: any number, empty chunks allowed; the responder's replies
    are bounded by their request). ``what``/``announced`` name the stream and where its
    size was announced, for error messages that name the cause.
    """

    def __init__(self, total: int, max_chunk: int | None = None, *, what: str = "chunk",
                 announced: str = "Hello") -> None:
        self.total = total
        self.max_chunk = max_chunk
        self.what = what
        self.announced = announced
        #: elements taken so far: the offset the next chunk must carry
        self.done = 0

    @property
    def complete(self) -> bool:
        """Whether every announced element has arrived."""
        return self.done == self.total

    def check(self, offset: int, n: int) -> None:
        """Refuse a chunk of ``n`` elements at ``offset`` that breaks the rule (without taking it)."""
        if offset != self.done:
            raise ProtocolViolation(f"{self.what} offset {offset} out of order; expected {self.done}")
        if self.max_chunk is not None and (n == 0 or n > self.max_chunk):
            raise ProtocolViolation(f"{self.what} of {n} elements; allowed 1 to {self.max_chunk}")
        if self.done + n > self.total:
            raise ProtocolViolation(f"more elements than announced in {self.announced} ({self.total})")

    def take(self, offset: int, n: int) -> int:
        """Check a chunk of ``n`` elements at ``offset`` and count it; returns its offset."""
        self.check(offset, n)
        self.done += n
        return offset
