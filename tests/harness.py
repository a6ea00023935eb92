"""Harness shared by tests and benchmarks: synthetic token sets and a responder on loopback with mTLS.

It lives with the tests (imported as ``tests.harness``; ``bench/`` may import it, the
tests never import ``bench``).

Records are built directly as tokens (document key), skipping CSV, so a benchmark
measures the matching session, not the loader.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import rbcl

from clients import MatchClient, TlsFiles
from matcher.certs import TestCA
from matcher.config import ResponderConfig
from matcher.identity.match_keys import KeySpec
from matcher.identity.records import LoadResult, TokenisedRecord
from matcher.parallel import Workers
from matcher.protocols import group_backend
from matcher.server.service import ResponderServicer, TlsMaterial, build_server
from matcher.server.state import ResponderState

KEYSPEC = KeySpec.from_mapping("n1", {"document": ["document_number", "document_country"]})


def document_token(doc: str) -> bytes:
    return KEYSPEC.tokens({"document_number": doc, "document_country": "DEU"})[0][1]


def shared_documents(
    n_requester: int, n_responder: int, overlap: int, seed: int = 1
) -> tuple[list[str], list[str]]:
    """Two shuffled lists of document numbers sharing exactly ``overlap`` of them."""
    rng = random.Random(seed)
    shared = [f"S{rng.getrandbits(48):012X}" for _ in range(overlap)]
    req_docs = shared + [f"Q{rng.getrandbits(48):012X}" for _ in range(n_requester - overlap)]
    resp_docs = shared + [f"R{rng.getrandbits(48):012X}" for _ in range(n_responder - overlap)]
    rng.shuffle(req_docs)
    rng.shuffle(resp_docs)
    return req_docs, resp_docs


def synthetic_sets(
    n_requester: int, n_responder: int, overlap: int, seed: int = 1
) -> tuple[list[TokenisedRecord], list[TokenisedRecord]]:
    """Two record sets sharing exactly ``overlap`` documents (one token per record)."""
    req_docs, resp_docs = shared_documents(n_requester, n_responder, overlap, seed)
    requester = [TokenisedRecord(f"B-{i}", "", (("document", document_token(d)),)) for i, d in enumerate(req_docs)]
    responder = [
        TokenisedRecord(f"A-{i}", f"CASE-{i:08d}", (("document", document_token(d)),)) for i, d in enumerate(resp_docs)
    ]
    return requester, responder


def group_op_costs(samples: int = 2000, repeats: int = 7) -> dict:
    """Seconds per scalar multiplication and per hash to group, measured now (single core).

    ``smul``/``h2g`` are those of the backend in use (:mod:`matcher.protocols.group_backend`),
    the floor every ratio is taken against; ``smul_portable``/``h2g_portable`` are
    libsodium's, for reference; ``backend`` says which is in use. Best of ``repeats``,
    each backend's run right after the other's in every repeat, so that a busy moment on a
    shared machine slows both rather than one (their ratio is gated in CI). The IFMA
    figures are per element of a batch (as the kernels run them) and include the token's
    SHA-512 in the hash to group; libsodium's are per call, without it.
    """
    s = rbcl.crypto_core_ristretto255_scalar_random()
    p = rbcl.crypto_core_ristretto255_random()
    digests = [hashlib.sha512(b"%d" % i).digest() for i in range(samples)]
    fast = group_backend.FAST
    points = [p] * samples
    tokens = [b"%d" % i for i in range(samples)]
    runs: dict[str, Callable[[], object]] = {
        "smul_portable": lambda: [rbcl.crypto_scalarmult_ristretto255(s, p) for _ in range(samples)],
        "h2g_portable": lambda: [rbcl.crypto_core_ristretto255_from_hash(d) for d in digests],
    }
    if fast is not None:
        runs["smul"] = lambda: fast.multiply(s, points)
        runs["h2g"] = lambda: fast.hash_to_group(b"bench\x00", tokens)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    out: dict = {name: min(t) / samples for name, t in times.items()}
    out["backend"], out["backend_name"] = group_backend.describe(), group_backend.NAME
    if fast is None:
        out["smul"], out["h2g"] = out["smul_portable"], out["h2g_portable"]
    return out


@dataclass
class Loopback:
    """A responder serving ``responder`` records on 127.0.0.1 with mTLS, and a client for it.

    ``state`` is None when the responder runs in its own process.
    """

    state: ResponderState | None
    port: int
    tls: TlsFiles
    setup_seconds: float
    from_cache: bool = False

    def client(self, workers: int | Workers = 0) -> MatchClient:
        return MatchClient(f"127.0.0.1:{self.port}", tls=self.tls, server_name="agency-a", workers=workers)


def _responder_config(tmp: str, state_dir: Path | None, workers: int, max_request_size: int) -> ResponderConfig:
    return ResponderConfig.model_validate(
        {
            "responder": {
                "listen": "127.0.0.1:0",
                "watchlist": str(Path(tmp) / "unused.csv"),
                "state_dir": str(state_dir or Path(tmp) / "state"),
                "workers": workers,
                "max_request_size": max_request_size,
            },
            "peers": [{"name": "agency-b", "common_name": "agency-b"}],
            "records": {"date_order": "DMY"},
            "norm_version": KEYSPEC.norm_version,
            "match_keys": {k.name: list(k.fields) for k in KEYSPEC.keys},
        }
    )


def _serve(cfg: ResponderConfig, responder: list[TokenisedRecord], tls: TlsMaterial, conn) -> None:
    """Child process: set up, serve, report (port, setup seconds, from cache), wait for the word to stop."""
    t0 = time.perf_counter()
    state = ResponderState(cfg, LoadResult(responder, [], len(responder)))
    setup_seconds = time.perf_counter() - t0
    server, port, _ = build_server(ResponderServicer(state), "127.0.0.1:0", tls)
    server.start()
    conn.send((port, setup_seconds, state.current().from_cache))
    conn.recv()
    server.stop(0).wait()
    state.close()


@contextmanager
def loopback_responder(
    responder: list[TokenisedRecord], *, workers: int = 0, state_dir: Path | None = None,
    max_request_size: int = 2_000_000, own_process: bool = False,
) -> Iterator[Loopback]:
    """Start a responder (cold: a new key epoch and setup unless ``state_dir`` has a cached one).

    ``own_process`` runs it in a separate process, as a real deployment does (no GIL
    shared with the requester); its setup time is measured inside that process.
    """
    ca = TestCA()
    server_cert, client_cert = ca.issue("agency-a"), ca.issue("agency-b")
    tls = TlsMaterial(server_cert.cert_pem, server_cert.key_pem, ca.cert_pem)
    client_tls = TlsFiles(client_cert.cert_pem, client_cert.key_pem, ca.cert_pem)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _responder_config(tmp, state_dir, workers, max_request_size)
        if own_process:
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(cfg, responder, tls, child))
            proc.start()
            try:
                port, setup_seconds, from_cache = parent.recv()
                yield Loopback(None, port, client_tls, setup_seconds, from_cache)
            finally:
                parent.send("stop")
                proc.join(30)
            return
        t0 = time.perf_counter()
        state = ResponderState(cfg, LoadResult(responder, [], len(responder)))
        setup_seconds = time.perf_counter() - t0
        server, port, _ = build_server(ResponderServicer(state), "127.0.0.1:0", tls)
        server.start()
        try:
            yield Loopback(state, port, client_tls, setup_seconds, state.current().from_cache)
        finally:
            server.stop(0).wait()
            state.close()
