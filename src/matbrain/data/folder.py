"""A folder of CIF/POSCAR files with an ``id_prop.csv`` (the CGCNN/ALIGNN convention)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from matbrain.data.dataset import CrystalDataset
from matbrain.data.structures import StructureReadError, read_structure
from matbrain.properties import Property

log = logging.getLogger(__name__)


HEADER_FIRST_CELLS = ("id", "filename", "file", "name")


def header_columns(folder: str | Path) -> list[str] | None:
    """The value-column names of ``folder/id_prop.csv`` when it has a header row, else None."""
    table = Path(folder) / "id_prop.csv"
    if not table.exists():
        return None
    with open(table, newline="") as fh:
        first = next((r for r in csv.reader(fh) if r), None)
    if first is None or first[0].strip().lower() not in HEADER_FIRST_CELLS:
        return None
    return [h.strip() for h in first[1:]]


def folder_dataset(folder: str | Path, properties: list[Property]) -> CrystalDataset:
    """Read ``folder/id_prop.csv``: rows ``filename,value[,value...]``, one value per property.

    A header row is allowed when its first cell is ``id``/``filename``; then the value columns are
    matched to properties by name or JARVIS key. Empty cells and ``na`` are missing labels.
    Files that cannot be read are reported and skipped.
    """
    folder = Path(folder)
    table = folder / "id_prop.csv"
    if not table.exists():
        raise FileNotFoundError(f"{folder}: no id_prop.csv (expected rows 'filename,value,...')")
    with open(table, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if not rows:
        raise ValueError(f"{table}: empty")
    columns: list[int]
    has_header = rows[0][0].strip().lower() in HEADER_FIRST_CELLS
    if has_header:
        header = [h.strip() for h in rows[0]]
        rows = rows[1:]
        columns = []
        for p in properties:
            matches = [i for i, h in enumerate(header) if h in (p.name, p.key)]
            if not matches:
                raise ValueError(
                    f"{table}: no column for property {p.name!r} (header: {header}); "
                    "to train on your own column pass --target-name NAME --unit UNIT"
                )
            columns.append(matches[0])
    else:
        if len(rows[0]) - 1 != len(properties):
            raise ValueError(
                f"{table}: {len(rows[0]) - 1} value column(s) but {len(properties)} properties "
                "requested; for your own target pass --target-name NAME --unit UNIT (or add a "
                "header row 'id,NAME' and pass --unit), or name the JARVIS properties with "
                "--properties"
            )
        columns = list(range(1, len(properties) + 1))
    ids, structures, targets, bad = [], [], [], []
    nan_labels = 0
    first_line = 2 if has_header else 1  # line numbers as an editor shows them
    for line, row in enumerate(rows, start=first_line):
        name = row[0].strip()
        path = folder / name
        if not path.exists() and not path.suffix:
            path = folder / f"{name}.cif"
        try:
            atoms = read_structure(path)
        except (FileNotFoundError, StructureReadError) as exc:
            bad.append(str(exc))
            continue
        values = []
        for c, prop in zip(columns, properties, strict=True):
            cell = row[c].strip() if c < len(row) else ""
            if not cell or cell.lower() in ("na", "nan"):
                nan_labels += bool(cell)  # written as NaN: counted, then missing like a blank
                values.append(float("nan"))
                continue
            try:
                value = float(cell)
            except ValueError:
                raise ValueError(
                    f"{table}, line {line} ({name}): {prop.name} is {cell!r}, not a number"
                ) from None
            if not np.isfinite(value):
                nan_labels += 1
                value = float("nan")
            values.append(value)
        ids.append(Path(name).stem)
        structures.append(atoms)
        targets.append(values)
    for msg in bad:
        log.warning("skipped: %s", msg)
    if nan_labels:
        log.warning("%s: %d labels written as NaN/inf are treated as missing", table, nan_labels)
    if not ids:
        raise ValueError(
            f"{folder}: none of the {len(rows)} structures listed in id_prop.csv could be read"
        )
    return CrystalDataset(
        ids=ids,
        structures=structures,
        targets=np.asarray(targets, dtype=float),
        properties=list(properties),
        source=f"folder:{folder.resolve()}",
        read_report={"unreadable_files": bad, "nan_labels_as_missing": nan_labels},
    )
