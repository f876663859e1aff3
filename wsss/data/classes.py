"""Class lists: VOC and COCO names, and ``class_names.txt`` files for any dataset in VOC layout."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from wsss.fileio import read_text_file, write_text_atomic

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip

COCO_CLASSES: tuple[str, ...] = (
    "background", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse",
    "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie",
    "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut",
    "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

CLASS_NAMES_FILE = "class_names.txt"


def read_class_names(path: str | os.PathLike) -> tuple[str, ...]:
    """Read one class name per line (background first); blank lines and ``#`` comments are skipped."""
    path = Path(path)
    text = read_text_file(path, "class file", "write one class name per line, background first")
    names = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line)
    if len(names) < 2:
        raise ValueError(f"{path}: needs at least 2 classes (background first), found {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: class names must be unique")
    return tuple(names)


def write_class_names(path: str | os.PathLike, names: Sequence[str]) -> None:
    """Write ``class_names.txt`` (one name per line, background first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "".join(f"{name}\n" for name in names))


def resolve_class_names(
    classes: Sequence[str] | str | os.PathLike | None, data_root: str | os.PathLike | None = None
) -> tuple[str, ...]:
    """Class names from a config value (a list, a file path, ``'voc'``/``'coco'``) or the dataset root.

    With ``classes=None`` the root's ``class_names.txt`` decides; a root without one is VOC.
    When both a list and a root file are given they must agree, so a config cannot silently train
    a head of the wrong size.
    """
    root_file = Path(data_root) / CLASS_NAMES_FILE if data_root is not None else None
    if classes is None:
        if root_file is not None and root_file.is_file():
            return read_class_names(root_file)
        return VOC_CLASSES
    if isinstance(classes, str) and classes.lower() in ("voc", "coco"):
        names = VOC_CLASSES if classes.lower() == "voc" else COCO_CLASSES
    elif isinstance(classes, (str, os.PathLike)):
        names = read_class_names(classes)
    else:
        names = tuple(classes)
    if root_file is not None and root_file.is_file():
        file_names = read_class_names(root_file)
        if len(file_names) != len(names):
            raise ValueError(
                f"{root_file}: lists {len(file_names)} classes but the config gives {len(names)}; "
                "fix the file or drop `classes` from the config so the file decides"
            )
    return tuple(names)


def class_names_from_spec(spec: str, data_root: str | os.PathLike | None = None) -> tuple[str, ...]:
    """Class names from a command-line value: ``voc``, ``coco``, a class_names.txt or an mmengine config .py.

    A config gives the classes of its test (else val, else train) dataset, from its ``classes`` or
    the ``class_names.txt`` of its ``data_root``. With ``data_root`` (the dataset the labels belong
    to), a ``class_names.txt`` there must list as many classes, so ``--classes voc`` on another
    dataset fails instead of printing the wrong names.
    """
    names = _names_from_spec(spec)
    root_file = Path(data_root) / CLASS_NAMES_FILE if data_root is not None else None
    if root_file is not None and root_file.is_file():
        own = read_class_names(root_file)
        if len(own) != len(names):
            raise ValueError(
                f"{root_file}: the dataset has {len(own)} classes ({', '.join(own[:4])}, ...) but --classes {spec} "
                f"gives {len(names)}; pass --classes {root_file}"
            )
    return names


def _names_from_spec(spec: str) -> tuple[str, ...]:
    if spec.lower() in ("voc", "coco"):
        return resolve_class_names(spec)
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"{spec}: not voc, coco or an existing class_names.txt / config file")
    if path.suffix != ".py":
        return read_class_names(path)
    from wsss.engine.config import read_config  # not at the top: wsss.engine.config reads class names

    cfg = read_config(path)
    for key in ("test_dataloader", "val_dataloader", "train_dataloader"):
        dataset = (cfg.get(key) or {}).get("dataset")
        while isinstance(dataset, dict) and "classes" not in dataset and "data_root" not in dataset:
            dataset = dataset.get("dataset") or (dataset.get("datasets") or [None])[0]  # wrappers, mixes
        if isinstance(dataset, dict):
            return resolve_class_names(dataset.get("classes"), dataset.get("data_root"))
    raise ValueError(
        f"{path}: no dataloader dataset with `classes` or `data_root`; pass voc, coco or a class file"
    )
