"""``--log-format json``: one JSON object per line with the documented fields, and no identity data."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from matcher.cli import main
from matcher.logs import FIELDS, JsonFormatter, log_fields, setup_logging
from tests.conftest import EXTRA_OUTPUT, identity_values, leaks_in

ROOT = Path(__file__).resolve().parent.parent
ALWAYS = {"time", "level", "logger", "message", "pid"}


def serve(agencies, *flags: str, env: dict | None = None) -> tuple[subprocess.Popen, str, list[str]]:
    """`matcher serve` in its own process; returns (process, first line, lines read until it serves)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "matcher.cli", *flags, "serve", "--config", str(agencies.responder_toml),
         "--grace", "1"],
        stderr=subprocess.PIPE, text=True, cwd=agencies.workdir,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})),
    )
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "serving on port" in line:
            break
    assert lines and "serving on port" in lines[-1], "".join(lines)
    return proc, lines[-1], lines


def parse_json_lines(text: str) -> list[dict]:
    objs = []
    for line in text.splitlines():
        obj = json.loads(line)  # every line is one JSON object
        assert isinstance(obj, dict)
        assert obj.keys() >= ALWAYS, line
        assert set(obj) <= ALWAYS | FIELDS | {"exception"}, line
        objs.append(obj)
    return objs


def test_service_and_cli_json_logs_have_the_documented_shape_and_no_identity_data(agencies, request, capsys):
    proc, serving, lines = serve(agencies, "--log-format", "json")
    try:
        first = json.loads(serving)
        assert first["event"] == "serving" and first["tls"] == "mTLS" and isinstance(first["port"], int)
        peer = f"127.0.0.1:{first['port']}"
        code = main(["match", "--config", str(agencies.requester_toml), "--records",
                     str(agencies.workdir / "agency_b_records.csv"), "--peer", peer,
                     "--out", str(agencies.workdir / "hits.csv"), "--log-format", "json"])
        assert code == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    server_err = "".join(lines) + proc.stderr.read()
    EXTRA_OUTPUT.setdefault(request.node.nodeid, []).append(server_err)
    captured = capsys.readouterr()

    server = parse_json_lines(server_err)
    ends = [o for o in server if o.get("event") == "session_end"]
    assert len(ends) == 1
    end = ends[0]
    assert end["peer"] == "agency-b" and end["protocol"] == "ecdh" and end["outcome"] == "OK"
    assert end["elements"] > 0 and end["seconds"] >= 0 and len(end["session_id"]) == 16
    assert end["level"] == "INFO" and end["logger"] == "matcher.server.responder"
    assert end["time"].endswith("Z")
    assert [o["event"] for o in server if "event" in o][-2:] == ["shutting_down", "stopped"]

    client = parse_json_lines(captured.err)
    (done,) = [o for o in client if o.get("event") == "session_end"]
    assert done["session_id"] == end["session_id"] and done["elements"] == end["elements"]
    assert done["hit_count"] == 5 and done["command"] == "match"
    rejected = [o for o in client if o.get("event") == "record_rejected"]
    assert len(rejected) == 1 and rejected[0]["level"] == "WARNING"

    # The demo's records went through both sides: none of their values is in either log.
    assert len(identity_values()) > 20
    assert not leaks_in(server_err + captured.err, agencies.workdir)
    # The result (hit records) goes to the hits file and stdout, not to the log lines.
    assert "hit record(s)" in captured.out


def test_text_stays_the_default(agencies, request):
    proc, serving, lines = serve(agencies)
    proc.kill()
    proc.wait()
    EXTRA_OUTPUT.setdefault(request.node.nodeid, []).append("".join(lines))
    assert " INFO root: serving on port " in serving
    with pytest.raises(json.JSONDecodeError):
        json.loads(serving)


def test_environment_variable_selects_json(agencies, request):
    proc, serving, lines = serve(agencies, env={"MATCHER_LOG_FORMAT": "json"})
    proc.kill()
    proc.wait()
    EXTRA_OUTPUT.setdefault(request.node.nodeid, []).append("".join(lines))
    assert json.loads(serving)["event"] == "serving"


def test_cli_errors_are_json_records_with_exit_status(tmp_path, capsys):
    code = main(["--log-format", "json", "audit-log", "verify", str(tmp_path / "missing.db")])
    assert code == 2
    (obj,) = parse_json_lines(capsys.readouterr().err)
    assert obj["event"] == "command_failed" and obj["exit_status"] == 2 and obj["reason"] == "ConfigError"
    assert obj["level"] == "ERROR" and "no such session log" in obj["message"]


def test_only_declared_scalar_fields_enter_a_line():
    with pytest.raises(ValueError, match="not a log field"):
        log_fields(given_names="x")
    with pytest.raises(TypeError):
        log_fields(peer=b"agency-b")
    stream = io.StringIO()
    setup_logging("json", stream=stream)
    try:
        logging.getLogger("matcher.test").error("boom", extra={"given_names": "Ivanov", **log_fields(port=1)})
    finally:
        setup_logging("text")
    obj = json.loads(stream.getvalue())
    assert obj["port"] == 1 and "given_names" not in obj and "Ivanov" not in stream.getvalue()


def test_exceptions_are_one_line():
    try:
        raise RuntimeError("bad\nthing")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line and "RuntimeError" in json.loads(line)["exception"]
