"""Match quality with the field-level rejects rule and with the old rule, on a `matcher synth` folder.

    matcher synth --size 10000 --overlap 0.2 --seed 1 --out q1
    python bench/rejects_rule.py q1

The old rule rejected a whole row for one bad field; this evaluates the same files
once with every loaded record and once without the records of the lines listed in
``LoadResult.dropped_fields`` (what the old rule would have rejected). Plaintext:
test data only. The figures are in docs/match-quality.md.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matcher.config import load_requester_config, load_responder_config  # noqa: E402
from matcher.identity.records import LoadResult, load_records  # noqa: E402
from matcher.quality.evaluate import evaluate, read_links  # noqa: E402


def _ids_at(path: Path, loaded: LoadResult, id_column: str) -> set[str]:
    """Record ids on the lines with a dropped field (synth files have one physical line per row)."""
    lines = {d.line for d in loaded.dropped_fields}
    with path.open(newline="", encoding="utf-8") as fh:
        return {row[id_column] for i, row in enumerate(csv.DictReader(fh), start=2) if i in lines}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a folder written by `matcher synth`")
    q = ap.parse_args().folder
    rc, pc = load_requester_config(q / "requester.toml"), load_responder_config(q / "responder.toml")
    spec = rc.key_spec()
    req = load_records(q / "requester.csv", rc.records.csv_format(), spec)
    resp = load_records(q / "responder.csv", pc.records.csv_format(), spec)
    links = read_links(q / "links.csv")
    old_req = _ids_at(q / "requester.csv", req, rc.records.columns.get("record_id", "record_id"))
    old_resp = _ids_at(q / "responder.csv", resp, pc.records.columns.get("record_id", "record_id"))
    new = evaluate(req.records, resp.records, links, spec).overall
    old = evaluate([r for r in req.records if r.record_id not in old_req],
                   [r for r in resp.records if r.record_id not in old_resp], links, spec).overall
    print(f"requester: {req.summary()}\nresponder: {resp.summary()}\n{new.true_links} true links")
    print(f"field-level rule: precision {new.precision:.4f} recall {new.recall:.4f} ({new.true_positives} found)")
    print(f"old rule:         precision {old.precision:.4f} recall {old.recall:.4f} ({old.true_positives} found)")


if __name__ == "__main__":
    main()
