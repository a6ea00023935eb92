"""Proof that a Paillier modulus is well formed (Paillier–Blum modulus proof, Πmod of CGGMP21).

The responder evaluates polynomials under the *requester's* key, so the key must be
what it claims: N = p·q with p, q distinct primes. A requester that builds N from many
mid-size primes can decrypt each reply modulo each small prime and learn about
responder tokens it does not hold; size and small-factor checks cannot see that.

Statement: N is odd, gcd(N, φ(N)) = 1 and N = p^i·q^j with p ≡ q ≡ 3 (mod 4) — with the
first condition this means N = p·q, a product of two distinct Blum primes.

Proof (made non-interactive with SHAKE-256 over N and w, Fiat–Shamir): the prover picks w
with Jacobi symbol (w|N) = −1; for each challenge y_i ∈ Z_N* it sends
  z_i = y_i^(N⁻¹ mod φ(N))          (an N-th root: exists for all y only if gcd(N, φ(N)) = 1)
  a_i, b_i ∈ {0, 1} and x_i with x_i⁴ = (−1)^a_i · w^b_i · y_i (mod N).
For a product of two Blum primes exactly one of the four values (±1)·(1 or w)·y is a
quadratic residue with a fourth root; with a third prime factor a challenge has one only
with probability 1/2, so a cheating prover passes M = 80 challenges with chance 2^-80.
The verifier checks z_i^N ≡ y_i and x_i⁴ ≡ (−1)^a_i w^b_i y_i for every i.
"""

from __future__ import annotations

import hashlib

import gmpy2
from gmpy2 import mpz

from matcher.errors import InvalidElement
from matcher.protocols import modexp_backend

#: challenges: soundness error 2^-M
M = 80
_DOMAIN = b"matcher/v1/paillier-blum-modulus\x00"


def _size(n: int) -> int:
    return (int(n).bit_length() + 7) // 8


def _challenges(n: mpz, w: mpz) -> list[mpz]:
    size = _size(n)
    seed = _DOMAIN + int(n).to_bytes(size, "big") + int(w).to_bytes(size, "big")
    out: list[mpz] = []
    i = 0
    while len(out) < M:
        y = mpz(int.from_bytes(hashlib.shake_256(seed + i.to_bytes(4, "big")).digest(size + 16), "big")) % n
        i += 1
        if y > 1 and gmpy2.gcd(y, n) == 1:
            out.append(y)
    return out


def _fourth_root_mod(a: mpz, p: mpz) -> mpz:
    """A fourth root of the quadratic residue ``a`` modulo the Blum prime ``p``."""
    r = gmpy2.powmod(a, (p + 1) // 4, p)
    if gmpy2.legendre(r, p) != 1:  # exactly one of ±r is a residue when p ≡ 3 (mod 4)
        r = p - r
    return gmpy2.powmod(r, (p + 1) // 4, p)


def prove(n: int, p: int, q: int) -> bytes:
    """The proof for ``n = p·q`` (p ≡ q ≡ 3 mod 4), as bytes: w, then (x_i, z_i, a_i‖b_i) for each i."""
    n, p, q = mpz(n), mpz(p), mpz(q)
    if p % 4 != 3 or q % 4 != 3 or p * q != n:
        raise ValueError("the modulus proof needs n = p·q with p ≡ q ≡ 3 (mod 4)")
    size = _size(n)
    w = mpz(2)
    while gmpy2.jacobi(w, n) != -1:
        w += 1
    phi = (p - 1) * (q - 1)
    n_inv = gmpy2.invert(n, phi)
    dp, dq = n_inv % (p - 1), n_inv % (q - 1)  # z = y^(n⁻¹ mod φ) by CRT: two half-size exponentiations
    q_inv_p = gmpy2.invert(q, p)
    out = [int(w).to_bytes(size, "big")]
    for y in _challenges(n, w):
        zp, zq = gmpy2.powmod(y % p, dp, p), gmpy2.powmod(y % q, dq, q)
        z = zq + q * ((zp - zq) * q_inv_p % p)
        for a in (0, 1):
            for b in (0, 1):
                v = (-y if a else y) * (w if b else 1) % n
                if gmpy2.legendre(v % p, p) == 1 and gmpy2.legendre(v % q, q) == 1:
                    break
            else:
                continue
            break
        xp, xq = _fourth_root_mod(v % p, p), _fourth_root_mod(v % q, q)
        x = (xq + q * ((xp - xq) * q_inv_p % p)) % n  # CRT
        out.append(int(x).to_bytes(size, "big") + int(z).to_bytes(size, "big") + bytes([2 * a + b]))
    return b"".join(out)


def verify(n: int, proof: bytes) -> None:
    """Refuse ``n`` unless ``proof`` shows it is a product of two distinct Blum primes."""
    n = mpz(n)
    size = _size(n)
    if len(proof) != size + M * (2 * size + 1):
        raise InvalidElement("the Paillier modulus proof is missing or has the wrong length")
    if n % 2 == 0 or gmpy2.is_prime(n, 25):
        raise InvalidElement("the Paillier modulus is even or prime")
    w = mpz(int.from_bytes(proof[:size], "big"))
    if not 0 < w < n:
        raise InvalidElement("the Paillier modulus proof is malformed")
    ys = _challenges(n, w)
    xs, zs, vs = [], [], []
    for i, y in enumerate(ys):
        at = size + i * (2 * size + 1)
        x = mpz(int.from_bytes(proof[at : at + size], "big"))
        z = mpz(int.from_bytes(proof[at + size : at + 2 * size], "big"))
        ab = proof[at + 2 * size]
        if ab > 3 or not 0 < x < n or not 0 < z < n:
            raise InvalidElement("the Paillier modulus proof is malformed")
        xs.append(x)
        zs.append(z)
        vs.append((-y if ab & 2 else y) * (w if ab & 1 else 1) % n)
    fast = modexp_backend.get()
    if fast is not None and fast.size_for(n) is not None:  # public values: eight z^n per call
        z_n = fast.powmod(zs, [n] * len(zs), n, n.bit_length())
    else:
        z_n = [gmpy2.powmod(z, n, n) for z in zs]
    for y, x, v, zn in zip(ys, xs, vs, z_n, strict=True):
        if zn != y or gmpy2.powmod(x, 4, n) != v:
            raise InvalidElement(
                "the Paillier modulus proof does not verify: the key is not shown to be a product of two primes"
            )
