"""The active-learning loop end to end with EMT as the oracle (unit tests only) and real pacemaker."""

from __future__ import annotations

import json

import pytest
import yaml
from ase.build import bulk
from ase.io import write

from matbrain.active.loop import ActiveLearningLoop
from matbrain.active.loop_config import load_loop_config
from matbrain.active.store import LabelStore
from matbrain.potentials.ace.fit import pacemaker_executable

# per test: the config tests need no pacemaker
needs_pacemaker = pytest.mark.skipif(
    pacemaker_executable() is None, reason="pacemaker (python-ace) is not installed"
)


def _config(tmp_path, generations: int) -> dict:
    write(tmp_path / "Cu.cif", bulk("Cu", "fcc", a=3.6, cubic=True))
    return {
        "db": "al.db", "workdir": "run", "generations": generations,
        "initial": {"seeds": ["Cu.cif"], "supercell": [2, 1, 1], "n_rattled": 8,
                    "rattle_std_A": 0.1, "n_random_strains": 4},
        "oracle": {"name": "emt", "workers": 1},
        "ace": {"cutoff_A": 5.0, "functions_per_element": 20, "max_iter": 10, "display_step": 5,
                "early_stopping_patience": None},
        "sampling": {"temperatures_K": [300, 900], "steps": 60, "sample_interval": 5,
                     "trajectories_per_temperature": 1, "max_seeds": 2},
        "selection": {"low": 1.05, "high": 1000, "budget": 4, "method": "farthest-point"},
    }  # fmt: skip


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="loop config not found"):
        load_loop_config(tmp_path / "missing.yaml")
    raw = _config(tmp_path, 1)
    raw["selection"]["budjet"] = 3
    (tmp_path / "al.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="budjet"):
        load_loop_config(tmp_path / "al.yaml")
    # every guard and initial-set key can be set from the YAML (one config class each)
    raw = _config(tmp_path, 1)
    raw["sampling"]["guards"] = {"discard_steps": 3, "max_force_eV_per_A": 12.0}
    raw["initial"]["max_shear_strain"] = 0.01
    (tmp_path / "al.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_loop_config(tmp_path / "al.yaml")
    assert cfg.sampling.guards.discard_steps == 3 and cfg.sampling.guards.max_force_eV_per_A == 12
    assert cfg.initial.config().max_shear_strain == 0.01


def test_resume_refuses_a_changed_config(tmp_path):
    raw = _config(tmp_path, 1)
    (tmp_path / "al.yaml").write_text(yaml.safe_dump(raw))
    ActiveLearningLoop(load_loop_config(tmp_path / "al.yaml"), echo=lambda _: None)
    raw["generations"] = 3  # more generations (and other sampling) continue the loop
    raw["sampling"]["temperatures_K"] = [500]
    (tmp_path / "al.yaml").write_text(yaml.safe_dump(raw))
    ActiveLearningLoop(load_loop_config(tmp_path / "al.yaml"), echo=lambda _: None)
    raw["ace"]["max_iter"] = 99
    (tmp_path / "al.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"changed: ace.max_iter: 10 -> 99"):
        ActiveLearningLoop(load_loop_config(tmp_path / "al.yaml"), echo=lambda _: None)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["ace"]["max_iter"] == 10 and saved["generations"] == 3
    raw["ace"]["max_iter"] = 10
    raw["oracle"]["settings"] = {"cutoff_eV": 500}  # labels of another DFT setting: refused too
    (tmp_path / "al.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"oracle.settings.cutoff_eV"):
        ActiveLearningLoop(load_loop_config(tmp_path / "al.yaml"), echo=lambda _: None)


@needs_pacemaker
def test_two_generation_loop_resumes_after_interruption(tmp_path):
    (tmp_path / "al.yaml").write_text(yaml.safe_dump(_config(tmp_path, 2)))
    cfg = load_loop_config(tmp_path / "al.yaml")
    assert cfg.db == str(tmp_path / "al.db") and cfg.initial.seeds == [str(tmp_path / "Cu.cif")]

    class Stop(Exception):
        pass

    def interrupt_at_generation_1_labelling(line: str) -> None:
        if line.startswith("[g01.label]"):
            raise Stop  # as if the job were killed between selection and labelling

    with pytest.raises(Stop):
        ActiveLearningLoop(cfg, echo=interrupt_at_generation_1_labelling).run()
    work = tmp_path / "run"
    gen0 = (work / "potentials" / "potential_gen_00.yace").stat().st_mtime
    store = LabelStore(cfg.db)
    pending_before = store.counts()["pending"]
    assert pending_before > 0  # the selection of generation 1 waits for its labels

    lines: list[str] = []
    rows = ActiveLearningLoop(cfg, echo=lines.append).run()
    assert not any(line.startswith(("[g00.", "[g01.sample]", "[g01.select]")) for line in lines)
    assert (work / "potentials" / "potential_gen_00.yace").stat().st_mtime == gen0  # not refitted
    for g in (0, 1, 2):
        for suffix in ("yace", "yaml", "asi", "json"):
            assert (work / "potentials" / f"potential_gen_{g:02d}.{suffix}").exists()

    counts = store.counts()
    assert counts["pending"] == 0 and counts["running"] == 0 and counts["failed"] == 0
    by_gen = {s["generation"]: s["completed"] for s in store.stats()}
    assert by_gen[0] == 17 and 1 <= by_gen[1] <= 4 and 1 <= by_gen[2] <= 4
    md_rows = [a for a in store.completed([1, 2])]
    assert all(a.info["config_type"] == "md" for a in md_rows)

    # the table: one row per generation, the numbers taken from the fits and the MD pools
    assert [r["generation"] for r in rows] == [0, 1, 2]
    assert rows[2]["labelled"] == sum(by_gen.values())
    assert all(r["rmse_f_eV_per_A"] > 0 for r in rows)
    assert rows[1]["pool"] > 0 and rows[1]["selected"] == by_gen[1]
    assert "RMSE F (eV/Å)" in (work / "generations.md").read_text()
    gen2 = json.loads((work / "potentials" / "potential_gen_02.json").read_text())
    assert gen2["n_structures"] == sum(by_gen.values())
    assert set(gen2["train_db_ids"]) | set(gen2["valid_db_ids"]) == {
        a.info["db_id"] for a in store.completed()
    }

    # a third run has nothing left to do
    again: list[str] = []
    ActiveLearningLoop(cfg, echo=again.append).run()
    assert not any(line.startswith("[") for line in again)

    # one more generation allowed, with targets the potential meets: it samples, scores and stops
    from matbrain.active.loop_config import Targets

    more = cfg.model_copy(update={
        "generations": 3, "targets": Targets(force_rmse_eV_per_A=10.0, extrapolative_share=1.0),
        "sampling": cfg.sampling.model_copy(update={"temperatures_K": [300.0]}),
    })  # fmt: skip
    last: list[str] = []
    ActiveLearningLoop(more, echo=last.append).run()
    state = json.loads((work / "state.json").read_text())
    assert state["stopped"].startswith("converged: potential_gen_02 met the targets")
    assert "g03.select" in state["done"] and "g03.label" not in state["done"]
    assert store.counts()["pending"] == 0  # nothing selected was queued
    final: list[str] = []
    ActiveLearningLoop(more, echo=final.append).run()
    assert final[0].startswith("this loop has stopped: converged")


@needs_pacemaker
def test_mace_committee_scores_and_drives_md(tmp_path, trained_run):
    """A MACE committee fine-tuned from a local base model: MD with member 0, committee spread."""
    raw = _config(tmp_path, 1)
    raw["initial"].update(n_rattled=4, n_random_strains=1)
    raw["surrogate"] = "mace"
    raw["mace_committee"] = {"base_model": str(trained_run.model_path), "members": 2, "epochs": 2}
    raw["selection"] = {"uncertainty": "committee", "low": 0.0, "high": 1e6, "budget": 2,
                        "method": "farthest-point"}  # fmt: skip
    raw["sampling"]["temperatures_K"] = [300]
    (tmp_path / "al.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_loop_config(tmp_path / "al.yaml")
    rows = ActiveLearningLoop(cfg, echo=lambda line: None).run()
    work = tmp_path / "run" / "gen_01"
    sampling = json.loads((work / "sampling.json").read_text())
    assert sampling["potential"].endswith(".model") and sampling["frames"] > 0
    scores = json.loads((work / "selection.json").read_text())["scores"]
    assert len(scores) == sampling["frames"] and min(scores) > 0  # two different members disagree
    assert rows[1]["selected"] == 2
    members = sorted(p.name for p in (work / "mace_committee").iterdir() if p.is_dir())
    assert members == ["member_0", "member_1"]


@needs_pacemaker
def test_generation_table_has_one_format_per_column(tmp_path):
    from matbrain.active.generations import write_table

    rows = [
        {"generation": 0, "labelled": 11, "rmse_e_meV_per_atom": 1.3214, "rmse_f_eV_per_A": 0.01493},
        {"generation": 1, "labelled": 16, "rmse_e_meV_per_atom": 0.89, "rmse_f_eV_per_A": 0.0389,
         "gamma_median": 1.4712, "extrapolative_pct": 65.0, "md_stable": "2/2"},
    ]  # fmt: skip
    write_table(rows, tmp_path)
    lines = (tmp_path / "generations.md").read_text().splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [c[4] for c in cells] == ["1.32", "0.89"]  # RMSE E: two decimals in every row
    assert [c[5] for c in cells] == ["0.0149", "0.0389"]
    assert cells[0][8] == "–" and cells[1][8] == "1.47" and cells[1][10] == "65.0"
    csv_lines = (tmp_path / "generations.csv").read_text().splitlines()
    assert csv_lines[0].startswith("generation,labelled,") and len(csv_lines) == 3


@needs_pacemaker
def test_a_generation_on_a_two_worker_dask_cluster_labels_every_row_once(tmp_path):
    raw = _config(tmp_path, 1)
    raw["oracle"].update({"workers": 2, "executor": "dask"})
    raw["sampling"].update({"workers": 2, "executor": "dask"})
    (tmp_path / "al.yaml").write_text(yaml.safe_dump(raw))
    lines: list[str] = []
    rows = ActiveLearningLoop(load_loop_config(tmp_path / "al.yaml"), echo=lines.append).run()
    assert any("dask" in line.lower() for line in lines)  # it really ran on the cluster
    store = LabelStore(str(tmp_path / "al.db"))
    counts = store.counts()
    assert counts["pending"] == counts["running"] == counts["failed"] == 0
    labelled = list(store.db.select(status="completed"))
    assert len(labelled) == rows[-1]["labelled"] > 17  # the initial set and generation 1's picks
    assert all(int(row.attempts) == 1 for row in labelled)  # each claimed and labelled once
