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


# -- the compiled kernels (_ifma/paillier_ifma.c): exponentiation on the library's squarings,
# -- fixed-base products for the responder's re-randomisers

KERNELS = FAST if isinstance(FAST, modexp_backend.Kernels8) else None
needs_kernels = pytest.mark.skipif(KERNELS is None, reason=f"compiled paillier kernels not in use: "
                                                             f"{modexp_backend.describe()}")


def _mbx() -> modexp_backend.ModExp8:
    return modexp_backend.library_modexp()


@needs_kernels
@pytest.mark.parametrize("bits", [1024, 2040, 2048, 3071, 4095, 4096])
@pytest.mark.parametrize("exp_bits", [1, 5, 64, 127, 1024])
def test_kernel_powmod_equals_gmpy2_and_mbx_exp_at_the_edges(bits, exp_bits):
    """Bases 0, 1, m−1 and above m; exponents 0, 1 and all ones; lengths not a multiple of the window."""
    m = mpz(secrets.randbits(bits) | (1 << (bits - 1)) | 1)
    bases = [mpz(0), mpz(1), m - 1, m + 5, *(mpz(secrets.randbits(bits)) for _ in range(7))]
    exps = [mpz((1 << exp_bits) - 1), mpz(1), mpz(0), *(mpz(secrets.randbits(exp_bits)) for _ in range(8))]
    want = [gmpy2.powmod(b, e, m) for b, e in zip(bases, exps, strict=True)]
    assert KERNELS.powmod(bases, exps, m, exp_bits) == want
    assert _mbx().powmod(bases, exps, m, exp_bits) == want


@needs_kernels
@pytest.mark.parametrize("count", [1, 7, 8, 9, 17])
def test_kernel_powmod_of_full_width_exponents_mod_a_paillier_n_squared(count):
    n2 = mpz(KEY.n) ** 2
    bases = [mpz(secrets.randbelow(int(n2))) for _ in range(count)]
    exps = [mpz(secrets.randbelow(KEY.n)) for _ in range(count)]
    assert KERNELS.powmod(bases, exps, n2, KEY.n.bit_length()) == [
        gmpy2.powmod(b, e, n2) for b, e in zip(bases, exps, strict=True)]


@needs_kernels
@pytest.mark.parametrize("bits", [1024, 2048, 4096])
@pytest.mark.parametrize("count", [1, 8, 13])
def test_fixed_base_products_equal_gmpy2_for_the_same_digits(bits, count):
    m = mpz(secrets.randbits(bits) | (1 << (bits - 1)) | 1)
    widths = [1, 4, 8, 3, 5, 4, 8]
    bases = [mpz(secrets.randbelow(int(m))) for _ in widths]
    products = KERNELS.fixed_base_products(m, bases, widths)
    values = [mpz(secrets.randbits(bits + 3)) for _ in range(count)]  # some above m
    rand_bytes = (sum(widths) + 7) // 8 + 2
    rand = os.urandom(rand_bytes * count)
    assert products.times_digits(values, rand) == modexp_backend.fixed_base_reference(
        values, bases, widths, m, rand, rand_bytes)


@needs_kernels
def test_the_kernels_refuse_what_they_cannot_compute():
    m = mpz(secrets.randbits(2048) | (1 << 2047) | 1)
    with pytest.raises(ValueError):
        KERNELS.powmod([2], [3], m + 1, 8)  # even
    with pytest.raises(ValueError):
        KERNELS.powmod([2], [3], mpz(1) << 5000 | 1, 8)  # no size takes it
    assert KERNELS.fixed_base_products(mpz(2**3000 + 1), [3], [4]) is None  # 3001 bits: fewer digits than 3072's
    with pytest.raises(ValueError):
        KERNELS.fixed_base_products(m, [3, 5], [4])  # a width per base
    with pytest.raises(ValueError):
        KERNELS.fixed_base_products(m, [3], [9])  # tables of at most 256 entries
    kernels = KERNELS._k
    mod, k0, r2 = modexp_backend._montgomery(m, 2048)
    with pytest.raises(ValueError):  # exponents of the wrong length for exp_bits
        kernels.powmod(mod, k0, r2, bytes(256), bytes(3), 64)
    with pytest.raises(ValueError):  # random bytes of the wrong length
        kernels.rerandomise(mod, k0, kernels.digits(bytes(256 * 16), 256), bytes([4]), bytes(256), bytes(1))


@needs_kernels
def test_a_kernel_rerandomised_ciphertext_decrypts_to_the_same_plaintext_and_is_fresh(monkeypatch):
    """The compiled re-randomiser multiplies by n-th residues only (the plaintext stays), each time
    another one; the gmpy2 tables (forced) agree on the plaintexts."""
    ctx = pl._RequesterCtx(KEY)
    rr = plr.Rerandomiser.new(KEY.n)
    rctx = plr._ResponderCtx(rr)
    assert rctx.products is not None
    plain = [secrets.randbelow(KEY.n) for _ in range(9)]
    cts = [ctx.encrypt(m) for m in plain]
    once, twice = rctx.rerandomised(cts), rctx.rerandomised(cts)
    assert len({*once, *twice, *cts}) == 27
    assert ctx.decrypt_many_mod_p(once) == ctx.decrypt_many_mod_p(twice) == [m % KEY.p for m in plain]
    _without_fast(monkeypatch)
    slow = plr._ResponderCtx(rr)
    assert slow.products is None
    assert ctx.decrypt_many_mod_p(slow.rerandomised(cts)) == [m % KEY.p for m in plain]


