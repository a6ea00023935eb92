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
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from matcher.errors import ConfigError, MatcherError

Severity = Literal["error", "warning", "info"]
FORMAT = "matcher-audit/1"

#: Fields that on their own point at one person (a document) or nearly (a name).
from matcher.identity.match_keys import parse_field  # noqa: E402

DOCUMENT_FIELDS = {"document_number"}
NAME_FIELDS = {
    "given_names", "family_name", "name_tokens", "name_keys", "name_keys_fine", "name_pairs", "name_initials",
}
#: n3 name fields: romanisation skeletons, so names that merely sound alike also meet.
SKELETON_FIELDS = {"name_keys", "name_keys_fine", "name_pairs", "name_initials"}
#: Fields that narrow a name down to a person.
NARROWING_FIELDS = {"date_of_birth", "date_of_birth_or_swapped", "place_of_birth"}

#: Hash names that are not cryptographic (or no longer collision resistant): never for tokens.
NON_CRYPTO_HASH = re.compile(r"xx(hash|h)|murmur|crc|fnv|city|farm|metro|wyhash|djb|adler|md5|sha-?1(?!\d)", re.I)
#: Settings where a fast hash is fine: bucketing and sharding, not identity.
BUCKETING_WORDS = ("bin", "bucket", "shard", "partition")

#: Share of a key's records that share their token with another record above which it is "not distinctive".
SHARED_TOKEN_WARN = 0.01

_FIELD_WORDS = {
    "given_names": "given names",
    "family_name": "family name",
    "name_tokens": "names (all of them, in any order)",
    "given_initial": "first initial",
    "date_of_birth": "date of birth",
    "date_of_birth_or_swapped": "date of birth (or with day and month swapped)",
    "year_of_birth": "year of birth",
    "sex": "sex",
    "nationality": "nationality",
    "document_number": "document number",
    "document_country": "document's issuing country",
    "place_of_birth": "place of birth",
    "name_keys": "romanisation skeleton of the names (all of them, in any order, any column)",
    "name_keys_fine": "romanisation skeleton with vowels of the names (all of them, in any order, any column)",
    "name_pairs": "romanisation skeletons of a first name word and one word of the other column",
    "name_initials": "romanisation skeleton of one first name word and the initial of the other",
}

_REVEAL_WORDS = {
    "requester": "The requester learns which of its own records the responder also holds, by which match key, "
    "and the responder's case reference for each; it also learns how many entries the responder's watchlist "
    "has. The responder learns only how many tokens were asked, not which.",
    "cardinality": "The requester learns only how many of its tokens the responder also holds (no list, no case "
    "references); with ecdh the responder does the counting, so this holds whatever the requester sends. The "
    "responder learns how many tokens were asked and (ecdh) the count.",
    "both": "The requester learns its hits with case references; the responder ALSO learns which of its own "
    "records were hit (written to its hits file). The responder trusts the requester to report all its hits "
    "(it can withhold some); it cannot be told about a record the requester did not actually ask about.",
}


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


def describe_key(fields: list[str]) -> str:
    """What a hit on a key with these fields means, in plain words."""
    words = " and ".join(_field_words(f) for f in fields)
    return f"a hit means both agencies hold a record with the same {words}"


_TRANSFORM_WORDS = {
    "metaphone": "sound (metaphone code) of the {}",
    "nysiis": "sound (NYSIIS code) of the {}",
    "soundex": "sound (Soundex code) of the {}",
    "folded_soundex": "sound (Soundex code, romanisation variants folded) of the {}",
    "initial": "first letter of the {}",
    "first": "first word of the {}",
    "year": "year of the {}",
}


def _field_words(spec: str) -> str:
    """'metaphone(first(given_names))' -> 'sound (metaphone code) of the first word of the given names'."""
    transforms, base = parse_field(spec)
    words = _FIELD_WORDS.get(base, base)
    for t in transforms:  # innermost first
        words = _TRANSFORM_WORDS.get(t, t + " of the {}").format(words)
    return words.removeprefix("the ")


