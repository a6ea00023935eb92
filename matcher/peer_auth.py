"""Who is asking: a client certificate, bound to its issuing CA or a key pin, against ``[[peers]]``.

gRPC has already checked that the certificate chains to a CA of the ``[tls] ca``
bundle. That alone is not an identity when the bundle holds several CAs: any of
them could mint ``CN=agency-b``. So each ``[[peers]]`` entry is bound to

* the CA that issued the certificate (``ca_sha256``: SHA-256 of that CA
  certificate's DER, or ``ca``: its PEM file), and/or
* a pin of the peer's key (``spki_sha256``: SHA-256 of the DER
  SubjectPublicKeyInfo) or of the certificate itself (``cert_sha256``),

and names the certificate by a subjectAltName (``san``: a DNS name or URI),
preferred over the subject CN (``common_name``). A config that leaves a peer
unbound is accepted only when it is unambiguous (the bundle holds one CA); with
several CAs it is refused with an error naming the setting to add.

This module also carries the responder's proof for a requester that pins the
responder's key (see :func:`server_proof`): gRPC's Python client exposes no peer
certificate, so the responder signs the requester's nonce and the requester's
certificate as it saw it with its TLS key, which an interceptor cannot fake.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from matcher.config import PeerConfig
from matcher.errors import ConfigError, PeerNotAllowed

#: The one peer name every caller has under ``matcher serve --insecure`` (loopback only):
#: budgets and limits apply to it, and its rows in the session log say the mode was used.
INSECURE_PEER = "(insecure)"

#: Metadata keys of the responder-pin exchange (binary headers end in ``-bin``).
NONCE_HEADER = "matcher-pin-nonce-bin"
CERT_HEADER = "matcher-responder-cert-bin"
PROOF_HEADER = "matcher-responder-proof-bin"
_PROOF_CONTEXT = b"matcher responder pin proof v1\x00"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spki_sha256(cert: x509.Certificate) -> str:
    """SHA-256 (hex) of the certificate's DER SubjectPublicKeyInfo: a pin that survives renewal with the same key."""
    return sha256_hex(cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def cert_sha256(cert: x509.Certificate) -> str:
    """SHA-256 (hex) of the DER certificate."""
    return sha256_hex(cert.public_bytes(serialization.Encoding.DER))


def load_pem_certs(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (ConfigError when there is none)."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ConfigError(f"not a PEM certificate bundle ({exc})") from None
    return certs


def shown_subject(cert: x509.Certificate) -> str:
    """The certificate's subject for a log line: RFC 4514, printable ASCII only, bounded."""
    try:
        text = cert.subject.rfc4514_string()
    except Exception:  # a subject cryptography cannot render
        text = "(unreadable subject)"
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text[:200] + ("..." if len(text) > 200 else "")


@dataclass(frozen=True)
class PeerCertificate:
    """What the responder knows of a connected client: its leaf certificate and the CA that signed it."""

    subject: str
    common_name: str | None
    sans: frozenset[str]
    cert_sha256: str
    spki_sha256: str
    issuer_sha256: str | None  # the CA of the trusted bundle that signed the leaf, if any

    @classmethod
    def from_pem(cls, pem: bytes, trusted: list[x509.Certificate]) -> PeerCertificate:
        cert = x509.load_pem_x509_certificate(pem)
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        sans: set[str] = set()
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            sans.update(str(v) for v in ext.get_values_for_type(x509.DNSName))
            sans.update(str(v) for v in ext.get_values_for_type(x509.UniformResourceIdentifier))
        except x509.ExtensionNotFound:
            pass
        issuer = None
        for ca in trusted:
            if ca.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            issuer = cert_sha256(ca)
            break
        return cls(shown_subject(cert), str(cns[0].value) if cns else None, frozenset(sans),
                   cert_sha256(cert), spki_sha256(cert), issuer)


@dataclass(frozen=True)
class BoundPeer:
    """A ``[[peers]]`` entry with its CA binding resolved to fingerprints."""

    config: PeerConfig
    ca_sha256: frozenset[str] = field(default_factory=frozenset)  # empty: bound by a key pin only

    def matches(self, who: PeerCertificate) -> bool:
        p = self.config
        if p.san is not None:
            if p.san not in who.sans:
                return False
        elif p.common_name is not None and who.common_name != p.common_name:
            return False
        if p.common_name is not None and p.san is not None and who.common_name != p.common_name:
            return False
        if p.spki_sha256 is not None and not hmac.compare_digest(p.spki_sha256, who.spki_sha256):
            return False
        if p.cert_sha256 is not None and not hmac.compare_digest(p.cert_sha256, who.cert_sha256):
            return False
        return not self.ca_sha256 or who.issuer_sha256 in self.ca_sha256


class PeerAllowlist:
    """The responder's ``[[peers]]``, each bound to its issuing CA or a pin; identifies a client certificate."""

    def __init__(self, peers: list[PeerConfig], ca_bundle: bytes) -> None:
        self.trusted = load_pem_certs(ca_bundle)
        fingerprints = {cert_sha256(c): c for c in self.trusted}
        self.peers: list[BoundPeer] = []
        for p in peers:
            self.peers.append(BoundPeer(p, _resolve_ca(p, fingerprints)))

    def identify(self, pem: bytes | None) -> tuple[str, PeerCertificate | None]:
        """The ``[[peers]]`` name of the certificate; PeerNotAllowed (with the subject) otherwise."""
        if not pem:
            raise PeerNotAllowed("no client certificate: this responder serves only allowlisted agencies over mTLS")
        try:
            who = PeerCertificate.from_pem(pem, self.trusted)
        except ValueError:
            raise PeerNotAllowed("the client certificate cannot be read") from None
        found = [b.config.name for b in self.peers if b.matches(who)]
        if len(found) == 1:
            return found[0], who
        why = ("it matches several [[peers]] entries (" + ", ".join(found) + "); make their bindings distinct"
               if found else "this client certificate is not in the responder's peer allowlist; "
               "ask the responder agency to add it under [[peers]]")
        raise PeerNotAllowed(why, subject=who.subject)


def _resolve_ca(p: PeerConfig, bundle: dict[str, x509.Certificate]) -> frozenset[str]:
    """The fingerprints of the CA(s) a peer is bound to (empty when a key pin is its only binding)."""
    wanted: set[str] = set()
    if p.ca_sha256 is not None:
        wanted.add(p.ca_sha256)
    if p.ca is not None:
        try:
            wanted.update(cert_sha256(c) for c in load_pem_certs(Path(p.ca).read_bytes()))
        except OSError as exc:
            raise ConfigError(f"peer {p.name}: cannot read its CA file ({exc})") from None
    missing = wanted - bundle.keys()
    if missing:
        raise ConfigError(
            f"peer {p.name}: its CA binding (ca / ca_sha256) names a CA that is not in the [tls] ca bundle; "
            "the CAs there are: " + _describe(bundle)
        )
    if wanted:
        return frozenset(wanted)
    if p.spki_sha256 is not None or p.cert_sha256 is not None:
        return frozenset()
    if len(bundle) == 1:  # unambiguous: the only CA trusted is the issuer (existing configs keep working)
        return frozenset(bundle)
    raise ConfigError(
        f"peer {p.name}: the [tls] ca bundle holds {len(bundle)} CAs, and any of them could issue a certificate "
        f"with this name; bind the peer to its issuing CA with ca_sha256 = \"...\" (one of: {_describe(bundle)}) "
        "or pin its key with spki_sha256"
    )


def _describe(bundle: dict[str, x509.Certificate]) -> str:
    return "; ".join(f"{fp} ({shown_subject(c)})" for fp, c in bundle.items())


# -- the requester pins the responder --------------------------------------------------------


def _proof_message(nonce: bytes, client_cert_sha256: str) -> bytes:
    return _PROOF_CONTEXT + nonce + bytes.fromhex(client_cert_sha256)


def server_proof(key_pem: bytes, nonce: bytes, client_cert_der_sha256: str) -> bytes:
    """The responder's signature, with its TLS key, over the requester's nonce and its certificate as seen.

    A party in the middle that holds some trusted certificate but not the responder's
    key cannot produce it; relaying the nonce to the real responder does not help,
    because the responder signs the certificate *it* saw, which is the relay's.
    """
    key = serialization.load_pem_private_key(key_pem, password=None)
    msg = _proof_message(nonce, client_cert_der_sha256)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(msg, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(msg, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH), hashes.SHA256())
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key.sign(msg)
    raise ConfigError(f"the TLS key type {type(key).__name__} cannot sign the responder pin proof")


def check_server_proof(
    cert_der: bytes, proof: bytes, nonce: bytes, own_cert_pem: bytes,
    spki_pin: str | None, cert_pin: str | None,
) -> None:
    """Raise PinMismatch unless ``cert_der`` is the pinned certificate and ``proof`` is its signature for us."""
    from matcher.errors import PinMismatch

    try:
        cert = x509.load_der_x509_certificate(cert_der)
        own = x509.load_pem_x509_certificate(own_cert_pem)
    except ValueError:
        raise PinMismatch("the responder sent no readable certificate for its key pin") from None
    if spki_pin is not None and not hmac.compare_digest(spki_pin, spki_sha256(cert)):
        raise PinMismatch(
            f"the responder's key does not match the pin: responder_spki_sha256 is {spki_pin}, the responder "
            f"presented a key with {spki_sha256(cert)} ({shown_subject(cert)}); no data was sent"
        )
    if cert_pin is not None and not hmac.compare_digest(cert_pin, cert_sha256(cert)):
        raise PinMismatch(
            f"the responder's certificate does not match the pin: responder_cert_sha256 is {cert_pin}, the "
            f"responder presented {cert_sha256(cert)} ({shown_subject(cert)}); no data was sent"
        )
    msg = _proof_message(nonce, cert_sha256(own))
    pub = cert.public_key()
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(proof, msg, ec.ECDSA(hashes.SHA256()))
        elif isinstance(pub, rsa.RSAPublicKey):
            pub.verify(proof, msg, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH),
                       hashes.SHA256())
        elif isinstance(pub, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            pub.verify(proof, msg)
        else:
            raise InvalidSignature
    except InvalidSignature:
        raise PinMismatch(
            "the responder's pin proof does not verify: the connection does not end at the pinned responder "
            "(or the responder saw another client certificate than ours); no data was sent"
        ) from None
