"""Multi-scale + flip class maps of a localizer, as BAS and the IRN family compute seeds."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

DEFAULT_SCALES = (1.0, 0.5, 1.5, 2.0)


@torch.no_grad()
def multiscale_class_maps(
    class_maps_fn,
    image: torch.Tensor,
    keys: Sequence[int],
    scales: Sequence[float] = DEFAULT_SCALES,
    flip: bool = True,
) -> torch.Tensor:
    """Summed maps of the classes ``keys`` (1-based) over scales and flips, at the image's size.

    ``class_maps_fn`` maps a normalised batch ``(B, 3, h, w)`` to non-negative maps ``(B, C-1, h', w')``;
    ``image`` is one normalised image ``(3, H, W)``. Each scale's map and the flipped-back map of the
    flipped input are resized to ``(H, W)`` and summed. The result is not normalised.
    """
    height, width = image.shape[-2:]
    index = torch.as_tensor([k - 1 for k in keys], dtype=torch.long, device=image.device)
    total = image.new_zeros((len(keys), height, width))
    if len(keys) == 0:
        return total
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)
        batch = torch.cat([scaled, scaled.flip(-1)]) if flip else scaled
        maps = class_maps_fn(batch)[:, index].float()
        if flip:
            maps = maps[0:1] + maps[1:2].flip(-1)
        total += F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)[0]
    return total


def normalize_maps(maps: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Divide each map ``(K, H, W)`` by its maximum (maps are non-negative), so each peaks at ~1."""
    peak = maps.flatten(1).amax(dim=1).clamp_min(0).view(-1, 1, 1)
    return maps.clamp_min(0) / (peak + eps)


def fuse_maps(bas_maps: torch.Tensor, cam_maps: torch.Tensor) -> torch.Tensor:
    """The authors' CAM + BAS fusion: normalise(normalise(CAM) + normalise(BAS))."""
    return normalize_maps(normalize_maps(cam_maps) + normalize_maps(bas_maps))
