"""The responder's start builds its setup from buffers; the bytes are those of the straightforward path.

The start seals the labels in batches that come back as one buffer of fixed-width rows
(tag ‖ label), sorts the rows in one buffer (C, or Python's sort on bytes), writes the
setup cache from that buffer, and computes the watchlist digest from sorted fixed-width
keys. None of it may change a byte: the setup cache (MSETUP3, its HMAC), the setup id
and the watchlist digest bound into the epoch key are compared here with what the
straightforward code (one Python tuple per row, sorted, joined) makes of the same input.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from matcher.parallel import Workers
from matcher.protocols import ecdh, label_backend
from matcher.storage.setup_cache import entries_digest, load_setup, save_setup, setup_id


@pytest.fixture(params=["C rows", "python rows"])
def rows_backend(request, monkeypatch):
    """The C sealer/sorter in use (when built), or the Python fallback forced."""
    if request.param == "python rows":
        monkeypatch.setattr(label_backend, "ROWS", False)
    elif not label_backend.ROWS:
        pytest.skip("the C row sealer is not built here")
    return request.param


class _CountingNonces:
    """os.urandom stand-in: one deterministic stream, so two paths that draw the same amounts in the
    same order get the same nonces (the start draws them per batch, the straightforward path at once)."""

    def __init__(self) -> None:
        self.drawn = 0

    def urandom(self, n: int) -> bytes:
        out = hashlib.shake_256(b"nonces").digest(self.drawn + n)[self.drawn :]
        self.drawn += n
        return out


def _straightforward_digest(entries, *context: str) -> str:
    h = hashlib.sha256("\x00".join(context).encode("utf-8") + b"\x00")
    for token, ref in sorted(entries):
        h.update(len(token).to_bytes(4, "big") + token + len(ref).to_bytes(4, "big") + ref)
    return h.hexdigest()


@pytest.mark.parametrize("shape", ["fixed width", "references of several lengths", "tokens of several lengths",
                                   "tokens sharing a prefix, some a prefix of another"])
def test_watchlist_digest_is_the_straightforward_one(rows_backend, shape):
    tokens = [hashlib.sha256(b"t%d" % (i % 700)).digest() for i in range(1000)]  # 300 tokens twice
    if shape == "tokens of several lengths":
        tokens = [t[: 20 + i % 13] for i, t in enumerate(tokens)]
    if shape == "tokens sharing a prefix, some a prefix of another":
        # the C sort compares 8 bytes after the shared prefix first: short tokens, zero bytes, ties
        tokens = [b"matcher/v1/n2/document/DEU/" + t[: i % 11] + bytes(i % 3) for i, t in enumerate(tokens)]
    refs = [b"CASE-%05d" % (i * 7919 % 1000) for i in range(1000)]
    if shape != "fixed width":
        refs = [r[: 3 + i % 8] for i, r in enumerate(refs)]
    entries = list(zip(tokens, refs, strict=True))
    assert entries_digest(entries, "fp", "requester", "6") == _straightforward_digest(entries, "fp", "requester", "6")
    assert entries_digest(iter(entries), "x") == _straightforward_digest(entries, "x")
    assert entries_digest([], "x") == _straightforward_digest([], "x")


@pytest.mark.parametrize("duplicates", [False, True])
def test_setup_from_buffers_gives_the_straightforward_cache_bytes_and_id(rows_backend, duplicates, monkeypatch,
                                                                         tmp_path):
    key = ecdh.new_key()
    n = 9000  # more than one batch of the split path
    entries = [(b"tok-%d" % (i % 8000 if duplicates else i), b"CASE-%d" % (i * 31 % 977)) for i in range(n)]
    outputs = ecdh.setup_outputs(key, [t for t, _ in entries])
    nonces = _CountingNonces()
    monkeypatch.setattr(ecdh, "os", nonces)
    with Workers(1) as inline:  # batches in order: the nonces are drawn in the straightforward order
        fast = ecdh.responder_setup(key, entries, 7, workers=inline, outputs=lambda: outputs)
    nonces.drawn = 0
    plain = ecdh.responder_setup(key, entries, 7)  # one tuple per row, sorted, no joined rows
    assert plain.rows is None and fast.rows is not None
    assert fast.tags == plain.tags and fast.labels == plain.labels
    mac_key = b"k" * 32
    fast_id = save_setup(tmp_path / "fast.bin", fast, {"epoch": "e"}, mac_key=mac_key)
    plain_id = save_setup(tmp_path / "plain.bin", plain, {"epoch": "e"}, mac_key=mac_key)
    assert fast.rows is None  # dropped once written
    assert (tmp_path / "fast.bin").read_bytes() == (tmp_path / "plain.bin").read_bytes()
    assert fast_id == plain_id == setup_id(plain)
    assert (tmp_path / "fast.bin").stat().st_mode & 0o777 == 0o600
    loaded = load_setup(tmp_path / "fast.bin", mac_key=mac_key)
    assert loaded is not None and loaded[1] == plain


def test_sort_rows_in_c_orders_as_python():
    if label_backend.SEAL is None:
        pytest.skip("the C label module is not built here")
    rows = [hashlib.sha256(b"%d" % (i % 300)).digest()[:9] for i in range(1000)]
    assert label_backend.SEAL.sort_rows(b"".join(rows), 9) == b"".join(sorted(rows))
    with pytest.raises(ValueError):
        label_backend.SEAL.sort_rows(b"x" * 10, 3)


def test_a_start_writes_the_setup_the_straightforward_path_makes(agencies, start):
    """The cache a cold start wrote is, byte for byte, the straightforward setup of its watchlist under
    its key (labels rebuilt with the nonces found in the file), with the same HMAC and setup id."""
    running = start()
    epoch = running.state.current()
    assert not epoch.from_cache
    path = agencies.workdir / "agency_a_state" / f"setup-{epoch.key.epoch}.bin"
    mac_key = epoch.key.subkey("setup-cache")
    meta, written = load_setup(path, mac_key=mac_key)
    nonce_of = {tag: label[: ecdh.NONCE_BYTES] for tag, label in zip(written.tags, written.labels, strict=True)}
    size = len(written.labels[0]) - ecdh.NONCE_BYTES - 16
    refs: dict[bytes, set[bytes]] = {}
    for token, ref in running.state.entries:
        refs.setdefault(token, set()).add(ref)
    rows = []
    for token, those in refs.items():
        ref = b";".join(sorted(those))
        out = ecdh.setup_outputs(epoch.key.key, [token])
        tag = out[: written.tag_length]
        nonce = nonce_of[tag]
        plain = len(ref).to_bytes(2, "big") + ref + bytes(size - 2 - len(ref))
        ad = ecdh.LABEL_AD_PREFIX + hashlib.sha256(token).digest()
        rows.append((tag, nonce + ChaCha20Poly1305(out[32:]).encrypt(nonce, plain, ad)))
    rows.sort()
    straightforward = ecdh.ResponderSetup(written.tag_length, [t for t, _ in rows], [x for _, x in rows])
    again = agencies.workdir / "straightforward.bin"
    assert save_setup(again, straightforward, meta, mac_key=mac_key) == epoch.setup_id
    assert again.read_bytes() == path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
