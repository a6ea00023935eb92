"""Exception types of matcher, each naming one canonical gRPC status code.

Messages are written for the person who has to act on them and never carry
identity data, tokens, tags, keys or case references.
"""

from __future__ import annotations


class MatcherError(Exception):
    """Base of every error matcher raises on purpose."""

    #: Name of the canonical gRPC status code the edge maps this error to
    #: (``matcher.grpc_status``); kept as a name so the core never imports grpc.
    status: str = "INTERNAL"


class ConfigError(MatcherError):
    """A config file that cannot be read or does not make sense."""

    status = "FAILED_PRECONDITION"


class InputFileError(MatcherError):
    """A records file that cannot be used at all (unreadable, missing columns)."""

    status = "INVALID_ARGUMENT"


class RecordError(MatcherError):
    """A record value that cannot be understood; the loader drops that field (or the row) and reports it.

    ``field`` names the record field at fault (e.g. ``date_of_birth``), so the loader
    can drop that field alone and keep the rest of the record; None when the problem
    is the row as a whole. ``kept``: what of the value the loader keeps in its place (e.g. the
    year of a date that is no calendar date, under normalisation n3); "" drops the whole value.
    """

    status = "INVALID_ARGUMENT"

    def __init__(self, message: str, field: str | None = None, kept: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.kept = kept


class InvalidElement(MatcherError):
    """A point (or ciphertext) received from the wire that is not acceptable."""

    status = "INVALID_ARGUMENT"


class ProtocolViolation(MatcherError):
    """A peer sent messages out of order, of the wrong kind, or lying about sizes."""

    status = "INVALID_ARGUMENT"


class KeySpecMismatch(MatcherError):
    """The two agencies' match-key definitions differ: no data may move."""

    status = "FAILED_PRECONDITION"


class PeerNotAllowed(MatcherError):
    """The peer's certificate is not in the responder's allowlist; ``subject`` is its subject, for the log."""

    status = "PERMISSION_DENIED"

    def __init__(self, message: str, subject: str | None = None) -> None:
        super().__init__(message)
        self.subject = subject


class PinMismatch(MatcherError):
    """The responder is not the one the requester pinned (``responder_spki_sha256`` / ``responder_cert_sha256``)."""

    status = "UNAUTHENTICATED"


class LimitExceeded(MatcherError):
    """A request larger than the responder allows, or a spent budget."""

    status = "RESOURCE_EXHAUSTED"


class UnsupportedProtocol(MatcherError):
    """The requester asked for a protocol or reveal mode the responder does not offer."""

    status = "FAILED_PRECONDITION"


class BudgetExhausted(LimitExceeded):
    """The peer's daily budget is spent; ``resets_at`` (UTC ISO 8601) says when it is renewed."""

    def __init__(self, message: str, resets_at: str) -> None:
        super().__init__(message)
        self.resets_at = resets_at


class LogTampered(MatcherError):
    """The session log's hash chain does not verify: a row was edited, deleted or reordered."""

    status = "DATA_LOSS"


class SecretError(ConfigError):
    """A shared secret (keyed-hash) that is missing, too short or readable by others."""


class SessionTimeout(MatcherError):
    """A session ran past the responder's ``session_timeout_seconds`` (or the requester's own deadline)."""

    status = "DEADLINE_EXCEEDED"


class NormalisationMismatch(MatcherError):
    """Two installations (or one installation and its own conformance vectors) tokenise differently."""

    status = "FAILED_PRECONDITION"


class ResponderMisbehaved(MatcherError):
    """The responder's replies are not what the protocol makes it compute for this session.

    Raised on the requester's side, e.g. an ecdh reply whose setup label was sealed for
    another token (permuted, repeated, substituted or replayed replies) or a Summary that
    contradicts what the requester reported. The session fails with no hit written.
    """

    status = "DATA_LOSS"
