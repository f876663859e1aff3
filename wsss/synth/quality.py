"""How good generated images are, judged by the project's own classifier (METHODS.md section 3).

A CAM or BAS classifier trained on the real images stands in for the Inception network of image
generation papers: it knows the dataset's classes and sees images at the size it was trained at.

* **Label fidelity**: the classifier's sigmoid scores on images generated for known classes against
  those classes: mAP (average precision per class, as the classifier's own validation), and the
  exact-match rate (every class scored at least ``threshold`` and no other class).
* **KID** (kernel inception distance, Binkowski et al. 2018): the unbiased squared MMD with the
  cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3`` between the classifier's pooled features of
  real and generated images, averaged over random subsets (mean and standard deviation); 0 for
  identical distributions, and it may be slightly negative.
* **Precision and recall** (Kynkaanniemi et al. 2019): the share of generated images inside the real
  images' k-nearest-neighbour manifold (a ball around each real image reaching its k-th nearest real
  neighbour), and the share of real images inside the generated images' manifold.

KID is written here rather than taken from torchmetrics, whose metric runs an Inception network on
the images; the tests check this one against torchmetrics' formula on the same features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from wsss.evaluation.classification import average_precision
from wsss.synth.generator import TextToImageGenerator

Pipeline = Callable[..., dict]


@torch.no_grad()
def classify_images(model: torch.nn.Module, images: Sequence[np.ndarray], pipeline: Pipeline | None = None,
                    batch_size: int = 32, embed: bool = False) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Sigmoid class scores ``(N, C-1)`` of uint8 RGB images and, with ``embed``, pooled features ``(N, D)``.

    ``pipeline`` is the classifier config's test pipeline (the resize to its validation size); the
    images of one batch must come out of it the same size. ``embed`` needs a model with ``embedding``.
    """
    device = next(model.parameters()).device
    scores, features = [], []
    for start in range(0, len(images), batch_size):
        batch = []
        for image in images[start : start + batch_size]:
            if pipeline is not None:
                image = pipeline(image, None)["image"]
            batch.append(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
        inputs = model.data_preprocessor({"inputs": torch.stack(batch).to(device), "data_samples": []})[
            "inputs"
        ]
        scores.append(torch.sigmoid(model.logits(inputs).float()).cpu().numpy())
        if embed:
            features.append(model.embedding(inputs).float().cpu().numpy())
    if not scores:
        raise ValueError("no images to classify")
    return np.concatenate(scores), np.concatenate(features) if embed else None


def label_fidelity(
    scores: np.ndarray, prompted: np.ndarray, threshold: float = 0.5
) -> dict[str, float | None]:
    """``mAP`` (%, over classes prompted at least once) and ``exact_match`` (%) of ``(N, C-1)`` scores.

    ``prompted`` is the ``(N, C-1)`` 0/1 table of the classes each image was asked for.
    """
    if scores.shape != prompted.shape:
        raise ValueError(f"scores {scores.shape} and prompted classes {prompted.shape} differ in shape")
    ap = average_precision(torch.from_numpy(scores), torch.from_numpy(prompted.astype(np.float64))).numpy()
    named = ap[~np.isnan(ap)]
    exact = ((scores >= threshold) == (prompted > 0.5)).all(axis=1)
    return {
        "mAP": 100.0 * float(named.mean()) if len(named) else None,
        "exact_match": 100.0 * float(exact.mean()),
        "threshold": threshold,
    }


def _cubic_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def kernel_distance(real: np.ndarray, fake: np.ndarray, subset_size: int = 1000, subsets: int = 100,
                    seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """KID between ``(N, D)`` real and ``(M, D)`` generated features: mean and std over random subsets.

    Each subset draws ``min(subset_size, N, M)`` rows of each side without replacement; the unbiased
    MMD^2 leaves out the kernel's diagonal within a side. At least 2 rows per side are needed.
    """
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError(f"KID needs at least 2 real and 2 generated images, got {len(real)} and {len(fake)}")
    x_all, y_all = torch.from_numpy(real).double(), torch.from_numpy(fake).double()
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = x_all[rng.choice(len(x_all), size, replace=False)]
        y = y_all[rng.choice(len(y_all), size, replace=False)]
        k_xx, k_yy, k_xy = _cubic_kernel(x, x), _cubic_kernel(y, y), _cubic_kernel(x, y)
        within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (
            size * (size - 1)
        )
        values.append(float(within - 2.0 * k_xy.mean()))
    return float(np.mean(values)), float(np.std(values))


def _radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each point to its k-th nearest other point."""
    distances = torch.cdist(points, points)
    return distances.kthvalue(k + 1, dim=1).values  # the 1st smallest is the point itself (0)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (%) of ``(M, D)`` generated against ``(N, D)`` real features."""
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} images per side, "
                         f"got {len(real)} real and {len(fake)} generated")  # fmt: skip
    x, y = torch.from_numpy(real).double(), torch.from_numpy(fake).double()
    cross = torch.cdist(y, x)  # (M, N)
    precision = (cross <= _radii(x, k)[None, :]).any(dim=1).double().mean()
    recall = (cross.T <= _radii(y, k)[None, :]).any(dim=1).double().mean()
    return {"precision": 100.0 * float(precision), "recall": 100.0 * float(recall), "k": k}


def image_quality(real_features: np.ndarray, scores: np.ndarray, features: np.ndarray, prompted: np.ndarray,
                  threshold: float = 0.5, k: int = 3, subsets: int = 100) -> dict[str, float | None]:  # fmt: skip
    """Every measure above for one set of generated images: fidelity, KID (mean, std), precision, recall."""
    kid, kid_std = kernel_distance(real_features, features, subsets=subsets)
    return {**label_fidelity(scores, prompted, threshold), "kid": kid, "kid_std": kid_std,
            **precision_recall(real_features, features, k)}  # fmt: skip


def multi_hot(class_lists: Sequence[Sequence[int]], num_foreground: int) -> np.ndarray:
    """``(N, num_foreground)`` 0/1 table from per-image lists of 1-based class indices (0 = background)."""
    table = np.zeros((len(class_lists), num_foreground), dtype=np.float32)
    for row, classes in enumerate(class_lists):
        for c in classes:
            if not 0 < c <= num_foreground:
                raise ValueError(f"class index {c} is not a foreground class (1..{num_foreground})")
            table[row, c - 1] = 1.0
    return table


def generated_quality(generator: TextToImageGenerator, classify: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                      real_features: np.ndarray, prompts: Sequence[str], seeds: Sequence[int], prompted: np.ndarray,
                      step_counts: Sequence[int], guidance: float, threshold: float = 0.5,
                      k: int = 3) -> dict[str, dict[str, float | None]]:  # fmt: skip
    """:func:`image_quality` of the images ``generator`` makes from ``prompts`` at each step count.

    ``classify`` maps ``(N, H, W, 3)`` uint8 images to (scores, features), e.g. a
    :func:`classify_images` with the classifier bound; keys of the result are the step counts.
    """
    result = {}
    for steps in step_counts:
        scores, features = classify(generator.sample(prompts, seeds, steps, guidance))
        result[str(steps)] = image_quality(real_features, scores, features, prompted, threshold, k)
    return result
