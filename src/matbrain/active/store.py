"""The labelled-structure store: a thin layer over ``ase.db`` (SQLite file, or PostgreSQL URL).

Each row is one structure with key-value pairs ``status`` (pending / running / completed /
failed), ``generation``, ``config_type``, ``source``, ``structure_hash``, and once labelled the
oracle's ``oracle``, ``oracle_version``, ``oracle_settings`` (JSON), timestamps, and energy,
forces and stress as the row's calculator results (what ``row.toatoms()`` gives back).

Claiming a row (pending -> running) happens under a lock, so two workers never label the same
structure: a lock file next to an SQLite database, an advisory lock on PostgreSQL. A worker that
dies leaves its row ``running``; :meth:`LabelStore.requeue_running` puts such rows back to
pending and nothing labelled is ever touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from matbrain.common.identity import structure_key

Status = Literal["pending", "running", "completed", "failed"]
STATUSES: tuple[Status, ...] = ("pending", "running", "completed", "failed")
ADVISORY_LOCK_KEY = 7_204_551  # any fixed 64-bit key shared by all matbrain workers


def structure_hash(atoms: Atoms, decimals: int = 4) -> str:
    """Identity of a structure for deduplication: a translated or permuted copy is the same
    structure (:func:`matbrain.common.identity.structure_key`). The ``k`` prefix keeps ASE's
    database from reading an all-digit key as a number (and refusing it)."""
    return "k" + structure_key(atoms, decimals)


@dataclass(frozen=True)
class Claimed:
    id: int
    atoms: Atoms
    generation: int
    config_type: str


@dataclass(frozen=True)
class Labels:
    """What an oracle returns: energy (eV), forces (eV/Å), stress (eV/Å³, ASE Voigt) or None."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None = None

    def check(self, n_atoms: int) -> None:
        if not np.isfinite(self.energy):
            raise ValueError(f"energy is {self.energy}")
        forces = np.asarray(self.forces)
        if forces.shape != (n_atoms, 3) or not np.isfinite(forces).all():
            raise ValueError("forces are missing, of the wrong shape, or not finite")
        if self.stress is not None and not np.isfinite(np.asarray(self.stress)).all():
            raise ValueError("stress is not finite")


