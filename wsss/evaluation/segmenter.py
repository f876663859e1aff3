"""Scoring a trained Segmenter on a dataset, as ``tools/test.py`` and the pipeline do.

Predictions are made at each image's ORIGINAL size: whatever the test pipeline did to the input,
the logits (or the multi-scale probabilities) are resized to ``ori_shape`` before the argmax, and
the ground truth is read at that size from the label file. Scores come from
:class:`~wsss.evaluation.confusion.ConfusionMatrix`, so they match ``tools/eval_seg.py`` on the
written PNGs exactly.

In a distributed run (a process group is initialised) rank ``r`` of ``w`` evaluates items
``r, r + w, r + 2w, ...`` and the confusion matrices are summed with an all-reduce: every item is
counted exactly once, so the scores equal a single-process run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from mmengine.dist import all_reduce, get_dist_info
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from wsss.data.image_io import read_image
from wsss.data.label_io import reusable_label_png, write_label_png
from wsss.evaluation.confusion import ConfusionMatrix, SegmentationResult
from wsss.fileio import remove_stale_temporaries, save_png_atomic
from wsss.pseudo.crf import import_pydensecrf
from wsss.segment.inference import predict_label
from wsss.segment.model import TTA_SCALES
from wsss.visualize.overlay import comparison_panel


@dataclass(frozen=True)
class SegmenterEvaluation:
    """What :func:`evaluate_segmenter` did: the scores (None without ground truth) and its counts.

    ``counts`` and ``num_images`` cover every rank of a distributed run; ``reused`` is the number
    of predictions read back from ``out_dir`` instead of recomputed (``resume=True``).
    """

    result: SegmentationResult | None
    counts: ConfusionMatrix | None
    num_images: int
    reused: int
    scales: tuple[float, ...]
    flip: bool
    crf: bool

    def describe(self) -> str:
        """One line naming the inference settings."""
        scales = ", ".join(f"{s:g}" for s in self.scales)
        return f"scales {scales}; flip {'on' if self.flip else 'off'}; CRF {'on' if self.crf else 'off'}"


def prediction_settings(split: str, tta: bool, crf: bool, model: nn.Module) -> dict[str, Any]:
    """What decides a folder of predictions besides the checkpoint, as its manifest records it: split,
    the test scales and flip (TTA) and CRF."""
    scales = TTA_SCALES if tta else model.test_scales
    return {
        "split": split,
        "scales": [float(s) for s in scales],
        "flip": bool(tta or model.test_flip),
        "crf": bool(crf),
    }


def _first_item(item: Any) -> Any:
    return item


def evaluate_segmenter(
    model: nn.Module,
    dataset: Any,
    *,
    scales: Sequence[float] | None = None,
    flip: bool | None = None,
    crf: bool = False,
    out_dir: str | os.PathLike | None = None,
    show_dir: str | os.PathLike | None = None,
    resume: bool = False,
    num_workers: int = 0,
    progress: bool = True,
) -> SegmenterEvaluation:
    """Predict every image of ``dataset`` at its original size and score it against the ground truth.

    Args:
        model: a :class:`~wsss.segment.model.Segmenter` in eval mode on its device.
        dataset: an :class:`~wsss.data.dataset.ImageLabelDataset`; without masks (``with_mask``
            False) nothing is scored and ``result`` is None.
        scales, flip: test-time augmentation; default the model's ``test_cfg``.
        crf: refine the softmax with the dense CRF (PSA's settings); needs pydensecrf.
        out_dir: write ``<id>.png`` palette label maps at the original size (atomically).
        show_dir: write ``<id>.png`` overlays: prediction on the image, next to the ground truth.
        resume: reuse readable predictions of the right size already in ``out_dir`` (and overlays
            already in ``show_dir``), so an interrupted run continues where it stopped. The caller
            checks that those folders were made with the same model and settings.
        num_workers: DataLoader processes reading images.
    """
    scales = tuple(float(s) for s in (model.test_scales if scales is None else scales))
    flip = bool(model.test_flip if flip is None else flip)
    if crf:
        import_pydensecrf()  # a missing package fails here, before any work
    out_dir = None if out_dir is None else Path(out_dir)
    show_dir = None if show_dir is None else Path(show_dir)
    for folder in (out_dir, show_dir):
        if folder is not None:
            remove_stale_temporaries(folder)
    rank, world_size = get_dist_info()
    indices = list(range(rank, len(dataset), world_size))
    loader = DataLoader(
        Subset(dataset, indices), batch_size=None, num_workers=num_workers, collate_fn=_first_item
    )
    counts = ConfusionMatrix(dataset.num_classes) if dataset.with_mask else None
    reused = 0
    bar = tqdm(loader, desc="test", unit="img", disable=not progress or rank != 0)
    for index, item in zip(indices, bar):
        sample = item["data_samples"]
        img_id, ori_shape = sample["img_id"], tuple(sample["ori_shape"])
        original = None
        if dataset.pipeline is None:
            original = item["inputs"].permute(1, 2, 0).numpy()
        gt = None
        if dataset.with_mask:
            gt = sample["gt_seg"].numpy() if dataset.pipeline is None else dataset.read_mask(index, ori_shape)
        pred = reusable_label_png(out_dir / f"{img_id}.png", ori_shape) if resume and out_dir else None
        if pred is None:
            if crf and original is None:
                original = read_image(sample["img_path"])
            pred = predict_label(model, item["inputs"], ori_shape, scales, flip, original if crf else None)
            if out_dir is not None:
                write_label_png(out_dir / f"{img_id}.png", pred)
        else:
            reused += 1
        if counts is not None:
            counts.update(pred, gt)
        if show_dir is not None and not (resume and (show_dir / f"{img_id}.png").is_file()):
            if original is None:
                original = read_image(sample["img_path"])
            save_png_atomic(show_dir / f"{img_id}.png", comparison_panel(original, pred, gt))
    bar.close()
    if world_size > 1:
        totals = torch.tensor([reused], dtype=torch.int64)
        all_reduce(totals)
        reused = int(totals[0])
        if counts is not None:
            matrix = torch.from_numpy(counts.matrix)
            all_reduce(matrix)
            counts = ConfusionMatrix(dataset.num_classes, matrix.numpy())
    return SegmenterEvaluation(
        result=None if counts is None else counts.compute(),
        counts=counts,
        num_images=len(dataset),
        reused=reused,
        scales=scales,
        flip=flip,
        crf=crf,
    )