def key_strength(fields: list[str]) -> Literal["document", "identity", "weak", "not-identity"]:
    """How close a key comes to identifying one person (a coarse, explainable rule).

    document: contains a document number. identity: a name narrowed by date or place
    of birth. weak: a name alone (or with only year, sex, nationality). not-identity:
    no name and no document number (date of birth alone, sex + nationality, ...).
    """
    fs = set()
    for spec in fields:
        # A transformed field counts as its base field, except that an initial or a
        # year is no longer a name or a full date.
        transforms, base = parse_field(spec)
        if base in NAME_FIELDS and "initial" in transforms:
            continue
        if base == "date_of_birth" and "year" in transforms:
            base = "year_of_birth"
        fs.add(base)
    if fs & DOCUMENT_FIELDS:
        return "document"
    if not fs & NAME_FIELDS:
        return "not-identity"
    if fs & NARROWING_FIELDS:
        return "identity"
    return "weak"


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


def _protocols(raw: dict, role: str, settings: dict) -> list[str]:
    if role == "responder":
        return _strings(settings.get("protocols", ["ecdh"]))
    return _strings(settings.get("protocol", "ecdh"))


def _audit_protocols(rep: AuditReport, raw: dict, role: str, settings: dict) -> None:
    protocols = _protocols(raw, role, settings)
    reveal = settings.get("reveal", "requester")
    words = {
        "ecdh": "Diffie-Hellman private set intersection on the ristretto255 curve (about 128-bit security; "
        "the responder's key is rotated per epoch, the requester's is new for every session). Neither side can "
        "test guesses offline; every guess costs a query the responder sees and counts against the budget.",
        "paillier": "Polynomial private set intersection with Paillier encryption under the requester's "
        "key. The responder cannot decrypt anything; the requester learns only hits.",
        "keyed-hash": "Both agencies compute HMAC-SHA-256 of their tokens under a shared secret and "
        "compare them. It protects against OUTSIDERS ONLY: the responder sees which of its own records hit "
        "whatever the reveal mode, and either agency, holding the secret, can test any guessed person against the "
        "other's tags offline.",
    }
    for p in protocols:
        rep.add(f"protocol-{p}", "info", words.get(p, f"{p}: a protocol this audit does not know"), subject=p)
    if role == "responder" and "paillier" in protocols:
        rep.add("paillier-unproven-key", "warning", "paillier runs under the requester's key: the requester proves "
                "its modulus is a product of two primes (80-round Paillier-Blum proof, checked before any work), but "
                "not that neither prime is small; with a deliberately unbalanced key (one prime just above the "
                "small-factor check) a requester could learn about 15 bits of the case reference of roughly 1 in 1,000 "
                "responder tokens it does not hold", "offer paillier only to peers you trust to run the released "
                "client, or offer ecdh only", subject="paillier")
    if reveal == "cardinality":
        rep.add("cardinality-split-requests", "info", "cardinality mode hides which tokens hit only within one "
                "session: a requester can send many one-token sessions and learn each one's answer; the per-session "
                "size and the daily budget bound how far it gets", subject="reveal")
    rep.add("reveal", "info", f"reveal = {reveal!r}: " + _REVEAL_WORDS.get(str(reveal), "unknown reveal mode"),
            subject="reveal")
    if reveal == "both":
        rep.add("reveal-both", "warning", "with reveal = \"both\" the responder agency also learns which of its "
                "own persons the requester holds; make sure the agreement between the agencies allows that",
                "use reveal = \"requester\" unless both agencies have agreed that the responder learns its hits",
                subject="reveal")
    for p in protocols:
        for mode_id, words_semi in _semi_honest(p, str(reveal)):
            rep.add(mode_id, "warning", words_semi, "see docs/security.md; prefer protocol ecdh with reveal "
                    "\"requester\" where the agencies do not trust each other", subject=p)
    rep.add("security-model", "info", "Security model (docs/security.md): ecdh holds against a peer that "
            "deviates from the protocol: a dishonest responder cannot make the requester report a false hit (labels "
            "bound to tokens, check elements; the session fails and the log says so), a dishonest requester learns "
            "at most its intersection (cardinality: a count) for the elements it paid for. The modes reported as "
            "semi-honest hold only while the peer runs the protocol as written. Limits: mTLS and the peer "
            "allowlist decide who may ask, the per-session size and daily budget cap how many guesses a peer can "
            "test and the work it causes, every received element is checked, and every session is in the "
            "hash-chained session log.")


