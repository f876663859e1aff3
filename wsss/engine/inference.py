"""Build a trained model from its config and checkpoint, for every tool that runs inference."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

from wsss.data.transforms import AlbuPipeline
from wsss.engine.checkpoint import checkpoint_weights, resolve_checkpoint
from wsss.engine.datasets import loader_config
from wsss.registry import MODELS


def load_model_weights(model: nn.Module, path: str | os.PathLike, config_name: str = "the config") -> None:
    """Load a checkpoint strictly, with an error that says when it belongs to another model or class count."""
    state = checkpoint_weights(path)
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


def build_model(cfg: Config) -> nn.Module:
    """``cfg.model`` built in the config's registry scope."""
    with DefaultScope.overwrite_default_scope(cfg.get("default_scope", "wsss")):
        return MODELS.build(cfg.model)


def model_from_checkpoint(
    cfg: Config,
    checkpoint: str | os.PathLike,
    device: str | torch.device = "cpu",
    needs: str | None = None,
    num_classes: int | None = None,
) -> nn.Module:
    """Build ``cfg.model``, load ``checkpoint`` (a .pth file or a training work dir) and return it in eval mode.

    ``needs`` names a method the tool calls (``class_maps`` for seeds, ``foreground_map`` for WSOL,
    ``tta_probs`` for segmenters), and ``num_classes`` the dataset's class count; a model without
    the method or with another count is refused with a line naming the config and checkpoint.
    """
    config_name = Path(cfg.filename).name if cfg.filename else "the config"
    model = build_model(cfg)
    if needs is not None and not hasattr(model, needs):
        raise ValueError(
            f"{config_name}: builds a {type(model).__name__}, which has no {needs}; "
            "give the config of the kind of model this tool runs"
        )
    path = resolve_checkpoint(checkpoint)
    load_model_weights(model, path, config_name=config_name)
    model_classes = getattr(model, "num_classes", None)
    if num_classes is not None and model_classes is not None and model_classes != num_classes:
        raise ValueError(
            f"{path}: the model has {model_classes} classes but the dataset has {num_classes}; "
            "use the data root and config the checkpoint was trained with"
        )
    return model.to(device).eval()


def classifier_from_checkpoint(
    cfg: Config,
    checkpoint: str | os.PathLike,
    device: str | torch.device,
    num_classes: int,
    needs: str = "logits",
) -> tuple[nn.Module, AlbuPipeline | None]:
    """A trained CAM/BAS classifier (see :func:`model_from_checkpoint`) and its config's test pipeline,
    so that images are seen at the size its validation images were."""
    model = model_from_checkpoint(cfg, checkpoint, device, needs=needs, num_classes=num_classes)
    pipeline = loader_config(cfg)["dataset"].get("pipeline")
    return model, AlbuPipeline(pipeline) if pipeline else None
