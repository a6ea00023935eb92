"""What the loader hands back: the CSV layout (``CsvFormat``), a ``TokenisedRecord``, a ``RejectedRow``, a
``DroppedField`` and the whole ``LoadResult``; ``RECORD_FIELDS`` names the fields a row may carry."""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from matcher.errors import ConfigError
from matcher.identity.normalise_n1 import DATE_ORDERS, RAW_FIELDS

RECORD_FIELDS: tuple[str, ...] = ("record_id", *RAW_FIELDS, "case_ref")


@dataclass(frozen=True)
class CsvFormat:
    """How to read an agency's CSV export (the config's ``[records]`` table)."""

    #: record field -> CSV header name. Empty: every field is read from the column of its own name,
    #: if there is one. Otherwise only the mapped fields are read (record_id and case_ref default
    #: to columns of their own name): leaving a field out of the mapping switches it off.
    columns: Mapping[str, str] = field(default_factory=dict)
    #: order of day, month and year in dates that are not ISO: "DMY", "MDY" or "YMD".
    #: Required: whether 03/04/1980 is March or April is a fact of the agency's data, never guessed.
    date_order: str = field(kw_only=True)
    #: text encoding; "utf-8" also accepts a leading byte-order mark.
    encoding: str = "utf-8"
    delimiter: str = ","

    def __post_init__(self) -> None:
        unknown = [f for f in self.columns if f not in RECORD_FIELDS]
        if unknown:
            raise ConfigError(
                f"[records.columns] maps unknown field(s) {', '.join(sorted(unknown))}; "
                f"known fields: {', '.join(RECORD_FIELDS)}"
            )
        empty = [f for f, h in self.columns.items() if not h or not h.strip()]
        if empty:
            raise ConfigError(f"[records.columns] gives an empty column name for {', '.join(sorted(empty))}")
        if self.date_order not in DATE_ORDERS:
            raise ConfigError(f"date order must be one of DMY, MDY, YMD, not {self.date_order!r}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(f"unknown text encoding {self.encoding!r} for the records file") from None
        if len(self.delimiter) != 1 or self.delimiter in "\r\n\"":
            raise ConfigError("the CSV delimiter must be a single character other than a quote or newline")

    @property
    def read_encoding(self) -> str:
        """The codec used for reading: UTF-8 files may start with a byte-order mark."""
        return "utf-8-sig" if codecs.lookup(self.encoding).name == "utf-8" else self.encoding


class TokenisedRecord(NamedTuple):
    """One usable row: its local id, its case reference (responder side) and its tokens.

    A named tuple, immutable like a frozen dataclass, but made in about half the time
    (a million are made per million-row load) and as small as one with slots.
    """

    record_id: str
    case_ref: str  # "" on the requester side
    #: (key name, token) pairs in key order; a key may give several tokens (alternatives, n2)
    tokens: tuple[tuple[str, bytes], ...]

    def tokens_of(self, key_name: str) -> tuple[bytes, ...]:
        """The record's tokens for one match key (empty if the key could not be computed)."""
        return tuple(t for k, t in self.tokens if k == key_name)

    def __repr__(self) -> str:
        # The ids name a person in an agency's files and the tokens are identity data: neither is shown.
        return f"TokenisedRecord(<{len(self.tokens)} tokens>)"

    # str() goes through __repr__ too (tuple defines no __str__)


@dataclass(frozen=True)
class RejectedRow:
    """One row that could not be used."""

    #: CSV: physical line where the row starts (header = line 1); database: the row's position in the result (1 = first)
    line: int
    reason: str  # never contains identity values
    #: database sources: the row's record_id ("row N" when it has none), which identifies it in the rejects file
    record_key: str = ""


@dataclass(frozen=True)
class DroppedField:
    """One field of a row that could not be understood and was left out (the rest of the row is kept)."""

    line: int  # as RejectedRow.line
    field: str  # record field, e.g. "date_of_birth"
    reason: str  # never contains identity values
    record_key: str = ""  # as RejectedRow.record_key


@dataclass
class LoadResult:
    """Everything ``load_records`` read: ``len(records) + len(rejected) == rows_read``."""

    records: list[TokenisedRecord]
    rejected: list[RejectedRow]
    rows_read: int
    rejects_path: Path | None = None  # set when a rejects file was written
    #: fields left out of rows (used or rejected), in file order
    dropped_fields: list[DroppedField] = field(default_factory=list)
    #: rows used although one or more of their fields were dropped
    rows_with_dropped_fields: int = 0
    #: keys the file's columns cannot give at all, each as "KEY needs FIELD, ..." (e.g. a column not mapped)
    unusable_keys: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the operator, e.g.
        "1000 rows read: 996 used (3 with dropped fields), 4 rejected (see rejects.csv)"."""
        text = (
            f"{self.rows_read} rows read: {len(self.records)} used "
            f"({self.rows_with_dropped_fields} with dropped fields), {len(self.rejected)} rejected"
        )
        if (self.rejected or self.dropped_fields) and self.rejects_path is not None:
            text += f" (see {self.rejects_path})"
        return text

    def reasons(self) -> list[tuple[str, int]]:
        """How often each kind of problem occurred, most frequent first: ("date_of_birth dropped: ...", n).

        Reasons never carry values, so equal reasons group rows with the same problem.
        """
        counts: dict[str, int] = {}
        for d in self.dropped_fields:
            counts[f"field dropped: {d.reason}"] = counts.get(f"field dropped: {d.reason}", 0) + 1
        for r in self.rejected:
            counts[f"row rejected: {r.reason}"] = counts.get(f"row rejected: {r.reason}", 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
