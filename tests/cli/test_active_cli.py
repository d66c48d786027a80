"""``matbrain db``, ``matbrain ace train`` / ``mlip-auto train`` and ``matbrain loop`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ase.io
import pytest
import yaml
from typer.testing import CliRunner

from emt_data import emt_cu_frames
from matbrain.cli.ace import mlip_auto
from matbrain.cli.main import app
from matbrain.potentials.ace.fit import pacemaker_executable

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_errors_are_one_clear_line(tmp_path):
    result = invoke("ace", "train", "--db", str(tmp_path / "none.db"))
    assert result.exit_code == 2 and "database not found" in result.output
    result = runner.invoke(mlip_auto, ["train", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2 and "database not found" in result.output
    result = invoke("loop", "run", "--config", str(tmp_path / "al.yaml"))
    assert result.exit_code == 2 and "loop config not found" in result.output
    (tmp_path / "al.yaml").write_text(
        yaml.safe_dump({"initial": {"seeds": ["x.cif"]}, "generation": 2})
    )
    result = invoke("loop", "run", "--config", str(tmp_path / "al.yaml"))
    assert (
        result.exit_code == 2 and "generation" in result.output and "Extra inputs" in result.output
    )


def test_example_config_is_valid(tmp_path):
    from matbrain.active.loop_config import load_loop_config

    result = invoke("loop", "example")
    (tmp_path / "al.yaml").write_text(result.output)
    cfg = load_loop_config(tmp_path / "al.yaml")
    assert cfg.oracle.name == "gpaw" and cfg.generations == 2


def test_mlip_auto_is_an_installed_command():
    exe = Path(sys.executable).parent / "mlip-auto"
    assert exe.exists(), "pip install -e . should install the mlip-auto console command"
    out = subprocess.run([str(exe), "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--max-iter" in out.stdout


@pytest.mark.skipif(
    pacemaker_executable() is None, reason="pacemaker (python-ace) is not installed"
)
def test_ace_train_publishes_new_versions(tmp_path):
    frames = emt_cu_frames(20)
    ase.io.write(tmp_path / "labelled.xyz", frames, format="extxyz")
    db = str(tmp_path / "al.db")
    assert invoke("db", "import", str(tmp_path / "labelled.xyz"), "--db", db).exit_code == 0
    args = ("ace", "train", "--db", db, "--potentials", str(tmp_path / "potentials"),
            "--workdir", str(tmp_path / "fits"), "--max-iter", "5", "--functions", "10",
            "--cutoff", "4.5", "--patience", "0")  # fmt: skip
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "valid RMSE" in result.output and "potential_gen_00.yace" in result.output
    input_yaml = yaml.safe_load((tmp_path / "fits" / "fit_gen_00" / "input.yaml").read_text())
    assert input_yaml["cutoff"] == 4.5 and input_yaml["fit"]["maxiter"] == 5
    assert (tmp_path / "fits" / "fit_gen_00" / "learning_curve.png").stat().st_size > 1000
    assert invoke(*args).exit_code == 0  # a second fit is the next version, the first is kept
    record = json.loads((tmp_path / "potentials" / "potential_gen_01.json").read_text())
    assert record["generation"] == 1 and record["n_structures"] == 20
    assert (tmp_path / "potentials" / "potential_gen_00.yace").exists()


def test_ace_train_help_shows_its_defaults():
    import typer

    from matbrain.potentials.ace.config import AceTrainingConfig

    assert invoke("ace", "train", "--help").exit_code == 0
    train = typer.main.get_command(app).commands["ace"].commands["train"]  # type: ignore[attr-defined]
    helps = {p.name: p.help or "" for p in train.params}
    defaults = AceTrainingConfig()
    assert f"default {defaults.max_iter}" in helps["max_iter"]
    assert f"default {defaults.functions_per_element}" in helps["functions"]
    assert f"default {defaults.cutoff_A}" in helps["cutoff"]
    assert (
        "beside the database" in helps["potentials"] and "beside the database" in helps["workdir"]
    )


@pytest.mark.skipif(
    pacemaker_executable() is None, reason="pacemaker (python-ace) is not installed"
)
def test_ace_train_writes_beside_the_database_in_full_lines(tmp_path, monkeypatch):
    frames = emt_cu_frames(16)
    work = tmp_path / "project"
    work.mkdir()
    ase.io.write(work / "labelled.xyz", frames, format="extxyz")
    db = str(work / "al.db")
    assert invoke("db", "import", str(work / "labelled.xyz"), "--db", db).exit_code == 0
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = invoke("ace", "train", "--db", db, "--max-iter", "4", "--functions", "8",
                    "--cutoff", "4.5", "--patience", "0")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (work / "potentials" / "potential_gen_00.yace").exists()
    assert (work / "ace_fits" / "fit_gen_00" / "input.yaml").exists()
    assert not any(elsewhere.iterdir()), "nothing goes into the current directory"
    # not a terminal: one full line per validation report, no bar cut to 80 columns
    assert "pacemaker iteration" in result.output and "validation RMSE E" in result.output
    assert "(iteration 5)" not in result.output  # pacemaker's final report is max_iter + 1


@pytest.mark.skipif(
    pacemaker_executable() is None, reason="pacemaker (python-ace) is not installed"
)
def test_interrupted_ace_train_publishes_the_best_so_far(tmp_path):
    import signal
    import time

    frames = emt_cu_frames(20)
    ase.io.write(tmp_path / "labelled.xyz", frames, format="extxyz")
    db = str(tmp_path / "al.db")
    assert invoke("db", "import", str(tmp_path / "labelled.xyz"), "--db", db).exit_code == 0
    cli = [sys.executable, "-c", "from matbrain.cli.main import main; main()"]
    proc = subprocess.Popen(cli + ["ace", "train", "--db", db, "--max-iter", "2000",
                                   "--functions", "10", "--cutoff", "4.5", "--patience", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            # as in a terminal: a test run in the background (CI, nohup) would
                            # hand the command an ignored SIGINT, and Ctrl-C would do nothing
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    log = tmp_path / "ace_fits" / "fit_gen_00" / "log.txt"
    deadline = time.monotonic() + 240
    # wait for two validation reports (every 10 iterations), then Ctrl-C
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count("TEST STATS") >= 2:
            break
        time.sleep(1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    record = json.loads((tmp_path / "potentials" / "potential_gen_00.json").read_text())
    assert (record["stopped_early"] or "").startswith("interrupted"), (record, out[-3000:])
    assert (tmp_path / "potentials" / "potential_gen_00.yace").exists()
