"""Moves a batch to the model's device and normalises it there (uint8 -> float on the GPU is cheaper)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from mmengine.model import BaseDataPreprocessor
from torch import nn

from wsss.registry import MODELS

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@MODELS.register_module()
class SegDataPreprocessor(BaseDataPreprocessor):
    """Normalise ``inputs`` (uint8, 0-255 RGB) with ``mean``/``std`` and move tensors in samples to the device.

    ``inputs`` may be a stacked tensor ``(B, 3, H, W)`` or, for images of different sizes (testing),
    a list of ``(3, H, W)`` tensors, which stays a list.
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), persistent=False)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """Float, normalised copy of a uint8 image tensor on the preprocessor's device."""
        image = image.to(self.mean.device, non_blocking=True).float()
        return (image - self.mean) / self.std

    def forward(self, data: dict, training: bool = False) -> dict[str, Any]:
        inputs = data["inputs"]
        if isinstance(inputs, torch.Tensor):
            inputs = self.normalize(inputs)
        else:
            inputs = [self.normalize(x) for x in inputs]
        samples = [
            {
                k: v.to(self.mean.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                for k, v in s.items()
            }
            for s in data["data_samples"]
        ]
        return {"inputs": inputs, "data_samples": samples}


def normalized_image(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """A uint8 ``(3, H, W)`` image normalised by the model's own data preprocessor, on its device."""
    return model.data_preprocessor({"inputs": image[None], "data_samples": []})["inputs"][0]
