"""CGCNN vs e3nn vs the reference ALIGNN on the bundled JARVIS subset: same split, same epochs.

For each property, all three models train single-task on the official JARVIS-Leaderboard split
restricted to the subset (identical train/val/test materials for the three), for the same number
of epochs, and are scored on the same test materials. Prints test MAE side by side with the MAD
and the predict-train-mean baseline, and training throughput (structures/s) of each.

ALIGNN needs ``pip install alignn`` (it installs without dgl). A model that cannot run is reported
and the others still are.

    python bench/property_models.py --properties formation_energy --epochs 30
    python bench/property_models.py --properties all --epochs 50 --out bench/results
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def run(
    properties: list[str], epochs: int, out: Path, models: list[str], batch_size: int, lr: float
) -> list[dict]:
    from matbrain.data.jarvis import load_jarvis_records
    from matbrain.data.splits import TEST, TRAIN, VAL
    from matbrain.properties import resolve_properties
    from matbrain.training.config import resolve_config
    from matbrain.training.pipeline import prepare_data, run_training

    rows = []
    records = {r["jid"]: r["atoms"] for r in load_jarvis_records()}
    for prop in resolve_properties(properties):
        row: dict = {"property": prop.name, "unit": prop.unit, "epochs": epochs}
        for algo in ("cgcnn", "e3nn"):
            if algo not in models:
                continue
            cfg = resolve_config(
                algo,
                "std",
                overrides={
                    "properties": [prop.name],
                    "epochs": epochs,
                    "batch_size": batch_size,
                    "lr": lr,
                    "output_root": str(out / "runs"),
                },
            )
            result = run_training(cfg, progress=False)
            metrics = result.metrics[0]
            summary = json.loads((result.run_dir / "summary.json").read_text())
            row.update(
                {
                    "n_train": metrics["n_train"],
                    "n_test": metrics["n_test"],
                    "mad": metrics["test_mad"],
                    "baseline_train_mean": metrics["baseline_train_mean_mae"],
                    "baseline_zero": metrics["baseline_zero_mae"],
                    f"{algo}_mae": metrics["test_mae"],
                    f"{algo}_structures_per_s": summary["structures_per_second"],
                    f"{algo}_parameters": summary["n_parameters"],
                }
            )
            print(f"{prop.name}: {algo} test MAE {metrics['test_mae']:.4g} {prop.unit}", flush=True)
        if "alignn" in models:
            try:
                from alignn_reference import train_alignn
            except ImportError as exc:  # pragma: no cover - optional dependency
                print(f"alignn unavailable: {exc}")
                continue
            cfg = resolve_config("e3nn", "std", overrides={"properties": [prop.name]})
            data, _ = prepare_data(cfg, progress=False)
            parts = {}
            for role in (TRAIN, VAL, TEST):
                mask = data.split.mask(role, data.targets)[:, 0]
                parts[role] = {data.ids[i]: float(data.targets[i, 0]) for i in np.flatnonzero(mask)}
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    ref = train_alignn(
                        records,
                        parts[TRAIN],
                        parts[VAL],
                        parts[TEST],
                        epochs,
                        Path(tmp),
                        batch_size=batch_size,
                        lr=lr,
                    )
                except Exception as exc:  # report and go on with the other models
                    print(f"{prop.name}: ALIGNN failed: {type(exc).__name__}: {exc}")
                    continue
            row.update(
                {"alignn_mae": ref["test_mae"], "alignn_structures_per_s": ref["structures_per_s"]}
            )
            print(f"{prop.name}: alignn test MAE {ref['test_mae']:.4g} {prop.unit}", flush=True)
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    head = "| property | unit | n train/test | MAD | train-mean baseline | CGCNN | e3nn | ALIGNN | structures/s CGCNN / e3nn / ALIGNN |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    f = lambda r, k: f"{r[k]:.4g}" if k in r and r[k] == r[k] else "–"  # noqa: E731
    for r in rows:
        lines.append(
            f"| {r['property']} | {r['unit'] or '–'} | {r.get('n_train', '–')}/{r.get('n_test', '–')} | {f(r, 'mad')} | {f(r, 'baseline_train_mean')} "
            f"| {f(r, 'cgcnn_mae')} | {f(r, 'e3nn_mae')} | {f(r, 'alignn_mae')} "
            f"| {f(r, 'cgcnn_structures_per_s')} / {f(r, 'e3nn_structures_per_s')} / {f(r, 'alignn_structures_per_s')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--properties", nargs="+", default=["formation_energy"], help="names, or 'all'"
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--models", nargs="+", default=["cgcnn", "e3nn", "alignn"])
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    props = None if args.properties == ["all"] else args.properties
    from matbrain.properties import resolve_properties

    names = [p.name for p in resolve_properties(props)]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = run(names, args.epochs, args.out, args.models, args.batch_size, args.lr)
    text = table(rows)
    print(text)
    (args.out / "property_models.json").write_text(json.dumps(rows, indent=1))
    (args.out / "property_models.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
