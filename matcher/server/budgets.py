"""Per-peer daily budgets, kept in SQLite so they survive restarts (DESIGN §4).

A budget counts the *elements* (tokens) a peer announces in its Hello, over all its
sessions in one UTC calendar day: that is what the responder can see, and what a
peer that enumerates guesses through the service must spend (one element per
guess). A record yields one element per match key it has, so a budget of N
elements covers at most N records.

The day is the UTC calendar day: the budget is renewed at 00:00 UTC (not a rolling
24 hours), the same moment for every peer, which is easy to explain and to check.

Reservation is atomic: the spent amount is read, checked and increased in one
``BEGIN IMMEDIATE`` transaction, so parallel sessions (threads or processes) cannot
overspend. The amount is charged when the session is accepted and is not refunded
if the session fails later: a peer that aborts after getting replies has still had
its guesses evaluated.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from matcher.errors import BudgetExhausted, ConfigError
from matcher.files import ensure_parent, private_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (
    peer TEXT NOT NULL,
    day TEXT NOT NULL,
    elements INTEGER NOT NULL,
    PRIMARY KEY (peer, day)
);
"""

BUDGET_FILE = "budgets.db"


def utc_day(now: datetime) -> str:
    """The UTC calendar day of ``now`` (YYYY-MM-DD): the budget period."""
    return now.astimezone(UTC).date().isoformat()


def next_reset(now: datetime) -> datetime:
    """When the budget of ``now``'s day is renewed: the next 00:00 UTC."""
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class BudgetLedger:
    """What each peer has spent per UTC day, in one SQLite file (a connection per call: thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            ensure_parent(self.path)
            private_sqlite(self.path)  # 0600 before SQLite creates it (and its -wal/-shm) with the umask
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"budget ledger {self.path} cannot be opened: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def spent(self, peer: str, now: datetime | None = None) -> int:
        """Elements ``peer`` has spent on ``now``'s UTC day."""
        now = now or datetime.now(UTC)
        conn = self._connect()
        try:
            row = conn.execute("SELECT elements FROM spend WHERE peer = ? AND day = ?", (peer, utc_day(now))).fetchone()
            return int(row[0]) if row else 0
        finally:
            conn.close()

    def reserve(self, peer: str, elements: int, daily_budget: int, now: datetime | None = None) -> int:
        """Charge ``elements`` to ``peer``'s budget for today, or raise BudgetExhausted.

        Returns what is left today after the charge. Nothing is charged on refusal.
        """
        now = now or datetime.now(UTC)
        day = utc_day(now)
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT elements FROM spend WHERE peer = ? AND day = ?", (peer, day)).fetchone()
                spent = int(row[0]) if row else 0
                if spent + elements > daily_budget:
                    conn.execute("ROLLBACK")
                    resets = next_reset(now).isoformat(timespec="seconds")
                    raise BudgetExhausted(
                        f"daily budget of peer {peer} exhausted: {spent} of {daily_budget} elements spent today "
                        f"(UTC), this request needs {elements}; the budget resets at {resets}",
                        resets_at=resets,
                    )
                conn.execute(
                    "INSERT INTO spend (peer, day, elements) VALUES (?, ?, ?) "
                    "ON CONFLICT(peer, day) DO UPDATE SET elements = elements + excluded.elements",
                    (peer, day, elements),
                )
                conn.execute("DELETE FROM spend WHERE day < ?", (utc_day(now - timedelta(days=31)),))
                conn.execute("COMMIT")
            except sqlite3.Error:
                conn.execute("ROLLBACK")
                raise
            return daily_budget - spent - elements
        finally:
            conn.close()
