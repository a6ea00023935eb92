"""An independent match-quality benchmark: names romanised by third-party libraries, per published scheme.

matcher's own synthetic generator (:mod:`matcher.quality.synth`) writes Latin names with rules of its own.
This sibling writes them with libraries matcher does not contain and its normalisers never call,
one published scheme per copy, so a measurement never grades a normaliser against its own tables:

* Russian: ``iuliia`` (ICAO Doc 9303, BGN/PCGN, MVD 782 and 310, GOST 7034, GOST R 52535,
  GOST 7.79 = ISO 9:1995, ISO 9:1954, UNGEGN 1987, ALA-LC, BS 2979, scientific, Wikipedia,
  Telegram and Yandex usage), ``cyrtranslit`` ("ru"), ``transliterate`` ("ru");
* Ukrainian, Bulgarian, Serbian, Belarusian: ``cyrtranslit`` ("ua", "bg", "sr", "by") and
  ``transliterate`` ("uk", "bg", "sr");
* Greek: ``transliterate`` ("el"), ``cyrtranslit`` ("el", letter-for-letter Greeklish) and
  ``unidecode`` (classical transcription: η → e, υ → u, χ → kh);
* Arabic: ``lang-trans`` (ISO 233 with its diacritics, ArabTeX) and ``unidecode``, besides the
  everyday spellings listed with each name (:data:`matcher.quality.synth_names.ARABIC_GIVEN`);
* Latin-script names (German, Polish, Spanish, Turkish): as written, diacritics stripped by
  ``unidecode``, German umlauts as ae/oe/ue;
* with ``icu=True`` also ICU's CLDR transforms, run by ICU's own ``uconv`` tool (Debian package
  ``icu-devtools``; the figures in docs/match-quality.md used ICU 72.1): BGN/PCGN for Russian,
  Ukrainian, Belarusian, Bulgarian and Serbian, BGN/PCGN and UNGEGN for Greek (γ → y before e/i,
  δ → dh; η with a macron below), and ICU's Arabic-Latin. PyICU, the Python binding, has no wheel for
  this platform; the command-line tool needs no build.

Persons of Russian, Ukrainian, Bulgarian and Greek origin are drawn from ``Faker``'s locale name
pools (evenly, a few hundred to a thousand names each); Serbian and Belarusian ones from the short
lists below; the others from :mod:`matcher.quality.synth_names` with the surname frequencies of
:mod:`matcher.quality.synth_surnames`. The copies are then corrupted exactly as :mod:`matcher.quality.synth` does
(typos, swapped columns, partial dates, ...). ``link_schemes.csv`` names the locale and the
scheme of each copy of every true link, for figures per script and per scheme.

These libraries are development tools (the ``dev`` extra), imported only here.
"""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from matcher.config_templates import REQUESTER_TOML, RESPONDER_TOML
from matcher.errors import ConfigError
from matcher.files import open_private, private_dir
from matcher.quality.synth import (
    REQUESTER_COLUMNS,
    RESPONDER_COLUMNS,
    Corruption,
    Person,
    _pick,
    _render,
    split_population,
)
from matcher.quality.synth import (
    _new_person as _own_person,
)

Romaniser = Callable[[str], str]

#: Share of persons per locale in the independent benchmark.
LOCALE_WEIGHTS: dict[str, float] = {
    "ru": 0.16, "uk": 0.1, "bg": 0.06, "sr": 0.05, "be": 0.04, "el": 0.1, "ar": 0.13,
    "de": 0.12, "pl": 0.08, "es": 0.08, "tr": 0.08,
}
SCRIPT: dict[str, str] = {"ru": "Cyrillic", "uk": "Cyrillic", "bg": "Cyrillic", "sr": "Cyrillic", "be": "Cyrillic",
                          "el": "Greek", "ar": "Arabic", "de": "Latin", "pl": "Latin", "es": "Latin", "tr": "Latin"}
_NATIONALITY = {"bg": ("BGR",), "sr": ("SRB", "BIH", "MNE"), "be": ("BLR",)}
_FAKER_LOCALES = {"ru": "ru_RU", "uk": "uk_UA", "bg": "bg_BG", "el": "el_GR"}

