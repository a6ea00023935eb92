"""Eight modular exponentiations per call on AVX-512 IFMA, for protocol ``paillier``.

Two implementations of one interface (``size_for``, ``powmod``, ``fixed_base_products``),
both computing ``base_i^exp_i mod m`` for eight lanes at once, several times faster per
lane than ``gmpy2.powmod`` on moduli up to 4096 bits, constant time in the exponents for a
given ``exp_bits``:

* :class:`Kernels8` (preferred), the compiled ``_ifma/paillier_ifma.c``: a fixed 5-bit
  window exponentiation on libcrypto_mb's fast almost-Montgomery *squaring*, with each
  Montgomery product computed as two squarings, ``ab = ((a+b)² − (a−b)²)/4``. The library's
  own product (``ifma_amm52x79_mb8``) is 5.4× slower than its squaring at 4096 bits, and takes
  half of ``mbx_exp4096_mb8``'s time; here a 2048-bit exponent mod a 4096-bit n² costs about
  0.7× of ``mbx_exp`` (``docs/performance.md``). It also multiplies values by products of
  fixed-base table entries chosen by random digits (:class:`FixedBaseProducts`: the
  responder's re-randomisers, about 8× cheaper than gmpy2's table products).
* :class:`ModExp8`, libcrypto_mb's documented multi-buffer RSA exponentiation
  (``mbx_exp{1024,2048,3072,4096}_mb8``, ``crypto_mb/exp.h``), loaded with ctypes; used
  where the compiled kernels are not built or fail their known-answer test.

Paillier uses them for the responder's Horner steps, masks and re-randomisers (mod n², so
keys up to 2048 bits), the requester's decryptions (mod p², keys up to 4096 bits) and the
modulus proof's check, eight independent operations per call.

Selected on first use on the same conditions as the ristretto255 backend
(:mod:`matcher.protocols.group_backend`: AVX-512 IFMA CPU, the library copy built by
``make``, files writable only by their owner, ``MATCHER_GROUP_BACKEND`` not ``portable``)
plus a known-answer test against gmpy2 for every size; :func:`get` returns None otherwise
and callers use gmpy2.
"""

from __future__ import annotations

import ctypes
import os
import secrets
from collections.abc import Sequence
from types import ModuleType

import gmpy2
from gmpy2 import mpz

from matcher.protocols import group_backend

LANES = 8
SIZES = (1024, 2048, 3072, 4096)
_u64p = ctypes.POINTER(ctypes.c_uint64)


