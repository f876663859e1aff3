"""A trained flow model as a :class:`~wsss.synth.generator.TextToImageGenerator`, and loading one from disk.

Each image's noise ``x0`` comes from its own seed (a CPU ``torch.Generator``), so an image depends on
its (prompt, seed, steps, guidance) only, not on the batch it is drawn in.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from torch import Tensor

from wsss.engine.config import load_config
from wsss.engine.inference import model_from_checkpoint
from wsss.synth.flow.model import RectifiedFlow
from wsss.synth.flow.sampler import Trajectory, euler, guidance_prompts, guided_velocity
from wsss.synth.generator import TextToImageGenerator


def to_uint8(images: Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` floats in [-1, 1] to ``(N, H, W, 3)`` uint8 RGB (clipped, rounded)."""
    scaled = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()


class FlowGenerator:
    """Samples a :class:`~wsss.synth.flow.model.RectifiedFlow` with Euler steps and classifier-free guidance.

    ``batch_size`` bounds how many images go through the network at once.
    """

    def __init__(self, model: RectifiedFlow, batch_size: int = 64):
        self.model = model.eval()
        self.name = model.name
        self.resolution = model.image_size
        self.default_steps = model.default_steps
        self.default_guidance = model.default_guidance
        self.batch_size = batch_size

    @property
    def vocabulary(self):
        """The words and classes the model reads (:class:`~wsss.synth.flow.vocabulary.Vocabulary`)."""
        return self.model.vocabulary

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def noise(self, seeds: Sequence[int]) -> Tensor:
        """``(N, 3, H, W)`` standard normal noise on the model's device, image ``i`` from ``seeds[i]``."""
        size = (3, self.resolution, self.resolution)
        return torch.stack(
            [torch.randn(size, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
        ).to(self.device)

    @torch.no_grad()
    def integrate(self, x0: Tensor, prompts: Sequence[str], steps: int, guidance: float,
                  keep_path: bool = False) -> Trajectory:  # fmt: skip
        """The Euler path from ``x0`` for ``prompts`` (one batch; ValueError for a prompt the model cannot read)."""
        if len(prompts) != x0.shape[0]:
            raise ValueError(
                f"{len(prompts)} prompts for {x0.shape[0]} noise images; give one prompt per image"
            )
        if self.model.num_students > 1 and guidance != 1.0:
            raise ValueError(
                f"a {self.model.num_students}-student model is sampled at guidance 1 (its one-step students have "
                f"no unconditional velocity), not {guidance:g}"
            )
        text = self.model.encode(guidance_prompts(list(prompts), guidance))
        return euler(guided_velocity(self.model, text, guidance), x0, steps, keep_path=keep_path)

    def sample(self, prompts: Sequence[str], seeds: Sequence[int], steps: int, guidance: float) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 images, one per (prompt, seed)."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds; give one seed per prompt")
        for prompt in dict.fromkeys(prompts):  # every prompt checked before any work
            self.model.vocabulary.encode(prompt)
        out = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            x0 = self.noise(seeds[chunk])
            out.append(to_uint8(self.integrate(x0, prompts[chunk], steps, guidance).x1))
        size = self.resolution
        return np.concatenate(out) if out else np.zeros((0, size, size, 3), np.uint8)


def load_flow_generator(config: str | os.PathLike | Config, checkpoint: str | os.PathLike,
                        device: str | torch.device = "cpu") -> TextToImageGenerator:  # fmt: skip
    """The generator of a trained flow model: its config (file or Config) and checkpoint (.pth or work dir)."""
    cfg = config if isinstance(config, Config) else load_config(config)
    model = model_from_checkpoint(cfg, checkpoint, device)
    if not isinstance(model, RectifiedFlow):
        name = Path(cfg.filename).name if cfg.filename else "the config"
        raise ValueError(
            f"{name}: builds a {type(model).__name__}, not a RectifiedFlow; give a configs/synth/ flow config"
        )
    model.vocabulary  # noqa: B018  (a checkpoint without a vocabulary is refused here, with its fix)
    return FlowGenerator(model)
