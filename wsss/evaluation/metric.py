"""mmengine metric for segmentation: mIoU, aAcc and mAcc from a summed confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from wsss.data.classes import resolve_class_names
from wsss.evaluation.confusion import ConfusionMatrix, format_table
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
