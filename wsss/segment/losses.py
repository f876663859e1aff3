"""Segmentation losses the :class:`~wsss.segment.model.Segmenter` plugs in.

A loss is a registered ``nn.Module`` with

- ``needs_teacher`` (class attribute): ``True`` makes the segmenter keep an EMA teacher
  (:class:`~wsss.nn.ema.EMATeacher`) and pass its logits, unless the loss's optional
  ``wants_teacher()`` says the coming call will not use them (a warm-up spares the teacher's forward);
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

from wsss.data.label_io import BIASED_INDEX, IGNORE_INDEX
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


def restricted_probabilities(teacher_logits: torch.Tensor, cls_label: torch.Tensor) -> torch.Tensor:
    """Softmax of ``(B, C, H, W)`` logits over background and each image's own classes (others get 0).

    ``cls_label`` is the ``(B, C - 1)`` multi-hot image-level label.
    """
    allowed = torch.cat([torch.ones_like(cls_label[:, :1]), cls_label], dim=1) > 0.5
    masked = teacher_logits.masked_fill(~allowed[:, :, None, None], float("-inf"))
    return masked.float().softmax(dim=1)


@MODELS.register_module()
class MARSComplementCE(SegCrossEntropy):
    """MARS's complementing loss: biased pixels (254) take the EMA teacher's label, weighted by its confidence.

    At a biased pixel the teacher's softmax over background and the image's own classes gives the
    label (its argmax) and the weight ``W`` (the maximum of those probabilities; with
    ``weight_includes_background=False`` the maximum over the image's foreground classes only, as a
    literal reading of the paper has it); every other pixel keeps its label with weight 1. The loss
    is the weighted cross-entropy summed over pixels and divided by the number of non-ignored pixels
    (as :func:`weighted_cross_entropy`), so a weight below 1 lowers a pixel's share. For the first
    ``warmup_iters`` training iterations the teacher is still close to random, so biased pixels are
    ignored instead. ``weighted=False`` uses the teacher's labels with weight 1 (the paper's
    "complementing" ablation row without the weighted CE).

    The iteration count is a buffer, saved in checkpoints, so a resumed run keeps its warm-up state.
    """

    needs_teacher = True

    def __init__(
        self,
        warmup_iters: int = 0,
        weighted: bool = True,
        weight_includes_background: bool = True,
        biased_index: int = BIASED_INDEX,
        ignore_index: int = IGNORE_INDEX,
        loss_weight: float = 1.0,
        label_key: str = "gt_seg",
        loss_name: str = "loss_ce",
    ):
        super().__init__(ignore_index, loss_weight, label_key, loss_name)
        self.warmup_iters = warmup_iters
        self.weighted = weighted
        self.weight_includes_background = weight_includes_background
        self.biased_index = biased_index
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    def wants_teacher(self) -> bool:
        """Whether the next training call uses the teacher's logits (not during the warm-up)."""
        return int(self.iteration) + 1 > self.warmup_iters

    def complement(
        self, labels: torch.Tensor, teacher_logits: torch.Tensor, cls_label: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels with every biased pixel replaced by the teacher's label, and the per-pixel weights."""
        probs = restricted_probabilities(teacher_logits, cls_label)
        confidence = probs if self.weight_includes_background else probs[:, 1:]
        biased = labels == self.biased_index
        labels = torch.where(biased, probs.argmax(dim=1), labels)
        weights = torch.where(biased, confidence.amax(dim=1), torch.ones_like(probs[:, 0]))
        return labels, weights if self.weighted else torch.ones_like(weights)

    def loss(
        self, logits: torch.Tensor, data_samples: Sequence[dict], teacher_logits: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        labels = stack_labels(data_samples, self.label_key, logits.device)
        logits = resize_to_labels(logits, labels)
        if torch.is_grad_enabled():
            self.iteration += 1
        biased = labels == self.biased_index
        if teacher_logits is None or int(self.iteration) <= self.warmup_iters:
            labels, weights = labels.masked_fill(biased, self.ignore_index), None
        else:
            cls_label = torch.stack([torch.as_tensor(s["cls_label"]) for s in data_samples]).to(logits.device)
            labels, weights = self.complement(labels, resize_to_labels(teacher_logits, labels), cls_label)
        value = weighted_cross_entropy(logits, labels, weights, ignore_index=self.ignore_index)
        return {self.loss_name: self.loss_weight * value, "biased_share": biased.float().mean().detach()}
