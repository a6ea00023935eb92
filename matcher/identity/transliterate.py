"""Script-aware transliteration to Latin for normalisation n2.

anyascii does most of the work; this module adds only the product's own rules
where one romanisation is not enough or anyascii's choice is not the one
agencies write:

* Cyrillic: several national/international romanisation schemes are in use
  (English/BGN "Sergey Ivanov", ICAO 9303 passports "Sergei Ivanov", German
  "Sergej Iwanow", Polish "Siergiej Iwanow", Ukrainian national "Serhii").
  A Cyrillic name therefore yields one Latin form per scheme (as alternatives).
* Greek: ELOT 743 digraphs (ου → ou, αυ → av, ευ → ev, μπ → b at word start,
  γγ → ng), so Παπαδόπουλος → papadopoulos, not anyascii's "papadopoylos".
* Arabic: the article ال becomes a separate word "al" (a particle), and a
  word-initial alif/hamza or ain becomes "a" (أحمد → ahmd, like "Ahmed" it
  starts with a vowel), since anyascii would turn them into apostrophes.
* German umlauts: ä/ö/ü also give the "ae/oe/ue" form as an alternative
  (Müller → muller and mueller).

All functions are pure and return lower-case text that still needs the common
folding (anyascii, punctuation) of :mod:`matcher.identity.normalise_n2`.
"""

from __future__ import annotations

import re

_CYR_COMMON = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya", "і": "i",
    "ї": "yi", "є": "ye", "ґ": "g", "ў": "w",
}

#: Cyrillic romanisation schemes, most common in European police data first.
CYRILLIC_SCHEMES: dict[str, dict[str, str]] = {
    # English / BGN-PCGN style (also what anyascii gives).
    "bgn": dict(_CYR_COMMON),
    # ICAO Doc 9303 (machine-readable passports since 2013).
    "icao": _CYR_COMMON | {"й": "i", "ю": "iu", "я": "ia", "ъ": "ie", "є": "ie", "ї": "i"},
    # German (Duden) transcription.
    "german": _CYR_COMMON | {
        "в": "w", "ж": "sch", "з": "s", "й": "j", "х": "ch", "ц": "z", "ч": "tsch", "ш": "sch",
        "щ": "schtsch", "ю": "ju", "я": "ja", "ё": "jo", "є": "je", "ї": "ji",
    },
    # Polish transcription.
    "polish": _CYR_COMMON | {
        "в": "w", "ж": "z", "й": "j", "х": "ch", "ц": "c", "ч": "cz", "ш": "sz", "щ": "szcz",
        "ю": "ju", "я": "ja", "ё": "jo", "ы": "y", "є": "je", "ї": "ji",
    },
    # Ukrainian national system (2010): г → h, и → y, й/ю/я/є non-initial → i/iu/ia/ie.
    "ukrainian": _CYR_COMMON | {"г": "h", "и": "y", "й": "i", "ю": "iu", "я": "ia", "є": "ie", "ї": "i"},
}

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_UKRAINIAN = re.compile(r"[іїєґ]")
_GREEK = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]")
_ARABIC = re.compile(r"[\u0600-\u06ff]")
_UMLAUT = re.compile(r"[äöü]")

_GREEK_DIGRAPHS = (
    (re.compile(r"\bμπ"), "b"),
    (re.compile(r"\bντ"), "d"),
    (re.compile(r"ο[υύ]"), "ou"),
    (re.compile(r"α[υύ]"), "av"),
    (re.compile(r"ε[υύ]"), "ev"),
    (re.compile(r"γγ"), "ng"),
)

_ARABIC_RULES = (
    (re.compile(r"(?:^|(?<=\s))ال"), "al "),  # the article: a separate particle
    (re.compile(r"(?:^|(?<=\s))[اأإآع]"), "a"),  # word-initial alif, hamza or ain: a vowel
    (re.compile(r"[ءئؤ]"), ""),
    (re.compile(r"ة(?=\s|$)"), "a"),  # word-final ta marbuta is the vowel a (فاطمة: Fatima, not "ftmh")
    (re.compile(r"(?<=\S)و"), "u"),  # waw and ya inside a word are mostly long vowels
    (re.compile(r"(?<=\S)[يى]"), "i"),
)


def _cyrillic(text: str, table: dict[str, str]) -> str:
    return "".join(table.get(ch, ch) for ch in text)


def _one(low: str, kind: str, scheme: str) -> str:
    if kind == "cyrillic":
        return _cyrillic(low, CYRILLIC_SCHEMES[scheme])
    if kind == "greek":
        for pattern, repl in _GREEK_DIGRAPHS:
            low = pattern.sub(repl, low)
        return low
    if kind == "arabic":
        for pattern, repl in _ARABIC_RULES:
            low = pattern.sub(repl, low)
        return low
    if scheme == "umlaut_e":
        return low.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    return low


def latin_forms_aligned(*texts: str) -> list[tuple[str, ...]]:
    """For each applicable scheme, the lower-case Latin forms of all ``texts`` (already NFKC).

    The scheme is chosen once for all texts together, so the given and family
    names of one person are romanised the same way (never "Sergei Iwanow" from
    two schemes). Latin text without umlauts has one scheme. Cyrillic has one
    per entry of :data:`CYRILLIC_SCHEMES` (the Ukrainian one only for text with
    і, ї, є or ґ); umlauts have the stripped and the German "ae/oe/ue" forms.
    Characters the rules do not cover are left for anyascii.
    """
    lows = [t.lower() for t in texts]
    joint = " ".join(lows)
    if _CYRILLIC.search(joint):
        kind = "cyrillic"
        schemes = [n for n in CYRILLIC_SCHEMES if n != "ukrainian" or _UKRAINIAN.search(joint)]
    elif _GREEK.search(joint):
        kind, schemes = "greek", ["elot"]
    elif _ARABIC.search(joint):
        kind, schemes = "arabic", ["arabic"]
    elif _UMLAUT.search(joint):
        kind, schemes = "latin", ["plain", "umlaut_e"]
    else:
        kind, schemes = "latin", ["plain"]
    return [tuple(_one(low, kind, scheme) for low in lows) for scheme in schemes]


def latin_forms(text: str) -> tuple[str, ...]:
    """Lower-case Latin spellings of one text (already NFKC), primary first, no duplicates."""
    return tuple(dict.fromkeys(forms[0] for forms in latin_forms_aligned(text)))
