"""Tests of matcher.identity.normalise_n1 (normalisation v1)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matcher.errors import RecordError
from matcher.identity.match_keys import KEY_FIELDS
from matcher.identity.normalise_n1 import (
    NORM_VERSION,
    given_initial,
    name_tokens,
    normalise_country,
    normalise_date,
    normalise_document,
    normalise_name,
    normalise_record,
    normalise_sex,
)

ASCII_TOKENS = re.compile(r"^(?:[a-z0-9]+(?: [a-z0-9]+)*)?$")


def test_version() -> None:
    assert NORM_VERSION == "n1"


# --- names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Иванов", "ivanov"),
        ("IVANOV", "ivanov"),
        ("Müller", "muller"),
        ("MÜLLER", "muller"),
        ("Μüller", "muller"),  # Greek capital Mu followed by Latin
        ("José", "jose"),
        ("Łukasz", "lukasz"),
        ("Straße", "strasse"),
        ("O'Brien", "obrien"),
        ("O’Brien", "obrien"),
        ("Jean-Pierre", "jean pierre"),
        ("  Jean   Pierre ", "jean pierre"),
        ("Smith, John.", "smith john"),
        ("Ｊｏｈｎ", "john"),  # full width
        ("Παπαδόπουλος", "papadopoylos"),
        ("", ""),
        (" - ", ""),
    ],
)
def test_normalise_name(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


def test_greek_and_cyrillic_match_latin_spelling() -> None:
    assert normalise_name("Сергей Иванов") == "sergey ivanov"
    assert normalise_name("Иванов") == normalise_name("Ivanov")
    assert normalise_name("Νίκος") == "nikos"


def test_arabic_and_cjk_give_ascii() -> None:
    for text in ("محمد عبد الله", "张伟", "김민준", "שלום"):
        out = normalise_name(text)
        assert out
        assert ASCII_TOKENS.match(out)


def test_name_tokens_order_independent() -> None:
    a = name_tokens("Sergei", "IVANOV")
    assert a == "ivanov sergei"
    assert name_tokens("IVANOV", "Sergei") == a  # swapped columns
    assert name_tokens("", "IVANOV Sergei") == a  # full name in one column
    assert name_tokens("Сергей", "Иванов") == name_tokens("Sergey", "Ivanov")
    assert name_tokens("Иванов", "Сергей") == name_tokens("Sergey", "Ivanov")
    assert name_tokens("Jean-Pierre", "Dupont") == "dupont jean pierre"
    assert name_tokens("", "") == ""


def test_given_initial() -> None:
    assert given_initial("Élodie Marie") == "e"
    assert given_initial("  ") == ""
    assert given_initial("Юрий") == "y"  # anyascii: Yuriy
    assert given_initial("Юрий") == normalise_name("Юрий")[:1]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_normalise_name_property(text: str) -> None:
    out = normalise_name(text)
    assert ASCII_TOKENS.match(out), out
    assert normalise_name(out) == out


# --- dates -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "order"),
    [
        ("31/12/1980", "DMY"),
        ("31.12.1980", "DMY"),
        ("31-12-1980", "DMY"),
        ("31 12 1980", "DMY"),
        ("12/31/1980", "MDY"),
        ("12-31-1980", "MDY"),
        ("1980/12/31", "YMD"),
        ("1980.12.31", "YMD"),
        ("1980-12-31", "DMY"),  # ISO is accepted whatever the order
        ("1980-12-31", "MDY"),
        ("1980-12-31", "YMD"),
        ("19801231", "DMY"),
        ("19801231", "MDY"),
        (" 31/12/1980 ", "DMY"),
    ],
)
def test_dates(raw: str, order: str) -> None:
    assert normalise_date(raw, order) == "1980-12-31"


def test_single_digit_day_month() -> None:
    assert normalise_date("3/4/1985", "DMY") == "1985-04-03"
    assert normalise_date("3/4/1985", "MDY") == "1985-03-04"
    assert normalise_date("1985-4-3", "DMY") == "1985-04-03"


def test_order_decides_never_guessed() -> None:
    assert normalise_date("01/02/1990", "DMY") == "1990-02-01"
    assert normalise_date("01/02/1990", "MDY") == "1990-01-02"
    with pytest.raises(RecordError):
        normalise_date("12/31/1980", "DMY")  # not swapped silently
    with pytest.raises(RecordError):
        normalise_date("31/12/1980", "MDY")


@pytest.mark.parametrize(
    ("raw", "order"),
    [
        ("31/02/1990", "DMY"),  # not a calendar date
        ("29/02/1991", "DMY"),
        ("00/01/1990", "DMY"),
        ("31/12/80", "DMY"),  # two-digit year
        ("12/31/80", "MDY"),
        ("80/12/31", "YMD"),
        ("1899-12-31", "DMY"),  # before 1900
        ("abc", "DMY"),
        ("1980-12", "DMY"),
        ("1980-12-31-1", "DMY"),
        ("198012", "DMY"),
        ("31/12/19800", "DMY"),
        ("1980/12/1980", "YMD"),
    ],
)
def test_bad_dates(raw: str, order: str) -> None:
    with pytest.raises(RecordError) as info:
        normalise_date(raw, order)
    message = str(info.value)
    assert message.startswith("date_of_birth ")
    assert raw not in message.replace("1980-12-31", "")  # the example in the message


def test_bad_date_reason_has_no_value() -> None:
    with pytest.raises(RecordError) as info:
        normalise_date("17/13/1975", "DMY", "date_of_birth")
    assert "17" not in str(info.value) and "1975" not in str(info.value)
    with pytest.raises(RecordError) as info:
        normalise_date("17.03.75", "DMY")
    assert "75" not in str(info.value) and "17" not in str(info.value)
    assert "two-digit year" in str(info.value)


def test_future_date_rejected() -> None:
    tomorrow = date.today() + timedelta(days=1)
    with pytest.raises(RecordError, match="future"):
        normalise_date(tomorrow.isoformat(), "DMY")
    assert normalise_date(date.today().isoformat(), "DMY") == date.today().isoformat()


def test_bad_order_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        normalise_date("1980-12-31", "DDMMYY")


# --- countries, documents, sex -------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("DE", "DEU"),
        ("de", "DEU"),
        ("DEU", "DEU"),
        ("Germany", "DEU"),
        (" germany ", "DEU"),
        ("276", "DEU"),
        ("76", "BRA"),  # numeric codes are zero-padded
        ("UK", "GBR"),
        ("GB", "GBR"),
        ("United Kingdom", "GBR"),
        ("Russia", "RUS"),
        ("Russian Federation", "RUS"),
        ("D", "DEU"),
        ("United States", "USA"),
    ],
)
def test_countries(raw: str, expected: str) -> None:
    assert normalise_country(raw) == expected


def test_unknown_country() -> None:
    with pytest.raises(RecordError) as info:
        normalise_country("Atlantis", "nationality")
    assert str(info.value).startswith("nationality is not a recognised country")
    assert "Atlantis" not in str(info.value)
    with pytest.raises(RecordError):
        normalise_country("ZZZ")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ab 12-34.5", "AB12345"),
        ("C01X00T47", "C01X00T47"),
        ("  c01x 00t47 ", "C01X00T47"),
        ("АВ123", "AV123"),  # Cyrillic transliterated
        ("ＡＢ１２", "AB12"),  # full width
        ("---", ""),
    ],
)
def test_documents(raw: str, expected: str) -> None:
    assert normalise_document(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("M", "M"),
        ("m", "M"),
        ("male", "M"),
        ("Male", "M"),
        ("männlich", "M"),
        ("м", "M"),
        ("F", "F"),
        ("female", "F"),
        ("W", "F"),
        ("weiblich", "F"),
        ("ж", "F"),
        ("X", "X"),
        ("", ""),
        ("  ", ""),
        ("U", ""),
    ],
)
def test_sex(raw: str, expected: str) -> None:
    assert normalise_sex(raw) == expected


def test_bad_sex() -> None:
    with pytest.raises(RecordError) as info:
        normalise_sex("Q7")
    assert "Q7" not in str(info.value)


# --- whole record ----------------------------------------------------------------


def test_normalise_record_full() -> None:
    rec = normalise_record(
        {
            "given_names": "Sergei",
            "family_name": "Иванов",
            "date_of_birth": "05.03.1985",
            "sex": "m",
            "nationality": "RU",
            "document_number": "75 1234567",
            "document_country": "Russia",
            "place_of_birth": "Санкт-Петербург",
        },
        "DMY",
    )
    assert set(rec) == set(KEY_FIELDS)
    assert rec == {
        "given_names": "sergei",
        "family_name": "ivanov",
        "name_tokens": "ivanov sergei",
        "given_initial": "s",
        "date_of_birth": "1985-03-05",
        "date_of_birth_or_swapped": "1985-03-05",
        "year_of_birth": "1985",
        "sex": "M",
        "nationality": "RUS",
        "document_number": "751234567",
        "document_country": "RUS",
        "place_of_birth": "sankt peterburg",
    }


def test_normalise_record_empty_and_missing() -> None:
    rec = normalise_record({"family_name": "Doe", "date_of_birth": "  ", "sex": ""}, "MDY")
    assert set(rec) == set(KEY_FIELDS)
    assert rec["family_name"] == "doe"
    assert rec["name_tokens"] == "doe"
    for name in KEY_FIELDS - {"family_name", "name_tokens"}:
        assert rec[name] == "", name


def test_normalise_record_bad_value_raises() -> None:
    with pytest.raises(RecordError, match="^nationality"):
        normalise_record({"nationality": "Narnia"}, "DMY")
    with pytest.raises(RecordError, match="^document_country"):
        normalise_record({"document_country": "Narnia"}, "DMY")
    with pytest.raises(RecordError, match="^date_of_birth"):
        normalise_record({"date_of_birth": "31/31/1990"}, "DMY")
