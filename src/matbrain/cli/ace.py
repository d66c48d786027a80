"""``matbrain ace train`` (also ``mlip-auto train``) and ``matbrain loop run|status|example``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from matbrain.cli.common import EXPECTED_ERRORS, console, exit_on_sigterm, fail, print_table
from matbrain.potentials.ace.config import AceTrainingConfig

_ACE = AceTrainingConfig()  # the defaults, shown in --help

ace_app = typer.Typer(
    help="ACE potentials with pacemaker. Example: matbrain ace train --db al.db",
    no_args_is_help=True,
)
loop_app = typer.Typer(
    help="The active-learning loop. Example: matbrain loop run --config al.yaml",
    no_args_is_help=True,
)


def _live_progress(max_iter: int):
    """A rich progress bar over pacemaker iterations, fed with log points; in a log file (no
    terminal) one full line per validation report instead of a bar cut to 80 columns."""
    import contextlib

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if not console.is_terminal:

        def on_line(p) -> None:
            if p.split == "valid":
                typer.echo(f"pacemaker iteration {min(p.iteration, max_iter)}/{max_iter}: validation "
                           f"RMSE E {p.rmse_energy_meV_per_atom:.2f} meV/atom, "
                           f"F {p.rmse_forces_eV_per_A:.4f} eV/Å")  # fmt: skip

        return contextlib.nullcontext(), on_line

    progress = Progress(TextColumn("pacemaker"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console)  # fmt: skip
    task = progress.add_task("fit", total=max_iter, info="")
    last = {"train": "", "valid": ""}

    def on_point(p) -> None:
        last[p.split] = (
            f"{p.split} E {p.rmse_energy_meV_per_atom:.1f} meV/at F {p.rmse_forces_eV_per_A:.3f} eV/Å"
        )
        progress.update(
            task,
            completed=min(p.iteration, max_iter),
            info="  ".join(v for v in last.values() if v),
        )

    return progress, on_point


@ace_app.command("train")
def train_cmd(
    db: Annotated[str, typer.Option("--db", help="the store: SQLite file or postgresql:// URL")],
    potentials: Annotated[Path | None, typer.Option(help="folder of versioned potentials (default: potentials/ beside the database)")] = None,
    workdir: Annotated[Path | None, typer.Option(help="where pacemaker runs (default: ace_fits/ beside the database)")] = None,
    max_iter: Annotated[int | None, typer.Option("--max-iter", help=f"pacemaker iterations (default {_ACE.max_iter})")] = None,
    generations: Annotated[list[int] | None, typer.Option("--generations", help="only these generations (repeat)")] = None,
    cutoff: Annotated[float | None, typer.Option("--cutoff", help=f"radial cutoff in Å (default {_ACE.cutoff_A})")] = None,
    functions: Annotated[int | None, typer.Option("--functions", help=f"basis functions per element (default {_ACE.functions_per_element})")] = None,
    kappa: Annotated[float | None, typer.Option(help=f"force share of the loss, 0..1 (default {_ACE.kappa})")] = None,
    patience: Annotated[int | None, typer.Option(help=f"early-stopping patience in validation reports, 0: off (default {_ACE.early_stopping_patience})")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML of ACE training settings (the 'ace' block of al.yaml)")] = None,
) -> None:  # fmt: skip
    """Fit ACE on the labelled structures of the store and publish potentials/potential_gen_NN.yace.

    The fit follows pacemaker's log live, stops early when the validation error rises while the
    training error falls, and writes the .yace, .yaml, active set .asi and a metrics JSON as the
    next version (never overwriting one). Ctrl-C (or SIGTERM) stops pacemaker and publishes the
    best potential of the iterations done. Energies of the .yace are in the frame of the DFT data
    (pacemaker's reference energies are written into it). The defaults take ~10 min for ~200
    structures on 2 cores; for the most accurate potential of a fixed set use
    `matbrain potential train --algorithm ace` (linear ACE, minutes).

    Example: matbrain ace train --db al.db --max-iter 200
    """
    import yaml

    from matbrain.active.ace_training import train_from_store
    from matbrain.potentials.ace.config import AceTrainingConfig

    is_url = db.startswith(("postgresql://", "postgres://"))
    if not is_url and not Path(db).exists():
        fail(FileNotFoundError(f"database not found: {db}"))
    beside = Path(".") if is_url else Path(db).resolve().parent
    potentials = potentials or beside / "potentials"
    workdir = workdir or beside / "ace_fits"
    try:
        if config and not config.exists():
            raise FileNotFoundError(f"config not found: {config}")
        base = yaml.safe_load(config.read_text()) if config else {}
        flags = {"max_iter": max_iter, "cutoff_A": cutoff, "functions_per_element": functions,
                 "kappa": kappa, "early_stopping_patience": patience}  # fmt: skip
        overrides: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
        if overrides.get("early_stopping_patience") == 0:
            overrides["early_stopping_patience"] = None
        cfg = AceTrainingConfig(**{**(base or {}), **overrides})
        progress, on_point = _live_progress(cfg.max_iter)
        with progress:
            version = train_from_store(db, cfg, potentials, workdir, generations=generations,
                                       on_point=on_point)  # fmt: skip
    except EXPECTED_ERRORS as exc:
        fail(exc)
    except Exception as exc:  # pydantic errors and pacemaker failures
        fail(exc)
    m = version.metrics()
    for split in ("train", "valid"):
        if split in m:
            s = m[split]
            at = min(
                s["iteration"], m["training_config"]["max_iter"]
            )  # pacemaker's last report is max+1
            console.print(f"{split:5s} RMSE: energy {s['rmse_energy_meV_per_atom']:.2f} meV/atom, "
                          f"forces {s['rmse_forces_eV_per_A']:.4f} eV/Å (iteration {at})")  # fmt: skip
    if m.get("stopped_early"):
        console.print(f"stopped early: {m['stopped_early']}")
    console.print(
        f"potential: {version.yace} (+ .yaml, .asi, .json); learning curve: {m['learning_curve']}"
    )


@loop_app.command("run")
def run_cmd(
    config: Annotated[Path, typer.Option(help="al.yaml (see: matbrain loop example)")],
) -> None:
    """Run (or resume) the active-learning loop: label, fit ACE, sample MD, select, label, ...

    Interrupt it at any time; the same command goes on where it stopped. The per-generation table
    is printed at the end and written to WORKDIR/generations.md and .csv.

    Example: matbrain loop run --config al.yaml
    """
    from matbrain.active.loop import ActiveLearningLoop
    from matbrain.active.loop_config import load_loop_config

    try:
        cfg = load_loop_config(config)

        def report(p) -> None:
            if p.split == "valid":
                console.print(f"  pacemaker iteration {p.iteration}: validation RMSE E "
                              f"{p.rmse_energy_meV_per_atom:.2f} meV/atom, F "
                              f"{p.rmse_forces_eV_per_A:.4f} eV/Å", highlight=False)  # fmt: skip

        loop = ActiveLearningLoop(
            cfg,
            echo=lambda line: console.print(line, highlight=False, markup=False),
            on_point=report,
        )
        rows = loop.run()
    except EXPECTED_ERRORS as exc:
        fail(exc)
    _print_table(rows)


@loop_app.command("status")
def status_cmd(config: Annotated[Path, typer.Option(help="al.yaml")]) -> None:
    """The per-generation table and the steps done so far.

    Example: matbrain loop status --config al.yaml
    """
    from matbrain.active.generations import generation_table
    from matbrain.active.loop import LoopState
    from matbrain.active.loop_config import load_loop_config
    from matbrain.active.store import LabelStore

    try:
        cfg = load_loop_config(config)
    except EXPECTED_ERRORS as exc:
        fail(exc)
    work = Path(cfg.workdir)
    state = LoopState(work / "state.json")
    console.print(f"steps done: {', '.join(state.data['done']) or 'none'}")
    if state.data.get("stopped"):
        console.print(f"stopped: {state.data['stopped']}")
    _print_table(generation_table(work, LabelStore(cfg.db)))


@loop_app.command("example")
def example_cmd() -> None:
    """Print an example al.yaml (GPAW oracle, two generations).

    Example: matbrain loop example > al.yaml
    """
    from matbrain.active.loop_config import EXAMPLE_CONFIG

    typer.echo(EXAMPLE_CONFIG, nl=False)


def _print_table(rows) -> None:
    from rich.table import Table

    from matbrain.active.generations import COLUMNS, format_cell

    table = Table(*(h for _, h in COLUMNS), title="active learning, per generation")
    for row in rows:
        table.add_row(*(format_cell(row.get(k), k) for k, _ in COLUMNS))
    print_table(table)


# `mlip-auto train ...` for users of that name: the same command
mlip_auto = typer.Typer(
    help="ACE potentials with pacemaker (matbrain's ace commands).", no_args_is_help=True
)
mlip_auto.command("train")(train_cmd)


@mlip_auto.callback()
def _mlip_auto_group() -> None:
    """ACE potentials with pacemaker. Example: mlip-auto train --db al.db"""


def mlip_auto_main() -> None:
    exit_on_sigterm()
    mlip_auto()
