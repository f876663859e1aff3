"""Offline measures of a flow generator (METHODS.md section 3): trajectory straightness, the one-step
gap, and image grids. What the images look like to the project's classifier (label fidelity, KID,
precision/recall) is measured for any generator in :mod:`wsss.synth.quality`.

Both measures are means over images and pixels, on the model's [-1, 1] scale:

* straightness ``S = E_i || (x1 - x0) - v(x_{t_i}, t_i) ||^2`` along the model's own ``N``-step Euler
  path from ``x0`` to ``x1`` (0 for a straight path, where every step moves along ``x1 - x0``);
* one-step gap: ``|| x1^(1) - x1^(N) ||^2`` between the one-step and the ``N``-step images of the same
  noise, both clipped to [-1, 1] as images are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from wsss.synth.flow.generator import FlowGenerator
from wsss.visualize.grid import Grid, render_grid


def straightness(generator: FlowGenerator, x0: torch.Tensor, prompts: Sequence[str], steps: int,
                 guidance: float) -> torch.Tensor:  # fmt: skip
    """Per-image straightness of the ``steps``-step Euler paths from ``x0`` (one batch)."""
    path = generator.integrate(x0, prompts, steps, guidance, keep_path=True)
    chord = path.x1 - x0
    deviations = [(chord - v).pow(2).flatten(1).mean(1) for v in path.velocities]
    return torch.stack(deviations).mean(0)


def one_step_gap(generator: FlowGenerator, x0: torch.Tensor, prompts: Sequence[str], steps: int,
                 guidance: float) -> torch.Tensor:  # fmt: skip
    """Per-image mean squared difference of the one-step and ``steps``-step images of ``x0`` (one batch)."""
    one = generator.integrate(x0, prompts, 1, guidance).x1.clamp(-1.0, 1.0)
    many = generator.integrate(x0, prompts, steps, guidance).x1.clamp(-1.0, 1.0)
    return (one - many).pow(2).flatten(1).mean(1)


def measure(generator: FlowGenerator, prompts: Sequence[str], seeds: Sequence[int], steps: int,
            guidance: float) -> dict[str, float]:  # fmt: skip
    """Mean straightness and one-step gap over (prompt, seed) pairs, in batches of the generator's size."""
    s_parts, gap_parts = [], []
    for start in range(0, len(prompts), generator.batch_size):
        chunk = slice(start, start + generator.batch_size)
        x0 = generator.noise(seeds[chunk])
        s_parts.append(straightness(generator, x0, prompts[chunk], steps, guidance))
        gap_parts.append(one_step_gap(generator, x0, prompts[chunk], steps, guidance))
    s, gap = torch.cat(s_parts), torch.cat(gap_parts)
    return {"images": len(prompts), "steps": steps, "guidance": guidance,
            "straightness": float(s.mean()), "straightness_std": float(s.std()) if len(s) > 1 else 0.0,
            "one_step_gap": float(gap.mean()), "one_step_gap_std": float(gap.std()) if len(gap) > 1 else 0.0}  # fmt: skip


def sample_grid(generator: FlowGenerator, prompts: Sequence[str], seeds: Sequence[int],
                step_counts: Sequence[int], guidance: float, cell: int = 96) -> Image.Image:  # fmt: skip
    """One row per prompt; per seed one column per step count (titled ``seed: N steps``), same noise across a row's columns."""
    titles = [f"{seed}: {steps} step{'s' if steps > 1 else ''}" for seed in seeds for steps in step_counts]
    grid = Grid(titles=titles)
    images = {steps: generator.sample([p for p in prompts for _ in seeds], [s for _ in prompts for s in seeds],
                                      steps, guidance) for steps in step_counts}  # fmt: skip
    for row, prompt in enumerate(prompts):
        cells = []
        for column in range(len(seeds)):
            cells += [(np.asarray(images[steps][row * len(seeds) + column]), "") for steps in step_counts]
        grid.captions.append(prompt)
        grid.rows.append(cells)
    return render_grid(grid, class_names=[], cell=cell)
