"""The one interface every text-to-image generator of the toolkit offers, released or our own.

``tools/generate_synthetic.py`` and the synthetic-data stages talk only to this protocol, so a
released InstaFlow/DMD2/SD-Turbo folder and a rectified-flow model trained here are used alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextToImageGenerator(Protocol):
    """Images from prompts; the same (prompt, seed, steps, guidance) always gives the same image."""

    name: str  # what the manifest records, e.g. "instaflow" or "rf2-distilled"
    resolution: int  # side of the square images it makes, in pixels
    default_steps: int  # the number of steps it is meant to be sampled with (1 for one-step models)
    default_guidance: float  # the classifier-free guidance it is meant to run with (0 or 1: none)

    def sample(self, prompts: Sequence[str], seeds: Sequence[int], steps: int, guidance: float) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 RGB images, one per prompt, each from its own seed."""
        ...
