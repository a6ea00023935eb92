"""Side-by-side: OpenMined PSI's in-process run vs matcher's full ecdh session over loopback mTLS.

    make bench-compare                       # 10k and 100k
    make bench-compare SIZES=10000,100000,1000000
    python bench/compare_openmined.py --sizes 20000 --no-openmined   # matcher only, while developing

For each size, on the same generated sets (10% overlap), in one run:
  * OpenMined PSI (openmined-psi, C++; in its own throw-away venv, bench/.venv-openmined),
  * matcher cold: new key epoch, setup computed, then the session,
  * matcher warm: responder restarted with its cached setup, requester with its cached copy,
and the group-arithmetic lower bound measured now: the ristretto255 operations a session
needs per element pair (3 scalar multiplications + 1 hash to the group; the setup adds
1 + 1 per responder element), timed with the backend in use (docs/performance.md),
which the output names. The responder runs in its own process, as deployed;
times exclude interpreter start-up on both sides, as OpenMined's in-process run does.
CPU is of both processes and all their workers. Figures are wall-clock seconds unless marked.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cpu import tree_cpu as cpu_now  # noqa: E402
from matcher.parallel import default_processes  # noqa: E402
from matcher.storage.setup_cache import RequesterSetupCache  # noqa: E402
from tests.harness import KEYSPEC, group_op_costs, loopback_responder, synthetic_sets  # noqa: E402

OM_VENV = ROOT / "bench" / ".venv-openmined"


def openmined_python() -> Path:
    """The throw-away venv's python, created with openmined-psi on first use."""
    py = OM_VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {OM_VENV} with openmined-psi (once) ...", file=sys.stderr)
        venv.create(OM_VENV, with_pip=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "openmined-psi"], check=True)
    return py


def run_openmined(req_tokens: list[bytes], resp_tokens: list[bytes], tmp: Path) -> dict:
    (tmp / "client.txt").write_text("\n".join(t.decode("ascii") for t in req_tokens), encoding="ascii")
    (tmp / "server.txt").write_text("\n".join(t.decode("ascii") for t in resp_tokens), encoding="ascii")
    out = subprocess.run(
        [str(openmined_python()), str(ROOT / "bench" / "openmined_runner.py"), str(tmp / "client.txt"),
         str(tmp / "server.txt")], check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def run_matcher(req, resp, tmp: Path, workers: int) -> dict:
    """Cold and warm sessions, responder in its own process (as deployed).

    Times exclude interpreter start-up on both sides, as OpenMined's in-process run
    does: cold = the responder's setup (measured in its process) + the session.
    """
    state, cache = tmp / "state", tmp / "req-cache"
    with loopback_responder(resp, workers=workers, state_dir=state, own_process=True) as lb:
        with lb.client(workers=workers) as client:
            client.setup_cache = RequesterSetupCache(cache)
            c0, t0 = cpu_now(), time.perf_counter()
            cold = client.match(req, KEYSPEC)
            cold_session = time.perf_counter() - t0
            cold_cpu = cpu_now() - c0
        setup_s = lb.setup_seconds
    with loopback_responder(resp, workers=workers, state_dir=state, own_process=True) as lb:
        assert lb.from_cache
        with lb.client(workers=workers) as client:
            client.setup_cache = RequesterSetupCache(cache)
            client.match(req[:4096], KEYSPEC)  # starts the worker pools and the channel
            c1, t1 = cpu_now(), time.perf_counter()
            warm = client.match(req, KEYSPEC)
            warm_s = time.perf_counter() - t1
            warm_cpu = cpu_now() - c1
    assert {h.record_id for h in cold.hits} == {h.record_id for h in warm.hits}
    return {
        "setup_seconds": setup_s, "cold_session_seconds": cold_session, "cold_seconds": setup_s + cold_session,
        "cold_cpu": cold_cpu, "warm_seconds": warm_s, "warm_cpu": warm_cpu,
        "hits": len(cold.hits), "cold_bytes": cold.bytes_sent + cold.bytes_received,
        "warm_bytes": warm.bytes_sent + warm.bytes_received,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated set sizes (both sides)")
    ap.add_argument("--workers", type=int, default=0, help="matcher worker processes per side (0 = all cores)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--no-openmined", action="store_true",
                    help="matcher only (quick runs while developing): OpenMined columns are left empty")
    args = ap.parse_args(argv)
    cores = args.workers or default_processes()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        req, resp = synthetic_sets(n, n, n // 10, seed=n)
        req_tokens = [t for r in req for _, t in r.tokens]
        resp_tokens = [t for r in resp for _, t in r.tokens]
        with tempfile.TemporaryDirectory() as tmp:
            if args.no_openmined:
                om = {"seconds": float("nan"), "bytes": float("nan"), "intersection": n // 10}
            else:
                print(f"[{n}] OpenMined PSI ...", file=sys.stderr, flush=True)
                om = run_openmined(req_tokens, resp_tokens, Path(tmp))
            print(f"[{n}] matcher cold and warm ...", file=sys.stderr, flush=True)
            m = run_matcher(req, resp, Path(tmp), args.workers)
        ops = group_op_costs()
        floor_cold = (3 * ops["smul"] + 1 * ops["h2g"]) * n  # the session's part; the setup ran before
        floor_warm = (3 * ops["smul"] + 1 * ops["h2g"]) * n
        assert om["intersection"] == m["hits"] == n // 10, (om["intersection"], m["hits"])
        rows.append({"n": n, "openmined": om, "matcher": m, "smul_us": ops["smul"] * 1e6, "h2g_us": ops["h2g"] * 1e6,
                     "smul_portable_us": ops["smul_portable"] * 1e6, "h2g_portable_us": ops["h2g_portable"] * 1e6,
                     "backend": ops["backend"],
                     "floor_cold_cpu": floor_cold, "floor_warm_cpu": floor_warm, "cores": cores})
    last = rows[-1]
    print(f"\nmatcher vs OpenMined PSI, {cores} core(s), 10% overlap; ristretto255 backend: {last['backend']}; "
          f"scalar mult {last['smul_us']:.1f} µs, hash to group {last['h2g_us']:.1f} µs "
          f"(libsodium: {last['smul_portable_us']:.1f} µs, {last['h2g_portable_us']:.1f} µs; measured now)\n")
    print("| n × n | OpenMined s | matcher cold s | speed-up | matcher warm s | speed-up | "
          "bytes OM / cold / warm | session CPU per pair µs, cold (floor) | warm (floor) | warm CPU / floor |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        om, m, n = r["openmined"], r["matcher"], r["n"]
        if args.no_openmined:
            om_s = cold_x = warm_x = om_mb = "–"
        else:
            om_s, om_mb = f"{om['seconds']:.2f}", f"{om['bytes'] / 1e6:.1f} MB"
            cold_x = f"{om['seconds'] / m['cold_seconds']:.2f}×"
            warm_x = f"{om['seconds'] / m['warm_seconds']:.2f}×"
        print(
            f"| {n:,} | {om_s} | {m['cold_seconds']:.2f} | {cold_x} | {m['warm_seconds']:.2f} | {warm_x} | "
            f"{om_mb} / {m['cold_bytes'] / 1e6:.1f} MB / {m['warm_bytes'] / 1e6:.1f} MB | "
            f"{m['cold_cpu'] / n * 1e6:.0f} ({r['floor_cold_cpu'] / n * 1e6:.0f}) | "
            f"{m['warm_cpu'] / n * 1e6:.0f} ({r['floor_warm_cpu'] / n * 1e6:.0f}) | "
            f"{m['warm_cpu'] / r['floor_warm_cpu']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
