"""``matbrain``: the command-line entry point (Typer). Commands validate options and call the library."""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from matbrain import __version__
from matbrain.cli.ace import ace_app, loop_app
from matbrain.cli.common import EXPECTED_ERRORS, console, err, exit_on_sigterm, print_table
from matbrain.cli.common import fail as _fail
from matbrain.cli.common import split_names as _split_names
from matbrain.cli.db import db_app
from matbrain.cli.potential import potential_app, relax_cmd
from matbrain.training.levels import levels_table, specialist_table

app = typer.Typer(
    help="matbrain: machine learning on crystals.\n\nExample: matbrain train --algorithm e3nn --level smoke --all-properties",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Datasets and graphs. Example: matbrain data process", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(potential_app, name="potential")
app.add_typer(db_app, name="db")
app.add_typer(ace_app, name="ace")
app.add_typer(loop_app, name="loop")
app.command("relax")(relax_cmd)


def _quiet_engine_warnings() -> None:
    """Warnings the engines print on every layer or every load, useless on a command line."""
    import warnings

    # e3nn scripts its modules with TorchScript on construction, which warns on every layer
    warnings.filterwarnings("ignore", message="The TorchScript type system", category=UserWarning)
    warnings.filterwarnings(
        "ignore",
        message="Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD",
        category=UserWarning,
    )


def _setup_logging(verbose: bool) -> None:
    _quiet_engine_warnings()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    level = logging.INFO if verbose else logging.WARNING
    for handler in logging.getLogger().handlers:  # the console; run logs keep their own level
        handler.setLevel(level)
    logging.getLogger("matbrain").setLevel(level)


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress details")] = False,
    version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False,
) -> None:
    if version:
        console.print(f"matbrain {__version__}")
        raise typer.Exit()
    _setup_logging(verbose)


@app.command("properties")
def properties_cmd() -> None:
    """List the nine predictable properties (name, JARVIS key, unit).

    Example: matbrain properties
    """
    from matbrain.properties import PROPERTIES

    table = Table("name", "JARVIS key", "unit", "description")
    for p in PROPERTIES:
        table.add_row(p.name, p.key, p.unit or "-", p.description)
    print_table(table)


@data_app.command("process")
def data_process(
    dataset: Annotated[
        str, typer.Option(help="bundled | dft_3d | a dft_3d JSON file | folder with id_prop.csv")
    ] = "bundled",
    properties: Annotated[
        list[str] | None, typer.Option(help="properties to load (default: all nine)")
    ] = None,
    cutoff: Annotated[float, typer.Option(help="neighbour cutoff (Å)")] = 6.0,
    max_neighbors: Annotated[int, typer.Option(help="neighbour cap per atom")] = 12,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="rebuild even when cached")] = False,
    shard_size: Annotated[
        int | None,
        typer.Option(
            help="write shards of N structures, one at a time (data larger than memory; "
            "train with graph_shard_size: N to stream from them)"
        ),
    ] = None,
) -> None:
    """Build every structure's periodic graph once (neighbours, edge vectors, bond angles) and cache it.

    Every later training run with the same structures and graph settings reuses the cache.

    Example: matbrain data process --dataset bundled --cutoff 6 --max-neighbors 12
    """
    if shard_size is not None:
        _process_shards(dataset, properties, cutoff, max_neighbors, shard_size)
        return
    from matbrain.data.cache import default_cache_dir, process_dataset
    from matbrain.data.graphs import GraphConfig
    from matbrain.data.sources import load_dataset
    from matbrain.properties import resolve_properties

    try:
        props = resolve_properties(_split_names(properties))
        ds = load_dataset(dataset, props)
        graphs = process_dataset(
            ds, GraphConfig(cutoff_A=cutoff, max_neighbors=max_neighbors), use_cache=not no_cache
        )
    except EXPECTED_ERRORS as exc:
        _fail(exc)
    n_edges = sum(len(g.center) for g in graphs.graphs.values())
    n_trip = sum(len(g.triplet_a) for g in graphs.graphs.values())
    console.print(
        f"{len(graphs.graphs)} graphs ({n_edges} edges, {n_trip} bond angles), {len(graphs.skipped)} skipped; "
        f"{'reused' if graphs.from_cache else 'written to'} cache {default_cache_dir()}/graphs-{graphs.key}.npz"
    )
    for sid, reason in graphs.skipped.items():
        console.print(f"  skipped {sid}: {reason}")
    console.print(
        "labels per property: " + ", ".join(f"{k} {v}" for k, v in ds.label_counts().items())
    )


