"""Requester half of ``ecdh``: send a·H(x), index the setup, unblind replies, open labels."""

from __future__ import annotations

from collections.abc import Iterator

from matcher.errors import ProtocolViolation
from matcher.parallel import SMALL_BATCH, Workers, inline
from matcher.protocols import ecdh
from matcher.storage.setup_cache import setup_id
from matcher.v1 import matcher_pb2 as pb
from clients.sessions.base import RequesterSession


#: Most setup entries a requester accepts to hold (about 6 GB at 60 bytes an entry).
MAX_SETUP_ENTRIES = 100_000_000


class EcdhRequesterSession(RequesterSession):
    """Diffie-Hellman PSI, requester side, under a fresh session key ``a``."""

    protocol = "ecdh"

    def __init__(self, records, keyspec, reveal, workers: Workers | None = None) -> None:
        super().__init__(records, keyspec, reveal)
        self._workers = workers if workers is not None and len(self.tokens) >= 2 * SMALL_BATCH else inline()
        self._key = ecdh.new_key()
        self._inverse = ecdh.invert_key(self._key)
        self._index: ecdh.SetupIndex | None = None
        self._done = 0
        self._cache = None
        self._responder = ""
        self._cached: ecdh.ResponderSetup | None = None
        self._received = False
        self._label_length = 0

    def use_policy(self, policy: pb.Policy, responder: str, setup_cache=None) -> None:
        self._cache, self._responder = setup_cache, responder
        if setup_cache is not None and policy.setup_id:
            self._cached = setup_cache.load(responder, policy.setup_id)

    def fill_hello(self, hello: pb.Hello) -> None:
        if self._cached is not None:
            hello.cached_setup_id = setup_id(self._cached)
        self._hit_points: list[bytes] = []  # b·H(x) of each hit token (reveal = "both")

    @property
    def progress_total(self) -> int:
        return len(self.tokens)

    def chunks(self, chunk_elements: int) -> Iterator[list[bytes]]:
        # Blinding runs ahead on the workers while earlier chunks are on the wire.
        batches = ((self._key, self.tokens[off : off + chunk_elements]) for off in range(0, len(self.tokens), chunk_elements))
        yield from self._workers.map_ordered(ecdh.blind_tokens, batches)

    def on_accepted(self, accepted: pb.Accepted) -> None:
        super().on_accepted(accepted)
        # What the responder announces bounds what this side will hold: check it first.
        if not ecdh.MIN_TAG_BYTES <= accepted.tag_length <= ecdh.MAX_TAG_BYTES:
            raise ProtocolViolation(f"the responder announced tags of {accepted.tag_length} bytes")
        if accepted.setup_size > MAX_SETUP_ENTRIES:
            raise ProtocolViolation(f"the responder announced a setup of {accepted.setup_size} entries")
        self._index = ecdh.SetupIndex(accepted.tag_length)
        if accepted.setup_skipped:
            if self._cached is None or setup_id(self._cached) != accepted.setup_id:
                raise ProtocolViolation("the responder skipped a setup this requester does not hold")
            if self._cached.tag_length != accepted.tag_length or len(self._cached) != accepted.setup_size:
                raise ProtocolViolation("cached setup does not fit the responder's announcement")
            self._index = ecdh.SetupIndex.from_setup(self._cached, checked=True)

    def on_setup(self, chunk: pb.SetupChunk) -> None:
        assert self._index is not None and self.accepted is not None
        if self._done:
            raise ProtocolViolation("setup after evaluated elements")
        if self.reveal == "requester" and len(chunk.labels) != len(chunk.tags):
            raise ProtocolViolation("setup chunk with tags and labels of different counts")
        if self.reveal == "cardinality" and chunk.labels:
            raise ProtocolViolation("setup chunk with labels in cardinality mode")
        if self.accepted.setup_skipped:
            raise ProtocolViolation("setup sent after the responder said it would skip it")
        tags, labels = list(chunk.tags), list(chunk.labels)
        if labels:
            first = self._label_length or len(labels[0])
            if first < ecdh.MIN_LABEL_BYTES or any(len(x) != first for x in labels):
                raise ProtocolViolation("setup labels are not of one common, possible length")
            self._label_length = first
        self._index.add(tags, labels)
        if len(self._index) > self.accepted.setup_size:
            raise ProtocolViolation("more setup entries than announced")
        self._received = True

    def on_evaluated(self, chunk: pb.ElementChunk) -> int:
        assert self._index is not None
        if chunk.offset != self._done or self._done + len(chunk.elements) > len(self.tokens):
            raise ProtocolViolation("evaluated elements out of order or too many")
        elements = list(chunk.elements)
        if self.reveal == "both":  # the hits' points b·H(x) go back in the hit report
            points = self._workers.map_split(ecdh.unblind, (self._inverse,), elements, offset=self._done)
            outputs = ecdh.output_hashes(points)
        else:
            outputs = self._workers.map_split(ecdh.unblind_outputs, (self._inverse,), elements, offset=self._done)
        found = self._index.lookup_outputs(outputs)
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
        if self._cache is not None and self._received and self.accepted is not None:
            setup = ecdh.ResponderSetup(self.accepted.tag_length, self._index.tags, self._index.labels)
            if setup_id(setup) == self.accepted.setup_id and len(setup) == self.accepted.setup_size:
                self._cache.save(self._responder, self.accepted.setup_id, setup)
