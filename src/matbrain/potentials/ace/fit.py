"""Run pacemaker on labelled structures: split, export, ``input.yaml``, follow the log, stop early.

pacemaker runs as a subprocess in ``workdir``; its ``log.txt`` is read as it grows, turned into
training/validation points (:mod:`pacemaker_log`) and fed to :class:`EarlyStopping`. When that
says stop, pacemaker gets SIGINT (as Ctrl-C) and we keep the interim potential copied when the
best validation report was read (within one log poll of that iteration); the reason is recorded.
A pacemaker that dies after a validation report (the out-of-memory killer's SIGKILL, typically)
leaves the same best potential so far, kept with the reason; before any report it is an error
that names the memory knobs.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ase import Atoms

from matbrain.common.files import atomic_path
from matbrain.common.processes import LogFollower, StoppableProcess
from matbrain.potentials.ace.config import AceTrainingConfig, write_input_yaml
from matbrain.potentials.ace.dataset import split_records, write_pacemaker_dataset
from matbrain.potentials.ace.early_stopping import EarlyStopping
from matbrain.potentials.ace.pacemaker_log import PacemakerLogParser, Point

POTENTIAL_FILES = (
    "output_potential.yaml",
    "interim_potential_best_cycle.yaml",
    "interim_potential_0.yaml",
)
# pacemaker rewrites interim_potential_<cycle>.yaml after every iteration; we copy it here whenever
# the early stopper records a new best validation report, so that an early stop keeps the best
# potential (the one its metrics describe), not the last one
BEST_INTERIM = "best_valid_potential.yaml"


class PacemakerFailed(RuntimeError):
    pass


@dataclass
class AceFit:
    workdir: Path
    potential_yaml: Path
    n_train: int
    n_valid: int
    points: list[Point] = field(default_factory=list)
    stopped_early: str | None = None
    best_iteration: int | None = None
    # the report at which the kept potential was copied: the best one, or the first report after
    # it that had an interim potential on disk (pacemaker writes none before its first iteration)
    kept_iteration: int | None = None

    def final(self, split: str) -> Point | None:
        chosen = [p for p in self.points if p.split == split]
        return chosen[-1] if chosen else None

    def kept(self, split: str) -> Point | None:
        """The point of the potential kept: after an early stop, the report it was copied at."""
        if self.stopped_early and self.kept_iteration is not None:
            at = [p for p in self.points if p.split == split and p.iteration <= self.kept_iteration]
            if at:
                return at[-1]
        return self.final(split)

    def metrics(self) -> dict[str, object]:
        out: dict[str, object] = {"n_train": self.n_train, "n_valid": self.n_valid,
                                  "stopped_early": self.stopped_early,
                                  "best_iteration": self.best_iteration,
                                  "kept_iteration": self.kept_iteration}  # fmt: skip
        for split in ("train", "valid"):
            p = self.kept(split)
            if p is not None:
                out[split] = {
                    "iteration": p.iteration,
                    "rmse_energy_meV_per_atom": p.rmse_energy_meV_per_atom,
                    "rmse_forces_eV_per_A": p.rmse_forces_eV_per_A,
                }
        return out


def tool_path(name: str) -> str | None:
    """A python-ace command (``pacemaker``, ``pace_yaml2yace``, ...) of this Python's environment
    (also when it is not activated), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def pacemaker_executable() -> str | None:
    return tool_path("pacemaker")


def _pacemaker() -> str:
    exe = pacemaker_executable()
    if exe is None:
        raise ImportError(
            "pacemaker not found: pip install python-ace==0.4.0rc1 (with tensorflow and "
            "tensorpotential, see the README)"
        )
    return exe


def _failure(returncode: int | None, cfg: AceTrainingConfig) -> str:
    """What a nonzero exit of pacemaker means, in words a user can act on."""
    if returncode == -signal.SIGKILL:
        return (f"pacemaker was killed (SIGKILL), most likely by the system's out-of-memory "
                f"killer: lower batch_size ({cfg.batch_size} structures per batch now) or the "
                f"basis ({cfg.functions_per_element} functions per element)")  # fmt: skip
    return f"pacemaker exited with {returncode}"


def _last_iteration(points: list[Point]) -> int:
    return max((p.iteration for p in points), default=0)


def _kept(keeper: BestPotentialKeeper) -> str:
    return f"the best potential so far (iteration {keeper.kept_iteration}) is kept"


def _keep_interim(workdir: Path) -> bool:
    """Copy pacemaker's newest interim potential to BEST_INTERIM; False when there is none yet."""
    interim = sorted(workdir.glob("interim_potential_[0-9]*.yaml"), key=lambda p: p.stat().st_mtime)
    if not interim:
        return False
    with atomic_path(workdir / BEST_INTERIM) as tmp:
        shutil.copyfile(interim[-1], tmp)
    return True


