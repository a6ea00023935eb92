"""Node.js vs Python requester client: the same ecdh session against the same `matcher serve`.

    python bench/node_vs_python.py --size 2000 [--repeat 3]

Writes a synthetic pair of SIZE records each (demo layouts, many scripts), starts a real
`matcher serve` with mutual TLS on loopback, turns the requester's records into tokens
(`matcher tokens`), then times `matcher match` (Python, from the records file) and
`matcher-node match` (Node, from the tokens file) as separate processes, best of REPEAT
(wall time, process start included). Both hits files must be byte-identical.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matcher.demo import write_demo_files  # noqa: E402


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800)
    if out.returncode:
        raise SystemExit(f"{cmd[0]} failed: {out.stderr}")
    return time.perf_counter() - t, out.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    py = [sys.executable, "-m", "matcher.cli"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        responder_toml, requester_toml = write_demo_files(work)
        subprocess.run([*py, "synth", "--size", str(args.size), "--seed", "5", "--out", str(work / "synth")],
                       check=True, env=env, capture_output=True)
        text = responder_toml.read_text(encoding="utf-8")
        responder_toml.write_text(text.replace('watchlist = "agency_a_watchlist.csv"',
                                               f'watchlist = "{work / "synth" / "responder.csv"}"'), encoding="utf-8")
        records = work / "synth" / "requester.csv"
        proc = subprocess.Popen([*py, "serve", "--config", str(responder_toml), "--grace", "1"], cwd=work, env=env,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            port = None
            while port is None:
                line = proc.stderr.readline()
                if not line:
                    raise SystemExit("matcher serve did not start")
                m = re.search(r"serving on port (\d+)", line)
                port = m.group(1) if m else None
            peer = f"127.0.0.1:{port}"
            tokens_time, _ = timed([*py, "tokens", "--config", str(requester_toml), "--records", str(records),
                                    "--out", str(work / "tokens.json")], work)
            node = ["node", str(ROOT / "clients" / "node" / "bin" / "matcher-node.js"), "match", "--tokens",
                    str(work / "tokens.json"), "--peer", peer, "--out", str(work / "node.csv"),
                    "--ca", str(work / "certs" / "ca.pem"), "--cert", str(work / "certs" / "agency-b.pem"),
                    "--key", str(work / "certs" / "agency-b.key"), "--server-name", "agency-a"]
            python = [*py, "match", "--config", str(requester_toml), "--records", str(records), "--peer", peer,
                      "--out", str(work / "py.csv")]
            py_times, node_times, node_session = [], [], []
            for _ in range(args.repeat):
                py_times.append(timed(python, work)[0])
                t, out = timed(node, work)
                node_times.append(t)
                node_summary = json.loads(out)
                node_session.append(node_summary["seconds"])
            same = (work / "py.csv").read_bytes() == (work / "node.csv").read_bytes()
            doc = json.loads((work / "tokens.json").read_text(encoding="utf-8"))
            tokens = len({t for r in doc["records"] for _, t in r["tokens"]})
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    print(f"{args.size} requester records ({tokens} distinct tokens) x {args.size} responder records, ecdh, "
          f"mTLS on loopback, best of {args.repeat}:")
    print(f"  python  matcher match       {min(py_times):6.2f} s  (records file -> hits, process start included)")
    print(f"  node    matcher-node match  {min(node_times):6.2f} s  (tokens file -> hits; best session "
          f"{min(node_session):.2f} s; making the tokens file took {tokens_time:.2f} s once)")
    print(f"  hits files identical: {same} ({node_summary['hit_records']} hit records)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
