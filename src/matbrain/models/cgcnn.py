"""CGCNN (Xie & Grossman, PRL 120, 145301, 2018) as a multi-task baseline."""

from __future__ import annotations

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
from matbrain.models.element_features import element_embedding


def gaussian_expansion(d: torch.Tensor, d_max: float, step: float) -> torch.Tensor:
    centers = torch.arange(0.0, d_max + step, step, device=d.device, dtype=d.dtype)
    return torch.exp(-((d.unsqueeze(1) - centers) ** 2) / step**2)


class CGConv(nn.Module):
    """Gated graph convolution: v_i += sum_j sigmoid(z_ij W_f) * softplus(z_ij W_s)."""

    def __init__(self, atom_dim: int, edge_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * atom_dim + edge_dim, 2 * atom_dim)
        self.bn_edges = nn.BatchNorm1d(2 * atom_dim)
        self.bn_atoms = nn.BatchNorm1d(atom_dim)

    def forward(
        self, x: torch.Tensor, center: torch.Tensor, neighbor: torch.Tensor, e: torch.Tensor
    ) -> torch.Tensor:
        z = self.bn_edges(self.fc(torch.cat([x[center], x[neighbor], e], dim=1)))
        gate, core = z.chunk(2, dim=1)
        messages = torch.sigmoid(gate) * F.softplus(core)
        return F.softplus(x + self.bn_atoms(scatter_sum(messages, center, x.shape[0])))


class CGCNN(PropertyModel):
    name = "cgcnn"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {"atom_dim": 64, "n_conv": 3, "hidden_dim": 128},
        "medium": {"atom_dim": 64, "n_conv": 4, "hidden_dim": 128},
        "large": {"atom_dim": 128, "n_conv": 5, "hidden_dim": 256},
    }

    def __init__(
        self,
        n_properties: int,
        atom_dim: int = 64,
        n_conv: int = 3,
        hidden_dim: int = 128,
        cutoff: float = 6.0,
        gaussian_step: float = 0.2,
        dropout: float = 0.0,
        composition_baseline: bool = False,
        composition_kernel: str = "off",
        n_kernel_points: int = 0,
        kernel_descriptors: str = "cgcnn",
        atom_features: str = "learned",
    ) -> None:
        super().__init__(n_properties, **constructor_arguments(locals()))
        self.cutoff, self.step = cutoff, gaussian_step
        edge_dim = len(torch.arange(0.0, cutoff + gaussian_step, gaussian_step))
        self.embedding = element_embedding(atom_dim, atom_features)
        self.convs = nn.ModuleList(CGConv(atom_dim, edge_dim) for _ in range(n_conv))
        self.to_hidden = nn.Linear(atom_dim, hidden_dim)
        self.heads = MultiTaskHeads(hidden_dim, n_properties, hidden_dim, dropout)

    def encode(self, batch: GraphBatch) -> torch.Tensor:
        x = self.embedding(batch.numbers)
        e = gaussian_expansion(batch.vec.norm(dim=1), self.cutoff, self.step)
        for conv in self.convs:
            x = conv(x, batch.center, batch.neighbor, e)
        pooled = scatter_mean(x, batch.graph_index, batch.n_graphs)
        return F.softplus(self.to_hidden(F.softplus(pooled)))
