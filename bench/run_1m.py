"""The 1M run: `matcher serve` and `matcher match` as separate processes on loopback with mTLS.

    make bench-1m                 # 1,000,000 records each side (one document token each)
    make bench-1m N=200000        # smaller

    make bench-1m REPEAT=3        # the n × n match three times (its wall clock drifts with the host)

Reports: the responder's cold start (load + setup; the setup's group operations run on
the worker pool while the watchlist is read), the 1M × 1M session, a 10k
query against the 1M watchlist with warm caches (responder setup on disk and
loaded, requester's cached copy of the setup), and each process's peak RSS
(from wait4). Writes its files to a temporary folder (or --dir).

The match is CPU-bound on both processes, so for each n × n match it also prints the CPU
seconds of both (requester from wait4, responder from /proc) and their sum over the cores:
the wall clock the machine's cores bound the match to. The host's speed drifts by 10–20 %
within an hour, so the group kernel's speed (µs per ``ecdh.evaluate`` element) is
measured before and after each match: a figure is comparable with another only at the
same kernel speed.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matcher.certs import write_agency_certs  # noqa: E402
from matcher.config_templates import REQUESTER_TOML, RESPONDER_TOML  # noqa: E402
from tests.harness import shared_documents  # noqa: E402

A_COLS = ["id", "first_name", "last_name", "dob", "sex", "nationality", "doc_no", "doc_country", "case_id"]
B_COLS = ["person_id", "given", "surname", "birth_date", "gender", "citizenship", "passport", "passport_country"]


def write_sets(folder: Path, n: int, overlap: int, seed: int = 1) -> None:
    """Two CSVs in the demo's layouts sharing ``overlap`` passports; one token (document) per row."""
    b_docs, a_docs = shared_documents(n, n, overlap, seed)
    with (folder / "agency_a_watchlist.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(A_COLS)
        w.writerows([f"A-{i}", "", "", "", "", "", d, "DEU", f"CASE-{i:08d}"] for i, d in enumerate(a_docs))
    with (folder / "agency_b_records.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(B_COLS)
        w.writerows([f"B-{i}", "", "", "", "", "", d, "DEU"] for i, d in enumerate(b_docs))
    with (folder / "agency_b_10k.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(B_COLS)
        w.writerows([f"Q-{i}", "", "", "", "", "", d, "DEU"] for i, d in enumerate(b_docs[:10000]))


def run(cmd: list[str], **kw) -> tuple[int, float, float, str, float]:
    """Run a child; returns exit code, wall seconds, peak RSS in MB (wait4), stdout+stderr, CPU seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - t0, usage.ru_maxrss / 1024, out, usage.ru_utime + usage.ru_stime


def kernel_speed(n: int = 16384, repeat: int = 3) -> float:
    """µs of CPU per element of ``ecdh.evaluate`` in this process, best of ``repeat`` (the host's speed now)."""
    from matcher.protocols import ecdh

    key, points = ecdh.new_key(), ecdh.blind_tokens(ecdh.new_key(), [os.urandom(20) for _ in range(n)])
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        ecdh.evaluate(key, points)
        best = min(best, time.process_time() - start)
    return best / n * 1e6


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far, from /proc (0.0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--queries-only", action="store_true", help="skip the n × n session: only the 10k queries")
    ap.add_argument("--repeat", type=int, default=1, help="run the n × n match this many times (default 1)")
    args = ap.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="matcher-1m-"))
    folder.mkdir(parents=True, exist_ok=True)
    n = args.n
    print(f"writing {n:,} + {n:,} records to {folder} ...", flush=True)
    write_agency_certs(folder / "certs", ["agency-a", "agency-b"], force=True)
    write_sets(folder, n, n // 10)
    # n2 documents yield alternative tokens (with and without a check digit): allow 3 per record.
    limit = 3 * max(n, 10000)
    (folder / "responder.toml").write_text(
        RESPONDER_TOML.replace("max_request_size = 1000000", f"max_request_size = {limit}")
        .replace("max_set_size = 50000", f"max_set_size = {limit}")
        .replace("daily_budget = 100000", f"daily_budget = {10 * limit}")
    )
    (folder / "requester.toml").write_text(
        REQUESTER_TOML.replace('reveal = "requester"\n', 'reveal = "requester"\nsetup_cache = "setup_cache"\n', 1)
    )
    matcher = [sys.executable, "-m", "matcher.cli"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    t0 = time.perf_counter()
    server = subprocess.Popen(matcher + ["serve", "--config", "responder.toml"], cwd=folder, env=env,
                              stderr=subprocess.PIPE, text=True)
    port = None
    for line in server.stderr:
        m = re.search(r"serving on port (\d+)", line)
        if m:
            port = m.group(1)
            break
    if not port:
        print("responder did not start", file=sys.stderr)
        return 1
    start_s = time.perf_counter() - t0
    # Keep draining the server's log so it never blocks on a full pipe.
    import threading

    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
    peer = f"127.0.0.1:{port}"
    print(f"responder serving after {start_s:.1f} s (load + setup); matching {n:,} × {n:,} ...", flush=True)

    def match(records: str, out: str):
        server_cpu = process_cpu(server.pid)
        code, secs, rss, text, cpu = run(matcher + ["match", "--config", "requester.toml", "--records", records,
                                                    "--peer", peer, "--out", out], cwd=folder, env=env)
        if code != 0:
            print(text, file=sys.stderr)
            raise SystemExit(f"match failed ({code})")
        m = re.search(r"(\d+) hit record\(s\).* in ([\d.]+) s", text)
        return secs, rss, int(m.group(1)), float(m.group(2)), cpu, process_cpu(server.pid) - server_cpu

    cores = len(os.sched_getaffinity(0))
    big_runs = []  # (kernel µs before, after, the match's figures)
    for _ in range(0 if args.queries_only else max(1, args.repeat)):
        shutil.rmtree(folder / "setup_cache", ignore_errors=True)  # each n × n match downloads the setup cold
        before = kernel_speed()
        figures = match("agency_b_records.csv", "hits_1m.csv")
        big_runs.append((before, kernel_speed(), figures))
    if args.queries_only:
        big_s, big_rss, big_hits, big_session = 0.0, 0.0, n // 10, 0.0
    else:
        big_s, big_rss, big_hits, big_session = sorted(r[2] for r in big_runs)[len(big_runs) // 2][:4]
    shutil.rmtree(folder / "setup_cache", ignore_errors=True)  # the 1M session cached the setup: start cold
    q_cold = match("agency_b_10k.csv", "hits_10k.csv")  # downloads the 1M setup and caches it
    q_warm = match("agency_b_10k.csv", "hits_10k.csv")
    server.send_signal(signal.SIGTERM)
    _, _, usage = os.wait4(server.pid, 0)
    server_rss = usage.ru_maxrss / 1024
    from matcher.protocols import group_backend, label_backend

    print()
    print(f"ristretto255 backend (this process and its children): {group_backend.describe()}")
    print(f"setup label sealing: {label_backend.DETAIL}")
    ahead = os.environ.get("MATCHER_BLIND_AHEAD", "").strip() != "0" and group_backend.FAST is not None
    print(f"requester blinds its tokens while reading its records: {'yes' if ahead else 'no'} "
          "(MATCHER_BLIND_AHEAD=0 turns it off)")
    print("| what | seconds | peak RSS |")
    print("|---|---|---|")
    print(f"| responder start, {n:,} records (load CSV + setup) | {start_s:.1f} | {server_rss:,.0f} MB (whole run) |")
    median = " (the median run)" if len(big_runs) > 1 else ""
    print(f"| `matcher match` {n:,} × {n:,} (whole process){median} | {big_s:.1f} (session {big_session:.1f}) "
          f"| {big_rss:,.0f} MB |")
    print(f"| 10k query, requester setup cache cold (whole process) | {q_cold[0]:.1f} (session {q_cold[3]:.1f}) "
          f"| {q_cold[1]:,.0f} MB |")
    print(f"| 10k query, warm caches (whole process) | {q_warm[0]:.1f} (session {q_warm[3]:.1f}) "
          f"| {q_warm[1]:,.0f} MB |")
    if big_runs:
        print(f"\n`matcher match` {n:,} × {n:,}, each run: both processes are CPU-bound, so their CPU over "
              f"the {cores} core(s) is the wall clock the machine allows; the kernel speed says how fast the host was")
        print("| run | wall s | requester CPU-s | responder CPU-s | CPU-s / cores "
              "| ecdh.evaluate µs/element before, after |")
        print("|---|---|---|---|---|---|")
        for i, (before, after, (secs, _, _, _, cpu, server_cpu)) in enumerate(big_runs, 1):
            print(f"| {i} | {secs:.1f} | {cpu:.1f} | {server_cpu:.1f} | {(cpu + server_cpu) / cores:.1f} "
                  f"| {before:.2f}, {after:.2f} |")
    print(f"\nhits: {big_hits:,} (expected {n // 10:,}); 10k query hits: {q_warm[2]:,}")
    return 0 if all(r[2][2] == n // 10 for r in big_runs) and big_hits == n // 10 else 1


if __name__ == "__main__":
    sys.exit(main())
