"""The active-learning loop: initial set -> label -> fit ACE -> MD sample -> select -> label -> ...

Generation 0 labels the initial set and fits ``potential_gen_00``. Generation g ≥ 1 runs guarded MD
with potential g−1, scores the pool (γ or committee), selects inside the window, labels the
selection and fits potential g. The loop stops after ``generations`` or when the validation force
RMSE and the share of extrapolative MD frames are both below their targets.

Every step leaves its outputs in ``workdir`` and is recorded in ``state.json`` when done, so a
rerun after an interruption (Ctrl-C, a crash, a killed job) goes on at the step that was running;
labelling itself resumes row by row through the store.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from ase import Atoms

from matbrain.active.ace_training import train_from_store
from matbrain.active.generations import generation_folder, generation_table, write_table
from matbrain.active.initial import add_initial_set, read_seeds
from matbrain.active.labelling import label_pending
from matbrain.active.loop_config import LoopConfig
from matbrain.active.sampling import sample_pool
from matbrain.active.selection import committee_disagreement, extrapolation_grades, select
from matbrain.active.store import LabelStore
from matbrain.common.files import atomic_write_text
from matbrain.common.resume import refuse_changed_config
from matbrain.potentials.ace.pacemaker_log import Point
from matbrain.potentials.ace.versions import PotentialVersion, version_paths


class LoopState:
    """``state.json``: the steps done, in order, and why the loop stopped (if it did)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"done": [], "stopped": None}
        if path.exists():
            self.data = json.loads(path.read_text())

    def done(self, step: str) -> bool:
        return step in self.data["done"]

    def mark(self, step: str, **extra: Any) -> None:
        self.data["done"].append(step)
        self.data.update(extra)
        atomic_write_text(self.path, json.dumps(self.data, indent=2))


