"""Paillier polynomial PSI, the responder's half: re-randomisation, Horner evaluation, replies.

Hazmat, like :mod:`matcher.protocols.paillier` (parameters, encodings, the requester's
key and query), whose encodings and ciphertext checks it uses. For each own token y the
responder evaluates the requester's encrypted bin polynomial at enc(y) by Horner's rule,
multiplies by a fresh random r and adds the payload (y ‖ case_ref), then re-randomises:
``E(r·P(y) + payload)``; a non-root gives a uniformly random plaintext.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import gmpy2
from gmpy2 import mpz

from matcher.errors import ProtocolViolation
from matcher.parallel import Workers
from matcher.protocols import modexp_backend
from matcher.protocols.paillier import (
    _N_X,
    ENCODING_BITS,
    FixedBase,
    _cached,
    alpha_digit_tables,
    candidate_bins,
    check_ciphertexts,
    ciphertext_bytes,
    encode_payload,
    encode_token,
    get_pool,
    security_bits,
    to_wire,
    warm_tables,
    worker_count,
)
from matcher.protocols.paillier import _WINDOW as _WINDOW_X  # β_j's bits: 2^8 = 256 entries per X_j


@dataclass(frozen=True, repr=False)
class Rerandomiser:
    """The responder's per-session re-randomisation bases for the requester's ``n``."""

    def __repr__(self) -> str:  # the bases are the responder's secret randomness
        return f"Rerandomiser(<{int(self.n).bit_length()}-bit modulus, {len(self.xs)} bases>)"

    n: int
    hs: int
    xs: tuple[int, ...]

    @classmethod
    def new(cls, n: int) -> Rerandomiser:
        """``h_s = (−x²)ⁿ`` and ``X_j = x_jⁿ`` mod n² for fresh random x (one exponentiation each)."""
        n = mpz(n)
        n2 = n * n

        def rnd() -> mpz:
            return mpz(secrets.randbelow(int(n) - 2) + 2)

        x = rnd()
        bases = [n - x * x % n] + [rnd() for _ in range(_N_X)]
        fast = modexp_backend.get()
        if fast is not None and fast.size_for(n2) is not None:  # 33 exponentiations, 8 per call
            powers = fast.powmod(bases, [n] * len(bases), n2, n.bit_length())
        else:
            powers = [gmpy2.powmod(b, n, n2) for b in bases]
        return cls(int(n), int(powers[0]), tuple(int(v) for v in powers[1:]))


class _ResponderCtx:
    def __init__(self, rr: Rerandomiser) -> None:
        self.n = mpz(rr.n)
        self.n2 = self.n * self.n
        self.alpha_bits = 2 * security_bits(self.n.bit_length())
        fast = modexp_backend.get()
        #: the compiled kernels' re-randomiser where they take n² (then no gmpy2 tables are built):
        #: h_s^α · ∏ X_j^{β_j} as a product of table entries, α in 4-bit digits, β_j in 8 bits
        self.products = None
        if fast is not None and fast.size_for(self.n2) is not None:
            h_powers, h_widths = alpha_digit_tables(rr.hs, self.n2, self.alpha_bits)
            self.products = fast.fixed_base_products(
                self.n2, h_powers + list(rr.xs), h_widths + [_WINDOW_X] * len(rr.xs))
        if self.products is None:
            self.h = FixedBase(rr.hs, self.n2, self.alpha_bits)
            self.xs = [FixedBase(x, self.n2, _WINDOW_X).table[0] for x in rr.xs]

    def rerandomised(self, values: Sequence[mpz]) -> list[mpz]:
        """Each value times a fresh re-randomiser, mod n² (eight per pass in the compiled kernels)."""
        if self.products is not None:
            return self.products.times_random(values)
        n2 = self.n2
        return [v * self.rerandomiser() % n2 for v in values]

    def rerandomiser(self) -> mpz:
        """``h_s^α · ∏ X_j^{β_j}``: ⌈α/8⌉ + 32 multiplications mod n²."""
        if self.products is not None:
            return self.products.times_random([mpz(1)])[0]
        acc = self.h.pow(secrets.randbits(self.alpha_bits))
        n2 = self.n2
        # every β_j from one draw of the CSPRNG (one system call instead of one per table: a
        # call per table cost about 4 CPU-s of a 10k x 10k session); same uniform bits
        betas, mask = secrets.randbits(_WINDOW_X * len(self.xs)), (1 << _WINDOW_X) - 1
        for row in self.xs:
            acc = acc * row[betas & mask] % n2
            betas >>= _WINDOW_X
        return acc


def _responder_ctx(rr: Rerandomiser) -> _ResponderCtx:
    return _cached(("resp", rr.n, rr.hs), lambda: _ResponderCtx(rr))


def _warm_responder(rr: Rerandomiser) -> None:
    _responder_ctx(rr)


def warm_up(rr: Rerandomiser, workers: Workers | None) -> None:
    """Build the re-randomiser's tables in each of ``workers`` while the coefficients stream in
    (best effort, not waited for)."""
    warm_tables(_warm_responder, rr, workers)


def evaluate_one(ctx: _ResponderCtx, coeffs: Sequence[mpz], e: int, pay: int) -> mpz:
    """``E(r·P(e) + pay)`` re-randomised, from the bin's encrypted coefficients (Horner)."""
    n, n2 = ctx.n, ctx.n2
    e = mpz(e)
    acc = coeffs[-1] * (1 + e * n) % n2  # E(a_{d−1} + e): the monic term enters as g^e
    for c in reversed(coeffs[:-1]):
        acc = gmpy2.powmod(acc, e, n2) * c % n2
    r = mpz(secrets.randbelow(int(n) - 1) + 1)
    acc = gmpy2.powmod(acc, r, n2)
    if pay:
        acc = acc * (1 + mpz(pay) * n) % n2
    return acc * ctx.rerandomiser() % n2


