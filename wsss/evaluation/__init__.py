"""Evaluation: confusion matrices and scores, seed threshold sweeps, and the mmengine metric.

Importing this package registers ``SegIoUMetric`` and ``MultiLabelMAP`` in ``wsss.registry.METRICS``.
"""

from wsss.evaluation.classification import MultiLabelMAP
from wsss.evaluation.confusion import (
    ConfusionMatrix,
    SegmentationResult,
    confusion_matrix,
    evaluate_label_folders,
    format_table,
    load_json,
    save_json,
    scores_from_matrix,
)
from wsss.evaluation.metric import SegIoUMetric
from wsss.evaluation.seeds import DEFAULT_THRESHOLDS, SweepResult, ThresholdSweep, sweep_background_threshold

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ConfusionMatrix",
    "MultiLabelMAP",
    "SegIoUMetric",
    "SegmentationResult",
    "SweepResult",
    "ThresholdSweep",
    "confusion_matrix",
    "evaluate_label_folders",
    "format_table",
    "load_json",
    "save_json",
    "scores_from_matrix",
    "sweep_background_threshold",
]
