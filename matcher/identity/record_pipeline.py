"""The one row pipeline every source shares: checks, normalisation (a field that cannot be understood is
dropped, not the row), tokens, and the rejects contract."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from matcher.errors import InputFileError, RecordError
from matcher.identity.match_keys import KeySpec
from matcher.identity.normalise_n1 import RAW_FIELDS, normalise_record
from matcher.identity.normalise_n2 import NORM_VERSION_N2, normalise_record_n2
from matcher.identity.normalise_n3 import NORM_VERSION_N3, normalise_record_n3
from matcher.identity.record_rejects import _write_rejects
from matcher.identity.record_sources import _has_surrogates, _resolve_columns, _SourceRow, _unusable_keys
from matcher.identity.record_types import CsvFormat, DroppedField, LoadResult, RejectedRow, TokenisedRecord
from matcher.parallel import gc_paused

#: Rows between two calls of ``load_records``' progress callback.
PROGRESS_EVERY = 100_000

#: Records per call of ``load_records``' ``on_records`` callback.
RECORDS_BATCH = 4_096

#: Longest accepted value of any used column, in characters.
MAX_FIELD_CHARS = 1024


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
        on_records: Callable[[list[TokenisedRecord]], None] | None = None,
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
        self.on_records = on_records
        self._handed = 0  # records passed to on_records so far

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
        """Take every row of the source (position, cells or None, why it cannot be read).

        The cyclic garbage collector is paused meanwhile: the records form no cycles, and
        its passes over millions of new objects cost a fifth of a large file's load.
        """
        with gc_paused():
            self._run(rows)

    def _run(self, rows: Iterator[_SourceRow]) -> None:
        width = len(self.header)
        keyspec, date_order, normalise = self.keyspec, self.fmt.date_order, self.normalise
        encoding = "UTF-8" if self.by_key else self.fmt.encoding
        # per-row lookups hoisted (this loop runs once per row of a file of millions)
        progress, first_seen, tokens_of = self.progress, self._first_seen, keyspec.tokens
        raw_columns = self.raw_columns
        id_col, case_col, require_case_ref = self.id_col, self.case_col, self.require_case_ref
        records, on_records = self.records, self.on_records
        new_tuple = tuple.__new__
        first_row = self.rows_read + 1  # rows are counted by enumerate and stored after the loop
        read = first_row - 1
        next_hand_on = self._handed + RECORDS_BATCH
        for read, (start, row, unreadable) in enumerate(rows, first_row):
            if progress is not None and read % PROGRESS_EVERY == 0:
                progress(read)
            if row is None:
                self._reject(start, unreadable or "row cannot be read", None)
                continue
            joined = "".join(row)  # ASCII rows (the common case) have no surrogates to look for
            if not joined.isascii() and _has_surrogates(row):
                self._reject(start, f"row is not valid {encoding}", row)
                continue
            if len(row) != width:
                self._reject(start, f"row has {len(row)} columns, the header has {width}", row)
                continue
            if len(joined) > MAX_FIELD_CHARS:  # else no cell can be longer
                too_long = [self.header[i].strip() for i in self.used if len(row[i]) > MAX_FIELD_CHARS]
                if too_long:
                    self._reject(
                        start, f"column(s) {', '.join(too_long)} longer than {MAX_FIELD_CHARS} characters", row
                    )
                    continue
            record_id = row[id_col].strip()
            if not record_id:
                self._reject(start, "record_id is empty", row)
                continue
            # first_seen.get(record_id), storing start when there is none: positions only grow, so
            # a record_id seen before has a smaller one
            first = first_seen.setdefault(record_id, start)
            if first != start:
                self._reject(start, f"duplicate record_id (first used on {self._place(first)})", row)
                continue
            case_ref = row[case_col].strip() if case_col is not None else ""
            if require_case_ref and not case_ref:
                self._reject(start, "case_ref is empty", row)
                continue
            if ";" in case_ref:  # the responder joins the case references of one token by ";"
                self._reject(
                    start, "case_ref contains ';' (it separates case references in a hit): use another character", row
                )
                continue
            # the raw record: the mapped columns' cells; an empty cell is left out (the normalisers
            # read a missing field as an empty one), which makes a smaller dict for sparse rows
            raw = {f: cell for f, i in raw_columns if (cell := row[i])}
            row_dropped: Sequence[str] = ()
            try:
                normalised: Mapping[str, str | Sequence[str]] = normalise(raw, date_order)
            except RecordError as exc:
                retried, row_dropped, row_error = self._normalise_dropping(start, row, raw, date_order, exc)
                if retried is None:
                    self._reject(start, str(row_error), row)
                    continue
                normalised = retried
            tokens = tokens_of(normalised)
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
            # TokenisedRecord(record_id, case_ref, tokens) without the named tuple's Python-level __new__
            records.append(new_tuple(TokenisedRecord, (record_id, case_ref, tokens)))
            if on_records is not None and len(records) >= next_hand_on:
                self._hand_on()
                next_hand_on = len(records) + RECORDS_BATCH
        self.rows_read = read
        if self.on_records is not None:
            self._hand_on()

    def _normalise_dropping(
        self, start: int, row: list[str], raw: dict[str, str], date_order: str, exc: RecordError
    ) -> tuple[Mapping[str, str | Sequence[str]] | None, list[str], RecordError]:
        """Normalise a row again after ``exc``, dropping one field that cannot be understood per pass.

        Each error that names a field with a value drops that field (or keeps the part of it the error
        names, ``RecordError.kept``), records the drop, and the row is normalised again. An error that
        is no one field's fault ends it: the row goes. Returns the normalised record (None when the row
        goes), the dropped fields in order and the last error.
        """
        dropped: list[str] = []
        while True:
            bad = exc.field
            if bad is None or not (raw.get(bad) or "").strip():
                return None, dropped, exc  # not one field's fault: the row goes
            raw[bad] = exc.kept if exc.kept != raw[bad] else ""
            dropped.append(bad)
            key = self._key(start, row)
            self.dropped.append(DroppedField(start, bad, str(exc), key))
            self.problems.append((key or start, "field dropped", bad, str(exc), row))
            try:
                return self.normalise(raw, date_order), dropped, exc
            except RecordError as again:
                exc = again

    def _hand_on(self) -> None:
        """Pass the records made since the last call to ``on_records`` (in order, each once)."""
        assert self.on_records is not None
        if len(self.records) > self._handed:
            self.on_records(self.records[self._handed :])
            self._handed = len(self.records)

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
