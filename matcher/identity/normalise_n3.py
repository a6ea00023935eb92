"""Normalisation n3: names as every agency writes them, and keys that do not care which column.

n3 keeps every field of n2 (:mod:`matcher.identity.normalise_n2`, unchanged) and adds name fields built
from a *romanisation skeleton* per name word (:mod:`matcher.identity.schemes`): a name written in
Cyrillic (Russian, Ukrainian, Belarusian, Bulgarian, Serbian), Greek or Arabic is first written in
Latin letters by the table of its language's published scheme; then every Latin word, whoever
romanised it and by whichever scheme (ICAO 9303, BGN/PCGN, GOST 7.79 / ISO 9, scientific, MVD,
national systems, ELOT 743, ISO 233, everyday spellings), goes through the same folds, so Latin
input gets the same treatment as script input, decided by rule and never by guessing the origin
(Jakov = Yakov = Iakov, Xaritonov = Kharitonov, Yefremov = Efremov, ʿUmar = Omar).

New fields (all column-proof: a name typed in the other column gives the same values):

* ``name_keys``: the skeletons of all name words (given and family, particles dropped), sorted;
* ``name_pairs``: the first word of each column paired with every word of the other column, each
  pair sorted: {first given} × family words ∪ given words × {first family}. The set is the same
  when the columns are swapped, a second given name or a second surname may be missing, and a
  double surname may be written in either order ("García López" / "López García" share the pairs
  with the first given name);
* ``name_keys_fine``: as ``name_keys`` with the vowels kept (for keys without a full date);
* ``name_initials``: the skeleton of the first word of one column with the initial of the first
  word of the other, both ways round (a typo in one of the two words, or a given name written as
  an initial, still meets); ``name_initials_nat``: the same values, each followed by the
  nationality unless its word is long (INITIALS_ALONE_FROM letter classes), for ``initials_dob``.

Tokens per record stay bounded: a name has at most MAX_READINGS readings, at most MAX_NAME_WORDS
words per column enter the pairs, and a key yields at most MAX_ALTERNATIVES_PER_KEY tokens
(matcher.identity.match_keys); the first ones kept do not depend on the columns either.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from matcher.errors import RecordError
from matcher.identity.normalise_n2 import (
    NICKNAMES,
    PARTICLES,
    Alternatives,
    normalise_record_n2,
)
from matcher.identity.schemes import arabic, cyrillic, greek
from matcher.identity.schemes.latin import (
    DIACRITICS,
    UMLAUT_SPELLINGS,
    greek_letter_reading,
    initial,
    skeleton,
    to_ascii,
)

NORM_VERSION_N3 = "n3"

#: Words of one column that enter ``name_pairs`` (a longer name keeps its first ones).
MAX_NAME_WORDS = 3
#: Readings (as written; ICAO's ae oe ue or letter-for-letter Greek) a name field is computed for.
MAX_READINGS = 2
#: In ``name_initials``, a word whose skeleton has at least this many letter classes is compared by
#: that skeleton (without vowels: Haddad/hdad, Khrisafi/Khrusaphe, Bönwald/Boenwald meet); a shorter
#: word by its fine skeleton, since a short skeleton with an initial and a date meets namesakes
#: (Anna, Anne, Nina, Ina are all "n"). Measured in docs/match-quality.md (section n3): from 3 classes
#: precision on realistic name frequencies falls below 0.995.
INITIALS_COARSE_FROM = 4
#: In ``name_initials_nat`` (the key ``initials_dob``), a word with at least this many letter classes
#: meets with the initial and the date alone; a shorter one needs the nationality too. From 4 classes
#: on, precision on realistic name frequencies falls below 0.995 (docs/match-quality.md, section n3).
INITIALS_ALONE_FROM = 5

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_GREEK = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_SPLIT = re.compile(r"[^\w'\u0300-\u036f]+")
#: Arabic "servant of" joined to the next word: ʿAbd al-Rahman = Abdel Rahman = Abdulrahman.
_ABD = frozenset({"abd", "abdel", "abdul", "abdal", "abdol", "abdu"})
#: n2's particles, plus the Arabic article assimilated to a sun letter (ar-Rahman, as-Sayyid, ash-Shami).
N3_PARTICLES: frozenset[str] = PARTICLES | frozenset(
    {"ar", "as", "ash", "ad", "at", "az", "ath", "adh", "an", "ur", "abw", "bw", "bn"}
)
#: Characters some ASCII encodings of Arabic put inside a word (ArabTeX .h ^s _t, unidecode ~ @): removed.
_INNER_MARKS = re.compile(r"(?<=\w)[._^~]+(?=\w)|^[._^~]+(?=\w)")
#: Unidecode 1.4 writes ى (alif maqsura) as "~" and ة (ta marbuta) as "@": at a word's end both are the
#: vowel a, as in the BGN/PCGN table (lyl~ = ليلى = Layla, fTm@ = فاطمة).
_UNIDECODE_FINAL_VOWEL = re.compile(r"(?<=[^\W\d_])~(?![^\W\d_])")


#: ArabTeX writes ta marbuta (ة) as a capital T at a word's end (smyrT, hAlT), t being ت: in a word
#: with lower-case letters (so not a name in capitals), such a final T is read as the vowel it sounds.
_ARABTEX_TA_MARBUTA = re.compile(r"(?<=[a-zA-Z'`])T(?=[\s\-]|$)")
_HAS_LOWER = re.compile(r"[a-z]")


def _arabtex_ta_marbuta(text: str) -> str:
    return " ".join(_ARABTEX_TA_MARBUTA.sub("a", w) if _HAS_LOWER.search(w) else w for w in text.split(" "))


def latin(text: str) -> str:
    """Lower-case Latin letters of a name in any script (script letters by their scheme's table)."""
    low = unicodedata.normalize("NFKC", _arabtex_ta_marbuta(text)).lower()
    if _CYRILLIC.search(low):
        low = cyrillic.romanise(low, cyrillic.language(low))
    if _GREEK.search(low):
        low = greek.romanise(low)
    if _ARABIC.search(low):
        low = arabic.romanise(low)
    return low


@lru_cache(maxsize=65536)
def name_words(text: str) -> tuple[str, ...]:
    """The ASCII words of a name, particles dropped (unless nothing else is left), nicknames
    replaced, "abd" (ʿAbd, Abdel, Abdul) joined to the next word as "abd"."""
    low = "".join("'" if DIACRITICS.get(ch) == "'" else ch for ch in latin(text)).replace("@", "a")
    low = _UNIDECODE_FINAL_VOWEL.sub("a", low)
    low = " ".join(_INNER_MARKS.sub("", w) for w in low.split())
    words = [to_ascii(w) for w in _SPLIT.split(low.replace("_", " "))]
    words = [w for w in words if w.strip("'")]
    kept = [w for w in words if w.strip("'") not in N3_PARTICLES] or words
    joined: list[str] = []
    for w in kept:
        prev = joined[-1] if joined else ""
        if ("a" + prev[1:] if prev.startswith("'") else prev) in _ABD:
            joined[-1] = "abd" + w.lstrip("'")
        else:
            joined.append(w)
    return tuple(NICKNAMES.get(w, w) for w in joined)


@lru_cache(maxsize=65536)
def readings(text: str) -> tuple[tuple[str, ...], ...]:
    """The name's words, then (when it differs) one alternative reading: at most two, the first as
    written. A name written with ä ö ü ø has ICAO 9303's spelling (ae oe ue oe, ``UMLAUT_SPELLINGS``)
    as its alternative; any other name the same words read as letter-for-letter Greek."""
    words = name_words(text)
    composed = unicodedata.normalize("NFC", text)
    if any(ch.lower() in UMLAUT_SPELLINGS for ch in composed):
        alt = name_words("".join(UMLAUT_SPELLINGS.get(ch.lower(), ch) for ch in composed))
    else:
        alt = tuple(greek_letter_reading(w) for w in words)
    return (words, alt) if alt != words else (words,)


def _skeletons(words: tuple[str, ...], fine: bool) -> tuple[str, ...]:
    return tuple(s for s in (skeleton(w, fine) for w in words) if s)


def skeletons(text: str, fine: bool = False) -> tuple[str, ...]:
    """The skeleton (``fine``: with vowels) of every word of a name as written (empty ones left out)."""
    return _skeletons(name_words(text), fine)


def _both(given: str, family: str) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(given words, family words) for the written reading, then for the letter-for-letter Greek
    one (MAX_READINGS in all); swapping the columns swaps each pair and keeps the order."""
    g, f = readings(given), readings(family)
    combos = [(g[0], f[0]), (g[-1], f[-1]), (g[0], f[-1]), (g[-1], f[0])]
    return list(dict.fromkeys(combos))[:MAX_READINGS]


def name_keys(given: str, family: str, fine: bool = False) -> Alternatives:
    """All skeletons of both columns, sorted, per reading; () when there is no name."""
    out = []
    for g, f in _both(given, family):
        words = sorted(_skeletons(g, fine) + _skeletons(f, fine))
        if words:
            out.append(" ".join(words))
    return tuple(dict.fromkeys(out))


def name_pairs(given: str, family: str) -> Alternatives:
    """{first given} × family words ∪ given words × {first family}, each pair sorted (see module);
    the written reading's pairs first, each reading's in sorted order."""
    out = []
    for gw, fw in _both(given, family):
        g, f = _skeletons(gw, False)[:MAX_NAME_WORDS], _skeletons(fw, False)[:MAX_NAME_WORDS]
        if g and f:
            pairs = [(g[0], w) for w in f] + [(w, f[0]) for w in g[1:]]
            # sorted, so that the first MAX_ALTERNATIVES_PER_KEY do not depend on the columns either
            out.extend(sorted({" ".join(sorted(p)) for p in pairs}))
    return tuple(dict.fromkeys(out))


def _initials_word(word: str) -> str:
    """A word as ``name_initials`` compares it: its skeleton when that has INITIALS_COARSE_FROM
    letter classes or more, else its fine skeleton (vowels kept)."""
    coarse = skeleton(word)
    return coarse if len(coarse) >= INITIALS_COARSE_FROM else skeleton(word, True)


def _initials_values(given: str, family: str) -> list[tuple[str, int]]:
    """``name_initials``' values in their order, each with the number of letter classes of its word."""
    out: dict[str, int] = {}
    for gw, fw in _both(given, family):
        if gw and fw:
            pairs = {(f"{_initials_word(a)} {initial(b)}", len(skeleton(a)))
                     for a, b in ((fw[0], gw[0]), (gw[0], fw[0])) if _initials_word(a) and initial(b)}
            for value, classes in sorted(pairs):
                out.setdefault(value, classes)
    return list(out.items())


def name_initials(given: str, family: str) -> Alternatives:
    """The first word of each column with the other's initial, both ways round, as a set (sorted), so
    it does not depend on the columns: the word as :func:`_initials_word` gives it (a long word by its
    skeleton, a short one with its vowels: a short skeleton with an initial meets too many namesakes),
    the initial of the other word as :func:`matcher.identity.schemes.latin.initial` reads it. Per
    reading, the written one first."""
    return tuple(value for value, _classes in _initials_values(given, family))


def name_initials_nat(given: str, family: str, nationality: Alternatives) -> Alternatives:
    """``name_initials``' values for the key ``initials_dob``, each followed by the nationality unless
    its word has INITIALS_ALONE_FROM letter classes or more: such a word (Schenkler, Kowalczyk,
    Khrisafi) with an initial and a full date of birth is rare enough between different persons to
    stand alone, so a record without a nationality still meets; a shorter one (Stefan, Birgit, Elena,
    Nowak) meets namesakes born the same day, and needs the nationality to agree as well. A short word
    on a record without nationality gives no value."""
    out: list[str] = []
    for value, classes in _initials_values(given, family):
        out.extend([value] if classes >= INITIALS_ALONE_FROM else [f"{value} {nat}" for nat in nationality])
    return tuple(dict.fromkeys(out))


#: A full date's shape whose year has four digits in a fixed place: compact YYYYMMDD, ISO-like
#: YYYY-MM-DD, or D-M-YYYY / M-D-YYYY (any of / . - or a space between the parts).
_DATED_YEAR = re.compile(
    r"(\d{4})\d{4}|(\d{4})\s*[/.\- ]\s*\d{1,2}\s*[/.\- ]\s*\d{1,2}|\d{1,2}\s*[/.\- ]\s*\d{1,2}\s*[/.\- ]\s*(\d{4})"
)


def year_of_bad_date(text: str) -> str:
    """The year of a value written as a full date that is no calendar date (19450493, 31.02.1980),
    when the year has four digits in its fixed place and lies in 1900..2100; "" otherwise.

    Under n3 such a date keeps its year (``year_of_birth``) when its full date is dropped: a day or
    month out of range says nothing against the year, and keys with a year still find the person."""
    m = _DATED_YEAR.fullmatch(text.strip())
    year = next((g for g in m.groups() if g), "") if m else ""
    return year if year and 1900 <= int(year) <= 2100 else ""


def normalise_record_n3(raw: Mapping[str, str], date_order: str) -> dict[str, Alternatives]:
    """Normalise one record under n3: every n2 field unchanged, plus the column-proof name fields.

    A date of birth that is no calendar date raises RecordError as under n2, with its year as the
    part the loader keeps (:func:`year_of_bad_date`, ``RecordError.kept``)."""
    try:
        record = normalise_record_n2(raw, date_order)
    except RecordError as exc:
        year = year_of_bad_date(raw.get("date_of_birth") or "") if exc.field == "date_of_birth" else ""
        if year:
            raise RecordError(f"{exc}; its year is kept", exc.field, kept=year) from exc
        raise
    given, family = (raw.get("given_names") or "").strip(), (raw.get("family_name") or "").strip()
    record["name_keys"] = name_keys(given, family)
    record["name_pairs"] = name_pairs(given, family)
    record["name_initials"] = name_initials(given, family)
    record["name_initials_nat"] = name_initials_nat(given, family, record.get("nationality", ()))
    record["name_keys_fine"] = name_keys(given, family, fine=True)
    return record
