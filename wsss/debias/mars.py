"""MARS (Model-Agnostic biased object Removal without additional Supervision, ICCV 2023): the equations.

Given base pseudo labels ``Y`` and unsupervised dense features ``F`` of every image:

1. per image and class present in ``Y`` (background included), k-means on the features of that
   class's feature cells: ``k_fg`` centroids per foreground class, ``k_bg`` for background;
2. Eq. 1: each foreground centroid ``v`` scores the MEAN distance to all background centroids ``b``
   of the dataset, ``D(v, b) = (1 - cos(v, b)) / 2``;
3. Eqs. 2-3: per class, the ``ceil(alpha * N_c)`` centroids farthest from background (alpha 0.4) are
   averaged into the debiased class centroid ``V^c`` (far from every background: the target object;
   close to background: a biased object such as rails or water);
4. Eq. 4: the debiased mask ``M = ReLU(max over the image's classes c of cos(F, V^c))``, refined and
   binarised;
5. Eq. 5: foreground pixels of ``Y`` outside the mask become *biased* (value 254 here, the paper's -1);
   background and ignore pixels never change, and no pixel moves to another class.

The choices the paper leaves open, as :class:`MARSSettings` fields with our defaults and why:

* cells: a class's feature vectors are the feature cells whose majority label (ignoring 255 and 254)
  is that class (the authors' later code, DHR, does the same); features stay at their own resolution;
* features are L2-normalised before k-means, so Euclidean k-means on the unit sphere ranks points as
  cosine similarity does, the geometry every later step uses; k-means++ initialisation from a seeded
  generator, at most ``iterations`` Lloyd steps;
* a region with fewer cells than ``k`` gets one centroid per distinct cell; an image without
  background contributes no background centroid;
* the mask's score is computed on the feature grid and resized (bilinear) to the image;
* centring (``center``, off by default as in the paper): subtract the dataset's mean feature
  before every cosine. Features of ReLU networks (the from-scratch backend's) share one large
  positive component that brings every cosine near 1, so rails score as high as the train; centred,
  the cosines measure what differs between regions. The mean comes from a streamed pass of its own;
* binarising: ``"crf"`` (default) refines ``[background, M]`` with the dense CRF of STEGO/DHR
  (10 iterations, Gaussian sxy 1 compat 3, bilateral sxy 67 srgb 3 compat 4) and takes the argmax,
  with the background channel ``(1 - M)^2`` (RS+EPM's choice) or a constant; ``"threshold"``
  keeps ``M > threshold`` without a CRF (no image needed, much faster).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from wsss.data.label_io import BIASED_INDEX, IGNORE_INDEX
from wsss.kmeans import batched_kmeans
from wsss.pseudo.crf import ProbCRFSettings, crf_on_probs

#: The dense CRF STEGO, RS+EPM and DHR refine unsupervised masks with.
MASK_CRF = ProbCRFSettings(
    gaussian_sxy=1.0,
    gaussian_compat=3.0,
    bilateral_sxy=67.0,
    bilateral_srgb=3.0,
    bilateral_compat=4.0,
    iterations=10,
)
BINARIZE_MODES = ("crf", "threshold")


@dataclass(frozen=True)
class MARSSettings:
    """Every setting of MARS's debiasing; see the module docstring for the defaults' reasons."""

    k_fg: int = 2
    k_bg: int = 2
    alpha: float = 0.4
    iterations: int = 20
    seed: int = 0
    binarize: str = "crf"
    threshold: float = 0.5
    background: float | str = "squared"
    center: bool = False
    crf: ProbCRFSettings = field(default_factory=lambda: MASK_CRF)

    def __post_init__(self) -> None:
        if self.k_fg < 1 or self.k_bg < 1:
            raise ValueError(f"k_fg and k_bg must be at least 1, got {self.k_fg} and {self.k_bg}")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in (0, 1], got {self.alpha}")
        if self.binarize not in BINARIZE_MODES:
            raise ValueError(f"binarize must be one of {BINARIZE_MODES}, got {self.binarize!r}")
        if self.background != "squared" and not (
            isinstance(self.background, (int, float)) and 0.0 < self.background < 1.0
        ):
            raise ValueError(f"background must be 'squared' or a constant in (0, 1), got {self.background!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalize_features(features: np.ndarray) -> np.ndarray:
    """``(D, h, w)`` features with every cell's vector scaled to unit length (zero vectors stay zero)."""
    norm = np.linalg.norm(features, axis=0, keepdims=True)
    return features / np.maximum(norm, 1e-12)


@dataclass
class ImageCentroids:
    """The centroids of one image: ``classes[i]`` is the class of ``centroids[i]`` (0 = background)."""

    classes: np.ndarray
    centroids: np.ndarray
    cells: np.ndarray  # how many feature cells the centroid's cluster holds


def _regions(features: np.ndarray, cells: np.ndarray, background: bool) -> list[tuple[int, np.ndarray]]:
    """``(class, (n, D) unit vectors)`` of the background region or of every foreground class region."""
    flat = normalize_features(features).reshape(features.shape[0], -1).T
    labels = cells.reshape(-1)
    classes = [0] if background else [int(c) for c in np.unique(labels) if c > 0]
    return [(c, flat[labels == c]) for c in classes if (labels == c).any()]


