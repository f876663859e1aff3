"""The synthetic stage group of configs/pipeline/shapes_synth.py end to end at tiny size (tiny models,
a few steps, 32 px): generator, both prompt variants, filter, seeds and pseudo labels of the synthetic
images, mixed segmenters and the report rows; and the commands its stages build."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mmengine.config import Config

from wsss.cli.run_pipeline import main

REPO = Path(__file__).resolve().parents[1]
TINY = {"train_dataloader.batch_size": 8, "train_dataloader.num_workers": 0, "val_dataloader.num_workers": 0}
LOCALIZER = {"model.backbone.name": "test_resnet", **TINY}
SEGMENTER = {"model.encoder_name": "tu-test_resnet", **TINY}
GENERATOR = {"model.text_encoder.dim": 16, "model.text_encoder.layers": 1, "model.text_encoder.heads": 2,
             "model.unet.channels": (8, 16, 16), "model.default_steps": 2, "train_dataloader.batch_size": 8}  # fmt: skip
DROPPED = ["train_features", "features", "debias", "eval_debiased", "train_seg_mars", "test_seg_mars",
           "context_seg_mars", "train_upper", "test_upper", "predict_train", "figure"]  # fmt: skip


def tiny_config(tmp_path: Path) -> Path:
    config = tmp_path / "tiny_synth.py"
    dropped = "".join(f"    {name}=None,\n" for name in DROPPED)
    config.write_text(
        f"_base_ = [{str(REPO / 'configs/pipeline/shapes_synth.py')!r}]\n"
        "stages = dict(\n"
        "    data=dict(n_train=16, n_val=6, size=32, seed=1),\n"
        f"    train_cam=dict(iters=2, cfg_options={LOCALIZER!r}),\n"
        f"    train_bas=dict(iters=2, cfg_options={LOCALIZER!r}),\n"
        f"    train_cam_more=dict(iters=2, cfg_options={LOCALIZER!r}),\n"
        "    seeds_bas=dict(scales=(1.0,), base_size=32), seeds_cam=dict(scales=(1.0,), base_size=32),\n"
        "    seeds_synth_natural=dict(scales=(1.0,), base_size=32), seeds_synth_balanced=dict(scales=(1.0,), base_size=32),\n"
        "    pseudo_labels=dict(crf=False), pseudo_synth_natural=dict(crf=False), pseudo_synth_balanced=dict(crf=False),\n"
        f"    train_generator=dict(iters=2, cfg_options={GENERATOR!r}),\n"
        "    plan_natural=dict(n=12), plan_balanced=dict(n=12),\n"
        # a random classifier agrees with few images: keep every one whose prompted classes score above 0.01
        "    filter_natural=dict(threshold=0.01, reject=None), filter_balanced=dict(threshold=0.01, reject=None),\n"
        f"    train_seg=dict(iters=2, cfg_options={SEGMENTER!r}),\n"
        f"    train_seg_synth=dict(iters=2, cfg_options={SEGMENTER!r}),\n"
        f"    train_seg_synth_balanced=dict(iters=2, cfg_options={SEGMENTER!r}),\n"
        f"{dropped})\n"
    )
    return config


# About 35 stages of a few seconds each: five minutes on a shared 2-core CPU, so opt-in; the stages'
# commands are checked in tests/test_synth_stages.py and each tool on tiny inputs in its own tests.
@pytest.mark.skipif(
    not os.environ.get("WSSS_SLOW_TESTS"), reason="5 minutes on 2 cores; set WSSS_SLOW_TESTS=1"
)
def test_synthetic_group_runs_end_to_end(tmp_path, capsys):
    config = tiny_config(tmp_path)
    work = tmp_path / "work"
    assert main([str(config), "--work-dir", str(work), "--jobs", "1"]) == 0
    report = json.loads((work / "report.json").read_text())
    for key, stage in (("segmenter_miou", "test_seg"), ("segmenter_synth_miou", "test_seg_synth"),
                       ("segmenter_synth_balanced_miou", "test_seg_synth_balanced")):  # fmt: skip
        assert report[key] == json.loads((work / stage / "result.json").read_text())["mIoU"]
    for variant, stage in (
        ("without", "test_seg"),
        ("natural", "test_seg_synth"),
        ("balanced", "test_seg_synth_balanced"),
    ):
        result = json.loads((work / stage / "result.json").read_text())
        assert report["synthetic"]["boat_iou"][variant] == next(
            r["IoU"] for r in result["per_class"] if r["class"] == "boat"
        )
    context = json.loads((work / "context_seg_synth_balanced" / "result.json").read_text())["context_share"]
    shares = report["synthetic"]["water_as_boat"]
    assert shares["balanced"] == (
        None if context["water"]["share"] is None else 100 * context["water"]["share"]
    )
    assert set(report["synthetic"]["rails_as_train"]) == {"without", "natural", "balanced"}
    assert set(report["context_share"]) >= {"context_seg", "context_seg_synth", "context_seg_synth_balanced"}
    # The synthetic folders: 12 images each, the kept ones listed, scores in the manifest, labels for each kept one.
    for variant in ("natural", "balanced"):
        folder = work / f"gen_{variant}"
        manifest = json.loads((folder / "manifest.json").read_text())
        kept = (folder / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
        assert manifest["filter"]["total"] == 12 and manifest["filter"]["kept"] == len(kept) > 0
        assert all("scores" in manifest["images"][i]["filter"] for i in manifest["images"])
        assert sorted(p.stem for p in (work / f"pseudo_synth_{variant}").glob("*.png")) == sorted(kept)
        assert report["outputs"]["synthetic"][variant] == str(folder)
        assert report["synthetic"]["kept_share"][variant] == 100 * len(kept) / 12
    prompts = [
        json.loads(line) for line in (work / "plan_balanced" / "prompts.jsonl").read_text().splitlines()
    ]
    assert len(prompts) == 12 and all(p["classes"] for p in prompts)
    dumped = Config.fromfile(str(work / "train_seg_synth" / "deeplabv3plus_shapes_mixed.py"))
    assert dumped.train_dataloader.dataset.datasets[1].data_root == str(work / "gen_natural")
    assert dumped.train_dataloader.sampler.ratios == (1.0, 0.5)
    markdown = (work / "report.md").read_text()
    assert "| boat IoU (val), counter-bias prompts |" in markdown
    assert "| segmenter with synthetic images, natural prompts (val) |" in markdown
    capsys.readouterr()
    assert main([str(config), "--work-dir", str(work)]) == 0  # everything done: every stage skipped
    assert "[start]" not in capsys.readouterr().out
