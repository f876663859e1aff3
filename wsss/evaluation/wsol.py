"""Weakly supervised object localization (WSOL) metrics: boxes from maps, Top-1/Top-5/GT-known Loc, MaxBoxAccV2.

Boxes are inclusive pixel boxes ``(x1, y1, x2, y2)``; a box from a map is the bounding box of the
largest connected component of ``map >= threshold`` (maps min-max normalised first). MaxBoxAccV2 is
the mean over IoU criteria 0.3 / 0.5 / 0.7 of the best box accuracy over a real threshold sweep.

:class:`WSOLEvaluator` measures each image into a small :class:`ImageHits` record and sums those;
``tools/eval_wsol.py`` and the mmengine ``WSOLMetric`` share that path and :func:`prediction_inputs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

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


def prediction_inputs(sample: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, int, list[int]]:
    """What :meth:`WSOLEvaluator.update` takes, from a predicted sample of ``BASWSOL.predict``.

    ``loc_map`` is resized (bilinear) to ``ori_shape``, the original image frame where ``gt_bboxes``
    live, so the test pipeline may only resize the whole image. The top-5 classes come from ``cls_score``.
    """
    loc_map = F.interpolate(
        torch.as_tensor(sample["loc_map"])[None, None].float(),
        size=tuple(sample["ori_shape"]),
        mode="bilinear",
        align_corners=False,
    )[0, 0]
    scores = torch.as_tensor(sample["cls_score"])
    top5 = scores.topk(min(5, scores.numel())).indices.tolist()
    boxes = torch.as_tensor(sample["gt_bboxes"]).cpu().numpy()
    return loc_map.cpu().numpy(), boxes, int(sample["gt_label"]), top5


@dataclass(frozen=True)
class ImageHits:
    """One image's outcome: box IoU per sweep threshold, and the flags at the operating threshold.

    About a kilobyte (100 sweep thresholds), so distributed evaluation gathers these instead of maps.
    """

    ious: np.ndarray
    located: bool
    top1_correct: bool
    top5_correct: bool


class WSOLEvaluator:
    """Streams images and accumulates box hits for every threshold of the sweep in one pass."""

    def __init__(self, thresholds: Sequence[float] | None = None, threshold: float = 0.1):
        self.thresholds = np.asarray(thresholds if thresholds is not None else np.arange(0.0, 1.0, 0.01))
        self.threshold = float(threshold)
        self.hits = np.zeros((len(IOU_CRITERIA), len(self.thresholds)), dtype=np.int64)
        self.top1_loc = self.top5_loc = self.gt_known_loc = self.top1_cls = self.count = 0

    def measure(self, cam: np.ndarray, gt_boxes: np.ndarray, gt_label: int, top5: Sequence[int]) -> ImageHits:
        """One image's hits: its class map (any size, same frame as ``gt_boxes``) and predicted top-5 labels."""
        norm = minmax_normalize(cam)
        ious = np.array([box_iou(box_from_map(norm, t), gt_boxes) for t in self.thresholds])
        located = box_iou(box_from_map(norm, self.threshold), gt_boxes) >= 0.5
        return ImageHits(
            ious=ious,
            located=bool(located),
            top1_correct=int(top5[0]) == gt_label,
            top5_correct=gt_label in [int(c) for c in top5[:5]],
        )

    def add(self, image: ImageHits) -> None:
        """Count one measured image (from :meth:`measure` with the same thresholds)."""
        for i, criterion in enumerate(IOU_CRITERIA):
            self.hits[i] += image.ious >= criterion
        self.gt_known_loc += image.located
        self.top1_cls += image.top1_correct
        self.top1_loc += image.located and image.top1_correct
        self.top5_loc += image.located and image.top5_correct
        self.count += 1

    def update(self, cam: np.ndarray, gt_boxes: np.ndarray, gt_label: int, top5: Sequence[int]) -> None:
        """Add one image: its class map (any size, same frame as ``gt_boxes``) and predicted top-5 labels."""
        self.add(self.measure(cam, gt_boxes, gt_label, top5))

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


def format_per_iou(result: WSOLResult) -> str:
    """MaxBoxAccV2's accuracy per IoU criterion with its best threshold, on one line."""
    return ", ".join(
        f"IoU {c}: {result.max_box_acc_per_iou[c]:.2f} (t={result.best_threshold_per_iou[c]:.2f})"
        for c in IOU_CRITERIA
    )


def format_result(result: WSOLResult, topk: int) -> str:
    """Every figure of a WSOL evaluation, one per line (percent)."""
    return "\n".join(
        [
            f"{result.num_images} images, threshold {result.threshold:.2f}, top-k {topk}",
            f"Top-1 Cls     {result.top1_cls:6.2f}",
            f"Top-1 Loc     {result.top1_loc:6.2f}",
            f"Top-5 Loc     {result.top5_loc:6.2f}",
            f"GT-known Loc  {result.gt_known_loc:6.2f}",
            f"MaxBoxAccV2   {result.max_box_acc_v2:6.2f}  ({format_per_iou(result)})",
        ]
    )


def result_to_dict(result: WSOLResult) -> dict[str, Any]:
    """The figures as JSON data (IoU criteria as string keys)."""
    data = asdict(result)
    data["max_box_acc_per_iou"] = {str(k): v for k, v in result.max_box_acc_per_iou.items()}
    data["best_threshold_per_iou"] = {str(k): v for k, v in result.best_threshold_per_iou.items()}
    return {"unit": "percent", **data}


@torch.inference_mode()
def evaluate_wsol(
    model: torch.nn.Module, loader: Iterable, evaluator: WSOLEvaluator, progress: bool = True
) -> WSOLResult:
    """Run a BASWSOL ``model`` over ``loader`` and feed each image's map, at its original size, to ``evaluator``."""
    for batch in tqdm(loader, desc="wsol", unit="batch", disable=not progress):
        data = model.data_preprocessor(batch)
        for output in model.predict(data["inputs"], data["data_samples"]):
            evaluator.update(*prediction_inputs(output))
    return evaluator.compute()
