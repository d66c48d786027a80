"""One ACE training step on the store: completed records -> pacemaker -> the next potential version.

Used by ``matbrain ace train`` (and ``mlip-auto train``) alone and by the loop at every generation.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from matbrain.active.store import LabelStore
from matbrain.active.transfer import export_extxyz
from matbrain.potentials.ace.config import AceTrainingConfig
from matbrain.potentials.ace.fit import fit_ace
from matbrain.potentials.ace.pacemaker_log import Point
from matbrain.potentials.ace.plots import learning_curve_plot
from matbrain.potentials.ace.versions import (
    PotentialVersion,
    list_versions,
    publish,
    version_paths,
)


def next_generation(potentials_dir: Path) -> int:
    versions = list_versions(potentials_dir)
    return versions[-1].generation + 1 if versions else 0


def train_from_store(
    db: str,
    cfg: AceTrainingConfig,
    potentials_dir: Path,
    workdir: Path,
    generation: int | None = None,
    generations: list[int] | None = None,
    on_point: Callable[[Point], None] | None = None,
) -> PotentialVersion:
    """Fit ACE on the completed rows of ``db`` (of ``generations``, default all) and publish it.

    ``generation`` names the version (default: one after the newest in ``potentials_dir``).
    The fit runs in ``workdir/fit_gen_NN`` (a leftover of an interrupted fit is started afresh);
    the training data are also written there as ``data.xyz`` with their ``config_type``.
    """
    store = LabelStore(db)
    frames = store.completed(generations)
    if len(frames) < 2:
        counts = store.counts()
        raise ValueError(
            f"{db}: {len(frames)} labelled structures"
            + (f" in generations {generations}" if generations is not None else "")
            + f" (store: {counts}); label more before fitting (matbrain db label)"
        )
    number = next_generation(potentials_dir) if generation is None else generation
    inputs = {"db": db, "generations_used": generations, "n_structures": len(frames),
              "training_config": cfg.model_dump()}  # fmt: skip
    published = version_paths(potentials_dir, number)
    if published.metrics_file.exists():
        record = published.metrics()
        if all(record.get(k) == v for k, v in inputs.items()):
            # published from the same data and settings before an interruption (the loop was
            # killed after publishing, before recording the step): the same fit, kept as it is
            return published
    fit_dir = workdir / f"fit_gen_{number:02d}"
    shutil.rmtree(fit_dir, ignore_errors=True)
    fit_dir.mkdir(parents=True)
    export_extxyz(store, fit_dir / "data.xyz", generations)
    fit = fit_ace(frames, cfg, fit_dir, on_point=on_point)
    curve = fit_dir / "learning_curve.png"
    learning_curve_plot(fit.points, curve, fit.kept_iteration, fit.stopped_early)
    return publish(fit, potentials_dir, number, {**inputs, "learning_curve": str(curve)})
