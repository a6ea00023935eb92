"""Agency config files (TOML), validated with pydantic.

One file per agency and role. A responder config has a ``[responder]`` table, a
requester config a ``[requester]`` table; both share ``[tls]``, ``[records]`` and
``[match_keys]``. Relative paths are taken from the config file's folder. Unknown
settings are refused (a typo must not silently turn a protection off).

The models of the tables both roles share are in ``shared.py``, the responder's in
``responder.py``, the requester's in ``requester.py`` (each setting with its default and
bounds); reading and validating a file is in ``load.py``. Configuration is an edge: it
may import identity (match keys, record layout), never the server or the clients.
"""

from __future__ import annotations

from matcher.config.load import load_config, load_requester_config, load_responder_config, require_keyed_hash_opt_in
from matcher.config.requester import RequesterConfig, RequesterSettings, ResponderPeer
from matcher.config.responder import MetricsConfig, PeerConfig, ResponderConfig, ResponderSettings
from matcher.config.shared import (
    PROTOCOLS,
    AuditSettings,
    KeyedHashConfig,
    Protocol,
    RecordsConfig,
    Reveal,
    TlsConfig,
)

__all__ = [
    "PROTOCOLS", "AuditSettings", "KeyedHashConfig", "MetricsConfig", "PeerConfig", "Protocol", "RecordsConfig",
    "RequesterConfig", "RequesterSettings", "ResponderConfig", "ResponderPeer", "ResponderSettings", "Reveal",
    "TlsConfig", "load_config", "load_requester_config", "load_responder_config", "require_keyed_hash_opt_in",
]
