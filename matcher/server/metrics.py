"""Prometheus metrics of a running responder (optional: ``[metrics] listen = "127.0.0.1:9464"``).

What is exported, and why it is safe to export: counts, sizes, durations and ages,
labelled only by the *configured* peer agency name, the protocol name, the gRPC
outcome name and a refusal reason taken from matcher's own exception types. Every
label value comes from a small fixed set (anything unexpected becomes ``unknown``
or ``other``), so a peer cannot inject label values or grow the number of series,
and no label ever carries identity data, a token, a tag, a key, a case reference,
a session id or a client address.

The endpoint is plain HTTP without authentication (as Prometheus exporters are):
bind it to loopback or to the monitoring network only; ``audit-config`` warns
when it listens on every interface.

Metric names (stable; documented in docs/operations.md):

* ``matcher_sessions_total{peer,protocol,outcome}`` sessions ended, by outcome
  (``OK`` or the gRPC status name)
* ``matcher_elements_evaluated_total{peer,protocol}`` elements (tokens) the responder evaluated
* ``matcher_refusals_total{peer,reason}`` sessions and policy requests refused, by reason
* ``matcher_session_duration_seconds{protocol,outcome}`` histogram of session durations
* ``matcher_sessions_active`` sessions running now
* ``matcher_budget_remaining_elements{peer}`` / ``matcher_budget_daily_elements{peer}``
  what is left of each budgeted peer's daily budget (UTC day), and the budget
* ``matcher_key_epoch_age_seconds`` age of the key epoch in force
* ``matcher_setup_entries`` entries in the epoch's setup (watchlist tokens)
* ``matcher_build_info{version,group_backend,python}`` always 1
"""

from __future__ import annotations

import logging
import platform
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from matcher import __version__
from matcher.config import PROTOCOLS
from matcher.errors import MatcherError
from matcher.protocols import ecdh

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from matcher.server.state import ResponderState

log = logging.getLogger("matcher.metrics")

#: Session durations: from a fraction of a second (small ecdh sessions) to the 1 h default cap.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))

