"""Import e3nn safely.

e3nn 0.4.4 loads a pickled constants file with ``torch.load`` at import time, which torch >= 2.6
refuses under its weights-only default (``UnpicklingError ... GLOBAL slice``). mace-torch works
around it by setting ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` for the whole process; we set it only
for the duration of the import and restore the environment afterwards.
"""

from __future__ import annotations

import os
import types

# The library sets no warning filters (a user's own filters stay in charge); the command line
# silences e3nn's per-layer TorchScript warnings (matbrain.cli.main._quiet_engine_warnings).


def import_e3nn() -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """Return ``(e3nn.o3, e3nn.nn, e3nn.math)``."""
    previous = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        from e3nn import math, nn, o3
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = previous
    return o3, nn, math
