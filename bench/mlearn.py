"""Potentials on the mlearn benchmark (Zuo et al. 2020): test energy and force MAE next to GAP and MTP.

Trains on the original mlearn training split of each element (10% of it held out for
validation) and scores the original test split, exactly the frames of the published table.
Resumable: rerun the same command and an unfinished element continues from MACE's last
checkpoint; a finished element is read back, not retrained.

    python bench/mlearn.py --algorithm ace --level pro --all   # linear ACE, minutes per element
    python bench/mlearn.py --algorithm mace --element Cu --level lite --epochs 60 --dtype float32
    python bench/mlearn.py --algorithm mace --all               # hours on 2 CPU cores

Also times inference (µs per atom and step) of matbrain's calculator against the engine's own,
interleaved on the test frames. With ``--published-mtp <folder>`` the published MTPs themselves
(``bench/published_mtp.py``) are scored on the same test frames in the same run, so the MTP
columns hold measured numbers instead of the paper's two printed decimals.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

MLEARN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mlearn"
ELEMENTS = ("Cu", "Ni", "Li", "Si")
UNIVERSAL = ("chgnet", "sevennet")  # fine-tuned from the weights in their wheels
# Published test MAEs on the same splits (../shared/data/README.md): meV/atom, eV/Å.
PUBLISHED = {
    "Ni": {"gap_e": 0.42, "mtp_e": 0.48, "gap_f": 0.02, "mtp_f": 0.01},
    "Cu": {"gap_e": 0.46, "mtp_e": 0.41, "gap_f": 0.01, "mtp_f": 0.01},
    "Li": {"gap_e": 0.49, "mtp_e": 0.49, "gap_f": 0.01, "mtp_f": 0.01},
    "Si": {"gap_e": 2.91, "mtp_e": 2.21, "gap_f": 0.07, "mtp_f": 0.06},
}


def resolve(element: str, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from matbrain.potentials.config import (
        resolve_ace_config,
        resolve_finetune_config,
        resolve_mace_config,
    )

    out = Path(args.out) / element
    data = Path(args.data)
    if args.train_subset:  # N training structures (fixed seed), the full test split
        import ase.io
        import numpy as np

        data = out / f"data_train{args.train_subset}"
        if not data.exists():
            train = ase.io.read(Path(args.data) / f"mlearn_{element}_train.extxyz.gz", ":")
            pick = np.sort(
                np.random.default_rng(args.seed).choice(
                    len(train), args.train_subset, replace=False
                )
            )
            data.mkdir(parents=True)
            ase.io.write(
                data / f"mlearn_{element}_train.extxyz", [train[i] for i in pick], format="extxyz"
            )
            ase.io.write(data / f"mlearn_{element}_test.extxyz",
                         ase.io.read(Path(args.data) / f"mlearn_{element}_test.extxyz.gz", ":"), format="extxyz")  # fmt: skip
    common = {
        "data": str(data),
        "elements": [element],
        "with_forces": True,
        "with_stress": args.with_stress,
        "output_root": str(out),
        "seed": args.seed,
        "test_fraction": 0.0,
    }
    if args.algorithm in UNIVERSAL:
        tune = {"base_model": args.algorithm, "epochs": args.epochs, "lr": args.lr,
                "batch_size": args.batch_size}  # fmt: skip
        return resolve_finetune_config(
            overrides={**common, **{k: v for k, v in tune.items() if v is not None}}
        )
    if args.algorithm == "ace":
        return resolve_ace_config(args.level, overrides={**common, **ace_flags(args)})
    mace = {"dtype": args.dtype, "epochs": args.epochs, "lr": args.lr,
            "batch_size": args.batch_size, "swa": True if args.swa else None}  # fmt: skip
    return resolve_mace_config(
        args.level, overrides={**common, **{k: v for k, v in mace.items() if v is not None}}
    )


def run_element(element: str, args: argparse.Namespace) -> dict:
    from matbrain.potentials.backends import run_group
    from matbrain.potentials.pipeline import train_potential

    cfg = resolve(element, args)
    group = Path(cfg.output_root) / run_group(cfg)
    runs = sorted(group.glob("run_*")) if group.exists() else []
    for run in reversed(runs):
        same = (run / "config.yaml").exists() and ((run / "config.yaml").read_text() == _yaml(cfg))
        if same and (run / "summary.json").exists():
            print(f"{element}: finished run found, {run}")
            return _with_timing(json.loads((run / "summary.json").read_text()), args)
        if same:
            print(f"{element}: resuming {run}")
            train_potential(cfg, run_dir=run, progress=not args.quiet, echo=print)
            return _with_timing(json.loads((run / "summary.json").read_text()), args)
    started = time.time()
    result = train_potential(cfg, progress=not args.quiet, echo=print)
    print(f"{element}: {time.time() - started:.0f} s, {result.run_dir}")
    return _with_timing(json.loads((result.run_dir / "summary.json").read_text()), args)


def _raw_calculator(model_path: Path):  # type: ignore[no-untyped-def]
    """The engine's own ASE calculator for a model file, built without matbrain."""
    name = model_path.name
    if name.endswith(".yace"):
        from pyace import PyACECalculator

        return PyACECalculator(str(model_path))
    if name.endswith(".pth.tar"):
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(model=CHGNet.from_file(str(model_path)), use_device="cpu")
    if name.endswith(".pth"):
        from sevenn.calculator import SevenNetCalculator

        return SevenNetCalculator(str(model_path), device="cpu")
    if name.endswith(".model"):
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=str(model_path), device="cpu", default_dtype="float64")
    raise ValueError(f"no raw calculator for {name}")


