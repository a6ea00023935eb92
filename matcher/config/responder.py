"""The responder's config: ``[responder]`` settings (listen address, protocols, limits, timeouts, state),
``[[peers]]`` (who may ask, with budgets) and ``[metrics]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from matcher.config.shared import (
    Protocol,
    Reveal,
    TlsConfig,
    _AgencyConfig,
    _hex_digest,
    _Strict,
)


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