# Serbian and Belarusian names (Faker has no pools for them), in their own Cyrillic.
_SMALL_POOLS: dict[str, tuple[str, str, str]] = {  # male given, female given, family
    "sr": (
        ("Ђорђе Милош Никола Лазар Душан Јован Стефан Марко Љубомир Драган Зоран Немања Вук Бранислав Ненад "
        "Александар Бојан Владимир Горан Дејан Жарко Иван Милан Мирослав Небојша Предраг Слободан Срђан Урош"),
        ("Јелена Милица Ивана Драгана Љиљана Јована Катарина Снежана Марија Теодора Невена Гордана "
        "Александра Бранка Весна Даница Зорица Јасмина Мирјана Наташа Оливера Радмила Соња Тамара"),
        (
            "Јовановић Петровић Николић Марковић Ђорђевић Стојановић Илић Станковић Павловић Милошевић Ђукић "
            "Лазић Шешељ Ћирић Његош Живковић Тодоровић Радуловић Вуковић Симић Бошковић Јанковић Љубичић "
            "Милић Митровић Радовановић Васић Обрадовић Стевановић Костић Бабић Гајић Матић Поповић Ристић "
            "Савић Томић Драгић Ђурић Јевтић Кнежевић Лукић Максимовић Мићић Нешић Пешић Ранковић Стошић "
            "Тасић Филиповић Цветковић Чолић Шаулић Вујић Зорић Ивковић Крстић Миленковић Рајковић Спасић"
        ),
    ),
    "be": (
        ("Аляксандр Сяргей Андрэй Уладзімір Мікалай Ігар Васіль Юрый Яўген Павел Зміцер Алесь Францішак "
        "Антон Віктар Генадзь Дзяніс Кірыл Максім Міхаіл Пятро Раман Станіслаў Тарас Ягор"),
        ("Алена Вольга Наталля Тацяна Ірына Святлана Юлія Ганна Людміла Марына Кацярына "
        "Алеся Вераніка Дар'я Жанна Ксенія Ларыса Насця Паліна Таццяна Яўгенія"),
        (
            "Шчарбакоў Лукашэвіч Багдановіч Ярашэвіч Каваленка Новік Шэўчык Мельнікаў Быкаў Пазняк Жук "
            "Кузьміч Сянкевіч Яўменаў Гаўрылюк Дзянісаў Цішкевіч Хмяльніцкі Чарняўскі Лявонаў "
            "Бабровіч Васілевіч Гарбачэўскі Дубовік Ждановіч Захарэвіч Іваноўскі Казлоўскі Латушка Макарэвіч "
            "Навуменка Паўловіч Радзевіч Сакалоўскі Ткачук Урбановіч Філіповіч Хадкевіч Цыбульскі Чэрнік "
            "Шаўчук Юрэвіч Ярмоленка Астапенка Бяляўскі Грыгаровіч Дземідовіч Ермаловіч Карповіч Лысенка"
        ),
    ),
}


def _iuliia(name: str) -> Romaniser:
    import iuliia  # type: ignore[import-untyped]

    schema = getattr(iuliia, name)
    return lambda text: schema.translate(text)


def _cyrtranslit(lang: str) -> Romaniser:
    import cyrtranslit  # type: ignore[import-untyped]

    return lambda text: cyrtranslit.to_latin(text, lang)


def _transliterate(lang: str) -> Romaniser:
    from transliterate import translit  # type: ignore[import-untyped]

    return lambda text: translit(text, lang, reversed=True)


def _unidecode(text: str) -> str:
    from unidecode import unidecode

    return unidecode(text)


def _lang_trans(name: str) -> Romaniser:
    from lang_trans import arabic  # type: ignore[import-untyped]

    module = getattr(arabic, name)
    return lambda text: module.transliterate(text)


#: ICU transforms (CLDR) per locale, used with ``icu=True``: scheme name → transform ID.
ICU_TRANSFORMS: dict[str, dict[str, str]] = {
    "ru": {"icu:russian_bgn": "Russian-Latin/BGN"},
    "uk": {"icu:ukrainian_bgn": "Ukrainian-Latin/BGN"},
    "be": {"icu:belarusian_bgn": "Belarusian-Latin/BGN"},
    "bg": {"icu:bulgarian_bgn": "Bulgarian-Latin/BGN"},
    "sr": {"icu:serbian_bgn": "Serbian-Latin/BGN"},
    "el": {"icu:greek_bgn": "Greek-Latin/BGN", "icu:greek_ungegn": "Greek-Latin/UNGEGN"},
    "ar": {"icu:arabic": "Arabic-Latin"},
}


@cache
def _uconv(transform: str, text: str) -> str:
    """``text`` through ICU's transform ``transform`` (the ``uconv`` tool; one process per distinct name)."""
    done = subprocess.run(["uconv", "-f", "utf-8", "-t", "utf-8", "-x", transform], input=text.encode("utf-8"),
                          capture_output=True, check=True, timeout=30)
    return done.stdout.decode("utf-8").rstrip("\n")


def _icu(transform: str) -> Romaniser:
    return lambda text: _uconv(transform, text)


def _umlaut_e(text: str) -> str:
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("Ä", "Ae"), ("Ö", "Oe"), ("Ü", "Ue")):
        text = text.replace(a, b)
    return text


