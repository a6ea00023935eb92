"""``matcher audit-report``: one offline HTML page from real sessions, checked as text and in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from pathlib import Path

import grpc
import pytest

from matcher.audit import report
from matcher.cli import main
from matcher.requester import run_match
from matcher.storage import session_log
from matcher.v1 import matcher_pb2_grpc as pb_grpc
from tests.conftest import leaks_in
from tests.test_e2e import _hello
from tests.test_hostile import _channel

CHARTS = ("chart-sessions", "chart-budget", "chart-outcomes", "chart-hits")


def _reveal_both(agencies) -> None:
    agencies.edit("responder", 'reveal = "requester"', 'reveal = "both"')
    agencies.edit("requester", 'reveal = "requester"', 'reveal = "both"')


@pytest.fixture
def served_report(agencies, start, capsys) -> tuple[Path, str]:
    """Real sessions (two completed, one refused) against a reveal = "both" responder; the report written."""
    _reveal_both(agencies)
    running = start()
    for out in ("hits1.csv", "hits2.csv"):
        run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                  f"127.0.0.1:{running.port}", out=agencies.workdir / out)
    with _channel(agencies, running) as ch, pytest.raises(grpc.RpcError):
        list(pb_grpc.ResponderStub(ch).Match(iter([_hello(agencies, 50001)]), timeout=30))
    running.stop(grace=1)
    out = agencies.workdir / "officer" / "report.html"
    out.parent.mkdir()
    assert main(["audit-report", "--config", str(agencies.responder_toml), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 session(s)" in printed and "log intact" in printed
    return out, out.read_text(encoding="utf-8")


def test_report_shows_log_check_findings_and_charts_of_real_sessions(agencies, served_report):
    out, page = served_report
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    check = session_log.verify(agencies.workdir / "agency_a_state" / "sessions.db")
    assert check.ok
    verdict = page[page.index('id="log-verdict"'):page.index("</div>", page.index('id="log-verdict"'))]
    assert "Session log intact" in verdict and f"{check.head_seq}:{check.head_hash}" in verdict
    assert page.index('id="log-verdict"') < page.index('id="findings"') < page.index('id="chart-sessions"')
    for chart in CHARTS:
        figure = page[page.index(f'id="{chart}"'):]
        figure = figure[:figure.index("</figure>")]
        assert "<svg" in figure and "What it shows:" in figure and "What would be worrying:" in figure
    # the reveal-both warning in plain words, with its fix
    assert "responder agency also learns which of its own persons" in page and "What to do:" in page
    # the per-agency table: 3 sessions, 2 completed, 1 refused
    row = re.search(r"<tr><td>agency-b</td>(.*?)</tr>", page).group(1)
    assert re.findall(r"<td>([^<]*)</td>", row)[:3] == ["3", "2", "1"]
    assert "tokens per day" in readable_text(page)  # the charts' own words are checked too
    assert not leaks_in(readable_text(page), agencies.workdir)


def readable_text(page: str) -> str:
    """The page without SVG drawing data (path coordinates can spell a year), keeping the charts' text."""
    texts = re.findall(r"<text\b[^>]*>(.*?)</text>", page, re.DOTALL)
    return re.sub(r"<svg\b.*?</svg>", " ", page, flags=re.DOTALL) + "\n".join(texts)


def test_report_loads_nothing(served_report):
    _, page = served_report
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert re.findall(r"url\((.)", page) == ["#"] * len(re.findall(r"url\(", page))  # in-page references only
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.IGNORECASE)
    assert "default-src 'none'" in page  # the Content Security Policy forbids fetching anything


def test_tampered_log_is_shown_at_the_top_and_exits_1(agencies, served_report, capsys):
    out, _ = served_report
    db = agencies.workdir / "agency_a_state" / "sessions.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE sessions SET request_size = 1 WHERE seq = 2")
    assert main(["audit-report", "--config", str(agencies.responder_toml), "--out", str(out)]) == 1
    assert "LOG DOES NOT VERIFY (row 2" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert "DOES NOT VERIFY" in page[:page.index('id="findings"')]


