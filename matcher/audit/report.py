"""``matcher audit-report``: one self-contained HTML page for a privacy officer.

What it shows, from a responder (or requester) config and its hash-chained session log:

1. at the top, whether the session log verifies (``audit-log verify``) and its head, to
   write down elsewhere;
2. the config audit's findings in plain words, errors first, each with its fix;
3. charts (matplotlib, inlined as SVG): sessions per peer per day, tokens asked against
   each peer's daily budget, how sessions ended (completed or refused, and why), and hits
   per session where this side knows them; each with a sentence saying what it shows and
   what would be worrying;
4. a per-peer table.

The page loads nothing: no script, no font, no image from anywhere (its Content
Security Policy forbids it), so it opens offline and can be archived or mailed. It
shows what the session log holds, which is never identity data, tokens or case
references; it is still written with mode 0600 because it shows who asked how much.

The data is gathered in ``report_data`` and the charts drawn in ``report_charts``;
this module writes the page.
"""

from __future__ import annotations

import html
from collections import Counter
from datetime import datetime
from pathlib import Path

from matcher import __version__
from matcher.audit.config_audit import AuditReport, Finding
from matcher.audit.report_charts import (
    BUDGET_COLOUR,
    COMPLETED_COLOUR,
    HITS_COLOUR,
    NOT_SERVED_COLOUR,
    OTHER_END_COLOUR,
    PEER_COLOURS,
    REFUSED_COLOUR,
    SERVED_COLOUR,
    chart_hits,
    chart_outcomes,
    chart_sessions_per_day,
    chart_tokens_vs_budget,
)
from matcher.audit.report_data import (
    OUTCOME_WORDS,
    REFUSALS,
    UNKNOWN_PEER,
    ReportData,
    Session,
    gather,
    sessions_from_rows,
)

__all__ = [
    "BUDGET_COLOUR", "COMPLETED_COLOUR", "HITS_COLOUR", "NOT_SERVED_COLOUR", "OTHER_END_COLOUR", "OUTCOME_WORDS",
    "PEER_COLOURS", "REFUSALS", "REFUSED_COLOUR", "SERVED_COLOUR", "UNKNOWN_PEER", "AuditReport", "ReportData",
    "Session", "chart_hits", "chart_outcomes", "chart_sessions_per_day", "chart_tokens_vs_budget", "gather",
    "render", "sessions_from_rows", "write_report",
]


