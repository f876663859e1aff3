"""Seed (CAM / localization map) evaluation by a background-threshold sweep.

For a threshold t a pixel's label is the argmax over ``[t, map_1, ..., map_K]``: background when no
map exceeds t (ties go to background, the first plane), else the class of the strongest map. The
background plane has the maps' dtype, as when it is padded onto the maps, so a float32 map equal to
float32(t) is a tie.

All thresholds are counted in one pass per image: a pixel whose strongest score s exceeds the
thresholds below s, and no others, so each pixel is binned once by (number of thresholds below s,
gt, class) and cumulative sums over that first axis give every threshold's confusion matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wsss.data.label_io import IGNORE_INDEX
from wsss.evaluation.confusion import (
    MAX_CLASSES,
    SegmentationResult,
    as_numpy,
    scores_from_matrix,
    validate_ground_truth,
)

DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 13))  # 0.05 .. 0.60


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Scores of every threshold, in the order given, and the best one (highest mIoU, first on ties)."""

    thresholds: tuple[float, ...]
    results: tuple[SegmentationResult, ...]
    best_threshold: float
    best: SegmentationResult

    @property
    def curve(self) -> dict[float, float]:
        """Threshold -> mIoU (percent)."""
        return {t: r.mIoU for t, r in zip(self.thresholds, self.results)}


class ThresholdSweep:
    """Accumulates one confusion matrix per background threshold over any number of images."""

    def __init__(self, num_classes: int, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> None:
        if not 2 <= num_classes <= MAX_CLASSES:
            raise ValueError(
                f"num_classes must lie in 2..{MAX_CLASSES} (background plus classes), got {num_classes}"
            )
        if len(thresholds) == 0:
            raise ValueError("give at least one background threshold")
        self.num_classes = num_classes
        self.thresholds = tuple(float(t) for t in thresholds)
        self._order = np.argsort(self.thresholds, kind="stable")
        self._sorted = np.asarray(self.thresholds, dtype=np.float64)[self._order]
        # counts[n, g, c]: pixels of gt g, strongest class c, whose score exceeds exactly n thresholds.
        self.counts = np.zeros((len(self.thresholds) + 1, num_classes, num_classes), dtype=np.int64)

    def update(self, keys: Any, maps: Any, gt: Any) -> None:
        """Count one image: ``keys`` (K,) 1-based class indices of the ``maps`` (K, H, W) float scores in
        [0, 1]; ``gt`` (H, W) integer labels with 255 ignored."""
        keys = as_numpy(keys).astype(np.int64).reshape(-1)
        maps = as_numpy(maps)
        gt = as_numpy(gt)
        if maps.ndim != 3 or maps.shape[0] != keys.size:
            raise ValueError(f"maps must be (K, H, W) with K = {keys.size} keys, got shape {maps.shape}")
        if not np.issubdtype(maps.dtype, np.floating):
            raise TypeError(f"maps must hold float scores, got dtype {maps.dtype}")
        if maps.shape[1:] != gt.shape:
            raise ValueError(
                f"maps are {maps.shape[1:]} but the ground truth is {gt.shape}; resize the maps first"
            )
        if keys.size and (keys.min() < 1 or keys.max() >= self.num_classes):
            raise ValueError(
                f"keys must be 1-based class indices in 1..{self.num_classes - 1}, got {keys.tolist()}"
            )
        valid = gt != IGNORE_INDEX
        labels = gt[valid].astype(np.int64)
        validate_ground_truth(labels, self.num_classes)
        if keys.size:
            strongest = maps.argmax(axis=0)[valid]
            scores = maps.max(axis=0)[valid]
            classes = keys[strongest]
            exceeded = np.searchsorted(self._sorted.astype(maps.dtype), scores, side="left")
        else:
            classes = np.zeros_like(labels)
            exceeded = np.zeros_like(labels)
        codes = (exceeded * self.num_classes + labels) * self.num_classes + classes
        self.counts += np.bincount(codes, minlength=self.counts.size).reshape(self.counts.shape)

    def merge(self, other: ThresholdSweep) -> ThresholdSweep:
        """Add another sweep's counts (same classes and thresholds) into this one and return self."""
        if other.num_classes != self.num_classes or other.thresholds != self.thresholds:
            raise ValueError("can only merge sweeps with the same classes and thresholds")
        self.counts += other.counts
        return self

    def matrices(self) -> np.ndarray:
        """``(T, C, C)`` confusion matrices, one per threshold in the order given."""
        below_or_at = np.cumsum(self.counts, axis=0)[:-1]  # pixels exceeding at most n thresholds
        foreground = below_or_at[-1] + self.counts[-1] - below_or_at  # pixels still above threshold n
        matrices = foreground.copy()
        matrices[:, :, 0] += below_or_at.sum(axis=2)
        ordered = np.empty_like(matrices)
        ordered[self._order] = matrices
        return ordered

    def compute(self) -> SweepResult:
        """Scores for every threshold and the best one."""
        results = tuple(scores_from_matrix(m) for m in self.matrices())
        mious = np.array([r.mIoU for r in results])
        if np.all(np.isnan(mious)):
            raise ValueError("no labelled pixel was counted; check that the ground truth is not all 255")
        best = int(np.nanargmax(mious))
        return SweepResult(self.thresholds, results, self.thresholds[best], results[best])


def sweep_background_threshold(
    samples: Iterable[tuple[Any, Any, Any]],
    num_classes: int,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> SweepResult:
    """Evaluate ``(keys, maps, gt)`` samples at every threshold in one pass; see :class:`ThresholdSweep`."""
    sweep = ThresholdSweep(num_classes, thresholds)
    for keys, maps, gt in samples:
        sweep.update(keys, maps, gt)
    return sweep.compute()


def format_curve(result: SweepResult) -> str:
    """One line per threshold with its mIoU, the best marked with ``*``."""
    lines = []
    for t, miou in result.curve.items():
        mark = " *" if t == result.best_threshold else ""
        lines.append(f"t={t:.2f}  mIoU={'nan' if math.isnan(miou) else f'{miou:.2f}'}{mark}")
    return "\n".join(lines)
