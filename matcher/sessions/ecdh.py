"""Responder half of ``ecdh``: send the epoch's setup, return b·X for every received X."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from matcher.errors import ProtocolViolation
from matcher.parallel import SMALL_BATCH, inline, kernel_threads
from matcher.protocols import ecdh, ecdh_reveal
from matcher.sessions.base import ResponderSession
from matcher.sessions.chunks import InOrder
from matcher.v1 import matcher_pb2 as pb

if TYPE_CHECKING:
    from matcher.sessions.context import ResponderContext

#: Upper bound on the bytes of one SetupChunk message.
SETUP_CHUNK_BYTES = 1 << 20


class EcdhResponderSession(ResponderSession):
    """Diffie-Hellman PSI, responder side (see matcher.protocols.ecdh for the math).

    ``requester`` mode: the setup (tags, labels bound to their tokens) goes out, then
    every chunk's replies b·X_i in order.

    ``cardinality`` mode: the responder does the counting, so a requester that
    deviates learns a count and nothing else. The setup is the points b·H(y)
    themselves (sorted); the replies b·X_i are kept here and never sent. After
    Finish the requester returns every setup point re-blinded, a·b·H(y), in an order
    only it knows; the responder counts how many of them are among its b·a·H(x) and
    sends that count in the Summary. The requester never sees b·a·H(x), so it cannot
    attribute anything to one of its elements whatever it blinds them with.

    ``both`` mode: as ``requester``, then the requester reports P = b·H(x) of each hit
    with the index of its element in this session and a proof that one scalar links
    every reported P to this session's reply (:func:`matcher.protocols.ecdh_reveal.check_hit_report`);
    the records behind accepted points go to the responder's hits file.
    """

    protocol = "ecdh"

    def __init__(self, state: ResponderContext, hello: pb.Hello) -> None:
        super().__init__(state, hello)
        self.epoch = state.current()
        self.reveal = state.settings.reveal
        self.cardinality = self.reveal == "cardinality"
        # The IFMA kernels release the GIL: threads of this process evaluate without copying
        # each chunk to a worker process and back (matcher.parallel.kernel_threads).
        self._workers = kernel_threads(state.workers) if ecdh.KERNELS_RELEASE_GIL else state.workers
        self._pending: deque[tuple[int, list[Any]]] = deque()  # (offset, [futures]) in order
        self._reported = 0
        #: cardinality: this session's b·X_i (never sent); both: the replies in order, to check the report
        self._evaluated: set[bytes] = set()
        self._replies: list[bytes] = []
        #: cardinality: the re-blinded setup coming back after Finish, in order
        self._reblinded = InOrder(len(self.epoch.setup), state.settings.max_chunk_elements,
                                  what="re-blinded chunk", announced="the setup")
        self._count = 0
        self._tail_done = False

    def accepted(self, accepted: pb.Accepted) -> None:
        accepted.key_epoch = self.epoch.key.epoch
        accepted.setup_size = len(self.epoch.setup)
        accepted.tag_length = self.epoch.setup.tag_length
        accepted.setup_id = self.epoch.setup_id
        accepted.setup_skipped = self.skip_setup = self.hello.cached_setup_id == self.epoch.setup_id

    def opening(self) -> Iterator[pb.MatchResponse]:
        if self.skip_setup:
            return
        setup = self.epoch.setup
        entry = setup.tag_length + (len(setup.labels[0]) if setup.labels and setup.labels[0] else 0)
        per_chunk = max(1, min(self.state.settings.max_chunk_elements * 4, SETUP_CHUNK_BYTES // max(1, entry)))
        for i in range(0, len(setup), per_chunk):
            # extend() fills the repeated fields in one pass each: about half the CPU of passing the
            # lists to the constructors (which also copy the SetupChunk into the MatchResponse)
            message = pb.MatchResponse()
            chunk = message.setup
            chunk.SetInParent()
            chunk.tags.extend(setup.tags[i : i + per_chunk])
            if not self.cardinality:
                chunk.labels.extend(setup.labels[i : i + per_chunk])
            yield message

    def on_elements(self, elements: Sequence[bytes], offset: int) -> Iterator[pb.MatchResponse]:
        # Evaluate on the worker pool and keep reading: replies go out in order as
        # they complete, with a bounded number of chunks in flight.
        workers = self._workers if len(elements) >= SMALL_BATCH else inline()
        step = max(SMALL_BATCH // 2, -(-len(elements) // workers.size))
        futures = [
            workers.submit(ecdh.evaluate, self.epoch.key.key, list(elements[i : i + step]), offset + i)
            for i in range(0, len(elements), step)
        ]
        self._pending.append((offset, futures))
        while self._pending and (len(self._pending) > 2 or all(f.done() for f in self._pending[0][1])):
            yield from self._emit()

    def _emit(self) -> Iterator[pb.MatchResponse]:
        offset, futures = self._pending.popleft()
        reply: list[bytes] = []
        for f in futures:
            reply.extend(f.result())
        if self.cardinality:
            self._evaluated.update(reply)  # distinct: the service refuses repeated elements
            return
        if self.reveal == "both":
            self._replies.extend(reply)
        message = pb.MatchResponse()
        message.evaluated.SetInParent()
        message.evaluated.offset = offset
        message.evaluated.elements.extend(reply)
        yield message

    def on_finish(self) -> Iterator[pb.MatchResponse]:
        while self._pending:
            yield from self._emit()

    # -- after Finish ------------------------------------------------------------------
    @property
    def expects_more(self) -> bool:
        if self.reveal == "both":
            return not self._tail_done
        if self.cardinality:
            return not self._reblinded.complete
        return False

    @property
    def tail_name(self) -> str:  # type: ignore[override]
        return "the re-blinded setup" if self.cardinality else "a HitReport"

    def on_tail(self, request: pb.MatchRequest) -> Iterator[pb.MatchResponse]:
        kind = request.WhichOneof("kind")
        if self.cardinality:
            if kind != "reblinded":
                raise ProtocolViolation(
                    f"the re-blinded setup must follow Finish in this reveal mode, not {kind or 'empty'}"
                )
            chunk = request.reblinded
            self._reblinded.check(chunk.offset, len(chunk.elements))
            self._count += ecdh_reveal.count_matches(self._evaluated, chunk.elements, chunk.offset)
            self._reblinded.take(chunk.offset, len(chunk.elements))
            self.hit_count = self._count if self._reblinded.complete else None
            return iter(())
        if kind != "hit_report":
            raise ProtocolViolation(f"a HitReport must follow Finish in this reveal mode, not {kind or 'empty'}")
        report = request.hit_report
        tokens = ecdh_reveal.check_hit_report(
            self.epoch.setup, list(report.elements), self.hello.request_size, list(report.indices),
            report.proof, self._replies, ecdh_reveal.hit_proof_context(self.session_id),
        )
        self._tail_done = True
        self._reported = self.hit_count = len(tokens)
        self.record_own_hits(tokens)
        return iter(())

    def summary_hit_count(self) -> int:
        return self._count if self.cardinality else self._reported
