"""Measures of generated images in the classifier's eyes: label fidelity, KID, precision and recall."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsss.synth.quality import kernel_distance, label_fidelity, multi_hot, precision_recall


def test_label_fidelity_matches_hand_computed_average_precision_and_exact_matches():
    scores = np.array([[0.9, 0.1], [0.2, 0.65], [0.6, 0.7]], dtype=np.float32)
    prompted = np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32)
    result = label_fidelity(scores, prompted, threshold=0.5)
    # Class 1: both positives rank first (AP 1). Class 2: the negative 0.7 ranks above the positive
    # 0.65, so precision at the positive is 1/2 (AP 0.5). Row 3 also scores class 2 above 0.5.
    assert result["mAP"] == pytest.approx(75.0)
    assert result["exact_match"] == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match="differ in shape"):
        label_fidelity(scores, prompted[:, :1])


def test_multi_hot_from_one_based_class_indices():
    assert multi_hot([[1, 3], [], [2]], 3).tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="not a foreground class"):
        multi_hot([[0]], 3)


def _independent_kid(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 with the cubic kernel, written as the double sums of Binkowski et al."""
    d, m = x.shape[1], len(x)

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kernel_distance_matches_the_double_sums_and_torchmetrics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 8))
    y = rng.normal(loc=0.5, size=(12, 8))
    # Subsets as large as both sets hold every row: each subset gives the same value, std 0.
    mean, std = kernel_distance(x, y, subset_size=12, subsets=3)
    assert mean == pytest.approx(_independent_kid(x, y), rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-12)
    assert kernel_distance(x, x, subset_size=12, subsets=2)[0] < mean  # a set is closest to itself
    kid_module = pytest.importorskip("torchmetrics.image.kid")
    metric = kid_module.KernelInceptionDistance(feature=torch.nn.Identity(), subset_size=12, subsets=3)
    metric.update(torch.from_numpy(x).float(), real=True)
    metric.update(torch.from_numpy(y).float(), real=False)
    theirs, _ = metric.compute()
    assert mean == pytest.approx(float(theirs), rel=1e-4)
    with pytest.raises(ValueError, match="at least 2"):
        kernel_distance(x[:1], y)


def test_precision_recall_of_hand_placed_points():
    real = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    fake = np.array([[0.5], [2.5], [5.0], [6.0]])
    # k = 1 radii: real 1, 1, 1, 1, 7 (10 reaches back to 3); fake 2, 2, 1, 1. Every fake point lies
    # in a real ball (5 and 6 in the ball of 10); the real point 10 lies in no fake ball (6 + 1 < 10).
    result = precision_recall(real, fake, k=1)
    assert result["precision"] == pytest.approx(100.0)
    assert result["recall"] == pytest.approx(80.0)
    far = precision_recall(real, fake + 100.0, k=1)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    with pytest.raises(ValueError, match="more than 3 images"):
        precision_recall(real[:3], fake, k=3)
