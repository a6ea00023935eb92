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
"""

from __future__ import annotations

import html
import io
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from matcher import __version__
from matcher.audit.config_audit import AuditReport, Finding, audit_config, read_raw
from matcher.errors import MatcherError
from matcher.storage import session_log

#: Colours of the charts (the browser test looks for them in the rendered page).
PEER_COLOURS = ("#1b6ca8", "#e08a00", "#2e8b57", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#d35400")
SERVED_COLOUR = "#3a7dc9"
NOT_SERVED_COLOUR = "#f0a35e"
BUDGET_COLOUR = "#b00020"
COMPLETED_COLOUR = "#2f9e44"
REFUSED_COLOUR = "#d9480f"
OTHER_END_COLOUR = "#868e96"
HITS_COLOUR = "#6741d9"

#: How a session ended, in words a non-engineer can read (gRPC status names from the log).
OUTCOME_WORDS = {
    "OK": "completed",
    "RESOURCE_EXHAUSTED": "refused: too large, too many at once, or daily budget spent",
    "PERMISSION_DENIED": "refused: certificate not on the allowlist",
    "FAILED_PRECONDITION": "refused: match keys or settings differ",
    "INVALID_ARGUMENT": "refused: malformed or repeated data",
    "DEADLINE_EXCEEDED": "stopped: took longer than allowed",
    "CANCELLED": "ended by the requester (cancelled or disconnected)",
    "INTERNAL": "failed: internal error (see the service's log)",
    "NO_END": "no end recorded (a crash, or still running)",
}
#: Outcomes that mean the responder said no (as opposed to completing, or the requester leaving).
#: How a session whose certificate was not recognised is shown (the log has no agency name for it).
UNKNOWN_PEER = "(unknown certificate)"
REFUSALS = {"RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "FAILED_PRECONDITION", "INVALID_ARGUMENT"}


@dataclass
class Session:
    """One session as the log records it (no identity data: counts, names of agencies, outcome)."""

    session_id: str | None
    peer: str
    time: str
    protocol: str = ""
    request_size: int | None = None
    elements: int | None = None
    hit_count: int | None = None
    outcome: str = "NO_END"

    @property
    def day(self) -> date:
        return datetime.fromisoformat(self.time).astimezone(UTC).date()


@dataclass
class ReportData:
    """Everything the page shows, gathered before any HTML is written."""

    config: str
    role: str
    audit: AuditReport
    log_path: Path | None
    log_shown: str = ""  # the session log's path as the config names it
    verified: session_log.VerifyReport | None = None
    log_problem: str | None = None
    sessions: list[Session] = field(default_factory=list)
    retention_rows: int = 0
    budgets: dict[str, int | None] = field(default_factory=dict)
    since: str | None = None
    generated: str = ""


def _log_path(config_path: Path, raw: dict[str, Any], role: str) -> Path | None:
    settings = section if isinstance(section := raw.get(role), dict) else {}
    value = settings.get("session_log")
    if not isinstance(value, str) or not value:
        return None
    p = Path(value)
    return p if p.is_absolute() else (Path(config_path).parent / p).resolve()


def _budgets(raw: dict[str, Any]) -> dict[str, int | None]:
    peers = section if isinstance(section := raw.get("peers"), list) else []
    out: dict[str, int | None] = {}
    for p in peers:
        if isinstance(p, dict) and isinstance(p.get("name"), str):
            budget = p.get("daily_budget")
            out[p["name"]] = budget if isinstance(budget, int) and not isinstance(budget, bool) else None
    return out


def sessions_from_rows(rows: list[dict[str, Any]]) -> tuple[list[Session], int]:
    """Sessions from the log's rows (oldest first), and how many retention rows there are.

    A session is its ``end`` row merged with its ``start`` row; a start row without an end
    row is a session that was cut short (or still runs). A requester's start row carries
    no session id: it belongs to the next end row of the same peer that had no start row.
    """
    by_id: dict[str, Session] = {}
    pending: dict[str, list[Session]] = defaultdict(list)  # requester start rows awaiting their end row
    sessions: list[Session] = []
    retention = 0
    for r in rows:
        event = r.get("event")
        if event == "retention":
            retention += 1
            continue
        if event not in ("start", "end"):
            continue
        sid = r.get("session_id") if isinstance(r.get("session_id"), str) else None
        peer = str(r.get("peer") or "?")
        peer = UNKNOWN_PEER if peer == "?" else peer
        s = by_id.get(sid) if sid else None
        if s is None and event == "end" and pending[peer]:
            s = pending[peer].pop(0)
        if s is None:
            s = Session(sid, peer, str(r.get("time")))
            sessions.append(s)
            if event == "start" and sid is None:
                pending[peer].append(s)
        if sid:
            s.session_id = sid
            by_id[sid] = s
        s.protocol = str(r.get("protocol") or s.protocol)
        if isinstance(r.get("request_size"), int):
            s.request_size = r["request_size"]
        if event == "end":
            s.time = str(r.get("time") or s.time)
            s.outcome = str(r.get("outcome") or "UNKNOWN")
            s.elements = r.get("elements") if isinstance(r.get("elements"), int) else None
            s.hit_count = r.get("hit_count") if isinstance(r.get("hit_count"), int) else None
    return sorted(sessions, key=lambda s: s.time), retention


def gather(config_path: Path, anchor: tuple[int, str] | None = None, since: str | None = None,
           now: datetime | None = None) -> ReportData:
    """Audit the config, verify and read its session log. ConfigError when the config cannot be read at all."""
    raw = read_raw(Path(config_path))
    role = "responder" if "responder" in raw else "requester"
    audit = audit_config(Path(config_path))
    if now is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():  # reproducible output (docs sample)
        now = datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), UTC)
    data = ReportData(str(config_path), role, audit, _log_path(Path(config_path), raw, role), budgets=_budgets(raw),
                      since=since, generated=(now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M"))
    settings = section if isinstance(section := raw.get(role), dict) else {}
    data.log_shown = str(settings.get("session_log") or "")
    if data.log_path is None:
        data.log_problem = "This config keeps no session log, so there is nothing to show about sessions."
    elif not data.log_path.is_file():
        data.log_problem = f"The session log {data.log_path} does not exist yet (no session has been served)."
    else:
        try:
            data.verified = session_log.verify(data.log_path, anchor)
            data.sessions, data.retention_rows = sessions_from_rows(list(session_log.rows(data.log_path, since)))
        except MatcherError as exc:
            data.log_problem = f"The session log cannot be read: {exc}"
    return data


# -- charts -------------------------------------------------------------------------------

def _figure(height: float = 3.2, width: float = 9.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def _svg(fig) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "matcher-audit-report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE (inline in HTML)


def _date_axis(ax, days: list[date], right: float = 0.6) -> None:
    """Whole UTC days on the x axis, from the first to the last day with a session (half a day of margin)."""
    import matplotlib.dates as mdates

    first, last = min(days), max(days)
    span = (last - first).days + 1
    ax.set_xlim(mdates.date2num(first) - 0.6, mdates.date2num(last) + right)
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, -(-span // 10))))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b\n%Y" if span <= 1 else "%d %b"))
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def _peer_colours(peers: list[str]) -> dict[str, str]:
    known = [p for p in peers if p != UNKNOWN_PEER]
    colours = {p: PEER_COLOURS[i % len(PEER_COLOURS)] for i, p in enumerate(known)}
    colours[UNKNOWN_PEER] = OTHER_END_COLOUR
    return colours


def chart_sessions_per_day(sessions: list[Session], peers: list[str]) -> str:
    """Stacked bars: sessions per UTC day, one colour per peer agency."""
    counts: dict[str, Counter] = {p: Counter() for p in peers}
    for s in sessions:
        counts[s.peer][s.day] += 1
    days = sorted({s.day for s in sessions})
    fig = _figure()
    ax = fig.add_subplot()
    bottom = [0] * len(days)
    colours = _peer_colours(peers)
    for p in peers:
        heights = [counts[p][d] for d in days]
        ax.bar(days, heights, bottom=bottom, color=colours[p], label=p, width=0.8)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_ylabel("sessions")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(title="agency", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    _date_axis(ax, days)
    return _svg(fig)


def chart_tokens_vs_budget(sessions: list[Session], peers: list[str], budgets: dict[str, int | None]) -> str:
    """Per peer: tokens asked per day (served / not served) with the daily budget as a line."""
    fig = _figure(height=2.4 * len(peers) + 0.4)
    axes = fig.subplots(len(peers), 1, sharex=True, squeeze=False)[:, 0]
    days = sorted({s.day for s in sessions})
    for ax, p in zip(axes, peers, strict=True):
        served: Counter[date] = Counter()
        other: Counter[date] = Counter()
        for s in sessions:
            if s.peer == p and s.request_size:
                (served if s.outcome == "OK" else other)[s.day] += s.request_size
        ax.bar(days, [served[d] for d in days], color=SERVED_COLOUR, width=0.8, label="answered")
        ax.bar(days, [other[d] for d in days], bottom=[served[d] for d in days], color=NOT_SERVED_COLOUR,
               width=0.8, label="not answered")
        budget = budgets.get(p)
        if budget:
            ax.axhline(budget, color=BUDGET_COLOUR, linestyle="--", linewidth=1.5, label=f"daily budget\n({budget:,})")
        ax.set_title(f"{p}" + ("" if budget else " (no daily budget set)"), loc="left", fontsize=10)
        ax.set_ylabel("tokens per day")
        ax.yaxis.set_major_formatter(_thousands())
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        _date_axis(ax, days)
    return _svg(fig)


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:,.0f}")


def chart_outcomes(sessions: list[Session]) -> str:
    """Horizontal bars: how many sessions ended which way, in words."""
    counts = Counter(s.outcome for s in sessions)
    order = sorted(counts, key=lambda o: (o != "OK", -counts[o], o))
    labels = [OUTCOME_WORDS.get(o, o.replace("_", " ").lower()) for o in order]
    colours = [COMPLETED_COLOUR if o == "OK" else REFUSED_COLOUR if o in REFUSALS else OTHER_END_COLOUR
               for o in order]
    fig = _figure(height=0.45 * len(order) + 1.0)
    ax = fig.add_subplot()
    bars = ax.barh(labels[::-1], [counts[o] for o in order][::-1], color=colours[::-1])
    ax.bar_label(bars, padding=3, fontsize=9)
    ax.set_xlabel("sessions")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def chart_hits(sessions: list[Session], peers: list[str]) -> str:
    """Dots: hits of each session whose hit count this side knows, over time, by peer."""
    fig = _figure()
    ax = fig.add_subplot()
    markers = ("o", "s", "^", "D", "v", "P", "X", "*")
    for i, p in enumerate(peers):
        known = [s for s in sessions if s.peer == p and s.hit_count is not None]
        if known:
            ax.scatter([datetime.fromisoformat(s.time) for s in known], [s.hit_count for s in known],
                       color=HITS_COLOUR, marker=markers[i % len(markers)], label=p, s=36)
    ax.set_ylabel("hits in the session")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(title="agency", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    _date_axis(ax, [s.day for s in sessions], right=1.1)  # dots sit at their time of day
    return _svg(fig)


# -- the page -----------------------------------------------------------------------------

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
