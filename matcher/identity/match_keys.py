"""Named match keys and the tokens a record yields for them (DESIGN §2.3).

A match key is a named list of normalised fields. A record yields one token per
key whose fields are all present::

    token = "matcher/v1/" + norm_version + "/" + key_name + "/" + values joined by 0x1f

Putting the normalisation version and key name in every token keeps tokens of
different keys and versions apart, so a date-of-birth value can never collide
with a document number. Both agencies must hold byte-identical key specs; the
fingerprint (SHA-256 of the canonical JSON form) is what they compare before
any data moves.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import jellyfish

from matcher.errors import ConfigError

TOKEN_PREFIX = "matcher/v1/"
FIELD_SEPARATOR = "\x1f"

#: Fields a normalised record offers to match keys (see matcher.identity.normalise_n1).
KEY_FIELDS: frozenset[str] = frozenset(
    {
        "given_names",
        "family_name",
        "name_tokens",
        "given_initial",
        "date_of_birth",
        "date_of_birth_or_swapped",
        "year_of_birth",
        "sex",
        "nationality",
        "document_number",
        "document_country",
        "place_of_birth",
    }
)
#: Fields of normalisation n3: all of the above, plus its column-proof name skeletons
#: (matcher.identity.normalise_n3).
N3_KEY_FIELDS: frozenset[str] = KEY_FIELDS | frozenset(
    {"name_keys", "name_pairs", "name_initials", "name_initials_nat", "name_keys_fine"}
)

_KEY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_TRANSFORMED = re.compile(r"^([a-z_]+)\((.+)\)$")

#: Normalisation versions a key spec may name (matcher.identity.normalise_n1, _n2, _n3).
NORM_VERSIONS: frozenset[str] = frozenset({"n1", "n2", "n3"})

#: Most tokens one key yields for one record: the first alternatives (primary first) win.
MAX_ALTERNATIVES_PER_KEY = 4
#: Most tokens one record yields under a normalisation version (n1 and n2: only the per-key bound).
MAX_TOKENS_PER_RECORD: dict[str, int] = {"n3": 8}

# Spelling differences between romanisations that metaphone does not fold by itself:
# German/Polish/English renderings of Cyrillic ш ж ч х ц (sch/sz/sh, zh, tsch/cz/ch, kh/ch/h,
# ts/z), w/v, and Ukrainian г (h) against Russian г (g): h is written g.
_PHONETIC_FOLDS = (
    ("tsch", "ch"), ("szcz", "sh"), ("shch", "sh"), ("sch", "sh"), ("sz", "sh"), ("cz", "ch"), ("zh", "sh"),
    ("kh", "h"), ("ch", "h"), ("ck", "k"), ("ts", "z"), ("tz", "z"), ("w", "v"), ("h", "g"),
)
_DOUBLED = re.compile(r"(.)\1+")
_ARTICLE = re.compile(r"^[ae]l(?=.{4})")


def _phonetic_fold(word: str) -> str:
    """Fold romanisation variants before a phonetic code: the spellings above, a glued Arabic
    article ("alshami" = "al shami"), non-initial j/y as i, doubled letters, initial vowels as a."""
    word = _ARTICLE.sub("", word)
    for old, new in _PHONETIC_FOLDS:
        word = word.replace(old, new)
    word = _DOUBLED.sub(r"\1", word)
    word = word[:1] + word[1:].replace("j", "i").replace("y", "i")
    return ("a" + word[1:]) if word[:1] in ("a", "e", "i", "o", "u") else word


def _metaphone(word: str) -> str:
    return _DOUBLED.sub(r"\1", jellyfish.metaphone(_phonetic_fold(word))) or word


def _initial(value: str) -> str:
    first = value[:1]
    return "a" if first in "aeiouyj" else first


#: Transforms usable in key fields as ``transform(field)``. Word-wise ones apply to each word
#: (the words of ``name_tokens`` are sorted again afterwards). Their output is part of the
#: token, so changing one is a change of normalisation version.
WORD_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "metaphone": _metaphone,  # romanisation folds (w→v, sz→sh, ...) then jellyfish.metaphone
    "nysiis": lambda w: jellyfish.nysiis(_phonetic_fold(w)) or w,
    "soundex": lambda w: jellyfish.soundex(w),
    "folded_soundex": lambda w: jellyfish.soundex(_phonetic_fold(w)) or w,  # the folds above, then Soundex
}
VALUE_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "initial": _initial,  # first letter; vowels, y and j are one class (Omar/Umar/عمر, Yuri/Juri/Iurii)
    "first": lambda v: v.split()[0],  # first word, e.g. the first given name
    "year": lambda v: v[:4],  # year of an ISO date
    "year_month": lambda v: v[:7],  # year and month of an ISO date (a day typed wrong still meets)
}
TRANSFORMS: frozenset[str] = frozenset(WORD_TRANSFORMS) | frozenset(VALUE_TRANSFORMS)

#: Word transforms are pure and names repeat across a watchlist (and across the keys of
#: one record), so each is memoised: the phonetic folds were the largest cost of token
#: building. Bounded; the words stay in this process's memory like the records themselves.
_WORD_CACHE_SIZE = 1 << 16
_CACHED_WORD_TRANSFORMS: dict[str, Callable[[str], str]] = {
    name: functools.lru_cache(maxsize=_WORD_CACHE_SIZE)(fn) for name, fn in WORD_TRANSFORMS.items()
}


#: a sequence's first item: ``map(_FIRST, seqs)`` is ``[s[0] for s in seqs]`` without a Python frame per call
_FIRST = operator.itemgetter(0)


@functools.lru_cache(maxsize=1024)
def parse_field(spec: str) -> tuple[tuple[str, ...], str]:
    """``"metaphone(first(given_names))"`` → ``(("first", "metaphone"), "given_names")``: transforms
    innermost first, then the field; ``"sex"`` → ``((), "sex")``."""
    transforms: list[str] = []
    m = _TRANSFORMED.match(spec)
    while m:
        transforms.insert(0, m.group(1))
        spec = m.group(2)
        m = _TRANSFORMED.match(spec)
    return tuple(transforms), spec


def _apply(transform: str, field: str, value: str) -> str:
    if transform in VALUE_TRANSFORMS:
        return VALUE_TRANSFORMS[transform](value)
    words = [_CACHED_WORD_TRANSFORMS[transform](w) for w in value.split()]
    return " ".join(sorted(words) if field == "name_tokens" else words)


def _transformed(transforms: tuple[str, ...], field: str, value: str) -> str:
    for t in transforms:
        value = _apply(t, field, value)
    return value


def _word_step(word: Callable[[str], str], sort: bool) -> Callable[[str], str]:
    """``_apply`` of one word transform: ``word`` on each word of a value, the words sorted again if ``sort``."""
    if sort:
        return lambda value: " ".join(sorted(map(word, value.split())))
    return lambda value: " ".join(map(word, value.split()))


def _converter(transforms: tuple[str, ...], field: str) -> Callable[[str], str] | None:
    """One function equal to ``_transformed(transforms, field, ·)``, its transforms' functions looked
    up once (a key's fields are converted on every row); None without transforms."""
    steps = [
        VALUE_TRANSFORMS[t] if t in VALUE_TRANSFORMS else _word_step(_CACHED_WORD_TRANSFORMS[t], field == "name_tokens")
        for t in transforms
    ]
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]
    return functools.reduce(lambda inner, outer: lambda value: outer(inner(value)), steps)


