"""``matcher audit-config``: what a config discloses, to whom, and its weaknesses, in plain words.

The audit reads the config's TOML itself (not only through the strict loader), so
it can report on settings the loader would refuse and on settings other protocols
add (e.g. ``paillier_key_bits``). Every finding has a stable ``id``, a severity
(``error``, ``warning``, ``info``), a message a non-engineer can act on, and the
fix. The JSON form (:meth:`AuditReport.to_json`, format ``matcher-audit/1``) is
stable so a deployment pipeline can gate on it; README lists every id.

How "TLS disabled" is expressed: a config without a ``[tls]`` table has no mutual
TLS. The service then refuses to start unless run with ``--insecure`` (a
development flag), and the audit reports ``tls-disabled`` as an error.

This module runs the checks in order; the findings per topic are in
``protocol_checks`` (protocols, reveal, keyed-hash, hashes, Paillier), ``peer_checks``
(TLS, peers and budgets, limits, rotation, metrics), ``storage_checks`` (records
database, session log) and ``key_checks`` (match keys and their measurement);
``findings`` holds the report itself.
"""

from __future__ import annotations

from pathlib import Path

from matcher.audit.findings import FORMAT, AuditReport, Finding, Severity, read_raw
from matcher.audit.key_checks import _audit_match_keys, describe_key, key_strength, measure_keys
from matcher.audit.peer_checks import (
    _audit_dask,
    _audit_metrics,
    _audit_peers,
    _audit_responder_pin,
    _audit_rotation,
    _audit_server_limits,
    _audit_tls,
)
from matcher.audit.protocol_checks import _audit_hashes, _audit_keyed_hash, _audit_paillier, _audit_protocols
from matcher.audit.storage_checks import _audit_insecure_runs, _audit_records_source, _audit_session_log
from matcher.errors import MatcherError

__all__ = [
    "FORMAT", "AuditReport", "Finding", "Severity", "audit_config", "describe_key", "key_strength", "measure_keys",
    "read_raw",
]


def audit_config(path: Path, records: Path | None = None) -> AuditReport:
    """Audit the config at ``path`` (responder or requester); ``records`` also measures the match keys."""
    raw = read_raw(path)
    role = "responder" if "responder" in raw else "requester"
    rep = AuditReport(str(path), role)
    cfg = None
    try:
        from matcher.config import load_requester_config, load_responder_config

        cfg = (load_responder_config if role == "responder" else load_requester_config)(Path(path))
    except MatcherError as exc:
        rep.add("config-invalid", "error", f"the service would refuse this config: {exc}",
                "correct the settings named above (unknown settings are refused so a typo cannot turn a "
                "protection off)")
    base = Path(path).parent
    settings = section if isinstance(section := raw.get(role), dict) else {}
    _audit_protocols(rep, raw, role, settings)
    _audit_tls(rep, raw, base)
    if role == "responder":
        _audit_peers(rep, raw, base)
        _audit_server_limits(rep, settings)
        _audit_rotation(rep, raw, settings)
        _audit_metrics(rep, raw)
    _audit_responder_pin(rep, role, settings)
    _audit_dask(rep, role, settings)
    _audit_session_log(rep, role, settings)
    _audit_records_source(rep, raw)
    _audit_insecure_runs(rep, role, settings, base)
    _audit_keyed_hash(rep, raw, role, settings, base)
    _audit_hashes(rep, raw)
    _audit_paillier(rep, raw)
    _audit_match_keys(rep, raw)
    if records is not None:
        if cfg is None:
            rep.add("records-not-measured", "warning", "the match keys were not measured on your records because "
                    "the config is not valid", "fix config-invalid first")
        else:
            measure_keys(rep, cfg, Path(records))
    return rep
