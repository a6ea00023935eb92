"""Loading records from a CSV file or a database into tokens (DESIGN §2.1).

The loader is the I/O shell around :mod:`matcher.identity.normalise_n1` and
:meth:`matcher.identity.match_keys.KeySpec.tokens`. Its contract is that nothing is
silently dropped: every data row either becomes a :class:`TokenisedRecord` or
a :class:`RejectedRow` with its physical line number (database rows: their
record key) and a reason. CSV files and database sources
(:mod:`matcher.identity.sql_source`) share one row pipeline, :class:`_RowPipeline`. A value
that cannot be understood (a date that is not a calendar date, an unknown
country) drops that field only, as a :class:`DroppedField`; the row is
rejected only when no match key can be computed from what remains. Dropped
fields and rejected rows are written (with the row's original values) to a
rejects file next to the agency's own input, created 0600. Reasons and error
messages name columns, fields and line numbers, never values.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from matcher.errors import ConfigError, InputFileError, RecordError
from matcher.files import open_private
from matcher.identity.match_keys import KeySpec, parse_field
from matcher.identity.normalise_n1 import DATE_ORDERS, RAW_FIELDS, normalise_record
from matcher.identity.normalise_n2 import NORM_VERSION_N2, normalise_record_n2
from matcher.identity.normalise_n3 import NORM_VERSION_N3, normalise_record_n3
from matcher.identity.sql_source import SqlSource, open_rows

RECORD_FIELDS: tuple[str, ...] = ("record_id", *RAW_FIELDS, "case_ref")

#: Rows between two calls of ``load_records``' progress callback.
PROGRESS_EVERY = 100_000

#: Longest accepted value of any used column, in characters.
MAX_FIELD_CHARS = 1024

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
    "name_keys_fine": ("given_names", "family_name"),
}


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


@dataclass(frozen=True)
class TokenisedRecord:
    """One usable row: its local id, its case reference (responder side) and its tokens."""

    record_id: str
    case_ref: str  # "" on the requester side
    #: (key name, token) pairs in key order; a key may give several tokens (alternatives, n2)
    tokens: tuple[tuple[str, bytes], ...]

    def tokens_of(self, key_name: str) -> tuple[bytes, ...]:
        """The record's tokens for one match key (empty if the key could not be computed)."""
        return tuple(t for k, t in self.tokens if k == key_name)


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


class _LineCounter:
    """Iterates over a text stream's physical lines, counting them."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.count = 0

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.count += 1
        return line


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


def load_records(
    source: str | os.PathLike[str] | SqlSource,
    fmt: CsvFormat,
    keyspec: KeySpec,
    *,
    require_case_ref: bool = False,
    rejects_path: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Read, normalise and tokenise every row of a CSV records file or a database source.

    ``source`` is a CSV file's path or a :class:`SqlSource` (a database URL with a query or
    table, read in batches through a server-side cursor). A header row (the result's
    column names) is required; missing mapped columns (or ``record_id``, or
    ``case_ref`` when ``require_case_ref``) raise InputFileError before any row
    is read. A value that cannot be understood drops that field only
    (DroppedField: line, field, reason); rows that cannot be used at all (no
    match key left, bad record_id, malformed CSV) are returned as RejectedRow
    (physical line number + reason; database rows: their position in the result and
    their record key). If ``rejects_path`` is given, both are
    written there, created 0600, one line per problem with the row's original
    values (columns ``line`` (database sources: ``record_key``), ``action`` ("field
    dropped" or "row rejected"), ``field``, ``reason``, then the input's columns; CSV:
    same encoding and delimiter as the input, database: UTF-8 and commas). Without
    problems a stale rejects file is removed. Completely empty CSV lines are skipped and
    not counted as rows.
    """
    if isinstance(source, SqlSource):
        with open_rows(source) as (header, cells):
            pipeline = _RowPipeline(header, fmt, keyspec, source.shown, require_case_ref, progress, by_key=True)
            pipeline.run((n, row, None) for n, row in enumerate(cells, start=1))
        return pipeline.finish(rejects_path, replace(fmt, encoding="utf-8", delimiter=","))

    path = Path(source)
    try:
        raw_file = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputFileError(f"cannot open records file {path}: {exc.strerror or exc}") from None
    with raw_file:
        text = io.TextIOWrapper(raw_file, encoding=fmt.read_encoding, errors="surrogateescape", newline="")
        lines = _LineCounter(iter(text))
        reader = csv.reader(lines, delimiter=fmt.delimiter)
        try:
            header = next(reader, [])
        except csv.Error as exc:
            raise InputFileError(f"{path}: the header row cannot be read as CSV ({exc})") from None
        except UnicodeError as exc:  # only for codecs without surrogateescape support (e.g. UTF-16)
            raise InputFileError(
                f"{path}: line 1 cannot be decoded as {fmt.encoding} ({getattr(exc, 'reason', None) or exc}); "
                "set the file's encoding in the [records] config"
            ) from None
        if not header or not any(h.strip() for h in header):
            raise InputFileError(f"{path}: the file is empty or its first line is blank; a header row is required")
        if _has_surrogates(header):
            raise InputFileError(
                f"{path}: the header row is not valid {fmt.encoding}; set the file's encoding in the [records] config"
            )
        pipeline = _RowPipeline(header, fmt, keyspec, path, require_case_ref, progress, by_key=False)
        pipeline.run(_csv_rows(reader, lines, path, fmt))
    return pipeline.finish(rejects_path, fmt)


