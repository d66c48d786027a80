"""The labelled-structure store over ase.db: transitions, claiming, crash and resume."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from matbrain.active.labelling import label_pending
from matbrain.active.store import Labels, LabelStore, structure_hash


def _cells(n: int):
    out = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=i)
        out.append(atoms)
    return out


def _emt_labels(atoms) -> Labels:
    work = atoms.copy()
    work.calc = EMT()
    return Labels(work.get_potential_energy(), work.get_forces(), work.get_stress())


EMT_INFO = {"name": "emt", "version": "ase", "settings": {}}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return LabelStore(tmp_path / "al.db")
    return LabelStore(request.getfixturevalue("postgres_url"))


def test_pending_running_completed_failed(store):
    ids = [store.add(a, generation=0, config_type="rattled", source="test") for a in _cells(3)]
    assert store.counts() == {"pending": 3, "running": 0, "completed": 0, "failed": 0}
    first = store.claim("w1")
    assert first.id == ids[0] and first.config_type == "rattled"
    assert store.counts()["running"] == 1
    store.complete(first.id, _emt_labels(first.atoms), EMT_INFO, worker="w1")
    second = store.claim("w1")
    store.fail(second.id, "SCF not converged after 100 iterations", EMT_INFO, worker="w1")
    assert store.counts() == {"pending": 1, "running": 0, "completed": 1, "failed": 1}
    assert store.failures() == [(second.id, "SCF not converged after 100 iterations")]
    done = store.completed()
    assert len(done) == 1 and done[0].info["oracle"] == "emt"
    np.testing.assert_allclose(done[0].get_forces(), _emt_labels(first.atoms).forces)
    with pytest.raises(ValueError, match="not running"):
        store.complete(first.id, _emt_labels(first.atoms), worker="w1")  # never overwrite


def test_duplicates_are_not_stored_twice(store):
    atoms = _cells(1)[0]
    assert store.add(atoms) is not None
    assert store.add(atoms.copy()) is None
    assert structure_hash(atoms) != structure_hash(_cells(2)[1])


def test_nan_labels_are_refused_and_nothing_is_lost(store):
    atoms = _cells(1)[0]
    store.add(atoms)
    claimed = store.claim()
    bad = _emt_labels(atoms)
    with pytest.raises(ValueError, match="forces"):
        store.complete(claimed.id, Labels(bad.energy, bad.forces * np.nan), worker=claimed.worker)
    assert store.counts()["running"] == 1  # still claimed, not half-written


def test_crash_mid_labelling_then_resume_loses_nothing(store):
    for atoms in _cells(5):
        store.add(atoms)
    labelled = {}
    for _ in range(3):
        c = store.claim("w")
        labels = _emt_labels(c.atoms)
        store.complete(c.id, labels, worker="w")
        labelled[c.id] = labels.energy
    store.claim("w", lease_s=0.2)  # the worker dies here, its row stays running
    assert store.counts() == {"pending": 1, "running": 1, "completed": 3, "failed": 0}
    resumed = LabelStore(store.url)  # a new process opens the same store
    assert resumed.release_expired() == 0  # a live lease is never taken
    time.sleep(0.3)
    got = []
    while (c := resumed.claim("w2")) is not None:
        got.append(c.id)
        resumed.complete(c.id, _emt_labels(c.atoms), worker="w2")
    assert len(got) == 2  # the pending row and the one whose lease ran out
    assert resumed.counts()["completed"] == 5
    for atoms in resumed.completed():
        if atoms.info["db_id"] in labelled:
            assert atoms.get_potential_energy() == labelled[atoms.info["db_id"]]


def _claim_all(url: str, queue) -> None:
    store = LabelStore(url)
    got = []
    while (c := store.claim(f"pid{os.getpid()}")) is not None:
        got.append(c.id)
    queue.put(got)


def test_three_workers_never_claim_the_same_row(store):
    url = store.url
    for atoms in _cells(40):
        store.add(atoms)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_claim_all, args=(url, queue)) for _ in range(3)]
    for w in workers:
        w.start()
    claimed = [i for _ in workers for i in queue.get(timeout=120)]
    for w in workers:
        w.join(timeout=60)
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 40


def test_only_the_lease_holder_writes_and_lost_leases_end_in_failed(store):
    store.add(_cells(1)[0])
    stale = store.claim("w1", lease_s=0.05)
    time.sleep(0.1)  # w1 stalls; its lease runs out and w2 takes the row
    fresh = store.claim("w2", lease_s=60)
    assert fresh.id == stale.id
    labels = _emt_labels(stale.atoms)
    with pytest.raises(ValueError, match="leased to w2, not w1"):
        store.complete(stale.id, labels, worker="w1")
    with pytest.raises(ValueError, match="leased to w2, not w1"):
        store.fail(stale.id, "late", worker="w1")
    store.release(fresh.id, "w2")  # given back on purpose: does not count as an attempt
    for attempt in range(2):  # w1 lost one lease; two more workers die holding it
        assert store.claim(f"dies{attempt}", lease_s=0.05).id == stale.id
        time.sleep(0.1)
    assert store.claim("w3") is None
    assert store.failures() == [(stale.id, "3 leases expired (workers stopped), last dies1")]


def test_a_kept_lease_outlives_its_length(store):
    store.add(_cells(1)[0])
    claimed = store.claim("slow", lease_s=0.3)
    with store.keep_lease(claimed, lease_s=0.3):
        time.sleep(1.0)  # a job three times longer than the lease
        assert store.claim("other") is None  # still held
    store.complete(claimed.id, _emt_labels(claimed.atoms), worker="slow")
    assert store.counts()["completed"] == 1


def _hold_then_hang(url: str, ready) -> None:
    store = LabelStore(url)
    claimed = store.claim("doomed", lease_s=0.5)
    with store.keep_lease(claimed, lease_s=0.5):
        ready.put(claimed.id)
        time.sleep(600)  # killed here, mid-job


def test_two_labellers_with_a_worker_killed_mid_job_label_every_row_once(store):
    for atoms in _cells(12):
        store.add(atoms)
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    doomed = ctx.Process(target=_hold_then_hang, args=(store.url, ready))
    doomed.start()
    killed_row = ready.get(timeout=120)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.join(timeout=30)
    time.sleep(0.6)  # its lease runs out: nobody renews it any more
    report = label_pending(store.url, "emt", workers=2, lease_s=5.0)
    assert report.completed == 12 and report.failed == 0 and report.requeued == 1
    assert store.counts() == {"pending": 0, "running": 0, "completed": 12, "failed": 0}
    row = store.db.get(id=killed_row)
    assert row.attempts == 2 and row.worker != "doomed"  # retried once, by a live labeller
    assert len({a.info["db_id"] for a in store.completed()}) == 12


def test_stats_by_generation(store):
    for g, atoms in enumerate(_cells(3)):
        store.add(atoms, generation=g % 2)
    store.claim()
    table = {row["generation"]: row for row in store.stats()}
    assert table[0]["total"] == 2 and table[0]["running"] == 1 and table[1]["pending"] == 1


def test_db_cli_import_stats_export(tmp_path):
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator
    from typer.testing import CliRunner

    from matbrain.cli.main import app

    frames = []
    for i, atoms in enumerate(_cells(4)):
        if i < 2:
            labels = _emt_labels(atoms)
            atoms.calc = SinglePointCalculator(
                atoms, energy=labels.energy, forces=labels.forces, stress=labels.stress
            )
        frames.append(atoms)
    xyz = tmp_path / "seeds.xyz"
    ase.io.write(xyz, frames, format="extxyz")
    db = str(tmp_path / "al.db")
    runner = CliRunner()
    result = runner.invoke(app, ["db", "import", str(xyz), "--db", db])
    assert result.exit_code == 0 and "imported 2 labelled, 2 pending" in result.output
    result = runner.invoke(app, ["db", "import", str(xyz), "--db", db])
    assert "4 duplicates skipped" in result.output
    result = runner.invoke(app, ["db", "label", "--db", db, "--oracle", "emt"])
    assert result.exit_code == 0 and "labelled 2, failed 0" in result.output
    result = runner.invoke(app, ["db", "label", "--db", db, "--oracle", "vasp"])
    assert result.exit_code == 2 and "unknown oracle" in result.output
    result = runner.invoke(app, ["db", "stats", "--db", db])
    assert result.exit_code == 0 and "generation" in result.output
    out = tmp_path / "out.xyz"
    result = runner.invoke(app, ["db", "export", "--db", db, "--output", str(out)])
    assert result.exit_code == 0
    back = ase.io.read(out, ":")
    assert len(back) == 4
    assert back[0].get_potential_energy() == pytest.approx(frames[0].get_potential_energy())
    result = runner.invoke(app, ["db", "stats", "--db", str(tmp_path / "missing.db")])
    assert result.exit_code == 2 and "database not found" in result.output


def test_import_keeps_mlearn_stress(tmp_path):
    import ase.io
    from ase.stress import full_3x3_to_voigt_6_stress

    from emt_data import MLEARN
    from matbrain.active.transfer import import_extxyz
    from matbrain.potentials.data import mlearn_stress_to_ase

    source = MLEARN / "mlearn_Cu_test.extxyz.gz"
    store = LabelStore(str(tmp_path / "mlearn.db"))
    report = import_extxyz(store, source)
    frames = ase.io.read(source, ":")
    assert report.completed == len(frames)
    stored = store.completed()
    assert len(stored) == len(frames)
    for atoms, original in zip(stored, frames, strict=True):
        expected = full_3x3_to_voigt_6_stress(mlearn_stress_to_ase(original))
        np.testing.assert_allclose(atoms.get_stress(), expected, atol=1e-9)