def inference_timing(model_path: Path, frames: list, repeats: int = 3) -> dict[str, float]:
    """µs per atom and step: matbrain's calculator vs the engine's own, interleaved (same frames)."""
    from matbrain.potentials.calculators import load_potential

    calcs = {"matbrain": load_potential(model_path).calc, "raw": _raw_calculator(model_path)}
    total = {k: 0.0 for k in calcs}
    atoms_done = 0
    for _ in range(repeats):
        for atoms in frames:
            for name, calc in calcs.items():
                work = atoms.copy()
                work.calc = calc
                start = time.perf_counter()
                work.get_potential_energy()
                work.get_forces()
                total[name] += time.perf_counter() - start
            atoms_done += len(atoms)
    us = {k: 1e6 * v / atoms_done for k, v in total.items()}
    return {"matbrain_us_per_atom_step": us["matbrain"], "raw_us_per_atom_step": us["raw"],
            "overhead": us["matbrain"] / us["raw"] - 1.0}  # fmt: skip


def _with_timing(summary: dict, args: argparse.Namespace) -> dict:
    if args.no_timing or "inference" in summary:
        return summary
    import ase.io

    element = summary["elements"][0]
    frames = ase.io.read(Path(args.data) / f"mlearn_{element}_test.extxyz.gz", ":")
    summary["inference"] = inference_timing(Path(summary["path"]) / summary["model_file"], frames)
    summary["elastic"] = cubic_elastic(Path(summary["path"]) / summary["model_file"], element)
    if args.algorithm in UNIVERSAL:  # the same potential untouched, on the same test frames
        from matbrain.potentials.calculators import load_potential
        from matbrain.potentials.data import read_labelled
        from matbrain.potentials.evaluate import error_metrics, predict

        test = read_labelled(Path(args.data) / f"mlearn_{element}_test.extxyz.gz")
        summary["untouched"] = error_metrics(predict(load_potential(args.algorithm).calc, test))
    return summary


# the crystal each mlearn element is, at its PBE lattice constant (Å)
CRYSTALS = {
    "Cu": ("fcc", 3.621),
    "Ni": ("fcc", 3.508),
    "Li": ("bcc", 3.427),
    "Si": ("diamond", 5.4685),
}


def cubic_elastic(model_path: Path, element: str) -> dict[str, float]:
    """C11, C12 and B (GPa) of the element's cubic crystal at its PBE lattice constant, clamped
    ions (:func:`matbrain.potentials.checks.cubic_elastic_constants`)."""
    from ase.build import bulk

    from matbrain.potentials.calculators import load_potential
    from matbrain.potentials.checks import cubic_elastic_constants

    structure, a = CRYSTALS[element]
    crystal = bulk(element, structure, a=a, cubic=True)
    return cubic_elastic_constants(crystal, load_potential(model_path).calc)


