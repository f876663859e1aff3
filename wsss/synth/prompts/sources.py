"""Where the graph's evidence comes from: a COCO-format captions file, or a dataset folder in VOC layout.

- ``captions``: a captions json (COCO ``captions_*.json`` or the shapes ``captions.json``); classes
  come from ``classes`` (a list, a file, ``voc``/``coco``), else the ``class_names.txt`` beside the
  file, else VOC. Presence of a class is read from the captions.
- ``data_root``: class names as the toolkit reads them (``class_names.txt``, else VOC), image-level
  labels from ``cls_labels.json`` (``{id: [1-based class indices]}``) and text from the folder's
  ``captions.json`` when it has one. Without captions the graph holds only what labels say (class
  probabilities and co-occurrence) and the lexicon's candidates stay uniform: prompts are then
  templates over class names, refined by the user's answers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from wsss.data.captions import read_captions
from wsss.data.classes import resolve_class_names
from wsss.data.dataset import read_split
from wsss.fileio import first_items
from wsss.synth.prompts.lexicon import Lexicon
from wsss.synth.prompts.parse import CaptionReader, ImageFacts, read_images

CAPTIONS_NAME = "captions.json"
LABELS_NAME = "cls_labels.json"


def read_class_labels(path: Path, class_names: tuple[str, ...]) -> dict[str, list[str]]:
    """``{image id: [class names]}`` from a ``cls_labels.json`` of 1-based indices; errors name the file."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
        labels = {str(i): [class_names[int(c)] for c in row if 0 < int(c) < len(class_names)]
                  for i, row in table.items()}  # fmt: skip
        bad = sorted({int(c) for row in table.values() for c in row if not 0 < int(c) < len(class_names)})
    except (ValueError, AttributeError, TypeError) as err:
        raise ValueError(
            f"{path}: not an image-level label file ({err}); write {{id: [1-based class indices]}}"
        ) from None
    if bad:
        raise ValueError(f"{path}: class indices {bad} outside 1..{len(class_names) - 1}; the file does not "
                         f"match the {len(class_names)}-class list")  # fmt: skip
    return labels


def load_images(lexicon: Lexicon, captions: str | os.PathLike | None = None,
                data_root: str | os.PathLike | None = None,
                classes: str | os.PathLike | list[str] | None = None,
                split: str | None = None) -> tuple[list[ImageFacts], list[str], str]:  # fmt: skip
    """``(image facts, foreground class names, description of the source)``; see the module docstring.

    ``split`` (with ``data_root``): only the images of ``ImageSets/Segmentation/<split>.txt``, e.g. the
    training images, so that nothing is learnt from validation captions.
    """
    if split is not None and data_root is None:
        raise ValueError("--split needs --data-root (a captions file has no split lists)")
    if (captions is None) == (data_root is None):
        raise ValueError("give exactly one of --captions FILE or --data-root DIR")
    labels = None
    if data_root is not None:
        root = Path(data_root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: dataset folder not found; give a folder in VOC layout")
        names = resolve_class_names(classes, root)
        captions_path = root / CAPTIONS_NAME
        labels_path = root / LABELS_NAME
        if labels_path.is_file():
            labels = read_class_labels(labels_path, names)
        if not captions_path.is_file() and labels is None:
            raise FileNotFoundError(f"{root}: neither {CAPTIONS_NAME} nor {LABELS_NAME} found; the planner needs "
                                    "captions or image-level labels")  # fmt: skip
        text = read_captions(captions_path) if captions_path.is_file() else {}
        source = " + ".join(
            str(p) for p, used in ((captions_path, bool(text)), (labels_path, labels is not None)) if used
        )
        if split is not None:
            keep = set(read_split(root / "ImageSets" / "Segmentation" / f"{split}.txt"))
            text = {i: t for i, t in text.items() if i in keep}
            labels = None if labels is None else {i: c for i, c in labels.items() if i in keep}
            source += f" ({split} split)"
    else:
        captions_path = Path(captions)
        names = resolve_class_names(classes, captions_path.parent if captions_path.parent.is_dir() else None)
        text = read_captions(captions_path)
        source = str(captions_path)
    foreground = list(names[1:])
    reader = CaptionReader(foreground, lexicon)
    images = read_images(text, reader, labels)
    if not images:
        raise ValueError(f"{source}: holds no images")
    if text and not any(caption.classes for image in images for caption in image.captions):
        raise ValueError(f"{source}: no caption names any of the {len(foreground)} classes "
                         f"({first_items(foreground, 8)}); give the "
                         "dataset's classes with --classes or synonyms with --lexicon")  # fmt: skip
    return images, foreground, source
