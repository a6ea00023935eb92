"""How a session can fail before or outside the protocol, and the TLS files a client presents.

``MatchFailed`` carries the responder's gRPC status; ``ConnectionFailed`` turns gRPC's
UNAVAILABLE before any session into a message that names the cause and the setting to
check (see :func:`connection_failure`). ``TlsFiles`` holds the client's PEM material.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import grpc


class MatchFailed(Exception):
    """The session ended with a gRPC status; ``code`` says which, ``details`` why."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class ConnectionFailed(MatchFailed):
    """No session could start: the responder was not reachable or the TLS handshake failed.

    ``problem`` says which: "unreachable", "server-untrusted" (the responder's
    certificate does not chain to our CA), "server-name" (it is not issued for the
    name we expect) or "handshake-closed" (the responder hung up during the
    handshake, usually because it does not accept our client certificate). The
    message names the setting to check instead of the TLS library's words.
    """

    def __init__(self, code: grpc.StatusCode, details: str, problem: str, message: str) -> None:
        super().__init__(code, details)
        self.problem = problem
        self.message = message

    def __str__(self) -> str:
        return self.message


_UNREACHABLE = ("connection refused", "failed to connect to remote host", "dns resolution failed",
                "name or service not known", "no address", "connection timed out", "network is unreachable")
_UNTRUSTED = ("certificate_verify_failed", "bad_signature", "unable to get local issuer", "certificate verify failed",
              "self signed certificate", "self-signed certificate", "unknown ca", "certificate has expired")
_NAME = ("hostname verification", "peer name", "not in peer certificate", "hostname mismatch")
_CLOSED = ("socket closed", "connection reset", "tlsv1_alert", "sslv3_alert", "handshake failed", "end of file",
           "wrong_version_number", "http2")


def connection_failure(
    target: str, server_name: str | None, code: grpc.StatusCode, details: str
) -> ConnectionFailed | None:
    """Turn gRPC's UNAVAILABLE before any session into a ConnectionFailed naming cause and fix (None: not one)."""
    if code != grpc.StatusCode.UNAVAILABLE:
        return None
    low = details.lower()
    if any(w in low for w in _NAME):
        name = server_name or target.rsplit(":", 1)[0]
        return ConnectionFailed(code, details, "server-name", (
            f"connected to {target}, but the responder's certificate is not issued for the name {name!r}: "
            "set [requester] server_name (server_name= in MatchClient) to the name in the responder's certificate"))
    if any(w in low for w in _UNTRUSTED):
        return ConnectionFailed(code, details, "server-untrusted", (
            f"connected to {target}, but the responder's certificate is not signed by the CA we trust: check "
            "[tls] ca (TlsFiles ca), which must be the CA that issued the responder's certificate (if a CA was "
            "made anew, every agency needs its new ca.pem)"))
    if any(w in low for w in _UNREACHABLE):
        return ConnectionFailed(code, details, "unreachable", (
            f"could not connect to {target}: nothing accepts connections there; check the host and port "
            "(--peer or [requester] peer) and that the responder is running"))
    if any(w in low for w in _CLOSED):
        return ConnectionFailed(code, details, "handshake-closed", (
            f"{target} closed the connection during the TLS handshake: it most likely does not accept our client "
            "certificate; check [tls] cert and key (TlsFiles cert, key): a certificate issued by a CA the responder "
            "trusts, whose name is in the responder's [[peers]] (or the responder runs without TLS)"))
    return ConnectionFailed(code, details, "unreachable", (
        f"could not connect to {target} ({details or 'no reason given'}); check the host and port "
        "(--peer or [requester] peer) and that the responder is running"))


@dataclass(frozen=True, repr=False)
class TlsFiles:
    """PEM bytes: this agency's client certificate and key, and the CA of the responder."""

    def __repr__(self) -> str:  # never the private key
        return "TlsFiles(<certificate, private key, CA>)"

    cert: bytes
    key: bytes
    ca: bytes

    @classmethod
    def load(cls, cert: str | os.PathLike[str], key: str | os.PathLike[str], ca: str | os.PathLike[str]) -> TlsFiles:
        """Read the three PEM files."""
        return cls(Path(cert).read_bytes(), Path(key).read_bytes(), Path(ca).read_bytes())
