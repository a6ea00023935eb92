"""pytest-benchmark suite for the paillier kernels (2048-bit key): ``make bench-paillier``."""

from __future__ import annotations

import secrets

import pytest

from matcher.protocols import paillier as pl
from matcher.protocols import paillier_responder as plr

KEY = pl.generate_key(2048)
REQ = pl._RequesterCtx(KEY)
RR = plr.Rerandomiser.new(KEY.n)
RESP = plr._ResponderCtx(RR)
COEFFS = [REQ.encrypt(secrets.randbelow(KEY.n)) for _ in range(17)]
CT = REQ.encrypt(12345)


def test_encrypt_crt_fixed_base(benchmark):
    """One encryption alone (with the compiled kernels a pass of eight lanes for one value)."""
    benchmark(REQ.encrypt, 987654321)


def test_encrypt_many_64(benchmark):
    """64 encryptions as a task of the session makes them (eight a pass in the compiled kernels)."""
    plain = [secrets.randbelow(KEY.n) for _ in range(64)]
    benchmark(REQ.encrypt_many, plain)


def test_decrypt_mod_p(benchmark):
    assert benchmark(REQ.decrypt_mod_p, CT) == 12345


def test_rerandomiser(benchmark):
    """One re-randomiser alone (with the compiled kernels a pass of eight lanes for one value)."""
    benchmark(RESP.rerandomiser)


def test_rerandomised_64(benchmark):
    """64 replies re-randomised at once, as the session does."""
    benchmark(RESP.rerandomised, COEFFS[:16] * 4)


@pytest.mark.parametrize("degree", [2, 17])
def test_evaluate_one(benchmark, degree):
    e = pl.encode_token(b"token")
    benchmark(plr.evaluate_one, RESP, COEFFS[:degree], e, pl.encode_payload(e, b"CASE-1", KEY.bits))


@pytest.mark.parametrize("degree", [2, 17])
def test_evaluate_many_32_replies(benchmark, degree):
    """What one responder task does: 32 replies (Horner, mask, payload, re-randomiser), 8 lanes a call."""
    items = [(COEFFS[:degree], pl.encode_token(b"t%d" % i), 0) for i in range(32)]
    benchmark(plr.evaluate_many, RESP, items)


def test_choose_params_and_place_10k(benchmark):
    """The requester's binning for 10k tokens: the two-choice bound and the placement."""
    def run():
        params = pl.choose_params(10_000, costs=pl.COSTS_MULTI_BUFFER)
        pairs = [pl.bins_of(secrets.randbits(128), 7, params.bins) for _ in range(10_000)]
        return pl.place_two_choice(pairs, params.bins, params.degree)

    assert benchmark(run) is not None


def test_poly_from_roots_degree_14(benchmark):
    roots = [secrets.randbits(128) for _ in range(14)]
    benchmark(pl.poly_from_roots, roots, KEY.n)


def test_phe_encrypt_for_comparison(benchmark):
    from phe import paillier as phe_paillier

    pub = phe_paillier.PaillierPublicKey(KEY.n)
    benchmark(pub.raw_encrypt, 987654321)
