"""Turn seed files (<id>.npz: keys + maps) into pseudo-label PNGs, optionally refined by a dense CRF.

Two modes:
  --bg-threshold T               background where no class map exceeds T, else the strongest class;
  --fg-threshold H --bg-low L    IRN style: the strongest class where its map exceeds H, background
                                 where the strongest map is at most L, 255 (ignore) in between.
A map exactly equal to a threshold counts as background, as in tools/eval_seeds.py, so the best
threshold of that sweep reproduces the labels it scored. With --crf each threshold's label map is
refined by IRN's dense CRF on the image (needs pip install 'wsss[crf]'); in the two-threshold mode
both maps are refined, then combined.

Output: OUT/<id>.png palette PNGs whose pixel values are class indices (0 background, 1..C classes,
255 ignore), readable as they are by tools/eval_seg.py and mmsegmentation-style loaders (a viewer
that ignores the palette shows them almost black; the values are right). OUT/manifest.json records
the settings, the seeds folder, the counts and the fraction of pixels per label value. The manifest
is written when the run starts (with "complete": false) and again when it ends, both atomically, so
an interrupted run can be resumed with the same command: existing PNGs are kept, not rewritten.
An out folder made with other settings is refused; use a new --out for new settings.

Example:
    python tools/make_pseudo_labels.py --seeds work_dirs/bas/seeds --images VOC2012/JPEGImages \\
        --out work_dirs/bas/pseudo_t0.25 --bg-threshold 0.25 --crf --workers 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from wsss.data.dataset import IMAGE_SUFFIXES, read_split
from wsss.data.image_io import read_image
from wsss.data.label_io import IGNORE_INDEX, read_label_png, write_label_png
from wsss.fileio import atomic_write
from wsss.pseudo_labels.crf import (
    LabelCRFSettings,
    crf_labels_from_threshold,
    crf_labels_from_two_thresholds,
    import_pydensecrf,
)
from wsss.pseudo_labels.labels import (
    check_threshold,
    check_two_thresholds,
    labels_from_threshold,
    labels_from_two_thresholds,
)
from wsss.pseudo_labels.seed_io import check_seeds_exist, list_seed_ids, load_seeds, seed_path

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class LabelJob:
    """Everything a worker needs to label one image (picklable)."""

    seeds_dir: Path
    out_dir: Path
    bg_threshold: float | None
    fg_threshold: float | None
    bg_low: float | None
    crf: bool


def _first(items: Sequence[str], count: int = 5) -> str:
    return ", ".join(items[:count]) + (", ..." if len(items) > count else "")


def index_images(images_dir: Path, ids: Sequence[str]) -> dict[str, Path]:
    """``id -> image path`` for every id (suffixes tried in IMAGE_SUFFIXES order); exits naming missing ones."""
    if not images_dir.is_dir():
        raise SystemExit(
            f"error: --images {images_dir} is not a folder; give the folder of the original images"
        )
    by_stem: dict[str, Path] = {}
    rank = {suffix: i for i, suffix in enumerate(IMAGE_SUFFIXES)}
    for entry in os.scandir(images_dir):
        path = Path(entry.path)
        suffix = path.suffix.lower()
        if suffix not in rank or not entry.is_file():
            continue
        known = by_stem.get(path.stem)
        if known is None or rank[suffix] < rank[known.suffix.lower()]:
            by_stem[path.stem] = path
    missing = [image_id for image_id in ids if image_id not in by_stem]
    if missing:
        raise SystemExit(
            f"error: {len(missing)} of {len(ids)} seeds have no image in {images_dir} "
            f"(first: {_first(missing)}; looked for {images_dir / missing[0]}{{{','.join(IMAGE_SUFFIXES)}}}); "
            "point --images at the images the seeds were made from"
        )
    return {image_id: by_stem[image_id] for image_id in ids}


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file, read from its header."""
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except OSError as err:
        raise ValueError(f"{path}: unreadable image ({err}); replace it or drop its id from --list") from err


def label_one(job: LabelJob, task: tuple[str, Path]) -> tuple[np.ndarray, bool]:
    """Write ``OUT/<id>.png`` for one ``(id, image path)`` unless it exists; returns the PNG's per-value
    pixel counts (256,) and whether it was written."""
    image_id, image_path = task
    out_path = job.out_dir / f"{image_id}.png"
    if out_path.is_file():
        labels = read_label_png(out_path)
        return np.bincount(labels.ravel(), minlength=256), False
    seed_file = seed_path(job.seeds_dir, image_id)
    keys, maps = load_seeds(seed_file)
    image = read_image(image_path) if job.crf else None
    size = image.shape[:2] if image is not None else _image_size(image_path)
    if tuple(size) != maps.shape[1:]:
        raise ValueError(
            f"{seed_file}: seed maps are {maps.shape[1]}x{maps.shape[2]} (HxW) but image {image_path} is "
            f"{size[0]}x{size[1]}; seeds must be at the image's original size"
        )
    if job.bg_threshold is not None:
        if image is not None:
            labels = crf_labels_from_threshold(image, keys, maps, job.bg_threshold)
        else:
            labels = labels_from_threshold(keys, maps, job.bg_threshold)
    elif image is not None:
        labels = crf_labels_from_two_thresholds(image, keys, maps, job.fg_threshold, job.bg_low)
    else:
        labels = labels_from_two_thresholds(keys, maps, job.fg_threshold, job.bg_low)
    write_label_png(out_path, labels)
    return np.bincount(labels.ravel(), minlength=256), True


