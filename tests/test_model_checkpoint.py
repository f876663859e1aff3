"""Loading trained checkpoints for inference: exact weights, and clear errors for the wrong model."""

from __future__ import annotations

import pytest
import torch
from mmengine.registry import DefaultScope

from wsss.engine.config import load_config
from wsss.engine.inference import model_from_checkpoint
from wsss.registry import MODELS

TINY_BACKBONE = {"model.backbone.name": "test_resnet"}


def build(config: str, **options):
    cfg = load_config(config, cfg_options={**TINY_BACKBONE, **options})
    with DefaultScope.overwrite_default_scope("wsss"):
        return cfg, MODELS.build(cfg.model)


def test_checkpoint_round_trip_and_wrong_model_errors(tmp_path):
    cfg, cam = build("configs/bas/cam_shapes.py")
    path = tmp_path / "cam.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in cam.state_dict().items()}, "meta": {}}, path)
    loaded = model_from_checkpoint(cfg, path)
    assert not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(cam.state_dict().values(), loaded.state_dict().values()))

    other_classes, _ = build("configs/bas/cam_shapes.py", **{"model.num_classes": 4})
    with pytest.raises(ValueError, match=r"cam.pth: tensor classifier.weight has shape \(6, .*builds \(3, "):
        model_from_checkpoint(other_classes, path)
    bas_cfg, _ = build("configs/bas/bas_shapes.py")
    with pytest.raises(ValueError, match="does not match bas_shapes.py's BAS .*generator.weight"):
        model_from_checkpoint(bas_cfg, path)
    with pytest.raises(FileNotFoundError, match="missing.pth: checkpoint not found"):
        model_from_checkpoint(cfg, tmp_path / "missing.pth")
