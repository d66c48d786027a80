"""MD sampling with a potential version: guarded trajectories at several temperatures -> a pool.

Trajectories run in worker processes (``workers``) or on a Dask cluster (``executor: dask``),
each loading the potential from its file, so the pool is the same whichever runs them. Every trajectory records whether a guard
stopped it and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field

from matbrain.common.executors import parallel_starmap
from matbrain.simulation.md import Guards, MdConfig, Trajectory, run_md

log = logging.getLogger(__name__)


class SamplingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperatures_K: list[float] = Field(default_factory=lambda: [300.0, 800.0], min_length=1)
    pressure_bar: float | None = Field(None, description="NPT when set, else NVT Langevin")
    steps: int = Field(500, ge=1)
    timestep_fs: float = Field(1.0, gt=0)
    sample_interval: int = Field(10, ge=1)
    trajectories_per_temperature: int = Field(2, ge=1)
    max_seeds: int = Field(4, ge=1, description="starting structures drawn from the labelled set")
    workers: int = Field(1, ge=1, description="trajectories run in parallel processes")
    executor: Literal["local", "dask", "slurm", "pbs"] = Field(
        "local",
        description="local processes, a Dask cluster (LocalCluster or scheduler), or Dask "
        "workers as SLURM/PBS jobs (dask-jobqueue)",
    )
    scheduler: str | None = Field(None, description="dask: tcp://host:port of a running scheduler")
    guards: Guards = Field(default_factory=Guards)


@dataclass
class SampledPool:
    frames: list[Atoms] = field(default_factory=list)
    trajectories: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_stable(self) -> int:
        return sum(1 for t in self.trajectories if t["stopped_by"] is None)


def _one(args: tuple[Atoms, str, MdConfig, Guards, int]) -> Trajectory:
    atoms, potential, cfg, guards, index = args
    from matbrain.potentials.calculators import load_potential

    return run_md(atoms, load_potential(potential).calc, cfg, guards, trajectory_index=index)


def sample_pool(
    potential: Path,
    seeds: list[Atoms],
    cfg: SamplingConfig,
    seed: int = 0,
    echo: Callable[[str], None] = log.info,
) -> SampledPool:
    """Run every trajectory with ``potential`` (an ACE ``.yace``, a MACE ``.model``, any name
    :func:`~matbrain.potentials.calculators.load_potential` knows)."""
    if not seeds:
        raise ValueError("no starting structures for MD sampling")
    jobs: list[tuple[Atoms, str, MdConfig, Any, int]] = []
    for t_index, temperature in enumerate(cfg.temperatures_K):
        md = MdConfig(temperature_K=temperature, pressure_bar=cfg.pressure_bar, steps=cfg.steps,
                      timestep_fs=cfg.timestep_fs, sample_interval=cfg.sample_interval,
                      seed=seed + 7919 * t_index)  # fmt: skip
        for k in range(cfg.trajectories_per_temperature):
            index = len(jobs)
            jobs.append((seeds[index % len(seeds)], str(potential), md, cfg.guards, k))
    results = parallel_starmap(_one, [(job,) for job in jobs], cfg.workers, cfg.executor,
                               cfg.scheduler, echo)  # fmt: skip
    out = SampledPool()
    for (atoms, _, md, _, k), traj in zip(jobs, results, strict=True):
        for frame in traj.frames:
            frame.info["md_seed_formula"] = atoms.get_chemical_formula()
        out.frames.extend(traj.frames)
        out.trajectories.append({
            "temperature_K": md.temperature_K, "trajectory": k, "steps_done": traj.steps_done,
            "steps": md.steps, "frames": len(traj.frames), "stopped_by": traj.stopped_by,
        })  # fmt: skip
    return out
