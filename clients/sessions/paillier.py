"""Requester half of ``paillier``: bin and encrypt polynomials, decrypt replies, find hits."""

from __future__ import annotations

from collections.abc import Iterator

from clients.sessions.base import RequesterSession
from matcher.errors import ProtocolViolation
from matcher.parallel import Workers
from matcher.protocols import paillier as pl
from matcher.protocols import paillier_proof
from matcher.v1 import matcher_pb2 as pb

#: bytes one gRPC message may carry (the smallest limit either side sets; see matcher.sessions.limits.message_limit)
MESSAGE_BYTES = (2 << 20) - 8192


class PaillierRequesterSession(RequesterSession):
    """Polynomial PSI, requester side, under a fresh Paillier key of ``key_bits``.

    ``workers`` (a matcher.parallel.Workers; None = this process) encrypt the coefficients and decrypt the replies.
    """

    protocol = "paillier"

    def __init__(self, records, keyspec, reveal, workers: Workers | None = None, *,
                 key_bits: int = pl.DEFAULT_KEY_BITS, _key: pl.RequesterSecret | None = None) -> None:
        super().__init__(records, keyspec, reveal, workers)
        self._key = _key or pl.generate_key(key_bits)
        pl.warm_up(self._key, workers)  # worker start-up and tables overlap the proof and the Hello
        # Binned once the responder's Policy is known: its token count weighs the choice of
        # bins, and two candidate bins per token only where it says it evaluates both.
        self._responder_size: int | None = None
        self._max_choices = 1
        self._query: pl.RequesterQuery | None = None
        self.workers = workers
        self._size = pl.ciphertext_bytes(self._key.n)

    def use_policy(self, policy: pb.Policy, responder: str, setup_cache=None) -> None:
        self._responder_size = policy.setup_size or None
        self._max_choices = max(1, min(2, policy.paillier_choices))
        self._query = None

    @property
    def query(self) -> pl.RequesterQuery:
        """The binned tokens (built on first use, after :meth:`use_policy`)."""
        if self._query is None:
            self._query = pl.build_query(self.tokens, self._key, responder_size=self._responder_size,
                                         max_choices=self._max_choices)
        return self._query

    @property
    def request_size(self) -> int:
        return self.query.element_count

    @property
    def progress_total(self) -> int:
        return self.accepted.setup_size if self.accepted else 0

    def fill_hello(self, hello: pb.Hello) -> None:
        q = self.query
        hello.paillier.CopyFrom(pb.PaillierParams(
            n=q.key.n.to_bytes((q.key.n.bit_length() + 7) // 8, "big"), bins=q.bins, degree=q.degree, bin_seed=q.seed,
            modulus_proof=paillier_proof.prove(q.key.n, q.key.p, q.key.q), choices=q.choices,
        ))

    def chunks(self, chunk_elements: int) -> Iterator[list[bytes]]:
        limit = max(1, min(chunk_elements, MESSAGE_BYTES // (self._size + 8)))
        bins_per_task = max(1, limit // self.query.degree)
        if bins_per_task * self.query.degree > limit:
            raise ProtocolViolation(f"degree {self.query.degree} does not fit a chunk of {limit} elements")
        yield from pl.encrypt_query(self.query, bins_per_task, self.workers)

    def on_evaluated(self, chunk: pb.ElementChunk) -> int:
        assert self.accepted is not None
        n = len(chunk.elements)
        order = self.replies_in_order(self.accepted.setup_size)
        order.check(chunk.offset, n)
        residues = pl.decrypt_replies(self._key, list(chunk.elements), self._done, self.workers)
        if self.reveal == "cardinality":
            self.hit_tokens += pl.count_zeros(residues)  # replies are shuffled: only the count means anything
        else:
            for index, ref in pl.find_hits(self.query, residues):
                self.add_hit(index, ref)
        order.take(chunk.offset, n)
        return n

    def on_summary(self, summary: pb.Summary) -> None:
        total = self.accepted.setup_size if self.accepted else 0
        if self._done != total:
            raise ProtocolViolation(f"session ended after {self._done} of {total} replies")
