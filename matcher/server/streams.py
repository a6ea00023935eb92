"""The responder's stream plumbing: the inbox and watchdog threads, and the lenient deserializer.

A Match handler reads the request stream through an :class:`Inbox` (so it can wait
with a deadline) and is cancelled by a :class:`Watchdog` when it is still running past
its cap (e.g. blocked sending to a peer that never reads). Requests that are not valid
protobuf become :class:`Undecodable` so the service answers INVALID_ARGUMENT, not INTERNAL.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import grpc

from matcher.errors import ProtocolViolation, SessionTimeout
from matcher.v1 import matcher_pb2 as pb

#: Seconds past the session cap after which a session still blocked (e.g. sending to a
#: peer that does not read) is cancelled by the watchdog.
WATCHDOG_GRACE_SECONDS = 2.0



class Inbox:
    """The request stream, read on its own thread so that the session can wait with a deadline.

    Holds at most two messages (back-pressure reaches the peer through gRPC flow
    control). :meth:`next` returns the next message, None at the end of the stream,
    or raises SessionTimeout when the session's deadline passes first.
    """

    def __init__(self, requests: Iterator[pb.MatchRequest], deadline: float, why: str) -> None:
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self.deadline, self.why = deadline, why
        #: the peer cancelled or disconnected (the stream ended with an error, not a half-close)
        self.peer_gone = False
        self._thread = threading.Thread(target=self._pump, args=(requests,), name="matcher-inbox", daemon=True)
        self._thread.start()

    def _put(self, item: tuple[str, object]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.25)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self, requests: Iterator[pb.MatchRequest]) -> None:
        end: tuple[str, object] = ("end", None)
        try:
            for msg in requests:
                if not self._put(("msg", msg)):
                    return
        except Exception:  # grpc.RpcError: cancelled, deadline passed or connection lost
            end = ("gone", None)
        self._put(end)

    def next(self, deadline: float | None = None, why: str | None = None) -> pb.MatchRequest | None:
        """The next message; ``deadline``/``why`` set an earlier limit for this one (the Hello)."""
        early = deadline is not None and deadline < self.deadline
        if deadline is None or not early:
            deadline, why = self.deadline, self.why
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise queue.Empty
            kind, msg = self._queue.get(timeout=remaining)
        except queue.Empty:
            what = "send its Hello" if early else "complete"
            raise SessionTimeout(f"the session did not {what} within {why}") from None
        if kind == "gone":
            self.peer_gone = True
        if isinstance(msg, Undecodable):
            raise ProtocolViolation("a message is not a valid MatchRequest (protobuf decoding failed)")
        return msg  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()


class Watchdog:
    """Cancels an RPC that is still running at its deadline (e.g. blocked sending to a peer that never reads)."""

    def __init__(self, context: grpc.ServicerContext, seconds: float) -> None:
        self.fired = False
        self._context = context
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        self._context.cancel()

    def close(self) -> None:
        self._timer.cancel()


class Undecodable:
    """Stands for a received message that is not valid protobuf (see :func:`lenient`)."""

    def WhichOneof(self, _group: str) -> str:  # noqa: N802 - the protobuf method's name
        return "undecodable"


def lenient(message_type):
    """A request deserializer that never fails: gRPC would end the call with INTERNAL
    ("Exception deserializing request!"); the service answers INVALID_ARGUMENT instead."""

    def parse(data: bytes):
        try:
            return message_type.FromString(data)
        except Exception:  # google.protobuf.message.DecodeError and friends
            return Undecodable()

    return parse
