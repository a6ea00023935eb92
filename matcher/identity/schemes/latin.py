"""Latin spellings of every scheme → one n3 name key ("romanisation skeleton"), as data.

A name written by any published scheme, in its own script or already in Latin letters, comes to
the same skeleton; the rules apply to every Latin word alike, so no origin is guessed and both
agencies compute the same value. Three steps:

1. ``DIACRITICS``: letters with diacritics → the plain spelling of their source scheme
   (ISO 9:1995 / GOST 7.79 ŝ â û, scientific and Gaj š č ž ć đ, ISO 233 ʿ ʾ ḥ ṭ ẓ ẗ ǧ ḫ, Turkish
   ı ş ğ ç, Polish ł, German ß, Nordic å ø æ, Belarusian ŭ ė); any other mark is stripped. Before
   them, ``MARKED_SEQUENCES`` reads the marks whose meaning depends on the letter before (ICU's
   gẖ kẖ y̱ for Arabic غ خ ى).
2. ``FOLDS``: multi-letter spellings of one sound → one spelling, longest first, each with the
   schemes that write it. A fold never rewrites part of another scheme's digraph: ``dh`` (BGN/PCGN
   Greek δ) and ``kh`` are folded before any single ``h`` rule, ``shch`` before ``sh``/``ch``.
3. ``CLASSES``: the letters left → classes that the schemes confuse among themselves
   (в v/w, б/п/ф f/ph; д/т d/t/th/dh; г/х/к/ж/з/ш/щ/ц/ч and their kh/h/x/g/zh/sh/ch/ts/c/z), vowels
   and the glides j/y dropped (scheme differences are mostly there: Yakov/Iakov/Jakov, Dmitriy/
   Dmitrii/Dmitrij, Solov'yov/Solovev), a vowel at the start kept as one mark "a"
   (Efremov/Yefremov/Jefremov), repeats collapsed (Hassan/Hasan).

Where the schemes cannot be reconciled without breaking another scheme, the miss is documented in
docs/match-quality.md (section n3) rather than folded.
"""

from __future__ import annotations

import re
import unicodedata

from anyascii import anyascii

#: Letter with diacritics → plain spelling, with the scheme(s) that use the letter.
DIACRITICS: dict[str, str] = {
    # ISO 9:1995 / GOST 7.79 system A (Russian, Ukrainian, Bulgarian)
    "ŝ": "shch", "â": "ia", "û": "iu", "ê": "ie", "ǵ": "g", "ẑ": "zh",
    # Scientific transliteration, ISO 9, Serbian/Croatian Gaj alphabet, Czech, Slovak, Belarusian Łacinka
    "š": "sh", "č": "ch", "ž": "zh", "ć": "ch", "đ": "dj", "ŭ": "u", "ė": "e", "ĭ": "i", "ǐ": "i", "ǎ": "a",
    # ISO 233 / DIN 31635 (Arabic): emphatics to plain letters, ta marbuta and alif marks to vowels
    "ḥ": "h", "ṭ": "t", "ṣ": "s", "ḍ": "d", "ẓ": "z", "ḏ": "dh", "ṯ": "th", "ġ": "gh", "ḫ": "kh", "ẖ": "kh",
    # ICU Arabic-Latin: alif with hamza as ạ + hook above (ạ̉ḥmd = ʾḥmd)
    "\u0309": "'",
    "ǧ": "j", "ẗ": "a", "ạ": "a", "ā": "a", "ī": "i", "ū": "u", "ỳ": "a", "ʿ": "'", "ʾ": "'", "ʻ": "'",
    "ʼ": "'", "ʹ": "'", "ʺ": "'", "ˈ": "'", "`": "'", "´": "'", "’": "'", "‘": "'",
    # Turkish
    "ı": "i", "ş": "sh", "ç": "ch", "ğ": "g",
    # Polish, German, Nordic
    "ł": "l", "ß": "ss", "å": "a", "ø": "o", "æ": "ae", "œ": "oe",
}

#: Sequences read before ``DIACRITICS`` because a mark or letter there means something else on its own.
MARKED_SEQUENCES: tuple[tuple[str, str, str], ...] = (
    # (pattern, replacement, scheme that writes the pattern)
    (r"(?<=[gk])ẖ", "h", "ICU/CLDR Arabic-Latin (ICU 72.1): غ as gẖ, خ as kẖ; alone, ẖ is ISO 233's خ (kh) and "
     "gẖ read as g + kh would fold into nk (medial Greek γκ)"),
    ("y\u0331", "a", "ICU/CLDR Arabic-Latin (ICU 72.1): ى alif maqsura as y with a macron below (y̱), a long a "
     "as ISO 233's ỳ"),
)
_MARKED = tuple((re.compile(p), r) for p, r, _ in MARKED_SEQUENCES)

