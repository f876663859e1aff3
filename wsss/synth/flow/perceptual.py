"""A perceptual distance in the features of the toolkit's own classifier, for one-step distillation.

InstaFlow distils with L2 and then LPIPS (VGG features). No pretrained VGG is at hand here, so the
distance is LPIPS's recipe on the frozen CAM/BAS classifier of the real data: the images go to the
classifier's input space (0-255, resized to the side it was validated at, its own normalisation),
the feature vectors of its two backbone stages are scaled to unit length along channels, and the
squared difference is summed over channels, averaged over positions, and over the two stages. There
are no learned channel weights (LPIPS learns them from human judgements, which we have not).

The classifier is loaded when the distance is first computed, so that a model trained with it loads
and samples without it; it is kept out of the flow model's state dict.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsss.engine.config import load_config
from wsss.engine.inference import model_from_checkpoint


def unit_features(features: Tensor, eps: float = 1e-10) -> Tensor:
    """``(B, C, H, W)`` features scaled to unit length along channels."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def feature_distance(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    """Per image ``(B,)``: mean over stages of the position-averaged squared distance of unit features."""
    per_stage = [
        (unit_features(x) - unit_features(y)).pow(2).sum(dim=1).mean(dim=(1, 2)) for x, y in zip(a, b)
    ]
    return torch.stack(per_stage).mean(dim=0)


class ClassifierPerceptualDistance:
    """``distance(x, y)``: the perceptual distance of flow-space images (``(B, 3, H, W)`` in [-1, 1]).

    ``config``/``checkpoint``: a CAM or BAS classifier of the real data (a .pth or its work dir);
    ``num_classes`` counts background; ``size``: the side it was validated at (96 for the shapes configs);
    ``cfg_options``: overrides of its config, as ``--cfg-options`` gives them.
    """

    def __init__(self, config: str | os.PathLike, checkpoint: str | os.PathLike, num_classes: int, size: int,
                 cfg_options: dict | None = None):  # fmt: skip
        self.config, self.checkpoint, self.num_classes, self.size = config, checkpoint, num_classes, size
        self.cfg_options = cfg_options
        self._classifier: nn.Module | None = None

    def classifier(self, device: torch.device) -> nn.Module:
        """The frozen classifier on ``device`` (loaded on first use)."""
        if self._classifier is None:
            cfg = load_config(self.config, cfg_options=self.cfg_options)
            model = model_from_checkpoint(
                cfg, self.checkpoint, device, needs="embedding", num_classes=self.num_classes
            )
            self._classifier = model.eval().requires_grad_(False)
        return self._classifier.to(device)

    def features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The classifier's two backbone stages of flow-space ``images``."""
        classifier = self.classifier(images.device)
        pixels = (images.float() + 1.0) * 127.5
        if pixels.shape[-1] != self.size or pixels.shape[-2] != self.size:
            pixels = F.interpolate(pixels, size=(self.size, self.size), mode="bilinear", align_corners=False)
        preprocessor = classifier.data_preprocessor
        return classifier.backbone((pixels - preprocessor.mean) / preprocessor.std)

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            target = self.features(y)
        return feature_distance(self.features(x), target)
