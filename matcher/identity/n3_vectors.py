"""Normalisation n3's conformance vectors (``vectors/n3.v1.json``), built from published spellings.

``vectors/n3/spellings.json`` lists persons in their own script and as each published scheme
writes them (by hand, from each scheme's table). ``build_vectors`` turns every spelling into one
vector of the common format (:mod:`matcher.identity.conformance`, format
``matcher-norm-vectors/1``): raw record → normalised fields → tokens under n3's default keys, the
``rule`` naming script, language and scheme. ``tools/gen_vectors.py`` writes the file once;
like every vector file it is never edited afterwards (a changed output is a new normalisation
version), and each installation checks itself against it at start-up.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from matcher.identity.conformance import run_vector, vectors_keyspec
from matcher.identity.match_keys import N3_MATCH_KEYS

VECTORS_FORMAT = "matcher-norm-vectors/1"


def spellings() -> dict[str, Any]:
    """The hand-written spellings file."""
    text = resources.files(__package__).joinpath("vectors", "n3", "spellings.json").read_text(encoding="utf-8")
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def build_vectors() -> dict[str, Any]:
    """The n3 vector file's content (deterministic): one vector per spelling of ``spellings.json``."""
    doc: dict[str, Any] = {
        "format": VECTORS_FORMAT,
        "norm_version": "n3",
        "about": "raw record -> normalised fields (alternatives, primary first) -> (key, token) pairs, one vector "
        "per published spelling of matcher/identity/vectors/n3/spellings.json; see docs/match-quality.md "
        "(section n3). Never edit: a changed output is a new normalisation version.",
        "key_spec": [[name, list(fields)] for name, fields in N3_MATCH_KEYS.items()],
        "vectors": [],
    }
    keyspec = vectors_keyspec(doc)
    seen: set[str] = set()
    for n, group in enumerate(spellings()["groups"]):
        for scheme, given, family in group["spellings"]:
            vid = f"{group['language']}-{n}-{_slug(scheme)}"
            while vid in seen:
                vid += "-x"
            seen.add(vid)
            vector = {
                "id": vid,
                "rule": f"{group['script']} {group['language']}: {scheme}",
                "date_order": "DMY",
                "record": {"given_names": given, "family_name": family, "date_of_birth": "12.04.1980",
                           "nationality": "DEU", "document_number": f"X{n:07d}", "document_country": "DEU"},
            }
            vector |= run_vector(keyspec, "n3", vector)
            doc["vectors"].append(vector)
    return doc
