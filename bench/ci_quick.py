"""Quick benchmark for CI (well under two minutes): fails only on ratios, never on absolute times.

    make bench-ci        # writes bench-results/kernels.json and bench-results/session.json

Checks, each against the group operations measured in the same run:
  * each ecdh kernel's time per element over the ristretto255 operations it performs;
  * a warm 20k × 20k session over loopback gRPC with mTLS: CPU per element pair
    (both sides, all worker processes) over 3 scalar multiplications + 1 hash to group.
Bounds are generous (machine noise must not fail CI); a real regression (an extra
group operation per element, a lost batch, a quadratic step) does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu import tree_cpu  # noqa: E402
from tests.harness import KEYSPEC, group_op_costs, loopback_responder, synthetic_sets  # noqa: E402

OUT = ROOT / "bench-results"
KERNEL_BOUNDS = {  # kernel -> (group operations per element as (smul, h2g), max ratio)
    "test_blind": ((1, 1), 1.6),
    "test_evaluate": ((1, 0), 1.6),
    "test_unblind_and_derive": ((1, 0), 1.6),
    "test_setup": ((1, 1), 1.8),
}
SESSION_BOUND = 2.0
N = 20000


def kernels(ops: dict[str, float]) -> list[str]:
    OUT.mkdir(exist_ok=True)
    json_path = OUT / "kernels.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(ROOT / "bench/test_ecdh_kernels.py"), "--benchmark-only",
         "--benchmark-max-time=0.5", "--benchmark-min-rounds=3", f"--benchmark-json={json_path}",
         "-p", "no:cacheprovider"],
        check=True, cwd=ROOT,
    )
    failures = []
    data = json.loads(json_path.read_text())
    for bench in data["benchmarks"]:
        name = bench["name"]
        if name not in KERNEL_BOUNDS:
            continue
        (n_smul, n_h2g), bound = KERNEL_BOUNDS[name]
        floor = 1000 * (n_smul * ops["smul"] + n_h2g * ops["h2g"])  # per batch of 1000
        ratio = bench["stats"]["median"] / floor
        print(f"  {name:<26} {ratio:5.2f}× its group operations (bound {bound})")
        if ratio > bound:
            failures.append(f"{name}: {ratio:.2f}× > {bound}")
    return failures


def session(ops: dict[str, float]) -> list[str]:
    req, resp = synthetic_sets(N, N, N // 10, seed=11)
    with loopback_responder(resp) as lb, lb.client() as client:
        client.match(req[:4096], KEYSPEC)  # start worker pools and channel
        c0 = tree_cpu()
        result = client.match(req, KEYSPEC)
        cpu = tree_cpu() - c0
    if len(result.hits) != N // 10:
        return [f"session found {len(result.hits)} hits, expected {N // 10}"]
    floor = N * (3 * ops["smul"] + ops["h2g"])
    ratio = cpu / floor
    (OUT / "session.json").write_text(json.dumps({"n": N, "cpu_seconds": cpu, "floor_seconds": floor, "ratio": ratio}))
    print(f"  warm session {N}×{N}: {cpu / N * 1e6:.0f} µs CPU per pair, "
          f"{ratio:.2f}× its group operations (bound {SESSION_BOUND})")
    return [f"session CPU {ratio:.2f}× > {SESSION_BOUND}"] if ratio > SESSION_BOUND else []


def main() -> int:
    ops = group_op_costs()
    print(f"ristretto255 here, now: scalar mult {ops['smul'] * 1e6:.1f} µs, hash to group {ops['h2g'] * 1e6:.1f} µs")
    failures = kernels(ops) + session(ops)
    for f in failures:
        print(f"FAIL {f}")
    print("quick benchmark:", "FAILED" if failures else "ok (ratios within bounds)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
