"""Linear ACE fitted by weighted least squares with python-ace's own design matrices.

pyace's :class:`~pyace.linearacefit.LinearACEDataset` evaluates the B-basis projections (per-atom
energy rows and force-component rows) of a basis made by pacemaker's
``create_multispecies_basis_config``; the fit solves ridge least squares on them. Energies are
fitted relative to explicit per-element reference energies (E0s), which are written into the
``.yace`` so that the published potential gives energies in the frame of the DFT data.

The energy weight and the ridge strength are chosen on the validation split from a small grid
(one SVD of the weighted design matrix per energy weight); the published coefficients are the
chosen fit on the training split, so the run's validation errors stay held-out. (Refitting them
on training and validation together moved mlearn Ni's test errors by under 4 %: 0.346 -> 0.333
meV/atom, 0.0134 -> 0.0133 eV/Å with 1,200 functions.)

With ``with_stress`` the fit sees the DFT stresses too: one row per Voigt component, the strain
derivative (1/V) dE/dε of each basis function's sum over the atoms (central differences of the
projections at strains ±1e-3), in GPa, weighted by the stress weight (chosen on validation with
the others when not given, and only as far as it costs the validation energies and forces
little). Energies and forces pin C11 but not C12: mlearn Si's linear fit at the max level gave
diamond C12 83 GPa against the data's 57 without its stresses (bench/ace_stress_rows.py). A
constant pressure offset of the DFT stresses (Pulay stress) is fitted beside the basis and left
out of the potential.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from matbrain.potentials.ace.config import functions_by_orders
from matbrain.potentials.ace.reference import set_yace_reference_energies
from matbrain.potentials.config import AceTrainConfig
from matbrain.potentials.data import STRESS_KEY, energy_and_forces

ENERGY_WEIGHTS = (10.0, 30.0, 100.0, 300.0)
RIDGE_ALPHAS = (1e-10, 1e-8, 1e-6, 1e-4, 1e-2)
STRESS_WEIGHTS = (0.0, 0.1, 0.3, 1.0)  # per GPa, beside force components in eV/Å
# fitting stresses may cost the validation energies and forces this much (their relative errors
# summed, against the best fit without stresses): beyond it the data's stresses disagree with its
# energies and are left out (fitted without their offset below, mlearn Cu's and Ni's stresses at
# weight 0.3 doubled their test energy errors)
STRESS_COST = 0.10
VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))  # ASE's order: xx yy zz yz xz xy
STRAIN_STEP = 1e-3


@dataclass
class LinearAceFit:
    yaml: Path
    yace: Path
    energy_weight: float
    ridge_alpha: float
    n_functions: int
    seconds: float
    grid: list[dict[str, float]] = field(default_factory=list)
    stress_weight: float | None = None  # None: no stresses asked for; 0: asked, left out
    # the DFT stresses' constant offset (on xx, yy, zz; ASE's sign), fitted beside the basis and
    # not part of the potential: VASP's Pulay stress at a finite basis (fitted to mlearn Cu and
    # Ni: +2.4 and +3.0 GPa, their labelled pressure below their energies' volume derivative)
    stress_offset_GPa: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["yaml"], out["yace"] = str(self.yaml), str(self.yace)
        return out


def basis_config(cfg: AceTrainConfig, elements: list[str]):
    """pacemaker's basis for ``elements``: linear embedding, Bessel radial basis."""
    from pyace import create_multispecies_basis_config

    return create_multispecies_basis_config({
        "deltaSplineBins": 0.001,
        "elements": list(elements),
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1],
                               "ndensity": 1}},
        "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": cfg.cutoff_A,
                          "dcut": 0.01, "NameOfCutoffFunction": "cos"}},
        "functions": {"number_of_functions_per_element": cfg.functions_per_element,
                      **functions_by_orders(cfg.nradmax_by_orders, cfg.lmax_by_orders)},
    })  # fmt: skip