def _semi_honest(protocol: str, reveal: str) -> list[tuple[str, str]]:
    """(finding id, words) for each property of ``protocol`` in ``reveal`` mode that holds only
    against a peer that follows the protocol (semi-honest); docs/security.md has the full model."""
    out: list[tuple[str, str]] = []
    if protocol == "keyed-hash":
        out.append(("semi-honest-keyed-hash", ("keyed-hash is semi-honest (and weaker): either agency, holding "
                    "the shared secret, can test any guessed person against the other's tags offline, and the "
                    "responder sees which of its records hit in every reveal mode")))
    if protocol == "paillier":
        out.append(("semi-honest-paillier", ("paillier is semi-honest against the requester: an unbalanced key "
                    "(see paillier-unproven-key) can leak bits of case references it does not hold; the replies "
                    "are not proven, so the requester relies on the responder evaluating its own watchlist (it "
                    "cannot forge a hit for a token it does not know: every bin has degree 2 or more). Each "
                    "coefficient can test two guesses (one per prime of the requester's key): it is charged 2")))
    if protocol == "ecdh" and reveal == "cardinality":
        out.append(("semi-honest-ecdh-cardinality", ("ecdh cardinality is semi-honest against the responder: "
                    "the requester cannot check the count it is sent, and a responder that deviates (a different "
                    "key per entry, one scalar multiplication per request element and entry) can learn which of "
                    "its own entries were hit, as with reveal = \"both\"; against the requester it holds "
                    "(a count only)")))
    if reveal == "both":
        out.append(("semi-honest-reveal-both", ("reveal = \"both\" is semi-honest against the requester: it can "
                    "withhold hits it should report (what it reports is checked: only its own points, evaluated "
                    "in the same session)")))
    return out


def _audit_tls(rep: AuditReport, raw: dict, base: Path) -> None:
    tls = raw.get("tls")
    if not isinstance(tls, dict):
        rep.add("tls-disabled", "error", "there is no [tls] table, so there is no mutual TLS: traffic is "
                "unencrypted and peers are not authenticated (the service would only run with --insecure)",
                "add [tls] with cert, key and ca (see README, 'Certificates')", subject="tls")
        return
    rep.add("tls", "info", "mutual TLS: this agency presents its certificate and accepts only peers whose "
            "certificate chains to the configured CA", subject="tls")
    key = tls.get("key")
    if isinstance(key, str):
        kp = Path(key) if Path(key).is_absolute() else base / key
        if kp.exists() and stat.S_IMODE(kp.stat().st_mode) & 0o077:
            rep.add("tls-key-readable", "error", f"the TLS private key {kp} can be read by other users",
                    f"chmod 600 {kp}", subject="tls.key")


def _bundle_size(raw: dict, base: Path) -> int | None:
    """How many CA certificates the [tls] ca bundle holds (None when it cannot be read here)."""
    tls = raw.get("tls")
    ca = tls.get("ca") if isinstance(tls, dict) else None
    if not isinstance(ca, str):
        return None
    path = Path(ca) if Path(ca).is_absolute() else base / ca
    try:
        return path.read_bytes().count(b"-----BEGIN CERTIFICATE-----")
    except OSError:
        return None


