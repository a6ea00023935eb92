"""Responder half of ``ecdh``: send the epoch's setup, return b·X for every received X."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator, Sequence

from matcher.parallel import SMALL_BATCH, inline
from matcher.protocols import ecdh
from matcher.sessions.base import ResponderSession
from matcher.v1 import matcher_pb2 as pb

#: Upper bound on the bytes of one SetupChunk message.
SETUP_CHUNK_BYTES = 1 << 20


class EcdhResponderSession(ResponderSession):
    """Diffie-Hellman PSI, responder side (see matcher.protocols.ecdh for the math).

    In ``cardinality`` mode the replies are held back, shuffled with a CSPRNG and
    sent after the last chunk, and the setup carries no labels, so the requester
    can count its hits but not tell which of its elements they are.

    In ``both`` mode the requester, after matching, reports b·H(x) of each hit;
    :func:`matcher.protocols.ecdh.check_hit_report` accepts only points equal to one
    of the responder's own entries, and those records go to the responder's hits file.
    """

    protocol = "ecdh"

    def __init__(self, state, hello: pb.Hello) -> None:
        super().__init__(state, hello)
        self.epoch = state.current()
        self.cardinality = state.settings.reveal == "cardinality"
        self._held: list[bytes] = []
        self._workers = state.workers
        self._pending: deque = deque()  # (offset, [futures]) in order
        self._reported = 0

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
            labels = [] if self.cardinality else setup.labels[i : i + per_chunk]
            yield pb.MatchResponse(setup=pb.SetupChunk(tags=setup.tags[i : i + per_chunk], labels=labels))

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
        reply = [p for f in futures for p in f.result()]
        if self.cardinality:
            self._held.extend(reply)
        else:
            yield pb.MatchResponse(evaluated=pb.ElementChunk(offset=offset, elements=reply))

    @property
    def expects_report(self) -> bool:
        return self.state.settings.reveal == "both"

    def on_report(self, report: pb.HitReport) -> Iterator[pb.MatchResponse]:
        tokens = ecdh.check_hit_report(self.epoch.setup, list(report.elements), self.hello.request_size)
        self._reported = self.hit_count = len(tokens)
        self.record_own_hits(tokens)
        return iter(())

    def summary_hit_count(self) -> int:
        return self._reported

    def on_finish(self) -> Iterator[pb.MatchResponse]:
        while self._pending:
            yield from self._emit()
        if not self.cardinality:
            return
        random.SystemRandom().shuffle(self._held)
        step = self.state.settings.max_chunk_elements
        for i in range(0, len(self._held), step):
            yield pb.MatchResponse(evaluated=pb.ElementChunk(offset=i, elements=self._held[i : i + step]))
