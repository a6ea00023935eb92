"""Synthetic record files of two agencies with ground truth, for measuring match quality.

``generate`` draws persons from several locales (German, Polish, Russian and
Ukrainian in Cyrillic, Greek, Spanish, Turkish, Arabic), puts a known share of
them in both agencies' files, and writes each copy the way that agency would:

* the requester (layout of the demo's agency B: ``person_id,given,surname,...``,
  month-first dates) often keeps names in their own script;
* the responder (layout of agency A: ``id,first_name,last_name,...``,
  day-first dates, ``case_id``) writes them in Latin letters, romanised by one
  of several schemes (English/BGN, ICAO passports, German, Polish, Ukrainian
  national, and an informal English one no normaliser rule knows: Dmitry, Yuri),
  and Greek by ELOT 743. These rules are the generator's own, with the context
  rules of the published schemes (Alekseyev, Siergiej, Wassiljew, Efthymios)
  that the normaliser's per-letter tables lack, so the test does not grade the
  normaliser against its own tables;

and then corrupts each copy independently (typos, swapped name columns, first
given name only or an initial, partial or wrong dates, date formats, umlaut and
diacritic spellings, missing fields, document numbers with spacing or a check
digit, nationality as a name in another language) and duplicates some responder
records. Family names have realistic frequencies (:mod:`matcher.quality.synth_surnames`).
``links.csv`` lists every (requester record_id, responder record_id)
pair that is the same person. Same seed → byte-identical files.

The data are synthetic; no name list links a real person to a date or document.
"""

from __future__ import annotations

import csv
import gettext
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pycountry
from anyascii import anyascii
from pycountry.db import Country

from matcher.config_templates import REQUESTER_TOML, RESPONDER_TOML
from matcher.files import open_private, private_dir
from matcher.identity.normalise_n2 import icao_check_digit
from matcher.quality.synth_names import ARABIC_FAMILY, ARABIC_GIVEN, GIVEN, LOCALE_WEIGHTS, NATIONALITY
from matcher.quality.synth_scripts import _cyrillic, _greek
from matcher.quality.synth_surnames import draw_family

REQUESTER_COLUMNS = ("person_id", "given", "surname", "birth_date", "gender", "citizenship", "passport",
                     "passport_country")
RESPONDER_COLUMNS = ("id", "first_name", "last_name", "dob", "sex", "nationality", "doc_no", "doc_country",
                     "case_id")


@dataclass(frozen=True)
class Corruption:
    """Per-copy probabilities of each kind of difference (the defaults are the "default corruption rates")."""

    typo_family: float = 0.04
    typo_given: float = 0.04
    swap_names: float = 0.05
    first_given_only: float = 0.10  # of persons with several given names
    initial_only: float = 0.02
    upper_family: float = 0.3
    strip_diacritics: float = 0.35
    umlaut_e: float = 0.25  # German ä/ö/ü written ae/oe/ue
    dob_missing: float = 0.02
    dob_year_only: float = 0.02
    dob_day_month_swapped: float = 0.01
    dob_day_typo: float = 0.01
    #: a date that is no calendar date (compact YYYYMMDD with a day of 32..91, like 19450493):
    #: the loader drops the date and keeps the rest of the record
    dob_invalid: float = 0.01
    doc_missing: float = 0.15  # of persons who have a document
    doc_spaced: float = 0.3
    doc_check_digit: float = 0.1
    nationality_missing: float = 0.05
    nationality_as_name: float = 0.3
    nationality_alpha2: float = 0.3
    sex_missing: float = 0.05
    duplicate: float = 0.03  # responder records entered twice


@dataclass(frozen=True)
class Person:
    """The truth about one synthetic person (names in their own script)."""

    locale: str
    sex: str
    given: str
    family: str
    dob: date
    nationality: str
    document: str | None
    latin: dict[str, tuple[str, ...]] = field(default_factory=dict)  # Arabic script → spellings


# Romanisation schemes the responder uses for Cyrillic, with weights; "informal" is
# English-style usage no normaliser rule produces (Дмитрий → Dmitry, Юрий → Yuri). The rules
# themselves are in synth_scripts.py, deliberately not the normaliser's tables (matcher.identity.transliterate).
_CYRILLIC_USE = {"ru": {"bgn": 0.35, "icao": 0.2, "german": 0.2, "polish": 0.1, "informal": 0.15},
                 "uk": {"ukrainian": 0.35, "bgn": 0.2, "icao": 0.15, "german": 0.15, "informal": 0.15}}
_COUNTRY_LANGS = ("de", "fr", "es", "it", "pl", "ru", "el", "ar", "tr")


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def _romanise(text: str, locale: str, rng: random.Random, c: Corruption) -> str:
    """How an agency writing Latin letters would spell a name."""
    if locale in _CYRILLIC_USE:
        return _cyrillic(text, _pick(rng, _CYRILLIC_USE[locale]))
    if locale == "el":
        return _greek(text)
    if locale == "de" and rng.random() < c.umlaut_e:
        text = text.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("Ü", "Ue").replace("Ö", "Oe")
    if rng.random() < c.strip_diacritics:
        return anyascii(text)
    return text


