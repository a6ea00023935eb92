"""Freedman–Nissim–Pinkas polynomial PSI with Paillier (DESIGN §3, protocol ``paillier``).

Notation: the requester holds a Paillier key ``n = p·q`` (:func:`generate_key`, Blum primes; 3072 bits
by default, never fewer than 2048), ``g = 1 + n``, ``E(m) = (1 + m·n)·ρⁿ mod n²``.
Tokens become 128-bit *encodings* ``e(t) = SHA-256("matcher/v1/paillier" ‖ 0 ‖ t)[:16]``.

* Requester: each encoding goes to bin ``xxh3_64(e, seed) mod B`` (``seed`` fresh per
  session; xxhash only spreads load, it is never an identity hash), or, with two choices
  (``choices = 2``), to one of its two candidate bins :func:`bins_of`, placed so that no
  bin holds more than ``d`` (:func:`place_two_choice`). Bin ``b`` gets the
  monic polynomial ``P_b(x) = ∏ (x − root) = x^d + a_{d−1}x^{d−1} + … + a_0 (mod n)``
  whose roots are its encodings, padded with random dummy roots from ``[2^128, 2^256)`` so
  every bin has the same degree ``d`` (a dummy root can never equal an encoding). It sends
  ``E(a_0) … E(a_{d−1})`` for every bin, bin-major. ``choices``, ``B`` and ``d`` are chosen
  from the set size by a cost model (:func:`choose_params`) so that a bin overflows ``d``
  with probability ≤ 2^-40; if one does anyway, ``d`` is raised for that session:
  nothing is ever dropped.
* Responder, for each own token ``y`` (encoding ``e``) and each of its ``choices``
  candidate bins ``b``: Horner evaluation
  ``acc ← E(a_{d−1})·g^e``; ``acc ← acc^e · E(a_i)`` for ``i = d−2 … 0`` gives
  ``E(P_b(e))``; then ``E(r·P_b(e) + pay)`` = ``acc^r · (1 + pay·n) · ρ`` with ``r``
  uniform in ``Z_n`` and a fresh re-randomiser ``ρ``; replies are shuffled. ``pay`` is
  ``e ‖ case reference`` (:func:`encode_payload`), or nothing in cardinality mode.
  When ``P_b(e) ≠ 0`` the plaintext ``r·P_b(e) + pay`` is uniform in ``Z_n``.
* Requester: decrypts. Payloads are kept below ``2^(|n|/2 − 8) < p``, so the residue mod
  ``p`` alone (one exponentiation mod ``p²``, half a CRT decryption) is the whole
  payload of a hit; a value whose low 128 bits are one of its encodings is a hit and
  carries the case reference. In cardinality mode it counts residues equal to 0.

Re-randomisers (DJN style, computed by the responder for the requester's ``n``):
``h = −x² mod n``, ``h_s = hⁿ mod n²``, ``ρ = h_s^α · ∏_j X_j^{β_j}`` with ``α`` of
2×security bits and ``X_j = x_jⁿ mod n²`` for 32 random ``x_j`` with 8-bit ``β_j``. The
``X_j`` term is an addition to plain DJN: the requester knows the factorisation and can
project ``ρ`` onto small subgroups (e.g. its quadratic characters mod p and q, which
``h^α`` alone does not randomise when ``p ≡ 1 mod 4``); random products of full
n-th residues make those projections uniform. Both factors use fixed-base tables, so a
re-randomiser costs ~60 multiplications mod ``n²`` instead of a 2048-bit exponentiation.

Every ciphertext from the wire goes through :func:`check_ciphertext` (``0 < c < n²``,
``gcd(c, n) = 1``); every requester key through :func:`check_modulus`.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import gmpy2
import xxhash
from gmpy2 import mpz

from matcher.errors import InvalidElement
from matcher.parallel import Workers, inline, kernel_threads
from matcher.protocols import modexp_backend

MIN_KEY_BITS = 2048
DEFAULT_KEY_BITS = 3072
MAX_KEY_BITS = 8192
ENCODING_BITS = 128
ENCODING_BYTES = ENCODING_BITS // 8
OVERFLOW_BITS = 40
MAX_DEGREE = 128
#: The requester pads every bin to at least this degree (see build_query).
MIN_DEGREE = 2
_ENC_DOMAIN = b"matcher/v1/paillier\x00"
_ENC_MASK = (1 << ENCODING_BITS) - 1
#: Dummy roots are uniform in [2^128, 2^256): never an encoding, unpredictable, and short
#: enough to keep building the polynomials cheap (any value ≥ 2^128 below n would do).
_DUMMY_LOW = 1 << ENCODING_BITS
_DUMMY_SPAN = (1 << (2 * ENCODING_BITS)) - _DUMMY_LOW
_N_X = 32  # full n-th residues in the re-randomiser's small-subgroup cover
_WINDOW = 8
#: digit width of α in the compiled kernels' fixed-base products (a table of 16 per 4 bits, each
#: scanned whole): the requester's encryptions and the responder's re-randomisers
_KERNEL_ALPHA_WINDOW = 4
#: The requester's fixed-base window: 21 multiplications per 224-bit half instead of 28 at 8
#: bits, for two tables of 21·2048 residues mod p² and q² (about 24 MiB per process).
REQ_WINDOW = 11
_SMALL_PRIMES = 1
for _p in range(3, 20000, 2):
    if gmpy2.is_prime(_p):
        _SMALL_PRIMES *= _p


# -- encodings, bins, parameters ---------------------------------------------------------
def encode_token(token: bytes) -> int:
    """``e(t)``: the first 128 bits of SHA-256 over a domain-separated token, as an integer."""
    return int.from_bytes(hashlib.sha256(_ENC_DOMAIN + token).digest()[:ENCODING_BYTES], "big")


def bin_of(encoding: int, seed: int, bins: int) -> int:
    """The bin of an encoding: ``xxh3_64(e, seed) mod bins`` (load spreading only)."""
    return xxhash.xxh3_64_intdigest(encoding.to_bytes(ENCODING_BYTES, "big"), seed=seed) % bins


def bins_of(encoding: int, seed: int, bins: int) -> tuple[int, int]:
    """The two candidate bins of an encoding (two-choice binning, ``bins ≥ 2``): ``b1 = bin_of``,
    ``b2 = (b1 + 1 + xxh3_64(e, seed ⊕ 1) mod (bins − 1)) mod bins`` (always ``≠ b1``)."""
    data = encoding.to_bytes(ENCODING_BYTES, "big")
    b1 = xxhash.xxh3_64_intdigest(data, seed=seed) % bins
    return b1, (b1 + 1 + xxhash.xxh3_64_intdigest(data, seed=seed ^ 1) % (bins - 1)) % bins


def candidate_bins(encoding: int, seed: int, bins: int, choices: int) -> tuple[int, ...]:
    """The bins a responder evaluates an encoding in: ``(bin_of,)`` or :func:`bins_of`."""
    return bins_of(encoding, seed, bins) if choices == 2 else (bin_of(encoding, seed, bins),)


def _log_tail(m: int, q: float, a: int) -> float:
    """Natural log of an upper bound on ``Pr[Binomial(m, q) ≥ a]`` (0.0 when no useful bound).

    The pmf ratio ``pmf(k+1)/pmf(k) = (m−k)·q / ((k+1)·(1−q))`` falls as k grows, so beyond
    ``a`` the terms shrink at least geometrically: tail ≤ pmf(a) / (1 − ratio(a)).
    """
    if a <= 0:
        return 0.0
    if a > m or q <= 0.0:
        return -math.inf
    if q >= 1.0:
        return 0.0
    ratio = (m - a) * q / ((a + 1) * (1 - q))
    if ratio >= 1.0:
        return 0.0
    log_pmf = (math.lgamma(m + 1) - math.lgamma(a + 1) - math.lgamma(m - a + 1)
               + a * math.log(q) + (m - a) * math.log1p(-q))
    return min(0.0, log_pmf - math.log1p(-ratio))


def two_choice_failure_log2(m: int, bins: int, capacity: int) -> float:
    """log2 of a bound on the chance that ``m`` items with two distinct random candidate bins
    each cannot be placed at most ``capacity`` to a bin.

    By Hall's theorem a placement exists unless some set S of k bins is the only choice of
    more than ``capacity·k`` items; an item has both choices in S with probability
    ``k(k−1)/(bins(bins−1))``. The union bound over all S:
    ``Σ_k C(bins, k) · Pr[Binomial(m, k(k−1)/(bins(bins−1))) ≥ capacity·k + 1]``.
    """
    if bins < 2:
        return 0.0
    total = 0.0
    log_b = math.lgamma(bins + 1)
    pairs = bins * (bins - 1)
    for k in range(2, bins + 1):
        a = capacity * k + 1
        if a > m:
            break
        log_term = log_b - math.lgamma(k + 1) - math.lgamma(bins - k + 1) + _log_tail(m, k * (k - 1) / pairs, a)
        if log_term >= 0.0:
            return 0.0
        total += math.exp(log_term)
    return math.log2(total) if total > 0 else -math.inf


def place_two_choice(pairs: Sequence[tuple[int, int]], bins: int, capacity: int) -> list[list[int]] | None:
    """Put each item ``i`` in one of its bins ``pairs[i]``, at most ``capacity`` per bin, or None.

    Each item goes to the less loaded of its two bins; when both are full, a breadth-first
    search moves earlier items to their other bins along a path that ends in a bin with
    room (an augmenting path), so it finds a placement whenever one exists.
    """
    content: list[list[int]] = [[] for _ in range(bins)]
    for i, (b1, b2) in enumerate(pairs):
        first = b1 if len(content[b1]) <= len(content[b2]) else b2
        if len(content[first]) < capacity:
            content[first].append(i)
            continue
        parent: dict[int, tuple[int, int] | None] = {b1: None, b2: None}
        queue = deque((b1, b2))
        found = None
        while queue and found is None:
            b = queue.popleft()
            for j in content[b]:
                other = pairs[j][0] if pairs[j][1] == b else pairs[j][1]
                if other in parent:
                    continue
                parent[other] = (b, j)
                if len(content[other]) < capacity:
                    found = other
                    break
                queue.append(other)
        if found is None:
            return None
        b = found
        step = parent[b]
        while step is not None:
            prev, j = step
            content[prev].remove(j)
            content[b].append(j)
            b = prev
            step = parent[b]
        content[b].append(i)
    return content


def overflow_log2(m: int, bins: int, degree: int) -> float:
    """log2 of the union bound ``bins · Pr[Binomial(m, 1/bins) > degree]`` on any bin overflowing."""
    if m <= degree:
        return -math.inf
    p = 1.0 / bins
    if p >= 1.0:
        return 0.0
    tail = 0.0
    # Terms decrease fast beyond the mean; sum until negligible.
    for k in range(degree + 1, m + 1):
        log_pmf = (
            math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1)
            + k * math.log(p) + (m - k) * math.log1p(-p)
        )
        term = math.exp(log_pmf)
        tail += term
        if k > m * p and term < tail * 1e-12:
            break
    return math.log2(bins) + math.log2(tail) if tail > 0 else -math.inf


def degree_for(m: int, bins: int) -> int:
    """Smallest padded degree with overflow probability ≤ 2^-40 for ``m`` items in ``bins`` bins."""
    d = max(1, math.ceil(m / bins))
    while overflow_log2(m, bins, d) > -OVERFLOW_BITS:
        d += 1
    return d


@dataclass(frozen=True)
class Costs:
    """Relative costs for choosing the binning, in requester encryptions (CRT, fixed-base tables).

    ``step``: one Horner step at the responder (a 128-bit exponentiation mod n²); ``reply``:
    what every reply costs whatever the binning: the responder's mask (a |n|-bit
    exponentiation mod n²) and re-randomiser, and the requester's decryption. Measured on
    the 2-core EPYC (docs/performance.md): encryption 80–90 µs; with the 8-lane multi-buffer
    exponentiation a step 118–155 µs and a reply 2.3 ms, with gmpy2 540 µs and about 11 ms.
    """

    step: float
    reply: float


COSTS_MULTI_BUFFER = Costs(step=1.5, reply=26.0)
COSTS_GMPY2 = Costs(step=5.0, reply=125.0)
STEP_COST_MULTI_BUFFER = COSTS_MULTI_BUFFER.step
STEP_COST_GMPY2 = COSTS_GMPY2.step
#: the responders' default ``paillier_max_degree``: the choice stays within it when it can
DEFAULT_MAX_DEGREE = 32
_LOADS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
#: two-choice candidates: (bin capacity = degree, items per bin)
_TWO_CHOICE = ((2, 1.0), (2, 1.2), (2, 1.4), (3, 1.8), (3, 2.1), (4, 2.8))
#: above this many bins the two-choice bound (O(bins) to compute) is not evaluated
_TWO_CHOICE_MAX_BINS = 250_000


def costs_for(n_bits: int) -> Costs:
    """:data:`COSTS_MULTI_BUFFER` if this machine's multi-buffer exponentiation takes n² of an
    ``n_bits`` key, else :data:`COSTS_GMPY2` (the requester assumes a responder like itself)."""
    fast = modexp_backend.get()
    n2_bits = 2 * n_bits
    if fast is not None and fast.size_for((1 << (n2_bits - 1)) | 1) is not None:
        return COSTS_MULTI_BUFFER
    return COSTS_GMPY2


def step_cost(n_bits: int) -> float:
    """The Horner step's cost in encryptions for an ``n_bits`` key here (:func:`costs_for`)."""
    return costs_for(n_bits).step


