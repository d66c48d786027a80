"""The sharded graph cache: the same graphs and batches as in memory, read one shard at a time."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from matbrain.data.batching import collate
from matbrain.data.cache import process_dataset
from matbrain.data.graphs import GraphConfig
from matbrain.data.shards import ShardedGraphs, process_dataset_sharded, shard_order
from matbrain.data.splits import TRAIN
from matbrain.training.config import resolve_config
from matbrain.training.pipeline import build_model, prepare_data, run_training
from matbrain.training.trainer import Trainer

FIELDS = ("numbers", "center", "neighbor", "vec", "triplet_a", "triplet_b", "cos_angle")


def _same_graph(g, h) -> bool:
    return all(np.array_equal(getattr(g, name), getattr(h, name)) for name in FIELDS)


def test_shards_hold_the_graphs_of_the_single_file_cache(bundled_structures, tmp_path):
    ds = bundled_structures.subset(range(30))
    whole = process_dataset(ds, GraphConfig(), cache_dir=tmp_path, progress=False)
    shards = process_dataset_sharded(ds, GraphConfig(), 8, cache_dir=tmp_path, progress=False)
    assert len(list(shards.folder.glob("shard-*.npz"))) == 4  # 30 structures in shards of 8
    assert shards.ids == list(whole.graphs)
    streamed = shards.sequence(shards.ids, max_loaded=2)
    for sid, graph in zip(shards.ids, streamed, strict=True):
        assert _same_graph(graph, whole.graphs[sid]), sid
    assert streamed.loads == 4 and len(streamed._loaded) <= 2  # each shard read once, 2 held


def test_an_interrupted_build_resumes_at_the_first_missing_shard(bundled_structures, tmp_path):
    ds = bundled_structures.subset(range(20))
    shards = process_dataset_sharded(ds, GraphConfig(), 8, cache_dir=tmp_path, progress=False)
    first = shards.folder / "shard-00000.npz"
    written = first.stat().st_mtime_ns
    (shards.folder / "index.json").unlink()  # as if killed before the index was written
    (shards.folder / "shard-00002.npz").unlink()
    again = process_dataset_sharded(ds, GraphConfig(), 8, cache_dir=tmp_path, progress=False)
    assert first.stat().st_mtime_ns == written  # kept, not rebuilt
    assert again.ids == shards.ids and (again.folder / "shard-00002.npz").exists()
    assert json.loads((again.folder / "index.json").read_text())["shard_size"] == 8


def test_shard_order_shuffles_within_shards_and_visits_each_shard_once():
    shard_of = np.repeat(np.arange(5), 7)
    indices = np.arange(35)[::2]
    order = shard_order(indices, shard_of, np.random.default_rng(0))
    assert sorted(order) == sorted(indices)
    visits = shard_of[order]
    assert len(np.flatnonzero(np.diff(visits))) == 4  # one block per shard
    assert not np.array_equal(order, np.sort(order))  # shuffled


def test_streaming_gives_the_same_batches_as_in_memory_loading(tmp_path):
    recipe = {"algorithm": "cgcnn", "epochs": 1, "max_samples": 90, "batch_size": 8,
              "properties": ["formation_energy"], "graph_shard_size": 16,
              "output_root": str(tmp_path)}  # fmt: skip
    cfg = resolve_config("cgcnn", "smoke", overrides=recipe)
    streamed, _ = prepare_data(cfg, progress=False)
    assert isinstance(streamed.graphs, ShardedGraphs)
    in_memory, _ = prepare_data(cfg.model_copy(update={"graph_shard_size": None}), progress=False)
    assert streamed.ids == in_memory.ids

    trainer = Trainer(build_model(cfg, streamed), cfg, streamed, tmp_path, progress=False)
    batches = trainer._train_batches(epoch=0)
    for idx in batches:
        a = trainer._batch(idx, TRAIN)
        b = collate([in_memory.graphs[i] for i in idx], in_memory.normalized[idx],
                    in_memory.split.mask(TRAIN, in_memory.targets)[idx])  # fmt: skip
        for f in dataclasses.fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if isinstance(x, torch.Tensor):
                torch.testing.assert_close(x, y, rtol=0, atol=0, equal_nan=True, msg=f.name)
            else:
                assert x == y, f.name

    streamed.graphs.loads = 0
    trainer.train_epoch(0)
    shards = np.unique(streamed.shard_of[streamed.indices(TRAIN)])
    assert streamed.graphs.loads == len(shards)  # an epoch reads each shard once


@pytest.mark.slow
def test_training_streams_from_shards_end_to_end(tmp_path):
    recipe = {"epochs": 2, "max_samples": 60, "batch_size": 8, "graph_shard_size": 16,
              "properties": ["formation_energy"], "output_root": str(tmp_path)}  # fmt: skip
    result = run_training(resolve_config("cgcnn", "smoke", overrides=recipe), progress=False)
    assert np.isfinite(result.metrics[0]["test_mae"])
    assert json.loads((result.run_dir / "data.json").read_text())["input_cache_key"].endswith(
        "-s16"
    )


def test_shards_are_for_graph_models_only():
    with pytest.raises(ValueError, match="applies to e3nn and cgcnn, not to chgnet"):
        resolve_config("chgnet", "smoke", overrides={"graph_shard_size": 100})
