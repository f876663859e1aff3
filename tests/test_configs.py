"""Every shipped config parses, and the pipeline variants differ from the default only where they say."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
USER_CONFIGS = sorted(p for p in CONFIGS.rglob("*.py") if "_base_" not in p.parts)


@pytest.mark.parametrize("path", USER_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_parses(path):
    cfg = Config.fromfile(str(path))
    assert "model" in cfg or "localizer" in cfg  # a model config or a pipeline config


def test_shapes_1k_pipeline_only_doubles_the_data():
    default = Config.fromfile(str(CONFIGS / "pipeline" / "shapes.py"))
    larger = Config.fromfile(str(CONFIGS / "pipeline" / "shapes_1k.py"))
    assert (larger.dataset.n_train, larger.dataset.n_val) == (1000, 200)
    assert (larger.dataset.size, larger.dataset.seed) == (default.dataset.size, default.dataset.seed)
    for key in ("localizer", "seeds", "pseudo_labels", "segmenter"):
        assert larger[key] == default[key]