def test_no_session_log_is_said_in_words(agencies, capsys):
    agencies.edit("responder", 'session_log = "agency_a_state/sessions.db"', "")
    out = agencies.workdir / "report.html"
    assert main(["audit-report", "--config", str(agencies.responder_toml), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert "keeps no session log" in page and 'id="no-sessions"' in page
    assert "no session log: sessions leave no tamper-evident record" in page  # the audit's error


def test_requester_start_rows_pair_with_their_end_rows():
    rows = [
        {"event": "start", "peer": "a:1", "time": "2026-01-01T10:00:00+00:00", "protocol": "ecdh"},
        {"event": "end", "session_id": "s1", "peer": "a:1", "time": "2026-01-01T10:00:05+00:00", "outcome": "OK",
         "request_size": 9, "elements": 9, "hit_count": 2},
        {"event": "start", "peer": "a:1", "time": "2026-01-02T10:00:00+00:00", "protocol": "ecdh"},
        {"event": "retention", "time": "2026-01-03T00:00:00+00:00"},
    ]
    sessions, retention = report.sessions_from_rows(rows)
    assert [(s.outcome, s.hit_count) for s in sessions] == [("OK", 2), ("NO_END", None)] and retention == 1


# -- in a real browser ----------------------------------------------------------------------

def _chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI: .ci/run installs Debian's chromium package")
        pytest.skip("browser test skipped: chromium is not installed (apt-get install -y chromium)")
    return browser


def _browse(page: Path, *mode: str) -> subprocess.CompletedProcess:
    # A profile of its own per run: two Chromiums on the default profile hand over to each
    # other and the second exits 0 without output (seen when two suites ran at once).
    with tempfile.TemporaryDirectory(prefix="matcher-chromium-") as profile:
        return subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}", *mode, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120,
        )


def page_errors(page: Path) -> tuple[str, list[str]]:
    """The DOM Chromium built from ``page``, and every console message it logged (errors, blocked loads)."""
    done = _browse(page, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [ln for ln in done.stderr.splitlines() if ":CONSOLE" in ln]


def _colour_pixels(png: Path, hex_colour: str) -> int:
    from PIL import Image

    want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    img = Image.open(png).convert("RGB")
    return sum(
        n for n, rgb in img.getcolors(maxcolors=1 << 24) if all(abs(a - b) <= 2 for a, b in zip(rgb, want, strict=True))
    )


def test_browser_renders_the_report_without_errors_and_draws_its_charts(served_report, tmp_path):
    out, _ = served_report
    dom, console = page_errors(out)
    assert console == []  # no blocked load, no script, no error of any kind
    assert "Session log intact" in dom
    for chart in CHARTS:
        figure = dom[dom.index(f'id="{chart}"'):]
        figure = figure[:figure.index("</figure>")]
        assert "<svg" in figure and len(re.findall(r"<path", figure)) > 5, chart

    png = tmp_path / "report.png"
    shot = _browse(out, "--window-size=1100,5000", f"--screenshot={png}")
    assert shot.returncode == 0 and png.stat().st_size > 10_000, shot.stderr[-2000:]
    # Each chart's own colour is on screen: the browser drew the bars, the line and the dots.
    drawn = {name: _colour_pixels(png, colour) for name, colour in (
        ("sessions", report.PEER_COLOURS[0]), ("answered tokens", report.SERVED_COLOUR),
        ("budget line", report.BUDGET_COLOUR), ("completed", report.COMPLETED_COLOUR),
        ("refused", report.REFUSED_COLOUR), ("hits", report.HITS_COLOUR))}
    assert all(n >= 10 for n in drawn.values()), drawn


def test_browser_check_catches_a_page_that_loads_or_runs_something(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(report.render(report.ReportData("x.toml", "responder", report.AuditReport("x.toml", "responder"),
                                                   None, log_problem="none")).replace(
        "</body>", '<img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body>'))
    _, console = page_errors(bad)
    assert len(console) >= 2 and any("Content Security Policy" in ln for ln in console)


def test_docs_sample_screenshot_is_what_make_audit_report_sample_produces(tmp_path):
    """docs/audit-report.png is regenerated by `make audit-report-sample`; it must still match the code."""
    import sys

    from PIL import Image, ImageChops

    _chromium()
    root = Path(__file__).resolve().parent.parent
    png = tmp_path / "sample.png"
    done = subprocess.run([sys.executable, str(root / "docs" / "make_audit_report_sample.py"), "--out", str(png)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(root)))
    assert done.returncode == 0, done.stderr[-2000:]
    new, kept = Image.open(png).convert("L"), Image.open(root / "docs" / "audit-report.png").convert("L")
    assert new.size == kept.size
    differ = sum(n for n, level in ImageChops.difference(new, kept).getcolors(256) if level > 32)
    assert differ / (new.size[0] * new.size[1]) < 0.005, "docs/audit-report.png is stale: run make audit-report-sample"