TRAIN_HELP = f"""Train a multi-task model, or a specialist (--property), and write a run folder.

Algorithms: e3nn, cgcnn (graph networks trained from scratch); chgnet, sevennet (SevenNet-0),
sevennet-l3i5 (heads on a frozen universal potential whose weights ship in its wheel: offline;
sevennet-l3i5 with --composition-kernel on is the most accurate on formation energy);
chgnet+sevennet, chgnet+sevennet-l3i5 (heads on CHGNet and a SevenNet at once; the latter is the
demo's model); mace (heads on a local MACE model, --base-model FILE).

Layering: package defaults < level < --config YAML < flags.

Multi-task levels, e3nn:
{levels_table("e3nn")}

Multi-task levels, cgcnn:
{levels_table("cgcnn")}

Multi-task levels, chgnet / sevennet[-l3i5] / chgnet+sevennet[-l3i5] / mace (heads only;
epochs a ceiling):
{levels_table("chgnet")}

Specialist levels (one property; --competition selects the competition profile):
{specialist_table()}

Examples:
  matbrain train --algorithm e3nn --level smoke --all-properties
  matbrain train --algorithm chgnet --property formation_energy --level std
  matbrain train --algorithm e3nn --property band_gap --finetune-from models/multitask_std_e3nn/run_X
  matbrain train --dataset my_folder --target-name K_VRH --unit GPa --algorithm chgnet
"""


def _process_shards(
    dataset: str, properties: list[str] | None, cutoff: float, max_neighbors: int, shard_size: int
) -> None:
    from matbrain.data.graphs import GraphConfig
    from matbrain.data.shards import process_dataset_sharded
    from matbrain.data.sources import load_dataset
    from matbrain.properties import resolve_properties

    try:
        ds = load_dataset(dataset, resolve_properties(_split_names(properties)))
        config = GraphConfig(cutoff_A=cutoff, max_neighbors=max_neighbors)
        shards = process_dataset_sharded(ds, config, shard_size)
    except EXPECTED_ERRORS as exc:
        _fail(exc)
    console.print(
        f"{len(shards.ids)} graphs in {math.ceil(len(ds) / shard_size)} shards, "
        f"{len(shards.skipped)} skipped: {shards.folder}"
    )
    for sid, reason in shards.skipped.items():
        console.print(f"  skipped {sid}: {reason}")