def _typo(text: str, rng: random.Random) -> str:
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(letters) < 4:
        return text
    i = rng.choice(letters[1:])  # the first letter is rarely wrong
    kind = rng.randrange(4)
    alphabet = "abcdefghijklmnopqrstuvwxyz" if text.isascii() else text.lower()
    if kind == 0:
        return text[:i] + text[i + 1 :]
    if kind == 1:
        return text[:i] + rng.choice(alphabet) + text[i:]
    if kind == 2 and i + 1 < len(text):
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i] + rng.choice(alphabet) + text[i + 1 :]


def _country(code: str) -> Country:
    """The pycountry record of an ISO 3166 alpha-3 code (every code synth draws is one)."""
    country = pycountry.countries.get(alpha_3=code)
    if country is None:
        raise ValueError(f"unknown ISO 3166 alpha-3 code {code!r}")
    return country


def _country_name(code: str, rng: random.Random) -> str:
    country = _country(code)
    name = getattr(country, "common_name", None) or country.name
    lang = rng.choice(_COUNTRY_LANGS)
    return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang], fallback=True).gettext(name)


def _new_person(rng: random.Random, today: date, closed_pools: bool = False) -> Person:
    locale = _pick(rng, LOCALE_WEIGHTS)
    sex = rng.choice("MF")
    latin: dict[str, tuple[str, ...]] = {}
    if locale == "ar":
        given_pool = ARABIC_GIVEN[sex == "F"]
        given = rng.choice(list(given_pool))
        latin = {given: given_pool[given]}
        r = rng.random()
        if closed_pools or r < 0.6:
            family = rng.choice(list(ARABIC_FAMILY))
            latin[family] = ARABIC_FAMILY[family]
        else:  # a patronymic: the father's given name, or Abu + a given name
            father = rng.choice(list(ARABIC_GIVEN[0]))
            latin[father] = ARABIC_GIVEN[0][father]
            family = father
            if r >= 0.9:
                family, latin["أبو"] = "أبو " + father, ("Abu", "Abou")
    else:
        male, female = GIVEN[locale]
        pool = (male if sex == "M" else female).split()
        given = rng.choice(pool)
        if locale in ("es", "de", "tr") and rng.random() < 0.25:
            given += " " + rng.choice([g for g in pool if g != given])
        family = draw_family(rng, locale, closed=closed_pools)
        if locale == "es":
            family += " " + draw_family(rng, locale, closed=closed_pools)
        if sex == "F" and locale in ("ru", "pl"):
            family = (
                (family[:-1] + "a") if family.endswith(("ski", "cki")) else family + ("а" if locale == "ru" else "")
            )
    dob = today - timedelta(days=rng.randrange(18 * 365, 75 * 365))
    nationality = rng.choice(NATIONALITY[locale])
    document = None
    if rng.random() < 0.5:
        document = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2)) + f"{rng.randrange(10**7):07d}"
    return Person(locale, sex, given, family, dob, nationality, document, latin)


def _render(p: Person, rng: random.Random, c: Corruption, *, native_script: float, date_order: str,
            spell: Callable[[str], str] | None = None) -> list[str]:
    """One agency's row for ``p``: given, family, date, sex, nationality, document, document country.

    ``spell`` (when given) writes each name instead of the generator's own romanisation rules, e.g. a
    third-party romaniser chosen for this copy (:mod:`matcher.quality.romanisers`)."""

    def name(text: str) -> str:
        if spell is not None:
            return spell(text)
        if p.locale == "ar":
            return text if rng.random() < native_script else " ".join(rng.choice(p.latin[w]) for w in text.split())
        if p.locale in ("ru", "uk", "el") and rng.random() < native_script:
            return text
        return _romanise(text, p.locale, rng, c)

    given, family = name(p.given), name(p.family)
    if " " in given and rng.random() < c.first_given_only:
        given = given.split()[0]
    if rng.random() < c.initial_only:
        given = given[:1] + "."
    if rng.random() < c.typo_given:
        given = _typo(given, rng)
    if rng.random() < c.typo_family:
        family = _typo(family, rng)
    if rng.random() < c.upper_family:
        family = family.upper()
    if rng.random() < c.swap_names:
        given, family = family, given

    d = p.dob
    if rng.random() < c.dob_day_typo:
        d = d.replace(day=max(1, min(28, d.day + rng.choice((-1, 1)))))
    if rng.random() < c.dob_day_month_swapped and d.day <= 12 and d.day != d.month:
        d = d.replace(day=d.month, month=d.day)
    r = rng.random()
    if r < c.dob_missing:
        dob = ""
    elif r < c.dob_missing + c.dob_year_only:
        dob = f"{d.year}"
    else:
        local = "%d.%m.%Y" if date_order == "DMY" else "%m/%d/%Y"
        dob = d.strftime(rng.choices([local, "%Y-%m-%d"], [0.7, 0.3])[0])
        if r < c.dob_missing + c.dob_year_only + c.dob_invalid:  # no extra draw: other rows stay as they were
            dob = f"{d.year}{d.month:02d}{32 + d.day % 60:02d}"

    sex = "" if rng.random() < c.sex_missing else p.sex
    r = rng.random()
    if r < c.nationality_missing:
        nationality = ""
    elif r < c.nationality_missing + c.nationality_as_name:
        nationality = _country_name(p.nationality, rng)
    elif r < c.nationality_missing + c.nationality_as_name + c.nationality_alpha2:
        nationality = _country(p.nationality).alpha_2
    else:
        nationality = p.nationality

    doc = doc_country = ""
    if p.document and rng.random() >= c.doc_missing:
        doc = p.document
        if rng.random() < c.doc_check_digit:
            doc += icao_check_digit(doc)
        if rng.random() < c.doc_spaced:
            doc = doc[:2] + " " + doc[2:5] + "-" + doc[5:]
        doc_country = _country(p.nationality).alpha_2 if rng.random() < 0.5 else p.nationality
    return [given, family, dob, sex, nationality, doc, doc_country]


