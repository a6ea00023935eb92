"""The date order is a config fact, never guessed (issue 12, item 2)."""

from __future__ import annotations

import pytest

from matcher.audit.config_audit import audit_config
from matcher.cli import main
from matcher.errors import ConfigError


def test_a_config_without_date_order_is_refused_naming_the_setting(agencies, capsys):
    agencies.edit("requester", 'date_order = "MDY"', "")
    with pytest.raises(ConfigError) as err:
        agencies.requester_config()
    assert "[records] date_order" in str(err.value) and "DMY, MDY or YMD" in str(err.value)
    code = main(["match", "--config", str(agencies.requester_toml), "--records",
                 str(agencies.workdir / "agency_b_records.csv"), "--peer", "127.0.0.1:1"])
    assert code == 2 and "[records] date_order" in capsys.readouterr().err


def test_a_config_without_a_records_table_is_refused_naming_the_setting(agencies):
    text = agencies.responder_toml.read_text(encoding="utf-8")
    start = text.index("[records]")
    end = text.index("\n[", start + 1)
    agencies.responder_toml.write_text(text[:start] + text[end + 1:], encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[records\] date_order"):
        agencies.responder_config()


def test_audit_records_warns_when_dates_fail_in_the_configured_order_but_parse_in_another(agencies):
    records = agencies.workdir / "agency_b_records.csv"  # month-first dates
    assert "date-order-suspect" not in audit_config(agencies.requester_toml, records=records).ids()
    agencies.edit("requester", 'date_order = "MDY"', 'date_order = "DMY"')
    rep = audit_config(agencies.requester_toml, records=records)
    assert "date-order-suspect" in rep.ids("warning")
    (finding,) = [f for f in rep.findings if f.id == "date-order-suspect"]
    assert "MDY" in finding.message and "date_order" in (finding.fix or "")