def _audit_peers(rep: AuditReport, raw: dict, base: Path) -> None:
    peers = [p for p in raw.get("peers", []) if isinstance(p, dict)] if isinstance(raw.get("peers"), list) else []
    if not peers:
        rep.add("no-peer-allowlist", "error", "no [[peers]]: there is no allowlist of agencies that may ask",
                "add one [[peers]] table per requester agency (name, san or common_name, ca_sha256, daily_budget)",
                subject="peers")
        return
    cas = _bundle_size(raw, base)
    for p in peers:
        name = str(p.get("name", "?"))
        budget, cap = p.get("daily_budget"), p.get("max_set_size")
        who = (f"subjectAltName {p.get('san')!r}" if p.get("san") else
               f"certificate CN {p.get('common_name')!r}" if p.get("common_name") else "its key pin")
        if p.get("cert_sha256"):
            bound = "pinned to one certificate"
        elif p.get("spki_sha256"):
            bound = "pinned to one key"
        elif p.get("ca_sha256") or p.get("ca"):
            bound = "issued by the named CA"
        else:
            bound = "from the only CA of the bundle" if cas == 1 else "from ANY CA of the bundle"
        rep.add("peer", "info", f"may ask as {who} ({bound}); daily budget "
                f"{budget if budget else 'none'} tokens; per-session limit {cap if cap else 'max_request_size'}; "
                f"at most {p.get('max_sessions') or 'max_sessions_per_peer'} concurrent sessions", subject=name)
        if not (p.get("ca_sha256") or p.get("ca") or p.get("spki_sha256") or p.get("cert_sha256")):
            rep.add("peer-not-bound", "error" if cas and cas > 1 else "warning",
                    f"peer {name} is identified by its name alone: any CA of the [tls] ca bundle could issue a "
                    f"certificate with that name and be served as {name}"
                    + (" (today the bundle holds one CA, so the service accepts it)" if cas == 1 else
                       " (the service refuses to start with several CAs and no binding)" if cas else ""),
                    "bind it: ca_sha256 = \"<SHA-256 of the issuing CA certificate>\" in its [[peers]] table, or "
                    "pin its key with spki_sha256", subject=name)
        if not p.get("san") and p.get("common_name") and not (p.get("spki_sha256") or p.get("cert_sha256")):
            rep.add("peer-cn-only", "info", f"peer {name} is named by its subject CN; a subjectAltName (san) is "
                    "the name TLS itself checks and is preferred", subject=name)
        if not budget:
            rep.add("no-peer-budget", "warning", f"peer {name} has no daily budget: it could test an unlimited "
                    "number of guessed persons per day", "set daily_budget (tokens per UTC day) in its [[peers]] "
                    "table", subject=name)


def _audit_server_limits(rep: AuditReport, settings: dict) -> None:
    total = settings.get("max_sessions", 64)
    per_peer = settings.get("max_sessions_per_peer", 8)
    hello = settings.get("hello_timeout_seconds", 10)
    rep.add("session-limits", "info", f"at most {total} concurrent sessions, {per_peer} per peer; a session that "
            f"sends no Hello within {hello} s is ended; only [[peers]] reach any service but health checks",
            subject="max_sessions")
    if isinstance(per_peer, int) and isinstance(total, int) and per_peer >= total:
        rep.add("per-peer-cap-is-total", "warning", f"max_sessions_per_peer ({per_peer}) is not below max_sessions "
                f"({total}): one peer can hold every session slot", "set max_sessions_per_peer below max_sessions",
                subject="max_sessions_per_peer")


def _audit_dask(rep: AuditReport, role: str, settings: dict) -> None:
    from matcher.parallel import dask_address_problem

    address = settings.get("dask_scheduler")
    if not isinstance(address, str) or not address:
        return
    problem = dask_address_problem(address, settings.get("dask_tls") if isinstance(settings.get("dask_tls"), dict)
                                   else None)
    if problem:
        rep.add("dask-plaintext", "error", problem, f"use a tls:// scheduler and set [{role}.dask_tls] ca, cert "
                "and key", subject="dask_scheduler")
    else:
        rep.add("dask", "info", f"batch kernels (which carry key material) run on the Dask cluster at {address}",
                subject="dask_scheduler")


def _audit_responder_pin(rep: AuditReport, role: str, settings: dict) -> None:
    if role != "requester":
        return
    if settings.get("responder_spki_sha256") or settings.get("responder_cert_sha256"):
        rep.add("responder-pinned", "info", "the responder must prove it holds the pinned key before any data is "
                "sent", subject="responder_spki_sha256")
    else:
        rep.add("responder-not-pinned", "info", "the responder is trusted by its certificate's CA and name only; "
                "pinning its key (responder_spki_sha256) protects against another certificate of a trusted CA",
                subject="responder_spki_sha256")


def _audit_insecure_runs(rep: AuditReport, role: str, settings: dict, base: Path) -> None:
    log = settings.get("session_log")
    if role != "responder" or not isinstance(log, str):
        return
    path = Path(log) if Path(log).is_absolute() else base / log
    if not path.exists():
        return
    from matcher.peer_auth import INSECURE_PEER
    from matcher.storage import session_log

    try:
        n = sum(1 for r in session_log.rows(path) if r.get("peer") == INSECURE_PEER and r.get("event") == "insecure")
    except Exception:
        return
    if n:
        rep.add("insecure-runs", "warning", f"the session log records {n} start(s) of `matcher serve --insecure` "
                "(plaintext, no peer authentication; loopback only, throw-away key epoch)",
                "make sure those were development runs; production runs never use --insecure",
                subject="session_log")


