"""One interface over the potential engines: each backend is an adapter over its engine's trainer.

``fit_backend(cfg, splits, run_dir, e0s, ...)`` trains with mace-torch's ``run_train``
(``mace``), python-ace's least squares or pacemaker (``ace``), CHGNet's ``Trainer`` or sevenn's
training loop (fine-tuning of ``chgnet`` / ``sevennet``) and returns the deployable model file,
the per-epoch history and the engine's version. Everything around it (data, E0s, metrics,
parity plots, learning curves, registry) is shared by :mod:`matbrain.potentials.pipeline`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ase import Atoms

from matbrain.potentials.config import AceTrainConfig, MaceFinetuneConfig, MaceTrainConfig

UNIVERSAL_BASES = ("chgnet", "sevennet")
Say = Callable[[str], None]


@dataclass
class BackendFit:
    model_path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    engine: str = ""
    engine_version: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def engine_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def backend_name(cfg: Any) -> str:
    """``mace``, ``ace``, or for fine-tuning the base model's engine (``chgnet``, ``sevennet``,
    ``mace``)."""
    if isinstance(cfg, MaceFinetuneConfig):
        base = cfg.base_model.lower()
        return base if base in UNIVERSAL_BASES else "mace"
    return str(cfg.algorithm)


def run_group(cfg: Any) -> str:
    """The folder under ``models/`` that a config's runs go to."""
    name = backend_name(cfg)
    return f"{name}-finetune" if isinstance(cfg, MaceFinetuneConfig) else name


def fit_backend(
    cfg: Any,
    splits: dict[str, list[Atoms]],
    run_dir: Path,
    e0s: dict[str, float],
    device: str,
    progress: bool,
    say: Say,
) -> BackendFit:
    name = backend_name(cfg)
    if isinstance(cfg, AceTrainConfig):
        return _fit_ace(cfg, splits, run_dir, e0s, say)
    if name == "chgnet":
        from matbrain.potentials.universal_finetune import finetune_chgnet

        return finetune_chgnet(cfg, splits, run_dir, device, progress, say)
    if name == "sevennet":
        from matbrain.potentials.universal_finetune import finetune_sevennet

        return finetune_sevennet(cfg, splits, run_dir, device, say)
    return _fit_mace(cfg, splits, run_dir, e0s, device, progress)


# --- MACE -----------------------------------------------------------------------------------
def _fit_mace(
    cfg: MaceTrainConfig | MaceFinetuneConfig,
    splits: dict[str, list[Atoms]],
    run_dir: Path,
    e0s: dict[str, float],
    device: str,
    progress: bool,
) -> BackendFit:
    from matbrain.potentials.mace_runner import (
        MACE_NAME,
        MaceFiles,
        mace_arguments,
        mace_command,
        read_mace_history,
    )

    foundation = None
    if isinstance(cfg, MaceFinetuneConfig):
        from matbrain.potentials.pipeline import resolve_base_model

        foundation = resolve_base_model(cfg.base_model)
    data_dir = run_dir / "data"
    files = MaceFiles(train=data_dir / "train.xyz", valid=data_dir / "valid.xyz", e0s=e0s)
    args = mace_arguments(
        cfg,
        files,
        work_dir=run_dir / "mace",
        model_dir=run_dir,
        device=device,
        n_train=len(splits["train"]),
        n_valid=len(splits["valid"]),
        foundation_model=foundation,
    )
    command = mace_command(getattr(cfg, "devices", 1), device)
    if command is not None:
        args += ["--distributed", "--launcher=torchrun"]
    (run_dir / "logs").mkdir(exist_ok=True)
    _run_mace_with_progress(args, run_dir / "logs" / "mace.log", cfg.epochs, progress, command)
    model_path = run_dir / f"{MACE_NAME}.model"
    if getattr(cfg, "swa", False) and (run_dir / f"{MACE_NAME}_stagetwo.model").exists():
        model_path = run_dir / f"{MACE_NAME}_stagetwo.model"
    if not model_path.exists():
        raise FileNotFoundError(
            f"MACE finished but wrote no model ({model_path}); see logs/mace.log"
        )
    history = read_mace_history(run_dir / "mace" / "results")
    return BackendFit(model_path, history, "mace-torch", engine_version("mace-torch"))


