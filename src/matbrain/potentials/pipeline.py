"""Train or fine-tune a potential into a run folder: data, E0s, backend fit, metrics, plots, registry.

The same for every backend (:mod:`matbrain.potentials.backends`): ``models/<algorithm>/run_*/``
(``mace``, ``ace``) or ``models/<base>-finetune/run_*/`` (``mace``, ``chgnet``, ``sevennet``)::

    config.yaml   resolved config               data/{train,valid,test}.xyz   the split, extxyz
    data.json     label counts, sizes           e0s.json      per-element reference energies
    <model file>  mace.model | ace.yace (+ ace.yaml) | chgnet.pth.tar | sevennet.pth
    metrics.json  E/F/S MAE and RMSE per split  history.json  per-epoch (iteration) errors
    plots/        parity per split, learning curves (linear ACE: its validation grid)
    logs/         the engine's full output
    summary.json  provenance (versions, hashes, timings); one line in models/potentials.jsonl
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ase import Atoms

from matbrain import __version__
from matbrain.common.devices import pick_device
from matbrain.common.resume import refuse_changed_config
from matbrain.common.runs import git_commit, latest_unfinished_run, new_run_dir, register_run
from matbrain.potentials.backends import backend_name, fit_backend, run_group
from matbrain.potentials.calculators import (
    MACE_MP_DEFAULT_SIZE,
    load_potential,
    resolve_mace_mp,
)
from matbrain.potentials.config import AceTrainConfig, MaceFinetuneConfig, MaceTrainConfig
from matbrain.potentials.data import (
    LabelCounts,
    LabelKeys,
    check_labels,
    fit_e0s,
    read_labelled,
    split_frames,
    write_extxyz,
)
from matbrain.potentials.evaluate import evaluate, format_metrics

log = logging.getLogger(__name__)

PotentialConfig = MaceTrainConfig | AceTrainConfig | MaceFinetuneConfig
POTENTIAL_REGISTRY = "potentials.jsonl"
PREPARED_FILES = ("train.xyz", "valid.xyz")


@dataclass
class PotentialRunResult:
    run_dir: Path
    model_path: Path
    metrics: dict[str, dict[str, Any]]
    breakdown: str = ""  # where the held-out force error comes from (format_breakdown)

    def table(self) -> str:
        return "\n\n".join(filter(None, (format_metrics(self.metrics), self.breakdown)))


def is_prepared(folder: Path) -> bool:
    return folder.is_dir() and all((folder / f).exists() for f in PREPARED_FILES)


def _read_split_files(folder: Path) -> dict[str, list[Atoms]]:
    import ase.io

    out: dict[str, list[Atoms]] = {}
    for name in ("train", "valid", "test", "isolated"):
        path = folder / f"{name}.xyz"
        out[name] = list(ase.io.iread(path)) if path.exists() and path.stat().st_size else []
    return out


def prepare_data(
    cfg: PotentialConfig, out_dir: Path, prepare: bool = True
) -> tuple[dict[str, list[Atoms]], dict[str, Any]]:
    """Read ``cfg.data``, check the labels, filter elements, split with ``cfg.seed``; write the
    MACE files into ``out_dir``. With ``prepare=False`` the data must already be a prepared folder."""
    source = Path(cfg.data)
    if is_prepared(source):
        splits = _read_split_files(source)
        frames = [a for part in splits.values() for a in part]
        dropped = 0
    elif not prepare:
        raise ValueError(
            f"{cfg.data} is not a prepared folder (train.xyz + valid.xyz); add --prepare-data "
            "to convert it into MACE's training files"
        )
    else:
        keys = LabelKeys(cfg.energy_key, cfg.forces_key, cfg.stress_key)
        frames = read_labelled(cfg.data, keys)
        n_read = len(frames)
        split = split_frames(
            frames,
            cfg.valid_fraction,
            cfg.test_fraction,
            cfg.seed,
            cfg.elements,
            cfg.max_structures,
        )
        dropped = split.dropped_by_element
        splits = {
            "train": split.train,
            "valid": split.valid,
            "test": split.test,
            "isolated": split.isolated,
        }
        frames = [a for part in splits.values() for a in part]
        if not frames:
            raise ValueError(
                f"no structure of {cfg.data} is made only of {', '.join(cfg.elements or [])} "
                f"(all {n_read} dropped by the element filter)"
            )
    counts = check_labels(frames, cfg.with_forces, cfg.with_stress)
    if not splits["train"] or not splits["valid"]:
        raise ValueError(f"{cfg.data}: need at least one training and one validation structure")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, part in splits.items():
        if part or name in ("train", "valid"):
            write_extxyz(part, out_dir / f"{name}.xyz")
    info = {
        "source": str(cfg.data),
        "labels": counts.as_dict(),
        "sizes": {k: len(v) for k, v in splits.items()},
        "dropped_by_element": dropped,
        "elements": sorted({s for a in frames for s in a.get_chemical_symbols()}),
        "data_hash": _files_hash(out_dir),
    }
    return splits, info


def _files_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.xyz")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def base_model_e0s(cfg: MaceFinetuneConfig, train: list[Atoms]) -> dict[str, float]:
    """E0s of the base model: a MACE file's own table; the universal potentials' zero-shot
    per-element offsets are not exposed, so their E0s are fitted on the training split."""
    if cfg.base_model.lower() in ("chgnet", "sevennet"):
        return fit_e0s(train)
    return foundation_e0s(resolve_base_model(cfg.base_model))


def foundation_e0s(model_path: str) -> dict[str, float]:
    """Isolated-atom energies stored in a MACE model (what ``--E0s=foundation`` uses)."""
    import torch
    from ase.data import chemical_symbols

    from matbrain.models.e3nn_import import import_e3nn

    import_e3nn()
    import mace.modules  # noqa: F401  (classes for unpickling)

    model = torch.load(model_path, map_location="cpu", weights_only=False)
    table = model.atomic_energies_fn.atomic_energies.detach().cpu()
    if table.ndim == 2:  # (heads, elements): the first head, as mace_run_train does
        table = table[0]
    energies = table.reshape(-1).tolist()
    zs = [int(z) for z in model.atomic_numbers]
    return {chemical_symbols[z]: float(e) for z, e in zip(zs, energies, strict=True)}


def resolve_base_model(spec: str) -> str:
    """A local file for ``MACE-MP-0[:size]`` (downloaded by mace-torch) or a given ``.model`` path."""
    if spec.lower().startswith("mace-mp-0"):
        size = spec.split(":", 1)[1] if ":" in spec else MACE_MP_DEFAULT_SIZE
        return resolve_mace_mp(size)
    path = Path(spec)
    if path.is_dir():
        from matbrain.potentials.calculators import model_file_in_run

        path = model_file_in_run(path)
    if not path.exists():
        raise FileNotFoundError(
            f"base model not found: {spec} (give MACE-MP-0[:small|medium|large] or a local .model file)"
        )
    return str(path)


def train_potential(
    cfg: PotentialConfig,
    run_dir: Path | None = None,
    prepare: bool = True,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> PotentialRunResult:
    """Train (or fine-tune) and evaluate; ``run_dir`` of an unfinished run resumes it.

    ``echo`` receives the data report (label counts, split, E0s) as lines of text; it always
    goes to the log too. ``progress`` shows the epoch bar.
    """

    def say(text: str) -> None:
        log.info(text)
        if echo is not None:
            echo(text)

    started = time.time()
    root = Path(cfg.output_root)
    resuming = run_dir is not None
    if run_dir is None:
        run_dir = new_run_dir(root, run_group(cfg))
    run_dir = Path(run_dir)
    if resuming:
        # more epochs continue MACE from its checkpoint; any other change needs a new run
        refuse_changed_config(run_dir / "config.yaml", cfg.model_dump(), f"run {run_dir}",
                              may_change=("epochs",))  # fmt: skip
    (run_dir / "plots").mkdir(parents=True, exist_ok=True)
    cfg.to_yaml(run_dir / "config.yaml")
    data_dir = run_dir / "data"

    if resuming and is_prepared(data_dir):
        splits = _read_split_files(data_dir)
        info = json.loads((run_dir / "data.json").read_text())
    else:
        splits, info = prepare_data(cfg, data_dir, prepare=prepare)
        (run_dir / "data.json").write_text(json.dumps(info, indent=2))
    say(f"data: {LabelCounts(**info['labels']).describe()}")
    say(f"split: {info['sizes']}; dropped by element filter: {info['dropped_by_element']}")

    if isinstance(cfg, MaceFinetuneConfig):
        e0s = base_model_e0s(cfg, splits["train"])
        missing = set(info["elements"]) - set(e0s)
        if missing:
            raise ValueError(
                f"base model {cfg.base_model} has no E0 for {', '.join(sorted(missing))}: "
                "it cannot be fine-tuned on these elements"
            )
        # passed explicitly rather than as --E0s=foundation, which fails on one-element models
        e0s = {el: e0s[el] for el in info["elements"]}
    else:
        e0s = fit_e0s(splits["train"], splits["isolated"])
    (run_dir / "e0s.json").write_text(json.dumps(e0s, indent=2))
    say("E0s (eV): " + ", ".join(f"{k} {v:.4f}" for k, v in e0s.items()))

    device = pick_device(cfg.device)
    fit = fit_backend(cfg, splits, run_dir, e0s, device, progress, say)
    model_path = fit.model_path
    history = fit.history
    (run_dir / "history.json").write_text(json.dumps(history, indent=2))
    if history:
        from matbrain.potentials.evaluate import learning_curve_plot

        learning_curve_plot(history, run_dir / "plots" / "learning_curves.png")

    potential = load_potential(model_path, device=device, dtype=cfg.dtype)
    metrics: dict[str, dict[str, Any]] = {}
    breakdown = ""
    for name in ("train", "valid", "test"):
        if not splits[name]:
            continue
        held_out = name != "train"
        result = evaluate(
            potential.calc, splits[name], with_stress=cfg.with_stress,
            plots=(run_dir / "plots", name) if held_out else None,
            table=run_dir / f"structures_{name}.csv" if held_out else None,
        )  # fmt: skip
        metrics[name] = result.metrics
        if held_out and result.report:  # the last held-out split: test where there is one
            breakdown = f"{name} split:\n{result.report}"
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))

    summary = {
        "kind": cfg.kind,
        "group": run_group(cfg),
        "path": str(run_dir),
        "model_file": model_path.name,
        "level": getattr(cfg, "level", None),
        "base_model": getattr(cfg, "base_model", None),
        "elements": info["elements"],
        "with_forces": cfg.with_forces,
        "with_stress": cfg.with_stress,
        "sizes": info["sizes"],
        "metrics": metrics,
        "device": device,
        "seconds": round(time.time() - started, 1),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "matbrain_version": __version__,
        "algorithm": backend_name(cfg),
        "engine": fit.engine,
        "engine_version": fit.engine_version,
        "fit": fit.details,
        "git_commit": git_commit(),
        "config_hash": cfg.config_hash(),
        "data_hash": info["data_hash"],
        "seed": cfg.seed,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    register_run(root, summary, filename=POTENTIAL_REGISTRY)
    return PotentialRunResult(run_dir, model_path, metrics, breakdown)


def latest_unfinished_potential_run(root: Path, group: str) -> Path | None:
    """The newest run of ``group`` whose data are prepared but that has no summary: MACE resumes
    from its checkpoints, the other engines refit on the same split."""
    return latest_unfinished_run(root, group, started=lambda run: is_prepared(run / "data"))
