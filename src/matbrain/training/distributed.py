"""Data-parallel training with PyTorch DDP: the process group, rank-0-only writing, launching.

A property model trains on several processes (GPUs, nodes, or CPU cores) when ``torchrun``
starts the processes, or when ``matbrain train --devices N`` starts them itself through
``torch.distributed.run``. Every process holds the whole model; each epoch's global batches of
``batch_size x world_size`` structures are split between the processes, and DDP averages the
gradients, so one step is the step of one process on the global batch. Validation is split too and
gathered, so every process takes the same decisions (best epoch, early stopping); only rank 0
writes files.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    """Where this process stands among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This process's device: its own GPU (``LOCAL_RANK``) when training on CUDA."""
        if self.enabled and device.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process (any picklable object)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, value: float) -> float:
        """The sum of ``value`` over every process (one small all-reduce)."""
        if not self.enabled:
            return value
        total = torch.tensor([value], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            total = total.cuda()
        dist.all_reduce(total)
        return float(total.item())

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order, on every process."""
        if not self.enabled:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def shard(self, indices: np.ndarray) -> np.ndarray:
        """This process's share of ``indices`` (contiguous, sizes differing by at most one)."""
        if not self.enabled:
            return indices
        return np.array_split(np.asarray(indices), self.world_size)[self.rank]

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (it fills caches), the others after it."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group that ``torchrun`` describes in the environment (WORLD_SIZE > 1):
    NCCL on GPUs, gloo on CPUs. A single process returns rank 0 of 1 and starts nothing."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_command(
    argv: Sequence[str], devices: int, num_nodes: int = 1, rdzv_endpoint: str | None = None
) -> list[str]:
    """The ``torch.distributed.run`` command that runs ``matbrain argv`` on ``devices`` processes
    per node and ``num_nodes`` nodes (the same command runs on every node)."""
    if devices < 1 or num_nodes < 1:
        raise ValueError("--devices and --num-nodes must be at least 1")
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={devices}"]
    if num_nodes == 1:
        command.append("--standalone")
    else:
        if rdzv_endpoint is None:
            raise ValueError(
                "training on several nodes needs --rdzv-endpoint HOST:PORT (a host every node "
                "reaches; run the same command on each node)"
            )
        command += [f"--nnodes={num_nodes}", "--rdzv-backend=c10d",
                    f"--rdzv-endpoint={rdzv_endpoint}"]  # fmt: skip
    return [*command, "-m", "matbrain.cli.main", *argv]


def relaunch(argv: Sequence[str], devices: int, num_nodes: int, rdzv: str | None) -> int:
    """Run ``matbrain argv`` under ``torch.distributed.run``; its exit code."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.call(launch_command(argv, devices, num_nodes, rdzv), env=env)


def without_launch_options(argv: Sequence[str]) -> list[str]:
    """``argv`` less ``--devices``, ``--num-nodes`` and ``--rdzv-endpoint`` (the launched
    processes must not launch again)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("--devices", "--num-nodes", "--rdzv-endpoint"):
            skip = "=" not in arg
            continue
        out.append(arg)
    return out
