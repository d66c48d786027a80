"""Choose what to label next: uncertain, but not absurd, and not all alike.

1. Uncertainty per frame: the ACE extrapolation grade γ (max over atoms; ``PyACECalculator`` on
   the ``.yaml`` with the active set ``.asi``) and/or the disagreement of a committee of
   potentials (max over atoms of the spread of the predicted forces, eV/Å).
2. A window ``[low, high)``: below ``low`` the potential already knows the frame; above ``high``
   it is usually an unphysical frame from the tail of a run going wrong.
3. Down to the per-generation budget: D-optimal (MaxVol on the ACE projections, extending the
   current active set: ``pace_select``'s algorithm), farthest-point sampling on a radial
   fingerprint, or a seeded random draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import BaseModel, ConfigDict, Field, model_validator

from matbrain.potentials.ace.versions import PotentialVersion

Method = Literal["d-optimal", "farthest-point", "random"]


class SelectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    uncertainty: Literal["gamma", "committee"] = "gamma"
    low: float = Field(
        1.5, ge=0, description="γ (or committee force spread, eV/Å) to be worth labelling"
    )
    high: float = Field(25.0, gt=0, description="above this a frame is taken as unphysical")
    budget: int = Field(10, ge=1, description="structures to label per generation")
    method: Method = "d-optimal"
    seed: int = 0

    @model_validator(mode="after")
    def _window(self) -> SelectionConfig:
        if self.high <= self.low:
            raise ValueError(f"selection window is empty: high {self.high} <= low {self.low}")
        return self


@dataclass
class Selection:
    indices: list[int]  # into the pool, in selection order
    uncertainty: np.ndarray  # per pool frame
    in_window: int
    above_window: int


def extrapolation_grades(frames: Sequence[Atoms], version: PotentialVersion) -> np.ndarray:
    """Max per-atom γ of each frame under ``version`` (≈1 inside the training domain)."""
    from pyace import PyACECalculator

    calc = PyACECalculator(str(version.yaml))
    calc.set_active_set(str(version.asi))
    grades = np.empty(len(frames))
    for i, frame in enumerate(frames):
        atoms = frame.copy()
        atoms.calc = calc
        atoms.get_potential_energy()
        grades[i] = float(np.max(calc.results["gamma"]))
    return grades


def committee_disagreement(
    frames: Sequence[Atoms], calculators: Sequence[Calculator]
) -> np.ndarray:
    """Max over atoms of the committee's force standard deviation (norm over x, y, z), eV/Å."""
    if len(calculators) < 2:
        raise ValueError("a committee needs at least two potentials")
    spread = np.empty(len(frames))
    for i, frame in enumerate(frames):
        forces = []
        for calc in calculators:
            atoms = frame.copy()
            atoms.calc = calc
            forces.append(atoms.get_forces())
        std = np.std(np.stack(forces), axis=0)  # (atoms, 3)
        spread[i] = float(np.max(np.linalg.norm(std, axis=1)))
    return spread


def radial_fingerprint(atoms: Atoms, cutoff: float = 6.0, bins: int = 30) -> np.ndarray:
    """Pair-distance histogram per element pair (per atom, Gaussian-smeared) + volume per atom."""
    from ase.neighborlist import neighbor_list

    symbols = sorted(set(atoms.get_chemical_symbols()))
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    numbers = np.asarray(atoms.get_chemical_symbols())
    centres = np.linspace(0.5, cutoff, bins)
    parts = []
    for a_index, a in enumerate(symbols):
        for b in symbols[a_index:]:
            mask = ((numbers[i] == a) & (numbers[j] == b)) | ((numbers[i] == b) & (numbers[j] == a))
            hist = np.exp(-((d[mask, None] - centres[None, :]) ** 2) / (2 * 0.1**2)).sum(axis=0)
            parts.append(hist / len(atoms))
    parts.append(np.array([atoms.get_volume() / len(atoms) if atoms.pbc.all() else 0.0]))
    return np.concatenate(parts)


def farthest_point(features: np.ndarray, budget: int, start: int = 0) -> list[int]:
    """Greedy farthest-point sampling (standardised features), beginning at row ``start``."""
    n = len(features)
    if n == 0:
        return []
    x = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-12)
    chosen = [start]
    nearest = np.linalg.norm(x - x[start], axis=1)
    while len(chosen) < min(budget, n):
        nxt = int(np.argmax(nearest))
        if nearest[nxt] <= 0:
            break  # the rest are copies of chosen frames
        chosen.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(x - x[nxt], axis=1))
    return chosen


def d_optimal(frames: Sequence[Atoms], version: PotentialVersion, budget: int) -> list[int]:
    """MaxVol selection on ACE projections that extends the active set of ``version``."""
    import pandas as pd
    from pyace import BBasisConfiguration
    from pyace.aceselect import select_structures_maxvol
    from pyace.activelearning import compute_A_active_inverse, load_active_inverse_set

    df = pd.DataFrame({"ase_atoms": list(frames)})
    extra = compute_A_active_inverse(load_active_inverse_set(str(version.asi)))
    chosen = select_structures_maxvol(df, BBasisConfiguration(str(version.yaml)), extra,
                                      batch_size_option="none", max_structures=budget)  # fmt: skip
    return [int(i) for i in chosen.index]


def select(
    pool: Sequence[Atoms],
    uncertainty: np.ndarray,
    cfg: SelectionConfig,
    version: PotentialVersion | None = None,
) -> Selection:
    """Frames of ``pool`` in the uncertainty window, reduced to ``cfg.budget``."""
    uncertainty = np.asarray(uncertainty, dtype=float)
    if len(uncertainty) != len(pool):
        raise ValueError(f"{len(uncertainty)} uncertainties for {len(pool)} frames")
    window = np.flatnonzero((uncertainty >= cfg.low) & (uncertainty < cfg.high))
    above = int(np.sum(uncertainty >= cfg.high))
    candidates = [pool[i] for i in window]
    if len(window) <= cfg.budget:
        picked = list(range(len(window)))
    elif cfg.method == "d-optimal":
        if version is None:
            raise ValueError("d-optimal selection needs the ACE potential version")
        picked = d_optimal(candidates, version, cfg.budget)
        if len(picked) < cfg.budget:  # MaxVol may saturate: fill up by diversity
            rest = [k for k in range(len(window)) if k not in set(picked)]
            feats = np.stack([radial_fingerprint(candidates[k]) for k in rest])
            picked += [rest[k] for k in farthest_point(feats, cfg.budget - len(picked))]
    elif cfg.method == "farthest-point":
        feats = np.stack([radial_fingerprint(a) for a in candidates])
        picked = farthest_point(feats, cfg.budget, start=int(np.argmax(uncertainty[window])))
    else:
        rng = np.random.default_rng(cfg.seed)
        picked = [int(k) for k in rng.choice(len(window), size=cfg.budget, replace=False)]
    return Selection([int(window[k]) for k in picked], uncertainty, len(window), above)
