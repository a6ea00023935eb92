"""Config audit findings on protocols and reveal: what each agency learns, the security model, semi-honest
modes, keyed-hash (opt-in, secret), token hashes and Paillier key sizes."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from matcher.audit.findings import AuditReport, _strings, _walk

#: Hash names that are not cryptographic (or no longer collision resistant): never for tokens.
NON_CRYPTO_HASH = re.compile(r"xx(hash|h)|murmur|crc|fnv|city|farm|metro|wyhash|djb|adler|md5|sha-?1(?!\d)", re.I)
#: Settings where a fast hash is fine: bucketing and sharding, not identity.
BUCKETING_WORDS = ("bin", "bucket", "shard", "partition")

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
