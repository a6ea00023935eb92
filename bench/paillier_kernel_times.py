"""Paillier's eight-lane arithmetic, side by side: the compiled kernels against libcrypto_mb's mbx_exp and gmpy2.

    .venv/bin/python bench/paillier_kernel_times.py              # 64 operations of each shape, best of 5
    .venv/bin/python bench/paillier_kernel_times.py --n 128 --repeat 7

The shapes a 10k x 10k paillier session with a 2048-bit key runs (``bench/compare_paillier.py``):

* mask: ``c^r mod n²``, a 2048-bit ``r``, 4096-bit modulus;
* Horner step: a 128-bit exponent mod n²;
* decryption: ``c^(p−1) mod p²``, a 1024-bit exponent, 2048-bit modulus;
* re-randomiser: ``v · h_s^α · ∏ X_j^{β_j} mod n²`` (224-bit α, 32 8-bit β_j): the compiled
  kernels' fixed-base products against gmpy2's table products.

For each shape the implementations run alternately, ``--repeat`` rounds, and each keeps its
fastest round (ms of process CPU per operation): the host's speed drifts, so only figures
from one run compare. Every result is checked against gmpy2 before timing.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gmpy2  # noqa: E402
from gmpy2 import mpz  # noqa: E402

from matcher.protocols import modexp_backend  # noqa: E402
from matcher.protocols import paillier as pl  # noqa: E402
from matcher.protocols import paillier_responder as plr  # noqa: E402


def cpu_ms(fn: Callable[[], object], count: int) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) / count * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64, help="operations per shape and round (default 64)")
    ap.add_argument("--repeat", type=int, default=5, help="alternating rounds; the fastest counts (default 5)")
    args = ap.parse_args()
    kernels = modexp_backend.get()
    if not isinstance(kernels, modexp_backend.Kernels8):
        print(f"the compiled paillier kernels are not in use here: {modexp_backend.describe()}")
        return 1
    mbx = modexp_backend.library_modexp()
    key = pl.generate_key(2048)
    n, n2, p2 = mpz(key.n), mpz(key.n) ** 2, mpz(key.p) ** 2
    count = args.n
    shapes = {
        "mask, 2048-bit exponent mod n²": ([mpz(secrets.randbelow(int(n2))) for _ in range(count)],
                                           [mpz(secrets.randbelow(int(n))) for _ in range(count)], n2, 2048),
        "Horner step, 128-bit exponent mod n²": ([mpz(secrets.randbelow(int(n2))) for _ in range(count)],
                                                 [mpz(secrets.randbits(128)) for _ in range(count)], n2, 128),
        "decryption, c^(p-1) mod p²": ([mpz(secrets.randbelow(int(p2))) for _ in range(count)],
                                       [mpz(key.p - 1)] * count, p2, int(key.p - 1).bit_length()),
    }
    print(f"{count} operations of each shape, best of {args.repeat} alternating rounds, ms of CPU per operation")
    print("| shape | compiled kernels | mbx_exp | kernels / mbx_exp |")
    print("|---|---|---|---|")
    for name, (bases, exps, m, bits) in shapes.items():
        want = [gmpy2.powmod(b, e, m) for b, e in zip(bases, exps, strict=True)]
        assert kernels.powmod(bases, exps, m, bits) == want == mbx.powmod(bases, exps, m, bits)
        best = {"kernels": float("inf"), "mbx": float("inf")}
        for _ in range(args.repeat):
            for label, impl in (("kernels", kernels), ("mbx", mbx)):
                def run(impl=impl, bases=bases, exps=exps, m=m, bits=bits) -> object:
                    return impl.powmod(bases, exps, m, bits)
                best[label] = min(best[label], cpu_ms(run, count))
        print(f"| {name} | {best['kernels']:.3f} | {best['mbx']:.3f} | {best['kernels'] / best['mbx']:.2f} |")
    rr = plr.Rerandomiser.new(key.n)
    fast_ctx = plr._ResponderCtx(rr)
    saved = modexp_backend._selected
    modexp_backend._selected = (None, "gmpy2 (this benchmark)")
    try:
        slow_ctx = plr._ResponderCtx(rr)
    finally:
        modexp_backend._selected = saved
    values = [mpz(secrets.randbelow(int(n2))) for _ in range(count)]
    best = {"kernels": float("inf"), "gmpy2": float("inf")}
    for _ in range(args.repeat):
        best["kernels"] = min(best["kernels"], cpu_ms(lambda: fast_ctx.rerandomised(values), count))
        best["gmpy2"] = min(best["gmpy2"], cpu_ms(lambda: slow_ctx.rerandomised(values), count))
    print("\n| re-randomiser, v · h_s^α ∏ X_j^β_j mod n² | compiled kernels | gmpy2 tables | kernels / gmpy2 |")
    print("|---|---|---|---|")
    print(f"| per value | {best['kernels']:.3f} | {best['gmpy2']:.3f} | {best['kernels'] / best['gmpy2']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
