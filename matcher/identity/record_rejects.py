"""The rejects file: every dropped field and rejected row with the row's original values, written 0600 and
atomically (it holds identity data)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from matcher.errors import InputFileError
from matcher.files import open_private
from matcher.identity.record_types import CsvFormat

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
