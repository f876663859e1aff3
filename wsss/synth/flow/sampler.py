"""Euler integration of the flow ODE ``dx/dt = v(x, t)`` from noise (t = 0) to images (t = 1), with guidance.

``t_i = i / N``; ``x_{i+1} = x_i + (1 / N) * v(x_i, t_i)``. One step is the one-step generator:
``x1 = x0 + v(x0, 0)``. Classifier-free guidance mixes the conditional and the empty-prompt velocity,
``v^a = a * v(. | c) + (1 - a) * v(. | empty)`` (METHODS.md section 3): a = 1 is the plain conditional
model (one network call per step), a = 0 the unconditional one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from wsss.synth.flow.text_encoder import TextContext

VelocityField = Callable[[Tensor, Tensor], Tensor]  # (x, t as a 0-d tensor) -> v, same shape as x


@dataclass
class Trajectory:
    """An Euler path: its end point and, when kept, the times, states and velocities of every step."""

    x1: Tensor
    times: list[float] = field(default_factory=list)
    states: list[Tensor] = field(default_factory=list)
    velocities: list[Tensor] = field(default_factory=list)


def euler(velocity: VelocityField, x0: Tensor, steps: int, keep_path: bool = False) -> Trajectory:
    """Integrate ``velocity`` from ``x0`` at t = 0 to t = 1 in ``steps`` equal Euler steps."""
    if steps < 1:
        raise ValueError(f"the sampler needs at least 1 step, got {steps}")
    x, dt = x0, 1.0 / steps
    path = Trajectory(x0)
    for i in range(steps):
        t = i * dt
        v = velocity(x, torch.tensor(t, dtype=x0.dtype, device=x0.device))
        if keep_path:
            path.times.append(t)
            path.states.append(x)
            path.velocities.append(v)
        x = x + dt * v
    path.x1 = x
    return path


def guided_velocity(model: torch.nn.Module, text: TextContext, guidance: float) -> VelocityField:
    """The velocity field of ``model`` (a :class:`~wsss.synth.flow.model.RectifiedFlow`) for fixed prompts.

    With ``guidance == 1``, ``text`` holds one row per image. Otherwise it holds ``2 B`` rows: the ``B``
    prompts, then ``B`` empty prompts (see :func:`guidance_prompts`); both halves go through the
    network in one batch.
    """
    if guidance == 1.0:
        return lambda x, t: model.velocity(x, t, text)

    def field(x: Tensor, t: Tensor) -> Tensor:
        if text.context.shape[0] != 2 * x.shape[0]:
            raise ValueError("guidance other than 1 needs the prompts followed by as many empty prompts")
        conditional, unconditional = model.velocity(torch.cat([x, x]), t, text).chunk(2)
        return guidance * conditional + (1.0 - guidance) * unconditional

    return field


def guidance_prompts(prompts: list[str], guidance: float) -> list[str]:
    """The prompts to encode for :func:`guided_velocity`: followed by empty ones unless ``guidance == 1``."""
    return list(prompts) if guidance == 1.0 else list(prompts) + [""] * len(prompts)
