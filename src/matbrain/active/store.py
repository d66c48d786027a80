"""The labelled-structure store: a thin layer over ``ase.db`` (SQLite file, or PostgreSQL URL).

Each row is one structure with key-value pairs ``status`` (pending / running / completed /
failed), ``generation``, ``config_type``, ``source``, ``structure_hash``, and once labelled the
oracle's ``oracle``, ``oracle_version``, ``oracle_settings`` (JSON), timestamps, and energy,
forces and stress as the row's calculator results (what ``row.toatoms()`` gives back).

Claims are leases. A worker claims a row (pending -> running) for ``lease_s`` seconds and records
who holds it (``worker``, ``host``, ``claimed_at``, ``lease_expires``, ``attempts``); a long job
renews its lease (:meth:`LabelStore.keep_lease`). Only the holder of a live lease can complete or
fail its row. A worker that dies stops renewing: at the next claim by anyone its expired row goes
back to pending, or to failed after ``max_attempts`` lost leases, and nothing labelled is ever
touched. Claims, completions and ``add`` (with its duplicate check) run in one database
transaction each: on SQLite a write transaction (``BEGIN IMMEDIATE``, no lock files), on
PostgreSQL under the database's advisory lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
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
LEASE_S = 600.0  # a claim lives this long unless renewed; keep_lease renews it every third of it
MAX_ATTEMPTS = 3  # leases a row may lose (its worker died) before it is marked failed


def new_worker_id() -> str:
    """``host:pid:random``, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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
    worker: str


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
        if not self.is_postgres:
            self.db.count()  # create the tables now: ase commits that on its own, not inside ours

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
        with self._transaction():  # two workers adding one structure store it once
            if self.db.count(structure_hash=key) > 0:
                return None
            return int(self.db.write(row_atoms, **kvp))

    def claim(
        self, worker: str | None = None, lease_s: float = LEASE_S, max_attempts: int = MAX_ATTEMPTS
    ) -> Claimed | None:
        """Lease the oldest pending row to ``worker`` and return it; ``None`` when none is pending.

        Expired leases (their worker stopped renewing) are returned to pending first, or marked
        failed once a row has lost ``max_attempts`` of them."""
        worker = worker or new_worker_id()
        with self._transaction():
            self._expire_leases(max_attempts)
            rows = list(self.db.select(status="pending", sort="id", limit=1))
            if not rows:
                return None
            row = rows[0]
            now = time.time()
            self.db.update(
                row.id,
                status="running",
                worker=worker,
                host=socket.gethostname(),
                claimed_at=now,
                lease_expires=now + lease_s,
                attempts=int(row.get("attempts", 0)) + 1,
            )
        return Claimed(row.id, row.toatoms(), int(row.generation), str(row.config_type), worker)

    def renew(self, row_id: int, worker: str, lease_s: float = LEASE_S) -> None:
        """Extend ``worker``'s lease on a row it holds."""
        with self._transaction():
            self._holder_check(row_id, worker)
            self.db.update(row_id, lease_expires=time.time() + lease_s)

    @contextlib.contextmanager
    def keep_lease(self, claimed: Claimed, lease_s: float = LEASE_S) -> Iterator[None]:
        """Renew the lease on ``claimed`` every ``lease_s / 3`` seconds while the block runs (a DFT
        job can take hours); a worker that dies stops renewing and its lease runs out."""
        stop = threading.Event()

        def renew() -> None:
            store = LabelStore(self.url)  # its own connections: sqlite3 objects stay per thread
            while not stop.wait(lease_s / 3):
                with contextlib.suppress(Exception):  # a missed renewal is retried next time
                    store.renew(claimed.id, claimed.worker, lease_s)

        thread = threading.Thread(target=renew, name=f"lease-{claimed.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def complete(
        self, row_id: int, labels: Labels, oracle: dict[str, Any] | None = None, *, worker: str
    ) -> None:
        """Store the labels of a row that ``worker`` holds; anything else is refused."""
        with self._transaction():
            row = self._holder_check(row_id, worker)
            atoms = row.toatoms()
            labels.check(len(atoms))
            atoms.calc = _single_point(atoms, labels)
            self.db.update(row_id, atoms=atoms, status="completed", finished_at=time.time(),
                           **_oracle_kvp(oracle))  # fmt: skip

    def fail(
        self, row_id: int, reason: str, oracle: dict[str, Any] | None = None, *, worker: str
    ) -> None:
        with self._transaction():
            self._holder_check(row_id, worker)
            self.db.update(
                row_id,
                status="failed",
                error=reason[:2000] or "unknown error",
                finished_at=time.time(),
                **_oracle_kvp(oracle),
            )

    def release(self, row_id: int, worker: str) -> None:
        """Give a held row back (its worker was stopped on purpose): pending, attempt not counted."""
        with self._transaction():
            row = self._holder_check(row_id, worker)
            self.db.update(row_id, status="pending", attempts=max(int(row.get("attempts", 1)) - 1, 0),
                           delete_keys=["worker", "lease_expires"])  # fmt: skip

    def release_expired(self, max_attempts: int = MAX_ATTEMPTS) -> int:
        """Return rows whose lease ran out to pending (or failed); how many there were."""
        with self._transaction():
            return self._expire_leases(max_attempts)

    def requeue_failed(self) -> int:
        """Failed rows back to pending, with a fresh count of attempts (``db label --retry-failed``)."""
        with self._transaction():
            ids = [row.id for row in self.db.select(status="failed")]
            for row_id in ids:
                self.db.update(row_id, status="pending", attempts=0,
                               delete_keys=["error", "finished_at"])  # fmt: skip
        return len(ids)

    def _holder_check(self, row_id: int, worker: str) -> Any:
        row = self.db.get(id=row_id)
        if row.status != "running":
            raise ValueError(f"row {row_id} is {row.status}, not running: refusing to overwrite it")
        if row.get("worker") != worker:
            raise ValueError(
                f"row {row_id} is leased to {row.get('worker')}, not {worker}: refusing to write it"
            )
        if float(row.get("lease_expires", 0.0)) < time.time():
            raise ValueError(f"the lease of {worker} on row {row_id} has expired")
        return row

    def _expire_leases(self, max_attempts: int) -> int:
        now = time.time()
        expired = [
            row
            for row in self.db.select(status="running")
            if float(row.get("lease_expires", 0.0)) < now
        ]
        for row in expired:
            lost = int(row.get("attempts", 1))
            if lost >= max_attempts:
                self.db.update(row.id, status="failed", finished_at=now,
                               error=f"{lost} leases expired (workers stopped), last {row.get('worker')}")  # fmt: skip
            else:
                self.db.update(row.id, status="pending", delete_keys=["worker", "lease_expires"])
        return len(expired)

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
    def _transaction(self) -> Iterator[None]:
        """One atomic read-modify-write: no other worker's claim, completion or add interleaves."""
        if self.is_postgres:
            with self._pg_advisory_lock():
                yield
            return
        if self.db.connection is not None:  # already inside one (nested call)
            yield
            return
        with self.db as db:  # one connection: commit at the end, roll back on an error
            db.connection.execute("BEGIN IMMEDIATE")  # the write lock, taken before reading
            yield

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
