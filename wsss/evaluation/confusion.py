"""Streaming confusion-matrix evaluation of label maps: aAcc, mIoU, mAcc and per-class errors.

Conventions (those of mmsegmentation and IRN): pixels whose ground truth is 255 are ignored; a prediction outside
``[0, num_classes)`` counts as background 0; a class absent from both ground truth and prediction
has NaN scores and is left out of the means (as in mmsegmentation and IRN). All scores are percent.

The per-image counting packs ``gt << 8 | pred`` into one uint16 code per pixel. Label maps are
made of long runs of equal codes, so the codes are run-length encoded first and only the runs are
counted, which is several times faster than a plain ``np.bincount`` over all pixels; maps with
many short runs (noise) fall back to the plain count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wsss.data.label_io import IGNORE_INDEX

# Largest number of classes: 255 is the ignore index, so class indices stop at 254.
MAX_CLASSES = IGNORE_INDEX
# Run-length counting wins while runs are longer than this many pixels on average.
_MIN_MEAN_RUN = 8


def as_numpy(array: Any) -> np.ndarray:
    """A numpy view of a numpy array or a (possibly GPU) torch tensor, without importing torch."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def _check_num_classes(num_classes: int) -> None:
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(
            f"num_classes must lie in 1..{MAX_CLASSES} (255 is the ignore index), got {num_classes}"
        )


def _require_integer(array: np.ndarray, what: str) -> None:
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{what} must hold integer class indices, got dtype {array.dtype}")


def _describe_bad_values(values: np.ndarray, num_classes: int) -> str:
    shown = ", ".join(str(int(v)) for v in values[:10])
    more = f" and {len(values) - 10} more" if len(values) > 10 else ""
    return (
        f"ground-truth values [{shown}{more}] are outside the class range 0..{num_classes - 1} "
        f"and are not the ignore index {IGNORE_INDEX}; check num_classes / the class list against the labels"
    )


def validate_ground_truth(gt: np.ndarray, num_classes: int) -> None:
    """Raise ValueError naming every ground-truth value that is neither a class index nor 255."""
    bad = (gt != IGNORE_INDEX) & ((gt < 0) | (gt >= num_classes))
    if bad.any():
        raise ValueError(_describe_bad_values(np.unique(gt[bad]), num_classes))


