"""The hits file: one row per (record, case reference), with that pair's keys and strength (issue 12, item 3).

A record that hits its true partner on a strong key and a namesake's record on a
weak key must not show the namesake's case reference under the strong key.
"""

from __future__ import annotations

import csv

from clients import Hit
from matcher.requester import HITS_COLUMNS, run_match, write_hits

NAMESAKE = "A-900,Ahmed,Al-Masri,05.03.1984,M,SYR,,,DE-BKA-2020-7777\n"


def test_a_namesakes_case_reference_gets_its_own_row_with_its_own_strength(agencies, start):
    with (agencies.workdir / "agency_a_watchlist.csv").open("a", encoding="utf-8") as fh:
        fh.write(NAMESAKE)  # same name, year and nationality as A-004, another date of birth
    running = start()
    out = agencies.workdir / "hits.csv"
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=out)
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    b104 = [(r["case_ref"], r["strength"], r["match_keys"]) for r in rows if r["record_id"] == "B-104"]
    assert b104 == [
        ("DE-BKA-2022-3310", "document", "document;names_dob;phonetic_dob;given_dob_nationality;names_year"),
        ("DE-BKA-2020-7777", "names_year", "names_year"),
    ]
    assert all(";" not in r["case_ref"] for r in rows)
    assert run.result.hit_count == 5  # distinct hit records
    assert len(run.result.hits) == 6  # (record, case reference) pairs
    assert Hit("B-104", ("names_year",), "DE-BKA-2020-7777") in run.result.hits


def test_hits_file_bytes_are_exactly_as_documented(tmp_path):
    out = tmp_path / "sub" / "hits.csv"
    write_hits(out, [
        Hit("r1", ("document", "names_dob"), "C-1"),
        Hit("r1", ("names_year",), 'C "2", Köln'),
        Hit("r2", ("names_dob",), ""),
    ])
    assert out.read_bytes() == (
        b"record_id,match_keys,strength,case_ref\r\n"
        b"r1,document;names_dob,document,C-1\r\n"
        b'r1,names_year,names_year,"C ""2"", K\xc3\xb6ln"\r\n'
        b"r2,names_dob,names_dob,\r\n"
    )
    assert HITS_COLUMNS == ("record_id", "match_keys", "strength", "case_ref")


def test_a_case_reference_with_the_separator_is_rejected_not_split(tmp_path):
    from matcher.identity.match_keys import KeySpec
    from matcher.identity.normalise_n1 import NORM_VERSION
    from matcher.identity.records import CsvFormat, load_records

    path = tmp_path / "watchlist.csv"
    path.write_text("record_id,family_name,date_of_birth,case_ref\nw1,Berg,1980-01-02,K-1;K-2\n", encoding="utf-8")
    spec = KeySpec.from_mapping(NORM_VERSION, {"name_dob": ["name_tokens", "date_of_birth"]})
    result = load_records(path, CsvFormat(date_order="DMY"), spec, require_case_ref=True)
    assert not result.records
    assert "case_ref contains ';'" in result.rejected[0].reason
