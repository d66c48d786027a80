"""Atom embeddings that start from what is known about each element.

With a few hundred training crystals, a learned one-hot embedding sees most elements a handful of
times and cannot relate them. CGCNN's element descriptors (Xie & Grossman, PRL 120, 145301, 2018;
the 92 binned features also used by ALIGNN: group, period, electronegativity, covalent radius,
valence electrons, first ionisation energy, electron affinity, block, atomic volume) place
chemically similar elements close together from the first step. The table ships with matbrain
(``data/cgcnn_atom_init.json``, from the CGCNN repository, MIT licence).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import torch
from torch import nn

ATOM_FEATURES = ("learned", "cgcnn")
N_ELEMENTS = 119


@lru_cache(maxsize=1)
def cgcnn_table() -> torch.Tensor:
    """(119, 92) descriptors by atomic number; rows of elements CGCNN does not cover are zero."""
    text = resources.files("matbrain.models").joinpath("data/cgcnn_atom_init.json").read_text()
    rows = {int(z): v for z, v in json.loads(text).items()}
    table = torch.zeros(N_ELEMENTS, len(next(iter(rows.values()))))
    for z, values in rows.items():
        table[z] = torch.tensor(values, dtype=torch.float32)
    return table


class DescriptorEmbedding(nn.Module):
    """Atomic number -> a learned linear map of CGCNN's element descriptors."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        table = cgcnn_table().clone()
        self.table: torch.Tensor
        self.register_buffer("table", table, persistent=False)
        self.linear = nn.Linear(table.shape[1], dim)

    def forward(self, numbers: torch.Tensor) -> torch.Tensor:
        return self.linear(self.table[numbers])


def element_embedding(dim: int, kind: str = "learned") -> nn.Module:
    """Atomic number -> ``dim`` features: one learned vector per element (``learned``), or a
    learned map of CGCNN's element descriptors (``cgcnn``)."""
    if kind == "learned":
        return nn.Embedding(N_ELEMENTS, dim)
    if kind == "cgcnn":
        return DescriptorEmbedding(dim)
    raise ValueError(f"unknown atom features {kind!r}; valid: {', '.join(ATOM_FEATURES)}")


def composition_descriptors(fractions: torch.Tensor) -> torch.Tensor:
    """(B, N_ELEMENTS) atom fractions -> (B, 3 x 92): the fraction-weighted mean, the maximum and
    the minimum of CGCNN's element descriptors over the elements present (Magpie-style statistics
    of a composition; Ward et al., npj Comput. Mater. 2, 16028, 2016)."""
    table = cgcnn_table().to(fractions.device, fractions.dtype)
    present = (fractions > 0).unsqueeze(-1)  # (B, E, 1)
    rows = table.unsqueeze(0)  # (1, E, 92)
    high = torch.where(present, rows, torch.full_like(rows, -1.0)).amax(1)
    low = torch.where(present, rows, torch.full_like(rows, 2.0)).amin(1)
    return torch.cat([fractions @ table, high, low], dim=1)
