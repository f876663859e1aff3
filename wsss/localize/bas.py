"""BAS: Background Activation Suppression, the multi-label localizer for WSSS.

The network and losses follow the BAS paper (CVPR 2022) and its IJCV extension, public code wpy1999/BAS-Extension:

* ``classifier`` (1x1 conv, no bias) on the last stage gives the class activation map ``F``;
  ``logits = GAP(F)``.
* ``generator`` (3x3 conv, no bias, sigmoid) on the mid stage gives the foreground prediction maps
  ``M`` (one per foreground class, values in (0, 1)).
* Per image and iteration one ground-truth class ``c`` is drawn at random; ``M_fg = M[:, c]``.
* Activation Map Constraint: ``x_mid.detach() * (1 - M_fg)`` goes through the later stages and the
  classifier *as frozen*; ``S_bg`` is its GAP logit of class ``c``, ``S`` the (detached) class-``c``
  logit of the normal branch.
* ``L = L_mcls + 0.2 L_frg + 1.0 L_bas + 1.2 L_ac`` (weights from the config).

Gradient paths (as in the authors' code, where the generator input ``x_mid`` is not detached):
``L_mcls`` trains the whole backbone and the classifier; ``L_frg``, ``L_bas`` and ``L_ac`` reach
the generator and, through its input, the backbone stages up to the mid stage; none of them reaches
the later stages or the classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from wsss.nn.backbones import StagedBackbone
from wsss.nn.base import WSSSModel, require_batch
from wsss.registry import MODELS

MAP_SOURCES = ("fpm", "cam")


def resize_map(maps: Tensor, size: Sequence[int]) -> Tensor:
    """Bring ``(B, K, h, w)`` maps to ``size``: average pooling for integer down-scaling, else bilinear.

    Average pooling is what the authors' WSOL models do (``AvgPool2d(2)`` from 28x28 to 14x14).
    """
    size = tuple(size)
    height, width = maps.shape[-2:]
    if (height, width) == size:
        return maps
    if height % size[0] == 0 and width % size[1] == 0:
        return F.adaptive_avg_pool2d(maps, size)
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def call_frozen(module: nn.Module, x: Tensor) -> Tensor:
    """Run ``module`` on ``x`` as a throw-away copy of it would run: what the authors' deepcopy does.

    Parameters enter detached, so no gradient reaches them while gradient still flows to ``x``.
    Buffers enter as clones, so a module in train mode normalises with the batch statistics of
    ``x`` but its BatchNorm running statistics (and ``num_batches_tracked``) stay untouched. In
    eval mode the running statistics are used, as for an eval-mode copy.
    """
    tensors = {name: p.detach() for name, p in module.named_parameters()}
    tensors.update({name: b.clone() for name, b in module.named_buffers()})
    return functional_call(module, tensors, (x,))


def draw_positive_classes(cls_label: Tensor) -> Tensor:
    """One ground-truth class per image, uniformly among its positives (0-based foreground indices).

    Draws from the global RNG of ``cls_label``'s device, so seeding (mmengine's ``randomness.seed``)
    reproduces them.
    """
    positives = cls_label > 0.5
    empty = ~positives.any(dim=1)
    if empty.any():
        raise ValueError(
            f"BAS needs at least one foreground class per training image; {int(empty.sum())} image(s) of the "
            "batch have none: leave background-only images out of the training split"
        )
    return torch.multinomial(positives.float(), 1).squeeze(1)


def multilabel_softmax_loss(logits: Tensor, cls_label: Tensor) -> Tensor:
    """BAS's multi-label loss: each positive in a softmax against all negatives, summed, batch-averaged.

    Per positive ``p``: ``-log(e^{s_p} / (e^{s_p} + sum_n e^{s_n}))`` = ``logaddexp(s_p, LSE(negatives)) - s_p``.
    An image without negatives contributes 0.
    """
    positive = cls_label > 0.5
    has_negative = (~positive).any(dim=1, keepdim=True)
    negative_logits = logits.masked_fill(positive, float("-inf"))
    # Rows without negatives are computed on the plain logits (finite) and then discarded by the where.
    negative_lse = torch.logsumexp(torch.where(has_negative, negative_logits, logits), dim=1, keepdim=True)
    per_class = torch.where(
        has_negative, torch.logaddexp(logits, negative_lse) - logits, torch.zeros_like(logits)
    )
    return (per_class * positive).sum(dim=1).mean()


def background_suppression_loss(fg_score: Tensor, bg_score: Tensor) -> Tensor:
    """Per-image ``ReLU(S_bg) / (ReLU(S) + 1e-8)`` with ``S`` detached; the constant 1 where ``S_bg > S``.

    The comparison uses the rectified scores, as the authors' code does.
    """
    fg = F.relu(fg_score.detach())
    bg = F.relu(bg_score)
    ratio = bg / (fg + 1e-8)
    return torch.where(bg > fg, torch.ones_like(ratio), ratio)


def pick_class(tensor: Tensor, classes: Tensor) -> Tensor:
    """``tensor[i, classes[i]]`` for every image ``i`` (works for logits ``(B, K)`` and maps ``(B, K, h, w)``)."""
    return tensor[torch.arange(tensor.shape[0], device=tensor.device), classes]


@MODELS.register_module()
class BAS(WSSSModel):
    """BAS localizer for multi-label image-level labels (WSSS), on a :class:`StagedBackbone`.

    Args:
        num_classes: classes including background (VOC 21); heads have ``num_classes - 1`` outputs.
        backbone: keyword arguments of :class:`StagedBackbone` (``name``, ``output_stride``, ``checkpoint``).
        frg_weight, bas_weight, ac_weight: weights of ``L_frg``, ``L_bas`` and ``L_ac`` (paper 0.2, 1.0, 1.2).
        data_preprocessor: config dict or module; defaults to :class:`SegDataPreprocessor`.

    The seed maps (:meth:`class_maps`) are the foreground prediction maps ``M`` by default: they are
    what BAS trains to cover whole objects (the classifier's CAM stays available as ``source='cam'``).
    ``M`` lives at the mid-stage resolution, the CAM at the last-stage one (equal at output stride 16).

    The background branch reproduces the authors' per-step ``deepcopy`` of the later stages and the
    classifier without copying: :func:`call_frozen` runs the live modules with detached parameters
    and cloned buffers, so BatchNorm (in train mode) uses the batch statistics of the erased
    features, the model's running statistics are not updated, no parameter receives gradient, and
    gradient reaches the generator through ``(1 - M_fg)``.
    """

    def __init__(
        self,
        num_classes: int = 21,
        backbone: dict | None = None,
        frg_weight: float = 0.2,
        bas_weight: float = 1.0,
        ac_weight: float = 1.2,
        data_preprocessor: dict | nn.Module | None = None,
        init_cfg: dict | None = None,
    ):
        super().__init__(data_preprocessor, init_cfg)
        if num_classes < 2:
            raise ValueError(f"num_classes counts background and must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.backbone = StagedBackbone(**(backbone or {}))
        num_fg = num_classes - 1
        self.classifier = nn.Conv2d(self.backbone.out_channels, num_fg, kernel_size=1, bias=False)
        self.generator = nn.Conv2d(self.backbone.mid_channels, num_fg, kernel_size=3, padding=1, bias=False)
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.xavier_uniform_(self.generator.weight)
        self.loss_weights = {"frg": frg_weight, "bas": bas_weight, "ac": ac_weight}
        # Training statistics of the drawn classes' maps (not saved in checkpoints).
        self.register_buffer("map_sum", torch.zeros(num_fg), persistent=False)
        self.register_buffer("map_count", torch.zeros(num_fg), persistent=False)

    def extract(self, inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mid feature ``x_mid``, class activation map ``F`` (B, C-1, h, w) and foreground maps ``M``."""
        x_mid, x_last = self.backbone(inputs)
        return x_mid, self.classifier(x_last), torch.sigmoid(self.generator(x_mid))

    def erased_logits(self, x_mid: Tensor, fg_mask: Tensor) -> Tensor:
        """GAP logits of ``x_mid.detach() * (1 - fg_mask)`` through the frozen later stages and classifier."""
        erased = x_mid.detach() * (1.0 - fg_mask)
        cam = call_frozen(self.classifier, call_frozen(self.backbone.mid_to_last, erased))
        return cam.mean(dim=(2, 3))

    def _terms_and_mask(
        self, inputs: Tensor, cls_label: Tensor, drawn: Tensor
    ) -> tuple[dict[str, Tensor], Tensor]:
        x_mid, cam, fpm = self.extract(inputs)
        logits = cam.mean(dim=(2, 3))
        fg_mask = pick_class(fpm, drawn).unsqueeze(1)
        fg_score = pick_class(logits, drawn)
        bg_score = pick_class(self.erased_logits(x_mid, fg_mask), drawn)
        guided = (cam.detach() * resize_map(fg_mask, cam.shape[-2:])).mean(dim=(2, 3))
        terms = {
            "mcls": multilabel_softmax_loss(logits, cls_label),
            "frg": F.cross_entropy(guided, drawn),
            "bas": background_suppression_loss(fg_score, bg_score).mean(),
            "ac": fg_mask.mean(),
        }
        return terms, fg_mask

    def loss_terms(self, inputs: Tensor, cls_label: Tensor, drawn: Tensor | None = None) -> dict[str, Tensor]:
        """The four unweighted losses ``mcls``, ``frg``, ``bas``, ``ac``; ``drawn`` fixes the classes ``c``."""
        if drawn is None:
            drawn = draw_positive_classes(cls_label)
        return self._terms_and_mask(inputs, cls_label, drawn)[0]

    def loss(self, inputs: Tensor, data_samples: Sequence[dict]) -> dict[str, Tensor]:
        """Weighted losses (keys with ``loss``) plus the unweighted ``frg``, ``bas``, ``ac`` for logging.

        Also counts, per drawn class, the mean of its foreground map, so a class whose map collapses
        to 0 is reported after the epoch (:class:`~wsss.engine.hooks.MapCollapseHook`).
        """
        inputs = require_batch(inputs)
        cls_label = torch.stack([s["cls_label"] for s in data_samples]).to(inputs.device, inputs.dtype)
        drawn = draw_positive_classes(cls_label)
        terms, fg_mask = self._terms_and_mask(inputs, cls_label, drawn)
        with torch.no_grad():
            self.map_sum.index_add_(0, drawn, fg_mask.float().mean(dim=(1, 2, 3)))
            self.map_count.index_add_(0, drawn, torch.ones_like(drawn, dtype=self.map_count.dtype))
        losses = {"loss_mcls": terms["mcls"]}
        losses.update({f"loss_{k}": self.loss_weights[k] * terms[k] for k in ("frg", "bas", "ac")})
        losses.update({k: terms[k].detach() for k in ("frg", "bas", "ac")})
        return losses

    def pop_map_statistics(self) -> tuple[Tensor, Tensor]:
        """Per foreground class, the summed foreground-map means and the number of images since the last call."""
        sums, counts = self.map_sum.clone(), self.map_count.clone()
        self.map_sum.zero_()
        self.map_count.zero_()
        return sums, counts

    def class_maps(self, inputs: Tensor, source: str = "fpm") -> Tensor:
        """Non-negative maps ``(B, num_classes - 1, h, w)`` for seeds: ``'fpm'`` (``M``, default) or ``'cam'`` (ReLU F)."""
        if source not in MAP_SOURCES:
            raise ValueError(f"source must be one of {MAP_SOURCES}, got {source!r}")
        _, cam, fpm = self.extract(inputs)
        return fpm if source == "fpm" else F.relu(cam)

    def logits(self, inputs: Tensor) -> Tensor:
        """Classification logits ``GAP(F)``, ``(B, num_classes - 1)``."""
        return self.extract(inputs)[1].mean(dim=(2, 3))

    def embedding(self, inputs: Tensor) -> Tensor:
        """Pooled last-stage features ``(B, D)``: what KID and precision/recall compare (wsss.synth.quality)."""
        return self.backbone(inputs)[1].mean(dim=(2, 3))

    def predict(
        self, inputs: Tensor | Sequence[Tensor], data_samples: Sequence[dict]
    ) -> list[dict[str, Any]]:
        """The samples with ``cls_score`` (sigmoid of the logits, ``(num_classes - 1,)``) added.

        ``inputs`` is a batch tensor or, for images of different sizes, a list of ``(3, H, W)`` tensors.
        """
        if isinstance(inputs, Tensor):
            logits = self.logits(inputs)
        else:
            logits = torch.cat([self.logits(x.unsqueeze(0)) for x in inputs])
        return [{**sample, "cls_score": score} for sample, score in zip(data_samples, torch.sigmoid(logits))]

    def tensor(self, inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(logits, F, M)``."""
        _, cam, fpm = self.extract(inputs)
        return cam.mean(dim=(2, 3)), cam, fpm
