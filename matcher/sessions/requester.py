"""The requester's session machine: what it sends and in which order, and which answer may come when.

Transport-free like :mod:`matcher.sessions.responder`: the Python client
(clients.match_client) streams :meth:`RequesterMachine.requests` and hands every
response to :meth:`RequesterMachine.receive`; a test (or another transport) can do
the same in one process. The protocol's requester half (clients.sessions) does the
math behind the small :class:`RequesterHalf` interface::

    machine = RequesterMachine(half, hello, chunk_elements)
    requests = machine.requests()              # Hello, the chunks, Finish
    for response in responses:
        machine.receive(response)              # Accepted first, the Summary last
        if (tail := machine.take_tail()) is not None:
            ...                                # send the messages after Finish
        if machine.done:
            break
    else:
        machine.stream_ended()                 # ProtocolViolation: no Summary
    result = machine.result()
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from matcher.errors import ProtocolViolation
from matcher.v1 import matcher_pb2 as pb

R_co = TypeVar("R_co", covariant=True)


class RequesterHalf(Protocol[R_co]):
    """One protocol's requester half, as the machine drives it (clients.sessions.base.RequesterSession)."""

    @property
    def request_size(self) -> int: ...
    @property
    def wants_tail(self) -> bool: ...
    @property
    def tail_ready(self) -> bool: ...
    def fill_hello(self, hello: pb.Hello) -> None: ...
    def chunks(self, chunk_elements: int) -> Iterator[list[bytes]]: ...
    def tail(self, chunk_elements: int) -> list[pb.MatchRequest]: ...
    def on_accepted(self, accepted: pb.Accepted) -> None: ...
    def on_setup(self, chunk: pb.SetupChunk) -> None: ...
    def on_evaluated(self, chunk: pb.ElementChunk) -> int: ...
    def on_summary(self, summary: pb.Summary) -> None: ...
    def result(self) -> R_co: ...


class RequesterMachine(Generic[R_co]):
    """One session, requester side.

    ``hello`` carries the session's protocol, reveal mode, key spec fingerprint, wire
    version and conformance digest; the machine adds the request size and the half's
    parameters. ``chunk_elements`` is the chunk size agreed with the policy.
    Phases: ``accepted`` (awaiting Accepted) → ``running`` → ``done`` (Summary received).
    """

    def __init__(self, half: RequesterHalf[R_co], hello: pb.Hello, chunk_elements: int) -> None:
        self.half = half
        self.chunk_elements = chunk_elements
        self._hello = pb.Hello()
        self._hello.CopyFrom(hello)
        self._hello.request_size = half.request_size
        half.fill_hello(self._hello)
        self.phase = "accepted"
        #: elements the responder's evaluated chunks completed so far (for progress)
        self.matched = 0
        self._tail_handed = False

    # -- what goes out ----------------------------------------------------------------
    def hello(self) -> pb.MatchRequest:
        """The first request."""
        return pb.MatchRequest(hello=self._hello)

    def requests(self) -> Iterator[pb.MatchRequest]:
        """Hello, every chunk of elements with its offset, then Finish (the tail comes from :meth:`take_tail`)."""
        yield self.hello()
        offset = 0
        for elements in self.half.chunks(self.chunk_elements):
            request = pb.MatchRequest()  # filled in place: no copy of the chunk into the request
            request.blinded.SetInParent()  # present even when empty, as the constructor made it
            request.blinded.offset = offset
            request.blinded.elements.extend(elements)
            yield request
            offset += len(elements)
        yield pb.MatchRequest(finish=pb.Finish(elements_sent=offset))

    @property
    def wants_tail(self) -> bool:
        """Whether messages follow Finish in this protocol and reveal mode (a hit report, the re-blinded setup)."""
        return self.half.wants_tail

    def take_tail(self) -> list[pb.MatchRequest] | None:
        """The messages after Finish, once (when their inputs have all arrived); None before and after."""
        if self.half.wants_tail and not self._tail_handed and self.half.tail_ready:
            self._tail_handed = True
            return self.half.tail(self.chunk_elements)
        return None

    # -- what comes back --------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Whether the Summary has arrived and was consistent."""
        return self.phase == "done"

    def receive(self, response: pb.MatchResponse) -> int:
        """Take one response; returns the elements it completed (for progress)."""
        kind = response.WhichOneof("kind")
        if self.phase == "accepted":
            if kind != "accepted":
                raise ProtocolViolation("the responder did not accept the session with an Accepted message")
            self.half.on_accepted(response.accepted)
            self.phase = "running"
            return 0
        if self.phase == "done":
            raise ProtocolViolation(f"unexpected {kind or 'empty'} message after the responder's summary")
        if kind == "setup":
            self.half.on_setup(response.setup)
            return 0
        if kind == "evaluated":
            n = self.half.on_evaluated(response.evaluated)
            self.matched += n
            return n
        if kind == "summary":
            self.half.on_summary(response.summary)
            self.phase = "done"
            return 0
        raise ProtocolViolation(f"unexpected {kind or 'empty'} message from the responder")

    def stream_ended(self) -> None:
        """The responder closed the stream: ProtocolViolation unless the Summary came."""
        if self.phase == "accepted":
            raise ProtocolViolation("the responder did not accept the session with an Accepted message")
        if self.phase != "done":
            raise ProtocolViolation("the responder closed the session before its summary")

    def result(self) -> R_co:
        """The session's result (only once :attr:`done`)."""
        if self.phase != "done":
            raise ProtocolViolation("the session has no result before the responder's summary")
        return self.half.result()
