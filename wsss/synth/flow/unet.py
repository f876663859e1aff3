"""The velocity network: a small pixel-space UNet conditioned on time and text, written here in torch.

Not diffusers' UNet2DConditionModel: diffusers is an optional extra of the toolkit, and a network of
a few hundred thousand parameters for 32-64 px images needs none of its machinery. The layout:

* a stem convolution, then per resolution level one residual block (time + pooled text embedding
  added to its features) and, where ``attention`` says so, a cross-attention block reading the
  text encoder's context sequence; a stride-2 convolution between levels;
* a middle of residual, cross-attention, residual at the lowest resolution;
* the mirror path up, each level concatenating the skip features of its twin, nearest upsampling
  plus a convolution between levels; a zero-initialised output convolution (the velocity starts at 0).

``channels=(16, 32, 64)`` with attention at the two lower levels suits 32 px (8 x 8 at the bottom);
64 px configs add a level: ``channels=(16, 32, 64, 64)``, ``attention=(False, False, True, True)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsss.synth.flow.text_encoder import TextContext


def time_embedding(t: Tensor, dim: int, scale: float = 1000.0) -> Tensor:
    """Sinusoidal features ``(B, dim)`` of times ``t`` in [0, 1] (scaled so that steps of 1e-3 differ)."""
    half = dim // 2
    frequencies = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    angles = (t.float() * scale)[:, None] * frequencies[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with group norm and SiLU; the embedding is added between them."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embed = nn.Linear(embed_dim, out_channels)
        self.norm2 = nn.GroupNorm(min(groups, out_channels), out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.embed(F.silu(embedding))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class CrossAttention(nn.Module):
    """Every pixel attends to the prompt's tokens (padding masked out); added as a residual."""

    def __init__(self, channels: int, context_dim: int, heads: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(min(groups, channels), channels)
        self.attention = nn.MultiheadAttention(
            channels, heads, kdim=context_dim, vdim=context_dim, batch_first=True
        )

    def forward(self, x: Tensor, text: TextContext) -> Tensor:
        b, c, h, w = x.shape
        query = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attention(
            query, text.context, text.context, key_padding_mask=text.mask, need_weights=False
        )
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class Level(nn.Module):
    """A residual block and, optionally, cross-attention: one step of either path."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, context_dim: int | None,
                 heads: int, groups: int):  # fmt: skip
        super().__init__()
        self.res = ResBlock(in_channels, out_channels, embed_dim, groups)
        self.attention = (
            None if context_dim is None else CrossAttention(out_channels, context_dim, heads, groups)
        )

    def forward(self, x: Tensor, embedding: Tensor, text: TextContext) -> Tensor:
        x = self.res(x, embedding)
        return x if self.attention is None else self.attention(x, text)


class FlowUNet(nn.Module):
    """``v(x_t, t | text)``: images ``(B, C, H, W)``, times ``(B,)`` in [0, 1] and a text context to velocities.

    H and W must be divisible by ``2 ** (len(channels) - 1)``.
    """

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (16, 32, 64),
                 attention: Sequence[bool] = (False, True, True), context_dim: int = 64, heads: int = 4,
                 groups: int = 8):  # fmt: skip
        super().__init__()
        if len(attention) != len(channels):
            raise ValueError(
                f"unet.attention has {len(attention)} entries but unet.channels {len(channels)}; give one per level"
            )
        self.channels = tuple(channels)
        embed_dim = 4 * channels[0]
        self.time_mlp = nn.Sequential(
            nn.Linear(channels[0], embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)
        )
        self.text_proj = nn.Linear(context_dim, embed_dim)
        self.stem = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        ctx = [context_dim if use else None for use in attention]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        previous = channels[0]
        for i, width in enumerate(channels):
            self.down.append(Level(previous, width, embed_dim, ctx[i], heads, groups))
            if i < len(channels) - 1:
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
            previous = width
        self.mid1 = Level(previous, previous, embed_dim, context_dim, heads, groups)
        self.mid2 = Level(previous, previous, embed_dim, None, heads, groups)
        self.up = nn.ModuleList(
            Level(2 * width, width, embed_dim, ctx[i], heads, groups) for i, width in enumerate(channels)
        )
        self.upsample = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i - 1], 3, padding=1) for i in range(1, len(channels))
        )
        self.out_norm = nn.GroupNorm(min(groups, channels[0]), channels[0])
        self.out = nn.Conv2d(channels[0], in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor, text: TextContext) -> Tensor:
        factor = 2 ** (len(self.channels) - 1)
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(
                f"image size {tuple(x.shape[-2:])} is not divisible by {factor}, as this UNet's levels need"
            )
        embedding = self.time_mlp(time_embedding(t, self.channels[0])) + self.text_proj(text.pooled)
        h = self.stem(x)
        skips = []
        for i, level in enumerate(self.down):
            h = level(h, embedding, text)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.mid1(h, embedding, text), embedding, text)
        for i in reversed(range(len(self.up))):
            h = self.up[i](torch.cat([h, skips[i]], dim=1), embedding, text)
            if i > 0:
                h = self.upsample[i - 1](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))
