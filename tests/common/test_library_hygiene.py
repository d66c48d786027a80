"""The library leaves process-wide state alone: no logging handlers, warning filters or
matplotlib backend are set by importing or calling it (only the command line does)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging, warnings, sys
# third-party packages set their own filters on import: take them first, then ours must add none
import numpy, scipy.spatial, torch, pandas, ase.io, pymatgen.core, pydantic, yaml, matplotlib.figure
filters = list(warnings.filters)
import matbrain
import matbrain.models.e3nn_import, matbrain.potentials.pipeline, matbrain.training.pipeline
import matbrain.active.loop, matbrain.inference
from matbrain.common.plotting import subplots
fig, ax = subplots()
ax.plot([0, 1], [0, 1])
fig.savefig(sys.argv[1])
assert warnings.filters == filters, "warning filters changed"
assert not logging.getLogger().handlers, "root logging handlers added"
assert "matplotlib.pyplot" not in sys.modules, "pyplot imported (global figure state)"
print("clean")
"""


def test_importing_and_plotting_changes_no_global_state(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "f.png")],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0 and "clean" in out.stdout, out.stderr[-2000:]
    assert (tmp_path / "f.png").stat().st_size > 1000
