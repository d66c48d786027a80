"""MD sampling for the loop: the same pool from local processes and from a Dask cluster."""

from __future__ import annotations

import numpy as np
from ase.build import bulk

from matbrain.active.sampling import SamplingConfig, sample_pool


def test_md_pool_is_the_same_on_a_two_worker_dask_cluster(trained_run):
    seeds = [bulk("Cu", "fcc", a=3.6, cubic=True)]
    settings = dict(temperatures_K=[300.0, 600.0], steps=20, sample_interval=5,
                    trajectories_per_temperature=1, workers=2)  # fmt: skip
    local = sample_pool(trained_run.model_path, seeds, SamplingConfig(**settings), seed=3)
    lines: list[str] = []
    on_dask = sample_pool(trained_run.model_path, seeds,
                          SamplingConfig(**settings, executor="dask"), seed=3,
                          echo=lines.append)  # fmt: skip
    assert lines[0].startswith("Dask dashboard: http")
    assert len(local.frames) == len(on_dask.frames) > 0
    assert local.trajectories == on_dask.trajectories
    for a, b in zip(local.frames, on_dask.frames, strict=True):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-8)
