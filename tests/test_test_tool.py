"""tools/test.py: scores recomputed independently, original-size PNGs, TTA, CRF, overlays, resume, DDP, errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from PIL import Image

from wsss.cli import test as test_tool
from wsss.engine.config import load_config
from wsss.evaluation.confusion import ConfusionMatrix
from wsss.evaluation.folders import evaluate_label_folders
from wsss.registry import MODELS
from wsss.segment.model import TTA_SCALES
from wsss.visualize.overlay import comparison_panel

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "test.py"
SEG_SHAPES = REPO / "configs" / "seg" / "deeplabv3plus_shapes.py"
SEG_COCO = REPO / "configs" / "seg" / "deeplabv3plus_r101_coco.py"
SEG_VOC = REPO / "configs" / "seg" / "deeplabv3plus_r101_voc.py"
VOC_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "voc-sample"
TINY_MODEL = {"model.encoder_name": "tu-test_resnet", "model.decoder_channels": 32}
# The test pipeline shrinks the 48x48 images to 32x48 (both multiples of the output stride 16).
TEST_HEIGHT, TEST_WIDTH = 32, 48
IMAGENET_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
IMAGENET_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    """The shapes Segmenter config with timm's test ResNet, no loader workers and a resizing test pipeline."""
    path = tmp_path / "seg_tiny.py"
    path.write_text(
        f"_base_ = [{str(SEG_SHAPES)!r}]\n"
        'model = dict(encoder_name="tu-test_resnet", decoder_channels=32)\n'
        "test_dataloader = dict(num_workers=0, dataset=dict(pipeline=["
        f'dict(type="Resize", height={TEST_HEIGHT}, width={TEST_WIDTH})]))\n',
        encoding="utf-8",
    )
    return path


def save_random_segmenter(config: Path, data_root: Path, path: Path, **options) -> torch.nn.Module:
    """Build the config's Segmenter with random weights (seed 0), save it as a checkpoint, return it."""
    cfg = load_config(config, data_root=data_root, cfg_options={**TINY_MODEL, **options})
    cfg.model.backbone_checkpoint = None
    with DefaultScope.overwrite_default_scope("wsss"):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return model.eval()


