"""Probes of a feature folder against ground truth: how much class (and context) a feature space holds.

All three score on the feature grid: every cell takes the majority ground-truth label of its pixels
(:func:`~wsss.features.grid.cell_labels`; ignored pixels do not vote, cells with none are left out).

* **cluster probe** (STEGO's): k-means (cosine: features L2-normalised) with as many clusters as
  classes, plus one per context when contexts are given; Hungarian matching of clusters to classes
  on the cell confusion (scipy's ``linear_sum_assignment``), unmatched clusters taking the class
  they overlap most; mIoU of the matched assignment.
* **linear probe**: a softmax-linear classifier (multinomial logistic regression, L-BFGS in torch,
  on standardised features) trained on the cells of the even-indexed images, mIoU on the odd ones.
* **context separability**: per context (water, rails) a logistic regression between its cells that
  are not its class and the cells of its class (water vs boat), trained on the even images; the
  balanced accuracy (mean recall of the two sides) on the odd images, so a rare side counts as much.

Torch rather than scikit-learn for the two classifiers: scikit-learn is not a dependency, and
full-batch L-BFGS on a few hundred thousand cells takes seconds here; k-means is the toolkit's own
batched implementation (:mod:`wsss.kmeans`), the Hungarian step is scipy's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from wsss.data.label_io import check_labels_exist, read_label_png
from wsss.evaluation.confusion import ConfusionMatrix
from wsss.evaluation.context import read_contexts
from wsss.features.grid import cell_labels
from wsss.features.io import FeatureFolder, check_feature_ids, feature_path
from wsss.kmeans import batched_kmeans


@dataclass
class ProbeCells:
    """Every labelled cell of a split: its features, ground-truth class, context value and image index."""

    features: np.ndarray  # (N, D) float32
    classes: np.ndarray  # (N,) int64
    contexts: np.ndarray | None  # (N,) int64, 0 = no context
    image: np.ndarray  # (N,) int64: index into the split


def read_probe_cells(
    features_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    ids: Sequence[str],
    context_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> ProbeCells:
    """The labelled cells of ``ids``, read one image at a time."""
    folder, gt_dir = FeatureFolder(features_dir), Path(gt_dir)
    check_feature_ids(folder.folder, ids, "listed")
    check_labels_exist(gt_dir, ids, "ground-truth")
    if context_dir is not None:
        check_labels_exist(context_dir, ids, "context-mask")
    parts: dict[str, list[np.ndarray]] = {"features": [], "classes": [], "contexts": [], "image": []}
    for index, image_id in enumerate(tqdm(ids, desc="read features", unit="img", disable=not progress)):
        features, stride, size = folder.read(image_id)
        gt = read_label_png(gt_dir / f"{image_id}.png")
        if gt.shape != size:
            raise ValueError(
                f"{feature_path(folder.folder, image_id)}: extracted from a {size[0]}x{size[1]} image but "
                f"{gt_dir / image_id}.png is {gt.shape[0]}x{gt.shape[1]}; use features of the same images"
            )
        cells = cell_labels(gt, features.shape[1:], stride)
        keep = cells >= 0
        parts["features"].append(features[:, keep].T)
        parts["classes"].append(cells[keep])
        parts["image"].append(np.full(int(keep.sum()), index, dtype=np.int64))
        if context_dir is not None:
            context = read_label_png(Path(context_dir) / f"{image_id}.png")
            parts["contexts"].append(cell_labels(context, features.shape[1:], stride).clip(min=0)[keep])
    if not parts["features"] or not sum(len(c) for c in parts["classes"]):
        raise ValueError(f"{gt_dir}: no labelled pixel in the {len(ids)} listed images")
    return ProbeCells(
        features=np.concatenate(parts["features"]).astype(np.float32),
        classes=np.concatenate(parts["classes"]),
        contexts=np.concatenate(parts["contexts"]) if context_dir is not None else None,
        image=np.concatenate(parts["image"]),
    )


def _scores(predicted: np.ndarray, truth: np.ndarray, num_classes: int) -> dict[str, Any]:
    """mIoU and per-class IoU (percent; None for a class absent from both) of cell predictions."""
    matrix = ConfusionMatrix(num_classes)
    matrix.update(predicted, truth)
    result = matrix.compute()
    return {"mIoU": float(result.mIoU), "IoU": [None if np.isnan(v) else float(v) for v in result.iou]}


def cluster_probe(
    cells: ProbeCells, num_classes: int, extra_clusters: int = 0, seed: int = 0
) -> dict[str, Any]:
    """k-means into ``num_classes + extra_clusters`` clusters, Hungarian-matched to the classes; mIoU."""
    k = num_classes + extra_clusters
    points = F.normalize(torch.from_numpy(cells.features), dim=1)
    centroids, active = batched_kmeans(
        points[None], torch.ones(1, len(points), dtype=torch.bool), k, 30, torch.Generator().manual_seed(seed)
    )
    distances = torch.cdist(points, centroids[0]).masked_fill(~active[0][None], float("inf"))
    clusters = distances.argmin(dim=1).numpy()
    overlap = np.zeros((k, num_classes), dtype=np.int64)
    np.add.at(overlap, (clusters, cells.classes), 1)
    rows, cols = linear_sum_assignment(-overlap)
    mapping = overlap.argmax(axis=1)
    mapping[rows] = cols
    return {**_scores(mapping[clusters], cells.classes, num_classes), "clusters": k}


def standardise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """``train`` and ``others`` standardised with the mean and standard deviation of ``train``'s columns."""
    mean, std = train.mean(dim=0), train.std(dim=0).clamp_min(1e-6)
    return [(x - mean) / std for x in (train, *others)]


