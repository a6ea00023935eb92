"""Conformance of this installation's tokenisation (docs/PROTOCOL.md §2.4).

Two agencies match only if they compute byte-identical tokens for the same person. The
normalisation's output depends on code (this package) and on tables it does not own:
anyascii's transliteration, pycountry's country names, jellyfish's phonetic codes and
Python's Unicode database. The committed *normalisation conformance vectors*
(``vectors/n1.v1.json``, ``vectors/n2.v1.json``, ``vectors/n3.v1.json``: raw record -> normalised fields ->
tokens) pin all of them down: at start-up each side runs the vectors of its
normalisation version through its own normaliser and

* refuses to serve or to match when its outputs differ from the committed ones (the
  installation is broken: a library of another version, a changed table), and
* publishes the *conformance digest* (SHA-256 of the vectors with the outputs this
  installation actually produced) in its Policy and Hello, so two installations whose
  tokenisation differs are refused before any data moves (FAILED_PRECONDITION naming
  both digests), never a silent zero hits.

Reads its vector files from the package (importlib.resources); otherwise pure.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata, resources
from typing import Any

from matcher.errors import NormalisationMismatch, RecordError
from matcher.identity.match_keys import KeySpec

#: The vector file each normalisation version is checked against. A changed vector is a
#: new file (and a new digest), never an edit: tests/test_conformance.py pins their hashes.
NORM_VECTOR_FILES: dict[str, str] = {"n1": "n1.v1.json", "n2": "n2.v1.json", "n3": "n3.v1.json"}

#: The protocol vector file (hash to group, tags, labels, keyed-hash, paillier encodings).
PROTOCOL_VECTOR_FILE = "protocol.v2.json"

#: Libraries whose tables decide token bytes (pinned exactly in pyproject.toml).
TOKEN_LIBRARIES: tuple[str, ...] = ("anyascii", "jellyfish", "pycountry")


def read_vectors(name: str) -> dict[str, Any]:
    """One committed vector file of this package, parsed."""
    text = resources.files(__package__).joinpath("vectors", name).read_text(encoding="utf-8")
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def library_versions() -> str:
    """``anyascii==0.3.3 jellyfish==1.3.0 pycountry==26.2.16 unicode==15.0.0``: what shapes tokens here."""
    parts = []
    for name in TOKEN_LIBRARIES:
        try:
            parts.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}==?")
    parts.append(f"unicode=={unicodedata.unidata_version}")
    return " ".join(parts)


def _normaliser(norm_version: str) -> Callable[[Mapping[str, str], str], dict[str, list[str]]]:
    # Imported here: the normalisers build their tables on first use.
    if norm_version == "n1":
        from matcher.identity.normalise_n1 import normalise_record

        return lambda raw, order: {k: [v] if v else [] for k, v in normalise_record(raw, order).items()}
    if norm_version == "n3":
        from matcher.identity.normalise_n3 import normalise_record_n3

        return lambda raw, order: {k: list(v) for k, v in normalise_record_n3(raw, order).items()}
    from matcher.identity.normalise_n2 import normalise_record_n2

    return lambda raw, order: {k: list(v) for k, v in normalise_record_n2(raw, order).items()}


def run_vector(keyspec: KeySpec, norm_version: str, vector: dict[str, Any]) -> dict[str, Any]:
    """This installation's output for one vector: ``{"fields": ..., "tokens": ...}`` or ``{"error": ...}``."""
    normalise = _normaliser(norm_version)
    try:
        fields = normalise(vector["record"], vector["date_order"])
    except RecordError as exc:
        return {"error": type(exc).__name__}
    tokens = [[name, token.decode("utf-8")] for name, token in keyspec.tokens(fields)]
    return {"fields": fields, "tokens": tokens}


def vectors_keyspec(doc: dict[str, Any]) -> KeySpec:
    """The key spec a vector file's tokens are computed under (it covers every field and transform)."""
    return KeySpec.from_mapping(doc["norm_version"], {k: f for k, f in doc["key_spec"]})


