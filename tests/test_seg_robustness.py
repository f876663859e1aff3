"""Training the Segmenter on bad input: missing pseudo labels, corrupt images, and two CPU processes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EPOCH_SCHEDULE
from torch.utils.data import DataLoader

import wsss.data.dataset as dataset_module
from wsss.cli import train as train_tool
from wsss.data.dataset import ImageLabelDataset
from wsss.engine.checkpoint import load_from_local_safely

REPO = Path(__file__).resolve().parents[1]
TRAIN_TOOL = REPO / "tools" / "train.py"
SEG_SHAPES = REPO / "configs" / "seg" / "deeplabv3plus_shapes.py"


@pytest.fixture
def logged(monkeypatch) -> list[tuple[str, int]]:
    """Messages the dataset sends to mmengine's logger, with their levels."""
    messages: list[tuple[str, int]] = []
    monkeypatch.setattr(
        dataset_module,
        "print_log",
        lambda msg, logger=None, level=logging.INFO: messages.append((msg, level)),
    )
    return messages


@pytest.fixture
def tiny_seg_config(tmp_path: Path) -> Path:
    """The shapes Segmenter config with timm's test ResNet, ground-truth labels as pseudo labels,
    batch 3 (6 images: 2 iterations, or 1 per rank on 2 ranks) and no augmentation."""
    path = tmp_path / "seg_tiny.py"
    path.write_text(
        f"_base_ = [{str(SEG_SHAPES)!r}]\n"
        'model = dict(encoder_name="tu-test_resnet", decoder_channels=32)\n'
        "train_dataloader = dict(batch_size=3, num_workers=2, "
        'dataset=dict(label_dir="SegmentationClass", pipeline=[]))\n'
        "val_dataloader = dict(num_workers=0)\n"
        "test_dataloader = dict(num_workers=0)\n"
        "param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=True, convert_to_iter_based=True)]\n"
        "default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=True, interval=1))\n"
        + EPOCH_SCHEDULE,
        encoding="utf-8",
    )
    return path


def train_ids(root: Path) -> list[str]:
    return (root / "ImageSets" / "Segmentation" / "train.txt").read_text().split()


def break_image(root: Path, img_id: str) -> Path:
    path = root / "JPEGImages" / f"{img_id}.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    return path


def run_log(work_dir: Path) -> str:
    """The text of mmengine's log file of the (only) run in ``work_dir``."""
    (log_file,) = work_dir.glob("*/*.log")
    return log_file.read_text(encoding="utf-8")


# --- missing label files ---------------------------------------------------------------------------


def test_missing_labels_are_refused_with_count_ids_and_folder(tiny_voc, logged):
    ids = train_ids(tiny_voc)
    label_dir = tiny_voc / "SegmentationClass"
    for img_id in (ids[1], ids[4]):
        (label_dir / f"{img_id}.png").unlink()
    with pytest.raises(FileNotFoundError) as exc:
        ImageLabelDataset(tiny_voc, split="train")
    message = str(exc.value)
    assert message.startswith(
        f"{label_dir}: no label PNG for 2 of 6 images of split 'train' (first: {ids[1]}, {ids[4]})"
    )
    assert "allow_missing=True" in message

    dataset = ImageLabelDataset(tiny_voc, split="train", allow_missing=True)
    assert dataset.img_ids == [ids[0], ids[2], ids[3], ids[5]]
    assert [p.stem for p in dataset.img_paths] == dataset.img_ids and len(dataset.cls_labels) == 4
    assert [dataset[i]["data_samples"]["img_id"] for i in range(4)] == dataset.img_ids
    ((text, level),) = logged
    assert level == logging.WARNING and "2 of 6 images" in text and "4 images remain" in text

    for img_id in ids:
        (label_dir / f"{img_id}.png").unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match="no label PNG for 6 of 6 .*here: every image"):
        ImageLabelDataset(tiny_voc, split="train", allow_missing=True, labels_from="none")
    with pytest.raises(FileNotFoundError, match="pseudo: label folder not found"):
        ImageLabelDataset(tiny_voc, split="train", label_dir="pseudo", labels_from="none")
    assert len(ImageLabelDataset(tiny_voc, split="train", with_mask=False, labels_from="none")) == 6


