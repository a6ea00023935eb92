"""Which implementation runs the ristretto255 batch kernels of protocol ``ecdh``.

Two backends compute the same function, byte for byte:

* ``portable``: libsodium's ristretto255 through ``rbcl`` (every machine; the reference).
* ``ifma``: eight elements per step on AVX-512 IFMA (``_ifma/ristretto255_ifma.c`` on
  Intel's libcrypto_mb field arithmetic), about five times faster per scalar
  multiplication where the CPU has it.

The choice is made once, when this module is imported (each worker process makes it
again): ``ifma`` is used only if the CPU reports AVX-512 IFMA, the extension was built
(``make`` builds it; see :mod:`matcher.protocols._ifma.build`), its files are not
writable by anyone but their owner, and a known-answer test against libsodium passes
(hash to group, blinding, multiplication, output hashes, refusal of the identity,
non-canonical, negative and off-curve encodings, refused lanes beside valid ones, and
identity results). Anything else keeps ``portable``,
and :func:`describe` says why. ``MATCHER_GROUP_BACKEND=portable`` forces the portable
backend (``auto``, the default, picks as above).

Only the batch kernels dispatch here; keys, scalar inversion, single-point checks and
the output hash definitions stay in :mod:`matcher.protocols.ecdh`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import rbcl

ENV = "MATCHER_GROUP_BACKEND"
CHOICES = ("auto", "portable")
_REQUIRED_FLAGS = ("avx512f", "avx512ifma", "avx512vl", "avx512bw", "avx512dq")

#: the IFMA kernels when selected, else None (read by the ecdh kernels at every call)
FAST: ModuleType | None = None
#: "ifma" or "portable"
NAME = "portable"
#: why this backend is in use, for start-up messages and benchmark output
DETAIL = ""


def describe() -> str:
    """One line for start-up and benchmark output, e.g. ``ifma (AVX-512 IFMA, libcrypto_mb 2026.2.0)``."""
    return f"{NAME} ({DETAIL})"


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _safe_to_load(path: str) -> str | None:
    """None if ``path`` and its directory belong to us (or root) and nobody else may write them."""
    for p in (path, os.path.dirname(path)):
        st = os.stat(p)
        if st.st_uid not in (os.geteuid(), 0):
            return f"{p} belongs to another user"
        if st.st_mode & 0o022:
            return f"{p} is writable by group or others"
    return None


def load_built_module(path: Path, name: str, *also_checked: Path) -> ModuleType:
    """Import the C module at ``path`` as ``name``, after checking that it (and ``also_checked``)
    and its folder belong to us and nobody else may write them; raises :class:`ExtensionUnavailable`.

    Shared by the optional C modules of :mod:`matcher.protocols._ifma` (group kernels, label sealer).
    """
    if not path.exists():
        raise ExtensionUnavailable("not built (make builds it where a C compiler and its libraries are present)")
    for p in (path, *also_checked):
        bad = _safe_to_load(str(p))
        if bad:
            raise ExtensionUnavailable(bad)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ExtensionUnavailable(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        raise ExtensionUnavailable(f"does not load: {e}") from None
    return module


def _load_extension() -> ModuleType:
    from matcher.protocols._ifma import build

    path = build.extension_path()
    module = load_built_module(path, build.MODULE, path.parent / build.LIB_NAME)
    if not module.cpu_supported():
        raise ExtensionUnavailable("CPU or OS without AVX-512 IFMA state")
    return module


class ExtensionUnavailable(Exception):
    """An optional C module is not built, not safe to load, or does not load here."""


def self_test(fast: ModuleType, rounds: int = 3) -> None:
    """Known-answer test of the IFMA kernels against libsodium; raises :class:`SelfTestFailed` on any difference.

    Random inputs each time (batch sizes 1..17 cover a partial and several full lanes
    of eight; one batch crosses the 512-element chunks that share a field inversion in
    the batch encoding), plus fixed refusals, refused lanes beside valid ones in one
    shared inversion, and keys whose results are the identity: a backend that accepts
    an encoding libsodium refuses, or differs by one bit anywhere, is not used.
    """
    h2g = b"matcher/self-test/h2g\x00"
    out = b"matcher/self-test/out\x00"
    smul = rbcl.crypto_scalarmult_ristretto255
    for n in (1, 7, 8, 9, 17)[: 2 + rounds]:
        tokens = [os.urandom(i % 41) for i in range(n)]
        key = rbcl.crypto_core_ristretto255_scalar_random()
        key2 = rbcl.crypto_core_ristretto255_scalar_random()
        hashed = [rbcl.crypto_core_ristretto255_from_hash(hashlib.sha512(h2g + t).digest()) for t in tokens]
        _expect(fast.hash_to_group(h2g, tokens) == hashed, "hash to group differs")
        blinded = [smul(key, p) for p in hashed]
        _expect(fast.blind(key, h2g, tokens) == blinded, "blinding differs")
        digests, points = fast.blind_outputs(key, h2g, out, tokens)
        _expect(points == blinded and digests == [hashlib.sha512(out + p).digest() for p in blinded], "setup differs")
        again = [smul(key2, p) for p in blinded]
        _expect(fast.multiply(key2, blinded) == again, "multiplication differs")
        _expect(fast.multiply_outputs(key2, out, blinded) == [hashlib.sha512(out + p).digest() for p in again],
                "output hashes differ")
        _expect(fast.canonical(blinded) == blinded, "decode/encode differs")
    # across the kernels' shared-inversion chunks (no more libsodium calls: the last points repeat)
    cycled = [blinded[i % n] for i in range(_CHUNK_ELEMENTS + 9)]
    _expect(fast.multiply(key2, cycled) == [again[i % n] for i in range(len(cycled))],
            "multiplication across inversion chunks differs")
    good = rbcl.crypto_core_ristretto255_from_hash(os.urandom(64))
    key = rbcl.crypto_core_ristretto255_scalar_random()
    p_bytes = (2**255 - 19).to_bytes(32, "little")
    refused = [
        bytes(32),  # identity
        p_bytes,  # p: non-canonical encoding of 0
        (2**255 - 17).to_bytes(32, "little"),  # p + 2: non-canonical
        (2**256 - 2).to_bytes(32, "little"),  # top bit set
        bytes([good[0] | 1]) + good[1:],  # odd ("negative") s
        _invalid_even_encoding(),  # canonical, even, not on the curve
    ]
    for bad in refused:
        _expect(fast.multiply(key, [good, bad]) == 1, f"accepted {bad.hex()}")
        _expect(fast.canonical([bad]) == 0, f"decoded {bad.hex()}")
    # refused lanes share one batch inversion with valid ones and must leave them exact
    mixed = [good] * 3 + refused + [good] * 4
    k_good = smul(key, good)
    expected = [None if p in refused else k_good for p in mixed]
    _expect(fast.multiply_each(key, mixed) == expected, "a refused lane disturbs the others")
    order = 2**252 + 27742317777372353535851937790883648493
    for zero_key in (bytes(32), order.to_bytes(32, "little")):  # identity results, as libsodium refuses
        _expect(fast.multiply(zero_key, [good]) == 0, "an identity result was not refused")


#: elements per shared field inversion in the kernels' batch encoding (CHUNK * 8 in the C file)
_CHUNK_ELEMENTS = 512


class SelfTestFailed(Exception):
    """The IFMA kernels disagree with libsodium."""


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise SelfTestFailed(what)


def _invalid_even_encoding() -> bytes:
    """A canonical, even field element that libsodium refuses as a point (a fixed search from 2)."""
    s = 2
    while True:
        enc = s.to_bytes(32, "little")
        if not rbcl.crypto_core_ristretto255_is_valid_point(enc):
            return enc
        s += 2


def _select() -> None:
    global FAST, NAME, DETAIL
    choice = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        NAME, DETAIL = "portable", f"libsodium; {ENV}={choice!r} is not one of {', '.join(CHOICES)}"
        return
    if choice == "portable":
        NAME, DETAIL = "portable", f"libsodium, forced by {ENV}"
        return
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        NAME, DETAIL = "portable", "libsodium; the IFMA backend exists for x86-64 Linux only"
        return
    missing = [f for f in _REQUIRED_FLAGS if f not in _cpu_flags()]
    if missing:
        NAME, DETAIL = "portable", f"libsodium; CPU without {', '.join(missing)}"
        return
    try:
        fast = _load_extension()
        self_test(fast)
    except ExtensionUnavailable as e:
        NAME, DETAIL = "portable", f"libsodium; IFMA backend unavailable: {e}"
        return
    except SelfTestFailed as e:
        NAME, DETAIL = "portable", f"libsodium; IFMA backend failed its known-answer test ({e})"
        return
    from matcher.protocols._ifma.build import IPP_CRYPTO_VERSION

    FAST, NAME, DETAIL = fast, "ifma", f"AVX-512 IFMA, libcrypto_mb {IPP_CRYPTO_VERSION}, known-answer test passed"


_select()
