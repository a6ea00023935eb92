"""The hash-chained session log: every edit, deletion or reordering is detected."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from matcher.cli import main
from matcher.errors import ConfigError
from matcher.storage import session_log
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


def test_a_chain_rewritten_by_the_key_holder_is_caught_by_an_anchor(tmp_path, capsys):
    db = tmp_path / "s.db"
    _log_with(db)
    assert main(["audit-log", "head", str(db)]) == 0
    anchor = capsys.readouterr().out.strip()
    # Whoever holds the signing key deletes the last row and signs a matching head: the documented limit.
    key = session_log.load_signing_key(tmp_path / session_log.KEY_FILE, create=False)
    seq4_hash = _sql_one(db, "SELECT row_hash FROM sessions WHERE seq = 4")
    sig = key.sign(session_log.head_message(4, seq4_hash, 4, 0, session_log.GENESIS)).hex()
    _sql(db, "DELETE FROM sessions WHERE seq = 5",
         f"UPDATE head SET seq = 4, row_hash = '{seq4_hash}', count = 4, signature = '{sig}'")
    assert verify(db).ok
    assert main(["audit-log", "verify", str(db), "--anchor", anchor]) == 1
    assert "anchored row" in capsys.readouterr().out


def _sql_one(path: Path, query: str):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchone()[0]
    finally:
        conn.close()


def test_deleting_the_oldest_rows_and_editing_the_head_fails_also_with_an_anchor(tmp_path, capsys):
    """The reviewed attack: rows 1-2 deleted, the head's count and base edited to match."""
    db = tmp_path / "s.db"
    _log_with(db)
    assert main(["audit-log", "head", str(db)]) == 0
    anchor = capsys.readouterr().out.strip()  # row 5, which stays
    seq2_hash = _sql_one(db, "SELECT row_hash FROM sessions WHERE seq = 2")
    _sql(db, "DELETE FROM sessions WHERE seq <= 2",
         f"UPDATE head SET count = 3, base_seq = 2, base_hash = '{seq2_hash}'")
    assert not verify(db).ok
    assert main(["audit-log", "verify", str(db), "--anchor", anchor]) == 1
    assert "TAMPERED" in capsys.readouterr().out


def test_deleting_the_oldest_rows_fails_even_with_the_head_left_alone(tmp_path):
    db = tmp_path / "s.db"
    _log_with(db)
    _sql(db, "DELETE FROM sessions WHERE seq <= 2")
    rep = verify(db)
    assert not rep.ok and rep.bad_seq == 3 and "neither the genesis row nor a retention checkpoint" in rep.reason