@dataclass(frozen=True)
class BinParams:
    """How the requester bins: ``choices`` candidate bins per token (1 or 2), ``bins``, ``degree``."""

    choices: int
    bins: int
    degree: int

    @property
    def coefficients(self) -> int:
        return self.bins * self.degree


def choose_params(
    m: int, responder_size: int | None = None, costs: Costs = COSTS_GMPY2, max_choices: int = 2
) -> BinParams:
    """The cheapest binning for ``m`` requester tokens against ``responder_size`` (default m).

    Candidates: one choice (:func:`choose_bins`) and two choices with bins of capacity
    2–4 (:data:`_TWO_CHOICE`) whose failure bound (:func:`two_choice_failure_log2`) is
    ≤ 2^-40. Cost ``choices·R·(reply + step·(d−1)) + B·d`` in encryptions: two choices
    double the replies (each with its mask) but need a tiny degree and about 1.4 m
    coefficients; they win where the multi-buffer exponentiation makes replies cheap.
    ``max_choices = 1`` (a responder that does not evaluate two bins) keeps one choice.
    """
    r = max(1, responder_size if responder_size is not None else m)
    b, d = choose_bins(m, responder_size, costs.step)
    best = (r * (costs.reply + costs.step * (max(MIN_DEGREE, d) - 1)) + b * max(MIN_DEGREE, d), BinParams(1, b, d))
    for capacity, load in _TWO_CHOICE if max_choices >= 2 else ():
        bins = math.ceil(m / load)
        if bins < 2 or bins > _TWO_CHOICE_MAX_BINS:
            continue
        cost = 2 * r * (costs.reply + costs.step * (capacity - 1)) + bins * capacity
        if cost < best[0] and two_choice_failure_log2(m, bins, capacity) <= -OVERFLOW_BITS:
            best = (cost, BinParams(2, bins, capacity))
    return best[1]