def _csv_rows(reader: Iterator[list[str]], lines: _LineCounter, path: Path, fmt: CsvFormat) -> Iterator[_SourceRow]:
    """The CSV file's rows with the physical line each starts on; blank lines are skipped."""
    while True:
        start = lines.count + 1
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


class _RowPipeline:
    """Rows (lists of text) in, TokenisedRecords and the rejects contract out: shared by every source.

    ``by_key``: rows are identified by their record key rather than a line number
    (database sources, whose rows have no line).
    """

    def __init__(
        self,
        header: list[str],
        fmt: CsvFormat,
        keyspec: KeySpec,
        where: Path | str,
        require_case_ref: bool,
        progress: Callable[[int], None] | None,
        *,
        by_key: bool,
    ) -> None:
        self.header, self.fmt, self.keyspec, self.where = header, fmt, keyspec, where
        self.require_case_ref, self.progress, self.by_key = require_case_ref, progress, by_key
        columns = _resolve_columns(header, fmt, where, require_case_ref)
        self.raw_columns = [(f, columns[f]) for f in RAW_FIELDS if f in columns]
        self.used = sorted(columns.values())
        self.unusable = _unusable_keys(keyspec, {f for f, _ in self.raw_columns})
        if len(self.unusable) == len(keyspec.keys):
            what = "the query's columns" if by_key else "the columns of this file"
            raise InputFileError(
                f"{where}: no match key can be computed from {what} "
                f"({'; '.join(self.unusable)}); add the columns or map them in [records.columns]"
            )
        self.id_col = columns["record_id"]
        self.case_col = columns.get("case_ref")
        self.normalise = {NORM_VERSION_N2: normalise_record_n2, NORM_VERSION_N3: normalise_record_n3}.get(
            keyspec.norm_version, normalise_record
        )
        self.records: list[TokenisedRecord] = []
        self.rejected: list[RejectedRow] = []
        self.dropped: list[DroppedField] = []
        self.rows_with_dropped = 0
        #: rejects-file entries in input order: (line or record key, action, field, reason, original row)
        self.problems: list[tuple[int | str, str, str, str, list[str]]] = []
        self.rows_read = 0
        self._first_seen: dict[str, int] = {}

    def _place(self, position: int) -> str:
        return f"row {position} of the result" if self.by_key else f"line {position}"

    def _key(self, position: int, row: list[str] | None) -> str:
        """The record key that names a database row in the rejects file ("row N" when it has none)."""
        if not self.by_key:
            return ""
        key = row[self.id_col].strip() if row is not None and self.id_col < len(row) else ""
        return key or f"row {position}"

    def _reject(self, position: int, reason: str, row: list[str] | None) -> None:
        key = self._key(position, row)
        self.rejected.append(RejectedRow(position, reason, key))
        self.problems.append((key or position, "row rejected", "", reason, row or []))

    def run(self, rows: Iterator[_SourceRow]) -> None:
        """Take every row of the source (position, cells or None, why it cannot be read)."""
        width = len(self.header)
        keyspec, date_order, normalise = self.keyspec, self.fmt.date_order, self.normalise
        encoding = "UTF-8" if self.by_key else self.fmt.encoding
        for start, row, unreadable in rows:
            self.rows_read += 1
            if self.progress is not None and self.rows_read % PROGRESS_EVERY == 0:
                self.progress(self.rows_read)
            if row is None:
                self._reject(start, unreadable or "row cannot be read", None)
                continue
            if _has_surrogates(row):
                self._reject(start, f"row is not valid {encoding}", row)
                continue
            if len(row) != width:
                self._reject(start, f"row has {len(row)} columns, the header has {width}", row)
                continue
            too_long = [self.header[i].strip() for i in self.used if len(row[i]) > MAX_FIELD_CHARS]
            if too_long:
                self._reject(start, f"column(s) {', '.join(too_long)} longer than {MAX_FIELD_CHARS} characters", row)
                continue
            record_id = row[self.id_col].strip()
            if not record_id:
                self._reject(start, "record_id is empty", row)
                continue
            first = self._first_seen.get(record_id)
            if first is not None:
                self._reject(start, f"duplicate record_id (first used on {self._place(first)})", row)
                continue
            self._first_seen[record_id] = start
            case_ref = row[self.case_col].strip() if self.case_col is not None else ""
            if self.require_case_ref and not case_ref:
                self._reject(start, "case_ref is empty", row)
                continue
            if ";" in case_ref:  # the responder joins the case references of one token by ";"
                self._reject(
                    start, "case_ref contains ';' (it separates case references in a hit): use another character", row
                )
                continue
            raw = {f: row[i] for f, i in self.raw_columns}
            row_dropped: list[str] = []
            normalised: Mapping[str, str | Sequence[str]] | None = None
            row_error: RecordError | None = None
            while normalised is None:  # each pass drops one field that cannot be understood
                try:
                    normalised = normalise(raw, date_order)
                except RecordError as exc:
                    row_error, bad = exc, exc.field
                    if bad is None or not (raw.get(bad) or "").strip():
                        break  # not one field's fault: the row goes
                    raw[bad] = ""
                    row_dropped.append(bad)
                    key = self._key(start, row)
                    self.dropped.append(DroppedField(start, bad, str(exc), key))
                    self.problems.append((key or start, "field dropped", bad, str(exc), row))
            if normalised is None:
                self._reject(start, str(row_error), row)
                continue
            tokens = keyspec.tokens(normalised)
            if not tokens:
                if row_dropped:
                    reason = f"no match key can be computed after dropping {', '.join(row_dropped)}"
                else:
                    present = {f for f, _ in self.raw_columns if normalised[f]}
                    needs = _unusable_keys(keyspec, present) or [k.name for k in keyspec.keys]
                    reason = f"no match key can be computed: {'; '.join(needs)}"
                self._reject(start, reason, row)
                continue
            if row_dropped:
                self.rows_with_dropped += 1
            self.records.append(TokenisedRecord(record_id, case_ref, tokens))

    def finish(self, rejects_path: str | os.PathLike[str] | None, fmt: CsvFormat) -> LoadResult:
        """Write (or remove a stale) rejects file and return what was read."""
        written: Path | None = None
        if rejects_path is not None:
            rejects_path = Path(rejects_path)
            if self.problems:
                first = "record_key" if self.by_key else "line"
                _write_rejects(rejects_path, fmt, self.header, self.problems, first)
                written = rejects_path
            else:
                with contextlib.suppress(FileNotFoundError):
                    rejects_path.unlink()
        return LoadResult(self.records, self.rejected, self.rows_read, written, self.dropped,
                          self.rows_with_dropped, self.unusable)


REJECTS_COLUMNS: tuple[str, ...] = ("line", "action", "field", "reason")


def _write_rejects(
    path: Path,
    fmt: CsvFormat,
    header: list[str],
    problems: list[tuple[int | str, str, str, str, list[str]]],
    first_column: str = "line",
) -> None:
    """Write the rejects file atomically (private temporary file, then rename): it holds identity data."""
    encoding = "utf-8" if fmt.read_encoding == "utf-8-sig" else fmt.encoding
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open_private(tmp, "w", encoding=encoding, errors="surrogateescape", newline="") as out:
            writer = csv.writer(out, delimiter=fmt.delimiter, lineterminator="\n")
            writer.writerow([first_column, *REJECTS_COLUMNS[1:], *header])
            for where, action, fld, reason, row in problems:
                writer.writerow([where, action, fld, reason, *row])
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputFileError(f"cannot write the rejects file {path}: {exc.strerror or exc}") from None
