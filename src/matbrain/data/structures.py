"""Reading structures from files and JARVIS records into ``ase.Atoms``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar", ".xyz", ".extxyz")
STRUCTURE_NAMES = ("POSCAR", "CONTCAR")


class StructureReadError(ValueError):
    """A structure file could not be read; the message names the file and the reason."""


def is_structure_file(path: Path) -> bool:
    return path.is_file() and (
        path.suffix.lower() in STRUCTURE_SUFFIXES or path.name.split(".")[0] in STRUCTURE_NAMES
    )


def read_structure(path: str | Path) -> Atoms:
    """Read one periodic structure (CIF, POSCAR, extxyz) with ASE.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    StructureReadError
        If the file exists but holds no readable periodic structure.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"structure file not found: {path}")
    fmt = "vasp" if path.name.split(".")[0] in STRUCTURE_NAMES or path.suffix == ".poscar" else None
    with open(path, "rb") as fh:
        if b"\x00" in fh.read(4096):
            raise StructureReadError(f"{path}: a binary file, not a text structure file")
    try:
        from ase.io import read

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = read(path, format=fmt, index=0)
    except Exception as exc:  # ASE raises many types for malformed files
        raise StructureReadError(f"{path}: could not read a structure ({_reason(exc)})") from exc
    assert isinstance(atoms, Atoms)  # index=0 reads one structure
    if len(atoms) == 0:
        raise StructureReadError(f"{path}: the file holds no atoms")
    partial = _partially_occupied(atoms)
    if partial:
        raise StructureReadError(
            f"{path}: partially occupied sites ({partial}); matbrain's models are for ordered "
            "crystals: order the structure first (e.g. a supercell with pymatgen's "
            "OrderDisorderedStructureTransformation) and predict that"
        )
    if not atoms.pbc.all() or atoms.cell.rank < 3:
        raise StructureReadError(f"{path}: not a periodic 3D crystal (needs a full cell)")
    return atoms


def _reason(exc: Exception) -> str:
    """What went wrong, also when the parser's exception says nothing (``StopIteration: ``)."""
    text = str(exc).strip()
    if isinstance(exc, StopIteration | EOFError | IndexError):  # the parser ran out of lines
        detail = f"; parser: {type(exc).__name__}: {text}" if text else ""
        return f"the file ends before the structure is complete: truncated?{detail}"
    if not text:
        return f"not a valid structure file ({type(exc).__name__} in the parser)"
    return f"{type(exc).__name__}: {text}"


def _partially_occupied(atoms: Atoms) -> str:
    """Sites with an occupancy below 1 as ASE's CIF reader records them, e.g. ``Fe 0.5``."""
    occupancy = atoms.info.get("occupancy") or {}
    sites = []
    for species in occupancy.values():
        for symbol, occ in dict(species).items():
            if float(occ) < 0.999:
                sites.append(f"{symbol} {float(occ):g}")
    return ", ".join(sorted(set(sites))[:5])


def jarvis_atoms_to_ase(record: dict[str, Any]) -> Atoms:
    """Convert the ``atoms`` dict of a JARVIS record (``lattice_mat``, ``coords``, ``elements``)."""
    cell = np.asarray(record["lattice_mat"], dtype=float)
    coords = np.asarray(record["coords"], dtype=float)
    if record.get("cartesian", False):
        return Atoms(symbols=record["elements"], positions=coords, cell=cell, pbc=True)
    return Atoms(symbols=record["elements"], scaled_positions=coords, cell=cell, pbc=True)
