"""Tests of normalisation v2 (matcher.identity.normalise_n2, matcher.identity.transliterate) and key transforms."""

from __future__ import annotations

import pytest

from matcher.errors import ConfigError, RecordError
from matcher.identity.match_keys import KeySpec
from matcher.identity.normalise_n2 import (
    document_forms,
    family_forms,
    given_forms,
    icao_check_digit,
    name_forms,
    name_token_forms,
    normalise_country_n2,
    normalise_date_n2,
    normalise_record_n2,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Иванов", ("ivanov", "iwanow")),
        ("Сергей", ("sergey", "sergei", "sergej")),
        ("Сергій", ("sergiy", "sergii", "sergij", "serhii")),  # Ukrainian: national scheme too
        ("Παπαδόπουλος", ("papadopoulos",)),
        ("Γεώργιος", ("georgios",)),
        ("أحمد", ("ahmd",)),
        ("فاطمة", ("ftma",)),  # word-final ta marbuta is the vowel a, as in Fatima
        ("Müller", ("muller", "mueller")),
        ("Mueller", ("mueller",)),
        ("José María", ("jose maria",)),
        ("Yıldız", ("yildiz",)),
        ("O'Connor", ("oconnor",)),
        ("-", ()),
    ],
)
def test_name_forms(raw: str, expected: tuple[str, ...]) -> None:
    assert name_forms(raw) == expected


def test_umlaut_alternative_meets_latin_spelling() -> None:
    assert set(name_forms("Müller")) & set(name_forms("Mueller"))
    assert set(name_forms("Müller")) & set(name_forms("Muller"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("van der Berg", ("berg",)),
        ("Al-Masri", ("masri",)),
        ("المصري", ("msri",)),  # inner ya as a vowel  # the Arabic article is a particle too
        ("bin Laden", ("laden",)),
        ("Abou Hassan", ("hassan",)),
        ("أبو حسن", ("hsn",)),
        ("de la Cruz", ("cruz",)),
        ("García-López", ("garcia lopez", "garcia")),  # double surname: first surname as alternative
        ("Van", ("van",)),  # a particle alone is the name
    ],
)
def test_family_particles_and_double_surnames(raw: str, expected: tuple[str, ...]) -> None:
    assert family_forms(raw) == expected


def test_nicknames_and_initials() -> None:
    assert given_forms("Bill") == ("william",)
    assert given_forms("Pepe Luis") == ("jose luis",)
    assert given_forms("J.") == ("j",)


def test_name_tokens_one_scheme_per_person_and_order_free() -> None:
    forms = name_token_forms("Сергей", "Иванов")
    assert forms == ("ivanov sergey", "ivanov sergei", "iwanow sergej")
    assert name_token_forms("Sergej", "Iwanow")[0] in forms  # a German agency's spelling
    assert name_token_forms("Иванов", "Сергей") == forms  # swapped columns
    assert name_token_forms("Pieter", "van Dijk") == name_token_forms("Pieter", "Dijk")


@pytest.mark.parametrize(
    ("raw", "order", "expected"),
    [
        ("1985", "DMY", ("", "1985")),
        ("04/1985", "DMY", ("", "1985")),
        ("1985-04", "MDY", ("", "1985")),
        ("03/04/1985", "DMY", ("1985-04-03", "1985")),
        ("03/04/1985", "MDY", ("1985-03-04", "1985")),
        ("1985-04-03", "MDY", ("1985-04-03", "1985")),
    ],
)
def test_partial_dates(raw: str, order: str, expected: tuple[str, str]) -> None:
    assert normalise_date_n2(raw, order) == expected


def test_bad_partial_dates_are_rejected_without_the_value() -> None:
    for raw in ("13/1985", "1850", "85"):
        with pytest.raises(RecordError) as err:
            normalise_date_n2(raw, "DMY")
        assert raw not in str(err.value)


@pytest.mark.parametrize(
    "raw", ["Deutschland", "Германия", "Allemagne", "Γερμανία", "ألمانيا", "Almanya", "Niemcy", "German", "DE", "D"]
)
def test_countries_in_several_languages(raw: str) -> None:
    assert normalise_country_n2(raw) == "DEU"


def test_unknown_country_is_rejected() -> None:
    with pytest.raises(RecordError):
        normalise_country_n2("Atlantis")


def test_document_forms() -> None:
    assert icao_check_digit("L898902C") == "3"  # the ICAO 9303 specimen passport
    assert document_forms("L898902C<3") == ("L898902C3", "L898902C")
    assert document_forms("ae 123-4567") == ("AE1234567",)
    assert document_forms("  ") == ()


