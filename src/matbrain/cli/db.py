"""``matbrain db ...``: the labelled-structure store of active learning."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from matbrain.cli.common import EXPECTED_ERRORS, console, fail, print_table

db_app = typer.Typer(
    help="The labelled-structure store (ASE database). Example: matbrain db stats --db al.db",
    no_args_is_help=True,
)
DbOption = Annotated[str, typer.Option("--db", help="SQLite file or postgresql:// URL")]


@db_app.command("stats")
def stats_cmd(db: DbOption) -> None:
    """Counts by status and generation.

    Example: matbrain db stats --db al.db
    """
    from rich.table import Table

    from matbrain.active.store import STATUSES, LabelStore

    if not db.startswith(("postgresql://", "postgres://")) and not Path(db).exists():
        fail(FileNotFoundError(f"database not found: {db}"))
    store = LabelStore(db)
    table = Table("generation", *STATUSES, "total", title=db)
    for row in store.stats():
        table.add_row(*(str(row[k]) for k in ("generation", *STATUSES, "total")))
    print_table(table)
    for row_id, reason in store.failures()[:10]:
        console.print(f"failed row {row_id}: {reason}", highlight=False)


@db_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="extxyz file")],
    db: DbOption,
    generation: Annotated[int, typer.Option()] = 0,
    config_type: Annotated[str | None, typer.Option(help="default: the frame's config_type")] = None,
) -> None:  # fmt: skip
    """Import structures: labelled frames (energy + forces) as completed, the rest as pending.

    Example: matbrain db import seeds.xyz --db al.db
    """
    from matbrain.active.store import LabelStore
    from matbrain.active.transfer import import_extxyz

    try:
        report = import_extxyz(LabelStore(db), file, generation, config_type)
    except EXPECTED_ERRORS as exc:
        fail(exc)
    console.print(
        f"imported {report.completed} labelled, {report.pending} pending; "
        f"{report.duplicates} duplicates skipped"
    )


@db_app.command("export")
def export_cmd(
    db: DbOption,
    output: Annotated[Path, typer.Option(help="extxyz file to write")],
    generations: Annotated[list[int] | None, typer.Option(help="only these generations")] = None,
) -> None:  # fmt: skip
    """Export completed structures to extxyz (energy, forces, stress, config_type, generation).

    Example: matbrain db export --db al.db --output labelled.xyz
    """
    from matbrain.active.store import LabelStore
    from matbrain.active.transfer import export_extxyz

    if not db.startswith(("postgresql://", "postgres://")) and not Path(db).exists():
        fail(FileNotFoundError(f"database not found: {db}"))
    n = export_extxyz(LabelStore(db), output, generations)
    console.print(f"wrote {n} structures to {output}")


@db_app.command("label")
def label_cmd(
    db: DbOption,
    oracle: Annotated[str, typer.Option(help="gpaw | espresso | cp2k | emt (emt: tests only)")] = "gpaw",
    settings: Annotated[Path | None, typer.Option(help="YAML of oracle settings, e.g. cutoff_eV: 500")] = None,
    workers: Annotated[int, typer.Option(help="parallel worker processes (or Dask jobs)")] = 1,
    executor: Annotated[str, typer.Option(help="local (processes here) | dask (a Dask cluster) | slurm | pbs (Dask workers as batch jobs, dask-jobqueue)")] = "local",
    scheduler: Annotated[str | None, typer.Option(help="--executor dask: a running scheduler, tcp://host:port (default: a LocalCluster of --workers processes)")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="put failed structures back to pending first (e.g. after fixing the oracle settings)")] = False,
) -> None:  # fmt: skip
    """Label every pending structure with a DFT oracle; failures are recorded and skipped.

    Each worker leases one structure at a time, so labellers on many machines can share one
    store (PostgreSQL). Rerun after an interruption: a structure whose worker stopped is labelled
    again once its lease has run out, nothing labelled is touched. --retry-failed gives the
    failed ones another try (their error is cleared).

    Example: matbrain db label --db al.db --oracle gpaw --workers 2
    Example: matbrain db label --db postgresql://... --executor dask --scheduler tcp://head:8786 --workers 16
    """
    import yaml

    from matbrain.active.labelling import label_pending

    try:
        options: dict[str, Any] = {}
        if settings is not None:
            if not settings.exists():
                raise FileNotFoundError(f"settings file not found: {settings}")
            options = yaml.safe_load(settings.read_text()) or {}
        retried = 0
        if retry_failed:
            from matbrain.active.store import LabelStore

            retried = LabelStore(db).requeue_failed()
        report = label_pending(db, oracle, options, workers=workers, executor=executor,
                               scheduler=scheduler, echo=console.print)  # fmt: skip
    except EXPECTED_ERRORS as exc:
        fail(exc)
    console.print(
        (f"{retried} failed structures back to pending; " if retried else "")
        + f"labelled {report.completed}, failed {report.failed}"
        + (f" ({report.requeued} interrupted structures relabelled)" if report.requeued else "")
    )


@db_app.command("init")
def init_cmd(
    db: DbOption,
    seed: Annotated[list[str], typer.Option("--seed", help="structure file or JARVIS id (repeat)")],
    rattled: Annotated[int, typer.Option(help="rattled copies per seed")] = 8,
    rattle: Annotated[float, typer.Option(help="rattle amplitude (Å)")] = 0.05,
    random_strains: Annotated[int, typer.Option(help="randomly strained copies per seed")] = 4,
    supercell: Annotated[str, typer.Option(help="repeat the seeds, e.g. 2,2,2")] = "1,1,1",
    vacancies: Annotated[bool, typer.Option("--vacancies", help="add single-vacancy variants")] = False,
    random_seed: Annotated[int, typer.Option()] = 0,
) -> None:  # fmt: skip
    """Write the initial set (seed, rattled, strained, optionally vacancy variants) as pending.

    Example: matbrain db init --db al.db --seed Si.cif --seed JVASP-1002 --supercell 2,2,2
    """
    from matbrain.active.initial import InitialSetConfig, add_initial_set, read_seeds
    from matbrain.active.store import LabelStore

    try:
        repeats = tuple(int(x) for x in supercell.replace(" ", "").split(","))
        if len(repeats) != 3:
            raise ValueError(f"--supercell needs three integers, got {supercell!r}")
        cfg = InitialSetConfig(
            supercell=repeats,
            n_rattled=rattled,
            rattle_std_A=rattle,
            n_random_strains=random_strains,
            vacancies=vacancies,
            seed=random_seed,
        )
        report = add_initial_set(LabelStore(db), read_seeds(seed), cfg)
    except EXPECTED_ERRORS as exc:
        fail(exc)
    console.print(
        f"added {report.added} pending structures; {report.duplicates} duplicates skipped"
    )
