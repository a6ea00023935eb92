"""The Node.js requester client (clients/node) against a real `matcher serve`: same hits as Python.

Needs `node` and the client's dependencies (`make test` runs `npm ci` first); skipped, saying so,
when node is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from matcher.cli import main as cli_main
from matcher.identity.conformance import conformance
from tests.conftest import EXTRA_OUTPUT

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "clients" / "node"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed: the Node client is not tested"),
    pytest.mark.skipif(not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir(),
                       reason="clients/node/node_modules missing: run `make test` (it runs npm ci)"),
]


def _serve(agencies, request) -> tuple[str, subprocess.Popen]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "matcher.cli", "serve", "--config", str(agencies.responder_toml), "--grace", "1"],
        stderr=subprocess.PIPE, text=True, cwd=agencies.workdir, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        start_new_session=True,  # its worker processes too are ended with it (they share its stderr)
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    port = None
    while time.monotonic() < deadline and port is None:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"serving on port (\d+)", line)
        port = m.group(1) if m else None
    assert port, "server did not start:\n" + "".join(lines)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # graceful: the server ends its workers
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        EXTRA_OUTPUT.setdefault(request.node.nodeid, []).append("".join(lines) + proc.stderr.read())

    request.addfinalizer(stop)
    return f"127.0.0.1:{port}", proc


def _node(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([NODE, str(NODE_DIR / "bin" / "matcher-node.js"), *args], capture_output=True, text=True,
                         timeout=300)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def _synthetic_pair(agencies) -> Path:
    """A 300-record synthetic pair in the demo's layouts (many scripts, corrupted copies)."""
    synth = agencies.workdir / "synth"
    assert cli_main(["synth", "--size", "300", "--seed", "11", "--out", str(synth)]) == 0
    agencies.edit("responder", 'watchlist = "agency_a_watchlist.csv"', f'watchlist = "{synth / "responder.csv"}"')
    return synth / "requester.csv"


def _tls_args(agencies) -> list[str]:
    cfg = agencies.requester_config()
    return ["--ca", str(cfg.tls.ca), "--cert", str(cfg.tls.cert), "--key", str(cfg.tls.key),
            "--server-name", cfg.requester.server_name]


@pytest.mark.parametrize("reveal", ["requester", "cardinality", "both"])
def test_node_client_finds_the_same_hits_as_the_python_client(agencies, request, reveal, capsys):
    records = _synthetic_pair(agencies)
    for side in ("responder", "requester"):
        agencies.edit(side, 'reveal = "requester"', f'reveal = "{reveal}"')
    peer, _ = _serve(agencies, request)
    tokens = agencies.workdir / "tokens.json"
    assert cli_main(["tokens", "--config", str(agencies.requester_toml), "--records", str(records),
                     "--out", str(tokens)]) == 0
    py_hits, node_hits = agencies.workdir / "py.csv", agencies.workdir / "node.csv"
    capsys.readouterr()
    assert cli_main(["match", "--config", str(agencies.requester_toml), "--records", str(records),
                     "--peer", peer, "--out", str(py_hits)]) == 0
    py_out = capsys.readouterr().out
    summary = json.loads(_node("match", "--tokens", str(tokens), "--peer", peer, "--reveal", reveal,
                               "--out", str(node_hits), *_tls_args(agencies)).stdout)
    if reveal == "cardinality":
        count = int(re.match(r"(\d+) of (\d+) tokens hit", py_out).group(1))
        assert count > 20 and summary["hit_count"] == count
        assert not node_hits.exists()
        return
    assert node_hits.read_bytes() == py_hits.read_bytes()
    assert summary["hit_records"] > 20
    assert stat.S_IMODE(node_hits.stat().st_mode) == 0o600
    if reveal == "both":  # the responder recorded the same own hits for both sessions
        settings = agencies.responder_config().responder
        path = settings.hits_file or settings.state_dir / "responder_hits.csv"
        rows = path.read_text(encoding="utf-8").splitlines()[1:]
        by_session: dict[str, set[tuple[str, ...]]] = {}
        for row in rows:
            _time, session, _peer, *rest = row.split(",")
            by_session.setdefault(session, set()).add(tuple(rest))
        assert len(by_session) == 2
        first, second = by_session.values()
        assert first == second and len(first) > 20


def test_node_client_refuses_tokens_of_another_tokenisation(agencies, request):
    peer, _ = _serve(agencies, request)
    tokens = agencies.workdir / "tokens.json"
    assert cli_main(["tokens", "--config", str(agencies.requester_toml), "--records",
                     str(agencies.workdir / "agency_b_records.csv"), "--out", str(tokens)]) == 0
    doc = json.loads(tokens.read_text(encoding="utf-8"))
    doc["norm_conformance_digest"] = "0" * 64
    tokens.write_text(json.dumps(doc), encoding="utf-8")
    out = _node("match", "--tokens", str(tokens), "--peer", peer, "--out", str(agencies.workdir / "h.csv"),
                *_tls_args(agencies), check=False)
    assert out.returncode == 1
    assert "tokenises differently" in out.stderr and conformance("n2").digest in out.stderr


def test_node_computes_the_same_conformance_digest():
    from matcher.identity import conformance as conf

    for version, name in conf.NORM_VECTOR_FILES.items():
        path = Path(conf.__file__).parent / "vectors" / name
        assert _node("digest", str(path)).stdout.strip() == conformance(version).expected_digest