def test_train_tool_reports_missing_pseudo_labels_in_one_line(
    tiny_voc, tiny_seg_config, tmp_path, tool_error
):
    ids = train_ids(tiny_voc)
    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    for img_id in ids[:2]:
        (pseudo / f"{img_id}.png").write_bytes(
            (tiny_voc / "SegmentationClass" / f"{img_id}.png").read_bytes()
        )
    code = train_tool.main([str(tiny_seg_config), "--data-root", str(tiny_voc), "--work-dir", str(tmp_path / "work"),
                            "--cfg-options", f"train_dataloader.dataset.label_dir={pseudo}", "experiment_name=missing"])  # fmt: skip
    message = tool_error(code)
    assert message.startswith(
        f"error: {pseudo}: no label PNG for 4 of 6 images of split 'train' (first: {ids[2]}"
    )
    assert "allow_missing=True" in message


# --- corrupt images ----------------------------------------------------------------------------------


def test_corrupt_image_is_replaced_warned_once_and_counted(tiny_voc, logged):
    ids = train_ids(tiny_voc)
    broken = break_image(tiny_voc, ids[3])
    dataset = ImageLabelDataset(tiny_voc, split="train", skip_corrupt=True)
    for _ in range(2):  # two epochs
        served = [dataset[i]["data_samples"]["img_id"] for i in range(len(dataset))]
        assert ids[3] not in served and len(served) == 6
        assert served[:3] == ids[:3] and served[4:] == ids[4:]
    assert dataset.skipped_count == 1
    assert [level for _, level in logged] == [logging.WARNING]  # warned once, not once per epoch
    assert str(broken) in logged[0][0] and "1 of 6 images unreadable so far" in logged[0][0]

    with pytest.raises(ValueError, match=f"{broken}: unreadable image"):  # the default: evaluation stops
        ImageLabelDataset(tiny_voc, split="train")[3]

    for img_id in ids:
        break_image(tiny_voc, img_id)
    with pytest.raises(ValueError, match="none of the 6 images of split 'train' can be read"):
        ImageLabelDataset(tiny_voc, split="train", skip_corrupt=True)[0]


def test_skip_count_is_shared_with_dataloader_workers(tiny_voc, logged):
    ids = train_ids(tiny_voc)
    break_image(tiny_voc, ids[0])
    break_image(tiny_voc, ids[5])
    dataset = ImageLabelDataset(tiny_voc, split="train", skip_corrupt=True)
    loader = DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context="fork")
    served = [item["data_samples"]["img_id"] for item in loader]
    assert len(served) == 6 and ids[0] not in served and ids[5] not in served
    assert dataset.skipped_count == 2  # counted in the workers, seen by the main process
    assert logged == []  # the warnings were logged in the worker processes


def test_one_epoch_of_training_survives_a_corrupt_jpeg(tiny_voc, tiny_seg_config, tmp_path):
    broken = break_image(tiny_voc, train_ids(tiny_voc)[2])
    work_dir = tmp_path / "work"
    train_tool.main([str(tiny_seg_config), "--data-root", str(tiny_voc), "--work-dir", str(work_dir),
                     "--cfg-options", "train_cfg.max_epochs=1", "experiment_name=corrupt"])  # fmt: skip
    checkpoint = load_from_local_safely(str(work_dir / "epoch_1.pth"))
    assert checkpoint["meta"]["iter"] == 2  # both batches of 3 ran
    log = run_log(work_dir)
    assert f"{broken}: unreadable image" in log  # from the DataLoader worker that met it
    assert (
        f"epoch 1: 1 of 6 training images were unreadable and replaced by random others so far ({broken})"
        in log
    )


# --- two processes ----------------------------------------------------------------------------------


def test_ddp_training_on_two_cpu_processes_counts_skips_over_ranks(tiny_voc, tiny_seg_config, tmp_path):
    broken = break_image(tiny_voc, train_ids(tiny_voc)[4])
    work_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(TRAIN_TOOL),
        str(tiny_seg_config), "--launcher", "pytorch", "--data-root", str(tiny_voc), "--work-dir", str(work_dir),
        "--cfg-options", "train_cfg.max_epochs=1",
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = load_from_local_safely(str(work_dir / "epoch_1.pth"))
    assert checkpoint["meta"]["iter"] == 1  # 3 images per rank, batch 3
    assert not any(key.startswith("module.") for key in checkpoint["state_dict"])
    # Whichever rank met the file, rank 0's report counts it (the flags are max-reduced over ranks).
    assert (
        f"epoch 1: 1 of 6 training images were unreadable and replaced by random others so far ({broken})"
        in (run_log(work_dir))
    )
