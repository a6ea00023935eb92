"""A bad field drops that field only; a row is rejected only when no match key remains (issue 12, item 1)."""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

from matcher.identity.match_keys import KeySpec
from matcher.identity.normalise_n1 import NORM_VERSION
from matcher.identity.records import CsvFormat, load_records

SPEC = KeySpec.from_mapping(
    NORM_VERSION, {"document": ["document_number", "document_country"], "name_dob": ["name_tokens", "date_of_birth"]}
)
HEADER = "record_id,given_names,family_name,date_of_birth,sex,nationality,document_number,document_country"


def _load(tmp_path: Path, rows: list[str]):
    path = tmp_path / "records.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    return load_records(path, CsvFormat(columns={}, date_order="DMY"), SPEC, rejects_path=rejects), rejects


def _rejects_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_a_non_calendar_date_keeps_the_document_key(tmp_path: Path) -> None:
    result, rejects = _load(tmp_path, ["r1,Anna,Berg,19450493,F,DE,X1234567,DEU"])
    (rec,) = result.records
    assert [k for k, _ in rec.tokens] == ["document"]
    assert not result.rejected
    (problem,) = result.dropped_fields
    assert (problem.line, problem.field) == (2, "date_of_birth")
    assert problem.reason.startswith("date_of_birth is not a calendar date")
    assert result.rows_with_dropped_fields == 1
    assert result.summary() == f"1 rows read: 1 used (1 with dropped fields), 0 rejected (see {rejects})"
    (row,) = _rejects_rows(rejects)
    assert (row["line"], row["field"], row["action"]) == ("2", "date_of_birth", "field dropped")
    assert row["reason"] == problem.reason
    assert row["document_number"] == "X1234567"  # the original row follows, for the agency to fix


def test_each_bad_field_is_reported_and_the_rest_is_used(tmp_path: Path) -> None:
    result, rejects = _load(tmp_path, ["r1,Anna,Berg,1980-01-02,Q,Narnia,X1,Atlantis"])
    (rec,) = result.records
    assert [k for k, _ in rec.tokens] == ["name_dob"]
    assert sorted(p.field for p in result.dropped_fields) == ["document_country", "nationality", "sex"]
    assert result.rows_with_dropped_fields == 1
    assert {r["field"] for r in _rejects_rows(rejects)} == {"document_country", "nationality", "sex"}


def test_a_row_is_rejected_only_when_no_key_remains(tmp_path: Path) -> None:
    result, rejects = _load(tmp_path, ["r1,Anna,Berg,31/02/1980,F,DE,,", "r2,Ben,Berg,01/02/1980,M,DE,,"])
    assert [r.record_id for r in result.records] == ["r2"]
    (rej,) = result.rejected
    assert rej.line == 2 and rej.reason.startswith("no match key can be computed")
    assert "after dropping date_of_birth" in rej.reason
    assert result.rows_with_dropped_fields == 0
    assert len(result.records) + len(result.rejected) == result.rows_read
    rows = _rejects_rows(rejects)
    assert [(r["line"], r["field"], r["action"]) for r in rows] == [
        ("2", "date_of_birth", "field dropped"),
        ("2", "", "row rejected"),
    ]
    assert result.summary() == f"2 rows read: 1 used (0 with dropped fields), 1 rejected (see {rejects})"


def test_no_reason_carries_the_value(tmp_path: Path) -> None:
    result, _ = _load(tmp_path, ["r1,Anna,Berg,19450493,Q,Narnia,X1234567,DEU"])
    for p in result.dropped_fields:
        for value in ("19450493", "Narnia", "Q,", "Anna", "Berg"):
            assert value not in p.reason


def test_rejects_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        _, rejects = _load(tmp_path, ["r1,Anna,Berg,19450493,F,DE,X1234567,DEU"])
    finally:
        os.umask(old)
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
