"""Protocol keyed-hash: core against a plaintext intersection, opt-in, secrets, reveal modes end to end."""

from __future__ import annotations

import csv
import os
import random

import pytest

from matcher.cli import main
from matcher.errors import ConfigError, InvalidElement, SecretError
from matcher.protocols import keyed_hash
from matcher.storage import session_log
from tests.conftest import demo_token_overlap
from tests.test_e2e import EXPECTED_DEMO

SECRET = b"0123456789abcdef" * 4


def test_core_finds_exactly_the_plaintext_intersection():
    rng = random.Random(3)
    mine = [f"t{rng.randint(0, 500)}".encode() for _ in range(200)]
    theirs = [(f"t{rng.randint(0, 500)}".encode(), f"R{i}".encode()) for i in range(200)]
    index = keyed_hash.responder_index(SECRET, theirs)
    found = keyed_hash.lookup(index, keyed_hash.tags(SECRET, mine))
    refs: dict[bytes, set[bytes]] = {}
    for t, r in theirs:
        refs.setdefault(t, set()).add(r)
    assert found == [b";".join(sorted(refs[t])) if t in refs else None for t in mine]
    other = keyed_hash.lookup(index, keyed_hash.tags(b"x" * 32, mine))
    assert other == [None] * len(mine)  # another secret: nothing matches
    with pytest.raises(InvalidElement, match="element 1"):
        keyed_hash.lookup(index, [bytes(32), b"short"])
    with pytest.raises(ValueError):
        keyed_hash.tags(b"short", [b"t"])


def _enable(agencies, reveal="requester", allow=True, mode=0o600):
    secret = agencies.workdir / "kh.secret"
    secret.write_bytes(SECRET + b"\n")
    os.chmod(secret, mode)
    block = (f"\n[keyed_hash]\nallow_keyed_hash = {'true' if allow else 'false'}  # outsiders only\n"
             'secret_file = "kh.secret"\n')
    agencies.edit("responder", 'protocols = ["ecdh"]', 'protocols = ["ecdh", "keyed-hash"]')
    agencies.edit("responder", 'reveal = "requester"', f'reveal = "{reveal}"')
    agencies.edit("requester", 'protocol = "ecdh"', 'protocol = "keyed-hash"')
    agencies.edit("requester", 'reveal = "requester"', f'reveal = "{reveal}"')
    for path in (agencies.responder_toml, agencies.requester_toml):
        with path.open("a", encoding="utf-8") as fh:
            fh.write(block)


def _cli_match(agencies, running, capsys):
    out = agencies.workdir / "hits.csv"
    status = main(["match", "--config", str(agencies.requester_toml), "--records",
                   str(agencies.workdir / "agency_b_records.csv"), "--peer", f"127.0.0.1:{running.port}",
                   "--out", str(out)])
    return status, out, capsys.readouterr()


def test_requester_mode_from_the_cli(agencies, start, capsys):
    _enable(agencies)
    running = start()
    status, out, _ = _cli_match(agencies, running, capsys)
    assert status == 0
    rows = {r["record_id"]: (tuple(r["match_keys"].split(";")), r["case_ref"])
            for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert rows == EXPECTED_DEMO
    running.stop(grace=0)
    end = [r for r in session_log.rows(agencies.workdir / "agency_a_state/sessions.db") if r["event"] == "end"]
    # The responder knows its hit count in keyed-hash even in requester mode (the audit says so) ...
    # (it counts hit tokens: a record hits by several keys and spellings)
    assert end[-1]["protocol"] == "keyed-hash" and end[-1]["hit_count"] == demo_token_overlap(agencies)[0]
    # ... but writes no hits file unless reveal = "both".
    assert not (agencies.workdir / "agency_a_state/responder_hits.csv").exists()


def test_cardinality_mode_returns_only_the_count(agencies, start, capsys):
    _enable(agencies, reveal="cardinality")
    running = start()
    status, out, cap = _cli_match(agencies, running, capsys)
    assert status == 0 and not out.exists()
    hit, sent = demo_token_overlap(agencies)
    assert f"{hit} of {sent} tokens hit (cardinality mode: no hit list)" in cap.out
    for _, ref in EXPECTED_DEMO.values():
        assert ref not in cap.out + cap.err


def test_both_mode_writes_the_responders_hits(agencies, start, capsys):
    _enable(agencies, reveal="both")
    running = start()
    status, out, _ = _cli_match(agencies, running, capsys)
    running.stop(grace=0)
    assert status == 0 and len(list(csv.DictReader(out.open(encoding="utf-8")))) == 5
    rows = list(csv.DictReader((agencies.workdir / "agency_a_state/responder_hits.csv").open(encoding="utf-8")))
    assert {r["case_ref"] for r in rows} == {ref for _, ref in EXPECTED_DEMO.values()}


def test_keyed_hash_needs_the_explicit_opt_in_on_both_sides(agencies, start, capsys):
    _enable(agencies, allow=False)
    with pytest.raises(ConfigError, match="allow_keyed_hash = true"):
        start()
    agencies.edit("responder", "allow_keyed_hash = false", "allow_keyed_hash = true")
    running = start()
    status, _, cap = _cli_match(agencies, running, capsys)
    assert status == 2 and "allow_keyed_hash" in cap.err


def test_a_secret_readable_by_others_or_too_short_is_refused(agencies, start):
    _enable(agencies, mode=0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        start()
    secret = agencies.workdir / "kh.secret"
    os.chmod(secret, 0o600)
    secret.write_bytes(b"short")
    with pytest.raises(SecretError, match="shorter than 32"):
        start()


def test_secret_from_the_environment_and_a_wrong_secret_finds_nothing(agencies, start, monkeypatch):
    _enable(agencies)
    running = start()
    agencies.edit("requester", 'secret_file = "kh.secret"', 'secret_env = "TEST_KH_SECRET"')
    monkeypatch.setenv("TEST_KH_SECRET", "not the agreed secret, but long enough")
    from matcher.requester import run_match

    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=None)
    assert run.result.hits == []
    monkeypatch.setenv("TEST_KH_SECRET", SECRET.decode())
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=None)
    assert len(run.result.hits) == 5
