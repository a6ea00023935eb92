"""End-to-end session benchmark: 5k × 5k ecdh over loopback gRPC with mTLS (cold and warm setup)."""

from __future__ import annotations

import pytest

from tests.harness import KEYSPEC, loopback_responder, synthetic_sets

N = 5000


@pytest.fixture(scope="module")
def sets():
    return synthetic_sets(N, N, N // 10)


def test_session_cold_setup(benchmark, sets):
    req, resp = sets

    def run():
        with loopback_responder(resp) as lb, lb.client() as client:
            return client.match(req, KEYSPEC)

    result = benchmark.pedantic(run, rounds=2, iterations=1)
    assert len(result.hits) == N // 10


def test_session_warm_setup(benchmark, sets):
    req, resp = sets
    with loopback_responder(resp) as lb, lb.client() as client:
        result = benchmark.pedantic(lambda: client.match(req, KEYSPEC), rounds=3, iterations=1)
    assert len(result.hits) == N // 10
