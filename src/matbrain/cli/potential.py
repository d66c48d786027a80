"""``matbrain potential ...`` and ``matbrain relax``: interatomic potentials on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from matbrain.cli.common import EXPECTED_ERRORS, console, err, fail, print_table, split_names
from matbrain.potentials.levels import ace_levels_table, mace_levels_table

if TYPE_CHECKING:
    from matbrain.potentials.config import AceTrainConfig, MaceTrainConfig

potential_app = typer.Typer(
    help="Interatomic potentials (ACE, MACE; fine-tuning of MACE, CHGNet, SevenNet): train, "
    "fine-tune, evaluate.\n\n"
    "Example: matbrain potential train --algorithm mace --level smoke --data train.xyz --prepare-data",
    no_args_is_help=True,
)

TRAIN_HELP = f"""Train a potential into models/<algorithm>/run_*/ with the engine's own trainer.

--algorithm ace: python-ace's linear least squares (default; energy weight and ridge strength
chosen on the validation split; with --with-stress the stresses too) or --solver pacemaker (its
nonlinear fit of energies and forces). --algorithm mace:
mace-torch's run_train. Energies of every model are in the frame of the data (per-element E0s).

DATA is an extxyz file or folder, an ASE database (.db or postgresql://), or JARVIS dft_3d
('jarvis' = bundled subset, 'dft_3d' = online; energies only). With --prepare-data it is split
into training and validation (--valid-fraction, default 0.1); nothing is held back as a test
set unless --test-fraction is given (score a separate test file with `potential eval`).

MACE levels (--competition = the competition profile; --epochs/--lr/--batch-size/--r-max override):

{mace_levels_table()}

ACE levels (--functions/--cutoff override; iter. = pacemaker iterations):

{ace_levels_table()}

Example: matbrain potential train --algorithm ace --level std --data Si.xyz --prepare-data --elements Si --with-forces
"""

RESUME_HELP = (
    "continue the latest unfinished run of this kind (MACE restarts from its last checkpoint)"
)

# options shared by `potential train` and `potential finetune`
EnergyKey = Annotated[str | None, typer.Option(help="energy label key in DATA (default energy)")]
ForcesKey = Annotated[str | None, typer.Option(help="forces label key (default forces)")]
StressKey = Annotated[str | None, typer.Option(help="stress label key (default stress)")]
Dtype = Annotated[str | None, typer.Option(help="float64 | float32")]
Device = Annotated[str | None, typer.Option(help="auto | cpu | cuda")]
Seed = Annotated[int | None, typer.Option(help="split and training seed (default 0)")]
OutputRoot = Annotated[str | None, typer.Option(help="where run folders go (default models/)")]
Resume = Annotated[bool, typer.Option("--resume", help=RESUME_HELP)]
Quiet = Annotated[bool, typer.Option("--quiet", help="no progress bar")]


def _data_options(
    data: str | None, resume: bool, config: Path | None, elements: list[str] | None,
    with_forces: bool | None, with_stress: bool | None,
    energy_key: str | None, forces_key: str | None, stress_key: str | None,
) -> dict[str, object]:  # fmt: skip
    """The data flags as overrides (``None``: not given, the YAML or the default decides)."""
    from matbrain.common.layering import read_config_yaml

    if data is None and not resume and "data" not in read_config_yaml(config):
        raise ValueError(
            "--data is required (or a `data:` key in --config; --resume reuses the run's data)"
        )
    return {
        "data": "" if data is None and resume else data,
        "elements": split_names(elements),
        "with_forces": with_forces,
        "with_stress": with_stress,
        "energy_key": energy_key,
        "forces_key": forces_key,
        "stress_key": stress_key,
    }


def _run(cfg, resume: bool, prepare: bool, quiet: bool, given: dict | None = None) -> None:
    from matbrain.common.layering import given as only_given
    from matbrain.common.resume import refuse_changed_config
    from matbrain.potentials.ace.fit import PacemakerFailed
    from matbrain.potentials.backends import run_group
    from matbrain.potentials.mace_runner import MaceFailed
    from matbrain.potentials.pipeline import latest_unfinished_potential_run, train_potential

    given = only_given(given)
    try:
        run_dir = None
        if resume:
            run_dir = latest_unfinished_potential_run(Path(cfg.output_root), run_group(cfg))
            if run_dir is None:
                raise FileNotFoundError(
                    f"no unfinished {run_group(cfg)} run under {cfg.output_root}/ to resume"
                )
            saved = type(cfg).from_yaml(run_dir / "config.yaml")
            # the flags given with --resume must agree with the run's config
            flags = {k: v for k, v in given.items() if k != "data" or v}
            refuse_changed_config(run_dir / "config.yaml", {**saved.model_dump(), **flags},
                                  f"run {run_dir}", may_change=("epochs",))  # fmt: skip
            cfg = (
                saved.model_copy(update={"epochs": flags["epochs"]}) if "epochs" in flags else saved
            )
            console.print(f"resuming {run_dir}")
        result = train_potential(
            cfg,
            run_dir=run_dir,
            prepare=prepare,
            progress=not quiet,
            echo=lambda text: console.print(text, highlight=False),
        )
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: MACE's last checkpoint is kept; continue with --resume")
        raise typer.Exit(code=130) from None
    except (*EXPECTED_ERRORS, MaceFailed, PacemakerFailed) as exc:
        fail(exc)
    console.print(f"\nrun folder: {result.run_dir}\nmodel: {result.model_path}")
    console.print(result.table(), highlight=False)


@potential_app.command("train", help=TRAIN_HELP)
def train_cmd(
    data: Annotated[str | None, typer.Option(help="extxyz file/folder, ASE db, or jarvis/dft_3d")] = None,
    algorithm: Annotated[str, typer.Option(help="ace | mace (fine-tuning of chgnet, sevennet: potential finetune)")] = "mace",
    level: Annotated[str | None, typer.Option(help="smoke | lite | std | pro | max (default smoke)")] = None,
    solver: Annotated[str | None, typer.Option(help="ACE: linear (default) | pacemaker | linear+pacemaker")] = None,
    functions: Annotated[int | None, typer.Option(help="ACE: basis functions per element")] = None,
    cutoff: Annotated[float | None, typer.Option(help="ACE: radial cutoff (Å)")] = None,
    swa: Annotated[bool | None, typer.Option("--swa/--no-swa", help="MACE: stage two (SWA, high energy weight) over the last 20 %% of epochs")] = None,
    energy_weight: Annotated[float | None, typer.Option(help="MACE: energy weight (default 1); ACE linear: energy row weight (default: chosen on validation)")] = None,
    forces_weight: Annotated[float | None, typer.Option(help="MACE: forces weight (default 100)")] = None,
    stress_weight: Annotated[float | None, typer.Option(help="with --with-stress; MACE: stress weight (default 1); ACE linear: weight of stress components in GPa (default: chosen on validation)")] = None,
    devices: Annotated[int | None, typer.Option(help="MACE: GPUs for mace-torch's data-parallel training")] = None,
    valid_fraction: Annotated[float | None, typer.Option(help="share of DATA for validation (default 0.1)")] = None,
    test_fraction: Annotated[float | None, typer.Option(help="share of DATA held back as a test set (default 0)")] = None,
    competition: Annotated[bool, typer.Option("--competition", help="the competition profile")] = False,
    prepare_data: Annotated[bool, typer.Option("--prepare-data", help="convert DATA into MACE's split training files")] = False,
    elements: Annotated[list[str] | None, typer.Option(help="keep only structures of these elements, e.g. Bi,Se,Te")] = None,
    with_forces: Annotated[bool | None, typer.Option("--with-forces/--without-forces", help="fit forces (the data must have them; default: fit them)")] = None,
    with_stress: Annotated[bool | None, typer.Option("--with-stress/--without-stress", help="fit stress (the data must have it; default: no)")] = None,
    energy_key: EnergyKey = None,
    forces_key: ForcesKey = None,
    stress_key: StressKey = None,
    max_structures: Annotated[int | None, typer.Option(help="fixed-seed random subset (quick runs)")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML of config keys (over the level)")] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option(help="MACE: batch size; ACE with pacemaker: structures per batch (default 100; lower it when memory runs out)")] = None,
    r_max: Annotated[float | None, typer.Option(help="cutoff radius (Å)")] = None,
    dtype: Dtype = None,
    device: Device = None,
    seed: Seed = None,
    output_root: OutputRoot = None,
    resume: Resume = False,
    quiet: Quiet = False,
) -> None:  # fmt: skip
    from matbrain.potentials.config import resolve_ace_config, resolve_mace_config

    try:
        if algorithm not in ("mace", "ace"):
            raise ValueError(
                f"unknown potential algorithm {algorithm!r}; valid: ace, mace (fine-tune chgnet, "
                "sevennet or a MACE model with: matbrain potential finetune --base-model ...)"
            )
        overrides: dict[str, Any] = {
            **_data_options(
                data,
                resume,
                config,
                elements,
                with_forces,
                with_stress,
                energy_key,
                forces_key,
                stress_key,
            ),  # fmt: skip
            "level": "competition" if competition else level,
            "max_structures": max_structures,
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "valid_fraction": valid_fraction,
            "test_fraction": test_fraction,
            "energy_weight": energy_weight,
            "stress_weight": stress_weight,
            "dtype": dtype,
            "device": device,
            "seed": seed,
            "output_root": output_root,
        }
        if algorithm == "ace":
            for flag, value in {"--epochs": epochs, "--lr": lr, "--r-max": r_max, "--swa": swa,
                                "--forces-weight": forces_weight, "--devices": devices}.items():  # fmt: skip
                if value is not None:
                    raise ValueError(
                        f"{flag} is a MACE option; ACE takes --functions, --cutoff, --solver"
                    )
            ace = {"solver": solver, "functions_per_element": functions, "cutoff_A": cutoff}
            overrides = {**overrides, **ace}
            ace_cfg = resolve_ace_config(level, config, overrides)
            if batch_size is not None and ace_cfg.solver == "linear":
                raise ValueError(
                    "--batch-size with --algorithm ace sets pacemaker's batch: it needs "
                    "--solver pacemaker or linear+pacemaker"
                )
            cfg: AceTrainConfig | MaceTrainConfig = ace_cfg
        else:
            for flag, option in {
                "--solver": solver,
                "--functions": functions,
                "--cutoff": cutoff,
            }.items():
                if option is not None:
                    raise ValueError(f"{flag} is an ACE option; MACE takes --r-max, --epochs, ...")
            mace = {
                "r_max_A": r_max,
                "swa": swa,
                "forces_weight": forces_weight,
                "devices": devices,
            }
            overrides = {**overrides, **mace}
            cfg = resolve_mace_config(level, config, overrides)
    except EXPECTED_ERRORS as exc:
        fail(exc)
    _run(cfg, resume, prepare_data, quiet, overrides)


@potential_app.command("finetune")
def finetune_cmd(
    data: Annotated[str | None, typer.Option(help="small labelled set: extxyz file/folder or ASE db")] = None,
    base_model: Annotated[str | None, typer.Option(help="chgnet or sevennet (offline, their own trainers), MACE-MP-0[:small|medium|large] (online) or a local MACE .model / run folder (default MACE-MP-0:small)")] = None,
    elements: Annotated[list[str] | None, typer.Option(help="keep only structures of these elements")] = None,
    with_stress: Annotated[bool | None, typer.Option("--with-stress/--without-stress", help="fit stress too (default: no)")] = None,
    energy_key: EnergyKey = None,
    forces_key: ForcesKey = None,
    stress_key: StressKey = None,
    config: Annotated[Path | None, typer.Option(help="YAML of config keys")] = None,
    epochs: Annotated[int | None, typer.Option(help="default 50")] = None,
    batch_size: Annotated[int | None, typer.Option(help="default 4")] = None,
    lr: Annotated[float | None, typer.Option(help="default: MACE 0.01, CHGNet 1e-3, SevenNet 3e-4")] = None,
    energy_weight: Annotated[float | None, typer.Option(help="default 1")] = None,
    forces_weight: Annotated[float | None, typer.Option(help="default 100")] = None,
    dtype: Dtype = None,
    device: Device = None,
    seed: Seed = None,
    output_root: OutputRoot = None,
    resume: Resume = False,
    quiet: Quiet = False,
) -> None:  # fmt: skip
    """Fine-tune a universal potential (CHGNet, SevenNet-0 offline; MACE-MP-0, any MACE model) on a few dozen DFT structures.

    Each engine's own trainer runs (mace-torch's run_train, chgnet's Trainer, sevenn). MACE's E0s come
    from the base model; CHGNet trains its per-element composition model, so energies move into
    the frame of your DFT. Tiny sets keep at least one validation structure and the batch never
    exceeds the training set.

    Example: matbrain potential finetune --base-model chgnet --data new_system.xyz --epochs 30
    """
    from matbrain.potentials.config import resolve_finetune_config

    try:
        overrides = {
            **_data_options(
                data,
                resume,
                config,
                elements,
                None,
                with_stress,
                energy_key,
                forces_key,
                stress_key,
            ),  # fmt: skip
            "base_model": base_model,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "energy_weight": energy_weight,
            "forces_weight": forces_weight,
            "dtype": dtype,
            "device": device,
            "seed": seed,
            "output_root": output_root,
        }
        cfg = resolve_finetune_config(config, overrides)
    except EXPECTED_ERRORS as exc:
        fail(exc)
    _run(cfg, resume, True, quiet, overrides)


@potential_app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option(help="MACE .model, ACE .yace, run folder, chgnet, sevennet, sevennet-l3i5, MACE-MP-0[:size]")],
    data: Annotated[str, typer.Option(help="labelled structures (extxyz file/folder, ASE db)")],
    output: Annotated[Path, typer.Option(help="folder for metrics.json and parity plots")] = Path("eval_output"),
    energy_key: Annotated[str, typer.Option()] = "energy",
    forces_key: Annotated[str, typer.Option()] = "forces",
    stress_key: Annotated[str, typer.Option()] = "stress",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
) -> None:  # fmt: skip
    """Energy, force and stress errors of any potential on labelled structures, with parity plots.

    Example: matbrain potential eval --model models/mace/run_x --data test.xyz
    """
    import json

    from matbrain.potentials.calculators import describe, load_potential
    from matbrain.potentials.data import LabelKeys, read_labelled
    from matbrain.potentials.evaluate import evaluate, format_metrics

    table = output / "structures.csv"  # evaluate makes the folder, after the inputs are checked
    try:
        frames = read_labelled(data, LabelKeys(energy_key, forces_key, stress_key))
        loaded = load_potential(model, device=device)
        result = evaluate(loaded.calc, frames, plots=(output, "eval"), table=table, progress=True)
    except EXPECTED_ERRORS as exc:
        fail(exc)
    (output / "metrics.json").write_text(json.dumps(
        {"potential": describe(loaded), "data": data, "metrics": result.metrics,
         "forces_by_group": result.groups},
        indent=2,
    ))  # fmt: skip
    console.print(format_metrics({"data": result.metrics}), highlight=False)
    if result.report:
        console.print(result.report, highlight=False)
    console.print(f"metrics, {len(result.plots)} parity plots and per-structure errors "
                  f"({table.name}) in {output}/")  # fmt: skip


@potential_app.command("runs")
def runs_cmd(
    root: Annotated[Path, typer.Option(help="folder with potentials.jsonl")] = Path("models"),
) -> None:
    """List trained and fine-tuned potentials with their test errors.

    Example: matbrain potential runs --root models
    """
    from rich.table import Table

    from matbrain.common.runs import read_registry
    from matbrain.potentials.pipeline import POTENTIAL_REGISTRY

    entries = read_registry(root, POTENTIAL_REGISTRY)
    if not entries:
        console.print(f"no potentials recorded under {root}/")
        return
    table = Table("finished", "algorithm", "kind", "level / base", "elements", "F", "S",
                  "scored on", "E MAE (meV/at)", "F MAE (eV/Å)", "run")  # fmt: skip
    for e in entries:
        scored = "test" if e["metrics"].get("test") else "valid"
        split = e["metrics"].get(scored) or {}
        energy = split.get("energy_meV_per_atom", {}).get("mae")
        forces = split.get("forces_eV_per_A", {}).get("mae")
        table.add_row(
            e["finished"],
            e.get("algorithm", "mace"),
            e["kind"],
            str(e.get("level") or Path(str(e.get("base_model"))).name),
            " ".join(e["elements"]),
            "yes" if e["with_forces"] else "no",
            "yes" if e["with_stress"] else "no",
            scored if split else "",
            f"{energy:.2f}" if energy is not None else "",
            f"{forces:.4f}" if forces is not None else "",
            str(e["path"]),
        )
    print_table(table)


def relax_cmd(
    structure: Annotated[Path, typer.Option(help="CIF, POSCAR or extxyz file")],
    model: Annotated[str, typer.Option(help="MACE .model, ACE .yace, run folder, chgnet, sevennet, sevennet-l3i5, MACE-MP-0[:size]")],
    fmax: Annotated[float, typer.Option(help="force tolerance (eV/Å)")] = 0.02,
    smax: Annotated[float, typer.Option(help="stress tolerance (GPa)")] = 0.1,
    max_steps: Annotated[int, typer.Option()] = 500,
    fix_cell: Annotated[bool, typer.Option("--fix-cell", help="relax positions only")] = False,
    optimizer: Annotated[str, typer.Option(help="FIRE | BFGS")] = "FIRE",
    output: Annotated[Path | None, typer.Option(help="output folder (default relaxed/<name>/)")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
) -> None:  # fmt: skip
    """Relax positions and cell with any potential; write the relaxed CIF, trajectory and report.

    Example: matbrain relax --structure examples/cifs/Si.cif --model chgnet
    """
    from matbrain.simulation.relax import OptimizerName, RelaxConfig, relax_file

    out = output or Path("relaxed") / structure.name.split(".")[0]
    try:
        if optimizer not in ("FIRE", "BFGS"):
            raise ValueError(f"unknown optimizer {optimizer!r}; valid: FIRE, BFGS")
        cfg = RelaxConfig(fmax, smax, max_steps, not fix_cell, cast(OptimizerName, optimizer))
        result = relax_file(structure, model, out, cfg, device=device)
    except EXPECTED_ERRORS as exc:
        fail(exc)
    console.print(result.report(), highlight=False)
    console.print(f"relaxed structure, trajectory and report in {out}/")
    if not result.converged:
        raise typer.Exit(code=1)
