"""STEGO (Hamilton et al., ICLR 2022): a segmentation head trained on a frozen backbone's feature
correspondences, the unsupervised model whose features MARS uses.

Head: a 1x1 linear branch plus a 1x1-ReLU-1x1 branch, summed, ``dim`` channels (70 in MARS); the
backbone's features go through Dropout2d (0.1) while training. Loss, for two images' maps: sample
an ``points x points`` grid of random positions in each, ``F`` = cosine correlation of the backbone
features at every pair of positions (no gradient) centred over the second image's positions (the
mean over all pairs is kept), ``S`` = cosine correlation of the codes; ``L = mean(-clamp(S, 0) * (F - b))``.
The pairs are an image with itself, with one of its nearest neighbours (``data_samples[i]['pair_inputs']``
from :class:`~wsss.features.knn.NeighbourPairs`; the image itself when absent) and with another
image of the batch (a roll by one); the total weighs them with ``weights`` and shifts them by
``shifts``, each ``(self, knn, random)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsss.features.base import FeatureModel
from wsss.nn.base import require_batch
from wsss.registry import MODELS

PAIRS = ("self", "knn", "random")


class STEGOHead(nn.Module):
    """STEGO's head: ``linear(x) + mlp(x)``, both 1x1, ``dim`` output channels."""

    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.linear = nn.Conv2d(in_channels, dim, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 1), nn.ReLU(), nn.Conv2d(in_channels, dim, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x) + self.mlp(x)


def sample_points(features: Tensor, coords: Tensor) -> Tensor:
    """``(B, C, P, P)`` features at ``coords`` ``(B, P, P, 2)`` in [-1, 1] (x, y), bilinear."""
    return F.grid_sample(features, coords, mode="bilinear", align_corners=True)


def correlation(a: Tensor, b: Tensor) -> Tensor:
    """``(B, P, P, P, P)`` cosine similarity of every position of ``a`` with every position of ``b``."""
    return torch.einsum("bchw,bcij->bhwij", F.normalize(a, dim=1), F.normalize(b, dim=1))


def correspondence_loss(
    feats_a: Tensor, feats_b: Tensor, codes_a: Tensor, codes_b: Tensor, shift: float
) -> Tensor:
    """STEGO's loss between two images' sampled backbone features and codes (see the module docstring)."""
    with torch.no_grad():
        fd = correlation(feats_a, feats_b)
        fd = fd - fd.mean(dim=(3, 4), keepdim=True) + fd.mean()
    cd = correlation(codes_a, codes_b)
    return (-cd.clamp(min=0) * (fd - shift)).mean()


@MODELS.register_module()
class STEGO(FeatureModel):
    """A frozen feature backbone (a config of another feature model, e.g. ``DinoViT``) + STEGO's head."""

    needs_checkpoint = True

    def __init__(
        self,
        backbone: dict,
        dim: int = 70,
        points: int = 11,
        dropout: float = 0.1,
        weights: Sequence[float] = (0.67, 0.25, 0.63),
        shifts: Sequence[float] = (0.08, 0.02, 0.66),
        data_preprocessor: dict | nn.Module | None = None,
        init_cfg: dict | None = None,
    ):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if not isinstance(self.backbone, FeatureModel):
            raise ValueError(f"STEGO's backbone must be a feature model, got {type(self.backbone).__name__}")
        self.backbone.requires_grad_(False)
        self.head = STEGOHead(self.backbone.feature_dim, dim)
        self.dropout = nn.Dropout2d(dropout)
        self.points = points
        self.weights, self.shifts = tuple(weights), tuple(shifts)
        self.stride, self.feature_dim = self.backbone.stride, dim

    def features(self, inputs: Tensor) -> Tensor:
        with torch.no_grad():
            backbone = self.backbone.features(inputs)
        return self.head(backbone)

    def loss(self, inputs: Tensor, data_samples: Sequence[dict]) -> dict[str, Tensor]:
        inputs = require_batch(inputs)
        pairs = [sample.get("pair_inputs") for sample in data_samples]
        partners = (
            self.data_preprocessor.normalize(torch.stack(pairs))
            if all(p is not None for p in pairs)
            else inputs
        )
        with torch.no_grad():
            backbone = self.backbone.features(torch.cat([inputs, partners]))
        codes = self.head(self.dropout(backbone))
        feats, feats_knn = backbone.chunk(2)
        codes, codes_knn = codes.chunk(2)
        batch = len(inputs)
        coords = [
            torch.rand(batch, self.points, self.points, 2, device=inputs.device) * 2 - 1 for _ in range(2)
        ]
        f, c = sample_points(feats, coords[0]), sample_points(codes, coords[0])
        f_knn, c_knn = sample_points(feats_knn, coords[1]), sample_points(codes_knn, coords[1])
        others = {
            "self": (f, c),
            "knn": (f_knn, c_knn),
            "random": (f.roll(1, dims=0), c.roll(1, dims=0)),
        }
        return {
            f"loss_{name}": weight * correspondence_loss(f, others[name][0], c, others[name][1], shift)
            for name, weight, shift in zip(PAIRS, self.weights, self.shifts)
        }
