"""Read pacemaker's progress as it is written: its ``log.txt`` lines and ``metrics.txt`` tables.

Training points come from the one-line iteration reports::

    ... I - Iteration   #3    (6 evals):        Loss: 1.8229e-01 | RMSE Energy(low): 265.28 (265.28) meV/at | Forces(low): 384.46 (384.46) meV/A | ...

and every ``display_step`` iterations from the ``FIT STATS`` / ``TEST STATS`` blocks (validation),
the ``Initial(TEST)`` line and the final ``Cycle last iteration`` blocks. Energies are meV/atom
in the log; we report meV/atom and eV/Å. The points match ``metrics.txt``/``test_metrics.txt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

ITERATION = re.compile(
    r"(?P<kind>Iteration|Initial state|Initial\(TEST\))\s*:?\s*#(?P<it>\d+).*?"
    r"Loss:\s*(?P<loss>[0-9.eE+-]+).*?RMSE Energy\(low\):\s*(?P<e>[0-9.eE+-]+).*?"
    r"Forces\(low\):\s*(?P<f>[0-9.eE+-]+)"
)
BLOCK_START = re.compile(
    r"-{5,}(?P<kind>FIT STATS|TEST STATS|INIT TEST STATS|Cycle last iteration:|TEST Cycle last iteration:)-{5,}"
)
# the block's split; None: a repeat of a one-line report (the initial validation)
BLOCK_SPLIT: dict[str, str | None] = {
    "FIT STATS": "train",
    "TEST STATS": "valid",
    "INIT TEST STATS": None,
    "Cycle last iteration:": "train",
    "TEST Cycle last iteration:": "valid",
}
BLOCK_ITERATION = re.compile(r"^Iteration:\s*#(?P<it>\d+)\s+Loss:\s+Total:\s*(?P<loss>[0-9.eE+-]+)")
BLOCK_RMSE = re.compile(r"^\s*RMSE:\s+(?P<e>[0-9.eE+-]+)\s+[0-9.eE+-]+\s+(?P<f>[0-9.eE+-]+)")


@dataclass(frozen=True)
class Point:
    iteration: int
    split: Literal["train", "valid"]
    loss: float
    rmse_energy_meV_per_atom: float
    rmse_forces_eV_per_A: float


class PacemakerLogParser:
    """Feed lines one by one (as the log grows); each call returns the points completed by it."""

    def __init__(self) -> None:
        self._block: str | None = None
        self._block_iteration: int | None = None
        self._block_loss = 0.0

    def feed(self, line: str) -> list[Point]:
        start = BLOCK_START.search(line)
        if start:
            self._block = BLOCK_SPLIT[start.group("kind")] or "ignore"
            self._block_iteration = None
            return []
        if self._block is not None:
            return self._feed_block(line)
        match = ITERATION.search(line)
        if not match:
            return []
        split: Literal["train", "valid"] = "valid" if "TEST" in match.group("kind") else "train"
        return [
            Point(
                int(match.group("it")),
                split,
                float(match.group("loss")),
                float(match.group("e")),
                float(match.group("f")) / 1000.0,
            )
        ]

    def _feed_block(self, line: str) -> list[Point]:
        it = BLOCK_ITERATION.search(line)
        if it:
            self._block_iteration = int(it.group("it"))
            self._block_loss = float(it.group("loss"))
            return []
        rmse = BLOCK_RMSE.search(line)
        if rmse and self._block_iteration is not None:
            split = self._block
            self._block = None
            if split not in ("train", "valid"):
                return []
            return [
                Point(
                    self._block_iteration,
                    cast(Literal["train", "valid"], split),
                    self._block_loss,
                    float(rmse.group("e")),
                    float(rmse.group("f")) / 1000.0,
                )
            ]
        return []


def parse_log(text: str) -> list[Point]:
    parser = PacemakerLogParser()
    return [p for line in text.splitlines() for p in parser.feed(line)]


def read_metrics_table(path: Path) -> list[dict[str, float]]:
    """``metrics.txt`` / ``test_metrics.txt``: one row per reported iteration (eV/atom, eV/Å)."""
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        return []
    header, rows = lines[0], lines[1:]
    return [{k: float(v) for k, v in zip(header, row, strict=True)} for row in rows]
