"""Records files: the gaps not covered by test_records.py (extra columns, UTF-16, mixed line endings,
a BOM under another declared encoding). Each loads correctly or stops with a message naming the
line and the fix; used + rejected = rows read, always."""

from __future__ import annotations

import pytest

from matcher.errors import InputFileError
from matcher.identity.records import CsvFormat, load_records
from tests.test_records import SPEC, check_invariant, name_dob_token, write

HEAD = "record_id,family_name,date_of_birth"


def test_row_with_extra_columns_is_rejected_with_its_line(tmp_path):
    path = write(tmp_path, f"{HEAD}\nr1,Doe,1980-01-01\nr2,Doe,1980-01-01,surplus\nr3,Roe,1981-01-01\n")
    result = load_records(path, CsvFormat(date_order="DMY"), SPEC)
    check_invariant(result)
    assert [r.record_id for r in result.records] == ["r1", "r3"]
    assert [(r.line, r.reason) for r in result.rejected] == [(3, "row has 4 columns, the header has 3")]


def test_mixed_line_endings_keep_line_numbers(tmp_path):
    path = write(tmp_path, f"{HEAD}\r\nr1,Doe,1980-01-01\nr2,Doe,bad\rr3,Roe,also bad\r\nr4,Roe,1981-01-01\n")
    result = load_records(path, CsvFormat(date_order="DMY"), SPEC)
    check_invariant(result)
    assert [r.record_id for r in result.records] == ["r1", "r4"]
    assert [r.line for r in result.rejected] == [3, 4]


def test_utf16_file_with_bom_loads_when_declared(tmp_path):
    path = write(tmp_path, f"{HEAD}\r\nr1,Müller,1980-01-01\r\n".encode("utf-16"))
    result = load_records(path, CsvFormat(date_order="DMY", encoding="utf-16"), SPEC)
    check_invariant(result)
    assert result.records[0].tokens_of("name_dob") == (name_dob_token("muller", "1980-01-01"),)


def test_utf16_file_read_as_utf8_stops_naming_the_fix(tmp_path):
    path = write(tmp_path, f"{HEAD}\nr1,Doe,1980-01-01\n".encode("utf-16"))
    with pytest.raises(InputFileError) as err:
        load_records(path, CsvFormat(date_order="DMY"), SPEC)
    assert "encoding" in str(err.value) and "[records]" in str(err.value)


def test_truncated_utf16_file_stops_naming_the_line(tmp_path):
    data = f"{HEAD}\nr1,Doe,1980-01-01\n".encode("utf-16") + b"\x00"  # an odd byte at the end
    path = write(tmp_path, data)
    with pytest.raises(InputFileError) as err:
        load_records(path, CsvFormat(date_order="DMY", encoding="utf-16"), SPEC)
    assert "line" in str(err.value) and "encoding" in str(err.value)


def test_bom_under_a_declared_single_byte_encoding_names_the_columns_found(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf" + f"{HEAD}\nr1,Doe,1980-01-01\n".encode())
    with pytest.raises(InputFileError) as err:
        load_records(path, CsvFormat(date_order="DMY", encoding="cp1252"), SPEC)
    assert "record_id" in str(err.value) and "columns found" in str(err.value)
