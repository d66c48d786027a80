"""Figures for PNG files without touching matplotlib's global state (no backend is chosen, no
pyplot figure is left open): a :class:`matplotlib.figure.Figure` saves itself with Agg."""

from __future__ import annotations

from typing import Any


def subplots(nrows: int = 1, ncols: int = 1, **figure_kwargs: Any):
    """``(figure, axes)`` like ``pyplot.subplots``; ``figure.savefig(path)`` writes the file."""
    from matplotlib.figure import Figure

    fig = Figure(**figure_kwargs)
    return fig, fig.subplots(nrows, ncols)