def cluster_images(
    samples: list[tuple[np.ndarray, np.ndarray]], settings: MARSSettings, generator: torch.Generator
) -> list[ImageCentroids]:
    """Step 1 for a batch of images: ``samples`` are ``(features (D, h, w), cell labels (h, w))``.

    Background and foreground regions of the whole batch are clustered in two batched k-means runs;
    the result does not depend on which images share the batch except through the generator's draws.
    """
    per_image: list[list[tuple[int, np.ndarray, int]]] = [[] for _ in samples]
    for background, k in ((True, settings.k_bg), (False, settings.k_fg)):
        owners, regions = [], []
        for index, (features, cells) in enumerate(samples):
            for cls, points in _regions(features, cells, background):
                owners.append((index, cls))
                regions.append(points)
        if not regions:
            continue
        size = max(len(points) for points in regions)
        dim = regions[0].shape[1]
        batch = torch.zeros(len(regions), size, dim)
        valid = torch.zeros(len(regions), size, dtype=torch.bool)
        for row, points in enumerate(regions):
            batch[row, : len(points)] = torch.from_numpy(points)
            valid[row, : len(points)] = True
        centroids, active = batched_kmeans(batch, valid, k, settings.iterations, generator)
        assigned = torch.cdist(batch, centroids).masked_fill(~active[:, None, :], float("inf")).argmin(-1)
        for row, (index, cls) in enumerate(owners):
            for j in torch.nonzero(active[row]).flatten().tolist():
                members = int(((assigned[row] == j) & valid[row]).sum())
                per_image[index].append((cls, centroids[row, j].numpy(), members))
    results = []
    for entries in per_image:
        dim = samples[0][0].shape[0]
        results.append(
            ImageCentroids(
                classes=np.asarray([c for c, _, _ in entries], dtype=np.int64),
                centroids=np.asarray([v for _, v, _ in entries], dtype=np.float32).reshape(-1, dim),
                cells=np.asarray([n for _, _, n in entries], dtype=np.int64),
            )
        )
    return results


def background_distance(foreground: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Eq. 1: each foreground centroid's mean of ``(1 - cos) / 2`` over all background centroids.

    The mean of cosines to unit vectors is the cosine-like product with their mean, so this costs
    ``O((M + B) D)``, not ``O(M B D)``.
    """
    if len(background) == 0:
        raise ValueError(
            "no background centroid in the whole dataset: MARS needs background in the base labels"
        )
    unit_fg = foreground / np.maximum(np.linalg.norm(foreground, axis=1, keepdims=True), 1e-12)
    unit_bg = background / np.maximum(np.linalg.norm(background, axis=1, keepdims=True), 1e-12)
    return (1.0 - unit_fg @ unit_bg.mean(axis=0)) / 2.0


def debiased_centroids(
    foreground: np.ndarray, classes: np.ndarray, scores: np.ndarray, alpha: float, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Eqs. 2-3: per class, the mean of its ``ceil(alpha * N_c)`` highest-scoring centroids.

    Returns ``V`` ``(num_classes, D)`` (row 0 and classes without centroids are NaN) and the boolean
    mask of the selected centroids.
    """
    selected = np.zeros(len(foreground), dtype=bool)
    debiased = np.full((num_classes, foreground.shape[1]), np.nan, dtype=np.float32)
    for cls in np.unique(classes):
        members = np.flatnonzero(classes == cls)
        count = math.ceil(alpha * len(members))
        top = members[np.argsort(-scores[members], kind="stable")[:count]]
        selected[top] = True
        debiased[cls] = foreground[top].mean(axis=0)
    return debiased, selected


def debiased_score(features: np.ndarray, debiased: np.ndarray, classes: list[int]) -> np.ndarray:
    """Eq. 4 before refinement, on the feature grid: ``ReLU(max over classes of cos(F, V^c))``, ``(h, w)``."""
    known = [c for c in classes if not np.isnan(debiased[c]).any()]
    if not known:
        return np.zeros(features.shape[1:], dtype=np.float32)
    unit = normalize_features(features)
    centroids = debiased[known] / np.maximum(np.linalg.norm(debiased[known], axis=1, keepdims=True), 1e-12)
    cosine = np.einsum("kd,dhw->khw", centroids, unit)
    return np.maximum(cosine.max(axis=0), 0.0).astype(np.float32)


def resize_score(score: np.ndarray, size: tuple[int, int], stride: int) -> np.ndarray:
    """A grid score at ``stride`` resized bilinearly to the image ``size`` (the padded part dropped)."""
    h, w = score.shape
    height, width = size
    grid = torch.from_numpy(np.ascontiguousarray(score))[None, None]
    full = F.interpolate(grid, size=(h * stride, w * stride), mode="bilinear", align_corners=False)
    return full[0, 0, :height, :width].numpy()


def binarize(score: np.ndarray, settings: MARSSettings, image: np.ndarray | None = None) -> np.ndarray:
    """The debiased mask (bool, image size) from its score: CRF over ``[background, M]`` or a threshold."""
    if settings.binarize == "threshold":
        return score > settings.threshold
    if image is None:
        raise ValueError("binarize='crf' needs the image; give the images folder or use binarize='threshold'")
    background = (
        (1.0 - score) ** 2 if settings.background == "squared" else np.full_like(score, settings.background)
    )
    probs = np.stack([background, score]).astype(np.float32) + 1e-6
    probs /= probs.sum(axis=0, keepdims=True)
    return crf_on_probs(image, probs, settings.crf).argmax(axis=0).astype(bool)


def debias_label(base: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Eq. 5: foreground pixels of ``base`` outside ``mask`` become 254; all others keep their value."""
    foreground = (base > 0) & (base != IGNORE_INDEX)
    return np.where(foreground & ~mask, BIASED_INDEX, base).astype(np.uint8)