def test_a_head_forged_without_the_signing_key_fails(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    db = tmp_path / "s.db"
    _log_with(db)
    seq4_hash = _sql_one(db, "SELECT row_hash FROM sessions WHERE seq = 4")
    _sql(db, "DELETE FROM sessions WHERE seq = 5")
    # 1. the head edited to match, its signature kept
    _sql(db, f"UPDATE head SET seq = 4, row_hash = '{seq4_hash}', count = 4")
    rep = verify(db)
    assert not rep.ok and "signature" in rep.reason
    # 2. the head signed with the forger's own key, which it also writes into the log
    forger = Ed25519PrivateKey.generate()
    raw = forger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    sig = forger.sign(session_log.head_message(4, seq4_hash, 4, 0, session_log.GENESIS)).hex()
    _sql(db, f"UPDATE head SET public_key = '{raw}', signature = '{sig}'")
    rep = verify(db)
    assert not rep.ok and "signature" in rep.reason
    assert verify(db, public_key=forger.public_key()).ok  # only a verifier handed the forger's key is fooled
    assert (tmp_path / session_log.KEY_FILE).stat().st_mode & 0o077 == 0


def _old_rows_log(db: Path, old: int = 3, new: int = 2) -> None:
    log = SessionLog(db)
    stamp = (datetime.now(UTC) - timedelta(days=400)).isoformat(timespec="seconds")
    for i in range(old):
        log.append(time=stamp, event="start", session_id=f"old{i}")
    for i in range(new):
        log.append(event="start", session_id=f"new{i}")
    log.close()


def test_retention_removes_old_rows_and_the_rest_still_verifies(tmp_path):
    db = tmp_path / "s.db"
    _old_rows_log(db, old=3, new=1)
    log = SessionLog(db, retention_days=365)
    log.close()
    kept = list(session_log.rows(db))
    assert [r["session_id"] for r in kept] == [None, "new0", None]
    assert kept[0]["event"] == "checkpoint"
    assert kept[-1]["event"] == "retention" and "removed 3" in kept[-1]["detail"]
    assert verify(db).ok


def test_a_retention_checkpoint_written_by_prune_verifies(tmp_path, capsys):
    db = tmp_path / "s.db"
    _old_rows_log(db)
    row3 = _sql_one(db, "SELECT row_hash FROM sessions WHERE seq = 3")
    assert main(["audit-log", "prune", str(db), "--older-than", "365"]) == 0
    assert "removed 3 row(s)" in capsys.readouterr().out
    kept = list(session_log.rows(db))
    assert [r["event"] for r in kept] == ["checkpoint", "start", "start", "retention"]
    assert kept[0]["seq"] == 3 and kept[0]["row_hash"] == row3 and "3 row(s) up to seq 3" in kept[0]["detail"]
    assert main(["audit-log", "verify", str(db)]) == 0
    # a second retention moves the checkpoint forward and still verifies
    log = SessionLog(db)
    assert log.purge(0.0, now=datetime.now(UTC) + timedelta(days=1)) == 2  # new0, new1
    log.append(event="start", session_id="later")
    log.close()
    rep = verify(db)
    assert rep.ok, rep
    assert [r["event"] for r in session_log.rows(db)][:1] == ["checkpoint"]


def test_a_forged_or_edited_checkpoint_fails(tmp_path):
    db = tmp_path / "s.db"
    _old_rows_log(db, old=3, new=3)
    SessionLog(db, retention_days=365).close()
    assert verify(db).ok
    # delete the signed checkpoint and the next row, and dress row 5 up as a checkpoint
    _sql(db, "DELETE FROM sessions WHERE seq <= 4",
         "UPDATE sessions SET event = 'checkpoint', signature = '00' WHERE seq = 5")
    rep = verify(db)
    assert not rep.ok and rep.bad_seq == 5
    # a checkpoint's text edited: its signature no longer fits
    db2 = tmp_path / "t.db"
    _old_rows_log(db2)
    SessionLog(db2, retention_days=365).close()
    _sql(db2, "UPDATE sessions SET detail = 'nothing removed' WHERE event = 'checkpoint'")
    rep = verify(db2)
    assert not rep.ok and "checkpoint's signature" in rep.reason


def test_an_anchor_whose_row_is_gone_fails(tmp_path, capsys):
    db = tmp_path / "s.db"
    _old_rows_log(db)
    anchor_2 = f"2:{_sql_one(db, 'SELECT row_hash FROM sessions WHERE seq = 2')}"
    anchor_3 = f"3:{_sql_one(db, 'SELECT row_hash FROM sessions WHERE seq = 3')}"
    anchor_5 = f"5:{_sql_one(db, 'SELECT row_hash FROM sessions WHERE seq = 5')}"
    SessionLog(db, retention_days=365).close()
    assert main(["audit-log", "verify", str(db), "--anchor", anchor_2]) == 1
    assert "no longer in the log" in capsys.readouterr().out
    # the row the checkpoint stands for keeps its (signed) hash; a kept row verifies as before
    assert main(["audit-log", "verify", str(db), "--anchor", anchor_3]) == 0
    assert main(["audit-log", "verify", str(db), "--anchor", anchor_5]) == 0
    capsys.readouterr()
    _sql(db, "DELETE FROM sessions WHERE seq = 5")
    assert main(["audit-log", "verify", str(db), "--anchor", anchor_5]) == 1


def test_verify_takes_the_public_key_from_the_state_folder(tmp_path, capsys):
    state, logs = tmp_path / "state", tmp_path / "logs"
    log = SessionLog(logs / "s.db", key_path=state / session_log.KEY_FILE)
    log.append(event="start", session_id="s0")
    log.close()
    assert (state / session_log.PUBLIC_KEY_FILE).exists()
    assert main(["audit-log", "verify", str(logs / "s.db")]) == 2  # no key beside the log: says where it is
    assert "state folder" in capsys.readouterr().err
    assert main(["audit-log", "verify", str(logs / "s.db"), "--key", str(state / session_log.PUBLIC_KEY_FILE)]) == 0
    with pytest.raises(ConfigError, match="another key"):
        SessionLog(logs / "s.db", key_path=tmp_path / "other.key")


def test_a_log_from_before_signed_heads_is_upgraded_with_a_checkpoint(tmp_path):
    db = tmp_path / "s.db"
    conn = sqlite3.connect(db)
    conn.executescript(f"""
        CREATE TABLE sessions (seq INTEGER PRIMARY KEY, {", ".join(session_log.FIELDS)},
                               prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL);
        CREATE TABLE head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, row_hash TEXT NOT NULL,
                           count INTEGER NOT NULL, base_seq INTEGER NOT NULL, base_hash TEXT NOT NULL,
                           schema_version INTEGER NOT NULL);
    """)
    prev = "ab" * 32  # rows 1-2 had been removed by the old retention
    for seq in (3, 4):
        digest = session_log.row_digest(seq, {"event": "start"}, prev)
        conn.execute("INSERT INTO sessions (seq, event, prev_hash, row_hash) VALUES (?, 'start', ?, ?)",
                     (seq, prev, digest))
        prev = digest
    conn.execute("INSERT INTO head VALUES (1, 4, ?, 2, 2, ?, 1)", (prev, "ab" * 32))
    conn.commit()
    conn.close()
    SessionLog(db).close()
    rep = verify(db)
    assert rep.ok and rep.rows == 3, rep
    assert [r["event"] for r in session_log.rows(db)] == ["checkpoint", "start", "start"]


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
