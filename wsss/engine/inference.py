"""Build a trained model from its config and checkpoint, for every tool that runs inference."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

import wsss.models  # noqa: F401  (registers the models)
from wsss.engine.checkpoint import load_from_local_safely
from wsss.registry import MODELS


def checkpoint_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The model weights of an mmengine checkpoint (or of a bare state dict file), read safely."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found; pass the .pth file written by tools/train.py")
    checkpoint = load_from_local_safely(str(path), map_location="cpu")
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a model checkpoint (no state_dict)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_model_weights(model: nn.Module, path: str | os.PathLike, config_name: str = "the config") -> None:
    """Load a checkpoint strictly, with an error that says when it belongs to another model or class count."""
    state = checkpoint_state_dict(path)
    own = model.state_dict()
    mismatched = [
        (k, tuple(v.shape), tuple(own[k].shape))
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        key, theirs, ours = mismatched[0]
        raise ValueError(
            f"{path}: tensor {key} has shape {theirs} but {config_name} builds {ours}; the checkpoint was trained "
            "with another class count or model (use the config it was trained with, or --data-root of its dataset)"
        )
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"{path}: does not match {config_name}'s {type(model).__name__} "
            f"({len(missing)} missing tensors, e.g. {missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]}); "
            "use the config the checkpoint was trained with"
        )
    model.load_state_dict(state, strict=True)


def model_from_checkpoint(
    cfg: Config, checkpoint: str | os.PathLike, device: str | torch.device = "cpu"
) -> nn.Module:
    """Build ``cfg.model``, load ``checkpoint`` into it, and return it on ``device`` in eval mode."""
    scope = cfg.get("default_scope", "wsss")
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    load_model_weights(
        model, checkpoint, config_name=Path(cfg.filename).name if cfg.filename else "the config"
    )
    return model.to(device).eval()
