"""``matcher demo``: two agencies on loopback with bundled synthetic data.

Agency A (the responder, German-style export: day-first dates, Latin script)
serves its watchlist; agency B (the requester, month-first dates, names in
Cyrillic, Greek and Arabic script, name order sometimes swapped) asks which of
its persons A also holds. Everything runs on 127.0.0.1 with real mutual TLS from
a throw-away CA made for this run.
"""

from __future__ import annotations

import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import TextIO

from matcher.certs import write_agency_certs
from matcher.config import load_requester_config, load_responder_config
from matcher.config_templates import REQUESTER_TOML, RESPONDER_TOML
from matcher.files import private_dir, write_private
from matcher.requester import run_match
from matcher.server.responder import start_responder

#: Why each expected hit is one (the demo prints this beside the hits; no identity data).
WHY = {
    "B-101": "Cyrillic script vs Latin, other date format",
    "B-102": "given and family name swapped, diacritics",
    "B-103": "accents and a hyphenated double surname",
    "B-104": "Arabic script; passport number with spaces; phonetic keys too",
    "B-105": "Greek script; passport number and (ELOT romanisation) name",
}

DATA_FILES = ("agency_a_watchlist.csv", "agency_b_records.csv")


def write_demo_files(workdir: Path) -> tuple[Path, Path]:
    """Certificates, bundled CSVs and both configs under ``workdir``."""
    write_agency_certs(workdir / "certs", ["agency-a", "agency-b"], force=True)
    data = resources.files("matcher") / "demo_data"
    for name in DATA_FILES:
        with resources.as_file(data / name) as src:  # identity data (synthetic): 0600 like real files
            write_private(workdir / name, src.read_bytes())
    (workdir / "responder.toml").write_text(RESPONDER_TOML, encoding="utf-8")
    (workdir / "requester.toml").write_text(REQUESTER_TOML, encoding="utf-8")
    return workdir / "responder.toml", workdir / "requester.toml"


def run_demo(workdir: Path | None = None, out: TextIO | None = None) -> int:
    """Run both agencies once and print the hits; returns the number of hits."""
    out = out or sys.stdout
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="matcher-demo-"))
    private_dir(workdir, fix_existing=False)
    responder_toml, requester_toml = write_demo_files(workdir)
    say = lambda msg: print(msg, file=out, flush=True)  # noqa: E731
    say(f"matcher demo in {workdir}")
    say("[agency A] starting responder (mTLS on 127.0.0.1) ...")
    running = start_responder(load_responder_config(responder_toml), progress=lambda m: say(f"[agency A] {m}"))
    try:
        req_cfg = load_requester_config(requester_toml)
        peer = f"127.0.0.1:{running.port}"
        say(f"[agency B] matching its records against agency A at {peer} ...")
        hits_csv = workdir / "hits.csv"
        run = run_match(req_cfg, workdir / "agency_b_records.csv", peer, out=hits_csv)
    finally:
        running.stop(grace=1.0)
    say(f"[agency B] {run.loaded.summary()}")
    for d in run.loaded.dropped_fields:
        say(f"[agency B]   line {d.line}: {d.field} dropped: {d.reason}")
    for r in run.loaded.rejected:
        say(f"[agency B]   rejected line {r.line}: {r.reason}")
    hits = run.result.hits
    say(f"[agency B] {run.result.hit_count} hit(s) among {len(run.loaded.records)} records:")
    say("")
    say(f"  {'record_id':<10} {'strength':<10} {'keys':>4} {'case reference':<20} why it is a hit")
    say(f"  {'-' * 10} {'-' * 10} {'-' * 4} {'-' * 20} {'-' * 40}")
    for h in hits:
        why = WHY.get(h.record_id, "")
        say(f"  {h.record_id:<10} {h.match_keys[0]:<10} {len(h.match_keys):>4} {h.case_ref:<20} {why}")
    say("  (one row per record and case reference; strength = strongest key that linked that pair;")
    say("   all of that pair's keys are in the hits file)")
    say("")
    say("Files:")
    say(f"  hits            {hits_csv}")
    say(f"  configs         {responder_toml}  {requester_toml}")
    say(f"  certificates    {workdir / 'certs'}")
    say(f"  rejects         {workdir / 'agency_b_records.rejects.csv'}")
    say("Agency A learned only that agency B asked with "
        f"{run.result.elements_sent} elements (its tokens and 8 check elements); agency B learned nothing "
        "about A's other records.")
    return run.result.hit_count
