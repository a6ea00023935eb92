"""The audit report's charts (matplotlib, returned as inline SVG): sessions per day, tokens against the
daily budget, how sessions ended, hits per session."""

from __future__ import annotations

import io
from collections import Counter
from datetime import date, datetime

from matcher.audit.report_data import OUTCOME_WORDS, REFUSALS, UNKNOWN_PEER, Session

#: Colours of the charts (the browser test looks for them in the rendered page).
PEER_COLOURS = ("#1b6ca8", "#e08a00", "#2e8b57", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#d35400")
SERVED_COLOUR = "#3a7dc9"
NOT_SERVED_COLOUR = "#f0a35e"
BUDGET_COLOUR = "#b00020"
COMPLETED_COLOUR = "#2f9e44"
REFUSED_COLOUR = "#d9480f"
OTHER_END_COLOUR = "#868e96"
HITS_COLOUR = "#6741d9"


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
