"""Real pacemaker fits on a small EMT-labelled Cu set (EMT: unit tests only), publishing as a
versioned potential, the extrapolation grade γ and D-optimal selection with pyace."""

from __future__ import annotations

import json
import signal
import threading
import time

import numpy as np
import pytest
from ase.build import bulk

from emt_data import emt_cu_frames
from matbrain.active.selection import SelectionConfig, extrapolation_grades, select
from matbrain.potentials.ace.config import AceTrainingConfig
from matbrain.potentials.ace.fit import (
    BEST_INTERIM,
    PacemakerFailed,
    fit_ace,
    pacemaker_executable,
)
from matbrain.potentials.ace.versions import list_versions, publish

pytestmark = pytest.mark.skipif(
    pacemaker_executable() is None, reason="pacemaker (python-ace) is not installed"
)


@pytest.fixture(scope="module")
def cu_frames():
    frames = emt_cu_frames(40)
    for i, a in enumerate(frames):
        a.info.update(db_id=i + 1, config_type="rattled")
    return frames


@pytest.fixture(scope="module")
def ace_fit(cu_frames, tmp_path_factory):
    cfg = AceTrainingConfig(cutoff_A=5.0, functions_per_element=30, max_iter=15, display_step=5,
                            early_stopping_patience=None)  # fmt: skip
    seen = []
    fit = fit_ace(cu_frames, cfg, tmp_path_factory.mktemp("ace") / "fit", on_point=seen.append)
    return fit, seen


def test_real_pacemaker_fit_lowers_errors_and_reports_live(ace_fit, cu_frames):
    fit, seen = ace_fit
    assert fit.potential_yaml.name == "output_potential.yaml" and fit.stopped_early is None
    assert (fit.n_train, fit.n_valid) == (36, 4)
    train = [p for p in seen if p.split == "train"]
    valid = [p for p in seen if p.split == "valid"]
    assert len(train) >= 15 and [p.iteration for p in valid][:3] == [0, 5, 10]
    assert train[-1].rmse_forces_eV_per_A < 0.5 * train[0].rmse_forces_eV_per_A
    assert valid[-1].rmse_forces_eV_per_A < valid[0].rmse_forces_eV_per_A
    split = json.loads((fit.workdir / "split.json").read_text())
    assert not set(split["train_db_ids"]) & set(split["valid_db_ids"])

    from pyace import PyACECalculator

    atoms = cu_frames[0].copy()
    atoms.calc = PyACECalculator(str(fit.potential_yaml))
    assert np.isfinite(atoms.get_potential_energy()) and atoms.get_forces().shape == (8, 3)


def test_publish_versions_gamma_and_d_optimal_selection(ace_fit, cu_frames, tmp_path):
    fit, _ = ace_fit
    version = publish(fit, tmp_path / "potentials", 0, {"note": "test"})
    for path in (version.yace, version.yaml, version.asi, version.metrics_file):
        assert path.exists(), path
    record = version.metrics()
    assert record["generation"] == 0 and record["n_train"] == 36 and record["note"] == "test"
    assert record["packages"]["python-ace"] and record["matbrain_version"]
    assert len(record["train_db_ids"]) == 36 and "rmse_forces_eV_per_A" in record["valid"]
    with pytest.raises(FileExistsError, match="never overwritten"):
        publish(fit, tmp_path / "potentials", 0)
    assert [v.generation for v in list_versions(tmp_path / "potentials")] == [0]

    from pyace import PyACECalculator

    from matbrain.potentials.ace.reference import pacemaker_reference_energies

    # the .yace is the .yaml plus pacemaker's reference energy per atom: energies in the frame of
    # the data (the .yaml, like pacemaker's own .yace, leaves it out)
    dft = cu_frames[0].get_potential_energy()  # (a copy would drop the labels' calculator)
    atoms = cu_frames[0].copy()
    atoms.calc = PyACECalculator(str(version.yace))
    e_yace = atoms.get_potential_energy()
    atoms.calc = PyACECalculator(str(version.yaml))
    e0 = pacemaker_reference_energies(version.yaml)["Cu"]
    assert e_yace == pytest.approx(atoms.get_potential_energy() + len(atoms) * e0, abs=1e-6)
    assert abs(e_yace - dft) / len(atoms) < 0.05, (e_yace, dft)

    # γ: about 1 or below on training structures, far above on structures unlike any of them
    train_ids = set(record["train_db_ids"])
    training = [a for a in cu_frames if a.info["db_id"] in train_ids]
    squeezed = []
    for k, scale in enumerate((0.80, 0.82, 0.84, 1.15, 1.2)):
        a = bulk("Cu", "fcc", a=3.61 * scale, cubic=True).repeat((1, 1, 2))
        a.rattle(0.15, seed=k)
        squeezed.append(a)
    g_train = extrapolation_grades(training, version)
    g_far = extrapolation_grades(squeezed, version)
    assert g_train.max() < 1.5 and g_far.min() > 2 * g_train.max()

    pool = training[:10] + squeezed
    grades = np.concatenate([g_train[:10], g_far])
    cfg = SelectionConfig(low=1.5, high=1e6, budget=3, method="d-optimal")
    chosen = select(pool, grades, cfg, version)
    assert len(chosen.indices) == 3 and all(i >= 10 for i in chosen.indices)  # only the window
    assert chosen.in_window == 5 and len(set(chosen.indices)) == 3


