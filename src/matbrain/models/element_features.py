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


@lru_cache(maxsize=1)
def element_property_table() -> torch.Tensor:
    """(119, 10) continuous element properties by atomic number (``data/element_properties.json``,
    from pymatgen's periodic table): Z, Pauling electronegativity, atomic radius, row, group,
    Mendeleev number, melting point, first ionisation energy, atomic mass, molar volume. An
    unknown value (noble-gas electronegativity, ...) is the column's mean; row 0 is zero."""
    text = resources.files("matbrain.models").joinpath("data/element_properties.json").read_text()
    rows = json.loads(text)["elements"]
    table = torch.full((N_ELEMENTS, len(next(iter(rows.values())))), float("nan"))
    for z, values in rows.items():
        table[int(z)] = torch.tensor([float("nan") if v is None else v for v in values])
    known = table[1:]
    mean = torch.nanmean(known, dim=0)
    table[1:] = torch.where(torch.isnan(known), mean, known)
    table[0] = 0.0
    return table


def _extremes(
    fractions: torch.Tensor, table: torch.Tensor, below: float, above: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per composition, the maximum and minimum of each column of ``table`` (E, k) over the
    elements present; ``below``/``above`` stand in for the absent ones."""
    present = (fractions > 0).unsqueeze(-1)  # (B, E, 1)
    rows = table.unsqueeze(0)  # (1, E, k)
    high = torch.where(present, rows, torch.full_like(rows, below)).amax(1)
    low = torch.where(present, rows, torch.full_like(rows, above)).amin(1)
    return high, low


def element_property_statistics(fractions: torch.Tensor) -> torch.Tensor:
    """(B, N_ELEMENTS) atom fractions -> (B, 5 x 10): the fraction-weighted mean, the weighted mean
    absolute deviation, the maximum, the minimum and the range of the continuous element
    properties over the elements present (Ward et al. 2016's statistics: the electronegativity
    spread of a compound, not only its mean, is what its formation energy follows)."""
    table = element_property_table().to(fractions.device, fractions.dtype)
    mean = fractions @ table
    deviation = (fractions.unsqueeze(-1) * (table.unsqueeze(0) - mean.unsqueeze(1)).abs()).sum(1)
    high, low = _extremes(fractions, table, -torch.inf, torch.inf)
    return torch.cat([mean, deviation, high, low, high - low], dim=1)


def composition_descriptors(fractions: torch.Tensor) -> torch.Tensor:
    """(B, N_ELEMENTS) atom fractions -> (B, 3 x 92): the fraction-weighted mean, the maximum and
    the minimum of CGCNN's element descriptors over the elements present (Magpie-style statistics
    of a composition; Ward et al., npj Comput. Mater. 2, 16028, 2016)."""
    table = cgcnn_table().to(fractions.device, fractions.dtype)
    high, low = _extremes(fractions, table, -1.0, 2.0)  # the descriptors lie in [0, 1]
    return torch.cat([fractions @ table, high, low], dim=1)
