"""Run folders and the run registries (one JSON line per finished run), for every kind of run."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REGISTRY_FILE = "registry.jsonl"


def new_run_dir(root: Path, group: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / group / f"run_{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / group / f"run_{stamp}_{suffix}"
    for sub in ("plots", "predictions", "logs"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def latest_unfinished_run(
    root: Path, group: str, started: Callable[[Path], bool] | None = None
) -> Path | None:
    """The newest run of ``group`` that started training (``started``, by default: it has a
    ``checkpoint.pt``) but has no ``summary.json`` (for ``--resume``)."""
    started = started or (lambda run: (run / "checkpoint.pt").exists())
    runs = sorted((root / group).glob("run_*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for run in runs:
        if started(run) and not (run / "summary.json").exists():
            return run
    return None


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def register_run(root: Path, entry: dict[str, Any], filename: str = REGISTRY_FILE) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / filename, "a") as fh:
        fh.write(json.dumps(entry) + "\n")


def read_registry(root: Path, filename: str = REGISTRY_FILE) -> list[dict[str, Any]]:
    path = root / filename
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        if line.strip():
            entries.append(json.loads(line))
    return entries
