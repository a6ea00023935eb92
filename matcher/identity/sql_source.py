"""Records straight from an agency's database: rows of a query or table, streamed in batches.

``[records] source`` holds a SQLAlchemy database URL (SQLite and PostgreSQL are tested;
any dialect SQLAlchemy supports may work), with either ``query`` (a SELECT) or
``table``. Rows are fetched with a server-side cursor ``batch`` at a time, so the
database client never holds more than one batch; every value is handed to the same
column mapping, normalisation and rejects contract as a CSV cell (NULL is an empty
cell, a DATE is ISO 8601, other values their text) by
:func:`matcher.identity.records.load_records`.

Credentials belong in the environment (``PGPASSWORD``, ``~/.pgpass``, a socket with
peer authentication), not in the URL: the URL is shown in messages with any password
masked, and ``audit-config`` warns about a password in it. On PostgreSQL the rows are
read in a read-only transaction, so a ``query`` cannot change the database.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from matcher.errors import ConfigError, InputFileError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

#: rows fetched per round trip (server-side cursor)
DEFAULT_BATCH = 5000

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
# SQLSTATE classes whose messages quote the offending value (22: data exception, 23: integrity)
_VALUE_CLASSES = ("22", "23")


@dataclass(frozen=True)
class SqlSource:
    """Where the records come from: a database URL plus a query or a table name.

    The constructor checks the shape only (ConfigError says what to fix); the database
    is first contacted by :func:`open_rows`.
    """

    url: str
    query: str | None = None
    table: str | None = None
    batch: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        if (self.query is None) == (self.table is None):
            raise ConfigError("[records] source needs exactly one of `query` or `table`")
        if self.query is not None and not self.query.strip():
            raise ConfigError("[records] query is empty")
        if self.table is not None and not _IDENTIFIER.match(self.table):
            raise ConfigError(
                "[records] table must be a plain identifier (letters, digits, _; optionally schema.table); "
                "use `query` for anything else"
            )
        if self.batch < 1:
            raise ConfigError("[records] batch must be at least 1")
        parse_url(self.url)

    @property
    def shown(self) -> str:
        """The URL with any password masked, for messages and logs."""
        return mask_password(self.url)

    def __repr__(self) -> str:
        return f"SqlSource(url={self.shown!r}, query={self.query is not None}, table={self.table!r})"


def parse_url(url: str) -> URL:
    """The parsed URL; ConfigError (password masked) when SQLAlchemy cannot read it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"[records] source {mask_password(url)!r} is not a database URL; "
            "write e.g. postgresql+psycopg://user@host/db or sqlite:///path/to/file.db"
        ) from None


def mask_password(url: str) -> str:
    """``scheme://user:***@host/db`` for ``scheme://user:secret@host/db``, and ``password=***`` in the query."""
    masked = re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", url)
    return re.sub(r"(?i)([?&](?:password|pwd)=)[^&#]*", r"\1***", masked)


def has_password(url: str) -> bool:
    """Whether the URL carries a password (in its user part or as a ``password`` parameter)."""
    return mask_password(url) != url


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        # not text: the row is rejected as "not valid UTF-8" if the bytes are not
        return bytes(value).decode("utf-8", errors="surrogateescape")
    return str(value)


def _reason(exc: BaseException) -> str:
    """The driver's first message line, without quoted values for errors about data."""
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    sqlstate = str(getattr(orig, "sqlstate", "") or getattr(orig, "pgcode", "") or "")
    if sqlstate[:2] in _VALUE_CLASSES:
        text = re.sub(r'"[^"]*"', '"…"', text)  # e.g. invalid input syntax for type date: "<a value>"
    return text


@contextmanager
def open_rows(source: SqlSource) -> Iterator[tuple[list[str], Iterator[list[str]]]]:
    """(column names, rows as lists of text) of ``source``, fetched ``batch`` rows at a time.

    Use the rows inside the ``with`` block: the connection closes at its end. Raises
    InputFileError naming the (masked) URL when the database cannot be reached or the
    query fails; the driver's message is kept (without values quoted from the data),
    as it names the cause.
    """
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(parse_url(source.url))
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise InputFileError(f"database URL {source.shown} cannot be used: {exc}") from None
    try:
        with engine.connect() as conn:
            options: dict[str, object] = {"stream_results": True, "yield_per": source.batch}
            if engine.dialect.name == "postgresql":
                options["postgresql_readonly"] = True
            conn = conn.execution_options(**options)
            if source.table is not None:
                schema, _, name = source.table.rpartition(".")
                table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
                result = conn.execute(sa.select(table))
            else:
                # the query is sent as written: no bind parameters (':name' is SQL text), and a '%'
                # is doubled for drivers whose placeholders are %s (psycopg) so that LIKE 'A%' works
                assert source.query is not None  # SqlSource holds exactly one of query and table
                query = source.query.strip().rstrip(";")
                if engine.dialect.paramstyle in ("format", "pyformat"):
                    query = query.replace("%", "%%")
                result = conn.exec_driver_sql(query)
            if not result.returns_rows:
                raise InputFileError(f"{source.shown}: the query returns no rows (it must be a SELECT)")
            header = [str(k) for k in result.keys()]  # noqa: SIM118 - a Result, not a dict

            def rows() -> Iterator[list[str]]:
                for partition in result.partitions():
                    for row in partition:
                        yield [_cell(v) for v in row]

            yield header, rows()
    except sa.exc.NoSuchTableError:
        raise InputFileError(f"{source.shown}: there is no table {source.table!r}") from None
    except sa.exc.SQLAlchemyError as exc:
        raise InputFileError(
            f"{source.shown}: the records could not be read from the database ({_reason(exc)})"
        ) from None
    finally:
        engine.dispose()
