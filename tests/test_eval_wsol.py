"""tools/eval_wsol.py and the Runner's WSOLMetric validation on a tiny CUB tree, boxes in the original frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image

from wsss.cli import eval_wsol
from wsss.cli import train as train_tool
from wsss.engine.config import load_config
from wsss.localize.bas_wsol import BASWSOL
from wsss.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "eval_wsol.py"
CONFIG = REPO / "configs" / "bas" / "bas_wsol_r50_cub.py"
TINY = {
    "model.backbone.name": "test_resnet",
    "model.backbone.checkpoint": None,
    "model.num_classes": 2,
    "model.head_channels": 8,
    "wsol_test_dataloader.num_workers": 0,
    "val_dataloader.batch_size": 2,
    "val_dataloader.num_workers": 0,
    "val_dataloader.persistent_workers": False,
}
METRIC_KEYS = ("top1_loc", "top5_loc", "gt_known_loc", "top1_cls", "max_box_acc_v2")
TINY_ARGS = ["--cfg-options", *(f"{k}={v}" for k, v in TINY.items())]
# (width, height, box x, y, w, h, 1-based class, is_train) of each image; test boxes sit off-centre
# in non-square images so that a box read in another frame (224x224 or the map's 28x28) misses.
IMAGES = [
    (80, 40, 50, 10, 20, 20, 1, 0),
    (60, 90, 5, 55, 30, 25, 1, 0),
    (100, 50, 10, 5, 25, 30, 1, 0),
    (64, 48, 10, 10, 30, 20, 2, 1),
]


@pytest.fixture
def cub(tmp_path: Path) -> Path:
    """A CUB-200-2011 layout: dark images with one bright box each, two classes, three test images."""
    root = tmp_path / "CUB_200_2011"
    (root / "images" / "001.Gull").mkdir(parents=True)
    tables = {
        "images.txt": "",
        "image_class_labels.txt": "",
        "train_test_split.txt": "",
        "bounding_boxes.txt": "",
    }
    for index, (width, height, x, y, w, h, label, is_train) in enumerate(IMAGES, start=1):
        image = np.full((height, width, 3), 20, np.uint8)
        image[y : y + h, x : x + w] = 235
        Image.fromarray(image).save(root / "images" / "001.Gull" / f"g{index}.png")
        tables["images.txt"] += f"{index} 001.Gull/g{index}.png\n"
        tables["image_class_labels.txt"] += f"{index} {label}\n"
        tables["train_test_split.txt"] += f"{index} {is_train}\n"
        tables["bounding_boxes.txt"] += f"{index} {x}.0 {y}.0 {w}.0 {h}.0\n"
    for name, text in tables.items():
        (root / name).write_text(text)
    (root / "classes.txt").write_text("1 001.Gull\n2 002.Tern\n")
    return root


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    cfg = load_config(CONFIG, cfg_options=TINY)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope("wsss"):
        model = MODELS.build(cfg.model)
    path = tmp_path / "bas_wsol.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return path


def evaluate(cub: Path, checkpoint: Path, *extra: str, config: Path = CONFIG) -> int:
    """Run the tool in this process; ``extra`` comes last, so its --cfg-options win."""
    return eval_wsol.main([str(config), str(checkpoint), "--data-root", str(cub), "--device", "cpu", "--no-progress",
                    *TINY_ARGS, *extra])  # fmt: skip


def test_random_model_end_to_end(cub, checkpoint, tmp_path, capsys):
    out = tmp_path / "out" / "wsol.json"
    evaluate(cub, checkpoint, "--json", str(out), "--topk", "2")
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["num_images"] == 3 and data["topk"] == 2 and data["threshold"] == 0.1
    for key in ("top1_cls", "top1_loc", "top5_loc", "gt_known_loc", "max_box_acc_v2"):
        assert 0.0 <= data[key] <= 100.0 and data[key] * 3 / 100 == pytest.approx(round(data[key] * 3 / 100))
    assert data["top1_loc"] <= min(data["top1_cls"], data["gt_known_loc"])
    assert data["top5_loc"] == data["gt_known_loc"]  # two classes: the class is always among the top 5
    assert set(data["max_box_acc_per_iou"]) == {"0.3", "0.5", "0.7"}
    assert data["max_box_acc_v2"] == pytest.approx(np.mean(list(data["max_box_acc_per_iou"].values())))
    assert f"GT-known Loc  {data['gt_known_loc']:6.2f}" in printed
    assert list(out.parent.iterdir()) == [out]  # no temporary file left


def test_train_tool_validates_with_wsol_metric_like_eval_wsol(cub, tmp_path, capsys):
    work_dir = tmp_path / "work"
    train_tool.main([str(CONFIG), "--data-root", str(cub), "--work-dir", str(work_dir), "--cfg-options",
                     *TINY_ARGS[1:], "train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False",
                     "train_dataloader.batch_size=2", "train_cfg.max_epochs=1", "val_evaluator.threshold=0.25",
                     "experiment_name=bas_wsol_tiny_cub"])  # fmt: skip
    # The Runner validated after the (last) epoch and logged the metric's figures.
    (scalars,) = work_dir.glob("*/vis_data/scalars.json")
    logged = [json.loads(line) for line in scalars.read_text().splitlines()]
    (validation,) = [entry for entry in logged if "wsol/gt_known_loc" in entry]
    capsys.readouterr()
    # The offline tool on the checkpoint of that epoch gives the same numbers (at threshold 0.25 this tiny
    # model finds some test boxes and misses others, so a box lost on either path shows).
    out = tmp_path / "wsol.json"
    evaluate(cub, work_dir / "epoch_1.pth", "--batch-size", "2", "--threshold", "0.25", "--json", str(out))
    assert "3 images, threshold 0.25, top-k 1" in capsys.readouterr().out
    offline = json.loads(out.read_text())
    for key in METRIC_KEYS:
        assert validation[f"wsol/{key}"] == pytest.approx(offline[key]), key


def bright_regions(self, inputs):
    """Maps that light up exactly where the (resized) input is bright; class 0 scores highest."""
    brightness = inputs.mean(dim=1, keepdim=True)
    fpm = F.adaptive_avg_pool2d(brightness, (28, 28))
    fpm = (fpm - fpm.amin(dim=(2, 3), keepdim=True)) / (
        fpm.amax(dim=(2, 3), keepdim=True) - fpm.amin(dim=(2, 3), keepdim=True)
    )
    cam = torch.tensor([5.0, -5.0]).view(1, 2, 1, 1).expand(len(inputs), 2, 14, 14)
    return brightness, cam, fpm.expand(-1, 2, -1, -1)


def test_boxes_are_measured_in_the_original_frame(cub, checkpoint, monkeypatch, capsys):
    monkeypatch.setattr(BASWSOL, "extract", bright_regions)
    evaluate(cub, checkpoint, "--threshold", "0.5")
    printed = capsys.readouterr().out
    # Every test box is found (IoU >= 0.7 at the best threshold), with the right class.
    assert "Top-1 Loc     100.00" in printed and "GT-known Loc  100.00" in printed
    assert "IoU 0.7: 100.00" in printed


def test_runner_validation_measures_boxes_in_the_original_frame(cub, tmp_path, monkeypatch):
    monkeypatch.setattr(BASWSOL, "extract", bright_regions)
    cfg = load_config(CONFIG, data_root=cub, cfg_options={**TINY, "val_evaluator.threshold": 0.5})
    cfg.work_dir, cfg.experiment_name = str(tmp_path / "val"), "bas_wsol_tiny_cub_val"
    metrics = Runner.from_cfg(cfg).val()
    assert metrics == {f"wsol/{key}": pytest.approx(100.0) for key in METRIC_KEYS}


def test_bad_inputs(tool_error, cub, checkpoint, tmp_path):
    tool_error(evaluate(cub, tmp_path / "nope.pth"), f"error: {tmp_path / 'nope.pth'}: checkpoint not found")
    tool_error(
        evaluate(cub, checkpoint, "--cfg-options", "model.num_classes=3"),
        r"bas_wsol.pth: tensor .* has shape .*another class count",
    )
    cropping = tmp_path / "cropping.py"
    cropping.write_text(
        f"_base_ = [{str(CONFIG)!r}]\n"
        "wsol_test_dataloader = dict(dataset=dict(pipeline=[dict(type='CenterCrop', height=8, width=8)]))\n"
    )
    tool_error(evaluate(cub, checkpoint, config=cropping), "the test pipeline has CenterCrop, which move")


@pytest.mark.parametrize(
    "table, line, message",
    [
        (
            "image_class_labels.txt",
            "3 7",
            r"image_class_labels.txt: class 7 is beyond the 2 classes of .*classes.txt",
        ),
        (
            "image_class_labels.txt",
            None,
            r"image_class_labels.txt: no line for 1 of the 4 images .*\(first: 3\)",
        ),
        ("image_class_labels.txt", "3 two", r"image_class_labels.txt: line 3: 'two' is not a number"),
        ("image_class_labels.txt", "3", r"image_class_labels.txt: line 3: expected 'id class', got '3'"),
        ("bounding_boxes.txt", None, r"bounding_boxes.txt: no box for 1 of the 3 test images \(first: 3\)"),
        ("bounding_boxes.txt", "3 10.0 5.0 -4.0 30.0", r"bounding_boxes.txt: line 3: box of size -4x30"),
        (
            "bounding_boxes.txt",
            "3 10.0 5.0 nan 30.0",
            r"bounding_boxes.txt: line 3: 'nan' is not a finite number",
        ),
        ("train_test_split.txt", None, r"train_test_split.txt: no line for 1 of the 4 images"),
        (
            "train_test_split.txt",
            "3 yes",
            r"train_test_split.txt: line 3: 'yes' must be 1 \(train\) or 0 \(test\)",
        ),
        ("images.txt", "3", r"images.txt: line 3: expected 'id relative/path.jpg', got '3'"),
    ],
)
def test_bad_cub_lines_are_named_by_file_and_line(tool_error, cub, checkpoint, table, line, message):
    """Issue 14, finding 10: image 3 (a test image) gets a bad or missing line in one table."""
    path = cub / table
    lines = path.read_text().splitlines()
    lines = [
        line if row.split()[0] == "3" else row for row in lines if line is not None or row.split()[0] != "3"
    ]
    path.write_text("\n".join(lines) + "\n")
    tool_error(evaluate(cub, checkpoint), f"^error: {cub}/{message}")


def test_an_empty_or_random_checkpoint_is_one_line(tool_error, cub, tmp_path):
    """Issue 14, finding 4: empty files and random bytes gave a traceback or 'Unsupported operand'."""
    empty, noise = tmp_path / "empty.pth", tmp_path / "noise.pth"
    empty.write_bytes(b"")
    noise.write_bytes(np.random.default_rng(1).bytes(2048))
    tool_error(evaluate(cub, empty), rf"^error: {empty}: the checkpoint file is empty")
    tool_error(evaluate(cub, noise), rf"^error: {noise}: not a checkpoint \(neither a torch zip archive")
