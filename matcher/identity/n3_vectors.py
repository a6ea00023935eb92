"""Conformance vectors of normalisation n3: record → normalised name fields → tokens, per script and scheme.

``matcher/identity/vectors/n3/spellings.json`` lists persons written by several published schemes
(by hand, from each scheme's table). From it this module builds ``vectors.json``: for every
spelling, the raw record, the n3 name fields and the tokens of the default n3 keys. Two
installations that reproduce the file byte for byte compute the same n3 tokens; the test suite
checks the committed file against this code, and that every spelling of a person gives the same
``name_keys``. Regenerate after a deliberate change (which is a new normalisation version):

    python -m matcher.identity.n3_vectors --write
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from matcher.identity.match_keys import N3_MATCH_KEYS, KeySpec
from matcher.identity.normalise_n3 import NORM_VERSION_N3, normalise_record_n3

VECTORS_DIR = Path(__file__).parent / "vectors" / "n3"
VECTORS_FORMAT = "matcher-n3-vectors/1"
_NAME_FIELDS = ("name_keys", "name_pairs", "name_initials", "name_keys_fine")


def spellings() -> dict:
    """The hand-written spellings file."""
    return json.loads((VECTORS_DIR / "spellings.json").read_text(encoding="utf-8"))


def build_vectors() -> dict:
    """The vectors for every spelling of ``spellings.json`` (deterministic)."""
    spec = KeySpec.from_mapping(NORM_VERSION_N3, N3_MATCH_KEYS)
    out = []
    for n, group in enumerate(spellings()["groups"]):
        for scheme, given, family in group["spellings"]:
            raw = {"given_names": given, "family_name": family, "date_of_birth": "1980-04-12",
                   "nationality": "DEU", "document_number": f"X{n:07d}", "document_country": "DEU"}
            rec = normalise_record_n3(raw, "DMY")
            out.append({
                "script": group["script"], "language": group["language"], "scheme": scheme, "record": raw,
                "fields": {f: list(rec[f]) for f in _NAME_FIELDS},
                "tokens": [t.decode("utf-8") for _k, t in spec.tokens(rec)],
            })
    return {"format": VECTORS_FORMAT, "norm_version": NORM_VERSION_N3, "key_spec_fingerprint": spec.fingerprint(),
            "vectors": out}


def serialise(vectors: dict) -> str:
    """The committed file's exact text."""
    return json.dumps(vectors, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def digest() -> str:
    """SHA-256 of the vectors file's text: what two agencies compare."""
    return hashlib.sha256(serialise(build_vectors()).encode("utf-8")).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description="build (or --write) the n3 conformance vectors")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    text = serialise(build_vectors())
    if args.write:
        (VECTORS_DIR / "vectors.json").write_text(text, encoding="utf-8")
    print(hashlib.sha256(text.encode("utf-8")).hexdigest())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
