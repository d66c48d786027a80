"""Selection without pacemaker: the uncertainty window, farthest-point and random reduction,
committee disagreement."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from matbrain.active.selection import (
    SelectionConfig,
    committee_disagreement,
    farthest_point,
    radial_fingerprint,
    select,
)


def _pool(n: int = 12) -> list:
    frames = []
    for i in range(n):
        a = bulk("Cu", "fcc", a=3.5 + 0.02 * i, cubic=True)
        a.rattle(0.02, seed=i)
        frames.append(a)
    return frames


def test_window_keeps_the_middle_and_counts_the_tail():
    pool = _pool(10)
    scores = np.array([0.5, 0.9, 1.6, 2.0, 3.0, 5.0, 8.0, 30.0, 100.0, 1.0])
    cfg = SelectionConfig(low=1.5, high=25, budget=10, method="random")
    chosen = select(pool, scores, cfg)
    assert sorted(chosen.indices) == [2, 3, 4, 5, 6]  # under the budget: all of the window
    assert (chosen.in_window, chosen.above_window) == (5, 2)


def test_reduction_to_the_budget_is_reproducible_and_inside_the_window():
    pool = _pool(12)
    scores = np.linspace(1.0, 12.0, 12)
    for method in ("farthest-point", "random"):
        cfg = SelectionConfig(low=2.0, high=11.5, budget=4, method=method, seed=3)
        first = select(pool, scores, cfg).indices
        assert len(set(first)) == 4 and all(2.0 <= scores[i] < 11.5 for i in first)
        assert select(pool, scores, cfg).indices == first
    fps = select(
        pool, scores, SelectionConfig(low=2.0, high=11.5, budget=2, method="farthest-point")
    )
    assert fps.indices[0] == 10  # starts at the most uncertain frame in the window
    assert fps.indices[1] == 1  # then the frame least like it (the smallest cell in the window)


def test_farthest_point_stops_at_copies():
    x = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    assert farthest_point(x, budget=4) == [0, 1]


def test_fingerprint_sees_volume_and_order():
    a = bulk("Cu", "fcc", a=3.6, cubic=True)
    b = bulk("Cu", "fcc", a=3.7, cubic=True)
    assert not np.allclose(radial_fingerprint(a), radial_fingerprint(b))
    assert np.allclose(radial_fingerprint(a), radial_fingerprint(a.repeat(2)))  # per atom


def test_config_and_input_errors():
    with pytest.raises(ValueError, match="window is empty"):
        SelectionConfig(low=5, high=2)
    with pytest.raises(ValueError, match="3 uncertainties for 2 frames"):
        select(_pool(2), np.ones(3), SelectionConfig())
    with pytest.raises(ValueError, match="needs the ACE potential"):
        select(_pool(12), np.full(12, 2.0), SelectionConfig(budget=2, method="d-optimal"))


def test_committee_disagreement():
    frames = _pool(3)
    same = committee_disagreement(frames, [EMT(), EMT()])
    assert np.allclose(same, 0.0)
    lj = LennardJones(sigma=2.3, epsilon=0.4, rc=6.0)
    spread = committee_disagreement(frames, [EMT(), lj])
    assert (spread > 0.01).all()
    with pytest.raises(ValueError, match="at least two"):
        committee_disagreement(frames, [EMT()])
