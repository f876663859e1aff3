"""BAS for weakly supervised object localization (single-label images; the BAS paper's WSOL variant).

Differences from the WSSS :class:`~wsss.localize.bas.BAS`:

* ``num_classes`` is the number of object classes (CUB 200, ILSVRC 1000): there is no background class.
* The classifier is conv3x3 -> 1024, ReLU, conv3x3 1024 -> 1024, ReLU, conv1x1 -> C (with biases, as
  the authors' WSOL heads); the generator is a 3x3 conv with bias + sigmoid on the mid stage.
* Single-label cross-entropy; the class ``c`` of the Activation Map Constraint is the ground truth.
* Foreground guidance ``score_2 = GAP(F * AvgPool(M_fg))`` with ``F`` *not* detached, so ``L_frg``
  also trains the classifier and the whole backbone (as the authors' WSOL code does).
* ``L = L_cls + alpha L_frg + L_bas + beta L_ac`` with ``alpha = frg_weight``, ``beta = ac_weight``.
* Inference: ``M_fg`` is the mean of the maps of the top-k predicted classes (k = 1 with known labels:
  the ground-truth map, the authors' rule).

The authors' WSOL networks halve the mid feature before the later stages (ResNet-50: layer3 at 28x28,
max-pool, layer4 at 14x14 for 224 px); ``mid_pool=2`` with ``output_stride=8`` reproduces that layout.
The authors' VGG model sets ``L_bas`` entries with ``S_bg > S`` to 0 instead of 1; we use 1 everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsss.localize.bas import MAP_SOURCES, background_suppression_loss, call_frozen, pick_class, resize_map
from wsss.nn.backbones import StagedBackbone
from wsss.nn.base import WSSSModel, require_batch
from wsss.registry import MODELS


def single_labels(data_samples: Sequence[dict], device: torch.device) -> Tensor:
    """Class index per sample: ``gt_label`` when given, else the one positive of a one-hot ``cls_label``."""
    labels = []
    for sample in data_samples:
        if "gt_label" in sample:
            labels.append(int(sample["gt_label"]))
            continue
        positives = torch.nonzero(torch.as_tensor(sample["cls_label"]) > 0.5).flatten()
        if positives.numel() != 1:
            raise ValueError(
                f"image {sample.get('img_id', '?')}: WSOL needs exactly one class per image, found "
                f"{positives.numel()}; use a single-label dataset or give 'gt_label'"
            )
        labels.append(int(positives[0]))
    return torch.tensor(labels, dtype=torch.long, device=device)


def localization_classes(logits: Tensor, topk: int, labels: Tensor | None) -> Tensor:
    """Classes ``(B, k)`` whose maps form the localization map: the labels when ``topk == 1`` and known, else top-k."""
    if topk == 1 and labels is not None:
        return labels.view(-1, 1)
    return logits.topk(topk, dim=1).indices


def mean_class_maps(maps: Tensor, classes: Tensor) -> Tensor:
    """Mean over ``classes`` ``(B, k)`` of the maps ``(B, K, h, w)``: ``(B, h, w)``."""
    index = classes[:, :, None, None].expand(-1, -1, *maps.shape[-2:])
    return maps.gather(1, index).mean(dim=1)


@MODELS.register_module()
class BASWSOL(WSSSModel):
    """BAS localizer for single-label WSOL.

    Args:
        num_classes: object classes (no background).
        backbone: keyword arguments of :class:`StagedBackbone`.
        mid_pool: max-pool kernel between the mid feature and the later stages (1 = none).
        head_channels: width of the classifier's two 3x3 convs (1024 in the paper).
        frg_weight, bas_weight, ac_weight: ``alpha``, the ``L_bas`` weight (1) and ``beta``.
        topk: classes whose maps are averaged into the localization map at inference.
        data_preprocessor: config dict or module; defaults to :class:`SegDataPreprocessor`.

    Samples carry the class as ``gt_label`` (int) or as a one-hot ``cls_label`` over the object classes.
    """

    def __init__(
        self,
        num_classes: int = 200,
        backbone: dict | None = None,
        mid_pool: int = 1,
        head_channels: int = 1024,
        frg_weight: float = 0.5,
        bas_weight: float = 1.0,
        ac_weight: float = 1.5,
        topk: int = 1,
        data_preprocessor: dict | nn.Module | None = None,
        init_cfg: dict | None = None,
    ):
        super().__init__(data_preprocessor, init_cfg)
        if not 1 <= topk <= num_classes:
            raise ValueError(f"topk must lie in 1..num_classes={num_classes}, got {topk}")
        self.num_classes = num_classes
        self.topk = topk
        self.backbone = StagedBackbone(**(backbone or {}))
        self.mid_pool = nn.MaxPool2d(mid_pool) if mid_pool > 1 else nn.Identity()
        self.classifier = nn.Sequential(
            nn.Conv2d(self.backbone.out_channels, head_channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(head_channels, head_channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(head_channels, num_classes, kernel_size=1),
        )
        self.generator = nn.Conv2d(self.backbone.mid_channels, num_classes, kernel_size=3, padding=1)
        for conv in (*self.classifier[::2], self.generator):
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.loss_weights = {"frg": frg_weight, "bas": bas_weight, "ac": ac_weight}

    def extract(self, inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mid feature ``x_mid``, class activation map ``F`` (B, C, h, w) and foreground maps ``M`` (mid size)."""
        x_mid = self.backbone.to_mid(inputs)
        cam = self.classifier(self.backbone.mid_to_last(self.mid_pool(x_mid)))
        return x_mid, cam, torch.sigmoid(self.generator(x_mid))

    def erased_logits(self, x_mid: Tensor, fg_mask: Tensor) -> Tensor:
        """GAP logits of ``x_mid.detach() * (1 - fg_mask)`` through the frozen later stages and classifier."""
        erased = self.mid_pool(x_mid.detach() * (1.0 - fg_mask))
        cam = call_frozen(self.classifier, call_frozen(self.backbone.mid_to_last, erased))
        return cam.mean(dim=(2, 3))

    def loss_terms(self, inputs: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """The four unweighted losses ``cls``, ``frg``, ``bas``, ``ac`` for class indices ``labels`` (B,)."""
        x_mid, cam, fpm = self.extract(inputs)
        logits = cam.mean(dim=(2, 3))
        fg_mask = pick_class(fpm, labels).unsqueeze(1)
        bg_score = pick_class(self.erased_logits(x_mid, fg_mask), labels)
        guided = (cam * resize_map(fg_mask, cam.shape[-2:])).mean(dim=(2, 3))
        return {
            "cls": F.cross_entropy(logits, labels),
            "frg": F.cross_entropy(guided, labels),
            "bas": background_suppression_loss(pick_class(logits, labels), bg_score).mean(),
            "ac": fg_mask.mean(),
        }

    def loss(self, inputs: Tensor, data_samples: Sequence[dict]) -> dict[str, Tensor]:
        """Weighted losses (keys with ``loss``) plus the unweighted ``frg``, ``bas``, ``ac`` for logging."""
        inputs = require_batch(inputs)
        terms = self.loss_terms(inputs, single_labels(data_samples, inputs.device))
        losses = {"loss_cls": terms["cls"]}
        losses.update({f"loss_{k}": self.loss_weights[k] * terms[k] for k in ("frg", "bas", "ac")})
        losses.update({k: terms[k].detach() for k in ("frg", "bas", "ac")})
        return losses

    def foreground_map(self, inputs: Tensor, topk: int | None = None, labels: Tensor | None = None) -> Tensor:
        """Localization map ``(B, h, w)`` at the mid resolution: mean of the top-k predicted classes' ``M``.

        With ``topk == 1`` and ``labels`` given, the ground-truth class map (the authors' GT-known rule).
        """
        topk = self.topk if topk is None else topk
        _, cam, fpm = self.extract(inputs)
        return mean_class_maps(fpm, localization_classes(cam.mean(dim=(2, 3)), topk, labels))

    def class_maps(self, inputs: Tensor, source: str = "fpm") -> Tensor:
        """Non-negative maps ``(B, num_classes, h, w)``: ``'fpm'`` (``M``, default) or ``'cam'`` (ReLU F)."""
        if source not in MAP_SOURCES:
            raise ValueError(f"source must be one of {MAP_SOURCES}, got {source!r}")
        _, cam, fpm = self.extract(inputs)
        return fpm if source == "fpm" else F.relu(cam)

    def predict(self, inputs: Tensor, data_samples: Sequence[dict]) -> list[dict[str, Any]]:
        """The samples with ``cls_score`` (softmax: the model is trained single-label) and ``loc_map`` ``(h, w)``.

        ``loc_map`` follows :meth:`foreground_map` with the model's ``topk``; with ``topk == 1`` the
        samples' labels are used when every sample has one, the top-1 prediction otherwise.
        """
        _, cam, fpm = self.extract(inputs)
        logits = cam.mean(dim=(2, 3))
        labelled = all("gt_label" in s or "cls_label" in s for s in data_samples)
        labels = single_labels(data_samples, inputs.device) if labelled else None
        loc_maps = mean_class_maps(fpm, localization_classes(logits, self.topk, labels))
        scores = torch.softmax(logits, dim=1)
        return [
            {**sample, "cls_score": score, "loc_map": loc_map}
            for sample, score, loc_map in zip(data_samples, scores, loc_maps)
        ]

    def tensor(self, inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(logits, F, M)``."""
        _, cam, fpm = self.extract(inputs)
        return cam.mean(dim=(2, 3)), cam, fpm
