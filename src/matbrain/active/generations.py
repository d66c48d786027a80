"""The per-generation table of a loop: what each generation labelled, fitted, sampled and
selected, read back from its work folder and the store (``generations.csv`` and ``.md``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from matbrain.active.store import LabelStore
from matbrain.potentials.ace.versions import version_paths


def generation_folder(g: int) -> str:
    return f"gen_{g:02d}"


COLUMNS = (
    ("generation", "gen"), ("labelled", "labelled"), ("new", "new"), ("failed", "failed"),
    ("rmse_e_meV_per_atom", "RMSE E (meV/atom)"), ("rmse_f_eV_per_A", "RMSE F (eV/Å)"),
    ("pool", "MD frames"), ("md_stable", "MD stable"), ("gamma_median", "score median"),
    ("gamma_max", "score max"), ("extrapolative_pct", "extrapolative %"), ("selected", "selected"),
)  # fmt: skip


def generation_table(work: Path, store: LabelStore) -> list[dict[str, Any]]:
    """Rows from what each generation left on disk and in the store.

    The MD columns of generation g describe the sampling with potential g−1 that found the
    structures labelled in generation g.
    """
    stats = {s["generation"]: s for s in store.stats()}
    rows: list[dict[str, Any]] = []
    labelled = 0
    g = 0
    potentials = work / "potentials"
    while True:
        version = version_paths(potentials, g)
        folder = work / generation_folder(g)
        if not version.metrics_file.exists() and not (folder / "sampling.json").exists():
            break
        s = stats.get(g, {})
        labelled += s.get("completed", 0)
        row: dict[str, Any] = {"generation": g, "labelled": labelled,
                               "new": s.get("completed", 0), "failed": s.get("failed", 0)}  # fmt: skip
        if version.metrics_file.exists():
            valid = version.metrics().get("valid", {})
            row["rmse_e_meV_per_atom"] = valid.get("rmse_energy_meV_per_atom")
            row["rmse_f_eV_per_A"] = valid.get("rmse_forces_eV_per_A")
        if (folder / "sampling.json").exists():
            sampling = json.loads((folder / "sampling.json").read_text())
            row["pool"] = sampling["frames"]
            row["md_stable"] = f"{sampling['stable']}/{len(sampling['trajectories'])}"
        if (folder / "selection.json").exists():
            sel = json.loads((folder / "selection.json").read_text())
            scores = np.asarray(sel["scores"])
            if len(scores):
                row["gamma_median"] = float(np.median(scores))
                row["gamma_max"] = float(scores.max())
            row["extrapolative_pct"] = 100 * sel["extrapolative_share"]
            row["selected"] = len(sel["selected"])
        rows.append(row)
        g += 1
    return rows


# decimals per float column; the rest are counts or text
DECIMALS = {"rmse_e_meV_per_atom": 2, "rmse_f_eV_per_A": 4, "gamma_median": 2, "gamma_max": 2,
            "extrapolative_pct": 1}  # fmt: skip


def format_cell(value: Any, key: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{DECIMALS.get(key, 3)}f}"
    return str(value)


def write_table(rows: list[dict[str, Any]], work: Path) -> None:
    keys = [k for k, _ in COLUMNS]
    with open(work / "generations.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in keys})
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(format_cell(r.get(k), k) for k in keys) + " |" for r in rows]
    (work / "generations.md").write_text("\n".join(lines) + "\n")
