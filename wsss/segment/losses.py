"""Segmentation losses the :class:`~wsss.segment.model.Segmenter` plugs in.

A loss is a registered ``nn.Module`` with

- ``needs_teacher`` (class attribute): ``True`` makes the segmenter keep an EMA teacher
  (:class:`~wsss.nn.ema.EMATeacher`) and pass its logits;
- ``loss(logits, data_samples, teacher_logits=None) -> dict[str, Tensor]``: ``logits`` are the
  student's ``(B, C, H, W)`` scores, ``data_samples`` the batch's sample dicts (labels under
  ``gt_seg``, image-level labels under ``cls_label``), ``teacher_logits`` the teacher's scores for the
  same inputs (no gradient) or ``None``. Keys containing ``loss`` are summed by mmengine.

So a loss that relabels pixels from a teacher (MARS's weighted CE on biased pixels) is a new class
here, not a change to the segmenter.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from wsss.data.label_io import IGNORE_INDEX
from wsss.registry import MODELS


def stack_labels(
    data_samples: Sequence[dict], key: str = "gt_seg", device: torch.device | None = None
) -> torch.Tensor:
    """The ``(B, H, W)`` int64 label maps of a batch; all must have one size (training crops do)."""
    try:
        labels = [sample[key] for sample in data_samples]
    except KeyError as err:
        raise KeyError(
            f"data samples lack {key!r}: the training dataset must read label maps (with_mask=True)"
        ) from err
    shapes = {tuple(label.shape) for label in labels}
    if len(shapes) != 1:
        raise ValueError(
            f"label maps of one batch differ in size {sorted(shapes)}; crop training images to one size"
        )
    return torch.stack([torch.as_tensor(label) for label in labels]).long().to(device)


def resize_to_labels(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``logits`` bilinearly resized to the labels' height and width (unchanged when they already match)."""
    if logits.shape[-2:] == labels.shape[-2:]:
        return logits
    return F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)


def weighted_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Per-pixel cross-entropy times ``weights`` (default 1), averaged over the pixels not ``ignore_index``.

    The mean is over valid pixels, not over the weights' sum, so a weight below 1 lowers a pixel's
    share. A batch with no valid pixel gives 0 (not NaN), with a zero gradient.
    """
    per_pixel = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="none")
    if weights is not None:
        per_pixel = per_pixel * weights
    valid = (labels != ignore_index).sum()
    return per_pixel.sum() / valid.clamp(min=1)


@MODELS.register_module()
class SegCrossEntropy(nn.Module):
    """Pixel cross-entropy against the samples' label maps, pixels labelled ``ignore_index`` left out.

    Logits of another size than the labels are resized bilinearly to the labels first.
    """

    needs_teacher = False

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        loss_weight: float = 1.0,
        label_key: str = "gt_seg",
        loss_name: str = "loss_ce",
    ):
        super().__init__()
        if "loss" not in loss_name:
            raise ValueError(f"loss_name must contain 'loss' so mmengine sums it, got {loss_name!r}")
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight
        self.label_key = label_key
        self.loss_name = loss_name

    def loss(
        self, logits: torch.Tensor, data_samples: Sequence[dict], teacher_logits: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``{loss_name: loss_weight * mean cross-entropy over non-ignored pixels}``; the teacher is unused."""
        labels = stack_labels(data_samples, self.label_key, logits.device)
        logits = resize_to_labels(logits, labels)
        value = weighted_cross_entropy(logits, labels, ignore_index=self.ignore_index)
        return {self.loss_name: self.loss_weight * value}
