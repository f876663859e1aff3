"""CUB-200-2011 layout for weakly supervised object localization (single-label, boxes for evaluation).

Files read from the root: ``images.txt`` (id, relative path under ``images/``), ``image_class_labels.txt``
(id, 1-based class), ``train_test_split.txt`` (id, 1 = train), ``bounding_boxes.txt`` (id, x, y, w, h)
and optionally ``classes.txt`` (id, name).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from wsss.data.image_io import read_image
from wsss.data.transforms import AlbuPipeline
from wsss.registry import DATASETS

CUB_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt")


def _read_table(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; a CUB-200-2011 root holds {', '.join(CUB_FILES)}")
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@DATASETS.register_module()
class CUBDataset(Dataset):
    """CUB images with their class (0-based ``gt_label``) and inclusive boxes ``gt_bboxes`` in pixels.

    Boxes stay in the original image frame (``ori_shape``); evaluation resizes maps back to it.
    """

    def __init__(
        self, data_root: str | os.PathLike, split: str = "train", pipeline: Sequence[dict] | None = None
    ):
        self.data_root = Path(data_root)
        if split not in ("train", "test"):
            raise ValueError(f"CUB split must be 'train' or 'test', got {split!r}")
        paths = {row[0]: row[1] for row in _read_table(self.data_root / "images.txt")}
        labels = {row[0]: int(row[1]) - 1 for row in _read_table(self.data_root / "image_class_labels.txt")}
        is_train = {row[0]: row[1] == "1" for row in _read_table(self.data_root / "train_test_split.txt")}
        boxes: dict[str, list[list[float]]] = defaultdict(list)
        for row in _read_table(self.data_root / "bounding_boxes.txt"):
            x, y, w, h = (float(v) for v in row[1:5])
            boxes[row[0]].append([x, y, x + w - 1, y + h - 1])
        self.img_ids = [i for i in paths if is_train.get(i, False) == (split == "train")]
        if not self.img_ids:
            raise ValueError(f"{self.data_root / 'train_test_split.txt'}: no images in split {split!r}")
        self.img_paths = [self.data_root / "images" / paths[i] for i in self.img_ids]
        self.labels = [labels[i] for i in self.img_ids]
        self.boxes = [np.asarray(boxes[i], dtype=np.float32).reshape(-1, 4) for i in self.img_ids]
        class_file = self.data_root / "classes.txt"
        count = max(labels.values()) + 1
        self.class_names = (
            tuple(" ".join(row[1:]) for row in _read_table(class_file))
            if class_file.is_file()
            else tuple(str(i) for i in range(count))
        )
        self.pipeline = AlbuPipeline(pipeline) if pipeline else None

    @property
    def metainfo(self) -> dict[str, Any]:
        return {"classes": self.class_names}

    def __len__(self) -> int:
        return len(self.img_ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = read_image(self.img_paths[index])
        ori_shape = image.shape[:2]
        if self.pipeline is not None:
            image = self.pipeline(image)["image"]
        sample = {
            "img_id": self.img_ids[index],
            "img_path": str(self.img_paths[index]),
            "ori_shape": tuple(ori_shape),
            "gt_label": self.labels[index],
            "gt_bboxes": torch.from_numpy(self.boxes[index]),
        }
        return {
            "inputs": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "data_samples": sample,
        }
