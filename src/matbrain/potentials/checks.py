"""Physics checks every potential must pass, reusable for any ASE calculator (MACE, ACE, ...).

Each returns the largest deviation so that tests (and users validating a potential) choose
their own tolerance.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from scipy.spatial.transform import Rotation


def _with(atoms: Atoms, calc: Calculator) -> Atoms:
    out = atoms.copy()
    out.calc = calc
    return out


def force_fd_error(atoms: Atoms, calc: Calculator, d: float = 1e-4) -> float:
    """max |F - (-∂E/∂x)| in eV/Å, the derivative by central finite differences."""
    from ase.calculators.fd import calculate_numerical_forces

    work = _with(atoms, calc)
    analytic = work.get_forces()
    numeric = calculate_numerical_forces(work, eps=d)
    return float(np.abs(analytic - numeric).max())


def stress_fd_error(atoms: Atoms, calc: Calculator, d: float = 1e-5) -> float:
    """max |σ - (1/V) ∂E/∂ε| in eV/Å³, the strain derivative by central finite differences."""
    from ase.calculators.fd import calculate_numerical_stress

    work = _with(atoms, calc)
    analytic = work.get_stress(voigt=True)
    numeric = calculate_numerical_stress(work, eps=d, voigt=True, force_consistent=False)
    return float(np.abs(analytic - numeric).max())


def cubic_elastic_constants(
    crystal: Atoms, calc: Calculator, strain: float = 0.01
) -> dict[str, float]:
    """C11, C12 and B = (C11 + 2 C12) / 3 in GPa of a cubic cell (axes along its cube edges) from
    ±``strain`` uniaxial along x, clamped ions: exact for lattices whose atoms need no internal
    relaxation under it (fcc, bcc, diamond)."""
    from ase.units import GPa

    stresses = []
    for sign in (1, -1):
        work = _with(crystal, calc)
        work.set_cell(crystal.cell @ np.diag([1 + sign * strain, 1, 1]), scale_atoms=True)
        stresses.append(work.get_stress() / GPa)
    c11, c12 = (stresses[0][:2] - stresses[1][:2]) / (2 * strain)
    return {"C11": float(c11), "C12": float(c12), "B": float((c11 + 2 * c12) / 3)}


def rigid_motion_energy_change(atoms: Atoms, calc: Calculator, seed: int = 0) -> float:
    """max |ΔE| (eV) under a random rotation of atoms and cell and a random translation."""
    rng = np.random.default_rng(seed)
    reference = _with(atoms, calc).get_potential_energy()
    rotation = Rotation.random(random_state=seed).as_matrix()
    moved = atoms.copy()
    moved.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    moved.positions = atoms.positions @ rotation.T + rng.normal(size=3)
    return float(abs(_with(moved, calc).get_potential_energy() - reference))


def nve_energy_drift(
    atoms: Atoms,
    calc: Calculator,
    steps: int = 100,
    timestep_fs: float = 1.0,
    temperature_K: float = 300.0,
    seed: int = 0,
) -> float:
    """max |E_total(t) − E_total(0)| per atom (eV/atom) over a velocity-Verlet NVE run, with
    velocities drawn from Maxwell–Boltzmann at ``temperature_K``. A conservative potential with
    a stable integrator keeps it small; a large value means non-conservative forces or a too
    long time step."""
    from ase import units
    from ase.md.velocitydistribution import Stationary, thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    work = _with(atoms, calc)
    thermalize_momenta(work, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    Stationary(work)
    start = work.get_potential_energy() + work.get_kinetic_energy()
    drift = 0.0
    dyn = VelocityVerlet(work, timestep=timestep_fs * units.fs)
    for _ in range(steps):
        dyn.run(1)
        total = work.get_potential_energy() + work.get_kinetic_energy()
        drift = max(drift, abs(total - start))
    return drift / len(work)
