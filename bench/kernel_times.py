"""CPU time per element of the ecdh batch kernels in this process (the backend selected at start-up).

    .venv/bin/python bench/kernel_times.py            # 65,536 elements, best of 3
    .venv/bin/python bench/kernel_times.py --n 16384 --repeat 5

Prints µs of process CPU per element for ``blind_tokens`` (SHA-512 of each token, hash to
the group, multiply, encode), ``evaluate`` (decode, multiply, encode) and
``unblind_outputs`` (the same, plus SHA-512 of each result). The host's speed drifts, so
compare two builds by running them alternately, not against a figure from another hour.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matcher.protocols import ecdh  # noqa: E402


def per_element(fn, *args, n: int, repeat: int) -> float:
    """Best of ``repeat`` calls of fn(*args), in µs of process CPU per element."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - start)
    return best / n * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=65536, help="elements per call (default 65,536)")
    ap.add_argument("--repeat", type=int, default=3, help="calls of each kernel; the fastest counts (default 3)")
    args = ap.parse_args()
    a, b = ecdh.new_key(), ecdh.new_key()
    tokens = [os.urandom(20) for _ in range(args.n)]
    blinded = ecdh.blind_tokens(a, tokens)
    evaluated = ecdh.evaluate(b, blinded)
    print(f"backend {ecdh.GROUP_BACKEND}, {args.n:,} elements, best of {args.repeat}")
    for name, fn, fn_args in (
        ("blind_tokens", ecdh.blind_tokens, (a, tokens)),
        ("evaluate", ecdh.evaluate, (b, blinded)),
        ("unblind_outputs", ecdh.unblind_outputs, (ecdh.invert_key(a), evaluated)),
    ):
        print(f"{name:16s} {per_element(fn, *fn_args, n=args.n, repeat=args.repeat):6.2f} µs an element")
    return 0


if __name__ == "__main__":
    sys.exit(main())