def split_ids(root: Path, split: str) -> list[str]:
    return (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()


def normalised(image: np.ndarray) -> torch.Tensor:
    """``(1, 3, H, W)`` float tensor of an RGB uint8 image, ImageNet-normalised by hand."""
    return torch.from_numpy(((image.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))[
        None
    ]


def resized_input(root: Path, img_id: str) -> tuple[np.ndarray, torch.Tensor]:
    """The original image and the network input the test pipeline makes of it (cv2 bilinear resize)."""
    image = np.array(Image.open(root / "JPEGImages" / f"{img_id}.jpg").convert("RGB"))
    small = cv2.resize(image, (TEST_WIDTH, TEST_HEIGHT), interpolation=cv2.INTER_LINEAR)
    return image, normalised(small)


def ground_truth(root: Path, img_id: str) -> np.ndarray:
    return np.array(Image.open(root / "SegmentationClass" / f"{img_id}.png"))


def run_tool(config: Path, checkpoint: Path, data_root: Path, *extra: str) -> int:
    return test_tool.main(
        [
            str(config),
            str(checkpoint),
            "--data-root",
            str(data_root),
            "--device",
            "cpu",
            "--no-progress",
            *extra,
        ]
    )


def test_scores_match_an_independent_computation_at_the_original_size(
    tiny_voc, tiny_config, tmp_path, capsys
):
    checkpoint = tmp_path / "random.pth"
    model = save_random_segmenter(tiny_config, tiny_voc, checkpoint)
    out, show, result_json = tmp_path / "pred", tmp_path / "show", tmp_path / "result.json"
    run_tool(tiny_config, checkpoint, tiny_voc, "--split", "train", "--out", str(out), "--show-dir", str(show),
             "--json", str(result_json), "--work-dir", str(tmp_path / "work"))  # fmt: skip
    printed = capsys.readouterr().out

    ids = split_ids(tiny_voc, "train")
    expected = ConfusionMatrix(3)
    for img_id in ids:
        image, inputs = resized_input(tiny_voc, img_id)
        with torch.no_grad():
            logits = model.network(inputs)  # 32x48 input: no padding needed
        assert logits.shape[-2:] == (TEST_HEIGHT, TEST_WIDTH)
        full = F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
        pred = full[0].argmax(0).numpy()
        gt = ground_truth(tiny_voc, img_id)
        expected.update(pred, gt)

        with Image.open(out / f"{img_id}.png") as written:
            assert written.mode == "P" and written.size == (48, 48)
            np.testing.assert_array_equal(np.array(written), pred)
        with Image.open(show / f"{img_id}.png") as panel:
            assert panel.mode == "RGB" and panel.size == (48 + 4 + 48, 48)
            panel = np.array(panel)
        # the panel is the library's overlay of the prediction, then of the ground truth
        np.testing.assert_array_equal(panel, comparison_panel(image, pred, gt))

    saved = json.loads(result_json.read_text())
    assert np.array_equal(saved["confusion_matrix"], expected.matrix)
    scores = expected.compute()
    assert saved["mIoU"] == pytest.approx(scores.mIoU) and saved["aAcc"] == pytest.approx(scores.aAcc)
    assert re.search(
        rf"\|\s*{scores.aAcc:.2f}\s*\|\s*{scores.mIoU:.2f}\s*\|\s*{scores.mAcc:.2f}\s*\|", printed
    )
    assert "6 images of split 'train', 3 classes" in printed
    assert [row["class"] for row in saved["per_class"]] == ["background", "disc", "bar"]
    assert json.loads((tmp_path / "work" / "random_train.json").read_text()) == saved
    # eval_seg's folder evaluation of the written PNGs agrees
    folder = evaluate_label_folders(out, tiny_voc / "SegmentationClass", ids, 3, progress=False)
    np.testing.assert_array_equal(folder.matrix, expected.matrix)


def test_tta_predictions_and_resume(tiny_voc, tiny_config, tmp_path, capsys):
    checkpoint = tmp_path / "random.pth"
    model = save_random_segmenter(tiny_config, tiny_voc, checkpoint)
    out, first_json = tmp_path / "pred", tmp_path / "first.json"
    run_tool(
        tiny_config,
        checkpoint,
        tiny_voc,
        "--split",
        "train",
        "--tta",
        "--out",
        str(out),
        "--json",
        str(first_json),
    )
    assert "scales 0.5, 0.75, 1, 1.25, 1.5, 1.75; flip on; CRF off" in capsys.readouterr().out

    ids = split_ids(tiny_voc, "train")
    for img_id in ids:
        image, inputs = resized_input(tiny_voc, img_id)
        probs = model.tta_probs(inputs[0], TTA_SCALES, flip=True, out_size=image.shape[:2])
        np.testing.assert_array_equal(np.array(Image.open(out / f"{img_id}.png")), probs.argmax(0).numpy())

    (out / f"{ids[0]}.png").unlink()
    (out / f"{ids[1]}.png").write_bytes(b"half a png")
    resumed_json = tmp_path / "resumed.json"
    run_tool(tiny_config, checkpoint, tiny_voc, "--split", "train", "--tta", "--out", str(out), "--resume",
             "--json", str(resumed_json))  # fmt: skip
    assert "4 predictions kept from --out" in capsys.readouterr().out
    assert json.loads(resumed_json.read_text()) == json.loads(first_json.read_text())
    # no temporary files left; the manifest records the checkpoint and settings
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", *(f"{i}.png" for i in ids)]
    manifest = json.loads((out / "manifest.json").read_text())["settings"]
    assert (
        manifest["checkpoint"] == str(checkpoint.resolve())
        and manifest["flip"]
        and manifest["scales"] == list(TTA_SCALES)
    )


def test_crf_refines_the_softmax(tiny_voc, tiny_config, tmp_path):
    pytest.importorskip("pydensecrf.densecrf")
    from wsss.pseudo.crf import crf_on_probs

    checkpoint = tmp_path / "random.pth"
    model = save_random_segmenter(tiny_config, tiny_voc, checkpoint)
    out = tmp_path / "pred"
    run_tool(tiny_config, checkpoint, tiny_voc, "--crf", "--out", str(out))
    for img_id in split_ids(tiny_voc, "val"):
        image, inputs = resized_input(tiny_voc, img_id)
        with torch.no_grad():
            logits = F.interpolate(model.network(inputs), size=(48, 48), mode="bilinear", align_corners=False)
        refined = crf_on_probs(image, logits[0].softmax(0).numpy()).argmax(0)
        np.testing.assert_array_equal(np.array(Image.open(out / f"{img_id}.png")), refined)


def test_crf_without_pydensecrf_is_a_one_line_error(tiny_voc, tiny_config, tmp_path, monkeypatch, tool_error):
    monkeypatch.setitem(sys.modules, "pydensecrf", None)  # makes `import pydensecrf...` fail
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    line = tool_error(run_tool(tiny_config, tmp_path / "unused.pth", tiny_voc, "--crf"))
    assert (
        line
        == "error: --crf: dense CRF needs the pydensecrf package; install it with: pip install 'wsss[crf]'"
    )


def test_class_count_mismatch_exits_with_the_checkpoint_error(tool_error, tiny_voc, tiny_config, tmp_path):
    checkpoint = tmp_path / "four_classes.pth"
    save_random_segmenter(tiny_config, tiny_voc, checkpoint, **{"model.num_classes": 4})
    command = [sys.executable, str(TOOL), str(tiny_config), str(checkpoint), "--data-root", str(tiny_voc)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {checkpoint}: tensor network.segmentation_head")
    assert "has shape (4, 32, " in lines[0] and "seg_tiny.py builds (3, 32, " in lines[0]
    assert "another class count" in lines[0]

    tool_error(
        run_tool(tiny_config, tmp_path / "missing.pth", tiny_voc),
        r"^error: .*missing.pth: checkpoint not found",
    )


def test_ddp_scores_equal_the_single_process_run(tiny_voc, tiny_config, tmp_path):
    checkpoint = tmp_path / "random.pth"
    save_random_segmenter(tiny_config, tiny_voc, checkpoint)
    single, ddp, ddp_out = tmp_path / "single.json", tmp_path / "ddp.json", tmp_path / "ddp_pred"
    run_tool(tiny_config, checkpoint, tiny_voc, "--split", "train", "--json", str(single))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(TOOL),
        str(tiny_config), str(checkpoint), "--data-root", str(tiny_voc), "--split", "train", "--launcher", "pytorch",
        "--device", "cpu", "--json", str(ddp), "--out", str(ddp_out), "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("6 images of split 'train'") == 1  # only rank 0 reports
    assert json.loads(ddp.read_text()) == json.loads(single.read_text())
    assert sorted(p.stem for p in ddp_out.glob("*.png")) == split_ids(tiny_voc, "train")


def test_coco_config_takes_class_names_and_split_from_the_data(tiny_voc, tmp_path, capsys, tool_error):
    checkpoint = tmp_path / "coco_layout.pth"
    options = [
        "model.encoder_name=tu-test_resnet",
        "model.decoder_channels=32",
        "test_dataloader.num_workers=0",
    ]
    save_random_segmenter(SEG_COCO, tiny_voc, checkpoint)  # class_names.txt: 3 classes, not COCO's 81
    (tiny_voc / "val2014").symlink_to(tiny_voc / "JPEGImages")  # prepare_coco's per-split image link
    run_tool(SEG_COCO, checkpoint, tiny_voc, "--split", "val", "--cfg-options", *options)
    printed = capsys.readouterr().out
    assert "2 images of split 'val', 3 classes" in printed and "| disc " in printed

    code = run_tool(
        SEG_COCO, checkpoint, tiny_voc, "--cfg-options", *options
    )  # the config's own split is val2014
    tool_error(code, f"^error: {tiny_voc / 'ImageSets' / 'Segmentation' / 'val2014.txt'}: split list")


def test_predict_only_on_a_split_without_labels(tiny_voc, tiny_config, tmp_path, capsys, tool_error):
    checkpoint = tmp_path / "random.pth"
    save_random_segmenter(tiny_config, tiny_voc, checkpoint)
    for label in (tiny_voc / "SegmentationClass").glob("*.png"):
        label.unlink()
    message = tool_error(
        run_tool(tiny_config, checkpoint, tiny_voc), "no label PNG for 2 of 2 images of split 'val'"
    )
    assert message.endswith("add --predict-only")
    out = tmp_path / "server"
    run_tool(tiny_config, checkpoint, tiny_voc, "--predict-only", "--out", str(out))
    assert "IoU" not in capsys.readouterr().out
    assert sorted(p.stem for p in out.glob("*.png")) == split_ids(tiny_voc, "val")


@pytest.mark.skipif(not VOC_SAMPLE.is_dir(), reason="../shared/datasets not present")
def test_real_voc_images_are_scored_at_their_own_size(tmp_path):
    checkpoint = tmp_path / "voc21.pth"
    options = {"test_dataloader.dataset.split_dir": ".", "test_dataloader.num_workers": 0}
    save_random_segmenter(SEG_VOC, VOC_SAMPLE, checkpoint, **options)
    out, result_json = tmp_path / "pred", tmp_path / "voc.json"
    cli_options = [f"{k}={v}" for k, v in {**TINY_MODEL, **options}.items()]
    run_tool(
        SEG_VOC,
        checkpoint,
        VOC_SAMPLE,
        "--out",
        str(out),
        "--json",
        str(result_json),
        "--cfg-options",
        *cli_options,
    )
    gt = ground_truth(VOC_SAMPLE, "2007_000033")
    with Image.open(out / "2007_000033.png") as pred:
        assert pred.size == Image.open(VOC_SAMPLE / "JPEGImages" / "2007_000033.jpg").size
    saved = json.loads(result_json.read_text())
    assert len(saved["per_class"]) == 21 and saved["per_class"][1]["class"] == "aeroplane"
    assert np.sum(saved["confusion_matrix"]) == np.count_nonzero(gt != 255)


def test_resume_refuses_predictions_of_another_checkpoint_or_settings(
    tiny_voc, tiny_config, tmp_path, tool_error
):
    """Issue 14, finding 2: --resume must not score PNGs another checkpoint, --tta or --crf made."""
    first, second = tmp_path / "first.pth", tmp_path / "second.pth"
    save_random_segmenter(tiny_config, tiny_voc, first)
    save_random_segmenter(tiny_config, tiny_voc, second)
    out = tmp_path / "pred"
    assert run_tool(tiny_config, first, tiny_voc, "--out", str(out)) == 0
    manifest = out / "manifest.json"
    line = tool_error(run_tool(tiny_config, second, tiny_voc, "--out", str(out), "--resume"))
    assert line.startswith(f"error: {manifest}: records other settings (checkpoint=") and "second.pth" in line
    tool_error(run_tool(tiny_config, first, tiny_voc, "--out", str(out), "--resume", "--tta"),
               f"^error: {manifest}: records other settings .*flip=False.*use a new folder")  # fmt: skip
    first.write_bytes(second.read_bytes())  # retrained in place: the same path, another model
    tool_error(run_tool(tiny_config, first, tiny_voc, "--out", str(out), "--resume"),
               f"^error: {manifest}: records other settings \\(checkpoint_sha256=")  # fmt: skip
    # PNGs without a manifest were not made by this tool (or by an older version): refused too
    manifest.unlink()
    tool_error(run_tool(tiny_config, first, tiny_voc, "--out", str(out), "--resume"),
               f"^error: --out {out}: holds \\*.png files but no manifest.json")  # fmt: skip


def test_predict_only_with_json_is_refused_and_show_dir_temporaries_are_cleaned(
    tiny_voc, tiny_config, tmp_path, tool_error
):
    """Issue 14: --predict-only --json wrote nothing (finding 11); a killed run's .tmp.png stayed in
    --show-dir (finding 7)."""
    checkpoint = tmp_path / "random.pth"
    save_random_segmenter(tiny_config, tiny_voc, checkpoint)
    out, show = tmp_path / "pred", tmp_path / "show"
    tool_error(run_tool(tiny_config, checkpoint, tiny_voc, "--predict-only", "--out", str(out), "--json",
                        str(tmp_path / "r.json")), "^error: --predict-only reads no ground truth, so --json")  # fmt: skip
    show.mkdir()
    leftover = show / f".{split_ids(tiny_voc, 'val')[0]}.999999999.tmp.png"  # no process has that id
    leftover.write_bytes(b"half an overlay")
    assert run_tool(tiny_config, checkpoint, tiny_voc, "--show-dir", str(show)) == 0
    assert sorted(p.name for p in show.iterdir()) == [f"{i}.png" for i in split_ids(tiny_voc, "val")]


def test_an_unreadable_val_image_is_one_line(tiny_voc, tiny_config, tmp_path, tool_error):
    """Issue 14, finding 11: an unreadable image in the split stopped evaluation with a traceback."""
    checkpoint = tmp_path / "random.pth"
    save_random_segmenter(tiny_config, tiny_voc, checkpoint)
    broken = tiny_voc / "JPEGImages" / f"{split_ids(tiny_voc, 'val')[1]}.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    tool_error(run_tool(tiny_config, checkpoint, tiny_voc), f"^error: {broken}: unreadable image")


def test_a_cut_off_checkpoint_is_one_line(tiny_voc, tiny_config, tmp_path, tool_error):
    """Issue 14, finding 4: a truncated checkpoint gave a traceback."""
    checkpoint, cut = tmp_path / "random.pth", tmp_path / "cut.pth"
    save_random_segmenter(tiny_config, tiny_voc, checkpoint)
    cut.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 3])
    tool_error(run_tool(tiny_config, cut, tiny_voc), rf"^error: {cut}: not a readable checkpoint, truncated")
