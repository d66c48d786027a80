"""The "DFT" step: a registry of ASE-calculator oracles with typed settings.

``gpaw`` (plane waves, PBE; the default), ``espresso`` (pw.x), ``cp2k`` (cp2k_shell), ``emt`` (a fast stand-in for
tests only; it refuses elements it has no parameters for). Settings are pydantic models with
units in their names; an oracle records its name, version and settings with every label.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from pydantic import BaseModel, ConfigDict, Field

from matbrain.active.store import Labels

# What the oracles return: anything with ASE's calculator interface (GPAW's ASECalculator does not
# derive from ase.calculators.calculator.BaseCalculator, so no one base class names them all).
AseCalculator = Any

EMT_ELEMENTS = ("H", "C", "N", "O", "Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au")


class OracleError(RuntimeError):
    """A labelling calculation failed (not converged, program crashed, unsupported element)."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmtSettings(_Settings):
    pass


class GpawSettings(_Settings):
    xc: str = "PBE"
    cutoff_eV: float = Field(
        400.0, gt=0, description="plane-wave cutoff (≥ 600 eV for stress of ionic oxides)"
    )
    kpoint_density_per_A: float = Field(3.0, gt=0, description="k-points per Å⁻¹ (ASE kptdensity)")
    smearing_eV: float = Field(0.1, ge=0, description="Fermi-Dirac width")
    spin_polarized: bool = False
    max_scf_iterations: int = Field(200, ge=1)
    txt: str | None = None


class EspressoSettings(_Settings):
    pseudo_dir: str = Field("/usr/share/espresso/pseudo", description="folder of .UPF files")
    pseudopotentials: dict[str, str] = Field(
        default_factory=dict, description="element -> UPF file"
    )
    ecutwfc_Ry: float = Field(40.0, gt=0)
    kpoint_density_per_A: float = Field(3.0, gt=0)
    smearing_Ry: float = Field(0.01, ge=0)
    spin_polarized: bool = False
    command: str = "pw.x"


def _kpts(atoms: Atoms, density: float) -> list[int]:
    from ase.calculators.calculator import kptdensity2monkhorstpack

    return [int(k) for k in kptdensity2monkhorstpack(atoms, kptdensity=density, even=False)]


def _emt(atoms: Atoms, s: EmtSettings, workdir: Path) -> AseCalculator:
    from ase.calculators.emt import EMT

    unknown = sorted(set(atoms.get_chemical_symbols()) - set(EMT_ELEMENTS))
    if unknown:
        raise OracleError(
            f"EMT has no parameters for {', '.join(unknown)} (knows {', '.join(EMT_ELEMENTS)})"
        )
    return EMT()


def _gpaw(atoms: Atoms, s: GpawSettings, workdir: Path) -> AseCalculator:
    try:
        from gpaw import GPAW, PW, FermiDirac
    except ImportError as exc:
        raise ImportError(
            "the gpaw oracle needs GPAW, which scripts/setup.sh builds when libxc-dev and "
            "libopenblas-dev can be installed: install them, then run "
            "bash scripts/install-gpaw.sh .venv"
        ) from exc
    return GPAW(
        mode=PW(s.cutoff_eV),
        xc=s.xc,
        kpts=_kpts(atoms, s.kpoint_density_per_A),
        occupations=FermiDirac(s.smearing_eV),
        spinpol=s.spin_polarized,
        maxiter=s.max_scf_iterations,
        txt=s.txt or str(workdir / "gpaw.txt"),
        symmetry="off",
    )


def _espresso(atoms: Atoms, s: EspressoSettings, workdir: Path) -> AseCalculator:
    from ase.calculators.espresso import Espresso, EspressoProfile

    missing = sorted(set(atoms.get_chemical_symbols()) - set(s.pseudopotentials))
    if missing:
        raise OracleError(f"no pseudopotential for {', '.join(missing)} in the espresso settings")
    data = {
        "control": {"tprnfor": True, "tstress": True},
        "system": {"ecutwfc": s.ecutwfc_Ry, "occupations": "smearing", "degauss": s.smearing_Ry,
                   "nspin": 2 if s.spin_polarized else 1},
    }  # fmt: skip
    return Espresso(
        profile=EspressoProfile(command=s.command, pseudo_dir=s.pseudo_dir),
        directory=str(workdir),
        input_data=data,
        pseudopotentials=s.pseudopotentials,
        kpts=_kpts(atoms, s.kpoint_density_per_A),
    )


