"""Reading labelled structures, label checks, element filter, split, E0s."""

from __future__ import annotations

import ase.db
import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.units import GPa

from emt_data import MLEARN, emt_cu_frames, emt_labelled
from matbrain.potentials.data import (
    ENERGY_KEY,
    FORCES_KEY,
    STRESS_KEY,
    LabelError,
    LabelKeys,
    check_labels,
    fit_e0s,
    mlearn_stress_to_ase,
    read_labelled,
    split_frames,
)


def _mixed(tmp_path):
    frames = emt_cu_frames(6)
    frames += [emt_labelled(bulk("Ni", "fcc", a=3.52).repeat(2)) for _ in range(3)]
    frames += [emt_labelled(bulk("CuAu", "rocksalt", a=5.2)) for _ in range(2)]
    path = tmp_path / "mixed.xyz"
    ase.io.write(path, frames, format="extxyz")
    return path


def test_labels_are_read_under_our_keys(cu_xyz):
    frames = read_labelled(cu_xyz)
    assert len(frames) == 32
    a = frames[0]
    assert set(a.info) >= {ENERGY_KEY, STRESS_KEY} and FORCES_KEY in a.arrays
    assert a.calc is None  # labels never travel as calculator results MACE might read instead
    ref = ase.io.read(cu_xyz, 0)
    assert a.info[ENERGY_KEY] == pytest.approx(ref.get_potential_energy())
    np.testing.assert_allclose(a.info[STRESS_KEY], ref.get_stress(voigt=False))


def test_element_filter_counts_dropped(tmp_path):
    frames = read_labelled(_mixed(tmp_path))
    split = split_frames(frames, 0.2, 0.2, seed=1, elements=["Cu"])
    assert split.dropped_by_element == 5  # 3 Ni + 2 CuAu
    kept = split.train + split.valid + split.test
    assert len(kept) == 6 and all(set(a.get_chemical_symbols()) == {"Cu"} for a in kept)
    both = split_frames(frames, 0.2, 0.2, seed=1, elements=["Cu", "Au"])
    assert both.dropped_by_element == 3


def test_split_has_no_overlap_and_is_reproducible(cu_xyz):
    frames = read_labelled(cu_xyz)
    for a, i in zip(frames, range(len(frames)), strict=True):
        a.info["idx"] = i

    def ids(split):
        return [[id(x) for x in part] for part in (split.train, split.valid, split.test)]

    one = split_frames(frames, 0.1, 0.1, seed=7)
    parts = ids(one)
    flat = [i for p in parts for i in p]
    assert len(flat) == len(set(flat)) == 32
    assert [len(p) for p in parts] == [26, 3, 3]
    assert ids(split_frames(frames, 0.1, 0.1, seed=7)) == parts
    assert ids(split_frames(frames, 0.1, 0.1, seed=8)) != parts


def test_tiny_set_keeps_a_validation_structure(cu_xyz):
    frames = read_labelled(cu_xyz)[:4]
    split = split_frames(frames, 0.1, 0.1, seed=0)
    assert len(split.valid) == 1 and len(split.train) >= 2


def test_published_test_split_is_kept(tmp_path):
    frames = read_labelled(cu_xyz_with_split(tmp_path))
    split = split_frames(frames, 0.1, 0.1, seed=0)
    assert len(split.test) == 4 and all(a.info["split"] == "test" for a in split.test)


def cu_xyz_with_split(tmp_path):
    frames = emt_cu_frames(12)
    for i, a in enumerate(frames):
        a.info["split"] = "test" if i < 4 else "train"
    path = tmp_path / "split.xyz"
    ase.io.write(path, frames, format="extxyz")
    return path


def test_missing_forces_are_an_error_not_an_energy_only_fit(tmp_path):
    atoms = bulk("Cu", cubic=True)
    atoms.info["energy"] = -1.0
    path = tmp_path / "energy_only.xyz"
    ase.io.write(path, [atoms, atoms], format="extxyz")
    frames = read_labelled(path)
    assert check_labels(frames, with_forces=False, with_stress=False).energy == 2
    with pytest.raises(LabelError, match="--with-forces: only 0 of 2"):
        check_labels(frames, with_forces=True, with_stress=False)
    with pytest.raises(LabelError, match="--with-stress"):
        check_labels(frames, with_forces=False, with_stress=True)


def test_energy_key_mismatch_is_reported(tmp_path):
    atoms = bulk("Cu", cubic=True)
    atoms.info["dft_energy"] = -1.0
    path = tmp_path / "custom_key.xyz"
    ase.io.write(path, [atoms, atoms], format="extxyz")
    with pytest.raises(LabelError, match="--energy-key"):
        check_labels(read_labelled(path), with_forces=False, with_stress=False)
    frames = read_labelled(path, LabelKeys(energy="dft_energy"))
    assert check_labels(frames, False, False).energy == 2