def digest_of(doc: dict[str, Any], outputs: list[dict[str, Any]]) -> str:
    """SHA-256 (hex) of the vectors' inputs with ``outputs``: the canonical form in PROTOCOL §2.4."""
    body = {
        "format": doc["format"],
        "norm_version": doc["norm_version"],
        "key_spec": doc["key_spec"],
        "vectors": [
            {"id": v["id"], "date_order": v["date_order"], "record": v["record"], **out}
            for v, out in zip(doc["vectors"], outputs, strict=True)
        ],
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NormConformance:
    """What this installation's normaliser produced for its version's conformance vectors."""

    norm_version: str
    vectors_file: str
    digest: str  #: over the outputs actually produced here
    expected_digest: str  #: over the committed outputs
    differing: tuple[str, ...]  #: ids of the vectors whose output differs from the committed one
    libraries: str

    @property
    def ok(self) -> bool:
        return not self.differing

    def problem(self) -> str:
        """One sentence on what is wrong with this installation ("" when it conforms)."""
        if self.ok:
            return ""
        shown = ", ".join(self.differing[:8]) + (" ..." if len(self.differing) > 8 else "")
        return (
            f"this installation's normalisation {self.norm_version} differs from its conformance vectors "
            f"({self.vectors_file}) in {len(self.differing)} vector(s): {shown}; token libraries here: "
            f"{self.libraries}; reinstall matcher so that the versions pinned in pyproject.toml are used"
        )


def _compute(norm_version: str) -> NormConformance:
    name = NORM_VECTOR_FILES[norm_version]
    doc = read_vectors(name)
    keyspec = vectors_keyspec(doc)
    outputs = [run_vector(keyspec, norm_version, v) for v in doc["vectors"]]
    expected = [{k: v[k] for k in ("fields", "tokens", "error") if k in v} for v in doc["vectors"]]
    differing = tuple(v["id"] for v, out, exp in zip(doc["vectors"], outputs, expected, strict=True) if out != exp)
    return NormConformance(
        norm_version, name, digest_of(doc, outputs), digest_of(doc, expected), differing, library_versions()
    )


@cache
def conformance(norm_version: str) -> NormConformance:
    """Run the conformance vectors of ``norm_version`` once per process (about 0.1-1 s)."""
    return _compute(norm_version)


def require_conformant(norm_version: str) -> NormConformance:
    """The installation's conformance, or NormalisationMismatch if it is broken (refuse to serve or match)."""
    c = conformance(norm_version)
    if not c.ok:
        raise NormalisationMismatch(c.problem())
    return c


def check_peer(mine: NormConformance, theirs: str, their_libraries: str, peer: str) -> None:
    """Refuse a peer whose normalisation conformance digest differs (FAILED_PRECONDITION).

    ``peer`` is "responder" or "requester"; the message names both digests, both sides'
    token libraries where known, and which vectors this side gets wrong (if any).
    """
    if theirs == mine.digest:
        return
    me = "requester" if peer == "responder" else "responder"
    shown = theirs if _is_hex(theirs) else "(none or not a SHA-256 digest)"
    detail = mine.problem() or f"this {me}'s outputs equal its committed vectors ({mine.vectors_file})"
    libs = f"; {peer}'s token libraries: {_printable(their_libraries)}" if their_libraries else ""
    raise NormalisationMismatch(
        f"normalisation {mine.norm_version} tokenises differently: {me} conformance digest {mine.digest}, "
        f"{peer} conformance digest {shown}; {me}'s token libraries: {mine.libraries}{libs}; {detail}. "
        "Both installations must run matcher versions with the same conformance vectors and the exactly "
        "pinned token libraries, or no hit would be found"
    )


def _is_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _printable(text: str, limit: int = 200) -> str:
    """A peer's announced string, cut and stripped of control characters (it goes into a message)."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])