def _frame_table(frames: list[Atoms], e0s: dict[str, float]):
    import pandas as pd

    rows = []
    for atoms in frames:
        reference = sum(e0s[s] for s in atoms.get_chemical_symbols())
        bare = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        energy, forces = energy_and_forces(atoms)
        rows.append({"ase_atoms": bare, "energy": energy - reference, "forces": forces})
    return pd.DataFrame(rows)


def _design(bconf, frames: list[Atoms], e0s: dict[str, float], workers: int):
    """(design matrix, targets, number of energy rows) of ``frames``."""
    from pyace.linearacefit import LinearACEDataset

    dataset = LinearACEDataset(bconf, _frame_table(frames, e0s))
    matrix = np.array(dataset.get_design_matrix(max_workers=max(1, workers)))
    return matrix, np.array(dataset.get_target_vector()), len(frames)


def _strain(i: int, j: int, h: float) -> np.ndarray:
    """Deformation gradient of the symmetric strain with ε_ij = h (engineering shear for i != j)."""
    eps = np.eye(3)
    eps[i, j] += h if i == j else h / 2
    if i != j:
        eps[j, i] += h / 2
    return eps


def stress_design(bconf, frames: list[Atoms]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, targets) in GPa: six per periodic frame with a DFT stress, Voigt order.

    A row holds (1/V) d/dε of every basis function summed over the atoms, laid out as pyace's
    design matrix lays out the energy rows (species blocks), so ``rows @ coefficients`` is the
    potential's stress (the E0s do not depend on strain)."""
    from ase.units import GPa
    from pyace import ACEBBasisSet, ACEBEvaluator, ACECalculator
    from pyace.atomicenvironment import aseatoms_to_atomicenvironment
    from pyace.linearacefit import compute_nfunc_func_ind_shift

    basis = ACEBBasisSet(bconf)
    evaluator = ACEBEvaluator(basis)  # the calculator does not keep it alive: hold it here
    calc = ACECalculator(evaluator)
    n_functions, shift = compute_nfunc_func_ind_shift(basis)

    def summed_projections(atoms: Atoms) -> np.ndarray:
        env = aseatoms_to_atomicenvironment(
            atoms, cutoff=basis.cutoffmax, elements_mapper_dict=basis.elements_to_index_map
        )
        calc.compute(env, compute_projections=True)
        row = np.zeros(n_functions)
        for species, projection in zip(env.species_type, calc.projections, strict=False):
            row[shift[species] : shift[species] + len(projection)] += projection
        return row

    rows, targets = [], []
    for atoms in frames:
        if STRESS_KEY not in atoms.info or not atoms.pbc.all():
            continue
        volume = atoms.get_volume()
        for i, j in VOIGT:
            plus, minus = (atoms.copy(), atoms.copy())
            plus.set_cell(atoms.cell @ _strain(i, j, STRAIN_STEP), scale_atoms=True)
            minus.set_cell(atoms.cell @ _strain(i, j, -STRAIN_STEP), scale_atoms=True)
            derivative = (summed_projections(plus) - summed_projections(minus)) / (2 * STRAIN_STEP)
            rows.append(derivative / volume / GPa)
            targets.append(np.asarray(atoms.info[STRESS_KEY])[i, j] / GPa)
    return np.array(rows).reshape(-1, n_functions), np.array(targets)


def _ridge_path(a: np.ndarray, y: np.ndarray, alphas: tuple[float, ...]) -> list[np.ndarray]:
    """Ridge solutions for every alpha from one SVD (columns scaled to unit norm first)."""
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    u, s, vt = np.linalg.svd(a / scale, full_matrices=False)
    uty = u.T @ y
    return [(vt.T @ (s / (s**2 + alpha) * uty)) / scale for alpha in alphas]


def _errors(a: np.ndarray, y: np.ndarray, n_energy: int, coef: np.ndarray) -> tuple[float, float]:
    """(energy MAE meV/atom, force-component MAE eV/Å)."""
    diff = a @ coef - y
    return 1000 * float(np.abs(diff[:n_energy]).mean()), float(np.abs(diff[n_energy:]).mean())


