"""End to end: the session log, budgets, and that no identity data reaches any log."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from clients import MatchFailed
from matcher.cli import main
from matcher.errors import BudgetExhausted, KeySpecMismatch
from matcher.requester import run_match
from matcher.server.budgets import BudgetLedger, next_reset
from matcher.storage import session_log
from tests.conftest import identity_values, leaks_in


def _match(agencies, running, **kw):
    return run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                     f"127.0.0.1:{running.port}", out=None, **kw)


def test_sessions_are_logged_and_no_identity_data_reaches_any_log(agencies, start, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    running = start()
    run = _match(agencies, running)
    assert len(run.result.hits) == 5
    agencies.edit("requester", 'names_dob = ["folded_soundex(name_tokens)", "date_of_birth_or_swapped"]',
                  'name_dob = ["family_name", "date_of_birth"]')
    with pytest.raises(KeySpecMismatch):
        _match(agencies, running)  # refused before any data moves (key spec)
    running.stop(grace=0)
    db = agencies.workdir / "agency_a_state" / "sessions.db"
    rows = list(session_log.rows(db))
    ok = [r for r in rows if r["event"] == "end" and r["outcome"] == "OK"]
    assert len(ok) == 1
    assert ok[0]["peer"] == "agency-b" and ok[0]["protocol"] == "ecdh" and ok[0]["reveal"] == "requester"
    assert ok[0]["request_size"] == run.result.elements_sent and ok[0]["hit_count"] is None
    assert ok[0]["session_id"] == run.result.session_id and len(ok[0]["config_fingerprint"]) == 64
    assert [r["event"] for r in rows if r["session_id"] == ok[0]["session_id"]] == ["start", "end"]
    assert session_log.verify(db).ok
    assert main(["audit-log", "show", str(db)]) == 0
    assert main(["audit-log", "verify", str(db)]) == 0

    out, err = capfd.readouterr()
    everything = "\n".join([caplog.text, err, out])
    for db_file in db.parent.glob("*.db*"):
        everything += db_file.read_bytes().decode("latin-1")
    assert {"KOZLOV", "Козлов", "DE-BKA-2024-0117", "N0019283", "12.03.1979", "B-101"} <= identity_values()
    assert leaks_in(everything, agencies.workdir) == []
    # (every test using `agencies` is also scanned by tests/conftest.py after it ran)


def test_per_session_limit_and_daily_budget_are_enforced_and_survive_a_restart(agencies, start):
    agencies.edit("responder", "max_set_size = 50000", "max_set_size = 10")
    running = start()
    with pytest.raises(MatchFailed) as err:
        _match(agencies, running)  # the demo sends 56 tokens (5 keys, alternative spellings) + 8 check elements
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "per session" in err.value.details
    running.stop(grace=0)

    agencies.edit("responder", "max_set_size = 10", "max_set_size = 100")
    agencies.edit("responder", "daily_budget = 100000", "daily_budget = 130")
    running = start()
    sent = _match(agencies, running).result.elements_sent
    assert sent * 2 <= 130 < sent * 3
    _match(agencies, running)
    with pytest.raises(MatchFailed) as err:
        _match(agencies, running)
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "resets at" in err.value.details and next_reset(datetime.now(UTC)).isoformat()[:10] in err.value.details
    running.stop(grace=0)
    running = start()  # a restart does not renew the budget
    with pytest.raises(MatchFailed) as err:
        _match(agencies, running)
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    running.stop(grace=0)
    db = agencies.workdir / "agency_a_state" / "sessions.db"
    refused = [r for r in session_log.rows(db) if r["outcome"] == "RESOURCE_EXHAUSTED"]
    assert len(refused) == 3 and session_log.verify(db).ok


def test_budget_resets_at_utc_midnight_and_parallel_sessions_cannot_overspend(tmp_path):
    ledger = BudgetLedger(tmp_path / "b.db")
    now = datetime(2025, 3, 1, 23, 59, tzinfo=UTC)
    wins: list[int] = []

    def take() -> None:
        try:
            BudgetLedger(tmp_path / "b.db").reserve("agency-b", 7, 50, now)
            wins.append(1)
        except BudgetExhausted:
            pass

    threads = [threading.Thread(target=take) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 7 and ledger.spent("agency-b", now) == 49
    with pytest.raises(BudgetExhausted) as err:
        ledger.reserve("agency-b", 2, 50, now)
    assert err.value.resets_at == "2025-03-02T00:00:00+00:00"
    assert ledger.spent("agency-b", now) == 49  # a refusal charges nothing
    assert ledger.reserve("agency-b", 50, 50, now + timedelta(minutes=1)) == 0  # a new UTC day
    assert ledger.reserve("agency-c", 50, 50, now) == 0  # budgets are per peer


def test_requester_may_keep_its_own_session_log(agencies, start):
    agencies.edit("requester", 'reveal = "requester"', 'reveal = "requester"\nsession_log = "b_state/sessions.db"')
    running = start()
    run = _match(agencies, running)
    running.stop(grace=0)
    with pytest.raises(MatchFailed):
        _match(agencies, running)  # the responder is gone
    db = agencies.workdir / "b_state" / "sessions.db"
    rows = list(session_log.rows(db))
    assert [(r["event"], r["outcome"]) for r in rows] == [("start", None), ("end", "OK"), ("start", None),
                                                          ("end", "UNAVAILABLE")]
    assert rows[1]["hit_count"] == 5 and rows[1]["session_id"] == run.result.session_id
    assert session_log.verify(db).ok


def test_the_output_scan_finds_identity_values_tokens_and_keys(agencies):
    """The scan every end-to-end test goes through (tests/conftest.py) does catch what it should."""
    from matcher.storage.secrets_store import load_or_rotate

    key, _ = load_or_rotate(agencies.workdir / "agency_a_state", 30)
    assert leaks_in("session 3001abcdef0123456789 ok", agencies.workdir) == []
    assert leaks_in("hit for Kozlov", agencies.workdir)
    assert leaks_in("token matcher/v1/n2/name_dob/x", agencies.workdir)
    assert leaks_in(f"key {key.key.hex()}", agencies.workdir) == ["epoch key"]
    pem_line = (agencies.workdir / "certs" / "agency-a.key").read_text().splitlines()[2]
    assert leaks_in(pem_line, agencies.workdir) == ["TLS private key agency-a.key"]
