"""The tables both roles' configs have: ``[tls]``, ``[records]``, ``[keyed_hash]``, ``[audit]``, and the base of
both agency configs (``norm_version``, ``[match_keys]``, the fingerprint and key spec)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from matcher.identity.match_keys import (
    DEFAULT_MATCH_KEYS,
    DEFAULT_NORM_VERSION,
    N3_MATCH_KEYS,
    KeySpec,
)
from matcher.identity.records import CsvFormat
from matcher.identity.sql_source import SqlSource

# "both": the responder also learns which of its own records hit (see README, reveal modes).
Reveal = Literal["requester", "cardinality", "both"]
Protocol = Literal["ecdh", "paillier", "keyed-hash"]
PROTOCOLS: tuple[str, ...] = ("ecdh", "paillier", "keyed-hash")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Strict):
    """Own certificate and key, and the CA(s) the other agency's certificate must chain to."""

    cert: Path
    key: Path
    ca: Path


def _hex_digest(v: str | None, what: str) -> str | None:
    if v is None:
        return v
    v = v.replace(":", "").lower()
    if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
        raise ValueError(f"must be 64 hex digits (SHA-256 of {what})")
    return v


class RecordsConfig(_Strict):
    """How this agency's records are laid out: CSV files, or rows of a database (``source``)."""

    date_order: Literal["DMY", "MDY", "YMD"]  # required: never guessed (see _require_date_order)
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: dict[str, str] = Field(default_factory=dict)
    source: str | None = Field(
        default=None, description="SQLAlchemy database URL to read the records from (instead of a CSV file)"
    )
    query: str | None = Field(default=None, description="with source: the SELECT whose rows are the records")
    table: str | None = Field(default=None, description="with source: the table whose rows are the records")
    batch: Annotated[int, Field(gt=0, le=1_000_000)] = 5000  # rows fetched per round trip from the database
    rejects: Path | None = Field(
        default=None, description="with source: where dropped fields and rejected rows go (default records.rejects.csv)"
    )

    @model_validator(mode="after")
    def _source_shape(self) -> RecordsConfig:
        if self.source is None:
            given = [k for k in ("query", "table", "rejects") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} only go(es) with a database `source` URL in [records]")
        else:
            self.sql_source()  # ConfigError: exactly one of query or table, a readable URL
        return self

    def csv_format(self) -> CsvFormat:
        return CsvFormat(
            columns=dict(self.columns), date_order=self.date_order, encoding=self.encoding, delimiter=self.delimiter
        )

    def sql_source(self) -> SqlSource | None:
        """The database source (None when the records come from CSV files)."""
        if self.source is None:
            return None
        return SqlSource(self.source, query=self.query, table=self.table, batch=self.batch)


class KeyedHashConfig(_Strict):
    """Protocol ``keyed-hash``: HMAC-SHA-256 under a secret both agencies share out of band.

    The secret is read from ``secret_file`` (mode 0600) or the environment variable
    ``secret_env``, never from the config text. It protects against outsiders only:
    either agency can test guesses against the other's tags.
    """

    allow_keyed_hash: bool = False
    secret_file: Path | None = None
    secret_env: str | None = None


class AuditSettings(_Strict):
    """Bounds ``matcher audit-config`` checks against."""

    max_key_rotation_days: Annotated[float, Field(gt=0)] = 90


class _AgencyConfig(_Strict):
    norm_version: str = DEFAULT_NORM_VERSION
    tls: TlsConfig | None = None
    records: RecordsConfig
    match_keys: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_MATCH_KEYS))
    keyed_hash: KeyedHashConfig | None = None
    audit: AuditSettings = AuditSettings()

    @model_validator(mode="before")
    @classmethod
    def _default_keys_of_the_norm_version(cls, data: Any) -> Any:
        """Without a [match_keys] table, norm_version = "n3" takes n3's column-proof default keys."""
        if isinstance(data, dict) and data.get("norm_version") == "n3" and "match_keys" not in data:
            data = {**data, "match_keys": {k: list(v) for k, v in N3_MATCH_KEYS.items()}}
        return data

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the validated config: which configuration a session ran under."""
        return hashlib.sha256(self.model_dump_json().encode("utf-8")).hexdigest()

    def key_spec(self) -> KeySpec:
        return KeySpec.from_mapping(self.norm_version, self.match_keys)