class Cp2kSettings(_Settings):
    xc: str = "PBE"
    cutoff_Ry: float = Field(400.0, gt=0, description="plane-wave cutoff of the density grid")
    basis_set: str = "DZVP-MOLOPT-SR-GTH"
    pseudo_potential: str = "GTH-PBE"
    kpoint_density_per_A: float = Field(3.0, gt=0)
    smearing_K: float = Field(1000.0, ge=0, description="Fermi-Dirac electronic temperature")
    max_scf_iterations: int = Field(200, ge=1)
    command: str = "cp2k_shell"


def _cp2k(atoms: Atoms, s: Cp2kSettings, workdir: Path) -> AseCalculator:
    from ase.calculators.cp2k import CP2K

    kx, ky, kz = _kpts(atoms, s.kpoint_density_per_A)
    inp = f"""&FORCE_EVAL
  &DFT
    &KPOINTS
      SCHEME MONKHORST-PACK {kx} {ky} {kz}
    &END KPOINTS
    &SCF
      ADDED_MOS 20
      &SMEAR ON
        METHOD FERMI_DIRAC
        ELECTRONIC_TEMPERATURE [K] {s.smearing_K}
      &END SMEAR
    &END SCF
  &END DFT
&END FORCE_EVAL"""
    return CP2K(
        command=s.command,
        directory=str(workdir),
        xc=s.xc,
        cutoff=s.cutoff_Ry * units.Rydberg,  # ASE takes eV
        basis_set=s.basis_set,
        pseudo_potential=s.pseudo_potential,
        max_scf=s.max_scf_iterations,
        inp=inp,
        stress_tensor=bool(atoms.pbc.all()),
    )


@dataclass(frozen=True)
class _Entry:
    settings: type[_Settings]
    build: Callable[[Atoms, Any, Path], AseCalculator]
    package: str


ORACLES: dict[str, _Entry] = {
    "gpaw": _Entry(GpawSettings, _gpaw, "gpaw"),
    "espresso": _Entry(EspressoSettings, _espresso, "ase"),
    "cp2k": _Entry(Cp2kSettings, _cp2k, "ase"),
    "emt": _Entry(EmtSettings, _emt, "ase"),
}


@dataclass(frozen=True)
class Oracle:
    name: str
    settings: _Settings

    @property
    def version(self) -> str:
        try:
            return metadata.version(ORACLES[self.name].package)
        except metadata.PackageNotFoundError:
            return "unknown"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "settings": self.settings.model_dump()}

    def label(self, atoms: Atoms) -> Labels:
        """Energy, forces and (for periodic cells) stress; :class:`OracleError` on any failure."""
        with tempfile.TemporaryDirectory(prefix=f"matbrain-{self.name}-") as tmp:
            work = atoms.copy()
            work.calc = ORACLES[self.name].build(work, self.settings, Path(tmp))
            try:
                energy = float(work.get_potential_energy())
                forces = np.asarray(work.get_forces())
                stress = np.asarray(work.get_stress()) if work.pbc.all() else None
            except OracleError:
                raise
            except Exception as exc:  # SCF not converged, program crashed, ...
                raise OracleError(f"{self.name} failed: {type(exc).__name__}: {exc}") from exc
        labels = Labels(energy, forces, stress)
        try:
            labels.check(len(atoms))
        except ValueError as exc:
            raise OracleError(f"{self.name} returned bad labels: {exc}") from exc
        return labels


def make_oracle(name: str, settings: dict[str, Any] | None = None) -> Oracle:
    if name not in ORACLES:
        raise ValueError(f"unknown oracle {name!r}; valid: {', '.join(ORACLES)}")
    return Oracle(name, ORACLES[name].settings(**(settings or {})))
