"""Run pacemaker on labelled structures: split, export, ``input.yaml``, follow the log, stop early.

pacemaker runs as a subprocess in ``workdir``; its ``log.txt`` is read as it grows, turned into
training/validation points (:mod:`pacemaker_log`) and fed to :class:`EarlyStopping`. When that
says stop, pacemaker gets SIGINT (as Ctrl-C) and we keep the interim potential copied when the
best validation report was read (within one log poll of that iteration); the reason is recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ase import Atoms

from matbrain.common.files import atomic_path
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


def _keep_interim(workdir: Path) -> bool:
    """Copy pacemaker's newest interim potential to BEST_INTERIM; False when there is none yet."""
    interim = sorted(workdir.glob("interim_potential_[0-9]*.yaml"), key=lambda p: p.stat().st_mtime)
    if not interim:
        return False
    with atomic_path(workdir / BEST_INTERIM) as tmp:
        shutil.copyfile(interim[-1], tmp)
    return True


def _default_sigint() -> None:
    """In the child before exec: a job started in the background (``cmd &`` in a script, CI,
    nohup) inherits SIGINT as ignored, and then pacemaker would never see our stop request."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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

    stopper = (
        EarlyStopping(cfg.early_stopping_patience, cfg.early_stopping_min_delta)
        if cfg.early_stopping_patience
        else None
    )
    parser = PacemakerLogParser()
    points: list[Point] = []
    last_train_f: float | None = None
    log_path = workdir / "log.txt"
    log_path.unlink(missing_ok=True)
    for leftover in (
        workdir / BEST_INTERIM,
        workdir / "output_potential.yaml",
        *workdir.glob("interim_*"),
    ):
        leftover.unlink(missing_ok=True)  # a previous fit's, never this one's
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    with open(workdir / "pacemaker_stdout.txt", "w") as out:
        proc = subprocess.Popen([exe, "input.yaml"], cwd=workdir, stdout=out,
                                stderr=subprocess.STDOUT, env=env,
                                preexec_fn=_default_sigint if os.name == "posix" else None)  # fmt: skip
        offset, pending = 0, ""
        interrupted_at: float | None = None
        want_copy, kept_iteration = False, None
        best_valid_f, interrupted = float("inf"), None
        try:
            while True:
                finished = proc.poll() is not None
                if not finished and interrupted_at is not None:
                    if time.monotonic() - interrupted_at > stop_grace_s:
                        proc.terminate()  # SIGINT was not enough: stop it for good
                        proc.wait(timeout=60)
                        finished = True
                if log_path.exists():
                    with open(log_path) as fh:
                        fh.seek(offset)
                        chunk = fh.read()
                        offset = fh.tell()
                    lines = (pending + chunk).split("\n")
                    pending = lines.pop()
                    for line in lines:
                        for point in parser.feed(line):
                            points.append(point)
                            if on_point is not None:
                                on_point(point)
                            if point.split == "train":
                                last_train_f = point.rmse_forces_eV_per_A
                                continue
                            # the best validation report so far is kept, whatever stops the fit
                            if point.rmse_forces_eV_per_A < best_valid_f:
                                best_valid_f, want_copy = point.rmse_forces_eV_per_A, True
                            if (
                                stopper is not None
                                and last_train_f is not None
                                and stopper.reason is None
                            ):
                                stop = stopper.update(point.iteration, last_train_f,
                                                      point.rmse_forces_eV_per_A)  # fmt: skip
                                if stop and proc.poll() is None:
                                    proc.send_signal(signal.SIGINT)
                                    interrupted_at = time.monotonic()
                            if want_copy and _keep_interim(workdir):
                                want_copy, kept_iteration = False, point.iteration
                if finished:
                    break
                time.sleep(poll_s)
        except (KeyboardInterrupt, SystemExit):
            # Ctrl-C or SIGTERM: stop pacemaker and keep the best potential of the iterations done
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=stop_grace_s)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    proc.wait(timeout=60)
            if kept_iteration is None:
                raise  # no validation report yet: nothing worth publishing
            done = max((p.iteration for p in points), default=0)
            interrupted = (f"interrupted at iteration {min(done, cfg.max_iter)}: the best "
                           f"potential so far (iteration {kept_iteration}) is kept")  # fmt: skip
        except BaseException:
            proc.terminate()
            proc.wait(timeout=60)
            raise
    stopped = interrupted or (stopper.reason if stopper is not None else None)
    if proc.returncode != 0 and stopped is None:
        tail = (workdir / "pacemaker_stdout.txt").read_text().splitlines()[-10:]
        raise PacemakerFailed(f"pacemaker exited with {proc.returncode}:\n" + "\n".join(tail))
    names = (BEST_INTERIM, *POTENTIAL_FILES) if stopped else POTENTIAL_FILES
    potential = next((workdir / n for n in names if (workdir / n).exists()), None)
    if potential is None:
        raise PacemakerFailed(f"pacemaker wrote no potential in {workdir}")
    fit = AceFit(workdir, potential, len(train), len(valid), points, stopped,
                 stopper.best_iteration if stopper else None,
                 kept_iteration if potential.name == BEST_INTERIM else None)  # fmt: skip
    (workdir / "fit_metrics.json").write_text(json.dumps(fit.metrics(), indent=2))
    (workdir / "points.json").write_text(json.dumps([asdict(p) for p in points]))
    return fit
