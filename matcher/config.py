"""Agency config files (TOML), validated with pydantic.

One file per agency and role. A responder config has a ``[responder]`` table, a
requester config a ``[requester]`` table; both share ``[tls]``, ``[records]`` and
``[match_keys]``. Relative paths are taken from the config file's folder. Unknown
settings are refused (a typo must not silently turn a protection off).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from matcher.errors import ConfigError
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


class PeerConfig(_Strict):
    """One requester agency the responder accepts, identified by its certificate.

    A name (``san``, preferred, or ``common_name``) says which certificate; a binding
    (``ca_sha256`` / ``ca``: the issuing CA, or ``spki_sha256`` / ``cert_sha256``: a pin)
    says who may have issued it. See matcher.peer_auth and docs/operations.md.
    """

    name: str
    common_name: str | None = Field(default=None, description="subject CN of the peer's client certificate")
    san: str | None = Field(default=None, description="a DNS name or URI in the certificate's subjectAltName")
    ca: Path | None = Field(default=None, description="PEM file of the CA that issues this peer's certificate")
    ca_sha256: str | None = Field(default=None, description="SHA-256 (hex) of the issuing CA certificate (DER)")
    spki_sha256: str | None = Field(default=None, description="pin: SHA-256 of the peer's SubjectPublicKeyInfo")
    cert_sha256: str | None = Field(default=None, description="optional pin: SHA-256 of the DER certificate, hex")
    daily_budget: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="most elements (tokens) this peer may send per UTC day, over all sessions"
    )
    max_set_size: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="most elements this peer may send in one session (below max_request_size)"
    )
    max_sessions: Annotated[int, Field(gt=0, le=1024)] | None = Field(
        default=None, description="most concurrent sessions of this peer (default [responder] max_sessions_per_peer)"
    )

    @field_validator("cert_sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        return _hex_digest(v, "the DER certificate")

    @field_validator("ca_sha256")
    @classmethod
    def _hex_ca(cls, v: str | None) -> str | None:
        return _hex_digest(v, "the issuing CA's DER certificate")

    @field_validator("spki_sha256")
    @classmethod
    def _hex_spki(cls, v: str | None) -> str | None:
        return _hex_digest(v, "the peer's DER SubjectPublicKeyInfo")

    @model_validator(mode="after")
    def _named(self) -> PeerConfig:
        if self.common_name is None and self.san is None and self.spki_sha256 is None and self.cert_sha256 is None:
            raise ValueError(f"peer {self.name}: say which certificate is this peer: san, common_name or a pin "
                             "(spki_sha256 / cert_sha256)")
        return self


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


class ResponderSettings(_Strict):
    listen: str = "127.0.0.1:50051"
    watchlist: Path | None = None  # CSV file; or [records] source (a database) instead
    state_dir: Path = Path("state")
    protocols: list[Protocol] = ["ecdh"]
    reveal: Reveal = "requester"
    key_rotation_days: Annotated[float, Field(gt=0, le=3650)] = 30
    max_request_size: Annotated[int, Field(gt=0, le=100_000_000)] = 1_000_000
    max_chunk_elements: Annotated[int, Field(gt=0, le=65_536)] = 4096
    workers: Annotated[int, Field(ge=0, le=256)] = 0  # worker processes; 0 = all cores, 1 = none
    # e.g. "tls://scheduler:8786": run the kernels on a Dask cluster. The tasks carry the epoch
    # key, so any address other than loopback must be tls:// with dask_tls certificates.
    dask_scheduler: str | None = None
    dask_tls: TlsConfig | None = None
    session_log: Path | None = Field(default=None, description="hash-chained SQLite session log")
    session_log_retention_days: Annotated[float, Field(gt=0)] = 365
    hits_file: Path | None = Field(default=None, description='reveal = "both": where the responder\'s own hits go')
    # Server-side caps (README "Limits and timeouts"): a session longer than this ends with
    # DEADLINE_EXCEEDED whatever deadline the requester set; more concurrent sessions than
    # max_sessions are refused with RESOURCE_EXHAUSTED.
    session_timeout_seconds: Annotated[float, Field(gt=0, le=86_400)] = 3600
    max_sessions: Annotated[int, Field(gt=0, le=1024)] = 64
    # One peer must not hold every slot: at most this many concurrent sessions per peer
    # (a [[peers]] entry may set its own max_sessions), and a stream that has not sent
    # its Hello within hello_timeout_seconds is ended (DEADLINE_EXCEEDED, logged).
    max_sessions_per_peer: Annotated[int, Field(gt=0, le=1024)] = 8
    hello_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 10
    # paillier: the requester picks key size and degree, the responder pays for them (one
    # exponentiation mod n² per degree step per watchlist token): bound both.
    paillier_max_key_bits: Annotated[int, Field(ge=2048, le=8192)] = 4096
    paillier_max_degree: Annotated[int, Field(ge=1, le=128)] = 32


class KeyedHashConfig(_Strict):
    """Protocol ``keyed-hash``: HMAC-SHA-256 under a secret both agencies share out of band.

    The secret is read from ``secret_file`` (mode 0600) or the environment variable
    ``secret_env``, never from the config text. It protects against outsiders only:
    either agency can test guesses against the other's tags.
    """

    allow_keyed_hash: bool = False
    secret_file: Path | None = None
    secret_env: str | None = None


class MetricsConfig(_Strict):
    """Optional Prometheus endpoint (``[metrics]``): counts and sizes only, never identity data.

    Plain HTTP without authentication: keep ``listen`` on loopback or the monitoring network.
    """

    listen: str = "127.0.0.1:9464"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError('must be HOST:PORT, e.g. "127.0.0.1:9464"')
        return v


class AuditSettings(_Strict):
    """Bounds ``matcher audit-config`` checks against."""

    max_key_rotation_days: Annotated[float, Field(gt=0)] = 90


class RequesterSettings(_Strict):
    peer: str | None = None
    server_name: str | None = Field(default=None, description="TLS name to expect in the responder's certificate")
    protocol: Protocol = "ecdh"
    reveal: Reveal = "requester"
    chunk_elements: Annotated[int, Field(gt=0, le=65_536)] = 4096
    timeout_seconds: Annotated[float, Field(gt=0)] = 3600
    paillier_key_bits: Annotated[int, Field(ge=2048, le=8192)] = 3072  # protocol paillier only
    workers: Annotated[int, Field(ge=0, le=256)] = 0  # worker processes; 0 = all cores, 1 = none
    dask_scheduler: str | None = None  # as [responder]: tls:// with dask_tls unless on loopback
    dask_tls: TlsConfig | None = None
    # Pin the responder: its key (SHA-256 of the SubjectPublicKeyInfo) and/or its certificate.
    # The responder proves it holds that key before any data is sent (matcher.peer_auth).
    responder_spki_sha256: str | None = None
    responder_cert_sha256: str | None = None
    setup_cache: Path | None = None  # folder for responders' setups (ecdh), reused within their epoch
    session_log: Path | None = Field(default=None, description="optional hash-chained SQLite log of own sessions")

    @field_validator("responder_spki_sha256")
    @classmethod
    def _hex_spki(cls, v: str | None) -> str | None:
        return _hex_digest(v, "the responder's DER SubjectPublicKeyInfo")

    @field_validator("responder_cert_sha256")
    @classmethod
    def _hex_cert(cls, v: str | None) -> str | None:
        return _hex_digest(v, "the responder's DER certificate")


class ResponderPeer(_Strict):
    """One responder agency a requester may ask (``[[responders]]``; ``matcher match --peers``)."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    address: str = Field(description="HOST:PORT of the responder's gRPC service")
    server_name: str | None = Field(default=None, description="TLS name to expect in its certificate")
    protocol: Protocol | None = Field(default=None, description="default: [requester] protocol")
    reveal: Reveal | None = Field(default=None, description="default: [requester] reveal")
    spki_sha256: str | None = Field(default=None, description="pin: SHA-256 of this responder's SubjectPublicKeyInfo")
    cert_sha256: str | None = Field(default=None, description="pin: SHA-256 of this responder's DER certificate")

    @field_validator("spki_sha256")
    @classmethod
    def _hex_spki(cls, v: str | None) -> str | None:
        return _hex_digest(v, "the responder's DER SubjectPublicKeyInfo")

    @field_validator("cert_sha256")
    @classmethod
    def _hex_cert(cls, v: str | None) -> str | None:
        return _hex_digest(v, "the responder's DER certificate")


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


