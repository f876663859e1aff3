"""The mmengine metrics validation and test loops use: segmentation mIoU, multi-label mAP, WSOL boxes.

Configs name them (``val_evaluator = dict(type="SegIoUMetric")``); the registry imports this module
when one is built. Each keeps only small per-batch records (confusion matrices, score vectors, box
hits), which is all mmengine gathers across ranks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from wsss.data.classes import resolve_class_names
from wsss.evaluation.classification import average_precision
from wsss.evaluation.confusion import ConfusionMatrix
from wsss.evaluation.tables import format_table
from wsss.evaluation.wsol import ImageHits, WSOLEvaluator, format_per_iou, prediction_inputs
from wsss.registry import METRICS


@METRICS.register_module()
class SegIoUMetric(BaseMetric):
    """Mean IoU over a validation or test run, with the mmsegmentation-style table in the log.

    Each ``data_sample`` is a dict with ``'pred_seg'`` and ``'gt_seg'``, (H, W) integer tensors of the
    same size (255 in the ground truth is ignored). ``process`` keeps one confusion matrix per batch
    and ``compute_metrics`` sums them, so mmengine gathers only small matrices across ranks. Samples
    that a distributed sampler repeats to even out ranks are counted again; set the sampler's
    ``round_up=False`` for exact numbers on several GPUs.

    ``class_names`` is a list, ``'voc'``, ``'coco'`` or a class_names.txt path; without it the
    dataset's ``metainfo['classes']`` is used.
    """

    # An empty prefix keeps the keys plain ('mIoU', as save_best expects) without mmengine's warning.
    default_prefix = ""

    def __init__(
        self,
        class_names: Sequence[str] | str | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
        collect_dir: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self._class_names = resolve_class_names(class_names) if class_names is not None else None

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names from the constructor, else from the dataset's metainfo."""
        if self._class_names is not None:
            return self._class_names
        if self.dataset_meta and self.dataset_meta.get("classes"):
            return tuple(self.dataset_meta["classes"])
        raise ValueError(
            "SegIoUMetric needs class names: pass class_names=... in the evaluator config "
            "or give the dataset a metainfo with 'classes'"
        )

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Append this batch's confusion matrix to ``self.results``."""
        counts = ConfusionMatrix(len(self.class_names))
        for sample in data_samples:
            counts.update(sample["pred_seg"], sample["gt_seg"])
        self.results.append(counts.matrix)

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Sum the gathered per-batch matrices, log the table and return aAcc, mIoU and mAcc."""
        names = self.class_names
        total = ConfusionMatrix(len(names))
        for matrix in results:
            total.matrix += matrix
        result = total.compute()
        print_log("per-class results:\n" + format_table(result, names), logger="current")
        return result.summary()


@METRICS.register_module()
class MultiLabelMAP(BaseMetric):
    """Mean AP (percent) of ``cls_score`` against ``cls_label`` over the foreground classes.

    Classes with no positive image in the split have no AP and are left out of the mean; the
    per-class table is logged.
    """

    default_prefix = "cls"

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append(
                (sample["cls_score"].detach().float().cpu(), sample["cls_label"].float().cpu())
            )

    def compute_metrics(self, results: list) -> dict[str, float]:
        scores = torch.stack([score for score, _ in results])
        labels = torch.stack([label for _, label in results])
        per_class = average_precision(scores, labels) * 100
        names = list((self.dataset_meta or {}).get("classes", []))[1:]
        if len(names) != len(per_class):
            names = [f"class {k + 1}" for k in range(len(per_class))]
        width = max(len(name) for name in names)
        table = "\n".join(f"{name:<{width}}  {ap:6.2f}" for name, ap in zip(names, per_class.tolist()))
        print_log(f"per-class AP (%):\n{table}", logger="current")
        valid = per_class[~per_class.isnan()]
        return {"mAP": float(valid.mean()) if len(valid) else math.nan}


@METRICS.register_module()
class WSOLMetric(BaseMetric):
    """Top-1 / Top-5 / GT-known Loc, Top-1 Cls and MaxBoxAccV2 (percent) of a WSOL model's predictions.

    Each predicted sample needs ``loc_map``, ``cls_score``, ``gt_label``, ``gt_bboxes`` and ``ori_shape``
    (what ``BASWSOL.predict`` returns on ``CUBDataset`` samples). The map is resized back to the
    original image, so the loader's pipeline may only resize. ``process`` keeps one small
    :class:`~wsss.evaluation.wsol.ImageHits` per image, which is all mmengine gathers across ranks; use
    a sampler with ``round_up=False`` so no image is counted twice.

    Args:
        threshold: box threshold on the min-max normalised map (CUB default 0.1, as tools/eval_wsol.py).
        thresholds: the MaxBoxAccV2 sweep; ``None`` is 0.00, 0.01, ..., 0.99.
    """

    default_prefix = "wsol"

    def __init__(
        self,
        threshold: float = 0.1,
        thresholds: Sequence[float] | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
        collect_dir: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"WSOLMetric threshold must lie in [0, 1), got {threshold}")
        self.threshold = threshold
        self.thresholds = thresholds
        self._measurer = WSOLEvaluator(thresholds, threshold)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Measure each predicted sample's box hits in its original frame and keep only those."""
        for sample in data_samples:
            self.results.append(self._measurer.measure(*prediction_inputs(sample)))

    def compute_metrics(self, results: list[ImageHits]) -> dict[str, float]:
        """Sum the gathered per-image hits; log MaxBoxAccV2 per IoU criterion with its best threshold."""
        evaluator = WSOLEvaluator(self.thresholds, self.threshold)
        for image in results:
            evaluator.add(image)
        result = evaluator.compute()
        print_log(
            f"WSOL on {result.num_images} images, threshold {result.threshold:.2f}; MaxBoxAccV2 {format_per_iou(result)}",
            logger="current",
        )
        return {
            "top1_loc": result.top1_loc,
            "top5_loc": result.top5_loc,
            "gt_known_loc": result.gt_known_loc,
            "top1_cls": result.top1_cls,
            "max_box_acc_v2": result.max_box_acc_v2,
        }
