"""Keep the synthetic images the project's classifier agrees with (METHODS.md section 3).

A synthetic folder (``tools/generate_synthetic.py``) labels each image with the classes its prompt
names. A generator does not always draw what it is asked for, and a wrong image-level label teaches
the localizer and the segmenter the wrong thing, so a classifier trained on the real images (a CAM
or BAS config and checkpoint) scores every image and :func:`decide` keeps it when

* every prompted class scores at least ``threshold`` (the sigmoid of its logit), and
* with ``reject`` set, no unprompted class scores ``reject`` or more (an image that also shows
  something it was not asked for would carry a label missing that class).

An image prompted with no class (a context-only, background image) is kept when no class scores
``reject`` (``threshold`` when ``reject`` is not set) or more.

The candidates are the images ``manifest.json`` records (all that the generator finished, whatever
an earlier filter kept), so filtering again with another threshold starts from the same set. The
kept ids become ``ImageSets/Segmentation/train.txt`` (written atomically, in the manifest's order),
and the manifest records per image the classifier's scores, ``kept`` and a ``reason``, and under
``filter`` the settings and totals.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from wsss.data.classes import CLASS_NAMES_FILE, read_class_names
from wsss.data.image_io import read_image
from wsss.fileio import write_json_atomic, write_text_atomic
from wsss.manifest import MANIFEST_NAME, read_manifest
from wsss.synth.dataset import CLS_LABELS_FILE, IMAGE_DIR, SPLIT_PATH, _comment
from wsss.synth.quality import classify_images

SHOWN = 5  # ids an error names before "..."
# What decides an image, as tools/generate_synthetic.py records it in the manifest and the JPEG comment.
RECORD_KEYS = ("prompt", "seed", "generator", "steps", "guidance")


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(ids[:SHOWN]) + (f", ... ({len(ids)} in all)" if len(ids) > SHOWN else "")


@dataclass
class SyntheticFolder:
    """A synthetic VOC-layout folder, checked: its manifest, classes and per-image prompted classes."""

    root: Path
    manifest: dict[str, Any]
    class_names: tuple[str, ...]
    prompted: dict[str, list[str]]  # id -> class names its prompt names, in the manifest's order

    @property
    def ids(self) -> list[str]:
        return list(self.prompted)

    def image_path(self, img_id: str) -> Path:
        return self.root / IMAGE_DIR / f"{img_id}.jpg"


def _jpeg_record(path: Path) -> str | None:
    try:
        with Image.open(path) as image:
            comment = image.info.get("comment")
    except OSError:
        return None
    return comment.decode("utf-8", "replace") if isinstance(comment, bytes) else comment


def read_synthetic_folder(root: str | os.PathLike) -> SyntheticFolder:
    """The folder ``root`` with its manifest checked against its images; ValueError naming the ids that disagree.

    Checked: the folder, ``manifest.json`` (with ``images``), ``class_names.txt`` and
    ``cls_labels.json`` exist; every image the manifest records has its JPEG, every JPEG is in the
    manifest, each JPEG's own record (prompt, seed, generator, ... in its comment) is the manifest's,
    and ``cls_labels.json`` gives each image the classes the manifest says its prompt names.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: synthetic folder not found; make it with tools/generate_synthetic.py"
        )
    manifest = read_manifest(root)
    if manifest is None or not isinstance(manifest.get("images"), dict):
        raise ValueError(
            f"{root / MANIFEST_NAME}: missing or without 'images'; this is not a folder of tools/generate_synthetic.py"
        )
    class_file = root / CLASS_NAMES_FILE
    if not class_file.is_file():
        raise FileNotFoundError(
            f"{class_file}: not found; generate the folder with --classes so its images have labels to check"
        )
    class_names = read_class_names(class_file)
    images: dict[str, dict[str, Any]] = manifest["images"]
    image_dir = root / IMAGE_DIR
    on_disk = (
        {p.stem for p in image_dir.glob("*.jpg") if not p.name.startswith(".")}
        if image_dir.is_dir()
        else set()
    )
    missing = [i for i in images if i not in on_disk]
    if missing:
        raise ValueError(f"{root / MANIFEST_NAME}: records images with no file in {IMAGE_DIR}/: {_ids(missing)}; "
                         "run tools/generate_synthetic.py again to make them")  # fmt: skip
    extra = sorted(on_disk - set(images))
    if extra:
        raise ValueError(f"{image_dir}: images the manifest does not record: {_ids(extra)}; "
                         "run tools/generate_synthetic.py again (it rewrites the manifest) or remove them")  # fmt: skip
    changed = []
    for img_id, record in images.items():
        expected = {key: record.get(key) for key in RECORD_KEYS}
        if _jpeg_record(image_dir / f"{img_id}.jpg") != _comment(expected):
            changed.append(img_id)
    if changed:
        raise ValueError(f"{image_dir}: images made from another prompt or seed than the manifest records: "
                         f"{_ids(changed)}; run tools/generate_synthetic.py again")  # fmt: skip
    labels_file = root / CLS_LABELS_FILE
    try:
        table = json.loads(labels_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(
            f"{labels_file}: unreadable ({err}); run tools/generate_synthetic.py with --classes again"
        ) from None
    prompted: dict[str, list[str]] = {}
    disagree = []
    for img_id, record in images.items():
        indices = table.get(img_id)
        names = record.get("classes")
        if indices is None or names is None or any(not 0 < int(c) < len(class_names) for c in indices):
            disagree.append(img_id)
            continue
        if sorted(class_names[int(c)] for c in indices) != sorted(names):
            disagree.append(img_id)
            continue
        prompted[img_id] = list(names)
    if disagree:
        raise ValueError(f"{labels_file}: the classes of {_ids(disagree)} disagree with (or are missing from) "
                         f"{MANIFEST_NAME}; run tools/generate_synthetic.py with --classes again")  # fmt: skip
    return SyntheticFolder(root, manifest, class_names, prompted)


@dataclass(frozen=True)
class FilterRule:
    """When an image is kept: see the module docstring."""

    threshold: float = 0.5
    reject: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("threshold", self.threshold), ("reject", self.reject)):
            if value is not None and not 0.0 < value < 1.0:
                raise ValueError(f"the filter's {name} is a sigmoid score in (0, 1), got {value}")

    def settings(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "reject_unprompted": self.reject}


