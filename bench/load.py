"""Bounded load test on loopback mTLS (``make load``): many concurrent requester sessions.

The responder runs in its own process (``matcher.server.service`` with a real mTLS gRPC
server) over a synthetic watchlist of ``--records`` documents, with a daily budget of
exactly ``sessions x (records + CANARIES)`` for the requester agency (each ecdh session
sends ``CANARIES`` check elements besides its tokens). ``--sessions`` requesters run
at once, each in a thread with its own channel and no worker pool (workers=1), each
with ``--records`` records of which a known, session-specific tenth is in the
watchlist. Checks: every session gets exactly its expected hits with the right case
references; the budget ledger is charged exactly that; one more
element is then refused with RESOURCE_EXHAUSTED; the session log verifies with one OK
row per session. Prints sessions per second, p50/p99 session time and the server's
peak RSS. Stops by itself; exit status 1 if any check fails.

    python bench/load.py --sessions 32 --records 10000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc  # noqa: E402

from clients import MatchClient, MatchFailed, TlsFiles  # noqa: E402
from clients.sessions.ecdh import CANARIES  # noqa: E402
from matcher.certs import TestCA  # noqa: E402
from matcher.identity.records import LoadResult, TokenisedRecord  # noqa: E402
from tests.harness import KEYSPEC, document_token  # noqa: E402

PEER = "agency-b"


def _peak_rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _serve(tmp: str, n: int, budget: int, pem: tuple[bytes, bytes, bytes], ports, stop, out) -> None:
    from matcher.config import ResponderConfig
    from matcher.server.service import ResponderServicer, TlsMaterial, build_server
    from matcher.server.state import ResponderState

    cfg = ResponderConfig.model_validate({
        "responder": {"listen": "127.0.0.1:0", "watchlist": f"{tmp}/unused.csv", "state_dir": f"{tmp}/state",
                      "session_log": f"{tmp}/state/sessions.db", "workers": 0, "max_sessions": 64},
        "peers": [{"name": PEER, "common_name": PEER, "daily_budget": budget}],
        "records": {"date_order": "DMY"},
        "norm_version": KEYSPEC.norm_version,
        "match_keys": {k.name: list(k.fields) for k in KEYSPEC.keys},
    })
    watchlist = [TokenisedRecord(f"A-{i}", f"CASE-{i:08d}", (("document", document_token(f"R{i:09d}")),))
                 for i in range(n)]
    state = ResponderState(cfg, LoadResult(watchlist, [], n))
    server, port, _ = build_server(ResponderServicer(state), "127.0.0.1:0", TlsMaterial(*pem))
    server.start()
    ports.put(port)
    stop.wait()
    server.stop(5).wait()
    state.close()
    out.put(_peak_rss_kib())


def requester_set(session: int, n: int, watchlist: int) -> tuple[list[TokenisedRecord], dict[str, str]]:
    """``n`` records of which every tenth is watchlist entry ``(session * 997 + k) % watchlist``; the rest unique."""
    records, expected = [], {}
    for k in range(n):
        if k % 10 == 0:
            i = (session * 997 + k) % watchlist
            doc, ref = f"R{i:09d}", f"CASE-{i:08d}"
            expected[f"S{session}-{k}"] = ref
        else:
            doc = f"Q{session:04d}{k:09d}"
        records.append(TokenisedRecord(f"S{session}-{k}", "", (("document", document_token(doc)),)))
    return records, expected


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=32)
    p.add_argument("--records", type=int, default=10_000, help="records per session and in the watchlist")
    args = p.parse_args(argv)
    n, sessions = args.records, args.sessions
    ca = TestCA()
    server_cert, client_cert = ca.issue("agency-a"), ca.issue(PEER)
    tls = TlsFiles(client_cert.cert_pem, client_cert.key_pem, ca.cert_pem)
    ctx = mp.get_context("spawn")
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        ports, stop, out = ctx.Queue(), ctx.Event(), ctx.Queue()
        server = ctx.Process(target=_serve, args=(tmp, n, sessions * (n + CANARIES),
                                                  (server_cert.cert_pem, server_cert.key_pem, ca.cert_pem),
                                                  ports, stop, out))
        t_setup = time.perf_counter()
        server.start()
        port = ports.get(timeout=600)
        print(f"responder up in {time.perf_counter() - t_setup:.1f} s ({n} watchlist entries, pid {server.pid})")
        sets = [requester_set(s, n, n) for s in range(sessions)]
        durations: list[float] = [0.0] * sessions
        barrier = threading.Barrier(sessions)
        rss_samples: list[int] = []

        def one(s: int) -> None:
            records, expected = sets[s]
            with MatchClient(f"127.0.0.1:{port}", tls=tls, server_name="agency-a", workers=1, timeout=1800) as c:
                barrier.wait()
                t0 = time.perf_counter()
                try:
                    result = c.match(records, KEYSPEC)
                except MatchFailed as exc:
                    problems.append(f"session {s}: {exc.code.name}: {exc.details}")
                    return
                durations[s] = time.perf_counter() - t0
            got = {h.record_id: h.case_ref for h in result.hits}
            if got != expected:
                problems.append(f"session {s}: {len(got)} hits, expected {len(expected)} (or wrong case references)")

        def sample() -> None:
            while server.is_alive() and any(t.is_alive() for t in threads):
                try:
                    rss_samples.append(_peak_rss_kib(server.pid))
                except OSError:
                    return
                time.sleep(0.5)

        threads = [threading.Thread(target=one, args=(s,)) for s in range(sessions)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0

        # The budget is exactly spent: one more element is refused.
        with MatchClient(f"127.0.0.1:{port}", tls=tls, server_name="agency-a", workers=1, timeout=60) as c:
            extra, _ = requester_set(sessions, 1, n)
            try:
                c.match(extra, KEYSPEC)
                problems.append("a session over the daily budget was accepted")
            except MatchFailed as exc:
                if exc.code != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    problems.append(f"over-budget session: {exc.code.name}, expected RESOURCE_EXHAUSTED")
        stop.set()
        server.join(60)
        peak_kib = out.get(timeout=10)

        from matcher.server.budgets import BudgetLedger
        from matcher.storage import session_log

        spent = BudgetLedger(Path(tmp) / "state" / "budgets.db").spent(PEER)
        if spent != sessions * (n + CANARIES):
            problems.append(f"budget ledger says {spent} elements spent, expected exactly {sessions * (n + CANARIES)}")
        db = Path(tmp) / "state" / "sessions.db"
        if not session_log.verify(db).ok:
            problems.append("the session log does not verify")
        oks = sum(1 for r in session_log.rows(db) if r["event"] == "end" and r["outcome"] == "OK")
        if oks != sessions:
            problems.append(f"{oks} OK sessions in the session log, expected {sessions}")

    done = sorted(d for d in durations if d)
    if done:
        q = statistics.quantiles(done, n=100, method="inclusive") if len(done) > 1 else [done[0]] * 99
        print(f"{len(done)}/{sessions} concurrent sessions of {n} records against {n} watchlist entries, "
              f"{n // 10} hits each")
        print(f"wall {wall:.1f} s = {len(done) / wall:.2f} sessions/s ({len(done) * n / wall:,.0f} records/s); "
              f"session time p50 {q[49]:.1f} s, p99 {q[98]:.1f} s, max {done[-1]:.1f} s")
        print(f"responder peak RSS {peak_kib / 1024:.0f} MiB (sampled during the run: "
              f"{max(rss_samples, default=0) / 1024:.0f} MiB)")
    print(f"budget: {sessions * (n + CANARIES)} elements ({CANARIES} check elements a session) charged exactly, "
          "the next element refused; session log verifies")
    for prob in problems:
        print("FAIL:", prob)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
