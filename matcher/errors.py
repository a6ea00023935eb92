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
    """One record (row) that cannot be used; the loader writes it to the rejects file."""

    status = "INVALID_ARGUMENT"


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
    """The peer's certificate is not in the responder's allowlist."""

    status = "PERMISSION_DENIED"


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
