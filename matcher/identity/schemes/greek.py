"""Greek → Latin: ELOT 743:1982 (= ISO 843:1997 transcription), the scheme of Greek passports.

Source: ELOT 743, 2nd ed. (2001), table 1 and its rules: ου → ou; αυ/ευ/ηυ → av/ev/iv, and
af/ef/if before θ κ ξ π σ τ φ χ ψ or at the end; μπ → b at a word's start and mp inside; ντ → d at
a word's start, nt inside; γγ → ng; γκ → gk (inside); γχ → nch; γξ → nx. The spellings of other
schemes and of everyday use (BGN/PCGN and UNGEGN kh/dh/y, ISO 843 transliteration y for υ,
letter-for-letter Greeklish) are met by the Latin folds (:mod:`matcher.identity.schemes.latin`).
"""

from __future__ import annotations

import re
import unicodedata

ELOT_743_LETTERS: dict[str, str] = {
    "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th", "ι": "i", "κ": "k",
    "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p", "ρ": "r", "σ": "s", "ς": "s", "τ": "t",
    "υ": "y", "φ": "f", "χ": "ch", "ψ": "ps", "ω": "o",
}
_VOICELESS = "θκξπστφχψ"
ELOT_743_DIGRAPHS: tuple[tuple[str, str], ...] = (
    (r"ου", "ou"),
    (rf"([αεη])υ(?=[{_VOICELESS}]|$)", r"\1f"),
    (r"([αεη])υ", r"\1v"),
    (r"^μπ", "b"), (r"μπ", "mp"),
    (r"^ντ", "d"), (r"ντ", "nt"),
    (r"γγ", "ng"), (r"γκ", "gk"), (r"γχ", "nch"), (r"γξ", "nx"),
)
_DIGRAPHS = tuple((re.compile(p), r) for p, r in ELOT_743_DIGRAPHS)


def romanise(text: str) -> str:
    """Lower-case ``text`` (accents dropped) with Greek words written by ELOT 743, others kept."""
    bare = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if not unicodedata.combining(c))
    words = []
    for word in bare.split(" "):
        for pattern, repl in _DIGRAPHS:
            word = pattern.sub(repl, word)
        words.append("".join(ELOT_743_LETTERS.get(ch, ch) for ch in word))
    return " ".join(words)
