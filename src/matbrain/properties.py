"""The catalogue of the nine JARVIS-DFT 3D properties that matbrain predicts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Property:
    """One predictable crystal property.

    Attributes
    ----------
    name : short CLI name, e.g. ``formation_energy``
    key : the key of the property in JARVIS dft_3d records
    unit : unit of the values ("" for dimensionless)
    description : one line for humans
    non_negative : predictions are clipped at 0 (band gaps, |d_ij|, spillage, hull energy)
    """

    name: str
    key: str
    unit: str
    description: str
    non_negative: bool = False


PROPERTIES: tuple[Property, ...] = (
    Property(
        "formation_energy", "formation_energy_peratom", "eV/atom", "formation energy per atom"
    ),
    Property("band_gap", "optb88vdw_bandgap", "eV", "OptB88vdW band gap", non_negative=True),
    Property("mbj_gap", "mbj_bandgap", "eV", "TBmBJ band gap", non_negative=True),
    Property("bulk_modulus", "bulk_modulus_kv", "GPa", "Voigt bulk modulus Kv"),
    Property("shear_modulus", "shear_modulus_gv", "GPa", "Voigt shear modulus Gv"),
    Property("dielectric", "epsx", "", "dielectric constant (x, OptB88vdW, no ionic part)"),
    Property(
        "piezo_max_dij",
        "dfpt_piezo_max_dij",
        "pC/N",
        "max piezoelectric coefficient dij (DFPT)",
        non_negative=True,
    ),
    Property(
        "spillage", "spillage", "", "spin-orbit spillage (topological indicator)", non_negative=True
    ),
    Property("ehull", "ehull", "eV/atom", "energy above the convex hull", non_negative=True),
)

_BY_NAME = {p.name: p for p in PROPERTIES}
_BY_KEY = {p.key: p for p in PROPERTIES}


class UnknownPropertyError(ValueError):
    """Raised for a property name that is not in the catalogue."""


def get_property(name: str) -> Property:
    """Look a property up by short name or JARVIS key.

    >>> get_property("formation_energy").key
    'formation_energy_peratom'
    """
    prop = _BY_NAME.get(name) or _BY_KEY.get(name)
    if prop is None:
        valid = ", ".join(p.name for p in PROPERTIES)
        raise UnknownPropertyError(f"unknown property {name!r}; valid names: {valid}")
    return prop


def custom_property(name: str, unit: str, description: str | None = None) -> Property:
    """A user-defined target (e.g. ``K_VRH`` in GPa from a folder dataset's ``id_prop.csv``).

    A name of the catalogue keeps its catalogue meaning; a new name must be a plain identifier.
    """
    known = _BY_NAME.get(name) or _BY_KEY.get(name)
    if known is not None:
        return known
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"target name {name!r}: use letters, digits, '_' or '-' only")
    return Property(name, name, unit, description or f"user-defined target {name}")


def property_from_metadata(
    name: str, units: dict[str, str], descriptions: dict[str, str]
) -> Property:
    """The property of a saved model: the catalogue entry, or the user's target it was trained on."""
    if name in _BY_NAME or name in _BY_KEY:
        return get_property(name)
    return custom_property(name, units.get(name, ""), descriptions.get(name))


def resolve_properties(names: Iterable[str] | None) -> list[Property]:
    """Resolve names (or ``None``/empty for all nine) to catalogue entries, keeping order."""
    if names is None:
        return list(PROPERTIES)
    names = list(names)
    if not names or names == ["all"]:
        return list(PROPERTIES)
    props = [get_property(n) for n in names]
    seen: set[str] = set()
    unique = []
    for p in props:
        if p.name not in seen:
            seen.add(p.name)
            unique.append(p)
    return unique


def clip_to_physical(values: np.ndarray, properties: Sequence[Property]) -> np.ndarray:
    """Clip (n, n_properties) predictions of non-negative properties at 0."""
    lower = np.array([0.0 if p.non_negative else -np.inf for p in properties])
    return np.maximum(values, lower)


def apply_elemental_identities(
    values: np.ndarray, properties: Sequence[Property], numbers: Sequence[np.ndarray]
) -> np.ndarray:
    """Exact facts about one-element crystals, applied to (n, n_properties) predictions.

    The elemental references of the formation energy are the element's ground state, so an
    elemental crystal has E_f >= 0, and it is its own only hull point: E_hull = E_f. A model
    that extrapolates its composition terms to a pure element (none of it in training) cannot
    break these.
    """
    names = [p.name for p in properties]
    out = values.copy()
    for i, z in enumerate(numbers):
        if len(np.unique(z)) != 1:
            continue
        if "formation_energy" in names:
            j = names.index("formation_energy")
            out[i, j] = max(out[i, j], 0.0)
            if "ehull" in names:
                out[i, names.index("ehull")] = out[i, j]
    return out


def apply_symmetry_zeros(
    values: np.ndarray, properties: Sequence[Property], piezo_vanishes: np.ndarray | None
) -> np.ndarray:
    """Zero the piezoelectric coefficient of crystals whose point group forbids one
    (``piezo_vanishes``, (n,) bool, from :func:`matbrain.data.symmetry.piezo_vanishes`)."""
    names = [p.name for p in properties]
    if piezo_vanishes is None or "piezo_max_dij" not in names:
        return values
    out = values.copy()
    out[np.asarray(piezo_vanishes, bool), names.index("piezo_max_dij")] = 0.0
    return out


def physical_predictions(
    values: np.ndarray,
    properties: Sequence[Property],
    numbers: Sequence[np.ndarray],
    piezo_vanishes: np.ndarray | None = None,
) -> np.ndarray:
    """Predictions (n, n_properties) as matbrain reports them everywhere (a run's metrics and
    ``predict``): non-negative properties clipped at 0, then the identities of one-element
    crystals and the zeros that symmetry imposes; ``numbers``: the atomic numbers (or the
    distinct ones) of each structure; ``piezo_vanishes``: (n,) bool, the point group forbids
    piezoelectricity (centrosymmetric or 432)."""
    values = apply_elemental_identities(clip_to_physical(values, properties), properties, numbers)
    return apply_symmetry_zeros(values, properties, piezo_vanishes)


def property_names(props: Sequence[Property]) -> list[str]:
    return [p.name for p in props]
