"""Labelled structures for interatomic potentials: read, check labels, filter, split, E0s.

Every source (extxyz file or folder, ASE database, JARVIS dft_3d) becomes a list of
``ase.Atoms`` whose labels sit under our own keys (``REF_energy`` in ``info``, ``REF_forces`` in
``arrays``, ``REF_stress`` in ``info``, ASE sign convention, eV/Å³). Writing them under keys no
calculator uses means MACE can never silently read a different (or no) label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from ase.units import GPa

from matbrain.common.files import atomic_path

log = logging.getLogger(__name__)

ENERGY_KEY = "REF_energy"
FORCES_KEY = "REF_forces"
STRESS_KEY = "REF_stress"
ISOLATED_ATOM = "IsolatedAtom"
EXTXYZ_SUFFIXES = (".xyz", ".extxyz", ".xyz.gz", ".extxyz.gz")
JARVIS_SOURCES = ("jarvis", "bundled-jarvis", "dft_3d", "dft_3d_2021")


class LabelError(ValueError):
    """The data lacks labels that the requested fit needs, or they are not finite."""


@dataclass(frozen=True)
class LabelKeys:
    """Where the labels are in the user's files (looked up in calculator results, info, arrays)."""

    energy: str = "energy"
    forces: str = "forces"
    stress: str = "stress"


@dataclass
class LabelCounts:
    frames: int = 0
    energy: int = 0
    forces: int = 0
    stress: int = 0
    isolated_atoms: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def describe(self) -> str:
        return (
            f"{self.frames} structures: {self.energy} energies, {self.forces} force sets, "
            f"{self.stress} stresses, {self.isolated_atoms} isolated atoms"
        )


@dataclass
class PreparedSplit:
    train: list[Atoms]
    valid: list[Atoms]
    test: list[Atoms]
    isolated: list[Atoms] = field(default_factory=list)
    dropped_by_element: int = 0

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def _lookup(atoms: Atoms, key: str) -> Any:
    results = getattr(atoms.calc, "results", None) or {}
    if key in results:
        return results[key]
    if key in atoms.info:
        return atoms.info[key]
    if key in atoms.arrays:
        return atoms.arrays[key]
    return None


# mlearn's sets list the shear components of ``virial_stress`` in two orders: Li and Si as VASP's
# OUTCAR does (xy yz zx), Cu and Ni as xy xz yz. Measured on their sheared training cells: Cu and
# Ni against EMT, all four against linear ACE fitted without stresses; the other order misses by
# 6-8 GPa per shear component where the right one is within 0.04-1.3 GPa. (Ge and Mo, the other
# two mlearn elements, are not measured: they get the Cu/Ni order.)
MLEARN_VASP_SHEAR_ORDER = frozenset({"Li", "Si"})


def mlearn_stress_to_ase(atoms: Atoms) -> np.ndarray:
    """mlearn's ``virial_stress`` of ``atoms`` (``info["stress_raw_6"]``: VASP kBar, xx yy zz and
    the shears in its set's order, compression positive) -> ASE 3x3 eV/Å³ (opposite sign)."""
    xx, yy, zz, xy, second, third = (
        -0.1 * GPa * float(v) for v in np.asarray(atoms.info["stress_raw_6"])
    )
    if set(atoms.get_chemical_symbols()) <= MLEARN_VASP_SHEAR_ORDER:
        yz, xz = second, third
    else:
        xz, yz = second, third
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def _as_3x3(stress: Any) -> np.ndarray:
    s = np.asarray(stress, dtype=float)
    if s.shape == (3, 3):
        return s
    if s.size == 9:
        return s.reshape(3, 3)
    if s.size == 6:  # ASE Voigt order xx yy zz yz xz xy
        xx, yy, zz, yz, xz, xy = s
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise LabelError(f"stress with {s.size} components (need 6 or 9)")


def normalise_frame(atoms: Atoms, keys: LabelKeys = LabelKeys(), name: str = "") -> Atoms:
    """A label-only copy of ``atoms`` with its labels under the REF_* keys (missing ones left out)."""
    out = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    for k in ("config_type", "jid", "id", "split", "source", "db_id"):
        if k in atoms.info:
            out.info[k] = atoms.info[k]
    if name:
        out.info.setdefault("source", name)
    energy = _lookup(atoms, keys.energy)
    forces = _lookup(atoms, keys.forces)
    stress = _lookup(atoms, keys.stress)
    if stress is None and "stress_raw_6" in atoms.info:
        stress = mlearn_stress_to_ase(atoms)
    if energy is not None:
        energy = float(np.asarray(energy).reshape(()))
        if not np.isfinite(energy):
            raise LabelError(f"{name or atoms.get_chemical_formula()}: energy is {energy}")
        out.info[ENERGY_KEY] = energy
    if forces is not None:
        forces = np.asarray(forces, dtype=float)
        if forces.shape != (len(atoms), 3):
            raise LabelError(
                f"{name}: forces of shape {forces.shape} for {len(atoms)} atoms (need ({len(atoms)}, 3))"
            )
        if not np.isfinite(forces).all():
            raise LabelError(f"{name or atoms.get_chemical_formula()}: forces contain NaN or inf")
        out.arrays[FORCES_KEY] = forces
    if stress is not None:
        stress3 = _as_3x3(stress)
        if not np.isfinite(stress3).all():
            raise LabelError(f"{name or atoms.get_chemical_formula()}: stress contains NaN or inf")
        out.info[STRESS_KEY] = stress3
    if is_isolated_atom(out):
        out.info["config_type"] = ISOLATED_ATOM
    return out


