"""``matcher audit-config``: weak configs fail with the right finding ids; the JSON form is stable."""

from __future__ import annotations

import json
import os

import pytest

from matcher.audit.config_audit import audit_config, key_strength
from matcher.cli import main

WEAK_RESPONDER = """\
[responder]
watchlist = "w.csv"
protocols = ["ecdh", "keyed-hash"]
reveal = "both"
key_rotation_days = 365
token_hash = "xxhash64"
paillier_key_bits = 1024

[records]
date_order = "DMY"

[match_keys]
dob = ["date_of_birth"]
demographic = ["sex", "nationality"]
surname = ["family_name"]
"""


def _audit_json(path, capsys, *extra):
    status = main(["audit-config", str(path), "--json", *extra])
    return status, json.loads(capsys.readouterr().out)


def test_the_demo_configs_pass(agencies, capsys):
    for toml in (agencies.requester_toml, agencies.responder_toml):
        status, report = _audit_json(toml, capsys)
        assert status == 0 and report["ok"] and report["counts"]["error"] == 0, report
        assert report["format"] == "matcher-audit/1"
    assert {"reveal", "security-model", "tls", "session-log", "match-key", "peer", "key-rotation"} <= {
        f["id"] for f in report["findings"]}


def test_a_weak_responder_config_fails_with_every_finding(tmp_path, capsys):
    path = tmp_path / "weak.toml"
    path.write_text(WEAK_RESPONDER)
    status, report = _audit_json(path, capsys)
    assert status == 1 and not report["ok"]
    errors = {f["id"] for f in report["findings"] if f["severity"] == "error"}
    warnings = {f["id"] for f in report["findings"] if f["severity"] == "warning"}
    assert errors == {
        "config-invalid",  # token_hash and paillier_key_bits are not settings the service knows
        "tls-disabled",
        "no-peer-allowlist",
        "keyed-hash-without-opt-in",
        "keyed-hash-secret-missing",
        "non-crypto-token-hash",
        "paillier-key-too-small",
        "match-key-not-identity",
        "no-session-log",
    }
    assert {"reveal-both", "key-rotation-too-long", "match-key-weak"} <= warnings
    not_identity = {f["subject"] for f in report["findings"] if f["id"] == "match-key-not-identity"}
    assert not_identity == {"dob", "demographic"}
    for f in report["findings"]:
        assert set(f) == {"id", "severity", "message", "fix", "subject"}
        assert f["severity"] == "info" or f["fix"], f  # every error and warning says what to do


def test_warnings_alone_exit_zero(agencies, capsys):
    agencies.edit("responder", "daily_budget = 100000", "# no budget")
    agencies.edit("responder", "key_rotation_days = 30", "key_rotation_days = 120")
    agencies.edit("responder", 'reveal = "requester"', 'reveal = "both"')
    status, report = _audit_json(agencies.responder_toml, capsys)
    warnings = {f["id"] for f in report["findings"] if f["severity"] == "warning"}
    # the default key set's names_year (names, year of birth, nationality) is flagged as weaker than a full date
    # the demo's peer is bound to its CA only implicitly (the bundle holds one CA): peer-not-bound
    assert status == 0 and warnings == {"no-peer-budget", "key-rotation-too-long", "reveal-both",
                                        "match-key-year-of-birth", "semi-honest-reveal-both",
                                        "peer-not-bound"}
    year_keys = {f["subject"] for f in report["findings"] if f["id"] == "match-key-year-of-birth"}
    assert year_keys == {"names_year"}
    agencies.edit("responder", "[match_keys]", "[audit]\nmax_key_rotation_days = 180\n\n[match_keys]")
    assert "key-rotation-too-long" not in audit_config(agencies.responder_toml).ids()


@pytest.mark.parametrize("bits, finding", [(1024, "paillier-key-too-small"), (2048, "paillier-key-below-recommended"),
                                           (3072, "paillier-key")])
def test_paillier_key_size_is_checked_wherever_it_is_set(tmp_path, bits, finding):
    records = '[records]\ndate_order = "DMY"\n'
    for text in (f"[requester]\nprotocol = \"paillier\"\npaillier_key_bits = {bits}\n{records}",
                 f"[requester]\nprotocol = \"paillier\"\n{records}[paillier]\nkey_bits = {bits}\n"
                 "bin_hash = \"xxhash\"\n"):
        path = tmp_path / "r.toml"
        path.write_text(text)
        rep = audit_config(path)
        assert finding in rep.ids(), text
        assert "non-crypto-token-hash" not in rep.ids()  # xxhash for bucketing is fine


def test_keyed_hash_with_opt_in_is_a_warning_and_a_readable_secret_an_error(agencies, capsys):
    secret = agencies.workdir / "kh.secret"
    secret.write_text("x" * 64)
    os.chmod(secret, 0o644)
    agencies.edit("requester", 'protocol = "ecdh"', 'protocol = "keyed-hash"')
    with agencies.requester_toml.open("a") as fh:
        fh.write('\n[keyed_hash]\nallow_keyed_hash = true   # both agencies accept: outsiders only\n'
                 'secret_file = "kh.secret"\n')
    rep = audit_config(agencies.requester_toml)
    assert "keyed-hash-weak" in rep.ids("warning")
    assert rep.ids("error") == {"keyed-hash-secret-readable"}
    os.chmod(secret, 0o600)
    assert audit_config(agencies.requester_toml).exit_status == 0


