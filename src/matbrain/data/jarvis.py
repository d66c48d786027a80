"""JARVIS-DFT 3D: the bundled subset, local ``jdft_3d-*.json[.zip|.gz]`` files, or jarvis-tools."""

from __future__ import annotations

import gzip
import json
import logging
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from matbrain.data.dataset import CrystalDataset
from matbrain.data.structures import jarvis_atoms_to_ase
from matbrain.properties import Property

log = logging.getLogger(__name__)

BUNDLED = "bundled"
"""Name of the default dataset: the JARVIS subset shipped inside the package."""

MISSING = "na"


def bundled_path(name: str) -> Path:
    """Path of a file in ``matbrain/data/bundled`` (works from any working directory)."""
    path = Path(str(resources.files("matbrain.data").joinpath("bundled", name)))
    if not path.exists():
        raise FileNotFoundError(f"bundled data file missing from the installation: {path}")
    return path


def read_json_any(path: Path) -> Any:
    """Read JSON from ``.json``, ``.json.gz`` or a ``.zip`` holding one JSON file."""
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.namelist() if m.endswith(".json")]
            if len(members) != 1:
                raise ValueError(f"{path}: expected one .json inside the zip, found {members}")
            return json.loads(zf.read(members[0]))
    if name.endswith(".gz"):
        with gzip.open(path, "rt") as fh:
            return json.load(fh)
    with open(path) as fh:
        return json.load(fh)


def load_jarvis_records(source: str | Path = BUNDLED) -> list[dict[str, Any]]:
    """Load dft_3d records.

    Parameters
    ----------
    source : ``"bundled"`` (the shipped subset), ``"dft_3d"`` (the full database through
        jarvis-tools, which downloads and caches it; needs network), or a path to a local
        ``jdft_3d-*.json``, ``.json.zip`` or ``.json.gz``.
    """
    if str(source) == BUNDLED:
        return read_json_any(bundled_path("dft_3d_subset.json.gz"))
    if str(source) in ("dft_3d", "dft_3d_2021"):
        try:
            from jarvis.db.figshare import data as jarvis_data
        except ImportError as exc:
            raise ImportError(
                "loading the full JARVIS database needs jarvis-tools: pip install jarvis-tools"
            ) from exc
        return jarvis_data(str(source))
    records = read_json_any(Path(source))
    if not isinstance(records, list) or not records or "atoms" not in records[0]:
        raise ValueError(
            f"{source}: not a JARVIS dft_3d file (expected a list of records with 'atoms')"
        )
    return records


def _value(record: dict[str, Any], key: str) -> float:
    value = record.get(key, MISSING)
    if value is None or value == MISSING or value == "":
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def jarvis_dataset(properties: list[Property], source: str | Path = BUNDLED) -> CrystalDataset:
    """Build a dataset from dft_3d records; ``"na"`` labels become NaN (masked, not dropped).

    Records that have none of the requested properties are left out.
    """
    records = load_jarvis_records(source)
    ids, structures, rows = [], [], []
    for rec in records:
        row = [_value(rec, p.key) for p in properties]
        if all(np.isnan(row)):
            continue
        ids.append(str(rec["jid"]))
        structures.append(jarvis_atoms_to_ase(rec["atoms"]))
        rows.append(row)
    log.info(
        "JARVIS %s: %d of %d records have at least one requested label",
        source,
        len(ids),
        len(records),
    )
    return CrystalDataset(
        ids=ids,
        structures=structures,
        targets=np.asarray(rows, dtype=float).reshape(len(ids), len(properties)),
        properties=list(properties),
        source=f"jarvis:{source}",
        is_jarvis=True,
    )
