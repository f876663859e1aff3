"""Write a synthetic dataset in VOC layout from any text-to-image generator: resumable, sharded over ranks.

Layout, read by :class:`wsss.data.dataset.ImageLabelDataset` like any VOC-layout folder::

    OUT/JPEGImages/synth_<index>.jpg        (its prompt, seed, generator, steps, guidance in the JPEG comment)
    OUT/ImageSets/Segmentation/train.txt    (the finished images, in prompt order)
    OUT/class_names.txt, OUT/cls_labels.json  (with a class list: {id: [1-based class indices]})
    OUT/manifest.json                       (settings, and per image its prompt, seed, generator, steps, guidance)

Each image carries its own record, so a resumed run (or another rank) knows an image is finished
exactly when its file exists with the record the plan asks for; an image whose prompt or seed
changed is made again. The index files are rewritten (atomically) at the start and the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from wsss.data.classes import CLASS_NAMES_FILE, write_class_names
from wsss.fileio import remove_stale_temporaries, save_jpeg_atomic, write_json_atomic, write_text_atomic
from wsss.manifest import write_manifest
from wsss.synth.generator import TextToImageGenerator
from wsss.synth.prompt_file import PromptEntry

IMAGE_DIR = "JPEGImages"
SPLIT_PATH = Path("ImageSets") / "Segmentation" / "train.txt"
CLS_LABELS_FILE = "cls_labels.json"
JPEG_QUALITY = 95


@dataclass(frozen=True)
class PlannedImage:
    """One image to make: its id, prompt, seed and 1-based class indices (empty without a class list)."""

    img_id: str
    prompt: str
    seed: int
    classes: tuple[int, ...]


def plan_images(entries: Sequence[PromptEntry], base_seed: int,
                labels: Sequence[Sequence[int]] | None = None) -> list[PlannedImage]:  # fmt: skip
    """Image ``i`` is ``synth_<i>`` with seed ``base_seed + i`` unless its entry gives one."""
    return [
        PlannedImage(
            f"synth_{i:06d}",
            entry.prompt,
            base_seed + i if entry.seed is None else entry.seed,
            tuple(labels[i]) if labels is not None else (),
        )  # fmt: skip
        for i, entry in enumerate(entries)
    ]


def image_record(image: PlannedImage, generator: str, steps: int, guidance: float) -> dict[str, Any]:
    """What decides one image's pixels, as the manifest and the image's JPEG comment record it."""
    return {
        "prompt": image.prompt,
        "seed": image.seed,
        "generator": generator,
        "steps": steps,
        "guidance": guidance,
    }


def _comment(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True)


def image_path(out: str | os.PathLike, image: PlannedImage) -> Path:
    return Path(out) / IMAGE_DIR / f"{image.img_id}.jpg"


def is_finished(path: Path, record: dict[str, Any]) -> bool:
    """Whether ``path`` exists and was made from ``record`` (read from its JPEG comment; unreadable: no)."""
    if not path.is_file():
        return False
    try:
        with Image.open(path) as image:
            comment = image.info.get("comment")
    except OSError:
        return False
    return comment == _comment(record).encode("utf-8")


def generate_images(
    generator: TextToImageGenerator,
    plan: Sequence[PlannedImage],
    out: str | os.PathLike,
    steps: int,
    guidance: float,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
) -> tuple[int, int]:
    """Make this rank's images (``plan[rank::world_size]``) that are not finished; returns (written, already there)."""
    mine = plan[rank::world_size]
    todo = [image for image in mine
            if not is_finished(image_path(out, image), image_record(image, generator.name, steps, guidance))]  # fmt: skip
    with tqdm(total=len(todo), desc="generating", unit="img", disable=not progress) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            images = generator.sample([i.prompt for i in batch], [i.seed for i in batch], steps, guidance)
            if images.shape[0] != len(batch) or images.ndim != 4 or images.shape[-1] != 3:
                raise ValueError(f"generator {generator.name} returned images of shape {images.shape} "
                                 f"for {len(batch)} prompts; it must return (N, H, W, 3)")  # fmt: skip
            for image, pixels in zip(batch, images):
                record = image_record(image, generator.name, steps, guidance)
                save_jpeg_atomic(image_path(out, image), pixels, JPEG_QUALITY, comment=_comment(record))
            bar.update(len(batch))
    return len(todo), len(mine) - len(todo)


def write_index(
    out: str | os.PathLike,
    plan: Sequence[PlannedImage],
    settings: dict[str, Any],
    steps: int,
    guidance: float,
    class_names: Sequence[str] | None = None,
) -> int:
    """Write train.txt, class_names.txt, cls_labels.json and manifest.json for the finished images; returns their count.

    Temporary files a killed run left in the image folder are removed first.
    """
    out = Path(out)
    remove_stale_temporaries(out / IMAGE_DIR)
    name = settings["generator"]
    finished = [i for i in plan if is_finished(image_path(out, i), image_record(i, name, steps, guidance))]
    write_text_atomic(out / SPLIT_PATH, "".join(f"{image.img_id}\n" for image in finished))
    images = {image.img_id: image_record(image, name, steps, guidance) for image in finished}
    if class_names is not None:
        write_class_names(out / CLASS_NAMES_FILE, class_names)
        write_json_atomic(
            out / CLS_LABELS_FILE, {image.img_id: list(image.classes) for image in finished}, indent=None
        )
        for image in finished:
            images[image.img_id]["classes"] = [class_names[c] for c in image.classes]
    write_manifest(out, settings, count=len(finished), planned=len(plan), images=images)
    return len(finished)
