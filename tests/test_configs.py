"""Every shipped config works: each model config builds (tiny backbone) and runs a forward pass in every
mode it has; each pipeline config builds its stage graph and prints runnable commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from wsss.debias.run import load_settings
from wsss.engine.inference import build_model
from wsss.features.base import FeatureModel
from wsss.pipeline.runner import PipelineRunner, make_context
from wsss.synth.flow.model import RectifiedFlow

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
USER_CONFIGS = sorted(p for p in CONFIGS.rglob("*.py") if "_base_" not in p.parts)
MODEL_CONFIGS = [p for p in USER_CONFIGS if "model" in Config.fromfile(str(p))]
PIPELINE_CONFIGS = [p for p in USER_CONFIGS if "stages" in Config.fromfile(str(p))]
MARS_CONFIGS = [p for p in USER_CONFIGS if "mars" in Config.fromfile(str(p))]


def test_every_config_is_a_model_a_pipeline_or_debiasing_settings():
    assert set(MODEL_CONFIGS) | set(PIPELINE_CONFIGS) | set(MARS_CONFIGS) == set(USER_CONFIGS)


@pytest.mark.parametrize("path", MARS_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_mars_config_gives_valid_settings(path):
    settings = load_settings(dict(Config.fromfile(str(path)).mars))
    assert (settings.k_fg, settings.k_bg, settings.alpha) == (2, 2, 0.4)  # the paper's values


def tiny(cfg: Config) -> Config:
    """The config with timm's tiny test backbone and no weight files, so it builds in a second."""
    model = cfg.model
    tiny_vit = dict(weights=None, vit_kwargs=dict(embed_dim=16, depth=1, num_heads=2))
    if model.type == "DinoViT":
        model.update(tiny_vit)
    elif model.type == "STEGO":
        model.backbone.update(tiny_vit)
    elif "backbone" in model:
        model.backbone.update(name="test_resnet", checkpoint=None)
    if "encoder_name" in model:
        model.update(encoder_name="tu-test_resnet", backbone_checkpoint=None)
    return cfg


def check_feature_model_runs(model: FeatureModel) -> None:
    """Features on the stride's grid; a model that learns gives a finite loss from images alone."""
    images = torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8)
    inputs = model.data_preprocessor({"inputs": images, "data_samples": []})["inputs"]
    with torch.no_grad():
        features = model(inputs, mode="tensor")
    assert features.shape == (2, model.feature_dim, 64 // model.stride, 64 // model.stride)
    if model.needs_checkpoint:
        model.train()
        assert torch.isfinite(sum(model(inputs, [{}, {}], mode="loss").values()))


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_model_config_builds_and_runs_forward(path):
    cfg = tiny(Config.fromfile(str(path)))
    cfg.setdefault("default_scope", "wsss")
    model = build_model(cfg).eval()
    if isinstance(model, FeatureModel):
        check_feature_model_runs(model)
        return
    if isinstance(model, RectifiedFlow):  # trained, loaded and sampled in test_synth_flow.py
        assert model.image_size == cfg.model.image_size
        return
    num_fg = model.num_classes - (0 if type(model).__name__ == "BASWSOL" else 1)
    images = torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8)
    cls_label = torch.zeros(2, num_fg)
    cls_label[:, 0] = 1
    samples = [{"cls_label": cls_label[i], "gt_label": 0, "gt_seg": torch.zeros(64, 64, dtype=torch.long),
                "ori_shape": (64, 64), "gt_bboxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]])} for i in range(2)]  # fmt: skip
    data = model.data_preprocessor({"inputs": images, "data_samples": samples})
    with torch.no_grad():
        outputs = model(data["inputs"], data["data_samples"], mode="predict")
    assert len(outputs) == 2
    model.train()
    losses = model(data["inputs"], data["data_samples"], mode="loss")
    loss = sum(value for key, value in losses.items() if "loss" in key)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("path", PIPELINE_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_pipeline_config_builds_its_stages(path, tmp_path):
    cfg = Config.fromfile(str(path))
    data_root = None
    if not cfg.stages.get("data"):  # a pipeline on the user's data (coco_cpu.py) needs --data-root
        data_root = tmp_path / "data"
        data_root.mkdir()
    ctx, stages = make_context(cfg, path, tmp_path / "work", data_root)
    commands = PipelineRunner(stages, ctx).dry_run()
    assert len(commands) == len(stages) and all(" -m wsss.cli." in command for command in commands)
    names = [stage.name for stage in stages]
    for stage in stages:  # every stage comes after those it needs
        assert all(names.index(need) < names.index(stage.name) for need in stage.needs())


def test_shapes_1k_pipeline_only_doubles_the_data(tmp_path):
    default = Config.fromfile(str(CONFIGS / "pipeline" / "shapes.py"))
    larger = Config.fromfile(str(CONFIGS / "pipeline" / "shapes_1k.py"))
    assert (larger.stages.data.n_train, larger.stages.data.n_val) == (1000, 200)
    for name, entry in default.stages.items():
        if name != "data":
            assert larger.stages[name] == entry
