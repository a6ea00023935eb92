"""bench/compare_paillier.py's floor: operation counts that follow choose_params, positive parts (no timing limits)."""

from __future__ import annotations

import pytest

from bench.compare_paillier import cores_used, main, measure_floor
from matcher.parallel import default_processes
from matcher.protocols import paillier as pl


@pytest.fixture(scope="module")
def small_key() -> pl.RequesterSecret:
    return pl.generate_key(512, _allow_small=True)


@pytest.mark.parametrize("size", [40, 400])
def test_floor_counts_follow_choose_params(small_key, size):
    floor = measure_floor(size, 512, samples=4, cores=2, key=small_key)
    params = pl.choose_params(size, costs=pl.costs_for(small_key.bits))
    bins, degree, replies = params.bins, params.degree, params.choices * size
    assert (floor.bins, floor.degree, floor.choices) == (bins, degree, params.choices)
    assert [p.count for p in floor.parts] == [replies, replies * (degree - 1), replies, bins, bins * degree, replies]
    assert all(p.per_op_s > 0 and p.per_op_busy_s > 0 for p in floor.parts)
    assert floor.cpu_s == pytest.approx(sum(p.per_op_s * p.count for p in floor.parts))
    assert floor.wall_s == pytest.approx(floor.cpu_s / 2)


def test_cores_used():
    assert cores_used(1) == 1
    assert cores_used(0) == cores_used(10_000) == default_processes()


def test_floor_only_cli(capsys):
    assert main(["--size", "40", "--key-bits", "512", "--floor-samples", "3", "--floor-only"]) == 0
    out = capsys.readouterr().out
    assert "floor" in out and "target 30 s / floor" in out and "ours" not in out
