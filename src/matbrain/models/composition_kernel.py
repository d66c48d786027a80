"""The kernel part of a property head: kernel ridge regression on the composition (and, for
graph networks, on bond statistics), fitted in closed form.

Some labels are mostly a function of composition. JARVIS's energy above hull is the clearest:
polymorphs of one formula share ``formation energy - ehull`` to 5 meV/atom (median over the 68
formulas with several polymorphs in the bundled subset), while that difference varies by eV/atom
between formulas. A network learns such a function slowly from a few hundred labels; a kernel
that compares compositions directly carries what the training set knows about a composition and
its neighbours to a new structure. What it compares (``DESCRIPTOR_SETS``): Magpie-style
statistics of the elements present (Ward et al., npj Comput. Mater. 2, 16028, 2016), of CGCNN's
binned element descriptors and of continuous element properties (electronegativity, radius,
...); and the structure: the bond statistics of its crystal graph, the chemistry of its bonds
and three statistics of its cell (``matbrain.models.bond_descriptors``: relative bond lengths,
ionicity, which elements a bond joins, coordination numbers, volume per atom, packing, atoms
per cell). Graph networks compare them all; heads on a backbone with
``composition_kernel="on"`` all but the bond chemistry
(``matbrain.models.backbone.kernel_descriptors``).
Per property, the structure block's weight in the kernel's distance (``BOND_WEIGHTS``, 0 to 4)
is chosen on validation with the width and ridge: the energy above hull, a function of
composition, takes 0; formation energy 0.5 to 1; the elastic moduli 4. Within the block the three cell columns count
``CELL_WEIGHT`` times a bond column, the bond chemistry's ``CHEMISTRY_WEIGHT`` times.

The part is fitted on the residual of the linear part before the network trains: Laplacian
kernel width, ridge and bond weight chosen on the validation split with a fit on the training
split, then the final fit on the training and validation labels together. So that the network
still sees honest residuals (and an honest validation score), the values it trains and
validates against are leave-one-out for those structures (exact, in closed form: each is the
prediction of the fit without that structure's label); the test structures, and new structures,
get the final fit. ``auto`` decides per property:
- a backbone: keep the part where it lowers, by more than 5 %, the validation MAE of a
  closed-form stand-in for the whole model, RBF kernel ridge on the potential's features;
- a graph network, which has no features before training: keep it where the label is far from
  linear in the composition, the part's validation MAE at most 0.85 of a linear fit's on the
  atom fractions. A network learns such a function slowly from a few hundred labels; where the
  kernel adds little to a linear fit (the gaps, dielectric constant and spillage, 0.86-1.01 on
  the bundled subset's official single-property splits), it mostly adds its own noise to what
  the network trains against. There it keeps the part for formation energy (ratio 0.50), the
  energy above hull (0.42), the bulk modulus (0.63) and the shear modulus (0.78). Before the cell statistics the
  moduli's ratios were 0.77 and 0.83 and forcing the part on hurt them (CGCNN's bulk modulus
  14.5 -> 18.0 GPa, e3nn's shear modulus 21.1 -> 24.5); with them it helps (e3nn bulk modulus
  17.6 -> 14.3, shear modulus 22.4 -> 20.4; CGCNN shear modulus 21.7 -> 20.2, bulk modulus
  14.5 -> 15.0; means of 3 seeds, early stopping after 15 epochs without gain).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from matbrain.models.bond_descriptors import (
    N_BOND_DESCRIPTORS,
    N_CELL_DESCRIPTORS,
    N_CHEMISTRY_DESCRIPTORS,
)
from matbrain.models.element_features import (
    N_ELEMENTS,
    composition_descriptors,
    element_property_statistics,
)
from matbrain.models.linear_baseline import fit_ridge

log = logging.getLogger(__name__)

WIDTHS = (0.03, 0.1, 0.3, 1.0)  # Laplacian kernel exponent x input dimension
RIDGES = (1e-3, 1e-2, 1e-1, 1.0)
# auto keeps the part where the stand-in's validation MAE falls by more than this share: on ~100
# validation labels a smaller gain is noise (spillage's 0.6 % kept the part for the demo model
# and its test MAE rose from 0.357 to 0.388)
KEEP_GAIN = 0.05
# graph networks: auto keeps the part where its validation MAE is at most this share of a linear
# fit's on the composition (bundled subset: kept 0.42-0.77, left off 0.93 and above)
GRAPH_KEEP_RATIO = 0.85
# the structure block's weight in the distance, chosen on validation. The moduli take 4, the
# largest weight that validation picks for them (up to 16 tried); kernel part alone on the bundled
# subset, test MAE with weights up to 1 / up to 4: bulk modulus 13.86 / 13.17 GPa, shear modulus
# 20.37 / 19.83 GPa (formation energy and ehull keep 1 and 0)
BOND_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)
# the cell columns' weight within the structure block (after standardisation): three columns
# against 46 bond columns. Leave-one-out MAE of the part over the bundled training and
# validation labels, weight 0 / 3 / 10 / 30: formation energy 0.153 / 0.148 / 0.146 / 0.147
# eV/atom, bulk modulus 14.3 / 12.5 / 12.3 / 12.3 GPa, shear modulus 18.3 / 17.4 / 17.0 / 16.8
CELL_WEIGHT = 10.0
# the bond-chemistry columns' weight within the structure block (79 columns beside the 46 bond
# columns). Leave-one-out MAE of the part over the bundled training and validation labels,
# weight 0 (the descriptors without them) / 0.2 / 0.35 / 0.6 / 1, in a scratch script whose
# standardisation of the element properties differed slightly: formation energy 0.1467 / 0.1445
# / 0.1446 / 0.1442 / 0.1441 eV/atom, bulk modulus 12.54 / 12.44 / 12.36 / 12.19 / 12.88 GPa,
# shear modulus 16.73 / 16.71 / 16.56 / 16.36 / 16.29 GPa. These descriptors at 0.6: 0.1442,
# 12.99, 16.39, and on ten re-splits better than without them for all three
# (``bench/kernel_part.py``)
CHEMISTRY_WEIGHT = 0.6
MAX_POINTS = 3000
MIN_POINTS = 10  # fewer labelled points: no part
KERNEL_MODES = ("auto", "on", "off")
# what the kernel compares: "cgcnn", the statistics of CGCNN's element descriptors (the first
# version; older models); "composition", those and the statistics of continuous element
# properties; "composition+bonds", those and the bond statistics of a crystal graph (models
# saved before the cell statistics); "composition+structure", those and the cell statistics
# (graph networks saved before the bond chemistry; backbones); "composition+structure+chemistry",
# those and the bond chemistry (graph networks)
DESCRIPTOR_SETS = (
    "cgcnn",
    "composition",
    "composition+bonds",
    "composition+structure",
    "composition+structure+chemistry",
)
STRUCTURE_COLUMNS = {
    "composition+bonds": N_BOND_DESCRIPTORS,
    "composition+structure": N_BOND_DESCRIPTORS + N_CELL_DESCRIPTORS,
    "composition+structure+chemistry": (
        N_BOND_DESCRIPTORS + N_CHEMISTRY_DESCRIPTORS + N_CELL_DESCRIPTORS
    ),
}


def structure_blocks(kind: str) -> tuple[bool, bool]:
    """(cell, chemistry): whether a descriptor set's structure block holds the cell statistics
    and the bond chemistry besides the bond statistics."""
    return kind.startswith("composition+structure"), kind == "composition+structure+chemistry"


def kernel_descriptors(
    fractions: torch.Tensor, bonds: torch.Tensor | None, kind: str
) -> torch.Tensor:
    """(B, d) raw descriptors of a descriptor set from atom fractions (B, N_ELEMENTS) and, for the
    sets with a structure block, the structure statistics (B, STRUCTURE_COLUMNS[kind]: the bond
    statistics, then the bond chemistry's where the set has it, then the cell's where it has
    it)."""
    if kind not in DESCRIPTOR_SETS:
        raise ValueError(
            f"unknown kernel descriptors {kind!r}; valid: {', '.join(DESCRIPTOR_SETS)}"
        )
    parts = [composition_descriptors(fractions.float()).double()]
    if kind != "cgcnn":
        parts.append(element_property_statistics(fractions.double()))
    if kind in STRUCTURE_COLUMNS:
        if bonds is None or bonds.shape[1] != STRUCTURE_COLUMNS[kind]:
            raise ValueError(
                f"{kind} kernel descriptors need {STRUCTURE_COLUMNS[kind]} structure statistics"
            )
        parts.append(bonds.double())
    return torch.cat(parts, dim=1)


def laplacian(a: torch.Tensor, b: torch.Tensor, gamma: float | torch.Tensor) -> torch.Tensor:
    """exp(-gamma |a_i - b_j|_1), (len(a), len(b))."""
    return torch.exp(-gamma * torch.cdist(a, b, p=1))


def rbf(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """exp(-gamma |a_i - b_j|^2), (len(a), len(b))."""
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
    return np.exp(-gamma * np.maximum(d2, 0))


def _solve(kernel: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    return np.linalg.solve(kernel + ridge * np.eye(len(kernel)), y)


@dataclass
class KernelFit:
    """One property's composition part: coefficients over the kernel's points, and its values."""

    coef: np.ndarray  # (n_points,), zero where a point has no label of this property
    gamma: float
    values: np.ndarray  # (n_structures,) leave-one-out on the structures it was fitted to
    kept: bool
    # validation MAEs auto compared: a backbone's stand-in with and without the part, or, for a
    # graph network, the part's and a linear fit's on the composition
    validation: dict[str, float]
    bond_weight: float = 0.0  # the structure block's weight in the L1 distance


def block_distances(
    a: torch.Tensor, b: torch.Tensor, n_bond_columns: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 distances between rows of ``a`` and ``b`` over the composition columns and over the
    last ``n_bond_columns`` (the bond block; zeros when there is none)."""
    split = a.shape[-1] - n_bond_columns
    composition = torch.cdist(a[..., :split], b[..., :split], p=1)
    if n_bond_columns == 0:
        return composition, torch.zeros_like(composition)
    return composition, torch.cdist(a[..., split:], b[..., split:], p=1)