#: ICAO Doc 9303 part 3 (7th ed. 2015, section 6, transliteration of national characters in the MRZ)
#: and the German Duden spelling write Ä Ö Ü as AE OE UE and Ø as OE. A name written with one of these
#: letters gets that spelling as its alternative reading (as written, the letter is read without its
#: mark: Möller = Moller); the coarse skeleton drops vowels, so only the fine one differs.
UMLAUT_SPELLINGS: dict[str, str] = {"ä": "ae", "ö": "oe", "ü": "ue", "ø": "oe"}

#: Multi-letter spellings of one sound → one spelling (applied in this order, on lower-case ASCII).
FOLDS: tuple[tuple[str, str, str], ...] = (
    # (pattern, replacement, schemes that write the pattern)
    (r"schtsch|szcz|shch|shh|sch", "s",
     "щ: German (schtsch), Polish (szcz), BGN/ICAO (shch), GOST 7034 (shh); ш German (sch)"),
    (r"tsch|tch|ch|cz", "c", "ч: German, French/English, Polish, BGN/ICAO; Greek χ ELOT 743 (ch)"),
    (r"kh|gh", "k", "х: BGN/PCGN, ICAO, MVD (kh); Greek χ BGN (kh); Arabic غ (gh)"),
    (r"zh|sh|sz", "s", "ж/ш: BGN/ICAO (zh, sh), Polish (sz)"),
    (r"^(?:nt|nd)", "d",
     "Greek initial ντ: ELOT 743 (d) against letter-for-letter (nt) and UNGEGN (nd); before ts/tz, so that "
     "initial ντζ (Ntziavida) meets ELOT's dz"),
    (r"ts|tz|tc", "c", "ц: BGN/ICAO (ts), German (tz)"),
    (r"dh|th", "d", "Greek δ BGN/PCGN (dh), θ (th); Arabic ذ/ث (dh, th)"),
    (r"ph", "f", "Greek φ in classical transcription (ph)"),
    (r"ck", "k", "German ck"),
    (r"gg", "ng", "Greek γγ letter for letter (gg) against ELOT 743 (ng)"),
    (r"(?<=[a-z])gk", "nk", "Greek γκ inside a word: ELOT 743 and letter for letter (gk) against UNGEGN (nk), "
     "BGN/PCGN (ng)"),
    (r"^(?:'|a|'a)bd[aeiou']{0,2}l(?=[^aeiou'])", "abd", "Arabic ʿAbd al- glued: Abdelrahman, Abdulrahman, ʿbdʾlrḥmn"),
    (r"(?<=[a-z])mp|^mp|^mb", "b",
     "Greek μπ: ELOT 743 (b initially, mp inside) against transliteration (b) and UNGEGN (mb)"),
    (r"^nk", "g", "Greek initial γκ: UNGEGN/BGN (g) against letter-for-letter (nk); ELOT's gk folds by class"),
    (r"([ae])u", r"\1v", "Greek αυ/ευ: transliteration (au, eu) against ELOT 743 (av, ev)"),
    (r"^(?:'?[ae]|')l'?(?=[^aeiouyj'][a-z']{2}|j[^aeiou'])", "",
     "Arabic article glued to the name: al-/el-/ʾl- (also Al'bina = Albina)"),
    (r"^(?:'?[ae]|')l(?:a?')(?=[^aeiouy'][a-z'])", "",
     "Arabic article before ʿain or hamza (ArabTeX Al`mr, ISO 233 ʾlʿmr, ICU ạlạ̉nṣạry): the apostrophe "
     "marks it, so a short name follows"),
    (r"^l'(?=[^aeiouy'][a-z'])|^l(?=(?!j[aeiouy])[^aeiouyl'][a-z'])", "",
     "Arabic article with its alif dropped (unidecode lHkym, l'Hmd, l`mr, lqD; everyday l-Shami): an l "
     "before a consonant at a word's start (not Ll, nor Lj before a vowel: Ljubov, Ljiljana)"),
    (r"(?<=[aeiou])h$", "", "Arabic ta marbuta and final -ah (Fatimah/Fatima)"),
    (r"(?<=[lmnrvb])h(?=s?$)", "",
     "final η letter for letter (Frynh, Christofilh, -hs) and Arabic final ه after l (ʾllh)"),
    (r"(?<=[^aeiou'])w(?=[^aeiouy']|$)", "", "Arabic و as a long vowel after a consonant (ywsf, mḥmwd)"),
)
_FOLDS = tuple((re.compile(p), r) for p, r, _ in FOLDS)
#: The folds an initial is read after: all but the article ones (Elżbieta's initial is E, not z).
_INITIAL_FOLDS = tuple((re.compile(p), r) for p, r, about in FOLDS if "article" not in about)

