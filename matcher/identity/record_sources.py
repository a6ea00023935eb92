"""Reading rows from a source: the CSV reader (physical line numbers, blank lines skipped), the header's
column mapping, and which match keys the available columns cannot produce."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from matcher.errors import InputFileError
from matcher.identity.match_keys import KeySpec, parse_field
from matcher.identity.record_types import RECORD_FIELDS, CsvFormat

if TYPE_CHECKING:
    from _csv import Reader as _CsvReader

# Which raw record fields each normalised key field is derived from. A key
# field is available when ANY of its sources is non-empty (name_tokens works
# with a family name alone); used to explain rows that yield no token.
_KEY_FIELD_SOURCES: dict[str, tuple[str, ...]] = {
    "given_names": ("given_names",),
    "family_name": ("family_name",),
    "name_tokens": ("given_names", "family_name"),
    "given_initial": ("given_names",),
    "date_of_birth": ("date_of_birth",),
    "date_of_birth_or_swapped": ("date_of_birth",),
    "year_of_birth": ("date_of_birth",),
    "sex": ("sex",),
    "nationality": ("nationality",),
    "document_number": ("document_number",),
    "document_country": ("document_country",),
    "place_of_birth": ("place_of_birth",),
    "name_keys": ("given_names", "family_name"),
    "name_pairs": ("given_names", "family_name"),
    "name_initials": ("given_names", "family_name"),
    "name_initials_nat": ("given_names", "family_name"),
    "name_keys_fine": ("given_names", "family_name"),
}


def _resolve_columns(
    header: list[str], fmt: CsvFormat, path: Path | str, require_case_ref: bool
) -> dict[str, int]:
    """Map each record field to its column index; raise InputFileError for missing columns."""
    positions: dict[str, int] = {}
    duplicates: set[str] = set()
    for i, name in enumerate(header):
        name = name.strip()
        if name in positions:
            duplicates.add(name)
        else:
            positions[name] = i

    found = ", ".join(repr(h.strip()) for h in header) or "(none)"
    how = (
        "map the record fields to your column names in the [records.columns] table of the config, "
        'e.g. record_id = "ID"'
    )
    resolved: dict[str, int] = {}
    missing: list[str] = []
    for f in RECORD_FIELDS:
        wanted = fmt.columns.get(f, f)
        explicit = f in fmt.columns
        if fmt.columns and not explicit and f not in ("record_id", "case_ref"):
            continue  # with a mapping, a field it leaves out is not read, whatever the column names
        if wanted in positions:
            if wanted in duplicates:
                raise InputFileError(f"{path}: column {wanted!r} appears more than once in the header")
            resolved[f] = positions[wanted]
        elif explicit or f == "record_id" or (f == "case_ref" and require_case_ref):
            missing.append(f"{wanted!r}" + ("" if wanted == f else f" (for {f})"))
    if missing:
        hint = ""
        if len(header) == 1:
            seps = [c for c in ";\t|," if c != fmt.delimiter and c in header[0]]
            if seps:
                shown = "\\t" if seps[0] == "\t" else seps[0]
                hint = (
                    f"; the header was read as one column, but it contains {shown!r}: if that separates the "
                    f'columns, set delimiter = "{shown}" in the [records] table of the config'
                )
        raise InputFileError(
            f"{path}: column(s) {', '.join(missing)} not found in the header; "
            f"columns found: {found}{hint}; {how}"
        )
    return resolved


def _unusable_keys(keyspec: KeySpec, available: set[str]) -> list[str]:
    """For each key that cannot be computed from ``available`` raw fields, what it needs."""
    parts = []
    for key in keyspec.keys:
        needs = []
        lacking = False
        for kf in key.fields:
            sources = _KEY_FIELD_SOURCES[parse_field(kf)[1]]
            needs.append(kf if sources == (kf,) else f"{kf} (from {' or '.join(sources)})")
            if not any(s in available for s in sources):
                lacking = True
        if lacking:
            parts.append(f"{key.name} needs {', '.join(needs)}")
    return parts


def _has_surrogates(row: list[str]) -> bool:
    try:
        "\x00".join(row).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


#: one row from a source: (position, cells, None) or (position, None, why it cannot be read)
_SourceRow = tuple[int, "list[str] | None", "str | None"]


def _csv_rows(reader: _CsvReader, path: Path, fmt: CsvFormat) -> Iterator[_SourceRow]:
    """The CSV file's rows with the physical line each starts on; blank lines are skipped.

    ``reader.line_num`` counts the physical lines the reader has taken from the file (a
    quoted field may span several), also when a row fails to parse.
    """
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeError as exc:  # only for codecs without surrogateescape support
            raise InputFileError(
                f"{path}: line {start} cannot be decoded as {fmt.encoding} ({getattr(exc, 'reason', None) or exc}); "
                "fix the file or set its encoding in the [records] config"
            ) from None
        except csv.Error as exc:
            yield start, None, f"row cannot be read as CSV ({exc})"
            continue
        if row:
            yield start, row, None