def decide(scores: Mapping[str, float], prompted: Sequence[str], rule: FilterRule) -> tuple[bool, str]:
    """Whether to keep an image with classifier ``scores`` ({class: sigmoid}) prompted with ``prompted``, and why."""
    low = sorted(c for c in prompted if scores[c] < rule.threshold)
    if low:
        return False, "prompted class below threshold: " + ", ".join(f"{c} {scores[c]:.2f}" for c in low)
    limit = rule.reject if rule.reject is not None or prompted else rule.threshold
    if limit is not None:
        confident = sorted(c for c in scores if c not in prompted and scores[c] >= limit)
        if confident:
            return False, "unprompted class scored: " + ", ".join(f"{c} {scores[c]:.2f}" for c in confident)
    return True, "kept"


Scorer = Callable[[Sequence[Path]], np.ndarray]


def classifier_scorer(model: torch.nn.Module, pipeline: Callable | None, batch_size: int = 32) -> Scorer:
    """Sigmoid class scores ``(N, C-1)`` of image files, as the classifier sees its validation images.

    ``pipeline`` is the config's test pipeline (an :class:`~wsss.data.transforms.AlbuPipeline`: the
    resize to the classifier's size); images of one batch must come out the same size (synthetic
    images all have the generator's).
    """

    def score(paths: Sequence[Path]) -> np.ndarray:
        if not paths:
            return np.zeros((0, 0), np.float32)
        return classify_images(model, [read_image(p) for p in paths], pipeline, batch_size)[0]

    return score


def filter_folder(folder: SyntheticFolder, score: Scorer, rule: FilterRule, source: Mapping[str, Any],
                  batch_size: int = 64, progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """Score every image of ``folder``, write the kept list and the manifest's records; returns the totals."""
    foreground = folder.class_names[1:]
    ids = folder.ids
    records = folder.manifest["images"]
    kept: list[str] = []
    reasons: dict[str, int] = {}
    with tqdm(total=len(ids), desc="filtering", unit="img", disable=not progress) as bar:
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            scores = score([folder.image_path(i) for i in chunk])
            if scores.shape != (len(chunk), len(foreground)):
                raise ValueError(f"the classifier gives {scores.shape[-1]} scores per image but {folder.root} "
                                 f"has {len(foreground)} classes; use the classifier of this dataset")  # fmt: skip
            for img_id, row in zip(chunk, scores):
                named = {name: round(float(s), 4) for name, s in zip(foreground, row)}
                keep, reason = decide(named, folder.prompted[img_id], rule)
                records[img_id]["filter"] = {"scores": named, "kept": keep, "reason": reason}
                if keep:
                    kept.append(img_id)
                reasons[reason.split(":")[0]] = reasons.get(reason.split(":")[0], 0) + 1
            bar.update(len(chunk))
    per_class = {}
    for name in foreground:
        asked = [i for i in ids if name in folder.prompted[i]]
        per_class[name] = {"prompted": len(asked), "kept": sum(records[i]["filter"]["kept"] for i in asked)}
    background = [i for i in ids if not folder.prompted[i]]
    totals = {"total": len(ids), "kept": len(kept), "filtered": len(ids) - len(kept),
              "kept_share": len(kept) / len(ids) if ids else None, "reasons": reasons, "per_class": per_class,
              "background_only": {"prompted": len(background), "kept": sum(records[i]["filter"]["kept"] for i in background)}}  # fmt: skip
    write_text_atomic(folder.root / SPLIT_PATH, "".join(f"{i}\n" for i in kept))
    folder.manifest["filter"] = {**dict(source), **rule.settings(), **totals}
    write_json_atomic(folder.root / MANIFEST_NAME, folder.manifest)
    return totals
