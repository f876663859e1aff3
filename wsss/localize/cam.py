"""CAM: the plain multi-label classifier whose class activation maps seed most WSSS pipelines.

A 1x1 convolution without bias maps the last backbone feature to one map per foreground class;
global average pooling of those maps gives the logits. Because pooling and the convolution are
both linear, the maps are exactly the classic CAMs (classifier weights times features).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wsss.nn.backbones import StagedBackbone
from wsss.nn.base import WSSSModel, require_batch
from wsss.registry import MODELS


@MODELS.register_module()
class CAM(WSSSModel):
    """Multi-label classifier with class activation maps.

    Args:
        backbone: keyword arguments of :class:`StagedBackbone` (``name``, ``output_stride``, ``checkpoint``, ...).
        num_classes: classes including background (VOC: 21); the classifier has ``num_classes - 1`` outputs.
        data_preprocessor: config or module normalising the uint8 batch (default ``SegDataPreprocessor``).
    """

    def __init__(
        self,
        backbone: dict,
        num_classes: int = 21,
        data_preprocessor: dict | nn.Module | None = None,
        init_cfg: dict | None = None,
    ):
        if num_classes < 2:
            raise ValueError(f"num_classes counts background and must be at least 2, got {num_classes}")
        super().__init__(data_preprocessor, init_cfg)
        self.num_classes = num_classes
        self.backbone = StagedBackbone(**backbone)
        self.classifier = nn.Conv2d(self.backbone.out_channels, num_classes - 1, kernel_size=1, bias=False)

    def score_maps(self, inputs: torch.Tensor) -> torch.Tensor:
        """Signed per-class maps ``(B, C-1, h, w)`` at the backbone's output stride."""
        _, last = self.backbone(inputs)
        return self.classifier(last)

    def class_maps(self, inputs: torch.Tensor) -> torch.Tensor:
        """Non-negative class activation maps ``(B, C-1, h, w)`` of a normalised batch."""
        return F.relu(self.score_maps(inputs))

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Multi-label logits ``(B, C-1)``: the spatial mean of the score maps."""
        return self.score_maps(inputs).mean(dim=(2, 3))

    def loss(self, inputs: torch.Tensor, data_samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The multi-label soft-margin loss of the logits (in fp32, also under mixed precision)."""
        inputs = require_batch(inputs)
        labels = torch.stack([sample["cls_label"] for sample in data_samples]).to(inputs.device)
        # fp32 loss also under --amp: log-sigmoid of fp16 logits loses precision.
        return {"loss_cls": F.multilabel_soft_margin_loss(self.logits(inputs).float(), labels.float())}

    def embedding(self, inputs: torch.Tensor) -> torch.Tensor:
        """Pooled last-stage features ``(B, D)``: what KID and precision/recall compare (wsss.synth.quality)."""
        return self.backbone(inputs)[1].mean(dim=(2, 3))

    def predict(
        self, inputs: torch.Tensor | list[torch.Tensor], data_samples: list[dict[str, Any]]
    ) -> list[dict]:
        """The samples with ``cls_score``, the sigmoid of the logits (a list of images may differ in size)."""
        if isinstance(inputs, torch.Tensor):
            scores = torch.sigmoid(self.logits(inputs))
        else:
            scores = [torch.sigmoid(self.logits(image[None]))[0] for image in inputs]
        return [{**sample, "cls_score": score} for sample, score in zip(data_samples, scores)]

    def tensor(self, inputs: torch.Tensor) -> torch.Tensor:
        """The logits."""
        return self.logits(inputs)
