"""Bond statistics of a crystal graph: what the kernel part of a graph network compares besides
the composition (see ``matbrain.models.composition_kernel``).

Two structures of one composition differ in formation energy mostly through their bonds: how
short they are for the atoms they join, and between which elements. Per structure, from the
graph's edges (the same capped neighbour list the network sees), normalised by the number of
atoms:

- a histogram of relative bond lengths ``d / (r_i + r_j)`` (ASE's covalent radii), Gaussians of
  width 0.05 every 0.05 from 0.6 to 1.6;
- the same histogram with each bond weighted by its electronegativity difference ``|X_i - X_j|``
  (ionic and covalent bonds of one length apart);
- the mean and the largest per-atom ionicity (mean ``|X_i - X_j|`` over an atom's bonds), the
  shortest and the mean relative bond length.

Computed in torch from a ``GraphBatch``, so that training (on all structures at once) and
prediction (batch by batch, on any device) use one function.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase.data import covalent_radii

from matbrain.data.batching import GraphBatch, collate
from matbrain.data.graphs import CrystalGraph
from matbrain.models.element_features import N_ELEMENTS, element_property_table

CENTERS = torch.linspace(0.6, 1.6, 21)
WIDTH = 0.05
N_BOND_DESCRIPTORS = 2 * len(CENTERS) + 4


def bond_descriptors(
    numbers: torch.Tensor,
    graph_index: torch.Tensor,
    center: torch.Tensor,
    neighbor: torch.Tensor,
    vec: torch.Tensor,
    n_graphs: int,
) -> torch.Tensor:
    """(n_graphs, N_BOND_DESCRIPTORS) from a batch's atoms and edges (see the module docstring)."""
    device, dtype = vec.device, torch.float64
    radii = torch.as_tensor(covalent_radii[:N_ELEMENTS], device=device, dtype=dtype)
    electronegativity = element_property_table()[:, 1].to(device, dtype)
    z_i, z_j = numbers[center], numbers[neighbor]
    relative = vec.to(dtype).norm(dim=1) / (radii[z_i] + radii[z_j])
    ionic = (electronegativity[z_i] - electronegativity[z_j]).abs()
    shells = torch.exp(-(((relative[:, None] - CENTERS.to(device, dtype)) / WIDTH) ** 2))
    edge_graph = graph_index[center]
    n_atoms = torch.bincount(graph_index, minlength=n_graphs).to(dtype).clamp(min=1)
    n_edges = torch.bincount(edge_graph, minlength=n_graphs).to(dtype)

    def per_graph(values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(n_graphs, *values.shape[1:], device=device, dtype=dtype)
        return out.index_add_(0, edge_graph, values)

    atom_bonds = torch.bincount(center, minlength=len(numbers)).to(dtype).clamp(min=1)
    atom_ionicity = torch.zeros(len(numbers), device=device, dtype=dtype).index_add_(
        0, center, ionic
    )
    atom_ionicity = atom_ionicity / atom_bonds
    mean_ionicity = torch.zeros(n_graphs, device=device, dtype=dtype).index_add_(
        0, graph_index, atom_ionicity
    )
    max_ionicity = torch.zeros(n_graphs, device=device, dtype=dtype).scatter_reduce_(
        0, graph_index, atom_ionicity, "amax", include_self=False
    )
    shortest = torch.zeros(n_graphs, device=device, dtype=dtype).scatter_reduce_(
        0, edge_graph, relative, "amin", include_self=False
    )
    mean_relative = per_graph(relative) / n_edges.clamp(min=1)
    return torch.cat(
        [
            per_graph(shells) / n_atoms[:, None],
            per_graph(shells * ionic[:, None]) / n_atoms[:, None],
            torch.stack([mean_ionicity / n_atoms, max_ionicity, shortest, mean_relative], dim=1),
        ],
        dim=1,
    )


def batch_bond_descriptors(batch: GraphBatch) -> torch.Tensor:
    """(n_graphs, N_BOND_DESCRIPTORS) of a collated batch."""
    return bond_descriptors(
        batch.numbers, batch.graph_index, batch.center, batch.neighbor, batch.vec, batch.n_graphs
    )


def graph_bond_descriptors(graphs: Sequence[CrystalGraph], chunk: int = 512) -> np.ndarray:
    """(n, N_BOND_DESCRIPTORS) float64 of crystal graphs, a chunk at a time."""
    parts = [
        batch_bond_descriptors(collate(graphs[i : i + chunk])).numpy()
        for i in range(0, len(graphs), chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, N_BOND_DESCRIPTORS))
