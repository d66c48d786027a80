"""Fine-tuning of the universal potentials whose weights ship offline, with their own trainers.

``chgnet``: CHGNet 0.3.0 (weights in the chgnet wheel) trained by ``chgnet.trainer.Trainer`` on
our split (energies per atom, forces, optionally stress in GPa); the composition model (AtomRef,
CHGNet's per-element energies) is trained too, which moves the model into the energy frame of
the user's DFT. The best-validation model is saved as ``chgnet.pth.tar`` (``CHGNet.from_file``).

``sevennet``: SevenNet-0 (weights in the sevenn wheel) fine-tuned by sevenn's own ``sevenn``
command from its ``fine_tune.yaml`` preset (continue from the SevenNet-0 checkpoint, Huber
loss, optimizer and epoch reset), on extxyz files of our split; the best-validation checkpoint
is ``sevennet.pth`` (``SevenNetCalculator(model=...)``).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ase import Atoms
from ase.units import GPa

from matbrain.common.files import atomic_path
from matbrain.potentials.backends import BackendFit, Say, engine_version
from matbrain.potentials.config import MaceFinetuneConfig
from matbrain.potentials.data import ENERGY_KEY, STRESS_KEY, energy_and_forces

CHGNET_FILE = "chgnet.pth.tar"
SEVENNET_FILE = "sevennet.pth"
# sevenn's preset uses 4e-3 for 100 epochs on large sets; on a dozen structures that diverges,
# 3e-4 lowered the held-out errors of SevenNet-0 (Si: energy 47.5 -> 7.5 meV/atom, forces 0.133 -> 0.118)
DEFAULT_LR = {"chgnet": 1e-3, "sevennet": 3e-4}


def _chgnet_data(frames: list[Atoms], with_stress: bool, batch_size: int, shuffle: bool):
    from chgnet.data.dataset import StructureData, collate_graphs
    from pymatgen.io.ase import AseAtomsAdaptor
    from torch.utils.data import DataLoader

    structures, energies, forces, stresses = [], [], [], []
    for atoms in frames:
        energy, f = energy_and_forces(atoms)
        structures.append(AseAtomsAdaptor.get_structure(Atoms(atoms.numbers, atoms.positions,
                                                              cell=atoms.cell, pbc=True)))  # fmt: skip
        energies.append(energy / len(atoms))
        forces.append(f.tolist())
        if with_stress:
            stresses.append((np.asarray(atoms.info[STRESS_KEY]).reshape(3, 3) / GPa).tolist())
    with contextlib.redirect_stdout(io.StringIO()):
        data = StructureData(structures, energies, forces, stresses=stresses or None,
                             shuffle=False)  # fmt: skip
    return DataLoader(data, batch_size=max(1, min(batch_size, len(frames))), shuffle=shuffle,
                      collate_fn=collate_graphs)  # fmt: skip


def finetune_chgnet(
    cfg: MaceFinetuneConfig,
    splits: dict[str, list[Atoms]],
    run_dir: Path,
    device: str,
    progress: bool,
    say: Say,
) -> BackendFit:
    import torch
    from chgnet.model import CHGNet
    from chgnet.trainer import Trainer

    if not all(ENERGY_KEY in a.info for a in splits["train"]):
        raise ValueError("CHGNet fine-tuning needs an energy for every training structure")
    torch.manual_seed(cfg.seed)
    log_path = run_dir / "logs" / "chgnet.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    targets: Literal["ef", "efs"] = "efs" if cfg.with_stress else "ef"
    train = _chgnet_data(splits["train"], cfg.with_stress, cfg.batch_size, shuffle=True)
    valid = _chgnet_data(splits["valid"], cfg.with_stress, cfg.batch_size, shuffle=False)
    lr = cfg.lr or DEFAULT_LR["chgnet"]
    say(f"CHGNet fine-tuning: {cfg.epochs} epochs, lr {lr:g}, targets {targets}, "
        f"composition model trained (energy frame of the data)")  # fmt: skip
    with open(log_path, "a") as log, contextlib.redirect_stdout(log):
        model = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
        trainer = Trainer(model=model, targets=targets, optimizer="Adam", scheduler="CosLR",
                          criterion="MSE", epochs=cfg.epochs, learning_rate=lr,
                          use_device=device, torch_seed=cfg.seed, data_seed=cfg.seed,
                          print_freq=10**6)  # fmt: skip
        trainer.train(train, valid, save_dir=str(run_dir / "chgnet"),
                      train_composition_model=True)  # fmt: skip
    best = trainer.best_model or trainer.model
    assert best is not None  # the trainer was given a model
    model_path = run_dir / CHGNET_FILE
    with atomic_path(model_path) as tmp:
        torch.save({"model": best.as_dict()}, tmp)
    history: list[dict[str, Any]] = []
    hist = trainer.training_history
    for epoch, (e_val, f_val) in enumerate(zip(hist["e"]["val"], hist["f"]["val"], strict=True)):
        history.append({"epoch": epoch, "valid_mae_e_per_atom": float(e_val),
                        "valid_mae_f": float(f_val), "train_mae_e_per_atom": float(hist["e"]["train"][epoch]),
                        "train_mae_f": float(hist["f"]["train"][epoch])})  # fmt: skip
    return BackendFit(model_path, history, "chgnet", engine_version("chgnet"),
                      {"lr": lr, "targets": targets})  # fmt: skip


def _write_labelled(frames: list[Atoms], path: Path, with_stress: bool) -> None:
    """extxyz with the labels as calculator results (what ``ase.io.read`` hands to sevenn)."""
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    for atoms in frames:
        energy, forces = energy_and_forces(atoms)
        copy = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        results: dict[str, Any] = {"energy": energy, "forces": forces}
        if with_stress:
            from ase.stress import full_3x3_to_voigt_6_stress

            results["stress"] = full_3x3_to_voigt_6_stress(
                np.asarray(atoms.info[STRESS_KEY]).reshape(3, 3)
            )
        copy.calc = SinglePointCalculator(copy, **results)
        out.append(copy)
    ase.io.write(path, out, format="extxyz")


def finetune_sevennet(
    cfg: MaceFinetuneConfig,
    splits: dict[str, list[Atoms]],
    run_dir: Path,
    device: str,
    say: Say,
) -> BackendFit:
    import os
    import shutil
    import subprocess
    import sys
    from importlib import resources

    import yaml

    work = run_dir / "sevennet"
    work.mkdir(parents=True, exist_ok=True)
    _write_labelled(splits["train"], work / "train.extxyz", cfg.with_stress)
    _write_labelled(splits["valid"], work / "valid.extxyz", cfg.with_stress)
    preset = yaml.safe_load(
        resources.files("sevenn.presets").joinpath("fine_tune.yaml").read_text()
    )
    lr = cfg.lr or DEFAULT_LR["sevennet"]
    train = preset["train"]
    train.update(random_seed=cfg.seed, is_train_stress=cfg.with_stress, epoch=cfg.epochs,
                 per_epoch=max(1, cfg.epochs), device=device)  # fmt: skip
    train["optim_param"]["lr"] = lr
    train["error_record"] = [["Energy", "MAE"], ["Force", "MAE"], ["TotalLoss", "None"]]
    if cfg.with_stress:
        train["error_record"].insert(2, ["Stress", "MAE"])
    train["continue"]["checkpoint"] = "SevenNet-0_11July2024"
    preset["data"].update(batch_size=max(1, min(cfg.batch_size, len(splits["train"]))),
                          load_trainset_path=[str((work / "train.extxyz").resolve())],
                          load_validset_path=[str((work / "valid.extxyz").resolve())])  # fmt: skip
    preset["data"].pop("load_testset_path", None)
    preset["data"].pop("data_divide_ratio", None)
    (work / "input.yaml").write_text(yaml.safe_dump(preset, sort_keys=False))
    say(f"SevenNet-0 fine-tuning with sevenn's trainer: {cfg.epochs} epochs, lr {lr:g}, "
        f"{'energy, forces, stress' if cfg.with_stress else 'energy, forces'}")  # fmt: skip
    exe = Path(sys.executable).parent / "sevenn"
    command = [str(exe) if exe.exists() else (shutil.which("sevenn") or "sevenn"), "input.yaml"]
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OPENBLAS_NUM_THREADS="1")
    log_path = run_dir / "logs" / "sevenn.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        code = subprocess.run(command, cwd=work, stdout=log, stderr=subprocess.STDOUT,
                              env=env).returncode  # fmt: skip
    best = work / "checkpoint_best.pth"
    if code != 0 or not best.exists():
        tail = "\n".join(log_path.read_text().splitlines()[-12:])
        raise RuntimeError(f"sevenn fine-tuning failed (exit {code}); log {log_path}:\n{tail}")
    model_path = run_dir / SEVENNET_FILE
    shutil.copyfile(best, model_path)
    return BackendFit(model_path, _sevenn_history(work / "lc.csv"), "sevenn",
                      engine_version("sevenn"), {"lr": lr})  # fmt: skip


def _sevenn_history(lc_csv: Path) -> list[dict[str, Any]]:
    """sevenn's learning curve (``lc.csv``: MAE per epoch, eV/atom and eV/Å) as history rows."""
    import csv

    if not lc_csv.exists():
        return []
    names = {"trainset_Energy_MAE": "train_mae_e_per_atom", "trainset_Force_MAE": "train_mae_f",
             "validset_Energy_MAE": "valid_mae_e_per_atom", "validset_Force_MAE": "valid_mae_f",
             "trainset_TotalLoss": "train_loss", "validset_TotalLoss": "valid_loss"}  # fmt: skip
    with open(lc_csv) as fh:
        return [
            {
                "epoch": int(row["epoch"]),
                **{ours: float(row[theirs]) for theirs, ours in names.items() if row.get(theirs)},
            }
            for row in csv.DictReader(fh)
        ]
