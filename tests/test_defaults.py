"""One source for defaults: the match keys and limits in the README, the demo and synth come from the models."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from matcher.config import RequesterSettings, ResponderSettings
from matcher.config_templates import REQUESTER_TOML, RESPONDER_TOML
from matcher.identity.match_keys import DEFAULT_MATCH_KEYS, DEFAULT_NORM_VERSION, match_keys_toml

ROOT = Path(__file__).resolve().parent.parent


def _match_keys_tables(markdown: str) -> list[str]:
    """The bodies of the [match_keys] tables in the markdown's TOML blocks."""
    tables = []
    for block in re.findall(r"```toml\n(.*?)```", markdown, flags=re.S):
        m = re.search(r"^\[match_keys\][^\n]*\n((?:[a-z_]+ = \[.*\]\n)+)", block, flags=re.M)
        if m:
            tables.append(m.group(1))
    return tables


def test_the_readme_shows_the_default_match_keys_once_and_as_they_are():
    tables = _match_keys_tables((ROOT / "README.md").read_text(encoding="utf-8"))
    assert tables == [match_keys_toml()]


def test_templates_carry_the_model_defaults():
    for text in (RESPONDER_TOML, REQUESTER_TOML):
        data = tomllib.loads(text)
        assert data["match_keys"] == DEFAULT_MATCH_KEYS
        assert data["norm_version"] == DEFAULT_NORM_VERSION
    responder = tomllib.loads(RESPONDER_TOML)["responder"]
    for name in ("max_request_size", "max_chunk_elements", "key_rotation_days"):
        assert responder[name] == ResponderSettings.model_fields[name].default, name
    assert RequesterSettings.model_fields["chunk_elements"].default == ResponderSettings.model_fields[
        "max_chunk_elements"].default


def test_synth_writes_configs_with_the_default_keys(tmp_path):
    from matcher.quality.synth import generate

    generate(20, 0.5, 1, tmp_path)
    for name in ("requester.toml", "responder.toml"):
        assert tomllib.loads((tmp_path / name).read_text(encoding="utf-8"))["match_keys"] == DEFAULT_MATCH_KEYS