class LabelStore:
    """``LabelStore("al.db")`` or ``LabelStore("postgresql://user:pw@host/db")``."""

    def __init__(self, url: str | Path) -> None:
        import ase.db

        self.url = str(url)
        self.is_postgres = self.url.startswith(("postgresql://", "postgres://"))
        if not self.is_postgres:
            Path(self.url).parent.mkdir(parents=True, exist_ok=True)
        self.db = ase.db.connect(self.url, use_lock_file=False)

    # ----------------------------------------------------------------------------- writing
    def add(
        self,
        atoms: Atoms,
        generation: int = 0,
        config_type: str = "initial",
        source: str = "",
        labels: Labels | None = None,
        oracle: dict[str, Any] | None = None,
    ) -> int | None:
        """Add one structure (pending, or completed with ``labels``); ``None`` if already stored."""
        key = structure_hash(atoms)
        if self.db.count(structure_hash=key) > 0:
            return None
        kvp: dict[str, Any] = {
            "status": "pending",
            "generation": int(generation),
            "config_type": config_type,
            "source": source or "unknown",
            "structure_hash": key,
            "created_at": time.time(),
        }
        row_atoms = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        if labels is not None:
            labels.check(len(atoms))
            row_atoms.calc = _single_point(row_atoms, labels)
            kvp.update(_oracle_kvp(oracle), status="completed", finished_at=time.time())
        return int(self.db.write(row_atoms, **kvp))

    def claim(self, worker: str = "") -> Claimed | None:
        """Mark the oldest pending row running and return it; ``None`` when nothing is pending."""
        with self._claim_lock():
            rows = list(self.db.select(status="pending", sort="id", limit=1))
            if not rows:
                return None
            row = rows[0]
            self.db.update(
                row.id,
                status="running",
                worker=worker or f"pid{os.getpid()}",
                claimed_at=time.time(),
            )
        return Claimed(row.id, row.toatoms(), int(row.generation), str(row.config_type))

    def complete(self, row_id: int, labels: Labels, oracle: dict[str, Any] | None = None) -> None:
        row = self.db.get(id=row_id)
        if row.status != "running":
            raise ValueError(f"row {row_id} is {row.status}, not running: refusing to overwrite it")
        atoms = row.toatoms()
        labels.check(len(atoms))
        atoms.calc = _single_point(atoms, labels)
        self.db.update(
            row_id, atoms=atoms, status="completed", finished_at=time.time(), **_oracle_kvp(oracle)
        )

    def fail(self, row_id: int, reason: str, oracle: dict[str, Any] | None = None) -> None:
        self.db.update(
            row_id,
            status="failed",
            error=reason[:2000] or "unknown error",
            finished_at=time.time(),
            **_oracle_kvp(oracle),
        )

    def requeue_running(self, older_than_s: float = 0.0) -> int:
        """Put rows left ``running`` (by a worker that died) back to pending; return how many."""
        now = time.time()
        ids = [
            row.id
            for row in self.db.select(status="running")
            if now - float(row.get("claimed_at", 0.0)) >= older_than_s
        ]
        for row_id in ids:
            self.db.update(row_id, status="pending", delete_keys=["worker", "claimed_at"])
        return len(ids)

    def requeue_failed(self) -> int:
        ids = [row.id for row in self.db.select(status="failed")]
        for row_id in ids:
            self.db.update(row_id, status="pending", delete_keys=["error", "finished_at"])
        return len(ids)

    # ----------------------------------------------------------------------------- reading
    def counts(self) -> dict[str, int]:
        return {s: self.db.count(status=s) for s in STATUSES}

    def stats(self) -> list[dict[str, Any]]:
        """Counts by generation and status (one dict per generation)."""
        table: dict[int, Counter[str]] = {}
        for row in self.db.select(columns=["key_value_pairs"]):
            table.setdefault(int(row.get("generation", 0)), Counter())[row.get("status", "?")] += 1
        return [
            {
                "generation": g,
                **{s: table[g].get(s, 0) for s in STATUSES},
                "total": sum(table[g].values()),
            }
            for g in sorted(table)
        ]

    def completed(self, generations: list[int] | None = None) -> list[Atoms]:
        """Labelled structures (with their calculator results and metadata in ``info``)."""
        out = []
        for row in self.db.select(status="completed", sort="id"):
            if generations is not None and int(row.generation) not in generations:
                continue
            atoms = row.toatoms()
            atoms.info.update(
                {k: row.get(k) for k in ("generation", "config_type", "source", "oracle")}
            )
            atoms.info["db_id"] = row.id
            out.append(atoms)
        return out

    def failures(self) -> list[tuple[int, str]]:
        return [(row.id, str(row.get("error", ""))) for row in self.db.select(status="failed")]

    # ----------------------------------------------------------------------------- locking
    @contextlib.contextmanager
    def _claim_lock(self) -> Iterator[None]:
        if self.is_postgres:
            with self._pg_advisory_lock():
                yield
            return
        lock_path = self.url + ".claim.lock"
        with open(lock_path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _pg_advisory_lock(self) -> Iterator[None]:
        import psycopg2  # the driver ase.db's PostgreSQL backend uses

        conn = psycopg2.connect(self.url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
            yield
        finally:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
            conn.close()


def _single_point(atoms: Atoms, labels: Labels) -> SinglePointCalculator:
    results: dict[str, Any] = {
        "energy": float(labels.energy),
        "forces": np.asarray(labels.forces, float),
    }
    if labels.stress is not None:
        results["stress"] = np.asarray(labels.stress, float)
    return SinglePointCalculator(atoms, **results)


def _oracle_kvp(oracle: dict[str, Any] | None) -> dict[str, Any]:
    if not oracle:
        return {}
    return {
        "oracle": str(oracle.get("name", "unknown")),
        "oracle_version": str(oracle.get("version", "unknown")),
        "oracle_settings": json.dumps(oracle.get("settings", {}), sort_keys=True),
    }
