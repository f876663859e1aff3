"""Pseudo labels from seeds: seed files, threshold labelling and optional dense CRF refinement."""

from wsss.pseudo_labels.crf import (
    LabelCRFSettings,
    ProbCRFSettings,
    crf_labels_from_threshold,
    crf_labels_from_two_thresholds,
    crf_on_labels,
    crf_on_probs,
)
from wsss.pseudo_labels.labels import labels_from_threshold, labels_from_two_thresholds
from wsss.pseudo_labels.seed_io import (
    SEED_SUFFIX,
    check_seeds_exist,
    list_seed_ids,
    load_seeds,
    save_seeds,
    seed_path,
)

__all__ = [
    "SEED_SUFFIX",
    "LabelCRFSettings",
    "ProbCRFSettings",
    "check_seeds_exist",
    "crf_labels_from_threshold",
    "crf_labels_from_two_thresholds",
    "crf_on_labels",
    "crf_on_probs",
    "labels_from_threshold",
    "labels_from_two_thresholds",
    "list_seed_ids",
    "load_seeds",
    "save_seeds",
    "seed_path",
]
