"""Arabic → Latin for n3: a consonant spelling in the BGN/PCGN 1956 (UNGEGN 1972) letter values.

Source: BGN/PCGN Romanization of Arabic (1956), letter values without diacritics (ḥ → h, ṭ → t,
ẓ → z, ʿ and ʾ dropped), as agencies write them in everyday use. Written Arabic carries no short
vowels, so the long vowels and the consonants are what every spelling shares: و and ي inside a
word are the long vowels u and i, ا inside a word the long a; a word-initial alif, hamza or ain is
written "a" (the word starts with a vowel); the article ال is a separate word "al"; ta marbuta
ة at the end is "a". Strict transliterations (ISO 233: ʿ ʾ ạ ẗ ḥ ẓ ...) and everyday spellings
(Mohammed, Abdel Rahman) meet this form through the Latin folds.
"""

from __future__ import annotations

import re

BGN_PCGN_1956_LETTERS: dict[str, str] = {
    "ا": "a", "أ": "a", "إ": "i", "آ": "a", "ب": "b", "ت": "t", "ث": "th", "ج": "j", "ح": "h", "خ": "kh",
    "د": "d", "ذ": "dh", "ر": "r", "ز": "z", "س": "s", "ش": "sh", "ص": "s", "ض": "d", "ط": "t", "ظ": "z",
    "ع": "", "غ": "gh", "ف": "f", "ق": "q", "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "h", "و": "w",
    "ي": "y", "ى": "a", "ة": "a", "ء": "", "ئ": "", "ؤ": "", "پ": "p", "چ": "ch", "گ": "g", "ڤ": "v",
}
BGN_PCGN_1956_RULES: tuple[tuple[str, str], ...] = (
    (r"(?:^|(?<=\s))ال", "al "),       # the article: a separate word
    (r"(?:^|(?<=\s))[اأإآع]", "a"),    # word-initial alif, hamza or ain: the word starts with a vowel
    (r"(?<=\S)ى", "a"),                # alif maqsura: long a
    (r"[\u064b-\u0652\u0670]", ""),    # short-vowel marks (harakat), shadda, sukun
)
_RULES = tuple((re.compile(p), r) for p, r in BGN_PCGN_1956_RULES)


def romanise(text: str) -> str:
    """``text`` with its Arabic letters written by the table above (other characters kept)."""
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return "".join(BGN_PCGN_1956_LETTERS.get(ch, ch) for ch in text)
