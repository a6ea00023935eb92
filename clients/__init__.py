"""Requester-side client library: how an agency system asks one or many responders for hits."""

from clients.match_client import ConnectionFailed, Hit, MatchClient, MatchFailed, MatchResult, TlsFiles
from clients.match_many import PeerOutcome, match_many

__all__ = ["ConnectionFailed", "Hit", "MatchClient", "MatchFailed", "MatchResult", "PeerOutcome", "TlsFiles",
           "match_many"]
