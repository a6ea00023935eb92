"""Faults: a requester killed mid-session, the server killed (SIGKILL) mid-session, SIGTERM.

Nothing is lost and nothing is left inconsistent: the session log verifies, budgets are
exactly what was reserved, the server frees a dead requester's session, a requester
whose server died gets UNAVAILABLE with a message.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import grpc
import pytest

from matcher.requester import run_match
from matcher.server.budgets import BudgetLedger
from matcher.storage import session_log
from matcher.v1 import matcher_pb2_grpc as pb_grpc
from tests.conftest import norm_digest  # noqa: F401
from tests.test_cli import served  # noqa: F401  (fixture)
from tests.test_e2e import EXPECTED_DEMO, _hello
from tests.test_hostile import _channel, _chunk, _end_rows, _finish, _points

ROOT = Path(__file__).resolve().parent.parent


class _Target:
    def __init__(self, port: int) -> None:
        self.port = port


def _state(agencies) -> Path:
    return agencies.workdir / "agency_a_state"


def _held_session(agencies, target, size: int = 3):
    """A session that has been accepted and then waits; returns (call, channel, release)."""
    gate = threading.Event()
    points = _points(size)

    def requests():
        yield _hello(agencies, size)
        gate.wait(30)
        yield _chunk(points)
        yield _finish(size)

    ch = _channel(agencies, target)
    call = pb_grpc.ResponderStub(ch).Match(requests(), timeout=30)
    assert next(call).WhichOneof("kind") == "accepted"
    return call, ch, gate


def test_requester_killed_mid_session_frees_the_server_session(agencies, start):
    running = start()
    cfg = agencies.requester_config()
    script = textwrap.dedent(f"""
        import sys, time, grpc
        sys.path.insert(0, {str(ROOT)!r})
        from matcher.v1 import matcher_pb2 as pb, matcher_pb2_grpc as pb_grpc
        from matcher.protocols import ecdh
        ca, key, cert = (open(p, 'rb').read()
                         for p in ({str(cfg.tls.ca)!r}, {str(cfg.tls.key)!r}, {str(cfg.tls.cert)!r}))
        ch = grpc.secure_channel('127.0.0.1:{running.port}', grpc.ssl_channel_credentials(ca, key, cert),
                                 options=[('grpc.ssl_target_name_override', 'agency-a')])
        def reqs():
            yield pb.MatchRequest(hello=pb.Hello(norm_conformance_digest={norm_digest()!r}, protocol='ecdh',
                                  request_size=5, reveal='requester',
                                  key_spec_fingerprint={cfg.key_spec().fingerprint()!r}, wire_version=2))
            yield pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=ecdh.blind_tokens(ecdh.new_key(), [b'x'])))
            time.sleep(600)
        call = pb_grpc.ResponderStub(ch).Match(reqs(), timeout=600)
        for msg in call:
            if msg.WhichOneof('kind') == 'evaluated':
                print('mid-session', flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "mid-session"
        proc.kill()  # SIGKILL: no goodbye, the kernel closes the socket
        proc.wait()
        t0 = time.monotonic()
        (end,) = _end_rows(agencies, wait=10)
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
    assert end["outcome"] == "CANCELLED" and end["elements"] <= 1
    assert running.servicer.wait_idle(5)  # no session thread left behind
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=None)
    assert len(run.result.hits) == len(EXPECTED_DEMO)


def test_server_killed_mid_session_leaves_log_and_budgets_consistent(agencies, served):  # noqa: F811
    peer, proc = served
    port = int(peer.rsplit(":", 1)[1])
    call, ch, gate = _held_session(agencies, _Target(port), size=3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with pytest.raises(grpc.RpcError) as err:
        for _ in call:
            pass
    gate.set()
    ch.close()
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert err.value.details()  # a message, e.g. "Socket closed" / "Connection reset"

    db = _state(agencies) / "sessions.db"
    report = session_log.verify(db)
    assert report.ok, report.reason
    rows = list(session_log.rows(db))
    assert [r["event"] for r in rows if r["session_id"]] == ["start"]  # cut short by a crash: no end row
    with sqlite3.connect(_state(agencies) / "budgets.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert BudgetLedger(_state(agencies) / "budgets.db").spent("agency-b") == 3  # exactly what was reserved

    # The requester side, through the client library: UNAVAILABLE with a message.
    from clients import MatchFailed

    with pytest.raises(MatchFailed) as failed:
        run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv", peer, out=None)
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE and failed.value.details


def test_sigterm_lets_a_running_session_finish_then_cancels_the_rest(agencies, served):  # noqa: F811
    peer, proc = served  # --grace 1
    port = int(peer.rsplit(":", 1)[1])
    finishing, ch1, gate1 = _held_session(agencies, _Target(port), size=3)
    stuck, ch2, _gate2 = _held_session(agencies, _Target(port), size=3)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    gate1.set()  # this one completes within the grace period
    kinds = [m.WhichOneof("kind") for m in finishing]
    assert kinds[-1] == "summary"
    with pytest.raises(grpc.RpcError) as err:
        for _ in stuck:
            pass
    assert err.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    assert proc.wait(timeout=30) == 0
    ch1.close()
    ch2.close()
    db = _state(agencies) / "sessions.db"
    assert session_log.verify(db).ok
    ends = sorted(r["outcome"] for r in session_log.rows(db) if r["event"] == "end")
    assert ends == ["CANCELLED", "OK"]  # both sessions have their end row: none lost


def test_every_client_call_carries_a_deadline(agencies, start, monkeypatch):
    running = start()
    seen: list[float | None] = []
    from clients import match_client

    real_stub = match_client.pb_grpc.ResponderStub

    class Spy:
        def __init__(self, channel):
            self._stub = real_stub(channel)

        def GetPolicy(self, request, timeout=None):
            seen.append(timeout)
            return self._stub.GetPolicy(request, timeout=timeout)

        def Match(self, requests, timeout=None):
            seen.append(timeout)
            return self._stub.Match(requests, timeout=timeout)

    monkeypatch.setattr(match_client.pb_grpc, "ResponderStub", Spy)
    run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
              f"127.0.0.1:{running.port}", out=None)
    assert len(seen) == 2 and all(t is not None and 0 < t <= 3600 for t in seen)
