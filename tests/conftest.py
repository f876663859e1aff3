"""Shared fixtures: one torch thread per test, a tiny dataset in VOC layout, and the tools' error check."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wsss.data.classes import write_class_names
from wsss.data.label_io import write_label_png

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # as the tools do: no network at import

# Appended to a shapes config (counted in steps) to train by epochs, as the VOC/COCO recipes do.
EPOCH_SCHEDULE = (
    "train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=4, val_interval=1)\n"
    "log_processor = dict(by_epoch=True)\n"
)

TINY_CLASSES = ("background", "disc", "bar")
TINY_SIZE = 48
TINY_TRAIN = 6
TINY_VAL = 2


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread: on a small shared CPU, thread contention makes tiny models many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_voc(tmp_path: Path) -> Path:
    """A VOC-layout root of 8 random 48x48 images (6 train, 2 val) and masks with values 0..2.

    Each image gets a rectangle of class 1 and/or class 2 (at least one), so image-level labels
    differ between images. ``class_names.txt`` lists the 3 classes.
    """
    root = tmp_path / "tiny_voc"
    split_dir = root / "ImageSets" / "Segmentation"
    for folder in (root / "JPEGImages", root / "SegmentationClass", split_dir):
        folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = [f"tiny_{index:03d}" for index in range(TINY_TRAIN + TINY_VAL)]
    for index, img_id in enumerate(ids):
        image = rng.integers(0, 256, (TINY_SIZE, TINY_SIZE, 3), dtype=np.uint8)
        mask = np.zeros((TINY_SIZE, TINY_SIZE), np.uint8)
        present = [1, 2] if index % 3 == 0 else [1 + index % 2]
        for class_index in present:
            top, left = rng.integers(0, TINY_SIZE // 2, size=2)
            height, width = rng.integers(8, TINY_SIZE // 2, size=2)
            mask[top : top + height, left : left + width] = class_index
            image[top : top + height, left : left + width] = 80 * class_index
        Image.fromarray(image).save(root / "JPEGImages" / f"{img_id}.jpg", quality=95)
        write_label_png(root / "SegmentationClass" / f"{img_id}.png", mask)
    write_class_names(root / "class_names.txt", TINY_CLASSES)
    (split_dir / "train.txt").write_text("".join(f"{i}\n" for i in ids[:TINY_TRAIN]), encoding="utf-8")
    (split_dir / "val.txt").write_text("".join(f"{i}\n" for i in ids[TINY_TRAIN:]), encoding="utf-8")
    return root


@pytest.fixture
def tool_error(capsys):
    """Check a tool's exit: code 2 and exactly one ``error: ...`` line on stderr (matching ``match``); returns it."""

    def check(code: int, match: str | None = None) -> str:
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.startswith("error: ")]
        assert code == 2, f"exit code {code}; stderr: {captured.err}"
        assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
        if match is not None:
            assert re.search(match, lines[0]), f"{match!r} not in {lines[0]!r}"
        return lines[0]

    return check
