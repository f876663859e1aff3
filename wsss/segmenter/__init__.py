"""Segmentation stage after the pseudo labels: evaluating trained Segmenters (tools/test.py, the pipeline)."""

from wsss.segmenter.inference import (
    SegmenterEvaluation,
    comparison_panel,
    evaluate_segmenter,
    overlay,
    predict_label,
)

__all__ = ["SegmenterEvaluation", "comparison_panel", "evaluate_segmenter", "overlay", "predict_label"]
