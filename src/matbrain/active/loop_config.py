"""The loop's settings: ``al.yaml`` read into one frozen, validated config, and its example."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from matbrain.active.initial import InitialSetConfig
from matbrain.active.sampling import SamplingConfig
from matbrain.active.selection import SelectionConfig
from matbrain.potentials.ace.config import AceTrainingConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InitialSettings(InitialSetConfig):
    """The ``initial`` block: the seeds and how the initial set is made from them."""

    seeds: list[str] = Field(min_length=1, description="structure files or JARVIS ids")

    def config(self) -> InitialSetConfig:
        return InitialSetConfig(**self.model_dump(exclude={"seeds"}))


class OracleSettings(_Strict):
    name: str = "gpaw"
    settings: dict[str, Any] = Field(default_factory=dict)
    workers: int = Field(1, ge=1)
    executor: Literal["local", "dask", "slurm", "pbs"] = "local"
    scheduler: str | None = Field(None, description="dask: tcp://host:port of a running scheduler")


class MaceCommittee(_Strict):
    """MACE models fine-tuned from one base model with different seeds on the labelled set."""

    base_model: str = Field(description="a MACE .model file, a run folder, or MACE-MP-0[:size]")
    members: int = Field(3, ge=2)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(4, ge=1)
    lr: float = Field(0.01, gt=0)
    dtype: Literal["float32", "float64"] = "float32"


class Targets(_Strict):
    force_rmse_eV_per_A: float | None = Field(None, gt=0)
    extrapolative_share: float | None = Field(None, ge=0, le=1)


class LoopConfig(_Strict):
    db: str = "al.db"
    workdir: str = "al_run"
    generations: int = Field(
        2, ge=0, description="sample/select/label/fit rounds after generation 0"
    )
    initial: InitialSettings
    oracle: OracleSettings = Field(default_factory=OracleSettings)
    ace: AceTrainingConfig = Field(default_factory=AceTrainingConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    committee: list[str] = Field(
        default_factory=list, description="fixed potentials (files or names) as the committee"
    )
    mace_committee: MaceCommittee | None = Field(
        None, description="a MACE committee fine-tuned at every generation (instead of committee)"
    )
    surrogate: Literal["ace", "mace"] = Field(
        "ace", description="MD with the current ACE version, or with the first MACE member"
    )
    targets: Targets = Field(default_factory=Targets)


def load_loop_config(path: Path) -> LoopConfig:
    """Read ``al.yaml``; relative paths (db, workdir, seed files) are relative to its folder."""
    if not path.exists():
        raise FileNotFoundError(f"loop config not found: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    base = path.resolve().parent

    def local(p: str) -> str:
        return (
            p
            if p.startswith(("postgresql://", "postgres://")) or Path(p).is_absolute()
            else str(base / p)
        )

    for key in ("db", "workdir"):
        raw[key] = local(str(raw.get(key, LoopConfig.model_fields[key].default)))
    seeds = raw.get("initial", {}).get("seeds", [])
    raw.setdefault("initial", {})["seeds"] = [local(s) if (base / s).exists() else s for s in seeds]
    try:
        return LoopConfig(**raw)
    except ValidationError as exc:
        raise ValueError(f"{path}: {exc}") from exc


EXAMPLE_CONFIG = """\
# matbrain loop run --config al.yaml   (relative paths are relative to this file)
db: al.db
workdir: al_run
generations: 2
initial:
  seeds: [Si.cif]            # files (CIF, POSCAR, extxyz) or JARVIS ids such as JVASP-1002
  supercell: [1, 1, 1]
  n_rattled: 6
  n_random_strains: 2
oracle:
  name: gpaw                 # gpaw | espresso | cp2k | emt (tests only)
  settings: {cutoff_eV: 300, kpoint_density_per_A: 2.0}
  workers: 2
  executor: local            # local | dask (LocalCluster, or scheduler: tcp://host:8786) | slurm | pbs
ace:
  cutoff_A: 5.0
  functions_per_element: 50
  max_iter: 100
sampling:
  temperatures_K: [300, 1000]
  steps: 300
  sample_interval: 10
  trajectories_per_temperature: 1
selection:
  low: 1.5                   # γ window: label frames with 1.5 <= γ < 25
  high: 25
  budget: 6
  method: d-optimal          # d-optimal | farthest-point | random
targets:
  force_rmse_eV_per_A: 0.05
  extrapolative_share: 0.05
"""
