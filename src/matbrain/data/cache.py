"""``matbrain data process``: build every structure's graph once and cache it on disk.

The cache key is the hash of the structures (ids, cells, numbers, positions, not the labels) and
of the graph settings, so every training run on the same data reuses one file, and any change of
structures or settings builds a new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from matbrain.common.files import atomic_path
from matbrain.data.dataset import CrystalDataset
from matbrain.data.graphs import (
    GRAPH_FORMAT_VERSION,
    BadStructureError,
    CrystalGraph,
    GraphConfig,
    build_graph,
)

log = logging.getLogger(__name__)

_ARRAYS = ("numbers", "center", "neighbor", "vec", "triplet_a", "triplet_b", "cos_angle")
_COUNTED_BY = {
    "numbers": "n",
    "center": "e",
    "neighbor": "e",
    "vec": "e",
    "triplet_a": "t",
    "triplet_b": "t",
    "cos_angle": "t",
}


def cache_root() -> Path:
    """Where matbrain caches derived data: ``$MATBRAIN_CACHE`` or ``~/.cache/matbrain``."""
    return Path(os.environ.get("MATBRAIN_CACHE", Path.home() / ".cache" / "matbrain"))


def default_cache_dir() -> Path:
    return cache_root() / "graphs"


def cache_key(dataset: CrystalDataset, config: GraphConfig) -> str:
    payload = json.dumps(
        {
            "structures": dataset.structure_hash(),
            "graph": config.to_dict(),
            "format": GRAPH_FORMAT_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


@dataclass
class GraphSet:
    """Graphs of a dataset by structure id, plus the ids that were skipped and why."""

    graphs: dict[str, CrystalGraph]
    skipped: dict[str, str] = field(default_factory=dict)
    config: GraphConfig = field(default_factory=GraphConfig)
    key: str = ""
    from_cache: bool = False

    def save(self, path: Path) -> None:
        ids = list(self.graphs)
        arrays: dict[str, np.ndarray] = {}
        counts = {
            "n": np.array([self.graphs[i].n_atoms for i in ids], dtype=np.int64),
            "e": np.array([len(self.graphs[i].center) for i in ids], dtype=np.int64),
            "t": np.array([len(self.graphs[i].triplet_a) for i in ids], dtype=np.int64),
        }
        for name in _ARRAYS:
            parts = [getattr(self.graphs[i], name) for i in ids]
            arrays[name] = np.concatenate(parts) if parts else np.zeros(0)
        arrays["volume"] = np.array([self.graphs[i].volume for i in ids], dtype=np.float64)
        meta = json.dumps(
            {"ids": ids, "skipped": self.skipped, "config": self.config.to_dict(), "key": self.key}
        )
        with atomic_path(path) as tmp:  # a crash never leaves a half-written cache
            columns: dict[str, Any] = {"meta": np.array(meta), **{f"count_{k}": v for k, v in counts.items()},
                       **arrays}  # fmt: skip
            np.savez(tmp, **columns)

    @classmethod
    def load(cls, path: Path) -> GraphSet:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            counts = {k: f[f"count_{k}"] for k in "net"}
            arrays = {name: f[name] for name in _ARRAYS}
            volumes = f["volume"]
        bounds = {k: np.concatenate([[0], np.cumsum(v)]) for k, v in counts.items()}
        graphs = {}
        for g, sid in enumerate(meta["ids"]):
            parts = {}
            for name in _ARRAYS:
                b = bounds[_COUNTED_BY[name]]
                parts[name] = arrays[name][b[g] : b[g + 1]]
            graphs[sid] = CrystalGraph(**parts, volume=float(volumes[g]))
        return cls(
            graphs=graphs,
            skipped=meta["skipped"],
            config=GraphConfig(**meta["config"]),
            key=meta["key"],
            from_cache=True,
        )


def process_dataset(
    dataset: CrystalDataset,
    config: GraphConfig = GraphConfig(),
    cache_dir: Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> GraphSet:
    """Graphs of every structure, from the cache when present, else built and cached.

    Bad structures (overlapping atoms, atoms without neighbours) are logged by id and skipped.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(dataset, config)
    path = cache_dir / f"graphs-{key}.npz"
    if use_cache and path.exists():
        log.info("graph cache hit: %s", path)
        return GraphSet.load(path)
    graphs: dict[str, CrystalGraph] = {}
    skipped: dict[str, str] = {}
    for sid, atoms in tqdm(
        list(zip(dataset.ids, dataset.structures, strict=True)),
        desc="building graphs",
        unit="structure",
        disable=not progress,
    ):
        try:
            graphs[sid] = build_graph(atoms, config)
        except BadStructureError as exc:
            skipped[sid] = str(exc)
    for sid, reason in skipped.items():
        log.warning("skipped structure %s: %s", sid, reason)
    result = GraphSet(graphs=graphs, skipped=skipped, config=config, key=key)
    if use_cache:
        result.save(path)
        log.info("graph cache written: %s", path)
    return result
