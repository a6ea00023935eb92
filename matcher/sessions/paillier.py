"""Responder half of ``paillier``: check the requester's key and coefficients, evaluate, shuffle."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from matcher.errors import InvalidElement, LimitExceeded, ProtocolViolation
from matcher.protocols import paillier as pl
from matcher.protocols import paillier_proof
from matcher.protocols import paillier_responder as plr
from matcher.sessions.base import ResponderSession
from matcher.v1 import matcher_pb2 as pb

if TYPE_CHECKING:
    from matcher.sessions.context import ResponderContext

#: replies per evaluation task (and per ElementChunk sent back)
EVAL_BATCH = 32
#: The coefficients are all needed before evaluation starts: bound what one session buffers.
MAX_BUFFERED_BYTES = 512 << 20


def choices_of(params: pb.PaillierParams) -> int:
    """Candidate bins per token the Hello asks for: 0 (a requester from before the field) means 1."""
    return params.choices or 1


class PaillierResponderSession(ResponderSession):
    """Polynomial PSI, responder side (see matcher.protocols.paillier for the math).

    The Hello carries the requester's modulus, bin count, degree, bin seed and candidate
    bins per token (1 or 2); they are checked against the protocol's bounds before
    anything else happens. Every received
    coefficient is checked as it arrives; evaluation starts after the last one, in a
    random order over the responder's tokens, and replies stream back as they are done.
    """

    protocol = "paillier"

    def __init__(self, state: ResponderContext, hello: pb.Hello) -> None:
        super().__init__(state, hello)
        if not hello.HasField("paillier"):
            raise ProtocolViolation("a paillier Hello must carry PaillierParams")
        params = hello.paillier
        max_bits = min(pl.MAX_KEY_BITS, state.settings.paillier_max_key_bits)
        max_degree = min(pl.MAX_DEGREE, state.settings.paillier_max_degree)
        if len(params.n) > max_bits // 8 or not params.n or params.n[0] == 0:
            raise InvalidElement(f"Paillier modulus must be a minimal big-endian integer of at most {max_bits} bits")
        n = int.from_bytes(params.n, "big")
        pl.check_modulus(n, max_bits)
        if not 1 <= params.degree <= max_degree:
            raise ProtocolViolation(
                f"polynomial degree {params.degree}; this responder allows 1 to {max_degree} (paillier_max_degree)"
            )
        if params.bins < 1 or params.bins * params.degree != hello.request_size:
            raise ProtocolViolation(
                f"{params.bins} bins of degree {params.degree} do not make the {hello.request_size} announced elements"
            )
        if choices_of(params) not in (1, 2) or (choices_of(params) == 2 and params.bins < 2):
            raise ProtocolViolation(
                f"{params.choices} candidate bins per token with {params.bins} bins; this responder takes 1, "
                "or 2 with at least 2 bins"
            )
        paillier_proof.verify(n, params.modulus_proof)
        buffered = hello.request_size * pl.ciphertext_bytes(n)
        if buffered > MAX_BUFFERED_BYTES:
            raise LimitExceeded(
                f"{hello.request_size} coefficients of this key size need {buffered >> 20} MiB at the responder; "
                f"it holds at most {MAX_BUFFERED_BYTES >> 20} MiB per session: send fewer tokens per session"
            )
        self.cardinality = state.settings.reveal == "cardinality"
        self.seed = params.bin_seed
        try:
            self.items = plr.responder_items(state.entries, n.bit_length(), with_payload=not self.cardinality)
        except ValueError as exc:  # a case reference longer than this key size carries
            raise LimitExceeded(f"{exc}; ask the requester for a larger Paillier key") from None
        self.choices = choices_of(params)
        self.store = plr.CoefficientStore(n, params.bins, params.degree)
        # Re-randomisation bases for this n, computed before the coefficients stream in.
        self.rerandomiser = plr.Rerandomiser.new(n)
        self.workers = state.workers
        plr.warm_up(self.rerandomiser, self.workers)

    @classmethod
    def budget_cost(cls, state: ResponderContext, hello: pb.Hello) -> int:
        """Two units per coefficient plus choices·(degree + 1) per own token: the guesses and the work.

        * Guesses: a requester can give each bin's polynomial different roots mod p
          and mod q (its own primes); the decrypted reply shows r·P(y) mod p and mod q
          apart, so d coefficients test up to 2·d guesses. Each coefficient is charged 2
          (evaluating a token in two bins adds no roots: a guess still costs a root).
        * Work: the responder evaluates every own token y in each of its ``choices``
          candidate bins (Horner: d ciphertext multiply-adds) and blinds and
          re-randomises each result, about ``d + 1`` ciphertext exponentiations per
          evaluation, whatever the request size.
        A Hello whose degree or choices are out of bounds is charged its size only (it is refused next).
        """
        degree = hello.paillier.degree if hello.HasField("paillier") else 0
        choices = choices_of(hello.paillier) if hello.HasField("paillier") else 0
        max_degree = min(pl.MAX_DEGREE, state.settings.paillier_max_degree)
        if not 1 <= degree <= max_degree or choices not in (1, 2):
            return hello.request_size
        return 2 * hello.request_size + choices * state.distinct_tokens * (degree + 1)

    def accepted(self, accepted: pb.Accepted) -> None:
        accepted.setup_size = self.choices * len(self.items.encodings)  # = number of replies that will follow

    def on_elements(self, elements: Sequence[bytes], offset: int) -> Iterator[pb.MatchResponse]:
        self.store.add(elements, offset)
        return iter(())

    def on_finish(self) -> Iterator[pb.MatchResponse]:
        offset = 0
        for part in plr.evaluate_all(
            self.store, self.items, self.seed, self.rerandomiser, batch=EVAL_BATCH, workers=self.workers,
            choices=self.choices,
        ):
            yield pb.MatchResponse(evaluated=pb.ElementChunk(offset=offset, elements=part))
            offset += len(part)
