"""The IFMA ristretto255 kernels of two builds side by side in one process (ABBA order).

    .venv/bin/python bench/ifma_abba.py [--baseline main] [--n 8192] [--rounds 4]

Builds ``ristretto255_ifma.c`` as it is at git revision ``--baseline`` (same compiler
flags and pinned libcrypto_mb as ``matcher.protocols._ifma.build``) into a temporary
directory, loads it beside the extension of this work tree, checks that both give
the same bytes, and times each kernel per element on ``--n`` elements in the order
A B B A, ``--rounds`` times (best per kernel and build; CPU time of this thread, so
other jobs on a shared machine disturb it less). Prints a table of µs per element.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rbcl  # noqa: E402

from matcher.protocols._ifma import build  # noqa: E402


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(build.MODULE, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build_baseline(rev: str, tmp: Path) -> Path:
    for name in ("ristretto255_ifma.c", "constants.h"):
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:matcher/protocols/_ifma/{name}"],
                             check=True, capture_output=True).stdout
        (tmp / name).write_bytes(src)
    lib_dir = build.BUILD
    out = tmp / build.extension_path().name
    cc = os.environ.get("CC") or "cc"
    subprocess.run([cc, "-O2", "-fPIC", "-shared", "-Wall", "-Wno-unused-function", "-fno-strict-aliasing",
                    f"-I{sysconfig.get_paths()['include']}", f"-I{tmp}", str(tmp / "ristretto255_ifma.c"),
                    "-o", str(out), f"-L{lib_dir}", f"-l:{build.LIB_NAME}", "-l:libcrypto.so.3",
                    f"-Wl,-rpath,{lib_dir}", "-Wl,-z,now"], check=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="main", help="git revision of the A build (default main)")
    ap.add_argument("--n", type=int, default=8192, help="elements per call (default 8192)")
    ap.add_argument("--rounds", type=int, default=4, help="ABBA rounds (default 4)")
    args = ap.parse_args()
    new_path = build.extension_path()
    if not new_path.exists():
        print("build this work tree's extension first (make builds it)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        old = _load(_build_baseline(args.baseline, Path(tmp)))
        new = _load(new_path)
    if not new.cpu_supported():
        print("this CPU lacks AVX-512 IFMA", file=sys.stderr)
        return 2
    n = args.n
    key = rbcl.crypto_core_ristretto255_scalar_random()
    tokens = [b"matcher/v1/n1/document/X%08d\x1fDEU" % i for i in range(n)]
    points = new.blind(key, b"bench\x00", tokens)
    kernels = {
        "hash_to_group": lambda m: m.hash_to_group(b"bench\x00", tokens),
        "blind (h2g + mult)": lambda m: m.blind(key, b"bench\x00", tokens),
        "blind_outputs (setup)": lambda m: m.blind_outputs(key, b"bench\x00", b"out\x00", tokens),
        "multiply (evaluate)": lambda m: m.multiply(key, points),
        "multiply_outputs (unblind)": lambda m: m.multiply_outputs(key, b"out\x00", points),
    }
    for name, fn in kernels.items():
        if fn(old) != fn(new):
            print(f"{name}: the two builds differ", file=sys.stderr)
            return 1
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.rounds):
        for label, m in (("A", old), ("B", new), ("B", new), ("A", old)):
            for name, fn in kernels.items():
                t0 = time.thread_time()
                fn(m)
                dt = (time.thread_time() - t0) / n
                best[name, label] = min(best.get((name, label), dt), dt)
    print(f"µs per element, {n} elements per call, best of {2 * args.rounds} (ABBA x {args.rounds}); "
          f"A = {args.baseline}, B = this work tree")
    print(f"{'kernel':28} {'A':>8} {'B':>8} {'B/A':>6}")
    for name in kernels:
        a, b = best[name, "A"] * 1e6, best[name, "B"] * 1e6
        print(f"{name:28} {a:8.3f} {b:8.3f} {b / a:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