def _joint_counts(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``(256, 256)`` int64 counts of (gt, pred) value pairs of two uint8 maps of the same shape."""
    codes = (gt.astype(np.uint16) << 8 | pred).ravel()
    if codes.size == 0:
        return np.zeros((256, 256), dtype=np.int64)
    run_ends = np.flatnonzero(codes[1:] != codes[:-1])
    if (run_ends.size + 1) * _MIN_MEAN_RUN > codes.size:
        counts = np.bincount(codes, minlength=1 << 16)
    else:
        run_ends = np.append(run_ends, codes.size - 1)
        run_lengths = np.diff(run_ends, prepend=-1)
        # Float weights hold integer sums exactly up to 2**53 pixels.
        counts = np.bincount(codes[run_ends], weights=run_lengths, minlength=1 << 16).astype(np.int64)
    return counts.reshape(256, 256)


def confusion_matrix(pred: Any, gt: Any, num_classes: int) -> np.ndarray:
    """The ``(C, C)`` int64 confusion matrix (rows ground truth, columns prediction) of one pair of maps.

    ``pred`` and ``gt`` are integer numpy arrays or torch tensors of equal shape. Ground-truth pixels
    equal to 255 are ignored; predictions outside ``[0, C)`` count as background; ground-truth values
    outside the class range (other than 255) raise ValueError naming them.
    """
    _check_num_classes(num_classes)
    pred = as_numpy(pred)
    gt = as_numpy(gt)
    _require_integer(pred, "prediction")
    _require_integer(gt, "ground truth")
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    if pred.dtype != np.uint8:
        pred = np.where((pred >= 0) & (pred < num_classes), pred, 0).astype(np.uint8)
    if gt.dtype != np.uint8:
        validate_ground_truth(gt, num_classes)
        gt = gt.astype(np.uint8)
    joint = _joint_counts(gt, pred)
    bad_rows = np.flatnonzero(joint[num_classes:IGNORE_INDEX].any(axis=1)) + num_classes
    if bad_rows.size:
        raise ValueError(_describe_bad_values(bad_rows, num_classes))
    matrix = joint[:num_classes, :num_classes].copy()
    matrix[:, 0] += joint[:num_classes, num_classes:].sum(axis=1)
    return matrix


@dataclass(frozen=True, eq=False)
class SegmentationResult:
    """Scores of one confusion matrix, all in percent; NaN where a score is undefined.

    ``absent`` marks classes with no pixel in ground truth or prediction: NaN everywhere and left
    out of mIoU and mAcc. A class predicted but never in the ground truth has IoU 0 and NaN accuracy
    (left out of mAcc only). ``fp_ratio``/``fn_ratio`` are MARS's error ratios, (P - TP) / union and
    (T - TP) / union, with P and T the predicted and ground-truth pixel counts.
    """

    matrix: np.ndarray
    aAcc: float
    mIoU: float
    mAcc: float
    iou: np.ndarray
    acc: np.ndarray
    fp_ratio: np.ndarray
    fn_ratio: np.ndarray
    absent: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.matrix.shape[0])

    def summary(self) -> dict[str, float]:
        """The three headline numbers, keyed as mmsegmentation does."""
        return {"aAcc": self.aAcc, "mIoU": self.mIoU, "mAcc": self.mAcc}

    def to_dict(self, class_names: Sequence[str]) -> dict[str, Any]:
        """A JSON-ready dict (NaN as None) with per-class rows named by ``class_names``."""
        if len(class_names) != self.num_classes:
            raise ValueError(f"got {len(class_names)} class names for {self.num_classes} classes")
        per_class = [
            {
                "class": name,
                "IoU": _json_float(self.iou[i]),
                "Acc": _json_float(self.acc[i]),
                "FP_ratio": _json_float(self.fp_ratio[i]),
                "FN_ratio": _json_float(self.fn_ratio[i]),
                "absent": bool(self.absent[i]),
            }
            for i, name in enumerate(class_names)
        ]
        return {
            "unit": "percent",
            "ignore_index": IGNORE_INDEX,
            "absent_classes": "scores null, left out of mIoU and mAcc",
            "aAcc": _json_float(self.aAcc),
            "mIoU": _json_float(self.mIoU),
            "mAcc": _json_float(self.mAcc),
            "per_class": per_class,
            "confusion_matrix": self.matrix.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentationResult:
        """Rebuild a result from :meth:`to_dict` output (null back to NaN)."""
        rows = data["per_class"]

        def column(key: str) -> np.ndarray:
            return np.array([_from_json_float(row[key]) for row in rows], dtype=np.float64)

        return cls(
            matrix=np.array(data["confusion_matrix"], dtype=np.int64),
            aAcc=_from_json_float(data["aAcc"]),
            mIoU=_from_json_float(data["mIoU"]),
            mAcc=_from_json_float(data["mAcc"]),
            iou=column("IoU"),
            acc=column("Acc"),
            fp_ratio=column("FP_ratio"),
            fn_ratio=column("FN_ratio"),
            absent=np.array([row["absent"] for row in rows], dtype=bool),
        )


def _json_float(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _from_json_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def scores_from_matrix(matrix: np.ndarray) -> SegmentationResult:
    """All scores of a ``(C, C)`` confusion matrix (rows ground truth, columns prediction)."""
    matrix = np.asarray(matrix, dtype=np.int64)
    true_positive = np.diag(matrix).astype(np.float64)
    gt_pixels = matrix.sum(axis=1).astype(np.float64)
    pred_pixels = matrix.sum(axis=0).astype(np.float64)
    union = gt_pixels + pred_pixels - true_positive
    absent = union == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(absent, np.nan, 100.0 * true_positive / union)
        acc = np.where(gt_pixels > 0, 100.0 * true_positive / gt_pixels, np.nan)
        fp_ratio = np.where(absent, np.nan, 100.0 * (pred_pixels - true_positive) / union)
        fn_ratio = np.where(absent, np.nan, 100.0 * (gt_pixels - true_positive) / union)
    total = gt_pixels.sum()
    return SegmentationResult(
        matrix=matrix,
        aAcc=float(100.0 * true_positive.sum() / total) if total > 0 else math.nan,
        mIoU=_mean_or_nan(iou[~absent]),
        mAcc=_mean_or_nan(acc[gt_pixels > 0]),
        iou=iou,
        acc=acc,
        fp_ratio=fp_ratio,
        fn_ratio=fn_ratio,
        absent=absent,
    )


class ConfusionMatrix:
    """A confusion matrix accumulated over any number of (prediction, ground truth) pairs.

    ``matrix`` is ``(C, C)`` int64 with rows = ground truth and columns = prediction. Partial
    matrices from workers or ranks combine with :meth:`merge` or ``+``.
    """

    def __init__(self, num_classes: int, matrix: np.ndarray | None = None) -> None:
        _check_num_classes(num_classes)
        self.num_classes = num_classes
        if matrix is None:
            self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        else:
            matrix = np.array(matrix, dtype=np.int64)
            if matrix.shape != (num_classes, num_classes):
                raise ValueError(f"matrix shape {matrix.shape} does not match {num_classes} classes")
            self.matrix = matrix

    def update(self, pred: Any, gt: Any) -> None:
        """Count one prediction map against its ground truth (numpy arrays or torch tensors)."""
        self.matrix += confusion_matrix(pred, gt, self.num_classes)

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """Add another matrix's counts into this one (in place) and return self."""
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"cannot merge {other.num_classes}-class counts into {self.num_classes}-class counts"
            )
        self.matrix += other.matrix
        return self

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        return ConfusionMatrix(self.num_classes, self.matrix).merge(other)

    def compute(self) -> SegmentationResult:
        """aAcc, mIoU, mAcc and the per-class scores of the counts so far."""
        return scores_from_matrix(self.matrix)
