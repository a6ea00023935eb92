"""What the config audit reports: ``Finding``, ``AuditReport`` (text and the stable JSON form) and the raw TOML reader.

The audit reads the config's TOML itself (``read_raw``), not only through the strict loader, so it can
report on settings the loader would refuse; ``_walk`` and ``_strings`` look through that raw dict.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from matcher.errors import ConfigError

Severity = Literal["error", "warning", "info"]
FORMAT = "matcher-audit/1"


@dataclass(frozen=True)
class Finding:
    """One thing the privacy officer should know: ``id`` is stable, ``fix`` says what to change."""

    id: str
    severity: Severity
    message: str
    fix: str | None = None
    subject: str | None = None  # the setting, peer or match key concerned


@dataclass
class AuditReport:
    """All findings about one config, plus measurements on the agency's own records if asked."""

    config: str
    role: str
    findings: list[Finding] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, id: str, severity: Severity, message: str, fix: str | None = None, subject: str | None = None
    ) -> None:
        self.findings.append(Finding(id, severity, message, fix, subject))

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def exit_status(self) -> int:
        """0 without errors, 1 with errors (2, unreadable, is raised as ConfigError before a report exists)."""
        return 1 if self.count("error") else 0

    def ids(self, severity: Severity | None = None) -> set[str]:
        return {f.id for f in self.findings if severity is None or f.severity == severity}

    def to_json(self) -> str:
        """The stable machine-readable form (documented in README, format ``matcher-audit/1``)."""
        order = {"error": 0, "warning": 1, "info": 2}
        return json.dumps(
            {
                "format": FORMAT,
                "config": self.config,
                "role": self.role,
                "ok": self.exit_status == 0,
                "counts": {s: self.count(s) for s in ("error", "warning", "info")},
                "findings": [asdict(f) for f in sorted(self.findings, key=lambda f: order[f.severity])],
                "measurements": self.measurements,
            },
            indent=2,
            ensure_ascii=False,
        )

    def to_text(self) -> str:
        """The report for people: errors first, each with what to do."""
        lines = [f"Audit of {self.config} ({self.role} config)", ""]
        for sev, title in (("error", "ERRORS (must fix)"), ("warning", "WARNINGS (should fix or accept)"),
                           ("info", "WHAT THIS CONFIG DOES")):
            items = [f for f in self.findings if f.severity == sev]
            if not items:
                continue
            lines.append(title)
            for f in items:
                lines.append(f"  [{f.id}]{' ' + f.subject + ':' if f.subject else ''} {f.message}")
                if f.fix:
                    lines.append(f"      fix: {f.fix}")
            lines.append("")
        if self.measurements:
            lines.append("MATCH KEYS ON YOUR OWN RECORDS")
            for m in self.measurements:
                lines.append(
                    f"  {m['match_key']}: {m['records_with_key']} of {m['records']} records yield it "
                    f"({100 * m['coverage']:.1f}%); {100 * m['shared_share']:.2f}% of them share their token "
                    "with another record"
                )
            lines.append("")
        lines.append(f"{self.count('error')} error(s), {self.count('warning')} warning(s).")
        return "\n".join(lines)


def read_raw(path: Path) -> dict[str, Any]:
    """The config's TOML as a dict; ConfigError (exit 2) with the line and reason when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, value) in the raw config, tables and arrays of tables included."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*path, str(k)), v
            yield from _walk(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, dict):
                yield from _walk(v, (*path, str(i)))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
