"""Every potential backend trains through the common interface on real DFT data (small mlearn
subsets carried by the repository) and passes the same physics checks.

Backends: linear ACE (python-ace), pacemaker ACE (when installed), MACE (the session's trained
run), fine-tuned CHGNet.
"""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from emt_data import MLEARN
from matbrain.potentials.ace.fit import pacemaker_executable
from matbrain.potentials.calculators import load_potential
from matbrain.potentials.checks import (
    force_fd_error,
    nve_energy_drift,
    rigid_motion_energy_change,
    stress_fd_error,
)
from matbrain.potentials.data import read_labelled
from matbrain.potentials.evaluate import error_metrics, predict


def _train(tmp_path_factory, resolver, level, element, **overrides):  # type: ignore[no-untyped-def]
    from matbrain.potentials.pipeline import train_potential

    root = tmp_path_factory.mktemp(f"{element}_{level}")
    data = root / "data"
    data.mkdir()
    # the training split only: the test split stays out of the run (scored separately below)
    ase.io.write(data / "train.extxyz",
                 ase.io.read(MLEARN / f"mlearn_{element}_train.extxyz.gz", ":"), format="extxyz")  # fmt: skip
    cfg = resolver(level, overrides={"data": str(data / "train.extxyz"), "elements": [element],
                                     "output_root": str(root), **overrides})  # fmt: skip
    return train_potential(cfg, progress=False)


@pytest.fixture(scope="module")
def linear_ace_run(tmp_path_factory):
    from matbrain.potentials.config import resolve_ace_config

    return _train(tmp_path_factory, resolve_ace_config, "smoke", "Cu", functions_per_element=20,
                  cutoff_A=4.5, workers=1)  # fmt: skip


@pytest.fixture(scope="module")
def pacemaker_run(tmp_path_factory):
    if pacemaker_executable() is None:
        pytest.skip("pacemaker (python-ace with tensorpotential) is not installed")
    from matbrain.potentials.config import resolve_ace_config

    return _train(tmp_path_factory, resolve_ace_config, "smoke", "Cu", solver="pacemaker",
                  functions_per_element=10, cutoff_A=4.5, max_iter=10)  # fmt: skip


def _test_errors(run, element="Cu"):  # type: ignore[no-untyped-def]
    frames = read_labelled(MLEARN / f"mlearn_{element}_test.extxyz.gz")
    return error_metrics(predict(load_potential(run.model_path).calc, frames))


def test_linear_ace_run_folder_matches_the_common_layout(linear_ace_run):
    run = linear_ace_run.run_dir
    for name in ("config.yaml", "data.json", "e0s.json", "ace.yace", "ace.yaml", "metrics.json",
                 "summary.json", "plots/parity_forces_valid.png",
                 "plots/ace_validation_grid.png"):  # fmt: skip
        assert (run / name).exists(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["algorithm"] == "ace" and summary["model_file"] == "ace.yace"
    assert summary["engine"].startswith("python-ace")
    registry = (run.parents[1] / "potentials.jsonl").read_text()
    assert str(run) in registry
    assert set(json.loads((run / "metrics.json").read_text())) == {"train", "valid"}


@pytest.mark.parametrize("fixture", ["linear_ace_run", "pacemaker_run"])
def test_ace_energies_are_in_the_frame_of_the_dft_data(fixture, request):
    # pacemaker's .yace has E0 = 0 unless we write the reference energies in: then every
    # energy was off by ~4 eV/atom for Cu (10 eV/atom on other elements)
    run = request.getfixturevalue(fixture)
    test = _test_errors(run)
    frames = read_labelled(MLEARN / "mlearn_Cu_test.extxyz.gz")
    per_atom = np.array([a.info["REF_energy"] / len(a) for a in frames])
    assert test["energy_meV_per_atom"]["mae"] < 50, test
    # and better than predicting the mean energy per atom of the test set itself
    assert test["energy_meV_per_atom"]["mae"] < 1000 * np.abs(per_atom - per_atom.mean()).mean()


def test_linear_ace_learns_forces(linear_ace_run):
    frames = read_labelled(MLEARN / "mlearn_Cu_test.extxyz.gz")
    zero_force_mae = np.mean([np.abs(a.arrays["REF_forces"]).mean() for a in frames])
    assert _test_errors(linear_ace_run)["forces_eV_per_A"]["mae"] < 0.5 * zero_force_mae


def test_max_level_reaches_pacemaker_with_its_richer_radial_basis():
    # the preset's radial basis must reach the engine's basis, not only the config
    from matbrain.potentials.ace.linear import basis_config
    from matbrain.potentials.config import resolve_ace_config

    def block(level):  # type: ignore[no-untyped-def]
        cfg = resolve_ace_config(level, overrides={"data": "."})
        return basis_config(cfg, ["Cu"]).funcspecs_blocks[0]

    pro, top = block("pro"), block("max")
    assert (len(pro.funcspecs), len(top.funcspecs)) == (600, 1200)
    pairs = [spec.ns[0] for spec in top.funcspecs if len(spec.ns) == 1]
    assert max(pairs) > 15  # pro's basis stops at 15 radial functions for pairs
    assert (pro.lmaxi, top.lmaxi) == (4, 5)


def _calc(name, request):  # type: ignore[no-untyped-def]
    if name == "mace":
        return request.getfixturevalue("trained_calc")
    if name.endswith("-finetuned"):
        run = request.getfixturevalue(name.replace("-", "_"))
        return load_potential(run.model_path).calc
    return load_potential(request.getfixturevalue(name).model_path).calc


BACKENDS = ["linear_ace_run", "pacemaker_run", "mace", "chgnet-finetuned", "sevennet-finetuned"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_forces_are_minus_the_energy_gradient(backend, request):
    atoms = bulk("Cu", "fcc", a=3.62, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=5)
    calc = _calc(backend, request)
    if (
        "finetuned" in backend
    ):  # CHGNet and SevenNet compute in float32: a larger step keeps round-off below the tolerance
        assert force_fd_error(atoms, calc, d=1e-2) < 1e-2
    else:
        assert force_fd_error(atoms, calc, d=1e-3) < 1e-4


@pytest.mark.parametrize("backend", ["linear_ace_run", "pacemaker_run", "mace"])
def test_stress_is_the_strain_derivative(backend, request):
    atoms = bulk("Cu", "fcc", a=3.55, cubic=True)
    atoms.set_cell(atoms.cell.array + [[0, 0.1, 0], [0.05, 0, 0], [0, 0, 0.1]], scale_atoms=True)
    atoms.rattle(0.05, seed=2)
    assert stress_fd_error(atoms, _calc(backend, request)) < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_energy_is_invariant_under_rigid_motion(backend, request):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((1, 2, 1))
    atoms.rattle(0.1, seed=1)
    tolerance = 1e-4 if "finetuned" in backend else 1e-8
    assert rigid_motion_energy_change(atoms, _calc(backend, request)) < tolerance * len(atoms)


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_nve_run_conserves_total_energy(backend, request):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 1))
    drift = nve_energy_drift(atoms, _calc(backend, request), steps=40, timestep_fs=1.0)
    assert drift < 2e-3, f"{backend}: total energy drifted {drift * 1000:.2f} meV/atom"


