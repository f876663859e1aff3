"""Batched k-means over many small point sets at once (the regions of many images), deterministic for a seed.

Every region is a padded row of points with a validity mask. A region with fewer distinct points
than ``k`` gets as many centroids as it has points (the others are marked inactive), so a class
covering one feature cell yields one centroid, not ``k`` copies of it. Initialisation is k-means++
drawn from a seeded ``torch.Generator``; Lloyd iterations then stop after ``iterations`` or when no
assignment changes. An empty cluster keeps its previous centroid.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _squared_distances(points: Tensor, centroids: Tensor) -> Tensor:
    """``(R, N, K)`` squared Euclidean distances between every point and every centroid of its region."""
    return (
        points.pow(2).sum(-1, keepdim=True)
        - 2 * points @ centroids.transpose(1, 2)
        + centroids.pow(2).sum(-1).unsqueeze(1)
    ).clamp_min(0)


def _initial_centroids(
    points: Tensor, valid: Tensor, k: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """k-means++: the first centroid uniformly among a region's points, each next one with probability
    proportional to the squared distance to the nearest chosen one. Returns centroids and the active mask
    (a region runs out of candidates when every remaining point coincides with a chosen centroid)."""
    regions, count, dim = points.shape
    rows = torch.arange(regions, device=points.device)
    centroids = points.new_zeros(regions, k, dim)
    active = torch.zeros(regions, k, dtype=torch.bool, device=points.device)
    weights = valid.float()
    nearest = torch.full((regions, count), float("inf"), device=points.device)
    for j in range(k):
        has = weights.sum(1) > 0
        if not has.any():
            break
        safe = torch.where(has[:, None], weights, torch.ones_like(weights))
        choice = torch.multinomial(safe.cpu(), 1, generator=generator).squeeze(1).to(points.device)
        centroids[:, j] = points[rows, choice]
        active[:, j] = has
        distance = (points - centroids[:, j : j + 1]).pow(2).sum(-1)
        nearest = torch.minimum(nearest, distance)
        weights = torch.where(valid, nearest, torch.zeros_like(nearest))
    return centroids, active


def batched_kmeans(
    points: Tensor, valid: Tensor, k: int, iterations: int = 20, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Cluster each region's valid points into up to ``k`` clusters.

    Args:
        points: ``(R, N, D)`` points, padded; ``valid``: ``(R, N)`` which are real.
        k: clusters per region; iterations: Lloyd steps at most.
        generator: CPU generator for the k-means++ draws (seed it for reproducible centroids).

    Returns ``(centroids (R, k, D), active (R, k))``: inactive centroids (regions with fewer distinct
    points than ``k``, or none) are zeros and must be ignored.
    """
    if points.dim() != 3 or valid.shape != points.shape[:2]:
        raise ValueError(
            f"points must be (R, N, D) with valid (R, N), got {tuple(points.shape)} and {tuple(valid.shape)}"
        )
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    centroids, active = _initial_centroids(points, valid, k, generator)
    labels = None
    for _ in range(iterations):
        distances = _squared_distances(points, centroids).masked_fill(~active[:, None, :], float("inf"))
        new_labels = distances.argmin(-1)
        if labels is not None and torch.equal(new_labels[valid], labels[valid]):
            break
        labels = new_labels
        one_hot = torch.nn.functional.one_hot(labels, k).to(points.dtype) * valid[..., None].to(points.dtype)
        counts = one_hot.sum(1)  # (R, k)
        sums = one_hot.transpose(1, 2) @ points  # (R, k, D)
        filled = counts > 0
        centroids = torch.where(filled[..., None], sums / counts.clamp_min(1)[..., None], centroids)
    return centroids * active[..., None], active
