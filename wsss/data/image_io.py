"""Finding and reading images: any suffix a dataset uses, always decoded to RGB uint8."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from wsss.fileio import first_items

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def find_image(images_dir: str | os.PathLike, image_id: str) -> Path:
    """The image file of ``image_id`` in ``images_dir``, trying :data:`IMAGE_SUFFIXES` in order."""
    images_dir = Path(images_dir)
    for suffix in IMAGE_SUFFIXES:
        path = images_dir / f"{image_id}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{images_dir / image_id}.jpg: image not found (also tried {', '.join(IMAGE_SUFFIXES[1:])}); "
        "point the images folder at the images of the list, or drop the id from it"
    )


def index_images(images_dir: str | os.PathLike, ids: Sequence[str], what: str = "ids",
                 fix: str = "point the images folder at the images the ids come from") -> dict[str, Path]:  # fmt: skip
    """``id -> image path`` for every id from one scan of ``images_dir`` (suffixes ranked as in
    :data:`IMAGE_SUFFIXES`); FileNotFoundError names how many ``what`` have no image, the first ones, and ``fix``."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{images_dir}: images folder not found; give the folder of the original images")
    rank = {suffix: i for i, suffix in enumerate(IMAGE_SUFFIXES)}
    by_stem: dict[str, Path] = {}
    for entry in os.scandir(images_dir):
        path = Path(entry.path)
        suffix = path.suffix.lower()
        if suffix in rank and entry.is_file():
            known = by_stem.get(path.stem)
            if known is None or rank[suffix] < rank[known.suffix.lower()]:
                by_stem[path.stem] = path
    missing = [image_id for image_id in ids if image_id not in by_stem]
    if missing:
        raise FileNotFoundError(
            f"{images_dir}: no image for {len(missing)} of {len(ids)} {what} (first: {first_items(missing)}); {fix}"
        )
    return {image_id: by_stem[image_id] for image_id in ids}


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image file, read from its header only."""
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{path}: unreadable image ({err}); replace it or drop its id from the list") from err


def to_rgb_uint8(image: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode (L, LA, P, RGBA, CMYK, I;16, I, F ...) to ``(H, W, 3)`` uint8 RGB."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") else max(float(array.max()), 1.0)
        if mode in ("I", "F") and array.max() <= 255 and array.min() >= 0:
            peak = 255.0
        grey = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Composite onto black, the usual choice for datasets with alpha.
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB; a clear error names the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image file not found")
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb_uint8(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{path}: unreadable image ({err}); replace or remove it from the split list") from err