def _audit_rotation(rep: AuditReport, raw: dict, settings: dict) -> None:
    days = settings.get("key_rotation_days", 30)
    bound = (raw.get("audit") or {}).get("max_key_rotation_days", 90) if isinstance(raw.get("audit"), dict) else 90
    rep.add("key-rotation", "info", f"the responder's matching key is replaced every {days} day(s); a requester "
            "cannot combine answers across epochs", subject="key_rotation_days")
    if isinstance(days, int | float) and isinstance(bound, int | float) and days > bound:
        rep.add("key-rotation-too-long", "warning", f"key_rotation_days = {days} is longer than the bound of "
                f"{bound} days ([audit] max_key_rotation_days)", f"set key_rotation_days to {bound} or less",
                subject="key_rotation_days")


def _audit_metrics(rep: AuditReport, raw: dict) -> None:
    table = raw.get("metrics")
    if not isinstance(table, dict):
        return
    listen = str(table.get("listen", "127.0.0.1:9464"))
    host = listen.rpartition(":")[0].strip("[]")
    rep.add("metrics-endpoint", "info", f"monitoring figures (session counts, sizes, budgets left, durations; no "
            f"identity data) are served over plain HTTP at {listen}", subject="metrics")
    if host not in ("127.0.0.1", "localhost", "::1"):
        rep.add("metrics-exposed", "warning", f"the monitoring endpoint listens on {host or 'every interface'}: "
                "anyone who can reach it sees which agencies ask how often and how much",
                'listen on loopback ("127.0.0.1:9464") or only on the monitoring network, behind a firewall',
                subject="metrics")


def _audit_records_source(rep: AuditReport, raw: dict) -> None:
    """A database URL with a password in it: the password sits in a config file that is copied and shown."""
    from matcher.identity.sql_source import has_password, mask_password

    table = raw.get("records")
    source = table.get("source") if isinstance(table, dict) else None
    if not isinstance(source, str):
        return
    rep.add("records-database", "info", f"records are read from the database {mask_password(source)}",
            subject="records.source")
    if has_password(source):
        rep.add("database-password-in-config", "warning",
                "the [records] source URL carries a password: it is readable by whoever can read the config, "
                "and ends up in copies, backups and tickets of it",
                "remove the password from the URL and give it to the service through the environment "
                "(PGPASSWORD), a ~/.pgpass file (mode 0600) or peer authentication over a local socket",
                subject="records.source")


def _audit_session_log(rep: AuditReport, role: str, settings: dict) -> None:
    log = settings.get("session_log")
    if log:
        days = settings.get("session_log_retention_days", 365)
        kept = f", kept {days} days" if role == "responder" else ""
        rep.add("session-log", "info", f"every session is recorded in the hash-chained log {log}{kept}; check it "
                "with `matcher audit-log verify`", subject="session_log")
    elif role == "responder":
        rep.add("no-session-log", "error", "no session log: sessions leave no tamper-evident record",
                'set [responder] session_log = "state/sessions.db"', subject="session_log")
    else:
        rep.add("no-session-log", "info", "this requester keeps no session log of its own (the responder logs "
                "every session)", 'optional: [requester] session_log = "state/sessions.db"', subject="session_log")


