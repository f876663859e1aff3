"""Prompt following for contexts: does a generated image show the context (water, rails) its prompt asks for?

The judge is a *context probe*: one logistic regression per context on the pooled features of the
project's classifier, fitted on real images whose context masks say whether the context is visible
(the shapes data's ``ContextMasks/``). Its balanced accuracy on held-out real images is reported
beside every verdict, so that a weak probe cannot pass for a generator that ignores its prompt.

The prompts pair every class with every context: ``"a boat on water"`` asks for the context,
``"a boat"`` for its absence (the shapes captions name a visible context in most captions, about
nine in ten on the default data, and an absent one never, so a caption without it means "most
likely not there"). A generated image follows its prompt when the probe's verdict (probability at
least 0.5) matches what was asked.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from wsss.data.label_io import check_labels_exist, read_label_fast
from wsss.synth.generator import TextToImageGenerator


def context_presence(context_dir: str | os.PathLike, ids: Sequence[str], values: Sequence[int]) -> np.ndarray:
    """``(N, K)`` bool: whether image ``ids[i]``'s context mask shows context value ``values[k]`` at all."""
    check_labels_exist(context_dir, ids, "context-mask")
    masks = (read_label_fast(Path(context_dir) / f"{image_id}.png") for image_id in ids)
    return np.array([[bool((mask == value).any()) for value in values] for mask in masks], dtype=bool)


@dataclass
class PresenceProbe:
    """Logistic regressions ``(D,) -> (K,)`` on standardised features (the statistics of the fitting set)."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor  # (D, K)
    bias: torch.Tensor  # (K,)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """``(N, K)`` probability that each context is present."""
        x = (torch.from_numpy(features).double() - self.mean) / self.std
        return torch.sigmoid(x @ self.weight + self.bias).numpy()


def fit_presence_probe(features: np.ndarray, present: np.ndarray, l2: float = 1e-2,
                       iterations: int = 200) -> PresenceProbe:  # fmt: skip
    """Fit one L2-regularised logistic regression per column of ``present`` on ``(N, D)`` features (L-BFGS).

    Each context's two outcomes are weighted equally (a rare context is not ignored).
    """
    if len(features) != len(present):
        raise ValueError(f"{len(features)} feature rows for {len(present)} presence rows")
    counts = present.sum(axis=0)
    if (counts == 0).any() or (counts == len(present)).any():
        raise ValueError("every context must be both present and absent in the fitting images")
    x = torch.from_numpy(features).double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x = (x - mean) / std
    y = torch.from_numpy(present.astype(np.float64))
    positive = torch.from_numpy(len(present) / (2.0 * counts)).double()
    negative = torch.from_numpy(len(present) / (2.0 * (len(present) - counts))).double()
    sample_weight = y * positive + (1 - y) * negative
    weight = torch.zeros(x.shape[1], y.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ weight + bias, y, weight=sample_weight)
        loss = loss + l2 * weight.pow(2).sum() / len(x)
        loss.backward()
        return loss

    optimizer.step(closure)
    return PresenceProbe(mean, std, weight.detach(), bias.detach())


def balanced_accuracy(probabilities: np.ndarray, present: np.ndarray) -> list[float]:
    """Per context (%): the mean of the hit rates on images with and without it (verdict = p >= 0.5)."""
    verdict = probabilities >= 0.5
    rates = []
    for k in range(present.shape[1]):
        shown, hidden = present[:, k], ~present[:, k]
        hit_shown = verdict[shown, k].mean() if shown.any() else np.nan
        hit_hidden = (~verdict[hidden, k]).mean() if hidden.any() else np.nan
        rates.append(100.0 * float(np.nanmean([hit_shown, hit_hidden])))
    return rates


def context_prompts(classes: Sequence[str], contexts: Sequence[str]) -> list[tuple[str, str, int, bool]]:
    """Every (prompt, class, context index, asks for it): ``"a <class> on <context>"`` and ``"a <class>"``."""
    return [(text, name, k, asked) for k, context in enumerate(contexts) for name in classes
            for text, asked in ((f"a {name} on {context}", True), (f"a {name}", False))]  # fmt: skip


def context_following(generator: TextToImageGenerator, embed: Callable[[np.ndarray], np.ndarray],
                      probe: PresenceProbe, classes: Sequence[str], contexts: Sequence[str],
                      seeds: Sequence[int], steps: int, guidance: float) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per context (%): images following prompts that ask for it, that leave it out, and both together,
    and the first of these per class (``asked_by_class``: a generator that draws a context only beside
    the class it co-occurs with fails it for the other classes).

    Every prompt of :func:`context_prompts` is drawn once per seed; ``embed`` maps ``(N, H, W, 3)``
    uint8 images to the features the probe was fitted on.
    """
    planned = [(*prompt, seed) for prompt in context_prompts(classes, contexts) for seed in seeds]
    images = generator.sample([p[0] for p in planned], [p[4] for p in planned], steps, guidance)
    verdict = probe.probabilities(embed(images)) >= 0.5
    followed = np.array([verdict[i, p[2]] == p[3] for i, p in enumerate(planned)])
    result = {}
    for k, context in enumerate(contexts):
        rows = np.array([p[2] == k for p in planned])
        asked = rows & np.array([p[3] for p in planned])
        by_class = {name: 100.0 * float(followed[asked & np.array([p[1] == name for p in planned])].mean())
                    for name in classes}  # fmt: skip
        result[context] = {"asked": 100.0 * float(followed[asked].mean()),
                           "left_out": 100.0 * float(followed[rows & ~asked].mean()),
                           "both": 100.0 * float(followed[rows].mean()), "images": int(rows.sum()),
                           "asked_by_class": by_class}  # fmt: skip
    return result
