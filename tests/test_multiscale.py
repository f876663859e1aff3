"""Multi-scale + flip class maps against a hand-made localizer whose maps are known."""

from __future__ import annotations

import torch

from wsss.localize.multiscale import fuse_maps, multiscale_class_maps, normalize_maps


def left_bright_maps(batch: torch.Tensor) -> torch.Tensor:
    """A fake localizer: class 1 follows channel 0 of the image, class 2 is 2x channel 1."""
    return torch.stack([batch[:, 0].clamp_min(0), 2 * batch[:, 1].clamp_min(0)], dim=1)


def test_multiscale_sums_scales_and_flips_at_image_size():
    image = torch.zeros(3, 8, 12)
    image[0, :, :4] = 1.0  # left band in channel 0
    image[1] = 0.5
    maps = multiscale_class_maps(left_bright_maps, image, keys=[2, 1], scales=(1.0,), flip=True)
    assert maps.shape == (2, 8, 12)
    # The flipped input's map, flipped back, equals the map itself: flip doubles a single scale.
    assert torch.allclose(maps[0], torch.full((8, 12), 2.0))  # key 2: 2 * 0.5, twice
    assert torch.allclose(maps[1, :, :4], torch.full((8, 4), 2.0)) and torch.all(maps[1, :, 5:] == 0)
    two_scales = multiscale_class_maps(left_bright_maps, image, keys=[2], scales=(1.0, 2.0), flip=False)
    assert torch.allclose(two_scales, torch.full((1, 8, 12), 2.0))


def test_normalize_and_fuse():
    maps = torch.tensor([[[0.0, 2.0], [1.0, 4.0]], [[0.5, 0.0], [0.0, 0.0]]])
    norm = normalize_maps(maps, eps=0.0)
    assert torch.allclose(norm[0], torch.tensor([[0.0, 0.5], [0.25, 1.0]])) and norm[1].max() == 1.0
    fused = fuse_maps(maps, maps.flip(-1))
    assert torch.allclose(fused.flatten(1).amax(1), torch.ones(2), atol=1e-4)
    assert multiscale_class_maps(left_bright_maps, torch.zeros(3, 4, 4), keys=[]).shape == (0, 4, 4)