def fit_linear(features: torch.Tensor, targets: torch.Tensor, num_classes: int, weight_decay: float = 1e-4,
               iterations: int = 100, class_weight: torch.Tensor | None = None) -> torch.nn.Linear:  # fmt: skip
    """A softmax-linear classifier fitted by full-batch L-BFGS (cross-entropy + L2 on the weights).

    ``class_weight``: per-class weights of the cross-entropy (e.g. inverse frequencies, so a rare class counts).
    """
    torch.manual_seed(0)
    layer = torch.nn.Linear(features.shape[1], num_classes)
    optimizer = torch.optim.LBFGS(
        layer.parameters(), lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(layer(features), targets, weight=class_weight)
        loss = loss + weight_decay * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return layer


def _halves(cells: ProbeCells) -> tuple[np.ndarray, np.ndarray]:
    even = cells.image % 2 == 0
    if not even.any() or even.all():
        raise ValueError("the probes need at least two images (one to fit on, one to score)")
    return even, ~even


def linear_probe(cells: ProbeCells, num_classes: int) -> dict[str, Any]:
    """A linear classifier fitted on the even images' cells; mIoU on the odd images' cells."""
    train, test = _halves(cells)
    features = torch.from_numpy(cells.features)
    x_train, x_test = standardise(features[train], features[test])
    layer = fit_linear(x_train, torch.from_numpy(cells.classes[train]), num_classes)
    with torch.no_grad():
        predicted = layer(x_test).argmax(dim=1).numpy()
    return _scores(predicted, cells.classes[test], num_classes)


def context_separability(cells: ProbeCells, contexts: dict[int, tuple[str, int]]) -> dict[str, Any]:
    """Per context: balanced accuracy of a linear classifier between its non-class cells and its class's cells."""
    if cells.contexts is None:
        raise ValueError("context separability needs context masks")
    train, test = _halves(cells)
    features = torch.from_numpy(cells.features)
    result: dict[str, Any] = {}
    for value, (name, cls) in contexts.items():
        context_side = (cells.contexts == value) & (cells.classes != cls)
        class_side = cells.classes == cls
        chosen = context_side | class_side
        target = torch.from_numpy(class_side.astype(np.int64))
        fit, score = chosen & train, chosen & test
        if not (context_side & fit).any() or not (class_side & fit).any() or not score.any():
            result[name] = {"balanced_accuracy": None, "cells": int(chosen.sum())}
            continue
        x_fit, x_score = standardise(features[fit], features[score])
        layer = fit_linear(x_fit, target[fit], 2)
        with torch.no_grad():
            predicted = layer(x_score).argmax(dim=1)
        truth = target[score]
        recalls = [
            float((predicted[truth == side] == side).float().mean())
            for side in (0, 1)
            if (truth == side).any()
        ]
        result[name] = {"balanced_accuracy": float(np.mean(recalls)), "cells": int(chosen.sum())}
    return result


def probe_features(
    features_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    ids: Sequence[str],
    class_names: Sequence[str],
    context_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Every probe of a feature folder: ``cluster``, ``linear`` and (with contexts) ``context``."""
    cells = read_probe_cells(features_dir, gt_dir, ids, context_dir, progress)
    contexts = read_contexts(context_dir, class_names) if context_dir is not None else {}
    num_classes = len(class_names)
    result = {
        "images": len(ids),
        "cells": int(len(cells.classes)),
        "feature_dim": int(cells.features.shape[1]),
        "cluster": cluster_probe(cells, num_classes, extra_clusters=len(contexts)),
        "linear": linear_probe(cells, num_classes),
    }
    if contexts:
        result["context"] = context_separability(cells, contexts)
    return result
