"""InstaFlow's sampler: Euler steps of a rectified-flow velocity UNet, in the convention of its public pipeline.

gnobitab/InstaFlow (``code/pipeline_rf.py``) starts from Gaussian latents and, for
``i = 0 .. N-1``, calls the UNet at ``t = (1 - i/N) * 1000`` and steps ``latents += v / N``; with
guidance ``a > 1`` the velocity is ``v_empty + a * (v_prompt - v_empty)``. One step is therefore
``x = z + v(z, t=1000)``, then the VAE decodes ``x / scaling_factor``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

TIME_SCALE = 1000.0


def euler_timesteps(steps: int) -> list[float]:
    """The UNet times of ``steps`` Euler steps: ``(1 - i/steps) * 1000`` for ``i < steps`` (1000 for one step)."""
    return [(1.0 - i / steps) * TIME_SCALE for i in range(steps)]


def guided_velocity(v_prompt: torch.Tensor, v_empty: torch.Tensor | None, guidance: float) -> torch.Tensor:
    """Classifier-free guidance ``v_empty + a (v_prompt - v_empty)``, i.e. ``a v(.|c) + (1-a) v(.|empty)``."""
    if v_empty is None:
        return v_prompt
    return v_empty + guidance * (v_prompt - v_empty)


@torch.no_grad()
def integrate(
    velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], latents: torch.Tensor, steps: int
) -> torch.Tensor:
    """Latents after ``steps`` Euler steps of ``velocity(latents, t)`` (``t``: one time per sample, float32)."""
    dt = 1.0 / steps
    for t in euler_timesteps(steps):
        times = torch.full((latents.shape[0],), t, device=latents.device)
        latents = latents + dt * velocity(latents, times)
    return latents
