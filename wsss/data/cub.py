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
from wsss.fileio import first_items, read_text_file
from wsss.data.transforms import AlbuPipeline
from wsss.registry import DATASETS

CUB_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt")


def _read_table(
    path: Path, fields: int = 2, what: str = "id value", unique: bool = True
) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of each non-empty line; ValueError naming the file and line when a line
    has fewer than ``fields`` fields or (``unique``) repeats an image id."""
    text = read_text_file(path, "CUB file", f"a CUB-200-2011 root holds {', '.join(CUB_FILES)}")
    rows, seen = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        row = line.split()
        if not row:
            continue
        if len(row) < fields:
            raise ValueError(
                f"{path}: line {number}: expected '{what}', got {line.strip()!r}; fix or drop that line"
            )
        if unique and row[0] in seen:
            raise ValueError(
                f"{path}: line {number}: image id {row[0]} is listed twice; keep one line per image"
            )
        seen.add(row[0])
        rows.append((number, row))
    return rows


def _number(path: Path, number: int, text: str, kind: type = int) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{path}: line {number}: {text!r} is not a number; fix that line") from None
    if not np.isfinite(value):
        raise ValueError(f"{path}: line {number}: {text!r} is not a finite number; fix that line")
    return value


def read_cub_tables(
    data_root: Path,
) -> tuple[dict[str, str], dict[str, int], dict[str, bool], dict[str, list]]:
    """Image paths, 0-based labels, train flags and boxes ``[x1, y1, x2, y2]`` (inclusive) by image id,
    with every line checked: errors name the file, the line and what to fix."""
    images_file = data_root / "images.txt"
    labels_file = data_root / "image_class_labels.txt"
    split_file = data_root / "train_test_split.txt"
    boxes_file = data_root / "bounding_boxes.txt"
    paths = {row[0]: row[1] for _, row in _read_table(images_file, 2, "id relative/path.jpg")}
    labels = {}
    for number, row in _read_table(labels_file, 2, "id class"):
        label = _number(labels_file, number, row[1])
        if label < 1:
            raise ValueError(f"{labels_file}: line {number}: class {label} is below 1 (classes count from 1)")
        labels[row[0]] = label - 1
    is_train = {}
    for number, row in _read_table(split_file, 2, "id 0|1"):
        if row[1] not in ("0", "1"):
            raise ValueError(f"{split_file}: line {number}: {row[1]!r} must be 1 (train) or 0 (test)")
        is_train[row[0]] = row[1] == "1"
    boxes: dict[str, list[list[float]]] = defaultdict(list)
    for number, row in _read_table(boxes_file, 5, "id x y width height", unique=False):
        x, y, w, h = (_number(boxes_file, number, v, float) for v in row[1:5])
        if w <= 0 or h <= 0:
            raise ValueError(
                f"{boxes_file}: line {number}: box of size {w:g}x{h:g}; width and height must be positive"
            )
        boxes[row[0]].append([x, y, x + w - 1, y + h - 1])
    for table, rows in ((labels_file, labels), (split_file, is_train)):
        missing = [image_id for image_id in paths if image_id not in rows]
        if missing:
            raise ValueError(
                f"{table}: no line for {len(missing)} of the {len(paths)} images of images.txt (first: "
                f"{first_items(missing)}); add them, or drop those images from images.txt"
            )
    return paths, labels, is_train, boxes


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
        paths, labels, is_train, boxes = read_cub_tables(self.data_root)
        self.img_ids = [i for i in paths if is_train[i] == (split == "train")]
        if not self.img_ids:
            raise ValueError(f"{self.data_root / 'train_test_split.txt'}: no images in split {split!r}")
        if split == "test":  # every score of WSOL needs the box: without one an image would count as a miss
            unboxed = [i for i in self.img_ids if not boxes.get(i)]
            if unboxed:
                raise ValueError(
                    f"{self.data_root / 'bounding_boxes.txt'}: no box for {len(unboxed)} of the {len(self.img_ids)} "
                    f"test images (first: {first_items(unboxed)}); add their boxes"
                )
        self.img_paths = [self.data_root / "images" / paths[i] for i in self.img_ids]
        self.labels = [labels[i] for i in self.img_ids]
        self.boxes = [np.asarray(boxes[i], dtype=np.float32).reshape(-1, 4) for i in self.img_ids]
        class_file = self.data_root / "classes.txt"
        if class_file.is_file():
            self.class_names = tuple(" ".join(row[1:]) for _, row in _read_table(class_file, 2, "id name"))
            beyond = sorted({label + 1 for label in labels.values() if label >= len(self.class_names)})
            if beyond:
                raise ValueError(
                    f"{self.data_root / 'image_class_labels.txt'}: class {beyond[0]} is beyond the "
                    f"{len(self.class_names)} classes of {class_file}; fix the label or add the class"
                )
        else:
            self.class_names = tuple(str(i) for i in range(max(labels.values(), default=-1) + 1))
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
