"""How often each family name occurs in the synthetic population (matcher.quality.synth).

Real surname frequencies have a short head of common names and a very long tail of
rare ones; how often two different persons share a name decides the precision of
every key that does not carry a full date of birth. The hand-written lists in
``matcher.quality.synth_names`` are the head, in rank order. Per locale:

* the head covers ``HEAD_SHARE`` of the persons, name k with weight ∝ k^-0.5, so the
  most common name's share is about the published one (Nowak ≈ 0.5 % of Poles,
  Müller ≈ 0.6 % of Germans, Smirnov ≈ 1.2 % of Russians, García ≈ 3 % of Spaniards,
  Yılmaz ≈ 3 % of Turks; rounded, from public surname statistics);
* the rest is spread evenly over a generated tail of rare names, built in the
  locale's own script from syllables and the locale's surname suffixes
  (-owski/-czyk, -ов/-ин, -енко/-чук, -όπουλος/-ίδης, -mann/-huber, -oğlu/-kaya),
  so they go through the same transliteration and corruption as the head.

Spanish takes its tail from a second list of real names (persons carry two family
names, which already makes a pair rare). Arabic family names are the hand list plus
patronymics (the father's given name, or Abu + a given name) with their spellings.

``closed=True`` draws only from the head lists, evenly (as the generator's first
version did), so that different persons share names far more often than in any
real population — a stress test of precision, not an estimate of it.
"""

from __future__ import annotations

import bisect
import itertools
import random
from functools import cache

from matcher.quality.synth_names import FAMILY

HEAD_EXPONENT = 0.5
#: Share of each locale's persons whose family name is one of the hand-listed head names.
HEAD_SHARE: dict[str, float] = {"de": 0.12, "pl": 0.08, "ru": 0.30, "uk": 0.06, "el": 0.05, "es": 0.45, "tr": 0.40}

# (onsets, vowels, codas, suffixes) in each locale's script; a tail name is onset+vowel+coda+suffix.
_SYLLABLES: dict[str, tuple[tuple[str, ...], ...]] = {
    "de": (("B", "Br", "D", "Dr", "F", "Fr", "G", "Gr", "H", "K", "Kr", "L", "M", "N", "P", "R", "S", "Sch", "Schw",
            "St", "T", "W", "Z"),
           ("a", "e", "i", "o", "u", "ä", "ö", "ü", "ei", "au"),
           ("ck", "ld", "ll", "mm", "n", "nd", "ng", "nk", "r", "rt", "s", "st", "tt", "tz", "lz"),
           ("mann", "er", "hofer", "berger", "meier", "bach", "feld", "huber", "ner", "inger", "hardt", "wald",
            "stein", "hausen", "reiter", "bauer", "thaler", "ke", "el", "ler")),
    "pl": (("B", "Bi", "Ch", "Cz", "D", "G", "J", "K", "Kr", "L", "Ł", "M", "N", "P", "Pr", "R", "S", "Sz", "St", "W",
            "Wr", "Z", "Ż"),
           ("a", "e", "o", "u", "y", "ą", "ę", "ó", "i"),
           ("b", "ch", "cz", "d", "k", "l", "ł", "n", "r", "s", "sz", "t", "w", "ż"),
           ("owski", "ewski", "iński", "czyk", "ak", "iak", "ek", "ewicz", "owicz", "ik")),
    "ru": (("Б", "В", "Г", "Д", "Ж", "З", "К", "Л", "М", "Н", "П", "Р", "С", "Т", "Х", "Ч", "Ш", "Гр", "Кр", "Бр", "Пр",
            "Ст"),
           ("а", "о", "е", "и", "у"),
           ("б", "в", "д", "з", "к", "л", "м", "н", "р", "с", "т", "ш", "рк", "лк", "нц"),
           ("ов", "ин", "ников", "цов")),
    "uk": (("Б", "В", "Г", "Д", "З", "К", "Л", "М", "Н", "П", "Р", "С", "Т", "Х", "Ш", "Гр", "Кр", "Бр"),
           ("а", "о", "е", "и", "у", "і"),
           ("б", "в", "д", "з", "к", "л", "м", "н", "р", "с", "т", "ш"),
           ("енко", "ук", "чук", "юк", "ишин", "ак", "ець")),
    "el": (("Β", "Γ", "Δ", "Ζ", "Θ", "Κ", "Λ", "Μ", "Ν", "Ξ", "Π", "Ρ", "Σ", "Τ", "Φ", "Χ", "Ψ", "Στ", "Τρ", "Κρ",
            "Γρ", "Μπ", "Ντ", "Τσ"),
           ("α", "ε", "ι", "ο", "ου", "η"),
           ("κ", "λ", "μ", "ν", "ρ", "σ", "τ", "ντ", "ρκ", "λτ"),
           ("όπουλος", "ίδης", "άκης", "άτος", "ίου", "άς", "έας", "ούλης")),
    "tr": (("B", "C", "Ç", "D", "G", "K", "M", "N", "S", "Ş", "T", "Y", "Ak", "Kara", "Öz", "Gül", "Er", "Gök", "Ay",
            "Al", "Uz"),
           ("a", "e", "ı", "i", "o", "ö", "u", "ü"),
           ("k", "l", "m", "n", "r", "s", "t", "z", "y", "ş", "ç"),
           ("oğlu", "er", "tekin", "han", "kaya", "taş", "demir", "türk", "soy", "can", "su", "yiğit", "tepe",
            "dağ")),
}

