"""E(3)-equivariant multi-task property model on e3nn (the main track).

Atoms carry irreducible-representation features; each interaction block forms tensor-product
messages between neighbour features and the spherical harmonics of the edge direction, with
weights from an MLP of the invariant edge features (radial basis of the bond length plus a
three-body term: a basis of the bond angles j-i-k around the same center), aggregates them,
and applies a gated nonlinearity. The read-out keeps only the invariant (0e) channels and
averages them over atoms, so predictions are invariant to rotation, translation, permutation
and the choice of supercell.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from matbrain.data.batching import GraphBatch
from matbrain.models.base import (
    MultiTaskHeads,
    PropertyModel,
    constructor_arguments,
    scatter_mean,
    scatter_sum,
)
from matbrain.models.e3nn_import import import_e3nn
from matbrain.models.element_features import element_embedding

o3, e3nn_nn, e3nn_math = import_e3nn()


def hidden_irreps(mul: int, lmax: int) -> Any:
    """Features of both parities up to ``lmax``, fewer channels at higher l."""
    parts = [f"{mul}x0e"]
    for ell in range(1, lmax + 1):
        m = max(mul // (2 * ell), 2)
        parts += [f"{m}x{ell}o", f"{m}x{ell}e"]
    return o3.Irreps("+".join(parts))


class Interaction(nn.Module):
    """Tensor-product convolution followed by a gate, with a linear self-connection."""

    def __init__(
        self,
        irreps_in: Any,
        irreps_hidden: Any,
        irreps_sh: Any,
        n_edge_features: int,
        radial_hidden: int,
        avg_neighbors: float,
    ) -> None:
        super().__init__()
        self.avg_neighbors = avg_neighbors
        reachable = {
            ir_out for _, ir_in in irreps_in for _, ir_sh in irreps_sh for ir_out in ir_in * ir_sh
        }
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l == 0 and ir in reachable])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l > 0 and ir in reachable])
        gates = o3.Irreps([(m, "0e") for m, _ in gated])
        self.gate = e3nn_nn.Gate(
            scalars,
            [F.silu if ir.p == 1 else torch.tanh for _, ir in scalars],
            gates,
            [torch.sigmoid] * len(gates),
            gated,
        )
        target = self.gate.irreps_in
        mid: list[tuple[int, Any]] = []
        instructions: list[tuple[int, int, int, str, bool]] = []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_sh) in enumerate(irreps_sh):
                for ir_out in ir_in * ir_sh:
                    if ir_out in target:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        mid_irreps, perm, _ = o3.Irreps(mid).sort()
        instructions = [(a, b, perm[k], mode, train) for a, b, k, mode, train in instructions]
        self.tp = o3.TensorProduct(
            irreps_in,
            irreps_sh,
            mid_irreps,
            instructions,
            shared_weights=False,
            internal_weights=False,
        )
        self.radial = e3nn_nn.FullyConnectedNet(
            [n_edge_features, radial_hidden, radial_hidden, self.tp.weight_numel], F.silu
        )
        self.linear = o3.Linear(mid_irreps.simplify(), target)
        self.self_connection = o3.Linear(irreps_in, target)
        self.irreps_out = self.gate.irreps_out

    def forward(
        self,
        x: torch.Tensor,
        center: torch.Tensor,
        neighbor: torch.Tensor,
        sh: torch.Tensor,
        edge_features: torch.Tensor,
    ) -> torch.Tensor:
        messages = self.tp(x[neighbor], sh, self.radial(edge_features))
        aggregated = scatter_sum(messages, center, x.shape[0]) / math.sqrt(self.avg_neighbors)
        return self.gate(self.linear(aggregated) + self.self_connection(x))


class E3nnNet(PropertyModel):
    name = "e3nn"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {
            "mul": 16,
            "lmax": 1,
            "n_layers": 2,
            "n_radial": 8,
            "n_angular": 8,
            "radial_hidden": 32,
        },
        "medium": {
            "mul": 32,
            "lmax": 2,
            "n_layers": 3,
            "n_radial": 10,
            "n_angular": 8,
            "radial_hidden": 64,
        },
        "large": {
            "mul": 64,
            "lmax": 2,
            "n_layers": 4,
            "n_radial": 12,
            "n_angular": 12,
            "radial_hidden": 64,
        },
    }

    def __init__(
        self,
        n_properties: int,
        mul: int = 16,
        lmax: int = 1,
        n_layers: int = 2,
        n_radial: int = 8,
        n_angular: int = 8,
        radial_hidden: int = 32,
        cutoff: float = 6.0,
        avg_neighbors: float = 12.0,
        dropout: float = 0.0,
        composition_baseline: bool = False,
        composition_kernel: str = "off",
        n_kernel_points: int = 0,
        kernel_descriptors: str = "cgcnn",
        atom_features: str = "learned",
    ) -> None:
        super().__init__(n_properties, **constructor_arguments(locals()))
        self.cutoff, self.n_radial, self.n_angular, self.avg_neighbors = (
            cutoff,
            n_radial,
            n_angular,
            avg_neighbors,
        )
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        self.embedding = element_embedding(mul, atom_features)
        irreps = o3.Irreps(f"{mul}x0e")
        hidden = hidden_irreps(mul, lmax)
        self.layers = nn.ModuleList()
        for _ in range(n_layers):
            layer = Interaction(
                irreps, hidden, self.irreps_sh, n_radial + n_angular, radial_hidden, avg_neighbors
            )
            self.layers.append(layer)
            irreps = layer.irreps_out
        self.readout = o3.Linear(irreps, o3.Irreps(f"{mul}x0e"))
        self.atom_mlp = nn.Sequential(
            nn.Linear(mul, 2 * mul), nn.SiLU(), nn.Linear(2 * mul, 2 * mul)
        )
        self.heads = MultiTaskHeads(2 * mul, n_properties, 2 * mul, dropout)

    def edge_features(self, batch: GraphBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Spherical harmonics of edge directions and invariant edge features (radial + angular)."""
        length = batch.vec.norm(dim=1)
        sh = o3.spherical_harmonics(
            self.irreps_sh, batch.vec, normalize=True, normalization="component"
        )
        radial = e3nn_math.soft_one_hot_linspace(
            length, 0.0, self.cutoff, self.n_radial, basis="smooth_finite", cutoff=True
        ) * math.sqrt(self.n_radial)
        # three-body term: for edge a (i->j), a basis of the angles j-i-k to the other bonds i->k,
        # each weighted by a smooth function of |r_ik| that vanishes at the cutoff
        weight_b = e3nn_math.soft_one_hot_linspace(
            length, 0.0, self.cutoff, 1, basis="smooth_finite", cutoff=True
        )[:, 0]
        angular = e3nn_math.soft_one_hot_linspace(
            batch.cos_angle, -1.0, 1.0, self.n_angular, basis="gaussian", cutoff=False
        )
        angular = angular * weight_b[batch.triplet_b].unsqueeze(1)
        angular = scatter_sum(angular, batch.triplet_a, len(length)) / self.avg_neighbors
        return sh, torch.cat([radial, angular], dim=1)

    def encode(self, batch: GraphBatch) -> torch.Tensor:
        sh, edge_features = self.edge_features(batch)
        x = self.embedding(batch.numbers)
        for layer in self.layers:
            x = layer(x, batch.center, batch.neighbor, sh, edge_features)
        atom = self.atom_mlp(self.readout(x))
        return scatter_mean(atom, batch.graph_index, batch.n_graphs)
