"""The interface every protocol's responder half implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from matcher.errors import ProtocolViolation
from matcher.v1 import matcher_pb2 as pb

if TYPE_CHECKING:
    from matcher.sessions.context import ResponderContext


class ResponderSession(ABC):
    """One protocol's responder half for one session (lives as long as the stream).

    The session machine (matcher.sessions.responder) calls, in order: :meth:`accepted`
    once, :meth:`opening` once, :meth:`on_elements` for every chunk (already checked for
    order, size and repeats), :meth:`on_finish` once all announced elements have
    arrived, then :meth:`on_tail` while :attr:`expects_more`. Raise a
    :class:`matcher.errors.MatcherError` to end the session with its status code.
    """

    protocol: ClassVar[str]
    #: the service refuses an element equal to an earlier one of the session (INVALID_ARGUMENT);
    #: a protocol whose elements may legitimately repeat sets this to False
    refuse_repeats: ClassVar[bool] = True

    def __init__(self, state: ResponderContext, hello: pb.Hello) -> None:
        self.state = state
        self.hello = hello
        #: hits the responder itself knows of (None when the protocol hides them from it)
        self.hit_count: int | None = None
        #: set by the service: the session's id and the peer's configured name
        self.session_id = ""
        self.peer = ""

    @classmethod
    def budget_cost(cls, state: ResponderContext, hello: pb.Hello) -> int:
        """What a session announced by ``hello`` is charged to the peer's daily budget.

        Known from the Hello alone, so it is charged before the responder does any
        work. By default one unit per element: the responder's work (one evaluation,
        one lookup) and the guesses a requester can test both grow with it.
        """
        return hello.request_size

    @property
    def expects_more(self) -> bool:
        """Whether another requester message must come after Finish (and after the last
        :meth:`on_tail`) before the Summary: a HitReport (reveal = "both"), the re-blinded
        setup (ecdh, reveal = "cardinality")."""
        return False

    #: what :meth:`on_tail` takes, for error messages
    tail_name: str = "no message"

    def on_tail(self, request: pb.MatchRequest) -> Iterator[pb.MatchResponse]:
        """One requester message after Finish (see :meth:`expects_more`)."""
        raise ProtocolViolation(f"{self.protocol} takes no message after Finish")

    def summary_hit_count(self) -> int:
        """The hit count to put in the Summary: only where the requester is meant to learn it from us."""
        return 0

    def record_own_hits(self, tokens: Sequence[bytes]) -> int:
        """reveal = "both": hand the tokens of the own records hit to the responder's hits recorder.

        The server writes one row per (own record, match key) to its hits file (see
        matcher.server.hits); returns the number of distinct own records hit.
        """
        return self.state.record_hits(self.session_id, self.peer, tokens)

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
