"""Make docs/audit-report.png: `matcher audit-report` on four weeks of demo-like sessions, shot by headless Chromium.

Run it with ``make audit-report-sample``. It writes the demo's configs and certificates to
a temporary folder, adds two more requester agencies to the responder's config, fills a
real hash-chained session log (matcher's SessionLog) with four weeks of made-up sessions
(fixed seed and dates: the same picture every time), runs ``matcher audit-report`` and
screenshots the page with ``chromium --headless``. No identity data is involved: the
session log holds none.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from matcher.cli import main as matcher_main
from matcher.config import load_responder_config
from matcher.demo import write_demo_files
from matcher.storage.session_log import SessionLog

START = datetime(2026, 10, 5, tzinfo=UTC)
DAYS = 28
EXTRA_PEERS = """
[[peers]]
name = "agency-c"
common_name = "agency-c"
daily_budget = 20000
max_set_size = 10000

[[peers]]
name = "agency-d"
common_name = "agency-d"
"""


def fill_log(responder_toml: Path, seed: int = 7) -> None:
    """Four weeks of sessions: a steady agency, one that climbs to its budget, one without a budget, some probes."""
    text = responder_toml.read_text(encoding="utf-8")
    text = text.replace('reveal = "requester"', 'reveal = "both"', 1)  # the responder learns its hit counts
    text = text.replace("[records]", EXTRA_PEERS.strip() + "\n\n[records]", 1)
    responder_toml.write_text(text, encoding="utf-8")
    cfg = load_responder_config(responder_toml)
    rng = random.Random(seed)
    log = SessionLog(cfg.responder.session_log)
    n = 0

    def session(peer: str, when: datetime, size: int, outcome: str = "OK", hits: int | None = None) -> None:
        nonlocal n
        n += 1
        sid = f"{rng.getrandbits(64):016x}"
        common = dict(session_id=sid, role="responder", peer=peer, protocol="ecdh", reveal="both",
                      request_size=size, config_fingerprint=cfg.fingerprint())
        if peer != "?":
            log.append(time=when.isoformat(timespec="seconds"), event="start", **common)
        ok = outcome == "OK"
        log.append(time=(when + timedelta(seconds=rng.randint(2, 90))).isoformat(timespec="seconds"), event="end",
                   **common, elements=size if ok else 0, hit_count=hits if ok else None, outcome=outcome,
                   status_code=0 if ok else 8, detail=None if ok else "refused",
                   seconds=round(rng.uniform(0.5, 40), 3))

    spent_c: dict[int, int] = {}
    for day in range(DAYS):
        base = START + timedelta(days=day)
        weekend = base.weekday() >= 5
        for _ in range(rng.randint(0, 1) if weekend else rng.randint(2, 4)):  # agency-b: steady office hours
            size = rng.randint(800, 6000)
            session("agency-b", base + timedelta(hours=rng.randint(8, 17), minutes=rng.randint(0, 59)), size,
                    hits=rng.choice((0, 0, 1, 1, 2, 3)))
        # agency-c: quiet, then in the last ten days close to its budget of 20000, with refusals
        busy = day >= DAYS - 10
        for _ in range(rng.randint(3, 6) if busy else rng.randint(0, 1)):
            size = rng.randint(3000, 6000) if busy else rng.randint(300, 1500)
            when = base + timedelta(hours=rng.randint(7, 22), minutes=rng.randint(0, 59))
            if spent_c.get(day, 0) + size > 20000:
                session("agency-c", when, size, "RESOURCE_EXHAUSTED")
            else:
                spent_c[day] = spent_c.get(day, 0) + size
                session("agency-c", when, size, hits=rng.randint(8, 30) if busy else rng.randint(0, 2))
        if day % 6 == 2:  # agency-d: no budget set, an occasional large session
            session("agency-d", base + timedelta(hours=11), rng.randint(9000, 16000), hits=rng.randint(0, 4))
        if day in (9, 10, 23):  # someone with a certificate that is not on the allowlist
            for k in range(rng.randint(1, 3)):
                session("?", base + timedelta(hours=3, minutes=k * 7), 0, "PERMISSION_DENIED")
        if day == 17:
            session("agency-d", base + timedelta(hours=15), 4000, "INVALID_ARGUMENT")
    log.close()


def screenshot(html: Path, png: Path, width: int = 1100, height: int = 4200) -> None:
    """Render ``html`` with headless Chromium to ``png`` (``chromium`` from Debian's package)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is not installed: apt-get install -y chromium")
    # a profile of its own: a second Chromium on the default profile hands over to the
    # first and exits 0 without a screenshot
    with tempfile.TemporaryDirectory(prefix="matcher-chromium-") as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png}",
                        html.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    if not png.exists():
        raise SystemExit(f"chromium wrote no screenshot to {png}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/audit-report.png"), help="PNG to write")
    ap.add_argument("--html", type=Path, help="also keep the HTML report here")
    args = ap.parse_args()
    os.environ["SOURCE_DATE_EPOCH"] = str(int((START + timedelta(days=DAYS, hours=8)).timestamp()))
    here = Path.cwd()
    # a folder of its own per run (0700): two runs at once (CI beside a developer's suite,
    # make test-stress) must not share one; the page names only relative paths
    work = Path(tempfile.mkdtemp(prefix="matcher-audit-report-sample-"))
    try:
        responder_toml, _ = write_demo_files(work)
        fill_log(responder_toml)
        html = (here / args.html) if args.html else work / "report.html"
        os.chdir(work)  # the page names the config as given: "responder.toml", the same on every run
        try:
            status = matcher_main(["audit-report", "--config", "responder.toml", "--out", str(html)])
        finally:
            os.chdir(here)
        if status != 0:
            return status
        screenshot(html, here / args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
