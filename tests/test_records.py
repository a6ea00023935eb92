"""Tests of matcher.identity.records (CSV loading, rejects)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from matcher.errors import ConfigError, InputFileError
from matcher.identity.match_keys import KeySpec
from matcher.identity.normalise_n1 import NORM_VERSION
from matcher.identity.records import CsvFormat, LoadResult, RejectedRow, load_records

# These tests are about loading; they use the v1 rules and the two v1 keys.
SPEC = KeySpec.from_mapping(
    NORM_VERSION, {"document": ["document_number", "document_country"], "name_dob": ["name_tokens", "date_of_birth"]}
)
HEADER = "record_id,given_names,family_name,date_of_birth,sex,nationality,document_number,document_country"


def write(tmp_path: Path, text: str | bytes, name: str = "records.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def check_invariant(result: LoadResult) -> None:
    assert len(result.records) + len(result.rejected) == result.rows_read


def name_dob_token(tokens: str, dob: str) -> bytes:
    return f"matcher/v1/{NORM_VERSION}/name_dob/{tokens}\x1f{dob}".encode()


def test_basic_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER + "\n"
        "r1,Sergei,Иванов,05.03.1985,M,RU,75 1234567,RUS\n"
        "r2,Anna,Müller,1990-01-02,F,DE,,\n",
    )
    result = load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC)
    check_invariant(result)
    assert result.rows_read == 2
    assert not result.rejected
    r1, r2 = result.records
    assert r1.record_id == "r1" and r1.case_ref == ""
    assert r1.tokens_of("document") == (f"matcher/v1/{NORM_VERSION}/document/751234567\x1fRUS".encode(),)
    assert r1.tokens_of("name_dob") == (name_dob_token("ivanov sergei", "1985-03-05"),)
    assert [k for k, _ in r2.tokens] == ["name_dob"]
    assert r2.tokens_of("name_dob") == (name_dob_token("anna muller", "1990-01-02"),)
    assert result.summary() == "2 rows read: 2 used (0 with dropped fields), 0 rejected"


def test_column_mapping_delimiter_and_case_ref(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ID;Vorname;Nachname;Geburtsdatum;Aktenzeichen;Bemerkung\n"
        "a;Anna;Müller;12/31/1980;K-1;irrelevant\n",
    )
    fmt = CsvFormat(
        columns={
            "record_id": "ID",
            "given_names": "Vorname",
            "family_name": "Nachname",
            "date_of_birth": "Geburtsdatum",
            "case_ref": "Aktenzeichen",
        },
        date_order="MDY",
        delimiter=";",
    )
    result = load_records(path, fmt, SPEC, require_case_ref=True)
    check_invariant(result)
    (rec,) = result.records
    assert rec.record_id == "a"
    assert rec.case_ref == "K-1"
    assert rec.tokens == (("name_dob", name_dob_token("anna muller", "1980-12-31")),)


def test_header_names_are_stripped(tmp_path: Path) -> None:
    path = write(tmp_path, " record_id , family_name ,date_of_birth\nx,Doe,1980-01-01\n")
    result = load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC)
    assert result.records[0].tokens == (("name_dob", name_dob_token("doe", "1980-01-01")),)


def test_bom_and_crlf(tmp_path: Path) -> None:
    text = HEADER + "\r\n" + "r1,José,García,31/12/1980,M,ES,,\r\n" + "r2,X,Y,bad,M,ES,,\r\n"
    path = write(tmp_path, b"\xef\xbb\xbf" + text.encode("utf-8"))
    result = load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC)
    check_invariant(result)
    assert result.records[0].record_id == "r1"  # BOM not glued onto the first header
    assert result.records[0].tokens_of("name_dob") == (name_dob_token("garcia jose", "1980-12-31"),)
    assert result.rejected == [RejectedRow(3, result.rejected[0].reason)]
    assert "after dropping date_of_birth" in result.rejected[0].reason  # the only key needed the date


def test_other_encoding(tmp_path: Path) -> None:
    text = "record_id,family_name,date_of_birth\nr1,Müller,1980-01-01\n"
    path = write(tmp_path, text.encode("latin-1"))
    result = load_records(path, CsvFormat(date_order="DMY", columns={}, encoding="latin-1"), SPEC)
    assert result.records[0].tokens_of("name_dob") == (name_dob_token("muller", "1980-01-01"),)


def test_quoted_newline_keeps_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "record_id,family_name,date_of_birth,place_of_birth\r\n"
        'r1,Doe,1980-01-01,"Saint\r\nPetersburg"\r\n'  # lines 2-3
        'r2,"Multi\nline\nname",1980-01-01,x\r\n'  # lines 4-6
        "r3,Doe,not a date,x\r\n",  # line 7
    )
    result = load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC)
    check_invariant(result)
    assert [r.record_id for r in result.records] == ["r1", "r2"]
    assert result.records[1].tokens_of("name_dob") == (name_dob_token("line multi name", "1980-01-01"),)
    assert [r.line for r in result.rejected] == [7]


def test_bad_encoding_row_rejected_others_kept(tmp_path: Path) -> None:
    data = (
        b"record_id,family_name,date_of_birth\n"
        b"r1,Doe,1980-01-01\n"
        b"r2,M\xfcller,1980-01-01\n"  # latin-1 byte in a UTF-8 file
        b"r3,M\xc3\xbcller,1980-01-01\n"
    )
    path = write(tmp_path, data)
    rejects = tmp_path / "rejects.csv"
    result = load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC, rejects_path=rejects)
    check_invariant(result)
    assert [r.record_id for r in result.records] == ["r1", "r3"]
    assert result.rejected == [RejectedRow(3, "row is not valid utf-8")]
    # the original bytes are preserved in the rejects file
    assert b"r2,M\xfcller,1980-01-01" in rejects.read_bytes()


def test_missing_mapped_column(tmp_path: Path) -> None:
    path = write(tmp_path, "ID,Name,DOB\n1,Doe,1980-01-01\n")
    fmt = CsvFormat(date_order="DMY", columns={"record_id": "ID", "family_name": "Surname", "date_of_birth": "DOB"})
    with pytest.raises(InputFileError) as info:
        load_records(path, fmt, SPEC)
    message = str(info.value)
    assert "'Surname'" in message and "family_name" in message
    assert "'ID', 'Name', 'DOB'" in message
    assert "[records.columns]" in message


def test_missing_record_id_column(tmp_path: Path) -> None:
    path = write(tmp_path, "family_name,date_of_birth\nDoe,1980-01-01\n")
    with pytest.raises(InputFileError, match="record_id"):
        load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC)


def test_missing_case_ref_when_required(tmp_path: Path) -> None:
    path = write(tmp_path, "record_id,family_name,date_of_birth\n1,Doe,1980-01-01\n")
    with pytest.raises(InputFileError, match="case_ref"):
        load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC, require_case_ref=True)
    assert load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC).rows_read == 1


def test_no_key_computable_from_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "record_id,family_name,sex\n1,Doe,M\n")
    with pytest.raises(InputFileError, match="no match key"):
        load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(InputFileError, match="header"):
        load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot open"):
        load_records(tmp_path / "nope.csv", CsvFormat(date_order="DMY", columns={}), SPEC)


def test_header_only(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "\n")
    rejects = tmp_path / "rejects.csv"
    result = load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC, rejects_path=rejects)
    assert result.records == [] and result.rejected == [] and result.rows_read == 0
    assert not rejects.exists()
    assert result.summary() == "0 rows read: 0 used (0 with dropped fields), 0 rejected"


def test_row_rejections_and_rejects_file(tmp_path: Path) -> None:
    long_name = "A" * 1025
    lines = [
        "record_id,family_name,date_of_birth,sex,nationality,document_number,document_country,case_ref",
        "r1,Doe,1980-01-01,M,DE,,,C1",  # 2 ok
        ",Doe,1980-01-01,M,DE,,,C2",  # 3 empty id
        "r1,Roe,1981-01-01,M,DE,,,C3",  # 4 duplicate of line 2
        "r4,Doe,1980-01-01,M,DE,,,",  # 5 empty case_ref
        "r5,Doe,1980-01-01,Q,DE,,,C5",  # 6 bad sex
        "r6,Doe,1980-01-01,M,DE",  # 7 too few columns
        "r7,Doe,,M,DE,,,C7",  # 8 no token
        f"r8,{long_name},1980-01-01,M,DE,,,C8",  # 9 too long
        "r9,Doe,1980-01-01,M,Narnia,,,C9",  # 10 bad country
        "r10,,,M,DE,X123,,C10",  # 11 no token (document without country)
        "",  # 12 blank line: skipped, not a row
        "r11,Smith,,,,X123,GB,C11",  # 13 ok via document
    ]
    path = write(tmp_path, "\n".join(lines) + "\n")
    rejects = tmp_path / "rejects.csv"
    result = load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC,
                          require_case_ref=True, rejects_path=rejects)
    check_invariant(result)
    assert result.rows_read == 11
    # a bad sex or country drops that field only: r5 and r9 keep their name_dob key
    assert [(r.record_id, r.case_ref) for r in result.records] == [("r1", "C1"), ("r5", "C5"),
                                                                   ("r9", "C9"), ("r11", "C11")]
    assert [(d.line, d.field) for d in result.dropped_fields] == [(6, "sex"), (10, "nationality")]
    assert result.dropped_fields[0].reason.startswith("sex is not recognised")
    assert result.dropped_fields[1].reason.startswith("nationality is not a recognised country")
    assert result.rows_with_dropped_fields == 2
    reasons = {r.line: r.reason for r in result.rejected}
    assert sorted(reasons) == [3, 4, 5, 7, 8, 9, 11]
    assert reasons[3] == "record_id is empty"
    assert reasons[4] == "duplicate record_id (first used on line 2)"
    assert reasons[5] == "case_ref is empty"
    assert reasons[7] == "row has 5 columns, the header has 8"
    assert reasons[8].startswith("no match key can be computed")
    assert "name_dob needs name_tokens (from given_names or family_name), date_of_birth" in reasons[8]
    assert "document needs document_number, document_country" in reasons[8]
    assert reasons[9] == "column(s) family_name longer than 1024 characters"
    assert reasons[11].startswith("no match key can be computed")
    # no reason carries identity data
    for reason in [*reasons.values(), *(d.reason for d in result.dropped_fields)]:
        for value in ("Doe", "Roe", "Narnia", "X123", "1980", "C5", "r1", long_name):
            assert value not in reason

    assert result.summary() == f"11 rows read: 4 used (2 with dropped fields), 7 rejected (see {rejects})"
    with rejects.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["line", "action", "field", "reason", *lines[0].split(",")]
    assert [(int(r[0]), r[1], r[2]) for r in rows[1:]] == [
        (3, "row rejected", ""), (4, "row rejected", ""), (5, "row rejected", ""), (6, "field dropped", "sex"),
        (7, "row rejected", ""), (8, "row rejected", ""), (9, "row rejected", ""),
        (10, "field dropped", "nationality"), (11, "row rejected", ""),
    ]
    assert rows[1][3] == "record_id is empty"
    assert rows[1][4:] == lines[2].split(",")  # the original row follows
    assert rows[5][4:] == lines[6].split(",")  # short row written as it was
    assert rows[7][5] == long_name


def test_stale_rejects_file_removed(tmp_path: Path) -> None:
    path = write(tmp_path, "record_id,family_name,date_of_birth\n1,Doe,1980-01-01\n")
    rejects = tmp_path / "rejects.csv"
    rejects.write_text("old")
    result = load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC, rejects_path=rejects)
    assert not rejects.exists()
    assert result.rejects_path is None


def test_duplicate_header_column_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "record_id,family_name,family_name,date_of_birth\n1,a,b,1980-01-01\n")
    with pytest.raises(InputFileError, match="more than once"):
        load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC)


def test_bad_format_config() -> None:
    with pytest.raises(ConfigError):
        CsvFormat(date_order="DMY", columns={"surname": "Name"})
    with pytest.raises(ConfigError):
        CsvFormat(columns={}, date_order="DDMMYYYY")
    with pytest.raises(ConfigError):
        CsvFormat(date_order="DMY", columns={}, encoding="no-such-codec")
    with pytest.raises(ConfigError):
        CsvFormat(date_order="DMY", columns={}, delimiter=";;")


def test_many_rows(tmp_path: Path) -> None:
    rows = [f"r{i},Given{i % 97},Family{i % 89},{1 + i % 28:02d}/{1 + i % 12:02d}/{1950 + i % 50}" for i in range(5000)]
    path = write(tmp_path, "record_id,given_names,family_name,date_of_birth\n" + "\n".join(rows) + "\n")
    result = load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC)
    check_invariant(result)
    assert result.rows_read == 5000 and len(result.records) == 5000


def test_unparseable_row_rejected_rest_loads(tmp_path: Path) -> None:
    huge = "A" * 200_000  # beyond the csv module's field limit
    path = write(
        tmp_path, f"record_id,family_name,date_of_birth\nr1,{huge},1980-01-01\nr2,Doe,1980-01-01\n"
    )
    result = load_records(path, CsvFormat(date_order="DMY", columns={}), SPEC)
    check_invariant(result)
    assert [r.record_id for r in result.records] == ["r2"]
    assert result.rejected[0].line == 2
    assert result.rejected[0].reason.startswith("row cannot be read as CSV")


def test_a_loaded_record_shows_no_identity_data_however_it_is_printed(caplog):
    # a record is a named tuple (made fast by the million): repr, str, format and logging
    # all go through its __repr__, which names neither the id, the case reference nor a token
    import logging

    from matcher.identity.record_types import TokenisedRecord

    rec = TokenisedRecord("B-4711", "CASE-SECRET", (("document", b"matcher/v1/n2/document/DEU/X123"),))
    shown = [repr(rec), str(rec), f"{rec}", "%s" % (rec,), "{}".format(rec), repr([rec]), str({"r": rec})]  # noqa: UP031, UP032
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("record %s and %r", rec, rec)
    shown.append(caplog.text)
    for text in shown:
        assert "B-4711" not in text and "CASE-SECRET" not in text and "X123" not in text, text
        assert "TokenisedRecord(<1 tokens>)" in text
    assert rec.record_id == "B-4711" and rec.tokens_of("document") == (b"matcher/v1/n2/document/DEU/X123",)