def label_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings that decide the labels, as recorded in (and compared with) the manifest."""
    if args.bg_threshold is not None:
        settings: dict[str, Any] = {"mode": "threshold", "bg_threshold": args.bg_threshold}
    else:
        settings = {"mode": "two_thresholds", "fg_threshold": args.fg_threshold, "bg_low": args.bg_low}
    settings["crf"] = asdict(LabelCRFSettings()) if args.crf else None
    return settings


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest JSON atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def check_out_dir(out_dir: Path, settings: dict[str, Any], seeds_dir: str) -> None:
    """Exit unless ``out_dir`` is new, or was made by this tool with the same settings and seeds."""
    manifest_path = out_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        if out_dir.is_dir() and any(out_dir.glob("*.png")):
            raise SystemExit(
                f"error: --out {out_dir} already holds PNGs but no {MANIFEST_NAME}, so they were not made "
                "by this tool; use a new --out folder"
            )
        return
    try:
        previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        previous_settings, previous_seeds = previous["settings"], previous["seeds"]
    except (ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"error: {manifest_path} is unreadable ({err}); use a new --out folder") from None
    if previous_settings != settings or previous_seeds != seeds_dir:
        raise SystemExit(
            f"error: {manifest_path} was written with other settings "
            f"({json.dumps(previous_settings)}, seeds {previous_seeds}) than this run "
            f"({json.dumps(settings)}, seeds {seeds_dir}); use a new --out folder for new settings "
            "(or delete this one)"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", required=True, type=Path, help="folder of seed files <id>.npz")
    parser.add_argument(
        "--images", required=True, type=Path, help="folder of the original images <id>.jpg (or .png, ...)"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder for <id>.png and manifest.json"
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--bg-threshold",
        type=float,
        help="one background threshold in (0, 1), e.g. the best of eval_seeds.py",
    )
    mode.add_argument(
        "--fg-threshold",
        type=float,
        help="IRN-style high threshold in (0, 1) for confident foreground (with --bg-low)",
    )
    parser.add_argument(
        "--bg-low", type=float, help="IRN-style low threshold in (0, --fg-threshold) for confident background"
    )
    parser.add_argument(
        "--crf", action="store_true", help="refine with IRN's dense CRF (pip install 'wsss[crf]')"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="worker processes (default: number of usable cores)",
    )
    parser.add_argument("--list", type=Path, help="split file of the ids to label (default: every seed file)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.fg_threshold is not None and args.bg_low is None:
        parser.error("--fg-threshold needs --bg-low")
    if args.bg_threshold is not None and args.bg_low is not None:
        parser.error("--bg-low goes with --fg-threshold, not with --bg-threshold")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.bg_threshold is not None:
            check_threshold(args.bg_threshold, "--bg-threshold")
        else:
            check_two_thresholds(args.fg_threshold, args.bg_low)
    except ValueError as err:
        raise SystemExit(
            f"error: {err}; use 0 < --bg-threshold < 1, or 0 < --bg-low < --fg-threshold < 1"
        ) from None
    if args.workers < 1:
        raise SystemExit(f"error: --workers must be at least 1, got {args.workers}")
    if args.crf:
        try:
            import_pydensecrf()
        except ImportError as err:
            raise SystemExit(f"error: --crf: {err}") from None
    try:
        if args.list is not None:
            # A split listing an id twice still makes one PNG for it.
            ids = list(dict.fromkeys(read_split(args.list)))
            check_seeds_exist(args.seeds, ids)
        else:
            ids = list_seed_ids(args.seeds)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    images = index_images(args.images, ids)

    settings = label_settings(args)
    seeds_dir = str(args.seeds.resolve())
    check_out_dir(args.out, settings, seeds_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "complete": False,
        "settings": settings,
        "seeds": seeds_dir,
        "images": str(args.images.resolve()),
        "list": str(args.list.resolve()) if args.list is not None else None,
        "label_values": "0 background, 1..C the classes' 1-based indices, 255 ignore (two-threshold band)",
    }
    write_manifest(args.out / MANIFEST_NAME, manifest)

    job = LabelJob(args.seeds, args.out, args.bg_threshold, args.fg_threshold, args.bg_low, bool(args.crf))
    work = partial(label_one, job)
    tasks = list(images.items())
    counts = np.zeros(256, dtype=np.int64)
    written = 0
    workers = min(args.workers, len(ids))
    try:
        with tqdm(total=len(ids), desc="pseudo labels", unit="img", disable=args.no_progress) as bar:
            if workers == 1:
                for image_counts, was_written in map(work, tasks):
                    counts += image_counts
                    written += was_written
                    bar.update()
            else:
                # Leaving the block terminates the pool, so one failing image stops the others at once.
                with Pool(workers) as pool:
                    for image_counts, was_written in pool.imap_unordered(work, tasks, chunksize=4):
                        counts += image_counts
                        written += was_written
                        bar.update()
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None

    total = int(counts.sum())
    fractions = counts / max(total, 1)
    manifest["complete"] = True
    manifest["counts"] = {
        "images": len(ids),
        "written": written,
        "existing": len(ids) - written,
        "pixels": total,
    }
    manifest["pixel_fractions"] = {str(value): float(fractions[value]) for value in np.flatnonzero(counts)}
    write_manifest(args.out / MANIFEST_NAME, manifest)
    print(
        f"{len(ids)} images in {args.out}: {written} written, {len(ids) - written} already there; "
        f"background {fractions[0]:.1%}, ignore {fractions[IGNORE_INDEX]:.1%} of pixels"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
