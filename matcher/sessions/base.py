"""The interface every protocol's responder half implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from matcher.v1 import matcher_pb2 as pb

if TYPE_CHECKING:
    from matcher.service import ResponderState


class ResponderSession(ABC):
    """One protocol's responder half for one session (lives as long as the stream).

    The service calls, in order: :meth:`accepted` once, :meth:`opening` once,
    :meth:`on_elements` for every chunk (already checked for order and size), and
    :meth:`on_finish` once all announced elements have arrived. Raise a
    :class:`matcher.errors.MatcherError` to end the session with its status code.
    """

    protocol: ClassVar[str]

    def __init__(self, state: ResponderState, hello: pb.Hello) -> None:
        self.state = state
        self.hello = hello
        #: hits the responder itself knows of (None when the protocol hides them from it)
        self.hit_count: int | None = None

    @abstractmethod
    def accepted(self, accepted: pb.Accepted) -> None:
        """Fill the protocol's fields of the Accepted message (epoch, setup size, ...)."""

    def opening(self) -> Iterator[pb.MatchResponse]:
        """Messages sent right after Accepted, before any element is read (e.g. a setup)."""
        return iter(())

    @abstractmethod
    def on_elements(self, elements: Sequence[bytes], offset: int) -> Iterator[pb.MatchResponse]:
        """Replies to one chunk of elements whose first element has index ``offset``."""

    def on_finish(self) -> Iterator[pb.MatchResponse]:
        """Messages sent after the last chunk, before the Summary."""
        return iter(())
