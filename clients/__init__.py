"""Requester-side client library: how an agency system asks a responder for hits."""

from clients.match_client import Hit, MatchClient, MatchFailed, MatchResult, TlsFiles

__all__ = ["Hit", "MatchClient", "MatchFailed", "MatchResult", "TlsFiles"]
