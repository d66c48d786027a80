"""Molecular dynamics for sampling, guarded against exploding simulations.

NVT with ASE's Langevin thermostat, NPT (``pressure_bar`` set) with the isotropic MTK
Nosé–Hoover chain integrator. Every step is checked by :class:`Guards`: NaN anywhere, atoms
closer than a minimum distance, a force above a ceiling, a temperature above a ceiling, an
energy jump between steps, a volume change. A guard that trips stops that trajectory; the
reason is recorded, and frames sampled in the last ``discard_steps`` steps before the trip are
dropped with it (a blow-up builds up over several steps before any guard sees it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MdConfig:
    temperature_K: float = 300.0
    pressure_bar: float | None = None  # NPT when set
    steps: int = 1000
    timestep_fs: float = 1.0
    sample_interval: int = 10
    n_trajectories: int = 1
    friction_per_fs: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature_K <= 0 or self.timestep_fs <= 0:
            raise ValueError("temperature_K and timestep_fs must be positive")
        if self.steps < 1 or self.sample_interval < 1 or self.n_trajectories < 1:
            raise ValueError("steps, sample_interval and n_trajectories must be at least 1")


class Guards(BaseModel):
    """Limits that stop a trajectory before it explodes (also the ``sampling.guards`` block of
    the loop's YAML; every field can be set there)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_distance_A: float = Field(0.7, gt=0)
    max_force_eV_per_A: float = Field(30.0, gt=0)
    max_temperature_factor: float = Field(3.0, gt=0, description="ceiling = factor × target T")
    max_energy_jump_eV_per_atom: float = Field(0.5, gt=0)
    max_volume_change: float = Field(0.3, gt=0, description="relative to the start")
    discard_steps: int | None = Field(
        None,
        ge=0,
        description="frames this many steps before a trip are dropped (default: one "
        "sampling interval)",
    )


@dataclass
class Trajectory:
    frames: list[Atoms] = field(default_factory=list)
    steps_done: int = 0
    stopped_by: str | None = None  # the guard's reason, None when the run finished
    temperatures_K: list[float] = field(default_factory=list)

    @property
    def stable(self) -> bool:
        return self.stopped_by is None


class GuardTripped(RuntimeError):
    pass


class _Watch:
    """Checks every step; keeps what it needs to compare with the previous step."""

    def __init__(self, atoms: Atoms, guards: Guards, target_K: float) -> None:
        self.atoms = atoms
        self.guards = guards
        self.ceiling_K = guards.max_temperature_factor * target_K
        self.volume0 = atoms.get_volume() if atoms.pbc.all() else None
        self.previous_energy: float | None = None

    def check(self) -> float:
        """Raise :class:`GuardTripped` on a bad state; return the temperature (K)."""
        a, g = self.atoms, self.guards
        positions = a.get_positions()
        if not np.isfinite(positions).all():
            raise GuardTripped("NaN or inf in positions")
        energy = float(a.get_potential_energy())
        forces = a.get_forces()
        if not np.isfinite(energy) or not np.isfinite(forces).all():
            raise GuardTripped("NaN or inf in energy or forces")
        fmax = float(np.linalg.norm(forces, axis=1).max())
        if fmax > g.max_force_eV_per_A:
            raise GuardTripped(f"max force {fmax:.3g} eV/Å > {g.max_force_eV_per_A}")
        closest = _closest_pair(a, g.min_distance_A)
        if closest is not None:
            raise GuardTripped(f"atoms {closest:.3f} Å apart (< {g.min_distance_A} Å)")
        temperature = float(a.get_temperature())
        if temperature > self.ceiling_K:
            raise GuardTripped(f"temperature {temperature:.0f} K > ceiling {self.ceiling_K:.0f} K")
        per_atom = energy / len(a)
        if self.previous_energy is not None:
            jump = abs(per_atom - self.previous_energy)
            if jump > g.max_energy_jump_eV_per_atom:
                raise GuardTripped(f"energy jump {jump:.3g} eV/atom in one step")
        self.previous_energy = per_atom
        if self.volume0 is not None:
            change = abs(a.get_volume() / self.volume0 - 1.0)
            if change > g.max_volume_change:
                raise GuardTripped(f"volume changed by {100 * change:.0f}%")
        return temperature


def _closest_pair(atoms: Atoms, cutoff: float) -> float | None:
    """The shortest interatomic distance if it is below ``cutoff`` (vesin for periodic cells)."""
    if atoms.pbc.all():
        from matbrain.data.graphs import neighbor_pairs

        _, _, vectors = neighbor_pairs(atoms, cutoff)
        d = np.linalg.norm(vectors, axis=1)
    else:
        from ase.neighborlist import neighbor_list

        d = neighbor_list("d", atoms, cutoff)
    return float(d.min()) if len(d) else None


def _dynamics(atoms: Atoms, cfg: MdConfig, rng: np.random.Generator):
    dt = cfg.timestep_fs * units.fs
    if cfg.pressure_bar is None:
        from ase.constraints import FixCom
        from ase.md.langevin import Langevin

        # the centre of mass is held by a constraint (ASE's recommended form), so that
        # get_temperature() counts the 3N - 3 degrees of freedom that are thermalised
        atoms.set_constraint(FixCom())
        return Langevin(
            atoms,
            dt,
            temperature_K=cfg.temperature_K,
            friction=cfg.friction_per_fs / units.fs,
            fixcm=False,
            rng=rng,
        )
    from ase.md.nose_hoover_chain import IsotropicMTKNPT

    return IsotropicMTKNPT(
        atoms,
        dt,
        temperature_K=cfg.temperature_K,
        pressure_au=cfg.pressure_bar * units.bar,
        tdamp=100 * dt,
        pdamp=1000 * dt,
    )


def run_md(
    atoms: Atoms,
    calc: Calculator,
    cfg: MdConfig = MdConfig(),
    guards: Guards = Guards(),
    trajectory_index: int = 0,
) -> Trajectory:
    """One guarded trajectory from a copy of ``atoms``; sampled frames carry no calculator."""
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    rng = np.random.default_rng(cfg.seed + 1000 * trajectory_index)
    work = atoms.copy()
    work.calc = calc
    thermalize_momenta(work, cfg.temperature_K, rng=rng)
    Stationary(work)
    watch = _Watch(work, guards, cfg.temperature_K)
    result = Trajectory()
    sampled: list[tuple[int, Atoms]] = []
    dyn = _dynamics(work, cfg, rng)

    def observe() -> None:
        step = dyn.nsteps
        result.temperatures_K.append(watch.check())
        result.steps_done = step
        if step > 0 and step % cfg.sample_interval == 0:
            frame = Atoms(work.numbers, work.positions, cell=work.cell, pbc=work.pbc)
            frame.info.update(config_type="md", md_step=step, md_trajectory=trajectory_index,
                              md_temperature_K=cfg.temperature_K)  # fmt: skip
            sampled.append((step, frame))

    dyn.attach(observe, interval=1)
    try:
        dyn.run(cfg.steps)
    except GuardTripped as trip:
        result.stopped_by = str(trip)
        keep_before = dyn.nsteps - (guards.discard_steps or cfg.sample_interval)
        sampled = [(s, f) for s, f in sampled if s < keep_before]
        log.warning("trajectory %d stopped at step %d: %s", trajectory_index, dyn.nsteps, trip)
    result.frames = [f for _, f in sampled]
    return result


def sample_md(
    seeds: list[Atoms],
    calc_factory: Callable[[], Calculator],
    cfg: MdConfig = MdConfig(),
    guards: Guards = Guards(),
) -> list[Trajectory]:
    """``cfg.n_trajectories`` guarded trajectories, started round-robin from ``seeds``."""
    if not seeds:
        raise ValueError("no seed structures for MD")
    return [
        run_md(seeds[i % len(seeds)], calc_factory(), cfg, guards, trajectory_index=i)
        for i in range(cfg.n_trajectories)
    ]
