"""Image captions in the COCO captions format: reading (COCO's ``captions_*.json`` or the shapes
``captions.json``), writing, and composing captions for the shapes data from what was drawn.

The format: ``{"images": [{"id": int, "file_name": str}, ...], "annotations": [{"id": int,
"image_id": int, "caption": str}, ...]}``; images are named by their file stem (the dataset id).
"""

from __future__ import annotations

import colorsys
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wsss.fileio import write_json_atomic


def read_captions(path: str | os.PathLike) -> dict[str, list[str]]:
    """``{image id (file stem): [captions]}`` of a COCO-format captions json; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: captions file not found; give a COCO captions json (captions_*.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names = {int(image["id"]): Path(image["file_name"]).stem for image in data["images"]}
        captions: dict[str, list[str]] = {name: [] for name in names.values()}
        for annotation in data["annotations"]:
            captions[names[int(annotation["image_id"])]].append(str(annotation["caption"]).strip())
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path}: not a COCO captions file ({type(err).__name__}: {err}); it needs 'images' with id and "
            "file_name, and 'annotations' with image_id and caption"
        ) from None
    return captions


def write_captions(path: str | os.PathLike, captions: Mapping[str, Sequence[str]], suffix: str = ".jpg") -> None:
    """Write ``{image id: [captions]}`` as a COCO captions json (images numbered in the given order)."""
    images, annotations = [], []
    for index, (image_id, texts) in enumerate(captions.items(), start=1):
        images.append({"id": index, "file_name": f"{image_id}{suffix}"})
        annotations += [{"id": len(annotations) + 1, "image_id": index, "caption": text} for text in texts]
    write_json_atomic(path, {"info": {"description": "captions in the COCO format"}, "images": images,
                             "annotations": annotations}, indent=None)  # fmt: skip


# --- composing captions of the shapes data --------------------------------------------------------

COLOUR_NAMES = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "brown", "white", "grey", "black")
SIZE_NAMES = ("small", "large")
CONTEXT_PHRASES = {"water": ("on water", "on the water", "floating on a lake"), "rails": ("on rails", "on the tracks", "on a railway")}
CONTEXT_ALONE = {"water": ("by the water", "with a lake behind"), "rails": ("by a railway", "with rails behind")}


def colour_name(rgb: Sequence[float]) -> str:
    """The plain name of an RGB colour (0..255): one of :data:`COLOUR_NAMES`."""
    h, s, v = colorsys.rgb_to_hsv(*(float(c) / 255.0 for c in rgb))
    hue = h * 360.0
    if v < 0.22:
        return "black"
    if s < 0.18:
        return "white" if v > 0.8 else "grey"
    if hue < 45 and v < 0.55:
        return "brown"
    bins = ((15, "red"), (45, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"), (260, "blue"),
            (300, "purple"), (345, "pink"), (361, "red"))  # fmt: skip
    return next(name for bound, name in bins if hue < bound)


def size_name(bbox: Sequence[int], image_size: int) -> str | None:
    """``small`` or ``large`` by the object's box area as a share of the image; None in between."""
    share = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]) / float(image_size * image_size)
    return "small" if share < 0.08 else "large" if share > 0.3 else None


def _phrase(obj: Mapping[str, Any], image_size: int, rng: np.random.Generator, detailed: bool) -> str:
    words = []
    if detailed:
        size = size_name(obj["bbox"], image_size)
        if size and rng.random() < 0.7:
            words.append(size)
        words.append(colour_name(obj["colour"]))
    words.append(obj["class_name"])
    phrase = " ".join(words)
    context = obj.get("on_context")
    if context and rng.random() < 0.85:
        phrase += " " + CONTEXT_PHRASES[context][int(rng.integers(len(CONTEXT_PHRASES[context])))]
    return phrase


def _article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def compose_captions(info: Mapping[str, Any], image_size: int, rng: np.random.Generator, count: int = 5) -> list[str]:
    """``count`` captions of one shapes image from its render record (objects, colours, contexts).

    Every caption names every object's class; most also give colours and sizes, the context an object
    stands on, and contexts with no object of their class ("by the water").
    """
    objects = list(info["objects"])
    on = {obj.get("on_context") for obj in objects}
    alone = [c for c in info["contexts"] if c not in on]
    captions = []
    for index in range(count):
        phrases = [_phrase(obj, image_size, rng, detailed=index > 0) for obj in objects]
        order = rng.permutation(len(phrases))
        joined = phrases[order[0]] if phrases else "an empty scene"
        for k in order[1:]:
            joined += (" beside " if rng.random() < 0.5 else " and ") + _article(phrases[k])
        caption = ("" if rng.random() < 0.8 else "a picture of ") + _article(joined)
        for context in alone:
            caption += " " + CONTEXT_ALONE[context][int(rng.integers(len(CONTEXT_ALONE[context])))]
        captions.append(caption)
    return captions
