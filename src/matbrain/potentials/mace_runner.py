"""Adapter around mace-torch's own trainer: build its argument list, run it, follow its log.

MACE runs in a child process (``python -m mace.cli.run_train``): its ``run`` changes the global
torch dtype and logging handlers, and a crash inside it must not take the caller down. Its work
folder lives inside our run folder; MACE's own checkpoints give ``--restart_latest`` resumption.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ase.data import atomic_numbers

from matbrain.potentials.config import MaceFinetuneConfig, MaceTrainConfig
from matbrain.potentials.data import ENERGY_KEY, FORCES_KEY, STRESS_KEY

MACE_NAME = "mace"
FINETUNE_LR = 0.01  # mace-torch's usual fine-tuning learning rate
EPOCH_LINE = re.compile(r"Epoch (\d+): .*?loss=\s*([0-9.eE+-]+)")


class MaceFailed(RuntimeError):
    """mace_run_train exited with an error; the message carries the end of its log."""


@dataclass(frozen=True)
class MaceFiles:
    train: Path
    valid: Path
    e0s: dict[str, float]  # eV per element symbol (for fine-tuning: read from the base model)


def _bool(flag: bool) -> str:
    return "True" if flag else "False"


def mace_arguments(
    cfg: MaceTrainConfig | MaceFinetuneConfig,
    files: MaceFiles,
    work_dir: Path,
    model_dir: Path,
    device: str,
    n_train: int,
    n_valid: int,
    foundation_model: str | None = None,
) -> list[str]:
    """The full ``mace_run_train`` argument list for a config (nothing is left to MACE defaults
    that decides what is fitted)."""
    batch = max(1, min(cfg.batch_size, n_train))  # a batch larger than the set trains on nothing
    args = [
        f"--name={MACE_NAME}",
        f"--seed={cfg.seed}",
        f"--work_dir={work_dir}",
        f"--model_dir={model_dir}",
        f"--log_dir={work_dir / 'logs'}",
        f"--checkpoints_dir={work_dir / 'checkpoints'}",
        f"--results_dir={work_dir / 'results'}",
        f"--train_file={files.train}",
        f"--valid_file={files.valid}",
        f"--energy_key={ENERGY_KEY}",
        f"--forces_key={FORCES_KEY}",
        f"--stress_key={STRESS_KEY}",
        f"--batch_size={batch}",
        f"--valid_batch_size={max(1, min(cfg.batch_size, n_valid))}",
        f"--max_num_epochs={cfg.epochs}",
        f"--lr={cfg.lr or FINETUNE_LR}",
        f"--default_dtype={cfg.dtype}",
        f"--device={device}",
        f"--energy_weight={cfg.energy_weight}",
        f"--forces_weight={cfg.forces_weight if cfg.with_forces else 0.0}",
        "--eval_interval=1",
        "--restart_latest",
        "--save_cpu",
        "--plot=False",
        "--enable_cueq=False",
        # matbrain scores train/valid/test itself (MAE and RMSE, any backend): MACE's own
        # end-of-run error tables would evaluate everything a second time
        "--skip_evaluate_heads=Default",
    ]
    if cfg.with_stress:
        args += [
            "--loss=stress",
            "--compute_stress=True",
            f"--stress_weight={cfg.stress_weight}",
            "--error_table=PerAtomRMSEstressvirials",
        ]
    else:
        args += ["--loss=weighted", "--error_table=PerAtomRMSE"]
    if cfg.ema:
        args += ["--ema", "--ema_decay=0.99"]
    e0 = {atomic_numbers[s]: v for s, v in files.e0s.items()}
    args.append(f"--E0s={e0}")
    if isinstance(cfg, MaceTrainConfig):
        args += [
            "--model=MACE",
            f"--r_max={cfg.r_max_A}",
            f"--num_channels={cfg.num_channels}",
            f"--max_L={cfg.max_L}",
            f"--correlation={cfg.correlation}",
            f"--num_interactions={cfg.num_interactions}",
        ]
        if cfg.swa:
            args += ["--swa", f"--start_swa={max(1, int(cfg.epochs * 0.8))}"]
    else:
        if foundation_model is None:
            raise ValueError("fine-tuning needs a local foundation model file")
        args += [
            f"--foundation_model={foundation_model}",
            "--multiheads_finetuning=False",
        ]
    return args


def mace_command(devices: int, device: str) -> list[str] | None:
    """The command that starts ``mace_run_train`` on ``devices`` GPUs (mace-torch's own DDP,
    launched by torchrun; its arguments get ``--distributed --launcher=torchrun``), or None for
    one process."""
    if devices <= 1:
        return None
    if device != "cuda":
        raise ValueError(
            f"mace-torch trains data-parallel on GPUs only (NCCL); {devices} devices were asked "
            f"for on {device!r}: use devices: 1 on a CPU"
        )
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={devices}", "-m", "mace.cli.run_train"]  # fmt: skip


def run_mace(
    args: list[str],
    log_path: Path,
    on_epoch: Callable[[int, float], None] | None = None,
    command: list[str] | None = None,
) -> None:
    """Run ``mace_run_train`` with ``args``; stream its output to ``log_path`` line by line (a
    user can follow the log while it trains) and report epochs. ``command`` replaces the
    ``python -m mace.cli.run_train`` prefix (tests)."""
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", PYTHONUNBUFFERED="1")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: list[str] = []
    with open(log_path, "a") as log:
        log.write("$ mace_run_train " + " ".join(args) + "\n")
        log.flush()
        proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "mace.cli.run_train"]), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                tail = (tail + [line.rstrip()])[-25:]
                match = EPOCH_LINE.search(line)
                if match and on_epoch is not None:
                    on_epoch(int(match.group(1)), float(match.group(2)))
        except BaseException:
            proc.terminate()
            proc.wait(timeout=30)
            raise
        code = proc.wait()
    if code != 0:
        raise MaceFailed(
            f"mace_run_train failed (exit {code}); full log: {log_path}\n" + "\n".join(tail[-12:])
        )


def read_mace_history(results_dir: Path) -> list[dict[str, Any]]:
    """MACE's per-epoch results (JSON lines): training loss and validation errors per epoch."""
    per_epoch: dict[int, dict[str, Any]] = {}
    for path in sorted(results_dir.glob("*_train.txt")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            epoch = row.get("epoch")
            if epoch is None:
                continue
            entry = per_epoch.setdefault(int(epoch), {"epoch": int(epoch)})
            if row.get("mode") == "opt":
                entry.setdefault("train_losses", []).append(float(row["loss"]))
            elif row.get("mode") == "eval":
                entry["valid_loss"] = float(row["loss"])
                for key in ("rmse_e_per_atom", "rmse_f", "mae_e_per_atom", "mae_f", "rmse_stress"):
                    if row.get(key) is not None:
                        entry[f"valid_{key}"] = float(row[key])
    history = []
    for epoch in sorted(per_epoch):
        entry = per_epoch[epoch]
        losses = entry.pop("train_losses", [])
        if losses:
            entry["train_loss"] = sum(losses) / len(losses)
        history.append(entry)
    return history
