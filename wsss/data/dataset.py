"""One dataset abstraction for image-level-label WSSS: any folder in VOC layout.

Layout (paths configurable)::

    ROOT/JPEGImages/<id>.jpg
    ROOT/SegmentationClass/<id>.png        (optional: masks for evaluation or supervised training)
    ROOT/Annotations/<id>.xml              (optional: VOC object tags)
    ROOT/ImageSets/Segmentation/<split>.txt
    ROOT/class_names.txt                   (optional: any class list, background first)
    ROOT/cls_labels.json                   (optional: {id: [1-based class indices]})

Image-level labels come from ``cls_labels.json``, the XML tags, or the classes present in the label
PNG (``labels_from``; ``'none'`` reads none, for predicting on unlabelled splits such as VOC test).
Ids are kept as strings (``2007_000032`` is not a number).

Bad input while training on pseudo labels:

- Label PNGs missing for some listed images stop the dataset's construction with an error naming
  the label folder, the count and the first ids; ``allow_missing=True`` leaves those images out
  instead, with a warning saying how many.
- ``skip_corrupt=True`` (the segmentation training configs set it) replaces an image that cannot be
  read by a random readable one, warns once naming the file, and counts it in memory shared with
  the DataLoader workers; :class:`SkippedImagesHook` reports the count after every epoch. The
  default, ``False``, raises instead: evaluation must never silently drop an image.
"""

from __future__ import annotations

import json
import logging
import os
import random
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log
from torch.utils.data import Dataset

from wsss.data.classes import resolve_class_names
from wsss.data.image_io import IMAGE_SUFFIXES, index_images, read_image
from wsss.data.label_io import BIASED_INDEX, IGNORE_INDEX, VOC_PALETTE, read_label_png
from wsss.data.transforms import AlbuPipeline
from wsss.fileio import first_items, read_text_file
from wsss.registry import DATASETS, FUNCTIONS, HOOKS

LABEL_SOURCES = ("auto", "json", "xml", "mask", "none")
# How many ids an error or warning about many files lists before it stops.
SHOWN_IDS = 5


def read_split(path: str | os.PathLike) -> list[str]:
    """Ids listed in a split file, one per line.

    Only the first column counts, and an image path there (``/JPEGImages/2007_000032.jpg``, as in
    IRN and mmseg lists) is reduced to its id.
    """
    path = Path(path)
    text = read_text_file(path, "split list", "list one image id per line")
    ids = [_id_of(line.split()[0]) for line in text.splitlines() if line.strip()]
    if not ids:
        raise ValueError(f"{path}: split list is empty; list one image id per line")
    return ids


def _id_of(token: str) -> str:
    name = Path(token).name
    return Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name


