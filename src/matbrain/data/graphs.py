"""Periodic crystal graphs: neighbour lists with a cap, edge vectors and three-body angles.

Conventions
-----------
An edge ``e`` points from its ``center`` atom i to a ``neighbor`` atom j in some periodic image;
``vec[e] = r_j + shift - r_i`` (Å), as ASE's ``neighbor_list("D")``. A triplet is an ordered pair
of distinct edges ``(a, b)`` that share their center atom (ALIGNN's line graph); its angle is the
bond angle j-i-k between them, stored as ``cos_angle``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms

GRAPH_FORMAT_VERSION = 2  # 2: each graph keeps its cell volume


@dataclass(frozen=True)
class GraphConfig:
    """Settings of graph construction.

    cutoff_A : neighbour cutoff radius (Å)
    max_neighbors : cap per atom; neighbours tied in distance with the last one kept stay in, so
        the graph does not depend on atom order or on the choice of supercell
    min_distance_A : atoms closer than this are "overlapping" and the structure is rejected
    backend : ``vesin`` (fast, C++) or ``ase`` (``ase.neighborlist.neighbor_list``)
    """

    cutoff_A: float = 6.0
    max_neighbors: int = 12
    min_distance_A: float = 0.5
    tie_tolerance_A: float = 1e-3
    backend: str = "vesin"

    def to_dict(self) -> dict:
        return asdict(self)


class BadStructureError(ValueError):
    """A structure from which no sensible graph can be built (overlapping or isolated atoms)."""


@dataclass
class CrystalGraph:
    """Graph arrays of one structure (see the module docstring for conventions)."""

    numbers: np.ndarray  # (n_atoms,) int64, atomic numbers
    center: np.ndarray  # (n_edges,) int64
    neighbor: np.ndarray  # (n_edges,) int64
    vec: np.ndarray  # (n_edges, 3) float32, Å
    triplet_a: np.ndarray  # (n_triplets,) int64, edge index
    triplet_b: np.ndarray  # (n_triplets,) int64, edge index
    cos_angle: np.ndarray  # (n_triplets,) float32
    volume: float = 0.0  # cell volume, Å^3 (what a graph network's kernel part compares)
    kernel: np.ndarray | None = None  # (n_properties,) composition-kernel values, set in training

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def distances(self) -> np.ndarray:
        return np.linalg.norm(self.vec, axis=1)


def neighbor_pairs(
    atoms: Atoms, cutoff: float, backend: str = "vesin"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All periodic pairs within ``cutoff``: (i, j, D) with D the vector i -> j (Å)."""
    if backend == "vesin":
        from vesin import NeighborList

        nl = NeighborList(cutoff=cutoff, full_list=True)
        i, j, vec = nl.compute(
            points=atoms.positions, box=atoms.cell.array, periodic=True, quantities="ijD"
        )
        return (
            np.asarray(i, dtype=np.int64),
            np.asarray(j, dtype=np.int64),
            np.asarray(vec, dtype=np.float64),
        )
    if backend == "ase":
        from ase.neighborlist import neighbor_list

        i, j, vec = neighbor_list("ijD", atoms, cutoff, self_interaction=False)
        return i.astype(np.int64), j.astype(np.int64), vec
    raise ValueError(f"unknown neighbour-list backend {backend!r}; valid: vesin, ase")


def _cap_neighbors(i: np.ndarray, dist: np.ndarray, n_atoms: int, k: int, tol: float) -> np.ndarray:
    """Indices of the pairs kept: per center the k nearest plus any tied with the k-th."""
    order = np.lexsort((dist, i))
    i_s, d_s = i[order], dist[order]
    counts = np.bincount(i_s, minlength=n_atoms)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    kth = np.full(n_atoms, np.inf)
    has_k = counts > k
    kth[has_k] = d_s[starts[has_k] + k - 1]
    keep = d_s <= kth[i_s] + tol
    return order[keep]


def triplets(center: np.ndarray, n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs of distinct edges sharing a center. ``center`` must be sorted."""
    counts = np.bincount(center, minlength=n_atoms)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    per_edge = counts[center]  # partners of each edge, itself included
    a = np.repeat(np.arange(len(center)), per_edge)
    first = np.repeat(starts[center], per_edge)
    offset = np.arange(len(a)) - np.repeat(np.cumsum(per_edge) - per_edge, per_edge)
    b = first + offset
    distinct = a != b
    return a[distinct], b[distinct]


def build_graph(atoms: Atoms, config: GraphConfig = GraphConfig()) -> CrystalGraph:
    """Build the periodic graph of one structure.

    Raises
    ------
    BadStructureError
        Overlapping atoms (closer than ``min_distance_A``) or an atom with no neighbour within
        the cutoff.
    """
    n = len(atoms)
    if n == 0:
        raise BadStructureError("structure has no atoms")
    if atoms.cell.rank < 3:
        raise BadStructureError("structure has no full 3D cell")
    i, j, vec = neighbor_pairs(atoms, config.cutoff_A, config.backend)
    dist = np.linalg.norm(vec, axis=1)
    if len(dist) and dist.min() < config.min_distance_A:
        e = int(np.argmin(dist))
        raise BadStructureError(
            f"overlapping atoms {int(i[e])} and {int(j[e])}: {dist[e]:.3f} Å apart (< {config.min_distance_A} Å)"
        )
    lonely = np.setdiff1d(np.arange(n), i)
    if len(lonely):
        raise BadStructureError(
            f"atom {int(lonely[0])} ({atoms.get_chemical_symbols()[lonely[0]]}) has no neighbour within {config.cutoff_A} Å"
        )
    kept = _cap_neighbors(i, dist, n, config.max_neighbors, config.tie_tolerance_A)
    center, neighbor, vec = i[kept], j[kept], vec[kept]  # sorted by center, then distance
    a, b = triplets(center, n)
    va, vb = vec[a], vec[b]
    cos = np.einsum("ij,ij->i", va, vb) / (np.linalg.norm(va, axis=1) * np.linalg.norm(vb, axis=1))
    return CrystalGraph(
        numbers=np.asarray(atoms.numbers, dtype=np.int64),
        center=center,
        neighbor=neighbor,
        vec=vec.astype(np.float32),
        triplet_a=a,
        triplet_b=b,
        cos_angle=np.clip(cos, -1.0, 1.0).astype(np.float32),
        volume=float(atoms.cell.volume),
    )
