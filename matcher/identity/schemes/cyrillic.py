"""Cyrillic → Latin tables n3 uses for names written in Cyrillic, one per language.

n3 needs one Latin form per Cyrillic name only: the differences between the published schemes
(ICAO 9303, BGN/PCGN, GOST 7.79 / ISO 9, scientific, MVD, national systems) are then removed by
the Latin folds of :mod:`matcher.identity.schemes.latin`, which every name goes through. Which
table is used is decided by letters only one language has (never guessed from the name):

* Serbian (ђ ј љ њ ћ џ): the official Serbian Latin alphabet (Gaj), letter for letter
  (source: the Serbian Constitution 2006, art. 10; the one-to-one Cyrillic/Latin correspondence).
* Belarusian (ў, or і together with ы/э): the national system of 2000/2007 (Instruction on
  transliteration of Belarusian geographical names, adopted by UNGEGN in 2007).
* Ukrainian (і ї є ґ, without ы э ё ъ): the national system, Resolution of the Cabinet of
  Ministers of Ukraine No. 55 of 27 January 2010 ("KMU 2010").
* Bulgarian (ъ inside a word, without ы э ё): the Transliteration Act 2009 (State Gazette 19/2009,
  "Streamlined System"): щ → sht, ъ → a.
* Russian, and anything else: ICAO Doc 9303 part 3 (7th ed. 2015), as GOST R 52535.1-2006 and the
  Russian MVD order 889 (2014) for passports.
"""

from __future__ import annotations

import re

#: ICAO Doc 9303 (2015), table for Russian (also Russian MVD passports since 2014).
RUSSIAN_ICAO_9303: dict[str, str] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "ie", "ы": "y",
    "ь": "", "э": "e", "ю": "iu", "я": "ia",
}

#: Ukrainian national system, KMU Resolution No. 55 (2010); word-initial forms in UKRAINIAN_INITIAL.
UKRAINIAN_KMU_2010: dict[str, str] = RUSSIAN_ICAO_9303 | {
    "г": "h", "ґ": "g", "е": "e", "є": "ie", "и": "y", "і": "i", "ї": "i", "й": "i", "х": "kh",
    "щ": "shch", "ь": "", "ю": "iu", "я": "ia", "'": "", "’": "",
}
UKRAINIAN_INITIAL: dict[str, str] = {"є": "ye", "ї": "yi", "й": "y", "ю": "yu", "я": "ya"}

#: Belarusian national system (2000/2007, UNGEGN 2007), diacritics as written there.
BELARUSIAN_NATIONAL_2007: dict[str, str] = RUSSIAN_ICAO_9303 | {
    "г": "h", "ё": "io", "е": "ie", "ж": "ž", "і": "i", "й": "j", "х": "ch", "ц": "c", "ч": "č", "ш": "š",
    "ы": "y", "ь": "", "ю": "iu", "я": "ia", "ў": "ŭ", "э": "e", "'": "", "’": "",
}
BELARUSIAN_INITIAL: dict[str, str] = {"е": "je", "ё": "jo", "ю": "ju", "я": "ja"}

#: Bulgarian Transliteration Act 2009 (Streamlined System).
BULGARIAN_2009: dict[str, str] = RUSSIAN_ICAO_9303 | {
    "ж": "zh", "й": "y", "х": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sht", "ъ": "a", "ь": "y",
    "ю": "yu", "я": "ya",
}

#: Serbian Cyrillic → Serbian Latin alphabet (Gaj), letter for letter.
SERBIAN_GAJ: dict[str, str] = RUSSIAN_ICAO_9303 | {
    "ђ": "đ", "ж": "ž", "ј": "j", "љ": "lj", "њ": "nj", "ћ": "ć", "х": "h", "ц": "c", "ч": "č", "џ": "dž",
    "ш": "š",
}

_SERBIAN = re.compile(r"[ђјљњћџ]")
_BELARUSIAN = re.compile(r"ў")
_UKRAINIAN = re.compile(r"[іїєґ]")
_RUSSIAN_ONLY = re.compile(r"[ыэёъ]")
_BULGARIAN = re.compile(r"ъ(?=\w)")


def language(text: str) -> str:
    """"sr", "be", "uk", "bg" or "ru" for lower-case Cyrillic ``text``, from letters one language has."""
    if _SERBIAN.search(text):
        return "sr"
    if _BELARUSIAN.search(text) or ("і" in text and re.search(r"[ыэ]", text)):
        return "be"
    if _UKRAINIAN.search(text) and not _RUSSIAN_ONLY.search(text):
        return "uk"
    if _BULGARIAN.search(text) and not re.search(r"[ыэё]", text):
        return "bg"
    return "ru"


_TABLES = {"ru": (RUSSIAN_ICAO_9303, {}), "uk": (UKRAINIAN_KMU_2010, UKRAINIAN_INITIAL),
           "be": (BELARUSIAN_NATIONAL_2007, BELARUSIAN_INITIAL), "bg": (BULGARIAN_2009, {}), "sr": (SERBIAN_GAJ, {})}
_VOWELS = set("аеёиоуыэюяіїєў")


def romanise(text: str, lang: str) -> str:
    """Lower-case ``text`` with its Cyrillic letters written by ``lang``'s table (others kept)."""
    table, initial = _TABLES[lang]
    out = []
    for i, ch in enumerate(text):
        prev = text[i - 1] if i else " "
        if initial and ch in initial and (not prev.isalpha() or (lang == "be" and (prev in _VOWELS or prev in "ь'"))):
            out.append(initial[ch])
        else:
            out.append(table.get(ch, ch))
    return "".join(out)