def xml_class_indices(path: Path, class_names: Sequence[str]) -> list[int]:
    """1-based class indices named by ``<object><name>`` tags of a VOC XML annotation."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: XML annotation not found; use labels_from='mask' or 'json' instead")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{path}: malformed XML annotation ({err})") from err
    index = {name: i for i, name in enumerate(class_names)}
    found = set()
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in index or index[name] == 0:
            raise ValueError(
                f"{path}: object class {name!r} is not among the dataset classes; fix class_names.txt"
            )
        found.add(index[name])
    return sorted(found)


def mask_class_indices(
    mask: np.ndarray, num_classes: int, path: Path, allow_biased: bool = False
) -> list[int]:
    """1-based class indices present in a label map; values outside the classes and not 255 (nor, with
    ``allow_biased``, MARS's 254) are an error."""
    values = np.unique(mask)
    special = (IGNORE_INDEX, BIASED_INDEX) if allow_biased else (IGNORE_INDEX,)
    bad = [int(v) for v in values if v >= num_classes and v not in special]
    if bad:
        hint = (
            "; MARS labels (254 biased) need allow_biased=True in the dataset" if BIASED_INDEX in bad else ""
        )
        raise ValueError(
            f"{path}: label values {bad} lie outside 0..{num_classes - 1} and are not 255; "
            f"check the class list or the label files{hint}"
        )
    return [int(v) for v in values if 0 < v < num_classes]


@DATASETS.register_module()
class ImageLabelDataset(Dataset):
    """Images with image-level labels, and masks when the dataset has them.

    Each item is ``{'inputs': uint8 tensor (3, H, W), 'data_samples': dict}`` where the sample dict
    holds ``img_id``, ``img_path``, ``ori_shape``, ``cls_label`` (multi-hot float, background
    excluded) and ``gt_seg`` (int64 (H, W), when masks are read).

    ``allow_missing``: with masks, leave out listed images whose label PNG is missing (warning with
    the count) instead of refusing the split. ``skip_corrupt``: serve a random other image in place
    of one that cannot be read (warning once per file, counted in :attr:`skipped_count`) instead of
    raising; meant for training, where one bad JPEG should not end a long run. ``allow_biased``: label
    maps may hold MARS's biased value 254 (debiased pseudo labels; the MARS loss relabels those pixels).
    """

    def __init__(
        self,
        data_root: str | os.PathLike,
        split: str = "train",
        classes: Sequence[str] | str | None = None,
        img_dir: str = "JPEGImages",
        label_dir: str | os.PathLike | None = "SegmentationClass",
        split_dir: str = "ImageSets/Segmentation",
        ann_dir: str = "Annotations",
        cls_label_file: str = "cls_labels.json",
        labels_from: str = "auto",
        with_mask: bool = True,
        pipeline: Sequence[dict] | None = None,
        max_images: int | None = None,
        allow_missing: bool = False,
        skip_corrupt: bool = False,
        allow_biased: bool = False,
    ):
        self.data_root = Path(data_root)
        if not self.data_root.is_dir():
            raise FileNotFoundError(
                f"{self.data_root}: dataset root not found; pass --data-root or fix data_root"
            )
        if labels_from not in LABEL_SOURCES:
            raise ValueError(f"labels_from must be one of {LABEL_SOURCES}, got {labels_from!r}")
        self.class_names = resolve_class_names(classes, self.data_root)
        self.num_classes = len(self.class_names)
        self.split = split
        self.img_dir = self.data_root / img_dir
        self.label_dir = None if label_dir is None else self.data_root / label_dir
        self.with_mask = with_mask and self.label_dir is not None
        self.ann_dir = self.data_root / ann_dir
        self.pipeline = AlbuPipeline(pipeline) if pipeline else None
        self.allow_biased = allow_biased

        self.img_ids = read_split(self.data_root / split_dir / f"{split}.txt")
        if max_images is not None:
            self.img_ids = self.img_ids[:max_images]
        found = index_images(self.img_dir, self.img_ids, f"ids of split '{split}'",
                             "remove those ids from the split list or restore the images")  # fmt: skip
        self.img_paths = [found[i] for i in self.img_ids]
        if self.with_mask:
            self._check_label_files(allow_missing)
        self.cls_labels = self._load_class_labels(labels_from, self.data_root / cls_label_file)
        self.skip_corrupt = skip_corrupt
        # One flag per image, set when it failed to load; in shared memory so that DataLoader worker
        # processes (forked or spawned) mark the same flags the main process reads.
        self.corrupt_flags = torch.zeros(len(self.img_ids), dtype=torch.uint8).share_memory_()

    @property
    def metainfo(self) -> dict[str, Any]:
        """Class names and palette, as mmengine passes them to metrics and visualisers."""
        return {"classes": self.class_names, "palette": VOC_PALETTE[: self.num_classes].tolist()}

    def __len__(self) -> int:
        return len(self.img_ids)

    def _check_label_files(self, allow_missing: bool) -> None:
        """Refuse (or, with ``allow_missing``, leave out) listed images that have no label PNG."""
        if not self.label_dir.is_dir():
            raise FileNotFoundError(
                f"{self.label_dir}: label folder not found; set label_dir to the folder of <id>.png labels "
                "(a relative path is taken inside data_root), or with_mask=False to read no labels"
            )
        missing = [i for i, img_id in enumerate(self.img_ids) if not self.label_path(img_id).is_file()]
        if not missing:
            return
        missing_ids = [self.img_ids[i] for i in missing]
        counted = f"{len(missing)} of {len(self.img_ids)} images of split '{self.split}'"
        if not allow_missing or len(missing) == len(self.img_ids):
            raise FileNotFoundError(
                f"{self.label_dir}: no label PNG for {counted} (first: {first_items(missing_ids, SHOWN_IDS)}); "
                "write <id>.png there for every listed id, point label_dir at the right folder, or set "
                "allow_missing=True in the dataset config to leave those images out"
                + (" (here: every image)" if allow_missing else "")
            )
        dropped = set(missing)
        self.img_ids = [img_id for i, img_id in enumerate(self.img_ids) if i not in dropped]
        self.img_paths = [path for i, path in enumerate(self.img_paths) if i not in dropped]
        print_log(
            f"{self.label_dir}: no label PNG for {counted} (first: {first_items(missing_ids, SHOWN_IDS)}); "
            f"left out because allow_missing=True, {len(self.img_ids)} images remain",
            logger="current",
            level=logging.WARNING,
        )

    @property
    def skipped_count(self) -> int:
        """Images found unreadable so far (each counted once), in this process and its workers."""
        return int(self.corrupt_flags.sum())

    def _read_image_or_substitute(self, index: int) -> tuple[int, np.ndarray]:
        """The image of ``index``, or with ``skip_corrupt`` the first readable one of random others."""
        if not self.skip_corrupt:
            return index, read_image(self.img_paths[index])
        while True:
            if not self.corrupt_flags[index]:
                try:
                    return index, read_image(self.img_paths[index])
                except (ValueError, OSError) as err:
                    self.corrupt_flags[index] = 1
                    print_log(
                        f"skipped in training, a random image takes its place: {err} "
                        f"({self.skipped_count} of {len(self)} images unreadable so far)",
                        logger="current",
                        level=logging.WARNING,
                    )
            readable = torch.nonzero(self.corrupt_flags == 0).flatten().tolist()
            if not readable:
                raise ValueError(
                    f"{self.img_dir}: none of the {len(self)} images of split '{self.split}' can be read; "
                    "check the image folder"
                )
            index = random.choice(readable)

    def label_path(self, img_id: str) -> Path:
        """Path of the label PNG of ``img_id`` (in ``label_dir``)."""
        if self.label_dir is None:
            raise ValueError("this dataset has no label_dir")
        return self.label_dir / f"{img_id}.png"

    def _load_class_labels(self, source: str, json_path: Path) -> list[list[int]]:
        if source == "auto":
            if json_path.is_file():
                source = "json"
            elif self.ann_dir.is_dir() and all((self.ann_dir / f"{i}.xml").is_file() for i in self.img_ids):
                source = "xml"
            else:
                source = "mask"
        if source == "json":
            if not json_path.is_file():
                raise FileNotFoundError(
                    f"{json_path}: class label file not found; set labels_from='xml' or 'mask'"
                )
            table = json.loads(json_path.read_text(encoding="utf-8"))
            missing = [i for i in self.img_ids if i not in table]
            if missing:
                raise ValueError(
                    f"{json_path}: no image-level labels for {len(missing)} listed ids (first: {missing[:3]}); "
                    "regenerate the file or fix the split list"
                )
            labels = [sorted(int(c) for c in table[i]) for i in self.img_ids]
            bad = sorted({c for row in labels for c in row if not 0 < c < self.num_classes})
            if bad:
                raise ValueError(
                    f"{json_path}: class indices {bad} outside 1..{self.num_classes - 1}; "
                    f"the file does not match the {self.num_classes}-class list"
                )
            return labels
        if source == "none":
            return [[] for _ in self.img_ids]
        if source == "xml":
            return [xml_class_indices(self.ann_dir / f"{i}.xml", self.class_names) for i in self.img_ids]
        if self.label_dir is None:
            raise ValueError("labels_from='mask' needs a label_dir")
        return [mask_class_indices(read_label_png(self.label_path(i)), self.num_classes, self.label_path(i),
                                   self.allow_biased) for i in self.img_ids]  # fmt: skip

    def multi_hot(self, index: int) -> torch.Tensor:
        """The image-level label of item ``index`` as a float vector over the foreground classes."""
        target = torch.zeros(self.num_classes - 1)
        for c in self.cls_labels[index]:
            target[c - 1] = 1.0
        return target

    def read_mask(self, index: int, image_shape: tuple[int, int]) -> np.ndarray:
        """The label map of item ``index``, checked against its image size and the class range."""
        path = self.label_path(self.img_ids[index])
        mask = read_label_png(path)
        if mask.shape != image_shape:
            raise ValueError(
                f"{path}: label is {mask.shape[1]}x{mask.shape[0]} but its image is "
                f"{image_shape[1]}x{image_shape[0]}; regenerate the label at the image size"
            )
        mask_class_indices(mask, self.num_classes, path, self.allow_biased)
        return mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        index, image = self._read_image_or_substitute(index)
        ori_shape = image.shape[:2]
        mask = self.read_mask(index, ori_shape) if self.with_mask else None
        if self.pipeline is not None:
            out = self.pipeline(image, mask)
            image, mask = out["image"], out["mask"]
        sample: dict[str, Any] = {
            "img_id": self.img_ids[index],
            "img_path": str(self.img_paths[index]),
            "ori_shape": tuple(ori_shape),
            "cls_label": self.multi_hot(index),
        }
        if mask is not None:
            sample["gt_seg"] = torch.from_numpy(np.ascontiguousarray(mask)).long()
        inputs = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return {"inputs": inputs, "data_samples": sample}


@FUNCTIONS.register_module()
def wsss_collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack inputs (and equal-size masks) when shapes agree; otherwise keep lists (test-time, batch 1)."""
    inputs = [item["inputs"] for item in batch]
    samples = [item["data_samples"] for item in batch]
    same_size = all(x.shape == inputs[0].shape for x in inputs)
    return {"inputs": torch.stack(inputs) if same_size else inputs, "data_samples": samples}


def _image_label_datasets(dataset: Any) -> list[ImageLabelDataset]:
    """The ImageLabelDatasets inside ``dataset``, looking through wrappers (Concat, Repeat, Subset)."""
    if isinstance(dataset, ImageLabelDataset):
        return [dataset]
    found = []
    for inner in getattr(dataset, "datasets", None) or [getattr(dataset, "dataset", None)]:
        if inner is not None:
            found += _image_label_datasets(inner)
    return found


@HOOKS.register_module()
class SkippedImagesHook(Hook):
    """After every training epoch, log how many unreadable images ``skip_corrupt`` has skipped so far.

    The count covers all ranks of a distributed run and is logged only when it is not zero.
    """

    def after_train_epoch(self, runner: Any) -> None:
        for dataset in _image_label_datasets(runner.train_dataloader.dataset):
            flags = dataset.corrupt_flags.clone()
            all_reduce(flags, op="max")  # a no-op outside distributed runs
            skipped = [dataset.img_paths[i] for i in torch.nonzero(flags).flatten().tolist()]
            if skipped:
                runner.logger.warning(
                    f"epoch {runner.epoch + 1}: {len(skipped)} of {len(dataset)} training images were unreadable and "
                    f"replaced by random others so far ({first_items(skipped, SHOWN_IDS)}); "
                    "replace the files or remove their ids from the split list"
                )
