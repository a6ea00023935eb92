"""Requester-side client library: how an agency system asks a responder for hits."""

from clients.match_client import ConnectionFailed, Hit, MatchClient, MatchFailed, MatchResult, TlsFiles

__all__ = ["ConnectionFailed", "Hit", "MatchClient", "MatchFailed", "MatchResult", "TlsFiles"]
