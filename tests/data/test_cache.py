from __future__ import annotations

import numpy as np
from ase import Atoms

from matbrain.data.cache import GraphSet, process_dataset
from matbrain.data.dataset import CrystalDataset
from matbrain.data.graphs import GraphConfig
from matbrain.properties import resolve_properties


def _small(bundled, n=12):
    return bundled.subset(range(n))


def test_cache_is_reused_and_round_trips(bundled_structures, tmp_path):
    ds = _small(bundled_structures)
    first = process_dataset(ds, GraphConfig(), cache_dir=tmp_path, progress=False)
    assert not first.from_cache
    assert len(list(tmp_path.glob("graphs-*.npz"))) == 1
    second = process_dataset(ds, GraphConfig(), cache_dir=tmp_path, progress=False)
    assert second.from_cache and second.key == first.key
    for sid, g in first.graphs.items():
        h = second.graphs[sid]
        for name in ("numbers", "center", "neighbor", "vec", "triplet_a", "triplet_b", "cos_angle"):
            assert np.array_equal(getattr(g, name), getattr(h, name)), name
        assert h.volume == g.volume > 0
    assert first.graphs[ds.ids[0]].volume == ds.structures[0].cell.volume  # kept for the kernel


def test_cache_invalidated_by_settings_and_structures(bundled_structures, tmp_path):
    ds = _small(bundled_structures)
    a = process_dataset(ds, GraphConfig(cutoff_A=6.0), cache_dir=tmp_path, progress=False)
    b = process_dataset(ds, GraphConfig(cutoff_A=5.0), cache_dir=tmp_path, progress=False)
    assert a.key != b.key and not b.from_cache
    moved = _small(bundled_structures)
    moved.structures = [s.copy() for s in moved.structures]
    moved.structures[0].positions[0] += 0.05
    c = process_dataset(moved, GraphConfig(cutoff_A=6.0), cache_dir=tmp_path, progress=False)
    assert c.key != a.key and not c.from_cache
    # labels are not part of the key: relabelled data reuses the graphs
    relabelled = _small(bundled_structures)
    relabelled.targets = relabelled.targets + 1.0
    assert process_dataset(
        relabelled, GraphConfig(cutoff_A=6.0), cache_dir=tmp_path, progress=False
    ).from_cache


def test_bad_structures_are_skipped_and_reported(tmp_path):
    good = Atoms("Cu", cell=np.eye(3) * 2.5, pbc=True)
    bad = Atoms("Cu2", positions=[[0, 0, 0], [0.05, 0, 0]], cell=np.eye(3) * 3, pbc=True)
    ds = CrystalDataset(
        ["ok", "bad"],
        [good, bad],
        np.zeros((2, 1)),
        resolve_properties(["formation_energy"]),
        "test",
    )
    graphs = process_dataset(ds, cache_dir=tmp_path, progress=False)
    assert list(graphs.graphs) == ["ok"]
    assert "overlapping" in graphs.skipped["bad"]
    assert GraphSet.load(next(tmp_path.glob("graphs-*.npz"))).skipped == graphs.skipped
