"""Scoring a folder of label PNGs (pseudo labels, predictions) against a folder of ground truth."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np

from wsss.data.label_io import BIASED_INDEX, IGNORE_INDEX, check_labels_exist, read_label_fast
from wsss.evaluation.confusion import ConfusionMatrix, confusion_matrix
from wsss.parallel import map_id_chunks


def _folder_chunk_matrix(
    pred_dir: Path, gt_dir: Path, num_classes: int, ids: Sequence[str]
) -> tuple[np.ndarray, int]:
    """Summed confusion matrix of the ``<id>.png`` pairs of one chunk, and the chunk's length."""
    total = np.zeros((num_classes, num_classes), dtype=np.int64)
    for image_id in ids:
        pred_path = pred_dir / f"{image_id}.png"
        gt_path = gt_dir / f"{image_id}.png"
        pred = read_label_fast(pred_path)
        gt = read_label_fast(gt_path)
        if pred.shape != gt.shape:
            raise ValueError(
                f"{pred_path}: prediction is {pred.shape[0]}x{pred.shape[1]} (HxW) but ground truth {gt_path} "
                f"is {gt.shape[0]}x{gt.shape[1]}; predictions must be at the ground-truth resolution"
            )
        # A value beyond the classes would count as background: a folder of another dataset's
        # predictions (or the wrong --classes) would be scored silently.
        if pred.size and int(pred.max()) >= num_classes:
            beyond = sorted(
                set(np.unique(pred).tolist()) - set(range(num_classes)) - {BIASED_INDEX, IGNORE_INDEX}
            )
            if beyond:
                raise ValueError(
                    f"{pred_path}: holds label values {beyond[:5]} beyond the {num_classes} classes (0..{num_classes - 1}; "
                    f"{BIASED_INDEX} biased, {IGNORE_INDEX} ignore); predictions of another dataset? check --classes"
                )
        try:
            total += confusion_matrix(pred, gt, num_classes)
        except ValueError as err:
            raise ValueError(f"{gt_path}: {err}") from None
    return total, len(ids)


def evaluate_label_folders(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    ids: Sequence[str],
    num_classes: int,
    workers: int = 1,
    progress: bool = True,
) -> ConfusionMatrix:
    """Confusion matrix of ``pred_dir/<id>.png`` against ``gt_dir/<id>.png`` over ``ids``.

    With ``workers > 1`` the ids are split into chunks and each worker process decodes its chunk
    and returns one partial matrix, so only small matrices cross process boundaries. Raises
    FileNotFoundError listing missing files before any work starts, and ValueError naming the file
    for a size mismatch or an out-of-range ground-truth value.
    """
    if not ids:
        raise ValueError("the id list is empty; nothing to evaluate")
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    check_labels_exist(pred_dir, ids, "prediction")
    check_labels_exist(gt_dir, ids, "ground-truth")
    count_chunk = partial(_folder_chunk_matrix, pred_dir, gt_dir, num_classes)
    result = ConfusionMatrix(num_classes)
    for matrix in map_id_chunks(count_chunk, ids, workers, progress, "evaluate", max_chunk=64):
        result.matrix += matrix
    return result
