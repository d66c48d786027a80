"""Guarded MD: the thermostat holds the temperature; every guard trips on a constructed bad case."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from matbrain.simulation.md import Guards, MdConfig, run_md


class Sabotaged(EMT):
    """EMT until step ``after`` (counted in calculations), then broken forces or energy."""

    def __init__(self, after: int, mode: str) -> None:
        super().__init__()
        self.after, self.mode, self.calls = after, mode, 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):  # type: ignore[override]
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        if self.calls > self.after:
            if self.mode == "huge":
                self.results["forces"] = self.results["forces"] * 1e4 + 1e3
            elif self.mode == "nan":
                self.results["forces"] = self.results["forces"] * np.nan
            elif self.mode == "jump":
                self.results["energy"] += 10.0 * len(atoms)


def cu(repeat: int = 2):
    return bulk("Cu", "fcc", a=3.61, cubic=True).repeat(repeat)


def test_langevin_holds_the_target_temperature():
    cfg = MdConfig(temperature_K=500, steps=800, timestep_fs=4.0, friction_per_fs=0.05, seed=1)
    atoms = cu()
    traj = run_md(atoms, EMT(), cfg)
    assert traj.stable and traj.steps_done == 800
    # FixCom holds the centre of mass: ASE's temperature counts the 3N - 3 free degrees of freedom
    assert np.mean(traj.temperatures_K[200:]) == pytest.approx(500, rel=0.05)
    assert len(traj.frames) == 80 and traj.frames[0].info["config_type"] == "md"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("huge", "max force"), ("nan", "NaN"), ("jump", "energy jump")],
)
def test_a_broken_calculator_stops_the_trajectory(mode, reason):
    cfg = MdConfig(steps=200, timestep_fs=2.0, sample_interval=10)
    traj = run_md(cu(), Sabotaged(after=55, mode=mode), cfg)
    assert not traj.stable and reason in traj.stopped_by
    assert traj.steps_done < 60
    steps = [f.info["md_step"] for f in traj.frames]
    # frames of the last sampling interval before the trip are discarded with it
    assert steps and max(steps) <= traj.steps_done + 1 - 10


def test_atoms_pushed_together_trip_the_distance_guard():
    atoms = cu()
    atoms.positions[1] = atoms.positions[0] + [0.3, 0.0, 0.0]
    traj = run_md(atoms, EMT(), MdConfig(steps=50), Guards(max_force_eV_per_A=1e9))
    assert not traj.stable and "apart" in traj.stopped_by and traj.frames == []


def test_temperature_ceiling_and_volume_guard():
    hot = run_md(cu(), EMT(), MdConfig(temperature_K=300, steps=100),
                 Guards(max_temperature_factor=0.2))  # fmt: skip
    assert "temperature" in hot.stopped_by
    npt = MdConfig(temperature_K=300, pressure_bar=-5e5, steps=400, timestep_fs=2.0)
    swollen = run_md(cu(), EMT(), npt, Guards(max_volume_change=0.02))
    assert not swollen.stable and "volume" in swollen.stopped_by


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="positive"):
        MdConfig(temperature_K=0)