_SPANISH_TAIL: list[str] = [
    "Aguilar", "Vega", "Fuentes", "Carrasco", "Caballero", "Nieto", "Pascual", "Herrero", "Montero", "Lorenzo",
    "Hidalgo", "Giménez", "Ibáñez", "Ferrer", "Durán", "Santiago", "Benítez", "Mora", "Vicente", "Vargas", "Arias",
    "Carmona", "Crespo", "Román", "Pastor", "Soto", "Sáez", "Velasco", "Moya", "Soler", "Parra", "Esteban", "Bravo",
    "Gallardo", "Rojas", "Pardo", "Merino", "Franco", "Espinosa", "Izquierdo", "Lara", "Rivas", "Silva", "Rivera",
    "Casado", "Camacho", "Arroyo", "Redondo", "Vera", "Otero", "Cabrera", "Mendoza", "Luque", "Montes", "Campos",
    "Cuesta", "Ríos", "Sierra", "Salazar", "Robles", "Aparicio", "Peña", "Reyes", "Bermúdez", "Benito", "Valero",
    "Nuñez", "Miranda", "Quintana", "Orozco", "Toledo", "Beltrán", "Rosales", "Contreras", "Villalobos", "Figueroa",
    "Pacheco", "Ochoa", "Cuenca", "Zamora", "Maldonado", "Escobar", "Barrios", "Salinas", "Acosta", "Medrano", "Solís",
    "Villanueva", "Galindo", "Palacios", "Olmedo", "Guzmán", "Zapata", "Cordero", "Valverde", "Pineda", "Sandoval",
    "Bustos", "Trujillo", "Marrero", "Collado", "Quiroga", "Mesa", "Santana", "Baena", "Rosado", "Serna", "Nogales",
    "Cobo", "Tapia", "Heredia", "Garrido", "Lucas", "Varela", "Rey", "Roldán", "Cárdenas", "Ayala", "Vallejo",
    "Manzano", "Soria", "Mateo", "Morán", "Bautista", "Vidal", "Andrade", "Rincón", "Alarcón", "Aranda", "Ávila",
    "Barrera", "Castillo", "Morales",
] + [
    "de la Fuente", "de la Cruz", "del Río", "de León", "de la Torre", "del Valle", "de la Rosa", "de Castro",
    "de la Vega",
]


@cache
def tail(locale: str) -> tuple[str, ...]:
    """The generated rare family names of a locale (sorted, none equal to a head name)."""
    if locale == "es":
        names = set(_SPANISH_TAIL)
    elif locale in _SYLLABLES:
        onsets, vowels, codas, suffixes = _SYLLABLES[locale]
        names = {"".join(parts) for parts in itertools.product(onsets, vowels, codas, suffixes)}
    else:
        return ()
    return tuple(sorted(names - set(FAMILY.get(locale, "").split())))


@cache
def _head_cdf(locale: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    head = tuple(FAMILY[locale].split())
    weights = [k ** -HEAD_EXPONENT for k in range(1, len(head) + 1)]
    total = sum(weights)
    return head, tuple(itertools.accumulate(w / total for w in weights))


def draw_family(rng: random.Random, locale: str, *, closed: bool = False) -> str:
    """One family name of ``locale`` (not Arabic), drawn with the frequencies described above."""
    head, cdf = _head_cdf(locale)
    names = tail(locale)
    if closed or not names:
        return rng.choice(head)
    if rng.random() < HEAD_SHARE[locale]:
        return head[min(bisect.bisect_left(cdf, rng.random()), len(head) - 1)]
    return names[rng.randrange(len(names))]


def same_name_probability(locale: str, *, closed: bool = False) -> float:
    """Σ f² over family names: the chance two persons of ``locale`` share one (no corruption)."""
    head, cdf = _head_cdf(locale)
    names = tail(locale)
    if closed or not names:
        return 1 / len(head)
    probs = [HEAD_SHARE[locale] * (c - p) for p, c in zip((0.0, *cdf), cdf, strict=False)]
    return sum(p * p for p in probs) + (1 - HEAD_SHARE[locale]) ** 2 / len(names)
