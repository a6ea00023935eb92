"""The command line, end to end: `matcher serve` as a real process, `matcher match` against it."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from matcher.cli import main
from tests.conftest import EXTRA_OUTPUT
from tests.test_e2e import EXPECTED_DEMO


@pytest.fixture
def served(agencies, request):
    """`matcher serve` on a free loopback port, in its own process; yields 'HOST:PORT'."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "matcher.cli", "serve", "--config", str(agencies.responder_toml), "--grace", "1"],
        stderr=subprocess.PIPE, text=True, cwd=agencies.workdir,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)),
    )
    port = None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"serving on port (\d+)", line)
        if m:
            port = m.group(1)
            break
    assert port, "server did not start:\n" + "".join(lines)
    yield f"127.0.0.1:{port}", proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    # the server's whole stderr goes through the output scan of tests/conftest.py
    EXTRA_OUTPUT.setdefault(request.node.nodeid, []).append("".join(lines) + proc.stderr.read())


def test_match_against_serve_writes_hits_csv(agencies, served, capsys):
    peer, proc = served
    out = agencies.workdir / "out" / "hits.csv"
    code = main(["match", "--config", str(agencies.requester_toml), "--records",
                 str(agencies.workdir / "agency_b_records.csv"), "--peer", peer, "--out", str(out)])
    assert code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["record_id"]: (tuple(r["match_keys"].split(";")), r["case_ref"]) for r in rows} == EXPECTED_DEMO
    err = capsys.readouterr().err
    assert "13 rows read: 12 used (0 with dropped fields), 1 rejected" in err and "rejected line 14" in err
    # SIGTERM: graceful shutdown, exit 0.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_match_as_a_process_ends_with_all_its_output_written(agencies, served):
    """`python -m matcher.cli match` ends by os._exit after the run (cli.entry): nothing may be lost.

    stdout and stderr are pipes (block-buffered), the logs JSON lines: the summary line, the
    log lines, the hits file and the session log's end line are all there, and a failing
    match exits the orderly way with its status.
    """
    peer, _ = served
    out = agencies.workdir / "hits.csv"
    agencies.edit("requester", "[requester]\n", f"[requester]\nsession_log = \"{agencies.workdir / 'req.db'}\"\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    env.pop("PYTHONUNBUFFERED", None)  # block-buffered pipes, as for an agency's job runner
    command = [sys.executable, "-m", "matcher.cli", "match", "--config", str(agencies.requester_toml), "--records",
               str(agencies.workdir / "agency_b_records.csv"), "--peer", peer, "--out", str(out)]
    done = subprocess.run([*command, "--log-format", "json"], capture_output=True, text=True, env=env,
                          cwd=agencies.workdir, timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^5 hit record\(s\) of 12 .* written to .*hits\.csv in [0-9.]+ s, session \w+",
                     done.stdout, re.M), done.stdout
    assert '"event": "records_loaded"' in done.stderr and '"event": "session_end"' in done.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["record_id"]: (tuple(r["match_keys"].split(";")), r["case_ref"]) for r in rows} == EXPECTED_DEMO
    from matcher.storage.session_log import verify

    assert verify(agencies.workdir / "req.db").rows == 2  # the session's start and end, chained and signed
    failed = subprocess.run([*command[:-4], "--peer", "127.0.0.1:1", "--out", str(out)], capture_output=True,
                            text=True, env=env, cwd=agencies.workdir, timeout=120)
    assert failed.returncode == 1 and "matcher match:" in failed.stderr


def test_match_with_other_match_keys_exits_1_naming_both_fingerprints(agencies, served, capsys):
    peer, _ = served
    theirs = agencies.responder_config().key_spec().fingerprint()
    agencies.edit("requester", 'names_dob = ["folded_soundex(name_tokens)", "date_of_birth_or_swapped"]',
                  'name_dob = ["family_name", "date_of_birth"]')
    mine = agencies.requester_config().key_spec().fingerprint()
    code = main(["match", "--config", str(agencies.requester_toml), "--records",
                 str(agencies.workdir / "agency_b_records.csv"), "--peer", peer,
                 "--out", str(agencies.workdir / "hits.csv")])
    assert code == 1
    err = capsys.readouterr().err
    assert "FAILED_PRECONDITION" in err and mine in err and theirs in err
    assert not (agencies.workdir / "hits.csv").exists()