#: Outcome names a session can end with (gRPC status names); anything else is "other".
_OUTCOMES = frozenset(
    {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
     "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
     "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
)


def group_backend() -> str:
    """The ristretto255 implementation the ecdh kernels run on (``ecdh.GROUP_BACKEND``, read at each scrape)."""
    return str(getattr(ecdh, "GROUP_BACKEND", "libsodium-portable"))


def refusal_reason(exc: BaseException) -> str:
    """A refusal's reason as a label: the snake_case name of matcher's exception type (a fixed set).

    ``BudgetExhausted`` -> ``budget_exhausted``, ``PeerNotAllowed`` -> ``peer_not_allowed``;
    anything that is not a MatcherError is ``internal``.
    """
    if not isinstance(exc, MatcherError):
        return "internal"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


class ResponderMetrics:
    """The responder's metrics in their own registry; the servicer calls the hooks below.

    The hooks never raise: a metrics problem must not end a session.
    """

    def __init__(self, state: ResponderState, active_sessions=None) -> None:
        self.state = state
        self._peers = {p.name: p for p in state.config.peers}
        self.active_sessions = active_sessions  # callable -> int (the servicer's running sessions)
        self.registry = CollectorRegistry(auto_describe=True)
        self.sessions = Counter(
            "matcher_sessions_total", "Sessions ended, by peer agency, protocol and outcome (OK or gRPC status)",
            ["peer", "protocol", "outcome"], registry=self.registry,
        )
        self.elements = Counter(
            "matcher_elements_evaluated_total",
            "Elements (tokens) the responder evaluated, by peer agency and protocol",
            ["peer", "protocol"], registry=self.registry,
        )
        self.refusals = Counter(
            "matcher_refusals_total", "Sessions and policy requests refused, by peer agency and reason",
            ["peer", "reason"], registry=self.registry,
        )
        self.duration = Histogram(
            "matcher_session_duration_seconds", "Session duration, by protocol and outcome",
            ["protocol", "outcome"], buckets=DURATION_BUCKETS, registry=self.registry,
        )
        self.registry.register(_StateCollector(self))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- label values: from fixed sets only ----------------------------------------------
    def use_state(self, state: ResponderState) -> None:
        """After a reload: read budgets, epoch and peers from the new state (metric names stay)."""
        self._peers = {p.name: p for p in state.config.peers}
        self.state = state

    def peer_label(self, peer: str | None) -> str:
        """The configured peer name; ``insecure`` in development mode; ``unknown`` otherwise."""
        if peer in self._peers:
            return peer
        if peer and peer.startswith("insecure:"):
            return "insecure"
        return "unknown"

    @staticmethod
    def protocol_label(protocol: str | None) -> str:
        return protocol if protocol in PROTOCOLS else "other"

    @staticmethod
    def outcome_label(outcome: str | None) -> str:
        return outcome if outcome in _OUTCOMES else "other"

    # -- hooks ---------------------------------------------------------------------------
    def session_ended(
        self, peer: str | None, protocol: str | None, outcome: str, elements: int, seconds: float,
        refusal: BaseException | None = None,
    ) -> None:
        """One session is over: count it, its elements, its duration and its refusal reason."""
        try:
            p, proto, out = self.peer_label(peer), self.protocol_label(protocol), self.outcome_label(outcome)
            self.sessions.labels(p, proto, out).inc()
            if elements:
                self.elements.labels(p, proto).inc(elements)
            self.duration.labels(proto, out).observe(max(0.0, seconds))
            if refusal is not None:
                self.refusals.labels(p, refusal_reason(refusal)).inc()
        except Exception:  # pragma: no cover - a metrics fault must not end a session
            log.exception("metrics: a session could not be counted")

    def refused(self, peer: str | None, exc: BaseException) -> None:
        """A request outside a session (GetPolicy) was refused."""
        try:
            self.refusals.labels(self.peer_label(peer), refusal_reason(exc)).inc()
        except Exception:  # pragma: no cover
            log.exception("metrics: a refusal could not be counted")

    # -- the HTTP endpoint ---------------------------------------------------------------
    def serve(self, listen: str) -> int:
        """Serve ``/metrics`` on ``listen`` (HOST:PORT; port 0 picks a free one); returns the bound port."""
        from prometheus_client import start_http_server

        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        self._server, self._thread = start_http_server(int(port), addr=host, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        """Stop the HTTP endpoint (if it was started)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _StateCollector(Collector):
    """Values read from the responder's state at each scrape: budgets, epoch, setup, build."""

    def __init__(self, metrics: ResponderMetrics) -> None:
        self._m = metrics

    def describe(self) -> Iterator:
        return iter(())  # computed at collection time; nothing to pre-register

    def collect(self) -> Iterator:
        m = self._m
        state = m.state
        active = GaugeMetricFamily("matcher_sessions_active", "Sessions running now")
        active.add_metric([], float(m.active_sessions() if m.active_sessions else 0))
        yield active

        left = GaugeMetricFamily(
            "matcher_budget_remaining_elements", "Elements left of the peer's daily budget (UTC day)", labels=["peer"]
        )
        budget = GaugeMetricFamily("matcher_budget_daily_elements", "The peer's daily budget in elements",
                                   labels=["peer"])
        for name, peer in m._peers.items():
            if peer.daily_budget is None:
                continue
            try:
                spent = state.budgets.spent(name)
            except Exception:  # the ledger is busy or gone: leave the series out of this scrape
                continue
            left.add_metric([name], float(max(0, peer.daily_budget - spent)))
            budget.add_metric([name], float(peer.daily_budget))
        yield left
        yield budget

        epoch = state.in_force
        if epoch is not None:
            age = GaugeMetricFamily("matcher_key_epoch_age_seconds", "Age of the key epoch in force")
            age.add_metric([], max(0.0, time.time() - epoch.key.created))
            yield age
            size = GaugeMetricFamily("matcher_setup_entries", "Entries in the key epoch's setup (watchlist tokens)")
            size.add_metric([], float(len(epoch.setup)))
            yield size

        info = InfoMetricFamily("matcher_build", "matcher version, group backend and Python version")
        info.add_metric([], {"version": __version__, "group_backend": group_backend(),
                             "python": platform.python_version()})
        yield info
