"""mmengine metric for weakly supervised object localization: validation loops report what tools/eval_wsol.py does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from wsss.localizer.wsol import IOU_CRITERIA, ImageHits, WSOLEvaluator, prediction_inputs
from wsss.registry import METRICS


@METRICS.register_module()
class WSOLMetric(BaseMetric):
    """Top-1 / Top-5 / GT-known Loc, Top-1 Cls and MaxBoxAccV2 (percent) of a WSOL model's predictions.

    Each predicted sample needs ``loc_map``, ``cls_score``, ``gt_label``, ``gt_bboxes`` and ``ori_shape``
    (what ``BASWSOL.predict`` returns on ``CUBDataset`` samples). The map is resized back to the
    original image, so the loader's pipeline may only resize. ``process`` keeps one small
    :class:`~wsss.localizer.wsol.ImageHits` per image, which is all mmengine gathers across ranks; use
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
        per_iou = ", ".join(
            f"IoU {c}: {result.max_box_acc_per_iou[c]:.2f} (t={result.best_threshold_per_iou[c]:.2f})"
            for c in IOU_CRITERIA
        )
        print_log(
            f"WSOL on {result.num_images} images, threshold {result.threshold:.2f}; MaxBoxAccV2 {per_iou}",
            logger="current",
        )
        return {
            "top1_loc": result.top1_loc,
            "top5_loc": result.top5_loc,
            "gt_known_loc": result.gt_known_loc,
            "top1_cls": result.top1_cls,
            "max_box_acc_v2": result.max_box_acc_v2,
        }