class ResponderConfig(_AgencyConfig):
    responder: ResponderSettings
    peers: list[PeerConfig] = Field(default_factory=list)
    metrics: MetricsConfig | None = None  # no [metrics] table: no metrics endpoint

    @model_validator(mode="after")
    def _one_watchlist(self) -> ResponderConfig:
        if (self.responder.watchlist is None) == (self.records.source is None):
            raise ValueError(
                "name the watchlist either as a CSV file ([responder] watchlist) or as a database "
                "([records] source with query or table), exactly one of them"
            )
        return self

    @model_validator(mode="after")
    def _reveal_fits_protocols(self) -> ResponderConfig:
        # paillier's replies are opened only by the requester: the responder cannot learn its hits.
        if self.responder.reveal == "both" and "paillier" in self.responder.protocols:
            raise ValueError('reveal = "both" is not available with protocol paillier; offer ecdh or keyed-hash')
        return self


class RequesterConfig(_AgencyConfig):
    requester: RequesterSettings = RequesterSettings()
    responders: list[ResponderPeer] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_responders(self) -> RequesterConfig:
        names = [r.name for r in self.responders]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"[[responders]] names must be unique; repeated: {', '.join(repeated)}")
        return self

    def select_responders(self, spec: str) -> list[ResponderPeer]:
        """``all`` or a comma-separated list of [[responders]] names; ConfigError names unknown ones."""
        if not self.responders:
            raise ConfigError("--peers needs [[responders]] tables in the requester config (name, address, ...)")
        if spec.strip() == "all":
            return list(self.responders)
        wanted = [n.strip() for n in spec.split(",") if n.strip()]
        known = {r.name: r for r in self.responders}
        unknown = [n for n in wanted if n not in known]
        if unknown or not wanted:
            raise ConfigError(
                f"--peers: unknown responder(s) {', '.join(unknown) or '(none given)'}; "
                f"the config lists: {', '.join(known)} (or pass --peers all)"
            )
        return [known[n] for n in dict.fromkeys(wanted)]