_RUSSIAN_IULIIA = ("ICAO_DOC_9303", "BGN_PCGN", "MVD_782", "MVD_310", "GOST_7034", "GOST_52535", "GOST_779",
                   "ISO_9_1954", "UNGEGN_1987", "ALA_LC", "BS_2979", "SCIENTIFIC", "WIKIPEDIA", "TELEGRAM",
                   "YANDEX_MAPS")

#: Per locale, the schemes (name → romaniser) a copy in Latin letters is written with, chosen evenly.
#: "everyday" for Arabic is one of the name's listed everyday spellings.
def check_installed(icu: bool = False) -> None:
    """Raise ConfigError naming the fix when the third-party romanisers are not installed."""
    import importlib.util

    if icu and shutil.which("uconv") is None:
        raise ConfigError("ICU's uconv tool is not installed (needed for the ICU transforms): "
                          "apt-get install icu-devtools, or leave the ICU schemes out")
    missing = [m for m in ("iuliia", "cyrtranslit", "transliterate", "lang_trans", "unidecode", "faker")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"the third-party romanisers are not installed ({', '.join(missing)}): install the dev extra, "
            "pip install -e '.[dev]' (or make test once)"
        )


@cache
def schemes(locale: str, icu: bool = False) -> dict[str, Romaniser]:
    """The third-party romanisers of ``locale`` (imported on first use: dev extra only); with ``icu``
    also ICU's transforms for it (:data:`ICU_TRANSFORMS`)."""
    out = _library_schemes(locale)
    if icu:
        out = out | {name: _icu(t) for name, t in ICU_TRANSFORMS.get(locale, {}).items()}
    return out


def _library_schemes(locale: str) -> dict[str, Romaniser]:
    if locale == "ru":
        out = {f"iuliia:{n.lower()}": _iuliia(n) for n in _RUSSIAN_IULIIA}
        return out | {"cyrtranslit:ru": _cyrtranslit("ru"), "transliterate:ru": _transliterate("ru")}
    if locale == "uk":
        return {"cyrtranslit:ua": _cyrtranslit("ua"), "transliterate:uk": _transliterate("uk")}
    if locale in ("bg", "sr"):
        return {f"cyrtranslit:{locale}": _cyrtranslit(locale), f"transliterate:{locale}": _transliterate(locale)}
    if locale == "be":
        return {"cyrtranslit:by": _cyrtranslit("by")}
    if locale == "el":
        return {"transliterate:el": _transliterate("el"), "cyrtranslit:el": _cyrtranslit("el"),
                "unidecode": _unidecode}
    if locale == "ar":
        return {"lang_trans:iso233": _lang_trans("iso233"), "lang_trans:arabtex": _lang_trans("arabtex"),
                "unidecode": _unidecode}
    if locale == "de":
        return {"as_written": str, "unidecode": _unidecode, "umlaut_e": _umlaut_e}
    return {"as_written": str, "unidecode": _unidecode}


@cache
def _faker(locale: str, seed: int):
    from faker import Faker

    f = Faker(_FAKER_LOCALES[locale])
    f.seed_instance(seed)
    return f


def _faker_names(f, sex: str) -> tuple[str, str]:
    male = sex == "M"
    given = f.first_name_male() if male else f.first_name_female()
    try:
        family = f.last_name_male() if male else f.last_name_female()
    except AttributeError:
        family = f.last_name()
    return given, family


def new_person(rng: random.Random, today: date, seed: int, closed_pools: bool = False) -> Person:
    """One person of a locale drawn by :data:`LOCALE_WEIGHTS` (names in their own script)."""
    locale = _pick(rng, LOCALE_WEIGHTS)
    if locale in ("de", "pl", "es", "tr", "ar"):
        while True:  # the own generator's pools and frequencies, for these locales only
            p = _own_person(rng, today, closed_pools)
            if p.locale == locale:
                return p
    sex = rng.choice("MF")
    if locale in _SMALL_POOLS:
        male, female, family_pool = _SMALL_POOLS[locale]
        given = rng.choice((male if sex == "M" else female).split())
        family = rng.choice(family_pool.split())
        if locale == "be" and sex == "F":
            family = family[:-1] + "ая" if family.endswith("і") else family
        nationality = rng.choice(_NATIONALITY[locale])
    else:
        f = _faker(locale, seed)
        f.seed_instance(rng.randrange(2**32))
        given, family = _faker_names(f, sex)
        from matcher.quality.synth_names import NATIONALITY

        nationality = rng.choice(NATIONALITY.get(locale) or _NATIONALITY[locale])
    dob = today - timedelta(days=rng.randrange(18 * 365, 75 * 365))
    document = None
    if rng.random() < 0.5:
        document = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2)) + f"{rng.randrange(10**7):07d}"
    return Person(locale, sex, given, family, dob, nationality, document, {})


