"""Labels on a feature grid: the majority label of every feature cell, as MARS and the probes use it."""

from __future__ import annotations

import math

import numpy as np

from wsss.data.label_io import BIASED_INDEX, IGNORE_INDEX


def cell_labels(label: np.ndarray, grid: tuple[int, int], stride: int) -> np.ndarray:
    """The majority label of every feature cell (``stride`` x ``stride`` pixels), ignoring 255 and 254.

    ``label`` is ``(H, W)``; the grid ``(h, w)`` must cover it exactly as a padded extraction does:
    ``h = ceil(H / stride)``, ``w = ceil(W / stride)``. Cells without a counted pixel get -1; ties go
    to the smaller class index.
    """
    height, width = label.shape
    h, w = grid
    if h != math.ceil(height / stride) or w != math.ceil(width / stride):
        raise ValueError(
            f"a {h}x{w} feature grid at stride {stride} does not cover a {height}x{width} label "
            f"(expected {math.ceil(height / stride)}x{math.ceil(width / stride)})"
        )
    padded = np.full((h * stride, w * stride), IGNORE_INDEX, dtype=np.uint8)
    padded[:height, :width] = label
    blocks = padded.reshape(h, stride, w, stride)
    values = [v for v in np.unique(label) if v not in (IGNORE_INDEX, BIASED_INDEX)]
    if not values:
        return np.full((h, w), -1, dtype=np.int64)
    counts = np.stack([(blocks == v).sum(axis=(1, 3)) for v in values])
    majority = np.asarray(values, dtype=np.int64)[counts.argmax(axis=0)]
    return np.where(counts.max(axis=0) > 0, majority, -1)