def evaluate_many(ctx: _ResponderCtx, items: Sequence[tuple[Sequence[mpz], int, int]]) -> list[mpz]:
    """:func:`evaluate_one` of each (coefficients, encoding, payload) item.

    Where AVX-512 IFMA runs the multi-buffer exponentiation (and n² has a size it takes),
    the items advance in step: each Horner step and the mask ``acc^r`` of eight items is
    one library call; otherwise, or for items of different degrees, one by one with gmpy2.
    """
    fast = modexp_backend.get()
    degree = len(items[0][0]) if items else 0
    if fast is None or len(items) < 2 or fast.size_for(ctx.n2) is None or any(len(c) != degree for c, _, _ in items):
        return [evaluate_one(ctx, coeffs, e, pay) for coeffs, e, pay in items]
    n, n2 = ctx.n, ctx.n2
    es = [mpz(e) for _, e, _ in items]
    accs = [coeffs[-1] * (1 + e * n) % n2 for (coeffs, _, _), e in zip(items, es, strict=True)]
    for k in range(degree - 2, -1, -1):
        accs = fast.powmod(accs, es, n2, ENCODING_BITS)
        accs = [acc * coeffs[k] % n2 for acc, (coeffs, _, _) in zip(accs, items, strict=True)]
    rs = [mpz(secrets.randbelow(int(n) - 1) + 1) for _ in items]
    accs = fast.powmod(accs, rs, n2, n.bit_length())
    accs = [acc * (1 + mpz(pay) * n) % n2 if pay else acc for acc, (_, _, pay) in zip(accs, items, strict=True)]
    return ctx.rerandomised(accs)


def _evaluate_batch(rr: Rerandomiser, items: list[tuple[list[bytes], int, int]]) -> list[bytes]:
    """Worker task: evaluate each (bin coefficients, encoding, payload) item, as wire bytes."""
    ctx = _responder_ctx(rr)
    size = ciphertext_bytes(rr.n)
    parsed = [([mpz(int.from_bytes(c, "big")) for c in coeffs], e, pay) for coeffs, e, pay in items]
    return [to_wire(v, size) for v in evaluate_many(ctx, parsed)]


@dataclass
class ResponderItems:
    """The responder's own tokens for one session: encodings and payloads (0 in cardinality mode)."""

    encodings: list[int]
    payloads: list[int]


def responder_items(entries: Sequence[tuple[bytes, bytes]], n_bits: int, with_payload: bool) -> ResponderItems:
    """Merge ``(token, case_ref)`` entries per token (refs joined by ``;``) and encode them."""
    refs: dict[bytes, set[bytes]] = {}
    for token, ref in entries:
        refs.setdefault(token, set()).add(ref)
    encs, pays = [], []
    for token, rs in refs.items():
        e = encode_token(token)
        encs.append(e)
        pays.append(encode_payload(e, b";".join(sorted(rs)), n_bits) if with_payload else 0)
    return ResponderItems(encs, pays)


class CoefficientStore:
    """The requester's encrypted coefficients as they arrive, each checked on the way in."""

    def __init__(self, n: int, bins: int, degree: int) -> None:
        self.n = mpz(n)
        self.n2 = self.n * self.n
        self.size = ciphertext_bytes(n)
        self.bins, self.degree = bins, degree
        self.elements: list[bytes] = []

    def add(self, elements: Sequence[bytes], offset: int) -> None:
        if offset != len(self.elements):
            raise ProtocolViolation(f"coefficients out of order at {offset}")
        check_ciphertexts(elements, self.n, self.n2, self.size, offset)
        self.elements.extend(bytes(x) for x in elements)

    def bin(self, b: int) -> list[bytes]:
        return self.elements[b * self.degree : (b + 1) * self.degree]


def evaluate_all(
    store: CoefficientStore,
    items: ResponderItems,
    seed: int,
    rr: Rerandomiser,
    *,
    batch: int = 32,
    workers: Workers | None = None,
    choices: int = 1,
) -> Iterator[list[bytes]]:
    """All replies, one per own token and candidate bin (``choices`` per token), in a
    uniformly random order, ``batch`` per yielded list.

    The order is drawn before any work starts, independently of bins, so the stream
    reveals nothing about which bin (hence which token) a reply belongs to, nor which
    two replies come from the same token.
    """
    order = list(range(choices * len(items.encodings)))
    secrets.SystemRandom().shuffle(order)

    def tasks() -> Iterator[tuple[Rerandomiser, list[tuple[list[bytes], int, int]]]]:
        for i in range(0, len(order), batch):
            part: list[tuple[list[bytes], int, int]] = []
            for j in order[i : i + batch]:
                token, choice = divmod(j, choices)
                e = items.encodings[token]
                b = candidate_bins(e, seed, store.bins, choices)[choice]
                part.append((store.bin(b), e, items.payloads[token]))
            yield rr, part

    yield from get_pool(workers).map_ordered(_evaluate_batch, tasks(), 2 * worker_count(workers))
