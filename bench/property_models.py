"""Every property model matbrain offers, against the reference ALIGNN: same split, same epochs.

For each property, each model trains on the official JARVIS-Leaderboard split restricted to the
bundled subset (identical train/val/test materials for all), for the same number of epochs, with
the same batch size and learning rate, and is scored on the same test materials. Model kinds:

    cgcnn            CGCNN specialist from scratch (medium)
    e3nn             e3nn specialist from scratch (medium)
    e3nn-multitask   one e3nn model trained on all the benchmarked properties at once
    e3nn-finetuned   e3nn specialist fine-tuned from that multi-task model
    chgnet, sevennet heads on a frozen universal potential (weights in their wheels)
    sevennet-l3i5    heads on SevenNet-l3i5 (the sevenn wheel's larger model)
    chgnet+sevennet  heads on both (features side by side, mean energy)
    chgnet+sevennet-l3i5  the same with SevenNet-l3i5
    chgnet-finetuned CHGNet fine-tuned end to end (encoder lr = lr x 0.1)
    alignn           the reference (needs ``pip install alignn``; installs without dgl)

Prints test MAE side by side with the MAD and the predict-train-mean and predict-zero baselines,
and training seconds per epoch of each. Writes JSON and Markdown to --out; finished cells are
kept in the JSON and skipped on a rerun (resumable).

    python bench/property_models.py --properties formation_energy --epochs 50
    python bench/property_models.py --properties formation_energy band_gap bulk_modulus \
        shear_modulus ehull --models cgcnn chgnet sevennet --epochs 50 --out bench/results
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

KINDS = (
    "cgcnn",
    "e3nn",
    "e3nn-multitask",
    "e3nn-finetuned",
    "chgnet",
    "chgnet-finetuned",
    "sevennet",
    "sevennet-l3i5",
    "chgnet+sevennet",
    "chgnet+sevennet-l3i5",
    "alignn",
)


def _overrides(epochs: int, batch_size: int, lr: float, out: Path) -> dict:
    """One recipe for every model: the same epochs, batch, learning rate and schedule."""
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "acc_steps": 1,
        "scheduler": "onecycle",
        "patience": None,
        "output_root": str(out / "runs"),
    }


def _row_update(row: dict, kind: str, metrics: dict, summary: dict) -> None:
    row.update(
        {
            "n_train": metrics["n_train"],
            "n_test": metrics["n_test"],
            "mad": metrics["test_mad"],
            "baseline_train_mean": metrics["baseline_train_mean_mae"],
            "baseline_zero": metrics["baseline_zero_mae"],
            f"{kind}_mae": metrics["test_mae"],
            f"{kind}_s_per_epoch": summary["train_seconds_this_session"]
            / max(summary["epochs_run"], 1),
            f"{kind}_parameters": summary["n_parameters"],
        }
    )


def run(
    properties: list[str],
    epochs: int,
    out: Path,
    models: list[str],
    batch_size: int,
    lr: float,
    done: dict[str, dict],
    multitask_properties: list[str] | None = None,
    composition_kernel: str = "auto",
    seeds: tuple[int, ...] = (42,),
    backbone_layers: str = "all",
    max_neighbors: int | None = None,
) -> list[dict]:
    from matbrain.data.jarvis import load_jarvis_records
    from matbrain.data.splits import TEST, TRAIN, VAL
    from matbrain.training.config import resolve_config
    from matbrain.training.pipeline import prepare_data, run_training

    recipe = {**_overrides(epochs, batch_size, lr, out), "composition_kernel": composition_kernel,
              "backbone_layers": backbone_layers}  # fmt: skip
    if max_neighbors is not None:  # else the config's default
        recipe["max_neighbors"] = max_neighbors
    rows = {p: done.get(p, {"property": p, "epochs": epochs}) for p in properties}

    def save() -> None:
        (out / "property_models.json").write_text(json.dumps(list(rows.values()), indent=1))

    multitask_run = None
    if {"e3nn-multitask", "e3nn-finetuned"} & set(models):
        pending = [p for p in properties if "e3nn-multitask_mae" not in rows[p]]
        if pending or "e3nn-finetuned" in models:
            names = multitask_properties or properties
            cfg = resolve_config("e3nn", "std", overrides={**recipe, "properties": names})
            result = run_training(cfg, progress=False)
            multitask_run = result.run_dir
            summary = json.loads((result.run_dir / "summary.json").read_text())
            for metrics in result.metrics:
                if metrics["property"] in rows:
                    _row_update(rows[metrics["property"]], "e3nn-multitask", metrics, summary)
                    rows[metrics["property"]]["unit"] = metrics["unit"]
            save()
    for name in properties:
        row = rows[name]
        for kind in models:
            if kind in ("alignn", "e3nn-multitask") or f"{kind}_mae" in row:
                continue
            extra: dict = {"properties": [name]}
            algorithm = kind
            if kind == "e3nn-finetuned":
                algorithm, extra["finetune_from"] = "e3nn", str(multitask_run)
            if kind == "chgnet-finetuned":
                algorithm = "chgnet"
                extra.update(backbone_mode="finetune", encoder_lr_factor=0.1)
            maes = []
            for seed in seeds:
                cfg = resolve_config(algorithm, "std", overrides={**recipe, **extra, "seed": seed})
                result = run_training(cfg, progress=False)
                metrics = result.metrics[0]
                maes.append(metrics["test_mae"])
                print(f"{name}: {kind} (seed {seed}) test MAE {metrics['test_mae']:.4g} "
                      f"{metrics['unit']}", flush=True)  # fmt: skip
            row["unit"] = metrics["unit"]
            summary = json.loads((result.run_dir / "summary.json").read_text())
            _row_update(row, kind, {**metrics, "test_mae": float(np.mean(maes))}, summary)
            if len(seeds) > 1:
                row[f"{kind}_mae_seeds"] = dict(zip(map(str, seeds), maes, strict=True))
            save()
        if "alignn" in models and "alignn_mae" not in row:
            try:
                from alignn_reference import train_alignn
            except ImportError as exc:  # pragma: no cover - optional dependency
                print(f"alignn unavailable: {exc}")
                continue
            records = {r["jid"]: r["atoms"] for r in load_jarvis_records()}
            cfg = resolve_config("e3nn", "std", overrides={"properties": [name]})
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
                    print(f"{name}: ALIGNN failed: {type(exc).__name__}: {exc}")
                    continue
            row["alignn_mae"] = ref["test_mae"]
            row["alignn_s_per_epoch"] = len(parts[TRAIN]) / ref["structures_per_s"]
            print(f"{name}: alignn test MAE {ref['test_mae']:.4g}", flush=True)
            save()
    return list(rows.values())


def table(rows: list[dict]) -> str:
    kinds = [k for k in KINDS if any(f"{k}_mae" in r for r in rows)]
    head = (
        "| property | unit | n train/test | MAD | mean baseline | zero baseline | "
        + " | ".join(kinds)
        + " |"
    )
    lines = [head, "|" + "---|" * (6 + len(kinds))]
    f = lambda r, k: f"{r[k]:.4g}" if k in r and r[k] == r[k] else "–"  # noqa: E731
    for r in rows:
        cells = " | ".join(f(r, f"{k}_mae") for k in kinds)
        lines.append(
            f"| {r['property']} | {r.get('unit') or '–'} | {r.get('n_train', '–')}/{r.get('n_test', '–')} | {f(r, 'mad')} "
            f"| {f(r, 'baseline_train_mean')} | {f(r, 'baseline_zero')} | {cells} |"
        )
    lines.append("")
    lines.append(
        "seconds per epoch: "
        + ", ".join(
            f"{k} {np.nanmean([r[f'{k}_s_per_epoch'] for r in rows if f'{k}_s_per_epoch' in r]):.3g}"
            for k in kinds
            if any(f"{k}_s_per_epoch" in r for r in rows)
        )
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--properties", nargs="+", default=["formation_energy"], help="names, or 'all'"
    )
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--models", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument(
        "--multitask-properties",
        nargs="+",
        help="what the e3nn multi-task model trains on (default: --properties)",
    )
    parser.add_argument(
        "--composition-kernel",
        default="auto",
        choices=["auto", "on", "off"],
        help="each model's kernel part (kernel ridge on the composition, and on the bonds and "
        "cell for graph networks, and for backbones with on)",
    )
    parser.add_argument(
        "--backbone-layers",
        default="all",
        choices=["all", "last"],
        help="backbone heads: every message-passing layer's invariant features, or the last's",
    )
    parser.add_argument(
        "--max-neighbors",
        type=int,
        default=None,
        help="graph models (and a backbone's structure-comparing kernel part): neighbour cap "
        "(default: the training config's, 12)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[42],
        help="train each model (not ALIGNN, not the multi-task one) once per seed; the table "
        "gives the mean, the JSON each seed's test MAE",
    )
    args = parser.parse_args()
    props = None if args.properties == ["all"] else args.properties
    from matbrain.properties import resolve_properties

    names = [p.name for p in resolve_properties(props)]
    args.out.mkdir(parents=True, exist_ok=True)
    previous = args.out / "property_models.json"
    done = {}
    if previous.exists():
        done = {
            r["property"]: r
            for r in json.loads(previous.read_text())
            if r.get("epochs") == args.epochs
        }
    multi = (
        [p.name for p in resolve_properties(args.multitask_properties)]
        if args.multitask_properties
        else None
    )
    rows = run(names, args.epochs, args.out, args.models, args.batch_size, args.lr, done, multi,
               args.composition_kernel, tuple(args.seeds), args.backbone_layers,
               args.max_neighbors)  # fmt: skip
    text = table(rows)
    print(text)
    (args.out / "property_models.json").write_text(json.dumps(rows, indent=1))
    (args.out / "property_models.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
