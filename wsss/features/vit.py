"""DINO ViTs (timm) as frozen feature models: last-layer patch tokens as a ``(B, D, H/p, W/p)`` map.

Weights come only from a local file (``weights=``: the DINO/DINOv2 release files, a timm
``state_dict`` or ``.safetensors``); nothing is downloaded. The file must fit the architecture
exactly: missing or unexpected tensors, or tensors of another shape (another ViT), are refused with
their names. Inputs of any size whose sides are multiples of the patch size work (timm's dynamic
image size interpolates the position embeddings); the extraction pads to that.
"""

from __future__ import annotations

import os
from typing import Any

import timm
from torch import Tensor, nn

from wsss.features.base import FeatureModel
from wsss.nn.backbones import read_state_dict
from wsss.registry import MODELS

# The DINO releases as timm names them (DINOv2: patch 14, 518-px position grid).
DINO_ARCHS = (
    "vit_small_patch8_224",
    "vit_base_patch8_224",
    "vit_small_patch16_224",
    "vit_base_patch16_224",
    "vit_small_patch14_dinov2",
    "vit_base_patch14_dinov2",
)
# Keys some release files carry beside the backbone's (DINO's training-time heads).
_HEAD_PREFIXES = ("head.", "fc_norm.")


def load_vit_weights(model: nn.Module, path: str | os.PathLike, arch: str) -> None:
    """Load ``path`` into a timm ViT; ValueError naming missing, unexpected or mis-shaped tensors."""
    state = read_state_dict(path)
    for prefix in ("teacher.", "student."):
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            state = {k.removeprefix("backbone."): v for k, v in state.items()}
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.startswith(_HEAD_PREFIXES)}
    wrong = [f"{k} {tuple(v.shape)} (model {tuple(own[k].shape)})" for k, v in state.items()
             if k in own and v.shape != own[k].shape]  # fmt: skip
    if wrong:
        raise ValueError(
            f"{path}: holds another architecture than {arch}: {', '.join(wrong[:3])}; give the weights of {arch} "
            "or set `arch` to the file's ViT"
        )
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{path}: does not fit {arch}: missing {missing[:4] or 'none'}, unexpected {unexpected[:4] or 'none'}; "
            "give a DINO/timm ViT weight file of this architecture"
        )
    model.load_state_dict(state, strict=True)


@MODELS.register_module()
class DinoViT(FeatureModel):
    """A frozen timm ViT; ``features`` are its last-layer patch tokens (after the final norm).

    ``arch`` is a timm ViT name (see :data:`DINO_ARCHS`), ``weights`` a local file (None: random
    weights, for tests and floors only), ``vit_kwargs`` overrides of timm's model arguments (tests
    build tiny ViTs with ``embed_dim``, ``depth``, ``num_heads``).
    """

    needs_checkpoint = False

    def __init__(
        self,
        arch: str = "vit_base_patch8_224",
        weights: str | None = None,
        vit_kwargs: dict[str, Any] | None = None,
        data_preprocessor: dict | nn.Module | None = None,
        init_cfg: dict | None = None,
    ):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        try:
            self.vit = timm.create_model(
                arch, pretrained=False, num_classes=0, dynamic_img_size=True, **(vit_kwargs or {})
            )
        except RuntimeError as err:  # timm's "Unknown model"
            raise ValueError(
                f"arch {arch!r}: {err}; use a timm ViT such as {', '.join(DINO_ARCHS[:2])}"
            ) from None
        if weights is not None:
            load_vit_weights(self.vit, weights, arch)
        self.vit.requires_grad_(False)
        self.stride = int(self.vit.patch_embed.patch_size[0])
        self.feature_dim = int(self.vit.embed_dim)
        self.train(False)

    def train(self, mode: bool = True) -> DinoViT:
        """Always in eval mode: the backbone is frozen (no dropout, no drop-path)."""
        return super().train(False)

    def features(self, inputs: Tensor) -> Tensor:
        height, width = inputs.shape[-2:]
        if height % self.stride or width % self.stride:
            raise ValueError(
                f"a {height}x{width} input is not a multiple of the {self.stride}-px patch; pad it (the extraction does)"
            )
        tokens = self.vit.forward_features(inputs)[:, self.vit.num_prefix_tokens :]
        grid = tokens.reshape(len(tokens), height // self.stride, width // self.stride, -1)
        return grid.permute(0, 3, 1, 2).contiguous()