_CSS = """
body{font-family:"DejaVu Sans",Verdana,Arial,sans-serif;color:#1d1d1f;max-width:1000px;margin:24px auto;
padding:0 16px;line-height:1.45}
h1{font-size:1.6em;margin-bottom:0}h2{margin-top:1.8em;border-bottom:2px solid #ddd;padding-bottom:4px}
.sub{color:#555;margin-top:4px}
.verdict{padding:12px 16px;border-radius:6px;margin:16px 0;font-size:1.05em}
.ok{background:#e6f4ea;border:1px solid #2f9e44}.bad{background:#fdecea;border:1px solid #b00020}
.none{background:#f1f3f5;border:1px solid #adb5bd}
code{background:#f1f3f5;padding:1px 4px;border-radius:3px;word-break:break-all}
.finding{margin:6px 0;padding:8px 12px;border-left:5px solid #adb5bd;background:#fafafa}
.finding.error{border-color:#b00020}.finding.warning{border-color:#e08a00}
.sev{font-weight:bold;text-transform:uppercase;font-size:.8em;margin-right:6px}
.fix{color:#444;font-size:.92em;margin-top:3px}
figure.chart{margin:18px 0 28px 0}figure.chart svg{max-width:100%;height:auto}
.what{margin:4px 0}.worry{margin:4px 0;color:#7a2e00}
table{border-collapse:collapse;margin-top:8px}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f1f3f5}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.92em}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _verdict(data: ReportData) -> str:
    if data.log_problem:
        return f'<div class="verdict none" id="log-verdict"><b>Session log:</b> {_e(data.log_problem)}</div>'
    v = data.verified
    assert v is not None
    head = f"{v.head_seq}:{v.head_hash}"
    if v.ok:
        return (
            f'<div class="verdict ok" id="log-verdict"><b>Session log intact.</b> All {v.rows} row(s) of '
            f"<code>{_e(data.log_shown)}</code> verify: no row was edited, deleted or reordered since it was written."
            f"<br>Head (write it down somewhere else, e.g. a ticket or paper, and pass it next time as "
            f"<code>--anchor</code>): <code>{_e(head)}</code></div>"
        )
    return (
        f'<div class="verdict bad" id="log-verdict"><b>Session log DOES NOT VERIFY.</b> First bad row: '
        f"{_e(v.bad_seq)}: {_e(v.reason)} ({v.rows} row(s) read). The figures below come from a log that was "
        f"changed after it was written; report this to your security officer.<br>Head: <code>{_e(head)}</code></div>"
    )


def _findings(audit: AuditReport, severities: tuple[str, ...]) -> str:
    titles = {"error": "Must be fixed", "warning": "Should be fixed or consciously accepted",
              "info": "What this configuration does"}
    parts = []
    if "error" in severities:
        parts.append(f"<p>{audit.count('error')} error(s), {audit.count('warning')} warning(s). Each point says "
                     "what the setting means and how to change it. What the configuration does is described at the "
                     "end of this page.</p>")
    for sev in severities:
        items: list[Finding] = [f for f in audit.findings if f.severity == sev]
        if not items:
            continue
        if len(severities) > 1:
            parts.append(f"<h3>{_e(titles[sev])}</h3>")
        for f in items:
            subject = f"<b>{_e(f.subject)}</b>: " if f.subject else ""
            fix = f'<div class="fix">What to do: {_e(f.fix)}</div>' if f.fix and sev != "info" else ""
            parts.append(f'<div class="finding {sev}"><span class="sev">{_e(sev)}</span>{subject}{_e(f.message)}'
                         f"{fix}</div>")
    return "\n".join(parts)


def _chart(chart_id: str, title: str, what: str, worry: str, svg: str) -> str:
    return (f'<figure class="chart" id="{chart_id}"><h3>{_e(title)}</h3>{svg}'
            f'<figcaption><p class="what"><b>What it shows:</b> {_e(what)}</p>'
            f'<p class="worry"><b>What would be worrying:</b> {_e(worry)}</p></figcaption></figure>')


def _peer_table(data: ReportData, peers: list[str]) -> str:
    rows = []
    for p in peers:
        mine = [s for s in data.sessions if s.peer == p]
        per_day: Counter = Counter()
        for s in mine:
            per_day[s.day] += s.request_size or 0
        busiest = max(per_day.values(), default=0)
        budget = data.budgets.get(p)
        share = f"{100 * busiest / budget:.0f}%" if budget else "no budget"
        hits = [s.hit_count for s in mine if s.hit_count is not None]
        rows.append(
            f"<tr><td>{_e(p)}</td><td>{len(mine)}</td><td>{sum(s.outcome == 'OK' for s in mine)}</td>"
            f"<td>{sum(s.outcome in REFUSALS for s in mine)}</td><td>{sum(s.request_size or 0 for s in mine):,}</td>"
            f"<td>{f'{budget:,}' if budget else '—'}</td><td>{busiest:,} ({share})</td>"
            f"<td>{sum(hits) if hits else 'not known'}</td></tr>")
    return ("<table><tr><th>agency</th><th>sessions</th><th>completed</th><th>refused</th><th>tokens asked</th>"
            "<th>daily budget</th><th>busiest day (share of budget)</th><th>hits</th></tr>"
            + "".join(rows) + "</table>")


def render(data: ReportData) -> str:
    """The whole page as one HTML string (inline CSS and SVG; no script, nothing fetched)."""
    sessions = data.sessions
    # agencies in name order, sessions of an unrecognised certificate last
    active_peers = sorted({s.peer for s in sessions}, key=lambda p: (p == UNKNOWN_PEER, p))
    asking_peers = [p for p in active_peers if any(s.peer == p and s.request_size for s in sessions)]
    period = (f"{sessions[0].day.isoformat()} to {sessions[-1].day.isoformat()} (UTC)" if sessions else "no sessions")
    body = [
        "<h1>Privacy oversight report</h1>",
        f'<p class="sub">{_e(data.role.capitalize())} configuration <code>{_e(data.config)}</code> · generated '
        f"{_e(data.generated)} UTC by matcher {_e(__version__)}"
        + (f" · sessions since {_e(data.since)}" if data.since else "") + "</p>",
        _verdict(data),
        f"<p>This page summarises who asked this agency's matching service what, and how the service is set up. "
        f"It contains no personal data: the session log records only which agency asked, how many tokens "
        f"(one token is one way of describing one person, so a person usually counts as several tokens), "
        f"when, and how the session ended. Period: {_e(period)}; {len(sessions)} session(s).</p>",
        '<h2 id="findings">Configuration: what needs attention</h2>',
        _findings(data.audit, ("error", "warning")),
        "<h2>Sessions</h2>",
    ]
    if not sessions:
        body.append(f'<p class="note" id="no-sessions">No sessions to chart. {_e(data.log_problem or "")}</p>')
    else:
        body.append(_chart(
            "chart-sessions", "Sessions per agency per day",
            "Each bar is one day (UTC); each colour is one requesting agency; the height is how many matching "
            "sessions that agency ran that day.",
            "An agency that suddenly asks much more often than usual, sessions on days when nobody should be "
            "working, or an agency you do not recognise.",
            chart_sessions_per_day(sessions, active_peers)))
        if asking_peers:
            body.append(_chart(
                "chart-budget", "Tokens asked against each agency's daily budget",
                "For each agency, how many tokens it asked about each day: blue was answered, orange was asked but "
                "not answered (refused or ended early). The dashed red line is the most it may ask per day.",
                "Bars that keep reaching the red line: the agency is asking as much as it is allowed, which is what "
                "someone testing many guessed persons would do. An agency with no budget set has no such limit.",
                chart_tokens_vs_budget(sessions, asking_peers, data.budgets)))
        body.append(_chart(
            "chart-outcomes", "How sessions ended",
            "How many sessions completed, and how many the service refused or stopped, and why.",
            "Many refusals: repeated 'certificate not on the allowlist' means someone unknown is trying; "
            "'malformed data' can mean a broken or hostile client; 'daily budget spent' means an agency asked "
            "for more than agreed.",
            chart_outcomes(sessions)))
        if any(s.hit_count is not None for s in sessions):
            body.append(_chart(
                "chart-hits", "Hits per session",
                "Each dot is one session whose number of hits this side knows; its height is how many of the "
                "tokens asked were found here.",
                "Sessions where a large share of what was asked is found: a requester should normally find few "
                "of its persons here; a high share can mean it is checking persons it already suspects are on "
                "this list.",
                chart_hits(sessions, active_peers)))
        else:
            body.append('<p class="note" id="no-hits">Hits per session: not known on this side. In this reveal '
                        "mode only the requesting agency learns its hits, so the log has no hit counts.</p>")
        body.append("<h2>Per agency</h2>")
        body.append(_peer_table(data, active_peers))
    body.append('<h2 id="config">Configuration: what it does</h2>')
    body.append(_findings(data.audit, ("info",)))
    if data.retention_rows:
        body.append(f'<p class="note">Older rows were removed {data.retention_rows} time(s) under the retention '
                    "period; each removal is itself a row of the log.</p>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>Privacy oversight report – {_e(Path(data.config).name)}</title><style>{_CSS}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(config_path: Path, out: Path, anchor: tuple[int, str] | None = None, since: str | None = None,
                 now: datetime | None = None) -> ReportData:
    """Gather, render and write the report to ``out`` (mode 0600, atomically); returns what it showed."""
    from matcher.storage.secrets_store import write_private

    data = gather(config_path, anchor, since, now)
    write_private(Path(out), render(data).encode("utf-8"))
    return data
