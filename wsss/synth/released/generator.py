"""A released checkpoint behind the toolkit's text-to-image protocol: batched, one seed per image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsss.synth.released.families import Family, dmd2_timesteps
from wsss.synth.released.rectified_flow import guided_velocity, integrate


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` images in [0, 1] as ``(N, H, W, 3)`` uint8, rounded as diffusers rounds its outputs."""
    return (images.float() * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def seeded_noise(
    seeds: Sequence[int], shape: Sequence[int], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """One Gaussian latent per seed, each drawn on the CPU by its own generator, as diffusers draws a batch
    from a list of generators: an image's noise depends on its seed alone, not on its batch or device."""
    noise = [torch.randn((1, *shape), generator=torch.Generator().manual_seed(int(seed))) for seed in seeds]
    return torch.cat(noise).to(device=device, dtype=dtype)


class ReleasedGenerator:
    """A diffusers pipeline of one released family, sampled as :class:`~wsss.synth.generator.TextToImageGenerator`.

    Each image's noise comes from its own seed (see :func:`seeded_noise`), so the same seed gives the
    same image in any batch, up to the floating-point rounding of a differently sized batch (at most
    one grey level in a few pixels). ``default_guidance`` is what the family is meant to run with.
    """

    def __init__(self, pipe: Any, family: Family, shape: str, source: Path):
        self.pipe = pipe
        self.family = family
        self.shape = shape
        self.source = source
        self.name = family.name
        self.default_steps = family.default_steps
        self.default_guidance = family.default_guidance
        size = pipe.unet.config.sample_size
        self.resolution = int(size if isinstance(size, int) else size[0]) * pipe.vae_scale_factor

    @property
    def device(self) -> torch.device:
        return self.pipe.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.pipe.unet.dtype

    def sample(self, prompts: Sequence[str], seeds: Sequence[int], steps: int, guidance: float) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 images, one per prompt and seed, after ``steps`` steps at ``guidance``."""
        prompts, seeds = list(prompts), [int(seed) for seed in seeds]
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds; give one seed per prompt")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if not prompts:
            return np.zeros((0, self.resolution, self.resolution, 3), np.uint8)
        if self.family.sampler == "rectified-flow":
            return to_uint8(self._rectified_flow(prompts, seeds, steps, guidance))
        channels = self.pipe.unet.config.in_channels
        latent_side = self.resolution // self.pipe.vae_scale_factor
        noise = seeded_noise(seeds, (channels, latent_side, latent_side), self.device, self.dtype)
        schedule: dict[str, Any] = {"num_inference_steps": steps}
        if self.family.sampler == "lcm-timesteps":
            schedule = {"timesteps": dmd2_timesteps(steps, self.shape)}
        # The pipeline scales the given latents by its scheduler's initial sigma, as it does its own noise;
        # the generators drive the noise of stochastic schedulers (Euler ancestral, LCM) between steps.
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        out = self.pipe(prompt=prompts, height=self.resolution, width=self.resolution, latents=noise,
                        generator=generators, guidance_scale=guidance, output_type="pt", **schedule)  # fmt: skip
        return to_uint8(out.images)

    @torch.no_grad()
    def _rectified_flow(
        self, prompts: list[str], seeds: list[int], steps: int, guidance: float
    ) -> torch.Tensor:
        """InstaFlow: Euler steps of the velocity UNet from Gaussian latents, then the VAE decode; in [0, 1]."""
        pipe, use_guidance = self.pipe, guidance > 1.0
        prompt_embeds, empty_embeds = pipe.encode_prompt(prompts, self.device, 1, use_guidance)
        channels = pipe.unet.config.in_channels
        side = self.resolution // pipe.vae_scale_factor
        latents = seeded_noise(seeds, (channels, side, side), self.device, self.dtype)

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if not use_guidance:
                return pipe.unet(x, t, encoder_hidden_states=prompt_embeds).sample
            both = pipe.unet(torch.cat([x, x]), torch.cat([t, t]),
                             encoder_hidden_states=torch.cat([empty_embeds, prompt_embeds])).sample  # fmt: skip
            v_empty, v_prompt = both.chunk(2)
            return guided_velocity(v_prompt, v_empty, guidance)

        latents = integrate(velocity, latents, steps)
        images = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample
        return pipe.image_processor.postprocess(images, output_type="pt")
