"""Config audit findings on the match keys: what a hit on each key means (``describe_key``), how close it comes
to one person (``key_strength``), and measurements on the agency's own records (``measure_keys``, date order)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Literal

from matcher.audit.findings import AuditReport, _strings
from matcher.identity.match_keys import parse_field

#: Fields that on their own point at one person (a document) or nearly (a name).


DOCUMENT_FIELDS = {"document_number"}
NAME_FIELDS = {
    "given_names", "family_name", "name_tokens", "name_keys", "name_keys_fine", "name_pairs", "name_initials",
    "name_initials_nat",
}
#: n3 name fields: romanisation skeletons, so names that merely sound alike also meet.
SKELETON_FIELDS = {"name_keys", "name_keys_fine", "name_pairs", "name_initials", "name_initials_nat"}
#: Fields that narrow a name down to a person.
NARROWING_FIELDS = {"date_of_birth", "date_of_birth_or_swapped", "place_of_birth"}

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
    "name_initials_nat": ("romanisation skeleton of one first name word and the initial of the other, "
                          "with the nationality unless the word is long"),
}


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
