"""Per-element reference energies (E0s) of ACE potentials: the frame of the fitted DFT energies.

pacemaker fits energies minus per-element reference energies and records them only in the
``.yaml`` metadata (``reference_energy``); ``pace_yaml2yace`` writes ``E0: [0, ...]``, so a
``.yace`` evaluated by ``PyACECalculator`` is off by E0 per atom. We write the E0s into the
``.yace`` (its own ``E0`` list, one value per element in its ``elements`` order), which every
ACE evaluator (pyace, LAMMPS ML-PACE) adds to the energy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from matbrain.common.files import atomic_write_text

_ELEMENTS = re.compile(r"^elements:\s*\[(.*)\]\s*$", re.MULTILINE)
_E0 = re.compile(r"^E0:\s*\[(.*)\]\s*$", re.MULTILINE)


def _yace_line(pattern: re.Pattern[str], text: str, yace: Path) -> str:
    found = pattern.search(text)
    if found is None:
        raise ValueError(f"{yace}: no 'elements:' and 'E0:' lines; not a .yace potential")
    return found.group(1)


def set_yace_reference_energies(yace: Path, e0s: dict[str, float]) -> None:
    """Write ``e0s`` (eV per element symbol) into the ``E0`` list of a ``.yace`` file."""
    text = yace.read_text()
    elements = [e.strip() for e in _yace_line(_ELEMENTS, text, yace).split(",") if e.strip()]
    _yace_line(_E0, text, yace)
    missing = [e for e in elements if e not in e0s]
    if missing:
        raise ValueError(f"{yace}: no reference energy for {', '.join(missing)}")
    values = ", ".join(repr(float(e0s[e])) for e in elements)
    atomic_write_text(yace, _E0.sub(f"E0: [{values}]", text, count=1))


def yace_reference_energies(yace: Path) -> dict[str, float]:
    text = yace.read_text()
    elements = [e.strip() for e in _yace_line(_ELEMENTS, text, yace).split(",")]
    values = [float(v) for v in _yace_line(_E0, text, yace).split(",")]
    return dict(zip(elements, values, strict=True))


def pacemaker_reference_energies(potential_yaml: Path) -> dict[str, float]:
    """E0 per element that pacemaker subtracted before fitting (from the ``.yaml`` metadata).

    pacemaker's ``auto`` mode stores ``{element: e, ..., "shift": s}`` and fits
    ``E - Σ e_el + s·N``, so an element's E0 is ``e_el - s``; an explicit mapping has no shift.
    """
    loaded = yaml.safe_load(potential_yaml.read_text()) or {}
    raw = (loaded.get("metadata") or {}).get("reference_energy")
    if raw is None:
        return {}
    table = json.loads(raw) if isinstance(raw, str) else dict(raw)
    shift = float(table.pop("shift", 0.0))
    return {el: float(e) - shift for el, e in table.items()}
