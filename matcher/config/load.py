"""Reading a config file: TOML, paths relative to the config's folder, the role's model, and error messages
that say what to fix."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from matcher.config.requester import RequesterConfig
from matcher.config.responder import ResponderConfig
from matcher.config.shared import _AgencyConfig
from matcher.errors import ConfigError


def _resolve(base: Path, data: dict) -> None:
    """Make the config's relative paths relative to the config file's folder."""
    for section, keys in (
        ("tls", ("cert", "key", "ca")),
        ("responder", ("watchlist", "state_dir", "session_log", "hits_file")),
        ("requester", ("session_log", "setup_cache")),
        ("keyed_hash", ("secret_file",)),
        ("records", ("rejects",)),
    ):
        table = data.get(section)
        if isinstance(table, dict):
            for k in keys:
                if isinstance(table.get(k), str):
                    table[k] = str((base / table[k]).resolve()) if not Path(table[k]).is_absolute() else table[k]


def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _resolve(path.parent, data)
    records = data.get("records")
    if isinstance(records, dict) and records.get("source") is not None and records.get("rejects") is None:
        records["rejects"] = str((path.parent / "records.rejects.csv").resolve())
    if isinstance(records, dict) and isinstance(records.get("source"), str):
        records["source"] = _resolve_sqlite(path.parent, records["source"])
    peers = data.get("peers")
    for peer in peers if isinstance(peers, list) else []:
        if isinstance(peer, dict) and isinstance(peer.get("ca"), str) and not Path(peer["ca"]).is_absolute():
            peer["ca"] = str((path.parent / peer["ca"]).resolve())
    for section in ("responder", "requester"):
        dask_tls = data.get(section, {}).get("dask_tls") if isinstance(data.get(section), dict) else None
        if isinstance(dask_tls, dict):
            _resolve(path.parent, {"tls": dask_tls})
    return data


def _resolve_sqlite(base: Path, url: str) -> str:
    """``sqlite:///relative.db`` relative to the config file's folder, like the config's other paths."""
    prefix, sep, rest = url.partition(":///")
    if sep and prefix.split("+")[0] == "sqlite" and rest and not rest.startswith(("/", ":memory:", "file:")):
        return f"{prefix}:///{(base / rest).resolve()}"
    return url


def _validate(model: type[_AgencyConfig], path: Path, data: dict):
    if model is ResponderConfig and "responder" not in data:
        raise ConfigError(f"{path}: this is not a responder config (no [responder] table)")
    if model is RequesterConfig and "responder" in data:
        raise ConfigError(f"{path}: this is a responder config; `matcher match` needs a requester config")
    records = data.get("records")
    if not isinstance(records, dict) or "date_order" not in records:
        raise ConfigError(
            f"{path}: [records] date_order is required: say how dates in your records file are written, "
            'DMY, MDY or YMD (e.g. date_order = "DMY" when 03/04/1980 is 3 April 1980, "MDY" when it is '
            "4 March 1980); it is never guessed"
        )
    try:
        cfg = model.model_validate(data)
        cfg.key_spec()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return cfg


def load_responder_config(path: str | os.PathLike[str]) -> ResponderConfig:
    """Read and validate a responder config; ConfigError says what to fix."""
    path = Path(path)
    return _validate(ResponderConfig, path, _read(path))


def load_requester_config(path: str | os.PathLike[str]) -> RequesterConfig:
    """Read and validate a requester config; ConfigError says what to fix."""
    path = Path(path)
    return _validate(RequesterConfig, path, _read(path))


def load_config(path: str | os.PathLike[str]) -> ResponderConfig | RequesterConfig:
    """Read and validate a responder config (it has a ``[responder]`` table) or a requester config."""
    path = Path(path)
    data = _read(path)
    return _validate(ResponderConfig if "responder" in data else RequesterConfig, path, data)


def require_keyed_hash_opt_in(config: ResponderConfig | RequesterConfig) -> None:
    """Refuse keyed-hash unless the config says ``[keyed_hash] allow_keyed_hash = true``."""
    if config.keyed_hash is None or not config.keyed_hash.allow_keyed_hash:
        raise ConfigError(
            "keyed-hash protects against outsiders only (either agency can test guesses against the other's tags); "
            "it is offered only with [keyed_hash] allow_keyed_hash = true"
        )