def _stand_in_mae(
    features: np.ndarray, residual: np.ndarray, rows: np.ndarray, val: np.ndarray
) -> float:
    """Validation MAE of RBF kernel ridge on the structure features (the MLP's stand-in)."""
    dim, scores = features.shape[1], []
    for width in (0.3, 1.0, 3.0):
        k_train = rbf(features[rows], features[rows], width / dim)
        k_val = rbf(features[val], features[rows], width / dim)
        for ridge in (1e-2, 1e-1):
            coef = _solve(k_train, residual[rows], ridge)
            scores.append(float(np.abs(k_val @ coef - residual[val]).mean()))
    return min(scores)


def kernel_points(labelled: np.ndarray, seed: int = 0) -> np.ndarray:
    """Indices of the kernel's points: the structures with a training or validation label
    (``labelled``), at most MAX_POINTS of them (a random subset on large data; the others are
    then predicted, not fitted)."""
    rows = np.flatnonzero(labelled)
    if len(rows) > MAX_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_POINTS, replace=False))
    return rows


def fit_composition_kernel(
    descriptors: np.ndarray,
    features: np.ndarray | None,
    residual: np.ndarray,
    points: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    mode: str = "auto",
    n_bond_columns: int = 0,
    linear_mae: float | None = None,
) -> KernelFit:
    """Fit one property's composition part.

    descriptors : (n, d) standardised kernel descriptors of every structure.
    features : (n, f) standardised structure features for the ``auto`` decision's stand-in
        (a backbone's); None (a graph network): keep the part where its validation MAE is at
        most ``GRAPH_KEEP_RATIO`` x ``linear_mae``.
    residual : (n,) the label minus the linear part (NaN where unlabelled).
    points : indices of the kernel's points (``kernel_points``).
    train, val : (n,) boolean masks of this property's training and validation labels.
    n_bond_columns : the last columns of ``descriptors`` that are bond statistics; their weight
        in the distance (``BOND_WEIGHTS``) is chosen on validation with the width and ridge.
    linear_mae : the validation MAE of a linear fit of ``residual`` on the composition; None:
        that of the residual itself.
    """
    if mode not in KERNEL_MODES:
        raise ValueError(f"unknown composition kernel {mode!r}; valid: {', '.join(KERNEL_MODES)}")
    n = len(descriptors)
    off = KernelFit(np.zeros(len(points)), 1.0, np.zeros(n), False, {})
    cols = np.flatnonzero(train[points])  # this property's labelled points
    fit_rows, val_rows = points[cols], np.flatnonzero(val)
    if mode == "off" or len(fit_rows) < MIN_POINTS or len(val_rows) == 0:
        return off
    pairs = (torch.from_numpy(descriptors), torch.from_numpy(descriptors[fit_rows]))
    blocks = [d.numpy() for d in block_distances(*pairs, n_bond_columns)]  # (n, fitted), float64
    best: tuple[float, float, float, float] | None = None
    for bond_weight in BOND_WEIGHTS if n_bond_columns else (0.0,):
        distance = blocks[0] + bond_weight * blocks[1]
        dim = descriptors.shape[1] - n_bond_columns * (1 - bond_weight)
        for width in WIDTHS:
            k_fit = np.exp(-(width / dim) * distance[fit_rows])
            k_val = np.exp(-(width / dim) * distance[val_rows])
            for ridge in RIDGES:
                c = _solve(k_fit, residual[fit_rows], ridge)
                score = float(np.abs(k_val @ c - residual[val_rows]).mean())
                if best is None or score < best[0]:
                    best = (score, width / dim, ridge, bond_weight)
    assert best is not None
    _, gamma, ridge, bond_weight = best

    def fitted(
        cols: np.ndarray, blocks: list[np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The fit on the points ``points[cols]``: coefficients over every point (zero off
        ``cols``) and every structure's value, leave-one-out on those points; ``blocks``: the
        distances to those points, when already computed."""
        rows = points[cols]
        if blocks is None:
            pairs = (torch.from_numpy(descriptors), torch.from_numpy(descriptors[rows]))
            blocks = [d.numpy() for d in block_distances(*pairs, n_bond_columns)]
        kernel = np.exp(-gamma * (blocks[0] + bond_weight * blocks[1]))  # (n, len(rows))
        # with A = K + ridge I and coefficients c = A^-1 y, the fit without point i predicts
        # y_i - c_i / (A^-1)_ii there (the leave-one-out identity of kernel ridge regression)
        inverse = np.linalg.inv(kernel[rows] + ridge * np.eye(len(rows)))
        coef = np.zeros(len(points))
        coef[cols] = inverse @ residual[rows]
        values = kernel @ coef[cols]
        values[rows] = residual[rows] - coef[cols] / np.diag(inverse)
        return coef, values

    validation: dict[str, float] = {}
    if mode == "auto":
        _, values = fitted(cols, blocks)  # the distances the selection used
        keep, validation = _keep(features, residual, values, fit_rows, val_rows, linear_mae)
        if not keep:
            return KernelFit(off.coef, off.gamma, off.values, False, validation)
    # the final fit uses the validation labels too (14 % more labels on the bundled split); the
    # validation structures' values are leave-one-out like the training ones', so the network's
    # validation stays honest
    coef, values = fitted(np.flatnonzero((train | val)[points]))
    return KernelFit(coef, gamma, values, True, validation, bond_weight)


def _keep(
    features: np.ndarray | None,
    residual: np.ndarray,
    values: np.ndarray,
    fit_rows: np.ndarray,
    val_rows: np.ndarray,
    linear_mae: float | None,
) -> tuple[bool, dict[str, float]]:
    """``auto``: keep the part? (and the validation MAEs it compared)"""
    if features is None:
        linear = float(np.abs(residual[val_rows]).mean()) if linear_mae is None else linear_mae
        part = float(np.abs(residual[val_rows] - values[val_rows]).mean())
        return part <= GRAPH_KEEP_RATIO * linear, {"linear fit": linear, "part": part}
    without = _stand_in_mae(features, residual, fit_rows, val_rows)
    with_part = _stand_in_mae(features, residual - values, fit_rows, val_rows)
    return with_part < (1 - KEEP_GAIN) * without, {"without": without, "with": with_part}


class CompositionKernel(nn.Module):
    """Each property's composition part, as saved with a model: the standardisation of the
    descriptors, the kernel's points, and per property its coefficients and width (float64: the
    coefficients of a kernel fit cancel each other to a few digits)."""

    descriptor_mean: torch.Tensor
    descriptor_std: torch.Tensor
    points: torch.Tensor
    coef: torch.Tensor
    gamma: torch.Tensor
    bond_weight: torch.Tensor  # (n_properties,), descriptors with a structure block only

    def __init__(
        self, n_properties: int, n_points: int, mode: str = "auto", descriptors: str = "cgcnn"
    ) -> None:
        super().__init__()
        if mode not in KERNEL_MODES:
            raise ValueError(
                f"unknown composition kernel {mode!r}; valid: {', '.join(KERNEL_MODES)}"
            )
        self.mode = mode
        self.kind = descriptors
        structure = torch.zeros(1, STRUCTURE_COLUMNS.get(descriptors, 0))
        d = kernel_descriptors(torch.zeros(1, N_ELEMENTS), structure, descriptors).shape[1]
        double = torch.float64
        self.register_buffer("descriptor_mean", torch.zeros(d))
        self.register_buffer("descriptor_std", torch.ones(d))
        self.register_buffer("points", torch.zeros(n_points, d, dtype=double))
        self.register_buffer("coef", torch.zeros(n_properties, n_points, dtype=double))
        self.register_buffer("gamma", torch.ones(n_properties, dtype=double))
        if self.needs_bonds:
            self.register_buffer("bond_weight", torch.zeros(n_properties, dtype=double))

    @property
    def n_bond_columns(self) -> int:
        """The structure block's columns (the last of the descriptors)."""
        return STRUCTURE_COLUMNS.get(self.kind, 0)

    @property
    def needs_bonds(self) -> bool:
        return self.kind in STRUCTURE_COLUMNS

    @property
    def needs_cell(self) -> bool:
        return structure_blocks(self.kind)[0]

    @property
    def needs_chemistry(self) -> bool:
        return structure_blocks(self.kind)[1]

    def descriptors(
        self, fractions: torch.Tensor, bonds: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.standardise(kernel_descriptors(fractions, bonds, self.kind))

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        out = (raw - self.descriptor_mean.double()) / self.descriptor_std.double()
        if self.needs_cell:  # the cell columns, last, weigh CELL_WEIGHT bond columns each
            weights = torch.ones(out.shape[1], dtype=out.dtype, device=out.device)
            weights[-N_CELL_DESCRIPTORS:] = CELL_WEIGHT
            if self.needs_chemistry:  # the bond chemistry's, before them, CHEMISTRY_WEIGHT
                chemistry = slice(-N_CELL_DESCRIPTORS - N_CHEMISTRY_DESCRIPTORS,
                                  -N_CELL_DESCRIPTORS)  # fmt: skip
                weights[chemistry] = CHEMISTRY_WEIGHT
            out = out * weights
        return out

    def fit(
        self,
        fractions: np.ndarray,
        residuals: np.ndarray,
        train: np.ndarray,
        val: np.ndarray,
        features: np.ndarray | None = None,
        bonds: np.ndarray | None = None,
    ) -> np.ndarray:
        """Fit every property's part; (n, n_properties) values to train against (leave-one-out
        on the fitted training and validation structures). ``features``: standardised
        structure features for the ``auto`` check's stand-in (a backbone's); None (a graph
        network, which has no features before training): the part is compared with a linear
        fit on the composition (``fit_composition_kernel``). ``bonds``: (n, n_bond_columns)
        structure statistics, for the descriptors with a structure block."""
        points = kernel_points(np.asarray((train | val).any(1)))
        bond_tensor = None if bonds is None else torch.from_numpy(bonds)
        raw = kernel_descriptors(torch.from_numpy(fractions), bond_tensor, self.kind)
        rows = np.flatnonzero(train.any(1))
        self.descriptor_mean.copy_(raw[rows].mean(0))
        self.descriptor_std.copy_(raw[rows].std(0) + 1e-3)
        descriptors = self.standardise(raw).numpy()
        self.points.copy_(torch.from_numpy(descriptors[points]))
        values = np.zeros(residuals.shape, dtype=np.float32)
        for j in range(residuals.shape[1]):
            linear_mae = None
            if features is None and self.mode == "auto" and val[:, j].any():
                w, b, _ = fit_ridge(fractions, residuals[:, j], train[:, j], val[:, j])
                rows_val = val[:, j]
                linear_mae = float(
                    np.abs(fractions[rows_val] @ w + b - residuals[rows_val, j]).mean()
                )
            fit = fit_composition_kernel(
                descriptors,
                features,
                residuals[:, j],
                points,
                train[:, j],
                val[:, j],
                self.mode,
                n_bond_columns=self.n_bond_columns,
                linear_mae=linear_mae,
            )
            self.coef[j] = torch.from_numpy(fit.coef)
            self.gamma[j] = fit.gamma
            if self.needs_bonds:
                self.bond_weight[j] = fit.bond_weight
            values[:, j] = fit.values
            log.info("property %d: composition kernel %s %s (bond weight %g)", j,
                     "kept" if fit.kept else "off", fit.validation, fit.bond_weight)  # fmt: skip
        return values

    def forward(self, fractions: torch.Tensor, bonds: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_properties) for new structures, from their atom fractions (B, N_ELEMENTS) and,
        for descriptors with a structure block, their structure statistics."""
        if not bool(self.coef.any()):  # auto left every property's part off: nothing to add
            return torch.zeros(len(fractions), len(self.coef), device=fractions.device)
        d = self.descriptors(fractions, bonds)
        composition, bond = block_distances(d, self.points, self.n_bond_columns)  # (B, points)
        distance = composition.unsqueeze(0)  # (1 or properties, B, points)
        if self.needs_bonds:
            distance = distance + self.bond_weight[:, None, None] * bond.unsqueeze(0)
        k = torch.exp(-self.gamma[:, None, None] * distance)  # (properties, B, points)
        return (k * self.coef[:, None, :]).sum(-1).T
