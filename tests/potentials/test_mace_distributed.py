"""MACE passes its own distributed training through: torchrun + mace-torch's --distributed."""

from __future__ import annotations

import pytest

from matbrain.potentials.config import resolve_mace_config
from matbrain.potentials.mace_runner import mace_command


def test_one_device_runs_mace_as_one_process():
    assert mace_command(1, "cpu") is None and mace_command(1, "cuda") is None


def test_several_gpus_launch_mace_under_torchrun():
    command = mace_command(4, "cuda")
    assert command is not None
    assert command[1:3] == ["-m", "torch.distributed.run"]
    assert "--nproc-per-node=4" in command and command[-2:] == ["-m", "mace.cli.run_train"]


def test_several_devices_on_a_cpu_is_a_clear_error():
    with pytest.raises(ValueError, match="GPUs only"):
        mace_command(2, "cpu")


def test_devices_is_a_mace_config_key():
    cfg = resolve_mace_config("smoke", overrides={"data": "x.xyz", "devices": 2})
    assert cfg.devices == 2
