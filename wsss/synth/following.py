"""Prompt following for contexts: does a generated image show the context (water, rails) its prompt asks for?

The judge is a *context probe*: one linear classifier per context on the pooled features of the
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

from wsss.data.label_io import check_labels_exist, read_label_fast
from wsss.features.probe import fit_linear, standardise
from wsss.synth.generator import TextToImageGenerator


def context_presence(context_dir: str | os.PathLike, ids: Sequence[str], values: Sequence[int]) -> np.ndarray:
    """``(N, K)`` bool: whether image ``ids[i]``'s context mask shows context value ``values[k]`` at all."""
    check_labels_exist(context_dir, ids, "context-mask")
    masks = (read_label_fast(Path(context_dir) / f"{image_id}.png") for image_id in ids)
    return np.array([[bool((mask == value).any()) for value in values] for mask in masks], dtype=bool)


@dataclass
class PresenceProbe:
    """One two-way linear classifier per context on features standardised like the fitting set's."""

    mean: torch.Tensor
    std: torch.Tensor
    classifiers: list[torch.nn.Linear]

    @torch.no_grad()
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """``(N, K)`` probability that each context is present."""
        x = (torch.from_numpy(features).float() - self.mean) / self.std
        return torch.stack([layer(x).softmax(dim=1)[:, 1] for layer in self.classifiers], dim=1).numpy()


def fit_presence_probe(features: np.ndarray, present: np.ndarray) -> PresenceProbe:
    """Fit a presence classifier per column of ``present`` on ``(N, D)`` features
    (:func:`wsss.features.probe.fit_linear`), both outcomes of a context weighted equally, so a rare
    context is not ignored."""
    if len(features) != len(present):
        raise ValueError(f"{len(features)} feature rows for {len(present)} presence rows")
    counts = present.sum(axis=0)
    if (counts == 0).any() or (counts == len(present)).any():
        raise ValueError("every context must be both present and absent in the fitting images")
    raw = torch.from_numpy(features).float()
    (x,) = standardise(raw)
    classifiers = []
    for k, count in enumerate(counts):
        balance = torch.tensor(
            [len(present) / (len(present) - count), len(present) / count], dtype=torch.float32
        )
        target = torch.from_numpy(present[:, k].astype(np.int64))
        classifiers.append(fit_linear(x, target, 2, class_weight=balance / balance.sum()))
    return PresenceProbe(raw.mean(dim=0), raw.std(dim=0).clamp_min(1e-6), classifiers)


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
    drawn = list(
        dict.fromkeys((p[0], p[4]) for p in planned)
    )  # "a <class>" serves every context: draw it once
    row_of = {key: row for row, key in enumerate(drawn)}
    images = generator.sample([d[0] for d in drawn], [d[1] for d in drawn], steps, guidance)
    drawn_verdict = probe.probabilities(embed(images)) >= 0.5
    verdict = drawn_verdict[[row_of[(p[0], p[4])] for p in planned]]
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
