"""A changed watchlist without a restart (issue 16, item 4): reload aside, swap, sessions keep their epoch.

Real responders on loopback with mTLS: the watchlist file and [[peers]] are changed,
the server is told to reload (``RunningResponder.reload``, which SIGHUP and
``matcher reload`` call), and new sessions see the new hits, a removed peer is
refused, a session in flight finishes on the epoch it started with, a reload that
fails keeps the old state serving, and new TLS files are used from the next handshake.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from clients import MatchFailed
from matcher.certs import TestCA
from matcher.cli import main
from matcher.requester import client_for, run_match
from tests.conftest import EXTRA_OUTPUT, write_cert

ROOT = Path(__file__).resolve().parent.parent
OLD_HITS = {"B-101", "B-102", "B-103", "B-104", "B-105"}
# The watchlist after the change: A-001 (B-101's hit) is gone, a record for B-108 is new.
NEW_ROW = "A-017,Sarah,Johnson,21.05.1990,F,GBR,,,DE-BKA-2026-0001\n"
NEW_HITS = OLD_HITS - {"B-101"} | {"B-108"}


def _change_watchlist(agencies) -> None:
    path = agencies.workdir / "agency_a_watchlist.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.startswith("A-001,")) + NEW_ROW, encoding="utf-8")


def _hits(agencies, port: int, client=None) -> set[str]:
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv", f"127.0.0.1:{port}",
                    out=None, client=client)
    return {h.record_id for h in run.result.hits}


def test_new_sessions_see_the_new_watchlist_after_a_reload(agencies, start) -> None:
    running = start()
    assert _hits(agencies, running.port) == OLD_HITS
    old_epoch = running.state.current().key.epoch
    _change_watchlist(agencies)
    assert _hits(agencies, running.port) == OLD_HITS  # nothing changes before the reload
    result = running.reload(agencies.responder_toml)
    assert result.ok, result.detail
    assert "17 rows read" not in result.detail and "16 rows read" in result.detail
    assert running.state.current().key.epoch != old_epoch  # a changed watchlist gets a new key epoch
    assert _hits(agencies, running.port) == NEW_HITS


def test_reloaded_peers_and_budgets_apply_to_new_sessions(agencies, start) -> None:
    running = start()
    assert _hits(agencies, running.port) == OLD_HITS
    agencies.edit("responder", "daily_budget = 100000", "daily_budget = 3")
    assert running.reload(agencies.responder_toml).ok
    with pytest.raises(MatchFailed) as err:
        _hits(agencies, running.port)
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    # agency B is removed (another agency stays): its sessions are refused from now on
    agencies.edit("responder", 'name = "agency-b"\ncommon_name = "agency-b"',
                  'name = "agency-c"\ncommon_name = "agency-c"')
    assert running.reload(agencies.responder_toml).ok
    with pytest.raises(MatchFailed) as err:
        _hits(agencies, running.port)
    assert err.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_a_session_in_flight_finishes_on_the_epoch_it_started_with(agencies, start) -> None:
    running = start()
    old_epoch = running.state.current().key.epoch
    hello_sent, resume = threading.Event(), threading.Event()
    client = client_for(agencies.requester_config(), f"127.0.0.1:{running.port}")
    real_match = client._stub.Match

    def held_before_hello(requests, **kwargs):
        # The call is open (the responder took the state in force for it) but nothing is
        # sent until the reload is done: the Hello, the chunks and Finish all come after it.
        def gated():
            hello_sent.set()
            resume.wait(60)
            yield from requests

        return real_match(gated(), **kwargs)

    client._stub.Match = held_before_hello
    outcome: dict[str, object] = {}

    def in_flight() -> None:
        try:
            run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                            f"127.0.0.1:{running.port}", out=None, client=client)
            outcome["hits"], outcome["epoch"] = {h.record_id for h in run.result.hits}, run.result.key_epoch
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    thread = threading.Thread(target=in_flight)
    thread.start()
    try:
        assert hello_sent.wait(30)
        deadline = time.monotonic() + 30
        while running.servicer._active < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert running.servicer._active == 1  # the session runs on the responder
        _change_watchlist(agencies)
        assert running.reload(agencies.responder_toml).ok
        new_epoch = running.state.current().key.epoch
        assert new_epoch != old_epoch
        assert _hits(agencies, running.port) == NEW_HITS  # a new session, beside the held one
    finally:
        resume.set()
        thread.join(60)
        client.close()
    assert "error" not in outcome, outcome.get("error")
    assert outcome == {"hits": OLD_HITS, "epoch": old_epoch}


@pytest.mark.parametrize("breakage", ["bad toml", "unknown setting", "watchlist gone", "restart-only setting"])
def test_a_reload_that_fails_keeps_the_old_state_serving(agencies, start, caplog, breakage) -> None:
    running = start()
    epoch = running.state.current().key.epoch
    _change_watchlist(agencies)  # would change the hits, if the reload went through
    if breakage == "bad toml":
        agencies.responder_toml.write_text(agencies.responder_toml.read_text() + "\n[[peers]\n")
    elif breakage == "unknown setting":
        agencies.edit("responder", "[responder]\n", "[responder]\nmax_sesions = 3\n")
    elif breakage == "watchlist gone":
        (agencies.workdir / "agency_a_watchlist.csv").unlink()
    else:
        agencies.edit("responder", 'listen = "127.0.0.1:0"', 'listen = "127.0.0.1:1"')
    result = running.reload(agencies.responder_toml)
    assert not result.ok
    expected = {"bad toml": "not valid TOML", "unknown setting": "max_sesions",
                "watchlist gone": "cannot open records file", "restart-only setting": "listen changed"}[breakage]
    assert expected in result.detail
    assert any("reload failed" in r.getMessage() and expected in r.getMessage() for r in caplog.records)
    assert running.state.current().key.epoch == epoch
    assert _hits(agencies, running.port) == OLD_HITS


def _served_certificate(port: int, agencies) -> bytes:
    """The DER certificate the responder presents in a new TLS handshake (as agency B, with its client certificate)."""
    certs = agencies.workdir / "certs"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs / "ca.pem")
    ctx.load_cert_chain(certs / "agency-b.pem", certs / "agency-b.key")
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="agency-a") as tls:
        return tls.getpeercert(binary_form=True)


def test_new_tls_files_are_used_from_the_next_handshake(agencies, start) -> None:
    running = start()
    certs = agencies.workdir / "certs"
    old = _served_certificate(running.port, agencies)
    ca = TestCA.load((certs / "ca.pem").read_bytes(), (certs / "ca.key").read_bytes())
    write_cert(ca, certs, "agency-a")  # a new certificate and key for the responder, same names
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    new = x509.load_pem_x509_certificate((certs / "agency-a.pem").read_bytes()).public_bytes(Encoding.DER)
    assert new != old
    assert _served_certificate(running.port, agencies) == old  # not before the reload
    assert running.reload(agencies.responder_toml).ok
    assert hashlib.sha256(_served_certificate(running.port, agencies)).digest() == hashlib.sha256(new).digest()
    assert _hits(agencies, running.port) == OLD_HITS  # and sessions work with it


# -- the command line: SIGHUP through `matcher reload` ---------------------------------------


def test_matcher_reload_signals_the_running_server(agencies, capsys, request) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "matcher.cli", "serve", "--config", str(agencies.responder_toml),
                             "--grace", "1"], stderr=subprocess.PIPE, text=True, cwd=agencies.workdir, env=env)
    lines: list[str] = []
    try:
        port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and port is None:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if m := re.search(r"serving on port (\d+)", line):
                port = int(m.group(1))
        assert port, "".join(lines)
        pid_file = agencies.workdir / "agency_a_state" / "serve.pid"
        assert pid_file.read_text().strip() == str(proc.pid)
        assert stat.S_IMODE(pid_file.stat().st_mode) == 0o600
        # a broken config: the server is not even signalled, and goes on serving
        good = agencies.responder_toml.read_text()
        agencies.responder_toml.write_text(good + "\n[[peers]\n")
        assert main(["reload", "--config", str(agencies.responder_toml), "--wait", "60"]) == 2
        assert "was not signalled" in capsys.readouterr().err
        # a config that loads but cannot be served (its watchlist is gone): the server says why, keeps the old one
        agencies.responder_toml.write_text(good)
        watchlist = agencies.workdir / "agency_a_watchlist.csv"
        kept = watchlist.read_text(encoding="utf-8")
        watchlist.unlink()
        assert main(["reload", "--config", str(agencies.responder_toml), "--wait", "60"]) == 1
        assert "reload FAILED" in capsys.readouterr().err
        assert _hits(agencies, port) == OLD_HITS
        watchlist.write_text(kept, encoding="utf-8")
        _change_watchlist(agencies)
        assert main(["reload", "--config", str(agencies.responder_toml), "--wait", "60"]) == 0
        assert "reloaded: 16 rows read" in capsys.readouterr().out
        assert _hits(agencies, port) == NEW_HITS
        # a plain SIGHUP does the same
        watchlist.write_text(kept, encoding="utf-8")
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 60
        while _hits(agencies, port) != OLD_HITS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _hits(agencies, port) == OLD_HITS
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not pid_file.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        EXTRA_OUTPUT.setdefault(request.node.nodeid, []).append("".join(lines) + proc.stderr.read())


def test_matcher_reload_without_a_running_server_says_so(agencies, capsys) -> None:
    assert main(["reload", "--config", str(agencies.responder_toml), "--wait", "1"]) == 2
    assert "no running server for this config" in capsys.readouterr().err