def is_isolated_atom(atoms: Atoms) -> bool:
    return len(atoms) == 1 and (
        atoms.info.get("config_type") == ISOLATED_ATOM or not atoms.pbc.any()
    )


def _extxyz_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(EXTXYZ_SUFFIXES))


def _read_ase_db(url: str) -> list[tuple[Atoms, str]]:
    import ase.db

    frames = []
    with ase.db.connect(url) as db:
        for row in db.select():
            status = row.get("status")
            if status is not None and status != "completed":
                continue
            atoms = row.toatoms(add_additional_information=True)
            atoms.info.update(row.get("key_value_pairs", {}))
            atoms.info["db_id"] = row.id
            frames.append((atoms, f"{url}#{row.id}"))
    return frames


def _read_jarvis(source: str) -> list[tuple[Atoms, str]]:
    from matbrain.data.jarvis import BUNDLED, load_jarvis_records
    from matbrain.data.structures import jarvis_atoms_to_ase

    src = BUNDLED if source in ("jarvis", "bundled-jarvis") else source
    frames = []
    for rec in load_jarvis_records(src):
        e = rec.get("optb88vdw_total_energy")
        if not isinstance(e, (int, float)) or not np.isfinite(e):
            continue
        atoms = jarvis_atoms_to_ase(rec["atoms"])
        atoms.info["energy"] = float(e) * len(atoms)  # dft_3d stores eV/atom
        atoms.info["jid"] = rec.get("jid", "")
        frames.append((atoms, str(rec.get("jid", ""))))
    return frames


def read_labelled(source: str | Path, keys: LabelKeys = LabelKeys()) -> list[Atoms]:
    """Read labelled structures from an extxyz file or folder, an ASE database or JARVIS dft_3d.

    ``source``: path to ``.xyz/.extxyz[.gz]`` (or any file ASE reads), a folder of extxyz files,
    an ASE database (``.db`` file or ``postgresql://`` URL), or ``jarvis`` (bundled dft_3d
    subset), ``dft_3d`` (online, jarvis-tools) or a dft_3d ``.json`` file (energies only).
    """
    import ase.io

    text = str(source)
    raw: list[tuple[Atoms, str]]
    if text in JARVIS_SOURCES or text.endswith((".json", ".json.gz", ".json.zip")):
        raw = _read_jarvis(text)
    elif text.startswith(("postgresql://", "postgres://")):
        raw = _read_ase_db(text)
    else:
        path = Path(text)
        if not path.exists():
            raise FileNotFoundError(
                f"data not found: {source} (give an extxyz file or folder, an ASE .db, a "
                "postgresql:// URL, or 'jarvis' / 'dft_3d' / a dft_3d .json)"
            )
        if path.is_dir():
            files = _extxyz_files(path)
            if not files:
                raise FileNotFoundError(f"{path}: no {', '.join(EXTXYZ_SUFFIXES)} files in folder")
        else:
            files = [path]
        raw = []
        for f in files:
            if f.suffix == ".db":
                raw.extend(_read_ase_db(str(f)))
                continue
            try:
                images = ase.io.read(f, ":")
            except Exception as exc:  # ASE raises many types for malformed files
                raise ValueError(f"{f}: cannot read structures ({exc})") from exc
            raw.extend((a, f"{f.name}#{i}") for i, a in enumerate(images))
    if not raw:
        raise ValueError(f"{source}: no structures found")
    return [normalise_frame(a, keys, name) for a, name in raw]


def count_labels(frames: list[Atoms]) -> LabelCounts:
    c = LabelCounts(frames=len(frames))
    for a in frames:
        c.energy += ENERGY_KEY in a.info
        c.forces += FORCES_KEY in a.arrays
        c.stress += STRESS_KEY in a.info
        c.isolated_atoms += a.info.get("config_type") == ISOLATED_ATOM
    return c


def check_labels(frames: list[Atoms], with_forces: bool, with_stress: bool) -> LabelCounts:
    """Refuse a fit that would silently train on missing labels; return the counts."""
    counts = count_labels(frames)
    n = counts.frames - counts.isolated_atoms
    if counts.energy < counts.frames:
        raise LabelError(
            f"{counts.frames - counts.energy} of {counts.frames} structures have no energy "
            "(check --energy-key; found: " + counts.describe() + ")"
        )
    if with_forces and counts.forces < counts.frames:
        raise LabelError(
            f"--with-forces: only {counts.forces} of {counts.frames} structures have forces "
            "(check --forces-key, or train without --with-forces)"
        )
    if with_stress and counts.stress < n:
        raise LabelError(
            f"--with-stress: only {counts.stress} of {n} periodic structures have a stress "
            "(check --stress-key, or train without --with-stress)"
        )
    return counts