def choose_bins(m: int, responder_size: int | None = None, step: float = STEP_COST_GMPY2) -> tuple[int, int]:
    """(bin count B, degree d) for ``m`` requester tokens, one candidate bin per token.

    The bin-dependent work is the requester's ``B·d`` encryptions and the responder's
    ``R·(d−1)`` Horner steps, each step costing ``step`` encryptions (:func:`step_cost`);
    the responder's mask, re-randomiser and the requester's decryption are one per reply
    whatever B is. B is taken from a few load factors ``m/B`` to minimise
    ``step·R·(d−1) + B·d``, among those with ``d ≤`` :data:`DEFAULT_MAX_DEGREE` when any.
    """
    if m <= 0:
        return 1, 1
    r = responder_size if responder_size is not None else m
    best: tuple[bool, float, int, int] | None = None
    for load in _LOADS:
        b = max(1, math.ceil(m / load))
        d = degree_for(m, b)
        key = (d > DEFAULT_MAX_DEGREE, step * max(1, r) * (d - 1) + b * d, b, d)
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None
    return best[2], best[3]


def security_bits(n_bits: int) -> int:
    """NIST SP 800-57 strength of an RSA/Paillier modulus of ``n_bits``."""
    if n_bits >= 7680:
        return 192
    if n_bits >= 3072:
        return 128
    return 112