@needs_kernels
def test_without_the_compiled_kernels_mbx_exp_is_chosen_and_says_why(monkeypatch, tmp_path):
    from matcher.protocols._ifma import build

    monkeypatch.setattr(build, "paillier_path", lambda: tmp_path / "_paillier_ifma.so")
    fast, how = modexp_backend._select()
    assert isinstance(fast, modexp_backend.ModExp8)
    assert how.startswith("mbx_exp*_mb8") and "the compiled kernels: not built" in how
    monkeypatch.setattr(modexp_backend, "_selected", (fast, how))
    rctx = plr._ResponderCtx(plr.Rerandomiser.new(KEY.n))
    assert rctx.products is None  # the library has no fixed-base products: gmpy2's tables


@needs_kernels
def test_kernel_encryptions_are_the_formula_with_one_alpha_for_both_halves(monkeypatch):
    """E(m) = (1 + m·n)·h_s^α mod n², α read from the CSPRNG bytes (56 4-bit digits, little-endian)
    and the same for the p² and q² halves; a full decryption mod n gives m back."""
    ctx = pl._RequesterCtx(KEY)
    assert ctx.kernel_halves is not None
    plain = [0, 1, KEY.n - 1, *(secrets.randbelow(KEY.n) for _ in range(8))]
    per = ctx._alpha_bytes
    rand = os.urandom(per * len(plain))
    monkeypatch.setattr(pl.os, "urandom", lambda k: rand[:k])
    got = ctx.encrypt_many(plain)
    monkeypatch.undo()
    n = mpz(KEY.n)
    n2 = n * n
    for i, m in enumerate(plain):
        alpha = int.from_bytes(rand[i * per : i * per + ctx.alpha_bits // 8], "little")
        assert got[i] == (1 + m * n) * gmpy2.powmod(KEY.hs, alpha, n2) % n2
    lam = (KEY.p - 1) * (KEY.q - 1)
    mu = gmpy2.invert((gmpy2.powmod(1 + n, lam, n2) - 1) // n, n)
    assert [(gmpy2.powmod(c, lam, n2) - 1) // n * mu % n for c in got] == plain
    assert len(set(ctx.encrypt_many([5] * 8))) == 8  # fresh randomness for each


@needs_kernels
def test_without_the_kernels_encryptions_decrypt_the_same(monkeypatch):
    ctx = pl._RequesterCtx(KEY)
    plain = [secrets.randbelow(KEY.n) for _ in range(9)]
    fast = ctx.encrypt_many(plain)
    _without_fast(monkeypatch)
    slow_ctx = pl._RequesterCtx(KEY)
    assert slow_ctx.kernel_halves is None
    slow = slow_ctx.encrypt_many(plain)
    assert ctx.decrypt_many_mod_p(fast) == ctx.decrypt_many_mod_p(slow) == [m % KEY.p for m in plain]


@needs_kernels
def test_the_kernels_refuse_inputs_at_or_above_the_modulus_and_long_exponents():
    m = mpz(secrets.randbits(2048) | (1 << 2047) | 1)
    mod, k0, r2 = modexp_backend._montgomery(m, 2048)
    kernels = KERNELS._k
    for bad in (m, m + 1):
        with pytest.raises(ValueError, match="base 1 is not below the modulus"):
            kernels.powmod(mod, k0, r2, bytes(256) + int(bad).to_bytes(256, "little"), bytes(2 * 10), 64)
        with pytest.raises(ValueError, match="value 0 is not below the modulus"):
            kernels.rerandomise(mod, k0, kernels.digits(bytes(256 * 16), 256), bytes([4]),
                                int(bad).to_bytes(256, "little"), bytes(3))
    assert kernels.powmod(mod, k0, r2, int(m - 1).to_bytes(256, "little"), bytes(10), 64) == bytes(
        [1] + [0] * 255)  # (m−1)^0 = 1: m − 1 itself is taken
    with pytest.raises(ValueError, match="below 2\\^exp_bits"):
        KERNELS.powmod([2], [1 << 64], m, 64)


@needs_kernels
def test_the_c_kernels_read_no_exponent_bit_above_exp_bits_and_check_k0():
    m = mpz(secrets.randbits(2048) | (1 << 2047) | 1)
    mod, k0, r2 = modexp_backend._montgomery(m, 2048)
    kernels = KERNELS._k
    three = (3).to_bytes(256, "little")
    # exp_bits 7, exponent bytes 0x3ff: only 0x7f is the exponent (a stray bit above is not read)
    got = kernels.powmod(mod, k0, r2, three, b"\xff\x03\x00", 7)
    assert int.from_bytes(got, "little") == pow(3, 0x7F, int(m))
    with pytest.raises(ValueError, match="k0"):
        kernels.powmod(mod, k0 ^ 2, r2, three, b"\x01\x00\x00", 7)
    with pytest.raises(ValueError, match="exp_bits"):
        kernels.powmod(mod, k0, r2, three, b"\x01\x00\x00", 2**62)
    with pytest.raises(ValueError, match="aligned"):  # a table buffer that does not start on a word
        kernels.rerandomise(mod, k0, memoryview(bytearray(8 + 48 * 8 * 2))[8 - 1 : -1], bytes([1]),
                            bytes(256), bytes(3))


@needs_kernels
def test_with_the_kernels_paillier_batches_run_on_threads_unless_processes_are_asked_for(monkeypatch):
    from matcher.parallel import ThreadWorkers, Workers

    pool = Workers(processes=2)
    try:
        assert isinstance(pl.get_pool(pool), ThreadWorkers) and pl.get_pool(pool).size == 2
        monkeypatch.setenv("MATCHER_KERNEL_POOL", "processes")
        assert pl.get_pool(pool) is pool
        monkeypatch.delenv("MATCHER_KERNEL_POOL")
        _without_fast(monkeypatch)  # gmpy2 holds the GIL: worker processes
        assert pl.get_pool(pool) is pool
    finally:
        pool.close()
    assert pl.get_pool(None).size == 1
