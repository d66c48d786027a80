"""``matbrain potential ...`` and ``matbrain relax`` as a user runs them."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import ase.io
import psutil
import pytest
from ase.build import bulk
from typer.testing import CliRunner

from emt_data import MLEARN
from matbrain.cli.main import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_smoke_training_on_mlearn_data(tmp_path):
    data = tmp_path / "mlearn"
    data.mkdir()
    for name in ("mlearn_Li_train.extxyz.gz", "mlearn_Si_test.extxyz.gz"):
        shutil.copy(MLEARN / name, data / name)
    result = invoke(
        "potential", "train", "--algorithm", "mace", "--level", "smoke",
        "--data", str(data), "--elements", "Li", "--prepare-data", "--with-forces",
        "--max-structures", "16", "--epochs", "2", "--output-root", str(tmp_path), "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "16 structures: 16 energies, 16 force sets" in result.output
    assert "dropped by element filter: 25" in result.output  # the Si frames
    run = next((tmp_path / "mace").glob("run_*"))
    config = (run / "config.yaml").read_text()
    assert "epochs: 2" in config and "r_max_A: 4.5" in config and "- Li" in config
    metrics = json.loads((run / "metrics.json").read_text())
    # no Li test frames in DATA: nothing of the training file is quietly held back as a test set
    assert "test" not in metrics and metrics["valid"]["forces_eV_per_A"]["n"] > 0
    listing = invoke("potential", "runs", "--root", str(tmp_path))
    assert listing.exit_code == 0 and "Li" in listing.output
    assert "valid" in listing.output  # scored on validation, and says so


def test_sigterm_stops_the_mace_trainer_too(tmp_path):
    # `kill PID` of a long training must not leave mace_run_train running orphaned
    data = tmp_path / "Li.extxyz.gz"
    shutil.copy(MLEARN / "mlearn_Li_train.extxyz.gz", data)
    cli = [sys.executable, "-c", "from matbrain.cli.main import main; main()"]
    proc = subprocess.Popen(cli + [
        "potential", "train", "--algorithm", "mace", "--level", "smoke", "--data", str(data),
        "--prepare-data", "--with-forces", "--epochs", "500", "--output-root", str(tmp_path),
        "--quiet",
    ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    while not parent.children() and time.monotonic() < deadline:
        time.sleep(0.5)
    trainers = parent.children(recursive=True)
    assert trainers, "mace_run_train did not start"
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
        _, alive = psutil.wait_procs(trainers, timeout=60)
        assert not alive, f"still running after SIGTERM: {alive}"
    finally:
        for p in trainers:
            if p.is_running():
                p.kill()  # a failed test must not leave a trainer behind


def test_with_forces_on_energy_only_data_is_an_error(tmp_path):
    atoms = bulk("Cu", cubic=True)
    atoms.info["energy"] = -3.0
    data = tmp_path / "energies.xyz"
    ase.io.write(data, [atoms] * 4, format="extxyz")
    result = invoke("potential", "train", "--data", str(data), "--prepare-data", "--with-forces",
                    "--output-root", str(tmp_path))  # fmt: skip
    assert result.exit_code == 2
    assert "only 0 of 4 structures have forces" in result.output


def test_unknown_level_and_algorithm(tmp_path):
    result = invoke("potential", "train", "--data", "x.xyz", "--level", "huge")
    assert result.exit_code == 2 and "smoke, lite, std, pro, max, competition" in result.output
    result = invoke("potential", "train", "--data", "x.xyz", "--algorithm", "nequip")
    assert result.exit_code == 2 and "valid: ace, mace" in result.output


def test_competition_profile_and_overrides(monkeypatch):
    # through the command line, as a user gives it: --competition wins over --level
    import matbrain.cli.potential as potential_cli

    seen = {}
    monkeypatch.setattr(potential_cli, "_run", lambda cfg, *a, **k: seen.setdefault("cfg", cfg))
    result = invoke("potential", "train", "--data", "x.xyz", "--level", "std", "--competition",
                    "--r-max", "6.5", "--swa")  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.level, cfg.epochs, cfg.batch_size, cfg.lr, cfg.r_max_A, cfg.num_channels) == (
        "competition", 350, 32, 2.5e-4, 6.5, 128,
    )  # fmt: skip
    assert cfg.swa and cfg.with_forces


def test_ace_batch_size_is_pacemakers_and_needs_its_solver(monkeypatch):
    import matbrain.cli.potential as potential_cli

    seen = {}
    monkeypatch.setattr(potential_cli, "_run", lambda cfg, *a, **k: seen.setdefault("cfg", cfg))
    result = invoke("potential", "train", "--data", "x.xyz", "--algorithm", "ace",
                    "--solver", "linear+pacemaker", "--batch-size", "20")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (seen["cfg"].solver, seen["cfg"].batch_size) == ("linear+pacemaker", 20)
    result = invoke("potential", "train", "--data", "x.xyz", "--algorithm", "ace",
                    "--batch-size", "20")  # fmt: skip
    assert result.exit_code == 2 and "needs --solver pacemaker" in result.output


def test_eval_and_relax_commands(trained_run, cu_xyz, tmp_path):
    out = tmp_path / "eval"
    result = invoke("potential", "eval", "--model", str(trained_run.run_dir), "--data", str(cu_xyz),
                    "--output", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["metrics"]["forces_eV_per_A"]["n"] == 32 * 8 * 3
    assert (out / "parity_forces_eval.png").exists()
    # where the force error comes from: one row per structure, groups whose shares add up
    assert len((out / "structures.csv").read_text().splitlines()) == 1 + 32
    assert sum(g["mae_share"] for g in saved["forces_by_group"]) == pytest.approx(1.0)
    assert "force error by mean force" in result.output and "largest force errors" in result.output

    cif = tmp_path / "Cu.cif"
    strained = bulk("Cu", "fcc", a=3.8, cubic=True)
    strained.rattle(0.05, seed=1)
    ase.io.write(cif, strained)
    result = invoke("relax", "--structure", str(cif), "--model", str(trained_run.model_path),
                    "--fmax", "0.05", "--smax", "0.2", "--output", str(tmp_path / "relaxed"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "converged" in result.output
    assert (tmp_path / "relaxed" / "Cu_relaxed.cif").exists()


def test_relax_errors(tmp_path):
    cif = tmp_path / "broken.cif"
    cif.write_text("data_x\n_cell_length_a 3\n")
    result = invoke("relax", "--structure", str(cif), "--model", "chgnet")
    assert result.exit_code == 2 and "broken.cif" in result.output
    good = tmp_path / "Cu.cif"
    ase.io.write(good, bulk("Cu", cubic=True))
    result = invoke("relax", "--structure", str(good), "--model", "no-such-potential")
    assert result.exit_code == 2 and "unknown potential" in result.output
    result = invoke(
        "relax", "--structure", str(good), "--model", str(tmp_path / "models" / "run_typo")
    )
    assert result.exit_code == 2 and "not found" in result.output and "run_typo" in result.output


def test_data_is_required_unless_resuming(tmp_path):
    result = invoke("potential", "train", "--level", "smoke")
    assert result.exit_code == 2 and "--data is required" in result.output
    result = invoke("potential", "train", "--resume", "--output-root", str(tmp_path))
    assert result.exit_code == 2 and "no unfinished mace run" in result.output