@app.command("train", help=TRAIN_HELP)
def train_cmd(
    algorithm: Annotated[
        str | None,
        typer.Option(
            help="e3nn | cgcnn | chgnet | sevennet | sevennet-l3i5 | chgnet+sevennet | "
            "chgnet+sevennet-l3i5 | mace (default e3nn)"
        ),
    ] = None,
    level: Annotated[
        str | None, typer.Option(help="smoke | lite | std | pro | max (default smoke)")
    ] = None,
    competition: Annotated[
        bool, typer.Option("--competition", help="the specialist competition profile")
    ] = False,
    all_properties: Annotated[
        bool, typer.Option("--all-properties", help="train on all nine properties")
    ] = False,
    properties: Annotated[
        list[str] | None, typer.Option(help="property names, e.g. formation_energy,band_gap")
    ] = None,
    property: Annotated[
        str | None, typer.Option("--property", help="train one property: a specialist")
    ] = None,
    target_name: Annotated[
        str | None,
        typer.Option(help="your own target (folder dataset): its name, e.g. K_VRH"),
    ] = None,
    unit: Annotated[str | None, typer.Option(help="unit of --target-name, e.g. GPa")] = None,
    ema_decay: Annotated[float | None, typer.Option(help="EMA of the weights, e.g. 0.999")] = None,
    swa: Annotated[
        bool | None, typer.Option("--swa/--no-swa", help="stochastic weight averaging")
    ] = None,
    acc_steps: Annotated[
        int | None, typer.Option(help="gradient accumulation: batches per step")
    ] = None,
    outlier_sigma: Annotated[
        float | None, typer.Option(help="drop training targets beyond k robust std")
    ] = None,
    patience: Annotated[
        int | None, typer.Option(help="early stopping: epochs without improvement")
    ] = None,
    dropout: Annotated[float | None, typer.Option(help="dropout in the heads")] = None,
    loss: Annotated[str | None, typer.Option(help="mse | l1 | huber")] = None,
    weight_decay: Annotated[float | None, typer.Option()] = None,
    atom_features: Annotated[
        str | None,
        typer.Option(help="cgcnn/e3nn atoms start from: cgcnn (element descriptors) | learned"),
    ] = None,
    base_model: Annotated[
        str | None, typer.Option(help="--algorithm mace: a local MACE .model file")
    ] = None,
    backbone_mode: Annotated[
        str | None,
        typer.Option(help="chgnet/sevennet/mace: frozen (default) | finetune (chgnet, end to end)"),
    ] = None,
    backbone_layers: Annotated[
        str | None,
        typer.Option(
            help="chgnet/sevennet backbones: all (default; every message-passing layer's "
            "invariant features) | last (the last layers only, as models before 2026-12-06)"
        ),
    ] = None,
    composition_kernel: Annotated[
        str | None,
        typer.Option(
            help="every model: a kernel-ridge part on the composition and the crystal graph's "
            "bond and cell statistics (backbones: the composition only, unless on): auto "
            "(default; kept where a validation check says it helps: for graph networks "
            "formation energy, ehull and the moduli on JARVIS) | on | off"
        ),
    ] = None,
    finetune_from: Annotated[
        str | None, typer.Option(help="multi-task run folder or best.pt to start from")
    ] = None,
    freeze_encoder_epochs: Annotated[
        int | None, typer.Option(help="fine-tuning: encoder frozen for N epochs")
    ] = None,
    encoder_lr_factor: Annotated[
        float | None, typer.Option(help="fine-tuning: encoder lr = lr x this")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML with config keys (layered over the level)")
    ] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    preset: Annotated[str | None, typer.Option(help="small | medium | large")] = None,
    max_neighbors: Annotated[
        int | None, typer.Option(help="graph models: neighbour cap per atom (default 12)")
    ] = None,
    max_samples: Annotated[
        int | None, typer.Option(help="random fixed-seed subset of structures")
    ] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    dataset: Annotated[
        str | None, typer.Option(help="bundled | dft_3d | JSON file | folder")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="auto | leaderboard | leaderboard-overlap | random")
    ] = None,
    output_root: Annotated[
        str | None, typer.Option(help="where run folders go (default models/)")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    graph_shard_size: Annotated[
        int | None,
        typer.Option(help="stream graphs from shards of N structures (data larger than memory)"),
    ] = None,
    devices: Annotated[
        int,
        typer.Option(help="data-parallel processes per node (DDP: GPUs, or CPU processes)"),
    ] = 1,
    num_nodes: Annotated[int, typer.Option(help="nodes for DDP (same command on each)")] = 1,
    rdzv_endpoint: Annotated[
        str | None, typer.Option(help="several nodes: HOST:PORT every node reaches")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="continue the latest unfinished run of this algorithm/level/properties"
        ),
    ] = False,
    resume_run: Annotated[Path | None, typer.Option(help="continue this run folder")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    from matbrain.common.runs import latest_unfinished_run
    from matbrain.training import distributed
    from matbrain.training.config import TrainConfig, resolve_config
    from matbrain.training.pipeline import run_training

    if devices * num_nodes > 1 and not distributed.launched_by_torchrun():
        argv = distributed.without_launch_options(sys.argv[1:])
        try:
            code = distributed.relaunch(argv, devices, num_nodes, rdzv_endpoint)
        except ValueError as exc:
            _fail(exc)
        raise typer.Exit(code=code)
    try:
        names = _split_names(properties)
        given = [bool(all_properties), bool(names), property is not None, target_name is not None]
        if sum(given) > 1:
            raise ValueError(
                "give one of --all-properties, --properties, --property or --target-name"
            )
        if property is not None:
            names = [property]
        if unit is not None and target_name is None:
            target_name = _header_target(dataset)
        if target_name is not None:
            names = [target_name]
            if unit is None:
                raise ValueError(f'give the unit of {target_name!r} with --unit ("" if none)')
        overrides = {
            "properties": names,
            "target_unit": unit if target_name is not None else None,
            "ema_decay": ema_decay,
            "swa": swa,
            "acc_steps": acc_steps,
            "outlier_sigma": outlier_sigma,
            "patience": patience,
            "dropout": dropout,
            "loss": loss,
            "weight_decay": weight_decay,
            "atom_features": atom_features,
            "base_model": base_model,
            "finetune_from": finetune_from,
            "backbone_mode": backbone_mode,
            "backbone_layers": backbone_layers,
            "composition_kernel": composition_kernel,
            "freeze_encoder_epochs": freeze_encoder_epochs,
            "encoder_lr_factor": encoder_lr_factor,
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "preset": preset,
            "max_neighbors": max_neighbors,
            "max_samples": max_samples,
            "seed": seed,
            "dataset": dataset,
            "split": split,
            "output_root": output_root,
            "device": device,
            "graph_shard_size": graph_shard_size,
        }
        overrides["algorithm"] = algorithm
        overrides["level"] = "competition" if competition else level
        cfg = resolve_config("e3nn", "smoke", config, overrides)
        run_dir = None
        if resume_run is not None or resume:
            run_dir = resume_run or latest_unfinished_run(Path(cfg.output_root), cfg.run_group())
            if run_dir is None:
                raise FileNotFoundError(
                    f"no unfinished run of {cfg.run_group()} under {cfg.output_root}/ to resume"
                )
            if not (Path(run_dir) / "checkpoint.pt").exists():
                raise FileNotFoundError(f"{run_dir}: no checkpoint.pt to resume from")
            cfg = TrainConfig.from_yaml(Path(run_dir) / "config.yaml")
            console.print(f"resuming {run_dir}")
        result = run_training(cfg, run_dir=run_dir, progress=not quiet)
    except KeyboardInterrupt:
        err.print(
            "[yellow]interrupted[/]: the last finished epoch is saved; continue with --resume"
        )
        raise typer.Exit(code=130) from None
    except EXPECTED_ERRORS as exc:
        _fail(exc)
    if os.environ.get("RANK", "0") == "0":  # one report, not one per DDP process
        console.print(f"\nrun folder: {result.run_dir}")
        console.print(result.table(), soft_wrap=True, highlight=False)


def _header_target(dataset: str | None) -> str:
    """The one value column named by the header of a folder dataset's id_prop.csv."""
    from matbrain.data.folder import header_columns

    columns = header_columns(dataset) if dataset else None
    if not columns or len(columns) != 1:
        raise ValueError(
            "--unit names the unit of your own target: give its name with --target-name NAME "
            "(or a header row 'id,NAME' in id_prop.csv of the --dataset folder)"
        )
    return columns[0]


@app.command("predict")
def predict_cmd(
    model: Annotated[
        list[Path],
        typer.Option(
            help="run folder or its best.pt; repeat it for an ensemble (the mean of the models, "
            "and their spread as {property}_std columns)"
        ),
    ],
    cif: Annotated[
        Path | None, typer.Option(help="one structure file (CIF, POSCAR, extxyz)")
    ] = None,
    dir: Annotated[Path | None, typer.Option("--dir", help="folder of structure files")] = None,
    output: Annotated[
        Path | None, typer.Option(help="CSV to write (one row per structure)")
    ] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
) -> None:
    """Predict the model's properties for one structure (--cif) or a folder (--dir) into a CSV.

    Files that cannot be read are reported by name and skipped; the rest are predicted.

    Example: matbrain predict --model models/multitask_smoke_e3nn/run_X --dir cifs/ --output preds.csv

    Ensemble: --model RUN_A --model RUN_B ... (e.g. one property trained with several --seed).
    """
    from matbrain.inference import EnsemblePredictor, Predictor, structure_files

    try:
        if (cif is None) == (dir is None):
            raise ValueError("give exactly one of --cif FILE or --dir FOLDER")
        paths = [cif] if cif is not None else structure_files(cast(Path, dir))  # one is set
        predictor: Predictor | EnsemblePredictor = (
            Predictor.from_path(model[0], device=device)
            if len(model) == 1
            else EnsemblePredictor.from_paths(list(model), device=device)
        )
        result = predictor.predict_files(paths)
    except EXPECTED_ERRORS as exc:
        _fail(exc)
    for name, reason in result.skipped.items():
        err.print(f"[yellow]skipped[/] {name}: {reason}")
    if result.table.empty:
        _fail(ValueError("no structure could be predicted"))
    units = predictor.units()
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        result.table.to_csv(output, index=False, float_format="%.6g")
        console.print(
            f"wrote {len(result.table)} predictions to {output} ({len(result.skipped)} skipped)"
        )
    if cif is not None or output is None:
        for _, row in result.table.iterrows():
            console.print(f"[bold]{row['file']}[/] ({row['formula']})")
            for name in predictor.columns:
                spread = f" ± {row[name + '_std']:.4f}" if f"{name}_std" in row else ""
                console.print(f"  {name:<16} {row[name]:>12.4f}{spread} {units[name]}")


@app.command("runs")
def runs_cmd(
    root: Annotated[Path, typer.Option(help="folder with registry.jsonl")] = Path("models"),
    algorithm: Annotated[str | None, typer.Option(help="only runs of this algorithm")] = None,
    property: Annotated[
        str | None, typer.Option("--property", help="sort by this property's test MAE")
    ] = None,
) -> None:
    """List and compare recorded runs: test MAE per property side by side.

    Example: matbrain runs --root models --property formation_energy
    """
    from matbrain.common.runs import read_registry
    from matbrain.properties import PROPERTIES, get_property

    try:
        entries = read_registry(root)
        if property and not any(property in e["test_mae"] for e in entries):
            property = get_property(property).name
    except EXPECTED_ERRORS as exc:
        _fail(exc)
    if algorithm:
        entries = [e for e in entries if e["algorithm"] == algorithm]
    if not entries:
        console.print(f"no runs recorded under {root}/")
        return
    if property:
        entries.sort(key=lambda e: e["test_mae"].get(property, float("inf")))
    catalogue = [p.name for p in PROPERTIES]
    shown = [n for n in catalogue if any(n in e["test_mae"] for e in entries)]
    shown += sorted({n for e in entries for n in e["test_mae"] if n not in catalogue})
    units = {n: u for e in entries for n, u in e.get("units", {}).items()}
    table = Table(
        "finished",
        "algo",
        "kind",
        "level",
        "data",
        "split",
        "commit",
        *[f"{n} ({units[n]})" if units.get(n) else n for n in shown],
        "run",
        title=f"test MAE per property ({root}/)",
    )
    for e in entries:
        cells = [f"{e['test_mae'][n]:.4g}" if n in e["test_mae"] else "" for n in shown]
        path = Path(e["path"])
        kind = (
            "finetuned"
            if e.get("finetuned_from")
            else ("specialist" if len(e["test_mae"]) == 1 else "multitask")
        )
        data = str(e.get("dataset", ""))
        table.add_row(
            e["finished"],
            e["algorithm"],
            kind,
            e["level"],
            data if len(data) <= 24 else "…" + data[-23:],
            e["split"],
            (e.get("git_commit") or "")[:8],
            *cells,
            f"{path.parent.name}/{path.name}",
        )
    # a comparison table is wide: never squeeze it into an 80-column pipe
    Console(soft_wrap=True, width=max(console.width, 240)).print(table)


@app.command("matrix", context_settings={"allow_extra_args": True})
def matrix_cmd(
    ctx: typer.Context,
    tiers: Annotated[
        list[str] | None, typer.Option("--tiers", help="levels: --tiers lite std pro (default)")
    ] = None,
    algorithm: Annotated[
        list[str] | None, typer.Option("--algorithm", help="repeat for several (default e3nn)")
    ] = None,
    properties: Annotated[
        list[str] | None, typer.Option(help="properties (default: all nine)")
    ] = None,
    folder: Annotated[Path, typer.Option(help="matrix folder")] = Path("models/matrix"),
    epochs: Annotated[int | None, typer.Option(help="override every cell's epochs")] = None,
    max_samples: Annotated[int | None, typer.Option()] = None,
    dataset: Annotated[str | None, typer.Option()] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    """Train the model matrix: per tier and algorithm, nine specialists and one multi-task model.

    Resumable: finished cells are skipped, an interrupted cell resumes. Writes summary.csv,
    summary.md (test MAE per property and model) and heatmap.png (MAE/MAD) into the folder.

    Example: matbrain matrix --tiers lite std pro --algorithm e3nn --algorithm chgnet
    """
    from matbrain.training.matrix import run_matrix

    try:
        # `--tiers lite std pro`: the words after the first tier arrive as extra arguments
        tier_names = (_split_names(tiers) or []) + list(ctx.args) or ["lite", "std", "pro"]
        if any(a.startswith("-") for a in ctx.args):
            raise ValueError(f"unknown options: {' '.join(ctx.args)}")
        result = run_matrix(
            tier_names,
            _split_names(algorithm) or ["e3nn"],
            _split_names(properties),
            folder,
            overrides={"epochs": epochs, "max_samples": max_samples, "dataset": dataset},
            progress=not quiet,
        )
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: rerun the same command to continue the matrix")
        raise typer.Exit(code=130) from None
    except EXPECTED_ERRORS as exc:
        _fail(exc)
    console.print(
        f"matrix {folder}: {len(result.trained)} cells trained, {len(result.skipped)} already done"
    )
    summary = folder / "summary.md"
    if summary.exists():
        console.print(summary.read_text(), soft_wrap=True, highlight=False)
    console.print(f"heat map: {folder / 'heatmap.png'}")


def main() -> None:
    exit_on_sigterm()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
