"""The hash-chained session log: every edit, deletion or reordering is detected."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from matcher.storage import session_log
from matcher.cli import main
from matcher.storage.session_log import SessionLog, verify


def _log_with(path: Path, n: int = 5) -> None:
    log = SessionLog(path)
    for i in range(n):
        log.append(event="start", session_id=f"s{i}", peer="agency-b", protocol="ecdh", reveal="requester",
                   request_size=10 + i)
    log.close()


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for st in statements:
        conn.execute(st)
    conn.commit()
    conn.close()


def test_intact_log_verifies(tmp_path):
    db = tmp_path / "s.db"
    _log_with(db)
    rep = verify(db)
    assert rep.ok and rep.rows == 5 and rep.head_seq == 5
    assert main(["audit-log", "verify", str(db)]) == 0


@pytest.mark.parametrize(
    "statements, bad_row",
    [
        (["UPDATE sessions SET request_size = 99 WHERE seq = 3"], 3),
        (["UPDATE sessions SET peer = 'agency-x' WHERE seq = 1"], 1),
        (["DELETE FROM sessions WHERE seq = 2"], 3),
        (["DELETE FROM sessions WHERE seq = 1"], 2),
        # reorder: swap the contents of rows 2 and 4 (hashes travel with them)
        (["UPDATE sessions SET seq = 100 WHERE seq = 2", "UPDATE sessions SET seq = 2 WHERE seq = 4",
          "UPDATE sessions SET seq = 4 WHERE seq = 100"], 2),
        (["DELETE FROM sessions WHERE seq = 5"], 5),  # the newest row: caught by the head record
        (["DELETE FROM sessions WHERE seq >= 4"], 4),
    ],
)
def test_edited_deleted_or_reordered_rows_are_detected(tmp_path, capsys, statements, bad_row):
    db = tmp_path / "s.db"
    _log_with(db)
    _sql(db, *statements)
    rep = verify(db)
    assert not rep.ok and rep.bad_seq == bad_row, rep
    assert main(["audit-log", "verify", str(db)]) == 1
    assert f"first bad row {bad_row}" in capsys.readouterr().out


def test_a_rewritten_chain_is_caught_by_an_anchor(tmp_path, capsys):
    db = tmp_path / "s.db"
    _log_with(db)
    assert main(["audit-log", "head", str(db)]) == 0
    anchor = capsys.readouterr().out.strip()
    # A forger deletes the last row and fixes the head too: the chain alone cannot tell.
    conn = sqlite3.connect(db)
    seq4_hash = conn.execute("SELECT row_hash FROM sessions WHERE seq = 4").fetchone()[0]
    conn.execute("DELETE FROM sessions WHERE seq = 5")
    conn.execute("UPDATE head SET seq = 4, row_hash = ?, count = 4", (seq4_hash,))
    conn.commit()
    conn.close()
    assert verify(db).ok  # the documented limit
    assert main(["audit-log", "verify", str(db), "--anchor", anchor]) == 1
    assert "anchored row" in capsys.readouterr().out


def test_retention_removes_old_rows_and_the_rest_still_verifies(tmp_path):
    db = tmp_path / "s.db"
    log = SessionLog(db)
    old = (datetime.now(UTC) - timedelta(days=400)).isoformat(timespec="seconds")
    for i in range(3):
        log.append(time=old, event="start", session_id=f"old{i}")
    log.append(event="start", session_id="new")
    log.close()
    log = SessionLog(db, retention_days=365)
    log.close()
    kept = list(session_log.rows(db))
    assert [r["session_id"] for r in kept] == ["new", None]
    assert kept[-1]["event"] == "retention" and "removed 3" in kept[-1]["detail"]
    assert verify(db).ok


def test_only_known_plain_fields_can_be_written(tmp_path):
    log = SessionLog(tmp_path / "s.db")
    with pytest.raises(ValueError):
        log.append(event="start", case_ref="DE-1")
    with pytest.raises(TypeError):
        log.append(event="start", detail=b"token bytes")


def test_a_crash_mid_append_leaves_a_verifiable_log(tmp_path):
    db = tmp_path / "s.db"
    _log_with(db, 2)
    # Another process starts an append and dies inside the transaction.
    code = f"""
import os, sqlite3
conn = sqlite3.connect({str(db)!r}, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO sessions (seq, event, prev_hash, row_hash) VALUES (3, 'start', 'x', 'y')")
os._exit(9)
"""
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    assert verify(db).ok
    log = SessionLog(db)
    log.append(event="end", session_id="s1", outcome="OK")
    log.close()
    assert verify(db).rows == 3


def test_show_lists_sessions_as_json(tmp_path, capsys):
    import json

    db = tmp_path / "s.db"
    _log_with(db, 3)
    assert main(["audit-log", "show", str(db), "--json", "--since", "1d"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [r["session_id"] for r in got] == ["s0", "s1", "s2"]
    assert main(["audit-log", "show", str(db)]) == 0
    assert "agency-b" in capsys.readouterr().out
    assert main(["audit-log", "verify", str(tmp_path / "missing.db")]) == 2
