"""The two ristretto255 backends compute the same bytes, refuse the same encodings, and interoperate.

The comparisons need the IFMA backend: on a machine without AVX-512 IFMA (or without
the built extension) they are skipped with the selector's reason, and the portable
path is what the rest of the suite tests.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rbcl

from matcher.errors import InvalidElement
from matcher.protocols import ecdh, group_backend
from tests.conftest import EXTRA_OUTPUT
from tests.test_e2e import EXPECTED_DEMO

ROOT = Path(__file__).resolve().parent.parent
FAST = group_backend.FAST
needs_fast = pytest.mark.skipif(FAST is None, reason=f"IFMA backend not in use here: {group_backend.describe()}")


@pytest.fixture
def portable(monkeypatch):
    """Run the ecdh kernels on libsodium in this process (and in worker processes it spawns)."""
    monkeypatch.setattr(group_backend, "FAST", None)
    monkeypatch.setattr(group_backend, "NAME", "portable")
    monkeypatch.setattr(group_backend, "DETAIL", f"libsodium, forced by {group_backend.ENV}")
    monkeypatch.setenv(group_backend.ENV, "portable")


def _both(monkeypatch, fn, *args):
    """fn(*args) on the IFMA backend, then on the portable one."""
    fast = fn(*args)
    with monkeypatch.context() as m:
        m.setattr(group_backend, "FAST", None)
        slow = fn(*args)
    return fast, slow


@needs_fast
@pytest.mark.parametrize("seed", range(4))
def test_every_kernel_gives_libsodiums_bytes_for_batch_sizes_1_to_17(seed, monkeypatch):
    rng = random.Random(seed)
    for n in range(1, 18):
        tokens = [rng.randbytes(rng.randrange(0, 80)) for _ in range(n)]
        key, key2 = ecdh.new_key(), ecdh.new_key()
        blinded, ref = _both(monkeypatch, ecdh.blind_tokens, key, tokens)
        assert blinded == ref
        assert blinded == [rbcl.crypto_scalarmult_ristretto255(key, ecdh.hash_to_group(t)) for t in tokens]
        evaluated, ref = _both(monkeypatch, ecdh.evaluate, key2, blinded)
        assert evaluated == ref
        inv = ecdh.invert_key(key)
        unblinded, ref = _both(monkeypatch, ecdh.unblind, inv, evaluated)
        assert unblinded == ref == ecdh.blind_tokens(key2, tokens)
        outs, ref = _both(monkeypatch, ecdh.unblind_outputs, inv, evaluated)
        assert outs == ref == ecdh.output_hashes(unblinded)
        pairs = [(t, b"case-%d" % i) for i, t in enumerate(tokens)]
        rows, ref = _both(monkeypatch, ecdh.setup_rows, key2, pairs, 12, 32, True)
        assert [(r[0], r[2]) for r in rows] == [(r[0], r[2]) for r in ref]  # labels carry random nonces
        opened = [ecdh.open_label(r[2], r[1], t) for r, (t, _) in zip(rows, pairs, strict=True)]
        assert opened == [case for _, case in pairs]
        points_only, ref = _both(monkeypatch, ecdh.setup_rows, key2, pairs, 0, 0)  # cardinality setup
        assert points_only == ref == [(y, b"") for y in ecdh.blind_tokens(key2, tokens)]


@needs_fast
def test_bytes_like_tokens_hash_as_bytes_do(monkeypatch):
    tokens = [bytearray(b"x" * 300), memoryview(b"token"), b""]
    key = ecdh.new_key()
    fast, slow = _both(monkeypatch, ecdh.blind_tokens, key, tokens)
    assert fast == slow == ecdh.blind_tokens(key, [bytes(t) for t in tokens])


@needs_fast
@pytest.mark.parametrize("position", [0, 1, 600])
def test_a_token_that_is_not_bytes_like_raises_type_error_on_both_backends(position, monkeypatch):
    # the fast kernels copy the tokens under the GIL and hash them without it; a bad one
    # half-way must fail the call as hashlib does, with what was copied so far freed
    tokens: list[object] = [b"t%d" % i * 40 for i in range(700)]
    tokens[position] = 5
    key = ecdh.new_key()
    with pytest.raises(TypeError):
        ecdh.blind_tokens(key, tokens)
    with monkeypatch.context() as m:
        m.setattr(group_backend, "FAST", None)
        with pytest.raises(TypeError):
            ecdh.blind_tokens(key, tokens)


@needs_fast
def test_random_points_and_scalars_including_high_scalars(monkeypatch):
    points = [rbcl.crypto_core_ristretto255_from_hash(os.urandom(64)) for _ in range(17)]
    order = 2**252 + 27742317777372353535851937790883648493
    for k in (1, 2, order - 1, order - 2, 2**252, 2**255 - 1, random.randrange(1, order)):
        fast, slow = _both(monkeypatch, ecdh.evaluate, k.to_bytes(32, "little"), points)
        assert fast == slow


ORDER = 2**252 + 27742317777372353535851937790883648493


@needs_fast
@pytest.mark.parametrize(
    "k",
    [3, ORDER + 1, ORDER + 2, 2 * ORDER - 1, 2**255 - 2, 2**255 - 19, 2**256 - 1, 2**256 - 2, 2**255 + 1],
    ids=lambda k: hex(k)[:10],
)
def test_keys_at_the_edges_of_halving_mod_the_order_give_libsodiums_bytes(k, monkeypatch):
    """The kernels multiply by k/2 mod the order and encode the double: odd and even keys,
    keys above the order and with bit 255 set (cleared, as libsodium does) all agree."""
    points = [rbcl.crypto_core_ristretto255_from_hash(os.urandom(64)) for _ in range(9)]
    key = k.to_bytes(32, "little")
    assert FAST.multiply(key, points) == [rbcl.crypto_scalarmult_ristretto255(key, p) for p in points]
    fast, slow = _both(monkeypatch, ecdh.unblind_outputs, key, points)
    assert fast == slow


@needs_fast
@pytest.mark.parametrize("k", [0, ORDER, 2 * ORDER, 2**255 + ORDER], ids=["0", "l", "2l", "2^255+l"])
def test_keys_whose_results_are_the_identity_are_refused_as_libsodium_does(k, monkeypatch):
    points = [rbcl.crypto_core_ristretto255_from_hash(os.urandom(64)) for _ in range(11)]
    key = k.to_bytes(32, "little")
    with pytest.raises(RuntimeError):
        rbcl.crypto_scalarmult_ristretto255(key, points[0])
    assert FAST.multiply(key, points) == 0
    assert FAST.multiply_outputs(key, b"d", points) == 0
    assert FAST.blind(key, b"d", [b"x"]) == 0
    assert FAST.multiply_each(key, points) == [None] * len(points)


@needs_fast
def test_batch_sizes_across_lanes_and_shared_inversion_chunks_give_libsodiums_bytes():
    """The batch encoding shares one field inversion per 512 elements (64 vectors of eight):
    sizes just below, at and above one and two chunks, each element against libsodium."""
    chunk = group_backend._CHUNK_ELEMENTS
    sizes = (23, 24, 25, chunk - 1, chunk, chunk + 1, 2 * chunk + 9)
    dom, out = b"matcher/test/h2g\x00", b"matcher/test/out\x00"
    tokens = [os.urandom(i % 37) for i in range(max(sizes))]
    key, key2 = ecdh.new_key(), ecdh.new_key()
    hashed = [rbcl.crypto_core_ristretto255_from_hash(hashlib.sha512(dom + t).digest()) for t in tokens]
    blinded = [rbcl.crypto_scalarmult_ristretto255(key, h) for h in hashed]
    again = [rbcl.crypto_scalarmult_ristretto255(key2, p) for p in blinded]
    for n in sizes:
        assert FAST.blind(key, dom, tokens[:n]) == blinded[:n], n
        digests, points = FAST.blind_outputs(key, dom, out, tokens[:n])
        assert points == blinded[:n] and digests == [hashlib.sha512(out + p).digest() for p in blinded[:n]], n
        assert FAST.multiply(key2, blinded[:n]) == again[:n], n
        assert FAST.multiply_outputs(key2, out, blinded[:n]) == [hashlib.sha512(out + q).digest() for q in again[:n]], n


@needs_fast
@pytest.mark.parametrize("seed", range(3))
def test_refused_lanes_sharing_an_inversion_with_valid_ones_leave_them_exact(seed):
    """A refused encoding decodes a dummy identity lane; its zero must not spoil the shared
    inversion of the valid elements in the same vector, chunk or the next chunk."""
    rng = random.Random(seed)
    chunk = group_backend._CHUNK_ELEMENTS
    good = [rbcl.crypto_core_ristretto255_from_hash(rng.randbytes(64)) for _ in range(40)]
    bad = [v for v in NOT_POINTS.values() if len(v) == 32]
    n = chunk + 40
    points = [good[i % 40] for i in range(n)]
    for pos in rng.sample(range(n), 12) + [0, 7, chunk - 1, chunk, n - 1]:
        points[pos] = rng.choice(bad)
    key = ecdh.new_key()
    expected = {p: rbcl.crypto_scalarmult_ristretto255(key, p) for p in good}
    assert FAST.multiply_each(key, points) == [expected.get(p) for p in points]


NOT_POINTS = {
    "identity": bytes(32),
    "p (non-canonical zero)": (2**255 - 19).to_bytes(32, "little"),
    "p + 2 (non-canonical)": (2**255 - 17).to_bytes(32, "little"),
    "2^255 - 2 (non-canonical)": (2**255 - 2).to_bytes(32, "little"),
    "top bit set": (2**256 - 2).to_bytes(32, "little"),
    "odd s": (1).to_bytes(32, "little"),
    "off the curve": group_backend._invalid_even_encoding(),
    "31 bytes": bytes(31),
}


@needs_fast
@pytest.mark.parametrize("name", sorted(NOT_POINTS))
@pytest.mark.parametrize("position", [0, 5, 8, 16])
def test_both_backends_refuse_the_same_encodings_with_the_same_error(name, position, monkeypatch):
    good = [rbcl.crypto_core_ristretto255_from_hash(os.urandom(64)) for _ in range(17)]
    points = good[:position] + [NOT_POINTS[name]] + good[position + 1 :]
    key = ecdh.new_key()
    errors = []
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(group_backend, "FAST", None)
            for kernel in (ecdh.evaluate, ecdh.unblind, ecdh.unblind_outputs):
                with pytest.raises(InvalidElement) as e:
                    kernel(key, points, 100)
                errors.append(str(e.value))
    assert len(set(errors)) == 1 and f"element {100 + position} " in errors[0]


@needs_fast
def test_fast_kernels_refuse_identity_and_noncanonical_without_the_python_check():
    key = ecdh.new_key()
    good = rbcl.crypto_core_ristretto255_from_hash(os.urandom(64))
    for bad in NOT_POINTS.values():
        assert FAST.multiply(key, [good, good, bad]) == 2
        assert FAST.multiply_outputs(key, b"d", [bad]) == 0


@needs_fast
def test_self_test_refuses_a_backend_that_differs_by_one_bit():
    class OneBitOff:
        def __getattr__(self, name):
            return getattr(FAST, name)

        def multiply(self, key, points):
            out = FAST.multiply(key, points)
            if isinstance(out, list) and out:
                out[-1] = bytes([out[-1][0] ^ 2]) + out[-1][1:]
            return out

    group_backend.self_test(FAST)
    with pytest.raises(group_backend.SelfTestFailed, match="multiplication differs"):
        group_backend.self_test(OneBitOff())


def test_loader_refuses_files_others_can_write(tmp_path):
    f = tmp_path / "ext.so"
    f.write_bytes(b"")
    os.chmod(tmp_path, 0o755)
    os.chmod(f, 0o755)
    assert group_backend._safe_to_load(str(f)) is None
    os.chmod(f, 0o775)
    assert "writable by group or others" in group_backend._safe_to_load(str(f))
    os.chmod(f, 0o755)
    os.chmod(tmp_path, 0o777)
    assert "writable by group or others" in group_backend._safe_to_load(str(f))


def _selected(env_value: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "from matcher.protocols import group_backend as g; print(g.describe())"],
        env=dict(os.environ, **{group_backend.ENV: env_value}), capture_output=True, text=True, cwd=ROOT, check=True,
    )
    return out.stdout.strip()


def test_environment_variable_forces_the_portable_backend():
    assert _selected("portable") == "portable (libsodium, forced by MATCHER_GROUP_BACKEND)"
    assert _selected("bogus").startswith("portable (libsodium; MATCHER_GROUP_BACKEND='bogus' is not one of")
    auto = _selected("auto")
    # this process may itself be forced portable (make test MATCHER_GROUP_BACKEND=portable)
    assert auto.startswith("ifma (") if FAST is not None else auto.startswith(("ifma (", "portable ("))


def test_forced_portable_kernels_are_libsodium(portable):
    tokens = [b"a", b"b", b"c"]
    key = ecdh.new_key()
    assert group_backend.FAST is None
    assert ecdh.blind_tokens(key, tokens) == [
        rbcl.crypto_scalarmult_ristretto255(key, rbcl.crypto_core_ristretto255_from_hash(
            hashlib.sha512(b"matcher/v1/h2g\x00" + t).digest())) for t in tokens]


def _serve(agencies, request, backend: str):
    proc = subprocess.Popen(
        [sys.executable, "-m", "matcher.cli", "serve", "--config", str(agencies.responder_toml), "--grace", "1"],
        stderr=subprocess.PIPE, text=True, cwd=agencies.workdir,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **{group_backend.ENV: backend}),
    )
    lines, port = [], None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and port is None:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"serving on port (\d+)", line)
        port = m.group(1) if m else None
    request.addfinalizer(lambda: (proc.kill(), proc.wait(),
                                  EXTRA_OUTPUT.setdefault(request.node.nodeid, []).append("".join(lines))))
    assert port, "server did not start:\n" + "".join(lines)
    return f"127.0.0.1:{port}", "".join(lines)


def _match(agencies, peer) -> dict:
    from matcher.cli import main

    out = agencies.workdir / "out" / "hits.csv"
    assert main(["match", "--config", str(agencies.requester_toml), "--records",
                 str(agencies.workdir / "agency_b_records.csv"), "--peer", peer, "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    return {r["record_id"]: (tuple(r["match_keys"].split(";")), r["case_ref"]) for r in rows}


@needs_fast
def test_portable_responder_and_fast_requester_interoperate(agencies, request):
    peer, log = _serve(agencies, request, "portable")
    assert "ristretto255 backend: portable (libsodium, forced by MATCHER_GROUP_BACKEND)" in log
    assert group_backend.NAME == "ifma"
    assert _match(agencies, peer) == EXPECTED_DEMO


@needs_fast
def test_fast_responder_and_portable_requester_interoperate(agencies, request, portable, capsys):
    peer, log = _serve(agencies, request, "auto")
    assert "ristretto255 backend: ifma (" in log
    assert _match(agencies, peer) == EXPECTED_DEMO
    from matcher.cli import main

    assert main(["policy", "--config", str(agencies.requester_toml), "--peer", peer]) == 0
    out = capsys.readouterr().out
    assert "ristretto255 here:    portable (libsodium, forced by MATCHER_GROUP_BACKEND)" in out
    from matcher.protocols import modexp_backend

    assert f"paillier here:        {modexp_backend.describe()}" in out


def test_ifma_backend_is_selected_where_the_cpu_and_the_build_allow_it():
    """Where the extension is built and the CPU has IFMA, a failed self-test is a failure, not a skip."""
    from matcher.protocols._ifma import build

    if group_backend._REQUIRED_FLAGS[1] not in group_backend._cpu_flags() or not build.extension_path().exists():
        pytest.skip("no AVX-512 IFMA CPU or no built extension here")
    if os.environ.get(group_backend.ENV, "auto") == "portable":
        pytest.skip("portable backend forced by the environment")
    assert group_backend.describe().startswith("ifma ("), group_backend.describe()
    assert ecdh.GROUP_BACKEND == "ifma-libcrypto_mb"  # the metrics' build info
