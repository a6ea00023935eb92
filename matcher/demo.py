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
from matcher.requester import run_match
from matcher.server.responder import start_responder
from matcher.files import private_dir, write_private

RESPONDER_TOML = """\
# Agency A: the responder. It serves its watchlist; requesters learn only their own hits.
norm_version = "n2"                # normalisation rules (part of every token): n2 = transliteration
                                   # schemes, particles, nicknames, partial dates, alternatives
[responder]
listen = "127.0.0.1:0"             # 0 = any free port (the demo); e.g. "0.0.0.0:50051" in production
watchlist = "agency_a_watchlist.csv"
state_dir = "agency_a_state"       # epoch key (0600)
session_log = "agency_a_state/sessions.db"  # hash-chained log of every session
session_log_retention_days = 365
protocols = ["ecdh"]
reveal = "requester"               # the requester learns its hits and their case references
key_rotation_days = 30
max_request_size = 1000000
max_chunk_elements = 4096

[tls]
cert = "certs/agency-a.pem"
key = "certs/agency-a.key"
ca = "certs/ca.pem"                # CA that signs the requester agencies' certificates

[[peers]]
name = "agency-b"
common_name = "agency-b"           # subject CN of agency B's client certificate
daily_budget = 100000              # most tokens agency B may send per UTC day
max_set_size = 50000               # most tokens in one session

[records]
date_order = "DMY"                 # 12.03.1979 is 12 March 1979
[records.columns]                  # record field = column in the CSV
record_id = "id"
given_names = "first_name"
family_name = "last_name"
date_of_birth = "dob"
sex = "sex"
nationality = "nationality"
document_number = "doc_no"
document_country = "doc_country"
case_ref = "case_id"

[match_keys]                       # strongest first; must be identical at both agencies
document = ["document_number", "document_country"]
names_dob = ["folded_soundex(name_tokens)", "date_of_birth_or_swapped"]
phonetic_dob = ["metaphone(family_name)", "initial(given_names)", "date_of_birth"]
given_dob_nationality = ["metaphone(first(given_names))", "date_of_birth", "nationality"]
names_year = ["metaphone(name_tokens)", "year_of_birth", "nationality"]
"""

REQUESTER_TOML = """\
# Agency B: the requester.
norm_version = "n2"
[requester]
protocol = "ecdh"
reveal = "requester"
server_name = "agency-a"           # name in the responder's certificate

[tls]
cert = "certs/agency-b.pem"
key = "certs/agency-b.key"
ca = "certs/ca.pem"                # CA that signs the responder's certificate

[records]
date_order = "MDY"                 # 03/12/1979 is 12 March 1979
[records.columns]
record_id = "person_id"
given_names = "given"
family_name = "surname"
date_of_birth = "birth_date"
sex = "gender"
nationality = "citizenship"
document_number = "passport"
document_country = "passport_country"

[match_keys]                       # strongest first; must be identical at both agencies
document = ["document_number", "document_country"]
names_dob = ["folded_soundex(name_tokens)", "date_of_birth_or_swapped"]
phonetic_dob = ["metaphone(family_name)", "initial(given_names)", "date_of_birth"]
given_dob_nationality = ["metaphone(first(given_names))", "date_of_birth", "nationality"]
names_year = ["metaphone(name_tokens)", "year_of_birth", "nationality"]
"""

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
    write_agency_certs(workdir / "certs", ["agency-a", "agency-b"])
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
    for r in run.loaded.rejected:
        say(f"[agency B]   rejected line {r.line}: {r.reason}")
    hits = run.result.hits
    say(f"[agency B] {len(hits)} hit(s) among {run.loaded.rows_read - len(run.loaded.rejected)} records:")
    say("")
    say(f"  {'record_id':<10} {'strength':<10} {'keys':>4} {'case reference':<20} why it is a hit")
    say(f"  {'-' * 10} {'-' * 10} {'-' * 4} {'-' * 20} {'-' * 40}")
    for h in hits:
        say(f"  {h.record_id:<10} {h.match_keys[0]:<10} {len(h.match_keys):>4} {h.case_ref:<20} {WHY.get(h.record_id, '')}")
    say("  (strength = strongest matching key; all matching keys are in the hits file)")
    say("")
    say("Files:")
    say(f"  hits            {hits_csv}")
    say(f"  configs         {responder_toml}  {requester_toml}")
    say(f"  certificates    {workdir / 'certs'}")
    say(f"  rejected rows   {workdir / 'agency_b_records.rejects.csv'}")
    say("Agency A learned only that agency B asked with "
        f"{run.result.elements_sent} tokens; agency B learned nothing about A's other records.")
    return len(hits)
