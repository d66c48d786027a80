"""The published mlearn MTPs, evaluated here on exactly the test frames our potentials are scored on.

Zuo et al. (2020) print their test MAEs to two decimals for forces, so "MTP 0.01 eV/Å" stands for
anything from 0.005 to 0.015. Their fitted potentials are public: the Materials Virtual Lab keeps
them in the ``maml`` repository, ``mvl_models/pes/<element>/mtp.2020.01/fitted.mtp`` (MLIP's
``.mtp`` format, BSD licence), e.g.

    https://raw.githubusercontent.com/materialsvirtuallab/maml/master/mvl_models/pes/Ni/mtp.2020.01/fitted.mtp

Download them into one folder as ``<element>.mtp`` (Cu.mtp, Ni.mtp, ...) and pass it to
``bench/mlearn.py --published-mtp <folder>``. They are evaluated with ``motep`` (``pip install
motep``: a Python implementation of MLIP's MTP, the potential's own functional form), through the
same ``matbrain.potentials.evaluate`` code that scores our potentials, so the two numbers differ
only in the potential. A check that the file and the evaluation are right: the energy MAE must be
the paper's (Cu 0.41, Ni 0.48, Li 0.49 meV/atom).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import atomic_numbers


class PublishedMTP(Calculator):
    """An MLIP ``.mtp`` file as an ASE calculator (motep's engine, fresh per structure: motep's
    calculator keeps a neighbour list sized for the first structure it sees)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, path: Path, element: str) -> None:
        super().__init__()
        try:
            from motep.io.mlip.mtp import read_mtp
        except ImportError as error:  # pragma: no cover - bench-only dependency
            raise SystemExit(
                "the published MTPs are evaluated with motep: pip install motep"
            ) from error
        if not path.is_file():
            raise SystemExit(f"no published MTP for {element}: {path} not found")
        self.data = read_mtp(path)
        # single-element files number their species 0..n-1; motep matches them to atomic numbers
        self.data.species = [atomic_numbers[element]]

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        from motep.calculator import make_calculator

        super().calculate(atoms, properties or ["energy"], system_changes)
        assert self.atoms is not None
        probe = self.atoms.copy()
        probe.calc = make_calculator(self.data, engine="cext")
        energy = probe.get_potential_energy()
        self.results = {"energy": energy, "free_energy": energy, "forces": probe.get_forces(),
                        "stress": probe.get_stress()}  # fmt: skip


def evaluate_published_mtp(path: Path, element: str, test_file: Path) -> dict[str, Any]:
    """Test energy / force errors of the published MTP of ``element`` (matbrain's metrics) and
    where its force error sits (matbrain's breakdown by mean reference force)."""
    from matbrain.potentials.data import read_labelled
    from matbrain.potentials.evaluate import error_metrics, force_error_breakdown, predict

    pred = predict(PublishedMTP(path, element), read_labelled(test_file), with_stress=False)
    return {
        "file": str(path),
        "metrics": error_metrics(pred),
        "force_breakdown": force_error_breakdown(pred),
    }