def _audit_keyed_hash(rep: AuditReport, raw: dict, role: str, settings: dict, base: Path) -> None:
    if "keyed-hash" not in _protocols(raw, role, settings):
        return
    kh = section if isinstance(section := raw.get("keyed_hash"), dict) else {}
    if kh.get("allow_keyed_hash") is not True:
        rep.add("keyed-hash-without-opt-in", "error", "keyed-hash is configured but not explicitly allowed: it "
                "protects against outsiders only (either agency can test guesses against the other's tags)",
                "if both agencies accept that, set [keyed_hash] allow_keyed_hash = true; otherwise use ecdh",
                subject="keyed_hash")
    else:
        rep.add("keyed-hash-weak", "warning", "keyed-hash is allowed: it protects against outsiders only; each "
                "agency can test any guessed person against the other's tags, and the responder learns which of "
                "its records hit", "prefer ecdh where the agencies do not fully trust each other",
                subject="keyed_hash")
    for k, v in kh.items():
        if k not in ("allow_keyed_hash", "secret_file", "secret_env") and isinstance(v, str):
            rep.add("secret-in-config", "error", f"[keyed_hash] {k} looks like a secret written into the config",
                    "remove it; put the secret in a 0600 file (secret_file) or an environment variable (secret_env)",
                    subject=f"keyed_hash.{k}")
    sf, env = kh.get("secret_file"), kh.get("secret_env")
    if not sf and not env:
        rep.add("keyed-hash-secret-missing", "error", "keyed-hash needs a shared secret but none is named",
                'set [keyed_hash] secret_file = "keyed_hash.secret" (mode 0600) or secret_env', subject="keyed_hash")
    if isinstance(sf, str):
        p = Path(sf) if Path(sf).is_absolute() else base / sf
        if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077:
            rep.add("keyed-hash-secret-readable", "error", f"the keyed-hash secret {p} can be read by other users",
                    f"chmod 600 {p}", subject="keyed_hash.secret_file")
    if isinstance(env, str) and env and env not in os.environ:
        rep.add("keyed-hash-secret-env-unset", "info", f"environment variable {env} is not set here (it must be "
                "where the service runs)", subject="keyed_hash.secret_env")


def _audit_hashes(rep: AuditReport, raw: dict) -> None:
    for path, value in _walk(raw):
        name = path[-1].lower()
        if "hash" not in name or isinstance(value, dict):
            continue
        where = ".".join(path)
        for v in _strings(value):
            if not NON_CRYPTO_HASH.search(v):
                continue
            if any(w in p.lower() for p in path for w in BUCKETING_WORDS):
                rep.add("fast-hash-for-bucketing", "info", f"{where} = {v!r} is used for bucketing only, which is "
                        "fine (it never stands for an identity)", subject=where)
            else:
                rep.add("non-crypto-token-hash", "error", f"{where} = {v!r}: a non-cryptographic (or broken) hash "
                        "where a token hash is meant; tokens hashed this way can be reversed by guessing or collide",
                        "use the protocol's own hash (SHA-512 to the curve, HMAC-SHA-256 for keyed-hash); keep fast "
                        "hashes for bucketing only", subject=where)


def _audit_paillier(rep: AuditReport, raw: dict) -> None:
    for path, value in _walk(raw):
        name = path[-1].lower()
        in_paillier = any("paillier" in p.lower() for p in path)
        if not (name == "paillier_key_bits" or (in_paillier and name in ("key_bits", "bits", "modulus_bits"))):
            continue
        where = ".".join(path)
        if not isinstance(value, int):
            rep.add("config-invalid", "error", f"{where} must be a whole number of bits", subject=where)
        elif value < 2048:
            rep.add("paillier-key-too-small", "error", f"{where} = {value}: Paillier keys under 2048 bits can be "
                    "factored by a well-resourced attacker", "set it to 3072", subject=where)
        elif value < 3072:
            rep.add("paillier-key-below-recommended", "warning", f"{where} = {value}: below the recommended 3072 "
                    "bits (128-bit security)", "set it to 3072", subject=where)
        else:
            rep.add("paillier-key", "info", f"{where} = {value} bits", subject=where)


