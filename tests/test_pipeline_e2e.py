"""The main job end to end on a tiny shapes dataset: every stage runs, the report holds real numbers."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tools.run_pipeline import main

REPO = Path(__file__).resolve().parents[1]
TINY = {"train_dataloader.batch_size": 8, "train_dataloader.num_workers": 0, "val_dataloader.num_workers": 0}


def test_pipeline_runs_every_stage_and_resumes(tmp_path, capsys):
    config = tmp_path / "tiny.py"
    config.write_text(
        f"_base_ = [{str(REPO / 'configs/pipeline/shapes.py')!r}]\n"
        "dataset = dict(n_train=24, n_val=8, size=64, seed=1)\n"
        f"localizer = dict(warmup_epochs=1, epochs=1, cfg_options={{'model.backbone.name': 'test_resnet', **{TINY!r}}})\n"
        "seeds = dict(scales=(1.0,))\n"
        f"segmenter = dict(epochs=1, cfg_options={{'model.encoder_name': 'tu-test_resnet', **{TINY!r}}})\n"
        "report = dict(examples=2)\n"
    )
    work = tmp_path / "work"
    assert main([str(config), "--work-dir", str(work)]) == 0
    report = json.loads((work / "report.json").read_text())
    pseudo = json.loads((work / "pseudo_labels.json").read_text())
    assert report["pseudo_label_miou"] == pseudo["mIoU"]
    assert report["segmenter_miou"] == json.loads((work / "segmenter_seg.json").read_text())["mIoU"]
    assert 0 <= report["upper_bound_miou"] <= 100
    names = (work / "shapes" / "class_names.txt").read_text().split()
    assert list(report["per_class_iou"]["segmenter"]) == names
    source = report["pseudo_label_source"]["localizer"]
    assert set(report["seed_miou"]) == {"bas", "cam", "fused"}
    assert report["seed_miou"][source] == max(report["seed_miou"].values())  # seeds.source = 'best'
    assert len(list((work / "seeds_fused").glob("*.npz"))) == 24
    assert len(list((work / "pseudo_labels").glob("*.png"))) == 24
    assert "| pseudo labels (train;" in (work / "report.md").read_text()
    with Image.open(work / "report.png") as figure:
        assert figure.width > 300 and figure.height > 200
    capsys.readouterr()

    assert main([str(config), "--work-dir", str(work)]) == 0  # everything done: every stage skipped
    out = capsys.readouterr().out
    assert out.count("[skip]") == len(report["stage_seconds"]) and "[start]" not in out