def test_policy_and_fingerprint_commands(agencies, served, capsys):
    peer, _ = served
    assert main(["policy", "--config", str(agencies.requester_toml), "--peer", peer]) == 0
    out = capsys.readouterr().out
    assert "same as ours" in out and "document = [document_number, document_country]" in out
    assert "DIFFERS" not in out and re.search(r"conformance digest: +[0-9a-f]{64} \(same as ours\)", out)
    assert main(["fingerprint", "--config", str(agencies.responder_toml)]) == 0
    assert capsys.readouterr().out.strip() == agencies.responder_config().key_spec().fingerprint()


def test_bad_config_and_bad_records_exit_2_with_a_reason(agencies, capsys):
    agencies.edit("requester", 'date_order = "MDY"', 'date_order = "sometimes"')
    assert main(["match", "--config", str(agencies.requester_toml), "--records", "x.csv", "--peer", "127.0.0.1:1"]) == 2
    assert "date_order" in capsys.readouterr().err
    agencies.edit("requester", 'date_order = "sometimes"', 'date_order = "MDY"')
    (agencies.workdir / "bad.csv").write_text("nothing,useful\n1,2\n", encoding="utf-8")
    assert main(["match", "--config", str(agencies.requester_toml), "--records",
                 str(agencies.workdir / "bad.csv"), "--peer", "127.0.0.1:1"]) == 2
    assert "person_id" in capsys.readouterr().err


def test_unreachable_responder_exits_1(agencies, capsys):
    code = main(["match", "--config", str(agencies.requester_toml), "--records",
                 str(agencies.workdir / "agency_b_records.csv"), "--peer", "127.0.0.1:9"])
    assert code == 1
    assert "could not connect to 127.0.0.1:9" in capsys.readouterr().err


def test_demo_prints_the_expected_hits(tmp_path, capsys):
    assert main(["demo", "--dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    for record_id, (keys, case_ref) in EXPECTED_DEMO.items():
        assert re.search(rf"{record_id}\s+{keys[0]}\s+{len(keys)}\s+{case_ref}", out)
    assert (tmp_path / "demo" / "hits.csv").exists()


def test_help_explains_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("serve", "match", "policy", "fingerprint", "demo", "dev-certs"):
        assert cmd in out


def test_dev_certs_writes_private_keys(tmp_path, capsys):
    assert main(["dev-certs", "--out", str(tmp_path), "agency-x", "agency-y"]) == 0
    assert (tmp_path / "ca.pem").exists()
    assert oct((tmp_path / "agency-x.key").stat().st_mode & 0o777) == "0o600"


def test_progress_is_shown_on_a_terminal_only():
    import io

    from matcher.cli import _progress_printer

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert _progress_printer(io.StringIO()) is None  # a pipe or a CI log: nothing
    tty = Tty()
    show = _progress_printer(tty)
    show("records read", 100000, 0)
    show("matched", 4096, 4096)
    assert "records read: 100000" in tty.getvalue() and "4096/4096 elements (100.0%)\n" in tty.getvalue()


def test_loader_reports_progress(tmp_path, monkeypatch):
    import matcher.identity.record_pipeline as pipeline
    import matcher.identity.records as records

    monkeypatch.setattr(pipeline, "PROGRESS_EVERY", 2)  # the row pipeline counts rows for every source
    path = tmp_path / "r.csv"
    path.write_text("record_id,document_number,document_country\n" + "".join(f"{i},X{i},DEU\n" for i in range(5)))
    seen = []
    from matcher.identity.match_keys import KeySpec

    spec = KeySpec.from_mapping("n1", {"document": ["document_number", "document_country"]})
    records.load_records(path, records.CsvFormat(date_order="DMY"), spec, progress=seen.append)
    assert seen == [2, 4]
