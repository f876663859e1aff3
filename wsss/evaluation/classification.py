"""Multi-label classification quality of localizers: mean average precision over classes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from wsss.registry import METRICS


def average_precision(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Non-interpolated AP per column of ``(N, K)`` scores against 0/1 labels.

    AP = sum over score thresholds (high to low) of precision times the recall gained there; tied
    scores form one threshold, as in scikit-learn and torchmetrics. Columns without positives get NaN.
    """
    scores = scores.double()
    labels = labels.double()
    result = torch.full((scores.shape[1],), math.nan, dtype=torch.float64)
    for k in range(scores.shape[1]):
        positives = labels[:, k].sum()
        if positives == 0:
            continue
        order = torch.argsort(scores[:, k], descending=True, stable=True)
        sorted_scores, sorted_labels = scores[order, k], labels[order, k]
        true_pos = torch.cumsum(sorted_labels, 0)
        # Only the last position of each run of tied scores is a threshold.
        last_of_tie = torch.ones_like(sorted_scores, dtype=torch.bool)
        last_of_tie[:-1] = sorted_scores[1:] != sorted_scores[:-1]
        true_pos = true_pos[last_of_tie]
        seen = torch.arange(1, len(order) + 1, dtype=torch.float64)[last_of_tie]
        precision = true_pos / seen
        recall_gain = torch.diff(true_pos, prepend=true_pos.new_zeros(1)) / positives
        result[k] = (precision * recall_gain).sum()
    return result


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