def dft_cubic_elastic(element: str, data: Path) -> dict[str, float]:
    """C11, C12 and B (GPa) from the DFT stresses of the training split's strained perfect
    crystals: axis-aligned supercells of the conventional cell, no force on any atom, strains
    below 3 %; least squares of σ_ii = C11 ε_ii + C12 (ε_jj + ε_kk) + offset."""
    import ase.io
    import numpy as np
    from ase.units import GPa

    from matbrain.potentials.data import mlearn_stress_to_ase

    structure, a0 = CRYSTALS[element]
    per_cell = {"fcc": 4, "bcc": 2, "diamond": 8}[structure]
    rows, targets = [], []
    for atoms in ase.io.read(data / f"mlearn_{element}_train.extxyz.gz", ":"):
        cell = atoms.cell.array
        lengths = np.diag(cell)
        repeats = np.round(lengths / a0)
        if (np.abs(atoms.get_forces()).max() > 1e-3 or np.abs(cell - np.diag(lengths)).max() > 1e-6
                or (repeats < 1).any() or np.prod(repeats) * per_cell != len(atoms)):  # fmt: skip
            continue
        strain = lengths / (repeats * a0) - 1
        if np.abs(strain).max() > 0.03:
            continue
        stress = np.diag(mlearn_stress_to_ase(atoms)) / GPa
        for i in range(3):
            rows.append([strain[i], strain.sum() - strain[i], 1.0])
            targets.append(stress[i])
    c11, c12, _ = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)[0]
    return {"C11": float(c11), "C12": float(c12), "B": float((c11 + 2 * c12) / 3),
            "structures": len(rows) // 3}  # fmt: skip


def _yaml(cfg) -> str:  # type: ignore[no-untyped-def]
    import yaml

    return yaml.safe_dump(cfg.model_dump(), sort_keys=False)


def ace_flags(args: argparse.Namespace) -> dict:
    """The ACE settings given on the command line (the level fills in the rest)."""
    ace = {"functions_per_element": args.functions, "cutoff_A": args.cutoff,
           "solver": args.solver, "max_iter": args.max_iter, "kappa": args.kappa,
           "batch_size": args.pacemaker_batch,
           "nradmax_by_orders": args.nradmax, "lmax_by_orders": args.lmax}  # fmt: skip
    return {k: v for k, v in ace.items() if v is not None}


def describe(args: argparse.Namespace) -> str:
    if args.algorithm in UNIVERSAL:
        return (f"{args.algorithm} fine-tuned with its own trainer on "
                f"{args.train_subset or 'all'} training structures, epochs {args.epochs or 50}, "
                f"lr {args.lr or 'engine default'}, batch {args.batch_size or 4}")  # fmt: skip
    if args.algorithm == "ace":
        from matbrain.potentials.config import resolve_ace_config

        cfg = resolve_ace_config(args.level, overrides={"data": ".", **ace_flags(args)})
        pacemaker = (f", pacemaker κ {cfg.kappa}, {cfg.max_iter} iterations, batch {cfg.batch_size}"
                     if "pacemaker" in cfg.solver else "")  # fmt: skip
        return (f"ACE ({cfg.solver}) level {args.level}: {cfg.functions_per_element} functions per "
                f"element, cutoff {cfg.cutoff_A} Å, nradmax_by_orders {cfg.nradmax_by_orders}, "
                f"lmax_by_orders {cfg.lmax_by_orders}{pacemaker}")  # fmt: skip
    return (
        f"MACE level {args.level}, epochs {args.epochs or 'level default'}, lr {args.lr or 'level default'}, "
        f"batch {args.batch_size or 'level default'}, {args.dtype}"
        f"{', SWA stage two (high energy weight) from 80 % of the epochs' if args.swa else ''}"
    )


def _validation_stress(summary: dict) -> str:
    """Validation stress MAE (the test splits' stresses are not their structures', README); for
    linear ACE with stresses, beside the fitted constant offset, with the weight chosen."""
    fit_file = Path(summary["path"]) / "ace_fit.json"
    fit = json.loads(fit_file.read_text()) if fit_file.exists() else {}
    if fit.get("stress_weight") is not None:
        keys = ("energy_weight", "ridge_alpha", "stress_weight")
        chosen = next(g for g in fit["grid"] if all(g[k] == fit[k] for k in keys))
        return (f"{chosen['valid_stress_mae_GPa']:.3f} (offset {chosen['stress_offset_GPa']:+.2f}, "
                f"weight {fit['stress_weight']:g})")  # fmt: skip
    stress = summary["metrics"].get("valid", {}).get("stress_GPa", {}).get("mae")
    return f"{stress:.3f}" if stress is not None else ""


def hottest_forces(groups: list[dict]) -> float | None:
    """Force MAE of the group of test structures with the largest mean reference force."""
    groups = [g for g in groups if g["grouped_by"] != "config_type"]
    return (
        max(groups, key=lambda g: g["mean_force_eV_per_A"])["forces_mae_eV_per_A"]
        if groups
        else None
    )


def with_force_breakdown(summary: dict) -> dict:
    """Where the test force error sits (matbrain's breakdown of the per-structure errors the run
    saved when it was scored), to set beside the published MTP's."""
    from matbrain.potentials.evaluate import force_error_breakdown, read_structure_errors

    rows = read_structure_errors(Path(summary["path"]) / "structures_test.csv")
    summary["force_breakdown"] = force_error_breakdown(rows)
    return summary


def with_published_mtp(summary: dict, args: argparse.Namespace) -> dict:
    """The published MTP of the element scored on the same test frames (when its file is given)."""
    element = summary["elements"][0]
    path = Path(args.published_mtp) / f"{element}.mtp"
    if not path.is_file():
        print(f"{element}: no published MTP at {path}; the paper's printed numbers are used")
        return summary
    from published_mtp import evaluate_published_mtp

    summary["published_mtp"] = evaluate_published_mtp(
        path, element, Path(args.data) / f"mlearn_{element}_test.extxyz.gz"
    )
    return with_force_breakdown(summary)


def report(rows: list[dict], args: argparse.Namespace) -> str:
    name = args.algorithm.upper()
    lines = [
        f"{describe(args)}, seed {args.seed}; trained on mlearn's training split (10 % of it for "
        f"validation{', stresses fitted' if args.with_stress else ''}), scored on its test split; "
        "2-core CPU. Elastic constants: the model's, clamped ions, at the PBE lattice constant, "
        "and the DFT data's (from the training split's strained perfect crystals). Stress MAE "
        "on the validation split (the test splits' stresses are not their structures', README); "
        "with stresses fitted, beside the fitted constant offset of the DFT stresses (ASE sign). "
        "GAP and MTP: the paper's printed test MAEs; where the published MTP was scored here "
        "(`--published-mtp`), its measured MAE, the printed one in parentheses, and the force MAE "
        "on the hottest test snapshots (the group with the largest mean |F|) of ours / MTP. "
        "'beats best': below the better of GAP and MTP, measured where measured, else as printed",
        "",
        f"| element | {name} E (meV/atom) | GAP E | MTP E | {name} F (eV/Å) | GAP F | MTP F | beats best E | beats best F | F hottest, {name} / MTP | validation stress MAE (GPa) | C11 / C12 / B (GPa) | DFT C11 / C12 / B | fit time (s) | µs/atom·step (matbrain / raw engine) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        el = s["elements"][0]
        pub = PUBLISHED[el]
        test = s["metrics"]["test"]
        e, f = test["energy_meV_per_atom"]["mae"], test["forces_eV_per_A"]["mae"]
        mtp_e, mtp_f = pub["mtp_e"], pub["mtp_f"]
        mtp_e_text, mtp_f_text = str(mtp_e), str(mtp_f)
        hottest = ""
        if "published_mtp" in s:
            measured = s["published_mtp"]["metrics"]
            mtp_e = measured["energy_meV_per_atom"]["mae"]
            mtp_f = measured["forces_eV_per_A"]["mae"]
            mtp_e_text, mtp_f_text = (
                f"{mtp_e:.3f} ({pub['mtp_e']})",
                f"{mtp_f:.4f} ({pub['mtp_f']})",
            )
            ours_hot = hottest_forces(s.get("force_breakdown", []))
            theirs_hot = hottest_forces(s["published_mtp"]["force_breakdown"])
            if ours_hot is not None and theirs_hot is not None:
                hottest = f"{ours_hot:.4f} / {theirs_hot:.4f}"
        best_e, best_f = min(pub["gap_e"], mtp_e), min(pub["gap_f"], mtp_f)
        timing = s.get("inference")
        speed = (f"{timing['matbrain_us_per_atom_step']:.0f} / {timing['raw_us_per_atom_step']:.0f} "
                 f"({100 * timing['overhead']:+.1f} %)") if timing else ""  # fmt: skip
        stress_text = _validation_stress(s)
        elastic = s.get("elastic")
        elastic_text = (f"{elastic['C11']:.0f} / {elastic['C12']:.0f} / {elastic['B']:.0f}"
                        if elastic else "")  # fmt: skip
        dft = dft_cubic_elastic(el, Path(args.data))
        dft_text = (
            f"{dft['C11']:.0f} / {dft['C12']:.0f} / {dft['B']:.0f} ({dft['structures']} cells)"
        )
        # strictly below the published value as printed (two decimals for forces)
        if "untouched" in s:
            u = s["untouched"]
            el = (f"{el} (untouched: {u['energy_meV_per_atom']['mae']:.1f} meV/atom, "
                  f"{u['forces_eV_per_A']['mae']:.3f} eV/Å)")  # fmt: skip
        lines.append(
            f"| {el} | {e:.2f} | {pub['gap_e']} | {mtp_e_text} | {f:.4f} | {pub['gap_f']} | "
            f"{mtp_f_text} | {'yes' if e < best_e else 'no'} | "
            f"{'yes' if f < best_f else 'no'} | {hottest} | {stress_text} | {elastic_text} | {dft_text} | "
            f"{s['seconds']:.0f} | {speed} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithm", default="ace", choices=["ace", "mace", *UNIVERSAL])
    parser.add_argument("--element", default="Si", choices=ELEMENTS)
    parser.add_argument("--all", action="store_true", help="all four elements")
    parser.add_argument("--level", default="std")
    parser.add_argument("--epochs", type=int, default=None, help="override the level's epochs")
    parser.add_argument("--lr", type=float, default=None, help="override the level's lr")
    parser.add_argument("--batch-size", type=int, default=None, help="override the level's batch")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--swa", action="store_true", help="MACE's stage two (energy weight up)")
    parser.add_argument("--functions", type=int, default=None, help="ACE: functions per element")
    parser.add_argument("--cutoff", type=float, default=None, help="ACE: cutoff (Å)")
    parser.add_argument(
        "--solver", default=None, choices=["linear", "pacemaker", "linear+pacemaker"]
    )
    parser.add_argument("--max-iter", type=int, default=None, help="ACE pacemaker iterations")
    parser.add_argument("--kappa", type=float, default=None, help="ACE pacemaker force share")
    parser.add_argument(
        "--pacemaker-batch",
        type=int,
        default=None,
        help="ACE pacemaker: structures per batch (memory; default 100)",
    )
    parser.add_argument("--nradmax", type=int, nargs="+", default=None,
                        help="ACE: radial functions per body order, e.g. 20 10 6 4 2")  # fmt: skip
    parser.add_argument("--lmax", type=int, nargs="+", default=None,
                        help="ACE: max l per body order, e.g. 0 5 4 3 2")  # fmt: skip
    parser.add_argument("--with-stress", action="store_true",
                        help="fit the training stresses too (linear ACE, MACE)")  # fmt: skip
    parser.add_argument("--no-timing", action="store_true",
                        help="skip the inference timing and elastic constants")  # fmt: skip
    parser.add_argument(
        "--train-subset",
        type=int,
        default=None,
        help="train on N structures of the training split (fine-tuning use case)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(MLEARN))
    parser.add_argument("--out", default="bench/out/mlearn")
    parser.add_argument(
        "--results", default=None, help="default bench/results/mlearn_<algorithm>_<level>.md"
    )
    parser.add_argument(
        "--published-mtp",
        default=None,
        help="folder of the published mlearn MTPs as <element>.mtp (bench/published_mtp.py): "
        "scored on the same test frames, beside ours",
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    elements = ELEMENTS if args.all else (args.element,)
    rows = [run_element(el, args) for el in elements]
    if args.published_mtp:
        rows = [with_published_mtp(row, args) for row in rows]
    text = report(rows, args)
    args.results = args.results or f"bench/results/mlearn_{args.algorithm}_{args.level}.md"
    print(text)
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(text + "\n")
    Path(args.results).with_suffix(".json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    from matbrain.cli.common import exit_on_sigterm

    exit_on_sigterm()  # `kill` stops MACE's trainer too
    main()
