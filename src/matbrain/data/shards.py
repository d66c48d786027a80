"""A graph cache in shards, and graphs streamed from it with bounded memory.

``matbrain data process --shard-size N`` (and training with ``graph_shard_size: N``) writes the
graphs of a dataset as shard files of N structures each (the single-file cache's format, one file
per shard) plus an ``index.json``, building and writing one shard at a time: a dataset larger than
memory never has all its graphs in memory. An interrupted build resumes at the first missing
shard.

:class:`ShardedGraphs` is a read-only sequence of graphs that holds at most ``max_loaded`` shards
in memory. Training reads it in shard order (:func:`shard_order`: the shards in a random order
and the structures of each shard shuffled within it), so every shard is loaded once per epoch.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np
from tqdm.auto import tqdm

from matbrain.common.files import atomic_write_text
from matbrain.data.cache import GraphSet, cache_key, default_cache_dir
from matbrain.data.dataset import CrystalDataset
from matbrain.data.graphs import BadStructureError, CrystalGraph, GraphConfig, build_graph

log = logging.getLogger(__name__)


class ShardedGraphs(Sequence[CrystalGraph]):
    """Graphs of ``ids`` read from a shard folder; at most ``max_loaded`` shards in memory."""

    def __init__(self, folder: Path, ids: Sequence[str], max_loaded: int = 2) -> None:
        self.folder = Path(folder)
        index = json.loads((self.folder / "index.json").read_text())
        self.files = [s["file"] for s in index["shards"]]
        where = {sid: k for k, s in enumerate(index["shards"]) for sid in s["ids"]}
        missing = [sid for sid in ids if sid not in where]
        if missing:
            raise KeyError(f"{len(missing)} ids not in the shards of {folder}: {missing[:3]}")
        self.ids = list(ids)
        self.shard_of = np.array([where[sid] for sid in self.ids], dtype=np.int64)
        self.max_loaded = max(1, max_loaded)
        self._loaded: OrderedDict[int, dict[str, CrystalGraph]] = OrderedDict()
        self.loads = 0  # shard files read so far (for tests and benchmarks)

    def _shard(self, k: int) -> dict[str, CrystalGraph]:
        if k in self._loaded:
            self._loaded.move_to_end(k)
            return self._loaded[k]
        while len(self._loaded) >= self.max_loaded:
            self._loaded.popitem(last=False)
        graphs = GraphSet.load(self.folder / self.files[k]).graphs
        self._loaded[k] = graphs
        self.loads += 1
        return graphs

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, i: int) -> CrystalGraph: ...
    @overload
    def __getitem__(self, i: slice) -> list[CrystalGraph]: ...
    def __getitem__(self, i: int | slice) -> CrystalGraph | list[CrystalGraph]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._shard(int(self.shard_of[i]))[self.ids[i]]

    def __iter__(self) -> Iterator[CrystalGraph]:
        return (self[i] for i in range(len(self)))


def shard_order(indices: np.ndarray, shard_of: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``indices`` shuffled shard by shard: the shards in a random order, each one's structures
    shuffled within it (a shard is read once per pass)."""
    indices = np.asarray(indices)
    groups = shard_of[indices]
    out = [rng.permutation(indices[groups == k]) for k in rng.permutation(np.unique(groups))]
    return np.concatenate(out) if out else indices


@dataclass
class ShardedGraphSet:
    """What :func:`process_dataset_sharded` returns: the interface of a :class:`GraphSet`, with
    ``graphs`` readable by id without holding them all."""

    folder: Path
    ids: list[str]
    skipped: dict[str, str]
    key: str

    @property
    def graphs(self) -> _IdLookup:
        return _IdLookup(self)

    def sequence(self, ids: Sequence[str], max_loaded: int = 2) -> ShardedGraphs:
        return ShardedGraphs(self.folder, ids, max_loaded)


class _IdLookup:
    """``graph_set.graphs``: membership and length by id; one graph by id (its shard loaded)."""

    def __init__(self, owner: ShardedGraphSet) -> None:
        self.owner, self._ids = owner, set(owner.ids)

    def __contains__(self, sid: object) -> bool:
        return sid in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, sid: str) -> CrystalGraph:
        return self.owner.sequence([sid], max_loaded=1)[0]


def process_dataset_sharded(
    dataset: CrystalDataset,
    config: GraphConfig,
    shard_size: int,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> ShardedGraphSet:
    """Graphs of every structure in shards of ``shard_size`` structures, built one shard at a time
    (existing shards are kept: an interrupted build resumes)."""
    if shard_size < 1:
        raise ValueError("the shard size must be at least 1 structure")
    key = f"{cache_key(dataset, config)}-s{shard_size}"
    folder = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / f"shards-{key}"
    index_path = folder / "index.json"
    if index_path.exists():
        log.info("graph shards cached: %s", folder)
        index = json.loads(index_path.read_text())
        ids = [sid for s in index["shards"] for sid in s["ids"]]
        return ShardedGraphSet(folder, ids, index["skipped"], key)
    folder.mkdir(parents=True, exist_ok=True)
    shards, skipped = [], {}
    starts = range(0, len(dataset), shard_size)
    for k, start in enumerate(
        tqdm(starts, desc="graph shards", unit="shard", disable=not progress)
    ):
        name = f"shard-{k:05d}.npz"
        path = folder / name
        if path.exists():  # written before an interruption
            done = GraphSet.load(path)
            shards.append({"file": name, "ids": list(done.graphs)})
            skipped.update(done.skipped)
            continue
        graphs: dict[str, CrystalGraph] = {}
        part_skipped: dict[str, str] = {}
        for sid, atoms in zip(dataset.ids[start : start + shard_size],
                              dataset.structures[start : start + shard_size], strict=True):  # fmt: skip
            try:
                graphs[sid] = build_graph(atoms, config)
            except BadStructureError as exc:
                part_skipped[sid] = str(exc)
                log.warning("skipped structure %s: %s", sid, exc)
        GraphSet(graphs=graphs, skipped=part_skipped, config=config, key=key).save(path)
        shards.append({"file": name, "ids": list(graphs)})
        skipped.update(part_skipped)
    index = {"key": key, "config": config.to_dict(), "shard_size": shard_size,
             "shards": shards, "skipped": skipped}  # fmt: skip
    atomic_write_text(index_path, json.dumps(index))
    ids = [sid for s in shards for sid in s["ids"]]
    return ShardedGraphSet(folder, ids, skipped, key)