def test_nan_forces_are_refused(tmp_path):
    atoms = emt_labelled(bulk("Cu", cubic=True))
    atoms.calc.results["forces"][1, 2] = np.nan
    path = tmp_path / "nan.xyz"
    ase.io.write(path, [atoms], format="extxyz")
    with pytest.raises(LabelError, match="NaN"):
        read_labelled(path)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="data not found"):
        read_labelled(tmp_path / "nope.xyz")
    bad = tmp_path / "bad.xyz"
    bad.write_text("3\nnot an extxyz header\nCu 0 0\n")
    with pytest.raises(ValueError, match="bad.xyz"):
        read_labelled(bad)


def test_e0s_least_squares_recovers_known_values():
    e0 = {"Cu": -3.5, "Ni": -5.25}
    frames = []
    for n_cu, n_ni in [(3, 1), (1, 2), (4, 4), (2, 0)]:
        atoms = Atoms(["Cu"] * n_cu + ["Ni"] * n_ni, pbc=True, cell=[5, 5, 5])
        atoms.info[ENERGY_KEY] = n_cu * e0["Cu"] + n_ni * e0["Ni"]
        frames.append(atoms)
    fitted = fit_e0s(frames)
    assert fitted == pytest.approx(e0)
    isolated = Atoms(["Ni"], pbc=False)
    isolated.info[ENERGY_KEY] = -1.0
    assert fit_e0s(frames, [isolated])["Ni"] == -1.0
    # with Ni held at its true value, Cu is fitted to what Ni leaves (a Ni-only frame adds nothing)
    isolated.info[ENERGY_KEY] = e0["Ni"]
    only_ni = Atoms(["Ni"] * 2, pbc=True, cell=[5, 5, 5])
    only_ni.info[ENERGY_KEY] = 0.0  # would pull Cu off if it were fitted
    assert fit_e0s([*frames, only_ni], [isolated]) == pytest.approx(e0)


def test_isolated_atom_frames_are_set_aside(tmp_path):
    atom = Atoms(["Cu"], positions=[[0, 0, 0]], cell=[20, 20, 20], pbc=False)
    atom.info["energy"] = -0.1
    frames = emt_cu_frames(5) + [atom]
    path = tmp_path / "with_atom.xyz"
    ase.io.write(path, frames, format="extxyz")
    split = split_frames(read_labelled(path), 0.2, 0.0, seed=0)
    assert len(split.isolated) == 1
    assert fit_e0s(split.train, split.isolated) == {"Cu": -0.1}


def test_ase_database_reads_completed_rows_only(tmp_path):
    db_path = tmp_path / "store.db"
    with ase.db.connect(db_path) as db:
        for i, atoms in enumerate(emt_cu_frames(4)):
            db.write(atoms, status="completed" if i < 3 else "pending")
    frames = read_labelled(db_path)
    assert len(frames) == 3
    assert check_labels(frames, with_forces=True, with_stress=True).stress == 3


def test_jarvis_energies_are_total_energies():
    from matbrain.data.jarvis import load_jarvis_records

    frames = read_labelled("jarvis")
    rec = next(r for r in load_jarvis_records() if r["jid"] == frames[0].info["jid"])
    n = len(frames[0])
    assert frames[0].info[ENERGY_KEY] == pytest.approx(rec["optb88vdw_total_energy"] * n)
    assert FORCES_KEY not in frames[0].arrays


def test_mlearn_stress_has_the_ase_sign():
    """Expanded and compressed mlearn Cu cells: converted stress has the sign EMT predicts."""
    frames = ase.io.read(MLEARN / "mlearn_Cu_train.extxyz.gz", ":")
    checked = 0
    for atoms in frames:
        converted = mlearn_stress_to_ase(atoms)
        pressure_dft = -np.trace(converted) / 3 / GPa
        if abs(pressure_dft) < 3:  # near zero the sign says nothing
            continue
        work = atoms.copy()
        work.calc = EMT()
        pressure_emt = -np.trace(work.get_stress(voigt=False)) / 3 / GPa
        assert np.sign(pressure_emt) == np.sign(pressure_dft)
        checked += 1
    assert checked >= 15  # of the 40 frames in tests/data (strained cells, slabs, AIMD)


@pytest.mark.parametrize("element", ["Cu", "Ni"])
def test_mlearn_shear_stress_sits_where_emt_puts_it(element):
    # the shears of mlearn's Cu and Ni are xy xz yz (Li and Si: xy yz zx, tested with ACE)
    frames = ase.io.read(MLEARN / f"mlearn_{element}_train.extxyz.gz", ":")
    sheared = [a for a in frames if np.abs(np.asarray(a.info["stress_raw_6"])[3:]).max() > 20]
    assert len(sheared) >= 4
    for atoms in sheared:
        converted = mlearn_stress_to_ase(atoms) / GPa
        work = atoms.copy()
        work.calc = EMT()
        emt = work.get_stress(voigt=False) / GPa
        for i, j in ((0, 1), (0, 2), (1, 2)):
            if abs(converted[i, j]) > 2:
                assert np.sign(emt[i, j]) == np.sign(converted[i, j]), (i, j)
                assert abs(emt[i, j] - converted[i, j]) < 0.5 * abs(converted[i, j])
