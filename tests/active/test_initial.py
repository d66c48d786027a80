"""The initial set: variants of seed structures, written to the store as pending."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from typer.testing import CliRunner

from matbrain.active.initial import InitialSetConfig, add_initial_set, read_seeds, variants
from matbrain.active.store import LabelStore
from matbrain.cli.main import app


def test_variants_by_kind():
    cfg = InitialSetConfig(supercell=(2, 1, 1), n_rattled=3, n_random_strains=2, vacancies=True)
    made = variants(bulk("Cu", "fcc", a=3.6, cubic=True), cfg, np.random.default_rng(0))
    kinds = [k for k, _ in made]
    assert kinds.count("initial") == 1 and kinds.count("rattled") == 3
    assert kinds.count("strained") == 4 + 2 and kinds.count("vacancy") == 2
    base = made[0][1]
    assert len(base) == 8
    strained = [a for k, a in made if k == "strained"][:4]
    ratios = [a.get_volume() / base.get_volume() for a in strained]
    assert ratios == pytest.approx([(1 + e) ** 3 for e in cfg.volumetric_strains])
    assert all(len(a) == 7 for k, a in made if k == "vacancy")


def test_initial_set_is_deduplicated(tmp_path):
    store = LabelStore(tmp_path / "al.db")
    seeds = [("Cu", bulk("Cu", "fcc", a=3.6, cubic=True))]
    cfg = InitialSetConfig(n_rattled=2, n_random_strains=1)
    first = add_initial_set(store, seeds, cfg)
    assert first.added == 1 + 2 + 4 + 1 and first.duplicates == 0
    again = add_initial_set(store, seeds, cfg)  # same seed and random seed: all duplicates
    assert again.added == 0 and again.duplicates == first.added
    assert store.counts()["pending"] == first.added


def test_seeds_from_jarvis_id_and_missing_file(tmp_path):
    from matbrain.data.jarvis import load_jarvis_records

    jid = load_jarvis_records()[0]["jid"]
    [(name, atoms)] = read_seeds([jid])
    assert name == jid and len(atoms) > 0
    with pytest.raises(FileNotFoundError):
        read_seeds([str(tmp_path / "missing.cif")])


def test_db_init_cli(tmp_path):
    import ase.io

    cif = tmp_path / "Cu.cif"
    ase.io.write(cif, bulk("Cu", "fcc", a=3.6, cubic=True))
    db = str(tmp_path / "al.db")
    result = CliRunner().invoke(app, ["db", "init", "--db", db, "--seed", str(cif), "--rattled", "2",
                                      "--random-strains", "0", "--supercell", "1,1,2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "added 7 pending" in result.output
    bad = CliRunner().invoke(
        app, ["db", "init", "--db", db, "--seed", str(cif), "--supercell", "2,2"]
    )
    assert bad.exit_code == 2 and "three integers" in bad.output
