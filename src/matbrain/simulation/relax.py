"""Relax positions and cell with any ASE calculator (FIRE or BFGS on a ``FrechetCellFilter``).

Convergence needs both tolerances: the largest atomic force below ``fmax_eV_per_A`` and, when
the cell relaxes, the largest stress component below ``smax_GPa`` (the filter's own ``fmax`` mixes
the two into one number, which hides a cell still under stress).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.units import GPa

log = logging.getLogger(__name__)
OptimizerName = Literal["FIRE", "BFGS"]


@dataclass(frozen=True)
class RelaxConfig:
    fmax_eV_per_A: float = 0.02
    smax_GPa: float = 0.1
    max_steps: int = 500
    relax_cell: bool = True
    optimizer: OptimizerName = "FIRE"

    def __post_init__(self) -> None:
        if self.fmax_eV_per_A <= 0 or self.smax_GPa <= 0:
            raise ValueError("force and stress tolerances must be positive")
        if self.max_steps < 1:
            raise ValueError("max_steps must be at least 1")


@dataclass
class CellState:
    energy_eV: float
    energy_per_atom_eV: float
    volume_A3: float
    lattice_abc_A: list[float]
    angles_deg: list[float]
    max_force_eV_per_A: float
    max_stress_GPa: float | None


@dataclass
class RelaxResult:
    formula: str
    n_atoms: int
    converged: bool
    steps: int
    initial: CellState
    final: CellState
    config: dict[str, Any]
    potential: dict[str, Any]

    def to_json(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    def report(self) -> str:
        i, f = self.initial, self.final
        status = "converged" if self.converged else "NOT converged"
        lines = [
            f"{self.formula} ({self.n_atoms} atoms): {status} after {self.steps} steps",
            _row("", "before", "after"),
            _row("energy (eV/atom)", f"{i.energy_per_atom_eV:.5f}", f"{f.energy_per_atom_eV:.5f}"),
            _row("volume (Å³)", f"{i.volume_A3:.3f}", f"{f.volume_A3:.3f}"),
            _row("a, b, c (Å)", _triple(i.lattice_abc_A), _triple(f.lattice_abc_A)),
            _row("α, β, γ (°)", _triple(i.angles_deg, 2), _triple(f.angles_deg, 2)),
            _row("max force (eV/Å)", f"{i.max_force_eV_per_A:.4f}", f"{f.max_force_eV_per_A:.4f}"),
        ]
        if f.max_stress_GPa is not None and i.max_stress_GPa is not None:
            lines.append(
                _row("max stress (GPa)", f"{i.max_stress_GPa:.4f}", f"{f.max_stress_GPa:.4f}")
            )
        return "\n".join(lines)


def _row(label: str, before: str, after: str) -> str:
    return f"{label:<18}{before:>24}{after:>24}"


def _triple(values: list[float], digits: int = 3) -> str:
    return " ".join(f"{v:.{digits}f}" for v in values)


def _state(atoms: Atoms, with_stress: bool) -> CellState:
    energy = float(atoms.get_potential_energy())
    forces = atoms.get_forces()
    stress = np.abs(atoms.get_stress()).max() / GPa if with_stress else None
    par = atoms.cell.cellpar()
    return CellState(
        energy_eV=energy,
        energy_per_atom_eV=energy / len(atoms),
        volume_A3=float(atoms.get_volume()),
        lattice_abc_A=[float(x) for x in par[:3]],
        angles_deg=[float(x) for x in par[3:]],
        max_force_eV_per_A=float(np.linalg.norm(forces, axis=1).max()),
        max_stress_GPa=float(stress) if stress is not None else None,
    )


def relax(
    atoms: Atoms,
    calc: Calculator,
    config: RelaxConfig = RelaxConfig(),
    trajectory: Path | None = None,
    potential: dict[str, Any] | None = None,
) -> tuple[Atoms, RelaxResult]:
    """Relax a copy of ``atoms``; return it and a report. The input is left untouched."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS, FIRE

    work = atoms.copy()
    work.calc = calc
    relax_cell = config.relax_cell and bool(work.pbc.all())
    initial = _state(work, relax_cell)
    target = FrechetCellFilter(work) if relax_cell else work
    opt_cls = FIRE if config.optimizer == "FIRE" else BFGS
    # ASE's optimizers take a filter as well as Atoms; their annotation names only Atoms
    opt = opt_cls(target, logfile=None, trajectory=str(trajectory) if trajectory else None)  # type: ignore[arg-type]

    def done() -> bool:
        fmax = np.linalg.norm(work.get_forces(), axis=1).max()
        if fmax >= config.fmax_eV_per_A:
            return False
        return not relax_cell or bool(np.abs(work.get_stress()).max() / GPa < config.smax_GPa)

    converged = done()
    steps = 0
    if not converged:
        # the filter's fmax is only a loose stop; the real test is ``done()`` after every step
        for _ in opt.irun(fmax=config.fmax_eV_per_A * 1e-3, steps=config.max_steps):
            steps = opt.nsteps
            if done():
                converged = True
                break
    final = _state(work, relax_cell)
    result = RelaxResult(
        formula=work.get_chemical_formula(),
        n_atoms=len(work),
        converged=converged,
        steps=steps,
        initial=initial,
        final=final,
        config=asdict(config),
        potential=potential or {"calculator": type(calc).__name__},
    )
    relaxed = work.copy()
    relaxed.calc = None
    return relaxed, result


def relax_file(
    structure: Path,
    potential_spec: str,
    out_dir: Path,
    config: RelaxConfig = RelaxConfig(),
    device: str = "auto",
) -> RelaxResult:
    """``matbrain relax``: read, relax, write ``<stem>_relaxed.cif``, ``<stem>.traj``, ``report.json``."""
    import ase.io

    from matbrain.data.structures import read_structure
    from matbrain.potentials.calculators import describe, load_potential

    atoms = read_structure(structure)
    loaded = load_potential(potential_spec, device=device)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = structure.name.split(".")[0]
    relaxed, result = relax(
        atoms, loaded.calc, config, trajectory=out_dir / f"{stem}.traj", potential=describe(loaded)
    )
    ase.io.write(out_dir / f"{stem}_relaxed.cif", relaxed)
    result.to_json(out_dir / "report.json")
    (out_dir / "report.txt").write_text(result.report() + "\n")
    return result
