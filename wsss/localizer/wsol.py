"""Weakly supervised object localization (WSOL) metrics: boxes from maps, Top-1/Top-5/GT-known Loc, MaxBoxAccV2.

Boxes are inclusive pixel boxes ``(x1, y1, x2, y2)``; a box from a map is the bounding box of the
largest connected component of ``map >= threshold`` (maps min-max normalised first). MaxBoxAccV2 is
the mean over IoU criteria 0.3 / 0.5 / 0.7 of the best box accuracy over a real threshold sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

IOU_CRITERIA = (0.3, 0.5, 0.7)


def minmax_normalize(cam: np.ndarray) -> np.ndarray:
    """Scale a map to [0, 1] (a constant map becomes all zeros)."""
    cam = np.asarray(cam, dtype=np.float32)
    low, high = float(cam.min()), float(cam.max())
    return (cam - low) / (high - low) if high > low else np.zeros_like(cam)


def box_from_map(norm_map: np.ndarray, threshold: float) -> tuple[int, int, int, int] | None:
    """Bounding box of the largest connected component of ``norm_map >= threshold`` (None if empty)."""
    binary = (norm_map >= threshold).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in stats[largest, :4])
    return x, y, x + w - 1, y + h - 1


def box_iou(box: Sequence[int] | None, gt_boxes: np.ndarray) -> float:
    """Best IoU of an inclusive box against any of the ground-truth boxes ``(N, 4)``; 0 for no box."""
    if box is None or len(gt_boxes) == 0:
        return 0.0
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    ix1, iy1 = np.maximum(box[0], gt[:, 0]), np.maximum(box[1], gt[:, 1])
    ix2, iy2 = np.minimum(box[2], gt[:, 2]), np.minimum(box[3], gt[:, 3])
    inter = np.clip(ix2 - ix1 + 1, 0, None) * np.clip(iy2 - iy1 + 1, 0, None)
    area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    gt_area = (gt[:, 2] - gt[:, 0] + 1) * (gt[:, 3] - gt[:, 1] + 1)
    return float(np.max(inter / (area + gt_area - inter)))


@dataclass
class WSOLResult:
    """Localization accuracies in percent at the operating threshold, and MaxBoxAccV2 over the sweep."""

    top1_loc: float
    top5_loc: float
    gt_known_loc: float
    top1_cls: float
    max_box_acc_v2: float
    max_box_acc_per_iou: dict[float, float]
    best_threshold_per_iou: dict[float, float]
    threshold: float
    num_images: int


class WSOLEvaluator:
    """Streams images and accumulates box hits for every threshold of the sweep in one pass."""

    def __init__(self, thresholds: Sequence[float] | None = None, threshold: float = 0.1):
        self.thresholds = np.asarray(thresholds if thresholds is not None else np.arange(0.0, 1.0, 0.01))
        self.threshold = float(threshold)
        self.hits = np.zeros((len(IOU_CRITERIA), len(self.thresholds)), dtype=np.int64)
        self.top1_loc = self.top5_loc = self.gt_known_loc = self.top1_cls = self.count = 0

    def update(self, cam: np.ndarray, gt_boxes: np.ndarray, gt_label: int, top5: Sequence[int]) -> None:
        """Add one image: its class map (any size, same frame as ``gt_boxes``) and predicted top-5 labels."""
        norm = minmax_normalize(cam)
        ious = np.array([box_iou(box_from_map(norm, t), gt_boxes) for t in self.thresholds])
        for i, criterion in enumerate(IOU_CRITERIA):
            self.hits[i] += ious >= criterion
        located = box_iou(box_from_map(norm, self.threshold), gt_boxes) >= 0.5
        self.gt_known_loc += located
        self.top1_cls += int(top5[0]) == gt_label
        self.top1_loc += located and int(top5[0]) == gt_label
        self.top5_loc += located and gt_label in [int(c) for c in top5[:5]]
        self.count += 1

    def compute(self) -> WSOLResult:
        if self.count == 0:
            raise ValueError("no images were evaluated")
        per_iou = self.hits.max(axis=1) / self.count * 100
        best = self.thresholds[self.hits.argmax(axis=1)]
        pct = 100.0 / self.count
        return WSOLResult(
            top1_loc=self.top1_loc * pct,
            top5_loc=self.top5_loc * pct,
            gt_known_loc=self.gt_known_loc * pct,
            top1_cls=self.top1_cls * pct,
            max_box_acc_v2=float(per_iou.mean()),
            max_box_acc_per_iou={c: float(v) for c, v in zip(IOU_CRITERIA, per_iou)},
            best_threshold_per_iou={c: float(t) for c, t in zip(IOU_CRITERIA, best)},
            threshold=self.threshold,
            num_images=self.count,
        )