def _run_mace_with_progress(
    args: list[str], log_path: Path, epochs: int, progress: bool, command: list[str] | None = None
) -> None:
    from tqdm import tqdm

    from matbrain.potentials.mace_runner import run_mace

    bar = tqdm(total=epochs, desc="MACE epochs", unit="epoch", disable=not progress)

    def on_epoch(epoch: int, loss: float) -> None:
        if bar.n == 0 and epoch > 0:  # resumed: rates count from here, not from epoch 0
            bar.reset(total=epochs)
            bar.initial = epoch
        bar.n = min(epoch + 1, epochs)
        bar.set_postfix(valid_loss=f"{loss:.4g}")
        bar.refresh()

    try:
        run_mace(args, log_path, on_epoch, command)
    finally:
        bar.close()


# --- ACE ------------------------------------------------------------------------------------
def _fit_ace(
    cfg: AceTrainConfig,
    splits: dict[str, list[Atoms]],
    run_dir: Path,
    e0s: dict[str, float],
    say: Say,
) -> BackendFit:
    start = None
    if cfg.with_stress and cfg.solver != "linear":
        say(f"ACE {cfg.solver}: pacemaker fits energies and forces only; the stresses are scored, "
            "not fitted" + (" (the linear start fits them)" if "linear" in cfg.solver else ""))  # fmt: skip
    if cfg.solver in ("linear", "linear+pacemaker"):
        from matbrain.potentials.ace.linear import fit_linear_ace
        from matbrain.potentials.ace.plots import validation_grid_plot

        where = run_dir if cfg.solver == "linear" else run_dir / "linear"
        fit = fit_linear_ace(splits["train"], splits["valid"], cfg, e0s, where, cfg.workers, say)
        (where / "ace_fit.json").write_text(json.dumps(fit.as_dict(), indent=2))
        chosen = {"energy_weight": fit.energy_weight, "ridge_alpha": fit.ridge_alpha}
        if fit.stress_weight is not None:
            chosen["stress_weight"] = fit.stress_weight
        validation_grid_plot(fit.grid, chosen, run_dir / "plots" / "ace_validation_grid.png")
        if cfg.solver == "linear":
            return BackendFit(fit.yace, [], "python-ace (linear)", engine_version("python-ace"),
                              {"energy_weight": fit.energy_weight, "ridge_alpha": fit.ridge_alpha,
                               "stress_weight": fit.stress_weight,
                               "stress_offset_GPa": fit.stress_offset_GPa,
                               "n_functions": fit.n_functions})  # fmt: skip
        start = fit.yaml.resolve()  # pacemaker refines it: radial functions too, nonlinearly
    return _fit_pacemaker(cfg, splits, run_dir, e0s, say, start)


def _fit_pacemaker(
    cfg: AceTrainConfig,
    splits: dict[str, list[Atoms]],
    run_dir: Path,
    e0s: dict[str, float],
    say: Say,
    start: Path | None = None,
) -> BackendFit:
    from matbrain.potentials.ace.config import AceTrainingConfig
    from matbrain.potentials.ace.fit import fit_ace
    from matbrain.potentials.ace.reference import set_yace_reference_energies
    from matbrain.potentials.ace.versions import yaml_to_yace

    settings = AceTrainingConfig(
        cutoff_A=cfg.cutoff_A,
        functions_per_element=cfg.functions_per_element,
        kappa=cfg.kappa,
        max_iter=cfg.max_iter,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        reference_energy=e0s,
        start_potential=str(start) if start else None,
        nradmax_by_orders=list(cfg.nradmax_by_orders),
        lmax_by_orders=list(cfg.lmax_by_orders),
    )

    def on_point(p) -> None:
        if p.split == "valid":
            say(f"pacemaker iteration {p.iteration}: validation RMSE E "
                f"{p.rmse_energy_meV_per_atom:.2f} meV/atom, F {p.rmse_forces_eV_per_A:.4f} eV/Å")  # fmt: skip

    work = run_dir / "pacemaker"
    fit = fit_ace([], settings, work, on_point=on_point,
                  split=(splits["train"], splits["valid"]))  # fmt: skip
    if fit.stopped_early:
        say(f"pacemaker stopped: {fit.stopped_early}")
    yaml_path, yace_path = run_dir / "ace.yaml", run_dir / "ace.yace"
    shutil.copyfile(fit.potential_yaml, yaml_path)
    yaml_to_yace(yaml_path, yace_path)
    set_yace_reference_energies(yace_path, e0s)
    history = [
        {"epoch": p.iteration, f"{p.split}_rmse_e_per_atom": p.rmse_energy_meV_per_atom / 1000,
         f"{p.split}_rmse_f": p.rmse_forces_eV_per_A}
        for p in fit.points
    ]  # fmt: skip
    return BackendFit(yace_path, history, "python-ace (pacemaker)", engine_version("python-ace"),
                      fit.metrics())  # fmt: skip
