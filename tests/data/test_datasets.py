from __future__ import annotations

import numpy as np
import pytest
from ase.io import write

from matbrain.data.folder import folder_dataset
from matbrain.data.jarvis import jarvis_dataset, load_jarvis_records
from matbrain.data.sources import load_dataset
from matbrain.data.splits import TEST, TRAIN, UNUSED, VAL, leaderboard_split, random_split
from matbrain.properties import (
    UnknownPropertyError,
    clip_to_physical,
    get_property,
    resolve_properties,
)


def test_catalogue_and_unknown_names():
    assert len(resolve_properties(None)) == 9
    assert get_property("band_gap").key == "optb88vdw_bandgap"
    assert get_property("epsx").name == "dielectric"
    with pytest.raises(UnknownPropertyError, match="valid names: formation_energy"):
        get_property("band_gapp")


def test_non_negative_properties_are_clipped_and_others_not():
    props = resolve_properties(["formation_energy", "band_gap", "ehull"])
    clipped = clip_to_physical(np.array([[-1.0, -0.2, -0.01], [0.5, 1.2, 0.3]]), props)
    assert np.array_equal(clipped, [[-1.0, 0.0, 0.0], [0.5, 1.2, 0.3]])


def test_bundled_subset_keeps_structures_with_missing_labels(bundled_structures):
    ds = bundled_structures
    counts = ds.label_counts()
    assert counts["formation_energy"] == 940 and counts["piezo_max_dij"] == 20
    # a structure with 'na' for spillage stays, its label is NaN
    j = [p.name for p in ds.properties].index("spillage")
    assert np.isnan(ds.targets[:, j]).sum() == len(ds) - 294
    assert len(ds) == 940


def test_local_json_reads_like_the_bundled_file(tmp_path):
    import gzip
    import json

    records = load_jarvis_records("bundled")[:5]
    path = tmp_path / "jdft_3d-test.json"
    path.write_text(json.dumps(records))
    ds = jarvis_dataset(resolve_properties(["formation_energy"]), path)
    assert ds.ids == [r["jid"] for r in records if r["formation_energy_peratom"] != "na"]
    gz = tmp_path / "jdft_3d-test.json.gz"
    with gzip.open(gz, "wt") as fh:
        json.dump(records, fh)
    assert load_dataset(gz, resolve_properties(["formation_energy"])).ids == ds.ids


def test_missing_dataset_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset not found"):
        load_dataset(tmp_path / "nope.json", resolve_properties(None))


def test_folder_with_id_prop(tmp_path, bundled_structures):
    for k in range(4):
        write(tmp_path / f"s{k}.cif", bundled_structures.structures[k])
    (tmp_path / "broken.cif").write_text("data_broken\n_cell_length_a 3\n")
    (tmp_path / "id_prop.csv").write_text(
        "s0.cif,1.0\ns1.cif,na\ns2.cif,3.0\ns3,4.0\nbroken.cif,5\n"
    )
    ds = folder_dataset(tmp_path, resolve_properties(["band_gap"]))
    assert ds.ids == ["s0", "s1", "s2", "s3"]
    assert np.isnan(ds.targets[1, 0]) and ds.targets[3, 0] == 4.0
    assert len(ds.read_report["unreadable_files"]) == 1
    assert "broken.cif" in ds.read_report["unreadable_files"][0]


def test_folder_records_nan_labels_and_names_a_bad_value(tmp_path, bundled_structures):
    for k in range(3):
        write(tmp_path / f"s{k}.cif", bundled_structures.structures[k])
    (tmp_path / "id_prop.csv").write_text("id,band_gap\ns0,1.0\ns1,NaN\ns2,2.5\n")
    ds = folder_dataset(tmp_path, resolve_properties(["band_gap"]))
    assert ds.read_report["nan_labels_as_missing"] == 1 and np.isnan(ds.targets[1, 0])
    assert ds.targets[2, 0] == 2.5  # good rows are still read
    (tmp_path / "id_prop.csv").write_text("id,band_gap\ns0,1.0\ns1,metallic\n")
    with pytest.raises(ValueError, match=r"id_prop.csv, line 3 \(s1\): band_gap is 'metallic'"):
        folder_dataset(tmp_path, resolve_properties(["band_gap"]))


def test_a_run_that_fails_before_training_leaves_no_folder(tmp_path, bundled_structures):
    from matbrain.training.config import resolve_config
    from matbrain.training.pipeline import run_training

    data = tmp_path / "data"
    data.mkdir()
    write(data / "s0.cif", bundled_structures.structures[0])
    (data / "id_prop.csv").write_text("id,band_gap\ns0,metallic\n")
    cfg = resolve_config("cgcnn", "smoke", overrides={
        "dataset": str(data), "properties": ["band_gap"], "output_root": str(tmp_path / "models")})  # fmt: skip
    with pytest.raises(ValueError, match="not a number"):
        run_training(cfg, progress=False)
    assert not list((tmp_path / "models").rglob("run_*"))


def test_random_split_is_fixed_by_seed_and_disjoint():
    a, b = random_split(100, 2, seed=1), random_split(100, 2, seed=1)
    assert np.array_equal(a.roles, b.roles)
    assert [(a.roles[:, 0] == r).sum() for r in (TRAIN, VAL, TEST)] == [80, 10, 10]
    assert not np.array_equal(a.roles, random_split(100, 2, seed=2).roles)


def test_leaderboard_split_matches_official_test_set(bundled_structures):
    from matbrain.data.splits import leaderboard_roles

    single = bundled_structures.subset(range(len(bundled_structures)))
    single.properties = resolve_properties(["formation_energy"])
    single.targets = bundled_structures.targets[:, :1]
    split = leaderboard_split(single)
    official = leaderboard_roles("formation_energy_peratom")
    test_ids = {sid for sid, r in zip(single.ids, split.roles[:, 0], strict=True) if r == TEST}
    assert test_ids == {sid for sid in single.ids if official.get(sid) == TEST}
    assert len(test_ids) == 96  # the subset's share of the official test set (data README)


def test_strict_multitask_split_never_trains_on_a_test_structure(bundled_structures):
    strict = leaderboard_split(bundled_structures, strict=True)
    loose = leaderboard_split(bundled_structures, strict=False)
    targets = bundled_structures.targets
    test_structures = strict.mask(TEST, targets).any(axis=1)
    assert not strict.mask(TRAIN, targets)[test_structures].any()
    assert np.array_equal(
        strict.mask(TEST, targets), loose.mask(TEST, targets)
    )  # same official test sets
    assert loose.mask(TRAIN, targets)[test_structures].any()
    assert strict.dropped_train_labels > 0
    assert (strict.roles[test_structures] != TRAIN).all() and UNUSED in strict.roles
