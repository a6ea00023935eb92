"""``matcher tokens``: a record file's tokens for a requester client in another language."""

from __future__ import annotations

import json
import os
import stat

from clients import Hit
from matcher.cli import main as cli_main
from matcher.identity.conformance import conformance
from matcher.identity.records import load_records
from matcher.requester import write_hits


def test_tokens_file_holds_the_records_tokens_and_what_to_check(agencies, tmp_path):
    out = tmp_path / "sub" / "tokens.json"
    old = os.umask(0)
    try:
        assert cli_main(["tokens", "--config", str(agencies.requester_toml),
                         "--records", str(agencies.workdir / "agency_b_records.csv"), "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    doc = json.loads(out.read_text(encoding="utf-8"))
    cfg = agencies.requester_config()
    ks = cfg.key_spec()
    assert doc["format"] == "matcher-tokens/1"
    assert doc["key_spec_fingerprint"] == ks.fingerprint()
    assert doc["norm_conformance_digest"] == conformance(ks.norm_version).digest
    assert [k for k, _ in doc["match_keys"]] == list(ks.names)
    loaded = load_records(agencies.workdir / "agency_b_records.csv", cfg.records.csv_format(), ks)
    assert [(r["record_id"], [(k, t.encode("utf-8")) for k, t in r["tokens"]]) for r in doc["records"]] == [
        (r.record_id, list(r.tokens)) for r in loaded.records
    ]


def test_hits_file_is_private_whatever_the_umask(tmp_path):
    out = tmp_path / "hits.csv"
    old = os.umask(0)
    try:
        write_hits(out, [Hit("B-1", ("document",), "X-1")])
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text(encoding="utf-8").splitlines() == ["record_id,match_keys,strength,case_ref",
                                                            "B-1,document,document,X-1"]
