"""Collate crystal graphs into one disjoint-union batch of torch tensors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from matbrain.data.graphs import CrystalGraph


@dataclass
class GraphBatch:
    """A batch of graphs as one big disjoint graph.

    numbers : (N,) atomic numbers; graph_index : (N,) graph of each atom
    center, neighbor : (E,) atom indices into the batch; vec : (E, 3) Å
    triplet_a, triplet_b : (T,) edge indices into the batch; cos_angle : (T,)
    volume : (B,) cell volumes, Å^3
    targets : (B, P) normalised or raw labels with NaN = missing (may be None)
    """

    numbers: torch.Tensor
    graph_index: torch.Tensor
    center: torch.Tensor
    neighbor: torch.Tensor
    vec: torch.Tensor
    triplet_a: torch.Tensor
    triplet_b: torch.Tensor
    cos_angle: torch.Tensor
    n_graphs: int
    volume: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    label_mask: torch.Tensor | None = None
    kernel: torch.Tensor | None = None  # (B, P) composition-kernel values, when precomputed

    def to(self, device: torch.device | str) -> GraphBatch:
        return GraphBatch(**tensors_to(self, device))


def tensors_to(batch: Any, device: torch.device | str) -> dict:
    """The fields of a batch dataclass, with every tensor moved to ``device``."""
    kwargs = {}
    for f in fields(batch):
        value = getattr(batch, f.name)
        kwargs[f.name] = value.to(device) if isinstance(value, torch.Tensor) else value
    return kwargs


def collate(
    graphs: Sequence[CrystalGraph],
    targets: np.ndarray | None = None,
    label_mask: np.ndarray | None = None,
) -> GraphBatch:
    """Stack graphs, offsetting atom and edge indices."""
    n_atoms = np.array([g.n_atoms for g in graphs])
    n_edges = np.array([len(g.center) for g in graphs])
    atom_offset = np.repeat(np.concatenate([[0], np.cumsum(n_atoms)[:-1]]), n_edges)
    edge_offset_per_graph = np.concatenate([[0], np.cumsum(n_edges)[:-1]])
    n_trip = np.array([len(g.triplet_a) for g in graphs])
    edge_offset = np.repeat(edge_offset_per_graph, n_trip)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(g, name) for g in graphs])

    return GraphBatch(
        numbers=torch.from_numpy(cat("numbers")),
        graph_index=torch.from_numpy(np.repeat(np.arange(len(graphs)), n_atoms)),
        center=torch.from_numpy(cat("center") + atom_offset),
        neighbor=torch.from_numpy(cat("neighbor") + atom_offset),
        vec=torch.from_numpy(cat("vec")).float(),
        triplet_a=torch.from_numpy(cat("triplet_a") + edge_offset),
        triplet_b=torch.from_numpy(cat("triplet_b") + edge_offset),
        cos_angle=torch.from_numpy(cat("cos_angle")).float(),
        n_graphs=len(graphs),
        volume=torch.tensor([g.volume for g in graphs], dtype=torch.float64),
        targets=None if targets is None else torch.as_tensor(targets, dtype=torch.float32),
        label_mask=None if label_mask is None else torch.as_tensor(label_mask, dtype=torch.bool),
        kernel=stack_kernel_values([g.kernel for g in graphs]),
    )


def stack_kernel_values(values: Sequence[np.ndarray | None]) -> torch.Tensor | None:
    """(B, P) composition-kernel values of a batch, or None unless every input has them."""
    given = [v for v in values if v is not None]
    if not given or len(given) != len(values):
        return None
    return torch.from_numpy(np.stack(given).astype(np.float32))
