"""Throw-away X.509 material for the demo and tests: a CA and agency certificates.

Real deployments use their agencies' own PKI; this exists so that the demo, the
tests and a first trial run use real mutual TLS with no shortcut.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from matcher.errors import ConfigError
from matcher.files import private_dir, write_private


@dataclass(frozen=True)
class Issued:
    """A PEM certificate and its PEM private key."""

    cert_pem: bytes
    key_pem: bytes


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "matcher test PKI"),
    ])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class TestCA:
    """A self-signed P-256 CA that issues agency certificates valid for both TLS roles."""

    __test__ = False  # not a pytest class

    def __init__(self, name: str = "matcher demo CA", days: int = 30) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self._days = days
        self.cert: x509.Certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(self._key, hashes.SHA256())
        )

    @classmethod
    def load(cls, cert_pem: bytes, key_pem: bytes, days: int = 30) -> TestCA:
        """A CA written earlier (``ca.pem`` and ``ca.key``), to issue more certificates under it."""
        ca = cls.__new__(cls)
        ca.cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        ca_public = ca.cert.public_key()
        if (
            not isinstance(key, ec.EllipticCurvePrivateKey)
            or not isinstance(ca_public, ec.EllipticCurvePublicKey)
            or key.public_key().public_numbers() != ca_public.public_numbers()
        ):
            raise ValueError("the CA key does not belong to the CA certificate")
        ca._key = key
        ca._days = days
        return ca

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The CA's private key (PKCS#8 PEM): store it 0600, it can issue certificates every peer trusts."""
        return _key_pem(self._key)

    @property
    def not_valid_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    def issue(
        self, common_name: str, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), days: int | None = None
    ) -> Issued:
        """A certificate for ``common_name``, with ``hosts`` (names or IPs) as SANs.

        Valid for ``days`` (default: the CA's), never beyond the CA's own end of validity.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        until = min(now + dt.timedelta(days=days or self._days), self.cert.not_valid_after_utc)
        sans: list[x509.GeneralName] = [x509.DNSName(common_name)]
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


@dataclass(frozen=True)
class AgencyCerts:
    """What :func:`write_agency_certs` wrote: the CA (new or kept) and each agency's certificate and key."""

    ca_cert: Path
    ca_key: Path
    ca_kept: bool
    ca_valid_until: dt.datetime
    certs: dict[str, tuple[Path, Path]]
    valid_until: dt.datetime


def write_agency_certs(
    out_dir: str | os.PathLike[str],
    names: list[str],
    ca: TestCA | None = None,
    *,
    force: bool = False,
    days: int = 30,
    ca_days: int = 365,
) -> AgencyCerts:
    """Write ``<name>.pem``/``<name>.key`` (0600) for each agency name, under the folder's CA.

    The CA is kept in ``ca.pem`` and ``ca.key`` (0600) and reused by later runs, so
    certificates issued earlier stay valid and agencies can be added. A new CA
    (valid ``ca_days``) is made only when the folder has none. Nothing is written
    when a named certificate already exists (unless ``force``), or when ``ca.pem``
    exists without ``ca.key`` (a new CA would break every certificate issued
    under the old one): ConfigError says what to do.
    """
    out_dir = Path(out_dir)
    ca_cert, ca_key = out_dir / "ca.pem", out_dir / "ca.key"
    existing = [out_dir / f"{n}.pem" for n in names if (out_dir / f"{n}.pem").exists()]
    if existing and not force:
        raise ConfigError(
            f"{', '.join(str(p) for p in existing)} already exist(s): pass --force to issue new certificates "
            "(the old ones stay valid until they expire), or choose other names or another --out folder"
        )
    kept = ca is None and ca_cert.exists()
    if kept:
        if not ca_key.exists():
            raise ConfigError(
                f"{ca_cert} exists but its key {ca_key} does not (made by an older dev-certs), so no certificate "
                "can be added under it; use another --out folder for a new CA (every agency then needs the new "
                "ca.pem and new certificates)"
            )
        try:
            ca = TestCA.load(ca_cert.read_bytes(), ca_key.read_bytes(), days)
        except ValueError as exc:
            raise ConfigError(f"{ca_cert} and {ca_key} cannot be used together: {exc}") from None
        if ca.not_valid_after <= dt.datetime.now(dt.UTC):
            raise ConfigError(f"the CA in {ca_cert} expired on {ca.not_valid_after:%Y-%m-%d}; use another --out folder")
    elif ca is None:
        ca = TestCA(days=ca_days)
    private_dir(out_dir)
    if not kept:
        write_private(ca_key, ca.key_pem)
        ca_cert.write_bytes(ca.cert_pem)
    paths = {}
    until = ca.not_valid_after
    for name in names:
        issued = ca.issue(name, days=days)
        cert_path, key_path = out_dir / f"{name}.pem", out_dir / f"{name}.key"
        write_private(key_path, issued.key_pem)
        cert_path.write_bytes(issued.cert_pem)
        until = min(until, x509.load_pem_x509_certificate(issued.cert_pem).not_valid_after_utc)
        paths[name] = (cert_path, key_path)
    return AgencyCerts(ca_cert, ca_key, kept, ca.not_valid_after, paths, until)
