"""Data-parallel training (DDP) on two CPU processes (gloo), launched as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from matbrain.common.runs import read_registry
from matbrain.training.config import resolve_config
from matbrain.training.distributed import launch_command, without_launch_options
from matbrain.training.pipeline import run_training


def test_the_launched_processes_do_not_launch_again():
    argv = ["train", "--devices", "2", "--num-nodes=1", "--rdzv-endpoint", "h:1", "--epochs", "3"]
    assert without_launch_options(argv) == ["train", "--epochs", "3"]
    command = launch_command(["train", "--epochs", "3"], devices=2)
    assert "--nproc-per-node=2" in command and "--standalone" in command
    assert command[-4:] == ["matbrain.cli.main", "train", "--epochs", "3"]


def test_several_nodes_need_a_rendezvous_endpoint():
    with pytest.raises(ValueError, match="--rdzv-endpoint"):
        launch_command(["train"], devices=2, num_nodes=2)
    command = launch_command(["train"], devices=4, num_nodes=2, rdzv_endpoint="node0:29500")
    assert "--nnodes=2" in command and "--rdzv-endpoint=node0:29500" in command


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_effective_batch(tmp_path):
    """2 processes x batch 8 take the same steps as 1 process x batch 16: same validation MAE."""
    recipe = {"epochs": 3, "max_samples": 120, "batch_size": 16, "dropout": 0.0, "preset": "small",
              "properties": ["formation_energy"], "output_root": str(tmp_path / "one")}  # fmt: skip
    cfg = resolve_config("e3nn", "smoke", overrides=recipe)
    one = run_training(cfg, progress=False)

    config = tmp_path / "config.yaml"
    cfg.model_copy(update={"output_root": str(tmp_path / "two")}).to_yaml(config)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "matbrain.cli.main", "train", "--config", str(config),
         "--batch-size", "8", "--devices", "2", "--device", "cpu", "--quiet"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("run folder:") == 1  # one report, from rank 0

    runs = list((tmp_path / "two").glob("*/run_*"))
    assert len(runs) == 1  # one run folder, not one per process
    two = runs[0]
    assert len(read_registry(tmp_path / "two")) == 1
    history_one = one.history
    history_two = json.loads((two / "history.json").read_text())
    assert len(history_two) == len(history_one) == 3
    for a, b in zip(history_one, history_two, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["val_mae_over_std"]["formation_energy"] == pytest.approx(
            a["val_mae_over_std"]["formation_energy"], rel=1e-4
        )
    summary = json.loads((two / "summary.json").read_text())
    assert summary["processes"] == 2
    assert summary["test_mae"]["formation_energy"] == pytest.approx(
        one.metrics[0]["test_mae"], rel=1e-4
    )


@pytest.mark.slow
def test_a_run_resumes_on_two_processes(tmp_path):
    """An interrupted run continues under DDP from its checkpoint: the finished epochs are kept,
    the rest are trained by both processes and written once."""
    recipe = {"epochs": 3, "max_samples": 80, "batch_size": 8, "dropout": 0.0, "preset": "small",
              "properties": ["formation_energy"], "output_root": str(tmp_path)}  # fmt: skip
    cfg = resolve_config("e3nn", "smoke", overrides=recipe)

    def stop_after_first_epoch(trainer, record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, callbacks=[stop_after_first_epoch], progress=False)
    (run,) = list(tmp_path.glob("*/run_*"))
    first = json.loads((run / "history.json").read_text())
    assert len(first) == 1 and not (run / "summary.json").exists()

    done = subprocess.run(
        [sys.executable, "-m", "matbrain.cli.main", "train", "--resume-run", str(run),
         "--devices", "2", "--device", "cpu", "--quiet"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[0] == first[0]  # the finished epoch is kept, not retrained
    assert json.loads((run / "summary.json").read_text())["processes"] == 2
    assert len(list(tmp_path.glob("*/run_*"))) == 1 and len(read_registry(tmp_path)) == 1