def _resolve(base: Path, data: dict) -> None:
    """Make the config's relative paths relative to the config file's folder."""
    for section, keys in (
        ("tls", ("cert", "key", "ca")),
        ("responder", ("watchlist", "state_dir", "session_log", "hits_file")),
        ("requester", ("session_log", "setup_cache")),
        ("keyed_hash", ("secret_file",)),
        ("records", ("rejects",)),
    ):
        table = data.get(section)
        if isinstance(table, dict):
            for k in keys:
                if isinstance(table.get(k), str):
                    table[k] = str((base / table[k]).resolve()) if not Path(table[k]).is_absolute() else table[k]


def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _resolve(path.parent, data)
    records = data.get("records")
    if isinstance(records, dict) and records.get("source") is not None and records.get("rejects") is None:
        records["rejects"] = str((path.parent / "records.rejects.csv").resolve())
    if isinstance(records, dict) and isinstance(records.get("source"), str):
        records["source"] = _resolve_sqlite(path.parent, records["source"])
    peers = data.get("peers")
    for peer in peers if isinstance(peers, list) else []:
        if isinstance(peer, dict) and isinstance(peer.get("ca"), str) and not Path(peer["ca"]).is_absolute():
            peer["ca"] = str((path.parent / peer["ca"]).resolve())
    for section in ("responder", "requester"):
        dask_tls = data.get(section, {}).get("dask_tls") if isinstance(data.get(section), dict) else None
        if isinstance(dask_tls, dict):
            _resolve(path.parent, {"tls": dask_tls})
    return data


def _resolve_sqlite(base: Path, url: str) -> str:
    """``sqlite:///relative.db`` relative to the config file's folder, like the config's other paths."""
    prefix, sep, rest = url.partition(":///")
    if sep and prefix.split("+")[0] == "sqlite" and rest and not rest.startswith(("/", ":memory:", "file:")):
        return f"{prefix}:///{(base / rest).resolve()}"
    return url


def _validate(model: type[_AgencyConfig], path: Path, data: dict):
    if model is ResponderConfig and "responder" not in data:
        raise ConfigError(f"{path}: this is not a responder config (no [responder] table)")
    if model is RequesterConfig and "responder" in data:
        raise ConfigError(f"{path}: this is a responder config; `matcher match` needs a requester config")
    records = data.get("records")
    if not isinstance(records, dict) or "date_order" not in records:
        raise ConfigError(
            f"{path}: [records] date_order is required: say how dates in your records file are written, "
            'DMY, MDY or YMD (e.g. date_order = "DMY" when 03/04/1980 is 3 April 1980, "MDY" when it is '
            "4 March 1980); it is never guessed"
        )
    try:
        cfg = model.model_validate(data)
        cfg.key_spec()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return cfg


def load_responder_config(path: str | os.PathLike[str]) -> ResponderConfig:
    """Read and validate a responder config; ConfigError says what to fix."""
    path = Path(path)
    return _validate(ResponderConfig, path, _read(path))


def load_requester_config(path: str | os.PathLike[str]) -> RequesterConfig:
    """Read and validate a requester config; ConfigError says what to fix."""
    path = Path(path)
    return _validate(RequesterConfig, path, _read(path))


def load_config(path: str | os.PathLike[str]) -> ResponderConfig | RequesterConfig:
    """Read and validate a responder config (it has a ``[responder]`` table) or a requester config."""
    path = Path(path)
    data = _read(path)
    return _validate(ResponderConfig if "responder" in data else RequesterConfig, path, data)


def require_keyed_hash_opt_in(config: ResponderConfig | RequesterConfig) -> None:
    """Refuse keyed-hash unless the config says ``[keyed_hash] allow_keyed_hash = true``."""
    if config.keyed_hash is None or not config.keyed_hash.allow_keyed_hash:
        raise ConfigError(
            "keyed-hash protects against outsiders only (either agency can test guesses against the other's tags); "
            "it is offered only with [keyed_hash] allow_keyed_hash = true"
        )
