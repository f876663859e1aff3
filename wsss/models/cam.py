"""CAM: the plain multi-label classifier whose class activation maps seed most WSSS pipelines.

A 1x1 convolution without bias maps the last backbone feature to one map per foreground class;
global average pooling of those maps gives the logits. Because pooling and the convolution are
both linear, the maps are exactly the classic CAMs (classifier weights times features).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from wsss.models.backbones import StagedBackbone
from wsss.registry import MODELS


@MODELS.register_module()
class CAM(BaseModel):
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
        if data_preprocessor is None:
            data_preprocessor = dict(type="SegDataPreprocessor")
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
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

    def forward(
        self,
        inputs: torch.Tensor | list[torch.Tensor],
        data_samples: list[dict[str, Any]] | None = None,
        mode: str = "tensor",
    ) -> dict[str, torch.Tensor] | list[dict[str, Any]] | torch.Tensor:
        if mode == "loss":
            if not isinstance(inputs, torch.Tensor):
                raise ValueError(
                    "training needs equal-size images; add a crop (PadCrop) to the train pipeline"
                )
            labels = torch.stack([sample["cls_label"] for sample in data_samples]).to(inputs.device)
            # fp32 loss also under mixed precision (--amp): log-sigmoid of fp16 logits loses precision.
            return {"loss_cls": F.multilabel_soft_margin_loss(self.logits(inputs).float(), labels.float())}
        if mode == "predict":
            if isinstance(inputs, torch.Tensor):
                scores = torch.sigmoid(self.logits(inputs))
            else:  # images of different sizes arrive as a list
                scores = [torch.sigmoid(self.logits(image[None]))[0] for image in inputs]
            return [{**sample, "cls_score": score} for sample, score in zip(data_samples, scores)]
        if mode == "tensor":
            return self.logits(inputs)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
