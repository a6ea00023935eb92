"""Quick benchmark for CI (well under two minutes): fails only on ratios, never on absolute times.

    make bench-ci        # writes bench-results/kernels.json and bench-results/session.json

Checks, each against the group operations measured in the same run:
  * each ecdh kernel's time per element over the ristretto255 operations it performs;
  * a warm 20k × 20k session over loopback gRPC with mTLS: CPU per element pair
    (both sides, all worker processes) over 3 scalar multiplications + 1 hash to group;
  * the ristretto255 backend: where the CPU has AVX-512 IFMA and the extension is built it
    must be in use (a failed known-answer test fails here), and be ≥ 3× libsodium's speed;
  * paillier's compiled kernels: where built and the IFMA backend runs they must be in use,
    and a mask (2048-bit exponent mod a 4096-bit n²) must cost ≤ 0.85× libcrypto_mb's
    ``mbx_exp4096_mb8`` measured alternately in the same run (measured 0.67×).
The floor is that of the backend in use (tests.harness.group_op_costs), so the gates hold
on machines with and without IFMA.
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
#: added to a kernel's bound with the IFMA backend: the per-element Python work (sealing a
#: label with its associated data, building rows and lists) costs as much as before, now
#: against a 5× lower floor (measured: setup 1.3–2.1×, the others 0.6–1.4× on a shared
#: machine). Losing the fast path (5×) or an extra group operation (+1) still fails.
IFMA_SLACK = {"test_setup": 0.8, "test_blind": 0.4, "test_evaluate": 0.4, "test_unblind_and_derive": 0.4}
#: session CPU over the group-operation floor of the backend in use: with the IFMA backend
#: the floor is about 5× lower, so the same fixed per-element costs (gRPC, lookups,
#: Python) weigh more (measured 1.7–1.8× on a shared 2-core machine before the kernels
#: ran on threads and the lookup moved to C; 0.74–0.80× with the old code at 1.01× in the
#: same heavily loaded run, where load inflates the measured floor more than the session)
SESSION_BOUNDS = {"portable": 2.0, "ifma": 2.0}
#: with the IFMA backend: libsodium's cost over the IFMA kernels' (measured 5–6×); falling
#: under this means the fast path lost its batching or is no longer used
MIN_SPEEDUP = 3.0
N = 20000
#: paillier: the compiled kernels' mask over mbx_exp's in the same run (measured 0.66–0.67)
PAILLIER_MAX_RATIO = 0.85


def _slower(before: dict, after: dict) -> dict:
    """The floor from measurements before and after a step, the slower of each: on a shared
    machine the load can change while the step runs, and a floor taken in a quiet moment
    would make a loaded step look like a regression."""
    out = dict(before)
    for k in ("smul", "h2g"):
        out[k] = max(before[k], after[k])
    return out


def kernels(ops: dict[str, float]) -> list[str]:
    OUT.mkdir(exist_ok=True)
    json_path = OUT / "kernels.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(ROOT / "bench/test_ecdh_kernels.py"), "--benchmark-only",
         "--benchmark-max-time=0.5", "--benchmark-min-rounds=3", f"--benchmark-json={json_path}",
         "-p", "no:cacheprovider"],
        check=True, cwd=ROOT,
    )
    ops = _slower(ops, group_op_costs())
    failures = []
    data = json.loads(json_path.read_text())
    for bench in data["benchmarks"]:
        name = bench["name"]
        if name not in KERNEL_BOUNDS:
            continue
        (n_smul, n_h2g), bound = KERNEL_BOUNDS[name]
        if ops["backend_name"] == "ifma":
            bound += IFMA_SLACK.get(name, 0.0)
        floor = 1000 * (n_smul * ops["smul"] + n_h2g * ops["h2g"])  # per batch of 1000
        ratio = bench["stats"]["min"] / floor  # the fastest round: the least disturbed by other load
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
    ops = _slower(ops, group_op_costs())
    if len(result.hits) != N // 10:
        return [f"session found {len(result.hits)} hits, expected {N // 10}"]
    floor = N * (3 * ops["smul"] + ops["h2g"])
    ratio = cpu / floor
    bound = SESSION_BOUNDS[ops["backend_name"]]
    (OUT / "session.json").write_text(json.dumps({"n": N, "cpu_seconds": cpu, "floor_seconds": floor, "ratio": ratio,
                                                  "backend": ops["backend"]}))
    print(f"  warm session {N}×{N}: {cpu / N * 1e6:.0f} µs CPU per pair, "
          f"{ratio:.2f}× its group operations (bound {bound})")
    return [f"session CPU {ratio:.2f}× > {bound}"] if ratio > bound else []


def backend(ops: dict) -> list[str]:
    """The IFMA backend is used where it can be, and stays several times faster than libsodium."""
    from matcher.protocols import group_backend
    from matcher.protocols._ifma import build

    if ops["backend_name"] != "ifma":
        can = "avx512ifma" in group_backend._cpu_flags() and build.extension_path().exists()
        forced = "forced" in ops["backend"]
        print(f"  backend: {ops['backend']}")
        return [f"IFMA CPU and built extension, but {ops['backend']}"] if can and not forced else []
    failures = []
    for op in ("smul", "h2g"):
        speedup = ops[f"{op}_portable"] / ops[op]
        print(f"  {op}: IFMA {speedup:.1f}× faster than libsodium (bound ≥ {MIN_SPEEDUP})")
        if speedup < MIN_SPEEDUP:
            failures.append(f"IFMA {op} only {speedup:.1f}× libsodium's speed")
    return failures


def paillier() -> list[str]:
    """The compiled paillier kernels are used where built, and their mask beats mbx_exp's."""
    import secrets
    import time

    from gmpy2 import mpz

    from matcher.protocols import group_backend, modexp_backend
    from matcher.protocols._ifma import build

    fast = modexp_backend.get()
    print(f"  paillier: {modexp_backend.describe()}")
    if not isinstance(fast, modexp_backend.Kernels8):
        built = group_backend.NAME == "ifma" and build.paillier_path().exists()
        return [f"paillier kernels built but not in use: {modexp_backend.describe()}"] if built else []
    mbx = modexp_backend.library_modexp()
    m = mpz(secrets.randbits(4096) | (1 << 4095) | 1)
    bases = [mpz(secrets.randbelow(int(m))) for _ in range(16)]
    exps = [mpz(secrets.randbits(2048)) for _ in range(16)]
    best = {"kernels": float("inf"), "mbx": float("inf")}
    for _ in range(3):
        for name, impl in (("kernels", fast), ("mbx", mbx)):
            start = time.process_time()
            impl.powmod(bases, exps, m, 2048)
            best[name] = min(best[name], time.process_time() - start)
    ratio = best["kernels"] / best["mbx"]
    print(f"  paillier mask: kernels {best['kernels'] / 16 * 1e3:.2f} ms, mbx_exp {best['mbx'] / 16 * 1e3:.2f} ms "
          f"a lane: {ratio:.2f}× (bound ≤ {PAILLIER_MAX_RATIO})")
    if ratio > PAILLIER_MAX_RATIO:
        return [f"paillier kernels' mask {ratio:.2f}× mbx_exp's > {PAILLIER_MAX_RATIO}"]
    return []


def main() -> int:
    ops = group_op_costs()
    print(f"ristretto255 backend: {ops['backend']}")
    print(f"ristretto255 here, now: scalar mult {ops['smul'] * 1e6:.1f} µs, hash to group {ops['h2g'] * 1e6:.1f} µs "
          f"(portable: {ops['smul_portable'] * 1e6:.1f} µs, {ops['h2g_portable'] * 1e6:.1f} µs)")
    failures = backend(ops) + kernels(ops) + session(ops) + paillier()
    for f in failures:
        print(f"FAIL {f}")
    print("quick benchmark:", "FAILED" if failures else "ok (ratios within bounds)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