def _audit_match_keys(rep: AuditReport, raw: dict) -> None:
    from matcher.identity.match_keys import DEFAULT_MATCH_KEYS, N3_MATCH_KEYS

    default = N3_MATCH_KEYS if raw.get("norm_version") == "n3" else DEFAULT_MATCH_KEYS
    keys = section if isinstance(section := raw.get("match_keys"), dict) else default
    for name, fields in keys.items():
        fields = _strings(fields)
        strength = key_strength(fields)
        meaning = describe_key(fields)
        if strength == "document":
            rep.add("match-key", "info", f"{meaning}: almost certainly the same identity document", subject=name)
        elif strength == "identity":
            phonetic_codes = {"metaphone", "nysiis", "soundex", "folded_soundex"}
            phonetic = any(set(parse_field(f)[0]) & phonetic_codes or parse_field(f)[1] in SKELETON_FIELDS
                           for f in fields)
            rep.add("match-key", "info", f"{meaning}: probably the same person, but namesakes born on the same day "
                    "exist" + ("; names that merely sound alike also hit, so expect more of them than with exact "
                               "names" if phonetic else "") + "; confirm through the formal channel", subject=name)
        elif strength == "weak" and any(parse_field(f)[1] == "year_of_birth" for f in fields):
            rep.add("match-key-year-of-birth", "warning", f"{meaning}: namesakes born in the same year also hit. "
                    "It finds records with only a year of birth; a hit on this key alone is weaker than a hit on "
                    "a full date (the hits file's strength column names the strongest key that matched)",
                    "confirm such hits before acting on them, or remove the key if false hits are not acceptable",
                    subject=name)
        elif strength == "weak":
            rep.add("match-key-weak", "warning", f"{meaning}: a name without date or place of birth is shared by "
                    "many people", "add date_of_birth (or place_of_birth) to this key", subject=name)
        else:
            rep.add("match-key-not-identity", "error", f"{meaning}: without a name or a document number this is "
                    "not an identity; many unrelated people share it, so hits are meaningless and every query "
                    "discloses a little about many people", "add name fields (name_tokens) or use document_number",
                    subject=name)


def measure_keys(rep: AuditReport, cfg: Any, records: Path) -> None:
    """Share of records yielding each key, and share of those whose token another record shares."""
    from matcher.identity.records import load_records

    fmt = cfg.records.csv_format()
    loaded = load_records(records, fmt, cfg.key_spec())
    total = loaded.rows_read
    _check_date_order(rep, cfg, records, loaded)
    for key in cfg.key_spec().names:
        # A record may yield several tokens per key (alternative spellings): a record
        # "shares" the key when any of its tokens for it is also another record's.
        per_record = [{t for k, t in r.tokens if k == key} for r in loaded.records]
        per_record = [toks for toks in per_record if toks]
        counts = Counter(t for toks in per_record for t in toks)
        shared = sum(1 for toks in per_record if any(counts[t] > 1 for t in toks))
        tokens = per_record
        m = {
            "match_key": key,
            "records": total,
            "records_with_key": len(per_record),
            "coverage": round(len(per_record) / total, 4) if total else 0.0,
            "distinct_tokens": len(counts),
            "shared_share": round(shared / len(per_record), 4) if per_record else 0.0,
            "tokens_shared": sum(1 for c in counts.values() if c > 1),
        }
        rep.measurements.append(m)
        if tokens and m["shared_share"] > SHARED_TOKEN_WARN:
            rep.add("match-key-not-distinctive", "warning", f"on your own records {100 * m['shared_share']:.1f}% "
                    f"of the records that yield this key share it with another record (duplicates, or a key too "
                    "coarse to tell people apart)", "check for duplicate records; otherwise make the key more "
                    "specific", subject=key)
        if not tokens:
            rep.add("match-key-unused", "warning", "none of your records yields this key", "map the columns it "
                    "needs under [records.columns] or drop the key", subject=key)


def _date_failures(loaded: Any) -> int:
    return sum(1 for d in loaded.dropped_fields if d.field == "date_of_birth")


def _check_date_order(rep: AuditReport, cfg: Any, records: Path, loaded: Any) -> None:
    """Warn when many dates fail in the configured order but parse in another (the order is never guessed)."""
    from dataclasses import replace

    from matcher.identity.records import load_records

    configured = cfg.records.date_order
    failing = _date_failures(loaded)
    if failing == 0 or failing < 0.01 * max(1, loaded.rows_read):
        return
    fmt = cfg.records.csv_format()
    others = {}
    for order in ("DMY", "MDY", "YMD"):
        if order != configured:
            others[order] = _date_failures(load_records(records, replace(fmt, date_order=order), cfg.key_spec()))
    best = min(others, key=others.__getitem__)
    if others[best] * 2 <= failing:
        rep.add("date-order-suspect", "warning",
                f"{failing} dates of birth in your records are not valid dates in the configured order "
                f"{configured}, but only {others[best]} fail when read as {best}: those fields are dropped and "
                "their records can only be found by keys without the date",
                f'check how your export writes dates and set [records] date_order = "{best}" if that is how '
                "they are written", subject="records.date_order")
