"""The model matrix: per tier and algorithm, one specialist per property plus one multi-task model.

Every cell is an ordinary training run (its own run folder, registry line). The matrix keeps
``matrix.json`` in its folder: cell -> run folder. A rerun skips finished cells and resumes an
interrupted one from its checkpoint. The summary is a table of test MAE per property and cell
(``summary.csv``, ``summary.md``) and a heat map of MAE/MAD (``heatmap.png``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matbrain.common.plotting import subplots
from matbrain.common.runs import new_run_dir
from matbrain.properties import resolve_properties
from matbrain.training.config import resolve_config
from matbrain.training.pipeline import run_training

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    tier: str
    algorithm: str
    kind: str  # "multitask" or a property name (a specialist)

    @property
    def key(self) -> str:
        return f"{self.tier}/{self.algorithm}/{self.kind}"


@dataclass
class MatrixResult:
    folder: Path
    rows: list[dict[str, Any]]  # one per (cell, property)
    trained: list[str]
    skipped: list[str]


def plan(tiers: Sequence[str], algorithms: Sequence[str], properties: Sequence[str]) -> list[Cell]:
    cells = []
    for tier in tiers:
        for algorithm in algorithms:
            cells.append(Cell(tier, algorithm, "multitask"))
            cells += [Cell(tier, algorithm, name) for name in properties]
    return cells


def run_matrix(
    tiers: Sequence[str],
    algorithms: Sequence[str],
    properties: Sequence[str] | None = None,
    folder: Path = Path("models/matrix"),
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> MatrixResult:
    """Train every missing cell of the matrix (resumable) and write its summary."""
    names = [p.name for p in resolve_properties(properties)]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "matrix.json"
    state: dict[str, str] = json.loads(state_path.read_text()) if state_path.exists() else {}
    cells = plan(tiers, algorithms, names)
    configs = {}
    for cell in cells:  # every config is checked before the first cell trains
        props = names if cell.kind == "multitask" else [cell.kind]
        configs[cell.key] = resolve_config(
            cell.algorithm,
            cell.tier,
            overrides={
                **(overrides or {}),
                "properties": props,
                "output_root": str(folder / "runs"),
            },
        )
    trained, skipped = [], []
    for n, cell in enumerate(cells, 1):
        run_dir = Path(state[cell.key]) if cell.key in state else None
        if run_dir is not None and (run_dir / "summary.json").exists():
            skipped.append(cell.key)
            continue
        resume = run_dir if run_dir is not None and (run_dir / "checkpoint.pt").exists() else None
        log.info("matrix cell %d/%d: %s%s", n, len(cells), cell.key, " (resumed)" if resume else "")
        if resume is None:
            cfg = configs[cell.key]
            resume = new_run_dir(Path(cfg.output_root), cfg.run_group())
            state[cell.key] = str(resume)
            state_path.write_text(json.dumps(state, indent=1))
        run_training(configs[cell.key], run_dir=resume, progress=progress)
        trained.append(cell.key)
    rows = summary_rows(cells, state)
    write_summary(folder, rows)
    return MatrixResult(folder=folder, rows=rows, trained=trained, skipped=skipped)


def summary_rows(cells: Sequence[Cell], state: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for cell in cells:
        metrics_path = Path(state.get(cell.key, "")) / "metrics.json"
        if not metrics_path.is_file():
            continue
        for m in json.loads(metrics_path.read_text()):
            rows.append(
                {
                    "tier": cell.tier,
                    "algorithm": cell.algorithm,
                    "kind": "multitask" if cell.kind == "multitask" else "specialist",
                    "property": m["property"],
                    "unit": m["unit"],
                    "n_test": m["n_test"],
                    "test_mae": m["test_mae"],
                    "test_mae_over_mad": m["test_mae_over_mad"],
                    "baseline_train_mean_mae": m["baseline_train_mean_mae"],
                    "run": state[cell.key],
                }
            )
    return rows


def write_summary(folder: Path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    if not rows:
        return
    frame = pd.DataFrame(rows)
    frame.to_csv(folder / "summary.csv", index=False)
    frame["model"] = frame["tier"] + " " + frame["algorithm"] + " " + frame["kind"]
    wide = frame.pivot_table(index="property", columns="model", values="test_mae", sort=False)
    units = frame.groupby("property")["unit"].first()
    lines = ["| property | unit | " + " | ".join(wide.columns) + " |"]
    lines.append("|" + "---|" * (len(wide.columns) + 2))
    for prop, values in wide.iterrows():
        cells = " | ".join("–" if v != v else f"{v:.4g}" for v in values)
        lines.append(f"| {prop} | {units[prop] or '–'} | {cells} |")
    (folder / "summary.md").write_text("\n".join(lines) + "\n")
    ratio = frame.pivot_table(
        index="property", columns="model", values="test_mae_over_mad", sort=False
    )
    heatmap(ratio, folder / "heatmap.png")


def heatmap(ratio: Any, path: Path) -> None:
    """MAE/MAD per property (rows) and model (columns); lower is better, 1 = predicting the mean."""

    fig, ax = subplots(
        figsize=(max(6.0, 2.5 + 0.9 * ratio.shape[1]), 2.5 + 0.45 * ratio.shape[0]),
        layout="constrained",
    )
    image = ax.imshow(ratio.to_numpy(), cmap="viridis_r", vmin=0, vmax=1.2, aspect="auto")
    ax.set_xticks(range(ratio.shape[1]), ratio.columns, rotation=45, ha="right")
    ax.set_yticks(range(ratio.shape[0]), ratio.index)
    for i in range(ratio.shape[0]):
        for j in range(ratio.shape[1]):
            value = ratio.iat[i, j]
            if value == value:
                color = "k" if value < 0.6 else "w"  # readable on the light and the dark end
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", color=color, fontsize=8)
    fig.colorbar(image, ax=ax, label="test MAE / MAD")
    ax.set_title(
        "test MAE / MAD per property and model\n(lower is better; 1 = predicting the mean)"
    )
    fig.savefig(path, dpi=120)