def _alternatives(convert: Callable[[str], str] | None, raw: str | Sequence[str]) -> tuple[str, ...]:
    """The distinct non-empty values of a key field, in order: ``convert`` (``_converter(transforms,
    field)``) applied to each non-empty value of the record's ``raw`` for ``field``.

    That is ``tuple(v for v in dict.fromkeys(_transformed(transforms, field, v) for v in values if v)
    if v)``, written with ``map`` and ``filter(None, ·)`` (which keeps the non-empty values) in place
    of the generators, and without the dict for a single value."""
    values = (raw,) if isinstance(raw, str) else raw
    if convert is None:
        return tuple(filter(None, dict.fromkeys(values)))
    if len(values) == 1:  # one value (the common case): no repeats to drop
        value = values[0]
        converted = convert(value) if value else ""
        return (converted,) if converted else ()
    return tuple(filter(None, dict.fromkeys(map(convert, filter(None, values)))))


@dataclass(frozen=True)
class MatchKey:
    """One named key: a hit on it means all of ``fields`` agree after normalisation."""

    name: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class KeySpec:
    """The ordered set of match keys (first = strongest) under one normalisation version."""

    norm_version: str
    keys: tuple[MatchKey, ...]

    def __post_init__(self) -> None:
        if self.norm_version not in NORM_VERSIONS:
            raise ConfigError(
                f"norm_version {self.norm_version!r} is not known: use one of {', '.join(sorted(NORM_VERSIONS))}"
            )
        if not self.keys:
            raise ConfigError("no match keys configured: add at least one under [match_keys]")
        seen: set[str] = set()
        for key in self.keys:
            if not _KEY_NAME.match(key.name):
                raise ConfigError(
                    f"match key name {key.name!r} is not allowed: use lower-case letters, "
                    "digits and '_' (at most 32), starting with a letter"
                )
            if key.name in seen:
                raise ConfigError(f"match key {key.name!r} is defined twice")
            seen.add(key.name)
            if not key.fields:
                raise ConfigError(f"match key {key.name!r} has no fields")
            known = N3_KEY_FIELDS if self.norm_version == "n3" else KEY_FIELDS
            unknown = [f for f in key.fields if parse_field(f)[1] not in known]
            if unknown:
                raise ConfigError(
                    f"match key {key.name!r} uses unknown field(s) {', '.join(unknown)}; "
                    f"known fields under {self.norm_version}: {', '.join(sorted(known))}"
                )
            bad = [f for f in key.fields if not set(parse_field(f)[0]) <= TRANSFORMS]
            if bad:
                raise ConfigError(
                    f"match key {key.name!r} uses unknown transform(s) in {', '.join(bad)}; "
                    f"known transforms: {', '.join(sorted(TRANSFORMS))}"
                )
            if len(set(key.fields)) != len(key.fields):
                raise ConfigError(f"match key {key.name!r} lists a field twice")

    @classmethod
    def from_mapping(cls, norm_version: str, keys: Mapping[str, Sequence[str]]) -> KeySpec:
        """Build a spec from the config's ``[match_keys]`` table (order = strength)."""
        return cls(norm_version, tuple(MatchKey(n, tuple(f)) for n, f in keys.items()))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)

    def canonical_json(self) -> str:
        """The byte-exact form both agencies hash; key order is part of it (strength)."""
        spec: dict[str, object] = {
            "token_prefix": TOKEN_PREFIX,
            "norm_version": self.norm_version,
            "keys": [[k.name, list(k.fields)] for k in self.keys],
        }
        if self.norm_version != "n1":  # n1 has one value per field: unchanged v1 fingerprints
            spec["max_alternatives"] = MAX_ALTERNATIVES_PER_KEY
        if self.norm_version in MAX_TOKENS_PER_RECORD:  # n3 and later: one record's tokens are capped too
            spec["max_tokens_per_record"] = MAX_TOKENS_PER_RECORD[self.norm_version]
        return json.dumps(
            spec,
            separators=(",", ":"),
            ensure_ascii=True,
        )

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON: equal fingerprints = identical tokens."""
        return hashlib.sha256(self.canonical_json().encode("ascii")).hexdigest()

    @functools.cached_property
    def _plan(self) -> tuple[tuple[str, str, str, tuple[tuple[Callable[[str], str] | None, str], ...]], ...]:
        """Per key: its name, its token head, its first field's name (a key whose first field is
        absent is passed over at once) and each field as (its transforms as one function or None,
        field), parsed once."""
        return tuple(
            (k.name, TOKEN_PREFIX + self.norm_version + "/" + k.name + "/", parse_field(k.fields[0])[1],
             tuple((_converter(*parse_field(f)), parse_field(f)[1]) for f in k.fields))
            for k in self.keys
        )

    def tokens(self, record: Mapping[str, str | Sequence[str]]) -> tuple[tuple[str, bytes], ...]:
        """The ``(key name, token)`` pairs of one normalised record, in key order.

        ``record`` maps each field to its value (normalisation n1) or to its
        alternatives, primary first (n2, n3). A key yields one token per
        combination of its fields' alternatives (after transforms, without
        duplicates), at most MAX_ALTERNATIVES_PER_KEY, primary combinations
        first; a key with a missing field yields none. Under n3 a record yields
        at most MAX_TOKENS_PER_RECORD["n3"]: beyond it, each key's later
        alternatives go first (every key keeps its primary token).
        """
        out: list[tuple[str, bytes]] = []
        per_key: list[list[tuple[str, bytes]]] = []  # the same tokens by key, for the cap
        get = record.get
        cap = MAX_TOKENS_PER_RECORD.get(self.norm_version)
        for name, head, first, fields in self._plan:
            if not get(first):  # most records lack the fields of some keys: no work for those
                continue
            per_field: list[Sequence[str]] = []
            single = True  # every field has one value so far
            for convert, field in fields:
                raw = get(field)
                if not raw:  # None, "" or (): the key cannot be computed (checked before any transform runs)
                    break
                if convert is not None or (len(raw) > 1 and not isinstance(raw, str)):
                    alts: Sequence[str] = _alternatives(convert, raw)
                    if not alts:
                        break
                    if len(alts) > 1:
                        single = False
                elif isinstance(raw, str):
                    alts = (raw,)
                elif raw[0]:
                    alts = raw  # one alternative, as given
                else:
                    break
                per_field.append(alts)
            else:
                if single:  # one value per field (the common case): one token, of the fields' first values
                    token = (head + FIELD_SEPARATOR.join(map(_FIRST, per_field))).encode("utf-8")
                    if cap is None:  # no per-record cap (n1, n2): the tokens by key are not needed
                        out.append((name, token))
                        continue
                    key_tokens = [(name, token)]
                else:
                    combos = itertools.islice(itertools.product(*per_field), MAX_ALTERNATIVES_PER_KEY)
                    key_tokens = [(name, (head + FIELD_SEPARATOR.join(v)).encode("utf-8")) for v in combos]
                out += key_tokens
                per_key.append(key_tokens)
        if cap is None or len(out) <= cap:
            return tuple(out)
        # Over the cap: every key keeps its first token, then its second, ..., until the cap;
        # the kept ones stay in key order.
        order = sorted((rank, k) for k, tokens in enumerate(per_key) for rank in range(len(tokens)))[:cap]
        kept = set(order)
        return tuple(t for k, tokens in enumerate(per_key) for rank, t in enumerate(tokens) if (rank, k) in kept)


#: Normalisation version of new configs.
DEFAULT_NORM_VERSION = "n2"

#: The default key set, strongest first (measured in docs/match-quality.md).
DEFAULT_MATCH_KEYS: dict[str, list[str]] = {
    "document": ["document_number", "document_country"],
    "names_dob": ["folded_soundex(name_tokens)", "date_of_birth_or_swapped"],
    "phonetic_dob": ["metaphone(family_name)", "initial(given_names)", "date_of_birth"],
    "given_dob_nationality": ["metaphone(first(given_names))", "date_of_birth", "nationality"],
    "names_year": ["metaphone(name_tokens)", "year_of_birth", "nationality"],
}


#: The default keys of normalisation n3 (opt-in: ``norm_version = "n3"`` with these keys), strongest
#: first. None depends on which column a name was typed in (see matcher.identity.normalise_n3 and
#: docs/match-quality.md, section n3).
N3_MATCH_KEYS: dict[str, list[str]] = {
    "document": ["document_number", "document_country"],
    "names_dob": ["name_keys", "date_of_birth_or_swapped"],
    "pair_dob": ["name_pairs", "date_of_birth"],
    "initials_dob": ["name_initials_nat", "date_of_birth"],
    "names_year": ["name_keys_fine", "year_of_birth", "nationality"],
}


def match_keys_toml(keys: Mapping[str, Sequence[str]] | None = None) -> str:
    """``keys`` (default: :data:`DEFAULT_MATCH_KEYS`) as the lines of a TOML ``[match_keys]`` table.

    The one rendering of the default keys that config templates and docs are made from.
    """
    keys = DEFAULT_MATCH_KEYS if keys is None else keys
    return "".join(f"{name} = {json.dumps(list(fields), ensure_ascii=False)}\n" for name, fields in keys.items())
