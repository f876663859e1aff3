"""Evaluation: confusion matrices and scores, seed threshold sweeps, and the mmengine metrics.

Importing this package registers ``SegIoUMetric``, ``MultiLabelMAP`` and ``WSOLMetric`` in
``wsss.registry.METRICS``.
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
from wsss.evaluation.wsol import WSOLMetric

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ConfusionMatrix",
    "MultiLabelMAP",
    "SegIoUMetric",
    "SegmentationResult",
    "SweepResult",
    "ThresholdSweep",
    "WSOLMetric",
    "confusion_matrix",
    "evaluate_label_folders",
    "format_table",
    "load_json",
    "save_json",
    "scores_from_matrix",
    "sweep_background_threshold",
]
