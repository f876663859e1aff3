"""Multi-label classification quality of localizers: mean average precision over classes."""

from __future__ import annotations

import math

import torch


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