class ActiveLearningLoop:
    def __init__(
        self,
        cfg: LoopConfig,
        echo: Callable[[str], None] = print,
        on_point: Callable[[Point], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.work = Path(cfg.workdir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.potentials = self.work / "potentials"
        self.state = LoopState(self.work / "state.json")
        self.echo = echo
        self.on_point = on_point
        self.store = LabelStore(cfg.db)
        current = json.loads(cfg.model_dump_json())
        # what was done stays as it was (store, initial set, oracle, fitting); what comes next may
        # change on a resume: more generations, other targets, sampling or selection
        refuse_changed_config(self.work / "config.yaml", current, f"the loop in {self.work}",
                              may_change=("generations", "targets", "sampling", "selection"))  # fmt: skip
        (self.work / "config.yaml").write_text(yaml.safe_dump(current, sort_keys=False))

    # ------------------------------------------------------------------------------ steps
    def _step(self, name: str, action: Callable[[], dict[str, Any] | None]) -> None:
        if self.state.done(name):
            return
        self.echo(f"[{name}] ...")
        start = time.time()
        extra = action() or {}
        self.state.mark(name, **extra)
        self.echo(f"[{name}] done in {time.time() - start:.0f} s")

    def _initial(self) -> None:
        seeds = read_seeds(self.cfg.initial.seeds)
        report = add_initial_set(self.store, seeds, self.cfg.initial.config(), generation=0)
        self.echo(f"initial set: {report.added} structures added, {report.duplicates} duplicates")

    def _label(self) -> None:
        o = self.cfg.oracle
        report = label_pending(self.cfg.db, o.name, o.settings, workers=o.workers,
                               executor=o.executor, scheduler=o.scheduler, echo=self.echo)  # fmt: skip
        self.echo(f"labelled with {o.name}: {report.completed} completed, {report.failed} failed")

    def _fit(self, g: int) -> None:
        version = train_from_store(self.cfg.db, self.cfg.ace, self.potentials, self.work / generation_folder(g),
                                   generation=g, on_point=self.on_point)  # fmt: skip
        m = version.metrics()
        valid = m.get("valid", {})
        self.echo(
            f"potential_gen_{g:02d}: validation RMSE E {valid.get('rmse_energy_meV_per_atom', float('nan')):.2f} "
            f"meV/atom, F {valid.get('rmse_forces_eV_per_A', float('nan')):.4f} eV/Å"
            + (f" (stopped early: {m['stopped_early']})" if m.get("stopped_early") else "")
        )

    def _md_seeds(self, g: int) -> list[Atoms]:
        frames = self.store.completed()
        first = [a for a in frames if a.info.get("config_type") == "initial"]
        rest = [a for a in frames if a.info.get("config_type") != "initial"]
        rng = np.random.default_rng(g)
        extra = [rest[i] for i in rng.permutation(len(rest))]
        chosen = (first + extra)[: self.cfg.sampling.max_seeds]
        return [Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc) for a in chosen]

    def _sample(self, g: int) -> None:
        import ase.io

        version = version_paths(self.potentials, g - 1)
        surrogate = self._mace_members(g)[0] if self.cfg.surrogate == "mace" else version.yace
        pool = sample_pool(surrogate, self._md_seeds(g), self.cfg.sampling, seed=g, echo=self.echo)
        folder = self.work / generation_folder(g)
        folder.mkdir(parents=True, exist_ok=True)
        if pool.frames:
            ase.io.write(folder / "pool.xyz", pool.frames, format="extxyz")
        else:  # every trajectory stopped before its first sample
            (folder / "pool.xyz").write_text("")
        (folder / "sampling.json").write_text(json.dumps({
            "potential": str(surrogate), "frames": len(pool.frames),
            "stable": pool.n_stable, "trajectories": pool.trajectories,
        }, indent=2))  # fmt: skip
        self.echo(
            f"MD with {Path(surrogate).name}: {len(pool.frames)} frames, "
            f"{pool.n_stable}/{len(pool.trajectories)} trajectories ran to the end"
        )
        for t in pool.trajectories:
            if t["stopped_by"]:
                self.echo(f"  {t['temperature_K']:.0f} K #{t['trajectory']} stopped at step "
                          f"{t['steps_done']}: {t['stopped_by']}")  # fmt: skip

    def _mace_members(self, g: int) -> list[Path]:
        """The MACE committee of generation ``g`` (trained on what potential g−1 was fitted to);
        members already trained are reused, so an interrupted generation resumes."""
        from matbrain.potentials.calculators import model_file_in_run
        from matbrain.potentials.config import MaceFinetuneConfig
        from matbrain.potentials.pipeline import train_potential

        mc = self.cfg.mace_committee
        if mc is None:
            raise ValueError("surrogate: mace needs a mace_committee block (base_model, members)")
        folder = self.work / generation_folder(g) / "mace_committee"
        paths = []
        for k in range(mc.members):
            run = folder / f"member_{k}"
            if (run / "summary.json").exists():
                paths.append(model_file_in_run(run))
            else:
                self.echo(f"fine-tuning MACE committee member {k + 1}/{mc.members} on the store")
                cfg = MaceFinetuneConfig(data=self.cfg.db, base_model=mc.base_model, epochs=mc.epochs,
                                         batch_size=mc.batch_size, lr=mc.lr, dtype=mc.dtype, seed=k,
                                         test_fraction=0.0, output_root=str(folder))  # fmt: skip
                paths.append(train_potential(cfg, run_dir=run, progress=False).model_path)
        return paths

    def _uncertainty(self, frames: list[Atoms], version: PotentialVersion, g: int) -> np.ndarray:
        if self.cfg.selection.uncertainty == "gamma":
            return extrapolation_grades(frames, version)
        from matbrain.potentials.calculators import load_potential

        specs = (
            [str(p) for p in self._mace_members(g)]
            if self.cfg.mace_committee
            else self.cfg.committee
        )
        if len(specs) < 2:
            raise ValueError("uncertainty: committee needs mace_committee or two committee models")
        return committee_disagreement(frames, [load_potential(s).calc for s in specs])

    def _select(self, g: int) -> dict[str, Any] | None:
        import ase.io

        folder = self.work / generation_folder(g)
        version = version_paths(self.potentials, g - 1)
        pool = (
            list(ase.io.read(folder / "pool.xyz", ":"))
            if (folder / "pool.xyz").stat().st_size
            else []
        )
        scores = self._uncertainty(pool, version, g) if pool else np.zeros(0)
        sel = self.cfg.selection
        chosen = select(pool, scores, sel, version) if pool else None
        share = float(np.mean(scores >= sel.low)) if len(scores) else 0.0
        record: dict[str, Any] = {
            "uncertainty": sel.uncertainty, "scores": scores.tolist(), "extrapolative_share": share,
            "in_window": chosen.in_window if chosen else 0,
            "above_window": chosen.above_window if chosen else 0,
            "selected": chosen.indices if chosen else [],
        }  # fmt: skip
        (folder / "selection.json").write_text(json.dumps(record, indent=2))
        self.echo(
            f"pool scored by {sel.uncertainty}: median {np.median(scores) if len(scores) else 0:.2f}, "
            f"{100 * share:.0f}% ≥ {sel.low}, {record['in_window']} in the window, "
            f"{record['above_window']} above it (not labelled); {len(record['selected'])} selected"
        )
        sampling = json.loads((folder / "sampling.json").read_text())
        if not pool:
            return {"stopped": (
                f"no MD frames: every trajectory with potential_gen_{g - 1:02d} stopped before its "
                f"first sample (see {folder / 'sampling.json'}); check the guards, the seeds and "
                "the temperatures, then rerun"
            )}  # fmt: skip
        all_stable = sampling["stable"] == len(sampling["trajectories"])
        reason = self._converged(g - 1, share) if all_stable else None
        if reason is None and not record["selected"]:
            reason = (f"no MD frame of potential_gen_{g - 1:02d} in the uncertainty window "
                      f"[{sel.low}, {sel.high}): nothing left to label")  # fmt: skip
        if reason:
            return {"stopped": reason}
        added = 0
        for i in record["selected"]:
            frame = pool[i]
            source = f"md gen {g - 1} {frame.info.get('md_temperature_K', 0):.0f} K"
            if self.store.add(frame, generation=g, config_type="md", source=source) is not None:
                added += 1
        self.echo(f"{added} selected structures added to the store for labelling")
        return None

    def _converged(self, g: int, share: float) -> str | None:
        """The targets: validation force RMSE of potential ``g`` and the extrapolative share."""
        t = self.cfg.targets
        if t.force_rmse_eV_per_A is None or t.extrapolative_share is None:
            return None
        rmse = (
            version_paths(self.potentials, g).metrics().get("valid", {}).get("rmse_forces_eV_per_A")
        )
        if rmse is not None and rmse <= t.force_rmse_eV_per_A and share <= t.extrapolative_share:
            return (f"converged: potential_gen_{g:02d} met the targets: validation force RMSE "
                    f"{rmse:.4f} ≤ {t.force_rmse_eV_per_A} eV/Å, {100 * share:.1f}% extrapolative "
                    f"MD frames ≤ {100 * t.extrapolative_share:.1f}%, every trajectory stable")  # fmt: skip
        return None

    # ------------------------------------------------------------------------------- run
    def run(self) -> list[dict[str, Any]]:
        if self.state.data.get("stopped"):
            self.echo(f"this loop has stopped: {self.state.data['stopped']}")
            return self.table()
        self._step("g00.initial", self._initial)
        self._step("g00.label", self._label)
        self._step("g00.fit", functools.partial(self._fit, 0))
        for g in range(1, self.cfg.generations + 1):
            self._step(f"g{g:02d}.sample", functools.partial(self._sample, g))
            self._step(f"g{g:02d}.select", functools.partial(self._select, g))
            if self.state.data.get("stopped"):
                self.echo(f"stopped: {self.state.data['stopped']}")
                break
            self._step(f"g{g:02d}.label", self._label)
            self._step(f"g{g:02d}.fit", functools.partial(self._fit, g))
        return self.table()

    def table(self) -> list[dict[str, Any]]:
        """One row per generation (also written to ``generations.csv`` and ``.md``)."""
        rows = generation_table(self.work, self.store)
        write_table(rows, self.work)
        return rows
