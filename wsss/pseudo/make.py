"""The pseudo-label stage: a folder of seed files in, a folder of label PNGs and a manifest out.

Each image's seeds become labels by one background threshold, or by two thresholds with an ignore
band (IRN style), optionally refined by the dense CRF on the image (:mod:`wsss.pseudo.crf`). The
output is ``OUT/<id>.png`` palette PNGs whose values are class indices (0 background, 1..C classes,
255 ignore), readable as they are by mmsegmentation-style loaders, and ``OUT/manifest.json``: the
settings, the seeds and images folders, the counts and the share of pixels per label value.

Resumable: the manifest is written first (``"complete": false``) and again at the end; a later run
with the same settings keeps the PNGs already there when they are whole and of their image's size,
and makes the others. A folder made with other settings is refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from wsss.data.image_io import image_size, index_images, read_image
from wsss.data.label_io import reusable_label_png, write_label_png
from wsss.fileio import remove_stale_temporaries
from wsss.localize.seed_io import check_seeds_exist, load_seeds, seed_path
from wsss.manifest import check_folder_settings, write_manifest
from wsss.parallel import process_pool
from wsss.pseudo.crf import (
    LabelCRFSettings,
    crf_labels_from_threshold,
    crf_labels_from_two_thresholds,
    import_pydensecrf,
)
from wsss.pseudo.labels import (
    check_threshold,
    check_two_thresholds,
    labels_from_threshold,
    labels_from_two_thresholds,
)

LABEL_VALUES = "0 background, 1..C the classes' 1-based indices, 255 ignore (two-threshold band)"


@dataclass(frozen=True)
class LabelRule:
    """How seeds become labels: ``bg_threshold`` alone, or ``fg_threshold`` with ``bg_low`` (IRN style)."""

    bg_threshold: float | None = None
    fg_threshold: float | None = None
    bg_low: float | None = None
    crf: bool = False

    def __post_init__(self) -> None:
        if (self.bg_threshold is None) == (self.fg_threshold is None):
            raise ValueError("give either a background threshold or a foreground threshold with a low one")
        if self.bg_threshold is not None:
            if self.bg_low is not None:
                raise ValueError(
                    "the low background threshold goes with a foreground threshold, not with bg_threshold"
                )
            check_threshold(self.bg_threshold, "the background threshold")
        else:
            if self.bg_low is None:
                raise ValueError("a foreground threshold needs the low background threshold too")
            check_two_thresholds(self.fg_threshold, self.bg_low)

    def settings(self) -> dict[str, Any]:
        """What decides the labels, as the manifest records it."""
        if self.bg_threshold is not None:
            settings: dict[str, Any] = {"mode": "threshold", "bg_threshold": self.bg_threshold}
        else:
            settings = {"mode": "two_thresholds", "fg_threshold": self.fg_threshold, "bg_low": self.bg_low}
        settings["crf"] = asdict(LabelCRFSettings()) if self.crf else None
        return settings

    def label(self, keys: np.ndarray, maps: np.ndarray, image: np.ndarray | None) -> np.ndarray:
        """The ``(H, W)`` uint8 labels of one image's seeds (``image`` is needed for the CRF)."""
        if self.bg_threshold is not None:
            if self.crf:
                return crf_labels_from_threshold(image, keys, maps, self.bg_threshold)
            return labels_from_threshold(keys, maps, self.bg_threshold)
        if self.crf:
            return crf_labels_from_two_thresholds(image, keys, maps, self.fg_threshold, self.bg_low)
        return labels_from_two_thresholds(keys, maps, self.fg_threshold, self.bg_low)


def label_one(
    seeds_dir: Path, out_dir: Path, rule: LabelRule, task: tuple[str, Path]
) -> tuple[np.ndarray, bool]:
    """Write ``OUT/<id>.png`` for one ``(id, image path)`` unless a whole one is there; returns the PNG's
    per-value pixel counts (256,) and whether it was written."""
    image_id, image_path = task
    out_path = out_dir / f"{image_id}.png"
    image = read_image(image_path) if rule.crf else None
    size = image.shape[:2] if image is not None else image_size(image_path)
    existing = reusable_label_png(out_path, tuple(size))
    if existing is not None:
        return np.bincount(existing.ravel(), minlength=256), False
    seed_file = seed_path(seeds_dir, image_id)
    keys, maps = load_seeds(seed_file)
    if tuple(size) != maps.shape[1:]:
        raise ValueError(
            f"{seed_file}: seed maps are {maps.shape[1]}x{maps.shape[2]} (HxW) but image {image_path} is "
            f"{size[0]}x{size[1]}; seeds must be at the image's original size"
        )
    labels = rule.label(keys, maps, image)
    write_label_png(out_path, labels)
    return np.bincount(labels.ravel(), minlength=256), True


def make_pseudo_labels(
    seeds_dir: str | os.PathLike,
    images_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    ids: Sequence[str],
    rule: LabelRule,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Label every id's seeds into ``out_dir`` (see the module docstring); returns the manifest written."""
    seeds_dir, images_dir, out_dir = Path(seeds_dir), Path(images_dir), Path(out_dir)
    if not ids:
        raise ValueError("no ids to label; give a non-empty list")
    if rule.crf:
        import_pydensecrf()
    check_seeds_exist(seeds_dir, ids)
    images = index_images(
        images_dir, ids, "seeds", "point the images folder at the images the seeds were made from"
    )
    settings = {**rule.settings(), "seeds": str(seeds_dir.resolve())}
    check_folder_settings(out_dir, settings, pattern="*.png")
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    manifest: dict[str, Any] = {
        "complete": False,
        "images": str(images_dir.resolve()),
        "label_values": LABEL_VALUES,
    }
    write_manifest(out_dir, settings, **manifest)
    work = partial(label_one, seeds_dir, out_dir, rule)
    tasks = list(images.items())
    counts = np.zeros(256, dtype=np.int64)
    written = 0
    workers = max(1, min(workers, len(tasks)))
    with tqdm(total=len(tasks), desc="pseudo labels", unit="img", disable=not progress) as bar:
        if workers == 1:
            for image_counts, was_written in map(work, tasks):
                counts += image_counts
                written += was_written
                bar.update()
        else:
            # Leaving the block terminates the pool, so one failing image stops the others at once.
            with process_pool(workers) as pool:
                for image_counts, was_written in pool.imap_unordered(work, tasks, chunksize=4):
                    counts += image_counts
                    written += was_written
                    bar.update()
    total = int(counts.sum())
    fractions = counts / max(total, 1)
    manifest.update(
        complete=True,
        counts={"images": len(tasks), "written": written, "existing": len(tasks) - written, "pixels": total},
        pixel_fractions={str(value): float(fractions[value]) for value in np.flatnonzero(counts)},
    )
    write_manifest(out_dir, settings, **manifest)
    return {"settings": settings, **manifest}