def test_record_alternatives() -> None:
    rec = normalise_record_n2(
        {"given_names": "Jürgen", "family_name": "Müller", "date_of_birth": "1968", "nationality": "Deutschland"},
        "DMY",
    )
    assert rec["name_tokens"] == ("jurgen muller", "juergen mueller")
    assert rec["date_of_birth"] == () and rec["year_of_birth"] == ("1968",)
    assert rec["nationality"] == ("DEU",)
    assert rec["given_initial"] == ("j",)


def test_tokens_carry_alternatives_and_version() -> None:
    spec = KeySpec.from_mapping("n2", {"name_dob": ["name_tokens", "date_of_birth"]})
    rec = normalise_record_n2({"given_names": "Jürgen", "family_name": "Müller", "date_of_birth": "01.11.1968"}, "DMY")
    assert spec.tokens(rec) == (
        ("name_dob", b"matcher/v1/n2/name_dob/jurgen muller\x1f1968-11-01"),
        ("name_dob", b"matcher/v1/n2/name_dob/juergen mueller\x1f1968-11-01"),
    )


def test_transforms() -> None:
    spec = KeySpec.from_mapping(
        "n2", {"ph": ["metaphone(family_name)", "initial(given_names)", "year(date_of_birth)"]}
    )
    a = normalise_record_n2({"given_names": "Sergej", "family_name": "Iwanow", "date_of_birth": "1985-04-03"}, "DMY")
    b = normalise_record_n2({"given_names": "Сергей", "family_name": "Иванов", "date_of_birth": "1985-04-03"}, "DMY")
    c = normalise_record_n2({"given_names": "Omar", "family_name": "Haddad", "date_of_birth": "1985"}, "DMY")
    d = normalise_record_n2({"given_names": "عمر", "family_name": "حداد", "date_of_birth": "1985"}, "DMY")
    assert spec.tokens(a) == spec.tokens(b) == (("ph", b"matcher/v1/n2/ph/AFNF\x1fs\x1f1985"),)
    assert not spec.tokens(c)  # year(date_of_birth) needs a full date; year_of_birth has partial ones
    spec2 = KeySpec.from_mapping("n2", {"ph": ["metaphone(family_name)", "initial(given_names)", "year_of_birth"]})
    assert spec2.tokens(c) == spec2.tokens(d)


def test_fingerprint_changes_with_transforms_and_version() -> None:
    plain = KeySpec.from_mapping("n2", {"k": ["family_name", "date_of_birth"]})
    ph = KeySpec.from_mapping("n2", {"k": ["metaphone(family_name)", "date_of_birth"]})
    ny = KeySpec.from_mapping("n2", {"k": ["nysiis(family_name)", "date_of_birth"]})
    v1 = KeySpec.from_mapping("n1", {"k": ["family_name", "date_of_birth"]})
    assert len({plain.fingerprint(), ph.fingerprint(), ny.fingerprint(), v1.fingerprint()}) == 4
    assert "metaphone(family_name)" in ph.canonical_json()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (["shout(family_name)"], "unknown transform"),
        (["metaphone(shoe_size)"], "unknown field"),
    ],
)
def test_bad_transforms_are_config_errors(fields: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KeySpec.from_mapping("n2", {"k": fields})


def test_unknown_norm_version() -> None:
    with pytest.raises(ConfigError, match="norm_version"):
        KeySpec.from_mapping("n9", {"k": ["family_name"]})


def test_date_or_swapped_gives_the_day_month_swapped_date_only_when_it_is_a_date() -> None:
    from matcher.identity.normalise_n2 import dob_or_swapped

    assert dob_or_swapped("1979-03-12") == ("1979-03-12", "1979-12-03")
    assert dob_or_swapped("1979-03-13") == ("1979-03-13",) and dob_or_swapped("1979-03-03") == ("1979-03-03",)
    assert dob_or_swapped("") == ()
    rec = normalise_record_n2({"family_name": "X", "date_of_birth": "12.03.1979"}, "DMY")
    assert rec["date_of_birth"] == ("1979-03-12",) and rec["date_of_birth_or_swapped"][1] == "1979-12-03"


def test_folded_soundex_meets_romanisation_variants_plain_soundex_misses() -> None:
    from matcher.identity.match_keys import WORD_TRANSFORMS

    folded, plain = WORD_TRANSFORMS["folded_soundex"], WORD_TRANSFORMS["soundex"]
    for a, b in [("kseniya", "ksenija"), ("hryhorii", "grigoriy"), ("wiktor", "viktor")]:
        assert folded(a) == folded(b), (a, b)
    assert plain("kseniya") != plain("ksenija") and plain("hryhorii") != plain("grigoriy")
    assert folded("ivanov") != folded("petrov")