def _finetune(tmp_path_factory, base: str, epochs: int):  # type: ignore[no-untyped-def]
    """``base`` fine-tuned with its own trainer on the 12 smallest Si structures."""
    from matbrain.potentials.config import resolve_finetune_config
    from matbrain.potentials.pipeline import train_potential

    root = tmp_path_factory.mktemp(base)
    frames = sorted(ase.io.read(MLEARN / "mlearn_Si_train.extxyz.gz", ":"), key=len)[:12]
    ase.io.write(root / "si.extxyz", frames, format="extxyz")
    cfg = resolve_finetune_config(overrides={
        "data": str(root / "si.extxyz"), "base_model": base, "epochs": epochs, "batch_size": 4,
        "valid_fraction": 0.2, "output_root": str(root)})  # fmt: skip
    return train_potential(cfg, progress=False)


@pytest.fixture(scope="module")
def chgnet_finetuned(tmp_path_factory):
    return _finetune(tmp_path_factory, "chgnet", epochs=3)


@pytest.fixture(scope="module")
def sevennet_finetuned(tmp_path_factory):
    return _finetune(tmp_path_factory, "sevennet", epochs=4)


@pytest.mark.parametrize("base", ["chgnet", "sevennet"])
def test_finetuned_universal_potential_beats_the_untouched_one_on_held_out_structures(
    base, request
):
    run = request.getfixturevalue(f"{base}_finetuned")
    held_out = sorted(read_labelled(MLEARN / "mlearn_Si_test.extxyz.gz"), key=len)[:10]
    untouched = error_metrics(predict(load_potential(base).calc, held_out))
    tuned = error_metrics(predict(load_potential(run.model_path).calc, held_out))
    assert tuned["forces_eV_per_A"]["mae"] < untouched["forces_eV_per_A"]["mae"]
    assert tuned["energy_meV_per_atom"]["mae"] < untouched["energy_meV_per_atom"]["mae"]
    assert run.run_dir.parent.name == f"{base}-finetune"
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["algorithm"] == base and summary["engine"] in ("chgnet", "sevenn")
    history = json.loads((run.run_dir / "history.json").read_text())
    assert len(history) == (4 if base == "sevennet" else 3)  # one row per epoch, from the engine
    assert (run.run_dir / "plots" / "learning_curves.png").exists()


def test_pacemaker_gets_the_levels_radial_basis_for_one_and_two_elements():
    # --solver pacemaker used pacemaker's template whatever the level; and a sixth body order
    # that mixes elements is beyond pyace's white-list (every level but max failed for binaries)
    from pyace import create_multispecies_basis_config

    from matbrain.potentials.ace.config import AceTrainingConfig, pacemaker_input
    from matbrain.potentials.config import resolve_ace_config

    level = resolve_ace_config("pro", overrides={"data": "."})
    settings = AceTrainingConfig(functions_per_element=600, nradmax_by_orders=level.nradmax_by_orders,
                                 lmax_by_orders=level.lmax_by_orders)  # fmt: skip
    for elements in (["Cu"], ["Cu", "Ni"]):
        potential = pacemaker_input(settings, elements, "train.pckl.gzip", "test.pckl.gzip")[
            "potential"
        ]
        assert potential["functions"]["UNARY"]["lmax_by_orders"] == [0, 4, 3, 2, 2, 1]
        basis = create_multispecies_basis_config(potential)
        assert basis.total_number_of_functions == 600 * len(elements)
        assert max(block.lmaxi for block in basis.funcspecs_blocks) == 4  # the template stops at 3