@dataclass
class SynthResult:
    requester: Path
    responder: Path
    links: Path
    requester_config: Path
    responder_config: Path
    shared: int


def split_population(
    size: int, overlap: float, responder_size: int | None, draw: Callable[[], Person]
) -> tuple[list[Person], list[Person], int]:
    """The requester's ``size`` persons, the responder's, and how many they share (the first ones).

    ``draw`` is called once per distinct person, in order (the seeded generators depend on it).
    """
    if not 0 <= overlap <= 1:
        raise ValueError("overlap must be between 0 and 1")
    n_resp = size if responder_size is None else responder_size
    shared = min(round(size * overlap), n_resp)
    persons = [draw() for _ in range(size + n_resp - shared)]
    return persons[:size], persons[:shared] + persons[size:], shared


def generate(size: int, overlap: float, seed: int, out: str | os.PathLike[str], corruption: Corruption | None = None,
             responder_size: int | None = None, closed_pools: bool = False) -> SynthResult:
    """Write ``requester.csv``, ``responder.csv``, ``links.csv`` and both configs to ``out``.

    ``size`` requester records, ``responder_size`` (default ``size``) responder
    records; ``round(size * overlap)`` persons are in both. Deterministic in
    ``seed`` (dates are counted back from a fixed day, not from today).
    Family names follow :mod:`matcher.quality.synth_surnames` (a common head and a long
    tail of rare names); ``closed_pools`` draws them from the short hand lists
    only, evenly, so that different persons share names far more often than in a
    real population: a stress test of precision.
    """
    c = corruption or Corruption()
    rng = random.Random(seed)
    today = date(2025, 1, 1)
    req_people, resp_people, shared = split_population(
        size, overlap, responder_size, lambda: _new_person(rng, today, closed_pools)
    )
    req_rows = [(i, _render(p, rng, c, native_script=0.6, date_order="MDY")) for i, p in enumerate(req_people)]
    resp_rows = []
    for i, p in enumerate(resp_people):
        resp_rows.append((i, _render(p, rng, c, native_script=0.05, date_order="DMY")))
        if rng.random() < c.duplicate:
            resp_rows.append((i, _render(p, rng, c, native_script=0.05, date_order="DMY")))
    rng.shuffle(req_rows)
    rng.shuffle(resp_rows)
    req_ids = {}
    out = Path(out)
    private_dir(out, fix_existing=False)
    with open_private(out / "requester.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(REQUESTER_COLUMNS)
        for n, (i, row) in enumerate(req_rows):
            req_ids[i] = f"R-{n + 1:06d}"
            w.writerow([req_ids[i], *row])
    links = []
    with open_private(out / "responder.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(RESPONDER_COLUMNS)
        for n, (i, row) in enumerate(resp_rows):
            rid = f"A-{n + 1:06d}"
            w.writerow([rid, *row, f"CASE-{n + 1:06d}"])
            if i < shared:
                links.append((req_ids[i], rid))
    with open_private(out / "links.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("requester_id", "responder_id"))
        w.writerows(sorted(links))
    (out / "requester.toml").write_text(REQUESTER_TOML, encoding="utf-8")
    (out / "responder.toml").write_text(
        RESPONDER_TOML.replace('watchlist = "agency_a_watchlist.csv"', 'watchlist = "responder.csv"'), encoding="utf-8"
    )
    return SynthResult(out / "requester.csv", out / "responder.csv", out / "links.csv",
                       out / "requester.toml", out / "responder.toml", shared)
