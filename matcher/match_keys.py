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

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from matcher.errors import ConfigError

TOKEN_PREFIX = "matcher/v1/"
FIELD_SEPARATOR = "\x1f"

#: Fields a normalised record offers to match keys (see matcher.normalize).
KEY_FIELDS: frozenset[str] = frozenset(
    {
        "given_names",
        "family_name",
        "name_tokens",
        "given_initial",
        "date_of_birth",
        "year_of_birth",
        "sex",
        "nationality",
        "document_number",
        "document_country",
        "place_of_birth",
    }
)

_KEY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


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
            unknown = [f for f in key.fields if f not in KEY_FIELDS]
            if unknown:
                raise ConfigError(
                    f"match key {key.name!r} uses unknown field(s) {', '.join(unknown)}; "
                    f"known fields: {', '.join(sorted(KEY_FIELDS))}"
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
        return json.dumps(
            {
                "token_prefix": TOKEN_PREFIX,
                "norm_version": self.norm_version,
                "keys": [[k.name, list(k.fields)] for k in self.keys],
            },
            separators=(",", ":"),
            ensure_ascii=True,
        )

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON: equal fingerprints = identical tokens."""
        return hashlib.sha256(self.canonical_json().encode("ascii")).hexdigest()

    def tokens(self, record: Mapping[str, str]) -> dict[str, bytes]:
        """The tokens of one normalised record, by key name; keys with a missing field are skipped."""
        out: dict[str, bytes] = {}
        for key in self.keys:
            values = [record.get(f, "") for f in key.fields]
            if all(values):
                text = TOKEN_PREFIX + self.norm_version + "/" + key.name + "/" + FIELD_SEPARATOR.join(values)
                out[key.name] = text.encode("utf-8")
        return out


DEFAULT_MATCH_KEYS: dict[str, list[str]] = {
    "document": ["document_number", "document_country"],
    "name_dob": ["name_tokens", "date_of_birth"],
}