# -- payload ------------------------------------------------------------------------------
def payload_capacity(n_bits: int) -> int:
    """Bytes of case reference a payload can carry: the payload stays below 2^(|n|/2 − 8) < p."""
    return (n_bits // 2 - 8) // 8 - ENCODING_BYTES - 2


def encode_payload(encoding: int, case_ref: bytes, n_bits: int) -> int:
    """``pay = (len ‖ case_ref padded ‖ e)`` as a big-endian integer, ``e`` in the low 128 bits."""
    cap = payload_capacity(n_bits)
    if len(case_ref) > cap:
        # The message reaches the requester: it names the key's capacity, never the reference's length.
        raise ValueError(f"the responder's case references do not fit the {cap} bytes a {n_bits}-bit key carries")
    body = len(case_ref).to_bytes(2, "big") + case_ref.ljust(cap, b"\x00")
    return (int.from_bytes(body, "big") << ENCODING_BITS) | encoding


def decode_payload(value: int, n_bits: int) -> tuple[int, bytes] | None:
    """(encoding, case_ref) of a well-formed payload, else None (a random residue almost surely)."""
    cap = payload_capacity(n_bits)
    if value >> (ENCODING_BITS + 8 * (cap + 2)):
        return None
    body = (int(value) >> ENCODING_BITS).to_bytes(cap + 2, "big")
    length = int.from_bytes(body[:2], "big")
    if length > cap or any(body[2 + length :]):
        return None
    return int(value) & _ENC_MASK, body[2 : 2 + length]


# -- wire checks ----------------------------------------------------------------------------
def check_modulus(n: int, max_bits: int = MAX_KEY_BITS) -> None:
    """Refuse a requester key that cannot be a sound Paillier modulus of the allowed size."""
    bits = int(n).bit_length()
    if bits < MIN_KEY_BITS:
        raise InvalidElement(f"Paillier modulus of {bits} bits; at least {MIN_KEY_BITS} are required")
    if bits > max_bits:
        raise InvalidElement(f"Paillier modulus of {bits} bits; this responder allows at most {max_bits}")
    n = mpz(n)
    if n % 2 == 0 or gmpy2.is_square(n) or gmpy2.gcd(n, _SMALL_PRIMES) != 1 or gmpy2.is_prime(n, 25):
        raise InvalidElement(
            "the Paillier modulus is not a product of two large primes (even, square, prime or with a small factor)"
        )


def ciphertext_bytes(n: int) -> int:
    """Fixed wire length of a ciphertext mod n²."""
    return ((mpz(n) * n).bit_length() + 7) // 8


def check_ciphertext(data: bytes, n: mpz, n2: mpz, size: int, index: int = 0) -> mpz:
    """Parse one ciphertext: exactly ``size`` bytes, ``0 < c < n²`` and ``gcd(c, n) = 1``."""
    if not isinstance(data, bytes | bytearray) or len(data) != size:
        raise InvalidElement(f"element {index} is not a {size}-byte Paillier ciphertext")
    c = mpz(int.from_bytes(data, "big"))
    if not 0 < c < n2:
        raise InvalidElement(f"element {index} is not a Paillier ciphertext (out of range 0 < c < n²)")
    if gmpy2.gcd(c, n) != 1:
        raise InvalidElement(f"element {index} is not a Paillier ciphertext (not invertible mod n²)")
    return c


def check_ciphertexts(elements: Sequence[bytes], n: mpz, n2: mpz, size: int, offset: int = 0) -> list[mpz]:
    """:func:`check_ciphertext` of each, with one gcd for the batch.

    ``gcd(∏ c mod n, n) = 1`` exactly when every ``c`` is prime to n (a prime factor of n
    divides the product only if it divides a factor), so one gcd stands for all; when it
    is not 1, the elements are checked one by one to name the first bad one.
    """
    out: list[mpz] = []
    prod = mpz(1)
    for i, data in enumerate(elements):
        if not isinstance(data, bytes | bytearray) or len(data) != size:
            raise InvalidElement(f"element {offset + i} is not a {size}-byte Paillier ciphertext")
        c = mpz(int.from_bytes(data, "big"))
        if not 0 < c < n2:
            raise InvalidElement(f"element {offset + i} is not a Paillier ciphertext (out of range 0 < c < n²)")
        prod = prod * c % n
        out.append(c)
    if gmpy2.gcd(prod, n) != 1:
        for i, data in enumerate(elements):
            check_ciphertext(data, n, n2, size, offset + i)
    return out


def to_wire(c: int, size: int) -> bytes:
    return int(c).to_bytes(size, "big")


# -- fixed-base exponentiation --------------------------------------------------------------
class FixedBase:
    """``base^e mod m`` for ``e < 2^bits`` with a windowed table: ``⌈bits/window⌉`` multiplications.

    ``table[i][j] = base^(j·2^(window·i))``, so ``base^e = ∏_i table[i][digit_i(e)]``. The
    table holds ``⌈bits/window⌉·2^window`` residues: 28·256 for the responder's 224-bit
    exponents at the default 8 bits, 21·2048 (about 12 MiB for a residue mod p² of a
    2048-bit key) at the requester's :data:`REQ_WINDOW`.
    """

    def __init__(self, base: int, modulus: int, bits: int, window: int = _WINDOW) -> None:
        self.m = mpz(modulus)
        self.window = window
        self.windows = max(1, math.ceil(bits / window))
        self.table: list[list[mpz]] = []
        b = mpz(base) % self.m
        for _ in range(self.windows):
            row = [mpz(1), b]
            for _ in range(2, 1 << window):
                row.append(row[-1] * b % self.m)
            self.table.append(row)
            b = row[-1] * b % self.m
        self.bits = bits

    def pow(self, e: int) -> mpz:
        m = self.m
        w = self.window
        mask = (1 << w) - 1
        e = int(e)
        table = self.table
        acc = table[0][e & mask]
        e >>= w
        for i in range(1, len(table)):
            d = e & mask
            if d:
                acc = acc * table[i][d] % m
            e >>= w
        return acc


# -- requester key ----------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class RequesterSecret:
    """The requester's key as plain integers (what its own worker processes need)."""

    n: int
    p: int
    q: int
    hs: int  # h^n mod n² for h = −x² (DJN), the requester's own encryption randomness base

    @property
    def bits(self) -> int:
        return int(self.n).bit_length()

    def __repr__(self) -> str:  # never the primes (nor n, which names the session)
        return f"RequesterSecret(<{self.bits}-bit Paillier key>)"


def _blum_prime(bits: int) -> mpz:
    """A random prime of exactly ``bits`` bits with p ≡ 3 (mod 4), from the CSPRNG."""
    while True:
        start = mpz(secrets.randbits(bits) | (3 << (bits - 2)) | 3)  # top two bits set: p·q has 2·bits bits
        p = gmpy2.next_prime(start)
        while p % 4 != 3:
            p = gmpy2.next_prime(p)
        if p.bit_length() == bits:
            return p


def generate_key(bits: int = DEFAULT_KEY_BITS, *, _allow_small: bool = False) -> RequesterSecret:
    """A fresh Paillier key n = p·q (``p > q``, Blum primes of ``bits/2`` bits each) plus its DJN base.

    The primes are ≡ 3 (mod 4) so that the requester can prove the modulus well formed
    (matcher.protocols.paillier_proof); phe's key generator does not give that.
    """
    if bits < MIN_KEY_BITS and not _allow_small:
        raise ValueError(f"Paillier keys must have at least {MIN_KEY_BITS} bits")
    while True:
        p, q = _blum_prime(bits // 2), _blum_prime(bits - bits // 2)
        n = p * q
        if p != q and n.bit_length() == bits and gmpy2.gcd(n, (p - 1) * (q - 1)) == 1:
            break
    p, q = max(p, q), min(p, q)
    x = mpz(secrets.randbelow(int(n) - 2) + 2)
    hs = gmpy2.powmod(n - x * x % n, n, n * n)
    return RequesterSecret(int(n), int(p), int(q), int(hs))


def alpha_digit_tables(h: int, modulus: int, alpha_bits: int) -> tuple[list[mpz], list[int]]:
    """Bases and digit widths of ``h^α mod modulus`` as a fixed-base product for the compiled
    kernels: ``h^(16^i)`` for each 4-bit digit of an ``alpha_bits``-bit α (each base the one
    before squared four times)."""
    digits = -(-alpha_bits // _KERNEL_ALPHA_WINDOW)
    powers = [mpz(h) % modulus]
    for _ in range(digits - 1):
        powers.append(gmpy2.powmod(powers[-1], 1 << _KERNEL_ALPHA_WINDOW, modulus))
    return powers, [_KERNEL_ALPHA_WINDOW] * digits


class _RequesterCtx:
    """Per-process precomputation for one requester key: CRT constants and DJN tables."""

    def __init__(self, key: RequesterSecret) -> None:
        self.n = mpz(key.n)
        self.p, self.q = mpz(key.p), mpz(key.q)
        self.p2, self.q2 = self.p * self.p, self.q * self.q
        self.n2 = self.n * self.n
        self.alpha_bits = 2 * security_bits(key.bits)
        # h_s^α mod p² and q² from the compiled kernels where they take p² and q² (eight
        # encryptions a pass, α in 4-bit digits read from the same random bytes for both
        # halves), else from gmpy2's fixed-base tables (then built here)
        self.kernel_halves: tuple[modexp_backend.FixedBaseProducts, modexp_backend.FixedBaseProducts] | None = None
        fast = modexp_backend.get()
        if fast is not None and fast.size_for(self.p2) is not None and fast.size_for(self.q2) is not None:
            halves = [fast.fixed_base_products(m2, *alpha_digit_tables(key.hs, m2, self.alpha_bits))
                      for m2 in (self.p2, self.q2)]
            if halves[0] is not None and halves[1] is not None:
                self.kernel_halves = (halves[0], halves[1])
        if self.kernel_halves is None:
            self.tp = FixedBase(key.hs % self.p2, self.p2, self.alpha_bits, REQ_WINDOW)
            self.tq = FixedBase(key.hs % self.q2, self.q2, self.alpha_bits, REQ_WINDOW)
        self.p2_inv_q2 = gmpy2.invert(self.p2, self.q2)
        # hp = L_p(g^(p−1) mod p²)^−1 mod p, with g = 1 + n.
        self.hp = gmpy2.invert((gmpy2.powmod(1 + self.n, self.p - 1, self.p2) - 1) // self.p, self.p)

    @property
    def _alpha_bytes(self) -> int:
        """CSPRNG bytes per encryption in the kernels (α's digits, shared by both CRT halves)."""
        assert self.kernel_halves is not None
        return self.kernel_halves[0].rand_bytes

    def encrypt_many(self, ms: Sequence[int]) -> list[mpz]:
        """:meth:`encrypt` of each: in the compiled kernels eight a pass, one fresh α per plaintext
        used for both CRT halves."""
        if self.kernel_halves is None:
            return [self.encrypt(m) for m in ms]
        if not ms:
            return []
        p2, q2, n = self.p2, self.q2, self.n
        g_ms = [1 + mpz(m) * n for m in ms]
        alphas = bytearray(os.urandom(self._alpha_bytes * len(ms)))
        try:
            cps = self.kernel_halves[0].times_digits([g % p2 for g in g_ms], alphas)
            cqs = self.kernel_halves[1].times_digits([g % q2 for g in g_ms], alphas)
        finally:
            alphas[:] = bytes(len(alphas))
        inv = self.p2_inv_q2
        return [cp + p2 * ((cq - cp) * inv % q2) for cp, cq in zip(cps, cqs, strict=True)]

    def encrypt(self, m: int) -> mpz:
        """``E(m) = (1 + m·n)·h_s^α`` computed mod p² and q², joined by CRT."""
        if self.kernel_halves is not None:
            return self.encrypt_many([m])[0]
        alpha = secrets.randbits(self.alpha_bits)
        g_m = 1 + mpz(m) * self.n
        cp = g_m % self.p2 * self.tp.pow(alpha) % self.p2
        cq = g_m % self.q2 * self.tq.pow(alpha) % self.q2
        return cp + self.p2 * ((cq - cp) * self.p2_inv_q2 % self.q2)

    def decrypt_mod_p(self, c: int) -> mpz:
        """``m mod p = L_p(c^(p−1) mod p²)·hp mod p`` (half a CRT decryption)."""
        x = gmpy2.powmod(mpz(c) % self.p2, self.p - 1, self.p2)
        return (x - 1) // self.p * self.hp % self.p

    def decrypt_many_mod_p(self, cs: Sequence[int]) -> list[mpz]:
        """:meth:`decrypt_mod_p` of each, eight exponentiations per call where AVX-512 IFMA runs them."""
        fast = modexp_backend.get()
        if fast is None or len(cs) < 2 or fast.size_for(self.p2) is None:
            return [self.decrypt_mod_p(c) for c in cs]
        pm1 = self.p - 1
        xs = fast.powmod([mpz(c) % self.p2 for c in cs], [pm1] * len(cs), self.p2, pm1.bit_length())
        return [(x - 1) // self.p * self.hp % self.p for x in xs]


_CTX_CACHE: dict[tuple[object, ...], object] = {}
_Ctx = TypeVar("_Ctx")


def _cached(key: tuple[object, ...], build: Callable[[], _Ctx]) -> _Ctx:
    ctx = _CTX_CACHE.get(key)
    if ctx is None:
        if len(_CTX_CACHE) > 4:
            _CTX_CACHE.clear()
        ctx = _CTX_CACHE[key] = build()
    return cast(_Ctx, ctx)  # the key's first item ("req", "resp") names the kind that build makes


def _requester_ctx(key: RequesterSecret) -> _RequesterCtx:
    return _cached(("req", key.n, key.hs), lambda: _RequesterCtx(key))


def poly_from_roots(roots: Sequence[int], n: int) -> list[mpz]:
    """Coefficients ``[a_0, …, a_{d−1}]`` of the monic ``∏ (x − root) mod n`` (``a_d = 1`` implied).

    Built over the integers and reduced once at the end: the roots are short (128-bit
    encodings, dummies below 2^256), so the products stay far cheaper than a reduction
    mod n after every step.
    """
    coeffs = [mpz(1)]  # highest first during the build
    for root in roots:
        r = mpz(root)
        nxt = coeffs + [mpz(0)]
        for i in range(1, len(nxt)):
            nxt[i] -= r * coeffs[i - 1]
        coeffs = nxt
    n = mpz(n)
    return [c % n for c in reversed(coeffs[1:])]  # a_0 … a_{d−1}


def evaluate_plain(coeffs: Sequence[int], x: int, n: int) -> int:
    """``P(x) mod n`` for coefficients ``[a_0 … a_{d−1}]`` of a monic polynomial (tests, checks)."""
    acc = 1
    for a in reversed(coeffs):
        acc = (acc * x + a) % n
    return acc


def _encrypt_bins(key: RequesterSecret, root_lists: list[list[int]]) -> list[bytes]:
    """Worker task: coefficients of each bin's polynomial, encrypted, as wire bytes (bin-major)."""
    ctx = _requester_ctx(key)
    size = ciphertext_bytes(key.n)
    coefficients = [a for roots in root_lists for a in poly_from_roots(roots, key.n)]
    return [to_wire(c, size) for c in ctx.encrypt_many(coefficients)]


def _decrypt_batch(key: RequesterSecret, elements: list[bytes], offset: int) -> list[int]:
    """Worker task: check and decrypt (mod p) each returned ciphertext."""
    ctx = _requester_ctx(key)
    size = ciphertext_bytes(key.n)
    cs = check_ciphertexts(elements, ctx.n, ctx.n2, size, offset)
    return [int(m) for m in ctx.decrypt_many_mod_p(cs)]


# -- where the batches run -----------------------------------------------------------------------
# The kernels below take a matcher.parallel.Workers (inline, local process pool or Dask),
# the same backend as the ecdh core; ``None`` runs them in this process.


def worker_count(workers: Workers | None) -> int:
    return workers.size if workers is not None else 1


def get_pool(workers: Workers | None) -> Workers:
    """Where paillier's batches run: ``workers`` (None: inline). With the compiled kernels, whose
    arithmetic runs without the GIL, a local process pool gives way to as many threads of this
    process (:func:`matcher.parallel.kernel_threads`, as for ecdh's kernels): no worker process
    to start and import, no batch pickled to one and back. ``MATCHER_KERNEL_POOL=processes``
    keeps the processes; gmpy2 (which holds the GIL) and Dask keep what they are given."""
    if workers is None:
        return inline()
    if isinstance(modexp_backend.get(), modexp_backend.Kernels8):
        return kernel_threads(workers)
    return workers


def warm_tables(build: Callable[[Any], object], secret: object, workers: Workers | None) -> None:
    """Build ``secret``'s tables where the batches will run, without waiting (best effort): in
    each worker process, or once for a pool of threads (they share this process's tables)."""
    if workers is None or workers.size <= 1:
        return
    pool = get_pool(workers)
    for _ in range(workers.size if pool is workers else 1):
        pool.submit(build, secret)


def _warm_requester(key: RequesterSecret) -> None:
    _requester_ctx(key)


def warm_up(key: RequesterSecret, workers: Workers | None) -> None:
    """Start ``workers`` and build this key's tables in each, without waiting (best effort).

    Called as soon as the key exists, so process start-up and the ~0.15 s of tables per
    worker overlap the modulus proof and the responder's checks of the Hello instead of
    delaying the first encryptions.
    """
    warm_tables(_warm_requester, key, workers)


# -- requester half ----------------------------------------------------------------------------
@dataclass(repr=False)
class RequesterQuery:
    """What the requester sends: parameters and the bins' roots (encrypted lazily in chunks)."""

    def __repr__(self) -> str:  # the roots are the requester's token encodings
        return f"RequesterQuery(choices={self.choices}, bins={self.bins}, degree={self.degree}, key={self.key!r})"

    key: RequesterSecret
    seed: int
    bins: int
    degree: int
    root_lists: list[list[int]]
    encodings: dict[int, int]  # encoding -> token index
    choices: int = 1

    @property
    def element_count(self) -> int:
        return self.bins * self.degree


def build_query(
    tokens: Sequence[bytes],
    key: RequesterSecret,
    *,
    responder_size: int | None = None,
    max_choices: int = 2,
    _bins: int | None = None,
    _degree: int | None = None,
    _choices: int | None = None,
) -> RequesterQuery:
    """Encode, bin (fresh xxhash seed) and pad the requester's tokens.

    One choice: each encoding goes to :func:`bin_of`. Two choices (only if ``max_choices``,
    what the responder's Policy says it evaluates, allows): to one of its
    :func:`bins_of`, placed by :func:`place_two_choice` at most ``degree`` per bin.
    ``_bins``/``_degree``/``_choices`` are test-only overrides (to force an overflowing
    bin); when the tokens do not fit the chosen degree (a bin's load, or no two-choice
    placement), the degree is raised until they do: nothing is ever dropped.
    """
    encodings = {encode_token(t): i for i, t in enumerate(tokens)}
    params = choose_params(len(encodings), responder_size, costs_for(key.bits), max_choices)
    choices = _choices or params.choices
    if choices != params.choices:  # test override: the other scheme's plain parameters
        params = (BinParams(2, max(2, len(encodings)), MIN_DEGREE) if choices == 2
                  else BinParams(1, *choose_bins(len(encodings), responder_size)))
    bins, degree = _bins or params.bins, _degree or params.degree
    if choices == 2 and bins < 2:
        raise ValueError("two-choice binning needs at least 2 bins")
    seed = secrets.randbits(64)
    encs = list(encodings)
    if choices == 2:
        pairs = [bins_of(e, seed, bins) for e in encs]
        degree = max(MIN_DEGREE, degree)
        while (placed := place_two_choice(pairs, bins, degree)) is None:
            degree += 1  # probability ≤ 2^-40 (two_choice_failure_log2)
        lists = [[encs[i] for i in content] for content in placed]
    else:
        lists = [[] for _ in range(bins)]
        for e in encs:
            lists[bin_of(e, seed, bins)].append(e)
    # Never degree 1: a bin's only coefficient would be E(−root), from which a dishonest
    # responder computes E(root + payload) and forges a hit with a case reference of its choice.
    degree = max(MIN_DEGREE, degree, max((len(x) for x in lists), default=0))
    for roots in lists:
        while len(roots) < degree:
            roots.append(_DUMMY_LOW + secrets.randbelow(_DUMMY_SPAN))
        secrets.SystemRandom().shuffle(roots)
    return RequesterQuery(key, seed, bins, degree, lists, encodings, choices)


def encrypt_query(query: RequesterQuery, bins_per_task: int, workers: Workers | None = None) -> Iterator[list[bytes]]:
    """The encrypted coefficients, ``bins_per_task`` bins (``·degree`` elements) per yielded list."""
    pool = get_pool(workers)
    tasks = (
        (query.key, query.root_lists[i : i + bins_per_task]) for i in range(0, query.bins, bins_per_task)
    )
    yield from pool.map_ordered(_encrypt_bins, tasks, 2 * worker_count(workers))


def decrypt_replies(
    key: RequesterSecret, elements: Sequence[bytes], offset: int = 0, workers: Workers | None = None
) -> list[int]:
    """Residues mod p of the responder's ciphertexts, in order (each checked first)."""
    pool = get_pool(workers)
    step = max(1, math.ceil(len(elements) / worker_count(workers)))
    tasks = ((key, list(elements[i : i + step]), offset + i) for i in range(0, len(elements), step))
    out: list[int] = []
    for part in pool.map_ordered(_decrypt_batch, tasks, worker_count(workers)):
        out.extend(part)
    return out


def find_hits(query: RequesterQuery, residues: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    """(token index, case reference) for each residue that is a payload of one of our encodings."""
    bits = query.key.bits
    for v in residues:
        decoded = decode_payload(v, bits)
        if decoded is not None and decoded[0] in query.encodings:
            yield query.encodings[decoded[0]], decoded[1]


def count_zeros(residues: Iterable[int]) -> int:
    """Cardinality mode: the number of replies that decrypt to 0."""
    return sum(1 for v in residues if v == 0)
