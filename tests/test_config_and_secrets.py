"""Config validation and secrets at rest."""

from __future__ import annotations

import os
import stat

import pytest

from matcher.config import load_requester_config, load_responder_config
from matcher.errors import ConfigError
from matcher.storage.secrets_store import KEY_FILE, load_or_rotate


def test_demo_configs_load_with_paths_relative_to_the_file(agencies):
    cfg = agencies.responder_config()
    assert cfg.responder.watchlist == agencies.workdir / "agency_a_watchlist.csv"
    assert cfg.tls.key == agencies.workdir / "certs/agency-a.key"
    assert cfg.peers[0].common_name == "agency-b"
    assert agencies.requester_config().records.date_order == "MDY"


@pytest.mark.parametrize(
    "old, new, words",
    [
        ('reveal = "requester"', 'reveal = "everything"', "responder.reveal"),
        ('key_rotation_days = 30', 'key_rotation_days = -1', "key_rotation_days"),
        ('max_chunk_elements = 4096', 'max_chunk_elements = 4096\nmax_chunk = 3', "max_chunk"),
        ('names_dob = ["folded_soundex(name_tokens)", "date_of_birth_or_swapped"]',
         'name_dob = ["shoe_size"]', "unknown field"),
        ('[responder]', '[responder\n', "not valid TOML"),
    ],
)
def test_bad_responder_configs_say_what_to_fix(agencies, old, new, words):
    agencies.edit("responder", old, new)
    with pytest.raises(ConfigError) as err:
        agencies.responder_config()
    assert words in str(err.value)
    assert str(agencies.responder_toml) in str(err.value)


def test_config_roles_are_not_confused(agencies):
    with pytest.raises(ConfigError, match="not a responder config"):
        load_responder_config(agencies.requester_toml)
    with pytest.raises(ConfigError, match="responder config"):
        load_requester_config(agencies.responder_toml)
    with pytest.raises(ConfigError, match="no such config file"):
        load_requester_config(agencies.workdir / "missing.toml")


def test_fingerprint_changes_with_any_key_detail(agencies):
    a = agencies.responder_config().key_spec()
    b = agencies.requester_config().key_spec()
    assert a.fingerprint() == b.fingerprint()
    agencies.edit("requester", 'document = ["document_number", "document_country"]\nnames_dob', 'names_dob')
    agencies.edit("requester", 'names_dob = ["folded_soundex(name_tokens)", "date_of_birth_or_swapped"]',
                  'names_dob = ["folded_soundex(name_tokens)", "date_of_birth_or_swapped"]\n'
                  'document = ["document_number", "document_country"]')
    assert agencies.requester_config().key_spec().fingerprint() != a.fingerprint()  # order = strength


def test_epoch_key_is_private_reused_and_rotated(tmp_path):
    key, fresh = load_or_rotate(tmp_path, rotation_days=1, now=1000.0)
    assert fresh
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, fresh = load_or_rotate(tmp_path, rotation_days=1, now=1000.0 + 3600)
    assert not fresh and again == key
    rotated, fresh = load_or_rotate(tmp_path, rotation_days=1, now=1000.0 + 86400)
    assert fresh and rotated.epoch != key.epoch and rotated.key != key.key
    assert key.key.hex() not in repr(key)


def test_epoch_key_readable_by_others_is_refused(tmp_path):
    load_or_rotate(tmp_path, rotation_days=1)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_rotate(tmp_path, rotation_days=1)


def test_damaged_epoch_key_is_refused(tmp_path):
    load_or_rotate(tmp_path, rotation_days=1)
    (tmp_path / KEY_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        load_or_rotate(tmp_path, rotation_days=1)
