"""Evaluating a trained Segmenter on a dataset, as ``tools/test.py`` and the pipeline do.

Predictions are made at each image's ORIGINAL size: whatever the test pipeline did to the input,
the logits (or the multi-scale probabilities) are resized to ``ori_shape`` before the argmax, and
the ground truth is read at that size from the label file. Scores come from the project's
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

import numpy as np
import torch
from mmengine.dist import all_reduce, get_dist_info
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from wsss.data.image_io import read_image
from wsss.data.label_io import colorize, read_label_png, write_label_png
from wsss.evaluation.confusion import ConfusionMatrix, SegmentationResult
from wsss.fileio import atomic_write
from wsss.pseudo_labels.crf import ProbCRFSettings, crf_on_probs, import_pydensecrf

OVERLAY_ALPHA = 0.5
PANEL_GAP = 4


@torch.no_grad()
def predict_label(
    model: nn.Module,
    image: torch.Tensor,
    ori_shape: Sequence[int],
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    crf_image: np.ndarray | None = None,
    crf_settings: ProbCRFSettings = ProbCRFSettings(),
) -> np.ndarray:
    """The ``(H, W)`` uint8 class map of one uint8 ``(3, h, w)`` image, at ``ori_shape`` ``(H, W)``.

    One scale without flip takes the argmax of the logits resized to ``ori_shape``; otherwise the
    argmax of :meth:`~wsss.models.segmenter.Segmenter.tta_probs`. With ``crf_image`` (the original
    ``(H, W, 3)`` RGB image) the softmax is refined by the dense CRF on probabilities first.
    """
    out_size = tuple(int(s) for s in ori_shape[:2])
    inputs = model.data_preprocessor({"inputs": [image], "data_samples": [{}]}, False)["inputs"][0]
    if tuple(scales) == (1.0,) and not flip:
        scores = model.predict_logits(inputs[None], out_size=out_size)[0]
        if crf_image is not None:
            scores = scores.softmax(dim=0)
    else:
        scores = model.tta_probs(inputs, scales=scales, flip=flip, out_size=out_size)
    if crf_image is not None:
        return (
            crf_on_probs(crf_image, scores.float().cpu().numpy(), crf_settings)
            .argmax(axis=0)
            .astype(np.uint8)
        )
    return scores.argmax(dim=0).to(torch.uint8).cpu().numpy()


def overlay(image: np.ndarray, label: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """``image`` with every non-background pixel blended with its class's VOC colour (255 included)."""
    blended = image.astype(np.float32) * (1.0 - alpha) + colorize(label).astype(np.float32) * alpha
    return np.where((label != 0)[..., None], np.round(blended), image).astype(np.uint8)


def comparison_panel(image: np.ndarray, pred: np.ndarray, gt: np.ndarray | None = None) -> np.ndarray:
    """The prediction overlay, then (when there is one) the ground-truth overlay, side by side."""
    panels = [overlay(image, pred)] + ([overlay(image, gt)] if gt is not None else [])
    gap = np.full((image.shape[0], PANEL_GAP, 3), 255, dtype=np.uint8)
    pieces = [panels[0]]
    for panel in panels[1:]:
        pieces += [gap, panel]
    return np.concatenate(pieces, axis=1)


def write_rgb_png(path: Path, image: np.ndarray) -> None:
    """Write an ``(H, W, 3)`` uint8 image as PNG, atomically (a temporary name, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def reusable_prediction(path: Path, shape: Sequence[int]) -> np.ndarray | None:
    """The label map in ``path`` when it is a readable label PNG of ``shape``, else None."""
    if not path.is_file():
        return None
    try:
        label = read_label_png(path)
    except ValueError:
        return None
    return label if label.shape == tuple(shape[:2]) else None


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
        model: a :class:`~wsss.models.segmenter.Segmenter` in eval mode on its device.
        dataset: an :class:`~wsss.data.dataset.ImageLabelDataset`; without masks (``with_mask``
            False) nothing is scored and ``result`` is None.
        scales, flip: test-time augmentation; default the model's ``test_cfg``.
        crf: refine the softmax with the dense CRF (PSA's settings); needs pydensecrf.
        out_dir: write ``<id>.png`` palette label maps at the original size (atomically).
        show_dir: write ``<id>.png`` overlays: prediction on the image, next to the ground truth.
        resume: reuse readable predictions of the right size already in ``out_dir`` (and overlays
            already in ``show_dir``), so an interrupted run continues where it stopped.
        num_workers: DataLoader processes reading images.
    """
    scales = tuple(float(s) for s in (model.test_scales if scales is None else scales))
    flip = bool(model.test_flip if flip is None else flip)
    if crf:
        import_pydensecrf()  # a missing package fails here, before any work
    out_dir = None if out_dir is None else Path(out_dir)
    show_dir = None if show_dir is None else Path(show_dir)
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
        pred = reusable_prediction(out_dir / f"{img_id}.png", ori_shape) if resume and out_dir else None
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
            write_rgb_png(show_dir / f"{img_id}.png", comparison_panel(original, pred, gt))
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
