"""Paillier's multi-buffer exponentiation (AVX-512 IFMA) gives gmpy2's answers, and is optional."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import gmpy2
import pytest
from gmpy2 import mpz

from matcher.protocols import modexp_backend
from matcher.protocols import paillier as pl
from matcher.protocols import paillier_responder as plr

ROOT = Path(__file__).resolve().parent.parent
FAST = modexp_backend.get()
needs_fast = pytest.mark.skipif(
    FAST is None, reason=f"multi-buffer exponentiation not in use: {modexp_backend.describe()}"
)
KEY = pl.generate_key(2048)


@needs_fast
@pytest.mark.parametrize("bits", [1024, 2047, 3071, 4096])
@pytest.mark.parametrize("count", [1, 7, 8, 9, 17])
def test_powmod_equals_gmpy2_for_every_size_and_batch(bits, count):
    m = mpz(secrets.randbits(bits) | (1 << (bits - 1)) | 1)
    bases = [mpz(secrets.randbits(bits + 5)) for _ in range(count)]  # some above the modulus
    exps = [mpz(secrets.randbits(128)) for _ in range(count)]
    assert FAST.powmod(bases, exps, m, 128) == [gmpy2.powmod(b, e, m) for b, e in zip(bases, exps, strict=True)]


def test_size_for_takes_only_moduli_the_library_accepts():
    assert modexp_backend.ModExp8.size_for(2**4095 + 1) == 4096
    assert modexp_backend.ModExp8.size_for(2**3070 + 1) == 3072
    assert modexp_backend.ModExp8.size_for(2**3060 + 1) is None  # fewer 52-bit digits than 3072 bits have
    assert modexp_backend.ModExp8.size_for(2**6000 + 1) is None  # n² of a 3072-bit key: gmpy2


def _without_fast(monkeypatch):
    monkeypatch.setattr(modexp_backend, "_selected", (None, "gmpy2 (test)"))


@needs_fast
def test_batched_decryptions_equal_one_by_one(monkeypatch):
    ctx = pl._RequesterCtx(KEY)
    plain = [secrets.randbelow(KEY.n) for _ in range(11)]
    cts = [ctx.encrypt(m) for m in plain]
    fast = ctx.decrypt_many_mod_p(cts)
    _without_fast(monkeypatch)
    assert fast == ctx.decrypt_many_mod_p(cts) == [m % KEY.p for m in plain]


@needs_fast
def test_lockstep_horner_decrypts_like_one_by_one(monkeypatch):
    """Roots of the bin polynomial give their payload, other encodings give noise, on both paths."""
    ctx = pl._RequesterCtx(KEY)
    roots = [secrets.randbits(pl.ENCODING_BITS) for _ in range(5)]
    coeffs = [ctx.encrypt(a) for a in pl.poly_from_roots(roots, KEY.n)]
    others = [secrets.randbits(pl.ENCODING_BITS) for _ in range(6)]
    items = [(coeffs, e, 1000 + i) for i, e in enumerate(roots + others)]
    rctx = plr._responder_ctx(plr.Rerandomiser.new(KEY.n))

    def residues():
        return ctx.decrypt_many_mod_p(plr.evaluate_many(rctx, items))

    fast = residues()
    _without_fast(monkeypatch)
    slow = residues()
    for got in (fast, slow):
        assert got[:5] == [1000 + i for i in range(5)]
        assert all(r != 1000 + 5 + i for i, r in enumerate(got[5:]))


def test_forced_portable_uses_gmpy2():
    out = subprocess.run(
        [sys.executable, "-c", "from matcher.protocols import modexp_backend as m; print(m.describe())"],
        env=dict(os.environ, MATCHER_GROUP_BACKEND="portable"), capture_output=True, text=True, cwd=ROOT, check=True,
    )
    assert out.stdout.startswith("gmpy2 (the IFMA backend is not in use here)")
