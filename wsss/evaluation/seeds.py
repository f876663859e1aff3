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

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from wsss.data.label_io import IGNORE_INDEX, check_labels_exist, read_label_fast
from wsss.evaluation.confusion import (
    MAX_CLASSES,
    SegmentationResult,
    as_numpy,
    scores_from_matrix,
    validate_ground_truth,
)
from wsss.localize.seed_io import check_seeds_exist, load_seeds, seed_path
from wsss.parallel import map_id_chunks

DEFAULT_THRESHOLD_RANGE = "0.05:0.95:0.05"
SWEEP_TIE_RULE = "a pixel whose strongest map equals t is background"


def parse_thresholds(spec: str) -> tuple[float, ...]:
    """Thresholds from ``START:STOP:STEP`` (STOP included when the steps land on it) or ``t1,t2,...``.

    Every value must lie strictly between 0 and 1; ValueError says what is wrong.
    """
    try:
        if ":" in spec:
            start, stop, step = (float(part) for part in spec.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            # The small slack keeps STOP when float steps land a hair beyond it (0.05 * 12 > 0.6).
            count = math.floor((stop - start) / step + 1e-9) + 1
            values = tuple(round(start + i * step, 10) for i in range(count))
        else:
            values = tuple(float(part) for part in spec.split(","))
    except ValueError:
        raise ValueError(
            f"thresholds {spec!r}: give START:STOP:STEP with STEP > 0 and START <= STOP "
            f"(e.g. {DEFAULT_THRESHOLD_RANGE}), or a comma list (e.g. 0.2,0.25,0.3)"
        ) from None
    outside = [t for t in values if not 0.0 < t < 1.0]
    if outside:
        raise ValueError(f"thresholds {spec!r}: each must lie strictly between 0 and 1, got {outside}")
    return values


DEFAULT_THRESHOLDS: tuple[float, ...] = parse_thresholds(DEFAULT_THRESHOLD_RANGE)  # 0.05 .. 0.95, every tool


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

    @property
    def best_at_edge(self) -> bool:
        """Whether the best threshold is the lowest or highest swept: the true best may lie beyond."""
        return len(self.thresholds) > 1 and self.best_threshold in (
            min(self.thresholds),
            max(self.thresholds),
        )


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


# --- sweeping a folder of seed files, and the sweep's JSON file ------------------------------------


def _sweep_chunk(
    seeds_dir: Path, gt_dir: Path, num_classes: int, thresholds: Sequence[float], ids: Sequence[str]
) -> tuple[np.ndarray, int]:
    """The sweep counts of one chunk of ids and the chunk's length; errors name the files."""
    sweep = ThresholdSweep(num_classes, thresholds)
    for image_id in ids:
        seed_file = seed_path(seeds_dir, image_id)
        gt_file = gt_dir / f"{image_id}.png"
        keys, maps = load_seeds(seed_file)
        gt = read_label_fast(gt_file)
        if maps.shape[1:] != gt.shape:
            raise ValueError(
                f"{seed_file}: seed maps are {maps.shape[1]}x{maps.shape[2]} (HxW) but ground truth {gt_file} is "
                f"{gt.shape[0]}x{gt.shape[1]}; seeds must be at the image's original size"
            )
        try:
            sweep.update(keys, maps, gt)
        except ValueError as err:
            raise ValueError(f"{seed_file} / {gt_file}: {err}") from None
    return sweep.counts, len(ids)


def sweep_seed_folder(
    seeds_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    ids: Sequence[str],
    num_classes: int,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    workers: int = 1,
    progress: bool = True,
) -> SweepResult:
    """Sweep every threshold over the seed files of ``ids`` against their ground-truth PNGs.

    Missing files are reported (count and first ids) before any work; chunks of ids are spread over
    ``workers`` processes, each returning its counts.
    """
    seeds_dir, gt_dir = Path(seeds_dir), Path(gt_dir)
    check_seeds_exist(seeds_dir, ids)
    check_labels_exist(gt_dir, ids, "ground-truth")
    count_chunk = partial(_sweep_chunk, seeds_dir, gt_dir, num_classes, tuple(thresholds))
    total = ThresholdSweep(num_classes, thresholds)
    for counts in map_id_chunks(count_chunk, ids, workers, progress, "seed sweep", max_chunk=32):
        total.counts += counts
    return total.compute()


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def sweep_to_dict(result: SweepResult, class_names: Sequence[str], seeds_dir: str | os.PathLike,
                  gt_dir: str | os.PathLike, num_images: int) -> dict[str, Any]:  # fmt: skip
    """The sweep as JSON data: the seeds it scored, the curve, the best threshold and its full result."""
    return {
        "seeds": str(Path(seeds_dir).resolve()),
        "gt": str(Path(gt_dir).resolve()),
        "num_images": num_images,
        "unit": "percent",
        "tie_rule": SWEEP_TIE_RULE,
        "thresholds": list(result.thresholds),
        "curve": [
            {
                "threshold": t,
                "aAcc": _json_number(r.aAcc),
                "mIoU": _json_number(r.mIoU),
                "mAcc": _json_number(r.mAcc),
            }
            for t, r in zip(result.thresholds, result.results)
        ],
        "best_threshold": result.best_threshold,
        "best_at_edge": result.best_at_edge,
        "best": result.best.to_dict(class_names),
    }


@dataclass(frozen=True)
class SweepChoice:
    """What a sweep file says of its seeds: where they are, their best threshold and its mIoU."""

    path: Path
    seeds_dir: Path
    threshold: float
    miou: float


def read_sweep(path: str | os.PathLike) -> SweepChoice:
    """The seeds folder, best threshold and best mIoU of a sweep JSON (written by ``tools/eval_seeds.py --json``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sweep file not found; make it with tools/eval_seeds.py --json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SweepChoice(
            path, Path(data["seeds"]), float(data["best_threshold"]), float(data["best"]["mIoU"])
        )
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path}: not a sweep file of tools/eval_seeds.py --json ({err!r} missing or wrong)"
        ) from None


def best_sweep(paths: Sequence[str | os.PathLike]) -> SweepChoice:
    """The sweep whose best mIoU is highest (the first on ties): the seeds to turn into pseudo labels."""
    choices = [read_sweep(path) for path in paths]
    return max(choices, key=lambda choice: choice.miou)