def test_early_stop_sends_sigint_and_keeps_best_interim_potential(cu_frames, tmp_path):
    # a huge min_delta makes every report after the first a strike: stops after 2 reports.
    # SIGINT ignored here, as in a job started with `&` from a script (CI, nohup): pacemaker must
    # still get a working SIGINT
    cfg = AceTrainingConfig(cutoff_A=5.0, functions_per_element=20, max_iter=200, display_step=2,
                            early_stopping_patience=2, early_stopping_min_delta=100.0)  # fmt: skip
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        fit = fit_ace(cu_frames, cfg, tmp_path / "fit")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert fit.stopped_early is not None and "rose for 2 reports" in fit.stopped_early
    assert fit.potential_yaml.name == BEST_INTERIM
    assert fit.final("train").iteration < 200  # stopped long before max_iter
    # the best report is iteration 0; pacemaker may not have written an interim potential by the
    # time its line is read, and then the first one after it is kept, and the metrics say which
    metrics = fit.metrics()
    assert fit.best_iteration == 0 and 0 <= fit.kept_iteration <= fit.final("train").iteration
    assert metrics["valid"]["iteration"] == fit.kept_iteration == metrics["kept_iteration"]
    assert not (tmp_path / "fit" / "output_potential.yaml").exists()


def _kill_pacemaker() -> bool:
    """SIGKILL this test's pacemaker process; False when there is none (yet)."""
    import psutil

    found = False
    for child in psutil.Process().children(recursive=True):
        try:
            if "pacemaker" in " ".join(child.cmdline()):
                child.kill()
                found = True
        except psutil.NoSuchProcess:
            pass
    return found


def test_pacemaker_killed_keeps_best_so_far_or_says_memory(cu_frames, tmp_path):
    # SIGKILL, what the out-of-memory killer sends: after a validation report the best potential
    # so far is kept and the reason recorded; before any report the error names the memory knobs
    cfg = AceTrainingConfig(cutoff_A=5.0, functions_per_element=20, max_iter=200, display_step=2,
                            early_stopping_patience=None, batch_size=40)  # fmt: skip

    def kill_after_first_report(point):
        if point.split == "valid" and point.iteration >= 2:
            _kill_pacemaker()

    fit = fit_ace(cu_frames, cfg, tmp_path / "late", on_point=kill_after_first_report)
    assert fit.stopped_early is not None and "out-of-memory" in fit.stopped_early
    assert "batch_size (40 structures" in fit.stopped_early
    assert fit.potential_yaml.name == BEST_INTERIM and fit.kept_iteration is not None
    assert fit.final("train").iteration < 200

    def kill_when_started():  # long before pacemaker's first report (it loads TensorFlow first)
        for _ in range(600):
            if _kill_pacemaker():
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    try:
        with pytest.raises(PacemakerFailed, match="out-of-memory killer: lower batch_size"):
            fit_ace(cu_frames, cfg, tmp_path / "early")
    finally:
        killer.join()


def test_publishing_the_same_fit_again_is_idempotent(cu_frames, tmp_path):
    # the loop killed after publishing generation 0 but before recording the step reruns the
    # step: it must get the published version back, not a "never overwritten" error or a refit
    from matbrain.active.ace_training import train_from_store
    from matbrain.active.store import Labels, LabelStore

    db = str(tmp_path / "al.db")
    store = LabelStore(db)
    for atoms in cu_frames[:16]:
        store.add(atoms, labels=Labels(atoms.get_potential_energy(), atoms.get_forces()),
                  oracle={"name": "emt", "version": "", "settings": {}})  # fmt: skip
    cfg = AceTrainingConfig(cutoff_A=4.5, functions_per_element=8, max_iter=3, display_step=5,
                            early_stopping_patience=None)  # fmt: skip
    first = train_from_store(db, cfg, tmp_path / "potentials", tmp_path / "work", generation=0)
    stamp = (tmp_path / "work" / "fit_gen_00" / "input.yaml").stat().st_mtime_ns
    again = train_from_store(db, cfg, tmp_path / "potentials", tmp_path / "work", generation=0)
    assert again == first
    assert (tmp_path / "work" / "fit_gen_00" / "input.yaml").stat().st_mtime_ns == stamp
    other = cfg.model_copy(update={"max_iter": 4})  # different settings: never overwritten
    with pytest.raises(FileExistsError, match="never overwritten"):
        train_from_store(db, other, tmp_path / "potentials", tmp_path / "work", generation=0)
