"""Requester-side client library: how an agency system asks one or many responders for hits."""

from clients.match_client import Hit, MatchClient, MatchFailed, MatchResult, TlsFiles
from clients.match_many import PeerOutcome, match_many

__all__ = ["Hit", "MatchClient", "MatchFailed", "MatchResult", "PeerOutcome", "TlsFiles", "match_many"]
