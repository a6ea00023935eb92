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

The loader's parts: the result types in ``record_types``, the CSV reader and column
mapping in ``record_sources``, the row pipeline in ``record_pipeline`` and the rejects
file in ``record_rejects``; this module reads a source through them and re-exports
their public names.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from matcher.errors import InputFileError
from matcher.identity.match_keys import KeySpec
from matcher.identity.record_pipeline import MAX_FIELD_CHARS, PROGRESS_EVERY, _RowPipeline
from matcher.identity.record_rejects import REJECTS_COLUMNS
from matcher.identity.record_sources import _csv_rows, _has_surrogates
from matcher.identity.record_types import (
    RECORD_FIELDS,
    CsvFormat,
    DroppedField,
    LoadResult,
    RejectedRow,
    TokenisedRecord,
)
from matcher.identity.sql_source import SqlSource, open_rows

__all__ = [
    "MAX_FIELD_CHARS", "PROGRESS_EVERY", "RECORD_FIELDS", "REJECTS_COLUMNS", "CsvFormat", "DroppedField",
    "LoadResult", "RejectedRow", "TokenisedRecord", "load_records",
]


def load_records(
    source: str | os.PathLike[str] | SqlSource,
    fmt: CsvFormat,
    keyspec: KeySpec,
    *,
    require_case_ref: bool = False,
    rejects_path: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
    on_records: Callable[[list[TokenisedRecord]], None] | None = None,
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

    ``on_records`` is called with the records made so far, in order and each once, about
    every ``RECORDS_BATCH`` records and at the end (so work on them can start while the
    rest is read); all of them are in the result as well.
    """
    if isinstance(source, SqlSource):
        with open_rows(source) as (header, cells):
            pipeline = _RowPipeline(header, fmt, keyspec, source.shown, require_case_ref, progress, by_key=True,
                                    on_records=on_records)
            pipeline.run((n, row, None) for n, row in enumerate(cells, start=1))
        return pipeline.finish(rejects_path, replace(fmt, encoding="utf-8", delimiter=","))

    path = Path(source)
    try:
        raw_file = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputFileError(f"cannot open records file {path}: {exc.strerror or exc}") from None
    with raw_file:
        text = io.TextIOWrapper(raw_file, encoding=fmt.read_encoding, errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=fmt.delimiter)
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
        pipeline = _RowPipeline(header, fmt, keyspec, path, require_case_ref, progress, by_key=False,
                                on_records=on_records)
        pipeline.run(_csv_rows(reader, path, fmt))
    return pipeline.finish(rejects_path, fmt)