def _speller(p: Person, rng: random.Random, native_script: float, icu: bool = False) -> tuple[str, Romaniser]:
    """The scheme of one copy of ``p`` and the function that writes its names."""
    if SCRIPT[p.locale] != "Latin" and rng.random() < native_script:
        return "native", str
    if p.locale == "ar":
        table = schemes("ar", icu)
        names = ["everyday", *table]
        scheme = rng.choice(names)
        if scheme == "everyday":
            return scheme, lambda text: " ".join(rng.choice(p.latin[w]) for w in text.split())
        return scheme, table[scheme]
    table = schemes(p.locale, icu)
    scheme = rng.choice(sorted(table))
    return scheme, table[scheme]


@dataclass
class IndependentResult:
    requester: Path
    responder: Path
    links: Path
    link_schemes: Path
    requester_config: Path
    responder_config: Path
    shared: int


def generate_independent(size: int, overlap: float, seed: int, out: Path, corruption: Corruption | None = None,
                         responder_size: int | None = None, icu: bool = False) -> IndependentResult:
    """Like :func:`matcher.quality.synth.generate`, with names romanised by third-party libraries.

    Writes ``requester.csv``, ``responder.csv``, ``links.csv``, ``link_schemes.csv``
    (requester_id, responder_id, locale, script, requester_scheme, responder_scheme) and both
    configs, and ``record_schemes.csv`` (record_id, locale, script, scheme of every record). The
    requester keeps non-Latin names in their own script 60 % of the time, the
    responder 5 %; otherwise each copy picks one scheme of its locale evenly. Deterministic in
    ``seed`` for pinned library versions. ``icu``: ICU's transforms are schemes too (:data:`ICU_TRANSFORMS`;
    needs ``uconv``), which changes every copy's draw, so its files differ from those without.
    """
    if not 0 <= overlap <= 1:
        raise ValueError("overlap must be between 0 and 1")
    check_installed(icu)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="iuliia")
    c = corruption or Corruption()
    rng = random.Random(seed)
    today = date(2025, 1, 1)
    req_people, resp_people, shared = split_population(
        size, overlap, responder_size, lambda: new_person(rng, today, seed)
    )

    def row(p: Person, native: float, order: str) -> tuple[str, list[str]]:
        scheme, spell = _speller(p, rng, native, icu)
        return scheme, _render(p, rng, c, native_script=native, date_order=order, spell=spell)

    req_rows = [(i, *row(p, 0.6, "MDY")) for i, p in enumerate(req_people)]
    resp_rows = []
    for i, p in enumerate(resp_people):
        resp_rows.append((i, *row(p, 0.05, "DMY")))
        if rng.random() < c.duplicate:
            resp_rows.append((i, *row(p, 0.05, "DMY")))
    rng.shuffle(req_rows)
    rng.shuffle(resp_rows)
    out = Path(out)
    private_dir(out, fix_existing=False)
    req_ids: dict[int, tuple[str, str]] = {}
    with open_private(out / "requester.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(REQUESTER_COLUMNS)
        for n, (i, scheme, values) in enumerate(req_rows):
            req_ids[i] = (f"R-{n + 1:06d}", scheme)
            w.writerow([req_ids[i][0], *values])
    links = []
    with open_private(out / "responder.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(RESPONDER_COLUMNS)
        for n, (i, scheme, values) in enumerate(resp_rows):
            rid = f"A-{n + 1:06d}"
            w.writerow([rid, *values, f"CASE-{n + 1:06d}"])
            if i < shared:
                locale = resp_people[i].locale
                links.append((req_ids[i][0], rid, locale, SCRIPT[locale], req_ids[i][1], scheme))
    links.sort()
    with open_private(out / "record_schemes.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("record_id", "locale", "script", "scheme"))
        for n, (i, scheme, _values) in enumerate(req_rows):
            w.writerow((f"R-{n + 1:06d}", req_people[i].locale, SCRIPT[req_people[i].locale], scheme))
        for n, (i, scheme, _values) in enumerate(resp_rows):
            w.writerow((f"A-{n + 1:06d}", resp_people[i].locale, SCRIPT[resp_people[i].locale], scheme))
    with open_private(out / "links.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("requester_id", "responder_id"))
        w.writerows(link[:2] for link in links)
    with open_private(out / "link_schemes.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("requester_id", "responder_id", "locale", "script", "requester_scheme", "responder_scheme"))
        w.writerows(links)
    (out / "requester.toml").write_text(REQUESTER_TOML, encoding="utf-8")
    (out / "responder.toml").write_text(
        RESPONDER_TOML.replace('watchlist = "agency_a_watchlist.csv"', 'watchlist = "responder.csv"'), encoding="utf-8"
    )
    return IndependentResult(out / "requester.csv", out / "responder.csv", out / "links.csv",
                             out / "link_schemes.csv", out / "requester.toml", out / "responder.toml", shared)
