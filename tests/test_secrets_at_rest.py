"""Every secret at rest is written 0600 and refused when group or others may read it.

The epoch key has its own tests in test_config_and_secrets.py; here: the TLS private keys
(responder and requester), the keyed-hash secret file, the responder's and the
requester's setup caches, and that every secret the demo writes is 0600.
"""

from __future__ import annotations

import os
import stat

import pytest

from matcher.config import KeyedHashConfig
from matcher.errors import ConfigError
from matcher.protocols import ecdh
from matcher.requester import client_for
from matcher.server.responder import read_tls
from matcher.storage.secrets_store import load_shared_secret, write_private
from matcher.storage.setup_cache import RequesterSetupCache, load_setup, save_setup, setup_id


def _loose(path):
    os.chmod(path, 0o640)
    return path


def test_every_secret_the_set_up_writes_is_0600(agencies, start):
    running = start()
    state = agencies.workdir / "agency_a_state"
    secrets = [state / "epoch_key.json", *state.glob("setup-*.bin"), *(agencies.workdir / "certs").glob("*.key")]
    assert len(secrets) >= 4
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    running.stop(grace=0)


def test_responder_tls_key_readable_by_others_is_refused(agencies):
    _loose(agencies.workdir / "certs" / "agency-a.key")
    with pytest.raises(ConfigError, match="chmod 600"):
        read_tls(agencies.responder_config())


def test_requester_tls_key_readable_by_others_is_refused(agencies):
    _loose(agencies.workdir / "certs" / "agency-b.key")
    with pytest.raises(ConfigError, match="chmod 600"):
        client_for(agencies.requester_config(), "127.0.0.1:1")


def test_keyed_hash_secret_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "kh.secret"
    write_private(path, b"s" * 40)
    cfg = KeyedHashConfig(allow_keyed_hash=True, secret_file=path)
    assert load_shared_secret(cfg) == b"s" * 40
    _loose(path)
    with pytest.raises(ConfigError, match="chmod 600") as err:
        load_shared_secret(cfg)
    assert "ssss" not in str(err.value)


def test_setup_caches_are_private_and_refused_when_readable(tmp_path):
    setup = ecdh.responder_setup(ecdh.new_key(), [(b"t", b"C")], 8)
    path = tmp_path / "setup-x.bin"
    save_setup(path, setup, {})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    _loose(path)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_setup(path)
    cache = RequesterSetupCache(tmp_path / "cache")
    cache.save("responder:1", setup_id(setup), setup)
    (saved,) = (tmp_path / "cache").glob("setup-*.bin")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    _loose(saved)
    with pytest.raises(ConfigError, match="chmod 600"):
        cache.load("responder:1", setup_id(setup))
