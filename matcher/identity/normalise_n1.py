"""Normalisation v1: raw record values to the canonical forms match keys are built from.

Both agencies must turn the same person into byte-identical field values, or
their tokens never meet (DESIGN §2.2). Everything here is pure (no I/O) and
deterministic; the version string ``NORM_VERSION`` is part of every token, so
any change to the output of a function in this module needs a new version.

Error messages (``RecordError``) name the field and what is expected, and never
contain the offending value: they end up in reject files and logs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from functools import lru_cache

import pycountry
from anyascii import anyascii

from matcher.errors import RecordError

NORM_VERSION = "n1"

#: Raw fields ``normalise_record`` reads (all optional).
RAW_FIELDS: tuple[str, ...] = (
    "given_names",
    "family_name",
    "date_of_birth",
    "sex",
    "nationality",
    "document_number",
    "document_country",
    "place_of_birth",
)

DATE_ORDERS: frozenset[str] = frozenset({"DMY", "MDY", "YMD"})

_MIN_YEAR = 1900

# Apostrophe-like characters that may survive transliteration.
_APOSTROPHES = re.compile(r"['`\u00b4\u2018\u2019\u02bc\u02bb]")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_NOT_DOC = re.compile(r"[^A-Z0-9]+")

_COMPACT_DATE = re.compile(r"\d{8}")
_DATE_PARTS = re.compile(r"(\d{1,4})\s*[/.\- ]\s*(\d{1,2})\s*[/.\- ]\s*(\d{1,4})")

_DATE_EXAMPLES = {"DMY": "31/12/1980", "MDY": "12/31/1980", "YMD": "1980/12/31"}


def _check_order(order: str) -> None:
    if order not in DATE_ORDERS:
        raise ValueError(f"date order must be one of DMY, MDY, YMD, not {order!r}")


@lru_cache(maxsize=65536)
def normalise_name(text: str) -> str:
    """Fold a name (or place) to lower-case ASCII tokens separated by single spaces.

    Steps: Unicode NFKC (ligatures, full-width and compatibility forms), then
    transliteration to Latin with anyascii (Иванов → Ivanov, Müller → Muller,
    Łukasz → Lukasz, ß → ss), lower case, apostrophes removed (O'Brien →
    obrien, so "O Brien" and "OBrien" differ but all apostrophe variants agree),
    every other run of non-alphanumerics (hyphens, dots, commas) becomes one
    space (Jean-Pierre → "jean pierre"). The result only contains [a-z0-9 ],
    has no leading/trailing spaces, and normalising it again changes nothing.
    """
    folded = anyascii(unicodedata.normalize("NFKC", text)).lower()
    folded = _APOSTROPHES.sub("", folded)
    return _NOT_ALNUM.sub(" ", folded).strip()


def name_tokens(given: str, family: str) -> str:
    """All tokens of the given and family names, normalised and sorted, joined by a space.

    Sorting makes the value independent of name order and of which column a
    name was entered in: "IVANOV Sergei", "Sergei Ivanov" and swapped
    given/family columns all give "ivanov sergei". Repeated tokens are kept.
    """
    return " ".join(sorted((normalise_name(given) + " " + normalise_name(family)).split()))


def given_initial(given: str) -> str:
    """The first letter (or digit) of the normalised given names, or "" if there are none."""
    return normalise_name(given)[:1]


def _not_a_date(field: str, order: str) -> RecordError:
    """The error for a value that is not a date in ``order`` at all (made only when raised)."""
    return RecordError(
        f"{field} is not a valid date in {order} order (expected e.g. {_DATE_EXAMPLES[order]} or 1980-12-31)", field
    )


def normalise_date(text: str, order: str, field: str = "date_of_birth") -> str:
    """Parse a calendar date to ISO 8601 ``YYYY-MM-DD``.

    Accepted: three numeric parts separated by ``/ . -`` or spaces, read in the
    configured ``order`` ("DMY", "MDY" or "YMD"); a first part of four digits is
    always year-month-day (ISO), whatever the order; and compact ``YYYYMMDD``.
    Whether 03/04 is March or April is decided only by ``order`` (a property
    of the agency's data), never guessed from the values. Two-digit years are
    rejected (the century would be a guess), as are invalid calendar dates,
    dates before 1900 and dates in the future.

    Raises RecordError naming ``field`` (never the value); ValueError for an
    unknown ``order`` (a configuration mistake, not a data one).
    """
    _check_order(order)
    s = text.strip()
    if _COMPACT_DATE.fullmatch(s):
        y, m, d = int(s[:4]), int(s[4:6]), int(s[6:])
    else:
        match = _DATE_PARTS.fullmatch(s)
        if match is None:
            raise _not_a_date(field, order)
        a, b, c = match.groups()
        if len(a) == 4:
            if len(c) > 2:
                raise _not_a_date(field, order)
            y, m, d = int(a), int(b), int(c)
        else:
            if order == "YMD":
                if len(a) == 2 and len(c) <= 2:
                    raise RecordError(
                        f"{field} has a two-digit year: write the year with four digits (e.g. 1980-12-31)", field
                    )
                raise _not_a_date(field, order)
            if len(a) > 2:
                raise _not_a_date(field, order)
            if len(c) != 4:
                if len(c) == 2:
                    raise RecordError(
                        f"{field} has a two-digit year: write the year with four digits "
                        f"(e.g. {_DATE_EXAMPLES[order]})",
                        field,
                    )
                raise _not_a_date(field, order)
            y = int(c)
            d, m = (int(a), int(b)) if order == "DMY" else (int(b), int(a))
    try:
        value = date(y, m, d)
    except ValueError:
        raise RecordError(
            f"{field} is not a calendar date (day or month out of range for {order} order)", field
        ) from None
    if value.year < _MIN_YEAR:
        raise RecordError(f"{field} is before {_MIN_YEAR}", field)
    if value > date.today():
        raise RecordError(f"{field} is in the future", field)
    return value.isoformat()


# Common forms pycountry.countries.lookup does not know (keys are lower case).
_COUNTRY_ALIASES: dict[str, str] = {
    "uk": "GBR",
    "great britain": "GBR",
    "britain": "GBR",
    "england": "GBR",
    "scotland": "GBR",
    "wales": "GBR",
    "northern ireland": "GBR",
    "d": "DEU",  # ICAO 9303 code of Germany in machine-readable documents
    "el": "GRC",  # EU code of Greece
    "russia": "RUS",
    "turkey": "TUR",
    "north korea": "PRK",
    "palestine": "PSE",
    "macedonia": "MKD",
    "swaziland": "SWZ",
    "ivory coast": "CIV",
    "holland": "NLD",
    "cape verde": "CPV",
    "burma": "MMR",
    "vatican": "VAT",
    "east timor": "TLS",
    # Kosovo has no ISO 3166 code; XKX is the user-assigned code used by the EU.
    "kosovo": "XKX",
    "xk": "XKX",
    "xkx": "XKX",
    "rks": "XKX",
}


@lru_cache(maxsize=4096)
def _country_code(text: str) -> str | None:
    key = " ".join(unicodedata.normalize("NFKC", text).split()).casefold()
    if not key:
        return None
    if key in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[key]
    if key.isdigit() and len(key) <= 3:
        key = key.zfill(3)
    try:
        return str(pycountry.countries.lookup(key).alpha_3)
    except LookupError:
        return None


def normalise_country(text: str, field: str = "country") -> str:
    """ISO 3166-1 alpha-3 code from an alpha-3, alpha-2 or numeric code or an English name.

    Uses pycountry's exact lookup (codes and official/common names, case
    insensitive) plus a few common extra forms ("UK" → GBR, "D" → DEU as in
    passports, "Russia" → RUS, Kosovo → XKX). Raises RecordError naming ``field``.
    """
    code = _country_code(text)
    if code is None:
        raise RecordError(
            f"{field} is not a recognised country (use an ISO 3166 code such as DEU or DE, or an English name)", field
        )
    return code


def normalise_document(text: str) -> str:
    """A document number as upper-case ASCII letters and digits only ("ab 12-34.5" → "AB12345").

    Spaces, dashes and dots are formatting that differs between systems, so
    they are dropped; non-Latin characters are transliterated first.
    """
    if text.isascii() and text.isalnum():  # already letters and digits only (the common case): same result
        return text.upper()
    return _NOT_DOC.sub("", anyascii(unicodedata.normalize("NFKC", text)).upper())


_SEX: dict[str, str] = {}
for _code, _words in {
    "M": "m male man mann männlich maennlich masculin masculine masculino homme hombre м муж мужской",
    "F": "f female woman frau w weiblich feminin féminin feminine femenino femme mujer ж жен женский",
    "X": "x divers diverse other",
    "": "u unknown unspecified <",
}.items():
    for _w in _words.split():
        _SEX[_w] = _code


@lru_cache(maxsize=4096)
def normalise_sex(text: str) -> str:
    """"M", "F" or "X" from common spellings (m/male/männlich/м, f/female/w/weiblich/ж, x/divers).

    Empty input and explicit "unknown" markers (u, unknown, unspecified, "<" as in
    machine-readable passports) give "" (absent). Anything else raises RecordError.
    """
    key = unicodedata.normalize("NFKC", text).strip().rstrip(".").casefold()
    if not key:
        return ""
    try:
        return _SEX[key]
    except KeyError:
        raise RecordError("sex is not recognised (expected M, F or X, or male/female)", "sex") from None


def normalise_record(raw: Mapping[str, str], date_order: str) -> dict[str, str]:
    """Normalise one record's raw values into every field of ``match_keys.KEY_FIELDS``.

    ``raw`` may lack any field; empty (or whitespace-only) values mean absent
    and give "". A name, place or document number that normalises to nothing
    (e.g. "-" used as a placeholder) is also treated as absent. A non-empty
    date, sex or country that cannot be understood raises RecordError (naming
    the field, never the value), so the row goes to the rejects file instead
    of silently losing a key.
    """
    _check_order(date_order)

    def get(name: str) -> str:
        return (raw.get(name) or "").strip()

    given = normalise_name(get("given_names"))
    family = normalise_name(get("family_name"))
    dob_raw = get("date_of_birth")
    dob = normalise_date(dob_raw, date_order, "date_of_birth") if dob_raw else ""
    nat_raw = get("nationality")
    doc_country_raw = get("document_country")
    return {
        "given_names": given,
        "family_name": family,
        "name_tokens": " ".join(sorted((given + " " + family).split())),
        "given_initial": given[:1],
        "date_of_birth": dob,
        "date_of_birth_or_swapped": dob,  # n1 has one value per field: no swapped alternative
        "year_of_birth": dob[:4],
        "sex": normalise_sex(get("sex")),
        "nationality": normalise_country(nat_raw, "nationality") if nat_raw else "",
        "document_number": normalise_document(get("document_number")),
        "document_country": normalise_country(doc_country_raw, "document_country") if doc_country_raw else "",
        "place_of_birth": normalise_name(get("place_of_birth")),
    }
