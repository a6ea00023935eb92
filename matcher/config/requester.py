"""The requester's config: ``[requester]`` settings (peer, protocol, chunking, pins, cache) and the
``[[responders]]`` it may ask at once (``match --peers``)."""

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
from matcher.errors import ConfigError


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
