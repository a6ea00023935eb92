"""Match quality of a key spec on two record files with known true links (plaintext, test data only).

This computes in the clear what a session would find, record pair by record
pair, so it must only ever be run on synthetic or otherwise shareable test
data, to tune normalisation and match keys before agencies agree on them.

A *predicted link* is a (requester record, responder record) pair that shares
at least one token of a key. Per key and for the whole key set:

* precision = true predicted links / predicted links,
* recall = true predicted links / true links (links whose records were
  rejected when loading count as missed: they cannot be found),
* F1 = their harmonic mean,

and the cost: tokens per record on each side (what a session sends and what
the responder's setup holds).

A pair's *strength* is the strongest key that links it (key order in the spec
is strength order), as in the hits file. The *strength cut-offs* say what an
agency gets if it acts only on hits of strength at least key *i*: the first
row is the strongest key alone, the last is every key (= the whole key set).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from matcher.errors import InputFileError
from matcher.identity.match_keys import KeySpec
from matcher.identity.records import TokenisedRecord

Link = tuple[str, str]


@dataclass(frozen=True)
class KeyQuality:
    """Quality and cost of one key (or of the whole key set, name ``"all keys"``)."""

    name: str
    predicted: int
    true_positives: int
    true_links: int
    tokens_per_requester_record: float
    tokens_per_responder_record: float

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.true_links if self.true_links else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class Evaluation:
    """Per-key rows in key-spec order (strongest first), then the whole key set, then the strength cut-offs."""

    keys: tuple[KeyQuality, ...]
    overall: KeyQuality
    max_tokens_per_record: int
    #: acting on hits of strength >= key i: "k1", "k1..k2", ... "k1..kn" (tokens of those keys)
    cutoffs: tuple[KeyQuality, ...] = ()

    def table(self) -> str:
        """A Markdown table of the metrics (no identity data)."""
        lines = [
            "| key | predicted links | true positives | precision | recall | F1 | tokens/record (requester) "
            "| tokens/record (responder) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for q in (*self.keys, self.overall):
            lines.append(
                f"| {q.name} | {q.predicted} | {q.true_positives} | {q.precision:.4f} | {q.recall:.4f} | {q.f1:.4f} "
                f"| {q.tokens_per_requester_record:.2f} | {q.tokens_per_responder_record:.2f} |"
            )
        lines.append(f"\n{self.overall.true_links} true links; at most {self.max_tokens_per_record} tokens per record.")
        if self.cutoffs:
            lines += [
                "",
                "Acting only on hits of a given strength or stronger (strength cut-off: the keys whose hits are used):",
                "",
                "| strength cut-off | predicted links | true positives | precision | recall | F1 |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for q in self.cutoffs:
                lines.append(
                    f"| {q.name} | {q.predicted} | {q.true_positives} "
                    f"| {q.precision:.4f} | {q.recall:.4f} | {q.f1:.4f} |"
                )
        return "\n".join(lines)


def read_links(path: str | os.PathLike[str]) -> set[Link]:
    """The true links: a CSV with header ``requester_id,responder_id``."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or {"requester_id", "responder_id"} - set(reader.fieldnames):
                raise InputFileError(f"{path}: the links file needs the columns requester_id,responder_id")
            return {(row["requester_id"], row["responder_id"]) for row in reader}
    except OSError as exc:
        raise InputFileError(f"cannot read the links file {path}: {exc.strerror or exc}") from None


def _pairs(
    requester: Iterable[TokenisedRecord], responder_by_token: dict[bytes, set[str]], keys: set[str] | None
) -> set[Link]:
    found: set[Link] = set()
    for rec in requester:
        for name, token in rec.tokens:
            if keys is None or name in keys:
                for other in responder_by_token.get(token, ()):
                    found.add((rec.record_id, other))
    return found


def evaluate(
    requester: list[TokenisedRecord], responder: list[TokenisedRecord], links: set[Link], keyspec: KeySpec
) -> Evaluation:
    """Precision, recall, F1 and tokens per record of each key of ``keyspec`` and of all keys together."""
    by_token: dict[bytes, set[str]] = {}
    for rec in responder:
        for _name, token in rec.tokens:
            by_token.setdefault(token, set()).add(rec.record_id)
    n_req, n_resp = max(1, len(requester)), max(1, len(responder))

    def quality(name: str, keys: set[str] | None) -> KeyQuality:
        found = _pairs(requester, by_token, keys)
        req_tokens = sum(1 for r in requester for k, _ in r.tokens if keys is None or k in keys)
        resp_tokens = sum(1 for r in responder for k, _ in r.tokens if keys is None or k in keys)
        return KeyQuality(name, len(found), len(found & links), len(links), req_tokens / n_req, resp_tokens / n_resp)

    names = keyspec.names
    per_key = tuple(quality(k, {k}) for k in names)
    cutoffs = tuple(
        quality(names[0] if i == 1 else f"{names[0]}..{names[i - 1]}", set(names[:i])) for i in range(1, len(names) + 1)
    )
    most = max((len(r.tokens) for r in (*requester, *responder)), default=0)
    return Evaluation(per_key, quality("all keys", None), most, cutoffs)
