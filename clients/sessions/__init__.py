"""Requester halves of the protocols, one module each, behind one interface."""

from __future__ import annotations

from clients.sessions.base import RequesterSession
from clients.sessions.ecdh import EcdhRequesterSession
from clients.sessions.keyed_hash import KeyedHashRequesterSession
from clients.sessions.paillier import PaillierRequesterSession

#: protocol name -> requester half
REQUESTER_SESSIONS: dict[str, type[RequesterSession]] = {
    EcdhRequesterSession.protocol: EcdhRequesterSession,
    KeyedHashRequesterSession.protocol: KeyedHashRequesterSession,
    PaillierRequesterSession.protocol: PaillierRequesterSession,
}

__all__ = ["REQUESTER_SESSIONS", "RequesterSession"]
