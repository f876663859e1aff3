"""Prompt following for contexts: presence from context masks, the probe, and the following rates."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wsss.synth.following import (
    balanced_accuracy,
    context_following,
    context_presence,
    context_prompts,
    fit_presence_probe,
)


def test_context_presence_reads_whether_each_context_value_is_visible(tmp_path):
    masks = {"a": [[0, 1], [1, 0]], "b": [[2, 0], [0, 0]], "c": [[0, 0], [0, 0]]}
    for name, mask in masks.items():
        Image.fromarray(np.array(mask, dtype=np.uint8)).save(tmp_path / f"{name}.png")
    present = context_presence(tmp_path, ["a", "b", "c"], [1, 2])
    assert present.tolist() == [[True, False], [False, True], [False, False]]


def test_the_probe_separates_separable_features_and_balanced_accuracy_weighs_both_outcomes():
    rng = np.random.default_rng(0)
    present = rng.random((200, 2)) < [0.2, 0.5]
    features = np.concatenate([present * 3.0 + rng.normal(0, 0.3, (200, 2)), rng.normal(0, 1, (200, 3))], 1)
    probe = fit_presence_probe(features, present)
    assert balanced_accuracy(probe.probabilities(features), present) == [100.0, 100.0]
    # hand values: 2 of 2 present seen, 1 of 2 absent called absent -> (100 + 50) / 2
    probabilities = np.array([[0.9], [0.8], [0.7], [0.1]])
    assert balanced_accuracy(probabilities, np.array([[True], [True], [False], [False]])) == [75.0]
    with pytest.raises(ValueError, match="both present and absent"):
        fit_presence_probe(features, np.ones_like(present))


class PaintsWaterOnEvenSeeds:
    """A stand-in generator: an image is white where the prompt asks for water and its seed is even."""

    def sample(self, prompts, seeds, steps, guidance):
        return np.stack([np.full((4, 4, 3), 255 * ("water" in p and s % 2 == 0), np.uint8)
                         for p, s in zip(prompts, seeds)])  # fmt: skip


def test_context_following_counts_images_whose_probe_verdict_matches_the_prompt():
    assert context_prompts(["boat", "bird"], ["water"]) == [
        ("a boat on water", "boat", 0, True), ("a boat", "boat", 0, False),
        ("a bird on water", "bird", 0, True), ("a bird", "bird", 0, False),
    ]  # fmt: skip
    brightness = np.array([[0.0], [255.0], [0.0], [255.0]])
    probe = fit_presence_probe(brightness, np.array([[False], [True], [False], [True]]))
    result = context_following(PaintsWaterOnEvenSeeds(), lambda images: images.mean(axis=(1, 2, 3))[:, None],
                               probe, ["boat", "bird"], ["water"], seeds=[0, 1, 2, 3], steps=1, guidance=1.0)  # fmt: skip
    # asked for water: seeds 0 and 2 of 4 show it; left out: never shown; 16 images in all
    assert result == {"water": {"asked": 50.0, "left_out": 100.0, "both": 75.0, "images": 16,
                                "asked_by_class": {"boat": 50.0, "bird": 50.0}}}  # fmt: skip