#: A second reading of a Latin word, for spellings that write Greek letter for letter (Greeklish:
#: η → h, ω → w, υ → y, so Γεώργιου → Gewrgioy, Ευάγγελος → Eyaggelos, Δημήτρης → Dhmhtrhs) or write
#: γ as y before e and i (BGN/PCGN 1962: Yeoryios, Aryiriou). Applied to every word that contains one
#: of the patterns, whatever its origin, as an *alternative* (never instead of the word): ay/ey → av/ev,
#: y before e or i → g, oy → ou, w before a consonant or at the end → o, h after a consonant that
#: forms no digraph with it, after a vowel or at the start before a consonant, in a final -khs/-ths,
#: or right after a digraph with h (θη as thh: Athhnodwrs) → i.
LETTER_FOR_LETTER_GREEK: tuple[tuple[str, str], ...] = (
    (r"(?<=[ae])y(?![ei])", "v"),
    (r"y(?=[ei])", "g"),
    (r"(?<=o)y", "u"),
    (r"w(?=[^aeiouy]|$)", "o"),
    (r"(?<=[bflmnrvw])h|(?<=[aeiou])h(?=[^aeiouy])|(?<=[kt])h(?=s?$)|^h(?=[^aeiouy])|(?<=[tdkpcx]h)h", "i"),
)
_GREEKLISH = tuple((re.compile(p), r) for p, r in LETTER_FOR_LETTER_GREEK)


def greek_letter_reading(word: str) -> str:
    """The word read as letter-for-letter Greek (see LETTER_FOR_LETTER_GREEK); the word itself when
    no pattern applies."""
    for pattern, repl in _GREEKLISH:
        word = pattern.sub(repl, word)
    return word


#: Letter → class: schemes write one sound with any letter of a class.
CLASSES: dict[str, str] = {
    **dict.fromkeys("bpfvw", "b"),
    **dict.fromkeys("dt", "d"),
    **dict.fromkeys("cgkqsxzh", "k"),
    "l": "l", "m": "m", "n": "n", "r": "r",
    **dict.fromkeys("aeiouyj'", ""),
}
_DIGIT = re.compile(r"[0-9]")


def to_ascii(word: str) -> str:
    """A lower-case word of any script → lower-case ASCII letters and apostrophes, by ``MARKED_SEQUENCES``
    and ``DIACRITICS``."""
    out = []
    word = unicodedata.normalize("NFC", word.lower())
    for pattern, repl in _MARKED:
        word = pattern.sub(repl, word)
    for ch in word:
        if ch in DIACRITICS:
            out.append(DIACRITICS[ch])
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        out.append(base if base.isascii() else anyascii(base).lower())
    return "".join(c for c in "".join(out) if c.isalpha() and c.isascii() or c == "'")


def initial(word: str) -> str:
    """The initial of a Latin name word as n3 compares it: "a" for a vowel or glide, else the class
    of the first letter after the folds (Kh/H/X → k, Ts/C → k, Ph/F → b), "" for none."""
    w = word
    for pattern, repl in _INITIAL_FOLDS:
        w = pattern.sub(repl, w)
    for ch in w:
        if ch in "aeiouyj'":
            return "a"
        if CLASSES.get(ch):
            return CLASSES[ch]
    return ""


#: Vowel letter → the vowel it stands for in the fine skeleton (glides y/j are i).
FINE_VOWELS: dict[str, str] = {"a": "a", "e": "e", "i": "i", "o": "o", "u": "u", "y": "i", "j": "i"}


def skeleton(word: str, vowels: bool = False) -> str:
    """The n3 key of one Latin name word (lower-case ASCII, apostrophes kept): see the module text.

    ``vowels=True`` gives the *fine* skeleton for keys without a full date of birth: each run of
    vowels is kept as its last vowel (ya/ia/ja → a, iy/ii/ij/y → i), so names that differ only in
    their vowels (Bakowski/Bukowski) stay apart, at the cost of the schemes that disagree on a
    vowel (ё as e or yo).
    """
    w = word
    for pattern, repl in _FOLDS:
        w = pattern.sub(repl, w)
    # A vowel at the start is kept (as "a") in the fine skeleton only: scripts without written
    # short vowels lose it (ISO 233 ʾbrʾhym, unidecode "brhym" for إبراهيم).
    initial = "a" if vowels and w[:1] in "aeiouyj'" else ""
    out: list[str] = []
    run = ""
    for ch in w:
        if vowels and ch in FINE_VOWELS:
            run = FINE_VOWELS[ch]
            continue
        if run and out:
            out.append(run)
        run = ""
        cls = CLASSES.get(ch, "")
        if cls and (not out or out[-1] != cls):
            out.append(cls)
    if run and out:
        out.append(run)
    return initial + "".join(out)