def test_unreadable_config_exits_2_with_the_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[responder]\nwatchlist = "w.csv"\nreveal = requester\n')
    status, report = _audit_json(path, capsys)
    assert status == 2 and not report["ok"] and "line 3" in report["unreadable"]
    assert main(["audit-config", str(tmp_path / "missing.toml")]) == 2


def test_records_measure_each_key_and_flag_a_key_that_is_not_distinctive(agencies, capsys):
    watchlist = agencies.workdir / "agency_a_watchlist.csv"
    lines = watchlist.read_text(encoding="utf-8").splitlines()
    # Five more records with the same names and date of birth as the first one.
    lines += [lines[1].replace("A-001", f"A-9{i}").replace("DE-BKA", f"X{i}") for i in range(5)]
    watchlist.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status, report = _audit_json(agencies.responder_toml, capsys, "--records", str(watchlist))
    by_key = {m["match_key"]: m for m in report["measurements"]}
    # 12.03.1979 also gives 1979-12-03 (day/month swapped): two shared tokens
    assert by_key["names_dob"]["records_with_key"] == len(lines) - 1 and by_key["names_dob"]["tokens_shared"] == 2
    assert by_key["document"]["coverage"] < 1
    flagged = {f["subject"] for f in report["findings"] if f["id"] == "match-key-not-distinctive"}
    # every key built from names and the date of birth sees the duplicates; the document key does not
    assert flagged == {"names_dob", "phonetic_dob", "given_dob_nationality", "names_year"} and status == 0


def test_key_strength_rule():
    assert key_strength(["document_number", "document_country"]) == "document"
    assert key_strength(["name_tokens", "date_of_birth"]) == "identity"
    assert key_strength(["family_name", "year_of_birth"]) == "weak"
    assert key_strength(["date_of_birth"]) == "not-identity"
    assert key_strength(["sex", "nationality"]) == "not-identity"
    assert key_strength(["given_initial", "date_of_birth", "sex"]) == "not-identity"


def test_paillier_and_cardinality_say_what_they_do_not_protect(agencies, capsys):
    agencies.edit("responder", 'protocols = ["ecdh"]', 'protocols = ["ecdh", "paillier"]')
    agencies.edit("responder", 'reveal = "requester"', 'reveal = "cardinality"')
    status, report = _audit_json(agencies.responder_toml, capsys)
    ids = {f["id"]: f["severity"] for f in report["findings"]}
    assert ids["paillier-unproven-key"] == "warning" and ids["cardinality-split-requests"] == "info"
    assert status == 0


def test_n3_default_keys_are_audited_as_the_config_uses_them(agencies, tmp_path, capsys):
    """norm_version = "n3" without [match_keys] takes n3's keys: the audit describes those, not n2's."""
    text = agencies.responder_toml.read_text()
    text = text.split("[match_keys]")[0] if "[match_keys]" in text else text
    path = agencies.responder_toml.parent / "responder_n3.toml"  # beside it: relative paths still hold
    lines = [line for line in text.splitlines() if not line.startswith("norm_version")]
    path.write_text('norm_version = "n3"\n' + "\n".join(lines) + "\n")
    _status, report = _audit_json(path, capsys)
    assert "findings" in report, report
    keys = {f["subject"]: f for f in report["findings"] if f["id"].startswith("match-key")}
    assert set(keys) == {"document", "names_dob", "pair_dob", "initials_dob", "names_year"}
    assert keys["names_year"]["id"] == "match-key-year-of-birth"
    assert "romanisation skeleton" in keys["names_dob"]["message"]
    assert key_strength(["name_pairs", "date_of_birth"]) == "identity"
    assert key_strength(["name_keys"]) == "weak"


def test_metrics_on_every_interface_is_a_warning(agencies, capsys):
    text = agencies.responder_toml.read_text()
    agencies.responder_toml.write_text(text + '\n[metrics]\nlisten = "127.0.0.1:9464"\n')
    status, report = _audit_json(agencies.responder_toml, capsys)
    ids = {f["id"]: f["severity"] for f in report["findings"]}
    assert status == 0 and ids["metrics-endpoint"] == "info" and "metrics-exposed" not in ids
    agencies.responder_toml.write_text(text + '\n[metrics]\nlisten = "0.0.0.0:9464"\n')
    status, report = _audit_json(agencies.responder_toml, capsys)
    assert status == 0 and {f["id"]: f["severity"] for f in report["findings"]}["metrics-exposed"] == "warning"


@pytest.mark.parametrize("protocols, reveal, semi_honest", [
    ('["ecdh"]', "requester", set()),
    ('["ecdh"]', "cardinality", {"semi-honest-ecdh-cardinality"}),
    ('["ecdh"]', "both", {"semi-honest-reveal-both"}),
    ('["ecdh", "paillier"]', "requester", {"semi-honest-paillier"}),
])
def test_audit_reports_the_modes_that_are_only_semi_honest(agencies, capsys, protocols, reveal, semi_honest):
    agencies.edit("responder", 'protocols = ["ecdh"]', f"protocols = {protocols}")
    agencies.edit("responder", 'reveal = "requester"', f'reveal = "{reveal}"')
    _, report = _audit_json(agencies.responder_toml, capsys)
    found = {f["id"]: f for f in report["findings"] if f["id"].startswith("semi-honest")}
    assert set(found) == semi_honest
    assert all(f["severity"] == "warning" and "semi-honest" in f["message"] for f in found.values())
    model = next(f for f in report["findings"] if f["id"] == "security-model")
    assert "docs/security.md" in model["message"] and "false hit" in model["message"]
