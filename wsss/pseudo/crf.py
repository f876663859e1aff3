"""Optional dense CRF refinement (pydensecrf, installed by ``pip install 'wsss[crf]'``).

Two settings in common use in WSSS code:

- on label maps, as IRN does (:func:`crf_on_labels`): ``unary_from_labels`` with gt_prob 0.7,
  Gaussian sxy 3 compat 3, bilateral sxy 50 srgb 5 compat 10, 10 mean-field iterations;
- on probabilities, as PSA does (:func:`crf_on_probs`): ``unary_from_softmax``, Gaussian sxy 3
  compat 3, bilateral sxy 80 srgb 13 compat 10, 10 iterations.

Ignore pixels (255) given to :func:`crf_on_labels` enter as "unsure": their unary is uniform over all
labels, so the pairwise terms alone fill them from the surrounding colours and labels. The CRF output
therefore has no 255.

Seeds are refined in compact label space (0 background, i = the image's i-th class), so the CRF has
K + 1 labels rather than the whole class list. In the two-threshold mode both the high-threshold and
the low-threshold label maps are refined, then combined as in IRN: the refined high map's class where
it is foreground, background where both refined maps are background, 255 where only the refined low
map sees an object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wsss.data.label_io import IGNORE_INDEX
from wsss.pseudo.labels import (
    check_seed_pair,
    check_threshold,
    check_two_thresholds,
    combine_confident,
    compact_labels,
    to_class_labels,
)

INSTALL_HINT = "dense CRF needs the pydensecrf package; install it with: pip install 'wsss[crf]'"


@dataclass(frozen=True)
class LabelCRFSettings:
    """Parameters of the CRF on label maps; the defaults are IRN's."""

    gt_prob: float = 0.7
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 50.0
    bilateral_srgb: float = 5.0
    bilateral_compat: float = 10.0
    iterations: int = 10


@dataclass(frozen=True)
class ProbCRFSettings:
    """Parameters of the CRF on probabilities; the defaults are PSA's."""

    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 80.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 10.0
    iterations: int = 10


def import_pydensecrf() -> tuple[Any, Any]:
    """The ``pydensecrf.densecrf`` and ``pydensecrf.utils`` modules, or an ImportError saying how to install."""
    try:
        import pydensecrf.densecrf as densecrf
        import pydensecrf.utils as crf_utils
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return densecrf, crf_utils


def _check_image(image: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"the CRF needs an (H, W, 3) uint8 RGB image, got shape {image.shape} {image.dtype}")
    if image.shape[:2] != tuple(size):
        raise ValueError(f"image is {image.shape[:2]} (H, W) but the labels are {tuple(size)}")
    # pydensecrf takes a writable C-contiguous buffer; decoded images are often read-only views.
    return np.require(image, requirements=["C_CONTIGUOUS", "WRITEABLE"])


def _mean_field(
    image: np.ndarray,
    unary: np.ndarray,
    num_labels: int,
    settings: LabelCRFSettings | ProbCRFSettings,
    densecrf: Any,
) -> np.ndarray:
    """``(num_labels, H, W)`` float32 marginals of the fully connected CRF."""
    height, width = image.shape[:2]
    crf = densecrf.DenseCRF2D(width, height, num_labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=settings.gaussian_sxy, compat=settings.gaussian_compat)
    crf.addPairwiseBilateral(
        sxy=settings.bilateral_sxy,
        srgb=settings.bilateral_srgb,
        rgbim=image,
        compat=settings.bilateral_compat,
    )
    marginals = crf.inference(settings.iterations)
    return np.asarray(marginals, dtype=np.float32).reshape(num_labels, height, width)


def crf_on_labels(
    image: np.ndarray,
    labels: np.ndarray,
    num_labels: int,
    settings: LabelCRFSettings = LabelCRFSettings(),
) -> np.ndarray:
    """Refine an ``(H, W)`` map of labels ``0..num_labels-1`` (255 = unsure) on its RGB image.

    Returns ``(H, W)`` int64 labels in ``0..num_labels-1``; ties between labels go to the lower one.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    image = _check_image(image, labels.shape)
    if num_labels < 1:
        raise ValueError(f"num_labels must be at least 1, got {num_labels}")
    known = labels != IGNORE_INDEX
    if known.any() and (labels[known].min() < 0 or labels[known].max() >= num_labels):
        raise ValueError(
            f"labels must lie in 0..{num_labels - 1} or be {IGNORE_INDEX}, "
            f"got {labels[known].min()}..{labels[known].max()}"
        )
    densecrf, crf_utils = import_pydensecrf()
    if num_labels == 1:
        return np.zeros(labels.shape, dtype=np.int64)
    # Shift by one so that 0 marks the unsure (ignore) pixels, which zero_unsure gives a uniform unary.
    shifted = np.where(known, labels.astype(np.int64) + 1, 0)
    unary = crf_utils.unary_from_labels(shifted, num_labels, gt_prob=settings.gt_prob, zero_unsure=True)
    return _mean_field(image, unary, num_labels, settings, densecrf).argmax(axis=0)


def crf_on_probs(
    image: np.ndarray, probs: np.ndarray, settings: ProbCRFSettings = ProbCRFSettings()
) -> np.ndarray:
    """Refine ``(N, H, W)`` class probabilities on their RGB image; returns the ``(N, H, W)`` float32 marginals."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 3 or probs.shape[0] < 1:
        raise ValueError(f"probs must be (N, H, W) with N >= 1, got shape {probs.shape}")
    image = _check_image(image, probs.shape[1:])
    densecrf, crf_utils = import_pydensecrf()
    unary = crf_utils.unary_from_softmax(probs)
    return _mean_field(image, unary, probs.shape[0], settings, densecrf)


def crf_labels_from_threshold(
    image: np.ndarray,
    keys: np.ndarray,
    maps: np.ndarray,
    bg_threshold: float,
    settings: LabelCRFSettings = LabelCRFSettings(),
) -> np.ndarray:
    """:func:`~wsss.pseudo.labels.labels_from_threshold` followed by the label CRF; uint8 classes."""
    bg_threshold = check_threshold(bg_threshold, "the background threshold")
    check_seed_pair(keys, maps)
    refined = crf_on_labels(image, compact_labels(maps, bg_threshold), len(keys) + 1, settings)
    return to_class_labels(keys, refined)


def crf_labels_from_two_thresholds(
    image: np.ndarray,
    keys: np.ndarray,
    maps: np.ndarray,
    fg_threshold: float,
    bg_low: float,
    settings: LabelCRFSettings = LabelCRFSettings(),
) -> np.ndarray:
    """Two-threshold labels with both threshold maps refined by the label CRF before they are combined."""
    fg_threshold, bg_low = check_two_thresholds(fg_threshold, bg_low)
    check_seed_pair(keys, maps)
    num_labels = len(keys) + 1
    refined_fg = crf_on_labels(image, compact_labels(maps, fg_threshold), num_labels, settings)
    refined_bg = crf_on_labels(image, compact_labels(maps, bg_low), num_labels, settings)
    return to_class_labels(keys, combine_confident(refined_fg, refined_bg))