def parse_elements(elements: list[str] | None) -> list[str] | None:
    if not elements:
        return None
    bad = [e for e in elements if e not in atomic_numbers]
    if bad:
        raise ValueError(f"unknown element symbol(s): {', '.join(bad)}")
    return sorted(set(elements), key=lambda s: atomic_numbers[s])


def filter_elements(frames: list[Atoms], elements: list[str] | None) -> tuple[list[Atoms], int]:
    """Keep structures made only of ``elements``; return them and the number dropped."""
    if not elements:
        return frames, 0
    allowed = {atomic_numbers[e] for e in elements}
    kept = [a for a in frames if set(a.numbers) <= allowed]
    return kept, len(frames) - len(kept)


def split_sizes(n: int, valid_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Train/valid/test sizes with at least one validation structure once there are 3 or more."""
    if n < 2:
        raise ValueError(f"need at least 2 structures to train a potential, got {n}")
    n_test = int(round(n * test_fraction))
    n_valid = max(1, int(round(n * valid_fraction)))
    if n - n_test - n_valid < 1:
        n_test = max(0, n - n_valid - 1)
    return n - n_valid - n_test, n_valid, n_test


def split_frames(
    frames: list[Atoms],
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    elements: list[str] | None = None,
    max_structures: int | None = None,
) -> PreparedSplit:
    """Element filter, isolated atoms set aside, then a fixed-seed train/valid/test split.

    Frames that already carry ``split=test`` (as in mlearn) are kept in the test set so that
    published splits stay intact; the rest is split at random. ``max_structures`` first draws a
    fixed-seed random subset (quick looks at a large set).
    """
    kept, dropped = filter_elements(frames, elements)
    isolated = [a for a in kept if a.info.get("config_type") == ISOLATED_ATOM]
    rest = [a for a in kept if a.info.get("config_type") != ISOLATED_ATOM]
    rng = np.random.default_rng(seed)
    if max_structures is not None and len(rest) > max_structures:
        pick = np.sort(rng.choice(len(rest), size=max_structures, replace=False))
        rest = [rest[i] for i in pick]
    fixed_test = [a for a in rest if a.info.get("split") == "test"]
    pool = [a for a in rest if a.info.get("split") != "test"]
    order = rng.permutation(len(pool))
    n_train, n_valid, n_test = split_sizes(
        len(pool), valid_fraction, 0.0 if fixed_test else test_fraction
    )
    train = [pool[i] for i in order[:n_train]]
    valid = [pool[i] for i in order[n_train : n_train + n_valid]]
    test = fixed_test + [pool[i] for i in order[n_train + n_valid :]]
    return PreparedSplit(train, valid, test, isolated, dropped)


def energy_and_forces(atoms: Atoms) -> tuple[float, np.ndarray]:
    """A labelled frame's energy (eV) and forces (eV/Å): our keys, else its calculator's results."""
    if ENERGY_KEY in atoms.info and FORCES_KEY in atoms.arrays:
        return float(atoms.info[ENERGY_KEY]), np.asarray(atoms.arrays[FORCES_KEY], dtype=float)
    return float(atoms.get_potential_energy()), np.asarray(atoms.get_forces(), dtype=float)


def fit_e0s(frames: list[Atoms], isolated: list[Atoms] | None = None) -> dict[str, float]:
    """Isolated-atom energies (eV): from isolated-atom frames where given, else mace-torch's
    average E0s (least squares of ``E_total ≈ Σ_Z n_Z E0_Z`` over the training structures),
    with elements that have an isolated-atom frame held at that value."""
    from mace.data.utils import Configuration, compute_average_E0s
    from mace.tools import AtomicNumberTable

    fixed: dict[int, float] = {}
    for a in isolated or []:
        if ENERGY_KEY in a.info:
            fixed[int(a.numbers[0])] = float(a.info[ENERGY_KEY])
    zs = sorted({int(z) for a in frames for z in a.numbers})
    free = [z for z in zs if z not in fixed]
    e0 = dict(fixed)
    if free:
        labelled = [a for a in frames if ENERGY_KEY in a.info]
        if not labelled:
            raise LabelError("cannot fit E0s: no structure has an energy")
        configs = [
            Configuration(
                atomic_numbers=a.numbers,
                positions=a.positions,
                properties={
                    # what the fixed elements leave for the others to explain
                    "energy": a.info[ENERGY_KEY] - sum(fixed.get(int(z), 0.0) for z in a.numbers)
                },
                property_weights={},
            )
            for a in labelled
        ]
        # a structure made only of fixed elements has nothing left to fit
        configs = [c for c in configs if any(int(z) in free for z in c.atomic_numbers)]
        average = compute_average_E0s(configs, AtomicNumberTable(free))
        e0.update({z: float(average[z]) for z in free})
    return {chemical_symbols[z]: e0[z] for z in sorted(e0)}


def write_extxyz(frames: list[Atoms], path: Path) -> None:
    import ase.io

    with atomic_path(path) as tmp:
        ase.io.write(tmp, frames, format="extxyz")
