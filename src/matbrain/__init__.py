"""matbrain: machine learning on crystals.

Importing the package is cheap: it imports no torch extension, creates no folder and picks no
backend. The heavy pieces live in submodules (``matbrain.models``, ``matbrain.training``).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