class _EightLanes:
    """What both implementations share: which moduli they take, and the check of one."""

    @staticmethod
    def size_for(modulus: int) -> int | None:
        """The exponentiation size that takes ``modulus``, or None (then use gmpy2).

        The library works in 52-bit digits and accepts a modulus only with as many
        digits as its size has (e.g. 3069–3072 bits for ``mbx_exp3072_mb8``): n² of a
        2048-bit n and p² of 2048- and 3072-bit keys qualify.
        """
        bits = int(modulus).bit_length()
        return next((s for s in SIZES if 52 * (-(-s // 52) - 1) < bits <= s), None)

    def _size_checked(self, modulus: int) -> int:
        """:meth:`size_for` of an odd ``modulus``, else ValueError (``powmod`` of both implementations:
        ``[b^e mod modulus]`` for each pair, any count, eight lanes at a time; ``exp_bits`` bounds
        every exponent and fixes the work, the time does not depend on the exponents' values;
        bases are reduced first; the compiled kernels refuse an exponent of more than ``exp_bits``
        bits, ``mbx_exp`` would cut it)."""
        size = self.size_for(modulus)
        if size is None or not int(modulus) & 1:
            raise ValueError("modulus must be odd and of a size the library takes (see size_for)")
        return size


class ModExp8(_EightLanes):
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

    def fixed_base_products(self, modulus: int, bases: Sequence[int], widths: Sequence[int]) -> None:
        """None: the library has no fixed-base products (callers use gmpy2's tables)."""
        return None

    def powmod(self, bases: Sequence[int], exps: Sequence[int], modulus: int, exp_bits: int) -> list[mpz]:
        """``[b^e mod modulus]`` for each pair, eight lanes per ``mbx_exp`` call (see ``_size_checked``)."""
        size = self._size_checked(modulus)
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


def _values(out: bytes, width: int) -> list[mpz]:
    """The kernels' results: ``width``-byte little-endian values, concatenated."""
    return [mpz(int.from_bytes(out[i : i + width], "little")) for i in range(0, len(out), width)]


def library_modexp() -> ModExp8:
    """libcrypto_mb's own ``mbx_exp`` from the library copy built by ``make`` (for the fallback and
    for side-by-side measurements; raises OSError if it is not there)."""
    from matcher.protocols._ifma import build

    return ModExp8(ctypes.CDLL(os.fspath(build.BUILD / build.LIB_NAME)))


def _montgomery(modulus: int, size: int) -> tuple[bytes, int, bytes]:
    """``(m as size little-endian bytes, k0 = −m⁻¹ mod 2⁵², R² mod m)`` with R = 2^(52·digits)."""
    m = mpz(modulus)
    digits = -(-size // 52)
    r = mpz(1) << (52 * digits)
    k0 = int(-gmpy2.invert(m, mpz(1) << 52) % (mpz(1) << 52))
    return int(m).to_bytes(size // 8, "little"), k0, int(r * r % m).to_bytes(size // 8, "little")


class Kernels8(_EightLanes):
    """``powmod`` and fixed-base products of the compiled kernels (``_ifma/paillier_ifma.c``)."""

    def __init__(self, module: ModuleType) -> None:
        self._k = module
        self._consts: dict[int, tuple[bytes, int, bytes]] = {}

    def _constants(self, modulus: int, size: int) -> tuple[bytes, int, bytes]:
        consts = self._consts.get(modulus)
        if consts is None:
            if len(self._consts) > 8:
                self._consts.clear()
            consts = self._consts[modulus] = _montgomery(modulus, size)
        return consts

    def powmod(self, bases: Sequence[int], exps: Sequence[int], modulus: int, exp_bits: int) -> list[mpz]:
        """``[b^e mod modulus]`` for each pair, eight lanes a pass in C (see ``_size_checked``)."""
        size = self._size_checked(modulus)
        m = mpz(modulus)
        mod, k0, r2 = self._constants(m, size)
        width, ebytes = size // 8, (exp_bits + 7) // 8 + 2
        if not bases:
            return []
        if len(exps) != len(bases) or any(e < 0 or int(e).bit_length() > exp_bits for e in exps):
            raise ValueError("one exponent per base, each below 2^exp_bits")
        packed_exps = bytearray(b"".join(int(e).to_bytes(ebytes, "little") for e in exps))
        try:
            out = self._k.powmod(mod, k0, r2, b"".join(int(b % m).to_bytes(width, "little") for b in bases),
                                 packed_exps, exp_bits)
        finally:  # exponents may be secret (Paillier's p − 1, masks): our packed copy is wiped (best
            # effort: Python's temporary per-exponent bytes are freed unwiped)
            packed_exps[:] = bytes(len(packed_exps))
        return _values(out, width)

    def fixed_base_products(self, modulus: int, bases: Sequence[int],
                            widths: Sequence[int]) -> FixedBaseProducts | None:
        """:class:`FixedBaseProducts` for ``bases`` with digits of ``widths`` bits, or None if
        the kernels do not take ``modulus``."""
        size = self.size_for(modulus)
        if size is None or not int(modulus) & 1:
            return None
        return FixedBaseProducts(self._k, self._constants(mpz(modulus), size), mpz(modulus), bases, widths)


class FixedBaseProducts:
    """``v · ∏_t base_t^{d_t} mod m`` for fresh random digits ``d_t`` of ``widths[t]`` bits.

    The tables hold ``base_t^j·R mod m`` for ``j < 2^{widths[t]}`` (Montgomery form); for each
    value the kernel reads its digits from fresh CSPRNG bytes, picks each table's entry by a
    masked scan of the whole table (no secret-dependent address) and multiplies. The
    responder's re-randomiser ``h_s^α · ∏_j X_j^{β_j}`` is this product with the tables of
    ``h_s^(16^i)`` (4-bit digits of α) and ``X_j`` (8-bit β_j).
    """

    def __repr__(self) -> str:  # the tables are the responder's secret bases
        return f"FixedBaseProducts(<{len(self._widths)} tables>)"

    def __init__(self, kernels: ModuleType, consts: tuple[bytes, int, bytes], modulus: mpz,
                 bases: Sequence[int], widths: Sequence[int]) -> None:
        if len(bases) != len(widths) or not bases or any(not 1 <= w <= 8 for w in widths):
            raise ValueError("one width of 1 to 8 bits per base")
        self._k, (self._mod, self._k0, _) = kernels, consts
        self.m = modulus
        size = len(self._mod)
        r = (mpz(1) << (52 * -(-8 * size // 52))) % modulus
        entries = []
        for base, w in zip(bases, widths, strict=True):
            b, x = mpz(base) % modulus, r
            for _ in range(1 << w):
                entries.append(int(x).to_bytes(size, "little"))
                x = x * b % modulus
        self._tables = kernels.digits(b"".join(entries), size)
        self._widths = bytes(widths)
        self._rand_bytes = (sum(widths) + 7) // 8 + 2

    @property
    def rand_bytes(self) -> int:
        """Random bytes the kernel reads per value (the digits, plus 2 it reads past them)."""
        return self._rand_bytes

    def times_random(self, values: Sequence[int]) -> list[mpz]:
        """Each value times its own fresh random product, mod m (eight values per pass in C)."""
        if not values:
            return []
        rand = bytearray(os.urandom(self._rand_bytes * len(values)))
        try:
            return self.times_digits(values, rand)
        finally:
            rand[:] = bytes(len(rand))

    def times_digits(self, values: Sequence[int], rand: bytes | bytearray) -> list[mpz]:
        """:meth:`times_random` with the given random bytes: for digits that must be shared
        (the requester's α for both CRT halves of an encryption) and for known-answer tests."""
        size, m = len(self._mod), self.m
        out = self._k.rerandomise(self._mod, self._k0, self._tables, self._widths,
                                  b"".join(int(v % m).to_bytes(size, "little") for v in values), rand)
        return _values(out, size)


def fixed_base_reference(values: Sequence[int], bases: Sequence[int], widths: Sequence[int], modulus: int,
                         rand: bytes, rand_bytes: int) -> list[mpz]:
    """What :meth:`FixedBaseProducts.times_digits` computes, with gmpy2 (the oracle)."""
    m = mpz(modulus)
    out = []
    for i, v in enumerate(values):
        bits = int.from_bytes(rand[i * rand_bytes : (i + 1) * rand_bytes], "little")
        acc = mpz(v) % m
        for b, w in zip(bases, widths, strict=True):
            acc = acc * gmpy2.powmod(b, bits & ((1 << w) - 1), m) % m
            bits >>= w
        out.append(acc)
    return out


def self_test(fast: ModExp8 | Kernels8) -> None:
    """Known answers against gmpy2: every size with 64-bit exponents (eight lanes and a partial
    batch, a modulus shorter than the size), full-width exponents at 1024 bits, and for the
    compiled kernels fixed-base products (a partial batch, digits of 1 to 8 bits)."""
    name = "the paillier kernels" if isinstance(fast, Kernels8) else "mbx_exp"
    for size in SIZES:
        for m, n, exp_bits in ((size, LANES, 64), (size - 3, 3, 64), (size, 2, size) if size == 1024 else (0, 0, 0)):
            if not n:
                continue
            mod = _odd_modulus(m, 1 if n == LANES else 3)
            bases = [mpz(secrets.randbits(m)) % mod for _ in range(n)]
            exps = [mpz(secrets.randbits(exp_bits)) for _ in range(n)]
            expected = [gmpy2.powmod(b, e, mod) for b, e in zip(bases, exps, strict=True)]
            if fast.powmod(bases, exps, mod, exp_bits) != expected:
                raise group_backend.SelfTestFailed(f"{name} ({size} bits) differ from gmpy2")
    if isinstance(fast, Kernels8):
        for size in SIZES:  # every size (3072: the default key's p² in encryptions), both m mod 4
            mod = _odd_modulus(size, 1 if size in (1024, 3072) else 3)
            bases, widths = [mpz(secrets.randbelow(int(mod))) for _ in range(4)], [1, 4, 5, 8]
            products = fast.fixed_base_products(mod, bases, widths)
            values = [mpz(secrets.randbelow(int(mod))) for _ in range(9)]
            rand_bytes = (sum(widths) + 7) // 8 + 2
            rand = os.urandom(rand_bytes * len(values))
            if products is None or products.times_digits(values, rand) != fixed_base_reference(
                    values, bases, widths, mod, rand, rand_bytes):
                raise group_backend.SelfTestFailed(f"the paillier kernels' fixed-base products ({size} bits) "
                                                   "differ from gmpy2")


def _odd_modulus(bits: int, residue_mod_4: int) -> mpz:
    """A random modulus of ``bits`` bits that is ``residue_mod_4`` (1 or 3) mod 4."""
    return mpz((secrets.randbits(bits) | (1 << (bits - 1))) & ~3 | residue_mod_4)


_selected: tuple[ModExp8 | Kernels8 | None, str] | None = None


def get() -> ModExp8 | Kernels8 | None:
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


def _select() -> tuple[ModExp8 | Kernels8 | None, str]:
    if group_backend.NAME != "ifma":
        return None, "gmpy2 (the IFMA backend is not in use here)"
    from matcher.protocols._ifma import build

    path = build.BUILD / build.LIB_NAME
    bad = group_backend._safe_to_load(str(path)) if path.exists() else f"{path.name} not built"
    if bad:
        return None, f"gmpy2 ({bad})"
    why_not = ""
    try:
        kernels = Kernels8(group_backend.load_built_module(build.paillier_path(), build.PAILLIER_MODULE, path))
        self_test(kernels)
        return kernels, (f"own 8-lane window exponentiation on libcrypto_mb {build.IPP_CRYPTO_VERSION}'s "
                         "squarings (known-answer test passed)")
    except Exception as e:  # noqa: BLE001  (a stale or foreign build: any error means "not these kernels")
        why_not = f"; the compiled kernels: {e}"
    try:
        fast = library_modexp()
        self_test(fast)
    except (OSError, AttributeError, RuntimeError, group_backend.SelfTestFailed) as e:
        return None, f"gmpy2 (mbx_exp unavailable: {e}{why_not})"
    return fast, (f"mbx_exp*_mb8 (libcrypto_mb {build.IPP_CRYPTO_VERSION}, 8 lanes, known-answer test passed"
                  f"{why_not})")
