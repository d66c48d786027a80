"""MACE on the mlearn benchmark (Zuo et al. 2020): test energy and force MAE next to GAP and MTP.

Trains on the original mlearn training split of each element (10% of it held out for
validation) and scores the original test split, exactly the frames of the published table.
Resumable: rerun the same command and an unfinished element continues from MACE's last
checkpoint; a finished element is read back, not retrained.

    python bench/mlearn.py                         # Si, std level
    python bench/mlearn.py --element Cu --level lite --epochs 60 --dtype float32
    python bench/mlearn.py --all                   # Cu, Ni, Li, Si (hours on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

MLEARN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mlearn"
ELEMENTS = ("Cu", "Ni", "Li", "Si")
# Published test MAEs on the same splits (../shared/data/README.md): meV/atom, eV/Å.
PUBLISHED = {
    "Ni": {"gap_e": 0.42, "mtp_e": 0.48, "gap_f": 0.02, "mtp_f": 0.01},
    "Cu": {"gap_e": 0.46, "mtp_e": 0.41, "gap_f": 0.01, "mtp_f": 0.01},
    "Li": {"gap_e": 0.49, "mtp_e": 0.49, "gap_f": 0.01, "mtp_f": 0.01},
    "Si": {"gap_e": 2.91, "mtp_e": 2.21, "gap_f": 0.07, "mtp_f": 0.06},
}


def run_element(element: str, args: argparse.Namespace) -> dict:
    from matbrain.potentials.config import resolve_mace_config
    from matbrain.potentials.pipeline import train_potential

    out = Path(args.out) / element
    overrides = {
        "data": str(args.data),
        "elements": [element],
        "with_forces": True,
        "with_stress": False,
        "dtype": args.dtype,
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "swa": True if args.swa else None,
        "output_root": str(out),
        "seed": args.seed,
        "test_fraction": 0.0,
    }
    cfg = resolve_mace_config(
        args.level, overrides={k: v for k, v in overrides.items() if v is not None}
    )
    runs = sorted((out / "mace").glob("run_*")) if (out / "mace").exists() else []
    for run in reversed(runs):
        same = (run / "config.yaml").exists() and ((run / "config.yaml").read_text() == _yaml(cfg))
        if same and (run / "summary.json").exists():
            print(f"{element}: finished run found, {run}")
            return json.loads((run / "summary.json").read_text())
        if same:
            print(f"{element}: resuming {run}")
            train_potential(cfg, run_dir=run, progress=not args.quiet, echo=print)
            return json.loads((run / "summary.json").read_text())
    started = time.time()
    result = train_potential(cfg, progress=not args.quiet, echo=print)
    print(f"{element}: {time.time() - started:.0f} s, {result.run_dir}")
    return json.loads((result.run_dir / "summary.json").read_text())


def _yaml(cfg) -> str:  # type: ignore[no-untyped-def]
    import yaml

    return yaml.safe_dump(cfg.model_dump(), sort_keys=False)


def report(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"MACE level {args.level}, epochs {args.epochs or 'level default'}, lr {args.lr or 'level default'}, "
        f"batch {args.batch_size or 'level default'}, {args.dtype}, seed {args.seed}"
        f"{', SWA stage two (high energy weight) from 80 % of the epochs' if args.swa else ''}; "
        "test split of mlearn (energies and forces, no stress)",
        "",
        "| element | MACE E (meV/atom) | GAP E | MTP E | MACE F (eV/Å) | GAP F | MTP F | beats best E | beats best F | train time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        el = s["elements"][0]
        pub = PUBLISHED[el]
        test = s["metrics"]["test"]
        e, f = test["energy_meV_per_atom"]["mae"], test["forces_eV_per_A"]["mae"]
        best_e, best_f = min(pub["gap_e"], pub["mtp_e"]), min(pub["gap_f"], pub["mtp_f"])
        lines.append(
            f"| {el} | {e:.2f} | {pub['gap_e']} | {pub['mtp_e']} | {f:.3f} | {pub['gap_f']} | "
            f"{pub['mtp_f']} | {'yes' if e < best_e else 'no'} | {'yes' if f < best_f else 'no'} | "
            f"{s['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--element", default="Si", choices=ELEMENTS)
    parser.add_argument("--all", action="store_true", help="all four elements")
    parser.add_argument("--level", default="std")
    parser.add_argument("--epochs", type=int, default=None, help="override the level's epochs")
    parser.add_argument("--lr", type=float, default=None, help="override the level's lr")
    parser.add_argument("--batch-size", type=int, default=None, help="override the level's batch")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--swa", action="store_true", help="MACE's stage two (energy weight up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(MLEARN))
    parser.add_argument("--out", default="bench/out/mlearn")
    parser.add_argument("--results", default="bench/results/mlearn.md")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    elements = ELEMENTS if args.all else (args.element,)
    rows = [run_element(el, args) for el in elements]
    text = report(rows, args)
    print(text)
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(text + "\n")
    Path(args.results).with_suffix(".json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    from matbrain.cli.common import exit_on_sigterm

    exit_on_sigterm()  # `kill` stops MACE's trainer too
    main()
