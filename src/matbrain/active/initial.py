"""The initial set: rattled, strained and (optionally) vacancy variants of seed structures.

Seeds are structure files (CIF, POSCAR, extxyz) or JARVIS ids (``JVASP-1002``: looked up in the
bundled dft_3d subset, else in the full dft_3d set through jarvis-tools when online).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from pydantic import BaseModel, ConfigDict, Field, field_validator

from matbrain.active.store import LabelStore


class InitialSetConfig(BaseModel):
    """How the initial set is made from the seeds (also the ``initial`` block of the loop's YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    supercell: tuple[int, int, int] = (1, 1, 1)
    n_rattled: int = Field(8, ge=0)
    rattle_std_A: float = Field(0.05, ge=0)
    volumetric_strains: tuple[float, ...] = (-0.03, -0.015, 0.015, 0.03)  # linear strain
    n_random_strains: int = Field(4, ge=0)
    max_shear_strain: float = Field(0.03, ge=0)
    vacancies: bool = False
    seed: int = 0

    @field_validator("supercell")
    @classmethod
    def _positive_repeats(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(v) < 1:
            raise ValueError("supercell repeats must be at least 1")
        return v


def read_seeds(specs: list[str]) -> list[tuple[str, Atoms]]:
    """Structure files or JARVIS ids -> ``(name, atoms)``."""
    from matbrain.data.structures import read_structure

    seeds = []
    for spec in specs:
        if spec.upper().startswith("JVASP-"):
            seeds.append((spec, _jarvis_structure(spec)))
        else:
            seeds.append((Path(spec).name, read_structure(spec)))
    if not seeds:
        raise ValueError("give at least one seed structure (a file or a JARVIS id)")
    return seeds


def _jarvis_structure(jid: str) -> Atoms:
    from matbrain.data.jarvis import BUNDLED, load_jarvis_records
    from matbrain.data.structures import jarvis_atoms_to_ase

    for source in (BUNDLED, "dft_3d"):
        try:
            records = load_jarvis_records(source)
        except Exception:  # the online set may be unreachable: the error below says so
            continue
        for rec in records:
            if rec.get("jid", "").upper() == jid.upper():
                return jarvis_atoms_to_ase(rec["atoms"])
    raise ValueError(f"{jid}: not in the bundled JARVIS subset, and dft_3d could not be searched")


def variants(
    atoms: Atoms, cfg: InitialSetConfig, rng: np.random.Generator
) -> list[tuple[str, Atoms]]:
    """``(config_type, atoms)`` pairs: the seed, rattled, strained, vacancy variants."""
    base = atoms.repeat(cfg.supercell)
    out: list[tuple[str, Atoms]] = [("initial", base.copy())]
    for _ in range(cfg.n_rattled):
        a = base.copy()
        a.positions += rng.normal(scale=cfg.rattle_std_A, size=a.positions.shape)
        out.append(("rattled", a))
    for eps in cfg.volumetric_strains:
        a = base.copy()
        a.set_cell(a.cell.array * (1.0 + eps), scale_atoms=True)
        out.append(("strained", a))
    for _ in range(cfg.n_random_strains):
        e = rng.uniform(-cfg.max_shear_strain, cfg.max_shear_strain, size=(3, 3))
        a = base.copy()
        a.set_cell(a.cell.array @ (np.eye(3) + (e + e.T) / 2), scale_atoms=True)
        a.positions += rng.normal(scale=cfg.rattle_std_A / 2, size=a.positions.shape)
        out.append(("strained", a))
    if cfg.vacancies and len(base) > 1:
        for index in sorted(
            {int(i) for i in rng.choice(len(base), size=min(2, len(base)), replace=False)}
        ):
            a = base.copy()
            del a[index]
            out.append(("vacancy", a))
    return out


@dataclass
class InitialSetReport:
    added: int = 0
    duplicates: int = 0


def add_initial_set(
    store: LabelStore, seeds: list[tuple[str, Atoms]], cfg: InitialSetConfig, generation: int = 0
) -> InitialSetReport:
    """Write the variants of every seed to the store as pending (duplicates are skipped)."""
    rng = np.random.default_rng(cfg.seed)
    report = InitialSetReport()
    for name, atoms in seeds:
        for config_type, variant in variants(atoms, cfg, rng):
            row = store.add(variant, generation=generation, config_type=config_type, source=name)
            if row is None:
                report.duplicates += 1
            else:
                report.added += 1
    return report