class BestPotentialKeeper:
    """Observer: keeps a copy of the interim potential of the best validation report so far
    (pacemaker writes none before its first iteration: then the next report's is copied)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.best_forces, self.want_copy = float("inf"), False
        self.kept_iteration: int | None = None

    def __call__(self, point: Point) -> None:
        if point.split == "train":
            return
        if point.rmse_forces_eV_per_A < self.best_forces:
            self.best_forces, self.want_copy = point.rmse_forces_eV_per_A, True
        if self.want_copy and _keep_interim(self.workdir):
            self.want_copy, self.kept_iteration = False, point.iteration


class EarlyStopObserver:
    """Observer: feeds training and validation reports to :class:`EarlyStopping` and asks the
    process to stop when it says so."""

    def __init__(self, stopper: EarlyStopping, process: StoppableProcess) -> None:
        self.stopper, self.process = stopper, process
        self.last_train_forces: float | None = None

    def __call__(self, point: Point) -> None:
        if point.split == "train":
            self.last_train_forces = point.rmse_forces_eV_per_A
            return
        if self.last_train_forces is None or self.stopper.reason is not None:
            return
        if self.stopper.update(point.iteration, self.last_train_forces,
                               point.rmse_forces_eV_per_A):  # fmt: skip
            self.process.request_stop()


def _prepare(
    frames: list[Atoms],
    cfg: AceTrainingConfig,
    workdir: Path,
    split: tuple[list[Atoms], list[Atoms]] | None,
) -> tuple[list[Atoms], list[Atoms]]:
    """Split, export the datasets, write ``input.yaml`` and clear a previous fit's outputs."""
    workdir.mkdir(parents=True, exist_ok=True)
    train, valid = (
        split if split is not None else split_records(frames, cfg.valid_fraction, cfg.seed)
    )
    write_pacemaker_dataset(train, workdir / "train.pckl.gzip")
    write_pacemaker_dataset(valid, workdir / "valid.pckl.gzip")
    elements = sorted({s for a in [*train, *valid] for s in a.get_chemical_symbols()})
    write_input_yaml(cfg, elements, "train.pckl.gzip", "valid.pckl.gzip", workdir / "input.yaml")
    (workdir / "split.json").write_text(json.dumps({
        "train_db_ids": [a.info.get("db_id") for a in train],
        "valid_db_ids": [a.info.get("db_id") for a in valid],
    }))  # fmt: skip
    for leftover in (
        workdir / "log.txt",
        workdir / BEST_INTERIM,
        workdir / "output_potential.yaml",
        *workdir.glob("interim_*"),
    ):
        leftover.unlink(missing_ok=True)  # a previous fit's, never this one's
    return train, valid


def _follow(
    process: StoppableProcess,
    log: LogFollower,
    observers: list[Callable[[Point], None]],
    poll_s: float,
) -> list[Point]:
    """Parse pacemaker's log as it grows and hand every report to the observers, until the
    process has ended and its last lines are read."""
    parser, points = PacemakerLogParser(), []
    while True:
        finished = not process.running()
        for line in log.new_lines():
            for point in parser.feed(line):
                points.append(point)
                for observe in observers:
                    observe(point)
        if finished:
            return points
        time.sleep(poll_s)


def fit_ace(
    frames: list[Atoms],
    cfg: AceTrainingConfig,
    workdir: Path,
    on_point: Callable[[Point], None] | None = None,
    poll_s: float = 0.5,
    stop_grace_s: float = 60.0,
    split: tuple[list[Atoms], list[Atoms]] | None = None,
) -> AceFit:
    """Fit an ACE potential to labelled ``frames`` (energy and forces) in ``workdir``.

    ``split`` gives (train, validation) explicitly; otherwise ``frames`` are split with the
    config's fraction and seed."""
    exe = _pacemaker()
    train, valid = _prepare(frames, cfg, workdir, split)
    stopper = (
        EarlyStopping(cfg.early_stopping_patience, cfg.early_stopping_min_delta)
        if cfg.early_stopping_patience
        else None
    )
    keeper = BestPotentialKeeper(workdir)
    points: list[Point] = []
    interrupted = None
    process = StoppableProcess([exe, "input.yaml"], workdir, workdir / "pacemaker_stdout.txt",
                               stop_grace_s)  # fmt: skip
    with process:
        observers: list[Callable[[Point], None]] = [keeper, points.append]
        if on_point is not None:
            observers.append(on_point)
        if stopper is not None:
            observers.append(EarlyStopObserver(stopper, process))
        try:
            _follow(process, LogFollower(workdir / "log.txt"), observers, poll_s)
        except (KeyboardInterrupt, SystemExit):
            # Ctrl-C or SIGTERM: stop pacemaker and keep the best potential of the iterations done
            process.stop()
            if keeper.kept_iteration is None:
                raise  # no validation report yet: nothing worth publishing
            done = min(_last_iteration(points), cfg.max_iter)
            interrupted = f"interrupted at iteration {done}: {_kept(keeper)}"
    stopped = interrupted or (stopper.reason if stopper is not None else None)
    if process.returncode != 0 and stopped is None:
        why = _failure(process.returncode, cfg)
        if keeper.kept_iteration is None:
            tail = (workdir / "pacemaker_stdout.txt").read_text().splitlines()[-10:]
            raise PacemakerFailed(f"{why}:\n" + "\n".join(tail))
        # the iterations done hold a usable potential: keep the best of them, say why it stopped
        stopped = f"{why}, after iteration {_last_iteration(points)}; {_kept(keeper)}"
    names = (BEST_INTERIM, *POTENTIAL_FILES) if stopped else POTENTIAL_FILES
    potential = next((workdir / n for n in names if (workdir / n).exists()), None)
    if potential is None:
        raise PacemakerFailed(f"pacemaker wrote no potential in {workdir}")
    fit = AceFit(workdir, potential, len(train), len(valid), points, stopped,
                 stopper.best_iteration if stopper else None,
                 keeper.kept_iteration if potential.name == BEST_INTERIM else None)  # fmt: skip
    (workdir / "fit_metrics.json").write_text(json.dumps(fit.metrics(), indent=2))
    (workdir / "points.json").write_text(json.dumps([asdict(p) for p in points]))
    return fit
