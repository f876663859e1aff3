"""The main job end to end on a tiny shapes dataset: every stage runs, the report holds real numbers,
a second run skips everything, and the commands --dry-run prints, run by hand, give the same files."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from wsss.cli.prepare_coco import main as prepare_main
from wsss.cli.run_pipeline import main
from wsss.parallel import usable_cores

REPO = Path(__file__).resolve().parents[1]
TINY = {"train_dataloader.batch_size": 8, "train_dataloader.num_workers": 0, "val_dataloader.num_workers": 0}
LOCALIZER = {"model.backbone.name": "test_resnet", **TINY}
SEGMENTER = {"model.encoder_name": "tu-test_resnet", **TINY}
FEATURES = {
    "model.width": 4,
    "model.feature_dim": 8,
    "train_dataloader.batch_size": 8,
    "train_dataloader.num_workers": 0,
}


def tiny_config(tmp_path: Path, base: str = "shapes.py", data: str = "data=dict(n_train=24, n_val=8, size=64, seed=1),",
                extra: str = "") -> Path:  # fmt: skip
    """The pipeline config ``base`` with tiny models and a few steps per stage."""
    config = tmp_path / "tiny.py"
    config.write_text(
        f"_base_ = [{str(REPO / 'configs/pipeline' / base)!r}]\n{extra}"
        "stages = dict(\n"
        f"    {data}\n"
        f"    train_cam=dict(iters=3, floor=None, cfg_options={LOCALIZER!r}),\n"  # 3 steps learn nothing
        f"    train_bas=dict(iters=3, cfg_options={LOCALIZER!r}),\n"
        f"    train_cam_more=dict(iters=3, cfg_options={LOCALIZER!r}),\n"
        "    seeds_bas=dict(scales=(1.0,)), seeds_cam=dict(scales=(1.0,)),\n"
        f"    train_seg=dict(iters=3, cfg_options={SEGMENTER!r}),\n"
        f"    train_upper=dict(iters=3, floor=None, cfg_options={SEGMENTER!r}),\n"
        f"    train_seg_mars=dict(iters=3, cfg_options={SEGMENTER!r}),\n"
        f"    train_features=dict(iters=3, cfg_options={FEATURES!r}),\n"
        "    features=dict(scales=(1.0,)),\n"
        "    figure=dict(n=2),\n"
        ")\n"
    )
    return config


def test_pipeline_runs_every_stage_resumes_and_matches_its_dry_run(tmp_path, capsys):
    config = tiny_config(tmp_path)
    work = tmp_path / "work"
    assert main([str(config), "--work-dir", str(work), "--jobs", "1"]) == 0  # every stage on all cores
    report = json.loads((work / "report.json").read_text())
    pseudo = json.loads((work / "eval_pseudo" / "result.json").read_text())
    assert report["pseudo_label_miou"] == pseudo["mIoU"]
    assert report["segmenter_miou"] == json.loads((work / "test_seg" / "result.json").read_text())["mIoU"]
    assert 0 <= report["upper_bound_miou"] <= 100 and report["upper_bound"]["stage"] == "test_upper"
    assert (
        report["relative_to_upper_bound"]["test_seg"] == report["segmenter_miou"] / report["upper_bound_miou"]
    )
    names = (work / "data" / "class_names.txt").read_text().split()
    assert list(report["per_class_iou"]["test_seg"]) == names == report["classes"]
    assert set(report["seed_miou"]) == {"bas", "cam", "fused"}
    chosen = report["stages"]["pseudo_labels"]["outputs"]["seeds_stage"]  # the best swept seeds
    assert report["seed_miou"][chosen.removeprefix("seeds_")] == max(report["seed_miou"].values())
    assert 0 <= report["classifier_map"] <= 100
    # MARS: debiased labels and the complemented segmenter, with the folders the report names.
    debiased = json.loads((work / "eval_debiased" / "result.json").read_text())
    assert report["debiased_pseudo_label_miou"] == debiased["mIoU"]
    assert (
        report["segmenter_mars_miou"]
        == json.loads((work / "test_seg_mars" / "result.json").read_text())["mIoU"]
    )
    assert report["outputs"] == {"pseudo_labels": str(work / "pseudo_labels"), "debiased_labels": str(work / "debias"),
                                 "val_predictions": {"baseline": str(work / "test_seg"), "mars": str(work / "test_seg_mars")}}  # fmt: skip
    assert set(report["context_share"]["eval_debiased"]) == {"water_as_boat", "rails_as_train"}
    assert set(report["errors"]["test_seg_mars"]) == {"IoU", "FP_ratio", "FN_ratio"}
    assert len(list((work / "seeds_fused").glob("*.npz"))) == 24
    assert len(list((work / "pseudo_labels").glob("*.png"))) == 24
    markdown = (work / "report.md").read_text()
    assert "| pseudo labels (train, CRF) |" in markdown and "% of the upper bound" in markdown
    with Image.open(work / "figure" / "figure.png") as figure:
        assert figure.width > 300 and figure.height > 200
    capsys.readouterr()

    assert main([str(config), "--work-dir", str(work)]) == 0  # everything done: every stage skipped
    out = capsys.readouterr().out
    assert out.count("[skip]") == len(report["stage_seconds"]) and "[start]" not in out

    # The dry run's commands are the ones the pipeline ran; run by hand into another folder (with as
    # many threads as the pipeline gave each stage) they make the same data, seeds and pseudo labels.
    by_hand = tmp_path / "by_hand"
    assert main([str(config), "--work-dir", str(by_hand), "--dry-run"]) == 0
    commands = capsys.readouterr().out.splitlines()
    recorded = [
        json.loads((work / "stages" / f"{name}.json").read_text())["command"] for name in report["stages"]
    ]
    assert [c.replace(str(by_hand), str(work)) for c in commands] == recorded
    for command in commands[: list(report["stages"]).index("eval_pseudo") + 1]:
        env = {**os.environ, "OMP_NUM_THREADS": str(usable_cores())}
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    for name in sorted(p.name for p in (work / "pseudo_labels").glob("*.png")):
        assert (by_hand / "pseudo_labels" / name).read_bytes() == (work / "pseudo_labels" / name).read_bytes()
    assert json.loads((by_hand / "eval_pseudo" / "result.json").read_text()) == pseudo


COCO_MINI = REPO.parent / "shared" / "datasets" / "coco-mini"


def test_coco_cpu_pipeline_runs_real_photographs_of_81_classes(tmp_path):
    """configs/pipeline/coco_cpu.py on COCO photographs (prepare_coco's layout, renamed splits): every
    stage runs, heads have 81 classes and predictions are scored at each photograph's own size."""
    ann = COCO_MINI / "annotations" / "instances_train2017.json"
    if not ann.is_file():
        pytest.skip("shared/datasets/coco-mini is not available")
    data = tmp_path / "coco"
    assert (
        prepare_main(["--ann", str(ann), "--images", str(COCO_MINI / "train2017"), "--out", str(data)]) == 0
    )
    lists = data / "ImageSets" / "Segmentation"
    ids = (lists / "train2017.txt").read_text().split()[:12]
    (lists / "fit.txt").write_text("\n".join(ids[:8]) + "\n")
    (lists / "holdout.txt").write_text("\n".join(ids[8:]) + "\n")
    config = tiny_config(
        tmp_path, "coco_cpu.py", data="", extra="splits = dict(train='fit', val='holdout')\n"
    )
    work = tmp_path / "work"
    assert main([str(config), "--work-dir", str(work), "--data-root", str(data), "--jobs", "1"]) == 0
    report = json.loads((work / "report.json").read_text())
    assert len(report["classes"]) == 81 and report["context_share"] == {}
    for key in (
        "classifier_map",
        "pseudo_label_miou",
        "segmenter_miou",
        "segmenter_mars_miou",
        "upper_bound_miou",
    ):
        assert 0 <= report[key] <= 100
    assert sorted(p.stem for p in (work / "pseudo_labels").glob("*.png")) == sorted(ids[:8])
    for image_id in ids[8:]:  # predictions of the held-out photographs, at their own size
        with (
            Image.open(work / "test_seg" / f"{image_id}.png") as pred,
            Image.open(data / "JPEGImages" / f"{image_id}.jpg") as image,
        ):
            assert pred.size == image.size
