"""Joint image / label / score-map augmentation built on albumentations.

Configs list albumentations transforms by class name (``dict(type='HorizontalFlip', p=0.5)``),
plus the few WSSS-specific ones registered here. Labels are resized with nearest neighbour and
padded with 255 (ignore); score maps travel as extra masks, so they follow every geometric step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch

from wsss.data.label_io import IGNORE_INDEX
from wsss.registry import TRANSFORMS


def RandomScale(scale_range: Sequence[float] = (0.5, 2.0), p: float = 1.0) -> A.BasicTransform:  # noqa: N802
    """Rescale by a factor drawn uniformly from ``scale_range`` (the usual 0.5-2.0 of DeepLab recipes)."""
    low, high = scale_range
    return A.RandomScale(scale_limit=(low - 1.0, high - 1.0), interpolation=cv2.INTER_LINEAR, p=p)


def PadCrop(size: int | Sequence[int], image_fill: float = 0, label_fill: int = IGNORE_INDEX) -> A.BasicTransform:  # noqa: N802
    """Pad to at least ``size`` (image with ``image_fill``, labels with 255 ignore) and random-crop ``size``."""
    height, width = (size, size) if isinstance(size, int) else size
    return A.Compose(
        [
            A.PadIfNeeded(
                min_height=height,
                min_width=width,
                border_mode=cv2.BORDER_CONSTANT,
                fill=image_fill,
                fill_mask=label_fill,
                position="top_left",
            ),
            A.RandomCrop(height=height, width=width),
        ]
    )


def ResizeShorter(size: int) -> A.BasicTransform:  # noqa: N802
    """Resize so the shorter side equals ``size`` (keeps the aspect ratio)."""
    return A.SmallestMaxSize(max_size=size, interpolation=cv2.INTER_LINEAR)


_CUSTOM = {"RandomScale": RandomScale, "PadCrop": PadCrop, "ResizeShorter": ResizeShorter}


def build_transform(cfg: dict) -> A.BasicTransform:
    """Build one transform from ``dict(type=NAME, **kwargs)``: our helpers first, then albumentations."""
    cfg = dict(cfg)
    name = cfg.pop("type")
    if name in _CUSTOM:
        return _CUSTOM[name](**cfg)
    cls = getattr(A, name, None)
    if cls is None:
        raise KeyError(f"unknown transform {name!r}: not a wsss transform ({sorted(_CUSTOM)}) nor in albumentations")
    if name == "Compose":
        cfg["transforms"] = [build_transform(t) for t in cfg["transforms"]]
    return cls(**cfg)


@TRANSFORMS.register_module()
class AlbuPipeline:
    """A sequence of transforms applied jointly to ``image``, ``mask`` (labels) and ``maps`` (score maps).

    ``maps`` is a float array ``(K, H, W)`` with values in [0, 1]; it is moved with nearest-neighbour
    interpolation like the label, so values stay those of the source pixels, and padded pixels
    (filled with the label's 255) come back as 0.
    """

    def __init__(self, transforms: Sequence[dict]):
        self.compose = A.Compose([build_transform(t) for t in transforms])
        self._seeded_pid: int | None = None

    def _seed_once_per_process(self) -> None:
        """Seed albumentations' own generators from torch's seed, once in each (worker) process.

        albumentations keeps generators of its own that no global seed reaches; torch's initial seed
        is the run seed in the main process and base seed + worker id in DataLoader workers, so
        augmentation is reproducible and differs between workers.
        """
        if self._seeded_pid != os.getpid():
            self.compose.set_random_seed(torch.initial_seed() % 2**32)
            self._seeded_pid = os.getpid()

    def __call__(
        self, image: np.ndarray, mask: np.ndarray | None = None, maps: np.ndarray | None = None
    ) -> dict[str, Any]:
        self._seed_once_per_process()
        data: dict[str, Any] = {"image": image}
        if mask is not None:
            data["mask"] = mask
        if maps is not None:
            data["masks"] = list(maps)
        out = self.compose(**data)
        result = {"image": out["image"], "mask": out.get("mask")}
        if maps is not None:
            moved = np.stack(out["masks"]) if len(out["masks"]) else np.zeros((0, *out["image"].shape[:2]), maps.dtype)
            result["maps"] = np.where(moved > 1, 0, moved).astype(maps.dtype, copy=False)
        else:
            result["maps"] = None
        return result
