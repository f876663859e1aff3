"""timm CNN backbones split at a mid stage, with weights only from a local file.

Localizers need the mid-stage feature (BAS's generator input) and the ability to run the later
stages on a modified mid feature (BAS's background branch), so the backbone exposes both halves.
"""

from __future__ import annotations

import os
from pathlib import Path

import timm
import torch
from mmengine.logging import print_log
from torch import nn

from wsss.engine.checkpoint import load_from_local_safely

CHECKPOINT_PREFIXES = ("module.", "backbone.", "encoder.", "model.")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file (``.safetensors``, or a torch file read with ``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: backbone checkpoint not found; give a local timm/torchvision weight file"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as err:  # safetensors' own error type: a cut-off or damaged file
            raise ValueError(f"{path}: not a readable .safetensors file ({err}); download it again") from None
    else:
        state = load_from_local_safely(str(path), map_location="cpu")
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"{path}: not a state dict of tensors; save the model with torch.save(model.state_dict())"
        )
    return {_strip_prefix(k): v for k, v in state.items()}


def _strip_prefix(key: str) -> str:
    for prefix in CHECKPOINT_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


class StagedBackbone(nn.Module):
    """A timm CNN cut into ``to_mid`` (stem .. mid stage) and ``mid_to_last`` (later stages).

    ``forward`` returns ``(mid, last)`` features. ``output_stride`` 16 or 8 dilates the last stages
    as DeepLab-style localizers and segmenters need.
    """

    def __init__(
        self,
        name: str = "resnet50",
        mid_index: int = -2,
        output_stride: int = 16,
        checkpoint: str | None = None,
        **timm_kwargs,
    ):
        super().__init__()
        probe = timm.create_model(name, pretrained=False, features_only=True, **timm_kwargs)
        n_levels = len(probe.feature_info)
        mid = mid_index % n_levels
        del probe
        features = timm.create_model(
            name,
            pretrained=False,
            features_only=True,
            out_indices=(mid, n_levels - 1),
            output_stride=output_stride,
            **timm_kwargs,
        )
        if checkpoint:
            load_backbone_checkpoint(features, checkpoint)
        self.mid_channels, self.out_channels = features.feature_info.channels()
        self.mid_reduction, self.out_reduction = features.feature_info.reduction()
        mid_module = features.feature_info.module_name()[0].replace(".", "_")
        names = list(features._modules)
        if mid_module not in names:
            raise ValueError(f"backbone {name!r}: cannot split at {mid_module!r}; use a CNN backbone")
        cut = names.index(mid_module) + 1
        self.to_mid = nn.Sequential(*[features._modules[n] for n in names[:cut]])
        self.mid_to_last = nn.Sequential(*[features._modules[n] for n in names[cut:]])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mid = self.to_mid(x)
        return mid, self.mid_to_last(mid)


def load_backbone_checkpoint(model: nn.Module, path: str | os.PathLike) -> None:
    """Load local weights non-strictly, reporting missing and unexpected keys (a classifier ``fc`` is expected)."""
    state = read_state_dict(path)
    own = model.state_dict()
    shape_mismatch = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if shape_mismatch:
        raise ValueError(
            f"{path}: {len(shape_mismatch)} tensors have other shapes than the backbone "
            f"(first: {shape_mismatch[0]}); is it a checkpoint of another architecture?"
        )
    result = model.load_state_dict(state, strict=False)
    if len(result.missing_keys) == len(own):
        raise ValueError(
            f"{path}: no tensor matches the backbone; is it a checkpoint of another architecture?"
        )
    print_log(
        f"loaded backbone weights from {path}: {len(own) - len(result.missing_keys)}/{len(own)} tensors; "
        f"missing {len(result.missing_keys)} {result.missing_keys[:5]}, "
        f"unexpected {len(result.unexpected_keys)} {result.unexpected_keys[:5]}",
        logger="current",
    )
