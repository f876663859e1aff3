"""Plots of measured curves, saved as PNG without a display (matplotlib's Agg canvas)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from wsss.fileio import atomic_write


def plot_threshold_curve(
    path: str | os.PathLike, thresholds: Sequence[float], mious: Sequence[float], best: float, title: str
) -> None:
    """Save mIoU against the background threshold, the best threshold starred, as a PNG (atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(thresholds, mious, marker="o")
    best_miou = mious[list(thresholds).index(best)]
    axes.axvline(best, color="grey", linestyle="--")
    axes.plot([best], [best_miou], marker="*", markersize=14, color="tab:red")
    axes.set_xlabel("background threshold t")
    axes.set_ylabel("mIoU (%)")
    axes.set_title(f"{title}\nbest t = {best:.2f}: mIoU {best_miou:.2f}")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    with atomic_write(path) as tmp:
        figure.savefig(tmp, format="png")
