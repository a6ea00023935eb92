"""Eight modular exponentiations per call on AVX-512 IFMA, for protocol ``paillier``.

libcrypto_mb's documented multi-buffer RSA exponentiation (``mbx_exp{1024,2048,3072,4096}_mb8``,
``crypto_mb/exp.h``; constant time in the exponent for a given ``exp_bits``) computes
``base_i^exp_i mod m_i`` for eight lanes at once, several times faster per lane than
``gmpy2.powmod`` on moduli up to 4096 bits. Paillier uses it for the responder's Horner
steps and mask (mod n², so keys up to 2048 bits) and the requester's decryptions (mod p²,
keys up to 4096 bits), eight independent operations per call.

Selected at import on the same conditions as the ristretto255 backend
(:mod:`matcher.protocols.group_backend`: AVX-512 IFMA CPU, the library copy built by
``make``, files writable only by their owner, ``MATCHER_GROUP_BACKEND`` not ``portable``)
plus a known-answer test against ``gmpy2.powmod`` for every size; :func:`get` returns None
otherwise and callers use gmpy2. Loaded with ctypes: the API is public and documented,
so no compiled glue is needed.
"""

from __future__ import annotations

import ctypes
import os
import secrets
from collections.abc import Sequence

import gmpy2
from gmpy2 import mpz

from matcher.protocols import group_backend

LANES = 8
SIZES = (1024, 2048, 3072, 4096)
_u64p = ctypes.POINTER(ctypes.c_uint64)


class ModExp8:
    """``powmod`` of (base, exponent) pairs under one odd modulus, eight lanes per library call."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._fns = {}
        for size in SIZES:
            fn = getattr(lib, f"mbx_exp{size}_mb8")
            fn.restype = ctypes.c_int64 if ctypes.sizeof(ctypes.c_long) == 8 else ctypes.c_int
            fn.argtypes = [_u64p * LANES, _u64p * LANES, _u64p * LANES, ctypes.c_int, _u64p * LANES, ctypes.c_int,
                           ctypes.c_char_p, ctypes.c_int]
            self._fns[size] = fn
        lib.mbx_exp_BufferSize.restype = ctypes.c_int
        lib.mbx_exp_BufferSize.argtypes = [ctypes.c_int]
        self._buffers = {s: ctypes.create_string_buffer(lib.mbx_exp_BufferSize(s)) for s in SIZES}

    @staticmethod
    def size_for(modulus: int) -> int | None:
        """The exponentiation size that takes ``modulus``, or None (then use gmpy2).

        The library works in 52-bit digits and accepts a modulus only with as many
        digits as its size has (e.g. 3069–3072 bits for ``mbx_exp3072_mb8``): n² of a
        2048-bit n and p² of 2048- and 3072-bit keys qualify.
        """
        bits = int(modulus).bit_length()
        return next((s for s in SIZES if 52 * (-(-s // 52) - 1) < bits <= s), None)

    def powmod(self, bases: Sequence[int], exps: Sequence[int], modulus: int, exp_bits: int) -> list[mpz]:
        """``[b^e mod modulus]`` for each pair (any count; run eight lanes at a time).

        ``exp_bits`` bounds every exponent and fixes the work (the time does not depend on
        the exponents' values). ``modulus`` must be odd; bases are reduced first.
        """
        size = self.size_for(modulus)
        if size is None or not int(modulus) & 1:
            raise ValueError("modulus must be odd and of a size the library takes (see size_for)")
        words = size // 64
        nbytes = size // 8
        m = int(modulus)
        fn, buf = self._fns[size], self._buffers[size]
        arr = ctypes.c_uint64 * words
        mod_buf = arr.from_buffer_copy(m.to_bytes(nbytes, "little"))
        mods = (_u64p * LANES)(*([ctypes.cast(mod_buf, _u64p)] * LANES))
        out: list[mpz] = []
        for start in range(0, len(bases), LANES):
            part_b = list(bases[start : start + LANES])
            part_e = list(exps[start : start + LANES])
            k = len(part_b)
            part_b += [1] * (LANES - k)
            part_e += [0] * (LANES - k)
            b_bufs = [arr.from_buffer_copy((int(b) % m).to_bytes(nbytes, "little")) for b in part_b]
            e_bufs = [arr.from_buffer_copy(int(e).to_bytes(nbytes, "little")) for e in part_e]
            o_bufs = [arr() for _ in range(LANES)]
            status = fn((_u64p * LANES)(*[ctypes.cast(x, _u64p) for x in o_bufs]),
                        (_u64p * LANES)(*[ctypes.cast(x, _u64p) for x in b_bufs]),
                        (_u64p * LANES)(*[ctypes.cast(x, _u64p) for x in e_bufs]),
                        exp_bits, mods, m.bit_length(), buf, len(buf))
            if status != 0:
                raise RuntimeError(f"mbx_exp{size}_mb8 failed (status {status:#x})")
            out.extend(mpz(int.from_bytes(bytes(o), "little")) for o in o_bufs[:k])
            for x in e_bufs:  # exponents may be secret (Paillier's p − 1, masks)
                ctypes.memset(x, 0, ctypes.sizeof(x))
        return out


def self_test(fast: ModExp8) -> None:
    """Known answers against gmpy2: every size with 64-bit exponents (eight lanes and a partial
    batch, a modulus shorter than the size), and full-width exponents at 1024 bits."""
    for size in SIZES:
        for m, n, exp_bits in ((size, LANES, 64), (size - 3, 3, 64), (size, 2, size) if size == 1024 else (0, 0, 0)):
            if not n:
                continue
            mod = mpz(secrets.randbits(m) | (1 << (m - 1)) | 1)
            bases = [mpz(secrets.randbits(m)) % mod for _ in range(n)]
            exps = [mpz(secrets.randbits(exp_bits)) for _ in range(n)]
            expected = [gmpy2.powmod(b, e, mod) for b, e in zip(bases, exps, strict=True)]
            if fast.powmod(bases, exps, mod, exp_bits) != expected:
                raise group_backend.SelfTestFailed(f"mbx_exp{size}_mb8 differs from gmpy2")


_selected: tuple[ModExp8 | None, str] | None = None


def get() -> ModExp8 | None:
    """The multi-buffer exponentiation if it can be used here, else None (use gmpy2).

    Chosen on first use (not at import: only paillier sessions need it).
    """
    global _selected
    if _selected is None:
        _selected = _select()
    return _selected[0]


def describe() -> str:
    """Which modular exponentiation paillier uses here, for start-up and benchmark output."""
    get()
    assert _selected is not None
    return _selected[1]


def _select() -> tuple[ModExp8 | None, str]:
    if group_backend.NAME != "ifma":
        return None, "gmpy2 (the IFMA backend is not in use here)"
    from matcher.protocols._ifma import build

    path = build.BUILD / build.LIB_NAME
    bad = group_backend._safe_to_load(str(path)) if path.exists() else f"{path.name} not built"
    if bad:
        return None, f"gmpy2 ({bad})"
    try:
        fast = ModExp8(ctypes.CDLL(os.fspath(path)))
        self_test(fast)
    except (OSError, AttributeError, RuntimeError, group_backend.SelfTestFailed) as e:
        return None, f"gmpy2 (mbx_exp unavailable: {e})"
    return fast, f"mbx_exp*_mb8 (libcrypto_mb {build.IPP_CRYPTO_VERSION}, 8 lanes, known-answer test passed)"