def _diagonal(targets: np.ndarray) -> np.ndarray:
    """1 on the xx, yy, zz rows of stress targets laid out six per structure, 0 on the shears."""
    return np.tile([1.0, 1.0, 1.0, 0.0, 0.0, 0.0], len(targets) // 6)


def _stress_point(
    solution: np.ndarray,
    coef: np.ndarray,
    stress_weight: float | None,
    s_train: tuple[np.ndarray, np.ndarray],
    s_valid: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """A grid point's stress weight, the DFT stresses' offset and the validation stress MAE."""
    if stress_weight:
        offset = float(solution[-1])  # fitted with the basis
    else:  # stresses not fitted: the offset that suits the training stresses best
        diagonal = _diagonal(s_train[1]).astype(bool)
        offset = float((s_train[1] - s_train[0] @ coef)[diagonal].mean())
    point: dict[str, Any] = {"stress_weight": stress_weight, "stress_offset_GPa": offset}
    if len(s_valid[1]):
        predicted = s_valid[0] @ coef + offset * _diagonal(s_valid[1])
        point["valid_stress_mae_GPa"] = float(np.abs(predicted - s_valid[1]).mean())
    return point


def _choose(grid: list[dict[str, Any]]) -> dict[str, Any]:
    """The energy and force errors count, each relative to its best on the grid; with stresses,
    the point with the lowest stress error among those within ``STRESS_COST`` of the best fit
    without stresses on energies and forces."""
    best_e = min(g["valid_energy_mae_meV_per_atom"] for g in grid)
    best_f = min(g["valid_forces_mae_eV_per_A"] for g in grid)

    def score(g: dict[str, Any]) -> float:
        return g["valid_energy_mae_meV_per_atom"] / best_e + g["valid_forces_mae_eV_per_A"] / best_f

    if "valid_stress_mae_GPa" not in grid[0]:
        return min(grid, key=score)
    free = [score(g) for g in grid if not g["stress_weight"]]
    if not free:  # the stress weight was given
        return min(grid, key=score)
    base = min(free)
    eligible = [g for g in grid if score(g) <= base * (1 + STRESS_COST)]
    return min(eligible, key=lambda g: (g["valid_stress_mae_GPa"], score(g)))


def fit_linear_ace(
    train: list[Atoms],
    valid: list[Atoms],
    cfg: AceTrainConfig,
    e0s: dict[str, float],
    workdir: Path,
    workers: int = 2,
    echo=print,
) -> LinearAceFit:
    """Fit, pick energy weight and ridge strength (and stress weight) on ``valid``, write
    ``ace.yaml`` and ``ace.yace``."""
    from pyace import ACEBBasisSet

    started = time.time()
    workdir.mkdir(parents=True, exist_ok=True)
    elements = sorted({s for a in [*train, *valid] for s in a.get_chemical_symbols()})
    missing = set(elements) - set(e0s)
    if missing:
        raise ValueError(f"no reference energy (E0) for {', '.join(sorted(missing))}")
    bconf = basis_config(cfg, elements)
    echo(f"linear ACE: {bconf.total_number_of_functions} basis functions, cutoff {cfg.cutoff_A} Å; "
         f"design matrices of {len(train)} + {len(valid)} structures")  # fmt: skip
    a_train, y_train, n_train = _design(bconf, train, e0s, workers)
    a_valid, y_valid, n_valid = _design(bconf, valid, e0s, workers)
    s_train = s_valid = None
    if cfg.with_stress:
        s_started = time.time()
        s_train, s_valid = stress_design(bconf, train), stress_design(bconf, valid)
        if not len(s_train[1]):
            raise ValueError("--with-stress: no periodic training structure has a stress")
        if not len(s_valid[1]) and cfg.stress_weight is None:
            raise ValueError("--with-stress: no validation structure has a stress to choose the "
                             "stress weight on; give --stress-weight")  # fmt: skip
        echo(f"linear ACE: stress rows of {len(s_train[1]) // 6} + {len(s_valid[1]) // 6} "
             f"structures ({time.time() - s_started:.0f} s)")  # fmt: skip

    weights = (cfg.energy_weight,) if cfg.energy_weight else ENERGY_WEIGHTS
    alphas = (cfg.ridge_alpha,) if cfg.ridge_alpha else RIDGE_ALPHAS
    stress_weights: tuple[float | None, ...] = (None,)
    if cfg.with_stress:
        stress_weights = (cfg.stress_weight,) if cfg.stress_weight is not None else STRESS_WEIGHTS
    grid: list[dict[str, Any]] = []
    for weight in weights:
        for stress_weight in stress_weights:
            row_w = np.ones(len(y_train))
            row_w[:n_train] = weight
            a, y = a_train * row_w[:, None], y_train * row_w
            if s_train is not None and stress_weight:
                # one more unknown: the stresses' constant pressure offset (Pulay stress)
                a = np.block([[a, np.zeros((len(a), 1))],
                              [s_train[0] * stress_weight,
                               stress_weight * _diagonal(s_train[1])[:, None]]])  # fmt: skip
                y = np.concatenate([y, s_train[1] * stress_weight])
            for alpha, solution in zip(alphas, _ridge_path(a, y, alphas), strict=True):
                coef = solution[: a_train.shape[1]]
                e_mae, f_mae = _errors(a_valid, y_valid, n_valid, coef)
                point = {"energy_weight": weight, "ridge_alpha": alpha,
                         "valid_energy_mae_meV_per_atom": e_mae,
                         "valid_forces_mae_eV_per_A": f_mae, "_coef": coef}  # fmt: skip
                if s_train is not None and s_valid is not None:
                    point.update(_stress_point(solution, coef, stress_weight, s_train, s_valid))
                grid.append(point)
    chosen = _choose(grid)
    stress_note = ""
    if "valid_stress_mae_GPa" in chosen:
        stress_note = (f", stress weight {chosen['stress_weight']:g} (validation stress MAE "
                       f"{chosen['valid_stress_mae_GPa']:.3f} GPa beside the DFT stresses' "
                       f"constant offset, {chosen['stress_offset_GPa']:+.2f} GPa, which the "
                       "potential leaves out)")  # fmt: skip
    elif "stress_weight" in chosen:
        stress_note = (f", stress weight {chosen['stress_weight']:g} (the DFT stresses' constant "
                       f"offset, {chosen['stress_offset_GPa']:+.2f} GPa, left out)")  # fmt: skip
    if "stress_weight" in chosen and not chosen["stress_weight"]:
        stress_note += (f"; the stresses are not fitted: any weight costs the validation "
                        f"energies and forces over {STRESS_COST:.0%}")  # fmt: skip
    echo(f"linear ACE: energy weight {chosen['energy_weight']:g}, ridge {chosen['ridge_alpha']:g} "
         f"(validation E MAE {chosen['valid_energy_mae_meV_per_atom']:.3f} meV/atom, "
         f"F MAE {chosen['valid_forces_mae_eV_per_A']:.4f} eV/Å){stress_note}")  # fmt: skip

    basis = ACEBBasisSet(bconf)
    basis.basis_coeffs = chosen["_coef"]
    yaml_path, yace_path = workdir / "ace.yaml", workdir / "ace.yace"
    fitted = basis.to_BBasisConfiguration()
    fitted.metadata["reference_energy"] = json.dumps(e0s)
    fitted.save(str(yaml_path))
    ACEBBasisSet(fitted).to_ACECTildeBasisSet().save_yaml(str(yace_path))
    set_yace_reference_energies(yace_path, e0s)
    return LinearAceFit(
        yaml_path, yace_path, chosen["energy_weight"], chosen["ridge_alpha"],
        int(bconf.total_number_of_functions), round(time.time() - started, 1),
        [{k: v for k, v in g.items() if not k.startswith("_")} for g in grid],
        chosen.get("stress_weight"), chosen.get("stress_offset_GPa"),
    )  # fmt: skip
